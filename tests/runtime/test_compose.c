/* SPDX-License-Identifier: MIT */
/*
 * test_compose.c — requests that compose: deferred answers, blocking calls
 * from any thread, cancellation that reaches the work, a stop that finishes
 * the work within a deadline, and statistics that add up.
 */
#include "fixture.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

/* Servers: a gateway, two back ends, and the client (external). */
enum { GATE = 0, BACK_A = 1, BACK_B = 2, CLIENT = 3 };

typedef void (*ask_reply_fn)(
    butler_server *self, int status, struct answer *reply, void *user);

static void
ask_thunk(
    butler_server *self, int status, void *reply, void (*cb)(void), void *user)
{
	((ask_reply_fn)cb)(self, status, reply, user);
}

static struct fx F;

static const butler_msg_desc *
ask_desc(void)
{
	return &F.msgs[M_ASK];
}

static void
sleep_us(uint64_t us)
{
	struct timespec ts
	    = { (time_t)(us / 1000000u), (long)(us % 1000000u) * 1000 };
	nanosleep(&ts, NULL);
}

/* A back end answers y = 2x, after delay_us. */
static int
back_ask(butler_server *self, void *user, struct ask *m)
{
	struct answer a = { .y = m->x * 2 };
	char note[32];

	(void)user;
	if (m->delay_us)
		sleep_us(m->delay_us);
	snprintf(note, sizeof note, "x=%llu", (unsigned long long)m->x);
	a.note = strdup(note);
	return butler_reply(self, &a, sizeof a);
}

/* Records what comes back to the client, on its thread. */
struct got {
	unsigned long answers, ok, other;
	int last_status;
	uint64_t last_y;
	char note[64];
};

static struct got G;

static void
on_client_answer(
    butler_server *self, int status, struct answer *reply, void *user)
{
	(void)self;
	(void)user;
	G.answers++;
	G.last_status = status;
	if (status == BUTLER_OK) {
		G.ok++;
		G.last_y = reply->y;
		snprintf(G.note, sizeof G.note, "%s", reply->note);
	} else {
		G.other++;
		cr_assert_null(reply);
	}
}

static int
client_call(butler_hub *hub, unsigned server, uint64_t x, uint64_t delay_us,
    int timeout_ms, uint64_t *id)
{
	struct ask a = { x, delay_us };

	return butler_call(hub, server, K_ASK, &a, sizeof a, timeout_ms,
	    ask_thunk, (void (*)(void))on_client_answer, NULL, id);
}

/* Runs the client's loop until `answers` answers have arrived. */
static void
pump(butler_hub *hub, unsigned long answers)
{
	int fd = butler_server_fd(hub, CLIENT);

	while (G.answers < answers) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int t = butler_server_next_timeout(hub, CLIENT);

		poll(&p, 1, t < 0 ? 1000 : t);
		ASSERT_OK(butler_server_drain(hub, CLIENT, 0, NULL));
	}
}

static butler_hub *
new_hub(unsigned capacity, const struct fx_handlers *gate,
    const struct fx_handlers *back, void *user)
{
	struct fx_handlers c = fx_handlers_default();
	butler_hub *hub;

	fx_init(&F, 4, capacity);
	F.servers[CLIENT].loop = BUTLER_LOOP_EXTERNAL;
	memset(&G, 0, sizeof G);
	ASSERT_OK(butler_hub_new(&hub, &F.spec));
	butler_hub_set_log(hub, fx_quiet, BUTLER_LOG_DEBUG, NULL);
	ASSERT_OK(fx_register(hub, GATE, gate, user));
	ASSERT_OK(fx_register(hub, BACK_A, back, user));
	ASSERT_OK(fx_register(hub, BACK_B, back, user));
	ASSERT_OK(fx_register(hub, CLIENT, &c, user));
	return hub;
}

/* After a stop: every message accepted has exactly one outcome. */
static void
assert_conserved(butler_hub *hub)
{
	for (unsigned s = 0; s < butler_server_count(hub); s++) {
		butler_stats st;

		ASSERT_OK(butler_server_stats(hub, s, &st));
		cr_assert_eq(st.sent,
		    st.handled + st.failed + st.dropped + st.abandoned,
		    "server %u: sent %llu != handled %llu + failed %llu + "
		    "dropped %llu + abandoned %llu (depth %llu)",
		    s, (unsigned long long)st.sent,
		    (unsigned long long)st.handled,
		    (unsigned long long)st.failed,
		    (unsigned long long)st.dropped,
		    (unsigned long long)st.abandoned,
		    (unsigned long long)st.depth);
		cr_assert_eq(st.depth, 0);
	}
}

/* ---- deferred answers ------------------------------------------------- */

/* The gateway's state for one deferred request: two back-end answers. */
struct join {
	uint64_t promise;
	unsigned got;
	uint64_t sum;
	int failure;
};

static void
on_back_answer(butler_server *self, int status, struct answer *reply, void *u)
{
	struct join *j = u;

	if (status != BUTLER_OK)
		j->failure = status;
	else
		j->sum += reply->y;
	if (++j->got < 2)
		return;
	if (j->failure) {
		ASSERT_OK(
		    butler_fail(self, j->promise, ask_desc(), j->failure));
	} else {
		struct answer a = { .y = j->sum, .note = strdup("joined") };

		ASSERT_OK(
		    butler_answer(self, j->promise, ask_desc(), &a, sizeof a));
		/* Exactly once: the promise has ended. */
		a.note = strdup("again");
		ASSERT_ERR(
		    butler_answer(self, j->promise, ask_desc(), &a, sizeof a),
		    BUTLER_ESTATE);
		free(a.note);
		ASSERT_ERR(butler_fail(self, j->promise, ask_desc(), 1),
		    BUTLER_ESTATE);
	}
	free(j);
}

static int
gate_ask(butler_server *self, void *user, struct ask *m)
{
	struct join *j = calloc(1, sizeof *j);
	struct ask a = { m->x, 0 }, b = { m->x + 1, 0 };

	(void)user;
	ASSERT_OK(butler_defer(self, ask_desc(), &j->promise));
	cr_assert_neq(j->promise, 0);
	/* Deferred already: a direct reply is refused. */
	{
		struct answer r = { 0 };

		ASSERT_ERR(butler_reply(self, &r, sizeof r), BUTLER_ESTATE);
	}
	ASSERT_OK(
	    butler_call(butler_server_hub(self), BACK_A, K_ASK, &a, sizeof a,
	        5000, ask_thunk, (void (*)(void))on_back_answer, j, NULL));
	ASSERT_OK(
	    butler_call(butler_server_hub(self), BACK_B, K_ASK, &b, sizeof b,
	        5000, ask_thunk, (void (*)(void))on_back_answer, j, NULL));
	return 0;
}

Test(defer, gateway_answers_after_two_backend_calls, .timeout = 300)
{
	struct fx_handlers gate = fx_handlers_default(), back = gate;
	butler_hub *hub;

	gate.ask = gate_ask;
	back.ask = back_ask;
	hub = new_hub(64, &gate, &back, NULL);
	ASSERT_OK(butler_hub_start(hub));
	for (uint64_t x = 1; x <= 100; x++) {
		ASSERT_OK(client_call(hub, GATE, x, 0, 5000, NULL));
		pump(hub, x);
		cr_assert_eq(G.last_status, BUTLER_OK);
		cr_assert_eq(G.last_y, 2 * x + 2 * (x + 1));
		cr_assert_str_eq(G.note, "joined");
	}
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	assert_conserved(hub);
	butler_hub_free(hub);
}

static int
back_fail(butler_server *self, void *user, struct ask *m)
{
	(void)self;
	(void)user;
	return m->x == 7 ? 77 : back_ask(self, user, m);
}

Test(defer, a_backend_failure_fails_the_deferred_request, .timeout = 300)
{
	struct fx_handlers gate = fx_handlers_default(), back = gate;
	butler_hub *hub;

	gate.ask = gate_ask;
	back.ask = back_fail;
	hub = new_hub(64, &gate, &back, NULL);
	ASSERT_OK(butler_hub_start(hub));
	ASSERT_OK(client_call(hub, GATE, 7, 0, 5000, NULL));
	pump(hub, 1);
	cr_assert_eq(G.last_status, 77);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	butler_hub_free(hub);
}

/* Holds every ask deferred; a num answers the oldest one (x = seq). */
static uint64_t held[64];
static unsigned n_held;
static atomic_int held_count;

static int
hold_ask(butler_server *self, void *user, struct ask *m)
{
	(void)user;
	(void)m;
	ASSERT_OK(butler_defer(self, ask_desc(), &held[n_held]));
	/* Deferring twice is refused. */
	{
		uint64_t again;

		ASSERT_ERR(
		    butler_defer(self, ask_desc(), &again), BUTLER_ESTATE);
		cr_assert_eq(again, 0);
	}
	n_held++;
	atomic_fetch_add(&held_count, 1);
	return 0;
}

static int
hold_release(butler_server *self, void *user, struct num *m)
{
	struct answer a = { .y = m->seq, .note = strdup("late") };

	(void)user;
	cr_assert_gt(n_held, 0);
	ASSERT_OK(butler_answer(self, held[0], ask_desc(), &a, sizeof a));
	memmove(held, held + 1, --n_held * sizeof *held);
	return 0;
}

Test(defer, answer_to_a_caller_that_has_gone_is_destroyed, .timeout = 300)
{
	struct fx_handlers gate = fx_handlers_default(), back = gate;
	struct num go = { .seq = 5 };
	butler_hub *hub;
	uint64_t id;

	n_held = 0;
	atomic_store(&held_count, 0);
	gate.ask = hold_ask;
	gate.num = hold_release;
	hub = new_hub(64, &gate, &back, NULL);
	ASSERT_OK(butler_hub_start(hub));
	ASSERT_OK(client_call(hub, GATE, 1, 0, -1, &id));
	/* Deferred by the gateway, then given up by its caller. */
	while (atomic_load(&held_count) < 1)
		sched_yield();
	ASSERT_OK(butler_cancel(hub, id));
	cr_assert_eq(G.last_status, BUTLER_ECANCELED);
	/* The gateway answers now: OK for it, destroyed (ASan, valgrind). */
	ASSERT_OK(butler_send(hub, GATE, K_NUM, &go, sizeof go));
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	cr_assert_eq(n_held, 0);
	cr_assert_eq(G.answers, 1);
	butler_hub_free(hub);
}

struct seen {
	unsigned long n, deferred_by_gate;
};

static void
list_pending(const butler_pending_info *info, void *user)
{
	struct seen *s = user;

	s->n++;
	if (info->deferred_by != NULL && strcmp(info->deferred_by, "s0") == 0
	    && info->deferred_instance == 0 && strcmp(info->server, "s0") == 0
	    && strcmp(info->message, "ask") == 0)
		s->deferred_by_gate++;
}

static void
count_stuck(const butler_stuck_info *info, void *user)
{
	unsigned long *n = user;

	if (strcmp(info->server, "s0") == 0 && info->promises == 3)
		(*n)++;
}

Test(defer, unanswered_promises_are_listed_and_end_estopped_at_stop,
    .timeout = 300)
{
	struct fx_handlers gate = fx_handlers_default(), back = gate;
	butler_hub *hub;
	struct seen s = { 0 };
	unsigned long stuck = 0;

	n_held = 0;
	atomic_store(&held_count, 0);
	gate.ask = hold_ask;
	hub = new_hub(64, &gate, &back, NULL);
	ASSERT_OK(butler_hub_start(hub));
	for (int i = 0; i < 3; i++)
		ASSERT_OK(client_call(hub, GATE, (uint64_t)i, 0, -1, NULL));
	while (atomic_load(&held_count) < 3)
		sched_yield();
	cr_assert_eq(butler_hub_pending(hub, list_pending, &s), 3);
	cr_assert_eq(s.deferred_by_gate, 3);
	/* DRAIN waits for the promises; the deadline says who holds them. */
	ASSERT_ERR(butler_hub_stop_timeout(
	               hub, BUTLER_STOP_DRAIN, 100, count_stuck, &stuck),
	    BUTLER_ETIMEDOUT);
	cr_assert_eq(stuck, 1);
	cr_assert_eq(G.answers, 0);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DISCARD));
	/* The callbacks ran on this thread during the stop: ESTOPPED each. */
	cr_assert_eq(G.answers, 3);
	cr_assert_eq(G.other, 3);
	cr_assert_eq(G.last_status, BUTLER_ESTOPPED);
	assert_conserved(hub);
	butler_hub_free(hub);
}

static int
defer_then_fail(butler_server *self, void *user, struct ask *m)
{
	uint64_t p;

	(void)user;
	(void)m;
	ASSERT_OK(butler_defer(self, ask_desc(), &p));
	return 55; /* a failing handler fails what it deferred */
}

Test(defer, handler_that_fails_after_deferring_fails_the_request,
    .timeout = 300)
{
	struct fx_handlers gate = fx_handlers_default(), back = gate;
	butler_hub *hub;

	gate.ask = defer_then_fail;
	hub = new_hub(64, &gate, &back, NULL);
	ASSERT_OK(butler_hub_start(hub));
	ASSERT_OK(client_call(hub, GATE, 1, 0, -1, NULL));
	pump(hub, 1);
	cr_assert_eq(G.last_status, 55);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	butler_hub_free(hub);
}

static int
defer_wrong(butler_server *self, void *user, struct num *m)
{
	uint64_t p = 1;

	(void)user;
	(void)m;
	/* No request is being handled: nothing to defer or answer. */
	ASSERT_ERR(butler_defer(self, ask_desc(), &p), BUTLER_EINVAL);
	cr_assert_eq(p, 0);
	ASSERT_ERR(butler_fail(self, 12345, ask_desc(), 1), BUTLER_ESTATE);
	cr_assert(butler_promise_cancelled(self, 12345));
	cr_assert(!butler_cancelled(self));
	return 0;
}

Test(defer, misuse_is_refused, .timeout = 300)
{
	struct fx_handlers gate = fx_handlers_default(), back = gate;
	struct num go = { 0 };
	butler_hub *hub;
	butler_stats st;

	gate.num = defer_wrong;
	hub = new_hub(64, &gate, &back, NULL);
	ASSERT_OK(butler_hub_start(hub));
	ASSERT_OK(butler_send(hub, GATE, K_NUM, &go, sizeof go));
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	ASSERT_OK(butler_server_stats(hub, GATE, &st));
	cr_assert_eq(st.handled, 1);
	butler_hub_free(hub);
}

/* ---- blocking calls from any thread ----------------------------------- */

struct waiter_args {
	butler_hub *hub;
	unsigned server;
	uint64_t x, delay_us;
	int timeout_ms;
	size_t reply_size; /* 0: sizeof reply */
	int rv;
	struct answer reply;
};

static void *
wait_thread(void *arg)
{
	struct waiter_args *w = arg;
	struct ask a = { w->x, w->delay_us };

	w->rv = butler_call_wait(w->hub, w->server, K_ASK, &a, sizeof a,
	    w->timeout_ms, &w->reply,
	    w->reply_size ? w->reply_size : sizeof w->reply);
	return NULL;
}

static int
run_wait(struct waiter_args *w)
{
	pthread_t th;

	pthread_create(&th, NULL, wait_thread, w);
	pthread_join(th, NULL);
	return w->rv;
}

Test(wait, a_plain_thread_gets_the_reply, .timeout = 300)
{
	struct fx_handlers gate = fx_handlers_default(), back = gate;
	struct waiter_args w = { .server = BACK_A, .x = 21, .timeout_ms = -1 };
	struct ask a = { 1, 0 };
	struct answer r;

	back.ask = back_ask;
	w.hub = new_hub(64, &gate, &back, NULL);
	/* Before the start, no server runs to answer. */
	ASSERT_ERR(run_wait(&w), BUTLER_ESTATE);
	ASSERT_OK(butler_hub_start(w.hub));
	/* This thread owns the external client: it must not block. */
	ASSERT_ERR(butler_call_wait(
	               w.hub, BACK_A, K_ASK, &a, sizeof a, -1, &r, sizeof r),
	    BUTLER_EDEADLK);
	ASSERT_OK(run_wait(&w));
	cr_assert_eq(w.reply.y, 42);
	cr_assert_str_eq(w.reply.note, "x=21");
	free(w.reply.note); /* the caller owns the reply's fields */
	/* A wrong reply size is refused at once. */
	w.reply_size = sizeof w.reply - 1;
	ASSERT_ERR(run_wait(&w), BUTLER_EINVAL);
	w.reply_size = 0;
	ASSERT_OK(butler_hub_stop(w.hub, BUTLER_STOP_DRAIN));
	ASSERT_ERR(run_wait(&w), BUTLER_ECLOSED);
	butler_hub_free(w.hub);
}

Test(wait, a_late_reply_is_destroyed_not_written, .timeout = 300)
{
	struct fx_handlers gate = fx_handlers_default(), back = gate;
	struct waiter_args w = {
		.server = BACK_A, .x = 3, .delay_us = 200000, .timeout_ms = 10
	};
	butler_stats st;

	back.ask = back_ask;
	w.hub = new_hub(64, &gate, &back, NULL);
	ASSERT_OK(butler_hub_start(w.hub));
	memset(&w.reply, 0xa5, sizeof w.reply);
	ASSERT_ERR(run_wait(&w), BUTLER_ETIMEDOUT);
	/* The reply struct was never touched. */
	for (size_t i = 0; i < sizeof w.reply; i++)
		cr_assert_eq(((unsigned char *)&w.reply)[i], 0xa5);
	/* Handled late (its reply destroyed: ASan, valgrind), or not at all
	 * if it was still queued when the caller gave up. */
	while (butler_server_stats(w.hub, BACK_A, &st) == BUTLER_OK
	    && st.handled + st.abandoned < 1)
		sched_yield();
	ASSERT_OK(butler_hub_stop(w.hub, BUTLER_STOP_DRAIN));
	butler_hub_free(w.hub);
}

Test(wait, the_handlers_failure_is_returned, .timeout = 300)
{
	struct fx_handlers gate = fx_handlers_default(), back = gate;
	struct waiter_args w = { .server = BACK_A, .x = 7, .timeout_ms = -1 };

	back.ask = back_fail;
	w.hub = new_hub(64, &gate, &back, NULL);
	ASSERT_OK(butler_hub_start(w.hub));
	ASSERT_ERR(run_wait(&w), 77);
	ASSERT_OK(butler_hub_stop(w.hub, BUTLER_STOP_DRAIN));
	butler_hub_free(w.hub);
}

static int
gate_waits(butler_server *self, void *user, struct num *m)
{
	struct ask a = { 1, 0 };
	struct answer r;

	(void)user;
	(void)m;
	ASSERT_ERR(butler_call_wait(butler_server_hub(self), BACK_A, K_ASK, &a,
	               sizeof a, -1, &r, sizeof r),
	    BUTLER_EDEADLK);
	return 0;
}

Test(wait, a_server_thread_is_refused, .timeout = 300)
{
	struct fx_handlers gate = fx_handlers_default(), back = gate;
	struct num go = { 0 };
	butler_hub *hub;
	butler_stats st;

	gate.num = gate_waits;
	back.ask = back_ask;
	hub = new_hub(64, &gate, &back, NULL);
	ASSERT_OK(butler_hub_start(hub));
	ASSERT_OK(butler_send(hub, GATE, K_NUM, &go, sizeof go));
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	ASSERT_OK(butler_server_stats(hub, GATE, &st));
	cr_assert_eq(st.handled, 1);
	butler_hub_free(hub);
}

struct many {
	butler_hub *hub;
	unsigned id;
	unsigned long ok, wrong;
};

static void *
many_waits(void *arg)
{
	struct many *m = arg;

	for (uint64_t i = 0; i < 2000; i++) {
		struct ask a = { m->id * 100000u + i, 0 };
		struct answer r;
		int rv = butler_call_wait(m->hub, i % 2 ? BACK_A : BACK_B,
		    K_ASK, &a, sizeof a, 10000, &r, sizeof r);

		if (rv == BUTLER_OK && r.y == 2 * a.x)
			m->ok++;
		else
			m->wrong++;
		if (rv == BUTLER_OK)
			free(r.note);
	}
	return NULL;
}

Test(wait, eight_threads_each_get_their_own_answers, .timeout = 600)
{
	struct fx_handlers gate = fx_handlers_default(), back = gate;
	struct many m[8];
	pthread_t th[8];
	butler_hub *hub;

	back.ask = back_ask;
	hub = new_hub(64, &gate, &back, NULL);
	ASSERT_OK(butler_hub_start(hub));
	for (unsigned i = 0; i < 8; i++) {
		m[i] = (struct many) { .hub = hub, .id = i };
		pthread_create(&th[i], NULL, many_waits, &m[i]);
	}
	for (unsigned i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(m[i].ok, 2000);
		cr_assert_eq(m[i].wrong, 0);
	}
	cr_assert_eq(butler_hub_pending(hub, NULL, NULL), 0);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	assert_conserved(hub);
	butler_hub_free(hub);
}

/* ---- cancellation that reaches the work ------------------------------- */

static atomic_int gate_open, handler_started, handlers_run;
static atomic_long left_ms;

/* The first ask blocks until gate_open; every ask counts its run. */
static int
slow_ask(butler_server *self, void *user, struct ask *m)
{
	struct answer a = { .y = m->x * 2 };

	(void)user;
	atomic_fetch_add(&handlers_run, 1);
	atomic_store(&left_ms, (long)butler_time_left_ms(self));
	atomic_store(&handler_started, 1);
	while (!atomic_load(&gate_open) && !butler_cancelled(self))
		sched_yield();
	return butler_reply(self, &a, sizeof a);
}

Test(cancel, queued_requests_whose_caller_gave_up_never_run, .timeout = 300)
{
	struct fx_handlers gate = fx_handlers_default(), back = gate;
	uint64_t ids[8];
	butler_hub *hub;
	butler_stats st;

	atomic_store(&gate_open, 0);
	atomic_store(&handler_started, 0);
	atomic_store(&handlers_run, 0);
	back.ask = slow_ask;
	hub = new_hub(64, &gate, &back, NULL);
	ASSERT_OK(butler_hub_start(hub));
	ASSERT_OK(client_call(hub, BACK_A, 1, 0, -1, NULL));
	while (!atomic_load(&handler_started))
		sched_yield();
	for (int i = 0; i < 8; i++)
		ASSERT_OK(client_call(hub, BACK_A, 2, 0, -1, &ids[i]));
	for (int i = 0; i < 8; i++)
		ASSERT_OK(butler_cancel(hub, ids[i]));
	cr_assert_eq(
	    G.answers, 8); /* each ECANCELED, before cancel returned */
	cr_assert_eq(G.other, 8);
	atomic_store(&gate_open, 1);
	pump(hub, 9);
	while (butler_server_stats(hub, BACK_A, &st) == BUTLER_OK
	    && st.handled + st.abandoned < 9)
		sched_yield();
	cr_assert_eq(st.abandoned, 8);
	cr_assert_eq(atomic_load(&handlers_run), 1); /* 0 of the 8 ran */
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	assert_conserved(hub);
	butler_hub_free(hub);
}

Test(cancel, a_long_handler_sees_it_and_stops_early, .timeout = 300)
{
	struct fx_handlers gate = fx_handlers_default(), back = gate;
	uint64_t id;
	butler_hub *hub;
	long left;

	atomic_store(&gate_open, 0);
	atomic_store(&handler_started, 0);
	atomic_store(&handlers_run, 0);
	back.ask = slow_ask;
	hub = new_hub(64, &gate, &back, NULL);
	ASSERT_OK(butler_hub_start(hub));
	/* The deadline travels with the request. */
	ASSERT_OK(client_call(hub, BACK_A, 1, 0, 30000, &id));
	while (!atomic_load(&handler_started))
		sched_yield();
	left = atomic_load(&left_ms);
	cr_assert(left > 25000 && left <= 30000, "time left %ld", left);
	ASSERT_OK(butler_cancel(hub, id));
	cr_assert_eq(G.last_status, BUTLER_ECANCELED);
	/* The handler returns without the gate ever opening. */
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	cr_assert_eq(atomic_load(&gate_open), 0);
	cr_assert_eq(G.answers, 1);
	butler_hub_free(hub);
}

Test(cancel, an_answer_not_yet_delivered_is_destroyed, .timeout = 300)
{
	struct fx_handlers gate = fx_handlers_default(), back = gate;
	uint64_t id;
	butler_hub *hub;
	butler_stats st;

	back.ask = back_ask;
	hub = new_hub(64, &gate, &back, NULL);
	ASSERT_OK(butler_hub_start(hub));
	ASSERT_OK(client_call(hub, BACK_A, 4, 0, -1, &id));
	/* Answered and posted, not yet taken by this (the client's) loop. */
	do
		ASSERT_OK(butler_server_stats(hub, BACK_A, &st));
	while (st.handled < 1);
	ASSERT_OK(butler_cancel(hub, id));
	cr_assert_eq(G.answers, 1);
	cr_assert_eq(G.last_status, BUTLER_ECANCELED);
	ASSERT_ERR(butler_cancel(hub, id), BUTLER_ENOTFOUND);
	/* The answer arrives and is destroyed, never delivered. */
	ASSERT_OK(butler_server_drain(hub, CLIENT, 0, NULL));
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	cr_assert_eq(G.answers, 1);
	ASSERT_OK(butler_server_stats(hub, CLIENT, &st));
	cr_assert_eq(st.replies, 1);
	butler_hub_free(hub);
}

/* ---- the stop --------------------------------------------------------- */

static atomic_ulong piped;

/* BACK_A passes every num on to BACK_B, from inside the hub. */
static int
pass_on(butler_server *self, void *user, struct num *m)
{
	(void)user;
	return butler_send(
	    butler_server_hub(self), BACK_B, K_NUM, m, sizeof *m);
}

static int
count_num(butler_server *self, void *user, struct num *m)
{
	(void)self;
	(void)user;
	(void)m;
	atomic_fetch_add(&piped, 1);
	return 0;
}

static int
pipe_num(butler_server *self, void *user, struct num *m)
{
	return butler_server_id(self) == BACK_A ? pass_on(self, user, m)
	                                        : count_num(self, user, m);
}

Test(stop, drain_finishes_work_passed_between_servers, .timeout = 600)
{
	struct fx_handlers gate = fx_handlers_default(), back = gate;
	butler_hub *hub;
	unsigned long sent = 0;

	atomic_store(&piped, 0);
	back.num = pipe_num;
	hub = new_hub(1u << 16, &gate, &back, NULL);
	ASSERT_OK(butler_hub_start(hub));
	for (uint64_t i = 0; i < 20000; i++) {
		struct num n = { .seq = i };

		if (butler_send(hub, BACK_A, K_NUM, &n, sizeof n) == BUTLER_OK)
			sent++;
	}
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	/* What A accepted reached B, although A sent it during the stop. */
	cr_assert_eq(atomic_load(&piped), sent);
	assert_conserved(hub);
	butler_hub_free(hub);
}

static atomic_int stop_send_rv, stop_call_rv, stop_cb_ran;

static void
on_stop_answer(butler_server *self, int status, struct answer *r, void *u)
{
	(void)self;
	(void)status;
	(void)r;
	(void)u;
	atomic_fetch_add(&stop_cb_ran, 1);
}

static void
gate_on_stop(butler_server *self, void *user)
{
	struct num n = { 0 };
	struct ask a = { 1, 0 };

	(void)user;
	atomic_store(&stop_send_rv,
	    butler_send(butler_server_hub(self), BACK_A, K_NUM, &n, sizeof n));
	atomic_store(&stop_call_rv,
	    butler_call(butler_server_hub(self), BACK_A, K_ASK, &a, sizeof a,
	        -1, ask_thunk, (void (*)(void))on_stop_answer, NULL, NULL));
}

Test(stop, nothing_is_accepted_from_on_stop, .timeout = 600)
{
	for (int round = 0; round < 100; round++) {
		struct fx_handlers gate = fx_handlers_default(), back = gate;
		butler_hub *hub;

		atomic_store(&stop_send_rv, -1);
		atomic_store(&stop_call_rv, -1);
		atomic_store(&stop_cb_ran, 0);
		gate.on_stop = gate_on_stop;
		back.ask = back_ask;
		hub = new_hub(64, &gate, &back, NULL);
		ASSERT_OK(butler_hub_start(hub));
		ASSERT_OK(butler_hub_stop(
		    hub, round % 2 ? BUTLER_STOP_DISCARD : BUTLER_STOP_DRAIN));
		/* A request accepted there could never end: refused. */
		ASSERT_ERR(atomic_load(&stop_send_rv), BUTLER_ECLOSED);
		ASSERT_ERR(atomic_load(&stop_call_rv), BUTLER_ECLOSED);
		cr_assert_eq(atomic_load(&stop_cb_ran), 0);
		butler_hub_free(hub);
	}
}

struct flood {
	butler_hub *hub;
	atomic_int go;
	unsigned long ok_after_closed;
	bool closed;
};

static void *
flood_pool(void *arg)
{
	struct flood *f = arg;

	while (!atomic_load(&f->go))
		sched_yield();
	for (;;) {
		struct num n = { 0 };
		int rv = butler_send(f->hub, BACK_A, K_NUM, &n, sizeof n);

		if (rv == BUTLER_ECLOSED) {
			if (f->closed)
				return NULL; /* seen twice: it stays */
			f->closed = true;
		} else if (rv == BUTLER_OK && f->closed) {
			f->ok_after_closed++;
		}
	}
}

Test(stop, eclosed_stays_across_a_pool, .timeout = 600)
{
	for (int round = 0; round < 50; round++) {
		struct fx_handlers gate = fx_handlers_default(), back = gate;
		struct flood f = { 0 };
		pthread_t th;

		fx_init(&F, 4, 1u << 20);
		F.servers[BACK_A].instances = 4;
		F.servers[CLIENT].loop = BUTLER_LOOP_EXTERNAL;
		ASSERT_OK(butler_hub_new(&f.hub, &F.spec));
		for (unsigned s = 0; s < 4; s++)
			ASSERT_OK(fx_register(f.hub, s, &back, NULL));
		(void)gate;
		ASSERT_OK(butler_hub_start(f.hub));
		pthread_create(&th, NULL, flood_pool, &f);
		atomic_store(&f.go, 1);
		sleep_us(2000);
		ASSERT_OK(butler_hub_stop(f.hub, BUTLER_STOP_DISCARD));
		pthread_join(th, NULL);
		cr_assert_eq(f.ok_after_closed, 0);
		assert_conserved(f.hub);
		butler_hub_free(f.hub);
	}
}

struct stuck {
	unsigned long calls, named;
};

static void
on_stuck(const butler_stuck_info *info, void *user)
{
	struct stuck *s = user;

	s->calls++;
	if (strcmp(info->server, "s1") == 0 && info->message != NULL
	    && strcmp(info->message, "ask") == 0 && info->handler_ms >= 50)
		s->named++;
}

Test(stop, a_deadline_reports_the_stuck_handler_then_discard_ends_it,
    .timeout = 300)
{
	struct fx_handlers gate = fx_handlers_default(), back = gate;
	struct waiter_args w = { .server = BACK_A, .x = 1, .timeout_ms = -1 };
	struct stuck s = { 0 };
	pthread_t th;
	butler_hub *hub;

	atomic_store(&gate_open, 0);
	atomic_store(&handler_started, 0);
	back.ask = slow_ask;
	hub = new_hub(64, &gate, &back, NULL);
	w.hub = hub;
	ASSERT_OK(butler_hub_start(hub));
	pthread_create(&th, NULL, wait_thread, &w);
	while (!atomic_load(&handler_started))
		sched_yield();
	ASSERT_ERR(
	    butler_hub_stop_timeout(hub, BUTLER_STOP_DRAIN, 100, on_stuck, &s),
	    BUTLER_ETIMEDOUT);
	cr_assert_eq(s.named, 1);
	/* Waiting again is allowed; then give up on the work. */
	ASSERT_ERR(
	    butler_hub_stop_timeout(hub, BUTLER_STOP_DRAIN, 20, NULL, NULL),
	    BUTLER_ETIMEDOUT);
	ASSERT_OK(butler_hub_stop_timeout(
	    hub, BUTLER_STOP_DISCARD, 10000, on_stuck, &s));
	pthread_join(th, NULL);
	/* The handler saw the discard (butler_cancelled) and answered; its
	 * answer reached the blocked caller. */
	cr_assert_eq(atomic_load(&gate_open), 0);
	ASSERT_OK(w.rv);
	cr_assert_eq(w.reply.y, 2);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN)); /* idempotent */
	butler_hub_free(hub);
}

Test(stop, drain_delivers_answers_to_blocking_callers, .timeout = 600)
{
	struct fx_handlers gate = fx_handlers_default(), back = gate;
	struct many m[4];
	pthread_t th[4];
	butler_hub *hub;

	back.ask = back_ask;
	hub = new_hub(64, &gate, &back, NULL);
	ASSERT_OK(butler_hub_start(hub));
	for (unsigned i = 0; i < 4; i++) {
		m[i] = (struct many) { .hub = hub, .id = i };
		pthread_create(&th[i], NULL, many_waits, &m[i]);
	}
	sleep_us(5000);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	for (unsigned i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		/* Refused (ECLOSED) once the stop began; never lost. */
		cr_assert_eq(m[i].ok + m[i].wrong, 2000);
	}
	assert_conserved(hub);
	butler_hub_free(hub);
}

/* ---- statistics ------------------------------------------------------- */

static atomic_int release_num;

static int
block_num(butler_server *self, void *user, struct num *m)
{
	(void)self;
	(void)user;
	if (m->tag == 1)
		while (!atomic_load(&release_num))
			sched_yield();
	return 0;
}

Test(stats, high_water_and_capacity_count_what_waits, .timeout = 300)
{
	struct fx_handlers gate = fx_handlers_default(), back = gate;
	struct num slow = { .tag = 1 }, n = { 0 };
	butler_hub *hub;
	butler_stats st;

	atomic_store(&release_num, 0);
	back.num = block_num;
	hub = new_hub(50, &gate, &back, NULL);
	ASSERT_OK(butler_hub_start(hub));
	ASSERT_OK(butler_send(hub, BACK_A, K_NUM, &slow, sizeof slow));
	do
		ASSERT_OK(butler_server_stats(hub, BACK_A, &st));
	while (st.depth != 0);
	/* The one being handled does not count: 50 fit behind it. */
	for (int i = 0; i < 50; i++)
		ASSERT_OK(butler_send(hub, BACK_A, K_NUM, &n, sizeof n));
	ASSERT_ERR(
	    butler_send(hub, BACK_A, K_NUM, &n, sizeof n), BUTLER_EFULL);
	atomic_store(&release_num, 1);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	ASSERT_OK(butler_server_stats(hub, BACK_A, &st));
	cr_assert_eq(st.high_water, 50);
	cr_assert_eq(st.rejected, 1);
	assert_conserved(hub);
	butler_hub_free(hub);
}

struct mix {
	butler_hub *hub;
	atomic_int stop;
	unsigned id;
};

static void *
mix_sender(void *arg)
{
	struct mix *m = arg;
	uint64_t i = 0;

	while (!atomic_load(&m->stop)) {
		struct num n = { .seq = i++ };
		struct owned o = fx_owned(i);

		(void)butler_send(
		    m->hub, BACK_A + (i % 2), K_NUM, &n, sizeof n);
		if (butler_send(m->hub, BACK_B, K_OWNED, &o, sizeof o)
		    != BUTLER_OK)
			free(o.text);
		if (i % 64 == 0) {
			struct ask a = { i, i % 3 ? 0 : 50 };
			struct answer r;

			if (butler_call_wait(m->hub, BACK_A, K_ASK, &a,
			        sizeof a, (int)(i % 5), &r, sizeof r)
			    == BUTLER_OK)
				free(r.note);
		}
	}
	return NULL;
}

static int
mix_client_num(butler_server *self, void *user, struct num *m)
{
	(void)user;
	(void)m;
	/* The client asks with short timeouts and cancels some. */
	for (int i = 0; i < 8; i++) {
		uint64_t id;
		struct ask a = { (uint64_t)i, i % 2 ? 100 : 0 };

		if (butler_call(butler_server_hub(self), GATE, K_ASK, &a,
		        sizeof a, i % 3, ask_thunk,
		        (void (*)(void))on_client_answer, NULL, &id)
		        == BUTLER_OK
		    && i % 4 == 0)
			(void)butler_cancel(butler_server_hub(self), id);
	}
	return 0;
}

Test(stats, every_outcome_adds_up_after_a_mixed_flood, .timeout = 600)
{
	for (int round = 0; round < 6; round++) {
		struct fx_handlers gate = fx_handlers_default(), back = gate,
		                   client = gate;
		struct mix m[3];
		pthread_t th[3];
		butler_hub *hub;

		gate.ask = back_ask;
		back.ask = back_ask;
		client.num = mix_client_num;
		fx_init(&F, 4, 256);
		F.servers[CLIENT].loop = BUTLER_LOOP_EXTERNAL;
		memset(&G, 0, sizeof G);
		ASSERT_OK(butler_hub_new(&hub, &F.spec));
		butler_hub_set_log(hub, fx_quiet, BUTLER_LOG_DEBUG, NULL);
		ASSERT_OK(fx_register(hub, GATE, &gate, NULL));
		ASSERT_OK(fx_register(hub, BACK_A, &back, NULL));
		ASSERT_OK(fx_register(hub, BACK_B, &back, NULL));
		ASSERT_OK(fx_register(hub, CLIENT, &client, NULL));
		ASSERT_OK(butler_hub_start(hub));
		for (unsigned i = 0; i < 3; i++) {
			m[i] = (struct mix) { .hub = hub, .id = i };
			pthread_create(&th[i], NULL, mix_sender, &m[i]);
		}
		for (int k = 0; k < 20; k++) {
			struct num n = { 0 };

			(void)butler_send(hub, CLIENT, K_NUM, &n, sizeof n);
			(void)butler_server_drain(hub, CLIENT, 0, NULL);
			sleep_us(1000);
		}
		ASSERT_OK(butler_hub_stop(
		    hub, round % 2 ? BUTLER_STOP_DISCARD : BUTLER_STOP_DRAIN));
		for (unsigned i = 0; i < 3; i++) {
			atomic_store(&m[i].stop, 1);
			pthread_join(th[i], NULL);
		}
		assert_conserved(hub);
		cr_assert_eq(butler_hub_pending(hub, NULL, NULL), 0);
		butler_hub_free(hub);
	}
}

/* ---- a generic handler ------------------------------------------------ */

static atomic_ulong raw_nums, raw_asks;

static int
raw_handler(butler_server *self, unsigned kind, const butler_msg_desc *msg,
    void *payload, void *user)
{
	(void)user;
	if (kind == K_NUM) {
		cr_assert_str_eq(msg->name, "num");
		atomic_fetch_add(&raw_nums, 1);
		return 0;
	}
	if (kind == K_ASK) {
		const struct ask *a = payload;
		struct answer r = { .y = a->x * 2, .note = strdup("raw") };

		cr_assert_eq(msg, &F.msgs[M_ASK]);
		atomic_fetch_add(&raw_asks, 1);
		return butler_reply(self, &r, sizeof r);
	}
	return 0;
}

Test(raw, a_generic_handler_takes_every_kind, .timeout = 300)
{
	struct fx_handlers gate = fx_handlers_default(), back = gate;
	struct waiter_args w = { .server = BACK_A, .x = 5, .timeout_ms = -1 };
	struct num n = { 0 };
	butler_hub *hub;

	atomic_store(&raw_nums, 0);
	atomic_store(&raw_asks, 0);
	hub = new_hub(64, &gate, &back, NULL);
	/* Replaces the table registered for BACK_A. */
	ASSERT_OK(butler_hub_set_raw_handler(
	    hub, BACK_A, raw_handler, NULL, NULL, NULL));
	ASSERT_ERR(
	    butler_hub_set_raw_handler(hub, BACK_A, NULL, NULL, NULL, NULL),
	    BUTLER_EINVAL);
	ASSERT_OK(butler_hub_start(hub));
	ASSERT_ERR(butler_hub_set_raw_handler(
	               hub, BACK_A, raw_handler, NULL, NULL, NULL),
	    BUTLER_ESTATE);
	for (int i = 0; i < 10; i++)
		ASSERT_OK(butler_send(hub, BACK_A, K_NUM, &n, sizeof n));
	w.hub = hub;
	ASSERT_OK(run_wait(&w));
	cr_assert_eq(w.reply.y, 10);
	cr_assert_str_eq(w.reply.note, "raw");
	free(w.reply.note);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	cr_assert_eq(atomic_load(&raw_nums), 10);
	cr_assert_eq(atomic_load(&raw_asks), 1);
	butler_hub_free(hub);
}
