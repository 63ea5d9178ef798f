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

static int
set_blocking(int fd, bool blocking)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags == -1)
		return -1;
	flags = blocking ? flags & ~O_NONBLOCK : flags | O_NONBLOCK;
	return fcntl(fd, F_SETFL, flags);
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
