/*
 * test_payload.c - a send's data is not copied out of the frame it came in (payload.h):
 * the daemon finds it in any place of the request, keeps the last of two, copies it when
 * the send must wait for its socket (the frame's buffer is then reused), sends the Send
 * frames it reads together in one sendmsg per handle without changing what each call
 * answers, and still refuses a request that does not decode. Raw frames, as another client library
 * may write them, to a plain loopback peer that reads what the daemon sent.
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
	int fd;      /* the session */
	int64_t h;   /* the handle */
	int peer;    /* the accepted loopback connection */
	uint64_t id; /* the next call id */
};

/* Creates a TCP handle in c's session, connected to a loopback peer; returns the handle
 * and puts the peer's end in *peer. */
static int64_t
connect_handle(struct conn *c, int peer_rcvbuf, int *peer)
{
	int port, lfd = plain_listener(1, &port);
	int64_t h;

	if (peer_rcvbuf > 0) /* inherited by the accepted socket: keeps the window small */
		ck_assert_int_eq(
		    setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &peer_rcvbuf, sizeof(peer_rcvbuf)), 0);
	h = rc_socket(c->fd, c->id++, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	rc_connect_loopback(c->fd, c->fd, c->id++, h, port);
	*peer = accept(lfd, NULL, NULL);
	ck_assert_int_ge(*peer, 0);
	close(lfd);
	return h;
}

static struct conn
conn_open(int peer_rcvbuf)
{
	struct conn c = {.id = 1};

	c.fd = raw_session(test_daemon.path);
	c.h = connect_handle(&c, peer_rcvbuf, &c.peer);
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

/* Reads n bytes from a peer (each part within 10 s) and asserts they are `want`. */
static void
read_expect(int peer, const uint8_t *want, size_t n)
{
	uint8_t *got = malloc(n);
	struct pollfd pfd = {.fd = peer, .events = POLLIN};
	size_t have = 0;

	while (have < n) {
		ssize_t r;

		ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
		r = read(peer, got + have, n - have);
		ck_assert_int_gt(r, 0);
		have += (size_t)r;
	}
	ck_assert_mem_eq(got, want, n);
	free(got);
}

static void
peer_expect(struct conn *c, const uint8_t *want, size_t n)
{
	read_expect(c->peer, want, n);
}

/* Appends a Send frame of data[0, len) on handle h (flags: wire message flags). */
static size_t
put_send(uint8_t *out, uint64_t id, int64_t h, const uint8_t *data, size_t len, uint32_t flags)
{
	Sockrpc__SendRequest rq = SOCKRPC__SEND_REQUEST__INIT;

	rq.handle = h;
	rq.data.data = (uint8_t *)(uintptr_t)data;
	rq.data.len = len;
	rq.flags = flags;
	return rc_frame(out, M_SEND, id, &rq.base);
}

START_TEST(payload_in_any_place_of_the_request)
{
	struct conn c = conn_open(0);
	size_t sizes[] = {100, SR_PAYLOAD_BY_REFERENCE_MIN, 70000};
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
	struct pollfd pfd = {.fd = c.fd, .events = POLLIN};
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

/*
 * Send frames written at once are read together and leave in one sendmsg per handle:
 * sizes below and above the borrowing threshold, every byte in order, every call
 * answered with its own count.
 */
START_TEST(sends_written_together_leave_in_order)
{
	static const size_t sizes[] = {1, 5000, 65536, 100, 4096, 70000, 65536, 3, 65536, 20000};
	enum { ROUNDS = 5, N = ROUNDS * (int)(sizeof(sizes) / sizeof(sizes[0])) };
	struct conn c = conn_open(0);
	size_t total = 0, off = 0, n = 0;
	uint64_t first_id = c.id;
	uint8_t *data, *buf;

	for (int i = 0; i < N; i++)
		total += sizes[i % 10];
	data = pattern(total, 7);
	buf = malloc(total + (size_t)N * 64);
	for (int i = 0; i < N; i++) {
		n += put_send(buf + n, c.id++, c.h, data + off, sizes[i % 10], 0);
		off += sizes[i % 10];
	}
	raw_write(c.fd, buf, n);
	peer_expect(&c, data, total);
	for (int i = 0; i < N; i++)
		expect_sent(&c, first_id + (uint64_t)i, sizes[i % 10]);
	free(buf);
	free(data);
	conn_close(&c);
}
END_TEST

/*
 * Sends on two handles, interleaved and written at once, then a shutdown of the first
 * and one more send on the second: each peer gets its own bytes in order, and the first
 * peer sees end of stream only after all of its bytes (the shutdown ends the batch).
 */
START_TEST(batched_sends_on_two_handles_then_a_shutdown)
{
	enum { SIZE = 30000 };
	struct conn c = conn_open(0);
	Sockrpc__ShutdownRequest sh = SOCKRPC__SHUTDOWN_REQUEST__INIT;
	int peer2;
	int64_t h2 = connect_handle(&c, 0, &peer2);
	uint8_t *a = pattern(2 * SIZE, 1), *b = pattern(3 * SIZE, 2), buf[6 * (SIZE + 64)];
	uint64_t first_id = c.id;
	bool answered[6] = {false};
	size_t n = 0;
	char end;

	n += put_send(buf + n, c.id++, c.h, a, SIZE, 0);
	n += put_send(buf + n, c.id++, h2, b, SIZE, 0);
	n += put_send(buf + n, c.id++, c.h, a + SIZE, SIZE, 0);
	n += put_send(buf + n, c.id++, h2, b + SIZE, SIZE, 0);
	sh.handle = c.h;
	sh.how = SOCKRPC__SHUTDOWN__SHUT_WR;
	n += rc_frame(buf + n, M_SHUTDOWN, c.id++, &sh.base);
	n += put_send(buf + n, c.id++, h2, b + 2 * SIZE, SIZE, 0);
	raw_write(c.fd, buf, n);
	read_expect(c.peer, a, 2 * SIZE);
	ck_assert_int_eq(read(c.peer, &end, 1), 0);
	read_expect(peer2, b, 3 * SIZE);
	/* Handles complete independently: replies of different handles may interleave. */
	for (int i = 0; i < 6; i++) {
		uint64_t id;
		ProtobufCMessage *m = rc_reply(c.fd, &id, NULL, 5000);

		ck_assert_ptr_nonnull(m);
		ck_assert(id >= first_id && id < first_id + 6 && !answered[id - first_id]);
		ck_assert_msg(rc_code(m) == 0, "call %llu: %s", (unsigned long long)id,
		              rc_message(m));
		answered[id - first_id] = true;
		protobuf_c_message_free_unpacked(m, NULL);
	}
	free(a);
	free(b);
	close(peer2);
	conn_close(&c);
}
END_TEST

/*
 * A MSG_DONTWAIT send between two others on the same handle, all written at once: the
 * sends before it are not yet done only because of the batch, so it must not be answered
 * EWOULDBLOCK ("another call is in progress"); all three go out, in order.
 */
START_TEST(dontwait_send_inside_a_batch)
{
	enum { SIZE = 5000 };
	struct conn c = conn_open(0);
	uint8_t *data = pattern(3 * SIZE, 4), buf[3 * (SIZE + 64)];
	uint64_t first_id = c.id;
	size_t n = 0;

	n += put_send(buf + n, c.id++, c.h, data, SIZE, 0);
	n += put_send(buf + n, c.id++, c.h, data + SIZE, SIZE, SOCKRPC__MESSAGE_FLAG__MSG_DONTWAIT);
	n += put_send(buf + n, c.id++, c.h, data + 2 * SIZE, SIZE, 0);
	raw_write(c.fd, buf, n);
	for (int i = 0; i < 3; i++)
		expect_sent(&c, first_id + (uint64_t)i, SIZE);
	peer_expect(&c, data, 3 * SIZE);
	free(data);
	conn_close(&c);
}
END_TEST

/*
 * 64 KiB sends written at once to a peer with a small window that reads nothing yet:
 * a batch's sendmsg takes part of its sends, the rest wait with their payloads copied
 * (the batch's frames are drained), and every byte then arrives in order.
 */
START_TEST(batched_sends_that_must_wait)
{
	enum { N = 100, SIZE = 65536 };
	struct conn c = conn_open(4096);
	uint8_t *data = pattern((size_t)N * SIZE, 9), *buf = malloc((size_t)N * (SIZE + 64));
	uint64_t first_id = c.id;
	struct pollfd pfd = {.fd = c.fd, .events = POLLIN};
	int replies_before_reading = 0;
	size_t n = 0;

	for (int i = 0; i < N; i++)
		n += put_send(buf + n, c.id++, c.h, data + (size_t)i * SIZE, SIZE, 0);
	raw_write(c.fd, buf, n);
	while (poll(&pfd, 1, 300) == 1) {
		expect_sent(&c, first_id + (uint64_t)replies_before_reading, SIZE);
		replies_before_reading++;
	}
	ck_assert_int_lt(replies_before_reading, N);
	peer_expect(&c, data, (size_t)N * SIZE);
	for (int i = replies_before_reading; i < N; i++)
		expect_sent(&c, first_id + (uint64_t)i, SIZE);
	free(buf);
	free(data);
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
	tcase_add_test(tc, sends_written_together_leave_in_order);
	tcase_add_test(tc, batched_sends_on_two_handles_then_a_shutdown);
	tcase_add_test(tc, dontwait_send_inside_a_batch);
	tcase_add_test(tc, batched_sends_that_must_wait);
	tcase_add_test(tc, payload_past_the_end_is_refused);
	suite_add_tcase(s, tc);
	return s;
}
