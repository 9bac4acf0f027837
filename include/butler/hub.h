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
 * Ownership (for every send): the message struct is copied into the inbox.
 * On BUTLER_OK the hub owns the message's owned fields (strings, bytes,
 * buffers) and frees them after the handler returns, or at stop if it is
 * never handled. On any failure the caller still owns them.
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
 * butler_stop_policy says what butler_hub_stop() does with queued messages.
 */
typedef enum butler_stop_policy {
	BUTLER_STOP_DRAIN = 0,  /**< handle what is queued, then stop */
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
 * instances. Counters are read without stopping the server, so a snapshot
 * taken while messages flow is approximate.
 */
typedef struct butler_stats {
	uint64_t sent;     /**< sends accepted into the inbox */
	uint64_t rejected; /**< sends refused with BUTLER_EFULL or ETIMEDOUT */
	uint64_t handled;  /**< handler calls that returned 0 */
	uint64_t failed;   /**< handler calls that returned non-zero */
	uint64_t dropped;  /**< accepted messages destroyed unhandled */
	uint64_t depth;    /**< messages queued now */
	uint64_t high_water; /**< largest depth seen by the consumer */
	uint64_t wakeups;    /**< times the consumer was woken from sleep */
	uint64_t handler_ns; /**< time spent handling messages */
} butler_stats;

/**
 * butler_hub_new creates a hub for `spec` (usually the generated
 * app_spec). The spec table must outlive the hub. No thread is started and
 * no handler is set; messages sent before butler_hub_start() are queued.
 * Returns BUTLER_EABI for a table of another generator ABI, BUTLER_EINVAL for
 * an inconsistent table, BUTLER_ENOMEM or BUTLER_ESYS. Any thread.
 */
BUTLER_API int butler_hub_new(
    butler_hub **out /* OUT: the new hub */, const butler_spec *spec);

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
 * if the hub was started before. Call it from the thread that will drain the
 * external-loop servers.
 */
BUTLER_API int butler_hub_start(butler_hub *hub);

/**
 * butler_hub_stop stops every server: from this call on, sends return
 * BUTLER_ECLOSED and blocked senders wake with BUTLER_ECLOSED. Each server
 * finishes the handler it is in, handles (DRAIN) or destroys (DISCARD) what
 * was queued, runs on_stop, and its thread is joined; external servers are
 * drained on the calling thread. A send that races with the stop and
 * returns BUTLER_OK is handled or destroyed, never lost. The stop does not
 * travel through the inboxes, so a full inbox cannot delay it.
 * Idempotent: later calls return BUTLER_OK at once. Returns BUTLER_EDEADLK
 * when called from one of the hub's own handlers. Call it from the thread
 * that drains the external-loop servers.
 */
BUTLER_API int butler_hub_stop(butler_hub *hub, butler_stop_policy policy);

/**
 * butler_send copies message `msg` (`size` bytes, the size of the message
 * type that kind `kind` of server `server` accepts) into the server's inbox.
 * For a pool, the instance is chosen round-robin among those with room.
 * Messages from one thread to one server instance are handled in the order
 * they were sent. Returns BUTLER_OK, BUTLER_EFULL (inbox full, policy FAIL,
 * or the caller is the full server itself), BUTLER_ETIMEDOUT (policy BLOCK,
 * still full after block_timeout_ms), BUTLER_ECLOSED (stopped), BUTLER_EINVAL
 * (bad server, kind or size) or BUTLER_ENOMEM. On failure the caller still
 * owns the message. Generated app_send_S_M() functions call this. Any
 * thread; lock-free unless the policy is BLOCK and the inbox is full.
 */
BUTLER_API int butler_send(butler_hub *hub, unsigned server, unsigned kind,
    const void *msg, size_t size);

/**
 * butler_send_timeout is butler_send() that waits up to timeout_ms (-1:
 * until room or stop) for room in a full inbox, whatever the server's full
 * policy. Never call it from a thread that must not block (a GUI thread).
 * Any thread.
 */
BUTLER_API int butler_send_timeout(butler_hub *hub, unsigned server,
    unsigned kind, const void *msg, size_t size, int timeout_ms);

/**
 * butler_call sends request `msg` (kind `kind` of server `server`) and
 * arranges for exactly one answer to come back to the calling server's own
 * thread: the reply (status BUTLER_OK), BUTLER_ETIMEDOUT after timeout_ms
 * (-1: no timeout), BUTLER_ECLOSED if the server stops first, or
 * BUTLER_ECANCELED after butler_cancel(). The answer arrives as
 * thunk(self, status, reply, cb, user). The caller must speak for a server
 * of the hub: run one of its handlers (or on_start), or own an external-loop
 * server (the thread that started the hub or drains it, e.g. a GTK callback
 * on the main thread); otherwise BUTLER_EINVAL. On success *id (may be NULL)
 * names the request for butler_cancel(). Failure codes as butler_send(); on
 * failure nothing will be delivered and the caller still owns the message.
 * Generated app_call_S_M() functions call this.
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
 * butler_progress posts progress message `progress` (`size` bytes of the
 * request's progress type) to the caller of the request that server `self`
 * is handling now. On BUTLER_OK the hub owns its owned fields (a message
 * replaced under "latest", or one whose caller has gone, is destroyed).
 * Returns BUTLER_EINVAL if no request with progress is being handled or the
 * size is wrong, BUTLER_ENOMEM. Generated app_progress_M() functions call
 * this. The handling server's thread only.
 */
BUTLER_API int butler_progress(
    butler_server *self, const void *progress, size_t size);

/**
 * butler_pending_info describes one request still waiting for its answer.
 * The strings are the spec's names, valid as long as the hub.
 */
typedef struct butler_pending_info {
	uint64_t id;              /**< as returned by butler_call() */
	const char *caller;       /**< server that asked */
	unsigned caller_instance; /**< its instance in a pool */
	const char *server;       /**< server asked */
	const char *message;      /**< request message */
	uint64_t waiting_ms;      /**< time since the call */
	int64_t timeout_in_ms; /**< time left before it times out; -1: none */
} butler_pending_info;

/** butler_pending_fn receives one butler_pending_info per waiting request. */
typedef void (*butler_pending_fn)(const butler_pending_info *info, void *user);

/**
 * butler_hub_pending calls fn once for every request of the hub still
 * waiting for its answer (who asked, whom, what, since when: the tool for
 * finding stuck work) and returns how many there are. fn runs on the calling
 * thread while a server's request table is locked: it must not call into
 * the hub. fn may be NULL to only count. Any thread.
 */
BUTLER_API size_t butler_hub_pending(
    butler_hub *hub, butler_pending_fn fn, void *user);

/**
 * butler_reply answers the request that server `self` is handling now with
 * reply message `reply` (`size` bytes of the request's reply type). A
 * handler answers before it returns: if it returns without answering, the
 * caller gets its non-zero result, or BUTLER_EHANDLER for 0. Returns
 * BUTLER_EINVAL if no request is being handled or the size is wrong,
 * BUTLER_ESTATE if it was answered already; a requester that has gone
 * (timed out, cancelled, stopped) is not an error: the reply is destroyed.
 * On success the hub owns the reply's owned fields. Generated app_reply_M()
 * functions call this. The handling server's thread only.
 */
BUTLER_API int butler_reply(
    butler_server *self, const void *reply, size_t size);

/**
 * butler_cancel cancels request `id` made by the calling server: its
 * callback runs once, with BUTLER_ECANCELED, before butler_cancel() returns,
 * and a reply arriving later is destroyed. Returns BUTLER_ENOTFOUND when
 * the request has already been answered. The calling server's thread only.
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
 * server `server` on the calling thread (0 means a default batch) and, if
 * work remains, leaves its fd readable. *handled (may be NULL) receives the
 * number of messages handled. Returns BUTLER_EINVAL for a threaded server,
 * BUTLER_EBUSY if another thread is draining it, BUTLER_ESTATE before
 * butler_hub_start(). Call it from the one thread that owns the server.
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
