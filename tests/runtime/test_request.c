/* SPDX-License-Identifier: MIT */
/*
 * test_request.c — request/reply: answers arrive on the caller's own thread,
 * exactly once, as a reply, a timeout, a cancel, or ESTOPPED.
 */
#include "fixture.h"

#include <poll.h>
#include <semaphore.h>
#include <pthread.h>
#include <time.h>

enum { WORKER = 0, CLIENT = 1 };

struct rr {
	butler_hub *hub;
	pthread_t client_thread;
	unsigned long answers, ok, timed_out, cancelled, closed, other;
	unsigned long wrong_thread, wrong_value;
	uint64_t last_cancel_id;
};

static int
worker_ask(butler_server *self, void *user, struct ask *m)
{
	struct answer a = { .y = m->x * 2 };
	char note[32];

	(void)user;
	if (m->delay_us) {
		struct timespec ts = { 0, (long)m->delay_us * 1000 };
		nanosleep(&ts, NULL);
	}
	snprintf(note, sizeof note, "x=%llu", (unsigned long long)m->x);
	a.note = strdup(note);
	return butler_reply(self, &a, sizeof a);
}

/* The typed callback and its thunk, as butler-gen emits them. */
typedef void (*ask_reply_fn)(
    butler_server *self, int status, struct answer *reply, void *user);

static void
ask_thunk(
    butler_server *self, int status, void *reply, void (*cb)(void), void *user)
{
	((ask_reply_fn)cb)(self, status, reply, user);
}

static void
on_answer(butler_server *self, int status, struct answer *reply, void *user)
{
	struct rr *t = user;

	(void)self;
	t->answers++;
	if (!pthread_equal(pthread_self(), t->client_thread))
		t->wrong_thread++;
	switch (status) {
	case BUTLER_OK: {
		char want[32];

		t->ok++;
		snprintf(want, sizeof want, "x=%llu",
		    (unsigned long long)reply->y / 2);
		if (reply->y % 2 || strcmp(reply->note, want) != 0)
			t->wrong_value++;
		break;
	}
	case BUTLER_ETIMEDOUT:
		t->timed_out++;
		break;
	case BUTLER_ECANCELED:
		t->cancelled++;
		break;
	case BUTLER_ESTOPPED:
		t->closed++;
		break;
	default:
		t->other++;
	}
	if (status != BUTLER_OK)
		cr_assert_null(reply);
}

static int
call(struct rr *t, uint64_t x, uint64_t delay_us, int timeout_ms, uint64_t *id)
{
	struct ask a = { x, delay_us };

	return butler_call(t->hub, WORKER, K_ASK, &a, sizeof a, timeout_ms,
	    ask_thunk, (void (*)(void))on_answer, t, id);
}

static void
setup(struct rr *t, struct fx *f)
{
	struct fx_handlers h = fx_handlers_default();

	fx_init(f, 2, 1u << 14);
	f->servers[CLIENT].loop = BUTLER_LOOP_EXTERNAL;
	h.ask = worker_ask;
	t->client_thread = pthread_self();
	ASSERT_OK(butler_hub_new(&t->hub, &f->spec));
	butler_hub_set_log(t->hub, fx_quiet, BUTLER_LOG_DEBUG, NULL);
	ASSERT_OK(fx_register(t->hub, WORKER, &h, t));
	h = fx_handlers_default();
	ASSERT_OK(fx_register(t->hub, CLIENT, &h, t));
	ASSERT_OK(butler_hub_start(t->hub));
}

/* Runs the client's loop until `answers` answers have arrived. */
static void
pump(struct rr *t, unsigned long answers)
{
	int fd = butler_server_fd(t->hub, CLIENT);

	while (t->answers < answers) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int timeout = butler_server_next_timeout(t->hub, CLIENT);

		poll(&p, 1, timeout < 0 ? 30000 : timeout);
		ASSERT_OK(butler_server_drain(t->hub, CLIENT, 0, NULL));
	}
}

static void *
stranger_call(void *arg)
{
	return (void *)(intptr_t)call(arg, 1, 0, -1, NULL);
}

Test(request, owner_thread_calls_stranger_gets_estate, .timeout = 30)
{
	struct rr t = { 0 };
	struct fx f;
	pthread_t th;
	void *rv;

	setup(&t, &f);
	/* This thread started the hub: it speaks for the external client,
	 * even outside a drain (a GUI callback). */
	ASSERT_OK(call(&t, 21, 0, -1, NULL));
	pump(&t, 1);
	cr_assert_eq(t.ok, 1);
	/* A thread that is no server of the hub has no loop for answers to
	 * come back to (it may use butler_call_wait()). */
	pthread_create(&th, NULL, stranger_call, &t);
	pthread_join(th, &rv);
	ASSERT_ERR((int)(intptr_t)rv, BUTLER_ESTATE);
	ASSERT_OK(butler_hub_stop(t.hub, BUTLER_STOP_DRAIN));
	butler_hub_free(t.hub);
}

/* Calls are made from inside the client's drain, through on_start-like
 * code: we use a num message to the client as the trigger. */
static struct rr *g;
static unsigned long g_calls;
static int g_timeout = -1;
static uint64_t g_delay_us;

static int
client_go(butler_server *self, void *user, struct num *m)
{
	(void)self;
	(void)user;
	for (unsigned long i = 0; i < g_calls; i++) {
		uint64_t id;

		ASSERT_OK(call(g, m->seq + i, g_delay_us, g_timeout, &id));
		cr_assert_gt(id, 0);
		g->last_cancel_id = id;
	}
	return 0;
}

static void
run_calls(struct rr *t, struct fx *f, unsigned long calls, int timeout_ms,
    uint64_t delay_us)
{
	struct fx_handlers h = fx_handlers_default(), c = h;
	struct num go = { .seq = 1000 };

	g = t;
	g_calls = calls;
	g_timeout = timeout_ms;
	g_delay_us = delay_us;
	fx_init(f, 2, 1u << 15);
	f->servers[CLIENT].loop = BUTLER_LOOP_EXTERNAL;
	h.ask = worker_ask;
	c.num = client_go;
	t->client_thread = pthread_self();
	ASSERT_OK(butler_hub_new(&t->hub, &f->spec));
	butler_hub_set_log(t->hub, fx_quiet, BUTLER_LOG_DEBUG, NULL);
	ASSERT_OK(fx_register(t->hub, WORKER, &h, t));
	ASSERT_OK(fx_register(t->hub, CLIENT, &c, t));
	ASSERT_OK(butler_hub_start(t->hub));
	ASSERT_OK(butler_send(t->hub, CLIENT, K_NUM, &go, sizeof go));
}

Test(request, ten_thousand_in_flight, .timeout = 120)
{
	struct rr t = { 0 };
	struct fx f;

	run_calls(&t, &f, 10000, -1, 0);
	pump(&t, 10000);
	cr_assert_eq(t.ok, 10000);
	cr_assert_eq(t.wrong_thread, 0);
	cr_assert_eq(t.wrong_value, 0);
	ASSERT_OK(butler_hub_stop(t.hub, BUTLER_STOP_DRAIN));
	butler_hub_free(t.hub);
	cr_assert_eq(t.answers, 10000);
}

Test(request, timeout_fires_and_late_reply_is_freed, .timeout = 60)
{
	struct rr t = { 0 };
	struct fx f;
	butler_stats st;

	/* The worker takes 50 ms per request; we wait 5. */
	run_calls(&t, &f, 3, 5, 50000);
	pump(&t, 3);
	cr_assert_eq(t.timed_out, 3);
	/* Let the late replies arrive, and drain them: freed, not delivered
	 * (ASan/valgrind prove the freeing). Requests still queued when their
	 * caller gave up are never handled: abandoned. */
	while (butler_server_stats(t.hub, WORKER, &st) == BUTLER_OK
	    && st.handled + st.abandoned < 3)
		sched_yield();
	cr_assert_geq(st.abandoned, 1);
	ASSERT_OK(butler_hub_stop(t.hub, BUTLER_STOP_DRAIN));
	cr_assert_eq(t.answers, 3);
	butler_hub_free(t.hub);
}

static int
client_cancel(butler_server *self, void *user, struct num *m)
{
	(void)self;
	(void)user;
	(void)m;
	ASSERT_OK(call(g, 7, 20000, -1, &g->last_cancel_id));
	ASSERT_OK(butler_cancel(g->hub, g->last_cancel_id));
	cr_assert_eq(g->cancelled, 1); /* delivered before cancel returns */
	ASSERT_ERR(butler_cancel(g->hub, g->last_cancel_id), BUTLER_ENOTFOUND);
	return 0;
}

Test(request, cancel_answers_once, .timeout = 60)
{
	struct rr t = { 0 };
	struct fx f;
	struct fx_handlers h = fx_handlers_default(), c = h;
	struct num go = { 0 };
	butler_stats st;

	g = &t;
	fx_init(&f, 2, 64);
	f.servers[CLIENT].loop = BUTLER_LOOP_EXTERNAL;
	h.ask = worker_ask;
	c.num = client_cancel;
	t.client_thread = pthread_self();
	ASSERT_OK(butler_hub_new(&t.hub, &f.spec));
	ASSERT_OK(fx_register(t.hub, WORKER, &h, &t));
	ASSERT_OK(fx_register(t.hub, CLIENT, &c, &t));
	ASSERT_OK(butler_hub_start(t.hub));
	ASSERT_OK(butler_send(t.hub, CLIENT, K_NUM, &go, sizeof go));
	pump(&t, 1);
	/* The worker still answers if it had started (the answer is
	 * destroyed), or never runs the handler (abandoned). */
	while (butler_server_stats(t.hub, WORKER, &st) == BUTLER_OK
	    && st.handled + st.abandoned < 1)
		sched_yield();
	ASSERT_OK(butler_hub_stop(t.hub, BUTLER_STOP_DRAIN));
	cr_assert_eq(t.answers, 1);
	cr_assert_eq(t.cancelled, 1);
	butler_hub_free(t.hub);
}

Test(request, stop_answers_pending_with_estopped, .timeout = 60)
{
	struct rr t = { 0 };
	struct fx f;

	/* Slow worker, many requests: the stop finds most still queued. */
	run_calls(&t, &f, 200, -1, 2000);
	while (t.answers == 0)
		pump(&t, 1);
	ASSERT_OK(butler_hub_stop(t.hub, BUTLER_STOP_DISCARD));
	/* Every request ended exactly once, on this thread. */
	cr_assert_eq(t.answers, 200);
	cr_assert_eq(t.ok + t.closed, 200);
	cr_assert_gt(t.closed, 0);
	cr_assert_eq(t.wrong_thread, 0);
	butler_hub_free(t.hub);
}

static int
worker_no_reply(butler_server *self, void *user, struct ask *m)
{
	(void)self;
	(void)user;
	return m->x == 1 ? BUTLER_EHANDLER : 0;
}

Test(request, handler_failure_or_silence_answers_the_caller, .timeout = 60)
{
	struct rr t = { 0 };
	struct fx f;
	struct fx_handlers h = fx_handlers_default(), c = h;
	struct num go = { .seq = 0 };

	g = &t;
	g_calls = 2; /* x = 0 (silent handler), x = 1 (failing handler) */
	g_timeout = -1;
	g_delay_us = 0;
	fx_init(&f, 2, 64);
	f.servers[CLIENT].loop = BUTLER_LOOP_EXTERNAL;
	h.ask = worker_no_reply;
	c.num = client_go;
	t.client_thread = pthread_self();
	ASSERT_OK(butler_hub_new(&t.hub, &f.spec));
	butler_hub_set_log(t.hub, fx_quiet, BUTLER_LOG_DEBUG, NULL);
	ASSERT_OK(fx_register(t.hub, WORKER, &h, &t));
	ASSERT_OK(fx_register(t.hub, CLIENT, &c, &t));
	ASSERT_OK(butler_hub_start(t.hub));
	ASSERT_OK(butler_send(t.hub, CLIENT, K_NUM, &go, sizeof go));
	pump(&t, 2);
	cr_assert_eq(t.other, 2); /* both: BUTLER_EHANDLER */
	ASSERT_OK(butler_hub_stop(t.hub, BUTLER_STOP_DRAIN));
	butler_hub_free(t.hub);
}

/* ---- progress ------------------------------------------------------- */

struct step {
	uint32_t done;
	uint32_t total;
	char *label;
};

static atomic_ulong steps_destroyed;

static void
step_destroy(void *p)
{
	struct step *s = p;

	free(s->label);
	s->label = NULL;
	atomic_fetch_add(&steps_destroyed, 1);
}

typedef void (*step_fn)(butler_server *self, struct step *s, void *user);

static void
step_thunk(butler_server *self, void *progress, void (*cb)(void), void *user)
{
	((step_fn)cb)(self, progress, user);
}

struct prog {
	struct rr rr;
	unsigned long steps, out_of_order, bad_label;
	uint32_t last;
};

static void
on_step(butler_server *self, struct step *s, void *user)
{
	struct prog *p = user;
	char want[16];

	(void)self;
	if (p->rr.answers != 0 || s->done <= p->last)
		p->out_of_order++; /* after the answer, or going backwards */
	snprintf(want, sizeof want, "%u/%u", s->done, s->total);
	if (strcmp(s->label, want) != 0)
		p->bad_label++;
	p->last = s->done;
	p->steps++;
}

/* Posts m->x progress steps, as fast as it can, then answers. */
static int
worker_steps(butler_server *self, void *user, struct ask *m)
{
	struct answer a = { .y = m->x * 2, .note = strdup("done") };

	(void)user;
	for (uint32_t i = 1; i <= m->x; i++) {
		struct step s = { i, (uint32_t)m->x, malloc(24) };

		snprintf(s.label, 24, "%u/%u", i, (uint32_t)m->x);
		ASSERT_OK(butler_progress(self, &s, sizeof s));
	}
	return butler_reply(self, &a, sizeof a);
}

static void
run_progress(struct prog *p, bool latest, uint64_t steps)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	butler_msg_desc msgs[5];
	struct ask a = { steps, 0 };

	fx_init(&f, 2, 1024);
	memcpy(msgs, f.msgs, sizeof f.msgs);
	msgs[4] = (butler_msg_desc) { "step", sizeof(struct step),
		step_destroy, -1, -1, 0, NULL, NULL, NULL };
	msgs[M_ASK].progress = 4;
	msgs[M_ASK].flags = latest ? BUTLER_MSG_PROGRESS_LATEST : 0;
	f.spec.messages = msgs;
	f.spec.n_messages = 5;
	f.servers[CLIENT].loop = BUTLER_LOOP_EXTERNAL;
	h.ask = worker_steps;
	p->rr.client_thread = pthread_self();
	ASSERT_OK(butler_hub_new(&p->rr.hub, &f.spec));
	ASSERT_OK(fx_register(p->rr.hub, WORKER, &h, p));
	h = fx_handlers_default();
	ASSERT_OK(fx_register(p->rr.hub, CLIENT, &h, p));
	ASSERT_OK(butler_hub_start(p->rr.hub));
	ASSERT_OK(butler_call_progress(p->rr.hub, WORKER, K_ASK, &a, sizeof a,
	    -1, ask_thunk, (void (*)(void))on_answer, step_thunk,
	    (void (*)(void))on_step, p, NULL));
	pump(&p->rr, 1);
	ASSERT_OK(butler_hub_stop(p->rr.hub, BUTLER_STOP_DRAIN));
	butler_hub_free(p->rr.hub);
	cr_assert_eq(p->rr.ok, 1);
	cr_assert_eq(p->out_of_order, 0);
	cr_assert_eq(p->bad_label, 0);
	/* Every step the worker posted was destroyed exactly once, whether
	 * it was delivered or replaced. */
	cr_assert_eq(atomic_load(&steps_destroyed), steps);
}

Test(request, every_progress_step_arrives_in_order, .timeout = 60)
{
	struct prog p = { 0 };

	run_progress(&p, false, 1000);
	cr_assert_eq(p.steps, 1000);
	cr_assert_eq(p.last, 1000);
}

Test(request, latest_progress_wins, .timeout = 60)
{
	struct prog p = { 0 };

	run_progress(&p, true, 200000);
	/* The newest step always arrives, before the answer; the ones a
	 * slower caller had no time for are replaced, not queued. */
	cr_assert_eq(p.last, 200000);
	cr_assert_geq(p.steps, 1);
	cr_assert_leq(p.steps, 200000);
}

/* ---- finding stuck work --------------------------------------------- */

struct listing {
	unsigned long seen, well_formed;
};

static void
list_one(const butler_pending_info *info, void *user)
{
	struct listing *l = user;

	l->seen++;
	if (info->id > 0 && strcmp(info->caller, "s1") == 0
	    && info->caller_instance == 0 && strcmp(info->server, "s0") == 0
	    && strcmp(info->message, "ask") == 0 && info->timeout_in_ms == -1)
		l->well_formed++;
}

Test(request, pending_requests_are_listed, .timeout = 60)
{
	struct rr t = { 0 };
	struct fx f;
	struct listing l = { 0 };

	setup(&t, &f);
	cr_assert_eq(butler_hub_pending(t.hub, NULL, NULL), 0);
	for (uint64_t i = 0; i < 5; i++)
		ASSERT_OK(call(&t, i, 100000, -1, NULL)); /* 100 ms each */
	/* The slow worker has not answered them all yet. */
	cr_assert_eq(butler_hub_pending(t.hub, list_one, &l), l.seen);
	cr_assert_gt(l.seen, 0);
	cr_assert_eq(l.well_formed, l.seen);
	pump(&t, 5);
	cr_assert_eq(butler_hub_pending(t.hub, NULL, NULL), 0);
	ASSERT_OK(butler_hub_stop(t.hub, BUTLER_STOP_DRAIN));
	butler_hub_free(t.hub);
}

/* ---- a threaded server as the caller -------------------------------- */

struct threaded_caller {
	butler_hub *hub;
	pthread_t caller_thread;
	sem_t done;
	unsigned long answers, ok, timed_out, wrong_thread;
};

static void
tc_answer(butler_server *self, int status, struct answer *reply, void *user)
{
	struct threaded_caller *c = user;

	(void)self;
	(void)reply;
	if (!pthread_equal(pthread_self(), c->caller_thread))
		c->wrong_thread++;
	if (status == BUTLER_OK)
		c->ok++;
	else if (status == BUTLER_ETIMEDOUT)
		c->timed_out++;
	if (++c->answers == 2)
		sem_post(&c->done);
}

/* Server 1 is threaded: it asks the slow worker twice, once with time to
 * spare and once with a 5 ms timeout that its libevent timer enforces. */
static int
tc_start(butler_server *self, void *user)
{
	struct threaded_caller *c = user;
	struct ask fast = { 1, 0 }, slow = { 2, 100000 };

	if (butler_server_id(self) != CLIENT)
		return 0;
	c->caller_thread = pthread_self();
	ASSERT_OK(butler_call(c->hub, WORKER, K_ASK, &slow, sizeof slow, 5,
	    ask_thunk, (void (*)(void))tc_answer, c, NULL));
	ASSERT_OK(butler_call(c->hub, WORKER, K_ASK, &fast, sizeof fast, -1,
	    ask_thunk, (void (*)(void))tc_answer, c, NULL));
	return 0;
}

Test(request, threaded_caller_gets_answers_and_timeouts_on_its_thread,
    .timeout = 60)
{
	static struct threaded_caller c;
	struct fx f;
	struct fx_handlers h = fx_handlers_default();

	sem_init(&c.done, 0, 0);
	fx_init(&f, 2, 64);
	h.ask = worker_ask;
	h.on_start = tc_start;
	ASSERT_OK(butler_hub_new(&c.hub, &f.spec));
	ASSERT_OK(fx_register(c.hub, WORKER, &h, &c));
	ASSERT_OK(fx_register(c.hub, CLIENT, &h, &c));
	ASSERT_OK(butler_hub_start(c.hub));
	sem_wait(&c.done);
	ASSERT_OK(butler_hub_stop(c.hub, BUTLER_STOP_DRAIN));
	butler_hub_free(c.hub);
	cr_assert_eq(c.timed_out, 1);
	cr_assert_eq(c.ok, 1);
	cr_assert_eq(c.wrong_thread, 0);
}
