/* SPDX-License-Identifier: MIT */
/*
 * examples/bridge — one spec (bridge_demo.json), one binary, and where the
 * hasher runs is configuration (deploy.json):
 *
 *   bridge_demo                           all in this process
 *   bridge_demo --config deploy.json --node worker     the hasher, serving
 *   bridge_demo --config deploy.json --node client [N] asking it N jobs
 *
 * The code is the same in every case: the client calls demo_call_hasher_
 * job() and gets progress and a digest back on its own thread; whether the
 * hasher is a thread of this process or of another is the bridge's
 * business. The client checks every digest itself, sends notes (messages,
 * no answer) and asks the hasher how many it got and which process it is.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <butler/bridge.h>

#include "bridge_demo.butler.h"

static atomic_uint_fast64_t notes_seen, jobs_done;

#define FNV_BASIS 0xcbf29ce484222325u

/* FNV-1a 64 of the data, `rounds` more times over (the last digest h
 * first, then the data). */
static uint64_t
digest_more(uint64_t h, const uint8_t *data, size_t len, uint32_t rounds)
{
	for (uint32_t r = 0; r < rounds; r++) {
		for (int i = 0; i < 8; i++)
			h = (h ^ ((h >> (8 * i)) & 0xff)) * 0x100000001b3u;
		for (size_t i = 0; i < len; i++)
			h = (h ^ data[i]) * 0x100000001b3u;
	}
	return h;
}

static uint64_t
digest(const uint8_t *data, size_t len, uint32_t rounds)
{
	return digest_more(FNV_BASIS, data, len, rounds);
}

/* ---- the hasher (wherever it runs) ---------------------------------- */

static int
on_job(butler_server *self, void *user, struct demo_job *job)
{
	struct demo_digest out = { .name = job->name, .bytes = job->data.len };
	uint64_t h = FNV_BASIS;
	int rv;

	(void)user;
	/* In steps, with progress ("latest": only the newest one waits) and
	 * an eye on the caller, who may have given up. */
	for (uint32_t done = 0; done < job->rounds;) {
		uint32_t step
		    = job->rounds - done < 1000 ? job->rounds - done : 1000;

		if (butler_cancelled(self))
			return BUTLER_ECANCELED;
		h = digest_more(h, job->data.data, job->data.len, step);
		done += step;
		(void)demo_progress_job(
		    self, &(struct demo_done_rounds) { .rounds = done });
	}
	out.sum = h;
	job->name = NULL; /* moved into the reply */
	atomic_fetch_add(&jobs_done, 1);
	rv = demo_reply_job(self, &out);
	if (rv != BUTLER_OK)
		free(out.name);
	return rv;
}

static int
on_note(butler_server *self, void *user, struct demo_note *note)
{
	(void)self;
	(void)user;
	(void)note;
	atomic_fetch_add(&notes_seen, 1);
	return BUTLER_OK;
}

static int
on_tally(butler_server *self, void *user, struct demo_tally *t)
{
	(void)user;
	(void)t;
	return demo_reply_tally(self,
	    &(struct demo_tallied) { .notes = atomic_load(&notes_seen),
	        .jobs = atomic_load(&jobs_done),
	        .pid = (int64_t)getpid() });
}

/* ---- the client --------------------------------------------------------- */

struct asked {
	unsigned n, answered, right, progress;
	int failed;
	uint64_t want[64];
	struct demo_tallied tally;
	bool tallied;
};

static void
on_progress(butler_server *self, struct demo_done_rounds *p, void *user)
{
	struct asked *a = user;

	(void)self;
	(void)p;
	a->progress++;
}

static void
on_digest(butler_server *self, int status, struct demo_digest *d, void *user)
{
	struct asked *a = user;
	unsigned i;

	(void)self;
	a->answered++;
	if (status != BUTLER_OK) {
		fprintf(stderr, "client: job failed: %s\n",
		    butler_strerror(status));
		a->failed = status;
		return;
	}
	if (sscanf(d->name, "job-%u", &i) == 1 && i < a->n
	    && d->sum == a->want[i])
		a->right++;
}

static void
on_tallied(butler_server *self, int status, struct demo_tallied *t, void *user)
{
	struct asked *a = user;

	(void)self;
	if (status == BUTLER_OK)
		a->tally = *t;
	else
		a->failed = status;
	a->tallied = true;
}

/* Drains the client's inbox (answers come there) until done(a). */
static int
wait_for(butler_hub *hub, struct asked *a, bool (*done)(struct asked *))
{
	int fd = butler_server_fd(hub, DEMO_SERVER_CLIENT);

	while (!done(a)) {
		int timeout
		    = butler_server_next_timeout(hub, DEMO_SERVER_CLIENT);
		int rv;

		if (poll(&(struct pollfd) { .fd = fd, .events = POLLIN }, 1,
		        timeout)
		        < 0
		    && errno != EINTR)
			return BUTLER_ESYS;
		if ((rv = butler_server_drain(
		         hub, DEMO_SERVER_CLIENT, 0, NULL)))
			return rv;
	}
	return BUTLER_OK;
}

static bool
all_answered(struct asked *a)
{
	return a->answered == a->n;
}

static bool
tallied(struct asked *a)
{
	return a->tallied;
}

static int
client(butler_hub *hub, unsigned n)
{
	static struct asked a;
	uint8_t data[4096];
	unsigned notes = 2 * n;
	int rv;

	a.n = n;
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)(i * 7 + 1);
	for (unsigned i = 0; i < n; i++) {
		struct demo_job job = { .rounds = 5000 + 1000 * i };

		job.name = malloc(32);
		job.data.data = malloc(sizeof data);
		if (job.name == NULL || job.data.data == NULL)
			return BUTLER_ENOMEM;
		snprintf(job.name, 32, "job-%u", i);
		memcpy(job.data.data, data, sizeof data);
		job.data.len = sizeof data;
		a.want[i] = digest(data, sizeof data, job.rounds);
		rv = demo_call_hasher_job(
		    hub, &job, 30000, on_digest, on_progress, &a, NULL);
		if (rv != BUTLER_OK) {
			demo_job_destroy(&job);
			return rv;
		}
	}
	for (unsigned i = 0; i < notes; i++) {
		struct demo_note note = { .text = strdup("hello across") };

		while (
		    (rv = demo_send_hasher_note(hub, &note)) == BUTLER_EFULL)
			usleep(1000);
		if (rv != BUTLER_OK) {
			demo_note_destroy(&note);
			return rv;
		}
	}
	if ((rv = wait_for(hub, &a, all_answered)) != BUTLER_OK)
		return rv;
	/* Asked after the jobs: from this thread to one hasher instance
	 * they went in order, and the notes came first to the other one,
	 * so ask until every note is counted. */
	for (unsigned tries = 0; tries < 100; tries++) {
		a.tallied = false;
		rv = demo_call_hasher_tally(hub, &(struct demo_tally) { 0 },
		    5000, on_tallied, &a, NULL);
		if (rv == BUTLER_OK)
			rv = wait_for(hub, &a, tallied);
		if (rv != BUTLER_OK || a.failed != 0)
			break;
		if (a.tally.notes >= notes)
			break;
		usleep(10000);
	}
	if (rv == BUTLER_OK && a.failed != 0)
		rv = a.failed;
	printf("client: %u jobs, %u digests right, %s, hashed by pid %" PRId64
	       " (%s), %" PRIu64 " notes counted there\n",
	    n, a.right, a.progress > 0 ? "progress seen" : "no progress",
	    a.tally.pid,
	    a.tally.pid == (int64_t)getpid() ? "this process"
	                                     : "another process",
	    a.tally.notes);
	return rv != BUTLER_OK ? rv
	    : a.right == n     ? BUTLER_OK
	                       : BUTLER_EHANDLER;
}

/* ---- main ------------------------------------------------------------- */

int
main(int argc, char **argv)
{
	const char *config = NULL, *node = NULL;
	unsigned jobs = 8;
	butler_bridge *bridge = NULL;
	butler_hub *hub = NULL;
	sigset_t signals;
	int rv, i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			config = argv[++i];
		else if (strcmp(argv[i], "--node") == 0 && i + 1 < argc)
			node = argv[++i];
		else if (argv[i][0] != '-' && atoi(argv[i]) > 0)
			jobs = (unsigned)atoi(argv[i]) > 64
			    ? 64
			    : (unsigned)atoi(argv[i]);
		else {
			fprintf(stderr,
			    "usage: %s [--config deploy.json --node NAME] "
			    "[jobs]\n",
			    argv[0]);
			return 2;
		}
	}
	/* SIGTERM and SIGINT end a worker: blocked here, before any thread
	 * exists, and taken with sigwait(). */
	sigemptyset(&signals);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);

	if ((rv = butler_hub_new(&hub, &demo_spec)) != BUTLER_OK)
		goto out;
	/* Every server's handlers, as always; the bridge replaces those of
	 * the servers that live elsewhere with proxies. */
	rv = demo_hasher_register(hub,
	    &(struct demo_hasher_handlers) {
	        .job = on_job, .note = on_note, .tally = on_tally },
	    NULL);
	if (rv == BUTLER_OK)
		rv = demo_client_register(
		    hub, &(struct demo_client_handlers) { 0 }, NULL);
	if (rv == BUTLER_OK)
		rv = butler_bridge_new_file(&bridge, hub, &demo_spec, config,
		    node, NULL, BUTLER_LOG_WARN, NULL);
	if (rv == BUTLER_OK)
		rv = butler_hub_start(hub);
	if (rv != BUTLER_OK)
		goto out;

	if (node != NULL && strcmp(node, "worker") == 0) {
		printf("worker: ready (pid %d)\n", (int)getpid());
		fflush(stdout);
		for (int sig = 0; sig != SIGTERM && sig != SIGINT;)
			if (sigwait(&signals, &sig) != 0)
				break;
		printf("worker: %" PRIu64 " jobs, %" PRIu64 " notes\n",
		    atomic_load(&jobs_done), atomic_load(&notes_seen));
	} else {
		if (config != NULL
		    && (rv = butler_bridge_wait(bridge, 10000)) != BUTLER_OK) {
			fprintf(stderr, "client: no link to the worker (%s)\n",
			    butler_strerror(rv));
			goto out;
		}
		rv = client(hub, jobs);
	}
out:
	if (rv != BUTLER_OK)
		fprintf(stderr, "bridge_demo: %s\n", butler_strerror(rv));
	if (hub != NULL) {
		butler_hub_stop(hub, BUTLER_STOP_DRAIN);
		butler_hub_free(hub);
	}
	butler_bridge_free(bridge);
	return rv == BUTLER_OK ? 0 : 1;
}
