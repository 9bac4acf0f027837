/* SPDX-License-Identifier: MIT */
/*
 * pqueue.c — the policy queue: a FIFO under a mutex with one FIFO per kind
 * threaded through it, so that the oldest entry of a kind (drop_oldest) and
 * the queued one of a kind (keep_last, which never has more than one) are
 * found at once.
 */
#include "pqueue.h"

#include "alloc.h"

#include <stdlib.h>
#include <string.h>

#include <butler/error.h>

int
butler__pqueue_init(struct butler__pqueue *q, unsigned n_kinds,
    unsigned per_kind, size_t max_record)
{
	memset(q, 0, sizeof *q);
	q->n_kinds = n_kinds;
	q->per_kind = per_kind;
	q->entry_bytes = sizeof(struct butler__pq_entry) + max_record;
	/* Enough for a steady flow of a few kinds without malloc. */
	q->max_spare = 16;
	atomic_init(&q->count, 0);
	atomic_init(&q->sent, 0);
	q->khead = butler__calloc(n_kinds + 1, sizeof *q->khead);
	q->ktail = butler__calloc(n_kinds + 1, sizeof *q->ktail);
	q->kcount = butler__calloc(n_kinds + 1, sizeof *q->kcount);
	if (q->khead == NULL || q->ktail == NULL || q->kcount == NULL)
		goto out_free;
	if (pthread_mutex_init(&q->lock, NULL) != 0) {
		free(q->khead);
		free(q->ktail);
		free(q->kcount);
		return BUTLER_ESYS;
	}
	return BUTLER_OK;

out_free:
	free(q->khead);
	free(q->ktail);
	free(q->kcount);
	return BUTLER_ENOMEM;
}

void
butler__pqueue_release(struct butler__pqueue *q)
{
	while (q->spare != NULL) {
		struct butler__pq_entry *e = q->spare;

		q->spare = e->next;
		free(e);
	}
	pthread_mutex_destroy(&q->lock);
	free(q->khead);
	free(q->ktail);
	free(q->kcount);
}

struct butler__pq_entry *
butler__pqueue_entry(struct butler__pqueue *q)
{
	struct butler__pq_entry *e;

	pthread_mutex_lock(&q->lock);
	e = q->spare;
	if (e != NULL) {
		q->spare = e->next;
		q->n_spare--;
	}
	pthread_mutex_unlock(&q->lock);
	if (e == NULL)
		e = butler__malloc(q->entry_bytes);
	return e;
}

void
butler__pqueue_recycle(struct butler__pqueue *q, struct butler__pq_entry *e)
{
	pthread_mutex_lock(&q->lock);
	if (q->n_spare < q->max_spare) {
		e->next = q->spare;
		q->spare = e;
		q->n_spare++;
		e = NULL;
	}
	pthread_mutex_unlock(&q->lock);
	free(e);
}

/* Unlinks e, its kind's oldest, from both lists. Locked. */
static void
unlink_oldest_of_kind(struct butler__pqueue *q, struct butler__pq_entry *e)
{
	unsigned k = butler__pq_rec(e)->kind;

	q->khead[k] = e->knext;
	if (q->khead[k] == NULL)
		q->ktail[k] = NULL;
	q->kcount[k]--;
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		q->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		q->tail = e->prev;
	atomic_store(&q->count,
	    atomic_load_explicit(&q->count, memory_order_relaxed) - 1);
}

enum butler__pq_outcome
butler__pqueue_push(struct butler__pqueue *q, struct butler__pq_entry *e,
    unsigned kind, bool keep_last, struct butler__pq_entry **out)
{
	unsigned k = kind;
	struct butler__pq_entry *old = q->ktail[k];

	*out = NULL;
	e->knext = NULL;
	atomic_store_explicit(&q->sent,
	    atomic_load_explicit(&q->sent, memory_order_relaxed) + 1,
	    memory_order_relaxed);
	if (keep_last && old != NULL) {
		/* Its place in the queue, and in its kind's list of one. */
		e->prev = old->prev;
		e->next = old->next;
		if (e->prev != NULL)
			e->prev->next = e;
		else
			q->head = e;
		if (e->next != NULL)
			e->next->prev = e;
		else
			q->tail = e;
		q->khead[k] = q->ktail[k] = e;
		*out = old;
		return BUTLER__PQ_REPLACED;
	}
	e->next = NULL;
	e->prev = q->tail;
	if (q->tail != NULL)
		q->tail->next = e;
	else
		q->head = e;
	q->tail = e;
	if (old != NULL)
		old->knext = e;
	else
		q->khead[k] = e;
	q->ktail[k] = e;
	q->kcount[k]++;
	/* seq_cst: the consumer's idle check reads it after clearing its
	 * pending flag (channel.c: the wake-up protocol). */
	atomic_store(&q->count,
	    atomic_load_explicit(&q->count, memory_order_relaxed) + 1);
	if (!keep_last && q->kcount[k] > q->per_kind) {
		*out = q->khead[k];
		unlink_oldest_of_kind(q, *out);
		return BUTLER__PQ_EVICTED;
	}
	return BUTLER__PQ_QUEUED;
}

struct butler__pq_entry *
butler__pqueue_take(struct butler__pqueue *q, bool close)
{
	struct butler__pq_entry *e;

	pthread_mutex_lock(&q->lock);
	e = q->head;
	if (e != NULL)
		unlink_oldest_of_kind(q, e);
	else if (close)
		q->closed = true;
	pthread_mutex_unlock(&q->lock);
	return e;
}

struct butler__pq_entry *
butler__pqueue_purge(struct butler__pqueue *q, unsigned kind, uint64_t *n)
{
	struct butler__pq_entry *list = NULL, **end = &list;

	*n = 0;
	if (kind == 0 || kind > q->n_kinds)
		return NULL;
	pthread_mutex_lock(&q->lock);
	while (q->khead[kind] != NULL) {
		struct butler__pq_entry *e = q->khead[kind];

		unlink_oldest_of_kind(q, e);
		e->next = NULL;
		*end = e;
		end = &e->next;
		(*n)++;
	}
	pthread_mutex_unlock(&q->lock);
	return list;
}
