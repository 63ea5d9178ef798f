/*
 * test_decode.c - unpacking under a memory budget (proto/decode.c): unknown fields are
 * dropped at every level, what a message holds is counted, a body that needs more than
 * its budget is refused (and every allocation failure on the way is clean), and the
 * borrowed payload of a large send still comes straight from the body.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "payload.h"
#include "sockrpc.pb-c.h"

#define BIG_BUDGET (64u << 20)

struct body {
	uint8_t bytes[64 * 1024];
	size_t len;
};

static void
put_varint_field(struct body *b, unsigned field, uint64_t v)
{
	b->len += sr_varint_put(b->bytes + b->len, (uint64_t)field << 3);
	b->len += sr_varint_put(b->bytes + b->len, v);
}

static void
put_bytes_field(struct body *b, unsigned field, const void *data, size_t n)
{
	b->len += sr_payload_key(b->bytes + b->len, field, n);
	memcpy(b->bytes + b->len, data, n);
	b->len += n;
}

/* A ConnectReply whose status (a sub-message) and top level both carry unknown fields. */
static void
reply_with_unknown_fields(struct body *b)
{
	struct body status = {.len = 0};

	put_varint_field(&status, 1, SOCKRPC__CODE__EOS);
	put_bytes_field(&status, 4, "refused", 7);
	put_varint_field(&status, 14, 7);      /* unknown */
	put_bytes_field(&status, 15, "xy", 2); /* unknown */
	b->len = 0;
	put_varint_field(b, 20, 1); /* unknown */
	put_bytes_field(b, 1, status.bytes, status.len);
	put_bytes_field(b, 21, "zzz", 3); /* unknown */
}

START_TEST(unknown_fields_are_dropped_at_every_level)
{
	static struct body b;
	Sockrpc__ConnectReply *kept, *got;
	ProtobufCBinaryData *borrowed;
	size_t held = 0;
	bool over;

	reply_with_unknown_fields(&b);
	/* protobuf-c alone keeps them: the input does have some, at both levels */
	kept = sockrpc__connect_reply__unpack(NULL, b.len, b.bytes);
	ck_assert_ptr_nonnull(kept);
	ck_assert_uint_eq(kept->base.n_unknown_fields, 2);
	ck_assert_uint_eq(kept->status->base.n_unknown_fields, 2);
	got = (Sockrpc__ConnectReply *)sr_decode(&sockrpc__connect_reply__descriptor, b.bytes,
	                                         b.len, BIG_BUDGET, &held, &borrowed, &over);
	ck_assert_ptr_nonnull(got);
	ck_assert(!over);
	ck_assert_uint_eq(got->base.n_unknown_fields, 0);
	ck_assert_ptr_null(got->base.unknown_fields);
	ck_assert_ptr_nonnull(got->status);
	ck_assert_uint_eq(got->status->base.n_unknown_fields, 0);
	ck_assert_int_eq(got->status->code, SOCKRPC__CODE__EOS);
	ck_assert_str_eq(got->status->message, "refused");
	ck_assert(protobuf_c_message_check(&got->base));
	ck_assert_uint_gt(held, sizeof(*got) + sizeof(*got->status));
	ck_assert_uint_lt(held, 1024);
	sr_payload_free_unpacked(&got->base, NULL, borrowed);
	sockrpc__connect_reply__free_unpacked(kept, NULL);
}
END_TEST

START_TEST(held_counts_strings)
{
	static struct body b;
	static char host[3000];
	Sockrpc__ConnectRequest *got;
	ProtobufCBinaryData *borrowed;
	size_t held = 0;
	bool over;

	memset(host, 'h', sizeof(host));
	b.len = 0;
	put_varint_field(&b, 1, 3);
	put_bytes_field(&b, 2, host, sizeof(host));
	got = (Sockrpc__ConnectRequest *)sr_decode(&sockrpc__connect_request__descriptor, b.bytes,
	                                           b.len, BIG_BUDGET, &held, &borrowed, &over);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(strlen(got->host), sizeof(host));
	ck_assert_uint_ge(held, sizeof(host) + sizeof(*got));
	ck_assert_uint_lt(held, sizeof(host) + sizeof(*got) + 256);
	sr_payload_free_unpacked(&got->base, NULL, borrowed);
}
END_TEST

/* 2-byte unknown fields cost ~40 times their size to unpack: past the budget, refused. */
START_TEST(over_budget_is_refused)
{
	static struct body b;
	ProtobufCMessage *m;
	ProtobufCBinaryData *borrowed;
	size_t held = 0;
	bool over;

	b.len = 0;
	put_varint_field(&b, 1, 3);
	while (b.len + 2 <= 32 * 1024)
		put_varint_field(&b, 15, 0);
	m = sr_decode(&sockrpc__accept_request__descriptor, b.bytes, b.len, 2 * b.len + 65536,
	              &held, &borrowed, &over);
	ck_assert_ptr_null(m);
	ck_assert(over);
	/* With room enough it decodes, and holds none of them. */
	m = sr_decode(&sockrpc__accept_request__descriptor, b.bytes, b.len, BIG_BUDGET, &held,
	              &borrowed, &over);
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(m->n_unknown_fields, 0);
	ck_assert_uint_lt(held, 256);
	sr_payload_free_unpacked(m, NULL, borrowed);
}
END_TEST

START_TEST(malformed_is_not_over_budget)
{
	static const uint8_t bad[] = {0x0a, 0x05, 0x01}; /* a length past the end */
	ProtobufCBinaryData *borrowed;
	size_t held = 0;
	bool over = true;

	ck_assert_ptr_null(sr_decode(&sockrpc__connect_request__descriptor, bad, sizeof(bad),
	                             BIG_BUDGET, &held, &borrowed, &over));
	ck_assert(!over);
}
END_TEST

/* Every budget from nothing to enough: each allocation that fails on the way is undone
 * (ASan and valgrind see the leaks), and from some budget on the message decodes. */
START_TEST(every_allocation_failure_is_clean)
{
	static struct body b;
	ProtobufCMessage *m;
	ProtobufCBinaryData *borrowed;
	size_t held;
	bool over, decoded = false;

	reply_with_unknown_fields(&b);
	for (size_t budget = 0; budget < 4096; budget += 8) {
		held = 0;
		m = sr_decode(&sockrpc__connect_reply__descriptor, b.bytes, b.len, budget, &held,
		              &borrowed, &over);
		if (m == NULL) {
			ck_assert_msg(over, "budget %zu: refused, not for want of memory", budget);
			ck_assert_msg(!decoded, "budget %zu fails, a smaller one did not", budget);
			continue;
		}
		decoded = true;
		ck_assert_uint_le(held, budget);
		sr_payload_free_unpacked(m, NULL, borrowed);
	}
	ck_assert(decoded);
}
END_TEST

/* A large send's payload still points into the body: not copied, not counted. */
START_TEST(large_payload_is_still_borrowed)
{
	static struct body b;
	static uint8_t data[16384];
	Sockrpc__SendRequest *got;
	ProtobufCBinaryData *borrowed;
	size_t held = 0;
	bool over;

	memset(data, 'd', sizeof(data));
	b.len = 0;
	put_varint_field(&b, 1, 4);
	put_bytes_field(&b, 2, data, sizeof(data));
	put_varint_field(&b, 9, 1); /* unknown, kept apart with the rest */
	got = (Sockrpc__SendRequest *)sr_decode(&sockrpc__send_request__descriptor, b.bytes, b.len,
	                                        2 * b.len + 65536, &held, &borrowed, &over);
	ck_assert_ptr_nonnull(got);
	ck_assert_ptr_eq(borrowed, &got->data);
	ck_assert(got->data.data > b.bytes && got->data.data < b.bytes + b.len);
	ck_assert_uint_eq(got->data.len, sizeof(data));
	ck_assert_uint_eq(got->base.n_unknown_fields, 0);
	ck_assert_uint_lt(held, 256);
	sr_payload_free_unpacked(&got->base, NULL, borrowed);
}
END_TEST

Suite *
decode_suite(void)
{
	Suite *s = suite_create("decode");
	TCase *tc = tcase_create("decode");

	tcase_add_test(tc, unknown_fields_are_dropped_at_every_level);
	tcase_add_test(tc, held_counts_strings);
	tcase_add_test(tc, over_budget_is_refused);
	tcase_add_test(tc, malformed_is_not_over_budget);
	tcase_add_test(tc, every_allocation_failure_is_clean);
	tcase_add_test(tc, large_payload_is_still_borrowed);
	suite_add_tcase(s, tc);
	return s;
}
