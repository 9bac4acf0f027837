/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/peer_zmq.c — ZeroMQ inproc PAIR sockets.
 *
 * PAIR is exclusive, so each sending thread gets its own connected pair;
 * the consumer is not an event loop but ZeroMQ's natural receiver: a
 * blocking zmq_recv() with one sender, or zmq_poll() over all of them and
 * non-blocking receives with several. High-water marks are unlimited, like
 * the unbounded queues of the plain-loop peers.
 *
 * The blocking call (workload callwait) is ZeroMQ's REQ/REP over inproc:
 * the calling thread sends on a REQ socket and blocks in zmq_recv() for
 * the answer, which a REP socket's thread sends back at once. It is the
 * peer of butler_call_wait().
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <zmq.h>

#include "bench.h"

struct bench_chan {
	struct bench_chan_cfg cfg;
	void *ctx;
	void **rx; /* bound, used by the consumer thread */
	void **tx; /* connected, one per sending thread */
	struct bench_thread thread;
};

static void
deliver(struct bench_chan *c, const struct bench_msg *m, int len)
{
	if (len != (int)sizeof *m)
		bench_fail("zmq: received %d bytes", len);
	c->cfg.on_msg(c->cfg.user, c->cfg.instance, m);
}

/* receive_one returns false once the context is shut down. */
static bool
receive_one(struct bench_chan *c, void *sock, int flags, bool *empty)
{
	struct bench_msg m;
	int len = zmq_recv(sock, &m, sizeof m, flags);

	*empty = false;
	if (len >= 0) {
		deliver(c, &m, len);
		return true;
	}
	if (errno == EAGAIN)
		*empty = true;
	else if (errno == ETERM)
		return false;
	else if (errno != EINTR)
		bench_fail("zmq_recv: %s", zmq_strerror(errno));
	return true;
}

static void *
consumer(void *arg)
{
	struct bench_chan *c = arg;
	unsigned n = c->cfg.senders;
	zmq_pollitem_t *items = bench_xcalloc(n, sizeof *items);
	bool running = true, empty;

	for (unsigned i = 0; i < n; i++) {
		items[i].socket = c->rx[i];
		items[i].events = ZMQ_POLLIN;
	}
	while (running) {
		if (n == 1) {
			running = receive_one(c, c->rx[0], 0, &empty);
			continue;
		}
		if (zmq_poll(items, (int)n, -1) < 0) {
			if (errno == ETERM)
				break;
			if (errno != EINTR)
				bench_fail(
				    "zmq_poll: %s", zmq_strerror(errno));
			continue;
		}
		for (unsigned i = 0; running && i < n; i++) {
			if (!(items[i].revents & ZMQ_POLLIN))
				continue;
			do
				running = receive_one(
				    c, c->rx[i], ZMQ_DONTWAIT, &empty);
			while (running && !empty);
		}
	}
	/* Sockets are closed by the thread that used them. */
	for (unsigned i = 0; i < n; i++)
		zmq_close(c->rx[i]);
	free(items);
	return NULL;
}

static void *
socket_new(struct bench_chan *c, int hwm_option)
{
	void *s = zmq_socket(c->ctx, ZMQ_PAIR);
	int zero = 0;

	if (!s || zmq_setsockopt(s, hwm_option, &zero, sizeof zero)
	    || zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero))
		bench_fail("zmq_socket: %s", zmq_strerror(errno));
	return s;
}

static int
chan_new(struct bench_chan **out, const struct bench_chan_cfg *cfg)
{
	struct bench_chan *c = bench_xcalloc(1, sizeof *c);

	c->cfg = *cfg;
	c->ctx = zmq_ctx_new();
	if (!c->ctx)
		return -1;
	c->rx = bench_xcalloc(cfg->senders, sizeof *c->rx);
	c->tx = bench_xcalloc(cfg->senders, sizeof *c->tx);
	for (unsigned i = 0; i < cfg->senders; i++) {
		char url[64];

		snprintf(url, sizeof url, "inproc://bench-%u", i);
		c->rx[i] = socket_new(c, ZMQ_RCVHWM);
		c->tx[i] = socket_new(c, ZMQ_SNDHWM);
		if (zmq_bind(c->rx[i], url) || zmq_connect(c->tx[i], url))
			bench_fail("zmq inproc: %s", zmq_strerror(errno));
	}
	*out = c;
	return 0;
}

static int
chan_start(struct bench_chan *c)
{
	return bench_thread_start(&c->thread, consumer, c);
}

static int
chan_send(struct bench_chan *c, unsigned sender, const struct bench_msg *m,
    bool may_block)
{
	if (zmq_send(c->tx[sender], m, sizeof *m, may_block ? 0 : ZMQ_DONTWAIT)
	    == (int)sizeof *m)
		return BENCH_SENT;
	return errno == EAGAIN ? BENCH_FULL : BENCH_ERROR;
}

static void
chan_free(struct bench_chan *c)
{
	if (c->thread.started) {
		/* Makes the blocked receive return ETERM. */
		zmq_ctx_shutdown(c->ctx);
		bench_thread_join(&c->thread);
	} else {
		for (unsigned i = 0; i < c->cfg.senders; i++)
			zmq_close(c->rx[i]);
	}
	for (unsigned i = 0; i < c->cfg.senders; i++)
		zmq_close(c->tx[i]);
	zmq_ctx_term(c->ctx);
	free(c->rx);
	free(c->tx);
	free(c);
}

/* ---- blocking call: REQ/REP -------------------------------------------- */

struct cw {
	void *ctx, *rep, *req;
	struct bench_thread thread;
};

/* cw_server answers every request with itself until the context ends. */
static void *
cw_server(void *arg)
{
	struct cw *w = arg;

	for (;;) {
		struct bench_msg m;
		int len = zmq_recv(w->rep, &m, sizeof m, 0);

		if (len < 0 && errno == EINTR)
			continue;
		if (len < 0)
			break; /* ETERM: the run is over */
		if (zmq_send(w->rep, &m, (size_t)len, 0) < 0 && errno == ETERM)
			break;
	}
	zmq_close(w->rep);
	return NULL;
}

/* cw_client makes warm + n blocking calls, timing each. Not inlined:
 * run --instructions finds the calling thread by this name. */
__attribute__((noinline)) static int
cw_client(struct cw *w, uint64_t warm, uint64_t n, uint64_t *rtt)
{
	for (uint64_t seq = 1; seq <= warm + n; seq++) {
		struct bench_msg req = { .seq = seq }, rep;
		int len;

		if (seq == warm + 1)
			bench_steady(true);
		req.payload = bench_payload(seq, 0);
		req.t_send_ns = bench_now_ns();
		if (zmq_send(w->req, &req, sizeof req, 0) != (int)sizeof req)
			bench_fail("zmq REQ send: %s", zmq_strerror(errno));
		do
			len = zmq_recv(w->req, &rep, sizeof rep, 0);
		while (len < 0 && errno == EINTR);
		if (len != (int)sizeof rep || rep.seq != seq
		    || rep.payload != bench_payload(seq, 0))
			bench_fail(
			    "zmq REQ: wrong answer to call %" PRIu64, seq);
		if (seq > warm)
			rtt[seq - warm - 1] = bench_now_ns() - rep.t_send_ns;
	}
	bench_steady(false);
	return 0;
}

static int
callwait(uint64_t warm, uint64_t n, uint64_t *rtt)
{
	struct cw w = { .ctx = zmq_ctx_new() };
	int zero = 0;

	if (!w.ctx)
		return -1;
	w.rep = zmq_socket(w.ctx, ZMQ_REP);
	w.req = zmq_socket(w.ctx, ZMQ_REQ);
	if (!w.rep || !w.req
	    || zmq_setsockopt(w.req, ZMQ_LINGER, &zero, sizeof zero)
	    || zmq_setsockopt(w.rep, ZMQ_LINGER, &zero, sizeof zero)
	    || zmq_bind(w.rep, "inproc://bench-rr")
	    || zmq_connect(w.req, "inproc://bench-rr"))
		bench_fail("zmq REQ/REP: %s", zmq_strerror(errno));
	/* Thread creation hands the REP socket over to its thread. */
	if (bench_thread_start(&w.thread, cw_server, &w))
		bench_fail("pthread_create");
	cw_client(&w, warm, n, rtt);
	zmq_close(w.req);
	zmq_ctx_shutdown(w.ctx);
	bench_thread_join(&w.thread);
	zmq_ctx_term(w.ctx);
	return 0;
}

static const struct bench_peer zmq = {
	.name = "zmq",
	.consumer = "blocking zmq_recv (zmq_poll with several senders), "
	            "not a loop; inproc PAIR per sender; REQ/REP for calls",
	.chan_new = chan_new,
	.chan_start = chan_start,
	.send = chan_send,
	.chan_free = chan_free,
	.callwait = callwait,
};

const struct bench_peer *const bench_peers[] = { &zmq, NULL };
