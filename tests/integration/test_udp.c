/*
 * test_udp.c - datagram sockets through the broker, over IPv4 and IPv6: bind,
 * connect (a default peer), send and receive whole datagrams with their
 * boundaries, send_to and receive_from on unconnected sockets (binary-safe,
 * with the sender's address), and what a stream socket refuses.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pthread.h>

#include "harness.h"
#include "rawcall.h"
#include "sockets.h"

static const char *
loopback(int family)
{
	return family == AF_INET6 ? "::1" : "127.0.0.1";
}

static int
local_port(sr_socket *s)
{
	sr_sockinfo info;
	sr_error err;

	ck_assert_msg(sr_info(s, &info, &err) == 0, "info: %s", err.message);
	return info.port;
}

static void
send_ok(sr_socket *s, const void *data, size_t len)
{
	sr_error err;

	ck_assert_msg(sr_send(s, data, len, 0, &err) == (long)len, "send %zu: %d %s", len, err.code,
	              err.message);
}

/* Receives one datagram (receive(-1)); asserts its exact bytes. */
static void
expect_datagram(sr_socket *s, long length, int flags, const void *want, size_t want_len)
{
	sr_error err;
	char *got;
	size_t len;

	ck_assert_msg(sr_receive(s, length, flags, &got, &len, &err) == 0, "receive: %d %s",
	              err.code, err.message);
	ck_assert_msg(len == want_len, "datagram of %zu bytes, want %zu", len, want_len);
	ck_assert(memcmp(got, want, want_len) == 0);
	free(got);
}

static char *
pattern(size_t n, char seed)
{
	char *p = malloc(n + 1);

	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (char)(seed + i % 31);
	p[n] = '\0';
	return p;
}

static void
bound_and_connected(int family)
{
	const char *loop = loopback(family);
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *a = new_sock(c, family, SOCK_DGRAM), *b = new_sock(c, family, SOCK_DGRAM);
	const size_t sizes[3] = {1, 300, 4000};
	char *d[3], *big;
	int pa, pb;

	ck_assert_int_eq(sr_socket_state(a)->type, SOCK_DGRAM);
	ck_assert_int_eq(sr_socket_state(a)->protocol, IPPROTO_UDP);
	ck_assert_int_eq(sr_socket_state(a)->family, family);
	assert_state(a, .host = loop, .port = 0, .shutdown_reason = -1);
	bind_ok(a, 0, NULL);
	pa = sr_socket_state(a)->port;
	ck_assert_int_gt(pa, 0);
	ck_assert_int_eq(local_port(a), pa);
	assert_state(a, .host = loop, .port = pa, .is_bound = true, .shutdown_reason = -1);
	bind_ok(b, 0, loop);
	pb = sr_socket_state(b)->port;
	ck_assert_int_eq(local_port(b), pb);
	{
		sr_error err;

		ck_assert_msg(sr_connect(b, loop, pa, 2000, &err) == 0, "connect: %s", err.message);
	}
	/* connect gives a default peer: connected, no longer "bound" (Blade's flags). */
	assert_state(b, .host = loop, .port = pa, .is_client = true, .is_connected = true,
	             .shutdown_reason = -1);
	ck_assert_int_eq(local_port(b), pb);

	/* Three datagrams of different sizes arrive as three, each whole. */
	for (int i = 0; i < 3; i++) {
		d[i] = pattern(sizes[i], (char)('A' + i));
		send_ok(b, d[i], sizes[i]);
	}
	for (int i = 0; i < 3; i++) {
		expect_datagram(a, -1, 0, d[i], sizes[i]);
		free(d[i]);
	}
	/* A short receive takes the head of one datagram; the rest of it is gone. */
	big = pattern(100, 'a');
	send_ok(b, big, 100);
	send_ok(b, "next", 4);
	expect_datagram(a, 10, 0, big, 10);
	expect_datagram(a, -1, 0, "next", 4);
	free(big);
	/* MSG_PEEK leaves the datagram queued. */
	send_ok(b, "peek", 4);
	expect_datagram(a, -1, MSG_PEEK, "peek", 4);
	expect_from(a, -1, "peek", 4, loop, pb);
	/* A large datagram is one receive too. */
	big = pattern(60000, '0');
	send_ok(b, big, 60000);
	expect_datagram(a, -1, 0, big, 60000);
	free(big);
	/* The bound side connects back: it was bound, now it is connected. */
	{
		sr_error err;

		ck_assert_int_eq(sr_connect(a, loop, pb, 2000, &err), 0);
	}
	assert_state(a, .host = loop, .port = pb, .is_client = true, .is_connected = true,
	             .shutdown_reason = -1);
	send_ok(a, "back", 4);
	expect_datagram(b, -1, 0, "back", 4);
	/* An empty datagram is a datagram. */
	send_ok(a, "", 0);
	expect_datagram(b, -1, 0, "", 0);
	sr_socket_free(b);
	sr_socket_free(a);
	sr_client_close(c);
}

START_TEST(ipv4_bound_and_connected)
{
	bound_and_connected(AF_INET);
}
END_TEST

START_TEST(ipv6_bound_and_connected)
{
	bound_and_connected(AF_INET6);
}
END_TEST

static void
send_to_receive_from(int family)
{
	static const char payload[] = {'a', '\0', 'b', '\0', '\0', 'c', '\xff'};
	const char *loop = loopback(family);
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *u1 = new_sock(c, family, SOCK_DGRAM), *u2 = new_sock(c, family, SOCK_DGRAM);
	sr_error err;
	int p1, p2;

	bind_ok(u2, 0, loop);
	p2 = sr_socket_state(u2)->port;
	/* Unbound and unconnected: send_to picks the destination per datagram. */
	ck_assert_int_eq(sr_send_to(u1, loop, p2, payload, sizeof(payload), 0, &err),
	                 (long)sizeof(payload));
	assert_state(u1, .host = loop, .port = 0, .shutdown_reason = -1);
	p1 = local_port(u1); /* the kernel bound it on the first send */
	ck_assert_int_gt(p1, 0);
	expect_from(u2, -1, payload, sizeof(payload), loop, p1);
	assert_state(u2, .host = loop, .port = p2, .is_bound = true, .shutdown_reason = -1);

	/* And back, to the address receive_from reported. */
	ck_assert_int_eq(sr_send_to(u2, loop, p1, "\0reply\0", 7, 0, &err), 7);
	expect_from(u1, -1, "\0reply\0", 7, loop, p2);
	/* A length shorter than the datagram cuts it. */
	ck_assert_int_eq(sr_send_to(u1, loop, p2, payload, sizeof(payload), 0, &err),
	                 (long)sizeof(payload));
	expect_from(u2, 3, payload, 3, loop, p1);
	/* Empty datagrams carry their sender too. */
	ck_assert_int_eq(sr_send_to(u1, loop, p2, "", 0, 0, &err), 0);
	expect_from(u2, -1, "", 0, loop, p1);
	/* A connected datagram socket may still send_to elsewhere and receive_from. */
	ck_assert_int_eq(sr_connect(u1, loop, p2, 2000, &err), 0);
	ck_assert_int_eq(sr_send_to(u2, loop, p1, "x", 1, 0, &err), 1);
	expect_from(u1, -1, "x", 1, loop, p2);
	sr_socket_free(u2);
	sr_socket_free(u1);
	sr_client_close(c);
}

START_TEST(ipv4_send_to_receive_from)
{
	send_to_receive_from(AF_INET);
}
END_TEST

START_TEST(ipv6_send_to_receive_from)
{
	send_to_receive_from(AF_INET6);
}
END_TEST

START_TEST(bound_to_any_address)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *srv = new_sock(c, AF_INET, SOCK_DGRAM), *cl = new_sock(c, AF_INET, SOCK_DGRAM);
	sr_sockinfo info;
	sr_error err;
	int port;

	bind_ok(srv, 0, "*");
	port = sr_socket_state(srv)->port;
	assert_state(srv, .host = "0.0.0.0", .port = port, .is_bound = true, .shutdown_reason = -1);
	ck_assert_int_eq(sr_info(srv, &info, &err), 0);
	ck_assert_str_eq(info.address, "0.0.0.0");
	ck_assert_int_eq(sr_send_to(cl, "127.0.0.1", port, "any", 3, 0, &err), 3);
	expect_from(srv, -1, "any", 3, "127.0.0.1", local_port(cl));
	sr_socket_free(cl);
	sr_socket_free(srv);
	sr_client_close(c);
}
END_TEST

START_TEST(stream_socket_refuses_datagram_calls)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *t = new_sock(c, AF_INET, SOCK_STREAM);
	sr_error err;
	char host[64], *got;
	size_t len;
	int port;

	ck_assert_int_eq(sr_send_to(t, "127.0.0.1", 9, "x", 1, 0, &err), -1);
	assert_err(err, SR_EINVAL, 0, "send_to needs a datagram socket");
	ck_assert_int_eq(sr_receive_from(t, -1, 0, &got, &len, host, &port, &err), -1);
	assert_err(err, SR_EINVAL, 0, "receive_from needs a datagram socket");
	assert_state(t, .host = "127.0.0.1", .port = 0, .shutdown_reason = -1);
	sr_socket_free(t);
	sr_client_close(c);
}
END_TEST

START_TEST(datagram_errors)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *u = new_sock(c, AF_INET, SOCK_DGRAM), *v = new_sock(c, AF_INET, SOCK_DGRAM);
	sr_error err;
	char *got, *big;
	size_t len;
	long long t0, took;

	/* send needs a default peer; receive needs at least a local address. */
	ck_assert_int_eq(sr_send(u, "x", 1, 0, &err), -1);
	assert_err(err, SR_ESTATE, 0, "socket not listening or connected");
	ck_assert_int_eq(sr_receive(u, -1, 0, &got, &len, &err), -1);
	assert_err(err, SR_ESTATE, 0, "socket not listening or connected");
	bind_ok(u, 0, NULL);
	ck_assert_int_eq(sr_send(u, "x", 1, 0, &err), -1);
	assert_err(err, SR_ESTATE, 0, "socket not listening or connected");
	/* Bad destinations. */
	/* (Names, resolved by the daemon, are tested in test_resolve.c, whose daemon
	 * sends no query off the machine.) */
	ck_assert_int_eq(sr_send_to(u, "127.0.0.1", -1, "x", 1, 0, &err), -1);
	assert_err(err, SR_EINVAL, 0, "port not specified");
	ck_assert_int_eq(sr_send_to(u, "127.0.0.1", 65536, "x", 1, 0, &err), -1);
	assert_err(err, SR_EINVAL, 0, "out of range");
	/* Larger than any UDP datagram: the OS says so. */
	big = calloc(1, 70000);
	ck_assert_int_eq(sr_send_to(u, "127.0.0.1", 9, big, 70000, 0, &err), -1);
	assert_err(err, SR_EOS, EMSGSIZE, "Message too long");
	free(big);
	/* The receive timeout governs receive and receive_from. */
	ck_assert_int_eq(sr_set_option(u, SO_RCVTIMEO, 150, &err), 0);
	t0 = now_ms();
	ck_assert_int_eq(sr_receive(u, -1, 0, &got, &len, &err), -1);
	took = now_ms() - t0;
	assert_err(err, SR_ETIMEDOUT, ETIMEDOUT, "receive timed out after 150 ms");
	ck_assert_msg(took >= 130 && took < 2000, "took %lld ms", took);
	ck_assert_int_eq(sr_receive_from(u, -1, 0, &got, &len, NULL, NULL, &err), -1);
	assert_err(err, SR_ETIMEDOUT, ETIMEDOUT, "timed out");
	assert_state(u, .port = -1, .is_bound = true, .shutdown_reason = -1);
	ck_assert_int_eq(sr_socket_state(u)->receive_timeout, 150);
	/* A closed socket refuses both. */
	ck_assert_int_eq(sr_close(v, &err), 0);
	ck_assert_int_eq(sr_send_to(v, "127.0.0.1", 9, "x", 1, 0, &err), -1);
	assert_err(err, SR_ECLOSED, -1, NULL);
	ck_assert_int_eq(sr_receive_from(v, -1, 0, &got, &len, NULL, NULL, &err), -1);
	assert_err(err, SR_ECLOSED, -1, NULL);
	sr_socket_free(v);
	sr_socket_free(u);
	sr_client_close(c);
}
END_TEST

/* A connected datagram socket learns of an unreachable peer (ICMP) on its next receive. */
struct waiting_receive {
	sr_socket *s;
	int rc;
	size_t len;
	sr_error err;
};

static void *
receive_in_thread(void *arg)
{
	struct waiting_receive *w = arg;
	char *data = NULL;

	w->rc = sr_receive(w->s, 100, 0, &data, &w->len, &w->err);
	free(data);
	return NULL;
}

/*
 * Linux shuts an unconnected datagram socket down although it answers ENOTCONN, and the
 * socket then polls readable with nothing to read. The receive waiting on it must end
 * (end of stream) rather than spin the daemon. Found by the fuzzer.
 */
START_TEST(shutdown_of_unconnected_datagram_socket_ends_waiting_receive)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_DGRAM);
	struct waiting_receive w = {.s = s, .rc = 99};
	pthread_t t;
	sr_error err;
	long before;

	bind_ok(s, 0, "127.0.0.1");
	ck_assert_int_eq(pthread_create(&t, NULL, receive_in_thread, &w), 0);
	sleep_ms(200);
	ck_assert_int_eq(sr_shutdown(s, SHUT_RD, &err), -1);
	assert_err(err, SR_EOS, ENOTCONN, "shutdown failed");
	ck_assert(sr_socket_state(s)->is_shutdown);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_msg(w.rc == 0 && w.len == 0, "receive: %d (%s), %zu bytes", w.rc, w.err.message,
	              w.len);
	/* The daemon is idle again: well under half a second of CPU in a second. */
	before = process_cpu_ticks(daemon_worker_pid(&test_daemon));
	sleep_ms(1000);
	ck_assert_int_lt(process_cpu_ticks(daemon_worker_pid(&test_daemon)) - before, 50);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

START_TEST(connected_to_closed_port_refused)
{
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *u = new_sock(c, AF_INET, SOCK_DGRAM);
	sr_error err;
	char *got;
	size_t len;
	int fd, port;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	ck_assert_int_eq(sr_connect(u, "127.0.0.1", port, 2000, &err), 0);
	ck_assert_int_eq(sr_set_option(u, SO_RCVTIMEO, 2000, &err), 0);
	send_ok(u, "anyone?", 7);
	ck_assert_int_eq(sr_receive(u, -1, 0, &got, &len, &err), -1);
	assert_err(err, SR_EOS, ECONNREFUSED, "Connection refused");
	/* Still usable. */
	assert_state(u, .host = "127.0.0.1", .port = port, .is_client = true, .is_connected = true,
	             .shutdown_reason = -1);
	sr_socket_free(u);
	sr_client_close(c);
}
END_TEST

Suite *
udp_suite(void)
{
	Suite *s = suite_create("udp");
	TCase *tc = tcase_create("udp");

	tcase_add_checked_fixture(tc, fixture_daemon_up, fixture_daemon_down);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, ipv4_bound_and_connected);
	tcase_add_test(tc, ipv6_bound_and_connected);
	tcase_add_test(tc, ipv4_send_to_receive_from);
	tcase_add_test(tc, ipv6_send_to_receive_from);
	tcase_add_test(tc, bound_to_any_address);
	tcase_add_test(tc, stream_socket_refuses_datagram_calls);
	tcase_add_test(tc, datagram_errors);
	tcase_add_test(tc, connected_to_closed_port_refused);
	tcase_add_test(tc, shutdown_of_unconnected_datagram_socket_ends_waiting_receive);
	suite_add_tcase(s, tc);
	return s;
}
