/*
 * server.c — running one server instance: the thread and its libevent loop
 * for threaded servers, the drain for external-loop servers, and what
 * happens to each record (handle it, or destroy it unhandled).
 */
#include "internal.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

static _Thread_local struct butler_server *current;

void
butler__set_current(struct butler_server *srv)
{
	current = srv;
}

butler_server *
butler_server_self(void)
{
	return current;
}

/* Its address is unique to each thread: a thread identity that fits in an
 * atomic, unlike pthread_t. */
static _Thread_local char thread_token;

uintptr_t
butler__thread_token(void)
{
	return (uintptr_t)&thread_token;
}

struct butler_server *
butler__caller(struct butler_hub *hub)
{
	uintptr_t me = butler__thread_token();
	unsigned i;

	if (current != NULL)
		return current;
	for (i = 0; i < hub->n_inst; i++)
		if (hub->inst[i]->desc->loop == BUTLER_LOOP_EXTERNAL
		    && atomic_load(&hub->inst[i]->owner) == me)
			return hub->inst[i];
	return NULL;
}

/* ---- records ---------------------------------------------------------- */

static const butler_msg_desc *
rec_msg(const struct butler_server *srv, const struct butler__rec *rec)
{
	const butler_spec *spec = srv->hub->spec;

	if (rec->flags & BUTLER__REC_REPLY)
		return rec->kind < spec->n_messages
		    ? &spec->messages[rec->kind]
		    : NULL;
	return srv->kind_msg[rec->kind];
}

/* Frees a record's owned fields; the record's bytes stay in the lane. */
static inline void
destroy_payload(const butler_msg_desc *msg, struct butler__rec *rec)
{
	size_t header = (size_t)((unsigned char *)butler__rec_payload(rec)
	    - (unsigned char *)rec);

	if (msg != NULL && msg->destroy != NULL && rec->size > header)
		msg->destroy(butler__rec_payload(rec));
}

/* butler__consume handles one record on the consumer's thread. */
void
butler__consume(void *ctx, struct butler__rec *rec)
{
	struct butler_server *srv = ctx;
	const struct butler__handlers *h = srv->handlers;
	const butler_msg_desc *msg = rec_msg(srv, rec);
	int rv;

	if (rec->flags & BUTLER__REC_REPLY) {
		if (butler__request_progress_rec(srv, rec, true))
			return;
		butler__request_on_reply(srv, rec);
		destroy_payload(msg, rec);
		return;
	}
	if (rec->flags & BUTLER__REC_REQUEST) {
		srv->current_req = butler__rec_req(rec);
		srv->current_req_reply = msg->reply; /* message index */
		srv->current_req_progress = msg->progress;
		srv->current_req_latest
		    = (msg->flags & BUTLER_MSG_PROGRESS_LATEST) != 0;
		srv->current_req_answered = false;
	}
	rv = srv->desc->dispatch(
	    srv, h->table, h->user, rec->kind, butler__rec_payload(rec));
	if (rv == 0) {
		butler__count(&srv->ch.handled, 1);
	} else {
		butler__count(&srv->ch.failed, 1);
		butler__log(srv->hub, BUTLER_LOG_WARN,
		    "server '%s': handler for '%s' failed: %s (%d)", srv->name,
		    msg->name, butler_strerror(rv), rv);
	}
	if (rec->flags & BUTLER__REC_REQUEST) {
		butler__request_after_handler(srv, rv);
		srv->current_req = NULL;
	}
	destroy_payload(msg, rec);
}

/* butler__drop destroys one record unhandled (stop, or a late sender). */
void
butler__drop(void *ctx, struct butler__rec *rec)
{
	struct butler_server *srv = ctx;
	const butler_msg_desc *msg = rec_msg(srv, rec);

	if (rec->flags & BUTLER__REC_REPLY) {
		/* Our own request's answer, arriving as we stop: the request
		 * is failed with ECLOSED by butler__request_fail_all. */
		if (!butler__request_progress_rec(srv, rec, false))
			destroy_payload(msg, rec);
		return;
	}
	if (rec->flags & BUTLER__REC_REQUEST)
		butler__request_refuse(
		    srv, butler__rec_req(rec), BUTLER_ECLOSED);
	destroy_payload(msg, rec);
	butler__count(&srv->ch.dropped, 1);
}

/*
 * butler__server_finish applies the stop policy to what is queued and runs
 * on_stop, on the consumer's thread (or the stopping thread for external
 * servers). Requests this server made are answered with ECLOSED first.
 */
void
butler__server_finish(struct butler_server *srv, butler_stop_policy policy)
{
	bool more;

	(void)butler__channel_drain(&srv->ch, UINT32_MAX, UINT64_MAX, false,
	    policy == BUTLER_STOP_DRAIN ? butler__consume : butler__drop, srv,
	    &more);
	butler__request_fail_all(srv, BUTLER_ECLOSED);
	if (srv->handlers->on_stop != NULL)
		srv->handlers->on_stop(srv, srv->handlers->user);
}

/* ---- threaded servers ------------------------------------------------- */

static void
process(struct butler_server *srv)
{
	struct butler_hub *hub = srv->hub;
	bool more;

	if (atomic_load(&srv->ch.closed)) {
		event_base_loopbreak(srv->base);
		return;
	}
	(void)butler__channel_drain(&srv->ch, hub->batch_max,
	    hub->batch_budget_ns, true, butler__consume, srv, &more);
	/* Spin policy: before paying for a sleep and a wake-up, watch the
	 * lanes for a moment; work that arrives is drained right here. The
	 * whole turn stays within the batch budget, so timers keep their
	 * turn. An idle server still sleeps: the spin follows work only. */
	if (srv->spin_ns > 0 && !more) {
		uint64_t start = butler__now_ns(),
		         until = start + srv->spin_ns;

		while (!more && butler__spin_for_work(&srv->ch, until)
		    && !atomic_load(&srv->ch.closed)) {
			(void)butler__channel_drain(&srv->ch, hub->batch_max,
			    hub->batch_budget_ns, true, butler__consume, srv,
			    &more);
			until = butler__now_ns() + srv->spin_ns;
			if (until - start
			    > hub->batch_budget_ns + srv->spin_ns)
				more = true; /* yield to the loop now */
		}
	}
	if (atomic_load(&srv->ch.closed)) {
		event_base_loopbreak(srv->base);
		return;
	}
	/* Yield to the loop so its timers and I/O run, and come back on the
	 * next turn: a zero timeout fires after the loop has polled, unlike
	 * event_active(), which would run again before anything else. */
	if (more || !butler__channel_idle(&srv->ch)) {
		static const struct timeval zero = { 0, 0 };
		event_add(srv->rearm_ev, &zero);
	}
}

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct butler_server *srv = arg;

	(void)fd;
	(void)what;
	butler__channel_ack(&srv->ch);
	process(srv);
}

static void
on_rearm(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	process(arg);
}

static void
on_request_timer(evutil_socket_t fd, short what, void *arg)
{
	struct butler_server *srv = arg;

	(void)fd;
	(void)what;
	butler__request_expire(srv, butler__now_ns());
}

/* Reports on_start's result and waits for the hub's go or abort. */
static bool
report_start(struct butler_server *srv, int result)
{
	struct butler_hub *hub = srv->hub;
	bool go;

	pthread_mutex_lock(&hub->lock);
	srv->start_result = result;
	srv->start_reported = true;
	pthread_cond_broadcast(&hub->cond);
	while (hub->gate == BUTLER__GATE_WAIT)
		pthread_cond_wait(&hub->cond, &hub->lock);
	go = hub->gate == BUTLER__GATE_GO;
	pthread_mutex_unlock(&hub->lock);
	return go;
}

static int
loop_setup(struct butler_server *srv)
{
	srv->base = event_base_new();
	if (srv->base == NULL)
		return BUTLER_ESYS;
	srv->wake_ev = event_new(
	    srv->base, srv->ch.fd, EV_READ | EV_PERSIST, on_wake, srv);
	srv->rearm_ev = evtimer_new(srv->base, on_rearm, srv);
	srv->request_timer = evtimer_new(srv->base, on_request_timer, srv);
	if (srv->wake_ev == NULL || srv->rearm_ev == NULL
	    || srv->request_timer == NULL
	    || event_add(srv->wake_ev, NULL) != 0)
		return BUTLER_ESYS;
	return BUTLER_OK;
}

static void
loop_teardown(struct butler_server *srv)
{
	if (srv->request_timer != NULL)
		event_free(srv->request_timer);
	if (srv->rearm_ev != NULL)
		event_free(srv->rearm_ev);
	if (srv->wake_ev != NULL)
		event_free(srv->wake_ev);
	if (srv->base != NULL)
		event_base_free(srv->base);
	srv->request_timer = srv->rearm_ev = srv->wake_ev = NULL;
	srv->base = NULL;
}

static void *
server_main(void *arg)
{
	struct butler_server *srv = arg;
	const struct butler__handlers *h = srv->handlers;
	int rv;

	(void)pthread_setname_np(pthread_self(), srv->name);
	butler__set_current(srv);
	rv = loop_setup(srv);
	if (rv != BUTLER_OK)
		butler__log(srv->hub, BUTLER_LOG_ERROR,
		    "server '%s': cannot set up its libevent loop", srv->name);
	else if (h->on_start != NULL)
		rv = h->on_start(srv, h->user);
	if (rv != BUTLER_OK && rv != BUTLER_ESYS)
		butler__log(srv->hub, BUTLER_LOG_ERROR,
		    "server '%s': on_start failed: %s (%d)", srv->name,
		    butler_strerror(rv), rv);

	if (report_start(srv, rv)) {
		/* Anything queued before the start is waiting for us. */
		process(srv);
		event_base_dispatch(srv->base);
	}
	if (rv == BUTLER_OK)
		butler__server_finish(srv, srv->hub->policy);
	loop_teardown(srv);
	butler__set_current(NULL);
	return NULL;
}

int
butler__server_spawn(struct butler_server *srv)
{
	sigset_t all, old;
	int rc;

	/* Server threads take no asynchronous signals: a Ctrl-C belongs to
	 * the application's own thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&srv->thread, NULL, server_main, srv);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return BUTLER_ESYS;
	srv->thread_started = true;
	return BUTLER_OK;
}

void
butler__server_join(struct butler_server *srv)
{
	if (srv->thread_started) {
		pthread_join(srv->thread, NULL);
		srv->thread_started = false;
	}
}

/* ---- accessors and external servers ----------------------------------- */

butler_hub *
butler_server_hub(const butler_server *self)
{
	return self->hub;
}

unsigned
butler_server_id(const butler_server *self)
{
	return self->id;
}

unsigned
butler_server_instance(const butler_server *self)
{
	return self->instance;
}

const char *
butler_server_name(const butler_server *self)
{
	return self->desc->name;
}

struct event_base *
butler_server_base(butler_server *self)
{
	return self->base;
}

static struct butler_server *
external(butler_hub *hub, unsigned server)
{
	if (hub == NULL || server >= hub->spec->n_servers
	    || hub->spec->servers[server].loop != BUTLER_LOOP_EXTERNAL)
		return NULL;
	return hub->inst[hub->first_inst[server]];
}

int
butler_server_fd(butler_hub *hub, unsigned server)
{
	struct butler_server *srv = external(hub, server);

	return srv != NULL ? srv->ch.fd : -1;
}

int
butler_server_drain(
    butler_hub *hub, unsigned server, unsigned max, unsigned *handled)
{
	struct butler_server *srv = external(hub, server), *outer;
	unsigned n = 0;
	int state, rv = BUTLER_OK;
	bool more;

	if (handled != NULL)
		*handled = 0;
	if (srv == NULL)
		return BUTLER_EINVAL;
	state = atomic_load(&hub->state);
	if (state < BUTLER__HUB_RUNNING)
		return BUTLER_ESTATE;
	if (atomic_exchange(&srv->ch.draining, 1))
		return BUTLER_EBUSY;
	if (atomic_load(&srv->ch.closed)) {
		rv = BUTLER_ECLOSED;
		goto out;
	}
	outer = current;
	butler__set_current(srv);
	atomic_store(&srv->owner, butler__thread_token());
	butler__channel_ack(&srv->ch);
	butler__request_expire(srv, butler__now_ns());
	n = butler__channel_drain(&srv->ch, max ? max : hub->batch_max,
	    hub->batch_budget_ns, true, butler__consume, srv, &more);
	/* Work left (or a sender that slipped in while we went idle): keep
	 * the fd readable so the owner's loop comes back. */
	if (more || !butler__channel_idle(&srv->ch))
		butler__channel_ring(&srv->ch);
	butler__set_current(outer);
out:
	atomic_store(&srv->ch.draining, 0);
	if (handled != NULL)
		*handled = n;
	return rv;
}

int
butler_server_next_timeout(butler_hub *hub, unsigned server)
{
	struct butler_server *srv = external(hub, server);

	if (srv == NULL)
		return -1;
	return butler__request_next_timeout_ms(srv, butler__now_ns());
}
