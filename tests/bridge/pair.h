/* SPDX-License-Identifier: MIT */
/*
 * tests/bridge/pair.h — two hubs of the test spec (bt.json) in one
 * process, joined by a bridge: B exposes `worker` and `sink`, A has them
 * as remote servers and a local `client` that makes asynchronous calls.
 * The handlers are those of one program, registered in both hubs (the
 * bridge replaces A's worker and sink with proxies), and they record in
 * `rec` which hub ran them.
 */
#ifndef BUTLER_TESTS_BRIDGE_PAIR_H
#define BUTLER_TESTS_BRIDGE_PAIR_H

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include <butler/bridge.h>

#include "bt.butler.h"

#define SECRET "0123456789abcdef-bridge-test-secret"

struct side {
	butler_hub *hub;
	butler_bridge *br;
	const char *name;
};

/* What the handlers saw, for the tests' assertions. */
struct record {
	pthread_mutex_t mtx;
	pthread_cond_t cond;
	/* worker */
	struct bt_every every; /* last `every` message, moved here */
	unsigned everies;
	butler_hub *every_hub;
	atomic_uint slow_started, slow_ended, slow_cancelled;
	atomic_llong slow_left_ms;
	butler_hub *slow_hub;
	/* sink */
	bool gate_closed;
	uint64_t notes, next_seq[8];
	unsigned notes_out_of_order;
	butler_hub *sink_hub;
	/* client */
	unsigned progress;
	int slow_status;
	struct bt_done done;
	bool slow_answered;
	uint64_t slow_id;
	/* logs */
	char log[16384];
	size_t log_len;
};

static struct record rec
    = { .mtx = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

__attribute__((unused)) static void
test_log(butler_log_level level, const char *msg, void *user)
{
	size_t n = strlen(msg);

	pthread_mutex_lock(&rec.mtx);
	if (rec.log_len + n + 2 < sizeof rec.log) {
		memcpy(rec.log + rec.log_len, msg, n);
		rec.log_len += n;
		rec.log[rec.log_len++] = '\n';
		rec.log[rec.log_len] = '\0';
	}
	pthread_mutex_unlock(&rec.mtx);
	if (level <= BUTLER_LOG_WARN || getenv("BRIDGE_TEST_LOG") != NULL)
		fprintf(stderr, "[%s] %s\n", (const char *)user, msg);
}

__attribute__((unused)) static bool
log_has(const char *text)
{
	bool has;

	pthread_mutex_lock(&rec.mtx);
	has = strstr(rec.log, text) != NULL;
	pthread_mutex_unlock(&rec.mtx);
	return has;
}

/* Waits (up to ms) until cond(arg) holds, under rec.mtx. */
__attribute__((unused)) static bool
wait_until(bool (*cond)(void *), void *arg, int ms)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&rec.mtx);
	while (!(ok = cond(arg)))
		if (pthread_cond_timedwait(&rec.cond, &rec.mtx, &ts)
		    == ETIMEDOUT) {
			ok = cond(arg);
			break;
		}
	pthread_mutex_unlock(&rec.mtx);
	return ok;
}

static void
wake(void)
{
	pthread_cond_broadcast(&rec.cond);
}

/* ---- worker
 * ------------------------------------------------------------------- */

static int
on_echo(butler_server *self, void *user, struct bt_echo *msg)
{
	struct bt_every v = msg->v;
	int rv;

	(void)user;
	memset(&msg->v, 0, sizeof msg->v); /* moved into the reply */
	rv = bt_reply_echo(self, &v);
	if (rv != BUTLER_OK)
		bt_every_destroy(&v);
	return rv;
}

static int
on_slow(butler_server *self, void *user, struct bt_slow *msg)
{
	struct bt_done d = { 0 };
	unsigned i;

	(void)user;
	pthread_mutex_lock(&rec.mtx);
	rec.slow_hub = butler_server_hub(self);
	pthread_mutex_unlock(&rec.mtx);
	atomic_store(&rec.slow_left_ms, (long long)butler_time_left_ms(self));
	atomic_fetch_add(&rec.slow_started, 1);
	pthread_mutex_lock(&rec.mtx);
	wake();
	pthread_mutex_unlock(&rec.mtx);
	for (i = 0; i < msg->steps; i++) {
		if (butler_cancelled(self)) {
			d.cancelled = true;
			break;
		}
		(void)bt_progress_slow(self, &(struct bt_step) { .i = i });
		usleep(msg->step_ms * 1000u);
	}
	d.steps = i;
	d.left_ms = atomic_load(&rec.slow_left_ms);
	if (d.cancelled)
		atomic_fetch_add(&rec.slow_cancelled, 1);
	atomic_fetch_add(&rec.slow_ended, 1);
	pthread_mutex_lock(&rec.mtx);
	wake();
	pthread_mutex_unlock(&rec.mtx);
	return bt_reply_slow(self, &d);
}

struct later {
	struct later *next, **prev; /* the answers a server owes */
	butler_server *self;
	struct bt_add_promise promise;
	int64_t sum;
	struct event *ev;
};

static struct later *owed;

static void
later_free(struct later *l)
{
	pthread_mutex_lock(&rec.mtx);
	*l->prev = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	pthread_mutex_unlock(&rec.mtx);
	event_free(l->ev);
	free(l);
}

static void
answer_later(evutil_socket_t fd, short what, void *arg)
{
	struct later *l = arg;

	(void)fd;
	(void)what;
	(void)bt_answer_add(l->self, l->promise, &(struct bt_sum) { l->sum });
	later_free(l);
}

/* A server that stops frees the timers it still has (the promises end
 * with BUTLER_ECLOSED by themselves). */
static void
worker_stop(butler_server *self, void *user)
{
	(void)user;
	for (;;) {
		struct later *l;

		pthread_mutex_lock(&rec.mtx);
		for (l = owed; l != NULL && l->self != self; l = l->next)
			;
		pthread_mutex_unlock(&rec.mtx);
		if (l == NULL)
			break;
		later_free(l);
	}
}

/* add: deferred, answered from a timer of the worker's loop. */
static int
on_add(butler_server *self, void *user, struct bt_add *msg)
{
	struct later *l = calloc(1, sizeof *l);
	struct timeval tv = { 0, (suseconds_t)msg->delay_ms * 1000 };

	(void)user;
	if (l == NULL)
		return BUTLER_ENOMEM;
	l->self = self;
	l->promise = bt_defer_add(self);
	l->sum = msg->a + msg->b;
	l->ev = evtimer_new(butler_server_base(self), answer_later, l);
	evtimer_add(l->ev, &tv);
	pthread_mutex_lock(&rec.mtx);
	l->next = owed;
	l->prev = &owed;
	if (owed != NULL)
		owed->prev = &l->next;
	owed = l;
	pthread_mutex_unlock(&rec.mtx);
	return BUTLER_OK;
}

static int
on_every(butler_server *self, void *user, struct bt_every *msg)
{
	(void)user;
	pthread_mutex_lock(&rec.mtx);
	bt_every_destroy(&rec.every);
	rec.every = *msg;
	memset(msg, 0, sizeof *msg);
	rec.everies++;
	rec.every_hub = butler_server_hub(self);
	wake();
	pthread_mutex_unlock(&rec.mtx);
	return BUTLER_OK;
}

/* ---- sink
 * --------------------------------------------------------------------- */

static int
on_note(butler_server *self, void *user, struct bt_note *msg)
{
	(void)user;
	pthread_mutex_lock(&rec.mtx);
	while (rec.gate_closed)
		pthread_cond_wait(&rec.cond, &rec.mtx);
	rec.sink_hub = butler_server_hub(self);
	if (msg->from < 8) {
		if (msg->seq != rec.next_seq[msg->from])
			rec.notes_out_of_order++;
		rec.next_seq[msg->from] = msg->seq + 1;
	}
	rec.notes++;
	wake();
	pthread_mutex_unlock(&rec.mtx);
	return BUTLER_OK;
}

/* ---- client
 * ------------------------------------------------------------------- */

static butler_hub *client_hub;

static void
on_slow_progress(butler_server *self, struct bt_step *p, void *user)
{
	(void)self;
	(void)user;
	(void)p;
	pthread_mutex_lock(&rec.mtx);
	rec.progress++;
	pthread_mutex_unlock(&rec.mtx);
}

static void
on_slow_reply(butler_server *self, int status, struct bt_done *d, void *user)
{
	(void)self;
	(void)user;
	pthread_mutex_lock(&rec.mtx);
	rec.slow_status = status;
	if (d != NULL)
		rec.done = *d;
	rec.slow_answered = true;
	wake();
	pthread_mutex_unlock(&rec.mtx);
}

/* kick: what 1 calls slow (n steps of 10 ms, timeout_ms), 2 cancels it. */
static int
on_kick(butler_server *self, void *user, struct bt_kick *k)
{
	int rv = BUTLER_OK;

	(void)self;
	(void)user;
	if (k->what == 1) {
		uint64_t id = 0;

		rv = bt_call_worker_slow(client_hub,
		    &(struct bt_slow) { .steps = k->n, .step_ms = 10 },
		    k->timeout_ms, on_slow_reply, on_slow_progress, NULL, &id);
		pthread_mutex_lock(&rec.mtx);
		rec.slow_id = id;
		if (rv != BUTLER_OK) {
			rec.slow_status = rv;
			rec.slow_answered = true;
			wake();
		}
		pthread_mutex_unlock(&rec.mtx);
	} else if (k->what == 2) {
		uint64_t id;

		pthread_mutex_lock(&rec.mtx);
		id = rec.slow_id;
		pthread_mutex_unlock(&rec.mtx);
		rv = butler_cancel(client_hub, id);
	}
	return rv;
}

/* ---- the pair
 * ------------------------------------------------------------------- */

static void
register_all(butler_hub *hub)
{
	int rv = bt_worker_register(hub,
	    &(struct bt_worker_handlers) { .on_stop = worker_stop,
	        .echo = on_echo,
	        .slow = on_slow,
	        .add = on_add,
	        .every = on_every },
	    NULL);

	if (rv == BUTLER_OK)
		rv = bt_sink_register(
		    hub, &(struct bt_sink_handlers) { .note = on_note }, NULL);
	if (rv == BUTLER_OK)
		rv = bt_client_register(hub,
		    &(struct bt_client_handlers) { .kick = on_kick }, NULL);
	if (rv == BUTLER_OK)
		rv = bt_blocker_register(hub,
		    &(struct bt_blocker_handlers) {
		        .on_stop = worker_stop, .add = on_add },
		    NULL);
	if (rv != BUTLER_OK) {
		fprintf(stderr, "register: %s\n", butler_strerror(rv));
		abort();
	}
}

__attribute__((unused)) static butler_bridge_config
config(void)
{
	return (butler_bridge_config) { .secret = SECRET,
		.secret_len = strlen(SECRET),
		.log = test_log,
		.log_level = BUTLER_LOG_DEBUG,
		.reconnect_min_ms = 20,
		.reconnect_max_ms = 200 };
}

/* Starts B listening on url, exposing `expose` (n of them). */
__attribute__((unused)) static int
side_expose(struct side *b, const char *url, const char *const *expose,
    unsigned n, butler_bridge_config cfg)
{
	int rv = butler_hub_new(&b->hub, &bt_spec);

	if (rv != BUTLER_OK)
		return rv;
	register_all(b->hub);
	cfg.listen = &url;
	cfg.n_listen = 1;
	cfg.expose = expose;
	cfg.n_expose = n;
	cfg.log_user = (void *)"B";
	rv = butler_bridge_new(&b->br, b->hub, &bt_spec, &cfg);
	if (rv == BUTLER_OK)
		rv = butler_hub_start(b->hub);
	return rv;
}

/* Starts A with worker and sink remote at url. */
__attribute__((unused)) static int
side_use(struct side *a, const char *url, butler_bridge_config cfg)
{
	butler_bridge_remote remote[] = { { "worker", url }, { "sink", url } };
	int rv = butler_hub_new(&a->hub, &bt_spec);

	if (rv != BUTLER_OK)
		return rv;
	client_hub = a->hub;
	register_all(a->hub);
	cfg.remote = remote;
	cfg.n_remote = 2;
	cfg.log_user = (void *)"A";
	rv = butler_bridge_new(&a->br, a->hub, &bt_spec, &cfg);
	if (rv == BUTLER_OK)
		rv = butler_hub_start(a->hub);
	return rv;
}

static void
side_down(struct side *s)
{
	if (s->hub != NULL) {
		butler_hub_stop(s->hub, BUTLER_STOP_DRAIN);
		butler_hub_free(s->hub);
	}
	butler_bridge_free(s->br);
	s->hub = NULL;
	s->br = NULL;
}

#endif /* BUTLER_TESTS_BRIDGE_PAIR_H */
