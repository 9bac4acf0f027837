/* SPDX-License-Identifier: MIT */
/*
 * servers/bridge/link.c — links: one nng byte stream each.
 *
 * nng carries the bytes (tcp://, ipc://, tls+tcp:// streams: nng's
 * transports, TLS by mbedTLS); this file frames them. A link has one read
 * and one write in flight at most, each an nng aio whose callback runs on
 * nng's threads:
 *
 * - Reading fills one buffer and takes whole frames off its front. On a
 *   dialed link (the using side) answers are copied to the proxy that
 *   waits for them and credit is added up, on the I/O thread. On an
 *   accepted link (the exposing side) the buffer's whole frames are lent
 *   to the bridge server, which delivers them and hands the buffer back;
 *   the next read starts then, so one batch per link is in its inbox.
 * - Writing: any thread appends frames to `out` under the link's mutex;
 *   when no write is in flight, `out` and `wbuf` swap and wbuf is
 *   written. Frames appended meanwhile wait for the next write, so under
 *   load one write carries many frames (batching without a delay).
 *
 * A connection that fails (I/O error, malformed frame, refusal, the peer
 * gone) is CLOSING until both aios are idle and the buffer is back; then
 * the stream is freed, and a dialed link redials after a backoff (min,
 * doubling to max, reset by a handshake that completes), an accepted one
 * ends. Its generation number changes at the failure, so that nothing
 * meant for the old connection (an answer, a cancel) reaches a new one.
 *
 * The handshake: the dialer sends HELLO (its nonce, the specs of the
 * servers it wants with their hashes, the servers); the listener answers
 * WELCOME (its nonce, HMAC-SHA256(secret, "butler-bridge 1 listener" ||
 * dialer nonce || listener nonce), its own hash of each spec); the dialer
 * checks that mac and the hashes, and sends AUTH (HMAC over "butler-bridge
 * 1 dialer" || listener nonce || dialer nonce); the listener checks it, that
 * the specs match and the servers are exposed, and sends READY (the credit
 * window). Both sides prove the secret without sending it, and neither
 * frame can be replayed into another connection (fresh nonces). A refusal
 * is an ERROR frame with the reason, logged on both sides.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <mbedtls/constant_time.h>
#include <mbedtls/md.h>

#include <butler/wire.h>

/* Reads ask for at least this much room. */
#define READ_MIN 65536u

static void rx_cb(void *arg);
static void tx_cb(void *arg);
static void timer_cb(void *arg);
static void maybe_finish(struct butler__link *l, bool *clear);
static void start_read(struct butler__link *l);
static void credit_locked(struct butler__link *l);

static const char *const label_listener = "butler-bridge 1 listener";
static const char *const label_dialer = "butler-bridge 1 dialer";

/* ---- references and allocation ------------------------------------------ */

static struct butler__link *
link_alloc(struct butler_bridge *br, enum butler__role role)
{
	struct butler__link *l = calloc(1, sizeof *l);
	pthread_condattr_t ca;

	if (l == NULL)
		return NULL;
	l->br = br;
	l->role = role;
	atomic_init(&l->refs, 1);
	pthread_mutex_init(&l->mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cond, &ca);
	pthread_condattr_destroy(&ca);
	l->backoff_ms = br->reconnect_min;
	if (nng_aio_alloc(&l->rx_aio, rx_cb, l) != 0
	    || nng_aio_alloc(&l->tx_aio, tx_cb, l) != 0
	    || nng_aio_alloc(&l->timer_aio, timer_cb, l) != 0) {
		butler__link_free(l);
		return NULL;
	}
	return l;
}

void
butler__link_ref(struct butler__link *l)
{
	atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
}

/*
 * Frees l. From one of l's own callbacks too (an accepted link's last
 * reference may go there): its aios are reaped, not freed, and the
 * callback returns without touching l again.
 */
static void
link_destroy(struct butler__link *l, bool reap)
{
	void (*aio_free)(nng_aio *) = reap ? nng_aio_reap : nng_aio_free;

	if (l->rx_aio != NULL)
		aio_free(l->rx_aio);
	if (l->tx_aio != NULL)
		aio_free(l->tx_aio);
	if (l->timer_aio != NULL)
		aio_free(l->timer_aio);
	if (l->s != NULL)
		nng_stream_free(l->s);
	if (l->dialer != NULL)
		nng_stream_dialer_free(l->dialer);
	if (l->tls != NULL)
		nng_tls_config_free(l->tls);
	if (l->role == BUTLER__ACCEPT)
		butler__expose_free_link(l);
	butler__obuf_free(&l->out);
	butler__obuf_free(&l->wbuf);
	free(l->rbuf);
	free(l->dt);
	free(l->lt);
	free(l->url);
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->mtx);
	free(l);
}

void
butler__link_unref(struct butler__link *l)
{
	if (atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) == 1)
		link_destroy(l, true);
}

void
butler__link_free(struct butler__link *l)
{
	if (l != NULL)
		link_destroy(l, false);
}

/* ---- helpers ------------------------------------------------------------ */

static bool
live(const struct butler__link *l)
{
	return l->state == BUTLER__L_HANDSHAKE || l->state == BUTLER__L_UP;
}

static void
mac(const struct butler_bridge *br, const char *label,
    const unsigned char *first, const unsigned char *second,
    unsigned char out[BUTLER__MAC_LEN])
{
	unsigned char in[64 + 2 * BUTLER__NONCE_LEN];
	size_t n = strlen(label);

	memset(out, 0, BUTLER__MAC_LEN);
	if (br->secret == NULL)
		return;
	memcpy(in, label, n);
	memcpy(in + n, first, BUTLER__NONCE_LEN);
	memcpy(in + n + BUTLER__NONCE_LEN, second, BUTLER__NONCE_LEN);
	(void)mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
	    br->secret, br->secret_len, in, n + 2 * BUTLER__NONCE_LEN, out);
}

static int
nonce(unsigned char out[BUTLER__NONCE_LEN])
{
	size_t got = 0;

	while (got < BUTLER__NONCE_LEN) {
		ssize_t n = getrandom(out + got, BUTLER__NONCE_LEN - got, 0);

		if (n < 0)
			return BUTLER_ESYS;
		got += (size_t)n;
	}
	return BUTLER_OK;
}

/* peer_name formats the stream's remote address, for logs. */
static char *
peer_name(nng_stream *s)
{
	nng_sockaddr sa;
	char buf[160];

	if (nng_stream_get_addr(s, NNG_OPT_REMADDR, &sa) != 0)
		return strdup("a peer");
	switch (sa.s_family) {
	case NNG_AF_INET: {
		uint32_t a = sa.s_in.sa_addr;
		const unsigned char *b = (const unsigned char *)&a;
		const unsigned char *p
		    = (const unsigned char *)&sa.s_in.sa_port;

		snprintf(buf, sizeof buf, "%u.%u.%u.%u:%u", b[0], b[1], b[2],
		    b[3], (unsigned)p[0] << 8 | p[1]);
		break;
	}
	case NNG_AF_INET6: {
		const unsigned char *p
		    = (const unsigned char *)&sa.s_in6.sa_port;
		int n = snprintf(buf, sizeof buf, "[");

		for (int i = 0; i < 16; i += 2)
			n += snprintf(buf + n, sizeof buf - (size_t)n, "%s%x",
			    i ? ":" : "",
			    (unsigned)sa.s_in6.sa_addr[i] << 8
			        | sa.s_in6.sa_addr[i + 1]);
		snprintf(buf + n, sizeof buf - (size_t)n, "]:%u",
		    (unsigned)p[0] << 8 | p[1]);
		break;
	}
	default:
		snprintf(buf, sizeof buf, "a local peer");
		break;
	}
	return strdup(buf);
}

/* appended counts a frame appended to out (l's mutex held); it counts
 * in frames_out once written. */
static void
appended(struct butler__link *l)
{
	l->out_frames++;
}

/* ---- failing and finishing ---------------------------------------------- */

/* fail closes l's connection; logs why unless quiet (said already). */
static void
fail(struct butler__link *l, bool malformed, bool quiet, const char *why)
{
	struct butler_bridge *br = l->br;
	bool was_up;
	uint32_t old;
	nng_stream *s;

	pthread_mutex_lock(&l->mtx);
	if (!live(l)) {
		pthread_mutex_unlock(&l->mtx);
		return;
	}
	was_up = l->state == BUTLER__L_UP;
	old = l->gen;
	l->state = BUTLER__L_CLOSING;
	l->gen++;
	l->out.len = 0;
	l->out_frames = 0;
	s = l->s;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->mtx);

	if (malformed)
		butler__br_count(br, malformed, 1);
	if (was_up) {
		butler__br_count(br, lost, 1);
		atomic_fetch_sub_explicit(
		    &br->st.links_up, 1, memory_order_relaxed);
	}
	if (!quiet)
		butler__br_log(br,
		    malformed || (was_up && l->role == BUTLER__DIAL)
		        ? BUTLER_LOG_WARN
		        : BUTLER_LOG_INFO,
		    "bridge: %s %s: %s",
		    l->role == BUTLER__DIAL ? "link to" : "link from", l->url,
		    why);
	if (was_up && l->role == BUTLER__DIAL)
		butler__proxy_down(l, old);
	if (was_up && l->role == BUTLER__DIAL) {
		pthread_mutex_lock(&br->mtx);
		pthread_cond_broadcast(&br->cond);
		pthread_mutex_unlock(&br->mtx);
	}
	/* Aborts what is in flight; its callbacks finish the connection. */
	if (s != NULL)
		nng_stream_close(s);
	maybe_finish(l, NULL);
}

void
butler__link_fail(struct butler__link *l, bool malformed, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	fail(l, malformed, false, why);
}

/*
 * maybe_finish clears *clear (may be NULL: the caller's rx_busy, tx_busy
 * or rx_lent, in the same critical section, so that two callbacks going
 * idle at once cannot both finish) and ends a CLOSING connection once
 * nothing uses its stream: a dialed link waits to redial, an accepted one
 * ends (the bridge server is told, unless it knows). May free an accepted
 * link: a caller that holds no reference must not touch l afterwards.
 */
static void
maybe_finish(struct butler__link *l, bool *clear)
{
	struct butler_bridge *br = l->br;
	bool notice = false;
	nng_stream *s;
	unsigned delay = 0;

	pthread_mutex_lock(&l->mtx);
	if (clear != NULL)
		*clear = false;
	if (l->state != BUTLER__L_CLOSING || l->rx_busy || l->tx_busy
	    || l->rx_lent) {
		pthread_mutex_unlock(&l->mtx);
		return;
	}
	s = l->s;
	l->s = NULL;
	l->rlen = 0;
	l->out.len = 0;
	l->wbuf.len = 0;
	l->woff = 0;
	if (l->role == BUTLER__DIAL) {
		l->state = BUTLER__L_CONNECTING;
		delay = l->backoff_ms;
		l->backoff_ms = l->backoff_ms >= br->reconnect_max / 2
		    ? br->reconnect_max
		    : l->backoff_ms * 2;
	} else {
		l->state = BUTLER__L_CLOSED;
		notice = !l->down_done && br->bridge_server != BUTLER_NO_SERVER
		    && l->n_targets > 0;
		l->down_done = true;
	}
	pthread_mutex_unlock(&l->mtx);
	if (s != NULL)
		nng_stream_free(s);
	if (l->role == BUTLER__DIAL) {
		nng_sleep_aio((nng_duration)delay, l->timer_aio);
		return;
	}
	if (notice)
		(void)butler__expose_notice(l);
	/* The accepted list's reference. */
	pthread_mutex_lock(&br->mtx);
	for (struct butler__link **p = &br->accepted; *p; p = &(*p)->next)
		if (*p == l) {
			*p = l->next;
			br->n_accepted--;
			break;
		}
	pthread_mutex_unlock(&br->mtx);
	butler__link_unref(l);
}

/*
 * once returns level the first time `why` is given as the reason of a
 * refusal in a row, and BUTLER_LOG_DEBUG after: a dialer refused at each
 * redial, or a listener refusing each redial of a peer, says it once.
 */
static butler_log_level
once(struct butler__link *l, const char *why, butler_log_level level)
{
	pthread_mutex_t *m = l->role == BUTLER__DIAL ? &l->mtx : &l->br->mtx;
	char *last
	    = l->role == BUTLER__DIAL ? l->last_refusal : l->br->last_refusal;
	size_t cap = l->role == BUTLER__DIAL ? sizeof l->last_refusal
	                                     : sizeof l->br->last_refusal;
	bool same;

	pthread_mutex_lock(m);
	same = strcmp(last, why) == 0;
	if (!same)
		snprintf(last, cap, "%s", why);
	pthread_mutex_unlock(m);
	return same ? BUTLER_LOG_DEBUG : level;
}

/*
 * refuse writes an ERROR with the reason and closes the connection once it
 * is written (tx_cb); what else the peer sends meanwhile is ignored. A
 * dialer refusing for the reason it refused last time logs it quietly.
 */
static void
refuse(struct butler__link *l, int code, const char *fmt, ...)
{
	char why[BUTLER__ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	butler__br_count(l->br, refused, 1);
	pthread_mutex_lock(&l->mtx);
	if (live(l) && !l->refusing) {
		l->refusing = true;
		l->out.len = 0;
		l->out_frames = 0;
		if (butler__put_error(&l->out, code, why) == BUTLER_OK)
			appended(l);
	}
	pthread_mutex_unlock(&l->mtx);
	butler__br_log(l->br, once(l, why, BUTLER_LOG_WARN),
	    "bridge: refused %s %s: %s",
	    l->role == BUTLER__DIAL ? "the link to" : "a link from", l->url,
	    why);
	butler__link_kick(l);
}

/* ---- writing ------------------------------------------------------------ */

static void
start_write(struct butler__link *l, nng_stream *s)
{
	nng_iov iov = { .iov_buf = l->wbuf.p + l->woff,
		.iov_len = l->wbuf.len - l->woff };

	nng_aio_set_iov(l->tx_aio, 1, &iov);
	nng_aio_set_timeout(l->tx_aio, NNG_DURATION_INFINITE);
	nng_stream_send(s, l->tx_aio);
}

/*
 * take_write starts the next write if none is in flight and there is
 * something to write: swaps out and wbuf, marks the writer busy, and
 * returns the stream to write on (NULL: nothing to do). l's mutex held.
 */
static nng_stream *
take_write(struct butler__link *l)
{
	struct butler__obuf t;

	if (l->tx_busy || !live(l) || l->out.len == 0)
		return NULL;
	t = l->wbuf;
	l->wbuf = l->out;
	l->out = t;
	l->out.len = 0;
	l->woff = 0;
	l->w_frames = l->out_frames;
	l->out_frames = 0;
	l->tx_busy = true;
	return l->s;
}

/* Lets go of l's mutex, held, and writes what take_write() took, if
 * anything: the write starts outside the lock. */
static void
unlock_and_write(struct butler__link *l)
{
	nng_stream *s = take_write(l);

	pthread_mutex_unlock(&l->mtx);
	if (s != NULL)
		start_write(l, s);
}

void
butler__link_kick(struct butler__link *l)
{
	pthread_mutex_lock(&l->mtx);
	unlock_and_write(l);
}

static void
tx_cb(void *arg)
{
	struct butler__link *l = arg;
	int rv = nng_aio_result(l->tx_aio);
	size_t n = nng_aio_count(l->tx_aio);
	struct butler__obuf t;
	nng_stream *s;

	pthread_mutex_lock(&l->mtx);
	if (rv == 0 && live(l)) {
		l->woff += n;
		butler__br_count(l->br, bytes_out, n);
		if (l->woff < l->wbuf.len) {
			s = l->s;
			pthread_mutex_unlock(&l->mtx);
			start_write(l, s);
			return;
		}
		l->wbuf.len = 0;
		l->woff = 0;
		butler__br_count(l->br, frames_out, l->w_frames);
		l->w_frames = 0;
		if (l->refusing && l->out.len == 0) {
			pthread_mutex_unlock(&l->mtx);
			fail(l, false, true, "refused");
			maybe_finish(l, &l->tx_busy);
			return;
		}
		if (l->role == BUTLER__ACCEPT)
			credit_locked(l);
		if (l->out.len > 0) {
			t = l->wbuf;
			l->wbuf = l->out;
			l->out = t;
			l->out.len = 0;
			l->w_frames = l->out_frames;
			l->out_frames = 0;
			s = l->s;
			pthread_mutex_unlock(&l->mtx);
			start_write(l, s);
			return;
		}
	}
	if (rv == 0 && live(l)) {
		l->tx_busy = false;
		pthread_mutex_unlock(&l->mtx);
		return;
	}
	pthread_mutex_unlock(&l->mtx);
	if (rv != 0)
		butler__link_fail(l, false, "write: %s", nng_strerror(rv));
	maybe_finish(l, &l->tx_busy);
}

/* ---- reading ------------------------------------------------------------ */

/* Makes room for need bytes in the read buffer; false: out of memory. */
static bool
read_room(struct butler__link *l, size_t need)
{
	size_t cap = l->rcap ? l->rcap : READ_MIN;
	unsigned char *p;

	if (need < l->rlen + READ_MIN / 4)
		need = l->rlen + READ_MIN / 4;
	while (cap < need)
		cap *= 2;
	if (cap == l->rcap)
		return true;
	p = realloc(l->rbuf, cap);
	if (p == NULL)
		return false;
	l->rbuf = p;
	l->rcap = cap;
	return true;
}

/* start_read reads on; rx_busy is set, the stream is l's (not locked). */
static void
start_read(struct butler__link *l)
{
	nng_iov iov;
	nng_stream *s;
	bool hs;

	pthread_mutex_lock(&l->mtx);
	iov.iov_buf = l->rbuf + l->rlen;
	iov.iov_len = l->rcap - l->rlen;
	hs = l->state == BUTLER__L_HANDSHAKE;
	s = l->s; /* stays: it is freed only once this read is over */
	pthread_mutex_unlock(&l->mtx);
	nng_aio_set_iov(l->rx_aio, 1, &iov);
	nng_aio_set_timeout(
	    l->rx_aio, hs ? BUTLER__HANDSHAKE_MS : NNG_DURATION_INFINITE);
	nng_stream_recv(s, l->rx_aio);
}

/* The frame length needed to go on after PARSE_MORE at p[0..n). */
static size_t
frame_need(const unsigned char *p, size_t n)
{
	butler_wire_reader r;

	if (n < 4)
		return 4;
	butler_wire_reader_init(&r, p, 4);
	return 4 + (size_t)butler_wire_get_u32(&r);
}

/* ---- the handshake ------------------------------------------------------ */

/* A dialed link's HELLO: the specs of its targets, then the targets. */
static int
put_hello(struct butler__link *l)
{
	struct butler__hello *h = calloc(1, sizeof *h);
	int rv;

	if (h == NULL)
		return BUTLER_ENOMEM;
	h->proto = BUTLER__BRIDGE_PROTO;
	h->flags = l->br->secret != NULL ? BUTLER__HELLO_SECRET : 0;
	memcpy(h->nonce, l->nonce, BUTLER__NONCE_LEN);
	for (unsigned t = 0; t < l->n_targets; t++) {
		const butler_spec *sp = l->dt[t].g->spec;
		unsigned i;

		for (i = 0; i < h->n_specs; i++)
			if (strcmp(h->specs[i].app, sp->app) == 0)
				break;
		if (i == h->n_specs) {
			snprintf(h->specs[i].app, sizeof h->specs[i].app, "%s",
			    sp->app);
			snprintf(h->specs[i].version,
			    sizeof h->specs[i].version, "%s",
			    sp->version != NULL ? sp->version : "");
			h->specs[i].hash = sp->wire_hash;
			h->n_specs++;
		}
		l->dt[t].spec = (uint8_t)i;
		h->targets[t].spec = (uint8_t)i;
		h->targets[t].server = l->dt[t].server;
	}
	h->n_targets = l->n_targets;
	rv = butler__put_hello(&l->out, false, h);
	if (rv == BUTLER_OK)
		appended(l);
	free(h);
	return rv;
}

static const char *
version_of(const char *v)
{
	return v != NULL && v[0] != '\0' ? v : "none";
}

static const butler_spec *
hub_spec(const struct butler_bridge *br, const char *app)
{
	for (unsigned i = 0; i < br->n_specs; i++)
		if (strcmp(br->specs[i]->app, app) == 0)
			return br->specs[i];
	return NULL;
}

static const struct butler__exposed *
exposed(const struct butler_bridge *br, const butler_spec *sp, unsigned srv)
{
	for (unsigned i = 0; i < br->n_exp; i++)
		if (br->exp[i].spec == sp && br->exp[i].spec_server == srv)
			return &br->exp[i];
	return NULL;
}

/* The listener gets the HELLO: answers WELCOME, or refuses. */
static void
on_hello(struct butler__link *l, const struct butler__frame *f)
{
	struct butler_bridge *br = l->br;
	struct butler__hello *h = calloc(1, sizeof *h);
	struct butler__hello *w = calloc(1, sizeof *w);
	const butler_spec *sps[BUTLER__MAX_SPECS];
	const char *why;
	int rv;

	if (h == NULL || w == NULL) {
		butler__link_fail(l, false, "out of memory");
		goto out;
	}
	rv = butler__hello_parse(f->body, f->body_len, false, h, &why);
	if (rv == BUTLER__HELLO_PROTO) {
		refuse(l, BUTLER_EINVAL,
		    "peer speaks bridge protocol %u, this side %u",
		    (unsigned)h->proto, BUTLER__BRIDGE_PROTO);
		goto out;
	}
	if (rv != BUTLER__HELLO_OK) {
		butler__link_fail(l, true, "malformed HELLO: %s", why);
		goto out;
	}
	if ((h->flags & BUTLER__HELLO_SECRET) && br->secret == NULL) {
		refuse(l, BUTLER_EINVAL,
		    "the peer has a shared secret, this side has none");
		goto out;
	}
	if (!(h->flags & BUTLER__HELLO_SECRET) && br->secret != NULL) {
		refuse(l, BUTLER_EINVAL,
		    "the peer has no shared secret, this side requires one");
		goto out;
	}
	/* Compare the specs now (the WELCOME carries our hashes, so the
	 * dialer can say what differs); refuse at AUTH, so that only a peer
	 * that knows the secret is told more. */
	l->refuse[0] = '\0';
	for (unsigned i = 0; i < h->n_specs; i++) {
		const butler_spec *sp = hub_spec(br, h->specs[i].app);

		sps[i] = sp;
		w->specs[i].hash = sp != NULL ? sp->wire_hash : 0;
		snprintf(w->specs[i].version, sizeof w->specs[i].version, "%s",
		    sp != NULL && sp->version != NULL ? sp->version : "");
		if (l->refuse[0] != '\0')
			continue;
		if (sp == NULL)
			snprintf(l->refuse, sizeof l->refuse,
			    "spec '%s' is not in this hub", h->specs[i].app);
		else if (sp->wire_hash != h->specs[i].hash)
			snprintf(l->refuse, sizeof l->refuse,
			    "spec '%s': peer spec hash 0x%016llx (version %s) "
			    "differs from ours 0x%016llx (version %s)",
			    sp->app, (unsigned long long)h->specs[i].hash,
			    version_of(h->specs[i].version),
			    (unsigned long long)sp->wire_hash,
			    version_of(sp->version));
	}
	w->n_specs = h->n_specs;
	if (l->refuse[0] != '\0')
		butler__br_log(br, once(l, l->refuse, BUTLER_LOG_WARN),
		    "bridge: link from %s: %s", l->url, l->refuse);
	l->n_targets = h->n_targets;
	l->lt = calloc(h->n_targets ? h->n_targets : 1, sizeof *l->lt);
	if (l->lt == NULL) {
		butler__link_fail(l, false, "out of memory");
		goto out;
	}
	for (unsigned t = 0; t < h->n_targets && l->refuse[0] == '\0'; t++) {
		const butler_spec *sp = sps[h->targets[t].spec];
		unsigned srv = h->targets[t].server;

		if (srv >= sp->n_servers) {
			snprintf(l->refuse, sizeof l->refuse,
			    "spec '%s' has no server %u", sp->app, srv);
			break;
		}
		l->lt[t].x = exposed(br, sp, srv);
		if (l->lt[t].x == NULL)
			snprintf(l->refuse, sizeof l->refuse,
			    "server '%s' of spec '%s' is not exposed here",
			    sp->servers[srv].name, sp->app);
	}
	memcpy(l->peer_nonce, h->nonce, BUTLER__NONCE_LEN);
	w->proto = BUTLER__BRIDGE_PROTO;
	w->flags = br->secret != NULL ? BUTLER__HELLO_SECRET : 0;
	memcpy(w->nonce, l->nonce, BUTLER__NONCE_LEN);
	mac(br, label_listener, l->peer_nonce, l->nonce, w->mac);
	pthread_mutex_lock(&l->mtx);
	l->hello_done = true;
	rv = live(l) ? butler__put_hello(&l->out, true, w) : BUTLER_ECLOSED;
	if (rv == BUTLER_OK)
		appended(l);
	pthread_mutex_unlock(&l->mtx);
	if (rv == BUTLER_ENOMEM)
		butler__link_fail(l, false, "out of memory");
	butler__link_kick(l);
out:
	free(h);
	free(w);
}

/* The listener gets AUTH: READY, or a refusal. */
static void
on_auth(struct butler__link *l, const struct butler__frame *f)
{
	struct butler_bridge *br = l->br;
	unsigned char want[BUTLER__MAC_LEN];
	int rv;

	mac(br, label_dialer, l->nonce, l->peer_nonce, want);
	if (br->secret != NULL
	    && mbedtls_ct_memcmp(want, f->body, BUTLER__MAC_LEN) != 0) {
		refuse(l, BUTLER_EINVAL, "wrong shared secret");
		return;
	}
	if (l->refuse[0] != '\0') {
		refuse(l, BUTLER_EINVAL, "%s", l->refuse);
		return;
	}
	pthread_mutex_lock(&l->mtx);
	l->win_frames = br->window;
	l->win_bytes = br->window_bytes;
	rv = butler__put_ready(
	    &l->out, br->window, br->window_bytes, (uint32_t)br->max_frame);
	if (rv == BUTLER_OK) {
		appended(l);
		l->state = BUTLER__L_UP;
	}
	pthread_mutex_unlock(&l->mtx);
	if (rv != BUTLER_OK) {
		butler__link_fail(l, false, "out of memory");
		return;
	}
	butler__br_count(br, connects, 1);
	butler__br_count(br, links_up, 1);
	butler__br_log(br, BUTLER_LOG_INFO,
	    "bridge: link from %s is up (%u "
	    "server%s)",
	    l->url, l->n_targets, l->n_targets == 1 ? "" : "s");
	butler__link_kick(l);
}

/* The dialer gets the WELCOME: AUTH, or a refusal. */
static void
on_welcome(struct butler__link *l, const struct butler__frame *f)
{
	struct butler_bridge *br = l->br;
	struct butler__hello *w = calloc(1, sizeof *w);
	unsigned char want[BUTLER__MAC_LEN];
	const char *why;
	unsigned n = 0;
	int rv;

	if (w == NULL) {
		butler__link_fail(l, false, "out of memory");
		return;
	}
	rv = butler__hello_parse(f->body, f->body_len, true, w, &why);
	if (rv == BUTLER__HELLO_PROTO) {
		refuse(l, BUTLER_EINVAL,
		    "peer speaks bridge protocol %u, this side %u",
		    (unsigned)w->proto, BUTLER__BRIDGE_PROTO);
		goto out;
	}
	if (rv != BUTLER__HELLO_OK) {
		butler__link_fail(l, true, "malformed WELCOME: %s", why);
		goto out;
	}
	if (!(w->flags & BUTLER__HELLO_SECRET) != (br->secret == NULL)) {
		refuse(l, BUTLER_EINVAL,
		    br->secret != NULL
		        ? "the peer has no shared secret, this side requires "
		          "one"
		        : "the peer has a shared secret, this side has none");
		goto out;
	}
	mac(br, label_listener, l->nonce, w->nonce, want);
	if (br->secret != NULL
	    && mbedtls_ct_memcmp(want, w->mac, BUTLER__MAC_LEN) != 0) {
		refuse(l, BUTLER_EINVAL,
		    "the listener does not know the shared secret");
		goto out;
	}
	/* The same specs, in the HELLO's order. */
	for (unsigned t = 0; t < l->n_targets; t++)
		if (l->dt[t].spec + 1u > n)
			n = l->dt[t].spec + 1u;
	if (w->n_specs != n) {
		butler__link_fail(
		    l, true, "WELCOME names %u specs, not %u", w->n_specs, n);
		goto out;
	}
	for (unsigned t = 0; t < l->n_targets; t++) {
		const butler_spec *sp = l->dt[t].g->spec;
		const struct butler__hello_spec *ps = &w->specs[l->dt[t].spec];

		if (ps->hash == 0) {
			refuse(l, BUTLER_EINVAL, "the peer has no spec '%s'",
			    sp->app);
			goto out;
		}
		if (ps->hash != sp->wire_hash) {
			refuse(l, BUTLER_EINVAL,
			    "spec '%s': peer spec hash 0x%016llx (version %s) "
			    "differs from ours 0x%016llx (version %s)",
			    sp->app, (unsigned long long)ps->hash,
			    version_of(ps->version),
			    (unsigned long long)sp->wire_hash,
			    version_of(sp->version));
			goto out;
		}
	}
	memcpy(l->peer_nonce, w->nonce, BUTLER__NONCE_LEN);
	mac(br, label_dialer, l->peer_nonce, l->nonce, want);
	pthread_mutex_lock(&l->mtx);
	l->hello_done = true;
	rv = live(l) ? butler__put_auth(&l->out, want) : BUTLER_ECLOSED;
	if (rv == BUTLER_OK)
		appended(l);
	pthread_mutex_unlock(&l->mtx);
	if (rv == BUTLER_ENOMEM)
		butler__link_fail(l, false, "out of memory");
	butler__link_kick(l);
out:
	free(w);
}

/* The dialer gets READY: the link is up. */
static void
on_ready(struct butler__link *l, const struct butler__frame *f)
{
	struct butler_bridge *br = l->br;

	if (f->frames == 0 || f->bytes == 0 || f->max < 64) {
		butler__link_fail(l, true, "READY with an empty window");
		return;
	}
	pthread_mutex_lock(&l->mtx);
	l->win_frames = f->frames;
	l->win_bytes = f->bytes;
	l->peer_max = f->max < br->max_frame ? f->max : br->max_frame;
	for (unsigned t = 0; t < l->n_targets; t++) {
		l->dt[t].frames = 0;
		l->dt[t].bytes = 0;
	}
	l->state = BUTLER__L_UP;
	l->backoff_ms = br->reconnect_min;
	l->last_refusal[0] = '\0';
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->mtx);
	butler__br_count(br, connects, 1);
	butler__br_count(br, links_up, 1);
	butler__br_log(
	    br, BUTLER_LOG_INFO, "bridge: link to %s is up", l->url);
	pthread_mutex_lock(&br->mtx);
	pthread_cond_broadcast(&br->cond);
	pthread_mutex_unlock(&br->mtx);
}

/* An ERROR from the peer: it refuses, or gives up; we close. */
static void
on_error(struct butler__link *l, const struct butler__frame *f)
{
	char text[BUTLER__ERROR_MAX + 1];
	bool hs;

	memcpy(text, f->body, f->body_len);
	text[f->body_len] = '\0';
	pthread_mutex_lock(&l->mtx);
	hs = l->state == BUTLER__L_HANDSHAKE;
	pthread_mutex_unlock(&l->mtx);
	if (hs)
		butler__br_count(l->br, refused, 1);
	/* A dialer refused says so; a listener's peer logs its own reason. */
	butler__br_log(l->br,
	    once(l, text,
	        l->role == BUTLER__DIAL ? BUTLER_LOG_WARN : BUTLER_LOG_INFO),
	    "bridge: %s %s refused: %s",
	    l->role == BUTLER__DIAL ? "the link to" : "a link from", l->url,
	    text);
	fail(l, false, true, text);
}

/* One frame during the handshake; false: stop reading this buffer. */
static bool
handshake_frame(struct butler__link *l, const struct butler__frame *f)
{
	bool done;

	pthread_mutex_lock(&l->mtx);
	done = l->hello_done;
	pthread_mutex_unlock(&l->mtx);
	if (f->type == BUTLER__F_ERROR) {
		on_error(l, f);
		return false;
	}
	if (l->role == BUTLER__ACCEPT && !done && f->type == BUTLER__F_HELLO)
		on_hello(l, f);
	else if (l->role == BUTLER__ACCEPT && done
	    && f->type == BUTLER__F_AUTH)
		on_auth(l, f);
	else if (l->role == BUTLER__DIAL && !done
	    && f->type == BUTLER__F_WELCOME)
		on_welcome(l, f);
	else if (l->role == BUTLER__DIAL && done && f->type == BUTLER__F_READY)
		on_ready(l, f);
	else
		butler__link_fail(l, true, "frame %u out of the handshake",
		    (unsigned)f->type);
	return true;
}

/* ---- frames once up ----------------------------------------------------- */

/* A dialed link's frame; false: the link failed. */
static bool
dial_frame(struct butler__link *l, const struct butler__frame *f,
    const unsigned char *raw)
{
	struct butler__dtarget *t;

	switch ((enum butler__frame_type)f->type) {
	case BUTLER__F_REPLY:
	case BUTLER__F_FAIL:
	case BUTLER__F_PROGRESS:
		if (!butler__proxy_route(l->br, raw, f->size, f->id)) {
			butler__link_fail(l, true, "answer to no request");
			return false;
		}
		return true;
	case BUTLER__F_CREDIT:
		if (f->target >= l->n_targets) {
			butler__link_fail(l, true, "credit for no server");
			return false;
		}
		pthread_mutex_lock(&l->mtx);
		t = &l->dt[f->target];
		if (f->frames > t->frames || f->bytes > t->bytes) {
			pthread_mutex_unlock(&l->mtx);
			butler__link_fail(
			    l, true, "credit for more than was sent");
			return false;
		}
		t->frames -= f->frames;
		t->bytes -= f->bytes;
		pthread_cond_broadcast(&l->cond);
		pthread_mutex_unlock(&l->mtx);
		return true;
	case BUTLER__F_ERROR:
		on_error(l, f);
		return false;
	case BUTLER__F_HELLO:
	case BUTLER__F_WELCOME:
	case BUTLER__F_AUTH:
	case BUTLER__F_READY:
	case BUTLER__F_SEND:
	case BUTLER__F_CALL:
	case BUTLER__F_CANCEL:
		break;
	}
	butler__link_fail(
	    l, true, "frame %u from a listener", (unsigned)f->type);
	return false;
}

/* Whether a frame of `size` bytes fits the window given what is in
 * flight (the same rule on both sides). */
static bool
fits(uint32_t frames, uint64_t bytes, size_t size, uint32_t wf, uint32_t wb)
{
	return frames < wf && (bytes == 0 || bytes + size <= wb);
}

/*
 * accept_check checks an accepted link's frame before the bridge server
 * sees it: its type, target and kind, and that the peer stays within its
 * credit (counted here). Returns NULL, or the reason to close the link
 * (in why[]); "ERROR" for an ERROR frame. l's mutex held.
 */
static const char *
accept_check(struct butler__link *l, const struct butler__frame *f, char *why,
    size_t len)
{
	struct butler__ltarget *t;
	const butler_server_desc *sd;
	const butler_msg_desc *m;

	switch ((enum butler__frame_type)f->type) {
	case BUTLER__F_SEND:
	case BUTLER__F_CALL:
		if (f->target >= l->n_targets)
			return "frame for no server";
		t = &l->lt[f->target];
		sd = &t->x->spec->servers[t->x->spec_server];
		if (f->kind > sd->n_accepts) {
			snprintf(why, len, "unknown message kind %u",
			    (unsigned)f->kind);
			return why;
		}
		m = &t->x->spec->messages[sd->accepts[f->kind - 1]];
		if ((m->reply >= 0) != (f->type == BUTLER__F_CALL)) {
			snprintf(why, len, "%s of '%s', which is %s",
			    f->type == BUTLER__F_CALL ? "call" : "send",
			    m->name,
			    m->reply >= 0 ? "a request" : "no request");
			return why;
		}
		if (!fits(t->in_frames, t->in_bytes, f->size, l->win_frames,
		        l->win_bytes))
			return "frame beyond its credit";
		t->in_frames++;
		t->in_bytes += f->size;
		return NULL;
	case BUTLER__F_CANCEL:
		return NULL;
	case BUTLER__F_ERROR:
		return "ERROR";
	case BUTLER__F_HELLO:
	case BUTLER__F_WELCOME:
	case BUTLER__F_AUTH:
	case BUTLER__F_READY:
	case BUTLER__F_REPLY:
	case BUTLER__F_FAIL:
	case BUTLER__F_PROGRESS:
	case BUTLER__F_CREDIT:
		break;
	}
	snprintf(why, len, "frame %u from a dialer", (unsigned)f->type);
	return why;
}

/*
 * accept_scan takes the whole frames of an accepted link's buffer from
 * *off, checked under one hold of the lock; returns their count and moves
 * *off past them. A frame that fails its check closes the link (an ERROR
 * frame is the peer's reason, logged).
 */
static size_t
accept_scan(struct butler__link *l, size_t *off)
{
	struct butler__frame f;
	const char *bad = NULL, *why;
	char buf[160];
	size_t n = 0;
	int p = BUTLER__PARSE_MORE;

	pthread_mutex_lock(&l->mtx);
	for (;;) {
		p = butler__frame_next(l->rbuf + *off, l->rlen - *off,
		    l->br->max_frame, &f, &why);
		if (p != BUTLER__PARSE_FRAME)
			break;
		if ((bad = accept_check(l, &f, buf, sizeof buf)) != NULL)
			break;
		*off += f.size;
		n++;
	}
	pthread_mutex_unlock(&l->mtx);
	butler__br_count(l->br, frames_in, n);
	if (p == BUTLER__PARSE_BAD)
		butler__link_fail(l, true, "malformed frame: %s", why);
	else if (bad != NULL && strcmp(bad, "ERROR") == 0)
		on_error(l, &f);
	else if (bad != NULL)
		butler__link_fail(l, true, "%s", bad);
	return n;
}

/*
 * Reads on after the buffer's frames were taken (`used` bytes off its
 * front): grows it for a frame larger than it, and starts the next read,
 * or finishes a connection that is closing. rx_busy is set.
 */
static void
read_on(struct butler__link *l, size_t used)
{
	size_t need;

	pthread_mutex_lock(&l->mtx);
	if (used > 0) {
		memmove(l->rbuf, l->rbuf + used, l->rlen - used);
		l->rlen -= used;
	}
	if (!live(l)) {
		pthread_mutex_unlock(&l->mtx);
		maybe_finish(l, &l->rx_busy);
		return;
	}
	need = frame_need(l->rbuf, l->rlen);
	if (!read_room(l, need)) {
		pthread_mutex_unlock(&l->mtx);
		butler__link_fail(l, false, "out of memory");
		maybe_finish(l, &l->rx_busy);
		return;
	}
	pthread_mutex_unlock(&l->mtx);
	start_read(l);
}

static void
rx_cb(void *arg)
{
	struct butler__link *l = arg;
	struct butler_bridge *br = l->br;
	int rv = nng_aio_result(l->rx_aio);
	size_t n = nng_aio_count(l->rx_aio), off = 0, scanned = 0;
	struct butler__frame f;
	const char *why;
	enum butler__lstate st;

	pthread_mutex_lock(&l->mtx);
	if (!live(l)) {
		pthread_mutex_unlock(&l->mtx);
		maybe_finish(l, &l->rx_busy);
		return;
	}
	if (rv == 0)
		l->rlen += n;
	st = l->state;
	pthread_mutex_unlock(&l->mtx);
	if (rv != 0) {
		butler__link_fail(l, false, "%s",
		    rv == NNG_ECONNSHUT || rv == NNG_ECLOSED
		        ? "the peer closed the connection"
		        : rv == NNG_ETIMEDOUT ? "the handshake timed out"
		                              : nng_strerror(rv));
		read_on(l, 0);
		return;
	}
	butler__br_count(br, bytes_in, n);
	if (st == BUTLER__L_HANDSHAKE
	    && butler__br_now_ns() > l->deadline_ns) {
		butler__link_fail(l, false, "the handshake timed out");
		read_on(l, 0);
		return;
	}

	/* The handshake, a frame at a time: each may change the state. */
	for (;;) {
		int p;

		pthread_mutex_lock(&l->mtx);
		st = l->state;
		if (l->refusing) {
			/* Nothing more is read from a refused peer. */
			off = l->rlen;
			st = BUTLER__L_CLOSING;
		}
		pthread_mutex_unlock(&l->mtx);
		if (st != BUTLER__L_HANDSHAKE)
			break;
		p = butler__frame_next(l->rbuf + off, l->rlen - off,
		    BUTLER__HANDSHAKE_MAX, &f, &why);
		if (p == BUTLER__PARSE_MORE)
			break;
		if (p == BUTLER__PARSE_BAD) {
			butler__link_fail(l, true, "malformed frame: %s", why);
			break;
		}
		butler__br_count(br, frames_in, 1);
		off += f.size;
		if (!handshake_frame(l, &f))
			break;
	}
	/* Up: an accepted link's frames are checked and lent to the bridge
	 * server; a dialed link's answers go to their proxies. */
	if (st == BUTLER__L_UP && l->role == BUTLER__ACCEPT) {
		/* The batch the bridge server gets starts at the buffer's
		 * front: handshake frames read with it go first. */
		if (off > 0) {
			memmove(l->rbuf, l->rbuf + off, l->rlen - off);
			l->rlen -= off;
			off = 0;
		}
		if (accept_scan(l, &off) > 0)
			scanned = off;
	} else if (st == BUTLER__L_UP) {
		size_t frames = 0;

		for (;;) {
			int p = butler__frame_next(l->rbuf + off,
			    l->rlen - off, br->max_frame, &f, &why);

			if (p == BUTLER__PARSE_MORE)
				break;
			if (p == BUTLER__PARSE_BAD) {
				butler__link_fail(
				    l, true, "malformed frame: %s", why);
				break;
			}
			frames++;
			if (!dial_frame(l, &f, l->rbuf + off))
				break;
			off += f.size;
		}
		butler__br_count(br, frames_in, frames);
	}
	if (scanned > 0) {
		/* Whole frames for the bridge server: lend it the buffer. */
		bool lend;

		pthread_mutex_lock(&l->mtx);
		lend = l->state == BUTLER__L_UP;
		if (lend) {
			l->rx_busy = false;
			l->rx_lent = true;
		}
		pthread_mutex_unlock(&l->mtx);
		if (!lend) {
			read_on(l, off);
			return;
		}
		if (butler__expose_deliver(l, scanned))
			return; /* it hands the buffer back */
		butler__expose_refuse(l, l->rbuf, scanned);
		pthread_mutex_lock(&l->mtx);
		l->rx_lent = false;
		l->rx_busy = true;
		pthread_mutex_unlock(&l->mtx);
	}
	read_on(l, off);
}

bool
butler__link_give_back(struct butler__link *l, size_t used)
{
	pthread_mutex_lock(&l->mtx);
	if (l->state != BUTLER__L_UP) {
		l->down_done = true;
		pthread_mutex_unlock(&l->mtx);
		maybe_finish(l, &l->rx_lent);
		return false;
	}
	l->rx_lent = false;
	l->rx_busy = true;
	pthread_mutex_unlock(&l->mtx);
	read_on(l, used);
	return true;
}

/* ---- dialing ------------------------------------------------------------ */

static void
connected(struct butler__link *l, nng_stream *s)
{
	int rv;

	(void)nng_stream_set_bool(s, NNG_OPT_TCP_NODELAY, true);
	(void)nng_stream_set_bool(s, NNG_OPT_TCP_KEEPALIVE, true);
	pthread_mutex_lock(&l->mtx);
	if (l->state != BUTLER__L_CONNECTING) {
		pthread_mutex_unlock(&l->mtx);
		nng_stream_free(s);
		return;
	}
	l->s = s;
	l->state = BUTLER__L_HANDSHAKE;
	l->hello_done = false;
	l->refusing = false;
	l->rlen = 0;
	l->out.len = 0;
	l->deadline_ns
	    = butler__br_now_ns() + (uint64_t)BUTLER__HANDSHAKE_MS * 1000000u;
	rv = nonce(l->nonce);
	if (rv == BUTLER_OK)
		rv = put_hello(l);
	if (rv == BUTLER_OK && !read_room(l, READ_MIN))
		rv = BUTLER_ENOMEM;
	if (rv == BUTLER_OK)
		l->rx_busy = true;
	pthread_mutex_unlock(&l->mtx);
	if (rv != BUTLER_OK) {
		butler__link_fail(l, false, "cannot start the handshake: %s",
		    butler_strerror(rv));
		return;
	}
	start_read(l);
	butler__link_kick(l);
}

/*
 * timer_cb ends a dial (a stream, or a failure: redial after the backoff)
 * or a backoff sleep (dial now). The timer aio does both, one at a time.
 */
static void
timer_cb(void *arg)
{
	struct butler__link *l = arg;
	int rv = nng_aio_result(l->timer_aio);
	bool dialing;
	unsigned delay = 0;

	pthread_mutex_lock(&l->mtx);
	dialing = l->dialing;
	l->dialing = false;
	if (l->state != BUTLER__L_CONNECTING) {
		pthread_mutex_unlock(&l->mtx);
		if (dialing && rv == 0)
			nng_stream_free(nng_aio_get_output(l->timer_aio, 0));
		return;
	}
	if (dialing && rv != 0) {
		delay = l->backoff_ms;
		l->backoff_ms = l->backoff_ms >= l->br->reconnect_max / 2
		    ? l->br->reconnect_max
		    : l->backoff_ms * 2;
	}
	if (!dialing && rv == 0)
		l->dialing = true;
	pthread_mutex_unlock(&l->mtx);
	if (dialing && rv == 0) {
		connected(l, nng_aio_get_output(l->timer_aio, 0));
	} else if (dialing) {
		butler__br_log(l->br, BUTLER_LOG_DEBUG,
		    "bridge: cannot connect to %s: %s (again in %u ms)",
		    l->url, nng_strerror(rv), delay);
		nng_sleep_aio((nng_duration)delay, l->timer_aio);
	} else if (rv == 0) {
		nng_stream_dialer_dial(l->dialer, l->timer_aio);
	}
}

int
butler__link_new_dial(
    struct butler_bridge *br, const char *url, struct butler__link **out)
{
	struct butler__link *l = link_alloc(br, BUTLER__DIAL);
	int rv;

	*out = NULL;
	if (l == NULL || (l->url = strdup(url)) == NULL) {
		butler__link_free(l);
		return BUTLER_ENOMEM;
	}
	rv = nng_stream_dialer_alloc(&l->dialer, url);
	if (rv == 0 && strncmp(url, "tls+tcp", 7) == 0) {
		rv = butler__br_tls(br, false, url, &l->tls);
		if (rv != BUTLER_OK) {
			butler__link_free(l);
			return rv;
		}
		rv = nng_stream_dialer_set_ptr(
		    l->dialer, NNG_OPT_TLS_CONFIG, l->tls);
	}
	if (rv != 0) {
		butler__br_log(br, BUTLER_LOG_ERROR,
		    "bridge: cannot dial %s: %s", url, nng_strerror(rv));
		butler__link_free(l);
		return BUTLER_EINVAL;
	}
	*out = l;
	return BUTLER_OK;
}

void
butler__link_start_dial(struct butler__link *l)
{
	pthread_mutex_lock(&l->mtx);
	if (l->state != BUTLER__L_IDLE) {
		pthread_mutex_unlock(&l->mtx);
		return;
	}
	l->state = BUTLER__L_CONNECTING;
	l->dialing = true;
	pthread_mutex_unlock(&l->mtx);
	nng_stream_dialer_dial(l->dialer, l->timer_aio);
}

/* ---- listening ---------------------------------------------------------- */

static void
accept_cb(void *arg)
{
	struct butler__listener *lis = arg;
	struct butler_bridge *br = lis->br;
	int rv = nng_aio_result(lis->aio);
	struct butler__link *l = NULL;
	nng_stream *s;

	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		return;
	if (rv != 0) {
		butler__br_log(br, BUTLER_LOG_WARN,
		    "bridge: accepting on %s: %s", lis->bound,
		    nng_strerror(rv));
		goto again;
	}
	s = nng_aio_get_output(lis->aio, 0);
	pthread_mutex_lock(&br->mtx);
	if (br->io_closed || br->n_accepted >= BUTLER__MAX_ACCEPTED
	    || (l = link_alloc(br, BUTLER__ACCEPT)) == NULL) {
		bool closed = br->io_closed;

		pthread_mutex_unlock(&br->mtx);
		nng_stream_free(s);
		if (closed)
			return;
		butler__br_log(br, BUTLER_LOG_WARN,
		    "bridge: a connection on %s refused: %s", lis->bound,
		    l == NULL ? "too many links" : "out of memory");
		goto again;
	}
	l->url = peer_name(s);
	l->next = br->accepted;
	br->accepted = l;
	br->n_accepted++;
	pthread_mutex_unlock(&br->mtx);

	(void)nng_stream_set_bool(s, NNG_OPT_TCP_NODELAY, true);
	(void)nng_stream_set_bool(s, NNG_OPT_TCP_KEEPALIVE, true);
	pthread_mutex_lock(&l->mtx);
	if (l->state != BUTLER__L_IDLE) {
		/* Closed for good meanwhile (the bridge's I/O closes). */
		pthread_mutex_unlock(&l->mtx);
		nng_stream_free(s);
		return;
	}
	l->s = s;
	l->state = BUTLER__L_HANDSHAKE;
	l->deadline_ns
	    = butler__br_now_ns() + (uint64_t)BUTLER__HANDSHAKE_MS * 1000000u;
	rv = nonce(l->nonce);
	if (rv == BUTLER_OK && !read_room(l, READ_MIN))
		rv = BUTLER_ENOMEM;
	if (rv == BUTLER_OK)
		l->rx_busy = true;
	pthread_mutex_unlock(&l->mtx);
	if (rv != BUTLER_OK)
		butler__link_fail(
		    l, false, "cannot start: %s", butler_strerror(rv));
	else
		start_read(l);
again:
	nng_stream_listener_accept(lis->l, lis->aio);
}

int
butler__listener_open(struct butler__listener *lis)
{
	struct butler_bridge *br = lis->br;
	const char *url = lis->url;
	int rv, port = 0;

	if (strncmp(url, "tls+tcp", 7) == 0) {
		rv = butler__br_tls(br, true, url, &lis->tls);
		if (rv != BUTLER_OK)
			return rv;
	}
	rv = nng_aio_alloc(&lis->aio, accept_cb, lis);
	if (rv == 0)
		rv = nng_stream_listener_alloc(&lis->l, url);
	if (rv == 0 && lis->tls != NULL)
		rv = nng_stream_listener_set_ptr(
		    lis->l, NNG_OPT_TLS_CONFIG, lis->tls);
	if (rv == 0 && strncmp(url, "ipc://", 6) == 0)
		rv = nng_stream_listener_set_int(
		    lis->l, NNG_OPT_IPC_PERMISSIONS, 0600);
	if (rv == 0)
		rv = nng_stream_listener_listen(lis->l);
	if (rv != 0) {
		butler__br_log(br, BUTLER_LOG_ERROR,
		    "bridge: cannot listen on %s: %s", url, nng_strerror(rv));
		return rv == NNG_ENOMEM ? BUTLER_ENOMEM : BUTLER_ESYS;
	}
	/* The bound address: the port chosen for port 0. */
	if (strstr(url, "tcp://") != NULL
	    && nng_stream_listener_get_int(
	           lis->l, NNG_OPT_TCP_BOUND_PORT, &port)
	        == 0) {
		const char *colon = strrchr(url, ':');
		size_t n = (size_t)(colon - url);

		lis->bound = malloc(n + 16);
		if (lis->bound != NULL)
			snprintf(
			    lis->bound, n + 16, "%.*s:%d", (int)n, url, port);
	} else {
		lis->bound = strdup(url);
	}
	return lis->bound != NULL ? BUTLER_OK : BUTLER_ENOMEM;
}

void
butler__listener_accept(struct butler__listener *lis)
{
	if (lis->l != NULL && !lis->accepting) {
		lis->accepting = true;
		nng_stream_listener_accept(lis->l, lis->aio);
	}
}

/* ---- closing everything ------------------------------------------------- */

static void
close_link(struct butler__link *l)
{
	nng_stream *s;

	pthread_mutex_lock(&l->mtx);
	l->state = BUTLER__L_CLOSED;
	s = l->s;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->mtx);
	if (s != NULL)
		nng_stream_close(s);
	if (l->dialer != NULL)
		nng_stream_dialer_close(l->dialer);
	nng_aio_stop(l->rx_aio);
	nng_aio_stop(l->tx_aio);
	nng_aio_stop(l->timer_aio);
	pthread_mutex_lock(&l->mtx);
	l->rx_busy = l->tx_busy = false;
	pthread_mutex_unlock(&l->mtx);
}

void
butler__link_close_all(struct butler_bridge *br)
{
	struct butler__link *held = NULL, *l, *next;

	for (unsigned i = 0; i < br->n_lis; i++) {
		if (br->lis[i].l != NULL)
			nng_stream_listener_close(br->lis[i].l);
		if (br->lis[i].aio != NULL)
			nng_aio_stop(br->lis[i].aio);
	}
	for (unsigned i = 0; i < br->n_dials; i++)
		close_link(br->dials[i]);
	/* Accepted links: held, so that none is freed under us by a
	 * callback finishing it, or later; they are freed with the bridge. */
	pthread_mutex_lock(&br->mtx);
	br->io_closed = true;
	held = br->accepted;
	for (l = held; l != NULL; l = l->next)
		butler__link_ref(l);
	pthread_mutex_unlock(&br->mtx);
	for (l = held; l != NULL; l = next) {
		next = l->next;
		close_link(l);
	}
	/* The references stay: butler_bridge_free() frees these links,
	 * whatever still refers to them (frames the hub destroys). */
}

/* ---- what the proxies and the bridge server call ------------------------ */

int
butler__link_forward(struct butler__link *l, uint16_t target, uint16_t kind,
    bool call, uint64_t id, int32_t timeout_ms, const butler_msg_desc *desc,
    const void *msg, bool (*give_up)(void *), void *arg, uint32_t *gen)
{
	size_t n = desc->wire_size != NULL ? desc->wire_size(msg) : SIZE_MAX;
	size_t size = n == SIZE_MAX ? SIZE_MAX : n + (call ? 21u : 9u);
	struct butler__dtarget *t = &l->dt[target];
	bool waited = false;
	int rv;

	if (size == SIZE_MAX || size > l->br->max_frame)
		return BUTLER_EINVAL;
	pthread_mutex_lock(&l->mtx);
	for (;;) {
		struct timespec ts;

		if (l->state != BUTLER__L_UP) {
			pthread_mutex_unlock(&l->mtx);
			return BUTLER_ECLOSED;
		}
		if (size > l->peer_max) {
			pthread_mutex_unlock(&l->mtx);
			return BUTLER_EINVAL;
		}
		if (fits(t->frames, t->bytes, size, l->win_frames,
		        l->win_bytes))
			break;
		if (!waited) {
			waited = true;
			butler__br_count(l->br, credit_waits, 1);
			/* What is written already may be what frees room. */
			pthread_mutex_unlock(&l->mtx);
			butler__link_kick(l);
			pthread_mutex_lock(&l->mtx);
			continue;
		}
		ts = butler__br_deadline(20);
		pthread_cond_timedwait(&l->cond, &l->mtx, &ts);
		if (give_up != NULL && give_up(arg)) {
			pthread_mutex_unlock(&l->mtx);
			return BUTLER_ECANCELED;
		}
	}
	rv = call ? butler__put_call(&l->out, l->peer_max, target, kind, id,
	         timeout_ms, desc, msg, NULL)
	          : butler__put_send(
	              &l->out, l->peer_max, target, kind, desc, msg, NULL);
	if (rv == BUTLER_OK) {
		t->frames++;
		t->bytes += size;
		appended(l);
	}
	*gen = l->gen;
	/* An idle writer writes at once (no frame waits for a batch to
	 * end); a busy one takes what accumulated when its write is done,
	 * so under load many frames share a write. */
	unlock_and_write(l);
	return rv;
}

void
butler__link_cancel(struct butler__link *l, uint32_t gen, uint64_t id)
{
	pthread_mutex_lock(&l->mtx);
	if (l->state == BUTLER__L_UP && l->gen == gen
	    && butler__put_id(&l->out, BUTLER__F_CANCEL, id) == BUTLER_OK)
		appended(l);
	unlock_and_write(l);
}

bool
butler__link_up(struct butler__link *l, uint32_t *gen)
{
	bool up;

	pthread_mutex_lock(&l->mtx);
	up = l->state == BUTLER__L_UP;
	*gen = l->gen;
	pthread_mutex_unlock(&l->mtx);
	return up;
}

int
butler__link_answer(struct butler__link *l, uint32_t gen, uint8_t type,
    uint64_t id, const butler_msg_desc *desc, const void *msg, int code)
{
	int rv = BUTLER_ECLOSED;

	pthread_mutex_lock(&l->mtx);
	if (l->state == BUTLER__L_UP && l->gen == gen) {
		rv = type == BUTLER__F_FAIL
		    ? butler__put_fail(&l->out, id, code)
		    : butler__put_answer(
		        &l->out, l->br->max_frame, type, id, desc, msg);
		if (rv == BUTLER_EINVAL && type == BUTLER__F_REPLY)
			/* An answer that cannot travel fails the call. */
			rv = butler__put_fail(&l->out, id, BUTLER_EINVAL);
		if (rv == BUTLER_OK)
			appended(l);
	}
	unlock_and_write(l);
	return rv;
}

void
butler__link_release(struct butler__link *l, uint16_t target, size_t size)
{
	struct butler__ltarget *t = &l->lt[target];

	/* The bridge server's own count, applied under the lock once a
	 * batch is done (butler__link_credit()). */
	t->rel_frames++;
	t->rel_bytes += size;
	l->released = true;
}

void
butler__link_release_now(struct butler__link *l, uint16_t target, size_t size)
{
	struct butler__ltarget *t = &l->lt[target];

	pthread_mutex_lock(&l->mtx);
	t->in_frames--;
	t->in_bytes -= size;
	t->owed_frames++;
	t->owed_bytes += size;
	pthread_mutex_unlock(&l->mtx);
}

/* Writes the credit owed, unless the output waits on a slow reader. */
static void
credit_locked(struct butler__link *l)
{
	if (l->state != BUTLER__L_UP || l->out.len >= BUTLER__OUT_HIGH)
		return;
	for (unsigned t = 0; t < l->n_targets; t++) {
		struct butler__ltarget *lt = &l->lt[t];

		if (lt->owed_frames == 0)
			continue;
		if (butler__put_credit(&l->out, (uint16_t)t, lt->owed_frames,
		        (uint32_t)lt->owed_bytes)
		    != BUTLER_OK)
			return;
		appended(l);
		lt->owed_frames = 0;
		lt->owed_bytes = 0;
	}
}

void
butler__link_credit(struct butler__link *l)
{
	pthread_mutex_lock(&l->mtx);
	if (l->released) {
		l->released = false;
		for (unsigned i = 0; i < l->n_targets; i++) {
			struct butler__ltarget *t = &l->lt[i];

			t->in_frames -= t->rel_frames;
			t->in_bytes -= t->rel_bytes;
			t->owed_frames += t->rel_frames;
			t->owed_bytes += t->rel_bytes;
			t->rel_frames = 0;
			t->rel_bytes = 0;
		}
	}
	credit_locked(l);
	unlock_and_write(l);
}
