/* SPDX-License-Identifier: MIT */
/*
 * test_timer.c — messages sent later, once or every period, and ticks: they
 * fire in order on the destination's own thread, cancel works, a periodic
 * message owns no fields, and nothing fires once the hub stops.
 */
#include "fixture.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

enum { DEST = 0, OTHER = 1 };

static pthread_t dest_thread;
static atomic_int wrong_thread;
static atomic_uint fired, slots;
static _Atomic uint64_t order[64];

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int
on_start(butler_server *self, void *user)
{
	(void)user;
	if (butler_server_id(self) == DEST
	    && butler_server_instance(self) == 0)
		dest_thread = pthread_self();
	return 0;
}

static int
on_num(butler_server *self, void *user, struct num *m)
{
	unsigned n = atomic_fetch_add(&slots, 1);

	(void)self;
	(void)user;
	if (!pthread_equal(pthread_self(), dest_thread))
		atomic_fetch_add(&wrong_thread, 1);
	if (n < 64)
		atomic_store(&order[n], m->seq);
	/* Counted once recorded, so a reader that sees the count sees it. */
	atomic_fetch_add(&fired, 1);
	return 0;
}

static butler_hub *
timer_hub(struct fx *f, struct fx_handlers *h)
{
	atomic_store(&fired, 0);
	atomic_store(&slots, 0);
	atomic_store(&wrong_thread, 0);
	for (unsigned i = 0; i < 64; i++)
		atomic_store(&order[i], 0);
	fx_init(f, 2, 64);
	h->on_start = on_start;
	h->num = on_num;
	return fx_hub(f, h, NULL);
}

Test(timer, one_shots_fire_in_order_on_the_destination, .timeout = 60)
{
	static const unsigned delays[] = { 60, 20, 40, 0, 80 };
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	butler_hub *hub = timer_hub(&f, &h);

	ASSERT_OK(butler_hub_start(hub));
	for (unsigned i = 0; i < 5; i++) {
		struct num m = { .seq = delays[i] };
		uint64_t id;

		ASSERT_OK(butler_send_after(
		    hub, DEST, K_NUM, &m, sizeof m, delays[i], 0, &id));
		cr_assert_neq(id, 0);
	}
	while (atomic_load(&fired) < 5)
		sleep_ms(5);
	for (unsigned i = 0; i < 5; i++)
		cr_assert_eq(order[i], 20 * i, "firing %u was %llu", i,
		    (unsigned long long)order[i]);
	cr_assert_eq(atomic_load(&wrong_thread), 0);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	{
		butler_stats st;

		ASSERT_OK(butler_server_stats(hub, DEST, &st));
		cr_assert_eq(st.sent, 5);
		cr_assert_eq(st.handled, 5);
	}
	butler_hub_free(hub);
}

Test(timer, a_periodic_one_repeats_until_cancelled, .timeout = 60)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	butler_hub *hub = timer_hub(&f, &h);
	struct num m = { .seq = 7 };
	struct owned o = fx_owned(1);
	uint64_t id;
	unsigned at_cancel;

	ASSERT_OK(butler_hub_start(hub));
	/* A message that owns fields cannot be delivered more than once. */
	ASSERT_ERR(
	    butler_send_after(hub, DEST, K_OWNED, &o, sizeof o, 10, 10, NULL),
	    BUTLER_EINVAL);
	free(o.text);
	ASSERT_OK(
	    butler_send_after(hub, DEST, K_NUM, &m, sizeof m, 5, 5, &id));
	while (atomic_load(&fired) < 5)
		sleep_ms(2);
	ASSERT_OK(butler_timer_cancel(hub, id));
	ASSERT_ERR(butler_timer_cancel(hub, id), BUTLER_ENOTFOUND);
	at_cancel = atomic_load(&fired);
	sleep_ms(50);
	/* At most the firing under way when it was cancelled. */
	cr_assert_leq(atomic_load(&fired), at_cancel + 1);
	for (unsigned i = 0; i < 5; i++)
		cr_assert_eq(order[i], 7);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	butler_hub_free(hub);
}

Test(timer, a_cancelled_one_shot_never_fires_and_is_destroyed_once,
    .timeout = 60)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	butler_hub *hub = timer_hub(&f, &h);
	struct owned o = fx_owned(42);
	struct num m = { .seq = 1 };
	uint64_t id, id2;

	atomic_store(&fx_destroyed[42], 0);
	ASSERT_OK(butler_hub_start(hub));
	ASSERT_OK(
	    butler_send_after(hub, DEST, K_OWNED, &o, sizeof o, 100, 0, &id));
	ASSERT_OK(butler_timer_cancel(hub, id));
	ASSERT_OK(
	    butler_send_after(hub, DEST, K_NUM, &m, sizeof m, 0, 0, &id2));
	while (atomic_load(&fired) < 1)
		sleep_ms(2);
	/* Fired: its one delivery is its end. */
	ASSERT_ERR(butler_timer_cancel(hub, id2), BUTLER_ENOTFOUND);
	sleep_ms(150);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	butler_hub_free(hub);
	cr_assert_eq(atomic_load(&fx_destroyed[42]), 1);
	cr_assert_eq(atomic_load(&fired), 1);
}

Test(timer, nothing_fires_once_the_hub_stops, .timeout = 60)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	butler_hub *hub = timer_hub(&f, &h);
	struct num m = { .seq = 1 };

	atomic_store(&fx_destroyed[43], 0);
	ASSERT_OK(butler_hub_start(hub));
	for (int i = 0; i < 20; i++) {
		struct owned o = fx_owned(43);

		ASSERT_OK(butler_send_after(
		    hub, DEST, K_OWNED, &o, sizeof o, 200, 0, NULL));
	}
	ASSERT_OK(
	    butler_send_after(hub, DEST, K_NUM, &m, sizeof m, 1, 1, NULL));
	sleep_ms(30);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	{
		unsigned after_stop = atomic_load(&fired);

		sleep_ms(250);
		cr_assert_eq(atomic_load(&fired), after_stop);
	}
	/* The 20 owned messages never fired: destroyed, each once. */
	cr_assert_eq(atomic_load(&fx_destroyed[43]), 20);
	ASSERT_ERR(
	    butler_send_after(hub, DEST, K_NUM, &m, sizeof m, 1, 0, NULL),
	    BUTLER_ECLOSED);
	butler_hub_free(hub);
}

Test(timer, an_external_server_gets_its_deadline_and_fires_in_drain,
    .timeout = 60)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	butler_hub *hub = timer_hub(&f, &h);
	struct num m = { .seq = 9 };
	int timeout;

	f.servers[DEST].loop = BUTLER_LOOP_EXTERNAL;
	butler_hub_free(hub);
	ASSERT_OK(butler_hub_new(&hub, &f.spec));
	ASSERT_OK(fx_register(hub, DEST, &h, NULL));
	ASSERT_OK(fx_register(hub, OTHER, &h, NULL));
	ASSERT_OK(butler_hub_start(hub));
	dest_thread = pthread_self();
	ASSERT_OK(
	    butler_send_after(hub, DEST, K_NUM, &m, sizeof m, 50, 0, NULL));
	/* The arming record arrives first; then the deadline shows. */
	ASSERT_OK(butler_server_drain(hub, DEST, 0, NULL));
	timeout = butler_server_next_timeout(hub, DEST);
	cr_assert(timeout > 0 && timeout <= 50, "next timeout %d", timeout);
	while (atomic_load(&fired) == 0) {
		struct pollfd p
		    = { .fd = butler_server_fd(hub, DEST), .events = POLLIN };

		poll(&p, 1, butler_server_next_timeout(hub, DEST));
		ASSERT_OK(butler_server_drain(hub, DEST, 0, NULL));
	}
	cr_assert_eq(order[0], 9);
	cr_assert_eq(atomic_load(&wrong_thread), 0);
	cr_assert_eq(butler_server_next_timeout(hub, DEST), -1);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	butler_hub_free(hub);
}

Test(timer, a_tick_declared_in_the_spec_arrives_as_a_message, .timeout = 60)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	butler_hub *hub = timer_hub(&f, &h);

	butler_hub_free(hub);
	f.servers[DEST].tick_kind = K_NUM;
	f.servers[DEST].tick_ms = 5;
	f.servers[DEST].instances = 2;
	ASSERT_OK(butler_hub_new(&hub, &f.spec));
	ASSERT_OK(fx_register(hub, DEST, &h, NULL));
	ASSERT_OK(fx_register(hub, OTHER, &h, NULL));
	ASSERT_OK(butler_hub_start(hub));
	/* Two instances, each with its own tick. */
	while (atomic_load(&fired) < 20)
		sleep_ms(5);
	ASSERT_OK(butler_hub_stop(hub, BUTLER_STOP_DRAIN));
	for (unsigned i = 0; i < 20; i++)
		cr_assert_eq(order[i], 0); /* a tick is all zero */
	butler_hub_free(hub);
	/* A tick whose message owns fields is refused. */
	f.servers[DEST].tick_kind = K_OWNED;
	ASSERT_ERR(butler_hub_new(&hub, &f.spec), BUTLER_EINVAL);
}
