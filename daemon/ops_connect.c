/*
 * ops_connect.c - connections: connect (through name resolution and policy, to the
 * first allowed address that answers) and accept. Both wait on the loop, never block it.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "ops.h"

/* Copies n bytes of s into h->host, cut to fit (a snprintf "%s" without the format). */
static void
set_host(struct handle *h, const char *s, size_t n)
{
	if (n >= sizeof(h->host))
		n = sizeof(h->host) - 1;
	memcpy(h->host, s, n);
	h->host[n] = '\0';
}

/* The handle takes the host and port asked for once a connection is under way. */
static void
record_peer(struct call *c, struct handle *h)
{
	const Sockrpc__ConnectRequest *in = (const Sockrpc__ConnectRequest *)c->request;

	if (h->family == AF_UNIX && c->target->addr_len > 0) { /* the normalised path reached */
		const char *path = ((const struct sockaddr_un *)&c->target->addr)->sun_path;

		set_host(h, path, strnlen(path, sizeof(((struct sockaddr_un *)0)->sun_path)));
	} else if (in->host[0]) {
		set_host(h, in->host, strlen(in->host));
	}
	h->port = in->port;
}

/* Ends the connect call; rx calls that waited for the connection may now run. */
static enum call_progress
connect_finish(struct call *c, struct handle *h, bool connected)
{
	h->connect_pending = false;
	if (connected) {
		record_peer(c, h);
		h->state = HANDLE_CONNECTED;
		op_reply_state(c, h);
	}
	handle_run_queue(h, CALL_RX);
	return CALL_DONE;
}

static void
describe_target(struct call *c, struct handle *h, char *buf, size_t n)
{
	const Sockrpc__ConnectRequest *in = (const Sockrpc__ConnectRequest *)c->request;
	const char *host = c->target->name;

	if (h->family == AF_UNIX)
		snprintf(buf, n, "connect to %.200s", host);
	else if (strchr(host, ':'))
		snprintf(buf, n, "connect to [%.200s]:%d", host, in->port);
	else
		snprintf(buf, n, "connect to %.200s:%d", host, in->port);
}

/* Starts connecting to sa; an AF_UNIX path as the client (as_client.c). Returns 0 or
 * -errno, or AS_CLIENT_OWN_SOCKET. */
static int
start_connect(struct call *c, struct handle *h, const struct sockaddr *sa, socklen_t len)
{
	if (h->family == AF_UNIX)
		return priv_unix_connect(c->session, h->fd,
		                         ((const struct sockaddr_un *)sa)->sun_path);
	return connect(h->fd, sa, len) == 0 ? 0 : -errno;
}

/*
 * Whether a connection connect(2) left in progress is already over (made or refused): on
 * the loopback it usually is, the handshake having run inside the system call. The call
 * is then answered in this turn of the loop, with the Socket reply pipelined before it,
 * instead of after a round of epoll. Off with SOCKRPC_DISABLE=connect-at-once. (AF_UNIX;
 * TCP asks connect(2) again, in connect_step.)
 */
static bool
connect_over_now(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLOUT};

	return fast_path_on(FAST_CONNECT_AT_ONCE) && poll(&p, 1, 0) == 1;
}

/* The call's "connect to host:port", made in buf on first use (only a failure says it). */
static const char *
what_of(struct call *c, struct handle *h, char *buf, size_t n)
{
	if (buf[0] == '\0')
		describe_target(c, h, buf, n);
	return buf;
}

static enum call_progress
connect_step(struct call *c, enum call_event ev)
{
	struct handle *h = c->handle;
	struct call_target *t = c->target;
	char what[300] = "";
	int r;

	if (ev == CALL_TIMEOUT) {
		if (h->state == HANDLE_CONNECTING)
			handle_reset_connection(h);
		call_fail(c, h, SOCKRPC__CODE__ETIMEDOUT, ETIMEDOUT, "%s timed out after %d ms",
		          what_of(c, h, what, sizeof(what)), c->timeout_ms);
		return connect_finish(c, h, false);
	}
	if (t->resolving)
		return CALL_WAIT_OTHER;
	if (t->chosen) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err == 0)
			return connect_finish(c, h, true);
		t->last_errno = err;
		t->chosen = false;
		handle_reset_connection(h);
	}
	for (;;) {
		socklen_t len;
		const struct sockaddr *sa = op_next_target(c, h, POLICY_CONNECT, &len);

		if (sa == NULL) {
			op_fail_no_target(c, h, what_of(c, h, what, sizeof(what)));
			return connect_finish(c, h, false);
		}
		if ((h->family == AF_UNIX &&
		     op_unix_refused(c, h, what_of(c, h, what, sizeof(what)))) ||
		    !op_connection_allowed(c, h, &t->allowed_by))
			return connect_finish(c, h, false);
		h->handback = t->allowed_by.handback;
		h->allowed_by_line = t->allowed_by.rule_line;
		r = start_connect(c, h, sa, len);
		if (r == 0)
			return connect_finish(c, h, true);
		if (r == AS_CLIENT_OWN_SOCKET || r == -ELOOP) {
			op_fail_unix(c, h, r, what_of(c, h, what, sizeof(what)));
			return connect_finish(c, h, false);
		}
		if (r == -EINPROGRESS || r == -EAGAIN) {
			t->chosen = true;
			h->state = HANDLE_CONNECTING;
			if (!h->blocking) {
				/* Non-blocking: the connection proceeds; later states show its end.
				 */
				record_peer(c, h);
				h->connect_pending = false;
				op_reply_state(c, h);
				handle_run_queue(h, CALL_RX);
				return CALL_DONE;
			}
			if (h->family == AF_UNIX || !fast_path_on(FAST_CONNECT_AT_ONCE))
				return connect_over_now(h->fd) ? connect_step(c, ev) : CALL_WAIT_IO;
			/* A second connect(2) answers in one system call (0 made, EALREADY under
			 * way, or the refusal), and when made marks the socket connected in the
			 * kernel, which a handback needs (ops_handback.c). */
			r = connect(h->fd, sa, len) == 0 || errno == EISCONN ? 0 : -errno;
			if (r == 0) {
				h->connect_settled = true;
				return connect_finish(c, h, true);
			}
			if (r == -EALREADY || r == -EINPROGRESS)
				return CALL_WAIT_IO;
			t->chosen = false;
		}
		t->last_errno = -r; /* try the next address the name gave */
		handle_reset_connection(h);
	}
}

OP(connect, ConnectRequest, ConnectReply)
{
	struct call *c = closure_data;
	struct handle *h = op_lookup_handle(c, in->handle, HOP_CONNECT);
	const char *host;

	if (h == NULL)
		return;
	host = op_target_host(c, h, in->host, in->port);
	if (host == NULL)
		return;
	c->step = connect_step;
	c->timeout_ms = in->timeout_ms < 0    ? DEFAULT_CONNECT_TIMEOUT_MS
	                : in->timeout_ms == 0 ? -1
	                                      : in->timeout_ms;
	if (op_set_target(c, h, host, in->port) != 0)
		return;
	h->connect_pending = true;
	handle_queue_call(h, c, CALL_TX);
}

static enum call_progress
accept_step(struct call *c, enum call_event ev)
{
	struct handle *h = c->handle, *accepted;
	struct session *s = c->session;
	Sockrpc__AcceptReply reply = SOCKRPC__ACCEPT_REPLY__INIT;
	Sockrpc__SocketState state, accepted_state;
	struct sockaddr_storage peer;
	socklen_t len;
	bool handback = false;
	int fd, allowed_by_line = -1;

	if (ev == CALL_TIMEOUT) {
		call_fail(c, h, SOCKRPC__CODE__ETIMEDOUT, ETIMEDOUT, "accept timed out after %d ms",
		          c->timeout_ms);
		return CALL_DONE;
	}
	for (;;) {
		struct policy_request rq = {.op = POLICY_ACCEPT};
		struct policy_decision decision;

		len = sizeof(peer);
		fd = accept4(h->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return CALL_WAIT_IO;
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			call_fail_errno(c, h, errno, "accept failed");
			return CALL_DONE;
		}
		rq.addr = (struct sockaddr *)&peer;
		rq.addr_len = len;
		if (!op_policy_allows(c, h, &rq, &decision)) {
			close(fd); /* a peer the policy refuses is hung up on; keep waiting */
			continue;
		}
		if (op_connection_allowed(c, h, &decision)) {
			handback = decision.handback;
			allowed_by_line = decision.rule_line;
			break;
		}
		close(fd);
		return CALL_DONE;
	}
	accepted = handle_new(s, fd, h->family, h->type, h->protocol);
	if (accepted == NULL) {
		call_fail(c, h, SOCKRPC__CODE__EOS, ENOMEM, "accept failed: out of memory");
		return CALL_DONE;
	}
	accepted->linger_s = h->linger_s; /* inherited, as Linux's accepted sockets do */
	if (session_add_handle(s, accepted) != 0) {
		handle_close(accepted, "over the session's socket limit");
		handle_free(accepted);
		call_fail(c, h, SOCKRPC__CODE__ELIMIT, 0,
		          "accept failed: too many sockets in this session (limit %u)",
		          s->d->opt.limits.max_handles);
		return CALL_DONE;
	}
	address_format((struct sockaddr *)&peer, len, accepted->host, sizeof(accepted->host),
	               &accepted->port);
	if (accepted->port < 0)
		accepted->port = 0;
	accepted->client_owned = h->client_owned; /* the kernel copies the listener's owner */
	accepted->state = HANDLE_CONNECTED;
	accepted->handback = handback;
	accepted->allowed_by_line = allowed_by_line;
	reply.status = (Sockrpc__Status *)&status_ok;
	reply.state = handle_state_message(h, &state);
	reply.accepted = handle_state_message(accepted, &accepted_state);
	call_reply(c, &reply.base);
	return CALL_DONE;
}

OP(accept, AcceptRequest, AcceptReply)
{
	struct call *c = closure_data;
	struct handle *h = op_lookup_handle(c, in->handle, HOP_ACCEPT);

	if (h == NULL)
		return;
	c->step = accept_step;
	c->timeout_ms = h->receive_timeout_ms > 0 ? h->receive_timeout_ms : -1;
	handle_queue_call(h, c, CALL_RX);
}
