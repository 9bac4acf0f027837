/* SPDX-License-Identifier: MIT */
/*
 * tests/codegen/fuzz/fuzz_spec.c — libFuzzer target for butler-gen's spec
 * reader: parse, check, render the diagnostics and, for a valid spec, emit
 * both files to memory. Any crash, leak (ASan), undefined behaviour (UBSan)
 * or hang is a bug, and so is a broken contract:
 *
 * - the position scanner disagrees with cJSON (butler_gen_self_check());
 * - an accepted spec fails to emit;
 * - a rejected spec does not say where: every rejected input must print at
 *   least one `fuzz.json:LINE:COL: error:` line, and every position printed
 *   must be inside the input (LINE within 1..number of lines, COL within
 *   1..the line's length + 1, in characters as the diagnostics count them).
 *
 * That accepted specs also compile is checked outside, on the corpus
 * (compile_corpus.sh): a compiler per input would be far too slow here.
 * Imports are never read: the reader says no file exists, so an input
 * cannot make butler-gen open files. Built and run by run.sh.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "butler_gen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
no_files(void *user, const char *path, char **text, size_t *len)
{
	(void)user;
	(void)path;
	(void)text;
	(void)len;
	return ENOENT;
}

/* line_length returns the length in characters of line `line` (1-based)
 * of the input, or -1 past the last line. Characters are counted as the
 * diagnostics count columns: UTF-8 lead bytes and ASCII, not continuation
 * bytes; a byte order mark does not count on line 1. */
static long
line_length(const uint8_t *data, size_t size, unsigned long line)
{
	size_t i = size >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
	unsigned long at = 1;
	long n = 0;

	for (; i < size && at < line; i++)
		if (data[i] == '\n')
			at++;
	if (at < line)
		return -1;
	for (; i < size && data[i] != '\n'; i++)
		if ((data[i] & 0xc0) != 0x80)
			n++;
	return n;
}

static void
fail(const char *why, const char *line, const char *all)
{
	fprintf(stderr, "contract broken: %s\n  line: %.200s\n  all:\n%s\n",
	    why, line, all);
	abort();
}

/* check_positions aborts unless the diagnostics of a rejected input
 * respect the contract above. */
static void
check_positions(const uint8_t *data, size_t size, const char *diags)
{
	static const char prefix[] = "fuzz.json";
	bool error_at = false;

	for (const char *p = diags; *p != '\0';) {
		const char *end = strchr(p, '\n');
		char line[512];
		unsigned long l, c;
		long len;
		int used = 0;

		if (end == NULL)
			fail("a diagnostic without a newline", p, diags);
		snprintf(line, sizeof line, "%.*s", (int)(end - p), p);
		p = end + 1;
		if (strncmp(line, prefix, sizeof prefix - 1) != 0)
			fail("a diagnostic for another file", line, diags);
		if (line[sizeof prefix - 1] == ':'
		    && line[sizeof prefix] == ' ')
			continue; /* "fuzz.json: note: too many errors" */
		if (sscanf(line + sizeof prefix - 1, ":%lu:%lu: %n", &l, &c,
		        &used)
		        != 2
		    || used == 0)
			fail("a diagnostic without LINE:COL", line, diags);
		len = line_length(data, size, l);
		if (l < 1 || len < 0)
			fail("a line outside the input", line, diags);
		if (c < 1 || c > (unsigned long)len + 1)
			fail("a column outside its line", line, diags);
		if (strncmp(line + sizeof prefix - 1 + used, "error: ", 7)
		    == 0)
			error_at = true;
	}
	if (!error_at)
		fail("a rejected input without LINE:COL: error:", "", diags);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	butler_gen *g;
	const char *h, *c, *diags;
	int rv;

	if (butler_gen_new(&g, "fuzz.json") != BUTLER_GEN_OK)
		return 0;
	butler_gen_set_reader(g, no_files, NULL);
	rv = butler_gen_parse(g, (const char *)data, size);
	if (!butler_gen_self_check(g))
		abort();
	if (rv == BUTLER_GEN_OK
	    && butler_gen_emit(g, &h, NULL, &c, NULL) != BUTLER_GEN_OK)
		abort();
	/* Every error must have been given a line of text. */
	diags = butler_gen_diagnostics(g);
	if (diags == NULL)
		abort();
	if (rv == BUTLER_GEN_ESPEC)
		check_positions(data, size, diags);
	butler_gen_free(g);
	return 0;
}
