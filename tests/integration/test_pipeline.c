/*
 * test_pipeline.c - calls that need no round trip of their own (protocol 1.2): sockets
 * whose id the client chooses, so that Connect follows Socket before its reply
 * (sr_socket_connect), and closes nobody waits for. The id rules are checked as a
 * hostile client (uid 65534) would break them; creations that fail are reported to the
 * calls pipelined behind them; a close that failed is reported to the next call; a
 * client of an older protocol, and a library facing an older daemon, still work.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "fake_daemon.h"
#include "fast_paths.h"
#include "rawcall.h"

#define NOBODY 65534
#define BASE SR_CLIENT_HANDLE_BASE

static char policy_dir[64], policy_path[128];

/* root may do everything but create AF_UNIX sockets (a creation to see fail) and send
 * datagrams to 127.0.0.3 (a send to see fail); nobody may
 * create TCP sockets and connect them to the loopback, and nothing else. */
static void
fixture_up(void)
{
	static char opt[] = "--policy";
	const char *extra[] = {opt, policy_path, NULL};

	signal(SIGPIPE, SIG_IGN);
	snprintf(policy_dir, sizeof(policy_dir), "/tmp/sockrpc-pipeline.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(policy_dir));
	snprintf(policy_path, sizeof(policy_path), "%s/test.policy", policy_dir);
	write_file(policy_path, "deny uid=0 create unix reason \"no unix sockets in this test\"\n"
	                        "deny uid=0 send udp 127.0.0.3 reason \"not to .3\"\n"
	                        "allow uid=0 *\n"
	                        "allow uid=65534 create tcp\n"
	                        "allow uid=65534 connect tcp @loopback\n");
	daemon_start(&test_daemon, extra);
	ck_assert_int_eq(chmod(test_daemon.dir, 0755), 0);
}

static void
fixture_down(void)
{
	fixture_daemon_down_serving();
	unlink(policy_path);
	rmdir(policy_dir);
}

static void
send_socket(int fd, uint64_t call, int64_t id, int wire_type)
{
	Sockrpc__SocketRequest rq = SOCKRPC__SOCKET_REQUEST__INIT;

	rq.family = SOCKRPC__FAMILY__FAMILY_INET;
	rq.type = wire_type;
	rq.handle = id;
	raw_send(fd, M_SOCKET, call, &rq.base);
}

static void
send_connect(int fd, uint64_t call, int64_t id, int port)
{
	Sockrpc__ConnectRequest rq = SOCKRPC__CONNECT_REQUEST__INIT;

	rq.handle = id;
	rq.host = "127.0.0.1";
	rq.port = port;
	rq.timeout_ms = 5000;
	raw_send(fd, M_CONNECT, call, &rq.base);
}

static void
send_close(int fd, uint64_t call, int64_t id)
{
	Sockrpc__CloseRequest rq = SOCKRPC__CLOSE_REQUEST__INIT;

	rq.handle = id;
	raw_send(fd, M_CLOSE, call, &rq.base);
}

/* Reads one reply to call; asserts its code and that its state (if any) is handle id's. */
static void
expect_state(int fd, uint64_t call, int code, int64_t id)
{
	uint64_t got;
	unsigned method;
	ProtobufCMessage *m = rc_reply(fd, &got, &method, 5000);

	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(got, call);
	ck_assert_msg(rc_code(m) == code, "call %llu: code %d, expected %d: %s",
	              (unsigned long long)call, rc_code(m), code, rc_message(m));
	if (code == 0) {
		ck_assert_ptr_nonnull(rc_state(m));
		ck_assert_int_eq(rc_state(m)->id, id);
	}
	protobuf_c_message_free_unpacked(m, NULL);
}

/* Asserts that the next reply is for call, has code and a message holding `words`. */
static void
expect_said(int fd, uint64_t call, int code, const char *words)
{
	const char *msg = rc_expect(fd, call, code);

	ck_assert_msg(strstr(msg, words) != NULL, "call %llu said \"%s\", expected \"%s\"",
	              (unsigned long long)call, msg, words);
}

/* Socket, Connect and Send written in one write, before any reply: all answered, the
 * bytes reach the peer, the socket has the id the client chose. */
START_TEST(socket_connect_send_in_one_write)
{
	Sockrpc__SocketRequest so = SOCKRPC__SOCKET_REQUEST__INIT;
	Sockrpc__ConnectRequest co = SOCKRPC__CONNECT_REQUEST__INIT;
	Sockrpc__SendRequest se = SOCKRPC__SEND_REQUEST__INIT;
	struct server srv;
	uint8_t buf[1024];
	size_t n;
	int fd;

	server_start(&srv, AF_INET, SERVER_SINK, 0);
	fd = raw_session(test_daemon.path);
	so.family = SOCKRPC__FAMILY__FAMILY_INET;
	so.type = SOCKRPC__TYPE__TYPE_STREAM;
	so.handle = BASE;
	co.handle = BASE;
	co.host = "127.0.0.1";
	co.port = srv.port;
	se.handle = BASE;
	se.data.data = (uint8_t *)"hello";
	se.data.len = 5;
	n = rc_frame(buf, M_SOCKET, 1, &so.base);
	n += rc_frame(buf + n, M_CONNECT, 2, &co.base);
	n += rc_frame(buf + n, M_SEND, 3, &se.base);
	raw_write(fd, buf, n);
	expect_state(fd, 1, 0, BASE);
	expect_state(fd, 2, 0, BASE);
	expect_state(fd, 3, 0, BASE);
	ck_assert_uint_eq(server_wait_received(&srv, 5, 5000), 5);
	/* The daemon still numbers what it chooses from 1, beside the client's ids. */
	ck_assert_int_eq(rc_socket(fd, 4, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM),
	                 1);
	send_socket(fd, 5, BASE + 1, SOCKRPC__TYPE__TYPE_STREAM);
	expect_state(fd, 5, 0, BASE + 1);
	send_close(fd, 6, BASE);
	expect_state(fd, 6, 0, BASE);
	send_close(fd, 7, 1);
	expect_state(fd, 7, 0, 1);
	send_close(fd, 8, BASE + 1);
	expect_state(fd, 8, 0, BASE + 1);
	/* Closed ids stay closed, never unknown. */
	send_connect(fd, 9, BASE, srv.port);
	expect_said(fd, 9, SOCKRPC__CODE__ECLOSED, "closed");
	close(fd);
	ck_assert_int_eq(server_wait_finished(&srv, 1, 5000), 1);
	server_stop(&srv);
}
END_TEST

/* The id rules, broken by a raw client of uid 65534: each bad id is a clear error for
 * that call, the socket an id already names is untouched, and the daemon serves on. */
static void
hostile_ids(int port)
{
	int fd = raw_session(test_daemon.path);
	uint64_t call = 10;

	/* Outside the client's range, or not the next one: refused, nothing taken. */
	send_socket(fd, ++call, 5, SOCKRPC__TYPE__TYPE_STREAM);
	expect_said(fd, call, SOCKRPC__CODE__EINVAL, "not a client id");
	send_socket(fd, ++call, -BASE, SOCKRPC__TYPE__TYPE_STREAM);
	expect_said(fd, call, SOCKRPC__CODE__EINVAL, "not a client id");
	send_socket(fd, ++call, BASE + 1, SOCKRPC__TYPE__TYPE_STREAM);
	expect_said(fd, call, SOCKRPC__CODE__EINVAL, "skips ids");
	send_socket(fd, ++call, INT64_MAX, SOCKRPC__TYPE__TYPE_STREAM);
	expect_said(fd, call, SOCKRPC__CODE__EINVAL, "skips ids");
	/* Calls on an id no Socket took: unknown. */
	send_connect(fd, ++call, BASE + 1, port);
	expect_said(fd, call, SOCKRPC__CODE__EBADHANDLE, "no socket");

	/* The first good id, then the same id again while it is open: the second Socket is
	 * refused and the Connect pipelined behind it reaches the first socket, the one the
	 * id names. */
	send_socket(fd, ++call, BASE, SOCKRPC__TYPE__TYPE_STREAM);
	expect_state(fd, call, 0, BASE);
	send_socket(fd, ++call, BASE, SOCKRPC__TYPE__TYPE_STREAM);
	send_connect(fd, call + 1, BASE, port);
	expect_said(fd, call, SOCKRPC__CODE__EINVAL, "already used");
	call++;
	expect_state(fd, call, 0, BASE);

	/* A creation the policy refuses takes its id; calls pipelined behind it say why. */
	send_socket(fd, ++call, BASE + 1, SOCKRPC__TYPE__TYPE_DGRAM);
	send_connect(fd, call + 1, BASE + 1, port);
	send_close(fd, call + 2, BASE + 1);
	expect_said(fd, call, SOCKRPC__CODE__EDENIED, "denied by policy");
	expect_said(fd, call + 1, SOCKRPC__CODE__EBADHANDLE, "never created");
	expect_said(fd, call + 2, SOCKRPC__CODE__EBADHANDLE, "EDENIED");
	call += 2;
	send_socket(fd, ++call, BASE + 1, SOCKRPC__TYPE__TYPE_STREAM);
	expect_said(fd, call, SOCKRPC__CODE__EINVAL, "already used");

	/* Closed, the id is not given again. */
	send_close(fd, ++call, BASE);
	expect_state(fd, call, 0, BASE);
	send_socket(fd, ++call, BASE, SOCKRPC__TYPE__TYPE_STREAM);
	expect_said(fd, call, SOCKRPC__CODE__EINVAL, "already used");
	send_socket(fd, ++call, BASE + 2, SOCKRPC__TYPE__TYPE_STREAM);
	expect_state(fd, call, 0, BASE + 2);
	send_connect(fd, ++call, BASE, port);
	expect_said(fd, call, SOCKRPC__CODE__ECLOSED, "closed");
	close(fd);

	/* Another session's ids are its own: this one's BASE + 2 is unknown there. */
	fd = raw_session(test_daemon.path);
	send_connect(fd, 1, BASE + 2, port);
	expect_said(fd, 1, SOCKRPC__CODE__EBADHANDLE, "no socket");
	close(fd);
}

START_TEST(hostile_ids_as_nobody)
{
	struct server srv;
	int status;
	pid_t pid;

	server_start(&srv, AF_INET, SERVER_ECHO, 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		if (setresgid(NOBODY, NOBODY, NOBODY) != 0 ||
		    setresuid(NOBODY, NOBODY, NOBODY) != 0)
			_exit(4);
		hostile_ids(srv.port);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
	assert_daemon_serves(&test_daemon);
	server_stop(&srv);
}
END_TEST

/* A client of protocol 1.1 (no ids) is served as before: the daemon numbers its sockets. */
START_TEST(old_client_gets_daemon_ids)
{
	int fd = raw_session(test_daemon.path);

	ck_assert_int_eq(rc_socket(fd, 2, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM),
	                 1);
	ck_assert_int_eq(rc_socket(fd, 3, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM),
	                 2);
	close(fd);
}
END_TEST

/* The library: one call makes a connected socket with an id it chose; echo works; a
 * refused creation is reported as itself, not as the Connect behind it. */
START_TEST(library_socket_connect)
{
	struct server srv;
	sr_client *c;
	sr_socket *s;
	sr_error err;
	char *out = NULL;
	size_t len = 0;

	server_start(&srv, AF_INET, SERVER_ECHO, 0);
	c = daemon_client(&test_daemon);
	s = sr_socket_connect(c, AF_INET, SOCK_STREAM, 0, "127.0.0.1", srv.port, -1, &err);
	ck_assert_msg(s != NULL, "%s", err.message);
	if (!fast_path_off("pipelined"))
		ck_assert_int_ge(sr_socket_state(s)->id, BASE);
	ck_assert(sr_socket_state(s)->is_connected);
	ck_assert_int_eq(sr_send(s, "ping", 4, 0, &err), 4);
	ck_assert_int_eq(sr_read(s, 4, &out, &len, &err), 0);
	ck_assert_uint_eq(len, 4);
	ck_assert_mem_eq(out, "ping", 4);
	free(out);
	sr_socket_free(s);

	ck_assert_ptr_null(
	    sr_socket_connect(c, AF_UNIX, SOCK_STREAM, 0, "/nonexistent/x", 0, -1, &err));
	ck_assert_int_eq(err.code, SR_EDENIED);
	ck_assert_msg(strstr(err.message, "no unix sockets") != NULL, "%s", err.message);
	/* A refused connection: the Connect's own error. */
	server_stop(&srv);
	ck_assert_ptr_null(
	    sr_socket_connect(c, AF_INET, SOCK_STREAM, 0, "127.0.0.1", srv.port, -1, &err));
	ck_assert_int_eq(err.code, SR_EOS);
	ck_assert_int_eq(err.sys_errno, ECONNREFUSED);
	/* Nothing left behind in the session. */
	s = sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &err);
	ck_assert_ptr_nonnull(s);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

/* A UDP socket bound to the loopback, its port in *port. */
static int
udp_peer(int *port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

/* A DNS-style exchange: socket and first datagram sent unwaited, the answer received. */
START_TEST(library_udp_exchange)
{
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	char buf[64], host[64], *out = NULL;
	size_t len = 0;
	int port, peer = udp_peer(&port), from_port;
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s;
	sr_error err;
	ssize_t n;

	s = sr_socket_send_to(c, AF_INET, SOCK_DGRAM, 0, "127.0.0.1", port, "query", 5, 0, &err);
	ck_assert_msg(s != NULL, "%s", err.message);
	if (!fast_path_off("pipelined"))
		ck_assert_int_ge(sr_socket_state(s)->id, BASE);
	n = recvfrom(peer, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
	ck_assert_int_eq(n, 5);
	ck_assert_mem_eq(buf, "query", 5);
	ck_assert_int_eq(sendto(peer, "answer", 6, 0, (struct sockaddr *)&from, flen), 6);
	ck_assert_int_eq(sr_receive_from(s, -1, 0, &out, &len, host, &from_port, &err), 0);
	ck_assert_uint_eq(len, 6);
	ck_assert_mem_eq(out, "answer", 6);
	ck_assert_str_eq(host, "127.0.0.1");
	ck_assert_int_eq(from_port, port);
	free(out);
	ck_assert_int_eq(sr_close(s, &err), 0);
	sr_socket_free(s);
	sr_client_close(c);
	close(peer);
}
END_TEST

/* What went unwaited and failed is reported by the receive, which does not hang: a
 * refused creation, then a refused send. */
START_TEST(library_udp_failures_reported)
{
	sr_client *c = daemon_client(&test_daemon);
	int port, peer = udp_peer(&port);
	char *out = NULL;
	size_t len = 0;
	sr_socket *s;
	sr_error err;

	s = sr_socket_send_to(c, AF_UNIX, SOCK_DGRAM, 0, "/nonexistent/x", 0, "q", 1, 0, &err);
	if (s != NULL) { /* pipelined: the receive reports it */
		ck_assert_int_eq(sr_receive_from(s, -1, 0, &out, &len, NULL, NULL, &err), -1);
		ck_assert(sr_socket_state(s)->is_closed);
	}
	ck_assert_int_eq(err.code, SR_EDENIED);
	ck_assert_msg(strstr(err.message, "no unix sockets") != NULL, "%s", err.message);
	sr_socket_free(s);

	s = sr_socket_send_to(c, AF_INET, SOCK_DGRAM, 0, "127.0.0.3", port, "q", 1, 0, &err);
	if (s != NULL) {
		ck_assert_int_eq(sr_receive_from(s, -1, 0, &out, &len, NULL, NULL, &err), -1);
		ck_assert_int_eq(sr_close(s, NULL), 0);
	}
	ck_assert_int_eq(err.code, SR_EDENIED);
	ck_assert_msg(strstr(err.message, "not to .3") != NULL, "%s", err.message);
	sr_socket_free(s);

	/* The session goes on. */
	s = sr_socket_send_to(c, AF_INET, SOCK_DGRAM, 0, "127.0.0.1", port, "q", 1, 0, &err);
	ck_assert_msg(s != NULL, "%s", err.message);
	ck_assert_int_eq(sr_get_option(s, SO_ERROR, &(long){0}, &err), 0);
	sr_socket_free(s);
	sr_client_close(c);
	close(peer);
}
END_TEST

/* Closes nobody waits for: each returns at once, the peer sees each connection end, two
 * thousand one after the other (more than the library lets go unanswered) do not stall. */
START_TEST(unwaited_closes)
{
	enum { N = 2048 }; /* a multiple of 32 */
	struct server srv;
	sr_socket **s = calloc(N, sizeof(*s));
	sr_client *c;
	sr_error err;
	long v;

	server_start(&srv, AF_INET, SERVER_SILENT, 0);
	c = daemon_client(&test_daemon);
	for (int i = 0; i < N; i++) {
		s[i] =
		    sr_socket_connect(c, AF_INET, SOCK_STREAM, 0, "127.0.0.1", srv.port, -1, &err);
		ck_assert_msg(s[i] != NULL, "%d: %s", i, err.message);
		if (i % 32 == 31) { /* the server holds at most SERVER_MAX_CONNS */
			for (int j = i - 31; j <= i; j++) {
				ck_assert_int_eq(sr_close(s[j], &err), 0);
				ck_assert(sr_socket_state(s[j])->is_closed);
			}
			ck_assert_int_eq(server_wait_finished(&srv, i + 1, 5000), i + 1);
		}
	}
	/* More closes in a row than may go unanswered: the rest wait, nothing stalls. */
	for (int i = 0; i < 200; i++) {
		sr_socket_free(s[i]);
		s[i] = sr_socket_new(c, AF_INET, SOCK_DGRAM, 0, &err);
		ck_assert_msg(s[i] != NULL, "%s", err.message);
	}
	for (int i = 0; i < 200; i++)
		ck_assert_int_eq(sr_close(s[i], &err), 0);
	ck_assert_int_eq(daemon_wait_fds(&test_daemon, test_daemon.idle_fds + 2, 5000),
	                 test_daemon.idle_fds + 2); /* the session's connection and channel */
	/* Closing again reads the first close's outcome: it worked. */
	ck_assert_int_eq(sr_close(s[0], &err), 0);
	ck_assert_int_eq(sr_get_option(s[1], SO_ERROR, &v, &err), -1);
	ck_assert_int_eq(err.code, SR_ECLOSED);
	for (int i = 0; i < N; i++)
		sr_socket_free(s[i]);
	free(s);
	sr_client_close(c);
	server_stop(&srv);
}
END_TEST

/* --- against a fake daemon: an older one, and one whose Close fails ----------------- */

enum { FAKE_OLD, FAKE_CLOSE_FAILS };

/* Answers Hello as protocol 1.(mode == FAKE_OLD ? 0 : 2), then Socket, Connect, Close
 * and GetOption as the mode says. An old daemon sees no handle id in Socket (it would
 * not know the field) and Connect only after Socket's reply. */
static void
pipeline_serve(struct fake *f, int fd)
{
	Sockrpc__HelloReply hello = SOCKRPC__HELLO_REPLY__INIT;
	Sockrpc__SocketState state = SOCKRPC__SOCKET_STATE__INIT;
	Sockrpc__Status bad = SOCKRPC__STATUS__INIT;
	struct sr_frame_header h;
	uint8_t buf[4096];
	int64_t id = 1;

	if (fake_read(fd, &h, buf, sizeof(buf)) == -1)
		return;
	hello.major = SR_PROTOCOL_MAJOR;
	hello.minor = f->mode == FAKE_OLD ? 0 : 2;
	hello.session_id = 77;
	hello.max_frame = SR_MAX_FRAME;
	hello.max_payload = SR_MAX_PAYLOAD;
	fake_reply(fd, 0, h.call_id, SR_FRAME_FLAG_REPLY, &hello.base, NULL, 0);
	while (fake_read(fd, &h, buf, sizeof(buf)) == 0) {
		ProtobufCMessage *rq = protobuf_c_message_unpack(
		    sockrpc__sock_rpc__descriptor.methods[h.method].input, NULL, h.length, buf);
		Sockrpc__SocketReply rep = SOCKRPC__SOCKET_REPLY__INIT; /* status, state */

		if (rq == NULL)
			return;
		sockrpc__socket_state__init(&state);
		rep.status = (Sockrpc__Status *)&bad;
		if (h.method == fake_method("Socket")) {
			int64_t want = ((Sockrpc__SocketRequest *)rq)->handle;

			if (f->mode == FAKE_OLD && want != 0)
				bad.code =
				    SOCKRPC__CODE__EPROTO; /* the library must not send one */
			id = want != 0 ? want : 1;
			fake_socket_state(&state, false);
		} else if (h.method == fake_method("Connect")) {
			fake_socket_state(&state, true);
		} else if (h.method == fake_method("Close")) {
			fake_socket_state(&state, false);
			state.is_closed = true;
			if (f->mode == FAKE_CLOSE_FAILS) {
				bad.code = SOCKRPC__CODE__EOS;
				bad.errno_name = "EIO";
				bad.errno_number = EIO;
				bad.message = "close failed in the fake";
			}
		} else {
			fake_socket_state(&state, false);
		}
		state.id = id;
		rep.state = &state;
		fake_reply(fd, h.method, h.call_id, SR_FRAME_FLAG_REPLY, &rep.base, NULL, 0);
		bad.code = 0;
		bad.errno_name = bad.message = "";
		bad.errno_number = 0;
		protobuf_c_message_free_unpacked(rq, NULL);
	}
}

START_TEST(library_against_an_older_daemon)
{
	struct fake f;
	sr_client *c;
	sr_socket *s;
	sr_error err;

	signal(SIGPIPE, SIG_IGN);
	fake_start(&f, pipeline_serve, FAKE_OLD);
	c = sr_client_open(f.path, &err);
	ck_assert_msg(c != NULL, "%s", err.message);
	s = sr_socket_connect(c, AF_INET, SOCK_STREAM, 0, "127.0.0.1", 9, -1, &err);
	ck_assert_msg(s != NULL, "%s", err.message);
	ck_assert_int_eq(sr_socket_state(s)->id, 1);
	ck_assert(sr_socket_state(s)->is_connected);
	sr_socket_free(s);
	sr_client_close(c);
	fake_stop(&f);
}
END_TEST

/* A close that went unwaited and failed: closing again, or the next call, says so. */
START_TEST(failed_unwaited_close_is_reported)
{
	struct fake f;
	sr_client *c;
	sr_socket *s;
	sr_error err;
	long v;

	if (fast_path_off("pipelined"))
		return; /* every close waits: nothing to report later */
	signal(SIGPIPE, SIG_IGN);
	fake_start(&f, pipeline_serve, FAKE_CLOSE_FAILS);
	c = sr_client_open(f.path, &err);
	ck_assert_msg(c != NULL, "%s", err.message);
	s = sr_socket_connect(c, AF_INET, SOCK_STREAM, 0, "127.0.0.1", 9, -1, &err);
	ck_assert_msg(s != NULL, "%s", err.message);
	ck_assert_int_eq(s != NULL ? sr_socket_state(s)->id : 0, BASE);
	ck_assert_int_eq(sr_close(s, &err), 0); /* unwaited */
	ck_assert_int_eq(sr_get_option(s, SO_ERROR, &v, &err), -1);
	ck_assert_int_eq(err.code, SR_EOS);
	ck_assert_msg(strstr(err.message, "close failed in the fake") != NULL, "%s", err.message);
	/* Reported once; then the socket reads closed. */
	ck_assert_int_eq(sr_get_option(s, SO_ERROR, &v, &err), -1);
	ck_assert_int_eq(err.code, SR_ECLOSED);
	sr_socket_free(s);

	/* The same failure read by closing again. */
	s = sr_socket_connect(c, AF_INET, SOCK_STREAM, 0, "127.0.0.1", 9, -1, &err);
	ck_assert_msg(s != NULL, "%s", err.message);
	ck_assert_int_eq(sr_close(s, &err), 0);
	ck_assert_int_eq(sr_close(s, &err), -1);
	ck_assert_int_eq(err.code, SR_EOS);
	sr_socket_free(s);
	sr_client_close(c);
	fake_stop(&f);
}
END_TEST

Suite *
pipeline_suite(void)
{
	Suite *s = suite_create("pipeline");
	TCase *tc = tcase_create("daemon");
	TCase *fake = tcase_create("fake");

	tcase_add_checked_fixture(tc, fixture_up, fixture_down);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, socket_connect_send_in_one_write);
	tcase_add_test(tc, hostile_ids_as_nobody);
	tcase_add_test(tc, old_client_gets_daemon_ids);
	tcase_add_test(tc, library_socket_connect);
	tcase_add_test(tc, unwaited_closes);
	tcase_add_test(tc, library_udp_exchange);
	tcase_add_test(tc, library_udp_failures_reported);
	suite_add_tcase(s, tc);
	tcase_set_timeout(fake, 30);
	tcase_add_test(fake, library_against_an_older_daemon);
	tcase_add_test(fake, failed_unwaited_close_is_reported);
	suite_add_tcase(s, fake);
	return s;
}
