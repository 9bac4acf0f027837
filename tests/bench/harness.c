/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/harness.c — the workloads, written once for every peer.
 *
 * Each peer executable links this file with its own bench_peers[] list and
 * runs one (peer, workload) case per process, so that a case cannot inherit
 * another's heap, threads or page cache, and so that resident-size growth
 * can be measured from a clean start. Results go to stdout as lines
 *
 *     result,<peer>,<workload>,<metric>,<value>
 *
 * which tests/bench/run collects; diagnostics go to stderr. Nothing here
 * asserts anything about time: a case fails only when a message is lost,
 * duplicated, corrupted or reordered, or when a transport reports an error.
 */
#include "bench.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "count.h"

/* A case that makes no progress for this long has lost messages. */
#define STALL_SECONDS 300

static const struct bench_peer *peer;
static const char *workload = "";
static atomic_uint_fast64_t full_retries;

void
bench_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bench: %s/%s: ", peer ? peer->name : "?", workload);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

int
bench_thread_start(struct bench_thread *t, void *(*fn)(void *), void *arg)
{
	if (pthread_create(&t->thread, NULL, fn, arg))
		return -1;
	t->started = true;
	return 0;
}

bool
bench_thread_join(struct bench_thread *t)
{
	if (!t->started)
		return false;
	pthread_join(t->thread, NULL);
	t->started = false;
	return true;
}

void *
bench_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p)
		bench_fail("out of memory");
	return p;
}

void
bench_note_full(void)
{
	atomic_fetch_add_explicit(&full_retries, 1, memory_order_relaxed);
}

static void
result(const char *metric, double value)
{
	printf("result,%s,%s,%s,%.6g\n", peer->name, workload, metric, value);
}

/*
 * send_msg sends one message, waiting for room when the peer is bounded.
 * Retries are counted and reported, because a full inbox is a cost of the
 * design under test, not of the harness.
 */
static void
send_msg(struct bench_chan *c, unsigned sender, const struct bench_msg *m)
{
	for (;;) {
		int r = peer->send(c, sender, m, true);

		if (r == BENCH_SENT)
			return;
		if (r != BENCH_FULL)
			bench_fail("send failed (seq %" PRIu64 ")", m->seq);
		bench_note_full();
		sched_yield();
	}
}

/* make_msg builds message seq of `producer`. Only round trips read the
 * clock: a clock read per message would tax the throughput of every peer,
 * and cap the busy-poll ceiling in particular. */
static struct bench_msg
make_msg(uint64_t seq, uint32_t producer, bool stamp)
{
	struct bench_msg m = { .seq = seq, .producer = producer };

	m.payload = bench_payload(seq, producer);
	m.t_send_ns = stamp ? bench_now_ns() : 0;
	return m;
}

static struct bench_chan *
chan_new(const struct bench_chan_cfg *cfg)
{
	struct bench_chan *c = NULL;

	if (peer->chan_new(&c, cfg) != 0 || !c)
		bench_fail("cannot create a channel");
	return c;
}

static void
chan_start(struct bench_chan *c)
{
	if (peer->chan_start(c) != 0)
		bench_fail("cannot start a consumer");
}

/*
 * wait_for waits for `sem` and fails the case when nothing arrives for
 * STALL_SECONDS: with a correct transport that only happens when messages
 * were lost, so this is a correctness check, not a time limit.
 */
static void
wait_for(sem_t *sem, const atomic_uint_fast64_t *received, uint64_t want)
{
	for (;;) {
		struct timespec ts;
		uint64_t before = atomic_load(received);

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += STALL_SECONDS;
		if (sem_timedwait(sem, &ts) == 0)
			return;
		if (errno == EINTR)
			continue;
		if (atomic_load(received) == before)
			bench_fail("stalled: %" PRIu64 " of %" PRIu64
			           " messages received; messages were lost",
			    before, want);
	}
}

/*
 * counting brackets the steady-state phase with the LD_PRELOAD counters
 * (--count). bench_steady() may be called from any thread: a round trip's
 * steady state begins and ends on a loop's thread, not on main's.
 */
static struct {
	bool on;
	bench_count_arm_fn arm;
	bench_count_read_fn read;
	struct bench_counts before, after;
} counting;

static void
counting_init(bool on)
{
	counting.on = on;
	if (!on)
		return;
	counting.arm = (bench_count_arm_fn)(uintptr_t)dlsym(
	    RTLD_DEFAULT, "bench_count_arm");
	counting.read = (bench_count_read_fn)(uintptr_t)dlsym(
	    RTLD_DEFAULT, "bench_count_read");
	if (!counting.arm || !counting.read)
		bench_fail("--count needs LD_PRELOAD=libbench_count.so");
}

void
bench_steady(bool begin)
{
	if (!counting.on)
		return;
	if (begin) {
		counting.read(&counting.before);
		counting.arm(true);
	} else {
		counting.arm(false);
		counting.read(&counting.after);
	}
}

/* counting_report prints the counts per message (or round trip); the
 * caller has waited for the thread that called bench_steady(false). */
static void
counting_report(uint64_t msgs)
{
	struct bench_counts *b = &counting.before, *a = &counting.after;

	if (!counting.on)
		return;
	result(
	    "writes_per_msg", (double)(a->writes - b->writes) / (double)msgs);
	result("mallocs_per_msg",
	    (double)(a->mallocs - b->mallocs) / (double)msgs);
}

/* ---- Throughput: P producer threads -> 1 consumer ---------------------- */

struct thru {
	struct bench_chan *chan;
	unsigned nprod;
	uint64_t warm, n; /* per producer */
	pthread_barrier_t go;
	sem_t reached;
	/* Consumer thread only, except `received` (read on a stall). */
	uint64_t *next;
	uint64_t bad;
	atomic_uint_fast64_t received;
	uint64_t warm_total, total;
};

struct producer {
	struct thru *t;
	unsigned id;
	pthread_t thread;
};

static void
thru_on_msg(void *user, unsigned instance, const struct bench_msg *m)
{
	struct thru *t = user;
	uint64_t got;

	(void)instance;
	if (m->producer >= t->nprod || m->seq != t->next[m->producer]
	    || m->payload != bench_payload(m->seq, m->producer))
		t->bad++;
	else
		t->next[m->producer]++;
	got = atomic_load_explicit(&t->received, memory_order_relaxed) + 1;
	atomic_store_explicit(&t->received, got, memory_order_relaxed);
	if (got == t->warm_total || got == t->total)
		sem_post(&t->reached);
}

static void *
thru_producer(void *arg)
{
	struct producer *p = arg;
	struct thru *t = p->t;
	uint64_t seq = 0;

	/* Warm-up: fills caches, grows queues and faults in pages, so the
	 * measured phase sees the steady state. */
	pthread_barrier_wait(&t->go);
	for (; seq < t->warm; seq++) {
		struct bench_msg m = make_msg(seq, p->id, false);

		send_msg(t->chan, p->id, &m);
	}
	pthread_barrier_wait(&t->go);
	for (; seq < t->warm + t->n; seq++) {
		struct bench_msg m = make_msg(seq, p->id, false);

		send_msg(t->chan, p->id, &m);
	}
	return NULL;
}

static void
run_thru(unsigned nprod, uint64_t n_total, uint64_t warm_total)
{
	struct thru t = { .nprod = nprod };
	struct bench_chan_cfg cfg = { .senders = nprod, .instances = 1 };
	struct producer *prods = bench_xcalloc(nprod, sizeof *prods);
	uint64_t t0, t1;

	t.n = n_total / nprod;
	t.warm = warm_total / nprod;
	t.warm_total = t.warm * nprod;
	t.total = (t.warm + t.n) * nprod;
	t.next = bench_xcalloc(nprod, sizeof *t.next);
	pthread_barrier_init(&t.go, NULL, nprod + 1);
	sem_init(&t.reached, 0, 0);
	cfg.capacity = 65536;
	cfg.on_msg = thru_on_msg;
	cfg.user = &t;
	t.chan = chan_new(&cfg);
	chan_start(t.chan);
	for (unsigned i = 0; i < nprod; i++) {
		prods[i].t = &t;
		prods[i].id = i;
		if (pthread_create(
		        &prods[i].thread, NULL, thru_producer, &prods[i]))
			bench_fail("pthread_create");
	}
	pthread_barrier_wait(&t.go);
	if (t.warm_total)
		wait_for(&t.reached, &t.received, t.warm_total);
	atomic_store(&full_retries, 0);
	bench_steady(true);
	t0 = bench_now_ns();
	pthread_barrier_wait(&t.go);
	wait_for(&t.reached, &t.received, t.total);
	t1 = bench_now_ns();
	bench_steady(false);
	counting_report(t.n * nprod);
	for (unsigned i = 0; i < nprod; i++)
		pthread_join(prods[i].thread, NULL);
	peer->chan_free(t.chan);
	if (t.bad)
		bench_fail(
		    "%" PRIu64 " messages out of order or corrupted", t.bad);
	for (unsigned i = 0; i < nprod; i++)
		if (t.next[i] != t.warm + t.n)
			bench_fail("producer %u: %" PRIu64 " of %" PRIu64
			           " messages arrived",
			    i, t.next[i], t.warm + t.n);
	if (!counting.on) {
		result("mmsgs_per_s",
		    (double)(t.n * nprod) * 1e3 / (double)(t1 - t0));
		result("full_retries_per_msg",
		    (double)atomic_load(&full_retries)
		        / (double)(t.n * nprod));
	}
	free(t.next);
	free(prods);
	sem_destroy(&t.reached);
	pthread_barrier_destroy(&t.go);
}

/* ---- Fan-out: 1 producer -> pool of 2 -> back to a collector ----------- */

#define POOL 2

struct fan {
	struct bench_chan *pool[POOL]; /* one chan when the pool is native */
	unsigned n_chans;
	struct bench_chan *back;
	uint64_t warm, n;
	sem_t reached;
	/* Worker threads: one slot each, padded against false sharing. */
	struct {
		uint64_t last_plus1;
		char pad[56];
	} worker[POOL];
	atomic_uint_fast64_t worker_bad;
	/* Collector thread only, except `received`. */
	uint64_t last_plus1[POOL];
	uint64_t sum, bad;
	atomic_uint_fast64_t received;
};

/* fan_check_order counts a message whose seq does not increase. */
static bool
fan_in_order(uint64_t *last_plus1, const struct bench_msg *m)
{
	bool ok = m->seq + 1 > *last_plus1
	    && m->payload == bench_payload(m->seq, 0);

	*last_plus1 = m->seq + 1;
	return ok;
}

static void
fan_worker_on_msg(void *user, unsigned instance, const struct bench_msg *m)
{
	struct fan *f = user;
	struct bench_msg back = *m;

	if (instance >= POOL
	    || !fan_in_order(&f->worker[instance].last_plus1, m))
		atomic_fetch_add(&f->worker_bad, 1);
	back.producer = instance % POOL;
	send_msg(f->back, back.producer, &back);
}

static void
fan_back_on_msg(void *user, unsigned instance, const struct bench_msg *m)
{
	struct fan *f = user;
	uint64_t got;

	(void)instance;
	if (m->producer >= POOL
	    || !fan_in_order(&f->last_plus1[m->producer], m))
		f->bad++;
	f->sum += m->seq;
	got = atomic_load_explicit(&f->received, memory_order_relaxed) + 1;
	atomic_store_explicit(&f->received, got, memory_order_relaxed);
	if (got == f->warm || got == f->warm + f->n)
		sem_post(&f->reached);
}

static void
fan_send(struct fan *f, uint64_t seq)
{
	struct bench_msg m = make_msg(seq, 0, false);

	/* A native pool routes by itself; otherwise the producer does
	 * round-robin, as an application without pools would. */
	send_msg(f->pool[seq % f->n_chans], 0, &m);
}

static void
run_fanout(uint64_t n, uint64_t warm)
{
	struct fan f = { .warm = warm, .n = n };
	struct bench_chan_cfg cfg = { .senders = POOL, .instances = 1 };
	uint64_t t0, t1, total = warm + n;

	sem_init(&f.reached, 0, 0);
	cfg.capacity = 65536;
	cfg.on_msg = fan_back_on_msg;
	cfg.user = &f;
	f.back = chan_new(&cfg);
	cfg.senders = 1;
	cfg.on_msg = fan_worker_on_msg;
	if (peer->native_pool) {
		cfg.instances = POOL;
		f.n_chans = 1;
		f.pool[0] = chan_new(&cfg);
	} else {
		f.n_chans = POOL;
		for (unsigned i = 0; i < POOL; i++) {
			cfg.instance = i;
			f.pool[i] = chan_new(&cfg);
		}
	}
	chan_start(f.back);
	for (unsigned i = 0; i < f.n_chans; i++)
		chan_start(f.pool[i]);
	for (uint64_t seq = 0; seq < warm; seq++)
		fan_send(&f, seq);
	if (warm)
		wait_for(&f.reached, &f.received, warm);
	atomic_store(&full_retries, 0);
	bench_steady(true);
	t0 = bench_now_ns();
	for (uint64_t seq = warm; seq < total; seq++)
		fan_send(&f, seq);
	wait_for(&f.reached, &f.received, total);
	t1 = bench_now_ns();
	bench_steady(false);
	counting_report(n);
	for (unsigned i = 0; i < f.n_chans; i++)
		peer->chan_free(f.pool[i]);
	peer->chan_free(f.back);
	if (f.bad || atomic_load(&f.worker_bad))
		bench_fail("%" PRIu64 " messages out of order or corrupted",
		    f.bad + atomic_load(&f.worker_bad));
	if (f.sum != total * (total - 1) / 2)
		bench_fail("messages lost or duplicated in the pool");
	if (!counting.on) {
		result("mmsgs_per_s", (double)n * 1e3 / (double)(t1 - t0));
		result("full_retries_per_msg",
		    (double)atomic_load(&full_retries) / (double)n);
	}
	sem_destroy(&f.reached);
}

/* ---- Ping-pong between two loops, and butler's request/reply ----------- */

struct pp {
	struct bench_chan *a, *b;
	uint64_t warm, n;
	uint64_t *rtt;
	uint64_t next_a, next_b; /* each touched by its own loop only */
	atomic_uint_fast64_t bad, received;
	sem_t done;
};

/*
 * pp_a_on_msg runs on loop A: it times the pong against the timestamp it
 * put in the ping, and sends the next ping. A timestamp per message gives a
 * distribution (p50, p99), not only a mean.
 */
static void
pp_a_on_msg(void *user, unsigned instance, const struct bench_msg *m)
{
	struct pp *p = user;
	uint64_t now = bench_now_ns();
	struct bench_msg ping;

	(void)instance;
	if (m->seq != p->next_a || m->payload != bench_payload(m->seq, 0))
		atomic_fetch_add(&p->bad, 1);
	p->next_a = m->seq + 1;
	atomic_store_explicit(&p->received, m->seq, memory_order_relaxed);
	if (m->seq > p->warm)
		p->rtt[m->seq - p->warm - 1] = now - m->t_send_ns;
	if (m->seq == p->warm)
		bench_steady(true);
	if (m->seq >= p->warm + p->n) {
		bench_steady(false);
		sem_post(&p->done);
		return;
	}
	ping = make_msg(m->seq + 1, 0, true);
	send_msg(p->b, 0, &ping);
}

static void
pp_b_on_msg(void *user, unsigned instance, const struct bench_msg *m)
{
	struct pp *p = user;

	(void)instance;
	if (m->seq != p->next_b)
		atomic_fetch_add(&p->bad, 1);
	p->next_b = m->seq + 1;
	send_msg(p->a, 0, m);
}

static int
cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return (a > b) - (a < b);
}

static void
report_rtt(uint64_t *rtt, uint64_t n)
{
	double sum = 0;

	qsort(rtt, n, sizeof *rtt, cmp_u64);
	for (uint64_t i = 0; i < n; i++)
		sum += (double)rtt[i];
	result("p50_us", (double)rtt[n / 2] / 1e3);
	result("p99_us", (double)rtt[n * 99 / 100] / 1e3);
	result("mean_us", sum / (double)n / 1e3);
}

static void
run_pingpong(uint64_t n, uint64_t warm)
{
	struct pp p = { .warm = warm, .n = n, .next_b = 1 };
	struct bench_chan_cfg cfg = { .senders = 1, .instances = 1 };
	struct bench_msg kick = make_msg(0, 0, true);

	p.rtt = bench_xcalloc(n, sizeof *p.rtt);
	sem_init(&p.done, 0, 0);
	cfg.capacity = 64;
	cfg.user = &p;
	cfg.on_msg = pp_a_on_msg;
	p.a = chan_new(&cfg);
	cfg.on_msg = pp_b_on_msg;
	p.b = chan_new(&cfg);
	/* The kick uses A's sender slot before B's thread (its real user)
	 * exists: thread creation orders the two uses. */
	chan_start(p.a);
	send_msg(p.a, 0, &kick);
	chan_start(p.b);
	wait_for(&p.done, &p.received, warm + n);
	/* B first: joining B orders its last send into A before A goes.
	 * A's sends into B precede its signal to us in its own thread. */
	peer->chan_free(p.b);
	peer->chan_free(p.a);
	if (atomic_load(&p.bad))
		bench_fail("%" PRIu64 " messages out of order or corrupted",
		    (uint64_t)atomic_load(&p.bad));
	if (counting.on)
		counting_report(n);
	else
		report_rtt(p.rtt, n);
	free(p.rtt);
	sem_destroy(&p.done);
}

/*
 * run_rtt_hook runs one of a peer's own round-trip cases (request/reply,
 * blocking call, deferred answer): the peer times every round trip and
 * checks every answer itself.
 */
static void
run_rtt_hook(int (*hook)(uint64_t, uint64_t, uint64_t *), const char *what,
    uint64_t n, uint64_t warm)
{
	uint64_t *rtt = bench_xcalloc(n, sizeof *rtt);

	if (!hook) {
		printf("note,%s,%s,no %s\n", peer->name, workload, what);
		free(rtt);
		return;
	}
	if (hook(warm, n, rtt) != 0)
		bench_fail("%s failed", what);
	if (counting.on)
		counting_report(n);
	else
		report_rtt(rtt, n);
	free(rtt);
}

/* ---- Offload from a GLib main loop to a pool, and back ----------------- */

bool
bench_offload_next(struct bench_offload *o, struct bench_msg *m)
{
	if (o->issued == o->warm + o->n)
		return false;
	*m = make_msg(o->issued++, 0, true);
	return true;
}

bool
bench_offload_done(struct bench_offload *o, const struct bench_msg *m)
{
	uint64_t now = bench_now_ns();

	if (m->seq >= o->issued || o->seen[m->seq] || m->producer != 0
	    || m->payload != bench_payload(m->seq, 0))
		o->bad++;
	else
		o->seen[m->seq] = 1;
	if (o->rtt_ns && m->seq >= o->warm && m->seq < o->warm + o->n)
		o->rtt_ns[m->seq - o->warm] = now - m->t_send_ns;
	if (++o->answered == o->warm) {
		bench_steady(true);
		o->t0 = now;
	}
	if (o->answered < o->warm + o->n)
		return false;
	o->t1 = now;
	bench_steady(false);
	return true;
}

/*
 * run_offload: the peer's loop keeps `inflight` requests outstanding until
 * warm + n have been answered. With one in flight every request is a round
 * trip (p50, p99); with many, the figure is requests answered per second
 * over the measured phase.
 */
static void
run_offload(uint64_t n, uint64_t warm, unsigned inflight)
{
	struct bench_offload o = { .warm = warm,
		.n = n,
		.inflight = inflight,
		.workers = BENCH_OFFLOAD_WORKERS };

	if (!peer->offload) {
		printf("note,%s,%s,no offload\n", peer->name, workload);
		return;
	}
	o.seen = bench_xcalloc(warm + n, 1);
	if (inflight == 1)
		o.rtt_ns = bench_xcalloc(n, sizeof *o.rtt_ns);
	if (warm == 0) {
		bench_steady(true);
		o.t0 = bench_now_ns();
	}
	if (peer->offload(&o) != 0)
		bench_fail("offload failed");
	if (o.bad)
		bench_fail(
		    "%" PRIu64 " answers duplicated or corrupted", o.bad);
	for (uint64_t i = 0; i < warm + n; i++)
		if (!o.seen[i])
			bench_fail("request %" PRIu64 " never answered", i);
	if (counting.on)
		counting_report(n);
	else if (inflight == 1)
		report_rtt(o.rtt_ns, n);
	else
		result("mmsgs_per_s", (double)n * 1e3 / (double)(o.t1 - o.t0));
	free(o.rtt_ns);
	free(o.seen);
}

/* ---- Background load ---------------------------------------------------- */

/*
 * The "under load" cases run one load thread per online CPU next to the
 * benchmark: each at nice +19 (a background batch job: the scheduler gives
 * it what the benchmark leaves, but a waking thread may still have to wait
 * for a load thread's slice to end), sweeping a 256 KiB buffer so that it
 * also evicts the benchmark's cache lines, as real background work does.
 */
#define LOAD_BYTES (256u * 1024u)

static struct {
	atomic_bool stop;
	unsigned n;
	pthread_t *threads;
} load;

static void *
load_thread(void *arg)
{
	unsigned char *buf = bench_xcalloc(LOAD_BYTES, 1);

	(void)arg;
	/* Linux: a thread's nice value is per thread (its tid). */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19) != 0)
		fprintf(stderr, "bench: load thread: cannot renice\n");
	while (!atomic_load_explicit(&load.stop, memory_order_relaxed))
		for (unsigned i = 0; i < LOAD_BYTES; i += 64)
			buf[i]++;
	free(buf);
	return NULL;
}

static void
load_start(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	load.n = cpus > 0 ? (unsigned)cpus : 1;
	load.threads = bench_xcalloc(load.n, sizeof *load.threads);
	for (unsigned i = 0; i < load.n; i++)
		if (pthread_create(&load.threads[i], NULL, load_thread, NULL))
			bench_fail("pthread_create");
	printf("note,%s: %u load thread(s) at nice 19, each sweeping "
	       "%u KiB\n",
	    workload, load.n, LOAD_BYTES / 1024);
}

static void
load_stop(void)
{
	atomic_store(&load.stop, true);
	for (unsigned i = 0; i < load.n; i++)
		pthread_join(load.threads[i], NULL);
	free(load.threads);
}

/* ---- Memory per queued message ----------------------------------------- */

static uint64_t
rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f || fscanf(f, "%lu %lu", &size, &resident) != 2)
		bench_fail("cannot read /proc/self/statm");
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/*
 * run_mem queues n messages into a channel whose consumer never starts and
 * reports the growth of the resident set per message. The baseline is taken
 * before the channel exists, so preallocated storage counts too.
 */
static void
run_mem(uint64_t n)
{
	struct bench_chan_cfg cfg = { .senders = 1, .instances = 1 };
	struct bench_chan *c;
	uint64_t rss0, rss1;

	cfg.capacity = n + 1;
	cfg.on_msg = thru_on_msg; /* never called */
	rss0 = rss_bytes();
	c = chan_new(&cfg);
	for (uint64_t seq = 0; seq < n; seq++) {
		struct bench_msg m = make_msg(seq, 0, false);
		int r = peer->send(c, 0, &m, false);

		if (r == BENCH_FULL) {
			printf("note,%s,%s,cannot queue %" PRIu64
			       " messages without a consumer (full after "
			       "%" PRIu64 ")\n",
			    peer->name, workload, n, seq);
			peer->chan_free(c);
			return;
		}
		if (r != BENCH_SENT)
			bench_fail("send failed (seq %" PRIu64 ")", seq);
	}
	rss1 = rss_bytes();
	result("bytes_per_msg",
	    rss1 > rss0 ? (double)(rss1 - rss0) / (double)n : 0.0);
	peer->chan_free(c);
}

/* ---- Command line ------------------------------------------------------ */

/* print_workloads lists what peer p runs (see bench_peer.workloads). */
static void
print_workloads(const struct bench_peer *p)
{
	if (p->workloads) {
		fputs(p->workloads, stdout);
		return;
	}
	if (p->chan_new)
		fputs(
		    "thru1 thru4 fanout pingpong pingpong_load mem ", stdout);
	if (p->reqrep)
		fputs("reqrep ", stdout);
	if (p->callwait)
		fputs("callwait ", stdout);
	if (p->deferred)
		fputs("deferred ", stdout);
	if (p->offload)
		fputs("offload_rtt offload_thru ", stdout);
}

static void
usage(const char *argv0)
{
	fprintf(stderr,
	    "usage: %s --list\n"
	    "       %s --peer NAME --workload W [--n N] [--warmup W] "
	    "[--count] [--load]\n"
	    "W: thru1 thru4 fanout pingpong pingpong_load reqrep callwait\n"
	    "   deferred offload_rtt offload_thru mem\n",
	    argv0, argv0);
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *name = NULL;
	uint64_t n = 1000000, warm = UINT64_MAX;
	bool count = false, loaded = false;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--list")) {
			/* name, description, workloads: tab-separated */
			for (unsigned j = 0; bench_peers[j]; j++) {
				printf("%s\t%s\t", bench_peers[j]->name,
				    bench_peers[j]->consumer);
				print_workloads(bench_peers[j]);
				putchar('\n');
			}
			return 0;
		} else if (!strcmp(argv[i], "--peer") && i + 1 < argc) {
			name = argv[++i];
		} else if (!strcmp(argv[i], "--workload") && i + 1 < argc) {
			workload = argv[++i];
		} else if (!strcmp(argv[i], "--n") && i + 1 < argc) {
			n = strtoull(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) {
			warm = strtoull(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--count")) {
			count = true;
		} else if (!strcmp(argv[i], "--load")) {
			loaded = true;
		} else {
			usage(argv[0]);
		}
	}
	for (unsigned j = 0; name && bench_peers[j]; j++)
		if (!strcmp(bench_peers[j]->name, name))
			peer = bench_peers[j];
	if (!peer || n < 4)
		usage(argv[0]);
	if (warm == UINT64_MAX)
		warm = n / 10;
	counting_init(count);
	/* Results must reach the driver even if a later case crashes. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(workload, "pingpong_load"))
		loaded = true;
	if (loaded)
		load_start();
	if (!strcmp(workload, "thru1"))
		run_thru(1, n, warm);
	else if (!strcmp(workload, "thru4"))
		run_thru(4, n, warm);
	else if (!strcmp(workload, "fanout"))
		run_fanout(n, warm);
	else if (!strcmp(workload, "pingpong")
	    || !strcmp(workload, "pingpong_load"))
		run_pingpong(n, warm);
	else if (!strcmp(workload, "reqrep"))
		run_rtt_hook(peer->reqrep, "request/reply", n, warm);
	else if (!strcmp(workload, "callwait"))
		run_rtt_hook(peer->callwait, "blocking call", n, warm);
	else if (!strcmp(workload, "deferred"))
		run_rtt_hook(peer->deferred, "deferred answer", n, warm);
	else if (!strcmp(workload, "offload_rtt"))
		run_offload(n, warm, 1);
	else if (!strcmp(workload, "offload_thru"))
		run_offload(n, warm, BENCH_OFFLOAD_INFLIGHT);
	else if (!strcmp(workload, "mem"))
		run_mem(n);
	else
		usage(argv[0]);
	if (loaded)
		load_stop();
	return 0;
}
