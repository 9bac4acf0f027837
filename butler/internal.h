/*
 * butler/internal.h — structures shared by the runtime's modules.
 *
 * The shape of the runtime, from the bottom up:
 *
 *   lane     a single-producer single-consumer queue of variable-size
 *            records in a chain of recycled segments. One lane exists per
 *            (sending thread, server instance) pair, so senders never write
 *            to a cache line another sender writes: the send path has no
 *            contended atomic, no lock and, once warm, no malloc.
 *   sender   the identity of a sending thread, refcounted, so that lanes of
 *            threads that exited can be reclaimed by their consumer.
 *   channel  the inbox of one server instance: its lanes, its eventfd, the
 *            pending flag that limits eventfd writes to the moment the
 *            consumer may be asleep, capacity, blocking senders, closing.
 *   server   one instance of a spec server: a channel plus either a thread
 *            with a libevent loop, or an external owner that drains it.
 *   hub      every server instance of one spec, the handler tables, the
 *            lifecycle (new, start, stop, free), logging.
 */
#ifndef BUTLER_INTERNAL_H
#define BUTLER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <butler/butler.h>

#define BUTLER__CACHE_LINE 64

/* ---- records ---------------------------------------------------------- */

/*
 * A record is one queued message: this header, an optional request header,
 * then the message struct copied by value. Every record is a multiple of
 * BUTLER__REC_ALIGN bytes so that the payload of the next one stays aligned
 * for any field type a spec can declare.
 */
#define BUTLER__REC_ALIGN 8u

enum butler__rec_flags {
	BUTLER__REC_REQUEST = 1u << 0,  /* carries a butler__req_hdr */
	BUTLER__REC_REPLY = 1u << 1,    /* answer to a request we made */
	BUTLER__REC_PROGRESS = 1u << 2, /* with REPLY: a progress message */
	BUTLER__REC_BOXED = 1u << 3,    /* progress payload is a box pointer */
	BUTLER__REC_JUMP = 1u << 15     /* rest of segment unused: go on */
};

struct butler__rec {
	uint32_t size;  /* whole record in bytes, header included */
	uint16_t kind;  /* server-local kind (1-based), or message index */
	uint16_t flags; /* butler__rec_flags */
};

/*
 * A request travels with the id its caller knows it by and the inbox the
 * answer goes to; a reply carries the id back with the outcome.
 */
struct butler__req_hdr {
	uint64_t id;
	struct butler_server *reply_to;
	int32_t status; /* replies only: BUTLER_OK or the failure */
	uint32_t pad_;
};

static inline size_t
butler__rec_round(size_t n)
{
	return (n + BUTLER__REC_ALIGN - 1) & ~(size_t)(BUTLER__REC_ALIGN - 1);
}

/* ---- senders and lanes ------------------------------------------------ */

struct butler__sender {
	atomic_uint refs;  /* the thread's own reference + one per lane */
	atomic_bool alive; /* cleared when the thread exits */
};

struct butler__segment {
	struct butler__segment *_Atomic next; /* written by the producer */
	size_t cap;                           /* bytes in data[] */
	_Alignas(BUTLER__REC_ALIGN) unsigned char data[];
};

struct butler__lane {
	/* Producer's cache line: only the sending thread writes it (the
	 * consumer clears `scheduled` when it goes idle). */
	_Alignas(BUTLER__CACHE_LINE) atomic_uint_fast64_t tail; /* published */
	atomic_uint scheduled; /* lane has announced work to the consumer */
	uint64_t tail_local;   /* == tail, without an atomic load */
	uint64_t head_cache;   /* last head seen, refreshed when full */
	struct butler__segment *wseg;
	size_t woff;
	struct butler__segment *pool_mine; /* taken from `pool`, unused */
	atomic_uint_fast64_t pool_taken;   /* segments taken from `pool` */
	atomic_uint_fast64_t rejected;     /* sends refused as full */

	/* Consumer's cache line. */
	_Alignas(BUTLER__CACHE_LINE) atomic_uint_fast64_t head; /* consumed */
	uint64_t head_local;
	struct butler__segment *rseg;
	size_t roff;
	/* Finished segments go back to the producer through `pool`, a stack
	 * the consumer pushes on and the producer empties in one exchange;
	 * up to pool_max segments (what capacity can fill) are kept. */
	struct butler__segment *_Atomic pool;
	uint64_t pool_given; /* segments pushed on `pool` */
	uint64_t pool_max;

	/* Set once at creation. */
	_Alignas(BUTLER__CACHE_LINE) struct butler__sender *sender;
	struct butler__lane *_Atomic next; /* in the channel's list */
	size_t seg_bytes;
};

/*
 * butler__lane_new creates a lane whose segments hold seg_bytes bytes of
 * records; it takes a reference on sender. NULL when out of memory.
 */
struct butler__lane *butler__lane_new(
    struct butler__sender *sender, size_t seg_bytes, uint64_t pool_max);

/* butler__lane_free frees a lane that holds no record any more. */
void butler__lane_free(struct butler__lane *lane);

/* butler__lane_grow is butler__lane_reserve's slow path (lane.c). */
struct butler__rec *butler__lane_grow(struct butler__lane *lane, size_t size);

/*
 * butler__lane_reserve returns room for a record of `size` bytes (a
 * multiple of BUTLER__REC_ALIGN, at most seg_bytes - header), linking a new
 * segment when the current one is full. The record becomes visible to the
 * consumer with butler__lane_publish(). NULL when out of memory. Producer.
 */
static inline struct butler__rec *
butler__lane_reserve(struct butler__lane *lane, size_t size)
{
	struct butler__segment *seg = lane->wseg;

	if (seg->cap - lane->woff >= size)
		return (struct butler__rec *)(void *)(seg->data + lane->woff);
	return butler__lane_grow(lane, size);
}

/* butler__lane_publish makes the reserved record visible. Producer. */
static inline void
butler__lane_publish(struct butler__lane *lane, size_t size)
{
	lane->woff += size;
	lane->tail_local++;
	/* seq_cst, not release: the consumer's idle check is a Dekker pair
	 * (publish, then read `scheduled` / clear `scheduled`, then read
	 * tail); see channel.c. */
	atomic_store(&lane->tail, lane->tail_local);
}

/*
 * butler__lane_front returns the oldest unconsumed record, stepping over
 * segment ends. The caller has seen head_local != tail. Consumer.
 */
struct butler__rec *butler__lane_front(struct butler__lane *lane);

/* butler__lane_pop drops the record returned by _front. Consumer. */
static inline void
butler__lane_pop(struct butler__lane *lane, const struct butler__rec *rec)
{
	lane->roff += rec->size;
	lane->head_local++;
}

/* butler__lane_commit publishes what the consumer has consumed. */
static inline void
butler__lane_commit(struct butler__lane *lane)
{
	atomic_store_explicit(
	    &lane->head, lane->head_local, memory_order_release);
}

/* butler__lane_depth returns how many records wait; approximate. */
static inline uint64_t
butler__lane_depth(struct butler__lane *lane)
{
	uint64_t t = atomic_load_explicit(&lane->tail, memory_order_acquire);
	uint64_t h = atomic_load_explicit(&lane->head, memory_order_acquire);
	return t > h ? t - h : 0;
}

/*
 * butler__sender_self returns the calling thread's sender, creating it on
 * first use. NULL when out of memory.
 */
struct butler__sender *butler__sender_self(void);

/* butler__sender_unref drops one reference and frees at zero. */
void butler__sender_unref(struct butler__sender *sender);

struct butler_hub;
struct butler_server;

/*
 * Each thread caches, per hub it sends to, its lanes indexed by server
 * instance and a round-robin cursor per spec server (lane.c). way[0] is the
 * most recently used hub, checked inline on every send.
 */
#define BUTLER__CACHE_WAYS 4

struct butler__lane_cache {
	const struct butler_hub *hub;
	uint64_t serial;
	struct butler__lane **lanes; /* hub->n_inst entries */
	unsigned *rr;                /* spec->n_servers entries */
};

struct butler__thread_state {
	struct butler__sender *me;
	struct butler__lane_cache way[BUTLER__CACHE_WAYS];
};

extern _Thread_local struct butler__thread_state butler__tls;

/* butler__lane_for returns the calling thread's lane into dst, creating
 * what is missing; NULL when out of memory (lane.c). */
struct butler__lane *butler__lane_for(
    const struct butler_hub *hub, struct butler_server *dst);

/* butler__rr_next returns this thread's next round-robin pick for a pool. */
unsigned butler__rr_next(const struct butler_hub *hub, unsigned server);

/* butler__tls_forget drops the calling thread's cached lanes of hub. */
void butler__tls_forget(const struct butler_hub *hub);

/* ---- channels --------------------------------------------------------- */

/* Called by the drain for every record; handles and destroys it. */
typedef void (*butler__consume_fn)(void *ctx, struct butler__rec *rec);

struct butler__channel {
	/* Read by every sender on every send; written once at close. */
	_Alignas(BUTLER__CACHE_LINE) atomic_int closed;
	unsigned capacity;
	size_t seg_bytes;
	uint64_t pool_max; /* segments a lane keeps for reuse */
	int fd;            /* eventfd (or pipe read end), -1 once closed */
	int wfd; /* where tokens are written: fd itself, or the pipe's */

	/* Wake-up protocol state; written on idle<->busy transitions. */
	_Alignas(BUTLER__CACHE_LINE) atomic_int pending;
	atomic_int fd_users; /* senders inside a token write */
	atomic_int fd_closed;

	/* Lanes: pushed at the front under lanes_lock; the consumer reads
	 * the list without the lock and is the only one removing. */
	struct butler__lane *_Atomic lanes;
	pthread_mutex_t lanes_lock;

	/* Senders waiting for room (full policy BLOCK). */
	atomic_int waiters;
	pthread_mutex_t wait_lock;
	pthread_cond_t wait_cond;

	/* Consumer-owned counters, readable from any thread. */
	atomic_uint_fast64_t handled, failed, dropped, wakeups, handler_ns;
	atomic_uint_fast64_t high_water;
	atomic_uint_fast64_t sent_reclaimed, rejected_reclaimed;
	atomic_int draining; /* external servers: a drain is running */
};

int butler__channel_init(
    struct butler__channel *ch, unsigned capacity, size_t max_record);
/* Destroys what is still queued through `drop` and frees everything. */
void butler__channel_release(
    struct butler__channel *ch, butler__consume_fn drop, void *ctx);

/* butler__channel_lane returns the calling thread's lane, creating it. */
struct butler__lane *butler__channel_lane(
    struct butler__channel *ch, struct butler__sender *sender);

/*
 * butler__channel_reserve checks that ch is open and the lane has room
 * (waiting up to timeout_ms for room when may_block, -1 = no limit) and
 * returns room for a record of rec_size bytes, or NULL with *err set.
 */
struct butler__rec *butler__channel_reserve_slow(struct butler__channel *ch,
    struct butler__lane *lane, size_t rec_size, bool check_room,
    bool may_block, int timeout_ms, int *err);

static inline struct butler__rec *
butler__channel_reserve(struct butler__channel *ch, struct butler__lane *lane,
    size_t rec_size, bool check_room, bool may_block, int timeout_ms, int *err)
{
	if (!atomic_load_explicit(&ch->closed, memory_order_relaxed)
	    && (!check_room
	        || lane->tail_local - lane->head_cache < ch->capacity)) {
		struct butler__rec *rec = butler__lane_reserve(lane, rec_size);

		if (rec == NULL)
			*err = BUTLER_ENOMEM;
		return rec;
	}
	return butler__channel_reserve_slow(
	    ch, lane, rec_size, check_room, may_block, timeout_ms, err);
}

/* butler__channel_announce tells an idle consumer that lane has work. */
void butler__channel_announce(
    struct butler__channel *ch, struct butler__lane *lane);

/* butler__channel_commit publishes a reserved record and wakes ch. */
static inline void
butler__channel_commit(
    struct butler__channel *ch, struct butler__lane *lane, size_t rec_size)
{
	butler__lane_publish(lane, rec_size);
	if (atomic_load(&lane->scheduled) == 0)
		butler__channel_announce(ch, lane);
}

/* butler__count adds n to a counter only the consumer writes: no RMW. */
static inline void
butler__count(atomic_uint_fast64_t *counter, uint64_t n)
{
	atomic_store_explicit(counter,
	    atomic_load_explicit(counter, memory_order_relaxed) + n,
	    memory_order_relaxed);
}

/* Consumer side. */
void butler__channel_ack(struct butler__channel *ch);
unsigned butler__channel_drain(struct butler__channel *ch, unsigned max,
    uint64_t budget_ns, bool stop_on_close, butler__consume_fn fn, void *ctx,
    bool *more);
bool butler__channel_idle(struct butler__channel *ch);
/* Polls the lanes until one has work (true) or the clock passes `until`. */
bool butler__spin_for_work(struct butler__channel *ch, uint64_t until_ns);
void butler__channel_ring(struct butler__channel *ch);
void butler__channel_close(struct butler__channel *ch);
void butler__channel_close_fd(struct butler__channel *ch);
uint64_t butler__now_ns(void);

/* ---- servers and the hub ---------------------------------------------- */

struct butler__handlers {
	void *table; /* copy of the generated handler struct */
	butler_start_fn on_start;
	butler_stop_fn on_stop;
	void *user;
	bool set;
};

struct butler__pending; /* request.c */

/* How to reach a spec server: what a send needs, in one place. */
struct butler__route {
	unsigned first; /* index of instance 0 in hub->inst */
	unsigned n;     /* instances */
	unsigned n_kinds;
	const size_t *kind_size; /* [kind], kind 1..n_kinds */
	bool block;              /* full policy BLOCK */
	int block_ms;
};

struct butler_server {
	struct butler__channel ch; /* first: hot, cache-line aligned */
	struct butler_hub *hub;
	const butler_server_desc *desc;
	const struct butler__handlers *handlers;
	const butler_msg_desc **kind_msg; /* [kind], 1..n_accepts */
	unsigned id;                      /* server index in the spec */
	unsigned instance;                /* instance in its pool */
	unsigned index;                   /* instance index in the hub */
	size_t max_payload;
	uint64_t spin_ns; /* spin policy: watch for work before sleeping */
	char name[16];

	/* Threaded servers. */
	pthread_t thread;
	bool thread_started;
	struct event_base *base;
	struct event *wake_ev;
	struct event *rearm_ev;
	struct event *request_timer; /* earliest request deadline */

	/* Start handshake (under hub->lock). */
	bool start_reported;
	int start_result;

	/* Requests this server made, and the request it is handling. Only
	 * its own thread touches these. */
	struct butler__pending *pending;
	uint64_t next_request_id;
	pthread_mutex_t pending_lock; /* for butler_hub_pending() */
	atomic_uintptr_t owner; /* external: thread that drains it (0: none) */
	struct butler__box *current_box; /* latest-wins progress slot */
	const struct butler__req_hdr *current_req;
	int current_req_reply;
	int current_req_progress;
	bool current_req_latest;
	bool current_req_answered;
};

enum butler__hub_state {
	BUTLER__HUB_NEW = 0,
	BUTLER__HUB_STARTING,
	BUTLER__HUB_RUNNING,
	BUTLER__HUB_STOPPING,
	BUTLER__HUB_STOPPED
};

enum butler__gate {
	BUTLER__GATE_WAIT = 0,
	BUTLER__GATE_GO,
	BUTLER__GATE_ABORT
};

struct butler_hub {
	const butler_spec *spec;
	uint64_t serial; /* distinguishes hubs reusing an address */
	struct butler_server **inst;
	unsigned n_inst;
	unsigned *first_inst;              /* per spec server */
	struct butler__route *route;       /* per spec server */
	struct butler__handlers *handlers; /* per spec server */

	pthread_mutex_t lock; /* state, start handshake */
	pthread_cond_t cond;
	atomic_int state;
	enum butler__gate gate;
	butler_stop_policy policy;
	pthread_mutex_t stop_lock; /* one stopper at a time */

	butler_log_fn log_fn;
	butler_log_level log_level;
	void *log_user;

	unsigned batch_max;       /* messages per loop turn */
	uint64_t batch_budget_ns; /* time per loop turn */
};

/* Logging (log.c). */
void butler__log(const struct butler_hub *hub, butler_log_level level,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void butler__log_stderr(butler_log_level level, const char *msg, void *user);

/* Thread-local "which server is this thread running" (server.c). */
void butler__set_current(struct butler_server *srv);

/* butler__thread_token identifies the calling thread (server.c). */
uintptr_t butler__thread_token(void);

/*
 * butler__caller returns the server the calling thread speaks for: the one
 * whose handler it runs, or else the first external server of hub that it
 * owns (a GUI callback outside any drain). NULL if neither.
 */
struct butler_server *butler__caller(struct butler_hub *hub);

/* Server lifecycle (server.c). */
int butler__server_spawn(struct butler_server *srv);
void butler__server_join(struct butler_server *srv);
void butler__server_finish(
    struct butler_server *srv, butler_stop_policy policy);
void butler__consume(void *ctx, struct butler__rec *rec);
void butler__drop(void *ctx, struct butler__rec *rec);

/* Sending (hub.c): one record into instance `dst`. */
int butler__push(struct butler_hub *hub, struct butler_server *dst,
    unsigned kind, unsigned flags, const struct butler__req_hdr *req,
    const void *msg, size_t size, bool check_room, bool may_block,
    int timeout_ms);

/* Sends a (request) record to server `server`, choosing the instance. */
int butler__send_request(struct butler_hub *hub, unsigned server,
    unsigned kind, const void *msg, size_t size,
    const struct butler__req_hdr *req);

/* Requests (request.c). */
void butler__request_on_reply(
    struct butler_server *srv, struct butler__rec *rec);
/* Handles (deliver true) or drops a progress record; false: not progress. */
bool butler__request_progress_rec(
    struct butler_server *srv, struct butler__rec *rec, bool deliver);
void butler__request_after_handler(struct butler_server *srv, int rv);
void butler__request_refuse(
    struct butler_server *srv, const struct butler__req_hdr *req, int status);
void butler__request_fail_all(struct butler_server *srv, int status);
void butler__request_free(struct butler_server *srv);
void butler__request_expire(struct butler_server *srv, uint64_t now_ns);
int butler__request_next_timeout_ms(
    struct butler_server *srv, uint64_t now_ns);

/* Payload and request header of a record. */
static inline const struct butler__req_hdr *
butler__rec_req(const struct butler__rec *rec)
{
	return (const struct butler__req_hdr *)(const void *)(rec + 1);
}

static inline void *
butler__rec_payload(struct butler__rec *rec)
{
	unsigned char *p = (unsigned char *)(rec + 1);
	if (rec->flags & (BUTLER__REC_REQUEST | BUTLER__REC_REPLY))
		p += sizeof(struct butler__req_hdr);
	return p;
}

#endif /* BUTLER_INTERNAL_H */
