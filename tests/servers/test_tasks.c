/* SPDX-License-Identifier: MIT */
/*
 * tests/servers/test_tasks.c — servers/tasks through <butler/tasks.h>, in a
 * hub built from the tests' own spec (app.json), which imports the tasks
 * spec and uses the same names (messages 'run' and 'ran', a server 'pool').
 *
 * The test thread owns the external-loop server 'main' and submits from
 * there; servers 'one' and 'two' submit from their own threads at once.
 * To make "not started yet" certain, blocker tasks first occupy every
 * instance of the pool (one per online CPU, as "instances": "auto" counts
 * them) until the test opens a gate: the tasks submitted behind them are
 * queued, whatever the scheduler does.
 */
#include <criterion/criterion.h>

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <butler/files.h>
#include <butler/tasks.h>

#include "app.butler.h"
#include "lone.butler.h"

/* struct world is shared by the test thread, the submitters and the
 * tasks; everything the others record is atomic. */
struct world {
	butler_hub *hub;
	atomic_int arg_frees;     /* free_arg calls */
	atomic_int result_frees;  /* free_result calls */
	atomic_int started;       /* blockers and waiters running */
	atomic_bool gate;         /* blockers may return */
	atomic_int victims_ran;   /* tasks that should never have run */
	atomic_int saw_cancel;    /* a running task saw its cancel */
	atomic_int off_submitter; /* tasks that ran off their submitter */
	/* done callbacks */
	atomic_int done;
	atomic_int done_ok;
	atomic_int done_cancelled;
	atomic_int done_timedout;
	atomic_int done_closed;
	atomic_int done_failed;   /* the task's own code, 42 */
	atomic_int right_thread;  /* ran on the submitting thread */
	atomic_int wrong_thread;  /* ... and elsewhere */
	atomic_int right_results; /* n * n */
};

/* struct submitter is one submitting thread: the user of its callbacks. */
struct submitter {
	struct world *w;
	pthread_t thread;
	atomic_int set; /* thread is known */
};

/* struct targ is a task's argument, malloc()ed and freed by free_targ. */
struct targ {
	struct world *w;
	pthread_t submitter;
	unsigned n;
};

/* struct tres is a task's result. */
struct tres {
	struct world *w;
	unsigned value;
};

static void
free_targ(void *p)
{
	struct targ *a = p;

	atomic_fetch_add(&a->w->arg_frees, 1);
	free(a);
}

static void
free_tres(void *p)
{
	struct tres *r = p;

	atomic_fetch_add(&r->w->result_frees, 1);
	free(r);
}

static struct targ *
new_targ(struct world *w, unsigned n)
{
	struct targ *a = malloc(sizeof *a);

	cr_assert_not_null(a);
	a->w = w;
	a->submitter = pthread_self();
	a->n = n;
	return a;
}

static void
sleep_ms(int ms)
{
	struct timespec ts
	    = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* ---- tasks (pool threads) --------------------------------------------- */

static int
square(butler_task *task, void *arg)
{
	struct targ *a = arg;
	struct tres *r = malloc(sizeof *r);

	if (r == NULL)
		return BUTLER_ENOMEM;
	if (!pthread_equal(pthread_self(), a->submitter))
		atomic_fetch_add(&a->w->off_submitter, 1);
	r->w = a->w;
	r->value = a->n * a->n;
	butler_task_set_result(task, r, free_tres);
	return 0;
}

/* blocker holds its pool thread until the gate opens (or the hub stops). */
static int
blocker(butler_task *task, void *arg)
{
	struct targ *a = arg;

	atomic_fetch_add(&a->w->started, 1);
	for (int i = 0; i < 20000 && !atomic_load(&a->w->gate); i++) {
		if (butler_task_cancelled(task))
			break;
		sleep_ms(1);
	}
	return 0;
}

static int
victim(butler_task *task, void *arg)
{
	struct targ *a = arg;

	(void)task;
	atomic_fetch_add(&a->w->victims_ran, 1);
	return 0;
}

/* until_cancelled runs until its submitter gives up, then still sets a
 * result, which reaches no one and must be freed. */
static int
until_cancelled(butler_task *task, void *arg)
{
	struct targ *a = arg;
	struct tres *r = malloc(sizeof *r);

	if (r == NULL)
		return BUTLER_ENOMEM;
	r->w = a->w;
	r->value = 0;
	atomic_fetch_add(&a->w->started, 1);
	for (int i = 0; i < 20000 && !butler_task_cancelled(task); i++)
		sleep_ms(1);
	if (butler_task_cancelled(task))
		atomic_store(&a->w->saw_cancel, 1);
	butler_task_set_result(task, r, free_tres);
	return 0;
}

static int
fails(butler_task *task, void *arg)
{
	struct targ *a = arg;
	struct tres *r = malloc(sizeof *r);

	if (r == NULL)
		return BUTLER_ENOMEM;
	r->w = a->w;
	butler_task_set_result(task, r, free_tres);
	return 42;
}

/* echo turns its argument into its result. */
static int
echo(butler_task *task, void *arg)
{
	void *taken = butler_task_take_arg(task);

	if (taken != arg || butler_task_take_arg(task) != NULL)
		return 99;
	butler_task_set_result(task, taken, free_targ);
	return 0;
}

/* ---- done callbacks (submitting threads) ------------------------------ */

static void
on_done(butler_server *self, int status, void *result, void *user)
{
	struct submitter *s = user;
	struct world *w = s->w;

	(void)self;
	if (atomic_load(&s->set) && pthread_equal(pthread_self(), s->thread))
		atomic_fetch_add(&w->right_thread, 1);
	else
		atomic_fetch_add(&w->wrong_thread, 1);
	switch (status) {
	case BUTLER_OK:
		atomic_fetch_add(&w->done_ok, 1);
		break;
	case BUTLER_ECANCELED:
		atomic_fetch_add(&w->done_cancelled, 1);
		break;
	case BUTLER_ETIMEDOUT:
		atomic_fetch_add(&w->done_timedout, 1);
		break;
	case BUTLER_ESTOPPED:
		atomic_fetch_add(&w->done_closed, 1);
		break;
	case 42:
		atomic_fetch_add(&w->done_failed, 1);
		break;
	default:
		break;
	}
	if (status != BUTLER_OK && result != NULL)
		atomic_fetch_add(&w->wrong_thread, 1000); /* never */
	if (result != NULL)
		free_tres(result);
	atomic_fetch_add(&w->done, 1);
}

/* on_squared checks the result of square(n) for n = its position. */
static void
on_squared(butler_server *self, int status, void *result, void *user)
{
	struct submitter *s = user;
	struct tres *r = result;

	if (status == BUTLER_OK && r != NULL) {
		unsigned root = 0;

		while (root * root < r->value)
			root++;
		if (root * root == r->value)
			atomic_fetch_add(&s->w->right_results, 1);
	}
	on_done(self, status, result, user);
}

/* ---- the app's servers ------------------------------------------------ */

/* one_run and two_run submit msg->tasks squares from their own threads. */
static int
submit_run(butler_server *self, void *user, struct app_run *msg)
{
	struct submitter *s = user;
	butler_hub *hub = butler_server_hub(self);

	s->thread = pthread_self();
	atomic_store(&s->set, 1);
	for (unsigned i = 1; i <= msg->tasks; i++) {
		struct targ *a = new_targ(s->w, i);
		int rv = butler_tasks_submit(
		    hub, square, a, free_targ, on_squared, s, 10000, NULL);

		if (rv != BUTLER_OK) {
			free(a);
			return rv;
		}
	}
	return 0;
}

/* The app's own 'pool' (not the tasks pool): answers ran with n + 1. */
static int
app_pool_ran(butler_server *self, void *user, struct app_ran *msg)
{
	struct app_contents c = { .n = msg->n + 1 };

	(void)user;
	return app_reply_ran(self, &c);
}

static int
app_pool_read(butler_server *self, void *user, struct app_read *msg)
{
	(void)self, (void)user, (void)msg;
	return 0;
}

static struct submitter sub_main, sub_one, sub_two;

static void
start(struct world *w)
{
	cr_assert_eq(butler_hub_new(&w->hub, &app_spec), BUTLER_OK);
	sub_main = (struct submitter) { .w = w };
	sub_one = (struct submitter) { .w = w };
	sub_two = (struct submitter) { .w = w };
	cr_assert_eq(app_main_register(
	                 w->hub, &(struct app_main_handlers) { 0 }, &sub_main),
	    BUTLER_OK);
	cr_assert_eq(
	    app_one_register_each(w->hub, &sub_one, NULL, NULL, submit_run),
	    BUTLER_OK);
	cr_assert_eq(
	    app_two_register_each(w->hub, &sub_two, NULL, NULL, submit_run),
	    BUTLER_OK);
	cr_assert_eq(app_pool_register_each(w->hub, NULL, NULL, NULL,
	                 app_pool_ran, app_pool_read),
	    BUTLER_OK);
	cr_assert_eq(butler_tasks_register(w->hub), BUTLER_OK);
	cr_assert_eq(butler_files_register(w->hub), BUTLER_OK);
	cr_assert_eq(butler_hub_start(w->hub), BUTLER_OK);
	/* The test thread speaks for 'main' from now on. */
	sub_main.thread = pthread_self();
	atomic_store(&sub_main.set, 1);
}

/* pump drains 'main' on the test thread until *v reaches want. */
static void
pump(struct world *w, atomic_int *v, int want, const char *what)
{
	int fd = butler_server_fd(w->hub, APP_SERVER_MAIN);

	for (int i = 0; atomic_load(v) < want; i++) {
		cr_assert_lt(i, 4000, "timed out waiting for %s: %d of %d",
		    what, atomic_load(v), want);
		(void)poll(
		    &(struct pollfd) { .fd = fd, .events = POLLIN }, 1, 5);
		cr_assert_eq(
		    butler_server_drain(w->hub, APP_SERVER_MAIN, 0, NULL),
		    BUTLER_OK);
	}
}

static unsigned
pool_size(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (unsigned)n : 1;
}

/* block_pool submits blockers from 'main' until every instance of the
 * tasks pool runs one; returns how many it submitted. */
static int
block_pool(struct world *w)
{
	int n = (int)pool_size() * 4;

	for (int i = 0; i < n; i++) {
		struct targ *a = new_targ(w, 0);

		cr_assert_eq(butler_tasks_submit(w->hub, blocker, a, free_targ,
		                 on_done, &sub_main, -1, NULL),
		    BUTLER_OK);
	}
	pump(w, &w->started, (int)pool_size(), "blockers to start");
	return n;
}

static butler_stats
pool_stats(struct world *w)
{
	butler_stats st = { 0 };

	cr_assert_eq(
	    butler_server_stats(w->hub,
	        butler_hub_server(w->hub, &tasks_spec, TASKS_SERVER_POOL),
	        &st),
	    BUTLER_OK);
	return st;
}

static void
finish(struct world *w)
{
	cr_assert_eq(butler_hub_stop(w->hub, BUTLER_STOP_DRAIN), BUTLER_OK);
	butler_hub_free(w->hub);
}

/* ---- the tests -------------------------------------------------------- */

Test(tasks, results_come_back_to_each_submitter_on_its_thread, .timeout = 60)
{
	static struct world w;
	struct app_run run = { .tasks = 300 };

	start(&w);
	cr_assert_eq(app_send_one_run(w.hub, &run), BUTLER_OK);
	cr_assert_eq(app_send_two_run(w.hub, &run), BUTLER_OK);
	for (int i = 0; atomic_load(&w.done) < 600; i++) {
		cr_assert_lt(i, 4000, "only %d of 600 tasks ended",
		    atomic_load(&w.done));
		sleep_ms(5);
	}
	finish(&w);
	cr_expect(!pthread_equal(sub_one.thread, sub_two.thread));
	cr_expect_eq(atomic_load(&w.done_ok), 600);
	cr_expect_eq(atomic_load(&w.right_results), 600);
	cr_expect_eq(atomic_load(&w.right_thread), 600);
	cr_expect_eq(atomic_load(&w.wrong_thread), 0);
	cr_expect_eq(atomic_load(&w.off_submitter), 600,
	    "a task ran on its submitter's thread");
	cr_expect_eq(atomic_load(&w.arg_frees), 600);
	cr_expect_eq(atomic_load(&w.result_frees), 600);
}

Test(tasks, cancelled_before_start_never_runs_and_frees_once, .timeout = 60)
{
	static struct world w;
	uint64_t ids[50];
	int blockers, victims = 50;

	start(&w);
	blockers = block_pool(&w);
	for (int i = 0; i < victims; i++) {
		struct targ *a = new_targ(&w, 0);

		cr_assert_eq(butler_tasks_submit(w.hub, victim, a, free_targ,
		                 on_done, &sub_main, -1, &ids[i]),
		    BUTLER_OK);
	}
	cr_assert_eq(
	    butler_tasks_in_flight(w.hub), (unsigned)(blockers + victims));
	for (int i = 0; i < victims; i++)
		cr_assert_eq(butler_tasks_cancel(w.hub, ids[i]), BUTLER_OK);
	/* The callbacks ran inside butler_tasks_cancel(). */
	cr_expect_eq(atomic_load(&w.done_cancelled), victims);
	cr_expect_eq(butler_tasks_cancel(w.hub, ids[0]), BUTLER_ENOTFOUND);
	cr_expect_eq(atomic_load(&w.arg_frees), 0,
	    "an argument was freed while its task was still queued");
	atomic_store(&w.gate, true);
	pump(&w, &w.done, blockers + victims, "the blockers");
	cr_assert_eq(butler_hub_stop(w.hub, BUTLER_STOP_DRAIN), BUTLER_OK);
	cr_expect_eq(pool_stats(&w).abandoned, (uint64_t)victims);
	butler_hub_free(w.hub);
	cr_expect_eq(atomic_load(&w.victims_ran), 0);
	cr_expect_eq(atomic_load(&w.arg_frees), blockers + victims);
	cr_expect_eq(atomic_load(&w.right_thread), blockers + victims);
}

Test(tasks, timed_out_before_start_never_runs, .timeout = 60)
{
	static struct world w;
	int blockers, victims = 20;

	start(&w);
	blockers = block_pool(&w);
	for (int i = 0; i < victims; i++) {
		struct targ *a = new_targ(&w, 0);

		cr_assert_eq(butler_tasks_submit(w.hub, victim, a, free_targ,
		                 on_done, &sub_main, 20, NULL),
		    BUTLER_OK);
	}
	pump(&w, &w.done_timedout, victims, "the timeouts");
	atomic_store(&w.gate, true);
	pump(&w, &w.done, blockers + victims, "the blockers");
	cr_assert_eq(butler_hub_stop(w.hub, BUTLER_STOP_DRAIN), BUTLER_OK);
	cr_expect_eq(pool_stats(&w).abandoned, (uint64_t)victims);
	butler_hub_free(w.hub);
	cr_expect_eq(atomic_load(&w.victims_ran), 0);
	cr_expect_eq(atomic_load(&w.arg_frees), blockers + victims);
	cr_expect_eq(atomic_load(&w.done_ok), blockers);
}

Test(tasks, stop_discard_frees_queued_arguments_once, .timeout = 60)
{
	static struct world w;
	int blockers, victims = 30;

	start(&w);
	blockers = block_pool(&w);
	for (int i = 0; i < victims; i++) {
		struct targ *a = new_targ(&w, 0);

		cr_assert_eq(butler_tasks_submit(w.hub, victim, a, free_targ,
		                 on_done, &sub_main, -1, NULL),
		    BUTLER_OK);
	}
	/* The blockers see butler_task_cancelled() once the stop discards. */
	cr_assert_eq(butler_hub_stop(w.hub, BUTLER_STOP_DISCARD), BUTLER_OK);
	cr_expect_eq(atomic_load(&w.done), blockers + victims,
	    "every task ends by the end of the stop");
	/* A blocker that returned before its submitter's end got there
	 * may have been answered. */
	cr_expect(atomic_load(&w.done_closed) >= victims);
	cr_expect_eq(atomic_load(&w.done_closed) + atomic_load(&w.done_ok),
	    blockers + victims);
	cr_expect_eq(atomic_load(&w.victims_ran), 0);
	cr_expect_eq(atomic_load(&w.arg_frees), blockers + victims);
	cr_expect_eq(butler_tasks_in_flight(w.hub), 0);
	cr_expect_eq(butler_hub_pending(w.hub, NULL, NULL), 0);
	butler_hub_free(w.hub);
}

Test(tasks, running_task_sees_its_cancel, .timeout = 60)
{
	static struct world w;
	struct targ *a;
	uint64_t id;

	start(&w);
	a = new_targ(&w, 0);
	cr_assert_eq(butler_tasks_submit(w.hub, until_cancelled, a, free_targ,
	                 on_done, &sub_main, -1, &id),
	    BUTLER_OK);
	pump(&w, &w.started, 1, "the task to start");
	cr_assert_eq(butler_tasks_cancel(w.hub, id), BUTLER_OK);
	cr_expect_eq(atomic_load(&w.done_cancelled), 1);
	for (int i = 0; atomic_load(&w.result_frees) < 1; i++) {
		cr_assert_lt(i, 4000, "the task never ended");
		sleep_ms(5);
	}
	finish(&w);
	cr_expect_eq(atomic_load(&w.saw_cancel), 1);
	cr_expect_eq(atomic_load(&w.arg_frees), 1);
	cr_expect_eq(atomic_load(&w.result_frees), 1,
	    "the result that reached no one was not freed once");
	cr_expect_eq(atomic_load(&w.done), 1);
}

Test(tasks, bound_on_tasks_in_flight, .timeout = 60)
{
	static struct world w;
	struct targ *a;

	start(&w);
	cr_assert_eq(butler_tasks_set_limit(0), BUTLER_EINVAL);
	cr_assert_eq(butler_tasks_set_limit(3), BUTLER_OK);
	for (int i = 0; i < 3; i++) {
		a = new_targ(&w, 0);
		cr_assert_eq(butler_tasks_submit(w.hub, blocker, a, free_targ,
		                 on_done, &sub_main, -1, NULL),
		    BUTLER_OK);
	}
	cr_expect_eq(butler_tasks_in_flight(w.hub), 3);
	a = new_targ(&w, 0);
	cr_expect_eq(butler_tasks_submit(w.hub, blocker, a, free_targ, on_done,
	                 &sub_main, -1, NULL),
	    BUTLER_EFULL);
	cr_expect_eq(
	    atomic_load(&w.arg_frees), 0, "a refused argument was freed");
	atomic_store(&w.gate, true);
	pump(&w, &w.done, 3, "the three tasks");
	cr_expect_eq(butler_tasks_in_flight(w.hub), 0);
	cr_expect_eq(butler_tasks_submit(w.hub, blocker, a, free_targ, on_done,
	                 &sub_main, -1, NULL),
	    BUTLER_OK);
	pump(&w, &w.done, 4, "the fourth task");
	finish(&w);
	cr_expect_eq(atomic_load(&w.arg_frees), 4);
	cr_expect_eq(butler_tasks_set_limit(BUTLER_TASKS_LIMIT), BUTLER_OK);
}

/* count_tasks is a butler_pending_fn: counts main's calls to the pool. */
static void
count_tasks(const butler_pending_info *info, void *user)
{
	int *n = user;

	if (info->caller != NULL && strcmp(info->caller, "main") == 0
	    && strcmp(info->server, "pool") == 0
	    && strcmp(info->message, "run") == 0)
		(*n)++;
}

Test(tasks, pending_lists_tasks_and_failures_arrive, .timeout = 60)
{
	static struct world w;
	int blockers, listed = 0;
	struct targ *a;

	start(&w);
	blockers = block_pool(&w);
	cr_expect_eq(
	    butler_hub_pending(w.hub, count_tasks, &listed), (size_t)blockers);
	cr_expect_eq(listed, blockers);
	atomic_store(&w.gate, true);
	pump(&w, &w.done, blockers, "the blockers");
	a = new_targ(&w, 0);
	cr_assert_eq(butler_tasks_submit(w.hub, fails, a, free_targ, on_done,
	                 &sub_main, -1, NULL),
	    BUTLER_OK);
	pump(&w, &w.done, blockers + 1, "the failing task");
	cr_expect_eq(atomic_load(&w.done_failed), 1);
	finish(&w);
	cr_expect_eq(atomic_load(&w.result_frees), 1);
	cr_expect_eq(atomic_load(&w.arg_frees), blockers + 1);
}

Test(tasks, a_task_keeps_its_argument, .timeout = 60)
{
	static struct world w;
	struct targ *a;

	start(&w);
	a = new_targ(&w, 7);
	cr_assert_eq(butler_tasks_submit(
	                 w.hub, echo, a, free_targ, NULL, &sub_main, -1, NULL),
	    BUTLER_OK);
	/* No callback: the result, the argument itself, is freed by the
	 * hub, once. */
	for (int i = 0; atomic_load(&w.arg_frees) < 1; i++) {
		cr_assert_lt(i, 4000, "the result was never freed");
		(void)butler_server_drain(w.hub, APP_SERVER_MAIN, 0, NULL);
		sleep_ms(5);
	}
	finish(&w);
	cr_expect_eq(atomic_load(&w.arg_frees), 1);
}

/* struct waiter runs butler_tasks_run_wait() on a plain thread. */
struct waiter {
	struct world *w;
	int rv;
	unsigned value;
};

static void *
wait_square(void *arg)
{
	struct waiter *wt = arg;
	void *result = NULL;

	wt->rv = butler_tasks_run_wait(
	    wt->w->hub, square, new_targ(wt->w, 9), free_targ, 5000, &result);
	if (wt->rv == BUTLER_OK && result != NULL) {
		wt->value = ((struct tres *)result)->value;
		free_tres(result);
	}
	return NULL;
}

Test(tasks, blocking_run_from_a_plain_thread, .timeout = 60)
{
	static struct world w;
	struct waiter wt = { .w = &w, .rv = -1 };
	struct app_ran ran = { .n = 1 };
	struct app_contents c = { 0 };
	pthread_t th;
	void *result;
	struct targ *a;

	cr_assert_eq(butler_hub_new(&w.hub, &app_spec), BUTLER_OK);
	a = new_targ(&w, 1);
	cr_expect_eq(
	    butler_tasks_run_wait(w.hub, square, a, free_targ, 1000, &result),
	    BUTLER_ESTATE);
	cr_expect_eq(butler_tasks_submit(w.hub, square, a, free_targ, on_done,
	                 &sub_main, -1, NULL),
	    BUTLER_ESTATE);
	butler_hub_free(w.hub);
	start(&w);
	/* The test thread owns 'main': it must not block. */
	cr_expect_eq(
	    butler_tasks_run_wait(w.hub, square, a, free_targ, 1000, &result),
	    BUTLER_EDEADLK);
	free(a);
	cr_assert_eq(pthread_create(&th, NULL, wait_square, &wt), 0);
	cr_assert_eq(pthread_join(th, NULL), 0);
	cr_expect_eq(wt.rv, BUTLER_OK);
	cr_expect_eq(wt.value, 81);
	/* The app's own 'pool' and message 'ran', beside the tasks pool. */
	cr_expect_eq(
	    app_call_pool_ran_wait(w.hub, &ran, 1000, &c), BUTLER_EDEADLK);
	finish(&w);
	cr_expect_eq(atomic_load(&w.arg_frees), 1);
	cr_expect_eq(atomic_load(&w.result_frees), 1);
}

static void *
call_app_pool(void *arg)
{
	struct world *w = arg;
	struct app_ran ran = { .n = 41 };
	struct app_contents c = { 0 };

	if (app_call_pool_ran_wait(w->hub, &ran, 5000, &c) == BUTLER_OK
	    && c.n == 42)
		atomic_fetch_add(&w->done_ok, 1);
	return NULL;
}

Test(tasks, same_names_in_two_specs_of_one_hub, .timeout = 60)
{
	static struct world w;
	pthread_t th;

	start(&w);
	/* app's pool and the tasks pool are two servers. */
	cr_expect_neq(butler_hub_server(w.hub, &app_spec, APP_SERVER_POOL),
	    butler_hub_server(w.hub, &tasks_spec, TASKS_SERVER_POOL));
	cr_expect_eq(butler_hub_server(w.hub, &app_spec, APP_SERVER_POOL),
	    APP_SERVER_POOL);
	cr_expect_eq(sizeof(struct app_run) == sizeof(struct tasks_run), 0);
	cr_assert_eq(pthread_create(&th, NULL, call_app_pool, &w), 0);
	cr_assert_eq(pthread_join(th, NULL), 0);
	cr_expect_eq(atomic_load(&w.done_ok), 1);
	finish(&w);
}

static int
lone_noop(butler_server *self, void *user, struct lone_noop *msg)
{
	(void)self, (void)user, (void)msg;
	return 0;
}

Test(tasks, hub_without_the_tasks_spec, .timeout = 30)
{
	butler_hub *hub;
	void *result = NULL;
	int x = 0;

	cr_assert_eq(butler_hub_new(&hub, &lone_spec), BUTLER_OK);
	cr_expect_eq(butler_tasks_register(hub), BUTLER_EINVAL);
	cr_assert_eq(lone_main_register_each(hub, NULL, NULL, NULL, lone_noop),
	    BUTLER_OK);
	cr_assert_eq(butler_hub_start(hub), BUTLER_OK);
	cr_expect_eq(
	    butler_tasks_submit(hub, victim, &x, NULL, NULL, NULL, -1, NULL),
	    BUTLER_EINVAL);
	cr_expect_eq(butler_tasks_in_flight(hub), 0);
	cr_expect_eq(
	    butler_tasks_submit(NULL, victim, &x, NULL, NULL, NULL, -1, NULL),
	    BUTLER_EINVAL);
	cr_expect_eq(
	    butler_tasks_submit(hub, NULL, &x, NULL, NULL, NULL, -1, NULL),
	    BUTLER_EINVAL);
	cr_expect_eq(
	    butler_tasks_run_wait(NULL, victim, &x, NULL, -1, &result),
	    BUTLER_EINVAL);
	cr_assert_eq(butler_hub_stop(hub, BUTLER_STOP_DRAIN), BUTLER_OK);
	butler_hub_free(hub);
}

/* A hub of the tasks spec alone: nothing but the pool. */
Test(tasks, hub_of_the_tasks_spec_alone, .timeout = 30)
{
	static struct world w;
	void *result = NULL;

	cr_assert_eq(butler_hub_new(&w.hub, &tasks_spec), BUTLER_OK);
	cr_assert_eq(butler_tasks_register(w.hub), BUTLER_OK);
	cr_assert_eq(butler_hub_start(w.hub), BUTLER_OK);
	cr_assert_eq(butler_tasks_register(w.hub), BUTLER_ESTATE);
	/* This thread speaks for no server of this hub. */
	cr_expect_eq(butler_tasks_submit(
	                 w.hub, square, NULL, NULL, NULL, NULL, -1, NULL),
	    BUTLER_ESTATE);
	cr_expect_eq(butler_tasks_run_wait(w.hub, square, new_targ(&w, 12),
	                 free_targ, 5000, &result),
	    BUTLER_OK);
	cr_assert_not_null(result);
	cr_expect_eq(((struct tres *)result)->value, 144);
	free_tres(result);
	/* A result nobody takes is freed. */
	cr_expect_eq(butler_tasks_run_wait(w.hub, square, new_targ(&w, 2),
	                 free_targ, 5000, NULL),
	    BUTLER_OK);
	finish(&w);
	cr_expect_eq(atomic_load(&w.arg_frees), 2);
	cr_expect_eq(atomic_load(&w.result_frees), 2);
}
