/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/peer_butler_offload.c — butler's offload from a GLib main
 * loop: the loop owns an external-loop server attached with
 * butler_glib_attach(), and calls a pool of BENCH_OFFLOAD_WORKERS threaded
 * servers with butler_call(); each reply callback runs on the loop's
 * thread and makes the next call. The workers answer with butler_reply(),
 * echoing the request. Its peers are GTask and GThreadPool (peer_glib.c).
 */
#include <butler/butler.h>
#include <butler/glib.h>
#include <glib.h>

#include "bench.h"

int bench_butler_offload(struct bench_offload *o);

enum { OFF_REQ, OFF_REP };
enum { OFF_GUI, OFF_WORKER };

struct off_handlers {
	int (*on_req)(
	    butler_server *self, void *user, const struct bench_msg *m);
};

static int
off_dispatch(butler_server *self, const void *handlers, void *user,
    unsigned kind, void *msg)
{
	const struct off_handlers *h = handlers;

	switch (kind) {
	case 1:
		return h->on_req(self, user, msg);
	}
	return BUTLER_EKIND;
}

static const char *
off_check(const void *handlers)
{
	const struct off_handlers *h = handlers;

	return h->on_req ? NULL : "req";
}

static const char *
off_check_gui(const void *handlers)
{
	(void)handlers;
	return NULL;
}

static const butler_msg_desc off_messages[] = {
	[OFF_REQ] = { .name = "req",
	    .size = sizeof(struct bench_msg),
	    .reply = OFF_REP,
	    .progress = -1 },
	[OFF_REP] = { .name = "rep",
	    .size = sizeof(struct bench_msg),
	    .reply = -1,
	    .progress = -1 },
};

static const unsigned off_worker_accepts[] = { OFF_REQ };

static const butler_server_desc off_servers[] = {
	[OFF_GUI] = { .name = "gui",
	    .loop = BUTLER_LOOP_EXTERNAL,
	    .instances = 1,
	    .capacity = 256,
	    .handlers_size = sizeof(struct off_handlers),
	    .check = off_check_gui,
	    .dispatch = off_dispatch },
	[OFF_WORKER] = { .name = "worker",
	    .instances = BENCH_OFFLOAD_WORKERS,
	    .capacity = 256,
	    .accepts = off_worker_accepts,
	    .n_accepts = 1,
	    .handlers_size = sizeof(struct off_handlers),
	    .check = off_check,
	    .dispatch = off_dispatch },
};

static const butler_spec off_spec = {
	.abi = BUTLER_GEN_ABI,
	.app = "bench_offload",
	.messages = off_messages,
	.n_messages = 2,
	.servers = off_servers,
	.n_servers = 2,
};

struct off {
	struct bench_offload *o;
	butler_hub *hub;
	GMainLoop *loop;
	int failed;
};

static void off_on_reply(butler_server *self, int status, void *reply,
    void (*cb)(void), void *user);

/* off_issue makes the next call, if any is left. The loop's thread. */
static void
off_issue(struct off *st)
{
	struct bench_msg m;
	int rv;

	if (st->failed || !bench_offload_next(st->o, &m))
		return;
	rv = butler_call(st->hub, OFF_WORKER, 1, &m, sizeof m, -1,
	    off_on_reply, NULL, st, NULL);
	if (rv) {
		st->failed = rv;
		g_main_loop_quit(st->loop);
	}
}

static void
off_on_reply(
    butler_server *self, int status, void *reply, void (*cb)(void), void *user)
{
	struct off *st = user;

	(void)self;
	(void)cb;
	if (status != BUTLER_OK) {
		st->failed = status;
		g_main_loop_quit(st->loop);
		return;
	}
	if (bench_offload_done(st->o, reply))
		g_main_loop_quit(st->loop);
	else
		off_issue(st);
}

static int
off_on_req(butler_server *self, void *user, const struct bench_msg *m)
{
	(void)user;
	return butler_reply(self, m, sizeof *m);
}

int
bench_butler_offload(struct bench_offload *o)
{
	static const struct off_handlers gui = { .on_req = NULL };
	static const struct off_handlers worker = { .on_req = off_on_req };
	GMainContext *ctx = g_main_context_new();
	struct off st = { .o = o, .loop = g_main_loop_new(ctx, FALSE) };
	GSource *src = NULL;
	int rv;

	g_main_context_push_thread_default(ctx);
	rv = butler_hub_new(&st.hub, &off_spec);
	if (rv == BUTLER_OK)
		rv = butler_hub_set_handlers(
		    st.hub, OFF_GUI, &gui, sizeof gui, NULL, NULL, &st);
	if (rv == BUTLER_OK)
		rv = butler_hub_set_handlers(st.hub, OFF_WORKER, &worker,
		    sizeof worker, NULL, NULL, &st);
	/* This thread starts the hub, so it owns the external server. */
	if (rv == BUTLER_OK)
		rv = butler_hub_start(st.hub);
	if (rv == BUTLER_OK)
		rv = butler_glib_attach(st.hub, OFF_GUI, ctx, 0, &src);
	if (rv == BUTLER_OK) {
		for (unsigned i = 0; i < o->inflight; i++)
			off_issue(&st);
		/* A quit before the run would be lost. */
		if (!st.failed)
			g_main_loop_run(st.loop);
		rv = st.failed;
	}
	if (src) {
		g_source_destroy(src);
		g_source_unref(src);
	}
	butler_hub_free(st.hub);
	g_main_context_pop_thread_default(ctx);
	g_main_loop_unref(st.loop);
	g_main_context_unref(ctx);
	if (rv)
		bench_fail("butler offload: %s", butler_strerror(rv));
	return 0;
}
