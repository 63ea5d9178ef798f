/*
 * ops_handback.c - handing a socket itself back to the client (docs/policy.md "Handback"):
 * only a connected TCP stream (connected, connecting or accepted) or a connected UDP socket,
 * only where the rule that allowed its connection says `handback` (a UDP one only where the
 * rule names udp: match.c), and only over a transport that can pass descriptors. The
 * descriptor leaves with the reply (session_fd.c); the handle ends and the daemon keeps no
 * copy, so the client's close sends the FIN.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ops.h"

#ifndef SO_COOKIE
#define SO_COOKIE 57 /* Linux 4.12; older headers lack the name */
#endif

static uint64_t
socket_cookie(int fd)
{
	uint64_t cookie = 0;
	socklen_t len = sizeof(cookie);

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0)
		return 0;
	return cookie;
}

/* Why h's kind of socket is never handed back, or NULL: only TCP and UDP over IP. */
static const char *
kind_refusal(const struct handle *h)
{
	if (h->family == AF_UNIX)
		return "an AF_UNIX socket is never handed back (its peer's identity is the "
		       "daemon's "
		       "to vouch for)";
	if (h->family != AF_INET && h->family != AF_INET6)
		return "only IPv4 and IPv6 sockets are handed back";
	if (h->type == SOCK_STREAM && (h->protocol == 0 || h->protocol == IPPROTO_TCP))
		return NULL;
	if (h->type == SOCK_DGRAM && (h->protocol == 0 || h->protocol == IPPROTO_UDP))
		return NULL;
	if (h->type == SOCK_RAW)
		return "a raw socket is never handed back";
	return "only TCP and UDP sockets are handed back";
}

/*
 * Linux marks a socket connected (sock->state) only inside connect(2): one whose
 * non-blocking connect the daemon saw complete by poll still reads "connecting" there, so
 * the client's next connect(2), to any address, would return 0 (it completes the old
 * connection, it does not make a new one). Connecting it again to its own peer settles
 * it, and a later connect fails with EISCONN, as on a socket connected directly.
 */
static void
settle_connected(int fd)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);

	if (getpeername(fd, (struct sockaddr *)&peer, &len) == 0)
		(void)connect(fd, (struct sockaddr *)&peer, len);
}

/* Refuses c with code and message, and writes the refusal to the audit log. */
static void
refuse(struct call *c, struct handle *h, int code, const char *why)
{
	struct session *s = c->session;

	audit_handback(s->d->audit, s->id, &s->peer, h->id, h->host, h->port, 0, false, why);
	call_fail(c, h, code, 0, "handback refused: %s", why);
}

OP(handback, HandbackRequest, HandbackReply)
{
	struct call *c = closure_data;
	struct session *s = c->session;
	struct handle *h = op_lookup_handle(c, in->handle, HOP_HANDBACK);
	Sockrpc__HandbackReply reply = SOCKRPC__HANDBACK_REPLY__INIT;
	Sockrpc__SocketState state;
	char why[400];
	const char *kind;
	int fd;

	if (h == NULL)
		return;
	if (s->t->ops->pass_fd == NULL) {
		snprintf(why, sizeof(why),
		         "this session's transport (%s) cannot pass descriptors; handback needs "
		         "the daemon's Unix socket",
		         s->t->ops->name);
		refuse(c, h, SOCKRPC__CODE__EUNSUPPORTED, why);
		return;
	}
	if ((kind = kind_refusal(h)) != NULL) {
		refuse(c, h, SOCKRPC__CODE__EDENIED, kind);
		return;
	}
	if (!h->handback) {
		if (h->allowed_by_line > 0)
			snprintf(
			    why, sizeof(why),
			    "rule %.300s:%d, which allowed this connection, does not say handback",
			    policy_source(s->d->policy), h->allowed_by_line);
		else
			snprintf(why, sizeof(why), "no rule says handback for this connection");
		refuse(c, h, SOCKRPC__CODE__EDENIED, why);
		return;
	}
	if (h->state == HANDLE_CONNECTED && h->type == SOCK_STREAM && !h->connect_settled)
		settle_connected(h->fd);
	reply.cookie = socket_cookie(h->fd);
	reply.connecting = h->state == HANDLE_CONNECTING;
	audit_handback(s->d->audit, s->id, &s->peer, h->id, h->host, h->port, reply.cookie, true,
	               reply.connecting ? "handed back, connecting" : "handed back");
	fd = h->fd;
	h->fd = -1;       /* the descriptor is the reply's now */
	h->linger_s = -1; /* SO_LINGER stays set on the socket, for the client's close */
	handle_close(h, "handed back");
	reply.status = (Sockrpc__Status *)&status_ok;
	reply.state = handle_state_message(h, &state);
	call_reply_with_fd(c, &reply.base, fd);
	handle_free(h);
}
