/* SPDX-License-Identifier: MIT */
/*
 * hub.c — the hub's lifecycle: building it from a spec and its imports,
 * handlers, start, the two-step stop with its deadline, free; statistics
 * and the listing of pending requests.
 */
#include "hub_internal.h"

#include "alloc.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/thread.h>

/* Defaults for one loop turn of a threaded server: enough messages to make
 * the loop's own cost (a poll and a timer) negligible, little enough time
 * that the server's timers and I/O stay responsive. */
#define DEFAULT_BATCH_MAX 4096u
#define DEFAULT_BATCH_BUDGET_NS 1000000u

static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;
static int evthread_result;

static void
init_evthread(void)
{
	/* libevent requires this before any event_base exists (thread.h);
	 * our own loops are lock-free, but an application's may not be. */
	evthread_result = evthread_use_pthreads();
}

/* ---- specs ------------------------------------------------------------ */

/* Checks a server's routing, tick and per-kind settings. */
static int
check_policies(const butler_spec *spec, const butler_server_desc *s)
{
	if (s->route > BUTLER_ROUTE_KEY
	    || (s->route == BUTLER_ROUTE_KEY && (s->kinds == NULL || s->share))
	    || (s->tick_kind != 0
	        && (s->tick_kind > s->n_accepts || s->tick_ms == 0
	            || spec->messages[s->accepts[s->tick_kind - 1]].destroy
	                != NULL)))
		return BUTLER_EINVAL;
	for (unsigned k = 0; s->kinds != NULL && k < s->n_accepts; k++) {
		const butler_kind_desc *kd = &s->kinds[k];
		unsigned ks = kd->key.size;

		if (kd->full > BUTLER_FULL_KEEP_LAST)
			return BUTLER_EINVAL;
		/* The key matters to a key route only. */
		if (s->route == BUTLER_ROUTE_KEY
		    && ((ks != 0 && ks != 1 && ks != 2 && ks != 4 && ks != 8)
		        || kd->key.offset + (ks ? ks : sizeof(char *))
		            > spec->messages[s->accepts[k]].size))
			return BUTLER_EINVAL;
	}
	return BUTLER_OK;
}

/* Checks one descriptor table against the limits of butler/gen.h. */
static int
check_spec(const butler_spec *spec)
{
	if (spec->abi != BUTLER_GEN_ABI)
		return BUTLER_EABI;
	if (spec->app == NULL || spec->servers == NULL || spec->n_servers == 0
	    || (spec->n_messages > 0 && spec->messages == NULL)
	    || spec->n_messages > BUTLER_MAX_MESSAGES
	    || (spec->n_imports > 0 && spec->imports == NULL))
		return BUTLER_EINVAL;
	for (unsigned i = 0; i < spec->n_messages; i++) {
		const butler_msg_desc *m = &spec->messages[i];

		if (m->name == NULL || m->size > BUTLER_MAX_MESSAGE_SIZE
		    || m->reply >= (int)spec->n_messages
		    || m->progress >= (int)spec->n_messages
		    || (m->progress >= 0 && m->reply < 0))
			return BUTLER_EINVAL;
	}
	for (unsigned i = 0; i < spec->n_servers; i++) {
		const butler_server_desc *s = &spec->servers[i];

		if (s->name == NULL || s->instances > BUTLER_MAX_INSTANCES
		    || s->capacity == 0 || s->capacity > BUTLER_MAX_CAPACITY
		    || s->dispatch == NULL || s->handlers_size == 0
		    || s->n_accepts > BUTLER_MAX_ACCEPTS
		    || (s->n_accepts > 0 && s->accepts == NULL)
		    || (s->loop != BUTLER_LOOP_THREAD
		        && s->loop != BUTLER_LOOP_EXTERNAL)
		    || (s->loop == BUTLER_LOOP_EXTERNAL && s->instances != 1)
		    || s->full > BUTLER_FULL_KEEP_LAST
		    || s->max_queued > BUTLER_MAX_CAPACITY)
			return BUTLER_EINVAL;
		for (unsigned k = 0; k < s->n_accepts; k++)
			if (s->accepts[k] >= spec->n_messages)
				return BUTLER_EINVAL;
		if (check_policies(spec, s) != BUTLER_OK)
			return BUTLER_EINVAL;
	}
	return BUTLER_OK;
}

/* Lists spec and, depth first, everything it imports, each once. */
static int
collect(const butler_spec *spec, const butler_spec **list, unsigned *n,
    const butler_spec **path, unsigned depth)
{
	int rv;

	if (spec == NULL)
		return BUTLER_EINVAL;
	for (unsigned i = 0; i < depth; i++)
		if (path[i] == spec)
			return BUTLER_EINVAL; /* an import cycle */
	for (unsigned i = 0; i < *n; i++) {
		if (list[i] == spec)
			return BUTLER_OK;
		/* Two specs with one prefix would generate clashing names;
		 * the table must come from two different builds. */
		if (spec->app != NULL && list[i]->app != NULL
		    && strcmp(spec->app, list[i]->app) == 0)
			return BUTLER_EINVAL;
	}
	rv = check_spec(spec);
	if (rv != BUTLER_OK)
		return rv;
	if (*n == BUTLER_MAX_IMPORTS || depth == BUTLER_MAX_IMPORTS)
		return BUTLER_EINVAL;
	list[(*n)++] = spec;
	path[depth] = spec;
	for (unsigned i = 0; i < spec->n_imports; i++) {
		rv = collect(spec->imports[i], list, n, path, depth + 1);
		if (rv != BUTLER_OK)
			return rv;
	}
	return BUTLER_OK;
}

static unsigned
online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1                         ? 1u
	    : n > (long)BUTLER_MAX_INSTANCES ? BUTLER_MAX_INSTANCES
	                                     : (unsigned)n;
}

/* ---- construction ----------------------------------------------------- */

/* Frees whatever part of a hub exists; used on failure and by free. */
static void
destroy(struct butler_hub *hub)
{
	butler__monitor_stop(hub);
	if (hub->inst != NULL)
		for (unsigned i = 0; i < hub->n_inst; i++)
			if (hub->inst[i] != NULL) {
				butler__server_release(hub->inst[i]);
				free(hub->inst[i]);
			}
	if (hub->handlers != NULL)
		for (unsigned i = 0; i < hub->n_servers; i++)
			free(hub->handlers[i].table);
	if (hub->route != NULL)
		for (unsigned i = 0; i < hub->n_servers; i++) {
			free((void *)hub->route[i].kind_size);
			free((void *)hub->route[i].kind_msg);
			free((void *)hub->route[i].kind_policy);
		}
	if (hub->env_ready) {
		pthread_cond_destroy(&hub->env.cond);
		pthread_mutex_destroy(&hub->env.lock);
		pthread_mutex_destroy(&hub->stop_lock);
	}
	if (hub->reqhub_ready)
		butler__reqhub_release(&hub->reqhub);
	if (hub->timers_ready)
		butler__timers_release(&hub->timers);
	if (hub->group_ready)
		butler__stopgroup_release(&hub->group);
	butler__send_forget(&hub->router);
	free(hub->inst);
	free(hub->inbox);
	free(hub->handlers);
	free(hub->route);
	free(hub->spec_base);
	free(hub->specs);
	free(hub);
}

/* Whether BUTLER_METRICS=1 asks for metrics on every server. */
static bool
metrics_from_env(void)
{
	const char *v = getenv("BUTLER_METRICS");

	return v != NULL && strcmp(v, "1") == 0;
}

/*
 * metrics_log_from_env returns the dump period BUTLER_METRICS_LOG_MS asks
 * for (a number of milliseconds, > 0), or 0.
 */
static unsigned
metrics_log_from_env(void)
{
	const char *v = getenv("BUTLER_METRICS_LOG_MS");
	char *end;
	unsigned long ms;

	if (v == NULL || *v == '\0')
		return 0;
	ms = strtoul(v, &end, 10);
	return *end == '\0' && ms <= 86400000u ? (unsigned)ms : 0;
}

/* Builds the route of every server; counts instances, sizes records. */
static int
init_routes(struct butler_hub *hub, size_t *max_payload, size_t *reply_room)
{
	unsigned at = 0, g = 0;

	*max_payload = 0;
	*reply_room = 0;
	for (unsigned sp = 0; sp < hub->n_specs; sp++) {
		const butler_spec *spec = hub->specs[sp];

		hub->spec_base[sp] = g;
		for (unsigned i = 0; i < spec->n_messages; i++) {
			const butler_msg_desc *m = &spec->messages[i];

			if (m->size > *max_payload)
				*max_payload = m->size;
			if (m->reply >= 0
			    && spec->messages[m->reply].size > *reply_room)
				*reply_room = spec->messages[m->reply].size;
		}
		for (unsigned i = 0; i < spec->n_servers; i++, g++) {
			const butler_server_desc *s = &spec->servers[i];
			struct butler__route *r = &hub->route[g];
			size_t *sizes = butler__calloc(
			    2 * (s->n_accepts + 1), sizeof *sizes);
			const butler_msg_desc **msgs
			    = butler__calloc(s->n_accepts + 1, sizeof *msgs);
			struct butler__kind_policy *pol
			    = butler__calloc(s->n_accepts + 1, sizeof *pol);

			r->kind_size = sizes;
			r->fast_size = sizes + s->n_accepts + 1;
			r->kind_msg = msgs;
			r->kind_policy = pol;
			if (sizes == NULL || msgs == NULL || pol == NULL)
				return BUTLER_ENOMEM;
			for (unsigned k = 0; k < s->n_accepts; k++) {
				const butler_kind_desc *kd
				    = s->kinds != NULL ? &s->kinds[k] : NULL;

				msgs[k + 1] = &spec->messages[s->accepts[k]];
				sizes[k + 1] = msgs[k + 1]->size;
				pol[k + 1].full
				    = kd != NULL ? kd->full : s->full;
				pol[k + 1].block_ms = kd != NULL
				    ? kd->block_timeout_ms
				    : s->block_timeout_ms;
				if (pol[k + 1].full == BUTLER_FULL_DROP_OLDEST
				    || pol[k + 1].full
				        == BUTLER_FULL_KEEP_LAST)
					r->policy_queue = true;
			}
			r->n_kinds = s->n_accepts;
			butler__route_set_fast(r, false);
			r->spec = spec;
			r->desc = s;
			r->first = at;
			r->n = s->instances == BUTLER_INSTANCES_AUTO
			    ? online_cpus()
			    : s->instances;
			r->block = s->full == BUTLER_FULL_BLOCK;
			r->block_ms = s->block_timeout_ms;
			r->policy = s->route;
			r->kinds = s->kinds;
			at += r->n;
		}
	}
	hub->n_inst = at;
	return BUTLER_OK;
}

int
butler_hub_new(butler_hub **out, const butler_spec *spec)
{
	const butler_spec *list[BUTLER_MAX_IMPORTS], *path[BUTLER_MAX_IMPORTS];
	struct butler_hub *hub;
	size_t max_payload, reply_room, max_record;
	unsigned n_specs = 0, n_servers = 0;
	int rv;

	if (out == NULL)
		return BUTLER_EINVAL;
	*out = NULL;
	rv = collect(spec, list, &n_specs, path, 0);
	if (rv != BUTLER_OK)
		return rv;
	if (pthread_once(&evthread_once, init_evthread) != 0
	    || evthread_result != 0)
		return BUTLER_ESYS;
	butler__asymmetric_init();
	for (unsigned i = 0; i < n_specs; i++)
		n_servers += list[i]->n_servers;

	hub = butler__calloc(1, sizeof *hub);
	if (hub == NULL)
		return BUTLER_ENOMEM;
	hub->spec = spec;
	hub->n_specs = n_specs;
	hub->n_servers = n_servers;
	butler__logger_init(&hub->log);
	atomic_init(&hub->state, BUTLER__HUB_NEW);
	rv = BUTLER_ENOMEM;
	hub->specs = butler__calloc(n_specs, sizeof *hub->specs);
	hub->spec_base = butler__calloc(n_specs, sizeof *hub->spec_base);
	hub->route = butler__calloc(n_servers, sizeof *hub->route);
	hub->handlers = butler__calloc(n_servers, sizeof *hub->handlers);
	if (hub->specs == NULL || hub->spec_base == NULL || hub->route == NULL
	    || hub->handlers == NULL)
		goto out_destroy;
	memcpy(hub->specs, list, n_specs * sizeof *list);
	rv = init_routes(hub, &max_payload, &reply_room);
	if (rv != BUTLER_OK)
		goto out_destroy;
	rv = BUTLER_ENOMEM;
	hub->inst = butler__calloc(hub->n_inst, sizeof *hub->inst);
	hub->inbox = butler__calloc(hub->n_inst, sizeof *hub->inbox);
	if (hub->inst == NULL || hub->inbox == NULL)
		goto out_destroy;
	hub->router = (struct butler__router) {
		.serial = butler__router_serial(),
		.n_routes = n_servers,
		.route = hub->route,
		.n_inboxes = hub->n_inst,
		.inbox = hub->inbox,
	};

	rv = butler__stopgroup_init(&hub->group, hub->n_inst);
	if (rv != BUTLER_OK)
		goto out_destroy;
	hub->group_ready = true;
	rv = butler__reqhub_init(&hub->reqhub, &hub->router, &hub->log,
	    butler__rec_round(reply_room));
	if (rv != BUTLER_OK)
		goto out_destroy;
	hub->reqhub_ready = true;
	rv = butler__timers_init(&hub->timers);
	if (rv != BUTLER_OK)
		goto out_destroy;
	hub->timers_ready = true;
	rv = BUTLER_ESYS;
	if (pthread_mutex_init(&hub->stop_lock, NULL) != 0)
		goto out_destroy;
	if (pthread_mutex_init(&hub->env.lock, NULL) != 0) {
		pthread_mutex_destroy(&hub->stop_lock);
		goto out_destroy;
	}
	if (pthread_cond_init(&hub->env.cond, NULL) != 0) {
		pthread_mutex_destroy(&hub->env.lock);
		pthread_mutex_destroy(&hub->stop_lock);
		goto out_destroy;
	}
	hub->env_ready = true;
	hub->env.hub = hub;
	hub->env.router = &hub->router;
	hub->env.reqhub = &hub->reqhub;
	hub->env.log = &hub->log;
	hub->env.group = &hub->group;
	hub->env.timers = &hub->timers;
	hub->env.batch_max = DEFAULT_BATCH_MAX;
	hub->env.batch_budget_ns = DEFAULT_BATCH_BUDGET_NS;
	atomic_init(&hub->env.policy, BUTLER_STOP_DISCARD);

	max_record = butler__rec_round(BUTLER__REC_HEADER_MAX + max_payload);
	for (unsigned g = 0; g < n_servers; g++) {
		const struct butler__route *r = &hub->route[g];

		for (unsigned k = 0; k < r->n; k++) {
			unsigned at = r->first + k;
			size_t size = (sizeof(struct butler_server)
			                  + BUTLER__CACHE_LINE - 1)
			    & ~(size_t)(BUTLER__CACHE_LINE - 1);
			struct butler_server *srv
			    = butler__aligned_alloc(BUTLER__CACHE_LINE, size);

			if (srv == NULL) {
				rv = BUTLER_ENOMEM;
				goto out_destroy;
			}
			rv = butler__server_init(srv, &hub->env, r,
			    &hub->handlers[g], g, k, at, max_record);
			if (rv != BUTLER_OK) {
				free(srv);
				goto out_destroy;
			}
			hub->inst[at] = srv;
			hub->inbox[at] = &srv->ch;
		}
	}
	/* BUTLER_METRICS_LOG_MS: metrics on every server, and their dump. */
	hub->mon.dump_ms = metrics_log_from_env();
	if (metrics_from_env() || hub->mon.dump_ms != 0) {
		rv = butler_hub_enable_metrics(hub, BUTLER_NO_SERVER);
		if (rv != BUTLER_OK)
			goto out_destroy;
	}
	*out = hub;
	return BUTLER_OK;

out_destroy:
	destroy(hub);
	return rv;
}

unsigned
butler_hub_server(
    const butler_hub *hub, const butler_spec *spec, unsigned server)
{
	if (hub == NULL)
		return BUTLER_NO_SERVER;
	for (unsigned i = 0; i < hub->n_specs; i++)
		if (hub->specs[i] == spec)
			return server < spec->n_servers
			    ? hub->spec_base[i] + server
			    : BUTLER_NO_SERVER;
	return BUTLER_NO_SERVER;
}

int
butler_hub_set_handlers(butler_hub *hub, unsigned server, const void *handlers,
    size_t size, butler_start_fn on_start, butler_stop_fn on_stop, void *user)
{
	struct butler__handlers *h;
	void *copy;

	if (hub == NULL || server >= hub->n_servers || handlers == NULL
	    || size != hub->route[server].desc->handlers_size)
		return BUTLER_EINVAL;
	if (atomic_load(&hub->state) != BUTLER__HUB_NEW)
		return BUTLER_ESTATE;
	copy = butler__malloc(size);
	if (copy == NULL)
		return BUTLER_ENOMEM;
	memcpy(copy, handlers, size);
	h = &hub->handlers[server];
	free(h->table);
	h->table = copy;
	h->raw = NULL;
	h->on_start = on_start;
	h->on_stop = on_stop;
	h->user = user;
	h->set = true;
	return BUTLER_OK;
}

int
butler_hub_set_raw_handler(butler_hub *hub, unsigned server, butler_raw_fn fn,
    butler_start_fn on_start, butler_stop_fn on_stop, void *user)
{
	struct butler__handlers *h;

	if (hub == NULL || server >= hub->n_servers || fn == NULL)
		return BUTLER_EINVAL;
	if (atomic_load(&hub->state) != BUTLER__HUB_NEW)
		return BUTLER_ESTATE;
	h = &hub->handlers[server];
	free(h->table);
	h->table = NULL;
	h->raw = fn;
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

	if (hub == NULL || server >= hub->n_servers
	    || hub->route[server].desc->loop != BUTLER_LOOP_THREAD
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
	hub->log.fn = fn;
	hub->log.level = max_level;
	hub->log.user = user;
}

unsigned
butler_server_count(const butler_hub *hub)
{
	return hub != NULL ? hub->n_servers : 0;
}

struct butler_server *
butler__hub_caller(struct butler_hub *hub)
{
	struct butler_server *cur = butler__server_current();

	if (cur != NULL)
		return cur->env->hub == hub ? cur : NULL;
	for (unsigned i = 0; i < hub->n_inst; i++)
		if (butler__server_owned_by_me(hub->inst[i]))
			return hub->inst[i];
	return NULL;
}

struct butler_server *
butler__hub_external(struct butler_hub *hub, unsigned server)
{
	if (hub == NULL || server >= hub->n_servers
	    || hub->route[server].desc->loop != BUTLER_LOOP_EXTERNAL)
		return NULL;
	return hub->inst[hub->route[server].first];
}

/* ---- start ------------------------------------------------------------ */

static int
check_handlers(struct butler_hub *hub)
{
	for (unsigned i = 0; i < hub->n_servers; i++) {
		const butler_server_desc *s = hub->route[i].desc;
		const struct butler__handlers *h = &hub->handlers[i];
		const char *missing = NULL;

		if (!h->set) {
			butler__log(&hub->log, BUTLER_LOG_ERROR,
			    "server '%s' has no handler table", s->name);
			return BUTLER_ENOHANDLER;
		}
		if (s->check != NULL && h->raw == NULL)
			missing = s->check(h->table);
		if (missing != NULL) {
			butler__log(&hub->log, BUTLER_LOG_ERROR,
			    "server '%s' has no handler for '%s'", s->name,
			    missing);
			return BUTLER_ENOHANDLER;
		}
	}
	return BUTLER_OK;
}

/* Moves every inbox to `open` in one step and wakes who must look. */
static void
close_step(struct butler_hub *hub, int open)
{
	butler__stopgroup_set_open(&hub->group, open);
	for (unsigned i = 0; i < hub->n_inst; i++) {
		butler__channel_wake_blocked(&hub->inst[i]->ch);
		butler__server_wake(hub->inst[i]);
	}
}

/* Destroys what late senders queued, closes threaded servers' fds. */
static void
sweep(struct butler_hub *hub)
{
	for (unsigned i = 0; i < hub->n_inst; i++)
		butler__server_sweep(hub->inst[i]);
}

int
butler_hub_start(butler_hub *hub)
{
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
	/* Before any server runs, so that it watches them all; nothing has
	 * run if it cannot start. */
	rv = butler__monitor_start(hub);
	if (rv != BUTLER_OK)
		goto out;
	atomic_store(&hub->state, BUTLER__HUB_STARTING);
	hub->env.gate = BUTLER__GATE_WAIT;

	for (unsigned i = 0; i < hub->n_inst; i++) {
		struct butler_server *srv = hub->inst[i];

		if (srv->desc->loop == BUTLER_LOOP_EXTERNAL)
			continue;
		rv = butler__server_spawn(srv);
		if (rv != BUTLER_OK) {
			butler__log(&hub->log, BUTLER_LOG_ERROR,
			    "server '%s': cannot start its thread", srv->name);
			srv->start_result = rv;
			srv->start_reported = true;
			butler__channel_retire(&srv->ch);
			atomic_store(&srv->finished, true);
		}
	}
	for (unsigned i = 0; i < hub->n_inst; i++)
		if (hub->inst[i]->desc->loop == BUTLER_LOOP_EXTERNAL)
			(void)butler__server_start_external(hub->inst[i]);

	/* Every instance reports before anything runs, so a failure leaves
	 * no handler having seen a message. */
	pthread_mutex_lock(&hub->env.lock);
	for (unsigned i = 0; i < hub->n_inst; i++) {
		while (!hub->inst[i]->start_reported)
			pthread_cond_wait(&hub->env.cond, &hub->env.lock);
		if (first_failure == BUTLER_OK)
			first_failure = hub->inst[i]->start_result;
	}
	if (first_failure != BUTLER_OK) {
		atomic_store(&hub->env.policy, BUTLER_STOP_DISCARD);
		butler__stopgroup_set_open(&hub->group, BUTLER__CLOSED);
	}
	hub->env.gate = first_failure == BUTLER_OK ? BUTLER__GATE_GO
	                                           : BUTLER__GATE_ABORT;
	pthread_cond_broadcast(&hub->env.cond);
	pthread_mutex_unlock(&hub->env.lock);

	if (first_failure == BUTLER_OK) {
		atomic_store(&hub->state, BUTLER__HUB_RUNNING);
		rv = BUTLER_OK;
		goto out;
	}
	close_step(hub, BUTLER__CLOSED);
	for (unsigned i = 0; i < hub->n_inst; i++) {
		struct butler_server *srv = hub->inst[i];

		if (srv->desc->loop == BUTLER_LOOP_EXTERNAL
		    && srv->start_result == BUTLER_OK)
			butler__server_finish_external(srv);
		butler__server_join(srv);
	}
	butler__monitor_stop(hub);
	sweep(hub);
	atomic_store(&hub->state, BUTLER__HUB_STOPPED);
	rv = first_failure;
out:
	pthread_mutex_unlock(&hub->stop_lock);
	return rv;
}

/* ---- stop ------------------------------------------------------------- */

/* Milliseconds left before deadline_ns (UINT64_MAX: none, -1). */
static int
ms_until(uint64_t deadline_ns)
{
	uint64_t now;

	if (deadline_ns == UINT64_MAX)
		return -1;
	now = butler__now_ns();
	if (deadline_ns <= now)
		return 0;
	return (deadline_ns - now) / 1000000u > INT32_MAX
	    ? INT32_MAX
	    : (int)((deadline_ns - now + 999999u) / 1000000u);
}

/*
 * Waits on the stop group's fd and the external servers' fds (which the
 * calling thread drains meanwhile, so their handlers and answers run) up to
 * deadline_ns, until done(hub) says so. Returns BUTLER_OK or ETIMEDOUT.
 */
static int
wait_until(struct butler_hub *hub, uint64_t deadline_ns,
    bool (*done)(struct butler_hub *hub))
{
	struct pollfd fds[1 + 64];

	for (;;) {
		nfds_t n = 1;
		bool unpolled = false;
		int timeout;

		for (unsigned i = 0; i < hub->n_inst; i++) {
			struct butler_server *srv = hub->inst[i];
			unsigned handled;

			if (srv->desc->loop != BUTLER_LOOP_EXTERNAL
			    || atomic_load(&srv->finished))
				continue;
			(void)butler__server_drain_external(
			    srv, hub->env.batch_max, false, &handled);
			if (n < sizeof fds / sizeof fds[0])
				fds[n++] = (struct pollfd) { .fd = srv->ch.fd,
					.events = POLLIN };
			else
				unpolled = true;
		}
		if (done(hub))
			return BUTLER_OK;
		timeout = ms_until(deadline_ns);
		if (timeout == 0)
			return BUTLER_ETIMEDOUT;
		for (unsigned i = 0; i < hub->n_inst; i++) {
			struct butler_server *srv = hub->inst[i];
			int due;

			if (srv->desc->loop != BUTLER_LOOP_EXTERNAL
			    || atomic_load(&srv->finished))
				continue;
			due = butler__server_next_timeout_ms(srv);
			if (due >= 0 && (timeout < 0 || due < timeout))
				timeout = due;
		}
		/* More external servers than poll slots: look again soon. */
		if (unpolled && (timeout < 0 || timeout > 10))
			timeout = 10;
		fds[0] = (struct pollfd) { .fd = hub->group.wake_fd,
			.events = POLLIN };
		if (poll(fds, n, timeout) > 0 && (fds[0].revents & POLLIN))
			butler__stopgroup_ack(&hub->group);
	}
}

static bool
all_quiet(struct butler_hub *hub)
{
	return butler__stopgroup_all_quiet(&hub->group);
}

static bool
all_finished(struct butler_hub *hub)
{
	for (unsigned i = 0; i < hub->n_inst; i++)
		if (!atomic_load(&hub->inst[i]->finished))
			return false;
	return true;
}

static void
report_stuck(
    struct butler_hub *hub, butler_stuck_fn report, void *user, bool finishing)
{
	for (unsigned i = 0; i < hub->n_inst; i++) {
		struct butler_server *srv = hub->inst[i];
		butler_stuck_info info;

		if (finishing ? atomic_load(&srv->finished)
		              : butler__channel_is_quiet(&srv->ch))
			continue;
		butler__server_stuck(srv, &info);
		butler__log(&hub->log, BUTLER_LOG_WARN,
		    "stop: server '%s'/%u still busy: handler '%s' running "
		    "for %llu ms, %llu queued, %llu deferred, %llu calls "
		    "pending",
		    info.server, info.instance,
		    info.message ? info.message : "-",
		    (unsigned long long)info.handler_ms,
		    (unsigned long long)info.queued,
		    (unsigned long long)info.promises,
		    (unsigned long long)info.calls_pending);
		if (report != NULL)
			report(&info, user);
	}
}

int
butler_hub_stop_timeout(butler_hub *hub, butler_stop_policy policy,
    int timeout_ms, butler_stuck_fn report, void *user)
{
	struct butler_server *self = butler__server_current();
	uint64_t deadline = timeout_ms >= 0
	    ? butler__now_ns() + (uint64_t)timeout_ms * 1000000u
	    : UINT64_MAX;
	int state, rv = BUTLER_OK;

	if (hub == NULL
	    || (policy != BUTLER_STOP_DRAIN && policy != BUTLER_STOP_DISCARD))
		return BUTLER_EINVAL;
	if (self != NULL && self->env->hub == hub)
		return BUTLER_EDEADLK;
	pthread_mutex_lock(&hub->stop_lock);
	state = atomic_load(&hub->state);
	if (state == BUTLER__HUB_STOPPED)
		goto out;
	if (state == BUTLER__HUB_NEW) {
		/* Never started: nothing runs, only what was queued. */
		close_step(hub, BUTLER__CLOSED);
		goto out_swept;
	}
	if (state == BUTLER__HUB_RUNNING && policy == BUTLER_STOP_DRAIN) {
		/* Step one: nobody outside the hub gets in any more. */
		atomic_store(&hub->state, BUTLER__HUB_DRAINING);
		state = BUTLER__HUB_DRAINING;
		close_step(hub, BUTLER__CLOSING);
	}
	if (state == BUTLER__HUB_DRAINING && policy == BUTLER_STOP_DRAIN) {
		rv = wait_until(hub, deadline, all_quiet);
		if (rv != BUTLER_OK) {
			report_stuck(hub, report, user, false);
			goto out;
		}
	}
	if (state != BUTLER__HUB_FINAL) {
		/* Step two: everything closes; each server finishes. */
		atomic_store(&hub->env.policy, policy);
		atomic_store(&hub->state, BUTLER__HUB_FINAL);
		close_step(hub, BUTLER__CLOSED);
		for (unsigned i = 0; i < hub->n_inst; i++)
			if (hub->inst[i]->desc->loop == BUTLER_LOOP_EXTERNAL)
				butler__server_finish_external(hub->inst[i]);
	}
	rv = wait_until(hub, deadline, all_finished);
	if (rv != BUTLER_OK) {
		report_stuck(hub, report, user, true);
		goto out;
	}
	for (unsigned i = 0; i < hub->n_inst; i++)
		butler__server_join(hub->inst[i]);
	butler__monitor_stop(hub);
out_swept:
	sweep(hub);
	atomic_store(&hub->state, BUTLER__HUB_STOPPED);
out:
	pthread_mutex_unlock(&hub->stop_lock);
	return rv;
}

int
butler_hub_stop(butler_hub *hub, butler_stop_policy policy)
{
	return butler_hub_stop_timeout(hub, policy, -1, NULL, NULL);
}

void
butler_hub_free(butler_hub *hub)
{
	struct butler_server *self = butler__server_current();

	if (hub == NULL)
		return;
	if (self != NULL && self->env->hub == hub) {
		/* Freeing under our own feet would crash every thread: leak,
		 * loudly, instead. */
		butler__log(&hub->log, BUTLER_LOG_ERROR,
		    "butler_hub_free called from server '%s' of the same hub; "
		    "not freed",
		    self->name);
		return;
	}
	(void)butler_hub_stop(hub, BUTLER_STOP_DISCARD);
	destroy(hub);
}

/* ---- statistics and listings ------------------------------------------ */

int
butler_server_stats(butler_hub *hub, unsigned server, butler_stats *out)
{
	const struct butler__route *r;

	if (hub == NULL || out == NULL || server >= hub->n_servers)
		return BUTLER_EINVAL;
	memset(out, 0, sizeof *out);
	r = &hub->route[server];
	for (unsigned i = 0; i < r->n; i++)
		butler__channel_stats(&hub->inst[r->first + i]->ch, out);
	return BUTLER_OK;
}

int
butler_instance_stats(
    butler_hub *hub, unsigned server, unsigned instance, butler_stats *out)
{
	if (hub == NULL || out == NULL || server >= hub->n_servers
	    || instance >= hub->route[server].n)
		return BUTLER_EINVAL;
	memset(out, 0, sizeof *out);
	butler__channel_stats(
	    &hub->inst[hub->route[server].first + instance]->ch, out);
	return BUTLER_OK;
}

unsigned
butler_server_instances(const butler_hub *hub, unsigned server)
{
	return hub != NULL && server < hub->n_servers ? hub->route[server].n
	                                              : 0;
}

struct listing {
	struct butler_hub *hub;
	uint64_t now;
	butler_pending_fn fn;
	void *user;
};

static void
list_one(const struct butler__call_info *ci, void *ctx)
{
	struct listing *l = ctx;
	struct butler_hub *hub = l->hub;
	const struct butler_server *caller
	    = ci->caller < hub->n_inst ? hub->inst[ci->caller] : NULL;
	const struct butler_server *holder
	    = ci->deferred_by > 0 && ci->deferred_by <= hub->n_inst
	    ? hub->inst[ci->deferred_by - 1]
	    : NULL;
	butler_pending_info info = {
		.id = ci->id,
		.caller = caller != NULL ? caller->desc->name : NULL,
		.caller_instance = caller != NULL ? caller->instance : 0,
		.server = hub->route[ci->server].desc->name,
		.message = ci->request->name,
		.waiting_ms = l->now > ci->since_ns
		    ? (l->now - ci->since_ns) / 1000000u
		    : 0,
		.timeout_in_ms = ci->deadline_ns == UINT64_MAX ? -1
		    : ci->deadline_ns > l->now
		    ? (int64_t)((ci->deadline_ns - l->now) / 1000000u)
		    : 0,
		.deferred_by = holder != NULL ? holder->desc->name : NULL,
		.deferred_instance = holder != NULL ? holder->instance : 0,
		.deferred_ms = holder != NULL && l->now > ci->deferred_ns
		    ? (l->now - ci->deferred_ns) / 1000000u
		    : 0,
	};

	if (l->fn != NULL)
		l->fn(&info, l->user);
}

size_t
butler_hub_pending(butler_hub *hub, butler_pending_fn fn, void *user)
{
	struct listing l = { hub, butler__now_ns(), fn, user };
	size_t count = 0;

	if (hub == NULL)
		return 0;
	for (unsigned i = 0; i < hub->n_inst; i++)
		count
		    += butler__requests_list(&hub->inst[i]->rq, list_one, &l);
	count += butler__waits_list(&hub->reqhub, list_one, &l);
	return count;
}
