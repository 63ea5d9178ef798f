/*
 * socket.c - the sr_socket object and the stubs of its life: create, connect, bind,
 * listen, accept, info, shutdown, close; its cached state; the client's list
 * of handles. Each stub checks what the cached state already decides, translates host
 * constants to wire enums, and calls the generated sockrpc__sock_rpc__*() stub on the
 * client's service; framing, threads and deadlines are calls.c's. Moving data is
 * socket_io.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "enums.h"
#include "internal.h"

CL_CLOSURE(socket_done, Sockrpc__SocketReply)
CL_CLOSURE(connect_done, Sockrpc__ConnectReply)
CL_CLOSURE(bind_done, Sockrpc__BindReply)
CL_CLOSURE(listen_done, Sockrpc__ListenReply)
CL_CLOSURE(accept_done, Sockrpc__AcceptReply)
CL_CLOSURE(close_done, Sockrpc__CloseReply)
CL_CLOSURE(shutdown_done, Sockrpc__ShutdownReply)
CL_CLOSURE(info_done, Sockrpc__InfoReply)

static void socket_release(sr_socket *s);
static bool socket_closed(sr_socket *s);
static void socket_detach(sr_client *c, sr_socket *s);
static bool client_holds(sr_client *c, long handle);
static void state_mark_closed(sr_state *st);
static bool lock_sends_unless_busy(sr_socket *s);

/* Fills a Socket request from host constants. Returns 0, or -1 with *err filled. */
int
cl_socket_request(int family, int type, int protocol, Sockrpc__SocketRequest *req, sr_error *err)
{
	int wire;

	if (cl_family_to_wire(family, &wire, err) == -1)
		return -1;
	req->family = wire;
	if (type == 0)
		type = SOCK_STREAM;
	if (enum_type_from_host(type, &wire) == -1) {
		cl_seterr(err, SR_EUNSUPPORTED, 0, "socket type %d is not supported by sockrpc",
		          type);
		return -1;
	}
	req->type = wire;
	if (enum_protocol_from_host(protocol, &wire) == -1) {
		cl_seterr(err, SR_EUNSUPPORTED, 0, "protocol %d is not supported by sockrpc",
		          protocol);
		return -1;
	}
	req->protocol = wire;
	return 0;
}

/* Returns a new handle (free with sr_socket_free()), or NULL. */
sr_socket *
sr_socket_new(sr_client *c, int family, int type, int protocol, sr_error *err)
{
	Sockrpc__SocketRequest req = SOCKRPC__SOCKET_REQUEST__INIT;
	struct call_ctx ctx;
	sr_socket *s;

	if (c == NULL) {
		cl_seterr(err, SR_EINVAL, 0, "no client");
		return NULL;
	}
	if (cl_socket_request(family, type, protocol, &req, err) == -1)
		return NULL;
	if ((s = cl_socket_alloc(err)) == NULL)
		return NULL;
	cl_call_init(&ctx, c, s, cl_deadline_after(CL_FIXED_DEADLINE_MS), err);
	s->client = c;
	sockrpc__sock_rpc__socket(&c->service, &req, socket_done, &ctx);
	/* Without a state there is no handle id to use; one id twice would make two
	 * handles share a socket. */
	if (!ctx.failed && s->state.id == 0)
		cl_call_violation(&ctx, "SocketReply without a handle state");
	else if (!ctx.failed && client_holds(c, s->state.id))
		cl_call_violation(&ctx, "sockrpcd gave a new socket handle %ld, already in use",
		                  s->state.id);
	if (ctx.failed) {
		socket_release(s);
		return NULL;
	}
	s->handle = s->state.id;
	cl_socket_attach(c, s);
	return s;
}

int
sr_connect(sr_socket *s, const char *host, int port, int timeout_ms, sr_error *err)
{
	Sockrpc__ConnectRequest req = SOCKRPC__CONNECT_REQUEST__INIT;
	struct call_ctx ctx;
	int64_t deadline;

	if (cl_socket_usable(s, err) == -1)
		return -1;
	req.handle = s->handle;
	req.host = (char *)(host != NULL ? host : "");
	req.port = port;
	req.timeout_ms = timeout_ms;
	if (timeout_ms == 0)
		deadline = CL_NO_DEADLINE;
	else
		deadline = cl_deadline_after(
		    (int64_t)(timeout_ms < 0 ? CL_CONNECT_DEFAULT_MS : timeout_ms) +
		    CL_WAIT_MARGIN_MS);
	cl_call_init(&ctx, s->client, s, deadline, err);
	sockrpc__sock_rpc__connect(&s->client->service, &req, connect_done, &ctx);
	return ctx.failed ? -1 : 0;
}

int
sr_bind(sr_socket *s, int port, const char *host, sr_error *err)
{
	Sockrpc__BindRequest req = SOCKRPC__BIND_REQUEST__INIT;
	struct call_ctx ctx;

	if (cl_socket_usable(s, err) == -1)
		return -1;
	req.handle = s->handle;
	req.port = port;
	req.host = (char *)(host != NULL ? host : "");
	cl_call_init(&ctx, s->client, s, cl_deadline_after(CL_FIXED_DEADLINE_MS), err);
	sockrpc__sock_rpc__bind(&s->client->service, &req, bind_done, &ctx);
	return ctx.failed ? -1 : 0;
}

int
sr_listen(sr_socket *s, int queue_length, sr_error *err)
{
	Sockrpc__ListenRequest req = SOCKRPC__LISTEN_REQUEST__INIT;
	struct call_ctx ctx;

	if (cl_socket_usable(s, err) == -1)
		return -1;
	req.handle = s->handle;
	req.queue_length = queue_length;
	cl_call_init(&ctx, s->client, s, cl_deadline_after(CL_FIXED_DEADLINE_MS), err);
	sockrpc__sock_rpc__listen(&s->client->service, &req, listen_done, &ctx);
	return ctx.failed ? -1 : 0;
}

static void
accept_take(const ProtobufCMessage *msg, struct call_ctx *ctx)
{
	const Sockrpc__AcceptReply *r = (const Sockrpc__AcceptReply *)msg;
	sr_socket *accepted = ctx->out;
	sr_state st;
	sr_error e;

	if (r->accepted == NULL || r->accepted->id == 0) {
		cl_call_violation(ctx, "AcceptReply without the accepted handle");
		return;
	}
	if (cl_state_from_wire(&st, r->accepted, &e) == -1) {
		cl_call_violation(ctx, "%s", e.message);
		return;
	}
	if (st.id == ctx->socket->handle || client_holds(ctx->client, st.id)) {
		cl_call_violation(ctx, "sockrpcd gave an accepted handle %ld, already in use",
		                  st.id);
		return;
	}
	accepted->state = st;
	accepted->handle = st.id;
}

/* Returns the accepted connection as a new handle (free with sr_socket_free()). */
sr_socket *
sr_accept(sr_socket *s, sr_error *err)
{
	Sockrpc__AcceptRequest req = SOCKRPC__ACCEPT_REQUEST__INIT;
	struct call_ctx ctx;
	sr_socket *accepted;

	if (cl_socket_usable(s, err) == -1)
		return NULL;
	/* Allocated first: once the daemon has accepted, the handle must have a home. */
	if ((accepted = cl_socket_alloc(err)) == NULL)
		return NULL;
	req.handle = s->handle;
	cl_call_init(&ctx, s->client, s, cl_wait_deadline(s, WAIT_RECEIVE), err);
	ctx.take = accept_take;
	ctx.out = accepted;
	sockrpc__sock_rpc__accept(&s->client->service, &req, accept_done, &ctx);
	if (ctx.failed) {
		socket_release(accepted);
		return NULL;
	}
	cl_socket_attach(s->client, accepted);
	return accepted;
}

/*
 * Closing twice is not an error. If the connection to the daemon is gone the
 * session and its sockets are gone with it (the daemon closes every handle of
 * a session that ends), so the handle is closed and close succeeds. A close may go
 * without waiting for its answer (socket_pipeline.c); closing again, or any later call
 * on the socket, then reports its failure, if it failed.
 */
int
sr_close(sr_socket *s, sr_error *err)
{
	Sockrpc__CloseRequest req = SOCKRPC__CLOSE_REQUEST__INIT;
	struct call_ctx ctx;
	sr_error local;
	sr_client *c;
	bool sends_locked;

	if (s == NULL) {
		cl_seterr(err, SR_EINVAL, 0, "no socket");
		return -1;
	}
	if ((c = s->client) == NULL)
		return 0;
	if (cl_close_pending(s))
		return cl_close_collect(s, err);
	cl_owed_forget(s); /* a close asks about itself, not what the socket owed */
	if (socket_closed(s))
		return 0;
	sends_locked = lock_sends_unless_busy(s);
	req.handle = s->handle;
	if (cl_close_unwaited(s, &req)) {
		if (sends_locked)
			pthread_mutex_unlock(&s->send_mu);
		pthread_mutex_lock(&c->mu);
		state_mark_closed(&s->state);
		pthread_mutex_unlock(&c->mu);
		return 0;
	}
	cl_call_init(&ctx, c, s, cl_deadline_after(CL_FIXED_DEADLINE_MS), &local);
	sockrpc__sock_rpc__close(&c->service, &req, close_done, &ctx);
	if (sends_locked)
		pthread_mutex_unlock(&s->send_mu);
	if (ctx.failed && local.code != SR_EDAEMON && local.code != SR_EPROTO) {
		cl_copyerr(err, &local);
		return -1;
	}
	pthread_mutex_lock(&c->mu);
	state_mark_closed(&s->state);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

/* Closes the handle if still open (errors ignored) and frees s. Accepts NULL. */
void
sr_socket_free(sr_socket *s)
{
	if (s == NULL)
		return;
	if (s->client != NULL) {
		/* Nobody can ask for the outcome of a close that goes unwaited now. */
		cl_owed_forget(s);
		if (!cl_close_forget(s)) {
			(void)sr_close(s, NULL);
			(void)cl_close_forget(s);
		}
		cl_window_forget(s);
		cl_ahead_forget(s);
		socket_detach(s->client, s);
	}
	socket_release(s);
}

int
sr_shutdown(sr_socket *s, int how, sr_error *err)
{
	Sockrpc__ShutdownRequest req = SOCKRPC__SHUTDOWN_REQUEST__INIT;
	struct call_ctx ctx;
	bool sends_locked;
	int wire;

	if (cl_socket_usable(s, err) == -1)
		return -1;
	if (enum_shutdown_from_host(how, &wire) == -1) {
		cl_seterr(err, SR_EINVAL, 0, "expected one of SHUT_* flags");
		return -1;
	}
	sends_locked = lock_sends_unless_busy(s);
	req.handle = s->handle;
	req.how = wire;
	cl_call_init(&ctx, s->client, s, cl_deadline_after(CL_FIXED_DEADLINE_MS), err);
	sockrpc__sock_rpc__shutdown(&s->client->service, &req, shutdown_done, &ctx);
	if (sends_locked)
		pthread_mutex_unlock(&s->send_mu);
	return ctx.failed ? -1 : 0;
}

static void
info_take(const ProtobufCMessage *msg, struct call_ctx *ctx)
{
	const Sockrpc__InfoReply *r = (const Sockrpc__InfoReply *)msg;
	sr_sockinfo *out = ctx->out;
	int v;

	if (enum_family_to_host(r->family, &v) == -1) {
		cl_call_violation(ctx, "InfoReply with unknown family %d", (int)r->family);
		return;
	}
	/* An AF_UNIX socket has no port: -1. */
	if (v != AF_UNIX && !cl_call_valid_port(ctx, "InfoReply", r->port))
		return;
	snprintf(out->address, sizeof(out->address), "%s", r->address != NULL ? r->address : "");
	out->ipv6 = r->ipv6;
	out->port = v == AF_UNIX ? -1 : r->port;
	out->family = v;
}

int
sr_info(sr_socket *s, sr_sockinfo *out, sr_error *err)
{
	Sockrpc__InfoRequest req = SOCKRPC__INFO_REQUEST__INIT;
	struct call_ctx ctx;
	sr_sockinfo info;

	if (cl_socket_usable(s, err) == -1)
		return -1;
	memset(&info, 0, sizeof(info));
	req.handle = s->handle;
	cl_call_init(&ctx, s->client, s, cl_deadline_after(CL_FIXED_DEADLINE_MS), err);
	ctx.take = info_take;
	ctx.out = &info;
	sockrpc__sock_rpc__info(&s->client->service, &req, info_done, &ctx);
	if (ctx.failed)
		return -1;
	if (out != NULL)
		*out = info;
	return 0;
}

/*
 * The last state received; read without a round trip. Valid until sr_socket_free().
 * A daemon that hung up is noticed here (a poll, no call): the state then reads closed.
 */
const sr_state *
sr_socket_state(const sr_socket *s)
{
	if (s == NULL)
		return NULL;
	if (s->client != NULL)
		cl_client_notice_hangup(s->client);
	return &s->state;
}

sr_socket *
cl_socket_alloc(sr_error *err)
{
	sr_socket *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		cl_seterr(err, SR_ELIMIT, ENOMEM, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->send_mu, NULL);
	pthread_mutex_init(&s->recv_mu, NULL);
	return s;
}

/* Frees s; its sends in flight were collected or forgotten. */
static void
socket_release(sr_socket *s)
{
	cl_window_free(s);
	cl_ahead_free(s);
	pthread_mutex_destroy(&s->send_mu);
	pthread_mutex_destroy(&s->recv_mu);
	free(s);
}

/* Reads is_closed under the lock a reply's state is written under. */
static bool
socket_closed(sr_socket *s)
{
	bool closed;

	pthread_mutex_lock(&s->client->mu);
	closed = s->state.is_closed;
	pthread_mutex_unlock(&s->client->mu);
	return closed;
}

/*
 * A closed handle (or one whose client is gone) is refused without a round trip; on a
 * broken connection, with the reason it broke (the daemon went away, say).
 */
int
cl_socket_usable(sr_socket *s, sr_error *err)
{
	return cl_socket_check(s, true, err);
}

/* The same; with collect_owed false, the outcomes sr_socket_send_to owes stay owed (the
 * caller collects them after sending its own call, socket_pipeline.c). */
int
cl_socket_check(sr_socket *s, bool collect_owed, sr_error *err)
{
	if (s == NULL) {
		cl_seterr(err, SR_EINVAL, 0, "no socket");
		return -1;
	}
	if (s->client == NULL) {
		cl_seterr(err, SR_ECLOSED, 0, "socket is closed");
		return -1;
	}
	/* A close that went unwaited and failed: the next call on the socket says so; and
	 * so does a creation or first send that went unwaited. */
	if (cl_close_pending(s) && cl_close_collect(s, err) == -1)
		return -1;
	if (collect_owed && cl_owed_pending(s) && cl_owed_collect(s, err) == -1)
		return -1;
	if (cl_client_broken(s->client, err) == -1)
		return -1;
	if (socket_closed(s)) {
		cl_seterr(err, SR_ECLOSED, 0, "socket is closed");
		return -1;
	}
	return 0;
}

long
cl_socket_payload_limit(sr_socket *s)
{
	return (long)s->client->max_payload;
}

/*
 * Before shutdown or close: waits for this socket's sends in flight, so their bytes
 * go out first, and keeps new sends out until unlocked. It stops waiting when they
 * make no progress for CL_LINGER_MS (a peer that stopped reading), and does not wait
 * at all when another thread is in sr_send on the socket (returns false, nothing
 * locked): either way the call then acts at once and answers the sends, as close
 * always answers a waiting call.
 */
static bool
lock_sends_unless_busy(sr_socket *s)
{
	if (pthread_mutex_trylock(&s->send_mu) != 0)
		return false;
	(void)cl_window_drain(s, CL_LINGER_MS, NULL);
	return true;
}

/* A host address family as the wire enum, or -1 with *err naming it. */
int
cl_family_to_wire(int family, int *wire, sr_error *err)
{
	const char *name;

	if (enum_family_from_host(family, wire) == 0)
		return 0;
	if ((name = cl_constant_name("AF_", family)) != NULL)
		cl_seterr(err, SR_EUNSUPPORTED, 0, "%s is not supported by sockrpc", name);
	else
		cl_seterr(err, SR_EUNSUPPORTED, 0, "address family %d is not supported by sockrpc",
		          family);
	return -1;
}

/* The session ended (c->mu held): its handles are closed on both sides. */
static void
client_broken(sr_client *c)
{
	for (sr_socket *s = c->sockets; s != NULL; s = s->next)
		state_mark_closed(&s->state);
}

/* sr_client_close: the handles still allocated are detached, closed and stay readable. */
static void
client_closing(sr_client *c)
{
	sr_socket *s, *next;

	for (s = c->sockets; s != NULL; s = s->next) {
		cl_window_forget(s);
		cl_ahead_forget(s);
		(void)cl_close_forget(s);
		cl_owed_forget(s);
	}
	pthread_mutex_lock(&c->mu);
	for (s = c->sockets; s != NULL; s = next) {
		next = s->next;
		s->client = NULL;
		s->prev = s->next = NULL;
		state_mark_closed(&s->state);
	}
	c->sockets = NULL;
	pthread_mutex_unlock(&c->mu);
}

static const struct client_hooks socket_hooks = {
    .broken = client_broken,
    .closing = client_closing,
};

void
cl_socket_attach(sr_client *c, sr_socket *s)
{
	pthread_mutex_lock(&c->mu);
	c->hooks = &socket_hooks;
	s->client = c;
	if (c->broken) /* its session ended after the reply that made it */
		state_mark_closed(&s->state);
	s->prev = NULL;
	s->next = c->sockets;
	if (c->sockets != NULL)
		c->sockets->prev = s;
	c->sockets = s;
	pthread_mutex_unlock(&c->mu);
}

static void
socket_detach(sr_client *c, sr_socket *s)
{
	pthread_mutex_lock(&c->mu);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else if (c->sockets == s)
		c->sockets = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	s->client = NULL;
	pthread_mutex_unlock(&c->mu);
}

/*
 * Whether an open handle of c already has this id (a daemon handing out one id twice).
 * A closed one's id may come again: sockrpcd never reuses ids, but need not promise it.
 */
static bool
client_holds(sr_client *c, long handle)
{
	sr_socket *s;

	pthread_mutex_lock(&c->mu);
	for (s = c->sockets; s != NULL && (s->handle != handle || s->state.is_closed); s = s->next)
		;
	pthread_mutex_unlock(&c->mu);
	return s != NULL;
}

/* The state of a handle whose session is over (or that was closed). */
static void
state_mark_closed(sr_state *st)
{
	st->is_closed = true;
	st->is_client = st->is_bound = false;
	st->is_connected = st->is_listening = false;
}
