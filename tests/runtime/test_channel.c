/* SPDX-License-Identifier: MIT */
/*
 * test_channel.c — the inbound channel: many producers, FIFO per producer,
 * nothing lost, full inboxes, blocking sends.
 */
#include "fixture.h"

#include <pthread.h>
#include <sched.h>
#include <semaphore.h>

#define PRODUCERS 4
#define PER_PRODUCER 1000000u

struct mpsc {
	butler_hub *hub;
	uint64_t next[PRODUCERS]; /* next seq expected, per producer */
	atomic_ulong received;
	atomic_int out_of_order;
	sem_t done;
	unsigned producer;
	atomic_ulong full_retries;
};

static int
mpsc_num(butler_server *self, void *user, struct num *m)
{
	struct mpsc *t = user;

	(void)self;
	if (m->producer >= PRODUCERS || m->seq != t->next[m->producer])
		atomic_fetch_add(&t->out_of_order, 1);
	else
		t->next[m->producer]++;
	if (atomic_fetch_add(&t->received, 1) + 1
	    == (unsigned long)PRODUCERS * PER_PRODUCER)
		sem_post(&t->done);
	return 0;
}

static void *
mpsc_producer(void *arg)
{
	struct mpsc *t = arg;
	unsigned id = __atomic_fetch_add(&t->producer, 1, __ATOMIC_RELAXED);
	struct num m = { .producer = id };

	for (m.seq = 0; m.seq < PER_PRODUCER; m.seq++) {
		int rv;

		while ((rv = butler_send(t->hub, 0, K_NUM, &m, sizeof m))
		    == BUTLER_EFULL) {
			atomic_fetch_add(&t->full_retries, 1);
			sched_yield();
		}
		cr_assert_eq(rv, BUTLER_OK, "send: %s", butler_errname(rv));
	}
	return NULL;
}

Test(channel, four_producers_fifo_nothing_lost, .timeout = 600)
{
	static struct mpsc t;
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	pthread_t th[PRODUCERS];
	butler_stats st;
	int i;

	fx_init(&f, 1, 1u << 16);
	h.num = mpsc_num;
	sem_init(&t.done, 0, 0);
	t.hub = fx_hub(&f, &h, &t);
	ASSERT_OK(butler_hub_start(t.hub));
	for (i = 0; i < PRODUCERS; i++)
		pthread_create(&th[i], NULL, mpsc_producer, &t);
	for (i = 0; i < PRODUCERS; i++)
		pthread_join(th[i], NULL);
	sem_wait(&t.done);
	/* After the stop, so the last handler call has been counted too. */
	ASSERT_OK(butler_hub_stop(t.hub, BUTLER_STOP_DRAIN));
	ASSERT_OK(butler_server_stats(t.hub, 0, &st));

	cr_assert_eq(atomic_load(&t.out_of_order), 0);
	for (i = 0; i < PRODUCERS; i++)
		cr_assert_eq(t.next[i], PER_PRODUCER, "producer %d: %llu", i,
		    (unsigned long long)t.next[i]);
	cr_assert_eq(st.sent, (uint64_t)PRODUCERS * PER_PRODUCER);
	cr_assert_eq(st.handled, (uint64_t)PRODUCERS * PER_PRODUCER);
	cr_assert_eq(st.depth, 0);
	/* The point of the pending flag: far fewer wake-ups than messages. */
	cr_assert_lt(st.wakeups, st.sent / 10, "wakeups %llu for %llu sent",
	    (unsigned long long)st.wakeups, (unsigned long long)st.sent);
	butler_hub_free(t.hub);
}

Test(channel, full_inbox_fails_and_caller_keeps_message, .timeout = 30)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	butler_hub *hub;
	struct owned m;
	butler_stats st;
	unsigned i;

	fx_init(&f, 1, 4);
	hub = fx_hub(&f, &h, NULL);
	/* Not started: sends queue up to capacity. */
	for (i = 0; i < 4; i++) {
		m = fx_owned(i);
		ASSERT_OK(butler_send(hub, 0, K_OWNED, &m, sizeof m));
	}
	m = fx_owned(100);
	ASSERT_ERR(butler_send(hub, 0, K_OWNED, &m, sizeof m), BUTLER_EFULL);
	/* Still ours: untouched, not destroyed, and we free it. */
	cr_assert_str_eq(m.text, "msg-100");
	cr_assert_eq(atomic_load(&fx_destroyed[100]), 0);
	ASSERT_OK(butler_server_stats(hub, 0, &st));
	cr_assert_eq(st.sent, 4);
	cr_assert_eq(st.rejected, 1);
	cr_assert_eq(st.depth, 4);
	free(m.text);
	butler_hub_free(hub);
	for (i = 0; i < 4; i++)
		cr_assert_eq(atomic_load(&fx_destroyed[i]), 1);
}

Test(channel, bad_arguments_are_einval, .timeout = 30)
{
	struct fx f;
	butler_hub *hub;
	struct num m = { 0 };

	fx_init(&f, 1, 4);
	ASSERT_OK(butler_hub_new(&hub, &f.spec));
	ASSERT_ERR(butler_send(hub, 1, K_NUM, &m, sizeof m), BUTLER_EINVAL);
	ASSERT_ERR(butler_send(hub, 0, K_NONE, &m, sizeof m), BUTLER_EINVAL);
	ASSERT_ERR(butler_send(hub, 0, 5, &m, sizeof m), BUTLER_EINVAL);
	ASSERT_ERR(
	    butler_send(hub, 0, K_NUM, &m, sizeof m - 1), BUTLER_EINVAL);
	ASSERT_ERR(butler_send(NULL, 0, K_NUM, &m, sizeof m), BUTLER_EINVAL);
	ASSERT_ERR(butler_send(hub, 0, K_NUM, NULL, sizeof m), BUTLER_EINVAL);
	butler_hub_free(hub);

	f.spec.abi = BUTLER_GEN_ABI + 1;
	ASSERT_ERR(butler_hub_new(&hub, &f.spec), BUTLER_EABI);
	cr_assert_null(hub);
	f.spec.abi = BUTLER_GEN_ABI;
	f.servers[0].capacity = 0;
	ASSERT_ERR(butler_hub_new(&hub, &f.spec), BUTLER_EINVAL);
	cr_assert_null(hub);
}

/* A hand-filled table beyond the limits of butler/gen.h is refused at run
 * time, one field at a time, and nothing is left behind (ASan, valgrind). */
Test(channel, tables_beyond_the_limits_are_einval, .timeout = 30)
{
	struct fx f;
	butler_hub *hub;

	fx_init(&f, 1, 4);
	f.servers[0].capacity = BUTLER_MAX_CAPACITY + 1;
	ASSERT_ERR(butler_hub_new(&hub, &f.spec), BUTLER_EINVAL);
	cr_assert_null(hub);
	f.servers[0].capacity = 4;

	f.servers[0].max_queued = BUTLER_MAX_CAPACITY + 1;
	ASSERT_ERR(butler_hub_new(&hub, &f.spec), BUTLER_EINVAL);
	cr_assert_null(hub);
	f.servers[0].max_queued = 0;

	f.msgs[M_NUM].size = BUTLER_MAX_MESSAGE_SIZE + 1;
	ASSERT_ERR(butler_hub_new(&hub, &f.spec), BUTLER_EINVAL);
	cr_assert_null(hub);
	f.msgs[M_NUM].size = sizeof(struct num);

	f.servers[0].instances = BUTLER_MAX_INSTANCES + 1;
	ASSERT_ERR(butler_hub_new(&hub, &f.spec), BUTLER_EINVAL);
	cr_assert_null(hub);
	f.servers[0].instances = 1;

	/* Each refusal was that field's: the table restored is accepted. */
	ASSERT_OK(butler_hub_new(&hub, &f.spec));
	cr_assert_not_null(hub);
	butler_hub_free(hub);
}

Test(channel, blocking_send_times_out, .timeout = 30)
{
	struct fx f;
	butler_hub *hub;
	struct owned m;

	fx_init(&f, 1, 1);
	f.servers[0].full = BUTLER_FULL_BLOCK;
	f.servers[0].block_timeout_ms = 30;
	ASSERT_OK(butler_hub_new(&hub, &f.spec));
	m = fx_owned(1);
	ASSERT_OK(butler_send(hub, 0, K_OWNED, &m, sizeof m));
	m = fx_owned(2);
	/* Nobody consumes (not started): the policy's timeout expires. */
	ASSERT_ERR(
	    butler_send(hub, 0, K_OWNED, &m, sizeof m), BUTLER_ETIMEDOUT);
	/* An explicit timeout of 0 does not wait at all. */
	ASSERT_ERR(butler_send_timeout(hub, 0, K_OWNED, &m, sizeof m, 0),
	    BUTLER_ETIMEDOUT);
	cr_assert_str_eq(m.text, "msg-2");
	free(m.text);
	butler_hub_free(hub);
	cr_assert_eq(atomic_load(&fx_destroyed[1]), 1);
	cr_assert_eq(atomic_load(&fx_destroyed[2]), 0);
}

static sem_t gate;

static int
gated_num(butler_server *self, void *user, struct num *m)
{
	(void)self;
	(void)user;
	if (m->tag == 1)
		sem_wait(&gate);
	return 0;
}

struct blocked {
	butler_hub *hub;
	int rv;
	atomic_int filled; /* its lane is full: the next send blocks */
	atomic_int returned;
	bool gate_first; /* first message holds the handler at the gate */
};

/* Capacity counts per sending thread, so the thread that is to block fills
 * its own lane first. */
static void *
blocked_sender(void *arg)
{
	struct blocked *b = arg;
	struct num m = { .tag = b->gate_first ? 1 : 0 };
	unsigned i, cap = b->gate_first ? 3 : 1;

	for (i = 0; i < cap; i++) {
		ASSERT_OK(butler_send(b->hub, 0, K_NUM, &m, sizeof m));
		m.tag = 0;
	}
	atomic_store(&b->filled, 1);
	b->rv = butler_send(b->hub, 0, K_NUM, &m, sizeof m);
	atomic_store(&b->returned, 1);
	return NULL;
}

Test(channel, blocked_sender_wakes_when_room_appears, .timeout = 30)
{
	struct fx f;
	struct fx_handlers h = fx_handlers_default();
	struct blocked b = { .gate_first = true };
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	butler_stats st;
	pthread_t th;

	sem_init(&gate, 0, 0);
	fx_init(&f, 1, 2);
	f.servers[0].full = BUTLER_FULL_BLOCK;
	f.servers[0].block_timeout_ms = -1;
	h.num = gated_num;
	b.hub = fx_hub(&f, &h, NULL);
	ASSERT_OK(butler_hub_start(b.hub));
	/* The first message holds the handler; capacity counts what waits
	 * behind it, so the second and third fill the lane and the fourth
	 * waits until the handler moves on. */
	pthread_create(&th, NULL, blocked_sender, &b);
	nanosleep(&ts, NULL);
	cr_assert_eq(atomic_load(&b.returned), 0, "sender did not block");
	sem_post(&gate);
	pthread_join(th, NULL);
	ASSERT_OK(b.rv);
	ASSERT_OK(butler_hub_stop(b.hub, BUTLER_STOP_DRAIN));
	ASSERT_OK(butler_server_stats(b.hub, 0, &st));
	cr_assert_eq(st.handled, 4);
	butler_hub_free(b.hub);
}

Test(channel, stop_wakes_blocked_sender_with_eclosed, .timeout = 30)
{
	struct fx f;
	struct blocked b = { .gate_first = false };
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	pthread_t th;

	fx_init(&f, 1, 1);
	f.servers[0].full = BUTLER_FULL_BLOCK;
	ASSERT_OK(butler_hub_new(&b.hub, &f.spec));
	pthread_create(&th, NULL, blocked_sender, &b);
	/* Its lane must be full before the stop (a slow thread start would
	 * see the stop first and be refused at its first send). */
	while (!atomic_load(&b.filled))
		nanosleep(&ts, NULL);
	nanosleep(&ts, NULL);
	cr_assert_eq(atomic_load(&b.returned), 0, "sender did not block");
	ASSERT_OK(butler_hub_stop(b.hub, BUTLER_STOP_DISCARD));
	pthread_join(th, NULL);
	ASSERT_ERR(b.rv, BUTLER_ECLOSED);
	butler_hub_free(b.hub);
}

Test(channel, strerror_covers_every_code, .timeout = 10)
{
	int i;

	for (i = 0; i < BUTLER_ERR_COUNT_; i++) {
		cr_assert_str_neq(butler_strerror(i), "unknown error");
		cr_assert_str_neq(butler_errname(i), "UNKNOWN");
	}
	cr_assert_str_eq(butler_strerror(-1), "unknown error");
	cr_assert_str_eq(butler_strerror(BUTLER_ERR_COUNT_), "unknown error");
	cr_assert_str_eq(butler_errname(BUTLER_EFULL), "EFULL");
}
