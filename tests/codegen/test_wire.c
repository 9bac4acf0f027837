/* SPDX-License-Identifier: MIT */
/*
 * tests/codegen/test_wire.c — the generated wire format (ok/wire.json).
 *
 * Every field type goes through encode -> decode -> compare, at its
 * limits (integers at their extremes, NaN with a payload, infinities,
 * -0.0, NULL, empty and long strings, empty and large bytes and bufs,
 * nested messages, a message without fields). Hand-written frames pin the
 * byte layout SPEC.md documents. Malformed frames (every truncation,
 * lengths of 0xFFFFFFFF, a bool of 2, a NUL inside a string, trailing
 * bytes, a bad value deep in a nested message) must fail with BUTLER_EWIRE,
 * leave the output zeroed and leak nothing (ASan and valgrind check the
 * last). The descriptors carry the same codecs, type-erased, for a bridge.
 * No hub is started: the codecs need no runtime.
 */
#include <criterion/criterion.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <butler/wire.h>

#include "wire.butler.h"

static char *
dup_str(const char *s)
{
	char *d = malloc(strlen(s) + 1);

	cr_assert_not_null(d);
	return strcpy(d, s);
}

static void *
dup_mem(const void *p, size_t n)
{
	void *d = malloc(n > 0 ? n : 1);

	cr_assert_not_null(d);
	if (n > 0)
		memcpy(d, p, n);
	return d;
}

static void
free_buf(void *data, void *ctx)
{
	int *frees = ctx;

	free(data);
	(*frees)++;
}

/* all_zero says whether the n bytes at p are all 0. */
static bool
all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return false;
	return true;
}

/*
 * enc encodes *msg, message `id` of w_spec, through its descriptor into a
 * buffer of exactly its wire size (from malloc(), so that ASan sees any
 * write past it) and checks that encode writes what wire_size promised.
 */
static unsigned char *
enc(unsigned id, const void *msg, size_t *n)
{
	const butler_msg_desc *d = &w_spec.messages[id];
	size_t size = d->wire_size(msg), used = 12345;
	unsigned char *buf;

	cr_assert_neq(size, SIZE_MAX, "%s cannot be encoded", d->name);
	buf = malloc(size > 0 ? size : 1);
	cr_assert_not_null(buf);
	cr_assert_eq(d->encode(msg, buf, size, &used), BUTLER_OK);
	cr_assert_eq(used, size, "%s: encode wrote %zu bytes, wire_size %zu",
	    d->name, used, size);
	*n = size;
	return buf;
}

/* same_bytes says whether the n bytes at a and at b are equal (floats are
 * compared by their bits: NaN equals itself, -0.0 differs from 0.0). */
static bool
same_bytes(const void *a, const void *b, size_t n)
{
	return memcmp(a, b, n) == 0;
}

static bool
scalars_eq(const struct w_scalars *a, const struct w_scalars *b)
{
	return a->flag == b->flag && a->i8 == b->i8 && a->i16 == b->i16
	    && a->i32 == b->i32 && a->i64 == b->i64 && a->u8 == b->u8
	    && a->u16 == b->u16 && a->u32 == b->u32 && a->u64 == b->u64
	    && same_bytes(&a->f32, &b->f32, sizeof a->f32)
	    && same_bytes(&a->f64, &b->f64, sizeof a->f64);
}

static bool
str_eq(const char *a, const char *b)
{
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

static bool
blob_eq(const void *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static bool
blobs_eq(const struct w_blobs *a, const struct w_blobs *b)
{
	return str_eq(a->text, b->text)
	    && blob_eq(a->data.data, a->data.len, b->data.data, b->data.len)
	    && blob_eq(
	        a->shared.data, a->shared.len, b->shared.data, b->shared.len);
}

static bool
inner_eq(const struct w_inner *a, const struct w_inner *b)
{
	return str_eq(a->name, b->name) && scalars_eq(&a->nums, &b->nums)
	    && a->ok == b->ok;
}

static bool
outer_eq(const struct w_outer *a, const struct w_outer *b)
{
	return a->first == b->first && inner_eq(&a->inside, &b->inside)
	    && blobs_eq(&a->blobs, &b->blobs) && str_eq(a->last, b->last)
	    && a->done == b->done;
}

static float
f32_bits(uint32_t u)
{
	float f;

	memcpy(&f, &u, sizeof f);
	return f;
}

static double
f64_bits(uint64_t u)
{
	double d;

	memcpy(&d, &u, sizeof d);
	return d;
}

Test(wire, scalars_at_their_limits)
{
	struct w_scalars cases[] = {
		{ false, INT8_MIN, INT16_MIN, INT32_MIN, INT64_MIN, 0, 0, 0, 0,
		    -INFINITY, -INFINITY },
		{ true, INT8_MAX, INT16_MAX, INT32_MAX, INT64_MAX, UINT8_MAX,
		    UINT16_MAX, UINT32_MAX, UINT64_MAX, INFINITY, INFINITY },
		{ true, -1, -1, -1, -1, 1, 1, 1, 1, -0.0f, -0.0 },
		{ false, 0, 0, 0, 0, 0, 0, 0, 0, 0.0f, 0.0 },
		/* NaNs with a payload and a sign, quiet and signalling. */
		{ true, 1, 2, 3, 4, 5, 6, 7, 8, f32_bits(0x7fc00001u),
		    f64_bits(UINT64_C(0xfff8000000000123)) },
		{ false, 1, 2, 3, 4, 5, 6, 7, 8, f32_bits(0xff800001u),
		    f64_bits(UINT64_C(0x7ff0000000000001)) },
		{ true, 0, 0, 0, 0, 0, 0, 0, 0, FLT_TRUE_MIN, DBL_TRUE_MIN },
		{ true, 0, 0, 0, 0, 0, 0, 0, 0, -FLT_MAX, DBL_MAX },
	};

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct w_scalars out;
		unsigned char again[64];
		size_t n, used = 0;
		unsigned char *buf = enc(W_MSG_SCALARS, &cases[i], &n);

		cr_assert_eq(n, 43, "11 fixed-width fields take 43 bytes");
		cr_assert_eq(w_scalars_decode(&out, buf, n, NULL), BUTLER_OK);
		cr_expect(scalars_eq(&out, &cases[i]), "case %zu differs", i);
		cr_assert_eq(
		    w_scalars_encode(&out, again, sizeof again, &used),
		    BUTLER_OK);
		cr_expect_eq(used, n);
		cr_expect(same_bytes(again, buf, n),
		    "case %zu re-encodes "
		    "differently",
		    i);
		free(buf);
	}
}

/* The byte layout SPEC.md documents, written out by hand. */
Test(wire, bytes_on_the_wire)
{
	static const unsigned char want_scalars[43] = {
		0x01,                   /* flag */
		0xfe,                   /* i8 -2 */
		0xcc, 0xed,             /* i16 -4660 (0xedcc) */
		0x78, 0x56, 0x34, 0x12, /* i32 0x12345678 */
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, /* i64 max */
		0x80,                                           /* u8 */
		0x02, 0x01,             /* u16 0x0102 */
		0x04, 0x03, 0x02, 0x01, /* u32 0x01020304 */
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* u64 */
		0x00, 0x00, 0xc0, 0x3f,                         /* f32 1.5 */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0xc0, /* f64 -2.5 */
	};
	static const unsigned char want_blobs[] = {
		0x02, 0x00, 0x00, 0x00, 'h', 'i', /* text "hi", no NUL */
		0x03, 0x00, 0x00, 0x00, 1, 2, 3,  /* data */
		0x00, 0x00, 0x00, 0x00,           /* shared: empty */
	};
	static const unsigned char want_null[] = {
		0xff, 0xff, 0xff, 0xff, /* text NULL */
		0x00, 0x00, 0x00, 0x00, /* data empty */
		0x00, 0x00, 0x00, 0x00, /* shared empty */
	};
	struct w_scalars s = { true, -2, -4660, 0x12345678, INT64_MAX, 0x80,
		0x0102, 0x01020304, UINT64_C(0x0102030405060708), 1.5f, -2.5 };
	uint8_t three[] = { 1, 2, 3 };
	struct w_blobs b
	    = { .text = (char *)"hi", .data = { three, sizeof three } };
	struct w_blobs null = { 0 };
	unsigned char out[64];
	size_t used = 0;

	cr_assert_eq(w_scalars_encode(&s, out, sizeof out, &used), BUTLER_OK);
	cr_assert_eq(used, sizeof want_scalars);
	cr_expect(same_bytes(out, want_scalars, used));
	cr_assert_eq(w_blobs_encode(&b, out, sizeof out, &used), BUTLER_OK);
	cr_assert_eq(used, sizeof want_blobs);
	cr_expect(same_bytes(out, want_blobs, used));
	cr_assert_eq(w_blobs_encode(&null, out, sizeof out, &used), BUTLER_OK);
	cr_assert_eq(used, sizeof want_null);
	cr_expect(same_bytes(out, want_null, used));
	cr_expect_eq(w_blobs_wire_size(&b), sizeof want_blobs);
}

Test(wire, strings)
{
	size_t big = (size_t)1 << 20;
	char *long_text = malloc(big + 1);
	const char *texts[]
	    = { NULL, "", "x", "gr\xc3\xbc\xc3\x9f dich", NULL };

	cr_assert_not_null(long_text);
	memset(long_text, 'a', big);
	long_text[big] = '\0';
	texts[4] = long_text;
	for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
		struct w_blobs in = { .text = (char *)texts[i] }, out;
		size_t n;
		unsigned char *buf = enc(W_MSG_BLOBS, &in, &n);

		cr_expect_eq(n, 12 + (texts[i] ? strlen(texts[i]) : 0));
		cr_assert_eq(w_blobs_decode(&out, buf, n, NULL), BUTLER_OK);
		cr_expect(str_eq(out.text, texts[i]), "string %zu differs", i);
		if (texts[i] != NULL)
			cr_expect_neq(
			    out.text, texts[i], "a copy, not a share");
		w_blobs_destroy(&out);
		free(buf);
	}
	free(long_text);
}

Test(wire, bytes_and_buf)
{
	size_t sizes[] = { 0, 1, 3u << 20 };
	int frees = 0;

	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		unsigned char *data = malloc(sizes[i] + 1);
		unsigned char *shared = malloc(sizes[i] + 1);
		struct w_blobs in, out;
		unsigned char *buf;
		size_t n;

		cr_assert(data != NULL && shared != NULL);
		for (size_t k = 0; k < sizes[i]; k++) {
			data[k] = (unsigned char)(k * 7);
			shared[k] = (unsigned char)(k * 13 + 1);
		}
		in = (struct w_blobs) {
			.data = { sizes[i] ? data : NULL, sizes[i] },
			.shared = { shared, sizes[i], free_buf, &frees },
		};
		buf = enc(W_MSG_BLOBS, &in, &n);
		cr_expect_eq(
		    frees, (int)i, "encoding does not release the buf");
		cr_assert_eq(w_blobs_decode(&out, buf, n, NULL), BUTLER_OK);
		cr_expect(blobs_eq(&out, &in));
		if (sizes[i] == 0) {
			/* Empty is NULL and 0, whatever the sender had. */
			cr_expect_null(out.data.data);
			cr_expect_null(out.shared.data);
			cr_expect_null(out.shared.free_fn);
		} else {
			cr_expect_neq(out.data.data, data);
			cr_expect_neq(out.shared.data, shared);
			cr_expect_not_null(out.shared.free_fn);
		}
		cr_expect_null(out.shared.ctx);
		/* The decoded buf is one allocation its free_fn frees (ASan
		 * reports a leak otherwise). */
		w_blobs_destroy(&out);
		cr_expect(all_zero(&out, sizeof out));
		w_blobs_destroy(&in);
		cr_expect_eq(frees, (int)i + 1);
		if (sizes[i] == 0)
			free(data); /* not in the message */
		free(buf);
	}
}

/* make_outer fills an outer message whose every field is owned or set. */
static struct w_outer
make_outer(int *frees)
{
	static const uint8_t data[] = { 9, 8, 7, 6 };
	static const char shared[] = "shared payload";

	return (struct w_outer) {
		.first = 0xa5,
		.inside = {
			.name = dup_str("inside"),
			.nums = { true, -3, -300, -70000, INT64_MIN + 1, 3, 300,
			    70000, UINT64_MAX - 1, -1.25f, 6.02e23 },
			.ok = true,
		},
		.blobs = {
			.text = dup_str("text"),
			.data = { dup_mem(data, sizeof data), sizeof data },
			.shared = { dup_mem(shared, sizeof shared),
			    sizeof shared, free_buf, frees },
		},
		.last = dup_str(""),
		.done = true,
	};
}

Test(wire, nested)
{
	int frees = 0;
	struct w_outer in = make_outer(&frees), out;
	size_t n, used = 0;
	unsigned char *buf = enc(W_MSG_OUTER, &in, &n);
	unsigned char *again;

	cr_assert_eq(
	    n, 1 + (4 + 6 + 43 + 1) + (4 + 4 + 4 + 4 + 4 + 15) + 4 + 1);
	cr_assert_eq(w_outer_decode(&out, buf, n, &used), BUTLER_OK);
	cr_expect_eq(used, n);
	cr_expect(outer_eq(&out, &in));
	again = enc(W_MSG_OUTER, &out, &used);
	cr_expect(used == n && same_bytes(again, buf, n));
	w_outer_destroy(&out);
	w_outer_destroy(&in);
	cr_expect_eq(frees, 1);
	free(again);
	free(buf);
}

Test(wire, empty_message)
{
	struct w_empty e = { 0 }, out;
	unsigned char one = 0;
	size_t used = 99;

	cr_expect_eq(w_empty_wire_size(&e), 0);
	cr_expect_eq(w_empty_encode(&e, NULL, 0, &used), BUTLER_OK);
	cr_expect_eq(used, 0);
	cr_expect_eq(w_empty_decode(&out, NULL, 0, NULL), BUTLER_OK);
	cr_expect_eq(w_empty_decode(&out, &one, 1, NULL), BUTLER_EWIRE,
	    "a byte after an empty message is a trailing byte");
	cr_expect_eq(w_empty_decode(&out, &one, 1, &used), BUTLER_OK);
	cr_expect_eq(used, 0);
}

/* decode_fails checks that decoding the `len` bytes at `frame` as message
 * `id` fails with BUTLER_EWIRE, leaving the output zeroed. The bytes are
 * copied into an allocation of exactly `len`, so that ASan sees any read
 * beyond them. */
static void
decode_fails(unsigned id, const unsigned char *frame, size_t len, size_t *used,
    const char *what)
{
	const butler_msg_desc *d = &w_spec.messages[id];
	unsigned char *copy = dup_mem(frame, len);
	void *out = malloc(d->size);

	cr_assert_not_null(out);
	memset(out, 0xa5, d->size);
	cr_expect_eq(d->decode(out, copy, len, used), BUTLER_EWIRE,
	    "%s: %s of %zu bytes decodes", what, d->name, len);
	cr_expect(all_zero(out, d->size), "%s: output not zeroed", what);
	if (used != NULL)
		cr_expect_eq(*used, 0);
	free(out);
	free(copy);
}

Test(wire, every_truncation_fails)
{
	int frees = 0;
	struct w_outer in = make_outer(&frees);
	size_t n, used = 7;
	unsigned char *buf = enc(W_MSG_OUTER, &in, &n);

	for (size_t k = 0; k < n; k++) {
		decode_fails(W_MSG_OUTER, buf, k, NULL, "a truncation");
		decode_fails(W_MSG_OUTER, buf, k, &used, "a truncation");
	}
	w_outer_destroy(&in);
	free(buf);
}

/* put32 writes v little-endian at p. */
static void
put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

Test(wire, corrupt_lengths)
{
	unsigned char f[12 + 8] = { 0 };
	struct w_blobs out;
	unsigned char again[16];
	size_t used;

	/* text NULL, data empty, shared empty: valid, and canonical. */
	put32(f, BUTLER_WIRE_NULL);
	cr_assert_eq(w_blobs_decode(&out, f, 12, NULL), BUTLER_OK);
	cr_expect_null(out.text);
	cr_assert_eq(
	    w_blobs_encode(&out, again, sizeof again, &used), BUTLER_OK);
	cr_expect(used == 12 && same_bytes(again, f, 12));
	/* 0xFFFFFFFF means NULL for a string only. */
	memset(f, 0, sizeof f);
	put32(f + 4, BUTLER_WIRE_NULL);
	decode_fails(W_MSG_BLOBS, f, 12, NULL, "bytes of length 0xffffffff");
	memset(f, 0, sizeof f);
	put32(f + 8, BUTLER_WIRE_NULL);
	decode_fails(W_MSG_BLOBS, f, 12, NULL, "a buf of length 0xffffffff");
	/* Lengths beyond what is present, however large. */
	memset(f, 0, sizeof f);
	put32(f, BUTLER_WIRE_LEN_MAX);
	decode_fails(W_MSG_BLOBS, f, sizeof f, NULL, "a 4 GiB string");
	memset(f, 0, sizeof f);
	put32(f + 4, BUTLER_WIRE_LEN_MAX);
	decode_fails(W_MSG_BLOBS, f, sizeof f, NULL, "4 GiB of bytes");
	memset(f, 0, sizeof f);
	put32(f + 8, 0x80000000u);
	decode_fails(W_MSG_BLOBS, f, sizeof f, NULL, "a 2 GiB buf");
	memset(f, 0, sizeof f);
	put32(f + 8, 9); /* 8 bytes follow */
	decode_fails(W_MSG_BLOBS, f, sizeof f, NULL, "one byte too few");
	put32(f + 8, 8);
	cr_expect_eq(w_blobs_decode(&out, f, sizeof f, NULL), BUTLER_OK);
	cr_expect_eq(out.shared.len, 8);
	w_blobs_destroy(&out);
}

Test(wire, bool_must_be_0_or_1)
{
	struct w_scalars s = { .flag = true };
	unsigned char f[43];
	int frees = 0;
	struct w_outer in = make_outer(&frees), out;
	size_t n;
	unsigned char *buf;

	cr_assert_eq(w_scalars_encode(&s, f, sizeof f, NULL), BUTLER_OK);
	f[0] = 2;
	decode_fails(W_MSG_SCALARS, f, sizeof f, NULL, "bool 2");
	f[0] = 0xff;
	decode_fails(W_MSG_SCALARS, f, sizeof f, NULL, "bool 255");
	/* The last byte of outer is `done`: everything before it decodes
	 * (strings, bytes, a buf, two levels of nesting) and must be freed
	 * when it turns out to be 2. */
	buf = enc(W_MSG_OUTER, &in, &n);
	buf[n - 1] = 2;
	decode_fails(W_MSG_OUTER, buf, n, NULL, "a bad bool at the end");
	/* inside.ok is the byte after inside.nums: deep in the nesting. */
	buf[n - 1] = 1;
	cr_assert_eq(w_outer_decode(&out, buf, n, NULL), BUTLER_OK);
	w_outer_destroy(&out);
	buf[1 + 4 + 6 + 43] = 2;
	decode_fails(W_MSG_OUTER, buf, n, NULL, "a bad nested bool");
	w_outer_destroy(&in);
	free(buf);
}

Test(wire, nul_inside_a_string)
{
	unsigned char f[4 + 3 + 8] = { 3, 0, 0, 0, 'a', 0, 'b' };
	struct w_blobs out;

	decode_fails(W_MSG_BLOBS, f, sizeof f, NULL, "a NUL in a string");
	f[5] = 'x';
	cr_assert_eq(w_blobs_decode(&out, f, sizeof f, NULL), BUTLER_OK);
	cr_expect_str_eq(out.text, "axb");
	w_blobs_destroy(&out);
}

Test(wire, trailing_bytes)
{
	struct w_answer a = { .text = (char *)"forty-two", .n = 42 };
	struct w_step st = { .k = 7 };
	struct w_answer out;
	struct w_step out_step;
	unsigned char f[64];
	size_t na, ns, used = 0;

	cr_assert_eq(w_answer_encode(&a, f, sizeof f, &na), BUTLER_OK);
	cr_assert_eq(
	    w_step_encode(&st, f + na, sizeof f - na, &ns), BUTLER_OK);
	/* Whole-frame mode: the step after the answer is refused. */
	decode_fails(W_MSG_ANSWER, f, na + ns, NULL, "trailing bytes");
	/* Prefix mode: the answer, then the step, one after the other. */
	cr_assert_eq(w_answer_decode(&out, f, na + ns, &used), BUTLER_OK);
	cr_expect_eq(used, na);
	cr_expect(str_eq(out.text, "forty-two") && out.n == 42);
	w_answer_destroy(&out);
	cr_assert_eq(w_step_decode(&out_step, f + used, na + ns - used, NULL),
	    BUTLER_OK);
	cr_expect_eq(out_step.k, 7);
}

Test(wire, encode_refuses)
{
	int frees = 0;
	struct w_outer in = make_outer(&frees);
	size_t n = w_outer_wire_size(&in), used = 5;
	unsigned char *buf = malloc(n);
	uint8_t byte = 0;
	struct w_blobs bad = { .data = { NULL, 5 } };
	struct w_blobs huge
	    = { .data = { &byte, (size_t)BUTLER_WIRE_LEN_MAX + 1 } };
	struct w_blobs out;

	cr_assert_not_null(buf);
	for (size_t cap = 0; cap < n; cap++) {
		used = 5;
		cr_expect_eq(w_outer_encode(&in, buf, cap, &used),
		    BUTLER_EINVAL, "cap %zu of %zu", cap, n);
		cr_expect_eq(used, 0);
	}
	cr_expect_eq(w_outer_encode(&in, buf, n, NULL), BUTLER_OK);
	/* What the format cannot carry (nothing is read or allocated). */
	cr_expect_eq(w_blobs_wire_size(&bad), SIZE_MAX);
	cr_expect_eq(w_blobs_encode(&bad, buf, n, &used), BUTLER_EINVAL);
	cr_expect_eq(w_blobs_wire_size(&huge), SIZE_MAX);
	cr_expect_eq(w_blobs_encode(&huge, buf, n, &used), BUTLER_EINVAL);
	/* NULL arguments. */
	cr_expect_eq(w_outer_wire_size(NULL), SIZE_MAX);
	cr_expect_eq(w_outer_encode(NULL, buf, n, &used), BUTLER_EINVAL);
	cr_expect_eq(w_outer_encode(&in, NULL, n, &used), BUTLER_EINVAL);
	cr_expect_eq(w_blobs_decode(NULL, buf, n, &used), BUTLER_EINVAL);
	memset(&out, 0xa5, sizeof out);
	cr_expect_eq(w_blobs_decode(&out, NULL, 3, NULL), BUTLER_EINVAL);
	cr_expect(all_zero(&out, sizeof out));
	w_outer_destroy(&in);
	free(buf);
}

/* What a generic bridge sees: every message through its descriptor. */
Test(wire, descriptors)
{
	for (unsigned i = 0; i < w_spec.n_messages; i++) {
		const butler_msg_desc *d = &w_spec.messages[i];
		void *zero = calloc(1, d->size), *out = malloc(d->size);
		unsigned char *buf;
		size_t n, used = 0;

		cr_assert(zero != NULL && out != NULL);
		cr_expect((d->wire_size == NULL) == (d->encode == NULL)
		        && (d->encode == NULL) == (d->decode == NULL),
		    "%s: codec all or nothing", d->name);
		if (i == W_MSG_LOCAL) {
			cr_expect_null(d->decode, "a ptr has no codec");
			free(zero);
			free(out);
			continue;
		}
		cr_assert_not_null(d->decode, "%s has no codec", d->name);
		/* A zeroed message (NULL strings, empty bytes) travels. */
		buf = enc(i, zero, &n);
		memset(out, 0xa5, d->size);
		cr_assert_eq(d->decode(out, buf, n, &used), BUTLER_OK);
		cr_expect_eq(used, n);
		cr_expect(all_zero(out, d->size),
		    "%s: a zeroed message "
		    "decodes zeroed",
		    d->name);
		if (d->destroy != NULL)
			d->destroy(out);
		free(buf);
		free(zero);
		free(out);
	}
	cr_expect_eq(w_spec.servers[W_SERVER_FAR].flags, BUTLER_SERVER_REMOTE);
	cr_expect_eq(w_spec.servers[W_SERVER_NEAR].flags, 0);
	cr_expect_eq(w_spec.wire_hash, W_WIRE_HASH);
	cr_expect_str_eq(w_spec.version, "wire-test 1");
	cr_expect_eq(w_spec.abi, 3);
}

/* The hash is the documented one: FNV-1a 64 over the canonical text. */
Test(wire, spec_hash_is_fnv1a_of_the_canonical_text)
{
	static const char text[] = "butler-wire 1\n"
	                           "app w\n"
	                           "message scalars\n"
	                           "field flag bool\n"
	                           "field i8 i8\n"
	                           "field i16 i16\n"
	                           "field i32 i32\n"
	                           "field i64 i64\n"
	                           "field u8 u8\n"
	                           "field u16 u16\n"
	                           "field u32 u32\n"
	                           "field u64 u64\n"
	                           "field f32 f32\n"
	                           "field f64 f64\n"
	                           "message blobs\n"
	                           "field text string\n"
	                           "field data bytes\n"
	                           "field shared buf\n"
	                           "message inner\n"
	                           "field name string\n"
	                           "field nums scalars\n"
	                           "field ok bool\n"
	                           "message outer\n"
	                           "field first u8\n"
	                           "field inside inner\n"
	                           "field blobs blobs\n"
	                           "field last string\n"
	                           "field done bool\n"
	                           "message empty\n"
	                           "message ask\n"
	                           "field question string\n"
	                           "reply answer\n"
	                           "progress step\n"
	                           "message answer\n"
	                           "field text string\n"
	                           "field n u32\n"
	                           "message step\n"
	                           "field k u32\n"
	                           "message local\n"
	                           "field handle ptr\n"
	                           "field n u32\n"
	                           "server far\n"
	                           "accepts scalars\n"
	                           "accepts blobs\n"
	                           "accepts outer\n"
	                           "accepts empty\n"
	                           "accepts ask\n"
	                           "server near\n"
	                           "accepts local\n"
	                           "accepts inner\n";
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (size_t i = 0; i < sizeof text - 1; i++) {
		h ^= (unsigned char)text[i];
		h *= UINT64_C(0x100000001b3);
	}
	cr_expect_eq(h, W_WIRE_HASH, "0x%016llx, want 0x%016llx",
	    (unsigned long long)W_WIRE_HASH, (unsigned long long)h);
}
