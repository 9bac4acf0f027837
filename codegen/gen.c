/* codegen/gen.c — the butler-gen library API (butler_gen.h). */
#define _POSIX_C_SOURCE 200809L
#include "butler_gen.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "diag.h"
#include "emit.h"
#include "json.h"
#include "sbuf.h"
#include "spec.h"

/* SPEC_FILE_MAX bounds what butler-gen reads: a spec is a few kilobytes;
 * anything near this is a mistake (a wrong path), not a spec. */
#define SPEC_FILE_MAX (64u << 20)

struct butler_gen {
	char *path;
	char *spec_name; /* for the generated files; NULL: path */
	char *header_name;
	char *source_name;
	bool bad_base; /* the base name cannot name C files */
	unsigned max_errors;
	struct diag diag;
	struct sbuf rendered;
	bool parsed; /* butler_gen_parse() ran */
	bool ok;     /* ... and found no error */
	char *text;  /* the spec, with the NUL cJSON wants after it */
	struct jdoc doc;
	struct spec spec;
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

int
butler_gen_new(butler_gen **out, const char *path)
{
	butler_gen *g = calloc(1, sizeof *g);
	const char *b;
	size_t n;

	*out = NULL;
	if (g == NULL)
		return BUTLER_GEN_ENOMEM;
	g->path = strdup(path);
	if (g->path == NULL)
		goto out_free;
	b = base_of(g->path, &n);
	g->header_name = malloc(n + 10);
	g->source_name = malloc(n + 10);
	if (g->header_name == NULL || g->source_name == NULL)
		goto out_free;
	snprintf(g->header_name, n + 10, "%.*s.butler.h", (int)n, b);
	snprintf(g->source_name, n + 10, "%.*s.butler.c", (int)n, b);
	/* The header name goes into an #include and a guard. */
	g->bad_base = n == 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)b[i]) && !strchr("._-+", b[i]))
			g->bad_base = true;
	g->max_errors = 20;
	butler__gen_diag_init(&g->diag, g->path);
	*out = g;
	return BUTLER_GEN_OK;

out_free:
	butler_gen_free(g);
	return BUTLER_GEN_ENOMEM;
}

void
butler_gen_free(butler_gen *g)
{
	if (g == NULL)
		return;
	butler__gen_spec_release(&g->spec);
	butler__gen_json_release(&g->doc);
	butler__gen_diag_release(&g->diag);
	butler__gen_sb_release(&g->rendered);
	butler__gen_sb_release(&g->header);
	butler__gen_sb_release(&g->source);
	free(g->text);
	free(g->header_name);
	free(g->source_name);
	free(g->spec_name);
	free(g->path);
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

/* errtext is strerror() in the lower case of the diagnostics. */
static const char *
errtext(int err, char *buf, size_t size)
{
	snprintf(buf, size, "%s", strerror(err));
	buf[0] = (char)tolower((unsigned char)buf[0]);
	return buf;
}

int
butler_gen_load(butler_gen *g)
{
	FILE *f;
	struct sbuf sb = { 0 };
	char buf[65536], e[128];
	size_t n;
	int rv;

	if (g->parsed)
		return BUTLER_GEN_ESTATE;
	f = fopen(g->path, "rb");
	if (f == NULL) {
		butler__gen_error(&g->diag, (struct loc) { 0, 0 },
		    "cannot open the spec: %s", errtext(errno, e, sizeof e));
		return BUTLER_GEN_EIO;
	}
	while (
	    (n = fread(buf, 1, sizeof buf, f)) > 0 && sb.len <= SPEC_FILE_MAX)
		butler__gen_sb_putn(&sb, buf, n);
	if (ferror(f)) {
		butler__gen_error(&g->diag, (struct loc) { 0, 0 },
		    "cannot read the spec: %s", errtext(errno, e, sizeof e));
		rv = BUTLER_GEN_EIO;
	} else if (sb.len > SPEC_FILE_MAX) {
		butler__gen_error(&g->diag, (struct loc) { 0, 0 },
		    "the spec is larger than %u MiB", SPEC_FILE_MAX >> 20);
		rv = BUTLER_GEN_ESPEC;
	} else if (sb.oom) {
		rv = BUTLER_GEN_ENOMEM;
	} else {
		rv = butler_gen_parse(g, butler__gen_sb_cstr(&sb), sb.len);
	}
	fclose(f);
	butler__gen_sb_release(&sb);
	return rv;
}

int
butler_gen_parse(butler_gen *g, const char *text, size_t len)
{
	int rv;

	if (g->parsed)
		return BUTLER_GEN_ESTATE;
	g->parsed = true;
	g->text = malloc(len + 1);
	if (g->text == NULL)
		return BUTLER_GEN_ENOMEM;
	memcpy(g->text, text, len);
	g->text[len] = '\0';
	if (g->bad_base)
		butler__gen_error(&g->diag, (struct loc) { 0, 0 },
		    "cannot name the output files after this "
		    "file: use letters, digits, '.', '_', '-' "
		    "and '+' in its name");
	rv = butler__gen_json_parse(&g->doc, g->text, len, &g->diag);
	if (rv == -2)
		return BUTLER_GEN_ENOMEM;
	if (rv == 0
	    && butler__gen_spec_build(&g->spec, &g->doc.nodes[0], &g->diag)
	        != 0)
		return BUTLER_GEN_ENOMEM;
	if (g->diag.oom)
		return BUTLER_GEN_ENOMEM;
	g->ok = g->diag.errors == 0;
	return g->ok ? BUTLER_GEN_OK : BUTLER_GEN_ESPEC;
}

static int
emit(butler_gen *g)
{
	unsigned *n_accepting;
	struct emit_in in;

	if (!g->ok)
		return BUTLER_GEN_ESTATE;
	if (g->emitted)
		return BUTLER_GEN_OK;
	n_accepting = calloc(g->spec.n_msgs, sizeof *n_accepting);
	if (n_accepting == NULL)
		return BUTLER_GEN_ENOMEM;
	for (unsigned i = 0; i < g->spec.n_srvs; i++)
		for (unsigned k = 0; k < g->spec.srvs[i].n_accepts; k++)
			n_accepting[g->spec.srvs[i].accepts[k]]++;
	in.spec = &g->spec;
	in.spec_path = g->spec_name != NULL ? g->spec_name : g->path;
	in.header_name = g->header_name;
	in.n_accepting = n_accepting;
	butler__gen_emit_header(&in, &g->header);
	butler__gen_emit_source(&in, &g->source);
	free(n_accepting);
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

int
butler_gen_write(butler_gen *g, const char *out_dir, unsigned *n_written)
{
	const struct sbuf *data[2] = { &g->header, &g->source };
	const char *names[2] = { g->header_name, g->source_name };
	char e[128];
	int rv, err;

	if (n_written != NULL)
		*n_written = 0;
	rv = emit(g);
	if (rv != BUTLER_GEN_OK)
		return rv;
	err = make_dirs(out_dir);
	if (err != 0) {
		butler__gen_error(&g->diag, (struct loc) { 0, 0 },
		    "cannot create output directory '%s': %s", out_dir,
		    errtext(err, e, sizeof e));
		return BUTLER_GEN_EIO;
	}
	for (int i = 0; i < 2; i++) {
		struct sbuf path = { 0 };
		bool changed = false;

		butler__gen_sb_printf(&path, "%s/%s", out_dir, names[i]);
		if (path.oom) {
			butler__gen_sb_release(&path);
			return BUTLER_GEN_ENOMEM;
		}
		err = butler__gen_write_if_changed(
		    path.data, data[i]->data, data[i]->len, &changed);
		if (err != 0)
			butler__gen_error(&g->diag, (struct loc) { 0, 0 },
			    "cannot write '%s': %s", path.data,
			    errtext(err, e, sizeof e));
		butler__gen_sb_release(&path);
		if (err != 0)
			return err == ENOMEM ? BUTLER_GEN_ENOMEM
			                     : BUTLER_GEN_EIO;
		if (changed && n_written != NULL)
			(*n_written)++;
	}
	return BUTLER_GEN_OK;
}

const char *
butler_gen_header_name(const butler_gen *g)
{
	return g->header_name;
}

const char *
butler_gen_source_name(const butler_gen *g)
{
	return g->source_name;
}

unsigned
butler_gen_errors(const butler_gen *g)
{
	return g->diag.errors;
}

unsigned
butler_gen_warnings(const butler_gen *g)
{
	return g->diag.warnings;
}

const char *
butler_gen_diagnostics(butler_gen *g)
{
	butler__gen_sb_release(&g->rendered);
	butler__gen_diag_render(&g->diag, g->max_errors, &g->rendered);
	if (g->rendered.oom)
		return NULL;
	return butler__gen_sb_cstr(&g->rendered);
}

bool
butler_gen_self_check(const butler_gen *g)
{
	return !g->doc.mismatch;
}
