/*
 * test_payload.c - a send's data is not copied out of the frame it came in (payload.h):
 * the daemon finds it in any place of the request, keeps the last of two, copies it when
 * the send must wait for its socket (the frame's buffer is then reused), and still
 * refuses a request that does not decode. Raw frames, as another client library may
 * write them, to a plain loopback peer that reads what the daemon sent.
 */
#include <check.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "payload.h"
#include "rawcall.h"
#include "sockets.h"

/* A raw session with a connected TCP handle and the peer's end of it. */
struct conn {
	int fd;       /* the session */
	int64_t h;    /* the handle */
	int peer;     /* the accepted loopback connection */
	uint64_t id;  /* the next call id */
};

static struct conn
conn_open(int peer_rcvbuf)
{
	struct conn c = { .id = 1 };
	int port, lfd = plain_listener(1, &port);

	if (peer_rcvbuf > 0) /* inherited by the accepted socket: keeps the window small */
		ck_assert_int_eq(setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &peer_rcvbuf,
		                            sizeof(peer_rcvbuf)), 0);
	c.fd = raw_session(test_daemon.path);
	c.h = rc_socket(c.fd, c.id++, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	rc_connect_loopback(c.fd, c.fd, c.id++, c.h, port);
	c.peer = accept(lfd, NULL, NULL);
	ck_assert_int_ge(c.peer, 0);
	close(lfd);
	return c;
}

static void
conn_close(struct conn *c)
{
	close(c->peer);
	close(c->fd);
}

static uint8_t *
pattern(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n);

	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 37 + i % 241);
	return p;
}

/* Appends a field to a body being built. */
static size_t
put_varint_field(uint8_t *at, unsigned field, uint64_t v)
{
	size_t n = sr_varint_put(at, (uint64_t)field << 3);

	return n + sr_varint_put(at + n, v);
}

static size_t
put_bytes_field(uint8_t *at, unsigned field, const uint8_t *data, size_t len)
{
	size_t n = sr_payload_key(at, field, len);

	memcpy(at + n, data, len);
	return n + len;
}

static void
send_body(struct conn *c, uint64_t id, const uint8_t *body, size_t len)
{
	rc_header(c->fd, (uint32_t)len, M_SEND, 0, id);
	raw_write(c->fd, body, len);
}

/* Reads a Send's reply and asserts it sent `want` bytes. */
static void
expect_sent(struct conn *c, uint64_t id, size_t want)
{
	uint64_t got_id;
	unsigned method;
	ProtobufCMessage *m = rc_reply(c->fd, &got_id, &method, 5000);
	Sockrpc__SendReply *r = (Sockrpc__SendReply *)m;

	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(got_id, id);
	ck_assert_uint_eq(method, M_SEND);
	ck_assert_msg(rc_code(m) == 0, "send failed: %s", rc_message(m));
	ck_assert_int_eq(r->sent, (int64_t)want);
	protobuf_c_message_free_unpacked(m, NULL);
}

/* Reads n bytes from the peer (each part within 10 s) and asserts they are `want`. */
static void
peer_expect(struct conn *c, const uint8_t *want, size_t n)
{
	uint8_t *got = malloc(n);
	struct pollfd pfd = { .fd = c->peer, .events = POLLIN };
	size_t have = 0;

	while (have < n) {
		ssize_t r;

		ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
		r = read(c->peer, got + have, n - have);
		ck_assert_int_gt(r, 0);
		have += (size_t)r;
	}
	ck_assert_mem_eq(got, want, n);
	free(got);
}

START_TEST(payload_in_any_place_of_the_request)
{
	struct conn c = conn_open(0);
	size_t sizes[] = { 100, SR_PAYLOAD_BY_REFERENCE_MIN, 70000 };
	uint8_t *body = malloc(80000);

	for (unsigned i = 0; i < 3; i++) {
		for (unsigned place = 0; place < 3; place++) {
			uint8_t *data = pattern(sizes[i], i * 3 + place);
			uint64_t id = c.id++;
			size_t len = 0;

			/* data first, between handle and flags, or last */
			if (place == 0)
				len += put_bytes_field(body + len, 2, data, sizes[i]);
			len += put_varint_field(body + len, 1, (uint64_t)c.h);
			if (place == 1)
				len += put_bytes_field(body + len, 2, data, sizes[i]);
			len += put_varint_field(body + len, 3, 0);
			if (place == 2)
				len += put_bytes_field(body + len, 2, data, sizes[i]);
			send_body(&c, id, body, len);
			expect_sent(&c, id, sizes[i]);
			peer_expect(&c, data, sizes[i]);
			free(data);
		}
	}
	free(body);
	conn_close(&c);
}
END_TEST

START_TEST(last_of_two_payloads_is_sent)
{
	struct conn c = conn_open(0);
	uint8_t *first = pattern(9000, 1), *second = pattern(5000, 2), *body = malloc(16000);
	uint64_t id = c.id++;
	size_t len = 0;

	len += put_bytes_field(body + len, 2, first, 9000);
	len += put_varint_field(body + len, 1, (uint64_t)c.h);
	len += put_bytes_field(body + len, 2, second, 5000);
	send_body(&c, id, body, len);
	expect_sent(&c, id, 5000);
	peer_expect(&c, second, 5000);
	free(first);
	free(second);
	free(body);
	conn_close(&c);
}
END_TEST

/*
 * Sends that cannot go at once (the peer reads nothing yet, and its window is small) wait
 * with their payloads copied: the frames after them are read into the same buffer. Every
 * byte then arrives, in order.
 */
START_TEST(payload_of_a_waiting_send_is_kept)
{
	enum { N = 6, SIZE = 1 << 20 };
	struct conn c = conn_open(4096);
	uint8_t *data[N];
	uint64_t first_id = c.id;
	Sockrpc__SendRequest rq = SOCKRPC__SEND_REQUEST__INIT;
	struct pollfd pfd = { .fd = c.fd, .events = POLLIN };
	int replies_before_reading = 0;

	rq.handle = c.h;
	for (int i = 0; i < N; i++) {
		data[i] = pattern(SIZE, 10 + (unsigned)i);
		rq.data.data = data[i];
		rq.data.len = SIZE;
		raw_send(c.fd, M_SEND, c.id++, &rq.base);
	}
	/* Not all of 6 MiB fits in the buffers of a peer that reads nothing. */
	while (poll(&pfd, 1, 300) == 1) {
		expect_sent(&c, first_id + (uint64_t)replies_before_reading, SIZE);
		replies_before_reading++;
	}
	ck_assert_int_lt(replies_before_reading, N);
	for (int i = 0; i < N; i++) {
		peer_expect(&c, data[i], SIZE);
		free(data[i]);
	}
	for (int i = replies_before_reading; i < N; i++)
		expect_sent(&c, first_id + (uint64_t)i, SIZE);
	conn_close(&c);
}
END_TEST

START_TEST(payload_past_the_end_is_refused)
{
	struct conn c = conn_open(0);
	uint8_t *data = pattern(8000, 3), *body = malloc(9000);
	size_t len = 0;

	ck_assert_int_lt(c.h, 128); /* a one-byte varint: the payload's length is at 3 */
	len += put_varint_field(body + len, 1, (uint64_t)c.h);
	len += put_bytes_field(body + len, 2, data, 8000);
	/* The length now claims a byte more than the frame holds (8001 takes 2 bytes too). */
	ck_assert_uint_eq(sr_varint_put(body + 3, 8001), 2);
	send_body(&c, c.id++, body, len);
	rc_expect_refused(c.fd);
	free(data);
	free(body);
	conn_close(&c);
	assert_daemon_serves(&test_daemon);
}
END_TEST

Suite *
payload_suite(void)
{
	Suite *s = suite_create("payload");
	TCase *tc = tcase_create("payload");

	signal(SIGPIPE, SIG_IGN);
	tcase_add_checked_fixture(tc, fixture_daemon_up, fixture_daemon_down_serving);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, payload_in_any_place_of_the_request);
	tcase_add_test(tc, last_of_two_payloads_is_sent);
	tcase_add_test(tc, payload_of_a_waiting_send_is_kept);
	tcase_add_test(tc, payload_past_the_end_is_refused);
	suite_add_tcase(s, tc);
	return s;
}
