/* SPDX-License-Identifier: MIT */
/*
 * test_external.c — external-loop servers: a thread the application owns
 * polls the server's fd and drains it.
 */
#include "fixture.h"

#include <poll.h>
#include <pthread.h>

struct ext {
	butler_hub *hub;
	pthread_t owner;
	atomic_int wrong_thread;
	atomic_ulong handled;
};

static int
ext_num(butler_server *self, void *user, struct num *m)
{
	struct ext *e = user;

	(void)self;
	(void)m;
	if (!pthread_equal(pthread_self(), e->owner))
		atomic_fetch_add(&e->wrong_thread, 1);
	atomic_fetch_add(&e->handled, 1);
	return 0;
}

static void *
ext_producer(void *arg)
{
	struct ext *e = arg;

	for (uint64_t i = 0; i < 10000; i++) {
		struct num m = { .seq = i };

		while (butler_send(e->hub, 0, K_NUM, &m, sizeof m)
		    == BUTLER_EFULL)
			sched_yield();
	}
	return NULL;
}

static bool
readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

Test(external, woken_through_poll_on_its_fd, .timeout = 60)
{
	static struct ext e;
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	pthread_t th;
	int fd;

	fx_init(&f, 1, 1024);
	f.servers[0].loop = BUTLER_LOOP_EXTERNAL;
	h.num = ext_num;
	e.owner = pthread_self();
	e.hub = fx_hub(&f, &h, &e);
	ASSERT_OK(butler_hub_start(e.hub));
	fd = butler_server_fd(e.hub, 0);
	cr_assert_geq(fd, 0);
	cr_assert(!readable(fd, 0), "idle server's fd is readable");

	pthread_create(&th, NULL, ext_producer, &e);
	while (atomic_load(&e.handled) < 10000) {
		unsigned n;

		/* A generous poll timeout: if the wake-up were lost, the
		 * test would hang here and fail by its timeout. */
		cr_assert(readable(fd, 30000), "no wake-up");
		ASSERT_OK(butler_server_drain(e.hub, 0, 0, &n));
	}
	pthread_join(th, NULL);
	/* Everything handled: the fd goes quiet again. */
	cr_assert(!readable(fd, 0));
	cr_assert_eq(atomic_load(&e.wrong_thread), 0);
	ASSERT_OK(butler_hub_stop(e.hub, BUTLER_STOP_DRAIN));
	butler_hub_free(e.hub);
}

Test(external, drain_budget_keeps_fd_readable, .timeout = 30)
{
	static struct ext e;
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	unsigned n = 0, total = 0;
	int fd;

	fx_init(&f, 1, 1024);
	f.servers[0].loop = BUTLER_LOOP_EXTERNAL;
	h.num = ext_num;
	e.owner = pthread_self();
	e.hub = fx_hub(&f, &h, &e);
	ASSERT_ERR(butler_server_drain(e.hub, 0, 10, &n), BUTLER_ESTATE);
	ASSERT_OK(butler_hub_start(e.hub));
	fd = butler_server_fd(e.hub, 0);
	for (uint64_t i = 0; i < 25; i++) {
		struct num m = { .seq = i };

		ASSERT_OK(butler_send(e.hub, 0, K_NUM, &m, sizeof m));
	}
	while (readable(fd, 0)) {
		ASSERT_OK(butler_server_drain(e.hub, 0, 10, &n));
		cr_assert_leq(n, 10);
		total += n;
	}
	cr_assert_eq(total, 25);
	ASSERT_OK(butler_server_drain(e.hub, 0, 10, &n));
	cr_assert_eq(n, 0);
	ASSERT_OK(butler_hub_stop(e.hub, BUTLER_STOP_DRAIN));
	ASSERT_ERR(butler_server_drain(e.hub, 0, 10, &n), BUTLER_ECLOSED);
	butler_hub_free(e.hub);
}

Test(external, wrong_server_kinds_are_rejected, .timeout = 30)
{
	struct fx f;
	butler_hub *hub;
	unsigned n;

	fx_init(&f, 2, 16);
	f.servers[1].loop = BUTLER_LOOP_EXTERNAL;
	ASSERT_OK(butler_hub_new(&hub, &f.spec));
	cr_assert_eq(butler_server_fd(hub, 0), -1);
	cr_assert_eq(butler_server_fd(hub, 2), -1);
	cr_assert_geq(butler_server_fd(hub, 1), 0);
	ASSERT_ERR(butler_server_drain(hub, 0, 1, &n), BUTLER_EINVAL);
	cr_assert_eq(butler_server_next_timeout(hub, 1), -1);
	butler_hub_free(hub);
}
