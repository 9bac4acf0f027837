/* SPDX-License-Identifier: MIT */
/*
 * servers/bridge/expose.c — the side that exposes servers: the bridge
 * server (servers/bridge/bridge.json, server `bridge`).
 *
 * Link I/O lends the bridge server each accepted link's read buffer, whole
 * frames only, as one `frames` message (so one read is one record in its
 * inbox, and the next read starts when the buffer comes back). On its own
 * thread it delivers them:
 *
 * - SEND: decoded into a scratch struct and sent with
 *   butler_send_timeout(..., 0): the hub copies it, and takes its owned
 *   fields; the bridge never blocks on a full inbox.
 * - CALL: decoded and called with butler_call() (butler_call_progress()
 *   when the request has progress), with the time its caller still waits
 *   as the timeout; the answer comes back to this thread as the reply
 *   thunk, and goes out as REPLY, FAIL or PROGRESS. Calls are
 *   asynchronous, so one slow request holds neither the thread nor the
 *   link.
 * - CANCEL: butler_cancel() of that call (its handler sees
 *   butler_cancelled()); a call still waiting for room is dropped.
 *
 * A target whose inbox is full (BUTLER_EFULL) keeps its frames, in order,
 * in a pending list, retried from a timer (on the next loop turn while
 * retries get something in, then from 1 ms doubling to 8 ms) and before
 * the link's next batch, so the frames of other servers on the link go
 * on.
 * Each delivered frame is credited back to the peer (CREDIT, at the end
 * of a batch), so what waits here is bounded by the window the peer
 * was given, per link and server. (The runtime tells a sender nothing
 * when room appears; a hook for that would replace the timer.)
 *
 * While the hub stops, the inbox refuses the batches (senders from
 * outside the hub get BUTLER_ECLOSED from the first step), and link I/O
 * answers them itself (butler__expose_refuse()): calls fail with
 * BUTLER_ECLOSED, messages are dropped. What was accepted before is
 * finished, as the stop's DRAIN promises.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

/* Retry delays for a full inbox, in microseconds: the next loop turn
 * while the last retry got something in, then doubling from 1 ms (the
 * loop's timer granularity) to 8 ms while nothing goes in. */
#define RETRY_MIN_US 1000u
#define RETRY_MAX_US 8000u

enum { DELIVERED, FULL };

/* ---- calls by the peer's id --------------------------------------------- */

static size_t
chash(uint64_t id, size_t n)
{
	return (size_t)((id * 0x9e3779b97f4a7c15u) >> 20) & (n - 1);
}

static struct butler__call *
calls_get(struct butler__calltab *t, uint64_t id)
{
	if (t->n_buckets == 0)
		return NULL;
	for (struct butler__call *c = t->bucket[chash(id, t->n_buckets)]; c;
	     c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

static int
calls_put(struct butler__calltab *t, struct butler__call *c)
{
	size_t i;

	if (t->count + 1 > t->n_buckets) {
		size_t n = t->n_buckets ? t->n_buckets * 2 : 64;
		struct butler__call **b = calloc(n, sizeof *b);

		if (b == NULL)
			return BUTLER_ENOMEM;
		for (i = 0; i < t->n_buckets; i++)
			while (t->bucket[i] != NULL) {
				struct butler__call *x = t->bucket[i];
				size_t j = chash(x->id, n);

				t->bucket[i] = x->next;
				x->next = b[j];
				b[j] = x;
			}
		free(t->bucket);
		t->bucket = b;
		t->n_buckets = n;
	}
	i = chash(c->id, t->n_buckets);
	c->next = t->bucket[i];
	t->bucket[i] = c;
	c->in_table = true;
	t->count++;
	return BUTLER_OK;
}

static void
calls_del(struct butler__calltab *t, struct butler__call *c)
{
	if (!c->in_table)
		return;
	for (struct butler__call **p = &t->bucket[chash(c->id, t->n_buckets)];
	     *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			c->in_table = false;
			t->count--;
			return;
		}
}

/* ---- answers ------------------------------------------------------------ */

static const butler_msg_desc *
request_of(const struct butler__link *l, uint16_t target, uint16_t kind)
{
	const struct butler__exposed *x = l->lt[target].x;
	const butler_server_desc *sd = &x->spec->servers[x->spec_server];

	return &x->spec->messages[sd->accepts[kind - 1]];
}

static void
end_call(struct butler__call *c)
{
	struct butler__link *l = c->link;

	calls_del(&l->calls, c);
	free(c);
	butler__link_unref(l);
}

static void
reply_thunk(
    butler_server *self, int status, void *reply, void (*cb)(void), void *user)
{
	struct butler__call *c = user;
	const butler_spec *sp = c->link->lt[c->target].x->spec;

	(void)self;
	(void)cb;
	if (!c->ending)
		(void)butler__link_answer(c->link, c->gen,
		    status == BUTLER_OK ? BUTLER__F_REPLY : BUTLER__F_FAIL,
		    c->id,
		    status == BUTLER_OK ? &sp->messages[c->request->reply]
		                        : NULL,
		    reply, status);
	end_call(c);
}

static void
progress_thunk(
    butler_server *self, void *progress, void (*cb)(void), void *user)
{
	struct butler__call *c = user;
	const butler_spec *sp = c->link->lt[c->target].x->spec;

	(void)self;
	(void)cb;
	if (!c->ending)
		(void)butler__link_answer(c->link, c->gen, BUTLER__F_PROGRESS,
		    c->id, &sp->messages[c->request->progress], progress, 0);
}

/* ---- delivering --------------------------------------------------------- */

/*
 * deliver hands one SEND or CALL frame to its server: DELIVERED (also when
 * it failed for good: the peer is told, the credit given back) or FULL.
 */
static int
deliver(struct butler_bridge *br, struct butler__link *l, uint32_t gen,
    const struct butler__frame *f, uint64_t since_ns)
{
	const struct butler__exposed *x = l->lt[f->target].x;
	const butler_msg_desc *m = request_of(l, f->target, f->kind);
	struct butler__call *c;
	int64_t left = -1;
	int rv;

	rv = m->decode(br->scratch, f->body, f->body_len, NULL);
	if (rv != BUTLER_OK) {
		butler__link_fail(l, true, "undecodable '%s': %s", m->name,
		    butler_strerror(rv));
		return DELIVERED;
	}
	if (f->type == BUTLER__F_SEND) {
		rv = butler_send_timeout(
		    br->hub, x->server, f->kind, br->scratch, m->size, 0);
		if (rv == BUTLER_EFULL || rv == BUTLER_ETIMEDOUT) {
			if (m->destroy != NULL)
				m->destroy(br->scratch);
			butler__br_count(br, full_retries, 1);
			return FULL;
		}
		if (rv != BUTLER_OK) {
			if (m->destroy != NULL)
				m->destroy(br->scratch);
			butler__br_count(br, dropped, 1);
			butler__br_log(br, BUTLER_LOG_DEBUG,
			    "bridge: '%s' from %s to '%s' dropped: %s",
			    m->name, l->url, x->name, butler_strerror(rv));
		}
		butler__link_release(l, f->target, f->size);
		return DELIVERED;
	}

	/* A call: the time its caller still waits, less the time here. */
	if (f->value >= 0) {
		uint64_t waited = (butler__br_now_ns() - since_ns) / 1000000u;

		left = (int64_t)f->value - (int64_t)waited;
		if (left <= 0) {
			rv = BUTLER_ETIMEDOUT;
			goto refused;
		}
	}
	if (calls_get(&l->calls, f->id) != NULL) {
		if (m->destroy != NULL)
			m->destroy(br->scratch);
		butler__link_fail(l, true, "request id used twice");
		return DELIVERED;
	}
	c = calloc(1, sizeof *c);
	if (c == NULL) {
		rv = BUTLER_ENOMEM;
		goto refused;
	}
	c->link = l;
	c->id = f->id;
	c->request = m;
	c->gen = gen;
	c->target = f->target;
	rv = m->progress >= 0
	    ? butler_call_progress(br->hub, x->server, f->kind, br->scratch,
	        m->size, (int)left, reply_thunk, NULL, progress_thunk, NULL, c,
	        &c->call)
	    : butler_call(br->hub, x->server, f->kind, br->scratch, m->size,
	        (int)left, reply_thunk, NULL, c, &c->call);
	if (rv == BUTLER_OK) {
		butler__link_ref(l);
		if (calls_put(&l->calls, c) != BUTLER_OK) {
			/* Cannot be cancelled by the peer; it still ends. */
			c->in_table = false;
		}
		butler__link_release(l, f->target, f->size);
		return DELIVERED;
	}
	free(c);
	if (rv == BUTLER_EFULL) {
		if (m->destroy != NULL)
			m->destroy(br->scratch);
		butler__br_count(br, full_retries, 1);
		return FULL;
	}
refused:
	if (m->destroy != NULL)
		m->destroy(br->scratch);
	(void)butler__link_answer(
	    l, gen, BUTLER__F_FAIL, f->id, NULL, NULL, rv);
	butler__link_release(l, f->target, f->size);
	return DELIVERED;
}

/* Keeps frame f (of link l) until its server has room. */
static void
keep(struct butler_bridge *br, struct butler__link *l, uint32_t gen,
    const struct butler__frame *f, const unsigned char *raw, uint64_t since)
{
	struct butler__ltarget *t = &l->lt[f->target];
	struct butler__pending *p = malloc(sizeof *p + f->size);
	struct timeval tv = { 0, 0 };

	if (p == NULL) {
		/* Out of memory: the peer hears of it as for a full hub. */
		if (f->type == BUTLER__F_CALL)
			(void)butler__link_answer(l, gen, BUTLER__F_FAIL,
			    f->id, NULL, NULL, BUTLER_ENOMEM);
		else
			butler__br_count(br, dropped, 1);
		butler__link_release(l, f->target, f->size);
		return;
	}
	p->next = NULL;
	p->since_ns = since;
	p->len = f->size;
	memcpy(p->frame, raw, f->size);
	if (t->tail != NULL)
		t->tail->next = p;
	else
		t->head = p;
	t->tail = p;
	if (!l->pend_listed) {
		l->pend_listed = true;
		butler__link_ref(l);
		l->pend_next = br->pend;
		br->pend = l;
	}
	if (br->retry_ev != NULL && !evtimer_pending(br->retry_ev, NULL)) {
		br->retry_us = 0;
		evtimer_add(br->retry_ev, &tv);
	}
}

/* Cancels the peer's request id: running, or still pending. */
static void
cancel(struct butler_bridge *br, struct butler__link *l, uint64_t id)
{
	struct butler__call *c = calls_get(&l->calls, id);

	if (c != NULL) {
		c->ending = true;
		/* The reply thunk runs now, with BUTLER_ECANCELED. */
		(void)butler_cancel(br->hub, c->call);
		return;
	}
	for (unsigned t = 0; t < l->n_targets; t++) {
		struct butler__ltarget *lt = &l->lt[t];

		for (struct butler__pending **pp = &lt->head, *prev = NULL;
		     *pp; prev = *pp, pp = &(*pp)->next) {
			struct butler__pending *p = *pp;
			struct butler__frame f;
			const char *why;

			if (butler__frame_next(
			        p->frame, p->len, SIZE_MAX, &f, &why)
			        != BUTLER__PARSE_FRAME
			    || f.type != BUTLER__F_CALL || f.id != id)
				continue;
			*pp = p->next;
			if (lt->tail == p)
				lt->tail = prev;
			butler__link_release(l, (uint16_t)t, p->len);
			free(p);
			return;
		}
	}
}

/* What a lost link had here ends: its calls are cancelled (their
 * handlers see butler_cancelled()), its pending frames dropped. */
static void
down(struct butler_bridge *br, struct butler__link *l)
{
	struct butler__calltab *t = &l->calls;
	struct butler__call **all;
	size_t n = 0;

	if (t->count > 0 && (all = malloc(t->count * sizeof *all)) != NULL) {
		for (size_t i = 0; i < t->n_buckets; i++)
			for (struct butler__call *c = t->bucket[i]; c;
			     c = c->next)
				all[n++] = c;
		for (size_t i = 0; i < n; i++) {
			all[i]->ending = true;
			(void)butler_cancel(br->hub, all[i]->call);
		}
		free(all);
	}
	for (unsigned i = 0; i < l->n_targets; i++) {
		struct butler__ltarget *lt = &l->lt[i];

		while (lt->head != NULL) {
			struct butler__pending *p = lt->head;

			lt->head = p->next;
			free(p);
			butler__br_count(br, dropped, 1);
		}
		lt->tail = NULL;
	}
}

/* Delivers what waits for room; true if anything went in. */
static bool
retry_link(struct butler_bridge *br, struct butler__link *l, bool *left)
{
	uint32_t gen;
	bool progress = false;

	*left = false;
	if (!butler__link_up(l, &gen))
		return false; /* its notice or batch ends it */
	for (unsigned t = 0; t < l->n_targets; t++) {
		struct butler__ltarget *lt = &l->lt[t];

		while (lt->head != NULL) {
			struct butler__pending *p = lt->head;
			struct butler__frame f;
			const char *why;

			(void)butler__frame_next(
			    p->frame, p->len, SIZE_MAX, &f, &why);
			if (deliver(br, l, gen, &f, p->since_ns) == FULL) {
				*left = true;
				break;
			}
			progress = true;
			lt->head = p->next;
			if (lt->head == NULL)
				lt->tail = NULL;
			free(p);
		}
	}
	if (progress)
		butler__link_credit(l);
	return progress;
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct butler_bridge *br = arg;
	struct butler__link **pp = &br->pend, *l;
	bool progress = false, left;

	(void)fd;
	(void)what;
	while ((l = *pp) != NULL) {
		if (retry_link(br, l, &left))
			progress = true;
		if (left) {
			pp = &l->pend_next;
			continue;
		}
		*pp = l->pend_next;
		l->pend_listed = false;
		butler__link_unref(l);
	}
	if (br->pend != NULL) {
		struct timeval tv = { 0, 0 };

		br->retry_us = progress               ? RETRY_MIN_US
		    : br->retry_us * 2 > RETRY_MAX_US ? RETRY_MAX_US
		                                      : br->retry_us * 2;
		tv.tv_usec = (suseconds_t)br->retry_us;
		evtimer_add(br->retry_ev, &tv);
	}
}

/* Unlists l from the pending links (it is going). */
static void
unlist(struct butler_bridge *br, struct butler__link *l)
{
	if (!l->pend_listed)
		return;
	for (struct butler__link **pp = &br->pend; *pp; pp = &(*pp)->pend_next)
		if (*pp == l) {
			*pp = l->pend_next;
			break;
		}
	l->pend_listed = false;
	butler__link_unref(l);
}

/* The frames of one batch, in order. */
static void
batch(struct butler_bridge *br, struct butler__link *l, size_t len)
{
	uint64_t now = butler__br_now_ns();
	size_t off = 0;
	uint32_t gen;

	if (!butler__link_up(l, &gen))
		return;
	/* What waits for room goes first (order), and may go now. */
	if (l->pend_listed) {
		bool left;

		(void)retry_link(br, l, &left);
	}
	while (off < len) {
		struct butler__frame f;
		const char *why;
		struct butler__ltarget *t;

		if (butler__frame_next(
		        l->rbuf + off, len - off, SIZE_MAX, &f, &why)
		    != BUTLER__PARSE_FRAME)
			break; /* cannot be: link I/O checked them */
		if (f.type == BUTLER__F_CANCEL) {
			cancel(br, l, f.id);
		} else if (f.type == BUTLER__F_SEND
		    || f.type == BUTLER__F_CALL) {
			t = &l->lt[f.target];
			if (t->head != NULL
			    || deliver(br, l, gen, &f, now) == FULL)
				keep(br, l, gen, &f, l->rbuf + off, now);
		}
		off += f.size;
	}
}

static int
on_frames(butler_server *self, void *user, struct bridge_frames *msg)
{
	struct butler_bridge *br = user;
	struct butler__link *l = msg->batch.data;
	size_t len = msg->batch.len;

	(void)self;
	/* The reference the message held is ours now. */
	msg->batch.free_fn = NULL;
	msg->batch.data = NULL;
	if (msg->down) {
		down(br, l);
		unlist(br, l);
		butler__link_unref(l);
		return BUTLER_OK;
	}
	batch(br, l, len);
	butler__link_credit(l);
	if (!butler__link_give_back(l, len)) {
		down(br, l);
		unlist(br, l);
	}
	butler__link_unref(l);
	return BUTLER_OK;
}

/* A batch or notice the hub destroyed unhandled (it stopped). */
static void
dropped(void *data, void *ctx)
{
	(void)ctx;
	butler__link_unref(data);
}

bool
butler__expose_deliver(struct butler__link *l, size_t len)
{
	struct bridge_frames m = { .batch
		= { .data = l, .len = len, .free_fn = dropped, .ctx = NULL } };

	butler__link_ref(l);
	if (bridge_send_bridge_frames(l->br->hub, &m) == BUTLER_OK)
		return true;
	butler__link_unref(l);
	return false;
}

bool
butler__expose_notice(struct butler__link *l)
{
	struct bridge_frames m
	    = { .batch = { .data = l, .free_fn = dropped }, .down = true };

	butler__link_ref(l);
	if (bridge_send_bridge_frames(l->br->hub, &m) == BUTLER_OK)
		return true;
	butler__link_unref(l);
	return false;
}

void
butler__expose_refuse(
    struct butler__link *l, const unsigned char *buf, size_t len)
{
	struct butler_bridge *br = l->br;
	size_t off = 0;
	uint32_t gen;

	(void)butler__link_up(l, &gen);
	while (off < len) {
		struct butler__frame f;
		const char *why;

		if (butler__frame_next(
		        buf + off, len - off, SIZE_MAX, &f, &why)
		    != BUTLER__PARSE_FRAME)
			break;
		if (f.type == BUTLER__F_CALL)
			(void)butler__link_answer(l, gen, BUTLER__F_FAIL, f.id,
			    NULL, NULL, BUTLER_ECLOSED);
		else if (f.type == BUTLER__F_SEND)
			butler__br_count(br, dropped, 1);
		if (f.type == BUTLER__F_SEND || f.type == BUTLER__F_CALL)
			butler__link_release_now(l, f.target, f.size);
		off += f.size;
	}
	butler__link_credit(l);
}

void
butler__expose_free_link(struct butler__link *l)
{
	struct butler__calltab *t = &l->calls;

	for (size_t i = 0; i < t->n_buckets; i++)
		while (t->bucket[i] != NULL) {
			struct butler__call *c = t->bucket[i];

			t->bucket[i] = c->next;
			free(c);
		}
	free(t->bucket);
	t->bucket = NULL;
	t->n_buckets = t->count = 0;
	if (l->lt == NULL)
		return;
	for (unsigned i = 0; i < l->n_targets; i++)
		while (l->lt[i].head != NULL) {
			struct butler__pending *p = l->lt[i].head;

			l->lt[i].head = p->next;
			free(p);
		}
}

/* ---- start, stop, install ----------------------------------------------- */

static int
on_start(butler_server *self, void *user)
{
	struct butler_bridge *br = user;

	br->self = self;
	br->retry_ev = evtimer_new(butler_server_base(self), on_retry, br);
	if (br->retry_ev == NULL)
		return BUTLER_ENOMEM;
	butler__br_member_start(br);
	return BUTLER_OK;
}

static void
on_stop(butler_server *self, void *user)
{
	struct butler_bridge *br = user;

	(void)self;
	event_free(br->retry_ev);
	br->retry_ev = NULL;
	/* Pending frames can no longer go in: the peer's requests among
	 * them end with the link. */
	while (br->pend != NULL) {
		struct butler__link *l = br->pend;

		br->pend = l->pend_next;
		l->pend_listed = false;
		down(br, l);
		butler__link_unref(l);
	}
	butler__br_member_stop(br);
}

int
butler__expose_install(struct butler_bridge *br)
{
	struct bridge_bridge_handlers h = {
		.on_start = on_start, .on_stop = on_stop, .frames = on_frames
	};

	if (br->bridge_server == BUTLER_NO_SERVER)
		return BUTLER_OK;
	return bridge_bridge_register(br->hub, &h, br);
}
