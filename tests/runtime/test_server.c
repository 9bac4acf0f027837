/* SPDX-License-Identifier: MIT */
/*
 * test_server.c — what a server does with its messages: handler errors,
 * fairness between a flood and the server's own timers, pools, and the
 * accessors a handler uses.
 */
#include "fixture.h"

#include <event2/event.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>

static atomic_ulong seen;

static int
fail_odd(butler_server *self, void *user, struct owned *m)
{
	(void)self;
	(void)user;
	atomic_fetch_add(&seen, 1);
	return m->serial % 2 ? BUTLER_EHANDLER : 0;
}

Test(server, handler_error_is_counted_and_message_consumed, .timeout = 30)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	butler_hub *hub;
	butler_stats st;
	unsigned i;

	fx_init(&f, 1, 256);
	h.owned = fail_odd;
	ASSERT_OK(butler_hub_new(&hub, &f.spec));
	butler_hub_set_log(hub, fx_quiet, BUTLER_LOG_WARN, NULL);
	ASSERT_OK(fx_register(hub, 0, &h, NULL));
	for (i = 0; i < 100; i++) {
		struct owned m = fx_owned(i);

		ASSERT_OK(butler_send(hub, 0, K_OWNED, &m, sizeof m));
	}
	ASSERT_OK(butler_hub_start(hub));
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	ASSERT_OK(butler_server_stats(hub, 0, &st));
	/* Each message went to the handler once: no retry, no loss. */
	cr_assert_eq(atomic_load(&seen), 100);
	cr_assert_eq(st.handled, 50);
	cr_assert_eq(st.failed, 50);
	cr_assert_eq(st.dropped, 0);
	cr_assert_eq(atomic_load(&fx_log_count), 50);
	butler_hub_free(hub);
	for (i = 0; i < 100; i++)
		cr_assert_eq(atomic_load(&fx_destroyed[i]), 1);
}

/* Fairness: a persistent timer on the server's own loop keeps firing while
 * a backlog of messages is handled. */
struct fair {
	struct event *timer;
	atomic_int fired_during_flood;
	atomic_ulong handled;
	unsigned long total;
	sem_t done;
};

static void
fair_tick(evutil_socket_t fd, short what, void *arg)
{
	struct fair *t = arg;

	(void)fd;
	(void)what;
	if (atomic_load(&t->handled) < t->total)
		atomic_fetch_add(&t->fired_during_flood, 1);
}

static int
fair_start(butler_server *self, void *user)
{
	struct fair *t = user;
	struct timeval ms = { 0, 1000 };

	t->timer = event_new(
	    butler_server_base(self), -1, EV_PERSIST, fair_tick, t);
	return t->timer && event_add(t->timer, &ms) == 0 ? 0 : BUTLER_ESYS;
}

static void
fair_stop(butler_server *self, void *user)
{
	struct fair *t = user;

	(void)self;
	event_free(t->timer);
}

static int
fair_num(butler_server *self, void *user, struct num *m)
{
	struct fair *t = user;
	volatile uint64_t spin = 0;

	(void)self;
	/* A little work per message, so the backlog takes a while. */
	for (uint64_t i = 0; i < 200; i++)
		spin += i * m->seq;
	if (atomic_fetch_add(&t->handled, 1) + 1 == t->total)
		sem_post(&t->done);
	return 0;
}

Test(server, timer_keeps_firing_during_flood, .timeout = 120)
{
	static struct fair t;
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	butler_hub *hub;
	uint64_t i;

	t.total = 300000;
	sem_init(&t.done, 0, 0);
	fx_init(&f, 1, (unsigned)t.total);
	h.on_start = fair_start;
	h.on_stop = fair_stop;
	h.num = fair_num;
	hub = fx_hub(&f, &h, &t);
	/* Queue the whole flood first, so it is there from the first turn. */
	for (i = 0; i < t.total; i++) {
		struct num m = { .seq = i };

		ASSERT_OK(butler_send(hub, 0, K_NUM, &m, sizeof m));
	}
	ASSERT_OK(butler_hub_start(hub));
	sem_wait(&t.done);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	butler_hub_free(hub);
	cr_assert_geq(atomic_load(&t.fired_during_flood), 3,
	    "timer fired %d times during the flood",
	    atomic_load(&t.fired_during_flood));
}

/* Pools: round-robin from one sender spreads evenly over the instances. */
static atomic_ulong per_instance[4];

static int
pool_num(butler_server *self, void *user, struct num *m)
{
	(void)user;
	(void)m;
	atomic_fetch_add(&per_instance[butler_server_instance(self)], 1);
	return 0;
}

Test(server, pool_round_robin, .timeout = 30)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	butler_hub *hub;
	butler_stats st;
	unsigned i;

	fx_init(&f, 1, 1024);
	f.servers[0].instances = 3;
	h.num = pool_num;
	hub = fx_hub(&f, &h, NULL);
	for (i = 0; i < 300; i++) {
		struct num m = { .seq = i };

		ASSERT_OK(butler_send(hub, 0, K_NUM, &m, sizeof m));
	}
	ASSERT_OK(butler_hub_start(hub));
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	ASSERT_OK(butler_server_stats(hub, 0, &st));
	cr_assert_eq(st.handled, 300);
	for (i = 0; i < 3; i++)
		cr_assert_eq(atomic_load(&per_instance[i]), 100);
	butler_hub_free(hub);
}

Test(server, pool_skips_full_instances, .timeout = 30)
{
	struct fx f;
	butler_hub *hub;
	butler_stats st;
	unsigned i;

	fx_init(&f, 1, 2);
	f.servers[0].instances = 3;
	ASSERT_OK(butler_hub_new(&hub, &f.spec));
	/* Six places in all: every one is used before EFULL. */
	for (i = 0; i < 6; i++) {
		struct num m = { .seq = i };

		ASSERT_OK(butler_send(hub, 0, K_NUM, &m, sizeof m));
	}
	struct num m = { 0 };
	ASSERT_ERR(butler_send(hub, 0, K_NUM, &m, sizeof m), BUTLER_EFULL);
	ASSERT_OK(butler_server_stats(hub, 0, &st));
	cr_assert_eq(st.depth, 6);
	butler_hub_free(hub);
}

/* What a handler sees of itself. */
struct self_check {
	butler_hub *hub;
	atomic_int ok;
	int stop_rv;
	int self_full_rv;
	sem_t done;
};

static int
self_num(butler_server *self, void *user, struct num *m)
{
	struct self_check *c = user;
	char name[16] = "";

	(void)m;
	pthread_getname_np(pthread_self(), name, sizeof name);
	if (butler_server_self() == self && butler_server_hub(self) == c->hub
	    && butler_server_id(self) == 1 && butler_server_instance(self) == 0
	    && strcmp(butler_server_name(self), "s1") == 0
	    && strcmp(name, "s1") == 0 && butler_server_base(self) != NULL)
		atomic_store(&c->ok, 1);
	if (m->tag != 0)
		return 0;
	/* Stopping the hub from its own handler would join ourselves. */
	c->stop_rv = butler_hub_stop(c->hub, BUTLER_STOP_DRAIN);
	/* Our own lane into our inbox takes one message (capacity 1); a
	 * second, blocking send to ourselves must fail, not wait forever. */
	m->tag = 1;
	ASSERT_OK(butler_send(c->hub, 1, K_NUM, m, sizeof *m));
	c->self_full_rv = butler_send(c->hub, 1, K_NUM, m, sizeof *m);
	sem_post(&c->done);
	return 0;
}

Test(server, handler_sees_itself, .timeout = 30)
{
	static struct self_check c;
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	struct num m = { 0 };

	sem_init(&c.done, 0, 0);
	fx_init(&f, 2, 1);
	f.servers[1].full = BUTLER_FULL_BLOCK;
	h.num = self_num;
	ASSERT_OK(butler_hub_new(&c.hub, &f.spec));
	ASSERT_OK(fx_register(c.hub, 0, &h, &c));
	ASSERT_OK(fx_register(c.hub, 1, &h, &c));
	ASSERT_OK(butler_hub_start(c.hub));
	cr_assert_null(butler_server_self());
	ASSERT_OK(butler_send(c.hub, 1, K_NUM, &m, sizeof m));
	sem_wait(&c.done);
	cr_assert_eq(atomic_load(&c.ok), 1);
	ASSERT_ERR(c.stop_rv, BUTLER_EDEADLK);
	ASSERT_ERR(c.self_full_rv, BUTLER_EFULL);
	ASSERT_OK(butler_hub_stop(c.hub, BUTLER_STOP_DRAIN));
	butler_hub_free(c.hub);
}

/* Lanes of threads that exited are reclaimed, and their counts kept. */
static void *
one_shot_sender(void *arg)
{
	butler_hub *hub = arg;
	struct num m = { 0 };

	ASSERT_OK(butler_send(hub, 0, K_NUM, &m, sizeof m));
	return NULL;
}

Test(server, short_lived_senders, .timeout = 60)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	butler_hub *hub;
	butler_stats st;
	int i;

	fx_init(&f, 1, 16);
	hub = fx_hub(&f, &h, NULL);
	ASSERT_OK(butler_hub_start(hub));
	for (i = 0; i < 500; i++) {
		pthread_t th;

		pthread_create(&th, NULL, one_shot_sender, hub);
		pthread_join(th, NULL);
	}
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	ASSERT_OK(butler_server_stats(hub, 0, &st));
	cr_assert_eq(st.sent, 500);
	cr_assert_eq(st.handled, 500);
	butler_hub_free(hub);
}

/* Spin policy: conversations run without sleeping, and a server that has
 * gone idle sleeps, costing no CPU. */
struct bounce {
	butler_hub *hub;
	unsigned long limit;
	sem_t done;
	uint64_t cpu_ns[2];
	atomic_int probes;
};

static uint64_t
thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
bounce_num(butler_server *self, void *user, struct num *m)
{
	struct bounce *b = user;
	unsigned to = butler_server_id(self) == 0 ? 1 : 0;

	if (m->tag == 7) { /* a probe: record this thread's CPU time */
		int i = atomic_fetch_add(&b->probes, 1);

		b->cpu_ns[i] = thread_cpu_ns();
		sem_post(&b->done);
		return 0;
	}
	if (m->seq == b->limit) {
		sem_post(&b->done);
		return 0;
	}
	m->seq++;
	return butler_send(b->hub, to, K_NUM, m, sizeof *m);
}

Test(server, spinning_servers_bounce_and_idle_ones_sleep, .timeout = 60)
{
	static struct bounce b;
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	struct num m = { 0 }, probe = { .tag = 7 };
	struct timespec idle = { 0, 300 * 1000 * 1000 };

	b.limit = 20000;
	sem_init(&b.done, 0, 0);
	fx_init(&f, 2, 16);
	h.num = bounce_num;
	ASSERT_OK(butler_hub_new(&b.hub, &f.spec));
	ASSERT_OK(fx_register(b.hub, 0, &h, &b));
	ASSERT_OK(fx_register(b.hub, 1, &h, &b));
	ASSERT_OK(butler_hub_set_spin(b.hub, 0, 200));
	ASSERT_OK(butler_hub_set_spin(b.hub, 1, 200));
	ASSERT_ERR(butler_hub_set_spin(b.hub, 2, 200), BUTLER_EINVAL);
	ASSERT_OK(butler_hub_start(b.hub));
	ASSERT_ERR(butler_hub_set_spin(b.hub, 0, 200), BUTLER_ESTATE);
	ASSERT_OK(butler_send(b.hub, 0, K_NUM, &m, sizeof m));
	sem_wait(&b.done);

	/* Two probes 300 ms apart: in between, server 0 spins at most 200 us
	 * after the first one and then sleeps. */
	ASSERT_OK(butler_send(b.hub, 0, K_NUM, &probe, sizeof probe));
	sem_wait(&b.done);
	nanosleep(&idle, NULL);
	ASSERT_OK(butler_send(b.hub, 0, K_NUM, &probe, sizeof probe));
	sem_wait(&b.done);
	cr_assert_lt(b.cpu_ns[1] - b.cpu_ns[0], 50u * 1000 * 1000,
	    "idle server used %llu ns of CPU in 300 ms",
	    (unsigned long long)(b.cpu_ns[1] - b.cpu_ns[0]));
	ASSERT_OK(butler_hub_stop(b.hub, BUTLER_STOP_DRAIN));
	butler_hub_free(b.hub);
}
