/* SPDX-License-Identifier: MIT */
/*
 * tests/servers/test_wait_ownership.c — who owns a blocking call's message
 * when the hub stops, through butler_tasks_run_wait() (butler_call_wait()
 * underneath). Refused at once, the message stays the caller's
 * (BUTLER_ECLOSED once the hub has begun to stop); accepted, the hub owns
 * it whatever the outcome, and a call the stop ends unanswered returns
 * BUTLER_ESTOPPED. The runtime once returned ECLOSED for both, and a
 * caller whose message owned memory could not know whether to free it.
 *
 * The case: the pool is kept busy (blockers submitted from the test's
 * own external-loop server, so that round-robin spreads them over every
 * instance), one blocking call from a plain thread is queued behind them
 * (accepted: butler_hub_pending() lists it), and a stop discards it: the
 * hub frees its argument and the call returns ESTOPPED. After the stop,
 * the same call is refused: the argument is not freed, and the call
 * returns ECLOSED.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <butler/tasks.h>

#include "waits.butler.h"

static butler_hub *hub;
static atomic_int started, frees;

static void
count_free(void *p)
{
	atomic_fetch_add(&frees, 1);
	free(p);
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)ms * 1000000 };

	nanosleep(&ts, NULL);
}

static int
blocker(butler_task *task, void *arg)
{
	(void)arg;
	atomic_fetch_add(&started, 1);
	while (!butler_task_cancelled(task))
		sleep_ms(1);
	return 0;
}

static int
victim(butler_task *task, void *arg)
{
	(void)task, (void)arg;
	return 0;
}

static int
noop(butler_server *self, void *user, struct wo_noop *msg)
{
	(void)self, (void)user, (void)msg;
	return 0;
}

static void *
queued(void *arg)
{
	int *rv = arg;

	*rv = butler_tasks_run_wait(
	    hub, victim, malloc(16), count_free, -1, NULL);
	return NULL;
}

/* refused makes the call on a stopped hub: it keeps (and frees) its
 * argument when the call says it was refused. */
static void *
refused(void *arg)
{
	int *rv = arg;
	void *mine = malloc(16);

	*rv = butler_tasks_run_wait(hub, victim, mine, count_free, -1, NULL);
	free(mine);
	return NULL;
}

Test(call_wait, eclosed_says_who_owns_the_message, .timeout = 60)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	int accepted_rv = -1, refused_rv = -1, frees_before;
	pthread_t waiter;

	cr_assert(n > 0);
	cr_assert_eq(butler_hub_new(&hub, &wo_spec), BUTLER_OK);
	cr_assert_eq(
	    wo_main_register_each(hub, NULL, NULL, NULL, noop), BUTLER_OK);
	cr_assert_eq(butler_tasks_register(hub), BUTLER_OK);
	cr_assert_eq(butler_hub_start(hub), BUTLER_OK);
	for (long i = 0; i < 4 * n; i++)
		cr_assert_eq(butler_tasks_submit(hub, blocker, NULL, NULL,
		                 NULL, NULL, -1, NULL),
		    BUTLER_OK);
	for (int i = 0; atomic_load(&started) < n; i++) {
		cr_assert_lt(i, 5000, "the pool never filled");
		sleep_ms(1);
	}
	cr_assert_eq(pthread_create(&waiter, NULL, queued, &accepted_rv), 0);
	for (int i = 0;
	     butler_hub_pending(hub, NULL, NULL) < (size_t)(4 * n + 1); i++) {
		cr_assert_lt(i, 5000, "the call was never accepted");
		sleep_ms(1);
	}
	/* Accepted, queued behind the blockers: the stop discards it. */
	cr_assert_eq(butler_hub_stop(hub, BUTLER_STOP_DISCARD), BUTLER_OK);
	cr_assert_eq(pthread_join(waiter, NULL), 0);
	cr_expect_eq(atomic_load(&frees), 1, "the hub freed the argument");
	cr_expect_eq(accepted_rv, BUTLER_ESTOPPED);
	cr_expect(butler_taken(accepted_rv));

	/* Refused, from a plain thread too: the argument is still the
	 * caller's. */
	frees_before = atomic_load(&frees);
	cr_assert_eq(pthread_create(&waiter, NULL, refused, &refused_rv), 0);
	cr_assert_eq(pthread_join(waiter, NULL), 0);
	cr_expect_eq(atomic_load(&frees), frees_before,
	    "a refused call freed the argument");
	cr_expect_neq(refused_rv, accepted_rv,
	    "butler_call_wait() returned %s both when the hub took the "
	    "message (and freed it) and when it refused it (the caller "
	    "owns it): the caller cannot tell whether to free it",
	    butler_errname(refused_rv));
	butler_hub_free(hub);
}
