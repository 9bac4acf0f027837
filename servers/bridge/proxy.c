/* SPDX-License-Identifier: MIT */
/*
 * servers/bridge/proxy.c — the side that uses a remote server.
 *
 * Each instance of a remote server is, in this hub, a proxy: a generic
 * handler (butler_hub_set_raw_handler()) on the server's own thread.
 *
 * - A message is encoded into a SEND frame on the server's link, within
 *   the credit the peer grants. Without credit the handler waits, so the
 *   proxy's inbox fills and local senders get BUTLER_EFULL: the bound on
 *   what is queued for a remote server is its local capacity plus the
 *   window in flight.
 * - A request is deferred (butler_defer()) and sent in a CALL frame with
 *   an id (the proxy's slot in its low bits, so that link I/O knows whom
 *   an answer is for) and the time its caller still waits. The answer
 *   frame comes back through the proxy's queue and eventfd, on the proxy's
 *   loop, and answers the promise: reply, failure, progress.
 * - A caller that gives up (timeout, cancel) is seen by polling
 *   butler_promise_cancelled() every BUTLER__CANCEL_POLL_MS while requests
 *   are out: the promise is failed and a CANCEL frame tells the peer, whose
 *   handler then sees butler_cancelled(). (A runtime hook that tells the
 *   deferring server when a promise's caller gives up would make this a
 *   callback instead of a poll.)
 * - A link lost ends its requests with BUTLER_ECLOSED: link I/O queues a
 *   note with the lost connection's generation.
 *
 * Frames are batched without a delay: a frame to an idle link is written
 * at once, and those that come while a write is in flight go together in
 * the next one (link.c), so under load many messages share one write.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include <butler/wire.h>

/* A table slot whose request ended (so that probing goes on past it). */
#define TOMB UINT64_MAX

/* ---- the table of requests in flight ------------------------------------ */

static size_t
hash(uint64_t id, size_t cap)
{
	return (size_t)((id * 0x9e3779b97f4a7c15u) >> 17) & (cap - 1);
}

/* Makes room for one more entry; BUTLER_ENOMEM. */
static int
tab_reserve(struct butler__reqtab *t)
{
	struct butler__req *old = t->slot, *s;
	size_t cap = t->cap;

	if (cap > 0 && (t->used + 1) * 2 <= cap)
		return BUTLER_OK;
	/* Rebuilt without the ended slots, larger if need be. */
	cap = cap ? cap : 64;
	while ((t->count + 1) * 4 > cap)
		cap *= 2;
	s = calloc(cap, sizeof *s);
	if (s == NULL)
		return BUTLER_ENOMEM;
	for (size_t i = 0; i < t->cap; i++) {
		size_t j;

		if (old[i].id == 0 || old[i].id == TOMB)
			continue;
		for (j = hash(old[i].id, cap); s[j].id != 0;
		     j = (j + 1) & (cap - 1))
			;
		s[j] = old[i];
	}
	free(old);
	t->slot = s;
	t->cap = cap;
	t->used = t->count;
	return BUTLER_OK;
}

static void
tab_put(struct butler__reqtab *t, const struct butler__req *r)
{
	size_t j;

	for (j = hash(r->id, t->cap);
	     t->slot[j].id != 0 && t->slot[j].id != TOMB;
	     j = (j + 1) & (t->cap - 1))
		;
	if (t->slot[j].id == 0)
		t->used++;
	t->slot[j] = *r;
	t->count++;
}

static struct butler__req *
tab_get(struct butler__reqtab *t, uint64_t id)
{
	if (t->cap == 0 || id == 0 || id == TOMB)
		return NULL;
	for (size_t j = hash(id, t->cap), n = 0;
	     t->slot[j].id != 0 && n < t->cap; j = (j + 1) & (t->cap - 1), n++)
		if (t->slot[j].id == id)
			return &t->slot[j];
	return NULL;
}

static void
tab_del(struct butler__reqtab *t, struct butler__req *r)
{
	r->id = TOMB;
	r->promise = 0;
	r->request = NULL;
	t->count--;
}

/* ---- helpers ------------------------------------------------------------ */

static struct butler__proxy *
me(struct butler__pgroup *g, butler_server *self)
{
	return &g->inst[butler_server_instance(self)];
}

static void
signal_fd(int fd)
{
	uint64_t one = 1;
	ssize_t n;

	do
		n = write(fd, &one, sizeof one);
	while (n < 0 && errno == EINTR);
}

static void
arm_tick(struct butler__proxy *p)
{
	struct timeval tv = { 0, BUTLER__CANCEL_POLL_MS * 1000 };

	if (p->tick_ev != NULL && !p->tick_armed) {
		p->tick_armed = true;
		evtimer_add(p->tick_ev, &tv);
	}
}

/* ---- the handler -------------------------------------------------------- */

struct give_up {
	butler_server *self;
	uint64_t promise;
};

static bool
gave_up(void *arg)
{
	struct give_up *g = arg;

	return butler_promise_cancelled(g->self, g->promise);
}

static int
on_message(butler_server *self, unsigned kind, const butler_msg_desc *msg,
    void *payload, void *user)
{
	struct butler__pgroup *g = user;
	struct butler__proxy *p = me(g, self);
	struct butler_bridge *br = g->br;
	struct butler__req r = { 0 };
	struct give_up gu;
	int64_t left;
	uint32_t gen;
	int rv;

	/* Failures are counted and answered here, and the handler returns
	 * 0: the runtime would log each one, and a link that is down would
	 * flood the log with a line per message. */
	if (msg->reply < 0) {
		rv = butler__link_forward(g->link, g->target, (uint16_t)kind,
		    false, 0, 0, msg, payload, NULL, NULL, &gen);
		if (rv == BUTLER_OK)
			return BUTLER_OK;
		butler__br_count(br, dropped, 1);
		butler__br_log(br, BUTLER_LOG_DEBUG,
		    "bridge: message '%s' to '%s' not sent: %s", msg->name,
		    g->name, butler_strerror(rv));
		return BUTLER_OK;
	}
	rv = butler_defer(self, msg, &r.promise);
	if (rv != BUTLER_OK)
		return rv;
	left = butler_promise_time_left_ms(self, r.promise);
	if (left > INT32_MAX)
		left = INT32_MAX;
	rv = left == 0 ? BUTLER_ETIMEDOUT /* its caller has given up */
	               : tab_reserve(&p->tab);
	if (rv == BUTLER_OK) {
		r.id = (++p->seq << BUTLER__SLOT_BITS) | p->slot;
		r.request = msg;
		gu.self = self;
		gu.promise = r.promise;
		rv = butler__link_forward(g->link, g->target, (uint16_t)kind,
		    true, r.id, (int32_t)left, msg, payload, gave_up, &gu,
		    &gen);
	}
	if (rv != BUTLER_OK) {
		if (rv == BUTLER_ECLOSED)
			butler__br_count(br, closed, 1);
		(void)butler_fail(self, r.promise, msg, rv);
		return BUTLER_OK;
	}
	r.gen = gen;
	tab_put(&p->tab, &r);
	arm_tick(p);
	return BUTLER_OK;
}

/* ---- answers from the link ---------------------------------------------- */

bool
butler__proxy_route(struct butler_bridge *br, const unsigned char *frame,
    size_t len, uint64_t id)
{
	unsigned slot = (unsigned)(id & BUTLER__SLOT_MASK);
	struct butler__proxy *p;
	unsigned char *dst;
	bool first;

	if (slot >= br->n_slots)
		return false;
	p = br->slots[slot];
	pthread_mutex_lock(&p->qmtx);
	first = p->q.len == 0;
	dst = butler__obuf_room(&p->q, len);
	if (dst != NULL)
		memcpy(dst, frame, len);
	pthread_mutex_unlock(&p->qmtx);
	if (dst == NULL)
		return true; /* out of memory: the request times out */
	if (first)
		signal_fd(p->efd);
	return true;
}

void
butler__proxy_down(struct butler__link *l, uint32_t gen)
{
	/* A note: length 9, type 0 (no frame has it), the generation. */
	unsigned char note[13];
	butler_wire_writer w;

	butler_wire_writer_init(&w, note, sizeof note);
	butler_wire_put_u32(&w, 9);
	butler_wire_put_u8(&w, 0);
	butler_wire_put_u64(&w, gen);
	for (unsigned t = 0; t < l->n_targets; t++) {
		struct butler__pgroup *g = l->dt[t].g;

		for (unsigned i = 0; i < g->n_inst; i++) {
			struct butler__proxy *p = &g->inst[i];
			bool first;
			unsigned char *dst;

			pthread_mutex_lock(&p->qmtx);
			first = p->q.len == 0;
			dst = butler__obuf_room(&p->q, sizeof note);
			if (dst != NULL)
				memcpy(dst, note, sizeof note);
			pthread_mutex_unlock(&p->qmtx);
			if (dst != NULL && first)
				signal_fd(p->efd);
		}
	}
}

/* Ends every request that went out on connection gen. */
static void
lost(struct butler__proxy *p, uint32_t gen)
{
	struct butler_bridge *br = p->g->br;

	for (size_t i = 0; i < p->tab.cap; i++) {
		struct butler__req *r = &p->tab.slot[i];

		if (r->id == 0 || r->id == TOMB || r->gen != gen)
			continue;
		(void)butler_fail(
		    p->self, r->promise, r->request, BUTLER_ECLOSED);
		butler__br_count(br, closed, 1);
		tab_del(&p->tab, r);
	}
}

/* One answer frame for p. */
static void
answer(struct butler__proxy *p, const struct butler__frame *f)
{
	struct butler__pgroup *g = p->g;
	struct butler__req *r = tab_get(&p->tab, f->id);
	const butler_msg_desc *m;
	int rv;

	if (r == NULL)
		return; /* it ended here first (cancel, timeout, link) */
	if (f->type == BUTLER__F_FAIL) {
		/* The remote hub stopping is, seen from here, its server going
		 * away: the same end as a lost link. */
		(void)butler_fail(p->self, r->promise, r->request,
		    f->value == BUTLER_ESTOPPED ? BUTLER_ECLOSED : f->value);
		tab_del(&p->tab, r);
		return;
	}
	m = f->type == BUTLER__F_REPLY ? &g->spec->messages[r->request->reply]
	    : r->request->progress >= 0
	    ? &g->spec->messages[r->request->progress]
	    : NULL;
	if (m == NULL) {
		butler__link_fail(g->link, true,
		    "progress for '%s', which has none", r->request->name);
		return;
	}
	rv = m->decode(p->scratch, f->body, f->body_len, NULL);
	if (rv != BUTLER_OK) {
		butler__link_fail(g->link, true, "undecodable %s of '%s': %s",
		    m->name, r->request->name, butler_strerror(rv));
		(void)butler_fail(p->self, r->promise, r->request, rv);
		tab_del(&p->tab, r);
		return;
	}
	if (f->type == BUTLER__F_REPLY) {
		rv = butler_answer(
		    p->self, r->promise, r->request, p->scratch, m->size);
		tab_del(&p->tab, r);
	} else {
		rv = butler_progress_promise(
		    p->self, r->promise, r->request, p->scratch, m->size);
	}
	if (rv != BUTLER_OK && m->destroy != NULL)
		m->destroy(p->scratch);
}

static void
on_answers(evutil_socket_t fd, short what, void *arg)
{
	struct butler__proxy *p = arg;
	struct butler__obuf q;
	uint64_t n;
	size_t off = 0;

	(void)what;
	if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&p->qmtx);
	q = p->q;
	p->q = (struct butler__obuf) { 0 };
	pthread_mutex_unlock(&p->qmtx);
	while (off < q.len) {
		struct butler__frame f;
		const char *why;

		if (q.p[off + 4] == 0) {
			butler_wire_reader r;

			butler_wire_reader_init(&r, q.p + off + 5, 8);
			lost(p, (uint32_t)butler_wire_get_u64(&r));
			off += 13;
			continue;
		}
		/* Whole frames the link checked: this cannot fail. */
		if (butler__frame_next(
		        q.p + off, q.len - off, SIZE_MAX, &f, &why)
		    != BUTLER__PARSE_FRAME)
			break;
		answer(p, &f);
		off += f.size;
	}
	/* Keep the larger buffer for the next batch. */
	pthread_mutex_lock(&p->qmtx);
	if (p->q.len == 0 && q.cap > p->q.cap) {
		butler__obuf_free(&p->q);
		q.len = 0;
		p->q = q;
		q = (struct butler__obuf) { 0 };
	}
	pthread_mutex_unlock(&p->qmtx);
	butler__obuf_free(&q);
}

/* Every BUTLER__CANCEL_POLL_MS while requests are out: who gave up? */
static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct butler__proxy *p = arg;
	struct butler__link *l = p->g->link;

	(void)fd;
	(void)what;
	p->tick_armed = false;
	for (size_t i = 0; i < p->tab.cap; i++) {
		struct butler__req *r = &p->tab.slot[i];

		if (r->id == 0 || r->id == TOMB)
			continue;
		if (!butler_promise_cancelled(p->self, r->promise))
			continue;
		butler__link_cancel(l, r->gen, r->id);
		(void)butler_fail(
		    p->self, r->promise, r->request, BUTLER_ECANCELED);
		tab_del(&p->tab, r);
	}
	if (p->tab.count > 0)
		arm_tick(p);
}

/* ---- start, stop, install ----------------------------------------------- */

static int
on_start(butler_server *self, void *user)
{
	struct butler__pgroup *g = user;
	struct butler__proxy *p = me(g, self);
	struct event_base *base = butler_server_base(self);

	p->self = self;
	p->efd_ev
	    = event_new(base, p->efd, EV_READ | EV_PERSIST, on_answers, p);
	p->tick_ev = evtimer_new(base, on_tick, p);
	if (p->efd_ev == NULL || p->tick_ev == NULL
	    || event_add(p->efd_ev, NULL) != 0) {
		if (p->efd_ev != NULL)
			event_free(p->efd_ev);
		if (p->tick_ev != NULL)
			event_free(p->tick_ev);
		p->efd_ev = p->tick_ev = NULL;
		return BUTLER_ENOMEM;
	}
	p->started = true;
	butler__br_member_start(g->br);
	return BUTLER_OK;
}

static void
on_stop(butler_server *self, void *user)
{
	struct butler__pgroup *g = user;
	struct butler__proxy *p = me(g, self);

	/* The runtime has ended every promise (BUTLER_ECLOSED): tell the
	 * peer, so that its handlers stop, and forget them. */
	for (size_t i = 0; i < p->tab.cap; i++) {
		struct butler__req *r = &p->tab.slot[i];

		if (r->id != 0 && r->id != TOMB) {
			butler__link_cancel(g->link, r->gen, r->id);
			tab_del(&p->tab, r);
		}
	}
	event_free(p->efd_ev);
	event_free(p->tick_ev);
	p->efd_ev = p->tick_ev = NULL;
	p->tick_armed = false;
	butler__br_member_stop(g->br);
}

int
butler__proxy_install(struct butler__pgroup *g)
{
	struct butler_bridge *br = g->br;

	g->inst = calloc(g->n_inst, sizeof *g->inst);
	if (g->inst == NULL)
		return BUTLER_ENOMEM;
	for (unsigned i = 0; i < g->n_inst; i++) {
		struct butler__proxy *p = &g->inst[i];

		p->g = g;
		p->efd = -1;
		pthread_mutex_init(&p->qmtx, NULL);
	}
	for (unsigned i = 0; i < g->n_inst; i++) {
		struct butler__proxy *p = &g->inst[i];

		p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		p->scratch = calloc(1, g->scratch_size ? g->scratch_size : 1);
		if (p->efd < 0 || p->scratch == NULL)
			return p->efd < 0 ? BUTLER_ESYS : BUTLER_ENOMEM;
	}
	(void)br;
	return BUTLER_OK;
}

int
butler__proxy_activate(struct butler__pgroup *g)
{
	return butler_hub_set_raw_handler(
	    g->br->hub, g->server, on_message, on_start, on_stop, g);
}

void
butler__proxy_free(struct butler__pgroup *g)
{
	if (g->inst == NULL)
		return;
	for (unsigned i = 0; i < g->n_inst; i++) {
		struct butler__proxy *p = &g->inst[i];

		if (p->efd >= 0)
			close(p->efd);
		butler__obuf_free(&p->q);
		free(p->tab.slot);
		free(p->scratch);
		pthread_mutex_destroy(&p->qmtx);
	}
	free(g->inst);
	g->inst = NULL;
}
