/* SPDX-License-Identifier: MIT */
/* codegen/diag.c — collected, sorted diagnostics (see diag.h). */
#include "diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
butler__gen_diag_init(struct diag *d, const char *path)
{
	memset(d, 0, sizeof *d);
	d->path = path;
}

void
butler__gen_diag_release(struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].text);
	free(d->v);
	d->v = NULL;
	d->n = 0;
	d->cap = 0;
}

bool
butler__gen_diag_full(const struct diag *d)
{
	return d->n >= DIAG_KEEP_MAX;
}

static void
add(struct diag *d, enum diag_level level, const char *path, struct loc at,
    const char *fmt, va_list ap)
{
	struct sbuf sb = { 0 };
	struct diag_entry *v;

	if (level == DIAG_ERROR)
		d->errors++;
	else if (level == DIAG_WARNING)
		d->warnings++;
	/* A note belongs to the entry before it: keep it exactly when that
	 * was kept, even past the cap, so an error never loses its note. */
	if (level == DIAG_NOTE ? d->dropped_last || d->n >= DIAG_KEEP_MAX * 2
	                       : d->n >= DIAG_KEEP_MAX) {
		if (level != DIAG_NOTE)
			d->dropped_last = true;
		return;
	}
	if (level != DIAG_NOTE)
		d->dropped_last = false;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;

		v = realloc(d->v, cap * sizeof *v);
		if (v == NULL)
			goto out_oom;
		d->v = v;
		d->cap = cap;
	}
	butler__gen_sb_vprintf(&sb, fmt, ap);
	if (sb.oom || sb.data == NULL)
		goto out_oom;
	d->v[d->n].level = level;
	d->v[d->n].at = at;
	d->v[d->n].seq = d->n;
	d->v[d->n].text = sb.data;
	d->v[d->n].path = path;
	d->v[d->n].verbatim = false;
	d->n++;
	return;

out_oom:
	butler__gen_sb_release(&sb);
	d->oom = true;
}

void
butler__gen_error(struct diag *d, struct loc at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add(d, DIAG_ERROR, NULL, at, fmt, ap);
	va_end(ap);
}

void
butler__gen_warning(struct diag *d, struct loc at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add(d, DIAG_WARNING, NULL, at, fmt, ap);
	va_end(ap);
}

void
butler__gen_note(struct diag *d, struct loc at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add(d, DIAG_NOTE, NULL, at, fmt, ap);
	va_end(ap);
}

void
butler__gen_error_in(
    struct diag *d, const char *path, struct loc at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add(d, DIAG_ERROR, path, at, fmt, ap);
	va_end(ap);
}

void
butler__gen_note_in(
    struct diag *d, const char *path, struct loc at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add(d, DIAG_NOTE, path, at, fmt, ap);
	va_end(ap);
}

void
butler__gen_diag_attach(struct diag *d, const char *text)
{
	size_t before = d->n;

	/* Stored as a note, so that it stays with its error, then marked:
	 * rendering prints it as it is. */
	butler__gen_note(d, (struct loc) { 0, 0 }, "%s", text);
	if (d->n > before)
		d->v[d->n - 1].verbatim = true;
}

/* struct group is an error or warning with the notes that follow it. */
struct group {
	size_t first; /* index of the error or warning */
	size_t n;     /* 1 + number of notes */
	const struct diag_entry *head;
};

static int
group_cmp(const void *pa, const void *pb)
{
	const struct diag_entry *a = ((const struct group *)pa)->head;
	const struct diag_entry *b = ((const struct group *)pb)->head;

	/* The file's own diagnostics first, then other files' by path. */
	if ((a->path == NULL) != (b->path == NULL))
		return a->path == NULL ? -1 : 1;
	if (a->path != NULL && strcmp(a->path, b->path) != 0)
		return strcmp(a->path, b->path);
	if (a->at.line != b->at.line)
		return a->at.line < b->at.line ? -1 : 1;
	if (a->at.col != b->at.col)
		return a->at.col < b->at.col ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void
render_one(const struct diag *d, const struct diag_entry *e, struct sbuf *out)
{
	static const char *const words[] = {
		[DIAG_ERROR] = "error",
		[DIAG_WARNING] = "warning",
		[DIAG_NOTE] = "note",
	};

	const char *path = e->path != NULL ? e->path : d->path;

	if (e->verbatim)
		butler__gen_sb_puts(out, e->text);
	else if (e->at.line == 0)
		butler__gen_sb_printf(
		    out, "%s: %s: %s\n", path, words[e->level], e->text);
	else
		butler__gen_sb_printf(out, "%s:%u:%u: %s: %s\n", path,
		    e->at.line, e->at.col, words[e->level], e->text);
}

void
butler__gen_diag_render(
    const struct diag *d, unsigned max_errors, struct sbuf *out)
{
	struct group *groups;
	size_t n_groups = 0;
	unsigned shown = 0;

	if (d->n == 0)
		return;
	groups = calloc(d->n, sizeof *groups);
	if (groups == NULL) {
		out->oom = true;
		return;
	}
	for (size_t i = 0; i < d->n; i++) {
		if (d->v[i].level == DIAG_NOTE && n_groups > 0) {
			groups[n_groups - 1].n++;
			continue;
		}
		groups[n_groups].first = i;
		groups[n_groups].n = 1;
		groups[n_groups].head = &d->v[i];
		n_groups++;
	}
	qsort(groups, n_groups, sizeof *groups, group_cmp);
	for (size_t g = 0; g < n_groups; g++) {
		if (groups[g].head->level == DIAG_ERROR) {
			if (max_errors != 0 && shown == max_errors)
				break;
			shown++;
		}
		for (size_t k = 0; k < groups[g].n; k++)
			render_one(d, &d->v[groups[g].first + k], out);
	}
	if (shown < d->errors && max_errors != 0 && shown == max_errors)
		butler__gen_sb_printf(out,
		    "%s: note: too many errors, stopping: "
		    "%u more not shown (see --max-errors)\n",
		    d->path, d->errors - shown);
	free(groups);
}

const char *
butler__gen_quote(char *buf, size_t size, const char *s)
{
	size_t o = 0;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		/* Leave room for "\xNN", "..." and the NUL. */
		if (o + 8 > size) {
			memcpy(buf + o, "...", 4);
			return buf;
		}
		if (c < 0x20 || c >= 0x7f || c == '\\')
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	buf[o] = '\0';
	return buf;
}
