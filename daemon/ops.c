/*
 * ops.c - the service table and what every rpc handler shares: finding the call's
 * handle in the session, asking the policy (and auditing the answer), and choosing a
 * target address among those a name resolves to.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include <event2/util.h>

#include "ops.h"

void
ops_install(struct sockrpcd *d)
{
	Sockrpc__SockRpc_Service service = SOCKRPC__SOCK_RPC__INIT(op_);

	d->service = service;
}

/* A status code's name ("EDENIED"). */
static const char *
code_name(int code)
{
	const ProtobufCEnumValue *v =
	    protobuf_c_enum_descriptor_get_value(&sockrpc__code__descriptor, code);

	return v != NULL ? v->name : "?";
}

/*
 * Finds the handle `id` of the call's session and checks that its state permits `op`.
 * Returns it, or NULL after answering the call.
 */
struct handle *
op_lookup_handle(struct call *c, int64_t id, enum handle_op op)
{
	struct session *s = c->session;
	struct handle *h = session_find_handle(s, id);
	const char *why;
	int code;

	if (h == NULL) {
		int failed = handle_id_failure(s, id);

		/* Ids are session-local and never reused: a used id is ours, closed, unless
		 * the Socket call that named it failed (a call pipelined behind it). */
		if (failed != 0)
			call_fail(c, NULL, SOCKRPC__CODE__EBADHANDLE, 0,
			          "socket %lld was never created: its Socket call failed (%s)",
			          (long long)id, code_name(failed));
		else if (handle_id_used(s, id))
			call_fail(c, NULL, SOCKRPC__CODE__ECLOSED, 0, "socket %lld is closed",
			          (long long)id);
		else
			call_fail(c, NULL, SOCKRPC__CODE__EBADHANDLE, 0,
			          "no socket %lld in this session", (long long)id);
		return NULL;
	}
	handle_refresh(h);
	code = handle_permits(h, op, &why);
	if (code != 0) {
		call_fail(c, h, code, 0, "%s", why);
		return NULL;
	}
	return h;
}

/* Asks the policy, audits the decision. Fills rq->who. */
bool
op_policy_allows(struct call *c, struct handle *h, struct policy_request *rq,
                 struct policy_decision *out)
{
	struct session *s = c->session;

	rq->who = &s->peer;
	if (h != NULL) {
		rq->family = h->family;
		rq->type = h->type;
	}
	policy_decide(s->d->policy, rq, out);
	audit_decision(s->d->audit, s->id, rq, out);
	return out->allow;
}

/* Connections (connected, connecting or accepted sockets) the session holds. */
static unsigned
session_connections(const struct session *s)
{
	unsigned n = 0;

	for (unsigned i = 0; i < s->n_handles; i++)
		n += s->handles[i]->state == HANDLE_CONNECTED ||
		     s->handles[i]->state == HANDLE_CONNECTING;
	return n;
}

/* The allowing rule's max-connections, checked before a new connection is made. Returns
 * true if the session may make one more; otherwise answers the call. */
bool
op_connection_allowed(struct call *c, struct handle *h, const struct policy_decision *d)
{
	if (d->max_connections < 0 ||
	    session_connections(c->session) < (unsigned)d->max_connections)
		return true;
	call_fail(c, h, SOCKRPC__CODE__ELIMIT, 0,
	          "too many connections in this session (max-connections %d of rule %s)",
	          d->max_connections, d->rule);
	return false;
}

/* A reply of type T (status and state only), built as that type. */
#define STATE_REPLY(T, Type)                                                                       \
	if (desc == &sockrpc__##T##__descriptor) {                                                 \
		Sockrpc__##Type reply;                                                             \
                                                                                                   \
		sockrpc__##T##__init(&reply);                                                      \
		reply.status = (Sockrpc__Status *)&status_ok;                                      \
		reply.state = state;                                                               \
		call_reply(c, &reply.base);                                                        \
		return;                                                                            \
	}

/* Answers OK with the handle's state, for every call whose reply carries only that. */
void
op_reply_state(struct call *c, struct handle *h)
{
	const ProtobufCMessageDescriptor *desc =
	    sockrpc__sock_rpc__descriptor.methods[c->method].output;
	Sockrpc__SocketState state_msg, *state = handle_state_message(h, &state_msg);

	STATE_REPLY(socket_reply, SocketReply)
	STATE_REPLY(connect_reply, ConnectReply)
	STATE_REPLY(bind_reply, BindReply)
	STATE_REPLY(listen_reply, ListenReply)
	STATE_REPLY(close_reply, CloseReply)
	STATE_REPLY(shutdown_reply, ShutdownReply)
	STATE_REPLY(set_option_reply, SetOptionReply)
	STATE_REPLY(set_blocking_reply, SetBlockingReply)
	call_fail(c, h, SOCKRPC__CODE__EDAEMON, 0, "%s has no state-only reply", desc->name);
}

/*
 * The host a connect, bind or send_to aims at (the socket's own when none is given),
 * once it and the port are checked. Returns NULL after answering the call.
 */
const char *
op_target_host(struct call *c, struct handle *h, const char *host, int port)
{
	if (host[0] == '\0')
		host = h->host;
	if (h->family != AF_UNIX && (port < 0 || port > 65535)) {
		call_fail(c, h, SOCKRPC__CODE__EINVAL, 0,
		          port < 0 ? "port not specified" : "port %d out of range (0-65535)", port);
		return NULL;
	}
	if (strlen(host) >= sizeof(h->host)) {
		call_fail(c, h, SOCKRPC__CODE__EINVAL, 0, "host name longer than %zu bytes",
		          sizeof(h->host) - 1);
		return NULL;
	}
	return host;
}

static void
on_target_resolved(int eai, struct evutil_addrinfo *res, void *arg)
{
	struct call *c = arg;
	struct call_target *t = c->target;

	t->resolving = NULL;
	t->candidates = t->next_candidate = res;
	t->resolve_error = eai;
	if (c->queued)
		handle_run_queue(c->handle, c->dir);
}

int
op_set_target(struct call *c, struct handle *h, const char *host, int port)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct call_target *t = call_target_new(c);
	int r;

	if (t == NULL) {
		call_fail(c, h, SOCKRPC__CODE__EOS, ENOMEM, "out of memory");
		return -1;
	}
	t->name = host;
	if (h->family == AF_UNIX) {
		/* The policy matches, and the daemon reaches, the normalised path only. */
		const char *why = unix_path_normalise(host, path, sizeof(path));

		if (why != NULL) {
			call_fail(c, h, SOCKRPC__CODE__EINVAL, 0,
			          "address not valid or unsupported: %.200s: %s", host, why);
			return -1;
		}
		r = address_parse(path, port, h->family, &t->addr, &t->addr_len);
	} else {
		r = address_parse(host, port, h->family, &t->addr, &t->addr_len);
	}
	if (r == 0)
		return 0;
	if (r == -EAFNOSUPPORT) {
		call_fail(c, h, SOCKRPC__CODE__EINVAL, 0,
		          "address not valid or unsupported: %.200s is not an IPv4 address", host);
		return -1;
	}
	if (r != -EAGAIN) {
		call_fail(c, h, SOCKRPC__CODE__EINVAL, 0,
		          "address not valid or unsupported: %.200s", host);
		return -1;
	}
	t->addr_len = 0;
	{
		char service[8];

		snprintf(service, sizeof(service), "%d", port);
		t->resolving = resolve_start(c->session, host, service, h->family, h->type,
		                             EVUTIL_AI_NUMERICSERV, on_target_resolved, c);
	}
	if (t->resolving == NULL && errno == EAGAIN) {
		call_fail(c, h, SOCKRPC__CODE__ELIMIT, EAGAIN,
		          "cannot resolve %.200s: too many name lookups waiting for this uid "
		          "(limit %d)",
		          host, DNS_MAX_WAITING_PER_UID);
		return -1;
	}
	if (t->resolving == NULL) {
		call_fail(c, h, SOCKRPC__CODE__EOS, ENOMEM, "cannot resolve %s: out of memory",
		          host);
		return -1;
	}
	return 0;
}

const struct sockaddr *
op_next_target(struct call *c, struct handle *h, enum policy_op op, socklen_t *len)
{
	struct call_target *t = c->target;

	for (;;) {
		struct sockaddr *sa = NULL;
		struct policy_request rq = {.op = op};
		struct policy_decision d;

		if (t->addr_len > 0) {
			if (t->addr_used)
				return NULL;
			t->addr_used = true;
			sa = (struct sockaddr *)&t->addr;
			*len = t->addr_len;
		} else {
			while (t->next_candidate && t->next_candidate->ai_family != h->family)
				t->next_candidate = t->next_candidate->ai_next;
			if (t->next_candidate == NULL)
				return NULL;
			sa = t->next_candidate->ai_addr;
			*len = (socklen_t)t->next_candidate->ai_addrlen;
			t->next_candidate = t->next_candidate->ai_next;
		}
		/*
		 * A destination becomes what the kernel would make of it (0.0.0.0 and :: reach
		 * the local host) before it is checked, and is used as checked. Rewriting
		 * rather than refusing keeps `connect 0.0.0.0:8000` working as it does without
		 * the broker, while `deny @loopback` still stops it; and pinning 127.0.0.1
		 * rather than leaving 0.0.0.0 to the kernel (which would pick the socket's
		 * bound address) means the address the policy saw is the one reached.
		 */
		if (op == POLICY_CONNECT || op == POLICY_SEND)
			policy_canonical_destination(sa, *len);
		rq.addr = sa;
		rq.addr_len = *len;
		rq.name = t->name;
		if (op_policy_allows(c, h, &rq, &d)) {
			t->allowed_by = d;
			return sa;
		}
		if (!t->denied_seen) {
			t->denied_seen = true;
			t->denial = d;
		}
	}
}

void
op_fail_no_target(struct call *c, struct handle *h, const char *what)
{
	const struct call_target *t = c->target;

	if (t->resolve_error == RESOLVE_TIMED_OUT)
		call_fail(c, h, SOCKRPC__CODE__ETIMEDOUT, ETIMEDOUT,
		          "%s failed: cannot resolve host: %s", what,
		          resolve_strerror(t->resolve_error));
	else if (t->resolve_error != 0)
		call_fail(c, h, SOCKRPC__CODE__EOS, 0, "%s failed: cannot resolve host: %s", what,
		          resolve_strerror(t->resolve_error));
	else if (t->last_errno != 0)
		call_fail_errno(c, h, t->last_errno, "%s failed", what);
	else if (t->denied_seen)
		call_fail(c, h, SOCKRPC__CODE__EDENIED, 0, "%s denied by policy (%s): %s", what,
		          t->denial.rule, t->denial.reason);
	else
		call_fail(c, h, SOCKRPC__CODE__EOS, 0,
		          "%s failed: no address of the socket's family", what);
}

/*
 * For an AF_UNIX path: answers the call and returns true when the daemon cannot reach
 * paths as this client (it runs without root, so it would lend its own identity).
 */
bool
op_unix_refused(struct call *c, struct handle *h, const char *what)
{
	if (h->family != AF_UNIX || priv_unix_available(c->session->d))
		return false;
	call_fail(c, h, SOCKRPC__CODE__EDENIED, 0,
	          "%s refused: the daemon runs without root, so it cannot act as uid %u for "
	          "AF_UNIX; see docs/deployment.md",
	          what, (unsigned)c->session->peer.uid);
	return true;
}

/* Answers a failed as_client_unix_* call (r < 0) for `what`. */
void
op_fail_unix(struct call *c, struct handle *h, int r, const char *what)
{
	if (r == AS_CLIENT_OWN_SOCKET)
		call_fail(c, h, SOCKRPC__CODE__EDENIED, 0,
		          "%s refused: that is sockrpcd's own socket", what);
	else if (r == -ELOOP)
		call_fail_errno(c, h, ELOOP,
		                "%s failed: path contains a symbolic link; name the real path",
		                what);
	else
		call_fail_errno(c, h, -r, "%s failed", what);
}
