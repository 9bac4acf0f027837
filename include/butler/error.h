/* SPDX-License-Identifier: MIT */
/**
 * @file
 * butler/error.h — the one error vocabulary of butler.
 *
 * Every butler function that can fail returns an int that is either
 * BUTLER_OK (zero) or one of the codes below. libevent and system-call
 * failures are translated at the boundary, so callers never see a libevent
 * return code or have to read errno.
 */
#ifndef BUTLER_ERROR_H
#define BUTLER_ERROR_H

#include <butler/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * BUTLER_ERR_MAP lists every code with its message, once. It expands into
 * the enum below and into the table behind butler_strerror(), so the two can
 * never drift apart.
 */
#define BUTLER_ERR_MAP(X)                                                     \
	X(OK, "success")                                                      \
	X(ENOMEM, "out of memory")                                            \
	X(EINVAL, "invalid argument")                                         \
	X(EFULL, "inbox is full")                                             \
	X(ECLOSED, "server is stopped or stopping")                           \
	X(ETIMEDOUT, "timed out")                                             \
	X(ESTATE, "not allowed in the hub's current state")                   \
	X(ENOHANDLER, "a server has no handler for a message it accepts")     \
	X(EKIND, "unknown message kind")                                      \
	X(EDEADLK, "the call would wait for the calling thread itself")       \
	X(EBUSY, "another thread is draining this server")                    \
	X(ESYS, "a system call failed")                                       \
	X(EABI, "descriptor table built for another butler ABI")              \
	X(ECANCELED, "request was cancelled")                                 \
	X(EHANDLER, "handler reported a failure")                             \
	X(ENOTFOUND, "no such request")                                       \
	X(EWIRE, "malformed or truncated wire data")                          \
	X(ESTOPPED, "the hub stopped before the request was answered")        \
	X(EDROPPED, "inbox full: the message was destroyed (drop_newest)")    \
	X(EREPLACED, "queued in place of an older message of its kind")

/**
 * butler_err is the set of result codes. BUTLER_OK is zero, so `if (rv)`
 * tests for failure. Handlers may return BUTLER_EHANDLER, any other code, or
 * any positive value of their own: the runtime counts every non-zero result
 * as a failure.
 */
typedef enum butler_err {
#define BUTLER_ERR_ENUM_(name, text) BUTLER_##name,
	BUTLER_ERR_MAP(BUTLER_ERR_ENUM_)
#undef BUTLER_ERR_ENUM_
	    BUTLER_ERR_COUNT_
} butler_err;

/**
 * butler_taken says whether a send's result `rv` means that the hub took
 * the message, so that its owned fields are no longer the caller's:
 * BUTLER_OK (queued), BUTLER_EREPLACED (queued; an older queued message of
 * its kind, keep_last or drop_oldest, was destroyed for it) and
 * BUTLER_EDROPPED (destroyed unqueued: the inbox was full and its kind says
 * drop_newest). After any other code the message is still the caller's.
 * For a request the same holds, and BUTLER_ESTOPPED (the answer of a
 * request the hub took and then destroyed unanswered when it stopped) is
 * a taken one too. Any thread.
 */
static inline int
butler_taken(int rv)
{
	return rv == BUTLER_OK || rv == BUTLER_EREPLACED
	    || rv == BUTLER_EDROPPED || rv == BUTLER_ESTOPPED;
}

/**
 * butler_strerror returns a static, lower-case description of err. Unknown
 * values (including a handler's own positive codes) give "unknown error".
 * Any thread.
 */
BUTLER_API const char *butler_strerror(int err);

/**
 * butler_errname returns the symbolic name of err without its prefix
 * ("EFULL"), or "UNKNOWN". Meant for logs and test messages. Any thread.
 */
BUTLER_API const char *butler_errname(int err);

#ifdef __cplusplus
}
#endif

#endif /* BUTLER_ERROR_H */
