/*
 * test_policy_rule.c - parse_rule's steps taken together: one rule using every kind of
 * word (who, operations, transport, IP version, address, port, limits, reason) loads and
 * decides as written, and the whole-rule checks name where a port came from.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "policy.h"

static struct policy *
load(const char *text, char *errors, size_t len)
{
	struct policy *p;
	FILE *f = tmpfile();

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	rewind(f);
	p = policy_load_stream(f, "r.policy", errors, len);
	fclose(f);
	return p;
}

static void
decide_connect(const struct policy *p, uid_t uid, const char *ip, int port,
               struct policy_decision *d)
{
	struct identity who = {.uid = uid, .gid = uid};
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct policy_request rq = {.who = &who,
	                            .op = POLICY_CONNECT,
	                            .family = AF_INET,
	                            .type = SOCK_STREAM,
	                            .addr = (struct sockaddr *)&sin,
	                            .addr_len = sizeof(sin)};

	ck_assert_int_eq(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
	policy_decide(p, &rq, d);
}

START_TEST(every_word_of_a_rule)
{
	char errors[1024];
	struct policy_decision d;
	struct policy *p = load("allow uid=1000,1001 connect,bind tcp ipv4 10.0.0.0/8 port 80,443 "
	                        "max-handles 5 max-connections 2 reason \"web\"\n",
	                        errors, sizeof(errors));

	ck_assert_msg(p != NULL, "%s", errors);
	ck_assert_uint_eq(policy_rule_count(p), 1);
	decide_connect(p, 1001, "10.1.2.3", 443, &d);
	ck_assert(d.allow);
	ck_assert_str_eq(d.rule, "r.policy:1");
	ck_assert_str_eq(d.reason, "web");
	ck_assert_int_eq(d.max_handles, 5);
	ck_assert_int_eq(d.max_connections, 2);
	decide_connect(p, 1001, "10.1.2.3", 22, &d);
	ck_assert(!d.allow);
	decide_connect(p, 1002, "10.1.2.3", 443, &d);
	ck_assert(!d.allow);
	decide_connect(p, 1000, "11.1.2.3", 80, &d);
	ck_assert(!d.allow);
	policy_free(p);
}
END_TEST

START_TEST(port_on_unix_names_its_form)
{
	char errors[1024];

	ck_assert_ptr_null(load("allow * connect unix port 80\n", errors, sizeof(errors)));
	ck_assert_str_eq(errors, "r.policy:1: 'port' applies only to tcp, udp or raw, not unix\n");
	ck_assert_ptr_null(load("allow * connect unix 10.0.0.1:80\n", errors, sizeof(errors)));
	ck_assert_str_eq(errors, "r.policy:1: a port applies only to tcp, udp or raw, not unix\n");
}
END_TEST

Suite *
policy_rule_suite(void)
{
	Suite *s = suite_create("policy_rule");
	TCase *tc = tcase_create("rule");

	tcase_add_test(tc, every_word_of_a_rule);
	tcase_add_test(tc, port_on_unix_names_its_form);
	suite_add_tcase(s, tc);
	return s;
}
