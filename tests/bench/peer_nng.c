/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/peer_nng.c — nng inproc pair0.
 *
 * nng sockets are thread-safe, so every sending thread shares the one
 * dialing socket; the consumer is nng's natural receiver, a blocking
 * nng_recv() loop (nng runs its own threads underneath). With nng's default
 * buffers of zero every send is a rendezvous with the receiver (about 40 us
 * per message here), so both sides get nng's largest buffers, as an
 * application chasing throughput would configure them.
 */
#include <nng/nng.h>
#include <nng/protocol/pair0/pair.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

/* NNG_MAXBUF: nng refuses socket buffers larger than 8192 messages. */
#define NNG_BUF 8192

struct bench_chan {
	struct bench_chan_cfg cfg;
	nng_socket rx, tx;
	struct bench_thread thread;
};

static void *
consumer(void *arg)
{
	struct bench_chan *c = arg;

	for (;;) {
		struct bench_msg m;
		size_t len = sizeof m;
		int rv = nng_recv(c->rx, &m, &len, 0);

		if (rv == NNG_ECLOSED)
			break;
		if (rv)
			bench_fail("nng_recv: %s", nng_strerror(rv));
		if (len != sizeof m)
			bench_fail("nng: received %zu bytes", len);
		c->cfg.on_msg(c->cfg.user, c->cfg.instance, &m);
	}
	return NULL;
}

static int
chan_new(struct bench_chan **out, const struct bench_chan_cfg *cfg)
{
	struct bench_chan *c = bench_xcalloc(1, sizeof *c);
	char url[64];
	int rv;

	c->cfg = *cfg;
	/* inproc names are process-wide: the address makes them unique. */
	snprintf(url, sizeof url, "inproc://bench-%p", (void *)c);
	if ((rv = nng_pair0_open(&c->rx)) || (rv = nng_pair0_open(&c->tx))
	    || (rv = nng_socket_set_int(c->rx, NNG_OPT_RECVBUF, NNG_BUF))
	    || (rv = nng_socket_set_int(c->tx, NNG_OPT_SENDBUF, NNG_BUF))
	    || (rv = nng_listen(c->rx, url, NULL, 0))
	    || (rv = nng_dial(c->tx, url, NULL, 0)))
		bench_fail("nng: %s", nng_strerror(rv));
	*out = c;
	return 0;
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
	/* nng_send copies the buffer; the cast drops a const nng lacks. */
	int rv = nng_send(
	    c->tx, (void *)m, sizeof *m, may_block ? 0 : NNG_FLAG_NONBLOCK);

	(void)sender;
	if (rv == NNG_EAGAIN)
		return BENCH_FULL;
	return rv ? BENCH_ERROR : BENCH_SENT;
}

static void
chan_free(struct bench_chan *c)
{
	/* Closing the receiving socket ends the blocked nng_recv(). */
	nng_close(c->rx);
	bench_thread_join(&c->thread);
	nng_close(c->tx);
	free(c);
}

static const struct bench_peer nng = {
	.name = "nng",
	.consumer = "blocking nng_recv loop, not an event loop; one shared "
	            "pair0 socket (thread-safe)",
	.chan_new = chan_new,
	.chan_start = chan_start,
	.send = chan_send,
	.chan_free = chan_free,
};

const struct bench_peer *const bench_peers[] = { &nng, NULL };
