/*
 * test_bulk.c - bulk transfer on a blocking stream. Sends the library writes behind
 * (client/send_window.c): every byte arrives whole and in order through close and
 * shutdown, a reset peer shows in a later send, a peer that stops reading cannot
 * hold close for ever, and close from another thread ends a sender stuck on it.
 * Receives it fetches ahead (client/receive_ahead.c): order kept across receive,
 * peek and read, end of stream once, timeouts as before; MSG_DONTWAIT on one call.
 * Large receives the daemon splices: whole and in order when the client lags.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fast_paths.h"
#include "harness.h"
#include "sockets.h"

/* A kernel peer that reads one connection to its end and checks the pattern. */
struct reader {
	int listen_fd;
	size_t got;        /* bytes read before end of stream */
	size_t first_bad;  /* offset of the first wrong byte, or SIZE_MAX */
	const char *reply; /* written back after end of stream, or NULL */
	pthread_t thread;
};

static void *
reader_main(void *arg)
{
	struct reader *r = arg;
	char buf[65536];
	ssize_t n;
	int fd = accept(r->listen_fd, NULL, NULL);

	r->first_bad = SIZE_MAX;
	if (fd == -1)
		return NULL;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != pattern_byte(r->got + (size_t)i) && r->first_bad == SIZE_MAX)
				r->first_bad = r->got + (size_t)i;
		r->got += (size_t)n;
	}
	if (r->reply != NULL)
		(void)!write(fd, r->reply, strlen(r->reply));
	close(fd);
	return NULL;
}

static int
reader_start(struct reader *r, const char *reply)
{
	int port;

	memset(r, 0, sizeof(*r));
	r->reply = reply;
	r->listen_fd = plain_listener(1, &port);
	ck_assert_int_eq(pthread_create(&r->thread, NULL, reader_main, r), 0);
	return port;
}

static void
reader_join(struct reader *r, size_t want)
{
	pthread_join(r->thread, NULL);
	close(r->listen_fd);
	ck_assert_uint_eq(r->got, want);
	ck_assert_msg(r->first_bad == SIZE_MAX, "byte %zu differs", r->first_bad);
}

/* A loopback listener whose connections take little before someone reads them. */
static int
deaf_listener(int *port)
{
	int small = 4096, fd = plain_listener(1, port);

	/* Accepted sockets inherit the receive buffer of the listener. */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	return fd;
}

static char *
pattern(size_t n)
{
	char *p = malloc(n);

	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < n; i++)
		p[i] = pattern_byte(i);
	return p;
}

/* Sends of uneven sizes, some over max_payload, then close: all of it arrives. */
START_TEST(sends_behind_arrive_whole_through_close)
{
	const size_t total = 24u << 20;
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	char *data = pattern(total);
	struct reader r;
	sr_error err;
	size_t off = 0, n;
	unsigned seed = 7;

	connect_ok(s, "127.0.0.1", reader_start(&r, NULL));
	while (off < total) {
		n = 1 + (size_t)rand_r(&seed) % (3u << 20);
		if (n > total - off)
			n = total - off;
		ck_assert_int_eq(sr_send(s, data + off, n, 0, &err), (long)n);
		off += n;
	}
	assert_state(s, .host = "127.0.0.1", .port = -1, .is_client = true, .is_connected = true,
	             .shutdown_reason = -1);
	ck_assert_int_eq(sr_close(s, &err), 0);
	reader_join(&r, total);
	free(data);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

/* shutdown(SHUT_WR) goes out after the data; the peer's answer still comes back. */
START_TEST(shutdown_after_sends_delivers_then_ends)
{
	const size_t total = 8u << 20;
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	char *data = pattern(total), *got;
	struct reader r;
	sr_error err;
	size_t len;

	connect_ok(s, "127.0.0.1", reader_start(&r, "thanks"));
	for (size_t off = 0; off < total; off += 65536)
		ck_assert_int_eq(sr_send(s, data + off, 65536, 0, &err), 65536);
	ck_assert_int_eq(sr_shutdown(s, SHUT_WR, &err), 0);
	got = receive_exact(s, 6);
	ck_assert_str_eq(got, "thanks");
	free(got);
	ck_assert_int_eq(sr_receive(s, -1, 0, &got, &len, &err), 0);
	ck_assert_uint_eq(len, 0); /* end of stream */
	free(got);
	reader_join(&r, total);
	free(data);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

/* A peer that resets the connection: a later send says so, with the OS's reason. */
START_TEST(reset_peer_shows_in_a_later_send)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	char *data = pattern(65536);
	struct linger hard = {1, 0};
	sr_error err;
	int lfd, port, fd, i;
	long n = 0;

	lfd = plain_listener(1, &port);
	connect_ok(s, "127.0.0.1", port);
	fd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
	close(fd); /* RST */
	for (i = 0; i < 1000 && (n = sr_send(s, data, 65536, 0, &err)) == 65536; i++)
		usleep(1000);
	ck_assert_int_eq(n, -1);
	ck_assert_int_eq(err.code, SR_EOS);
	ck_assert_msg(err.sys_errno == ECONNRESET || err.sys_errno == EPIPE, "errno %d: %s",
	              err.sys_errno, err.message);
	ck_assert_ptr_nonnull(strstr(err.message, "send failed"));
	/* The handle is still there to close. */
	ck_assert_int_eq(sr_close(s, &err), 0);
	close(lfd);
	free(data);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

/* A peer that never reads cannot hold close for ever: it gives up after the linger. */
START_TEST(close_gives_up_on_a_peer_that_never_reads)
{
	if (fast_path_off("write-behind"))
		return; /* it tests write-behind itself */
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	const size_t chunk = 1u << 20;
	char *data = pattern(chunk);
	sr_error err;
	long long t0, took;
	int lfd, port, fd;

	lfd = deaf_listener(&port);
	ck_assert_int_eq(sr_set_option(s, SO_SNDBUF, 4096, &err), 0);
	connect_ok(s, "127.0.0.1", port);
	fd = accept(lfd, NULL, NULL);
	/* The kernel's buffers take a little, the rest waits in the daemon. */
	ck_assert_int_eq(sr_send(s, data, chunk, 0, &err), (long)chunk);
	ck_assert_int_eq(sr_send(s, data, chunk, 0, &err), (long)chunk);
	t0 = now_ms();
	ck_assert_int_eq(sr_close(s, &err), 0);
	took = now_ms() - t0;
	ck_assert(sr_socket_state(s)->is_closed);
	/* It waited for the sends (CL_LINGER_MS, 5 s, of no progress), then closed. */
	ck_assert_msg(took >= 4500 && took < 5000 + 3000, "close took %lld ms", took);
	ck_assert_int_eq(sr_send(s, data, 1, 0, &err), -1);
	ck_assert_int_eq(err.code, SR_ECLOSED);
	close(fd);
	close(lfd);
	free(data);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

struct stuck_sender {
	sr_socket *s;
	long result;
	sr_error err;
	long long ended;
};

static void *
send_until_error(void *arg)
{
	struct stuck_sender *t = arg;
	char *data = pattern(1u << 20);

	while ((t->result = sr_send(t->s, data, 1u << 20, 0, &t->err)) > 0)
		;
	t->ended = now_ms();
	free(data);
	return NULL;
}

/* close from another thread answers a sender waiting for room in the window. */
START_TEST(close_from_another_thread_ends_a_stuck_sender)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	struct stuck_sender t = {.s = s};
	pthread_t th;
	sr_error err;
	long long t0;
	int lfd, port, fd;

	lfd = deaf_listener(&port);
	ck_assert_int_eq(sr_set_option(s, SO_SNDBUF, 4096, &err), 0);
	connect_ok(s, "127.0.0.1", port);
	fd = accept(lfd, NULL, NULL);
	ck_assert_int_eq(pthread_create(&th, NULL, send_until_error, &t), 0);
	usleep(500 * 1000); /* the sender is stuck by now: nobody reads */
	t0 = now_ms();
	ck_assert_int_eq(sr_close(s, &err), 0);
	pthread_join(th, NULL);
	ck_assert_int_eq(t.result, -1);
	ck_assert_msg(t.err.code == SR_ECLOSED || t.err.code == SR_ETIMEDOUT, "code %d: %s",
	              t.err.code, t.err.message);
	/* At once, unless close found the sender between two calls and lingered first. */
	ck_assert_msg(t.ended - t0 < 5000 + 3000, "sender ended %lld ms after close", t.ended - t0);
	sr_socket_free(s);
	/* The session is still good. */
	s = new_sock(c, AF_INET, SOCK_STREAM);
	connect_ok(s, "127.0.0.1", port);
	sr_socket_free(s);
	sr_client_close(c);
	close(fd);
	close(lfd);
}
END_TEST

/* Full receives fetch ahead; receive, peek and read still see one ordered stream. */
START_TEST(receives_ahead_keep_order_through_peek_and_read)
{
	const size_t total = 6u << 20;
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	struct server srv;
	sr_error err;
	size_t have = 0, len;
	char *got;

	server_start(&srv, AF_INET, SERVER_SOURCE, total);
	connect_ok(s, "127.0.0.1", srv.port);
	while (have < (1u << 20)) {
		ck_assert_int_eq(sr_receive(s, 65536, 0, &got, &len, &err), 0);
		ck_assert_uint_gt(len, 0);
		for (size_t i = 0; i < len; i++)
			ck_assert_int_eq(got[i], pattern_byte(have + i));
		have += len;
		free(got);
	}
	ck_assert_int_eq(sr_receive(s, 100, MSG_PEEK, &got, &len, &err), 0);
	ck_assert_uint_gt(len, 0);
	for (size_t i = 0; i < len; i++)
		ck_assert_int_eq(got[i], pattern_byte(have + i));
	free(got);
	ck_assert_int_eq(sr_read(s, 300000, &got, &len, &err), 0);
	ck_assert_uint_eq(len, 300000);
	for (size_t i = 0; i < len; i++)
		ck_assert_int_eq(got[i], pattern_byte(have + i));
	have += len;
	free(got);
	for (;;) {
		ck_assert_int_eq(sr_receive(s, 65536, 0, &got, &len, &err), 0);
		for (size_t i = 0; i < len; i++)
			ck_assert_int_eq(got[i], pattern_byte(have + i));
		free(got);
		if (len == 0)
			break;
		have += len;
	}
	ck_assert_uint_eq(have, total);
	/* End of stream stays the end. */
	ck_assert_int_eq(sr_receive(s, 65536, 0, &got, &len, &err), 0);
	ck_assert_uint_eq(len, 0);
	free(got);
	sr_socket_free(s);
	sr_client_close(c);
	server_stop(&srv);
}
END_TEST

/*
 * Large receives are spliced through the daemon (daemon/receive_splice.c). Two streams
 * read in turn by a client that lags, with receives up to the largest payload, so the
 * client connection fills and spliced replies go out partly through the daemon's output
 * buffer, behind and ahead of replies for the other stream: every byte arrives, in order.
 */
START_TEST(large_receives_stay_whole_when_the_client_lags)
{
	const size_t total = 8u << 20;
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s[2] = {new_sock(c, AF_INET, SOCK_STREAM), new_sock(c, AF_INET, SOCK_STREAM)};
	struct server srv[2];
	size_t have[2] = {0, 0}, len;
	bool ended[2] = {false, false};
	sr_error err;
	char *got;

	for (int i = 0; i < 2; i++) {
		server_start(&srv[i], AF_INET, SERVER_SOURCE, total);
		connect_ok(s[i], "127.0.0.1", srv[i].port);
	}
	for (unsigned round = 0; !ended[0] || !ended[1]; round++) {
		int i = round % 2;

		if (ended[i])
			continue;
		if (round % 2 == 0)
			usleep(20000); /* the sources fill their sockets meanwhile */
		ck_assert_int_eq(sr_receive(s[i], 1 << 20, 0, &got, &len, &err), 0);
		for (size_t k = 0; k < len; k++)
			if (got[k] != pattern_byte(have[i] + k))
				ck_abort_msg("stream %d: byte %zu differs", i, have[i] + k);
		free(got);
		have[i] += len;
		ended[i] = len == 0;
	}
	ck_assert_uint_eq(have[0], total);
	ck_assert_uint_eq(have[1], total);
	for (int i = 0; i < 2; i++) {
		sr_socket_free(s[i]);
		server_stop(&srv[i]);
	}
	sr_client_close(c);
}
END_TEST

/* A reset reaches a large (spliced) receive as ECONNRESET, not as an end of stream. */
START_TEST(large_receive_reports_a_reset)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	struct linger abort_close = {1, 0};
	int port, lfd = plain_listener(1, &port), fd;
	sr_error err;
	size_t len;
	char *got;

	connect_ok(s, "127.0.0.1", port);
	fd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close));
	close(fd);
	ck_assert_int_eq(sr_receive(s, 65536, 0, &got, &len, &err), -1);
	assert_err(err, SR_EOS, ECONNRESET, "receive failed");
	sr_socket_free(s);
	sr_client_close(c);
	close(lfd);
}
END_TEST

/* Read-ahead that finds nothing is no answer: the receive timeout governs as before. */
START_TEST(receive_timeout_holds_after_read_ahead)
{
	const size_t total = 256u << 10;
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	char *data = pattern(total), *got;
	sr_error err;
	size_t have = 0, len;
	long long t0, took;
	int lfd, port, fd;

	lfd = plain_listener(1, &port);
	connect_ok(s, "127.0.0.1", port);
	fd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, total), (ssize_t)total); /* then silence */
	ck_assert_int_eq(sr_set_option(s, SO_RCVTIMEO, 300, &err), 0);
	while (have < total) {
		ck_assert_int_eq(sr_receive(s, 16384, 0, &got, &len, &err), 0);
		ck_assert_uint_gt(len, 0);
		ck_assert_int_eq(memcmp(got, data + have, len), 0);
		have += len;
		free(got);
	}
	t0 = now_ms();
	ck_assert_int_eq(sr_receive(s, 16384, 0, &got, &len, &err), -1);
	took = now_ms() - t0;
	assert_err(err, SR_ETIMEDOUT, ETIMEDOUT, "receive timed out after 300 ms");
	ck_assert_msg(took >= 280 && took < 3000, "receive failed after %lld ms", took);
	/* Data that comes later is still received. */
	ck_assert_int_eq(write(fd, "late", 4), 4);
	got = receive_exact(s, 4);
	ck_assert_str_eq(got, "late");
	free(got);
	close(fd);
	close(lfd);
	free(data);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

/* MSG_DONTWAIT makes one call on a blocking socket answer at once. */
START_TEST(dont_wait_receive_answers_at_once)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	struct server srv;
	sr_error err;
	long long t0;
	size_t len;
	char *got;

	server_start(&srv, AF_INET, SERVER_SILENT, 0);
	connect_ok(s, "127.0.0.1", srv.port);
	t0 = now_ms();
	ck_assert_int_eq(sr_receive(s, 10, MSG_DONTWAIT, &got, &len, &err), -1);
	assert_err(err, SR_EWOULDBLOCK, EAGAIN, "would block");
	ck_assert_int_lt(now_ms() - t0, 1000);
	ck_assert(sr_socket_state(s)->is_blocking);
	sr_socket_free(s);
	sr_client_close(c);
	server_stop(&srv);
}
END_TEST

Suite *
bulk_suite(void)
{
	Suite *s = suite_create("bulk");
	TCase *tc = tcase_create("bulk");

	tcase_add_checked_fixture(tc, fixture_daemon_up, fixture_daemon_down);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, sends_behind_arrive_whole_through_close);
	tcase_add_test(tc, shutdown_after_sends_delivers_then_ends);
	tcase_add_test(tc, reset_peer_shows_in_a_later_send);
	tcase_add_test(tc, close_gives_up_on_a_peer_that_never_reads);
	tcase_add_test(tc, close_from_another_thread_ends_a_stuck_sender);
	tcase_add_test(tc, receives_ahead_keep_order_through_peek_and_read);
	tcase_add_test(tc, large_receives_stay_whole_when_the_client_lags);
	tcase_add_test(tc, large_receive_reports_a_reset);
	tcase_add_test(tc, receive_timeout_holds_after_read_ahead);
	tcase_add_test(tc, dont_wait_receive_answers_at_once);
	suite_add_tcase(s, tc);
	return s;
}
