/* SPDX-License-Identifier: MIT */
/*
 * The generated source checks every message's sizeof against
 * BUTLER_MAX_MESSAGE_SIZE: with a smaller limit, the same source does not
 * compile.
 */
/* expect: larger than BUTLER_MAX_MESSAGE_SIZE */
#include <butler/gen.h>

#ifdef BREAK
#undef BUTLER_MAX_MESSAGE_SIZE
#define BUTLER_MAX_MESSAGE_SIZE 16u
#endif

#include "all_types.butler.c"
