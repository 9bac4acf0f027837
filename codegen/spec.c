/* SPDX-License-Identifier: MIT */
/* codegen/spec.c — check a spec and build butler-gen's model (spec.h). */
#include "spec.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "sbuf.h"

/* BUILTIN lists the built-in field types in enum ftype order. */
static const char *const builtin[] = {
	"bool",
	"i8",
	"i16",
	"i32",
	"i64",
	"u8",
	"u16",
	"u32",
	"u64",
	"f32",
	"f64",
	"string",
	"bytes",
	"buf",
	"ptr",
};
#define N_BUILTIN (sizeof builtin / sizeof builtin[0])

/* c_words are C11 keywords, C23 keywords, and the macros of the headers
 * that generated code includes: none of them can name a field or a
 * message. */
static const char *const c_words[] = {
	"_Alignas",
	"_Alignof",
	"_Atomic",
	"_Bool",
	"_Complex",
	"_Generic",
	"_Imaginary",
	"_Noreturn",
	"_Static_assert",
	"_Thread_local",
	"alignas",
	"alignof",
	"auto",
	"bool",
	"break",
	"case",
	"char",
	"const",
	"constexpr",
	"continue",
	"default",
	"do",
	"double",
	"else",
	"enum",
	"extern",
	"false",
	"float",
	"for",
	"goto",
	"if",
	"inline",
	"int",
	"long",
	"nullptr",
	"register",
	"restrict",
	"return",
	"short",
	"signed",
	"sizeof",
	"static",
	"static_assert",
	"struct",
	"switch",
	"thread_local",
	"true",
	"typedef",
	"typeof",
	"typeof_unqual",
	"union",
	"unsigned",
	"void",
	"volatile",
	"while",
	"NULL",
	"offsetof",
};

/* Known keys of each object of the schema, for "unknown key" checks. */
static const char *const top_keys[]
    = { "butler", "app", "version", "doc", "imports", "messages", "servers" };
static const char *const msg_keys[] = { "fields", "reply", "progress", "doc" };
static const char *const progress_keys[] = { "message", "latest" };
static const char *const srv_keys[] = { "accepts", "loop", "instances",
	"capacity", "full", "block_timeout_ms", "route", "share", "kinds",
	"tick", "max_queued", "max_handler_ms", "remote", "doc" };
static const char *const kind_keys[]
    = { "full", "block_timeout_ms", "max_handler_ms" };
static const char *const tick_keys[] = { "message", "every_ms" };
static const char *const route_keys[] = { "key" };
static const char *const loops[] = { "thread", "external" };
/* In enum full_kind order. */
static const char *const fulls[]
    = { "fail", "block", "drop_newest", "drop_oldest", "keep_last" };
/* The routes a string names, in enum route_kind order; a key route is an
 * object. */
static const char *const routes[] = { "round_robin", "least_loaded" };

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* struct ctx is the state of one butler__gen_spec_build() call. */
struct ctx {
	struct spec *spec;
	struct diag *d;
	bool oom;
	const struct jv **msg_nodes; /* the value of each message */
	const char **msg_names;      /* for "did you mean" */
	unsigned *by_name;           /* message indexes sorted by name */
	bool *msg_ok;                /* the message's name is valid */
	bool *srv_ok;
	bool app_ok;
};

static char *
upper_dup(struct ctx *c, const char *s)
{
	size_t n = strlen(s);
	char *u = malloc(n + 1);

	if (u == NULL) {
		c->oom = true;
		return NULL;
	}
	for (size_t i = 0; i <= n; i++)
		u[i] = (char)toupper((unsigned char)s[i]);
	return u;
}

/* distance is the Levenshtein distance of a and b, or a large number for
 * strings too long to be worth comparing. */
static size_t
distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[SPEC_NAME_MAX + 2];

	if (la > SPEC_NAME_MAX || lb > SPEC_NAME_MAX)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t cost = tolower((unsigned char)a[i - 1])
			        == tolower((unsigned char)b[j - 1])
			    ? 0
			    : 1;
			size_t best = diag + cost;

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* struct hint collects the closest of several candidate lists. */
struct hint {
	const char *best;
	size_t dist;
	char text[QUOTE_MAX + 32];
};

static void
hint_init(struct hint *h)
{
	h->best = NULL;
	h->dist = SIZE_MAX;
	h->text[0] = '\0';
}

static void
hint_add(struct hint *h, const char *name, const char *const *cands, size_t n)
{
	/* Close means at most a third of the name differs: catches typos,
	 * not unrelated words. */
	size_t limit = (strlen(name) + 2) / 3;

	for (size_t i = 0; i < n; i++) {
		size_t dist = distance(name, cands[i]);

		if (dist <= limit && dist < h->dist && dist > 0) {
			h->best = cands[i];
			h->dist = dist;
		}
	}
}

/* hint_text returns " (did you mean 'x'?)" or "". */
static const char *
hint_text(struct hint *h)
{
	char q[QUOTE_MAX];

	if (h->best != NULL)
		snprintf(h->text, sizeof h->text, " (did you mean '%s'?)",
		    butler__gen_quote(q, sizeof q, h->best));
	return h->text;
}

static bool
in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

/* check_name reports why `name` cannot be used as a `what` name. */
static bool
check_name(struct ctx *c, const char *name, struct loc at, const char *what)
{
	char q[QUOTE_MAX], why[160];
	size_t n = strlen(name);
	bool ok = n > 0 && !isdigit((unsigned char)name[0]);

	for (size_t i = 0; i < n && ok; i++)
		ok = isalnum((unsigned char)name[i]) || name[i] == '_';
	butler__gen_quote(q, sizeof q, name);
	if (n == 0) {
		butler__gen_error(c->d, at, "%s name is empty", what);
		return false;
	}
	if (!ok) {
		butler__gen_error(c->d, at,
		    "%s name '%s' is not a valid C identifier "
		    "(use letters, digits and '_', and do not "
		    "start with a digit)",
		    what, q);
		return false;
	}
	if (n > SPEC_NAME_MAX) {
		butler__gen_error(c->d, at,
		    "%s name '%s' is too long (%zu characters, "
		    "at most %u)",
		    what, q, n, SPEC_NAME_MAX);
		return false;
	}
	if (in_list(name, c_words, COUNT(c_words))) {
		butler__gen_error(
		    c->d, at, "%s name '%s' is a C keyword", what, q);
		return false;
	}
	/* Field and message names are struct members, used bare: an
	 * object-like macro of the name would replace them. */
	if ((strcmp(what, "field") == 0 || strcmp(what, "message") == 0)
	    && butler__gen_macro_name(name, why, sizeof why)) {
		butler__gen_error(c->d, at, "%s name '%s' %s", what, q, why);
		return false;
	}
	if (name[0] == '_'
	    && (isupper((unsigned char)name[1]) || name[1] == '_')) {
		butler__gen_error(c->d, at,
		    "%s name '%s' is reserved in C (it starts "
		    "with '_' and an upper-case letter or '_')",
		    what, q);
		return false;
	}
	if (n >= 4 && strcmp(name + n - 4, "_bt_") == 0) {
		butler__gen_error(c->d, at,
		    "%s name '%s' ends in '_bt_', which is "
		    "reserved for butler-gen",
		    what, q);
		return false;
	}
	return true;
}

static int
jv_key_cmp(const void *pa, const void *pb)
{
	const struct jv *a = *(const struct jv *const *)pa;
	const struct jv *b = *(const struct jv *const *)pb;
	int r = strcmp(a->key, b->key);

	/* Nodes live in one array in document order, so the address orders
	 * equal keys by position and the first stays first. */
	if (r != 0)
		return r;
	return a < b ? -1 : a > b;
}

/* kid_index is the position of member `k` among obj's members: members of
 * one object are not contiguous in the node array, so count. */
static size_t
kid_index(const struct jv *obj, const struct jv *k)
{
	size_t i = 0;

	for (const struct jv *p = obj->kid; p != NULL && p != k; p = p->next)
		i++;
	return i;
}

/*
 * check_members reports duplicate keys of `obj` (cJSON keeps them all and
 * lookups see the first) and, when `known` is given, unknown keys. `label`
 * names a member in messages ("key", "message"...). Sets dup[i] for every
 * member after the first of its name, when `dup` is given.
 */
static void
check_members(struct ctx *c, const struct jv *obj, const char *label,
    const char *const *known, size_t n_known, const char *where, bool *dup)
{
	const struct jv **v;
	size_t n = 0;
	char q[QUOTE_MAX];

	if (obj->n_kids == 0)
		return;
	v = calloc(obj->n_kids, sizeof *v);
	if (v == NULL) {
		c->oom = true;
		return;
	}
	for (const struct jv *k = obj->kid; k != NULL; k = k->next) {
		v[n++] = k;
		if (known != NULL && !in_list(k->key, known, n_known)) {
			struct hint h;

			hint_init(&h);
			hint_add(&h, k->key, known, n_known);
			butler__gen_error(c->d, k->key_at,
			    "unknown key '%s' in %s%s",
			    butler__gen_quote(q, sizeof q, k->key), where,
			    hint_text(&h));
		}
	}
	qsort(v, n, sizeof *v, jv_key_cmp);
	for (size_t i = 1; i < n; i++) {
		size_t first = i - 1;

		if (strcmp(v[i]->key, v[first]->key) != 0)
			continue;
		while (first > 0 && strcmp(v[first - 1]->key, v[i]->key) == 0)
			first--;
		butler__gen_quote(q, sizeof q, v[i]->key);
		butler__gen_error(
		    c->d, v[i]->key_at, "duplicate %s '%s'", label, q);
		butler__gen_note(
		    c->d, v[first]->key_at, "'%s' first defined here", q);
		if (dup != NULL)
			dup[kid_index(obj, v[i])] = true;
	}
	free(v);
}

/* expect reports a value of the wrong JSON type. */
static bool
expect(struct ctx *c, const struct jv *v, bool ok, const char *what,
    const char *where, const char *want)
{
	if (!ok)
		butler__gen_error(c->d, v->at, "%s%s must be %s, not %s", what,
		    where, want, butler__gen_json_kind(v));
	return ok;
}

/*
 * get_int reads integer member `key` of `obj` into *out, which keeps its
 * default when the member is absent. Returns false after an error.
 */
static bool
get_int(struct ctx *c, const struct jv *obj, const char *key, long min,
    long max, long *out, const char *where)
{
	const struct jv *v = butler__gen_json_get(obj, key);
	char what[64];
	double x;

	if (v == NULL)
		return true;
	snprintf(what, sizeof what, "'%s'", key);
	if (!expect(c, v, cJSON_IsNumber(v->json), what, where, "an integer"))
		return false;
	x = v->json->valuedouble;
	if (!isfinite(x) || x != floor(x)) {
		butler__gen_error(c->d, v->at,
		    "'%s'%s must be a whole number, not %g", key, where, x);
		return false;
	}
	if (x < (double)min || x > (double)max) {
		butler__gen_error(c->d, v->at,
		    "'%s'%s must be between %ld and %ld, not %.0f", key, where,
		    min, max, x);
		return false;
	}
	*out = (long)x;
	return true;
}

/*
 * choice_of reads string value `v` of member `key`, one of `choices`, as
 * an index. `more` (or NULL) describes one more form the value may take
 * that is not a string, for the message.
 */
static bool
choice_of(struct ctx *c, const struct jv *v, const char *key,
    const char *const *choices, size_t n, const char *more, unsigned *out,
    const char *where)
{
	char what[64], q[QUOTE_MAX];
	struct sbuf list = { 0 };
	struct hint h;
	const char *s;

	snprintf(what, sizeof what, "'%s'", key);
	if (!expect(c, v, cJSON_IsString(v->json), what, where, "a string"))
		return false;
	s = v->json->valuestring;
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, choices[i]) == 0) {
			*out = (unsigned)i;
			return true;
		}
	for (size_t i = 0; i < n; i++)
		butler__gen_sb_printf(&list, "%s'%s'",
		    i == 0                  ? ""
		        : i + 1 < n || more ? ", "
		                            : " or ",
		    choices[i]);
	if (more != NULL)
		butler__gen_sb_printf(&list, " or %s", more);
	hint_init(&h);
	hint_add(&h, s, choices, n);
	butler__gen_error(c->d, v->at, "'%s'%s must be %s, not '%s'%s", key,
	    where, list.oom ? "..." : butler__gen_sb_cstr(&list),
	    butler__gen_quote(q, sizeof q, s), hint_text(&h));
	butler__gen_sb_release(&list);
	return false;
}

/* get_choice reads string member `key`, one of `choices`, as an index. */
static bool
get_choice(struct ctx *c, const struct jv *obj, const char *key,
    const char *const *choices, size_t n, unsigned *out, const char *where)
{
	const struct jv *v = butler__gen_json_get(obj, key);

	return v == NULL || choice_of(c, v, key, choices, n, NULL, out, where);
}

/*
 * get_version reads the optional "version" string: the spec's own version,
 * shown to people when two peers' specs differ, so short and printable.
 */
static const char *
get_version(struct ctx *c, const struct jv *obj)
{
	const struct jv *v = butler__gen_json_get(obj, "version");
	const char *s;
	size_t n;

	if (v == NULL
	    || !expect(
	        c, v, cJSON_IsString(v->json), "'version'", "", "a string"))
		return NULL;
	s = v->json->valuestring;
	n = strlen(s);
	if (n == 0) {
		butler__gen_error(c->d, v->at, "'version' is empty");
		return NULL;
	}
	if (n > SPEC_NAME_MAX) {
		butler__gen_error(c->d, v->at,
		    "'version' is too long (%zu characters, at most %u)", n,
		    SPEC_NAME_MAX);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) {
			char q[QUOTE_MAX];

			butler__gen_error(c->d, v->at,
			    "'version' may hold printable ASCII characters "
			    "only, not '%s'",
			    butler__gen_quote(q, sizeof q, s));
			return NULL;
		}
	return s;
}

/* get_doc reads the optional "doc" string. */
static const char *
get_doc(struct ctx *c, const struct jv *obj, const char *where)
{
	const struct jv *v = butler__gen_json_get(obj, "doc");

	if (v == NULL)
		return NULL;
	if (!expect(c, v, cJSON_IsString(v->json), "'doc'", where, "a string"))
		return NULL;
	return v->json->valuestring;
}

static void
msort_rec(unsigned char *v, unsigned char *tmp, size_t n, size_t size,
    int (*cmp)(const void *, const void *, const void *), const void *ctx)
{
	size_t mid = n / 2, i = 0, j = mid, o = 0;

	if (n < 2)
		return;
	msort_rec(v, tmp, mid, size, cmp, ctx);
	msort_rec(v + mid * size, tmp, n - mid, size, cmp, ctx);
	while (i < mid && j < n) {
		bool left = cmp(v + i * size, v + j * size, ctx) <= 0;

		memcpy(tmp + o++ * size, v + (left ? i++ : j++) * size, size);
	}
	memcpy(tmp + o * size, v + i * size, (mid - i) * size);
	o += mid - i;
	memcpy(tmp + o * size, v + j * size, (n - j) * size);
	memcpy(v, tmp, n * size);
}

/*
 * msort sorts like qsort(), but stably and passing `ctx` to `cmp`: qsort()
 * has no context argument, and butler-gen keeps no globals. Returns false
 * when out of memory.
 */
static bool
msort(void *base, size_t n, size_t size,
    int (*cmp)(const void *, const void *, const void *), const void *ctx)
{
	unsigned char *tmp;

	if (n < 2)
		return true;
	tmp = malloc(n * size);
	if (tmp == NULL)
		return false;
	msort_rec(base, tmp, n, size, cmp, ctx);
	free(tmp);
	return true;
}

static int
by_name_cmp(const void *pa, const void *pb, const void *arg)
{
	const struct ctx *c = arg;

	return strcmp(c->spec->msgs[*(const unsigned *)pa].name,
	    c->spec->msgs[*(const unsigned *)pb].name);
}

/* find_msg returns the index of message `name`, or -1. */
static int
find_msg(const struct ctx *c, const char *name)
{
	size_t lo = 0, hi = c->spec->n_msgs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(name, c->spec->msgs[c->by_name[mid]].name);

		if (r == 0)
			return (int)c->by_name[mid];
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

/* resolve looks up a message named by string value `v` for `what`. */
static int
resolve(struct ctx *c, const struct jv *v, const char *what, const char *where)
{
	char q[QUOTE_MAX];
	struct hint h;
	int m;

	if (!expect(
	        c, v, cJSON_IsString(v->json), what, where, "a message name"))
		return -1;
	m = find_msg(c, v->json->valuestring);
	if (m >= 0)
		return m;
	hint_init(&h);
	hint_add(&h, v->json->valuestring, c->msg_names, c->spec->n_msgs);
	butler__gen_error(c->d, v->at, "%s%s names undeclared message '%s'%s",
	    what, where, butler__gen_quote(q, sizeof q, v->json->valuestring),
	    hint_text(&h));
	return -1;
}

/*
 * build_imports reads the "imports" array: paths of other specs, relative
 * to this one's directory. Only their form is checked here; gen.c reads
 * them.
 */
static void
build_imports(struct ctx *c, const struct jv *v)
{
	struct spec *s = c->spec;

	if (v == NULL)
		return;
	if (!expect(c, v, cJSON_IsArray(v->json), "'imports'", "",
	        "an array of spec paths"))
		return;
	if (v->n_kids == 0)
		return;
	s->imports = calloc(v->n_kids, sizeof *s->imports);
	if (s->imports == NULL) {
		c->oom = true;
		return;
	}
	for (const struct jv *k = v->kid; k != NULL; k = k->next) {
		if (!expect(c, k, cJSON_IsString(k->json), "an import", "",
		        "a string (the path of a spec file)"))
			continue;
		if (k->json->valuestring[0] == '\0') {
			butler__gen_error(c->d, k->at, "import path is empty");
			continue;
		}
		s->imports[s->n_imports].path = k->json->valuestring;
		s->imports[s->n_imports].at = k->at;
		s->n_imports++;
	}
}

static void
build_top(struct ctx *c, const struct jv *root)
{
	struct spec *s = c->spec;
	const struct jv *v;
	char q[QUOTE_MAX];

	check_members(
	    c, root, "key", top_keys, COUNT(top_keys), "the spec", NULL);
	v = butler__gen_json_get(root, "butler");
	if (v == NULL) {
		butler__gen_error(c->d, root->at,
		    "missing key 'butler' (the schema "
		    "version: write \"butler\": %d)",
		    SPEC_VERSION);
	} else if (expect(c, v, cJSON_IsNumber(v->json), "'butler'", "",
	               "a number")
	    && v->json->valuedouble != SPEC_VERSION) {
		butler__gen_error(c->d, v->at,
		    "unsupported schema version %g (this "
		    "butler-gen reads version %d)",
		    v->json->valuedouble, SPEC_VERSION);
	}
	v = butler__gen_json_get(root, "app");
	if (v == NULL) {
		butler__gen_error(c->d, root->at,
		    "missing key 'app' (the prefix of every "
		    "generated name)");
	} else if (expect(c, v, cJSON_IsString(v->json), "'app'", "",
	               "a string")) {
		s->app = v->json->valuestring;
		s->app_at = v->at;
		c->app_ok = check_name(c, s->app, v->at, "app");
		if (c->app_ok && strcmp(s->app, "butler") == 0) {
			butler__gen_error(c->d, v->at,
			    "app name '%s' is reserved for the "
			    "runtime's own names",
			    butler__gen_quote(q, sizeof q, s->app));
			c->app_ok = false;
		}
		if (c->app_ok)
			s->app_upper = upper_dup(c, s->app);
	}
	s->doc = get_doc(c, root, "");
	s->version = get_version(c, root);
	build_imports(c, butler__gen_json_get(root, "imports"));
}

/* top_object returns the object member `key` of the root, reporting it
 * missing, of the wrong type, or empty. */
static const struct jv *
top_object(struct ctx *c, const struct jv *root, const char *key,
    const char *missing, const char *empty)
{
	const struct jv *v = butler__gen_json_get(root, key);
	char what[32];

	snprintf(what, sizeof what, "'%s'", key);
	if (v == NULL) {
		butler__gen_error(
		    c->d, root->at, "missing key '%s' (%s)", key, missing);
		return NULL;
	}
	if (!expect(c, v, cJSON_IsObject(v->json), what, "", "an object"))
		return NULL;
	if (v->n_kids == 0) {
		butler__gen_error(c->d, v->at, "%s", empty);
		return NULL;
	}
	return v;
}

/* declare_messages is pass 1: names only, so that fields, replies and
 * accepts may refer to messages declared further down. */
static void
declare_messages(struct ctx *c, const struct jv *obj)
{
	struct spec *s = c->spec;
	bool *dup = calloc(obj->n_kids, sizeof *dup);
	char q[QUOTE_MAX];
	size_t i = 0;

	s->msgs = calloc(obj->n_kids, sizeof *s->msgs);
	c->msg_nodes = calloc(obj->n_kids, sizeof *c->msg_nodes);
	c->msg_names = calloc(obj->n_kids, sizeof *c->msg_names);
	c->msg_ok = calloc(obj->n_kids, sizeof *c->msg_ok);
	c->by_name = calloc(obj->n_kids, sizeof *c->by_name);
	if (dup == NULL || s->msgs == NULL || c->msg_nodes == NULL
	    || c->msg_names == NULL || c->msg_ok == NULL
	    || c->by_name == NULL) {
		c->oom = true;
		goto out;
	}
	check_members(c, obj, "message", NULL, 0, NULL, dup);
	for (const struct jv *k = obj->kid; k != NULL; k = k->next, i++) {
		struct message *m;
		bool ok;

		if (dup[i])
			continue;
		m = &s->msgs[s->n_msgs];
		m->name = k->key;
		m->at = k->key_at;
		m->reply = -1;
		m->progress = -1;
		if (s->n_msgs == BUTLER_MAX_MESSAGES)
			butler__gen_error(c->d, m->at,
			    "the spec declares %zu messages, more than the %u "
			    "a spec may have (BUTLER_MAX_MESSAGES): '%s' is "
			    "one too many",
			    obj->n_kids, BUTLER_MAX_MESSAGES,
			    butler__gen_quote(q, sizeof q, m->name));
		ok = check_name(c, m->name, m->at, "message");
		butler__gen_quote(q, sizeof q, m->name);
		if (ok && in_list(m->name, builtin, N_BUILTIN)) {
			butler__gen_error(c->d, m->at,
			    "message name '%s' is a field type", q);
			ok = false;
		}
		if (ok
		    && (strcmp(m->name, "on_start") == 0
		        || strcmp(m->name, "on_stop") == 0)) {
			butler__gen_error(c->d, m->at,
			    "message name '%s' is reserved for "
			    "the handler table's own '%s'",
			    q, q);
			ok = false;
		}
		if (ok)
			m->upper = upper_dup(c, m->name);
		c->msg_ok[s->n_msgs] = ok;
		c->msg_nodes[s->n_msgs] = k;
		c->msg_names[s->n_msgs] = m->name;
		c->by_name[s->n_msgs] = s->n_msgs;
		s->n_msgs++;
	}
	if (!msort(c->by_name, s->n_msgs, sizeof *c->by_name, by_name_cmp, c))
		c->oom = true;
out:
	free(dup);
}

static void
build_fields(
    struct ctx *c, struct message *m, const struct jv *obj, const char *where)
{
	struct spec *s = c->spec;
	bool *dup;
	char q[QUOTE_MAX];
	size_t i = 0;

	if (!expect(c, obj, cJSON_IsObject(obj->json), "'fields'", where,
	        "an object"))
		return;
	if (obj->n_kids == 0)
		return;
	dup = calloc(obj->n_kids, sizeof *dup);
	m->fields = calloc(obj->n_kids, sizeof *m->fields);
	if (dup == NULL || m->fields == NULL) {
		free(dup);
		c->oom = true;
		return;
	}
	check_members(c, obj, "field", NULL, 0, NULL, dup);
	for (const struct jv *k = obj->kid; k != NULL; k = k->next, i++) {
		struct field *f = &m->fields[m->n_fields];
		const char *type;
		struct hint h;
		size_t t;
		int target;

		if (dup[i])
			continue;
		f->name = k->key;
		f->at = k->key_at;
		f->type_at = k->at;
		check_name(c, f->name, f->at, "field");
		if (!cJSON_IsString(k->json)) {
			butler__gen_error(c->d, k->at,
			    "type of field '%s'%s must be a string, not %s",
			    butler__gen_quote(q, sizeof q, f->name), where,
			    butler__gen_json_kind(k));
			continue;
		}
		type = k->json->valuestring;
		for (t = 0; t < N_BUILTIN; t++)
			if (strcmp(type, builtin[t]) == 0)
				break;
		if (t < N_BUILTIN) {
			f->type = (enum ftype)t;
			s->uses_string |= f->type == FT_STRING;
			s->uses_bytes |= f->type == FT_BYTES;
			s->uses_buf |= f->type == FT_BUF;
			m->n_fields++;
			continue;
		}
		target = find_msg(c, type);
		if (target >= 0) {
			f->type = FT_MSG;
			f->msg = (unsigned)target;
			s->msgs[target].used = true;
			m->n_fields++;
			continue;
		}
		hint_init(&h);
		hint_add(&h, type, builtin, N_BUILTIN);
		hint_add(&h, type, c->msg_names, s->n_msgs);
		butler__gen_error(c->d, k->at, "unknown field type '%s'%s",
		    butler__gen_quote(q, sizeof q, type), hint_text(&h));
	}
	free(dup);
}

static void
build_progress(
    struct ctx *c, struct message *m, const struct jv *v, const char *where)
{
	const struct jv *name = v, *latest;
	char in[QUOTE_MAX + 32];
	int p;

	if (cJSON_IsObject(v->json)) {
		snprintf(in, sizeof in, "'progress'%s", where);
		check_members(c, v, "key", progress_keys, COUNT(progress_keys),
		    in, NULL);
		name = butler__gen_json_get(v, "message");
		if (name == NULL) {
			butler__gen_error(c->d, v->at,
			    "'progress'%s has no 'message'", where);
			return;
		}
		latest = butler__gen_json_get(v, "latest");
		if (latest != NULL
		    && expect(c, latest, cJSON_IsBool(latest->json),
		        "'latest'", where, "true or false"))
			m->progress_latest = cJSON_IsTrue(latest->json);
	} else if (!cJSON_IsString(v->json)) {
		expect(c, v, false, "'progress'", where,
		    "a message name or an object");
		return;
	}
	p = resolve(c, name, "'progress'", where);
	if (p >= 0) {
		m->progress = p;
		c->spec->msgs[p].used = true;
	}
}

/*
 * open_entity checks that message or server `q` (quoted) is an object and
 * knows its keys, and sets `where` to " of message 'q'" for the messages
 * about its members.
 */
static bool
open_entity(struct ctx *c, const struct jv *v, const char *kind, const char *q,
    const char *const *known, size_t n_known, char *where, size_t size)
{
	if (!cJSON_IsObject(v->json)) {
		butler__gen_error(c->d, v->at,
		    "%s '%s' must be an object, not %s", kind, q,
		    butler__gen_json_kind(v));
		return false;
	}
	snprintf(where, size, "%s '%s'", kind, q);
	check_members(c, v, "key", known, n_known, where, NULL);
	snprintf(where, size, " of %s '%s'", kind, q);
	return true;
}

static void
build_messages(struct ctx *c)
{
	struct spec *s = c->spec;
	char where[QUOTE_MAX + 16], q[QUOTE_MAX];

	for (unsigned i = 0; i < s->n_msgs && !butler__gen_diag_full(c->d);
	     i++) {
		struct message *m = &s->msgs[i];
		const struct jv *v = c->msg_nodes[i], *f, *r, *p;

		butler__gen_quote(q, sizeof q, m->name);
		if (!open_entity(c, v, "message", q, msg_keys, COUNT(msg_keys),
		        where, sizeof where)) {
			m->used = true; /* one error about it is enough */
			continue;
		}
		f = butler__gen_json_get(v, "fields");
		if (f != NULL)
			build_fields(c, m, f, where);
		r = butler__gen_json_get(v, "reply");
		if (r != NULL) {
			int reply = resolve(c, r, "'reply'", where);

			m->request = true;
			if (reply >= 0) {
				m->reply = reply;
				s->msgs[reply].used = true;
			}
		}
		p = butler__gen_json_get(v, "progress");
		if (p != NULL && r == NULL)
			butler__gen_error(c->d, p->key_at,
			    "'progress'%s needs a 'reply': only "
			    "a request reports progress",
			    where);
		else if (p != NULL)
			build_progress(c, m, p, where);
		m->doc = get_doc(c, v, where);
	}
}

static void
build_accepts(
    struct ctx *c, struct server *sv, const struct jv *v, const char *where)
{
	struct spec *s = c->spec;
	int *seen = NULL; /* per message: accepts position + 1, or 0 */
	char q[QUOTE_MAX], sq[QUOTE_MAX];

	butler__gen_quote(sq, sizeof sq, sv->name);
	if (!expect(c, v, cJSON_IsArray(v->json), "'accepts'", where,
	        "an array of message names"))
		return;
	/* A server may accept nothing: a GUI that only makes requests gets
	 * its answers without accepting a message. */
	if (v->n_kids == 0)
		return;
	sv->accepts = calloc(v->n_kids, sizeof *sv->accepts);
	sv->accepts_at = calloc(v->n_kids, sizeof *sv->accepts_at);
	seen = calloc(s->n_msgs ? s->n_msgs : 1, sizeof *seen);
	if (sv->accepts == NULL || sv->accepts_at == NULL || seen == NULL) {
		c->oom = true;
		goto out;
	}
	for (const struct jv *k = v->kid; k != NULL; k = k->next) {
		int m = resolve(c, k, "'accepts'", where);

		if (m < 0)
			continue;
		if (seen[m]) {
			butler__gen_quote(q, sizeof q, s->msgs[m].name);
			butler__gen_error(c->d, k->at,
			    "server '%s' accepts '%s' twice", sq, q);
			butler__gen_note(c->d, sv->accepts_at[seen[m] - 1],
			    "'%s' first accepted here", q);
			continue;
		}
		if (sv->n_accepts == BUTLER_MAX_ACCEPTS)
			butler__gen_error(c->d, k->at,
			    "server '%s' accepts more than the %u messages a "
			    "server may accept (BUTLER_MAX_ACCEPTS)",
			    sq, BUTLER_MAX_ACCEPTS);
		sv->accepts[sv->n_accepts] = (unsigned)m;
		sv->accepts_at[sv->n_accepts] = k->at;
		sv->n_accepts++;
		seen[m] = (int)sv->n_accepts;
		s->msgs[m].used = true;
	}
out:
	free(seen);
}

/* find_field returns the index of field `name` of message `m`, or -1. */
static int
find_field(const struct message *m, const char *name)
{
	for (unsigned k = 0; k < m->n_fields; k++)
		if (strcmp(m->fields[k].name, name) == 0)
			return (int)k;
	return -1;
}

/* accepted returns the position of message `m` in sv's accepts, or -1. */
static int
accepted(const struct server *sv, unsigned m)
{
	for (unsigned k = 0; k < sv->n_accepts; k++)
		if (sv->accepts[k] == m)
			return (int)k;
	return -1;
}

/* type_name is a field's type as the spec writes it. */
static const char *
type_name(const struct spec *s, const struct field *f)
{
	return f->type == FT_MSG ? s->msgs[f->msg].name : builtin[f->type];
}

/* key_type_ok says whether a field of type t can be a routing key: what
 * butler_key_desc reads, an integer of 1, 2, 4 or 8 bytes or a string.
 * enum ftype has bool and the integers in one run. */
static bool
key_type_ok(enum ftype t)
{
	return t == FT_STRING || (t >= FT_BOOL && t <= FT_U64);
}

/*
 * build_route reads "route": "round_robin", "least_loaded" or
 * { "key": "<field>" }. *key_at receives the key's position, for notes.
 */
static void
build_route(struct ctx *c, struct server *sv, const struct jv *v,
    const char *where, struct loc *key_at)
{
	char in[QUOTE_MAX + 32], of[QUOTE_MAX + 32];
	unsigned r = ROUTE_ROUND_ROBIN;
	const struct jv *key;

	if (cJSON_IsString(v->json)) {
		if (choice_of(c, v, "route", routes, COUNT(routes),
		        "{ \"key\": \"<field>\" }", &r, where))
			sv->route = (enum route_kind)r;
		return;
	}
	if (!expect(c, v, cJSON_IsObject(v->json), "'route'", where,
	        "a string or an object"))
		return;
	snprintf(in, sizeof in, "'route'%s", where);
	check_members(c, v, "key", route_keys, COUNT(route_keys), in, NULL);
	key = butler__gen_json_get(v, "key");
	if (key == NULL) {
		butler__gen_error(c->d, v->at,
		    "'route'%s has no 'key' (the field to route by)", where);
		return;
	}
	snprintf(of, sizeof of, " of 'route'%s", where);
	if (!expect(c, key, cJSON_IsString(key->json), "'key'", of,
	        "a field name"))
		return;
	sv->route = ROUTE_KEY;
	sv->route_key = key->json->valuestring;
	*key_at = key->at;
}

/*
 * check_keys finds the routing key of server `sv` in every message it
 * accepts: a field of that name, of a type butler_key_desc can read. Two
 * messages whose keys differ in type may send equal values to different
 * instances (the runtime hashes the bytes), which draws a warning.
 */
static void
check_keys(struct ctx *c, struct server *sv, struct loc key_at, const char *q)
{
	const struct spec *s = c->spec;
	const struct field *first = NULL;
	const struct message *first_m = NULL;
	char kq[QUOTE_MAX], mq[QUOTE_MAX], tq[QUOTE_MAX], fq[QUOTE_MAX];
	char pq[QUOTE_MAX];

	butler__gen_quote(kq, sizeof kq, sv->route_key);
	for (unsigned k = 0; k < sv->n_accepts; k++) {
		const struct message *m = &s->msgs[sv->accepts[k]];
		int f = find_field(m, sv->route_key);
		const struct field *fd;

		butler__gen_quote(mq, sizeof mq, m->name);
		if (f < 0) {
			struct hint h;

			hint_init(&h);
			for (unsigned j = 0; j < m->n_fields; j++)
				hint_add(
				    &h, sv->route_key, &m->fields[j].name, 1);
			butler__gen_error(c->d, sv->accepts_at[k],
			    "message '%s' has no field '%s', the routing key "
			    "of server '%s'%s",
			    mq, kq, q, hint_text(&h));
			butler__gen_note(c->d, key_at,
			    "server '%s' routes by key '%s' here", q, kq);
			continue;
		}
		fd = &m->fields[f];
		butler__gen_quote(tq, sizeof tq, type_name(s, fd));
		if (!key_type_ok(fd->type)) {
			butler__gen_error(c->d, fd->type_at,
			    "field '%s' of message '%s' is a '%s', and server "
			    "'%s' routes by it: a routing key must be an "
			    "integer, a bool or a string",
			    kq, mq, tq, q);
			butler__gen_note(c->d, key_at,
			    "server '%s' routes by key '%s' here", q, kq);
			continue;
		}
		sv->kinds[k].key_field = (unsigned)f;
		if (first == NULL) {
			first = fd;
			first_m = m;
			continue;
		}
		if (fd->type == first->type)
			continue;
		butler__gen_warning(c->d, fd->type_at,
		    "routing key '%s' of server '%s' is a '%s' in message "
		    "'%s' "
		    "but a '%s' in message '%s': equal values of the two may "
		    "go to different instances",
		    kq, q, tq, mq,
		    butler__gen_quote(fq, sizeof fq, type_name(s, first)),
		    butler__gen_quote(pq, sizeof pq, first_m->name));
		butler__gen_note(c->d, first->type_at,
		    "'%s' of message '%s' declared here", kq, pq);
	}
}

/*
 * build_kinds reads "kinds": per accepted message, what it does beyond
 * the server's defaults. nodes[k] receives the entry of kind k + 1.
 * Returns whether any entry was given.
 */
static bool
build_kinds(struct ctx *c, struct server *sv, const struct jv *v,
    const struct jv **nodes, const char *where, const char *q)
{
	bool *dup, any = false;
	char kq[QUOTE_MAX], in[2 * QUOTE_MAX + 32], of[2 * QUOTE_MAX + 40];
	size_t i = 0;

	if (!expect(c, v, cJSON_IsObject(v->json), "'kinds'", where,
	        "an object (message name -> its policy)")
	    || v->n_kids == 0)
		return false;
	dup = calloc(v->n_kids, sizeof *dup);
	if (dup == NULL) {
		c->oom = true;
		return false;
	}
	check_members(c, v, "kind", NULL, 0, NULL, dup);
	for (const struct jv *e = v->kid; e != NULL; e = e->next, i++) {
		struct kind_policy *p;
		unsigned full;
		long n;
		int m, pos;

		if (dup[i])
			continue;
		butler__gen_quote(kq, sizeof kq, e->key);
		m = find_msg(c, e->key);
		if (m < 0) {
			struct hint h;

			hint_init(&h);
			hint_add(&h, e->key, c->msg_names, c->spec->n_msgs);
			butler__gen_error(c->d, e->key_at,
			    "'kinds'%s names undeclared message '%s'%s", where,
			    kq, hint_text(&h));
			continue;
		}
		pos = accepted(sv, (unsigned)m);
		if (pos < 0) {
			butler__gen_error(c->d, e->key_at,
			    "'kinds'%s names message '%s', which server '%s' "
			    "does not accept",
			    where, kq, q);
			continue;
		}
		snprintf(in, sizeof in, "kind '%s' of server '%s'", kq, q);
		if (!cJSON_IsObject(e->json)) {
			butler__gen_error(c->d, e->at,
			    "%s must be an object, not %s", in,
			    butler__gen_json_kind(e));
			continue;
		}
		check_members(
		    c, e, "key", kind_keys, COUNT(kind_keys), in, NULL);
		snprintf(of, sizeof of, " of %s", in);
		nodes[pos] = e;
		any = true;
		p = &sv->kinds[pos];
		full = p->full;
		if (get_choice(c, e, "full", fulls, COUNT(fulls), &full, of))
			p->full = (enum full_kind)full;
		n = p->block_timeout_ms;
		if (get_int(c, e, "block_timeout_ms", -1, SPEC_MS_MAX, &n, of))
			p->block_timeout_ms = (int)n;
		n = (long)p->max_handler_ms;
		/* 0 would mean "the server's" to the runtime: a kind exempts
		 * itself with a long limit instead. */
		if (get_int(c, e, "max_handler_ms", 1, SPEC_MS_MAX, &n, of))
			p->max_handler_ms = (unsigned)n;
	}
	free(dup);
	return any;
}

/*
 * build_tick reads "tick": { "message": <accepted message>, "every_ms": N }.
 * Whether the message owns fields is known only once nesting is resolved:
 * check_ticks() looks.
 */
static void
build_tick(struct ctx *c, struct server *sv, const struct jv *v,
    const char *where, const char *q)
{
	char in[QUOTE_MAX + 32], of[QUOTE_MAX + 32], mq[QUOTE_MAX];
	const struct jv *mv;
	long ms = 0;
	int m, pos;

	if (!expect(
	        c, v, cJSON_IsObject(v->json), "'tick'", where, "an object"))
		return;
	snprintf(in, sizeof in, "'tick'%s", where);
	check_members(c, v, "key", tick_keys, COUNT(tick_keys), in, NULL);
	snprintf(of, sizeof of, " of 'tick'%s", where);
	if (butler__gen_json_get(v, "every_ms") == NULL)
		butler__gen_error(c->d, v->at,
		    "'tick'%s has no 'every_ms' (its period in milliseconds)",
		    where);
	else if (!get_int(c, v, "every_ms", 1, SPEC_MS_MAX, &ms, of))
		ms = 0;
	mv = butler__gen_json_get(v, "message");
	if (mv == NULL) {
		butler__gen_error(c->d, v->at,
		    "'tick'%s has no 'message' (the message it delivers)",
		    where);
		return;
	}
	m = resolve(c, mv, "'message'", of);
	if (m < 0)
		return;
	pos = accepted(sv, (unsigned)m);
	if (pos < 0) {
		butler__gen_error(c->d, mv->at,
		    "'tick'%s names message '%s', which server '%s' does not "
		    "accept",
		    where,
		    butler__gen_quote(mq, sizeof mq, c->spec->msgs[m].name),
		    q);
		return;
	}
	if (ms == 0)
		return;
	sv->tick_kind = (unsigned)pos + 1;
	sv->tick_ms = (unsigned)ms;
	sv->tick_at = mv->at;
}

/*
 * build_policies reads what a server does beyond its inbox: routing and
 * work sharing in a pool, per-kind overload policies, the total bound,
 * the watchdog and the tick, and decides whether its descriptor needs a
 * per-kind table (.kinds). The server's loop, instances, full and
 * block_timeout_ms are read already.
 */
static void
build_policies(struct ctx *c, struct server *sv, const struct jv *k,
    const char *where, const char *q)
{
	const struct jv *route = butler__gen_json_get(k, "route");
	const struct jv *share = butler__gen_json_get(k, "share");
	const struct jv *kinds = butler__gen_json_get(k, "kinds");
	const struct jv *tick = butler__gen_json_get(k, "tick");
	const struct jv *bt = butler__gen_json_get(k, "block_timeout_ms");
	const struct jv *acc = butler__gen_json_get(k, "accepts");
	const struct jv **nodes = NULL; /* per kind: its "kinds" entry */
	bool pool = sv->instances != 1, external = sv->loop == LOOP_EXTERNAL;
	bool overrides = false, inherited = false;
	struct loc key_at = { 0, 0 };
	long n = 0;

	if (get_int(c, k, "max_queued", 0, BUTLER_MAX_CAPACITY, &n, where))
		sv->max_queued = (unsigned)n;
	n = 0;
	if (get_int(c, k, "max_handler_ms", 0, SPEC_MS_MAX, &n, where))
		sv->max_handler_ms = (unsigned)n;
	if (sv->n_accepts > 0) {
		sv->kinds = calloc(sv->n_accepts, sizeof *sv->kinds);
		nodes = calloc(sv->n_accepts, sizeof *nodes);
		if (sv->kinds == NULL || nodes == NULL) {
			c->oom = true;
			goto out;
		}
	}
	for (unsigned i = 0; i < sv->n_accepts; i++)
		sv->kinds[i] = (struct kind_policy) { sv->full,
			sv->block_timeout_ms, sv->max_handler_ms, 0 };

	if (route != NULL && external) {
		butler__gen_error(c->d, route->key_at,
		    "'route' does not apply to server '%s': its loop is "
		    "'external', so it is one instance, not a pool",
		    q);
	} else if (route != NULL) {
		build_route(c, sv, route, where, &key_at);
		if (!pool)
			butler__gen_warning(c->d, route->key_at,
			    "'route' has no effect: server '%s' has 1 "
			    "instance",
			    q);
	}
	if (sv->route == ROUTE_KEY && acc != NULL && cJSON_IsArray(acc->json)
	    && acc->n_kids == 0)
		butler__gen_error(c->d, key_at,
		    "server '%s' routes by key but accepts no message", q);

	if (share != NULL && external) {
		butler__gen_error(c->d, share->key_at,
		    "'share' does not apply to server '%s': its loop is "
		    "'external', so it is one instance, not a pool",
		    q);
	} else if (share != NULL
	    && expect(c, share, cJSON_IsBool(share->json), "'share'", where,
	        "true or false")
	    && cJSON_IsTrue(share->json)) {
		if (sv->route == ROUTE_KEY) {
			butler__gen_error(c->d, share->at,
			    "server '%s' cannot share work when it routes by "
			    "key: an idle instance would take a key's "
			    "messages from the one instance that handles "
			    "them in order",
			    q);
			butler__gen_note(
			    c->d, key_at, "server '%s' routes by key here", q);
		} else {
			sv->share = true;
			if (!pool)
				butler__gen_warning(c->d, share->key_at,
				    "'share' has no effect: server '%s' has 1 "
				    "instance",
				    q);
		}
	}

	if (kinds != NULL)
		overrides = build_kinds(c, sv, kinds, nodes, where, q);
	if (sv->route == ROUTE_KEY)
		check_keys(c, sv, key_at, q);
	if (tick != NULL)
		build_tick(c, sv, tick, where, q);

	/* The server's block_timeout_ms serves its own 'block' and every
	 * kind that blocks without a timeout of its own. */
	for (unsigned i = 0; i < sv->n_accepts; i++) {
		const struct jv *kb = nodes[i] == NULL
		    ? NULL
		    : butler__gen_json_get(nodes[i], "block_timeout_ms");

		if (sv->kinds[i].full != FULL_BLOCK)
			continue;
		if (kb == NULL)
			inherited = true;
	}
	if (bt != NULL && sv->full != FULL_BLOCK && !inherited)
		butler__gen_warning(c->d, bt->key_at,
		    "'block_timeout_ms' has no effect unless 'full' is "
		    "'block'");
	for (unsigned i = 0; i < sv->n_accepts; i++) {
		const struct jv *kb = nodes[i] == NULL
		    ? NULL
		    : butler__gen_json_get(nodes[i], "block_timeout_ms");

		if (kb != NULL && sv->kinds[i].full != FULL_BLOCK)
			butler__gen_warning(c->d, kb->key_at,
			    "'block_timeout_ms' has no effect unless 'full' "
			    "is 'block'");
	}
	sv->emit_kinds
	    = sv->route == ROUTE_KEY || overrides || sv->full > FULL_BLOCK;
out:
	free(nodes);
}

/*
 * check_ticks reports a tick message that owns fields: a tick is one
 * zeroed message delivered again and again, and the runtime refuses a
 * periodic message with a destructor. Runs once ownership is known.
 */
static void
check_ticks(struct ctx *c)
{
	const struct spec *s = c->spec;
	char mq[QUOTE_MAX], sq[QUOTE_MAX], fq[QUOTE_MAX], tq[QUOTE_MAX];

	for (unsigned i = 0; i < s->n_srvs; i++) {
		const struct server *sv = &s->srvs[i];
		const struct message *m;
		const struct field *f = NULL;

		if (sv->tick_kind == 0)
			continue;
		m = &s->msgs[sv->accepts[sv->tick_kind - 1]];
		if (!m->owned)
			continue;
		for (unsigned k = 0; k < m->n_fields && f == NULL; k++) {
			enum ftype t = m->fields[k].type;

			if (t == FT_STRING || t == FT_BYTES || t == FT_BUF
			    || (t == FT_MSG
			        && s->msgs[m->fields[k].msg].owned))
				f = &m->fields[k];
		}
		if (f == NULL)
			continue;
		butler__gen_quote(tq, sizeof tq, type_name(s, f));
		butler__gen_error(c->d, sv->tick_at,
		    "tick message '%s' of server '%s' must own no fields (a "
		    "tick delivers a zeroed copy again and again), but its "
		    "field '%s' %s '%s'%s",
		    butler__gen_quote(mq, sizeof mq, m->name),
		    butler__gen_quote(sq, sizeof sq, sv->name),
		    butler__gen_quote(fq, sizeof fq, f->name),
		    f->type == FT_MSG ? "holds" : "is a", tq,
		    f->type == FT_MSG ? ", which owns fields" : "");
	}
}

static void
build_servers(struct ctx *c, const struct jv *obj)
{
	struct spec *s = c->spec;
	bool *dup = calloc(obj->n_kids, sizeof *dup);
	char where[QUOTE_MAX + 16], q[QUOTE_MAX];
	size_t i = 0;

	s->srvs = calloc(obj->n_kids, sizeof *s->srvs);
	c->srv_ok = calloc(obj->n_kids, sizeof *c->srv_ok);
	if (dup == NULL || s->srvs == NULL || c->srv_ok == NULL) {
		c->oom = true;
		goto out;
	}
	check_members(c, obj, "server", NULL, 0, NULL, dup);
	for (const struct jv *k = obj->kid;
	     k != NULL && !butler__gen_diag_full(c->d); k = k->next, i++) {
		struct server *sv;
		const struct jv *acc, *inst, *rem;
		long instances = 1, capacity = SPEC_CAPACITY_DEFAULT;
		long block = -1;
		unsigned loop = LOOP_THREAD, full = FULL_FAIL;
		bool ok;

		if (dup[i])
			continue;
		sv = &s->srvs[s->n_srvs];
		sv->name = k->key;
		sv->at = k->key_at;
		ok = check_name(c, sv->name, sv->at, "server");
		if (ok)
			sv->upper = upper_dup(c, sv->name);
		c->srv_ok[s->n_srvs] = ok;
		s->n_srvs++;
		butler__gen_quote(q, sizeof q, sv->name);
		if (!open_entity(c, k, "server", q, srv_keys, COUNT(srv_keys),
		        where, sizeof where))
			continue;
		acc = butler__gen_json_get(k, "accepts");
		if (acc == NULL)
			butler__gen_error(c->d, sv->at,
			    "server '%s' has no 'accepts' (the "
			    "messages it handles)",
			    q);
		else
			build_accepts(c, sv, acc, where);
		get_choice(c, k, "loop", loops, COUNT(loops), &loop, where);
		get_choice(c, k, "full", fulls, COUNT(fulls), &full, where);
		inst = butler__gen_json_get(k, "instances");
		if (inst != NULL && cJSON_IsString(inst->json)) {
			if (strcmp(inst->json->valuestring, "auto") == 0)
				instances = BUTLER_INSTANCES_AUTO;
			else
				butler__gen_error(c->d, inst->at,
				    "'instances'%s must be a number or "
				    "'auto', not '%s'",
				    where,
				    butler__gen_quote(
				        q, sizeof q, inst->json->valuestring));
		} else {
			get_int(c, k, "instances", 1, BUTLER_MAX_INSTANCES,
			    &instances, where);
		}
		get_int(c, k, "capacity", 1, BUTLER_MAX_CAPACITY, &capacity,
		    where);
		get_int(
		    c, k, "block_timeout_ms", -1, INT32_MAX, &block, where);
		if (loop == LOOP_EXTERNAL
		    && instances == BUTLER_INSTANCES_AUTO)
			butler__gen_error(c->d, inst->at,
			    "server '%s' has loop 'external', "
			    "so 'instances' must be 1, not 'auto'",
			    q);
		else if (loop == LOOP_EXTERNAL && instances != 1)
			butler__gen_error(c->d, inst->at,
			    "server '%s' has loop 'external', "
			    "so 'instances' must be 1, not %ld",
			    q, instances);
		sv->loop = (enum loop_kind)loop;
		sv->full = (enum full_kind)full;
		sv->instances = (unsigned)instances;
		sv->capacity = (unsigned)capacity;
		sv->block_timeout_ms = (int)block;
		butler__gen_quote(q, sizeof q, sv->name);
		build_policies(c, sv, k, where, q);
		if (c->oom)
			goto out;
		rem = butler__gen_json_get(k, "remote");
		if (rem != NULL
		    && expect(c, rem, cJSON_IsBool(rem->json), "'remote'",
		        where, "true or false")) {
			sv->remote = cJSON_IsTrue(rem->json);
			sv->remote_at = rem->at;
		}
		sv->doc = get_doc(c, k, where);
	}
out:
	free(dup);
}

/*
 * check_cycles finds messages that contain themselves by value, directly
 * or through others, with an iterative depth-first search (a spec can nest
 * deeper than the stack should go). On an acyclic spec it also fills
 * spec->order with nested messages first and computes `owned`.
 */
static void
check_cycles(struct ctx *c)
{
	struct spec *s = c->spec;
	unsigned n = s->n_msgs, top = 0, n_order = 0;
	unsigned char *state
	    = calloc(n ? n : 1, 1); /* 0 new, 1 open, 2 done */
	unsigned *stack = calloc(n ? n : 1, sizeof *stack);
	unsigned *next = calloc(n ? n : 1, sizeof *next); /* next field */
	bool cyclic = false;

	s->order = calloc(n ? n : 1, sizeof *s->order);
	if (state == NULL || stack == NULL || next == NULL
	    || s->order == NULL) {
		c->oom = true;
		goto out;
	}
	for (unsigned root = 0; root < n; root++) {
		if (state[root])
			continue;
		stack[top++] = root;
		state[root] = 1;
		while (top > 0) {
			unsigned m = stack[top - 1];
			struct message *msg = &s->msgs[m];
			struct field *f;

			if (next[m] == msg->n_fields) {
				/* All nested messages are done: m can be
				 * emitted, and its ownership is known. */
				msg->wire = true;
				for (unsigned k = 0; k < msg->n_fields; k++) {
					enum ftype t = msg->fields[k].type;
					const struct message *sub = t == FT_MSG
					    ? &s->msgs[msg->fields[k].msg]
					    : NULL;

					msg->owned |= t == FT_STRING
					    || t == FT_BYTES || t == FT_BUF
					    || (sub != NULL && sub->owned);
					msg->wire &= t != FT_PTR
					    && (sub == NULL || sub->wire);
				}
				state[m] = 2;
				s->order[n_order++] = m;
				top--;
				continue;
			}
			f = &msg->fields[next[m]++];
			if (f->type != FT_MSG || state[f->msg] == 2)
				continue;
			if (state[f->msg] == 0) {
				state[f->msg] = 1;
				stack[top++] = f->msg;
				continue;
			}
			cyclic = true;
			{
				struct sbuf path = { 0 };
				char q[QUOTE_MAX];
				unsigned from = top - 1;

				while (stack[from] != f->msg)
					from--;
				for (unsigned k = from; k < top; k++) {
					const struct message *pm
					    = &s->msgs[stack[k]];

					butler__gen_sb_printf(&path,
					    "%s.%s -> ", pm->name,
					    pm->fields[next[stack[k]] - 1]
					        .name);
				}
				butler__gen_sb_puts(
				    &path, s->msgs[f->msg].name);
				butler__gen_error(c->d, f->type_at,
				    "message '%s' contains itself by "
				    "value (%s)",
				    butler__gen_quote(
				        q, sizeof q, s->msgs[f->msg].name),
				    path.oom ? "..."
				             : butler__gen_sb_cstr(&path));
				butler__gen_sb_release(&path);
			}
		}
	}
	if (cyclic) {
		free(s->order);
		s->order = NULL;
	}
out:
	free(state);
	free(stack);
	free(next);
}

/*
 * check_sizes computes sizeof each message struct as an LP64 compiler lays
 * it out (x86-64 and AArch64 Linux, macOS: pointers and size_t of 8 bytes,
 * each member aligned to its size, the struct to its largest member), and
 * reports those beyond BUTLER_MAX_MESSAGE_SIZE, which butler_hub_new()
 * refuses. On an ABI with smaller pointers the structs are smaller. The
 * generated source asserts the limit on the real sizeof as well. Nested
 * messages come first in spec->order, so their sizes are known.
 */
static void
check_sizes(struct ctx *c)
{
	/* Size and alignment of each field type but FT_MSG, on LP64:
	 * bytes is { uint8_t *, size_t }, buf { void *, size_t, free_fn,
	 * void * }. */
	static const unsigned char sizes[] = {
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
		[FT_STRING] = 8,
		[FT_BYTES] = 16,
		[FT_BUF] = 32,
		[FT_PTR] = 8,
	};
	struct spec *s = c->spec;
	char q[QUOTE_MAX];

	for (unsigned i = 0; i < s->n_msgs; i++) {
		struct message *m = &s->msgs[s->order[i]];
		uint64_t off = 0;
		unsigned align = 1;

		for (unsigned k = 0; k < m->n_fields; k++) {
			const struct field *f = &m->fields[k];
			uint64_t size = f->type == FT_MSG
			    ? s->msgs[f->msg].size
			    : sizes[f->type];
			unsigned a = f->type == FT_MSG ? s->msgs[f->msg].align
			    : f->type == FT_BYTES || f->type == FT_BUF
			    ? 8
			    : sizes[f->type];

			off = (off + a - 1) / a * a + size;
			if (off > SPEC_SIZE_CAP)
				off = SPEC_SIZE_CAP;
			if (a > align)
				align = a;
		}
		if (m->n_fields == 0)
			off = 1; /* char empty_bt_ */
		m->size = (off + align - 1) / align * align;
		m->align = align;
		if (m->size <= BUTLER_MAX_MESSAGE_SIZE)
			continue;
		butler__gen_error(c->d, m->at,
		    "message '%s' is too large: %s%llu bytes on LP64, more "
		    "than the %u a message may have "
		    "(BUTLER_MAX_MESSAGE_SIZE)",
		    butler__gen_quote(q, sizeof q, m->name),
		    m->size >= SPEC_SIZE_CAP ? "at least " : "",
		    (unsigned long long)m->size, BUTLER_MAX_MESSAGE_SIZE);
	}
}

/* struct reach is how the search of check_remote() reached a message. */
struct reach {
	bool seen;
	int from;       /* the message it was reached from; -1: accepted */
	unsigned how;   /* REACH_* */
	unsigned field; /* REACH_FIELD: the field of `from` holding it */
	unsigned server;
};

enum { REACH_ACCEPT, REACH_REPLY, REACH_PROGRESS, REACH_FIELD };

static void
reach_push(struct reach *r, unsigned *queue, unsigned *tail, unsigned m,
    int from, unsigned how, unsigned field, unsigned server)
{
	if (r[m].seen)
		return;
	r[m] = (struct reach) { true, from, how, field, server };
	queue[(*tail)++] = m;
}

/*
 * report_ptr reports ptr field `k` of message `m`, naming the path by which
 * a remote server reaches it: "accepts ask -> reply answer -> answer.inner
 * -> wrap.p". `chain` has room for every message.
 */
static void
report_ptr(struct ctx *c, const struct reach *r, unsigned *chain, unsigned m,
    unsigned k)
{
	const struct spec *s = c->spec;
	const struct server *sv = &s->srvs[r[m].server];
	struct sbuf path = { 0 };
	char q1[QUOTE_MAX], q2[QUOTE_MAX], q3[QUOTE_MAX];
	unsigned n = 0;

	for (int x = (int)m; x >= 0; x = r[x].from)
		chain[n++] = (unsigned)x;
	while (n-- > 0) {
		const struct reach *step = &r[chain[n]];
		const char *name = s->msgs[chain[n]].name;

		butler__gen_quote(q1, sizeof q1, name);
		if (step->how == REACH_ACCEPT)
			butler__gen_sb_printf(&path, "accepts %s", q1);
		else if (step->how == REACH_REPLY)
			butler__gen_sb_printf(&path, " -> reply %s", q1);
		else if (step->how == REACH_PROGRESS)
			butler__gen_sb_printf(&path, " -> progress %s", q1);
		else
			butler__gen_sb_printf(&path, " -> %s.%s",
			    butler__gen_quote(
			        q2, sizeof q2, s->msgs[step->from].name),
			    butler__gen_quote(q3, sizeof q3,
			        s->msgs[step->from].fields[step->field].name));
	}
	butler__gen_sb_printf(&path, " -> %s.%s",
	    butler__gen_quote(q1, sizeof q1, s->msgs[m].name),
	    butler__gen_quote(q2, sizeof q2, s->msgs[m].fields[k].name));
	butler__gen_error(c->d, s->msgs[m].fields[k].type_at,
	    "field '%s' of message '%s' is a 'ptr', which cannot travel over "
	    "the wire, and remote server '%s' reaches it: %s",
	    butler__gen_quote(q1, sizeof q1, s->msgs[m].fields[k].name),
	    butler__gen_quote(q2, sizeof q2, s->msgs[m].name),
	    butler__gen_quote(q3, sizeof q3, sv->name),
	    path.oom ? "..." : butler__gen_sb_cstr(&path));
	butler__gen_note(
	    c->d, sv->remote_at, "server '%s' is remote here", q3);
	butler__gen_sb_release(&path);
}

/*
 * check_remote reports every ptr field that a remote server's messages
 * reach: the messages it accepts, their replies and progress messages, and
 * every message nested in those, at any depth. One search from all remote
 * servers at once (in spec order) finds, for each message, the shortest
 * path from the first server that reaches it, and each field is reported
 * once, however many servers reach it.
 */
static void
check_remote(struct ctx *c)
{
	const struct spec *s = c->spec;
	unsigned n = s->n_msgs, head = 0, tail = 0;
	struct reach *r = NULL;
	unsigned *queue = NULL, *chain = NULL;
	bool any = false;

	for (unsigned i = 0; i < s->n_srvs; i++)
		any |= s->srvs[i].remote;
	if (!any || n == 0)
		return;
	r = calloc(n, sizeof *r);
	queue = calloc(n, sizeof *queue);
	chain = calloc(n, sizeof *chain);
	if (r == NULL || queue == NULL || chain == NULL) {
		c->oom = true;
		goto out;
	}
	for (unsigned i = 0; i < s->n_srvs; i++)
		for (unsigned k = 0;
		     s->srvs[i].remote && k < s->srvs[i].n_accepts; k++)
			reach_push(r, queue, &tail, s->srvs[i].accepts[k], -1,
			    REACH_ACCEPT, 0, i);
	while (head < tail) {
		unsigned m = queue[head++];
		const struct message *msg = &s->msgs[m];

		for (unsigned k = 0; k < msg->n_fields; k++) {
			if (msg->fields[k].type == FT_PTR)
				report_ptr(c, r, chain, m, k);
			else if (msg->fields[k].type == FT_MSG)
				reach_push(r, queue, &tail, msg->fields[k].msg,
				    (int)m, REACH_FIELD, k, r[m].server);
		}
		if (msg->reply >= 0)
			reach_push(r, queue, &tail, (unsigned)msg->reply,
			    (int)m, REACH_REPLY, 0, r[m].server);
		if (msg->progress >= 0)
			reach_push(r, queue, &tail, (unsigned)msg->progress,
			    (int)m, REACH_PROGRESS, 0, r[m].server);
	}
out:
	free(r);
	free(queue);
	free(chain);
}

/* Namespaces of generated identifiers. Struct and enum tags share one,
 * functions, objects, typedefs and enumerators another; a macro clashes
 * with both. */
enum ns { NS_TAG = 1, NS_ORD = 2, NS_MACRO = 3 };

/* struct gname is one identifier the generator will emit. */
struct gname {
	size_t name;  /* offset in names */
	size_t owner; /* offset in owners: "message 'x'" */
	struct loc at;
	enum ns ns;
	unsigned seq;
};

/* struct names collects every generated identifier of a spec. */
struct names {
	struct ctx *c;
	struct sbuf text;
	struct gname *v;
	size_t n, cap;
	size_t owner; /* the current owner */
	struct loc at;
};

static void
owner(struct names *nm, struct loc at, const char *fmt, const char *a,
    const char *b)
{
	char qa[QUOTE_MAX], qb[QUOTE_MAX];

	nm->owner = nm->text.len;
	nm->at = at;
	butler__gen_sb_printf(&nm->text, fmt,
	    butler__gen_quote(qa, sizeof qa, a),
	    b ? butler__gen_quote(qb, sizeof qb, b) : "");
	butler__gen_sb_putn(&nm->text, "", 1);
}

static void name(struct names *nm, enum ns ns, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
name(struct names *nm, enum ns ns, const char *fmt, ...)
{
	va_list ap;

	if (nm->n == nm->cap) {
		size_t cap = nm->cap ? nm->cap * 2 : 256;
		struct gname *v = realloc(nm->v, cap * sizeof *v);

		if (v == NULL) {
			nm->c->oom = true;
			return;
		}
		nm->v = v;
		nm->cap = cap;
	}
	nm->v[nm->n].name = nm->text.len;
	nm->v[nm->n].owner = nm->owner;
	nm->v[nm->n].at = nm->at;
	nm->v[nm->n].ns = ns;
	nm->v[nm->n].seq = (unsigned)nm->n;
	nm->n++;
	va_start(ap, fmt);
	butler__gen_sb_vprintf(&nm->text, fmt, ap);
	va_end(ap);
	butler__gen_sb_putn(&nm->text, "", 1);
}

static int
gname_cmp(const void *pa, const void *pb, const void *arg)
{
	const struct gname *a = pa, *b = pb;
	const char *text = arg;
	int r = strcmp(text + a->name, text + b->name);

	if (r != 0)
		return r;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static bool
loc_before(struct loc a, struct loc b)
{
	return a.line < b.line || (a.line == b.line && a.col < b.col);
}

/* collect_names lists what emit_header.c and emit_source.c will declare;
 * keep the three in step. */
static void
collect_names(struct names *nm)
{
	const struct spec *s = nm->c->spec;
	const char *a = s->app, *A = s->app_upper;

	owner(nm, s->app_at, "app '%s'%s", a, NULL);
	name(nm, NS_TAG, "%s_msg_id", a);
	name(nm, NS_TAG, "%s_server_id", a);
	name(nm, NS_MACRO, "%s_MSG_COUNT", A);
	name(nm, NS_MACRO, "%s_SERVER_COUNT", A);
	name(nm, NS_MACRO, "%s_WIRE_HASH", A);
	name(nm, NS_ORD, "%s_spec", a);
	name(nm, NS_ORD, "%s_messages_bt_", a);
	name(nm, NS_ORD, "%s_servers_bt_", a);
	if (s->n_imports > 0)
		name(nm, NS_ORD, "%s_imports_bt_", a);
	if (s->uses_bytes)
		name(nm, NS_TAG, "%s_bytes", a);
	if (s->uses_buf) {
		name(nm, NS_TAG, "%s_buf", a);
		name(nm, NS_ORD, "%s_buf_free_bt_", a);
	}
	for (unsigned i = 0; i < s->n_msgs; i++) {
		const struct message *m = &s->msgs[i];

		if (!nm->c->msg_ok[i])
			continue;
		owner(nm, m->at, "message '%s'%s", m->name, NULL);
		name(nm, NS_TAG, "%s_%s", a, m->name);
		name(nm, NS_ORD, "%s_MSG_%s", A, m->upper);
		name(nm, NS_ORD, "%s_%s_destroy", a, m->name);
		name(nm, NS_ORD, "%s_%s_destroy_bt_", a, m->name);
		if (m->wire) {
			name(nm, NS_ORD, "%s_%s_wire_size", a, m->name);
			name(nm, NS_ORD, "%s_%s_encode", a, m->name);
			name(nm, NS_ORD, "%s_%s_decode", a, m->name);
			name(nm, NS_ORD, "%s_%s_put_bt_", a, m->name);
			name(nm, NS_ORD, "%s_%s_get_bt_", a, m->name);
			name(nm, NS_ORD, "%s_%s_wire_size_bt_", a, m->name);
			name(nm, NS_ORD, "%s_%s_encode_bt_", a, m->name);
			name(nm, NS_ORD, "%s_%s_decode_bt_", a, m->name);
		}
		if (m->request) {
			name(nm, NS_ORD, "%s_%s_reply_fn", a, m->name);
			name(nm, NS_ORD, "%s_%s_reply_thunk_bt_", a, m->name);
			name(nm, NS_ORD, "%s_reply_%s", a, m->name);
			name(nm, NS_TAG, "%s_%s_promise", a, m->name);
			name(nm, NS_ORD, "%s_defer_%s", a, m->name);
			name(nm, NS_ORD, "%s_answer_%s", a, m->name);
			name(nm, NS_ORD, "%s_fail_%s", a, m->name);
			name(
			    nm, NS_ORD, "%s_%s_promise_cancelled", a, m->name);
			name(nm, NS_ORD, "%s_%s_promise_time_left_ms", a,
			    m->name);
		}
		if (m->progress >= 0) {
			name(nm, NS_ORD, "%s_%s_progress_fn", a, m->name);
			name(nm, NS_ORD, "%s_%s_progress_thunk_bt_", a,
			    m->name);
			name(nm, NS_ORD, "%s_progress_%s", a, m->name);
			name(nm, NS_ORD, "%s_progress_%s_promise", a, m->name);
		}
	}
	for (unsigned i = 0; i < s->n_srvs; i++) {
		const struct server *sv = &s->srvs[i];

		if (!nm->c->srv_ok[i])
			continue;
		owner(nm, sv->at, "server '%s'%s", sv->name, NULL);
		name(nm, NS_ORD, "%s_SERVER_%s", A, sv->upper);
		name(nm, NS_ORD, "%s_%s_NONE", A, sv->upper);
		name(nm, NS_TAG, "%s_%s_kind", a, sv->name);
		name(nm, NS_TAG, "%s_%s_msg", a, sv->name);
		name(nm, NS_TAG, "%s_%s_handlers", a, sv->name);
		name(nm, NS_ORD, "%s_%s_register", a, sv->name);
		/* a macro too, but function-like: only the same name used
		 * before '(' would clash, which this finds already */
		name(nm, NS_ORD, "%s_%s_register_each", a, sv->name);
		name(nm, NS_ORD, "%s_%s_msg_destroy", a, sv->name);
		name(nm, NS_ORD, "%s_send_%s", a, sv->name);
		name(nm, NS_ORD, "%s_%s_dispatch_bt_", a, sv->name);
		name(nm, NS_ORD, "%s_%s_check_bt_", a, sv->name);
		name(nm, NS_ORD, "%s_%s_accepts_bt_", a, sv->name);
		if (sv->emit_kinds)
			name(nm, NS_ORD, "%s_%s_kinds_bt_", a, sv->name);
		for (unsigned k = 0; k < sv->n_accepts; k++) {
			const struct message *m = &s->msgs[sv->accepts[k]];

			if (!nm->c->msg_ok[sv->accepts[k]])
				continue;
			owner(nm, sv->accepts_at[k],
			    "message '%s' in server '%s'", m->name, sv->name);
			name(nm, NS_ORD, "%s_%s_%s", A, sv->upper, m->upper);
			name(nm, NS_ORD, "%s_%s_%s_fn", a, sv->name, m->name);
			name(
			    nm, NS_ORD, "%s_send_%s_%s", a, sv->name, m->name);
			name(nm, NS_ORD, "%s_send_%s_%s_after", a, sv->name,
			    m->name);
			if (!m->owned)
				name(nm, NS_ORD, "%s_send_%s_%s_every", a,
				    sv->name, m->name);
			name(nm, NS_ORD, "%s_purge_%s_%s", a, sv->name,
			    m->name);
			if (m->request) {
				name(nm, NS_ORD, "%s_call_%s_%s", a, sv->name,
				    m->name);
				name(nm, NS_ORD, "%s_call_%s_%s_wait", a,
				    sv->name, m->name);
			}
		}
	}
}

/*
 * check_collisions reports generated names that two spec names produce
 * alike once prefixed and upper-cased: message 'w_msg' and server 'w'
 * both make struct app_w_msg; message 'Ping' and 'ping' both make
 * APP_MSG_PING. Each pair of clashing declarations is reported once.
 */
static void
check_collisions(struct ctx *c)
{
	struct names nm = { .c = c };
	size_t *pairs = NULL, n_pairs = 0;

	if (!c->app_ok || c->spec->app_upper == NULL)
		return;
	collect_names(&nm);
	if (nm.text.oom || c->oom) {
		c->oom = true;
		goto out;
	}
	pairs = calloc(2 * (DIAG_KEEP_MAX + 1), sizeof *pairs);
	if (pairs == NULL
	    || !msort(nm.v, nm.n, sizeof *nm.v, gname_cmp, nm.text.data)) {
		c->oom = true;
		goto out;
	}
	for (size_t r0 = 0, r1; r0 < nm.n; r0 = r1) {
		const char *text = nm.text.data;

		for (r1 = r0 + 1; r1 < nm.n
		     && strcmp(text + nm.v[r0].name, text + nm.v[r1].name)
		         == 0;
		     r1++)
			;
		/* In a run of equal names, each declaration clashing with an
		 * earlier one is reported once, against the earliest. */
		for (size_t j = r0; j < r1; j++) {
			const struct gname *x = &nm.v[j], *y = NULL;
			bool seen = false;

			for (size_t k = r0; k < r1; k++) {
				const struct gname *o = &nm.v[k];

				if ((o->ns & x->ns) == 0
				    || o->owner == x->owner
				    || !loc_before(o->at, x->at))
					continue;
				if (y == NULL || loc_before(o->at, y->at))
					y = o;
			}
			if (y == NULL)
				continue;
			for (size_t p = 0; p < n_pairs && !seen; p++)
				seen = pairs[2 * p] == x->owner
				    && pairs[2 * p + 1] == y->owner;
			if (seen || n_pairs > DIAG_KEEP_MAX)
				continue;
			pairs[2 * n_pairs] = x->owner;
			pairs[2 * n_pairs + 1] = y->owner;
			n_pairs++;
			butler__gen_error(c->d, x->at,
			    "%s collides with %s once prefixed: "
			    "both generate '%s%s'",
			    text + x->owner, text + y->owner,
			    x->ns == NS_TAG ? "struct " : "", text + x->name);
			butler__gen_note(
			    c->d, y->at, "%s declared here", text + y->owner);
		}
	}
out:
	free(pairs);
	free(nm.v);
	butler__gen_sb_release(&nm.text);
}

/*
 * check_member_macros reports a field or message name that is one of the
 * macros the header defines itself (APP_MSG_COUNT, APP_SERVER_COUNT,
 * APP_WIRE_HASH): the
 * name is used bare, after the #define. The include guard depends on the
 * file name, and gen.c checks it.
 */
static void
check_member_macros(struct ctx *c)
{
	const struct spec *s = c->spec;
	const char *A = s->app_upper;
	char q[QUOTE_MAX];
	size_t n;

	if (!c->app_ok || A == NULL)
		return;
	n = strlen(A);
	for (unsigned i = 0; i < s->n_msgs; i++) {
		const struct message *m = &s->msgs[i];

		for (unsigned k = 0; k <= m->n_fields; k++) {
			const char *name
			    = k < m->n_fields ? m->fields[k].name : m->name;
			struct loc at
			    = k < m->n_fields ? m->fields[k].at : m->at;

			/* A name that is a system macro was reported as
			 * one already. */
			if (strncmp(name, A, n) != 0
			    || (strcmp(name + n, "_MSG_COUNT") != 0
			        && strcmp(name + n, "_SERVER_COUNT") != 0
			        && strcmp(name + n, "_WIRE_HASH") != 0)
			    || butler__gen_macro_name(name, q, sizeof q))
				continue;
			butler__gen_error(c->d, at,
			    "%s name '%s' is a macro the generated header "
			    "defines for app '%s'",
			    k < m->n_fields ? "field" : "message",
			    butler__gen_quote(q, sizeof q, name), s->app);
		}
	}
}

int
butler__gen_spec_build(
    struct spec *spec, const struct jv *root, struct diag *d)
{
	struct ctx c = { .spec = spec, .d = d };
	const struct jv *msgs, *srvs;
	char q[QUOTE_MAX];

	memset(spec, 0, sizeof *spec);
	if (!cJSON_IsObject(root->json)) {
		butler__gen_error(d, root->at,
		    "a spec must be a JSON object, not %s",
		    butler__gen_json_kind(root));
		return 0;
	}
	build_top(&c, root);
	msgs = top_object(&c, root, "messages", "the message types, an object",
	    "the spec declares no messages");
	srvs = top_object(&c, root, "servers", "the servers, an object",
	    "the spec declares no servers");
	if (msgs != NULL)
		declare_messages(&c, msgs);
	if (c.oom)
		goto out;
	build_messages(&c);
	if (srvs != NULL && !c.oom)
		build_servers(&c, srvs);
	if (c.oom)
		goto out;
	check_cycles(&c);
	if (c.oom)
		goto out;
	if (spec->order != NULL) {
		check_sizes(&c);
		check_remote(&c);
		check_ticks(&c);
	}
	if (c.oom)
		goto out;
	check_collisions(&c);
	check_member_macros(&c);
	for (unsigned i = 0; i < spec->n_msgs; i++)
		if (!spec->msgs[i].used && c.msg_ok[i] && srvs != NULL)
			butler__gen_warning(d, spec->msgs[i].at,
			    "message '%s' is not used: no server accepts "
			    "it and no message refers to it",
			    butler__gen_quote(
			        q, sizeof q, spec->msgs[i].name));
out:
	free(c.msg_nodes);
	free(c.msg_names);
	free(c.by_name);
	free(c.msg_ok);
	free(c.srv_ok);
	return c.oom ? -1 : 0;
}

void
butler__gen_spec_release(struct spec *spec)
{
	for (unsigned i = 0; i < spec->n_msgs; i++) {
		free(spec->msgs[i].fields);
		free(spec->msgs[i].upper);
	}
	for (unsigned i = 0; i < spec->n_srvs; i++) {
		free(spec->srvs[i].accepts);
		free(spec->srvs[i].accepts_at);
		free(spec->srvs[i].kinds);
		free(spec->srvs[i].upper);
	}
	free(spec->imports);
	free(spec->msgs);
	free(spec->srvs);
	free(spec->order);
	free(spec->app_upper);
	memset(spec, 0, sizeof *spec);
}
