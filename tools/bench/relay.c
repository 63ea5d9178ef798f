/*
 * relay.c - the minimal relay: a second process that does the socket work of the UDP
 * and handback figures for the bench, with none of sockrpc's protocol, policy, audit or
 * library. Its requests are a few raw bytes over a socketpair, and it waits as the
 * daemon's worker does: polling for up to IDLE_POLL_MAX_US before it sleeps (the worker's
 * window once calls come back to back, daemon/idle_poll.c). What it achieves is about
 * what a broker in another process can achieve on this machine (each exchange crosses two
 * processes twice), so the broker's figures can be read against it as well as against
 * direct calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

#define RELAY_UDP 'u'     /* + port (2 bytes) + BENCH_PING_SIZE bytes: the echoed bytes */
#define RELAY_CONNECT 'c' /* + port (2 bytes): one byte and the connected socket */
#define RELAY_REQUEST_SIZE (3 + BENCH_PING_SIZE)
#define RELAY_POLL_US 50 /* daemon/idle_poll.c's IDLE_POLL_MAX_US */

static struct sockaddr_in
loopback(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sin;
}

static int
pass_fd(int to, int fd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	char byte = fd >= 0 ? 'k' : 'x';
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *cm;

	if (fd >= 0) {
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	return sendmsg(to, &msg, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

/* Waits until fd is readable: polled without sleeping for RELAY_POLL_US, then asleep for
 * up to timeout_ms (-1: no limit). Returns whether it is. */
static bool
wait_readable(int fd, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	double until = now_s() + RELAY_POLL_US / 1e6;

	do {
		if (poll(&p, 1, 0) == 1)
			return true;
	} while (now_s() < until);
	return poll(&p, 1, timeout_ms) == 1;
}

/* Whether fd, whose first connect to `to` is under way, ends up connected (2 s at most). */
static bool
connected(int fd, const struct sockaddr_in *to)
{
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	int err = 0;
	socklen_t len = sizeof(err);

	if (errno != EINPROGRESS)
		return false;
	if (connect(fd, (const struct sockaddr *)to, sizeof(*to)) == 0 || errno == EISCONN)
		return true;
	if ((errno != EALREADY && errno != EINPROGRESS) || poll(&p, 1, 2000) != 1 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		return false;
	errno = err;
	return err == 0;
}

/* The relay's loop: one request at a time, as the bench sends them. */
static void
relay_serve(int peer)
{
	uint8_t req[RELAY_REQUEST_SIZE], reply[2048];
	ssize_t n;
	int fd;

	while (wait_readable(peer, -1) && read_full(peer, req, sizeof(req)) == 0) {
		struct sockaddr_in to = loopback(req[1] << 8 | req[2]);

		if (req[0] == RELAY_CONNECT) {
			/* As the worker: non-blocking, and a second connect settles it; one still
			 * under way (a loaded machine) is waited for. */
			fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
			if (fd >= 0 && connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0 &&
			    !connected(fd, &to)) {
				fprintf(stderr, "sockrpc_bench: relay: connect: %s\n",
				        strerror(errno));
				close(fd);
				fd = -1;
			}
			if (pass_fd(peer, fd) != 0)
				return;
			if (fd >= 0)
				close(fd);
			continue;
		}
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		n = -1;
		if (fd >= 0 && sendto(fd, req + 3, BENCH_PING_SIZE, 0, (struct sockaddr *)&to,
		                      sizeof(to)) == BENCH_PING_SIZE) {
			n = recv(fd, reply, sizeof(reply), 0);
			if (n < 0 && errno == EAGAIN && wait_readable(fd, 2000))
				n = recv(fd, reply, sizeof(reply), 0);
		}
		if (fd >= 0)
			close(fd);
		if (n != BENCH_PING_SIZE) {
			/* Zeros, not the bench's bytes: it counts the exchange failed. */
			fprintf(stderr, "sockrpc_bench: relay: no echo (%zd bytes)\n", n);
			memset(reply, 0, BENCH_PING_SIZE);
		}
		if (write_full(peer, reply, BENCH_PING_SIZE) != 0)
			return;
	}
}

int
relay_start(void)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return -1;
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(sv[0]);
		relay_serve(sv[1]);
		_exit(0);
	}
	adopt_child(pid);
	close(sv[1]);
	return sv[0];
}

static int
relay_send(int relay, char kind, int port, const void *msg)
{
	uint8_t req[RELAY_REQUEST_SIZE] = {(uint8_t)kind, (uint8_t)(port >> 8), (uint8_t)port};

	if (msg != NULL)
		memcpy(req + 3, msg, BENCH_PING_SIZE);
	return write_full(relay, req, sizeof(req));
}

int
relay_udp_exchange(int relay, int port, const void *msg)
{
	uint8_t reply[BENCH_PING_SIZE];

	if (relay_send(relay, RELAY_UDP, port, msg) != 0 ||
	    read_full(relay, reply, sizeof(reply)) != 0)
		return -1;
	return memcmp(reply, msg, sizeof(reply)) == 0 ? 0 : -1;
}

int
relay_connect_fd(int relay, int port)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	char byte;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr msg = {.msg_iov = &iov,
	                     .msg_iovlen = 1,
	                     .msg_control = control.buf,
	                     .msg_controllen = sizeof(control.buf)};
	struct cmsghdr *cm;
	int fd = -1;

	if (relay_send(relay, RELAY_CONNECT, port, NULL) != 0 ||
	    recvmsg(relay, &msg, MSG_CMSG_CLOEXEC) != 1 || byte != 'k')
		return -1;
	cm = CMSG_FIRSTHDR(&msg);
	if (cm == NULL || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	/* As sr_connect_fd: the descriptor blocks again in the caller's hands. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}
