/* SPDX-License-Identifier: MIT */
/*
 * servers/bridge/frame.h — the bridge's frames on a byte stream.
 *
 * A link is one nng byte stream (tcp://, ipc://, tls+tcp://) carrying
 * frames, each a little-endian u32 length (the bytes that follow it), a
 * one-byte type, a fixed header of that type and, for messages, the
 * generated wire encoding of the message (butler/wire.h). Frames are
 * written back to back, many per write (batching), and read the same
 * way: butler__frame_next() takes one frame off the front of what has
 * been read, or says that more bytes are needed, or that the bytes are
 * not a frame. Nothing here allocates but the output buffer, and nothing
 * uses nng or the runtime: fuzz/fuzz_frame.c links this file alone.
 *
 * Every valid frame is canonical: its fields re-encode to the very bytes
 * they came from (the fuzz target checks it), so a frame has one meaning.
 */
#ifndef BUTLER_BRIDGE_FRAME_H
#define BUTLER_BRIDGE_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <butler/gen.h>

/* BUTLER__BRIDGE_PROTO is the version of this protocol, in HELLO. */
#define BUTLER__BRIDGE_PROTO 1u
/* BUTLER__NONCE_LEN, BUTLER__MAC_LEN: handshake nonces and HMAC-SHA256. */
#define BUTLER__NONCE_LEN 32u
#define BUTLER__MAC_LEN 32u
/* The largest frame before the handshake completes (a HELLO with 64
 * specs and 1024 targets is about 13 KiB): an unauthenticated peer can
 * make a link hold no more than this. */
#define BUTLER__HANDSHAKE_MAX 65536u
/* Bytes before a message payload: length, type, and the largest header
 * (CALL: target, kind, id, timeout). */
#define BUTLER__FRAME_OVERHEAD 21u
/* The longest ERROR text. */
#define BUTLER__ERROR_MAX 1024u
/* Targets one link may ask for, and specs one HELLO may name. */
#define BUTLER__MAX_TARGETS 1024u
#define BUTLER__MAX_SPECS 64u
/* The longest app name and version string (as butler-gen allows). */
#define BUTLER__NAME_MAX 64u

/*
 * Frame types. The dialer (the side that uses remote servers) sends
 * HELLO, AUTH, SEND, CALL, CANCEL; the listener (the side that exposes
 * them) WELCOME, READY, REPLY, FAIL, PROGRESS, CREDIT; either may send
 * ERROR before closing. A frame a side may not receive is malformed.
 */
enum butler__frame_type {
	BUTLER__F_HELLO = 1,     /* body: see struct butler__hello */
	BUTLER__F_WELCOME = 2,   /* body: see struct butler__hello */
	BUTLER__F_AUTH = 3,      /* mac[32] */
	BUTLER__F_READY = 4,     /* u32 window frames, u32 window bytes,
	                            u32 max_frame */
	BUTLER__F_ERROR = 5,     /* i32 code, text (no NUL) */
	BUTLER__F_SEND = 16,     /* u16 target, u16 kind, payload */
	BUTLER__F_CALL = 17,     /* u16 target, u16 kind, u64 id, i32 timeout
	                            ms (-1: none), payload */
	BUTLER__F_CANCEL = 18,   /* u64 id */
	BUTLER__F_REPLY = 32,    /* u64 id, payload */
	BUTLER__F_FAIL = 33,     /* u64 id, i32 code (not 0) */
	BUTLER__F_PROGRESS = 34, /* u64 id, payload */
	BUTLER__F_CREDIT = 35    /* u16 target, u32 frames, u32 bytes */
};

/* butler__frame is one parsed frame; body points into the input. */
struct butler__frame {
	uint8_t type;
	uint16_t target; /* SEND, CALL, CREDIT */
	uint16_t kind;   /* SEND, CALL: 1-based, as the server's kinds */
	uint64_t id;     /* CALL, CANCEL, REPLY, FAIL, PROGRESS */
	int32_t value;   /* CALL: timeout ms; FAIL, ERROR: the code */
	uint32_t frames; /* CREDIT, READY */
	uint32_t bytes;  /* CREDIT, READY */
	uint32_t max;    /* READY: the largest frame the listener takes */
	const unsigned char *body; /* payload (SEND, CALL, REPLY,
	                              PROGRESS), the text (ERROR), the mac
	                              (AUTH) or the whole body (HELLO,
	                              WELCOME) */
	size_t body_len;
	size_t size; /* the whole frame, its length field included */
};

/* What butler__frame_next() found. */
enum butler__parse {
	BUTLER__PARSE_FRAME = 0, /* a frame: *f, f->size bytes taken */
	BUTLER__PARSE_MORE = 1,  /* a frame has begun: read more bytes */
	BUTLER__PARSE_BAD = 2    /* not a frame: close the link */
};

/*
 * butler__frame_next parses the frame at the start of in[0..len): a frame
 * may not be longer than max_frame bytes (its length field included).
 * Returns BUTLER__PARSE_MORE while the bytes are a valid beginning of a
 * frame (the length field says how many are needed, and that is not over
 * max_frame), BUTLER__PARSE_BAD with *why for anything else (a length over
 * max_frame or too short for its type, an unknown type, a field out of
 * range). Reads nothing outside in[0..len). Any thread.
 */
int butler__frame_next(const unsigned char *in, size_t len, size_t max_frame,
    struct butler__frame *f /* OUT */, const char **why /* OUT */);

/* butler__hello_spec is one spec a HELLO or WELCOME names. */
struct butler__hello_spec {
	char app[BUTLER__NAME_MAX + 1];     /* HELLO only; "" in WELCOME */
	char version[BUTLER__NAME_MAX + 1]; /* "" for none */
	uint64_t hash;                      /* 0 in WELCOME: no such spec */
};

/*
 * butler__hello is the body of HELLO (dialer: its specs and the servers it
 * wants, each a target of the link, in order) and of WELCOME (listener:
 * its hash and version of each spec the HELLO named, in the same order,
 * and its mac; no targets).
 *
 *   "BTLR"  u16 proto  u8 flags  nonce[32]
 *   WELCOME only: mac[32]
 *   u8 n_specs, each:  HELLO: str8 app, u64 hash, str8 version
 *                      WELCOME: u64 hash, str8 version
 *   HELLO only: u16 n_targets, each: u8 spec (index above), u16 server
 *
 * (str8: a u8 length and that many bytes; an app is a C identifier, a
 * version printable ASCII.)
 */
#define BUTLER__HELLO_SECRET 0x1u /* flags: this side has a secret */
struct butler__hello {
	uint16_t proto;
	uint8_t flags;
	unsigned char nonce[BUTLER__NONCE_LEN];
	unsigned char mac[BUTLER__MAC_LEN]; /* WELCOME */
	unsigned n_specs;
	struct butler__hello_spec specs[BUTLER__MAX_SPECS];
	unsigned n_targets;
	struct {
		uint8_t spec;
		uint16_t server;
	} targets[BUTLER__MAX_TARGETS];
};

/* What butler__hello_parse() found. */
enum butler__hello_result {
	BUTLER__HELLO_OK = 0,
	BUTLER__HELLO_PROTO = 1, /* magic right, proto differs: h->proto */
	BUTLER__HELLO_BAD = 2    /* malformed: *why */
};

/*
 * butler__hello_parse parses the body of a HELLO (welcome false) or a
 * WELCOME (welcome true) into *h. A body whose magic is right and whose
 * protocol differs gives BUTLER__HELLO_PROTO with h->proto set and nothing
 * else read, so that peers of different versions can say so. Any thread.
 */
int butler__hello_parse(const unsigned char *body, size_t len, bool welcome,
    struct butler__hello *h /* OUT */, const char **why /* OUT */);

/* butler__obuf is a growable output buffer of frames. */
struct butler__obuf {
	unsigned char *p;
	size_t len, cap;
};

/* butler__obuf_free frees ob's memory and empties it. */
void butler__obuf_free(struct butler__obuf *ob);

/*
 * butler__obuf_room returns n bytes at the end of ob (len grows by n), or
 * NULL when memory runs out (ob unchanged).
 */
unsigned char *butler__obuf_room(struct butler__obuf *ob, size_t n);

/*
 * The butler__put_* functions append one frame to ob and return
 * BUTLER_OK, BUTLER_ENOMEM (ob unchanged), or, for those with a message,
 * BUTLER_EINVAL when the message cannot be encoded (no codec, too large
 * for the format) or the frame would be longer than max_frame (ob
 * unchanged). `msg` is only read. *size (may be NULL) receives the
 * frame's size.
 */
int butler__put_send(struct butler__obuf *ob, size_t max_frame,
    uint16_t target, uint16_t kind, const butler_msg_desc *desc,
    const void *msg, size_t *size /* OUT */);
int butler__put_call(struct butler__obuf *ob, size_t max_frame,
    uint16_t target, uint16_t kind, uint64_t id, int32_t timeout_ms,
    const butler_msg_desc *desc, const void *msg, size_t *size /* OUT */);
int butler__put_answer(struct butler__obuf *ob, size_t max_frame, uint8_t type,
    uint64_t id, const butler_msg_desc *desc, const void *msg);
int butler__put_id(struct butler__obuf *ob, uint8_t type, uint64_t id);
int butler__put_fail(struct butler__obuf *ob, uint64_t id, int32_t code);
int butler__put_credit(
    struct butler__obuf *ob, uint16_t target, uint32_t frames, uint32_t bytes);
int butler__put_ready(
    struct butler__obuf *ob, uint32_t frames, uint32_t bytes, uint32_t max);
int butler__put_auth(
    struct butler__obuf *ob, const unsigned char mac[BUTLER__MAC_LEN]);
int butler__put_error(struct butler__obuf *ob, int32_t code, const char *text);
int butler__put_hello(
    struct butler__obuf *ob, bool welcome, const struct butler__hello *h);

/*
 * butler__put_frame appends frame f again, as butler__frame_next() parsed
 * it (the fuzz target's check that frames are canonical). HELLO, WELCOME,
 * AUTH and ERROR bodies and message payloads are copied as they are.
 */
int butler__put_frame(struct butler__obuf *ob, const struct butler__frame *f);

#endif /* BUTLER_BRIDGE_FRAME_H */
