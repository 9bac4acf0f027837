/* SPDX-License-Identifier: MIT */
/*
 * server.c — running one server instance: the thread and its libevent loop
 * for threaded servers, the drain for external-loop servers, what happens
 * to each record (handle it, or destroy it unhandled), and how an instance
 * finishes when its hub stops.
 */
#include "server.h"

#include "alloc.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

/* ---- which server the calling thread runs ----------------------------- */

static _Thread_local struct butler_server *current BUTLER__TLS;

/* Its address is unique to each thread: a thread identity that fits in an
 * atomic, unlike pthread_t. */
static _Thread_local char thread_token BUTLER__TLS;

static uintptr_t
me(void)
{
	return (uintptr_t)&thread_token;
}

static void
set_current(struct butler_server *srv)
{
	current = srv;
	if (srv != NULL)
		butler__send_set_inside(srv->env->router, &srv->ch);
	else
		butler__send_set_inside(NULL, NULL);
}

struct butler_server *
butler__server_current(void)
{
	return current;
}

butler_server *
butler_server_self(void)
{
	return current;
}

bool
butler__server_owned_by_me(const struct butler_server *srv)
{
	return srv->desc->loop == BUTLER_LOOP_EXTERNAL
	    && atomic_load(&srv->owner) == me();
}

/* ---- construction ----------------------------------------------------- */

static int drop(void *ctx, struct butler__rec *rec);
static void discard(void *ctx, struct butler__rec *rec, int why);

static void
arm_timer(void *ctx, uint64_t wait_ns)
{
	struct butler_server *srv = ctx;
	struct timeval tv;

	if (srv->request_timer == NULL)
		return;
	if (wait_ns == UINT64_MAX) {
		evtimer_del(srv->request_timer);
		return;
	}
	tv.tv_sec = (time_t)(wait_ns / 1000000000u);
	tv.tv_usec = (suseconds_t)(wait_ns % 1000000000u) / 1000;
	evtimer_add(srv->request_timer, &tv);
}

int
butler__server_init(struct butler_server *srv, struct butler__serverenv *env,
    const struct butler__route *route, const struct butler__handlers *handlers,
    unsigned id, unsigned instance, unsigned index, size_t max_record)
{
	const butler_server_desc *desc = route->desc;
	int rv;

	memset(srv, 0, sizeof *srv);
	srv->env = env;
	srv->desc = desc;
	srv->handlers = handlers;
	srv->kind_msg = route->kind_msg;
	srv->n_kinds = desc->n_accepts;
	srv->dispatch = desc->dispatch;
	srv->route = route;
	srv->max_record = max_record;
	srv->id = id;
	srv->instance = instance;
	srv->index = index;
	atomic_init(&srv->finished, false);
	atomic_init(&srv->owner, 0);
	atomic_init(&srv->busy, 0);
	/* Thread names are at most 15 bytes: keep the server's name and,
	 * for a pool, the instance number. */
	if (route->n > 1)
		snprintf(srv->name, sizeof srv->name, "%.10s/%u", desc->name,
		    instance % 10000u);
	else
		snprintf(srv->name, sizeof srv->name, "%.15s", desc->name);
	rv = butler__channel_init(
	    &srv->ch, desc->capacity, max_record, env->group);
	if (rv != BUTLER_OK)
		return rv;
	butler__channel_set_drop(&srv->ch, drop, srv);
	butler__channel_set_discard(&srv->ch, discard, srv);
	butler__channel_set_bound(&srv->ch, desc->max_queued);
	rv = butler__channel_set_kinds(
	    &srv->ch, srv->n_kinds, route->policy_queue, desc->capacity);
	if (rv != BUTLER_OK) {
		butler__channel_release(&srv->ch, NULL, NULL);
		return rv;
	}
	if (desc->share && route->n > 1 && desc->loop == BUTLER_LOOP_THREAD) {
		srv->take_buf = butler__malloc(max_record);
		rv = srv->take_buf != NULL
		    ? butler__channel_set_shared(&srv->ch)
		    : BUTLER_ENOMEM;
		if (rv != BUTLER_OK) {
			free(srv->take_buf);
			butler__channel_release(&srv->ch, NULL, NULL);
			return rv;
		}
		srv->take_cap = max_record;
	}
	rv = butler__requests_init(
	    &srv->rq, env->reqhub, srv, index, &srv->ch);
	if (rv != BUTLER_OK) {
		butler__channel_release(&srv->ch, NULL, NULL);
		free(srv->take_buf);
		return rv;
	}
	if (desc->loop == BUTLER_LOOP_THREAD) {
		srv->rq.arm = arm_timer;
		srv->rq.arm_ctx = srv;
	}
	return BUTLER_OK;
}

/* ---- records ---------------------------------------------------------- */

/* Frees a record's owned fields, and lets go of its binding; the record's
 * bytes stay in the lane. */
static inline void
destroy_payload(const butler_msg_desc *msg, struct butler__rec *rec)
{
	if (msg->destroy != NULL && butler__rec_payload_size(rec) > 0)
		msg->destroy(butler__rec_payload(rec));
	if (rec->flags & BUTLER__REC_BOUND) {
		butler_binding *b = butler__rec_ptr(rec);

		b->release(b);
	}
}

/* Counts and logs a handler's failure. */
static void
failed(struct butler_server *srv, const butler_msg_desc *msg, int rv)
{
	butler__count(&srv->ch.failed, 1);
	butler__log(srv->env->log, BUTLER_LOG_WARN,
	    "server '%s': handler for '%s' failed: %s (%d)", srv->name,
	    msg->name, butler_strerror(rv), rv);
}

/*
 * Runs the handler of a message (or request, or timer) record. The busy
 * word it publishes is all the watchdog needs: the monitor thread samples
 * it and times a run it sees twice (butler/monitor.c), so the consumer
 * reads no clock and makes no read-modify-write for it.
 */
static inline int
dispatch(struct butler_server *srv, struct butler__rec *rec, void *payload)
{
	/* The word holds the run's number whether busy or not (only the
	 * consumer writes it), so no separate counter is kept. */
	uint64_t run = (atomic_load_explicit(&srv->busy, memory_order_relaxed)
	                   & ~(uint64_t)BUTLER__BUSY_KIND_MASK)
	    + BUTLER__BUSY_ONE;
	int rv;

	atomic_store_explicit(
	    &srv->busy, run | rec->kind, memory_order_relaxed);
	rv = srv->dispatch(srv, srv->table, srv->user, rec->kind, payload);
	atomic_store_explicit(&srv->busy, run, memory_order_relaxed);
	return rv;
}

/* ---- timers ----------------------------------------------------------- */

#define TIMER_OF(n)                                                           \
	((struct butler__timer *)(void *)((char *)(n)-offsetof(               \
	    struct butler__timer, node)))

/* Keeps the loop's timer event on the earliest timer armed here. */
static void
arm_timer_ev(struct butler_server *srv)
{
	uint64_t wait;
	struct timeval tv;

	if (srv->timer_ev == NULL)
		return;
	wait = butler__heap_wait(&srv->timers, butler__now_ns());
	if (wait == UINT64_MAX) {
		evtimer_del(srv->timer_ev);
		return;
	}
	tv.tv_sec = (time_t)(wait / 1000000000u);
	tv.tv_usec = (suseconds_t)(wait % 1000000000u) / 1000;
	evtimer_add(srv->timer_ev, &tv);
}

/*
 * timer_arm arms timer t, just arrived (its `due` still the delay), on
 * srv; one that cannot be armed (the hub stops, no memory) is dropped.
 * A periodic timer's message is copied for each firing, so the first one
 * makes sure srv has the room.
 */
static void
timer_arm(struct butler_server *srv, struct butler__timer *t)
{
	if (t->period_ns != 0 && srv->scratch == NULL)
		srv->scratch = butler__malloc(srv->max_record);
	if (butler__channel_state(&srv->ch) != BUTLER__OPEN
	    || butler__timer_cancelled(t)
	    || (t->period_ns != 0 && srv->scratch == NULL)
	    || butler__heap_reserve(&srv->timers) != BUTLER_OK) {
		butler__timer_drop(srv->env->timers, t);
		return;
	}
	t->node.due += butler__now_ns();
	butler__heap_push(&srv->timers, &t->node);
	if (t->node.at == 0)
		arm_timer_ev(srv);
}

/*
 * fire_timers delivers the messages of the timers that are due, each as
 * if just sent to srv (counted as sent, then handled or failed); a
 * periodic one is armed again, skipping periods it missed. Nothing fires
 * once the hub stops: a timer due then is dropped.
 */
static void
fire_timers(struct butler_server *srv)
{
	uint64_t now = butler__now_ns();
	struct butler__heap_node *n;

	while ((n = butler__heap_top(&srv->timers)) != NULL && n->due <= now) {
		struct butler__timer *t = TIMER_OF(n);
		struct butler__rec r = { 0, (uint16_t)t->kind, 0 };
		void *payload = t->payload;
		int rv;

		butler__heap_remove(&srv->timers, n);
		if (butler__channel_state(&srv->ch) != BUTLER__OPEN
		    || (t->period_ns == 0 ? !butler__timer_claim(t)
		                          : butler__timer_cancelled(t))) {
			butler__timer_drop(srv->env->timers, t);
			continue;
		}
		if (t->period_ns != 0) {
			memcpy(srv->scratch, t->payload, t->size);
			payload = srv->scratch;
		}
		butler__count(&srv->ch.local_sent, 1);
		rv = dispatch(srv, &r, payload);
		if (rv == 0)
			butler__count(&srv->ch.handled, 1);
		else
			failed(srv, t->msg, rv);
		if (t->period_ns == 0) {
			if (t->msg->destroy != NULL && t->size > 0)
				t->msg->destroy(payload);
			butler__timer_free(srv->env->timers, t);
			continue;
		}
		t->node.due += t->period_ns;
		if (t->node.due <= now)
			t->node.due = now + t->period_ns;
		butler__heap_push(&srv->timers, &t->node);
	}
	arm_timer_ev(srv);
}

/* drop_timers drops every timer armed on srv (its hub stops). */
static void
drop_timers(struct butler_server *srv)
{
	struct butler__heap_node *n;

	while ((n = butler__heap_top(&srv->timers)) != NULL) {
		butler__heap_remove(&srv->timers, n);
		butler__timer_drop(srv->env->timers, TIMER_OF(n));
	}
	arm_timer_ev(srv);
}

/* start_tick arms srv's own tick, if its spec declares one. */
static int
start_tick(struct butler_server *srv)
{
	struct butler__timer *t;
	uint64_t period = (uint64_t)srv->desc->tick_ms * 1000000u;
	int rv;

	if (srv->desc->tick_kind == 0)
		return BUTLER_OK;
	rv = butler__timer_new(srv->env->timers,
	    srv->kind_msg[srv->desc->tick_kind], srv->desc->tick_kind, NULL,
	    srv->kind_msg[srv->desc->tick_kind]->size, period, period, &t);
	if (rv == BUTLER_OK)
		timer_arm(srv, t);
	return rv;
}

/* Adds one to a counter only the consumer writes. */
static inline void
count_one(atomic_uint_fast64_t *c)
{
	atomic_store_explicit(c,
	    atomic_load_explicit(c, memory_order_relaxed) + 1,
	    memory_order_relaxed);
}

/*
 * discard destroys, unhandled, a record that a policy or a purge took out
 * (on any thread): a request's caller gets the matching status.
 */
static void
discard(void *ctx, struct butler__rec *rec, int why)
{
	static const int status[] = {
		[BUTLER__DISCARD_EVICTED] = BUTLER_EDROPPED,
		[BUTLER__DISCARD_REPLACED] = BUTLER_EREPLACED,
		[BUTLER__DISCARD_PURGED] = BUTLER_ECANCELED,
	};
	struct butler_server *srv = ctx;
	struct butler__kind_count *kc = &srv->ch.kinds[rec->kind];

	if (rec->flags & BUTLER__REC_REQUEST)
		butler__request_refuse(rec, status[why]);
	destroy_payload(srv->kind_msg[rec->kind], rec);
	switch (why) {
	case BUTLER__DISCARD_EVICTED:
		butler__kind_add(&srv->ch.evicted, 1);
		butler__kind_add(&kc->dropped, 1);
		break;
	case BUTLER__DISCARD_REPLACED:
		butler__kind_add(&srv->ch.replaced, 1);
		butler__kind_add(&kc->replaced, 1);
		break;
	default:
		butler__kind_add(&srv->ch.purged, 1);
		butler__kind_add(&kc->purged, 1);
	}
}

/* consume_other handles what is not a plain message: progress for our
 * calls, timers, requests, kinds the dispatcher does not know, purged
 * records, and anything while metrics are on or a purge waits. */
static __attribute__((noinline)) int
consume_other(struct butler_server *srv, struct butler__rec *rec)
{
	const butler_msg_desc *msg;
	struct butler__kind_count *kc;
	uint64_t t0 = 0;
	void *payload, *token = NULL;
	int rv;

	if (rec->flags & BUTLER__REC_CREDIT)
		butler__channel_credit_back(&srv->ch);
	if (rec->flags & BUTLER__REC_PROGRESS) {
		butler__requests_progress(&srv->rq, rec, true);
		return BUTLER__TOOK_OTHER;
	}
	if (rec->flags & BUTLER__REC_TIMER) {
		timer_arm(srv, butler__rec_timer(rec));
		return BUTLER__TOOK_OTHER;
	}
	if (rec->kind - 1u >= srv->n_kinds) {
		/* A corrupted record: its layout is unknown, so it is not
		 * dispatched and nothing in it is freed. */
		butler__count(&srv->ch.failed, 1);
		butler__log(srv->env->log, BUTLER_LOG_ERROR,
		    "server '%s': record of unknown kind %u dropped",
		    srv->name, (unsigned)rec->kind);
		return BUTLER__TOOK_OTHER;
	}
	/* A purge waits: carry it out before this record is handled (it
	 * may be one of those it purges). */
	if (atomic_load_explicit(&srv->ch.fast_kinds, memory_order_relaxed)
	    != srv->n_kinds)
		butler__channel_apply_purges(&srv->ch, false, rec);
	if (rec->flags & BUTLER__REC_PURGED) {
		discard(srv, rec, BUTLER__DISCARD_PURGED);
		return BUTLER__TOOK_OTHER;
	}
	msg = srv->kind_msg[rec->kind];
	kc = &srv->ch.kinds[rec->kind];
	payload = butler__rec_payload(rec);
	if (rec->flags & BUTLER__REC_BOUND) {
		butler_binding *b = butler__rec_ptr(rec);

		token = b->enter(b);
		if (token == NULL) {
			/* What it was bound to is gone. */
			destroy_payload(msg, rec);
			butler__count(&srv->ch.dropped, 1);
			butler__kind_add(&kc->dropped, 1);
			return BUTLER__TOOK_OTHER;
		}
	}
	if ((rec->flags & BUTLER__REC_STAMPED) && kc->queue != NULL) {
		uint64_t sent = *butler__rec_stamp(rec);

		t0 = butler__now_ns();
		butler__hist_add(kc->queue, t0 > sent ? t0 - sent : 0);
	}
	if (rec->flags & BUTLER__REC_REQUEST) {
		if (!butler__request_begin(&srv->rq, rec)) {
			/* Its caller has gone: not worth a handler. */
			destroy_payload(msg, rec);
			butler__count(&srv->ch.abandoned, 1);
			butler__kind_add(&kc->abandoned, 1);
			return BUTLER__TOOK_OTHER;
		}
		rv = dispatch(srv, rec, payload);
		butler__request_end(&srv->rq, rv);
	} else {
		rv = dispatch(srv, rec, payload);
	}
	if (token != NULL) {
		butler_binding *b = butler__rec_ptr(rec);

		b->leave(b, token);
	}
	destroy_payload(msg, rec);
	if (t0 != 0) {
		uint64_t t1 = butler__now_ns();

		butler__hist_add(kc->handler, t1 - t0);
		count_one(rv == 0 ? &kc->handled : &kc->failed);
	}
	if (rv != 0) {
		failed(srv, msg, rv);
		return BUTLER__TOOK_OTHER;
	}
	return BUTLER__TOOK_HANDLED;
}

/*
 * consume handles one record on the consumer's thread; inlined into the
 * drain. A plain message is a dispatch and a destroy, nothing more.
 */
static inline int
consume(void *ctx, struct butler__rec *rec)
{
	struct butler_server *srv = ctx;
	const butler_msg_desc *msg;
	int rv;

	/* fast_kinds is n_kinds, or 0 while a purge waits. */
	if (__builtin_expect(rec->flags != 0
	            || rec->kind - 1u >= atomic_load_explicit(
	                   &srv->ch.fast_kinds, memory_order_relaxed),
	        0))
		return consume_other(srv, rec);
	rv = dispatch(srv, rec, rec + 1);
	msg = srv->kind_msg[rec->kind];
	if (msg->destroy != NULL)
		msg->destroy(rec + 1);
	if (__builtin_expect(rv != 0, 0)) {
		failed(srv, msg, rv);
		return BUTLER__TOOK_OTHER;
	}
	return BUTLER__TOOK_HANDLED;
}

/* raw_dispatch is the dispatcher of a server with a generic handler. */
static int
raw_dispatch(butler_server *self, const void *table, void *user, unsigned kind,
    void *msg)
{
	(void)table;
	return self->handlers->raw(
	    self, kind, self->kind_msg[kind], msg, user);
}

/* The handler table and dispatcher srv runs with, once started. */
static void
take_handlers(struct butler_server *srv)
{
	srv->table = srv->handlers->table;
	srv->user = srv->handlers->user;
	if (srv->handlers->raw != NULL)
		srv->dispatch = raw_dispatch;
}

/*
 * take_shared copies the next record for srv into its buffer: from its own
 * inbox, or, when that is empty, from a busy sibling's (work sharing).
 */
static bool
take_shared(struct butler_server *srv)
{
	const struct butler__route *rt = srv->route;
	struct butler__channel *const *inbox = srv->env->router->inbox;

	if (butler__channel_take_one(
	        &srv->ch, srv->take_buf, srv->take_cap, false))
		return true;
	for (unsigned i = 1; i < rt->n; i++) {
		unsigned at = rt->first + (srv->instance + i) % rt->n;

		if (butler__channel_take_one(
		        inbox[at], srv->take_buf, srv->take_cap, true))
			return true;
	}
	return false;
}

/*
 * drain_shared is drain() for an instance of a sharing pool: each record is
 * copied out of its lane before it is handled (so that the lane goes on
 * while a long handler runs, and a sibling can take what waits behind it),
 * and an instance whose own inbox is empty takes from its siblings'.
 */
static unsigned
drain_shared(
    struct butler_server *srv, unsigned max, uint64_t budget_ns, bool *more)
{
	uint64_t start = butler__now_ns();
	unsigned done = 0, handled = 0;

	*more = false;
	/* Closed is looked at before every take: a sibling's queue is taken
	 * from only while the hub is open (what it holds at a stop is its own
	 * finish's, handled or destroyed as the stop says), and a long handler
	 * may have run through the close. */
	while (done < max) {
		if (butler__channel_state(&srv->ch) == BUTLER__CLOSED) {
			*more = true;
			break;
		}
		if (!take_shared(srv))
			break;
		handled += consume(srv, srv->take_buf) == BUTLER__TOOK_HANDLED;
		if ((++done & 31) == 0
		    && butler__now_ns() - start >= budget_ns) {
			*more = true;
			break;
		}
	}
	if (done >= max)
		*more = true;
	if (!*more)
		for (struct butler__lane *lane = atomic_load(&srv->ch.lanes);
		     lane != NULL;) {
			struct butler__lane *next = atomic_load(&lane->next);

			butler__channel_reclaim(&srv->ch, lane);
			lane = next;
		}
	butler__channel_drain_end(&srv->ch, start, done, handled);
	return done;
}

/* drain takes up to max records of srv's inbox, consume inlined. */
static unsigned
drain(struct butler_server *srv, unsigned max, uint64_t budget_ns, bool *more)
{
	if (srv->ch.shared)
		return drain_shared(srv, max, budget_ns, more);
	return butler__channel_drain_inline(&srv->ch, max, budget_ns,
	    BUTLER__DRAIN_STOP_ON_CLOSE, consume, srv, more);
}

/* drop destroys one record unhandled (a stop that discards). */
static int
drop(void *ctx, struct butler__rec *rec)
{
	struct butler_server *srv = ctx;

	if (rec->flags & BUTLER__REC_TIMER) {
		butler__timer_drop(srv->env->timers, butler__rec_timer(rec));
		return BUTLER__TOOK_OTHER;
	}
	if (rec->flags & BUTLER__REC_PROGRESS) {
		if (srv->calls_done)
			butler__request_drop_progress(rec);
		else
			butler__requests_progress(&srv->rq, rec, false);
		return BUTLER__TOOK_OTHER;
	}
	if (rec->kind - 1u >= srv->n_kinds) {
		butler__count(&srv->ch.failed, 1);
		return BUTLER__TOOK_OTHER;
	}
	if (rec->flags & BUTLER__REC_PURGED) {
		discard(srv, rec, BUTLER__DISCARD_PURGED);
		return BUTLER__TOOK_OTHER;
	}
	if (rec->flags & BUTLER__REC_REQUEST)
		butler__request_refuse(rec, BUTLER_ESTOPPED);
	destroy_payload(srv->kind_msg[rec->kind], rec);
	butler__count(&srv->ch.dropped, 1);
	butler__kind_add(&srv->ch.kinds[rec->kind].dropped, 1);
	return BUTLER__TOOK_OTHER;
}

/* Takes and delivers the answers posted to srv's inbox, after those a
 * bounded dispatch left. */
static void
take_answers(struct butler_server *srv)
{
	struct butler__node *left = srv->answers_left;

	if (left != NULL) {
		srv->answers_left = srv->answers_last = NULL;
		butler__requests_take_answers(&srv->rq, left);
	}
	if (atomic_load_explicit(&srv->ch.nodes, memory_order_relaxed) != NULL)
		butler__requests_take_answers(
		    &srv->rq, butler__channel_take(&srv->ch));
}

/*
 * take_answers_max is take_answers() for an external loop's dispatch: it
 * delivers at most max answers, oldest first, and keeps the rest for the
 * next dispatch, so that a flood of replies holds the owner's loop no
 * longer than a flood of messages does. Returns whether some are left.
 */
static bool
take_answers_max(struct butler_server *srv, unsigned max)
{
	struct butler__node *list, *cut;

	if (atomic_load_explicit(&srv->ch.nodes, memory_order_relaxed)
	    != NULL) {
		struct butler__node *fresh = butler__channel_take(&srv->ch);

		if (srv->answers_left == NULL)
			srv->answers_left = fresh;
		else
			srv->answers_last->next = fresh;
		for (srv->answers_last = fresh;
		     srv->answers_last->next != NULL;)
			srv->answers_last = srv->answers_last->next;
	}
	list = cut = srv->answers_left;
	if (list == NULL)
		return false;
	for (unsigned i = 1; i < max && cut->next != NULL; i++)
		cut = cut->next;
	/* The rest is put aside before any callback runs. */
	srv->answers_left = cut->next;
	if (srv->answers_left == NULL)
		srv->answers_last = NULL;
	cut->next = NULL;
	butler__requests_take_answers(&srv->rq, list);
	return srv->answers_left != NULL;
}

/* Carries out the purges other threads asked for, if any wait: a waiter
 * may wait for them while nothing is queued. */
static inline void
apply_purges(struct butler_server *srv)
{
	if (atomic_load_explicit(&srv->ch.fast_kinds, memory_order_relaxed)
	    != srv->n_kinds)
		butler__channel_apply_purges(&srv->ch, false, NULL);
}

/* Reports srv quiet to a stopping hub when it owes and awaits nothing. */
static void
try_quiet(struct butler_server *srv)
{
	if (butler__channel_state(&srv->ch) != BUTLER__OPEN)
		(void)butler__channel_try_quiet(
		    &srv->ch, butler__requests_idle(&srv->rq));
}

void
butler__server_check_quiet(struct butler_server *srv)
{
	try_quiet(srv);
}

/*
 * finish is the end of an instance, on its consuming thread, once the hub
 * has decided to close everything: what is queued is handled (DRAIN: the
 * stragglers of a stop that went quiet) or destroyed (DISCARD), every
 * request it holds or made ends, then on_stop runs.
 */
static void
finish(struct butler_server *srv)
{
	butler__consume_fn fn
	    = atomic_load(&srv->env->policy) == BUTLER_STOP_DRAIN ? consume
	                                                          : drop;
	bool more;

	/* Pairs with the senders' publish and their second look at `open`:
	 * every record published before the hub closed is seen by the drain
	 * below, and a later one by its sender (see butler__push()). */
	butler__membarrier();
	/* A purge asked before the end still purges; later ones are refused.
	 */
	butler__channel_apply_purges(&srv->ch, true, NULL);
	/* Answers that arrived are delivered, not ended by the stop. */
	take_answers(srv);
	(void)butler__channel_drain(
	    &srv->ch, UINT32_MAX, UINT64_MAX, 0, fn, srv, &more);
	butler__channel_close_pq(&srv->ch, fn, srv);
	butler__requests_finish(&srv->rq, BUTLER_ESTOPPED);
	drop_timers(srv);
	srv->calls_done = true;
	if (srv->handlers->on_stop != NULL)
		srv->handlers->on_stop(srv, srv->handlers->user);
	/* Records from late racers are destroyed by the racer itself or by
	 * the hub's sweep. */
	butler__channel_retire(&srv->ch);
	atomic_store(&srv->finished, true);
	butler__stopgroup_ring(srv->env->group);
}

/* ---- threaded servers ------------------------------------------------- */

/* Idle turns after which a spin that kept failing is tried again. */
#define SPIN_RETRY 64u
/* The shortest watch worth a clock reading. */
#define SPIN_MIN_NS 1000u

/*
 * spin is the spin policy: before paying for a sleep and a wake-up, watch
 * the inbox for a moment and drain what arrives right here. It watches for
 * about what a wake-up costs (measured: on_wake()), up to the configured
 * spin_us, so that a spin that succeeds saves that cost and one that fails
 * loses at most as much again; and it adapts, so that spinning is never
 * much worse than sleeping: a failed watch halves the next one, down to
 * none at all for SPIN_RETRY idle turns (on a loaded machine, where the
 * sender needs this CPU, spins fail and stop), a successful one restores
 * it. The whole turn stays within the batch budget, so timers keep their
 * turn. Returns what drain() says of work left.
 */
static bool
spin(struct butler_server *srv)
{
	struct butler__serverenv *env = srv->env;
	uint64_t target
	    = srv->wake_ns > SPIN_MIN_NS ? srv->wake_ns : SPIN_MIN_NS;
	uint64_t start, until;
	bool more = false, got = false;

	if (target > srv->spin_ns)
		target = srv->spin_ns;
	if (srv->spin_window == 0) {
		if (srv->spin_off > 0) {
			srv->spin_off--;
			return false;
		}
		srv->spin_window = target;
	}
	start = butler__now_ns();
	until = start + srv->spin_window;
	while (!more && butler__channel_spin(&srv->ch, until)
	    && butler__channel_state(&srv->ch) != BUTLER__CLOSED) {
		got = true;
		take_answers(srv);
		(void)drain(srv, env->batch_max, env->batch_budget_ns, &more);
		until = butler__now_ns() + srv->spin_window;
		if (until - start > env->batch_budget_ns + srv->spin_window)
			more = true; /* yield to the loop now */
	}
	if (got) {
		srv->spin_window = target;
	} else if ((srv->spin_window /= 2) < SPIN_MIN_NS) {
		srv->spin_window = 0;
		srv->spin_off = SPIN_RETRY;
	}
	return more;
}

static void
process(struct butler_server *srv)
{
	struct butler__serverenv *env = srv->env;
	bool more;

	if (butler__channel_state(&srv->ch) == BUTLER__CLOSED) {
		event_base_loopbreak(srv->base);
		return;
	}
	take_answers(srv);
	apply_purges(srv);
	(void)drain(srv, env->batch_max, env->batch_budget_ns, &more);
	if (srv->spin_ns > 0 && !more)
		more = spin(srv);
	if (butler__channel_state(&srv->ch) == BUTLER__CLOSED) {
		event_base_loopbreak(srv->base);
		return;
	}
	/* Yield to the loop so its timers and I/O run, and come back on the
	 * next turn: a zero timeout fires after the loop has polled, unlike
	 * event_active(), which would run again before anything else. */
	if (more || !butler__channel_idle(&srv->ch)) {
		static const struct timeval zero = { 0, 0 };
		event_add(srv->rearm_ev, &zero);
		return;
	}
	try_quiet(srv);
}

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct butler_server *srv = arg;
	uint64_t cost;

	(void)fd;
	(void)what;
	butler__channel_ack(&srv->ch);
	/* What sleeping cost this time, for the spin policy: a moving
	 * average of 1/8 of each new measure. */
	if (srv->spin_ns > 0 && (cost = butler__channel_wake_cost(&srv->ch)))
		srv->wake_ns = srv->wake_ns == 0
		    ? cost
		    : srv->wake_ns - srv->wake_ns / 8 + cost / 8;
	process(srv);
}

static void
on_rearm(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	process(arg);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	fire_timers(arg);
}

static void
on_request_timer(evutil_socket_t fd, short what, void *arg)
{
	struct butler_server *srv = arg;

	(void)fd;
	(void)what;
	butler__requests_expire(&srv->rq, butler__now_ns());
	/* A timeout may have been the last thing this server waited for. */
	if (butler__channel_idle(&srv->ch))
		try_quiet(srv);
	else
		process(srv);
}

/* Reports on_start's result and waits for the hub's go or abort. */
static bool
report_start(struct butler_server *srv, int result)
{
	struct butler__serverenv *env = srv->env;
	bool go;

	pthread_mutex_lock(&env->lock);
	srv->start_result = result;
	srv->start_reported = true;
	pthread_cond_broadcast(&env->cond);
	while (env->gate == BUTLER__GATE_WAIT)
		pthread_cond_wait(&env->cond, &env->lock);
	go = env->gate == BUTLER__GATE_GO;
	pthread_mutex_unlock(&env->lock);
	return go;
}

/*
 * new_base makes the server's libevent loop. libevent exits the process
 * when it cannot make a loop's signal socketpair, and has no way to do
 * without one (2.1), so under one process-wide lock the fds it needs are
 * made and closed first: out of fds becomes BUTLER_ESYS, not exit(1). The
 * loops are lock-free (EVENT_BASE_FLAG_NOLOCK): a server's base is used
 * from its own thread only, and that saves the notification fd.
 */
static pthread_mutex_t base_lock = PTHREAD_MUTEX_INITIALIZER;

static struct event_base *
new_base(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base = NULL;
	int probe[2], epfd;

	if (cfg == NULL)
		return NULL;
	if (BUTLER__FAULT(BUTLER__FAULT_FD)) {
		event_config_free(cfg);
		return NULL;
	}
	(void)event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
	/* Only epoll: the other backends would fall back silently. */
	(void)event_config_avoid_method(cfg, "poll");
	(void)event_config_avoid_method(cfg, "select");
	pthread_mutex_lock(&base_lock);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, probe) == 0) {
		epfd = dup(probe[0]);
		close(probe[0]);
		close(probe[1]);
		if (epfd >= 0) {
			close(epfd);
			base = event_base_new_with_config(cfg);
		}
	}
	pthread_mutex_unlock(&base_lock);
	event_config_free(cfg);
	return base;
}

static int
loop_setup(struct butler_server *srv)
{
	srv->base = new_base();
	if (srv->base == NULL)
		return BUTLER_ESYS;
	srv->wake_ev = event_new(
	    srv->base, srv->ch.fd, EV_READ | EV_PERSIST, on_wake, srv);
	srv->rearm_ev = evtimer_new(srv->base, on_rearm, srv);
	srv->request_timer = evtimer_new(srv->base, on_request_timer, srv);
	srv->timer_ev = evtimer_new(srv->base, on_timer, srv);
	if (srv->wake_ev == NULL || srv->rearm_ev == NULL
	    || srv->request_timer == NULL || srv->timer_ev == NULL
	    || event_add(srv->wake_ev, NULL) != 0)
		return BUTLER_ESYS;
	return BUTLER_OK;
}

static void
loop_teardown(struct butler_server *srv)
{
	if (srv->timer_ev != NULL)
		event_free(srv->timer_ev);
	if (srv->request_timer != NULL)
		event_free(srv->request_timer);
	if (srv->rearm_ev != NULL)
		event_free(srv->rearm_ev);
	if (srv->wake_ev != NULL)
		event_free(srv->wake_ev);
	if (srv->base != NULL)
		event_base_free(srv->base);
	srv->timer_ev = srv->request_timer = srv->rearm_ev = srv->wake_ev
	    = NULL;
	srv->base = NULL;
}

static void *
server_main(void *arg)
{
	struct butler_server *srv = arg;
	const struct butler__handlers *h = srv->handlers;
	int rv;

	(void)pthread_setname_np(pthread_self(), srv->name);
	set_current(srv);
	take_handlers(srv);
	rv = loop_setup(srv);
	if (rv != BUTLER_OK)
		butler__log(srv->env->log, BUTLER_LOG_ERROR,
		    "server '%s': cannot set up its libevent loop (%s)",
		    srv->name, strerror(errno));
	else if (h->on_start != NULL)
		rv = h->on_start(srv, h->user);
	if (rv == BUTLER_OK)
		rv = start_tick(srv);
	if (rv != BUTLER_OK && rv != BUTLER_ESYS)
		butler__log(srv->env->log, BUTLER_LOG_ERROR,
		    "server '%s': on_start failed: %s (%d)", srv->name,
		    butler_strerror(rv), rv);

	if (report_start(srv, rv)) {
		/* Anything queued before the start is waiting for us. */
		process(srv);
		event_base_dispatch(srv->base);
	}
	if (rv == BUTLER_OK) {
		finish(srv);
	} else {
		srv->calls_done = true;
		butler__channel_retire(&srv->ch);
		atomic_store(&srv->finished, true);
		butler__stopgroup_ring(srv->env->group);
	}
	loop_teardown(srv);
	set_current(NULL);
	return NULL;
}

int
butler__server_spawn(struct butler_server *srv)
{
	sigset_t all, old;
	int rc;

	/* Server threads take no asynchronous signals: a Ctrl-C belongs to
	 * the application's own thread. */
	if (BUTLER__FAULT(BUTLER__FAULT_THREAD))
		return BUTLER_ESYS;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&srv->thread, NULL, server_main, srv);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return BUTLER_ESYS;
	srv->thread_started = true;
	return BUTLER_OK;
}

void
butler__server_join(struct butler_server *srv)
{
	if (srv->thread_started) {
		pthread_join(srv->thread, NULL);
		srv->thread_started = false;
	}
}

void
butler__server_wake(struct butler_server *srv)
{
	if (srv->desc->loop == BUTLER_LOOP_THREAD)
		butler__channel_ring(&srv->ch);
}

/* ---- external servers ------------------------------------------------- */

int
butler__server_start_external(struct butler_server *srv)
{
	struct butler_server *outer = current;
	int rv = BUTLER_OK;

	atomic_store(&srv->owner, me());
	take_handlers(srv);
	if (srv->handlers->on_start != NULL) {
		set_current(srv);
		rv = srv->handlers->on_start(srv, srv->handlers->user);
		set_current(outer);
	}
	if (rv == BUTLER_OK)
		rv = start_tick(srv);
	srv->start_result = rv;
	srv->start_reported = true;
	if (rv != BUTLER_OK) {
		srv->calls_done = true;
		butler__channel_retire(&srv->ch);
		atomic_store(&srv->finished, true);
	}
	return rv;
}

void
butler__server_finish_external(struct butler_server *srv)
{
	struct butler_server *outer = current;

	if (atomic_load(&srv->finished))
		return;
	butler__channel_become_consumer(&srv->ch);
	set_current(srv);
	finish(srv);
	set_current(outer);
	butler__channel_leave_consumer(&srv->ch);
}

int
butler__server_drain_external(
    struct butler_server *srv, unsigned max, bool all, unsigned *handled)
{
	struct butler__serverenv *env = srv->env;
	struct butler_server *outer;
	unsigned n = 0;
	int rv = BUTLER_OK;
	bool more, left = false;

	*handled = 0;
	if (!butler__channel_try_consume(&srv->ch))
		return BUTLER_EBUSY;
	if (atomic_load(&srv->finished)
	    || butler__channel_state(&srv->ch) == BUTLER__CLOSED) {
		rv = BUTLER_ECLOSED;
		goto out;
	}
	outer = current;
	set_current(srv);
	atomic_store(&srv->owner, me());
	butler__channel_ack(&srv->ch);
	do {
		butler__requests_expire(&srv->rq, butler__now_ns());
		fire_timers(srv);
		if (all)
			take_answers(srv);
		else
			left = take_answers_max(srv, max);
		apply_purges(srv);
		n += drain(srv, all ? UINT32_MAX : max,
		    all ? UINT64_MAX : env->batch_budget_ns, &more);
	} while (all && (more || !butler__channel_empty(&srv->ch)));
	/* Work left (or a sender that slipped in while we went idle): keep
	 * the fd readable so the owner's loop comes back. */
	if (more || left || !butler__channel_idle(&srv->ch))
		butler__channel_ring(&srv->ch);
	else
		try_quiet(srv);
	set_current(outer);
out:
	butler__channel_leave_consumer(&srv->ch);
	*handled = n;
	return rv;
}

int
butler__server_next_timeout_ms(struct butler_server *srv)
{
	uint64_t now = butler__now_ns();
	int calls = butler__requests_next_timeout_ms(&srv->rq, now);
	int timers = butler__heap_ms(butler__heap_wait(&srv->timers, now));

	if (calls < 0)
		return timers;
	return timers < 0 || calls < timers ? calls : timers;
}

/* ---- after the threads ------------------------------------------------ */

void
butler__server_sweep(struct butler_server *srv)
{
	bool more;

	butler__channel_become_consumer(&srv->ch);
	srv->calls_done = true;
	butler__channel_apply_purges(&srv->ch, true, NULL);
	(void)butler__channel_drain(
	    &srv->ch, UINT32_MAX, UINT64_MAX, 0, drop, srv, &more);
	butler__channel_close_pq(&srv->ch, drop, srv);
	butler__requests_drop_answers(srv->answers_left);
	srv->answers_left = srv->answers_last = NULL;
	butler__requests_drop_answers(butler__channel_take(&srv->ch));
	butler__channel_retire(&srv->ch);
	butler__channel_leave_consumer(&srv->ch);
	/* An external server's fd may still sit in its owner's poll set; it
	 * is closed by butler_hub_free(). */
	if (srv->desc->loop == BUTLER_LOOP_THREAD)
		butler__channel_close_fd(&srv->ch);
}

void
butler__server_release(struct butler_server *srv)
{
	srv->calls_done = true;
	butler__channel_release(&srv->ch, drop, srv);
	butler__requests_drop_answers(srv->answers_left);
	srv->answers_left = srv->answers_last = NULL;
	butler__requests_drop_answers(butler__channel_take(&srv->ch));
	butler__requests_release(&srv->rq);
	drop_timers(srv);
	butler__heap_release(&srv->timers);
	free(srv->scratch);
	free(srv->take_buf);
}

void
butler__server_stuck(struct butler_server *srv, butler_stuck_info *info)
{
	unsigned kind
	    = (unsigned)(atomic_load(&srv->busy) & BUTLER__BUSY_KIND_MASK);
	uint64_t since = atomic_load(&srv->ch.clock_ns), now;

	memset(info, 0, sizeof *info);
	info->server = srv->desc->name;
	info->instance = srv->instance;
	if (kind != 0 && kind <= srv->desc->n_accepts) {
		now = butler__now_ns();
		info->message = srv->kind_msg[kind]->name;
		info->handler_ms = now > since ? (now - since) / 1000000u : 0;
	}
	info->queued = butler__channel_depth(&srv->ch);
	butler__requests_counts(
	    &srv->rq, &info->promises, &info->calls_pending);
}

/* ---- accessors -------------------------------------------------------- */

butler_hub *
butler_server_hub(const butler_server *self)
{
	return self->env->hub;
}

unsigned
butler_server_id(const butler_server *self)
{
	return self->id;
}

unsigned
butler_server_instance(const butler_server *self)
{
	return self->instance;
}

const char *
butler_server_name(const butler_server *self)
{
	return self->desc->name;
}

struct event_base *
butler_server_base(butler_server *self)
{
	return self->base;
}
