/* SPDX-License-Identifier: MIT */
/*
 * codegen/emit_wire.c — the wire format of generated messages: each
 * encodable message's wire_size, encode and decode functions (header
 * prototypes and source), and the spec hash. The format is the one
 * codegen/SPEC.md ("Wire format") and include/butler/wire.h describe; the
 * generated code is a list of calls to wire.h's reader and writer, one per
 * field, in declaration order.
 */
#include "emit.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <butler/wire.h>

/* Bytes each fixed-width type takes on the wire (0: variable or nested). */
static const unsigned char wire_bytes[] = {
	[FT_BOOL] = 1,
	[FT_I8] = 1,
	[FT_I16] = 2,
	[FT_I32] = 4,
	[FT_I64] = 8,
	[FT_U8] = 1,
	[FT_U16] = 2,
	[FT_U32] = 4,
	[FT_U64] = 8,
	[FT_F32] = 4,
	[FT_F64] = 8,
	[FT_STRING] = 0,
	[FT_BYTES] = 0,
	[FT_BUF] = 0,
	[FT_PTR] = 0,
	[FT_MSG] = 0,
};

/* type_word names a field's type as the spec and the hash text do. */
static const char *
type_word(const struct spec *s, const struct field *f)
{
	static const char *const words[] = {
		[FT_BOOL] = "bool",
		[FT_I8] = "i8",
		[FT_I16] = "i16",
		[FT_I32] = "i32",
		[FT_I64] = "i64",
		[FT_U8] = "u8",
		[FT_U16] = "u16",
		[FT_U32] = "u32",
		[FT_U64] = "u64",
		[FT_F32] = "f32",
		[FT_F64] = "f64",
		[FT_STRING] = "string",
		[FT_BYTES] = "bytes",
		[FT_BUF] = "buf",
		[FT_PTR] = "ptr",
		[FT_MSG] = NULL,
	};

	return f->type == FT_MSG ? s->msgs[f->msg].name : words[f->type];
}

void
butler__gen_wire_text(const struct spec *s, struct sbuf *out)
{
	/* One line per fact, names being identifiers (no blanks): the text
	 * parses back unambiguously, and another implementation can build it
	 * from the spec alone. */
	butler__gen_sb_printf(
	    out, "butler-wire %d\napp %s\n", BUTLER_WIRE_VERSION, s->app);
	for (unsigned i = 0; i < s->n_msgs; i++) {
		const struct message *m = &s->msgs[i];

		butler__gen_sb_printf(out, "message %s\n", m->name);
		for (unsigned k = 0; k < m->n_fields; k++)
			butler__gen_sb_printf(out, "field %s %s\n",
			    m->fields[k].name, type_word(s, &m->fields[k]));
		if (m->reply >= 0)
			butler__gen_sb_printf(
			    out, "reply %s\n", s->msgs[m->reply].name);
		if (m->progress >= 0)
			butler__gen_sb_printf(
			    out, "progress %s\n", s->msgs[m->progress].name);
	}
	for (unsigned i = 0; i < s->n_srvs; i++) {
		const struct server *sv = &s->srvs[i];

		butler__gen_sb_printf(out, "server %s\n", sv->name);
		for (unsigned k = 0; k < sv->n_accepts; k++)
			butler__gen_sb_printf(
			    out, "accepts %s\n", s->msgs[sv->accepts[k]].name);
	}
}

uint64_t
butler__gen_wire_hash(const struct spec *s, bool *oom)
{
	struct sbuf text = { 0 };
	uint64_t h = UINT64_C(0xcbf29ce484222325); /* FNV-1a 64 basis */

	butler__gen_wire_text(s, &text);
	for (size_t i = 0; i < text.len; i++) {
		h ^= (unsigned char)text.data[i];
		h *= UINT64_C(0x100000001b3); /* FNV 64 prime */
	}
	*oom |= text.oom;
	butler__gen_sb_release(&text);
	return h;
}

void
butler__gen_emit_wire_hash(const struct emit_in *in, struct sbuf *out)
{
	const struct spec *s = in->spec;
	uint64_t h = butler__gen_wire_hash(s, &out->oom);

	butler__gen_doc(out,
	    "%s_WIRE_HASH identifies app '%s' on the wire: FNV-1a 64 of the "
	    "canonical text of its messages, fields, requests and servers "
	    "(codegen/SPEC.md, \"Wire format\"). Two peers whose hashes "
	    "differ "
	    "must not exchange messages. Also in %s_spec.wire_hash.",
	    s->app_upper, s->app, s->app);
	butler__gen_sb_printf(out,
	    "#define %s_WIRE_HASH UINT64_C(0x%016" PRIx64 ")\n\n",
	    s->app_upper, h);
}

/* why_not returns the field of `m` that keeps it off the wire: a ptr, or
 * a message that holds one. */
static const struct field *
why_not(const struct spec *s, const struct message *m)
{
	for (unsigned k = 0; k < m->n_fields; k++) {
		const struct field *f = &m->fields[k];

		if (f->type == FT_PTR
		    || (f->type == FT_MSG && !s->msgs[f->msg].wire))
			return f;
	}
	return NULL;
}

void
butler__gen_emit_wire_decls(
    const struct emit_in *in, const struct message *m, struct sbuf *out)
{
	const struct spec *s = in->spec;
	const char *a = s->app, *M = m->name;
	char name[GEN_NAME_MAX], params[2 * GEN_NAME_MAX];

	if (!m->wire) {
		const struct field *f = why_not(s, m);

		butler__gen_doc(out,
		    "'%s' cannot travel over the wire (its field '%s' %s a "
		    "'ptr'), so it has no wire_size, encode or decode, and no "
		    "remote server may reach it.",
		    M, f != NULL ? f->name : "?",
		    f != NULL && f->type == FT_MSG ? "holds" : "is");
		butler__gen_sb_puts(out, "\n");
		return;
	}
	butler__gen_doc(out,
	    "%s_%s_wire_size returns the size of *msg in the wire format "
	    "(butler/wire.h), or SIZE_MAX if it holds what the format cannot "
	    "carry; %s_%s_encode writes it to out[0..cap) and its size to "
	    "*used (may be NULL), or fails with BUTLER_EINVAL (cannot, or cap "
	    "too small); %s_%s_decode reads a fresh '%s' into *out, which you "
	    "then own (%s_%s_destroy()), taking all len bytes if used is "
	    "NULL, "
	    "or fails (BUTLER_EWIRE: malformed input) leaving *out zeroed. "
	    "Any "
	    "thread.",
	    a, M, a, M, a, M, M, a, M);
	snprintf(name, sizeof name, "%s_%s_wire_size", a, M);
	snprintf(params, sizeof params, "const struct %s_%s *msg", a, M);
	butler__gen_emit_sig(out, false, "size_t", name, params);
	snprintf(name, sizeof name, "%s_%s_encode", a, M);
	snprintf(params, sizeof params,
	    "const struct %s_%s *msg, unsigned char *out, size_t cap, size_t "
	    "*used",
	    a, M);
	butler__gen_emit_sig(out, false, "int", name, params);
	snprintf(name, sizeof name, "%s_%s_decode", a, M);
	snprintf(params, sizeof params,
	    "struct %s_%s *out, const unsigned char *in, size_t len, size_t "
	    "*used",
	    a, M);
	butler__gen_emit_sig(out, false, "int", name, params);
	butler__gen_sb_puts(out, "\n");
}

/* put_bt emits app_M_put_bt_(): one put per field, in order. */
static void
put_bt(const struct emit_in *in, const struct message *m, struct sbuf *out)
{
	const struct spec *s = in->spec;
	char head[GEN_NAME_MAX + 32];

	butler__gen_sb_printf(out,
	    "static void\n%s_%s_put_bt_(butler_wire_writer *w, const struct "
	    "%s_%s *msg)\n{\n",
	    s->app, m->name, s->app, m->name);
	if (m->n_fields == 0)
		butler__gen_sb_puts(
		    out, "\t(void)w; /* no fields */\n\t(void)msg;\n");
	for (unsigned k = 0; k < m->n_fields; k++) {
		const struct field *f = &m->fields[k];
		const char *n = f->name;

		switch (f->type) {
		case FT_STRING:
			butler__gen_call(
			    out, "butler_wire_put_string(", "w, msg->%s", n);
			break;
		case FT_BYTES:
		case FT_BUF:
			butler__gen_call(out, "butler_wire_put_blob(",
			    "w, msg->%s.data, msg->%s.len", n, n);
			break;
		case FT_MSG:
			snprintf(head, sizeof head, "%s_%s_put_bt_(", s->app,
			    s->msgs[f->msg].name);
			butler__gen_call(out, head, "w, &msg->%s", n);
			break;
		case FT_PTR: /* not encodable: never reached */
			break;
		case FT_BOOL:
		case FT_I8:
		case FT_I16:
		case FT_I32:
		case FT_I64:
		case FT_U8:
		case FT_U16:
		case FT_U32:
		case FT_U64:
		case FT_F32:
		case FT_F64:
			snprintf(head, sizeof head, "butler_wire_put_%s(",
			    type_word(s, f));
			butler__gen_call(out, head, "w, msg->%s", n);
			break;
		}
	}
	butler__gen_sb_puts(out, "}\n\n");
}

/* get_bt emits app_M_get_bt_(): one get per field, in order. A get after
 * an error returns 0 or NULL without reading, so the fields after a
 * failure stay zero and the destructor frees exactly what was read. */
static void
get_bt(const struct emit_in *in, const struct message *m, struct sbuf *out)
{
	const struct spec *s = in->spec;
	char head[2 * GEN_NAME_MAX + 32];

	butler__gen_sb_printf(out,
	    "static void\n%s_%s_get_bt_(butler_wire_reader *r, struct %s_%s "
	    "*msg)\n{\n",
	    s->app, m->name, s->app, m->name);
	if (m->n_fields == 0)
		butler__gen_sb_puts(
		    out, "\t(void)r; /* no fields */\n\t(void)msg;\n");
	for (unsigned k = 0; k < m->n_fields; k++) {
		const struct field *f = &m->fields[k];
		const char *n = f->name;

		switch (f->type) {
		case FT_STRING:
			snprintf(head, sizeof head,
			    "msg->%s = butler_wire_get_string(", n);
			butler__gen_call(out, head, "r");
			break;
		case FT_BYTES:
		case FT_BUF:
			snprintf(head, sizeof head,
			    "msg->%s.data = butler_wire_get_blob(", n);
			butler__gen_call(out, head, "r, &msg->%s.len", n);
			if (f->type == FT_BUF)
				butler__gen_sb_printf(out,
				    "\tif (msg->%s.data != NULL)\n"
				    "\t\tmsg->%s.free_fn = %s_buf_free_bt_;\n",
				    n, n, s->app);
			break;
		case FT_MSG:
			snprintf(head, sizeof head, "%s_%s_get_bt_(", s->app,
			    s->msgs[f->msg].name);
			butler__gen_call(out, head, "r, &msg->%s", n);
			break;
		case FT_PTR: /* not encodable: never reached */
			break;
		case FT_BOOL:
		case FT_I8:
		case FT_I16:
		case FT_I32:
		case FT_I64:
		case FT_U8:
		case FT_U16:
		case FT_U32:
		case FT_U64:
		case FT_F32:
		case FT_F64:
			snprintf(head, sizeof head,
			    "msg->%s = butler_wire_get_%s(", n,
			    type_word(s, f));
			butler__gen_call(out, head, "r");
			break;
		}
	}
	butler__gen_sb_puts(out, "}\n\n");
}

/* wire_size emits app_M_wire_size(): the fixed-width fields summed by
 * butler-gen, the others added at run time. */
static void
wire_size(const struct emit_in *in, const struct message *m, struct sbuf *out)
{
	const struct spec *s = in->spec;
	char name[GEN_NAME_MAX], params[GEN_NAME_MAX + 32];
	unsigned long fixed = 0;
	bool variable = false;

	for (unsigned k = 0; k < m->n_fields; k++) {
		fixed += wire_bytes[m->fields[k].type];
		variable |= wire_bytes[m->fields[k].type] == 0;
	}
	snprintf(name, sizeof name, "%s_%s_wire_size", s->app, m->name);
	snprintf(
	    params, sizeof params, "const struct %s_%s *msg", s->app, m->name);
	butler__gen_emit_sig(out, true, "size_t", name, params);
	if (!variable) {
		butler__gen_sb_printf(out,
		    "{\n\treturn msg != NULL ? %lu : SIZE_MAX;\n}\n\n", fixed);
		return;
	}
	butler__gen_sb_printf(out,
	    "{\n\tsize_t n = %lu;%s\n\n"
	    "\tif (msg == NULL)\n\t\treturn SIZE_MAX;\n",
	    fixed, fixed > 0 ? " /* the fixed-width fields */" : "");
	for (unsigned k = 0; k < m->n_fields; k++) {
		const struct field *f = &m->fields[k];
		const char *n = f->name;

		if (f->type == FT_STRING) {
			butler__gen_call(out, "n = butler_wire_add_string(",
			    "n, msg->%s", n);
		} else if (f->type == FT_BYTES || f->type == FT_BUF) {
			butler__gen_call(out, "n = butler_wire_add_blob(",
			    "n, msg->%s.data, msg->%s.len", n, n);
		} else if (f->type == FT_MSG) {
			butler__gen_call(out, "n = butler_wire_add(",
			    "n, %s_%s_wire_size(&msg->%s)", s->app,
			    s->msgs[f->msg].name, n);
		}
	}
	butler__gen_sb_puts(out, "\treturn n;\n}\n\n");
}

static void
encode_decode(
    const struct emit_in *in, const struct message *m, struct sbuf *out)
{
	const struct spec *s = in->spec;
	const char *a = s->app, *M = m->name;
	char name[GEN_NAME_MAX], params[2 * GEN_NAME_MAX];

	snprintf(name, sizeof name, "%s_%s_encode", a, M);
	snprintf(params, sizeof params,
	    "const struct %s_%s *msg, unsigned char *out, size_t cap, size_t "
	    "*used",
	    a, M);
	butler__gen_emit_sig(out, true, "int", name, params);
	butler__gen_sb_printf(out,
	    "{\n\tbutler_wire_writer w;\n\n"
	    "\tif (used != NULL)\n\t\t*used = 0;\n"
	    "\tif (msg == NULL || (out == NULL && cap > 0))\n"
	    "\t\treturn BUTLER_EINVAL;\n"
	    "\tbutler_wire_writer_init(&w, out, cap);\n"
	    "\t%s_%s_put_bt_(&w, msg);\n"
	    "\tif (w.err == BUTLER_OK && used != NULL)\n"
	    "\t\t*used = cap - w.left;\n"
	    "\treturn w.err;\n}\n\n",
	    a, M);

	snprintf(name, sizeof name, "%s_%s_decode", a, M);
	snprintf(params, sizeof params,
	    "struct %s_%s *out, const unsigned char *in, size_t len, size_t "
	    "*used",
	    a, M);
	butler__gen_emit_sig(out, true, "int", name, params);
	butler__gen_sb_printf(out,
	    "{\n\tbutler_wire_reader r;\n\n"
	    "\tif (used != NULL)\n\t\t*used = 0;\n"
	    "\tif (out == NULL)\n\t\treturn BUTLER_EINVAL;\n"
	    "\tmemset(out, 0, sizeof *out);\n"
	    "\tif (in == NULL && len > 0)\n\t\treturn BUTLER_EINVAL;\n"
	    "\tbutler_wire_reader_init(&r, in, len);\n"
	    "\t%s_%s_get_bt_(&r, out);\n"
	    "\tif (butler_wire_done(&r, len, used) != BUTLER_OK)%s\n",
	    a, M, m->owned ? " {" : "");
	/* The fields read before a failure are whole; the others zero. */
	if (m->owned)
		butler__gen_sb_printf(out, "\t\t%s_%s_destroy(out);\n", a, M);
	butler__gen_sb_printf(out,
	    "\t\tmemset(out, 0, sizeof *out);\n%s\treturn r.err;\n}\n\n",
	    m->owned ? "\t}\n" : "");
}

/* thunks emits the void * wrappers the descriptor holds: calling the
 * typed functions through cast pointers would be undefined. */
static void
thunks(const struct emit_in *in, const struct message *m, struct sbuf *out)
{
	const char *a = in->spec->app, *M = m->name;
	char name[GEN_NAME_MAX], body[2 * GEN_NAME_MAX];

	snprintf(name, sizeof name, "%s_%s_wire_size_bt_", a, M);
	butler__gen_emit_sig(
	    out, true, "static size_t", name, "const void *msg");
	snprintf(body, sizeof body, "return %s_%s_wire_size(", a, M);
	butler__gen_sb_puts(out, "{\n");
	butler__gen_emit_call(out, 1, body, "msg", ");\n");
	butler__gen_sb_puts(out, "}\n\n");

	snprintf(name, sizeof name, "%s_%s_encode_bt_", a, M);
	butler__gen_emit_sig(out, true, "static int", name,
	    "const void *msg, unsigned char *out, size_t cap, size_t *used");
	snprintf(body, sizeof body, "return %s_%s_encode(", a, M);
	butler__gen_sb_puts(out, "{\n");
	butler__gen_emit_call(out, 1, body, "msg, out, cap, used", ");\n");
	butler__gen_sb_puts(out, "}\n\n");

	snprintf(name, sizeof name, "%s_%s_decode_bt_", a, M);
	butler__gen_emit_sig(out, true, "static int", name,
	    "void *out, const unsigned char *in, size_t len, size_t *used");
	snprintf(body, sizeof body, "return %s_%s_decode(", a, M);
	butler__gen_sb_puts(out, "{\n");
	butler__gen_emit_call(out, 1, body, "out, in, len, used", ");\n");
	butler__gen_sb_puts(out, "}\n\n");
}

void
butler__gen_emit_wire_source(const struct emit_in *in, struct sbuf *out)
{
	const struct spec *s = in->spec;
	bool buf = false;

	for (unsigned i = 0; i < s->n_msgs; i++)
		for (unsigned k = 0;
		     s->msgs[i].wire && k < s->msgs[i].n_fields; k++)
			buf |= s->msgs[i].fields[k].type == FT_BUF;
	butler__gen_sb_puts(out,
	    "/*\n * The wire format (butler/wire.h, codegen/SPEC.md): each "
	    "field in\n * declaration order. The descriptor table holds the "
	    "thunks, so that a\n * bridge can carry any message of the "
	    "spec.\n */\n\n");
	if (buf)
		butler__gen_sb_printf(out,
		    "/* The free_fn of every buf a decoder allocated. */\n"
		    "static void\n%s_buf_free_bt_(void *data, void *ctx)\n"
		    "{\n\t(void)ctx;\n\tfree(data);\n}\n\n",
		    s->app);
	/* Nested messages first: each static reader and writer is defined
	 * before the messages that use it. */
	for (unsigned i = 0; i < s->n_msgs; i++) {
		const struct message *m = &s->msgs[s->order[i]];

		if (!m->wire)
			continue;
		butler__gen_sb_printf(
		    out, "/* '%s' on the wire. */\n\n", m->name);
		put_bt(in, m, out);
		get_bt(in, m, out);
		wire_size(in, m, out);
		encode_decode(in, m, out);
		thunks(in, m, out);
	}
}
