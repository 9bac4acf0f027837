/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/peer_bridge.c — bridge_bench: servers/bridge against a plain
 * nng pair and a ZeroMQ pair, over loopback TCP and ipc, moving the same
 * 32-byte message (bench.h's struct bench_msg; on the bridge, bb.msg of
 * bridge_bench.json, 32 bytes on the wire too) between two endpoints of
 * one process (so that the three share the machine alike):
 *
 * - thru: one sending thread, one receiving one; messages per second from
 *   the first send to the last receipt, after a warm-up, every message
 *   checked for order and content. The bridge's sender calls
 *   bb_send_sink_msg() (retrying on BUTLER_EFULL: its backpressure), its
 *   receiver is the handler of the remote `sink`; nng's is nng_send() and
 *   a blocking nng_recv() loop on pair1 sockets with nng's largest
 *   buffers, as tests/bench/peer_nng.c; ZeroMQ's zmq_send() and zmq_recv()
 *   on PAIR sockets, high-water marks unlimited, as peer_zmq.c.
 * - rtt: a request and its answer, one at a time: the bridge's
 *   bb_call_echo_ping_wait() from a plain thread to the remote `echo`; for
 *   nng and ZeroMQ the same bytes sent and echoed back by a thread on the
 *   other socket. Median and 99th percentile.
 *
 *   bridge_bench [--reps N] [--quick] [--n N] [--rtt N]
 *
 * It prints a markdown table (median, min-max over the repetitions, peers
 * alternating) and the ratios the issue asks for, plus "result," CSV
 * lines for tests/bench/run. It exits 1 if a message is lost, reordered or
 * corrupted; it asserts nothing about time.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <zmq.h>

#include <butler/bridge.h>

#include "bench.h"
#include "bridge_bench.butler.h"

#define SECRET "bridge-bench-secret-0123456789"

static void
die(const char *what, const char *why)
{
	fprintf(stderr, "bridge_bench: %s: %s\n", what, why);
	exit(1);
}

void
bench_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static struct bench_msg
make(uint64_t seq)
{
	return (struct bench_msg) { .seq = seq,
		.producer = 0,
		.t_send_ns = bench_now_ns(),
		.payload = bench_payload(seq, 0) };
}

static void
check(const struct bench_msg *m, uint64_t want, const char *who)
{
	if (m->seq != want || m->payload != bench_payload(m->seq, 0)) {
		fprintf(stderr,
		    "bridge_bench: %s: message %" PRIu64 " where %" PRIu64
		    " was due (or corrupted)\n",
		    who, m->seq, want);
		exit(1);
	}
}

/* ---- the bridge -------------------------------------------------------- */

static unsigned spin_us;

struct bridge_pair {
	butler_hub *a, *b;
	butler_bridge *ba, *bb;
};

static struct {
	pthread_mutex_t mtx;
	pthread_cond_t cond;
	uint64_t next, until, t_last;
} sink = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0 };

static int
on_msg(butler_server *self, void *user, struct bb_msg *m)
{
	struct bench_msg b
	    = { m->seq, m->producer, 0, m->t_send_ns, m->payload };

	(void)self;
	(void)user;
	check(&b, sink.next, "bridge");
	if (++sink.next == sink.until) {
		pthread_mutex_lock(&sink.mtx);
		sink.t_last = bench_now_ns();
		pthread_cond_signal(&sink.cond);
		pthread_mutex_unlock(&sink.mtx);
	}
	return BUTLER_OK;
}

static int
on_ping(butler_server *self, void *user, struct bb_ping *p)
{
	(void)user;
	return bb_reply_ping(self,
	    &(struct bb_msg) {
	        p->seq, p->producer, 0, p->t_send_ns, p->payload });
}

static void
quiet(butler_log_level level, const char *msg, void *user)
{
	(void)user;
	if (level <= BUTLER_LOG_WARN)
		fprintf(stderr, "bridge_bench: %s\n", msg);
}

static void
bridge_up(struct bridge_pair *p, const char *listen)
{
	static const char *const expose[] = { "sink", "echo" };
	butler_bridge_config c = { .secret = SECRET,
		.secret_len = strlen(SECRET),
		.log = quiet,
		.log_level = BUTLER_LOG_WARN };
	butler_bridge_remote remote[2];
	const char *url;
	int rv;

	if ((rv = butler_hub_new(&p->b, &bb_spec)) != BUTLER_OK
	    || (rv = butler_hub_new(&p->a, &bb_spec)) != BUTLER_OK)
		die("hub", butler_strerror(rv));
	for (int i = 0; i < 2; i++) {
		butler_hub *h = i ? p->a : p->b;

		bb_sink_register(
		    h, &(struct bb_sink_handlers) { .msg = on_msg }, NULL);
		bb_echo_register(
		    h, &(struct bb_echo_handlers) { .ping = on_ping }, NULL);
	}
	/* --spin: every server of both hubs watches its inbox for a while
	 * before it sleeps (butler_hub_set_spin()). */
	for (int i = 0; spin_us > 0 && i < 2; i++) {
		butler_hub *h = i ? p->a : p->b;

		for (unsigned s = 0; s < butler_server_count(h); s++)
			(void)butler_hub_set_spin(h, s, spin_us);
	}
	c.listen = &listen;
	c.n_listen = 1;
	c.expose = expose;
	c.n_expose = 2;
	if ((rv = butler_bridge_new(&p->bb, p->b, &bb_spec, &c)) != BUTLER_OK
	    || (rv = butler_hub_start(p->b)) != BUTLER_OK)
		die("bridge B", butler_strerror(rv));
	url = butler_bridge_url(p->bb, 0);
	remote[0] = (butler_bridge_remote) { "sink", url };
	remote[1] = (butler_bridge_remote) { "echo", url };
	c.n_listen = 0;
	c.n_expose = 0;
	c.remote = remote;
	c.n_remote = 2;
	if ((rv = butler_bridge_new(&p->ba, p->a, &bb_spec, &c)) != BUTLER_OK
	    || (rv = butler_hub_start(p->a)) != BUTLER_OK
	    || (rv = butler_bridge_wait(p->ba, 10000)) != BUTLER_OK)
		die("bridge A", butler_strerror(rv));
}

static void
bridge_down(struct bridge_pair *p)
{
	butler_hub_stop(p->a, BUTLER_STOP_DRAIN);
	butler_hub_free(p->a);
	butler_bridge_free(p->ba);
	butler_hub_stop(p->b, BUTLER_STOP_DRAIN);
	butler_hub_free(p->b);
	butler_bridge_free(p->bb);
}

/* Sends seq [from, to) and waits until the sink has them all. */
static uint64_t
bridge_send(struct bridge_pair *p, uint64_t from, uint64_t to)
{
	uint64_t t0 = bench_now_ns();

	pthread_mutex_lock(&sink.mtx);
	sink.until = to;
	sink.t_last = 0;
	pthread_mutex_unlock(&sink.mtx);
	for (uint64_t s = from; s < to; s++) {
		struct bench_msg m = make(s);
		struct bb_msg b
		    = { m.seq, m.producer, 0, m.t_send_ns, m.payload };
		int rv;

		/* The sink's spec says "full": "block": a full proxy
		 * inbox (backpressure) waits here for room, as zmq_send()
		 * and nng_send() wait. */
		rv = bb_send_sink_msg(p->a, &b);
		if (rv != BUTLER_OK)
			die("send", butler_strerror(rv));
	}
	pthread_mutex_lock(&sink.mtx);
	while (sink.t_last == 0)
		pthread_cond_wait(&sink.cond, &sink.mtx);
	pthread_mutex_unlock(&sink.mtx);
	return sink.t_last - t0;
}

static double
bridge_thru(const char *listen, uint64_t n)
{
	struct bridge_pair p;
	uint64_t ns;

	sink.next = 0;
	bridge_up(&p, listen);
	(void)bridge_send(&p, 0, n / 10);
	ns = bridge_send(&p, n / 10, n / 10 + n);
	bridge_down(&p);
	return (double)n * 1e9 / (double)ns;
}

static void
bridge_rtt(const char *listen, uint64_t n, uint64_t *rtt)
{
	struct bridge_pair p;

	bridge_up(&p, listen);
	for (uint64_t i = 0; i < n + n / 10; i++) {
		struct bench_msg m = make(i);
		struct bb_msg reply;
		uint64_t t0 = bench_now_ns();
		int rv = bb_call_echo_ping_wait(p.a,
		    &(struct bb_ping) { m.seq, 0, 0, m.t_send_ns, m.payload },
		    5000, &reply);

		if (rv != BUTLER_OK)
			die("call", butler_strerror(rv));
		if (reply.seq != i || reply.payload != m.payload)
			die("call", "wrong answer");
		if (i >= n / 10)
			rtt[i - n / 10] = bench_now_ns() - t0;
	}
	bridge_down(&p);
}

/* ---- nng pair1 ---------------------------------------------------------- */

struct nng_pair {
	nng_socket rx, tx;
	pthread_t t;
	uint64_t n, t_last;
	bool echo;
};

static void
nng_check(int rv, const char *what)
{
	if (rv != 0)
		die(what, nng_strerror(rv));
}

static void
nng_up(struct nng_pair *p, const char *listen)
{
	nng_listener l;
	char url[256];
	int port = 0;

	nng_check(nng_pair1_open(&p->rx), "nng_pair1_open");
	nng_check(nng_pair1_open(&p->tx), "nng_pair1_open");
	nng_check(nng_socket_set_int(p->rx, NNG_OPT_RECVBUF, 8192), "recvbuf");
	nng_check(nng_socket_set_int(p->tx, NNG_OPT_SENDBUF, 8192), "sendbuf");
	nng_check(nng_socket_set_int(p->rx, NNG_OPT_SENDBUF, 8192), "sendbuf");
	nng_check(nng_socket_set_int(p->tx, NNG_OPT_RECVBUF, 8192), "recvbuf");
	nng_check(nng_listen(p->rx, listen, &l, 0), "nng_listen");
	snprintf(url, sizeof url, "%s", listen);
	if (strncmp(listen, "tcp://", 6) == 0) {
		nng_check(
		    nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port),
		    "bound port");
		snprintf(url, sizeof url, "tcp://127.0.0.1:%d", port);
	}
	nng_check(nng_dial(p->tx, url, NULL, 0), "nng_dial");
}

static void *
nng_receiver(void *arg)
{
	struct nng_pair *p = arg;

	for (uint64_t i = 0; i < p->n; i++) {
		struct bench_msg m;
		size_t len = sizeof m;

		nng_check(nng_recv(p->rx, &m, &len, 0), "nng_recv");
		if (len != sizeof m)
			die("nng", "short message");
		if (p->echo)
			nng_check(
			    nng_send(p->rx, &m, sizeof m, 0), "nng_send");
		else
			check(&m, i, "nng");
	}
	p->t_last = bench_now_ns();
	return NULL;
}

static double
nng_thru(const char *listen, uint64_t n)
{
	struct nng_pair p = { .n = n / 10 + n };
	uint64_t t0 = 0;

	nng_up(&p, listen);
	pthread_create(&p.t, NULL, nng_receiver, &p);
	for (uint64_t s = 0; s < p.n; s++) {
		struct bench_msg m = make(s);

		if (s == n / 10)
			t0 = bench_now_ns(); /* the warm-up is ahead */
		nng_check(nng_send(p.tx, &m, sizeof m, 0), "nng_send");
	}
	pthread_join(p.t, NULL);
	nng_close(p.tx);
	nng_close(p.rx);
	return (double)n * 1e9 / (double)(p.t_last - t0);
}

static void
nng_rtt(const char *listen, uint64_t n, uint64_t *rtt)
{
	struct nng_pair p = { .n = n / 10 + n, .echo = true };

	nng_up(&p, listen);
	pthread_create(&p.t, NULL, nng_receiver, &p);
	for (uint64_t i = 0; i < p.n; i++) {
		struct bench_msg m = make(i), back;
		size_t len = sizeof back;
		uint64_t t0 = bench_now_ns();

		nng_check(nng_send(p.tx, &m, sizeof m, 0), "nng_send");
		nng_check(nng_recv(p.tx, &back, &len, 0), "nng_recv");
		check(&back, i, "nng echo");
		if (i >= n / 10)
			rtt[i - n / 10] = bench_now_ns() - t0;
	}
	pthread_join(p.t, NULL);
	nng_close(p.tx);
	nng_close(p.rx);
}

/* ---- ZeroMQ PAIR ---------------------------------------------------------
 */

struct zmq_pair {
	void *ctx, *rx, *tx;
	pthread_t t;
	uint64_t n, t_last;
	bool echo;
};

static void
zmq_up(struct zmq_pair *p, const char *listen)
{
	char url[256];
	size_t len = sizeof url;
	int zero = 0;

	p->ctx = zmq_ctx_new();
	p->rx = zmq_socket(p->ctx, ZMQ_PAIR);
	p->tx = zmq_socket(p->ctx, ZMQ_PAIR);
	zmq_setsockopt(p->rx, ZMQ_RCVHWM, &zero, sizeof zero);
	zmq_setsockopt(p->tx, ZMQ_SNDHWM, &zero, sizeof zero);
	zmq_setsockopt(p->rx, ZMQ_SNDHWM, &zero, sizeof zero);
	zmq_setsockopt(p->tx, ZMQ_RCVHWM, &zero, sizeof zero);
	if (zmq_bind(p->rx, listen) != 0)
		die("zmq_bind", zmq_strerror(errno));
	zmq_getsockopt(p->rx, ZMQ_LAST_ENDPOINT, url, &len);
	if (zmq_connect(p->tx, url) != 0)
		die("zmq_connect", zmq_strerror(errno));
}

static void
zmq_down(struct zmq_pair *p)
{
	int zero = 0;

	zmq_setsockopt(p->rx, ZMQ_LINGER, &zero, sizeof zero);
	zmq_setsockopt(p->tx, ZMQ_LINGER, &zero, sizeof zero);
	zmq_close(p->tx);
	zmq_close(p->rx);
	zmq_ctx_term(p->ctx);
}

static void *
zmq_receiver(void *arg)
{
	struct zmq_pair *p = arg;

	for (uint64_t i = 0; i < p->n; i++) {
		struct bench_msg m;

		if (zmq_recv(p->rx, &m, sizeof m, 0) != (int)sizeof m)
			die("zmq_recv", zmq_strerror(errno));
		if (p->echo) {
			if (zmq_send(p->rx, &m, sizeof m, 0) != (int)sizeof m)
				die("zmq_send", zmq_strerror(errno));
		} else {
			check(&m, i, "zmq");
		}
	}
	p->t_last = bench_now_ns();
	return NULL;
}

static double
zmq_thru(const char *listen, uint64_t n)
{
	struct zmq_pair p = { .n = n / 10 + n };
	uint64_t t0 = 0;

	zmq_up(&p, listen);
	pthread_create(&p.t, NULL, zmq_receiver, &p);
	for (uint64_t s = 0; s < p.n; s++) {
		struct bench_msg m = make(s);

		if (s == n / 10)
			t0 = bench_now_ns();
		if (zmq_send(p.tx, &m, sizeof m, 0) != (int)sizeof m)
			die("zmq_send", zmq_strerror(errno));
	}
	pthread_join(p.t, NULL);
	zmq_down(&p);
	return (double)n * 1e9 / (double)(p.t_last - t0);
}

static void
zmq_rtt(const char *listen, uint64_t n, uint64_t *rtt)
{
	struct zmq_pair p = { .n = n / 10 + n, .echo = true };

	zmq_up(&p, listen);
	pthread_create(&p.t, NULL, zmq_receiver, &p);
	for (uint64_t i = 0; i < p.n; i++) {
		struct bench_msg m = make(i), back;
		uint64_t t0 = bench_now_ns();

		if (zmq_send(p.tx, &m, sizeof m, 0) != (int)sizeof m
		    || zmq_recv(p.tx, &back, sizeof back, 0)
		        != (int)sizeof back)
			die("zmq", zmq_strerror(errno));
		check(&back, i, "zmq echo");
		if (i >= n / 10)
			rtt[i - n / 10] = bench_now_ns() - t0;
	}
	pthread_join(p.t, NULL);
	zmq_down(&p);
}

/* ---- the table ------------------------------------------------------------
 */

enum { PEERS = 3, TRANSPORTS = 2, MAX_REPS = 15 };
static const char *const peer_name[PEERS] = { "bridge", "nng", "zmq" };
static const char *const transport[TRANSPORTS] = { "tcp", "ipc" };

struct cell {
	double v[MAX_REPS];
	unsigned n;
};

static double
median(struct cell *c, double *lo, double *hi)
{
	double s[MAX_REPS];

	if (c->n == 0) {
		*lo = *hi = 0;
		return 0; /* not run (--only) */
	}
	memcpy(s, c->v, c->n * sizeof *s);
	for (unsigned i = 1; i < c->n; i++)
		for (unsigned j = i; j > 0 && s[j - 1] > s[j]; j--) {
			double t = s[j];

			s[j] = s[j - 1];
			s[j - 1] = t;
		}
	*lo = s[0];
	*hi = s[c->n - 1];
	return c->n % 2 ? s[c->n / 2] : (s[c->n / 2 - 1] + s[c->n / 2]) / 2;
}

static const char *
listen_url(int peer, int tr, char *buf, size_t len)
{
	if (tr == 0)
		snprintf(buf, len,
		    peer == 2 ? "tcp://127.0.0.1:*" : "tcp://127.0.0.1:0");
	else
		snprintf(buf, len, "ipc:///tmp/bridge-bench-%s-%d.sock",
		    peer_name[peer], (int)getpid());
	return buf;
}

int
main(int argc, char **argv)
{
	static struct cell thru[PEERS][TRANSPORTS], p50[PEERS][TRANSPORTS],
	    p99[PEERS][TRANSPORTS];
	uint64_t n = 1000000, n_rtt = 20000, *rtt;
	unsigned reps = 3;
	const char *only = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			n = 20000;
			n_rtt = 300;
			reps = 1;
		} else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
			reps = (unsigned)atoi(argv[++i]);
		} else if (strcmp(argv[i], "--n") == 0 && i + 1 < argc) {
			n = strtoull(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--rtt") == 0 && i + 1 < argc) {
			n_rtt = strtoull(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--spin") == 0 && i + 1 < argc) {
			spin_us = (unsigned)atoi(argv[++i]);
		} else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
			only = argv[++i];
		} else {
			fprintf(stderr,
			    "usage: %s [--quick] [--reps N] [--n N] [--rtt "
			    "N]\n",
			    argv[0]);
			return 2;
		}
	}
	if (reps < 1 || reps > MAX_REPS || n < 10 || n_rtt < 10)
		die("arguments", "out of range");
	rtt = calloc(n_rtt, sizeof *rtt);
	for (unsigned r = 0; r < reps; r++) {
		for (int tr = 0; tr < TRANSPORTS; tr++)
			for (int k = 0; k < PEERS; k++) {
				/* Alternate: the first peer rotates. */
				int p = (k + (int)r) % PEERS;
				char url[256];
				double mps;

				snprintf(url, sizeof url, "%s_%s",
				    peer_name[p], transport[tr]);
				if (only != NULL && strstr(url, only) == NULL)
					continue;
				listen_url(p, tr, url, sizeof url);
				mps = p == 0 ? bridge_thru(url, n)
				    : p == 1 ? nng_thru(url, n)
				             : zmq_thru(url, n);
				thru[p][tr].v[thru[p][tr].n++] = mps / 1e6;
				listen_url(p, tr, url, sizeof url);
				if (p == 0)
					bridge_rtt(url, n_rtt, rtt);
				else if (p == 1)
					nng_rtt(url, n_rtt, rtt);
				else
					zmq_rtt(url, n_rtt, rtt);
				qsort(rtt, n_rtt, sizeof *rtt, cmp_u64);
				p50[p][tr].v[p50[p][tr].n++]
				    = (double)rtt[n_rtt / 2] / 1e3;
				p99[p][tr].v[p99[p][tr].n++]
				    = (double)rtt[n_rtt * 99 / 100] / 1e3;
				printf("result,%s_%s,thru,msgs_per_s,%.0f\n",
				    peer_name[p], transport[tr], mps);
				printf("result,%s_%s,rtt,p50_us,%.2f\n",
				    peer_name[p], transport[tr],
				    (double)rtt[n_rtt / 2] / 1e3);
			}
		fprintf(stderr, "bridge_bench: repetition %u done\n", r + 1);
	}
	printf(
	    "\n#### Across a link: 32-byte messages, median (min-max) of %u "
	    "run(s)\n\n",
	    reps);
	printf("| peer | transport | M msgs/s | round trip p50, us | round "
	       "trip p99, us |\n|---|---|---|---|---|\n");
	for (int tr = 0; tr < TRANSPORTS; tr++)
		for (int p = 0; p < PEERS; p++) {
			double lo, hi, lo2, hi2, lo3, hi3;
			double m;

			if (thru[p][tr].n == 0)
				continue;
			m = median(&thru[p][tr], &lo, &hi);
			double a = median(&p50[p][tr], &lo2, &hi2);
			double b = median(&p99[p][tr], &lo3, &hi3);

			printf("| %s | %s | %.3f (%.3f-%.3f) | %.1f "
			       "(%.1f-%.1f) | "
			       "%.1f (%.1f-%.1f) |\n",
			    peer_name[p], transport[tr], m, lo, hi, a, lo2,
			    hi2, b, lo3, hi3);
		}
	printf(
	    "\n| ratio (medians) | tcp | ipc | target |\n|---|---|---|---|\n");
	{
		double r[4][TRANSPORTS], lo, hi;

		for (int tr = 0; tr < TRANSPORTS; tr++) {
			double b = median(&thru[0][tr], &lo, &hi);

			r[0][tr] = b / median(&thru[1][tr], &lo, &hi);
			r[1][tr] = b / median(&thru[2][tr], &lo, &hi);
			b = median(&p50[0][tr], &lo, &hi);
			r[2][tr] = b / median(&p50[1][tr], &lo, &hi);
			r[3][tr] = b / median(&p50[2][tr], &lo, &hi);
		}
		printf("| throughput: bridge / nng | %.2fx | %.2fx | >= 0.77x "
		       "(within 1.3x of nng) |\n",
		    r[0][0], r[0][1]);
		printf(
		    "| throughput: bridge / zmq | %.2fx | %.2fx | >= 1x |\n",
		    r[1][0], r[1][1]);
		printf("| round trip p50: bridge / nng | %.2fx | %.2fx | "
		       "(reported) |\n",
		    r[2][0], r[2][1]);
		printf("| round trip p50: bridge / zmq | %.2fx | %.2fx | "
		       "(reported) |\n",
		    r[3][0], r[3][1]);
	}
	printf("\nMessages: %" PRIu64 " per throughput case (after %" PRIu64
	       " of warm-up), %" PRIu64 " round trips (after %" PRIu64 ").\n",
	    n, n / 10, n_rtt, n_rtt / 10);
	free(rtt);
	return 0;
}
