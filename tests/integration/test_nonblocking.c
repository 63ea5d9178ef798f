/*
 * test_nonblocking.c - set_blocking(false) through the broker: receive, read,
 * receive_from and accept answer at once (SR_EWOULDBLOCK) instead of waiting; send
 * sends what fits; connect starts the connection and returns, and a later call on
 * the handle shows how it ended (connected, or SO_ERROR's ECONNREFUSED).
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "sockets.h"

static void
set_blocking_ok(sr_socket *s, bool on)
{
	sr_error err;

	ck_assert_msg(sr_set_blocking(s, on, &err) == 0, "set_blocking: %s", err.message);
	ck_assert_int_eq(sr_socket_state(s)->is_blocking, on);
}

/* A loopback port nothing listens on (bound and released). */
static int
closed_port(void)
{
	int port, fd = plain_listener(1, &port);

	close(fd);
	return port;
}

/* Asserts the call failed with SR_EWOULDBLOCK within 500 ms of t0. */
#define assert_would_block(err, t0)                                                                \
	do {                                                                                       \
		assert_err((err), SR_EWOULDBLOCK, -1, "would block");                              \
		ck_assert_msg(now_ms() - (t0) < 500, "would-block took %lld ms", now_ms() - (t0)); \
	} while (0)

/* Receives (non-blocking) until data arrives; asserts it is `want`. */
static void
receive_eventually(sr_socket *s, const char *want)
{
	sr_error err;
	char *got;
	size_t len, have = 0, n = strlen(want);
	char buf[256];

	for (int i = 0; i < 200 && have < n; i++) {
		if (sr_receive(s, (long)(n - have), 0, &got, &len, &err) == 0) {
			ck_assert_uint_gt(len, 0);
			memcpy(buf + have, got, len);
			have += len;
			free(got);
			continue;
		}
		assert_err(err, SR_EWOULDBLOCK, -1, NULL);
		sleep_ms(10);
	}
	ck_assert_uint_eq(have, n);
	ck_assert(memcmp(buf, want, n) == 0);
}

START_TEST(receive_and_read_answer_at_once)
{
	struct server srv;
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	sr_error err;
	long long t0;
	char *got;
	size_t len;

	server_start(&srv, AF_INET, SERVER_ECHO, 0);
	ck_assert(sr_socket_state(s)->is_blocking); /* sockrpc's default */
	ck_assert_int_eq(sr_connect(s, "127.0.0.1", srv.port, 2000, &err), 0);
	/* A receive timeout does not make a non-blocking call wait. */
	ck_assert_int_eq(sr_set_option(s, SO_RCVTIMEO, 5000, &err), 0);
	set_blocking_ok(s, false);
	assert_state(s, .host = "127.0.0.1", .port = srv.port, .is_client = true,
	             .is_connected = true, .shutdown_reason = -1);
	t0 = now_ms();
	ck_assert_int_eq(sr_receive(s, -1, 0, &got, &len, &err), -1);
	assert_would_block(err, t0);
	t0 = now_ms();
	ck_assert_int_eq(sr_receive(s, 10, 0, &got, &len, &err), -1);
	assert_would_block(err, t0);
	t0 = now_ms();
	ck_assert_int_eq(sr_read(s, 10, &got, &len, &err), -1);
	assert_would_block(err, t0);
	/* Would-block is not fatal. */
	assert_state(s, .host = "127.0.0.1", .port = srv.port, .is_client = true,
	             .is_connected = true, .shutdown_reason = -1);
	ck_assert_int_eq(sr_send(s, "abc", 3, 0, &err), 3);
	receive_eventually(s, "abc");
	/* read on a non-blocking socket returns what is there, short of length. */
	ck_assert_int_eq(sr_send(s, "xy", 2, 0, &err), 2);
	ck_assert_uint_eq(server_wait_received(&srv, 5, 2000), 5);
	for (int i = 0; i < 200; i++) {
		if (sr_read(s, 10, &got, &len, &err) == 0)
			break;
		assert_err(err, SR_EWOULDBLOCK, -1, NULL);
		sleep_ms(10);
	}
	ck_assert_uint_eq(len, 2);
	ck_assert_mem_eq(got, "xy", 2);
	free(got);
	/* Blocking again: the receive waits for its timeout. */
	ck_assert_int_eq(sr_set_option(s, SO_RCVTIMEO, 200, &err), 0);
	set_blocking_ok(s, true);
	t0 = now_ms();
	ck_assert_int_eq(sr_receive(s, -1, 0, &got, &len, &err), -1);
	assert_err(err, SR_ETIMEDOUT, ETIMEDOUT, NULL);
	ck_assert_int_ge(now_ms() - t0, 180);
	sr_socket_free(s);
	sr_client_close(c);
	server_stop(&srv);
}
END_TEST

START_TEST(accept_answers_at_once)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *l = new_sock(c, AF_INET, SOCK_STREAM), *a = NULL;
	sr_error err;
	long long t0;
	int port, fd;

	ck_assert_int_eq(sr_bind(l, 0, NULL, &err), 0);
	ck_assert_int_eq(sr_listen(l, 4, &err), 0);
	port = sr_socket_state(l)->port;
	set_blocking_ok(l, false);
	assert_state(l, .host = "127.0.0.1", .port = port, .is_bound = true, .is_listening = true,
	             .shutdown_reason = -1);
	t0 = now_ms();
	ck_assert_ptr_null(sr_accept(l, &err));
	assert_would_block(err, t0);
	fd = plain_connect(AF_INET, port, NULL);
	for (int i = 0; i < 200 && a == NULL; i++) {
		if ((a = sr_accept(l, &err)) == NULL) {
			assert_err(err, SR_EWOULDBLOCK, -1, NULL);
			sleep_ms(10);
		}
	}
	ck_assert_ptr_nonnull(a);
	assert_state(a, .host = "127.0.0.1", .port = -1, .is_client = true, .is_connected = true,
	             .shutdown_reason = -1);
	/* An accepted socket starts blocking, whatever its listener's mode. */
	ck_assert(sr_socket_state(a)->is_blocking);
	ck_assert(!sr_socket_state(l)->is_blocking);
	t0 = now_ms();
	ck_assert_ptr_null(sr_accept(l, &err));
	assert_would_block(err, t0);
	close(fd);
	sr_socket_free(a);
	sr_socket_free(l);
	sr_client_close(c);
}
END_TEST

START_TEST(receive_from_answers_at_once)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *u = new_sock(c, AF_INET6, SOCK_DGRAM), *v = new_sock(c, AF_INET6, SOCK_DGRAM);
	sr_error err;
	char host[64], *got = NULL;
	size_t len;
	long long t0;
	int port, rc = -1;

	ck_assert_int_eq(sr_bind(u, 0, NULL, &err), 0);
	port = sr_socket_state(u)->port;
	set_blocking_ok(u, false);
	t0 = now_ms();
	ck_assert_int_eq(sr_receive_from(u, -1, 0, &got, &len, host, &port, &err), -1);
	assert_would_block(err, t0);
	t0 = now_ms();
	ck_assert_int_eq(sr_receive(u, -1, 0, &got, &len, &err), -1);
	assert_would_block(err, t0);
	port = sr_socket_state(u)->port;
	ck_assert_int_eq(sr_send_to(v, "::1", port, "dgram", 5, 0, &err), 5);
	for (int i = 0; i < 200 && rc != 0; i++) {
		rc = sr_receive_from(u, -1, 0, &got, &len, host, &port, &err);
		if (rc != 0) {
			assert_err(err, SR_EWOULDBLOCK, -1, NULL);
			sleep_ms(10);
		}
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(len, 5);
	ck_assert_mem_eq(got, "dgram", 5);
	ck_assert_str_eq(host, "::1");
	free(got);
	sr_socket_free(v);
	sr_socket_free(u);
	sr_client_close(c);
}
END_TEST

/* Polls with get_option(SO_ERROR) until the state says connected; returns SO_ERROR. */
static void
wait_connected(sr_socket *s)
{
	long v = -1;

	for (int i = 0; i < 200 && !sr_socket_state(s)->is_connected; i++) {
		sleep_ms(10);
		ck_assert_int_eq(sr_get_option(s, SO_ERROR, &v, NULL), 0);
		ck_assert_int_eq(v, 0);
	}
	ck_assert(sr_socket_state(s)->is_connected);
}

START_TEST(connect_starts_and_a_later_call_sees_it_done)
{
	struct server srv;
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	sr_sockinfo info;
	sr_error err;
	long long t0;

	server_start(&srv, AF_INET, SERVER_ECHO, 0);
	set_blocking_ok(s, false);
	t0 = now_ms();
	ck_assert_msg(sr_connect(s, "127.0.0.1", srv.port, 2000, &err) == 0, "connect: %d %s",
	              err.code, err.message);
	ck_assert_int_lt(now_ms() - t0, 500);
	/* Whatever connect's reply said, the next call on the handle brings it up to date. */
	sleep_ms(50);
	ck_assert_int_eq(sr_info(s, &info, &err), 0);
	ck_assert_int_gt(info.port, 0);
	wait_connected(s);
	assert_state(s, .host = "127.0.0.1", .port = srv.port, .is_client = true,
	             .is_connected = true, .shutdown_reason = -1);
	ck_assert(!sr_socket_state(s)->is_blocking);
	ck_assert_int_eq(sr_send(s, "nb", 2, 0, &err), 2);
	receive_eventually(s, "nb");
	/* Connected: a second connect is refused. */
	ck_assert_int_eq(sr_connect(s, "127.0.0.1", srv.port, 2000, &err), -1);
	assert_err(err, SR_ESTATE, 0, "socket has existing connection");
	sr_socket_free(s);
	sr_client_close(c);
	server_stop(&srv);
}
END_TEST

START_TEST(connect_to_closed_port_reports_econnrefused)
{
	struct server srv;
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	sr_error err;
	long v = 0;
	int port = closed_port();

	set_blocking_ok(s, false);
	if (sr_connect(s, "127.0.0.1", port, 2000, &err) == -1) {
		/* Refused before connect returned: that is the answer too. */
		assert_err(err, SR_EOS, ECONNREFUSED, "Connection refused");
	} else {
		for (int i = 0; i < 200 && v == 0; i++) {
			sleep_ms(10);
			ck_assert_int_eq(sr_get_option(s, SO_ERROR, &v, &err), 0);
		}
		ck_assert_int_eq(v, ECONNREFUSED);
		/* Reported once, as the kernel does. */
		ck_assert_int_eq(sr_get_option(s, SO_ERROR, &v, &err), 0);
		ck_assert_int_eq(v, 0);
	}
	assert_state(s, .host = "127.0.0.1", .port = -1, .shutdown_reason = -1);
	/* The socket may connect again, elsewhere. */
	server_start(&srv, AF_INET, SERVER_ECHO, 0);
	set_blocking_ok(s, true);
	ck_assert_msg(sr_connect(s, "127.0.0.1", srv.port, 2000, &err) == 0, "reconnect: %s",
	              err.message);
	assert_state(s, .host = "127.0.0.1", .port = srv.port, .is_client = true,
	             .is_connected = true, .shutdown_reason = -1);
	sr_socket_free(s);
	sr_client_close(c);
	server_stop(&srv);
}
END_TEST

/* A listener whose queue is full drops new SYNs: a connect to it stays in progress. */
START_TEST(connect_in_progress)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM), *b = new_sock(c, AF_INET, SOCK_STREAM);
	sr_error err;
	long long t0;
	long v = -1;
	int lfd, port, filler;

	lfd = plain_listener(0, &port);
	filler = plain_connect(AF_INET, port, NULL); /* fills the queue of one */
	sleep_ms(50);
	set_blocking_ok(s, false);
	ck_assert_int_eq(sr_connect(s, "127.0.0.1", port, 2000, &err), 0);
	sleep_ms(100);
	ck_assert_int_eq(sr_get_option(s, SO_ERROR, &v, &err), 0);
	ck_assert_int_eq(v, 0);
	ck_assert(!sr_socket_state(s)->is_connected);
	ck_assert_int_eq(sr_connect(s, "127.0.0.1", port, 2000, &err), -1);
	assert_err(err, SR_ESTATE, 0, "in progress");
	/* Blocking, the same wait ends at the connect timeout, and the socket is reusable. */
	t0 = now_ms();
	ck_assert_int_eq(sr_connect(b, "127.0.0.1", port, 300, &err), -1);
	assert_err(err, SR_ETIMEDOUT, ETIMEDOUT, "timed out after 300 ms");
	ck_assert_int_ge(now_ms() - t0, 280);
	assert_state(b, .host = "127.0.0.1", .port = 0, .shutdown_reason = -1);
	close(filler);
	close(lfd);
	sr_socket_free(b);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

START_TEST(send_sends_what_fits)
{
	const size_t n = 4u << 20;
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	char *buf = calloc(1, n);
	sr_error err;
	long long t0;
	long sent = 0;
	int lfd, port, small = 4096;

	ck_assert_ptr_nonnull(buf);
	lfd = plain_listener(4, &port);
	setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	ck_assert_int_eq(sr_set_option(s, SO_SNDBUF, 4096, &err), 0);
	ck_assert_int_eq(sr_connect(s, "127.0.0.1", port, 2000, &err), 0);
	set_blocking_ok(s, false);
	t0 = now_ms();
	sent = sr_send(s, buf, n, 0, &err);
	ck_assert_msg(sent > 0 && (size_t)sent < n, "sent %ld of %zu", sent, n);
	ck_assert_int_lt(now_ms() - t0, 1000);
	/* Once nothing fits, send would block. */
	for (int i = 0; i < 50 && sent != -1; i++)
		sent = sr_send(s, buf, 1u << 16, 0, &err);
	ck_assert_int_eq(sent, -1);
	assert_err(err, SR_EWOULDBLOCK, -1, "would block");
	assert_state(s, .host = "127.0.0.1", .port = port, .is_client = true, .is_connected = true,
	             .shutdown_reason = -1);
	free(buf);
	sr_socket_free(s);
	sr_client_close(c);
	close(lfd);
}
END_TEST

Suite *
nonblocking_suite(void)
{
	Suite *s = suite_create("nonblocking");
	TCase *tc = tcase_create("nonblocking");

	tcase_add_checked_fixture(tc, fixture_daemon_up, fixture_daemon_down);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, receive_and_read_answer_at_once);
	tcase_add_test(tc, accept_answers_at_once);
	tcase_add_test(tc, receive_from_answers_at_once);
	tcase_add_test(tc, connect_starts_and_a_later_call_sees_it_done);
	tcase_add_test(tc, connect_to_closed_port_reports_econnrefused);
	tcase_add_test(tc, connect_in_progress);
	tcase_add_test(tc, send_sends_what_fits);
	suite_add_tcase(s, tc);
	return s;
}
