/*
 * replies.c - what a reply means to its call: its Status (success, or the daemon's error
 * into the caller's sr_error), its SocketState (the handle's new state, checked), and
 * the method's own fields through the call's take(). A reply that breaks the protocol
 * breaks the connection.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "enums.h"
#include "internal.h"

/*
 * The closure every stub passes (through a typed trampoline). A NULL reply
 * means invoke() failed and already filled ctx->err. Every reply's field 1 is
 * its Status and, where present, field 2 its SocketState; they are found
 * through the message descriptor so this works for every method.
 */
void
cl_call_done(const ProtobufCMessage *reply, void *closure_data)
{
	struct call_ctx *ctx = closure_data;
	const ProtobufCFieldDescriptor *f;
	const Sockrpc__Status *st = NULL;
	const Sockrpc__SocketState *state = NULL;
	sr_state fresh;
	sr_error e;

	if (reply == NULL) {
		ctx->failed = true;
		return;
	}
	f = protobuf_c_message_descriptor_get_field(reply->descriptor, 1);
	if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE &&
	    f->descriptor == &sockrpc__status__descriptor)
		st = *(Sockrpc__Status *const *)((const char *)reply + f->offset);
	f = protobuf_c_message_descriptor_get_field(reply->descriptor, 2);
	if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE &&
	    f->descriptor == &sockrpc__socket_state__descriptor)
		state = *(Sockrpc__SocketState *const *)((const char *)reply + f->offset);

	if (state != NULL && ctx->socket != NULL) {
		if (cl_state_from_wire(&fresh, state, &e) == -1) {
			cl_call_violation(ctx, "%s", e.message);
			return;
		}
		/* A new handle (sr_socket_new) learns its id from this state. */
		if (ctx->socket->handle != 0 && fresh.id != ctx->socket->handle) {
			cl_call_violation(ctx,
			                  "sockrpcd answered for handle %ld with the state of "
			                  "handle %ld",
			                  ctx->socket->handle, fresh.id);
			return;
		}
		/* A reply collected late (a write-behind send) must not undo a newer state,
		 * nor reopen the handles of a connection that broke meanwhile. */
		pthread_mutex_lock(&ctx->client->mu);
		if (!ctx->client->broken && ctx->arrival > ctx->socket->state_arrival) {
			ctx->socket->state = fresh;
			ctx->socket->state_arrival = ctx->arrival;
		}
		pthread_mutex_unlock(&ctx->client->mu);
	}
	if (st != NULL && st->code != SOCKRPC__CODE__OK) {
		cl_seterr_status(ctx->err, st);
		ctx->failed = true;
		return;
	}
	if (ctx->take != NULL)
		ctx->take(reply, ctx);
}

/*
 * A reply that breaks the protocol: fails the call with SR_EPROTO and breaks the
 * connection (nothing the daemon says after it can be trusted).
 */
void
cl_call_violation(struct call_ctx *ctx, const char *fmt, ...)
{
	sr_error e;
	va_list ap;

	e.code = SR_EPROTO;
	e.sys_errno = 0;
	va_start(ap, fmt);
	vsnprintf(e.message, sizeof(e.message), fmt, ap);
	va_end(ap);
	cl_client_fail(ctx->client, &e);
	cl_copyerr(ctx->err, &e);
	ctx->failed = true;
}

/* A port in a reply: 0-65535, else a violation (cl_call_violation). */
bool
cl_call_valid_port(struct call_ctx *ctx, const char *what, int32_t port)
{
	if (port >= 0 && port <= 65535)
		return true;
	cl_call_violation(ctx, "%s with port %d", what, (int)port);
	return false;
}

/*
 * Wire state -> host state. Returns 0, or -1 with *err filled (out untouched) when
 * the daemon sent a value no socket can have: an enum this host cannot name, a
 * negative handle id, a port out of 0-65535.
 */
int
cl_state_from_wire(sr_state *out, const Sockrpc__SocketState *in, sr_error *err)
{
	int family, type, protocol, how = -1;

	if (enum_family_to_host(in->family, &family) == -1 ||
	    enum_type_to_host(in->type, &type) == -1 ||
	    enum_protocol_to_host(in->protocol, &protocol) == -1 ||
	    (in->shutdown_reason != -1 && enum_shutdown_to_host(in->shutdown_reason, &how) == -1)) {
		cl_seterr(err, SR_EPROTO, 0,
		          "sockrpcd sent a socket state with an unknown "
		          "family, type, protocol or shutdown (%d, %d, %d, %d)",
		          (int)in->family, (int)in->type, (int)in->protocol,
		          (int)in->shutdown_reason);
		return -1;
	}
	if (in->id < 0 || in->id > LONG_MAX) {
		cl_seterr(err, SR_EPROTO, 0, "sockrpcd sent a socket state with handle id %lld",
		          (long long)in->id);
		return -1;
	}
	/* An AF_UNIX socket has no port: sockrpcd echoes what connect was given. */
	if (family != AF_UNIX && (in->port < 0 || in->port > 65535)) {
		cl_seterr(err, SR_EPROTO, 0, "sockrpcd sent a socket state with port %d",
		          (int)in->port);
		return -1;
	}
	/* A copy, cut to fit, without snprintf: every state-carrying reply comes here. */
	if (in->host != NULL) {
		size_t n = strnlen(in->host, sizeof(out->host) - 1);

		memcpy(out->host, in->host, n);
		out->host[n] = '\0';
	} else {
		out->host[0] = '\0';
	}
	out->port = family == AF_UNIX ? 0 : in->port;
	out->family = family;
	out->type = type;
	out->protocol = protocol;
	out->id = (long)in->id;
	out->is_client = in->is_client;
	out->is_bound = in->is_bound;
	out->is_connected = in->is_connected;
	out->is_listening = in->is_listening;
	out->is_closed = in->is_closed;
	out->is_shutdown = in->is_shutdown;
	out->is_blocking = in->is_blocking;
	out->shutdown_reason = how;
	out->send_timeout = in->send_timeout;
	out->receive_timeout = in->receive_timeout;
	return 0;
}
