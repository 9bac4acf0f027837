/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/peer_butler.c — butler itself, through its public API only.
 *
 * Each bench channel is one hub whose single server (a pool when the
 * harness asks for instances > 1) accepts the 32-byte message; the
 * descriptor table is filled by hand, as butler/gen.h allows, so the
 * benchmark does not depend on the code generator. The consumer is the
 * server's own thread running its libevent loop. Hubs share nothing, so the
 * two loops of the ping-pong are two hubs, each sending into the other.
 *
 *   butler       the default wait policy: a server with an empty inbox
 *                sleeps at once;
 *   butler_spin  butler_hub_set_spin(): after handling messages a server
 *                watches its inbox for BENCH_SPIN_US microseconds (50; the
 *                environment variable of that name overrides it) before
 *                it sleeps, so a reply is taken without a wake-up;
 *   butler_metrics  `butler` with butler_hub_enable_metrics(): every send
 *                stamps and counts its message per kind, the consumer
 *                times its wait and its handler. Run beside `butler`, the
 *                ratio is what metrics cost (run's targets table).
 *
 * The GLib offload case (the GLib-attached external server calling a pool
 * of threaded servers) is in peer_butler_offload.c, built when butler::glib
 * is.
 */
#include <butler/butler.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#ifdef BENCH_BUTLER_OFFLOAD
/* peer_butler_offload.c */
int bench_butler_offload(struct bench_offload *o);
#endif

#define BENCH_SPIN_US_DEFAULT 50

/* spin_us is butler_spin's spin time: BENCH_SPIN_US or the default. */
static unsigned
spin_us(void)
{
	const char *env = getenv("BENCH_SPIN_US");

	return env && *env ? (unsigned)strtoul(env, NULL, 10)
	                   : BENCH_SPIN_US_DEFAULT;
}

/* The handler table a generated header would declare. */
struct bench_handlers {
	int (*on_msg)(
	    butler_server *self, void *user, const struct bench_msg *m);
};

static int
dispatch(butler_server *self, const void *handlers, void *user, unsigned kind,
    void *msg)
{
	const struct bench_handlers *h = handlers;

	switch (kind) {
	case 1:
		return h->on_msg(self, user, msg);
	}
	return BUTLER_EKIND;
}

static const char *
check(const void *handlers)
{
	const struct bench_handlers *h = handlers;

	return h->on_msg ? NULL : "msg";
}

static const butler_msg_desc messages[] = {
	{ .name = "msg",
	    .size = sizeof(struct bench_msg),
	    .reply = -1,
	    .progress = -1 },
};

static const unsigned accepts[] = { 0 };

struct bench_chan {
	struct bench_chan_cfg cfg;
	butler_server_desc server;
	butler_spec spec;
	butler_hub *hub;
	bool started;
};

static int
on_msg(butler_server *self, void *user, const struct bench_msg *m)
{
	struct bench_chan *c = user;
	unsigned instance = c->cfg.instances > 1 ? butler_server_instance(self)
	                                         : c->cfg.instance;

	c->cfg.on_msg(c->cfg.user, instance, m);
	return 0;
}

static const struct bench_handlers handlers = { .on_msg = on_msg };

static int
chan_new(struct bench_chan **out, const struct bench_chan_cfg *cfg,
    unsigned spin, bool metrics)
{
	struct bench_chan *c = bench_xcalloc(1, sizeof *c);

	c->cfg = *cfg;
	c->server = (butler_server_desc) {
		.name = "bench",
		.loop = BUTLER_LOOP_THREAD,
		.instances = cfg->instances ? cfg->instances : 1,
		/* Capacity is per sending thread. */
		.capacity = (unsigned)cfg->capacity,
		.full = BUTLER_FULL_FAIL,
		.accepts = accepts,
		.n_accepts = 1,
		.handlers_size = sizeof(struct bench_handlers),
		.check = check,
		.dispatch = dispatch,
	};
	c->spec = (butler_spec) {
		.abi = BUTLER_GEN_ABI,
		.app = "bench",
		.messages = messages,
		.n_messages = 1,
		.servers = &c->server,
		.n_servers = 1,
	};
	if (butler_hub_new(&c->hub, &c->spec)
	    || butler_hub_set_handlers(
	        c->hub, 0, &handlers, sizeof handlers, NULL, NULL, c)
	    || (spin && butler_hub_set_spin(c->hub, 0, spin))
	    || (metrics && butler_hub_enable_metrics(c->hub, 0))) {
		butler_hub_free(c->hub);
		free(c);
		return -1;
	}
	*out = c;
	return 0;
}

static int
chan_new_sleep(struct bench_chan **out, const struct bench_chan_cfg *cfg)
{
	return chan_new(out, cfg, 0, false);
}

static int
chan_new_spin(struct bench_chan **out, const struct bench_chan_cfg *cfg)
{
	return chan_new(out, cfg, spin_us(), false);
}

static int
chan_new_metrics(struct bench_chan **out, const struct bench_chan_cfg *cfg)
{
	return chan_new(out, cfg, 0, true);
}

static int
chan_start(struct bench_chan *c)
{
	c->started = true;
	return butler_hub_start(c->hub) ? -1 : 0;
}

static int
chan_send(struct bench_chan *c, unsigned sender, const struct bench_msg *m,
    bool may_block)
{
	int rv = butler_send(c->hub, 0, 1, m, sizeof *m);

	(void)sender;
	if (rv == BUTLER_EFULL && may_block && c->started) {
		/* Sleep in the runtime, not in a yield loop: that is what a
		 * producer with nothing better to do would use. It is still
		 * reported as a retry. */
		bench_note_full();
		rv = butler_send_timeout(c->hub, 0, 1, m, sizeof *m, -1);
		return rv == BUTLER_OK ? BENCH_SENT : BENCH_ERROR;
	}
	if (rv == BUTLER_EFULL)
		return BENCH_FULL;
	return rv == BUTLER_OK ? BENCH_SENT : BENCH_ERROR;
}

static void
chan_free(struct bench_chan *c)
{
	butler_hub_free(c->hub);
	free(c);
}

/* ---- request/reply ----------------------------------------------------- */

/*
 * A client server makes one request at a time to a service server, timing
 * each from butler_call() to the reply callback on its own thread; a kick
 * message from the main thread makes the first call from inside the client.
 */
enum { RR_KICK, RR_REQ, RR_REP };
enum { RR_CLIENT, RR_SERVICE };

static const butler_msg_desc rr_messages[] = {
	[RR_KICK] = { .name = "kick",
	    .size = sizeof(struct bench_msg),
	    .reply = -1,
	    .progress = -1 },
	[RR_REQ] = { .name = "req",
	    .size = sizeof(struct bench_msg),
	    .reply = RR_REP,
	    .progress = -1 },
	[RR_REP] = { .name = "rep",
	    .size = sizeof(struct bench_msg),
	    .reply = -1,
	    .progress = -1 },
};

static const unsigned rr_client_accepts[] = { RR_KICK };
static const unsigned rr_service_accepts[] = { RR_REQ };

static const butler_server_desc rr_servers[] = {
	[RR_CLIENT] = { .name = "client",
	    .instances = 1,
	    .capacity = 64,
	    .accepts = rr_client_accepts,
	    .n_accepts = 1,
	    .handlers_size = sizeof(struct bench_handlers),
	    .check = check,
	    .dispatch = dispatch },
	[RR_SERVICE] = { .name = "service",
	    .instances = 1,
	    .capacity = 64,
	    .accepts = rr_service_accepts,
	    .n_accepts = 1,
	    .handlers_size = sizeof(struct bench_handlers),
	    .check = check,
	    .dispatch = dispatch },
};

static const butler_spec rr_spec = {
	.abi = BUTLER_GEN_ABI,
	.app = "bench_rr",
	.messages = rr_messages,
	.n_messages = 3,
	.servers = rr_servers,
	.n_servers = 2,
};

struct rr {
	butler_hub *hub;
	uint64_t warm, n, next;
	uint64_t *rtt;
	int failed;
	sem_t done;
};

static void rr_on_reply(butler_server *self, int status, void *reply,
    void (*cb)(void), void *user);

/* rr_call makes request number r->next, or ends the run. */
static void
rr_call(struct rr *r)
{
	struct bench_msg req = { .seq = r->next };
	int rv;

	if (r->next == r->warm + 1)
		bench_steady(true);
	if (r->next > r->warm + r->n) {
		bench_steady(false);
		sem_post(&r->done);
		return;
	}
	req.payload = bench_payload(req.seq, 0);
	req.t_send_ns = bench_now_ns();
	rv = butler_call(r->hub, RR_SERVICE, 1, &req, sizeof req, -1,
	    rr_on_reply, NULL, r, NULL);
	if (rv) {
		r->failed = rv;
		sem_post(&r->done);
	}
}

static void
rr_on_reply(
    butler_server *self, int status, void *reply, void (*cb)(void), void *user)
{
	struct rr *r = user;
	const struct bench_msg *m = reply;
	uint64_t now = bench_now_ns();

	(void)self;
	(void)cb;
	if (status != BUTLER_OK || m->seq != r->next
	    || m->payload != bench_payload(m->seq, 0)) {
		r->failed = status ? status : BUTLER_EINVAL;
		sem_post(&r->done);
		return;
	}
	if (m->seq > r->warm)
		r->rtt[m->seq - r->warm - 1] = now - m->t_send_ns;
	r->next++;
	rr_call(r);
}

static int
rr_on_kick(butler_server *self, void *user, const struct bench_msg *m)
{
	(void)self;
	(void)m;
	rr_call(user);
	return 0;
}

static int
rr_on_req(butler_server *self, void *user, const struct bench_msg *m)
{
	(void)user;
	/* The reply echoes the request, timestamp included. */
	return butler_reply(self, m, sizeof *m);
}

static int
reqrep_with(uint64_t warm, uint64_t n, uint64_t *rtt, unsigned spin)
{
	static const struct bench_handlers client = { .on_msg = rr_on_kick };
	static const struct bench_handlers service = { .on_msg = rr_on_req };
	struct rr r = { .warm = warm, .n = n, .next = 1, .rtt = rtt };
	struct bench_msg kick = { 0 };
	int rv;

	sem_init(&r.done, 0, 0);
	rv = butler_hub_new(&r.hub, &rr_spec);
	if (rv == BUTLER_OK)
		rv = butler_hub_set_handlers(
		    r.hub, RR_CLIENT, &client, sizeof client, NULL, NULL, &r);
	if (rv == BUTLER_OK)
		rv = butler_hub_set_handlers(r.hub, RR_SERVICE, &service,
		    sizeof service, NULL, NULL, &r);
	if (rv == BUTLER_OK && spin)
		rv = butler_hub_set_spin(r.hub, RR_CLIENT, spin);
	if (rv == BUTLER_OK && spin)
		rv = butler_hub_set_spin(r.hub, RR_SERVICE, spin);
	if (rv == BUTLER_OK)
		rv = butler_hub_start(r.hub);
	if (rv == BUTLER_OK)
		rv = butler_send(r.hub, RR_CLIENT, 1, &kick, sizeof kick);
	if (rv == BUTLER_OK) {
		sem_wait(&r.done);
		rv = r.failed;
	}
	butler_hub_free(r.hub);
	sem_destroy(&r.done);
	if (rv)
		bench_fail("butler: %s", butler_strerror(rv));
	return 0;
}

static int
reqrep(uint64_t warm, uint64_t n, uint64_t *rtt)
{
	return reqrep_with(warm, n, rtt, 0);
}

static int
reqrep_spin(uint64_t warm, uint64_t n, uint64_t *rtt)
{
	return reqrep_with(warm, n, rtt, spin_us());
}

/* ---- blocking call and deferred answer --------------------------------- */

/*
 * `callwait`: butler_call_wait() from a plain thread (the harness's, not a
 * server) to a service server that answers at once, timed per call; its
 * peer is ZeroMQ's REQ/REP (peer_zmq.c). For `run --instructions` the
 * calling loop is cw_client and the answering handler cw_server.
 */
static int
cw_server(butler_server *self, void *user, const struct bench_msg *m)
{
	(void)user;
	return butler_reply(self, m, sizeof *m);
}

static __attribute__((noinline)) int
cw_client(butler_hub *hub, uint64_t warm, uint64_t n, uint64_t *rtt)
{
	for (uint64_t i = 1; i <= warm + n; i++) {
		struct bench_msg req = { .seq = i }, rep;
		int rv;

		if (i == warm + 1)
			bench_steady(true);
		req.payload = bench_payload(i, 0);
		req.t_send_ns = bench_now_ns();
		rv = butler_call_wait(hub, RR_SERVICE, 1, &req, sizeof req, -1,
		    &rep, sizeof rep);
		if (rv != BUTLER_OK)
			return rv;
		if (rep.seq != i || rep.payload != req.payload)
			return BUTLER_EINVAL;
		if (i > warm)
			rtt[i - warm - 1] = bench_now_ns() - req.t_send_ns;
	}
	bench_steady(false);
	return BUTLER_OK;
}

static int
callwait(uint64_t warm, uint64_t n, uint64_t *rtt)
{
	static const struct bench_handlers client = { .on_msg = rr_on_kick };
	static const struct bench_handlers service = { .on_msg = cw_server };
	butler_hub *hub;
	int rv;

	rv = butler_hub_new(&hub, &rr_spec);
	if (rv == BUTLER_OK)
		rv = butler_hub_set_handlers(
		    hub, RR_CLIENT, &client, sizeof client, NULL, NULL, NULL);
	if (rv == BUTLER_OK)
		rv = butler_hub_set_handlers(hub, RR_SERVICE, &service,
		    sizeof service, NULL, NULL, NULL);
	if (rv == BUTLER_OK)
		rv = butler_hub_start(hub);
	if (rv == BUTLER_OK)
		rv = cw_client(hub, warm, n, rtt);
	butler_hub_free(hub);
	if (rv)
		bench_fail("butler: %s", butler_strerror(rv));
	return 0;
}

/*
 * `deferred`: the reqrep case, but the service's handler defers the request
 * (butler_defer(), what app_defer_M() calls) and returns; the answer comes
 * from another handler of the same server, run by a message the first one
 * sent to its own server: the shape of an answer that waits for something.
 * Its peer is reqrep itself, answered directly. df_client makes the calls
 * (the client's reply callback), df_server is the deferring handler.
 */
enum { DF_REQ, DF_REP, DF_LATER };

static const butler_msg_desc df_messages[] = {
	[DF_REQ] = { .name = "req",
	    .size = sizeof(struct bench_msg),
	    .reply = DF_REP,
	    .progress = -1 },
	[DF_REP] = { .name = "rep",
	    .size = sizeof(struct bench_msg),
	    .reply = -1,
	    .progress = -1 },
	[DF_LATER] = { .name = "later",
	    .size = sizeof(struct bench_msg),
	    .reply = -1,
	    .progress = -1 },
};

struct df_handlers {
	int (*on_req)(
	    butler_server *self, void *user, const struct bench_msg *m);
	int (*on_later)(
	    butler_server *self, void *user, const struct bench_msg *m);
};

static int
df_dispatch(butler_server *self, const void *table, void *user, unsigned kind,
    void *msg)
{
	const struct df_handlers *h = table;

	switch (kind) {
	case 1:
		return h->on_req(self, user, msg);
	case 2:
		return h->on_later(self, user, msg);
	}
	return BUTLER_EKIND;
}

static const unsigned df_client_accepts[] = { DF_LATER };
static const unsigned df_service_accepts[] = { DF_REQ, DF_LATER };

static const butler_server_desc df_servers[] = {
	[RR_CLIENT] = { .name = "client",
	    .instances = 1,
	    .capacity = 64,
	    .accepts = df_client_accepts,
	    .n_accepts = 1,
	    .handlers_size = sizeof(struct bench_handlers),
	    .check = check,
	    .dispatch = dispatch },
	[RR_SERVICE] = { .name = "service",
	    .instances = 1,
	    .capacity = 64,
	    .accepts = df_service_accepts,
	    .n_accepts = 2,
	    .handlers_size = sizeof(struct df_handlers),
	    .dispatch = df_dispatch },
};

static const butler_spec df_spec = {
	.abi = BUTLER_GEN_ABI,
	.app = "bench_df",
	.messages = df_messages,
	.n_messages = 3,
	.servers = df_servers,
	.n_servers = 2,
};

/* The one request the service holds deferred, and what answers it. */
struct df {
	struct rr rr;
	uint64_t promise;
	struct bench_msg held;
};

static void df_on_reply(butler_server *self, int status, void *reply,
    void (*cb)(void), void *user);

static __attribute__((noinline)) void
df_client(struct df *d)
{
	struct rr *r = &d->rr;
	struct bench_msg req = { .seq = r->next };
	int rv;

	if (r->next == r->warm + 1)
		bench_steady(true);
	if (r->next > r->warm + r->n) {
		bench_steady(false);
		sem_post(&r->done);
		return;
	}
	req.payload = bench_payload(req.seq, 0);
	req.t_send_ns = bench_now_ns();
	rv = butler_call(r->hub, RR_SERVICE, 1, &req, sizeof req, -1,
	    df_on_reply, NULL, d, NULL);
	if (rv) {
		r->failed = rv;
		sem_post(&r->done);
	}
}

static void
df_on_reply(
    butler_server *self, int status, void *reply, void (*cb)(void), void *user)
{
	struct df *d = user;
	struct rr *r = &d->rr;
	const struct bench_msg *m = reply;
	uint64_t now = bench_now_ns();

	(void)self;
	(void)cb;
	if (status != BUTLER_OK || m->seq != r->next
	    || m->payload != bench_payload(m->seq, 0)) {
		r->failed = status ? status : BUTLER_EINVAL;
		sem_post(&r->done);
		return;
	}
	if (m->seq > r->warm)
		r->rtt[m->seq - r->warm - 1] = now - m->t_send_ns;
	r->next++;
	df_client(d);
}

static int
df_kick(butler_server *self, void *user, const struct bench_msg *m)
{
	(void)self;
	(void)m;
	df_client(user);
	return 0;
}

/* df_server defers the request and asks its own server to answer it. */
static int
df_server(butler_server *self, void *user, const struct bench_msg *m)
{
	struct df *d = user;
	int rv = butler_defer(self, &df_messages[DF_REQ], &d->promise);

	if (rv != BUTLER_OK)
		return rv;
	d->held = *m;
	return butler_send(
	    butler_server_hub(self), RR_SERVICE, 2, m, sizeof *m);
}

static int
df_later(butler_server *self, void *user, const struct bench_msg *m)
{
	struct df *d = user;

	(void)m;
	return butler_answer(
	    self, d->promise, &df_messages[DF_REQ], &d->held, sizeof d->held);
}

static int
deferred(uint64_t warm, uint64_t n, uint64_t *rtt)
{
	static const struct bench_handlers client = { .on_msg = df_kick };
	static const struct df_handlers service
	    = { .on_req = df_server, .on_later = df_later };
	struct df d
	    = { .rr = { .warm = warm, .n = n, .next = 1, .rtt = rtt } };
	struct bench_msg kick = { 0 };
	int rv;

	sem_init(&d.rr.done, 0, 0);
	rv = butler_hub_new(&d.rr.hub, &df_spec);
	if (rv == BUTLER_OK)
		rv = butler_hub_set_handlers(d.rr.hub, RR_CLIENT, &client,
		    sizeof client, NULL, NULL, &d);
	if (rv == BUTLER_OK)
		rv = butler_hub_set_handlers(d.rr.hub, RR_SERVICE, &service,
		    sizeof service, NULL, NULL, &d);
	if (rv == BUTLER_OK)
		rv = butler_hub_start(d.rr.hub);
	if (rv == BUTLER_OK)
		rv = butler_send(d.rr.hub, RR_CLIENT, 1, &kick, sizeof kick);
	if (rv == BUTLER_OK) {
		sem_wait(&d.rr.done);
		rv = d.rr.failed;
	}
	butler_hub_free(d.rr.hub);
	sem_destroy(&d.rr.done);
	if (rv)
		bench_fail("butler: %s", butler_strerror(rv));
	return 0;
}

static const struct bench_peer butler = {
	.name = "butler",
	.consumer = "butler server thread (libevent loop); per-thread lanes; "
	            "eventfd on pending 0->1",
	.native_pool = true,
	.chan_new = chan_new_sleep,
	.chan_start = chan_start,
	.send = chan_send,
	.chan_free = chan_free,
	.reqrep = reqrep,
	.callwait = callwait,
	.deferred = deferred,
#ifdef BENCH_BUTLER_OFFLOAD
	.offload = bench_butler_offload,
#endif
};

static const struct bench_peer butler_spin = {
	.name = "butler_spin",
	.consumer = "butler server thread, butler_hub_set_spin(): watches its "
	            "inbox before sleeping",
	.native_pool = true,
	.chan_new = chan_new_spin,
	.chan_start = chan_start,
	.send = chan_send,
	.chan_free = chan_free,
	.reqrep = reqrep_spin,
	.workloads = "thru1 pingpong pingpong_load reqrep",
};

static const struct bench_peer butler_metrics = {
	.name = "butler_metrics",
	.consumer = "butler with butler_hub_enable_metrics(): sends stamped "
	            "and counted per kind, wait and handler timed",
	.native_pool = true,
	.chan_new = chan_new_metrics,
	.chan_start = chan_start,
	.send = chan_send,
	.chan_free = chan_free,
	.workloads = "thru1 thru4",
};

const struct bench_peer *const bench_peers[]
    = { &butler, &butler_spin, &butler_metrics, NULL };
