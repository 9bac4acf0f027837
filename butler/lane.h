/* SPDX-License-Identifier: MIT */
/*
 * butler/lane.h — records, and the single-producer single-consumer queue of
 * records (a lane) that every inbox is made of; the identity of a sending
 * thread (sender), refcounted so that lanes of threads that exited can be
 * reclaimed. The bottom of the runtime: it knows nothing of hubs, servers
 * or requests.
 */
#ifndef BUTLER_INTERNAL_LANE_H
#define BUTLER_INTERNAL_LANE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "chaos.h"

#define BUTLER__CACHE_LINE 64

/*
 * BUTLER__TLS gives a thread-local variable of the runtime the initial-exec
 * model: one %fs-relative access instead of a __tls_get_addr() call in the
 * shared library (libbutler is linked at start, never dlopen()ed late).
 */
#define BUTLER__TLS __attribute__((tls_model("initial-exec")))

/* ---- records ---------------------------------------------------------- */

/*
 * A record is one queued message: this header, an optional ticket header
 * (requests and progress), then the message struct copied by value. Every
 * record is a multiple of BUTLER__REC_ALIGN bytes so that the payload of
 * the next one stays aligned for any field type a spec can declare.
 */
#define BUTLER__REC_ALIGN 8u

enum butler__rec_flags {
	BUTLER__REC_REQUEST = 1u << 0,  /* a request: carries its ticket */
	BUTLER__REC_PROGRESS = 1u << 1, /* progress for one of our requests */
	BUTLER__REC_BOXED = 1u << 2,    /* progress payload is in the ticket */
	BUTLER__REC_TIMER = 1u << 3,    /* a timer to arm: carries it */
	BUTLER__REC_STAMPED = 1u << 4,  /* carries its send time (metrics) */
	BUTLER__REC_PURGED = 1u << 5,   /* butler_purge() marked it: destroy */
	BUTLER__REC_BOUND = 1u << 6,    /* delivered only while its binding
	                                   is alive: carries it */
	BUTLER__REC_CREDIT = 1u << 7,   /* holds a credit of its inbox's total
	                                   bound, returned when it is taken */
	BUTLER__REC_JUMP = 1u << 15     /* rest of segment unused: go on */
};

struct butler__rec {
	uint32_t size;  /* whole record in bytes, header included */
	uint16_t kind;  /* server-local kind (1-based), or message index */
	uint16_t flags; /* butler__rec_flags */
};

struct butler__ticket; /* request.h */
struct butler__timer;  /* timer.h */

/* What requests, progress and timer records carry before their payload:
 * their ticket, or their timer. */
struct butler__rec_ticket {
	void *ptr;
};

/* The record flags that carry a struct butler__rec_ticket. */
#define BUTLER__REC_WITH_PTR                                                  \
	(BUTLER__REC_REQUEST | BUTLER__REC_PROGRESS | BUTLER__REC_TIMER       \
	    | BUTLER__REC_BOUND)

static inline size_t
butler__rec_round(size_t n)
{
	return (n + BUTLER__REC_ALIGN - 1) & ~(size_t)(BUTLER__REC_ALIGN - 1);
}

/* The most a record header can hold before its payload. */
#define BUTLER__REC_HEADER_MAX                                                \
	(sizeof(struct butler__rec) + sizeof(struct butler__rec_ticket)       \
	    + sizeof(uint64_t))

/*
 * butler__rec_header returns the bytes before a record's payload: the
 * header, then its pointer (ticket, timer or binding), then its send time.
 */
static inline size_t
butler__rec_header(unsigned flags)
{
	return sizeof(struct butler__rec)
	    + ((flags & BUTLER__REC_WITH_PTR)
	            ? sizeof(struct butler__rec_ticket)
	            : 0)
	    + ((flags & BUTLER__REC_STAMPED) ? sizeof(uint64_t) : 0);
}

/* butler__rec_stamp returns where a STAMPED record keeps its send time. */
static inline uint64_t *
butler__rec_stamp(struct butler__rec *rec)
{
	return (uint64_t *)(void *)((unsigned char *)(rec + 1)
	    + ((rec->flags & BUTLER__REC_WITH_PTR)
	            ? sizeof(struct butler__rec_ticket)
	            : 0));
}

static inline struct butler__ticket *
butler__rec_ticket(const struct butler__rec *rec)
{
	return ((const struct butler__rec_ticket *)(const void *)(rec + 1))
	    ->ptr;
}

/* butler__rec_ptr returns the pointer a record carries (REC_WITH_PTR). */
static inline void *
butler__rec_ptr(const struct butler__rec *rec)
{
	return ((const struct butler__rec_ticket *)(const void *)(rec + 1))
	    ->ptr;
}

static inline struct butler__timer *
butler__rec_timer(const struct butler__rec *rec)
{
	return ((const struct butler__rec_ticket *)(const void *)(rec + 1))
	    ->ptr;
}

static inline void *
butler__rec_payload(struct butler__rec *rec)
{
	return (unsigned char *)rec + butler__rec_header(rec->flags);
}

/* butler__rec_payload_size returns the bytes of a record's payload. */
static inline size_t
butler__rec_payload_size(const struct butler__rec *rec)
{
	return rec->size - butler__rec_header(rec->flags);
}

/* ---- senders ---------------------------------------------------------- */

struct butler__sender {
	atomic_uint refs;  /* the thread's own reference + one per lane */
	atomic_bool alive; /* cleared when the thread exits */
};

/*
 * butler__sender_new returns a sender with one reference (its thread's),
 * NULL when out of memory. butler__sender_exit marks it dead and drops that
 * reference: the thread has exited, its lanes may be reclaimed.
 */
struct butler__sender *butler__sender_new(void);
void butler__sender_exit(struct butler__sender *sender);

/* butler__sender_unref drops one reference and frees at zero. */
void butler__sender_unref(struct butler__sender *sender);

/* butler__sender_refs returns the number of references (for the owner). */
unsigned butler__sender_refs(struct butler__sender *sender);

/* ---- lanes ------------------------------------------------------------ */

struct butler__segment {
	struct butler__segment *_Atomic next; /* written by the producer */
	size_t cap;                           /* bytes in data[] */
	_Alignas(BUTLER__REC_ALIGN) unsigned char data[];
};

/*
 * A lane is a chain of segments. The producer appends records to its
 * segment and, when a record does not fit, links a new segment (a recycled
 * one if there is one). The consumer walks the chain and hands each finished
 * segment back through a pool, so a steady flow allocates nothing.
 */
struct butler__lane {
	/* Producer's cache line: only the sending thread writes it (the
	 * consumer clears `scheduled` when it goes idle). */
	_Alignas(BUTLER__CACHE_LINE) atomic_uint_fast64_t tail; /* published */
	atomic_uint scheduled; /* lane has announced work to the consumer */
	uint64_t tail_local;   /* == tail, without an atomic load */
	uint64_t head_cache;   /* last head seen, refreshed when full */
	/* What the inline paths compare tail_local - head_cache with: the
	 * inbox's capacity, or 0 where every send must take the slow path
	 * (an inbox with a total bound). Set once. */
	uint64_t fast_cap;
	/* Credits of its inbox's total bound taken and not yet used
	 * (channel.c, "The total bound"); another lane's sender may take
	 * them back (exchange), so it is atomic. */
	atomic_int_fast64_t allow;
	bool credited; /* the record being pushed took a credit */
	struct butler__segment *wseg;
	size_t woff;
	struct butler__segment *pool_mine; /* taken from `pool`, unused */
	void *inbox; /* the channel it feeds (set once, for the fast path) */
	atomic_uint_fast64_t pool_taken; /* segments taken from `pool` */
	atomic_uint_fast64_t rejected;   /* sends refused as full */
	atomic_uint_fast64_t aux;        /* records that are no message */
	/* [kind]: messages sent, with metrics on (else NULL); set once. */
	atomic_uint_fast64_t *kind_sent;

	/* Consumer's cache line. */
	_Alignas(BUTLER__CACHE_LINE) atomic_uint_fast64_t head; /* consumed */
	uint64_t head_local;
	atomic_int taking; /* a sharing pool's consumer takes from it now */
	struct butler__segment *rseg;
	size_t roff;
	/* Finished segments go back to the producer through `pool`, a stack
	 * the consumer pushes on and the producer empties in one exchange;
	 * up to pool_max segments (what capacity can fill) are kept. */
	struct butler__segment *_Atomic pool;
	uint64_t pool_given; /* segments pushed on `pool` */
	uint64_t pool_max;
	uint64_t freed; /* bytes of segments given back to malloc */

	/* Set once at creation. */
	_Alignas(BUTLER__CACHE_LINE) struct butler__sender *sender;
	uint64_t serial; /* unique in its inbox (a freed lane's address is
	                    not: a purge's snapshot names lanes by this) */
	struct butler__lane *_Atomic next; /* in the channel's list */
	size_t seg_bytes;
};

/*
 * butler__lane_new creates a lane whose segments hold seg_bytes bytes of
 * records, keeping up to pool_max finished segments for reuse; it takes a
 * reference on sender. NULL when out of memory.
 */
struct butler__lane *butler__lane_new(
    struct butler__sender *sender, size_t seg_bytes, uint64_t pool_max);

/* butler__lane_free frees a lane that holds no record any more. */
void butler__lane_free(struct butler__lane *lane);

/* butler__lane_grow is butler__lane_reserve's slow path. */
struct butler__rec *butler__lane_grow(struct butler__lane *lane);

/*
 * butler__lane_reserve returns room for a record of `size` bytes (a
 * multiple of BUTLER__REC_ALIGN, at most seg_bytes), linking a new segment
 * when the current one is full. The record becomes visible to the consumer
 * with butler__lane_publish(). NULL when out of memory. Producer.
 */
static inline struct butler__rec *
butler__lane_reserve(struct butler__lane *lane, size_t size)
{
	struct butler__segment *seg = lane->wseg;

	if (seg->cap - lane->woff >= size)
		return (struct butler__rec *)(void *)(seg->data + lane->woff);
	return butler__lane_grow(lane);
}

/*
 * butler__rec_write writes a record's header and `size` bytes of payload
 * at rec, with small multiple-of-8 payloads copied word by word (a message
 * struct usually is one: it is as aligned as its widest field), which is
 * what a memcpy() call of a size unknown to the compiler costs most.
 */
static inline void
butler__rec_write(struct butler__rec *rec, uint32_t rec_size, unsigned kind,
    unsigned flags, size_t header, const void *msg, size_t size)
{
	struct butler__rec h = { rec_size, (uint16_t)kind, (uint16_t)flags };
	unsigned char *dst = (unsigned char *)rec + header;
	const unsigned char *src = msg;

	memcpy(rec, &h, sizeof h);
	if (size <= 64 && (size & 7) == 0) {
		uint64_t w;

		/* Unrolled: each case copies one word and falls through. */
		switch (size >> 3) {
		case 8:
			memcpy(&w, src + 56, 8);
			memcpy(dst + 56, &w, 8);
			/* fall through */
		case 7:
			memcpy(&w, src + 48, 8);
			memcpy(dst + 48, &w, 8);
			/* fall through */
		case 6:
			memcpy(&w, src + 40, 8);
			memcpy(dst + 40, &w, 8);
			/* fall through */
		case 5:
			memcpy(&w, src + 32, 8);
			memcpy(dst + 32, &w, 8);
			/* fall through */
		case 4:
			memcpy(&w, src + 24, 8);
			memcpy(dst + 24, &w, 8);
			/* fall through */
		case 3:
			memcpy(&w, src + 16, 8);
			memcpy(dst + 16, &w, 8);
			/* fall through */
		case 2:
			memcpy(&w, src + 8, 8);
			memcpy(dst + 8, &w, 8);
			/* fall through */
		case 1:
			memcpy(&w, src, 8);
			memcpy(dst, &w, 8);
			/* fall through */
		default:
			break;
		}
	} else if (size > 0) {
		memcpy(dst, src, size);
	}
}

/*
 * butler__asymmetric says whether the process uses the asymmetric form of
 * the wake-up protocol: producers publish with a release store (a plain
 * mov on x86-64) and the consumer, on its way to sleep, makes every thread
 * of the process run a full barrier with membarrier(2)
 * (MEMBARRIER_CMD_PRIVATE_EXPEDITED). Opt-in, with BUTLER_MEMBARRIER=1 in
 * the environment and a kernel that has it; otherwise producers publish
 * with a sequentially consistent store (an xchg): see channel.c. Set once,
 * before the first hub exists.
 */
extern bool butler__asymmetric;

/* butler__asymmetric_init decides butler__asymmetric (once per process). */
void butler__asymmetric_init(void);

/*
 * butler__membarrier makes every thread of the process run a full memory
 * barrier before it returns (asymmetric mode), or is a seq_cst fence.
 */
void butler__membarrier(void);

/* butler__lane_publish makes the reserved record visible. Producer. */
static inline void
butler__lane_publish(struct butler__lane *lane, size_t size)
{
	lane->woff += size;
	lane->tail_local++;
	BUTLER__CHAOS();
	/* The consumer's idle check is a Dekker pair with the load of
	 * `scheduled` that follows (see channel.c): the store and that load
	 * must not be reordered. Either the consumer's membarrier() orders
	 * them for us (asymmetric), or the store is seq_cst. */
	if (__builtin_expect(butler__asymmetric, 1)) {
		atomic_store_explicit(
		    &lane->tail, lane->tail_local, memory_order_release);
		atomic_signal_fence(memory_order_seq_cst);
	} else {
		atomic_store(&lane->tail, lane->tail_local);
	}
	BUTLER__CHAOS();
}

/* butler__lane_count_aux counts a published record that is no message
 * (progress), so that `sent` counts messages only. Producer. */
static inline void
butler__lane_count_aux(struct butler__lane *lane)
{
	atomic_store_explicit(&lane->aux,
	    atomic_load_explicit(&lane->aux, memory_order_relaxed) + 1,
	    memory_order_relaxed);
}

/* butler__lane_front_slow steps over segment ends (lane.c). */
struct butler__rec *butler__lane_front_slow(struct butler__lane *lane);

/*
 * butler__lane_front returns the oldest unconsumed record, stepping over
 * segment ends. The caller has seen head_local != tail. Consumer.
 */
static inline struct butler__rec *
butler__lane_front(struct butler__lane *lane)
{
	struct butler__segment *seg = lane->rseg;

	if (seg->cap - lane->roff >= sizeof(struct butler__rec)) {
		struct butler__rec *rec
		    = (struct butler__rec *)(void *)(seg->data + lane->roff);

		if (!(rec->flags & BUTLER__REC_JUMP))
			return rec;
	}
	return butler__lane_front_slow(lane);
}

/*
 * butler__lane_pop drops the record returned by _front from the count;
 * its bytes stay valid until the next _front. Consumer.
 */
static inline void
butler__lane_pop(struct butler__lane *lane, const struct butler__rec *rec)
{
	lane->roff += rec->size;
	lane->head_local++;
}

/* butler__lane_commit publishes what the consumer has taken. */
static inline void
butler__lane_commit(struct butler__lane *lane)
{
	atomic_store_explicit(
	    &lane->head, lane->head_local, memory_order_release);
}

/* butler__lane_depth returns how many records wait; approximate. */
static inline uint64_t
butler__lane_depth(struct butler__lane *lane)
{
	uint64_t t = atomic_load_explicit(&lane->tail, memory_order_acquire);
	uint64_t h = atomic_load_explicit(&lane->head, memory_order_acquire);
	return t > h ? t - h : 0;
}

#endif /* BUTLER_INTERNAL_LANE_H */
