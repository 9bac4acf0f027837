/* SPDX-License-Identifier: MIT */
/* codegen/gen.c — the butler-gen library API (butler_gen.h). */
#define _XOPEN_SOURCE 700 /* realpath(), fdopen(), O_CLOEXEC */
#include "butler_gen.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <butler/gen.h>

#include "diag.h"
#include "emit.h"
#include "json.h"
#include "names.h"
#include "sbuf.h"
#include "spec.h"

/* SPEC_FILE_MAX bounds what butler-gen reads: a spec is a few kilobytes;
 * anything near this is a mistake (a wrong path), not a spec. */
#define SPEC_FILE_MAX (64u << 20)

/* NOT_REGULAR is what read_import() returns for a path that names no
 * regular file (a directory, a FIFO, a device): nothing to read a spec
 * from, and a FIFO would block. */
#define NOT_REGULAR (-1)

/*
 * struct unit is one spec file of a run: the spec given, or one it imports
 * (directly or not). Every file is read and checked once, whoever imports
 * it, and reports its problems at its own path.
 */
struct unit {
	char *path; /* as given, or the importer's directory + the import */
	char *id;   /* what makes two paths one file: realpath(), or the
	               lexically cleaned path when that fails */
	char *header_name;
	char *source_name;
	bool bad_base; /* the base name cannot name C files */
	struct diag diag;
	char *text; /* the spec, with the NUL cJSON wants after it */
	struct jdoc doc;
	struct spec spec;
	bool loading;           /* its imports are being read: on the stack */
	struct unit **deps;     /* per import: the spec read, or NULL */
	const struct unit *via; /* the first importer in hub order */
	struct loc via_at;      /* ... and its import string */
	const char *via_path;   /* ... as written there */
};

struct butler_gen {
	struct unit root;
	char *spec_name;     /* for the generated files; NULL: root.path */
	struct unit **units; /* every imported spec, once, in reading order */
	unsigned n_units;
	struct unit *stack[BUTLER_MAX_IMPORTS + 1]; /* being loaded */
	unsigned depth;
	butler_gen_reader_fn reader;
	void *reader_user;
	char **import_dirs; /* searched for relative imports, in order */
	unsigned n_import_dirs;
	unsigned max_errors;
	struct sbuf rendered;
	bool parsed; /* butler_gen_parse() ran */
	bool ok;     /* ... and found no error */
	bool oom;
	bool emitted;
	struct sbuf header;
	struct sbuf source;
};

/* base_of returns the file name of `path` without ".json". */
static const char *
base_of(const char *path, size_t *len)
{
	const char *slash = strrchr(path, '/');
	const char *b = slash ? slash + 1 : path;
	size_t n = strlen(b);

	if (n > 5 && strcmp(b + n - 5, ".json") == 0)
		n -= 5;
	*len = n;
	return b;
}

/* unit_init names the unit's files after `path` (taken over). Returns
 * false when out of memory; the unit must be released either way. */
static bool
unit_init(struct unit *u, char *path)
{
	const char *b;
	size_t n;

	memset(u, 0, sizeof *u);
	u->path = path;
	butler__gen_diag_init(&u->diag, path);
	if (path == NULL)
		return false;
	b = base_of(u->path, &n);
	u->header_name = malloc(n + 10);
	u->source_name = malloc(n + 10);
	if (u->header_name == NULL || u->source_name == NULL)
		return false;
	snprintf(u->header_name, n + 10, "%.*s.butler.h", (int)n, b);
	snprintf(u->source_name, n + 10, "%.*s.butler.c", (int)n, b);
	/* The header name goes into an #include and a guard. */
	u->bad_base = n == 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)b[i]) && !strchr("._-+", b[i]))
			u->bad_base = true;
	return true;
}

static void
unit_release(struct unit *u)
{
	butler__gen_spec_release(&u->spec);
	butler__gen_json_release(&u->doc);
	butler__gen_diag_release(&u->diag);
	free(u->deps);
	free(u->text);
	free(u->header_name);
	free(u->source_name);
	free(u->id);
	free(u->path);
}

int
butler_gen_new(butler_gen **out, const char *path)
{
	butler_gen *g = calloc(1, sizeof *g);

	*out = NULL;
	if (g == NULL)
		return BUTLER_GEN_ENOMEM;
	if (!unit_init(&g->root, strdup(path))) {
		butler_gen_free(g);
		return BUTLER_GEN_ENOMEM;
	}
	g->max_errors = 20;
	*out = g;
	return BUTLER_GEN_OK;
}

void
butler_gen_free(butler_gen *g)
{
	if (g == NULL)
		return;
	for (unsigned i = 0; i < g->n_units; i++) {
		unit_release(g->units[i]);
		free(g->units[i]);
	}
	free(g->units);
	unit_release(&g->root);
	butler__gen_sb_release(&g->rendered);
	butler__gen_sb_release(&g->header);
	butler__gen_sb_release(&g->source);
	for (unsigned i = 0; i < g->n_import_dirs; i++)
		free(g->import_dirs[i]);
	free(g->import_dirs);
	free(g->spec_name);
	free(g);
}

int
butler_gen_set_spec_name(butler_gen *g, const char *name)
{
	char *copy;

	if (g->emitted)
		return BUTLER_GEN_ESTATE;
	copy = strdup(name);
	if (copy == NULL)
		return BUTLER_GEN_ENOMEM;
	free(g->spec_name);
	g->spec_name = copy;
	return BUTLER_GEN_OK;
}

void
butler_gen_set_max_errors(butler_gen *g, unsigned max)
{
	g->max_errors = max;
}

void
butler_gen_set_reader(butler_gen *g, butler_gen_reader_fn fn, void *user)
{
	g->reader = fn;
	g->reader_user = user;
}

int
butler_gen_add_import_dir(butler_gen *g, const char *dir)
{
	char **dirs;
	char *copy;

	if (g->parsed)
		return BUTLER_GEN_ESTATE;
	dirs = realloc(
	    g->import_dirs, (g->n_import_dirs + 1) * sizeof *g->import_dirs);
	if (dirs == NULL)
		return BUTLER_GEN_ENOMEM;
	g->import_dirs = dirs;
	copy = strdup(dir);
	if (copy == NULL)
		return BUTLER_GEN_ENOMEM;
	g->import_dirs[g->n_import_dirs++] = copy;
	return BUTLER_GEN_OK;
}

/* errtext is strerror() in the lower case of the diagnostics. */
static const char *
errtext(int err, char *buf, size_t size)
{
	if (err == NOT_REGULAR) {
		snprintf(buf, size, "not a regular file");
		return buf;
	}
	snprintf(buf, size, "%s", strerror(err));
	buf[0] = (char)tolower((unsigned char)buf[0]);
	return buf;
}

/*
 * read_stream appends what `f` holds to `sb`, up to SPEC_FILE_MAX and a
 * bit. Returns 0, an errno value, or EFBIG when the file is too large.
 */
static int
read_stream(FILE *f, struct sbuf *sb)
{
	char buf[65536];
	size_t n;

	while (
	    (n = fread(buf, 1, sizeof buf, f)) > 0 && sb->len <= SPEC_FILE_MAX)
		butler__gen_sb_putn(sb, buf, n);
	if (ferror(f))
		return errno != 0 ? errno : EIO;
	if (sb->len > SPEC_FILE_MAX)
		return EFBIG;
	return sb->oom ? ENOMEM : 0;
}

/*
 * read_import is the default reader: a regular file only, so that a spec
 * naming a FIFO or a device cannot make butler-gen block or read forever.
 */
static int
read_import(void *user, const char *path, char **text, size_t *len)
{
	struct sbuf sb = { 0 };
	struct stat st;
	FILE *f;
	int fd, err;

	(void)user;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		err = S_ISREG(st.st_mode) ? errno : NOT_REGULAR;
		close(fd);
		return err;
	}
	f = fdopen(fd, "rb");
	if (f == NULL) {
		err = errno;
		close(fd);
		return err;
	}
	err = read_stream(f, &sb);
	fclose(f);
	if (err != 0) {
		butler__gen_sb_release(&sb);
		return err;
	}
	*len = sb.len;
	*text = sb.data != NULL ? sb.data : strdup("");
	return *text != NULL ? 0 : ENOMEM;
}

int
butler_gen_load(butler_gen *g)
{
	FILE *f;
	struct sbuf sb = { 0 };
	char e[128];
	int rv, err;

	if (g->parsed)
		return BUTLER_GEN_ESTATE;
	f = fopen(g->root.path, "rb");
	if (f == NULL) {
		butler__gen_error(&g->root.diag, (struct loc) { 0, 0 },
		    "cannot open the spec: %s", errtext(errno, e, sizeof e));
		return BUTLER_GEN_EIO;
	}
	err = read_stream(f, &sb);
	if (err == EFBIG) {
		butler__gen_error(&g->root.diag, (struct loc) { 0, 0 },
		    "the spec is larger than %u MiB", SPEC_FILE_MAX >> 20);
		rv = BUTLER_GEN_ESPEC;
	} else if (err == ENOMEM) {
		rv = BUTLER_GEN_ENOMEM;
	} else if (err != 0) {
		butler__gen_error(&g->root.diag, (struct loc) { 0, 0 },
		    "cannot read the spec: %s", errtext(err, e, sizeof e));
		rv = BUTLER_GEN_EIO;
	} else {
		rv = butler_gen_parse(g, butler__gen_sb_cstr(&sb), sb.len);
	}
	fclose(f);
	butler__gen_sb_release(&sb);
	return rv;
}

/* join_path returns `rel` read from the directory of `from`: `rel` itself
 * when absolute or when `from` has no directory. "./" parts are dropped. */
static char *
join_path(const char *from, const char *rel)
{
	const char *slash = strrchr(from, '/');
	size_t dir
	    = rel[0] == '/' || slash == NULL ? 0 : (size_t)(slash - from) + 1;
	char *p;

	while (rel[0] == '.' && rel[1] == '/') {
		rel += 2;
		while (rel[0] == '/')
			rel++;
	}
	p = malloc(dir + strlen(rel) + 1);
	if (p == NULL)
		return NULL;
	memcpy(p, from, dir);
	strcpy(p + dir, rel);
	return p;
}

/*
 * identity returns what names the file at `path` whatever the spelling:
 * its realpath(), or, for a path that does not resolve (a reader of its
 * own, a missing file), the path with "//", "." and "dir/.." folded.
 */
static char *
identity(const char *path)
{
	char *real = realpath(path, NULL);
	size_t *starts, n_parts = 0, o = 0;
	bool absolute = path[0] == '/';
	char *out;

	if (real != NULL)
		return real;
	out = malloc(strlen(path) + 2);
	starts = malloc((strlen(path) / 2 + 2) * sizeof *starts);
	if (out == NULL || starts == NULL) {
		free(out);
		free(starts);
		return NULL;
	}
	/* out holds the kept parts, each preceded by '/' (absolute) or by
	 * '/' after the first; starts[] says where each begins. */
	for (const char *p = path; *p != '\0';) {
		size_t n = strcspn(p, "/");
		bool up = n == 2 && p[0] == '.' && p[1] == '.';
		bool last_up = n_parts > 0
		    && strncmp(out + starts[n_parts - 1], "..", 2) == 0
		    && (out[starts[n_parts - 1] + 2] == '/'
		        || starts[n_parts - 1] + 2 == o);

		if (n == 0 || (n == 1 && p[0] == '.')) {
			/* "//" or "/./": nothing */
		} else if (up && n_parts > 0 && !last_up) {
			o = starts[--n_parts];
			if (o > 0)
				o--; /* its '/' */
		} else if (up && n_parts == 0 && absolute) {
			/* "/.." is "/" */
		} else {
			if (absolute || o > 0)
				out[o++] = '/';
			starts[n_parts++] = o;
			memcpy(out + o, p, n);
			o += n;
		}
		p += n;
		while (*p == '/')
			p++;
	}
	if (o == 0)
		out[o++] = absolute ? '/' : '.';
	out[o] = '\0';
	free(starts);
	return out;
}

/* join_dir returns `rel` read from directory `dir`. */
static char *
join_dir(const char *dir, const char *rel)
{
	size_t n = strlen(dir);
	char *from, *p;

	while (n > 1 && dir[n - 1] == '/')
		n--;
	from = malloc(n + 2);
	if (from == NULL)
		return NULL;
	memcpy(from, dir, n);
	strcpy(from + n, "/");
	p = join_path(from, rel);
	free(from);
	return p;
}

/*
 * probe says whether an import can be looked for at `path`: 0 when it is
 * there (for the default reader, anything stat() finds, so that reading
 * an unreadable file says why), ENOENT when it is not, ENOMEM. A reader
 * of the caller's is asked for the file itself.
 */
static int
probe(const butler_gen *g, const char *path)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int err;

	if (g->reader == NULL)
		err = stat(path, &st) == 0 ? 0 : errno;
	else
		err = g->reader(g->reader_user, path, &text, &len);
	if (err == 0)
		free(text);
	if (err == ENOENT || err == ENOTDIR)
		return ENOENT;
	return err == ENOMEM ? ENOMEM : 0;
}

/*
 * search_import finds relative import `imp` of `u` that is not beside `u`
 * (*path, replaced when found) in the import path, directory by directory.
 * Returns 0 when found, ENOMEM, or ENOENT after reporting, at the import
 * string, every directory searched.
 */
static int
search_import(
    butler_gen *g, struct unit *u, const struct import *imp, char **path)
{
	const char *slash = strrchr(u->path, '/');
	char q[QUOTE_MAX], qd[QUOTE_MAX], *own;
	struct sbuf where = { 0 };
	int err = probe(g, *path);

	if (err != ENOENT)
		return err;
	for (unsigned i = 0; i < g->n_import_dirs; i++) {
		char *found = join_dir(g->import_dirs[i], imp->path);

		if (found == NULL)
			return ENOMEM;
		err = probe(g, found);
		if (err == 0) {
			free(*path);
			*path = found;
			return 0;
		}
		free(found);
		if (err == ENOMEM)
			return ENOMEM;
	}
	own = slash == NULL ? strdup(".")
	                    : strndup(u->path, (size_t)(slash - u->path));
	if (own == NULL)
		return ENOMEM;
	butler__gen_sb_printf(&where, "'%s' (the importing spec's directory)",
	    butler__gen_quote(qd, sizeof qd, own[0] != '\0' ? own : "/"));
	free(own);
	for (unsigned i = 0; i < g->n_import_dirs; i++)
		butler__gen_sb_printf(&where, ", '%s'",
		    butler__gen_quote(qd, sizeof qd, g->import_dirs[i]));
	butler__gen_sb_puts(&where, " (the import path)");
	if (!where.oom)
		butler__gen_error(&u->diag, imp->at,
		    "cannot find imported spec '%s': searched %s",
		    butler__gen_quote(q, sizeof q, imp->path),
		    butler__gen_sb_cstr(&where));
	err = where.oom ? ENOMEM : ENOENT;
	butler__gen_sb_release(&where);
	return err;
}

static void parse_unit(butler_gen *g, struct unit *u, char *text, size_t len);
static void check_own_guard(butler_gen *g, struct unit *u);

/* find_unit returns the imported spec whose identity is `id`, or NULL. */
static struct unit *
find_unit(const butler_gen *g, const char *id)
{
	for (unsigned i = 0; i < g->n_units; i++)
		if (strcmp(g->units[i]->id, id) == 0)
			return g->units[i];
	return NULL;
}

/* report_cycle reports the import at `at` of `u`, which leads back to
 * g->stack[from], as a cycle naming every spec on the way. */
static void
report_cycle(butler_gen *g, struct unit *u, unsigned from, struct loc at)
{
	struct sbuf chain = { 0 };
	char q[QUOTE_MAX];

	for (unsigned k = from; k < g->depth; k++)
		butler__gen_sb_printf(&chain, "'%s' -> ",
		    butler__gen_quote(q, sizeof q, g->stack[k]->path));
	butler__gen_sb_printf(&chain, "'%s'",
	    butler__gen_quote(q, sizeof q, g->stack[from]->path));
	if (from + 1 == g->depth)
		butler__gen_error(&u->diag, at, "the spec imports itself");
	else
		butler__gen_error(&u->diag, at, "import cycle: %s",
		    chain.oom ? "..." : butler__gen_sb_cstr(&chain));
	g->oom |= chain.oom;
	butler__gen_sb_release(&chain);
}

/*
 * load_import resolves import `k` of `u`: reads and checks the spec it
 * names (once per run, whoever imports it) and reports, at the import
 * string, what keeps it from being used.
 */
static void
load_import(butler_gen *g, struct unit *u, unsigned k, char **ids)
{
	const struct import *imp = &u->spec.imports[k];
	char q[QUOTE_MAX], qp[QUOTE_MAX], e[128];
	struct unit *dep;
	char *path, *text = NULL;
	size_t len = 0;
	int err;

	butler__gen_quote(q, sizeof q, imp->path);
	path = join_path(u->path, imp->path);
	if (path != NULL && imp->path[0] != '/' && g->n_import_dirs > 0) {
		err = search_import(g, u, imp, &path);
		if (err == ENOMEM)
			goto out_oom;
		if (err != 0)
			goto out_free;
	}
	ids[k] = path != NULL ? identity(path) : NULL;
	if (ids[k] == NULL)
		goto out_oom;
	for (unsigned s = 0; s < g->depth; s++)
		if (strcmp(g->stack[s]->id, ids[k]) == 0) {
			report_cycle(g, u, s, imp->at);
			goto out_free;
		}
	for (unsigned j = 0; j < k; j++)
		if (ids[j] != NULL && strcmp(ids[j], ids[k]) == 0) {
			butler__gen_error(
			    &u->diag, imp->at, "'%s' is imported twice", q);
			butler__gen_note(&u->diag, u->spec.imports[j].at,
			    "'%s' first imported here",
			    butler__gen_quote(
			        qp, sizeof qp, u->spec.imports[j].path));
			goto out_free;
		}
	dep = find_unit(g, ids[k]);
	if (dep == NULL) {
		struct unit **units;

		if (g->n_units + 1 >= BUTLER_MAX_IMPORTS) {
			butler__gen_error(&u->diag, imp->at,
			    "importing '%s' makes more than %u specs in one "
			    "hub "
			    "(BUTLER_MAX_IMPORTS)",
			    q, BUTLER_MAX_IMPORTS);
			goto out_free;
		}
		err = (g->reader != NULL ? g->reader : read_import)(
		    g->reader_user, path, &text, &len);
		if (err != 0) {
			if (err == ENOMEM)
				goto out_oom;
			butler__gen_error(&u->diag, imp->at,
			    "cannot read imported spec '%s' (%s): %s", q,
			    butler__gen_quote(qp, sizeof qp, path),
			    err == EFBIG
			        ? "larger than the 64 MiB a spec may be"
			        : errtext(err, e, sizeof e));
			goto out_free;
		}
		units = realloc(g->units, (g->n_units + 1) * sizeof *g->units);
		dep = calloc(1, sizeof *dep);
		if (units != NULL)
			g->units = units;
		if (units == NULL || dep == NULL) {
			free(dep);
			goto out_oom;
		}
		g->units[g->n_units++] = dep;
		if (!unit_init(dep, path))
			g->oom = true;
		path = NULL; /* the unit's now */
		dep->id = strdup(ids[k]);
		if (dep->id == NULL)
			g->oom = true;
		if (g->oom) {
			free(text);
			return;
		}
		parse_unit(g, dep, text, len);
		text = NULL;
	}
	u->deps[k] = dep;
	if (dep->diag.errors > 0) {
		struct sbuf shown = { 0 };

		butler__gen_error(&u->diag, imp->at,
		    "imported spec '%s' has %u error%s", q, dep->diag.errors,
		    dep->diag.errors == 1 ? "" : "s");
		butler__gen_diag_render(&dep->diag, g->max_errors, &shown);
		if (shown.oom)
			g->oom = true;
		else if (shown.len > 0)
			butler__gen_diag_attach(&u->diag, shown.data);
		butler__gen_sb_release(&shown);
	}
out_free:
	free(text);
	free(path);
	return;

out_oom:
	free(text);
	free(path);
	g->oom = true;
}

/*
 * parse_unit checks the spec in `text` (`len` bytes, NUL after them;
 * taken over) and then the specs it imports, depth first.
 */
static void
parse_unit(butler_gen *g, struct unit *u, char *text, size_t len)
{
	char **ids;
	int rv;

	u->text = text;
	if (u->bad_base)
		butler__gen_error(&u->diag, (struct loc) { 0, 0 },
		    "cannot name the output files after this "
		    "file: use letters, digits, '.', '_', '-' "
		    "and '+' in its name");
	rv = butler__gen_json_parse(&u->doc, u->text, len, &u->diag);
	if (rv == -2) {
		g->oom = true;
		return;
	}
	if (rv != 0)
		return;
	if (butler__gen_spec_build(&u->spec, &u->doc.nodes[0], &u->diag)
	    != 0) {
		g->oom = true;
		return;
	}
	check_own_guard(g, u);
	if (u->spec.n_imports == 0)
		return;
	u->deps = calloc(u->spec.n_imports, sizeof *u->deps);
	ids = calloc(u->spec.n_imports, sizeof *ids);
	if (u->deps == NULL || ids == NULL || u->id == NULL) {
		free(ids);
		g->oom = true;
		return;
	}
	u->loading = true;
	g->stack[g->depth++] = u;
	for (unsigned k = 0; k < u->spec.n_imports && !g->oom; k++)
		load_import(g, u, k, ids);
	g->depth--;
	u->loading = false;
	for (unsigned k = 0; k < u->spec.n_imports; k++)
		free(ids[k]);
	free(ids);
}

/* ends_with says whether `s` ends with `tail`. */
static bool
ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), k = strlen(tail);

	return n >= k && strcmp(s + n - k, tail) == 0;
}

/*
 * member_macro reports the field and message names of `u` (used bare in
 * its header) that equal `macro`, defined by another header of the hub or
 * by u's own guard, into `d` at u's positions (`path`: NULL for d's own
 * file). `what` says whose macro it is.
 */
static void
member_macro(struct diag *d, const char *path, const struct unit *u,
    const char *macro, const char *what)
{
	const struct spec *s = &u->spec;
	char q[QUOTE_MAX];

	for (unsigned i = 0; i < s->n_msgs; i++) {
		const struct message *m = &s->msgs[i];

		for (unsigned k = 0; k <= m->n_fields; k++) {
			const char *name
			    = k < m->n_fields ? m->fields[k].name : m->name;

			/* A name that is a system macro was reported as
			 * one already. */
			if (strcmp(name, macro) != 0
			    || butler__gen_macro_name(name, q, sizeof q))
				continue;
			butler__gen_error_in(d, path,
			    k < m->n_fields ? m->fields[k].at : m->at,
			    "%s name '%s' is %s",
			    k < m->n_fields ? "field" : "message",
			    butler__gen_quote(q, sizeof q, name), what);
		}
	}
}

/* has_member_like says whether some field or message name of `u` could
 * be a generated macro: a count or an include guard. */
static bool
has_member_like(const struct unit *u)
{
	const struct spec *s = &u->spec;

	for (unsigned i = 0; i < s->n_msgs; i++) {
		const struct message *m = &s->msgs[i];

		for (unsigned k = 0; k <= m->n_fields; k++) {
			const char *name
			    = k < m->n_fields ? m->fields[k].name : m->name;

			if (ends_with(name, "_COUNT")
			    || ends_with(name, "_WIRE_HASH")
			    || ends_with(name, "_BUTLER_H"))
				return true;
		}
	}
	return false;
}

/* check_own_guard reports a field or message named like the include
 * guard of u's own header. */
static void
check_own_guard(butler_gen *g, struct unit *u)
{
	struct sbuf guard = { 0 }, what = { 0 };

	if (!has_member_like(u))
		return;
	butler__gen_emit_guard(&guard, u->header_name);
	butler__gen_sb_printf(
	    &what, "the include guard of %s", u->header_name);
	if (guard.oom || what.oom)
		g->oom = true;
	else
		member_macro(&u->diag, NULL, u, guard.data, what.data);
	butler__gen_sb_release(&guard);
	butler__gen_sb_release(&what);
}

/*
 * check_hub_macros reports a field or message name of a spec of the hub
 * that is a macro another header of the hub defines (its guard, its
 * APP_MSG_COUNT, APP_SERVER_COUNT or APP_WIRE_HASH): the headers are
 * included together,
 * imports first, so such a name would be replaced.
 */
static void
check_hub_macros(butler_gen *g, const struct unit **order, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		const struct unit *x = order[i];
		const char *path = x == &g->root ? NULL : x->path;

		if (!has_member_like(x))
			continue;
		for (unsigned j = 0; j < n; j++) {
			const struct unit *y = order[j];
			struct sbuf macro = { 0 }, what = { 0 };

			if (y == x)
				continue;
			for (int kind = 0; kind < 4 && !g->oom; kind++) {
				macro.len = 0;
				what.len = 0;
				if (kind == 0)
					butler__gen_emit_guard(
					    &macro, y->header_name);
				else if (y->spec.app_upper != NULL)
					butler__gen_sb_printf(&macro, "%s_%s",
					    y->spec.app_upper,
					    kind == 1       ? "MSG_COUNT"
					        : kind == 2 ? "SERVER_COUNT"
					                    : "WIRE_HASH");
				else
					continue;
				butler__gen_sb_printf(&what,
				    "a macro in %s, the header of '%s' in the "
				    "same hub",
				    y->header_name, y->path);
				if (macro.oom || what.oom)
					g->oom = true;
				else
					member_macro(&g->root.diag, path, x,
					    macro.data, what.data);
			}
			butler__gen_sb_release(&macro);
			butler__gen_sb_release(&what);
		}
	}
}

/*
 * hub_order lists the specs of the hub the root spec builds, as the
 * runtime flattens them: the root, then each import depth first, each spec
 * once. It records in each the first import that reached it.
 */
static unsigned
hub_order(struct unit *u, const struct unit **order, unsigned n)
{
	order[n++] = u;
	for (unsigned k = 0; k < u->spec.n_imports; k++) {
		struct unit *d = u->deps != NULL ? u->deps[k] : NULL;
		bool seen = false;

		if (d == NULL)
			continue;
		for (unsigned i = 0; i < n && !seen; i++)
			seen = order[i] == d;
		if (seen)
			continue;
		d->via = u;
		d->via_at = u->spec.imports[k].at;
		d->via_path = u->spec.imports[k].path;
		n = hub_order(d, order, n);
	}
	return n;
}

/*
 * check_hub reports what one hub cannot hold although each spec is fine
 * on its own: two specs with one app prefix (their names would clash, and
 * the runtime refuses them), two whose headers have one name (the
 * #includes would be ambiguous). At the import that brings in the later.
 */
static void
check_hub(butler_gen *g)
{
	const struct unit **order;
	struct diag *d = &g->root.diag;
	char q[QUOTE_MAX], qa[QUOTE_MAX], qo[QUOTE_MAX];
	unsigned n;

	if (g->n_units == 0)
		return;
	order = calloc(g->n_units + 1, sizeof *order);
	if (order == NULL) {
		g->oom = true;
		return;
	}
	n = hub_order(&g->root, order, 0);
	check_hub_macros(g, order, n);
	for (unsigned i = 1; i < n; i++) {
		const struct unit *x = order[i];
		const char *site = x->via == &g->root ? NULL : x->via->path;

		butler__gen_quote(q, sizeof q, x->via_path);
		for (unsigned j = 0; j < i; j++) {
			const struct unit *y = order[j];

			butler__gen_quote(qo, sizeof qo, y->path);
			if (x->spec.app != NULL && y->spec.app != NULL
			    && strcmp(x->spec.app, y->spec.app) == 0) {
				butler__gen_error_in(d, site, x->via_at,
				    "app prefix '%s' of imported spec '%s' is "
				    "also the app of '%s': the specs of one "
				    "hub need distinct app prefixes",
				    butler__gen_quote(
				        qa, sizeof qa, x->spec.app),
				    q, qo);
				butler__gen_note_in(d, j == 0 ? NULL : y->path,
				    y->spec.app_at, "app '%s' declared here",
				    qa);
				break;
			}
			if (strcmp(x->header_name, y->header_name) == 0) {
				butler__gen_error_in(d, site, x->via_at,
				    "imported spec '%s' would generate '%s', "
				    "as "
				    "'%s' does: the specs of one hub need "
				    "distinct file names (their headers are "
				    "included together)",
				    q, x->header_name, qo);
				if (j > 0)
					butler__gen_note_in(d,
					    y->via == &g->root ? NULL
					                       : y->via->path,
					    y->via_at, "'%s' imported here",
					    butler__gen_quote(
					        qa, sizeof qa, y->via_path));
				break;
			}
		}
	}
	free(order);
}

int
butler_gen_parse(butler_gen *g, const char *text, size_t len)
{
	char *copy;

	if (g->parsed)
		return BUTLER_GEN_ESTATE;
	g->parsed = true;
	copy = malloc(len + 1);
	g->root.id = identity(g->root.path);
	if (copy == NULL || g->root.id == NULL) {
		free(copy);
		return BUTLER_GEN_ENOMEM;
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	parse_unit(g, &g->root, copy, len);
	if (!g->oom)
		check_hub(g);
	if (g->oom || g->root.diag.oom)
		return BUTLER_GEN_ENOMEM;
	g->ok = g->root.diag.errors == 0;
	return g->ok ? BUTLER_GEN_OK : BUTLER_GEN_ESPEC;
}

static int
emit(butler_gen *g)
{
	const struct spec *spec = &g->root.spec;
	struct emit_import *imports = NULL;
	unsigned *n_accepting;
	struct emit_in in;

	if (!g->ok)
		return BUTLER_GEN_ESTATE;
	if (g->emitted)
		return BUTLER_GEN_OK;
	n_accepting = calloc(spec->n_msgs, sizeof *n_accepting);
	if (spec->n_imports > 0)
		imports = calloc(spec->n_imports, sizeof *imports);
	if (n_accepting == NULL || (spec->n_imports > 0 && imports == NULL)) {
		free(n_accepting);
		free(imports);
		return BUTLER_GEN_ENOMEM;
	}
	for (unsigned i = 0; i < spec->n_srvs; i++)
		for (unsigned k = 0; k < spec->srvs[i].n_accepts; k++)
			n_accepting[spec->srvs[i].accepts[k]]++;
	/* Without errors, every import resolved to a spec without errors. */
	for (unsigned k = 0; k < spec->n_imports; k++) {
		imports[k].path = spec->imports[k].path;
		imports[k].header_name = g->root.deps[k]->header_name;
		imports[k].app = g->root.deps[k]->spec.app;
	}
	in.spec = spec;
	in.spec_path = g->spec_name != NULL ? g->spec_name : g->root.path;
	in.header_name = g->root.header_name;
	in.n_accepting = n_accepting;
	in.imports = imports;
	butler__gen_emit_header(&in, &g->header);
	butler__gen_emit_source(&in, &g->source);
	free(n_accepting);
	free(imports);
	if (g->header.oom || g->source.oom)
		return BUTLER_GEN_ENOMEM;
	g->emitted = true;
	return BUTLER_GEN_OK;
}

int
butler_gen_emit(butler_gen *g, const char **header, size_t *header_len,
    const char **source, size_t *source_len)
{
	int rv = emit(g);

	if (rv != BUTLER_GEN_OK)
		return rv;
	*header = butler__gen_sb_cstr(&g->header);
	*source = butler__gen_sb_cstr(&g->source);
	if (header_len != NULL)
		*header_len = g->header.len;
	if (source_len != NULL)
		*source_len = g->source.len;
	return BUTLER_GEN_OK;
}

/* make_dirs creates `dir` and its missing parents, like mkdir -p. */
static int
make_dirs(const char *dir)
{
	char *p = strdup(dir);
	int err = 0;

	if (p == NULL)
		return ENOMEM;
	if (p[0] == '\0') {
		free(p);
		return 0;
	}
	for (char *s = p + 1;; s++) {
		char c = *s;

		if (c != '/' && c != '\0')
			continue;
		*s = '\0';
		if (mkdir(p, 0777) != 0 && errno != EEXIST) {
			err = errno;
			break;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	return err;
}

/* write_file writes `data` to `path` if it changed, reporting failures. */
static int
write_file(butler_gen *g, const char *path, const struct sbuf *data,
    unsigned *n_written)
{
	bool changed = false;
	char e[128];
	int err;

	err = butler__gen_write_if_changed(
	    path, data->data, data->len, &changed);
	if (err != 0) {
		butler__gen_error(&g->root.diag, (struct loc) { 0, 0 },
		    "cannot write '%s': %s", path, errtext(err, e, sizeof e));
		return err == ENOMEM ? BUTLER_GEN_ENOMEM : BUTLER_GEN_EIO;
	}
	if (changed && n_written != NULL)
		(*n_written)++;
	return BUTLER_GEN_OK;
}

int
butler_gen_write(butler_gen *g, const char *out_dir, unsigned *n_written)
{
	const struct sbuf *data[2] = { &g->header, &g->source };
	const char *names[2] = { g->root.header_name, g->root.source_name };
	char e[128];
	int rv, err;

	if (n_written != NULL)
		*n_written = 0;
	rv = emit(g);
	if (rv != BUTLER_GEN_OK)
		return rv;
	err = make_dirs(out_dir);
	if (err != 0) {
		butler__gen_error(&g->root.diag, (struct loc) { 0, 0 },
		    "cannot create output directory '%s': %s", out_dir,
		    errtext(err, e, sizeof e));
		return BUTLER_GEN_EIO;
	}
	for (int i = 0; i < 2; i++) {
		struct sbuf path = { 0 };

		butler__gen_sb_printf(&path, "%s/%s", out_dir, names[i]);
		rv = path.oom ? BUTLER_GEN_ENOMEM
		              : write_file(g, path.data, data[i], n_written);
		butler__gen_sb_release(&path);
		if (rv != BUTLER_GEN_OK)
			return rv;
	}
	return BUTLER_GEN_OK;
}

/* make_escape appends `s` for a Makefile rule: spaces, '#' and '$' would
 * otherwise split or change a path (the form gcc -MD writes). */
static void
make_escape(struct sbuf *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == ' ' || *s == '#' || *s == '\\')
			butler__gen_sb_putn(out, "\\", 1);
		if (*s == '$')
			butler__gen_sb_putn(out, "$", 1);
		butler__gen_sb_putn(out, s, 1);
	}
}

int
butler_gen_write_depfile(butler_gen *g, const char *out_dir, const char *path)
{
	struct sbuf rule = { 0 };
	const char *input;
	int rv;

	if (!g->ok)
		return BUTLER_GEN_ESTATE;
	make_escape(&rule, out_dir);
	butler__gen_sb_puts(&rule, "/");
	make_escape(&rule, g->root.header_name);
	butler__gen_sb_puts(&rule, " ");
	make_escape(&rule, out_dir);
	butler__gen_sb_puts(&rule, "/");
	make_escape(&rule, g->root.source_name);
	butler__gen_sb_puts(&rule, ":");
	for (unsigned i = 0; (input = butler_gen_input(g, i)) != NULL; i++) {
		butler__gen_sb_puts(&rule, " \\\n  ");
		make_escape(&rule, input);
	}
	butler__gen_sb_puts(&rule, "\n");
	rv = rule.oom ? BUTLER_GEN_ENOMEM : write_file(g, path, &rule, NULL);
	butler__gen_sb_release(&rule);
	return rv;
}

const char *
butler_gen_input(const butler_gen *g, unsigned i)
{
	if (i == 0)
		return g->root.path;
	return i - 1 < g->n_units ? g->units[i - 1]->path : NULL;
}

const char *
butler_gen_header_name(const butler_gen *g)
{
	return g->root.header_name;
}

const char *
butler_gen_source_name(const butler_gen *g)
{
	return g->root.source_name;
}

unsigned
butler_gen_errors(const butler_gen *g)
{
	return g->root.diag.errors;
}

unsigned
butler_gen_warnings(const butler_gen *g)
{
	return g->root.diag.warnings;
}

const char *
butler_gen_diagnostics(butler_gen *g)
{
	butler__gen_sb_release(&g->rendered);
	butler__gen_diag_render(&g->root.diag, g->max_errors, &g->rendered);
	if (g->rendered.oom)
		return NULL;
	return butler__gen_sb_cstr(&g->rendered);
}

bool
butler_gen_self_check(const butler_gen *g)
{
	for (unsigned i = 0; i < g->n_units; i++)
		if (g->units[i]->doc.mismatch)
			return false;
	return !g->root.doc.mismatch;
}
