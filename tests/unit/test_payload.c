/*
 * test_payload.c - a message's payload kept out of protobuf-c's copies: the walk over a
 * body's fields and the unpacking that borrows the payload from the body
 * (proto/payload.c), and the copy a daemon call takes when it outlives its frame
 * (daemon/call.c). Every split is checked against what protobuf-c itself decodes from
 * the same bytes.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "payload.h"
#include "sockrpc.pb-c.h"
#include "sockrpcd.h"

/* A body built field by field, in any order: what a client other than ours may send. */
struct body {
	uint8_t bytes[3 * 8192];
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

static uint8_t *
pattern(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n);

	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 31 + i % 251);
	return p;
}

START_TEST(payload_field_is_the_one_bytes_field)
{
	ck_assert_uint_eq(sr_payload_field(&sockrpc__send_request__descriptor)->id, 2);
	ck_assert_uint_eq(sr_payload_field(&sockrpc__send_to_request__descriptor)->id, 5);
	ck_assert_ptr_null(sr_payload_field(&sockrpc__get_option_request__descriptor));
	ck_assert_ptr_null(sr_payload_field(&sockrpc__connect_request__descriptor));
}
END_TEST

START_TEST(key_is_tag_and_length)
{
	uint8_t key[SR_PAYLOAD_KEY_MAX];

	/* field 2, wire type 2: 0x12; 65536 = 0x80 0x80 0x04 */
	ck_assert_uint_eq(sr_payload_key(key, 2, 65536), 4);
	ck_assert_mem_eq(key, "\x12\x80\x80\x04", 4);
	ck_assert_uint_eq(sr_payload_key(key, 5, 0), 2);
	ck_assert_mem_eq(key, "\x2a\x00", 2);
}
END_TEST

/* Splits b for SendToRequest's data, unpacks the rest, and compares the whole request
 * with protobuf-c's decoding of b. */
static void
assert_split_matches_unpack(const struct body *b)
{
	Sockrpc__SendToRequest *want, *got;
	uint8_t rest[SR_PAYLOAD_REST_MAX];
	const uint8_t *payload;
	size_t rest_len, payload_len;

	want = sockrpc__send_to_request__unpack(NULL, b->len, b->bytes);
	ck_assert_ptr_nonnull(want);
	ck_assert_int_eq(sr_payload_split(b->bytes, b->len, 5, rest, sizeof(rest), &rest_len,
	                                  &payload, &payload_len),
	                 0);
	got = sockrpc__send_to_request__unpack(NULL, rest_len, rest);
	ck_assert_ptr_nonnull(got);
	ck_assert_int_eq(got->handle, want->handle);
	ck_assert_str_eq(got->host, want->host);
	ck_assert_int_eq(got->port, want->port);
	ck_assert_uint_eq(got->flags, want->flags);
	ck_assert_uint_eq(got->data.len, 0);
	ck_assert_uint_eq(payload_len, want->data.len);
	if (payload_len > 0) {
		ck_assert_mem_eq(payload, want->data.data, payload_len);
		ck_assert(payload >= b->bytes && payload + payload_len <= b->bytes + b->len);
	}
	sockrpc__send_to_request__free_unpacked(want, NULL);
	sockrpc__send_to_request__free_unpacked(got, NULL);
}

START_TEST(split_finds_payload_in_any_place)
{
	uint8_t *data = pattern(5000, 1);
	struct body first = {.len = 0}, middle = {.len = 0}, last = {.len = 0};

	put_bytes_field(&first, 5, data, 5000);
	put_varint_field(&first, 1, 7);
	put_bytes_field(&first, 2, "localhost", 9);
	put_varint_field(&first, 3, 8080);
	assert_split_matches_unpack(&first);

	put_varint_field(&middle, 1, 7);
	put_bytes_field(&middle, 5, data, 5000);
	put_varint_field(&middle, 6, 3);
	assert_split_matches_unpack(&middle);

	put_varint_field(&last, 3, 1);
	put_bytes_field(&last, 2, "::1", 3);
	put_bytes_field(&last, 5, data, 5000);
	assert_split_matches_unpack(&last);
	free(data);
}
END_TEST

START_TEST(split_keeps_the_last_of_a_repeated_payload)
{
	uint8_t *a = pattern(6000, 2), *b = pattern(4500, 3);
	struct body body = {.len = 0};

	put_bytes_field(&body, 5, a, 6000);
	put_varint_field(&body, 1, 9);
	put_bytes_field(&body, 5, b, 4500);
	assert_split_matches_unpack(&body);
	free(a);
	free(b);
}
END_TEST

START_TEST(split_without_payload)
{
	struct body body = {.len = 0};

	put_varint_field(&body, 1, 9);
	put_bytes_field(&body, 2, "h", 1);
	assert_split_matches_unpack(&body);
}
END_TEST

START_TEST(split_keeps_fixed_and_unknown_fields)
{
	struct body body = {.len = 0};
	uint8_t *data = pattern(4096, 4);

	put_varint_field(&body, 1, 3);
	body.bytes[body.len++] = 15 << 3 | 1; /* unknown fixed64 */
	memcpy(body.bytes + body.len, "12345678", 8);
	body.len += 8;
	put_bytes_field(&body, 5, data, 4096);
	body.bytes[body.len++] = 14 << 3 | 5; /* unknown fixed32 */
	memcpy(body.bytes + body.len, "abcd", 4);
	body.len += 4;
	assert_split_matches_unpack(&body);
	free(data);
}
END_TEST

/* Each of these makes the split give up (the caller then lets protobuf-c say why). */
static void
assert_split_refused(const struct body *b)
{
	uint8_t rest[SR_PAYLOAD_REST_MAX];
	const uint8_t *payload;
	size_t rest_len, payload_len;

	ck_assert_int_eq(sr_payload_split(b->bytes, b->len, 5, rest, sizeof(rest), &rest_len,
	                                  &payload, &payload_len),
	                 -1);
}

START_TEST(split_refuses_what_is_not_well_formed)
{
	struct body b = {.len = 0};

	put_bytes_field(&b, 5, "abc", 3);
	b.len--; /* the payload runs past the end */
	assert_split_refused(&b);

	b.len = 0;
	b.bytes[b.len++] = 1 << 3; /* a varint cut short */
	b.bytes[b.len++] = 0x80;
	assert_split_refused(&b);

	b.len = 0;
	b.bytes[b.len++] = 3 << 3 | 5; /* a fixed32 cut short */
	b.bytes[b.len++] = 1;
	assert_split_refused(&b);

	b.len = 0;
	b.bytes[b.len++] = 0 << 3 | 2; /* field number 0 */
	b.bytes[b.len++] = 0;
	assert_split_refused(&b);

	b.len = 0;
	b.bytes[b.len++] = 4 << 3 | 3; /* a group */
	assert_split_refused(&b);

	b.len = 0;
	put_varint_field(&b, 5, 1); /* the payload field as a varint */
	assert_split_refused(&b);

	b.len = 0;
	b.bytes[b.len++] = 1 << 3; /* a varint of eleven bytes */
	memset(b.bytes + b.len, 0xff, 10);
	b.len += 10;
	b.bytes[b.len++] = 1;
	assert_split_refused(&b);
}
END_TEST

START_TEST(split_refuses_a_rest_too_large)
{
	struct body b = {.len = 0};
	uint8_t *host = pattern(SR_PAYLOAD_REST_MAX, 5), *data = pattern(4096, 6);

	put_bytes_field(&b, 2, host, SR_PAYLOAD_REST_MAX);
	put_bytes_field(&b, 5, data, 4096);
	assert_split_refused(&b);
	free(host);
	free(data);
}
END_TEST

/* --- unpacking --- */

static struct body *
send_body(size_t data_len, unsigned seed)
{
	struct body *b = calloc(1, sizeof(*b));
	uint8_t *data = pattern(data_len, seed);

	put_bytes_field(b, 2, data, data_len);
	put_varint_field(b, 1, 42);
	free(data);
	return b;
}

START_TEST(unpack_borrows_a_large_payload)
{
	struct body *b = send_body(8192, 7);
	ProtobufCBinaryData *borrowed;
	Sockrpc__SendRequest *rq = (Sockrpc__SendRequest *)sr_payload_unpack(
	    &sockrpc__send_request__descriptor, NULL, b->bytes, b->len, &borrowed);

	ck_assert_ptr_nonnull(rq);
	ck_assert(protobuf_c_message_check(&rq->base));
	ck_assert_ptr_eq(borrowed, &rq->data);
	ck_assert_int_eq(rq->handle, 42);
	ck_assert_uint_eq(rq->data.len, 8192);
	ck_assert_ptr_eq(rq->data.data, b->bytes + 3); /* after key 0x12 and length 0x80 0x40 */
	sr_payload_free_unpacked(&rq->base, NULL, borrowed); /* not b's bytes: ASan would say */
	free(b);
}
END_TEST

START_TEST(unpack_copies_a_small_payload)
{
	struct body *b = send_body(SR_PAYLOAD_BY_REFERENCE_MIN - 1, 8);
	ProtobufCBinaryData *borrowed;
	Sockrpc__SendRequest *rq = (Sockrpc__SendRequest *)sr_payload_unpack(
	    &sockrpc__send_request__descriptor, NULL, b->bytes, b->len, &borrowed);

	ck_assert_ptr_nonnull(rq);
	ck_assert_ptr_null(borrowed);
	ck_assert_uint_eq(rq->data.len, SR_PAYLOAD_BY_REFERENCE_MIN - 1);
	ck_assert(rq->data.data < b->bytes || rq->data.data >= b->bytes + b->len);
	sr_payload_free_unpacked(&rq->base, NULL, borrowed);
	free(b);
}
END_TEST

START_TEST(call_keeps_its_payload_past_the_frame)
{
	struct body *b = send_body(10000, 9);
	uint8_t *want = pattern(10000, 9);
	struct call c = {.borrowed = NULL};
	Sockrpc__SendRequest *rq = (Sockrpc__SendRequest *)sr_payload_unpack(
	    &sockrpc__send_request__descriptor, NULL, b->bytes, b->len, &c.borrowed);

	ck_assert_ptr_nonnull(c.borrowed);
	ck_assert_int_eq(call_keep_payload(&c), 0);
	ck_assert_ptr_null(c.borrowed);
	memset(b->bytes, 0, b->len); /* the frame's buffer is reused */
	free(b);
	ck_assert_uint_eq(rq->data.len, 10000);
	ck_assert_mem_eq(rq->data.data, want, 10000);
	/* Frees the copy: LeakSanitizer would say if it did not. */
	sr_payload_free_unpacked(&rq->base, NULL, c.borrowed);
	free(want);
}
END_TEST

START_TEST(unpack_refuses_a_malformed_body)
{
	struct body *b = send_body(5000, 10);
	ProtobufCBinaryData *borrowed;

	b->bytes[b->len++] = 3 << 3; /* a varint field with no value */
	ck_assert_ptr_null(sr_payload_unpack(&sockrpc__send_request__descriptor, NULL, b->bytes,
	                                     b->len, &borrowed));
	free(b);
}
END_TEST

Suite *
payload_suite(void)
{
	Suite *s = suite_create("payload");
	TCase *wire = tcase_create("wire");
	TCase *daemon = tcase_create("unpack");

	tcase_add_test(wire, payload_field_is_the_one_bytes_field);
	tcase_add_test(wire, key_is_tag_and_length);
	tcase_add_test(wire, split_finds_payload_in_any_place);
	tcase_add_test(wire, split_keeps_the_last_of_a_repeated_payload);
	tcase_add_test(wire, split_without_payload);
	tcase_add_test(wire, split_keeps_fixed_and_unknown_fields);
	tcase_add_test(wire, split_refuses_what_is_not_well_formed);
	tcase_add_test(wire, split_refuses_a_rest_too_large);
	suite_add_tcase(s, wire);
	tcase_add_test(daemon, unpack_borrows_a_large_payload);
	tcase_add_test(daemon, unpack_copies_a_small_payload);
	tcase_add_test(daemon, call_keeps_its_payload_past_the_frame);
	tcase_add_test(daemon, unpack_refuses_a_malformed_body);
	suite_add_tcase(s, daemon);
	return s;
}
