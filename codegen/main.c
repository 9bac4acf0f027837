/* SPDX-License-Identifier: MIT */
/*
 * codegen/main.c — the butler-gen command line: options in, exit status
 * out. Everything else is the library (butler_gen.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "butler_gen.h"

static const char usage[]
    = "usage: butler-gen [options] SPEC.json\n"
      "\n"
      "Generate SPEC.butler.h and SPEC.butler.c from a butler spec.\n"
      "\n"
      "options:\n"
      "  -o, --out-dir DIR    write the files into DIR (default: .),\n"
      "                       creating it if needed; files whose content\n"
      "                       is unchanged are not touched\n"
      "  -c, --check          check the spec only; write nothing\n"
      "      --spec-name NAME name the spec NAME in the generated files\n"
      "                       (default: SPEC.json as given); diagnostics\n"
      "                       still use SPEC.json\n"
      "      --depfile FILE   also write FILE, a Makefile rule: the outputs\n"
      "                       depend on the spec and every spec it imports\n"
      "  -I, --import-path DIR\n"
      "                       look for a relative import in DIR when it is\n"
      "                       not beside the spec importing it (repeatable:\n"
      "                       searched in the order given)\n"
      "      --max-errors N   show at most N errors (default 20, 0: all)\n"
      "      --werror         treat warnings as errors\n"
      "  -h, --help           show this help and exit\n"
      "      --version        show the version and exit\n"
      "\n"
      "Diagnostics go to stderr as FILE:LINE:COL: error: TEXT. Nothing is\n"
      "written when the spec has an error. Exit status: 0 success, 1 the\n"
      "spec has errors or a file could not be read or written, 2 usage.\n"
      "The spec format is documented in SPEC.md.\n";

/* struct opts is the parsed command line. */
struct opts {
	const char *out_dir;
	const char *spec;
	const char *spec_name;
	const char *depfile;
	const char **import_dirs; /* argv entries, n_import_dirs of them */
	unsigned n_import_dirs;
	unsigned max_errors;
	bool check;
	bool werror;
};

static int
bad_usage(const char *what, const char *arg)
{
	fprintf(stderr, "butler-gen: error: %s%s%s%s\n", what, arg ? " '" : "",
	    arg ? arg : "", arg ? "'" : "");
	fprintf(stderr, "butler-gen: note: try 'butler-gen --help'\n");
	return 2;
}

/* parse_args returns -1 to go on, or the exit status. */
static int
parse_args(int argc, char **argv, struct opts *o)
{
	bool no_more_options = false;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (no_more_options || a[0] != '-' || a[1] == '\0') {
			if (o->spec != NULL)
				return bad_usage(
				    "more than one spec given:", a);
			o->spec = a;
		} else if (strcmp(a, "--") == 0) {
			no_more_options = true;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(usage, stdout);
			return 0;
		} else if (strcmp(a, "--version") == 0) {
			printf("butler-gen %s (generated code ABI %d)\n",
			    BUTLER_GEN_VERSION, BUTLER_GEN_OUTPUT_ABI);
			return 0;
		} else if (strcmp(a, "-c") == 0 || strcmp(a, "--check") == 0) {
			o->check = true;
		} else if (strcmp(a, "--werror") == 0) {
			o->werror = true;
		} else if (strcmp(a, "-o") == 0
		    || strcmp(a, "--out-dir") == 0) {
			if (++i == argc)
				return bad_usage("missing directory after", a);
			o->out_dir = argv[i];
		} else if (strncmp(a, "--out-dir=", 10) == 0) {
			o->out_dir = a + 10;
		} else if (strcmp(a, "--spec-name") == 0) {
			if (++i == argc)
				return bad_usage("missing name after", a);
			o->spec_name = argv[i];
		} else if (strncmp(a, "--spec-name=", 12) == 0) {
			o->spec_name = a + 12;
		} else if (strcmp(a, "--depfile") == 0) {
			if (++i == argc)
				return bad_usage("missing file after", a);
			o->depfile = argv[i];
		} else if (strncmp(a, "--depfile=", 10) == 0) {
			o->depfile = a + 10;
		} else if (strcmp(a, "-I") == 0
		    || strcmp(a, "--import-path") == 0) {
			if (++i == argc)
				return bad_usage("missing directory after", a);
			o->import_dirs[o->n_import_dirs++] = argv[i];
		} else if (strncmp(a, "--import-path=", 14) == 0
		    || strncmp(a, "-I", 2) == 0) {
			o->import_dirs[o->n_import_dirs++]
			    = a + (a[1] == 'I' ? 2 : 14);
		} else if (strcmp(a, "--max-errors") == 0
		    || strncmp(a, "--max-errors=", 13) == 0) {
			const char *v = a[12] == '=' ? a + 13 : argv[++i];
			char *end;
			unsigned long n;

			if (i == argc || v == NULL)
				return bad_usage("missing number after", a);
			errno = 0;
			n = strtoul(v, &end, 10);
			if (*v == '\0' || *end != '\0' || errno != 0
			    || n > 1000000 || v[0] == '-')
				return bad_usage("--max-errors needs a number "
				                 "from 0 to 1000000, not",
				    v);
			o->max_errors = (unsigned)n;
		} else {
			return bad_usage("unknown option", a);
		}
	}
	if (o->spec == NULL)
		return bad_usage("no spec file given", NULL);
	if (o->out_dir != NULL && o->out_dir[0] == '\0')
		return bad_usage("empty output directory", NULL);
	if (o->spec_name != NULL && o->spec_name[0] == '\0')
		return bad_usage("empty spec name", NULL);
	if (o->depfile != NULL && o->depfile[0] == '\0')
		return bad_usage("empty depfile name", NULL);
	for (unsigned i = 0; i < o->n_import_dirs; i++)
		if (o->import_dirs[i][0] == '\0')
			return bad_usage("empty import directory", NULL);
	return -1;
}

int
main(int argc, char **argv)
{
	struct opts o = { .out_dir = ".", .max_errors = 20 };
	butler_gen *g = NULL;
	const char *diags;
	int status, rv;

	/* At most one import directory per argument. */
	o.import_dirs = calloc((size_t)argc, sizeof *o.import_dirs);
	if (o.import_dirs == NULL)
		goto out_oom;
	status = parse_args(argc, argv, &o);
	if (status >= 0) {
		free(o.import_dirs);
		return status;
	}
	if (butler_gen_new(&g, o.spec) != BUTLER_GEN_OK)
		goto out_oom;
	for (unsigned i = 0; i < o.n_import_dirs; i++)
		if (butler_gen_add_import_dir(g, o.import_dirs[i])
		    != BUTLER_GEN_OK)
			goto out_oom;
	if (o.spec_name != NULL
	    && butler_gen_set_spec_name(g, o.spec_name) != BUTLER_GEN_OK)
		goto out_oom;
	butler_gen_set_max_errors(g, o.max_errors);
	rv = butler_gen_load(g);
	if (rv == BUTLER_GEN_OK && o.werror && butler_gen_warnings(g) > 0)
		rv = BUTLER_GEN_ESPEC;
	if (rv == BUTLER_GEN_OK && !o.check)
		rv = butler_gen_write(g, o.out_dir, NULL);
	if (rv == BUTLER_GEN_OK && !o.check && o.depfile != NULL)
		rv = butler_gen_write_depfile(g, o.out_dir, o.depfile);
	if (rv == BUTLER_GEN_ENOMEM)
		goto out_oom;
	diags = butler_gen_diagnostics(g);
	if (diags == NULL)
		goto out_oom;
	fputs(diags, stderr);
	butler_gen_free(g);
	free(o.import_dirs);
	return rv == BUTLER_GEN_OK ? 0 : 1;

out_oom:
	fprintf(stderr, "butler-gen: error: out of memory\n");
	butler_gen_free(g);
	free(o.import_dirs);
	return 1;
}
