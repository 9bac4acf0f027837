/* SPDX-License-Identifier: MIT */
/*
 * tests/bridge/test_frame.c — the bridge's frames, white-box (frame.c, no
 * nng, no hub): every frame type written and read back, every prefix of a
 * frame is "more", and every way a frame can be malformed is refused.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include <butler/wire.h>

#include "bt.butler.h"
#include "frame.h"

#define MAX 65536u

static struct butler__frame
parse_one(const struct butler__obuf *ob)
{
	struct butler__frame f;
	const char *why;
	int rv = butler__frame_next(ob->p, ob->len, MAX, &f, &why);

	cr_assert_eq(rv, BUTLER__PARSE_FRAME, "%s", why ? why : "more");
	cr_assert_eq(f.size, ob->len);
	/* Every shorter prefix asks for more. */
	for (size_t n = 0; n < ob->len; n++) {
		struct butler__frame g;

		cr_assert_eq(butler__frame_next(ob->p, n, MAX, &g, &why),
		    BUTLER__PARSE_MORE, "prefix %zu of %zu", n, ob->len);
	}
	return f;
}

/* f re-encodes to the bytes it came from. */
static void
canonical(const struct butler__obuf *ob, const struct butler__frame *f)
{
	struct butler__obuf again = { 0 };

	cr_assert_eq(butler__put_frame(&again, f), BUTLER_OK);
	cr_assert_eq(again.len, ob->len);
	cr_expect(memcmp(again.p, ob->p, ob->len) == 0);
	butler__obuf_free(&again);
}

Test(frame, every_type_round_trips, .timeout = 30)
{
	const butler_msg_desc *add = &bt_spec.messages[BT_MSG_ADD];
	const butler_msg_desc *sum = &bt_spec.messages[BT_MSG_SUM];
	struct bt_add a = { .a = -5, .b = 7, .delay_ms = 3 }, back;
	struct bt_sum s = { .s = 2 };
	struct butler__obuf ob = { 0 };
	struct butler__frame f;
	unsigned char mac[BUTLER__MAC_LEN];

	cr_assert_eq(
	    butler__put_send(&ob, MAX, 3, 2, add, &a, NULL), BUTLER_OK);
	f = parse_one(&ob);
	cr_expect_eq(f.type, BUTLER__F_SEND);
	cr_expect_eq(f.target, 3);
	cr_expect_eq(f.kind, 2);
	cr_assert_eq(add->decode(&back, f.body, f.body_len, NULL), BUTLER_OK);
	cr_expect_eq(back.a, -5);
	cr_expect_eq(back.b, 7);
	canonical(&ob, &f);

	ob.len = 0;
	cr_assert_eq(butler__put_call(&ob, MAX, 1, 3,
	                 UINT64_C(0xfedcba9876543210), -1, add, &a, NULL),
	    BUTLER_OK);
	f = parse_one(&ob);
	cr_expect_eq(f.type, BUTLER__F_CALL);
	cr_expect_eq(f.id, UINT64_C(0xfedcba9876543210));
	cr_expect_eq(f.value, -1);
	canonical(&ob, &f);

	ob.len = 0;
	cr_assert_eq(butler__put_answer(&ob, MAX, BUTLER__F_REPLY, 9, sum, &s),
	    BUTLER_OK);
	f = parse_one(&ob);
	cr_expect_eq(f.type, BUTLER__F_REPLY);
	cr_expect_eq(f.id, 9);
	cr_expect_eq(f.body_len, 8);
	canonical(&ob, &f);

	ob.len = 0;
	cr_assert_eq(butler__put_fail(&ob, 11, BUTLER_ECLOSED), BUTLER_OK);
	f = parse_one(&ob);
	cr_expect_eq(f.type, BUTLER__F_FAIL);
	cr_expect_eq(f.value, BUTLER_ECLOSED);
	canonical(&ob, &f);

	ob.len = 0;
	cr_assert_eq(butler__put_id(&ob, BUTLER__F_CANCEL, 12), BUTLER_OK);
	f = parse_one(&ob);
	cr_expect_eq(f.type, BUTLER__F_CANCEL);
	cr_expect_eq(f.id, 12);
	canonical(&ob, &f);

	ob.len = 0;
	cr_assert_eq(butler__put_credit(&ob, 4, 100, 5000), BUTLER_OK);
	f = parse_one(&ob);
	cr_expect_eq(f.target, 4);
	cr_expect_eq(f.frames, 100);
	cr_expect_eq(f.bytes, 5000);
	canonical(&ob, &f);

	ob.len = 0;
	cr_assert_eq(
	    butler__put_ready(&ob, 1024, 1 << 20, 1 << 24), BUTLER_OK);
	f = parse_one(&ob);
	cr_expect_eq(f.type, BUTLER__F_READY);
	cr_expect_eq(f.max, 1 << 24);
	canonical(&ob, &f);

	ob.len = 0;
	memset(mac, 0xa5, sizeof mac);
	cr_assert_eq(butler__put_auth(&ob, mac), BUTLER_OK);
	f = parse_one(&ob);
	cr_expect_eq(f.type, BUTLER__F_AUTH);
	cr_expect(f.body_len == BUTLER__MAC_LEN
	    && memcmp(f.body, mac, BUTLER__MAC_LEN) == 0);
	canonical(&ob, &f);

	ob.len = 0;
	cr_assert_eq(
	    butler__put_error(&ob, BUTLER_EINVAL, "no\tway"), BUTLER_OK);
	f = parse_one(&ob);
	cr_expect_eq(f.type, BUTLER__F_ERROR);
	cr_expect(f.body_len == 6 && memcmp(f.body, "no?way", 6) == 0);
	canonical(&ob, &f);
	butler__obuf_free(&ob);
}

Test(frame, hello_and_welcome, .timeout = 30)
{
	static struct butler__hello h, w, back;
	struct butler__obuf ob = { 0 };
	struct butler__frame f;
	const char *why;

	h.proto = BUTLER__BRIDGE_PROTO;
	h.flags = BUTLER__HELLO_SECRET;
	memset(h.nonce, 7, sizeof h.nonce);
	h.n_specs = 2;
	strcpy(h.specs[0].app, "bt");
	strcpy(h.specs[0].version, "1.0");
	h.specs[0].hash = 0x1122334455667788u;
	strcpy(h.specs[1].app, "tasks");
	h.specs[1].hash = 42;
	h.n_targets = 2;
	h.targets[0].spec = 0;
	h.targets[0].server = 1;
	h.targets[1].spec = 1;
	h.targets[1].server = 0;
	cr_assert_eq(butler__put_hello(&ob, false, &h), BUTLER_OK);
	f = parse_one(&ob);
	cr_assert_eq(
	    butler__hello_parse(f.body, f.body_len, false, &back, &why),
	    BUTLER__HELLO_OK, "%s", why);
	cr_expect_eq(back.n_specs, 2);
	cr_expect_str_eq(back.specs[0].app, "bt");
	cr_expect_str_eq(back.specs[0].version, "1.0");
	cr_expect_eq(back.specs[0].hash, 0x1122334455667788u);
	cr_expect_str_eq(back.specs[1].version, "");
	cr_expect_eq(back.n_targets, 2);
	cr_expect_eq(back.targets[0].server, 1);
	cr_expect_eq(back.targets[1].spec, 1);
	canonical(&ob, &f);

	/* Another protocol version is told apart from garbage. */
	h.proto = 7;
	ob.len = 0;
	cr_assert_eq(butler__put_hello(&ob, false, &h), BUTLER_OK);
	f = parse_one(&ob);
	cr_expect_eq(
	    butler__hello_parse(f.body, f.body_len, false, &back, &why),
	    BUTLER__HELLO_PROTO);
	cr_expect_eq(back.proto, 7);

	/* A target of a spec not named, a spec named twice. */
	h.proto = BUTLER__BRIDGE_PROTO;
	h.targets[1].spec = 2;
	ob.len = 0;
	cr_assert_eq(butler__put_hello(&ob, false, &h), BUTLER_OK);
	f = parse_one(&ob);
	cr_expect_eq(
	    butler__hello_parse(f.body, f.body_len, false, &back, &why),
	    BUTLER__HELLO_BAD);
	h.targets[1].spec = 1;
	strcpy(h.specs[1].app, "bt");
	ob.len = 0;
	cr_assert_eq(butler__put_hello(&ob, false, &h), BUTLER_OK);
	f = parse_one(&ob);
	cr_expect_eq(
	    butler__hello_parse(f.body, f.body_len, false, &back, &why),
	    BUTLER__HELLO_BAD);

	/* WELCOME: hashes, versions and the mac, no targets. */
	w.proto = BUTLER__BRIDGE_PROTO;
	memset(w.mac, 3, sizeof w.mac);
	w.n_specs = 1;
	w.specs[0].hash = 99;
	strcpy(w.specs[0].version, "2.0");
	ob.len = 0;
	cr_assert_eq(butler__put_hello(&ob, true, &w), BUTLER_OK);
	f = parse_one(&ob);
	cr_assert_eq(
	    butler__hello_parse(f.body, f.body_len, true, &back, &why),
	    BUTLER__HELLO_OK, "%s", why);
	cr_expect_eq(back.specs[0].hash, 99);
	cr_expect_str_eq(back.specs[0].version, "2.0");
	cr_expect_eq(back.mac[31], 3);
	/* A WELCOME is no HELLO. */
	cr_expect_eq(
	    butler__hello_parse(f.body, f.body_len, false, &back, &why),
	    BUTLER__HELLO_BAD);
	butler__obuf_free(&ob);
}

/* The bytes, given as a string of hex pairs, are refused. */
static void
refused(const char *hex, size_t max)
{
	unsigned char b[64];
	size_t n = 0;
	struct butler__frame f;
	const char *why = NULL;

	for (const char *p = hex; p[0] && p[1]; p += 2) {
		while (*p == ' ')
			p++;
		sscanf(p, "%2hhx", &b[n++]);
	}
	cr_expect_eq(butler__frame_next(b, n, max, &f, &why),
	    BUTLER__PARSE_BAD, "'%s' not refused", hex);
	cr_expect_not_null(why);
}

Test(frame, malformed_frames, .timeout = 30)
{
	refused("00000000", MAX);   /* empty */
	refused("ffffffff", MAX);   /* too long */
	refused("01000100", 16);    /* over max_frame */
	refused("0100000063", MAX); /* unknown type */
	refused("0100000010", MAX); /* SEND without header */
	refused("0500000010"
	        "0000"
	        "0000",
	    MAX); /* kind 0 */
	refused("0800000012"
	        "00000000000000",
	    MAX); /* CANCEL, 7 bytes */
	refused("0a00000012"
	        "000000000000000000",
	    MAX); /* CANCEL, 9 */
	refused("0d00000021"
	        "0100000000000000"
	        "00000000",
	    MAX); /* code 0 */
	refused("1100000011"
	        "0000"
	        "0100"
	        "0100000000000000"
	        "feffffff",
	    MAX); /* timeout -2 */
	refused("0700000005"
	        "00000000"
	        "4109",
	    MAX); /* text with a tab */
	refused("0f00000023"
	        "0000"
	        "00000000"
	        "0000000000",
	    MAX); /* CREDIT */
}

Test(frame, encoding_that_cannot_travel, .timeout = 30)
{
	const butler_msg_desc *every = &bt_spec.messages[BT_MSG_EVERY];
	struct bt_every v = { .f_bytes = { .data = NULL, .len = 3 } };
	struct butler__obuf ob = { 0 };
	struct bt_add a = { 0 };

	/* bytes with NULL data and a length cannot be encoded. */
	cr_expect_eq(
	    butler__put_send(&ob, MAX, 0, 4, every, &v, NULL), BUTLER_EINVAL);
	cr_expect_eq(ob.len, 0);
	/* A frame over max_frame is refused before anything is written. */
	cr_expect_eq(butler__put_send(&ob, 16, 0, 3,
	                 &bt_spec.messages[BT_MSG_ADD], &a, NULL),
	    BUTLER_EINVAL);
	cr_expect_eq(ob.len, 0);
	butler__obuf_free(&ob);
}
