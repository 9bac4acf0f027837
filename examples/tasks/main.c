/* SPDX-License-Identifier: MIT */
/*
 * examples/tasks — run functions on the tasks pool, cancel some, and get
 * the results back on main()'s own thread.
 *
 * The hub is built from tasks_demo.json, which imports the tasks spec:
 * one hub runs the program's server 'main' (this thread, an external-loop
 * server that main() polls) and the tasks pool (one thread per CPU).
 * main() submits a task per number, counting the primes below it; every
 * done callback runs here, in butler_server_drain(). Two tasks are
 * cancelled at once, so they end without a result whether or not they had
 * started; a long one is cancelled once it runs, sees it
 * (butler_task_cancelled()), stops and sends 'main' a note about it. Each
 * argument is malloc()ed and freed by the hub through free_arg, exactly
 * once, whether its task ran or not: the counts at the end say so.
 */
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <butler/tasks.h>

#include "tasks_demo.butler.h" /* generated from tasks_demo.json */

/* struct job is a task's argument. */
struct job {
	unsigned below; /* count the primes below this */
};

/* struct count is a task's result. */
struct count {
	unsigned below, primes;
};

static atomic_int freed;   /* arguments freed (by the hub) */
static atomic_int started; /* the long task runs */
static int ended, results, cancelled, notes;

static void
free_job(void *p)
{
	atomic_fetch_add(&freed, 1);
	free(p);
}

static bool
is_prime(unsigned n)
{
	if (n < 2)
		return false;
	for (unsigned d = 2; d * d <= n; d++)
		if (n % d == 0)
			return false;
	return true;
}

/* count_primes runs on a pool thread. It checks every 4096 numbers
 * whether main still wants the answer. */
static int
count_primes(butler_task *task, void *arg)
{
	struct job *job = arg;
	struct count *c = malloc(sizeof *c);

	if (c == NULL)
		return BUTLER_ENOMEM;
	c->below = job->below;
	c->primes = 0;
	if (job->below > 10000000)
		atomic_store(&started, 1);
	for (unsigned n = 0; n < job->below; n++) {
		if (n % 4096 == 0 && butler_task_cancelled(task)) {
			struct demo_note note = { .text = malloc(80) };
			butler_hub *hub
			    = butler_server_hub(butler_task_server(task));

			if (note.text != NULL)
				snprintf(note.text, 80,
				    "the long task saw its cancel after %u of "
				    "%u numbers",
				    n, job->below);
			if (demo_send_main_note(hub, &note) != BUTLER_OK)
				free(note.text);
			free(c);
			return 0; /* no one waits for a result any more */
		}
		if (is_prime(n))
			c->primes++;
	}
	butler_task_set_result(task, c, free);
	return 0;
}

/* on_counted runs on main's thread, once per task. */
static void
on_counted(butler_server *self, int status, void *result, void *user)
{
	struct count *c = result;

	(void)self;
	(void)user;
	ended++;
	if (status == BUTLER_OK) {
		printf("primes below %u: %u\n", c->below, c->primes);
		results++;
		free(c);
	} else if (status == BUTLER_ECANCELED) {
		cancelled++;
	} else {
		printf("a task failed: %s\n", butler_strerror(status));
	}
}

static int
on_note(butler_server *self, void *user, struct demo_note *msg)
{
	(void)self;
	(void)user;
	printf("note: %s\n", msg->text);
	notes++;
	return 0; /* the hub frees msg->text */
}

/* turn waits up to 10 ms for main's inbox and handles what is there. */
static int
turn(butler_hub *hub)
{
	int fd = butler_server_fd(hub, DEMO_SERVER_MAIN);

	poll(&(struct pollfd) { .fd = fd, .events = POLLIN }, 1, 10);
	return butler_server_drain(hub, DEMO_SERVER_MAIN, 0, NULL);
}

int
main(void)
{
	static const unsigned below[] = { 10, 100, 1000, 10000, 100000, 200000,
		300000, 400000, 500000, 1000000 };
	const int n = (int)(sizeof below / sizeof below[0]);
	uint64_t ids[sizeof below / sizeof below[0]], long_id = 0;
	butler_hub *hub;
	int rv, submitted = 0;

	rv = butler_hub_new(&hub, &demo_spec);
	if (rv == BUTLER_OK)
		rv = demo_main_register_each(hub, NULL, NULL, NULL, on_note);
	if (rv == BUTLER_OK)
		rv = butler_tasks_register(hub);
	if (rv == BUTLER_OK)
		rv = butler_hub_start(hub);
	/* From here this thread speaks for 'main': it may submit. */
	for (int i = 0; rv == BUTLER_OK && i < n; i++) {
		struct job *job = malloc(sizeof *job);

		if (job == NULL) {
			rv = BUTLER_ENOMEM;
			break;
		}
		job->below = below[i];
		rv = butler_tasks_submit(hub, count_primes, job, free_job,
		    on_counted, NULL, 60000, &ids[i]);
		if (rv != BUTLER_OK)
			free(job); /* refused: still ours */
		else
			submitted++;
	}
	/* Changed our mind about two of them: their callbacks run now,
	 * with BUTLER_ECANCELED, and they never run if not started yet. */
	if (rv == BUTLER_OK)
		rv = butler_tasks_cancel(hub, ids[3]);
	if (rv == BUTLER_OK)
		rv = butler_tasks_cancel(hub, ids[7]);

	/* A long task, cancelled once it runs: it sees the cancel. */
	if (rv == BUTLER_OK) {
		struct job *job = malloc(sizeof *job);

		if (job != NULL)
			job->below = 4000000000u;
		rv = job == NULL ? BUTLER_ENOMEM
		                 : butler_tasks_submit(hub, count_primes, job,
		                     free_job, on_counted, NULL, -1, &long_id);
		if (rv == BUTLER_OK)
			submitted++;
		else
			free(job);
	}
	while (rv == BUTLER_OK && !atomic_load(&started))
		rv = turn(hub);
	if (rv == BUTLER_OK)
		rv = butler_tasks_cancel(hub, long_id);
	/* Every callback, and the long task's note. */
	while (rv == BUTLER_OK && (ended < submitted || notes < 1))
		rv = turn(hub);
	if (rv != BUTLER_OK)
		fprintf(stderr, "tasks: %s\n", butler_strerror(rv));
	/* DRAIN: whatever still runs finishes, so every argument is freed
	 * by the time the stop returns. */
	butler_hub_stop(hub, BUTLER_STOP_DRAIN);
	butler_hub_free(hub);
	printf("%d tasks: %d results, %d cancelled, %d arguments freed\n",
	    submitted, results, cancelled, atomic_load(&freed));
	return rv == BUTLER_OK && results + cancelled == submitted ? 0 : 1;
}
