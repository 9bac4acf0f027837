/* SPDX-License-Identifier: MIT */
/*
 * servers/bridge/frame.c — frames: the parser and the writers.
 *
 * The parser reads with butler/wire.h's bounds-checked reader: every field
 * is taken only when its bytes are there, and a frame's fields must fill
 * it exactly (fixed frames) or leave the rest to the payload (message
 * frames), so a frame has one meaning and re-encodes to its own bytes.
 */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

#include <butler/error.h>
#include <butler/wire.h>

static const unsigned char magic[4] = { 'B', 'T', 'L', 'R' };

/* Fixed header bytes after the type, and whether a payload follows. */
static bool
frame_shape(uint8_t type, size_t *fixed, bool *open)
{
	*open = false;
	switch (type) {
	case BUTLER__F_HELLO:
	case BUTLER__F_WELCOME:
		*fixed = 0;
		*open = true;
		return true;
	case BUTLER__F_AUTH:
		*fixed = BUTLER__MAC_LEN;
		return true;
	case BUTLER__F_READY:
		*fixed = 12;
		return true;
	case BUTLER__F_ERROR:
		*fixed = 4;
		*open = true;
		return true;
	case BUTLER__F_SEND:
		*fixed = 4;
		*open = true;
		return true;
	case BUTLER__F_CALL:
		*fixed = 16;
		*open = true;
		return true;
	case BUTLER__F_CANCEL:
		*fixed = 8;
		return true;
	case BUTLER__F_REPLY:
	case BUTLER__F_PROGRESS:
		*fixed = 8;
		*open = true;
		return true;
	case BUTLER__F_FAIL:
		*fixed = 12;
		return true;
	case BUTLER__F_CREDIT:
		*fixed = 10;
		return true;
	default:
		return false;
	}
}

int
butler__frame_next(const unsigned char *in, size_t len, size_t max_frame,
    struct butler__frame *f, const char **why)
{
	butler_wire_reader r;
	uint32_t n;
	size_t fixed, i;
	bool open;

	memset(f, 0, sizeof *f);
	*why = NULL;
	/* The length field: as soon as its bytes are there it is checked,
	 * so that a hostile length is refused before anything waits for it. */
	if (len < 4)
		return BUTLER__PARSE_MORE;
	butler_wire_reader_init(&r, in, 4);
	n = butler_wire_get_u32(&r);
	if (n == 0) {
		*why = "empty frame";
		return BUTLER__PARSE_BAD;
	}
	if (max_frame < 5 || (size_t)n > max_frame - 4) {
		*why = "frame longer than the largest allowed";
		return BUTLER__PARSE_BAD;
	}
	if (len < 5)
		return BUTLER__PARSE_MORE;
	f->type = in[4];
	if (!frame_shape(f->type, &fixed, &open)) {
		*why = "unknown frame type";
		return BUTLER__PARSE_BAD;
	}
	if ((size_t)n - 1 < fixed || (!open && (size_t)n - 1 != fixed)) {
		*why = "frame length does not fit its type";
		return BUTLER__PARSE_BAD;
	}
	if (len - 4 < (size_t)n)
		return BUTLER__PARSE_MORE;

	f->size = 4 + (size_t)n;
	butler_wire_reader_init(&r, in + 5, (size_t)n - 1);
	switch ((enum butler__frame_type)f->type) {
	case BUTLER__F_HELLO:
	case BUTLER__F_WELCOME:
	case BUTLER__F_AUTH:
		break;
	case BUTLER__F_READY:
		f->frames = butler_wire_get_u32(&r);
		f->bytes = butler_wire_get_u32(&r);
		f->max = butler_wire_get_u32(&r);
		break;
	case BUTLER__F_ERROR:
		f->value = butler_wire_get_i32(&r);
		break;
	case BUTLER__F_SEND:
		f->target = butler_wire_get_u16(&r);
		f->kind = butler_wire_get_u16(&r);
		break;
	case BUTLER__F_CALL:
		f->target = butler_wire_get_u16(&r);
		f->kind = butler_wire_get_u16(&r);
		f->id = butler_wire_get_u64(&r);
		f->value = butler_wire_get_i32(&r);
		break;
	case BUTLER__F_CANCEL:
	case BUTLER__F_REPLY:
	case BUTLER__F_PROGRESS:
		f->id = butler_wire_get_u64(&r);
		break;
	case BUTLER__F_FAIL:
		f->id = butler_wire_get_u64(&r);
		f->value = butler_wire_get_i32(&r);
		break;
	case BUTLER__F_CREDIT:
		f->target = butler_wire_get_u16(&r);
		f->frames = butler_wire_get_u32(&r);
		f->bytes = butler_wire_get_u32(&r);
		break;
	}
	if (r.err != BUTLER_OK) {
		*why = "truncated frame header";
		return BUTLER__PARSE_BAD;
	}
	f->body = r.p;
	f->body_len = r.left;
	switch ((enum butler__frame_type)f->type) {
	case BUTLER__F_SEND:
	case BUTLER__F_CALL:
		if (f->kind == 0) {
			*why = "message kind 0";
			return BUTLER__PARSE_BAD;
		}
		if (f->type == BUTLER__F_CALL && f->value < -1) {
			*why = "negative timeout";
			return BUTLER__PARSE_BAD;
		}
		break;
	case BUTLER__F_FAIL:
		if (f->value == 0) {
			*why = "failure code 0";
			return BUTLER__PARSE_BAD;
		}
		break;
	case BUTLER__F_ERROR:
		if (f->body_len > BUTLER__ERROR_MAX) {
			*why = "error text too long";
			return BUTLER__PARSE_BAD;
		}
		for (i = 0; i < f->body_len; i++)
			if (f->body[i] < 0x20 || f->body[i] > 0x7e) {
				*why = "error text not printable ASCII";
				return BUTLER__PARSE_BAD;
			}
		break;
	case BUTLER__F_HELLO:
	case BUTLER__F_WELCOME:
	case BUTLER__F_AUTH:
	case BUTLER__F_READY:
	case BUTLER__F_CANCEL:
	case BUTLER__F_REPLY:
	case BUTLER__F_PROGRESS:
	case BUTLER__F_CREDIT:
		break;
	}
	return BUTLER__PARSE_FRAME;
}

/* get_str8 reads a str8 into out (NUL-terminated); false if malformed. */
static bool
get_str8(butler_wire_reader *r, char *out, bool ident)
{
	uint8_t n = butler_wire_get_u8(r);
	const unsigned char *p;

	out[0] = '\0';
	if (r->err != BUTLER_OK || n > BUTLER__NAME_MAX)
		return false;
	if (n == 0)
		return !ident;
	if ((p = butler_wire_take(r, n)) == NULL)
		return false;
	for (unsigned i = 0; i < n; i++) {
		unsigned char c = p[i];

		if (ident ? !(c == '_' || (c >= 'a' && c <= 'z')
		        || (c >= 'A' && c <= 'Z')
		        || (i > 0 && c >= '0' && c <= '9'))
		          : (c < 0x21 || c > 0x7e))
			return false;
	}
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

int
butler__hello_parse(const unsigned char *body, size_t len, bool welcome,
    struct butler__hello *h, const char **why)
{
	butler_wire_reader r;
	const unsigned char *p;

	memset(h, 0, sizeof *h);
	*why = NULL;
	butler_wire_reader_init(&r, body, len);
	p = butler_wire_take(&r, 4);
	if (p == NULL || memcmp(p, magic, 4) != 0) {
		*why = "not a butler bridge (no BTLR magic)";
		return BUTLER__HELLO_BAD;
	}
	h->proto = butler_wire_get_u16(&r);
	if (r.err != BUTLER_OK) {
		*why = "truncated handshake";
		return BUTLER__HELLO_BAD;
	}
	if (h->proto != BUTLER__BRIDGE_PROTO)
		return BUTLER__HELLO_PROTO;
	h->flags = butler_wire_get_u8(&r);
	if ((p = butler_wire_take(&r, BUTLER__NONCE_LEN)) != NULL)
		memcpy(h->nonce, p, BUTLER__NONCE_LEN);
	if (welcome && (p = butler_wire_take(&r, BUTLER__MAC_LEN)) != NULL)
		memcpy(h->mac, p, BUTLER__MAC_LEN);
	h->n_specs = butler_wire_get_u8(&r);
	if (r.err != BUTLER_OK || (h->flags & ~BUTLER__HELLO_SECRET) != 0
	    || h->n_specs > BUTLER__MAX_SPECS) {
		*why = "malformed handshake";
		return BUTLER__HELLO_BAD;
	}
	for (unsigned i = 0; i < h->n_specs; i++) {
		struct butler__hello_spec *s = &h->specs[i];

		if (!welcome && !get_str8(&r, s->app, true))
			goto bad_spec;
		s->hash = butler_wire_get_u64(&r);
		if (!get_str8(&r, s->version, false))
			goto bad_spec;
		/* One entry per spec: an app named twice is two meanings. */
		for (unsigned j = 0; !welcome && j < i; j++)
			if (strcmp(h->specs[j].app, s->app) == 0)
				goto bad_spec;
	}
	if (!welcome) {
		h->n_targets = butler_wire_get_u16(&r);
		if (r.err != BUTLER_OK || h->n_targets > BUTLER__MAX_TARGETS) {
			*why = "malformed handshake targets";
			return BUTLER__HELLO_BAD;
		}
		for (unsigned i = 0; i < h->n_targets; i++) {
			h->targets[i].spec = butler_wire_get_u8(&r);
			h->targets[i].server = butler_wire_get_u16(&r);
			if (r.err == BUTLER_OK
			    && h->targets[i].spec >= h->n_specs) {
				*why = "handshake target of an unnamed spec";
				return BUTLER__HELLO_BAD;
			}
		}
	}
	if (r.err != BUTLER_OK || r.left != 0) {
		*why = "malformed handshake";
		return BUTLER__HELLO_BAD;
	}
	return BUTLER__HELLO_OK;

bad_spec:
	*why = "malformed spec in handshake";
	return BUTLER__HELLO_BAD;
}

/* ---- writing ------------------------------------------------------------ */

void
butler__obuf_free(struct butler__obuf *ob)
{
	free(ob->p);
	ob->p = NULL;
	ob->len = ob->cap = 0;
}

unsigned char *
butler__obuf_room(struct butler__obuf *ob, size_t n)
{
	unsigned char *p;

	if (n > ob->cap - ob->len) {
		size_t cap = ob->cap ? ob->cap : 4096;

		while (cap - ob->len < n) {
			if (cap > SIZE_MAX / 2)
				return NULL;
			cap *= 2;
		}
		p = realloc(ob->p, cap);
		if (p == NULL)
			return NULL;
		ob->p = p;
		ob->cap = cap;
	}
	p = ob->p + ob->len;
	ob->len += n;
	return p;
}

/*
 * begin reserves a frame of `header` bytes (length and type included) and
 * `payload` more, writes its length and type, and returns a writer over the
 * header's fields after the type, or NULL (ENOMEM; ob unchanged).
 */
static unsigned char *
begin(struct butler__obuf *ob, uint8_t type, size_t header, size_t payload,
    butler_wire_writer *w)
{
	unsigned char *p = butler__obuf_room(ob, header + payload);

	if (p == NULL)
		return NULL;
	butler_wire_writer_init(w, p, header + payload);
	butler_wire_put_u32(w, (uint32_t)(header + payload - 4));
	butler_wire_put_u8(w, type);
	return p;
}

/* message_frame appends a frame of `header` bytes and the payload msg. */
static int
message_frame(struct butler__obuf *ob, size_t max_frame, uint8_t type,
    size_t header, const butler_msg_desc *desc, const void *msg,
    butler_wire_writer *w, size_t *size)
{
	size_t n = desc->wire_size != NULL ? desc->wire_size(msg) : SIZE_MAX;
	unsigned char *p;

	if (n == SIZE_MAX || n > max_frame || header + n > max_frame)
		return BUTLER_EINVAL;
	p = begin(ob, type, header, n, w);
	if (p == NULL)
		return BUTLER_ENOMEM;
	if (size != NULL)
		*size = header + n;
	return BUTLER_OK;
}

/* finish_message encodes msg after the header w has written. */
static int
finish_message(struct butler__obuf *ob, size_t start,
    const butler_msg_desc *desc, const void *msg, butler_wire_writer *w)
{
	size_t used = 0;
	int rv = w->err;

	if (rv == BUTLER_OK)
		rv = desc->encode(msg, w->p, w->left, &used);
	if (rv == BUTLER_OK && used != w->left)
		rv = BUTLER_EINVAL;
	if (rv != BUTLER_OK)
		ob->len = start;
	return rv;
}

int
butler__put_send(struct butler__obuf *ob, size_t max_frame, uint16_t target,
    uint16_t kind, const butler_msg_desc *desc, const void *msg, size_t *size)
{
	size_t start = ob->len;
	butler_wire_writer w;
	int rv = message_frame(
	    ob, max_frame, BUTLER__F_SEND, 9, desc, msg, &w, size);

	if (rv != BUTLER_OK)
		return rv;
	butler_wire_put_u16(&w, target);
	butler_wire_put_u16(&w, kind);
	return finish_message(ob, start, desc, msg, &w);
}

int
butler__put_call(struct butler__obuf *ob, size_t max_frame, uint16_t target,
    uint16_t kind, uint64_t id, int32_t timeout_ms,
    const butler_msg_desc *desc, const void *msg, size_t *size)
{
	size_t start = ob->len;
	butler_wire_writer w;
	int rv = message_frame(
	    ob, max_frame, BUTLER__F_CALL, 21, desc, msg, &w, size);

	if (rv != BUTLER_OK)
		return rv;
	butler_wire_put_u16(&w, target);
	butler_wire_put_u16(&w, kind);
	butler_wire_put_u64(&w, id);
	butler_wire_put_i32(&w, timeout_ms);
	return finish_message(ob, start, desc, msg, &w);
}

int
butler__put_answer(struct butler__obuf *ob, size_t max_frame, uint8_t type,
    uint64_t id, const butler_msg_desc *desc, const void *msg)
{
	size_t start = ob->len;
	butler_wire_writer w;
	int rv = message_frame(ob, max_frame, type, 13, desc, msg, &w, NULL);

	if (rv != BUTLER_OK)
		return rv;
	butler_wire_put_u64(&w, id);
	return finish_message(ob, start, desc, msg, &w);
}

int
butler__put_id(struct butler__obuf *ob, uint8_t type, uint64_t id)
{
	butler_wire_writer w;

	if (begin(ob, type, 13, 0, &w) == NULL)
		return BUTLER_ENOMEM;
	butler_wire_put_u64(&w, id);
	return BUTLER_OK;
}

int
butler__put_fail(struct butler__obuf *ob, uint64_t id, int32_t code)
{
	butler_wire_writer w;

	if (begin(ob, BUTLER__F_FAIL, 17, 0, &w) == NULL)
		return BUTLER_ENOMEM;
	butler_wire_put_u64(&w, id);
	butler_wire_put_i32(&w, code);
	return BUTLER_OK;
}

int
butler__put_credit(
    struct butler__obuf *ob, uint16_t target, uint32_t frames, uint32_t bytes)
{
	butler_wire_writer w;

	if (begin(ob, BUTLER__F_CREDIT, 15, 0, &w) == NULL)
		return BUTLER_ENOMEM;
	butler_wire_put_u16(&w, target);
	butler_wire_put_u32(&w, frames);
	butler_wire_put_u32(&w, bytes);
	return BUTLER_OK;
}

int
butler__put_ready(
    struct butler__obuf *ob, uint32_t frames, uint32_t bytes, uint32_t max)
{
	butler_wire_writer w;

	if (begin(ob, BUTLER__F_READY, 17, 0, &w) == NULL)
		return BUTLER_ENOMEM;
	butler_wire_put_u32(&w, frames);
	butler_wire_put_u32(&w, bytes);
	butler_wire_put_u32(&w, max);
	return BUTLER_OK;
}

int
butler__put_auth(
    struct butler__obuf *ob, const unsigned char mac[BUTLER__MAC_LEN])
{
	butler_wire_writer w;
	unsigned char *p;

	if (begin(ob, BUTLER__F_AUTH, 5, BUTLER__MAC_LEN, &w) == NULL)
		return BUTLER_ENOMEM;
	p = butler_wire_room(&w, BUTLER__MAC_LEN);
	memcpy(p, mac, BUTLER__MAC_LEN);
	return BUTLER_OK;
}

int
butler__put_error(struct butler__obuf *ob, int32_t code, const char *text)
{
	size_t n = 0;
	butler_wire_writer w;
	unsigned char *p;

	/* Printable ASCII only, as the parser wants; cut to the limit. */
	while (text[n] != '\0' && n < BUTLER__ERROR_MAX)
		n++;
	if (begin(ob, BUTLER__F_ERROR, 9, n, &w) == NULL)
		return BUTLER_ENOMEM;
	butler_wire_put_i32(&w, code);
	if (n > 0) {
		p = butler_wire_room(&w, n);
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)text[i];

			p[i] = c >= 0x20 && c <= 0x7e ? c : '?';
		}
	}
	return BUTLER_OK;
}

static void
put_str8(butler_wire_writer *w, const char *s)
{
	size_t n = strlen(s);
	unsigned char *p;

	if (n > BUTLER__NAME_MAX)
		n = BUTLER__NAME_MAX;
	butler_wire_put_u8(w, (uint8_t)n);
	if (n > 0 && (p = butler_wire_room(w, n)) != NULL)
		memcpy(p, s, n);
}

int
butler__put_hello(
    struct butler__obuf *ob, bool welcome, const struct butler__hello *h)
{
	size_t n = 4 + 2 + 1 + BUTLER__NONCE_LEN + 1, start = ob->len;
	butler_wire_writer w;
	unsigned char *p;

	if (welcome)
		n += BUTLER__MAC_LEN;
	for (unsigned i = 0; i < h->n_specs; i++) {
		size_t app = strlen(h->specs[i].app);
		size_t ver = strlen(h->specs[i].version);

		n += (welcome ? 0 : 1 + (app > 64 ? 64 : app)) + 8 + 1
		    + (ver > 64 ? 64 : ver);
	}
	if (!welcome)
		n += 2 + 3 * (size_t)h->n_targets;
	if (begin(ob, welcome ? BUTLER__F_WELCOME : BUTLER__F_HELLO, 5, n, &w)
	    == NULL)
		return BUTLER_ENOMEM;
	p = butler_wire_room(&w, 4);
	memcpy(p, magic, 4);
	butler_wire_put_u16(&w, h->proto);
	butler_wire_put_u8(&w, h->flags);
	p = butler_wire_room(&w, BUTLER__NONCE_LEN);
	memcpy(p, h->nonce, BUTLER__NONCE_LEN);
	if (welcome) {
		p = butler_wire_room(&w, BUTLER__MAC_LEN);
		memcpy(p, h->mac, BUTLER__MAC_LEN);
	}
	butler_wire_put_u8(&w, (uint8_t)h->n_specs);
	for (unsigned i = 0; i < h->n_specs; i++) {
		if (!welcome)
			put_str8(&w, h->specs[i].app);
		butler_wire_put_u64(&w, h->specs[i].hash);
		put_str8(&w, h->specs[i].version);
	}
	if (!welcome) {
		butler_wire_put_u16(&w, (uint16_t)h->n_targets);
		for (unsigned i = 0; i < h->n_targets; i++) {
			butler_wire_put_u8(&w, h->targets[i].spec);
			butler_wire_put_u16(&w, h->targets[i].server);
		}
	}
	if (w.err != BUTLER_OK || w.left != 0) {
		ob->len = start;
		return BUTLER_EINVAL;
	}
	return BUTLER_OK;
}

int
butler__put_frame(struct butler__obuf *ob, const struct butler__frame *f)
{
	size_t fixed = 0, start = ob->len;
	butler_wire_writer w;
	unsigned char *p;
	bool open;

	if (!frame_shape(f->type, &fixed, &open))
		return BUTLER_EINVAL;
	/* AUTH's fixed part is its mac, which f->body points to. */
	if (f->type == BUTLER__F_AUTH)
		fixed = 0;
	if (begin(ob, f->type, 5 + fixed, f->body_len, &w) == NULL)
		return BUTLER_ENOMEM;
	switch ((enum butler__frame_type)f->type) {
	case BUTLER__F_HELLO:
	case BUTLER__F_WELCOME:
	case BUTLER__F_AUTH:
		break;
	case BUTLER__F_READY:
		butler_wire_put_u32(&w, f->frames);
		butler_wire_put_u32(&w, f->bytes);
		butler_wire_put_u32(&w, f->max);
		break;
	case BUTLER__F_ERROR:
		butler_wire_put_i32(&w, f->value);
		break;
	case BUTLER__F_SEND:
		butler_wire_put_u16(&w, f->target);
		butler_wire_put_u16(&w, f->kind);
		break;
	case BUTLER__F_CALL:
		butler_wire_put_u16(&w, f->target);
		butler_wire_put_u16(&w, f->kind);
		butler_wire_put_u64(&w, f->id);
		butler_wire_put_i32(&w, f->value);
		break;
	case BUTLER__F_CANCEL:
	case BUTLER__F_REPLY:
	case BUTLER__F_PROGRESS:
		butler_wire_put_u64(&w, f->id);
		break;
	case BUTLER__F_FAIL:
		butler_wire_put_u64(&w, f->id);
		butler_wire_put_i32(&w, f->value);
		break;
	case BUTLER__F_CREDIT:
		butler_wire_put_u16(&w, f->target);
		butler_wire_put_u32(&w, f->frames);
		butler_wire_put_u32(&w, f->bytes);
		break;
	}
	if (f->body_len > 0 && (p = butler_wire_room(&w, f->body_len)) != NULL)
		memcpy(p, f->body, f->body_len);
	if (w.err != BUTLER_OK || w.left != 0) {
		ob->len = start;
		return BUTLER_EINVAL;
	}
	return BUTLER_OK;
}
