/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/peer_uv.c — a libuv loop fed through uv_async_send().
 *
 * Producers append to the same mutex-protected queue as the libevent peers
 * and call uv_async_send() for every message, which is libuv's idiom: it
 * coalesces by itself and writes its eventfd only when no wake-up is
 * pending. The consumer is a sleeping uv_run() whose async callback swaps
 * out the whole queue.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <uv.h>

#include "bench.h"
#include "mutexq.h"

struct bench_chan {
	struct bench_chan_cfg cfg;
	struct mutexq q;
	struct mutexq_batch batch;
	uv_loop_t loop;
	uv_async_t async;
	atomic_bool stop;
	struct bench_thread thread;
};

static void
on_async(uv_async_t *async)
{
	struct bench_chan *c = async->data;
	size_t n;

	if (atomic_load(&c->stop)) {
		/* With its only handle closed, uv_run() returns. */
		uv_close((uv_handle_t *)async, NULL);
		return;
	}
	n = mutexq_take(&c->q, &c->batch);
	for (size_t i = 0; i < n; i++)
		c->cfg.on_msg(c->cfg.user, c->cfg.instance, &c->batch.msgs[i]);
}

static int
chan_new(struct bench_chan **out, const struct bench_chan_cfg *cfg)
{
	struct bench_chan *c = bench_xcalloc(1, sizeof *c);

	c->cfg = *cfg;
	mutexq_init(&c->q, &c->batch);
	if (uv_loop_init(&c->loop)
	    || uv_async_init(&c->loop, &c->async, on_async))
		return -1;
	c->async.data = c;
	*out = c;
	return 0;
}

static void *
consumer(void *arg)
{
	struct bench_chan *c = arg;

	uv_run(&c->loop, UV_RUN_DEFAULT);
	return NULL;
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
	(void)sender;
	(void)may_block;
	mutexq_push(&c->q, m);
	return uv_async_send(&c->async) ? BENCH_ERROR : BENCH_SENT;
}

static void
chan_free(struct bench_chan *c)
{
	atomic_store(&c->stop, true);
	if (c->thread.started) {
		uv_async_send(&c->async);
		bench_thread_join(&c->thread);
	} else {
		uv_close((uv_handle_t *)&c->async, NULL);
		uv_run(&c->loop, UV_RUN_DEFAULT);
	}
	uv_loop_close(&c->loop);
	mutexq_release(&c->q, &c->batch);
	free(c);
}

static const struct bench_peer uv = {
	.name = "libuv",
	.consumer = "uv_run loop; mutex queue; uv_async_send per message "
	            "(libuv coalesces)",
	.chan_new = chan_new,
	.chan_start = chan_start,
	.send = chan_send,
	.chan_free = chan_free,
};

const struct bench_peer *const bench_peers[] = { &uv, NULL };
