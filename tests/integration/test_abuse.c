/*
 * test_abuse.c - what a hostile or broken client may do, as opposed to send: never
 * read its replies, die mid-call, let its peers reset or stall, exhaust the daemon's
 * fds, provoke SIGPIPE. The daemon must stay up with bounded memory, end at most the
 * offending session, and return to its idle fd count.
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "policy_env.h"
#include "rawcall.h"
#include "sockets.h"

/*
 * Memory bounds are for the daemon's own buffers. Under AddressSanitizer freed memory
 * sits in a quarantine (256 MB by default) and counts in the RSS: keep the quarantine
 * small for the daemon, and allow for the shadow and allocator overhead.
 */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_SLACK 4       /* many small allocations */
#define RSS_SLACK_LARGE 2 /* few large ones: mostly the shadow */
#else
#define RSS_SLACK 1
#define RSS_SLACK_LARGE 1
#endif

static void
fixture_up(void)
{
	asan_quarantine_mb(8);
	fixture_daemon_up();
}

/* The queue limit of the daemon in the "queue" test case: 4 frames. */
#define QUEUE_LIMIT (4 * SR_MAX_FRAME)

static void
fixture_queue_up(void)
{
	static char opt[] = "--max-queued-bytes", value[32];
	const char *extra[] = {opt, value, NULL};

	signal(SIGPIPE, SIG_IGN);
	asan_quarantine_mb(8);
	snprintf(value, sizeof(value), "%u", QUEUE_LIMIT);
	daemon_start(&test_daemon, extra);
}

static int64_t
listening_handle(int fd, uint64_t id)
{
	Sockrpc__BindRequest bd = SOCKRPC__BIND_REQUEST__INIT;
	Sockrpc__ListenRequest ls = SOCKRPC__LISTEN_REQUEST__INIT;
	int64_t h = rc_socket(fd, id, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);

	bd.handle = h;
	bd.host = "127.0.0.1";
	raw_send(fd, M_BIND, id + 1, &bd.base);
	rc_expect(fd, id + 1, 0);
	ls.handle = h;
	ls.queue_length = -1;
	raw_send(fd, M_LISTEN, id + 2, &ls.base);
	rc_expect(fd, id + 2, 0);
	return h;
}

/* Bytes the daemon charges a request against the session's queue (session.c). */
/* What the daemon counts for a call: its frame plus CALL_OVERHEAD_BYTES (session.c). */
#define CALL_CHARGE(body) (SR_FRAME_HEADER_SIZE + (body) + 2048)

/* Body size of an AcceptRequest/CloseRequest for a small handle plus `pad` (rc_send_padded). */
static size_t
padded_body(size_t pad)
{
	size_t v = pad, n = 2; /* handle field */

	if (pad == 0)
		return n;
	n += 1 + pad;
	do {
		n++;
		v >>= 7;
	} while (v);
	return n;
}

/*
 * A call whose handling answers several waiting calls (close with accepts queued)
 * releases their queued bytes one at a time. If the session was paused for holding too
 * much and one release brings it back under the limit, reading must resume later, not
 * by running the frame loop again from inside the dispatch of the frame being handled:
 * that re-dispatches the same close (freeing the handle the outer close is still using)
 * and misaligns the frames after it.
 */
START_TEST(reading_resumes_outside_the_dispatch)
{
	Sockrpc__AcceptRequest ac = SOCKRPC__ACCEPT_REQUEST__INIT;
	Sockrpc__CloseRequest cl = SOCKRPC__CLOSE_REQUEST__INIT;
	Sockrpc__GetOptionRequest go = SOCKRPC__GET_OPTION_REQUEST__INIT;
	const size_t limit = QUEUE_LIMIT, big = SR_MAX_FRAME - 64;
	int fd = raw_session(test_daemon.path);
	int64_t a = listening_handle(fd, 10), b = listening_handle(fd, 20);
	size_t base = 0, left;
	uint64_t id = 100;
	int replies[4] = {0, 0, 0, 0};

	ck_assert_int_eq(a, 1);
	ck_assert_int_eq(b, 2);
	/* On a: one small waiting accept and one that holds 300 kB. */
	ac.handle = a;
	rc_send_padded(fd, M_ACCEPT, ++id, &ac.base, 0);
	base += CALL_CHARGE(padded_body(0));
	rc_send_padded(fd, M_ACCEPT, ++id, &ac.base, 300000);
	base += CALL_CHARGE(padded_body(300000));
	/* On b: accepts that bring what the session holds to just under the limit. */
	ac.handle = b;
	while ((left = limit - 1000 - base) > CALL_CHARGE(padded_body(big))) {
		rc_send_padded(fd, M_ACCEPT, ++id, &ac.base, big);
		base += CALL_CHARGE(padded_body(big));
	}
	rc_send_padded(fd, M_ACCEPT, ++id, &ac.base, left - CALL_CHARGE(padded_body(0)) - 5);
	/* Closing a (a frame of 100 kB, which takes the session over the limit while it is
	 * handled), then a query on b. */
	cl.handle = a;
	rc_send_padded(fd, M_CLOSE, 500, &cl.base, 100000);
	go.handle = b;
	go.option = SOCKRPC__OPTION__SO_TYPE;
	raw_send(fd, M_GET_OPTION, 501, &go.base);
	for (;;) {
		uint64_t got;
		ProtobufCMessage *m = rc_reply(fd, &got, NULL, 2000);

		if (m == NULL)
			break;
		if (got == 101 || got == 102) {
			ck_assert_int_eq(rc_code(m), SOCKRPC__CODE__ECLOSED);
			replies[got - 101]++;
		} else if (got == 500 || got == 501) {
			ck_assert_msg(rc_code(m) == 0, "call %llu: %s", (unsigned long long)got,
			              rc_message(m));
			replies[got - 500 + 2]++;
		} else {
			ck_abort_msg("unexpected reply to call %llu (%s)", (unsigned long long)got,
			             rc_message(m));
		}
		protobuf_c_message_free_unpacked(m, NULL);
		if (replies[0] + replies[1] + replies[2] + replies[3] == 4)
			break;
	}
	{
		int status = 0;
		pid_t gone = waitpid(test_daemon.pid, &status, WNOHANG);

		ck_assert_msg(gone == 0, "the daemon died (%s %d)",
		              WIFSIGNALED(status) ? "signal" : "exit",
		              WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	}
	ck_assert_msg(replies[0] == 1 && replies[1] == 1 && replies[2] == 1 && replies[3] == 1,
	              "replies: accept %d, accept %d, close %d, get_option %d (each once)",
	              replies[0], replies[1], replies[2], replies[3]);
	close(fd);
}
END_TEST

/*
 * A session that holds too much is not read; it must still notice its client hanging
 * up (EV_CLOSED, or a read that only looks for EOF), or the session, its handles and
 * their fds stay for good, and enough such clients take every session slot.
 */
START_TEST(paused_session_notices_hangup)
{
	Sockrpc__AcceptRequest ac = SOCKRPC__ACCEPT_REQUEST__INIT;
	size_t held = 0;

	for (int round = 0; round < 3; round++) {
		int fd = raw_session(test_daemon.path);
		uint64_t id = 100;

		ac.handle = listening_handle(fd, 10);
		held = 0;
		while (held <= QUEUE_LIMIT) {
			rc_send_padded(fd, M_ACCEPT, ++id, &ac.base, SR_MAX_FRAME - 64);
			held += CALL_CHARGE(padded_body(SR_MAX_FRAME - 64));
		}
		usleep(200000);
		close(fd);
	}
	ck_assert_int_eq(daemon_wait_fds(&test_daemon, test_daemon.idle_fds, HARNESS_IDLE_MS),
	                 test_daemon.idle_fds);
}
END_TEST

struct flood {
	int fd;
	size_t pad;       /* padding per frame */
	size_t max_bytes; /* stop after this much */
	int stall_ms;     /* a write blocked this long means the daemon stopped reading */
	size_t written;
	int frames; /* whole frames written */
	bool stalled;
	uint8_t *frame; /* the frame being written when the daemon stalled */
	size_t len, off;
};

/* Writes GetOption frames without reading any reply until the daemon stops taking them. */
static void
flood_until_stalled(struct flood *f)
{
	Sockrpc__GetOptionRequest go = SOCKRPC__GET_OPTION_REQUEST__INIT;
	struct sr_frame_header h = {.method = M_GET_OPTION};
	int flags = fcntl(f->fd, F_GETFL);
	uint8_t *p;
	size_t v = f->pad;

	go.handle = 1;
	go.option = SOCKRPC__OPTION__SO_TYPE;
	f->frame = malloc(SR_FRAME_HEADER_SIZE + 32 + f->pad);
	ck_assert_ptr_nonnull(f->frame);
	p = f->frame + SR_FRAME_HEADER_SIZE;
	p += protobuf_c_message_pack(&go.base, p);
	if (f->pad) {
		*p++ = (15 << 3) | 2;
		do {
			*p++ = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
			v >>= 7;
		} while (v);
		memset(p, 'f', f->pad);
		p += f->pad;
	}
	f->len = (size_t)(p - f->frame);
	h.length = (uint32_t)(f->len - SR_FRAME_HEADER_SIZE);
	fcntl(f->fd, F_SETFL, flags | O_NONBLOCK);
	while (f->written < f->max_bytes && !f->stalled) {
		/* Call ids count from 1000. */
		h.call_id = 1000 + (uint64_t)f->frames;
		frame_header_encode(&h, f->frame);
		for (f->off = 0; f->off < f->len;) {
			ssize_t n = send(f->fd, f->frame + f->off, f->len - f->off, MSG_NOSIGNAL);
			struct pollfd pfd = {.fd = f->fd, .events = POLLOUT};

			if (n > 0) {
				f->off += (size_t)n;
				f->written += (size_t)n;
				continue;
			}
			ck_assert_msg(n == -1 && (errno == EAGAIN || errno == EINTR), "send: %s",
			              strerror(errno));
			if (poll(&pfd, 1, f->stall_ms) == 0) {
				f->stalled = true;
				break;
			}
		}
		if (f->off == f->len)
			f->frames++;
	}
	fcntl(f->fd, F_SETFL, flags);
}

/* Reads replies to n calls numbered from 1000 (any order), each OK; returns how many. */
static int
read_replies(int fd, int n)
{
	int got = 0;

	while (got < n) {
		uint64_t id;
		ProtobufCMessage *m = rc_reply(fd, &id, NULL, 10000);

		if (m == NULL)
			break;
		ck_assert_msg(rc_code(m) == 0, "call %llu: %s", (unsigned long long)id,
		              rc_message(m));
		protobuf_c_message_free_unpacked(m, NULL);
		got++;
	}
	return got;
}

static void
flood_case(size_t pad, long rss_bound_kib, bool must_stall)
{
	struct flood f = {.pad = pad, .max_bytes = 200u << 20, .stall_ms = 1500};
	long before = process_rss_kib(daemon_worker_pid(&test_daemon)), after;
	int fd = raw_session(test_daemon.path), answered;

	rc_socket(fd, 2, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	f.fd = fd;
	flood_until_stalled(&f);
	after = process_rss_kib(daemon_worker_pid(&test_daemon));
	ck_assert_msg(f.stalled || !must_stall,
	              "the daemon took %zu bytes (%d calls) without a reply read", f.written,
	              f.frames);
	ck_assert_msg(after - before < rss_bound_kib * RSS_SLACK,
	              "daemon RSS grew from %ld to %ld KiB while a client wrote %zu bytes unread",
	              before, after, f.written);
	/* Once the client reads, every call it wrote is answered, including the one it was
	 * writing when the daemon stopped reading. */
	answered = read_replies(fd, f.frames);
	ck_assert_int_eq(answered, f.frames);
	if (f.off < f.len) {
		raw_write(fd, f.frame + f.off, f.len - f.off);
		ck_assert_int_eq(read_replies(fd, 1), 1);
	}
	free(f.frame);
	close(fd);
}

START_TEST(client_that_never_reads_large_calls)
{
	/* 200 MB of 1 MB calls with small replies: the daemon may go on reading (each call
	 * is done with at once), but it must not keep what it read. */
	flood_case(SR_MAX_FRAME - 64, 96 * 1024, false);
}
END_TEST

START_TEST(client_that_never_reads_small_calls)
{
	/* Tiny calls: ~60-byte replies pile up until the queue limit stops the reading. */
	flood_case(0, 96 * 1024, true);
}
END_TEST

/*
 * Calls that are cheap to send but have large replies (read 1 MB each, pipelined on a
 * socket whose peer sends without end), from a client that does not read: the replies
 * must not pile up in the daemon beyond the session's queue limit. The limit has to
 * count what a queued call will answer, or stop completing calls while the session's
 * output is full; stopping to read new frames is not enough, since the calls already
 * queued go on producing replies.
 */
struct read_flood {
	int fd, calls;
	Sockrpc__ReadRequest *request;
};

/* Writes the pipelined reads. A thread of its own: once the daemon stops reading the
 * session, these writes block until the client reads replies, as backpressure means. */
static void *
write_reads(void *arg)
{
	struct read_flood *rf = arg;

	for (int i = 0; i < rf->calls; i++)
		raw_send(rf->fd, M_READ, 1000 + (uint64_t)i, &rf->request->base);
	return NULL;
}

START_TEST(client_that_never_reads_large_replies)
{
	Sockrpc__ReadRequest rd = SOCKRPC__READ_REQUEST__INIT;
	struct server src;
	const int calls = 300;
	long before = process_rss_kib(daemon_worker_pid(&test_daemon)), peak = before, now;
	int fd = raw_session(test_daemon.path), answered = 0;
	int64_t h = rc_socket(fd, 2, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	struct read_flood flood;
	pthread_t writer;
	long long deadline;

	server_start(&src, AF_INET, SERVER_SOURCE, (size_t)calls << 20);
	rc_connect_loopback(fd, fd, 3, h, src.port);
	rd.handle = h;
	rd.length = SR_MAX_PAYLOAD;
	flood.fd = fd;
	flood.calls = calls;
	flood.request = &rd;
	ck_assert_int_eq(pthread_create(&writer, NULL, write_reads, &flood), 0);
	/* Let the daemon do what it will with them for a while. */
	deadline = now_ms() + 3000;
	while (now_ms() < deadline) {
		now = process_rss_kib(daemon_worker_pid(&test_daemon));
		if (now > peak)
			peak = now;
		usleep(50000);
	}
	/* Every read is answered, in order, once the client reads. */
	while (answered < calls) {
		uint64_t id;
		ProtobufCMessage *m = rc_reply(fd, &id, NULL, 10000);

		ck_assert_msg(m != NULL, "%d of %d reads answered", answered, calls);
		ck_assert_msg(rc_code(m) == 0, "read %llu: %s", (unsigned long long)id,
		              rc_message(m));
		ck_assert_uint_eq(id, 1000 + (uint64_t)answered);
		ck_assert_uint_eq(((Sockrpc__ReadReply *)m)->data.len, SR_MAX_PAYLOAD);
		protobuf_c_message_free_unpacked(m, NULL);
		answered++;
	}
	ck_assert_int_eq(pthread_join(writer, NULL), 0);
	close(fd);
	server_stop(&src);
	ck_assert_msg(
	    peak - before < 96 * 1024 * RSS_SLACK_LARGE,
	    "daemon RSS grew from %ld to %ld KiB holding replies for a client that did not read",
	    before, peak);
}
END_TEST

/* Runs body in a child that signals readiness on a pipe, then kills it with SIGKILL. */
static void
kill_child_after(void (*body)(int ready_fd, void *arg), void *arg)
{
	int p[2];
	char c;
	pid_t pid;

	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		close(p[0]);
		body(p[1], arg);
		pause();
		_exit(0);
	}
	close(p[1]);
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	usleep(100000);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(p[0]);
}

static void
ready(int fd)
{
	if (write(fd, "r", 1) != 1)
		_exit(1);
}

static void
mid_send_body(int ready_fd, void *arg)
{
	int fd = raw_session(test_daemon.path);
	char *half = calloc(1, SR_MAX_FRAME / 2);

	rc_socket(fd, 2, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	rc_header(fd, SR_MAX_FRAME, M_SEND, 0, 3);
	raw_write(fd, half, SR_MAX_FRAME / 2);
	ready(ready_fd);
}

static void
mid_accept_body(int ready_fd, void *arg)
{
	Sockrpc__AcceptRequest ac = SOCKRPC__ACCEPT_REQUEST__INIT;
	int fd = raw_session(test_daemon.path);

	ac.handle = listening_handle(fd, 10);
	raw_send(fd, M_ACCEPT, 20, &ac.base);
	raw_send(fd, M_ACCEPT, 21, &ac.base);
	ready(ready_fd);
}

/* A send of 1 MB to a peer that does not read waits in the daemon when the child dies. */
static void
mid_blocked_send_body(int ready_fd, void *arg)
{
	Sockrpc__SendRequest sd = SOCKRPC__SEND_REQUEST__INIT;
	int fd = raw_session(test_daemon.path);
	int64_t h = rc_socket(fd, 2, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);

	rc_connect_loopback(fd, fd, 3, h, *(int *)arg);
	sd.handle = h;
	sd.data.len = SR_MAX_PAYLOAD;
	sd.data.data = calloc(1, SR_MAX_PAYLOAD);
	for (int i = 0; i < 8; i++)
		raw_send(fd, M_SEND, 10 + (uint64_t)i, &sd.base);
	ready(ready_fd);
}

START_TEST(client_killed_mid_send)
{
	kill_child_after(mid_send_body, NULL);
	ck_assert_int_eq(daemon_wait_fds(&test_daemon, test_daemon.idle_fds, HARNESS_IDLE_MS),
	                 test_daemon.idle_fds);
}
END_TEST

START_TEST(client_killed_mid_accept)
{
	kill_child_after(mid_accept_body, NULL);
	ck_assert_int_eq(daemon_wait_fds(&test_daemon, test_daemon.idle_fds, HARNESS_IDLE_MS),
	                 test_daemon.idle_fds);
}
END_TEST

START_TEST(client_killed_while_its_send_waits)
{
	int port, lfd = plain_listener(16, &port); /* never accepted, never read */

	kill_child_after(mid_blocked_send_body, &port);
	ck_assert_int_eq(daemon_wait_fds(&test_daemon, test_daemon.idle_fds, HARNESS_IDLE_MS),
	                 test_daemon.idle_fds);
	close(lfd);
}
END_TEST

struct resetter {
	int lfd;
	pthread_t t;
};

/* Accepts one connection, reads a little, then resets it (SO_LINGER 0). */
static void *
reset_peer(void *arg)
{
	struct resetter *r = arg;
	struct linger lg = {1, 0};
	char buf[65536];
	int fd = accept(r->lfd, NULL, NULL);

	if (fd == -1)
		return NULL;
	for (size_t got = 0; got < 3 * 65536;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	return NULL;
}

START_TEST(peer_resets_during_large_send)
{
	struct resetter r;
	int port;
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s;
	sr_error err;
	char *data = calloc(1, SR_MAX_PAYLOAD);
	long n = 0;

	r.lfd = plain_listener(16, &port);
	ck_assert_int_eq(pthread_create(&r.t, NULL, reset_peer, &r), 0);
	s = sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &err);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(sr_connect(s, "127.0.0.1", port, 2000, &err), 0);
	ck_assert_int_eq(sr_set_option(s, SO_SNDTIMEO, 5000, &err), 0);
	for (int i = 0; i < 50 && n >= 0; i++)
		n = sr_send(s, data, SR_MAX_PAYLOAD, 0, &err);
	ck_assert_msg(n < 0, "sends kept succeeding after the peer reset");
	ck_assert_int_eq(err.code, SR_EOS);
	ck_assert_msg(err.sys_errno == ECONNRESET || err.sys_errno == EPIPE, "errno %d: %s",
	              err.sys_errno, err.message);
	/* The session goes on. */
	ck_assert_int_eq(sr_get_option(s, SO_TYPE, &n, &err), 0);
	pthread_join(r.t, NULL);
	close(r.lfd);
	sr_socket_free(s);
	sr_client_close(c);
	free(data);
}
END_TEST

START_TEST(peer_never_reads_send_times_out)
{
	int port, lfd = plain_listener(16, &port); /* connections complete in the backlog, unread */
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s;
	sr_error err;
	char *data = calloc(1, SR_MAX_PAYLOAD);
	long n = 0, total = 0;
	long long t0;

	s = sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &err);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(sr_connect(s, "127.0.0.1", port, 2000, &err), 0);
	ck_assert_int_eq(sr_set_option(s, SO_SNDTIMEO, 300, &err), 0);
	/* Each send returns within its timeout (plus a margin), with a partial count while
	 * the kernel still takes some bytes, then ETIMEDOUT once nothing moves. */
	for (int i = 0; i < 400; i++) {
		t0 = now_ms();
		n = sr_send(s, data, SR_MAX_PAYLOAD, 0, &err);
		ck_assert_msg(now_ms() - t0 < 300 + 2000, "a send took %lld ms", now_ms() - t0);
		if (n < 0)
			break;
		total += n;
	}
	ck_assert_msg(n < 0, "%ld bytes went to a peer that never reads, no timeout", total);
	ck_assert_int_eq(err.code, SR_ETIMEDOUT);
	ck_assert_int_eq(err.sys_errno, ETIMEDOUT);
	sr_socket_free(s);
	sr_client_close(c);
	close(lfd);
	free(data);
}
END_TEST

/*
 * The daemon out of fds: new sockets fail with a clear error, existing sessions go on,
 * pending connections wait (the listener pauses rather than spinning) and are served
 * once fds are free again.
 */
START_TEST(emfile_in_the_daemon)
{
	Sockrpc__HelloRequest hello = SOCKRPC__HELLO_REQUEST__INIT;
	Sockrpc__GetOptionRequest go = SOCKRPC__GET_OPTION_REQUEST__INIT;
	Sockrpc__SocketRequest sk = SOCKRPC__SOCKET_REQUEST__INIT;
	struct rlimit rl;
	int a = raw_session(test_daemon.path), b, made = 0;
	int64_t handles[64];
	uint64_t id = 10;
	long cpu0, cpu1;
	ProtobufCMessage *m;

	rl.rlim_cur = rl.rlim_max = (rlim_t)test_daemon.idle_fds + 12;
	ck_assert_int_eq(daemon_prlimit(&test_daemon, RLIMIT_NOFILE, &rl), 0);
	sk.family = SOCKRPC__FAMILY__FAMILY_INET;
	sk.type = SOCKRPC__TYPE__TYPE_STREAM;
	for (;;) {
		uint64_t got;

		ck_assert_int_lt(made, 64);
		raw_send(a, M_SOCKET, ++id, &sk.base);
		m = rc_reply(a, &got, NULL, 5000);
		ck_assert_ptr_nonnull(m);
		if (rc_code(m) != 0) {
			const Sockrpc__Status *st = ((Sockrpc__SocketReply *)m)->status;

			ck_assert_int_eq(st->code, SOCKRPC__CODE__EOS);
			ck_assert_int_eq(st->errno_number, EMFILE);
			ck_assert_str_eq(st->errno_name, "EMFILE");
			protobuf_c_message_free_unpacked(m, NULL);
			break;
		}
		handles[made++] = rc_state(m)->id;
		protobuf_c_message_free_unpacked(m, NULL);
	}
	ck_assert_int_gt(made, 0);
	/* The existing session works. */
	go.handle = handles[0];
	go.option = SOCKRPC__OPTION__SO_TYPE;
	raw_send(a, M_GET_OPTION, ++id, &go.base);
	rc_expect(a, id, 0);
	/* A new client waits in the backlog; the daemon does not spin meanwhile. */
	b = raw_connect(test_daemon.path);
	hello.major = SR_PROTOCOL_MAJOR;
	raw_send(b, M_HELLO, 1, &hello.base);
	cpu0 = process_cpu_ticks(daemon_worker_pid(&test_daemon));
	m = rc_reply(b, NULL, NULL, 1000);
	cpu1 = process_cpu_ticks(daemon_worker_pid(&test_daemon));
	ck_assert_msg(m == NULL, "a session was accepted with no fd to spare");
	ck_assert_msg(cpu1 - cpu0 < sysconf(_SC_CLK_TCK) / 2,
	              "the daemon used %ld ticks in 1 s while out of fds", cpu1 - cpu0);
	/* Free a few fds: the listener recovers and the waiting client is served. */
	for (int i = 0; i < 3; i++) {
		Sockrpc__CloseRequest cl = SOCKRPC__CLOSE_REQUEST__INIT;

		cl.handle = handles[--made];
		raw_send(a, M_CLOSE, ++id, &cl.base);
		rc_expect(a, id, 0);
	}
	m = rc_reply(b, NULL, NULL, 10000);
	if (m == NULL) {
		char *log = file_read_all(test_daemon.log);
		size_t len = strlen(log);

		ck_abort_msg("the waiting client was not served once fds were free; the daemon's "
		             "log ends:\n%s",
		             log + (len > 2000 ? len - 2000 : 0));
	}
	ck_assert_int_eq(rc_code(m), 0);
	protobuf_c_message_free_unpacked(m, NULL);
	ck_assert_int_gt(rc_socket(b, 2, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_DGRAM),
	                 0);
	close(b);
	close(a);
	rl.rlim_cur = rl.rlim_max = 4096;
	daemon_prlimit(&test_daemon, RLIMIT_NOFILE, &rl);
}
END_TEST

START_TEST(sigpipe_never_kills_the_daemon)
{
	Sockrpc__GetOptionRequest go = SOCKRPC__GET_OPTION_REQUEST__INIT;
	struct server srv;
	sr_client *c;
	sr_socket *s;
	sr_error err;
	char *data = calloc(1, 65536);
	int status;

	/* Replies to a client that is gone: the daemon's writes fail with EPIPE. */
	go.handle = 1;
	go.option = SOCKRPC__OPTION__SO_TYPE;
	for (int round = 0; round < 20; round++) {
		int fd = raw_session(test_daemon.path);

		rc_socket(fd, 2, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
		for (int i = 0; i < 2000; i++)
			raw_send(fd, M_GET_OPTION, 10 + (uint64_t)i, &go.base);
		close(fd);
	}
	/* Sends to a peer that closed. */
	server_start(&srv, AF_INET, SERVER_SOURCE, 10);
	c = daemon_client(&test_daemon);
	s = sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &err);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(sr_connect(s, "127.0.0.1", srv.port, 2000, &err), 0);
	ck_assert_int_eq(server_wait_finished(&srv, 1, 2000), 1);
	for (int i = 0; i < 20; i++)
		if (sr_send(s, data, 65536, 0, &err) < 0)
			break;
	sr_socket_free(s);
	sr_client_close(c);
	server_stop(&srv);
	/* And the signal itself, to the worker and to its parent. */
	ck_assert_int_eq(kill(daemon_worker_pid(&test_daemon), SIGPIPE), 0);
	ck_assert_int_eq(kill(test_daemon.pid, SIGPIPE), 0);
	usleep(100000);
	ck_assert_int_eq(waitpid(test_daemon.pid, &status, WNOHANG), 0);
	free(data);
}
END_TEST

Suite *
abuse_suite(void)
{
	Suite *s = suite_create("abuse");
	TCase *tc = tcase_create("abuse");
	TCase *queue = tcase_create("queue");

	tcase_add_checked_fixture(queue, fixture_queue_up, fixture_daemon_down_serving);
	tcase_set_timeout(queue, 60);
	tcase_add_test(queue, reading_resumes_outside_the_dispatch);
	tcase_add_test(queue, paused_session_notices_hangup);
	suite_add_tcase(s, queue);

	tcase_add_checked_fixture(tc, fixture_up, fixture_daemon_down_serving);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, client_that_never_reads_large_calls);
	tcase_add_test(tc, client_that_never_reads_small_calls);
	tcase_add_test(tc, client_that_never_reads_large_replies);
	tcase_add_test(tc, client_killed_mid_send);
	tcase_add_test(tc, client_killed_mid_accept);
	tcase_add_test(tc, client_killed_while_its_send_waits);
	tcase_add_test(tc, peer_resets_during_large_send);
	tcase_add_test(tc, peer_never_reads_send_times_out);
	tcase_add_test(tc, emfile_in_the_daemon);
	tcase_add_test(tc, sigpipe_never_kills_the_daemon);
	suite_add_tcase(s, tc);
	return s;
}
