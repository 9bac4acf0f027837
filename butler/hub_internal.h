/* SPDX-License-Identifier: MIT */
/*
 * butler/hub_internal.h — the hub: every server instance of a spec and of
 * the specs it imports, the handler tables, the lifecycle. The top of the
 * runtime: hub.c (lifecycle, statistics, listings) and api.c (the public
 * messaging functions) use every unit below through its header.
 */
#ifndef BUTLER_INTERNAL_HUB_H
#define BUTLER_INTERNAL_HUB_H

#include "server.h"

enum butler__hub_state {
	BUTLER__HUB_NEW = 0,
	BUTLER__HUB_STARTING,
	BUTLER__HUB_RUNNING,
	BUTLER__HUB_DRAINING, /* stopping: finishing accepted work */
	BUTLER__HUB_FINAL,    /* stopping: everything closed, finishing */
	BUTLER__HUB_STOPPED
};

/* What the watchdog knows of one instance (the monitor thread's only). */
struct butler__watch {
	uint64_t word;     /* its busy word at the last sample */
	uint64_t since_ns; /* when that run was first seen */
	bool reported;     /* that run has been reported */
};

/*
 * The hub's monitor thread (butler/monitor.c): the watchdog of slow
 * handlers and the periodic metrics dump. One thread per hub, started by
 * butler_hub_start() only if a limit or a dump period is set.
 */
struct butler__monitor {
	unsigned dump_ms;            /* butler_hub_set_metrics_log(), 0: off */
	unsigned period_ms;          /* watchdog sampling period, 0: off */
	struct butler__watch *watch; /* [instance] */
	unsigned *slot;              /* [server]: its kind 0 in limit_ms */
	unsigned *limit_ms;          /* [slot + kind]: in force, 0: none */
	uint64_t *seen;              /* [slot + kind]: outcomes at last dump */
	struct butler__logger log;   /* the dump's (see monitor.c) */
	pthread_t thread;
	pthread_mutex_t lock; /* guards stop */
	pthread_cond_t cond;  /* CLOCK_MONOTONIC */
	bool stop;
	bool running; /* thread, lock and cond exist */
};

struct butler_hub {
	const butler_spec *spec;   /* the root spec */
	const butler_spec **specs; /* every spec, root first */
	unsigned n_specs;
	unsigned *spec_base; /* [spec]: hub-wide index of its server 0 */

	struct butler__router router;
	struct butler__route *route;       /* [server] */
	struct butler__handlers *handlers; /* [server] */
	unsigned n_servers;
	struct butler_server **inst;    /* [instance] */
	struct butler__channel **inbox; /* [instance]: &inst[i]->ch */
	unsigned n_inst;

	struct butler__logger log;
	struct butler__stopgroup group;
	struct butler__reqhub reqhub;
	struct butler__timers timers;
	struct butler__serverenv env;
	bool group_ready, reqhub_ready, timers_ready, env_ready;

	struct butler__monitor mon;

	atomic_int state;          /* butler__hub_state */
	pthread_mutex_t stop_lock; /* one starter or stopper at a time */
};

/*
 * butler__hub_caller returns the server the calling thread speaks for: the
 * one whose handler it runs, or else the external server of hub that it
 * owns (a GUI callback outside any drain). NULL if neither.
 */
struct butler_server *butler__hub_caller(struct butler_hub *hub);

/* butler__hub_external returns external server `server`'s instance. */
struct butler_server *butler__hub_external(
    struct butler_hub *hub, unsigned server);

/*
 * butler__monitor_start starts hub's monitor thread if a watchdog limit
 * or a dump period is set (else does nothing). Returns BUTLER_OK,
 * BUTLER_ENOMEM or BUTLER_ESYS, with nothing left behind on failure.
 * Under stop_lock, before any server runs.
 */
int butler__monitor_start(struct butler_hub *hub);

/* butler__monitor_stop stops and joins it, and frees what it used; a
 * no-op if it is not running. Under stop_lock (or from free). */
void butler__monitor_stop(struct butler_hub *hub);

#endif /* BUTLER_INTERNAL_HUB_H */
