/* SPDX-License-Identifier: MIT */
/*
 * tests/codegen/fuzz/fuzz_wire.c — libFuzzer target for the generated
 * decoders (tests/codegen/ok/wire.json: every field type, nested twice),
 * called as a bridge calls them, through the descriptors of w_spec. The
 * first input byte picks the message, the rest is the frame. Any crash,
 * out-of-bounds read (ASan), undefined behaviour (UBSan), leak or hang is a
 * bug, and so is a broken contract:
 *
 * - a decode fails with anything but BUTLER_EWIRE (the input is never too
 *   large to allocate: the decoder allocates at most what the frame holds),
 *   or leaves the output anything but all zero;
 * - a decoded message does not re-encode to the very bytes it came from
 *   (every valid encoding is canonical), or wire_size disagrees with them;
 * - in prefix mode (`used` given) it takes more bytes than it was given, or
 *   decodes a different message from the one whole-frame mode gives.
 *
 * Decoded messages are freed by the generated destructor, so LeakSanitizer
 * checks it too. Built with -DFUZZ_WIRE_SEEDS instead, this file is a
 * program writing a seed corpus of valid frames (one per message, and a
 * few large ones) into the directory given. Built and run by run.sh,
 * without the runtime: the codecs need none.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.butler.h"

static void
fail(const char *why, const butler_msg_desc *d, int rv)
{
	/* No butler_errname(): the target links no runtime. */
	fprintf(stderr, "contract broken: %s (message '%s', result %d)\n", why,
	    d->name, rv);
	abort();
}

static bool
all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

/* check_canonical aborts unless *msg encodes to the `len` bytes at `in`. */
static void
check_canonical(const butler_msg_desc *d, const void *msg,
    const unsigned char *in, size_t len)
{
	size_t size = d->wire_size(msg), used = 0;
	unsigned char *again;
	int rv;

	if (size != len)
		fail("wire_size differs from the bytes decoded", d, 0);
	again = malloc(len > 0 ? len : 1);
	if (again == NULL)
		abort();
	rv = d->encode(msg, again, len, &used);
	if (rv != BUTLER_OK || used != len)
		fail("a decoded message does not re-encode", d, rv);
	if (len > 0 && memcmp(again, in, len) != 0)
		fail("a decoded message re-encodes to other bytes", d, rv);
	free(again);
}

#ifndef FUZZ_WIRE_SEEDS
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const butler_msg_desc *d;
	const unsigned char *in;
	unsigned char *whole, *prefix;
	size_t len, used = 0;
	int rv, rv_prefix;

	if (size < 1)
		return 0;
	d = &w_spec.messages[data[0] % w_spec.n_messages];
	if (d->decode == NULL)
		return 0; /* 'local' holds a ptr: no codec */
	in = data + 1;
	len = size - 1;
	whole = malloc(d->size);
	prefix = malloc(d->size);
	if (whole == NULL || prefix == NULL)
		abort();
	/* Garbage first: the decoder must not read what *out held. */
	memset(whole, 0xa5, d->size);
	memset(prefix, 0x5a, d->size);

	rv = d->decode(whole, in, len, NULL);
	if (rv == BUTLER_OK)
		check_canonical(d, whole, in, len);
	else if (rv != BUTLER_EWIRE)
		fail("a decode failed with another code than EWIRE", d, rv);
	else if (!all_zero(whole, d->size))
		fail("a failed decode left its output non-zero", d, rv);

	rv_prefix = d->decode(prefix, in, len, &used);
	if (rv_prefix == BUTLER_OK) {
		if (used > len)
			fail("prefix mode took more than the input", d, 0);
		check_canonical(d, prefix, in, used);
		/* Whole-frame mode accepts exactly the frames prefix mode
		 * reads to the end (and both re-encode to those bytes, so
		 * they decoded the same message). */
		if ((rv == BUTLER_OK) != (used == len))
			fail("the two modes disagree", d, rv);
	} else if (rv_prefix != BUTLER_EWIRE) {
		fail("a prefix decode failed with another code than EWIRE", d,
		    rv_prefix);
	} else if (!all_zero(prefix, d->size)) {
		fail("a failed prefix decode left its output non-zero", d,
		    rv_prefix);
	} else if (rv == BUTLER_OK) {
		fail("prefix mode refuses a frame whole-frame mode takes", d,
		    rv_prefix);
	}

	if (d->destroy != NULL) {
		d->destroy(whole);
		d->destroy(prefix);
	}
	free(whole);
	free(prefix);
	return 0;
}

#else /* FUZZ_WIRE_SEEDS */

static void
seed(const char *dir, const char *name, unsigned id, const void *msg)
{
	const butler_msg_desc *d = &w_spec.messages[id];
	size_t size = d->wire_size(msg), used = 0;
	unsigned char *buf = malloc(size + 1);
	char path[4096];
	FILE *f;

	if (buf == NULL)
		abort();
	buf[0] = (unsigned char)id;
	if (d->encode(msg, buf + 1, size, &used) != BUTLER_OK || used != size)
		abort();
	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(buf, 1, size + 1, f) != size + 1
	    || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
	free(buf);
}

int
main(int argc, char **argv)
{
	static char big[5000];
	static uint8_t bytes[] = { 0, 1, 2, 0xff, 0x80, 0x7f };
	struct w_scalars sc = { true, -1, INT16_MIN, INT32_MAX, INT64_MIN,
		0xff, 0x8000, 0xdeadbeef, UINT64_MAX, -0.0f, 1e300 };
	struct w_blobs bl = { .text = (char *)"text",
		.data = { bytes, sizeof bytes },
		.shared = { bytes, 3, NULL, NULL } };
	struct w_blobs bl_null = { 0 };
	struct w_outer out = { .first = 7,
		.inside = { .name = (char *)"in", .nums = sc, .ok = true },
		.blobs = bl,
		.last = (char *)"",
		.done = true };
	struct w_outer big_out = out;
	struct w_empty e = { 0 };
	struct w_ask ask = { .question = (char *)"why?" };
	struct w_answer ans = { .text = (char *)"because", .n = 42 };
	struct w_step st = { .k = 3 };
	struct w_inner in = out.inside;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	memset(big, 'b', sizeof big - 1);
	big_out.last = big;
	seed(argv[1], "scalars", W_MSG_SCALARS, &sc);
	seed(argv[1], "blobs", W_MSG_BLOBS, &bl);
	seed(argv[1], "blobs-null", W_MSG_BLOBS, &bl_null);
	seed(argv[1], "inner", W_MSG_INNER, &in);
	seed(argv[1], "outer", W_MSG_OUTER, &out);
	seed(argv[1], "outer-big", W_MSG_OUTER, &big_out);
	seed(argv[1], "empty", W_MSG_EMPTY, &e);
	seed(argv[1], "ask", W_MSG_ASK, &ask);
	seed(argv[1], "answer", W_MSG_ANSWER, &ans);
	seed(argv[1], "step", W_MSG_STEP, &st);
	return 0;
}
#endif
