/*
 * transport_unix.c - the transport (transport.h) over a Unix stream socket to
 * sockrpcd. Requests go out on the connection; replies come on it until Hello, then
 * on the reply channel the Hello reply passed over it (SCM_RIGHTS), if the daemon
 * offered one. It does not frame, parse or retry anything. Descriptors that come with
 * replies (handback, client/handback.c) wait in a short queue until the reply they came
 * with is read; the daemon is not trusted, so any it sends beyond that are closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "frame.h"
#include "internal.h"

/* Descriptors kept at most until their replies are read: a handback per call in flight
 * is rare beyond one; a daemon that sends more has the rest closed. -1 marks one the kernel
 * dropped (MSG_CTRUNC), so that its reply fails rather than taking the next one's. */
#define PASSED_MAX 8

struct transport_unix {
	struct transport base;
	int fd;                 /* the connection: requests out (and replies in, until Hello) */
	int reply_fd;           /* where replies come from: fd, or the reply channel */
	int passed[PASSED_MAX]; /* descriptors that came with replies, oldest first: Hello's
	                         * reply channel, handed-back sockets */
	unsigned n_passed;
};

static const struct transport_ops unix_ops;
static int unix_take_fd(struct transport *base);

static void
set_read_tick(int fd)
{
	struct timeval tick = {CL_READ_TICK_MS / 1000, (CL_READ_TICK_MS % 1000) * 1000};

	/* Reads block for at most a tick, so the reader checks its deadline that often
	 * without a poll() before every recv(). */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof(tick));
}

struct transport *
transport_unix_connect(const char *path, sr_error *err)
{
	struct sockaddr_un sun;
	char ebuf[128];
	int fd, saved;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		cl_seterr(err, SR_EINVAL, 0, "socket path too long: %s", path);
		return NULL;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		saved = errno;
		if (fd != -1)
			close(fd);
		cl_seterr(err, SR_EDAEMON, saved, "cannot reach sockrpcd at %s: %s", path,
		          cl_errno_text(saved, ebuf, sizeof(ebuf)));
		return NULL;
	}
	return transport_unix_adopt(fd, err);
}

struct transport *
transport_unix_adopt(int fd, sr_error *err)
{
	struct transport_unix *t;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		close(fd);
		cl_seterr(err, SR_ELIMIT, ENOMEM, "out of memory");
		return NULL;
	}
	t->base.ops = &unix_ops;
	t->fd = t->reply_fd = fd;
	frame_send_room(fd);
	set_read_tick(fd);
	return &t->base;
}

/* Queues a descriptor that came with replies; past PASSED_MAX it is closed. */
static void
queue_passed(struct transport_unix *t, int fd)
{
	if (t->n_passed < PASSED_MAX)
		t->passed[t->n_passed++] = fd;
	else if (fd != -1)
		close(fd);
}

/*
 * Takes the descriptors a read brought. Each sendmsg of the daemon carries at most one
 * (Hello's reply channel, or a handback), so any more in one message are closed. A
 * truncated message (MSG_CTRUNC: more than fit, or the process is out of descriptors)
 * leaves a -1 in the queue, and what did arrive of it is closed.
 */
static void
take_passed_fds(struct transport_unix *t, struct msghdr *msg)
{
	struct cmsghdr *cm;
	bool first = true;

	for (cm = CMSG_FIRSTHDR(msg); cm != NULL; cm = CMSG_NXTHDR(msg, cm)) {
		size_t n;
		int fd;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		for (n = 0; (n + 1) * sizeof(int) <= cm->cmsg_len - CMSG_LEN(0); n++) {
			memcpy(&fd, CMSG_DATA(cm) + n * sizeof(int), sizeof(int));
			if (first && !(msg->msg_flags & MSG_CTRUNC))
				queue_passed(t, fd);
			else
				close(fd);
			first = false;
		}
	}
	if (msg->msg_flags & MSG_CTRUNC)
		queue_passed(t, -1);
}

/* Both streams are read with recvmsg (MSG_CMSG_CLOEXEC, so no descriptor leaks into a
 * child the caller spawns): the Hello reply brings the reply channel, handback replies
 * their sockets. */
static ssize_t
unix_read(struct transport *base, void *buf, size_t len)
{
	struct transport_unix *t = (struct transport_unix *)base;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} control;
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr msg;
	ssize_t n;

	msg = (struct msghdr){.msg_iov = &iov,
	                      .msg_iovlen = 1,
	                      .msg_control = control.buf,
	                      .msg_controllen = sizeof(control.buf)};
	n = recvmsg(t->reply_fd, &msg, MSG_CMSG_CLOEXEC);
	if (n > 0)
		take_passed_fds(t, &msg);
	return n;
}

static int
unix_take_fd(struct transport *base)
{
	struct transport_unix *t = (struct transport_unix *)base;
	int fd;

	if (t->n_passed == 0)
		return -1;
	fd = t->passed[0];
	memmove(t->passed, t->passed + 1, --t->n_passed * sizeof(int));
	return fd;
}

static void
unix_drop_fds(struct transport *base)
{
	struct transport_unix *t = (struct transport_unix *)base;

	for (unsigned i = 0; i < t->n_passed; i++)
		if (t->passed[i] != -1)
			close(t->passed[i]);
	t->n_passed = 0;
}

static ssize_t
unix_writev(struct transport *base, const struct iovec *iov, int n_iov)
{
	struct transport_unix *t = (struct transport_unix *)base;
	struct msghdr msg = {.msg_iov = (struct iovec *)(uintptr_t)iov,
	                     .msg_iovlen = (size_t)n_iov};

	/* MSG_NOSIGNAL: a dead daemon cannot kill the caller with SIGPIPE. */
	return sendmsg(t->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static int
unix_wait_writable(struct transport *base, int64_t deadline)
{
	struct transport_unix *t = (struct transport_unix *)base;
	struct pollfd pfd;
	int64_t left;
	int n;

	for (;;) {
		left = -1;
		if (deadline != CL_NO_DEADLINE) {
			left = deadline - cl_now_ms();
			if (left <= 0) {
				errno = ETIMEDOUT;
				return -1;
			}
		}
		pfd = (struct pollfd){.fd = t->fd, .events = POLLOUT};
		n = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (n > 0)
			return 0; /* errors and hangups show up in the next write */
		if (n == -1 && errno != EINTR)
			return -1;
	}
}

/* A poll and an ioctl, no round trip. */
static bool
unix_hung_up(struct transport *base)
{
	struct transport_unix *t = (struct transport_unix *)base;
	struct pollfd pfd[2];
	short gone = POLLHUP | POLLERR | POLLRDHUP;
	int n = 0, queued = 0;

	pfd[n++] = (struct pollfd){.fd = t->reply_fd, .events = POLLRDHUP};
	if (t->fd != t->reply_fd)
		pfd[n++] = (struct pollfd){.fd = t->fd, .events = POLLRDHUP};
	return poll(pfd, (nfds_t)n, 0) > 0 &&
	       ((pfd[0].revents & gone) || (n > 1 && (pfd[1].revents & gone))) &&
	       ioctl(t->reply_fd, FIONREAD, &queued) == 0 && queued == 0;
}

/* shutdown() wakes a reader blocked in recv(). */
static void
unix_shutdown(struct transport *base)
{
	struct transport_unix *t = (struct transport_unix *)base;

	shutdown(t->fd, SHUT_RDWR);
	if (t->reply_fd != t->fd)
		shutdown(t->reply_fd, SHUT_RDWR);
}

/* The reply channel must be a socket, or a read of it would ignore its deadline. */
static bool
is_unix_stream(int fd)
{
	int domain = -1, type = -1;
	socklen_t len = sizeof(int);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == -1)
		return false;
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1)
		return false;
	return domain == AF_UNIX && type == SOCK_STREAM;
}

static int
unix_use_reply_channel(struct transport *base, sr_error *err)
{
	struct transport_unix *t = (struct transport_unix *)base;
	int channel = unix_take_fd(base);

	if (channel == -1) {
		cl_seterr(err, SR_EPROTO, 0,
		          "sockrpcd's Hello reply came without its reply channel");
		return -1;
	}
	if (!is_unix_stream(channel)) {
		close(channel);
		cl_seterr(err, SR_EPROTO, 0,
		          "sockrpcd's reply channel is not a Unix stream socket");
		return -1;
	}
	t->reply_fd = channel;
	/* Reads wait in recv() for a tick, whatever the daemon left set. */
	fcntl(t->reply_fd, F_SETFL, fcntl(t->reply_fd, F_GETFL) & ~O_NONBLOCK);
	set_read_tick(t->reply_fd);
	return 0;
}

static void
unix_free(struct transport *base)
{
	struct transport_unix *t = (struct transport_unix *)base;

	if (t == NULL)
		return;
	if (t->reply_fd != t->fd)
		close(t->reply_fd);
	unix_drop_fds(base);
	close(t->fd);
	free(t);
}

static const struct transport_ops unix_ops = {
    .read = unix_read,
    .writev = unix_writev,
    .wait_writable = unix_wait_writable,
    .hung_up = unix_hung_up,
    .shutdown = unix_shutdown,
    .use_reply_channel = unix_use_reply_channel,
    .take_fd = unix_take_fd,
    .drop_fds = unix_drop_fds,
    .free = unix_free,
};
