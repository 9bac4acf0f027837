/* SPDX-License-Identifier: MIT */
/*
 * main.c — a program of a project that builds butler as a subproject. It
 * shadows a variable on purpose: butler's -Wshadow -Werror must not reach
 * it.
 */
#include <stdio.h>
#include <string.h>

#include <butler/butler.h>

int
main(void)
{
	int rv = 0;

	printf("butler %s\n", butler_version());
	{
		int rv = strcmp(butler_version(), BUTLER_VERSION_STRING);

		if (rv != 0)
			return 1;
	}
	printf("%s\n", butler_strerror(BUTLER_EFULL));
	return rv;
}
