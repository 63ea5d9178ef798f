/*
 * run_connect.c - a trapped connect on an inet socket: the daemon checks the
 * policy, connects, and hands the connected socket back (sr_connect_fd); the
 * supervisor gives it the program's blocking mode and options and installs it
 * over the program's descriptor number (SECCOMP_IOCTL_NOTIF_ADDFD with
 * SECCOMP_ADDFD_FLAG_SETFD, like dup2), then answers the connect with its result.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <unistd.h>

#include "run.h"

static int errno_for(const sr_error *e);
static void copy_options(int from, int to);
static int fd_is_cloexec(pid_t pid, int fd);

int
run_connect(struct run_supervisor *sv, const struct run_call *call, const struct run_sock *sock,
            const struct sockaddr_storage *ss, socklen_t ss_len)
{
	struct seccomp_notif_addfd addfd;
	char host[INET6_ADDRSTRLEN];
	int family, port, fd, flags, type, rc;
	struct sockaddr_storage peer;
	socklen_t peer_len = sizeof(peer);
	bool nonblocking = (sock->status_flags & O_NONBLOCK) != 0;
	sr_error e;

	/*
	 * connect(AF_UNSPEC) dissolves a datagram socket's association: nothing to check, but
	 * done here on the address we copied. Let through, the kernel would read the sockaddr
	 * again, which another thread may have made AF_INET meanwhile: a connection unchecked.
	 */
	if (ss->ss_family == AF_UNSPEC && sock->type == SOCK_DGRAM)
		return connect(sock->fd, (const struct sockaddr *)ss, ss_len) == -1 ? -errno : 0;
	if (ss->ss_family != sock->family)
		return -EAFNOSUPPORT;
	/* A datagram socket to a name server we answer for: connected here, in its namespace. */
	if (sock->type == SOCK_DGRAM && run_nameserver_find(sv, ss, ss_len) != NULL &&
	    run_sock_in_netns(sv, sock))
		return connect(sock->fd, (const struct sockaddr *)ss, ss_len) == -1 ? -errno : 0;
	if ((rc = run_sockaddr_text(ss, ss_len, &family, host, sizeof(host), &port)) < 0)
		return rc;
	memset(&e, 0, sizeof(e));
	/* Non-blocking: the daemon hands the socket back while the handshake is under way. */
	type = sock->type | (nonblocking ? SOCK_NONBLOCK : 0);
	fd = sr_connect_fd(sv->client, family, type, host, port, -1, &e);
	/*
	 * A connection that failed while under way (refused at once on loopback) is no
	 * longer handed back, and its errno stays in the daemon: ask again, blocking,
	 * for the real error (or, rarely, a connection).
	 */
	if (fd == -1 && nonblocking && e.code == SR_ESTATE)
		fd = sr_connect_fd(sv->client, family, sock->type, host, port, -1, &e);
	if (fd == -1) {
		if (sv->verbose)
			fprintf(stderr, "sockrpc run: connect to %s port %d: %s\n", host, port,
			        e.message);
		return -errno_for(&e);
	}
	flags = fcntl(fd, F_GETFL);
	if (flags == -1 ||
	    fcntl(fd, F_SETFL, (flags & ~O_NONBLOCK) | (sock->status_flags & O_NONBLOCK)) == -1) {
		close(fd);
		return -EIO;
	}
	copy_options(sock->fd, fd);
	addfd = (struct seccomp_notif_addfd){
	    .id = call->id,
	    .flags = SECCOMP_ADDFD_FLAG_SETFD,
	    .srcfd = (uint32_t)fd,
	    .newfd = (uint32_t)call->args[0],
	    .newfd_flags = fd_is_cloexec(call->pid, (int)call->args[0]) ? O_CLOEXEC : 0,
	};
	rc = ioctl(sv->notify_fd, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd) == -1 ? -errno : 0;
	/*
	 * As the kernel answers a non-blocking connect: 0 if already connected, else
	 * EINPROGRESS, and the program waits for POLLOUT and reads SO_ERROR (which we
	 * must not read here: reading it clears it).
	 */
	if (rc == 0 && nonblocking && getpeername(fd, (struct sockaddr *)&peer, &peer_len) == -1)
		rc = -EINPROGRESS;
	close(fd);
	return rc;
}

/* The errno the program's connect returns for the daemon's answer. */
static int
errno_for(const sr_error *e)
{
	switch (e->code) {
	case SR_EDENIED:
	case SR_EUNSUPPORTED: /* e.g. a datagram socket no rule lets be handed back */
		return RUN_DENIED_ERRNO;
	case SR_EOS:
		return e->sys_errno > 0 ? e->sys_errno : ECONNREFUSED;
	case SR_ETIMEDOUT:
		return ETIMEDOUT;
	case SR_EINVAL:
		return EINVAL;
	case SR_ELIMIT:
		return EAGAIN;
	default: /* the daemon went away, broke the protocol... */
		return ENETDOWN;
	}
}

/*
 * Options a program commonly sets before connecting, carried to the handed-back
 * socket. Buffer sizes are not (the kernel reports them doubled).
 */
static void
copy_options(int from, int to)
{
	static const struct {
		int level, name;
	} ints[] = {
	    {SOL_SOCKET, SO_KEEPALIVE}, {SOL_SOCKET, SO_PRIORITY},   {SOL_SOCKET, SO_MARK},
	    {IPPROTO_TCP, TCP_NODELAY}, {IPPROTO_TCP, TCP_KEEPIDLE}, {IPPROTO_TCP, TCP_KEEPINTVL},
	    {IPPROTO_TCP, TCP_KEEPCNT},
	};
	static const int timeouts[] = {SO_RCVTIMEO, SO_SNDTIMEO};
	struct linger lg;
	struct timeval tv;
	socklen_t len;
	int v;

	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		len = sizeof(v);
		if (getsockopt(from, ints[i].level, ints[i].name, &v, &len) == 0)
			(void)setsockopt(to, ints[i].level, ints[i].name, &v, len);
	}
	for (size_t i = 0; i < 2; i++) {
		len = sizeof(tv);
		if (getsockopt(from, SOL_SOCKET, timeouts[i], &tv, &len) == 0)
			(void)setsockopt(to, SOL_SOCKET, timeouts[i], &tv, len);
	}
	len = sizeof(lg);
	if (getsockopt(from, SOL_SOCKET, SO_LINGER, &lg, &len) == 0 && lg.l_onoff)
		(void)setsockopt(to, SOL_SOCKET, SO_LINGER, &lg, len);
}

/* Whether the program's fd is close-on-exec, from /proc/PID/fdinfo ("flags: 02000002"). */
static int
fd_is_cloexec(pid_t pid, int fd)
{
	char path[64], line[128];
	unsigned long flags;
	int cloexec = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fd);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "flags: %lo", &flags) == 1) {
			cloexec = (flags & O_CLOEXEC) != 0;
			break;
		}
	fclose(f);
	return cloexec;
}
