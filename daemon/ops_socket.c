/*
 * ops_socket.c - a socket's life outside of data transfer: create, bind, listen,
 * shutdown, close, and info (the local address).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "enums.h"
#include "ops.h"

/* Translates a wire enum, answering the call when it cannot. */
static int
wire_to_host(struct call *c, int (*to_host)(int, int *), const char *(*name)(int), int wire,
             const char *what, int *out)
{
	if (to_host(wire, out) == 0)
		return 0;
	if (name && strcmp(name(wire), "?") != 0)
		call_fail(c, NULL, SOCKRPC__CODE__EUNSUPPORTED, 0, "%s is not available on this OS",
		          name(wire));
	else
		call_fail(c, NULL, SOCKRPC__CODE__EINVAL, 0, "unknown %s %d", what, wire);
	return -1;
}

/* Creates the socket of a Socket call, with the id h_id (0: the daemon's next). Returns
 * the handle, or NULL after answering the call. */
static struct handle *
socket_create(struct call *c, const Sockrpc__SocketRequest *in, int64_t h_id)
{
	struct session *s = c->session;
	struct policy_request rq = {.op = POLICY_CREATE};
	struct policy_decision decision;
	struct handle *h;
	int family, type, protocol, fd, r;
	unsigned limit, held;
	bool owned;

	if (wire_to_host(c, enum_family_to_host, enum_family_name, in->family, "family", &family) ||
	    wire_to_host(c, enum_type_to_host, enum_type_name, in->type, "type", &type) ||
	    wire_to_host(c, enum_protocol_to_host, NULL, in->protocol, "protocol", &protocol))
		return NULL;
	if (type == 0)
		type = SOCK_STREAM;
	rq.family = family;
	rq.type = type;
	if (!op_policy_allows(c, NULL, &rq, &decision)) {
		call_fail(c, NULL, SOCKRPC__CODE__EDENIED, 0,
		          "creating a %s %s socket denied by policy (%s): %s",
		          enum_family_name(in->family), enum_type_name(in->type ? in->type : 1),
		          decision.rule, decision.reason);
		return NULL;
	}
	limit = s->d->opt.limits.max_handles;
	if (decision.max_handles >= 0 && (unsigned)decision.max_handles < limit)
		limit = (unsigned)decision.max_handles;
	/* A socket handed back but not yet taken by the client is still the daemon's. */
	held = session_sockets_held(s, limit);
	if (decision.max_handles >= 0 && held >= (unsigned)decision.max_handles) {
		call_fail(c, NULL, SOCKRPC__CODE__ELIMIT, 0,
		          "too many sockets in this session (max-handles %d of rule %s)",
		          decision.max_handles, decision.rule);
		return NULL;
	}
	if (held >= s->d->opt.limits.max_handles) {
		call_fail(c, NULL, SOCKRPC__CODE__ELIMIT, 0,
		          "too many sockets in this session (limit %u)",
		          s->d->opt.limits.max_handles);
		return NULL;
	}
	/* Owned by the client, so that the kernel's owner checks (SO_REUSEPORT) apply to it;
	 * made ahead no further than the session's room under its limits. */
	fd = socket_reserve_take(s, family, type, protocol, limit - held - 1, &protocol, &owned);
	if (fd < 0) {
		call_fail_errno(c, NULL, -fd, "cannot create socket");
		return NULL;
	}
	h = handle_new(s, fd, family, type, protocol);
	if (h == NULL) {
		call_fail(c, NULL, SOCKRPC__CODE__EOS, ENOMEM,
		          "cannot create socket: out of memory");
		return NULL;
	}
	h->client_owned = owned;
	h->id = h_id;
	r = session_add_handle(s, h);
	if (r != 0) {
		handle_close(h, "could not be registered");
		handle_free(h);
		call_fail(c, NULL, SOCKRPC__CODE__ELIMIT, -r, "cannot register socket: %s",
		          strerror(-r));
		return NULL;
	}
	return h;
}

OP(socket, SocketRequest, SocketReply)
{
	struct call *c = closure_data;
	struct handle *h;
	char why[160];

	if (in->handle != 0 && handle_id_claim(c->session, in->handle, why, sizeof(why)) != 0) {
		call_fail(c, NULL, SOCKRPC__CODE__EINVAL, 0, "%s", why);
		return;
	}
	h = socket_create(c, in, in->handle);
	if (h == NULL) {
		/* Calls pipelined behind it then say why there is no such socket. */
		if (in->handle != 0)
			handle_id_failed(c->session, in->handle, c->failed_code);
		return;
	}
	op_reply_state(c, h);
}

/*
 * Binds an AF_UNIX socket to a path as the client, keeping what to remove on close.
 * Returns true, or false after answering the call.
 */
static bool
bind_unix(struct call *c, struct handle *h, const struct sockaddr_un *sun, const char *what)
{
	struct unix_file *f;
	int r;

	if (op_unix_refused(c, h, what))
		return false;
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		call_fail(c, h, SOCKRPC__CODE__EOS, ENOMEM, "%s failed: out of memory", what);
		return false;
	}
	r = priv_unix_bind(c->session, h->fd, sun->sun_path, f);
	if (r == -EXDEV) {
		/* Bound, but elsewhere than the path named: the socket may not be used. */
		free(f);
		shutdown(h->fd, SHUT_RDWR);
		h->shut_rd = h->shut_wr = true;
		h->shutdown_reason = SHUT_RDWR;
		h->state = HANDLE_SHUTDOWN;
		call_fail(c, h, SOCKRPC__CODE__EDENIED, 0,
		          "%s refused: a directory of the path changed while binding; the socket "
		          "is shut down",
		          what);
		return false;
	}
	if (r != 0) {
		free(f);
		op_fail_unix(c, h, r, what);
		return false;
	}
	h->unix_file = f;
	return true;
}

/* Binds to the first address (of a name's) the policy allows; runs once resolved. */
static enum call_progress
bind_step(struct call *c, enum call_event ev)
{
	const Sockrpc__BindRequest *in = (const Sockrpc__BindRequest *)c->request;
	struct handle *h = c->handle;
	const char *host = c->target->name;
	const struct sockaddr *sa;
	struct sockaddr_storage ss;
	socklen_t len;
	char what[300];
	int port = in->port, r;

	if (c->target->resolving)
		return CALL_WAIT_OTHER;
	snprintf(what, sizeof(what), h->family == AF_UNIX ? "bind to %.200s" : "bind to %.200s:%d",
	         host, port);
	sa = op_next_target(c, h, POLICY_BIND, &len);
	if (sa == NULL) {
		op_fail_no_target(c, h, what);
		return CALL_DONE;
	}
	if (h->family == AF_UNIX) {
		if (!bind_unix(c, h, (const struct sockaddr_un *)sa, what))
			return CALL_DONE;
		host = ((const struct sockaddr_un *)sa)->sun_path; /* the normalised path */
	} else if ((r = priv_bind(c->session, h->fd, sa, len)) != 0) {
		/* Below 1024 the parent binds (priv.c), the policy checked again there. */
		call_fail_errno(c, h, -r, "%s failed", what);
		return CALL_DONE;
	}
	/* Port 0 asks for an ephemeral port: record the one the kernel chose. */
	len = sizeof(ss);
	if (h->family != AF_UNIX && getsockname(h->fd, (struct sockaddr *)&ss, &len) == 0) {
		char ignored[64];

		address_format((struct sockaddr *)&ss, len, ignored, sizeof(ignored), &port);
	}
	if (strcmp(host, "*") == 0)
		strcpy(h->host, h->family == AF_INET6 ? "::" : "0.0.0.0");
	else if (host != h->host)
		snprintf(h->host, sizeof(h->host), "%s", host);
	h->port = h->family == AF_UNIX ? 0 : port;
	h->state = HANDLE_BOUND;
	op_reply_state(c, h);
	return CALL_DONE;
}

OP(bind, BindRequest, BindReply)
{
	struct call *c = closure_data;
	struct handle *h = op_lookup_handle(c, in->handle, HOP_BIND);
	const char *host;

	if (h == NULL)
		return;
	host = op_target_host(c, h, in->host, in->port);
	if (host == NULL)
		return;
	c->step = bind_step;
	if (op_set_target(c, h, host, in->port) != 0)
		return;
	handle_queue_call(h, c, CALL_TX);
}

OP(listen, ListenRequest, ListenReply)
{
	struct call *c = closure_data;
	struct handle *h = op_lookup_handle(c, in->handle, HOP_LISTEN);
	struct policy_request rq = {.op = POLICY_LISTEN};
	struct policy_decision decision;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int backlog, r;

	if (h == NULL)
		return;
	backlog = in->queue_length < 0 ? SOMAXCONN : in->queue_length;
	if (backlog > SOMAXCONN) {
		call_fail(c, h, SOCKRPC__CODE__EINVAL, 0, "maximum queue length exceeded (%d > %d)",
		          backlog, SOMAXCONN);
		return;
	}
	if (getsockname(h->fd, (struct sockaddr *)&ss, &len) == 0) {
		rq.addr = (struct sockaddr *)&ss;
		rq.addr_len = len;
	}
	if (!op_policy_allows(c, h, &rq, &decision)) {
		call_fail(c, h, SOCKRPC__CODE__EDENIED, 0,
		          "listen on %s:%d denied by policy (%s): %s", h->host, h->port,
		          decision.rule, decision.reason);
		return;
	}
	/* An AF_UNIX listener records the credentials its peers see: the client's. */
	if (h->family == AF_UNIX)
		r = priv_unix_listen(c->session, h->fd, backlog);
	else
		r = listen(h->fd, backlog) == 0 ? 0 : -errno;
	if (r != 0) {
		call_fail_errno(c, h, -r, "listen failed");
		return;
	}
	h->state = HANDLE_LISTENING;
	op_reply_state(c, h);
}

OP(close, CloseRequest, CloseReply)
{
	struct call *c = closure_data;
	struct session *s = c->session;
	struct handle *h = session_find_handle(s, in->handle);

	if (h == NULL && handle_id_used(s, in->handle) && handle_id_failure(s, in->handle) == 0) {
		/* Closing twice is allowed, as in Blade: the answer is the closed state. */
		Sockrpc__CloseReply reply = SOCKRPC__CLOSE_REPLY__INIT;
		Sockrpc__SocketState state = SOCKRPC__SOCKET_STATE__INIT;

		state.id = in->handle;
		state.is_closed = true;
		state.shutdown_reason = -1;
		state.send_timeout = state.receive_timeout = -1;
		reply.status = (Sockrpc__Status *)&status_ok;
		reply.state = &state;
		call_reply(c, &reply.base);
		return;
	}
	if (h == NULL) {
		op_lookup_handle(c, in->handle, HOP_QUERY); /* answers "no such socket" */
		return;
	}
	handle_close(h, "closed by client");
	if (linger_wait_for_close(h, c))
		return; /* answered once the socket has lingered, as a blocking close returns */
	op_reply_state(c, h);
	handle_free(h);
}

OP(shutdown, ShutdownRequest, ShutdownReply)
{
	struct call *c = closure_data;
	struct handle *h = op_lookup_handle(c, in->handle, HOP_SHUTDOWN);
	int how, err;

	if (h == NULL)
		return;
	if (enum_shutdown_to_host(in->how, &how) != 0) {
		call_fail(c, h, SOCKRPC__CODE__EINVAL, 0, "expected one of SHUT_* flags, got %d",
		          in->how);
		return;
	}
	if (h->state == HANDLE_SHUTDOWN && h->shutdown_reason == how) {
		op_reply_state(c, h); /* the same how twice in a row is a no-op */
		return;
	}
	err = shutdown(h->fd, how) == 0 ? 0 : errno;
	/* Linux shuts an unconnected socket down all the same, and says ENOTCONN (the socket
	 * then polls readable for ever): record what the kernel did, then report the error. */
	if (err != 0 && err != ENOTCONN) {
		call_fail_errno(c, h, err, "shutdown failed");
		return;
	}
	h->shut_rd |= how == SHUT_RD || how == SHUT_RDWR;
	h->shut_wr |= how == SHUT_WR || how == SHUT_RDWR;
	h->shutdown_reason = how;
	h->state = HANDLE_SHUTDOWN;
	if (err != 0)
		call_fail_errno(c, h, err, "shutdown failed");
	else
		op_reply_state(c, h);
	/* Waiting calls now see end of stream (reads) or a broken pipe (writes). */
	handle_run_queue(h, CALL_RX);
	handle_run_queue(h, CALL_TX);
}

OP(info, InfoRequest, InfoReply)
{
	struct call *c = closure_data;
	struct handle *h = op_lookup_handle(c, in->handle, HOP_QUERY);
	Sockrpc__InfoReply reply = SOCKRPC__INFO_REPLY__INIT;
	Sockrpc__SocketState state;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char address[INET6_ADDRSTRLEN + sizeof(((struct sockaddr_un *)0)->sun_path)];
	int port, wire;

	if (h == NULL)
		return;
	if (getsockname(h->fd, (struct sockaddr *)&ss, &len) != 0) {
		call_fail_errno(c, h, errno, "info failed");
		return;
	}
	address_format((struct sockaddr *)&ss, len, address, sizeof(address), &port);
	reply.status = (Sockrpc__Status *)&status_ok;
	reply.state = handle_state_message(h, &state);
	reply.address = address;
	reply.ipv6 = ss.ss_family == AF_INET6;
	reply.port = port;
	reply.family = enum_family_from_host(ss.ss_family, &wire) == 0 ? wire : 0;
	call_reply(c, &reply.base);
}
