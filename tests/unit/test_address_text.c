/*
 * test_address_text.c - IPv4 addresses as text, formatted by hand for the audit log
 * (policy_format_addr) and for replies (address_format): the same text as inet_ntop for
 * every octet value in every position and for IPv4-mapped IPv6; a buffer too small for
 * the text gets none.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <string.h>

#include "sockrpcd.h"

static void
check_v4(const uint8_t ip[4])
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(53)};
	char want[INET_ADDRSTRLEN], got[INET_ADDRSTRLEN], host[64];
	int port;

	memcpy(&sin.sin_addr, ip, 4);
	ck_assert_ptr_nonnull(inet_ntop(AF_INET, ip, want, sizeof(want)));
	ck_assert_int_eq(
	    policy_format_addr((struct sockaddr *)&sin, sizeof(sin), got, sizeof(got), &port), 0);
	ck_assert_str_eq(got, want);
	ck_assert_int_eq(port, 53);
	address_format((struct sockaddr *)&sin, sizeof(sin), host, sizeof(host), &port);
	ck_assert_str_eq(host, want);
	ck_assert_int_eq(port, 53);
}

START_TEST(ipv4_as_inet_ntop)
{
	for (int pos = 0; pos < 4; pos++)
		for (int v = 0; v < 256; v++) {
			uint8_t ip[4] = {127, 0, 0, 1};

			ip[pos] = (uint8_t)v;
			check_v4(ip);
		}
	check_v4((const uint8_t[]){255, 255, 255, 255});
	check_v4((const uint8_t[]){0, 0, 0, 0});
	check_v4((const uint8_t[]){100, 10, 1, 200});
}
END_TEST

START_TEST(mapped_and_small_buffers)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(80)};
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(80)};
	char buf[INET6_ADDRSTRLEN];
	int port;

	inet_pton(AF_INET6, "::ffff:192.168.100.7", &sin6.sin6_addr);
	ck_assert_int_eq(
	    policy_format_addr((struct sockaddr *)&sin6, sizeof(sin6), buf, sizeof(buf), &port), 0);
	ck_assert_str_eq(buf, "192.168.100.7");
	inet_pton(AF_INET, "255.255.255.255", &sin.sin_addr);
	memset(buf, 'x', sizeof(buf));
	address_format((struct sockaddr *)&sin, sizeof(sin), buf, 15, &port);
	ck_assert_str_eq(buf, ""); /* 16 bytes needed, as inet_ntop */
	address_format((struct sockaddr *)&sin, sizeof(sin), buf, 16, &port);
	ck_assert_str_eq(buf, "255.255.255.255");
}
END_TEST

Suite *
address_text_suite(void)
{
	Suite *s = suite_create("address_text");
	TCase *tc = tcase_create("ipv4");

	tcase_add_test(tc, ipv4_as_inet_ntop);
	tcase_add_test(tc, mapped_and_small_buffers);
	suite_add_tcase(s, tc);
	return s;
}
