/*
 * transport_unix.c - a session's byte stream over a Unix stream socket: the connection
 * the client made, and the reply channel Hello may open beside it (a socket pair whose
 * client end goes back over SCM_RIGHTS). Framing, dispatch and backpressure are the
 * session's (session.c); this file only moves bytes and knows the socket's quirks.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "frame.h"
#include "sockrpcd.h"

/*
 * Reads from fd into in with one readv, at most `room` bytes. (libevent's evbuffer_read
 * reads 4 KiB at a time; a 1 MiB Send frame should take one system call.) Returns readv's
 * result; -1 with ENOMEM when in cannot grow.
 */
ssize_t
read_into_buffer(struct evbuffer *in, int fd, size_t room)
{
	struct evbuffer_iovec vec[2];
	int n_vec = evbuffer_reserve_space(in, (ev_ssize_t)room, vec, 2);
	ssize_t n;

	if (n_vec < 1) {
		errno = ENOMEM;
		return -1;
	}
	if (vec[0].iov_len >= room) {
		vec[0].iov_len = room;
		n_vec = 1;
	} else if (n_vec == 2 && vec[1].iov_len > room - vec[0].iov_len) {
		vec[1].iov_len = room - vec[0].iov_len;
	}
	do
		n = readv(fd, (struct iovec *)vec, n_vec);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		evbuffer_commit_space(in, vec, 0);
		return n;
	}
	if ((size_t)n <= vec[0].iov_len) {
		vec[0].iov_len = (size_t)n;
		n_vec = 1;
	} else {
		vec[1].iov_len = (size_t)n - vec[0].iov_len;
	}
	evbuffer_commit_space(in, vec, n_vec);
	return n;
}

static ssize_t
unix_read(struct transport *t, struct evbuffer *in, size_t room)
{
	return read_into_buffer(in, t->read_fd, room);
}

static int
unix_write(struct transport *t, struct evbuffer *out)
{
	int n;

	do
		n = evbuffer_write(out, t->write_fd);
	while (n < 0 && errno == EINTR);
	return n;
}

/*
 * Writes the whole of out in one sendmsg, with fd attached (SCM_RIGHTS). 0, or -1 when
 * the client did not take all of it: what is left could not follow on another socket.
 */
static int
send_with_fd(struct transport *t, struct evbuffer *out, int fd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = {.iov_len = evbuffer_get_length(out)};
	struct msghdr msg = {.msg_iov = &iov,
	                     .msg_iovlen = 1,
	                     .msg_control = control.buf,
	                     .msg_controllen = sizeof(control.buf)};
	struct cmsghdr *cm;
	ssize_t n;

	memset(&control, 0, sizeof(control));
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	iov.iov_base = evbuffer_pullup(out, -1);
	do
		n = sendmsg(t->read_fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 || (size_t)n != iov.iov_len)
		return -1;
	evbuffer_drain(out, iov.iov_len);
	return 0;
}

/*
 * A new socket pair: its client end goes with out (the Hello reply), its daemon end
 * takes every later reply. A client blocked reading its connection is woken each time
 * the daemon reads one of its requests (the kernel signals room to write); on the
 * channel it sleeps until its reply comes.
 */
static int
unix_open_reply_channel(struct transport *t, struct evbuffer *out, bool *fatal)
{
	int pair[2]; /* [0] the daemon's end, [1] the client's */

	*fatal = false;
	if (t->write_fd != t->read_fd)
		return -1;
	/* The client's end blocks: its reads wait in the kernel. Only the daemon's is made
	 * non-blocking (each end is its own open file, so the flag is not shared). */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
		log_warn("no reply channel: %s", strerror(errno));
		return -1;
	}
	if (send_with_fd(t, out, pair[1]) != 0) {
		close(pair[0]);
		close(pair[1]);
		*fatal = true;
		return -1;
	}
	close(pair[1]);
	evutil_make_socket_nonblocking(pair[0]);
	frame_send_room(pair[0]);
	t->write_fd = pair[0];
	return 0;
}

static ssize_t
unix_splice_from(struct transport *t, int pipe_rd, size_t n)
{
	ssize_t w;

	do
		w = splice(pipe_rd, NULL, t->write_fd, NULL, n, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
	while (w < 0 && errno == EINTR);
	return w;
}

/* One sendmsg of up to len bytes of out on the reply stream, fd riding on its first byte:
 * the client receives fd no later than the reply it belongs to. */
static ssize_t
unix_pass_fd(struct transport *t, struct evbuffer *out, size_t len, int fd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov;
	struct msghdr msg = {.msg_iov = &iov,
	                     .msg_iovlen = 1,
	                     .msg_control = control.buf,
	                     .msg_controllen = sizeof(control.buf)};
	struct cmsghdr *cm;
	ssize_t n;

	if (len > evbuffer_get_length(out))
		len = evbuffer_get_length(out);
	memset(&control, 0, sizeof(control));
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	iov.iov_base = evbuffer_pullup(out, (ev_ssize_t)len);
	iov.iov_len = len;
	if (iov.iov_base == NULL) {
		errno = ENOMEM;
		return -1;
	}
	do
		n = sendmsg(t->write_fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		evbuffer_drain(out, (size_t)n);
	return n;
}

static bool
unix_hung_up(struct transport *t)
{
	struct pollfd p[2] = {{.fd = t->read_fd, .events = POLLRDHUP},
	                      {.fd = t->write_fd, .events = 0}};
	int n = poll(p, t->write_fd != t->read_fd ? 2 : 1, 0);

	return n > 0 &&
	       ((p[0].revents | p[1].revents) & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

static void
unix_free(struct transport *t)
{
	if (t == NULL)
		return;
	if (t->write_fd != t->read_fd)
		close(t->write_fd);
	close(t->read_fd);
	free(t);
}

static const struct transport_ops unix_ops = {
    .name = "unix",
    .read = unix_read,
    .write = unix_write,
    .open_reply_channel = unix_open_reply_channel,
    .splice_from = unix_splice_from,
    .pass_fd = unix_pass_fd,
    .hung_up = unix_hung_up,
    .free = unix_free,
};

/* Takes ownership of fd (closed on failure too). Returns a transport; free with its
 * ops->free(). */
struct transport *
transport_unix_new(int fd)
{
	struct transport *t = calloc(1, sizeof(*t));

	if (t == NULL) {
		close(fd);
		return NULL;
	}
	evutil_make_socket_nonblocking(fd);
	frame_send_room(fd);
	t->ops = &unix_ops;
	t->read_fd = t->write_fd = fd;
	return t;
}
