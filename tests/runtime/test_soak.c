/* SPDX-License-Identifier: MIT */
/*
 * test_soak.c — a ring of 8 servers passing tokens, with owned messages and
 * requests whose timeouts race their replies, for BUTLER_SOAK_SECONDS
 * (default 60): no token lost or duplicated, every request ended exactly
 * once with the right answer, resident memory flat after the warm-up, and
 * every counter consistent with what was sent.
 */
#include "fixture.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

enum { N = 8, TOKENS = 256 };

static struct fx F;
static butler_hub *hub;
static atomic_int draining;
static atomic_uint absorbed[TOKENS];
static atomic_ulong absorbed_hops, forwards, owned_in, owned_sent;
static atomic_ulong calls, answers, ok, timed_out, wrong, other;

typedef void (*ask_reply_fn)(
    butler_server *self, int status, struct answer *reply, void *user);

static void
ask_thunk(
    butler_server *self, int status, void *reply, void (*cb)(void), void *user)
{
	((ask_reply_fn)cb)(self, status, reply, user);
}

static void
on_answer(butler_server *self, int status, struct answer *r, void *user)
{
	uint64_t x = (uint64_t)(uintptr_t)user;

	(void)self;
	atomic_fetch_add(&answers, 1);
	if (status == BUTLER_OK) {
		atomic_fetch_add(&ok, 1);
		if (r->y != 2 * x)
			atomic_fetch_add(&wrong, 1);
	} else if (status == BUTLER_ETIMEDOUT) {
		atomic_fetch_add(&timed_out, 1);
	} else {
		atomic_fetch_add(&other, 1);
	}
}

/* A per-thread generator: each server has its own. */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int
on_num(butler_server *self, void *user, struct num *m)
{
	static _Thread_local uint64_t seed;
	unsigned me = butler_server_id(self), next = (me + 1) % N;
	struct num out = *m;
	uint64_t r;

	(void)user;
	if (seed == 0)
		seed = 0x9E3779B97F4A7C15u * (me + 1);
	if (atomic_load(&draining)) {
		atomic_fetch_add(&absorbed[m->seq], 1);
		atomic_fetch_add(&absorbed_hops, m->producer);
		return 0;
	}
	r = rnd(&seed);
	out.producer++;
	atomic_fetch_add(&forwards, 1);
	cr_assert_eq(
	    butler_send(hub, next, K_NUM, &out, sizeof out), BUTLER_OK);
	if (r % 8 == 0) {
		struct owned o = fx_owned(r % FX_MAX_SERIALS);

		if (butler_send(hub, next, K_OWNED, &o, sizeof o) == BUTLER_OK)
			atomic_fetch_add(&owned_sent, 1);
		else
			free(o.text);
	}
	if (r % 16 == 1) {
		struct ask a = { r >> 20, (r >> 8) % 2000 };
		int rv = butler_call(hub, (unsigned)((r >> 4) % N), K_ASK, &a,
		    sizeof a, 1 + (int)((r >> 12) % 3), ask_thunk,
		    (void (*)(void))on_answer, (void *)(uintptr_t)a.x, NULL);

		if (rv == BUTLER_OK)
			atomic_fetch_add(&calls, 1);
	}
	return 0;
}

static int
on_owned(butler_server *self, void *user, struct owned *m)
{
	(void)self;
	(void)user;
	(void)m;
	atomic_fetch_add(&owned_in, 1);
	return 0;
}

static int
on_ask(butler_server *self, void *user, struct ask *m)
{
	struct answer a = { .y = 2 * m->x };

	(void)user;
	if (m->delay_us > 0) {
		struct timespec ts = { 0, (long)m->delay_us * 1000 };

		nanosleep(&ts, NULL);
	}
	return butler_reply(self, &a, sizeof a);
}

static long
rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, resident = 0;

	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%ld %ld", &size, &resident), 2);
	fclose(f);
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void
sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (time_t)s) * 1e9) };

	nanosleep(&ts, NULL);
}

Test(soak, ring_of_eight_with_requests_racing_their_timeouts, .timeout = 1800)
{
	struct fx_handlers h = fx_handlers_default();
	const char *env = getenv("BUTLER_SOAK_SECONDS");
	double seconds = env != NULL ? atof(env) : 60;
	unsigned long total_absorbed = 0, owned_ok;
	long warm, end;

	h.num = on_num;
	h.owned = on_owned;
	h.ask = on_ask;
	fx_init(&F, N, 1u << 12);
	hub = fx_hub(&F, &h, NULL);
	butler_hub_set_log(hub, fx_quiet, BUTLER_LOG_DEBUG, NULL);
	ASSERT_OK(butler_hub_start(hub));
	for (uint64_t t = 0; t < TOKENS; t++) {
		struct num n = { .seq = t };

		ASSERT_OK(
		    butler_send(hub, (unsigned)(t % N), K_NUM, &n, sizeof n));
	}
	sleep_s(seconds / 10);
	warm = rss_kib();
	sleep_s(seconds * 9 / 10);
	end = rss_kib();
	/* Drain: every token is absorbed where it is, exactly once. */
	atomic_store(&draining, 1);
	ASSERT_OK(butler_hub_stop_timeout(
	    hub, BUTLER_STOP_DRAIN, 60000, NULL, NULL));
	for (unsigned t = 0; t < TOKENS; t++) {
		cr_assert_eq(atomic_load(&absorbed[t]), 1,
		    "token %u absorbed %u times", t,
		    atomic_load(&absorbed[t]));
		total_absorbed++;
	}
	/* Each forward added one hop to one token. */
	cr_assert_eq(atomic_load(&absorbed_hops), atomic_load(&forwards));
	/* Every request ended once, with the right value when answered. */
	cr_assert_eq(atomic_load(&answers), atomic_load(&calls));
	cr_assert_eq(atomic_load(&wrong), 0);
	cr_assert_eq(atomic_load(&other), 0);
	cr_assert_gt(atomic_load(&ok), 0);
	cr_assert_gt(atomic_load(&timed_out), 0, "no timeout raced a reply");
	owned_ok = atomic_load(&owned_sent);
	cr_assert_eq(atomic_load(&owned_in), owned_ok);
	/* The counters agree with what was sent. */
	{
		uint64_t sent = 0, done = 0;

		for (unsigned s = 0; s < N; s++) {
			butler_stats st;

			ASSERT_OK(butler_server_stats(hub, s, &st));
			cr_assert_eq(st.sent,
			    st.handled + st.failed + st.dropped
			        + st.abandoned);
			cr_assert_eq(st.failed, 0);
			sent += st.sent;
			done += st.handled + st.abandoned;
		}
		cr_assert_eq(sent,
		    TOKENS + atomic_load(&forwards) + owned_ok
		        + atomic_load(&calls));
		cr_assert_eq(sent, done);
	}
	butler_hub_free(hub);
	cr_assert_eq(atomic_load(&fx_destroyed_total), owned_ok);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	/* Flat after the warm-up: nothing grows with time. */
	cr_assert_lt(
	    end - warm, 8192, "resident memory grew by %ld KiB", end - warm);
#else
	(void)warm;
	(void)end;
#endif
	printf("soak: %.0f s, %lu tokens, %lu forwards, %lu calls (%lu ok, "
	       "%lu timed out), %lu owned messages; RSS %ld -> %ld KiB\n",
	    seconds, total_absorbed, atomic_load(&forwards),
	    atomic_load(&calls), atomic_load(&ok), atomic_load(&timed_out),
	    owned_ok, warm, end);
}
