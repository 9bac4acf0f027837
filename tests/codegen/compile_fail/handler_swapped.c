/* SPDX-License-Identifier: MIT */
/*
 * Two handlers given in each other's place do not compile: each argument
 * of app_S_register_each() is checked against its own type with _Generic,
 * a hard error where an incompatible pointer would only warn.
 */
/* expect: _Generic|generic association */
#include "handlers_common.h"

int
install(butler_hub *hub)
{
#ifdef BREAK
	return at_sink_register_each(hub, NULL, start, NULL, on_owned,
	    on_scalars, on_empty, on_ask, on_ping);
#else
	return at_sink_register_each(hub, NULL, start, NULL, on_scalars,
	    on_owned, on_empty, on_ask, on_ping);
#endif
}
