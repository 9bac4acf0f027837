/* SPDX-License-Identifier: MIT */
/**
 * @file
 * butler/gen.h — the contract between butler-gen's output and the runtime.
 *
 * Generated code fills the descriptor tables below (one butler_spec per spec
 * file) and the hub is built from them with butler_hub_new(). Tests and
 * programs that do not use the generator may fill them by hand; every field
 * is documented so that this is possible.
 *
 * Naming scheme of generated code, for app `imaging`, message `resize` and
 * server `worker` (docs/ARCHITECTURE.md, codegen/SPEC.md):
 *
 *   struct imaging_resize                 the message's fields
 *   enum imaging_msg_id / IMAGING_MSG_RESIZE      index in imaging_spec
 *   enum imaging_server_id / IMAGING_SERVER_WORKER index in imaging_spec
 *   enum imaging_worker_kind / IMAGING_WORKER_NONE = 0, IMAGING_WORKER_RESIZE
 *   struct imaging_worker_msg             tagged union of what worker accepts
 *   struct imaging_worker_handlers        on_start, on_stop, one per message
 *   imaging_worker_resize_fn              the type of resize's handler
 *   imaging_worker_register()             installs a handler table
 *   imaging_worker_register_each()        the same, one argument per handler:
 *                                         one left out or swapped does not
 *                                         compile
 *   imaging_send_worker_resize()          typed send
 *   imaging_call_worker_resize()          typed request, for messages with
 *                                         a reply; answered on the caller's
 *                                         loop
 *   imaging_call_worker_resize_wait()     the same, blocking, for threads
 *                                         that are no server
 *   imaging_reply_resize()                answers the request being handled
 *   struct imaging_resize_promise         a deferred request of resize
 *   imaging_defer_resize()                defers the request being handled
 *   imaging_answer_resize()               answers a deferred request
 *   imaging_fail_resize()                 fails a deferred request
 *   imaging_progress_resize(), imaging_progress_resize_promise()
 *                                         progress, for messages that
 *                                         declare it
 *   imaging_resize_promise_cancelled(), imaging_resize_promise_time_left_ms()
 *                                         what the deferred request's caller
 *                                         still wants
 *   imaging_resize_destroy()              frees the owned fields
 *   imaging_resize_wire_size(), imaging_resize_encode(),
 *   imaging_resize_decode()               the wire format (butler/wire.h)
 *   IMAGING_WIRE_HASH                     identifies the spec on the wire
 *   imaging_spec                          the descriptor table
 *
 * Generated headers refuse to compile against a runtime whose
 * BUTLER_GEN_ABI differs from the one they were generated for, and
 * butler_hub_new() refuses a table whose abi field differs (BUTLER_EABI).
 */
#ifndef BUTLER_GEN_H
#define BUTLER_GEN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * BUTLER_GEN_ABI is the version of this contract. It changes whenever a
 * descriptor layout or a function that generated code calls changes.
 */
#define BUTLER_GEN_ABI 3

/*
 * Limits shared by butler-gen and the runtime: butler-gen rejects a spec
 * beyond them (file:line:col) and butler_hub_new() refuses a table beyond
 * them (BUTLER_EINVAL), so a spec that generates also runs.
 */
/** BUTLER_MAX_MESSAGES: messages per spec. */
#define BUTLER_MAX_MESSAGES 65535u
/** BUTLER_MAX_ACCEPTS: messages one server accepts. */
#define BUTLER_MAX_ACCEPTS 65535u
/** BUTLER_MAX_MESSAGE_SIZE: sizeof one message struct, in bytes. */
#define BUTLER_MAX_MESSAGE_SIZE 1048576u
/** BUTLER_MAX_INSTANCES: instances of one pool. */
#define BUTLER_MAX_INSTANCES 4096u
/** BUTLER_MAX_CAPACITY: capacity of one inbox (2^24). */
#define BUTLER_MAX_CAPACITY 16777216u
/** BUTLER_MAX_IMPORTS: specs one hub is built from, its own included. */
#define BUTLER_MAX_IMPORTS 64u

/**
 * BUTLER_INSTANCES_AUTO in butler_server_desc.instances (spec:
 * "instances": "auto") sizes a pool to the number of online CPUs when the
 * hub is created.
 */
#define BUTLER_INSTANCES_AUTO 0u

/** butler_server is one running server instance (see butler/hub.h). */
typedef struct butler_server butler_server;

/**
 * butler_destroy_fn frees the owned fields (strings, bytes, buffers) of one
 * message in place. It never frees the message struct itself and accepts a
 * message whose owned pointers are NULL.
 */
typedef void (*butler_destroy_fn)(void *msg);

/**
 * butler_dispatch_fn runs the handler for message kind `kind` (1-based,
 * server-local) from the handler table `handlers` (the hub's copy of the
 * table given to butler_hub_set_handlers()). It returns the handler's result,
 * or BUTLER_EKIND for a kind the table does not know. Runs on the server's
 * thread.
 */
typedef int (*butler_dispatch_fn)(butler_server *self, const void *handlers,
    void *user, unsigned kind, void *msg);

/**
 * butler_check_fn returns the name of the first message in `handlers` that
 * has no handler, or NULL when the table is complete.
 */
typedef const char *(*butler_check_fn)(const void *handlers);

/**
 * butler_start_fn is a server's on_start: the first thing to run on its
 * thread. A non-zero result aborts butler_hub_start(), which returns it.
 */
typedef int (*butler_start_fn)(butler_server *self, void *user);

/** butler_stop_fn is a server's on_stop: the last thing to run on its thread.
 */
typedef void (*butler_stop_fn)(butler_server *self, void *user);

/**
 * butler_reply_thunk is generated once per request message. It converts the
 * type-erased callback `cb` back to its typed form and calls it. `reply` is
 * the reply message when status is BUTLER_OK and NULL otherwise; it is
 * destroyed after the thunk returns, so a callback that keeps an owned field
 * must move it out and set the field to NULL.
 */
typedef void (*butler_reply_thunk)(butler_server *self, int status,
    void *reply, void (*cb)(void), void *user);

/** BUTLER_MSG_PROGRESS_LATEST: only the latest undelivered progress counts. */
#define BUTLER_MSG_PROGRESS_LATEST 0x1u

/**
 * butler_wire_size_fn returns the number of bytes the message `msg` takes
 * in the wire format (butler/wire.h), which is what its butler_encode_fn
 * writes, or SIZE_MAX when msg is NULL or holds what the format cannot
 * carry (a string or bytes longer than BUTLER_WIRE_LEN_MAX, bytes or a buf
 * with NULL data and a length). Reads *msg only. Any thread.
 */
typedef size_t (*butler_wire_size_fn)(const void *msg);

/**
 * butler_encode_fn writes the message `msg` in the wire format to the `cap`
 * bytes at `out` (NULL only when cap is 0) and stores the number of bytes
 * written in *used (may be NULL). *msg is only read: it stays its owner's.
 * Returns BUTLER_OK, or BUTLER_EINVAL when an argument is NULL, the message
 * cannot be encoded (see butler_wire_size_fn) or cap is smaller than its
 * wire size (*used is then 0 and the bytes at out are unspecified). Any
 * thread.
 */
typedef int (*butler_encode_fn)(
    const void *msg, unsigned char *out, size_t cap, size_t *used /* OUT */);

/**
 * butler_decode_fn reads one message from the `len` bytes at `in` (NULL
 * only when len is 0) into `out`, which points to butler_msg_desc.size
 * bytes of the caller's; their content before the call does not matter.
 * With `used` NULL the message must take exactly the `len` bytes (trailing
 * bytes are BUTLER_EWIRE); with `used` given it is read from the start of
 * the input, *used receives the bytes it took, and what follows is the
 * caller's. On BUTLER_OK the caller owns the decoded message's owned fields
 * (free them with butler_msg_desc.destroy when not NULL). On failure
 * nothing is left allocated and *out is all zero: BUTLER_EWIRE for input
 * that is truncated or malformed (a bool other than 0 or 1, a length beyond
 * the input, a string holding a NUL, a bytes length of BUTLER_WIRE_NULL),
 * BUTLER_ENOMEM, or BUTLER_EINVAL for a NULL argument. Lengths are checked
 * against the input before anything is allocated, so the allocations never
 * exceed `len` bytes in total. Any thread.
 */
typedef int (*butler_decode_fn)(
    void *out, const unsigned char *in, size_t len, size_t *used /* OUT */);

/**
 * butler_msg_desc describes one message type of a spec. wire_size, encode
 * and decode are all set or all NULL: NULL for a message that cannot leave
 * the process because it holds a `ptr` field, directly or nested.
 */
typedef struct butler_msg_desc {
	const char *name;          /**< spec name, for logs and listings */
	size_t size;               /**< sizeof the generated struct */
	butler_destroy_fn destroy; /**< frees owned fields; NULL if none */
	int reply;                 /**< message index of the reply, or -1 */
	int progress;              /**< message index of progress, or -1 */
	unsigned flags;            /**< BUTLER_MSG_* */
	butler_wire_size_fn wire_size; /**< wire size, or NULL: no codec */
	butler_encode_fn encode;       /**< encoder, or NULL: no codec */
	butler_decode_fn decode;       /**< decoder, or NULL: no codec */
} butler_msg_desc;

/** butler_loop says who runs a server's loop. */
typedef enum butler_loop {
	BUTLER_LOOP_THREAD
	= 0, /**< butler starts a thread with a libevent loop */
	BUTLER_LOOP_EXTERNAL = 1 /**< the application's thread drains it */
} butler_loop;

/** butler_full says what a send to a full inbox does. */
typedef enum butler_full {
	BUTLER_FULL_FAIL = 0,  /**< return BUTLER_EFULL at once */
	BUTLER_FULL_BLOCK = 1, /**< wait up to block_timeout_ms for room */
	BUTLER_FULL_DROP_NEWEST = 2, /**< destroy the new message */
	BUTLER_FULL_DROP_OLDEST = 3, /**< destroy the oldest queued one */
	BUTLER_FULL_KEEP_LAST = 4    /**< a newer message of the kind
	                                replaces the queued one */
} butler_full;

/** butler_route says how a send to a pool chooses an instance. */
typedef enum butler_route {
	BUTLER_ROUTE_ROUND_ROBIN = 0,  /**< in turn, skipping full ones */
	BUTLER_ROUTE_LEAST_LOADED = 1, /**< the least queued and busy */
	BUTLER_ROUTE_KEY = 2 /**< by a key field: one key, one instance,
	                        its messages in order */
} butler_route;

/**
 * butler_key_desc says where the routing key of one message kind is: an
 * integer of `size` bytes (1, 2, 4 or 8) at `offset`, or, with size 0, a
 * string (a `char *` at offset; NULL hashes like "").
 */
typedef struct butler_key_desc {
	size_t offset; /**< offsetof the key field in the message struct */
	unsigned size; /**< 1, 2, 4, 8: an integer; 0: a string */
} butler_key_desc;

/**
 * butler_kind_desc is what one message kind of a server may set beyond
 * the server's defaults.
 */
typedef struct butler_kind_desc {
	butler_full full;        /**< this kind's overload policy */
	int block_timeout_ms;    /**< with BUTLER_FULL_BLOCK */
	butler_key_desc key;     /**< with BUTLER_ROUTE_KEY */
	unsigned max_handler_ms; /**< watchdog: 0 is the server's */
} butler_kind_desc;

/**
 * BUTLER_SERVER_REMOTE in butler_server_desc.flags (spec: "remote": true)
 * says the server may run in another process, behind a bridge: butler-gen
 * made sure that every message it accepts, answers or reports as progress
 * has a codec. The runtime itself does not look at it.
 */
#define BUTLER_SERVER_REMOTE 0x1u

/**
 * butler_server_desc describes one server of a spec. Kind k (1-based) of
 * this server is message accepts[k - 1].
 */
typedef struct butler_server_desc {
	const char *name;   /**< spec name; names the thread */
	butler_loop loop;   /**< thread or external */
	unsigned instances; /**< pool size, or BUTLER_INSTANCES_AUTO;
	                            external: exactly 1 */
	unsigned capacity; /**< messages one sending thread may have queued and
	                      not yet taken, >= 1: the one being handled does
	                      not count, so 4 lets 4 wait behind it */
	butler_full full;  /**< policy for a full inbox */
	int block_timeout_ms; /**< BLOCK only: -1 waits until room or stop */
	const unsigned *accepts; /**< message indexes, n_accepts of them */
	unsigned n_accepts;      /**< length of accepts */
	size_t handlers_size;    /**< sizeof the generated handler table */
	butler_check_fn check;   /**< completeness check of a handler table */
	butler_dispatch_fn dispatch; /**< the generated switch */
	butler_route route;          /**< how a pool chooses an instance */
	unsigned share; /**< non-zero: an idle instance of the pool takes
	                   work queued on a busy one (not with ROUTE_KEY) */
	const butler_kind_desc *kinds; /**< [n_accepts], or NULL: every kind
	                                  as the server says */
	unsigned max_queued;     /**< bound on what one instance holds queued
	                            from all senders together; 0: none. Kept
	                            by per-sender allowances of credits taken
	                            in batches from one pool, not by a shared
	                            counter per send (butler_send() in
	                            butler/hub.h says how) */
	unsigned max_handler_ms; /**< watchdog: a handler running longer is
	                            reported once; 0: never */
	unsigned tick_kind; /**< kind (1-based) delivered to every instance
	                       every tick_ms, or 0 */
	unsigned tick_ms;   /**< period of the tick, > 0 with tick_kind */
	unsigned flags;     /**< BUTLER_SERVER_* */
} butler_server_desc;

/**
 * butler_spec is the descriptor table of one spec file. A spec may import
 * others (a first-party server's spec, say): a hub built from it runs the
 * servers of every spec it reaches through `imports`, each spec once, with
 * the spec's own servers first (see butler_hub_server()). Message and
 * server indexes inside a table are local to that table.
 *
 * Two processes that exchange messages of a spec (through a bridge) must
 * have been generated from the same spec: a bridge sends wire_hash (and
 * version) when it connects, and refuses a peer whose hash differs from
 * its own table's, naming both ("peer spec hash 0x... (version 2) differs
 * from ours 0x... (version 3)"). Each spec of a hub has its own hash.
 */
typedef struct butler_spec {
	unsigned abi;                    /**< BUTLER_GEN_ABI when generated */
	const char *app;                 /**< the spec's app prefix */
	const butler_msg_desc *messages; /**< n_messages of them */
	unsigned n_messages;             /**< length of messages */
	const butler_server_desc *servers;        /**< n_servers of them */
	unsigned n_servers;                       /**< length of servers */
	const struct butler_spec *const *imports; /**< n_imports of them */
	unsigned n_imports;                       /**< length of imports */
	uint64_t wire_hash;  /**< FNV-1a 64 of the spec's wire-relevant parts
	                        (codegen/SPEC.md, "Wire format"): peers whose
	                        hashes differ must not exchange messages */
	const char *version; /**< the spec's "version", for people, or NULL */
} butler_spec;

#ifdef __cplusplus
}
#endif

#endif /* BUTLER_GEN_H */
