/*
 * test_errors.c - what a user sees when things fail: OS errors with errno
 * name and text, refused arguments, closed and unknown handles, timeouts, an
 * unreachable or misbehaving daemon (a fake one, for protocol violations).
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fake_daemon.h"
#include "frame.h"
#include "fast_paths.h"
#include "harness.h"
#include "payload.h"
#include "sockets.h"
#include "sockrpc.pb-c.h"

START_TEST(connection_refused_names_address_and_errno)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	sr_error err;

	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(sr_connect(s, "127.0.0.1", 1, 2000, &err), -1);
	ck_assert_int_eq(err.code, SR_EOS);
	ck_assert_int_eq(err.sys_errno, ECONNREFUSED);
	ck_assert_str_eq(err.message, "connect to 127.0.0.1:1 failed: Connection refused");
	/* An OS error does not close the socket (sockrpc differs from Blade here). */
	ck_assert(!sr_socket_state(s)->is_closed);
	ck_assert(!sr_socket_state(s)->is_connected);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

START_TEST(port_not_specified)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	sr_error err;

	ck_assert_int_eq(sr_connect(s, "127.0.0.1", -1, 1000, &err), -1);
	ck_assert_int_eq(err.code, SR_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.message, "port not specified"));
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

START_TEST(existing_connection_refused)
{
	struct server srv;
	sr_client *c;
	sr_socket *s;
	sr_error err;

	server_start(&srv, AF_INET, SERVER_ECHO, 0);
	c = daemon_client(&test_daemon);
	s = new_sock(c, AF_INET, SOCK_STREAM);
	ck_assert_int_eq(sr_connect(s, "127.0.0.1", srv.port, 2000, &err), 0);
	ck_assert_int_eq(sr_connect(s, "127.0.0.1", srv.port, 2000, &err), -1);
	ck_assert_int_eq(err.code, SR_ESTATE);
	ck_assert_ptr_nonnull(strstr(err.message, "socket has existing connection"));
	ck_assert(sr_socket_state(s)->is_connected);
	sr_socket_free(s);
	sr_client_close(c);
	server_stop(&srv);
}
END_TEST

START_TEST(send_on_closed_handle)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	sr_error err;

	ck_assert_int_eq(sr_close(s, &err), 0);
	ck_assert_int_eq(sr_send(s, "data", 4, 0, &err), -1);
	ck_assert_int_eq(err.code, SR_ECLOSED);
	ck_assert_str_eq(err.message, "socket is closed");
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

START_TEST(unsupported_constants_refused_locally)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	sr_error err;

#ifdef AF_IPX
	ck_assert_ptr_null(sr_socket_new(c, AF_IPX, SOCK_DGRAM, 0, &err));
	ck_assert_int_eq(err.code, SR_EUNSUPPORTED);
	ck_assert_str_eq(err.message, "AF_IPX is not supported by sockrpc");
#endif
	ck_assert_ptr_null(sr_socket_new(c, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0, &err));
	ck_assert_int_eq(err.code, SR_EUNSUPPORTED);
	ck_assert_int_eq(sr_set_option(s, SO_PRIORITY, 1, &err), -1);
	ck_assert_int_eq(err.code, SR_EUNSUPPORTED);
	ck_assert_int_eq(sr_send(s, "x", 1, MSG_MORE, &err), -1);
	ck_assert_int_eq(err.code, SR_EUNSUPPORTED);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

/* A handle id of one session is unknown in another. */
START_TEST(unknown_handle_from_another_session)
{
	Sockrpc__InfoRequest req = SOCKRPC__INFO_REQUEST__INIT;
	Sockrpc__InfoReply *rep;
	struct sr_frame_header h;
	unsigned char *body;
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	int fd = raw_session(test_daemon.path);

	req.handle = sr_socket_state(s)->id;
	raw_send(fd, 14, 2, &req.base);
	ck_assert_int_eq(raw_recv(fd, &h, &body, 5000), 0);
	ck_assert_uint_eq(h.call_id, 2);
	ck_assert_uint_eq(h.method, 14);
	rep = sockrpc__info_reply__unpack(NULL, h.length, body);
	free(body);
	ck_assert_ptr_nonnull(rep);
	ck_assert_ptr_nonnull(rep->status);
	ck_assert_int_eq(rep->status->code, SR_EBADHANDLE);
	sockrpc__info_reply__free_unpacked(rep, NULL);
	/* The owner still has it. */
	ck_assert_int_eq(sr_info(s, NULL, NULL), 0);
	close(fd);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

START_TEST(receive_timeout)
{
	struct server srv;
	sr_client *c;
	sr_socket *s;
	sr_error err;
	long long t0, took;
	char *got;
	size_t len;

	server_start(&srv, AF_INET, SERVER_ECHO, 0);
	c = daemon_client(&test_daemon);
	s = new_sock(c, AF_INET, SOCK_STREAM);
	ck_assert_int_eq(sr_connect(s, "127.0.0.1", srv.port, 2000, &err), 0);
	ck_assert_int_eq(sr_set_option(s, SO_RCVTIMEO, 300, &err), 0);
	t0 = now_ms();
	ck_assert_int_eq(sr_receive(s, -1, 0, &got, &len, &err), -1);
	took = now_ms() - t0;
	ck_assert_int_eq(err.code, SR_ETIMEDOUT);
	ck_assert_msg(took >= 250 && took < 3000, "timed out after %lld ms", took);
	/* A timeout is not fatal: the handle still works. */
	ck_assert(!sr_socket_state(s)->is_closed);
	ck_assert_int_eq(sr_send(s, "ok", 2, 0, &err), 2);
	ck_assert_int_eq(sr_read(s, 2, &got, &len, &err), 0);
	ck_assert_uint_eq(len, 2);
	free(got);
	/* read() does not fail on a timeout: it returns what it has. */
	t0 = now_ms();
	ck_assert_int_eq(sr_read(s, 10, &got, &len, &err), 0);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_ge(now_ms() - t0, 250);
	free(got);
	sr_socket_free(s);
	sr_client_close(c);
	server_stop(&srv);
}
END_TEST

START_TEST(nonblocking_receive_would_block)
{
	struct server srv;
	sr_client *c;
	sr_socket *s;
	sr_error err;
	char *got;
	size_t len;

	server_start(&srv, AF_INET, SERVER_ECHO, 0);
	c = daemon_client(&test_daemon);
	s = new_sock(c, AF_INET, SOCK_STREAM);
	ck_assert_int_eq(sr_connect(s, "127.0.0.1", srv.port, 2000, &err), 0);
	ck_assert_int_eq(sr_set_blocking(s, false, &err), 0);
	ck_assert_int_eq(sr_receive(s, -1, 0, &got, &len, &err), -1);
	ck_assert_int_eq(err.code, SR_EWOULDBLOCK);
	sr_socket_free(s);
	sr_client_close(c);
	server_stop(&srv);
}
END_TEST

START_TEST(daemon_unreachable)
{
	sr_error err;

	ck_assert_ptr_null(sr_client_open("/nonexistent/sockrpc.sock", &err));
	ck_assert_int_eq(err.code, SR_EDAEMON);
	ck_assert_int_eq(err.sys_errno, ENOENT);
	ck_assert_str_eq(
	    err.message,
	    "cannot reach sockrpcd at /nonexistent/sockrpc.sock: No such file or directory");
	ck_assert_str_eq(sr_strerror(err.code), "daemon unreachable");
}
END_TEST

START_TEST(default_path_from_environment)
{
	sr_client *c;
	sr_error err;

	setenv("SOCKRPC_SOCKET", test_daemon.path, 1);
	c = sr_client_open(NULL, &err);
	ck_assert_msg(c != NULL, "%s", err.message);
	sr_client_close(c);
	setenv("SOCKRPC_SOCKET", "/nonexistent/env.sock", 1);
	ck_assert_ptr_null(sr_client_open(NULL, &err));
	ck_assert_ptr_nonnull(strstr(err.message, "/nonexistent/env.sock"));
	unsetenv("SOCKRPC_SOCKET");
}
END_TEST

/* The daemon going away fails the waiting call and every later one. */
START_TEST(daemon_dies_mid_call)
{
	struct server srv;
	struct daemon d;
	sr_client *c;
	sr_socket *s;
	sr_error err;
	char *got;
	size_t len;
	pid_t pid;

	signal(SIGPIPE, SIG_IGN);
	server_start(&srv, AF_INET, SERVER_SILENT, 0);
	daemon_start(&d, NULL);
	c = daemon_client(&d);
	s = new_sock(c, AF_INET, SOCK_STREAM);
	ck_assert_int_eq(sr_connect(s, "127.0.0.1", srv.port, 2000, &err), 0);
	pid = fork();
	if (pid == 0) {
		usleep(300 * 1000);
		kill(d.pid, SIGKILL);
		_exit(0);
	}
	ck_assert_int_eq(sr_receive(s, -1, 0, &got, &len, &err), -1);
	ck_assert_int_eq(err.code, SR_EDAEMON);
	ck_assert_str_eq(err.message, "daemon closed the connection");
	/* The session is over: the handle reads closed, no longer connected. */
	ck_assert(sr_socket_state(s)->is_closed);
	ck_assert(!sr_socket_state(s)->is_connected);
	ck_assert_int_eq(sr_send(s, "x", 1, 0, &err), -1);
	ck_assert_int_eq(err.code, SR_EDAEMON);
	ck_assert_ptr_null(sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &err));
	ck_assert_int_eq(err.code, SR_EDAEMON);
	waitpid(pid, NULL, 0);
	waitpid(d.pid, NULL, 0);
	sr_socket_free(s);
	sr_client_close(c);
	server_stop(&srv);
}
END_TEST

/* --- a fake daemon that breaks the protocol in one chosen way --- */

enum fake_mode {
	FAKE_WRONG_CALL_ID,    /* answers the second call with another id */
	FAKE_WRONG_METHOD,     /* answers with the right id but another method */
	FAKE_RESERVED_FLAG,    /* a reply header with a reserved flag bit */
	FAKE_HELLO_REFUSED,    /* Hello answered with a status error */
	FAKE_UNDECODABLE,      /* a reply body that is not a protobuf message */
	FAKE_SILENT,           /* answers Socket (receive timeout 100 ms), then nothing */
	FAKE_SLOW_LARGE_REPLY, /* a connected socket; a Send's reply of over 64 KiB comes
	                        * in two parts, the second after the client's linger */
};

/*
 * Takes a Send and answers it with a reply of over 64 KiB (an unknown field pads it), in
 * two parts: the second only after the client's linger (CL_LINGER_MS, 5 s) has passed,
 * so a close that waits for its sends gives up in the middle of the frame. Then answers
 * the Close, and then Sockets (with socket_reply) and Closes until the client hangs up.
 */
static void
fake_slow_large_reply(int fd, const Sockrpc__SocketReply *socket_reply)
{
	enum { PAD = 100 * 1024, FIRST_PART = 30000 };
	Sockrpc__SendReply sent = SOCKRPC__SEND_REPLY__INIT;
	Sockrpc__CloseReply closed = SOCKRPC__CLOSE_REPLY__INIT;
	Sockrpc__Status ok = SOCKRPC__STATUS__INIT;
	struct sr_frame_header h, send_h;
	uint8_t *frame = malloc(SR_FRAME_HEADER_SIZE + 64 + PAD), *body, small[4096];
	unsigned close_method;
	size_t len;

	if (frame == NULL || fake_read(fd, &send_h, small, sizeof(small)) == -1)
		goto out;
	body = frame + SR_FRAME_HEADER_SIZE;
	sent.status = &ok;
	sent.sent = 100;
	len = protobuf_c_message_pack(&sent.base, body);
	len += sr_payload_key(body + len, 15, PAD);
	memset(body + len, 'p', PAD);
	len += PAD;
	h = (struct sr_frame_header){.length = (uint32_t)len,
	                             .method = send_h.method,
	                             .flags = SR_FRAME_FLAG_REPLY,
	                             .call_id = send_h.call_id};
	frame_header_encode(&h, frame);
	(void)!send(fd, frame, SR_FRAME_HEADER_SIZE + FIRST_PART, MSG_NOSIGNAL);
	sleep_ms(5500);
	(void)!send(fd, frame + SR_FRAME_HEADER_SIZE + FIRST_PART, len - FIRST_PART, MSG_NOSIGNAL);
	if (fake_read(fd, &h, small, sizeof(small)) == -1)
		goto out;
	closed.status = &ok;
	close_method = h.method;
	fake_reply(fd, h.method, h.call_id, SR_FRAME_FLAG_REPLY, &closed.base, NULL, 0);
	/* Then Sockets and Closes until the client hangs up. */
	while (fake_read(fd, &h, small, sizeof(small)) == 0) {
		const ProtobufCMessage *m =
		    h.method == close_method ? &closed.base : &socket_reply->base;

		fake_reply(fd, h.method, h.call_id, SR_FRAME_FLAG_REPLY, m, NULL, 0);
	}
out:
	free(frame);
}

static void
errors_serve(struct fake *f, int fd)
{
	Sockrpc__HelloReply hello = SOCKRPC__HELLO_REPLY__INIT;
	Sockrpc__Status st = SOCKRPC__STATUS__INIT;
	Sockrpc__SocketReply sock = SOCKRPC__SOCKET_REPLY__INIT;
	Sockrpc__SocketState state = SOCKRPC__SOCKET_STATE__INIT;
	struct sr_frame_header h;
	uint8_t buf[4096];

	if (fake_read(fd, &h, buf, sizeof(buf)) == -1)
		return;
	hello.major = SR_PROTOCOL_MAJOR;
	hello.session_id = 77;
	hello.max_frame = SR_MAX_FRAME;
	hello.max_payload = SR_MAX_PAYLOAD;
	if (f->mode == FAKE_HELLO_REFUSED) {
		st.code = SOCKRPC__CODE__EPROTO;
		st.message = "protocol 1 is not spoken here";
		hello.status = &st;
		fake_reply(fd, 0, h.call_id, SR_FRAME_FLAG_REPLY, &hello.base, NULL, 0);
		return;
	}
	fake_reply(fd, 0, h.call_id, SR_FRAME_FLAG_REPLY, &hello.base, NULL, 0);
	if (fake_read(fd, &h, buf, sizeof(buf)) == -1)
		return;
	switch (f->mode) {
	case FAKE_WRONG_CALL_ID:
		fake_reply(fd, h.method, h.call_id + 100, SR_FRAME_FLAG_REPLY, &sock.base, NULL, 0);
		break;
	case FAKE_WRONG_METHOD:
		fake_reply(fd, h.method + 1, h.call_id, SR_FRAME_FLAG_REPLY, &sock.base, NULL, 0);
		break;
	case FAKE_RESERVED_FLAG:
		fake_reply(fd, h.method, h.call_id, SR_FRAME_FLAG_REPLY | 0x8, &sock.base, NULL, 0);
		break;
	case FAKE_SILENT:
		fake_socket_state(&state, false);
		state.receive_timeout = 100;
		sock.state = &state;
		fake_reply(fd, h.method, h.call_id, SR_FRAME_FLAG_REPLY, &sock.base, NULL, 0);
		break;
	case FAKE_SLOW_LARGE_REPLY:
		fake_socket_state(&state, true);
		sock.state = &state;
		fake_reply(fd, h.method, h.call_id, SR_FRAME_FLAG_REPLY, &sock.base, NULL, 0);
		fake_slow_large_reply(fd, &sock);
		break;
	case FAKE_UNDECODABLE:
		fake_reply(fd, h.method, h.call_id, SR_FRAME_FLAG_REPLY, NULL, "\xff\xff\xff", 3);
		break;
	default:
		break;
	}
	fake_hold(fd);
}

static void
expect_protocol_error(enum fake_mode mode, const char *want)
{
	struct fake f;
	sr_client *c;
	sr_error err;

	signal(SIGPIPE, SIG_IGN);
	fake_start(&f, errors_serve, mode);
	c = sr_client_open(f.path, &err);
	ck_assert_msg(c != NULL, "%s", err.message);
	ck_assert_uint_eq(sr_client_session_id(c), 77);
	ck_assert_ptr_null(sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &err));
	ck_assert_int_eq(err.code, SR_EPROTO);
	ck_assert_msg(strstr(err.message, want) != NULL, "message: %s", err.message);
	/* The connection is broken for good: later calls fail the same way. */
	ck_assert_ptr_null(sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &err));
	ck_assert_int_eq(err.code, SR_EPROTO);
	sr_client_close(c);
	fake_stop(&f);
}

START_TEST(reply_with_unknown_call_id)
{
	expect_protocol_error(FAKE_WRONG_CALL_ID, "matches no call");
}
END_TEST

START_TEST(reply_with_wrong_method)
{
	expect_protocol_error(FAKE_WRONG_METHOD, "matches no call");
}
END_TEST

START_TEST(reply_with_reserved_flag)
{
	expect_protocol_error(FAKE_RESERVED_FLAG, "reserved flag bits set");
}
END_TEST

START_TEST(reply_undecodable)
{
	expect_protocol_error(FAKE_UNDECODABLE, "undecodable");
}
END_TEST

/*
 * A daemon that stops answering: the call fails once the handle's timeout
 * plus the library's margin has passed, and so does every later call.
 */
START_TEST(daemon_stops_answering)
{
	struct fake f;
	sr_client *c;
	sr_socket *s;
	sr_error err;
	long long t0, took;
	char *got;
	size_t len;

	signal(SIGPIPE, SIG_IGN);
	fake_start(&f, errors_serve, FAKE_SILENT);
	c = sr_client_open(f.path, &err);
	ck_assert_msg(c != NULL, "%s", err.message);
	s = sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &err);
	ck_assert_msg(s != NULL, "%s", err.message);
	ck_assert_int_eq(sr_socket_state(s)->receive_timeout, 100);
	t0 = now_ms();
	ck_assert_int_eq(sr_receive(s, -1, 0, &got, &len, &err), -1);
	took = now_ms() - t0;
	ck_assert_int_eq(err.code, SR_EDAEMON);
	ck_assert_str_eq(err.message, "daemon did not answer");
	ck_assert_msg(took >= 5000 && took < 8000, "gave up after %lld ms", took);
	ck_assert_int_eq(sr_get_option(s, SO_TYPE, NULL, &err), -1);
	ck_assert_int_eq(err.code, SR_EDAEMON);
	/* The session is gone, so the handle is closed with it: close succeeds. */
	ck_assert_int_eq(sr_close(s, &err), 0);
	ck_assert(sr_socket_state(s)->is_closed);
	sr_socket_free(s);
	sr_client_close(c);
	fake_stop(&f);
}
END_TEST

/*
 * A close that waits for its sends gives up when the reply it reads stalls in the middle
 * (the linger passes): the bytes read so far go back to the read buffer, and the Close
 * that follows reads that reply from its start, then its own. Nothing is lost or misread.
 */
START_TEST(close_gives_up_in_the_middle_of_a_reply)
{
	if (fast_path_off("write-behind"))
		return; /* it tests write-behind itself */
	struct fake f;
	sr_client *c;
	sr_socket *s;
	sr_error err;
	long long t0, took;

	signal(SIGPIPE, SIG_IGN);
	fake_start(&f, errors_serve, FAKE_SLOW_LARGE_REPLY);
	c = sr_client_open(f.path, &err);
	ck_assert_msg(c != NULL, "%s", err.message);
	s = sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &err);
	ck_assert_msg(s != NULL, "%s", err.message);
	ck_assert(sr_socket_state(s)->is_connected);
	ck_assert_int_eq(sr_send(s, "0123456789", 10, 0, &err), 10); /* goes behind */
	t0 = now_ms();
	ck_assert_msg(sr_close(s, &err) == 0, "close: %s", err.message);
	took = now_ms() - t0;
	ck_assert_msg(took >= 5000 && took < 9000, "close took %lld ms", took);
	ck_assert(sr_socket_state(s)->is_closed);
	sr_socket_free(s);
	/* Close succeeds on a broken connection too: the next call shows it is not. */
	s = sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &err);
	ck_assert_msg(s != NULL, "after the close: %s", err.message);
	sr_socket_free(s);
	sr_client_close(c);
	fake_stop(&f);
}
END_TEST

START_TEST(hello_refused)
{
	struct fake f;
	sr_error err;

	fake_start(&f, errors_serve, FAKE_HELLO_REFUSED);
	ck_assert_ptr_null(sr_client_open(f.path, &err));
	ck_assert_int_eq(err.code, SR_EPROTO);
	ck_assert_str_eq(err.message, "protocol 1 is not spoken here");
	fake_stop(&f);
}
END_TEST

Suite *
errors_suite(void)
{
	Suite *s = suite_create("errors");
	TCase *tc = tcase_create("daemon");
	TCase *local = tcase_create("local");

	tcase_add_checked_fixture(tc, fixture_daemon_up, fixture_daemon_down);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, connection_refused_names_address_and_errno);
	tcase_add_test(tc, port_not_specified);
	tcase_add_test(tc, existing_connection_refused);
	tcase_add_test(tc, send_on_closed_handle);
	tcase_add_test(tc, unsupported_constants_refused_locally);
	tcase_add_test(tc, unknown_handle_from_another_session);
	tcase_add_test(tc, receive_timeout);
	tcase_add_test(tc, nonblocking_receive_would_block);
	tcase_add_test(tc, default_path_from_environment);
	suite_add_tcase(s, tc);

	tcase_set_timeout(local, 30);
	tcase_add_test(local, daemon_unreachable);
	tcase_add_test(local, daemon_dies_mid_call);
	tcase_add_test(local, reply_with_unknown_call_id);
	tcase_add_test(local, reply_with_wrong_method);
	tcase_add_test(local, reply_with_reserved_flag);
	tcase_add_test(local, reply_undecodable);
	tcase_add_test(local, hello_refused);
	tcase_add_test(local, daemon_stops_answering);
	tcase_add_test(local, close_gives_up_in_the_middle_of_a_reply);
	suite_add_tcase(s, local);
	return s;
}
