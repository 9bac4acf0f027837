/* SPDX-License-Identifier: MIT */
/*
 * test_version.c — butler_version() is the version of the headers the
 * library was built from, and the macros spell the same version.
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include <butler/butler.h>

Test(version, runtime_matches_headers)
{
	cr_assert_str_eq(butler_version(), BUTLER_VERSION_STRING);
}

Test(version, macros_spell_the_string)
{
	char s[64];

	snprintf(s, sizeof s, "%d.%d.%d", BUTLER_VERSION_MAJOR,
	    BUTLER_VERSION_MINOR, BUTLER_VERSION_PATCH);
	cr_assert_str_eq(s, BUTLER_VERSION_STRING);
}
