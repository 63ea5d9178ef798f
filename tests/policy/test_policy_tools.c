/*
 * test_policy_tools.c - the policy's tools and inputs: --check-policy output and exit
 * status, --explain words, decisions and exit status. (identity_from_socket(), which is the
 * daemon's, is tested in tests/unit/test_identity_socket.c.)
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "policy.h"

static char policy_path[] = "/tmp/sockrpc-tools-XXXXXX";

static void
write_policy(const char *text)
{
	int fd = mkstemp(policy_path);
	FILE *f;

	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
}

static void
remove_policy(void)
{
	unlink(policy_path);
	strcpy(policy_path, "/tmp/sockrpc-tools-XXXXXX");
}

/* Runs stream-writing fn, returns what it wrote (static buffer). */
static char captured[8192];

static char *
slurp(FILE *f)
{
	size_t n;

	rewind(f);
	n = fread(captured, 1, sizeof(captured) - 1, f);
	captured[n] = '\0';
	fclose(f);
	return captured;
}

static int
explain(const char *path, const char *words)
{
	char buf[512], *argv[32], *save = NULL;
	int argc = 0, rc;
	FILE *out = tmpfile();

	snprintf(buf, sizeof(buf), "%s", words);
	for (char *w = strtok_r(buf, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	rc = explain_main(path, argc, argv, out);
	slurp(out);
	return rc;
}

START_TEST(check_policy_good_and_bad)
{
	FILE *out = tmpfile(), *err = tmpfile();
	char want[256];

	write_policy("limit sessions 10\nallow * create\ndeny * connect 10.0.0.0/8\n");
	ck_assert_int_eq(check_policy_main(policy_path, out, err), 0);
	snprintf(want, sizeof(want), "%s: ok, 2 rules\n", policy_path);
	ck_assert_str_eq(slurp(out), want);
	ck_assert_str_eq(slurp(err), "");
	remove_policy();

	out = tmpfile();
	err = tmpfile();
	write_policy("allow * create\nallow * conect\n\ndeny * connect 10.0.0.0/33\n");
	ck_assert_int_eq(check_policy_main(policy_path, out, err), 1);
	ck_assert_str_eq(slurp(out), "");
	slurp(err);
	snprintf(want, sizeof(want), "%s:2: unknown operation 'conect'", policy_path);
	ck_assert_ptr_nonnull(strstr(captured, want));
	snprintf(want, sizeof(want), "%s:4: prefix /33 too long", policy_path);
	ck_assert_ptr_nonnull(strstr(captured, want));
	remove_policy();

	out = tmpfile();
	err = tmpfile();
	ck_assert_int_eq(check_policy_main("/nonexistent/p", out, err), 1);
	slurp(out);
	ck_assert_str_eq(slurp(err), "/nonexistent/p: No such file or directory\n");
}
END_TEST

START_TEST(explain_decisions)
{
	write_policy("deny * connect 169.254.169.254 reason \"metadata is off limits\"\n"
	             "allow uid=1000 connect tcp 10.0.0.0/8 port 443 max-connections 3\n"
	             "allow user=root bind udp [::1]:53\n"
	             "allow * resolve *.example.com\n"
	             "allow gid=4242 create tcp ipv6\n"
	             "allow * connect unix /run/x.sock\n");

	ck_assert_int_eq(explain(policy_path, "uid=1000 connect tcp 10.1.2.3:443"), 0);
	ck_assert_ptr_nonnull(strstr(captured, "allow\n"));
	ck_assert_ptr_nonnull(strstr(captured, ":2\n"));
	ck_assert_ptr_nonnull(strstr(captured, "max-connections 3"));
	ck_assert_ptr_nonnull(strstr(captured, "connect ipv4 stream 10.1.2.3 port 443"));

	ck_assert_int_eq(explain(policy_path, "uid=1000 connect tcp 10.1.2.3:80"), 1);
	ck_assert_ptr_nonnull(strstr(captured, "deny\n"));
	ck_assert_ptr_nonnull(strstr(captured, "rule:    default"));

	ck_assert_int_eq(explain(policy_path, "uid=1000 connect tcp 10.1.2.3 port 443"), 0);
	ck_assert_int_eq(explain(policy_path, "uid=1000 connect tcp 169.254.169.254:443"), 1);
	ck_assert_ptr_nonnull(strstr(captured, "reason:  metadata is off limits"));
	ck_assert_ptr_nonnull(strstr(captured, ":1\n"));
	/* a v6 socket reaching the same host through a mapped address */
	ck_assert_int_eq(explain(policy_path, "uid=1000 connect tcp ipv6 [::ffff:10.0.0.1]:443"),
	                 0);
	ck_assert_int_eq(explain(policy_path, "uid=1000 connect tcp ipv6 10.0.0.1:443"), 0);

	ck_assert_int_eq(explain(policy_path, "user=root bind udp [::1]:53"), 0);
	ck_assert_int_eq(explain(policy_path, "uid=0 bind udp [::1]:54"), 1);
	ck_assert_int_eq(explain(policy_path, "uid=5 resolve a.example.com"), 0);
	ck_assert_int_eq(explain(policy_path, "uid=5 resolve example.com"), 1);
	ck_assert_int_eq(explain(policy_path, "uid=5 gid=4242 create tcp ipv6"), 0);
	ck_assert_int_eq(explain(policy_path, "uid=5 group=4242 create tcp ipv6"), 0);
	ck_assert_int_eq(explain(policy_path, "uid=5 gid=4242 create tcp"), 1);
	ck_assert_int_eq(explain(policy_path, "uid=5 connect unix /run/x.sock"), 0);
	ck_assert_int_eq(explain(policy_path, "uid=5 connect unix /run/y.sock"), 1);
	remove_policy();
}
END_TEST

/* --check-policy warns, on a valid file, about what exe=/cgroup= allow rules do not prove
 * and notes that broad option rules grant no privileged option; the exit status stays 0. */
START_TEST(check_policy_warnings)
{
	FILE *out = tmpfile(), *err = tmpfile();
	char want[256], *e;

	write_policy("allow uid=1000 exe=/usr/bin/python3* connect tcp\n"
	             "deny exe=/usr/bin/nc connect\n"
	             "allow cgroup=/jobs/* create\n"
	             "deny cgroup=/untrusted/* *\n"
	             "allow uid=1001 *\n"
	             "allow uid=1002 option SO_DEBUG\n");
	ck_assert_int_eq(check_policy_main(policy_path, out, err), 0);
	snprintf(want, sizeof(want), "%s: ok, 6 rules\n", policy_path);
	ck_assert_str_eq(slurp(out), want);
	e = slurp(err);
	snprintf(want, sizeof(want), "%s:1: warning: exe= does not confine a user who can run",
	         policy_path);
	ck_assert_msg(strstr(e, want) != NULL, "%s", e);
	ck_assert_msg(strstr(e, "forks a child keeping the connection and execs") != NULL, "%s", e);
	snprintf(want, sizeof(want), "%s:3: warning: cgroup= does not confine", policy_path);
	ck_assert_msg(strstr(e, want) != NULL, "%s", e);
	snprintf(want, sizeof(want), "%s:5: note: allows no privileged option", policy_path);
	ck_assert_msg(strstr(e, want) != NULL, "%s", e);
	/* deny rules and naming rules get nothing */
	snprintf(want, sizeof(want), "%s:2:", policy_path);
	ck_assert_msg(strstr(e, want) == NULL, "%s", e);
	snprintf(want, sizeof(want), "%s:4:", policy_path);
	ck_assert_msg(strstr(e, want) == NULL, "%s", e);
	snprintf(want, sizeof(want), "%s:6:", policy_path);
	ck_assert_msg(strstr(e, want) == NULL, "%s", e);
	remove_policy();
}
END_TEST

/* --check-policy notes each handback rule; --explain says whether a connection may be
 * handed back. */
START_TEST(handback_shown)
{
	FILE *out = tmpfile(), *err = tmpfile();
	char want[256], *e;

	write_policy("allow uid=1000 connect tcp 10.0.0.0/8 handback\n"
	             "allow uid=1000 connect udp 10.0.0.0/8 port 53 handback\n"
	             "allow uid=1000 connect tcp\n");
	ck_assert_int_eq(check_policy_main(policy_path, out, err), 0);
	e = slurp(err);
	snprintf(want, sizeof(want), "%s:1: note: handback:", policy_path);
	ck_assert_msg(strstr(e, want) != NULL, "%s", e);
	ck_assert_msg(strstr(e, "byte quotas") != NULL, "%s", e);
	snprintf(want, sizeof(want), "%s:2: note: handback:", policy_path);
	ck_assert_msg(strstr(e, want) != NULL && strstr(e, "sendto/sendmsg") != NULL, "%s", e);
	snprintf(want, sizeof(want), "%s:3:", policy_path);
	ck_assert_msg(strstr(e, want) == NULL, "%s", e);
	ck_assert_int_eq(explain(policy_path, "uid=1000 connect tcp 10.1.2.3:443"), 0);
	ck_assert_msg(strstr(captured, "handback: yes") != NULL, "%s", captured);
	ck_assert_int_eq(explain(policy_path, "uid=1000 connect tcp 192.0.2.1:443"), 0);
	ck_assert_msg(strstr(captured, "handback: no") != NULL, "%s", captured);
	remove_policy();
}
END_TEST

/* --explain asks about options by name and value, and shows where a destination goes. */
START_TEST(explain_options_and_destinations)
{
	write_policy("deny * connect,send @loopback reason \"no loopback\"\n"
	             "allow * connect,send @any\n"
	             "allow uid=1000 *\n"
	             "allow uid=1000 option SO_MARK\n");

	ck_assert_int_eq(explain(policy_path, "uid=1000 option SO_KEEPALIVE"), 0);
	ck_assert_int_eq(explain(policy_path, "uid=1000 option SO_DEBUG 0"), 0);
	ck_assert_int_eq(explain(policy_path, "uid=1000 option SO_DEBUG"), 1);
	ck_assert_ptr_nonnull(strstr(captured, "rule:    default"));
	ck_assert_ptr_nonnull(strstr(captured, "CAP_NET_ADMIN"));
	ck_assert_ptr_nonnull(strstr(captured, "only a rule naming SO_DEBUG allows it"));
	ck_assert_ptr_nonnull(strstr(captured, "option unspec stream SO_DEBUG 1\n"));
	ck_assert_int_eq(explain(policy_path, "uid=1000 option SO_PRIORITY 6"), 0);
	ck_assert_int_eq(explain(policy_path, "uid=1000 option SO_PRIORITY 7"), 1);
	ck_assert_int_eq(explain(policy_path, "uid=1000 option so_mark 1"), 0);
	ck_assert_ptr_nonnull(strstr(captured, ":4\n"));
	ck_assert_int_eq(explain(policy_path, "uid=1000 option SO_FROB"), 2);
	ck_assert_int_eq(explain(policy_path, "uid=1000 option SO_DEBUG x"), 2);

	ck_assert_int_eq(explain(policy_path, "uid=5 connect tcp 0.0.0.0:80"), 1);
	ck_assert_ptr_nonnull(strstr(captured, "reason:  no loopback"));
	ck_assert_ptr_nonnull(strstr(captured, "0.0.0.0 port 80 (the kernel reaches 127.0.0.1)"));
	ck_assert_int_eq(explain(policy_path, "uid=5 send udp [::]:53"), 1);
	ck_assert_ptr_nonnull(strstr(captured, "(the kernel reaches ::1)"));
	ck_assert_int_eq(explain(policy_path, "uid=5 connect tcp [::ffff:0.0.0.0]:80"), 1);
	ck_assert_int_eq(explain(policy_path, "uid=5 connect tcp 10.0.0.1:80"), 0);
	ck_assert_ptr_null(strstr(captured, "the kernel reaches"));
	remove_policy();
}
END_TEST

START_TEST(explain_usage_and_default)
{
	char words[64];

	ck_assert_int_eq(explain(NULL, ""), 2);
	ck_assert_ptr_nonnull(strstr(captured, "usage:"));
	ck_assert_int_eq(explain(NULL, "connect tcp 1.2.3.4:80"), 2);
	ck_assert_int_eq(explain(NULL, "uid=1"), 2);
	ck_assert_ptr_nonnull(strstr(captured, "missing operation"));
	ck_assert_int_eq(explain(NULL, "uid=1 frob"), 2);
	ck_assert_int_eq(explain(NULL, "uid=1 connect tcp 1.2.3.4:99999"), 2);
	ck_assert_int_eq(explain(NULL, "uid=1 connect tcp 1.2.3.4:80 5.6.7.8:80"), 2);
	ck_assert_int_eq(explain(NULL, "user=no-such-user-sockrpc connect"), 2);
	ck_assert_int_eq(explain(NULL, "uid=1 shell=/bin/sh connect"), 2);
	ck_assert_int_eq(explain("/nonexistent/p", "uid=1 connect"), 2);
	ck_assert_ptr_nonnull(strstr(captured, "/nonexistent/p"));

	/* the embedded default: our own uid may, another may not */
	snprintf(words, sizeof(words), "uid=%u connect tcp 1.2.3.4:80", (unsigned)geteuid());
	ck_assert_int_eq(explain(NULL, words), 0);
	ck_assert_ptr_nonnull(strstr(captured, "rule:    default"));
	snprintf(words, sizeof(words), "uid=%u connect tcp 1.2.3.4:80", (unsigned)geteuid() + 1);
	ck_assert_int_eq(explain(NULL, words), 1);
}
END_TEST

Suite *
policy_tools_suite(void)
{
	Suite *s = suite_create("policy_tools");
	TCase *tc = tcase_create("check_and_explain");

	tcase_add_test(tc, check_policy_good_and_bad);
	tcase_add_test(tc, explain_decisions);
	tcase_add_test(tc, explain_usage_and_default);
	tcase_add_test(tc, check_policy_warnings);
	tcase_add_test(tc, explain_options_and_destinations);
	tcase_add_test(tc, handback_shown);
	suite_add_tcase(s, tc);
	return s;
}
