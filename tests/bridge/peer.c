/* SPDX-License-Identifier: MIT */
/*
 * tests/bridge/peer.c — bridge_peer, the other process of the bridge tests:
 *
 *   bridge_peer worker URL SECRET_FILE [remote]
 *       exposes `worker` and `sink` of bt.json on URL; prints
 *       "ready <bound URL>" once listening; stops (DRAIN) on SIGTERM or
 *       SIGINT and exits 0.
 *   bridge_peer client URL SECRET_FILE N [remote]
 *       uses them at URL: waits for the link, sends N notes and makes N
 *       calls (deferred answers), checks every answer, waits until the
 *       sink has them all (a last call), prints
 *       "client: N notes, N calls answered" and exits 0; else 1.
 *
 * "remote" lets the bridge use addresses that are not loopback (the
 * network-namespace test). Any sanitizer report goes to stderr, which the
 * tests check.
 */
#include <signal.h>

#include "pair.h"

static void
quiet_log(butler_log_level level, const char *msg, void *user)
{
	(void)user;
	if (level <= BUTLER_LOG_WARN)
		fprintf(
		    stderr, "bridge_peer %s: %s\n", (const char *)user, msg);
}

/* SIGTERM and SIGINT, blocked in every thread, taken by sigwait(). */
static sigset_t signals;

static int
worker(const char *url, butler_bridge_config cfg)
{
	static const char *const both[] = { "worker", "sink" };
	struct side s = { 0 };
	int rv = side_expose(&s, url, both, 2, cfg);

	if (rv != BUTLER_OK) {
		fprintf(
		    stderr, "bridge_peer worker: %s\n", butler_strerror(rv));
		return 1;
	}
	printf("ready %s\n", butler_bridge_url(s.br, 0));
	fflush(stdout);
	for (int sig = 0; sig != SIGTERM && sig != SIGINT;)
		if (sigwait(&signals, &sig) != 0)
			break;
	side_down(&s);
	return 0;
}

static int
client(const char *url, butler_bridge_config cfg, unsigned n)
{
	struct side s = { 0 };
	unsigned calls = 0, notes = 0;
	int rv = side_use(&s, url, cfg);

	if (rv != BUTLER_OK) {
		fprintf(
		    stderr, "bridge_peer client: %s\n", butler_strerror(rv));
		side_down(&s);
		return 1;
	}
	rv = butler_bridge_wait(s.br, 10000);
	if (rv != BUTLER_OK) {
		fprintf(stderr, "bridge_peer client: no link: %s\n",
		    butler_strerror(rv));
		side_down(&s);
		return 1;
	}
	for (unsigned i = 0; i < n; i++) {
		struct bt_sum sum = { 0 };

		while ((rv = bt_send_sink_note(
		            s.hub, &(struct bt_note) { .seq = i, .from = 0 }))
		    == BUTLER_EFULL)
			usleep(200);
		if (rv == BUTLER_OK)
			notes++;
		rv = bt_call_worker_add_wait(s.hub,
		    &(struct bt_add) { .a = i, .b = 1000, .delay_ms = i % 2 },
		    5000, &sum);
		if (rv == BUTLER_OK && sum.s == (int64_t)i + 1000)
			calls++;
		else
			fprintf(stderr, "call %u: %s (%lld)\n", i,
			    butler_strerror(rv), (long long)sum.s);
	}
	printf("client: %u notes, %u calls answered\n", notes, calls);
	side_down(&s);
	return notes == n && calls == n ? 0 : 1;
}

int
main(int argc, char **argv)
{
	butler_bridge_config cfg = { .log = quiet_log,
		.log_level = BUTLER_LOG_WARN,
		.reconnect_min_ms = 20,
		.reconnect_max_ms = 200 };
	bool is_client = argc >= 5 && strcmp(argv[1], "client") == 0;
	int remote_arg = is_client ? 5 : 4;

	if (argc < 4
	    || (strcmp(argv[1], "worker") != 0
	        && strcmp(argv[1], "client") != 0)) {
		fprintf(stderr,
		    "usage: %s worker URL SECRET_FILE [remote]\n"
		    "       %s client URL SECRET_FILE N [remote]\n",
		    argv[0], argv[0]);
		return 2;
	}
	cfg.secret_file = argv[3];
	if (argc > remote_arg && strcmp(argv[remote_arg], "remote") == 0)
		cfg.flags = BUTLER_BRIDGE_ALLOW_REMOTE_HOSTS;
	sigemptyset(&signals);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	if (is_client) {
		cfg.log_user = "client";
		return client(
		    argv[2], cfg, (unsigned)strtoul(argv[4], NULL, 10));
	}
	cfg.log_user = "worker";
	return worker(argv[2], cfg);
}
