/* SPDX-License-Identifier: MIT */
/*
 * A handler left out of app_S_register_each() does not compile (with the
 * struct form it would compile and fail at butler_hub_start()).
 */
/* expect: requires 9 arguments|too few arguments */
#include "handlers_common.h"

int
install(butler_hub *hub)
{
#ifdef BREAK
	return at_sink_register_each(
	    hub, NULL, start, NULL, on_scalars, on_owned, on_empty, on_ping);
#else
	return at_sink_register_each(hub, NULL, start, NULL, on_scalars,
	    on_owned, on_empty, on_ask, on_ping);
#endif
}
