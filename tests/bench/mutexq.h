/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/mutexq.h — the mutex-protected queue of the plain-loop peers.
 *
 * Producers append to one growable array under a mutex; the consumer swaps
 * the whole array out under the lock and handles it without the lock, then
 * hands its drained array back on the next swap. Once both arrays have grown
 * to the load, this costs no malloc per message, so the plain-loop peers
 * (libevent, libuv) pay only for the lock and their wake-up: the comparison
 * with butler is then about the channel, not about a careless queue.
 */
#ifndef BUTLER_TESTS_BENCH_MUTEXQ_H
#define BUTLER_TESTS_BENCH_MUTEXQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "bench.h"

/* mutexq_batch is the consumer's side: the array it swapped out. */
struct mutexq_batch {
	struct bench_msg *msgs;
	size_t cap;
};

struct mutexq {
	pthread_mutex_t mu;
	struct bench_msg *msgs;
	size_t len, cap;
};

/* mutexq_init prepares q and the consumer's batch b. */
void mutexq_init(struct mutexq *q, struct mutexq_batch *b);

/* mutexq_release frees q and b; no thread may use them any more. */
void mutexq_release(struct mutexq *q, struct mutexq_batch *b);

/*
 * mutexq_push appends a copy of *m and returns true if the queue was empty
 * before, which is when a consumer that drained it may be asleep. Any
 * thread.
 */
bool mutexq_push(struct mutexq *q, const struct bench_msg *m);

/*
 * mutexq_take swaps everything queued into b and returns how many messages
 * b->msgs now holds. The consumer thread only.
 */
size_t mutexq_take(struct mutexq *q, struct mutexq_batch *b);

#endif /* BUTLER_TESTS_BENCH_MUTEXQ_H */
