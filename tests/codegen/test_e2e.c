/* SPDX-License-Identifier: MIT */
/*
 * tests/codegen/test_e2e.c — generated code through a real hub.
 *
 * ok/all_types.json declares every field type. Every message kind is sent
 * with typed send functions and every field is checked on arrival on the
 * server's thread (strings, bytes, buffers and nested messages included);
 * a request travels with progress and reply; and messages still queued at
 * stop are destroyed through the generated destructors, which is seen
 * through the buffers' free functions (ASan and valgrind see the rest).
 */
#include <criterion/criterion.h>

#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "all_types.butler.h"

/* struct world is shared by the test thread and the servers. */
struct world {
	butler_hub *hub;
	atomic_int checked; /* messages whose every field was right */
	atomic_int wrong;   /* fields that were not */
	atomic_int buf_frees;
	atomic_int handled_main;
	int steps;   /* progress seen by main (main's thread) */
	int answers; /* replies seen by main */
	int pong;    /* replies to ping */
};

static int opaque_target;

static char *
dup_str(const char *s)
{
	char *d = malloc(strlen(s) + 1);

	cr_assert_not_null(d);
	return strcpy(d, s);
}

static void
count_free(void *data, void *ctx)
{
	struct world *w = ctx;

	free(data);
	atomic_fetch_add(&w->buf_frees, 1);
}

static struct at_scalars
make_scalars(void)
{
	struct at_scalars s = {
		.flag = true,
		.i8 = INT8_MIN,
		.i16 = INT16_MIN,
		.i32 = INT32_MIN,
		.i64 = INT64_MIN,
		.u8 = UINT8_MAX,
		.u16 = UINT16_MAX,
		.u32 = UINT32_MAX,
		.u64 = UINT64_MAX,
		.f32 = 1.5f,
		.f64 = -2.25e300,
	};

	return s;
}

static bool
scalars_ok(const struct at_scalars *s)
{
	return s->flag == true && s->i8 == INT8_MIN && s->i16 == INT16_MIN
	    && s->i32 == INT32_MIN && s->i64 == INT64_MIN && s->u8 == UINT8_MAX
	    && s->u16 == UINT16_MAX && s->u32 == UINT32_MAX
	    && s->u64 == UINT64_MAX && s->f32 == 1.5f && s->f64 == -2.25e300;
}

/* make_owned fills every owned kind of field with fresh allocations. */
static struct at_owned
make_owned(struct world *w, int n)
{
	struct at_owned m = { 0 };
	char text[32];

	snprintf(text, sizeof text, "text %d", n);
	m.text = dup_str(text);
	m.blob.len = 5;
	m.blob.data = malloc(5);
	cr_assert_not_null(m.blob.data);
	memcpy(m.blob.data, "\0\1\2\3\377", 5);
	m.shared.len = 64;
	m.shared.data = calloc(1, 64);
	cr_assert_not_null(m.shared.data);
	((unsigned char *)m.shared.data)[63] = (unsigned char)n;
	m.shared.free_fn = count_free;
	m.shared.ctx = w;
	m.opaque = &opaque_target;
	m.nums = make_scalars();
	m.wrapped.name = dup_str("inner");
	m.wrapped.data.len = 3;
	m.wrapped.data.data = malloc(3);
	cr_assert_not_null(m.wrapped.data.data);
	memcpy(m.wrapped.data.data, "xyz", 3);
	return m;
}

static bool
owned_ok(const struct at_owned *m, int n)
{
	char text[32];

	snprintf(text, sizeof text, "text %d", n);
	return m->text != NULL && strcmp(m->text, text) == 0
	    && m->blob.len == 5 && memcmp(m->blob.data, "\0\1\2\3\377", 5) == 0
	    && m->shared.len == 64
	    && ((unsigned char *)m->shared.data)[63] == (unsigned char)n
	    && m->shared.free_fn == count_free && m->opaque == &opaque_target
	    && scalars_ok(&m->nums) && strcmp(m->wrapped.name, "inner") == 0
	    && m->wrapped.data.len == 3
	    && memcmp(m->wrapped.data.data, "xyz", 3) == 0;
}

static void
verdict(struct world *w, bool ok)
{
	atomic_fetch_add(ok ? &w->checked : &w->wrong, 1);
}

/* tell_main lets the test thread, which drains main, see progress. */
static void
tell_main(struct world *w, uint32_t what)
{
	struct at_done d = { .what = what };

	cr_assert_eq(at_send_main_done(w->hub, &d), BUTLER_OK);
}

static int
sink_scalars(butler_server *self, void *user, struct at_scalars *msg)
{
	(void)self;
	verdict(user, scalars_ok(msg));
	tell_main(user, 1);
	return 0;
}

static int
sink_owned(butler_server *self, void *user, struct at_owned *msg)
{
	(void)self;
	verdict(user, owned_ok(msg, 7));
	tell_main(user, 2);
	return 0;
}

static int
sink_empty(butler_server *self, void *user, struct at_empty *msg)
{
	(void)self;
	(void)msg;
	verdict(user, true);
	tell_main(user, 3);
	return 0;
}

static int
sink_ask(butler_server *self, void *user, struct at_ask *msg)
{
	struct at_answer a = { .n = 42 };

	verdict(user, strcmp(msg->question, "why?") == 0);
	for (uint32_t k = 1; k <= 3; k++) {
		struct at_step s = { .k = k };

		cr_assert_eq(at_progress_ask(self, &s), BUTLER_OK);
	}
	a.text = dup_str("because");
	cr_assert_eq(at_reply_ask(self, &a), BUTLER_OK);
	return 0;
}

static int
sink_ping(butler_server *self, void *user, struct at_ping *msg)
{
	struct at_empty e = { 0 };

	verdict(user, msg->n == 9);
	return at_reply_ping(self, &e);
}

static int
pool_wrap(butler_server *self, void *user, struct at_wrap *msg)
{
	(void)self;
	verdict(user,
	    strcmp(msg->name, "pooled") == 0 && msg->data.len == 0
	        && msg->data.data == NULL);
	tell_main(user, 4);
	return 0;
}

static int
main_done(butler_server *self, void *user, struct at_done *msg)
{
	struct world *w = user;

	(void)self;
	(void)msg;
	atomic_fetch_add(&w->handled_main, 1);
	return 0;
}

static int
main_owned(butler_server *self, void *user, struct at_owned *msg)
{
	(void)self;
	(void)msg;
	(void)user;
	cr_assert_fail("owned messages to main must never be handled");
	return 0;
}

static void
on_step(butler_server *self, struct at_step *progress, void *user)
{
	struct world *w = user;

	(void)self;
	w->steps++;
	verdict(w, progress->k == (uint32_t)w->steps);
}

static void
on_answer(butler_server *self, int status, struct at_answer *reply, void *user)
{
	struct world *w = user;

	(void)self;
	verdict(w,
	    status == BUTLER_OK && reply != NULL
	        && strcmp(reply->text, "because") == 0 && reply->n == 42);
	w->answers++;
}

static void
on_pong(butler_server *self, int status, struct at_empty *reply, void *user)
{
	struct world *w = user;

	(void)self;
	verdict(w, status == BUTLER_OK && reply != NULL);
	w->pong++;
}

/* main_start runs on the test thread inside butler_hub_start(): main is a
 * butler server there, so it may make calls. */
static int
main_start(butler_server *self, void *user)
{
	struct world *w = user;
	struct at_ask q = { .question = dup_str("why?") };
	struct at_ping p = { .n = 9 };
	uint64_t id = 0;

	(void)self;
	cr_assert_eq(
	    at_call_sink_ask(w->hub, &q, 5000, on_answer, on_step, w, &id),
	    BUTLER_OK);
	cr_assert_neq(id, 0);
	cr_assert_eq(
	    at_call_sink_ping(w->hub, &p, 5000, on_pong, w, NULL), BUTLER_OK);
	return 0;
}

static void
register_all(struct world *w)
{
	struct at_sink_handlers sink = {
		.scalars = sink_scalars,
		.owned = sink_owned,
		.empty = sink_empty,
		.ask = sink_ask,
		.ping = sink_ping,
	};

	/* Both forms: the table, and one argument per handler (which does
	 * not compile with one missing or out of place). */
	cr_assert_eq(at_sink_register(w->hub, &sink, w), BUTLER_OK);
	cr_assert_eq(at_main_register_each(
	                 w->hub, w, main_start, NULL, main_done, main_owned),
	    BUTLER_OK);
	cr_assert_eq(at_pool_register_each(w->hub, w, NULL, NULL, pool_wrap),
	    BUTLER_OK);
}

/* drain_main handles main's inbox on this thread until `cond` holds. */
static void
drain_main(struct world *w, bool (*cond)(struct world *))
{
	int fd = butler_server_fd(w->hub, AT_SERVER_MAIN);

	cr_assert_geq(fd, 0);
	for (int spins = 0; !cond(w); spins++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		cr_assert_lt(spins, 1000, "main never got everything");
		poll(&p, 1, 10);
		cr_assert_eq(
		    butler_server_drain(w->hub, AT_SERVER_MAIN, 0, NULL),
		    BUTLER_OK);
	}
}

static bool
all_arrived(struct world *w)
{
	return atomic_load(&w->handled_main) == 4 && w->answers == 1
	    && w->pong == 1;
}

Test(e2e, every_kind_every_field)
{
	struct world w = { 0 };
	struct at_scalars s = make_scalars();
	struct at_owned o;
	struct at_empty e = { 0 };
	struct at_wrap wr = { .name = dup_str("pooled") };
	struct at_sink_msg tagged = { .kind = AT_SINK_EMPTY };

	cr_assert_eq(butler_hub_new(&w.hub, &at_spec), BUTLER_OK);
	register_all(&w);
	cr_assert_eq(butler_hub_start(w.hub), BUTLER_OK);

	o = make_owned(&w, 7);
	cr_assert_eq(at_send_sink_scalars(w.hub, &s), BUTLER_OK);
	cr_assert_eq(at_send_sink_owned(w.hub, &o), BUTLER_OK);
	cr_assert_eq(at_send_pool_wrap(w.hub, &wr), BUTLER_OK);
	/* The tagged-union send reaches the same handler as the typed one. */
	tagged.u.empty = e;
	cr_assert_eq(at_send_sink(w.hub, &tagged), BUTLER_OK);
	tagged.kind = AT_SINK_NONE;
	cr_assert_eq(at_send_sink(w.hub, &tagged), BUTLER_EKIND);

	drain_main(&w, all_arrived);
	cr_assert_eq(butler_hub_stop(w.hub, BUTLER_STOP_DRAIN), BUTLER_OK);
	/* scalars, owned, empty, wrap, ask, ping on the servers; 3 steps,
	 * the answer and the pong on main. */
	cr_expect_eq(atomic_load(&w.wrong), 0);
	cr_expect_eq(atomic_load(&w.checked), 6 + 3 + 1 + 1);
	cr_expect_eq(w.steps, 3);
	/* The handled owned message's buffer was released exactly once. */
	cr_expect_eq(atomic_load(&w.buf_frees), 1);
	butler_hub_free(w.hub);
}

Test(e2e, undelivered_destroyed_at_stop)
{
	struct world w = { 0 };
	enum { N = 10 };

	cr_assert_eq(butler_hub_new(&w.hub, &at_spec), BUTLER_OK);
	register_all(&w);
	cr_assert_eq(butler_hub_start(w.hub), BUTLER_OK);
	/* main is drained only by this thread, which never does: everything
	 * sent to it is still queued at stop. */
	for (int i = 0; i < N; i++) {
		struct at_owned o = make_owned(&w, i);

		cr_assert_eq(at_send_main_owned(w.hub, &o), BUTLER_OK);
	}
	cr_assert_eq(atomic_load(&w.buf_frees), 0);
	cr_assert_eq(butler_hub_stop(w.hub, BUTLER_STOP_DISCARD), BUTLER_OK);
	cr_expect_eq(atomic_load(&w.buf_frees), N);
	butler_hub_free(w.hub);
	cr_expect_eq(atomic_load(&w.buf_frees), N, "freed twice");
}

Test(e2e, never_started_hub_frees_queue)
{
	struct world w = { 0 };
	enum { N = 5 };

	cr_assert_eq(butler_hub_new(&w.hub, &at_spec), BUTLER_OK);
	for (int i = 0; i < N; i++) {
		struct at_owned o = make_owned(&w, i);

		cr_assert_eq(at_send_sink_owned(w.hub, &o), BUTLER_OK);
	}
	butler_hub_free(w.hub);
	cr_expect_eq(atomic_load(&w.buf_frees), N);
}

Test(e2e, missing_handler_refused)
{
	struct world w = { 0 };
	struct at_sink_handlers sink = { .scalars = sink_scalars };
	struct at_main_handlers main_h
	    = { .done = main_done, .owned = main_owned };
	struct at_pool_handlers pool = { .wrap = pool_wrap };

	cr_assert_eq(butler_hub_new(&w.hub, &at_spec), BUTLER_OK);
	cr_assert_eq(at_sink_register(w.hub, &sink, &w), BUTLER_OK);
	cr_assert_eq(at_main_register(w.hub, &main_h, &w), BUTLER_OK);
	cr_assert_eq(at_pool_register(w.hub, &pool, &w), BUTLER_OK);
	cr_assert_eq(butler_hub_start(w.hub), BUTLER_ENOHANDLER);
	butler_hub_free(w.hub);
}

Test(e2e, destroy_is_null_safe_and_clears)
{
	struct world w = { 0 };
	struct at_owned o = make_owned(&w, 1);
	struct at_main_msg m = { .kind = AT_MAIN_OWNED };

	at_owned_destroy(NULL);
	at_owned_destroy(&o);
	cr_assert_null(o.text);
	cr_assert_null(o.blob.data);
	cr_assert_null(o.shared.data);
	cr_assert_null(o.wrapped.name);
	cr_assert_eq(atomic_load(&w.buf_frees), 1);
	at_owned_destroy(&o); /* twice is harmless */
	cr_assert_eq(atomic_load(&w.buf_frees), 1);
	m.u.owned = make_owned(&w, 2);
	at_main_msg_destroy(&m);
	cr_assert_eq(atomic_load(&w.buf_frees), 2);
	at_scalars_destroy(NULL);
	cr_assert_eq(at_spec.n_messages, AT_MSG_COUNT);
	cr_assert_null(at_spec.messages[AT_MSG_SCALARS].destroy);
	cr_assert_not_null(at_spec.messages[AT_MSG_OWNED].destroy);
	cr_assert_eq(at_spec.messages[AT_MSG_ASK].reply, AT_MSG_ANSWER);
	cr_assert_eq(at_spec.messages[AT_MSG_ASK].progress, AT_MSG_STEP);
	cr_assert_eq(at_spec.servers[AT_SERVER_POOL].instances, 3);
	cr_assert_eq(at_spec.servers[AT_SERVER_POOL].full, BUTLER_FULL_BLOCK);
	cr_assert_eq(
	    at_spec.servers[AT_SERVER_MAIN].loop, BUTLER_LOOP_EXTERNAL);
}
