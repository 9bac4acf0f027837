/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/bench.h — the harness shared by every benchmark peer.
 *
 * Every peer (butler, plain libevent, ZeroMQ, nng, GLib, libuv, a
 * busy-polling ring) implements the same small channel interface below: an
 * inbound channel whose consumer runs on its own thread and calls a handler
 * for every 32-byte message. The workloads in harness.c are written once
 * against that interface, so every peer does exactly the same job with the
 * same message, and only the transport differs.
 */
#ifndef BUTLER_TESTS_BENCH_BENCH_H
#define BUTLER_TESTS_BENCH_BENCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
/* The C++ peers (moodycamel, CAF) include this header too. */
extern "C" {
#endif

/* bench_msg is the one message every peer carries: 32 bytes. */
struct bench_msg {
	uint64_t seq;       /* per-producer sequence, for the FIFO check */
	uint32_t producer;  /* producer (or pool instance) index */
	uint32_t pad;       /* keeps the layout explicit */
	uint64_t t_send_ns; /* CLOCK_MONOTONIC at send, for round trips */
	uint64_t payload; /* bench_payload(seq, producer): corruption check */
};

#ifdef __cplusplus
static_assert(sizeof(struct bench_msg) == 32, "the benchmark message is 32 B");
#else
_Static_assert(
    sizeof(struct bench_msg) == 32, "the benchmark message is 32 B");
#endif

/* bench_handler is called on the consumer's thread for every message. */
typedef void (*bench_handler)(
    void *user, unsigned instance, const struct bench_msg *m);

/* bench_chan_cfg describes one channel to create. */
struct bench_chan_cfg {
	unsigned senders;   /* distinct sending threads (sender indexes) */
	unsigned instances; /* > 1 only for peers with native pools */
	unsigned instance;  /* passed to the handler (non-native pools) */
	size_t capacity;    /* messages the channel must be able to queue */
	bench_handler on_msg;
	void *user;
};

/* Results of bench_peer.send. */
enum bench_send_result {
	BENCH_SENT = 0,
	BENCH_FULL = 1, /* bounded and full: the harness retries */
	BENCH_ERROR = 2 /* the transport failed: the case fails */
};

struct bench_chan;
struct bench_offload;

/*
 * bench_peer is one competitor. chan_new creates a channel without starting
 * its consumer (messages sent before chan_start must queue), chan_start
 * starts the consumer thread, send may be called from any thread but each
 * `sender` index from one thread at a time, and chan_free stops the
 * consumer (queued messages may be dropped), joins it and frees everything.
 */
struct bench_peer {
	const char *name;
	const char *consumer; /* one line: what the consumer does */
	bool native_pool;     /* chan_new honours cfg->instances > 1 */
	int (*chan_new)(
	    struct bench_chan **out, const struct bench_chan_cfg *cfg);
	int (*chan_start)(struct bench_chan *c);
	/* may_block: the peer may sleep until there is room (never in the
	 * memory workload, which has no consumer). */
	int (*send)(struct bench_chan *c, unsigned sender,
	    const struct bench_msg *m, bool may_block);
	void (*chan_free)(struct bench_chan *c);
	/* Optional: butler's request/reply round trip; fills rtt_ns[n] and
	 * calls bench_steady() when the warm-up ends and when it is done. */
	int (*reqrep)(uint64_t warmup, uint64_t n, uint64_t *rtt_ns);
	/* Optional, same contract: a blocking call from a plain thread to a
	 * server that answers at once (ZeroMQ REQ/REP; butler_call_wait). */
	int (*callwait)(uint64_t warmup, uint64_t n, uint64_t *rtt_ns);
	/* Optional, same contract: a request answered later, from another
	 * handler of the same server (butler's deferred answers). */
	int (*deferred)(uint64_t warmup, uint64_t n, uint64_t *rtt_ns);
	/* Optional: requests offloaded from a GLib main loop to a pool of
	 * worker threads, each answer coming back on the loop. */
	int (*offload)(struct bench_offload *o);
	/* Optional: space-separated workloads the peer runs, overriding the
	 * default (every channel workload when chan_new is set, plus one per
	 * optional hook above). */
	const char *workloads;
};

/* bench_peers is each peer executable's NULL-terminated list. */
extern const struct bench_peer *const bench_peers[];

/* bench_now_ns returns CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t
bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* bench_payload is what a message with this seq and producer carries. */
static inline uint64_t
bench_payload(uint64_t seq, uint32_t producer)
{
	return (seq * 0x9e3779b97f4a7c15u) ^ producer;
}

/* bench_fail prints a diagnostic naming the peer and exits with status 1. */
void bench_fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/*
 * bench_steady marks the start (true) and the end (false) of the
 * steady-state phase, which --count measures. Any thread.
 */
void bench_steady(bool begin);

/*
 * bench_note_full counts a send that found the channel full, for peers that
 * wait for room themselves instead of returning BENCH_FULL. Any thread.
 */
void bench_note_full(void);

/*
 * bench_thread is a peer's consumer thread: the loop the peer runs on a
 * thread of its own, the same way for every peer that has one.
 */
struct bench_thread {
	pthread_t thread;
	bool started;
};

/* bench_thread_start runs fn(arg) on a new thread; 0 on success. */
int bench_thread_start(struct bench_thread *t, void *(*fn)(void *), void *arg);

/* bench_thread_join joins t if it was started and says whether it was. */
bool bench_thread_join(struct bench_thread *t);

/* bench_xcalloc is calloc that fails the run instead of returning NULL. */
void *bench_xcalloc(size_t n, size_t size);

/*
 * bench_offload drives the offload workloads, the same for every peer: the
 * peer's loop thread keeps `inflight` requests outstanding, taking each
 * request from bench_offload_next() and handing each answer, on the loop
 * thread, to bench_offload_done(), until that returns true. A worker
 * answers with a copy of the request. Answers may come back in any order
 * (the pool has several workers); each must come exactly once, intact.
 */
#define BENCH_OFFLOAD_WORKERS 2   /* every peer's pool has two workers */
#define BENCH_OFFLOAD_INFLIGHT 64 /* requests in flight, offload_thru */

struct bench_offload {
	uint64_t warm, n;  /* requests: warm-up, then measured */
	unsigned inflight; /* requests outstanding at once */
	unsigned workers;  /* the pool's size */
	/* Private to harness.c. */
	uint64_t *rtt_ns; /* n round trips when inflight == 1 */
	uint64_t issued, answered, bad, t0, t1;
	uint8_t *seen;
};

/* bench_offload_next fills *m with the next request and returns true, or
 * returns false when every request has been issued. The loop thread. */
bool bench_offload_next(struct bench_offload *o, struct bench_msg *m);

/* bench_offload_done checks one answer and returns true when it was the
 * last one (the peer then leaves its loop). The loop thread. */
bool bench_offload_done(struct bench_offload *o, const struct bench_msg *m);

#ifdef __cplusplus
}
#endif

#endif /* BUTLER_TESTS_BENCH_BENCH_H */
