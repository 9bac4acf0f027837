/*
 * tests/bench/peer_glib.c — a GLib main loop fed from other threads.
 *
 *   glib_batch   producers push a heap copy onto a GAsyncQueue and call
 *                g_main_context_invoke() only when the queue was empty;
 *                the invoked function drains the queue on the loop.
 *   glib_invoke  g_main_context_invoke_full() per message, with the heap
 *                copy as its data: GLib's one-line idiom for "run this on
 *                that loop", costing an idle GSource per message.
 *
 * The consumer is a sleeping g_main_loop_run() on its own GMainContext.
 */
#include <glib.h>
#include <pthread.h>
#include <stdlib.h>

#include "bench.h"

struct bench_chan {
	struct bench_chan_cfg cfg;
	GMainContext *ctx;
	GMainLoop *loop;
	GAsyncQueue *queue;
	struct bench_thread thread;
};

/* One message travelling through glib_invoke. */
struct invoke {
	struct bench_chan *c;
	struct bench_msg m;
};

static gboolean
drain(gpointer data)
{
	struct bench_chan *c = data;
	struct bench_msg *m;

	while ((m = g_async_queue_try_pop(c->queue))) {
		c->cfg.on_msg(c->cfg.user, c->cfg.instance, m);
		g_free(m);
	}
	return G_SOURCE_REMOVE;
}

static gboolean
handle_one(gpointer data)
{
	struct invoke *inv = data;

	inv->c->cfg.on_msg(inv->c->cfg.user, inv->c->cfg.instance, &inv->m);
	return G_SOURCE_REMOVE;
}

static int
chan_new(struct bench_chan **out, const struct bench_chan_cfg *cfg)
{
	struct bench_chan *c = bench_xcalloc(1, sizeof *c);

	c->cfg = *cfg;
	c->ctx = g_main_context_new();
	c->loop = g_main_loop_new(c->ctx, FALSE);
	c->queue = g_async_queue_new_full(g_free);
	*out = c;
	return 0;
}

static void *
consumer(void *arg)
{
	struct bench_chan *c = arg;

	g_main_context_push_thread_default(c->ctx);
	g_main_loop_run(c->loop);
	g_main_context_pop_thread_default(c->ctx);
	return NULL;
}

static int
chan_start(struct bench_chan *c)
{
	return bench_thread_start(&c->thread, consumer, c);
}

static int
send_batch(struct bench_chan *c, unsigned sender, const struct bench_msg *m,
    bool may_block)
{
	struct bench_msg *copy = g_memdup2(m, sizeof *m);
	bool was_empty;

	(void)sender;
	(void)may_block;
	g_async_queue_lock(c->queue);
	was_empty = g_async_queue_length_unlocked(c->queue) <= 0;
	g_async_queue_push_unlocked(c->queue, copy);
	g_async_queue_unlock(c->queue);
	/* The drain empties the queue before it returns, so a push that finds
	 * it empty is the only one that needs to schedule another drain. */
	if (was_empty)
		g_main_context_invoke(c->ctx, drain, c);
	return BENCH_SENT;
}

static int
send_invoke(struct bench_chan *c, unsigned sender, const struct bench_msg *m,
    bool may_block)
{
	struct invoke *inv = g_new(struct invoke, 1);

	(void)sender;
	(void)may_block;
	inv->c = c;
	inv->m = *m;
	g_main_context_invoke_full(
	    c->ctx, G_PRIORITY_DEFAULT, handle_one, inv, g_free);
	return BENCH_SENT;
}

static void
chan_free(struct bench_chan *c)
{
	if (c->thread.started) {
		g_main_loop_quit(c->loop);
		bench_thread_join(&c->thread);
	}
	g_main_loop_unref(c->loop);
	/* Destroys pending idle sources, freeing their messages. */
	g_main_context_unref(c->ctx);
	g_async_queue_unref(c->queue);
	free(c);
}

static const struct bench_peer batch = {
	.name = "glib_batch",
	.consumer = "GLib main loop; GAsyncQueue; g_main_context_invoke on "
	            "empty->non-empty",
	.chan_new = chan_new,
	.chan_start = chan_start,
	.send = send_batch,
	.chan_free = chan_free,
};

static const struct bench_peer invoke = {
	.name = "glib_invoke",
	.consumer = "GLib main loop; g_main_context_invoke per message",
	.chan_new = chan_new,
	.chan_start = chan_start,
	.send = send_invoke,
	.chan_free = chan_free,
};

const struct bench_peer *const bench_peers[] = { &batch, &invoke, NULL };
