/*
 * linger.c - SO_LINGER without blocking the loop. Linux's close() of a TCP socket with a
 * positive linger waits, whatever O_NONBLOCK says, until the FIN it sends is acknowledged
 * or the linger time passes; on the daemon's one thread that wait froze every session.
 * So the kernel socket never gets a positive linger (linger 0, abort on close, never
 * waits and is passed through): the handle keeps the client's value, and at close the
 * socket is shut down for writing and parked on the daemon's lingering list, checked from
 * a timer until its FIN is acknowledged or the time is up (capped, LINGER_MAX_S); then it
 * is closed. The client's close call is answered then, as a blocking close would return;
 * nothing else waits for it.
 *
 * What is emulated is Linux's: tcp_close() sends RST instead of FIN when received data
 * is unread (no wait); otherwise it sends FIN after the queued data and waits while the
 * socket is in FIN_WAIT1, CLOSING or LAST_ACK. When the time runs out close() returns and
 * the kernel carries on with the orphaned connection (no RST); so does the plain close()
 * here. Only the wait is the daemon's. A socket that cannot linger here (the bounds below
 * reached, or the daemon stopping) is closed at once: the kernel still sends its data and
 * FIN as it would after a timed-out linger, only the close call does not wait.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>

#include "ops.h"

struct lingering {
	LIST_ENTRY(lingering) link;
	struct sockrpcd *d;
	uint64_t session_id; /* counts against this session's bound */
	int fd;              /* owned */
	struct event *timer;
	int64_t deadline_ms;     /* monotonic */
	int poll_ms;             /* the next check's delay: backs off to LINGER_POLL_MAX_MS */
	struct call *close_call; /* the client's close, answered when the linger ends */
	struct handle *handle;   /* owned while close_call waits: its reply's state */
};

static void on_linger_tick(evutil_socket_t fd, short what, void *arg);
static void linger_end(struct lingering *l);

static int64_t
monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * SO_LINGER as the client sets it: seconds >= 0 turns linger on, < 0 off. The handle
 * remembers the value (get_option answers it); the kernel sees only "off" or, for 0,
 * "abort on close". Returns 0 or an errno.
 */
int
linger_set_option(struct handle *h, int seconds)
{
	struct linger l = {.l_onoff = seconds == 0, .l_linger = 0};

	if (setsockopt(h->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) != 0)
		return errno;
	h->linger_s = seconds < 0 ? -1 : seconds;
	return 0;
}

/* Whether closing h must wait for its FIN to be acknowledged, as Linux's tcp_close would. */
static bool
must_linger(struct handle *h)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int unread = 0;

	if (h->linger_s <= 0 || h->type != SOCK_STREAM ||
	    (h->family != AF_INET && h->family != AF_INET6))
		return false;
	if (getsockopt(h->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
		return false;
	if (ti.tcpi_state != TCP_ESTABLISHED && ti.tcpi_state != TCP_CLOSE_WAIT &&
	    ti.tcpi_state != TCP_FIN_WAIT1 && ti.tcpi_state != TCP_CLOSING &&
	    ti.tcpi_state != TCP_LAST_ACK)
		return false;
	/* Unread data: the kernel answers close with RST and does not wait. */
	if (ioctl(h->fd, FIONREAD, &unread) == 0 && unread > 0)
		return false;
	return true;
}

/* True while the socket's FIN is not yet acknowledged (sk_stream_wait_close's test). */
static bool
still_closing(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
		return false;
	return ti.tcpi_state == TCP_FIN_WAIT1 || ti.tcpi_state == TCP_CLOSING ||
	       ti.tcpi_state == TCP_LAST_ACK;
}

static unsigned
lingering_of_session(struct sockrpcd *d, uint64_t session_id)
{
	struct lingering *l;
	unsigned n = 0;

	LIST_FOREACH (l, &d->lingering, link)
		n += l->session_id == session_id;
	return n;
}

static void
arm(struct lingering *l)
{
	int64_t left = l->deadline_ms - monotonic_ms();
	int ms = l->poll_ms;
	struct timeval tv;

	if (left < ms)
		ms = left > 0 ? (int)left : 0;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(l->timer, &tv);
	if (l->poll_ms < LINGER_POLL_MAX_MS)
		l->poll_ms =
		    l->poll_ms * 2 > LINGER_POLL_MAX_MS ? LINGER_POLL_MAX_MS : l->poll_ms * 2;
}

/*
 * Closes h's fd for handle_close(): at once, or, if the client asked for linger and the
 * connection still has a FIN to deliver, after it is acknowledged or the linger time is
 * up. Takes the fd (h->fd is -1 after); h->lingering tells whether it lingers.
 */
void
linger_close_fd(struct handle *h)
{
	struct sockrpcd *d = h->session->d;
	struct lingering *l = NULL;
	int fd = h->fd;

	h->lingering = NULL;
	if (fd < 0)
		return; /* handed back: the client's now */
	if (d->stopping || !must_linger(h))
		goto close_now;
	h->fd = -1;
	if (d->n_lingering >= MAX_LINGERING ||
	    lingering_of_session(d, h->session->id) >= MAX_LINGERING_PER_SESSION) {
		log_info("session %llu: too many lingering sockets; socket %lld closes without "
		         "waiting",
		         (unsigned long long)h->session->id, (long long)h->id);
		goto close_now;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    (l->timer = evtimer_new(d->base, on_linger_tick, l)) == NULL)
		goto close_now;
	l->d = d;
	l->session_id = h->session->id;
	l->fd = fd;
	l->poll_ms = LINGER_POLL_MIN_MS;
	l->deadline_ms = monotonic_ms() +
	                 1000 * (int64_t)(h->linger_s < LINGER_MAX_S ? h->linger_s : LINGER_MAX_S);
	/* The FIN goes out after the queued data; the kernel sends it without us. */
	shutdown(fd, SHUT_WR);
	LIST_INSERT_HEAD(&d->lingering, l, link);
	d->n_lingering++;
	h->lingering = l;
	arm(l);
	return;
close_now:
	if (l) {
		if (l->timer)
			event_free(l->timer);
		free(l);
	}
	h->fd = -1;
	if (!session_close_later(h->session, fd))
		close(fd);
}

/*
 * After handle_close(h) for a client's close call: if h lingers, the call is answered
 * when the linger ends, with h's state, and h is freed then; returns true. Otherwise
 * returns false and the caller answers and frees as usual.
 */
bool
linger_wait_for_close(struct handle *h, struct call *c)
{
	struct lingering *l = h->lingering;

	if (l == NULL)
		return false;
	l->close_call = c;
	l->handle = h;
	c->op.lingering = l;
	c->op_free = linger_call_gone;
	return true;
}

/* From call_free(): the close call waiting on a linger is gone (its session ended). */
void
linger_call_gone(struct call *c)
{
	struct lingering *l = c->op.lingering;

	if (l == NULL)
		return;
	c->op.lingering = NULL;
	l->close_call = NULL;
	handle_free(l->handle);
	l->handle = NULL;
}

/* Daemon exit: every lingering socket closes now (the kernel finishes them). */
void
linger_close_all(struct sockrpcd *d)
{
	struct lingering *l;

	while ((l = LIST_FIRST(&d->lingering)) != NULL)
		linger_end(l);
}

static void
on_linger_tick(evutil_socket_t fd, short what, void *arg)
{
	struct lingering *l = arg;

	if (still_closing(l->fd) && monotonic_ms() < l->deadline_ms) {
		arm(l);
		return;
	}
	linger_end(l);
}

/* Closes the socket, answers the waiting close call, frees l. */
static void
linger_end(struct lingering *l)
{
	struct call *c = l->close_call;
	struct handle *h = l->handle;

	LIST_REMOVE(l, link);
	l->d->n_lingering--;
	event_free(l->timer);
	close(l->fd);
	if (c != NULL) {
		struct session *s = c->session;

		c->op.lingering = NULL;
		session_enter(s);
		op_reply_state(c, h);
		handle_free(h);
		call_finish(c); /* the linger resumed the call: it frees it */
		session_leave(s);
	}
	free(l);
}
