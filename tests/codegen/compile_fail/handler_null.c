/* SPDX-License-Identifier: MIT */
/*
 * NULL is fine for on_start and on_stop but not for a message's handler:
 * every message needs one.
 */
/* expect: _Generic|generic association */
#include "handlers_common.h"

int
install(butler_hub *hub)
{
#ifdef BREAK
	return at_sink_register_each(hub, NULL, NULL, NULL, on_scalars,
	    on_owned, NULL, on_ask, on_ping);
#else
	(void)start;
	return at_sink_register_each(hub, NULL, NULL, NULL, on_scalars,
	    on_owned, on_empty, on_ask, on_ping);
#endif
}
