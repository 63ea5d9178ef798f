/*
 * test_bad_input.c - what a hostile or broken client may send: malformed frames and
 * out-of-range values. Every case ends in a clear error reply or a clean close, the
 * daemon keeps serving a second, well-behaved client, and (the fixture) its fd count
 * returns to idle.
 */
#include <check.h>
#include <poll.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "rawcall.h"

static const int any_refusal[] = {SOCKRPC__CODE__EINVAL, SOCKRPC__CODE__EUNSUPPORTED, -1};

/* A resolver that can only ask the loopback: host names in these tests never leave it. */
static void
fixture_up(void)
{
	static char conf[128], opt_resolv[] = "--resolv-conf";
	const char *extra[] = {opt_resolv, conf, NULL};
	FILE *f;

	signal(SIGPIPE, SIG_IGN);
	snprintf(conf, sizeof(conf), "/tmp/sockrpc-bad-input-resolv.%d", (int)getpid());
	f = fopen(conf, "w");
	ck_assert_ptr_nonnull(f);
	fputs("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n", f);
	fclose(f);
	daemon_start(&test_daemon, extra);
}

static void
fixture_down(void)
{
	char conf[128];

	fixture_daemon_down_serving();
	snprintf(conf, sizeof(conf), "/tmp/sockrpc-bad-input-resolv.%d", (int)getpid());
	unlink(conf);
}

static int
hello_session(void)
{
	return raw_session(test_daemon.path);
}

/* --- frames --- */

START_TEST(length_zero_hello_is_version_zero)
{
	int fd = raw_connect(test_daemon.path);

	rc_header(fd, 0, M_HELLO, 0, 7);
	rc_expect(fd, 7, SOCKRPC__CODE__EPROTO);
	ck_assert(raw_closed(fd, 5000));
	close(fd);
}
END_TEST

START_TEST(length_zero_request_after_hello_is_a_valid_empty_message)
{
	int fd = hello_session();

	/* Every field at its default: handle 0, which no session ever has. */
	for (unsigned m = M_CONNECT; m < M_COUNT; m++) {
		if (m == M_GET_ADDRESS_INFO)
			continue;
		rc_header(fd, 0, (uint16_t)m, 0, 100 + m);
		rc_expect(fd, 100 + m, SOCKRPC__CODE__EBADHANDLE);
	}
	rc_header(fd, 0, M_GET_ADDRESS_INFO, 0, 200);
	rc_expect(fd, 200, SOCKRPC__CODE__EINVAL);
	rc_header(fd, 0, M_SOCKET, 0, 201); /* UNSPEC family: the OS says EAFNOSUPPORT */
	rc_expect_any(fd, 201, (const int[]){SOCKRPC__CODE__EINVAL, SOCKRPC__CODE__EOS, -1});
	close(fd);
}
END_TEST

START_TEST(length_over_maximum)
{
	static const uint32_t lengths[] = {SR_MAX_FRAME + 1, 0x7fffffffu, 0x80000000u, 0xffffffffu};

	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		int fd = raw_connect(test_daemon.path);

		rc_header(fd, lengths[i], M_HELLO, 0, 1);
		rc_expect_refused(fd);
		close(fd);
		fd = hello_session();
		rc_header(fd, lengths[i], M_SEND, 0, 2);
		rc_expect_refused(fd);
		close(fd);
	}
}
END_TEST

START_TEST(length_at_maximum_is_accepted)
{
	Sockrpc__InfoRequest rq = SOCKRPC__INFO_REQUEST__INIT;
	int fd = hello_session();

	rq.handle = 5;
	/* Pad to exactly SR_MAX_FRAME bytes: 2 (handle) + 1 (tag) + 3 (length) + pad. */
	rc_send_padded(fd, M_INFO, 3, &rq.base, SR_MAX_FRAME - 6);
	rc_expect(fd, 3, SOCKRPC__CODE__EBADHANDLE);
	close(fd);
}
END_TEST

START_TEST(truncated_header_then_disconnect)
{
	for (int n = 1; n < SR_FRAME_HEADER_SIZE; n++) {
		int fd = n % 2 ? raw_connect(test_daemon.path) : hello_session();
		uint8_t hdr[SR_FRAME_HEADER_SIZE] = {0, 0, 0, 4, 0, 1, 0, 0,
		                                     0, 0, 0, 0, 0, 0, 0, 9};

		raw_write(fd, hdr, (size_t)n);
		close(fd);
	}
	ck_assert_int_eq(daemon_wait_fds(&test_daemon, test_daemon.idle_fds, HARNESS_IDLE_MS),
	                 test_daemon.idle_fds);
}
END_TEST

/* A client that connects and never says Hello (or stops half-way through it) loses its
 * session after the daemon's Hello timeout (HELLO_TIMEOUT_MS: 3 s), so it cannot hold a
 * slot for long. */
START_TEST(silent_client_is_dropped_before_hello)
{
	int silent = raw_connect(test_daemon.path), dripping = raw_connect(test_daemon.path);
	uint8_t hdr[4] = {0, 0, 0, 2};
	struct pollfd p = {.fd = silent, .events = POLLIN};
	char byte;

	raw_write(dripping, hdr, sizeof(hdr));
	ck_assert_int_eq(poll(&p, 1, 15000), 1);
	ck_assert_int_eq(read(silent, &byte, 1), 0); /* the daemon hung up */
	p.fd = dripping;
	ck_assert_int_eq(poll(&p, 1, 5000), 1);
	ck_assert_int_eq(read(dripping, &byte, 1), 0);
	close(silent);
	close(dripping);
	assert_daemon_serves(&test_daemon);
}
END_TEST

START_TEST(truncated_body_then_disconnect)
{
	static const uint32_t claims[] = {10, 4096, SR_MAX_FRAME};
	char *junk = calloc(1, SR_MAX_FRAME);

	ck_assert_ptr_nonnull(junk);
	for (size_t i = 0; i < sizeof(claims) / sizeof(claims[0]); i++) {
		int fd = hello_session();

		rc_header(fd, claims[i], M_SEND, 0, 2);
		raw_write(fd, junk, claims[i] - 1);
		close(fd);
	}
	free(junk);
	ck_assert_int_eq(daemon_wait_fds(&test_daemon, test_daemon.idle_fds, HARNESS_IDLE_MS),
	                 test_daemon.idle_fds);
}
END_TEST

START_TEST(reserved_flag_bits)
{
	for (int bit = 1; bit < 16; bit++) {
		int fd = bit % 2 ? raw_connect(test_daemon.path) : hello_session();

		rc_header(fd, 0, M_INFO, (uint16_t)(1u << bit), 3);
		rc_expect_refused(fd);
		close(fd);
	}
}
END_TEST

START_TEST(reply_flag_from_client)
{
	int fd = hello_session();

	rc_header(fd, 0, M_INFO, SR_FRAME_FLAG_REPLY, 3);
	rc_expect_refused(fd);
	close(fd);
	fd = raw_connect(test_daemon.path);
	rc_header(fd, 0, M_HELLO, SR_FRAME_FLAG_REPLY | 0x8000, 3);
	rc_expect_refused(fd);
	close(fd);
}
END_TEST

START_TEST(unknown_method_index)
{
	static const uint16_t methods[] = {M_COUNT, M_COUNT + 1, 0x7fff, 0xffff};

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		int fd = i % 2 ? raw_connect(test_daemon.path) : hello_session();

		rc_header(fd, 0, methods[i], 0, 3);
		rc_expect_refused(fd);
		close(fd);
	}
}
END_TEST

START_TEST(message_does_not_decode)
{
	/* A truncated varint, a length past the end, a group tag, a field number 0. */
	static const uint8_t bodies[][6] = {
	    {0x08, 0xff, 0xff, 0xff, 0xff, 0xff},
	    {0x12, 0x7f, 'a', 'b', 'c', 'd'},
	    {0x0b, 0x0c, 0x00, 0x00, 0x00, 0x00},
	    {0x00, 0x01, 0x00, 0x00, 0x00, 0x00},
	};

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		for (unsigned m = 0; m < M_COUNT; m += 5) {
			int fd = m ? hello_session() : raw_connect(test_daemon.path);

			rc_header(fd, sizeof(bodies[i]), (uint16_t)m, 0, 4);
			raw_write(fd, bodies[i], sizeof(bodies[i]));
			rc_expect_refused(fd);
			close(fd);
		}
	}
}
END_TEST

START_TEST(valid_message_for_the_wrong_method)
{
	Sockrpc__SendRequest send = SOCKRPC__SEND_REQUEST__INIT;
	Sockrpc__SocketRequest sock = SOCKRPC__SOCKET_REQUEST__INIT;
	Sockrpc__HelloRequest hello = SOCKRPC__HELLO_REQUEST__INIT;
	int fd = hello_session();
	int64_t h = rc_socket(fd, 2, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	uint64_t id = 10;

	send.handle = h;
	send.data.data = (uint8_t *)"hello";
	send.data.len = 5;
	sock.family = SOCKRPC__FAMILY__FAMILY_INET6;
	sock.type = SOCKRPC__TYPE__TYPE_DGRAM;
	hello.major = 1;
	hello.client_name = "x";
	/* Each message sent as every other method: whatever it decodes to, the answer is a
	 * reply (any status) or a clean close, never a crash. */
	const ProtobufCMessage *msgs[] = {&send.base, &sock.base, &hello.base};
	for (size_t i = 0; i < 3; i++) {
		for (unsigned m = 1; m < M_COUNT; m++) {
			ProtobufCMessage *r;
			uint64_t got;

			if (m == M_ACCEPT || m == M_RECEIVE || m == M_READ || m == M_RECEIVE_FROM ||
			    m == M_CONNECT || m == M_GET_ADDRESS_INFO || m == M_CLOSE)
				continue; /* may wait or tear down the handle: covered elsewhere */
			raw_send(fd, m, ++id, msgs[i]);
			r = rc_reply(fd, &got, NULL, 5000);
			ck_assert_msg(r != NULL, "no reply to %s sent as method %u",
			              msgs[i]->descriptor->name, m);
			ck_assert_uint_eq(got, id);
			if (rc_code(r) == SOCKRPC__CODE__EPROTO) {
				/* A wire-type clash does not decode: refused, then closed. */
				ck_assert(raw_closed(fd, 5000));
				close(fd);
				fd = hello_session();
				send.handle = rc_socket(fd, 2, SOCKRPC__FAMILY__FAMILY_INET,
				                        SOCKRPC__TYPE__TYPE_STREAM);
			}
			protobuf_c_message_free_unpacked(r, NULL);
		}
	}
	close(fd);
}
END_TEST

START_TEST(request_before_hello)
{
	for (unsigned m = 1; m < M_COUNT; m++) {
		int fd = raw_connect(test_daemon.path);

		rc_header(fd, 0, (uint16_t)m, 0, 5);
		rc_expect_refused(fd);
		close(fd);
	}
}
END_TEST

START_TEST(second_hello)
{
	Sockrpc__HelloRequest hello = SOCKRPC__HELLO_REQUEST__INIT;
	Sockrpc__GetOptionRequest go = SOCKRPC__GET_OPTION_REQUEST__INIT;
	int fd = hello_session();
	int64_t h = rc_socket(fd, 2, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);

	hello.major = SR_PROTOCOL_MAJOR;
	hello.client_name = "again";
	raw_send(fd, M_HELLO, 3, &hello.base);
	rc_expect(fd, 3, SOCKRPC__CODE__EPROTO);
	/* A refused well-formed request leaves the session usable. */
	go.handle = h;
	go.option = SOCKRPC__OPTION__SO_TYPE;
	raw_send(fd, M_GET_OPTION, 4, &go.base);
	rc_expect(fd, 4, 0);
	/* A different major version in the second Hello changes nothing either. */
	hello.major = 99;
	raw_send(fd, M_HELLO, 5, &hello.base);
	rc_expect(fd, 5, SOCKRPC__CODE__EPROTO);
	raw_send(fd, M_GET_OPTION, 6, &go.base);
	rc_expect(fd, 6, 0);
	close(fd);
}
END_TEST

START_TEST(wrong_major_version)
{
	Sockrpc__HelloRequest hello = SOCKRPC__HELLO_REQUEST__INIT;
	int fd = raw_connect(test_daemon.path);

	hello.major = 2;
	raw_send(fd, M_HELLO, 1, &hello.base);
	rc_expect_refused(fd);
	close(fd);
}
END_TEST

/* Writes buf one byte per send(). */
static void
drip(int fd, const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		raw_write(fd, buf + i, 1);
		if (i % 7 == 0)
			usleep(200);
	}
}

START_TEST(slow_drip_one_byte_per_write)
{
	Sockrpc__HelloRequest hello = SOCKRPC__HELLO_REQUEST__INIT;
	Sockrpc__SocketRequest sock = SOCKRPC__SOCKET_REQUEST__INIT;
	Sockrpc__GetOptionRequest go = SOCKRPC__GET_OPTION_REQUEST__INIT;
	uint8_t buf[1024];
	size_t n = 0;
	int fd = raw_connect(test_daemon.path);

	hello.major = SR_PROTOCOL_MAJOR;
	hello.client_name = "drip";
	sock.family = SOCKRPC__FAMILY__FAMILY_INET;
	sock.type = SOCKRPC__TYPE__TYPE_STREAM;
	go.handle = 1;
	go.option = SOCKRPC__OPTION__SO_TYPE;
	n += rc_frame(buf + n, M_HELLO, 1, &hello.base);
	n += rc_frame(buf + n, M_SOCKET, 2, &sock.base);
	n += rc_frame(buf + n, M_GET_OPTION, 3, &go.base);
	n += rc_frame(buf + n, M_GET_OPTION, 4, &go.base);
	drip(fd, buf, n);
	rc_expect(fd, 1, 0);
	rc_expect(fd, 2, 0);
	rc_expect(fd, 3, 0);
	rc_expect(fd, 4, 0);
	/* A frame dripped halfway, then the client goes away. */
	n = rc_frame(buf, M_GET_OPTION, 5, &go.base);
	drip(fd, buf, n - 1);
	close(fd);
}
END_TEST

struct pipeline {
	int fd;
	int64_t h[2];
	int n;
};

static void *
pipeline_writer(void *arg)
{
	struct pipeline *p = arg;
	Sockrpc__GetOptionRequest go = SOCKRPC__GET_OPTION_REQUEST__INIT;
	Sockrpc__SetOptionRequest so = SOCKRPC__SET_OPTION_REQUEST__INIT;
	Sockrpc__SendRequest sd = SOCKRPC__SEND_REQUEST__INIT;
	uint8_t *buf = malloc((size_t)p->n * 64), *q = buf;

	for (int i = 0; i < p->n; i++) {
		int64_t h = p->h[i % 2];
		uint64_t id = 1000 + (uint64_t)i;

		switch (i % 3) {
		case 0:
			go.handle = h;
			go.option = SOCKRPC__OPTION__SO_RCVBUF;
			q += rc_frame(q, M_GET_OPTION, id, &go.base);
			break;
		case 1:
			so.handle = h;
			so.option = SOCKRPC__OPTION__SO_KEEPALIVE;
			so.value = i % 2;
			q += rc_frame(q, M_SET_OPTION, id, &so.base);
			break;
		default:
			sd.handle = h;
			sd.data.data = (uint8_t *)"x";
			sd.data.len = 1;
			q += rc_frame(q, M_SEND, id, &sd.base);
			break;
		}
	}
	raw_write(p->fd, buf, (size_t)(q - buf));
	free(buf);
	return NULL;
}

START_TEST(ten_thousand_pipelined_calls)
{
	Sockrpc__ConnectRequest cr = SOCKRPC__CONNECT_REQUEST__INIT;
	struct pipeline p = {.n = 10000};
	struct server srv;
	pthread_t t;
	uint64_t last[2] = {0, 0};
	int answered = 0;

	server_start(&srv, AF_INET, SERVER_SINK, 0);
	p.fd = hello_session();
	for (int i = 0; i < 2; i++) {
		p.h[i] =
		    rc_socket(p.fd, 2, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
		cr.handle = p.h[i];
		cr.host = "127.0.0.1";
		cr.port = srv.port;
		cr.timeout_ms = 5000;
		raw_send(p.fd, M_CONNECT, 3, &cr.base);
		rc_expect(p.fd, 3, 0);
	}
	ck_assert_int_eq(pthread_create(&t, NULL, pipeline_writer, &p), 0);
	while (answered < p.n) {
		uint64_t id;
		ProtobufCMessage *m = rc_reply(p.fd, &id, NULL, 10000);
		int which;

		ck_assert_msg(m != NULL, "only %d of %d calls answered", answered, p.n);
		ck_assert_msg(rc_code(m) == 0, "call %llu: %s", (unsigned long long)id,
		              rc_message(m));
		ck_assert(id >= 1000 && id < 1000 + (uint64_t)p.n);
		which = (int)((id - 1000) % 2);
		ck_assert_ptr_nonnull(rc_state(m));
		ck_assert_int_eq(rc_state(m)->id, p.h[which]);
		ck_assert_msg(id > last[which], "handle %d: reply %llu after %llu", which,
		              (unsigned long long)id, (unsigned long long)last[which]);
		last[which] = id;
		protobuf_c_message_free_unpacked(m, NULL);
		answered++;
	}
	pthread_join(t, NULL);
	ck_assert_uint_eq(server_wait_received(&srv, (size_t)p.n / 3, 5000), (size_t)p.n / 3);
	close(p.fd);
	server_stop(&srv);
}
END_TEST

/* --- values --- */

static void
call_on_handle(int fd, unsigned method, int64_t handle, uint64_t id, int code)
{
	/* Every request with a handle has it as field 1 (int64). */
	const ProtobufCMessageDescriptor *d = sockrpc__sock_rpc__descriptor.methods[method].input;
	ProtobufCMessage *m = calloc(1, d->sizeof_message);
	const ProtobufCFieldDescriptor *f;

	ck_assert_ptr_nonnull(m);
	d->message_init(m);
	f = protobuf_c_message_descriptor_get_field(d, 1);
	ck_assert(f != NULL && f->type == PROTOBUF_C_TYPE_INT64);
	*(int64_t *)((char *)m + f->offset) = handle;
	/* Fields a call needs to get past its own checks to the handle lookup. */
	if (method == M_CONNECT || method == M_BIND || method == M_SEND_TO)
		*(int32_t *)((char *)m +
		             protobuf_c_message_descriptor_get_field(d, method == M_BIND ? 2 : 3)
		                 ->offset) = 80;
	raw_send(fd, method, id, m);
	free(m);
	rc_expect(fd, id, code);
}

static const unsigned handle_methods[] = {M_CONNECT,  M_BIND,       M_LISTEN,      M_ACCEPT,
                                          M_SEND,     M_RECEIVE,    M_READ,        M_CLOSE,
                                          M_SHUTDOWN, M_SET_OPTION, M_GET_OPTION,  M_SET_BLOCKING,
                                          M_INFO,     M_SEND_TO,    M_RECEIVE_FROM};
#define N_HANDLE_METHODS (sizeof(handle_methods) / sizeof(handle_methods[0]))

START_TEST(unknown_handles)
{
	static const int64_t ids[] = {0, -1, 2, 1000000, INT64_MAX, INT64_MIN, (int64_t)1 << 32};
	int fd = hello_session();
	uint64_t id = 10;

	rc_socket(fd, 2, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM); /* id 1 */
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		for (size_t m = 0; m < N_HANDLE_METHODS; m++)
			call_on_handle(fd, handle_methods[m], ids[i], ++id,
			               SOCKRPC__CODE__EBADHANDLE);
	close(fd);
}
END_TEST

START_TEST(handles_of_another_session)
{
	Sockrpc__GetOptionRequest go = SOCKRPC__GET_OPTION_REQUEST__INIT;
	int a = hello_session(), b = hello_session();
	int64_t ha[3];
	uint64_t id = 10;

	for (int i = 0; i < 3; i++)
		ha[i] = rc_socket(a, 2, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	/* B has no handles: A's ids are unknown to it, for every method. */
	for (int i = 0; i < 3; i++)
		for (size_t m = 0; m < N_HANDLE_METHODS; m++)
			call_on_handle(b, handle_methods[m], ha[i], ++id,
			               SOCKRPC__CODE__EBADHANDLE);
	/* B's own handle 1 is B's, and closing it leaves A's handle 1 alone. */
	ck_assert_int_eq(rc_socket(b, 2, SOCKRPC__FAMILY__FAMILY_INET6, SOCKRPC__TYPE__TYPE_DGRAM),
	                 1);
	call_on_handle(b, M_CLOSE, 1, ++id, 0);
	for (int i = 0; i < 3; i++) {
		go.handle = ha[i];
		go.option = SOCKRPC__OPTION__SO_TYPE;
		raw_send(a, M_GET_OPTION, ++id, &go.base);
		rc_expect(a, id, 0);
	}
	close(b);
	close(a);
}
END_TEST

START_TEST(closed_handle)
{
	int fd = hello_session();
	int64_t h = rc_socket(fd, 2, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	uint64_t id = 10;

	call_on_handle(fd, M_CLOSE, h, ++id, 0);
	for (size_t m = 0; m < N_HANDLE_METHODS; m++)
		call_on_handle(fd, handle_methods[m], h, ++id,
		               handle_methods[m] == M_CLOSE ? 0 : SOCKRPC__CODE__ECLOSED);
	close(fd);
}
END_TEST

static void
socket_refused(int fd, uint64_t id, int family, int type, int protocol)
{
	Sockrpc__SocketRequest rq = SOCKRPC__SOCKET_REQUEST__INIT;

	rq.family = family;
	rq.type = type;
	rq.protocol = protocol;
	raw_send(fd, M_SOCKET, id, &rq.base);
	rc_expect_any(fd, id, any_refusal);
}

/* The first value past the Option enum of proto/sockrpc.proto. */
#define OPTION_PAST_LAST (SOCKRPC__OPTION__IP_DROP_MEMBERSHIP + 1)

START_TEST(enums_out_of_range)
{
	static const int bad[] = {-1, 18, 99, 1000, INT_MAX, INT_MIN};
	Sockrpc__SetOptionRequest so = SOCKRPC__SET_OPTION_REQUEST__INIT;
	Sockrpc__GetOptionRequest go = SOCKRPC__GET_OPTION_REQUEST__INIT;
	Sockrpc__ShutdownRequest sh = SOCKRPC__SHUTDOWN_REQUEST__INIT;
	Sockrpc__SendRequest sd = SOCKRPC__SEND_REQUEST__INIT;
	Sockrpc__ReceiveRequest rv = SOCKRPC__RECEIVE_REQUEST__INIT;
	Sockrpc__SendToRequest st = SOCKRPC__SEND_TO_REQUEST__INIT;
	Sockrpc__GetAddressInfoRequest ga = SOCKRPC__GET_ADDRESS_INFO_REQUEST__INIT;
	int fd = hello_session();
	int64_t h = rc_socket(fd, 2, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	int64_t u = rc_socket(fd, 3, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_DGRAM);
	uint64_t id = 10;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		socket_refused(fd, ++id, bad[i], SOCKRPC__TYPE__TYPE_STREAM, 0);
		if (bad[i] != 18)
			socket_refused(fd, ++id, SOCKRPC__FAMILY__FAMILY_INET, bad[i], 0);
		socket_refused(fd, ++id, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM,
		               bad[i] == 18 ? 3 : bad[i]);

		so.handle = go.handle = sh.handle = h;
		so.option = go.option = bad[i] == 18 ? OPTION_PAST_LAST : bad[i];
		so.value = 1;
		raw_send(fd, M_SET_OPTION, ++id, &so.base);
		rc_expect(fd, id, SOCKRPC__CODE__EINVAL);
		raw_send(fd, M_GET_OPTION, ++id, &go.base);
		rc_expect(fd, id, SOCKRPC__CODE__EINVAL);
		sh.how = bad[i] == 18 ? 3 : bad[i];
		raw_send(fd, M_SHUTDOWN, ++id, &sh.base);
		rc_expect(fd, id, SOCKRPC__CODE__EINVAL);

		ga.address = "localhost";
		ga.family = bad[i];
		raw_send(fd, M_GET_ADDRESS_INFO, ++id, &ga.base);
		rc_expect(fd, id, SOCKRPC__CODE__EINVAL);

		st.handle = u;
		st.host = "127.0.0.1";
		st.port = 9;
		st.family = bad[i];
		raw_send(fd, M_SEND_TO, ++id, &st.base);
		rc_expect(fd, id, SOCKRPC__CODE__EINVAL);
	}
	/* Message flags: unknown bits. */
	static const uint32_t flags[] = {16, 0x80000000u, 0xffffffffu, 3u << 4};
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		sd.handle = rv.handle = h;
		sd.flags = rv.flags = flags[i];
		raw_send(fd, M_SEND, ++id, &sd.base);
		rc_expect_any(fd, id,
		              (const int[]){SOCKRPC__CODE__EINVAL, SOCKRPC__CODE__ESTATE, -1});
		raw_send(fd, M_RECEIVE, ++id, &rv.base);
		rc_expect_any(fd, id,
		              (const int[]){SOCKRPC__CODE__EINVAL, SOCKRPC__CODE__ESTATE, -1});
	}
	close(fd);
}
END_TEST

START_TEST(negative_and_huge_lengths_and_timeouts)
{
	Sockrpc__ReceiveRequest rv = SOCKRPC__RECEIVE_REQUEST__INIT;
	Sockrpc__ReadRequest rd = SOCKRPC__READ_REQUEST__INIT;
	Sockrpc__ReceiveFromRequest rf = SOCKRPC__RECEIVE_FROM_REQUEST__INIT;
	Sockrpc__ListenRequest ls = SOCKRPC__LISTEN_REQUEST__INIT;
	Sockrpc__BindRequest bd = SOCKRPC__BIND_REQUEST__INIT;
	Sockrpc__SetOptionRequest so = SOCKRPC__SET_OPTION_REQUEST__INIT;
	Sockrpc__SetBlockingRequest sb = SOCKRPC__SET_BLOCKING_REQUEST__INIT;
	Sockrpc__ConnectRequest cr = SOCKRPC__CONNECT_REQUEST__INIT;
	static const int64_t lengths[] = {-1, -2, INT64_MIN, INT64_MAX, (int64_t)1 << 40, 0};
	static const int64_t bad_values[] = {-2, INT64_MIN, INT64_MAX, (int64_t)INT32_MAX + 1};
	static const int32_t backlogs[] = {INT32_MAX, 4097, 65536};
	struct server echo;
	int fd = hello_session();
	int64_t t = rc_socket(fd, 2, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	int64_t u = rc_socket(fd, 3, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_DGRAM);
	int64_t l = rc_socket(fd, 4, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	uint64_t id = 10;

	server_start(&echo, AF_INET, SERVER_ECHO, 0);
	cr.handle = t;
	cr.host = "127.0.0.1";
	cr.port = echo.port;
	cr.timeout_ms = INT32_MIN; /* negative: the default */
	raw_send(fd, M_CONNECT, ++id, &cr.base);
	rc_expect(fd, id, 0);
	/* Non-blocking: a receive of any size answers at once. */
	sb.handle = t;
	sb.blocking = 0;
	raw_send(fd, M_SET_BLOCKING, ++id, &sb.base);
	rc_expect(fd, id, 0);
	sb.handle = u;
	raw_send(fd, M_SET_BLOCKING, ++id, &sb.base);
	rc_expect(fd, id, 0);
	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		rv.handle = t;
		rv.length = lengths[i];
		raw_send(fd, M_RECEIVE, ++id, &rv.base);
		rc_expect_any(
		    fd, id,
		    (const int[]){0, SOCKRPC__CODE__EWOULDBLOCK, SOCKRPC__CODE__EINVAL, -1});
		rd.handle = t;
		rd.length = lengths[i];
		raw_send(fd, M_READ, ++id, &rd.base);
		rc_expect_any(
		    fd, id,
		    (const int[]){0, SOCKRPC__CODE__EWOULDBLOCK, SOCKRPC__CODE__EINVAL, -1});
		rf.handle = u;
		rf.length = lengths[i];
		raw_send(fd, M_RECEIVE_FROM, ++id, &rf.base);
		rc_expect_any(
		    fd, id,
		    (const int[]){0, SOCKRPC__CODE__EWOULDBLOCK, SOCKRPC__CODE__EINVAL, -1});
	}
	/* Option values outside -1..INT32_MAX are refused; timeouts at the extremes kept. */
	for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
		static const int opts[] = {SOCKRPC__OPTION__SO_RCVTIMEO,
		                           SOCKRPC__OPTION__SO_SNDTIMEO, SOCKRPC__OPTION__SO_RCVBUF,
		                           SOCKRPC__OPTION__SO_LINGER};
		for (size_t o = 0; o < 4; o++) {
			so.handle = l;
			so.option = opts[o];
			so.value = bad_values[i];
			raw_send(fd, M_SET_OPTION, ++id, &so.base);
			rc_expect(fd, id, SOCKRPC__CODE__EINVAL);
		}
	}
	so.handle = l;
	so.option = SOCKRPC__OPTION__SO_RCVTIMEO;
	so.value = INT32_MAX;
	raw_send(fd, M_SET_OPTION, ++id, &so.base);
	rc_expect(fd, id, 0);
	so.option = SOCKRPC__OPTION__SO_RCVBUF;
	raw_send(fd, M_SET_OPTION, ++id, &so.base);
	rc_expect(fd, id, 0);
	so.option = SOCKRPC__OPTION__SO_LINGER;
	raw_send(fd, M_SET_OPTION, ++id, &so.base);
	rc_expect(fd, id, 0);
	/* Backlogs past SOMAXCONN are refused; INT32_MIN means SOMAXCONN. */
	bd.handle = l;
	bd.host = "127.0.0.1";
	bd.port = 0;
	raw_send(fd, M_BIND, ++id, &bd.base);
	rc_expect(fd, id, 0);
	for (size_t i = 0; i < sizeof(backlogs) / sizeof(backlogs[0]); i++) {
		ls.handle = l;
		ls.queue_length = backlogs[i];
		raw_send(fd, M_LISTEN, ++id, &ls.base);
		rc_expect_any(fd, id, (const int[]){0, SOCKRPC__CODE__EINVAL, -1});
	}
	ls.queue_length = INT32_MIN;
	raw_send(fd, M_LISTEN, ++id, &ls.base);
	rc_expect_any(fd, id, (const int[]){0, SOCKRPC__CODE__ESTATE, -1});
	close(fd);
	server_stop(&echo);
}
END_TEST

START_TEST(ports_out_of_range)
{
	static const int32_t ports[] = {-1, -65535, 65536, 70000, INT32_MAX, INT32_MIN};
	Sockrpc__ConnectRequest cr = SOCKRPC__CONNECT_REQUEST__INIT;
	Sockrpc__BindRequest bd = SOCKRPC__BIND_REQUEST__INIT;
	Sockrpc__SendToRequest st = SOCKRPC__SEND_TO_REQUEST__INIT;
	int fd = hello_session();
	int64_t t = rc_socket(fd, 2, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	int64_t u = rc_socket(fd, 3, SOCKRPC__FAMILY__FAMILY_INET6, SOCKRPC__TYPE__TYPE_DGRAM);
	uint64_t id = 10;

	for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
		cr.handle = t;
		cr.host = "127.0.0.1";
		cr.port = ports[i];
		cr.timeout_ms = 1000;
		raw_send(fd, M_CONNECT, ++id, &cr.base);
		rc_expect(fd, id, SOCKRPC__CODE__EINVAL);
		bd.handle = t;
		bd.host = "127.0.0.1";
		bd.port = ports[i];
		raw_send(fd, M_BIND, ++id, &bd.base);
		rc_expect(fd, id, SOCKRPC__CODE__EINVAL);
		st.handle = u;
		st.host = "::1";
		st.port = ports[i];
		st.data.data = (uint8_t *)"x";
		st.data.len = 1;
		raw_send(fd, M_SEND_TO, ++id, &st.base);
		rc_expect(fd, id, SOCKRPC__CODE__EINVAL);
	}
	close(fd);
}
END_TEST

/* Sends a Connect whose host is `len` raw bytes; returns the reply code, or -1 if the
 * daemon refused the frame (EPROTO and close: protobuf-c checks UTF-8 in proto3 strings). */
static int
connect_raw_host(int fd, int64_t handle, uint64_t id, const char *host, size_t len)
{
	Sockrpc__ConnectRequest cr = SOCKRPC__CONNECT_REQUEST__INIT;
	size_t plen;
	uint8_t *buf, *p;
	ProtobufCMessage *m;
	uint64_t got;
	int code;

	/* Pack without the host, then append field 2 by hand: protobuf-c would stop at a NUL. */
	cr.handle = handle;
	cr.port = 1;
	cr.timeout_ms = 2000;
	plen = protobuf_c_message_get_packed_size(&cr.base);
	buf = malloc(plen + len + 16);
	ck_assert_ptr_nonnull(buf);
	protobuf_c_message_pack(&cr.base, buf);
	p = buf + plen;
	*p++ = (2 << 3) | 2;
	for (size_t v = len;; v >>= 7) {
		*p++ = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		if (v <= 0x7f)
			break;
	}
	memcpy(p, host, len);
	p += len;
	rc_header(fd, (uint32_t)(p - buf), M_CONNECT, 0, id);
	raw_write(fd, buf, (size_t)(p - buf));
	free(buf);
	m = rc_reply(fd, &got, NULL, 10000);
	ck_assert_msg(m != NULL, "no reply for a host of %zu bytes", len);
	ck_assert_uint_eq(got, id);
	code = rc_code(m);
	protobuf_c_message_free_unpacked(m, NULL);
	if (code == SOCKRPC__CODE__EPROTO) {
		ck_assert_msg(raw_closed(fd, 5000), "EPROTO but the session stayed open");
		return -1;
	}
	return code;
}

START_TEST(bad_host_strings)
{
	char long_host[600];
	int fd = hello_session();
	int64_t t = rc_socket(fd, 2, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	uint64_t id = 10;
	int code;

	/* Empty: the socket's host (127.0.0.1); port 1 refuses. */
	code = connect_raw_host(fd, t, ++id, "", 0);
	ck_assert_int_eq(code, SOCKRPC__CODE__EOS);
	memset(long_host, 'a', sizeof(long_host));
	for (size_t len = 256; len <= sizeof(long_host); len += 172) {
		code = connect_raw_host(fd, t, ++id, long_host, len);
		ck_assert_int_eq(code, SOCKRPC__CODE__EINVAL);
	}
	/* An embedded NUL: the daemon sees "127.0.0.1" or refuses; never anything else. */
	code = connect_raw_host(fd, t, ++id, "127.0.0.1\0.evil", 15);
	ck_assert_msg(code == -1 || code == SOCKRPC__CODE__EOS || code == SOCKRPC__CODE__EINVAL,
	              "NUL in host: code %d", code);
	if (code == -1)
		fd = hello_session(),
		t = rc_socket(fd, 2, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	/* Not UTF-8: a decode error (EPROTO, close) or a name that does not resolve. */
	code = connect_raw_host(fd, t, ++id, "\xff\xfe\x80host", 7);
	ck_assert_msg(code == -1 || code == SOCKRPC__CODE__EOS || code == SOCKRPC__CODE__EINVAL ||
	                  code == SOCKRPC__CODE__ETIMEDOUT,
	              "non-UTF-8 host: code %d", code);
	close(fd);

	/* The same for bind, get_address_info and send_to, through the library-free path. */
	fd = hello_session();
	{
		Sockrpc__BindRequest bd = SOCKRPC__BIND_REQUEST__INIT;
		Sockrpc__GetAddressInfoRequest ga = SOCKRPC__GET_ADDRESS_INFO_REQUEST__INIT;
		Sockrpc__SendToRequest st = SOCKRPC__SEND_TO_REQUEST__INIT;
		int64_t b =
		    rc_socket(fd, 2, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
		int64_t u =
		    rc_socket(fd, 3, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_DGRAM);

		long_host[300] = '\0';
		bd.handle = b;
		bd.host = long_host;
		bd.port = 0;
		raw_send(fd, M_BIND, ++id, &bd.base);
		rc_expect(fd, id, SOCKRPC__CODE__EINVAL);
		bd.host = "256.1.1.1";
		raw_send(fd, M_BIND, ++id, &bd.base);
		rc_expect(fd, id, SOCKRPC__CODE__EINVAL);
		ga.address = long_host;
		raw_send(fd, M_GET_ADDRESS_INFO, ++id, &ga.base);
		rc_expect(fd, id, SOCKRPC__CODE__EINVAL);
		ga.address = "";
		raw_send(fd, M_GET_ADDRESS_INFO, ++id, &ga.base);
		rc_expect(fd, id, SOCKRPC__CODE__EINVAL);
		st.handle = u;
		st.host = long_host;
		st.port = 9;
		st.data.data = (uint8_t *)"x";
		st.data.len = 1;
		raw_send(fd, M_SEND_TO, ++id, &st.base);
		rc_expect_any(fd, id, (const int[]){SOCKRPC__CODE__EINVAL, SOCKRPC__CODE__EOS, -1});
	}
	close(fd);
}
END_TEST

START_TEST(unix_paths_over_sun_path)
{
	char path[400];
	Sockrpc__ConnectRequest cr = SOCKRPC__CONNECT_REQUEST__INIT;
	Sockrpc__BindRequest bd = SOCKRPC__BIND_REQUEST__INIT;
	int fd = hello_session();
	int64_t u = rc_socket(fd, 2, SOCKRPC__FAMILY__FAMILY_UNIX, SOCKRPC__TYPE__TYPE_STREAM);
	uint64_t id = 10;
	size_t sun = sizeof(((struct sockaddr_un *)0)->sun_path);

	for (size_t len = sun; len < sizeof(path); len += 97) {
		memset(path, 'p', len);
		path[0] = '/';
		path[len] = '\0';
		cr.handle = u;
		cr.host = path;
		cr.timeout_ms = 1000;
		raw_send(fd, M_CONNECT, ++id, &cr.base);
		rc_expect(fd, id, SOCKRPC__CODE__EINVAL);
		bd.handle = u;
		bd.host = path;
		raw_send(fd, M_BIND, ++id, &bd.base);
		rc_expect(fd, id, SOCKRPC__CODE__EINVAL);
	}
	/* Empty path: the socket has no host either. */
	cr.host = "";
	raw_send(fd, M_CONNECT, ++id, &cr.base);
	rc_expect(fd, id, SOCKRPC__CODE__EINVAL);
	/* The daemon's own socket is never a target, by its path or through a symlink (no
	 * symlink is followed: ELOOP) (the test directory is opened up so that the
	 * unprivileged daemon can see it). */
	ck_assert_int_eq(chmod(test_daemon.dir, 0755), 0);
	cr.host = test_daemon.path;
	raw_send(fd, M_CONNECT, ++id, &cr.base);
	rc_expect(fd, id, SOCKRPC__CODE__EDENIED);
	snprintf(path, sizeof(path), "%s/link", test_daemon.dir);
	ck_assert_int_eq(symlink(test_daemon.path, path), 0);
	cr.host = path;
	raw_send(fd, M_CONNECT, ++id, &cr.base);
	rc_expect(fd, id, SOCKRPC__CODE__EOS);
	close(fd);
}
END_TEST

START_TEST(options_that_are_not_in_the_enum)
{
	static const int opts[] = {0,         OPTION_PAST_LAST, OPTION_PAST_LAST + 1, 255, 1000, -1,
	                           INT32_MIN, INT32_MAX};
	Sockrpc__SetOptionRequest so = SOCKRPC__SET_OPTION_REQUEST__INIT;
	Sockrpc__GetOptionRequest go = SOCKRPC__GET_OPTION_REQUEST__INIT;
	int fd = hello_session();
	int64_t t = rc_socket(fd, 2, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	uint64_t id = 10;

	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		so.handle = go.handle = t;
		so.option = go.option = opts[i];
		so.value = 1;
		raw_send(fd, M_SET_OPTION, ++id, &so.base);
		rc_expect(fd, id, SOCKRPC__CODE__EINVAL);
		raw_send(fd, M_GET_OPTION, ++id, &go.base);
		rc_expect(fd, id, SOCKRPC__CODE__EINVAL);
	}
	/* Read-only options cannot be set. */
	so.option = SOCKRPC__OPTION__SO_TYPE;
	raw_send(fd, M_SET_OPTION, ++id, &so.base);
	rc_expect(fd, id, SOCKRPC__CODE__EINVAL);
	so.option = SOCKRPC__OPTION__SO_ERROR;
	raw_send(fd, M_SET_OPTION, ++id, &so.base);
	rc_expect(fd, id, SOCKRPC__CODE__EINVAL);
	close(fd);
}
END_TEST

Suite *
bad_input_suite(void)
{
	Suite *s = suite_create("bad_input");
	TCase *frames = tcase_create("frames");
	TCase *values = tcase_create("values");

	tcase_add_checked_fixture(frames, fixture_up, fixture_down);
	tcase_set_timeout(frames, 60);
	tcase_add_test(frames, length_zero_hello_is_version_zero);
	tcase_add_test(frames, length_zero_request_after_hello_is_a_valid_empty_message);
	tcase_add_test(frames, length_over_maximum);
	tcase_add_test(frames, length_at_maximum_is_accepted);
	tcase_add_test(frames, truncated_header_then_disconnect);
	tcase_add_test(frames, silent_client_is_dropped_before_hello);
	tcase_add_test(frames, truncated_body_then_disconnect);
	tcase_add_test(frames, reserved_flag_bits);
	tcase_add_test(frames, reply_flag_from_client);
	tcase_add_test(frames, unknown_method_index);
	tcase_add_test(frames, message_does_not_decode);
	tcase_add_test(frames, valid_message_for_the_wrong_method);
	tcase_add_test(frames, request_before_hello);
	tcase_add_test(frames, second_hello);
	tcase_add_test(frames, wrong_major_version);
	tcase_add_test(frames, slow_drip_one_byte_per_write);
	tcase_add_test(frames, ten_thousand_pipelined_calls);
	suite_add_tcase(s, frames);

	tcase_add_checked_fixture(values, fixture_up, fixture_down);
	tcase_set_timeout(values, 60);
	tcase_add_test(values, unknown_handles);
	tcase_add_test(values, handles_of_another_session);
	tcase_add_test(values, closed_handle);
	tcase_add_test(values, enums_out_of_range);
	tcase_add_test(values, negative_and_huge_lengths_and_timeouts);
	tcase_add_test(values, ports_out_of_range);
	tcase_add_test(values, bad_host_strings);
	tcase_add_test(values, unix_paths_over_sun_path);
	tcase_add_test(values, options_that_are_not_in_the_enum);
	suite_add_tcase(s, values);
	return s;
}
