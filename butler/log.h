/* SPDX-License-Identifier: MIT */
/*
 * butler/log.h — the hub's log hook, as a small value every unit can carry:
 * nothing here is on a send's fast path.
 */
#ifndef BUTLER_INTERNAL_LOG_H
#define BUTLER_INTERNAL_LOG_H

#include <butler/hub.h>

struct butler__logger {
	butler_log_fn fn; /* NULL: silent */
	butler_log_level level;
	void *user;
};

/* butler__logger_init sets the default: warnings and errors to stderr. */
void butler__logger_init(struct butler__logger *log);

/* butler__logger_is_default says whether log is still the default. */
bool butler__logger_is_default(const struct butler__logger *log);

/* butler__log formats a message and hands it to log->fn if level allows. */
void butler__log(const struct butler__logger *log, butler_log_level level,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif /* BUTLER_INTERNAL_LOG_H */
