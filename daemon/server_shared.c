/*
 * server_shared.c - the daemon's socket shared by several workers (--workers). Each worker
 * registers it with EPOLLEXCLUSIVE in an epoll set of its own, which its event loop
 * watches (libevent 2.1's evconnlistener cannot ask for EPOLLEXCLUSIVE). Nested so, the
 * flag does not keep the others asleep (the kernel stops at an exclusive waiter only if a
 * thread sleeps in epoll_wait on that very set): every waiting worker wakes, in queue
 * order, and all but one get EAGAIN (seen with strace on 6.18). A worker takes at most
 * its share of the sessions: past it, it stops watching the socket and the others take
 * the new connections, so that no worker runs out of descriptors while the others have
 * room. A worker that accepted one leaves the socket's wait queue while it sets up the
 * session and joins again at the back: the first worker in the queue, woken first,
 * usually wins, so idle workers take connections about in turn.
 * TLS listeners are shared too, without this (tls_listener.c): every worker wakes, one
 * accepts.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockrpcd.h"

static void (*on_connection)(struct sockrpcd *, int); /* server.c's accepted() */
static int listen_fd = -1;
static bool watching;

/* This worker's share: the sessions (and the margin refused politely) over the workers,
 * and the margin again, so the shares always add up to more than the limit. */
static unsigned
share(const struct sockrpcd *d)
{
	unsigned all = d->opt.limits.max_sessions + MAX_SESSIONS_MARGIN;

	return (all + d->n_workers - 1) / d->n_workers + MAX_SESSIONS_MARGIN;
}

/* The sessions this worker takes: its share, or with one worker --max-sessions. */
unsigned
server_worker_slots(const struct sockrpcd *d)
{
	return d->accept_ev != NULL ? share(d) : d->opt.limits.max_sessions;
}

/* Watches the socket, or stops: also out of the epoll set, so that an exclusive wake-up
 * never goes to a worker that is not accepting. */
static void
watch(struct sockrpcd *d, bool on)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE};

	if (on == watching || d->accept_ev == NULL)
		return;
	if (on) {
		if (epoll_ctl(d->accept_epfd, EPOLL_CTL_ADD, listen_fd, &ev) != 0 ||
		    event_add(d->accept_ev, NULL) != 0) {
			log_error("cannot watch the daemon's socket: %s", strerror(errno));
			return;
		}
	} else {
		event_del(d->accept_ev);
		epoll_ctl(d->accept_epfd, EPOLL_CTL_DEL, listen_fd, NULL);
	}
	watching = on;
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	server_shared_resume(arg);
}

/* One connection per wake-up, then to the back of the queue (above). A backlog still
 * drains: the socket is ready again as soon as it is registered. */
static void
on_readable(evutil_socket_t epfd, short what, void *arg)
{
	struct sockrpcd *d = arg;
	struct epoll_event ev;
	struct timeval tv = {0, ACCEPT_RETRY_MS * 1000};
	int fd;

	(void)epoll_wait(d->accept_epfd, &ev, 1, 0); /* takes the wake-up */
	if (!watching)
		return;
	if (d->n_sessions >= share(d)) {
		watch(d, false); /* server_session_gone() resumes */
		return;
	}
	do
		fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	while (fd < 0 && (errno == EINTR || errno == ECONNABORTED));
	if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return; /* another worker took it */
	if (fd < 0) {
		/* Out of descriptors: as server.c's listener, pause and retry. */
		log_warn("accept: %s; pausing for %d ms", strerror(errno), ACCEPT_RETRY_MS);
		watch(d, false);
		event_base_once(d->base, -1, EV_TIMEOUT, on_retry, d, &tv);
		return;
	}
	/* To the back of the queue before the connection's work: while this worker sets up
	 * the session, the next connection goes to another. */
	watch(d, false);
	on_connection(d, fd);
	server_shared_resume(d);
}

/* Accepts on fd (taken) in this worker, one of several. Returns 0 or -1 (logged). */
int
server_listen_shared(struct sockrpcd *d, int fd, void (*cb)(struct sockrpcd *, int))
{
	d->accept_epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->accept_epfd < 0 ||
	    (d->accept_ev = event_new(d->base, d->accept_epfd, EV_READ | EV_PERSIST, on_readable,
	                              d)) == NULL) {
		log_error("cannot listen: %s", strerror(errno));
		if (d->accept_epfd >= 0)
			close(d->accept_epfd);
		close(fd);
		return -1;
	}
	on_connection = cb;
	listen_fd = fd;
	watch(d, true);
	return watching ? 0 : -1;
}

/* Watches the socket again if this worker is below its share (and not stopping). */
void
server_shared_resume(struct sockrpcd *d)
{
	if (d->accept_ev != NULL && !d->stopping && d->n_sessions < share(d))
		watch(d, true);
}

void
server_shared_free(struct sockrpcd *d)
{
	if (d->accept_ev == NULL)
		return;
	watch(d, false);
	event_free(d->accept_ev);
	d->accept_ev = NULL;
	close(d->accept_epfd);
	close(listen_fd);
	listen_fd = -1;
}
