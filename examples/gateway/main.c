/* SPDX-License-Identifier: MIT */
/*
 * gateway — a server whose answer needs two back-end calls.
 *
 * The gateway's handler for summary_get cannot answer before it returns:
 * it needs a profile (from server profiles) and an order count (from the
 * pool orders). So it defers the request (gw_defer_summary_get), calls both
 * back ends, and answers from their reply callbacks, on its own thread,
 * once both have come (gw_answer_summary_get) or one has failed
 * (gw_fail_summary_get). The caller sees one ordinary request: its timeout
 * works, and butler_hub_pending() shows who holds it.
 *
 * main is no server: it asks with blocking calls
 * (gw_call_gateway_summary_get_wait), each with a deadline that travels
 * with the request to the gateway and from there to the back ends.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway.butler.h"

static char *
dup_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	return d ? memcpy(d, s, n) : NULL;
}

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- the back ends ---------------------------------------------------- */

static int
on_profile_get(butler_server *self, void *user, struct gw_profile_get *m)
{
	char name[64];
	struct gw_profile p;

	(void)user;
	if (strcmp(m->user, "nobody") == 0)
		return BUTLER_EHANDLER; /* the caller gets this failure */
	snprintf(
	    name, sizeof name, "%c%s", m->user[0] - 'a' + 'A', m->user + 1);
	p.name = dup_str(name);
	return gw_reply_profile_get(self, &p);
}

static int
on_orders_get(butler_server *self, void *user, struct gw_orders_get *m)
{
	struct gw_orders o = { .count = (uint32_t)strlen(m->user) * 3 };

	(void)user;
	sleep_ms(m->delay_ms); /* a slow database */
	return gw_reply_orders_get(self, &o);
}

/* ---- the gateway ------------------------------------------------------ */

/* What the gateway collects for one deferred summary_get. */
struct join {
	struct gw_summary_get_promise promise;
	char *user;
	char *name; /* from profiles */
	uint32_t orders;
	unsigned replies;
	int failure;
};

/* Answers the deferred request once both back ends have replied. */
static void
finish(butler_server *self, struct join *j)
{
	if (++j->replies < 2)
		return;
	if (j->failure != BUTLER_OK) {
		(void)gw_fail_summary_get(self, j->promise, j->failure);
		free(j->name);
	} else {
		struct gw_summary s = {
			.user = j->user, .name = j->name, .orders = j->orders
		};

		/* On BUTLER_OK the hub owns the strings; a caller that has
		 * gone is no error: the summary is destroyed. */
		if (gw_answer_summary_get(self, j->promise, &s) == BUTLER_OK)
			j->user = NULL;
		else
			free(j->name);
	}
	free(j->user);
	free(j);
}

static void
on_profile(butler_server *self, int status, struct gw_profile *p, void *user)
{
	struct join *j = user;

	if (status == BUTLER_OK) {
		j->name = p->name;
		p->name
		    = NULL; /* keep it: the reply is destroyed after this */
	} else {
		j->failure = status;
	}
	finish(self, j);
}

static void
on_orders(butler_server *self, int status, struct gw_orders *o, void *user)
{
	struct join *j = user;

	if (status == BUTLER_OK)
		j->orders = o->count;
	else if (j->failure == BUTLER_OK)
		j->failure = status;
	finish(self, j);
}

static int
on_summary_get(butler_server *self, void *user, struct gw_summary_get *m)
{
	butler_hub *hub = butler_server_hub(self);
	struct join *j = calloc(1, sizeof *j);
	/* The back ends get what is left of our caller's deadline. */
	int64_t left = butler_time_left_ms(self);
	int timeout = left < 0 ? -1 : (int)left;
	struct gw_profile_get pg;
	struct gw_orders_get og;
	int rv;

	(void)user;
	if (j == NULL)
		return BUTLER_ENOMEM;
	j->promise = gw_defer_summary_get(self);
	j->user = m->user;
	m->user = NULL; /* ours now: the request is destroyed on return */
	pg.user = dup_str(j->user);
	og.user = dup_str(j->user);
	og.delay_ms = strcmp(j->user, "slow") == 0 ? 500 : 20;
	rv = gw_call_profiles_profile_get(
	    hub, &pg, timeout, on_profile, j, NULL);
	if (rv != BUTLER_OK) {
		gw_profile_get_destroy(&pg); /* refused: still ours */
		j->failure = rv;
		j->replies++;
	}
	rv = gw_call_orders_orders_get(hub, &og, timeout, on_orders, j, NULL);
	if (rv != BUTLER_OK) {
		gw_orders_get_destroy(&og);
		if (j->failure == BUTLER_OK)
			j->failure = rv;
		finish(self, j);
	}
	/* 0 without an answer: the promise answers later. */
	return BUTLER_OK;
}

/* ---- main ------------------------------------------------------------- */

static void
show_pending(const butler_pending_info *info, void *user)
{
	(void)user;
	printf("  pending: %s -> %s/%s, waiting %llu ms%s%s\n",
	    info->caller ? info->caller : "(a blocked thread)", info->server,
	    info->message, (unsigned long long)info->waiting_ms,
	    info->deferred_by ? ", deferred by " : "",
	    info->deferred_by ? info->deferred_by : "");
}

static int
ask(butler_hub *hub, const char *user, int timeout_ms)
{
	struct gw_summary_get q = { .user = dup_str(user) };
	struct gw_summary s;
	int rv = gw_call_gateway_summary_get_wait(hub, &q, timeout_ms, &s);

	if (rv == BUTLER_EFULL || rv == BUTLER_ECLOSED || rv == BUTLER_EINVAL
	    || rv == BUTLER_ENOMEM || rv == BUTLER_ESTATE)
		gw_summary_get_destroy(&q); /* refused at once: still ours */
	if (rv == BUTLER_OK) {
		printf("main: %-7s -> %s, %u orders\n", user, s.name,
		    (unsigned)s.orders);
		gw_summary_destroy(&s); /* the reply's strings are ours */
	} else {
		printf("main: %-7s -> %s\n", user, butler_strerror(rv));
	}
	return rv;
}

int
main(void)
{
	static const char *const users[]
	    = { "alice", "bob", "nobody", "carol", "slow" };
	unsigned answered = 0, timed_out = 0;
	butler_hub *hub;
	butler_stats st;
	int rv;

	rv = butler_hub_new(&hub, &gw_spec);
	if (rv != BUTLER_OK) {
		fprintf(stderr, "butler_hub_new: %s\n", butler_strerror(rv));
		return 1;
	}
	butler_hub_set_log(hub, NULL, BUTLER_LOG_ERROR, NULL);
	rv = gw_gateway_register_each(hub, NULL, NULL, NULL, on_summary_get);
	if (rv == BUTLER_OK)
		rv = gw_profiles_register_each(
		    hub, NULL, NULL, NULL, on_profile_get);
	if (rv == BUTLER_OK)
		rv = gw_orders_register_each(
		    hub, NULL, NULL, NULL, on_orders_get);
	if (rv == BUTLER_OK)
		rv = butler_hub_start(hub);
	if (rv != BUTLER_OK) {
		fprintf(stderr, "start: %s\n", butler_strerror(rv));
		butler_hub_free(hub);
		return 1;
	}
	for (size_t i = 0; i < sizeof users / sizeof *users; i++) {
		/* "slow" waits 500 ms for its orders: past our deadline. */
		rv = ask(hub, users[i], 200);
		if (rv == BUTLER_OK || rv == BUTLER_EHANDLER)
			answered++;
		else if (rv == BUTLER_ETIMEDOUT)
			timed_out++;
	}
	/* The slow back end still works on its request; the gateway's own
	 * call to it timed out too, and its late reply is destroyed. */
	(void)butler_hub_pending(hub, show_pending, NULL);
	rv = butler_hub_stop_timeout(hub, BUTLER_STOP_DRAIN, 5000, NULL, NULL);
	if (rv != BUTLER_OK)
		(void)butler_hub_stop(hub, BUTLER_STOP_DISCARD);
	(void)butler_server_stats(hub, GW_SERVER_GATEWAY, &st);
	printf("gateway: %u answered, %u timed out, %zu pending; "
	       "gateway handled %llu, back ends answered %llu times\n",
	    answered, timed_out, butler_hub_pending(hub, NULL, NULL),
	    (unsigned long long)st.handled, (unsigned long long)st.replies);
	butler_hub_free(hub);
	return 0;
}
