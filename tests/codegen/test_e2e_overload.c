/* SPDX-License-Identifier: MIT */
/*
 * tests/codegen/test_e2e_overload.c — the overload policies that destroy
 * or replace queued work, generated from a spec (ok/overload.json) and run
 * by a real hub: "full": "drop_newest" and "drop_oldest" on a server,
 * "keep_last" for one kind of a server that otherwise fails.
 *
 * Each server has capacity 1: while its handler is held on message 1,
 * message 2 waits, and message 3 finds the inbox full. A send the hub took
 * (butler_taken(): BUTLER_OK, EREPLACED, EDROPPED) is the hub's to destroy,
 * so nothing leaks or is freed twice (its text is owned) and the handler
 * sees exactly what the policy keeps.
 */
#include <criterion/criterion.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "overload.butler.h"

/* struct world holds the one running handler back and logs what runs. */
struct world {
	atomic_int started; /* message 1 is being handled */
	atomic_int gate;    /* 1: let it finish */
	atomic_uint log[8]; /* n of each message handled, in order */
	atomic_int n_log;
	atomic_int bad_text;
};

static void
sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)ms * 1000000 };

	nanosleep(&ts, NULL);
}

static int
on_level(butler_server *self, void *user, struct ovl_level *msg)
{
	struct world *w = user;
	int i;

	(void)self;
	if (msg->text == NULL || strcmp(msg->text, "level") != 0)
		atomic_fetch_add(&w->bad_text, 1);
	if (msg->n == 1) {
		atomic_store(&w->started, 1);
		for (int k = 0; !atomic_load(&w->gate) && k < 10000; k++)
			sleep_ms(1);
	}
	i = atomic_fetch_add(&w->n_log, 1);
	if (i < 8)
		atomic_store(&w->log[i], msg->n);
	return 0;
}

static int
on_other(butler_server *self, void *user, struct ovl_other *msg)
{
	(void)self;
	(void)user;
	(void)msg;
	return 0;
}

typedef int (*send_fn)(butler_hub *hub, const struct ovl_level *msg);

/* run sends levels 1, 2 and 3 with `send` while the handler holds 1, and
 * checks that the handler saw `want` (n_want of them) once released. */
static void
run(send_fn send, const unsigned *want, int n_want)
{
	static struct world w;
	butler_hub *hub;
	int rv;

	rv = butler_hub_new(&hub, &ovl_spec);
	cr_assert_eq(rv, BUTLER_OK,
	    "butler_hub_new: %s (does the runtime know the drop and "
	    "keep_last policies yet?)",
	    butler_strerror(rv));
	cr_assert_eq(ovl_newest_register_each(hub, &w, NULL, NULL, on_level),
	    BUTLER_OK);
	cr_assert_eq(ovl_oldest_register_each(hub, &w, NULL, NULL, on_level),
	    BUTLER_OK);
	cr_assert_eq(
	    ovl_last_register_each(hub, &w, NULL, NULL, on_level, on_other),
	    BUTLER_OK);
	cr_assert_eq(butler_hub_start(hub), BUTLER_OK);
	for (unsigned n = 1; n <= 3; n++) {
		struct ovl_level m = { .n = n };
		char *text = malloc(sizeof "level");

		cr_assert_not_null(text);
		m.text = strcpy(text, "level");
		rv = send(hub, &m);
		if (!butler_taken(rv))
			ovl_level_destroy(&m); /* refused: still ours */
		if (n == 1) {
			cr_assert_eq(rv, BUTLER_OK);
			for (int k = 0; !atomic_load(&w.started); k++) {
				cr_assert_lt(k, 10000, "message 1 never ran");
				sleep_ms(1);
			}
		}
	}
	atomic_store(&w.gate, 1);
	cr_assert_eq(butler_hub_stop(hub, BUTLER_STOP_DRAIN), BUTLER_OK);
	cr_expect_eq(atomic_load(&w.bad_text), 0);
	cr_assert_eq(atomic_load(&w.n_log), n_want);
	for (int i = 0; i < n_want; i++)
		cr_expect_eq(atomic_load(&w.log[i]), want[i],
		    "message %d handled: %u, want %u", i,
		    atomic_load(&w.log[i]), want[i]);
	butler_hub_free(hub);
}

Test(overload, drop_newest, .timeout = 60)
{
	static const unsigned want[] = { 1, 2 };

	run(ovl_send_newest_level, want, 2);
}

Test(overload, drop_oldest, .timeout = 60)
{
	static const unsigned want[] = { 1, 3 };

	run(ovl_send_oldest_level, want, 2);
}

Test(overload, keep_last_per_kind, .timeout = 60)
{
	static const unsigned want[] = { 1, 3 };

	run(ovl_send_last_level, want, 2);
}

/* The descriptor says so, whatever the runtime does with it. */
Test(overload, descriptors)
{
	const butler_server_desc *s = ovl_spec.servers;

	cr_expect_eq(s[OVL_SERVER_NEWEST].full, BUTLER_FULL_DROP_NEWEST);
	cr_assert_not_null(s[OVL_SERVER_NEWEST].kinds);
	cr_expect_eq(s[OVL_SERVER_NEWEST].kinds[OVL_NEWEST_LEVEL - 1].full,
	    BUTLER_FULL_DROP_NEWEST);
	cr_expect_eq(s[OVL_SERVER_OLDEST].full, BUTLER_FULL_DROP_OLDEST);
	cr_assert_not_null(s[OVL_SERVER_OLDEST].kinds);
	cr_expect_eq(s[OVL_SERVER_LAST].full, BUTLER_FULL_FAIL);
	cr_assert_not_null(s[OVL_SERVER_LAST].kinds);
	cr_expect_eq(s[OVL_SERVER_LAST].kinds[OVL_LAST_LEVEL - 1].full,
	    BUTLER_FULL_KEEP_LAST);
	cr_expect_eq(s[OVL_SERVER_LAST].kinds[OVL_LAST_OTHER - 1].full,
	    BUTLER_FULL_FAIL);
	cr_expect_eq(s[OVL_SERVER_LAST].kinds[OVL_LAST_OTHER - 1].key.size, 0);
	cr_expect_eq(s[OVL_SERVER_LAST].route, BUTLER_ROUTE_ROUND_ROBIN);
}
