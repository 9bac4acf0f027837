/* SPDX-License-Identifier: MIT */
/*
 * tests/codegen/runtime_pending.c — stand-ins for the runtime functions of
 * BUTLER_GEN_ABI 2 (and later) that the runtime does not define yet.
 *
 * Generated code calls every function below, so a test that links
 * generated code cannot link against a runtime that lacks one of them.
 * tests/codegen/CMakeLists.txt looks for each definition in the runtime's
 * sources (butler/) and compiles this file with BUTLER_PENDING_<name> for
 * the missing ones only; once the runtime defines them all, nothing here is
 * compiled.
 *
 * A stand-in aborts with a message if it is called: no test can pass by
 * running one. The exception is butler_hub_server(), which answers the
 * index it is given. That is exact for the only hubs the tests build while
 * it is in use: a hub made from one spec with no imports, whose servers are
 * the hub's in the same order (butler/hub.h). Tests that need the real
 * functions (imports, deferred answers, blocking calls) are not built until
 * the runtime defines them.
 */
#include <stdio.h>
#include <stdlib.h>

#include <butler/butler.h>

/* pending reports a call to a function the runtime does not have yet;
 * unused when only butler_hub_server() is missing. */
static _Noreturn void pending(const char *fn) __attribute__((unused));

static _Noreturn void
pending(const char *fn)
{
	fprintf(stderr,
	    "%s: not defined by this runtime yet "
	    "(tests/codegen/runtime_pending.c)\n",
	    fn);
	abort();
}

#ifdef BUTLER_PENDING_butler_hub_server
unsigned
butler_hub_server(
    const butler_hub *hub, const butler_spec *spec, unsigned server)
{
	(void)hub;
	(void)spec;
	return server;
}
#endif

#ifdef BUTLER_PENDING_butler_defer
int
butler_defer(
    butler_server *self, const butler_msg_desc *request, uint64_t *promise)
{
	(void)self;
	(void)request;
	(void)promise;
	pending(__func__);
}
#endif

#ifdef BUTLER_PENDING_butler_answer
int
butler_answer(butler_server *self, uint64_t promise,
    const butler_msg_desc *request, const void *reply, size_t size)
{
	(void)self;
	(void)promise;
	(void)request;
	(void)reply;
	(void)size;
	pending(__func__);
}
#endif

#ifdef BUTLER_PENDING_butler_fail
int
butler_fail(butler_server *self, uint64_t promise,
    const butler_msg_desc *request, int code)
{
	(void)self;
	(void)promise;
	(void)request;
	(void)code;
	pending(__func__);
}
#endif

#ifdef BUTLER_PENDING_butler_progress_promise
int
butler_progress_promise(butler_server *self, uint64_t promise,
    const butler_msg_desc *request, const void *progress, size_t size)
{
	(void)self;
	(void)promise;
	(void)request;
	(void)progress;
	(void)size;
	pending(__func__);
}
#endif

#ifdef BUTLER_PENDING_butler_promise_cancelled
bool
butler_promise_cancelled(const butler_server *self, uint64_t promise)
{
	(void)self;
	(void)promise;
	pending(__func__);
}
#endif

#ifdef BUTLER_PENDING_butler_promise_time_left_ms
int64_t
butler_promise_time_left_ms(const butler_server *self, uint64_t promise)
{
	(void)self;
	(void)promise;
	pending(__func__);
}
#endif

#ifdef BUTLER_PENDING_butler_call_wait
int
butler_call_wait(butler_hub *hub, unsigned server, unsigned kind,
    const void *msg, size_t size, int timeout_ms, void *reply,
    size_t reply_size)
{
	(void)hub;
	(void)server;
	(void)kind;
	(void)msg;
	(void)size;
	(void)timeout_ms;
	(void)reply;
	(void)reply_size;
	pending(__func__);
}
#endif

#ifdef BUTLER_PENDING_butler_send_after
int
butler_send_after(butler_hub *hub, unsigned server, unsigned kind,
    const void *msg, size_t size, unsigned delay_ms, unsigned period_ms,
    uint64_t *timer)
{
	(void)hub;
	(void)server;
	(void)kind;
	(void)msg;
	(void)size;
	(void)delay_ms;
	(void)period_ms;
	(void)timer;
	pending(__func__);
}
#endif
