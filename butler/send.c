/* SPDX-License-Identifier: MIT */
/*
 * send.c — routes, the per-thread lane cache, and the push of one record.
 *
 * A send finds its lane through the calling thread's cache (way 0 is the
 * inline fast path), checks the inbox is open and the lane has room, copies
 * the record and publishes it: no lock, no shared cache line written, no
 * malloc once warm. A hub is recognised in the cache by address and serial,
 * so a new hub at a freed hub's address never inherits stale lanes. The
 * cache is only a cache: on a miss the thread finds its lane in the inbox's
 * list (under that inbox's lock) before creating one, which keeps one lane
 * per pair and so FIFO.
 */
#include "send.h"

#include "alloc.h"

#include <stdlib.h>
#include <string.h>

_Thread_local struct butler__thread_state butler__tls BUTLER__TLS;
#define tls butler__tls
#define CACHE_WAYS BUTLER__CACHE_WAYS

static atomic_uint_fast64_t next_serial = 1;

uint64_t
butler__router_serial(void)
{
	return atomic_fetch_add_explicit(
	    &next_serial, 1, memory_order_relaxed);
}

/* ---- the calling thread's sender and lane caches ---------------------- */

static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static void
cache_drop(struct butler__lane_cache *c)
{
	free(c->lanes);
	free(c->direct);
	free(c->rr);
	memset(c, 0, sizeof *c);
}

/* Runs when a thread that has sent exits: its lanes become reclaimable. */
static void
thread_exit(void *arg)
{
	struct butler__sender *me = arg;

	for (unsigned i = 0; i < CACHE_WAYS; i++)
		cache_drop(&tls.way[i]);
	if (tls.me == me)
		tls.me = NULL;
	butler__sender_exit(me);
}

static void
make_exit_key(void)
{
	/* One key for the process: it only carries each thread's own
	 * sender to its destructor, no state shared between hubs. */
	(void)pthread_key_create(&exit_key, thread_exit);
}

static struct butler__sender *
sender_self(void)
{
	struct butler__sender *me = tls.me;

	if (me != NULL)
		return me;
	if (pthread_once(&exit_key_once, make_exit_key) != 0)
		return NULL;
	me = butler__sender_new();
	if (me == NULL)
		return NULL;
	if (pthread_setspecific(exit_key, me) != 0) {
		butler__sender_unref(me);
		return NULL;
	}
	tls.me = me;
	return me;
}

/* Finds r's cache entry and moves it to way 0, the inline fast path. */
static struct butler__lane_cache *
cache_find(const struct butler__router *r)
{
	for (unsigned i = 0; i < CACHE_WAYS; i++)
		if (tls.way[i].router == r && tls.way[i].serial == r->serial) {
			if (i > 0) {
				struct butler__lane_cache hit = tls.way[i];

				memmove(
				    &tls.way[1], &tls.way[0], i * sizeof hit);
				tls.way[0] = hit;
			}
			return &tls.way[0];
		}
	return NULL;
}

/* Adds an entry for r at way 0, evicting the least recently used. */
static struct butler__lane_cache *
cache_add(const struct butler__router *r)
{
	struct butler__lane_cache *c = &tls.way[0];

	cache_drop(&tls.way[CACHE_WAYS - 1]);
	memmove(&tls.way[1], &tls.way[0], (CACHE_WAYS - 1) * sizeof *c);
	memset(c, 0, sizeof *c);
	c->lanes = butler__calloc(r->n_inboxes, sizeof *c->lanes);
	c->direct = butler__calloc(r->n_routes, sizeof *c->direct);
	c->rr = butler__calloc(r->n_routes, sizeof *c->rr);
	if (c->lanes == NULL || c->direct == NULL || c->rr == NULL) {
		cache_drop(c);
		return NULL;
	}
	/* Each thread starts its round-robin at the next instance, so that
	 * many threads sending one message each spread over a pool instead
	 * of all starting at instance 0. */
	{
		static atomic_uint rr_seed;
		unsigned seed = atomic_fetch_add_explicit(
		    &rr_seed, 1, memory_order_relaxed);

		for (unsigned i = 0; i < r->n_routes; i++)
			c->rr[i] = seed;
	}
	c->router = r;
	c->serial = r->serial;
	return c;
}

static struct butler__lane_cache *
cache_get(const struct butler__router *r)
{
	struct butler__lane_cache *c = cache_find(r);

	if (c == NULL && sender_self() != NULL)
		c = cache_add(r);
	return c;
}

struct butler__lane *
butler__lane_for(const struct butler__router *r, unsigned index)
{
	struct butler__lane_cache *c = cache_get(r);
	struct butler__lane *lane;

	if (c == NULL)
		return NULL;
	if ((lane = c->lanes[index]) != NULL)
		return lane;
	lane = butler__channel_lane(r->inbox[index], tls.me);
	c->lanes[index] = lane;
	return lane;
}

/* rr_next returns this thread's next round-robin start for server. */
static unsigned
rr_next(const struct butler__router *r, unsigned server)
{
	struct butler__lane_cache *c = cache_get(r);

	return c != NULL ? c->rr[server]++ : 0;
}

void
butler__send_forget(const struct butler__router *r)
{
	struct butler__lane_cache *c = cache_find(r);

	if (c != NULL) {
		cache_drop(c);
		/* Keep the used ways first: way 0 is the fast path. */
		memmove(
		    &tls.way[0], &tls.way[1], (CACHE_WAYS - 1) * sizeof *c);
		memset(&tls.way[CACHE_WAYS - 1], 0, sizeof *c);
	}
	for (unsigned i = 0; i < CACHE_WAYS; i++)
		if (tls.way[i].router != NULL)
			return;
	/* Nothing cached and no lane refers to our sender: free it, so a
	 * program's main thread ends with nothing allocated. */
	if (tls.me != NULL && butler__sender_refs(tls.me) == 1) {
		(void)pthread_setspecific(exit_key, NULL);
		butler__sender_unref(tls.me);
		tls.me = NULL;
	}
}

/* ---- pushing a record ------------------------------------------------- */

/*
 * published_late is for a record published without the stop group's lock
 * (the reserve saw the hub OPEN) when the hub has begun to stop since.
 * CLOSING: the target may have reported quiet before the record landed, so
 * it counts busy again (tests/model: bug-stop-quiet-straggler). CLOSED: the
 * consumer may have looked for the last time, so a thread outside the hub
 * waits for it to retire and destroys the record itself. A thread inside
 * the hub must not wait: the target may be waiting for it the same way, or
 * be itself (bug-stop-straggle-mutual, -self); its thread is joined before
 * the hub's sweep, which destroys the record.
 */
static __attribute__((noinline, cold)) void
published_late(
    const struct butler__router *r, struct butler__channel *ch, int open)
{
	if (open == BUTLER__CLOSING)
		butler__channel_mark_busy(ch);
	else if (tls.inside != r)
		butler__channel_straggle(ch);
}

/*
 * push copies one record into inbox `index` through the calling thread's
 * lane. Inline: it is the whole fast path of a send.
 */
static inline __attribute__((always_inline)) int
push(const struct butler__router *r, unsigned index, unsigned kind,
    unsigned rec_flags, void *ptr, const void *msg, size_t size,
    unsigned flags, int timeout_ms)
{
	size_t header = butler__rec_header(rec_flags);
	size_t rec_size = butler__rec_round(header + size);
	struct butler__lane_cache *c = &tls.way[0];
	struct butler__channel *ch = r->inbox[index];
	struct butler__lane *lane;
	struct butler__rec *rec;
	bool gated = false;
	int err;

	if (c->router != r || c->serial != r->serial
	    || (lane = c->lanes[index]) == NULL) {
		lane = butler__lane_for(r, index);
		if (lane == NULL)
			return BUTLER_ENOMEM;
	}
	if (tls.inside == r) {
		flags |= BUTLER__PUSH_INSIDE;
		/* Waiting for room in our own inbox would wait forever. */
		if (tls.own == ch)
			flags &= ~(unsigned)BUTLER__PUSH_BLOCK;
	}
	rec = butler__channel_reserve(
	    ch, lane, rec_size, flags, timeout_ms, &err, &gated);
	if (rec == NULL)
		return err;
	if (lane->credited) {
		lane->credited = false;
		rec_flags |= BUTLER__REC_CREDIT;
	}
	butler__rec_write(
	    rec, (uint32_t)rec_size, kind, rec_flags, header, msg, size);
	if (rec_flags & BUTLER__REC_WITH_PTR)
		((struct butler__rec_ticket *)(void *)(rec + 1))->ptr = ptr;
	if (rec_flags & BUTLER__REC_STAMPED)
		*butler__rec_stamp(rec) = butler__now_ns();
	butler__channel_commit(ch, lane, rec_size);
	if (rec_flags & (BUTLER__REC_PROGRESS | BUTLER__REC_TIMER))
		butler__lane_count_aux(lane);
	else if (lane->kind_sent != NULL && kind <= ch->n_kinds)
		atomic_store_explicit(&lane->kind_sent[kind],
		    atomic_load_explicit(
		        &lane->kind_sent[kind], memory_order_relaxed)
		        + 1,
		    memory_order_relaxed);
	if (gated) {
		butler__channel_gate_leave(ch);
	} else {
		int open = atomic_load(&ch->group->open);

		if (__builtin_expect(open != BUTLER__OPEN, 0))
			published_late(r, ch, open);
	}
	return BUTLER_OK;
}

int
butler__push(const struct butler__router *r, unsigned index, unsigned kind,
    unsigned rec_flags, void *ptr, const void *msg, size_t size,
    unsigned flags, int timeout_ms)
{
	return push(
	    r, index, kind, rec_flags, ptr, msg, size, flags, timeout_ms);
}

/* key_hash returns a well-mixed hash of the routing key of msg. */
static uint64_t
key_hash(const butler_key_desc *k, const void *msg)
{
	const unsigned char *p = (const unsigned char *)msg + k->offset;
	uint64_t h = 0;

	switch (k->size) {
	case 1:
		h = *p;
		break;
	case 2: {
		uint16_t v;

		memcpy(&v, p, sizeof v);
		h = v;
		break;
	}
	case 4: {
		uint32_t v;

		memcpy(&v, p, sizeof v);
		h = v;
		break;
	}
	case 8:
		memcpy(&h, p, sizeof h);
		break;
	default: {
		const char *s;

		/* FNV-1a over the string: equal strings, equal instance. */
		memcpy(&s, p, sizeof s);
		h = 0xcbf29ce484222325u;
		for (; s != NULL && *s != '\0'; s++)
			h = (h ^ (unsigned char)*s) * 0x100000001b3u;
		break;
	}
	}
	/* splitmix64's finalizer: consecutive keys spread over instances. */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9u;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebu;
	return h ^ (h >> 31);
}

/*
 * least_loaded returns the pool instance whose consumer last said it had
 * the least queued (its `load`, published once per pass over its inbox and
 * cleared when it goes idle), starting the search at the round-robin
 * cursor so that equal loads are still spread.
 */
static unsigned
least_loaded(const struct butler__router *r, const struct butler__route *rt,
    unsigned rr)
{
	unsigned best = rr % rt->n, i;
	uint64_t best_load = UINT64_MAX;

	for (i = 0; i < rt->n; i++) {
		unsigned at = (rr + i) % rt->n;
		uint64_t load = atomic_load_explicit(
		    &r->inbox[rt->first + at]->load, memory_order_relaxed);

		if (load < best_load) {
			best_load = load;
			best = at;
			if (load == 0)
				break;
		}
	}
	return best;
}

int
butler__send_published(const struct butler__router *r,
    struct butler__channel *ch, struct butler__lane *lane)
{
	int open;

	if (atomic_load(&lane->scheduled) == 0)
		butler__channel_announce(ch, lane);
	open = atomic_load(&ch->group->open);
	if (open != BUTLER__OPEN)
		published_late(r, ch, open);
	return BUTLER_OK;
}

int
butler__send_message(const struct butler__router *r, unsigned server,
    unsigned kind, const void *msg, size_t size, int timeout_ms)
{
	return butler__send(r, server, kind, 0, NULL, msg, size, timeout_ms);
}

/* Counts a refusal of kind at inbox ch; with drop_newest (the server's
 * policy in force) the message is taken and destroyed instead. */
static int
refused(struct butler__channel *ch, const struct butler__route *rt,
    unsigned kind, bool policy, const void *msg, unsigned rec_flags, void *ptr,
    int rv)
{
	if (rv != BUTLER_EFULL && rv != BUTLER_ETIMEDOUT
	    && rv != BUTLER_EDROPPED)
		return rv;
	if (rv != BUTLER_EDROPPED
	    && (!policy
	        || rt->kind_policy[kind].full != BUTLER_FULL_DROP_NEWEST)) {
		if (ch->kinds != NULL)
			butler__kind_add(&ch->kinds[kind].rejected, 1);
		return rv;
	}
	if (rt->kind_msg[kind]->destroy != NULL && rt->kind_size[kind] > 0)
		rt->kind_msg[kind]->destroy((void *)(uintptr_t)msg);
	if (rec_flags & BUTLER__REC_BOUND) {
		butler_binding *b = ptr;

		b->release(b);
	}
	butler__kind_add(&ch->newest_dropped, 1);
	if (ch->kinds != NULL) {
		butler__kind_add(&ch->kinds[kind].dropped, 1);
		if (ch->metrics)
			butler__kind_add(&ch->kinds[kind].sent, 1);
	}
	return BUTLER_EDROPPED;
}

/*
 * queue_send is a send of a drop_oldest or keep_last kind: into the policy
 * queue of one instance (pqueue.h). In a pool a keep_last kind always goes
 * to the same instance (its key's, when the pool routes by key), so that
 * one latest message waits, not one per instance.
 */
static int
queue_send(const struct butler__router *r, const struct butler__route *rt,
    unsigned server, unsigned kind, unsigned rec_flags, void *ptr,
    const void *msg, size_t size)
{
	bool keep_last = rt->kind_policy[kind].full == BUTLER_FULL_KEEP_LAST;
	unsigned pick = 0, flags = 0;
	struct butler__pq_entry *out;
	struct butler__channel *ch;
	int rv;

	if (rt->n > 1) {
		if (rt->policy == BUTLER_ROUTE_KEY && rt->kinds != NULL)
			pick = (unsigned)(key_hash(
			                      &rt->kinds[kind - 1].key, msg)
			    % rt->n);
		else
			pick = keep_last ? (kind - 1) % rt->n
			                 : rr_next(r, server) % rt->n;
	}
	ch = r->inbox[rt->first + pick];
	if (tls.inside == r)
		flags |= BUTLER__PUSH_INSIDE;
	rv = butler__channel_pq_push(
	    ch, kind, rec_flags, ptr, msg, size, flags, keep_last, &out);
	if (rv == BUTLER_EDROPPED)
		return refused(ch, rt, kind, true, msg, rec_flags, ptr, rv);
	if (out != NULL) {
		/* The one that left is destroyed here, on the sending thread,
		 * outside the queue's lock. */
		ch->discard(ch->discard_ctx, butler__pq_rec(out),
		    keep_last ? BUTLER__DISCARD_REPLACED
		              : BUTLER__DISCARD_EVICTED);
		butler__pqueue_recycle(ch->pq, out);
	}
	return rv;
}

int
butler__send(const struct butler__router *r, unsigned server, unsigned kind,
    unsigned rec_flags, void *ptr, const void *msg, size_t size,
    int timeout_ms)
{
	const struct butler__route *rt;
	unsigned flags = BUTLER__PUSH_ROOM, pick, i;
	bool policy = timeout_ms == BUTLER__SERVER_POLICY;
	int rv = BUTLER_EINVAL;

	if (server >= r->n_routes)
		return BUTLER_EINVAL;
	rt = &r->route[server];
	if (kind == 0 || kind > rt->n_kinds || size != rt->kind_size[kind]
	    || (msg == NULL && size > 0))
		return BUTLER_EINVAL;
	if (rt->metrics)
		rec_flags |= BUTLER__REC_STAMPED;
	if (rt->fast_size[kind] == SIZE_MAX && rt->policy_queue
	    && (rt->kind_policy[kind].full == BUTLER_FULL_DROP_OLDEST
	        || rt->kind_policy[kind].full == BUTLER_FULL_KEEP_LAST))
		return queue_send(
		    r, rt, server, kind, rec_flags, ptr, msg, size);
	if (policy) {
		if (rt->kind_policy[kind].full == BUTLER_FULL_BLOCK)
			flags |= BUTLER__PUSH_BLOCK;
		timeout_ms = rt->kind_policy[kind].block_ms;
	} else {
		flags |= BUTLER__PUSH_BLOCK;
	}
	if (rt->n == 1) {
		rv = push(r, rt->first, kind, rec_flags, ptr, msg, size, flags,
		    timeout_ms);
		/* The lane exists now: the next send takes the fast path. */
		if (tls.way[0].router == r && tls.way[0].serial == r->serial)
			tls.way[0].direct[server]
			    = tls.way[0].lanes[rt->first];
		return rv == BUTLER_OK ? rv
		                       : refused(r->inbox[rt->first], rt, kind,
		                           policy, msg, rec_flags, ptr, rv);
	}
	if (rt->policy == BUTLER_ROUTE_KEY && rt->kinds != NULL) {
		/* One key, one instance: its messages stay in order, so a
		 * full instance is not skipped. */
		pick = (unsigned)(key_hash(&rt->kinds[kind - 1].key, msg)
		    % rt->n);
		rv = push(r, rt->first + pick, kind, rec_flags, ptr, msg, size,
		    flags, timeout_ms);
		return rv == BUTLER_OK
		    ? rv
		    : refused(r->inbox[rt->first + pick], rt, kind, policy,
		        msg, rec_flags, ptr, rv);
	}
	pick = rt->policy == BUTLER_ROUTE_LEAST_LOADED
	    ? least_loaded(r, rt, rr_next(r, server))
	    : rr_next(r, server) % rt->n;
	for (i = 0; i < rt->n; i++) {
		rv = push(r, rt->first + (pick + i) % rt->n, kind, rec_flags,
		    ptr, msg, size, BUTLER__PUSH_ROOM, 0);
		if (rv != BUTLER_EFULL)
			return rv;
	}
	if (flags & BUTLER__PUSH_BLOCK)
		rv = push(r, rt->first + pick, kind, rec_flags, ptr, msg, size,
		    flags, timeout_ms);
	return rv == BUTLER_OK ? rv
	                       : refused(r->inbox[rt->first + pick], rt, kind,
	                           policy, msg, rec_flags, ptr, rv);
}
