/*
 * lane.c — single-producer single-consumer record queues, the identity of
 * sending threads, and each thread's cache of its lanes.
 *
 * Why one lane per (sending thread, server instance): a queue shared by all
 * senders makes every send fight for one cache line (a CAS or XCHG on the
 * tail), and that line transfer is most of the cost of a send. With a lane
 * per sender, a send writes only lines its own thread owns; the consumer
 * reads them in batches. It also makes FIFO per producer trivial, and lets
 * one flooding thread fill only its own lane.
 *
 * A lane is a chain of segments. The producer appends records to its
 * segment and, when a record does not fit, links a new segment (the
 * a recycled one if there is one). The consumer walks the chain and hands
 * each finished segment back through a pool, so a steady flow allocates
 * nothing.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

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
	struct butler__segment *seg = malloc(sizeof *seg + cap);

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

	lane = aligned_alloc(BUTLER__CACHE_LINE,
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
	atomic_init(&lane->head, 0);
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
	struct butler__segment *seg, *next;

	if (lane == NULL)
		return;
	for (seg = lane->rseg; seg != NULL; seg = next) {
		next = atomic_load_explicit(&seg->next, memory_order_acquire);
		free(seg);
	}
	free_chain(atomic_load_explicit(&lane->pool, memory_order_acquire));
	free_chain(lane->pool_mine);
	butler__sender_unref(lane->sender);
	free(lane);
}

struct butler__rec *
butler__lane_grow(struct butler__lane *lane, size_t size)
{
	struct butler__segment *seg = lane->wseg, *fresh;

	(void)size; /* fits in a fresh segment: checked at hub creation */
	/* Reuse what the consumer has finished with: take the whole pool in
	 * one exchange, then use it up without touching shared memory. */
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
butler__lane_front(struct butler__lane *lane)
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
		 * the pool already holds all that capacity can fill. */
		if (lane->pool_given
		        - atomic_load_explicit(
		            &lane->pool_taken, memory_order_relaxed)
		    >= lane->pool_max) {
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

/* ---- senders and the per-thread lane cache ---------------------------- */

/*
 * A hub is recognised in the cache by address and serial, so a new hub at a
 * freed hub's address never inherits stale lanes. The cache is only a
 * cache: on a miss the thread finds its lane in the channel's list (under
 * the channel's lock) before creating one, which keeps one lane per pair and
 * so FIFO.
 */
_Thread_local struct butler__thread_state butler__tls;
#define tls butler__tls
#define CACHE_WAYS BUTLER__CACHE_WAYS
#define lane_cache butler__lane_cache

static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static void
cache_drop(struct lane_cache *c)
{
	free(c->lanes);
	free(c->rr);
	memset(c, 0, sizeof *c);
}

/* Runs when a thread that has sent exits: its lanes become reclaimable. */
static void
thread_exit(void *arg)
{
	struct butler__sender *me = arg;
	unsigned i;

	for (i = 0; i < CACHE_WAYS; i++)
		cache_drop(&tls.way[i]);
	if (tls.me == me)
		tls.me = NULL;
	atomic_store_explicit(&me->alive, false, memory_order_release);
	butler__sender_unref(me);
}

static void
make_exit_key(void)
{
	/* One key for the process: it only carries each thread's own
	 * sender to its destructor, no state shared between hubs. */
	(void)pthread_key_create(&exit_key, thread_exit);
}

struct butler__sender *
butler__sender_self(void)
{
	struct butler__sender *me = tls.me;

	if (me != NULL)
		return me;
	if (pthread_once(&exit_key_once, make_exit_key) != 0)
		return NULL;
	me = malloc(sizeof *me);
	if (me == NULL)
		return NULL;
	atomic_init(&me->refs, 1);
	atomic_init(&me->alive, true);
	if (pthread_setspecific(exit_key, me) != 0) {
		free(me);
		return NULL;
	}
	tls.me = me;
	return me;
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

/* Finds hub's cache entry and moves it to way 0, the inline fast path. */
static struct lane_cache *
cache_find(const struct butler_hub *hub)
{
	unsigned i;

	for (i = 0; i < CACHE_WAYS; i++)
		if (tls.way[i].hub == hub
		    && tls.way[i].serial == hub->serial) {
			if (i > 0) {
				struct lane_cache hit = tls.way[i];

				memmove(
				    &tls.way[1], &tls.way[0], i * sizeof hit);
				tls.way[0] = hit;
			}
			return &tls.way[0];
		}
	return NULL;
}

/* Adds an entry for hub at way 0, evicting the least recently used. */
static struct lane_cache *
cache_add(const struct butler_hub *hub)
{
	struct lane_cache *c = &tls.way[0];

	cache_drop(&tls.way[CACHE_WAYS - 1]);
	memmove(&tls.way[1], &tls.way[0], (CACHE_WAYS - 1) * sizeof *c);
	memset(c, 0, sizeof *c);
	c->lanes = calloc(hub->n_inst, sizeof *c->lanes);
	c->rr = calloc(hub->spec->n_servers, sizeof *c->rr);
	if (c->lanes == NULL || c->rr == NULL) {
		cache_drop(c);
		return NULL;
	}
	c->hub = hub;
	c->serial = hub->serial;
	return c;
}

/*
 * butler__lane_for returns the calling thread's lane into server instance
 * dst, creating what is missing. NULL when out of memory.
 */
struct butler__lane *
butler__lane_for(const struct butler_hub *hub, struct butler_server *dst)
{
	struct lane_cache *c = cache_find(hub);
	struct butler__sender *me;
	struct butler__lane *lane;

	if (c != NULL && (lane = c->lanes[dst->index]) != NULL)
		return lane;
	me = butler__sender_self();
	if (me == NULL)
		return NULL;
	if (c == NULL && (c = cache_add(hub)) == NULL)
		return NULL;
	lane = butler__channel_lane(&dst->ch, me);
	c->lanes[dst->index] = lane;
	return lane;
}

/* butler__rr_next returns the next round-robin start for spec server id. */
unsigned
butler__rr_next(const struct butler_hub *hub, unsigned server)
{
	struct lane_cache *c = cache_find(hub);

	if (c == NULL
	    && (butler__sender_self() == NULL || (c = cache_add(hub)) == NULL))
		return 0;
	return c->rr[server]++;
}

/*
 * butler__tls_forget drops the calling thread's cache for hub (called by
 * butler_hub_free) and, when the thread caches nothing any more and no lane
 * refers to its sender, frees the sender too, so a program's main thread
 * ends with nothing allocated.
 */
void
butler__tls_forget(const struct butler_hub *hub)
{
	struct lane_cache *c = cache_find(hub);
	unsigned i;

	if (c != NULL) {
		cache_drop(c);
		/* Keep the used ways first: way 0 is the fast path. */
		memmove(
		    &tls.way[0], &tls.way[1], (CACHE_WAYS - 1) * sizeof *c);
		memset(&tls.way[CACHE_WAYS - 1], 0, sizeof *c);
	}
	for (i = 0; i < CACHE_WAYS; i++)
		if (tls.way[i].hub != NULL)
			return;
	if (tls.me != NULL
	    && atomic_load_explicit(&tls.me->refs, memory_order_acquire)
	        == 1) {
		(void)pthread_setspecific(exit_key, NULL);
		free(tls.me);
		tls.me = NULL;
	}
}
