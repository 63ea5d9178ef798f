/*
 * socket_pipeline.c - calls that cost no round trip of their own: a socket created and
 * connected in one round trip (sr_socket_connect), or created and sent its first datagram
 * (sr_socket_send_to), its handle id chosen here (protocol 1.2) so that the next call can
 * follow Socket before Socket's reply; and a close that nobody waits for. Outcomes not
 * waited for are kept on the socket for a later call, which reports a failure. Off with
 * SOCKRPC_DISABLE=pipelined (fastpath.c), and against a daemon older than 1.2: every
 * call then waits for its reply, as in socket.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "enums.h"
#include "internal.h"

/*
 * Closes a client may have unanswered without waiting: each holds a little of the
 * daemon's queue for the session (its frame and 2 KiB, docs/protocol.md "Backpressure")
 * until the client reads the reply, and a client that closes thousands of sockets in a
 * row without another call must not fill it. Past this, a close waits, which reads the
 * replies that came before its own.
 */
#define CL_MAX_UNWAITED 64

/* The index of rpc `name` in the service: the frame header's method. */
unsigned
cl_method_index(const char *name)
{
	const ProtobufCServiceDescriptor *d = &sockrpc__sock_rpc__descriptor;

	return (unsigned)(protobuf_c_service_descriptor_get_method_by_name(d, name) - d->methods);
}

/* A new sr_socket whose id is chosen here (into req->handle), attached to c, with the
 * state the daemon will report until its reply says so. */
sr_socket *
cl_socket_named(sr_client *c, int family, int type, int protocol, Sockrpc__SocketRequest *req,
                sr_error *err)
{
	sr_socket *s = cl_socket_alloc(err);

	if (s == NULL)
		return NULL;
	pthread_mutex_lock(&c->mu);
	req->handle = c->next_handle_id++;
	pthread_mutex_unlock(&c->mu);
	s->handle = (long)req->handle;
	s->state.id = s->handle;
	s->state.family = family;
	s->state.type = type != 0 ? type : SOCK_STREAM;
	s->state.protocol = protocol;
	s->state.is_blocking = true;
	s->state.shutdown_reason = -1;
	s->state.send_timeout = s->state.receive_timeout = -1;
	cl_socket_attach(c, s);
	return s;
}

static sr_socket *create_then_connect(sr_client *c, int family, int type, int protocol,
                                      const char *host, int port, int timeout_ms, sr_error *err);

/*
 * A new socket (free with sr_socket_free()), connected to host:port: sr_socket_new() and
 * sr_connect() in one round trip. NULL if either fails, with that call's error (the
 * creation's first).
 */
sr_socket *
sr_socket_connect(sr_client *c, int family, int type, int protocol, const char *host, int port,
                  int timeout_ms, sr_error *err)
{
	Sockrpc__SocketRequest sreq = SOCKRPC__SOCKET_REQUEST__INIT;
	Sockrpc__ConnectRequest creq = SOCKRPC__CONNECT_REQUEST__INIT;
	const unsigned methods[2] = {cl_method_index("Socket"), cl_method_index("Connect")};
	const ProtobufCMessage *inputs[2] = {&sreq.base, &creq.base};
	struct pending *started[2];
	struct call_ctx sctx, cctx;
	sr_error serr, cerr;
	int64_t deadline;
	sr_socket *s;

	if (c == NULL) {
		cl_seterr(err, SR_EINVAL, 0, "no client");
		return NULL;
	}
	if (!c->client_ids || !cl_fastpath_on(CL_FAST_PIPELINED))
		return create_then_connect(c, family, type, protocol, host, port, timeout_ms, err);
	if (cl_socket_request(family, type, protocol, &sreq, err) == -1)
		return NULL;
	if ((s = cl_socket_named(c, family, type, protocol, &sreq, err)) == NULL)
		return NULL;

	creq.handle = sreq.handle;
	creq.host = (char *)(host != NULL ? host : "");
	creq.port = port;
	creq.timeout_ms = timeout_ms;
	if (timeout_ms == 0)
		deadline = CL_NO_DEADLINE;
	else
		deadline = cl_deadline_after(
		    (int64_t)(timeout_ms < 0 ? CL_CONNECT_DEFAULT_MS : timeout_ms) +
		    CL_WAIT_MARGIN_MS);
	/* Both in one write: the daemon reads them together and, on the loopback, answers
	 * both in one. */
	if (cl_calls_start_together(c, 2, methods, inputs, cl_deadline_after(CL_FIXED_DEADLINE_MS),
	                            started, err) == -1) {
		pthread_mutex_lock(&c->mu);
		s->state.is_closed = true; /* nothing was sent: no handle to close */
		pthread_mutex_unlock(&c->mu);
		sr_socket_free(s);
		return NULL;
	}
	/* Connect's reply comes after Socket's: once it is in, so is the creation's. */
	cl_call_init(&cctx, c, s, deadline, &cerr);
	cl_call_finish(c, started[1], &cctx);
	cl_call_init(&sctx, c, s, cl_deadline_after(CL_FIXED_DEADLINE_MS), &serr);
	cl_call_finish(c, started[0], &sctx);
	if (sctx.failed) {
		cl_copyerr(err, &serr);
		pthread_mutex_lock(&c->mu);
		s->state.is_closed = true; /* no handle to close */
		pthread_mutex_unlock(&c->mu);
		sr_socket_free(s);
		return NULL;
	}
	if (cctx.failed) {
		cl_copyerr(err, &cerr);
		sr_socket_free(s);
		return NULL;
	}
	return s;
}

/*
 * A new socket and its first datagram, sent together without waiting (protocol 1.2):
 * sr_socket_new() and sr_send_to() in no round trip. Their outcomes are owed to the next
 * call on the socket, which reports a failure of either (the creation's first);
 * sr_receive_from() sends its own request first and then reads them, so a request and
 * its response wait once. NULL only for what is known here (bad arguments, the
 * connection to the daemon broken). Against an older daemon, both calls wait.
 */
sr_socket *
sr_socket_send_to(sr_client *c, int family, int type, int protocol, const char *host, int port,
                  const void *data, size_t len, int flags, sr_error *err)
{
	Sockrpc__SocketRequest sreq = SOCKRPC__SOCKET_REQUEST__INIT;
	Sockrpc__SendToRequest treq = SOCKRPC__SEND_TO_REQUEST__INIT;
	const unsigned methods[2] = {cl_method_index("Socket"), cl_method_index("SendTo")};
	const ProtobufCMessage *inputs[2] = {&sreq.base, &treq.base};
	struct pending *started[2];
	uint32_t wire;
	sr_socket *s;

	if (c == NULL) {
		cl_seterr(err, SR_EINVAL, 0, "no client");
		return NULL;
	}
	if (!c->client_ids || !cl_fastpath_on(CL_FAST_PIPELINED)) {
		if ((s = sr_socket_new(c, family, type, protocol, err)) == NULL)
			return NULL;
		if (sr_send_to(s, host, port, data, len, flags, err) < 0) {
			sr_socket_free(s);
			return NULL;
		}
		return s;
	}
	if (cl_socket_request(family, type, protocol, &sreq, err) == -1)
		return NULL;
	if (enum_msg_flags_from_host(flags, &wire) == -1) {
		cl_seterr(err, SR_EUNSUPPORTED, 0, "send flags 0x%x are not supported by sockrpc",
		          (unsigned)flags);
		return NULL;
	}
	if (len > c->max_payload) {
		cl_seterr(err, SR_EINVAL, 0,
		          "datagram of %zu bytes is larger than the daemon's limit of %u", len,
		          c->max_payload);
		return NULL;
	}
	if ((s = cl_socket_named(c, family, type, protocol, &sreq, err)) == NULL)
		return NULL;
	treq.handle = sreq.handle;
	treq.host = (char *)(host != NULL ? host : "");
	treq.port = port;
	treq.family = SOCKRPC__FAMILY__FAMILY_UNSPEC;
	treq.data.data = (uint8_t *)(uintptr_t)data;
	treq.data.len = len;
	treq.flags = wire;
	if (cl_calls_start_together(c, 2, methods, inputs, cl_deadline_after(CL_FIXED_DEADLINE_MS),
	                            started, err) == -1) {
		pthread_mutex_lock(&c->mu);
		s->state.is_closed = true; /* nothing was sent: no handle to close */
		pthread_mutex_unlock(&c->mu);
		sr_socket_free(s);
		return NULL;
	}
	pthread_mutex_lock(&c->mu);
	s->owed[0] = started[0];
	s->owed[1] = started[1];
	pthread_mutex_unlock(&c->mu);
	return s;
}

/* Whether s owes the outcome of calls sr_socket_send_to did not wait for. */
bool
cl_owed_pending(sr_socket *s)
{
	bool owed;

	if (s->client == NULL)
		return false;
	pthread_mutex_lock(&s->client->mu);
	owed = s->owed[0] != NULL || s->owed[1] != NULL;
	pthread_mutex_unlock(&s->client->mu);
	return owed;
}

/*
 * Reads the outcomes s owes, waiting for them (the daemon answers them at once, but for
 * a name to resolve). Returns 0, or -1 with the first failure (a failed creation leaves
 * the socket closed: there is none).
 */
int
cl_owed_collect(sr_socket *s, sr_error *err)
{
	sr_client *c = s->client;
	struct pending *p[2];
	struct call_ctx ctx;
	sr_error e;
	int rc = 0;

	pthread_mutex_lock(&c->mu);
	p[0] = s->owed[0];
	p[1] = s->owed[1];
	s->owed[0] = s->owed[1] = NULL;
	pthread_mutex_unlock(&c->mu);
	for (int i = 0; i < 2; i++) {
		if (p[i] == NULL)
			continue;
		/* The send may wait for a name: the resolver's deadline. */
		cl_call_init(
		    &ctx, c, s,
		    cl_deadline_after(i == 0 ? CL_FIXED_DEADLINE_MS : CL_RESOLVE_DEADLINE_MS), &e);
		cl_call_finish(c, p[i], &ctx);
		if (ctx.failed && rc == 0) {
			cl_copyerr(err, &e);
			rc = -1;
			if (i == 0) {
				pthread_mutex_lock(&c->mu);
				s->state.is_closed = true; /* never created */
				pthread_mutex_unlock(&c->mu);
			}
		}
	}
	return rc;
}

/* Drops what s owes, unread. */
void
cl_owed_forget(sr_socket *s)
{
	sr_client *c = s->client;
	struct pending *p[2];

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	p[0] = s->owed[0];
	p[1] = s->owed[1];
	s->owed[0] = s->owed[1] = NULL;
	pthread_mutex_unlock(&c->mu);
	for (int i = 0; i < 2; i++)
		if (p[i] != NULL)
			cl_call_abandon(c, p[i]);
}

/*
 * Starts the Close of req without waiting, when that is safe: the fast path is on, the
 * socket does not linger (such a close returns when the peer has the data) nor is a Unix
 * socket (its file goes with it), and the
 * client has room for one more unanswered call. Returns whether it did; s->closing then
 * holds it. Called by sr_close() only, with the socket's sends drained.
 */
bool
cl_close_unwaited(sr_socket *s, const Sockrpc__CloseRequest *req)
{
	sr_client *c = s->client;
	struct pending *p = NULL;
	struct call_ctx ctx;
	sr_error e;
	bool room;

	if (!cl_fastpath_on(CL_FAST_PIPELINED) || s->lingers)
		return false;
	/* A Unix socket's close removes the file it is bound to: when close returns, the
	 * file is gone, as a caller (or another process) may check. */
	if (s->state.family == AF_UNIX)
		return false;
	pthread_mutex_lock(&c->mu);
	room = c->unwaited_calls < CL_MAX_UNWAITED && s->closing == NULL;
	pthread_mutex_unlock(&c->mu);
	if (!room)
		return false;
	cl_call_init(&ctx, c, s, cl_deadline_after(CL_FIXED_DEADLINE_MS), &e);
	ctx.started = &p;
	ctx.unwaited = true;
	sockrpc__sock_rpc__close(&c->service, req, NULL, &ctx);
	if (p == NULL)
		return false; /* out of memory: close as usual */
	pthread_mutex_lock(&c->mu);
	s->closing = p;
	pthread_mutex_unlock(&c->mu);
	return true;
}

/* Whether s has a close whose outcome is not read yet. */
bool
cl_close_pending(sr_socket *s)
{
	bool pending;

	if (s->client == NULL)
		return false;
	pthread_mutex_lock(&s->client->mu);
	pending = s->closing != NULL;
	pthread_mutex_unlock(&s->client->mu);
	return pending;
}

/*
 * Reads the outcome of s's unwaited close, waiting for it if it is not in yet. Returns
 * 0 (also when there was none, or the session ended: its sockets are closed with it), or
 * -1 with the close's error.
 */
int
cl_close_collect(sr_socket *s, sr_error *err)
{
	sr_client *c = s->client;
	struct pending *p;
	struct call_ctx ctx;
	sr_error e;

	pthread_mutex_lock(&c->mu);
	p = s->closing;
	s->closing = NULL;
	pthread_mutex_unlock(&c->mu);
	if (p == NULL)
		return 0;
	cl_call_init(&ctx, c, s, cl_deadline_after(CL_FIXED_DEADLINE_MS), &e);
	cl_call_finish(c, p, &ctx);
	if (ctx.failed && e.code != SR_EDAEMON && e.code != SR_EPROTO) {
		cl_seterr(err, e.code, e.sys_errno, "close failed: %s", e.message);
		return -1;
	}
	return 0;
}

/* Drops s's unwaited close, if any, without its outcome. Returns whether there was one. */
bool
cl_close_forget(sr_socket *s)
{
	sr_client *c = s->client;
	struct pending *p;

	if (c == NULL)
		return false;
	pthread_mutex_lock(&c->mu);
	p = s->closing;
	s->closing = NULL;
	pthread_mutex_unlock(&c->mu);
	if (p != NULL)
		cl_call_abandon(c, p);
	return p != NULL;
}

/* The same, one round trip per call: for daemons before 1.2, or with the path off. */
static sr_socket *
create_then_connect(sr_client *c, int family, int type, int protocol, const char *host, int port,
                    int timeout_ms, sr_error *err)
{
	sr_socket *s = sr_socket_new(c, family, type, protocol, err);

	if (s == NULL)
		return NULL;
	if (sr_connect(s, host, port, timeout_ms, err) != 0) {
		sr_socket_free(s);
		return NULL;
	}
	return s;
}
