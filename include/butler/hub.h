/* SPDX-License-Identifier: MIT */
/**
 * @file
 * butler/hub.h — the hub, its servers, and sending messages between threads.
 *
 * A hub is built from a descriptor table (butler/gen.h), usually the one
 * butler-gen generated. It owns one inbox per server instance; each threaded
 * server runs its own libevent loop on its own thread, and external-loop
 * servers are drained by a thread the application owns (a GUI main loop).
 * Any thread can send to any server of the hub.
 *
 * Lifecycle: butler_hub_new() -> butler_hub_set_handlers() for each server ->
 * butler_hub_start() -> ... -> butler_hub_stop() -> butler_hub_free().
 * A hub starts at most once. Hubs share nothing: several can live side by
 * side in one process.
 *
 * Ownership (for every send and call): the message struct is copied into
 * the inbox. On BUTLER_OK the hub owns the message's owned fields (strings,
 * bytes, buffers) and frees them after the handler returns, or at stop if
 * it is never handled. On any failure the caller still owns them. Once a
 * call is accepted, the hub owns the request whatever its outcome (reply,
 * timeout, cancel, stop); answers to a caller that has gone are destroyed.
 *
 * Server indexes: a hub built from a spec that imports others runs the
 * servers of every spec; `server` arguments below are indexes among all of
 * them, the root spec's servers first (so for the root spec the generated
 * APP_SERVER_S constants are the indexes). butler_hub_server() converts an
 * imported spec's own index; generated functions do it for you.
 *
 * Environment: BUTLER_METRICS=1 turns metrics on for every server of
 * every hub created while it is set (butler_hub_enable_metrics());
 * BUTLER_MEMBARRIER=1, read once per process, makes senders publish with
 * a release store and a consumer going idle call membarrier() instead (by
 * default the publish is a seq_cst store): cheaper per send, dearer per
 * idle transition, so a win only for servers that rarely idle
 * (docs/ARCHITECTURE.md, "The wake-up protocol").
 */
#ifndef BUTLER_HUB_H
#define BUTLER_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <butler/error.h>
#include <butler/export.h>
#include <butler/gen.h>

#ifdef __cplusplus
extern "C" {
#endif

/** butler_hub connects every thread to every server of one spec. */
typedef struct butler_hub butler_hub;

/** struct event_base is libevent's loop; see butler_server_base(). */
struct event_base;

/**
 * butler_stop_policy says what butler_hub_stop() does with accepted work.
 * DRAIN: nothing new is accepted from outside the hub; everything already
 * accepted is handled (message the hub's own handlers send each other while
 * draining included), the answers to accepted requests reach their callers
 * and deferred requests may still be answered, until the hub is quiet.
 * DISCARD: every server stops accepting at once; what is queued is destroyed
 * unhandled, unanswered requests end with BUTLER_ESTOPPED.
 */
typedef enum butler_stop_policy {
	BUTLER_STOP_DRAIN = 0,  /**< finish accepted work, then stop */
	BUTLER_STOP_DISCARD = 1 /**< destroy what is queued unhandled */
} butler_stop_policy;

/** butler_log_level orders log messages by importance. */
typedef enum butler_log_level {
	BUTLER_LOG_ERROR = 0,
	BUTLER_LOG_WARN = 1,
	BUTLER_LOG_INFO = 2,
	BUTLER_LOG_DEBUG = 3
} butler_log_level;

/**
 * butler_log_fn receives the hub's log messages. It may be called from any
 * of the hub's threads, concurrently, never on a send's fast path. `msg` is
 * valid only during the call.
 */
typedef void (*butler_log_fn)(
    butler_log_level level, const char *msg, void *user);

/**
 * butler_stats is a snapshot of one server's counters, summed over its
 * instances (high_water: the largest of its instances). Counters are read
 * without stopping the server, so a snapshot taken while messages flow is
 * approximate; once the hub has stopped, for every server
 * sent == handled + failed + dropped + replaced + purged + abandoned.
 *
 * Its size is fixed for the life of the library's ABI (SONAME
 * libbutler.so.0): a counter added later takes one of the `reserved`
 * slots, which read as zero until then, so a program built against an
 * older header keeps working with a newer library.
 */
typedef struct butler_stats {
	uint64_t sent; /**< messages and requests the hub took for it: queued,
	                  or destroyed at once (drop_newest) */
	uint64_t rejected; /**< sends refused with BUTLER_EFULL or ETIMEDOUT */
	uint64_t handled;  /**< handler calls that returned 0 */
	uint64_t failed;   /**< handler calls that returned non-zero */
	uint64_t dropped;  /**< taken, destroyed unhandled: a stop, or the
	                      drop_newest / drop_oldest policies */
	uint64_t abandoned;   /**< requests destroyed unhandled: caller gone */
	uint64_t replies;     /**< answers received to requests it made */
	uint64_t progress;    /**< progress messages received for them */
	uint64_t depth;       /**< messages queued now */
	uint64_t high_water;  /**< largest depth of one instance seen by its
	                         consumer (sampled every pass over the inbox
	                         and after every slow handler) */
	uint64_t wakeups;     /**< times the consumer was woken from sleep */
	uint64_t handler_ns;  /**< time spent handling messages */
	uint64_t replaced;    /**< destroyed unhandled: a newer message of a
	                         keep_last kind took their place */
	uint64_t purged;      /**< destroyed unhandled by butler_purge() */
	uint64_t reserved[8]; /**< zero: room for counters to come */
} butler_stats;

/**
 * butler_kind_stats is a snapshot of what one message kind of one server
 * did, summed over its instances. Always counted, because they cost a send
 * nothing: rejected, dropped, replaced, purged, abandoned. With metrics on
 * (butler_hub_enable_metrics(), or BUTLER_METRICS=1 in the environment)
 * also sent, handled, failed, queued, and how long each message waited in
 * the inbox (queue_ns_*: from its send to its handler's start) and ran in
 * its handler (handler_ns_*), from fixed-bucket histograms: a percentile is
 * the top of its bucket, at most 25% above the true value, never above
 * the largest seen. Messages fired by timers are not counted per kind.
 */
typedef struct butler_kind_stats {
	const char *message;   /**< the kind's message name */
	bool metrics;          /**< whether the measured fields are measured */
	uint64_t sent;         /**< taken for it (metrics on) */
	uint64_t rejected;     /**< refused: BUTLER_EFULL or ETIMEDOUT */
	uint64_t handled;      /**< handler returned 0 (metrics on) */
	uint64_t failed;       /**< handler returned non-zero (metrics on) */
	uint64_t dropped;      /**< destroyed unhandled: stop, drop_* policy */
	uint64_t replaced;     /**< keep_last: a newer one took its place */
	uint64_t purged;       /**< butler_purge() */
	uint64_t abandoned;    /**< requests whose caller had gone */
	uint64_t queued;       /**< waiting now (metrics on) */
	uint64_t timed;        /**< messages measured (metrics on) */
	uint64_t queue_ns_p50; /**< median wait in the inbox, ns */
	uint64_t queue_ns_p99; /**< 99th percentile of that wait, ns */
	uint64_t queue_ns_max; /**< longest wait, ns */
	uint64_t handler_ns_p50; /**< median handler run, ns */
	uint64_t handler_ns_p99; /**< 99th percentile of a handler run, ns */
	uint64_t handler_ns_max; /**< longest handler run, ns */
	uint64_t reserved[8];    /**< zero: room for counters to come */
} butler_kind_stats;

/**
 * butler_hub_new creates a hub for `spec` (usually the generated
 * app_spec) and every spec it imports. The spec tables must outlive the
 * hub. No thread is started and no handler is set; messages sent before
 * butler_hub_start() are queued. Returns BUTLER_EABI for a table of another
 * generator ABI, BUTLER_EINVAL for an inconsistent table (beyond the
 * BUTLER_MAX_* limits of butler/gen.h, two imported specs with the same app
 * prefix, an import cycle), BUTLER_ENOMEM or BUTLER_ESYS. Any thread.
 */
BUTLER_API int butler_hub_new(
    butler_hub **out /* OUT: the new hub */, const butler_spec *spec);

/** BUTLER_NO_SERVER is what butler_hub_server() returns for no server. */
#define BUTLER_NO_SERVER 0xffffffffu

/**
 * butler_hub_server returns the hub-wide index of server `server` (an index
 * into spec->servers) of `spec`, which must be the hub's spec or one it
 * imports; BUTLER_NO_SERVER otherwise. Any thread.
 */
BUTLER_API unsigned butler_hub_server(
    const butler_hub *hub, const butler_spec *spec, unsigned server);

/**
 * butler_hub_free stops the hub if it is running (BUTLER_STOP_DISCARD),
 * destroys every message still queued, closes every fd and frees the hub.
 * NULL is a no-op. No other thread may use the hub during or after the
 * call; destroy GLib sources attached to it first. Any thread except one of
 * the hub's own servers (from there it logs an error and frees nothing).
 */
BUTLER_API void butler_hub_free(butler_hub *hub);

/**
 * butler_hub_set_handlers installs the handler table of server `server`
 * (an index into spec->servers). `handlers` points to `size` bytes laid out
 * as the generated app_S_handlers struct; the hub keeps a copy. on_start and
 * on_stop may be NULL. `user` is passed to every handler. Generated
 * app_S_register() functions call this. Before butler_hub_start() only;
 * returns BUTLER_ESTATE afterwards.
 */
BUTLER_API int butler_hub_set_handlers(butler_hub *hub, unsigned server,
    const void *handlers, size_t size, butler_start_fn on_start,
    butler_stop_fn on_stop, void *user);

/**
 * butler_raw_fn is a generic handler: it receives every message kind of its
 * server, untyped: `msg` describes the message (its spec entry), `payload`
 * is the message struct (the hub destroys its owned fields after the call,
 * as for a typed handler; move a field out by setting it to NULL). For a
 * request it may reply, defer (butler_defer() with `msg`) or fail, like a
 * typed handler. Returns 0 or a failure, like a typed handler.
 */
typedef int (*butler_raw_fn)(butler_server *self, unsigned kind,
    const butler_msg_desc *msg, void *payload, void *user);

/**
 * butler_hub_set_raw_handler makes `fn` the handler of every message server
 * `server` accepts, in place of a generated table: what a bridge or a
 * proxy that forwards any message needs. on_start and on_stop may be NULL.
 * Before butler_hub_start() only (BUTLER_ESTATE afterwards); replaces a
 * table set before. Returns BUTLER_EINVAL for a bad index or a NULL fn.
 */
BUTLER_API int butler_hub_set_raw_handler(butler_hub *hub, unsigned server,
    butler_raw_fn fn, butler_start_fn on_start, butler_stop_fn on_stop,
    void *user);

/**
 * butler_hub_set_log directs the hub's log messages to `fn` for levels up to
 * `max_level`. The default writes warnings and errors to stderr; fn NULL
 * silences the hub. Before butler_hub_start() only.
 */
BUTLER_API void butler_hub_set_log(
    butler_hub *hub, butler_log_fn fn, butler_log_level max_level, void *user);

/**
 * butler_hub_set_spin sets the wait policy of threaded server `server`: after
 * handling messages, its thread watches its inbox for up to spin_us
 * microseconds before going to sleep, so a reply or the next message of a
 * conversation is taken without a sleep and a wake-up (which cost tens of
 * microseconds). It costs CPU only while the server is busy or just was; a
 * server idle for longer than spin_us sleeps as usual. 0 (the default)
 * sleeps at once. Returns BUTLER_EINVAL for an external-loop server.
 * Before butler_hub_start() only (BUTLER_ESTATE afterwards).
 */
BUTLER_API int butler_hub_set_spin(
    butler_hub *hub, unsigned server, unsigned spin_us);

/**
 * butler_hub_start starts every threaded server (one thread each, named
 * after the server) and runs each on_start first on its own thread. External
 * servers' on_start runs on the calling thread. If any on_start fails,
 * everything started is stopped again (on_stop runs for those whose on_start
 * succeeded), queued messages are destroyed, and the first failure in spec
 * order is returned; the hub is then stopped for good. Returns
 * BUTLER_ENOHANDLER if a server has no complete handler table, BUTLER_ESTATE
 * if the hub was started before, BUTLER_ESYS or BUTLER_ENOMEM if the hub's
 * monitor thread (the watchdog and the metrics log, see
 * butler_hub_set_metrics_log()) is wanted and cannot start: then nothing
 * has run and the hub is still unstarted. Call it from the thread that
 * will drain the external-loop servers.
 */
BUTLER_API int butler_hub_start(butler_hub *hub);

/**
 * butler_hub_stop stops every server, waiting as long as that takes; it is
 * butler_hub_stop_timeout(hub, policy, -1, NULL, NULL).
 */
BUTLER_API int butler_hub_stop(butler_hub *hub, butler_stop_policy policy);

/**
 * butler_stuck_info describes one server instance that kept a stop from
 * finishing in time. Strings are the spec's names, valid as long as the hub.
 * It counts the requests it owes and awaits; butler_hub_pending(), called
 * from the report function or after it, lists each of them (caller,
 * kind, since when, deferred by whom).
 */
typedef struct butler_stuck_info {
	const char *server;     /**< spec name of the server */
	unsigned instance;      /**< its instance in a pool */
	const char *message;    /**< kind its handler is running, or NULL */
	uint64_t handler_ms;    /**< how long that handler has run */
	uint64_t queued;        /**< messages still in its inbox */
	uint64_t promises;      /**< deferred requests it has not answered */
	uint64_t calls_pending; /**< requests it made still unanswered */
} butler_stuck_info;

/** butler_stuck_fn receives one butler_stuck_info per stuck instance. */
typedef void (*butler_stuck_fn)(const butler_stuck_info *info, void *user);

/**
 * butler_hub_stop_timeout stops every server within timeout_ms (-1: no
 * limit). In one step every server stops accepting messages from outside
 * the hub (sends return BUTLER_ECLOSED, blocked senders wake with it, and
 * stay refused). With BUTLER_STOP_DRAIN the servers then finish what they
 * accepted: queued messages are handled (sends between the hub's own
 * handlers still flow), requests are answered, deferred answers may still
 * come, and the answers reach their callers, external-loop servers
 * included: the calling thread drains those until the hub is quiet. Then,
 * again in one step, every server refuses everything; whatever is left is
 * destroyed (requests answered with BUTLER_ESTOPPED), each server runs
 * on_stop and its thread is joined. BUTLER_STOP_DISCARD skips the draining.
 * A send that races with the stop and returns BUTLER_OK is handled or
 * destroyed, never lost. The stop does not travel through the inboxes, so a
 * full inbox cannot delay it.
 *
 * If the deadline passes first, report (may be NULL) is called once per
 * instance still busy (the handler it runs and since when, what is queued,
 * what it owes and waits for) and BUTLER_ETIMEDOUT is returned: the hub
 * keeps stopping; call this again to wait more, or with
 * BUTLER_STOP_DISCARD to give up on the work. A handler that polls
 * butler_cancelled() ends early once the stop discards. Returns BUTLER_OK
 * once stopped; later calls return BUTLER_OK at once. Returns
 * BUTLER_EDEADLK when called from one of the hub's own handlers. Call it
 * from the thread that drains the external-loop servers.
 */
BUTLER_API int butler_hub_stop_timeout(butler_hub *hub,
    butler_stop_policy policy, int timeout_ms, butler_stuck_fn report,
    void *user);

/**
 * butler_send copies message `msg` (`size` bytes, the size of the message
 * type that kind `kind` of server `server` accepts) into the server's inbox.
 * For a pool, the instance is chosen as the server's route says (see
 * butler_route). Messages from one thread to one server instance are
 * handled in the order they were sent, but for kinds whose policy is
 * drop_oldest or keep_last: those wait in a queue of their own per
 * instance, in order among themselves. What a send to a full inbox does is
 * its kind's policy (the spec's "full", per server or per kind): fail
 * (BUTLER_EFULL), block (up to block_timeout_ms, then BUTLER_ETIMEDOUT),
 * drop_newest (the new message is destroyed: BUTLER_EDROPPED), drop_oldest
 * (the oldest waiting message of the kind is destroyed for it:
 * BUTLER_EREPLACED), keep_last (a kind never has more than one waiting:
 * a newer one takes the queued one's place, which is destroyed:
 * BUTLER_EREPLACED, whether or not the inbox is full). A drop_oldest kind
 * keeps at most `capacity` of its messages waiting per instance, from all
 * senders together.
 *
 * When an inbox is full: `capacity` bounds what each sending thread has
 * queued at one instance (each thread writes a lane of its own, so senders
 * share no counter). A server's `max_queued` (butler_server_desc) also
 * bounds what one instance holds from all senders together, still without
 * one contended counter: the bound is a pool of credits, and each sender's
 * lane takes them a batch at a time (about 1/64 of the bound, at most 32)
 * into an allowance of its own, spends one per message, and the consumer
 * gives the credits of what it took back to the pool once per batch. So
 * senders meet on the pool only when an allowance runs out; a sender that
 * finds the pool empty takes back the unused allowances of the other lanes
 * before it calls the inbox full. No more than max_queued messages ever
 * wait, and a send is refused (its kind's policy applies) only when about
 * that many do. Sends to such a server leave the inline fast path.
 *
 * Returns the codes above, BUTLER_OK, BUTLER_EFULL also when the caller
 * is the full server itself, BUTLER_ECLOSED (stopped), BUTLER_EINVAL (bad
 * server, kind or size) or BUTLER_ENOMEM. butler_taken(rv) says whether
 * the hub took the message (its owned fields are no longer the caller's);
 * otherwise the caller still owns it. A destroyed message is destroyed through
 * its destructor and counted (butler_stats, butler_kind_stats). Generated
 * app_send_S_M() functions call this. Any thread; lock-free but for the
 * BLOCK wait and the drop_oldest / keep_last queue (a short mutex).
 */
BUTLER_API int butler_send(butler_hub *hub, unsigned server, unsigned kind,
    const void *msg, size_t size);

/**
 * butler_send_spec is butler_send() to server `server` of `spec` (an index
 * into spec->servers; spec is the hub's spec or one it imports): what the
 * generated app_send_S_M() functions call, in one call for the common case
 * of the hub's own spec. Codes as butler_send(), BUTLER_EINVAL for a spec
 * the hub was not built from. Any thread.
 */
BUTLER_API int butler_send_spec(butler_hub *hub, const butler_spec *spec,
    unsigned server, unsigned kind, const void *msg, size_t size);

/**
 * butler_send_timeout is butler_send() that waits up to timeout_ms (-1:
 * until room or stop) for room in a full inbox, whatever the server's full
 * policy. Never call it from a thread that must not block (a GUI thread).
 * Any thread.
 */
BUTLER_API int butler_send_timeout(butler_hub *hub, unsigned server,
    unsigned kind, const void *msg, size_t size, int timeout_ms);

/**
 * butler_send_after sends message `msg` (as butler_send() would) after
 * delay_ms, and then every period_ms when that is not 0, until it is
 * cancelled or the hub stops. The message is copied now; on BUTLER_OK the
 * hub owns its owned fields (destroyed after its one delivery, or when the
 * timer is cancelled or the hub stops). A periodic message must own no
 * fields (each firing delivers a copy): BUTLER_EINVAL otherwise. The timer
 * lives on the loop of the instance it goes to (its libevent loop, or the
 * deadline an external server's owner gets from
 * butler_server_next_timeout()), not on a thread of its own; nothing fires
 * once the hub begins to stop. *timer (may be NULL) names it for
 * butler_timer_cancel(). Codes as butler_send(). Generated
 * app_send_S_M_after() and app_send_S_M_every() functions call this. Any
 * thread.
 */
BUTLER_API int butler_send_after(butler_hub *hub, unsigned server,
    unsigned kind, const void *msg, size_t size, unsigned delay_ms,
    unsigned period_ms, uint64_t *timer /* OUT: may be NULL */);

/**
 * butler_timer_cancel cancels timer `timer` (from butler_send_after()): it
 * will not fire again (a firing already under way on its loop completes).
 * Returns BUTLER_ENOTFOUND when it has fired its last time or was cancelled
 * before. Any thread.
 */
BUTLER_API int butler_timer_cancel(butler_hub *hub, uint64_t timer);

/**
 * butler_call sends request `msg` (kind `kind` of server `server`) and
 * arranges for exactly one answer to come back to the calling server's own
 * thread: the reply (status BUTLER_OK), the handler's failure,
 * BUTLER_ETIMEDOUT after timeout_ms (-1: no timeout), BUTLER_ESTOPPED if the
 * hub stops first (either side), BUTLER_ECANCELED after butler_cancel() or
 * a purge (butler_purge()), or, while it waits, BUTLER_EREPLACED (a newer
 * request of its keep_last kind took its place) or BUTLER_EDROPPED (its
 * drop_oldest kind made room for a newer one). The answer arrives as
 * thunk(self, status, reply, cb, user). The deadline travels with
 * the request (butler_time_left_ms()), and a request whose caller has given up
 * before it was handled is destroyed unhandled (counted as abandoned). What
 * the answer needs is reserved here, so once accepted a request always ends.
 *
 * The answer must arrive on a loop, so the caller must speak for a server of
 * the hub: run one of its handlers (or on_start), or own an external-loop
 * server after butler_hub_start() (the thread that started the hub or
 * drains it, e.g. a GTK callback on the main thread). Any other thread, or
 * any thread before butler_hub_start(), gets BUTLER_ESTATE: use
 * butler_call_wait() there. On success *id (may be NULL) names the request
 * for butler_cancel(). Failure codes as butler_send(), plus BUTLER_ESTATE;
 * on failure nothing will be delivered and the caller still owns the
 * message, but for BUTLER_EDROPPED (drop_newest, inbox full), after which
 * the hub has destroyed it. Generated app_call_S_M() functions call this.
 */
BUTLER_API int butler_call(butler_hub *hub, unsigned server, unsigned kind,
    const void *msg, size_t size, int timeout_ms, butler_reply_thunk thunk,
    void (*cb)(void), void *user,
    uint64_t *id /* OUT: request id, may be NULL */);

/**
 * butler_progress_thunk is generated once per request message that declares
 * progress: it converts `cb` back to its typed form and calls it with one
 * progress message, which is destroyed after the call.
 */
typedef void (*butler_progress_thunk)(
    butler_server *self, void *progress, void (*cb)(void), void *user);

/**
 * butler_call_progress is butler_call() for a request whose spec declares
 * progress messages: each progress message the server posts with
 * butler_progress() arrives, before the answer, as
 * pthunk(self, progress, pcb, user) on the caller's thread. With the spec's
 * "latest" option only the newest undelivered progress message is kept, so
 * a fast worker cannot flood a slow caller. Generated app_call_S_M()
 * functions of such requests call this.
 */
BUTLER_API int butler_call_progress(butler_hub *hub, unsigned server,
    unsigned kind, const void *msg, size_t size, int timeout_ms,
    butler_reply_thunk thunk, void (*cb)(void), butler_progress_thunk pthunk,
    void (*pcb)(void), void *user, uint64_t *id /* OUT: may be NULL */);

/**
 * butler_call_wait sends request `msg` (kind `kind` of server `server`) and
 * blocks the calling thread until its answer: BUTLER_OK with the reply
 * copied into `reply` (`reply_size` bytes of the request's reply type; the
 * caller then owns its fields), BUTLER_ETIMEDOUT after timeout_ms (-1: no
 * limit), BUTLER_ESTOPPED if the hub stops first, BUTLER_ECANCELED, or
 * the handler's failure. `reply` is written only on BUTLER_OK; a reply that
 * arrives after the timeout is destroyed, never written into it. Progress
 * messages of the request are destroyed. For threads that are no server: a
 * plain pthread, another library's pool, main before or after the hub runs
 * its loops. From a thread that speaks for one of the hub's servers it
 * refuses with BUTLER_EDEADLK rather than block a loop; before
 * butler_hub_start() it returns BUTLER_ESTATE. Ownership: refused at once
 * (BUTLER_EFULL, ECLOSED, EDEADLK, ESTATE, EINVAL, ENOMEM), the message
 * stays the caller's; once accepted the hub owns it, whatever the outcome
 * (butler_taken() tells the two apart: a request the hub took and then
 * destroyed unanswered because it stopped returns BUTLER_ESTOPPED, never
 * BUTLER_ECLOSED, which only refuses).
 * Generated app_call_S_M_wait() functions call this. Any thread.
 */
BUTLER_API int butler_call_wait(butler_hub *hub, unsigned server,
    unsigned kind, const void *msg, size_t size, int timeout_ms,
    void *reply /* OUT: on BUTLER_OK only */, size_t reply_size);

/**
 * butler_progress posts progress message `progress` (`size` bytes of the
 * request's progress type) to the caller of the request that server `self`
 * is handling now. On BUTLER_OK the hub owns its owned fields (a message
 * replaced under "latest", or one whose caller has gone or does not listen
 * for progress, is destroyed). On failure the caller still owns them.
 * Progress is bounded like any message: it waits in the caller's inbox in
 * this thread's lane, so a caller that falls behind sees at most its
 * capacity of them queued, and a further one is refused with BUTLER_EFULL
 * (drop it, or send a newer one later); a request declared "latest" never
 * queues more than one. A reply needs no room: it was reserved when the
 * call was accepted, so replies are bounded by the calls in flight and
 * never refused. Returns BUTLER_EFULL, BUTLER_EINVAL if no request with
 * progress is being handled or the size is wrong, BUTLER_ENOMEM. Generated
 * app_progress_M() functions call this. The handling server's thread
 * only.
 */
BUTLER_API int butler_progress(
    butler_server *self, const void *progress, size_t size);

/**
 * butler_pending_info describes one request still waiting for its answer.
 * The strings are the spec's names, valid as long as the hub.
 */
typedef struct butler_pending_info {
	uint64_t id;        /**< as returned by butler_call(); 0: a wait */
	const char *caller; /**< server that asked; NULL: a thread in
	                             butler_call_wait() */
	unsigned caller_instance; /**< its instance in a pool */
	const char *server;       /**< server asked */
	const char *message;      /**< request message */
	uint64_t waiting_ms;      /**< time since the call */
	int64_t timeout_in_ms; /**< time left before it times out; -1: none */
	const char *deferred_by;    /**< server holding its deferred answer, or
	                                NULL when not deferred */
	unsigned deferred_instance; /**< that server's instance */
	uint64_t deferred_ms;       /**< time since it was deferred */
} butler_pending_info;

/** butler_pending_fn receives one butler_pending_info per waiting request. */
typedef void (*butler_pending_fn)(const butler_pending_info *info, void *user);

/**
 * butler_hub_pending calls fn once for every request of the hub still
 * waiting for its answer (who asked, whom, what, since when, and who holds
 * it deferred: the tool for finding stuck work), blocking calls included,
 * and returns how many there are. fn runs on the calling thread while a
 * request table is locked: it must not call into the hub. fn may be NULL to
 * only count. Any thread.
 */
BUTLER_API size_t butler_hub_pending(
    butler_hub *hub, butler_pending_fn fn, void *user);

/**
 * butler_reply answers the request that server `self` is handling now with
 * reply message `reply` (`size` bytes of the request's reply type). A
 * handler answers before it returns, or defers (butler_defer()): if it
 * returns without doing either, the caller gets its non-zero result, or
 * BUTLER_EHANDLER for 0. Returns BUTLER_EINVAL if no request is being
 * handled or the size is wrong, BUTLER_ESTATE if it was answered or deferred
 * already; a requester that has gone (timed out, cancelled, stopped) is not
 * an error: the reply is destroyed. The answer cannot fail for lack of
 * memory (its room was reserved by the call). On BUTLER_OK the hub owns the
 * reply's owned fields; on failure the caller still does. Generated
 * app_reply_M() functions call this. The handling server's thread only.
 */
BUTLER_API int butler_reply(
    butler_server *self, const void *reply, size_t size);

/**
 * butler_defer takes the request that server `self` is handling now (a
 * request of message `request`, the descriptor in its spec's table) out of
 * its handler: the handler may return 0 without answering, and the request
 * is answered later on the same server's thread, from anything that runs
 * there (the reply callback of its own calls, a timer or I/O on
 * butler_server_base(), another message), with butler_answer() or
 * butler_fail(). *promise names it. A handler that defers and then returns
 * non-zero fails the request with its result. Unanswered promises end with
 * BUTLER_ESTOPPED for their callers when the server stops, and
 * butler_hub_pending() shows who holds them. Cannot fail for lack of memory.
 * Returns BUTLER_EINVAL if no request of that message is being handled,
 * BUTLER_ESTATE if it was answered or deferred already (*promise is then
 * 0). Generated app_defer_M() functions call this. The handling server's
 * thread only.
 */
BUTLER_API int butler_defer(butler_server *self,
    const butler_msg_desc *request, uint64_t *promise /* OUT: 0 on failure */);

/**
 * butler_answer answers deferred request `promise` (a request of message
 * `request`) with reply `reply` (`size` bytes of its reply type), exactly
 * once. Returns BUTLER_ESTATE if the promise was answered already (or ended
 * at stop), BUTLER_EINVAL for a promise of another message or server, or a
 * wrong size; a caller that has gone is not an error: the reply is
 * destroyed. On BUTLER_OK the hub owns the reply's owned fields; on failure
 * the caller still does. Generated app_answer_M() functions call this.
 * The thread of the server that deferred it only.
 */
BUTLER_API int butler_answer(butler_server *self, uint64_t promise,
    const butler_msg_desc *request, const void *reply, size_t size);

/**
 * butler_fail ends deferred request `promise` with failure `code`
 * (non-zero: a butler_err or the server's own positive code), exactly once.
 * Errors as butler_answer(), plus BUTLER_EINVAL for code 0. Generated
 * app_fail_M() functions call this. The thread of the server that deferred
 * it only.
 */
BUTLER_API int butler_fail(butler_server *self, uint64_t promise,
    const butler_msg_desc *request, int code);

/**
 * butler_progress_promise is butler_progress() for deferred request
 * `promise`. Errors as butler_answer() and butler_progress(). Generated
 * app_progress_M_promise() functions call this. The thread of the server
 * that deferred it only.
 */
BUTLER_API int butler_progress_promise(butler_server *self, uint64_t promise,
    const butler_msg_desc *request, const void *progress, size_t size);

/**
 * butler_cancelled says whether the caller of the request that server
 * `self` is handling now has given up on it (cancelled, timed out, stopped,
 * or the hub's stop discards), so that a long handler can stop early. One
 * atomic load, no lock. False when no request is being handled. The
 * handling server's thread only.
 */
BUTLER_API bool butler_cancelled(const butler_server *self);

/**
 * butler_time_left_ms returns how long the caller of the request that
 * server `self` is handling now will still wait for its answer: -1 for no
 * deadline, 0 once it has passed (or no request is being handled). The
 * handling server's thread only.
 */
BUTLER_API int64_t butler_time_left_ms(const butler_server *self);

/**
 * butler_promise_cancelled is butler_cancelled() for deferred request
 * `promise`; true also for a promise that has ended. The thread of the
 * server that deferred it only.
 */
BUTLER_API bool butler_promise_cancelled(
    const butler_server *self, uint64_t promise);

/**
 * butler_promise_time_left_ms is butler_time_left_ms() for deferred
 * request `promise`. The thread of the server that deferred it only.
 */
BUTLER_API int64_t butler_promise_time_left_ms(
    const butler_server *self, uint64_t promise);

/**
 * butler_binding ties deliveries to the life of something else, such as a
 * GUI widget (the GLib adapter's butler_glib_binding_new() makes one from a
 * GObject). On the receiving thread, right before a bound message's handler
 * or a bound call's callback, the hub calls enter(): a non-NULL token means
 * "still alive" (it may hold the thing alive, a strong reference), and
 * leave(self, token) follows once the handler or callback has returned;
 * NULL means it is gone, and the delivery is destroyed unhandled (counted
 * as dropped), its callback never run. release() is called exactly once
 * for each reference the hub was given, when it is done with it, on
 * whichever thread that is. The hub never copies or frees the struct.
 */
typedef struct butler_binding butler_binding;

/** The functions of a butler_binding (see above). */
struct butler_binding {
	void *(*enter)(butler_binding *self); /**< receiving thread */
	void (*leave)(butler_binding *self, void *token); /**< same thread */
	void (*release)(butler_binding *self); /**< once per reference */
};

/**
 * butler_send_bound is butler_send() of a message bound to `binding`: it
 * is handled only if binding->enter() says the bound thing is alive when
 * its turn comes, and destroyed unhandled otherwise. On BUTLER_OK (or
 * another code of butler_taken()) the hub owns one reference to the
 * binding and releases it; on failure the caller still does. Codes as
 * butler_send(), and BUTLER_EINVAL for a NULL binding. Any thread.
 */
BUTLER_API int butler_send_bound(butler_hub *hub, unsigned server,
    unsigned kind, const void *msg, size_t size, butler_binding *binding);

/**
 * butler_call_bind binds call `id`, made by the calling thread and not yet
 * ended, to `binding`: its reply callback and progress callbacks run only
 * while binding->enter() says the bound thing is alive; once it is gone
 * they never run (the reply and progress are destroyed on arrival), and
 * the first progress message that finds it gone cancels the call, so its
 * server sees butler_cancelled() (butler_cancel() from the binding's own
 * "gone" notice does it at once: the callback stays silent). The hub takes
 * one reference to the binding and releases it when the call ends.
 * Returns BUTLER_OK, BUTLER_ENOTFOUND (no such call open), BUTLER_EINVAL,
 * BUTLER_ESTATE (the calling thread speaks for no server of the hub). The
 * calling thread only: the one that made the call.
 */
BUTLER_API int butler_call_bind(
    butler_hub *hub, uint64_t id, butler_binding *binding);

/**
 * butler_cancel cancels request `id` made by the calling server: its
 * callback runs once, with BUTLER_ECANCELED, before butler_cancel() returns,
 * and a reply arriving later is destroyed. If the request is still queued
 * its handler never runs; a running handler sees butler_cancelled(). Returns
 * BUTLER_ENOTFOUND when the request has ended already (its callback ran),
 * BUTLER_ESTATE when the calling thread speaks for no server of the hub.
 * The calling server's thread only.
 */
BUTLER_API int butler_cancel(butler_hub *hub, uint64_t id);

/**
 * butler_server_fd returns the pollable fd of external-loop server
 * `server`: it becomes readable when the inbox has work, and
 * butler_server_drain() makes it unreadable again once the work is done.
 * Register it for reading with your loop (poll, GLib, Qt). The fd stays
 * valid until butler_hub_free(). Returns -1 for a threaded server or a bad
 * index. Any thread.
 */
BUTLER_API int butler_server_fd(butler_hub *hub, unsigned server);

/**
 * butler_server_drain handles up to `max` queued messages of external-loop
 * server `server` on the calling thread (0 means a default batch), and
 * delivers up to `max` of the answers that have arrived for its calls
 * (oldest first; the rest wait for the next drain, or for a stop, which
 * delivers them), and, if work remains, leaves its fd readable. *handled (may
 * be NULL) receives the number of messages handled. Returns BUTLER_EINVAL for
 * a threaded server, BUTLER_EBUSY if another thread is draining it,
 * BUTLER_ESTATE before butler_hub_start(). Call it from the one thread that
 * owns the server.
 */
BUTLER_API int butler_server_drain(butler_hub *hub, unsigned server,
    unsigned max, unsigned *handled /* OUT: may be NULL */);

/**
 * butler_server_next_timeout returns how many milliseconds the owner of
 * external-loop server `server` may sleep before it must call
 * butler_server_drain() even if the fd stayed quiet (a request it made is
 * due to time out), or -1 when nothing is due. Pass it as the poll timeout.
 * The owning thread only.
 */
BUTLER_API int butler_server_next_timeout(butler_hub *hub, unsigned server);

/**
 * butler_server_stats fills *out with server `server`'s counters summed over
 * its instances. Any thread.
 */
BUTLER_API int butler_server_stats(
    butler_hub *hub, unsigned server, butler_stats *out /* OUT */);

/**
 * butler_instance_stats fills *out with the counters of instance `instance`
 * of server `server` alone (how a pool spread its work). Returns
 * BUTLER_EINVAL for a bad index. Any thread.
 */
BUTLER_API int butler_instance_stats(butler_hub *hub, unsigned server,
    unsigned instance, butler_stats *out /* OUT */);

/**
 * butler_server_kind_stats fills *out with what kind `kind` (1-based, as
 * the generated APP_S_M constants) of server `server` did, summed over its
 * instances. Returns BUTLER_EINVAL for a bad index. Any thread.
 */
BUTLER_API int butler_server_kind_stats(butler_hub *hub, unsigned server,
    unsigned kind, butler_kind_stats *out /* OUT */);

/**
 * butler_hub_enable_metrics turns metrics on for server `server`
 * (BUTLER_NO_SERVER: every server): each send stamps its message with the
 * time (one clock read) and counts it per kind, and the consumer times
 * each message's wait and its handler (two clock reads) into per-kind
 * histograms (butler_kind_stats). Such sends leave the inline fast path;
 * tests/bench measures what that costs (peer `butler_metrics`: 193
 * instructions more per send and 240 more per receive, 0.41x the 1->1
 * throughput on a 2-vCPU VM; README, Performance). Before
 * butler_hub_start(): BUTLER_ESTATE after; BUTLER_EINVAL for a bad index;
 * BUTLER_ENOMEM. Setting BUTLER_METRICS=1 in the environment does it for
 * every server of every hub.
 */
BUTLER_API int butler_hub_enable_metrics(butler_hub *hub, unsigned server);

/**
 * butler_hub_set_metrics_log makes the hub's monitor thread write, every
 * period_ms milliseconds, one BUTLER_LOG_INFO line through the log
 * callback per message kind of each server with metrics on
 * (butler_hub_enable_metrics()) whose counts moved since the last line:
 * sent, handled, failed, rejected, dropped, replaced, purged, abandoned,
 * queued, and the queue and handler p50 and p99 in microseconds (see
 * butler_kind_stats). 0 turns it off (the default). The hub's default log
 * (stderr, warnings only) writes these lines too; a callback set with
 * butler_hub_set_log() gets them if its max_level is BUTLER_LOG_INFO or
 * more. The numbers are read as butler_server_kind_stats() reads them, on
 * the monitor thread: senders and handlers pay nothing more for the dump.
 * BUTLER_METRICS_LOG_MS=N in the environment turns metrics on for every
 * server (as BUTLER_METRICS=1) and sets the period of every hub to N.
 * Before butler_hub_start() (BUTLER_ESTATE after); BUTLER_EINVAL for a
 * NULL hub or a period above a day (86,400,000 ms). Any thread.
 *
 * The same thread is the hub's watchdog: a handler (a message's, a
 * request's, a timer's or tick's) that runs longer than the spec's
 * max_handler_ms of its kind, or else of its server, is reported once per
 * run, as a BUTLER_LOG_WARN line naming the server, the instance, the
 * message and how long it has run so far ("watchdog: server 'S' instance
 * I: handler for 'M' has run for N ms (limit L ms)"); for an external-loop
 * server the line adds that it stalls the loop that drains it. The thread
 * samples what each instance runs every quarter of the smallest limit
 * (between 5 and 250 ms), and a handler sends it nothing: so the time
 * reported is at least the limit and at most one such period short of the
 * true run time (precision: one period), the report comes at most about
 * two periods after the limit was passed, and a run that outlasts its
 * limit by less than that may end unreported. The monitor thread
 * ("butler-monitor") exists only while the hub runs with a limit or a dump
 * period set; butler_hub_start() starts it, the stop joins it.
 */
BUTLER_API int butler_hub_set_metrics_log(butler_hub *hub, unsigned period_ms);

/**
 * butler_purge destroys, unhandled, every message (and request) of kind
 * `kind` of server `server` that waits in its inbox, every instance of a
 * pool, when the call is made; a message sent after butler_purge()
 * returns is never touched. Each is destroyed through its destructor and
 * counted as purged (butler_stats, butler_kind_stats); a purged request
 * ends with BUTLER_ECANCELED for its caller. What a handler has begun is
 * not purged. An instance run by the calling thread (from its handlers,
 * or an external server's owner) is purged at once; any other instance
 * purges before it takes its next message. *purged (may be NULL) receives
 * how many it purged: with it given, a thread that is no server of the hub
 * waits until every instance has done it (at most until the handler
 * running there returns); a thread of the hub's servers never waits for a
 * peer, so what other instances purge for it is not in *purged (the purged
 * counters have it). With NULL the call never waits. Returns BUTLER_OK,
 * BUTLER_EINVAL (bad index), BUTLER_ECLOSED (the hub has stopped),
 * BUTLER_ENOMEM. Generated app_purge_S_M() functions call this. Any
 * thread.
 */
BUTLER_API int butler_purge(butler_hub *hub, unsigned server, unsigned kind,
    uint64_t *purged /* OUT: may be NULL */);

/**
 * butler_server_instances returns the number of instances of server
 * `server` (its pool size, "auto" resolved), 0 for a bad index. Any thread.
 */
BUTLER_API unsigned butler_server_instances(
    const butler_hub *hub, unsigned server);

/**
 * butler_server_count returns the number of servers in the hub's spec.
 * Any thread.
 */
BUTLER_API unsigned butler_server_count(const butler_hub *hub);

/**
 * butler_server_self returns the server whose handler (or on_start/on_stop,
 * or external drain) the calling thread is running, or NULL. Any thread.
 */
BUTLER_API butler_server *butler_server_self(void);

/** butler_server_hub returns the hub that `self` belongs to. */
BUTLER_API butler_hub *butler_server_hub(const butler_server *self);

/** butler_server_id returns `self`'s server index in the spec. */
BUTLER_API unsigned butler_server_id(const butler_server *self);

/** butler_server_instance returns `self`'s instance number in its pool. */
BUTLER_API unsigned butler_server_instance(const butler_server *self);

/** butler_server_name returns `self`'s spec name. */
BUTLER_API const char *butler_server_name(const butler_server *self);

/**
 * butler_server_base returns the libevent loop of threaded server `self`,
 * for adding its own timers and I/O (include <event2/event.h>), or NULL for
 * an external-loop server. Use it from `self`'s thread only; the loop exits
 * when the hub stops, and events still added are freed by their owner in
 * on_stop.
 */
BUTLER_API struct event_base *butler_server_base(butler_server *self);

#ifdef __cplusplus
}
#endif

#endif /* BUTLER_HUB_H */
