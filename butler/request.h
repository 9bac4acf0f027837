/* SPDX-License-Identifier: MIT */
/*
 * butler/request.h — the request protocol, in one unit: tickets (what a
 * call reserves for its answer), each caller's table of pending calls with
 * their deadlines, each server's held requests and promises, answers,
 * progress, cancellation, blocking calls. Built on send.h; server.c calls it
 * through a few entry points (begin / end a request, take answers, take
 * progress, expire, finish).
 */
#ifndef BUTLER_INTERNAL_REQUEST_H
#define BUTLER_INTERNAL_REQUEST_H

#include "log.h"
#include "send.h"

/*
 * The part of a hub the request protocol needs: how to reach inboxes, the
 * room every ticket reserves for a reply, the blocking calls under way (for
 * listings), the log.
 */
struct butler__reqhub {
	const struct butler__router *router;
	const struct butler__logger *log;
	size_t reply_room; /* largest reply struct of the hub's specs */
	pthread_mutex_t waits_lock;
	struct butler__ticket *waits; /* blocking calls, for listings */
};

int butler__reqhub_init(struct butler__reqhub *h,
    const struct butler__router *router, const struct butler__logger *log,
    size_t reply_room);
void butler__reqhub_release(struct butler__reqhub *h);

struct butler__calls;    /* request.c: a caller's pending calls */
struct butler__promises; /* request.c: a server's deferred requests */

/*
 * The request state of one server instance: the calls it made (as a caller)
 * and the requests it holds (as a server). Only the instance's consuming
 * thread touches it, except listings, which take `lock`.
 */
struct butler__requests {
	struct butler__reqhub *hub;
	butler_server *owner; /* passed to callbacks as `self` */
	unsigned index;       /* its inbox in the router */
	struct butler__channel *inbox;
	pthread_mutex_t lock;              /* listings vs. table changes */
	struct butler__calls *calls;       /* made, awaiting answers */
	struct butler__promises *promises; /* held, deferred */
	struct butler__ticket *current;    /* held while its handler runs */
	int current_state;                 /* request.c: held, answered... */
	uint64_t current_promise;          /* when deferred */
	uint64_t next_id;                  /* of calls */
	uint64_t next_promise;
	/* Arms the owner's timer for the earliest deadline: wait_ns from now
	 * (0: due now), or UINT64_MAX for none. NULL for external servers,
	 * which ask butler__requests_next_timeout_ms() instead. */
	void (*arm)(void *ctx, uint64_t wait_ns);
	void *arm_ctx;
};

int butler__requests_init(struct butler__requests *rq,
    struct butler__reqhub *hub, butler_server *owner, unsigned index,
    struct butler__channel *inbox);
/* Frees everything; the instance has finished (every call has ended). */
void butler__requests_release(struct butler__requests *rq);

/* ---- the caller's side ------------------------------------------------ */

/* What a call asks for: the typed callbacks (NULL pthunk: no progress). */
struct butler__call_args {
	butler_reply_thunk thunk;
	void (*cb)(void);
	butler_progress_thunk pthunk;
	void (*pcb)(void);
	void *user;
};

/*
 * butler__call sends request (server, kind, msg, size) from rq's instance,
 * answered through `args` on its thread. *id names it. Codes as
 * butler_call().
 */
int butler__call(struct butler__requests *rq, unsigned server, unsigned kind,
    const void *msg, size_t size, int timeout_ms,
    const struct butler__call_args *args, uint64_t *id);

/* butler__call_wait is butler_call_wait() on the calling thread. */
int butler__call_wait(struct butler__reqhub *hub, unsigned server,
    unsigned kind, const void *msg, size_t size, int timeout_ms, void *reply,
    size_t reply_size);

/* butler__call_bind is butler_call_bind() for rq's instance. */
int butler__call_bind(
    struct butler__requests *rq, uint64_t id, butler_binding *binding);

/* butler__cancel is butler_cancel() for rq's instance. */
int butler__cancel(struct butler__requests *rq, uint64_t id);

/* butler__requests_take_answers delivers the answers posted to rq's inbox
 * (butler__channel_take()'s list). */
void butler__requests_take_answers(
    struct butler__requests *rq, struct butler__node *list);

/* butler__requests_progress delivers (deliver) or destroys a progress
 * record of one of rq's calls. */
void butler__requests_progress(
    struct butler__requests *rq, struct butler__rec *rec, bool deliver);

/* butler__requests_expire times out the calls whose deadline has passed. */
void butler__requests_expire(struct butler__requests *rq, uint64_t now_ns);

/* Milliseconds until the earliest deadline (0: due), -1 for none. */
int butler__requests_next_timeout_ms(
    struct butler__requests *rq, uint64_t now_ns);

/* ---- the server's side ------------------------------------------------ */

/*
 * butler__request_begin takes the request of record `rec` for its handler.
 * Returns false when its caller has already gone: the request is then
 * released, and the caller of this destroys the payload unhandled (counted
 * as abandoned).
 */
bool butler__request_begin(
    struct butler__requests *rq, const struct butler__rec *rec);

/*
 * butler__request_end ends what begin started, after the handler returned
 * rv: a request neither answered nor deferred is failed with rv (or
 * BUTLER_EHANDLER for 0); one deferred by a handler that failed is failed
 * with rv.
 */
void butler__request_end(struct butler__requests *rq, int rv);

/* butler__request_refuse answers the request of a record that will not be
 * handled (stop) with `status`. */
void butler__request_refuse(const struct butler__rec *rec, int status);

/* butler__request_drop_progress destroys a progress record unread (its
 * caller has finished). */
void butler__request_drop_progress(struct butler__rec *rec);

/* The public answers (hub.h), for rq's instance. */
int butler__reply(struct butler__requests *rq, const void *reply, size_t size);
int butler__defer(struct butler__requests *rq, const butler_msg_desc *request,
    uint64_t *promise);
int butler__answer(struct butler__requests *rq, uint64_t promise,
    const butler_msg_desc *request, const void *reply, size_t size);
int butler__fail(struct butler__requests *rq, uint64_t promise,
    const butler_msg_desc *request, int code);
int butler__progress(struct butler__requests *rq, uint64_t promise,
    const butler_msg_desc *request, const void *progress, size_t size);
bool butler__cancelled(struct butler__requests *rq, uint64_t promise);
int64_t butler__time_left_ms(struct butler__requests *rq, uint64_t promise);

/* ---- stop, listings --------------------------------------------------- */

/* True when rq's instance owes no answer and awaits none. */
bool butler__requests_idle(struct butler__requests *rq);

/* Counts for stuck reports: promises held, calls awaiting answers. */
void butler__requests_counts(
    struct butler__requests *rq, uint64_t *promises, uint64_t *calls);

/*
 * butler__requests_finish ends everything rq's instance still has open, at
 * stop: every promise is failed with `status`, answers already posted are
 * delivered, and every other call ends with `status` (its callback runs;
 * an answer still on its way is destroyed when it arrives).
 */
void butler__requests_finish(struct butler__requests *rq, int status);

/* butler__requests_drop_answers releases answers posted to a finished
 * instance (after its thread is gone). */
void butler__requests_drop_answers(struct butler__node *list);

/* One pending call, for butler_hub_pending(). */
struct butler__call_info {
	uint64_t id;     /* 0: a blocking call */
	unsigned caller; /* inbox index; UINT32_MAX: a blocking call */
	unsigned server; /* hub-wide server asked */
	const butler_msg_desc *request;
	uint64_t since_ns;
	uint64_t deadline_ns; /* UINT64_MAX: none */
	unsigned deferred_by; /* inbox index + 1 of the holder; 0: not */
	uint64_t deferred_ns; /* when it was deferred */
};

typedef void (*butler__call_info_fn)(
    const struct butler__call_info *info, void *ctx);

/* Lists rq's pending calls (under its lock); returns how many. */
size_t butler__requests_list(
    struct butler__requests *rq, butler__call_info_fn fn, void *ctx);

/* Lists the blocking calls under way; returns how many. */
size_t butler__waits_list(
    struct butler__reqhub *hub, butler__call_info_fn fn, void *ctx);

#endif /* BUTLER_INTERNAL_REQUEST_H */
