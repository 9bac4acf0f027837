/* SPDX-License-Identifier: MIT */
/* codegen/json.c — cJSON plus a position scanner (see json.h). */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* JSON_DEPTH_MAX mirrors cJSON's CJSON_NESTING_LIMIT, so that the strict
 * pass explains cJSON's refusal of deeper documents. */
#define JSON_DEPTH_MAX 1000

/* struct mark is where a key or a value starts. */
struct mark {
	size_t off;
	bool key;
};

/*
 * struct scan walks the text once. In record mode (strict false) it accepts
 * what cJSON accepts and records marks; in strict mode it stops at the first
 * violation of RFC 8259 and words it.
 */
struct scan {
	const char *s;
	size_t n;
	size_t i;
	bool strict;
	unsigned depth;
	struct mark *marks;
	size_t n_marks, cap;
	bool oom;
	bool failed;
	size_t err_off;
	size_t note_off; /* the '{' or '[' an unexpected end fails to close */
	bool has_note;
	char err[160];
};

static bool fail(struct scan *sc, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool
fail(struct scan *sc, size_t off, const char *fmt, ...)
{
	va_list ap;

	if (sc->failed)
		return false;
	sc->failed = true;
	sc->err_off = off;
	va_start(ap, fmt);
	vsnprintf(sc->err, sizeof sc->err, fmt, ap);
	va_end(ap);
	return false;
}

static bool
mark(struct scan *sc, size_t off, bool key)
{
	if (sc->strict)
		return true;
	if (sc->n_marks == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 64;
		struct mark *m = realloc(sc->marks, cap * sizeof *m);

		if (m == NULL) {
			sc->oom = true;
			return fail(sc, off, "out of memory");
		}
		sc->marks = m;
		sc->cap = cap;
	}
	sc->marks[sc->n_marks].off = off;
	sc->marks[sc->n_marks].key = key;
	sc->n_marks++;
	return true;
}

/* ws skips whitespace. cJSON takes every byte up to 32 for whitespace, and
 * record mode must agree with it; strict mode takes JSON's four. */
static void
ws(struct scan *sc)
{
	while (sc->i < sc->n) {
		unsigned char c = (unsigned char)sc->s[sc->i];

		if (sc->strict
		        ? c != ' ' && c != '\t' && c != '\n' && c != '\r'
		        : c > 32)
			break;
		sc->i++;
	}
}

/* found describes the byte at `off` for a message. */
static const char *
found(const struct scan *sc, size_t off, char *buf, size_t size)
{
	unsigned char c;

	if (off >= sc->n)
		return "end of file";
	c = (unsigned char)sc->s[off];
	if (c > 32 && c < 127 && c != '\'')
		snprintf(buf, size, "'%c'", c);
	else if (c == '\'')
		snprintf(buf, size, "a single quote");
	else
		snprintf(buf, size, "byte 0x%02x", c);
	return buf;
}

static bool
is_word(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
	    || (c >= '0' && c <= '9') || c == '_';
}

static int
hex4(const struct scan *sc, size_t at)
{
	int v = 0;

	if (at + 4 > sc->n)
		return -1;
	for (size_t k = 0; k < 4; k++) {
		char c = sc->s[at + k];

		v *= 16;
		if (c >= '0' && c <= '9')
			v += c - '0';
		else if (c >= 'a' && c <= 'f')
			v += c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v += c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

static bool
string(struct scan *sc)
{
	size_t start = sc->i++;

	for (;;) {
		unsigned char c;

		if (sc->i >= sc->n)
			return fail(sc, start, "unterminated string");
		c = (unsigned char)sc->s[sc->i];
		if (c == '"') {
			sc->i++;
			return true;
		}
		if (c == '\\') {
			char e;
			int u;

			if (sc->i + 1 >= sc->n)
				return fail(sc, start, "unterminated string");
			e = sc->s[sc->i + 1];
			if (!sc->strict
			    || (e != '\0'
			        && strchr("\"\\/bfnrt", e) != NULL)) {
				sc->i += 2;
				continue;
			}
			if (e != 'u')
				return fail(sc, sc->i,
				    "invalid escape '\\%c' in string",
				    (unsigned char)e > 32
				            && (unsigned char)e < 127
				        ? e
				        : '?');
			u = hex4(sc, sc->i + 2);
			if (u < 0)
				return fail(sc, sc->i,
				    "invalid unicode escape: '\\u' "
				    "needs four hex digits");
			if (u >= 0xdc00 && u <= 0xdfff)
				return fail(sc, sc->i,
				    "invalid unicode escape: unpaired "
				    "surrogate");
			if (u >= 0xd800 && u <= 0xdbff) {
				int lo = -1;

				if (sc->i + 7 < sc->n
				    && sc->s[sc->i + 6] == '\\'
				    && sc->s[sc->i + 7] == 'u')
					lo = hex4(sc, sc->i + 8);
				if (lo < 0xdc00 || lo > 0xdfff)
					return fail(sc, sc->i,
					    "invalid unicode escape: "
					    "unpaired surrogate");
				sc->i += 6;
			}
			sc->i += 6;
			continue;
		}
		if (sc->strict && c == '\n')
			return fail(sc, start,
			    "unterminated string (a string cannot span "
			    "lines)");
		if (sc->strict && c < 0x20)
			return fail(sc, sc->i,
			    "control character in string (write it "
			    "as an escape such as '\\n')");
		sc->i++;
	}
}

static bool
digits(struct scan *sc)
{
	size_t from = sc->i;

	while (sc->i < sc->n && sc->s[sc->i] >= '0' && sc->s[sc->i] <= '9')
		sc->i++;
	return sc->i > from;
}

static bool
number(struct scan *sc)
{
	size_t start = sc->i;

	if (!sc->strict) {
		/* cJSON collects these characters and lets strtod judge; on
		 * a document it accepted, the run is exactly the number. */
		while (sc->i < sc->n && strchr("0123456789+-.eE", sc->s[sc->i])
		    && sc->s[sc->i] != '\0')
			sc->i++;
		return true;
	}
	if (sc->s[sc->i] == '-')
		sc->i++;
	if (sc->i < sc->n && sc->s[sc->i] == '0')
		sc->i++;
	else if (!digits(sc))
		return fail(sc, start, "invalid number");
	if (sc->i < sc->n && sc->s[sc->i] == '.') {
		sc->i++;
		if (!digits(sc))
			return fail(sc, start, "invalid number");
	}
	if (sc->i < sc->n && (sc->s[sc->i] == 'e' || sc->s[sc->i] == 'E')) {
		sc->i++;
		if (sc->i < sc->n
		    && (sc->s[sc->i] == '+' || sc->s[sc->i] == '-'))
			sc->i++;
		if (!digits(sc))
			return fail(sc, start, "invalid number");
	}
	if (sc->i < sc->n
	    && (is_word((unsigned char)sc->s[sc->i]) || sc->s[sc->i] == '.'))
		return fail(sc, start, "invalid number");
	return true;
}

static bool value(struct scan *sc);

/* word handles a bare word: a literal, or a string someone forgot to
 * quote. */
static bool
word(struct scan *sc)
{
	static const char *const lits[] = { "true", "false", "null" };
	size_t start = sc->i, end = sc->i;
	char buf[40];

	while (end < sc->n && is_word((unsigned char)sc->s[end]))
		end++;
	for (size_t k = 0; k < 3; k++)
		if (end - start == strlen(lits[k])
		    && memcmp(sc->s + start, lits[k], end - start) == 0) {
			sc->i = end;
			return true;
		}
	snprintf(buf, sizeof buf, "%.*s%s",
	    (int)(end - start > 24 ? 24 : end - start), sc->s + start,
	    end - start > 24 ? "..." : "");
	return fail(sc, start,
	    "invalid value '%s' (strings must be in double quotes)", buf);
}

static bool
unexpected_end(struct scan *sc, size_t open, const char *what)
{
	sc->has_note = true;
	sc->note_off = open;
	return fail(sc, sc->i, "unexpected end of file, expected %s", what);
}

/* key scans an object member's key and its ':'. */
static bool
key(struct scan *sc, size_t open)
{
	unsigned char c = (unsigned char)sc->s[sc->i];
	char buf[24];

	if (c != '"') {
		if (is_word(c) || c == '\'')
			return fail(sc, sc->i,
			    "object key must be a string in double quotes");
		return fail(sc, sc->i, "expected a key, found %s",
		    found(sc, sc->i, buf, sizeof buf));
	}
	if (!mark(sc, sc->i, true) || !string(sc))
		return false;
	ws(sc);
	if (sc->i >= sc->n)
		return unexpected_end(sc, open, "':'");
	if (sc->s[sc->i] != ':')
		return fail(sc, sc->i, "expected ':' after the key, found %s",
		    found(sc, sc->i, buf, sizeof buf));
	sc->i++;
	return true;
}

/*
 * container scans an object or an array: the same loop, except that an
 * object's members start with a key.
 */
static bool
container(struct scan *sc)
{
	bool obj = sc->s[sc->i] == '{';
	char close = obj ? '}' : ']';
	size_t open = sc->i, comma = 0;
	char buf[24], want[16];

	if (sc->depth >= JSON_DEPTH_MAX)
		return fail(sc, sc->i,
		    "nesting is too deep (more than %d levels)",
		    JSON_DEPTH_MAX);
	sc->depth++;
	sc->i++;
	snprintf(want, sizeof want, "',' or '%c'", close);
	ws(sc);
	if (sc->i < sc->n && sc->s[sc->i] == close)
		goto out_close;
	for (;;) {
		unsigned char c;

		ws(sc);
		if (sc->i >= sc->n)
			return unexpected_end(
			    sc, open, obj ? "a key" : "a value");
		c = (unsigned char)sc->s[sc->i];
		if (comma && c == close)
			return fail(sc, comma,
			    "trailing comma is not allowed in JSON");
		if (c == '/')
			return fail(
			    sc, sc->i, "comments are not allowed in JSON");
		if ((obj && !key(sc, open)) || !value(sc))
			return false;
		ws(sc);
		if (sc->i >= sc->n)
			return unexpected_end(sc, open, want);
		c = (unsigned char)sc->s[sc->i];
		if (c == close)
			break;
		if (c != ',') {
			/* The start of another member or element: the comma
			 * before it is missing. */
			if (c == '"'
			    || (!obj && (is_word(c) || c == '{' || c == '[')))
				return fail(sc, sc->i,
				    "expected ',' between %s",
				    obj ? "members" : "elements");
			if (c == '/')
				return fail(sc, sc->i,
				    "comments are not allowed in JSON");
			return fail(sc, sc->i, "expected %s, found %s", want,
			    found(sc, sc->i, buf, sizeof buf));
		}
		comma = sc->i++;
	}
out_close:
	sc->i++;
	sc->depth--;
	return true;
}

static bool
value(struct scan *sc)
{
	unsigned char c;
	char buf[24];

	ws(sc);
	if (sc->i >= sc->n)
		return fail(
		    sc, sc->i, "unexpected end of file, expected a value");
	c = (unsigned char)sc->s[sc->i];
	if (!mark(sc, sc->i, false))
		return false;
	if (c == '{' || c == '[')
		return container(sc);
	if (c == '"')
		return string(sc);
	if (c == '-' || (c >= '0' && c <= '9'))
		return number(sc);
	if (is_word(c))
		return word(sc);
	if (c == '/')
		return fail(sc, sc->i, "comments are not allowed in JSON");
	if (c == '\'')
		return fail(sc, sc->i, "strings must be in double quotes");
	return fail(sc, sc->i, "expected a value, found %s",
	    found(sc, sc->i, buf, sizeof buf));
}

/* bom_len is 3 when the text starts with a UTF-8 byte order mark, which
 * cJSON skips and editors do not show. */
static size_t
bom_len(const char *s, size_t n)
{
	return n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
}

static bool
document(struct scan *sc)
{
	char buf[24];

	sc->i = bom_len(sc->s, sc->n);
	ws(sc);
	if (sc->i >= sc->n)
		return fail(sc, sc->i,
		    "the file is empty, expected a JSON "
		    "object");
	if (!value(sc))
		return false;
	ws(sc);
	if (sc->i < sc->n)
		return fail(sc, sc->i,
		    "unexpected %s after the end of the document",
		    found(sc, sc->i, buf, sizeof buf));
	return true;
}

/* struct lc converts increasing offsets to positions in one pass. */
struct lc {
	const char *s;
	size_t n;
	size_t off;
	struct loc at;
};

static void
lc_init(struct lc *lc, const char *s, size_t n)
{
	lc->s = s;
	lc->n = n;
	lc->off = bom_len(s, n);
	lc->at.line = 1;
	lc->at.col = 1;
}

static struct loc
lc_to(struct lc *lc, size_t off)
{
	/* Offsets only grow in document order; a smaller one restarts. */
	if (off < lc->off)
		lc_init(lc, lc->s, lc->n);
	for (; lc->off < off; lc->off++) {
		unsigned char c = (unsigned char)lc->s[lc->off];

		if (c == '\n') {
			lc->at.line++;
			lc->at.col = 1;
		} else if ((c & 0xc0) != 0x80) {
			lc->at.col++;
		}
	}
	return lc->at;
}

/* struct zip pairs cJSON's nodes with the scanner's marks. */
struct zip {
	struct jdoc *doc;
	const struct scan *sc;
	struct loc *locs;
	size_t mark;
	size_t node;
};

static struct jv *
zip_node(struct zip *z, const cJSON *item, bool member)
{
	struct jv *v, **link;

	if (z->node >= z->doc->n_nodes)
		goto out_mismatch;
	v = &z->doc->nodes[z->node++];
	v->json = item;
	if (member) {
		if (z->mark >= z->sc->n_marks || !z->sc->marks[z->mark].key)
			goto out_mismatch;
		v->key = item->string;
		v->key_at = z->locs[z->mark++];
	}
	if (z->mark >= z->sc->n_marks || z->sc->marks[z->mark].key)
		goto out_mismatch;
	v->at = z->locs[z->mark++];
	link = &v->kid;
	for (const cJSON *c = item->child; c != NULL; c = c->next) {
		struct jv *kid = zip_node(z, c, cJSON_IsObject(item));

		if (kid == NULL)
			return NULL;
		*link = kid;
		link = &kid->next;
		v->n_kids++;
	}
	return v;

out_mismatch:
	z->doc->mismatch = true;
	return NULL;
}

int
butler__gen_json_parse(
    struct jdoc *doc, const char *text, size_t len, struct diag *d)
{
	struct scan sc = { .s = text, .n = len };
	struct zip z = { .doc = doc, .sc = &sc };
	const char *end = NULL;
	struct lc lc;
	size_t n_values = 0;
	int rv = 0;

	memset(doc, 0, sizeof *doc);
	/* len + 1: with require_null_terminated, cJSON wants to see the
	 * terminating NUL inside the buffer. */
	doc->json = cJSON_ParseWithLengthOpts(text, len + 1, &end, 1);
	if (doc->json == NULL) {
		struct loc at, open = { 0, 0 };

		sc.strict = true;
		lc_init(&lc, text, len);
		if (document(&sc) || !sc.failed) {
			/* Valid for RFC 8259 yet refused by cJSON: point
			 * where cJSON stopped. */
			size_t off = end != NULL && end >= text
			    ? (size_t)(end - text)
			    : 0;

			butler__gen_error(d, lc_to(&lc, off > len ? len : off),
			    "invalid JSON");
			return -1;
		}
		if (sc.has_note)
			open = lc_to(&lc, sc.note_off);
		at = lc_to(&lc, sc.err_off);
		butler__gen_error(d, at, "%s", sc.err);
		if (sc.has_note)
			butler__gen_note(
			    d, open, "to match this '%c'", text[sc.note_off]);
		return -1;
	}

	if (!document(&sc)) {
		rv = sc.oom ? -2 : -1;
		doc->mismatch = !sc.oom;
		if (!sc.oom)
			butler__gen_error(d, (struct loc) { 0, 0 },
			    "internal error: cannot locate "
			    "positions in this file");
		goto out;
	}
	for (size_t k = 0; k < sc.n_marks; k++)
		n_values += !sc.marks[k].key;
	z.locs = calloc(sc.n_marks ? sc.n_marks : 1, sizeof *z.locs);
	doc->nodes = calloc(n_values ? n_values : 1, sizeof *doc->nodes);
	if (z.locs == NULL || doc->nodes == NULL) {
		rv = -2;
		goto out;
	}
	doc->n_nodes = n_values;
	lc_init(&lc, text, len);
	for (size_t k = 0; k < sc.n_marks; k++)
		z.locs[k] = lc_to(&lc, sc.marks[k].off);
	if (zip_node(&z, doc->json, false) == NULL || z.node != n_values
	    || z.mark != sc.n_marks) {
		doc->mismatch = true;
		butler__gen_error(d, (struct loc) { 0, 0 },
		    "internal error: cannot locate positions "
		    "in this file");
		rv = -1;
	}
out:
	free(z.locs);
	free(sc.marks);
	return rv;
}

void
butler__gen_json_release(struct jdoc *doc)
{
	cJSON_Delete(doc->json);
	free(doc->nodes);
	memset(doc, 0, sizeof *doc);
}

const struct jv *
butler__gen_json_get(const struct jv *obj, const char *key)
{
	if (obj == NULL || !cJSON_IsObject(obj->json))
		return NULL;
	for (const struct jv *k = obj->kid; k != NULL; k = k->next)
		if (strcmp(k->key, key) == 0)
			return k;
	return NULL;
}

const char *
butler__gen_json_kind(const struct jv *v)
{
	const cJSON *j = v->json;

	if (cJSON_IsString(j))
		return "a string";
	if (cJSON_IsNumber(j))
		return "a number";
	if (cJSON_IsBool(j))
		return "a boolean";
	if (cJSON_IsNull(j))
		return "null";
	if (cJSON_IsArray(j))
		return "an array";
	if (cJSON_IsObject(j))
		return "an object";
	return "an unknown value";
}
