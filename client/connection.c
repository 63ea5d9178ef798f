/*
 * connection.c - a client's connection to sockrpcd: open it (a path or unix:PATH over
 * transport_unix.c, tls://HOST:PORT over transport_tls.c), say Hello and take the limits and the
 * reply channel the daemon announces, and close it. Calls themselves are calls.c's; handles are
 * socket.c's, which hears of a close through the hooks it registered (c->hooks).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "frame.h"
#include "internal.h"

static sr_client *client_new(const char *path, sr_error *err);
static sr_client *client_start(sr_client *c, struct transport *t, sr_error *err);
static int client_hello(sr_client *c, sr_error *err);
static void client_free(sr_client *c);

const char *
sr_default_socket_path(void)
{
	static _Thread_local char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 64];
	const char *dir;

	if (geteuid() == 0)
		return "/run/sockrpc/sockrpc.sock";
	dir = getenv("XDG_RUNTIME_DIR");
	if (dir == NULL || dir[0] == '\0')
		return "/run/sockrpc/sockrpc.sock"; /* where the daemon listens without one */
	snprintf(path, sizeof(path), "%s/sockrpc.sock", dir);
	return path;
}

/* Returns a new client; free with sr_client_close(). */
sr_client *
sr_client_open(const char *path, sr_error *err)
{
	struct transport *t;
	sr_client *c;

	if (path == NULL) {
		path = getenv("SOCKRPC_SOCKET");
		if (path == NULL || path[0] == '\0')
			path = sr_default_socket_path();
	}
	if ((c = client_new(path, err)) == NULL)
		return NULL;
	if (strncmp(path, "tls://", 6) == 0)
		t = transport_tls_connect(path, err);
	else
		t = transport_unix_connect(strncmp(path, "unix:", 5) == 0 ? path + 5 : path, err);
	if (t == NULL) {
		client_free(c);
		return NULL;
	}
	return client_start(c, t, err);
}

/*
 * As sr_client_open, saying in Hello that the session is for claimed_exe (a launcher
 * running that program; NULL or "": nothing). Returns a new client; free with
 * sr_client_close().
 */
sr_client *
sr_client_open_claiming(const char *path, const char *claimed_exe, sr_error *err)
{
	struct transport *t;
	sr_client *c;

	if (claimed_exe != NULL && strlen(claimed_exe) >= sizeof(c->claimed_exe)) {
		cl_seterr(err, SR_EINVAL, 0, "claimed exe longer than %zu bytes",
		          sizeof(c->claimed_exe) - 1);
		return NULL;
	}
	if (path == NULL) {
		path = getenv("SOCKRPC_SOCKET");
		if (path == NULL || path[0] == '\0')
			path = sr_default_socket_path();
	}
	if ((c = client_new(path, err)) == NULL)
		return NULL;
	if (claimed_exe != NULL)
		strcpy(c->claimed_exe, claimed_exe);
	if ((t = transport_unix_connect(path, err)) == NULL) {
		client_free(c);
		return NULL;
	}
	return client_start(c, t, err);
}

/*
 * Returns a new client speaking on fd, a connected stream socket whose other end is
 * the daemon (taken, and closed on failure too); free with sr_client_close(). For
 * tests and fuzzing, which bring their own daemon.
 */
sr_client *
cl_client_adopt(int fd, sr_error *err)
{
	struct transport *t;
	sr_client *c;

	if ((c = client_new("", err)) == NULL) {
		close(fd);
		return NULL;
	}
	if ((t = transport_unix_adopt(fd, err)) == NULL) {
		client_free(c);
		return NULL;
	}
	return client_start(c, t, err);
}

unsigned long long
sr_client_session_id(const sr_client *c)
{
	return c == NULL ? 0 : (unsigned long long)c->session_id;
}

const char *
sr_client_daemon_version(const sr_client *c)
{
	return c == NULL ? "" : c->daemon_version;
}

/*
 * Ends the session: the daemon closes every handle of a session that ends, so
 * no Close is sent. sr_socket objects still allocated are detached, marked
 * closed and stay readable; the caller frees them with sr_socket_free(), before
 * or after this. No call may be in progress on c (from any thread) when it is
 * closed.
 */
void
sr_client_close(sr_client *c)
{
	if (c == NULL)
		return;
	if (c->hooks != NULL)
		c->hooks->closing(c);
	client_free(c);
}

static sr_client *
client_new(const char *path, sr_error *err)
{
	sr_client *c;

	if (strlen(path) >= sizeof(c->path)) {
		cl_seterr(err, SR_EINVAL, 0, "socket path too long: %s", path);
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		cl_seterr(err, SR_ELIMIT, ENOMEM, "out of memory");
		return NULL;
	}
	c->max_frame = SR_MAX_FRAME;
	c->max_payload = SR_MAX_PAYLOAD;
	snprintf(c->path, sizeof(c->path), "%s", path);
	cl_calls_init(c);
	cl_pool_init(c);
	return c;
}

/* Says Hello over t (taken). Returns c, or NULL (c freed). */
static sr_client *
client_start(sr_client *c, struct transport *t, sr_error *err)
{
	c->transport = t;
	if (client_hello(c, err) == -1) {
		const char *why = t->ops->failure ? t->ops->failure(t) : NULL;

		/* TLS 1.3: the daemon checks our certificate after our side of the handshake
		 * is done, so its refusal arrives as an alert on the first read. */
		if (why != NULL)
			cl_seterr(err, SR_EDAEMON, 0,
			          "sockrpcd at %s refused this client (TLS): %s", c->path, why);
		client_free(c);
		return NULL;
	}
	return c;
}

static void
hello_take(const ProtobufCMessage *msg, struct call_ctx *ctx)
{
	const Sockrpc__HelloReply *r = (const Sockrpc__HelloReply *)msg;
	sr_client *c = ctx->client;

	if (r->major != SR_PROTOCOL_MAJOR) {
		cl_seterr(ctx->err, SR_EPROTO, 0,
		          "sockrpcd speaks protocol %u.%u, this library %u.%u", r->major, r->minor,
		          SR_PROTOCOL_MAJOR, SR_PROTOCOL_MINOR);
		ctx->failed = true;
		return;
	}
	c->session_id = r->session_id;
	c->daemon_minor = r->minor;
	snprintf(c->daemon_version, sizeof(c->daemon_version), "%s",
	         r->daemon_version ? r->daemon_version : "");
	/* Announced limits are kept only below the library's own (CLIENT_MAX_*). */
	if (r->max_frame != 0 && r->max_frame < CLIENT_MAX_FRAME)
		c->max_frame = r->max_frame;
	if (r->max_payload != 0 && r->max_payload < CLIENT_MAX_PAYLOAD)
		c->max_payload = r->max_payload;
	c->max_handles = r->max_handles;
	/* From 1.2 the client may name the sockets it creates (socket_pipeline.c). */
	if (r->minor >= 2) {
		c->client_ids = true;
		c->next_handle_id = SR_CLIENT_HANDLE_BASE;
	}
	/* Only a transport that asked for a reply channel switches to one. */
	if (r->reply_channel && c->transport->ops->use_reply_channel != NULL &&
	    c->transport->ops->use_reply_channel(c->transport, ctx->err) == -1)
		ctx->failed = true;
}

static void
hello_done(const Sockrpc__HelloReply *reply, void *closure_data)
{
	cl_call_done((const ProtobufCMessage *)reply, closure_data);
}

static int
client_hello(sr_client *c, sr_error *err)
{
	Sockrpc__HelloRequest req = SOCKRPC__HELLO_REQUEST__INIT;
	struct call_ctx ctx;
	char name[64];

	snprintf(name, sizeof(name), "libsockrpc/%s", SR_VERSION);
	req.major = SR_PROTOCOL_MAJOR;
	req.minor = SR_PROTOCOL_MINOR;
	req.client_name = name;
	req.claimed_exe = c->claimed_exe;
	/* Replies on their own socket (see HelloReply), where the transport has one. */
	req.reply_channel = c->transport->ops->use_reply_channel != NULL;
	cl_call_init(&ctx, c, NULL, cl_deadline_after(CL_FIXED_DEADLINE_MS), err);
	ctx.take = hello_take;
	sockrpc__sock_rpc__hello(&c->service, &req, hello_done, &ctx);
	return ctx.failed ? -1 : 0;
}

static void
client_free(sr_client *c)
{
	cl_calls_destroy(c);
	if (c->transport != NULL)
		c->transport->ops->free(c->transport);
	cl_pool_destroy(c);
	free(c);
}
