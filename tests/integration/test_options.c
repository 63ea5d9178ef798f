/*
 * test_options.c - set_option and get_option through the broker for every SO_
 * option of the reference this OS has: timeouts in milliseconds (reflected in the
 * state and governing waits), linger, the read-only options, booleans, buffer
 * sizes and low-water marks; options that are not SO_ options or that this OS
 * lacks, refused by the library and by the daemon; a shut-down socket refuses.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rawcall.h"
#include "sockets.h"

static long
get_ok(sr_socket *s, int option)
{
	sr_error err;
	long v = -12345;

	ck_assert_msg(sr_get_option(s, option, &v, &err) == 0, "get_option %d: %d %s", option,
	              err.code, err.message);
	return v;
}

static void
set_ok(sr_socket *s, int option, long value)
{
	sr_error err;

	ck_assert_msg(sr_set_option(s, option, value, &err) == 0, "set_option %d=%ld: %d %s",
	              option, value, err.code, err.message);
}

START_TEST(timeouts_are_milliseconds_in_the_state)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	sr_error err;

	ck_assert_int_eq(sr_socket_state(s)->send_timeout, -1);
	ck_assert_int_eq(sr_socket_state(s)->receive_timeout, -1);
	ck_assert_int_eq(get_ok(s, SO_RCVTIMEO), -1);
	ck_assert_int_eq(get_ok(s, SO_SNDTIMEO), -1);
	set_ok(s, SO_RCVTIMEO, 1234);
	ck_assert_int_eq(sr_socket_state(s)->receive_timeout, 1234);
	ck_assert_int_eq(sr_socket_state(s)->send_timeout, -1);
	set_ok(s, SO_SNDTIMEO, 4321);
	ck_assert_int_eq(sr_socket_state(s)->send_timeout, 4321);
	ck_assert_int_eq(get_ok(s, SO_RCVTIMEO), 1234);
	ck_assert_int_eq(get_ok(s, SO_SNDTIMEO), 4321);
	set_ok(s, SO_RCVTIMEO, 0);
	ck_assert_int_eq(sr_socket_state(s)->receive_timeout, 0);
	ck_assert_int_eq(get_ok(s, SO_RCVTIMEO), 0);
	set_ok(s, SO_SNDTIMEO, -1);
	ck_assert_int_eq(sr_socket_state(s)->send_timeout, -1);
	ck_assert_int_eq(sr_set_option(s, SO_RCVTIMEO, -2, &err), -1);
	assert_err(err, SR_EINVAL, 0, "out of range");
	ck_assert_int_eq(sr_set_option(s, SO_RCVTIMEO, 1L << 40, &err), -1);
	assert_err(err, SR_EINVAL, 0, "out of range");
	ck_assert_int_eq(sr_socket_state(s)->receive_timeout, 0);
	/* Options do not move the socket's state. */
	assert_state(s, .host = "127.0.0.1", .port = 0, .shutdown_reason = -1);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

/* A plain listener that never accepts: a peer's data piles up in its queue. */
static int
deaf_listener(int *port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), small = 4096;

	ck_assert_int_ne(fd, -1);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

START_TEST(send_timeout_governs_send)
{
	const size_t n = 4u << 20;
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	sr_error err;
	char *buf = calloc(1, n);
	long long t0, took;
	long sent;
	int lfd, port;

	ck_assert_ptr_nonnull(buf);
	lfd = deaf_listener(&port);
	set_ok(s, SO_SNDBUF, 4096);
	ck_assert_int_eq(sr_connect(s, "127.0.0.1", port, 2000, &err), 0);
	set_ok(s, SO_SNDTIMEO, 300);
	/* The peer never reads: what fits is sent, then the timeout ends the call with an
	 * error that says how much went out. */
	t0 = now_ms();
	sent = sr_send(s, buf, n, 0, &err);
	took = now_ms() - t0;
	ck_assert_int_eq(sent, -1);
	assert_err(err, SR_ETIMEDOUT, ETIMEDOUT, "send timed out after 300 ms");
	assert_err(err, SR_ETIMEDOUT, ETIMEDOUT, " bytes sent)");
	ck_assert_msg(took >= 280 && took < 3000, "send returned after %lld ms", took);
	/* The socket is still connected and still times out the same way. */
	t0 = now_ms();
	ck_assert_int_eq(sr_send(s, buf, 1u << 16, 0, &err), -1);
	took = now_ms() - t0;
	assert_err(err, SR_ETIMEDOUT, ETIMEDOUT, "send timed out after 300 ms");
	ck_assert_msg(took >= 280 && took < 3000, "send failed after %lld ms", took);
	assert_state(s, .host = "127.0.0.1", .port = port, .is_client = true, .is_connected = true,
	             .shutdown_reason = -1);
	free(buf);
	sr_socket_free(s);
	sr_client_close(c);
	close(lfd);
}
END_TEST

START_TEST(linger_in_seconds)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);

	ck_assert_int_eq(get_ok(s, SO_LINGER), -1); /* off */
	set_ok(s, SO_LINGER, 5);
	ck_assert_int_eq(get_ok(s, SO_LINGER), 5);
	set_ok(s, SO_LINGER, 0);
	ck_assert_int_eq(get_ok(s, SO_LINGER), 0);
	set_ok(s, SO_LINGER, -1);
	ck_assert_int_eq(get_ok(s, SO_LINGER), -1);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

START_TEST(read_only_options)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *t = new_sock(c, AF_INET, SOCK_STREAM), *u = new_sock(c, AF_INET6, SOCK_DGRAM);
	const int read_only[] = {SO_TYPE, SO_ERROR, SO_ACCEPTCONN};
	sr_error err;

	ck_assert_int_eq(get_ok(t, SO_TYPE), SOCK_STREAM);
	ck_assert_int_eq(get_ok(u, SO_TYPE), SOCK_DGRAM);
	ck_assert_int_eq(get_ok(t, SO_ERROR), 0);
	ck_assert_int_eq(get_ok(t, SO_ACCEPTCONN), 0);
	for (size_t i = 0; i < sizeof(read_only) / sizeof(read_only[0]); i++) {
		ck_assert_int_eq(sr_set_option(t, read_only[i], 1, &err), -1);
		assert_err(err, SR_EINVAL, 0, "the given option is read-only");
	}
	ck_assert_int_eq(get_ok(t, SO_TYPE), SOCK_STREAM);
	ck_assert_int_eq(sr_bind(t, 0, NULL, &err), 0);
	ck_assert_int_eq(get_ok(t, SO_ACCEPTCONN), 0);
	ck_assert_int_eq(sr_listen(t, 1, &err), 0);
	ck_assert_int_eq(get_ok(t, SO_ACCEPTCONN), 1);
	sr_socket_free(u);
	sr_socket_free(t);
	sr_client_close(c);
}
END_TEST

START_TEST(boolean_options)
{
	static const int tcp_bools[] = {
	    SO_KEEPALIVE, SO_REUSEADDR, SO_OOBINLINE, SO_DONTROUTE,
#ifdef SO_REUSEPORT
	    SO_REUSEPORT,
#endif
#ifdef SO_TIMESTAMP
	    SO_TIMESTAMP,
#endif
	};
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *t = new_sock(c, AF_INET, SOCK_STREAM), *u = new_sock(c, AF_INET, SOCK_DGRAM);

	for (size_t i = 0; i < sizeof(tcp_bools) / sizeof(tcp_bools[0]); i++) {
		int o = tcp_bools[i];

		ck_assert_msg(get_ok(t, o) == 0, "option %d is on by default", o);
		set_ok(t, o, 1);
		ck_assert_msg(get_ok(t, o) != 0, "option %d did not turn on", o);
		set_ok(t, o, 0);
		ck_assert_msg(get_ok(t, o) == 0, "option %d did not turn off", o);
	}
	ck_assert_int_eq(get_ok(u, SO_BROADCAST), 0);
	set_ok(u, SO_BROADCAST, 1);
	ck_assert_int_ne(get_ok(u, SO_BROADCAST), 0);
	set_ok(u, SO_BROADCAST, 0);
	ck_assert_int_eq(get_ok(u, SO_BROADCAST), 0);
	/* SO_DEBUG: reading is free; turning it off is always allowed. */
	ck_assert_int_eq(get_ok(t, SO_DEBUG), 0);
	set_ok(t, SO_DEBUG, 0);
	sr_socket_free(u);
	sr_socket_free(t);
	sr_client_close(c);
}
END_TEST

START_TEST(buffer_sizes_and_low_water_marks)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *t = new_sock(c, AF_INET, SOCK_STREAM);
	sr_error err;

	/* Linux doubles the size asked for, to leave room for its bookkeeping. */
	set_ok(t, SO_SNDBUF, 65536);
	ck_assert_int_eq(get_ok(t, SO_SNDBUF), 2 * 65536);
	set_ok(t, SO_RCVBUF, 32768);
	ck_assert_int_eq(get_ok(t, SO_RCVBUF), 2 * 32768);
	ck_assert_int_eq(get_ok(t, SO_RCVLOWAT), 1);
	set_ok(t, SO_RCVLOWAT, 16);
	ck_assert_int_eq(get_ok(t, SO_RCVLOWAT), 16);
	/* Linux reads SO_SNDLOWAT (always 1) but cannot set it. */
	ck_assert_int_eq(get_ok(t, SO_SNDLOWAT), 1);
	ck_assert_int_eq(sr_set_option(t, SO_SNDLOWAT, 16, &err), -1);
	assert_err(err, SR_EOS, ENOPROTOOPT, "Protocol not available");
	ck_assert_int_eq(sr_set_option(t, SO_RCVBUF, 1L << 40, &err), -1);
	assert_err(err, SR_EINVAL, 0, "out of range");
	sr_socket_free(t);
	sr_client_close(c);
}
END_TEST

/*
 * The library takes this host's SO_ values. One that is no SO_ option of the
 * reference never reaches the daemon. (A TCP_ value cannot always be told apart:
 * on Linux TCP_NODELAY is 1, which is SO_DEBUG.)
 */
START_TEST(not_an_so_option_is_refused_by_the_library)
{
	static const int bad[] = {9999, -1, TCP_QUICKACK, TCP_INFO, SO_PRIORITY, SO_PEERCRED};
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *t = new_sock(c, AF_INET, SOCK_STREAM);
	const sr_constant *k;
	size_t n;
	sr_error err;
	long v;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char num[32];

		snprintf(num, sizeof(num), "option %d ", bad[i]);
		ck_assert_int_eq(sr_set_option(t, bad[i], 1, &err), -1);
		ck_assert_msg(err.code == SR_EUNSUPPORTED || err.code == SR_EINVAL,
		              "set_option %d: code %d", bad[i], err.code);
		assert_err(err, err.code, 0, num);
		ck_assert_int_eq(sr_get_option(t, bad[i], &v, &err), -1);
		ck_assert_msg(err.code == SR_EUNSUPPORTED || err.code == SR_EINVAL,
		              "get_option %d: code %d", bad[i], err.code);
	}
	/* SO_USELOOPBACK is in the table, absent here: a binding has no value to pass. */
	k = sr_constants(&n);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(k[i].name, "SO_USELOOPBACK") != 0)
			continue;
#ifndef SO_USELOOPBACK
		ck_assert(!k[i].present);
		ck_assert_int_eq(k[i].value, 0);
		ck_assert_int_eq(sr_set_option(t, (int)k[i].value, 1, &err), -1);
		assert_err(err, SR_EUNSUPPORTED, 0, "not a SOL_SOCKET option");
#endif
	}
	assert_state(t, .host = "127.0.0.1", .port = 0, .shutdown_reason = -1);
	sr_socket_free(t);
	sr_client_close(c);
}
END_TEST

/* --- what the daemon says to wire values the library would not send --- */

/* Sends set_option (set) or get_option with a wire option; asserts code and text. */
static void
raw_option(int fd, int64_t handle, bool set, int wire, int code, const char *text)
{
	static uint64_t id = 100;
	Sockrpc__SetOptionRequest sq = SOCKRPC__SET_OPTION_REQUEST__INIT;
	Sockrpc__GetOptionRequest gq = SOCKRPC__GET_OPTION_REQUEST__INIT;
	unsigned method = set ? M_SET_OPTION : M_GET_OPTION, got_method;
	const Sockrpc__Status *st;
	ProtobufCMessage *m;
	uint64_t got_id;

	id++;
	if (set) {
		sq.handle = handle;
		sq.option = wire;
		sq.value = 1;
		raw_send(fd, method, id, &sq.base);
	} else {
		gq.handle = handle;
		gq.option = wire;
		raw_send(fd, method, id, &gq.base);
	}
	m = rc_reply(fd, &got_id, &got_method, 5000);
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(got_id, id);
	ck_assert_uint_eq(got_method, method);
	st = set ? ((Sockrpc__SetOptionReply *)m)->status : ((Sockrpc__GetOptionReply *)m)->status;
	ck_assert_ptr_nonnull(st);
	ck_assert_msg((int)st->code == code, "%s wire option %d: code %d (%s), want %d",
	              set ? "set" : "get", wire, st->code, st->message, code);
	ck_assert_msg(strstr(st->message, text) != NULL, "%s wire option %d: \"%s\" lacks \"%s\"",
	              set ? "set" : "get", wire, st->message, text);
	protobuf_c_message_free_unpacked(m, NULL);
}

START_TEST(daemon_refuses_unknown_and_absent_wire_options)
{
	int fd = raw_session(test_daemon.path);
	int64_t h = rc_socket(fd, 2, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);

	/* Not an Option of the contract: a bad argument. */
	raw_option(fd, h, true, 99, SR_EINVAL, "99 is not an SO_ option");
	raw_option(fd, h, false, 99, SR_EINVAL, "99 is not an SO_ option");
	raw_option(fd, h, true, SOCKRPC__OPTION__OPTION_UNSPEC, SR_EINVAL, "not an SO_ option");
	raw_option(fd, h, false, -5, SR_EINVAL, "not an SO_ option");
#ifndef SO_USELOOPBACK
	/* In the contract, not on this OS. */
	raw_option(fd, h, true, SOCKRPC__OPTION__SO_USELOOPBACK, SR_EUNSUPPORTED,
	           "not available on this OS");
	raw_option(fd, h, false, SOCKRPC__OPTION__SO_USELOOPBACK, SR_EUNSUPPORTED,
	           "not available on this OS");
#endif
	/* The session goes on. */
	raw_option(fd, h, false, SOCKRPC__OPTION__SO_KEEPALIVE, SR_OK, "");
	close(fd);
}
END_TEST

START_TEST(set_option_on_shut_down_or_closed_socket)
{
	struct server srv;
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	sr_error err;

	server_start(&srv, AF_INET, SERVER_ECHO, 0);
	ck_assert_int_eq(sr_connect(s, "127.0.0.1", srv.port, 2000, &err), 0);
	set_ok(s, SO_KEEPALIVE, 1);
	ck_assert_int_eq(sr_shutdown(s, SHUT_WR, &err), 0);
	assert_state(s, .host = "127.0.0.1", .port = srv.port, .is_shutdown = true,
	             .shutdown_reason = SHUT_WR);
	ck_assert_int_eq(sr_set_option(s, SO_KEEPALIVE, 0, &err), -1);
	assert_err(err, SR_ESTATE, 0, "shut down");
	ck_assert_int_eq(sr_set_option(s, SO_RCVTIMEO, 100, &err), -1);
	assert_err(err, SR_ESTATE, 0, "shut down");
	ck_assert_int_eq(sr_socket_state(s)->receive_timeout, -1);
	/* Reading options still works, and shows nothing changed. */
	ck_assert_int_eq(get_ok(s, SO_KEEPALIVE), 1);
	assert_state(s, .host = "127.0.0.1", .port = srv.port, .is_shutdown = true,
	             .shutdown_reason = SHUT_WR);
	ck_assert_int_eq(sr_close(s, &err), 0);
	ck_assert_int_eq(sr_set_option(s, SO_KEEPALIVE, 1, &err), -1);
	assert_err(err, SR_ECLOSED, -1, NULL);
	ck_assert_int_eq(sr_get_option(s, SO_KEEPALIVE, NULL, &err), -1);
	assert_err(err, SR_ECLOSED, -1, NULL);
	sr_socket_free(s);
	sr_client_close(c);
	server_stop(&srv);
}
END_TEST

START_TEST(options_on_listening_and_accepted_sockets)
{
	struct sockaddr_in sin;
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *l = new_sock(c, AF_INET, SOCK_STREAM), *a;
	sr_error err;
	int fd, port;

	set_ok(l, SO_REUSEADDR, 1);
	ck_assert_int_eq(sr_bind(l, 0, NULL, &err), 0);
	ck_assert_int_eq(sr_listen(l, 4, &err), 0);
	port = sr_socket_state(l)->port;
	set_ok(l, SO_RCVTIMEO, 2000);
	ck_assert_int_eq(get_ok(l, SO_REUSEADDR), 1);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	a = sr_accept(l, &err);
	ck_assert_msg(a != NULL, "accept: %s", err.message);
	/* The handle's timeouts are its own: an accepted socket starts without. */
	ck_assert_int_eq(sr_socket_state(a)->receive_timeout, -1);
	ck_assert_int_eq(get_ok(a, SO_ACCEPTCONN), 0);
	ck_assert_int_eq(get_ok(a, SO_TYPE), SOCK_STREAM);
	set_ok(a, SO_KEEPALIVE, 1);
	ck_assert_int_eq(get_ok(a, SO_KEEPALIVE), 1);
	close(fd);
	sr_socket_free(a);
	sr_socket_free(l);
	sr_client_close(c);
}
END_TEST

Suite *
options_suite(void)
{
	Suite *s = suite_create("options");
	TCase *tc = tcase_create("options");

	tcase_add_checked_fixture(tc, fixture_daemon_up, fixture_daemon_down);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, timeouts_are_milliseconds_in_the_state);
	tcase_add_test(tc, send_timeout_governs_send);
	tcase_add_test(tc, linger_in_seconds);
	tcase_add_test(tc, read_only_options);
	tcase_add_test(tc, boolean_options);
	tcase_add_test(tc, buffer_sizes_and_low_water_marks);
	tcase_add_test(tc, not_an_so_option_is_refused_by_the_library);
	tcase_add_test(tc, daemon_refuses_unknown_and_absent_wire_options);
	tcase_add_test(tc, set_option_on_shut_down_or_closed_socket);
	tcase_add_test(tc, options_on_listening_and_accepted_sockets);
	suite_add_tcase(s, tc);
	return s;
}
