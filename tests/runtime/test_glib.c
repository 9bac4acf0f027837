/*
 * test_glib.c — the GLib adapter: an external-loop server on a GMainContext
 * wakes an idle loop, drains floods in bounded batches, and times requests
 * out from prepare().
 */
#include "fixture.h"

#include <butler/glib.h>
#include <pthread.h>

enum { WORKER = 0, GUI = 1 };

struct gui {
	butler_hub *hub;
	GMainContext *ctx;
	unsigned long handled, wrong_thread, answers, timed_out;
	GThread *thread;
};

static int
gui_num(butler_server *self, void *user, struct num *m)
{
	struct gui *g = user;

	(void)self;
	(void)m;
	if (g_thread_self() != g->thread)
		g->wrong_thread++;
	g->handled++;
	return 0;
}

static int
slow_ask(butler_server *self, void *user, struct ask *m)
{
	struct answer a = { .y = m->x };
	struct timespec ts = { 0, 200 * 1000 * 1000 };

	(void)user;
	nanosleep(&ts, NULL);
	return butler_reply(self, &a, sizeof a);
}

static void
setup(struct gui *g, struct fx *f, GSource **src)
{
	struct fx_handlers h = fx_handlers_default();

	fx_init(f, 2, 1u << 16);
	f->servers[GUI].loop = BUTLER_LOOP_EXTERNAL;
	g->ctx = g_main_context_new();
	g->thread = g_thread_self();
	ASSERT_OK(butler_hub_new(&g->hub, &f->spec));
	h.ask = slow_ask;
	ASSERT_OK(fx_register(g->hub, WORKER, &h, g));
	h = fx_handlers_default();
	h.num = gui_num;
	ASSERT_OK(fx_register(g->hub, GUI, &h, g));
	ASSERT_OK(butler_hub_start(g->hub));
	ASSERT_OK(butler_glib_attach(g->hub, GUI, g->ctx, 64, src));
}

static void
teardown(struct gui *g, GSource *src)
{
	ASSERT_OK(butler_hub_stop(g->hub, BUTLER_STOP_DRAIN));
	g_source_destroy(src);
	g_source_unref(src);
	butler_hub_free(g->hub);
	g_main_context_unref(g->ctx);
}

static void *
send_one_later(void *arg)
{
	struct gui *g = arg;
	struct num m = { .seq = 1 };
	struct timespec ts = { 0, 50 * 1000 * 1000 };

	nanosleep(&ts, NULL); /* let the loop fall asleep first */
	ASSERT_OK(butler_send(g->hub, GUI, K_NUM, &m, sizeof m));
	return NULL;
}

Test(glib, wakes_an_idle_loop_within_one_iteration, .timeout = 30)
{
	struct gui g = { 0 };
	struct fx f;
	GSource *src;
	pthread_t th;

	setup(&g, &f, &src);
	/* Attaching a source wakes the context once: settle to idle first. */
	while (g_main_context_iteration(g.ctx, FALSE))
		;
	pthread_create(&th, NULL, send_one_later, &g);
	/* One blocking iteration: it sleeps in poll until the fd wakes it,
	 * then dispatches our source. */
	g_main_context_iteration(g.ctx, TRUE);
	cr_assert_eq(g.handled, 1);
	cr_assert_eq(g.wrong_thread, 0);
	pthread_join(th, NULL);
	teardown(&g, src);
}

static void *
flood(void *arg)
{
	struct gui *g = arg;

	for (uint64_t i = 0; i < 10000; i++) {
		struct num m = { .seq = i };

		while (butler_send(g->hub, GUI, K_NUM, &m, sizeof m)
		    == BUTLER_EFULL)
			sched_yield();
	}
	return NULL;
}

Test(glib, drains_a_flood_in_bounded_batches, .timeout = 60)
{
	struct gui g = { 0 };
	struct fx f;
	GSource *src;
	pthread_t th;
	unsigned long iterations = 0, before;

	setup(&g, &f, &src);
	pthread_create(&th, NULL, flood, &g);
	while (g.handled < 10000) {
		before = g.handled;
		g_main_context_iteration(g.ctx, TRUE);
		/* Never more than the batch per dispatch: the GUI stays fair.
		 */
		cr_assert_leq(g.handled - before, 64);
		iterations++;
	}
	pthread_join(th, NULL);
	cr_assert_geq(iterations, 10000 / 64);
	cr_assert_eq(g.wrong_thread, 0);
	teardown(&g, src);
}

typedef void (*answer_fn)(butler_server *, int, struct answer *, void *);

static void
answer_thunk(
    butler_server *self, int status, void *reply, void (*cb)(void), void *user)
{
	((answer_fn)cb)(self, status, reply, user);
}

static void
on_answer(butler_server *self, int status, struct answer *a, void *user)
{
	struct gui *g = user;

	(void)self;
	(void)a;
	g->answers++;
	if (status == BUTLER_ETIMEDOUT)
		g->timed_out++;
}

Test(glib, request_timeout_fires_on_an_idle_loop, .timeout = 30)
{
	struct gui g = { 0 };
	struct fx f;
	GSource *src;
	struct ask a = { 5, 0 };

	setup(&g, &f, &src);
	/* The main thread owns the GUI server: it may call from here, as a
	 * GTK callback would. The worker takes 200 ms; we give it 20. */
	ASSERT_OK(butler_call(g.hub, WORKER, K_ASK, &a, sizeof a, 20,
	    answer_thunk, (void (*)(void))on_answer, &g, NULL));
	while (g.answers == 0)
		g_main_context_iteration(g.ctx, TRUE);
	cr_assert_eq(g.timed_out, 1);
	teardown(&g, src);
}
