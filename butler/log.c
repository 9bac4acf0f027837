/*
 * log.c — the hub's log hook. Messages are formatted into a stack buffer and
 * handed to the application's callback; nothing here is on a send's fast
 * path, so the cost of vsnprintf does not matter.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

void
butler__log_stderr(butler_log_level level, const char *msg, void *user)
{
	static const char *const level_names[]
	    = { "error", "warning", "info", "debug" };
	(void)user;
	fprintf(stderr, "butler: %s: %s\n",
	    level_names[level <= BUTLER_LOG_DEBUG ? level : BUTLER_LOG_DEBUG],
	    msg);
}

void
butler__log(
    const struct butler_hub *hub, butler_log_level level, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (hub == NULL || hub->log_fn == NULL || level > hub->log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	hub->log_fn(level, buf, hub->log_user);
}
