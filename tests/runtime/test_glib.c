/* SPDX-License-Identifier: MIT */
/*
 * test_glib.c — the GLib adapter: an external-loop server on a GMainContext
 * wakes an idle loop, drains floods in bounded batches, and times requests
 * out from prepare().
 */
#include "fixture.h"

#include <butler/glib.h>
#include <glib-object.h>
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

/* ---- bindings: deliveries only while a GObject lives ------------------ */

/*
 * A widget stand-in: a GObject whose finalize marks its `life`, so that a
 * callback or handler can tell whether it runs after its object is gone.
 */
struct life {
	atomic_bool finalized;
	atomic_ulong runs;  /* callbacks or handlers run for it */
	atomic_ulong after; /* ... of them after its finalize */
	atomic_ulong ok;    /* callbacks with BUTLER_OK */
};

typedef struct {
	GObject parent;
	struct life *life;
} TestWidget;

typedef struct {
	GObjectClass parent_class;
} TestWidgetClass;

G_DEFINE_TYPE(TestWidget, test_widget, G_TYPE_OBJECT)

static void
test_widget_finalize(GObject *object)
{
	TestWidget *w = (TestWidget *)object;

	atomic_store(&w->life->finalized, true);
	G_OBJECT_CLASS(test_widget_parent_class)->finalize(object);
}

static void
test_widget_class_init(TestWidgetClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = test_widget_finalize;
}

static void
test_widget_init(TestWidget *w)
{
	(void)w;
}

static GObject *
widget_new(struct life *life)
{
	TestWidget *w = g_object_new(test_widget_get_type(), NULL);

	w->life = life;
	return G_OBJECT(w);
}

/* Counts one run for `life`, and whether it came after the finalize. */
static void
lived(struct life *life)
{
	atomic_fetch_add(&life->runs, 1);
	if (atomic_load(&life->finalized))
		atomic_fetch_add(&life->after, 1);
}

/* Replies made by the worker and destroyed by the hub, per serial (the
 * answer's y), to prove "exactly once". */
#define MAX_REPLIES 4096
static atomic_uint reply_destroyed[MAX_REPLIES];
static atomic_ulong replies_made, replies_destroyed;

static void
counted_answer_destroy(void *p)
{
	struct answer *a = p;

	free(a->note);
	a->note = NULL;
	if (a->y < MAX_REPLIES)
		atomic_fetch_add(&reply_destroyed[a->y], 1);
	atomic_fetch_add(&replies_destroyed, 1);
}

/* Progress steps (struct answer's layout, a message of their own) the hub
 * destroyed. */
static atomic_ulong steps_destroyed;

static void
step_destroy(void *p)
{
	(void)p;
	atomic_fetch_add(&steps_destroyed, 1);
}

/* What the worker's handlers share with the test. */
struct bench {
	atomic_ulong handled;       /* requests the worker began */
	atomic_ulong free_runs;     /* requests it answers without waiting */
	atomic_bool gate;           /* then waits for this (or a cancel) */
	atomic_ulong saw_cancel;    /* handlers that saw butler_cancelled() */
	atomic_ulong steps;         /* progress steps to post per request */
	atomic_ulong step_sleep_us; /* between them */
};

static void
sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

/*
 * The worker: the first `free_runs` requests are answered at once; later
 * ones wait until the gate opens or their caller cancels. Posts `steps`
 * progress messages first (on requests with progress). Every reply owns a
 * note, so that its destruction is counted.
 */
static int
gated_ask(butler_server *self, void *user, struct ask *m)
{
	struct bench *b = user;
	unsigned long n = atomic_fetch_add(&b->handled, 1);
	struct answer a = { .y = m->x };
	int rv;

	for (unsigned long i = 0; i < atomic_load(&b->steps); i++) {
		struct answer step = { .y = i };

		if (butler_cancelled(self))
			break;
		(void)butler_progress(self, &step, sizeof step);
		if (atomic_load(&b->step_sleep_us) != 0)
			sleep_us((long)atomic_load(&b->step_sleep_us));
	}
	if (n >= atomic_load(&b->free_runs))
		while (!atomic_load(&b->gate) && !butler_cancelled(self))
			sleep_us(200);
	if (butler_cancelled(self))
		atomic_fetch_add(&b->saw_cancel, 1);
	a.note = strdup("reply");
	rv = butler_reply(self, &a, sizeof a);
	if (rv == BUTLER_OK)
		atomic_fetch_add(&replies_made, 1);
	else
		free(a.note);
	return rv;
}

/* A hub of a threaded worker and a GUI server on its own main context,
 * whose answers own a counted note; with `progress`, `ask` posts steps. */
struct env {
	struct fx f;
	butler_msg_desc msgs[5];
	butler_hub *hub;
	GMainContext *ctx;
	GSource *src;
	struct bench bench;
};

static void
env_start(struct env *e, fx_num_fn on_num, fx_owned_fn on_owned,
    void *gui_user, bool progress)
{
	struct fx_handlers h = fx_handlers_default();

	fx_init(&e->f, 2, 1u << 16);
	memcpy(e->msgs, e->f.msgs, sizeof e->f.msgs);
	e->msgs[M_ANSWER].destroy = counted_answer_destroy;
	e->msgs[4] = (butler_msg_desc) { "step", sizeof(struct answer),
		step_destroy, -1, -1, 0, NULL, NULL, NULL };
	if (progress)
		e->msgs[M_ASK].progress = 4;
	e->f.spec.messages = e->msgs;
	e->f.spec.n_messages = 5;
	e->f.servers[GUI].loop = BUTLER_LOOP_EXTERNAL;
	e->ctx = g_main_context_new();
	ASSERT_OK(butler_hub_new(&e->hub, &e->f.spec));
	ASSERT_OK(butler_hub_enable_metrics(e->hub, GUI));
	h.ask = gated_ask;
	ASSERT_OK(fx_register(e->hub, WORKER, &h, &e->bench));
	h = fx_handlers_default();
	if (on_num != NULL)
		h.num = on_num;
	if (on_owned != NULL)
		h.owned = on_owned;
	ASSERT_OK(fx_register(e->hub, GUI, &h, gui_user));
	ASSERT_OK(butler_hub_start(e->hub));
	ASSERT_OK(butler_glib_attach(e->hub, GUI, e->ctx, 64, &e->src));
}

/* Stops the hub (`policy`) and frees it; every reply the worker made has
 * then been destroyed, exactly once. */
static void
env_stop(struct env *e, butler_stop_policy policy)
{
	atomic_store(&e->bench.gate, true);
	ASSERT_OK(butler_hub_stop(e->hub, policy));
	g_source_destroy(e->src);
	g_source_unref(e->src);
	butler_hub_free(e->hub);
	g_main_context_unref(e->ctx);
	cr_assert_eq(atomic_load(&replies_destroyed),
	    atomic_load(&replies_made), "%lu replies made, %lu destroyed",
	    atomic_load(&replies_made), atomic_load(&replies_destroyed));
	for (unsigned i = 0; i < MAX_REPLIES; i++)
		cr_assert_leq(atomic_load(&reply_destroyed[i]), 1,
		    "reply %u destroyed %u times", i,
		    atomic_load(&reply_destroyed[i]));
}

typedef void (*life_answer_fn)(butler_server *, int, struct answer *, void *);

static void
on_life_answer(butler_server *self, int status, struct answer *a, void *user)
{
	struct life *life = user;

	(void)self;
	(void)a;
	lived(life);
	if (status == BUTLER_OK)
		atomic_fetch_add(&life->ok, 1);
}

/* Calls the worker (request serial x) with a callback counting for life. */
static uint64_t
call_for(struct env *e, uint64_t x, struct life *life)
{
	struct ask a = { x, 0 };
	uint64_t id = 0;

	ASSERT_OK(butler_call(e->hub, WORKER, K_ASK, &a, sizeof a, -1,
	    answer_thunk, (void (*)(void))on_life_answer, life, &id));
	return id;
}

/* Iterates ctx until *counter reaches want. */
static void
iterate_until(GMainContext *ctx, atomic_ulong *counter, unsigned long want)
{
	while (atomic_load(counter) < want)
		g_main_context_iteration(ctx, TRUE);
}

struct ids {
	uint64_t *id;
	size_t n;
	size_t found; /* of them still pending */
};

static void
count_pending(const butler_pending_info *info, void *user)
{
	struct ids *ids = user;

	for (size_t i = 0; i < ids->n; i++)
		if (ids->id[i] == info->id)
			ids->found++;
}

/* How many of `ids` are still waiting for their answers. */
static size_t
still_pending(butler_hub *hub, struct ids *ids)
{
	ids->found = 0;
	(void)butler_hub_pending(hub, count_pending, ids);
	return ids->found;
}

Test(glib, widget_finalized_with_replies_in_flight, .timeout = 60)
{
	enum { N = 50, FREE = 10 };
	struct env e = { 0 };
	struct life l1 = { 0 }, l2 = { 0 };
	GObject *w1, *w2;
	uint64_t w1_ids[N];
	struct ids ids = { w1_ids, N, 0 };

	atomic_store(&e.bench.free_runs, FREE);
	env_start(&e, NULL, NULL, NULL, false);
	w1 = widget_new(&l1);
	w2 = widget_new(&l2);
	/* Calls alternate between the two widgets: even serials for w1. The
	 * worker answers the first FREE, then waits at the gate. */
	for (uint64_t i = 0; i < 2 * N; i++) {
		uint64_t id = call_for(&e, i, i % 2 == 0 ? &l1 : &l2);

		ASSERT_OK(butler_glib_bind_call(e.hub, id, i % 2 ? w2 : w1));
		if (i % 2 == 0)
			w1_ids[i / 2] = id;
	}
	iterate_until(e.ctx, &l1.runs, FREE / 2);
	cr_assert_eq(atomic_load(&l1.ok), FREE / 2);
	/* The rest of w1's calls are still open: queued, or waiting at the
	 * gate. The window closes: */
	cr_assert_eq(still_pending(e.hub, &ids), N - FREE / 2);
	g_object_unref(w1);
	cr_assert(atomic_load(&l1.finalized));
	/* Finalizing w1 on this thread cancelled its calls at once, their
	 * callbacks silent. */
	cr_assert_eq(still_pending(e.hub, &ids), 0);
	cr_assert_eq(atomic_load(&l1.runs), FREE / 2);
	atomic_store(&e.bench.gate, true);
	iterate_until(e.ctx, &l2.runs, N);
	cr_assert_eq(atomic_load(&l2.ok), N);
	cr_assert_eq(atomic_load(&l2.after), 0);
	/* Whatever still comes for w1 (a reply made before its cancel was
	 * seen) is destroyed unseen. */
	while (butler_hub_pending(e.hub, NULL, NULL) != 0)
		g_main_context_iteration(e.ctx, FALSE);
	env_stop(&e, BUTLER_STOP_DRAIN);
	cr_assert_eq(atomic_load(&l1.after), 0);
	cr_assert_eq(atomic_load(&l1.runs), FREE / 2);
	cr_assert_eq(atomic_load(&l2.runs), N);
	g_object_unref(w2);
	cr_assert(atomic_load(&l2.finalized));
}

static int
gui_owned_lived(butler_server *self, void *user, struct owned *m)
{
	(void)self;
	(void)m;
	lived(user);
	return 0;
}

/* Iterates until the GUI server has taken `want` messages, handled or
 * dropped. The counters are exact here: this thread is their consumer. */
static butler_stats
iterate_until_taken(struct env *e, uint64_t want)
{
	butler_stats st;

	for (;;) {
		ASSERT_OK(butler_server_stats(e->hub, GUI, &st));
		if (st.handled + st.failed + st.dropped >= want)
			return st;
		g_main_context_iteration(e->ctx, TRUE);
	}
}

static void
check_destroyed_once(uint64_t n)
{
	cr_assert_eq(atomic_load(&fx_destroyed_total), n);
	for (uint64_t i = 0; i < n; i++)
		cr_assert_eq(atomic_load(&fx_destroyed[i]), 1,
		    "message %llu destroyed %u times", (unsigned long long)i,
		    atomic_load(&fx_destroyed[i]));
}

Test(glib, bound_messages_delivered_while_alive_dropped_after, .timeout = 60)
{
	enum { N = 50 };
	struct env e = { 0 };
	struct life l = { 0 };
	struct owned m;
	butler_binding *b;
	butler_stats st;
	butler_kind_stats ks;
	GObject *w;

	env_start(&e, NULL, gui_owned_lived, &l, false);
	w = widget_new(&l);
	/* Refused: nothing bound, the message still the caller's. */
	m = fx_owned(9999);
	ASSERT_ERR(
	    butler_glib_send_for(e.hub, GUI, K_OWNED, &m, sizeof m, NULL),
	    BUTLER_EINVAL);
	ASSERT_ERR(butler_glib_send_for(e.hub, GUI, K_OWNED, &m, 3, w),
	    BUTLER_EINVAL);
	free(m.text);
	ASSERT_ERR(butler_glib_binding_new(&b, NULL), BUTLER_EINVAL);
	cr_assert_null(b);
	butler_glib_binding_unref(NULL);

	/* While the widget lives, its messages are handled: half of them
	 * one binding per send, half one binding shared by reference. */
	for (uint64_t i = 0; i < N / 2; i++) {
		m = fx_owned(i);
		ASSERT_OK(butler_glib_send_for(
		    e.hub, GUI, K_OWNED, &m, sizeof m, w));
	}
	ASSERT_OK(butler_glib_binding_new(&b, w));
	for (uint64_t i = N / 2; i < N; i++) {
		m = fx_owned(i);
		ASSERT_OK(butler_send_bound(e.hub, GUI, K_OWNED, &m, sizeof m,
		    butler_glib_binding_ref(b)));
	}
	/* A send that fails leaves its reference with the caller. */
	{
		butler_binding *r = butler_glib_binding_ref(b);

		ASSERT_ERR(butler_send_bound(e.hub, GUI, K_OWNED, &m, 1, r),
		    BUTLER_EINVAL);
		butler_glib_binding_unref(r);
	}
	iterate_until(e.ctx, &l.runs, N);
	cr_assert_eq(atomic_load(&l.after), 0);

	/* N more, and the widget goes before the loop gets to them. */
	for (uint64_t i = N; i < 2 * N; i++) {
		m = fx_owned(i);
		ASSERT_OK(i % 2 ? butler_glib_send_for(
		              e.hub, GUI, K_OWNED, &m, sizeof m, w)
		                : butler_send_bound(e.hub, GUI, K_OWNED, &m,
		                    sizeof m, butler_glib_binding_ref(b)));
	}
	butler_glib_binding_unref(b); /* ours; the sends hold their own */
	g_object_unref(w);
	cr_assert(atomic_load(&l.finalized));
	st = iterate_until_taken(&e, 2 * N);
	cr_assert_eq(atomic_load(&l.runs), N);
	cr_assert_eq(atomic_load(&l.after), 0);
	cr_assert_eq(st.handled, N);
	cr_assert_eq(st.dropped, N);
	ASSERT_OK(butler_server_kind_stats(e.hub, GUI, K_OWNED, &ks));
	cr_assert(ks.metrics);
	cr_assert_eq(ks.sent, 2 * N);
	cr_assert_eq(ks.handled, N);
	cr_assert_eq(ks.dropped, N);
	env_stop(&e, BUTLER_STOP_DRAIN);
	check_destroyed_once(2 * N);
}

/* A sender thread: M messages bound to one widget, one reference each. */
struct sender {
	struct env *e;
	butler_binding *b;
	uint64_t n;
};

static void *
send_bound_flood(void *arg)
{
	struct sender *s = arg;

	for (uint64_t i = 0; i < s->n; i++) {
		struct owned m = fx_owned(i);
		int rv;

		for (;;) {
			rv = butler_send_bound(s->e->hub, GUI, K_OWNED, &m,
			    sizeof m, butler_glib_binding_ref(s->b));
			if (butler_taken(rv))
				break;
			butler_glib_binding_unref(s->b);
			cr_assert_eq(rv, BUTLER_EFULL);
			sched_yield();
		}
	}
	butler_glib_binding_unref(s->b);
	return NULL;
}

Test(glib, bound_flood_from_a_thread_while_the_widget_goes, .timeout = 60)
{
	enum { M = 5000 };
	struct env e = { 0 };
	struct life l = { 0 };
	struct sender s = { &e, NULL, M };
	butler_stats st;
	pthread_t th;
	GObject *w;

	env_start(&e, NULL, gui_owned_lived, &l, false);
	w = widget_new(&l);
	ASSERT_OK(butler_glib_binding_new(&s.b, w)); /* the thread's */
	pthread_create(&th, NULL, send_bound_flood, &s);
	iterate_until(e.ctx, &l.runs, 100);
	/* At most a batch more than 100 were handled: most are still to
	 * come, and all of those are dropped. */
	g_object_unref(w);
	cr_assert(atomic_load(&l.finalized));
	st = iterate_until_taken(&e, M);
	pthread_join(th, NULL);
	cr_assert_eq(atomic_load(&l.after), 0);
	cr_assert_eq(st.handled, atomic_load(&l.runs));
	cr_assert_eq(st.handled + st.dropped, M);
	cr_assert_gt(st.dropped, 0);
	env_stop(&e, BUTLER_STOP_DRAIN);
	check_destroyed_once(M);
}

/* ---- bound calls ------------------------------------------------------- */

static void *
bind_from_a_stranger(void *arg)
{
	struct env *e = arg;
	GObject *o = g_object_new(G_TYPE_OBJECT, NULL);
	int rv = butler_glib_bind_call(e->hub, 1, o);

	g_object_unref(o);
	return (void *)(intptr_t)rv;
}

Test(glib, bound_call_cancelled_when_its_widget_is_finalized, .timeout = 60)
{
	struct env e = { 0 };
	struct life l = { 0 };
	pthread_t th;
	uint64_t id;
	GObject *w;
	void *rv;

	env_start(&e, NULL, NULL, NULL, false);
	w = widget_new(&l);
	id = call_for(&e, 1, &l);
	ASSERT_ERR(butler_glib_bind_call(NULL, id, w), BUTLER_EINVAL);
	ASSERT_ERR(butler_glib_bind_call(e.hub, id, NULL), BUTLER_EINVAL);
	ASSERT_ERR(
	    butler_glib_bind_call(e.hub, id + 100, w), BUTLER_ENOTFOUND);
	pthread_create(&th, NULL, bind_from_a_stranger, &e);
	pthread_join(th, &rv);
	ASSERT_ERR((int)(intptr_t)rv, BUTLER_ESTATE);
	ASSERT_OK(butler_glib_bind_call(e.hub, id, w));
	/* The worker is in its handler, waiting at the gate. */
	while (atomic_load(&e.bench.handled) == 0)
		sleep_us(100);
	g_object_unref(w);
	cr_assert(atomic_load(&l.finalized));
	/* Cancelled right in the finalize: nothing pending, the callback
	 * silent, and the worker sees butler_cancelled(). */
	cr_assert_eq(butler_hub_pending(e.hub, NULL, NULL), 0);
	while (atomic_load(&e.bench.saw_cancel) == 0)
		sleep_us(100);
	/* Its reply, made anyway, is destroyed on arrival. */
	while (atomic_load(&replies_destroyed) == 0)
		g_main_context_iteration(e.ctx, FALSE);
	env_stop(&e, BUTLER_STOP_DRAIN);
	cr_assert_eq(atomic_load(&l.runs), 0);
}

Test(glib, bound_call_that_ends_first_lets_go_of_its_widget, .timeout = 60)
{
	struct env e = { 0 };
	struct life l1 = { 0 }, l2 = { 0 };
	GObject *w1, *w2;
	uint64_t id;

	atomic_store(&e.bench.free_runs, 1);
	env_start(&e, NULL, NULL, NULL, false);
	w1 = widget_new(&l1);
	w2 = widget_new(&l2);
	/* Bound twice: the second binding replaces the first. */
	id = call_for(&e, 1, &l1);
	ASSERT_OK(butler_glib_bind_call(e.hub, id, w2));
	ASSERT_OK(butler_glib_bind_call(e.hub, id, w1));
	iterate_until(e.ctx, &l1.runs, 1);
	cr_assert_eq(atomic_load(&l1.ok), 1);
	/* Finalizing either widget now touches no call. */
	g_object_unref(w1);
	cr_assert(atomic_load(&l1.finalized));
	/* A call still open when the hub stops ends then, the widget alive:
	 * its callback runs (ESTOPPED, or the reply), and lets go of it. */
	id = call_for(&e, 2, &l2);
	ASSERT_OK(butler_glib_bind_call(e.hub, id, w2));
	while (atomic_load(&e.bench.handled) < 2)
		sleep_us(100);
	env_stop(&e, BUTLER_STOP_DISCARD);
	cr_assert_eq(atomic_load(&l2.runs), 1);
	/* The hub is gone; the widget's disposal must not reach for it. */
	g_object_unref(w2);
	cr_assert(atomic_load(&l2.finalized));
	cr_assert_eq(atomic_load(&l1.runs), 1);
	cr_assert_eq(atomic_load(&l1.after) + atomic_load(&l2.after), 0);
}

/* The callback that closes its own window: it drops the last reference
 * the application has, so the widget is finalized in the hub's leave(),
 * right after the callback, and that cancels the other calls bound to it,
 * from inside the answer of the first. */
struct closing {
	struct life life;
	GObject *widget;
};

static void
on_answer_close(butler_server *self, int status, struct answer *a, void *user)
{
	struct closing *c = user;

	(void)self;
	(void)status;
	(void)a;
	lived(&c->life);
	g_clear_object(&c->widget);
	cr_assert(!atomic_load(&c->life.finalized)); /* held till leave() */
}

Test(glib, callback_that_finalizes_its_widget_cancels_the_rest, .timeout = 60)
{
	struct env e = { 0 };
	struct closing c = { 0 };
	struct ask a = { 1, 0 };
	uint64_t id;

	atomic_store(&e.bench.free_runs, 1);
	env_start(&e, NULL, NULL, NULL, false);
	c.widget = widget_new(&c.life);
	for (uint64_t i = 0; i < 3; i++) {
		a.x = i;
		ASSERT_OK(butler_call(e.hub, WORKER, K_ASK, &a, sizeof a, -1,
		    answer_thunk, (void (*)(void))on_answer_close, &c, &id));
		ASSERT_OK(butler_glib_bind_call(e.hub, id, c.widget));
	}
	iterate_until(e.ctx, &c.life.runs, 1);
	cr_assert(atomic_load(&c.life.finalized));
	cr_assert_null(c.widget);
	cr_assert_eq(butler_hub_pending(e.hub, NULL, NULL), 0);
	env_stop(&e, BUTLER_STOP_DRAIN);
	cr_assert_eq(atomic_load(&c.life.runs), 1);
	cr_assert_eq(atomic_load(&c.life.after), 0);
}

typedef void (*step_fn)(butler_server *, struct answer *, void *);

static void
step_thunk(butler_server *self, void *progress, void (*cb)(void), void *user)
{
	((step_fn)cb)(self, progress, user);
}

static void
on_step_close(butler_server *self, struct answer *s, void *user)
{
	struct closing *c = user;

	(void)self;
	(void)s;
	lived(&c->life);
	g_clear_object(&c->widget);
}

/* Calls the worker for progress steps, user c, progress callback pcb. */
static uint64_t
call_steps(struct env *e, void *user, step_fn pcb, life_answer_fn cb)
{
	struct ask a = { 1, 0 };
	uint64_t id = 0;

	ASSERT_OK(butler_call_progress(e->hub, WORKER, K_ASK, &a, sizeof a, -1,
	    answer_thunk, (void (*)(void))cb, step_thunk, (void (*)(void))pcb,
	    user, &id));
	return id;
}

Test(glib, progress_callback_that_finalizes_its_widget, .timeout = 60)
{
	struct env e = { 0 };
	struct closing c = { 0 };
	uint64_t id;

	atomic_store(&e.bench.steps, 100000);
	atomic_store(&e.bench.step_sleep_us, 500);
	env_start(&e, NULL, NULL, NULL, true);
	c.widget = widget_new(&c.life);
	id = call_steps(&e, &c, on_step_close, on_answer_close);
	ASSERT_OK(butler_glib_bind_call(e.hub, id, c.widget));
	iterate_until(e.ctx, &c.life.runs, 1);
	/* Finalized in the progress message's leave(): the call is
	 * cancelled there, the worker stops. */
	cr_assert(atomic_load(&c.life.finalized));
	cr_assert_eq(butler_hub_pending(e.hub, NULL, NULL), 0);
	while (atomic_load(&e.bench.saw_cancel) == 0)
		sleep_us(100);
	env_stop(&e, BUTLER_STOP_DRAIN);
	cr_assert_eq(atomic_load(&c.life.runs), 1);
	cr_assert_eq(atomic_load(&c.life.after), 0);
}

static void
on_step_life(butler_server *self, struct answer *s, void *user)
{
	(void)self;
	(void)s;
	lived(user);
}

static void *
unref_elsewhere(void *arg)
{
	g_object_unref(arg);
	return NULL;
}

Test(glib, widget_finalized_on_another_thread, .timeout = 60)
{
	struct env e = { 0 };
	struct life l = { 0 };
	unsigned long seen;
	pthread_t th;
	uint64_t id;
	GObject *w;

	atomic_store(&e.bench.steps, 100000);
	atomic_store(&e.bench.step_sleep_us, 500);
	env_start(&e, NULL, NULL, NULL, true);
	w = widget_new(&l);
	id = call_steps(&e, &l, on_step_life, on_life_answer);
	ASSERT_OK(butler_glib_bind_call(e.hub, id, w));
	iterate_until(e.ctx, &l.runs, 1);
	/* The last reference goes on another thread: no cancel from there,
	 * but nothing is delivered any more, and the next progress message
	 * cancels the call. */
	pthread_create(&th, NULL, unref_elsewhere, w);
	pthread_join(th, NULL);
	cr_assert(atomic_load(&l.finalized));
	seen = atomic_load(&l.runs);
	while (butler_hub_pending(e.hub, NULL, NULL) != 0)
		g_main_context_iteration(e.ctx, TRUE);
	while (atomic_load(&e.bench.saw_cancel) == 0)
		sleep_us(100);
	env_stop(&e, BUTLER_STOP_DRAIN);
	cr_assert_eq(atomic_load(&l.runs), seen);
	cr_assert_eq(atomic_load(&l.after), 0);
}

/* ---- bounded dispatches ------------------------------------------------ */

struct counted {
	atomic_ulong steps;
	atomic_ulong answers;
	long sleep_us; /* per progress callback */
};

static void
on_step_count(butler_server *self, struct answer *s, void *user)
{
	struct counted *c = user;

	(void)self;
	(void)s;
	if (c->sleep_us)
		sleep_us(c->sleep_us);
	atomic_fetch_add(&c->steps, 1);
}

static void
on_answer_count(butler_server *self, int status, struct answer *a, void *user)
{
	struct counted *c = user;

	(void)self;
	(void)status;
	(void)a;
	atomic_fetch_add(&c->answers, 1);
}

/* The worker posts `steps` progress messages as fast as it can, then
 * answers; returns the most progress callbacks one dispatch ran. */
static unsigned long
progress_flood(struct counted *c, unsigned long steps)
{
	struct env e = { 0 };
	unsigned long most = 0;

	atomic_store(&e.bench.steps, steps);
	atomic_store(&e.bench.free_runs, 1);
	env_start(&e, NULL, NULL, NULL, true);
	(void)call_steps(&e, c, on_step_count, on_answer_count);
	/* Let the worker post them all first: a full inbox to drain. */
	while (atomic_load(&replies_made) == 0)
		sleep_us(1000);
	while (atomic_load(&c->answers) == 0) {
		unsigned long before = atomic_load(&c->steps);

		g_main_context_iteration(e.ctx, TRUE);
		if (atomic_load(&c->steps) - before > most)
			most = atomic_load(&c->steps) - before;
	}
	env_stop(&e, BUTLER_STOP_DRAIN);
	cr_assert_eq(atomic_load(&c->steps), steps);
	cr_assert_eq(atomic_load(&steps_destroyed), steps);
	return most;
}

Test(glib, progress_flood_bounded_per_dispatch, .timeout = 60)
{
	struct counted c = { 0 };
	unsigned long most = progress_flood(&c, 5000);

	/* Never more than the batch (64) per dispatch. */
	cr_assert_leq(
	    most, 64, "%lu progress callbacks in one dispatch", most);
	cr_assert_geq(most, 1);
}

Test(glib, slow_progress_bounded_by_time_per_dispatch, .timeout = 60)
{
	struct counted c = { .sleep_us = 300 };
	unsigned long most = progress_flood(&c, 200);

	/* Each callback takes at least 0.3 ms: the millisecond budget ends a
	 * dispatch after a few of them (the drain reads the clock after each
	 * slow one), far below the batch. */
	cr_assert_leq(most, 8, "%lu slow callbacks in one dispatch", most);
}

/*
 * Replies are bounded per dispatch like messages: a thousand replies that
 * arrive together run at most a batch of callbacks in one dispatch, the
 * rest in the next ones (oldest first).
 */
Test(glib, replies_bounded_per_dispatch, .timeout = 60)
{
	enum { N = 1000 };
	struct env e = { 0 };
	struct life l = { 0 };
	unsigned long most = 0;

	atomic_store(&e.bench.free_runs, N);
	env_start(&e, NULL, NULL, NULL, false);
	for (uint64_t i = 0; i < N; i++)
		(void)call_for(&e, i, &l);
	while (atomic_load(&replies_made) < N)
		sleep_us(1000);
	while (atomic_load(&l.runs) < N) {
		unsigned long before = atomic_load(&l.runs);

		g_main_context_iteration(e.ctx, TRUE);
		if (atomic_load(&l.runs) - before > most)
			most = atomic_load(&l.runs) - before;
	}
	env_stop(&e, BUTLER_STOP_DRAIN);
	cr_assert_leq(most, 64, "%lu replies in one dispatch", most);
}

/* Makes n calls whose replies all arrive, runs one dispatch (which must
 * leave some of them), then stops the hub with `policy`. */
static void
stop_with_replies_left(struct life *l, butler_stop_policy policy)
{
	enum { N = 1000 };
	struct env e = { 0 };

	atomic_store(&e.bench.free_runs, N);
	env_start(&e, NULL, NULL, NULL, false);
	for (uint64_t i = 0; i < N; i++)
		(void)call_for(&e, i, l);
	while (atomic_load(&replies_made) < N)
		sleep_us(1000);
	while (atomic_load(&l->runs) == 0)
		g_main_context_iteration(e.ctx, TRUE);
	cr_assert_lt(atomic_load(&l->runs), N, "one dispatch delivered all");
	env_stop(&e, policy);
	/* Each call ended once (env_stop checked each reply destroyed once).
	 */
	cr_assert_eq(atomic_load(&l->runs), N);
}

/* Replies a bounded dispatch left for later are delivered by a stop, each
 * once and with its answer: not ended by the stop, whether it drains or
 * discards (the answers had arrived). One stop per test: the reply
 * counters are the process's. */
Test(glib, replies_left_by_a_dispatch_reach_their_callers_at_a_drain,
    .timeout = 60)
{
	struct life l = { 0 };

	stop_with_replies_left(&l, BUTLER_STOP_DRAIN);
	cr_assert_eq(atomic_load(&l.ok), 1000, "a reply was lost");
}

Test(glib, replies_left_by_a_dispatch_reach_their_callers_at_a_discard,
    .timeout = 60)
{
	struct life l = { 0 };

	stop_with_replies_left(&l, BUTLER_STOP_DISCARD);
	cr_assert_eq(atomic_load(&l.ok), 1000, "a reply was lost");
}

/* g_object_run_dispose() (GTK 3's gtk_widget_destroy()) disposes an object
 * that still has references: its weak notifies run while the GWeakRef
 * still answers, and only then is it cleared. Bound calls are cancelled,
 * silent, from the notify on; messages of a binding made before are
 * dropped once it returns. */
Test(glib, run_dispose_silences_bound_deliveries, .timeout = 60)
{
	struct env e = { 0 };
	struct life l = { 0 };
	struct owned m = fx_owned(0);
	butler_binding *b;
	butler_stats st;
	uint64_t id;
	GObject *w;

	env_start(&e, NULL, gui_owned_lived, &l, false);
	w = widget_new(&l);
	ASSERT_OK(butler_glib_binding_new(&b, w));
	id = call_for(&e, 1, &l);
	ASSERT_OK(butler_glib_bind_call(e.hub, id, w));
	while (atomic_load(&e.bench.handled) == 0)
		sleep_us(100);
	g_object_run_dispose(w);
	cr_assert(!atomic_load(&l.finalized));
	cr_assert_eq(butler_hub_pending(e.hub, NULL, NULL), 0);
	cr_assert_eq(atomic_load(&l.runs), 0);
	ASSERT_OK(butler_send_bound(e.hub, GUI, K_OWNED, &m, sizeof m, b));
	st = iterate_until_taken(&e, 1);
	cr_assert_eq(st.dropped, 1);
	cr_assert_eq(atomic_load(&l.runs), 0);
	g_object_unref(w);
	cr_assert(atomic_load(&l.finalized));
	env_stop(&e, BUTLER_STOP_DRAIN);
	check_destroyed_once(1);
}
