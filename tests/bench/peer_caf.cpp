/*
 * tests/bench/peer_caf.cpp — the C++ Actor Framework (CAF 0.17, Debian
 * libcaf-dev): every channel is an event-based actor.
 *
 * Actors are spawned the default way, on CAF's work-stealing scheduler
 * (its own worker threads, as many as CAF chooses for the machine), not
 * detached on a thread each: that is what a CAF user gets. A plain thread
 * sends with caf::anon_send(); a handler that sends (the ping-pong, the
 * pool's answers) uses its actor's self->send(), as CAF code would. The
 * 32-byte message travels as itself (CAF_ALLOW_UNSAFE_MESSAGE_TYPE: no
 * serialisation, only local use); each send allocates CAF's mailbox
 * element.
 *
 * The harness needs messages sent before chan_start() to wait: the actor
 * exists from chan_new() on, and until chan_start() its handler holds the
 * first message (and its scheduler thread) on a condition variable, so
 * that everything after it queues in the mailbox.
 */
#include <caf/all.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <new>

#include "bench.h"

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bench_msg)

namespace
{

enum { IDLE, STARTED, STOPPING };

/* One actor system for the process, alive while a channel is. */
std::mutex sys_mu;
caf::actor_system_config *sys_cfg;
caf::actor_system *sys;
unsigned sys_users;

/* The actor whose handler this thread is running, if any. */
thread_local caf::event_based_actor *current_self;

} // namespace

struct bench_chan {
	bench_chan_cfg cfg;
	std::atomic<int> state { IDLE };
	std::mutex mu;
	std::condition_variable cv;
	caf::actor actor;

	explicit bench_chan(const bench_chan_cfg &c)
	    : cfg(c)
	{
	}

	/* gate holds a message that arrived before chan_start(). */
	void gate()
	{
		std::unique_lock<std::mutex> lock(mu);

		cv.wait(lock, [this] { return state.load() != IDLE; });
	}
};

static caf::behavior
consumer(caf::event_based_actor *self, bench_chan *c)
{
	return {
		[self, c](const bench_msg &m) {
		        if (c->state.load(std::memory_order_acquire) == IDLE)
			        c->gate();
		        if (c->state.load(std::memory_order_relaxed)
		            == STOPPING)
			        return;
		        current_self = self;
		        c->cfg.on_msg(c->cfg.user, c->cfg.instance, &m);
		        current_self = nullptr;
		},
	};
}

static int
chan_new(bench_chan **out, const bench_chan_cfg *cfg)
{
	bench_chan *c = new (std::nothrow) bench_chan(*cfg);

	if (!c)
		return -1;
	{
		std::lock_guard<std::mutex> lock(sys_mu);

		if (sys_users++ == 0) {
			sys_cfg = new caf::actor_system_config;
			sys = new caf::actor_system(*sys_cfg);
		}
	}
	c->actor = sys->spawn(consumer, c);
	*out = c;
	return 0;
}

static int
chan_start(bench_chan *c)
{
	{
		std::lock_guard<std::mutex> lock(c->mu);

		c->state.store(STARTED, std::memory_order_release);
	}
	c->cv.notify_all();
	return 0;
}

static int
chan_send(bench_chan *c, unsigned sender, const bench_msg *m, bool may_block)
{
	(void)sender;
	(void)may_block;
	if (current_self)
		current_self->send(c->actor, *m);
	else
		caf::anon_send(c->actor, *m);
	return BENCH_SENT;
}

static void
chan_free(bench_chan *c)
{
	{
		std::lock_guard<std::mutex> lock(c->mu);

		c->state.store(STOPPING);
	}
	c->cv.notify_all();
	caf::anon_send_exit(c->actor, caf::exit_reason::user_shutdown);
	{
		caf::scoped_actor self { *sys };

		self->wait_for(c->actor);
	}
	c->actor = nullptr;
	delete c;
	std::lock_guard<std::mutex> lock(sys_mu);
	if (--sys_users == 0) {
		delete sys;
		delete sys_cfg;
		sys = nullptr;
		sys_cfg = nullptr;
	}
}

static bench_peer
make_peer()
{
	bench_peer p = {};

	p.name = "caf";
	p.consumer = "CAF event-based actor on CAF's scheduler threads; "
	             "anon_send / self->send";
	p.chan_new = chan_new;
	p.chan_start = chan_start;
	p.send = chan_send;
	p.chan_free = chan_free;
	return p;
}

static const bench_peer caf_peer = make_peer();

extern "C" const bench_peer *const bench_peers[] = { &caf_peer, nullptr };
