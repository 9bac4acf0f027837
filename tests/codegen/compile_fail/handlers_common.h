/* SPDX-License-Identifier: MIT */
/*
 * tests/codegen/compile_fail/handlers_common.h — handlers of server
 * 'sink' (ok/all_types.json) for the register_each cases.
 */
#ifndef BUTLER_TESTS_CODEGEN_COMPILE_FAIL_HANDLERS_COMMON_H
#define BUTLER_TESTS_CODEGEN_COMPILE_FAIL_HANDLERS_COMMON_H

#include "all_types.butler.h"

#define HANDLER(m)                                                            \
	static int on_##m(                                                    \
	    butler_server *self, void *user, struct at_##m *msg)              \
	{                                                                     \
		(void)self;                                                   \
		(void)user;                                                   \
		(void)msg;                                                    \
		return 0;                                                     \
	}

HANDLER(scalars)
HANDLER(owned)
HANDLER(empty)
HANDLER(ask)
HANDLER(ping)

static int
start(butler_server *self, void *user)
{
	(void)self;
	(void)user;
	return 0;
}

int install(butler_hub *hub);

#endif /* BUTLER_TESTS_CODEGEN_COMPILE_FAIL_HANDLERS_COMMON_H */
