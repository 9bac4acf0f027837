/* SPDX-License-Identifier: MIT */
/*
 * monitor.c — what a hub tells about itself while it runs: metrics per
 * message kind (turned on per server), their snapshot, and the hub's
 * monitor thread (the watchdog of slow handlers, the periodic dump).
 */
#include "hub_internal.h"

#include <stdlib.h>
#include <string.h>

int
butler_hub_enable_metrics(butler_hub *hub, unsigned server)
{
	int rv = BUTLER_OK;

	if (hub == NULL
	    || (server != BUTLER_NO_SERVER && server >= hub->n_servers))
		return BUTLER_EINVAL;
	pthread_mutex_lock(&hub->stop_lock);
	if (atomic_load(&hub->state) != BUTLER__HUB_NEW) {
		rv = BUTLER_ESTATE;
		goto out;
	}
	for (unsigned s = 0; s < hub->n_servers && rv == BUTLER_OK; s++) {
		struct butler__route *r = &hub->route[s];

		if (server != BUTLER_NO_SERVER && s != server)
			continue;
		for (unsigned i = 0; i < r->n && rv == BUTLER_OK; i++)
			rv = butler__channel_set_metrics(
			    &hub->inst[r->first + i]->ch);
		if (rv == BUTLER_OK)
			butler__route_set_fast(r, true);
	}
out:
	pthread_mutex_unlock(&hub->stop_lock);
	return rv;
}

int
butler_server_kind_stats(
    butler_hub *hub, unsigned server, unsigned kind, butler_kind_stats *out)
{
	const struct butler__route *r;
	struct butler__hist_sum *queue, *handler;
	uint64_t ended;

	if (hub == NULL || out == NULL || server >= hub->n_servers || kind == 0
	    || kind > hub->route[server].n_kinds)
		return BUTLER_EINVAL;
	r = &hub->route[server];
	memset(out, 0, sizeof *out);
	out->message = r->kind_msg[kind]->name;
	out->metrics = r->metrics;
	queue = calloc(2, sizeof *queue);
	handler = queue != NULL ? queue + 1 : NULL;
	for (unsigned i = 0; i < r->n; i++)
		butler__channel_kind_stats(
		    &hub->inst[r->first + i]->ch, kind, out, queue, handler);
	if (queue != NULL) {
		out->timed = queue->total;
		out->queue_ns_p50 = butler__hist_quantile(queue, 0.50);
		out->queue_ns_p99 = butler__hist_quantile(queue, 0.99);
		out->queue_ns_max = queue->max;
		out->handler_ns_p50 = butler__hist_quantile(handler, 0.50);
		out->handler_ns_p99 = butler__hist_quantile(handler, 0.99);
		out->handler_ns_max = handler->max;
		free(queue);
	}
	ended = out->handled + out->failed + out->dropped + out->replaced
	    + out->purged + out->abandoned;
	if (out->metrics)
		out->queued = out->sent > ended ? out->sent - ended : 0;
	return BUTLER_OK;
}
