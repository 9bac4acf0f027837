/* SPDX-License-Identifier: MIT */
/*
 * tests/bridge/test_bridge.c — two hubs joined by a bridge in one process
 * (pair.h), over loopback TCP and ipc: every field type both ways, calls
 * with deferred answers, progress, timeouts and cancels that reach the
 * remote handler, backpressure that ends in BUTLER_EFULL at the sender,
 * order, a lost link, refusals (secret, spec, servers), the stop.
 */
#include <criterion/criterion.h>

#include "pair.h"

static struct side A = { .name = "A" }, B = { .name = "B" };
static const char *const both[] = { "worker", "sink" };

static int
ignore_all(butler_server *self, unsigned kind, const butler_msg_desc *msg,
    void *payload, void *user)
{
	(void)self, (void)kind, (void)msg, (void)payload, (void)user;
	return BUTLER_OK;
}

static void
pair_up(const char *url)
{
	int rv = side_expose(&B, url, both, 2, config());

	cr_assert_eq(rv, BUTLER_OK, "B: %s", butler_strerror(rv));
	cr_assert_not_null(butler_bridge_url(B.br, 0));
	rv = side_use(&A, butler_bridge_url(B.br, 0), config());
	cr_assert_eq(rv, BUTLER_OK, "A: %s", butler_strerror(rv));
	rv = butler_bridge_wait(A.br, 5000);
	cr_assert_eq(rv, BUTLER_OK, "link up: %s", butler_strerror(rv));
}

static void
pair_down(void)
{
	side_down(&A);
	side_down(&B);
}

static void
tcp_up(void)
{
	pair_up("tcp://127.0.0.1:0");
}

static void
ipc_up(void)
{
	char url[128];

	snprintf(url, sizeof url, "ipc:///tmp/butler-bridge-test-%d.sock",
	    (int)getpid());
	pair_up(url);
}

/* ---- every field type
 * --------------------------------------------------------- */

static void
free_buf(void *data, void *ctx)
{
	(void)ctx;
	free(data);
}

static struct bt_every
sample(unsigned variant)
{
	struct bt_every v = { 0 };
	uint8_t *bytes = malloc(5);
	char *bufd = malloc(3);

	memcpy(bytes, "\0\1\2\xff\x80", 5);
	memcpy(bufd, "buf", 3);
	v.f_bool = variant & 1;
	v.f_i8 = INT8_MIN;
	v.f_i16 = -12345;
	v.f_i32 = INT32_MIN + 7;
	v.f_i64 = INT64_MIN + (int64_t)variant;
	v.f_u8 = UINT8_MAX;
	v.f_u16 = 54321;
	v.f_u32 = UINT32_MAX - variant;
	v.f_u64 = UINT64_MAX - 3;
	v.f_f32 = variant ? -0.0f : NAN;
	v.f_f64 = variant ? INFINITY : 3.141592653589793;
	v.f_string = strdup(variant ? "" : "h\xc3\xa9llo, bridge");
	v.f_null = NULL;
	v.f_bytes.data = bytes;
	v.f_bytes.len = 5;
	v.f_buf.data = bufd;
	v.f_buf.len = 3;
	v.f_buf.free_fn = free_buf;
	v.f_inner.tag = strdup("inner");
	v.f_inner.n = -2;
	return v;
}

static void
same(const struct bt_every *a, const struct bt_every *b)
{
	cr_expect_eq(a->f_bool, b->f_bool);
	cr_expect_eq(a->f_i8, b->f_i8);
	cr_expect_eq(a->f_i16, b->f_i16);
	cr_expect_eq(a->f_i32, b->f_i32);
	cr_expect_eq(a->f_i64, b->f_i64);
	cr_expect_eq(a->f_u8, b->f_u8);
	cr_expect_eq(a->f_u16, b->f_u16);
	cr_expect_eq(a->f_u32, b->f_u32);
	cr_expect_eq(a->f_u64, b->f_u64);
	cr_expect(memcmp(&a->f_f32, &b->f_f32, sizeof a->f_f32) == 0,
	    "f32 bits differ");
	cr_expect(memcmp(&a->f_f64, &b->f_f64, sizeof a->f_f64) == 0,
	    "f64 bits differ");
	cr_assert_not_null(b->f_string);
	cr_expect_str_eq(a->f_string, b->f_string);
	cr_expect_null(b->f_null);
	cr_assert_eq(b->f_bytes.len, a->f_bytes.len);
	cr_expect(
	    memcmp(a->f_bytes.data, b->f_bytes.data, a->f_bytes.len) == 0);
	cr_assert_eq(b->f_buf.len, a->f_buf.len);
	cr_expect(memcmp(a->f_buf.data, b->f_buf.data, a->f_buf.len) == 0);
	cr_assert_not_null(b->f_inner.tag);
	cr_expect_str_eq(a->f_inner.tag, b->f_inner.tag);
	cr_expect_eq(a->f_inner.n, b->f_inner.n);
}

static bool
got_every(void *arg)
{
	return rec.everies >= *(unsigned *)arg;
}

static void
round_trip(void)
{
	for (unsigned variant = 0; variant < 2; variant++) {
		struct bt_every want = sample(variant), sent = sample(variant);
		struct bt_echo req = { .v = sample(variant) };
		struct bt_every reply = { 0 };
		unsigned n = variant + 1;
		int rv;

		/* A request and its reply. */
		rv = bt_call_worker_echo_wait(A.hub, &req, 5000, &reply);
		cr_assert_eq(rv, BUTLER_OK, "echo: %s", butler_strerror(rv));
		same(&want, &reply);
		bt_every_destroy(&reply);

		/* A message. */
		rv = bt_send_worker_every(A.hub, &sent);
		cr_assert_eq(rv, BUTLER_OK, "send: %s", butler_strerror(rv));
		cr_assert(wait_until(got_every, &n, 5000), "message not seen");
		pthread_mutex_lock(&rec.mtx);
		cr_expect(rec.every_hub == B.hub, "handled in the wrong hub");
		same(&want, &rec.every);
		pthread_mutex_unlock(&rec.mtx);
		bt_every_destroy(&want);
	}
}

Test(bridge, round_trip_tcp, .timeout = 60)
{
	tcp_up();
	round_trip();
	pair_down();
}

Test(bridge, round_trip_ipc, .timeout = 60)
{
	ipc_up();
	round_trip();
	pair_down();
}

/* ---- requests
 * ----------------------------------------------------------------- */

struct adder {
	pthread_t t;
	int64_t base;
	unsigned ok;
};

static void *
adder_main(void *arg)
{
	struct adder *a = arg;

	for (int64_t i = 0; i < 200; i++) {
		struct bt_sum s = { 0 };
		int rv = bt_call_worker_add_wait(A.hub,
		    &(struct bt_add) {
		        .a = a->base, .b = i, .delay_ms = (uint32_t)(i % 3) },
		    5000, &s);

		if (rv == BUTLER_OK && s.s == a->base + i)
			a->ok++;
	}
	return NULL;
}

Test(bridge, deferred_answers_from_many_threads, .timeout = 120)
{
	tcp_up();
	struct adder ad[4];

	for (unsigned i = 0; i < 4; i++) {
		ad[i] = (struct adder) { .base = 1000000 * (int64_t)i };
		cr_assert_eq(
		    pthread_create(&ad[i].t, NULL, adder_main, &ad[i]), 0);
	}
	for (unsigned i = 0; i < 4; i++) {
		pthread_join(ad[i].t, NULL);
		cr_expect_eq(ad[i].ok, 200,
		    "thread %u: %u of 200 answered right", i, ad[i].ok);
	}
	cr_expect_eq(butler_hub_pending(A.hub, NULL, NULL), 0);
	pair_down();
}

static bool
answered(void *arg)
{
	(void)arg;
	return rec.slow_answered;
}

Test(bridge, progress_then_reply, .timeout = 60)
{
	tcp_up();
	int rv = bt_send_client_kick(A.hub,
	    &(struct bt_kick) { .what = 1, .n = 5, .timeout_ms = 5000 });

	cr_assert_eq(rv, BUTLER_OK);
	cr_assert(wait_until(answered, NULL, 10000));
	pthread_mutex_lock(&rec.mtx);
	cr_expect_eq(rec.slow_status, BUTLER_OK, "%s",
	    butler_strerror(rec.slow_status));
	cr_expect_eq(rec.progress, 5, "progress %u of 5", rec.progress);
	cr_expect_eq(rec.done.steps, 5);
	cr_expect(!rec.done.cancelled);
	/* The deadline travelled: the remote handler saw it. */
	cr_expect(rec.done.left_ms > 0 && rec.done.left_ms <= 5000,
	    "time left %lld", (long long)rec.done.left_ms);
	cr_expect(rec.slow_hub == B.hub);
	pthread_mutex_unlock(&rec.mtx);
	pair_down();
}

static bool
slow_ended(void *arg)
{
	return atomic_load(&rec.slow_ended) >= *(unsigned *)arg;
}

static bool
slow_started(void *arg)
{
	return atomic_load(&rec.slow_started) >= *(unsigned *)arg;
}

Test(bridge, timeout_reaches_the_remote_handler, .timeout = 60)
{
	tcp_up();
	struct bt_done d = { 0 };
	unsigned one = 1;
	/* 200 steps of 10 ms: 2 s of work, asked for 150 ms. */
	int rv = bt_call_worker_slow_wait(
	    A.hub, &(struct bt_slow) { .steps = 200, .step_ms = 10 }, 150, &d);

	cr_expect_eq(rv, BUTLER_ETIMEDOUT, "%s", butler_strerror(rv));
	/* The remote handler sees butler_cancelled() and stops early. */
	cr_assert(
	    wait_until(slow_ended, &one, 3000), "remote handler still runs");
	cr_expect_eq(atomic_load(&rec.slow_cancelled), 1);
	cr_expect(atomic_load(&rec.slow_left_ms) > 0
	        && atomic_load(&rec.slow_left_ms) <= 150,
	    "time left %lld", (long long)atomic_load(&rec.slow_left_ms));
	pair_down();
}

Test(bridge, cancel_reaches_the_remote_handler, .timeout = 60)
{
	tcp_up();
	unsigned one = 1;
	int rv = bt_send_client_kick(A.hub,
	    &(struct bt_kick) { .what = 1, .n = 500, .timeout_ms = -1 });

	cr_assert_eq(rv, BUTLER_OK);
	cr_assert(wait_until(slow_started, &one, 5000));
	rv = bt_send_client_kick(A.hub, &(struct bt_kick) { .what = 2 });
	cr_assert_eq(rv, BUTLER_OK);
	cr_assert(wait_until(answered, NULL, 5000));
	cr_assert(
	    wait_until(slow_ended, &one, 3000), "remote handler still runs");
	cr_expect_eq(atomic_load(&rec.slow_cancelled), 1);
	pthread_mutex_lock(&rec.mtx);
	cr_expect_eq(rec.slow_status, BUTLER_ECANCELED, "%s",
	    butler_strerror(rec.slow_status));
	cr_expect_eq(atomic_load(&rec.slow_left_ms), -1);
	pthread_mutex_unlock(&rec.mtx);
	pair_down();
}

/* ---- messages: backpressure and order
 * --------------------------------------------- */

static bool
notes_at_least(void *arg)
{
	return rec.notes >= *(uint64_t *)arg;
}

/* The sink (capacity 8) is held shut: what is queued anywhere is bounded,
 * and the sender ends up with BUTLER_EFULL, not an unbounded buffer. */
static void
backpressure_up(void)
{
	butler_bridge_config cb = config(), ca = config();
	int rv;

	cb.window = 16;
	rv = side_expose(&B, "tcp://127.0.0.1:0", both, 2, cb);
	cr_assert_eq(rv, BUTLER_OK, "B: %s", butler_strerror(rv));
	rv = side_use(&A, butler_bridge_url(B.br, 0), ca);
	cr_assert_eq(rv, BUTLER_OK, "A: %s", butler_strerror(rv));
	cr_assert_eq(butler_bridge_wait(A.br, 5000), BUTLER_OK);
}

Test(bridge, full_remote_inbox_is_efull_here, .timeout = 60)
{
	backpressure_up();
	uint64_t accepted = 0, seq = 0;
	butler_bridge_counters st;
	int rv = BUTLER_OK;
	/* Bound: A's proxy inbox (8, per sending thread) + the one its
	 * handler holds waiting for credit + the window (16) + B's sink
	 * inbox (8) + the one its handler holds. */
	const uint64_t bound = 8 + 1 + 16 + 8 + 1;

	pthread_mutex_lock(&rec.mtx);
	rec.gate_closed = true;
	pthread_mutex_unlock(&rec.mtx);
	for (unsigned tries = 0; tries < 2000; tries++) {
		rv = bt_send_sink_note(
		    A.hub, &(struct bt_note) { .seq = seq, .from = 0 });
		if (rv == BUTLER_OK) {
			accepted++;
			seq++;
			continue;
		}
		cr_assert_eq(rv, BUTLER_EFULL, "%s", butler_strerror(rv));
		if (accepted >= bound - 4)
			break;
		usleep(2000); /* the pipeline is still filling */
	}
	cr_expect_eq(rv, BUTLER_EFULL);
	cr_expect(accepted <= bound, "%llu accepted, more than the bound %llu",
	    (unsigned long long)accepted, (unsigned long long)bound);
	cr_expect(
	    accepted >= 8, "only %llu accepted", (unsigned long long)accepted);
	/* The proxy is waiting for credit (or is about to). */
	for (int i = 0; i < 200; i++) {
		butler_bridge_stats(A.br, &st);
		if (st.credit_waits > 0)
			break;
		usleep(10000);
	}
	cr_expect((st.credit_waits) > (0), "accepted %llu, frames out %llu",
	    (unsigned long long)accepted, (unsigned long long)st.frames_out);

	pthread_mutex_lock(&rec.mtx);
	rec.gate_closed = false;
	wake();
	pthread_mutex_unlock(&rec.mtx);
	cr_assert(wait_until(notes_at_least, &accepted, 10000),
	    "not all %llu notes arrived", (unsigned long long)accepted);
	pthread_mutex_lock(&rec.mtx);
	cr_expect_eq(rec.notes, accepted);
	cr_expect_eq(rec.notes_out_of_order, 0);
	pthread_mutex_unlock(&rec.mtx);
	pair_down();
}

Test(bridge, many_messages_in_order, .timeout = 120)
{
	tcp_up();
	const uint64_t n = 200000;
	uint64_t seq = 0;

	while (seq < n) {
		int rv = bt_send_sink_note(
		    A.hub, &(struct bt_note) { .seq = seq, .from = 1 });

		if (rv == BUTLER_EFULL) {
			usleep(100);
			continue;
		}
		cr_assert_eq(rv, BUTLER_OK, "%s", butler_strerror(rv));
		seq++;
	}
	cr_assert(wait_until(notes_at_least, (void *)&n, 60000),
	    "not all %llu notes arrived", (unsigned long long)n);
	pthread_mutex_lock(&rec.mtx);
	cr_expect_eq(rec.notes, n);
	cr_expect_eq(rec.notes_out_of_order, 0);
	cr_expect(rec.sink_hub == B.hub);
	pthread_mutex_unlock(&rec.mtx);
	pair_down();
}

/* ---- refusals
 * ---------------------------------------------------------------------- */

Test(bridge, wrong_secret_is_refused, .timeout = 60)
{
	butler_bridge_config ca = config();
	butler_bridge_counters sa, sb;
	struct bt_sum s;
	int rv;

	rv = side_expose(&B, "tcp://127.0.0.1:0", both, 2, config());
	cr_assert_eq(rv, BUTLER_OK);
	ca.secret = "another secret, not B's one";
	ca.secret_len = strlen(ca.secret);
	rv = side_use(&A, butler_bridge_url(B.br, 0), ca);
	cr_assert_eq(rv, BUTLER_OK);
	cr_expect_eq(butler_bridge_wait(A.br, 500), BUTLER_ETIMEDOUT);
	rv = bt_call_worker_add_wait(
	    A.hub, &(struct bt_add) { .a = 1, .b = 2 }, 1000, &s);
	cr_expect_eq(rv, BUTLER_ECLOSED, "%s", butler_strerror(rv));
	butler_bridge_stats(A.br, &sa);
	butler_bridge_stats(B.br, &sb);
	cr_expect((sa.refused) > (0));
	cr_expect((sb.refused) > (0));
	cr_expect_eq(sa.connects, 0);
	cr_expect_eq(sb.connects, 0);
	cr_expect(log_has("does not know the shared secret"), "%s", rec.log);
	pair_down();
}

Test(bridge, spec_mismatch_is_refused_naming_both, .timeout = 60)
{
	/* B is built from the same spec under another hash and version, as
	 * a peer built from an edited spec would be. */
	static butler_spec other;
	const char *url = "tcp://127.0.0.1:0";
	butler_bridge_config cb = config();
	char want[256];
	int rv;

	other = bt_spec;
	other.wire_hash ^= 0x5a5a;
	other.version = "2.0";
	cr_assert_eq(butler_hub_new(&B.hub, &other), BUTLER_OK);
	for (unsigned i = 0; i < butler_server_count(B.hub); i++)
		butler_hub_set_raw_handler(
		    B.hub, i, ignore_all, NULL, NULL, NULL);
	cb.listen = &url;
	cb.n_listen = 1;
	cb.expose = both;
	cb.n_expose = 2;
	cb.log_user = (void *)"B";
	cr_assert_eq(butler_bridge_new(&B.br, B.hub, &other, &cb), BUTLER_OK);
	cr_assert_eq(butler_hub_start(B.hub), BUTLER_OK);
	rv = side_use(&A, butler_bridge_url(B.br, 0), config());
	cr_assert_eq(rv, BUTLER_OK);
	cr_expect_eq(butler_bridge_wait(A.br, 500), BUTLER_ETIMEDOUT);
	snprintf(want, sizeof want,
	    "peer spec hash 0x%016llx (version 2.0) differs from ours "
	    "0x%016llx "
	    "(version 1.0)",
	    (unsigned long long)other.wire_hash,
	    (unsigned long long)bt_spec.wire_hash);
	cr_expect(log_has(want), "no '%s' in:\n%s", want, rec.log);
	snprintf(want, sizeof want,
	    "peer spec hash 0x%016llx (version 1.0) differs from ours "
	    "0x%016llx "
	    "(version 2.0)",
	    (unsigned long long)bt_spec.wire_hash,
	    (unsigned long long)other.wire_hash);
	cr_expect(log_has(want), "no '%s' in:\n%s", want, rec.log);
	pair_down();
}

Test(bridge, server_not_exposed_is_refused, .timeout = 60)
{
	static const char *const worker_only[] = { "worker" };
	int rv
	    = side_expose(&B, "tcp://127.0.0.1:0", worker_only, 1, config());

	cr_assert_eq(rv, BUTLER_OK);
	rv = side_use(&A, butler_bridge_url(B.br, 0), config());
	cr_assert_eq(rv, BUTLER_OK);
	cr_expect_eq(butler_bridge_wait(A.br, 500), BUTLER_ETIMEDOUT);
	cr_expect(log_has("server 'sink' of spec 'bt' is not exposed here"),
	    "%s", rec.log);
	pair_down();
}

/* ---- a lost link
 * ----------------------------------------------------------------------- */

struct waiter {
	pthread_t t;
	uint32_t delay_ms;
	int rv;
	uint64_t took_ms;
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void *
waiter_main(void *arg)
{
	struct waiter *w = arg;
	struct bt_sum s;
	uint64_t t0 = now_ms();

	w->rv = bt_call_worker_add_wait(A.hub,
	    &(struct bt_add) { .a = 1, .b = 2, .delay_ms = w->delay_ms },
	    30000, &s);
	w->took_ms = now_ms() - t0;
	return NULL;
}

Test(bridge, lost_link_ends_requests_with_eclosed, .timeout = 60)
{
	tcp_up();
	struct waiter w = { .delay_ms = 20000 };
	butler_bridge_counters st = { 0 };
	struct bt_sum s;
	int rv;

	cr_assert_eq(pthread_create(&w.t, NULL, waiter_main, &w), 0);
	/* The request is deferred in B (answered in 20 s). */
	for (int i = 0; i < 500 && butler_hub_pending(B.hub, NULL, NULL) == 0;
	     i++)
		usleep(10000);
	cr_assert_gt(butler_hub_pending(B.hub, NULL, NULL), 0);
	/* B goes away with it in flight. */
	butler_hub_stop(B.hub, BUTLER_STOP_DISCARD);
	butler_hub_free(B.hub);
	butler_bridge_free(B.br);
	B.hub = NULL;
	B.br = NULL;
	pthread_join(w.t, NULL);
	cr_expect_eq(w.rv, BUTLER_ECLOSED, "%s", butler_strerror(w.rv));
	cr_expect((w.took_ms) < (5000));
	/* And while it is down, at once. */
	rv = bt_call_worker_add_wait(
	    A.hub, &(struct bt_add) { .a = 1, .b = 2 }, 5000, &s);
	cr_expect_eq(rv, BUTLER_ECLOSED, "%s", butler_strerror(rv));
	cr_expect_eq(butler_hub_pending(A.hub, NULL, NULL), 0);
	/* A message is accepted here and counted as not delivered. */
	cr_expect_eq(bt_send_sink_note(A.hub, &(struct bt_note) { .seq = 0 }),
	    BUTLER_OK);
	for (int i = 0; i < 200; i++) {
		butler_bridge_stats(A.br, &st);
		if (st.dropped > 0)
			break;
		usleep(10000);
	}
	cr_expect_eq(st.dropped, 1);
	cr_expect_eq(st.lost, 1);
	cr_expect((st.closed) >= (1), "%llu requests closed",
	    (unsigned long long)st.closed);
	pair_down();
}

/* ---- stops ---------------------------------------------------------------
 */

struct stopper {
	pthread_t t;
	butler_hub *hub;
	int rv;
};

static void *
stopper_main(void *arg)
{
	struct stopper *s = arg;

	s->rv = butler_hub_stop(s->hub, BUTLER_STOP_DRAIN);
	return NULL;
}

/* A's DRAIN finishes what went over the link before it returns. */
Test(bridge, drain_here_waits_for_answers_from_there, .timeout = 60)
{
	struct waiter w = { .delay_ms = 300 };

	tcp_up();
	cr_assert_eq(pthread_create(&w.t, NULL, waiter_main, &w), 0);
	for (int i = 0; i < 500 && butler_hub_pending(B.hub, NULL, NULL) == 0;
	     i++)
		usleep(10000);
	cr_assert((butler_hub_pending(B.hub, NULL, NULL)) > (0));
	cr_expect_eq(butler_hub_stop(A.hub, BUTLER_STOP_DRAIN), BUTLER_OK);
	pthread_join(w.t, NULL);
	cr_expect_eq(w.rv, BUTLER_OK, "%s", butler_strerror(w.rv));
	pair_down();
}

/* B's DRAIN finishes what it accepted, and refuses what comes after. */
Test(bridge, drain_there_refuses_new_requests, .timeout = 60)
{
	struct waiter w = { .delay_ms = 500 };
	struct stopper st = { 0 };
	struct bt_sum s;
	int rv;

	tcp_up();
	cr_assert_eq(pthread_create(&w.t, NULL, waiter_main, &w), 0);
	for (int i = 0; i < 500 && butler_hub_pending(B.hub, NULL, NULL) == 0;
	     i++)
		usleep(10000);
	cr_assert((butler_hub_pending(B.hub, NULL, NULL)) > (0));
	/* B stops while the call is deferred there. */
	st.hub = B.hub;
	cr_assert_eq(pthread_create(&st.t, NULL, stopper_main, &st), 0);
	usleep(100000);
	rv = bt_call_worker_add_wait(
	    A.hub, &(struct bt_add) { .a = 1, .b = 2 }, 5000, &s);
	cr_expect_eq(rv, BUTLER_ECLOSED, "%s", butler_strerror(rv));
	pthread_join(w.t, NULL);
	cr_expect_eq(
	    w.rv, BUTLER_OK, "the accepted call: %s", butler_strerror(w.rv));
	pthread_join(st.t, NULL);
	cr_expect_eq(st.rv, BUTLER_OK);
	pair_down();
}
