/* SPDX-License-Identifier: MIT */
/*
 * log.c — the hub's log hook. Messages are formatted into a stack buffer and
 * handed to the application's callback; nothing here is on a send's fast
 * path, so the cost of vsnprintf does not matter.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static void
log_stderr(butler_log_level level, const char *msg, void *user)
{
	static const char *const level_names[]
	    = { "error", "warning", "info", "debug" };
	(void)user;
	fprintf(stderr, "butler: %s: %s\n",
	    level_names[level <= BUTLER_LOG_DEBUG ? level : BUTLER_LOG_DEBUG],
	    msg);
}

void
butler__logger_init(struct butler__logger *log)
{
	log->fn = log_stderr;
	log->level = BUTLER_LOG_WARN;
	log->user = NULL;
}

bool
butler__logger_is_default(const struct butler__logger *log)
{
	return log->fn == log_stderr;
}

void
butler__log(const struct butler__logger *log, butler_log_level level,
    const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (log == NULL || log->fn == NULL || level > log->level)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	log->fn(level, buf, log->user);
}
