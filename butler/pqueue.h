/* SPDX-License-Identifier: MIT */
/*
 * butler/pqueue.h — the policy queue of one server instance: where the
 * messages of kinds whose overload policy is drop_oldest or keep_last wait.
 * A lane is single-producer and lock-free, so nobody but its consumer can
 * take a record out of its middle; these two policies must (the oldest of a
 * kind goes, or the queued one of a kind is replaced), so their messages
 * wait here instead: a FIFO under a mutex, with one list per kind, which
 * any sender can edit. Only those kinds pay for it; their rates are those
 * of status updates and frames, where a lock costs nothing that shows.
 * Knows records (lane.h) and nothing above.
 */
#ifndef BUTLER_INTERNAL_PQUEUE_H
#define BUTLER_INTERNAL_PQUEUE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "lane.h"

/* One waiting message: links, then a record as a lane holds it. */
struct butler__pq_entry {
	struct butler__pq_entry *prev, *next; /* the queue, oldest first */
	struct butler__pq_entry *knext; /* its kind's list, oldest first */
	_Alignas(BUTLER__REC_ALIGN) unsigned char data[]; /* the record */
};

/* butler__pq_rec returns the record an entry holds. */
static inline struct butler__rec *
butler__pq_rec(struct butler__pq_entry *e)
{
	return (struct butler__rec *)(void *)e->data;
}

struct butler__pqueue {
	pthread_mutex_t lock;
	struct butler__pq_entry *head, *tail;
	struct butler__pq_entry **khead, **ktail; /* [kind] */
	unsigned *kcount;                         /* [kind] */
	unsigned n_kinds;
	unsigned per_kind;  /* what one kind may have waiting (capacity) */
	size_t entry_bytes; /* an entry with the largest record */
	struct butler__pq_entry *spare; /* unused entries, kept for reuse */
	unsigned n_spare, max_spare;
	bool closed; /* its consumer has taken the last: pushes refused */
	/* Entries queued; seq_cst, read by the wake-up protocol's idle
	 * check and by senders of other kinds never (they need no lock). */
	atomic_uint_fast64_t count;
	atomic_uint_fast64_t sent; /* entries ever queued */
};

/* What butler__pqueue_push did. */
enum butler__pq_outcome {
	BUTLER__PQ_QUEUED = 0,   /* appended */
	BUTLER__PQ_REPLACED = 1, /* keep_last: took the queued one's place */
	BUTLER__PQ_EVICTED = 2   /* drop_oldest: appended, the oldest out */
};

/*
 * butler__pqueue_init makes a queue for kinds 1..n_kinds of records up to
 * max_record bytes, at most per_kind of one kind waiting. Returns
 * BUTLER_OK, BUTLER_ENOMEM or BUTLER_ESYS.
 */
int butler__pqueue_init(struct butler__pqueue *q, unsigned n_kinds,
    unsigned per_kind, size_t max_record);

/* butler__pqueue_release frees q; it must be empty (take everything). */
void butler__pqueue_release(struct butler__pqueue *q);

/*
 * butler__pqueue_entry returns an unused entry (spare or new), NULL when
 * out of memory. Write its record, then push it. Any thread.
 */
struct butler__pq_entry *butler__pqueue_entry(struct butler__pqueue *q);

/* butler__pqueue_recycle gives back an entry no list holds. Any thread. */
void butler__pqueue_recycle(
    struct butler__pqueue *q, struct butler__pq_entry *e);

/*
 * butler__pqueue_push queues entry e (of `kind`), with q->lock
 * held by the caller: keep_last puts it in the place of the kind's queued
 * entry, if there is one; drop_oldest appends it and, when its kind
 * already has per_kind waiting, takes the kind's oldest out. *out is the
 * entry that left (to destroy, after unlocking), or NULL.
 */
enum butler__pq_outcome butler__pqueue_push(struct butler__pqueue *q,
    struct butler__pq_entry *e, unsigned kind, bool keep_last,
    struct butler__pq_entry **out);

/*
 * butler__pqueue_take removes and returns the oldest entry, NULL when
 * empty; with `close` it also closes q when that left it empty. Consumer.
 */
struct butler__pq_entry *butler__pqueue_take(
    struct butler__pqueue *q, bool close);

/*
 * butler__pqueue_purge removes every entry of `kind` and returns them as a
 * list through ->next (to destroy, then recycle); *n counts them. Any
 * thread.
 */
struct butler__pq_entry *butler__pqueue_purge(
    struct butler__pqueue *q, unsigned kind, uint64_t *n);

/* butler__pqueue_count returns the entries waiting (seq_cst). */
static inline uint64_t
butler__pqueue_count(struct butler__pqueue *q)
{
	return atomic_load(&q->count);
}

#endif /* BUTLER_INTERNAL_PQUEUE_H */
