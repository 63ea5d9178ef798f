/*
 * handle.c - one brokered OS socket: its state machine, the calls waiting on it, and
 * its events and timers. The rpc handlers (ops_*.c) decide what a call does; this
 * file decides when it may run and wakes it when the socket is ready or its time is up.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "enums.h"
#include "sockrpcd.h"

static void on_readable(evutil_socket_t fd, short what, void *arg);
static void on_writable(evutil_socket_t fd, short what, void *arg);

/* Takes ownership of fd (closed on failure too). Returns a handle with no id yet. */
struct handle *
handle_new(struct session *s, int fd, int family, int type, int protocol)
{
	struct handle *h = calloc(1, sizeof(*h));

	if (h == NULL)
		goto fail;
	h->session = s;
	h->fd = fd;
	h->family = family;
	h->type = type;
	h->protocol = protocol;
	h->state = HANDLE_FRESH;
	h->blocking = true;
	h->shutdown_reason = -1;
	h->send_timeout_ms = -1;
	h->receive_timeout_ms = -1;
	h->linger_s = -1;
	h->allowed_by_line = -1;
	/* Blade's default host is IP_LOCAL; an IPv6 socket gets the IPv6 loopback. */
	if (family == AF_INET)
		strcpy(h->host, "127.0.0.1");
	else if (family == AF_INET6)
		strcpy(h->host, "::1");
	TAILQ_INIT(&h->rx.calls);
	TAILQ_INIT(&h->tx.calls);
	h->rx.io = event_new(s->d->base, fd, EV_READ, on_readable, h);
	h->tx.io = event_new(s->d->base, fd, EV_WRITE, on_writable, h);
	if (h->rx.io == NULL || h->tx.io == NULL)
		goto fail;
	return h;
fail:
	if (h) {
		if (h->rx.io)
			event_free(h->rx.io);
		if (h->tx.io)
			event_free(h->tx.io);
		free(h);
	}
	close(fd);
	return NULL;
}

#define ST(x) (1u << (x))

/*
 * The state machine as data: which states permit each operation, and what a refusal
 * says (Blade's SocketException texts). Returns 0, or an SR code with *why set.
 */
int
handle_permits(struct handle *h, enum handle_op op, const char **why)
{
	static const char illegal[] = "socket is in an illegal state";
	static const char not_connected[] = "socket not listening or connected";
	bool dgram = h->type == SOCK_DGRAM;
	unsigned allowed = 0;
	const char *refusal = illegal;

	if (h->state == HANDLE_CLOSED) {
		*why = "socket is closed";
		return SOCKRPC__CODE__ECLOSED;
	}
	switch (op) {
	case HOP_CONNECT:
		allowed = ST(HANDLE_FRESH) | ST(HANDLE_BOUND);
		if (h->state == HANDLE_CONNECTED)
			refusal = "socket has existing connection";
		else if (h->state == HANDLE_CONNECTING)
			refusal = "a connection is already in progress";
		break;
	case HOP_BIND:
		allowed = ST(HANDLE_FRESH);
		if (h->state == HANDLE_BOUND || h->state == HANDLE_LISTENING)
			refusal = "socket previously bound";
		break;
	case HOP_LISTEN:
		allowed = ST(HANDLE_BOUND);
		if (h->state == HANDLE_LISTENING)
			refusal = "socket is already listening";
		break;
	case HOP_ACCEPT:
		allowed = ST(HANDLE_LISTENING);
		refusal = "socket not bound/listening";
		break;
	case HOP_SEND:
		if (h->connect_pending)
			return 0; /* queued behind the connect */
		allowed = ST(HANDLE_CONNECTED) | ST(HANDLE_CONNECTING);
		if (!h->shut_wr)
			allowed |= ST(HANDLE_SHUTDOWN);
		refusal = h->shut_wr ? "socket is shut down for writing" : not_connected;
		break;
	case HOP_RECEIVE:
		if (h->connect_pending)
			return 0; /* waits for the connect */
		allowed = ST(HANDLE_CONNECTED) | ST(HANDLE_CONNECTING);
		if (dgram)
			allowed |= ST(HANDLE_BOUND);
		if (!h->shut_rd)
			allowed |= ST(HANDLE_SHUTDOWN);
		refusal = h->shut_rd ? "socket is shut down for reading" : not_connected;
		break;
	case HOP_SEND_TO:
	case HOP_RECEIVE_FROM:
		if (!dgram) {
			*why = op == HOP_SEND_TO ? "send_to needs a datagram socket"
			                         : "receive_from needs a datagram socket";
			return SOCKRPC__CODE__EINVAL;
		}
		allowed = ST(HANDLE_FRESH) | ST(HANDLE_BOUND) | ST(HANDLE_CONNECTED);
		if (op == HOP_SEND_TO ? !h->shut_wr : !h->shut_rd)
			allowed |= ST(HANDLE_SHUTDOWN);
		break;
	case HOP_SHUTDOWN:
	case HOP_QUERY:
		return 0;
	case HOP_HANDBACK:
		if (h->connect_pending) {
			*why = "a connect is in progress: hand the socket back once it returns";
			return SOCKRPC__CODE__ESTATE;
		}
		allowed = ST(HANDLE_CONNECTED) | ST(HANDLE_CONNECTING);
		if (h->state == HANDLE_LISTENING)
			refusal =
			    "a listening socket is never handed back (it would accept any peer)";
		else if (dgram && h->state != HANDLE_SHUTDOWN)
			refusal =
			    "an unconnected datagram socket is never handed back (it could send "
			    "anywhere)";
		else if (h->state == HANDLE_SHUTDOWN)
			refusal = "a socket that is shut down is not handed back";
		else
			refusal = "only a connected socket is handed back";
		break;
	case HOP_SET_OPTION:
		allowed = ~ST(HANDLE_SHUTDOWN);
		refusal = "socket is shut down";
		break;
	}
	if (allowed & ST(h->state))
		return 0;
	*why = refusal;
	return SOCKRPC__CODE__ESTATE;
}

/*
 * A non-blocking connect completes without any call waiting on it: bring the state up
 * to date before serving the next call on the handle.
 */
void
handle_refresh(struct handle *h)
{
	struct pollfd p = {.fd = h->fd, .events = POLLOUT};
	socklen_t len = sizeof(int);
	int err = 0;

	if (h->state != HANDLE_CONNECTING || !TAILQ_EMPTY(&h->tx.calls))
		return;
	if (poll(&p, 1, 0) != 1)
		return;
	if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err == 0) {
		h->state = HANDLE_CONNECTED;
	} else {
		h->pending_error = err;
		handle_reset_connection(h);
	}
}

/*
 * Returns a socket whose connect failed or was abandoned to the unconnected state.
 * Linux keeps such a socket "connecting" (the next connect fails with ECONNABORTED)
 * until it is disconnected, which connect() to AF_UNSPEC does.
 */
void
handle_reset_connection(struct handle *h)
{
	struct sockaddr unspec = {.sa_family = AF_UNSPEC};

	connect(h->fd, &unspec, sizeof(unspec));
	h->state = HANDLE_FRESH;
}

/* Fills *out from the handle; strings point into h (valid while h lives). Returns out. */
Sockrpc__SocketState *
handle_state_message(const struct handle *h, Sockrpc__SocketState *out)
{
	int wire;

	sockrpc__socket_state__init(out);
	out->id = h->id;
	out->host = (char *)h->host;
	out->port = h->port;
	out->family = enum_family_from_host(h->family, &wire) == 0 ? wire : 0;
	out->type = enum_type_from_host(h->type, &wire) == 0 ? wire : 0;
	out->protocol = enum_protocol_from_host(h->protocol, &wire) == 0 ? wire : 0;
	out->is_client = out->is_connected = h->state == HANDLE_CONNECTED;
	out->is_bound = h->state == HANDLE_BOUND || h->state == HANDLE_LISTENING;
	out->is_listening = h->state == HANDLE_LISTENING;
	out->is_closed = h->state == HANDLE_CLOSED;
	out->is_shutdown = h->shut_rd || h->shut_wr;
	out->is_blocking = h->blocking;
	out->shutdown_reason = -1;
	if (h->shutdown_reason >= 0 && enum_shutdown_from_host(h->shutdown_reason, &wire) == 0)
		out->shutdown_reason = wire;
	out->send_timeout = h->send_timeout_ms;
	out->receive_timeout = h->receive_timeout_ms;
	return out;
}

static struct call_queue *
queue_of(struct handle *h, enum call_dir dir)
{
	return dir == CALL_RX ? &h->rx : &h->tx;
}

static void
on_call_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct call *c = arg;
	struct session *s = c->session;
	struct handle *h = c->handle;
	enum call_dir dir = c->dir;
	bool was_head = h && TAILQ_FIRST(&queue_of(h, dir)->calls) == c;

	session_enter(s);
	c->step(c, CALL_TIMEOUT); /* always answers */
	call_finish(c);
	if (h && was_head)
		handle_run_queue(h, dir);
	session_leave(s);
}

static void
arm_timer(struct call *c)
{
	struct timeval tv;

	if (c->timeout_ms < 0 || c->timer != NULL)
		return;
	c->timer = evtimer_new(c->session->d->base, on_call_timeout, c);
	if (c->timer == NULL)
		return; /* out of memory: the call waits without a limit */
	tv.tv_sec = c->timeout_ms / 1000;
	tv.tv_usec = (c->timeout_ms % 1000) * 1000;
	evtimer_add(c->timer, &tv);
}

/* Puts c at the end of h's queue for `dir` and runs it if it is first. */
void
handle_queue_call(struct handle *h, struct call *c, enum call_dir dir)
{
	struct call_queue *q = queue_of(h, dir);
	bool first;

	c->handle = h;
	c->dir = dir;
	if (dir == CALL_TX && send_batch_defer(h, c))
		return;
	first = TAILQ_EMPTY(&q->calls);
	c->queued = true;
	TAILQ_INSERT_TAIL(&q->calls, c, queue_link);
	if (first) {
		handle_run_queue(h, dir);
	} else if (!call_may_wait(c)) {
		call_fail(c, h, SOCKRPC__CODE__EWOULDBLOCK, EAGAIN,
		          "%s would block: another call is in progress on this socket",
		          call_method_name(c));
		handle_unqueue_call(c);
	} else {
		arm_timer(c);
	}
}

/* Takes an answered call off its queue and frees it (unless its handler still runs:
 * then its dispatcher does). */
static void
end_call(struct call *c)
{
	handle_unqueue_call(c);
	if (!call_finish(c) && !c->answered)
		log_error("session %llu: %s call ended without an answer",
		          (unsigned long long)c->session->id, call_method_name(c));
}

/* Lets the calls at the head of a queue make progress until one has to wait. */
void
handle_run_queue(struct handle *h, enum call_dir dir)
{
	struct session *s = h->session;
	struct call_queue *q = queue_of(h, dir);
	struct call *c;

	session_enter(s);
	while ((c = TAILQ_FIRST(&q->calls)) != NULL) {
		enum call_progress p = c->step(c, CALL_READY);

		if (p == CALL_DONE) {
			end_call(c);
			continue;
		}
		if (p == CALL_WAIT_IO && !call_may_wait(c)) {
			call_fail(c, h, SOCKRPC__CODE__EWOULDBLOCK, EAGAIN, "%s would block",
			          call_method_name(c));
			end_call(c);
			continue;
		}
		if (p == CALL_WAIT_IO)
			event_add(q->io, NULL);
		arm_timer(c);
		break;
	}
	session_leave(s);
}

void
handle_unqueue_call(struct call *c)
{
	if (!c->queued)
		return;
	TAILQ_REMOVE(&queue_of(c->handle, c->dir)->calls, c, queue_link);
	c->queued = false;
}

static void
on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct handle *h = arg;

	idle_poll_served(h->session->d);
	handle_run_queue(h, CALL_RX);
}

static void
on_writable(evutil_socket_t fd, short what, void *arg)
{
	struct handle *h = arg;

	idle_poll_served(h->session->d);
	handle_run_queue(h, CALL_TX);
}

static void
fail_queue(struct handle *h, struct call_queue *q)
{
	struct call *c;

	while ((c = TAILQ_FIRST(&q->calls)) != NULL) {
		call_fail(c, h, SOCKRPC__CODE__ECLOSED, 0, "socket closed while %s waited",
		          call_method_name(c));
		end_call(c);
	}
}

/*
 * Closes the socket: answers every waiting call (ECLOSED), frees its events, closes the
 * fd, writes the audit record and takes the handle out of its session's table. The
 * struct stays valid (state CLOSED) for a final reply; free it with handle_free().
 */
void
handle_close(struct handle *h, const char *reason)
{
	struct session *s = h->session;

	if (h->state == HANDLE_CLOSED)
		return;
	h->state = HANDLE_CLOSED;
	send_batch_forget(h);
	fail_queue(h, &h->rx);
	fail_queue(h, &h->tx);
	event_free(h->rx.io);
	event_free(h->tx.io);
	h->rx.io = h->tx.io = NULL;
	linger_close_fd(h); /* may wait out SO_LINGER, off the loop's back */
	if (h->unix_file != NULL) {
		/* The path can be bound again; a file put there since is left alone. */
		priv_unix_unlink(s, h->unix_file);
		free(h->unix_file);
		h->unix_file = NULL;
	}
	audit_handle_closed(s->d->audit, s->id, &s->peer, h->id, h->bytes_in, h->bytes_out, reason);
	session_remove_handle(s, h);
}

void
handle_free(struct handle *h)
{
	free(h);
}
