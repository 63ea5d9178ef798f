/*
 * handback.c - sockets handed back: where the policy's rule says `handback`, the daemon
 * passes a connected or accepted socket itself with the reply to a Handback call
 * (SCM_RIGHTS) and keeps no copy. The descriptor arrives through the transport (take_fd,
 * transport.h), is matched to its reply by the reader (calls.c) and checked here before
 * the caller gets it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

CL_CLOSURE(handback_done, Sockrpc__HandbackReply)

static pthread_once_t method_once = PTHREAD_ONCE_INIT;
static unsigned method_index;

static void
find_method(void)
{
	const ProtobufCMethodDescriptor *m = protobuf_c_service_descriptor_get_method_by_name(
	    &sockrpc__sock_rpc__descriptor, "Handback");

	method_index = (unsigned)(m - sockrpc__sock_rpc__descriptor.methods);
}

/* The Handback rpc's index in the service, which its replies carry as their method. */
unsigned
cl_handback_method(void)
{
	pthread_once(&method_once, find_method);
	return method_index;
}

struct taken {
	int fd;
	bool connecting;
};

/* A successful reply must bring a socket; anything else breaks the protocol. */
static void
handback_take(const ProtobufCMessage *msg, struct call_ctx *ctx)
{
	struct taken *out = ctx->out;
	struct stat st;

	if (ctx->passed_fd == -1) {
		cl_call_violation(ctx, "sockrpcd's handback reply came without its descriptor "
		                       "(or the kernel dropped it: out of descriptors?)");
		return;
	}
	if (fstat(ctx->passed_fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
		cl_call_violation(ctx, "sockrpcd handed back a descriptor that is not a socket");
		return;
	}
	out->fd = ctx->passed_fd;
	out->connecting = ((const Sockrpc__HandbackReply *)msg)->connecting;
	ctx->passed_fd = -1;
}

/* One F_SETFL, without reading the flags first: of the flags F_SETFL changes, a socket
 * the daemon hands back has none but O_NONBLOCK (the open file is the caller's alone). */
static int
set_blocking(int fd, bool blocking)
{
	return fcntl(fd, F_SETFL, blocking ? 0 : O_NONBLOCK);
}

/* SR_EUNSUPPORTED unless c's transport carries descriptors and its daemon knows Handback
 * (protocol 1.2: an older one would end the session over an unknown method). */
static int
handback_possible(sr_client *c, sr_error *err)
{
	if (c->transport->ops->take_fd == NULL) {
		cl_seterr(err, SR_EUNSUPPORTED, 0,
		          "this connection to sockrpcd cannot carry descriptors: handback needs "
		          "the daemon's Unix socket");
		return -1;
	}
	if (c->daemon_minor < 2) {
		cl_seterr(err, SR_EUNSUPPORTED, 0,
		          "sockrpcd speaks protocol 1.%u; handback needs 1.2", c->daemon_minor);
		return -1;
	}
	return 0;
}

/* The Handback call itself; the caller holds s's send and receive locks. */
static int
take_fd_locked(sr_socket *s, sr_error *err)
{
	Sockrpc__HandbackRequest req = SOCKRPC__HANDBACK_REQUEST__INIT;
	struct taken out = {.fd = -1};
	struct call_ctx ctx;
	size_t held;
	bool blocking;
	char ebuf[128];

	if (cl_window_drain(s, CL_LINGER_MS, err) != 0)
		return -1;
	if ((held = cl_ahead_held(s)) > 0) {
		cl_seterr(err, SR_ESTATE, 0,
		          "the library holds %zu bytes it read ahead from this socket: receive "
		          "them before taking its descriptor",
		          held);
		return -1;
	}
	req.handle = s->handle;
	cl_call_init(&ctx, s->client, s, cl_deadline_after(CL_FIXED_DEADLINE_MS), err);
	ctx.take = handback_take;
	ctx.out = &out;
	sockrpc__sock_rpc__handback(&s->client->service, &req, handback_done, &ctx);
	if (ctx.failed) {
		if (out.fd != -1)
			close(out.fd);
		return -1;
	}
	pthread_mutex_lock(&s->client->mu);
	blocking = s->state.is_blocking;
	pthread_mutex_unlock(&s->client->mu);
	/* The daemon's sockets are all non-blocking, and the flag lives on the open file,
	 * which is the caller's alone now. */
	if (set_blocking(out.fd, blocking) != 0) {
		int saved = errno;

		close(out.fd);
		cl_seterr(err, SR_EOS, saved, "handed-back socket: fcntl failed: %s",
		          cl_errno_text(saved, ebuf, sizeof(ebuf)));
		return -1;
	}
	return out.fd;
}

int
sr_socket_take_fd(sr_socket *s, sr_error *err)
{
	int fd;

	if (cl_socket_usable(s, err) == -1 || handback_possible(s->client, err) == -1)
		return -1;
	pthread_mutex_lock(&s->send_mu);
	pthread_mutex_lock(&s->recv_mu);
	fd = take_fd_locked(s, err);
	pthread_mutex_unlock(&s->recv_mu);
	pthread_mutex_unlock(&s->send_mu);
	return fd;
}

/* The first failure of calls finished together, in call order, into err; true if any. */
static bool
first_failure(const struct call_ctx *ctx, const sr_error *errs, unsigned n, sr_error *err)
{
	for (unsigned i = 0; i < n; i++) {
		if (ctx[i].failed) {
			cl_copyerr(err, &errs[i]);
			return true;
		}
	}
	return false;
}

/*
 * sr_connect_fd in one round trip (protocol 1.2, client-chosen ids): Socket, SetBlocking
 * (non-blocking only), Connect and Handback leave in one write. The daemon answers a
 * loopback connect in the same pass, and a non-blocking one once under way, so the
 * Handback behind it finds the socket connected or connecting; a blocking connect still
 * under way answers it ESTATE, and the descriptor is asked for again once Connect's
 * reply is in.
 */
static int
connect_fd_together(sr_client *c, int family, int type, const char *host, int port, int timeout_ms,
                    sr_error *err)
{
	bool nonblock = (type & SOCK_NONBLOCK) != 0;
	Sockrpc__SocketRequest sreq = SOCKRPC__SOCKET_REQUEST__INIT;
	Sockrpc__SetBlockingRequest breq = SOCKRPC__SET_BLOCKING_REQUEST__INIT;
	Sockrpc__ConnectRequest creq = SOCKRPC__CONNECT_REQUEST__INIT;
	Sockrpc__HandbackRequest hreq = SOCKRPC__HANDBACK_REQUEST__INIT;
	unsigned methods[CL_MAX_TOGETHER], n = 0, handback;
	const ProtobufCMessage *inputs[CL_MAX_TOGETHER];
	struct pending *started[CL_MAX_TOGETHER];
	struct call_ctx ctx[CL_MAX_TOGETHER];
	sr_error errs[CL_MAX_TOGETHER];
	struct taken out = {.fd = -1};
	int64_t fixed = cl_deadline_after(CL_FIXED_DEADLINE_MS), connect_deadline;
	int kind = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC), fd;
	sr_socket *s;

	if (cl_socket_request(family, kind, 0, &sreq, err) == -1)
		return -1;
	if ((s = cl_socket_named(c, family, kind, 0, &sreq, err)) == NULL)
		return -1;
	methods[n] = cl_method_index("Socket");
	inputs[n++] = &sreq.base;
	if (nonblock) {
		breq.handle = sreq.handle;
		breq.blocking = false;
		methods[n] = cl_method_index("SetBlocking");
		inputs[n++] = &breq.base;
	}
	creq.handle = sreq.handle;
	creq.host = (char *)(host != NULL ? host : "");
	creq.port = port;
	creq.timeout_ms = timeout_ms;
	methods[n] = cl_method_index("Connect");
	inputs[n++] = &creq.base;
	hreq.handle = sreq.handle;
	handback = n;
	methods[n] = cl_handback_method();
	inputs[n++] = &hreq.base;
	if (cl_calls_start_together(c, n, methods, inputs, fixed, started, err) == -1) {
		pthread_mutex_lock(&c->mu);
		s->state.is_closed = true; /* nothing was sent: no handle to close */
		pthread_mutex_unlock(&c->mu);
		sr_socket_free(s);
		return -1;
	}
	if (timeout_ms == 0)
		connect_deadline = CL_NO_DEADLINE;
	else
		connect_deadline = cl_deadline_after(
		    (int64_t)(timeout_ms < 0 ? CL_CONNECT_DEFAULT_MS : timeout_ms) +
		    CL_WAIT_MARGIN_MS);
	for (unsigned i = 0; i < n; i++)
		cl_call_init(&ctx[i], c, s, i == handback - 1 ? connect_deadline : fixed, &errs[i]);
	ctx[handback].take = handback_take;
	ctx[handback].out = &out;
	for (unsigned i = 0; i < n; i++)
		cl_call_finish(c, started[i], &ctx[i]);
	if (ctx[0].failed) { /* no socket: no handle to close */
		cl_copyerr(err, &errs[0]);
		pthread_mutex_lock(&c->mu);
		s->state.is_closed = true;
		pthread_mutex_unlock(&c->mu);
		sr_socket_free(s);
		return -1;
	}
	fd = out.fd;
	if (fd == -1 && !first_failure(ctx, errs, handback, err)) {
		/* ESTATE: connected after the Handback was answered; ask again now. */
		if (errs[handback].code == SR_ESTATE)
			fd = sr_socket_take_fd(s, err);
		else
			cl_copyerr(err, &errs[handback]);
	} else if (fd != -1 && set_blocking(fd, !nonblock) != 0) {
		int saved = errno;

		close(fd);
		fd = -1;
		cl_seterr(err, SR_EOS, saved, "handed-back socket: fcntl failed");
	}
	sr_socket_free(s);
	return fd;
}

int
sr_connect_fd(sr_client *c, int family, int type, const char *host, int port, int timeout_ms,
              sr_error *err)
{
	bool nonblock = (type & SOCK_NONBLOCK) != 0;
	sr_socket *s;
	sr_error e;
	int fd = -1;

	if (c == NULL) {
		cl_seterr(err, SR_EINVAL, 0, "no client");
		return -1;
	}
	if (handback_possible(c, err) == -1)
		return -1;
	if (c->client_ids && cl_fastpath_on(CL_FAST_PIPELINED))
		return connect_fd_together(c, family, type, host, port, timeout_ms, err);
	if ((s = sr_socket_new(c, family, type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC), 0, &e)) == NULL)
		goto fail;
	/* Non-blocking, connect answers once the connection is under way, and the descriptor
	 * comes back while it is: the caller waits for POLLOUT, as after connect(2). */
	if ((nonblock && sr_set_blocking(s, false, &e) != 0) ||
	    sr_connect(s, host, port, timeout_ms, &e) != 0 || (fd = sr_socket_take_fd(s, &e)) < 0)
		goto fail;
	sr_socket_free(s);
	return fd;
fail:
	sr_socket_free(s);
	cl_copyerr(err, &e);
	return -1;
}

int
sr_accept_fd(sr_socket *listener, sr_error *err)
{
	sr_socket *s;
	int fd;

	/* Checked first, so that no peer is accepted only to be hung up on. */
	if (cl_socket_usable(listener, err) == -1 || handback_possible(listener->client, err) == -1)
		return -1;
	if ((s = sr_accept(listener, err)) == NULL)
		return -1;
	fd = sr_socket_take_fd(s, err);
	sr_socket_free(s); /* closes the accepted connection if it was not handed back */
	return fd;
}
