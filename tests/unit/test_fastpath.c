/*
 * test_fastpath.c - SOCKRPC_DISABLE as the client reads it (client/fastpath.c): a
 * comma-separated list of fast-path names or "all"; names of the daemon's fast paths,
 * unknown names, spaces and empty items change nothing else.
 */
#include <check.h>

#include "internal.h"

START_TEST(nothing_disabled_without_a_list)
{
	ck_assert_uint_eq(cl_fastpath_parse(NULL), 0);
	ck_assert_uint_eq(cl_fastpath_parse(""), 0);
	ck_assert_uint_eq(cl_fastpath_parse(","), 0);
}
END_TEST

START_TEST(each_name_turns_off_its_path)
{
	ck_assert_uint_eq(cl_fastpath_parse("write-behind"), CL_FAST_WRITE_BEHIND);
	ck_assert_uint_eq(cl_fastpath_parse("read-ahead"), CL_FAST_READ_AHEAD);
	ck_assert_uint_eq(cl_fastpath_parse("borrowed-replies"), CL_FAST_BORROWED_REPLIES);
	ck_assert_uint_eq(cl_fastpath_parse("read-ahead, write-behind"),
	                  CL_FAST_READ_AHEAD | CL_FAST_WRITE_BEHIND);
}
END_TEST

START_TEST(all_turns_off_every_path)
{
	ck_assert_uint_eq(cl_fastpath_parse("all"), CL_FAST_ALL);
	ck_assert_uint_eq(cl_fastpath_parse("send-batching,all"), CL_FAST_ALL);
}
END_TEST

START_TEST(other_names_change_nothing)
{
	/* The daemon's names, prefixes, suffixes and case variants are not the client's. */
	ck_assert_uint_eq(cl_fastpath_parse("send-batching,borrowed-payloads,splice-receive"), 0);
	ck_assert_uint_eq(cl_fastpath_parse("read,write-behind-x,ALL,al"), 0);
	ck_assert_uint_eq(cl_fastpath_parse("bogus,read-ahead"), CL_FAST_READ_AHEAD);
}
END_TEST

Suite *
fastpath_suite(void)
{
	Suite *s = suite_create("fastpath");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, nothing_disabled_without_a_list);
	tcase_add_test(tc, each_name_turns_off_its_path);
	tcase_add_test(tc, all_turns_off_every_path);
	tcase_add_test(tc, other_names_change_nothing);
	suite_add_tcase(s, tc);
	return s;
}
