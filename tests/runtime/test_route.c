/* SPDX-License-Identifier: MIT */
/*
 * test_route.c — how a pool spreads its work: round-robin, least loaded,
 * by key (one key, one instance, in order), and work sharing (an idle
 * instance takes what waits behind a long job on a busy one).
 */
#include "fixture.h"

#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <time.h>

enum { POOL = 0, N_PRODUCERS = 4 };

static const butler_kind_desc keyed[4] = {
	{ .key = { offsetof(struct num, producer), 4 } },
	{ .key = { offsetof(struct owned, serial), 8 } },
	{ .key = { offsetof(struct ask, x), 8 } },
	{ .key = { offsetof(struct answer, y), 8 } },
};

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

struct producer {
	butler_hub *hub;
	unsigned id;
	unsigned n;
	unsigned keys; /* tag = producer * keys + seq % keys */
};

static void *
produce(void *arg)
{
	struct producer *p = arg;

	for (unsigned i = 0; i < p->n; i++) {
		struct num m = { .seq = i, .producer = p->id };

		if (p->keys)
			m.producer = p->id * p->keys + i % p->keys;
		m.tag = p->id;
		cr_assert_eq(
		    butler_send(p->hub, POOL, K_NUM, &m, sizeof m), BUTLER_OK);
	}
	return NULL;
}

static void
run_producers(butler_hub *hub, unsigned n, unsigned keys)
{
	struct producer p[N_PRODUCERS];
	pthread_t th[N_PRODUCERS];

	for (unsigned i = 0; i < N_PRODUCERS; i++) {
		p[i] = (struct producer) { hub, i, n, keys };
		pthread_create(&th[i], NULL, produce, &p[i]);
	}
	for (unsigned i = 0; i < N_PRODUCERS; i++)
		pthread_join(th[i], NULL);
}

/* What each instance handled; the outcomes add up for the pool (with
 * sharing, an instance handles what was sent to a sibling). */
static void
per_instance(butler_hub *hub, uint64_t *handled, unsigned n)
{
	uint64_t sent = 0, ended = 0;
	butler_stats st;

	cr_assert_eq(butler_server_instances(hub, POOL), n);
	for (unsigned i = 0; i < n; i++) {
		ASSERT_OK(butler_instance_stats(hub, POOL, i, &st));
		sent += st.sent;
		ended += st.handled + st.failed + st.dropped + st.abandoned;
		handled[i] = st.handled;
	}
	cr_assert_eq(sent, ended);
	ASSERT_OK(butler_server_stats(hub, POOL, &st));
	cr_assert_eq(st.sent, sent);
	ASSERT_ERR(butler_instance_stats(hub, POOL, n, &st), BUTLER_EINVAL);
}

Test(route, round_robin_spreads_evenly, .timeout = 120)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	uint64_t handled[4], total = 0;
	butler_hub *hub;

	fx_init(&f, 1, 1u << 16);
	f.servers[POOL].instances = 4;
	hub = fx_hub(&f, &h, NULL);
	ASSERT_OK(butler_hub_start(hub));
	run_producers(hub, 20000, 0);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	per_instance(hub, handled, 4);
	for (unsigned i = 0; i < 4; i++) {
		/* Each thread deals its own sends in turn: exactly even. */
		cr_assert_eq(handled[i], 20000, "instance %u: %llu", i,
		    (unsigned long long)handled[i]);
		total += handled[i];
	}
	cr_assert_eq(total, 4 * 20000);
	butler_hub_free(hub);
}

Test(route, threads_that_send_one_each_spread_over_the_pool, .timeout = 120)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	uint64_t handled[4];
	unsigned used = 0;
	butler_hub *hub;

	fx_init(&f, 1, 64);
	f.servers[POOL].instances = 4;
	hub = fx_hub(&f, &h, NULL);
	ASSERT_OK(butler_hub_start(hub));
	/* Each producer thread is new to the hub: before each thread got its
	 * own round-robin start, all 16 messages went to instance 0. */
	for (unsigned round = 0; round < 4; round++)
		run_producers(hub, 1, 0);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	per_instance(hub, handled, 4);
	for (unsigned i = 0; i < 4; i++)
		used += handled[i] > 0;
	cr_assert_geq(
	    used, 3, "16 one-message threads used %u instances", used);
	butler_hub_free(hub);
}

/* Per-key order: the last sequence number seen for each key. */
#define KEYS 64
static uint64_t last_seq[N_PRODUCERS * KEYS];
static unsigned key_instance[N_PRODUCERS * KEYS];
static atomic_ulong out_of_order, wrong_instance;

static int
keyed_num(butler_server *self, void *user, struct num *m)
{
	unsigned k = m->producer, me = butler_server_instance(self) + 1;

	(void)user;
	/* One key, one instance: only this thread touches slot k. */
	if (key_instance[k] == 0)
		key_instance[k] = me;
	else if (key_instance[k] != me)
		atomic_fetch_add(&wrong_instance, 1);
	if (last_seq[k] != 0 && m->seq <= last_seq[k] - 1)
		atomic_fetch_add(&out_of_order, 1);
	last_seq[k] = m->seq + 1;
	return 0;
}

Test(route, by_key_keeps_one_instance_and_order_per_key, .timeout = 120)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	uint64_t handled[4];
	unsigned used = 0;
	butler_hub *hub;

	memset(last_seq, 0, sizeof last_seq);
	memset(key_instance, 0, sizeof key_instance);
	atomic_store(&out_of_order, 0);
	atomic_store(&wrong_instance, 0);
	fx_init(&f, 1, 1u << 16);
	f.servers[POOL].instances = 4;
	f.servers[POOL].route = BUTLER_ROUTE_KEY;
	f.servers[POOL].kinds = keyed;
	h.num = keyed_num;
	hub = fx_hub(&f, &h, NULL);
	ASSERT_OK(butler_hub_start(hub));
	run_producers(hub, 20000, KEYS);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	cr_assert_eq(atomic_load(&wrong_instance), 0);
	cr_assert_eq(atomic_load(&out_of_order), 0);
	per_instance(hub, handled, 4);
	for (unsigned i = 0; i < 4; i++)
		used += handled[i] > 0;
	cr_assert_eq(used, 4, "256 keys went to %u instances", used);
	butler_hub_free(hub);
}

Test(route, a_key_route_without_keys_is_refused, .timeout = 30)
{
	struct fx f;
	butler_hub *hub;

	fx_init(&f, 1, 64);
	f.servers[POOL].instances = 2;
	f.servers[POOL].route = BUTLER_ROUTE_KEY;
	ASSERT_ERR(butler_hub_new(&hub, &f.spec), BUTLER_EINVAL);
	f.servers[POOL].kinds = keyed;
	f.servers[POOL].share = 1; /* sharing would break per-key order */
	ASSERT_ERR(butler_hub_new(&hub, &f.spec), BUTLER_EINVAL);
}

/* A job is a num whose tag says how long it takes, in ms. */
static atomic_int long_job_instance;

static int
job(butler_server *self, void *user, struct num *m)
{
	(void)user;
	if (m->tag >= 100)
		atomic_store(
		    &long_job_instance, (int)butler_server_instance(self));
	sleep_ms(m->tag);
	return 0;
}

static void
send_jobs(butler_hub *hub, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct num m = { .seq = i, .tag = i == 0 ? 300 : 5 };

		ASSERT_OK(butler_send(hub, POOL, K_NUM, &m, sizeof m));
	}
}

Test(route, least_loaded_sends_around_a_busy_instance, .timeout = 120)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	uint64_t handled[2];
	butler_hub *hub;
	int busy;

	atomic_store(&long_job_instance, -1);
	fx_init(&f, 1, 1024);
	f.servers[POOL].instances = 2;
	f.servers[POOL].route = BUTLER_ROUTE_LEAST_LOADED;
	h.num = job;
	hub = fx_hub(&f, &h, NULL);
	ASSERT_OK(butler_hub_start(hub));
	{
		struct num m = { .seq = 0, .tag = 300 };

		ASSERT_OK(butler_send(hub, POOL, K_NUM, &m, sizeof m));
	}
	while ((busy = atomic_load(&long_job_instance)) < 0)
		sched_yield();
	/* Quick jobs, one a millisecond: the other instance is idle again
	 * before each send, the busy one is not. */
	for (unsigned i = 1; i < 60; i++) {
		struct num m = { .seq = i, .tag = 0 };

		ASSERT_OK(butler_send(hub, POOL, K_NUM, &m, sizeof m));
		sleep_ms(1);
	}
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	per_instance(hub, handled, 2);
	/* The busy instance took its long job and little else. */
	cr_assert_lt(handled[busy], 6, "the busy instance took %llu of 60",
	    (unsigned long long)handled[busy]);
	butler_hub_free(hub);
}

Test(
    route, an_idle_instance_takes_what_waits_behind_a_long_job, .timeout = 120)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	uint64_t handled[2];
	butler_hub *hub;
	int busy;

	atomic_store(&long_job_instance, -1);
	fx_init(&f, 1, 1024);
	f.servers[POOL].instances = 2;
	f.servers[POOL].share = 1;
	h.num = job;
	hub = fx_hub(&f, &h, NULL);
	ASSERT_OK(butler_hub_start(hub));
	/* Round-robin deals 30 jobs to each instance, the 300 ms one first;
	 * without sharing, 29 jobs would wait 300 ms behind it. */
	send_jobs(hub, 60);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	busy = atomic_load(&long_job_instance);
	cr_assert(busy == 0 || busy == 1);
	per_instance(hub, handled, 2);
	cr_assert_eq(handled[0] + handled[1], 60);
	cr_assert_lt(handled[busy], 10,
	    "the instance with the long job took %llu of 60 jobs",
	    (unsigned long long)handled[busy]);
	butler_hub_free(hub);
}

static atomic_ulong shared_seen[4096];

static int
count_num(butler_server *self, void *user, struct num *m)
{
	(void)self;
	(void)user;
	atomic_fetch_add(&shared_seen[m->seq % 4096], 1);
	return 0;
}

Test(route, sharing_loses_and_duplicates_nothing, .timeout = 300)
{
	for (int round = 0; round < 20; round++) {
		struct fx f;
		struct fx_handlers h = fx_handlers_default();
		uint64_t handled[4], total = 0;
		butler_hub *hub;

		memset(shared_seen, 0, sizeof shared_seen);
		fx_init(&f, 1, 1u << 16);
		f.servers[POOL].instances = 4;
		f.servers[POOL].share = 1;
		f.servers[POOL].route
		    = round % 2 ? BUTLER_ROUTE_LEAST_LOADED : 0;
		h.num = count_num;
		hub = fx_hub(&f, &h, NULL);
		ASSERT_OK(butler_hub_start(hub));
		run_producers(hub, 4096, 0);
		ASSERT_OK(butler_hub_stop(
		    hub, round % 3 ? BUTLER_STOP_DRAIN : BUTLER_STOP_DISCARD));
		per_instance(hub, handled, 4);
		for (unsigned i = 0; i < 4; i++)
			total += handled[i];
		if (round % 3) {
			/* 4 producers, seq 0..4095 each: every slot 4 times.
			 */
			cr_assert_eq(total, 4 * 4096);
			for (unsigned s = 0; s < 4096; s++)
				cr_assert_eq(atomic_load(&shared_seen[s]), 4);
		} else {
			for (unsigned s = 0; s < 4096; s++)
				cr_assert_leq(atomic_load(&shared_seen[s]), 4);
		}
		butler_hub_free(hub);
	}
}
