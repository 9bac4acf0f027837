/* SPDX-License-Identifier: MIT */
/*
 * butler/metrics.h — what is counted per message kind, and the fixed-bucket
 * histograms of time in queue and in the handler: one writer (the
 * consumer), readers on any thread, no allocation once made, an add is a
 * bucket index and two relaxed stores. Knows nothing above lane.h.
 */
#ifndef BUTLER_INTERNAL_METRICS_H
#define BUTLER_INTERNAL_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

/*
 * Buckets: 0..15 ns one each, then four per power of two (a bucket is at
 * most 25% wide) up to 2^64 ns: 256 buckets. A quantile is reported as its
 * bucket's upper bound, so a p99 is never under-stated by more than the
 * bucket's width.
 */
#define BUTLER__HIST_BUCKETS 256u

struct butler__hist {
	atomic_uint_fast64_t n[BUTLER__HIST_BUCKETS];
	atomic_uint_fast64_t max;
};

/* butler__hist_bucket returns the bucket of v nanoseconds. */
static inline unsigned
butler__hist_bucket(uint64_t v)
{
	unsigned msb;

	if (v < 16)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	return 16u + (msb - 4u) * 4u + (unsigned)((v >> (msb - 2u)) & 3u);
}

/* butler__hist_upper returns the largest value bucket b holds. */
static inline uint64_t
butler__hist_upper(unsigned b)
{
	unsigned msb, sub;

	if (b < 16)
		return b;
	msb = (b - 16u) / 4u + 4u;
	sub = (b - 16u) % 4u;
	if (msb == 63 && sub == 3)
		return UINT64_MAX;
	return (((uint64_t)(4u + sub) + 1) << (msb - 2u)) - 1;
}

/* butler__hist_add counts one value. Its single writer only. */
static inline void
butler__hist_add(struct butler__hist *h, uint64_t v)
{
	atomic_uint_fast64_t *c = &h->n[butler__hist_bucket(v)];

	atomic_store_explicit(c,
	    atomic_load_explicit(c, memory_order_relaxed) + 1,
	    memory_order_relaxed);
	if (v > atomic_load_explicit(&h->max, memory_order_relaxed))
		atomic_store_explicit(&h->max, v, memory_order_relaxed);
}

/* A histogram read into plain numbers (summed over instances). */
struct butler__hist_sum {
	uint64_t n[BUTLER__HIST_BUCKETS];
	uint64_t total;
	uint64_t max;
};

/* butler__hist_read adds h into *s. Any thread. */
void butler__hist_read(
    const struct butler__hist *h, struct butler__hist_sum *s);

/* butler__hist_quantile returns the value at quantile q (0..1) of s, 0
 * when it is empty. */
uint64_t butler__hist_quantile(const struct butler__hist_sum *s, double q);

/*
 * What one inbox counts per kind. The outcomes a send's slow path or a
 * stop produce are always counted; sent, handled, failed and the two
 * histograms only with metrics on (they cost the hot path).
 */
struct butler__kind_count {
	atomic_uint_fast64_t sent; /* metrics on: taken other than through a
	                              lane (policy queue, drop_newest, timers);
	                              lanes count theirs (lane.h: kind_sent) */
	atomic_uint_fast64_t
	    rejected;                 /* refused: EFULL, ETIMEDOUT (senders) */
	atomic_uint_fast64_t dropped; /* destroyed: a stop, drop_* policies */
	atomic_uint_fast64_t
	    replaced; /* keep_last: a newer one took its place */
	atomic_uint_fast64_t purged;    /* butler_purge() */
	atomic_uint_fast64_t abandoned; /* requests whose caller had gone */
	atomic_uint_fast64_t handled, failed; /* metrics on */
	struct butler__hist *queue, *handler; /* metrics on, else NULL */
};

/* butler__kind_add adds n to a counter many threads may add to. */
static inline void
butler__kind_add(atomic_uint_fast64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

#endif /* BUTLER_INTERNAL_METRICS_H */
