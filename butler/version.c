/* SPDX-License-Identifier: MIT */
/*
 * version.c — butler_version(): the version this library was built as, from
 * the configured butler/version.h (project(VERSION) in CMakeLists.txt).
 */
#include <butler/butler.h>

const char *
butler_version(void)
{
	return BUTLER_VERSION_STRING;
}
