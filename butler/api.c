/* SPDX-License-Identifier: MIT */
/*
 * api.c — the public messaging functions of butler/hub.h: each checks its
 * arguments and the calling thread, then hands the work to the unit that
 * owns it (send.c, request.c, server.c).
 */
#include "hub_internal.h"

#include <string.h>

/* ---- sending ---------------------------------------------------------- */

int
butler_send(butler_hub *hub, unsigned server, unsigned kind, const void *msg,
    size_t size)
{
	int rv;

	if (hub == NULL || msg == NULL)
		return BUTLER_EINVAL;
	rv = butler__send_fast(&hub->router, server, kind, msg, size);
	if (__builtin_expect(rv == BUTLER_OK, 1))
		return rv;
	return butler__send_message(
	    &hub->router, server, kind, msg, size, BUTLER__SERVER_POLICY);
}

int
butler_send_spec(butler_hub *hub, const butler_spec *spec, unsigned server,
    unsigned kind, const void *msg, size_t size)
{
	int rv;

	if (hub == NULL || msg == NULL)
		return BUTLER_EINVAL;
	if (__builtin_expect(spec != hub->spec, 0))
		server = butler_hub_server(hub, spec, server);
	rv = butler__send_fast(&hub->router, server, kind, msg, size);
	if (__builtin_expect(rv == BUTLER_OK, 1))
		return rv;
	return butler__send_message(
	    &hub->router, server, kind, msg, size, BUTLER__SERVER_POLICY);
}

int
butler_send_bound(butler_hub *hub, unsigned server, unsigned kind,
    const void *msg, size_t size, butler_binding *binding)
{
	if (hub == NULL || msg == NULL || binding == NULL
	    || binding->enter == NULL || binding->leave == NULL
	    || binding->release == NULL)
		return BUTLER_EINVAL;
	return butler__send(&hub->router, server, kind, BUTLER__REC_BOUND,
	    binding, msg, size, BUTLER__SERVER_POLICY);
}

int
butler_send_timeout(butler_hub *hub, unsigned server, unsigned kind,
    const void *msg, size_t size, int timeout_ms)
{
	if (hub == NULL || msg == NULL)
		return BUTLER_EINVAL;
	return butler__send(&hub->router, server, kind, 0, NULL, msg, size,
	    timeout_ms < 0 ? -1 : timeout_ms);
}

/* ---- timers ----------------------------------------------------------- */

int
butler_send_after(butler_hub *hub, unsigned server, unsigned kind,
    const void *msg, size_t size, unsigned delay_ms, unsigned period_ms,
    uint64_t *id)
{
	const struct butler__route *rt;
	struct butler__timer *t;
	uint64_t made;
	int rv;

	if (id != NULL)
		*id = 0;
	if (hub == NULL || msg == NULL || server >= hub->n_servers)
		return BUTLER_EINVAL;
	rt = &hub->route[server];
	if (kind == 0 || kind > rt->n_kinds || size != rt->kind_size[kind]
	    || (period_ms != 0 && rt->kind_msg[kind]->destroy != NULL))
		return BUTLER_EINVAL;
	rv = butler__timer_new(&hub->timers, rt->kind_msg[kind], kind, msg,
	    size, (uint64_t)delay_ms * 1000000u,
	    (uint64_t)period_ms * 1000000u, &t);
	if (rv != BUTLER_OK)
		return rv;
	made = t->id;
	/* To its instance as a record: armed there, on its own loop. */
	rv = butler__push(&hub->router, rt->first + (unsigned)(made % rt->n),
	    kind, BUTLER__REC_TIMER, t, NULL, 0, BUTLER__PUSH_ROOM, 0);
	if (rv != BUTLER_OK) {
		/* Never armed: the caller keeps the message's fields. */
		butler__timer_free(&hub->timers, t);
		return rv;
	}
	if (id != NULL)
		*id = made;
	return BUTLER_OK;
}

int
butler_timer_cancel(butler_hub *hub, uint64_t timer)
{
	if (hub == NULL)
		return BUTLER_EINVAL;
	return butler__timer_cancel(&hub->timers, timer);
}

/* ---- calls ------------------------------------------------------------ */

int
butler_call_progress(butler_hub *hub, unsigned server, unsigned kind,
    const void *msg, size_t size, int timeout_ms, butler_reply_thunk thunk,
    void (*cb)(void), butler_progress_thunk pthunk, void (*pcb)(void),
    void *user, uint64_t *id)
{
	const struct butler__call_args args = { thunk, cb, pthunk, pcb, user };
	struct butler_server *self;
	uint64_t made = 0;
	int rv;

	if (id != NULL)
		*id = 0;
	if (hub == NULL || thunk == NULL || msg == NULL)
		return BUTLER_EINVAL;
	/* The answer needs a loop to come back to. */
	self = butler__hub_caller(hub);
	if (self == NULL)
		return BUTLER_ESTATE;
	rv = butler__call(
	    &self->rq, server, kind, msg, size, timeout_ms, &args, &made);
	if (rv == BUTLER_OK && id != NULL)
		*id = made;
	return rv;
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
butler_call_wait(butler_hub *hub, unsigned server, unsigned kind,
    const void *msg, size_t size, int timeout_ms, void *reply,
    size_t reply_size)
{
	int state;

	if (hub == NULL || msg == NULL || reply == NULL)
		return BUTLER_EINVAL;
	/* Blocking a loop would stall everything it serves, and may wait
	 * for the loop itself. */
	if (butler__server_current() != NULL
	    || butler__hub_caller(hub) != NULL)
		return BUTLER_EDEADLK;
	state = atomic_load(&hub->state);
	if (state == BUTLER__HUB_NEW || state == BUTLER__HUB_STARTING)
		return BUTLER_ESTATE;
	return butler__call_wait(&hub->reqhub, server, kind, msg, size,
	    timeout_ms, reply, reply_size);
}

int
butler_cancel(butler_hub *hub, uint64_t id)
{
	struct butler_server *self;
	int rv;

	if (hub == NULL)
		return BUTLER_EINVAL;
	self = butler__hub_caller(hub);
	if (self == NULL)
		return BUTLER_ESTATE;
	rv = butler__cancel(&self->rq, id);
	if (rv == BUTLER_OK)
		butler__server_check_quiet(self);
	return rv;
}

int
butler_call_bind(butler_hub *hub, uint64_t id, butler_binding *binding)
{
	struct butler_server *self;

	if (hub == NULL || binding == NULL || binding->enter == NULL
	    || binding->leave == NULL || binding->release == NULL)
		return BUTLER_EINVAL;
	self = butler__hub_caller(hub);
	if (self == NULL)
		return BUTLER_ESTATE;
	return butler__call_bind(&self->rq, id, binding);
}

/* ---- answers ---------------------------------------------------------- */

/* Whether the calling thread may touch self's requests. */
static bool
on_thread(const struct butler_server *self)
{
	return self != NULL
	    && (butler__server_current() == self
	        || butler__server_owned_by_me(self));
}

int
butler_reply(butler_server *self, const void *reply, size_t size)
{
	if (!on_thread(self))
		return BUTLER_EINVAL;
	return butler__reply(&self->rq, reply, size);
}

int
butler_progress(butler_server *self, const void *progress, size_t size)
{
	if (!on_thread(self))
		return BUTLER_EINVAL;
	return butler__progress(&self->rq, 0, NULL, progress, size);
}

int
butler_defer(
    butler_server *self, const butler_msg_desc *request, uint64_t *promise)
{
	if (promise == NULL)
		return BUTLER_EINVAL;
	*promise = 0;
	if (!on_thread(self))
		return BUTLER_EINVAL;
	return butler__defer(&self->rq, request, promise);
}

int
butler_answer(butler_server *self, uint64_t promise,
    const butler_msg_desc *request, const void *reply, size_t size)
{
	int rv;

	if (!on_thread(self))
		return BUTLER_EINVAL;
	rv = butler__answer(&self->rq, promise, request, reply, size);
	if (rv == BUTLER_OK)
		butler__server_check_quiet(self);
	return rv;
}

int
butler_fail(butler_server *self, uint64_t promise,
    const butler_msg_desc *request, int code)
{
	int rv;

	if (!on_thread(self))
		return BUTLER_EINVAL;
	rv = butler__fail(&self->rq, promise, request, code);
	if (rv == BUTLER_OK)
		butler__server_check_quiet(self);
	return rv;
}

int
butler_progress_promise(butler_server *self, uint64_t promise,
    const butler_msg_desc *request, const void *progress, size_t size)
{
	if (!on_thread(self) || promise == 0)
		return BUTLER_EINVAL;
	return butler__progress(&self->rq, promise, request, progress, size);
}

bool
butler_cancelled(const butler_server *self)
{
	return on_thread(self)
	    && butler__cancelled((struct butler__requests *)&self->rq, 0);
}

int64_t
butler_time_left_ms(const butler_server *self)
{
	if (!on_thread(self))
		return 0;
	return butler__time_left_ms((struct butler__requests *)&self->rq, 0);
}

bool
butler_promise_cancelled(const butler_server *self, uint64_t promise)
{
	return !on_thread(self) || promise == 0
	    || butler__cancelled(
	        (struct butler__requests *)&self->rq, promise);
}

int64_t
butler_promise_time_left_ms(const butler_server *self, uint64_t promise)
{
	if (!on_thread(self) || promise == 0)
		return 0;
	return butler__time_left_ms(
	    (struct butler__requests *)&self->rq, promise);
}

/* ---- external servers ------------------------------------------------- */

int
butler_server_fd(butler_hub *hub, unsigned server)
{
	struct butler_server *srv = butler__hub_external(hub, server);

	return srv != NULL ? srv->ch.fd : -1;
}

int
butler_server_drain(
    butler_hub *hub, unsigned server, unsigned max, unsigned *handled)
{
	struct butler_server *srv = butler__hub_external(hub, server);
	unsigned n = 0;
	int rv;

	if (handled != NULL)
		*handled = 0;
	if (srv == NULL)
		return BUTLER_EINVAL;
	if (atomic_load(&hub->state) < BUTLER__HUB_RUNNING)
		return BUTLER_ESTATE;
	rv = butler__server_drain_external(
	    srv, max ? max : hub->env.batch_max, false, &n);
	if (handled != NULL)
		*handled = n;
	return rv;
}

int
butler_server_next_timeout(butler_hub *hub, unsigned server)
{
	struct butler_server *srv = butler__hub_external(hub, server);

	return srv != NULL ? butler__server_next_timeout_ms(srv) : -1;
}

/* ---- purging ---------------------------------------------------------- */

/* Destroys, as purged, what a policy queue held of `kind`; returns how
 * many. Any thread. */
static uint64_t
purge_queue(struct butler__channel *ch, unsigned kind)
{
	struct butler__pq_entry *e;
	uint64_t n = 0;

	if (ch->pq == NULL)
		return 0;
	e = butler__pqueue_purge(ch->pq, kind, &n);
	while (e != NULL) {
		struct butler__pq_entry *next = e->next;

		ch->discard(ch->discard_ctx, butler__pq_rec(e),
		    BUTLER__DISCARD_PURGED);
		butler__pqueue_recycle(ch->pq, e);
		e = next;
	}
	return n;
}

int
butler_purge(butler_hub *hub, unsigned server, unsigned kind, uint64_t *purged)
{
	struct butler_server *self = butler__server_current();
	const struct butler__route *rt;
	uint64_t total = 0;
	bool wait;
	int state;

	if (purged != NULL)
		*purged = 0;
	if (hub == NULL || server >= hub->n_servers)
		return BUTLER_EINVAL;
	rt = &hub->route[server];
	if (kind == 0 || kind > rt->n_kinds)
		return BUTLER_EINVAL;
	state = atomic_load(&hub->state);
	if (state == BUTLER__HUB_STOPPED)
		return BUTLER_ECLOSED;
	/* A server of the hub never waits for a peer (they could wait for
	 * each other). */
	wait = purged != NULL && (self == NULL || self->env->hub != hub);
	for (unsigned i = 0; i < rt->n; i++) {
		struct butler_server *srv = hub->inst[rt->first + i];
		struct butler__channel *ch = &srv->ch;
		uint64_t n = 0;
		int rv;

		total += purge_queue(ch, kind);
		if (srv == self) {
			/* Its consumer is this thread: mark now. */
			total += butler__channel_purge_now(ch, kind);
			continue;
		}
		/* Nobody consumes it now (not started yet, or an external
		 * server between its owner's drains): this thread may. */
		if ((state == BUTLER__HUB_NEW
		        || butler__server_owned_by_me(srv))
		    && butler__channel_try_consume(ch)) {
			total += butler__channel_purge_now(ch, kind);
			butler__channel_leave_consumer(ch);
			continue;
		}
		rv = butler__channel_purge_ask(ch, kind, wait, &n);
		if (rv == BUTLER_ENOMEM)
			return rv;
		total += n; /* ECLOSED: it has finished, nothing waits */
	}
	if (purged != NULL)
		*purged = total;
	return BUTLER_OK;
}
