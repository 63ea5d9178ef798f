/*
 * test_sessions.c - several clients and threads at once: sessions cannot see
 * each other's handles, a killed client leaves nothing behind in the daemon,
 * a long wait on one handle blocks nothing else, close from another thread
 * unblocks a waiting receive, and many threads pipeline on one client. Also the reply
 * channel a Hello may ask for (protocol 1.1): what it carries, that it blocks, what
 * happens without it, a client that stops reading it, one that closes it, and a daemon
 * told not to open any.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frame.h"
#include "harness.h"
#include "rawcall.h"
#include "sockets.h"
#include "sockrpc.pb-c.h"

/* Sends msg and receives it back from an echo server; 0 if it came back intact. */
static int
echo_once(sr_socket *s, const char *msg, sr_error *err)
{
	size_t n = strlen(msg), have = 0, len;
	char back[256], *part;

	if (sr_send(s, msg, n, 0, err) != (long)n)
		return -1;
	while (have < n) {
		if (sr_receive(s, (long)(n - have), 0, &part, &len, err) == -1)
			return -1;
		if (len == 0) {
			free(part);
			return -1;
		}
		memcpy(back + have, part, len);
		have += len;
		free(part);
	}
	return memcmp(back, msg, n) == 0 ? 0 : -1;
}

START_TEST(sessions_cannot_see_each_others_handles)
{
	Sockrpc__CloseRequest req = SOCKRPC__CLOSE_REQUEST__INIT;
	Sockrpc__CloseReply *rep;
	struct sr_frame_header h;
	unsigned char *body;
	sr_client *a = daemon_client(&test_daemon);
	sr_client *b = daemon_client(&test_daemon);
	sr_socket *sa[3], *sb;
	int fd;

	ck_assert_uint_ne(sr_client_session_id(a), sr_client_session_id(b));
	for (int i = 0; i < 3; i++)
		sa[i] = new_sock(a, AF_INET, SOCK_STREAM);
	/* Ids are per session: b's first handle may share a's number... */
	sb = new_sock(b, AF_INET, SOCK_STREAM);
	ck_assert_int_ge(sr_socket_state(sb)->id, 1);
	/* ...and closing it leaves a's handle of that number alone. */
	ck_assert_int_eq(sr_close(sb, NULL), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_msg(sr_info(sa[i], NULL, NULL) == 0, "a's handle %d lost", i);

	/* A raw session asking to close a's handles: unknown handle, nothing closed. */
	fd = raw_session(test_daemon.path);
	for (int i = 0; i < 3; i++) {
		req.handle = sr_socket_state(sa[i])->id;
		raw_send(fd, 9, 10 + (unsigned)i, &req.base);
		ck_assert_int_eq(raw_recv(fd, &h, &body, 5000), 0);
		ck_assert_uint_eq(h.call_id, 10 + (unsigned)i);
		rep = sockrpc__close_reply__unpack(NULL, h.length, body);
		free(body);
		ck_assert_ptr_nonnull(rep);
		ck_assert_ptr_nonnull(rep->status);
		ck_assert_int_eq(rep->status->code, SR_EBADHANDLE);
		sockrpc__close_reply__free_unpacked(rep, NULL);
	}
	close(fd);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(sr_info(sa[i], NULL, NULL), 0);
		ck_assert(!sr_socket_state(sa[i])->is_closed);
		sr_socket_free(sa[i]);
	}
	sr_socket_free(sb);
	sr_client_close(b);
	sr_client_close(a);
}
END_TEST

START_TEST(killed_client_leaves_nothing_behind)
{
	struct server srv;
	pid_t pid;
	int status, busy;

	server_start(&srv, AF_INET, SERVER_SILENT, 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		sr_client *c = sr_client_open(test_daemon.path, NULL);
		sr_socket *s;
		char *got;
		size_t len;

		if (c == NULL || (s = sr_socket_new(c, AF_INET, SOCK_STREAM, 0, NULL)) == NULL ||
		    sr_connect(s, "127.0.0.1", srv.port, 5000, NULL) == -1)
			_exit(1);
		sr_receive(s, -1, 0, &got, &len, NULL); /* blocks until killed */
		_exit(2);
	}
	/* The daemon holds the session and the TCP connection while the child waits. */
	ck_assert_int_eq(server_wait_finished(&srv, 0, 0), 0);
	for (int i = 0; i < 500 && atomic_load(&srv.accepted) < 1; i++)
		usleep(10 * 1000);
	ck_assert_int_eq(atomic_load(&srv.accepted), 1);
	usleep(100 * 1000);
	busy = daemon_fd_count(&test_daemon);
	ck_assert_int_ge(busy, test_daemon.idle_fds + 2);
	ck_assert_int_eq(waitpid(pid, &status, WNOHANG), 0);

	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status));
	ck_assert_int_eq(daemon_wait_fds(&test_daemon, test_daemon.idle_fds, HARNESS_IDLE_MS),
	                 test_daemon.idle_fds);
	ck_assert_int_eq(server_wait_finished(&srv, 1, 2000), 1);
	server_stop(&srv);
}
END_TEST

struct waiter {
	sr_socket *s;
	int rc;
	sr_error err;
	long long took;
	size_t len;
};

static void *
receive_thread(void *arg)
{
	struct waiter *w = arg;
	long long t0 = now_ms();
	char *got = NULL;

	w->rc = sr_receive(w->s, -1, 0, &got, &w->len, &w->err);
	w->took = now_ms() - t0;
	free(got);
	return NULL;
}

START_TEST(long_receive_blocks_nothing_else)
{
	struct server silent, echo;
	struct waiter w;
	pthread_t t;
	sr_client *a, *b;
	sr_socket *waiting, *other_a, *other_b;
	sr_error err;
	long long t0;

	server_start(&silent, AF_INET, SERVER_SILENT, 0);
	server_start(&echo, AF_INET, SERVER_ECHO, 0);
	a = daemon_client(&test_daemon);
	b = daemon_client(&test_daemon);
	waiting = new_sock(a, AF_INET, SOCK_STREAM);
	connect_ok(waiting, "127.0.0.1", silent.port);
	memset(&w, 0, sizeof(w));
	w.s = waiting;
	ck_assert_int_eq(pthread_create(&t, NULL, receive_thread, &w), 0);
	usleep(200 * 1000);

	/* Same client, another handle; and another client: both answer at once. */
	t0 = now_ms();
	other_a = new_sock(a, AF_INET, SOCK_STREAM);
	connect_ok(other_a, "127.0.0.1", echo.port);
	other_b = new_sock(b, AF_INET, SOCK_STREAM);
	connect_ok(other_b, "127.0.0.1", echo.port);
	for (int i = 0; i < 20; i++) {
		ck_assert_msg(echo_once(other_a, "same client", &err) == 0, "%s", err.message);
		ck_assert_msg(echo_once(other_b, "other client", &err) == 0, "%s", err.message);
		ck_assert_int_eq(sr_get_option(other_a, SO_KEEPALIVE, NULL, &err), 0);
	}
	ck_assert_int_lt(now_ms() - t0, 2000);
	ck_assert_int_eq(w.took, 0); /* still waiting */

	/* Close from this thread answers the waiting receive. */
	t0 = now_ms();
	ck_assert_int_eq(sr_close(waiting, &err), 0);
	pthread_join(t, NULL);
	ck_assert_int_lt(now_ms() - t0, 2000);
	ck_assert_int_eq(w.rc, -1);
	ck_assert_int_eq(w.err.code, SR_ECLOSED);
	ck_assert(sr_socket_state(waiting)->is_closed);

	sr_socket_free(waiting);
	sr_socket_free(other_a);
	sr_socket_free(other_b);
	sr_client_close(b);
	sr_client_close(a);
	server_stop(&echo);
	server_stop(&silent);
}
END_TEST

START_TEST(shutdown_from_another_thread_ends_receive)
{
	struct server silent;
	struct waiter w;
	pthread_t t;
	sr_client *c;
	sr_socket *s;
	sr_error err;

	server_start(&silent, AF_INET, SERVER_SILENT, 0);
	c = daemon_client(&test_daemon);
	s = new_sock(c, AF_INET, SOCK_STREAM);
	connect_ok(s, "127.0.0.1", silent.port);
	memset(&w, 0, sizeof(w));
	w.s = s;
	ck_assert_int_eq(pthread_create(&t, NULL, receive_thread, &w), 0);
	usleep(200 * 1000);
	ck_assert_int_eq(sr_shutdown(s, SHUT_RDWR, &err), 0);
	pthread_join(t, NULL);
	/* Answered: end of stream (or closed), not left hanging. */
	ck_assert_msg((w.rc == 0 && w.len == 0) || (w.rc == -1 && w.err.code == SR_ECLOSED),
	              "rc %d len %zu code %d %s", w.rc, w.len, w.err.code, w.err.message);
	sr_socket_free(s);
	sr_client_close(c);
	server_stop(&silent);
}
END_TEST

#define N_THREADS 8
#define N_ROUNDS 50

struct worker {
	sr_client *c;
	int port, index, failures;
	char why[300];
};

static void *
pipeline_thread(void *arg)
{
	struct worker *w = arg;
	sr_error err;
	sr_socket *s;
	char msg[64];
	long v;

	if ((s = sr_socket_new(w->c, AF_INET, SOCK_STREAM, 0, &err)) == NULL ||
	    sr_connect(s, "127.0.0.1", w->port, 5000, &err) == -1) {
		w->failures++;
		snprintf(w->why, sizeof(w->why), "setup: %s", err.message);
		sr_socket_free(s);
		return NULL;
	}
	for (int i = 0; i < N_ROUNDS; i++) {
		snprintf(msg, sizeof(msg), "thread %d round %d", w->index, i);
		if (echo_once(s, msg, &err) == -1) {
			w->failures++;
			snprintf(w->why, sizeof(w->why), "echo %d: %s", i, err.message);
			break;
		}
		if (sr_get_option(s, SO_RCVBUF, &v, &err) == -1 || v <= 0) {
			w->failures++;
			snprintf(w->why, sizeof(w->why), "get_option %d: %s", i, err.message);
			break;
		}
	}
	sr_socket_free(s);
	return NULL;
}

START_TEST(many_threads_pipeline_on_one_client)
{
	struct worker w[N_THREADS];
	pthread_t t[N_THREADS];
	struct server echo;
	sr_client *c;

	server_start(&echo, AF_INET, SERVER_ECHO, 0);
	c = daemon_client(&test_daemon);
	for (int i = 0; i < N_THREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].c = c;
		w[i].port = echo.port;
		w[i].index = i;
		ck_assert_int_eq(pthread_create(&t[i], NULL, pipeline_thread, &w[i]), 0);
	}
	for (int i = 0; i < N_THREADS; i++) {
		pthread_join(t[i], NULL);
		ck_assert_msg(w[i].failures == 0, "thread %d: %s", i, w[i].why);
	}
	ck_assert_int_eq(atomic_load(&echo.accepted), N_THREADS);
	sr_client_close(c);
	server_stop(&echo);
}
END_TEST

/*
 * Says Hello on a new connection to path, asking for a reply channel or not, and reads the reply
 * with recvmsg. Returns the connection; *channel is the descriptor that came with the
 * reply (-1 if none), *said what the reply's reply_channel field says.
 */
static int
hello_with_channel(const char *path, bool ask, int *channel, bool *said)
{
	Sockrpc__HelloRequest req = SOCKRPC__HELLO_REQUEST__INIT;
	Sockrpc__HelloReply *rep;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} control;
	uint8_t frame[4096];
	struct iovec iov = {.iov_base = frame, .iov_len = sizeof(frame)};
	struct msghdr msg = {.msg_iov = &iov,
	                     .msg_iovlen = 1,
	                     .msg_control = control.buf,
	                     .msg_controllen = sizeof(control.buf)};
	struct pollfd pfd;
	struct sr_frame_header h;
	struct cmsghdr *cm;
	int fd = raw_connect(path);
	ssize_t n;

	req.major = SR_PROTOCOL_MAJOR;
	req.minor = SR_PROTOCOL_MINOR;
	req.client_name = "channel-test";
	req.reply_channel = ask;
	raw_send(fd, M_HELLO, 1, &req.base);
	pfd = (struct pollfd){.fd = fd, .events = POLLIN};
	ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
	/* The reply is one small write: one recvmsg takes all of it, and its descriptor. */
	n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	ck_assert_int_ge(n, SR_FRAME_HEADER_SIZE);
	ck_assert_int_eq(msg.msg_flags & MSG_CTRUNC, 0);
	frame_header_decode(frame, &h);
	ck_assert_uint_eq(h.call_id, 1);
	ck_assert_uint_eq((size_t)n, SR_FRAME_HEADER_SIZE + h.length);
	rep = sockrpc__hello_reply__unpack(NULL, h.length, frame + SR_FRAME_HEADER_SIZE);
	ck_assert_ptr_nonnull(rep);
	ck_assert_int_eq(rep->status == NULL ? 0 : (int)rep->status->code, 0);
	ck_assert_uint_eq(rep->minor, SR_PROTOCOL_MINOR);
	*said = rep->reply_channel;
	sockrpc__hello_reply__free_unpacked(rep, NULL);
	*channel = -1;
	for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
		ck_assert_int_eq(cm->cmsg_type, SCM_RIGHTS);
		ck_assert_uint_eq(cm->cmsg_len, CMSG_LEN(sizeof(int)));
		ck_assert_int_eq(*channel, -1);
		memcpy(channel, CMSG_DATA(cm), sizeof(int));
	}
	return fd;
}

/* Whether fd has bytes to read within timeout_ms. */
static bool
readable_within(int fd, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	return poll(&pfd, 1, timeout_ms) == 1;
}

START_TEST(reply_channel_carries_every_later_reply)
{
	int busy = daemon_fd_count(&test_daemon), channel, fd;
	bool said;

	fd = hello_with_channel(test_daemon.path, true, &channel, &said);
	ck_assert(said);
	ck_assert_int_ge(channel, 0);
	/* The client's end blocks (its reads wait in the kernel); the daemon holds the
	 * connection and its own end. */
	ck_assert_int_eq(fcntl(channel, F_GETFL) & O_NONBLOCK, 0);
	ck_assert_int_eq(daemon_wait_fds(&test_daemon, busy + 2, 2000), busy + 2);
	for (uint64_t id = 2; id < 5; id++) {
		rc_socket_request(fd, id);
		rc_expect(channel, id, 0);
	}
	ck_assert(!readable_within(fd, 100)); /* nothing more comes on the connection */
	/* Pipelined calls are answered on the channel, in order. */
	for (uint64_t id = 5; id < 25; id++)
		rc_socket_request(fd, id);
	for (uint64_t id = 5; id < 25; id++)
		rc_expect(channel, id, 0);
	close(channel);
	close(fd);
	ck_assert_int_eq(daemon_wait_fds(&test_daemon, busy, HARNESS_IDLE_MS), busy);
}
END_TEST

/* Says Hello to path (asking for a channel or not), and asserts that none comes: the
 * reply says so, no descriptor is passed, and the next reply is on the connection. */
static void
assert_replies_on_the_connection(const char *path, bool ask)
{
	int channel, fd;
	bool said;

	fd = hello_with_channel(path, ask, &channel, &said);
	ck_assert(!said);
	ck_assert_int_eq(channel, -1);
	rc_socket_request(fd, 2);
	rc_expect(fd, 2, 0);
	close(fd);
}

START_TEST(without_reply_channel_replies_stay_on_the_connection)
{
	assert_replies_on_the_connection(test_daemon.path, false);
}
END_TEST

/* A client that closes its end of the channel cannot be answered: its session ends, its
 * handles with it, and the daemon serves everyone else. */
START_TEST(closed_reply_channel_ends_the_session)
{
	int busy = daemon_fd_count(&test_daemon), channel, fd;
	bool said;

	fd = hello_with_channel(test_daemon.path, true, &channel, &said);
	ck_assert(said && channel >= 0);
	rc_socket_request(fd, 2);
	rc_expect(channel, 2, 0);
	close(channel);
	rc_socket_request(fd, 3);
	ck_assert(raw_closed(fd, 5000));
	close(fd);
	ck_assert_int_eq(daemon_wait_fds(&test_daemon, busy, HARNESS_IDLE_MS), busy);
	assert_daemon_serves(&test_daemon);
}
END_TEST

/* A client that stops reading its channel holds replies in the daemon (written when the
 * channel has room again) and nobody else waits; once it reads, every reply comes, whole
 * and in order. 8 MiB of 1 MiB receives is more than the channel's buffer holds. */
START_TEST(unread_reply_channel_holds_replies_until_read)
{
	const size_t total = 8u << 20;
	Sockrpc__ReceiveRequest rr = SOCKRPC__RECEIVE_REQUEST__INIT;
	struct server src;
	ProtobufCMessage *m;
	size_t got = 0;
	uint64_t id, next = 4;
	int channel, fd, pending;
	bool said;

	server_start(&src, AF_INET, SERVER_SOURCE, total);
	fd = hello_with_channel(test_daemon.path, true, &channel, &said);
	ck_assert(said && channel >= 0);
	rc_socket_request(fd, 2);
	m = rc_reply(channel, &id, NULL, 5000);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(rc_code(m), 0);
	rr.handle = rc_state(m)->id;
	protobuf_c_message_free_unpacked(m, NULL);
	rc_connect_loopback(fd, channel, 3, rr.handle, src.port);
	rr.length = SR_MAX_PAYLOAD;
	for (int i = 0; i < 8; i++)
		raw_send(fd, M_RECEIVE, next + (uint64_t)i, &rr.base);
	sleep_ms(500);
	assert_daemon_serves(&test_daemon);
	ck_assert_int_eq(ioctl(channel, FIONREAD, &pending), 0);
	ck_assert_int_gt(pending, 0);
	/* Read the replies in order, asking for more until the whole stream is in. */
	for (uint64_t asked = next + 8; got < total; next++) {
		const Sockrpc__ReceiveReply *r;

		m = rc_reply(channel, &id, NULL, 10000);
		ck_assert_msg(m != NULL, "no reply to receive %llu", (unsigned long long)next);
		ck_assert_uint_eq(id, next);
		ck_assert_int_eq(rc_code(m), 0);
		r = (const Sockrpc__ReceiveReply *)m;
		ck_assert(!r->end_of_stream);
		for (size_t i = 0; i < r->data.len; i++) {
			if (r->data.data[i] != pattern_byte(got + i))
				ck_abort_msg("byte %zu differs", got + i);
		}
		got += r->data.len;
		protobuf_c_message_free_unpacked(m, NULL);
		if (got < total && asked <= next + 1)
			raw_send(fd, M_RECEIVE, asked++, &rr.base);
	}
	ck_assert_uint_eq(got, total);
	close(channel);
	close(fd);
	server_stop(&src);
}
END_TEST

/* An operator may refuse channels (--no-reply-channel): the reply says so, no descriptor
 * comes, and libsockrpc goes on with the connection alone. */
START_TEST(daemon_may_refuse_reply_channels)
{
	static char opt[] = "--no-reply-channel";
	const char *extra[] = {opt, NULL};
	struct daemon d;
	sr_client *c;

	daemon_start(&d, extra);
	assert_replies_on_the_connection(d.path, true);
	ck_assert_int_eq(daemon_wait_fds(&d, d.idle_fds, HARNESS_IDLE_MS), d.idle_fds);
	c = daemon_client(&d);
	ck_assert_int_eq(daemon_wait_fds(&d, d.idle_fds + 1, 2000), d.idle_fds + 1);
	assert_daemon_serves(&d);
	sr_client_close(c);
	daemon_stop(&d);
}
END_TEST

/* libsockrpc asks for the channel: a client costs the daemon two descriptors. */
START_TEST(library_client_uses_a_reply_channel)
{
	int busy = daemon_fd_count(&test_daemon);
	sr_client *c = daemon_client(&test_daemon);

	ck_assert_int_eq(daemon_wait_fds(&test_daemon, busy + 2, 2000), busy + 2);
	sr_client_close(c);
	ck_assert_int_eq(daemon_wait_fds(&test_daemon, busy, HARNESS_IDLE_MS), busy);
}
END_TEST

Suite *
sessions_suite(void)
{
	Suite *s = suite_create("sessions");
	TCase *tc = tcase_create("sessions");

	tcase_add_checked_fixture(tc, fixture_daemon_up, fixture_daemon_down);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, sessions_cannot_see_each_others_handles);
	tcase_add_test(tc, killed_client_leaves_nothing_behind);
	tcase_add_test(tc, long_receive_blocks_nothing_else);
	tcase_add_test(tc, shutdown_from_another_thread_ends_receive);
	tcase_add_test(tc, many_threads_pipeline_on_one_client);
	tcase_add_test(tc, reply_channel_carries_every_later_reply);
	tcase_add_test(tc, without_reply_channel_replies_stay_on_the_connection);
	tcase_add_test(tc, closed_reply_channel_ends_the_session);
	tcase_add_test(tc, unread_reply_channel_holds_replies_until_read);
	tcase_add_test(tc, library_client_uses_a_reply_channel);
	tcase_add_test(tc, daemon_may_refuse_reply_channels);
	suite_add_tcase(s, tc);
	return s;
}
