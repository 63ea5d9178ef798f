/*
 * test_dos.c - denial of service through the session layer, attacked as uid 65534 against
 * the root daemon while a good client of another uid measures what it gets: floods of
 * connections that never finish Hello (huge, partial and bare Hello frames), a Hello
 * dripped a byte a second, clients that hang up or are killed in every state in which the
 * daemon does not read them, and requests whose unknown fields would decode to far more
 * memory than their frame.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "as_user.h"
#include "payload.h"
#include "rawcall.h"

#if defined(__SANITIZE_ADDRESS__)
#define RSS_SLACK 3 /* shadow memory and allocator overhead */
#else
#define RSS_SLACK 1
#endif

#define ATTACKER 65534
#define GOOD_UID 1000

/* The daemon's HELLO_TIMEOUT_MS (daemon/sockrpcd_limits.h). */
#define HELLO_TIMEOUT_MS 3000
/* Its MAX_PRE_HELLO_PER_UID. */
#define PRE_HELLO_PER_UID 64
/* Sessions the daemon of this suite admits (--max-sessions): well under the flood. */
#define MAX_SESSIONS 100
/* Its queue limit (--max-queued-bytes): a few receives of 1 MiB pause a session. */
#define QUEUE_LIMIT (4 * SR_MAX_FRAME)

static char policy_dir[64];

static void
fixture_up(void)
{
	static char policy[128], sessions[16], queued[32];
	const char *extra[] = {"--policy", policy, "--max-sessions", sessions, "--max-queued-bytes",
	                       queued,     NULL};

	signal(SIGPIPE, SIG_IGN);
	asan_quarantine_mb(8);
	snprintf(policy_dir, sizeof(policy_dir), "/tmp/sockrpc-dos-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(policy_dir));
	chmod(policy_dir, 0755);
	snprintf(policy, sizeof(policy), "%s/policy", policy_dir);
	write_file(policy, "allow uid=0 *\n"
	                   "allow uid=1000,65534 create tcp\n"
	                   "allow uid=1000,65534 connect tcp @loopback\n");
	snprintf(sessions, sizeof(sessions), "%d", MAX_SESSIONS);
	snprintf(queued, sizeof(queued), "%u", QUEUE_LIMIT);
	daemon_start(&test_daemon, extra);
	ck_assert_int_eq(chmod(test_daemon.dir, 0755), 0); /* for the other uids */
}

static void
fixture_down(void)
{
	char path[128];

	fixture_daemon_down_serving();
	snprintf(path, sizeof(path), "%s/policy", policy_dir);
	unlink(path);
	rmdir(policy_dir);
}

/* ---- children under another uid, in plain C (no Check assertions in them) ---- */

static void
become(uid_t uid)
{
	gid_t g = (gid_t)uid;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (setgroups(1, &g) != 0 || setresgid(g, g, g) != 0 || setresuid(uid, uid, uid) != 0)
		_exit(4);
}

/* A new connection to the daemon, non-blocking if asked; -1 if it cannot be made. */
static int
unix_connect(bool nonblocking)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);

	snprintf(un.sun_path, sizeof(un.sun_path), "%s", test_daemon.path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&un, sizeof(un)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
put_frame(int fd, unsigned method, uint64_t id, const ProtobufCMessage *msg)
{
	uint8_t buf[512];

	return write_all(fd, buf, rc_frame(buf, method, id, msg));
}

static int
read_all(int fd, void *buf, size_t len, int timeout_ms)
{
	char *p = buf;
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	while (len > 0) {
		ssize_t n;

		if (poll(&pfd, 1, timeout_ms) != 1)
			return -1;
		n = read(fd, p, len);
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads one reply; returns it decoded (free with protobuf_c_message_free_unpacked), or NULL. */
static ProtobufCMessage *
get_reply(int fd, uint64_t *id)
{
	uint8_t hdr[SR_FRAME_HEADER_SIZE], *body;
	struct sr_frame_header h;
	ProtobufCMessage *m;

	if (read_all(fd, hdr, sizeof(hdr), 5000) != 0)
		return NULL;
	frame_header_decode(hdr, &h);
	if (h.method >= M_COUNT || h.length > SR_MAX_FRAME || (body = malloc(h.length + 1)) == NULL)
		return NULL;
	if (read_all(fd, body, h.length, 5000) != 0) {
		free(body);
		return NULL;
	}
	m = protobuf_c_message_unpack(sockrpc__sock_rpc__descriptor.methods[h.method].output, NULL,
	                              h.length, body);
	free(body);
	if (id)
		*id = h.call_id;
	return m;
}

/* Status code of the next reply, or -1 if none comes. */
static int
reply_code(int fd)
{
	ProtobufCMessage *m = get_reply(fd, NULL);
	const ProtobufCFieldDescriptor *f;
	const Sockrpc__Status *st;
	int code;

	if (m == NULL)
		return -1;
	f = protobuf_c_message_descriptor_get_field(m->descriptor, 1);
	st = *(Sockrpc__Status *const *)((const char *)m + f->offset);
	code = st ? (int)st->code : 0;
	protobuf_c_message_free_unpacked(m, NULL);
	return code;
}

/* Says Hello on fd; with a reply channel, *reply_fd receives it (else fd). 0 or -1. */
static int
hello(int fd, bool channel, int *reply_fd)
{
	Sockrpc__HelloRequest req = SOCKRPC__HELLO_REQUEST__INIT;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	uint8_t frame[512];
	struct iovec iov = {.iov_base = frame, .iov_len = sizeof(frame)};
	struct msghdr msg = {.msg_iov = &iov,
	                     .msg_iovlen = 1,
	                     .msg_control = control.buf,
	                     .msg_controllen = sizeof(control.buf)};
	struct cmsghdr *cm;

	req.major = SR_PROTOCOL_MAJOR;
	req.minor = SR_PROTOCOL_MINOR;
	req.client_name = "dos-test";
	req.reply_channel = channel;
	*reply_fd = fd;
	if (put_frame(fd, M_HELLO, 1, &req.base) != 0)
		return -1;
	if (!channel)
		return reply_code(fd) == 0 ? 0 : -1;
	/* The reply is small: one recvmsg takes it whole, with the channel's fd. */
	if (recvmsg(fd, &msg, MSG_CMSG_CLOEXEC) <= 0)
		return -1;
	cm = CMSG_FIRSTHDR(&msg);
	if (cm == NULL || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(reply_fd, CMSG_DATA(cm), sizeof(int));
	return 0;
}

/* Forks a child that becomes uid and runs fn(arg, fd) with fd the write end of a pipe
 * whose read end is returned in *result_fd; the child exits with fn's value. */
static pid_t
fork_as(uid_t uid, int (*fn)(void *arg, int result_fd), void *arg, int *result_fd)
{
	int p[2];
	pid_t pid;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		close(p[0]);
		become(uid);
		_exit(fn(arg, p[1]));
	}
	close(p[1]);
	*result_fd = p[0];
	return pid;
}

/* Reads a long the child sends within timeout_ms; asserts it comes. */
static long
child_result(int fd, int timeout_ms)
{
	long v = 0;

	ck_assert_msg(read_all(fd, &v, sizeof(v), timeout_ms) == 0, "the child did not report");
	return v;
}

static void
reap(pid_t pid)
{
	int status;

	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
}

/* ---- what a good client sees ---- */

struct latency {
	long p50_us, max_us;
};

static int
cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return (x > y) - (x < y);
}

#define N_PROBES 200

/* In a child (uid 1000): N_PROBES get_option calls on a new socket; outcome 0 the socket,
 * then the p50 and the slowest call in microseconds as values of outcomes 1 and 2. */
static void
good_client(sr_client *c, struct report *r)
{
	static long us[N_PROBES];
	sr_socket *s = c_socket(c, r, AF_INET, SOCK_STREAM);
	sr_error err;
	long v;

	if (s == NULL)
		return;
	for (int i = 0; i < N_PROBES; i++) {
		struct timespec a, b;

		clock_gettime(CLOCK_MONOTONIC, &a);
		if (sr_get_option(s, SO_TYPE, &v, &err) != 0) {
			rec(r, -1, &err, 0);
			return;
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		us[i] = (b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000;
	}
	qsort(us, N_PROBES, sizeof(us[0]), cmp_long);
	rec(r, 0, NULL, us[N_PROBES / 2]);
	rec(r, 0, NULL, us[N_PROBES - 1]);
	sr_socket_free(s);
}

/* Bounds for a good client on a shared, loaded test machine: an idle call takes ~0.1 ms. */
#define GOOD_P50_US 20000
#define GOOD_MAX_US 1000000

static void
check_good_client(const struct report *r, const char *when)
{
	ck_assert_msg(r->open_code == 0, "%s: a good client could not open a session: %s", when,
	              r->open_msg);
	ck_assert_msg(r->n == 3, "%s: the good client's calls failed: %s", when,
	              r->n > 0 ? r->o[r->n - 1].msg : "");
	assert_ok(r, 0);
	printf("dos: %s: good client p50 %ld us, max %ld us\n", when, r->o[1].value, r->o[2].value);
	ck_assert_msg(r->o[1].value < GOOD_P50_US, "%s: p50 %ld us", when, r->o[1].value);
	ck_assert_msg(r->o[2].value < GOOD_MAX_US, "%s: slowest call %ld us", when, r->o[2].value);
}

/* ---- item 8: connections that never say Hello ---- */

#define FLOOD_CONNS 400
#define FLOOD_MS 5000 /* longer than the Hello timeout: slots cut are taken again */
#define FLOOD_PAYLOAD (1u << 20)

/*
 * The attacker: keeps FLOOD_CONNS connections open for FLOOD_MS, each with an unfinished
 * Hello: half of them a legal-sized Hello half sent (more than the daemon's session slots),
 * a quarter a header announcing a frame over 1 MiB followed by up to 1 MiB of it, a
 * quarter a bare header announcing the maximum frame.
 * A connection the daemon closes is opened again 200 ms later. Reports 1 once the first
 * round is open, then 0 at the end.
 */
static int
flood(void *arg, int result_fd)
{
	static int fd[FLOOD_CONNS];
	static size_t sent[FLOOD_CONNS];
	static long long closed_at[FLOOD_CONNS];
	static uint8_t junk[64 * 1024];
	long long end = now_ms() + FLOOD_MS;
	long one = 1, zero = 0;
	bool reported = false;

	(void)arg;
	for (int i = 0; i < FLOOD_CONNS; i++)
		fd[i] = -1;
	while (now_ms() < end) {
		for (int i = 0; i < FLOOD_CONNS; i++) {
			int kind = i % 4 < 2 ? 1 : i % 4 - 2; /* 1: legal size; 0, 2: too large */
			size_t want = kind == 0 ? FLOOD_PAYLOAD : kind == 1 ? 2000 : 0;
			char scrap[256];

			if (fd[i] >= 0) {
				ssize_t n = recv(fd[i], scrap, sizeof(scrap), MSG_DONTWAIT);

				if (n == 0 || (n < 0 && errno != EAGAIN)) {
					close(fd[i]);
					fd[i] = -1;
					closed_at[i] = now_ms();
				}
			}
			if (fd[i] < 0 && now_ms() - closed_at[i] >= 200) {
				uint8_t hdr[SR_FRAME_HEADER_SIZE];
				struct sr_frame_header h = {.method = M_HELLO, .call_id = 1};

				if ((fd[i] = unix_connect(true)) < 0)
					continue;
				h.length = kind == 1 ? 4000 : SR_MAX_FRAME;
				frame_header_encode(&h, hdr);
				send(fd[i], hdr, sizeof(hdr), MSG_NOSIGNAL | MSG_DONTWAIT);
				sent[i] = 0;
			}
			if (fd[i] < 0)
				continue;
			while (sent[i] < want) {
				size_t chunk =
				    want - sent[i] < sizeof(junk) ? want - sent[i] : sizeof(junk);
				ssize_t n = send(fd[i], junk, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);

				if (n <= 0)
					break;
				sent[i] += (size_t)n;
			}
		}
		if (!reported) {
			(void)!write(result_fd, &one, sizeof(one));
			reported = true;
		}
		usleep(10000);
	}
	(void)!write(result_fd, &zero, sizeof(zero));
	return 0;
}

/*
 * Hundreds of connections of one uid that never finish Hello, each holding what it could
 * of a large frame: another uid's client still gets a session and fast calls, the daemon
 * holds no more than a Hello's worth per connection, and gives the memory back after.
 */
START_TEST(pre_hello_flood_denies_no_one)
{
	struct child good;
	struct report r;
	long rss_idle, rss_peak, rss_after;
	int result_fd, fds_peak = 0;
	pid_t attacker;

	/* Let the daemon's heap settle on a first client, as the flood's is measured. */
	assert_daemon_serves(&test_daemon);
	rss_idle = process_rss_kib(daemon_worker_pid(&test_daemon));
	attacker = fork_as(ATTACKER, flood, NULL, &result_fd);
	ck_assert_int_eq(child_result(result_fd, 10000), 1);
	rss_peak = rss_idle;
	/* Into the flood, past the daemon's first Hello timeouts; a good client meanwhile. */
	for (int i = 0; i < 30; i++) {
		long v = process_rss_kib(daemon_worker_pid(&test_daemon));
		int n = daemon_fd_count(&test_daemon);

		rss_peak = v > rss_peak ? v : rss_peak;
		fds_peak = n > fds_peak ? n : fds_peak;
		if (i == 20)
			child_start(&good, GOOD_UID, GOOD_UID, good_client);
		sleep_ms(100);
	}
	child_finish(&good, &r);
	ck_assert_int_eq(child_result(result_fd, FLOOD_MS + 5000), 0);
	close(result_fd);
	reap(attacker);
	printf("dos: flood: daemon fds %d idle, %d at the peak; RSS %ld KiB idle, %ld KiB at "
	       "the peak\n",
	       test_daemon.idle_fds, fds_peak, rss_idle, rss_peak);
	check_good_client(&r, "pre-Hello flood");
	/* One fd per connection: the uid's allowance, and a few refused ones being closed. */
	ck_assert_msg(fds_peak - test_daemon.idle_fds <= PRE_HELLO_PER_UID + 16,
	              "the attacker held %d connections", fds_peak - test_daemon.idle_fds);
	/* 64 connections, each with at most a Hello's buffer (a few KiB). */
	ck_assert_msg(rss_peak - rss_idle < 8 * 1024 * RSS_SLACK,
	              "daemon RSS grew by %ld KiB in the flood", rss_peak - rss_idle);
	ck_assert_int_eq(daemon_wait_fds(&test_daemon, test_daemon.idle_fds, HARNESS_IDLE_MS),
	                 test_daemon.idle_fds);
	sleep_ms(1500); /* the daemon trims its heap at most every second */
	rss_after = process_rss_kib(daemon_worker_pid(&test_daemon));
	printf("dos: flood: daemon RSS %ld KiB after\n", rss_after);
	ck_assert_msg(rss_after - rss_idle < 4 * 1024 * RSS_SLACK,
	              "daemon RSS %ld KiB after the flood, %ld KiB before", rss_after, rss_idle);
}
END_TEST

#define N_HOLDERS 40

/*
 * Sessions that each hold most of a large frame make the daemon's heap grow; once they
 * end, the daemon hands the memory back to the kernel (malloc keeps it otherwise: the
 * daemon raises its trim threshold for bulk transfers).
 */
START_TEST(memory_is_given_back_after_sessions_end)
{
	static uint8_t junk[900 * 1024];
	int fds[N_HOLDERS];
	long rss_idle, rss_peak, rss_after;

	assert_daemon_serves(&test_daemon);
	rss_idle = process_rss_kib(daemon_worker_pid(&test_daemon));
	for (int i = 0; i < N_HOLDERS; i++) {
		fds[i] = raw_session(test_daemon.path);
		rc_header(fds[i], sizeof(junk) + 100, M_SEND, 0, 2);
		raw_write(fds[i], junk, sizeof(junk));
	}
	sleep_ms(300);
	rss_peak = process_rss_kib(daemon_worker_pid(&test_daemon));
	for (int i = 0; i < N_HOLDERS; i++)
		close(fds[i]);
	ck_assert_int_eq(daemon_wait_fds(&test_daemon, test_daemon.idle_fds, HARNESS_IDLE_MS),
	                 test_daemon.idle_fds);
	sleep_ms(1500); /* the daemon trims its heap at most every second */
	rss_after = process_rss_kib(daemon_worker_pid(&test_daemon));
	printf("dos: %d sessions holding 900 KiB each: daemon RSS %ld KiB idle, %ld KiB with "
	       "them, %ld KiB after\n",
	       N_HOLDERS, rss_idle, rss_peak, rss_after);
	ck_assert_msg(rss_peak - rss_idle > N_HOLDERS * 800, "the frames were not held");
#if !defined(__SANITIZE_ADDRESS__) /* ASan's allocator keeps its own pools */
	ck_assert_msg(rss_after - rss_idle < 8 * 1024, "daemon RSS %ld KiB after, %ld KiB idle",
	              rss_after, rss_idle);
#endif
}
END_TEST

/* Writes a Hello a byte a second; reports how long until the daemon hung up, in ms. */
static int
slowloris(void *arg, int result_fd)
{
	Sockrpc__HelloRequest req = SOCKRPC__HELLO_REQUEST__INIT;
	uint8_t frame[512];
	size_t len;
	long long t0;
	long elapsed = -1;
	int fd = unix_connect(false);

	(void)arg;
	req.major = SR_PROTOCOL_MAJOR;
	req.client_name = "a client that takes its time over every byte of its name";
	len = rc_frame(frame, M_HELLO, 1, &req.base);
	if (fd < 0)
		return 1;
	t0 = now_ms();
	for (size_t i = 0; i < len; i++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};

		if (send(fd, frame + i, 1, MSG_NOSIGNAL) != 1 || poll(&p, 1, 1000) != 0)
			break;
	}
	elapsed = (long)(now_ms() - t0);
	(void)!write(result_fd, &elapsed, sizeof(elapsed));
	return 0;
}

/* A Hello dripped a byte a second (slowloris) is cut at the Hello timeout, not later. */
START_TEST(slow_hello_is_cut_at_the_hello_timeout)
{
	int result_fd;
	pid_t pid = fork_as(ATTACKER, slowloris, NULL, &result_fd);
	long ms = child_result(result_fd, HELLO_TIMEOUT_MS + 10000);

	close(result_fd);
	reap(pid);
	printf("dos: slowloris: cut after %ld ms\n", ms);
	ck_assert_msg(ms >= HELLO_TIMEOUT_MS - 1000 && ms < HELLO_TIMEOUT_MS + 1500,
	              "a dripped Hello lived %ld ms", ms);
	assert_daemon_serves(&test_daemon);
}
END_TEST

/* Sends a bare header for a Hello of `length` bytes; reports the reply's code (-1: none)
 * and whether the daemon then hung up (the code + 1000). */
static int
big_hello_header(void *arg, int result_fd)
{
	uint32_t length = *(uint32_t *)arg;
	uint8_t hdr[SR_FRAME_HEADER_SIZE];
	struct sr_frame_header h = {.length = length, .method = M_HELLO, .call_id = 1};
	int fd = unix_connect(false);
	long v;
	char byte;

	if (fd < 0)
		return 1;
	frame_header_encode(&h, hdr);
	write_all(fd, hdr, sizeof(hdr));
	v = reply_code(fd);
	if (v >= 0 && read_all(fd, &byte, 1, 1000) != 0)
		v += 1000; /* end of stream: closed */
	(void)!write(result_fd, &v, sizeof(v));
	return 0;
}

/*
 * Before Hello a header announcing more than a Hello can be is refused at once (EPROTO,
 * then the connection closes): the daemon does not wait for, or make room for, its body.
 * A legal-sized Hello header gets no such answer.
 */
START_TEST(hello_larger_than_a_hello_is_refused_at_once)
{
	uint32_t lengths[] = {SR_MAX_FRAME, SR_MAX_HELLO_FRAME + 1, 4u << 20};

	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		int result_fd;
		long long t0 = now_ms();
		pid_t pid = fork_as(ATTACKER, big_hello_header, &lengths[i], &result_fd);
		long v = child_result(result_fd, 10000);

		close(result_fd);
		reap(pid);
		ck_assert_msg(v == 1000 + SOCKRPC__CODE__EPROTO,
		              "a %u-byte Hello: reply %ld (want EPROTO and a close)", lengths[i],
		              v);
		ck_assert_msg(now_ms() - t0 < HELLO_TIMEOUT_MS - 1000, "refused only after %lld ms",
		              now_ms() - t0);
	}
	assert_daemon_serves(&test_daemon);
}
END_TEST

/* ---- item 9: clients that hang up while the daemon does not read them ---- */

enum pause_state {
	LARGE_REPLY_UNREAD,   /* receives from a fast source, their replies never read */
	PARKED_ON_SILENT,     /* receives parked on a silent peer, small replies unread */
	REPLY_CHANNEL_UNREAD, /* the same, replies on a reply channel never read */
	MID_FRAME,            /* the same, then half a frame */
};

struct zombie {
	enum pause_state state;
	int port;
	bool killed; /* SIGKILLed, else it closes its end */
};

#define N_RECEIVES 10

/* Gets a session into `state`, reports 1, then waits to be killed or closes and exits. */
static int
zombie(void *arg, int result_fd)
{
	const struct zombie *z = arg;
	Sockrpc__SocketRequest sq = SOCKRPC__SOCKET_REQUEST__INIT;
	Sockrpc__ConnectRequest cq = SOCKRPC__CONNECT_REQUEST__INIT;
	Sockrpc__GetOptionRequest gq = SOCKRPC__GET_OPTION_REQUEST__INIT;
	Sockrpc__ReceiveRequest rq = SOCKRPC__RECEIVE_REQUEST__INIT;
	Sockrpc__SocketReply *sr;
	int fd = unix_connect(false), rfd;
	long one = 1;
	uint64_t id;

	if (fd < 0 || hello(fd, z->state == REPLY_CHANNEL_UNREAD, &rfd) != 0)
		return 1;
	sq.family = SOCKRPC__FAMILY__FAMILY_INET;
	sq.type = SOCKRPC__TYPE__TYPE_STREAM;
	if (put_frame(fd, M_SOCKET, 2, &sq.base) != 0 ||
	    (sr = (Sockrpc__SocketReply *)get_reply(rfd, &id)) == NULL || sr->state == NULL)
		return 2;
	cq.handle = sr->state->id;
	protobuf_c_message_free_unpacked(&sr->base, NULL);
	cq.host = "127.0.0.1";
	cq.port = z->port;
	cq.timeout_ms = 2000;
	if (put_frame(fd, M_CONNECT, 3, &cq.base) != 0 || reply_code(rfd) != 0)
		return 3;
	gq.handle = rq.handle = cq.handle;
	gq.option = SOCKRPC__OPTION__SO_TYPE;
	for (int i = 0; i < 4 && z->state != LARGE_REPLY_UNREAD; i++)
		put_frame(fd, M_GET_OPTION, 10 + i, &gq.base); /* replies left unread */
	rq.length = SR_MAX_PAYLOAD;
	for (int i = 0; i < N_RECEIVES; i++)
		put_frame(fd, M_RECEIVE, 20 + i, &rq.base);
	if (z->state == MID_FRAME) {
		uint8_t half[SR_FRAME_HEADER_SIZE + 50] = {0};
		struct sr_frame_header h = {.length = 100, .method = M_GET_OPTION, .call_id = 99};

		frame_header_encode(&h, half);
		write_all(fd, half, sizeof(half));
	}
	(void)!write(result_fd, &one, sizeof(one));
	if (z->killed)
		pause();
	usleep(300000);
	close(fd);
	close(rfd);
	return 0;
}

/* Clients of uid 65534 leave sessions in `state`, one closing its end and one SIGKILLed;
 * the daemon must end both sessions, return to its idle fds and not spin. */
static void
hang_up_in(enum pause_state state)
{
	struct server srv;
	struct report r;
	struct child good;
	pid_t pid[2];
	int result_fd[2];
	long cpu0, cpu1;

	server_start(&srv, AF_INET, state == LARGE_REPLY_UNREAD ? SERVER_SOURCE : SERVER_SILENT,
	             64u << 20);
	for (int i = 0; i < 2; i++) {
		struct zombie z = {.state = state, .port = srv.port, .killed = i == 1};

		pid[i] = fork_as(ATTACKER, zombie, &z, &result_fd[i]);
		ck_assert_int_eq(child_result(result_fd[i], 10000), 1);
		close(result_fd[i]);
	}
	sleep_ms(300); /* the daemon takes the calls and stops reading */
	ck_assert_int_eq(kill(pid[1], SIGKILL), 0);
	reap(pid[0]);
	reap(pid[1]);
	ck_assert_int_eq(daemon_wait_fds(&test_daemon, test_daemon.idle_fds, HARNESS_IDLE_MS),
	                 test_daemon.idle_fds);
	cpu0 = process_cpu_ticks(daemon_worker_pid(&test_daemon));
	child_start(&good, GOOD_UID, GOOD_UID, good_client);
	child_finish(&good, &r);
	sleep_ms(1500);
	cpu1 = process_cpu_ticks(daemon_worker_pid(&test_daemon));
	printf("dos: hang-up in state %d: daemon CPU %ld ticks in the next ~2 s\n", state,
	       cpu1 - cpu0);
	/* Spinning takes ~100 ticks a second; the good client's calls a few. */
	ck_assert_msg(cpu1 - cpu0 < 40, "the daemon used %ld ticks of CPU after the hang-ups",
	              cpu1 - cpu0);
	check_good_client(&r, "after the hang-ups");
	server_stop(&srv);
}

START_TEST(hang_up_with_large_reply_unread)
{
	hang_up_in(LARGE_REPLY_UNREAD);
}
END_TEST

START_TEST(hang_up_with_receives_parked_on_silent_peer)
{
	hang_up_in(PARKED_ON_SILENT);
}
END_TEST

START_TEST(hang_up_with_reply_channel_unread)
{
	hang_up_in(REPLY_CHANNEL_UNREAD);
}
END_TEST

START_TEST(hang_up_mid_frame)
{
	hang_up_in(MID_FRAME);
}
END_TEST

/* ---- item 11: what a request holds once decoded ---- */

/* Appends unknown fields (number 15) of `each` bytes on the wire to fill `len` bytes. */
static size_t
put_unknown_fields(uint8_t *p, size_t len, size_t each)
{
	size_t n = 0;

	while (len - n >= each) {
		size_t data = each - 2 - (each - 2 >= 128); /* key, length varint, data */

		if (each == 2) {
			p[n++] = 15 << 3; /* a varint 0 */
			p[n++] = 0;
			continue;
		}
		p[n++] = (15 << 3) | 2;
		n += sr_varint_put(p + n, data);
		memset(p + n, 'u', data);
		n += data;
	}
	return n;
}

/* Sends one request of msg followed by `len` bytes of unknown fields of `each` bytes. */
static void
send_with_unknown_fields(int fd, unsigned method, uint64_t id, const ProtobufCMessage *msg,
                         size_t len, size_t each)
{
	size_t head = protobuf_c_message_get_packed_size(msg), body;
	uint8_t *buf = malloc(SR_FRAME_HEADER_SIZE + head + len);

	ck_assert_ptr_nonnull(buf);
	protobuf_c_message_pack(msg, buf + SR_FRAME_HEADER_SIZE);
	body = head + put_unknown_fields(buf + SR_FRAME_HEADER_SIZE + head, len, each);
	frame_header_encode(&(struct sr_frame_header){.length = (uint32_t)body,
	                                              .method = (uint16_t)method,
	                                              .call_id = id},
	                    buf);
	raw_write(fd, buf, SR_FRAME_HEADER_SIZE + body);
	free(buf);
}

/* A listening TCP handle on 127.0.0.1 in a raw session: accepts on it wait. */
static int64_t
listening(int fd)
{
	Sockrpc__BindRequest b = SOCKRPC__BIND_REQUEST__INIT;
	Sockrpc__ListenRequest l = SOCKRPC__LISTEN_REQUEST__INIT;
	int64_t h = rc_socket(fd, 2, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);

	b.handle = l.handle = h;
	b.host = "127.0.0.1";
	raw_send(fd, M_BIND, 3, &b.base);
	rc_expect(fd, 3, 0);
	l.queue_length = -1;
	raw_send(fd, M_LISTEN, 4, &l.base);
	rc_expect(fd, 4, 0);
	return h;
}

#define N_WAITING 16
#define UNKNOWN_BYTES (256u * 1024u) /* 16 such calls fit the queue limit */

/*
 * Sessions each send 16 accepts that wait, every one carrying 256 KiB of unknown fields
 * of one size (2 bytes to 4 KiB). protobuf-c would keep every field in an allocation of
 * its own (2-byte fields: ~30 times their size). Each request must either be refused
 * with a clear error (too much memory to decode; the session then closes) or wait
 * holding what it needs, not its unknown fields: the daemon's memory stays near what it
 * charges, which is the frames it no longer holds.
 */
START_TEST(unknown_fields_are_not_held)
{
	static const size_t sizes[] = {2, 3, 8, 256, 4096};
	Sockrpc__AcceptRequest ac = SOCKRPC__ACCEPT_REQUEST__INIT;
	int fds[sizeof(sizes) / sizeof(sizes[0])];
	long rss0, rss;

	assert_daemon_serves(&test_daemon);
	rss0 = process_rss_kib(daemon_worker_pid(&test_daemon));
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		ProtobufCMessage *m;
		uint64_t id;

		fds[i] = raw_session(test_daemon.path);
		ac.handle = listening(fds[i]);
		send_with_unknown_fields(fds[i], M_ACCEPT, 100, &ac.base, UNKNOWN_BYTES, sizes[i]);
		m = rc_reply(fds[i], &id, NULL, 500);
		/* The first one answers for the rest: a refusal closes the session. */
		for (int k = 1; k < N_WAITING && m == NULL; k++)
			send_with_unknown_fields(fds[i], M_ACCEPT, 100 + k, &ac.base, UNKNOWN_BYTES,
			                         sizes[i]);
		if (m == NULL)
			m = rc_reply(fds[i], &id, NULL, 500);
		rss = process_rss_kib(daemon_worker_pid(&test_daemon));
		printf("dos: calls with 256 KiB of %zu-byte unknown fields: daemon RSS +%ld KiB\n",
		       sizes[i], rss - rss0);
		/* Two sessions of 16 waiting calls are charged 8 MiB; never the ~30 times that
		 * unknown fields would cost kept. */
		ck_assert_msg(rss - rss0 < 24 * 1024 * RSS_SLACK, "daemon RSS grew by %ld KiB",
		              rss - rss0);
		if (sizes[i] <= 8) {
			ck_assert_msg(m != NULL, "%zu-byte fields: no refusal", sizes[i]);
			ck_assert_int_eq(rc_code(m), SOCKRPC__CODE__EPROTO);
			ck_assert_msg(strstr(rc_message(m), "memory") != NULL, "%s", rc_message(m));
			ck_assert_msg(raw_closed(fds[i], 2000), "the session stayed open");
		} else {
			ck_assert_msg(m == NULL, "%zu-byte fields: call %llu answered: %s",
			              sizes[i], (unsigned long long)id, rc_message(m));
		}
		if (m)
			protobuf_c_message_free_unpacked(m, NULL);
	}
	assert_daemon_serves(&test_daemon);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		close(fds[i]);
}
END_TEST

/*
 * The same field over and over: an empty host, 512 Ki times (each one decoded, then
 * replaced by the next), and a Hello made of unknown fields before the session exists.
 */
START_TEST(repeated_fields_are_bounded)
{
	Sockrpc__ConnectRequest cq = SOCKRPC__CONNECT_REQUEST__INIT;
	Sockrpc__HelloRequest hq = SOCKRPC__HELLO_REQUEST__INIT;
	size_t len = 1u << 20;
	uint8_t *buf = malloc(SR_FRAME_HEADER_SIZE + len);
	long rss0 = process_rss_kib(daemon_worker_pid(&test_daemon));
	int fd = raw_session(test_daemon.path);
	int64_t h = rc_socket(fd, 2, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	uint8_t *body = buf + SR_FRAME_HEADER_SIZE;
	size_t n;

	ck_assert_ptr_nonnull(buf);
	cq.handle = h;
	cq.port = 1;
	n = protobuf_c_message_pack(&cq.base, body);
	while (n + 2 <= len) {
		body[n++] = (2 << 3) | 2; /* host = "" */
		body[n++] = 0;
	}
	frame_header_encode(
	    &(struct sr_frame_header){.length = (uint32_t)n, .method = M_CONNECT, .call_id = 5},
	    buf);
	raw_write(fd, buf, SR_FRAME_HEADER_SIZE + n);
	rc_expect_refused(fd);
	close(fd);

	/* A Hello of 4000 bytes of 2-byte unknown fields, before the session exists. */
	fd = raw_connect(test_daemon.path);
	hq.major = SR_PROTOCOL_MAJOR;
	send_with_unknown_fields(fd, M_HELLO, 1, &hq.base, 4000, 2);
	rc_expect_refused(fd);
	close(fd);
	free(buf);
	ck_assert_msg(
	    process_rss_kib(daemon_worker_pid(&test_daemon)) - rss0 < 8 * 1024 * RSS_SLACK,
	    "daemon RSS grew by %ld KiB", process_rss_kib(daemon_worker_pid(&test_daemon)) - rss0);
	assert_daemon_serves(&test_daemon);
}
END_TEST

/* A newer client's fields that this daemon does not know are ignored, not refused: the
 * call is served as if they were absent (Hello's reply_channel relied on this in 1.0). */
START_TEST(a_few_unknown_fields_are_ignored)
{
	Sockrpc__HelloRequest hq = SOCKRPC__HELLO_REQUEST__INIT;
	Sockrpc__GetOptionRequest gq = SOCKRPC__GET_OPTION_REQUEST__INIT;
	int fd = raw_connect(test_daemon.path);

	hq.major = SR_PROTOCOL_MAJOR;
	hq.minor = SR_PROTOCOL_MINOR;
	send_with_unknown_fields(fd, M_HELLO, 1, &hq.base, 100, 10);
	rc_expect(fd, 1, 0);
	gq.handle = rc_socket(fd, 2, SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	gq.option = SOCKRPC__OPTION__SO_TYPE;
	send_with_unknown_fields(fd, M_GET_OPTION, 3, &gq.base, 300, 3);
	rc_expect(fd, 3, 0);
	close(fd);
}
END_TEST

Suite *
dos_suite(void)
{
	Suite *s = suite_create("dos");
	TCase *tc = tcase_create("dos");

	tcase_add_checked_fixture(tc, fixture_up, fixture_down);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, pre_hello_flood_denies_no_one);
	tcase_add_test(tc, memory_is_given_back_after_sessions_end);
	tcase_add_test(tc, slow_hello_is_cut_at_the_hello_timeout);
	tcase_add_test(tc, hello_larger_than_a_hello_is_refused_at_once);
	tcase_add_test(tc, hang_up_with_large_reply_unread);
	tcase_add_test(tc, hang_up_with_receives_parked_on_silent_peer);
	tcase_add_test(tc, hang_up_with_reply_channel_unread);
	tcase_add_test(tc, hang_up_mid_frame);
	tcase_add_test(tc, unknown_fields_are_not_held);
	tcase_add_test(tc, repeated_fields_are_bounded);
	tcase_add_test(tc, a_few_unknown_fields_are_ignored);
	suite_add_tcase(s, tc);
	return s;
}
