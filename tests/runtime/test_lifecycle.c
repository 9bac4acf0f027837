/* SPDX-License-Identifier: MIT */
/*
 * test_lifecycle.c — start, stop and free: stop policies, double stop,
 * stopping while producers send, on_start failure, many cycles without a
 * leaked fd or thread, and two hubs side by side.
 */
#include "fixture.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

static atomic_ulong handled_owned;

static int
count_owned(butler_server *self, void *user, struct owned *m)
{
	(void)self;
	(void)user;
	cr_assert_not_null(m->text);
	atomic_fetch_add(&handled_owned, 1);
	return 0;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Queues n owned messages (serials base..base+n-1) into server 0. */
static void
queue_owned(butler_hub *hub, unsigned server, uint64_t base, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		struct owned m = fx_owned(base + i);

		ASSERT_OK(butler_send(hub, server, K_OWNED, &m, sizeof m));
	}
}

static void
assert_each_destroyed_once(uint64_t n)
{
	uint64_t i;

	for (i = 0; i < n; i++)
		cr_assert_eq(atomic_load(&fx_destroyed[i]), 1,
		    "serial %llu destroyed %u times", (unsigned long long)i,
		    atomic_load(&fx_destroyed[i]));
}

/* External server: queued messages meet the policy deterministically. */
static void
stop_external_with_queue(butler_stop_policy policy)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	butler_hub *hub;
	butler_stats st;
	const unsigned n = 1000;

	fx_init(&f, 1, 4096);
	f.servers[0].loop = BUTLER_LOOP_EXTERNAL;
	h.owned = count_owned;
	hub = fx_hub(&f, &h, NULL);
	ASSERT_OK(butler_hub_start(hub));
	queue_owned(hub, 0, 0, n);
	ASSERT_OK(butler_hub_stop(hub, policy));
	ASSERT_OK(butler_server_stats(hub, 0, &st));
	if (policy == BUTLER_STOP_DRAIN) {
		cr_assert_eq(st.handled, n);
		cr_assert_eq(st.dropped, 0);
		cr_assert_eq(atomic_load(&handled_owned), n);
	} else {
		cr_assert_eq(st.handled, 0);
		cr_assert_eq(st.dropped, n);
		cr_assert_eq(atomic_load(&handled_owned), 0);
	}
	cr_assert_eq(st.depth, 0);
	butler_hub_free(hub);
	assert_each_destroyed_once(n);
}

Test(lifecycle, stop_drain_handles_queued_external, .timeout = 30)
{
	stop_external_with_queue(BUTLER_STOP_DRAIN);
}

Test(lifecycle, stop_discard_destroys_queued_external, .timeout = 30)
{
	stop_external_with_queue(BUTLER_STOP_DISCARD);
}

static int
slow_owned(butler_server *self, void *user, struct owned *m)
{
	(void)self;
	(void)user;
	(void)m;
	if (atomic_fetch_add(&handled_owned, 1) == 0)
		sleep_ms(50); /* let a backlog build up behind us */
	return 0;
}

/* Threaded server: whatever the interleaving, each message is handled or
 * destroyed exactly once, and DRAIN handles everything. */
static void
stop_threaded_with_queue(butler_stop_policy policy)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	butler_hub *hub;
	butler_stats st;
	const unsigned n = 20000;

	fx_init(&f, 1, n);
	h.owned = slow_owned;
	hub = fx_hub(&f, &h, NULL);
	ASSERT_OK(butler_hub_start(hub));
	queue_owned(hub, 0, 0, n);
	ASSERT_OK(butler_hub_stop(hub, policy));
	ASSERT_OK(butler_server_stats(hub, 0, &st));
	cr_assert_eq(st.handled + st.dropped, n);
	if (policy == BUTLER_STOP_DRAIN)
		cr_assert_eq(st.handled, n);
	butler_hub_free(hub);
	assert_each_destroyed_once(n);
}

Test(lifecycle, stop_drain_threaded, .timeout = 60)
{
	stop_threaded_with_queue(BUTLER_STOP_DRAIN);
}

Test(lifecycle, stop_discard_threaded, .timeout = 60)
{
	stop_threaded_with_queue(BUTLER_STOP_DISCARD);
}

Test(lifecycle, queued_before_start_freed_if_never_started, .timeout = 30)
{
	struct fx f;
	butler_hub *hub;

	fx_init(&f, 1, 64);
	ASSERT_OK(butler_hub_new(&hub, &f.spec));
	queue_owned(hub, 0, 0, 50);
	butler_hub_free(hub);
	assert_each_destroyed_once(50);
}

Test(lifecycle, double_stop_and_restart_refused, .timeout = 30)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	butler_hub *hub;
	struct num m = { 0 };

	fx_init(&f, 2, 64);
	ASSERT_OK(butler_hub_new(&hub, &f.spec));
	ASSERT_OK(fx_register(hub, 0, &h, NULL));
	ASSERT_OK(fx_register(hub, 1, &h, NULL));
	ASSERT_OK(butler_hub_start(hub));
	ASSERT_ERR(butler_hub_start(hub), BUTLER_ESTATE);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DISCARD));
	ASSERT_ERR(butler_send(hub, 0, K_NUM, &m, sizeof m), BUTLER_ECLOSED);
	ASSERT_ERR(butler_hub_start(hub), BUTLER_ESTATE);
	ASSERT_ERR(fx_register(hub, 0, &h, NULL), BUTLER_ESTATE);
	butler_hub_free(hub);
	butler_hub_free(NULL);
}

struct racer {
	butler_hub *hub;
	uint64_t base;
	atomic_ulong *accepted;
};

static void *
race_sender(void *arg)
{
	struct racer *r = arg;
	uint64_t i;

	for (i = 0;; i++) {
		struct owned m = fx_owned(r->base + i);
		int rv = butler_send(r->hub, 0, K_OWNED, &m, sizeof m);

		if (rv == BUTLER_OK) {
			atomic_fetch_add(r->accepted, 1);
			continue;
		}
		free(m.text);
		if (rv == BUTLER_ECLOSED)
			break;
		cr_assert_eq(rv, BUTLER_EFULL, "%s", butler_errname(rv));
		sched_yield();
	}
	return NULL;
}

static void
stop_while_sending(butler_stop_policy policy)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	butler_hub *hub;
	struct racer r[4];
	pthread_t th[4];
	atomic_ulong accepted = 0;
	butler_stats st;
	int i;

	fx_init(&f, 1, 1024);
	h.owned = count_owned;
	hub = fx_hub(&f, &h, NULL);
	ASSERT_OK(butler_hub_start(hub));
	for (i = 0; i < 4; i++) {
		r[i] = (struct racer) { hub, (uint64_t)i * 200000, &accepted };
		pthread_create(&th[i], NULL, race_sender, &r[i]);
	}
	sleep_ms(30);
	ASSERT_OK(butler_hub_stop(hub, policy));
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	ASSERT_OK(butler_server_stats(hub, 0, &st));
	cr_assert_eq(st.sent, atomic_load(&accepted));
	butler_hub_free(hub);
	/* Every accepted message was handled or destroyed, exactly once
	 * (the destructor runs after handling too). */
	cr_assert_eq(atomic_load(&fx_destroyed_total), atomic_load(&accepted));
	for (i = 0; i < 4; i++)
		for (uint64_t k = 0; k < 200000; k++)
			cr_assert_leq(
			    atomic_load(&fx_destroyed[i * 200000 + k]), 1);
	cr_assert_leq(atomic_load(&handled_owned), atomic_load(&accepted));
}

Test(lifecycle, stop_while_producers_send_drain, .timeout = 120)
{
	stop_while_sending(BUTLER_STOP_DRAIN);
}

Test(lifecycle, stop_while_producers_send_discard, .timeout = 120)
{
	stop_while_sending(BUTLER_STOP_DISCARD);
}

static atomic_int started[3], stopped[3];

static int
start_ok(butler_server *self, void *user)
{
	(void)user;
	atomic_fetch_add(&started[butler_server_id(self)], 1);
	return 0;
}

static int
start_fails(butler_server *self, void *user)
{
	(void)user;
	atomic_fetch_add(&started[butler_server_id(self)], 1);
	return 42;
}

static void
on_stop_count(butler_server *self, void *user)
{
	(void)user;
	atomic_fetch_add(&stopped[butler_server_id(self)], 1);
}

Test(lifecycle, on_start_failure_fails_start_and_leaves_nothing, .timeout = 30)
{
	struct fx f;
	struct fx_handlers ok = fx_handlers_default(), bad = ok;
	butler_hub *hub;
	int fds_before = fx_count_dir("/proc/self/fd");

	fx_init(&f, 3, 64);
	f.servers[2].loop = BUTLER_LOOP_EXTERNAL;
	ok.on_start = start_ok;
	ok.on_stop = on_stop_count;
	ok.owned = count_owned;
	bad.on_start = start_fails;
	bad.on_stop = on_stop_count;
	ASSERT_OK(butler_hub_new(&hub, &f.spec));
	butler_hub_set_log(hub, fx_quiet, BUTLER_LOG_DEBUG, NULL);
	ASSERT_OK(fx_register(hub, 0, &ok, NULL));
	ASSERT_OK(fx_register(hub, 1, &bad, NULL));
	ASSERT_OK(fx_register(hub, 2, &ok, NULL));
	queue_owned(hub, 0, 0, 10);
	ASSERT_ERR(butler_hub_start(hub), 42);

	/* Everyone's on_start ran; on_stop ran only where it succeeded. */
	for (int i = 0; i < 3; i++)
		cr_assert_eq(atomic_load(&started[i]), 1);
	cr_assert_eq(atomic_load(&stopped[0]), 1);
	cr_assert_eq(atomic_load(&stopped[1]), 0);
	cr_assert_eq(atomic_load(&stopped[2]), 1);
	/* No handler saw a message; nothing is left running. */
	cr_assert_eq(atomic_load(&handled_owned), 0);
	assert_each_destroyed_once(10);
	cr_assert_eq(fx_server_threads_gone(), 0);
	cr_assert_gt(atomic_load(&fx_log_count), 0);
	ASSERT_ERR(butler_hub_start(hub), BUTLER_ESTATE);
	butler_hub_free(hub);
	cr_assert_eq(fx_count_dir("/proc/self/fd"), fds_before);
}

Test(lifecycle, missing_handler_is_an_error_at_start, .timeout = 30)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	butler_hub *hub;

	fx_init(&f, 2, 64);
	h.ask = NULL;
	ASSERT_OK(butler_hub_new(&hub, &f.spec));
	butler_hub_set_log(hub, fx_quiet, BUTLER_LOG_DEBUG, NULL);
	ASSERT_OK(fx_register(hub, 0, &h, NULL));
	/* Server 1 has no table at all, server 0 lacks 'ask'. */
	ASSERT_ERR(butler_hub_start(hub), BUTLER_ENOHANDLER);
	h = fx_handlers_default();
	ASSERT_OK(fx_register(hub, 1, &h, NULL));
	h.ask = NULL;
	ASSERT_ERR(butler_hub_start(hub), BUTLER_ENOHANDLER);
	butler_hub_free(hub);
}

Test(lifecycle, two_hundred_cycles_leave_no_fd_or_thread, .timeout = 240)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	int fds_before = fx_count_dir("/proc/self/fd");
	int cycle;

	fx_init(&f, 3, 64);
	f.servers[1].instances = 2;
	f.servers[2].loop = BUTLER_LOOP_EXTERNAL;
	for (cycle = 0; cycle < 200; cycle++) {
		butler_hub *hub;
		struct num m = { .seq = (uint64_t)cycle };

		ASSERT_OK(butler_hub_new(&hub, &f.spec));
		for (unsigned s = 0; s < 3; s++)
			ASSERT_OK(fx_register(hub, s, &h, NULL));
		ASSERT_OK(butler_hub_start(hub));
		if (cycle == 0)
			cr_assert_eq(
			    fx_server_threads(), 3); /* s0, s1/0, s1/1 */
		ASSERT_OK(butler_send(hub, 0, K_NUM, &m, sizeof m));
		ASSERT_OK(butler_send(hub, 1, K_NUM, &m, sizeof m));
		ASSERT_OK(butler_send(hub, 2, K_NUM, &m, sizeof m));
		ASSERT_OK(butler_hub_stop(
		    hub, cycle % 2 ? BUTLER_STOP_DRAIN : BUTLER_STOP_DISCARD));
		butler_hub_free(hub);
	}
	cr_assert_eq(fx_server_threads_gone(), 0);
	cr_assert_eq(fx_count_dir("/proc/self/fd"), fds_before);
}

struct pair_state {
	atomic_ulong count;
	uint32_t tag;
	atomic_int wrong_tag;
};

static int
tagged_num(butler_server *self, void *user, struct num *m)
{
	struct pair_state *p = user;

	(void)self;
	if (m->tag != p->tag)
		atomic_fetch_add(&p->wrong_tag, 1);
	atomic_fetch_add(&p->count, 1);
	return 0;
}

Test(lifecycle, two_hubs_side_by_side, .timeout = 60)
{
	struct fx fa, fb;
	struct fx_handlers h = fx_handlers_default();
	struct pair_state pa = { .tag = 1 }, pb = { .tag = 2 };
	butler_hub *a, *b;
	unsigned i;

	fx_init(&fa, 1, 1u << 14);
	fx_init(&fb, 1, 1u << 14);
	h.num = tagged_num;
	ASSERT_OK(butler_hub_new(&a, &fa.spec));
	ASSERT_OK(butler_hub_new(&b, &fb.spec));
	ASSERT_OK(fx_register(a, 0, &h, &pa));
	ASSERT_OK(fx_register(b, 0, &h, &pb));
	ASSERT_OK(butler_hub_start(a));
	ASSERT_OK(butler_hub_start(b));
	for (i = 0; i < 10000; i++) {
		struct num ma = { .seq = i, .tag = 1 },
		           mb = { .seq = i, .tag = 2 };

		while (
		    butler_send(a, 0, K_NUM, &ma, sizeof ma) == BUTLER_EFULL)
			sched_yield();
		while (
		    butler_send(b, 0, K_NUM, &mb, sizeof mb) == BUTLER_EFULL)
			sched_yield();
	}
	/* Stopping and freeing one hub leaves the other working. */
	ASSERT_OK(butler_hub_stop(a, BUTLER_STOP_DRAIN));
	butler_hub_free(a);
	for (i = 0; i < 1000; i++) {
		struct num mb = { .seq = i, .tag = 2 };

		while (
		    butler_send(b, 0, K_NUM, &mb, sizeof mb) == BUTLER_EFULL)
			sched_yield();
	}
	ASSERT_OK(butler_hub_stop(b, BUTLER_STOP_DRAIN));
	butler_hub_free(b);
	cr_assert_eq(atomic_load(&pa.count), 10000);
	cr_assert_eq(atomic_load(&pb.count), 11000);
	cr_assert_eq(
	    atomic_load(&pa.wrong_tag) + atomic_load(&pb.wrong_tag), 0);
}

/*
 * Servers that forward to each other and to themselves while the hub
 * stops. tests/model (stop.pml) found two stops that could hang (a server
 * waiting for itself, or two for each other, after publishing into a hub
 * that closed) and a DRAIN that concluded "all quiet" with a forward on
 * its way, which then failed. Many short rounds widen the windows; the
 * chaos build (chaos_lifecycle) shakes them further.
 */
static atomic_ulong forward_failures;

static int
forward_num(butler_server *self, void *user, struct num *m)
{
	struct num next = { .seq = m->seq - 1, .tag = m->tag };
	unsigned to = (m->seq & 1) ? butler_server_id(self)
	                           : butler_server_id(self) ^ 1u;
	int rv;

	(void)user;
	if (m->seq == 0)
		return 0;
	rv = butler_send(
	    butler_server_hub(self), to, K_NUM, &next, sizeof next);
	if (rv != BUTLER_OK && (m->tag == 0 || rv != BUTLER_ECLOSED))
		atomic_fetch_add(&forward_failures, 1);
	return 0;
}

static void
stop_while_forwarding(butler_stop_policy policy, unsigned rounds)
{
	for (unsigned round = 0; round < rounds; round++) {
		struct fx f;
		struct fx_handlers h = fx_handlers_default();
		/* DRAIN: bounded chains, all of which must complete. DISCARD:
		 * chains that never end, cut by the stop (tag 1: ECLOSED is
		 * then expected). */
		const uint64_t hops = policy == BUTLER_STOP_DRAIN ? 40 : ~0ull;
		uint64_t sent = 0, ended = 0;
		butler_hub *hub;

		atomic_store(&forward_failures, 0);
		fx_init(&f, 2, 256);
		h.num = forward_num;
		hub = fx_hub(&f, &h, NULL);
		ASSERT_OK(butler_hub_start(hub));
		for (unsigned i = 0; i < 8; i++) {
			struct num m = { .seq = hops,
				.tag = policy == BUTLER_STOP_DISCARD };

			ASSERT_OK(
			    butler_send(hub, i & 1, K_NUM, &m, sizeof m));
		}
		if (round & 1)
			sched_yield();
		ASSERT_OK(butler_hub_stop(hub, policy));
		for (unsigned s = 0; s < 2; s++) {
			butler_stats st;

			ASSERT_OK(butler_server_stats(hub, s, &st));
			cr_assert_eq(st.depth, 0);
			sent += st.sent;
			ended += st.handled + st.failed + st.dropped;
		}
		cr_assert_eq(sent, ended, "round %u: %llu sent, %llu ended",
		    round, (unsigned long long)sent,
		    (unsigned long long)ended);
		cr_assert_eq(atomic_load(&forward_failures), 0,
		    "round %u: a forward failed", round);
		if (policy == BUTLER_STOP_DRAIN)
			cr_assert_eq(sent, 8 * (hops + 1));
		butler_hub_free(hub);
	}
}

Test(lifecycle, a_drain_lets_forwards_between_servers_finish, .timeout = 300)
{
	stop_while_forwarding(BUTLER_STOP_DRAIN, 300);
}

Test(lifecycle, a_discard_ends_servers_that_forward_forever, .timeout = 300)
{
	stop_while_forwarding(BUTLER_STOP_DISCARD, 300);
}
