/*
 * test_request.c — request/reply: answers arrive on the caller's own thread,
 * exactly once, as a reply, a timeout, a cancel, or ECLOSED.
 */
#include "fixture.h"

#include <poll.h>
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
	case BUTLER_ECLOSED:
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

/* The client's "handler context": calls must come from a server. */
static void
as_client(struct rr *t, void (*fn)(struct rr *))
{
	(void)t;
	fn(t);
}

Test(request, call_outside_a_server_is_einval, .timeout = 30)
{
	struct rr t = { 0 };
	struct fx f;

	setup(&t, &f);
	ASSERT_ERR(call(&t, 1, 0, -1, NULL), BUTLER_EINVAL);
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
	 * (ASan/valgrind prove the freeing). */
	while (butler_server_stats(t.hub, WORKER, &st) == BUTLER_OK
	    && st.handled < 3)
		sched_yield();
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
	/* The worker still answers; the answer is dropped on arrival. */
	while (butler_server_stats(t.hub, WORKER, &st) == BUTLER_OK
	    && st.handled < 1)
		sched_yield();
	ASSERT_OK(butler_hub_stop(t.hub, BUTLER_STOP_DRAIN));
	cr_assert_eq(t.answers, 1);
	cr_assert_eq(t.cancelled, 1);
	butler_hub_free(t.hub);
}

Test(request, stop_answers_pending_with_eclosed, .timeout = 60)
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
	(void)as_client;
	(void)setup;
}
