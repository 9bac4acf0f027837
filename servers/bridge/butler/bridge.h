/* SPDX-License-Identifier: MIT */
/**
 * @file
 * butler/bridge.h — servers of one hub in another process or machine.
 *
 * A bridge connects hubs built from the same spec (or sharing the specs
 * of the servers they exchange) over nng byte streams: tcp://, ipc:// and
 * tls+tcp://. On the side that *uses* a remote server, that server's local
 * instance becomes a proxy: the generated send and call functions work
 * unchanged, and what they send travels to the peer that *exposes* the
 * server, where the bridge's own server (servers/bridge/bridge.json)
 * delivers it with butler_send() and butler_call(). Replies, failures,
 * progress, timeouts (the deadline travels with the request), cancellation
 * and deferred answers come back the same way.
 *
 * Which servers are local, which are exposed and which live at which URL is
 * configuration (butler_bridge_config, or a JSON file read by
 * butler_bridge_new_file()), so one binary runs all-local or split.
 *
 * What a program does:
 *
 *   butler_hub_new(&hub, &app_spec);
 *   app_S_register(hub, ...);                 every server, as always
 *   butler_bridge_new_file(&bridge, hub, &app_spec, "deploy.json", "client");
 *   butler_hub_start(hub);
 *   butler_bridge_wait(bridge, 5000);         optional: links are up
 *   ... app_call_S_M(...) ...                 S may live elsewhere
 *   butler_hub_stop(hub, BUTLER_STOP_DRAIN);
 *   butler_hub_free(hub);
 *   butler_bridge_free(bridge);               after the hub
 *
 * A hub that exposes servers must be built from a spec that imports
 * servers/bridge/bridge.json (its server `bridge` does the delivering).
 *
 * **Semantics across the link.**
 * - A message or request is accepted by the local proxy (its inbox) as by
 *   any server, so a send returns BUTLER_OK, BUTLER_EFULL... at once. The
 *   proxy forwards within the credit the peer grants per server (a window
 *   of frames and bytes): when the window is used up, the proxy waits, its
 *   inbox fills, and local senders get BUTLER_EFULL. A full remote inbox
 *   is thus reported to the sender, and nothing is buffered without bound.
 * - While a link is down (not yet connected, or lost and reconnecting with
 *   backoff), the proxy fails what it takes at once: a request ends with
 *   BUTLER_ECLOSED, a message is not delivered (counted in
 *   butler_bridge_stats(): dropped). Requests in flight over a link that is
 *   lost end with BUTLER_ECLOSED (or their timeout, if sooner); messages in
 *   flight may or may not have been delivered.
 * - A request's deadline travels with it: the remote handler sees it in
 *   butler_time_left_ms(); when the caller gives up (timeout, cancel), the
 *   remote handler sees butler_cancelled() within about 10 ms.
 * - Order: messages from one thread to one remote server instance arrive
 *   in the order sent, as locally.
 *
 * **Security.** Only loopback addresses are used (listened on and dialed)
 * unless BUTLER_BRIDGE_ALLOW_REMOTE_HOSTS is set. tcp:// and ipc:// links
 * need a shared secret: both sides prove they know it by HMAC-SHA256 over
 * fresh nonces of both (the secret never travels), so no process without
 * it can inject messages. tls+tcp:// uses nng's TLS (mbedTLS) with
 * certificate verification required; a secret may be added. Integrity
 * after the handshake is TLS's: a plain tcp:// link is as private as the
 * network it runs on.
 */
#ifndef BUTLER_BRIDGE_H
#define BUTLER_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include <butler/hub.h>

#ifdef __cplusplus
extern "C" {
#endif

/** butler_bridge connects one hub to others. */
typedef struct butler_bridge butler_bridge;

/**
 * butler_bridge_remote says where one server lives: `server` is its spec
 * name ("worker"), or "app.worker" for a server of an imported spec whose
 * name is not unique in the hub; `url` is the listener of the process that
 * exposes it (tcp://127.0.0.1:7411, ipc:///run/app/worker.sock,
 * tls+tcp://host:7411).
 */
typedef struct butler_bridge_remote {
	const char *server; /**< the server's name */
	const char *url;    /**< where it is exposed */
} butler_bridge_remote;

/**
 * BUTLER_BRIDGE_ALLOW_REMOTE_HOSTS in butler_bridge_config.flags lets the
 * bridge listen on and dial addresses that are not loopback (wildcards
 * included). Without it they are refused with BUTLER_EINVAL.
 */
#define BUTLER_BRIDGE_ALLOW_REMOTE_HOSTS 0x1u

/**
 * butler_bridge_config is what a bridge does. Every pointer is read during
 * butler_bridge_new() only (the bridge copies what it keeps). Zero values
 * mean the documented defaults, so `(butler_bridge_config){ 0 }` is an
 * all-local bridge.
 */
typedef struct butler_bridge_config {
	const char *const *listen; /**< URLs to listen on */
	unsigned n_listen;         /**< length of listen */
	const char *const *expose; /**< servers peers may use (names as in
	                              butler_bridge_remote) */
	unsigned n_expose;         /**< length of expose */
	const butler_bridge_remote *remote; /**< servers that live elsewhere */
	unsigned n_remote;                  /**< length of remote */
	const void *secret;        /**< the shared secret, secret_len bytes (at
	                              least 16), or NULL: then secret_file */
	size_t secret_len;         /**< length of secret */
	const char *secret_file;   /**< the secret, read from this file (mode
	                              0600 or stricter; a final newline is
	                              dropped); needed for tcp:// and ipc:// */
	const char *tls_ca_file;   /**< CA certificates (PEM) that verify the
	                              peer: required to dial tls+tcp://; on a
	                              listener, makes client certificates
	                              required */
	const char *tls_cert_file; /**< own certificate chain (PEM): required
	                              to listen on tls+tcp:// */
	const char *tls_key_file;  /**< its private key (PEM) */
	const char *tls_server_name; /**< name the listener's certificate must
	                                carry; default: the URL's host */
	unsigned flags;              /**< BUTLER_BRIDGE_* */
	unsigned reconnect_min_ms;   /**< first redial delay; default 100 */
	unsigned reconnect_max_ms;   /**< doubling up to this; default 5000 */
	unsigned window;             /**< frames a peer may have in flight per
	                                exposed server and link; default 8192 */
	size_t window_bytes;         /**< bytes of them; default 1 MiB */
	size_t max_frame;            /**< largest frame accepted; default
	                                16 MiB + 64 */
	butler_log_fn log;          /**< log messages, as butler_hub_set_log();
	                               NULL: warnings and errors to stderr */
	butler_log_level log_level; /**< with log: the levels passed on */
	void *log_user;             /**< passed to log */
} butler_bridge_config;

/**
 * butler_bridge_new sets up a bridge for `hub`, built from `spec` (the
 * table passed to butler_hub_new()) and not started yet: each server of
 * cfg->remote gets a proxy in place of its handlers (register your own
 * handlers for every server first: the bridge replaces those of the remote
 * ones, and a handler registered after it would replace the proxy), the
 * bridge's own server (if the hub imports bridge.json) gets its handlers,
 * and the listeners are opened, so that an address in use is reported
 * here. Links are dialed and accepted once the hub starts; a listener's
 * bound address is butler_bridge_url(). cfg NULL is an all-local bridge
 * (a hub that imports bridge.json needs one to start).
 *
 * Returns BUTLER_EINVAL for a bad configuration (an unknown or ambiguous
 * server name, a server both remote and exposed, a remote server with an
 * external loop, a server one of whose messages has no wire codec, a
 * server exposed without bridge.json in the hub or whose full policy is
 * "block", an unsupported or non-loopback URL, a missing or too short
 * secret, a secret file others may read, missing TLS files), with the
 * reason logged; BUTLER_ESTATE if the hub has started; BUTLER_ESYS when a
 * listener cannot be opened (logged with nng's reason); BUTLER_ENOMEM. On
 * failure the hub is left as it was. Call it from the thread that creates the
 * hub, before butler_hub_start(). Ownership: the bridge is the caller's
 * (butler_bridge_free()); the hub must outlive it until butler_hub_free().
 */
BUTLER_API int butler_bridge_new(butler_bridge **out /* OUT */,
    butler_hub *hub, const butler_spec *spec, const butler_bridge_config *cfg);

/**
 * butler_bridge_new_file is butler_bridge_new() with the configuration read
 * from the JSON file `path` (cJSON), as `node` of it. Relative file names
 * in it are relative to the file's directory. Two forms:
 *
 *   { "bridge": 1, "listen": [...], "expose": [...],
 *     "remote": { "server": "url", ... }, ...common keys }
 *
 *   { "bridge": 1, "nodes": {
 *       "worker": { "listen": ["tcp://127.0.0.1:7411"],
 *                   "servers": ["hasher"] },
 *       "client": {} }, ...common keys }
 *
 * In the second, one file describes a deployment: the process that is
 * `node` exposes its node's servers on its node's listen URLs, and every
 * server of another node is remote at that node's first listen URL;
 * servers no node names are local everywhere. Common keys: "secret_file",
 * "tls": { "ca", "cert", "key", "server_name" }, "allow_remote_hosts",
 * "reconnect_ms": [min, max], "window", "window_bytes", "max_frame".
 * path NULL is an all-local bridge. node is required with "nodes" and
 * ignored without. Errors as butler_bridge_new(), plus BUTLER_EINVAL for a
 * file that cannot be read or is not such a configuration (logged with
 * the JSON path of the problem, e.g. nodes.worker.listen[0]).
 */
BUTLER_API int butler_bridge_new_file(butler_bridge **out /* OUT */,
    butler_hub *hub, const butler_spec *spec, const char *path,
    const char *node, butler_log_fn log, butler_log_level log_level,
    void *log_user);

/**
 * butler_bridge_free closes every listener and link and frees the bridge.
 * NULL is a no-op. Call it after butler_hub_free() of its hub (queued
 * frames the hub destroys refer to the bridge), from any thread.
 */
BUTLER_API void butler_bridge_free(butler_bridge *bridge);

/**
 * butler_bridge_wait waits until every remote server's link has completed
 * its handshake, up to timeout_ms (-1: no limit). Returns BUTLER_OK,
 * BUTLER_ETIMEDOUT, or BUTLER_ESTATE before butler_hub_start() (nothing
 * dials yet). Any thread but the hub's own.
 */
BUTLER_API int butler_bridge_wait(butler_bridge *bridge, int timeout_ms);

/**
 * butler_bridge_url returns the URL listener `i` (in configuration order)
 * is bound to, with the port the system chose for port 0 ("tcp://
 * 127.0.0.1:0" becomes "tcp://127.0.0.1:40213"), or NULL for a bad index.
 * Valid as long as the bridge. Any thread.
 */
BUTLER_API const char *butler_bridge_url(
    const butler_bridge *bridge, unsigned i);

/**
 * butler_bridge_counters counts what a bridge did. Links are connections:
 * dialed (to remote servers) and accepted (from peers that use exposed
 * ones).
 */
typedef struct butler_bridge_counters {
	uint64_t links_up;     /**< connections past their handshake, now */
	uint64_t connects;     /**< handshakes completed */
	uint64_t refused;      /**< handshakes refused, by either side (secret,
	                          spec hash, servers not exposed, protocol) */
	uint64_t lost;         /**< connections lost after their handshake */
	uint64_t malformed;    /**< connections closed for a malformed frame */
	uint64_t frames_out;   /**< frames written */
	uint64_t frames_in;    /**< frames read */
	uint64_t bytes_out;    /**< bytes written */
	uint64_t bytes_in;     /**< bytes read */
	uint64_t dropped;      /**< messages not delivered: link down, the
	                          receiving hub stopping, a message too large */
	uint64_t closed;       /**< requests ended with BUTLER_ECLOSED by a
	                          link that was down or lost */
	uint64_t credit_waits; /**< times a proxy waited for credit */
	uint64_t full_retries; /**< deliveries retried: target inbox full */
} butler_bridge_counters;

/**
 * butler_bridge_stats fills *out. Counters are read without stopping the
 * bridge. Returns BUTLER_EINVAL for NULL. Any thread.
 */
BUTLER_API int butler_bridge_stats(
    const butler_bridge *bridge, butler_bridge_counters *out /* OUT */);

#ifdef __cplusplus
}
#endif

#endif /* BUTLER_BRIDGE_H */
