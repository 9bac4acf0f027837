/* SPDX-License-Identifier: MIT */
/* codegen/sbuf.c — growable string buffer (see sbuf.h). */
#include "sbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* grow makes room for `more` bytes plus a NUL, doubling to keep appends
 * amortised O(1) on the 1,000-message specs of the generator benchmark. */
static bool
grow(struct sbuf *sb, size_t more)
{
	size_t need, cap;
	char *data;

	if (sb->oom)
		return false;
	if (more > (size_t)-1 / 2 - sb->len)
		goto out_oom;
	need = sb->len + more + 1;
	if (need <= sb->cap)
		return true;
	cap = sb->cap ? sb->cap : 256;
	while (cap < need)
		cap *= 2;
	data = realloc(sb->data, cap);
	if (data == NULL)
		goto out_oom;
	sb->data = data;
	sb->cap = cap;
	return true;

out_oom:
	sb->oom = true;
	return false;
}

void
butler__gen_sb_putn(struct sbuf *sb, const char *s, size_t n)
{
	if (!grow(sb, n))
		return;
	memcpy(sb->data + sb->len, s, n);
	sb->len += n;
	sb->data[sb->len] = '\0';
}

void
butler__gen_sb_puts(struct sbuf *sb, const char *s)
{
	butler__gen_sb_putn(sb, s, strlen(s));
}

void
butler__gen_sb_vprintf(struct sbuf *sb, const char *fmt, va_list ap)
{
	va_list again;
	int n;

	/* Format once into the free space; only when it does not fit, grow
	 * to the exact size and format again. */
	if (!grow(sb, 0))
		return;
	va_copy(again, ap);
	n = vsnprintf(sb->data + sb->len, sb->cap - sb->len, fmt, ap);
	if (n < 0) {
		sb->oom = true;
		goto out;
	}
	if ((size_t)n >= sb->cap - sb->len) {
		if (!grow(sb, (size_t)n))
			goto out;
		vsnprintf(sb->data + sb->len, sb->cap - sb->len, fmt, again);
	}
	sb->len += (size_t)n;
out:
	va_end(again);
}

void
butler__gen_sb_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	butler__gen_sb_vprintf(sb, fmt, ap);
	va_end(ap);
}

const char *
butler__gen_sb_cstr(const struct sbuf *sb)
{
	return sb->data ? sb->data : "";
}

void
butler__gen_sb_release(struct sbuf *sb)
{
	free(sb->data);
	sb->data = NULL;
	sb->len = 0;
	sb->cap = 0;
	sb->oom = false;
}
