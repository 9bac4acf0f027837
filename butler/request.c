/*
 * request.c — request/reply: a reply is an ordinary record on the caller's
 * own inbox, matched to its request by an id (the FlowVar idea without an fd
 * or a thread per request). Every request ends exactly once: reply, timeout,
 * cancel, or ECLOSED when either side stops.
 *
 * Each server keeps the requests it made in a table only its own thread
 * touches: a hash by id for replies and cancels, and a binary heap by
 * deadline for timeouts, whose earliest entry arms one libevent timer (or,
 * for an external server, tells butler_server_next_timeout()).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>

struct req {
	uint64_t id;
	struct req *hnext; /* hash chain */
	size_t heap_at;    /* index in the heap, or NO_DEADLINE */
	uint64_t deadline; /* monotonic ns */
	uint64_t since;    /* monotonic ns, for listings */
	butler_reply_thunk thunk;
	void (*cb)(void);
	butler_progress_thunk pthunk;
	void (*pcb)(void);
	void *user;
	unsigned server, kind; /* whom we asked, and what */
};

#define NO_DEADLINE SIZE_MAX

struct butler__pending {
	struct req **bucket;
	size_t n_buckets; /* power of two */
	size_t count;
	struct req **heap;
	size_t heap_n, heap_cap;
	struct req *spare; /* finished entries, reused: no malloc per call */
	size_t n_spare;
};

/* Entries kept for reuse; a burst beyond this goes back to malloc. */
#define SPARE_MAX 1024

static struct req *
req_get(struct butler__pending *t)
{
	struct req *r = t->spare;

	if (r == NULL)
		return calloc(1, sizeof *r);
	t->spare = r->hnext;
	t->n_spare--;
	memset(r, 0, sizeof *r);
	return r;
}

static void
req_put(struct butler__pending *t, struct req *r)
{
	if (r == NULL)
		return;
	if (t == NULL || t->n_spare >= SPARE_MAX) {
		free(r);
		return;
	}
	r->hnext = t->spare;
	t->spare = r;
	t->n_spare++;
}

/* ---- table ------------------------------------------------------------ */

static struct butler__pending *
table(struct butler_server *srv)
{
	if (srv->pending == NULL) {
		struct butler__pending *t = calloc(1, sizeof *t);

		pthread_mutex_lock(&srv->pending_lock);
		srv->pending = t;
		pthread_mutex_unlock(&srv->pending_lock);
	}
	return srv->pending;
}

static size_t
slot(const struct butler__pending *t, uint64_t id)
{
	/* Ids are sequential: a multiplicative hash spreads them anyway. */
	return (size_t)((id * 0x9E3779B97F4A7C15u) >> 17) & (t->n_buckets - 1);
}

static int
grow_buckets(struct butler__pending *t)
{
	size_t n = t->n_buckets ? t->n_buckets * 2 : 64, i;
	struct req **b = calloc(n, sizeof *b), *r, *next;
	struct butler__pending tmp = { .bucket = b, .n_buckets = n };

	if (b == NULL)
		return BUTLER_ENOMEM;
	for (i = 0; i < t->n_buckets; i++)
		for (r = t->bucket[i]; r != NULL; r = next) {
			size_t s = slot(&tmp, r->id);

			next = r->hnext;
			r->hnext = b[s];
			b[s] = r;
		}
	free(t->bucket);
	t->bucket = b;
	t->n_buckets = n;
	return BUTLER_OK;
}

static void
heap_swap(struct butler__pending *t, size_t a, size_t b)
{
	struct req *x = t->heap[a];

	t->heap[a] = t->heap[b];
	t->heap[b] = x;
	t->heap[a]->heap_at = a;
	t->heap[b]->heap_at = b;
}

static void
heap_up(struct butler__pending *t, size_t i)
{
	while (
	    i > 0 && t->heap[(i - 1) / 2]->deadline > t->heap[i]->deadline) {
		heap_swap(t, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
heap_down(struct butler__pending *t, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < t->heap_n
		    && t->heap[l]->deadline < t->heap[m]->deadline)
			m = l;
		if (r < t->heap_n
		    && t->heap[r]->deadline < t->heap[m]->deadline)
			m = r;
		if (m == i)
			return;
		heap_swap(t, i, m);
		i = m;
	}
}

static void
heap_remove(struct butler__pending *t, struct req *r)
{
	size_t i = r->heap_at;

	if (i == NO_DEADLINE)
		return;
	t->heap_n--;
	if (i != t->heap_n) {
		t->heap[i] = t->heap[t->heap_n];
		t->heap[i]->heap_at = i;
		heap_down(t, i);
		heap_up(t, i);
	}
	r->heap_at = NO_DEADLINE;
}

static int insert_locked(struct butler__pending *t, struct req *r);

/* The owner thread is the only writer; the lock is for listings. */
static int
insert(struct butler_server *srv, struct butler__pending *t, struct req *r)
{
	int rv;

	pthread_mutex_lock(&srv->pending_lock);
	rv = insert_locked(t, r);
	pthread_mutex_unlock(&srv->pending_lock);
	return rv;
}

static int
insert_locked(struct butler__pending *t, struct req *r)
{
	size_t s;

	if (t->count + 1 > t->n_buckets && grow_buckets(t) != BUTLER_OK)
		return BUTLER_ENOMEM;
	if (r->heap_at != NO_DEADLINE && t->heap_n == t->heap_cap) {
		size_t cap = t->heap_cap ? t->heap_cap * 2 : 64;
		struct req **h = realloc(t->heap, cap * sizeof *h);

		if (h == NULL)
			return BUTLER_ENOMEM;
		t->heap = h;
		t->heap_cap = cap;
	}
	s = slot(t, r->id);
	r->hnext = t->bucket[s];
	t->bucket[s] = r;
	t->count++;
	if (r->heap_at != NO_DEADLINE) {
		r->heap_at = t->heap_n;
		t->heap[t->heap_n++] = r;
		heap_up(t, r->heap_at);
	}
	return BUTLER_OK;
}

static struct req *
find(struct butler__pending *t, uint64_t id)
{
	struct req *r;

	if (t == NULL || t->n_buckets == 0)
		return NULL;
	for (r = t->bucket[slot(t, id)]; r != NULL; r = r->hnext)
		if (r->id == id)
			return r;
	return NULL;
}

static struct req *
take_locked(struct butler__pending *t, uint64_t id)
{
	struct req **link, *r;

	if (t == NULL || t->n_buckets == 0)
		return NULL;
	for (link = &t->bucket[slot(t, id)]; (r = *link) != NULL;
	     link = &r->hnext)
		if (r->id == id) {
			*link = r->hnext;
			t->count--;
			heap_remove(t, r);
			return r;
		}
	return NULL;
}

static struct req *
take(struct butler_server *srv, uint64_t id)
{
	struct req *r;

	pthread_mutex_lock(&srv->pending_lock);
	r = take_locked(srv->pending, id);
	pthread_mutex_unlock(&srv->pending_lock);
	return r;
}

/* Arms the server's timer for the earliest deadline (threaded servers). */
static void
arm(struct butler_server *srv)
{
	struct butler__pending *t = srv->pending;

	if (srv->request_timer == NULL)
		return;
	if (t == NULL || t->heap_n == 0) {
		evtimer_del(srv->request_timer);
	} else {
		uint64_t now = butler__now_ns(), d = t->heap[0]->deadline;
		uint64_t wait = d > now ? d - now : 0;
		struct timeval tv = { (time_t)(wait / 1000000000u),
			(suseconds_t)(wait % 1000000000u) / 1000 };

		evtimer_add(srv->request_timer, &tv);
	}
}

/* Ends request r with status (and reply when status is BUTLER_OK). */
static void
complete(struct butler_server *srv, struct req *r, int status, void *reply)
{
	r->thunk(
	    srv, status, status == BUTLER_OK ? reply : NULL, r->cb, r->user);
	req_put(srv->pending, r);
}

/* ---- caller side ------------------------------------------------------ */

int
butler_call_progress(butler_hub *hub, unsigned server, unsigned kind,
    const void *msg, size_t size, int timeout_ms, butler_reply_thunk thunk,
    void (*cb)(void), butler_progress_thunk pthunk, void (*pcb)(void),
    void *user, uint64_t *id)
{
	struct butler_server *self = hub ? butler__caller(hub) : NULL;
	struct butler__req_hdr hdr = { 0 };
	struct butler__pending *t;
	const butler_server_desc *s;
	struct req *r;
	int rv;

	if (id != NULL)
		*id = 0;
	if (hub == NULL || self == NULL || self->hub != hub || thunk == NULL
	    || server >= hub->spec->n_servers)
		return BUTLER_EINVAL;
	s = &hub->spec->servers[server];
	if (kind == 0 || kind > s->n_accepts
	    || hub->spec->messages[s->accepts[kind - 1]].reply < 0)
		return BUTLER_EINVAL;
	t = table(self);
	r = t != NULL ? req_get(t) : NULL;
	if (r == NULL)
		return BUTLER_ENOMEM;
	r->id = self->next_request_id++;
	r->since = butler__now_ns();
	r->deadline = timeout_ms >= 0
	    ? r->since + (uint64_t)timeout_ms * 1000000u
	    : UINT64_MAX;
	r->heap_at = timeout_ms >= 0 ? 0 : NO_DEADLINE;
	r->thunk = thunk;
	r->cb = cb;
	r->pthunk = pthunk;
	r->pcb = pcb;
	r->user = user;
	r->server = server;
	r->kind = kind;
	rv = insert(self, t, r);
	if (rv != BUTLER_OK) {
		req_put(t, r);
		return rv;
	}
	hdr.id = r->id;
	hdr.reply_to = self;
	rv = butler__send_request(hub, server, kind, msg, size, &hdr);
	if (rv != BUTLER_OK) {
		req_put(t, take(self, hdr.id));
		return rv;
	}
	if (r->heap_at == 0)
		arm(self);
	if (id != NULL)
		*id = hdr.id;
	return BUTLER_OK;
}

int
butler_call(butler_hub *hub, unsigned server, unsigned kind, const void *msg,
    size_t size, int timeout_ms, butler_reply_thunk thunk, void (*cb)(void),
    void *user, uint64_t *id)
{
	return butler_call_progress(hub, server, kind, msg, size, timeout_ms,
	    thunk, cb, NULL, NULL, user, id);
}

int
butler_cancel(butler_hub *hub, uint64_t id)
{
	struct butler_server *self = hub ? butler__caller(hub) : NULL;
	struct req *r;

	if (hub == NULL || self == NULL || self->hub != hub)
		return BUTLER_EINVAL;
	r = take(self, id);
	if (r == NULL)
		return BUTLER_ENOTFOUND;
	arm(self);
	complete(self, r, BUTLER_ECANCELED, NULL);
	return BUTLER_OK;
}

void
butler__request_on_reply(struct butler_server *srv, struct butler__rec *rec)
{
	const struct butler__req_hdr *hdr = butler__rec_req(rec);
	struct req *r = take(srv, hdr->id);

	/* Unknown id: the request timed out or was cancelled; the caller of
	 * this function destroys the late reply. */
	if (r == NULL)
		return;
	arm(srv);
	complete(srv, r, hdr->status, butler__rec_payload(rec));
}

void
butler__request_expire(struct butler_server *srv, uint64_t now_ns)
{
	struct butler__pending *t = srv->pending;

	while (t != NULL && t->heap_n > 0 && t->heap[0]->deadline <= now_ns) {
		struct req *r = take(srv, t->heap[0]->id);

		complete(srv, r, BUTLER_ETIMEDOUT, NULL);
	}
	arm(srv);
}

int
butler__request_next_timeout_ms(struct butler_server *srv, uint64_t now_ns)
{
	struct butler__pending *t = srv->pending;
	uint64_t d;

	if (t == NULL || t->heap_n == 0)
		return -1;
	d = t->heap[0]->deadline;
	if (d <= now_ns)
		return 0;
	d = (d - now_ns + 999999u) / 1000000u;
	return d > INT32_MAX ? INT32_MAX : (int)d;
}

void
butler__request_fail_all(struct butler_server *srv, int status)
{
	struct butler__pending *t = srv->pending;
	size_t i;

	if (t == NULL)
		return;
	/* Callbacks may make new requests (they fail: we are closed), so
	 * look at each bucket until it stays empty. */
	for (i = 0; i < t->n_buckets; i++) {
		while (t->bucket[i] != NULL) {
			struct req *r = take(srv, t->bucket[i]->id);

			if (status != BUTLER_OK)
				complete(srv, r, status, NULL);
			else
				free(r);
		}
	}
	if (srv->request_timer != NULL)
		evtimer_del(srv->request_timer);
}

void
butler__request_free(struct butler_server *srv)
{
	struct butler__pending *t = srv->pending;

	if (t == NULL)
		return;
	butler__request_fail_all(srv, BUTLER_OK);
	while (t->spare != NULL) {
		struct req *r = t->spare;

		t->spare = r->hnext;
		free(r);
	}
	free(t->bucket);
	free(t->heap);
	free(t);
	srv->pending = NULL;
}

size_t
butler_hub_pending(butler_hub *hub, butler_pending_fn fn, void *user)
{
	uint64_t now = butler__now_ns();
	size_t count = 0;
	unsigned i;

	if (hub == NULL)
		return 0;
	for (i = 0; i < hub->n_inst; i++) {
		struct butler_server *srv = hub->inst[i];
		struct butler__pending *t;
		size_t b;

		pthread_mutex_lock(&srv->pending_lock);
		t = srv->pending;
		for (b = 0; t != NULL && b < t->n_buckets; b++)
			for (struct req *r = t->bucket[b]; r; r = r->hnext) {
				const butler_server_desc *to
				    = &hub->spec->servers[r->server];
				butler_pending_info info = {
					.id = r->id,
					.caller = srv->desc->name,
					.caller_instance = srv->instance,
					.server = to->name,
					.message
					= hub->spec
					      ->messages[to->accepts[r->kind
					          - 1]]
					      .name,
					.waiting_ms
					= (now - r->since) / 1000000u,
					.timeout_in_ms
					= r->deadline == UINT64_MAX ? -1
					    : r->deadline > now
					    ? (int64_t)((r->deadline - now)
					        / 1000000u)
					    : 0,
				};
				count++;
				if (fn != NULL)
					fn(&info, user);
			}
		pthread_mutex_unlock(&srv->pending_lock);
	}
	return count;
}

/* ---- progress --------------------------------------------------------- */

/*
 * With "latest", a worker and its caller share a box holding the newest
 * undelivered progress message. Posting swaps the new message in; only a
 * post that finds the box empty sends a record, which tells the caller to
 * take whatever the box holds when it gets there. So at most one progress
 * record per request is ever queued, whatever the worker's pace.
 */
struct butler__box {
	atomic_uint refs;
	void *_Atomic latest; /* malloc'd copy of a progress message */
	const butler_msg_desc *msg;
};

static void
destroy_copy(const butler_msg_desc *m, void *copy)
{
	if (copy == NULL)
		return;
	if (m->destroy != NULL)
		m->destroy(copy);
	free(copy);
}

static void
box_unref(struct butler__box *box)
{
	if (box != NULL && atomic_fetch_sub(&box->refs, 1) == 1) {
		destroy_copy(box->msg, atomic_load(&box->latest));
		free(box);
	}
}

bool
butler__request_progress_rec(
    struct butler_server *srv, struct butler__rec *rec, bool deliver)
{
	const struct butler__req_hdr *hdr = butler__rec_req(rec);
	const butler_msg_desc *m;
	struct req *r;
	void *progress = butler__rec_payload(rec);
	struct butler__box *box = NULL;

	if (!(rec->flags & BUTLER__REC_PROGRESS))
		return false;
	m = &srv->hub->spec->messages[rec->kind];
	if (rec->flags & BUTLER__REC_BOXED) {
		memcpy(&box, progress, sizeof box);
		progress = atomic_exchange(&box->latest, NULL);
	}
	r = deliver ? find(srv->pending, hdr->id) : NULL;
	if (progress != NULL && r != NULL && r->pthunk != NULL)
		r->pthunk(srv, progress, r->pcb, r->user);
	if (box != NULL) {
		destroy_copy(m, progress);
		box_unref(box);
	} else if (m->destroy != NULL) {
		m->destroy(progress);
	}
	return true;
}

/* ---- server side ------------------------------------------------------ */

/* Sends a record answering request req; the payload's fields move on OK.
 * Answers bypass the capacity check: they are bounded by the requests the
 * caller has in flight, and dropping one would leave a request that never
 * ends. */
static int
answer(struct butler_server *srv, const struct butler__req_hdr *req,
    unsigned flags, int status, int msg_index, const void *payload,
    size_t size)
{
	struct butler__req_hdr hdr = { .id = req->id, .status = status };

	return butler__push(srv->hub, req->reply_to,
	    msg_index >= 0 ? (unsigned)msg_index : 0,
	    BUTLER__REC_REPLY | flags, &hdr, payload, size, false, false, 0);
}

/* Destroys the owned fields of a message we were handed as const. */
static void
destroy_const(const butler_msg_desc *m, const void *msg, size_t size)
{
	void *copy;

	if (m->destroy == NULL)
		return;
	copy = malloc(size);
	if (copy != NULL) {
		memcpy(copy, msg, size);
		m->destroy(copy);
		free(copy);
	}
}

int
butler_reply(butler_server *self, const void *reply, size_t size)
{
	const butler_msg_desc *m;
	int rv;

	if (self == NULL || self->current_req == NULL
	    || self->current_req_reply < 0 || reply == NULL)
		return BUTLER_EINVAL;
	m = &self->hub->spec->messages[self->current_req_reply];
	if (size != m->size)
		return BUTLER_EINVAL;
	if (self->current_req_answered)
		return BUTLER_ESTATE;
	rv = answer(self, self->current_req, 0, BUTLER_OK,
	    self->current_req_reply, reply, size);
	self->current_req_answered = true;
	/* The requester is gone: the reply is ours to destroy. */
	if (rv != BUTLER_OK)
		destroy_const(m, reply, size);
	return BUTLER_OK;
}

int
butler_progress(butler_server *self, const void *progress, size_t size)
{
	const butler_msg_desc *m;
	struct butler__box *box;
	void *copy, *old;
	int rv;

	if (self == NULL || self->current_req == NULL
	    || self->current_req_progress < 0 || progress == NULL)
		return BUTLER_EINVAL;
	m = &self->hub->spec->messages[self->current_req_progress];
	if (size != m->size)
		return BUTLER_EINVAL;
	if (!self->current_req_latest) {
		rv = answer(self, self->current_req, BUTLER__REC_PROGRESS,
		    BUTLER_OK, self->current_req_progress, progress, size);
		if (rv != BUTLER_OK)
			destroy_const(m, progress, size);
		return rv == BUTLER_ENOMEM ? rv : BUTLER_OK;
	}
	box = self->current_box;
	if (box == NULL) {
		box = calloc(1, sizeof *box);
		if (box == NULL)
			return BUTLER_ENOMEM;
		atomic_init(&box->refs, 1);
		atomic_init(&box->latest, NULL);
		box->msg = m;
		self->current_box = box;
	}
	copy = malloc(size);
	if (copy == NULL)
		return BUTLER_ENOMEM;
	memcpy(copy, progress, size);
	old = atomic_exchange(&box->latest, copy);
	if (old != NULL) {
		/* A record is on its way and will pick up `copy`. */
		destroy_copy(m, old);
		return BUTLER_OK;
	}
	atomic_fetch_add(&box->refs, 1);
	rv = answer(self, self->current_req,
	    BUTLER__REC_PROGRESS | BUTLER__REC_BOXED, BUTLER_OK,
	    self->current_req_progress, &box, sizeof box);
	if (rv != BUTLER_OK) {
		destroy_copy(m, atomic_exchange(&box->latest, NULL));
		box_unref(box);
	}
	return rv == BUTLER_ENOMEM ? rv : BUTLER_OK;
}

void
butler__request_after_handler(struct butler_server *srv, int rv)
{
	box_unref(srv->current_box);
	srv->current_box = NULL;
	if (srv->current_req_answered)
		return;
	if (rv == BUTLER_OK) {
		butler__log(srv->hub, BUTLER_LOG_WARN,
		    "server '%s': handler returned without replying "
		    "to a request",
		    srv->name);
		rv = BUTLER_EHANDLER;
	}
	(void)answer(srv, srv->current_req, 0, rv, -1, NULL, 0);
	srv->current_req_answered = true;
}

void
butler__request_refuse(
    struct butler_server *srv, const struct butler__req_hdr *req, int status)
{
	(void)answer(srv, req, 0, status, -1, NULL, 0);
}
