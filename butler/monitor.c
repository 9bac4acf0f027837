/* SPDX-License-Identifier: MIT */
/*
 * monitor.c — what a hub tells about itself while it runs: metrics per
 * message kind (turned on per server), their snapshot, and the hub's
 * monitor thread (the watchdog of slow handlers, the periodic dump).
 */
#include "hub_internal.h"

#include "alloc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* ---- the monitor thread ------------------------------------------------ */

/* The watchdog samples every instance at a quarter of the smallest limit,
 * within these bounds: a report comes at most about one period late. */
#define WATCH_MIN_MS 5u
#define WATCH_MAX_MS 250u
/* The longest dump period butler_hub_set_metrics_log() takes: a day. */
#define DUMP_MAX_MS 86400000u

int
butler_hub_set_metrics_log(butler_hub *hub, unsigned period_ms)
{
	int rv = BUTLER_OK;

	if (hub == NULL || period_ms > DUMP_MAX_MS)
		return BUTLER_EINVAL;
	pthread_mutex_lock(&hub->stop_lock);
	if (atomic_load(&hub->state) != BUTLER__HUB_NEW)
		rv = BUTLER_ESTATE;
	else
		hub->mon.dump_ms = period_ms;
	pthread_mutex_unlock(&hub->stop_lock);
	return rv;
}

/*
 * sample is one look of the watchdog at every instance. A busy word seen
 * on two samples in a row is one handler run (the word carries its
 * sequence number) that has lasted at least from the first sample that saw
 * it until now; that lower bound is what is compared with the limit and
 * reported, once per run. So a report says at least the limit, and the
 * run had begun up to one period before it was first seen.
 */
static void
sample(struct butler_hub *hub, uint64_t now)
{
	struct butler__monitor *mon = &hub->mon;

	for (unsigned i = 0; i < hub->n_inst; i++) {
		struct butler_server *srv = hub->inst[i];
		struct butler__watch *w = &mon->watch[i];
		uint64_t word
		    = atomic_load_explicit(&srv->busy, memory_order_relaxed);
		unsigned kind = (unsigned)(word & BUTLER__BUSY_KIND_MASK);
		unsigned limit;
		uint64_t ran_ms;

		if (word != w->word) {
			w->word = word;
			w->since_ns = now;
			w->reported = false;
			continue;
		}
		if (w->reported || kind == 0 || kind > srv->n_kinds)
			continue;
		limit = mon->limit_ms[mon->slot[srv->id] + kind];
		ran_ms = (now - w->since_ns) / 1000000u;
		if (limit == 0 || ran_ms < limit)
			continue;
		w->reported = true;
		butler__log(&hub->log, BUTLER_LOG_WARN,
		    "watchdog: server '%s' instance %u: handler for '%s' has "
		    "run for %llu ms (limit %u ms)%s",
		    srv->desc->name, srv->instance, srv->kind_msg[kind]->name,
		    (unsigned long long)ran_ms, limit,
		    srv->desc->loop == BUTLER_LOOP_EXTERNAL
		        ? ", stalling the loop that drains it"
		        : "");
	}
}

/* Writes nanoseconds as microseconds with one decimal into buf. */
static const char *
us(char *buf, size_t size, uint64_t ns)
{
	snprintf(buf, size, "%llu.%llu", (unsigned long long)(ns / 1000u),
	    (unsigned long long)(ns % 1000u / 100u));
	return buf;
}

/* dump writes one line per kind of a server with metrics whose counts
 * moved since the last dump. */
static void
dump(struct butler_hub *hub)
{
	struct butler__monitor *mon = &hub->mon;

	for (unsigned g = 0; g < hub->n_servers; g++) {
		const struct butler__route *r = &hub->route[g];

		if (!r->metrics)
			continue;
		for (unsigned k = 1; k <= r->n_kinds; k++) {
			butler_kind_stats ks;
			uint64_t moved;
			char q50[32], q99[32], h50[32], h99[32];

			if (butler_server_kind_stats(hub, g, k, &ks)
			    != BUTLER_OK)
				continue;
			moved = ks.sent + ks.rejected + ks.handled + ks.failed
			    + ks.dropped + ks.replaced + ks.purged
			    + ks.abandoned;
			if (moved == mon->seen[mon->slot[g] + k])
				continue;
			mon->seen[mon->slot[g] + k] = moved;
			butler__log(&mon->log, BUTLER_LOG_INFO,
			    "metrics: server '%s' kind '%s': sent %llu "
			    "handled "
			    "%llu failed %llu rejected %llu dropped %llu "
			    "replaced %llu purged %llu abandoned %llu queued "
			    "%llu; queue p50 %s us p99 %s us; handler p50 %s "
			    "us p99 %s us",
			    r->desc->name, ks.message,
			    (unsigned long long)ks.sent,
			    (unsigned long long)ks.handled,
			    (unsigned long long)ks.failed,
			    (unsigned long long)ks.rejected,
			    (unsigned long long)ks.dropped,
			    (unsigned long long)ks.replaced,
			    (unsigned long long)ks.purged,
			    (unsigned long long)ks.abandoned,
			    (unsigned long long)ks.queued,
			    us(q50, sizeof q50, ks.queue_ns_p50),
			    us(q99, sizeof q99, ks.queue_ns_p99),
			    us(h50, sizeof h50, ks.handler_ns_p50),
			    us(h99, sizeof h99, ks.handler_ns_p99));
		}
	}
}

static void *
monitor_main(void *arg)
{
	struct butler_hub *hub = arg;
	struct butler__monitor *mon = &hub->mon;
	uint64_t watch_ns = (uint64_t)mon->period_ms * 1000000u;
	uint64_t dump_ns = (uint64_t)mon->dump_ms * 1000000u;
	uint64_t now = butler__now_ns();
	uint64_t next_watch = watch_ns ? now + watch_ns : UINT64_MAX;
	uint64_t next_dump = dump_ns ? now + dump_ns : UINT64_MAX;

	for (;;) {
		uint64_t wake
		    = next_watch < next_dump ? next_watch : next_dump;
		struct timespec ts = butler__timespec_at(wake);
		bool stop;

		pthread_mutex_lock(&mon->lock);
		while (!mon->stop && butler__now_ns() < wake)
			(void)pthread_cond_timedwait(
			    &mon->cond, &mon->lock, &ts);
		stop = mon->stop;
		pthread_mutex_unlock(&mon->lock);
		if (stop)
			break;
		now = butler__now_ns();
		if (now >= next_watch) {
			sample(hub, now);
			next_watch += watch_ns;
			if (next_watch <= now)
				next_watch = now + watch_ns;
		}
		if (now >= next_dump) {
			dump(hub);
			next_dump += dump_ns;
			if (next_dump <= now)
				next_dump = now + dump_ns;
		}
	}
	return NULL;
}

/* Fills the limits in force: a kind's own, else its server's. Returns the
 * smallest non-zero one, 0 if there is none. */
static unsigned
fill_limits(struct butler_hub *hub)
{
	struct butler__monitor *mon = &hub->mon;
	unsigned least = 0;

	for (unsigned g = 0, at = 0; g < hub->n_servers; g++) {
		const butler_server_desc *d = hub->route[g].desc;

		mon->slot[g] = at;
		mon->limit_ms[at] = d->max_handler_ms;
		for (unsigned k = 1; k <= d->n_accepts; k++) {
			unsigned own = d->kinds != NULL
			    ? d->kinds[k - 1].max_handler_ms
			    : 0;
			unsigned lim = own != 0 ? own : d->max_handler_ms;

			mon->limit_ms[at + k] = lim;
			if (lim != 0 && (least == 0 || lim < least))
				least = lim;
		}
		at += d->n_accepts + 1;
	}
	return least;
}

static void
free_parts(struct butler__monitor *mon)
{
	free(mon->watch);
	free(mon->slot);
	free(mon->limit_ms);
	free(mon->seen);
	mon->watch = NULL;
	mon->slot = mon->limit_ms = NULL;
	mon->seen = NULL;
}

/* Whether any server of hub has a watchdog limit, on a kind or itself. */
static bool
any_limit(const struct butler_hub *hub)
{
	for (unsigned g = 0; g < hub->n_servers; g++) {
		const butler_server_desc *d = hub->route[g].desc;

		if (d->max_handler_ms != 0)
			return true;
		for (unsigned k = 0; d->kinds != NULL && k < d->n_accepts; k++)
			if (d->kinds[k].max_handler_ms != 0)
				return true;
	}
	return false;
}

int
butler__monitor_start(struct butler_hub *hub)
{
	struct butler__monitor *mon = &hub->mon;
	pthread_condattr_t attr;
	unsigned slots = 0, least;
	sigset_t all, old;
	int rc;

	if (mon->running || (mon->dump_ms == 0 && !any_limit(hub)))
		return BUTLER_OK;
	for (unsigned g = 0; g < hub->n_servers; g++)
		slots += hub->route[g].desc->n_accepts + 1;
	mon->watch = butler__calloc(hub->n_inst, sizeof *mon->watch);
	mon->slot = butler__calloc(hub->n_servers, sizeof *mon->slot);
	mon->limit_ms = butler__calloc(slots, sizeof *mon->limit_ms);
	mon->seen = butler__calloc(slots, sizeof *mon->seen);
	if (mon->watch == NULL || mon->slot == NULL || mon->limit_ms == NULL
	    || mon->seen == NULL) {
		free_parts(mon);
		return BUTLER_ENOMEM;
	}
	least = fill_limits(hub);
	mon->period_ms = least == 0    ? 0
	    : least / 4 < WATCH_MIN_MS ? WATCH_MIN_MS
	    : least / 4 > WATCH_MAX_MS ? WATCH_MAX_MS
	                               : least / 4;
	/* The dump's lines are INFO; the default log (stderr) shows only
	 * warnings, so for it the dump speaks at INFO anyway: asking for a
	 * dump is asking to see it. */
	mon->log = hub->log;
	if (butler__logger_is_default(&mon->log)
	    && mon->log.level < BUTLER_LOG_INFO)
		mon->log.level = BUTLER_LOG_INFO;
	mon->stop = false;
	if (pthread_mutex_init(&mon->lock, NULL) != 0)
		goto out_free;
	if (pthread_condattr_init(&attr) != 0)
		goto out_lock;
	rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(&mon->cond, &attr);
	pthread_condattr_destroy(&attr);
	if (rc != 0)
		goto out_lock;
	/* Like the servers' threads, it takes no asynchronous signals. */
	if (BUTLER__FAULT(BUTLER__FAULT_THREAD))
		goto out_cond;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&mon->thread, NULL, monitor_main, hub);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		goto out_cond;
	/* Named here, so that it has its name once start returns. */
	(void)pthread_setname_np(mon->thread, "butler-monitor");
	mon->running = true;
	return BUTLER_OK;

out_cond:
	pthread_cond_destroy(&mon->cond);
out_lock:
	pthread_mutex_destroy(&mon->lock);
out_free:
	free_parts(mon);
	butler__log(&hub->log, BUTLER_LOG_ERROR,
	    "cannot start the hub's monitor thread");
	return BUTLER_ESYS;
}

void
butler__monitor_stop(struct butler_hub *hub)
{
	struct butler__monitor *mon = &hub->mon;

	if (!mon->running)
		return;
	pthread_mutex_lock(&mon->lock);
	mon->stop = true;
	pthread_cond_signal(&mon->cond);
	pthread_mutex_unlock(&mon->lock);
	pthread_join(mon->thread, NULL);
	pthread_cond_destroy(&mon->cond);
	pthread_mutex_destroy(&mon->lock);
	free_parts(mon);
	mon->running = false;
}
