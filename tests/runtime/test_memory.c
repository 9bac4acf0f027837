/* SPDX-License-Identifier: MIT */
/*
 * test_memory.c — what bounds a queue, and memory given back: capacity
 * holds per sending thread (so N threads can queue N × capacity, no more),
 * and the memory a burst took is returned once it has drained.
 */
#include "fixture.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

static atomic_int open_gate;

static int
held_num(butler_server *self, void *user, struct num *m)
{
	(void)self;
	(void)user;
	(void)m;
	while (!atomic_load(&open_gate))
		usleep(200);
	return 0;
}

struct filler {
	butler_hub *hub;
	unsigned long accepted, refused;
};

static void *
fill(void *arg)
{
	struct filler *f = arg;
	struct num n = { 0 };

	for (int i = 0; i < 100; i++) {
		int rv = butler_send(f->hub, 0, K_NUM, &n, sizeof n);

		if (rv == BUTLER_OK)
			f->accepted++;
		else if (rv == BUTLER_EFULL)
			f->refused++;
	}
	return NULL;
}

Test(memory, capacity_bounds_each_sending_thread, .timeout = 60)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	struct filler fl[4];
	pthread_t th[4];
	butler_hub *hub;
	butler_stats st;
	unsigned long total = 0;

	atomic_store(&open_gate, 0);
	fx_init(&f, 1, 16);
	h.num = held_num;
	hub = fx_hub(&f, &h, NULL);
	/* Not started: nothing is taken, so every lane fills exactly. */
	for (int i = 0; i < 4; i++) {
		fl[i] = (struct filler) { .hub = hub };
		pthread_create(&th[i], NULL, fill, &fl[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(fl[i].accepted, 16);
		cr_assert_eq(fl[i].refused, 84);
		total += fl[i].accepted;
	}
	ASSERT_OK(butler_server_stats(hub, 0, &st));
	cr_assert_eq(st.depth, 4 * 16);
	cr_assert_eq(st.rejected, 4 * 84);
	cr_assert_eq(total, 4 * 16);
	atomic_store(&open_gate, 1);
	ASSERT_OK(butler_hub_start(hub));
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	ASSERT_OK(butler_server_stats(hub, 0, &st));
	cr_assert_eq(st.handled, 64);
	butler_hub_free(hub);
}

static long
rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, resident = 0;

	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%ld %ld", &size, &resident), 2);
	fclose(f);
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

/* A sanitizer's allocator keeps freed memory on purpose (quarantine): the
 * figure means nothing there. */
Test(memory, a_drained_burst_gives_its_memory_back, .timeout = 120,
    .disabled = SANITIZED)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	struct num n = { 0 };
	butler_hub *hub;
	butler_stats st;
	long start, queued, drained;

	atomic_store(&open_gate, 0);
	fx_init(&f, 1, 1u << 21);
	h.num = held_num;
	hub = fx_hub(&f, &h, NULL);
	ASSERT_OK(butler_hub_start(hub));
	start = rss_kib();
	for (int i = 0; i < 1100000; i++)
		ASSERT_OK(butler_send(hub, 0, K_NUM, &n, sizeof n));
	queued = rss_kib();
	cr_assert_gt(
	    queued - start, 20000, "the burst took %ld KiB", queued - start);
	atomic_store(&open_gate, 1);
	do {
		usleep(10000);
		ASSERT_OK(butler_server_stats(hub, 0, &st));
	} while (st.handled < 1100000);
	usleep(200000); /* the consumer goes idle and gives memory back */
	drained = rss_kib();
	cr_assert_lt(drained - start, (queued - start) / 10,
	    "after the drain %ld KiB of the burst's %ld KiB stay resident",
	    drained - start, queued - start);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	butler_hub_free(hub);
}
