/* SPDX-License-Identifier: MIT */
/*
 * codegen/diag.h — butler-gen's diagnostics: `path:LINE:COL: error: text`.
 *
 * Diagnostics are collected, not printed, while a spec is checked: the
 * checker finds problems in whatever order its passes run, and the user wants
 * them in file order. butler__gen_diag_render() sorts them by position (notes
 * stay with the error they explain) and applies the error cap.
 */
#ifndef BUTLER_CODEGEN_DIAG_H
#define BUTLER_CODEGEN_DIAG_H

#include <stdbool.h>
#include <stddef.h>

#include "sbuf.h"

/*
 * struct loc is a position in the spec: 1-based line and column, the column
 * counted in characters (UTF-8 code points, a tab is one). line 0 means the
 * whole file (I/O errors).
 */
struct loc {
	unsigned line;
	unsigned col;
};

/* enum diag_level orders nothing; it names the word printed. */
enum diag_level { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE };

/* struct diag_entry is one collected diagnostic. */
struct diag_entry {
	enum diag_level level;
	struct loc at;
	size_t seq; /* order of reporting, breaks ties when sorting */
	char *text;
	const char *path; /* another file's (an import's), or NULL: d->path */
	bool verbatim;    /* text is already rendered: lines of an imported
	                     spec's diagnostics, shown after the entry before */
};

/*
 * DIAG_KEEP_MAX bounds what a pathological spec can make butler-gen hold in
 * memory: once this many diagnostics are kept, later ones are only counted
 * and the checker stops early (butler__gen_diag_full()).
 */
#define DIAG_KEEP_MAX 10000

/* struct diag collects the diagnostics of one spec file. */
struct diag {
	const char *path; /* as given by the user; printed in front of each */
	struct diag_entry *v;
	size_t n, cap;
	unsigned errors;   /* every error reported, kept or not */
	unsigned warnings; /* every warning reported, kept or not */
	bool oom;          /* an entry could not be stored */
	bool dropped_last; /* the last error or warning was not kept */
};

/* butler__gen_diag_init prepares `d` for the file `path` (not copied). */
void butler__gen_diag_init(struct diag *d, const char *path);

/* butler__gen_diag_release frees every entry. */
void butler__gen_diag_release(struct diag *d);

/* butler__gen_error reports an error at `at`. */
void butler__gen_error(struct diag *d, struct loc at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* butler__gen_warning reports a warning at `at`. */
void butler__gen_warning(struct diag *d, struct loc at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* butler__gen_note adds a note to the error or warning reported last. */
void butler__gen_note(struct diag *d, struct loc at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * butler__gen_error_in and butler__gen_note_in report at a position in
 * another file of the same run, `path` (not copied: it must outlive `d`).
 */
void butler__gen_error_in(struct diag *d, const char *path, struct loc at,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void butler__gen_note_in(struct diag *d, const char *path, struct loc at,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * butler__gen_diag_attach adds `text`, diagnostics already rendered (an
 * imported spec's), to the error or warning reported last: they are shown
 * right after it, as they are.
 */
void butler__gen_diag_attach(struct diag *d, const char *text);

/* butler__gen_diag_full says the checker may stop: DIAG_KEEP_MAX reached. */
bool butler__gen_diag_full(const struct diag *d);

/*
 * butler__gen_diag_render appends the diagnostics to `out` in file order
 * (those in other files after the file's own, by path), one per line,
 * showing at most `max_errors` errors (0: all) and then a note saying how
 * many were left out.
 */
void butler__gen_diag_render(
    const struct diag *d, unsigned max_errors, struct sbuf *out);

/*
 * butler__gen_quote writes `s` into `buf` (`size` >= 16 bytes) for use in a
 * message: control and non-ASCII bytes become \xNN and long strings are cut
 * with "...", so a hostile spec cannot garble the terminal.
 */
const char *butler__gen_quote(char *buf, size_t size, const char *s);

/* QUOTE_MAX is a good `size` for butler__gen_quote(). */
#define QUOTE_MAX 96

#endif /* BUTLER_CODEGEN_DIAG_H */
