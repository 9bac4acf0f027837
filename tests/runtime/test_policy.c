/* SPDX-License-Identifier: MIT */
/*
 * test_policy.c — delivery policies: each overload policy under a flood
 * from 4 producers (what is kept, what is dropped, every dropped message
 * destroyed exactly once, what each sender was told), the total bound with
 * 50 sender threads, purge, per-kind metrics that match what was sent,
 * deliveries bound to the life of something else, and progress bounded by
 * the caller's capacity.
 */
#include "fixture.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>

enum { SRV = 0, N_PRODUCERS = 4, PER_PRODUCER = 200, CAP = 8 };

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* The handler of `owned` holds its first message until the gate opens,
 * and records every serial it handles. */
static atomic_int gate, holding;
static atomic_uint handled_n;
static _Atomic uint64_t handled_serial[N_PRODUCERS * PER_PRODUCER + 64];

static int
held_owned(butler_server *self, void *user, struct owned *m)
{
	unsigned i;

	(void)self;
	(void)user;
	if (!atomic_exchange(&holding, 1))
		while (!atomic_load(&gate))
			sleep_ms(1);
	i = atomic_fetch_add(&handled_n, 1);
	if (i < sizeof handled_serial / sizeof handled_serial[0])
		atomic_store(&handled_serial[i], m->serial);
	return 0;
}

static void
reset(void)
{
	atomic_store(&gate, 0);
	atomic_store(&holding, 0);
	atomic_store(&handled_n, 0);
	atomic_store(&fx_destroyed_total, 0);
	for (unsigned i = 0; i < N_PRODUCERS * PER_PRODUCER + 64; i++)
		atomic_store(&fx_destroyed[i], 0);
}

/* Whether serial s was handled. */
static bool
was_handled(uint64_t s)
{
	for (unsigned i = 0; i < atomic_load(&handled_n); i++)
		if (atomic_load(&handled_serial[i]) == s)
			return true;
	return false;
}

struct flood {
	butler_hub *hub;
	unsigned id;
	int rv[PER_PRODUCER]; /* what each send returned */
};

static void *
flood_run(void *arg)
{
	struct flood *p = arg;

	for (unsigned i = 0; i < PER_PRODUCER; i++) {
		struct owned m = fx_owned(1 + p->id * PER_PRODUCER + i);

		p->rv[i] = butler_send(p->hub, SRV, K_OWNED, &m, sizeof m);
		if (!butler_taken(p->rv[i]))
			free(m.text); /* refused: still ours */
	}
	return NULL;
}

/*
 * Starts a hub whose server has `full` for `owned` (capacity CAP), holds
 * its handler on serial 0, floods it from 4 producers, then lets it go and
 * stops it. Every message is destroyed exactly once whatever happened.
 */
static butler_hub *
flood_with(butler_full full, struct flood *p, butler_stats *st)
{
	static butler_kind_desc kinds[4];
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	struct owned first = fx_owned(0);
	pthread_t th[N_PRODUCERS];
	butler_hub *hub;

	reset();
	fx_init(&f, 1, CAP);
	memset(kinds, 0, sizeof kinds);
	for (unsigned k = 0; k < 4; k++)
		kinds[k].block_timeout_ms = -1;
	kinds[K_OWNED - 1].full = full;
	f.servers[SRV].kinds = kinds;
	h.owned = held_owned;
	hub = fx_hub(&f, &h, NULL);
	ASSERT_OK(butler_hub_start(hub));
	/* Serial 0 goes first and is held: everything else waits. */
	ASSERT_OK(butler_send(hub, SRV, K_OWNED, &first, sizeof first));
	while (!atomic_load(&holding))
		sleep_ms(1);
	for (unsigned i = 0; i < N_PRODUCERS; i++) {
		p[i].hub = hub;
		p[i].id = i;
		pthread_create(&th[i], NULL, flood_run, &p[i]);
	}
	for (unsigned i = 0; i < N_PRODUCERS; i++)
		pthread_join(th[i], NULL);
	atomic_store(&gate, 1);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	ASSERT_OK(butler_server_stats(hub, SRV, st));
	cr_assert_eq(st->sent,
	    st->handled + st->failed + st->dropped + st->replaced + st->purged
	        + st->abandoned,
	    "sent %llu != its outcomes", (unsigned long long)st->sent);
	cr_assert_eq(st->depth, 0);
	/* Every message the hub took, kept or not, destroyed exactly once
	 * by the hub; a refused one never (its sender freed it). */
	cr_assert_eq(atomic_load(&fx_destroyed[0]), 1);
	for (unsigned i = 0; i < N_PRODUCERS; i++)
		for (unsigned k = 0; k < PER_PRODUCER; k++) {
			unsigned s = 1 + i * PER_PRODUCER + k;

			cr_assert_eq(atomic_load(&fx_destroyed[s]),
			    butler_taken(p[i].rv[k]) ? 1u : 0u,
			    "serial %u (%s) destroyed %u times", s,
			    butler_errname(p[i].rv[k]),
			    atomic_load(&fx_destroyed[s]));
		}
	return hub;
}

Test(policy, drop_newest_keeps_the_oldest_of_each_sender, .timeout = 120)
{
	struct flood p[N_PRODUCERS];
	butler_stats st;
	butler_kind_stats ks;
	butler_hub *hub = flood_with(BUTLER_FULL_DROP_NEWEST, p, &st);
	uint64_t dropped = 0;

	for (unsigned i = 0; i < N_PRODUCERS; i++) {
		unsigned kept = 0;

		for (unsigned k = 0; k < PER_PRODUCER; k++) {
			uint64_t s = 1 + i * PER_PRODUCER + k;

			cr_assert(p[i].rv[k] == BUTLER_OK
			        || p[i].rv[k] == BUTLER_EDROPPED,
			    "%s", butler_errname(p[i].rv[k]));
			if (p[i].rv[k] == BUTLER_OK) {
				/* Its lane's first CAP: a prefix. */
				cr_assert_eq(
				    k, kept, "sender %u: %u kept", i, k);
				kept++;
				cr_assert(was_handled(s));
			} else {
				dropped++;
				cr_assert(!was_handled(s));
			}
		}
		cr_assert_eq(kept, CAP, "sender %u kept %u", i, kept);
	}
	cr_assert_eq(st.dropped, dropped);
	cr_assert_eq(st.handled, 1 + N_PRODUCERS * CAP);
	ASSERT_OK(butler_server_kind_stats(hub, SRV, K_OWNED, &ks));
	cr_assert_str_eq(ks.message, "owned");
	cr_assert_eq(ks.dropped, dropped);
	cr_assert(!ks.metrics);
	butler_hub_free(hub);
}

Test(policy, drop_oldest_keeps_the_newest, .timeout = 120)
{
	struct flood p[N_PRODUCERS];
	butler_stats st;
	butler_hub *hub = flood_with(BUTLER_FULL_DROP_OLDEST, p, &st);
	uint64_t replaced_rv = 0;

	/* One queue for the kind: CAP wait, server-wide. */
	cr_assert_eq(st.handled, 1 + CAP);
	cr_assert_eq(st.dropped, N_PRODUCERS * PER_PRODUCER - CAP);
	for (unsigned i = 0; i < N_PRODUCERS; i++) {
		bool seen_kept = false;

		for (unsigned k = 0; k < PER_PRODUCER; k++) {
			uint64_t s = 1 + i * PER_PRODUCER + k;

			cr_assert(p[i].rv[k] == BUTLER_OK
			        || p[i].rv[k] == BUTLER_EREPLACED,
			    "%s", butler_errname(p[i].rv[k]));
			replaced_rv += p[i].rv[k] == BUTLER_EREPLACED;
			/* A sender's kept messages are its newest: once one
			 * was kept, every later one is too. */
			if (was_handled(s))
				seen_kept = true;
			else
				cr_assert(!seen_kept,
				    "sender %u: %u dropped after a kept one",
				    i, k);
		}
	}
	/* Every eviction was told to the sender that caused it. */
	cr_assert_eq(replaced_rv, st.dropped);
	butler_hub_free(hub);
}

Test(policy, keep_last_keeps_one_the_latest, .timeout = 120)
{
	struct flood p[N_PRODUCERS];
	butler_stats st;
	butler_hub *hub = flood_with(BUTLER_FULL_KEEP_LAST, p, &st);
	uint64_t replaced_rv = 0, last_ok = 0;

	cr_assert_eq(st.handled, 2, "serial 0 and the latest");
	cr_assert_eq(st.replaced, N_PRODUCERS * PER_PRODUCER - 1);
	for (unsigned i = 0; i < N_PRODUCERS; i++)
		for (unsigned k = 0; k < PER_PRODUCER; k++) {
			cr_assert(p[i].rv[k] == BUTLER_OK
			        || p[i].rv[k] == BUTLER_EREPLACED,
			    "%s", butler_errname(p[i].rv[k]));
			replaced_rv += p[i].rv[k] == BUTLER_EREPLACED;
			last_ok += p[i].rv[k] == BUTLER_OK;
		}
	cr_assert_eq(replaced_rv, st.replaced);
	cr_assert_eq(last_ok, 1, "only the first found nothing to replace");
	/* The one handled after serial 0 is some sender's last. */
	{
		uint64_t s = atomic_load(&handled_serial[1]);

		cr_assert_eq((s - 1) % PER_PRODUCER, PER_PRODUCER - 1,
		    "serial %llu handled", (unsigned long long)s);
	}
	butler_hub_free(hub);
}

Test(policy, fail_refuses_and_the_message_stays_the_senders, .timeout = 120)
{
	struct flood p[N_PRODUCERS];
	butler_stats st;
	butler_hub *hub = flood_with(BUTLER_FULL_FAIL, p, &st);

	for (unsigned i = 0; i < N_PRODUCERS; i++)
		for (unsigned k = 0; k < PER_PRODUCER; k++)
			cr_assert_eq(
			    p[i].rv[k], k < CAP ? BUTLER_OK : BUTLER_EFULL);
	cr_assert_eq(st.rejected, N_PRODUCERS * (PER_PRODUCER - CAP));
	cr_assert_eq(st.dropped, 0);
	butler_hub_free(hub);
}

/* A keep_last request replaced while queued ends with EREPLACED. */
static atomic_int replaced_calls, ok_calls;

static void
count_answer(
    butler_server *self, int status, void *reply, void (*cb)(void), void *user)
{
	(void)self;
	(void)reply;
	(void)cb;
	(void)user;
	if (status == BUTLER_EREPLACED)
		atomic_fetch_add(&replaced_calls, 1);
	else if (status == BUTLER_OK)
		atomic_fetch_add(&ok_calls, 1);
}

static int
held_ask(butler_server *self, void *user, struct ask *m)
{
	struct answer a = { m->x, NULL };

	(void)user;
	if (m->x == 0)
		while (!atomic_load(&gate))
			sleep_ms(1);
	return butler_reply(self, &a, sizeof a);
}

Test(policy, a_replaced_request_ends_with_ereplaced, .timeout = 60)
{
	static butler_kind_desc kinds[4];
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	butler_hub *hub;
	unsigned handled;

	reset();
	atomic_store(&replaced_calls, 0);
	atomic_store(&ok_calls, 0);
	fx_init(&f, 2, CAP);
	f.servers[1].loop = BUTLER_LOOP_EXTERNAL; /* the caller: this thread */
	memset(kinds, 0, sizeof kinds);
	kinds[K_ASK - 1].full = BUTLER_FULL_KEEP_LAST;
	f.servers[SRV].kinds = kinds;
	h.ask = held_ask;
	hub = fx_hub(&f, &h, NULL);
	ASSERT_OK(butler_hub_start(hub));
	for (uint64_t x = 0; x < 5; x++) {
		struct ask a = { x, 0 };

		ASSERT_OK(butler_call(hub, SRV, K_ASK, &a, sizeof a, -1,
		    count_answer, NULL, NULL, NULL));
		if (x == 0)
			sleep_ms(50); /* let the worker take (and hold) it */
	}
	atomic_store(&gate, 1);
	while (atomic_load(&ok_calls) + atomic_load(&replaced_calls) < 5)
		ASSERT_OK(butler_server_drain(hub, 1, 0, &handled));
	cr_assert_eq(atomic_load(&ok_calls), 2);
	cr_assert_eq(atomic_load(&replaced_calls), 3);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	butler_hub_free(hub);
}

/* ---- the total bound -------------------------------------------------- */

enum { N_SENDERS = 50, BOUND = 100 };

struct bounded {
	butler_hub *hub;
	unsigned accepted;
};

static void *
send_until_full(void *arg)
{
	struct bounded *b = arg;

	for (;;) {
		struct num m = { .seq = b->accepted };
		int rv = butler_send(b->hub, SRV, K_NUM, &m, sizeof m);

		if (rv == BUTLER_EFULL)
			break;
		cr_assert_eq(rv, BUTLER_OK, "%s", butler_errname(rv));
		b->accepted++;
	}
	return NULL;
}

static int
held_num(butler_server *self, void *user, struct num *m)
{
	(void)self;
	(void)user;
	(void)m;
	atomic_store(&holding, 1);
	while (!atomic_load(&gate))
		sleep_ms(1);
	return 0;
}

Test(policy, max_queued_holds_across_50_sender_threads, .timeout = 120)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	struct bounded b[N_SENDERS];
	pthread_t th[N_SENDERS];
	butler_stats st;
	butler_hub *hub;
	unsigned total = 0;

	reset();
	/* Each thread alone could queue 1000: only the total bound stops
	 * them. */
	fx_init(&f, 1, 1000);
	f.servers[SRV].max_queued = BOUND;
	h.num = held_num;
	hub = fx_hub(&f, &h, NULL);
	ASSERT_OK(butler_hub_start(hub));
	for (unsigned i = 0; i < N_SENDERS; i++) {
		b[i] = (struct bounded) { hub, 0 };
		pthread_create(&th[i], NULL, send_until_full, &b[i]);
	}
	for (unsigned i = 0; i < N_SENDERS; i++) {
		pthread_join(th[i], NULL);
		total += b[i].accepted;
	}
	/* Never more than the bound, and nothing lost to credits that idle
	 * threads kept: exactly the bound (the one being handled still
	 * holds its credit until its drain ends). */
	cr_assert_eq(total, BOUND, "%u accepted", total);
	ASSERT_OK(butler_server_stats(hub, SRV, &st));
	cr_assert_leq(st.depth, BOUND);
	cr_assert_geq(st.rejected, N_SENDERS);
	atomic_store(&gate, 1);
	/* Once it drains, the bound has room again. */
	for (int i = 0;; i++) {
		struct num m = { 0 };

		cr_assert_lt(i, 10000);
		if (butler_send(hub, SRV, K_NUM, &m, sizeof m) == BUTLER_OK)
			break;
		sleep_ms(1);
	}
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	ASSERT_OK(butler_server_stats(hub, SRV, &st));
	cr_assert_eq(st.handled, BOUND + 1);
	butler_hub_free(hub);
}

/* ---- purge ------------------------------------------------------------ */

static atomic_uint nums_handled;

static int
count_num(butler_server *self, void *user, struct num *m)
{
	(void)self;
	(void)user;
	(void)m;
	atomic_fetch_add(&nums_handled, 1);
	return 0;
}

Test(policy, purge_destroys_what_waits_and_spares_later_sends, .timeout = 60)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	struct owned first = fx_owned(0);
	butler_stats st;
	butler_kind_stats ks;
	butler_hub *hub;
	uint64_t purged = 99;

	reset();
	atomic_store(&nums_handled, 0);
	fx_init(&f, 1, 1000);
	h.owned = held_owned;
	h.num = count_num;
	hub = fx_hub(&f, &h, NULL);
	/* Before the start nobody consumes: purged at once. */
	for (unsigned i = 0; i < 3; i++) {
		struct owned m = fx_owned(500 + i);

		ASSERT_OK(butler_send(hub, SRV, K_OWNED, &m, sizeof m));
	}
	ASSERT_OK(butler_purge(hub, SRV, K_OWNED, &purged));
	cr_assert_eq(purged, 3);
	ASSERT_OK(butler_hub_start(hub));
	ASSERT_OK(butler_send(hub, SRV, K_OWNED, &first, sizeof first));
	while (!atomic_load(&holding))
		sleep_ms(1);
	for (unsigned i = 1; i <= 50; i++) {
		struct owned m = fx_owned(i);
		struct num n = { .seq = i };

		ASSERT_OK(butler_send(hub, SRV, K_OWNED, &m, sizeof m));
		ASSERT_OK(butler_send(hub, SRV, K_NUM, &n, sizeof n));
	}
	/* The server is busy: it purges before its next message. Not
	 * waited for here (its handler waits for us). */
	ASSERT_OK(butler_purge(hub, SRV, K_OWNED, NULL));
	for (unsigned i = 51; i <= 55; i++) {
		struct owned m = fx_owned(i);

		ASSERT_OK(butler_send(hub, SRV, K_OWNED, &m, sizeof m));
	}
	atomic_store(&gate, 1);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	for (unsigned i = 1; i <= 55; i++) {
		cr_assert_eq(was_handled(i), i > 50, "serial %u", i);
		cr_assert_eq(atomic_load(&fx_destroyed[i]), 1);
	}
	cr_assert_eq(atomic_load(&nums_handled), 50, "other kinds untouched");
	ASSERT_OK(butler_server_stats(hub, SRV, &st));
	cr_assert_eq(st.purged, 53);
	ASSERT_OK(butler_server_kind_stats(hub, SRV, K_OWNED, &ks));
	cr_assert_eq(ks.purged, 53);
	cr_assert_eq(butler_purge(hub, SRV, K_OWNED, NULL), BUTLER_ECLOSED);
	cr_assert_eq(butler_purge(hub, SRV, 9, NULL), BUTLER_EINVAL);
	butler_hub_free(hub);
}

/* A plain thread's purge waits for the server to carry it out. */
static int
slow_num(butler_server *self, void *user, struct num *m)
{
	(void)self;
	(void)user;
	(void)m;
	sleep_ms(2);
	atomic_fetch_add(&nums_handled, 1);
	return 0;
}

Test(policy, a_waited_purge_counts_what_it_purged, .timeout = 60)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	butler_stats st;
	butler_hub *hub;
	uint64_t purged = 0;

	atomic_store(&nums_handled, 0);
	fx_init(&f, 1, 1000);
	h.num = slow_num;
	hub = fx_hub(&f, &h, NULL);
	ASSERT_OK(butler_hub_start(hub));
	for (unsigned i = 0; i < 200; i++) {
		struct num n = { .seq = i };

		ASSERT_OK(butler_send(hub, SRV, K_NUM, &n, sizeof n));
	}
	ASSERT_OK(butler_purge(hub, SRV, K_NUM, &purged));
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	ASSERT_OK(butler_server_stats(hub, SRV, &st));
	cr_assert_gt(purged, 0);
	cr_assert_eq(st.purged, purged);
	cr_assert_eq(st.handled + st.purged, 200);
	cr_assert_eq(atomic_load(&nums_handled), 200 - purged);
	butler_hub_free(hub);
}

/* ---- metrics ---------------------------------------------------------- */

static int
sleepy_owned(butler_server *self, void *user, struct owned *m)
{
	(void)self;
	(void)user;
	(void)m;
	sleep_ms(2);
	return 0;
}

static int
failing_num(butler_server *self, void *user, struct num *m)
{
	(void)self;
	(void)user;
	return m->seq % 3 == 0 ? BUTLER_EHANDLER : 0;
}

Test(policy, metrics_per_kind_match_what_was_sent, .timeout = 60)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	butler_kind_stats ks;
	butler_hub *hub;

	reset();
	fx_init(&f, 1, 1000);
	h.owned = sleepy_owned;
	h.num = failing_num;
	hub = fx_hub(&f, &h, NULL);
	butler_hub_set_log(hub, fx_quiet, BUTLER_LOG_DEBUG, NULL);
	ASSERT_OK(butler_hub_enable_metrics(hub, SRV));
	ASSERT_OK(butler_hub_start(hub));
	ASSERT_ERR(butler_hub_enable_metrics(hub, SRV), BUTLER_ESTATE);
	for (unsigned i = 0; i < 30; i++) {
		struct num n = { .seq = i };
		struct owned m = fx_owned(i);

		ASSERT_OK(butler_send(hub, SRV, K_NUM, &n, sizeof n));
		if (i < 10)
			ASSERT_OK(
			    butler_send(hub, SRV, K_OWNED, &m, sizeof m));
		else
			free(m.text);
	}
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	ASSERT_OK(butler_server_kind_stats(hub, SRV, K_NUM, &ks));
	cr_assert(ks.metrics);
	cr_assert_eq(ks.sent, 30);
	cr_assert_eq(ks.handled, 20);
	cr_assert_eq(ks.failed, 10);
	cr_assert_eq(ks.timed, 30);
	cr_assert_eq(ks.queued, 0);
	cr_assert_leq(ks.queue_ns_p50, ks.queue_ns_p99);
	cr_assert_leq(ks.queue_ns_p99, ks.queue_ns_max);
	ASSERT_OK(butler_server_kind_stats(hub, SRV, K_OWNED, &ks));
	cr_assert_eq(ks.sent, 10);
	cr_assert_eq(ks.handled, 10);
	/* Each handler slept 2 ms: its time is at least that. */
	cr_assert_geq(ks.handler_ns_p50, 2000000u);
	cr_assert_geq(ks.handler_ns_max, ks.handler_ns_p99);
	/* Waiting behind 2 ms handlers, later ones waited. */
	cr_assert_gt(ks.queue_ns_max, 2000000u);
	ASSERT_OK(butler_server_kind_stats(hub, SRV, K_ASK, &ks));
	cr_assert_eq(ks.sent, 0);
	cr_assert_eq(ks.timed, 0);
	cr_assert_eq(ks.queue_ns_p99, 0);
	ASSERT_ERR(butler_server_kind_stats(hub, SRV, 0, &ks), BUTLER_EINVAL);
	ASSERT_ERR(butler_server_kind_stats(hub, SRV, 5, &ks), BUTLER_EINVAL);
	butler_hub_free(hub);
}

/* ---- bindings --------------------------------------------------------- */

struct test_binding {
	butler_binding b;
	atomic_int alive, entered, left, released;
};

static void *
tb_enter(butler_binding *self)
{
	struct test_binding *t = (struct test_binding *)self;

	if (!atomic_load(&t->alive))
		return NULL;
	atomic_fetch_add(&t->entered, 1);
	return t;
}

static void
tb_leave(butler_binding *self, void *token)
{
	struct test_binding *t = (struct test_binding *)self;

	cr_assert_eq(token, t);
	atomic_fetch_add(&t->left, 1);
}

static void
tb_release(butler_binding *self)
{
	atomic_fetch_add(&((struct test_binding *)self)->released, 1);
}

Test(policy, bound_messages_are_handled_only_while_alive, .timeout = 60)
{
	struct test_binding tb
	    = { { tb_enter, tb_leave, tb_release }, 1, 0, 0, 0 };
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	struct owned first = fx_owned(0);
	butler_stats st;
	butler_hub *hub;

	reset();
	fx_init(&f, 1, 100);
	h.owned = held_owned;
	hub = fx_hub(&f, &h, NULL);
	ASSERT_OK(butler_hub_start(hub));
	ASSERT_OK(butler_send(hub, SRV, K_OWNED, &first, sizeof first));
	while (!atomic_load(&holding))
		sleep_ms(1);
	for (unsigned i = 1; i <= 10; i++) {
		struct owned m = fx_owned(i);

		ASSERT_OK(
		    butler_send_bound(hub, SRV, K_OWNED, &m, sizeof m, &tb.b));
	}
	/* Gone before their turn: all ten destroyed unhandled. */
	atomic_store(&tb.alive, 0);
	atomic_store(&gate, 1);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	ASSERT_OK(butler_server_stats(hub, SRV, &st));
	cr_assert_eq(st.handled, 1);
	cr_assert_eq(st.dropped, 10);
	cr_assert_eq(atomic_load(&tb.entered), 0);
	cr_assert_eq(atomic_load(&tb.released), 10);
	for (unsigned i = 0; i <= 10; i++)
		cr_assert_eq(atomic_load(&fx_destroyed[i]), 1);
	butler_hub_free(hub);

	/* Alive: handled, each entered and left once. */
	reset();
	atomic_store(&gate, 1);
	atomic_store(&tb.alive, 1);
	atomic_store(&tb.released, 0);
	hub = fx_hub(&f, &h, NULL);
	ASSERT_OK(butler_hub_start(hub));
	for (unsigned i = 1; i <= 10; i++) {
		struct owned m = fx_owned(i);

		ASSERT_OK(
		    butler_send_bound(hub, SRV, K_OWNED, &m, sizeof m, &tb.b));
	}
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	cr_assert_eq(atomic_load(&tb.entered), 10);
	cr_assert_eq(atomic_load(&tb.left), 10);
	cr_assert_eq(atomic_load(&tb.released), 10);
	ASSERT_ERR(
	    butler_send_bound(hub, SRV, K_OWNED, &first, sizeof first, NULL),
	    BUTLER_EINVAL);
	butler_hub_free(hub);
}

static atomic_int bound_answers;

static void
bound_answer(
    butler_server *self, int status, void *reply, void (*cb)(void), void *user)
{
	(void)self;
	(void)status;
	(void)reply;
	(void)cb;
	(void)user;
	atomic_fetch_add(&bound_answers, 1);
}

Test(policy, a_bound_call_stays_silent_once_its_binding_is_gone, .timeout = 60)
{
	struct test_binding tb
	    = { { tb_enter, tb_leave, tb_release }, 1, 0, 0, 0 };
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	struct ask a = { 0, 0 };
	butler_hub *hub;
	uint64_t id;
	unsigned handled;

	reset();
	atomic_store(&bound_answers, 0);
	fx_init(&f, 2, 100);
	f.servers[1].loop = BUTLER_LOOP_EXTERNAL;
	h.ask = held_ask;
	hub = fx_hub(&f, &h, NULL);
	ASSERT_OK(butler_hub_start(hub));
	ASSERT_OK(butler_call(
	    hub, SRV, K_ASK, &a, sizeof a, -1, bound_answer, NULL, NULL, &id));
	ASSERT_OK(butler_call_bind(hub, id, &tb.b));
	ASSERT_ERR(butler_call_bind(hub, id + 1000, &tb.b), BUTLER_ENOTFOUND);
	atomic_store(&tb.alive, 0);
	atomic_store(&gate, 1);
	/* The reply comes and is destroyed: no callback. */
	while (atomic_load(&tb.released) == 0)
		ASSERT_OK(butler_server_drain(hub, 1, 0, &handled));
	cr_assert_eq(atomic_load(&bound_answers), 0);
	/* While alive, the callback runs inside enter/leave. */
	atomic_store(&tb.alive, 1);
	ASSERT_OK(butler_call(
	    hub, SRV, K_ASK, &a, sizeof a, -1, bound_answer, NULL, NULL, &id));
	ASSERT_OK(butler_call_bind(hub, id, &tb.b));
	while (atomic_load(&bound_answers) == 0)
		ASSERT_OK(butler_server_drain(hub, 1, 0, &handled));
	cr_assert_eq(atomic_load(&tb.entered), 1);
	cr_assert_eq(atomic_load(&tb.left), 1);
	cr_assert_eq(atomic_load(&tb.released), 2);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	butler_hub_free(hub);
}
