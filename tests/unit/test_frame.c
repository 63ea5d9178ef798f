/*
 * test_frame.c - the 16-byte frame header: byte layout, round trips and every
 * way frame_header_check() refuses a header.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "frame.h"

#define N_METHODS 18

static struct sr_frame_header
header(uint32_t length, uint16_t method, uint16_t flags, uint64_t call_id)
{
	struct sr_frame_header h;

	h.length = length;
	h.method = method;
	h.flags = flags;
	h.call_id = call_id;
	return h;
}

START_TEST(encode_is_big_endian)
{
	struct sr_frame_header h = header(0x01020304, 0x0506, 0x0001, 0x0708090a0b0c0d0eull);
	const uint8_t want[SR_FRAME_HEADER_SIZE] = {
	    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x00, 0x01,
	    0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
	};
	uint8_t out[SR_FRAME_HEADER_SIZE];

	memset(out, 0xee, sizeof(out));
	frame_header_encode(&h, out);
	ck_assert_mem_eq(out, want, sizeof(want));
}
END_TEST

START_TEST(decode_reads_big_endian)
{
	const uint8_t in[SR_FRAME_HEADER_SIZE] = {
	    0x00, 0x00, 0x01, 0x00, 0x00, 0x11, 0x00, 0x00,
	    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a,
	};
	struct sr_frame_header h;

	frame_header_decode(in, &h);
	ck_assert_uint_eq(h.length, 256);
	ck_assert_uint_eq(h.method, 17);
	ck_assert_uint_eq(h.flags, 0);
	ck_assert_uint_eq(h.call_id, 42);
}
END_TEST

static const struct sr_frame_header round_trips[] = {
    {0, 0, 0, 0},
    {1, 1, SR_FRAME_FLAG_REPLY, 1},
    {SR_MAX_FRAME, N_METHODS - 1, 0, UINT64_MAX},
    {UINT32_MAX, UINT16_MAX, UINT16_MAX, 0x8000000000000001ull},
    {0x80000000u, 0x8000, 0x8000, 0x00000000ffffffffull},
};

START_TEST(round_trip)
{
	const struct sr_frame_header *in = &round_trips[_i];
	struct sr_frame_header out;
	uint8_t buf[SR_FRAME_HEADER_SIZE];

	frame_header_encode(in, buf);
	memset(&out, 0x5a, sizeof(out));
	frame_header_decode(buf, &out);
	ck_assert_uint_eq(out.length, in->length);
	ck_assert_uint_eq(out.method, in->method);
	ck_assert_uint_eq(out.flags, in->flags);
	ck_assert_uint_eq(out.call_id, in->call_id);
}
END_TEST

START_TEST(check_accepts_valid_request_and_reply)
{
	struct sr_frame_header req = header(100, 0, 0, 7);
	struct sr_frame_header rep = header(100, 0, SR_FRAME_FLAG_REPLY, 7);
	const char *why = "untouched";

	ck_assert_int_eq(frame_header_check(&req, SR_MAX_FRAME, N_METHODS, 0, &why), 0);
	ck_assert_int_eq(frame_header_check(&rep, SR_MAX_FRAME, N_METHODS, 1, &why), 0);
	ck_assert_str_eq(why, "untouched");
}
END_TEST

START_TEST(check_boundaries_pass)
{
	struct sr_frame_header h = header(SR_MAX_FRAME, N_METHODS - 1, 0, UINT64_MAX);
	const char *why = NULL;

	/* length == max and method == n - 1 are the largest valid values. */
	ck_assert_int_eq(frame_header_check(&h, SR_MAX_FRAME, N_METHODS, 0, &why), 0);
	h.length = 0;
	h.method = 0;
	h.call_id = 0;
	ck_assert_int_eq(frame_header_check(&h, SR_MAX_FRAME, N_METHODS, 0, &why), 0);
}
END_TEST

static void
assert_refused(struct sr_frame_header h, uint32_t max, unsigned n, int expect_reply,
               const char *want)
{
	const char *why = NULL;

	ck_assert_int_eq(frame_header_check(&h, max, n, expect_reply, &why), -1);
	ck_assert_ptr_nonnull(why);
	ck_assert_str_eq(why, want);
}

START_TEST(check_refuses_reserved_flags)
{
	for (unsigned bit = 1; bit < 16; bit++) {
		uint16_t f = (uint16_t)(1u << bit);

		assert_refused(header(0, 0, f, 1), SR_MAX_FRAME, N_METHODS, 0,
		               "reserved flag bits set");
		assert_refused(header(0, 0, (uint16_t)(f | SR_FRAME_FLAG_REPLY), 1), SR_MAX_FRAME,
		               N_METHODS, 1, "reserved flag bits set");
	}
}
END_TEST

START_TEST(check_refuses_reply_bit_mismatch)
{
	assert_refused(header(0, 0, SR_FRAME_FLAG_REPLY, 1), SR_MAX_FRAME, N_METHODS, 0,
	               "a reply frame sent as a request");
	assert_refused(header(0, 0, 0, 1), SR_MAX_FRAME, N_METHODS, 1, "expected a reply frame");
}
END_TEST

START_TEST(check_refuses_method_out_of_range)
{
	assert_refused(header(0, N_METHODS, 0, 1), SR_MAX_FRAME, N_METHODS, 0, "unknown method");
	assert_refused(header(0, UINT16_MAX, 0, 1), SR_MAX_FRAME, N_METHODS, 0, "unknown method");
	assert_refused(header(0, 0, 0, 1), SR_MAX_FRAME, 0, 0, "unknown method");
}
END_TEST

START_TEST(check_refuses_length_over_max)
{
	assert_refused(header(SR_MAX_FRAME + 1, 0, 0, 1), SR_MAX_FRAME, N_METHODS, 0,
	               "frame larger than the maximum");
	assert_refused(header(UINT32_MAX, 0, 0, 1), SR_MAX_FRAME, N_METHODS, 0,
	               "frame larger than the maximum");
	assert_refused(header(1, 0, 0, 1), 0, N_METHODS, 0, "frame larger than the maximum");
}
END_TEST

START_TEST(limits_are_consistent)
{
	ck_assert_uint_gt(SR_MAX_FRAME, SR_MAX_PAYLOAD);
	ck_assert_int_eq(SR_FRAME_HEADER_SIZE, 16);
	ck_assert_uint_eq(SR_FRAME_FLAGS_KNOWN, SR_FRAME_FLAG_REPLY);
}
END_TEST

Suite *
frame_suite(void)
{
	Suite *s = suite_create("frame");
	TCase *tc = tcase_create("header");

	tcase_add_test(tc, encode_is_big_endian);
	tcase_add_test(tc, decode_reads_big_endian);
	tcase_add_loop_test(tc, round_trip, 0, sizeof(round_trips) / sizeof(round_trips[0]));
	tcase_add_test(tc, check_accepts_valid_request_and_reply);
	tcase_add_test(tc, check_boundaries_pass);
	tcase_add_test(tc, check_refuses_reserved_flags);
	tcase_add_test(tc, check_refuses_reply_bit_mismatch);
	tcase_add_test(tc, check_refuses_method_out_of_range);
	tcase_add_test(tc, check_refuses_length_over_max);
	tcase_add_test(tc, limits_are_consistent);
	suite_add_tcase(s, tc);
	return s;
}
