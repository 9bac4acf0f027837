/* SPDX-License-Identifier: MIT */
/*
 * lane.c — single-producer single-consumer record queues, and the identity
 * of sending threads.
 *
 * Why one lane per (sending thread, server instance): a queue shared by all
 * senders makes every send fight for one cache line (a CAS or XCHG on the
 * tail), and that line transfer is most of the cost of a send. With a lane
 * per sender, a send writes only lines its own thread owns; the consumer
 * reads them in batches. It also makes FIFO per producer trivial, and lets
 * one flooding thread fill only its own lane.
 */
#include "lane.h"

#include "alloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/membarrier.h>
#include <sys/syscall.h>
#endif

/* ---- the asymmetric barrier ------------------------------------------- */

bool butler__asymmetric;
static pthread_once_t asymmetric_once = PTHREAD_ONCE_INIT;

static void
decide_asymmetric(void)
{
#if defined(__linux__) && defined(SYS_membarrier)
	const char *want = getenv("BUTLER_MEMBARRIER");

	/* Opt-in (channel.c says why); BUTLER_NO_MEMBARRIER, which once
	 * turned it off, still wins. */
	if (want == NULL || strcmp(want, "1") != 0
	    || getenv("BUTLER_NO_MEMBARRIER") != NULL)
		return;
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
	        0, 0)
	    == 0)
		butler__asymmetric = true;
#endif
}

void
butler__asymmetric_init(void)
{
	(void)pthread_once(&asymmetric_once, decide_asymmetric);
}

void
butler__membarrier(void)
{
#if defined(__linux__) && defined(SYS_membarrier)
	if (butler__asymmetric
	    && syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0)
	        == 0)
		return;
#endif
	atomic_thread_fence(memory_order_seq_cst);
}

/* ---- senders ---------------------------------------------------------- */

struct butler__sender *
butler__sender_new(void)
{
	struct butler__sender *me = butler__malloc(sizeof *me);

	if (me == NULL)
		return NULL;
	atomic_init(&me->refs, 1);
	atomic_init(&me->alive, true);
	return me;
}

void
butler__sender_exit(struct butler__sender *sender)
{
	atomic_store_explicit(&sender->alive, false, memory_order_release);
	butler__sender_unref(sender);
}

void
butler__sender_unref(struct butler__sender *sender)
{
	if (sender != NULL
	    && atomic_fetch_sub_explicit(
	           &sender->refs, 1, memory_order_acq_rel)
	        == 1)
		free(sender);
}

unsigned
butler__sender_refs(struct butler__sender *sender)
{
	return atomic_load_explicit(&sender->refs, memory_order_acquire);
}

/* ---- lanes ------------------------------------------------------------ */

static void
free_chain(struct butler__segment *seg)
{
	while (seg != NULL) {
		struct butler__segment *next
		    = atomic_load_explicit(&seg->next, memory_order_relaxed);

		free(seg);
		seg = next;
	}
}

static struct butler__segment *
segment_new(size_t cap)
{
	struct butler__segment *seg = butler__malloc(sizeof *seg + cap);

	if (seg == NULL)
		return NULL;
	atomic_init(&seg->next, NULL);
	seg->cap = cap;
	return seg;
}

struct butler__lane *
butler__lane_new(
    struct butler__sender *sender, size_t seg_bytes, uint64_t pool_max)
{
	struct butler__lane *lane;
	struct butler__segment *seg;

	lane = butler__aligned_alloc(BUTLER__CACHE_LINE,
	    (sizeof *lane + BUTLER__CACHE_LINE - 1)
	        & ~(size_t)(BUTLER__CACHE_LINE - 1));
	if (lane == NULL)
		return NULL;
	seg = segment_new(seg_bytes);
	if (seg == NULL) {
		free(lane);
		return NULL;
	}
	memset(lane, 0, sizeof *lane);
	atomic_init(&lane->tail, 0);
	atomic_init(&lane->scheduled, 0);
	atomic_init(&lane->rejected, 0);
	atomic_init(&lane->aux, 0);
	atomic_init(&lane->head, 0);
	atomic_init(&lane->taking, 0);
	atomic_init(&lane->pool, NULL);
	atomic_init(&lane->pool_taken, 0);
	lane->pool_max = pool_max;
	atomic_init(&lane->next, NULL);
	lane->wseg = seg;
	lane->rseg = seg;
	lane->seg_bytes = seg_bytes;
	lane->sender = sender;
	atomic_fetch_add_explicit(&sender->refs, 1, memory_order_relaxed);
	return lane;
}

void
butler__lane_free(struct butler__lane *lane)
{
	if (lane == NULL)
		return;
	/* rseg..wseg is the chain still linked from the consumer's side. */
	free_chain(lane->rseg);
	free_chain(atomic_load_explicit(&lane->pool, memory_order_acquire));
	free_chain(lane->pool_mine);
	butler__sender_unref(lane->sender);
	free(lane->kind_sent);
	free(lane);
}

struct butler__rec *
butler__lane_grow(struct butler__lane *lane)
{
	struct butler__segment *seg = lane->wseg, *fresh;

	/* Any record fits in a fresh segment: checked at hub creation. Reuse
	 * what the consumer has finished with: take the whole pool in one
	 * exchange, then use it up without touching shared memory. */
	if (lane->pool_mine == NULL)
		lane->pool_mine = atomic_exchange_explicit(
		    &lane->pool, NULL, memory_order_acquire);
	fresh = lane->pool_mine;
	if (fresh != NULL) {
		lane->pool_mine
		    = atomic_load_explicit(&fresh->next, memory_order_relaxed);
		atomic_store_explicit(&lane->pool_taken,
		    atomic_load_explicit(
		        &lane->pool_taken, memory_order_relaxed)
		        + 1,
		    memory_order_relaxed);
	} else {
		fresh = segment_new(lane->seg_bytes);
		if (fresh == NULL)
			return NULL;
	}
	atomic_store_explicit(&fresh->next, NULL, memory_order_relaxed);
	/* Mark the unused end so the consumer moves on; a segment ending
	 * exactly at a record boundary needs no marker. */
	if (seg->cap - lane->woff >= sizeof(struct butler__rec)) {
		struct butler__rec *jump
		    = (struct butler__rec *)(void *)(seg->data + lane->woff);
		jump->size = 0;
		jump->kind = 0;
		jump->flags = BUTLER__REC_JUMP;
	}
	/* Release: the consumer follows `next` only after it has read a
	 * tail that covers a record in `fresh`, but TSan and weakly ordered
	 * CPUs both want the link itself published. */
	atomic_store_explicit(&seg->next, fresh, memory_order_release);
	lane->wseg = fresh;
	lane->woff = 0;
	return (struct butler__rec *)(void *)fresh->data;
}

struct butler__rec *
butler__lane_front_slow(struct butler__lane *lane)
{
	for (;;) {
		struct butler__segment *seg = lane->rseg, *next, *old;
		struct butler__rec *rec;

		if (seg->cap - lane->roff >= sizeof(struct butler__rec)) {
			rec = (struct butler__rec *)(void *)(seg->data
			    + lane->roff);
			if (!(rec->flags & BUTLER__REC_JUMP))
				return rec;
		}
		next = atomic_load_explicit(&seg->next, memory_order_acquire);
		lane->rseg = next;
		lane->roff = 0;
		/* The producer has left `seg` for good: offer it back, unless
		 * the pool already holds the reserve; memory a burst took is
		 * given back as the burst drains. */
		if (lane->pool_given
		        - atomic_load_explicit(
		            &lane->pool_taken, memory_order_relaxed)
		    >= lane->pool_max) {
			lane->freed += sizeof *seg + seg->cap;
			free(seg);
			continue;
		}
		old = atomic_load_explicit(&lane->pool, memory_order_relaxed);
		do
			atomic_store_explicit(
			    &seg->next, old, memory_order_relaxed);
		while (!atomic_compare_exchange_weak_explicit(&lane->pool,
		    &old, seg, memory_order_release, memory_order_relaxed));
		lane->pool_given++;
	}
}
