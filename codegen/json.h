/* SPDX-License-Identifier: MIT */
/*
 * codegen/json.h — cJSON with positions.
 *
 * cJSON is the parser of record: it decides what is valid and gives the
 * values. Its nodes carry no positions, and on failure it gives only an
 * offset (sometimes one past the culprit), so this module adds a small
 * scanner of its own. On valid input the scanner records where every key and
 * value starts, and the two are zipped into a tree of struct jv. On invalid
 * input a strict pass of the same scanner finds the first error and says
 * what is wrong in words; cJSON's offset is the fallback.
 */
#ifndef BUTLER_CODEGEN_JSON_H
#define BUTLER_CODEGEN_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "diag.h"

/* struct jv is one JSON value with where it (and its key) starts. */
struct jv {
	const cJSON *json;
	const char *key;   /* member name for object members, else NULL */
	struct loc key_at; /* the opening quote of the key */
	struct loc at;     /* the first character of the value */
	struct jv *kid;    /* first child (object member, array element) */
	struct jv *next;   /* next sibling, in document order */
	size_t n_kids;
};

/* struct jdoc owns a parsed document. */
struct jdoc {
	cJSON *json;
	struct jv *nodes; /* every node, in document order; nodes[0] is root */
	size_t n_nodes;
	bool mismatch; /* scanner and cJSON disagreed (a bug; fuzz checks) */
};

/*
 * butler__gen_json_parse parses `len` bytes of `text`, which must be
 * followed by a NUL at text[len]. Returns 0, -1 after reporting a syntax
 * error to `d`, or -2 when out of memory.
 */
int butler__gen_json_parse(
    struct jdoc *doc, const char *text, size_t len, struct diag *d);

/* butler__gen_json_release frees the document. */
void butler__gen_json_release(struct jdoc *doc);

/* butler__gen_json_get returns the first member `key` of object `obj`. */
const struct jv *butler__gen_json_get(const struct jv *obj, const char *key);

/* butler__gen_json_kind names the JSON type of `v` for messages ("a
 * string", "an array", ...). */
const char *butler__gen_json_kind(const struct jv *v);

#endif /* BUTLER_CODEGEN_JSON_H */
