/* SPDX-License-Identifier: MIT */
/*
 * butler/server.h — one server instance: an inbox, its request state, and
 * either a thread running a libevent loop or an external owner that drains
 * it; what happens to each record (handle it, or destroy it unhandled); how
 * an instance finishes. Built on request.h; hub.c drives its lifecycle.
 */
#ifndef BUTLER_INTERNAL_SERVER_H
#define BUTLER_INTERNAL_SERVER_H

#include "request.h"
#include "timer.h"

/* A server's handler table as installed (the hub keeps the copy). */
struct butler__handlers {
	void *table;       /* copy of the generated handler struct */
	butler_raw_fn raw; /* or a generic handler (table NULL) */
	butler_start_fn on_start;
	butler_stop_fn on_stop;
	void *user;
	bool set;
};

/* How butler_hub_start() lets the servers go once all have started. */
enum butler__gate_state {
	BUTLER__GATE_WAIT = 0,
	BUTLER__GATE_GO,
	BUTLER__GATE_ABORT
};

/*
 * What the servers of a hub share; the hub owns it. The start handshake
 * (gate) is under `lock`.
 */
struct butler__serverenv {
	struct butler_hub *hub; /* for butler_server_hub() only */
	const struct butler__router *router;
	struct butler__reqhub *reqhub;
	const struct butler__logger *log;
	struct butler__stopgroup *group;
	struct butler__timers *timers;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int gate;                 /* butler__gate_state */
	atomic_int policy;        /* butler_stop_policy of the final drain */
	unsigned batch_max;       /* messages per loop turn */
	uint64_t batch_budget_ns; /* time per loop turn */
};

struct butler_server {
	struct butler__channel ch; /* first: hot, cache-line aligned */
	struct butler__requests rq;
	struct butler__serverenv *env;
	const butler_server_desc *desc;
	const struct butler__handlers *handlers;
	const butler_msg_desc *const *kind_msg; /* [kind] */
	unsigned n_kinds;            /* kinds it accepts, 1..n_kinds */
	butler_dispatch_fn dispatch; /* the generated switch */
	const void *table;           /* its handler table, once started */
	void *user;
	const struct butler__route *route; /* its server's: the siblings */
	struct butler__rec *take_buf;      /* a sharing pool's: the record
	                                      being handled, copied out */
	size_t take_cap;
	/* Answers an external loop's bounded dispatch took from the inbox
	 * and has not delivered yet, oldest first: delivered before newer
	 * ones, and before the requests end at a stop. Consumer. */
	struct butler__node *answers_left, *answers_last;
	unsigned id;          /* hub-wide server index */
	unsigned instance;    /* instance in its pool */
	unsigned index;       /* hub-wide inbox index */
	uint64_t spin_ns;     /* spin policy: the most it may watch for work */
	uint64_t spin_window; /* what it watches now (adaptive, <= spin_ns) */
	uint64_t wake_ns;     /* what a wake-up costs here (moving average) */
	unsigned spin_off;    /* idle turns until it tries spinning again */
	char name[16];

	/* Threaded servers. */
	pthread_t thread;
	bool thread_started;
	struct event_base *base;
	struct event *wake_ev;
	struct event *rearm_ev;
	struct event *request_timer; /* earliest request deadline */
	struct event *timer_ev;      /* earliest timer */
	struct butler__heap timers;  /* timers armed here */
	unsigned char *scratch;      /* a periodic timer's message, copied */
	size_t max_record;

	/* Start handshake (under env->lock). */
	bool start_reported;
	int start_result;

	atomic_bool finished;   /* ran on_stop (or never started) */
	atomic_uintptr_t owner; /* external: thread that drains it (0: none) */
	bool calls_done;        /* its calls have all ended: late records of
	                           its inbox are destroyed as orphans */

	/* What its handler runs now, for the watchdog (butler/monitor.c)
	 * and stuck reports (since about the channel's clock_ns):
	 * (runs << BUTLER__BUSY_KIND_BITS) | kind, where runs counts the
	 * handler runs begun and kind is that of the run under way, 0
	 * between runs; so one run is told from the next without a clock
	 * reading. Only the consumer writes it: one relaxed store before
	 * and one after each handler. */
	atomic_uint_fast64_t busy;
};

/* The low bits of butler_server.busy: the kind (rec->kind is 16 bits). */
#define BUTLER__BUSY_KIND_BITS 16u
#define BUTLER__BUSY_KIND_MASK ((1u << BUTLER__BUSY_KIND_BITS) - 1u)
#define BUTLER__BUSY_ONE ((uint64_t)1 << BUTLER__BUSY_KIND_BITS)

/*
 * butler__server_init makes instance `instance` (hub-wide inbox `index`) of
 * hub-wide server `id`. Returns BUTLER_OK, BUTLER_ENOMEM or BUTLER_ESYS.
 */
int butler__server_init(struct butler_server *srv,
    struct butler__serverenv *env, const struct butler__route *route,
    const struct butler__handlers *handlers, unsigned id, unsigned instance,
    unsigned index, size_t max_record);

/* butler__server_release destroys what is left and frees its parts. */
void butler__server_release(struct butler_server *srv);

/* Threaded servers: start the thread (it runs on_start, reports through the
 * gate, runs the loop, then finishes); join it. */
int butler__server_spawn(struct butler_server *srv);
void butler__server_join(struct butler_server *srv);

/* External servers: run on_start on the calling thread, which becomes the
 * owner; the result is also recorded for the start handshake. */
int butler__server_start_external(struct butler_server *srv);

/*
 * butler__server_finish_external finishes an external server on the calling
 * thread (the stopper): the final drain under the hub's policy, every open
 * request ended, on_stop.
 */
void butler__server_finish_external(struct butler_server *srv);

/*
 * butler__server_drain_external drains external server srv on the calling
 * thread: up to `max` records (UINT32_MAX and no time budget with
 * `all`), answers and timeouts; reports it quiet to a stopping hub. Returns
 * BUTLER_EBUSY if another thread drains it, BUTLER_ECLOSED once it has
 * finished. *handled receives the records taken.
 */
int butler__server_drain_external(
    struct butler_server *srv, unsigned max, bool all, unsigned *handled);

/* butler__server_next_timeout_ms is butler_server_next_timeout(). */
int butler__server_next_timeout_ms(struct butler_server *srv);

/*
 * butler__server_sweep destroys what was queued or posted after the
 * instance finished (late racers), on the calling thread, and closes a
 * threaded server's token fd. After every thread is joined.
 */
void butler__server_sweep(struct butler_server *srv);

/* butler__server_check_quiet reports srv quiet to a stopping hub if it
 * owes and awaits nothing any more (after an answer given outside a
 * handler). srv's thread. */
void butler__server_check_quiet(struct butler_server *srv);

/* butler__server_wake wakes a threaded server so that it looks at the
 * hub's state. */
void butler__server_wake(struct butler_server *srv);

/* butler__server_stuck fills info for a stuck report. Any thread. */
void butler__server_stuck(struct butler_server *srv, butler_stuck_info *info);

/* butler__server_current returns the server whose handler the calling
 * thread runs (or on_start/on_stop, or external drain), or NULL. */
struct butler_server *butler__server_current(void);

/* butler__server_owned_by_me says whether the calling thread owns external
 * server srv (it started the hub, or drains it). */
bool butler__server_owned_by_me(const struct butler_server *srv);

#endif /* BUTLER_INTERNAL_SERVER_H */
