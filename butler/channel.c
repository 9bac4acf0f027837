/* SPDX-License-Identifier: MIT */
/*
 * channel.c — a server instance's inbox: its lanes, the wake-up token,
 * capacity and blocking senders, posted answers, closing, and the stop
 * group that tells when a stopping hub has gone quiet.
 *
 * Wake-up protocol (docs/ARCHITECTURE.md, "The wake-up protocol"). The
 * token (one eventfd write) is only needed when the consumer may be
 * asleep. Each lane has a `scheduled` flag and the channel a `pending`
 * flag:
 *
 *   producer: publish the record (seq_cst store of tail);
 *             if lane.scheduled was 0 and we set it (xchg), and
 *             channel.pending was 0 and we set it (xchg): write the token.
 *   poster:   push the node (seq_cst CAS);
 *             if channel.pending was 0 and we set it: write the token.
 *   consumer, going idle:
 *             pending = 0; every lane.scheduled = 0 (seq_cst stores);
 *             then read every lane's tail and the node list (seq_cst).
 *             Work found: keep going.
 *
 * Whatever the interleaving, either the consumer sees the new record (or
 * node) or the producer sees the flags cleared and writes the token: a
 * Dekker pair, whose two store-then-load sides must each be ordered. The
 * consumer's side is seq_cst stores; by default so is the producer's (the
 * tail is an xchg on x86-64). With BUTLER_MEMBARRIER=1 in the environment
 * (and a kernel that has it) the producer's side is asymmetric instead: the
 * tail is a release store (a plain mov), and the consumer, before its
 * re-check, calls membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), which makes
 * every thread of the process run a full barrier. Then for each producer
 * either its store precedes its barrier, and the re-check sees the record,
 * or its load of `scheduled` follows the barrier, which follows the
 * consumer's clearing store, and it rings. That moves the cost to the idle
 * transition, one syscall and an IPI to every CPU running the process: a
 * win for a server that rarely idles, a loss for pools that idle between
 * small jobs (servers/tasks ran 227 k tasks/s with it against 999 k
 * without, same run, on a 2-vCPU VM, where each IPI is a VM exit), so it
 * is opt-in (docs/ARCHITECTURE.md). While the consumer is busy the flags
 * stay set, so a loaded server costs its senders no syscall and no write
 * to a shared cache line.
 *
 * Closing is one word per hub (the stop group's `open`), so every inbox of
 * a hub refuses from the same instant: there is no window in which one
 * server still accepts while another already refuses, and a refusal stays.
 */
#include "channel.h"

#include "alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/eventfd.h>
#endif
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* Smallest segment; larger messages get segments of 16 records. */
#define MIN_SEGMENT 16384u
/* Recycled segments a lane keeps beyond the two it writes and reads:
 * enough for a steady flow never to allocate, little enough that what a
 * burst took is given back as it drains. */
#define POOL_RESERVE 8u
/* Freed segment bytes after which a consumer going idle asks malloc to
 * give free memory back to the system: free() alone keeps a drained
 * burst's pages resident (they are not at the top of the heap). */
#define TRIM_AFTER (4u << 20)

uint64_t
butler__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- tokens: an eventfd, or a pipe where there is none ---------------- */

static int
token_open(int *rfd, int *wfd)
{
	if (BUTLER__FAULT(BUTLER__FAULT_FD))
		return BUTLER_ESYS;
#ifdef __linux__
	*rfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (*rfd >= 0) {
		*wfd = *rfd;
		return BUTLER_OK;
	}
#endif
	{
		int p[2];

		if (pipe(p) != 0)
			return BUTLER_ESYS;
		for (int i = 0; i < 2; i++) {
			(void)fcntl(p[i], F_SETFL, O_NONBLOCK);
			(void)fcntl(p[i], F_SETFD, FD_CLOEXEC);
		}
		*rfd = p[0];
		*wfd = p[1];
	}
	return BUTLER_OK;
}

static void
token_write(int wfd)
{
	static const uint64_t one = 1;
	ssize_t n;

	do
		n = write(wfd, &one, sizeof one);
	while (n < 0 && errno == EINTR);
	/* EAGAIN: the token is already there, which is all we want. */
}

static void
token_read(int rfd, int wfd)
{
	unsigned char buf[64];
	ssize_t n;

	/* An eventfd is emptied by one 8-byte read; a pipe may hold a few
	 * tokens, so read until dry. */
	do
		n = read(rfd, buf, rfd == wfd ? 8 : sizeof buf);
	while (n > 0 && rfd != wfd);
}

static void
token_close(int *rfd, int *wfd)
{
	if (*wfd != *rfd && *wfd >= 0)
		close(*wfd);
	if (*rfd >= 0)
		close(*rfd);
	*rfd = *wfd = -1;
}

/* ---- the stop group --------------------------------------------------- */

int
butler__stopgroup_init(struct butler__stopgroup *g, unsigned n)
{
	memset(g, 0, sizeof *g);
	atomic_init(&g->open, BUTLER__OPEN);
	g->n = n;
	g->wake_fd = g->wake_wfd = -1;
	if (token_open(&g->wake_fd, &g->wake_wfd) != BUTLER_OK)
		return BUTLER_ESYS;
	if (pthread_mutex_init(&g->lock, NULL) != 0) {
		token_close(&g->wake_fd, &g->wake_wfd);
		return BUTLER_ESYS;
	}
	return BUTLER_OK;
}

void
butler__stopgroup_release(struct butler__stopgroup *g)
{
	pthread_mutex_destroy(&g->lock);
	token_close(&g->wake_fd, &g->wake_wfd);
}

void
butler__stopgroup_ring(struct butler__stopgroup *g)
{
	token_write(g->wake_wfd);
}

void
butler__stopgroup_ack(struct butler__stopgroup *g)
{
	token_read(g->wake_fd, g->wake_wfd);
}

bool
butler__stopgroup_all_quiet(struct butler__stopgroup *g)
{
	bool all;

	pthread_mutex_lock(&g->lock);
	all = g->n_quiet == g->n;
	pthread_mutex_unlock(&g->lock);
	return all;
}

void
butler__stopgroup_set_open(struct butler__stopgroup *g, int state)
{
	pthread_mutex_lock(&g->lock);
	if (state == BUTLER__CLOSING)
		g->draining = true;
	if (state == BUTLER__CLOSED)
		g->final = true;
	if (atomic_load(&g->open) < state)
		atomic_store(&g->open, state);
	pthread_mutex_unlock(&g->lock);
	BUTLER__CHAOS();
}

/* Reads a counter (any thread). */
static uint64_t
get(atomic_uint_fast64_t *counter)
{
	return atomic_load_explicit(counter, memory_order_relaxed);
}

/* ---- construction ----------------------------------------------------- */

static void
free_kinds(struct butler__kind_count *kinds, unsigned n_kinds)
{
	for (unsigned k = 0; k <= n_kinds; k++) {
		free(kinds[k].queue);
		free(kinds[k].handler);
	}
	free(kinds);
}

int
butler__channel_init(struct butler__channel *ch, unsigned capacity,
    size_t max_record, struct butler__stopgroup *group)
{
	pthread_condattr_t attr;
	size_t seg = 16 * max_record;
	int rv;

	memset(ch, 0, sizeof *ch);
	ch->fd = ch->wfd = -1;
	ch->group = group;
	ch->capacity = capacity;
	ch->max_record = max_record;
	if (seg < MIN_SEGMENT)
		seg = MIN_SEGMENT;
	ch->seg_bytes = butler__rec_round(seg);
	ch->pool_max = POOL_RESERVE;
	atomic_init(&ch->pending, 0);
	atomic_init(&ch->fd_users, 0);
	atomic_init(&ch->fd_closed, 0);
	atomic_init(&ch->nodes, NULL);
	atomic_init(&ch->lanes, NULL);
	atomic_init(&ch->waiters, 0);
	atomic_init(&ch->draining, 0);
	atomic_init(&ch->clock_ns, 0);
	atomic_init(&ch->rang_ns, 0);
	atomic_init(&ch->load, 0);
	atomic_init(&ch->visitors, 0);
	atomic_init(&ch->retired, false);

	rv = token_open(&ch->fd, &ch->wfd);
	if (rv != BUTLER_OK)
		return rv;
	if (pthread_mutex_init(&ch->lanes_lock, NULL) != 0)
		goto out_close_fd;
	if (pthread_mutex_init(&ch->wait_lock, NULL) != 0)
		goto out_lanes_lock;
	if (pthread_mutex_init(&ch->purge_lock, NULL) != 0)
		goto out_wait_lock;
	if (pthread_cond_init(&ch->purge_cond, NULL) != 0) {
		pthread_mutex_destroy(&ch->purge_lock);
		goto out_wait_lock;
	}
	/* Blocking sends measure their timeout on the monotonic clock, so a
	 * wall-clock jump cannot stretch or cut it. */
	if (pthread_condattr_init(&attr) != 0)
		goto out_wait_lock;
	(void)pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	rv = pthread_cond_init(&ch->wait_cond, &attr);
	pthread_condattr_destroy(&attr);
	if (rv != 0)
		goto out_purge_lock;
	return BUTLER_OK;

out_purge_lock:
	pthread_cond_destroy(&ch->purge_cond);
	pthread_mutex_destroy(&ch->purge_lock);
out_wait_lock:
	pthread_mutex_destroy(&ch->wait_lock);
out_lanes_lock:
	pthread_mutex_destroy(&ch->lanes_lock);
out_close_fd:
	token_close(&ch->fd, &ch->wfd);
	return BUTLER_ESYS;
}

int
butler__channel_set_kinds(struct butler__channel *ch, unsigned n_kinds,
    bool policy_queue, unsigned per_kind)
{
	struct butler__kind_count *kinds;

	kinds = butler__calloc(n_kinds + 1, sizeof *kinds);
	if (kinds == NULL)
		return BUTLER_ENOMEM;
	if (policy_queue) {
		int rv;

		ch->pq = butler__malloc(sizeof *ch->pq);
		if (ch->pq == NULL) {
			free(kinds);
			return BUTLER_ENOMEM;
		}
		rv = butler__pqueue_init(
		    ch->pq, n_kinds, per_kind, ch->max_record);
		if (rv != BUTLER_OK) {
			free(ch->pq);
			ch->pq = NULL;
			free(kinds);
			return rv;
		}
	}
	ch->kinds = kinds;
	ch->n_kinds = n_kinds;
	atomic_store(&ch->fast_kinds, n_kinds);
	return BUTLER_OK;
}

int
butler__channel_set_metrics(struct butler__channel *ch)
{
	for (unsigned k = 0; k <= ch->n_kinds; k++) {
		struct butler__kind_count *kc = &ch->kinds[k];

		if (kc->queue == NULL)
			kc->queue = butler__calloc(1, sizeof *kc->queue);
		if (kc->handler == NULL)
			kc->handler = butler__calloc(1, sizeof *kc->handler);
		if (kc->queue == NULL || kc->handler == NULL)
			return BUTLER_ENOMEM;
	}
	ch->metrics = true;
	return BUTLER_OK;
}

void
butler__channel_close_pq(
    struct butler__channel *ch, butler__consume_fn fn, void *ctx)
{
	struct butler__pq_entry *e;

	if (ch->pq == NULL)
		return;
	while ((e = butler__pqueue_take(ch->pq, true)) != NULL) {
		(void)fn(ctx, butler__pq_rec(e));
		butler__pqueue_recycle(ch->pq, e);
	}
}

unsigned
butler__channel_drain_pq(struct butler__channel *ch, unsigned max,
    butler__consume_fn fn, void *ctx, unsigned *handled)
{
	struct butler__pq_entry *e;
	unsigned done = 0;

	while (
	    done < max && (e = butler__pqueue_take(ch->pq, false)) != NULL) {
		*handled += fn(ctx, butler__pq_rec(e)) == BUTLER__TOOK_HANDLED;
		butler__pqueue_recycle(ch->pq, e);
		done++;
	}
	return done;
}

void
butler__channel_release(
    struct butler__channel *ch, butler__consume_fn drop, void *ctx)
{
	struct butler__lane *lane, *next;
	bool more;

	(void)butler__channel_drain(
	    ch, UINT32_MAX, UINT64_MAX, 0, drop, ctx, &more);
	butler__channel_close_pq(ch, drop, ctx);
	if (ch->pq != NULL) {
		butler__pqueue_release(ch->pq);
		free(ch->pq);
		ch->pq = NULL;
	}
	if (ch->kinds != NULL) {
		free_kinds(ch->kinds, ch->n_kinds);
		ch->kinds = NULL;
	}
	for (lane = atomic_load(&ch->lanes); lane != NULL; lane = next) {
		next = atomic_load(&lane->next);
		butler__lane_free(lane);
	}
	atomic_store(&ch->lanes, NULL);
	butler__channel_close_fd(ch);
	if (ch->shared) {
		pthread_mutex_destroy(&ch->spare_lock);
		free(ch->spare);
		ch->spare = NULL;
		ch->shared = false;
	}
	butler__channel_apply_purges(ch, true, NULL);
	pthread_cond_destroy(&ch->purge_cond);
	pthread_mutex_destroy(&ch->purge_lock);
	pthread_cond_destroy(&ch->wait_cond);
	pthread_mutex_destroy(&ch->wait_lock);
	pthread_mutex_destroy(&ch->lanes_lock);
}

/* ---- purges ----------------------------------------------------------- */

/*
 * Marks the records of `kind` in lane from the consumer's position up to
 * position `upto`: the consumer is the only reader of a published record's
 * header (and, in a sharing pool, only under the lane's `taking`), so it
 * may write a flag there.
 */
/* Whether rec can be purged: progress and timers are not messages of a
 * kind the sender queued (a timer's record is re-armed, not queued). */
static inline bool
purgeable(const struct butler__rec *rec, unsigned kind)
{
	return rec->kind == kind
	    && !(rec->flags
	        & (BUTLER__REC_PROGRESS | BUTLER__REC_TIMER
	            | BUTLER__REC_PURGED));
}

static uint64_t
mark_lane(struct butler__channel *ch, struct butler__lane *lane, unsigned kind,
    uint64_t upto, struct butler__rec *cur)
{
	struct butler__segment *seg;
	uint64_t pos, tail, n = 0;
	size_t off;

	if (ch->shared)
		while (atomic_exchange_explicit(
		    &lane->taking, 1, memory_order_acquire))
			sched_yield();
	tail = atomic_load_explicit(&lane->tail, memory_order_acquire);
	if (upto > tail)
		upto = tail;
	/* The record just popped ends where the lane's position starts. */
	if (cur != NULL && lane->head_local > 0 && lane->head_local - 1 < upto
	    && (unsigned char *)cur + cur->size
	        == lane->rseg->data + lane->roff
	    && purgeable(cur, kind)) {
		cur->flags |= BUTLER__REC_PURGED;
		n++;
	}
	seg = lane->rseg;
	off = lane->roff;
	for (pos = lane->head_local; pos < upto;) {
		struct butler__rec *rec;

		if (seg->cap - off < sizeof(struct butler__rec)
		    || (((struct butler__rec *)(void *)(seg->data + off))
		            ->flags
		        & BUTLER__REC_JUMP)) {
			seg = atomic_load_explicit(
			    &seg->next, memory_order_acquire);
			off = 0;
			continue;
		}
		rec = (struct butler__rec *)(void *)(seg->data + off);
		if (purgeable(rec, kind)) {
			rec->flags |= BUTLER__REC_PURGED;
			n++;
		}
		off += rec->size;
		pos++;
	}
	if (ch->shared)
		atomic_store_explicit(&lane->taking, 0, memory_order_release);
	return n;
}

uint64_t
butler__channel_purge_now(struct butler__channel *ch, unsigned kind)
{
	uint64_t n = 0;

	for (struct butler__lane *lane
	     = atomic_load_explicit(&ch->lanes, memory_order_acquire);
	     lane != NULL;
	     lane = atomic_load_explicit(&lane->next, memory_order_acquire))
		n += mark_lane(ch, lane, kind, UINT64_MAX, NULL);
	return n;
}

/* Carries out purge p. Consumer. */
static void
apply_purge(struct butler__channel *ch, struct butler__purge *p,
    struct butler__rec *cur)
{
	for (struct butler__lane *lane
	     = atomic_load_explicit(&ch->lanes, memory_order_acquire);
	     lane != NULL;
	     lane = atomic_load_explicit(&lane->next, memory_order_acquire))
		for (unsigned i = 0; i < p->n; i++)
			if (p->snap[i].lane == lane->serial) {
				p->marked += mark_lane(
				    ch, lane, p->kind, p->snap[i].upto, cur);
				break;
			}
}

int
butler__channel_purge_ask(
    struct butler__channel *ch, unsigned kind, bool wait, uint64_t *marked)
{
	struct butler__purge *p, local = { 0 };
	unsigned n = 0, i = 0;

	*marked = 0;
	pthread_mutex_lock(&ch->lanes_lock);
	for (struct butler__lane *lane = atomic_load(&ch->lanes); lane != NULL;
	     lane = atomic_load(&lane->next))
		n++;
	p = wait ? &local : butler__calloc(1, sizeof *p);
	if (p != NULL && n > 0)
		p->snap = butler__calloc(n, sizeof *p->snap);
	if (p == NULL || (n > 0 && p->snap == NULL)) {
		pthread_mutex_unlock(&ch->lanes_lock);
		if (p != NULL && p != &local)
			free(p);
		return BUTLER_ENOMEM;
	}
	for (struct butler__lane *lane = atomic_load(&ch->lanes); lane != NULL;
	     lane = atomic_load(&lane->next), i++)
		p->snap[i] = (struct butler__purge_at) { lane->serial,
			atomic_load_explicit(
			    &lane->tail, memory_order_acquire) };
	pthread_mutex_unlock(&ch->lanes_lock);
	p->n = n;
	p->kind = kind;
	p->waited = wait;
	pthread_mutex_lock(&ch->purge_lock);
	if (ch->purge_closed) {
		pthread_mutex_unlock(&ch->purge_lock);
		free(p->snap);
		if (p != &local)
			free(p);
		return BUTLER_ECLOSED;
	}
	p->next = ch->purges;
	ch->purges = p;
	/* The consumer's next record goes the slow way, which applies it. */
	atomic_store_explicit(&ch->fast_kinds, 0, memory_order_relaxed);
	pthread_mutex_unlock(&ch->purge_lock);
	butler__channel_ring(ch);
	if (!wait)
		return BUTLER_OK;
	pthread_mutex_lock(&ch->purge_lock);
	while (!local.done)
		pthread_cond_wait(&ch->purge_cond, &ch->purge_lock);
	pthread_mutex_unlock(&ch->purge_lock);
	free(local.snap);
	*marked = local.marked;
	return BUTLER_OK;
}

void
butler__channel_apply_purges(
    struct butler__channel *ch, bool close, struct butler__rec *cur)
{
	struct butler__purge *list, *p;

	pthread_mutex_lock(&ch->purge_lock);
	list = ch->purges;
	ch->purges = NULL;
	if (close)
		ch->purge_closed = true;
	atomic_store_explicit(
	    &ch->fast_kinds, ch->n_kinds, memory_order_relaxed);
	pthread_mutex_unlock(&ch->purge_lock);
	if (list == NULL)
		return;
	/* Oldest first does not matter: each marks what was queued when it
	 * was asked, and marking twice is once. */
	for (p = list; p != NULL; p = p->next)
		apply_purge(ch, p, cur);
	pthread_mutex_lock(&ch->purge_lock);
	while ((p = list) != NULL) {
		list = p->next;
		if (p->waited) {
			p->done = true;
		} else {
			free(p->snap);
			free(p);
		}
	}
	pthread_cond_broadcast(&ch->purge_cond);
	pthread_mutex_unlock(&ch->purge_lock);
}

struct butler__lane *
butler__channel_lane(struct butler__channel *ch, struct butler__sender *sender)
{
	struct butler__lane *lane;

	pthread_mutex_lock(&ch->lanes_lock);
	for (lane = atomic_load_explicit(&ch->lanes, memory_order_acquire);
	     lane != NULL;
	     lane = atomic_load_explicit(&lane->next, memory_order_acquire))
		if (lane->sender == sender)
			goto out;
	lane = butler__lane_new(sender, ch->seg_bytes, ch->pool_max);
	if (lane != NULL && ch->metrics) {
		lane->kind_sent
		    = butler__calloc(ch->n_kinds + 1, sizeof *lane->kind_sent);
		if (lane->kind_sent == NULL) {
			butler__lane_free(lane);
			lane = NULL;
		}
	}
	if (lane != NULL) {
		lane->inbox = ch;
		lane->serial = ++ch->lane_serials;
		lane->fast_cap = ch->max_queued != 0 ? 0 : ch->capacity;
		atomic_store_explicit(&lane->next, atomic_load(&ch->lanes),
		    memory_order_relaxed);
		/* seq_cst, not release: the consumer's idle re-check reads
		 * ch->lanes seq_cst and must see a new lane (once per lane).
		 */
		atomic_store(&ch->lanes, lane);
	}
out:
	pthread_mutex_unlock(&ch->lanes_lock);
	return lane;
}

/* ---- producers -------------------------------------------------------- */

static bool claim_pending(struct butler__channel *ch);

static bool
lane_has_room(const struct butler__channel *ch, struct butler__lane *lane)
{
	return lane->tail_local - lane->head_cache < ch->capacity;
}

/*
 * The total bound. `capacity` bounds each sender's lane; max_queued bounds
 * what all of an inbox's senders have queued together, without making
 * every send write one shared counter: the bound is a pool of credits
 * (ch->credits, max_queued at first), and a lane takes them a batch at a
 * time (credit_batch, about 1/64 of the bound, at most 32) into its own
 * allowance on its sender's cache line. A send spends one credit of its
 * allowance (a compare-and-swap on a line nobody else writes in the common
 * case); the record carries it (REC_CREDIT) and the consumer gives the
 * credits of the records it took back to the pool once per drain. When the
 * pool is empty, a sender takes back the unused allowances of the other
 * lanes (one exchange each) before it calls the inbox full, so credits an
 * idle thread holds are never lost to the others; a lane whose thread
 * exited gives its allowance back when it is reclaimed. So at no moment do
 * more than max_queued records wait, and a send is refused only when about
 * max_queued do. Every send to such an inbox takes the slow path.
 */
static bool
credit_take_pool(struct butler__channel *ch, struct butler__lane *lane)
{
	for (int pass = 0; pass < 2; pass++) {
		int_fast64_t p = atomic_load(&ch->credits), take;

		while (p > 0) {
			take = lane != NULL
			        && p > (int_fast64_t)ch->credit_batch
			    ? (int_fast64_t)ch->credit_batch
			    : (lane != NULL ? p : 1);
			if (atomic_compare_exchange_weak(
			        &ch->credits, &p, p - take)) {
				if (take > 1)
					atomic_fetch_add(
					    &lane->allow, take - 1);
				return true;
			}
		}
		if (pass == 1)
			break;
		/* Empty: gather the allowances the other lanes hold. */
		{
			int_fast64_t found = 0;

			atomic_fetch_add(&ch->visitors, 1);
			for (struct butler__lane *l = atomic_load(&ch->lanes);
			     l != NULL; l = atomic_load(&l->next))
				if (l != lane)
					found += atomic_exchange(&l->allow, 0);
			atomic_fetch_sub(&ch->visitors, 1);
			if (found == 0)
				break;
			atomic_fetch_add(&ch->credits, found);
		}
	}
	return false;
}

/* Spends one credit of lane's allowance, refilling it from the pool;
 * false when the inbox holds max_queued. Producer of lane. */
static bool
credit_take(struct butler__channel *ch, struct butler__lane *lane)
{
	int_fast64_t a
	    = atomic_load_explicit(&lane->allow, memory_order_relaxed);

	while (a > 0)
		if (atomic_compare_exchange_weak(&lane->allow, &a, a - 1))
			return lane->credited = true;
	return lane->credited = credit_take_pool(ch, lane);
}

/* Gives back the credit a push took but did not use. */
static void
credit_undo(struct butler__lane *lane)
{
	if (lane->credited) {
		lane->credited = false;
		atomic_fetch_add(&lane->allow, 1);
	}
}

void
butler__channel_set_bound(struct butler__channel *ch, unsigned max_queued)
{
	ch->max_queued = max_queued;
	ch->credit_batch = max_queued / 64 > 32 ? 32
	    : max_queued / 64 > 0               ? max_queued / 64
	                                        : 1;
	atomic_store(&ch->credits, (int_fast64_t)max_queued);
}

/* Whether lane may push one more record (and takes the credit). */
static bool
room_for_one(struct butler__channel *ch, struct butler__lane *lane)
{
	return lane_has_room(ch, lane)
	    && (ch->max_queued == 0 || credit_take(ch, lane));
}

/* Whether state `open` refuses a push with `flags`. */
static bool
refuses(int open, unsigned flags)
{
	return open == BUTLER__CLOSED
	    || (open == BUTLER__CLOSING
	        && !(flags & (BUTLER__PUSH_INSIDE | BUTLER__PUSH_ANSWER)));
}

/* Waits, under wait_lock, until the lane has room, ch refuses the push or
 * time is up. */
static int
wait_for_room(struct butler__channel *ch, struct butler__lane *lane,
    unsigned flags, int timeout_ms)
{
	struct timespec deadline = butler__timespec_at(timeout_ms > 0
	        ? butler__now_ns() + (uint64_t)timeout_ms * 1000000u
	        : 0);
	int rv = BUTLER_OK;

	pthread_mutex_lock(&ch->wait_lock);
	atomic_fetch_add(&ch->waiters, 1);
	for (;;) {
		int rc;

		if (refuses(butler__channel_state(ch), flags)) {
			rv = BUTLER_ECLOSED;
			break;
		}
		lane->head_cache = atomic_load(&lane->head);
		if (room_for_one(ch, lane))
			break;
		if (timeout_ms == 0) {
			rv = BUTLER_ETIMEDOUT;
			break;
		}
		if (timeout_ms < 0)
			rc = pthread_cond_wait(&ch->wait_cond, &ch->wait_lock);
		else
			rc = pthread_cond_timedwait(
			    &ch->wait_cond, &ch->wait_lock, &deadline);
		if (rc == ETIMEDOUT)
			timeout_ms = 0; /* one last look, then give up */
	}
	atomic_fetch_sub(&ch->waiters, 1);
	pthread_mutex_unlock(&ch->wait_lock);
	return rv;
}

/*
 * The hub is stopping and this sender may still send: the target must not
 * look quiet while the message is on its way, so it lands under the
 * group's lock (left with butler__channel_gate_leave()). BUTLER_ECLOSED
 * once everything closes.
 */
static int
enter_group(struct butler__stopgroup *g)
{
	pthread_mutex_lock(&g->lock);
	if (g->final) {
		pthread_mutex_unlock(&g->lock);
		return BUTLER_ECLOSED;
	}
	return BUTLER_OK;
}

/* Marks ch busy in its stop group: under the group's lock. */
static void
mark_busy(struct butler__channel *ch)
{
	if (ch->quiet) {
		ch->quiet = false;
		ch->group->n_quiet--;
	}
}

struct butler__rec *
butler__channel_reserve_slow(struct butler__channel *ch,
    struct butler__lane *lane, size_t rec_size, unsigned flags, int timeout_ms,
    int *err, bool *gated)
{
	struct butler__stopgroup *g = ch->group;
	struct butler__rec *rec;
	int open = butler__channel_state(ch);

	if (refuses(open, flags)) {
		*err = BUTLER_ECLOSED;
		return NULL;
	}
	lane->credited = false;
	if ((flags & BUTLER__PUSH_ROOM) && !room_for_one(ch, lane)) {
		lane->head_cache
		    = atomic_load_explicit(&lane->head, memory_order_acquire);
		if (!room_for_one(ch, lane)) {
			int rv = (flags & BUTLER__PUSH_BLOCK)
			    ? wait_for_room(ch, lane, flags, timeout_ms)
			    : BUTLER_EFULL;
			if (rv != BUTLER_OK) {
				if (rv != BUTLER_ECLOSED)
					atomic_fetch_add_explicit(
					    &lane->rejected, 1,
					    memory_order_relaxed);
				*err = rv;
				return NULL;
			}
		}
		open = butler__channel_state(ch);
	}
	if (open != BUTLER__OPEN && enter_group(g) != BUTLER_OK) {
		credit_undo(lane);
		*err = BUTLER_ECLOSED;
		return NULL;
	}
	*gated = open != BUTLER__OPEN;
	rec = butler__lane_reserve(lane, rec_size);
	if (rec == NULL) {
		credit_undo(lane);
		*err = BUTLER_ENOMEM;
		if (*gated) {
			*gated = false;
			pthread_mutex_unlock(&g->lock);
		}
	} else if (*gated) {
		/* Only now: a target marked busy for a record that never
		 * comes would hold the stop forever. */
		mark_busy(ch);
	}
	return rec;
}

void
butler__channel_gate_leave(struct butler__channel *ch)
{
	pthread_mutex_unlock(&ch->group->lock);
}

int
butler__channel_pq_push(struct butler__channel *ch, unsigned kind,
    unsigned rec_flags, void *ptr, const void *msg, size_t size,
    unsigned flags, bool keep_last, struct butler__pq_entry **out)
{
	struct butler__pqueue *q = ch->pq;
	size_t header = butler__rec_header(rec_flags);
	struct butler__pq_entry *e;
	struct butler__rec *rec;
	enum butler__pq_outcome outcome;
	bool credit = false;
	int open;

	*out = NULL;
	e = butler__pqueue_entry(q);
	if (e == NULL)
		return BUTLER_ENOMEM;
	rec = butler__pq_rec(e);
	butler__rec_write(rec, (uint32_t)butler__rec_round(header + size),
	    kind, rec_flags, header, msg, size);
	if (rec_flags & BUTLER__REC_WITH_PTR)
		((struct butler__rec_ticket *)(void *)(rec + 1))->ptr = ptr;
	if (rec_flags & BUTLER__REC_STAMPED)
		*butler__rec_stamp(rec) = butler__now_ns();
	open = butler__channel_state(ch);
	if (refuses(open, flags)
	    || (open != BUTLER__OPEN && enter_group(ch->group) != BUTLER_OK)) {
		butler__pqueue_recycle(q, e);
		return BUTLER_ECLOSED;
	}
	/* The queue's own lock orders every push against the consumer's
	 * last take (which closes it), so no push lands unseen: there are
	 * no stragglers here. */
	pthread_mutex_lock(&q->lock);
	if (q->closed) {
		pthread_mutex_unlock(&q->lock);
		if (open != BUTLER__OPEN)
			butler__channel_gate_leave(ch);
		butler__pqueue_recycle(q, e);
		return BUTLER_ECLOSED;
	}
	if (ch->max_queued != 0) {
		/* The total bound: a new entry needs a credit, unless it takes
		 * the place of one that held it. */
		bool displaces = keep_last ? q->ktail[kind] != NULL
		                           : q->kcount[kind] >= q->per_kind;

		credit = credit_take_pool(ch, NULL);
		if (!credit && !displaces) {
			pthread_mutex_unlock(&q->lock);
			if (open != BUTLER__OPEN)
				butler__channel_gate_leave(ch);
			butler__pqueue_recycle(q, e);
			return BUTLER_EDROPPED;
		}
		if (credit)
			rec->flags |= BUTLER__REC_CREDIT;
	}
	outcome = butler__pqueue_push(q, e, kind, keep_last, out);
	if (*out != NULL
	    && (butler__pq_rec(*out)->flags & BUTLER__REC_CREDIT)) {
		butler__pq_rec(*out)->flags &= (uint16_t)~BUTLER__REC_CREDIT;
		if (credit)
			atomic_fetch_add(&ch->credits, 1);
		else
			rec->flags |= BUTLER__REC_CREDIT;
	}
	pthread_mutex_unlock(&q->lock);
	if (ch->metrics)
		butler__kind_add(&ch->kinds[kind].sent, 1);
	if (open != BUTLER__OPEN) {
		mark_busy(ch);
		butler__channel_gate_leave(ch);
	} else if (butler__channel_state(ch) == BUTLER__CLOSING) {
		/* As send.c's published_late(): the stop began meanwhile. */
		butler__channel_mark_busy(ch);
	}
	if (outcome != BUTLER__PQ_REPLACED && claim_pending(ch))
		butler__channel_ring(ch);
	return outcome == BUTLER__PQ_QUEUED ? BUTLER_OK : BUTLER_EREPLACED;
}

void
butler__channel_mark_busy(struct butler__channel *ch)
{
	struct butler__stopgroup *g = ch->group;

	pthread_mutex_lock(&g->lock);
	if (!g->final)
		mark_busy(ch);
	pthread_mutex_unlock(&g->lock);
	/* The consumer may have reported quiet after it took the record; the
	 * ring makes it look again (tests/model: mut-stop-fix-no-ring). */
	butler__channel_ring(ch);
}

bool
butler__channel_is_quiet(struct butler__channel *ch)
{
	bool quiet;

	pthread_mutex_lock(&ch->group->lock);
	quiet = ch->quiet;
	pthread_mutex_unlock(&ch->group->lock);
	return quiet;
}

void
butler__channel_ring(struct butler__channel *ch)
{
	/* fd_users/fd_closed form another Dekker pair, so that a sender that
	 * raced with the stop never writes to a closed (maybe reused) fd. */
	atomic_fetch_add(&ch->fd_users, 1);
	if (!atomic_load(&ch->fd_closed)) {
		/* For the spin policy: a wake-up's cost is measured from here
		 * (rare: only an idle consumer is rung). */
		atomic_store_explicit(
		    &ch->rang_ns, butler__now_ns(), memory_order_relaxed);
		token_write(ch->wfd);
	}
	atomic_fetch_sub(&ch->fd_users, 1);
}

/* Claims the pending flag; true when the caller must write the token. */
static bool
claim_pending(struct butler__channel *ch)
{
	/* Loading first keeps a busy consumer's line shared; the load is
	 * seq_cst, so it still orders after the publish (see the top). */
	return atomic_load(&ch->pending) == 0
	    && atomic_exchange(&ch->pending, 1) == 0;
}

void
butler__channel_announce(struct butler__channel *ch, struct butler__lane *lane)
{
	if (atomic_exchange(&lane->scheduled, 1) == 0) {
		BUTLER__CHAOS();
		if (claim_pending(ch))
			butler__channel_ring(ch);
	}
}

void
butler__channel_post(struct butler__channel *ch, struct butler__node *n)
{
	struct butler__node *old = atomic_load(&ch->nodes);

	do
		n->next = old;
	while (!atomic_compare_exchange_weak(&ch->nodes, &old, n));
	BUTLER__CHAOS();
	if (claim_pending(ch))
		butler__channel_ring(ch);
}

struct butler__node *
butler__channel_take(struct butler__channel *ch)
{
	struct butler__node *list = atomic_exchange(&ch->nodes, NULL), *fifo;

	/* Posted newest first; hand them out in the order posted. */
	for (fifo = NULL; list != NULL;) {
		struct butler__node *next = list->next;

		list->next = fifo;
		fifo = list;
		list = next;
	}
	return fifo;
}

/* ---- the consumer ----------------------------------------------------- */

void
butler__channel_ack(struct butler__channel *ch)
{
	token_read(ch->fd, ch->wfd);
	butler__count(&ch->wakeups, 1);
}

void
butler__channel_reclaim(struct butler__channel *ch, struct butler__lane *lane)
{
	struct butler__lane *_Atomic *link;

	if (atomic_load_explicit(&lane->sender->alive, memory_order_acquire))
		return;
	/* The thread's last publish happened before it died: re-read. */
	if (atomic_load(&lane->tail) != atomic_load(&lane->head))
		return;
	pthread_mutex_lock(&ch->lanes_lock);
	for (link = &ch->lanes; atomic_load(link) != lane;
	     link = &atomic_load(link)->next)
		;
	atomic_store(link, atomic_load(&lane->next));
	pthread_mutex_unlock(&ch->lanes_lock);
	/* Siblings of a sharing pool may be walking the list: unlinked, the
	 * lane is found by no new walk; wait for those under way. */
	while (atomic_load(&ch->visitors) > 0)
		sched_yield();
	atomic_fetch_add_explicit(&ch->sent_reclaimed,
	    lane->tail_local - atomic_load(&lane->aux), memory_order_relaxed);
	atomic_fetch_add_explicit(
	    &ch->aux_reclaimed, atomic_load(&lane->aux), memory_order_relaxed);
	atomic_fetch_add_explicit(&ch->rejected_reclaimed,
	    atomic_load(&lane->rejected), memory_order_relaxed);
	for (unsigned k = 1; lane->kind_sent != NULL && k <= ch->n_kinds; k++)
		butler__kind_add(&ch->kinds[k].sent, get(&lane->kind_sent[k]));
	/* Its thread has exited: what it held of the total bound is free. */
	atomic_fetch_add(&ch->credits, atomic_exchange(&lane->allow, 0));
	ch->freed_reclaimed += lane->freed;
	butler__lane_free(lane);
}

static void
wake_blocked_senders(struct butler__channel *ch)
{
	/* An RMW, not a load: it reads the latest `waiters` and publishes
	 * the heads stored before it to a sender whose increment follows it
	 * (the pair of wait_for_room). A fence would do too, but TSan does
	 * not model fences. */
	if (atomic_fetch_add(&ch->waiters, 0) > 0) {
		pthread_mutex_lock(&ch->wait_lock);
		pthread_cond_broadcast(&ch->wait_cond);
		pthread_mutex_unlock(&ch->wait_lock);
	}
}

void
butler__channel_wake_blocked(struct butler__channel *ch)
{
	pthread_mutex_lock(&ch->wait_lock);
	pthread_cond_broadcast(&ch->wait_cond);
	pthread_mutex_unlock(&ch->wait_lock);
}

void
butler__channel_sample_depth(struct butler__channel *ch)
{
	uint64_t depth = 0;

	for (struct butler__lane *lane
	     = atomic_load_explicit(&ch->lanes, memory_order_acquire);
	     lane != NULL;
	     lane = atomic_load_explicit(&lane->next, memory_order_acquire))
		depth
		    += atomic_load_explicit(&lane->tail, memory_order_acquire)
		    - lane->head_local;
	if (depth
	    > atomic_load_explicit(&ch->high_water, memory_order_relaxed))
		atomic_store_explicit(
		    &ch->high_water, depth, memory_order_relaxed);
}

unsigned
butler__channel_drain(struct butler__channel *ch, unsigned max,
    uint64_t budget_ns, unsigned flags, butler__consume_fn fn, void *ctx,
    bool *more)
{
	unsigned done = 0;

	if (!ch->shared)
		return butler__channel_drain_inline(
		    ch, max, budget_ns, flags, fn, ctx, more);
	/* Siblings may take from these lanes at the same time: lane by lane,
	 * under their lock, as they do. */
	*more = false;
	pthread_mutex_lock(&ch->spare_lock);
	while (done < max
	    && butler__channel_take_one(
	        ch, ch->spare, ch->max_record, false)) {
		(void)fn(ctx, ch->spare);
		done++;
	}
	pthread_mutex_unlock(&ch->spare_lock);
	*more = done >= max;
	return done;
}

int
butler__channel_set_shared(struct butler__channel *ch)
{
	ch->spare = butler__malloc(ch->max_record);
	if (ch->spare == NULL)
		return BUTLER_ENOMEM;
	if (pthread_mutex_init(&ch->spare_lock, NULL) != 0) {
		free(ch->spare);
		ch->spare = NULL;
		return BUTLER_ESYS;
	}
	ch->shared = true;
	return BUTLER_OK;
}

void
butler__channel_drain_end(struct butler__channel *ch, uint64_t start,
    unsigned done, unsigned handled)
{
	if (done == 0)
		return;
	if (ch->credits_back > 0) {
		/* Before the wake-up, so that a woken sender finds them. */
		atomic_fetch_add(&ch->credits, (int_fast64_t)ch->credits_back);
		ch->credits_back = 0;
	}
	butler__count(&ch->handled, handled);
	butler__count(&ch->handler_ns, butler__now_ns() - start);
	wake_blocked_senders(ch);
}

void
butler__channel_note_depth(struct butler__channel *ch, uint64_t depth)
{
	atomic_store_explicit(&ch->load, depth, memory_order_relaxed);
	if (depth
	    > atomic_load_explicit(&ch->high_water, memory_order_relaxed))
		atomic_store_explicit(
		    &ch->high_water, depth, memory_order_relaxed);
}

bool
butler__channel_empty(struct butler__channel *ch)
{
	if (atomic_load(&ch->nodes) != NULL)
		return false;
	if (ch->pq != NULL && butler__pqueue_count(ch->pq) != 0)
		return false;
	for (struct butler__lane *lane = atomic_load(&ch->lanes); lane != NULL;
	     lane = atomic_load(&lane->next))
		if (atomic_load(&lane->tail) != atomic_load(&lane->head))
			return false;
	return true;
}

bool
butler__channel_take_one(struct butler__channel *ch, struct butler__rec *buf,
    size_t cap, bool stealing)
{
	if (stealing)
		atomic_fetch_add(&ch->visitors, 1);
	for (struct butler__lane *lane
	     = atomic_load_explicit(&ch->lanes, memory_order_acquire);
	     lane != NULL;
	     lane = atomic_load_explicit(&lane->next, memory_order_acquire)) {
		struct butler__rec *rec;
		bool got = false;

		if (atomic_load_explicit(&lane->tail, memory_order_acquire)
		        == atomic_load_explicit(
		            &lane->head, memory_order_relaxed)
		    || atomic_exchange_explicit(
		        &lane->taking, 1, memory_order_acquire))
			continue;
		if (lane->head_local
		    != atomic_load_explicit(
		        &lane->tail, memory_order_acquire)) {
			rec = butler__lane_front(lane);
			/* A progress record is its owner's: its caller's table
			 * is not ours. */
			if ((!stealing || !(rec->flags & BUTLER__REC_PROGRESS))
			    && rec->size <= cap) {
				memcpy(buf, rec, rec->size);
				/* Its credit is this inbox's, whichever pool
				 * instance handles the copy. */
				if (buf->flags & BUTLER__REC_CREDIT) {
					buf->flags
					    &= (uint16_t)~BUTLER__REC_CREDIT;
					atomic_fetch_add(&ch->credits, 1);
				}
				butler__lane_pop(lane, rec);
				butler__lane_commit(lane);
				got = true;
			}
		}
		atomic_store_explicit(&lane->taking, 0, memory_order_release);
		if (got) {
			if (stealing) {
				atomic_fetch_sub(&ch->visitors, 1);
				wake_blocked_senders(ch);
			}
			return true;
		}
	}
	if (stealing)
		atomic_fetch_sub(&ch->visitors, 1);
	return false;
}

/* Gives a drained burst's memory back to the system. Consumer, idle. */
static void
trim(struct butler__channel *ch)
{
	uint64_t freed = ch->freed_reclaimed;

	for (struct butler__lane *lane = atomic_load(&ch->lanes); lane != NULL;
	     lane = atomic_load(&lane->next))
		freed += lane->freed;
	if (freed - ch->trimmed_at < TRIM_AFTER)
		return;
	ch->trimmed_at = freed;
#ifdef __GLIBC__
	(void)malloc_trim(0);
#endif
}

bool
butler__channel_idle(struct butler__channel *ch)
{
	struct butler__lane *lane;

	atomic_store(&ch->pending, 0);
	for (lane = atomic_load(&ch->lanes); lane != NULL;
	     lane = atomic_load(&lane->next))
		atomic_store(&lane->scheduled, 0);
	BUTLER__CHAOS();
	/* The other half of the producers' publish: after this, a producer
	 * has either published where the re-check below sees it, or will see
	 * `scheduled` 0 and ring. */
	butler__membarrier();
	if (butler__channel_empty(ch)) {
		atomic_store_explicit(&ch->load, 0, memory_order_relaxed);
		trim(ch);
		return true;
	}
	/* A sender slipped in. Take the token back so that no sender rings
	 * for work we are about to do; if one already has, we get one
	 * spurious wake-up. */
	(void)atomic_exchange(&ch->pending, 1);
	return false;
}

bool
butler__channel_try_quiet(struct butler__channel *ch, bool owes_nothing)
{
	struct butler__stopgroup *g = ch->group;
	bool all = false;

	if (!owes_nothing)
		return false;
	pthread_mutex_lock(&g->lock);
	/* Under the lock, the emptiness check cannot miss a record from a
	 * sender inside the hub that saw the stop: those publish under this
	 * lock. One whose reserve saw OPEN published without it and marks
	 * the target busy afterwards (butler__channel_mark_busy()); with the
	 * release-store publish its record may still sit in its store
	 * buffer, and the barrier makes it visible to the check below
	 * (tests/model: mut-stop-release-no-quiet-membarrier). Stops only. */
	if (g->draining && !g->final && !ch->quiet)
		butler__membarrier();
	if (g->draining && !g->final && !ch->quiet
	    && butler__channel_empty(ch)) {
		ch->quiet = true;
		all = ++g->n_quiet == g->n;
	}
	pthread_mutex_unlock(&g->lock);
	if (all)
		butler__stopgroup_ring(g);
	return all;
}

void
butler__channel_close_fd(struct butler__channel *ch)
{
	if (ch->fd < 0)
		return;
	atomic_store(&ch->fd_closed, 1);
	while (atomic_load(&ch->fd_users) > 0)
		sched_yield();
	token_close(&ch->fd, &ch->wfd);
}

bool
butler__channel_spin(struct butler__channel *ch, uint64_t until_ns)
{
	unsigned i = 0;

	do {
		for (struct butler__lane *lane
		     = atomic_load_explicit(&ch->lanes, memory_order_acquire);
		     lane != NULL; lane
		     = atomic_load_explicit(&lane->next, memory_order_acquire))
			if (atomic_load_explicit(
			        &lane->tail, memory_order_acquire)
			    != atomic_load_explicit(
			        &lane->head, memory_order_relaxed))
				return true;
		if (atomic_load_explicit(&ch->nodes, memory_order_acquire)
		    != NULL)
			return true;
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
		if ((++i & 63) != 0)
			continue;
		if (butler__now_ns() >= until_ns)
			return false;
		if ((i & 255) == 0)
			sched_yield();
	} while (true);
}

uint64_t
butler__channel_wake_cost(struct butler__channel *ch)
{
	uint64_t rang
	    = atomic_exchange_explicit(&ch->rang_ns, 0, memory_order_relaxed),
	    now;

	if (rang == 0)
		return 0;
	now = butler__now_ns();
	return now > rang ? now - rang : 0;
}

void
butler__channel_set_drop(
    struct butler__channel *ch, butler__consume_fn drop, void *ctx)
{
	ch->drop = drop;
	ch->drop_ctx = ctx;
}

void
butler__channel_set_discard(struct butler__channel *ch,
    void (*discard)(void *ctx, struct butler__rec *rec, int why), void *ctx)
{
	ch->discard = discard;
	ch->discard_ctx = ctx;
}

void
butler__channel_retire(struct butler__channel *ch)
{
	atomic_store(&ch->retired, true);
}

void
butler__channel_straggle(struct butler__channel *ch)
{
	struct timespec nap = { 0, 1000000 };
	bool more;

	for (unsigned spins = 0; !atomic_load(&ch->retired); spins++)
		if (spins < 100)
			sched_yield();
		else
			nanosleep(&nap, NULL); /* a handler still runs there */
	butler__channel_become_consumer(ch);
	(void)butler__channel_drain(
	    ch, UINT32_MAX, UINT64_MAX, 0, ch->drop, ch->drop_ctx, &more);
	butler__channel_leave_consumer(ch);
}

/* ---- consumer ownership ----------------------------------------------- */

void
butler__channel_become_consumer(struct butler__channel *ch)
{
	while (atomic_exchange(&ch->draining, 1))
		sched_yield();
}

bool
butler__channel_try_consume(struct butler__channel *ch)
{
	return atomic_exchange(&ch->draining, 1) == 0;
}

void
butler__channel_leave_consumer(struct butler__channel *ch)
{
	atomic_store(&ch->draining, 0);
}

/* ---- counters --------------------------------------------------------- */

void
butler__channel_stats(struct butler__channel *ch, butler_stats *out)
{
	uint64_t high, depth = 0;

	pthread_mutex_lock(&ch->lanes_lock);
	for (struct butler__lane *lane = atomic_load(&ch->lanes); lane != NULL;
	     lane = atomic_load(&lane->next)) {
		out->sent
		    += atomic_load_explicit(&lane->tail, memory_order_acquire)
		    - get(&lane->aux);
		out->rejected += get(&lane->rejected);
		depth += butler__lane_depth(lane);
	}
	pthread_mutex_unlock(&ch->lanes_lock);
	if (ch->pq != NULL) {
		depth += butler__pqueue_count(ch->pq);
		out->sent += get(&ch->pq->sent);
	}
	out->depth += depth;
	out->sent += get(&ch->sent_reclaimed) + get(&ch->local_sent)
	    + get(&ch->newest_dropped);
	out->rejected += get(&ch->rejected_reclaimed);
	out->handled += get(&ch->handled);
	out->failed += get(&ch->failed);
	out->dropped += get(&ch->dropped) + get(&ch->newest_dropped)
	    + get(&ch->evicted);
	out->replaced += get(&ch->replaced);
	out->purged += get(&ch->purged);
	out->abandoned += get(&ch->abandoned);
	out->replies += get(&ch->replies);
	out->progress += get(&ch->progress);
	out->wakeups += get(&ch->wakeups);
	out->handler_ns += get(&ch->handler_ns);
	/* The largest depth of one inbox: what is queued now counts too. */
	high = get(&ch->high_water);
	if (depth > high)
		high = depth;
	if (high > out->high_water)
		out->high_water = high;
}

void
butler__channel_kind_stats(struct butler__channel *ch, unsigned kind,
    butler_kind_stats *out, struct butler__hist_sum *queue,
    struct butler__hist_sum *handler)
{
	struct butler__kind_count *kc;

	if (ch->kinds == NULL || kind == 0 || kind > ch->n_kinds)
		return;
	kc = &ch->kinds[kind];
	if (ch->metrics) {
		pthread_mutex_lock(&ch->lanes_lock);
		for (struct butler__lane *lane = atomic_load(&ch->lanes);
		     lane != NULL; lane = atomic_load(&lane->next))
			if (lane->kind_sent != NULL)
				out->sent += get(&lane->kind_sent[kind]);
		pthread_mutex_unlock(&ch->lanes_lock);
	}
	out->sent += get(&kc->sent);
	out->rejected += get(&kc->rejected);
	out->handled += get(&kc->handled);
	out->failed += get(&kc->failed);
	out->dropped += get(&kc->dropped);
	out->replaced += get(&kc->replaced);
	out->purged += get(&kc->purged);
	out->abandoned += get(&kc->abandoned);
	if (queue != NULL && kc->queue != NULL)
		butler__hist_read(kc->queue, queue);
	if (handler != NULL && kc->handler != NULL)
		butler__hist_read(kc->handler, handler);
}

uint64_t
butler__channel_depth(struct butler__channel *ch)
{
	uint64_t depth = 0;

	pthread_mutex_lock(&ch->lanes_lock);
	for (struct butler__lane *lane = atomic_load(&ch->lanes); lane != NULL;
	     lane = atomic_load(&lane->next))
		depth += butler__lane_depth(lane);
	pthread_mutex_unlock(&ch->lanes_lock);
	if (ch->pq != NULL)
		depth += butler__pqueue_count(ch->pq);
	return depth;
}
