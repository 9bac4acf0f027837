/* SPDX-License-Identifier: MIT */
/*
 * butler/send.h — how a message reaches an inbox: the routes of a hub (per
 * server: its instances' inboxes, the size of each kind, the full policy),
 * each thread's cache of its lanes, and the push of one record. Built on
 * channel.h; knows nothing of requests or server threads.
 */
#ifndef BUTLER_INTERNAL_SEND_H
#define BUTLER_INTERNAL_SEND_H

#include "channel.h"

/* How to reach one server of a hub: what a send needs, in one place. */
/* What a send to a full inbox does, per kind (the spec's, resolved). */
struct butler__kind_policy {
	butler_full full;
	int block_ms;
};

struct butler__route {
	unsigned first;          /* hub-wide index of instance 0 */
	unsigned n;              /* instances */
	unsigned n_kinds;        /* kinds it accepts, 1..n_kinds */
	const size_t *kind_size; /* [kind] */
	/* [kind]: the size again where butler__send_fast() may take the
	 * kind, SIZE_MAX where it must not (a policy queue kind, metrics). */
	size_t *fast_size;
	const struct butler__kind_policy *kind_policy; /* [kind] */
	bool policy_queue; /* some kind is drop_oldest or keep_last */
	bool metrics;      /* senders stamp and count per kind */
	const butler_msg_desc *const *kind_msg; /* [kind] */
	const butler_spec *spec;                /* the spec it comes from */
	const butler_server_desc *desc;
	bool block; /* full policy BLOCK */
	int block_ms;
	butler_route policy;           /* for a pool */
	const butler_kind_desc *kinds; /* [kind - 1]: keys, or NULL */
};

/*
 * butler__route_set_fast decides which kinds of r the inline fast path may
 * send, given whether r's server keeps metrics. Before any send.
 */
static inline void
butler__route_set_fast(struct butler__route *r, bool metrics)
{
	r->metrics = metrics;
	for (unsigned k = 1; k <= r->n_kinds; k++) {
		butler_full f = r->kind_policy[k].full;

		r->fast_size[k] = metrics || f == BUTLER_FULL_DROP_OLDEST
		        || f == BUTLER_FULL_KEEP_LAST
		    ? SIZE_MAX
		    : r->kind_size[k];
	}
}

/*
 * A router is the part of a hub that senders read: it is built once, before
 * any send, and read-only afterwards. `serial` tells a new hub from a freed
 * one at the same address in the per-thread lane caches.
 */
struct butler__router {
	uint64_t serial;
	unsigned n_routes;
	const struct butler__route *route; /* [server] */
	unsigned n_inboxes;
	struct butler__channel *const *inbox; /* [instance] */
};

/*
 * butler__router_serial returns a number no other router of the process has
 * had (a relaxed atomic counter).
 */
uint64_t butler__router_serial(void);

/*
 * Each thread caches, per router it sends through, its lanes indexed by
 * instance and a round-robin cursor per server. way[0] is the most recently
 * used router, checked inline on every send.
 */
#define BUTLER__CACHE_WAYS 4

struct butler__lane_cache {
	const struct butler__router *router;
	uint64_t serial;
	struct butler__lane **lanes;  /* [n_inboxes] */
	struct butler__lane **direct; /* [n_routes]: the lane of a server of
	                                 one instance, once known */
	unsigned *rr;                 /* [n_routes] */
};

/*
 * What send.c keeps per thread: its sender identity, its lane caches, and
 * which router it is "inside" (the thread runs one of that hub's servers:
 * a threaded server's thread, or an external server's owner during a
 * drain) and which inbox it consumes. server.c sets the last two.
 */
struct butler__thread_state {
	struct butler__sender *me;
	const struct butler__router *inside;
	const struct butler__channel *own;
	struct butler__lane_cache way[BUTLER__CACHE_WAYS];
};

extern _Thread_local struct butler__thread_state butler__tls BUTLER__TLS;

/* butler__send_set_inside records what the calling thread runs. */
static inline void
butler__send_set_inside(
    const struct butler__router *r, const struct butler__channel *own)
{
	butler__tls.inside = r;
	butler__tls.own = own;
}

/* butler__lane_for returns the calling thread's lane into inbox `index` of
 * router r, creating what is missing; NULL when out of memory. */
struct butler__lane *butler__lane_for(
    const struct butler__router *r, unsigned index);

/* butler__send_forget drops the calling thread's cached lanes of r and,
 * when it caches nothing any more, its sender. */
void butler__send_forget(const struct butler__router *r);

/*
 * butler__push copies one record (kind, butler__rec_flags, optional ticket or
 * timer header, `size` bytes of msg) into inbox `index` of router r through
 * the calling thread's lane. `flags` are butler__push_flags; INSIDE is added
 * when the calling thread runs a server of r's hub, and BLOCK is dropped
 * for the thread's own inbox (it would wait for itself). Returns BUTLER_OK
 * or the code of channel.h's butler__channel_reserve().
 */
int butler__push(const struct butler__router *r, unsigned index, unsigned kind,
    unsigned rec_flags, void *ptr, const void *msg, size_t size,
    unsigned flags, int timeout_ms);

/*
 * butler__send_published finishes a send whose record is published: it
 * tells an idle consumer (butler__channel_announce()) and, if the hub began
 * to stop meanwhile, does what that needs (send.c: published_late()).
 * Returns BUTLER_OK.
 */
int butler__send_published(const struct butler__router *r,
    struct butler__channel *ch, struct butler__lane *lane);

/* What butler__send_fast() returns when the common case does not apply. */
#define BUTLER__SEND_SLOW (-1)

/*
 * butler__send_fast is the common case of a send, inline: a plain message
 * to a server of one instance, through a lane the calling thread has
 * cached, into an open inbox with room, in the lane's current segment.
 * Then it copies and publishes and returns BUTLER_OK; otherwise it does
 * nothing and returns BUTLER__SEND_SLOW, and butler__send() does the rest.
 */
static inline __attribute__((always_inline)) int
butler__send_fast(const struct butler__router *r, unsigned server,
    unsigned kind, const void *msg, size_t size)
{
	const struct butler__lane_cache *c = &butler__tls.way[0];
	const struct butler__route *rt;
	struct butler__channel *ch;
	struct butler__lane *lane;
	struct butler__segment *seg;
	size_t rec_size;

	if (__builtin_expect(c->router != r || c->serial != r->serial
	            || server >= r->n_routes,
	        0))
		return BUTLER__SEND_SLOW;
	lane = c->direct[server];
	rt = &r->route[server];
	if (__builtin_expect(lane == NULL || kind - 1u >= rt->n_kinds
	            || rt->fast_size[kind] != size,
	        0))
		return BUTLER__SEND_SLOW;
	ch = lane->inbox;
	rec_size = butler__rec_round(sizeof(struct butler__rec) + size);
	if (__builtin_expect(
	        atomic_load_explicit(&ch->group->open, memory_order_relaxed)
	                != BUTLER__OPEN
	            || lane->tail_local - lane->head_cache >= lane->fast_cap,
	        0))
		return BUTLER__SEND_SLOW;
	seg = lane->wseg;
	/* Sizes the word copy does not take go the slow way, so that this
	 * path calls nothing but, rarely, a tail. */
	if (__builtin_expect(seg->cap - lane->woff < rec_size || size > 64
	            || (size & 7) != 0,
	        0))
		return BUTLER__SEND_SLOW;
	butler__rec_write(
	    (struct butler__rec *)(void *)(seg->data + lane->woff),
	    (uint32_t)rec_size, kind, 0, sizeof(struct butler__rec), msg,
	    size);
	butler__lane_publish(lane, rec_size);
	if (__builtin_expect(
	        atomic_load_explicit(&lane->scheduled, memory_order_relaxed)
	                == 0
	            || atomic_load_explicit(
	                   &ch->group->open, memory_order_relaxed)
	                != BUTLER__OPEN,
	        0))
		return butler__send_published(r, ch, lane);
	return BUTLER_OK;
}

/* butler__send_message is butler__send() of a plain message. */
int butler__send_message(const struct butler__router *r, unsigned server,
    unsigned kind, const void *msg, size_t size, int timeout_ms);

/* butler__send_timeout's timeout_ms meaning "as the server's policy says". */
#define BUTLER__SERVER_POLICY (-2)

/*
 * butler__send routes one record to server `server` of router r, choosing
 * the pool instance: round-robin from a per-thread cursor, skipping full
 * instances, applying the full policy (or waiting up to timeout_ms, -1: no
 * limit, when it is not BUTLER__SERVER_POLICY) only when every instance is
 * full. Checks the server, kind and size (BUTLER_EINVAL). Any thread.
 */
int butler__send(const struct butler__router *r, unsigned server,
    unsigned kind, unsigned rec_flags, void *ptr, const void *msg, size_t size,
    int timeout_ms);

#endif /* BUTLER_INTERNAL_SEND_H */
