/* SPDX-License-Identifier: MIT */
/*
 * butler/channel.h — the inbox of one server instance: its lanes (one per
 * sending thread), the wake-up token and the pending flag that limits token
 * writes to the moments the consumer may be asleep, capacity and blocking
 * senders, answers posted as nodes, closing in two steps, who consumes it,
 * and its counters. Built on lane.h; knows nothing of requests or servers.
 */
#ifndef BUTLER_INTERNAL_CHANNEL_H
#define BUTLER_INTERNAL_CHANNEL_H

#include <pthread.h>
#include <time.h>

#include <butler/hub.h>

#include "lane.h"
#include "metrics.h"
#include "pqueue.h"

/*
 * An inbox closes in two steps (hub.c drives them, for every inbox of a hub
 * at once): CLOSING refuses senders from outside the hub while the hub's own
 * handlers finish their work; CLOSED refuses everyone.
 */
enum butler__open {
	BUTLER__OPEN = 0,
	BUTLER__CLOSING = 1,
	BUTLER__CLOSED = 2
};

/* How a record is pushed into an inbox. */
enum butler__push_flags {
	BUTLER__PUSH_ROOM = 1u << 0,   /* respect capacity */
	BUTLER__PUSH_BLOCK = 1u << 1,  /* with ROOM: wait for room */
	BUTLER__PUSH_INSIDE = 1u << 2, /* sender runs one of the hub's servers:
	                                  accepted while CLOSING */
	BUTLER__PUSH_ANSWER = 1u << 3  /* progress to a caller: accepted while
	                                  CLOSING */
};

/*
 * A node is an intrusive link for what is posted to an inbox without a lane
 * (the final answers of requests): any thread posts, the consumer takes them
 * all at once.
 */
struct butler__node {
	struct butler__node *next;
};

/*
 * The stop group of a hub: while it stops, every inbox of the hub reports
 * here when it is quiet (nothing queued, nothing owed, nothing awaited), and
 * senders from inside the hub mark their target busy under the same lock
 * before publishing, so "every inbox quiet" is never seen while a message is
 * on its way. The stopper waits on `wake_fd` (readable when the last inbox
 * went quiet, or a server finished).
 */
struct butler__stopgroup {
	/* Read by every sender on every send; written twice per stop. One
	 * word for the whole hub, so every inbox closes in the same step. */
	_Alignas(BUTLER__CACHE_LINE) atomic_int open; /* butler__open */
	_Alignas(BUTLER__CACHE_LINE) pthread_mutex_t lock;
	unsigned n;       /* inboxes */
	unsigned n_quiet; /* of them quiet */
	bool draining;    /* the drain phase: quiet reports count */
	bool final;       /* decided: everything closes */
	int wake_fd;      /* eventfd (or pipe read end) */
	int wake_wfd;
};

int butler__stopgroup_init(struct butler__stopgroup *g, unsigned n);
void butler__stopgroup_release(struct butler__stopgroup *g);
/* butler__stopgroup_ring makes wake_fd readable. Any thread. */
void butler__stopgroup_ring(struct butler__stopgroup *g);
/* butler__stopgroup_ack empties wake_fd. */
void butler__stopgroup_ack(struct butler__stopgroup *g);
/* butler__stopgroup_all_quiet says whether every inbox is quiet. */
bool butler__stopgroup_all_quiet(struct butler__stopgroup *g);

/* Called by a drain for every record; handles or destroys it, and returns
 * a butler__took. */
typedef int (*butler__consume_fn)(void *ctx, struct butler__rec *rec);

struct butler__channel {
	/* Read by every sender on every send. */
	_Alignas(BUTLER__CACHE_LINE) struct butler__stopgroup *group;
	unsigned capacity;
	size_t seg_bytes;
	uint64_t pool_max; /* segments a lane keeps for reuse */
	int fd;            /* eventfd (or pipe read end), -1 once closed */
	int wfd; /* where tokens are written: fd itself, or the pipe's */
	/* Kinds 1..n_kinds (butler__channel_set_kinds()); NULL before. */
	unsigned n_kinds;
	struct butler__kind_count *kinds;
	bool metrics;              /* time and count per kind */
	struct butler__pqueue *pq; /* drop_oldest / keep_last kinds, or NULL */
	/* Destroys a record a policy or a purge took out (any thread). */
	void (*discard)(void *ctx, struct butler__rec *rec, int why);
	void *discard_ctx;
	/* Counted by whichever thread: taken and destroyed at once
	 * (drop_newest; sent and dropped), taken out of the policy queue
	 * (drop_oldest: dropped; keep_last: replaced), purged. */
	atomic_uint_fast64_t newest_dropped, evicted, replaced, purged;
	/* What the consumer's fast path may dispatch without a look: kinds
	 * 1..fast_kinds; 0 while a purge waits (so the next record goes the
	 * slow way, which carries the purge out first). */
	atomic_uint fast_kinds;
	/* The total bound (max_queued; 0: none): credits not held by a
	 * lane or a queued record, and how many a lane takes at once. */
	uint64_t max_queued;
	unsigned credit_batch;
	atomic_int_fast64_t credits;
	uint64_t credits_back; /* consumer: taken records that held one */
	pthread_mutex_t purge_lock;
	pthread_cond_t purge_cond;
	struct butler__purge *purges; /* asked, not yet carried out */
	bool purge_closed;            /* its consumer has finished */
	uint64_t lane_serials;        /* under lanes_lock */

	/* Wake-up protocol state; written on idle<->busy transitions. */
	_Alignas(BUTLER__CACHE_LINE) atomic_int pending;
	atomic_int fd_users; /* senders inside a token write */
	atomic_int fd_closed;
	struct butler__node *_Atomic nodes; /* posted, newest first */

	/* Lanes: pushed at the front under lanes_lock; the consumer reads
	 * the list without the lock and is the only one removing. */
	struct butler__lane *_Atomic lanes;
	pthread_mutex_t lanes_lock;

	/* Senders waiting for room (full policy BLOCK). */
	atomic_int waiters;
	pthread_mutex_t wait_lock;
	pthread_cond_t wait_cond;

	/* Consumer-owned counters, readable from any thread. */
	atomic_uint_fast64_t handled, failed, dropped, abandoned, replies,
	    progress, wakeups, handler_ns, high_water;
	atomic_uint_fast64_t sent_reclaimed, aux_reclaimed, rejected_reclaimed;
	atomic_uint_fast64_t local_sent; /* timer firings, counted as sent */
	atomic_uint_fast64_t clock_ns;   /* the drain's latest clock reading */
	atomic_uint_fast64_t rang_ns;    /* when a token was last written */
	atomic_uint_fast64_t load; /* what the consumer saw queued (+1 while
	                              it handles), for least-loaded pools */
	atomic_int draining;       /* a thread is consuming it */
	atomic_bool retired; /* its consumer will never take a record again */
	uint64_t freed_reclaimed; /* lane->freed of reclaimed lanes */
	uint64_t trimmed_at; /* bytes freed when memory was last trimmed */
	bool shared;         /* a sharing pool's: siblings take from it too */
	atomic_int visitors; /* siblings looking at its lanes now */
	size_t max_record;   /* the largest record */
	pthread_mutex_t spare_lock; /* shared: for spare */
	struct butler__rec *spare;  /* shared: where the rare drains copy */
	butler__consume_fn drop;    /* destroys a record unhandled */
	void *drop_ctx;
	bool quiet; /* under group->lock */
};

/*
 * butler__channel_init makes an inbox for records of up to max_record bytes
 * in lanes of `capacity` records each, in stop group `group`. Returns
 * BUTLER_OK or BUTLER_ESYS (no fd, no mutex).
 */
int butler__channel_init(struct butler__channel *ch, unsigned capacity,
    size_t max_record, struct butler__stopgroup *group);

/*
 * butler__channel_set_kinds gives ch its per-kind counters for kinds
 * 1..n_kinds and, with `policy_queue`, a policy queue of up to per_kind
 * entries per kind (pqueue.h). Before any send. Returns BUTLER_OK,
 * BUTLER_ENOMEM or BUTLER_ESYS.
 */
int butler__channel_set_kinds(struct butler__channel *ch, unsigned n_kinds,
    bool policy_queue, unsigned per_kind);

/*
 * butler__channel_set_metrics turns metrics on for ch (after set_kinds):
 * histograms per kind, and lanes made from now on count what they carry
 * per kind. Before any send. Returns BUTLER_OK or BUTLER_ENOMEM.
 */
int butler__channel_set_metrics(struct butler__channel *ch);

/*
 * butler__channel_set_bound gives ch a total bound of max_queued records
 * from all its senders together (0: none). Before any send.
 */
void butler__channel_set_bound(
    struct butler__channel *ch, unsigned max_queued);

/*
 * butler__channel_credit_back counts a taken record that held a credit
 * (REC_CREDIT); the credits go back at the end of the drain. Consumer.
 */
static inline void
butler__channel_credit_back(struct butler__channel *ch)
{
	ch->credits_back++;
}

/*
 * butler__channel_pq_push queues a record (kind, rec_flags, ptr, `size`
 * bytes of msg) in ch's policy queue under the closing rules of `flags`
 * (butler__push_flags; no room rule: the queue bounds each kind itself),
 * with keep_last or drop_oldest. Returns BUTLER_OK, BUTLER_EREPLACED (a
 * queued entry left for it: *out, to destroy), BUTLER_EDROPPED (the
 * inbox's total bound is reached and nothing of the kind could make room:
 * not queued, the caller destroys the message), BUTLER_ECLOSED or
 * BUTLER_ENOMEM; on those the message is still the caller's. Any thread.
 */
int butler__channel_pq_push(struct butler__channel *ch, unsigned kind,
    unsigned rec_flags, void *ptr, const void *msg, size_t size,
    unsigned flags, bool keep_last, struct butler__pq_entry **out);

/*
 * A purge asked by a thread that does not consume the inbox: which kind,
 * and how far each lane's records go at the time of asking (so that what
 * is sent after the request returns is never purged). The consumer carries
 * it out before it handles another record.
 */
struct butler__purge {
	struct butler__purge *next;
	unsigned kind;
	unsigned n; /* lanes in snap */
	struct butler__purge_at {
		uint64_t lane; /* its serial */
		uint64_t upto; /* records before this position */
	} * snap;
	uint64_t marked; /* records it found */
	bool done;       /* under purge_lock */
	bool waited;     /* its asker waits for it (and frees it) */
};

/*
 * butler__channel_purge_now marks, for destruction unhandled, every record
 * of `kind` queued in ch's lanes now, and returns how many. Consumer.
 */
uint64_t butler__channel_purge_now(struct butler__channel *ch, unsigned kind);

/*
 * butler__channel_purge_ask asks ch's consumer to purge `kind` as queued
 * now and rings it; with `wait`, waits until it has and sets *marked.
 * Returns BUTLER_OK, BUTLER_ECLOSED (the consumer has finished) or
 * BUTLER_ENOMEM. Any thread but the consumer's.
 */
int butler__channel_purge_ask(
    struct butler__channel *ch, unsigned kind, bool wait, uint64_t *marked);

/*
 * butler__channel_apply_purges carries out what was asked; with `close`
 * (the consumer finishes) later asks are refused. `cur`, if not NULL, is
 * the record the consumer has just popped from a lane and not yet handled:
 * it lies behind the lane's position, so it is judged on its own (marked
 * if it was queued when a purge of its kind was asked). Consumer.
 */
void butler__channel_apply_purges(
    struct butler__channel *ch, bool close, struct butler__rec *cur);

/* Why a record is discarded (butler__channel.discard). */
enum butler__discard {
	BUTLER__DISCARD_EVICTED = 0,  /* drop_oldest made room: EDROPPED */
	BUTLER__DISCARD_REPLACED = 1, /* keep_last: EREPLACED */
	BUTLER__DISCARD_PURGED = 2    /* butler_purge(): ECANCELED */
};

/* butler__channel_set_discard sets ch's discard function. Before any
 * send. */
void butler__channel_set_discard(struct butler__channel *ch,
    void (*discard)(void *ctx, struct butler__rec *rec, int why), void *ctx);

/* butler__channel_set_drop sets how a record is destroyed unhandled (by a
 * straggler, see below). Before any send. */
void butler__channel_set_drop(
    struct butler__channel *ch, butler__consume_fn drop, void *ctx);

/* butler__channel_retire says the consumer will never take a record
 * again (it has finished). Consumer. */
void butler__channel_retire(struct butler__channel *ch);

/*
 * butler__channel_straggle is for a sender that published a record and then
 * saw the hub CLOSED: its record may have arrived after the consumer's last
 * look. It waits until the consumer has retired and destroys whatever is
 * left, so the record is handled or destroyed exactly once and the stop's
 * counters add up when the send returns. Rare: only a send that raced the
 * closing store gets here.
 */
void butler__channel_straggle(struct butler__channel *ch);

/*
 * butler__channel_release destroys what is still queued through `drop`
 * and frees everything. The posted nodes must have been taken already.
 */
void butler__channel_release(
    struct butler__channel *ch, butler__consume_fn drop, void *ctx);

/* butler__channel_lane returns sender's lane into ch, creating it; NULL
 * when out of memory. Any thread (takes lanes_lock). */
struct butler__lane *butler__channel_lane(
    struct butler__channel *ch, struct butler__sender *sender);

/*
 * butler__channel_reserve_slow is butler__channel_reserve()'s slow path:
 * the inbox is not OPEN, or the lane is full. It applies the closing and
 * capacity rules (waiting up to timeout_ms for room with
 * BUTLER__PUSH_BLOCK; -1: no limit) and returns room, or NULL with *err
 * set. While the hub stops, a sender from inside enters the stop group
 * here (*gated set true): it must call butler__channel_gate_leave() after
 * butler__channel_commit().
 */
struct butler__rec *butler__channel_reserve_slow(struct butler__channel *ch,
    struct butler__lane *lane, size_t rec_size, unsigned flags, int timeout_ms,
    int *err, bool *gated);

/*
 * butler__channel_reserve returns room for a record of rec_size bytes in
 * lane, or NULL with *err set (BUTLER_ECLOSED, EFULL, ETIMEDOUT, ENOMEM).
 * `flags` are butler__push_flags. Producer of lane.
 */
static inline struct butler__rec *
butler__channel_reserve(struct butler__channel *ch, struct butler__lane *lane,
    size_t rec_size, unsigned flags, int timeout_ms, int *err, bool *gated)
{
	if (atomic_load_explicit(&ch->group->open, memory_order_relaxed)
	        == BUTLER__OPEN
	    && (!(flags & BUTLER__PUSH_ROOM)
	        || lane->tail_local - lane->head_cache < lane->fast_cap)) {
		struct butler__rec *rec = butler__lane_reserve(lane, rec_size);

		if (rec == NULL)
			*err = BUTLER_ENOMEM;
		return rec;
	}
	return butler__channel_reserve_slow(
	    ch, lane, rec_size, flags, timeout_ms, err, gated);
}

/* butler__channel_gate_leave ends what reserve_slow began (*gated). */
void butler__channel_gate_leave(struct butler__channel *ch);

/*
 * butler__channel_mark_busy counts ch busy again in its stopping hub's
 * group (nothing while OPEN or once final) and rings it, so that its
 * consumer looks again and reports quiet when it is. For a sender that
 * published while its reserve saw OPEN and the stop began meanwhile (the
 * record must not be missed by "all quiet"), and for a server that starts
 * a call outside a handler while counted quiet (the answer is on its way).
 * Any thread.
 */
void butler__channel_mark_busy(struct butler__channel *ch);

/* butler__channel_is_quiet says whether ch is counted quiet (locks). */
bool butler__channel_is_quiet(struct butler__channel *ch);

/* butler__channel_announce tells an idle consumer that lane has work. */
void butler__channel_announce(
    struct butler__channel *ch, struct butler__lane *lane);

/* butler__channel_commit publishes a reserved record and wakes ch. */
static inline void
butler__channel_commit(
    struct butler__channel *ch, struct butler__lane *lane, size_t rec_size)
{
	butler__lane_publish(lane, rec_size);
	if (atomic_load_explicit(&lane->scheduled, memory_order_relaxed) == 0)
		butler__channel_announce(ch, lane);
}

/*
 * butler__channel_post posts node to ch and wakes its consumer. Never
 * fails, whatever the inbox's state: what is posted is taken by the
 * consumer or by butler__channel_take() at the end. Any thread.
 */
void butler__channel_post(struct butler__channel *ch, struct butler__node *n);

/* butler__channel_take returns every posted node, oldest first. Consumer. */
struct butler__node *butler__channel_take(struct butler__channel *ch);

/* butler__count adds n to a counter only the consumer writes: no RMW. */
static inline void
butler__count(atomic_uint_fast64_t *counter, uint64_t n)
{
	atomic_store_explicit(counter,
	    atomic_load_explicit(counter, memory_order_relaxed) + n,
	    memory_order_relaxed);
}

/* butler__channel_state returns ch's butler__open state. */
static inline int
butler__channel_state(const struct butler__channel *ch)
{
	return atomic_load_explicit(&ch->group->open, memory_order_acquire);
}

/* butler__now_ns reads CLOCK_MONOTONIC. */
uint64_t butler__now_ns(void);

/* butler__timespec_at converts a butler__now_ns() time to the timespec a
 * timed wait on a CLOCK_MONOTONIC condition variable takes. */
static inline struct timespec
butler__timespec_at(uint64_t ns)
{
	return (struct timespec) { .tv_sec = (time_t)(ns / 1000000000u),
		.tv_nsec = (long)(ns % 1000000000u) };
}

/* How a drain runs. */
enum butler__drain_flags {
	BUTLER__DRAIN_STOP_ON_CLOSE = 1u << 0 /* cut the batch when CLOSED */
};

/* What a consume function returns: the record was a message its handler
 * took (counted as handled by the drain), or anything else (counted by
 * the consume function itself, if at all). */
enum butler__took { BUTLER__TOOK_HANDLED = 0, BUTLER__TOOK_OTHER = 1 };

/* Records a consumer takes from one lane before looking at the next. */
#define BUTLER__LANE_QUANTUM 64u

/*
 * Reading the clock costs as much as handling a small message, so a drain
 * reads it every `stride` messages: the stride doubles (to 256) while
 * messages are quick and falls back to 1 as soon as they are not, so a
 * batch overruns its time budget by at most about 0.5 ms. After a slow
 * stretch the depth is sampled again: messages that arrived while a long
 * handler ran count in high_water.
 */
#define BUTLER__STRIDE_MAX 256u
#define BUTLER__QUICK_NS 2000u

/*
 * butler__channel_drain_pq runs fn on up to max entries of ch's policy
 * queue (which it must have); adds those it handled to *handled; returns
 * the number taken. butler__channel_close_pq runs fn on all of them and
 * closes the queue: later pushes are refused. Consumer.
 */
unsigned butler__channel_drain_pq(struct butler__channel *ch, unsigned max,
    butler__consume_fn fn, void *ctx, unsigned *handled);
void butler__channel_close_pq(
    struct butler__channel *ch, butler__consume_fn fn, void *ctx);

/* The out-of-line parts of a drain (channel.c). */
void butler__channel_reclaim(
    struct butler__channel *ch, struct butler__lane *lane);
void butler__channel_sample_depth(struct butler__channel *ch);
void butler__channel_note_depth(struct butler__channel *ch, uint64_t depth);
void butler__channel_drain_end(struct butler__channel *ch, uint64_t start,
    unsigned done, unsigned handled);

/*
 * butler__channel_drain_inline runs fn on up to `max` queued records, for
 * at most about budget_ns, taking each lane's records in order and the
 * lanes in turn; *more says whether it stopped with work left. Returns the
 * number of records taken. It is inline so that a constant fn is inlined
 * into the loop (server.c's consume): the per-record cost is what a
 * server's throughput is made of.
 *
 * A record is taken before fn runs. What has been taken is published
 * (the head) at the end of each lane's turn, and after every record while
 * the lane is within a quantum of its capacity, so that capacity counts
 * what waits wherever a sender could be refused. The clock, the closing
 * check and the counters are looked at every `stride` records, not per
 * record. Consumer.
 */
static inline __attribute__((always_inline)) unsigned
butler__channel_drain_inline(struct butler__channel *ch, unsigned max,
    uint64_t budget_ns, unsigned flags, butler__consume_fn fn, void *ctx,
    bool *more)
{
	uint64_t start = butler__now_ns(), last = start;
	unsigned done = 0, handled = 0, stride = 1, next_check = max ? 1 : 0;
	bool progress, cut = false;

	atomic_store_explicit(&ch->clock_ns, start, memory_order_relaxed);
	do {
		struct butler__lane *lane, *next;
		uint64_t depth = 0;

		progress = false;
		for (lane
		     = atomic_load_explicit(&ch->lanes, memory_order_acquire);
		     lane != NULL && !cut; lane = next) {
			uint64_t tail, stop;
			bool urgent;

			next = atomic_load_explicit(
			    &lane->next, memory_order_acquire);
			tail = atomic_load_explicit(
			    &lane->tail, memory_order_acquire);
			depth += tail - lane->head_local;
			if (lane->head_local == tail) {
				butler__channel_reclaim(ch, lane);
				continue;
			}
			progress = true;
			/* What a least-loaded pool's senders read: the work in
			 * view now, the record about to run included. */
			atomic_store_explicit(
			    &ch->load, depth, memory_order_relaxed);
			stop = tail - lane->head_local > BUTLER__LANE_QUANTUM
			    ? lane->head_local + BUTLER__LANE_QUANTUM
			    : tail;
			urgent = tail
			        - atomic_load_explicit(
			            &lane->head, memory_order_relaxed)
			        + BUTLER__LANE_QUANTUM
			    >= ch->capacity;
			while (lane->head_local != stop) {
				struct butler__rec *rec
				    = butler__lane_front(lane);

				butler__lane_pop(lane, rec);
				if (urgent)
					butler__lane_commit(lane);
				BUTLER__CHAOS();
				handled
				    += fn(ctx, rec) == BUTLER__TOOK_HANDLED;
				/* One compare per record: next_check is never
				 * past max. */
				if (++done != next_check)
					continue;
				if (done >= max) {
					cut = true;
					break;
				}
				{
					uint64_t now = butler__now_ns();
					bool quick = now - last
					    < BUTLER__QUICK_NS * stride;

					if (now - start >= budget_ns
					    || ((flags
					            & BUTLER__DRAIN_STOP_ON_CLOSE)
					        && butler__channel_state(ch)
					            == BUTLER__CLOSED)) {
						cut = true;
						break;
					}
					if (!quick)
						butler__channel_sample_depth(
						    ch);
					stride = quick
					    ? (stride < BUTLER__STRIDE_MAX
					            ? stride * 2
					            : stride)
					    : 1;
					last = now;
					atomic_store_explicit(&ch->clock_ns,
					    now, memory_order_relaxed);
					next_check = done + stride;
					if (next_check > max)
						next_check = max;
				}
			}
			butler__lane_commit(lane);
		}
		if (__builtin_expect(ch->pq != NULL, 0) && !cut
		    && butler__pqueue_count(ch->pq) != 0) {
			unsigned n = butler__channel_drain_pq(
			    ch, BUTLER__LANE_QUANTUM, fn, ctx, &handled);

			depth += n;
			done += n;
			progress = true;
			if (done >= max)
				cut = true;
			else if (next_check <= done)
				next_check = done + 1;
		}
		butler__channel_note_depth(ch, depth);
	} while (progress && !cut);
	butler__channel_drain_end(ch, start, done, handled);
	*more = cut;
	return done;
}

/*
 * butler__channel_drain is butler__channel_drain_inline() out of line, for
 * the rare drains (finishing, release, stragglers) whose fn need not be
 * inlined; for a sharing pool's inbox it takes records one by one through
 * butler__channel_take_one(), as the pool's other consumers do.
 */
unsigned butler__channel_drain(struct butler__channel *ch, unsigned max,
    uint64_t budget_ns, unsigned flags, butler__consume_fn fn, void *ctx,
    bool *more);

/*
 * butler__channel_set_shared makes ch the inbox of a sharing pool's
 * instance (see butler__channel_take_one()). Before any send. Returns
 * BUTLER_OK, BUTLER_ENOMEM or BUTLER_ESYS.
 */
int butler__channel_set_shared(struct butler__channel *ch);

/*
 * butler__channel_take_one copies the oldest record of one of ch's lanes
 * into buf (cap bytes, at least the largest record) and takes it; for the
 * inboxes of a sharing pool, whose records any instance of the pool may
 * take (its consumer and, while it is busy, an idle sibling: `stealing`,
 * which leaves progress records to their owner). One lane at a time is
 * held, for the copy only, so a record's handler runs on the copy while
 * the lane goes on. Returns false when it found nothing to take.
 */
bool butler__channel_take_one(struct butler__channel *ch,
    struct butler__rec *buf, size_t cap, bool stealing);

/*
 * butler__channel_idle prepares the consumer to sleep: it clears the
 * pending and scheduled flags and returns true when nothing is queued or
 * posted; false (flags set again) when something slipped in. Consumer.
 */
bool butler__channel_idle(struct butler__channel *ch);

/* butler__channel_empty says whether nothing is queued or posted. */
bool butler__channel_empty(struct butler__channel *ch);

/*
 * butler__channel_spin polls the lanes until one has work (true) or the
 * clock passes `until` (false), yielding the CPU every microsecond or so:
 * on a machine with more runnable threads than CPUs the work it waits for
 * may need this very CPU to be produced.
 */
bool butler__channel_spin(struct butler__channel *ch, uint64_t until_ns);

/* butler__channel_wake_cost returns how long the last wake-up took, from
 * the token's write to now, or 0 if unknown; and forgets it. Consumer. */
uint64_t butler__channel_wake_cost(struct butler__channel *ch);

/* butler__channel_ring writes a token (wakes the consumer). Any thread. */
void butler__channel_ring(struct butler__channel *ch);

/* butler__channel_ack reads the token after a wake-up. Consumer. */
void butler__channel_ack(struct butler__channel *ch);

/*
 * butler__stopgroup_set_open moves every inbox of the group to `state`
 * (butler__open, never back) in one step; with BUTLER__CLOSED it also
 * decides `final`. Then call butler__channel_wake_blocked() on each inbox.
 */
void butler__stopgroup_set_open(struct butler__stopgroup *g, int state);

/* butler__channel_wake_blocked wakes senders waiting for room, so that
 * those the inbox now refuses return BUTLER_ECLOSED. */
void butler__channel_wake_blocked(struct butler__channel *ch);

/*
 * butler__channel_try_quiet reports ch quiet to its stop group, when the
 * hub is draining for a stop, nothing is queued or posted and `owes_nothing`
 * (the consumer's own state: no answer owed, none awaited). Returns true
 * when that made every inbox quiet (the stopper is then woken). Consumer.
 */
bool butler__channel_try_quiet(struct butler__channel *ch, bool owes_nothing);

/* butler__channel_close_fd closes the token fd (no sender can write it
 * after this returns). */
void butler__channel_close_fd(struct butler__channel *ch);

/*
 * butler__channel_become_consumer waits until no other thread consumes ch
 * and takes its place; _try_consume does not wait (false: busy);
 * _leave_consumer gives it up.
 */
void butler__channel_become_consumer(struct butler__channel *ch);
bool butler__channel_try_consume(struct butler__channel *ch);
void butler__channel_leave_consumer(struct butler__channel *ch);

/*
 * butler__channel_stats adds ch's counters to *out (high_water: the
 * larger of the two). Any thread.
 */
void butler__channel_stats(struct butler__channel *ch, butler_stats *out);

/*
 * butler__channel_kind_stats adds what ch counted of `kind` into *out, and
 * its histograms into *queue and *handler (either may be NULL). Any thread.
 */
void butler__channel_kind_stats(struct butler__channel *ch, unsigned kind,
    butler_kind_stats *out, struct butler__hist_sum *queue,
    struct butler__hist_sum *handler);

/* butler__channel_depth returns the records queued now; approximate. */
uint64_t butler__channel_depth(struct butler__channel *ch);

#endif /* BUTLER_INTERNAL_CHANNEL_H */
