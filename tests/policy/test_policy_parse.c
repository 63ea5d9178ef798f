/*
 * test_policy_parse.c - the policy file grammar: every error kind reported with its line,
 * errors collected across lines, and good files of each rule form (including the shipped
 * docs/example.policy).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

#define FILE_NAME "t.policy"

static struct policy *
parse(const char *text, char *errors, size_t len)
{
	struct policy *p;
	FILE *f = tmpfile();

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	rewind(f);
	p = policy_load_stream(f, FILE_NAME, errors, len);
	fclose(f);
	return p;
}

/* The policy must fail with exactly one error, on `line`, containing `fragment`. */
static void
expect_error(const char *text, int line, const char *fragment)
{
	char errors[4096], want[64];
	struct policy *p = parse(text, errors, sizeof(errors));

	ck_assert_msg(p == NULL, "accepted: %s", text);
	snprintf(want, sizeof(want), FILE_NAME ":%d: ", line);
	ck_assert_msg(strncmp(errors, want, strlen(want)) == 0, "for %s: got '%s', want '%s...'",
	              text, errors, want);
	ck_assert_msg(strstr(errors, fragment) != NULL, "for %s: got '%s', want '%s'", text, errors,
	              fragment);
	ck_assert_msg(strchr(errors, '\n') == errors + strlen(errors) - 1,
	              "more than one error: %s", errors);
}

static struct policy *
expect_ok(const char *text)
{
	char errors[4096];
	struct policy *p = parse(text, errors, sizeof(errors));

	ck_assert_msg(p != NULL, "rejected: %s\n%s", text, errors);
	ck_assert_str_eq(errors, "");
	return p;
}

START_TEST(unknown_keyword)
{
	expect_error("permit * connect\n", 1, "unknown keyword 'permit'");
	expect_error("allow uid=1 claimed-exe=/usr/bin/curl connect\n", 1,
	             "claimed-exe= only in deny rules");
	expect_error("allow claimed-exe!=/usr/bin/curl connect\n", 1,
	             "claimed-exe= only in deny rules");
	expect_error("deny claimed-exe=curl connect\n", 1, "needs absolute paths");
	expect_error("deny claimed-exe=/a claimed-exe=/b connect\n", 1, "duplicate claimed-exe");
	expect_error("# c\n\nallow * connect tcp frobnicate\n", 3, "unknown keyword 'frobnicate'");
	expect_error("allow * connect example.com\n", 1, "unknown keyword 'example.com'");
}
END_TEST

START_TEST(missing_parts)
{
	expect_error("uid=1000 connect tcp\n", 1, "missing action");
	expect_error("\n* connect\n", 2, "missing action");
	expect_error("allow connect tcp\n", 1, "missing who");
	expect_error("allow\n", 1, "missing who");
	expect_error("allow uid=1\n", 1, "missing operation");
	expect_error("allow uid=1 \"x\"\n", 1, "missing operation");
	expect_error("allow * frob\n", 1, "unknown operation 'frob'");
	expect_error("allow * connect,,bind\n", 1, "bad operation list");
	expect_error("allow * connect,\n", 1, "trailing comma");
	expect_error("allow * connect,connect\n", 1, "duplicate operation 'connect'");
}
END_TEST

START_TEST(bad_addresses)
{
	expect_error("allow * connect 10.0.0.0/abc\n", 1, "bad CIDR '10.0.0.0/abc'");
	expect_error("allow * connect 10.0.0.0/\n", 1, "bad CIDR");
	expect_error("allow * connect 10.0.0.256\n", 1, "bad address '10.0.0.256'");
	expect_error("allow * connect 10.0.0\n", 1, "bad address");
	expect_error("allow * connect 2001:db8::g\n", 1, "bad address");
	expect_error("\nallow * connect 10.0.0.0/33\n", 2, "prefix /33 too long for IPv4");
	expect_error("allow * connect 2001:db8::/129\n", 1, "prefix /129 too long for IPv6");
	expect_error("allow * connect [::1/200]:80\n", 1, "too long for IPv6");
	expect_error("allow * connect 10.0.0.1/8\n", 1, "host bits set");
	expect_error("allow * connect fe80::1/10\n", 1, "host bits set");
	expect_error("allow * connect [::1\n", 1, "missing ']'");
	expect_error("allow * connect [::1]x\n", 1, "bad address");
	expect_error("allow * connect @nowhere\n", 1, "unknown address set '@nowhere'");
	expect_error("allow * connect 10.0.0.1,\n", 1, "trailing comma");
}
END_TEST

START_TEST(bad_ports)
{
	expect_error("allow * connect tcp port 65536\n", 1, "port 65536 out of range");
	expect_error("allow * connect tcp 10.0.0.1:70000\n", 1, "out of range");
	expect_error("allow * connect tcp [::1]:99999\n", 1, "out of range");
	expect_error("allow * connect tcp port 90-80\n", 1, "bad port range '90-80'");
	expect_error("allow * connect tcp port 80-\n", 1, "bad port range '80-'");
	expect_error("allow * connect tcp port 1-70000\n", 1, "out of range");
	expect_error("allow * connect tcp port -5\n", 1, "bad port range");
	expect_error("allow * connect tcp port http\n", 1, "bad port 'http'");
	expect_error("allow * connect tcp port 80,\n", 1, "trailing comma");
	expect_error("allow * connect tcp port\n", 1, "'port' needs");
	expect_error("allow * connect tcp 10.0.0.1:\n", 1, "empty port");
	expect_error("allow * connect unix port 80\n", 1, "not unix");
}
END_TEST

START_TEST(unknown_names)
{
	expect_error("allow user=no-such-user-sockrpc connect\n", 1,
	             "unknown user 'no-such-user-sockrpc'");
	expect_error("\n\nallow group=root,no-such-group-sockrpc connect\n", 3,
	             "unknown group 'no-such-group-sockrpc'");
	expect_error("allow uid=abc connect\n", 1, "bad uid 'abc'");
	expect_error("allow gid=-1 connect\n", 1, "bad gid '-1'");
	expect_error("allow uid=4294967295 connect\n", 1, "bad uid");
	expect_error("allow uid= connect\n", 1, "uid= needs a value");
	expect_error("allow uid=1,,2 connect\n", 1, "bad uid= value");
	expect_error("allow shell=/bin/sh connect\n", 1, "unknown selector 'shell='");
	expect_error("allow exe=python connect\n", 1, "absolute path");
	expect_error("allow cgroup=user.slice connect\n", 1, "absolute path");
	expect_error("allow spki=abcd connect\n", 1, "spki= needs sha256:");
	expect_error("allow spki=sha256:0011 connect\n", 1, "64 hex digits");
	expect_error("allow principal=a principal=b connect\n", 1, "duplicate principal");
	expect_error("allow principal= connect\n", 1, "principal= needs a value");
}
END_TEST

START_TEST(strings)
{
	expect_error("deny * connect reason \"no\n", 1, "unterminated string");
	expect_error("deny * connect reason \"a\\qb\"\n", 1, "bad escape");
	expect_error("deny * connect reason\n", 1, "'reason' needs a \"quoted string\"");
	expect_error("deny * connect reason x\n", 1, "'reason' needs");
	expect_error("deny * connect \"x\"\n", 1, "unexpected string");
	expect_error("deny * connect reason \"x\"y\n", 1, "missing space after string");
	expect_error("deny * connect re\"ason\n", 1, "inside a word");
	expect_error("\"deny\" * connect\n", 1, "missing action");

	char long_reason[400] = "deny * connect reason \"";
	memset(long_reason + strlen(long_reason), 'x', 250);
	strcat(long_reason, "\"\n");
	expect_error(long_reason, 1, "reason too long");
}
END_TEST

START_TEST(duplicates)
{
	expect_error("allow uid=1 uid=2 connect\n", 1, "duplicate uid=/user=");
	expect_error("allow uid=0 user=root connect\n", 1, "duplicate uid=/user=");
	expect_error("allow gid=0 group=root connect\n", 1, "duplicate gid=/group=");
	expect_error("allow exe=/a exe=/b connect\n", 1, "duplicate exe");
	expect_error("allow * connect tcp port 1 port 2\n", 1, "duplicate port");
	expect_error("allow * connect tcp 10.0.0.1:80 port 80\n", 1, "duplicate port");
	expect_error("allow * connect tcp port 80 [::1]:80\n", 1, "duplicate port");
	expect_error("deny * connect reason \"a\" reason \"b\"\n", 1, "duplicate reason");
	expect_error("allow * connect tcp tcp\n", 1, "duplicate transport in 'tcp'");
	expect_error("allow * connect tcp,udp udp\n", 1, "duplicate transport");
	expect_error("allow * connect ipv6 ipv6\n", 1, "duplicate 'ipv6'");
	expect_error("allow * create max-handles 1 max-handles 2\n", 1, "duplicate max-handles");
	expect_error("limit sessions 1\nlimit sessions 2\n", 2, "duplicate limit 'sessions'");
}
END_TEST

START_TEST(bad_limits)
{
	expect_error("limit sessions\n", 1, "limit needs a name and a number");
	expect_error("limit sessions 1 2\n", 1, "limit needs");
	expect_error("limit frames 10\n", 1, "unknown limit 'frames'");
	expect_error("limit sessions -1\n", 1, "bad value '-1' for limit sessions");
	expect_error("limit sessions 99999999999\n", 1, "bad value");
	expect_error("limit queued-bytes 12X\n", 1, "bad value '12X'");
	expect_error("limit queued-bytes 99999999999G\n", 1, "bad value");
	expect_error("allow * create max-handles many\n", 1, "'max-handles' needs a number");
	expect_error("deny * connect max-connections 3\n", 1, "only to allow rules");
}
END_TEST

START_TEST(bad_where)
{
	expect_error("allow * connect host example.com\n", 1, "only to resolve rules");
	expect_error("allow * resolve ex*mple.com\n", 1, "bad host pattern 'ex*mple.com'");
	expect_error("allow * resolve a..b.com\n", 1, "bad host pattern");
	expect_error("allow * resolve *.*\n", 1, "bad host pattern");
	expect_error("allow * resolve host\n", 1, "'host' needs");
	expect_error("allow * connect unix /run/*/x\n", 1, "'*' only at the end");
	expect_error("allow * connect unix ipv4\n", 1, "not unix");
	expect_error("allow * connect abstract:\n", 1, "empty abstract");
	expect_error("allow * connect SO_DEBUG\n", 1, "option names apply only to option rules");
	expect_error("allow * option SO_FROB\n", 1, "unknown option 'SO_FROB'");
	expect_error("allow * option SO_DEBUG,SO_FROB\n", 1, "unknown option 'SO_FROB'");
	expect_error("allow * option SO_DEBUG,so_debug\n", 1, "duplicate option 'so_debug'");
	expect_error("allow * option SO_DEBUG,\n", 1, "trailing comma");
	expect_error("allow * option SO_DEBUG,,SO_MARK\n", 1, "bad option list");

	expect_error("deny * connect tcp handback\n", 1, "handback applies only to allow rules");
	expect_error("allow * bind,listen tcp handback\n", 1, "only to connect and accept rules");
	expect_error("allow * connect unix /run/x.sock handback\n", 1, "only to tcp or udp");
	expect_error("allow * connect raw handback\n", 1, "only to tcp or udp");
	expect_error("allow * connect tcp handback handback\n", 1, "duplicate handback");

	char long_path[300] = "allow * connect unix /";
	memset(long_path + strlen(long_path), 'p', 120);
	strcat(long_path, "\n");
	expect_error(long_path, 1, "Unix path too long");
}
END_TEST

START_TEST(many_errors_each_with_line)
{
	char errors[4096];
	const char *text = "allow * connect\n"
	                   "allow * bogus\n"
	                   "# fine\n"
	                   "limit nope 1\n"
	                   "deny * connect 1.2.3.4/40\n";

	ck_assert_ptr_null(parse(text, errors, sizeof(errors)));
	ck_assert_ptr_nonnull(strstr(errors, FILE_NAME ":2: unknown operation 'bogus'"));
	ck_assert_ptr_nonnull(strstr(errors, FILE_NAME ":4: unknown limit 'nope'"));
	ck_assert_ptr_nonnull(strstr(errors, FILE_NAME ":5: prefix /40 too long"));
	ck_assert_ptr_null(strstr(errors, FILE_NAME ":1:"));
	ck_assert_ptr_null(strstr(errors, FILE_NAME ":3:"));
}
END_TEST

START_TEST(error_buffer_truncates)
{
	char errors[40];
	struct policy *p;

	memset(errors, 'Z', sizeof(errors));
	p = parse("x\ny\nz\n", errors, sizeof(errors));
	ck_assert_ptr_null(p);
	ck_assert_uint_lt(strlen(errors), sizeof(errors));
	ck_assert_int_eq(strncmp(errors, FILE_NAME ":1: unknown keyword 'x'", 20), 0);
	ck_assert_int_eq(errors[strlen(errors) - 1], '\n');
	/* NULL buffer is allowed too */
	ck_assert_ptr_null(parse("x\n", NULL, 0));
}
END_TEST

START_TEST(missing_file)
{
	char errors[256];

	ck_assert_ptr_null(policy_load("/nonexistent/sockrpc.policy", errors, sizeof(errors)));
	ck_assert_str_eq(errors, "/nonexistent/sockrpc.policy: No such file or directory\n");
}
END_TEST

START_TEST(nul_and_long_lines)
{
	char errors[256];
	FILE *f = tmpfile();
	struct policy *p;
	char *big;

	fwrite("allow * create\n\0oops\n", 1, 21, f);
	rewind(f);
	ck_assert_ptr_null(policy_load_stream(f, FILE_NAME, errors, sizeof(errors)));
	fclose(f);
	ck_assert_str_eq(errors, FILE_NAME ":2: NUL byte in line\n");

	big = malloc(10000);
	memset(big, ' ', 9998);
	big[9998] = '\n';
	big[9999] = '\0';
	p = parse(big, errors, sizeof(errors));
	free(big);
	ck_assert_ptr_null(p);
	ck_assert_ptr_nonnull(strstr(errors, ":1: line too long"));
}
END_TEST

START_TEST(good_rule_forms)
{
	static const char *const rules[] = {
	    "allow * *",
	    "allow uid=0 *",
	    "allow uid=1000,1001 gid=100 connect tcp 10.0.0.0/8 port 443",
	    "allow user=root group=root,daemon "
	    "create,connect,bind,listen,accept,send,resolve,option",
	    "deny exe=/usr/bin/* cgroup=/user.slice/* * reason \"no \\\"quotes\\\" \\\\ here\"",
	    "allow * connect tcp [::1]:443",
	    "allow * connect tcp [2001:db8::/32]:8000-8999",
	    "allow * connect udp 2001:db8::/32 port 53,853",
	    "allow * connect tcp 192.0.2.1:80",
	    "allow * connect tcp,udp ipv4 ipv6 @any",
	    "allow * bind tcp @loopback:8080",
	    "allow * bind tcp [@loopback,@unspecified]:0",
	    "allow * send udp @multicast,@link-local,@private port *",
	    "allow * connect 10.0.0.0/8,192.168.0.0/16:443",
	    "allow * connect ::ffff:10.0.0.0/104",
	    "allow * connect 0.0.0.0/0 ::/0",
	    "allow * connect unix /run/x.sock /run/app/* abstract:name abstract:pre*",
	    "allow * resolve example.com *.example.com EXAMPLE.org. localhost.",
	    "allow * resolve host localhost,*.local",
	    "allow * resolve,connect 1password.com",
	    "allow * resolve *",
	    "allow * connect * tcp",
	    "allow * create raw max-handles 4 max-connections 0",
	    "allow * option tcp # a comment",
	    "   allow\t*\tcreate   ",
	    "allow\v*\fcreate\r",
	};
	char text[512];
	struct policy *p;

	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		snprintf(text, sizeof(text), "# rule %zu\n%s\n", i, rules[i]);
		p = expect_ok(text);
		ck_assert_uint_eq(policy_rule_count(p), 1);
		policy_free(p);
	}
}
END_TEST

START_TEST(good_limits)
{
	struct policy *p = expect_ok("limit sessions 1024\n"
	                             "limit sessions-per-uid 64\n"
	                             "limit handles-per-session 256\n"
	                             "limit queued-bytes 2M\n");
	const struct policy_limits *l = policy_limits(p);

	ck_assert_int_eq(l->sessions, 1024);
	ck_assert_int_eq(l->sessions_per_uid, 64);
	ck_assert_int_eq(l->handles_per_session, 256);
	ck_assert_int_eq(l->queued_bytes, 2 * 1024 * 1024);
	ck_assert_uint_eq(policy_rule_count(p), 0);
	ck_assert_str_eq(policy_source(p), FILE_NAME);
	policy_free(p);

	p = expect_ok("limit queued-bytes 100\nallow * create\n");
	l = policy_limits(p);
	ck_assert_int_eq(l->queued_bytes, 100);
	ck_assert_int_eq(l->sessions, -1);
	ck_assert_int_eq(l->sessions_per_uid, -1);
	ck_assert_int_eq(l->handles_per_session, -1);
	ck_assert_uint_eq(policy_rule_count(p), 1);
	policy_free(p);

	p = expect_ok("");
	ck_assert_uint_eq(policy_rule_count(p), 0);
	policy_free(p);
}
END_TEST

START_TEST(example_policy_loads)
{
	char path[4096], errors[4096];
	const char *src = __FILE__;
	const char *cut = strstr(src, "tests/policy/");
	struct policy *p;

	ck_assert_ptr_nonnull(cut);
	snprintf(path, sizeof(path), "%.*sdocs/example.policy", (int)(cut - src), src);
	p = policy_load(path, errors, sizeof(errors));
	ck_assert_msg(p != NULL, "%s", errors);
	ck_assert_uint_ge(policy_rule_count(p), 10);
	ck_assert_int_eq(policy_limits(p)->sessions, 1024);
	policy_free(p);
}
END_TEST

START_TEST(default_policy_and_free_null)
{
	struct policy *p = policy_default(1234);

	ck_assert_uint_eq(policy_rule_count(p), 1);
	ck_assert_str_eq(policy_source(p), "default");
	ck_assert_int_eq(policy_limits(p)->sessions, -1);
	policy_free(p);
	policy_free(NULL);
}
END_TEST

Suite *
policy_parse_suite(void)
{
	Suite *s = suite_create("policy_parse");
	TCase *tc = tcase_create("errors");

	tcase_add_test(tc, unknown_keyword);
	tcase_add_test(tc, missing_parts);
	tcase_add_test(tc, bad_addresses);
	tcase_add_test(tc, bad_ports);
	tcase_add_test(tc, unknown_names);
	tcase_add_test(tc, strings);
	tcase_add_test(tc, duplicates);
	tcase_add_test(tc, bad_limits);
	tcase_add_test(tc, bad_where);
	tcase_add_test(tc, many_errors_each_with_line);
	tcase_add_test(tc, error_buffer_truncates);
	tcase_add_test(tc, missing_file);
	tcase_add_test(tc, nul_and_long_lines);
	suite_add_tcase(s, tc);

	tc = tcase_create("good");
	tcase_add_test(tc, good_rule_forms);
	tcase_add_test(tc, good_limits);
	tcase_add_test(tc, example_policy_loads);
	tcase_add_test(tc, default_policy_and_free_null);
	suite_add_tcase(s, tc);
	return s;
}
