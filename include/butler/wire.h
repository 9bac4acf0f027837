/* SPDX-License-Identifier: MIT */
/**
 * @file
 * butler/wire.h — the wire format of generated messages.
 *
 * butler-gen gives every message M of a spec that can leave the process (no
 * `ptr` field, directly or nested) three functions, and puts type-erased
 * pointers to them in its butler_msg_desc (butler/gen.h), so that a bridge
 * can carry any message of any spec without knowing its type:
 *
 *   size_t app_M_wire_size(const struct app_M *msg);
 *   int app_M_encode(const struct app_M *msg, unsigned char *out,
 *                    size_t cap, size_t *used);
 *   int app_M_decode(struct app_M *out, const unsigned char *in,
 *                    size_t len, size_t *used);
 *
 * The format (codegen/SPEC.md, "Wire format", says it byte by byte) is the
 * fields in declaration order: integers fixed-width little-endian, floats
 * their IEEE 754 bits, a bool one byte 0 or 1, a string, bytes or buf a
 * u32 length and the bytes, a nested message inline. An encoding carries
 * no header: the transport says which message follows, and peers agree on
 * the spec first by comparing butler_spec.wire_hash.
 *
 * **Ownership.** Encoding reads the message and leaves it to its owner.
 * Decoding writes a fresh message into caller-provided memory of
 * butler_msg_desc.size bytes (a stack struct, or malloc(desc->size)); on
 * BUTLER_OK the caller owns its owned fields (strings and bytes from
 * malloc(), a buf whose free_fn frees it with free()) and releases them
 * with the message's destroy function (butler_msg_desc.destroy, NULL when
 * it owns nothing), then the memory itself; on failure the decoder has
 * freed whatever it allocated and the struct is all zero, owning nothing.
 *
 * **Hostile input.** A decoder checks every length against the bytes that
 * are present before it allocates or copies, so a frame of n bytes makes
 * it allocate at most n bytes, in at most n / 4 allocations (a string of
 * length k takes 4 + k bytes of input and k + 1 of memory): a length field
 * of 4 GiB in a short frame is refused, never allocated. The frame length is
 * therefore the only limit a decoder needs; the transport bounds it (nng:
 * NNG_OPT_RECVMAXSZ). Every valid encoding is canonical: what decodes
 * re-encodes to the same bytes.
 *
 * The static inline functions below are the reader and writer the
 * generated codecs are made of; a bridge may use them for its own frame
 * headers. They need no runtime: generated codecs link without libbutler.
 */
#ifndef BUTLER_WIRE_H
#define BUTLER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <butler/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * BUTLER_WIRE_VERSION is the version of the wire format. It is the first
 * line of the canonical text a spec's wire hash is computed from, so peers
 * built for different formats never agree on a hash.
 */
#define BUTLER_WIRE_VERSION 1

/**
 * BUTLER_WIRE_LEN_MAX is the longest string, bytes or buf the format
 * carries, in bytes (2^32 - 2): longer ones make wire_size return SIZE_MAX
 * and encode fail with BUTLER_EINVAL.
 */
#define BUTLER_WIRE_LEN_MAX 0xfffffffeu

/**
 * BUTLER_WIRE_NULL is the length field of a NULL string. For bytes and buf
 * it is invalid (BUTLER_EWIRE): empty ones have length 0.
 */
#define BUTLER_WIRE_NULL 0xffffffffu

/**
 * butler_wire_writer is a cursor over an output buffer. Its error is
 * sticky: once a put fails, every later put does nothing, so a sequence of
 * puts is checked once, at the end.
 */
typedef struct butler_wire_writer {
	unsigned char *p; /**< where the next byte goes */
	size_t left;      /**< room left after p */
	int err; /**< BUTLER_OK, or BUTLER_EINVAL: out of room, or a value
	            the format cannot carry */
} butler_wire_writer;

/**
 * butler_wire_reader is a cursor over input bytes. Its error is sticky:
 * once a get fails, every later get returns 0 (or NULL) without reading or
 * allocating, so a decoder reads every field and checks once, at the end.
 */
typedef struct butler_wire_reader {
	const unsigned char *p; /**< the next byte to read */
	size_t left;            /**< bytes left after p */
	int err; /**< BUTLER_OK, BUTLER_EWIRE (malformed or truncated input)
	            or BUTLER_ENOMEM */
} butler_wire_reader;

/**
 * butler_wire_writer_init makes *w write to the `cap` bytes at `out` (NULL
 * only when cap is 0).
 */
static inline void
butler_wire_writer_init(butler_wire_writer *w, unsigned char *out, size_t cap)
{
	w->p = out;
	w->left = cap;
	w->err = BUTLER_OK;
}

/**
 * butler_wire_reader_init makes *r read the `len` bytes at `in` (NULL only
 * when len is 0).
 */
static inline void
butler_wire_reader_init(
    butler_wire_reader *r, const unsigned char *in, size_t len)
{
	r->p = in;
	r->left = len;
	r->err = BUTLER_OK;
}

/**
 * butler_wire_room reserves `n` (> 0) bytes of output and returns where
 * they start, or NULL after an error (then w->err is set).
 */
static inline unsigned char *
butler_wire_room(butler_wire_writer *w, size_t n)
{
	unsigned char *p = w->p;

	if (w->err != BUTLER_OK)
		return NULL;
	if (n > w->left) {
		w->err = BUTLER_EINVAL;
		return NULL;
	}
	w->p += n;
	w->left -= n;
	return p;
}

/**
 * butler_wire_take consumes `n` (> 0) bytes of input and returns where
 * they start, or NULL when fewer are left (BUTLER_EWIRE) or after an
 * error.
 */
static inline const unsigned char *
butler_wire_take(butler_wire_reader *r, size_t n)
{
	const unsigned char *p = r->p;

	if (r->err != BUTLER_OK)
		return NULL;
	if (n > r->left) {
		r->err = BUTLER_EWIRE;
		return NULL;
	}
	r->p += n;
	r->left -= n;
	return p;
}

/** butler_wire_put_u8 writes one byte. */
static inline void
butler_wire_put_u8(butler_wire_writer *w, uint8_t v)
{
	unsigned char *p = butler_wire_room(w, 1);

	if (p != NULL)
		p[0] = v;
}

/** butler_wire_put_u16 writes v in 2 bytes, little-endian. */
static inline void
butler_wire_put_u16(butler_wire_writer *w, uint16_t v)
{
	unsigned char *p = butler_wire_room(w, 2);

	if (p == NULL)
		return;
	p[0] = (unsigned char)(v & 0xffu);
	p[1] = (unsigned char)(v >> 8);
}

/** butler_wire_put_u32 writes v in 4 bytes, little-endian. */
static inline void
butler_wire_put_u32(butler_wire_writer *w, uint32_t v)
{
	unsigned char *p = butler_wire_room(w, 4);

	if (p == NULL)
		return;
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)((v >> (8 * i)) & 0xffu);
}

/** butler_wire_put_u64 writes v in 8 bytes, little-endian. */
static inline void
butler_wire_put_u64(butler_wire_writer *w, uint64_t v)
{
	unsigned char *p = butler_wire_room(w, 8);

	if (p == NULL)
		return;
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)((v >> (8 * i)) & 0xffu);
}

/** butler_wire_put_i8 writes v as its two's complement byte. */
static inline void
butler_wire_put_i8(butler_wire_writer *w, int8_t v)
{
	uint8_t u;

	memcpy(&u, &v, sizeof u);
	butler_wire_put_u8(w, u);
}

/** butler_wire_put_i16 writes v in two's complement, as a u16. */
static inline void
butler_wire_put_i16(butler_wire_writer *w, int16_t v)
{
	uint16_t u;

	memcpy(&u, &v, sizeof u);
	butler_wire_put_u16(w, u);
}

/** butler_wire_put_i32 writes v in two's complement, as a u32. */
static inline void
butler_wire_put_i32(butler_wire_writer *w, int32_t v)
{
	uint32_t u;

	memcpy(&u, &v, sizeof u);
	butler_wire_put_u32(w, u);
}

/** butler_wire_put_i64 writes v in two's complement, as a u64. */
static inline void
butler_wire_put_i64(butler_wire_writer *w, int64_t v)
{
	uint64_t u;

	memcpy(&u, &v, sizeof u);
	butler_wire_put_u64(w, u);
}

/** butler_wire_put_bool writes 1 for true and 0 for false. */
static inline void
butler_wire_put_bool(butler_wire_writer *w, bool v)
{
	butler_wire_put_u8(w, v ? 1u : 0u);
}

/**
 * butler_wire_put_f32 writes the IEEE 754 binary32 bits of v as a u32:
 * NaN payloads, infinities and -0.0 are kept bit for bit.
 */
static inline void
butler_wire_put_f32(butler_wire_writer *w, float v)
{
	uint32_t u;

	memcpy(&u, &v, sizeof u);
	butler_wire_put_u32(w, u);
}

/** butler_wire_put_f64 writes the IEEE 754 binary64 bits of v as a u64. */
static inline void
butler_wire_put_f64(butler_wire_writer *w, double v)
{
	uint64_t u;

	memcpy(&u, &v, sizeof u);
	butler_wire_put_u64(w, u);
}

/**
 * butler_wire_put_string writes s as a u32 length and its bytes without
 * the NUL; NULL as the length BUTLER_WIRE_NULL. A string longer than
 * BUTLER_WIRE_LEN_MAX is BUTLER_EINVAL.
 */
static inline void
butler_wire_put_string(butler_wire_writer *w, const char *s)
{
	size_t n;
	unsigned char *p;

	if (s == NULL) {
		butler_wire_put_u32(w, BUTLER_WIRE_NULL);
		return;
	}
	n = strlen(s);
	if (n > BUTLER_WIRE_LEN_MAX) {
		if (w->err == BUTLER_OK)
			w->err = BUTLER_EINVAL;
		return;
	}
	butler_wire_put_u32(w, (uint32_t)n);
	if (n > 0 && (p = butler_wire_room(w, n)) != NULL)
		memcpy(p, s, n);
}

/**
 * butler_wire_put_blob writes the `len` bytes at `data` (bytes or buf) as
 * a u32 length and the bytes. A length beyond BUTLER_WIRE_LEN_MAX, or NULL
 * data with a length, is BUTLER_EINVAL.
 */
static inline void
butler_wire_put_blob(butler_wire_writer *w, const void *data, size_t len)
{
	unsigned char *p;

	if (len > BUTLER_WIRE_LEN_MAX || (data == NULL && len > 0)) {
		if (w->err == BUTLER_OK)
			w->err = BUTLER_EINVAL;
		return;
	}
	butler_wire_put_u32(w, (uint32_t)len);
	if (len > 0 && (p = butler_wire_room(w, len)) != NULL)
		memcpy(p, data, len);
}

/** butler_wire_get_u8 reads one byte; 0 after an error. */
static inline uint8_t
butler_wire_get_u8(butler_wire_reader *r)
{
	const unsigned char *p = butler_wire_take(r, 1);

	return p != NULL ? p[0] : 0;
}

/** butler_wire_get_u16 reads a little-endian u16; 0 after an error. */
static inline uint16_t
butler_wire_get_u16(butler_wire_reader *r)
{
	const unsigned char *p = butler_wire_take(r, 2);

	if (p == NULL)
		return 0;
	return (uint16_t)((unsigned)p[0] | (unsigned)p[1] << 8);
}

/** butler_wire_get_u32 reads a little-endian u32; 0 after an error. */
static inline uint32_t
butler_wire_get_u32(butler_wire_reader *r)
{
	const unsigned char *p = butler_wire_take(r, 4);
	uint32_t v = 0;

	if (p == NULL)
		return 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | (uint32_t)p[i];
	return v;
}

/** butler_wire_get_u64 reads a little-endian u64; 0 after an error. */
static inline uint64_t
butler_wire_get_u64(butler_wire_reader *r)
{
	const unsigned char *p = butler_wire_take(r, 8);
	uint64_t v = 0;

	if (p == NULL)
		return 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | (uint64_t)p[i];
	return v;
}

/** butler_wire_get_i8 reads a two's complement byte; 0 after an error. */
static inline int8_t
butler_wire_get_i8(butler_wire_reader *r)
{
	uint8_t u = butler_wire_get_u8(r);
	int8_t v;

	memcpy(&v, &u, sizeof v);
	return v;
}

/** butler_wire_get_i16 reads a two's complement u16; 0 after an error. */
static inline int16_t
butler_wire_get_i16(butler_wire_reader *r)
{
	uint16_t u = butler_wire_get_u16(r);
	int16_t v;

	memcpy(&v, &u, sizeof v);
	return v;
}

/** butler_wire_get_i32 reads a two's complement u32; 0 after an error. */
static inline int32_t
butler_wire_get_i32(butler_wire_reader *r)
{
	uint32_t u = butler_wire_get_u32(r);
	int32_t v;

	memcpy(&v, &u, sizeof v);
	return v;
}

/** butler_wire_get_i64 reads a two's complement u64; 0 after an error. */
static inline int64_t
butler_wire_get_i64(butler_wire_reader *r)
{
	uint64_t u = butler_wire_get_u64(r);
	int64_t v;

	memcpy(&v, &u, sizeof v);
	return v;
}

/**
 * butler_wire_get_bool reads a bool: the byte must be 0 or 1, anything
 * else is BUTLER_EWIRE (so that every encoding is canonical). false after
 * an error.
 */
static inline bool
butler_wire_get_bool(butler_wire_reader *r)
{
	uint8_t v = butler_wire_get_u8(r);

	if (v > 1) {
		r->err = BUTLER_EWIRE;
		return false;
	}
	return v == 1;
}

/** butler_wire_get_f32 reads IEEE 754 binary32 bits; 0 after an error. */
static inline float
butler_wire_get_f32(butler_wire_reader *r)
{
	uint32_t u = butler_wire_get_u32(r);
	float v;

	memcpy(&v, &u, sizeof v);
	return v;
}

/** butler_wire_get_f64 reads IEEE 754 binary64 bits; 0 after an error. */
static inline double
butler_wire_get_f64(butler_wire_reader *r)
{
	uint64_t u = butler_wire_get_u64(r);
	double v;

	memcpy(&v, &u, sizeof v);
	return v;
}

/**
 * butler_wire_get_string reads a string into a NUL-terminated copy from
 * malloc(), which the caller frees. The length BUTLER_WIRE_NULL gives NULL;
 * a length beyond the input, or a NUL among the bytes (the C string could
 * not hold it), is BUTLER_EWIRE. NULL after an error.
 */
static inline char *
butler_wire_get_string(butler_wire_reader *r)
{
	uint32_t n = butler_wire_get_u32(r);
	const unsigned char *p = NULL;
	char *s;

	if (r->err != BUTLER_OK || n == BUTLER_WIRE_NULL)
		return NULL;
	if (n > 0 && (p = butler_wire_take(r, n)) == NULL)
		return NULL;
	if (n > 0 && memchr(p, 0, n) != NULL) {
		r->err = BUTLER_EWIRE;
		return NULL;
	}
	s = (char *)malloc((size_t)n + 1);
	if (s == NULL) {
		r->err = BUTLER_ENOMEM;
		return NULL;
	}
	if (n > 0)
		memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/**
 * butler_wire_get_blob reads bytes or a buf into one allocation from
 * malloc(), which the caller frees, and stores its length in *len. Empty
 * gives NULL and 0; a length beyond the input, or BUTLER_WIRE_NULL, is
 * BUTLER_EWIRE. NULL and 0 after an error.
 */
static inline void *
butler_wire_get_blob(butler_wire_reader *r, size_t *len /* OUT */)
{
	uint32_t n = butler_wire_get_u32(r);
	const unsigned char *p;
	void *d;

	*len = 0;
	if (r->err != BUTLER_OK || n == 0)
		return NULL;
	if (n == BUTLER_WIRE_NULL) {
		r->err = BUTLER_EWIRE;
		return NULL;
	}
	p = butler_wire_take(r, n);
	if (p == NULL)
		return NULL;
	d = malloc(n);
	if (d == NULL) {
		r->err = BUTLER_ENOMEM;
		return NULL;
	}
	memcpy(d, p, n);
	*len = n;
	return d;
}

/**
 * butler_wire_add returns a + b, or SIZE_MAX when that overflows or either
 * is SIZE_MAX: wire sizes add up with "cannot be encoded" kept.
 */
static inline size_t
butler_wire_add(size_t a, size_t b)
{
	return a == SIZE_MAX || b > SIZE_MAX - 1 - a ? SIZE_MAX : a + b;
}

/**
 * butler_wire_add_string returns n plus the encoded size of string s (4
 * for NULL), or SIZE_MAX when s is longer than BUTLER_WIRE_LEN_MAX.
 */
static inline size_t
butler_wire_add_string(size_t n, const char *s)
{
	size_t len = s != NULL ? strlen(s) : 0;

	if (len > BUTLER_WIRE_LEN_MAX)
		return SIZE_MAX;
	return butler_wire_add(n, 4 + len);
}

/**
 * butler_wire_add_blob returns n plus the encoded size of the `len` bytes
 * at `data` (bytes or buf), or SIZE_MAX when they cannot be encoded (too
 * long, or NULL data with a length).
 */
static inline size_t
butler_wire_add_blob(size_t n, const void *data, size_t len)
{
	if (len > BUTLER_WIRE_LEN_MAX || (data == NULL && len > 0))
		return SIZE_MAX;
	return butler_wire_add(n, 4 + len);
}

/**
 * butler_wire_done ends a decode: in whole-frame mode (`used` NULL) input
 * left over is BUTLER_EWIRE; otherwise *used receives the bytes consumed
 * (on success) out of the `len` given. Returns r->err.
 */
static inline int
butler_wire_done(butler_wire_reader *r, size_t len, size_t *used /* OUT */)
{
	if (r->err == BUTLER_OK && used == NULL && r->left > 0)
		r->err = BUTLER_EWIRE;
	if (r->err == BUTLER_OK && used != NULL)
		*used = len - r->left;
	return r->err;
}

#ifdef __cplusplus
}
#endif

#endif /* BUTLER_WIRE_H */
