/*
 * tests/bench/peer_moodycamel.cpp — moodycamel::BlockingConcurrentQueue
 * (Debian libconcurrentqueue-dev), the lock-free MPMC queue C++ users
 * reach for first.
 *
 * Used as its README recommends for speed: one ProducerToken per sending
 * thread (each producer then has its own sub-queue, FIFO per producer) and
 * a ConsumerToken on the consumer, which takes up to 256 messages per
 * wait_dequeue_bulk(). The consumer is not an event loop: it blocks in
 * the queue's own semaphore (which spins briefly, then sleeps on a futex).
 * enqueue() is unbounded: it allocates blocks as the queue grows and reuses
 * them once warm. The consumer stops on a sentinel message.
 */
#include <concurrentqueue/blockingconcurrentqueue.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <new>
#include <vector>

#include "bench.h"

namespace
{

constexpr uint32_t STOP_PRODUCER = UINT32_MAX;
constexpr size_t BULK = 256;

} // namespace

struct bench_chan {
	bench_chan_cfg cfg;
	moodycamel::BlockingConcurrentQueue<bench_msg> q;
	std::vector<std::unique_ptr<moodycamel::ProducerToken>> tokens;
	bench_thread thread {};

	/* The default construction: blocks are allocated as the queue
	 * grows and reused once warm. (Preallocating for the requested
	 * capacity made no difference to the allocations per message and
	 * doubled the memory per queued message.) */
	explicit bench_chan(const bench_chan_cfg &c)
	    : cfg(c)
	{
		for (unsigned i = 0; i < c.senders; i++)
			tokens.emplace_back(new moodycamel::ProducerToken(q));
	}
};

static void *
consumer(void *arg)
{
	bench_chan *c = static_cast<bench_chan *>(arg);
	moodycamel::ConsumerToken tok(c->q);
	bench_msg buf[BULK];

	for (;;) {
		size_t n = c->q.wait_dequeue_bulk(tok, buf, BULK);

		for (size_t i = 0; i < n; i++) {
			if (buf[i].producer == STOP_PRODUCER)
				return nullptr;
			c->cfg.on_msg(c->cfg.user, c->cfg.instance, &buf[i]);
		}
	}
}

static int
chan_new(bench_chan **out, const bench_chan_cfg *cfg)
{
	bench_chan *c = new (std::nothrow) bench_chan(*cfg);

	if (!c)
		return -1;
	*out = c;
	return 0;
}

static int
chan_start(bench_chan *c)
{
	return bench_thread_start(&c->thread, consumer, c);
}

static int
chan_send(bench_chan *c, unsigned sender, const bench_msg *m, bool may_block)
{
	(void)may_block;
	return c->q.enqueue(*c->tokens[sender], *m) ? BENCH_SENT : BENCH_ERROR;
}

static void
chan_free(bench_chan *c)
{
	if (c->thread.started) {
		bench_msg stop = {};

		stop.producer = STOP_PRODUCER;
		/* Without a token: an implicit producer for this thread. */
		if (!c->q.enqueue(stop))
			bench_fail("moodycamel: cannot enqueue the stop");
		bench_thread_join(&c->thread);
	}
	delete c;
}

static bench_peer
make_peer()
{
	bench_peer p = {};

	p.name = "moodycamel";
	p.consumer = "blocking wait_dequeue_bulk on a moodycamel "
	             "BlockingConcurrentQueue, not a loop; a ProducerToken "
	             "per sender";
	p.chan_new = chan_new;
	p.chan_start = chan_start;
	p.send = chan_send;
	p.chan_free = chan_free;
	return p;
}

static const bench_peer moodycamel_peer = make_peer();

extern "C" const bench_peer *const bench_peers[]
    = { &moodycamel_peer, nullptr };
