/* SPDX-License-Identifier: MIT */
/*
 * test_watchdog.c — the hub's monitor thread (issue 13): the watchdog that
 * names a slow handler once per run (server, instance, kind, how long),
 * for threaded servers, an external-loop server's drain and a tick; the
 * per-kind limit over the server's; the periodic metrics log; and the
 * thread itself: absent when nothing asks for it, joined by every stop.
 */
#include "fixture.h"

#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <time.h>
#include <unistd.h>

/* ---- a log that keeps its lines ----------------------------------------- */

#define MAX_LINES 256

static pthread_mutex_t lines_lock = PTHREAD_MUTEX_INITIALIZER;
static char lines[MAX_LINES][512];
static butler_log_level line_level[MAX_LINES];
static int n_lines;

static void
keep_log(butler_log_level level, const char *msg, void *user)
{
	(void)user;
	pthread_mutex_lock(&lines_lock);
	if (n_lines < MAX_LINES) {
		snprintf(lines[n_lines], sizeof lines[0], "%s", msg);
		line_level[n_lines] = level;
		n_lines++;
	}
	pthread_mutex_unlock(&lines_lock);
}

/* count_lines counts the kept lines that contain every one of the
 * strings given (NULL-terminated) at `level`. */
static int
count_lines(butler_log_level level, const char *first, ...)
{
	int n = 0;

	pthread_mutex_lock(&lines_lock);
	for (int i = 0; i < n_lines; i++) {
		va_list ap;
		bool all = line_level[i] == level;

		va_start(ap, first);
		for (const char *s = first; all && s != NULL;
		     s = va_arg(ap, const char *))
			all = strstr(lines[i], s) != NULL;
		va_end(ap);
		n += all;
	}
	pthread_mutex_unlock(&lines_lock);
	return n;
}

/* The watchdog's lines naming server `server`, each checked: its instance,
 * its kind, and a run time at least `at_least` ms. */
static int
watchdog_lines(
    const char *server, unsigned instance, const char *kind, unsigned at_least)
{
	char who[64], what[64];
	int n = 0;

	snprintf(
	    who, sizeof who, "server '%s' instance %u:", server, instance);
	snprintf(what, sizeof what, "handler for '%s' has run for ", kind);
	pthread_mutex_lock(&lines_lock);
	for (int i = 0; i < n_lines; i++) {
		const char *at;
		unsigned long long ms;

		if (strncmp(lines[i], "watchdog: ", 10) != 0
		    || strstr(lines[i], who) == NULL
		    || (at = strstr(lines[i], what)) == NULL)
			continue;
		cr_assert_eq(line_level[i], BUTLER_LOG_WARN);
		cr_assert_eq(sscanf(at + strlen(what), "%llu ms", &ms), 1,
		    "%s", lines[i]);
		cr_assert_geq(ms, at_least, "%s", lines[i]);
		n++;
	}
	pthread_mutex_unlock(&lines_lock);
	return n;
}

static int
any_watchdog_lines(void)
{
	return count_lines(BUTLER_LOG_WARN, "watchdog: ", NULL);
}

static void
reset_lines(void)
{
	pthread_mutex_lock(&lines_lock);
	n_lines = 0;
	pthread_mutex_unlock(&lines_lock);
}

static void sleep_ms(unsigned ms);

/* ---- threads ------------------------------------------------------------ */

static void *
nothing(void *arg)
{
	return arg;
}

/*
 * task_threads counts the process's threads once a thread has been
 * started and joined: a sanitizer's runtime (TSan's) starts its own
 * background thread with the first one, which would otherwise count.
 */
static int
task_threads(void)
{
	static bool warm;
	pthread_t t;

	if (!warm) {
		cr_assert_eq(pthread_create(&t, NULL, nothing, NULL), 0);
		cr_assert_eq(pthread_join(t, NULL), 0);
		warm = true;
	}
	return fx_count_dir("/proc/self/task");
}

static int
monitor_threads(void)
{
	return fx_threads_named("butler-monitor");
}

/*
 * settles returns count() once it equals want, or its value after a
 * second: a joined thread may stay listed in /proc/self/task for a moment
 * after pthread_join() returns (the kernel wakes the joiner before it
 * releases the task), while a thread left running stays for good.
 */
static int
settles(int (*count)(void), int want)
{
	int n = count();

	for (int i = 0; i < 1000 && n != want; i++) {
		sleep_ms(1);
		n = count();
	}
	return n;
}

/* ---- handlers ------------------------------------------------------------
 */

static atomic_uint handled;

static void
sleep_ms(unsigned ms)
{
	struct timespec ts
	    = { (time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* num: m->tag is how long to sleep, in ms. */
static int
num_sleeps(butler_server *self, void *user, struct num *m)
{
	(void)self;
	(void)user;
	if (m->tag != 0)
		sleep_ms(m->tag);
	atomic_fetch_add(&handled, 1);
	return 0;
}

/* owned: m->serial is how long to sleep, in ms. */
static int
owned_sleeps(butler_server *self, void *user, struct owned *m)
{
	(void)self;
	(void)user;
	if (m->serial != 0)
		sleep_ms((unsigned)m->serial);
	atomic_fetch_add(&handled, 1);
	return 0;
}

static void
wait_handled(unsigned n)
{
	for (int i = 0; i < 30000 && atomic_load(&handled) < n; i++)
		sleep_ms(1);
	cr_assert_eq(atomic_load(&handled), n);
}

static void
send_num(butler_hub *hub, unsigned server, unsigned sleep)
{
	struct num m = { .tag = sleep };

	ASSERT_OK(butler_send(hub, server, K_NUM, &m, sizeof m));
}

static void
send_owned(butler_hub *hub, unsigned server, unsigned sleep)
{
	struct owned m = fx_owned(sleep);

	ASSERT_OK(butler_send(hub, server, K_OWNED, &m, sizeof m));
}

static butler_hub *
new_hub(struct fx *f)
{
	struct fx_handlers h = fx_handlers_default();
	butler_hub *hub;

	h.num = num_sleeps;
	h.owned = owned_sleeps;
	atomic_store(&handled, 0);
	reset_lines();
	ASSERT_OK(butler_hub_new(&hub, &f->spec));
	butler_hub_set_log(hub, keep_log, BUTLER_LOG_DEBUG, NULL);
	for (unsigned i = 0; i < f->spec.n_servers; i++)
		ASSERT_OK(fx_register(hub, i, &h, NULL));
	return hub;
}

/* ---- the watchdog --------------------------------------------------------
 */

Test(watchdog, slow_handler_is_named_once_per_run, .timeout = 60)
{
	struct fx f;
	butler_hub *hub;

	fx_init(&f, 1, 64);
	f.servers[0].instances = 2;
	f.servers[0].max_handler_ms = 40;
	hub = new_hub(&f);
	ASSERT_OK(butler_hub_start(hub));
	/* Two slow runs among fast ones, on a pool of two. */
	for (int i = 0; i < 100; i++)
		send_num(hub, 0, 0);
	send_num(hub, 0, 300);
	send_num(hub, 0, 0);
	send_num(hub, 0, 300);
	send_num(hub, 0, 0);
	wait_handled(104);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	/* Exactly one line per slow run, each naming server, instance, kind
	 * and at least the limit. */
	cr_assert_eq(watchdog_lines("s0", 0, "num", 40)
	        + watchdog_lines("s0", 1, "num", 40),
	    2);
	cr_assert_eq(any_watchdog_lines(), 2);
	cr_assert_eq(count_lines(BUTLER_LOG_WARN, "(limit 40 ms)", NULL), 2);
	butler_hub_free(hub);
}

Test(watchdog, fast_handlers_are_never_reported, .timeout = 60)
{
	struct fx f;
	butler_hub *hub;

	fx_init(&f, 1, 1024);
	/* Not so short that a handler the scheduler preempts would count. */
	f.servers[0].max_handler_ms = 200;
	hub = new_hub(&f);
	ASSERT_OK(butler_hub_start(hub));
	cr_assert_eq(monitor_threads(), 1);
	for (unsigned i = 0; i < 20000; i++) {
		struct num m = { .seq = i };

		while (
		    butler_send(hub, 0, K_NUM, &m, sizeof m) == BUTLER_EFULL)
			sched_yield();
	}
	wait_handled(20000);
	sleep_ms(100); /* several samples of an idle server */
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	cr_assert_eq(any_watchdog_lines(), 0);
	butler_hub_free(hub);
}

Test(watchdog, a_kind_limit_overrides_the_server_limit, .timeout = 60)
{
	butler_kind_desc k0[4] = { { 0 } }, k1[4] = { { 0 } };
	struct fx f;
	butler_hub *hub;

	fx_init(&f, 2, 64);
	/* s0: generous, but num is strict. s1: strict, but owned is
	 * generous. */
	f.servers[0].max_handler_ms = 5000;
	k0[K_NUM - 1].max_handler_ms = 30;
	f.servers[0].kinds = k0;
	f.servers[1].max_handler_ms = 30;
	k1[K_OWNED - 1].max_handler_ms = 5000;
	f.servers[1].kinds = k1;
	hub = new_hub(&f);
	ASSERT_OK(butler_hub_start(hub));
	send_num(hub, 0, 250);
	send_owned(hub, 0, 250);
	send_num(hub, 1, 250);
	send_owned(hub, 1, 250);
	wait_handled(4);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	cr_assert_eq(watchdog_lines("s0", 0, "num", 30), 1);
	cr_assert_eq(watchdog_lines("s0", 0, "owned", 0), 0);
	cr_assert_eq(watchdog_lines("s1", 0, "num", 30), 1);
	cr_assert_eq(watchdog_lines("s1", 0, "owned", 0), 0);
	cr_assert_eq(count_lines(BUTLER_LOG_WARN, "(limit 30 ms)", NULL), 2);
	cr_assert_eq(any_watchdog_lines(), 2);
	butler_hub_free(hub);
}

Test(watchdog, an_external_loop_stalled_by_its_drain_is_named, .timeout = 60)
{
	struct fx f;
	butler_hub *hub;
	unsigned n = 0;

	fx_init(&f, 2, 64);
	f.servers[0].loop = BUTLER_LOOP_EXTERNAL;
	f.servers[0].max_handler_ms = 40;
	hub = new_hub(&f);
	ASSERT_OK(butler_hub_start(hub));
	send_num(hub, 0, 0);
	send_num(hub, 0, 300);
	send_num(hub, 0, 0);
	/* The handler runs here, on the loop's thread, in the drain. */
	while (n < 3) {
		unsigned got;

		ASSERT_OK(butler_server_drain(hub, 0, 0, &got));
		n += got;
	}
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	cr_assert_eq(watchdog_lines("s0", 0, "num", 40), 1);
	cr_assert_eq(count_lines(BUTLER_LOG_WARN,
	                 "stalling the loop that drains it", NULL),
	    1);
	cr_assert_eq(any_watchdog_lines(), 1);
	butler_hub_free(hub);
}

/* The tick's handler: the first run is slow. */
static atomic_uint ticks;

static int
tick_slow_once(butler_server *self, void *user, struct num *m)
{
	(void)self;
	(void)user;
	(void)m;
	if (atomic_fetch_add(&ticks, 1) == 0)
		sleep_ms(250);
	return 0;
}

Test(watchdog, a_slow_tick_is_named, .timeout = 60)
{
	struct fx_handlers h = fx_handlers_default();
	struct fx f;
	butler_hub *hub;

	fx_init(&f, 1, 64);
	f.servers[0].tick_kind = K_NUM;
	f.servers[0].tick_ms = 10;
	f.servers[0].max_handler_ms = 40;
	h.num = tick_slow_once;
	atomic_store(&ticks, 0);
	reset_lines();
	ASSERT_OK(butler_hub_new(&hub, &f.spec));
	butler_hub_set_log(hub, keep_log, BUTLER_LOG_DEBUG, NULL);
	ASSERT_OK(fx_register(hub, 0, &h, NULL));
	ASSERT_OK(butler_hub_start(hub));
	for (int i = 0; i < 30000 && atomic_load(&ticks) < 5; i++)
		sleep_ms(1);
	cr_assert_geq(atomic_load(&ticks), 5);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	cr_assert_eq(watchdog_lines("s0", 0, "num", 40), 1);
	cr_assert_eq(any_watchdog_lines(), 1);
	butler_hub_free(hub);
}

/* ---- the metrics log ------------------------------------------------------
 */

/* Waits up to 20 s for a line containing every string given. */
static bool
wait_line(butler_log_level level, const char *a, const char *b)
{
	for (int i = 0; i < 20000; i++) {
		if (count_lines(level, a, b, NULL) > 0)
			return true;
		sleep_ms(1);
	}
	return false;
}

Test(watchdog, the_metrics_log_prints_kinds_with_traffic, .timeout = 60)
{
	struct fx f;
	butler_hub *hub;

	fx_init(&f, 2, 256);
	hub = new_hub(&f);
	ASSERT_OK(butler_hub_enable_metrics(hub, 0));
	ASSERT_OK(butler_hub_set_metrics_log(hub, 30));
	ASSERT_OK(butler_hub_start(hub));
	cr_assert_eq(monitor_threads(), 1);
	for (int i = 0; i < 100; i++) {
		send_num(hub, 0, 0);
		send_num(hub, 1, 0);
	}
	wait_handled(200);
	cr_assert(wait_line(BUTLER_LOG_INFO,
	    "metrics: server 's0' kind 'num': sent 100 handled 100 failed 0",
	    "queued 0; queue p50 "));
	cr_assert_eq(
	    count_lines(BUTLER_LOG_INFO, "handler p50 ", " us p99 ", NULL),
	    count_lines(BUTLER_LOG_INFO, "metrics: ", NULL));
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	/* A kind without traffic, a server without metrics: no line. */
	cr_assert_eq(count_lines(BUTLER_LOG_INFO, "kind 'owned'", NULL), 0);
	cr_assert_eq(count_lines(BUTLER_LOG_INFO, "server 's1'", NULL), 0);
	/* Nothing moved after the last line: it is printed once. */
	cr_assert_eq(
	    count_lines(BUTLER_LOG_INFO, "sent 100 handled 100", NULL), 1);
	butler_hub_free(hub);
}

Test(watchdog, the_metrics_log_checks_its_arguments, .timeout = 30)
{
	struct fx f;
	butler_hub *hub;

	fx_init(&f, 1, 64);
	hub = new_hub(&f);
	ASSERT_ERR(butler_hub_set_metrics_log(NULL, 10), BUTLER_EINVAL);
	ASSERT_ERR(butler_hub_set_metrics_log(hub, 86400001u), BUTLER_EINVAL);
	ASSERT_OK(butler_hub_set_metrics_log(hub, 86400000u));
	ASSERT_OK(butler_hub_set_metrics_log(hub, 0));
	ASSERT_OK(butler_hub_start(hub));
	/* Turned off again: no thread for it. */
	cr_assert_eq(settles(monitor_threads, 0), 0);
	ASSERT_ERR(butler_hub_set_metrics_log(hub, 10), BUTLER_ESTATE);
	butler_hub_free(hub);
}

Test(watchdog, the_environment_turns_the_metrics_log_on, .timeout = 60)
{
	struct fx f;
	butler_hub *hub;

	fx_init(&f, 1, 64);
	cr_assert_eq(setenv("BUTLER_METRICS_LOG_MS", "20", 1), 0);
	hub = new_hub(&f);
	cr_assert_eq(unsetenv("BUTLER_METRICS_LOG_MS"), 0);
	ASSERT_OK(butler_hub_start(hub));
	for (int i = 0; i < 10; i++)
		send_num(hub, 0, 0);
	wait_handled(10);
	/* Metrics are on for every server, and their log. */
	cr_assert(wait_line(BUTLER_LOG_INFO,
	    "metrics: server 's0' kind 'num': sent 10 handled 10", NULL));
	butler_hub_free(hub);

	/* Not a number of milliseconds: ignored. */
	cr_assert_eq(setenv("BUTLER_METRICS_LOG_MS", "20ms", 1), 0);
	hub = new_hub(&f);
	cr_assert_eq(unsetenv("BUTLER_METRICS_LOG_MS"), 0);
	ASSERT_OK(butler_hub_start(hub));
	cr_assert_eq(settles(monitor_threads, 0), 0);
	butler_hub_free(hub);
}

/* ---- the thread -----------------------------------------------------------
 */

Test(watchdog, no_monitor_thread_when_nothing_asks_for_one, .timeout = 60)
{
	struct fx f;
	butler_hub *hub;
	int before = task_threads();

	fx_init(&f, 2, 64);
	hub = new_hub(&f);
	ASSERT_OK(butler_hub_enable_metrics(hub, BUTLER_NO_SERVER));
	ASSERT_OK(butler_hub_start(hub));
	/* Only the two servers' threads. */
	cr_assert_eq(task_threads(), before + 2);
	cr_assert_eq(settles(monitor_threads, 0), 0);
	butler_hub_free(hub);
	cr_assert_eq(settles(task_threads, before), before);

	/* With a limit: one more, for the whole hub. */
	f.servers[1].max_handler_ms = 1000;
	hub = new_hub(&f);
	ASSERT_OK(butler_hub_start(hub));
	cr_assert_eq(task_threads(), before + 3);
	cr_assert_eq(monitor_threads(), 1);
	butler_hub_free(hub);
	cr_assert_eq(settles(task_threads, before), before);
}

Test(watchdog, a_hundred_cycles_leave_no_thread_or_fd, .timeout = 120)
{
	struct fx f;
	int threads = task_threads();
	int fds = fx_count_dir("/proc/self/fd");

	fx_init(&f, 2, 64);
	f.servers[0].max_handler_ms = 20;
	f.servers[1].loop = BUTLER_LOOP_EXTERNAL;
	for (int cycle = 0; cycle < 100; cycle++) {
		butler_hub *hub = new_hub(&f);

		ASSERT_OK(butler_hub_enable_metrics(hub, 0));
		ASSERT_OK(butler_hub_set_metrics_log(hub, 5));
		ASSERT_OK(butler_hub_start(hub));
		cr_assert_eq(monitor_threads(), 1);
		send_num(hub, 0, cycle % 10 == 0 ? 40 : 0);
		send_num(hub, 1, 0);
		ASSERT_OK(butler_hub_stop(
		    hub, cycle % 2 ? BUTLER_STOP_DRAIN : BUTLER_STOP_DISCARD));
		cr_assert_eq(settles(monitor_threads, 0), 0);
		butler_hub_free(hub);
	}
	cr_assert_eq(settles(task_threads, threads), threads);
	cr_assert_eq(fx_count_dir("/proc/self/fd"), fds);
}

/* A hub that fails to start (an on_start fails) joins its monitor too. */
static int
start_fails(butler_server *self, void *user)
{
	(void)self;
	(void)user;
	return 42;
}

Test(watchdog, a_failed_start_joins_the_monitor, .timeout = 60)
{
	struct fx_handlers h = fx_handlers_default();
	struct fx f;
	butler_hub *hub;
	int threads = task_threads();

	fx_init(&f, 2, 64);
	f.servers[0].max_handler_ms = 20;
	ASSERT_OK(butler_hub_new(&hub, &f.spec));
	butler_hub_set_log(hub, fx_quiet, BUTLER_LOG_DEBUG, NULL);
	ASSERT_OK(fx_register(hub, 0, &h, NULL));
	h.on_start = start_fails;
	ASSERT_OK(fx_register(hub, 1, &h, NULL));
	ASSERT_ERR(butler_hub_start(hub), 42);
	cr_assert_eq(settles(monitor_threads, 0), 0);
	cr_assert_eq(settles(task_threads, threads), threads);
	butler_hub_free(hub);
}

/* The default log (stderr, warnings only) prints the dump all the same. */
Test(watchdog, the_default_log_prints_the_metrics_log, .timeout = 60)
{
	struct fx_handlers h = fx_handlers_default();
	struct fx f;
	butler_hub *hub;
	FILE *tmp = tmpfile();
	char buf[4096];
	size_t n;
	int saved = dup(2);
	bool seen = false;

	cr_assert_not_null(tmp);
	cr_assert_geq(saved, 0);
	fx_init(&f, 1, 64);
	h.num = num_sleeps;
	atomic_store(&handled, 0);
	ASSERT_OK(butler_hub_new(&hub, &f.spec));
	ASSERT_OK(fx_register(hub, 0, &h, NULL));
	ASSERT_OK(butler_hub_enable_metrics(hub, 0));
	ASSERT_OK(butler_hub_set_metrics_log(hub, 10));
	fflush(stderr);
	cr_assert_geq(dup2(fileno(tmp), 2), 0);
	ASSERT_OK(butler_hub_start(hub));
	send_num(hub, 0, 0);
	wait_handled(1);
	for (int i = 0; i < 2000 && !seen; i++) {
		sleep_ms(5);
		fflush(stderr);
		rewind(tmp);
		n = fread(buf, 1, sizeof buf - 1, tmp);
		buf[n] = '\0';
		seen = strstr(buf,
		           "butler: info: metrics: server 's0' kind "
		           "'num': sent 1 handled 1")
		    != NULL;
	}
	butler_hub_free(hub);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	fclose(tmp);
	cr_assert(seen);
}
