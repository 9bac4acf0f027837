/* SPDX-License-Identifier: MIT */
/*
 * codegen/sbuf.h — a growable string buffer for butler-gen.
 *
 * Every text butler-gen produces (diagnostics, the generated header and
 * source) is built in an sbuf. An allocation failure is sticky: the buffer
 * remembers it, later appends do nothing, and the owner checks `oom` once at
 * the end instead of after every append.
 */
#ifndef BUTLER_CODEGEN_SBUF_H
#define BUTLER_CODEGEN_SBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* struct sbuf is zero-initialised to an empty buffer. */
struct sbuf {
	char *data; /* NUL-terminated when len > 0 */
	size_t len;
	size_t cap;
	bool oom; /* an append failed; the content is incomplete */
};

/* butler__gen_sb_putn appends n bytes of s. */
void butler__gen_sb_putn(struct sbuf *sb, const char *s, size_t n);

/* butler__gen_sb_puts appends the string s. */
void butler__gen_sb_puts(struct sbuf *sb, const char *s);

/* butler__gen_sb_printf appends printf-formatted text. */
void butler__gen_sb_printf(struct sbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* butler__gen_sb_vprintf is butler__gen_sb_printf with a va_list. */
void butler__gen_sb_vprintf(struct sbuf *sb, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* butler__gen_sb_cstr returns the content as a string ("" when empty). */
const char *butler__gen_sb_cstr(const struct sbuf *sb);

/* butler__gen_sb_release frees the buffer and leaves it empty. */
void butler__gen_sb_release(struct sbuf *sb);

#endif /* BUTLER_CODEGEN_SBUF_H */
