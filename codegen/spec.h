/* SPDX-License-Identifier: MIT */
/*
 * codegen/spec.h — a spec file checked and turned into butler-gen's model.
 *
 * butler__gen_spec_build() reads the JSON tree (json.h), reports every
 * problem it finds to the diagnostics, and fills struct spec. The emitters
 * only run on a spec without errors, so they may trust every field here:
 * names are valid, distinct C identifiers once prefixed, every index
 * resolves, and nesting is acyclic.
 */
#ifndef BUTLER_CODEGEN_SPEC_H
#define BUTLER_CODEGEN_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <butler/gen.h>

#include "diag.h"
#include "json.h"

/*
 * SPEC_* are the schema's own limits (documented in SPEC.md). The limits
 * the runtime enforces too come from butler/gen.h (BUTLER_MAX_*), so that
 * a spec that generates is a table butler_hub_new() accepts.
 */
#define SPEC_VERSION 1
#define SPEC_CAPACITY_DEFAULT 1024u
#define SPEC_NAME_MAX 64u
/* SPEC_SIZE_CAP bounds the sizes butler-gen computes (nesting multiplies
 * them), far above any limit and far below overflow. */
#define SPEC_SIZE_CAP ((uint64_t)1 << 48)
/* SPEC_MS_MAX bounds every duration in milliseconds (ticks, watchdogs,
 * block timeouts): what an int holds, about 24.8 days. */
#define SPEC_MS_MAX 2147483647L

/* enum ftype is a field's type; FT_MSG nests another message by value. */
enum ftype {
	FT_BOOL,
	FT_I8,
	FT_I16,
	FT_I32,
	FT_I64,
	FT_U8,
	FT_U16,
	FT_U32,
	FT_U64,
	FT_F32,
	FT_F64,
	FT_STRING,
	FT_BYTES,
	FT_BUF,
	FT_PTR,
	FT_MSG
};

/* struct field is one member of a message, in spec order. */
struct field {
	const char *name;
	enum ftype type;
	unsigned msg;  /* FT_MSG: index of the nested message */
	struct loc at; /* the field's key */
	struct loc type_at;
};

/* struct message is one message type, in spec order. */
struct message {
	const char *name;
	char *upper; /* name in upper case, for enumerators */
	const char *doc;
	struct loc at;
	struct field *fields;
	unsigned n_fields;
	int reply;    /* message index, or -1 */
	int progress; /* message index, or -1 */
	bool progress_latest;
	bool owned;     /* has fields to free, here or nested */
	bool used;      /* accepted, a reply, a progress or nested somewhere */
	bool request;   /* has a reply */
	bool wire;      /* can travel over the wire: no ptr, here or nested */
	uint64_t size;  /* sizeof the struct on LP64 (capped: SPEC_SIZE_CAP) */
	unsigned align; /* its alignment on LP64 */
};

/* enum loop_kind, enum full_kind and enum route_kind mirror butler_loop,
 * butler_full and butler_route. */
enum loop_kind { LOOP_THREAD, LOOP_EXTERNAL };
enum full_kind {
	FULL_FAIL,
	FULL_BLOCK,
	FULL_DROP_NEWEST,
	FULL_DROP_OLDEST,
	FULL_KEEP_LAST
};
enum route_kind { ROUTE_ROUND_ROBIN, ROUTE_LEAST_LOADED, ROUTE_KEY };

/*
 * struct kind_policy is what one accepted message kind of a server does,
 * the server's defaults filled in where the spec's "kinds" says nothing:
 * what butler_kind_desc holds.
 */
struct kind_policy {
	enum full_kind full;
	int block_timeout_ms;
	unsigned max_handler_ms;
	unsigned key_field; /* ROUTE_KEY: the key's index in the message */
};

/* struct server is one server, in spec order. */
struct server {
	const char *name;
	char *upper;
	const char *doc;
	struct loc at;
	unsigned *accepts; /* message indexes, kind k is accepts[k - 1] */
	struct loc *accepts_at;
	unsigned n_accepts;
	enum loop_kind loop;
	unsigned instances; /* or BUTLER_INSTANCES_AUTO */
	unsigned capacity;
	enum full_kind full;
	int block_timeout_ms;
	bool remote;          /* "remote": true */
	struct loc remote_at; /* its value */
	enum route_kind route;
	const char *route_key;     /* ROUTE_KEY: the field's name */
	bool share;                /* "share": true */
	struct kind_policy *kinds; /* n_accepts of them, when emit_kinds */
	bool emit_kinds; /* the descriptor gets .kinds (butler_kind_desc) */
	unsigned max_queued;
	unsigned max_handler_ms;
	unsigned tick_kind; /* 1-based kind delivered every tick_ms, or 0 */
	unsigned tick_ms;
	struct loc tick_at; /* the tick's "message" value */
};

/* struct import is one entry of "imports": a path as written. */
struct import {
	const char *path;
	struct loc at;
};

/* struct spec is a whole checked spec. */
struct spec {
	const char *app;
	char *app_upper;
	const char *doc;
	const char *version; /* "version", or NULL */
	struct loc app_at;
	struct import *imports; /* in spec order; gen.c resolves them */
	unsigned n_imports;
	struct message *msgs;
	unsigned n_msgs;
	struct server *srvs;
	unsigned n_srvs;
	unsigned *order; /* message indexes, nested ones before their users */
	bool uses_bytes;
	bool uses_buf;
	bool uses_string;
};

/*
 * butler__gen_spec_build checks the document `root` and fills `spec`, whose
 * names point into the document (keep it alive). Problems go to `d`.
 * Returns 0, or -1 when out of memory. `spec` must be released either way.
 */
int butler__gen_spec_build(
    struct spec *spec, const struct jv *root, struct diag *d);

/* butler__gen_spec_release frees what butler__gen_spec_build allocated. */
void butler__gen_spec_release(struct spec *spec);

#endif /* BUTLER_CODEGEN_SPEC_H */
