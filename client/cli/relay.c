/*
 * relay.c - pumps bytes both ways between a connected stream handle and a pair
 * of file descriptors (stdin/stdout), in 64 KiB chunks. The socket-to-stdout
 * direction runs in the caller's thread, stdin-to-socket in a second thread:
 * libsockrpc lets one thread wait in sr_receive() while another sends. It does
 * not open, accept or free the handle; the caller owns it.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"

struct relay {
	sr_socket *sock;
	int in_fd;
	int out_fd;
	int wake[2]; /* written once to make the sending thread stop reading in_fd */
	pthread_mutex_t mu;
	bool stopping; /* set once: later errors are consequences, not causes */
	bool failed;
	sr_error err; /* the first error, the one reported */
};

static void *send_loop(void *arg);
static void receive_loop(struct relay *r);
static void relay_stop(struct relay *r, const sr_error *why);
static int wait_readable(int fd, int wake_fd);

/*
 * Copies in_fd to the socket and the socket to out_fd until both directions
 * are done. At in_fd's end the socket's write side is shut down (SHUT_WR) and
 * the socket is still copied out until the peer closes; after the peer closes,
 * in_fd is still sent (the peer may have shut down only its write side) unless
 * it is a terminal, where nothing is in flight and waiting would only hang.
 * The first error in either direction stops both (the handle is closed to
 * interrupt a call in progress). A closed out_fd (EPIPE) ends the relay quietly.
 * Returns 0, or -1 with *err filled.
 */
int
relay_run(sr_socket *s, int in_fd, int out_fd, sr_error *err)
{
	struct relay r;
	pthread_t sender;
	sr_error e;
	int rc;

	memset(&r, 0, sizeof(r));
	r.sock = s;
	r.in_fd = in_fd;
	r.out_fd = out_fd;
	if (pipe(r.wake) == -1) {
		cli_seterr(err, SR_EOS, errno, "pipe: %s", strerror(errno));
		return -1;
	}
	pthread_mutex_init(&r.mu, NULL);
	if ((rc = pthread_create(&sender, NULL, send_loop, &r)) != 0) {
		cli_seterr(err, SR_EOS, rc, "cannot start a thread: %s", strerror(rc));
		close(r.wake[0]);
		close(r.wake[1]);
		pthread_mutex_destroy(&r.mu);
		return -1;
	}
	receive_loop(&r);
	if (isatty(in_fd))
		relay_stop(&r, NULL);
	pthread_join(sender, NULL);

	close(r.wake[0]);
	close(r.wake[1]);
	pthread_mutex_destroy(&r.mu);
	if (r.failed) {
		e = r.err;
		if (err != NULL)
			*err = e;
		return -1;
	}
	return 0;
}

/* Writes all of buf to fd, retrying short writes. Returns 0, or -1 with errno. */
int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The sending thread: in_fd to the socket, then SHUT_WR. */
static void *
send_loop(void *arg)
{
	struct relay *r = arg;
	char *buf;
	sr_error e;
	ssize_t got;
	long sent;

	if ((buf = malloc(CLI_CHUNK)) == NULL) {
		cli_seterr(&e, SR_ELIMIT, ENOMEM, "out of memory");
		relay_stop(r, &e);
		return NULL;
	}
	for (;;) {
		if (wait_readable(r->in_fd, r->wake[0]) == 1)
			break; /* told to stop */
		got = read(r->in_fd, buf, CLI_CHUNK);
		if (got == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got == -1) {
			cli_seterr(&e, SR_EOS, errno, "reading stdin: %s", strerror(errno));
			relay_stop(r, &e);
			break;
		}
		if (got == 0) {
			if (sr_shutdown(r->sock, SHUT_WR, &e) == -1)
				relay_stop(r, &e);
			break;
		}
		/* A blocking handle sends all or fails; a short count is an error too. */
		sent = sr_send(r->sock, buf, (size_t)got, 0, &e);
		if (sent >= 0 && sent < got)
			cli_seterr(&e, SR_EOS, 0, "send stopped after %ld of %zd bytes", sent, got);
		if (sent != got) {
			relay_stop(r, &e);
			break;
		}
	}
	free(buf);
	return NULL;
}

/* The caller's thread: the socket to out_fd until the end of the stream. */
static void
receive_loop(struct relay *r)
{
	size_t len;
	sr_error e;
	char *buf;

	for (;;) {
		if (sr_receive(r->sock, CLI_CHUNK, 0, &buf, &len, &e) == -1) {
			relay_stop(r, &e);
			return;
		}
		if (len == 0) {
			free(buf); /* end of stream */
			return;
		}
		if (write_all(r->out_fd, buf, len) == -1) {
			/* A reader that went away (`| head`) is an end, not a failure. */
			if (errno == EPIPE) {
				relay_stop(r, NULL);
			} else {
				cli_seterr(&e, SR_EOS, errno, "writing stdout: %s",
				           strerror(errno));
				relay_stop(r, &e);
			}
			free(buf);
			return;
		}
		free(buf);
	}
}

/*
 * Stops both directions, once: records why (NULL: a quiet stop), wakes the
 * sending thread out of its wait on in_fd, and closes the handle so that a
 * receive or send in progress in the other thread returns at once.
 */
static void
relay_stop(struct relay *r, const sr_error *why)
{
	bool first;

	pthread_mutex_lock(&r->mu);
	first = !r->stopping;
	if (first) {
		r->stopping = true;
		if (why != NULL) {
			r->failed = true;
			r->err = *why;
		}
	}
	pthread_mutex_unlock(&r->mu);
	if (!first)
		return;
	(void)write(r->wake[1], "x", 1);
	(void)sr_close(r->sock, NULL);
}

/* Waits until fd is readable (0) or wake_fd is (1); -1 on a poll failure. */
static int
wait_readable(int fd, int wake_fd)
{
	struct pollfd p[2];

	p[0].fd = fd;
	p[0].events = POLLIN;
	p[1].fd = wake_fd;
	p[1].events = POLLIN;
	for (;;) {
		p[0].revents = p[1].revents = 0;
		if (poll(p, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (p[1].revents != 0)
			return 1;
		/* POLLHUP and POLLERR too: the read() that follows says what they mean. */
		if (p[0].revents != 0)
			return 0;
	}
}
