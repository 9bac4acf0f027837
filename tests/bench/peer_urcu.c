/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/peer_urcu.c — liburcu's wait-free concurrent queue
 * (wfcqueue, Debian liburcu-dev) feeding a libevent loop.
 *
 * Producers allocate a node holding the message and cds_wfcq_enqueue() it:
 * wait-free, and it reports whether the queue was empty before, so the
 * producer writes the loop's eventfd only on empty -> non-empty. The
 * consumer is a sleeping event_base_dispatch() loop; each wake-up reads
 * the eventfd, splices the whole queue out in O(1) and handles and frees
 * every node. Built with _LGPL_SOURCE, so the queue operations are liburcu's
 * inline versions, as its documentation recommends for speed. The intrusive
 * queue has no storage of its own: one malloc and one free per message
 * (the free on another thread than the malloc) are part of the design.
 */
#define _LGPL_SOURCE
#include <errno.h>
#include <event2/event.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <urcu/wfcqueue.h>

#include "bench.h"

struct unode {
	struct cds_wfcq_node node;
	struct bench_msg m;
};

struct bench_chan {
	struct bench_chan_cfg cfg;
	struct __cds_wfcq_head head; /* one consumer: no dequeue lock */
	struct cds_wfcq_tail tail;
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

	if (write(c->efd, &one, sizeof one) < 0 && errno != EAGAIN)
		bench_fail("eventfd write: errno %d", errno);
}

/* drain handles (when `handle`) and frees everything queued now. */
static void
drain(struct bench_chan *c, bool handle)
{
	struct __cds_wfcq_head lhead;
	struct cds_wfcq_tail ltail;
	struct cds_wfcq_node *node, *next;

	__cds_wfcq_init(&lhead, &ltail);
	__cds_wfcq_splice_blocking(&lhead, &ltail, &c->head, &c->tail);
	__cds_wfcq_for_each_blocking_safe(&lhead, &ltail, node, next)
	{
		struct unode *u = caa_container_of(node, struct unode, node);

		if (handle)
			c->cfg.on_msg(c->cfg.user, c->cfg.instance, &u->m);
		free(u);
	}
}

static void
on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct bench_chan *c = arg;
	uint64_t v;

	(void)what;
	/* Consume the token first: an enqueue onto the queue this drain
	 * empties re-arms the eventfd. */
	if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN)
		bench_fail("eventfd read: errno %d", errno);
	if (atomic_load(&c->stop)) {
		event_base_loopbreak(c->base);
		return;
	}
	drain(c, true);
}

static int
chan_new(struct bench_chan **out, const struct bench_chan_cfg *cfg)
{
	struct bench_chan *c = bench_xcalloc(1, sizeof *c);

	c->cfg = *cfg;
	__cds_wfcq_init(&c->head, &c->tail);
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
	struct unode *u = malloc(sizeof *u);

	(void)sender;
	(void)may_block;
	if (!u)
		return BENCH_ERROR;
	cds_wfcq_node_init(&u->node);
	u->m = *m;
	/* false: the queue was empty, so the consumer may be asleep. */
	if (!cds_wfcq_enqueue(&c->head, &c->tail, &u->node))
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
	drain(c, false);
	event_free(c->ev);
	event_base_free(c->base);
	close(c->efd);
	free(c);
}

static const struct bench_peer urcu = {
	.name = "urcu_wfcq",
	.consumer = "libevent loop; liburcu wfcqueue (a malloc'd node per "
	            "message); eventfd on empty->non-empty",
	.chan_new = chan_new,
	.chan_start = chan_start,
	.send = chan_send,
	.chan_free = chan_free,
};

const struct bench_peer *const bench_peers[] = { &urcu, NULL };
