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

#endif /* BUTLER_INTERNAL_HUB_H */
