/* SPDX-License-Identifier: MIT */
/*
 * test_unknown_kind.c — a record whose kind the dispatcher does not know
 * (a corrupted one: butler_send() never makes it). White box: the test
 * pushes it through butler__push() (butler/send.h), past butler_send()'s
 * checks, into a live server's inbox. The server must count it as failed,
 * log one ERROR naming the kind, run no handler for it, free nothing of
 * it, and go on handling what follows; the stats identity of hub.h must
 * hold after the stop.
 */
#include "fixture.h"

#include <semaphore.h>

#include "hub_internal.h"

#define N_KINDS 4u /* the fixture's server accepts kinds 1..4 */

struct uk {
	sem_t handled; /* one post per valid num handled */
	atomic_uint nums, others;
	atomic_uint bad_dispatch; /* dispatcher calls with an unknown kind */
	atomic_uint errors;       /* ERROR lines about an unknown kind */
	atomic_uint err_all;      /* every ERROR line */
	unsigned last_kind;       /* the kind named by the last such line */
	pthread_mutex_t lock;
};

static struct uk U;

static void
uk_log(butler_log_level level, const char *msg, void *user)
{
	unsigned kind;
	const char *at;

	(void)user;
	if (level != BUTLER_LOG_ERROR)
		return;
	atomic_fetch_add(&U.err_all, 1);
	at = strstr(msg, "unknown kind ");
	if (at != NULL && sscanf(at, "unknown kind %u", &kind) == 1) {
		pthread_mutex_lock(&U.lock);
		U.last_kind = kind;
		pthread_mutex_unlock(&U.lock);
		atomic_fetch_add(&U.errors, 1);
	}
}

static int
uk_num(butler_server *self, void *user, struct num *m)
{
	(void)self;
	(void)user;
	cr_assert_eq(m->tag, 7u, "a num handler ran on tag %u", m->tag);
	atomic_fetch_add(&U.nums, 1);
	sem_post(&U.handled);
	return 0;
}

static int
uk_owned(butler_server *self, void *user, struct owned *m)
{
	(void)self;
	(void)user;
	(void)m;
	atomic_fetch_add(&U.others, 1);
	return 0;
}

static int
uk_ask(butler_server *self, void *user, struct ask *m)
{
	(void)self;
	(void)user;
	(void)m;
	atomic_fetch_add(&U.others, 1);
	return 0;
}

static int
uk_answer(butler_server *self, void *user, struct answer *m)
{
	(void)self;
	(void)user;
	(void)m;
	atomic_fetch_add(&U.others, 1);
	return 0;
}

/* The fixture's dispatcher, counting the calls it would refuse: the
 * server must not even ask the dispatcher about an unknown kind. */
static int
uk_dispatch(butler_server *self, const void *handlers, void *user,
    unsigned kind, void *msg)
{
	if (kind - 1u >= N_KINDS)
		atomic_fetch_add(&U.bad_dispatch, 1);
	return fx_dispatch(self, handlers, user, kind, msg);
}

static unsigned
last_kind(void)
{
	unsigned k;

	pthread_mutex_lock(&U.lock);
	k = U.last_kind;
	pthread_mutex_unlock(&U.lock);
	return k;
}

/* Pushes a record of `kind` carrying a num, then a valid num behind it in
 * the same lane, and waits for the valid one: by then the bad record has
 * been consumed (a lane is FIFO). */
static void
bad_then_good(butler_hub *hub, unsigned kind)
{
	struct num bad = { .seq = 1, .tag = 99 },
	           good = { .seq = 2, .tag = 7 };

	ASSERT_OK(butler__push(
	    &hub->router, 0, kind, 0, NULL, &bad, sizeof bad, 0, 0));
	ASSERT_OK(butler_send(hub, 0, K_NUM, &good, sizeof good));
	cr_assert_eq(sem_wait(&U.handled), 0);
}

Test(unknown_kind, counted_failed_logged_not_dispatched, .timeout = 60)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	butler_hub *hub;
	butler_stats st;

	memset(&U, 0, sizeof U);
	sem_init(&U.handled, 0, 0);
	pthread_mutex_init(&U.lock, NULL);
	fx_init(&f, 1, 64);
	f.servers[0].dispatch = uk_dispatch;
	h.num = uk_num;
	h.owned = uk_owned;
	h.ask = uk_ask;
	h.answer = uk_answer;
	hub = fx_hub(&f, &h, NULL);
	butler_hub_set_log(hub, uk_log, BUTLER_LOG_DEBUG, NULL);
	cr_assert_eq(hub->inst[0]->n_kinds, N_KINDS);
	ASSERT_OK(butler_hub_start(hub));

	/* One past the last kind. */
	bad_then_good(hub, N_KINDS + 1);
	cr_assert_eq(atomic_load(&U.errors), 1);
	cr_assert_eq(atomic_load(&U.err_all), 1);
	cr_assert_eq(last_kind(), N_KINDS + 1);
	cr_assert_eq(atomic_load(&U.nums), 1);

	/* Kind 0 without the flags of a progress or timer record. */
	bad_then_good(hub, 0);
	cr_assert_eq(atomic_load(&U.errors), 2);
	cr_assert_eq(atomic_load(&U.err_all), 2);
	cr_assert_eq(last_kind(), 0);
	cr_assert_eq(atomic_load(&U.nums), 2);

	/* The counters are exact once the hub has stopped (hub.h). */
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	ASSERT_OK(butler_server_stats(hub, 0, &st));
	cr_assert_eq(atomic_load(&U.others), 0);
	cr_assert_eq(atomic_load(&U.bad_dispatch), 0);
	cr_assert_eq(atomic_load(&U.nums), 2);
	cr_assert_eq(st.failed, 2);
	cr_assert_eq(st.handled, 2);
	cr_assert_eq(st.depth, 0);
	cr_assert_eq(st.sent,
	    st.handled + st.failed + st.dropped + st.replaced + st.purged
	        + st.abandoned,
	    "sent %llu handled %llu failed %llu", (unsigned long long)st.sent,
	    (unsigned long long)st.handled, (unsigned long long)st.failed);
	cr_assert_eq(st.sent, 4);
	cr_assert_eq(atomic_load(&U.err_all), 2);
	butler_hub_free(hub);
	sem_destroy(&U.handled);
	pthread_mutex_destroy(&U.lock);
}
