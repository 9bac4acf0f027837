/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/peer_tasks.c — servers/tasks against GLib's GThreadPool, in
 * one process, alternating repetitions (tasks_bench).
 *
 * Both peers run tasks for a GLib main loop on the main thread, and the
 * results come back to that loop:
 *
 *   butler  butler_tasks_submit() from the loop (the hub's external-loop
 *           server 'main', attached with butler_glib_attach()); the done
 *           callback runs on the loop. The tasks pool has one thread per
 *           online CPU ("instances": "auto").
 *   glib    g_thread_pool_push() from the loop to a GThreadPool of as many
 *           threads; each task ends with g_main_context_invoke() of its
 *           completion on the loop (GLib's idiom for "run this there").
 *
 * Workloads:
 *
 *   small   N tiny tasks (a few hundred ns of arithmetic), 64 in flight:
 *           each completion submits the next. Tasks per second, after a
 *           warm-up of N/10.
 *   tail    1,000 tasks with heavy-tailed sizes (Pareto, alpha 1.1, the
 *           same sizes for both peers), all submitted at once. Makespan
 *           (first submit to last completion) against the ideal: the
 *           total work, measured by running every task once on this
 *           thread, divided by the pool's threads.
 *
 * Nothing is asserted about time; every task's result is checked. Output:
 * "result,<peer>,<workload>,<metric>,<value>" lines per run, then a
 * markdown table of medians with the ratios.
 *
 *   tasks_bench [--quick] [--reps N] [--small N] [--only butler|glib]
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime() */
#include <glib.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <butler/glib.h>
#include <butler/tasks.h>

#include "tasks_bench.butler.h"

#define IN_FLIGHT 64
#define TAIL_TASKS 1000
#define SMALL_WORK 64 /* iterations of a small task */

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* work is the tasks' arithmetic: `iters` rounds of a 64-bit mix that the
 * compiler cannot fold. */
static uint64_t
work(uint64_t seed, uint64_t iters)
{
	uint64_t x = seed | 1;

	for (uint64_t i = 0; i < iters; i++) {
		x ^= x >> 33;
		x *= 0xff51afd7ed558ccdu;
		x ^= x >> 29;
	}
	return x;
}

/* struct item is one task, in a table made before the run (no allocation
 * per task on either side). */
struct item {
	uint64_t seed, iters;
	uint64_t result;
	uint64_t expect; /* work(seed, iters), computed before the runs */
	struct run *run;
};

/* struct run is one repetition of one workload for one peer. */
struct run {
	struct item *items;
	unsigned n;        /* tasks in all */
	unsigned next;     /* next to submit */
	unsigned finished; /* completions seen */
	unsigned warmup;   /* completions before the clock starts */
	unsigned window;   /* in flight (0: all at once) */
	uint64_t t0, t1;
	int errors;
	GMainLoop *loop;
	/* peers */
	butler_hub *hub;
	GThreadPool *pool;
	GMainContext *ctx;
};

static bool
check(const struct item *it)
{
	return it->result == it->expect;
}

/* finished counts one completion on the loop; false when the run is over. */
static bool
finished(struct run *r, struct item *it)
{
	if (!check(it))
		r->errors++;
	r->finished++;
	if (r->finished == r->warmup)
		r->t0 = now_ns();
	if (r->finished == r->n) {
		r->t1 = now_ns();
		g_main_loop_quit(r->loop);
		return false;
	}
	return true;
}

/* ---- butler ----------------------------------------------------------- */

static int
run_butler_task(butler_task *task, void *arg)
{
	struct item *it = arg;

	(void)task;
	it->result = work(it->seed, it->iters);
	return 0;
}

static void butler_done(
    butler_server *self, int status, void *result, void *user);

static void
butler_submit(struct run *r)
{
	struct item *it = &r->items[r->next++];
	int rv = butler_tasks_submit(
	    r->hub, run_butler_task, it, NULL, butler_done, it, -1, NULL);

	if (rv != BUTLER_OK) {
		fprintf(
		    stderr, "tasks_bench: submit: %s\n", butler_strerror(rv));
		exit(1);
	}
}

static void
butler_done(butler_server *self, int status, void *result, void *user)
{
	struct item *it = user;
	struct run *r = it->run;

	(void)self;
	(void)result;
	if (status != BUTLER_OK)
		r->errors++;
	if (finished(r, it) && r->window != 0 && r->next < r->n)
		butler_submit(r);
}

static gboolean
butler_start(gpointer data)
{
	struct run *r = data;
	unsigned first = r->window != 0 ? r->window : r->n;

	if (r->warmup == 0)
		r->t0 = now_ns();
	for (unsigned i = 0; i < first && r->next < r->n; i++)
		butler_submit(r);
	return G_SOURCE_REMOVE;
}

/* ---- GThreadPool + g_main_context_invoke -------------------------------- */

static gboolean
glib_done(gpointer data)
{
	struct item *it = data;
	struct run *r = it->run;

	if (finished(r, it) && r->window != 0 && r->next < r->n)
		g_thread_pool_push(r->pool, &r->items[r->next++], NULL);
	return G_SOURCE_REMOVE;
}

static void
glib_task(gpointer data, gpointer user)
{
	struct item *it = data;

	(void)user;
	it->result = work(it->seed, it->iters);
	g_main_context_invoke(it->run->ctx, glib_done, it);
}

static gboolean
glib_start(gpointer data)
{
	struct run *r = data;
	unsigned first = r->window != 0 ? r->window : r->n;

	if (r->warmup == 0)
		r->t0 = now_ns();
	for (unsigned i = 0; i < first && r->next < r->n; i++)
		g_thread_pool_push(r->pool, &r->items[r->next++], NULL);
	return G_SOURCE_REMOVE;
}

/* ---- the driver ------------------------------------------------------- */

/* struct bench holds both peers, made once. */
struct bench {
	butler_hub *hub;
	GSource *source;
	GThreadPool *pool;
	unsigned threads;
	GMainLoop *loop;
};

static int
tb_nothing(butler_server *self, void *user, struct tb_nothing *msg)
{
	(void)self, (void)user, (void)msg;
	return 0;
}

static void
setup(struct bench *b)
{
	GError *error = NULL;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int rv;

	b->threads = cpus > 0 ? (unsigned)cpus : 1;
	b->loop = g_main_loop_new(NULL, FALSE);
	rv = butler_hub_new(&b->hub, &tb_spec);
	if (rv == BUTLER_OK)
		rv = tb_main_register_each(
		    b->hub, NULL, NULL, NULL, tb_nothing);
	if (rv == BUTLER_OK)
		rv = butler_tasks_register(b->hub);
	if (rv == BUTLER_OK)
		rv = butler_hub_start(b->hub);
	if (rv == BUTLER_OK)
		rv = butler_glib_attach(
		    b->hub, TB_SERVER_MAIN, NULL, 0, &b->source);
	if (rv != BUTLER_OK) {
		fprintf(stderr, "tasks_bench: hub: %s\n", butler_strerror(rv));
		exit(1);
	}
	b->pool = g_thread_pool_new(
	    glib_task, NULL, (gint)b->threads, TRUE, &error);
	if (b->pool == NULL) {
		fprintf(
		    stderr, "tasks_bench: GThreadPool: %s\n", error->message);
		exit(1);
	}
}

static void
teardown(struct bench *b)
{
	g_thread_pool_free(b->pool, FALSE, TRUE);
	butler_hub_stop(b->hub, BUTLER_STOP_DRAIN);
	g_source_destroy(b->source);
	g_source_unref(b->source);
	butler_hub_free(b->hub);
	g_main_loop_unref(b->loop);
}

/* wakeups returns how often the pool's threads and the loop's server
 * were woken from sleep so far. */
static uint64_t
wakeups(struct bench *b)
{
	butler_stats pool = { 0 }, main_st = { 0 };

	butler_server_stats(b->hub,
	    butler_hub_server(b->hub, &tasks_spec, TASKS_SERVER_POOL), &pool);
	butler_server_stats(b->hub, TB_SERVER_MAIN, &main_st);
	return pool.wakeups + main_st.wakeups;
}

/* run_once runs `items` (n of them, window in flight) on peer `peer` and
 * returns the measured nanoseconds. */
static uint64_t
run_once(struct bench *b, const char *peer, struct item *items, unsigned n,
    unsigned window, unsigned warmup)
{
	struct run r = { .items = items,
		.n = n,
		.window = window,
		.warmup = warmup,
		.loop = b->loop,
		.hub = b->hub,
		.pool = b->pool,
		.ctx = g_main_context_default() };

	for (unsigned i = 0; i < n; i++) {
		items[i].run = &r;
		items[i].result = 0;
	}
	g_idle_add(
	    strcmp(peer, "butler") == 0 ? butler_start : glib_start, &r);
	g_main_loop_run(b->loop);
	if (r.errors != 0) {
		fprintf(stderr, "tasks_bench: %s: %d wrong or failed tasks\n",
		    peer, r.errors);
		exit(1);
	}
	return r.t1 - r.t0;
}

/* pareto draws a task size from Pareto(xm, alpha), capped. */
static uint64_t
pareto(GRand *rng, double xm, double alpha, double cap)
{
	double u = g_rand_double(rng); /* [0, 1) */
	double x = xm / pow(1.0 - u, 1.0 / alpha);

	return (uint64_t)(x < cap ? x : cap);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void
min_max(const double *v, int n, double *lo, double *hi)
{
	*lo = *hi = v[0];
	for (int i = 1; i < n; i++) {
		*lo = v[i] < *lo ? v[i] : *lo;
		*hi = v[i] > *hi ? v[i] : *hi;
	}
}

static void
cell(char *buf, size_t size, double *v, int n, const char *fmt)
{
	double lo, hi, med;
	char a[32], b[32], c[32];

	min_max(v, n, &lo, &hi);
	med = median(v, n);
	snprintf(a, sizeof a, fmt, med);
	snprintf(b, sizeof b, fmt, lo);
	snprintf(c, sizeof c, fmt, hi);
	if (n == 1)
		snprintf(buf, size, "%s", a);
	else
		snprintf(buf, size, "%s (%s–%s)", a, b, c);
}

int
main(int argc, char **argv)
{
	unsigned small = 200000, reps = 5;
	const char *only = NULL;
	struct bench b = { 0 };
	struct item *items, *tail;
	GRand *rng;
	uint64_t serial = 0, t;
	double *s_b, *s_g, *m_b, *m_g, *w_b, ideal;
	uint64_t woken;
	char c1[128], c2[128], c3[128], c4[128];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			small = 5000;
			reps = 1;
		} else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
			reps = (unsigned)atoi(argv[++i]);
		} else if (strcmp(argv[i], "--small") == 0 && i + 1 < argc) {
			small = (unsigned)atoi(argv[++i]);
		} else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
			only = argv[++i]; /* for a profiler: one peer */
		} else if (strcmp(argv[i], "--list") == 0) {
			return 0; /* not a tests/bench/run peer */
		} else {
			fprintf(stderr,
			    "usage: tasks_bench [--quick] [--reps N] "
			    "[--small N] [--only butler|glib]\n");
			return 2;
		}
	}
	if (reps == 0 || small < 10)
		return 2;
	setup(&b);

	items = calloc(small, sizeof *items);
	tail = calloc(TAIL_TASKS, sizeof *tail);
	s_b = calloc(reps, sizeof *s_b);
	s_g = calloc(reps, sizeof *s_g);
	m_b = calloc(reps, sizeof *m_b);
	m_g = calloc(reps, sizeof *m_g);
	w_b = calloc(reps, sizeof *w_b);
	if (!items || !tail || !s_b || !s_g || !m_b || !m_g || !w_b)
		return 1;
	for (unsigned i = 0; i < small; i++) {
		items[i] = (struct item) { .seed = i, .iters = SMALL_WORK };
		items[i].expect = work(i, SMALL_WORK);
	}
	/* The heavy tail: the same sizes for every run and peer, in
	 * iterations of work() (about 1 ns each). xm 20000: most tasks take
	 * 20-40 us, a few take milliseconds. */
	rng = g_rand_new_with_seed(20261123);
	for (unsigned i = 0; i < TAIL_TASKS; i++)
		tail[i] = (struct item) { .seed = i,
			.iters = pareto(rng, 20000, 1.1, 2e7) };
	g_rand_free(rng);
	/* The total work, run once here, one task after the other. */
	t = now_ns();
	for (unsigned i = 0; i < TAIL_TASKS; i++)
		tail[i].expect = work(tail[i].seed, tail[i].iters);
	serial = now_ns() - t;
	ideal = (double)serial / b.threads;

	for (unsigned rep = 0; rep < reps; rep++) {
		/* Alternate which peer goes first. */
		const char *first = rep % 2 ? "glib" : "butler";
		const char *second = rep % 2 ? "butler" : "glib";
		const char *peers[2] = { first, second };

		for (int p = 0; p < 2; p++) {
			bool is_b = strcmp(peers[p], "butler") == 0;
			uint64_t ns;
			double rate;

			if (only != NULL && strcmp(only, peers[p]) != 0)
				continue;
			woken = wakeups(&b);
			ns = run_once(
			    &b, peers[p], items, small, IN_FLIGHT, small / 10);
			rate = (small - small / 10) / (ns / 1e9);

			(is_b ? s_b : s_g)[rep] = rate / 1000;
			printf("result,%s,small,ktasks_per_s,%.1f\n", peers[p],
			    rate / 1000);
			if (is_b) {
				w_b[rep]
				    = (double)(wakeups(&b) - woken) / small;
				printf("result,butler,small,wakeups_per_task,%"
				       ".3f\n",
				    w_b[rep]);
			}
		}
		for (int p = 0; p < 2; p++) {
			bool is_b = strcmp(peers[p], "butler") == 0;
			uint64_t ns;

			if (only != NULL && strcmp(only, peers[p]) != 0)
				continue;
			ns = run_once(&b, peers[p], tail, TAIL_TASKS, 0, 0);

			(is_b ? m_b : m_g)[rep] = ns / 1e6;
			printf("result,%s,tail,makespan_ms,%.2f\n", peers[p],
			    ns / 1e6);
		}
	}
	teardown(&b);

	printf("\n#### Tasks for a GLib main loop: median (min–max) of %u "
	       "run(s), a pool of %u\n\n",
	    reps, b.threads);
	printf("| workload | butler tasks | GThreadPool + "
	       "g_main_context_invoke | butler / GLib | target |\n");
	printf("|---|---|---|---|---|\n");
	cell(c1, sizeof c1, s_b, (int)reps, "%.0f");
	cell(c2, sizeof c2, s_g, (int)reps, "%.0f");
	printf("| %u small tasks, %d in flight: k tasks/s | %s | %s | %.2f× | "
	       "≥ 2× (%s) |\n",
	    small, IN_FLIGHT, c1, c2,
	    median(s_b, (int)reps) / median(s_g, (int)reps),
	    median(s_b, (int)reps) / median(s_g, (int)reps) >= 2 ? "met"
	                                                         : "not met");
	printf("| ... butler's wake-ups (pool and loop) per task | %.2f | "
	       "| | |\n",
	    median(w_b, (int)reps));
	cell(c3, sizeof c3, m_b, (int)reps, "%.1f");
	cell(c4, sizeof c4, m_g, (int)reps, "%.1f");
	printf("| %d heavy-tailed tasks: makespan, ms | %s | %s | %.2f× "
	       "(lower is better) | |\n",
	    TAIL_TASKS, c3, c4,
	    median(m_b, (int)reps) / median(m_g, (int)reps));
	printf("| ... makespan / ideal (%.1f ms = %.1f ms of work / %u) | "
	       "%.2f | %.2f | | |\n",
	    ideal / 1e6, serial / 1e6, b.threads,
	    median(m_b, (int)reps) / (ideal / 1e6),
	    median(m_g, (int)reps) / (ideal / 1e6));
	free(items);
	free(tail);
	free(s_b);
	free(s_g);
	free(m_b);
	free(m_g);
	free(w_b);
	return 0;
}
