/* SPDX-License-Identifier: MIT */
/*
 * servers/bridge/internal.h — what the bridge's units share.
 *
 *   bridge.c  the bridge object: configuration checks, names, the
 *             lifecycle of its I/O (opened by the first of its servers to
 *             start, closed by the last to stop), statistics
 *   config.c  the JSON configuration (cJSON), secrets, URL checks
 *   link.c    one nng byte stream per link: dial and reconnect, accept,
 *             the handshake, reading and writing frames, credits
 *   proxy.c   the side that uses a remote server: the proxy in its place
 *   expose.c  the side that exposes servers: the bridge server delivering
 *   frame.c   the frames themselves (no nng, no runtime)
 *
 * Threads: proxies run on their servers' threads, the exposing side on the
 * bridge server's thread, and link I/O completes on nng's threads. A link
 * is shared through its mutex; what each side keeps of its own (a proxy's
 * table of requests in flight, the bridge server's calls and pending
 * deliveries) is touched by its own thread only.
 */
#ifndef BUTLER_BRIDGE_INTERNAL_H
#define BUTLER_BRIDGE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include <butler/bridge.h>

#include "bridge.butler.h"
#include "frame.h"

struct event;
struct butler__link;
struct butler__pgroup;

/* Defaults of butler_bridge_config. */
#define BUTLER__DEFAULT_WINDOW 8192u
#define BUTLER__DEFAULT_WINDOW_BYTES (1024u * 1024u)
#define BUTLER__DEFAULT_MAX_FRAME (16u * 1024u * 1024u + 64u)
#define BUTLER__DEFAULT_RECONNECT_MIN 100u
#define BUTLER__DEFAULT_RECONNECT_MAX 5000u
/* Accepted links at once (each may have one batch in the bridge server's
 * inbox and one notice: well within its capacity of 4096). */
#define BUTLER__MAX_ACCEPTED 1024u
/* How long a peer has for each step of the handshake. */
#define BUTLER__HANDSHAKE_MS 5000
/* A proxy looks for callers that gave up this often. */
#define BUTLER__CANCEL_POLL_MS 10
/* Bytes a link's output may hold before the exposing side withholds
 * the credit it owes (a peer that does not read its answers). */
#define BUTLER__OUT_HIGH (4u * 1024u * 1024u)

/* ---- the exposing side ---------------------------------------------------
 */

/* butler__exposed is one server peers may use. */
struct butler__exposed {
	const butler_spec *spec;
	unsigned spec_server; /* index in spec->servers */
	unsigned server;      /* hub-wide index */
	const char *name;     /* spec name */
};

/* butler__pending is a frame waiting for room in its server's inbox. */
struct butler__pending {
	struct butler__pending *next;
	uint64_t since_ns; /* when it arrived (a CALL's timeout runs) */
	size_t len;
	unsigned char frame[];
};

/* butler__ltarget is one target of an accepted link: an exposed server. */
struct butler__ltarget {
	const struct butler__exposed *x;
	/* Under the link's mutex: what the peer has in flight (received, not
	 * delivered) and what was delivered but not yet credited back. */
	uint32_t in_frames;
	uint64_t in_bytes;
	uint32_t owed_frames;
	uint64_t owed_bytes;
	/* The bridge server's thread: frames waiting for room, in order;
	 * what it delivered since it last gave credit. */
	struct butler__pending *head, *tail;
	uint32_t rel_frames;
	uint64_t rel_bytes;
};

/* butler__call is a request the bridge server delivered for a link. */
struct butler__call {
	struct butler__call *next; /* hash chain */
	struct butler__link *link; /* holds a reference */
	uint64_t id;               /* the peer's request id */
	uint64_t call;             /* butler_call()'s id */
	const butler_msg_desc *request;
	uint32_t gen; /* the connection to answer on */
	uint16_t target;
	bool ending;   /* the peer gave up, or the link went: send nothing */
	bool in_table; /* in the link's calls */
};

/* A hash of calls by the peer's id (the bridge server's thread). */
struct butler__calltab {
	struct butler__call **bucket;
	size_t n_buckets, count;
};

/* ---- the using side ------------------------------------------------------
 */

/* butler__dtarget is one target of a dialed link: a remote server. */
struct butler__dtarget {
	struct butler__pgroup *g;
	uint8_t spec;    /* index among the HELLO's specs */
	uint16_t server; /* index in that spec's servers */
	/* Under the link's mutex: what is in flight, not yet credited back.
	 * A frame may go when frames < window and it fits the byte window,
	 * or nothing is in flight (a frame larger than the byte window goes
	 * alone); the listener checks the same, with its own counts, which
	 * are never larger. */
	uint32_t frames;
	uint64_t bytes;
};

/* One request a proxy forwarded and waits for. */
struct butler__req {
	uint64_t id; /* 0: free slot */
	uint64_t promise;
	const butler_msg_desc *request;
	uint32_t gen; /* the link's connection it went out on */
};

/* Open addressing by id (a proxy's own thread). */
struct butler__reqtab {
	struct butler__req *slot;
	size_t cap, count, used; /* used: live and ended slots */
};

/* butler__proxy is one instance of a remote server, in this hub. */
struct butler__proxy {
	struct butler__pgroup *g;
	butler_server *self;
	unsigned slot; /* in the bridge's slots: the low bits of ids */
	int efd;       /* eventfd: frames for it are queued */
	struct event *efd_ev, *tick_ev;
	bool tick_armed, started;
	pthread_mutex_t qmtx; /* q: answers routed here by link I/O */
	struct butler__obuf q;
	struct butler__reqtab tab;
	uint64_t seq;
	void *scratch; /* room to decode one reply or progress message */
};

/* butler__pgroup is a remote server: its proxies and its link. */
struct butler__pgroup {
	struct butler_bridge *br;
	const butler_spec *spec;
	unsigned spec_server, server;
	const char *name;
	struct butler__link *link;
	uint16_t target; /* its index among the link's targets */
	unsigned n_inst;
	struct butler__proxy *inst;
	size_t scratch_size;
};

/* ---- links ---------------------------------------------------------------
 */

enum butler__role { BUTLER__DIAL = 0, BUTLER__ACCEPT = 1 };

enum butler__lstate {
	BUTLER__L_IDLE = 0,   /* not started (dial) */
	BUTLER__L_CONNECTING, /* dialing, or waiting to redial */
	BUTLER__L_HANDSHAKE,  /* connected, proving and comparing */
	BUTLER__L_UP,         /* frames flow */
	BUTLER__L_CLOSING,    /* the stream is being torn down */
	BUTLER__L_CLOSED      /* for good */
};

struct butler__link {
	struct butler_bridge *br;
	enum butler__role role;
	atomic_uint refs;
	pthread_mutex_t mtx;
	pthread_cond_t cond; /* state and credit changes */
	enum butler__lstate state;
	uint32_t gen; /* changes with every connection lost */
	char *url;    /* dial: where; accept: the peer, for logs */
	nng_stream_dialer *dialer;
	nng_tls_config *tls;
	nng_stream *s;
	nng_aio *rx_aio, *tx_aio, *timer_aio;
	unsigned backoff_ms;
	/* Reading: one buffer, one read in flight or lent to the bridge
	 * server (accepted links: its whole frames, until it hands it back).
	 */
	unsigned char *rbuf;
	size_t rlen, rcap;
	bool rx_busy, rx_lent;
	/* Writing: frames are appended to out; one write of wbuf at a time. */
	struct butler__obuf out, wbuf;
	size_t woff;
	uint64_t out_frames, w_frames; /* frames in out, in wbuf */
	bool tx_busy;
	/* The handshake. */
	unsigned char nonce[BUTLER__NONCE_LEN], peer_nonce[BUTLER__NONCE_LEN];
	bool hello_done; /* dial: AUTH sent; accept: HELLO checked */
	bool dialing;    /* dial: a dial (not a backoff sleep) in flight */
	bool refusing;   /* an ERROR is on its way: close once written */
	/* Targets: dial, fixed at setup; accept, made from the HELLO. */
	unsigned n_targets;
	struct butler__dtarget *dt;
	struct butler__ltarget *lt;
	uint32_t win_frames, win_bytes; /* the window, both roles */
	size_t peer_max;                /* dial: the listener's max_frame */
	uint64_t deadline_ns;           /* the handshake's */
	char refuse[BUTLER__ERROR_MAX]; /* accept: why AUTH will be refused */
	/* Accepted links, the bridge server's thread. */
	struct butler__calltab calls;
	struct butler__link *pend_next;
	bool pend_listed;
	bool released; /* some lt[].rel_* not yet applied */
	bool down_done;
	struct butler__link *next; /* the bridge's accepted links */
	char last_refusal[BUTLER__ERROR_MAX + 1]; /* dial: logged once */
};

/* ---- the bridge ----------------------------------------------------------
 */

struct butler__listener {
	struct butler_bridge *br;
	char *url, *bound;
	nng_stream_listener *l;
	nng_tls_config *tls;
	nng_aio *aio;
	bool accepting;
};

/* Counters, one atomic each (butler_bridge_stats). */
struct butler__counters {
	atomic_uint_fast64_t links_up, connects, refused, lost, malformed,
	    frames_out, frames_in, bytes_out, bytes_in, dropped, closed,
	    credit_waits, full_retries;
};

struct butler_bridge {
	butler_hub *hub;
	const butler_spec *specs[BUTLER_MAX_IMPORTS]; /* the hub's */
	unsigned n_specs;
	/* Configuration, copied. */
	unsigned char *secret;
	size_t secret_len;
	char *tls_ca, *tls_cert, *tls_key, *tls_name; /* file names */
	unsigned flags, reconnect_min, reconnect_max;
	uint32_t window, window_bytes;
	size_t max_frame;
	butler_log_fn log;
	butler_log_level log_level;
	void *log_user;
	/* Exposing. */
	unsigned bridge_server; /* hub-wide, or BUTLER_NO_SERVER */
	struct butler__exposed *exp;
	unsigned n_exp;
	struct butler__listener *lis;
	unsigned n_lis;
	/* Using. */
	struct butler__pgroup *groups;
	unsigned n_groups;
	struct butler__proxy **slots;
	unsigned n_slots;
	struct butler__link **dials;
	unsigned n_dials;
	/* Lifecycle and accepted links, under mtx. */
	pthread_mutex_t mtx;
	pthread_cond_t cond; /* a dialed link came up */
	unsigned members;    /* the bridge's servers running now */
	bool io_open, io_closed;
	struct butler__link *accepted;
	unsigned n_accepted;
	char last_refusal[BUTLER__ERROR_MAX + 1]; /* accepted links: logged
	                                             once */
	/* The bridge server's thread. */
	butler_server *self;
	void *scratch;
	size_t scratch_size;
	struct event *retry_ev;
	unsigned retry_us;
	struct butler__link *pend; /* links with pending deliveries */
	struct butler__counters st;
};

/* Slot bits of a request id: the proxy instance that made it. */
#define BUTLER__SLOT_BITS 20u
#define BUTLER__SLOT_MASK ((1u << BUTLER__SLOT_BITS) - 1u)

/* ---- bridge.c ------------------------------------------------------------
 */

/* butler__br_log formats and passes a message to the bridge's log. */
void butler__br_log(const struct butler_bridge *br, butler_log_level level,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* butler__br_member_start / _stop: a bridge server or proxy instance
 * starts or stops; the first opens the bridge's I/O, the last closes it. */
void butler__br_member_start(struct butler_bridge *br);
void butler__br_member_stop(struct butler_bridge *br);

/* butler__br_count adds n to a counter. */
#define butler__br_count(br, field, n)                                        \
	atomic_fetch_add_explicit(                                            \
	    &(br)->st.field, (uint_fast64_t)(n), memory_order_relaxed)

/* butler__br_now_ns is CLOCK_MONOTONIC in nanoseconds. */
uint64_t butler__br_now_ns(void);

/* butler__br_tls makes the TLS configuration of a listener or a dialer of
 * url (the server name: the configured one, or url's host). */
int butler__br_tls(struct butler_bridge *br, bool listen, const char *url,
    nng_tls_config **out /* OUT */);

/* ---- config.c ------------------------------------------------------------
 */

/* butler__url_check checks that url is a transport the bridge speaks and,
 * without allow_remote, a loopback address; *why says what is wrong. */
int butler__url_check(const char *url, bool allow_remote, bool listen,
    char *why, size_t why_len);

/* butler__secret_read reads a secret file (mode 0600 or stricter). */
int butler__secret_read(const char *path, unsigned char **out, size_t *len,
    char *why, size_t why_len);

/* ---- link.c --------------------------------------------------------------
 */

/* butler__link_new_dial makes the dialed link to url (not started). */
int butler__link_new_dial(
    struct butler_bridge *br, const char *url, struct butler__link **out);

/* butler__link_start_dial starts dialing (the bridge's I/O opens). */
void butler__link_start_dial(struct butler__link *l);

/* butler__listener_open listens (bound now, accepting later). */
int butler__listener_open(struct butler__listener *lis);

/* butler__listener_accept starts accepting. */
void butler__listener_accept(struct butler__listener *lis);

/* butler__link_close_all closes every link and listener for good and
 * waits for their callbacks; after it no I/O callback runs. */
void butler__link_close_all(struct butler_bridge *br);

/* butler__link_free frees a link no longer in use (bridge_free). */
void butler__link_free(struct butler__link *l);
void butler__link_ref(struct butler__link *l);
void butler__link_unref(struct butler__link *l);

/* butler__link_kick starts writing what l's output holds, if idle. */
void butler__link_kick(struct butler__link *l);

/*
 * butler__link_forward appends a SEND (call false) or CALL frame for
 * target t of dialed link l, waiting for credit as needed: until credit,
 * the link is down (BUTLER_ECLOSED) or give_up(arg) says the caller has
 * gone (BUTLER_ECANCELED). *gen is the connection it went on. Returns
 * BUTLER_EINVAL when the message cannot be encoded or is larger than the
 * peer accepts, BUTLER_ENOMEM. An idle writer starts writing at once.
 */
int butler__link_forward(struct butler__link *l, uint16_t t, uint16_t kind,
    bool call, uint64_t id, int32_t timeout_ms, const butler_msg_desc *desc,
    const void *msg, bool (*give_up)(void *), void *arg, uint32_t *gen);

/* butler__link_cancel appends a CANCEL for id if connection gen is up. */
void butler__link_cancel(struct butler__link *l, uint32_t gen, uint64_t id);

/* butler__link_fail closes l's connection for a reason (malformed: a bad
 * frame, counted); a dialed link redials. Any thread. */
void butler__link_fail(struct butler__link *l, bool malformed, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

/* For the exposing side, on the bridge server's thread: */
/* butler__link_answer appends a REPLY/PROGRESS (desc and msg) or FAIL
 * (code) frame if connection gen is still up; kicks. */
int butler__link_answer(struct butler__link *l, uint32_t gen, uint8_t type,
    uint64_t id, const butler_msg_desc *desc, const void *msg, int code);
/* butler__link_release credits back one delivered frame of `size` bytes
 * for target t (applied and sent by the next butler__link_credit()); the
 * bridge server's thread only. butler__link_release_now does it at once,
 * under the link's lock, from any thread. */
void butler__link_release(struct butler__link *l, uint16_t t, size_t size);
void butler__link_release_now(struct butler__link *l, uint16_t t, size_t size);
/* butler__link_credit writes the credit owed, unless the output is over
 * its high water (then the writer does once it has drained). */
void butler__link_credit(struct butler__link *l);
/* butler__link_give_back hands the read buffer back after its frames
 * were taken: reads on if the link is up; returns false if it is going
 * (the caller then ends what the link had: butler__expose_down()). */
bool butler__link_give_back(struct butler__link *l, size_t used);
/* butler__link_gen returns l's connection, and whether it is up. */
bool butler__link_up(struct butler__link *l, uint32_t *gen);

/* ---- proxy.c -------------------------------------------------------------
 */

/* butler__proxy_install allocates group g's proxies (before anything in
 * the hub changes); butler__proxy_activate puts them in place of the
 * server's handlers. */
int butler__proxy_install(struct butler__pgroup *g);
int butler__proxy_activate(struct butler__pgroup *g);

/* butler__proxy_route queues an answer frame (REPLY, FAIL, PROGRESS) for
 * its proxy (the slot in its id); false: no such slot. Link I/O thread. */
bool butler__proxy_route(struct butler_bridge *br, const unsigned char *frame,
    size_t len, uint64_t id);

/* butler__proxy_down tells the proxies of dialed link l that connection
 * gen was lost: their requests on it end with BUTLER_ECLOSED. */
void butler__proxy_down(struct butler__link *l, uint32_t gen);

/* butler__proxy_free frees what group g's proxies hold. */
void butler__proxy_free(struct butler__pgroup *g);

/* ---- expose.c ------------------------------------------------------------
 */

/* butler__expose_install sets the bridge server's handlers. */
int butler__expose_install(struct butler_bridge *br);

/* butler__expose_deliver hands accepted link l's read buffer, holding
 * `len` bytes of whole frames, to the bridge server (link I/O thread);
 * false if the hub refused (it is stopping): the caller then answers the
 * frames itself (butler__expose_refuse()). */
bool butler__expose_deliver(struct butler__link *l, size_t len);

/* butler__expose_notice tells the bridge server that accepted link l is
 * gone; false if the hub is stopping (then nothing needs ending). */
bool butler__expose_notice(struct butler__link *l);

/* butler__expose_refuse answers the frames in buf[0..len) of link l for a
 * hub that is stopping: calls fail with BUTLER_ECLOSED, sends are
 * dropped, credit is given back. Link I/O thread. */
void butler__expose_refuse(
    struct butler__link *l, const unsigned char *buf, size_t len);

/* butler__expose_free frees what the bridge server holds of link l. */
void butler__expose_free_link(struct butler__link *l);

/* butler__br_deadline is the CLOCK_MONOTONIC time `ms` from now, for a
 * timed wait on the bridge's condition variables (made with that clock). */
static inline struct timespec
butler__br_deadline(long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += ms % 1000 * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

#endif /* BUTLER_BRIDGE_INTERNAL_H */
