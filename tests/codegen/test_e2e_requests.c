/* SPDX-License-Identifier: MIT */
/*
 * tests/codegen/test_e2e_requests.c — composable requests through the
 * generated API (ok/requests.json) and a real hub.
 *
 * 'front' answers 'sum' later: it defers the request, asks 'back' for an
 * 'add' and answers from that call's reply callback. Negative operands pick
 * the other scenarios: a failure given later (rq_fail_sum), a promise left
 * unanswered past its caller's deadline, a handler that defers and then
 * fails, a second defer, a promise unanswered at stop. 'back' defers too
 * when asked for 200 + 0, and then calls 'front' itself, so two promises on
 * two servers are chained. The test thread is no butler server: it uses the
 * blocking rq_call_S_M_wait() functions. Results seen on server threads are
 * recorded and asserted on the test thread.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "requests.butler.h"

/* struct world is shared by the test thread and the servers. */
struct world {
	butler_hub *hub;
	/* front, kept for later scenarios (front's thread only) */
	struct rq_sum_promise kept;
	/* results recorded on the servers' threads */
	atomic_int progress_rv;    /* rq_progress_sum_promise() */
	atomic_llong time_left;    /* rq_sum_promise_time_left_ms() at defer */
	atomic_int late_cancelled; /* rq_sum_promise_cancelled() when poked */
	atomic_int late_answer;    /* answering a caller that has gone */
	atomic_int second_answer;  /* answering it again */
	atomic_int poked;          /* pokes handled */
	atomic_int second_defer;   /* id of a second defer of one request */
	atomic_int bad_answer;     /* answering that nothing-promise */
	atomic_int deadlock_rv;    /* call_wait from a server's thread */
	atomic_int ticks;          /* progress seen by back as a caller */
};

/* struct pending_sum is what front's call to back carries to its reply
 * callback: whom to answer. */
struct pending_sum {
	struct world *w;
	struct rq_sum_promise promise;
};

static char *
text_of(long long n)
{
	char buf[32];
	char *s;

	snprintf(buf, sizeof buf, "%lld", n);
	s = malloc(strlen(buf) + 1);
	if (s != NULL)
		strcpy(s, buf);
	return s;
}

/* on_added runs on front's thread with back's answer and answers the sum
 * it was asked for: the reply's owned text moves into the answer. */
static void
on_added(butler_server *self, int status, struct rq_total *reply, void *user)
{
	struct pending_sum *ps = user;

	if (status != BUTLER_OK) {
		rq_fail_sum(self, ps->promise, status);
	} else {
		struct rq_total t = { .n = reply->n, .text = reply->text };

		reply->text = NULL;
		if (rq_answer_sum(self, ps->promise, &t) != BUTLER_OK)
			rq_total_destroy(&t);
	}
	free(ps);
}

static int
front_sum(butler_server *self, void *user, struct rq_sum *msg)
{
	struct world *w = user;
	struct rq_sum_promise p = rq_defer_sum(self);

	if (msg->a >= 0) {
		struct rq_tick t = { .k = 1 };
		struct rq_add add = { .a = msg->a, .b = msg->b };
		struct pending_sum *ps = malloc(sizeof *ps);

		atomic_store(
		    &w->progress_rv, rq_progress_sum_promise(self, p, &t));
		if (ps == NULL)
			return BUTLER_ENOMEM;
		ps->w = w;
		ps->promise = p;
		if (rq_call_back_add(w->hub, &add, 5000, on_added, ps, NULL)
		    != BUTLER_OK) {
			free(ps);
			return BUTLER_EHANDLER; /* fails the deferred request
			                         */
		}
		return 0;
	}
	switch (msg->a) {
	case -1: { /* fail later, from another message */
		struct rq_poke poke = { .what = 1 };

		w->kept = p;
		return rq_send_front_poke(w->hub, &poke);
	}
	case -2: /* keep it past the caller's deadline */
		w->kept = p;
		atomic_store(
		    &w->time_left, rq_sum_promise_time_left_ms(self, p));
		return 0;
	case -3: /* defer, then fail: the result is the answer */
		return 77;
	case -4: { /* defer twice: the second names nothing */
		struct rq_sum_promise again = rq_defer_sum(self);
		struct rq_total t = { .n = 4, .text = NULL };

		atomic_store(&w->second_defer, again.id_bt_ != 0);
		atomic_store(&w->bad_answer, rq_answer_sum(self, again, &t));
		return rq_answer_sum(self, p, &t);
	}
	default: /* -5: never answered; the stop ends it */
		w->kept = p;
		return 0;
	}
}

static int
front_poke(butler_server *self, void *user, struct rq_poke *msg)
{
	struct world *w = user;
	struct rq_total t = { .n = -2, .text = NULL };

	if (msg->what == 1) {
		rq_fail_sum(self, w->kept, 1234);
	} else if (msg->what == 2) {
		atomic_store(&w->late_cancelled,
		    rq_sum_promise_cancelled(self, w->kept));
		atomic_store(
		    &w->late_answer, rq_answer_sum(self, w->kept, &t));
		atomic_store(
		    &w->second_answer, rq_answer_sum(self, w->kept, &t));
	}
	atomic_fetch_add(&w->poked, 1);
	return 0;
}

/* struct pending_add: back's own deferred 'add', waiting for front. */
struct pending_add {
	struct world *w;
	struct rq_add_promise promise;
};

static void
on_tick(butler_server *self, struct rq_tick *progress, void *user)
{
	struct pending_add *pa = user;

	(void)self;
	atomic_fetch_add(&pa->w->ticks, (int)progress->k);
}

static void
on_sum(butler_server *self, int status, struct rq_total *reply, void *user)
{
	struct pending_add *pa = user;

	if (status != BUTLER_OK) {
		rq_fail_add(self, pa->promise, status);
	} else {
		struct rq_total t = {
			.n = reply->n + 1000 * atomic_load(&pa->w->ticks),
			.text = NULL,
		};

		rq_answer_add(self, pa->promise, &t);
	}
	free(pa);
}

static int
back_add(butler_server *self, void *user, struct rq_add *msg)
{
	struct world *w = user;
	struct rq_total t = { .n = (int64_t)msg->a + msg->b };

	if (msg->a == 100) {
		struct rq_sum s = { .a = 1, .b = 1 };
		struct rq_total r;

		atomic_store(&w->deadlock_rv,
		    rq_call_front_sum_wait(w->hub, &s, 1000, &r));
	} else if (msg->a == 200) {
		struct rq_sum s = { .a = 5, .b = 6 };
		struct pending_add *pa = malloc(sizeof *pa);

		if (pa == NULL)
			return BUTLER_ENOMEM;
		pa->w = w;
		pa->promise = rq_defer_add(self);
		if (rq_call_front_sum(
		        w->hub, &s, 5000, on_sum, on_tick, pa, NULL)
		    != BUTLER_OK) {
			free(pa);
			return BUTLER_EHANDLER;
		}
		return 0;
	}
	t.text = text_of(t.n);
	return rq_reply_add(self, &t);
}

static void
start(struct world *w)
{
	cr_assert_eq(butler_hub_new(&w->hub, &rq_spec), BUTLER_OK);
	cr_assert_eq(rq_front_register(w->hub,
	                 &(struct rq_front_handlers) {
	                     .sum = front_sum, .poke = front_poke },
	                 w),
	    BUTLER_OK);
	cr_assert_eq(rq_back_register(w->hub,
	                 &(struct rq_back_handlers) { .add = back_add }, w),
	    BUTLER_OK);
	cr_assert_eq(butler_hub_start(w->hub), BUTLER_OK);
}

static void
finish(struct world *w)
{
	cr_assert_eq(butler_hub_stop(w->hub, BUTLER_STOP_DRAIN), BUTLER_OK);
	butler_hub_free(w->hub);
}

static void
sleep_ms(int ms)
{
	struct timespec ts
	    = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

Test(requests, deferred_answer_through_a_nested_call)
{
	struct world w = { 0 };
	struct rq_sum s = { .a = 2, .b = 3 };
	struct rq_total t = { 0 };

	start(&w);
	cr_assert_eq(rq_call_front_sum_wait(w.hub, &s, 5000, &t), BUTLER_OK);
	cr_expect_eq(t.n, 5);
	cr_assert_not_null(t.text);
	cr_expect_str_eq(t.text, "5");
	cr_expect_eq(atomic_load(&w.progress_rv), BUTLER_OK);
	rq_total_destroy(&t);
	finish(&w);
}

Test(requests, chained_promises_on_two_servers)
{
	struct world w = { 0 };
	struct rq_add a = { .a = 200, .b = 0 };
	struct rq_total t = { 0 };

	start(&w);
	/* back defers, calls front; front defers, calls back; back answers
	 * front, front answers back (with one progress first), back answers
	 * this thread. */
	cr_assert_eq(rq_call_back_add_wait(w.hub, &a, 5000, &t), BUTLER_OK);
	cr_expect_eq(atomic_load(&w.ticks), 1);
	cr_expect_eq(t.n, 5 + 6 + 1000);
	rq_total_destroy(&t);
	finish(&w);
}

Test(requests, failures_reach_the_caller)
{
	struct world w = { 0 };
	struct rq_sum s = { .a = -1 };
	struct rq_total t = { .n = 99 };

	start(&w);
	cr_expect_eq(rq_call_front_sum_wait(w.hub, &s, 5000, &t), 1234);
	s.a = -3;
	cr_expect_eq(rq_call_front_sum_wait(w.hub, &s, 5000, &t), 77);
	cr_expect_eq(t.n, 99, "the reply was written on a failure");
	finish(&w);
}

Test(requests, second_defer_names_nothing)
{
	struct world w = { 0 };
	struct rq_sum s = { .a = -4 };
	struct rq_total t = { 0 };

	start(&w);
	cr_assert_eq(rq_call_front_sum_wait(w.hub, &s, 5000, &t), BUTLER_OK);
	cr_expect_eq(t.n, 4);
	cr_expect_eq(atomic_load(&w.second_defer), 0);
	cr_expect_neq(atomic_load(&w.bad_answer), BUTLER_OK);
	finish(&w);
}

Test(requests, deadline_and_cancellation_of_a_promise)
{
	struct world w = { 0 };
	struct rq_sum s = { .a = -2 };
	struct rq_poke poke = { .what = 2 };
	struct rq_total t = { .n = 99 };
	long long left;

	start(&w);
	cr_assert_eq(
	    rq_call_front_sum_wait(w.hub, &s, 200, &t), BUTLER_ETIMEDOUT);
	cr_expect_eq(t.n, 99);
	left = atomic_load(&w.time_left);
	cr_expect(left > 0 && left <= 200, "time left at defer: %lld", left);
	cr_assert_eq(rq_send_front_poke(w.hub, &poke), BUTLER_OK);
	for (int i = 0; atomic_load(&w.poked) == 0; i++) {
		cr_assert_lt(i, 500, "front never handled the poke");
		sleep_ms(10);
	}
	cr_expect_eq(atomic_load(&w.late_cancelled), 1);
	cr_expect_eq(atomic_load(&w.late_answer), BUTLER_OK,
	    "answering a caller that has gone is no error");
	cr_expect_eq(atomic_load(&w.second_answer), BUTLER_ESTATE);
	finish(&w);
}

Test(requests, blocking_call_from_a_server_refused)
{
	struct world w = { 0 };
	struct rq_add a = { .a = 100, .b = 1 };
	struct rq_total t = { 0 };

	start(&w);
	cr_assert_eq(rq_call_back_add_wait(w.hub, &a, 5000, &t), BUTLER_OK);
	cr_expect_eq(atomic_load(&w.deadlock_rv), BUTLER_EDEADLK);
	cr_expect_eq(t.n, 101);
	rq_total_destroy(&t);
	finish(&w);
}

Test(requests, blocking_call_before_start_refused)
{
	struct world w = { 0 };
	struct rq_sum s = { .a = 1, .b = 1 };
	struct rq_total t = { 0 };

	cr_assert_eq(butler_hub_new(&w.hub, &rq_spec), BUTLER_OK);
	cr_expect_eq(
	    rq_call_front_sum_wait(w.hub, &s, 100, &t), BUTLER_ESTATE);
	cr_expect_eq(
	    rq_call_front_sum_wait(w.hub, NULL, 100, &t), BUTLER_EINVAL);
	butler_hub_free(w.hub);
}

/* struct waiter is a plain thread blocked in a call. */
struct waiter {
	struct world *w;
	atomic_int rv;
	atomic_int started;
};

static void *
wait_forever(void *arg)
{
	struct waiter *wt = arg;
	struct rq_sum s = { .a = -5 };
	struct rq_total t = { 0 };

	atomic_store(&wt->started, 1);
	atomic_store(&wt->rv, rq_call_front_sum_wait(wt->w->hub, &s, -1, &t));
	return NULL;
}

Test(requests, unanswered_promise_ends_at_stop)
{
	struct world w = { 0 };
	struct waiter wt = { .w = &w, .rv = -1 };
	pthread_t th;

	start(&w);
	cr_assert_eq(pthread_create(&th, NULL, wait_forever, &wt), 0);
	/* Give the call time to be deferred; the outcome is the same if the
	 * stop comes first (ESTOPPED either way: the hub took the call). */
	while (atomic_load(&wt.started) == 0)
		sleep_ms(1);
	sleep_ms(50);
	cr_assert_eq(butler_hub_stop(w.hub, BUTLER_STOP_DISCARD), BUTLER_OK);
	cr_assert_eq(pthread_join(th, NULL), 0);
	cr_expect_eq(atomic_load(&wt.rv), BUTLER_ESTOPPED);
	butler_hub_free(w.hub);
}
