/* SPDX-License-Identifier: MIT */
/*
 * test_fault.c — fault injection (linked with butler_fault, the runtime
 * built with BUTLER_FAULT_INJECTION): a scenario that uses every part of
 * the hub (start, sends, owned messages, async calls with deferred answers,
 * blocking calls, stop, free) runs once cleanly to count the allocations,
 * fds and threads it asks for, then once per N with the Nth (or the Nth and
 * every later one) made to fail. Each failure must come back as an error
 * code; nothing may leak (ASan, valgrind), no thread or fd may be left, the
 * hub must still stop and free, and every accepted message must be handled
 * or destroyed exactly once.
 */
#include "fixture.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include "alloc.h"

enum { GATE = 0, BACK = 1, CLIENT = 2, LATE = 3 };

/* Beyond the fixture's four messages: two requests whose progress is an
 * `owned` message (destruction counted), one plain, one "latest". The
 * back end and LATE accept them, as their kinds 5 and 6. The client asks
 * the back end for plain progress and LATE for latest: two threads, so
 * each progress flow makes its own lane into the client's inbox, and the
 * sweep fails each flow's first push (where the lane is made), not only
 * the copies. */
enum { M_PASK = 4, M_LASK = 5, N_MSGS = 6 };
enum { K_PASK = 5, K_LASK = 6 };

static const unsigned back_accepts[]
    = { M_NUM, M_OWNED, M_ASK, M_ANSWER, M_PASK, M_LASK };

struct back_handlers {
	struct fx_handlers fx;
	fx_ask_fn pask, lask;
};

static struct fx F;
static butler_msg_desc MSGS[N_MSGS]; /* the scenario's messages */
static unsigned long answers, calls_ok, owned_ok;
/* Progress messages the hub took (butler_progress() returned OK): each is
 * then destroyed by it exactly once. Posted on the back end's thread. */
static atomic_ulong progress_ok;

typedef void (*ask_reply_fn)(
    butler_server *self, int status, struct answer *reply, void *user);

static void
ask_thunk(
    butler_server *self, int status, void *reply, void (*cb)(void), void *user)
{
	((ask_reply_fn)cb)(self, status, reply, user);
}

static bool
is_code(int rv)
{
	return rv >= BUTLER_OK && rv < BUTLER_ERR_COUNT_;
}

static int
back_ask(butler_server *self, void *user, struct ask *m)
{
	struct answer a = { .y = m->x * 2, .note = strdup("b") };
	int rv;

	(void)user;
	rv = butler_reply(self, &a, sizeof a);
	cr_assert_eq(rv, BUTLER_OK); /* an answer never fails */
	return 0;
}

static void
on_back(butler_server *self, int status, struct answer *reply, void *user)
{
	uint64_t promise = (uint64_t)(uintptr_t)user;

	if (status == BUTLER_OK) {
		struct answer a = { .y = reply->y + 1, .note = strdup("g") };

		cr_assert_eq(
		    butler_answer(self, promise, &MSGS[M_ASK], &a, sizeof a),
		    BUTLER_OK);
	} else {
		cr_assert_eq(butler_fail(self, promise, &MSGS[M_ASK], status),
		    BUTLER_OK);
	}
}

/* Posts `steps` progress messages, each with an owned field, then
 * answers. What butler_progress() refuses is still ours to free. */
static int
back_progress(butler_server *self, struct ask *m, unsigned steps)
{
	struct answer a = { .y = m->x * 2, .note = strdup("p") };

	for (unsigned i = 0; i < steps; i++) {
		struct owned o = fx_owned(0);
		int rv = butler_progress(self, &o, sizeof o);

		cr_assert(is_code(rv));
		if (rv == BUTLER_OK)
			atomic_fetch_add(&progress_ok, 1);
		else
			free(o.text);
	}
	cr_assert_eq(butler_reply(self, &a, sizeof a), BUTLER_OK);
	return 0;
}

static int
back_pask(butler_server *self, void *user, struct ask *m)
{
	(void)user;
	return back_progress(self, m, 2);
}

/* Three in a row: the second and third may replace an undelivered one. */
static int
back_lask(butler_server *self, void *user, struct ask *m)
{
	(void)user;
	return back_progress(self, m, 3);
}

static int
back_dispatch(butler_server *self, const void *handlers, void *user,
    unsigned kind, void *msg)
{
	const struct back_handlers *h = handlers;

	switch (kind) {
	case K_PASK:
		return h->pask(self, user, msg);
	case K_LASK:
		return h->lask(self, user, msg);
	}
	return fx_dispatch(self, &h->fx, user, kind, msg);
}

static void
progress_thunk(
    butler_server *self, void *progress, void (*cb)(void), void *user)
{
	struct owned *o = progress;

	(void)self;
	(void)cb;
	(void)user;
	cr_assert_str_eq(o->text, "msg-0");
}

/* The gateway defers and asks the back end; a failed call fails it. */
static int
gate_ask(butler_server *self, void *user, struct ask *m)
{
	uint64_t promise;
	struct ask a = { m->x, 0 };
	int rv;

	(void)user;
	cr_assert_eq(butler_defer(self, &MSGS[M_ASK], &promise), BUTLER_OK);
	rv = butler_call(butler_server_hub(self), BACK, K_ASK, &a, sizeof a,
	    5000, ask_thunk, (void (*)(void))on_back,
	    (void *)(uintptr_t)promise, NULL);
	cr_assert(is_code(rv));
	if (rv != BUTLER_OK)
		cr_assert_eq(
		    butler_fail(self, promise, &MSGS[M_ASK], rv), BUTLER_OK);
	return 0;
}

static void
on_answer(butler_server *self, int status, struct answer *reply, void *user)
{
	(void)self;
	(void)user;
	(void)reply;
	cr_assert(is_code(status));
	answers++;
}

static void *
waiter(void *arg)
{
	butler_hub *hub = arg;

	for (uint64_t i = 0; i < 4; i++) {
		struct ask a = { i, 0 };
		struct answer r;
		int rv = butler_call_wait(
		    hub, BACK, K_ASK, &a, sizeof a, 5000, &r, sizeof r);

		cr_assert(is_code(rv));
		if (rv == BUTLER_OK)
			free(r.note);
	}
	/* A caller that does not listen for progress: the hub destroys it. */
	for (unsigned k = K_PASK; k <= K_LASK; k++) {
		struct ask a = { 9, 0 };
		struct answer r;
		int rv = butler_call_wait(
		    hub, BACK, k, &a, sizeof a, 5000, &r, sizeof r);

		cr_assert(is_code(rv));
		if (rv == BUTLER_OK)
			free(r.note);
	}
	return NULL;
}

/* Runs the whole life of a hub; every step may fail, none may crash. */
static void
scenario(void)
{
	struct fx_handlers gate = fx_handlers_default(), client = gate;
	struct back_handlers back = { gate, back_pask, back_lask };
	butler_hub *hub;
	pthread_t th;
	int rv;

	answers = calls_ok = owned_ok = 0;
	atomic_store(&progress_ok, 0);
	fx_init(&F, 4, 64);
	memcpy(MSGS, F.msgs, sizeof F.msgs);
	MSGS[M_PASK] = (butler_msg_desc) { "pask", sizeof(struct ask), NULL,
		M_ANSWER, M_OWNED, 0, NULL, NULL, NULL };
	MSGS[M_LASK] = MSGS[M_PASK];
	MSGS[M_LASK].name = "lask";
	MSGS[M_LASK].flags = BUTLER_MSG_PROGRESS_LATEST;
	F.spec.messages = MSGS;
	F.spec.n_messages = N_MSGS;
	F.servers[BACK].accepts = back_accepts;
	F.servers[BACK].n_accepts = N_MSGS;
	F.servers[BACK].dispatch = back_dispatch;
	F.servers[BACK].handlers_size = sizeof(struct back_handlers);
	F.servers[LATE] = F.servers[BACK];
	F.servers[LATE].name = "s3";
	F.servers[GATE].instances = 2;
	F.servers[CLIENT].loop = BUTLER_LOOP_EXTERNAL;
	/* A watchdog limit: the hub's monitor thread runs too. */
	F.servers[BACK].max_handler_ms = 60000;
	gate.ask = gate_ask;
	back.fx.ask = back_ask;
	rv = butler_hub_new(&hub, &F.spec);
	cr_assert(is_code(rv));
	if (rv != BUTLER_OK)
		return;
	butler_hub_set_log(hub, fx_quiet, BUTLER_LOG_DEBUG, NULL);
	if (fx_register(hub, GATE, &gate, NULL) != BUTLER_OK
	    || butler_hub_set_handlers(
	           hub, BACK, &back, sizeof back, NULL, NULL, NULL)
	        != BUTLER_OK
	    || butler_hub_set_handlers(
	           hub, LATE, &back, sizeof back, NULL, NULL, NULL)
	        != BUTLER_OK
	    || fx_register(hub, CLIENT, &client, NULL) != BUTLER_OK) {
		butler_hub_free(hub);
		return;
	}
	rv = butler_hub_start(hub);
	cr_assert(is_code(rv));
	if (rv != BUTLER_OK) {
		butler_hub_free(hub);
		return;
	}
	for (uint64_t i = 0; i < 64; i++) {
		struct num n = { .seq = i };
		struct owned o = fx_owned(i + 1);

		cr_assert(
		    is_code(butler_send(hub, BACK, K_NUM, &n, sizeof n)));
		if (butler_send(hub, GATE, K_OWNED, &o, sizeof o) == BUTLER_OK)
			owned_ok++;
		else
			free(o.text); /* still ours */
	}
	for (uint64_t i = 0; i < 8; i++) {
		struct ask a = { i, 0 };

		rv = butler_call(hub, GATE, K_ASK, &a, sizeof a, 5000,
		    ask_thunk, (void (*)(void))on_answer, NULL, NULL);
		cr_assert(is_code(rv));
		if (rv == BUTLER_OK)
			calls_ok++;
	}
	/* Progress to this (external) server, plain and "latest". */
	for (unsigned k = K_PASK; k <= K_LASK; k++) {
		struct ask a = { k, 0 };

		rv = butler_call_progress(hub, k == K_PASK ? BACK : LATE, k,
		    &a, sizeof a, 5000, ask_thunk, (void (*)(void))on_answer,
		    progress_thunk, NULL, NULL, NULL);
		cr_assert(is_code(rv));
		if (rv == BUTLER_OK)
			calls_ok++;
	}
	if (pthread_create(&th, NULL, waiter, hub) == 0)
		pthread_join(th, NULL);
	/* Every accepted call ends: answered, or failed with a code. */
	while (answers < calls_ok) {
		struct pollfd p = { .fd = butler_server_fd(hub, CLIENT),
			.events = POLLIN };

		poll(&p, 1, 100);
		cr_assert(is_code(butler_server_drain(hub, CLIENT, 0, NULL)));
	}
	cr_assert_eq(butler_hub_stop(hub, BUTLER_STOP_DRAIN), BUTLER_OK);
	cr_assert_eq(butler_hub_pending(hub, NULL, NULL), 0);
	butler_hub_free(hub);
}

static unsigned long
clean_run(int site)
{
	butler__fault_arm(site, 0, false);
	scenario();
	return butler__fault_calls(site);
}

/* Sweeps the Nth request of `site` failing (and, sticky, all after it). */
static void
sweep(int site, const char *what)
{
	unsigned long total = clean_run(site), swept = 0;
	int fds = fx_count_dir("/proc/self/fd");

	cr_assert_gt(total, 0);
	for (unsigned long n = 1; n <= total + 4; n++)
		for (int sticky = 0; sticky < 2; sticky++) {
			unsigned long before
			    = atomic_load(&fx_destroyed_total);

			butler__fault_arm(site, n, sticky != 0);
			scenario();
			butler__fault_arm(site, 0, false);
			/* Every owned message accepted (sent, or posted as
			 * progress) was destroyed once. */
			cr_assert_eq(atomic_load(&fx_destroyed_total) - before,
			    owned_ok + atomic_load(&progress_ok),
			    "%s %lu: owned messages", what, n);
			cr_assert_eq(fx_server_threads_gone(), 0,
			    "%s %lu: a server thread is left", what, n);
			/* A joined thread may stay listed for a moment. */
			for (int i = 0; i < 1000
			     && fx_threads_named("butler-monitor") != 0;
			     i++)
				usleep(1000);
			cr_assert_eq(fx_threads_named("butler-monitor"), 0,
			    "%s %lu: the monitor thread is left", what, n);
			cr_assert_eq(fx_count_dir("/proc/self/fd"), fds,
			    "%s %lu: an fd is left", what, n);
			swept++;
		}
	printf("fault: %s: %lu requests per run, %u call sites reached, "
	       "%lu runs swept\n",
	    what, total, butler__fault_places(site), swept);
}

Test(fault, every_allocation_can_fail, .timeout = 600)
{
	sweep(BUTLER__FAULT_ALLOC, "allocations");
	cr_assert_geq(butler__fault_places(BUTLER__FAULT_ALLOC), 20);
}

Test(fault, every_fd_can_fail, .timeout = 300)
{
	sweep(BUTLER__FAULT_FD, "fds");
}

Test(fault, every_thread_can_fail, .timeout = 300)
{
	sweep(BUTLER__FAULT_THREAD, "threads");
}

/* Out of fds for real: a pool that cannot have its loops returns ESYS,
 * it does not exit the process (libevent would). */
Test(fault, running_out_of_fds_returns_esys, .timeout = 120)
{
	struct rlimit old, low;
	struct fx_handlers h = fx_handlers_default();
	butler_hub *hub;
	int rv;

	getrlimit(RLIMIT_NOFILE, &old);
	fx_init(&F, 1, 64);
	F.servers[0].instances = 300;
	rv = butler_hub_new(&hub, &F.spec);
	ASSERT_OK(rv);
	butler_hub_set_log(hub, fx_quiet, BUTLER_LOG_DEBUG, NULL);
	ASSERT_OK(fx_register(hub, 0, &h, NULL));
	/* 300 eventfds exist; leave room for a few loops only. */
	low = old;
	low.rlim_cur = (rlim_t)fx_count_dir("/proc/self/fd") + 20;
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	rv = butler_hub_start(hub);
	setrlimit(RLIMIT_NOFILE, &old);
	ASSERT_ERR(rv, BUTLER_ESYS);
	butler_hub_free(hub);
	cr_assert_eq(fx_server_threads_gone(), 0);
}
