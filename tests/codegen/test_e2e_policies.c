/* SPDX-License-Identifier: MIT */
/*
 * tests/codegen/test_e2e_policies.c — pool and timer keys of a spec
 * through a real hub (ok/policies.json).
 *
 * The descriptor holds what the spec says (offsets and sizes of routing
 * keys taken from the compiler, per-kind defaults copied from the server);
 * a key route keeps each key on one instance and its messages in order,
 * integer and string keys alike, and spreads the keys over the pool; a
 * tick reaches every instance of its server as a zeroed message; the
 * generated timer functions deliver once, repeat, and cancel.
 */
#include <criterion/criterion.h>

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policies.butler.h"

/* Counts prime to the pool sizes: round-robin would spread a key. */
enum { USERS = 31, ROUNDS = 10, NAMES = 11, INSTANCES_MAX = 4 };

/* struct world is what the handlers record, from every instance. */
struct world {
	atomic_int owner[USERS]; /* instance + 1 that handled the user */
	atomic_uint last[USERS]; /* last seq handled for the user */
	atomic_int name_owner[NAMES];
	atomic_uint name_last[NAMES];
	atomic_int moved;        /* a key seen on a second instance */
	atomic_int out_of_order; /* a key's messages out of order */
	atomic_int keyed_handled;
	atomic_int per_instance[INSTANCES_MAX];
	atomic_int named_handled;
	atomic_int balanced_handled;
	atomic_int ticks[2];   /* zeroed beats, per clock instance */
	atomic_int not_zeroed; /* beats with n other than 0 or 7 */
	atomic_int every;      /* beats with n == 7: from _every */
	atomic_int notes;      /* notes with the text "later" */
	atomic_int wrong_notes;
};

static void
sleep_ms(int ms)
{
	struct timespec ts
	    = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static char *
dup_str(const char *s)
{
	char *d = malloc(strlen(s) + 1);

	cr_assert_not_null(d);
	return strcpy(d, s);
}

/* wait_for waits up to 10 s for *counter to reach want. */
static void
wait_for(atomic_int *counter, int want, const char *what)
{
	for (int i = 0; atomic_load(counter) < want; i++) {
		cr_assert_lt(i, 1000, "%s: %d of %d after 10 s", what,
		    atomic_load(counter), want);
		sleep_ms(10);
	}
}

/* keyed records one message of user `user` with sequence number seq. */
static void
keyed(struct world *w, butler_server *self, uint32_t user, uint32_t seq)
{
	int inst = (int)butler_server_instance(self) + 1;
	int none = 0;

	if (user >= USERS || inst > INSTANCES_MAX) {
		atomic_fetch_add(&w->moved, 1);
		return;
	}
	if (!atomic_compare_exchange_strong(&w->owner[user], &none, inst)
	    && none != inst)
		atomic_fetch_add(&w->moved, 1);
	if (atomic_exchange(&w->last[user], seq) + 1 != seq)
		atomic_fetch_add(&w->out_of_order, 1);
	atomic_fetch_add(&w->per_instance[inst - 1], 1);
	atomic_fetch_add(&w->keyed_handled, 1);
}

static int
on_job(butler_server *self, void *user, struct pol_job *msg)
{
	keyed(user, self, msg->user, msg->seq);
	return 0;
}

static int
on_hit(butler_server *self, void *user, struct pol_hit *msg)
{
	keyed(user, self, msg->user, msg->seq);
	return 0;
}

static int
on_named(butler_server *self, void *user, struct pol_named *msg)
{
	struct world *w = user;
	int inst = (int)butler_server_instance(self) + 1, none = 0;
	unsigned k;

	if (msg->name == NULL || sscanf(msg->name, "name-%u", &k) != 1
	    || k >= NAMES) {
		atomic_fetch_add(&w->moved, 1);
		return 0;
	}
	if (!atomic_compare_exchange_strong(&w->name_owner[k], &none, inst)
	    && none != inst)
		atomic_fetch_add(&w->moved, 1);
	if (atomic_exchange(&w->name_last[k], msg->seq) + 1 != msg->seq)
		atomic_fetch_add(&w->out_of_order, 1);
	atomic_fetch_add(&w->named_handled, 1);
	return 0;
}

static int
on_balanced(butler_server *self, void *user, struct pol_job *msg)
{
	struct world *w = user;

	(void)self;
	(void)msg;
	atomic_fetch_add(&w->balanced_handled, 1);
	return 0;
}

static int
on_beat(butler_server *self, void *user, struct pol_beat *msg)
{
	struct world *w = user;
	unsigned inst = butler_server_instance(self);

	if (msg->n == 7)
		atomic_fetch_add(&w->every, 1);
	else if (msg->n != 0 || inst >= 2)
		atomic_fetch_add(&w->not_zeroed, 1);
	else
		atomic_fetch_add(&w->ticks[inst], 1);
	return 0;
}

static int
on_note(butler_server *self, void *user, struct pol_note *msg)
{
	struct world *w = user;

	(void)self;
	if (msg->text != NULL && strcmp(msg->text, "later") == 0)
		atomic_fetch_add(&w->notes, 1);
	else
		atomic_fetch_add(&w->wrong_notes, 1);
	return 0;
}

static int
on_quit(butler_server *self, void *user, struct pol_quit *msg)
{
	(void)self;
	(void)user;
	(void)msg;
	return 0;
}

/* start builds and starts a hub of ok/policies.json with every handler. */
static butler_hub *
start(struct world *w)
{
	butler_hub *hub;

	cr_assert_eq(butler_hub_new(&hub, &pol_spec), BUTLER_OK);
	cr_assert_eq(
	    pol_keyed_register_each(hub, w, NULL, NULL, on_job, on_hit),
	    BUTLER_OK);
	cr_assert_eq(pol_by_name_register_each(hub, w, NULL, NULL, on_named),
	    BUTLER_OK);
	cr_assert_eq(
	    pol_balanced_register_each(hub, w, NULL, NULL, on_balanced),
	    BUTLER_OK);
	cr_assert_eq(
	    pol_clock_register_each(hub, w, NULL, NULL, on_beat, on_note),
	    BUTLER_OK);
	cr_assert_eq(
	    pol_main_register_each(hub, w, NULL, NULL, on_quit), BUTLER_OK);
	cr_assert_eq(butler_hub_start(hub), BUTLER_OK);
	return hub;
}

/* The descriptor holds what the spec says; key offsets and sizes are the
 * compiler's. */
Test(policies, descriptors)
{
	const butler_server_desc *keyed = &pol_spec.servers[POL_SERVER_KEYED];
	const butler_server_desc *by_name
	    = &pol_spec.servers[POL_SERVER_BY_NAME];
	const butler_server_desc *bal = &pol_spec.servers[POL_SERVER_BALANCED];
	const butler_server_desc *clock = &pol_spec.servers[POL_SERVER_CLOCK];
	const butler_server_desc *main_s = &pol_spec.servers[POL_SERVER_MAIN];
	const butler_kind_desc *job, *hit, *named;

	cr_assert_eq(keyed->route, BUTLER_ROUTE_KEY);
	cr_assert_eq(keyed->share, 0);
	cr_assert_not_null(keyed->kinds);
	cr_expect_eq(keyed->max_queued, 4096);
	cr_expect_eq(keyed->max_handler_ms, 10000);
	cr_expect_eq(keyed->tick_kind, 0);
	job = &keyed->kinds[POL_KEYED_JOB - 1];
	hit = &keyed->kinds[POL_KEYED_HIT - 1];
	cr_expect_eq(job->key.offset, offsetof(struct pol_job, user));
	cr_expect_eq(job->key.size, sizeof(uint32_t));
	cr_expect_eq(hit->key.offset, offsetof(struct pol_hit, user));
	cr_expect_eq(hit->key.size, sizeof(uint32_t));
	/* job takes the server's defaults, hit its own. */
	cr_expect_eq(job->full, keyed->full);
	cr_expect_eq(job->full, BUTLER_FULL_FAIL);
	cr_expect_eq(job->block_timeout_ms, keyed->block_timeout_ms);
	cr_expect_eq(job->max_handler_ms, 10000);
	cr_expect_eq(hit->full, BUTLER_FULL_BLOCK);
	cr_expect_eq(hit->block_timeout_ms, 500);
	cr_expect_eq(hit->max_handler_ms, 2000);

	cr_assert_eq(by_name->route, BUTLER_ROUTE_KEY);
	cr_assert_not_null(by_name->kinds);
	named = &by_name->kinds[POL_BY_NAME_NAMED - 1];
	cr_expect_eq(named->key.offset, offsetof(struct pol_named, name));
	cr_expect_eq(named->key.size, 0, "a string key has size 0");
	cr_expect_eq(by_name->max_queued, 0);
	cr_expect_eq(by_name->max_handler_ms, 0);

	cr_expect_eq(bal->route, BUTLER_ROUTE_LEAST_LOADED);
	cr_expect_neq(bal->share, 0);
	cr_expect_null(bal->kinds, "no key, override or drop policy");

	cr_expect_eq(clock->route, BUTLER_ROUTE_ROUND_ROBIN);
	cr_expect_eq(clock->tick_kind, POL_CLOCK_BEAT);
	cr_expect_eq(clock->accepts[clock->tick_kind - 1], POL_MSG_BEAT);
	cr_expect_eq(clock->tick_ms, 10);
	cr_expect_null(clock->kinds);
	cr_expect_null(pol_spec.messages[POL_MSG_BEAT].destroy,
	    "a tick message owns no fields");

	cr_expect_eq(main_s->loop, BUTLER_LOOP_EXTERNAL);
	cr_expect_eq(main_s->max_handler_ms, 250);
	cr_expect_eq(main_s->tick_kind, 0);
	cr_expect_eq(main_s->tick_ms, 0);
}

/* One key, one instance, its messages in order; the keys spread. */
Test(policies, key_route_keeps_keys_together, .timeout = 60)
{
	static struct world w;
	butler_hub *hub = start(&w);
	int total = 0, busy = 0, named_total = 0;
	uint64_t handled = 0;

	for (uint32_t seq = 1; seq <= ROUNDS; seq++)
		for (uint32_t u = 0; u < USERS; u++, total++) {
			int rv;

			if ((u + seq) % 2 == 0) {
				struct pol_job j = { .user = u, .seq = seq };

				j.text = dup_str("job");
				rv = pol_send_keyed_job(hub, &j);
				if (rv != BUTLER_OK)
					pol_job_destroy(&j);
			} else {
				struct pol_hit h = { .user = u, .seq = seq };

				rv = pol_send_keyed_hit(hub, &h);
			}
			cr_assert_eq(rv, BUTLER_OK, "send %u/%u: %s", u, seq,
			    butler_strerror(rv));
		}
	for (uint32_t seq = 1; seq <= 5; seq++)
		for (unsigned k = 0; k < NAMES; k++, named_total++) {
			struct pol_named n = { .seq = seq };
			char name[32];
			int rv;

			snprintf(name, sizeof name, "name-%u", k);
			n.name = dup_str(name);
			rv = pol_send_by_name_named(hub, &n);
			if (rv != BUTLER_OK)
				pol_named_destroy(&n);
			cr_assert_eq(rv, BUTLER_OK);
		}
	wait_for(&w.keyed_handled, total, "keyed messages");
	wait_for(&w.named_handled, named_total, "named messages");
	cr_assert_eq(butler_hub_stop(hub, BUTLER_STOP_DRAIN), BUTLER_OK);

	cr_expect_eq(atomic_load(&w.moved), 0, "a key changed instance");
	cr_expect_eq(atomic_load(&w.out_of_order), 0,
	    "a key's messages came out of order");
	cr_expect_eq(butler_server_instances(hub, POL_SERVER_KEYED), 4);
	for (unsigned i = 0; i < 4; i++) {
		butler_stats st;

		cr_assert_eq(
		    butler_instance_stats(hub, POL_SERVER_KEYED, i, &st),
		    BUTLER_OK);
		cr_expect_eq(st.handled,
		    (uint64_t)atomic_load(&w.per_instance[i]),
		    "instance %u: stats say %llu", i,
		    (unsigned long long)st.handled);
		handled += st.handled;
		busy += st.handled > 0;
	}
	cr_expect_eq(handled, (uint64_t)total);
	cr_expect(busy >= 2, "%d keys all went to %d instance", USERS, busy);
	butler_hub_free(hub);
}

/* least_loaded with sharing still handles every message once. */
Test(policies, least_loaded_and_shared, .timeout = 60)
{
	static struct world w;
	butler_hub *hub = start(&w);
	butler_stats st;

	for (uint32_t i = 0; i < 200; i++) {
		struct pol_job j = { .user = i, .seq = i };
		int rv;

		j.text = dup_str("x");
		rv = pol_send_balanced_job(hub, &j);
		if (rv != BUTLER_OK)
			pol_job_destroy(&j);
		cr_assert_eq(rv, BUTLER_OK);
	}
	wait_for(&w.balanced_handled, 200, "balanced jobs");
	cr_assert_eq(butler_hub_stop(hub, BUTLER_STOP_DRAIN), BUTLER_OK);
	cr_assert_eq(
	    butler_server_stats(hub, POL_SERVER_BALANCED, &st), BUTLER_OK);
	cr_expect_eq(st.handled, 200);
	cr_expect_eq(atomic_load(&w.balanced_handled), 200);
	butler_hub_free(hub);
}

/* The spec's tick reaches every instance, zeroed. */
Test(policies, tick_reaches_every_instance, .timeout = 60)
{
	static struct world w;
	butler_hub *hub = start(&w);

	wait_for(&w.ticks[0], 3, "ticks of instance 0");
	wait_for(&w.ticks[1], 3, "ticks of instance 1");
	cr_assert_eq(butler_hub_stop(hub, BUTLER_STOP_DRAIN), BUTLER_OK);
	cr_expect_eq(atomic_load(&w.not_zeroed), 0);
	cr_expect_eq(atomic_load(&w.every), 0);
	butler_hub_free(hub);
}

/* _after delivers once, owned fields and all; cancelling frees them;
 * _every repeats until cancelled. */
Test(policies, timers, .timeout = 60)
{
	static struct world w;
	butler_hub *hub = start(&w);
	struct pol_note soon = { 0 }, never = { 0 };
	struct pol_beat beat = { .n = 7 };
	uint64_t t_soon = 0, t_never = 0, t_every = 0;
	int seen;

	soon.text = dup_str("later");
	cr_assert_eq(
	    pol_send_clock_note_after(hub, &soon, 20, &t_soon), BUTLER_OK);
	never.text = dup_str("never");
	cr_assert_eq(pol_send_clock_note_after(hub, &never, 60000, &t_never),
	    BUTLER_OK);
	cr_expect_neq(t_soon, t_never);
	/* The hub owns never.text now: cancelling destroys it (ASan and
	 * valgrind see a leak otherwise). */
	cr_expect_eq(butler_timer_cancel(hub, t_never), BUTLER_OK);
	cr_expect_eq(butler_timer_cancel(hub, t_never), BUTLER_ENOTFOUND);
	wait_for(&w.notes, 1, "the delayed note");

	cr_expect_eq(
	    pol_send_clock_beat_every(hub, &beat, 0, NULL), BUTLER_EINVAL);
	cr_expect_eq(
	    pol_send_clock_beat_every(hub, NULL, 10, NULL), BUTLER_EINVAL);
	cr_expect_eq(
	    pol_send_clock_note_after(hub, NULL, 10, NULL), BUTLER_EINVAL);
	cr_assert_eq(
	    pol_send_clock_beat_every(hub, &beat, 10, &t_every), BUTLER_OK);
	wait_for(&w.every, 3, "repeated beats");
	cr_expect_eq(butler_timer_cancel(hub, t_every), BUTLER_OK);
	seen = atomic_load(&w.every);
	sleep_ms(100);
	/* A firing already under way may still arrive, not more. */
	cr_expect(atomic_load(&w.every) <= seen + 1, "%d beats after %d",
	    atomic_load(&w.every), seen);
	cr_assert_eq(butler_hub_stop(hub, BUTLER_STOP_DRAIN), BUTLER_OK);
	cr_expect_eq(atomic_load(&w.notes), 1);
	cr_expect_eq(atomic_load(&w.wrong_notes), 0);
	butler_hub_free(hub);
}
