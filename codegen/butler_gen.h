/* SPDX-License-Identifier: MIT */
/*
 * codegen/butler_gen.h — butler-gen as a library.
 *
 * The butler-gen program is a thin command line over this API, and the
 * tests and the fuzz target use it in-process. Each butler_gen object
 * handles one spec file and holds everything it needs: no globals, so
 * several can be used at once from different threads.
 *
 * Typical use: butler_gen_new() -> butler_gen_load() (or
 * butler_gen_parse() on a buffer) -> butler_gen_emit() or
 * butler_gen_write() -> butler_gen_diagnostics() -> butler_gen_free().
 */
#ifndef BUTLER_CODEGEN_BUTLER_GEN_H
#define BUTLER_CODEGEN_BUTLER_GEN_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * BUTLER_GEN_VERSION is butler-gen's version, the runtime's: the build
 * defines it from project(VERSION) (codegen/CMakeLists.txt), the one place
 * the version is written.
 */
#ifndef BUTLER_GEN_VERSION
#error "define BUTLER_GEN_VERSION (codegen/CMakeLists.txt does)"
#endif

/*
 * BUTLER_GEN_OUTPUT_ABI is the BUTLER_GEN_ABI (include/butler/gen.h) that
 * generated code is written for: its headers refuse to compile against any
 * other, and its tables carry it in butler_spec.abi.
 */
#define BUTLER_GEN_OUTPUT_ABI 3

/* butler_gen_status is what the butler_gen_* functions return. */
typedef enum butler_gen_status {
	BUTLER_GEN_OK = 0,
	BUTLER_GEN_ESPEC = 1,  /* the spec has errors (see diagnostics) */
	BUTLER_GEN_EIO = 2,    /* reading or writing a file failed */
	BUTLER_GEN_ENOMEM = 3, /* out of memory */
	BUTLER_GEN_ESTATE = 4  /* called out of order */
} butler_gen_status;

/* butler_gen is one spec file on its way to C. */
typedef struct butler_gen butler_gen;

/*
 * butler_gen_new creates a generator for the spec at `path`. The path is
 * copied; it is printed in front of every diagnostic and in the generated
 * banner exactly as given (see butler_gen_set_spec_name()), and the output
 * base name is derived from it
 * (`dir/app.json` gives `app.butler.h` and `app.butler.c`). Returns
 * BUTLER_GEN_OK or BUTLER_GEN_ENOMEM.
 */
int butler_gen_new(butler_gen **out /* OUT */, const char *path);

/*
 * butler_gen_set_spec_name makes the generated files (banner, #error
 * message) name the spec `name` instead of the path given to
 * butler_gen_new(); diagnostics keep that path. butler_generate() passes
 * the spec's path relative to the top source directory, so that the output
 * does not depend on where the tree is checked out. The name is copied.
 * Returns BUTLER_GEN_ESTATE after butler_gen_emit() or butler_gen_write(),
 * BUTLER_GEN_ENOMEM.
 */
int butler_gen_set_spec_name(butler_gen *g, const char *name);

/* butler_gen_free frees `g`. NULL is a no-op. */
void butler_gen_free(butler_gen *g);

/*
 * butler_gen_set_max_errors makes butler_gen_diagnostics() show at most
 * `max` errors (0: all; the default is 20).
 */
void butler_gen_set_max_errors(butler_gen *g, unsigned max);

/*
 * butler_gen_reader_fn reads the spec file at `path` (an import, named as
 * butler-gen names it: the importing spec's directory joined with the
 * import). On success it stores the content in *text, malloc()ed (it need
 * not be NUL-terminated; butler-gen frees it), its length in *len, and
 * returns 0; otherwise it returns an errno value, which the diagnostic
 * names.
 */
typedef int (*butler_gen_reader_fn)(
    void *user, const char *path, char **text, size_t *len);

/*
 * butler_gen_set_reader makes `g` read the specs the spec imports with
 * `fn` (NULL, the default: regular files from the file system). The tests
 * and the fuzz target keep imports in memory with it. Before
 * butler_gen_parse() or butler_gen_load().
 */
void butler_gen_set_reader(butler_gen *g, butler_gen_reader_fn fn, void *user);

/*
 * butler_gen_add_import_dir appends `dir` to the import path: a relative
 * import that is not found beside the spec importing it ("butler/tasks.json"
 * for the installed first-party servers) is looked for in each directory of
 * the import path in turn, the first added first. The directory is copied.
 * An import found there is named (diagnostics, depfile) as `dir` joined
 * with the import. Before butler_gen_parse() or butler_gen_load(): returns
 * BUTLER_GEN_ESTATE afterwards, BUTLER_GEN_ENOMEM.
 */
int butler_gen_add_import_dir(butler_gen *g, const char *dir);

/*
 * butler_gen_load reads the spec file and checks it, as
 * butler_gen_parse(). Returns BUTLER_GEN_EIO (with a diagnostic) when the
 * file cannot be read.
 */
int butler_gen_load(butler_gen *g);

/*
 * butler_gen_parse checks the `len` bytes at `text` (no NUL needed; the
 * text is copied) as the content of the spec file, and reads and checks
 * every spec it imports, recursively, each once (see
 * butler_gen_set_reader()). Every problem becomes a diagnostic. Returns
 * BUTLER_GEN_OK when the spec has no errors (it may have warnings),
 * BUTLER_GEN_ESPEC, or BUTLER_GEN_ENOMEM. Once per object.
 */
int butler_gen_parse(butler_gen *g, const char *text, size_t len);

/*
 * butler_gen_emit generates the header and the source in memory. The
 * strings belong to `g` and live until butler_gen_free(); the source
 * includes the header by its base name (butler_gen_header_name()). Returns
 * BUTLER_GEN_ESTATE unless a parse succeeded, or BUTLER_GEN_ENOMEM.
 */
int butler_gen_emit(butler_gen *g, const char **header /* OUT */,
    size_t *header_len /* OUT: may be NULL */, const char **source /* OUT */,
    size_t *source_len /* OUT: may be NULL */);

/*
 * butler_gen_write generates both files into directory `out_dir` (created
 * if missing). Each is written to a temporary file that is renamed over
 * the old one, and only when its content changed, so an unchanged spec
 * leaves the outputs' timestamps alone. *n_written (may be NULL) receives
 * the number of files replaced. Returns BUTLER_GEN_ESTATE unless a parse
 * succeeded, BUTLER_GEN_EIO (with a diagnostic) or BUTLER_GEN_ENOMEM.
 */
int butler_gen_write(butler_gen *g, const char *out_dir,
    unsigned *n_written /* OUT: may be NULL */);

/*
 * butler_gen_write_depfile writes `path`, a Makefile rule (the form of gcc
 * -MD) saying that the two files butler_gen_write() writes into `out_dir`
 * depend on the spec and on every spec it imports, so that a build system
 * (CMake's DEPFILE) regenerates when an imported spec changes. Written only
 * when its content changes. Returns BUTLER_GEN_ESTATE unless a parse
 * succeeded, BUTLER_GEN_EIO (with a diagnostic) or BUTLER_GEN_ENOMEM.
 */
int butler_gen_write_depfile(
    butler_gen *g, const char *out_dir, const char *path);

/*
 * butler_gen_input returns the path of the i-th spec file the run read:
 * 0 is the spec itself, then every imported spec once, in reading order;
 * NULL past the last.
 */
const char *butler_gen_input(const butler_gen *g, unsigned i);

/* butler_gen_header_name returns "<base>.butler.h". */
const char *butler_gen_header_name(const butler_gen *g);

/* butler_gen_source_name returns "<base>.butler.c". */
const char *butler_gen_source_name(const butler_gen *g);

/* butler_gen_errors returns the number of errors reported so far. */
unsigned butler_gen_errors(const butler_gen *g);

/* butler_gen_warnings returns the number of warnings reported so far. */
unsigned butler_gen_warnings(const butler_gen *g);

/*
 * butler_gen_diagnostics returns every diagnostic so far, one per line,
 * sorted by position and capped (butler_gen_set_max_errors()), as
 * `path:LINE:COL: error: text`. "" when there are none, NULL when out of
 * memory. The string lives until the next call or butler_gen_free().
 */
const char *butler_gen_diagnostics(butler_gen *g);

/*
 * butler_gen_self_check returns false if the position scanner and cJSON
 * disagreed about the last parsed text: a bug the fuzz target looks for.
 */
bool butler_gen_self_check(const butler_gen *g);

#ifdef __cplusplus
}
#endif

#endif /* BUTLER_CODEGEN_BUTLER_GEN_H */
