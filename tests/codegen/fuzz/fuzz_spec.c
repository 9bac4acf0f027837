/*
 * tests/codegen/fuzz/fuzz_spec.c — libFuzzer target for butler-gen's spec
 * reader: parse, check, render the diagnostics and, for a valid spec, emit
 * both files to memory. Any crash, leak (ASan), undefined behaviour (UBSan)
 * or hang is a bug, and so is the position scanner disagreeing with cJSON.
 * Built and run by run.sh.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "butler_gen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	butler_gen *g;
	const char *h, *c;
	int rv;

	if (butler_gen_new(&g, "fuzz.json") != BUTLER_GEN_OK)
		return 0;
	rv = butler_gen_parse(g, (const char *)data, size);
	if (!butler_gen_self_check(g))
		abort();
	if (rv == BUTLER_GEN_OK
	    && butler_gen_emit(g, &h, NULL, &c, NULL) != BUTLER_GEN_OK)
		abort();
	/* Every error must have been given a line of text. */
	if (butler_gen_diagnostics(g) == NULL)
		abort();
	butler_gen_free(g);
	return 0;
}
