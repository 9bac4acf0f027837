/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/peer_floor.c — the machine's floors for a round trip between
 * two threads: what no channel built on these mechanisms can beat.
 *
 *   floor_eventfd  the receiver sleeps in a blocking read() of an eventfd;
 *                  the sender writes it (the wake-up every event loop here
 *                  uses: libevent, libuv and butler all sleep in epoll on
 *                  an eventfd);
 *   floor_futex    the receiver sleeps in FUTEX_WAIT on the slot's flag;
 *                  the sender sets it and calls FUTEX_WAKE (the cheapest
 *                  kernel wake-up: no fd, no epoll);
 *   floor_spin     nobody sleeps: the receiver spins on the flag's cache
 *                  line, so a round trip is two cache-line transfers
 *                  between cores (the cache-line ping-pong floor).
 *
 * Each channel is a single slot (a flag and one message) and so runs the
 * ping-pong only, where one message is in flight at a time. The spinning
 * receiver yields the CPU every 4096 empty polls so that it cannot starve
 * its partner when the scheduler puts both on one vCPU; with a vCPU each
 * that costs nothing measurable.
 */
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"

#define CACHE_LINE 64
#define SPINS_BEFORE_YIELD 4096

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ volatile("yield")
#else
#define cpu_relax() ((void)0)
#endif

enum floor_kind { FLOOR_EVENTFD, FLOOR_FUTEX, FLOOR_SPIN };

struct bench_chan {
	struct bench_chan_cfg cfg;
	enum floor_kind kind;
	int efd;
	struct bench_thread thread;
	_Alignas(CACHE_LINE) atomic_uint full; /* 1: slot holds a message */
	atomic_bool stop;
	struct bench_msg slot;
};

static long
futex(atomic_uint *word, int op, unsigned val)
{
	return syscall(SYS_futex, (unsigned *)word, op, val, NULL, NULL, 0);
}

static void
wake(struct bench_chan *c)
{
	uint64_t one = 1;

	switch (c->kind) {
	case FLOOR_EVENTFD:
		if (write(c->efd, &one, sizeof one) < 0)
			bench_fail("eventfd write: errno %d", errno);
		break;
	case FLOOR_FUTEX:
		futex(&c->full, FUTEX_WAKE_PRIVATE, 1);
		break;
	case FLOOR_SPIN:
		break;
	}
}

/* wait_full returns once the slot is full or a stop was asked for. */
static void
wait_full(struct bench_chan *c)
{
	unsigned spins = 0;
	uint64_t v;

	while (!atomic_load_explicit(&c->full, memory_order_acquire)
	    && !atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		switch (c->kind) {
		case FLOOR_EVENTFD:
			if (read(c->efd, &v, sizeof v) < 0 && errno != EINTR)
				bench_fail("eventfd read: errno %d", errno);
			break;
		case FLOOR_FUTEX:
			futex(&c->full, FUTEX_WAIT_PRIVATE, 0);
			break;
		case FLOOR_SPIN:
			cpu_relax();
			if (++spins % SPINS_BEFORE_YIELD == 0)
				sched_yield();
			break;
		}
	}
}

static void *
consumer(void *arg)
{
	struct bench_chan *c = arg;

	for (;;) {
		struct bench_msg m;

		wait_full(c);
		if (atomic_load_explicit(&c->stop, memory_order_relaxed))
			return NULL;
		m = c->slot;
		atomic_store_explicit(&c->full, 0, memory_order_release);
		c->cfg.on_msg(c->cfg.user, c->cfg.instance, &m);
	}
}

static int
chan_new(struct bench_chan **out, const struct bench_chan_cfg *cfg,
    enum floor_kind kind)
{
	struct bench_chan *c = aligned_alloc(CACHE_LINE, sizeof *c);

	if (!c)
		return -1;
	c->cfg = *cfg;
	c->kind = kind;
	c->thread.started = false;
	atomic_init(&c->full, 0);
	atomic_init(&c->stop, false);
	/* Blocking: the receiver sleeps in read(). */
	c->efd = kind == FLOOR_EVENTFD ? eventfd(0, EFD_CLOEXEC) : -1;
	if (kind == FLOOR_EVENTFD && c->efd < 0) {
		free(c);
		return -1;
	}
	*out = c;
	return 0;
}

static int
chan_new_eventfd(struct bench_chan **out, const struct bench_chan_cfg *cfg)
{
	return chan_new(out, cfg, FLOOR_EVENTFD);
}

static int
chan_new_futex(struct bench_chan **out, const struct bench_chan_cfg *cfg)
{
	return chan_new(out, cfg, FLOOR_FUTEX);
}

static int
chan_new_spin(struct bench_chan **out, const struct bench_chan_cfg *cfg)
{
	return chan_new(out, cfg, FLOOR_SPIN);
}

static int
chan_start(struct bench_chan *c)
{
	return bench_thread_start(&c->thread, consumer, c);
}

static int
chan_send(struct bench_chan *c, unsigned sender, const struct bench_msg *m,
    bool may_block)
{
	(void)sender;
	(void)may_block;
	if (atomic_load_explicit(&c->full, memory_order_acquire))
		return BENCH_FULL;
	c->slot = *m;
	atomic_store_explicit(&c->full, 1, memory_order_release);
	wake(c);
	return BENCH_SENT;
}

static void
chan_free(struct bench_chan *c)
{
	if (c->thread.started) {
		atomic_store(&c->stop, true);
		/* The futex waiter checks `full`, so make it look non-zero. */
		atomic_store(&c->full, 1);
		wake(c);
		bench_thread_join(&c->thread);
	}
	if (c->efd >= 0)
		close(c->efd);
	free(c);
}

#define FLOOR_PEER(id, kind, label, what)                                     \
	static const struct bench_peer id = {                                 \
		.name = label,                                                \
		.consumer = what,                                             \
		.chan_new = chan_new_##kind,                                  \
		.chan_start = chan_start,                                     \
		.send = chan_send,                                            \
		.chan_free = chan_free,                                       \
		.workloads = "pingpong pingpong_load",                        \
	}

FLOOR_PEER(eventfd_peer, eventfd, "floor_eventfd",
    "floor: one-message slot; the receiver sleeps in read() on an eventfd");
FLOOR_PEER(futex_peer, futex, "floor_futex",
    "floor: one-message slot; the receiver sleeps in FUTEX_WAIT, the "
    "sender calls FUTEX_WAKE");
FLOOR_PEER(spin_peer, spin, "floor_spin",
    "floor: one-message slot; the receiver spins on its cache line "
    "(cache-line ping-pong)");

const struct bench_peer *const bench_peers[]
    = { &eventfd_peer, &futex_peer, &spin_peer, NULL };
