/*
 * test_tcp_client.c - what a TCP client does through the broker: create,
 * connect (IPv4, IPv6, by name), send, receive, read, send a file, shut down,
 * close, info, options; the cached properties checked after every transition.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "sockets.h"

#define BIG (3u * 1024 * 1024 + 12345) /* over max_payload: several calls */

START_TEST(new_socket_has_reference_defaults)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	sr_socket *t = new_sock(c, AF_INET, SOCK_STREAM);
	const sr_state *st = sr_socket_state(s);

	assert_state(s, .host = "127.0.0.1", .port = 0, .shutdown_reason = -1);
	ck_assert_int_eq(st->family, AF_INET);
	ck_assert_int_eq(st->type, SOCK_STREAM);
	ck_assert_int_eq(st->protocol, IPPROTO_TCP);
	ck_assert(st->is_blocking);
	ck_assert_int_eq(st->send_timeout, -1);
	ck_assert_int_eq(st->receive_timeout, -1);
	ck_assert_int_gt(st->id, 0);
	/* Handle ids are never reused within a session. */
	ck_assert_int_gt(sr_socket_state(t)->id, st->id);
	ck_assert_uint_gt(sr_client_session_id(c), 0);
	sr_socket_free(t);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

START_TEST(type_and_protocol_zero_mean_defaults)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_error err;
	sr_socket *s = sr_socket_new(c, AF_INET, 0, 0, &err);
	sr_socket *u = sr_socket_new(c, AF_INET, SOCK_DGRAM, 0, &err);

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(sr_socket_state(s)->type, SOCK_STREAM);
	ck_assert_int_eq(sr_socket_state(s)->protocol, IPPROTO_TCP);
	ck_assert_msg(u != NULL, "udp socket: %s", err.message);
	ck_assert_int_eq(sr_socket_state(u)->type, SOCK_DGRAM);
	ck_assert_int_eq(sr_socket_state(u)->protocol, IPPROTO_UDP);
	sr_socket_free(u);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

static void
echo_round_trip(int family, const char *host)
{
	struct server srv;
	sr_client *c;
	sr_socket *s;
	sr_sockinfo info;
	sr_error err;
	char *got;
	size_t len;

	server_start(&srv, family, SERVER_ECHO, 0);
	c = daemon_client(&test_daemon);
	s = new_sock(c, family == AF_INET6 ? AF_INET6 : AF_INET, SOCK_STREAM);
	connect_ok(s, host, srv.port);
	assert_state(s, .host = host, .port = srv.port, .is_client = true, .is_connected = true,
	             .shutdown_reason = -1);
	for (int i = 0; i < 200 && atomic_load(&srv.accepted) < 1; i++)
		usleep(10 * 1000);
	ck_assert_int_eq(atomic_load(&srv.accepted), 1);

	ck_assert_int_eq(sr_send(s, "hello, broker", 13, 0, &err), 13);
	got = receive_exact(s, 13);
	ck_assert_str_eq(got, "hello, broker");
	free(got);

	ck_assert_int_eq(sr_send(s, "0123456789", 10, 0, &err), 10);
	ck_assert_msg(sr_read(s, 10, &got, &len, &err) == 0, "read: %s", err.message);
	ck_assert_uint_eq(len, 10);
	ck_assert_mem_eq(got, "0123456789", 10);
	free(got);

	ck_assert_msg(sr_info(s, &info, &err) == 0, "info: %s", err.message);
	ck_assert_int_eq(info.family, family);
	ck_assert_int_eq(info.ipv6, family == AF_INET6);
	ck_assert_str_eq(info.address, family == AF_INET6 ? "::1" : "127.0.0.1");
	ck_assert_int_gt(info.port, 0);
	ck_assert_int_ne(info.port, srv.port);

	ck_assert_int_eq(sr_close(s, &err), 0);
	assert_state(s, .port = -1, .is_closed = true, .shutdown_reason = -1);
	ck_assert_int_eq(server_wait_finished(&srv, 1, 2000), 1);
	sr_socket_free(s);
	sr_client_close(c);
	server_stop(&srv);
}

START_TEST(connect_ipv4_send_receive_read)
{
	echo_round_trip(AF_INET, "127.0.0.1");
}
END_TEST

START_TEST(connect_ipv6_send_receive_read)
{
	echo_round_trip(AF_INET6, "::1");
}
END_TEST

START_TEST(connect_by_name)
{
	struct server srv;
	sr_client *c;
	sr_socket *s;
	char *got;

	server_start(&srv, AF_UNSPEC, SERVER_ECHO, 0);
	c = daemon_client(&test_daemon);
	s = new_sock(c, AF_INET, SOCK_STREAM);
	connect_ok(s, "localhost", srv.port);
	ck_assert(sr_socket_state(s)->is_connected);
	ck_assert_int_eq(sr_socket_state(s)->port, srv.port);
	ck_assert_int_eq(sr_send(s, "name", 4, 0, NULL), 4);
	got = receive_exact(s, 4);
	ck_assert_str_eq(got, "name");
	free(got);
	sr_socket_free(s);
	sr_client_close(c);
	server_stop(&srv);
}
END_TEST

/* connect with no host uses the socket's host, IP_LOCAL by default. */
START_TEST(connect_default_host)
{
	struct server srv;
	sr_client *c;
	sr_socket *s;

	server_start(&srv, AF_INET, SERVER_ECHO, 0);
	c = daemon_client(&test_daemon);
	s = new_sock(c, AF_INET, SOCK_STREAM);
	connect_ok(s, NULL, srv.port);
	assert_state(s, .host = "127.0.0.1", .port = srv.port, .is_client = true,
	             .is_connected = true, .shutdown_reason = -1);
	sr_socket_free(s);
	sr_client_close(c);
	server_stop(&srv);
}
END_TEST

START_TEST(large_send_is_chunked_and_complete)
{
	struct server srv;
	sr_client *c;
	sr_socket *s;
	sr_error err;
	char *buf;

	server_start(&srv, AF_INET, SERVER_SINK, 0);
	c = daemon_client(&test_daemon);
	s = new_sock(c, AF_INET, SOCK_STREAM);
	connect_ok(s, "127.0.0.1", srv.port);
	buf = malloc(BIG);
	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < BIG; i++)
		buf[i] = pattern_byte(i);
	ck_assert_int_eq(sr_send(s, buf, BIG, 0, &err), (long)BIG);
	ck_assert_uint_eq(server_wait_received(&srv, BIG, 5000), BIG);
	free(buf);
	sr_socket_free(s);
	sr_client_close(c);
	server_stop(&srv);
}
END_TEST

START_TEST(read_longer_than_payload_stops_at_end_of_stream)
{
	struct server srv;
	sr_client *c;
	sr_socket *s;
	sr_error err;
	char *got;
	size_t len;

	server_start(&srv, AF_INET, SERVER_SOURCE, BIG);
	c = daemon_client(&test_daemon);
	s = new_sock(c, AF_INET, SOCK_STREAM);
	connect_ok(s, "127.0.0.1", srv.port);
	ck_assert_msg(sr_read(s, BIG + 1000, &got, &len, &err) == 0, "read: %s", err.message);
	ck_assert_uint_eq(len, BIG);
	for (size_t i = 0; i < len; i++)
		if (got[i] != pattern_byte(i))
			ck_abort_msg("byte %zu differs", i);
	free(got);
	/* The stream has ended: receive says so with an empty, non-NULL buffer. */
	ck_assert_int_eq(sr_receive(s, -1, 0, &got, &len, &err), 0);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(len, 0);
	free(got);
	/* read at end of stream returns what it has: nothing, and no error. */
	ck_assert_int_eq(sr_read(s, 10, &got, &len, &err), 0);
	ck_assert_uint_eq(len, 0);
	free(got);
	sr_socket_free(s);
	sr_client_close(c);
	server_stop(&srv);
}
END_TEST

START_TEST(receive_everything_then_end_of_stream)
{
	struct server srv;
	sr_client *c;
	sr_socket *s;
	sr_error err;
	char *got;
	size_t len, total = 0;
	int calls = 0;

	server_start(&srv, AF_INET, SERVER_SOURCE, 100000);
	c = daemon_client(&test_daemon);
	s = new_sock(c, AF_INET, SOCK_STREAM);
	connect_ok(s, "127.0.0.1", srv.port);
	for (;;) {
		ck_assert_msg(sr_receive(s, -1, 0, &got, &len, &err) == 0, "receive: %s",
		              err.message);
		ck_assert_ptr_nonnull(got);
		for (size_t i = 0; i < len; i++)
			ck_assert_int_eq(got[i], pattern_byte(total + i));
		free(got);
		total += len;
		if (len == 0)
			break;
		ck_assert_int_lt(++calls, 10000);
	}
	ck_assert_uint_eq(total, 100000);
	sr_socket_free(s);
	sr_client_close(c);
	server_stop(&srv);
}
END_TEST

START_TEST(receive_caps_length_and_peeks)
{
	struct server srv;
	sr_client *c;
	sr_socket *s;
	char *got;
	size_t len;

	server_start(&srv, AF_INET, SERVER_ECHO, 0);
	c = daemon_client(&test_daemon);
	s = new_sock(c, AF_INET, SOCK_STREAM);
	connect_ok(s, "127.0.0.1", srv.port);
	ck_assert_int_eq(sr_send(s, "abcdef", 6, 0, NULL), 6);
	ck_assert_uint_eq(server_wait_received(&srv, 6, 2000), 6);
	got = receive_exact(s, 2); /* length n: at most n bytes */
	ck_assert_str_eq(got, "ab");
	free(got);
	/* MSG_PEEK leaves the data in place. */
	ck_assert_int_eq(sr_receive(s, 1, MSG_PEEK, &got, &len, NULL), 0);
	ck_assert_uint_eq(len, 1);
	ck_assert_int_eq(got[0], 'c');
	free(got);
	got = receive_exact(s, 4);
	ck_assert_str_eq(got, "cdef");
	free(got);
	/* receive(0) is empty (and not end of stream). */
	ck_assert_int_eq(sr_receive(s, 0, 0, &got, &len, NULL), 0);
	ck_assert_uint_eq(len, 0);
	free(got);
	sr_socket_free(s);
	sr_client_close(c);
	server_stop(&srv);
}
END_TEST

START_TEST(send_file_streams_content)
{
	char path[] = "/tmp/sockrpc-file.XXXXXX";
	struct server srv;
	sr_client *c;
	sr_socket *s;
	sr_error err;
	char *buf;
	int fd;

	fd = mkstemp(path);
	ck_assert_int_ne(fd, -1);
	unlink(path);
	buf = malloc(BIG);
	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < BIG; i++)
		buf[i] = pattern_byte(i);
	ck_assert_int_eq(write(fd, buf, BIG), (ssize_t)BIG);
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	free(buf);

	server_start(&srv, AF_INET, SERVER_SINK, 0);
	c = daemon_client(&test_daemon);
	s = new_sock(c, AF_INET, SOCK_STREAM);
	connect_ok(s, "127.0.0.1", srv.port);
	ck_assert_msg(sr_send_file(s, fd, &err) == (long)BIG, "send_file: %s", err.message);
	ck_assert_uint_eq(server_wait_received(&srv, BIG, 5000), BIG);
	/* At the end of the file there is nothing more to send. */
	ck_assert_int_eq(sr_send_file(s, fd, &err), 0);
	close(fd);
	/* A bad fd is the caller's OS error, reported as such. */
	ck_assert_int_eq(sr_send_file(s, -1, &err), -1);
	ck_assert_int_eq(err.code, SR_EOS);
	ck_assert_int_eq(err.sys_errno, EBADF);
	sr_socket_free(s);
	sr_client_close(c);
	server_stop(&srv);
}
END_TEST

START_TEST(shutdown_transitions)
{
	struct server srv;
	sr_client *c;
	sr_socket *s;
	sr_error err;
	size_t len;
	char *got;

	server_start(&srv, AF_INET, SERVER_ECHO, 0);
	c = daemon_client(&test_daemon);
	s = new_sock(c, AF_INET, SOCK_STREAM);
	connect_ok(s, "127.0.0.1", srv.port);
	ck_assert_msg(sr_shutdown(s, SHUT_RD, &err) == 0, "shutdown: %s", err.message);
	assert_state(s, .host = "127.0.0.1", .port = srv.port, .is_shutdown = true,
	             .shutdown_reason = SHUT_RD);
	/* The same how again is a no-op that succeeds. */
	ck_assert_int_eq(sr_shutdown(s, SHUT_RD, &err), 0);
	assert_state(s, .port = -1, .is_shutdown = true, .shutdown_reason = SHUT_RD);
	/* Shut for reading: receiving is refused, sending still works. */
	ck_assert_int_eq(sr_receive(s, 10, 0, &got, &len, &err), -1);
	assert_err(err, SR_ESTATE, -1, "socket is shut down for reading");
	ck_assert_int_eq(sr_send(s, "ping", 4, 0, &err), 4);
	/* Shutting down writing too: the peer sees end of stream. */
	ck_assert_msg(sr_shutdown(s, SHUT_RDWR, &err) == 0, "shutdown: %s", err.message);
	assert_state(s, .port = -1, .is_shutdown = true, .shutdown_reason = SHUT_RDWR);
	ck_assert_int_eq(sr_send(s, "ping", 4, 0, &err), -1);
	assert_err(err, SR_ESTATE, -1, "socket is shut down for writing");
	ck_assert_int_eq(server_wait_finished(&srv, 1, 2000), 1);
	/* Anything but SHUT_* is refused before it leaves the process. */
	ck_assert_int_eq(sr_shutdown(s, 42, &err), -1);
	ck_assert_int_eq(err.code, SR_EINVAL);
	ck_assert_str_eq(err.message, "expected one of SHUT_* flags");
	ck_assert_int_eq(sr_close(s, &err), 0);
	assert_state(s, .port = -1, .is_closed = true, .is_shutdown = true,
	             .shutdown_reason = SHUT_RDWR);
	sr_socket_free(s);
	sr_client_close(c);
	server_stop(&srv);
}
END_TEST

START_TEST(close_is_idempotent_and_final)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	sr_error err;
	char *got;
	size_t len;
	long v;

	ck_assert_int_eq(sr_close(s, &err), 0);
	assert_state(s, .port = 0, .is_closed = true, .shutdown_reason = -1);
	ck_assert_int_eq(sr_close(s, &err), 0);
	ck_assert_int_eq(sr_send(s, "x", 1, 0, &err), -1);
	ck_assert_int_eq(err.code, SR_ECLOSED);
	ck_assert_str_eq(err.message, "socket is closed");
	ck_assert_int_eq(sr_receive(s, -1, 0, &got, &len, &err), -1);
	ck_assert_int_eq(err.code, SR_ECLOSED);
	ck_assert_int_eq(sr_connect(s, "127.0.0.1", 80, 100, &err), -1);
	ck_assert_int_eq(err.code, SR_ECLOSED);
	ck_assert_int_eq(sr_get_option(s, SO_KEEPALIVE, &v, &err), -1);
	ck_assert_int_eq(err.code, SR_ECLOSED);
	ck_assert_int_eq(sr_shutdown(s, SHUT_RD, &err), -1);
	ck_assert_int_eq(err.code, SR_ECLOSED);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

START_TEST(options_round_trip_and_update_state)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	sr_error err;
	long v = -5;

	ck_assert_msg(sr_set_option(s, SO_RCVTIMEO, 1500, &err) == 0, "%s", err.message);
	ck_assert_int_eq(sr_socket_state(s)->receive_timeout, 1500);
	ck_assert_msg(sr_set_option(s, SO_SNDTIMEO, 2500, &err) == 0, "%s", err.message);
	ck_assert_int_eq(sr_socket_state(s)->send_timeout, 2500);
	ck_assert_int_eq(sr_get_option(s, SO_RCVTIMEO, &v, &err), 0);
	ck_assert_int_eq(v, 1500);
	ck_assert_int_eq(sr_get_option(s, SO_SNDTIMEO, &v, &err), 0);
	ck_assert_int_eq(v, 2500);
	ck_assert_int_eq(sr_set_option(s, SO_KEEPALIVE, 1, &err), 0);
	ck_assert_int_eq(sr_get_option(s, SO_KEEPALIVE, &v, &err), 0);
	ck_assert_int_ne(v, 0);
	ck_assert_int_eq(sr_set_option(s, SO_KEEPALIVE, 0, &err), 0);
	ck_assert_int_eq(sr_get_option(s, SO_KEEPALIVE, &v, &err), 0);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(sr_get_option(s, SO_TYPE, &v, &err), 0);
	ck_assert_int_eq(v, SOCK_STREAM);
	ck_assert_int_eq(sr_get_option(s, SO_ERROR, &v, &err), 0);
	ck_assert_int_eq(v, 0);
	/* Read-only options are refused by the daemon. */
	ck_assert_int_eq(sr_set_option(s, SO_TYPE, 1, &err), -1);
	ck_assert_str_eq(err.message, "the given option is read-only");
	ck_assert_int_eq(sr_set_blocking(s, false, &err), 0);
	ck_assert(!sr_socket_state(s)->is_blocking);
	ck_assert_int_eq(sr_set_blocking(s, true, &err), 0);
	ck_assert(sr_socket_state(s)->is_blocking);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

START_TEST(bind_listen_accept)
{
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *l = new_sock(c, AF_INET, SOCK_STREAM), *a;
	sr_sockinfo info;
	sr_error err;
	char buf[8], *got;
	size_t len;
	int fd, port;

	ck_assert_msg(sr_bind(l, 0, NULL, &err) == 0, "bind: %s", err.message);
	port = sr_socket_state(l)->port;
	ck_assert_int_gt(port, 0);
	assert_state(l, .host = "127.0.0.1", .port = port, .is_bound = true, .shutdown_reason = -1);
	ck_assert_int_eq(sr_info(l, &info, &err), 0);
	ck_assert_int_eq(info.port, port);
	ck_assert_msg(sr_listen(l, -1, &err) == 0, "listen: %s", err.message);
	assert_state(l, .port = port, .is_bound = true, .is_listening = true,
	             .shutdown_reason = -1);

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);

	a = sr_accept(l, &err);
	ck_assert_msg(a != NULL, "accept: %s", err.message);
	assert_state(a, .host = "127.0.0.1", .port = ntohs(sin.sin_port), .is_client = true,
	             .is_connected = true, .shutdown_reason = -1);
	ck_assert_int_ne(sr_socket_state(a)->id, sr_socket_state(l)->id);
	ck_assert_int_eq(sr_socket_state(a)->family, AF_INET);
	ck_assert_int_eq(sr_send(a, "ping", 4, 0, &err), 4);
	ck_assert_int_eq(recv(fd, buf, 4, MSG_WAITALL), 4);
	ck_assert_mem_eq(buf, "ping", 4);
	ck_assert_int_eq(send(fd, "pong", 4, MSG_NOSIGNAL), 4);
	got = receive_exact(a, 4);
	ck_assert_str_eq(got, "pong");
	free(got);
	close(fd);
	ck_assert_int_eq(sr_receive(a, -1, 0, &got, &len, &err), 0);
	ck_assert_uint_eq(len, 0);
	free(got);
	sr_socket_free(a);
	sr_socket_free(l);
	sr_client_close(c);
}
END_TEST

START_TEST(get_address_info_localhost)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_addrinfo *ai = NULL;
	sr_error err;

	ck_assert_msg(sr_get_address_info(c, "127.0.0.1", NULL, AF_INET, &ai, &err) == 0,
	              "gai: %d %s", err.code, err.message);
	ck_assert_str_eq(ai->ip, "127.0.0.1");
	ck_assert_uint_ge(ai->count, 1);
	ck_assert_int_eq(ai->addresses[0].family, AF_INET);
	sr_addrinfo_free(ai);
	ai = NULL;
	ck_assert_msg(sr_get_address_info(c, "localhost", "http", AF_INET, &ai, &err) == 0,
	              "gai: %d %s", err.code, err.message);
	ck_assert_str_eq(ai->ip, "127.0.0.1");
	for (size_t i = 0; i < ai->count; i++)
		ck_assert_int_eq(ai->addresses[i].family, AF_INET);
	sr_addrinfo_free(ai);
	sr_client_close(c);
}
END_TEST

START_TEST(client_close_detaches_sockets)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	sr_error err;

	sr_client_close(c);
	ck_assert(sr_socket_state(s)->is_closed);
	ck_assert_int_eq(sr_send(s, "x", 1, 0, &err), -1);
	ck_assert_int_eq(err.code, SR_ECLOSED);
	ck_assert_int_eq(sr_close(s, &err), 0);
	sr_socket_free(s);
}
END_TEST

Suite *
tcp_client_suite(void)
{
	Suite *s = suite_create("tcp_client");
	TCase *tc = tcase_create("tcp_client");

	tcase_add_checked_fixture(tc, fixture_daemon_up, fixture_daemon_down);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, new_socket_has_reference_defaults);
	tcase_add_test(tc, type_and_protocol_zero_mean_defaults);
	tcase_add_test(tc, connect_ipv4_send_receive_read);
	tcase_add_test(tc, connect_ipv6_send_receive_read);
	tcase_add_test(tc, connect_by_name);
	tcase_add_test(tc, connect_default_host);
	tcase_add_test(tc, large_send_is_chunked_and_complete);
	tcase_add_test(tc, read_longer_than_payload_stops_at_end_of_stream);
	tcase_add_test(tc, receive_everything_then_end_of_stream);
	tcase_add_test(tc, receive_caps_length_and_peeks);
	tcase_add_test(tc, send_file_streams_content);
	tcase_add_test(tc, shutdown_transitions);
	tcase_add_test(tc, close_is_idempotent_and_final);
	tcase_add_test(tc, options_round_trip_and_update_state);
	tcase_add_test(tc, bind_listen_accept);
	tcase_add_test(tc, get_address_info_localhost);
	tcase_add_test(tc, client_close_detaches_sockets);
	suite_add_tcase(s, tc);
	return s;
}
