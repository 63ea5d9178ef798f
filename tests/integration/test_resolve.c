/*
 * test_resolve.c - the module functions through the broker: get_address_info
 * (localhost by family, numeric addresses, hosts-file names, services, names that
 * do not resolve), connect and send_to by name, socket(), and the constants table.
 * The daemon runs with a private resolv.conf (nameserver 127.0.0.1, one short
 * attempt) and hosts file, so no query ever leaves the machine.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "reference_constants.h"
#include "sockets.h"

static char res_dir[64];

/* The daemon with a resolver that can only ask 127.0.0.1 and knows the test names. */
static void
resolver_daemon_up(void)
{
	static char resolv[96], hosts[96];
	const char *extra[] = {"--resolv-conf", resolv, "--hosts", hosts, NULL};

	signal(SIGPIPE, SIG_IGN);
	snprintf(res_dir, sizeof(res_dir), "/tmp/srresolve.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(res_dir));
	ck_assert_int_eq(chmod(res_dir, 0755), 0);
	snprintf(resolv, sizeof(resolv), "%s/resolv.conf", res_dir);
	snprintf(hosts, sizeof(hosts), "%s/hosts", res_dir);
	write_file(resolv, "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
	write_file(hosts, "127.0.0.1 localhost echo.test\n"
	                  "::1 localhost echo.test\n"
	                  "127.0.0.1 v4only.test\n");
	daemon_start(&test_daemon, extra);
}

static void
resolver_daemon_down(void)
{
	char cmd[128];

	fixture_daemon_down();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", res_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", res_dir);
}

static sr_addrinfo *
resolve_ok(sr_client *c, const char *name, const char *service, int family)
{
	sr_addrinfo *ai = NULL;
	sr_error err;

	ck_assert_msg(sr_get_address_info(c, name, service, family, &ai, &err) == 0,
	              "get_address_info(%s, %d): %d %s", name, family, err.code, err.message);
	ck_assert_ptr_nonnull(ai);
	ck_assert_uint_ge(ai->count, 1);
	ck_assert_str_eq(ai->ip, ai->addresses[0].ip);
	return ai;
}

/* Asserts the answer is exactly the listed addresses, in any order. */
static void
assert_addresses(const sr_addrinfo *ai, size_t n, const int *families, const char *const *ips)
{
	ck_assert_msg(ai->count == n, "%zu addresses (first %s), want %zu", ai->count, ai->ip, n);
	for (size_t i = 0; i < n; i++) {
		bool found = false;

		for (size_t k = 0; k < ai->count; k++)
			if (ai->addresses[k].family == families[i] &&
			    strcmp(ai->addresses[k].ip, ips[i]) == 0)
				found = true;
		ck_assert_msg(found, "%s missing", ips[i]);
	}
}

START_TEST(localhost_by_family)
{
	static const int v4[] = {AF_INET}, v6[] = {AF_INET6}, both[] = {AF_INET, AF_INET6};
	static const char *const ip4[] = {"127.0.0.1"}, *const ip6[] = {"::1"};
	static const char *const ips[] = {"127.0.0.1", "::1"};
	sr_client *c = daemon_client(&test_daemon);
	sr_addrinfo *ai;

	ai = resolve_ok(c, "localhost", NULL, AF_INET);
	assert_addresses(ai, 1, v4, ip4);
	ck_assert_str_eq(ai->ip, "127.0.0.1");
	ck_assert_str_eq(ai->canonical_name, "localhost");
	sr_addrinfo_free(ai);
	ai = resolve_ok(c, "localhost", NULL, AF_INET6);
	assert_addresses(ai, 1, v6, ip6);
	ck_assert_str_eq(ai->ip, "::1");
	sr_addrinfo_free(ai);
	ai = resolve_ok(c, "localhost", NULL, AF_UNSPEC);
	assert_addresses(ai, 2, both, ips);
	sr_addrinfo_free(ai);
	/* A name of the private hosts file. */
	ai = resolve_ok(c, "echo.test", "http", AF_UNSPEC);
	assert_addresses(ai, 2, both, ips);
	sr_addrinfo_free(ai);
	ai = resolve_ok(c, "v4only.test", NULL, AF_INET);
	assert_addresses(ai, 1, v4, ip4);
	sr_addrinfo_free(ai);
	sr_client_close(c);
}
END_TEST

START_TEST(numeric_addresses)
{
	static const int v4[] = {AF_INET}, v6[] = {AF_INET6};
	static const char *const ip4[] = {"127.0.0.1"}, *const ip6[] = {"::1"};
	static const char *const other[] = {"10.1.2.3"};
	sr_client *c = daemon_client(&test_daemon);
	sr_addrinfo *ai;

	ai = resolve_ok(c, "127.0.0.1", NULL, AF_INET);
	assert_addresses(ai, 1, v4, ip4);
	sr_addrinfo_free(ai);
	ai = resolve_ok(c, "127.0.0.1", NULL, AF_UNSPEC);
	assert_addresses(ai, 1, v4, ip4);
	sr_addrinfo_free(ai);
	ai = resolve_ok(c, "::1", NULL, AF_INET6);
	assert_addresses(ai, 1, v6, ip6);
	sr_addrinfo_free(ai);
	/* Numeric: no query, whatever the address (nothing is sent to it). */
	ai = resolve_ok(c, "10.1.2.3", NULL, AF_INET);
	assert_addresses(ai, 1, v4, other);
	sr_addrinfo_free(ai);
	sr_client_close(c);
}
END_TEST

START_TEST(service_names)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_addrinfo *ai;
	sr_error err;

	ai = resolve_ok(c, "localhost", "https", AF_INET);
	ck_assert_str_eq(ai->ip, "127.0.0.1");
	sr_addrinfo_free(ai);
	ai = resolve_ok(c, "localhost", "8080", AF_INET);
	ck_assert_str_eq(ai->ip, "127.0.0.1");
	sr_addrinfo_free(ai);
	ai = NULL;
	ck_assert_int_eq(sr_get_address_info(c, "localhost", "no-such-service", AF_INET, &ai, &err),
	                 -1);
	assert_err(err, SR_EOS, -1, "cannot resolve localhost");
	ck_assert_ptr_null(ai);
	sr_client_close(c);
}
END_TEST

START_TEST(name_that_does_not_resolve)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_addrinfo *ai = NULL;
	sr_error err;
	long long t0 = now_ms();

	ck_assert_int_eq(sr_get_address_info(c, "nonexistent.test", NULL, AF_INET, &ai, &err), -1);
	assert_err(err, SR_EOS, -1, "cannot resolve nonexistent.test");
	ck_assert_ptr_null(ai);
	ck_assert_msg(now_ms() - t0 < 10000, "took %lld ms", now_ms() - t0);
	/* The session is fine afterwards. */
	ai = resolve_ok(c, "localhost", NULL, AF_INET);
	sr_addrinfo_free(ai);
	sr_client_close(c);
}
END_TEST

/* A name with addresses, none of the family asked: an error, and the daemon serves on
 * (its worker freed the empty list and crashed; seen with localhost and AF_INET6). */
START_TEST(no_address_of_the_family)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_addrinfo *ai = NULL;
	sr_error err;

	ck_assert_int_eq(sr_get_address_info(c, "v4only.test", NULL, AF_INET6, &ai, &err), -1);
	assert_err(err, SR_EOS, -1, "cannot resolve v4only.test");
	ck_assert_ptr_null(ai);
	ai = resolve_ok(c, "localhost", NULL, AF_INET);
	sr_addrinfo_free(ai);
	sr_client_close(c);
}
END_TEST

START_TEST(bad_arguments)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_addrinfo *ai = NULL;
	sr_error err;
	char long_name[300];

	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[254] = '\0'; /* 254 bytes: one over a DNS name */
	ck_assert_int_eq(sr_get_address_info(c, "", NULL, AF_INET, &ai, &err), -1);
	assert_err(err, SR_EINVAL, 0, "address must be 1-253 bytes");
	ck_assert_int_eq(sr_get_address_info(c, long_name, NULL, AF_INET, &ai, &err), -1);
	assert_err(err, SR_EINVAL, 0, "address must be 1-253 bytes");
	ck_assert_int_eq(sr_get_address_info(c, "localhost", NULL, AF_UNIX, &ai, &err), -1);
	assert_err(err, SR_EINVAL, 0, "get_address_info needs AF_INET, AF_INET6 or AF_UNSPEC");
	ck_assert_int_eq(sr_get_address_info(c, "localhost", NULL, 12345, &ai, &err), -1);
	assert_err(err, SR_EUNSUPPORTED, 0, NULL);
	ck_assert_int_eq(sr_get_address_info(c, NULL, NULL, AF_INET, &ai, &err), -1);
	assert_err(err, SR_EINVAL, 0, NULL);
	ck_assert_int_eq(sr_get_address_info(NULL, "localhost", NULL, AF_INET, &ai, &err), -1);
	assert_err(err, SR_EINVAL, 0, NULL);
	ck_assert_ptr_null(ai);
	sr_client_close(c);
}
END_TEST

static void
connect_by_name(sr_client *c, int family, const char *name, int port)
{
	sr_socket *s = new_sock(c, family, SOCK_STREAM);
	sr_sockinfo info;
	sr_error err;
	char *got;
	size_t len;

	ck_assert_msg(sr_connect(s, name, port, 3000, &err) == 0, "connect %s: %d %s", name,
	              err.code, err.message);
	assert_state(s, .host = name, .port = port, .is_client = true, .is_connected = true,
	             .shutdown_reason = -1);
	ck_assert_int_eq(sr_info(s, &info, &err), 0);
	ck_assert_str_eq(info.address, family == AF_INET6 ? "::1" : "127.0.0.1");
	ck_assert_int_eq(sr_send(s, "by name", 7, 0, &err), 7);
	ck_assert_int_eq(sr_read(s, 7, &got, &len, &err), 0);
	ck_assert_uint_eq(len, 7);
	ck_assert_mem_eq(got, "by name", 7);
	free(got);
	sr_socket_free(s);
}

START_TEST(connect_and_send_to_by_name)
{
	struct server srv;
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *u, *peer;
	sr_error err;
	char from[64], *got;
	size_t len;
	int port, pport;

	server_start(&srv, AF_UNSPEC, SERVER_ECHO, 0);
	connect_by_name(c, AF_INET, "echo.test", srv.port);
	connect_by_name(c, AF_INET6, "echo.test", srv.port);
	connect_by_name(c, AF_INET, "localhost", srv.port);
	ck_assert_int_eq(server_wait_finished(&srv, 3, 2000), 3);
	/* send_to resolves too. */
	peer = new_sock(c, AF_INET, SOCK_DGRAM);
	ck_assert_int_eq(sr_bind(peer, 0, "127.0.0.1", &err), 0);
	pport = sr_socket_state(peer)->port;
	u = new_sock(c, AF_INET, SOCK_DGRAM);
	ck_assert_msg(sr_send_to(u, "echo.test", pport, "named", 5, 0, &err) == 5, "send_to: %s",
	              err.message);
	ck_assert_int_eq(sr_receive_from(peer, -1, 0, &got, &len, from, &port, &err), 0);
	ck_assert_uint_eq(len, 5);
	ck_assert_mem_eq(got, "named", 5);
	ck_assert_str_eq(from, "127.0.0.1");
	free(got);
	sr_socket_free(u);
	sr_socket_free(peer);
	sr_client_close(c);
	server_stop(&srv);
}
END_TEST

START_TEST(connect_and_send_to_unresolvable_name)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM), *u = new_sock(c, AF_INET, SOCK_DGRAM);
	sr_error err;
	char want[96];

	ck_assert_int_eq(sr_connect(s, "nonexistent.test", 80, 5000, &err), -1);
	assert_err(err, SR_EOS, -1, "cannot resolve");
	snprintf(want, sizeof(want), "connect to nonexistent.test:80 failed");
	assert_err(err, SR_EOS, -1, want);
	/* Nothing changed: the socket's host is still its own. */
	assert_state(s, .host = "127.0.0.1", .port = 0, .shutdown_reason = -1);
	ck_assert_int_eq(sr_send_to(u, "nonexistent.test", 9, "x", 1, 0, &err), -1);
	assert_err(err, SR_EOS, -1, "cannot resolve");
	/* A name with no address of the socket's family. */
	{
		sr_socket *v6 = new_sock(c, AF_INET6, SOCK_STREAM);

		ck_assert_int_eq(sr_connect(v6, "v4only.test", 80, 5000, &err), -1);
		ck_assert_msg(err.code == SR_EOS, "code %d: %s", err.code, err.message);
		assert_state(v6, .host = "::1", .port = 0, .shutdown_reason = -1);
		sr_socket_free(v6);
	}
	sr_socket_free(u);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

/* The reference: "IPv6 and host names everywhere" - bind takes a name as connect does. */
START_TEST(bind_by_name)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	sr_sockinfo info;
	sr_error err;

	ck_assert_msg(sr_bind(s, 0, "localhost", &err) == 0, "bind localhost: %d %s", err.code,
	              err.message);
	ck_assert_int_eq(sr_info(s, &info, &err), 0);
	ck_assert_str_eq(info.address, "127.0.0.1");
	assert_state(s, .host = "localhost", .port = info.port, .is_bound = true,
	             .shutdown_reason = -1);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

/* --- socket() and the constants --- */

START_TEST(socket_function_is_the_constructor)
{
	static const struct {
		int family, type, protocol;
		int want_type, want_protocol;
		const char *host;
	} ok[] = {
	    {AF_INET, 0, 0, SOCK_STREAM, IPPROTO_TCP, "127.0.0.1"},
	    {AF_INET, SOCK_STREAM, IPPROTO_TCP, SOCK_STREAM, IPPROTO_TCP, "127.0.0.1"},
	    {AF_INET, SOCK_DGRAM, 0, SOCK_DGRAM, IPPROTO_UDP, "127.0.0.1"},
	    {AF_INET6, SOCK_DGRAM, IPPROTO_UDP, SOCK_DGRAM, IPPROTO_UDP, "::1"},
	    {AF_INET6, SOCK_STREAM, 0, SOCK_STREAM, IPPROTO_TCP, "::1"},
	    {AF_UNIX, SOCK_STREAM, 0, SOCK_STREAM, 0, ""},
	    {AF_LOCAL, SOCK_DGRAM, 0, SOCK_DGRAM, 0, ""},
	};
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s;
	sr_error err;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		const sr_state *st;

		s = sr_socket_new(c, ok[i].family, ok[i].type, ok[i].protocol, &err);
		ck_assert_msg(s != NULL, "socket %zu: %d %s", i, err.code, err.message);
		st = sr_socket_state(s);
		ck_assert_int_eq(st->family, ok[i].family);
		ck_assert_int_eq(st->type, ok[i].want_type);
		ck_assert_int_eq(st->protocol, ok[i].want_protocol);
		ck_assert_int_gt(st->id, 0);
		ck_assert(st->is_blocking);
		ck_assert_int_eq(st->send_timeout, -1);
		ck_assert_int_eq(st->receive_timeout, -1);
		assert_state(s, .host = ok[i].host, .port = 0, .shutdown_reason = -1);
		sr_socket_free(s);
	}
	/* A protocol that does not fit the type is the OS's error. */
	ck_assert_ptr_null(sr_socket_new(c, AF_INET, SOCK_STREAM, IPPROTO_UDP, &err));
	assert_err(err, SR_EOS, EPROTONOSUPPORT, "cannot create socket");
	sr_client_close(c);
}
END_TEST

START_TEST(constants_are_the_reference_list)
{
	/* Host values of names every POSIX system has. */
	static const struct {
		const char *name;
		long value;
	} values[] = {
	    {"SOCK_STREAM", SOCK_STREAM},
	    {"SOCK_DGRAM", SOCK_DGRAM},
	    {"SOCK_RAW", SOCK_RAW},
	    {"SOCK_SEQPACKET", SOCK_SEQPACKET},
	    {"SO_DEBUG", SO_DEBUG},
	    {"SO_ACCEPTCONN", SO_ACCEPTCONN},
	    {"SO_REUSEADDR", SO_REUSEADDR},
	    {"SO_KEEPALIVE", SO_KEEPALIVE},
	    {"SO_DONTROUTE", SO_DONTROUTE},
	    {"SO_BROADCAST", SO_BROADCAST},
	    {"SO_LINGER", SO_LINGER},
	    {"SO_OOBINLINE", SO_OOBINLINE},
	    {"SO_SNDBUF", SO_SNDBUF},
	    {"SO_RCVBUF", SO_RCVBUF},
	    {"SO_SNDLOWAT", SO_SNDLOWAT},
	    {"SO_RCVLOWAT", SO_RCVLOWAT},
	    {"SO_SNDTIMEO", SO_SNDTIMEO},
	    {"SO_RCVTIMEO", SO_RCVTIMEO},
	    {"SO_ERROR", SO_ERROR},
	    {"SO_TYPE", SO_TYPE},
	    {"SOL_SOCKET", SOL_SOCKET},
	    {"AF_UNSPEC", AF_UNSPEC},
	    {"AF_UNIX", AF_UNIX},
	    {"AF_INET", AF_INET},
	    {"AF_INET6", AF_INET6},
	    {"IPPROTO_IP", IPPROTO_IP},
	    {"IPPROTO_ICMP", IPPROTO_ICMP},
	    {"IPPROTO_TCP", IPPROTO_TCP},
	    {"IPPROTO_UDP", IPPROTO_UDP},
	    {"IPPROTO_IPV6", IPPROTO_IPV6},
	    {"IPPROTO_RAW", IPPROTO_RAW},
	    {"SHUT_RD", SHUT_RD},
	    {"SHUT_WR", SHUT_WR},
	    {"SHUT_RDWR", SHUT_RDWR},
	    {"SOMAXCONN", SOMAXCONN},
#ifdef __linux__
	    {"AF_LOCAL", AF_LOCAL},
	    {"SO_REUSEPORT", SO_REUSEPORT},
	    {"AF_APPLETALK", AF_APPLETALK},
	    {"AF_DECnet", AF_DECnet},
	    {"AF_SNA", AF_SNA},
#endif
	};
#ifdef __linux__
	/* Names of BSD heritage Linux does not have: flagged, never invented. */
	static const char *const absent[] = {
	    "SO_USELOOPBACK", "AF_IMPLINK", "AF_PUP",   "AF_CHAOS", "AF_NS",  "AF_ISO",    "AF_OSI",
	    "AF_ECMA",        "AF_DATAKIT", "AF_CCITT", "AF_DLI",   "AF_LAT", "AF_HYLINK",
	};
#endif
	size_t count = 0;
	const sr_constant *k = sr_constants(&count);

	ck_assert_ptr_nonnull(k);
	ck_assert_uint_eq(count, N_REFERENCE);
	for (size_t i = 0; i < N_REFERENCE; i++) {
		int seen = 0;

		for (size_t j = 0; j < count; j++)
			seen += strcmp(k[j].name, reference_names[i]) == 0;
		ck_assert_msg(seen == 1, "%s appears %d times", reference_names[i], seen);
	}
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		for (size_t j = 0; j < count; j++) {
			if (strcmp(k[j].name, values[i].name) != 0)
				continue;
			ck_assert_msg(k[j].present, "%s absent", values[i].name);
			ck_assert_msg(k[j].value == values[i].value, "%s = %ld, host %ld",
			              values[i].name, k[j].value, values[i].value);
		}
	}
#ifdef __linux__
	for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
		for (size_t j = 0; j < count; j++)
			if (strcmp(k[j].name, absent[i]) == 0)
				ck_assert_msg(!k[j].present && k[j].value == 0,
				              "%s: present %d, %ld", absent[i], k[j].present,
				              k[j].value);
#endif
	ck_assert_str_eq(SR_IP_ANY, "0.0.0.0");
	ck_assert_str_eq(SR_IP_LOCAL, "127.0.0.1");
}
END_TEST

/* The constants mean the same to the daemon: a socket made from them reports them. */
START_TEST(constants_agree_with_the_daemon)
{
	static const char *const families[] = {"AF_INET", "AF_INET6", "AF_UNIX", "AF_LOCAL"};
	static const char *const types[] = {"SOCK_STREAM", "SOCK_DGRAM"};
	sr_client *c = daemon_client(&test_daemon);
	size_t count;
	const sr_constant *k = sr_constants(&count);
	long fam[4] = {0}, typ[2] = {0};

	for (size_t j = 0; j < count; j++) {
		for (size_t i = 0; i < 4; i++)
			if (strcmp(k[j].name, families[i]) == 0)
				fam[i] = k[j].value;
		for (size_t i = 0; i < 2; i++)
			if (strcmp(k[j].name, types[i]) == 0)
				typ[i] = k[j].value;
	}
	for (size_t f = 0; f < 4; f++) {
		for (size_t t = 0; t < 2; t++) {
			sr_error err;
			sr_socket *s = sr_socket_new(c, (int)fam[f], (int)typ[t], 0, &err);
			long v = -1;

			ck_assert_msg(s != NULL, "%s/%s: %s", families[f], types[t], err.message);
			ck_assert_int_eq(sr_socket_state(s)->family, fam[f]);
			ck_assert_int_eq(sr_socket_state(s)->type, typ[t]);
			ck_assert_int_eq(sr_get_option(s, SO_TYPE, &v, &err), 0);
			ck_assert_int_eq(v, typ[t]);
			sr_socket_free(s);
		}
	}
	sr_client_close(c);
}
END_TEST

Suite *
resolve_suite(void)
{
	Suite *s = suite_create("resolve");
	TCase *r = tcase_create("get_address_info");
	TCase *m = tcase_create("module");

	tcase_add_checked_fixture(r, resolver_daemon_up, resolver_daemon_down);
	tcase_set_timeout(r, 30);
	tcase_add_test(r, localhost_by_family);
	tcase_add_test(r, numeric_addresses);
	tcase_add_test(r, no_address_of_the_family);
	tcase_add_test(r, service_names);
	tcase_add_test(r, name_that_does_not_resolve);
	tcase_add_test(r, bad_arguments);
	tcase_add_test(r, connect_and_send_to_by_name);
	tcase_add_test(r, connect_and_send_to_unresolvable_name);
	tcase_add_test(r, bind_by_name);
	suite_add_tcase(s, r);

	tcase_add_checked_fixture(m, resolver_daemon_up, resolver_daemon_down);
	tcase_set_timeout(m, 30);
	tcase_add_test(m, socket_function_is_the_constructor);
	tcase_add_test(m, constants_are_the_reference_list);
	tcase_add_test(m, constants_agree_with_the_daemon);
	suite_add_tcase(s, m);
	return s;
}
