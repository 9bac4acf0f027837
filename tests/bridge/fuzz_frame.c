/* SPDX-License-Identifier: MIT */
/*
 * tests/bridge/fuzz_frame.c — libFuzzer target for the bridge's frame
 * parser (servers/bridge/frame.c): what a link reads from a peer, before
 * anything else looks at it. The first input byte picks the largest frame
 * allowed (so that the limit itself is exercised), the rest is the byte
 * stream. Any crash, out-of-bounds read (ASan), undefined behaviour
 * (UBSan), leak or hang is a bug, and so is a broken contract:
 *
 * - a frame is reported larger than the input, smaller than a header, or
 *   larger than the limit; its body lies outside it;
 * - a frame does not re-encode to the very bytes it came from (every
 *   valid frame is canonical);
 * - a prefix of a frame is reported as anything but "more", or "more" is
 *   reported for a prefix whose length field is over the limit;
 * - a HELLO or WELCOME body that parses does not re-encode to itself.
 *
 * Built with -DFUZZ_FRAME_SEEDS instead, this file is a program writing a
 * seed corpus (one valid frame of each type, and a stream of several) into
 * the directory given. Built and run by fuzz.sh, with frame.c alone: no
 * nng, no runtime.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <butler/wire.h>

#include "frame.h"

static void
fail(const char *why, size_t off)
{
	fprintf(stderr, "contract broken: %s (at offset %zu)\n", why, off);
	abort();
}

/* A HELLO or WELCOME body that parses re-encodes to itself. */
static void
check_hello(const struct butler__frame *f, size_t off)
{
	static struct butler__hello h;
	bool welcome = f->type == BUTLER__F_WELCOME;
	struct butler__obuf ob = { 0 };
	struct butler__frame g;
	const char *why;

	if (butler__hello_parse(f->body, f->body_len, welcome, &h, &why)
	    != BUTLER__HELLO_OK)
		return;
	if (h.n_specs > BUTLER__MAX_SPECS || h.n_targets > BUTLER__MAX_TARGETS)
		fail("hello counts beyond their limits", off);
	for (unsigned i = 0; i < h.n_targets; i++)
		if (h.targets[i].spec >= h.n_specs)
			fail("hello target of no spec", off);
	if (butler__put_hello(&ob, welcome, &h) != BUTLER_OK)
		fail("a parsed hello does not encode", off);
	if (butler__frame_next(ob.p, ob.len, SIZE_MAX, &g, &why)
	        != BUTLER__PARSE_FRAME
	    || g.body_len != f->body_len
	    || memcmp(g.body, f->body, f->body_len) != 0)
		fail("a parsed hello re-encodes differently", off);
	butler__obuf_free(&ob);
}

static void
check_frame(const unsigned char *in, size_t left, size_t max,
    const struct butler__frame *f, size_t off)
{
	struct butler__obuf ob = { 0 };
	struct butler__frame g;
	const char *why;

	if (f->size < 5 || f->size > left || f->size > max)
		fail("frame size out of range", off);
	if (f->body < in + 5 || f->body + f->body_len > in + f->size)
		fail("frame body outside the frame", off);
	if (butler__put_frame(&ob, f) != BUTLER_OK || ob.len != f->size
	    || memcmp(ob.p, in, f->size) != 0)
		fail("frame is not canonical", off);
	butler__obuf_free(&ob);
	/* Its prefixes are beginnings, never frames or garbage. */
	for (size_t n = 0; n < f->size; n += 1 + n / 4)
		if (butler__frame_next(in, n, max, &g, &why)
		    != BUTLER__PARSE_MORE)
			fail("a frame's prefix is not 'more'", off);
	if (f->type == BUTLER__F_HELLO || f->type == BUTLER__F_WELCOME)
		check_hello(f, off);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t max, off = 0;

	if (size < 1)
		return 0;
	max = 8 + (size_t)data[0] * 64;
	data++;
	size--;
	while (off < size) {
		struct butler__frame f;
		const char *why = NULL;
		int rv = butler__frame_next(
		    data + off, size - off, max, &f, &why);

		if (rv == BUTLER__PARSE_BAD) {
			if (why == NULL)
				fail("refused without a reason", off);
			break;
		}
		if (rv == BUTLER__PARSE_MORE) {
			/* The length field, once there, is within the limit.
			 */
			if (size - off >= 4) {
				butler_wire_reader r;

				butler_wire_reader_init(&r, data + off, 4);
				if (4 + (size_t)butler_wire_get_u32(&r) > max)
					fail("'more' for a frame over the "
					     "limit",
					    off);
			}
			break;
		}
		check_frame(data + off, size - off, max, &f, off);
		off += f.size;
	}
	return 0;
}

#ifdef FUZZ_FRAME_SEEDS
/* A message codec for the seeds: one u32. */
static size_t
u32_size(const void *msg)
{
	(void)msg;
	return 4;
}

static int
u32_encode(const void *msg, unsigned char *out, size_t cap, size_t *used)
{
	butler_wire_writer w;

	butler_wire_writer_init(&w, out, cap);
	butler_wire_put_u32(&w, *(const uint32_t *)msg);
	if (used != NULL)
		*used = w.err == BUTLER_OK ? 4 : 0;
	return w.err;
}

static void
write_seed(const char *dir, const char *name, unsigned char max_sel,
    const struct butler__obuf *ob)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL) {
		perror(path);
		exit(1);
	}
	fwrite(&max_sel, 1, 1, f);
	fwrite(ob->p, 1, ob->len, f);
	fclose(f);
}

int
main(int argc, char **argv)
{
	static const butler_msg_desc u32 = { .name = "u32",
		.size = 4,
		.reply = -1,
		.progress = -1,
		.wire_size = u32_size,
		.encode = u32_encode };
	static struct butler__hello h;
	struct butler__obuf ob = { 0 }, all = { 0 };
	unsigned char mac[BUTLER__MAC_LEN] = { 1, 2, 3 };
	uint32_t v = 0xdeadbeef;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
#define SEED(name, call)                                                      \
	do {                                                                  \
		ob.len = 0;                                                   \
		if ((call) != BUTLER_OK)                                      \
			return 1;                                             \
		write_seed(argv[1], name, 255, &ob);                          \
		memcpy(butler__obuf_room(&all, ob.len), ob.p, ob.len);        \
	} while (0)
	h.proto = BUTLER__BRIDGE_PROTO;
	h.flags = BUTLER__HELLO_SECRET;
	h.n_specs = 2;
	strcpy(h.specs[0].app, "app");
	strcpy(h.specs[0].version, "1.2");
	h.specs[0].hash = 0x0123456789abcdefu;
	strcpy(h.specs[1].app, "tasks");
	h.specs[1].hash = 7;
	h.n_targets = 2;
	h.targets[1].spec = 1;
	h.targets[1].server = 3;
	SEED("hello", butler__put_hello(&ob, false, &h));
	h.n_targets = 0;
	SEED("welcome", butler__put_hello(&ob, true, &h));
	SEED("auth", butler__put_auth(&ob, mac));
	SEED("ready", butler__put_ready(&ob, 1024, 1 << 20, 1 << 24));
	SEED("error", butler__put_error(&ob, 2, "spec 'app' differs"));
	SEED("send", butler__put_send(&ob, 1 << 20, 1, 2, &u32, &v, NULL));
	SEED("call",
	    butler__put_call(
	        &ob, 1 << 20, 0, 1, 1 << 20 | 3, 250, &u32, &v, NULL));
	SEED("cancel", butler__put_id(&ob, BUTLER__F_CANCEL, 1 << 20 | 3));
	SEED("reply",
	    butler__put_answer(
	        &ob, 1 << 20, BUTLER__F_REPLY, 1 << 20 | 3, &u32, &v));
	SEED("progress",
	    butler__put_answer(
	        &ob, 1 << 20, BUTLER__F_PROGRESS, 1 << 20 | 3, &u32, &v));
	SEED("fail", butler__put_fail(&ob, 5, 4));
	SEED("credit", butler__put_credit(&ob, 1, 10, 410));
	write_seed(argv[1], "stream", 255, &all);
	write_seed(argv[1], "stream-small-limit", 0, &all);
	butler__obuf_free(&ob);
	butler__obuf_free(&all);
	return 0;
}
#endif
