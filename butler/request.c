/* SPDX-License-Identifier: MIT */
/*
 * request.c — the request protocol, top to bottom: a call, its ticket, the
 * caller's table and deadlines, the server's hold and promises, answers,
 * progress, cancellation, blocking calls, and how all of it ends at stop.
 *
 * A call reserves, in a ticket, everything its answer will need: the room
 * for the reply struct and the link that posts it back. So an answer never
 * allocates and cannot fail: the answering server copies the reply into
 * the ticket, claims it (one CAS, PENDING -> ANSWERED) and posts the ticket
 * to the caller's inbox (the FlowVar idea, without an fd or thread per
 * request), or wakes the blocked caller. A caller that gives up (timeout,
 * cancel, stop) claims it the other way (PENDING -> GONE): whoever wins the
 * CAS decides the one outcome, so every request ends exactly once. The
 * ticket travels with the request record, which is how a server sees that
 * its caller has gone (the request is destroyed unhandled: abandoned) and
 * how long the caller will still wait (the deadline).
 *
 * Progress messages travel as ordinary records in the server's lane to the
 * caller; the ticket counts those sent, and an answer that overtakes its
 * last progress record waits (parked) until the record has been taken, so
 * the caller always sees progress before the answer. With "latest" the
 * ticket holds the newest undelivered progress message and at most one
 * record is on its way.
 *
 * Each caller keeps its calls in a table only its own thread touches: a
 * hash by id for answers and cancels, and a binary heap by deadline whose
 * earliest entry arms one timer. Each server keeps the requests it deferred
 * in a hash by promise id. Listings take the instance's lock.
 */
#include "request.h"

#include "alloc.h"
#include "heap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum ticket_state { T_PENDING = 0, T_ANSWERED, T_GONE };

enum ticket_flags {
	TF_WAIT = 1u << 0,     /* a blocked caller waits on `waiter` */
	TF_PROGRESS = 1u << 1, /* the caller takes progress messages */
	TF_LATEST = 1u << 2 /* only the newest undelivered progress counts */
};

/* What a server holds while a request is in its hands. */
enum hold_state { HOLD_NONE = 0, HOLD_HANDLING, HOLD_ANSWERED, HOLD_DEFERRED };

/* A blocked caller's wake-up: on its own stack for the call's duration. */
struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

struct butler__ticket {
	struct butler__node node; /* posted to the caller once answered */
	atomic_uint refs;     /* caller, request record, progress records */
	atomic_int state;     /* ticket_state */
	int32_t status;       /* the answer (written before ANSWERED) */
	unsigned flags;       /* ticket_flags */
	uint64_t deadline_ns; /* UINT64_MAX: none */
	const butler_msg_desc *request, *reply, *progress;
	unsigned server;                     /* hub-wide, asked */
	struct butler__channel *reply_inbox; /* async caller */
	unsigned reply_index;                /* its inbox index */
	struct waiter *waiter;               /* blocked caller */
	atomic_uint progress_sent;           /* progress records pushed */
	void *_Atomic latest;                /* with TF_LATEST */
	atomic_uint deferred_by;             /* holder's inbox + 1, or 0 */
	atomic_uint_fast64_t deferred_ns;
	size_t room; /* bytes in payload[] */

	/* The caller's side: only its thread (listings under its lock). */
	uint64_t id;
	struct butler__ticket *hnext; /* hash chain, spare list */
	struct butler__heap_node dl;  /* by deadline; in no heap: none */
	uint64_t since_ns;
	struct butler__call_args args;
	butler_binding *binding; /* deliveries only while alive, or NULL */
	unsigned progress_seen;
	bool parked; /* answered; its last progress is still on its way */
	bool ended;  /* its callback has run */
	struct butler__ticket *wnext, **wprev; /* blocking calls list */

	/* The holder's side: only its thread. */
	uint64_t promise;
	struct butler__ticket *pnext; /* promises hash chain */

	_Alignas(max_align_t) unsigned char payload[]; /* the reply */
};

#define TICKET_OF(n)                                                          \
	((struct butler__ticket *)(void *)((char *)(n)-offsetof(              \
	    struct butler__ticket, node)))

struct butler__calls {
	struct butler__ticket **bucket;
	size_t n_buckets; /* power of two */
	size_t count;
	struct butler__heap heap;     /* by deadline */
	struct butler__ticket *spare; /* ended tickets, reused */
	size_t n_spare;
};

struct butler__promises {
	struct butler__ticket **bucket;
	size_t n_buckets; /* power of two */
	size_t count;
};

/* Tickets kept for reuse per caller; a burst beyond goes back to free(). */
#define SPARE_MAX 1024
#define FIRST_BUCKETS 64

/* Promise ids carry the holder's inbox index, so that a promise handed to
 * another server can never answer one of that server's own requests. */
#define PROMISE_INDEX_BITS 20
#define PROMISE_INDEX_MASK ((1u << PROMISE_INDEX_BITS) - 1)

static size_t
slot(uint64_t id, size_t n_buckets)
{
	/* Ids are sequential: a multiplicative hash spreads them anyway. */
	return (size_t)((id * 0x9E3779B97F4A7C15u) >> 17) & (n_buckets - 1);
}

/* ---- tickets ---------------------------------------------------------- */

static void
destroy_payload(const butler_msg_desc *m, void *payload)
{
	if (m != NULL && m->destroy != NULL)
		m->destroy(payload);
}

static void
destroy_copy(const butler_msg_desc *m, void *copy)
{
	if (copy == NULL)
		return;
	destroy_payload(m, copy);
	free(copy);
}

static void
ticket_free(struct butler__ticket *t)
{
	destroy_copy(t->progress, atomic_load(&t->latest));
	free(t);
}

static struct butler__ticket *
ticket_new(size_t room)
{
	struct butler__ticket *t = butler__malloc(sizeof *t + room);

	if (t != NULL)
		t->room = room;
	return t;
}

/* Clears everything but the reply room. */
static void
ticket_reset(struct butler__ticket *t, unsigned refs)
{
	size_t room = t->room;

	memset(t, 0, sizeof *t);
	t->room = room;
	atomic_init(&t->refs, refs);
	atomic_init(&t->state, T_PENDING);
	atomic_init(&t->progress_sent, 0);
	atomic_init(&t->latest, NULL);
	atomic_init(&t->deferred_by, 0);
	atomic_init(&t->deferred_ns, 0);
	t->dl.at = BUTLER__NO_HEAP;
}

/*
 * unref drops one reference; the last one recycles the ticket into the
 * caller's spares when dropped on the caller's thread (calls != NULL), and
 * frees it otherwise.
 */
static void
unref(struct butler__ticket *t, struct butler__calls *calls)
{
	if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (calls == NULL || calls->n_spare >= SPARE_MAX
	    || atomic_load_explicit(&t->latest, memory_order_relaxed)
	        != NULL) {
		ticket_free(t);
		return;
	}
	t->hnext = calls->spare;
	calls->spare = t;
	calls->n_spare++;
}

static struct butler__ticket *
ticket_get(struct butler__calls *calls, size_t room)
{
	struct butler__ticket *t = calls->spare;

	if (t != NULL) {
		calls->spare = t->hnext;
		calls->n_spare--;
		return t;
	}
	return ticket_new(room);
}

/* ---- the hub's part --------------------------------------------------- */

int
butler__reqhub_init(struct butler__reqhub *h,
    const struct butler__router *router, const struct butler__logger *log,
    size_t reply_room)
{
	h->router = router;
	h->log = log;
	h->reply_room = reply_room;
	h->waits = NULL;
	return pthread_mutex_init(&h->waits_lock, NULL) == 0 ? BUTLER_OK
	                                                     : BUTLER_ESYS;
}

void
butler__reqhub_release(struct butler__reqhub *h)
{
	pthread_mutex_destroy(&h->waits_lock);
}

/* ---- a caller's table ------------------------------------------------- */

int
butler__requests_init(struct butler__requests *rq, struct butler__reqhub *hub,
    butler_server *owner, unsigned index, struct butler__channel *inbox)
{
	memset(rq, 0, sizeof *rq);
	rq->hub = hub;
	rq->owner = owner;
	rq->index = index;
	rq->inbox = inbox;
	rq->next_id = 1;
	rq->next_promise = 1;
	rq->calls = butler__calloc(1, sizeof *rq->calls);
	rq->promises = butler__calloc(1, sizeof *rq->promises);
	if (rq->calls == NULL || rq->promises == NULL)
		goto out_nomem;
	/* The promise table starts with its buckets, so that deferring never
	 * needs memory: a failed growth only makes chains longer. */
	rq->promises->bucket
	    = butler__calloc(FIRST_BUCKETS, sizeof *rq->promises->bucket);
	if (rq->promises->bucket == NULL)
		goto out_nomem;
	rq->promises->n_buckets = FIRST_BUCKETS;
	if (pthread_mutex_init(&rq->lock, NULL) != 0) {
		free(rq->promises->bucket);
		free(rq->promises);
		free(rq->calls);
		return BUTLER_ESYS;
	}
	return BUTLER_OK;

out_nomem:
	if (rq->promises != NULL)
		free(rq->promises->bucket);
	free(rq->promises);
	free(rq->calls);
	return BUTLER_ENOMEM;
}

void
butler__requests_release(struct butler__requests *rq)
{
	struct butler__calls *c = rq->calls;

	if (c != NULL) {
		while (c->spare != NULL) {
			struct butler__ticket *t = c->spare;

			c->spare = t->hnext;
			ticket_free(t);
		}
		free(c->bucket);
		butler__heap_release(&c->heap);
		free(c);
	}
	if (rq->promises != NULL)
		free(rq->promises->bucket);
	free(rq->promises);
	pthread_mutex_destroy(&rq->lock);
	memset(rq, 0, sizeof *rq);
}

static int
calls_grow(struct butler__calls *c)
{
	size_t n = c->n_buckets ? c->n_buckets * 2 : FIRST_BUCKETS;
	struct butler__ticket **b = butler__calloc(n, sizeof *b), *t, *next;

	if (b == NULL)
		return BUTLER_ENOMEM;
	for (size_t i = 0; i < c->n_buckets; i++)
		for (t = c->bucket[i]; t != NULL; t = next) {
			size_t s = slot(t->id, n);

			next = t->hnext;
			t->hnext = b[s];
			b[s] = t;
		}
	free(c->bucket);
	c->bucket = b;
	c->n_buckets = n;
	return BUTLER_OK;
}

#define TICKET_OF_DL(n)                                                       \
	((struct butler__ticket *)(void *)((char *)(n)-offsetof(              \
	    struct butler__ticket, dl)))

static void
heap_remove(struct butler__calls *c, struct butler__ticket *t)
{
	butler__heap_remove(&c->heap, &t->dl);
}

/* Inserts t (caller's lock held); ENOMEM leaves the table as it was. */
static int
calls_insert(struct butler__calls *c, struct butler__ticket *t)
{
	size_t s;

	if (c->count + 1 > c->n_buckets && calls_grow(c) != BUTLER_OK)
		return BUTLER_ENOMEM;
	if (t->deadline_ns != UINT64_MAX
	    && butler__heap_reserve(&c->heap) != BUTLER_OK)
		return BUTLER_ENOMEM;
	s = slot(t->id, c->n_buckets);
	t->hnext = c->bucket[s];
	c->bucket[s] = t;
	c->count++;
	if (t->deadline_ns != UINT64_MAX) {
		t->dl.due = t->deadline_ns;
		butler__heap_push(&c->heap, &t->dl);
	}
	return BUTLER_OK;
}

static struct butler__ticket *
calls_find(struct butler__calls *c, uint64_t id)
{
	if (c->n_buckets == 0)
		return NULL;
	for (struct butler__ticket *t = c->bucket[slot(id, c->n_buckets)];
	     t != NULL; t = t->hnext)
		if (t->id == id)
			return t;
	return NULL;
}

/* Removes t from the table (caller's lock held). */
static void
calls_remove(struct butler__calls *c, struct butler__ticket *t)
{
	struct butler__ticket **link = &c->bucket[slot(t->id, c->n_buckets)];

	while (*link != t)
		link = &(*link)->hnext;
	*link = t->hnext;
	c->count--;
	heap_remove(c, t);
}

/* Arms the owner's timer for the earliest deadline. */
static void
arm(struct butler__requests *rq)
{
	if (rq->arm != NULL)
		rq->arm(rq->arm_ctx,
		    butler__heap_wait(&rq->calls->heap, butler__now_ns()));
}

/* give_up claims t for the caller (PENDING -> GONE); false: answered. */
static bool
give_up(struct butler__ticket *t)
{
	int expected = T_PENDING;

	return atomic_compare_exchange_strong(&t->state, &expected, T_GONE);
}

/* take_out removes call t from the caller's table. */
static void
take_out(struct butler__requests *rq, struct butler__ticket *t)
{
	pthread_mutex_lock(&rq->lock);
	calls_remove(rq->calls, t);
	pthread_mutex_unlock(&rq->lock);
}

/*
 * finish_call ends call t, already out of the table, on the caller's
 * thread: the callback with `status` (and the reply on BUTLER_OK, destroyed
 * after), and the caller's reference dropped.
 */
static void
finish_call(struct butler__requests *rq, struct butler__ticket *t, int status)
{
	butler_binding *b = t->binding;
	void *token = b != NULL ? b->enter(b) : NULL;

	t->ended = true;
	/* Bound to something that is gone: the callback stays silent. */
	if (b == NULL || token != NULL)
		t->args.thunk(rq->owner, status,
		    status == BUTLER_OK ? t->payload : NULL, t->args.cb,
		    t->args.user);
	if (b != NULL) {
		if (token != NULL)
			b->leave(b, token);
		t->binding = NULL;
		b->release(b);
	}
	if (status == BUTLER_OK)
		destroy_payload(t->reply, t->payload);
	unref(t, rq->calls);
}

/*
 * end_early ends call t, already out of the table, with `status` before
 * its answer is delivered (timeout, cancel, stop): the callback runs now,
 * whatever the server is doing. If the server has claimed the ticket
 * already, its answer is destroyed: now if it is here (parked), or when
 * it arrives.
 */
static void
end_early(struct butler__requests *rq, struct butler__ticket *t, int status)
{
	if (!give_up(t) && t->parked) {
		t->parked = false;
		if (t->status == BUTLER_OK)
			destroy_payload(t->reply, t->payload);
	}
	finish_call(rq, t, status);
}

/* ---- calls ------------------------------------------------------------ */

/* Fills what a call's ticket says about the request it carries. */
static int
describe(struct butler__ticket *t, const struct butler__router *r,
    unsigned server, unsigned kind, int timeout_ms)
{
	const struct butler__route *rt;
	const butler_msg_desc *m;

	if (server >= r->n_routes)
		return BUTLER_EINVAL;
	rt = &r->route[server];
	if (kind == 0 || kind > rt->n_kinds)
		return BUTLER_EINVAL;
	m = rt->kind_msg[kind];
	if (m->reply < 0)
		return BUTLER_EINVAL;
	t->request = m;
	t->reply = &rt->spec->messages[m->reply];
	t->progress
	    = m->progress >= 0 ? &rt->spec->messages[m->progress] : NULL;
	if (m->flags & BUTLER_MSG_PROGRESS_LATEST)
		t->flags |= TF_LATEST;
	t->server = server;
	t->since_ns = butler__now_ns();
	t->deadline_ns = timeout_ms >= 0
	    ? t->since_ns + (uint64_t)timeout_ms * 1000000u
	    : UINT64_MAX;
	return BUTLER_OK;
}

int
butler__call(struct butler__requests *rq, unsigned server, unsigned kind,
    const void *msg, size_t size, int timeout_ms,
    const struct butler__call_args *args, uint64_t *id)
{
	const struct butler__router *r = rq->hub->router;
	struct butler__ticket *t;
	int rv;

	t = ticket_get(rq->calls, rq->hub->reply_room);
	if (t == NULL)
		return BUTLER_ENOMEM;
	/* Two references: the caller's, and the request record's. */
	ticket_reset(t, 2);
	rv = describe(t, r, server, kind, timeout_ms);
	if (rv != BUTLER_OK)
		goto out_unused;
	t->args = *args;
	if (args->pthunk != NULL && t->progress != NULL)
		t->flags |= TF_PROGRESS;
	t->reply_inbox = rq->inbox;
	t->reply_index = rq->index;
	t->id = rq->next_id++;
	pthread_mutex_lock(&rq->lock);
	rv = calls_insert(rq->calls, t);
	pthread_mutex_unlock(&rq->lock);
	if (rv != BUTLER_OK)
		goto out_unused;
	/* A server counted quiet by a stopping hub may call from outside a
	 * handler (an I/O callback): the answer will post to it ungated, so
	 * it counts busy until it has that answer (tests/model:
	 * bug-stop-quiet-io-call). If the send fails, the ring makes it
	 * report quiet again. */
	if (rq->owner != NULL
	    && butler__channel_state(rq->inbox) != BUTLER__OPEN)
		butler__channel_mark_busy(rq->inbox);
	rv = butler__send(r, server, kind, BUTLER__REC_REQUEST, t, msg, size,
	    BUTLER__SERVER_POLICY);
	/* Queued in place of an older request (keep_last, drop_oldest): the
	 * older one's caller hears of it; this call is made. */
	if (rv == BUTLER_EREPLACED)
		rv = BUTLER_OK;
	if (rv != BUTLER_OK) {
		pthread_mutex_lock(&rq->lock);
		calls_remove(rq->calls, t);
		pthread_mutex_unlock(&rq->lock);
		goto out_unused;
	}
	if (t->deadline_ns != UINT64_MAX && t->dl.at == 0)
		arm(rq);
	*id = t->id;
	return BUTLER_OK;

out_unused:
	/* Never seen by another thread: back to the spares as it is. */
	atomic_store(&t->refs, 1);
	unref(t, rq->calls);
	return rv;
}

int
butler__call_bind(
    struct butler__requests *rq, uint64_t id, butler_binding *binding)
{
	struct butler__ticket *t = calls_find(rq->calls, id);

	if (t == NULL || t->ended)
		return BUTLER_ENOTFOUND;
	if (t->binding != NULL)
		t->binding->release(t->binding);
	t->binding = binding;
	return BUTLER_OK;
}

int
butler__cancel(struct butler__requests *rq, uint64_t id)
{
	struct butler__ticket *t = calls_find(rq->calls, id);

	if (t == NULL)
		return BUTLER_ENOTFOUND;
	take_out(rq, t);
	end_early(rq, t, BUTLER_ECANCELED);
	arm(rq);
	return BUTLER_OK;
}

void
butler__requests_expire(struct butler__requests *rq, uint64_t now_ns)
{
	struct butler__calls *c = rq->calls;

	while (butler__heap_top(&c->heap) != NULL
	    && butler__heap_top(&c->heap)->due <= now_ns) {
		struct butler__ticket *t
		    = TICKET_OF_DL(butler__heap_top(&c->heap));

		take_out(rq, t);
		end_early(rq, t, BUTLER_ETIMEDOUT);
	}
	arm(rq);
}

int
butler__requests_next_timeout_ms(struct butler__requests *rq, uint64_t now_ns)
{
	return butler__heap_ms(butler__heap_wait(&rq->calls->heap, now_ns));
}

void
butler__requests_take_answers(
    struct butler__requests *rq, struct butler__node *list)
{
	bool rearm = false;

	while (list != NULL) {
		struct butler__ticket *t = TICKET_OF(list);

		list = list->next;
		butler__count(&rq->inbox->replies, 1);
		if (t->ended) {
			/* Its call ended before it came: destroy it. */
			if (t->status == BUTLER_OK)
				destroy_payload(t->reply, t->payload);
			unref(t, rq->calls);
			continue;
		}
		/* The answer's own reference is done with. */
		atomic_fetch_sub_explicit(&t->refs, 1, memory_order_relaxed);
		if (atomic_load(&t->progress_sent) != t->progress_seen) {
			pthread_mutex_lock(&rq->lock);
			heap_remove(rq->calls, t);
			pthread_mutex_unlock(&rq->lock);
			t->parked = true;
			continue;
		}
		rearm |= t->dl.at != BUTLER__NO_HEAP;
		take_out(rq, t);
		finish_call(rq, t, t->status);
	}
	if (rearm)
		arm(rq);
}

void
butler__requests_progress(
    struct butler__requests *rq, struct butler__rec *rec, bool deliver_it)
{
	struct butler__ticket *t = butler__rec_ticket(rec);
	void *p = butler__rec_payload(rec);
	bool boxed = (rec->flags & BUTLER__REC_BOXED) != 0, gone = false;

	if (boxed)
		p = atomic_exchange(&t->latest, NULL);
	/* A call that has ended takes no progress any more. */
	if (deliver_it && p != NULL && !t->ended) {
		butler_binding *b = t->binding;
		void *token = b != NULL ? b->enter(b) : NULL;

		if (b == NULL || token != NULL) {
			butler__count(&rq->inbox->progress, 1);
			t->args.pthunk(
			    rq->owner, p, t->args.pcb, t->args.user);
		}
		if (token != NULL)
			b->leave(b, token);
		else if (b != NULL)
			gone = true;
	}
	if (boxed)
		destroy_copy(t->progress, p);
	else
		destroy_payload(t->progress, p);
	t->progress_seen++;
	if (t->parked && atomic_load(&t->progress_sent) == t->progress_seen) {
		/* The answer was waiting for this record. */
		t->parked = false;
		atomic_fetch_sub_explicit(&t->refs, 1, memory_order_relaxed);
		take_out(rq, t);
		finish_call(rq, t, t->status);
		return;
	}
	if (gone && !t->ended) {
		/* What it was bound to is gone: nobody wants the rest. */
		take_out(rq, t);
		end_early(rq, t, BUTLER_ECANCELED);
		arm(rq);
	}
	unref(t, rq->calls);
}

void
butler__request_drop_progress(struct butler__rec *rec)
{
	struct butler__ticket *t = butler__rec_ticket(rec);

	if (rec->flags & BUTLER__REC_BOXED)
		destroy_copy(t->progress, atomic_exchange(&t->latest, NULL));
	else
		destroy_payload(t->progress, butler__rec_payload(rec));
	unref(t, NULL);
}

/* ---- blocking calls --------------------------------------------------- */

static void
waits_add(struct butler__reqhub *h, struct butler__ticket *t)
{
	pthread_mutex_lock(&h->waits_lock);
	t->wnext = h->waits;
	t->wprev = &h->waits;
	if (h->waits != NULL)
		h->waits->wprev = &t->wnext;
	h->waits = t;
	pthread_mutex_unlock(&h->waits_lock);
}

static void
waits_remove(struct butler__reqhub *h, struct butler__ticket *t)
{
	pthread_mutex_lock(&h->waits_lock);
	*t->wprev = t->wnext;
	if (t->wnext != NULL)
		t->wnext->wprev = t->wprev;
	pthread_mutex_unlock(&h->waits_lock);
}

static int
waiter_init(struct waiter *w)
{
	pthread_condattr_t attr;
	int rc;

	w->done = false;
	if (pthread_mutex_init(&w->lock, NULL) != 0)
		return BUTLER_ESYS;
	if (pthread_condattr_init(&attr) != 0)
		goto out_lock;
	(void)pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	rc = pthread_cond_init(&w->cond, &attr);
	pthread_condattr_destroy(&attr);
	if (rc != 0)
		goto out_lock;
	return BUTLER_OK;

out_lock:
	pthread_mutex_destroy(&w->lock);
	return BUTLER_ESYS;
}

/* Waits for t's answer; gives up at its deadline if it can. */
static int
wait_answer(struct butler__ticket *t, struct waiter *w)
{
	bool timed = t->deadline_ns != UINT64_MAX;
	struct timespec ts = butler__timespec_at(timed ? t->deadline_ns : 0);
	int rv = BUTLER_OK;

	pthread_mutex_lock(&w->lock);
	while (!w->done) {
		int rc = timed
		    ? pthread_cond_timedwait(&w->cond, &w->lock, &ts)
		    : pthread_cond_wait(&w->cond, &w->lock);

		if (rc == ETIMEDOUT && !w->done) {
			if (give_up(t)) {
				rv = BUTLER_ETIMEDOUT;
				break;
			}
			/* Answered just in time: wait for it, unbounded (it
			 * is being written now). */
			timed = false;
		}
	}
	pthread_mutex_unlock(&w->lock);
	return rv;
}

int
butler__call_wait(struct butler__reqhub *h, unsigned server, unsigned kind,
    const void *msg, size_t size, int timeout_ms, void *reply,
    size_t reply_size)
{
	struct butler__ticket *t;
	struct waiter w;
	int rv;

	t = ticket_new(h->reply_room);
	if (t == NULL)
		return BUTLER_ENOMEM;
	ticket_reset(t, 2);
	rv = describe(t, h->router, server, kind, timeout_ms);
	if (rv == BUTLER_OK && (reply == NULL || reply_size != t->reply->size))
		rv = BUTLER_EINVAL;
	if (rv != BUTLER_OK) {
		ticket_free(t);
		return rv;
	}
	rv = waiter_init(&w);
	if (rv != BUTLER_OK) {
		ticket_free(t);
		return rv;
	}
	t->flags |= TF_WAIT;
	t->waiter = &w;
	waits_add(h, t);
	rv = butler__send(h->router, server, kind, BUTLER__REC_REQUEST, t, msg,
	    size, BUTLER__SERVER_POLICY);
	if (rv == BUTLER_EREPLACED)
		rv = BUTLER_OK; /* queued, in an older one's place */
	if (rv == BUTLER_OK) {
		rv = wait_answer(t, &w);
		if (rv == BUTLER_OK) {
			rv = t->status;
			if (rv == BUTLER_OK)
				memcpy(reply, t->payload, reply_size);
		}
	} else {
		atomic_store(&t->refs, 1);
	}
	waits_remove(h, t);
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.lock);
	unref(t, NULL);
	return rv;
}

/* ---- answering -------------------------------------------------------- */

/*
 * answer ends request t from its server's side: `size` bytes of `payload`
 * (the reply, whose owned fields move with it) are copied into the ticket,
 * then the ticket is claimed and posted to its caller, or the blocked caller
 * woken. A caller that has gone loses nothing: the reply is destroyed.
 * Never fails, never allocates. Drops the request's reference.
 */
static void
answer(struct butler__ticket *t, int status, const void *payload, size_t size)
{
	int expected = T_PENDING;

	if (payload != NULL && size > 0)
		memcpy(t->payload, payload, size);
	t->status = status;
	BUTLER__CHAOS();
	if (!atomic_compare_exchange_strong(
	        &t->state, &expected, T_ANSWERED)) {
		if (payload != NULL)
			destroy_payload(t->reply, t->payload);
		unref(t, NULL);
		return;
	}
	if (t->flags & TF_WAIT) {
		struct waiter *w = t->waiter;

		/* After the unlock the caller may return: w is not touched
		 * again, and t only through our own reference. */
		pthread_mutex_lock(&w->lock);
		w->done = true;
		pthread_cond_signal(&w->cond);
		pthread_mutex_unlock(&w->lock);
		unref(t, NULL);
		return;
	}
	BUTLER__CHAOS();
	butler__channel_post(t->reply_inbox, &t->node);
}

bool
butler__request_begin(
    struct butler__requests *rq, const struct butler__rec *rec)
{
	struct butler__ticket *t = butler__rec_ticket(rec);

	if (atomic_load_explicit(&t->state, memory_order_acquire) == T_GONE) {
		unref(t, NULL);
		return false;
	}
	rq->current = t;
	rq->current_state = HOLD_HANDLING;
	rq->current_promise = 0;
	return true;
}

static struct butler__ticket *promise_take(
    struct butler__requests *rq, uint64_t promise);

void
butler__request_end(struct butler__requests *rq, int rv)
{
	struct butler__ticket *t = rq->current;
	int state = rq->current_state;

	rq->current = NULL;
	rq->current_state = HOLD_NONE;
	if (state == HOLD_DEFERRED) {
		/* t may be answered and gone already: look it up. */
		if (rv != BUTLER_OK
		    && (t = promise_take(rq, rq->current_promise)) != NULL)
			answer(t, rv, NULL, 0);
		return;
	}
	if (state != HOLD_HANDLING)
		return;
	if (rv == BUTLER_OK) {
		butler__log(rq->hub->log, BUTLER_LOG_WARN,
		    "handler of request '%s' returned without answering it",
		    t->request->name);
		rv = BUTLER_EHANDLER;
	}
	answer(t, rv, NULL, 0);
}

void
butler__request_refuse(const struct butler__rec *rec, int status)
{
	answer(butler__rec_ticket(rec), status, NULL, 0);
}

int
butler__reply(struct butler__requests *rq, const void *reply, size_t size)
{
	struct butler__ticket *t = rq->current;

	if (t == NULL || reply == NULL || size != t->reply->size)
		return BUTLER_EINVAL;
	if (rq->current_state != HOLD_HANDLING)
		return BUTLER_ESTATE;
	rq->current_state = HOLD_ANSWERED;
	answer(t, BUTLER_OK, reply, size);
	return BUTLER_OK;
}

/* ---- promises --------------------------------------------------------- */

static void
promises_grow(struct butler__promises *p)
{
	size_t n = p->n_buckets * 2;
	struct butler__ticket **b = butler__calloc(n, sizeof *b), *t, *next;

	if (b == NULL)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < p->n_buckets; i++)
		for (t = p->bucket[i]; t != NULL; t = next) {
			size_t s = slot(t->promise, n);

			next = t->pnext;
			t->pnext = b[s];
			b[s] = t;
		}
	free(p->bucket);
	p->bucket = b;
	p->n_buckets = n;
}

static struct butler__ticket *
promise_find(struct butler__requests *rq, uint64_t promise)
{
	struct butler__promises *p = rq->promises;

	if ((promise & PROMISE_INDEX_MASK) != (rq->index & PROMISE_INDEX_MASK))
		return NULL;
	for (struct butler__ticket *t = p->bucket[slot(promise, p->n_buckets)];
	     t != NULL; t = t->pnext)
		if (t->promise == promise)
			return t;
	return NULL;
}

static struct butler__ticket *
promise_take(struct butler__requests *rq, uint64_t promise)
{
	struct butler__promises *p = rq->promises;
	struct butler__ticket **link, *t;

	if ((promise & PROMISE_INDEX_MASK) != (rq->index & PROMISE_INDEX_MASK))
		return NULL;
	pthread_mutex_lock(&rq->lock);
	for (link = &p->bucket[slot(promise, p->n_buckets)]; (t = *link);
	     link = &t->pnext)
		if (t->promise == promise) {
			*link = t->pnext;
			p->count--;
			break;
		}
	pthread_mutex_unlock(&rq->lock);
	if (t != NULL)
		atomic_store(&t->deferred_by, 0);
	return t;
}

int
butler__defer(struct butler__requests *rq, const butler_msg_desc *request,
    uint64_t *promise)
{
	struct butler__promises *p = rq->promises;
	struct butler__ticket *t = rq->current;
	size_t s;

	*promise = 0;
	if (t == NULL || request == NULL || t->request != request)
		return BUTLER_EINVAL;
	if (rq->current_state != HOLD_HANDLING)
		return BUTLER_ESTATE;
	t->promise = (rq->next_promise++ << PROMISE_INDEX_BITS)
	    | (rq->index & PROMISE_INDEX_MASK);
	pthread_mutex_lock(&rq->lock);
	if (p->count + 1 > 2 * p->n_buckets)
		promises_grow(p);
	s = slot(t->promise, p->n_buckets);
	t->pnext = p->bucket[s];
	p->bucket[s] = t;
	p->count++;
	pthread_mutex_unlock(&rq->lock);
	atomic_store(&t->deferred_ns, butler__now_ns());
	atomic_store(&t->deferred_by, rq->index + 1);
	rq->current_state = HOLD_DEFERRED;
	rq->current_promise = t->promise;
	*promise = t->promise;
	return BUTLER_OK;
}

/* Checks a promise's message and size before it is taken. */
static int
check_promise(struct butler__requests *rq, uint64_t promise,
    const butler_msg_desc *request,
    const butler_msg_desc *(*which)(const struct butler__ticket *),
    size_t size)
{
	struct butler__ticket *t = promise_find(rq, promise);
	const butler_msg_desc *m;

	if (t == NULL)
		return BUTLER_ESTATE;
	if (t->request != request)
		return BUTLER_EINVAL;
	m = which != NULL ? which(t) : NULL;
	if (which != NULL && (m == NULL || m->size != size))
		return BUTLER_EINVAL;
	return BUTLER_OK;
}

static const butler_msg_desc *
reply_of(const struct butler__ticket *t)
{
	return t->reply;
}

static const butler_msg_desc *
progress_of(const struct butler__ticket *t)
{
	return t->progress;
}

int
butler__answer(struct butler__requests *rq, uint64_t promise,
    const butler_msg_desc *request, const void *reply, size_t size)
{
	int rv;

	if (reply == NULL)
		return BUTLER_EINVAL;
	rv = check_promise(rq, promise, request, reply_of, size);
	if (rv != BUTLER_OK)
		return rv;
	answer(promise_take(rq, promise), BUTLER_OK, reply, size);
	return BUTLER_OK;
}

int
butler__fail(struct butler__requests *rq, uint64_t promise,
    const butler_msg_desc *request, int code)
{
	int rv;

	if (code == BUTLER_OK)
		return BUTLER_EINVAL;
	rv = check_promise(rq, promise, request, NULL, 0);
	if (rv != BUTLER_OK)
		return rv;
	answer(promise_take(rq, promise), code, NULL, 0);
	return BUTLER_OK;
}

/* ---- progress --------------------------------------------------------- */

/* Pushes one progress record for t; the caller still owns `progress`
 * unless this returns BUTLER_OK. */
static int
push_progress(struct butler__requests *rq, struct butler__ticket *t,
    unsigned rec_flags, const void *progress, size_t size)
{
	int rv;

	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
	atomic_fetch_add(&t->progress_sent, 1);
	/* ROOM: a caller that falls behind is flooded no further than its
	 * capacity (the sender sees BUTLER_EFULL). */
	rv = butler__push(rq->hub->router, t->reply_index, 0,
	    BUTLER__REC_PROGRESS | rec_flags, t, progress, size,
	    BUTLER__PUSH_ANSWER | BUTLER__PUSH_ROOM, 0);
	if (rv != BUTLER_OK) {
		atomic_fetch_sub(&t->progress_sent, 1);
		atomic_fetch_sub_explicit(&t->refs, 1, memory_order_relaxed);
	}
	return rv;
}

static int
post_latest(struct butler__requests *rq, struct butler__ticket *t,
    const void *progress, size_t size)
{
	void *copy = butler__malloc(size > 0 ? size : 1), *old;
	int rv;

	if (copy == NULL)
		return BUTLER_ENOMEM;
	memcpy(copy, progress, size);
	old = atomic_exchange(&t->latest, copy);
	if (old != NULL) {
		/* A record is on its way and will pick up `copy`. */
		destroy_copy(t->progress, old);
		return BUTLER_OK;
	}
	rv = push_progress(rq, t, BUTLER__REC_BOXED, NULL, 0);
	if (rv == BUTLER_OK)
		return BUTLER_OK;
	/* No record will come for it: take it back. Only this thread
	 * posts, so what the slot holds is our copy. */
	copy = atomic_exchange(&t->latest, NULL);
	if (rv == BUTLER_ENOMEM) {
		free(copy); /* the fields are still the caller's */
		return rv;
	}
	destroy_copy(t->progress, copy);
	return BUTLER_OK;
}

/* Destroys the owned fields of a message we were handed as const; the
 * caller still owns them if this fails. */
static int
destroy_const(const butler_msg_desc *m, const void *msg, size_t size)
{
	void *copy;

	if (m->destroy == NULL)
		return BUTLER_OK;
	copy = butler__malloc(size > 0 ? size : 1);
	if (copy == NULL)
		return BUTLER_ENOMEM;
	memcpy(copy, msg, size);
	destroy_copy(m, copy);
	return BUTLER_OK;
}

int
butler__progress(struct butler__requests *rq, uint64_t promise,
    const butler_msg_desc *request, const void *progress, size_t size)
{
	struct butler__ticket *t;
	int rv;

	if (progress == NULL)
		return BUTLER_EINVAL;
	if (promise != 0) {
		rv = check_promise(rq, promise, request, progress_of, size);
		if (rv != BUTLER_OK)
			return rv;
		t = promise_find(rq, promise);
	} else {
		t = rq->current;
		if (t == NULL || t->progress == NULL
		    || size != t->progress->size)
			return BUTLER_EINVAL;
	}
	/* Nobody listens: the message is ours to destroy. */
	if (!(t->flags & TF_PROGRESS) || atomic_load(&t->state) == T_GONE)
		return destroy_const(t->progress, progress, size);
	if (t->flags & TF_LATEST)
		return post_latest(rq, t, progress, size);
	rv = push_progress(rq, t, 0, progress, size);
	if (rv == BUTLER_ECLOSED) /* the caller has finished */
		return destroy_const(t->progress, progress, size);
	return rv;
}

/* ---- cancellation, as the server sees it ------------------------------ */

static struct butler__ticket *
held(struct butler__requests *rq, uint64_t promise)
{
	return promise != 0 ? promise_find(rq, promise) : rq->current;
}

bool
butler__cancelled(struct butler__requests *rq, uint64_t promise)
{
	struct butler__ticket *t = held(rq, promise);

	if (t == NULL)
		return promise != 0;
	return atomic_load_explicit(&t->state, memory_order_relaxed) == T_GONE
	    || butler__channel_state(rq->inbox) == BUTLER__CLOSED;
}

int64_t
butler__time_left_ms(struct butler__requests *rq, uint64_t promise)
{
	struct butler__ticket *t = held(rq, promise);
	uint64_t now;

	if (t == NULL)
		return 0;
	if (t->deadline_ns == UINT64_MAX)
		return -1;
	now = butler__now_ns();
	return t->deadline_ns > now
	    ? (int64_t)((t->deadline_ns - now) / 1000000u)
	    : 0;
}

/* ---- stop ------------------------------------------------------------- */

bool
butler__requests_idle(struct butler__requests *rq)
{
	return rq->calls->count == 0 && rq->promises->count == 0
	    && rq->current == NULL;
}

void
butler__requests_counts(
    struct butler__requests *rq, uint64_t *promises, uint64_t *calls)
{
	pthread_mutex_lock(&rq->lock);
	*promises = rq->promises->count;
	*calls = rq->calls->count;
	pthread_mutex_unlock(&rq->lock);
}

void
butler__requests_finish(struct butler__requests *rq, int status)
{
	struct butler__calls *c = rq->calls;
	struct butler__promises *p = rq->promises;
	struct butler__ticket *ended = NULL;

	for (size_t i = 0; i < p->n_buckets; i++)
		while (p->bucket[i] != NULL)
			answer(promise_take(rq, p->bucket[i]->promise), status,
			    NULL, 0);
	butler__requests_take_answers(rq, butler__channel_take(rq->inbox));
	/* Take every call out first, then run the callbacks: they may make
	 * new calls (refused now) and so touch the table. */
	pthread_mutex_lock(&rq->lock);
	for (size_t i = 0; i < c->n_buckets; i++)
		while (c->bucket[i] != NULL) {
			struct butler__ticket *t = c->bucket[i];

			calls_remove(c, t);
			t->hnext = ended;
			ended = t;
		}
	pthread_mutex_unlock(&rq->lock);
	while (ended != NULL) {
		struct butler__ticket *t = ended;

		ended = t->hnext;
		end_early(rq, t, status);
	}
	if (rq->arm != NULL)
		rq->arm(rq->arm_ctx, UINT64_MAX);
}

void
butler__requests_drop_answers(struct butler__node *list)
{
	while (list != NULL) {
		struct butler__ticket *t = TICKET_OF(list);

		list = list->next;
		if (t->status == BUTLER_OK)
			destroy_payload(t->reply, t->payload);
		unref(t, NULL);
	}
}

/* ---- listings --------------------------------------------------------- */

static void
info_of(const struct butler__ticket *t, unsigned caller,
    butler__call_info_fn fn, void *ctx)
{
	struct butler__call_info info = {
		.id = t->id,
		.caller = caller,
		.server = t->server,
		.request = t->request,
		.since_ns = t->since_ns,
		.deadline_ns = t->deadline_ns,
		.deferred_by = atomic_load(&t->deferred_by),
		.deferred_ns = atomic_load(&t->deferred_ns),
	};

	if (fn != NULL)
		fn(&info, ctx);
}

size_t
butler__requests_list(
    struct butler__requests *rq, butler__call_info_fn fn, void *ctx)
{
	struct butler__calls *c = rq->calls;
	size_t n = 0;

	pthread_mutex_lock(&rq->lock);
	for (size_t i = 0; i < c->n_buckets; i++)
		for (struct butler__ticket *t = c->bucket[i]; t; t = t->hnext)
			if (atomic_load(&t->state) == T_PENDING) {
				info_of(t, rq->index, fn, ctx);
				n++;
			}
	pthread_mutex_unlock(&rq->lock);
	return n;
}

size_t
butler__waits_list(
    struct butler__reqhub *h, butler__call_info_fn fn, void *ctx)
{
	size_t n = 0;

	pthread_mutex_lock(&h->waits_lock);
	for (struct butler__ticket *t = h->waits; t != NULL; t = t->wnext)
		if (atomic_load(&t->state) == T_PENDING) {
			info_of(t, UINT32_MAX, fn, ctx);
			n++;
		}
	pthread_mutex_unlock(&h->waits_lock);
	return n;
}
