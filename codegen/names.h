/* SPDX-License-Identifier: MIT */
/*
 * codegen/names.h — names a C11 or POSIX header may define as a macro.
 *
 * A message or field name is used bare in generated code (struct members,
 * the members of each server's union and handler table), so an object-like
 * macro of the same name, defined by a header the user includes first,
 * would break the generated header with errors about something else.
 * butler-gen refuses such names up front, with the header that owns them.
 */
#ifndef BUTLER_CODEGEN_NAMES_H
#define BUTLER_CODEGEN_NAMES_H

#include <stdbool.h>
#include <stddef.h>

/*
 * butler__gen_macro_name says whether `name` is, or may be, a macro of a
 * C11 or POSIX.1-2017 header, of gcc's default mode, or of butler itself;
 * if so it writes the reason into `why` (`size` bytes), for example "is a
 * macro in <stdio.h>".
 */
bool butler__gen_macro_name(const char *name, char *why, size_t size);

#endif /* BUTLER_CODEGEN_NAMES_H */
