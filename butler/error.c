/* SPDX-License-Identifier: MIT */
/*
 * error.c — butler_strerror() and butler_errname(), both generated from
 * BUTLER_ERR_MAP so that a new code cannot be added without its text.
 */
#include <butler/error.h>

static const char *const messages[] = {
#define MESSAGE_(name, text) [BUTLER_##name] = text,
	BUTLER_ERR_MAP(MESSAGE_)
#undef MESSAGE_
};

static const char *const names[] = {
#define NAME_(name, text) [BUTLER_##name] = #name,
	BUTLER_ERR_MAP(NAME_)
#undef NAME_
};

const char *
butler_strerror(int err)
{
	if (err < 0 || err >= BUTLER_ERR_COUNT_)
		return "unknown error";
	return messages[err];
}

const char *
butler_errname(int err)
{
	if (err < 0 || err >= BUTLER_ERR_COUNT_)
		return "UNKNOWN";
	return names[err];
}
