/*
 * fuzz_session.c - libFuzzer target: arbitrary bytes from a client, through the frame
 * decoder and the dispatcher of a real session of the daemon (sockrpcd_core's sources).
 *
 * One daemon state (event base, the policy below, audit to /dev/null) lives for the whole
 * run. Each input gets a fresh session on one end of a socketpair; the input is written
 * into the other end (by default behind a valid Hello, see below), the loop runs until
 * idle while the replies are drained, then the client end is closed and the session must
 * go away leaving no fd behind. ASan/UBSan/LSan catch the rest.
 *
 * The policy keeps the fuzzer on the loopback and away from the file system (no Unix
 * binds or connects, no name resolution); run it in a network namespace too
 * (tests/scripts/test_fuzz.sh does).
 *
 * fuzz-build: daemon -DREAD_CHUNK=4096
 * (a small read room keeps this target fast and splits frames across reads more often;
 * fuzz_sessions.c fuzzes the production read size)
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "frame.h"
#include "sockrpcd.h"

static const char fuzz_policy[] =
    "limit handles-per-session 32\n"
    "deny * resolve *\n"
    "allow * create tcp,udp,unix\n"
    "allow * connect,send,bind,listen,accept tcp,udp @loopback handback\n"
    "allow * option tcp,udp,unix\n";

static struct sockrpcd daemon_state;
static int fds_at_start;
static unsigned long runs;

/* Fds the resolver may open lazily, once, for the whole run (its name server socket). */
#define LAZY_FDS 4

static int
open_fd_count(void)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			n++;
	return n;
}

static void
fatal(const char *what)
{
	fprintf(stderr, "fuzz_session: %s: %s\n", what, strerror(errno));
	abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sockrpcd *d = &daemon_state;
	char err[256];
	FILE *f;

	(void)argc;
	(void)argv;
	memset(d, 0, sizeof(*d));
	TAILQ_INIT(&d->sessions);
	d->opt.socket_path = "/nonexistent/sockrpc-fuzz.sock";
	d->opt.socket_mode = -1;
	d->opt.limits.max_sessions = 16;
	d->opt.limits.max_handles = 32;
	d->opt.limits.max_queued_bytes = 2 * SR_MAX_FRAME;
	/* One process: the privileged acts are done directly (priv_proxy.c). */
	d->priv_fd = d->priv_notify_fd = -1;
	d->base = event_base_new();
	if (d->base == NULL)
		fatal("event_base_new");
	f = fmemopen((void *)fuzz_policy, sizeof(fuzz_policy) - 1, "r");
	if (f == NULL)
		fatal("fmemopen");
	d->policy = policy_load_stream(f, "fuzz.policy", err, sizeof(err));
	fclose(f);
	if (d->policy == NULL) {
		fprintf(stderr, "fuzz policy: %s\n", err);
		abort();
	}
	d->audit = audit_open("/dev/null", err, sizeof(err));
	if (d->audit == NULL) {
		fprintf(stderr, "audit: %s\n", err);
		abort();
	}
	/* No name servers, only the hosts file: names never leave the machine. */
	d->dns = resolve_base_new(d->base, "/dev/null", "/etc/hosts");
	if (d->dns == NULL)
		fatal("resolver");
	ops_install(d);
	if (relay_pipe_open(&d->relay) != 0)
		fatal("relay pipe");
	signal(SIGPIPE, SIG_IGN); /* as sockrpcd does: splicing to a gone client raises it */
	fds_at_start = open_fd_count();
	return 0;
}

/* Runs the loop without blocking a few times: enough for every ready callback, the
 * deferred session release and callbacks they schedule. */
static void
run_loop(struct sockrpcd *d, int rounds)
{
	for (int i = 0; i < rounds; i++)
		event_base_loop(d->base, EVLOOP_NONBLOCK);
}

/* Reads and drops what the daemon wrote: on the connection (keeping a reply channel that
 * arrives on it, in *channel) and on the channel. */
static void
drain(int fd, int *channel)
{
	static char buf[65536];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} control;
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr msg;
	struct cmsghdr *cm;

	for (;;) {
		msg = (struct msghdr){.msg_iov = &iov,
		                      .msg_iovlen = 1,
		                      .msg_control = control.buf,
		                      .msg_controllen = sizeof(control.buf)};
		if (recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) <= 0)
			break;
		for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
			int passed;

			if (cm->cmsg_type != SCM_RIGHTS)
				continue;
			memcpy(&passed, CMSG_DATA(cm), sizeof(int));
			if (*channel == -1)
				*channel = passed;
			else
				close(passed);
		}
	}
	while (*channel != -1 && recv(*channel, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

static size_t
hello_frame(uint8_t *out, bool reply_channel)
{
	Sockrpc__HelloRequest hello = SOCKRPC__HELLO_REQUEST__INIT;
	struct sr_frame_header h = {.method = SOCKRPC_HELLO_METHOD, .call_id = 1};

	hello.major = SR_PROTOCOL_MAJOR;
	hello.client_name = (char *)"fuzz";
	hello.reply_channel = reply_channel;
	h.length = (uint32_t)protobuf_c_message_pack(&hello.base, out + SR_FRAME_HEADER_SIZE);
	frame_header_encode(&h, out);
	return SR_FRAME_HEADER_SIZE + h.length;
}

/*
 * The first input byte chooses the mode: bit 0 set means "say Hello first" (most
 * interesting paths are behind it), bit 1 set means "keep the client end open for
 * another loop round before hanging up" (so waiting calls see a live session), bit 2
 * set means "ask that Hello for a reply channel".
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockrpcd *d = &daemon_state;
	struct identity peer;
	struct session *s;
	uint8_t hello[64];
	size_t off = 0, hello_len = 0;
	int sv[2], mode, fds, channel = -1;

	if (size < 1)
		return 0;
	mode = data[0];
	data++;
	size--;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
		fatal("socketpair");
	memset(&peer, 0, sizeof(peer));
	peer.uid = getuid();
	peer.gid = getgid();
	peer.pid = getpid();
	s = session_new(d, sv[0], &peer);
	if (s == NULL)
		fatal("session_new");
	if (mode & 1) {
		hello_len = hello_frame(hello, mode & 4);
		if (send(sv[1], hello, hello_len, MSG_NOSIGNAL) != (ssize_t)hello_len)
			fatal("send hello");
	}
	/* Feed the input as fast as the session takes it; a session that stops reading
	 * (backpressure, a protocol error) ends the feeding. */
	for (int stuck = 0; off < size && stuck < 4;) {
		ssize_t n = send(sv[1], data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			off += (size_t)n;
			stuck = 0;
		} else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			break; /* the session closed */
		} else {
			stuck++;
		}
		run_loop(d, 2);
		drain(sv[1], &channel);
	}
	run_loop(d, 3);
	drain(sv[1], &channel);
	if (mode & 2) {
		run_loop(d, 3);
		drain(sv[1], &channel);
	}
	close(sv[1]);
	if (channel != -1)
		close(channel);
	run_loop(d, 4);
	if (d->n_sessions != 0) {
		/* A session paused by backpressure is not read: it notices the hang-up by its
		 * HANGUP_CHECK_MS timer, which this target (no fake clock) waits for. */
		struct timeval tv = {0, (HANGUP_CHECK_MS + 100) * 1000};

		event_base_loopexit(d->base, &tv);
		event_base_dispatch(d->base);
	}
	if (d->n_sessions != 0) {
		fprintf(stderr, "fuzz_session: the session outlived its client\n");
		abort();
	}
	/* A leak per session would grow without end; checked every so often, as counting
	 * costs a thousand system calls. */
	if (++runs % 256 == 0 && (fds = open_fd_count()) > fds_at_start + LAZY_FDS) {
		fprintf(stderr, "fuzz_session: %d fds open, %d at start: sessions leak fds\n", fds,
		        fds_at_start);
		abort();
	}
	return 0;
}
