/*
 * hub.c — the hub's lifecycle (new, handlers, start, stop, free), the send
 * entry points, and statistics.
 */
#include "internal.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/thread.h>

/* Defaults for one loop turn of a threaded server: enough messages to make
 * the loop's own cost (a poll and a timer) negligible, little enough time
 * that the server's timers and I/O stay responsive. */
#define DEFAULT_BATCH_MAX 4096u
#define DEFAULT_BATCH_BUDGET_NS 1000000u

/* Hub serial numbers only tell a new hub from a freed one at the same
 * address in the per-thread lane caches; no other state is shared. */
static atomic_uint_fast64_t next_serial = 1;
static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;
static int evthread_result;

static void
init_evthread(void)
{
	/* libevent requires this before any event_base exists (thread.h);
	 * it lets users add events to a server's base from other threads. */
	evthread_result = evthread_use_pthreads();
}

/* ---- construction ----------------------------------------------------- */

static int
check_spec(const butler_spec *spec, size_t *max_payload, unsigned *n_inst)
{
	unsigned i, k;

	if (spec == NULL)
		return BUTLER_EINVAL;
	if (spec->abi != BUTLER_GEN_ABI)
		return BUTLER_EABI;
	if (spec->n_servers == 0 || spec->servers == NULL
	    || (spec->n_messages > 0 && spec->messages == NULL)
	    || spec->n_messages > UINT16_MAX)
		return BUTLER_EINVAL;
	*max_payload = 0;
	for (i = 0; i < spec->n_messages; i++) {
		const butler_msg_desc *m = &spec->messages[i];

		if (m->size > (1u << 20) || m->reply >= (int)spec->n_messages
		    || m->progress >= (int)spec->n_messages)
			return BUTLER_EINVAL;
		if (m->size > *max_payload)
			*max_payload = m->size;
	}
	*n_inst = 0;
	for (i = 0; i < spec->n_servers; i++) {
		const butler_server_desc *s = &spec->servers[i];

		if (s->name == NULL || s->instances == 0 || s->instances > 4096
		    || s->capacity == 0 || s->dispatch == NULL
		    || s->handlers_size == 0 || s->n_accepts > UINT16_MAX
		    || (s->n_accepts > 0 && s->accepts == NULL)
		    || (s->loop == BUTLER_LOOP_EXTERNAL && s->instances != 1))
			return BUTLER_EINVAL;
		for (k = 0; k < s->n_accepts; k++)
			if (s->accepts[k] >= spec->n_messages)
				return BUTLER_EINVAL;
		*n_inst += s->instances;
	}
	return BUTLER_OK;
}

static int
server_new(struct butler_hub *hub, unsigned id, unsigned instance,
    size_t max_payload, struct butler_server **out)
{
	const butler_server_desc *desc = &hub->spec->servers[id];
	size_t size = (sizeof(struct butler_server) + BUTLER__CACHE_LINE - 1)
	    & ~(size_t)(BUTLER__CACHE_LINE - 1);
	struct butler_server *srv = aligned_alloc(BUTLER__CACHE_LINE, size);
	int rv;

	if (srv == NULL)
		return BUTLER_ENOMEM;
	memset(srv, 0, sizeof *srv);
	srv->hub = hub;
	srv->desc = desc;
	srv->handlers = &hub->handlers[id];
	srv->id = id;
	srv->instance = instance;
	srv->max_payload = max_payload;
	srv->next_request_id = 1;
	if (pthread_mutex_init(&srv->pending_lock, NULL) != 0) {
		free(srv);
		return BUTLER_ESYS;
	}
	srv->kind_msg = calloc(desc->n_accepts + 1, sizeof *srv->kind_msg);
	if (srv->kind_msg == NULL) {
		pthread_mutex_destroy(&srv->pending_lock);
		free(srv);
		return BUTLER_ENOMEM;
	}
	for (unsigned k = 0; k < desc->n_accepts; k++)
		srv->kind_msg[k + 1] = &hub->spec->messages[desc->accepts[k]];
	/* Thread names are at most 15 bytes: keep the server's name and,
	 * for a pool, the instance number. */
	if (desc->instances > 1)
		snprintf(srv->name, sizeof srv->name, "%.10s/%u", desc->name,
		    instance % 10000u);
	else
		snprintf(srv->name, sizeof srv->name, "%s", desc->name);
	rv = butler__channel_init(&srv->ch, desc->capacity,
	    butler__rec_round(sizeof(struct butler__rec)
	        + sizeof(struct butler__req_hdr) + max_payload));
	if (rv != BUTLER_OK) {
		pthread_mutex_destroy(&srv->pending_lock);
		free(srv->kind_msg);
		free(srv);
		return rv;
	}
	*out = srv;
	return BUTLER_OK;
}

static void
server_free(struct butler_server *srv)
{
	if (srv == NULL)
		return;
	butler__channel_release(&srv->ch, butler__drop, srv);
	butler__request_free(srv);
	pthread_mutex_destroy(&srv->pending_lock);
	free(srv->kind_msg);
	free(srv);
}

static void
free_routes(struct butler_hub *hub)
{
	unsigned i;

	if (hub->route == NULL)
		return;
	for (i = 0; i < hub->spec->n_servers; i++)
		free((void *)hub->route[i].kind_size);
	free(hub->route);
	hub->route = NULL;
}

/* Precomputes, per spec server, what every send checks. */
static int
init_routes(struct butler_hub *hub)
{
	const butler_spec *spec = hub->spec;
	unsigned i, k, at = 0;

	for (i = 0; i < spec->n_servers; i++) {
		const butler_server_desc *s = &spec->servers[i];
		struct butler__route *r = &hub->route[i];
		size_t *sizes = calloc(s->n_accepts + 1, sizeof *sizes);

		if (sizes == NULL)
			return BUTLER_ENOMEM;
		for (k = 0; k < s->n_accepts; k++)
			sizes[k + 1] = spec->messages[s->accepts[k]].size;
		r->kind_size = sizes;
		r->n_kinds = s->n_accepts;
		r->first = at;
		r->n = s->instances;
		r->block = s->full == BUTLER_FULL_BLOCK;
		r->block_ms = s->block_timeout_ms;
		at += s->instances;
	}
	return BUTLER_OK;
}

int
butler_hub_new(butler_hub **out, const butler_spec *spec)
{
	struct butler_hub *hub;
	size_t max_payload;
	unsigned n_inst, i, k, at = 0;
	int rv;

	if (out == NULL)
		return BUTLER_EINVAL;
	*out = NULL;
	rv = check_spec(spec, &max_payload, &n_inst);
	if (rv != BUTLER_OK)
		return rv;
	if (pthread_once(&evthread_once, init_evthread) != 0
	    || evthread_result != 0)
		return BUTLER_ESYS;

	hub = calloc(1, sizeof *hub);
	if (hub == NULL)
		return BUTLER_ENOMEM;
	hub->spec = spec;
	hub->serial = atomic_fetch_add(&next_serial, 1);
	hub->log_fn = butler__log_stderr;
	hub->log_level = BUTLER_LOG_WARN;
	hub->batch_max = DEFAULT_BATCH_MAX;
	hub->batch_budget_ns = DEFAULT_BATCH_BUDGET_NS;
	atomic_init(&hub->state, BUTLER__HUB_NEW);
	rv = BUTLER_ENOMEM;
	hub->inst = calloc(n_inst, sizeof *hub->inst);
	hub->first_inst = calloc(spec->n_servers, sizeof *hub->first_inst);
	hub->handlers = calloc(spec->n_servers, sizeof *hub->handlers);
	hub->route = calloc(spec->n_servers, sizeof *hub->route);
	if (hub->inst == NULL || hub->first_inst == NULL
	    || hub->handlers == NULL || hub->route == NULL
	    || init_routes(hub) != BUTLER_OK)
		goto out_free;
	rv = BUTLER_ESYS;
	if (pthread_mutex_init(&hub->lock, NULL) != 0)
		goto out_free;
	if (pthread_mutex_init(&hub->stop_lock, NULL) != 0)
		goto out_lock;
	if (pthread_cond_init(&hub->cond, NULL) != 0)
		goto out_stop_lock;
	for (i = 0; i < spec->n_servers; i++) {
		hub->first_inst[i] = at;
		for (k = 0; k < spec->servers[i].instances; k++, at++) {
			rv = server_new(
			    hub, i, k, max_payload, &hub->inst[at]);
			if (rv != BUTLER_OK)
				goto out_servers;
			hub->inst[at]->index = at;
		}
	}
	hub->n_inst = n_inst;
	*out = hub;
	return BUTLER_OK;

out_servers:
	for (i = 0; i < at; i++)
		server_free(hub->inst[i]);
	pthread_cond_destroy(&hub->cond);
out_stop_lock:
	pthread_mutex_destroy(&hub->stop_lock);
out_lock:
	pthread_mutex_destroy(&hub->lock);
out_free:
	free_routes(hub);
	free(hub->inst);
	free(hub->first_inst);
	free(hub->handlers);
	free(hub);
	return rv;
}

void
butler_hub_free(butler_hub *hub)
{
	unsigned i;

	struct butler_server *self = butler_server_self();

	if (hub == NULL)
		return;
	if (self != NULL && self->hub == hub) {
		/* Freeing under our own feet would crash every thread: leak,
		 * loudly, instead. */
		butler__log(hub, BUTLER_LOG_ERROR,
		    "butler_hub_free called from server '%s' of the same hub; "
		    "not freed",
		    self->name);
		return;
	}
	(void)butler_hub_stop(hub, BUTLER_STOP_DISCARD);
	for (i = 0; i < hub->n_inst; i++)
		server_free(hub->inst[i]);
	for (i = 0; i < hub->spec->n_servers; i++)
		free(hub->handlers[i].table);
	pthread_cond_destroy(&hub->cond);
	pthread_mutex_destroy(&hub->stop_lock);
	pthread_mutex_destroy(&hub->lock);
	butler__tls_forget(hub);
	free_routes(hub);
	free(hub->inst);
	free(hub->first_inst);
	free(hub->handlers);
	free(hub);
}

int
butler_hub_set_handlers(butler_hub *hub, unsigned server, const void *handlers,
    size_t size, butler_start_fn on_start, butler_stop_fn on_stop, void *user)
{
	struct butler__handlers *h;
	void *copy;

	if (hub == NULL || server >= hub->spec->n_servers || handlers == NULL
	    || size != hub->spec->servers[server].handlers_size)
		return BUTLER_EINVAL;
	if (atomic_load(&hub->state) != BUTLER__HUB_NEW)
		return BUTLER_ESTATE;
	copy = malloc(size);
	if (copy == NULL)
		return BUTLER_ENOMEM;
	memcpy(copy, handlers, size);
	h = &hub->handlers[server];
	free(h->table);
	h->table = copy;
	h->on_start = on_start;
	h->on_stop = on_stop;
	h->user = user;
	h->set = true;
	return BUTLER_OK;
}

int
butler_hub_set_spin(butler_hub *hub, unsigned server, unsigned spin_us)
{
	const struct butler__route *r;

	if (hub == NULL || server >= hub->spec->n_servers
	    || hub->spec->servers[server].loop != BUTLER_LOOP_THREAD
	    || spin_us > 1000000u)
		return BUTLER_EINVAL;
	if (atomic_load(&hub->state) != BUTLER__HUB_NEW)
		return BUTLER_ESTATE;
	r = &hub->route[server];
	for (unsigned i = 0; i < r->n; i++)
		hub->inst[r->first + i]->spin_ns = (uint64_t)spin_us * 1000u;
	return BUTLER_OK;
}

void
butler_hub_set_log(
    butler_hub *hub, butler_log_fn fn, butler_log_level max_level, void *user)
{
	if (hub == NULL || atomic_load(&hub->state) != BUTLER__HUB_NEW)
		return;
	hub->log_fn = fn;
	hub->log_level = max_level;
	hub->log_user = user;
}

unsigned
butler_server_count(const butler_hub *hub)
{
	return hub != NULL ? hub->spec->n_servers : 0;
}

/* ---- start and stop --------------------------------------------------- */

static int
check_handlers(struct butler_hub *hub)
{
	unsigned i;

	for (i = 0; i < hub->spec->n_servers; i++) {
		const butler_server_desc *s = &hub->spec->servers[i];
		const struct butler__handlers *h = &hub->handlers[i];
		const char *missing = NULL;

		if (!h->set) {
			butler__log(hub, BUTLER_LOG_ERROR,
			    "server '%s' has no handler table", s->name);
			return BUTLER_ENOHANDLER;
		}
		if (s->check != NULL)
			missing = s->check(h->table);
		if (missing != NULL) {
			butler__log(hub, BUTLER_LOG_ERROR,
			    "server '%s' has no handler for '%s'", s->name,
			    missing);
			return BUTLER_ENOHANDLER;
		}
	}
	return BUTLER_OK;
}

/*
 * become_consumer waits until no other thread drains srv and takes its
 * place; an external server's owner may be inside butler_server_drain().
 */
static void
become_consumer(struct butler_server *srv)
{
	while (atomic_exchange(&srv->ch.draining, 1))
		sched_yield();
}

static void
leave_consumer(struct butler_server *srv)
{
	atomic_store(&srv->ch.draining, 0);
}

/* Destroys what late senders queued and closes threaded servers' fds. */
static void
sweep(struct butler_hub *hub)
{
	unsigned i;

	for (i = 0; i < hub->n_inst; i++) {
		struct butler_server *srv = hub->inst[i];
		bool more;

		become_consumer(srv);
		(void)butler__channel_drain(&srv->ch, UINT32_MAX, UINT64_MAX,
		    false, butler__drop, srv, &more);
		leave_consumer(srv);
		/* An external server's fd may still sit in its owner's poll
		 * set; it is closed by butler_hub_free(). */
		if (srv->desc->loop == BUTLER_LOOP_THREAD)
			butler__channel_close_fd(&srv->ch);
	}
}

static void
close_all(struct butler_hub *hub)
{
	unsigned i;

	for (i = 0; i < hub->n_inst; i++) {
		butler__channel_close(&hub->inst[i]->ch);
		if (hub->inst[i]->desc->loop == BUTLER_LOOP_THREAD)
			butler__channel_ring(&hub->inst[i]->ch);
	}
}

/* Runs on_start of external servers on the calling thread. */
static int
start_external(struct butler_server *srv)
{
	struct butler_server *outer = butler_server_self();
	int rv = BUTLER_OK;

	atomic_store(&srv->owner, butler__thread_token());
	if (srv->handlers->on_start != NULL) {
		butler__set_current(srv);
		rv = srv->handlers->on_start(srv, srv->handlers->user);
		butler__set_current(outer);
	}
	srv->start_result = rv;
	srv->start_reported = true;
	return rv;
}

static void
finish_external(struct butler_server *srv, butler_stop_policy policy)
{
	struct butler_server *outer = butler_server_self();

	become_consumer(srv);
	butler__set_current(srv);
	butler__server_finish(srv, policy);
	butler__set_current(outer);
	leave_consumer(srv);
}

int
butler_hub_start(butler_hub *hub)
{
	unsigned i;
	int rv, first_failure = BUTLER_OK;

	if (hub == NULL)
		return BUTLER_EINVAL;
	pthread_mutex_lock(&hub->stop_lock);
	if (atomic_load(&hub->state) != BUTLER__HUB_NEW) {
		rv = BUTLER_ESTATE;
		goto out;
	}
	rv = check_handlers(hub);
	if (rv != BUTLER_OK)
		goto out;
	atomic_store(&hub->state, BUTLER__HUB_STARTING);
	hub->gate = BUTLER__GATE_WAIT;
	hub->policy = BUTLER_STOP_DISCARD;

	for (i = 0; i < hub->n_inst; i++) {
		struct butler_server *srv = hub->inst[i];

		if (srv->desc->loop == BUTLER_LOOP_EXTERNAL)
			continue;
		rv = butler__server_spawn(srv);
		if (rv != BUTLER_OK) {
			butler__log(hub, BUTLER_LOG_ERROR,
			    "server '%s': cannot start its thread", srv->name);
			srv->start_result = rv;
			srv->start_reported = true;
		}
	}
	for (i = 0; i < hub->n_inst; i++)
		if (hub->inst[i]->desc->loop == BUTLER_LOOP_EXTERNAL)
			(void)start_external(hub->inst[i]);

	/* Every instance reports before anything runs, so a failure leaves
	 * no handler having seen a message. */
	pthread_mutex_lock(&hub->lock);
	for (i = 0; i < hub->n_inst; i++) {
		while (!hub->inst[i]->start_reported)
			pthread_cond_wait(&hub->cond, &hub->lock);
		if (first_failure == BUTLER_OK)
			first_failure = hub->inst[i]->start_result;
	}
	if (first_failure != BUTLER_OK)
		close_all(hub);
	hub->gate = first_failure == BUTLER_OK ? BUTLER__GATE_GO
	                                       : BUTLER__GATE_ABORT;
	pthread_cond_broadcast(&hub->cond);
	pthread_mutex_unlock(&hub->lock);

	if (first_failure == BUTLER_OK) {
		atomic_store(&hub->state, BUTLER__HUB_RUNNING);
		rv = BUTLER_OK;
		goto out;
	}
	for (i = 0; i < hub->n_inst; i++) {
		struct butler_server *srv = hub->inst[i];

		if (srv->desc->loop == BUTLER_LOOP_EXTERNAL
		    && srv->start_result == BUTLER_OK)
			finish_external(srv, BUTLER_STOP_DISCARD);
		butler__server_join(srv);
	}
	sweep(hub);
	atomic_store(&hub->state, BUTLER__HUB_STOPPED);
	rv = first_failure;
out:
	pthread_mutex_unlock(&hub->stop_lock);
	return rv;
}

int
butler_hub_stop(butler_hub *hub, butler_stop_policy policy)
{
	struct butler_server *self = butler_server_self();
	unsigned i;
	int state;

	if (hub == NULL
	    || (policy != BUTLER_STOP_DRAIN && policy != BUTLER_STOP_DISCARD))
		return BUTLER_EINVAL;
	if (self != NULL && self->hub == hub)
		return BUTLER_EDEADLK;
	pthread_mutex_lock(&hub->stop_lock);
	state = atomic_load(&hub->state);
	if (state == BUTLER__HUB_STOPPED)
		goto out;
	atomic_store(&hub->state, BUTLER__HUB_STOPPING);
	hub->policy = policy;
	close_all(hub);
	if (state == BUTLER__HUB_RUNNING) {
		for (i = 0; i < hub->n_inst; i++)
			if (hub->inst[i]->desc->loop == BUTLER_LOOP_EXTERNAL)
				finish_external(hub->inst[i], policy);
		for (i = 0; i < hub->n_inst; i++)
			butler__server_join(hub->inst[i]);
	}
	sweep(hub);
	atomic_store(&hub->state, BUTLER__HUB_STOPPED);
out:
	pthread_mutex_unlock(&hub->stop_lock);
	return BUTLER_OK;
}

/* ---- sending ---------------------------------------------------------- */

/*
 * push copies one record into instance dst through the calling thread's
 * lane. Inline: it is the whole fast path of a send.
 */
static inline __attribute__((always_inline)) int
push(struct butler_hub *hub, struct butler_server *dst, unsigned kind,
    unsigned flags, const struct butler__req_hdr *req, const void *msg,
    size_t size, bool check_room, bool may_block, int timeout_ms)
{
	size_t header = sizeof(struct butler__rec)
	    + (req != NULL ? sizeof(struct butler__req_hdr) : 0);
	size_t rec_size = butler__rec_round(header + size);
	struct butler__lane_cache *c = &butler__tls.way[0];
	struct butler__lane *lane;
	struct butler__rec *rec;
	int err;

	if (c->hub != hub || c->serial != hub->serial
	    || (lane = c->lanes[dst->index]) == NULL) {
		lane = butler__lane_for(hub, dst);
		if (lane == NULL)
			return BUTLER_ENOMEM;
	}
	/* Waiting for room in our own inbox would wait forever. */
	if (may_block && butler_server_self() == dst)
		may_block = false;
	rec = butler__channel_reserve(
	    &dst->ch, lane, rec_size, check_room, may_block, timeout_ms, &err);
	if (rec == NULL)
		return err;
	rec->size = (uint32_t)rec_size;
	rec->kind = (uint16_t)kind;
	rec->flags = (uint16_t)flags;
	if (req != NULL)
		memcpy(rec + 1, req, sizeof *req);
	memcpy((unsigned char *)rec + header, msg, size);
	butler__channel_commit(&dst->ch, lane, rec_size);
	return BUTLER_OK;
}

int
butler__push(struct butler_hub *hub, struct butler_server *dst, unsigned kind,
    unsigned flags, const struct butler__req_hdr *req, const void *msg,
    size_t size, bool check_room, bool may_block, int timeout_ms)
{
	if (size == 0)
		msg = &size; /* memcpy wants a valid pointer even for 0 bytes
		              */
	return push(hub, dst, kind, flags, req, msg, size, check_room,
	    may_block, timeout_ms);
}

/*
 * Sends to server `server`, choosing the pool instance: round-robin from a
 * per-thread cursor, skipping instances that are full, and applying the
 * full policy only when every instance is full.
 */
/* send_to's block_ms that means "as the server's full policy says". */
#define SERVER_POLICY (-2)

static inline __attribute__((always_inline)) int
send_to(struct butler_hub *hub, unsigned server, unsigned kind,
    const void *msg, size_t size, const struct butler__req_hdr *req,
    int block_ms)
{
	const struct butler__route *r;
	unsigned flags = req != NULL ? BUTLER__REC_REQUEST : 0, pick = 0, i;
	bool may_block = true;
	int rv = BUTLER_EINVAL;

	if (hub == NULL || server >= hub->spec->n_servers)
		return BUTLER_EINVAL;
	r = &hub->route[server];
	if (kind == 0 || kind > r->n_kinds || size != r->kind_size[kind]
	    || msg == NULL)
		return BUTLER_EINVAL;
	if (block_ms == SERVER_POLICY) {
		may_block = r->block;
		block_ms = r->block_ms;
	}
	if (r->n == 1)
		return push(hub, hub->inst[r->first], kind, flags, req, msg,
		    size, true, may_block, block_ms);
	pick = butler__rr_next(hub, server) % r->n;
	for (i = 0; i < r->n; i++) {
		rv = push(hub, hub->inst[r->first + (pick + i) % r->n], kind,
		    flags, req, msg, size, true, false, 0);
		if (rv != BUTLER_EFULL)
			return rv;
	}
	if (may_block)
		rv = push(hub, hub->inst[r->first + pick], kind, flags, req,
		    msg, size, true, true, block_ms);
	return rv;
}

int
butler__send_request(struct butler_hub *hub, unsigned server, unsigned kind,
    const void *msg, size_t size, const struct butler__req_hdr *req)
{
	return send_to(hub, server, kind, msg, size, req, SERVER_POLICY);
}

int
butler_send(butler_hub *hub, unsigned server, unsigned kind, const void *msg,
    size_t size)
{
	return send_to(hub, server, kind, msg, size, NULL, SERVER_POLICY);
}

int
butler_send_timeout(butler_hub *hub, unsigned server, unsigned kind,
    const void *msg, size_t size, int timeout_ms)
{
	return send_to(hub, server, kind, msg, size, NULL,
	    timeout_ms < 0 ? -1 : timeout_ms);
}

/* ---- statistics ------------------------------------------------------- */

static void
add_stats(struct butler__channel *ch, butler_stats *out)
{
	struct butler__lane *lane;

	pthread_mutex_lock(&ch->lanes_lock);
	for (lane = atomic_load(&ch->lanes); lane != NULL;
	     lane = atomic_load(&lane->next)) {
		out->sent
		    += atomic_load_explicit(&lane->tail, memory_order_acquire);
		out->rejected += atomic_load_explicit(
		    &lane->rejected, memory_order_relaxed);
		out->depth += butler__lane_depth(lane);
	}
	pthread_mutex_unlock(&ch->lanes_lock);
	out->sent
	    += atomic_load_explicit(&ch->sent_reclaimed, memory_order_relaxed);
	out->rejected += atomic_load_explicit(
	    &ch->rejected_reclaimed, memory_order_relaxed);
	out->handled
	    += atomic_load_explicit(&ch->handled, memory_order_relaxed);
	out->failed += atomic_load_explicit(&ch->failed, memory_order_relaxed);
	out->dropped
	    += atomic_load_explicit(&ch->dropped, memory_order_relaxed);
	out->wakeups
	    += atomic_load_explicit(&ch->wakeups, memory_order_relaxed);
	out->handler_ns
	    += atomic_load_explicit(&ch->handler_ns, memory_order_relaxed);
	out->high_water
	    += atomic_load_explicit(&ch->high_water, memory_order_relaxed);
}

int
butler_server_stats(butler_hub *hub, unsigned server, butler_stats *out)
{
	unsigned i;

	if (hub == NULL || out == NULL || server >= hub->spec->n_servers)
		return BUTLER_EINVAL;
	memset(out, 0, sizeof *out);
	for (i = 0; i < hub->spec->servers[server].instances; i++)
		add_stats(&hub->inst[hub->first_inst[server] + i]->ch, out);
	if (out->depth > out->high_water)
		out->high_water = out->depth;
	return BUTLER_OK;
}
