/* SPDX-License-Identifier: MIT */
/*
 * tests/bridge/test_restart.c — the remote side is a real process
 * (bridge_peer), killed with SIGKILL in the middle of a stream of calls
 * and messages, and started again: requests in flight end with
 * BUTLER_ECLOSED (or their timeout), requests while it is down fail at
 * once, nothing is left pending, traffic resumes on its own once the link
 * is back (reconnect with backoff), and the restarted worker stops clean
 * (its sanitizer reports would be in its stderr).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "pair.h"

extern char **environ;

static char dir[256], secret[300], errlog[300];
static struct side A = { .name = "A" };

struct peer {
	pid_t pid;
	FILE *out;
	char url[256];
};

static void
setup(void)
{
	FILE *f;

	snprintf(
	    dir, sizeof dir, "/tmp/butler-bridge-restart-%d", (int)getpid());
	mkdir(dir, 0700);
	snprintf(secret, sizeof secret, "%s/secret", dir);
	snprintf(errlog, sizeof errlog, "%s/peer.err", dir);
	f = fopen(secret, "w");
	cr_assert_not_null(f);
	fprintf(f, "%s\n", SECRET);
	fclose(f);
	chmod(secret, 0600);
}

static void
teardown(void)
{
	char cmd[512];

	side_down(&A);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	(void)system(cmd);
}

/* Starts bridge_peer worker on url and waits for its "ready" line. */
static void
peer_start(struct peer *p, const char *url)
{
	char *argv[]
	    = { (char *)BRIDGE_PEER, "worker", (char *)url, secret, NULL };
	posix_spawn_file_actions_t fa;
	int fds[2];
	char line[512];

	cr_assert_eq(pipe(fds), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	posix_spawn_file_actions_addopen(
	    &fa, 2, errlog, O_WRONLY | O_CREAT | O_APPEND, 0600);
	cr_assert_eq(
	    posix_spawn(&p->pid, BRIDGE_PEER, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	p->out = fdopen(fds[0], "r");
	cr_assert_not_null(
	    fgets(line, sizeof line, p->out), "peer did not start");
	cr_assert(
	    sscanf(line, "ready %255s", p->url) == 1, "peer said: %s", line);
}

static int
peer_stop(struct peer *p, int sig)
{
	int status = 0;

	kill(p->pid, sig);
	waitpid(p->pid, &status, 0);
	fclose(p->out);
	return status;
}

/* A stream of calls from two threads; what each call ended with. */
struct stream {
	pthread_t t;
	atomic_bool run;
	atomic_uint ok, closed, timedout, other;
	atomic_uint in_flight;
};

static void *
stream_main(void *arg)
{
	struct stream *s = arg;

	for (int64_t i = 0; atomic_load(&s->run); i++) {
		struct bt_sum sum = { 0 };
		int rv;

		atomic_fetch_add(&s->in_flight, 1);
		rv = bt_call_worker_add_wait(A.hub,
		    &(struct bt_add) { .a = i, .b = 1, .delay_ms = 20 }, 1000,
		    &sum);
		atomic_fetch_sub(&s->in_flight, 1);
		if (rv == BUTLER_OK && sum.s == i + 1)
			atomic_fetch_add(&s->ok, 1);
		else if (rv == BUTLER_ECLOSED)
			atomic_fetch_add(&s->closed, 1);
		else if (rv == BUTLER_ETIMEDOUT)
			atomic_fetch_add(&s->timedout, 1);
		else
			atomic_fetch_add(&s->other, 1);
		(void)bt_send_sink_note(A.hub,
		    &(struct bt_note) { .seq = (uint64_t)i, .from = 2 });
		if (rv == BUTLER_ECLOSED)
			usleep(1000); /* down: no busy loop */
	}
	return NULL;
}

static bool
ok_at_least(struct stream *s, unsigned n, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		if (atomic_load(&s->ok) >= n)
			return true;
		usleep(10000);
	}
	return atomic_load(&s->ok) >= n;
}

static void
kill_and_restart(const char *listen)
{
	struct peer p = { 0 };
	struct stream s[2];
	unsigned ok_before, failed;
	butler_bridge_counters st;
	char url[256], err[4096] = "";
	FILE *f;
	int rv, status;

	peer_start(&p, listen);
	snprintf(url, sizeof url, "%s", p.url);
	rv = side_use(&A, url, config());
	cr_assert_eq(rv, BUTLER_OK);
	cr_assert_eq(butler_bridge_wait(A.br, 10000), BUTLER_OK);
	for (unsigned i = 0; i < 2; i++) {
		memset(&s[i], 0, sizeof s[i]);
		atomic_store(&s[i].run, true);
		cr_assert_eq(
		    pthread_create(&s[i].t, NULL, stream_main, &s[i]), 0);
	}
	cr_assert(ok_at_least(&s[0], 20, 10000), "no traffic");

	/* Killed with requests in flight (each is deferred 20 ms). */
	peer_stop(&p, SIGKILL);
	usleep(300000);
	ok_before = atomic_load(&s[0].ok) + atomic_load(&s[1].ok);
	failed = atomic_load(&s[0].closed) + atomic_load(&s[1].closed)
	    + atomic_load(&s[0].timedout) + atomic_load(&s[1].timedout);
	cr_expect((failed) > (0), "no request failed across the kill");
	cr_expect_eq(
	    butler_bridge_wait(A.br, 0), BUTLER_ETIMEDOUT, "link still up");

	/* Started again on the same address: the link comes back. */
	peer_start(&p, url);
	cr_assert_eq(butler_bridge_wait(A.br, 10000), BUTLER_OK);
	for (unsigned i = 0; i < 2; i++)
		cr_expect(
		    ok_at_least(&s[i], atomic_load(&s[i].ok) + 20, 10000),
		    "traffic did not resume");
	for (unsigned i = 0; i < 2; i++) {
		atomic_store(&s[i].run, false);
		pthread_join(s[i].t, NULL);
		cr_expect_eq(atomic_load(&s[i].other), 0,
		    "calls ended otherwise than OK, ECLOSED or ETIMEDOUT");
	}
	cr_expect(
	    (atomic_load(&s[0].ok) + atomic_load(&s[1].ok)) > (ok_before));
	cr_expect_eq(butler_hub_pending(A.hub, NULL, NULL), 0);
	butler_bridge_stats(A.br, &st);
	cr_expect_eq(st.connects, 2);
	cr_expect_eq(st.lost, 1);
	cr_expect_eq(st.links_up, 1);

	side_down(&A);
	status = peer_stop(&p, SIGTERM);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "restarted worker: status %d", status);
	f = fopen(errlog, "r");
	if (f != NULL) {
		size_t n = fread(err, 1, sizeof err - 1, f);

		err[n] = '\0';
		fclose(f);
	}
	cr_expect(strstr(err, "Sanitizer") == NULL
	        && strstr(err, "runtime error") == NULL,
	    "worker's stderr:\n%s", err);
}

Test(restart, kill_and_restart_tcp, .timeout = 120)
{
	setup();
	kill_and_restart("tcp://127.0.0.1:0");
	teardown();
}

Test(restart, kill_and_restart_ipc, .timeout = 120)
{
	setup();
	char url[300];

	snprintf(url, sizeof url, "ipc://%s/worker.sock", dir);
	kill_and_restart(url);
	teardown();
}
