/*
 * test_handback.c - sockets handed back (issue 16) through the real daemon: a descriptor
 * from sr_connect_fd carries TLS (OpenSSL's SSL_set_fd against a local `openssl s_server`
 * with a certificate made for the test) and works under epoll when non-blocking; the
 * daemon keeps no copy (the client's close sends the FIN, its fd count is back to idle
 * while the client still holds the socket) and audits the handback with the socket's
 * SO_COOKIE; accept handback refuses (closes, audits) a peer the policy denies and hands
 * back an allowed one. Against a fake daemon: extra, missing and truncated descriptors
 * leak nothing into the client. Attacks by an unprivileged uid: test_handback_safety.c.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fake_daemon.h"
#include "handback_env.h"
#include "harness.h"

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

/* --- a local openssl s_server with a certificate made now --- */

struct tls_server {
	pid_t pid;
	int port;
	char cert[160], key[160];
};

static bool
port_listening(int port)
{
	char want[16], line[256];
	FILE *f = fopen("/proc/net/tcp", "r");
	bool seen = false;

	if (f == NULL)
		return false;
	snprintf(want, sizeof(want), ":%04X ", port);
	while (!seen && fgets(line, sizeof(line), f) != NULL)
		seen = strstr(line, want) != NULL && strstr(line, " 0A ") != NULL; /* LISTEN */
	fclose(f);
	return seen;
}

static void
tls_server_start(struct tls_server *t)
{
	char cmd[512], accept_arg[32];
	long long deadline;

	snprintf(t->cert, sizeof(t->cert), "%s/cert.pem", hb.dir);
	snprintf(t->key, sizeof(t->key), "%s/key.pem", hb.dir);
	snprintf(cmd, sizeof(cmd),
	         "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
	         "-keyout %s -out %s -days 1 -subj /CN=localhost "
	         "-addext subjectAltName=DNS:localhost >/dev/null 2>&1",
	         t->key, t->cert);
	ck_assert_msg(system(cmd) == 0, "openssl req failed (tools/install-deps installs openssl)");
	t->port = hb_free_port();
	snprintf(accept_arg, sizeof(accept_arg), "127.0.0.1:%d", t->port);
	t->pid = fork();
	ck_assert_int_ge(t->pid, 0);
	if (t->pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		execlp("openssl", "openssl", "s_server", "-accept", accept_arg, "-cert", t->cert,
		       "-key", t->key, "-rev", "-quiet", (char *)NULL);
		_exit(127);
	}
	deadline = now_ms() + 10000;
	while (!port_listening(t->port) && now_ms() < deadline)
		sleep_ms(20);
	ck_assert_msg(port_listening(t->port), "openssl s_server did not listen on %d", t->port);
}

static void
tls_server_stop(struct tls_server *t)
{
	if (t->pid > 0) {
		kill(t->pid, SIGTERM);
		waitpid(t->pid, NULL, 0);
		t->pid = 0;
	}
}

/* A connected socket handed back carries TLS: OpenSSL drives the descriptor itself. */
START_TEST(tls_over_handed_back_socket)
{
	struct tls_server srv;
	sr_client *c;
	sr_error err;
	SSL_CTX *ctx;
	SSL *ssl;
	char buf[64] = "";
	int fd, n, got = 0;

	hb_policy("allow uid=0 create tcp\n"
	          "allow uid=0 connect tcp 127.0.0.1 handback\n");
	hb_start();
	tls_server_start(&srv);
	c = daemon_client(&test_daemon);
	fd = sr_connect_fd(c, AF_INET, SOCK_STREAM, "127.0.0.1", srv.port, 5000, &err);
	ck_assert_msg(fd >= 0, "sr_connect_fd: %d %s", err.code, err.message);

	ctx = SSL_CTX_new(TLS_client_method());
	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(SSL_CTX_load_verify_locations(ctx, srv.cert, NULL), 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	ssl = SSL_new(ctx);
	ck_assert_int_eq(SSL_set1_host(ssl, "localhost"), 1);
	ck_assert_int_eq(SSL_set_fd(ssl, fd), 1);
	ck_assert_msg(SSL_connect(ssl) == 1, "TLS handshake over the handed-back socket failed: %s",
	              ERR_error_string(ERR_get_error(), NULL));
	ck_assert_int_eq(SSL_write(ssl, "hello handback\n", 15), 15);
	while (got < 15 && (n = SSL_read(ssl, buf + got, (int)sizeof(buf) - 1 - got)) > 0)
		got += n;
	ck_assert_str_eq(buf, "kcabdnah olleh\n"); /* s_server -rev reverses each line */
	SSL_shutdown(ssl);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	sr_client_close(c);
	tls_server_stop(&srv);
	hb_finish();
}
END_TEST

/* Non-blocking: the descriptor comes back at once, and an event loop drives it. */
START_TEST(epoll_on_nonblocking_socket)
{
	struct server srv;
	struct epoll_event ev = {.events = EPOLLOUT}, out;
	sr_client *c;
	sr_error err;
	char buf[32] = "";
	int fd, ep, so_error = -1;
	socklen_t len = sizeof(so_error);

	hb_policy("allow uid=0 create tcp\n"
	          "allow uid=0 connect tcp 127.0.0.1 handback\n");
	hb_start();
	server_start(&srv, AF_INET, SERVER_ECHO, 0);
	c = daemon_client(&test_daemon);
	fd = sr_connect_fd(c, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, "127.0.0.1", srv.port, 5000,
	                   &err);
	ck_assert_msg(fd >= 0, "sr_connect_fd: %d %s", err.code, err.message);
	ck_assert_msg(fcntl(fd, F_GETFL) & O_NONBLOCK, "asked for SOCK_NONBLOCK");
	ck_assert_msg(fcntl(fd, F_GETFD) & FD_CLOEXEC, "received without MSG_CMSG_CLOEXEC");

	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.data.fd = fd;
	ck_assert_int_eq(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
	ck_assert_int_eq(epoll_wait(ep, &out, 1, 5000), 1);
	ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len), 0);
	ck_assert_int_eq(so_error, 0);
	ck_assert_int_eq(recv(fd, buf, sizeof(buf), 0), -1); /* nothing yet, and no wait */
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(send(fd, "ping", 4, 0), 4);
	ev.events = EPOLLIN;
	ck_assert_int_eq(epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev), 0);
	ck_assert_int_eq(epoll_wait(ep, &out, 1, 5000), 1);
	ck_assert_int_eq(recv(fd, buf, sizeof(buf), 0), 4);
	ck_assert_str_eq(buf, "ping");
	close(ep);
	close(fd);
	sr_client_close(c);
	server_stop(&srv);
	hb_finish();
}
END_TEST

/* Without a reply channel the descriptor rides on the connection's replies. */
START_TEST(handback_without_reply_channel)
{
	struct server srv;
	sr_client *c;
	sr_error err;
	char buf[8] = "";
	int fd;

	hb_policy("allow uid=0 create tcp\n"
	          "allow uid=0 connect tcp 127.0.0.1 handback\n");
	hb_start_with("--no-reply-channel");
	server_start(&srv, AF_INET, SERVER_ECHO, 0);
	c = daemon_client(&test_daemon);
	for (int i = 0; i < 3; i++) {
		fd = sr_connect_fd(c, AF_INET, SOCK_STREAM, "127.0.0.1", srv.port, 5000, &err);
		ck_assert_msg(fd >= 0, "sr_connect_fd: %d %s", err.code, err.message);
		ck_assert_int_eq(send(fd, "abc", 3, 0), 3);
		ck_assert_int_eq(recv(fd, buf, 3, MSG_WAITALL), 3);
		ck_assert_str_eq(buf, "abc");
		close(fd);
	}
	sr_client_close(c);
	server_stop(&srv);
	hb_finish();
}
END_TEST

/* Entries of /proc/pid/fd. */
static int
fd_count_of(pid_t pid)
{
	char path[64];
	int n = 0;

	for (int fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
		n += access(path, F_OK) == 0;
	}
	return n;
}

/* The daemon keeps no copy: its fd count is idle while the client holds the socket, the
 * client's close sends the FIN, and the audit line carries the socket's cookie. */
START_TEST(daemon_keeps_no_copy_and_audits_cookie)
{
	struct server srv;
	sr_client *c;
	sr_error err;
	uint64_t cookie = 0;
	socklen_t len = sizeof(cookie);
	char want[64];
	int fd, busy, parent;

	hb_policy("allow uid=0 create tcp\n"
	          "allow uid=0 connect tcp 127.0.0.1 handback\n");
	hb_start();
	server_start(&srv, AF_INET, SERVER_ECHO, 0);
	c = daemon_client(&test_daemon);
	/* Idle, plus the session: its connection and reply channel (the channel's other end
	 * may still be closing as Hello returns). */
	busy = test_daemon.idle_fds + 2;
	ck_assert_int_eq(daemon_wait_fds(&test_daemon, busy, HARNESS_IDLE_MS), busy);
	parent = fd_count_of(test_daemon.pid); /* the privileged parent made the socket */
	fd = sr_connect_fd(c, AF_INET, SOCK_STREAM, "127.0.0.1", srv.port, 5000, &err);
	ck_assert_msg(fd >= 0, "sr_connect_fd: %d %s", err.code, err.message);
	ck_assert_int_eq(daemon_wait_fds(&test_daemon, busy, HARNESS_IDLE_MS), busy);
	ck_assert_int_eq(fd_count_of(test_daemon.pid), parent);
	ck_assert_msg(!(fcntl(fd, F_GETFL) & O_NONBLOCK), "a blocking connect gives a blocking fd");
	ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len), 0);
	snprintf(want, sizeof(want), "\"cookie\":%" PRIu64, cookie);
	ck_assert_msg(hb_wait_audit(want, 1), "no handback line with %s in the audit", want);
	ck_assert_int_eq(send(fd, "x", 1, 0), 1);
	ck_assert_uint_eq(server_wait_received(&srv, 1, 5000), 1);
	close(fd);
	ck_assert_int_eq(server_wait_finished(&srv, 1, 5000), 1); /* the FIN came */
	sr_client_close(c);
	server_stop(&srv);
	hb_finish();
}
END_TEST

/* A non-blocking connect still under way is handed back as it is: the listener's accept
 * queue is full, so the kernel drops the SYN until the test makes room. */
START_TEST(handback_while_connecting)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct pollfd p;
	socklen_t len = sizeof(sin);
	sr_client *c;
	sr_error err;
	int lfd, filler, fd, peer, so_error = -1;
	char buf[8] = "";

	hb_policy("allow uid=0 create tcp\n"
	          "allow uid=0 connect tcp 127.0.0.1 handback\n");
	hb_start();
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(lfd, 0), 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
	filler = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(connect(filler, (struct sockaddr *)&sin, sizeof(sin)), 0);
	c = daemon_client(&test_daemon);
	fd = sr_connect_fd(c, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, "127.0.0.1",
	                   ntohs(sin.sin_port), 5000, &err);
	ck_assert_msg(fd >= 0, "sr_connect_fd: %d %s", err.code, err.message);
	p = (struct pollfd){.fd = fd, .events = POLLOUT};
	ck_assert_int_eq(poll(&p, 1, 200), 0); /* still connecting, in the client's hands */
	close(accept(lfd, NULL, NULL));        /* room: the SYN retried gets through */
	ck_assert_int_eq(poll(&p, 1, 10000), 1);
	len = sizeof(so_error);
	ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len), 0);
	ck_assert_int_eq(so_error, 0);
	peer = accept(lfd, NULL, NULL);
	ck_assert_int_ge(peer, 0);
	ck_assert_int_eq(send(fd, "syn", 3, 0), 3);
	ck_assert_int_eq(recv(peer, buf, 3, MSG_WAITALL), 3);
	ck_assert_str_eq(buf, "syn");
	ck_assert_int_eq(hb_count_audit("handed back, connecting"), 1);
	close(peer);
	close(fd);
	close(filler);
	close(lfd);
	sr_client_close(c);
	hb_finish();
}
END_TEST

/* Connects a client socket from `from` to 127.0.0.1:port. */
static int
peer_from(const char *from, int port)
{
	struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	inet_pton(AF_INET, from, &src.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
	dst.sin_port = htons((uint16_t)port);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&src, sizeof(src)), 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&dst, sizeof(dst)), 0);
	return fd;
}

/* True if fd reads end of stream (or a reset) within timeout_ms. */
static bool
hung_up(int fd, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char b;

	return poll(&p, 1, timeout_ms) == 1 && recv(fd, &b, 1, MSG_DONTWAIT) <= 0;
}

static sr_socket *
listener(sr_client *c, int *port)
{
	sr_socket *l = sr_socket_new(c, AF_INET, SOCK_STREAM, 0, NULL);
	sr_sockinfo info;
	sr_error err;

	ck_assert_ptr_nonnull(l);
	ck_assert_msg(sr_bind(l, 0, "127.0.0.1", &err) == 0, "bind: %s", err.message);
	ck_assert_msg(sr_listen(l, 8, &err) == 0, "listen: %s", err.message);
	ck_assert_int_eq(sr_info(l, &info, &err), 0);
	*port = info.port;
	return l;
}

/* The daemon keeps the listener; a denied peer is closed and audited, an allowed one
 * arrives as a working descriptor. */
START_TEST(accept_handback_checks_the_peer)
{
	struct sockaddr_in peer, mine;
	socklen_t len = sizeof(peer);
	sr_client *c;
	sr_socket *l;
	sr_error err;
	char buf[8] = "";
	int port, denied, allowed, fd;

	hb_policy("allow uid=0 create tcp\n"
	          "allow uid=0 bind,listen tcp 127.0.0.1\n"
	          "allow uid=0 accept tcp 127.0.0.1 handback\n");
	hb_start();
	c = daemon_client(&test_daemon);
	l = listener(c, &port);
	denied = peer_from("127.0.0.2", port); /* no accept rule covers 127.0.0.2 */
	allowed = peer_from("127.0.0.1", port);
	fd = sr_accept_fd(l, &err);
	ck_assert_msg(fd >= 0, "sr_accept_fd: %d %s", err.code, err.message);
	ck_assert_msg(hung_up(denied, 5000), "the denied peer was not closed");
	ck_assert_int_eq(getpeername(fd, (struct sockaddr *)&peer, &len), 0);
	len = sizeof(mine);
	ck_assert_int_eq(getsockname(allowed, (struct sockaddr *)&mine, &len), 0);
	ck_assert_int_eq(peer.sin_port, mine.sin_port); /* the allowed peer, not the denied */
	ck_assert_int_eq(send(allowed, "hi", 2, 0), 2);
	ck_assert_int_eq(recv(fd, buf, 2, MSG_WAITALL), 2);
	ck_assert_str_eq(buf, "hi");
	ck_assert_int_eq(send(fd, "yo", 2, 0), 2);
	ck_assert_int_eq(recv(allowed, buf, 2, MSG_WAITALL), 2);
	ck_assert_str_eq(buf, "yo");
	ck_assert_msg(hb_wait_audit("\"op\":\"accept\",\"family\":\"ipv4\",\"type\":\"stream\","
	                            "\"address\":\"127.0.0.2\"",
	                            1),
	              "the denied peer is not in the audit");
	ck_assert_int_eq(hb_count_audit("\"decision\":\"deny\",\"rule\":\"default\""), 1);
	close(fd);
	close(allowed);
	close(denied);
	sr_socket_free(l);
	sr_client_close(c);
	hb_finish();
}
END_TEST

/* An accept rule without handback: the connection is accepted, refused for handback
 * (naming the rule) and closed; a plain accept of the next peer still works. */
START_TEST(accept_without_handback_rule_is_refused)
{
	sr_client *c;
	sr_socket *l, *a;
	sr_error err;
	int port, p1, p2;

	hb_policy("allow uid=0 create tcp\n"
	          "allow uid=0 bind,listen tcp 127.0.0.1\n"
	          "allow uid=0 accept tcp 127.0.0.1\n");
	hb_start();
	c = daemon_client(&test_daemon);
	l = listener(c, &port);
	p1 = peer_from("127.0.0.1", port);
	ck_assert_int_eq(sr_accept_fd(l, &err), -1);
	ck_assert_int_eq(err.code, SR_EDENIED);
	ck_assert_msg(strstr(err.message, "test.policy:3") && strstr(err.message, "handback"), "%s",
	              err.message);
	ck_assert_msg(hung_up(p1, 5000), "the refused connection stayed open");
	p2 = peer_from("127.0.0.1", port);
	a = sr_accept(l, &err);
	ck_assert_msg(a != NULL, "accept: %s", err.message);
	ck_assert_int_eq(hb_count_audit("\"event\":\"handback\""), 1);
	sr_socket_free(a);
	close(p1);
	close(p2);
	sr_socket_free(l);
	sr_client_close(c);
	hb_finish();
}
END_TEST

/* --- a hostile daemon: descriptors it should not send --- */

enum { FDS_TWO, FDS_NONE, FDS_TRUNCATED, FDS_UNASKED, FDS_NOT_SOCKET, OLD_DAEMON };

/* Sends one frame of m with n descriptors (copies of `fd`) on it. */
static void
reply_with_fds(int conn, unsigned method, uint64_t id, const ProtobufCMessage *m, int fd, int n)
{
	uint8_t frame[512];
	struct sr_frame_header h = {
	    .method = (uint16_t)method, .flags = SR_FRAME_FLAG_REPLY, .call_id = id};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(8 * sizeof(int))];
	} control;
	struct iovec iov = {.iov_base = frame};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *cm;

	h.length = (uint32_t)protobuf_c_message_pack(m, frame + SR_FRAME_HEADER_SIZE);
	frame_header_encode(&h, frame);
	iov.iov_len = SR_FRAME_HEADER_SIZE + h.length;
	if (n > 0) {
		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE((size_t)n * sizeof(int));
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
		for (int i = 0; i < n; i++)
			memcpy(CMSG_DATA(cm) + i * sizeof(int), &fd, sizeof(int));
	}
	ck_assert_int_eq(sendmsg(conn, &msg, MSG_NOSIGNAL), (ssize_t)iov.iov_len);
}

static void
serve_fds(struct fake *f, int conn)
{
	Sockrpc__SocketReply sock = SOCKRPC__SOCKET_REPLY__INIT;
	Sockrpc__HandbackReply hb_reply = SOCKRPC__HANDBACK_REPLY__INIT;
	Sockrpc__SocketState state = SOCKRPC__SOCKET_STATE__INIT;
	Sockrpc__Status ok = SOCKRPC__STATUS__INIT;
	struct sr_frame_header h;
	uint8_t buf[4096];
	int gift = f->mode == FDS_NOT_SOCKET ? open("/dev/null", O_RDONLY | O_CLOEXEC)
	                                     : socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int junk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0); /* what nobody asked for */

	if (f->mode == OLD_DAEMON) { /* protocol 1.1: no Handback rpc */
		Sockrpc__HelloReply hello = SOCKRPC__HELLO_REPLY__INIT;

		if (fake_read(conn, &h, buf, sizeof(buf)) == 0) {
			hello.major = SR_PROTOCOL_MAJOR;
			hello.minor = 1;
			hello.session_id = 77;
			fake_reply(conn, 0, h.call_id, SR_FRAME_FLAG_REPLY, &hello.base, NULL, 0);
			fake_hold(conn); /* a request now would be a protocol error */
		}
		goto out;
	}
	if (fake_hello(conn, 0, 0) != 0 || fake_read(conn, &h, buf, sizeof(buf)) != 0)
		goto out;
	fake_socket_state(&state, true);
	sock.status = &ok;
	sock.state = &state;
	/* FDS_UNASKED: two descriptors ride on the Socket reply, which asked for none. */
	reply_with_fds(conn, h.method, h.call_id, &sock.base, junk, f->mode == FDS_UNASKED ? 2 : 0);
	if (fake_read(conn, &h, buf, sizeof(buf)) != 0)
		goto out;
	state.is_closed = true;
	state.is_connected = state.is_client = false;
	hb_reply.status = &ok;
	hb_reply.state = &state;
	reply_with_fds(conn, h.method, h.call_id, &hb_reply.base, gift,
	               f->mode == FDS_TWO         ? 2
	               : f->mode == FDS_NONE      ? 0
	               : f->mode == FDS_TRUNCATED ? 6 /* the client takes at most 4 */
	                                          : 1);
	fake_hold(conn);
out:
	close(gift);
	close(junk);
}

static int
own_fd_count(void)
{
	char path[64];
	int n = 0;

	for (int fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n += access(path, F_OK) == 0;
	}
	return n;
}

static void
hostile_case(int mode, int want_code)
{
	struct fake f;
	sr_client *c;
	sr_socket *s;
	sr_error err;
	int base = own_fd_count(), before, fd;

	fake_start(&f, serve_fds, mode);
	c = sr_client_open(f.path, &err);
	ck_assert_msg(c != NULL, "open: %s", err.message);
	s = sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &err);
	ck_assert_msg(s != NULL, "socket: %s", err.message);
	before = own_fd_count(); /* the fake's and the connection's */
	fd = sr_socket_take_fd(s, &err);
	if (want_code == 0) {
		int type = -1;
		socklen_t len = sizeof(type);

		ck_assert_msg(fd >= 0, "take: %d %s", err.code, err.message);
		ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len), 0);
		ck_assert_msg(type == SOCK_STREAM,
		              "the handback gave the descriptor nobody asked for");
		ck_assert_msg(fcntl(fd, F_GETFD) & FD_CLOEXEC, "not close-on-exec");
		ck_assert_int_eq(own_fd_count(), before + 1); /* this socket, nothing else */
		close(fd);
	} else {
		ck_assert_int_eq(fd, -1);
		ck_assert_int_eq(err.code, want_code);
	}
	sr_socket_free(s);
	sr_client_close(c);
	fake_stop(&f);
	ck_assert_int_eq(own_fd_count(), base);
}

START_TEST(hostile_extra_descriptors_are_closed)
{
	hostile_case(FDS_TWO, 0);
	hostile_case(FDS_UNASKED, 0);
}
END_TEST

START_TEST(hostile_missing_or_truncated_descriptor_fails)
{
	hostile_case(FDS_NONE, SR_EPROTO);
	hostile_case(FDS_TRUNCATED, SR_EPROTO);
	hostile_case(FDS_NOT_SOCKET, SR_EPROTO);
}
END_TEST

/* A daemon older than 1.2 would end the session over the unknown rpc: never asked. */
START_TEST(older_daemon_is_not_asked)
{
	struct fake f;
	sr_client *c;
	sr_error err;

	fake_start(&f, serve_fds, OLD_DAEMON);
	c = sr_client_open(f.path, &err);
	ck_assert_msg(c != NULL, "open: %s", err.message);
	ck_assert_int_eq(sr_connect_fd(c, AF_INET, SOCK_STREAM, "127.0.0.1", 9, 1000, &err), -1);
	ck_assert_int_eq(err.code, SR_EUNSUPPORTED);
	ck_assert_msg(strstr(err.message, "needs 1.2") != NULL, "%s", err.message);
	sr_client_close(c);
	fake_stop(&f);
}
END_TEST

Suite *
handback_suite(void)
{
	Suite *s = suite_create("handback");
	TCase *tc = tcase_create("handback");
	TCase *hostile = tcase_create("hostile daemon");

	tcase_add_checked_fixture(tc, hb_setup, hb_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, tls_over_handed_back_socket);
	tcase_add_test(tc, epoll_on_nonblocking_socket);
	tcase_add_test(tc, handback_while_connecting);
	tcase_add_test(tc, handback_without_reply_channel);
	tcase_add_test(tc, daemon_keeps_no_copy_and_audits_cookie);
	tcase_add_test(tc, accept_handback_checks_the_peer);
	tcase_add_test(tc, accept_without_handback_rule_is_refused);
	suite_add_tcase(s, tc);
	tcase_set_timeout(hostile, 30);
	tcase_add_test(hostile, hostile_extra_descriptors_are_closed);
	tcase_add_test(hostile, hostile_missing_or_truncated_descriptor_fails);
	tcase_add_test(hostile, older_daemon_is_not_asked);
	suite_add_tcase(s, hostile);
	return s;
}
