/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/mutexq.c — the mutex-protected queue (see mutexq.h).
 */
#include "mutexq.h"

#include <stdlib.h>
#include <string.h>

/* The first array is small so that the memory workload measures growth,
 * not a preallocation. */
#define MUTEXQ_FIRST_CAP 1024

void
mutexq_init(struct mutexq *q, struct mutexq_batch *b)
{
	memset(q, 0, sizeof *q);
	pthread_mutex_init(&q->mu, NULL);
	q->cap = MUTEXQ_FIRST_CAP;
	q->msgs = bench_xcalloc(q->cap, sizeof *q->msgs);
	b->cap = MUTEXQ_FIRST_CAP;
	b->msgs = bench_xcalloc(b->cap, sizeof *b->msgs);
}

void
mutexq_release(struct mutexq *q, struct mutexq_batch *b)
{
	pthread_mutex_destroy(&q->mu);
	free(q->msgs);
	free(b->msgs);
}

bool
mutexq_push(struct mutexq *q, const struct bench_msg *m)
{
	bool was_empty;

	pthread_mutex_lock(&q->mu);
	if (q->len == q->cap) {
		/* Doubling under the lock is rare: it stops once the array
		 * fits the load, and the consumer recycles its array. */
		struct bench_msg *grown
		    = realloc(q->msgs, 2 * q->cap * sizeof *q->msgs);

		if (!grown)
			bench_fail("out of memory");
		q->msgs = grown;
		q->cap *= 2;
	}
	was_empty = q->len == 0;
	q->msgs[q->len++] = *m;
	pthread_mutex_unlock(&q->mu);
	return was_empty;
}

size_t
mutexq_take(struct mutexq *q, struct mutexq_batch *b)
{
	struct bench_msg *msgs;
	size_t len, cap;

	pthread_mutex_lock(&q->mu);
	msgs = q->msgs;
	cap = q->cap;
	len = q->len;
	q->msgs = b->msgs;
	q->cap = b->cap;
	q->len = 0;
	pthread_mutex_unlock(&q->mu);
	b->msgs = msgs;
	b->cap = cap;
	return len;
}
