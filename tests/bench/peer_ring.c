/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/peer_ring.c — lock-free single-producer rings, both sides
 * busy-polling: the practical ceiling, not a competitor.
 *
 * One bounded SPSC ring per sending thread (a 4->1 consumer polls four),
 * each index on its own cache line and each side caching the other's index
 * so that a cache line crosses cores only when the cached view runs out.
 * Nobody ever sleeps, so this burns two cores and has no wake-up cost at
 * all. On a 2-vCPU machine more spinning threads than cores would
 * livelock, so the consumer yields the CPU after a run of empty polls and a
 * producer yields on a full ring (the harness does that); a dedicated
 * machine would not need either.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "bench.h"

#define CACHE_LINE 64
#define EMPTY_POLLS_BEFORE_YIELD 256

struct ring {
	_Alignas(CACHE_LINE) atomic_size_t head; /* consumer writes */
	size_t tail_cache;                       /* consumer's view */
	_Alignas(CACHE_LINE) atomic_size_t tail; /* producer writes */
	size_t head_cache;                       /* producer's view */
	_Alignas(CACHE_LINE) size_t mask;
	struct bench_msg *slots;
};

struct bench_chan {
	struct bench_chan_cfg cfg;
	struct ring *rings;
	atomic_bool stop;
	struct bench_thread thread;
};

/* poll_ring handles what ring r holds and returns how many it handled. */
static size_t
poll_ring(struct bench_chan *c, struct ring *r)
{
	size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	size_t n = 0;

	if (head == r->tail_cache) {
		r->tail_cache
		    = atomic_load_explicit(&r->tail, memory_order_acquire);
		if (head == r->tail_cache)
			return 0;
	}
	for (; head != r->tail_cache; head++, n++)
		c->cfg.on_msg(
		    c->cfg.user, c->cfg.instance, &r->slots[head & r->mask]);
	atomic_store_explicit(&r->head, head, memory_order_release);
	return n;
}

static void *
consumer(void *arg)
{
	struct bench_chan *c = arg;
	unsigned idle = 0;

	while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		size_t got = 0;

		for (unsigned i = 0; i < c->cfg.senders; i++)
			got += poll_ring(c, &c->rings[i]);
		if (got)
			idle = 0;
		else if (++idle % EMPTY_POLLS_BEFORE_YIELD == 0)
			sched_yield();
	}
	return NULL;
}

static int
chan_new(struct bench_chan **out, const struct bench_chan_cfg *cfg)
{
	struct bench_chan *c = bench_xcalloc(1, sizeof *c);
	size_t cap = 2;

	while (cap < cfg->capacity)
		cap *= 2;
	c->cfg = *cfg;
	c->rings = aligned_alloc(CACHE_LINE, cfg->senders * sizeof *c->rings);
	if (!c->rings)
		return -1;
	for (unsigned i = 0; i < cfg->senders; i++) {
		struct ring *r = &c->rings[i];

		atomic_init(&r->head, 0);
		atomic_init(&r->tail, 0);
		r->tail_cache = r->head_cache = 0;
		r->mask = cap - 1;
		/* malloc, not calloc: pages count once they are written. */
		r->slots = malloc(cap * sizeof *r->slots);
		if (!r->slots)
			return -1;
	}
	*out = c;
	return 0;
}

static int
chan_start(struct bench_chan *c)
{
	return bench_thread_start(&c->thread, consumer, c);
}

static int
chan_send(struct bench_chan *c, unsigned sender, const struct bench_msg *m,
    bool may_block)
{
	struct ring *r = &c->rings[sender];
	size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);

	(void)may_block;
	if (tail - r->head_cache > r->mask) {
		r->head_cache
		    = atomic_load_explicit(&r->head, memory_order_acquire);
		if (tail - r->head_cache > r->mask)
			return BENCH_FULL;
	}
	r->slots[tail & r->mask] = *m;
	atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
	return BENCH_SENT;
}

static void
chan_free(struct bench_chan *c)
{
	if (c->thread.started) {
		atomic_store(&c->stop, true);
		bench_thread_join(&c->thread);
	}
	for (unsigned i = 0; i < c->cfg.senders; i++)
		free(c->rings[i].slots);
	free(c->rings);
	free(c);
}

static const struct bench_peer ring = {
	.name = "ring",
	.consumer = "busy-polling thread over SPSC rings (ceiling; burns a "
	            "core per side, never sleeps)",
	.chan_new = chan_new,
	.chan_start = chan_start,
	.send = chan_send,
	.chan_free = chan_free,
};

const struct bench_peer *const bench_peers[] = { &ring, NULL };
