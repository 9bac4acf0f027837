/* SPDX-License-Identifier: MIT */
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
 *
 * GLib's own offload, the peers of butler's GLib adapter (offload_rtt and
 * offload_thru only): a GLib main loop on the calling thread keeps requests
 * in flight to a pool of worker threads, and each answer comes back to the
 * loop as a callback.
 *
 *   glib_gtask  g_task_new() + g_task_run_in_thread(): GIO's idiom; the
 *               worker g_task_return_pointer()s a copy of the request and
 *               the callback runs on the loop (GTask's own thread pool,
 *               which GLib sizes itself);
 *   glib_pool   a GThreadPool of BENCH_OFFLOAD_WORKERS threads; the worker
 *               hands the request back with g_main_context_invoke().
 */
#include <gio/gio.h>
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

/* ---- offload --------------------------------------------------------- */

struct off {
	struct bench_offload *o;
	GMainContext *ctx;
	GMainLoop *loop;
	GThreadPool *pool;
};

static void gtask_issue(struct off *st);

static void
gtask_work(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
	(void)source;
	(void)cancel;
	g_task_return_pointer(
	    task, g_memdup2(data, sizeof(struct bench_msg)), g_free);
}

static void
gtask_done(GObject *source, GAsyncResult *res, gpointer user)
{
	struct off *st = user;
	struct bench_msg *reply = g_task_propagate_pointer(G_TASK(res), NULL);
	bool last;

	(void)source;
	if (!reply)
		bench_fail("glib_gtask: no answer");
	last = bench_offload_done(st->o, reply);
	g_free(reply);
	if (last)
		g_main_loop_quit(st->loop);
	else
		gtask_issue(st);
}

static void
gtask_issue(struct off *st)
{
	struct bench_msg m;
	GTask *task;

	if (!bench_offload_next(st->o, &m))
		return;
	/* The callback runs on the thread-default context: the loop's. */
	task = g_task_new(NULL, NULL, gtask_done, st);
	g_task_set_task_data(task, g_memdup2(&m, sizeof m), g_free);
	g_task_run_in_thread(task, gtask_work);
	g_object_unref(task);
}

/* One request of glib_pool; the worker sends the same block back. */
struct pool_job {
	struct off *st;
	struct bench_msg m;
};

static void pool_issue(struct off *st);

static gboolean
pool_answer(gpointer data)
{
	struct pool_job *job = data;
	struct off *st = job->st;
	bool last = bench_offload_done(st->o, &job->m);

	g_free(job);
	if (last)
		g_main_loop_quit(st->loop);
	else
		pool_issue(st);
	return G_SOURCE_REMOVE;
}

static void
pool_work(gpointer data, gpointer user)
{
	struct pool_job *job = data;

	(void)user;
	g_main_context_invoke(job->st->ctx, pool_answer, job);
}

static void
pool_issue(struct off *st)
{
	struct pool_job *job = g_new(struct pool_job, 1);

	job->st = st;
	if (!bench_offload_next(st->o, &job->m)) {
		g_free(job);
		return;
	}
	if (!g_thread_pool_push(st->pool, job, NULL))
		bench_fail("glib_pool: g_thread_pool_push failed");
}

static int
offload(struct bench_offload *o, bool gtask)
{
	struct off st = { .o = o, .ctx = g_main_context_new() };
	GError *err = NULL;

	st.loop = g_main_loop_new(st.ctx, FALSE);
	g_main_context_push_thread_default(st.ctx);
	if (!gtask) {
		st.pool = g_thread_pool_new(
		    pool_work, NULL, (gint)o->workers, FALSE, &err);
		if (!st.pool)
			bench_fail("g_thread_pool_new: %s", err->message);
	}
	for (unsigned i = 0; i < o->inflight; i++)
		if (gtask)
			gtask_issue(&st);
		else
			pool_issue(&st);
	g_main_loop_run(st.loop);
	if (st.pool)
		g_thread_pool_free(st.pool, FALSE, TRUE);
	g_main_context_pop_thread_default(st.ctx);
	g_main_loop_unref(st.loop);
	g_main_context_unref(st.ctx);
	return 0;
}

static int
offload_gtask(struct bench_offload *o)
{
	return offload(o, true);
}

static int
offload_pool(struct bench_offload *o)
{
	return offload(o, false);
}

static const struct bench_peer gtask = {
	.name = "glib_gtask",
	.consumer = "GLib main loop; g_task_run_in_thread, callback on the "
	            "loop",
	.offload = offload_gtask,
};

static const struct bench_peer pool = {
	.name = "glib_pool",
	.consumer = "GLib main loop; GThreadPool of 2, answers through "
	            "g_main_context_invoke",
	.offload = offload_pool,
};

const struct bench_peer *const bench_peers[]
    = { &batch, &invoke, &gtask, &pool, NULL };
