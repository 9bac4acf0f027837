/* SPDX-License-Identifier: MIT */
/*
 * on_start and on_stop have types of their own too: one in the other's
 * place does not compile.
 */
/* expect: _Generic|generic association */
#include "handlers_common.h"

int
install(butler_hub *hub)
{
#ifdef BREAK
	return at_sink_register_each(hub, NULL, NULL, start, on_scalars,
	    on_owned, on_empty, on_ask, on_ping);
#else
	return at_sink_register_each(hub, NULL, start, NULL, on_scalars,
	    on_owned, on_empty, on_ask, on_ping);
#endif
}
