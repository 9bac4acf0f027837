/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/peer_null.c — no channel at all: the harness alone.
 *
 * send() calls the consumer's handler at once, on the sending thread, so a
 * case costs exactly the harness's own per-message work (building the
 * message, the send loop, the FIFO and payload checks, the counters) plus
 * one indirect call. `tests/bench/run --instructions` measures it and
 * subtracts it from every peer, which leaves what the transport costs.
 *
 * A handler that sends (the ping-pong) would recurse, so a send made from
 * inside a handler is parked in a one-message slot of the calling thread
 * and delivered when the outer handler returns (a trampoline): still no
 * queue, no wake-up, no other thread. Only one thread may send at a time,
 * so the null peer runs thru1 and the ping-pong; the 4->1 harness cost is
 * the 1->1 one (the same producer loop and the same checks).
 */
#include <stdlib.h>

#include "bench.h"

struct bench_chan {
	struct bench_chan_cfg cfg;
};

/* The message a handler sent, delivered after the handler returns. */
static _Thread_local struct {
	bool dispatching, parked;
	struct bench_chan *to;
	struct bench_msg m;
} tramp;

static int
chan_new(struct bench_chan **out, const struct bench_chan_cfg *cfg)
{
	struct bench_chan *c = bench_xcalloc(1, sizeof *c);

	c->cfg = *cfg;
	*out = c;
	return 0;
}

static int
chan_start(struct bench_chan *c)
{
	(void)c;
	return 0;
}

static int
chan_send(struct bench_chan *c, unsigned sender, const struct bench_msg *m,
    bool may_block)
{
	(void)sender;
	(void)may_block;
	if (tramp.dispatching) {
		if (tramp.parked)
			return BENCH_ERROR; /* a handler sent twice */
		tramp.parked = true;
		tramp.to = c;
		tramp.m = *m;
		return BENCH_SENT;
	}
	tramp.dispatching = true;
	c->cfg.on_msg(c->cfg.user, c->cfg.instance, m);
	while (tramp.parked) {
		struct bench_chan *to = tramp.to;
		struct bench_msg next = tramp.m;

		tramp.parked = false;
		to->cfg.on_msg(to->cfg.user, to->cfg.instance, &next);
	}
	tramp.dispatching = false;
	return BENCH_SENT;
}

static void
chan_free(struct bench_chan *c)
{
	free(c);
}

static const struct bench_peer null = {
	.name = "null",
	.consumer = "no channel: the handler is called by send() on the "
	            "sending thread (the harness alone)",
	.chan_new = chan_new,
	.chan_start = chan_start,
	.send = chan_send,
	.chan_free = chan_free,
	.workloads = "thru1 pingpong",
};

const struct bench_peer *const bench_peers[] = { &null, NULL };
