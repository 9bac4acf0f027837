/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/peer_libevent.c — a plain libevent loop fed by a
 * mutex-protected queue and an eventfd, the two baselines of issue 3:
 *
 *   libevent_every  writes the eventfd for every message (a);
 *   libevent_empty  writes it only when the queue was empty (b).
 *
 * The consumer is a sleeping event_base_dispatch() loop with the eventfd
 * registered EV_READ|EV_PERSIST; each wake-up reads the eventfd, swaps out
 * the whole queue and handles it. libevent's own cross-thread notification
 * (evthread + event_active) is not used: the loop is owned by one thread.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bench.h"
#include "mutexq.h"

struct bench_chan {
	struct bench_chan_cfg cfg;
	bool every;
	struct mutexq q;
	struct mutexq_batch batch;
	int efd;
	atomic_bool stop;
	struct event_base *base;
	struct event *ev;
	struct bench_thread thread;
};

static void
wake(struct bench_chan *c)
{
	uint64_t one = 1;

	/* EAGAIN would mean the counter is full, i.e. already signalled. */
	if (write(c->efd, &one, sizeof one) < 0 && errno != EAGAIN)
		bench_fail("eventfd write: errno %d", errno);
}

static void
on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct bench_chan *c = arg;
	uint64_t v;
	size_t n;

	(void)what;
	/* Consume the token first, then drain: a message pushed after the
	 * swap below re-arms the eventfd, so nothing is stranded. */
	if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN)
		bench_fail("eventfd read: errno %d", errno);
	if (atomic_load(&c->stop)) {
		event_base_loopbreak(c->base);
		return;
	}
	n = mutexq_take(&c->q, &c->batch);
	for (size_t i = 0; i < n; i++)
		c->cfg.on_msg(c->cfg.user, c->cfg.instance, &c->batch.msgs[i]);
}

static int
chan_new(struct bench_chan **out, const struct bench_chan_cfg *cfg, bool every)
{
	struct bench_chan *c = bench_xcalloc(1, sizeof *c);

	c->cfg = *cfg;
	c->every = every;
	mutexq_init(&c->q, &c->batch);
	c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	c->base = event_base_new();
	if (c->efd < 0 || !c->base)
		return -1;
	c->ev
	    = event_new(c->base, c->efd, EV_READ | EV_PERSIST, on_readable, c);
	if (!c->ev || event_add(c->ev, NULL))
		return -1;
	*out = c;
	return 0;
}

static int
chan_new_every(struct bench_chan **out, const struct bench_chan_cfg *cfg)
{
	return chan_new(out, cfg, true);
}

static int
chan_new_empty(struct bench_chan **out, const struct bench_chan_cfg *cfg)
{
	return chan_new(out, cfg, false);
}

static void *
consumer(void *arg)
{
	struct bench_chan *c = arg;

	event_base_dispatch(c->base);
	return NULL;
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
	bool was_empty = mutexq_push(&c->q, m);

	(void)sender;
	(void)may_block;
	if (c->every || was_empty)
		wake(c);
	return BENCH_SENT;
}

static void
chan_free(struct bench_chan *c)
{
	if (c->thread.started) {
		atomic_store(&c->stop, true);
		wake(c);
		bench_thread_join(&c->thread);
	}
	event_free(c->ev);
	event_base_free(c->base);
	close(c->efd);
	mutexq_release(&c->q, &c->batch);
	free(c);
}

static const struct bench_peer every = {
	.name = "libevent_every",
	.consumer = "libevent loop; mutex queue; eventfd written per message",
	.chan_new = chan_new_every,
	.chan_start = chan_start,
	.send = chan_send,
	.chan_free = chan_free,
};

static const struct bench_peer empty = {
	.name = "libevent_empty",
	.consumer = "libevent loop; mutex queue; eventfd written on "
	            "empty->non-empty",
	.chan_new = chan_new_empty,
	.chan_start = chan_start,
	.send = chan_send,
	.chan_free = chan_free,
};

const struct bench_peer *const bench_peers[] = { &every, &empty, NULL };
