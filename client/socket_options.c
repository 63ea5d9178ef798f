/*
 * socket_options.c - socket options (SOL_SOCKET, and the TCP, IP and IPv6 options the wire
 * names, with their level) and blocking mode: host constants to wire enums, the call,
 * the value back.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "enums.h"
#include "internal.h"

CL_CLOSURE(set_option_done, Sockrpc__SetOptionReply)
CL_CLOSURE(get_option_done, Sockrpc__GetOptionReply)
CL_CLOSURE(set_blocking_done, Sockrpc__SetBlockingReply)

int
sr_set_option(sr_socket *s, int option, long value, sr_error *err)
{
	return sr_set_option_level(s, SOL_SOCKET, option, value, err);
}

/* The wire option for (level, option), or -1 with *err filled. */
static int
option_to_wire(int level, int option, int *wire, sr_error *err)
{
	if (enum_option_level_from_host(level, option, wire) == 0)
		return 0;
	if (level == SOL_SOCKET)
		cl_seterr(err, SR_EUNSUPPORTED, 0,
		          "option %d is not a SOL_SOCKET option supported by sockrpc", option);
	else
		cl_seterr(err, SR_EUNSUPPORTED, ENOPROTOOPT,
		          "option %d of level %d is not supported by sockrpc", option, level);
	return -1;
}

int
sr_set_option_level(sr_socket *s, int level, int option, long value, sr_error *err)
{
	Sockrpc__SetOptionRequest req = SOCKRPC__SET_OPTION_REQUEST__INIT;
	struct call_ctx ctx;
	int wire;

	if (cl_socket_usable(s, err) == -1)
		return -1;
	if (option_to_wire(level, option, &wire, err) == -1)
		return -1;
	req.handle = s->handle;
	req.option = wire;
	req.value = value;
	cl_call_init(&ctx, s->client, s, cl_deadline_after(CL_FIXED_DEADLINE_MS), err);
	sockrpc__sock_rpc__set_option(&s->client->service, &req, set_option_done, &ctx);
	if (ctx.failed)
		return -1;
	/* A close with a positive linger returns once the peer has the data: it waits. */
	if (option == SO_LINGER)
		s->lingers = value > 0;
	return 0;
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
	return sr_get_option_level(s, SOL_SOCKET, option, value, err);
}

int
sr_get_option_level(sr_socket *s, int level, int option, long *value, sr_error *err)
{
	Sockrpc__GetOptionRequest req = SOCKRPC__GET_OPTION_REQUEST__INIT;
	struct call_ctx ctx;
	long v = 0;
	int wire;

	if (cl_socket_usable(s, err) == -1)
		return -1;
	if (option_to_wire(level, option, &wire, err) == -1)
		return -1;
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

	if (cl_socket_usable(s, err) == -1)
		return -1;
	req.handle = s->handle;
	req.blocking = blocking;
	cl_call_init(&ctx, s->client, s, cl_deadline_after(CL_FIXED_DEADLINE_MS), err);
	sockrpc__sock_rpc__set_blocking(&s->client->service, &req, set_blocking_done, &ctx);
	return ctx.failed ? -1 : 0;
}
