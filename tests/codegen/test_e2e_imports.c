/* SPDX-License-Identifier: MIT */
/*
 * tests/codegen/test_e2e_imports.c — one hub built from two specs.
 *
 * imports/a.json imports imports/b.json, and both declare a message `job`
 * and a server `worker`: the prefixes keep them apart in C (struct a_job,
 * struct b_job, a_send_worker_job(), b_send_worker_job()), and the hub runs
 * both servers, a's first. Each spec's library is generated on its own and
 * linked together, as a first-party server's would be.
 */
#include <criterion/criterion.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "a.butler.h"

/* struct world is what the handlers record. */
struct world {
	atomic_int a_jobs;  /* a's worker: jobs with the right text */
	atomic_int b_jobs;  /* b's worker: jobs handled */
	atomic_int b_wrong; /* b's worker: jobs for the wrong server */
};

static int
a_job(butler_server *self, void *user, struct a_job *msg)
{
	struct world *w = user;

	(void)self;
	if (msg->text != NULL && strcmp(msg->text, "for a") == 0)
		atomic_fetch_add(&w->a_jobs, 1);
	return 0;
}

static int
b_job(butler_server *self, void *user, struct b_job *msg)
{
	struct world *w = user;
	struct b_done d = { .n = msg->n * 2 };

	atomic_fetch_add(msg->n == 21 ? &w->b_jobs : &w->b_wrong, 1);
	return b_reply_job(self, &d);
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)ms * 1000000 };

	nanosleep(&ts, NULL);
}

Test(imports, hub_runs_both_specs)
{
	struct world w = { 0 };
	butler_hub *hub;
	struct a_job aj = { .text = NULL };
	struct b_job bj = { .n = 21 };
	struct b_done done = { 0 };
	char *text = malloc(6);

	cr_assert_not_null(text);
	strcpy(text, "for a");
	aj.text = text;
	cr_assert_eq(a_spec.n_imports, 1);
	cr_assert_eq(a_spec.imports[0], &b_spec);
	cr_assert_eq(butler_hub_new(&hub, &a_spec), BUTLER_OK);
	/* The root spec's servers first, then the import's. */
	cr_expect_eq(
	    butler_hub_server(hub, &a_spec, A_SERVER_WORKER), A_SERVER_WORKER);
	cr_expect_eq(butler_hub_server(hub, &b_spec, B_SERVER_WORKER),
	    A_SERVER_COUNT + B_SERVER_WORKER);
	cr_assert_eq(a_worker_register(hub,
	                 &(struct a_worker_handlers) { .job = a_job }, &w),
	    BUTLER_OK);
	cr_assert_eq(b_worker_register(hub,
	                 &(struct b_worker_handlers) { .job = b_job }, &w),
	    BUTLER_OK);
	cr_assert_eq(butler_hub_start(hub), BUTLER_OK);

	cr_assert_eq(a_send_worker_job(hub, &aj), BUTLER_OK);
	cr_assert_eq(b_send_worker_job(hub, &bj), BUTLER_OK);
	cr_assert_eq(b_call_worker_job_wait(hub, &bj, 5000, &done), BUTLER_OK);
	cr_expect_eq(done.n, 42);
	for (int i = 0; atomic_load(&w.a_jobs) + atomic_load(&w.b_jobs) < 3;
	     i++) {
		cr_assert_lt(i, 500, "the jobs never all arrived");
		sleep_ms(10);
	}
	cr_assert_eq(butler_hub_stop(hub, BUTLER_STOP_DRAIN), BUTLER_OK);
	cr_expect_eq(atomic_load(&w.a_jobs), 1);
	cr_expect_eq(atomic_load(&w.b_jobs), 2);
	cr_expect_eq(atomic_load(&w.b_wrong), 0);
	butler_hub_free(hub);
}

Test(imports, spec_outside_the_hub_refused)
{
	butler_hub *hub;
	struct a_job aj = { .text = NULL };
	struct b_job bj = { .n = 1 };

	/* A hub of b alone does not hold a's servers. */
	cr_assert_eq(butler_hub_new(&hub, &b_spec), BUTLER_OK);
	cr_expect_eq(butler_hub_server(hub, &a_spec, A_SERVER_WORKER),
	    BUTLER_NO_SERVER);
	cr_expect_eq(
	    butler_hub_server(hub, &b_spec, B_SERVER_WORKER), B_SERVER_WORKER);
	cr_expect_eq(a_send_worker_job(hub, &aj), BUTLER_EINVAL);
	cr_expect_eq(b_send_worker_job(hub, &bj), BUTLER_OK);
	butler_hub_free(hub);
}
