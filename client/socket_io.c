/*
 * socket_io.c - the stubs that move data: send, send_file, receive, read, send_to,
 * receive_from. Plain sends and receives on a connected blocking stream may overlap
 * their calls (send_window.c writes behind, receive_ahead.c reads ahead), each fast
 * path unless SOCKRPC_DISABLE turns it off (fastpath.c); otherwise, and always for
 * the rest, each chunk is one call answered before the next.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "enums.h"
#include "internal.h"

CL_CLOSURE(send_done, Sockrpc__SendReply)
CL_CLOSURE(receive_done, Sockrpc__ReceiveReply)
CL_CLOSURE(read_done, Sockrpc__ReadReply)
CL_CLOSURE(send_to_done, Sockrpc__SendToReply)
CL_CLOSURE(receive_from_done, Sockrpc__ReceiveFromReply)

/* Where take() functions put data replies. */
struct data_out {
	size_t asked; /* the most data the call may bring */
	char **buf;
	size_t *len;
	bool eos;
	char *host; /* receive_from: 64 bytes */
	int *port;
};

/* Where send_take() puts the count of a Send or SendTo reply. */
struct count_out {
	size_t asked; /* bytes the call carried: the most it can have sent */
	long sent;
};

static bool overlaps(sr_socket *s, int flags, bool sending);
static long send_now(sr_socket *s, const void *data, size_t len, uint32_t wire, sr_error *err);
static long send_chunk(sr_socket *s, const void *data, size_t len, uint32_t flags, sr_error *err);
static int receive_once(sr_socket *s, long length, uint32_t flags, char **out, size_t *out_len,
                        bool *eos, sr_error *err);
static int read_once(sr_socket *s, long length, char **out, size_t *out_len, sr_error *err);
static int take_bytes(struct call_ctx *ctx, const ProtobufCBinaryData *data);
static int take_count(struct call_ctx *ctx, int64_t sent);
static size_t data_bound(sr_socket *s, long length);
static int append(char **all, size_t *have, char *part, size_t part_len, sr_error *err);

/*
 * Sends all of data. On a connected, blocking stream socket with no send timeout the
 * calls are written behind (send_window.c, unless SOCKRPC_DISABLE has write-behind): sr_send
 * returns once they are on their way, and a failure shows in the next sr_send. Otherwise each chunk
 * waits for its answer (send_now).
 */
long
sr_send(sr_socket *s, const void *data, size_t len, int flags, sr_error *err)
{
	uint32_t wire;
	long n;

	if (cl_socket_usable(s, err) == -1)
		return -1;
	if (enum_msg_flags_from_host(flags, &wire) == -1) {
		cl_seterr(err, SR_EUNSUPPORTED, 0, "send flags 0x%x are not supported by sockrpc",
		          (unsigned)flags);
		return -1;
	}
	pthread_mutex_lock(&s->send_mu);
	if (len > 0 && cl_fastpath_on(CL_FAST_WRITE_BEHIND) && overlaps(s, flags, true))
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

	if (cl_socket_usable(s, err) == -1)
		return -1;
	limit = cl_socket_payload_limit(s);
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

	if (cl_socket_usable(s, err) == -1)
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
	else if (length > cl_socket_payload_limit(s))
		length = cl_socket_payload_limit(s);
	pthread_mutex_lock(&s->recv_mu);
	rc = cl_ahead_take(s, length, flags, out, out_len, err);
	ahead = rc == 1;
	if (rc == 0)
		rc = receive_once(s, length, wire, out, out_len, &eos, err) == 0 ? 1 : -1;
	/* A full answer, or data that read-ahead found: more is likely waiting, so fetch it
	 * while the caller works. A short answer of its own (a request and its response,
	 * say) starts nothing. */
	if (rc == 1 && length > 0 && *out_len > 0 && (ahead || *out_len == (size_t)length) &&
	    cl_fastpath_on(CL_FAST_READ_AHEAD) && overlaps(s, flags, false))
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

	if (cl_socket_usable(s, err) == -1)
		return -1;
	if (out == NULL || out_len == NULL) {
		cl_seterr(err, SR_EINVAL, 0, "no output buffer");
		return -1;
	}
	if (length < 0)
		length = 1024;
	limit = cl_socket_payload_limit(s);
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
	struct count_out count = {.asked = len};
	uint32_t wire;

	if (cl_socket_usable(s, err) == -1)
		return -1;
	if (enum_msg_flags_from_host(flags, &wire) == -1) {
		cl_seterr(err, SR_EUNSUPPORTED, 0, "send flags 0x%x are not supported by sockrpc",
		          (unsigned)flags);
		return -1;
	}
	if (len > (size_t)cl_socket_payload_limit(s)) {
		cl_seterr(err, SR_EINVAL, 0,
		          "datagram of %zu bytes is larger than the daemon's limit of %ld", len,
		          cl_socket_payload_limit(s));
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

	if (!cl_call_valid_port(ctx, "ReceiveFromReply", r->port) ||
	    take_bytes(ctx, &r->data) == -1)
		return;
	if (o->host != NULL)
		snprintf(o->host, 64, "%s", r->host != NULL ? r->host : "");
	if (o->port != NULL)
		*o->port = r->port;
}

/* One datagram (length negative: all of it) and its sender; host may be NULL. */
int
sr_receive_from(sr_socket *s, long length, int flags, char **out, size_t *out_len, char host[64],
                int *port, sr_error *err)
{
	Sockrpc__ReceiveFromRequest req = SOCKRPC__RECEIVE_FROM_REQUEST__INIT;
	struct pending *started = NULL;
	struct call_ctx ctx;
	struct data_out o;
	uint32_t wire;
	bool owed;

	/* After sr_socket_send_to: the receive goes first, then the creation's and the
	 * send's outcomes are read (they come before its reply), so the exchange waits once. */
	if (cl_socket_check(s, false, err) == -1)
		return -1;
	owed = cl_owed_pending(s);
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
	else if (length > cl_socket_payload_limit(s))
		length = cl_socket_payload_limit(s);
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
	if (!owed) {
		sockrpc__sock_rpc__receive_from(&s->client->service, &req, receive_from_done, &ctx);
		return ctx.failed ? -1 : 0;
	}
	ctx.started = &started;
	sockrpc__sock_rpc__receive_from(&s->client->service, &req, NULL, &ctx);
	if (started == NULL)
		return -1;
	ctx.started = NULL;
	if (cl_owed_collect(s, err) == -1) {
		/* Nothing will come (no socket, or the request never went): the receive is
		 * answered when the socket closes. */
		cl_call_abandon(s->client, started);
		return -1;
	}
	cl_call_finish(s->client, started, &ctx);
	return ctx.failed ? -1 : 0;
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
	limit = cl_socket_payload_limit(s);
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

static long
send_chunk(sr_socket *s, const void *data, size_t len, uint32_t flags, sr_error *err)
{
	Sockrpc__SendRequest req = SOCKRPC__SEND_REQUEST__INIT;
	struct call_ctx ctx;
	struct count_out count = {.asked = len};

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
		                  "sockrpcd returned %zu bytes where at most %zu were asked for",
		                  data->len, o->asked);
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

/* The most data a receive of `length` (negative: all pending) may bring. */
static size_t
data_bound(sr_socket *s, long length)
{
	return length < 0 || length > cl_socket_payload_limit(s)
	           ? (size_t)cl_socket_payload_limit(s)
	           : (size_t)length;
}
