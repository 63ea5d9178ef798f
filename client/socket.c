/*
 * socket.c - one sr_* stub per method of the SockRpc service, and the
 * sr_socket object with its cached state. Each stub checks what the cached
 * state already decides, translates host constants to wire enums, and calls the
 * generated sockrpc__sock_rpc__*() stub on the client's service; framing,
 * threads and deadlines are client.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "enums.h"
#include "internal.h"

/* Typed closures for the generated stubs; all forward to cl_call_done(). */
#define CLOSURE(fn, Type)                                                      \
	static void fn(const Type *reply, void *data)                          \
	{                                                                      \
		cl_call_done((const ProtobufCMessage *)reply, data);           \
	}
CLOSURE(socket_done, Sockrpc__SocketReply)
CLOSURE(connect_done, Sockrpc__ConnectReply)
CLOSURE(bind_done, Sockrpc__BindReply)
CLOSURE(listen_done, Sockrpc__ListenReply)
CLOSURE(accept_done, Sockrpc__AcceptReply)
CLOSURE(send_done, Sockrpc__SendReply)
CLOSURE(receive_done, Sockrpc__ReceiveReply)
CLOSURE(read_done, Sockrpc__ReadReply)
CLOSURE(close_done, Sockrpc__CloseReply)
CLOSURE(shutdown_done, Sockrpc__ShutdownReply)
CLOSURE(set_option_done, Sockrpc__SetOptionReply)
CLOSURE(get_option_done, Sockrpc__GetOptionReply)
CLOSURE(set_blocking_done, Sockrpc__SetBlockingReply)
CLOSURE(info_done, Sockrpc__InfoReply)
CLOSURE(get_address_info_done, Sockrpc__GetAddressInfoReply)
CLOSURE(send_to_done, Sockrpc__SendToReply)
CLOSURE(receive_from_done, Sockrpc__ReceiveFromReply)

/* Where take() functions put data replies. */
struct data_out {
	size_t asked;	/* the most data the call may bring */
	char **buf;
	size_t *len;
	bool eos;
	char *host;	/* receive_from: 64 bytes */
	int *port;
};

/* Where send_take() puts the count of a Send or SendTo reply. */
struct count_out {
	size_t asked;	/* bytes the call carried: the most it can have sent */
	long sent;
};

static sr_socket *socket_alloc(sr_error *err);
static void	 socket_release(sr_socket *s);
static bool	 socket_closed(sr_socket *s);
static bool	 overlaps(sr_socket *s, int flags, bool sending);
static long	 send_now(sr_socket *s, const void *data, size_t len, uint32_t wire,
		    sr_error *err);
static bool	 lock_sends_unless_busy(sr_socket *s);
static int	 usable(sr_socket *s, sr_error *err);
static long	 payload_limit(sr_socket *s);
static long	 send_chunk(sr_socket *s, const void *data, size_t len, uint32_t flags,
		    sr_error *err);
static int	 receive_once(sr_socket *s, long length, uint32_t flags, char **out,
		    size_t *out_len, bool *eos, sr_error *err);
static int	 read_once(sr_socket *s, long length, char **out, size_t *out_len,
		    sr_error *err);
static int	 take_bytes(struct call_ctx *ctx, const ProtobufCBinaryData *data);
static int	 take_count(struct call_ctx *ctx, int64_t sent);
static bool	 valid_port(struct call_ctx *ctx, const char *what, int32_t port);
static size_t	 data_bound(sr_socket *s, long length);
static int	 append(char **all, size_t *have, char *part, size_t part_len, sr_error *err);
static int	 family_to_wire(int family, int *wire, sr_error *err);

/* Returns a new handle (free with sr_socket_free()), or NULL. */
sr_socket *
sr_socket_new(sr_client *c, int family, int type, int protocol, sr_error *err)
{
	Sockrpc__SocketRequest req = SOCKRPC__SOCKET_REQUEST__INIT;
	struct call_ctx ctx;
	sr_socket *s;
	int wire;

	if (c == NULL) {
		cl_seterr(err, SR_EINVAL, 0, "no client");
		return NULL;
	}
	if (family_to_wire(family, &wire, err) == -1)
		return NULL;
	req.family = wire;
	if (type == 0)
		type = SOCK_STREAM;
	if (enum_type_from_host(type, &wire) == -1) {
		cl_seterr(err, SR_EUNSUPPORTED, 0, "socket type %d is not supported by sockrpc",
		    type);
		return NULL;
	}
	req.type = wire;
	if (enum_protocol_from_host(protocol, &wire) == -1) {
		cl_seterr(err, SR_EUNSUPPORTED, 0, "protocol %d is not supported by sockrpc",
		    protocol);
		return NULL;
	}
	req.protocol = wire;

	if ((s = socket_alloc(err)) == NULL)
		return NULL;
	cl_call_init(&ctx, c, s, cl_deadline_after(CL_FIXED_DEADLINE_MS), err);
	s->client = c;
	sockrpc__sock_rpc__socket(&c->service, &req, socket_done, &ctx);
	/* Without a state there is no handle id to use; one id twice would make two
	 * handles share a socket. */
	if (!ctx.failed && s->state.id == 0)
		cl_call_violation(&ctx, "SocketReply without a handle state");
	else if (!ctx.failed && cl_client_holds(c, s->state.id))
		cl_call_violation(&ctx, "sockrpcd gave a new socket handle %ld, already in use",
		    s->state.id);
	if (ctx.failed) {
		socket_release(s);
		return NULL;
	}
	s->handle = s->state.id;
	cl_client_attach(c, s);
	return s;
}

int
sr_connect(sr_socket *s, const char *host, int port, int timeout_ms, sr_error *err)
{
	Sockrpc__ConnectRequest req = SOCKRPC__CONNECT_REQUEST__INIT;
	struct call_ctx ctx;
	int64_t deadline;

	if (usable(s, err) == -1)
		return -1;
	req.handle = s->handle;
	req.host = (char *)(host != NULL ? host : "");
	req.port = port;
	req.timeout_ms = timeout_ms;
	if (timeout_ms == 0)
		deadline = CL_NO_DEADLINE;
	else
		deadline = cl_deadline_after((int64_t)(timeout_ms < 0 ? CL_CONNECT_DEFAULT_MS :
		    timeout_ms) + CL_WAIT_MARGIN_MS);
	cl_call_init(&ctx, s->client, s, deadline, err);
	sockrpc__sock_rpc__connect(&s->client->service, &req, connect_done, &ctx);
	return ctx.failed ? -1 : 0;
}

int
sr_bind(sr_socket *s, int port, const char *host, sr_error *err)
{
	Sockrpc__BindRequest req = SOCKRPC__BIND_REQUEST__INIT;
	struct call_ctx ctx;

	if (usable(s, err) == -1)
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

	if (usable(s, err) == -1)
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
	if (st.id == ctx->socket->handle || cl_client_holds(ctx->client, st.id)) {
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

	if (usable(s, err) == -1)
		return NULL;
	/* Allocated first: once the daemon has accepted, the handle must have a home. */
	if ((accepted = socket_alloc(err)) == NULL)
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
	cl_client_attach(s->client, accepted);
	return accepted;
}

/*
 * Sends all of data. On a connected, blocking stream socket with no send timeout the
 * calls are written behind (send_window.c): sr_send returns once they are on their
 * way, and a failure shows in the next sr_send. Otherwise each chunk waits for its
 * answer (send_now).
 */
long
sr_send(sr_socket *s, const void *data, size_t len, int flags, sr_error *err)
{
	uint32_t wire;
	long n;

	if (usable(s, err) == -1)
		return -1;
	if (enum_msg_flags_from_host(flags, &wire) == -1) {
		cl_seterr(err, SR_EUNSUPPORTED, 0, "send flags 0x%x are not supported by sockrpc",
		    (unsigned)flags);
		return -1;
	}
	pthread_mutex_lock(&s->send_mu);
	if (len > 0 && overlaps(s, flags, true))
		n = cl_window_send(s, data, len, err);
	else if (cl_window_drain(s, -1, err) == -1)
		n = -1;
	else
		n = send_now(s, data, len, wire, err);
	pthread_mutex_unlock(&s->send_mu);
	return n;
}

/* Streams the rest of the file on fd, one max_payload chunk at a time. */
long
sr_send_file(sr_socket *s, int fd, sr_error *err)
{
	char *buf, ebuf[128];
	long total = 0, limit, n;
	ssize_t got;

	if (usable(s, err) == -1)
		return -1;
	limit = payload_limit(s);
	if ((buf = malloc((size_t)limit)) == NULL) {
		cl_seterr(err, SR_ELIMIT, ENOMEM, "out of memory");
		return -1;
	}
	for (;;) {
		got = read(fd, buf, (size_t)limit);
		if (got == -1 && errno == EINTR)
			continue;
		if (got == -1) {
			cl_seterr(err, SR_EOS, errno, "reading the file to send: %s",
			    cl_errno_text(errno, ebuf, sizeof(ebuf)));
			total = total > 0 ? total : -1;
			break;
		}
		if (got == 0)
			break;
		n = sr_send(s, buf, (size_t)got, 0, err);
		if (n == -1) {
			total = total > 0 ? total : -1;
			break;
		}
		total += n;
		if (n < got)
			break;
	}
	free(buf);
	return total;
}

/*
 * One Receive call. length -1 (any negative): everything pending once data
 * arrives; larger than max_payload: capped. At end of stream returns 0 with
 * *out_len 0 (and *out a valid empty buffer): for a length other than 0 an
 * empty result always means end of stream, as a receive that got nothing
 * fails (SR_ETIMEDOUT, SR_EWOULDBLOCK) instead.
 */
int
sr_receive(sr_socket *s, long length, int flags, char **out, size_t *out_len, sr_error *err)
{
	uint32_t wire;
	bool eos, ahead;
	int rc;

	if (usable(s, err) == -1)
		return -1;
	if (out == NULL || out_len == NULL) {
		cl_seterr(err, SR_EINVAL, 0, "no output buffer");
		return -1;
	}
	if (enum_msg_flags_from_host(flags, &wire) == -1) {
		cl_seterr(err, SR_EUNSUPPORTED, 0,
		    "receive flags 0x%x are not supported by sockrpc", (unsigned)flags);
		return -1;
	}
	if (length < 0)
		length = -1;
	else if (length > payload_limit(s))
		length = payload_limit(s);
	pthread_mutex_lock(&s->recv_mu);
	rc = cl_ahead_take(s, length, flags, out, out_len, err);
	ahead = rc == 1;
	if (rc == 0)
		rc = receive_once(s, length, wire, out, out_len, &eos, err) == 0 ? 1 : -1;
	/* A full answer, or data that read-ahead found: more is likely waiting, so fetch it
	 * while the caller works. A short answer of its own (a request and its response,
	 * say) starts nothing. */
	if (rc == 1 && length > 0 && *out_len > 0 && (ahead || *out_len == (size_t)length) &&
	    overlaps(s, flags, false))
		cl_ahead_start(s, length);
	pthread_mutex_unlock(&s->recv_mu);
	return rc == 1 ? 0 : -1;
}

/*
 * Reads until length bytes (negative: 1024), end of stream or the receive
 * timeout; returns what arrived, possibly nothing. What read-ahead holds comes
 * first; longer than max_payload reads loop, stopping at the first short answer.
 */
int
sr_read(sr_socket *s, long length, char **out, size_t *out_len, sr_error *err)
{
	char *all = NULL, *part;
	size_t have = 0, part_len;
	long limit, want;
	int rc = 0;

	if (usable(s, err) == -1)
		return -1;
	if (out == NULL || out_len == NULL) {
		cl_seterr(err, SR_EINVAL, 0, "no output buffer");
		return -1;
	}
	if (length < 0)
		length = 1024;
	limit = payload_limit(s);
	pthread_mutex_lock(&s->recv_mu);
	/* rc: 1 while read-ahead answers (0 bytes: end of stream), 0 once it has nothing. */
	while ((long)have < length &&
	    (rc = cl_ahead_take(s, length - (long)have, 0, &part, &part_len, err)) == 1) {
		if (append(&all, &have, part, part_len, err) == -1)
			rc = -1;
		if (rc == -1 || part_len == 0)
			break;
	}
	while (rc == 0 && (long)have < length) {
		want = length - (long)have;
		if (want > limit)
			want = limit;
		if (read_once(s, want, &part, &part_len, err) == -1 ||
		    append(&all, &have, part, part_len, err) == -1)
			rc = -1;
		else if ((long)part_len < want)
			break;
	}
	pthread_mutex_unlock(&s->recv_mu);
	if (rc != -1 && all == NULL && append(&all, &have, NULL, 0, err) == -1)
		rc = -1;
	if (rc == -1) {
		free(all);
		return -1;
	}
	*out = all;
	*out_len = have;
	return 0;
}

/*
 * Closing twice is not an error. If the connection to the daemon is gone the
 * session and its sockets are gone with it (the daemon closes every handle of
 * a session that ends), so the handle is closed and close succeeds.
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
	if ((c = s->client) == NULL || socket_closed(s))
		return 0;
	sends_locked = lock_sends_unless_busy(s);
	req.handle = s->handle;
	cl_call_init(&ctx, c, s, cl_deadline_after(CL_FIXED_DEADLINE_MS), &local);
	sockrpc__sock_rpc__close(&c->service, &req, close_done, &ctx);
	if (sends_locked)
		pthread_mutex_unlock(&s->send_mu);
	if (ctx.failed && local.code != SR_EDAEMON && local.code != SR_EPROTO) {
		cl_copyerr(err, &local);
		return -1;
	}
	pthread_mutex_lock(&c->mu);
	cl_state_mark_closed(&s->state);
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
		(void)sr_close(s, NULL);
		cl_window_forget(s);
		cl_ahead_forget(s);
		cl_client_detach(s->client, s);
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

	if (usable(s, err) == -1)
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

int
sr_set_option(sr_socket *s, int option, long value, sr_error *err)
{
	Sockrpc__SetOptionRequest req = SOCKRPC__SET_OPTION_REQUEST__INIT;
	struct call_ctx ctx;
	int wire;

	if (usable(s, err) == -1)
		return -1;
	if (enum_option_from_host(option, &wire) == -1) {
		cl_seterr(err, SR_EUNSUPPORTED, 0,
		    "option %d is not a SOL_SOCKET option supported by sockrpc", option);
		return -1;
	}
	req.handle = s->handle;
	req.option = wire;
	req.value = value;
	cl_call_init(&ctx, s->client, s, cl_deadline_after(CL_FIXED_DEADLINE_MS), err);
	sockrpc__sock_rpc__set_option(&s->client->service, &req, set_option_done, &ctx);
	return ctx.failed ? -1 : 0;
}

static void
get_option_take(const ProtobufCMessage *msg, struct call_ctx *ctx)
{
	*(long *)ctx->out = (long)((const Sockrpc__GetOptionReply *)msg)->value;
}

/* SO_ERROR gives the pending errno number (0: none); timeouts are in ms. */
int
sr_get_option(sr_socket *s, int option, long *value, sr_error *err)
{
	Sockrpc__GetOptionRequest req = SOCKRPC__GET_OPTION_REQUEST__INIT;
	struct call_ctx ctx;
	long v = 0;
	int wire;

	if (usable(s, err) == -1)
		return -1;
	if (enum_option_from_host(option, &wire) == -1) {
		cl_seterr(err, SR_EUNSUPPORTED, 0,
		    "option %d is not a SOL_SOCKET option supported by sockrpc", option);
		return -1;
	}
	req.handle = s->handle;
	req.option = wire;
	cl_call_init(&ctx, s->client, s, cl_deadline_after(CL_FIXED_DEADLINE_MS), err);
	ctx.take = get_option_take;
	ctx.out = &v;
	sockrpc__sock_rpc__get_option(&s->client->service, &req, get_option_done, &ctx);
	if (ctx.failed)
		return -1;
	if (value != NULL)
		*value = v;
	return 0;
}

int
sr_set_blocking(sr_socket *s, bool blocking, sr_error *err)
{
	Sockrpc__SetBlockingRequest req = SOCKRPC__SET_BLOCKING_REQUEST__INIT;
	struct call_ctx ctx;

	if (usable(s, err) == -1)
		return -1;
	req.handle = s->handle;
	req.blocking = blocking;
	cl_call_init(&ctx, s->client, s, cl_deadline_after(CL_FIXED_DEADLINE_MS), err);
	sockrpc__sock_rpc__set_blocking(&s->client->service, &req, set_blocking_done, &ctx);
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
	if (v != AF_UNIX && !valid_port(ctx, "InfoReply", r->port))
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

	if (usable(s, err) == -1)
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

static void
send_take(const ProtobufCMessage *msg, struct call_ctx *ctx)
{
	(void)take_count(ctx, ((const Sockrpc__SendReply *)msg)->sent);
}

static void
send_to_take(const ProtobufCMessage *msg, struct call_ctx *ctx)
{
	(void)take_count(ctx, ((const Sockrpc__SendToReply *)msg)->sent);
}

/* One datagram to host:port; larger than max_payload is refused, not split. */
long
sr_send_to(sr_socket *s, const char *host, int port, const void *data, size_t len, int flags,
    sr_error *err)
{
	Sockrpc__SendToRequest req = SOCKRPC__SEND_TO_REQUEST__INIT;
	struct call_ctx ctx;
	struct count_out count = { .asked = len };
	uint32_t wire;

	if (usable(s, err) == -1)
		return -1;
	if (enum_msg_flags_from_host(flags, &wire) == -1) {
		cl_seterr(err, SR_EUNSUPPORTED, 0, "send flags 0x%x are not supported by sockrpc",
		    (unsigned)flags);
		return -1;
	}
	if (len > (size_t)payload_limit(s)) {
		cl_seterr(err, SR_EINVAL, 0,
		    "datagram of %zu bytes is larger than the daemon's limit of %ld", len,
		    payload_limit(s));
		return -1;
	}
	req.handle = s->handle;
	req.host = (char *)(host != NULL ? host : "");
	req.port = port;
	req.family = SOCKRPC__FAMILY__FAMILY_UNSPEC;
	req.data.data = (uint8_t *)(uintptr_t)data;
	req.data.len = len;
	req.flags = wire;
	cl_call_init(&ctx, s->client, s, cl_wait_deadline(s, WAIT_SEND), err);
	ctx.take = send_to_take;
	ctx.out = &count;
	sockrpc__sock_rpc__send_to(&s->client->service, &req, send_to_done, &ctx);
	return ctx.failed ? -1 : count.sent;
}

static void
receive_from_take(const ProtobufCMessage *msg, struct call_ctx *ctx)
{
	const Sockrpc__ReceiveFromReply *r = (const Sockrpc__ReceiveFromReply *)msg;
	struct data_out *o = ctx->out;

	if (!valid_port(ctx, "ReceiveFromReply", r->port) || take_bytes(ctx, &r->data) == -1)
		return;
	if (o->host != NULL)
		snprintf(o->host, 64, "%s", r->host != NULL ? r->host : "");
	if (o->port != NULL)
		*o->port = r->port;
}

/* One datagram (length negative: all of it) and its sender; host may be NULL. */
int
sr_receive_from(sr_socket *s, long length, int flags, char **out, size_t *out_len,
    char host[64], int *port, sr_error *err)
{
	Sockrpc__ReceiveFromRequest req = SOCKRPC__RECEIVE_FROM_REQUEST__INIT;
	struct call_ctx ctx;
	struct data_out o;
	uint32_t wire;

	if (usable(s, err) == -1)
		return -1;
	if (out == NULL || out_len == NULL) {
		cl_seterr(err, SR_EINVAL, 0, "no output buffer");
		return -1;
	}
	if (enum_msg_flags_from_host(flags, &wire) == -1) {
		cl_seterr(err, SR_EUNSUPPORTED, 0,
		    "receive flags 0x%x are not supported by sockrpc", (unsigned)flags);
		return -1;
	}
	if (length < 0)
		length = -1;
	else if (length > payload_limit(s))
		length = payload_limit(s);
	memset(&o, 0, sizeof(o));
	o.asked = data_bound(s, length);
	o.buf = out;
	o.len = out_len;
	o.host = host;
	o.port = port;
	req.handle = s->handle;
	req.length = length;
	req.flags = wire;
	cl_call_init(&ctx, s->client, s, cl_wait_deadline(s, WAIT_RECEIVE), err);
	ctx.take = receive_from_take;
	ctx.out = &o;
	sockrpc__sock_rpc__receive_from(&s->client->service, &req, receive_from_done, &ctx);
	return ctx.failed ? -1 : 0;
}

static void
address_info_take(const ProtobufCMessage *msg, struct call_ctx *ctx)
{
	const Sockrpc__GetAddressInfoReply *r = (const Sockrpc__GetAddressInfoReply *)msg;
	sr_addrinfo *ai;
	int v;

	if (r->n_addresses > CLIENT_MAX_ADDRESSES) {
		cl_call_violation(ctx, "GetAddressInfoReply with %zu addresses (at most %d)",
		    r->n_addresses, CLIENT_MAX_ADDRESSES);
		return;
	}
	for (size_t i = 0; i < r->n_addresses; i++) {
		if (enum_family_to_host(r->addresses[i]->family, &v) == -1) {
			cl_call_violation(ctx, "GetAddressInfoReply with unknown family %d",
			    (int)r->addresses[i]->family);
			return;
		}
	}
	if ((ai = calloc(1, sizeof(*ai))) == NULL ||
	    (r->n_addresses > 0 &&
	    (ai->addresses = calloc(r->n_addresses, sizeof(*ai->addresses))) == NULL)) {
		free(ai);
		cl_seterr(ctx->err, SR_ELIMIT, ENOMEM, "out of memory");
		ctx->failed = true;
		return;
	}
	snprintf(ai->canonical_name, sizeof(ai->canonical_name), "%s",
	    r->canonical_name != NULL ? r->canonical_name : "");
	ai->count = r->n_addresses;
	for (size_t i = 0; i < r->n_addresses; i++) {
		const Sockrpc__AddressEntry *a = r->addresses[i];

		(void)enum_family_to_host(a->family, &ai->addresses[i].family);
		snprintf(ai->addresses[i].ip, sizeof(ai->addresses[i].ip), "%s",
		    a->ip != NULL ? a->ip : "");
	}
	if (ai->count > 0)
		memcpy(ai->ip, ai->addresses[0].ip, sizeof(ai->ip));
	*(sr_addrinfo **)ctx->out = ai;
}

/* Resolves through the daemon; *out is new, free with sr_addrinfo_free(). */
int
sr_get_address_info(sr_client *c, const char *address, const char *type, int family,
    sr_addrinfo **out, sr_error *err)
{
	Sockrpc__GetAddressInfoRequest req = SOCKRPC__GET_ADDRESS_INFO_REQUEST__INIT;
	struct call_ctx ctx;
	sr_addrinfo *ai = NULL;
	int wire;

	if (c == NULL || address == NULL || out == NULL) {
		cl_seterr(err, SR_EINVAL, 0, "get_address_info needs a client, an address and "
		    "an output");
		return -1;
	}
	if (family_to_wire(family, &wire, err) == -1)
		return -1;
	req.address = (char *)address;
	req.service = (char *)(type != NULL ? type : "");
	req.family = wire;
	cl_call_init(&ctx, c, NULL, cl_deadline_after(CL_RESOLVE_DEADLINE_MS), err);
	ctx.take = address_info_take;
	ctx.out = &ai;
	sockrpc__sock_rpc__get_address_info(&c->service, &req, get_address_info_done, &ctx);
	if (ctx.failed)
		return -1;
	*out = ai;
	return 0;
}

void
sr_addrinfo_free(sr_addrinfo *ai)
{
	if (ai == NULL)
		return;
	free(ai->addresses);
	free(ai);
}

static sr_socket *
socket_alloc(sr_error *err)
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
static int
usable(sr_socket *s, sr_error *err)
{
	if (s == NULL) {
		cl_seterr(err, SR_EINVAL, 0, "no socket");
		return -1;
	}
	if (s->client == NULL) {
		cl_seterr(err, SR_ECLOSED, 0, "socket is closed");
		return -1;
	}
	if (cl_client_broken(s->client, err) == -1)
		return -1;
	if (socket_closed(s)) {
		cl_seterr(err, SR_ECLOSED, 0, "socket is closed");
		return -1;
	}
	return 0;
}

/*
 * The deadline of a call that waits on the network: the handle's timeout plus
 * a margin, none without a timeout. A non-blocking handle never waits.
 */
int64_t
cl_wait_deadline(sr_socket *s, enum cl_wait_kind kind)
{
	bool blocking;
	int timeout;

	pthread_mutex_lock(&s->client->mu);
	blocking = s->state.is_blocking;
	timeout = kind == WAIT_RECEIVE ? s->state.receive_timeout : s->state.send_timeout;
	pthread_mutex_unlock(&s->client->mu);
	if (!blocking)
		return cl_deadline_after(CL_FIXED_DEADLINE_MS);
	if (timeout <= 0)
		return CL_NO_DEADLINE;
	return cl_deadline_after((int64_t)timeout + CL_WAIT_MARGIN_MS);
}

/*
 * Whether plain calls (no flags) on s may overlap: sends go behind, receives fetch
 * ahead. Only on a connected blocking stream, not shut down. A send also needs no
 * send timeout: such a send could only wait or fail, never return short, so
 * returning early hides nothing but when a failure shows; with a timeout the caller
 * asked to learn, in the call, whether the bytes went out in time.
 */
static bool
overlaps(sr_socket *s, int flags, bool sending)
{
	bool yes;

	pthread_mutex_lock(&s->client->mu);
	yes = flags == 0 && s->state.type == SOCK_STREAM && s->state.is_blocking &&
	    s->state.is_connected && !s->state.is_shutdown &&
	    (!sending || s->state.send_timeout <= 0);
	pthread_mutex_unlock(&s->client->mu);
	return yes;
}

/*
 * Sends all of data in max_payload chunks, one answered call each. A chunk sent
 * short (a non-blocking socket with a full buffer) ends the loop. If a later chunk
 * fails after earlier ones were sent, the count so far is returned (and *err says
 * why it stopped) so no sent byte goes unreported.
 */
static long
send_now(sr_socket *s, const void *data, size_t len, uint32_t wire, sr_error *err)
{
	const char *p = data;
	size_t chunk;
	long total = 0, limit, n;

	if (len == 0)
		return send_chunk(s, "", 0, wire, err);
	limit = payload_limit(s);
	while ((size_t)total < len) {
		chunk = len - (size_t)total;
		if (chunk > (size_t)limit)
			chunk = (size_t)limit;
		n = send_chunk(s, p + total, chunk, wire, err);
		if (n == -1)
			return total > 0 ? total : -1;
		total += n;
		if ((size_t)n < chunk)
			break;
	}
	return total;
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

static long
payload_limit(sr_socket *s)
{
	return (long)s->client->max_payload;
}

static long
send_chunk(sr_socket *s, const void *data, size_t len, uint32_t flags, sr_error *err)
{
	Sockrpc__SendRequest req = SOCKRPC__SEND_REQUEST__INIT;
	struct call_ctx ctx;
	struct count_out count = { .asked = len };

	req.handle = s->handle;
	req.data.data = (uint8_t *)(uintptr_t)data;
	req.data.len = len;
	req.flags = flags;
	cl_call_init(&ctx, s->client, s, cl_wait_deadline(s, WAIT_SEND), err);
	ctx.take = send_take;
	ctx.out = &count;
	sockrpc__sock_rpc__send(&s->client->service, &req, send_done, &ctx);
	return ctx.failed ? -1 : count.sent;
}

static void
receive_take(const ProtobufCMessage *msg, struct call_ctx *ctx)
{
	const Sockrpc__ReceiveReply *r = (const Sockrpc__ReceiveReply *)msg;

	if (take_bytes(ctx, &r->data) == 0)
		((struct data_out *)ctx->out)->eos = r->end_of_stream;
}

static int
receive_once(sr_socket *s, long length, uint32_t flags, char **out, size_t *out_len, bool *eos,
    sr_error *err)
{
	Sockrpc__ReceiveRequest req = SOCKRPC__RECEIVE_REQUEST__INIT;
	struct call_ctx ctx;
	struct data_out o;

	memset(&o, 0, sizeof(o));
	o.asked = data_bound(s, length);
	o.buf = out;
	o.len = out_len;
	req.handle = s->handle;
	req.length = length;
	req.flags = flags;
	cl_call_init(&ctx, s->client, s, cl_wait_deadline(s, WAIT_RECEIVE), err);
	ctx.take = receive_take;
	ctx.out = &o;
	sockrpc__sock_rpc__receive(&s->client->service, &req, receive_done, &ctx);
	if (ctx.failed)
		return -1;
	*eos = o.eos;
	return 0;
}

static void
read_take(const ProtobufCMessage *msg, struct call_ctx *ctx)
{
	(void)take_bytes(ctx, &((const Sockrpc__ReadReply *)msg)->data);
}

static int
read_once(sr_socket *s, long length, char **out, size_t *out_len, sr_error *err)
{
	Sockrpc__ReadRequest req = SOCKRPC__READ_REQUEST__INIT;
	struct call_ctx ctx;
	struct data_out o;

	memset(&o, 0, sizeof(o));
	o.asked = data_bound(s, length);
	o.buf = out;
	o.len = out_len;
	req.handle = s->handle;
	req.length = length;
	cl_call_init(&ctx, s->client, s, cl_wait_deadline(s, WAIT_RECEIVE), err);
	ctx.take = read_take;
	ctx.out = &o;
	sockrpc__sock_rpc__read(&s->client->service, &req, read_done, &ctx);
	return ctx.failed ? -1 : 0;
}

/* Appends part (malloc'd or NULL; freed) to *all, which stays NUL-terminated. */
static int
append(char **all, size_t *have, char *part, size_t part_len, sr_error *err)
{
	char *grown = realloc(*all, *have + part_len + 1);

	if (grown == NULL) {
		free(part);
		cl_seterr(err, SR_ELIMIT, ENOMEM, "out of memory");
		return -1;
	}
	if (part_len > 0)
		memcpy(grown + *have, part, part_len);
	free(part);
	*have += part_len;
	grown[*have] = '\0';
	*all = grown;
	return 0;
}

/* Copies reply bytes into a new buffer (never NULL, even when empty). */
static int
take_bytes(struct call_ctx *ctx, const ProtobufCBinaryData *data)
{
	struct data_out *o = ctx->out;
	char *buf;

	if (data->len > o->asked) {
		cl_call_violation(ctx,
		    "sockrpcd returned %zu bytes where at most %zu were asked for", data->len,
		    o->asked);
		return -1;
	}
	if ((buf = malloc(data->len + 1)) == NULL) {
		cl_seterr(ctx->err, SR_ELIMIT, ENOMEM, "out of memory");
		ctx->failed = true;
		return -1;
	}
	if (data->len > 0)
		memcpy(buf, data->data, data->len);
	buf[data->len] = '\0';
	*o->buf = buf;
	*o->len = data->len;
	return 0;
}

/* A Send or SendTo count: 0 up to the bytes the call carried. */
static int
take_count(struct call_ctx *ctx, int64_t sent)
{
	struct count_out *o = ctx->out;

	if (sent < 0 || (uint64_t)sent > o->asked) {
		cl_call_violation(ctx, "sockrpcd reports %lld bytes sent of %zu", (long long)sent,
		    o->asked);
		return -1;
	}
	o->sent = (long)sent;
	return 0;
}

static bool
valid_port(struct call_ctx *ctx, const char *what, int32_t port)
{
	if (port >= 0 && port <= 65535)
		return true;
	cl_call_violation(ctx, "%s with port %d", what, (int)port);
	return false;
}

/* The most data a receive of `length` (negative: all pending) may bring. */
static size_t
data_bound(sr_socket *s, long length)
{
	return length < 0 || length > payload_limit(s) ? (size_t)payload_limit(s) : (size_t)length;
}

static int
family_to_wire(int family, int *wire, sr_error *err)
{
	const char *name;

	if (enum_family_from_host(family, wire) == 0)
		return 0;
	if ((name = cl_constant_name("AF_", family)) != NULL)
		cl_seterr(err, SR_EUNSUPPORTED, 0, "%s is not supported by sockrpc", name);
	else
		cl_seterr(err, SR_EUNSUPPORTED, 0,
		    "address family %d is not supported by sockrpc", family);
	return -1;
}
