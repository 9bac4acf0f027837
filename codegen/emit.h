/* SPDX-License-Identifier: MIT */
/*
 * codegen/emit.h — turning a checked spec into C text, and writing files.
 */
#ifndef BUTLER_CODEGEN_EMIT_H
#define BUTLER_CODEGEN_EMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sbuf.h"
#include "spec.h"

#include <stdarg.h>

/* GEN_NAME_MAX is enough for any generated identifier: three names of at
 * most SPEC_NAME_MAX characters and a fixed part. */
#define GEN_NAME_MAX (4 * SPEC_NAME_MAX)

/* struct emit_import is a spec the emitted one imports. */
struct emit_import {
	const char *path;        /* as written in "imports" */
	const char *header_name; /* its "<base>.butler.h" */
	const char *app;         /* its app prefix: <app>_spec */
};

/* struct emit_in is what both emitters need to know. */
struct emit_in {
	const struct spec *spec;
	const char *spec_path;       /* as given, for the banner */
	const char *header_name;     /* "<base>.butler.h" */
	const unsigned *n_accepting; /* per message: servers accepting it */
	const struct emit_import *imports; /* spec->n_imports of them */
};

/* butler__gen_emit_header appends the generated header to `out`. */
void butler__gen_emit_header(const struct emit_in *in, struct sbuf *out);

/* butler__gen_emit_source appends the generated source to `out`. */
void butler__gen_emit_source(const struct emit_in *in, struct sbuf *out);

/*
 * butler__gen_wire_text appends the canonical text of the spec's
 * wire-relevant parts (codegen/SPEC.md, "Wire format"), which
 * butler__gen_wire_hash() hashes.
 */
void butler__gen_wire_text(const struct spec *s, struct sbuf *out);

/* butler__gen_wire_hash returns the FNV-1a 64 hash of the wire text; sets
 * *oom when out of memory. */
uint64_t butler__gen_wire_hash(const struct spec *s, bool *oom);

/* butler__gen_emit_wire_hash appends the APP_WIRE_HASH macro. */
void butler__gen_emit_wire_hash(const struct emit_in *in, struct sbuf *out);

/* butler__gen_emit_wire_decls appends the codec prototypes of `m` (or a
 * comment saying why it has none). */
void butler__gen_emit_wire_decls(
    const struct emit_in *in, const struct message *m, struct sbuf *out);

/* butler__gen_emit_wire_source appends every codec's definition. */
void butler__gen_emit_wire_source(const struct emit_in *in, struct sbuf *out);

/* butler__gen_emit_guard appends the include guard of the header named
 * `header_name` ("my-app.butler.h" gives MY_APP_BUTLER_H). */
void butler__gen_emit_guard(struct sbuf *out, const char *header_name);

/* butler__gen_emit_banner appends the DO NOT EDIT line. */
void butler__gen_emit_banner(const struct emit_in *in, struct sbuf *out);

/*
 * butler__gen_emit_doc appends `doc` as a comment block indented by
 * `indent` tabs, made safe to put in a comment: a doc cannot close the
 * comment, open a nested one, or form a trigraph.
 */
void butler__gen_emit_doc(
    struct sbuf *out, unsigned indent, const char *title, const char *doc);

/* butler__gen_ctype returns the C type of a field type, or NULL for the
 * ones spelled with the app prefix (bytes, buf, messages). */
const char *butler__gen_ctype(enum ftype t);

/*
 * butler__gen_write_if_changed makes the file at `path` hold `len` bytes
 * of `data`. A file that already holds them is not touched; otherwise the
 * data goes to a temporary file in the same directory that is renamed over
 * `path`, so nobody ever sees a half-written file. *changed says whether
 * the file was replaced. Returns 0, or an errno value.
 */
int butler__gen_write_if_changed(
    const char *path, const char *data, size_t len, bool *changed /* OUT */);

/*
 * butler__gen_emit_sig appends a function signature: `ret name(params)`
 * for a prototype (ending in ";\n"), or the return type on its own line
 * for a definition (house style, so grep '^name(' finds it). Parameters
 * that do not fit in 79 columns go one per line.
 */
void butler__gen_emit_sig(struct sbuf *out, bool definition, const char *ret,
    const char *name, const char *params);

/*
 * butler__gen_emit_call appends `head`, the ", "-separated `items` and
 * `tail`, indented by `indent` tabs; items that do not fit in 79 columns go
 * on continuation lines one tab deeper. For calls ("return f(" ... ");\n")
 * and declarations alike.
 */
void butler__gen_emit_call(struct sbuf *out, unsigned indent, const char *head,
    const char *items, const char *tail);

/*
 * butler__gen_emit_comment appends `text` (one paragraph) as a comment
 * indented by `indent` tabs, its words filled into 79 columns.
 */
void butler__gen_emit_comment(
    struct sbuf *out, unsigned indent, const char *text);

/* butler__gen_doc appends a printf-formatted paragraph as a filled
 * comment (butler__gen_emit_comment). */
void butler__gen_doc(struct sbuf *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* butler__gen_call appends \`head\`, printf-formatted arguments and ");\n"
 * as one wrapped statement, one tab in (butler__gen_emit_call). */
void butler__gen_call(struct sbuf *out, const char *head, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* butler__gen_vsig appends a signature (butler__gen_emit_sig) whose
 * parameters are formatted from fmt and ap; butler__gen_sig is its
 * variadic form. */
void butler__gen_vsig(struct sbuf *out, bool definition, const char *ret,
    const char *name, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));
void butler__gen_sig(struct sbuf *out, bool definition, const char *ret,
    const char *name, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* butler__gen_emit_cstr appends s escaped for a C string literal. */
void butler__gen_emit_cstr(struct sbuf *out, const char *s);

#endif /* BUTLER_CODEGEN_EMIT_H */
