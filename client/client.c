/*
 * client.c - one connection to sockrpcd: connect, Hello, and the
 * ProtobufCService whose invoke() frames a request, sends it and waits for the
 * reply with the same call id. It does not know any method: the generated stubs
 * (called from socket.c) choose the method, the service descriptor the types.
 *
 * Threads: requests are written whole under write_mu, so several threads may
 * have calls outstanding at once. Replies are read by one waiting thread at a
 * time (the reader, leader/follower style) which hands each reply to the call it
 * answers and wakes that caller. Any fault of the stream (a bad header, a reply
 * nobody asked for, EOF, a missed deadline) breaks the connection for good:
 * every outstanding and later call fails with the same error.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "enums.h"
#include "frame.h"
#include "internal.h"
#include "payload.h"

/* fill() and read_frame(): the deadline passed (bytes read so far stay buffered). */
#define READ_LATE (-2)

/*
 * One call sent and not yet answered. A call that waits for its reply keeps it on
 * its stack; one only started (ctx->started) has it on the heap, owned by whoever
 * collects it (cl_call_finish) or gives it up (cl_call_abandon).
 */
struct pending {
	uint64_t id;
	unsigned method;
	pthread_cond_t cond;	/* signalled when done, or to hand over reading */
	bool waiting;		/* a thread sleeps on cond for this call */
	bool done;
	bool failed;		/* done with err instead of a reply */
	bool orphan;		/* abandoned: freed when its reply arrives */
	sr_error err;
	uint8_t *body;		/* the reply message, from cl_pool_alloc() by the reader */
	size_t len;
	uint64_t arrival;	/* order in which replies were read, from 1 */
	struct pending *next;
};

static sr_client *client_new(const char *path, sr_error *err);
static sr_client *client_start(sr_client *c, sr_error *err);
static int	 client_hello(sr_client *c, sr_error *err);
static void	 client_invoke(ProtobufCService *service, unsigned method_index,
		    const ProtobufCMessage *input, ProtobufCClosure closure, void *closure_data);
static void	 client_break(sr_client *c, const sr_error *why);
static void	 call_start(sr_client *c, struct pending *p, unsigned method_index,
		    const ProtobufCMessage *input, int64_t deadline);
static void	 call_finish(sr_client *c, struct pending *p, ProtobufCClosure closure,
		    struct call_ctx *ctx);
static int	 call_send(sr_client *c, struct pending *p, struct iovec *iov, int n_iov,
		    int64_t deadline);
static bool	 call_wait(sr_client *c, struct pending *p, int64_t deadline, bool soft);
static void	 pending_init(struct pending *p, unsigned method_index);
static void	 pending_free(struct pending *p);
static int	 read_frame(sr_client *c, int64_t deadline, struct sr_frame_header *h,
		    uint8_t **body, sr_error *err);
static int	 write_all(int fd, struct iovec *iov, int n_iov, int64_t deadline,
		    sr_error *err);
static int	 io_wait(int fd, short events, int64_t deadline);
static void	 free_client(sr_client *c);
static void	 hello_done(const Sockrpc__HelloReply *reply, void *closure_data);

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

/* Reads block for at most a tick, so the reader checks its deadline that often without
 * a poll() before every recv(). */
static void
set_read_tick(int fd)
{
	struct timeval tick = { READ_TICK_MS / 1000, (READ_TICK_MS % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof(tick));
}

/* Returns a new client; free with sr_client_close(). */
sr_client *
sr_client_open(const char *path, sr_error *err)
{
	struct sockaddr_un sun;
	sr_client *c;
	char ebuf[128];
	int saved;

	if (path == NULL) {
		path = getenv("SOCKRPC_SOCKET");
		if (path == NULL || path[0] == '\0')
			path = sr_default_socket_path();
	}
	if (strlen(path) >= sizeof(sun.sun_path)) {
		cl_seterr(err, SR_EINVAL, 0, "socket path too long: %s", path);
		return NULL;
	}
	if ((c = client_new(path, err)) == NULL)
		return NULL;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if ((c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		saved = errno;
		cl_seterr(err, SR_EDAEMON, saved, "cannot reach sockrpcd at %s: %s", path,
		    cl_errno_text(saved, ebuf, sizeof(ebuf)));
		free_client(c);
		return NULL;
	}
	return client_start(c, err);
}

/*
 * Returns a new client speaking on fd, a connected stream socket whose other end is
 * the daemon (taken, and closed on failure too); free with sr_client_close(). For
 * tests and fuzzing, which bring their own daemon.
 */
sr_client *
cl_client_adopt(int fd, sr_error *err)
{
	sr_client *c;

	if ((c = client_new("", err)) == NULL) {
		close(fd);
		return NULL;
	}
	c->fd = fd;
	return client_start(c, err);
}

static sr_client *
client_new(const char *path, sr_error *err)
{
	sr_client *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		cl_seterr(err, SR_ELIMIT, ENOMEM, "out of memory");
		return NULL;
	}
	c->fd = c->reply_fd = c->passed_fd = -1;
	c->service.descriptor = &sockrpc__sock_rpc__descriptor;
	c->service.invoke = client_invoke;
	c->service.destroy = NULL;
	c->max_frame = SR_MAX_FRAME;
	c->max_payload = SR_MAX_PAYLOAD;
	snprintf(c->path, sizeof(c->path), "%s", path);
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->write_mu, NULL);
	cl_pool_init(c);
	return c;
}

/* Says Hello on c->fd, connected. Returns c, or NULL (c freed). */
static sr_client *
client_start(sr_client *c, sr_error *err)
{
	frame_send_room(c->fd);
	c->reply_fd = c->fd;
	set_read_tick(c->fd);
	if (client_hello(c, err) == -1) {
		free_client(c);
		return NULL;
	}
	return c;
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
	sr_socket *s, *next;

	if (c == NULL)
		return;
	for (s = c->sockets; s != NULL; s = s->next) {
		cl_window_forget(s);
		cl_ahead_forget(s);
	}
	pthread_mutex_lock(&c->mu);
	for (s = c->sockets; s != NULL; s = next) {
		next = s->next;
		s->client = NULL;
		s->prev = s->next = NULL;
		cl_state_mark_closed(&s->state);
	}
	c->sockets = NULL;
	pthread_mutex_unlock(&c->mu);
	free_client(c);
}

int64_t
cl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A deadline `ms` from now; negative ms means none. */
int64_t
cl_deadline_after(int64_t ms)
{
	return ms < 0 ? CL_NO_DEADLINE : cl_now_ms() + ms;
}

void
cl_call_init(struct call_ctx *ctx, sr_client *c, sr_socket *s, int64_t deadline, sr_error *err)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->client = c;
	ctx->socket = s;
	ctx->deadline = deadline;
	ctx->err = err;
}

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
			cl_call_violation(ctx, "sockrpcd answered for handle %ld with the state of "
			    "handle %ld", ctx->socket->handle, fresh.id);
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
	    (in->shutdown_reason != -1 &&
	    enum_shutdown_to_host(in->shutdown_reason, &how) == -1)) {
		cl_seterr(err, SR_EPROTO, 0, "sockrpcd sent a socket state with an unknown "
		    "family, type, protocol or shutdown (%d, %d, %d, %d)", (int)in->family,
		    (int)in->type, (int)in->protocol, (int)in->shutdown_reason);
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
	snprintf(out->host, sizeof(out->host), "%s", in->host != NULL ? in->host : "");
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

/* The state of a handle whose session is over (or that was closed). */
void
cl_state_mark_closed(sr_state *st)
{
	st->is_closed = true;
	st->is_client = st->is_bound = false;
	st->is_connected = st->is_listening = false;
}

void
cl_client_attach(sr_client *c, sr_socket *s)
{
	pthread_mutex_lock(&c->mu);
	s->client = c;
	if (c->broken) /* its session ended after the reply that made it */
		cl_state_mark_closed(&s->state);
	s->prev = NULL;
	s->next = c->sockets;
	if (c->sockets != NULL)
		c->sockets->prev = s;
	c->sockets = s;
	pthread_mutex_unlock(&c->mu);
}

void
cl_client_detach(sr_client *c, sr_socket *s)
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
bool
cl_client_holds(sr_client *c, long handle)
{
	sr_socket *s;

	pthread_mutex_lock(&c->mu);
	for (s = c->sockets; s != NULL && (s->handle != handle || s->state.is_closed);
	     s = s->next)
		;
	pthread_mutex_unlock(&c->mu);
	return s != NULL;
}

/* Breaks the connection for good (first reason wins): see client_break(). */
void
cl_client_fail(sr_client *c, const sr_error *why)
{
	pthread_mutex_lock(&c->mu);
	client_break(c, why);
	pthread_mutex_unlock(&c->mu);
}

/* Returns -1 with the reason in *err if the connection is broken, else 0. */
int
cl_client_broken(sr_client *c, sr_error *err)
{
	int rc = 0;

	pthread_mutex_lock(&c->mu);
	if (c->broken) {
		cl_copyerr(err, &c->broken_err);
		rc = -1;
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/*
 * Breaks c if the daemon hung up and no reply is left to read, so that the state of
 * its handles shows the session is over without waiting for the next call. A poll and
 * an ioctl, no round trip. Skipped while a thread reads replies: it will see the end.
 */
void
cl_client_notice_hangup(sr_client *c)
{
	struct pollfd pfd[2];
	short gone = POLLHUP | POLLERR | POLLRDHUP;
	int n = 0, queued = 0;
	sr_error e;

	pthread_mutex_lock(&c->mu);
	if (c->broken || c->reading || c->rlen > c->roff) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	pfd[n++] = (struct pollfd){ .fd = c->reply_fd, .events = POLLRDHUP };
	if (c->fd != c->reply_fd)
		pfd[n++] = (struct pollfd){ .fd = c->fd, .events = POLLRDHUP };
	if (poll(pfd, (nfds_t)n, 0) > 0 &&
	    ((pfd[0].revents & gone) || (n > 1 && (pfd[1].revents & gone))) &&
	    ioctl(c->reply_fd, FIONREAD, &queued) == 0 && queued == 0) {
		cl_seterr(&e, SR_EDAEMON, 0, "daemon closed the connection");
		client_break(c, &e);
	}
	pthread_mutex_unlock(&c->mu);
}

/* The reply channel must be a socket, or a read of it would ignore its deadline. */
static bool
is_unix_stream(int fd)
{
	int domain = -1, type = -1;
	socklen_t len = sizeof(int);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == -1)
		return false;
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1)
		return false;
	return domain == AF_UNIX && type == SOCK_STREAM;
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
	snprintf(c->daemon_version, sizeof(c->daemon_version), "%s",
	    r->daemon_version ? r->daemon_version : "");
	/* Announced limits are kept only below the library's own (CLIENT_MAX_*). */
	if (r->max_frame != 0 && r->max_frame < CLIENT_MAX_FRAME)
		c->max_frame = r->max_frame;
	if (r->max_payload != 0 && r->max_payload < CLIENT_MAX_PAYLOAD)
		c->max_payload = r->max_payload;
	c->max_handles = r->max_handles;
	if (r->reply_channel) {
		if (c->passed_fd == -1) {
			cl_seterr(ctx->err, SR_EPROTO, 0,
			    "sockrpcd's Hello reply came without its reply channel");
			ctx->failed = true;
			return;
		}
		if (!is_unix_stream(c->passed_fd)) {
			cl_seterr(ctx->err, SR_EPROTO, 0,
			    "sockrpcd's reply channel is not a Unix stream socket");
			ctx->failed = true;
			return;
		}
		c->reply_fd = c->passed_fd;
		c->passed_fd = -1;
		/* Reads wait in recv() (see recv_until), whatever the daemon left set. */
		fcntl(c->reply_fd, F_SETFL, fcntl(c->reply_fd, F_GETFL) & ~O_NONBLOCK);
		set_read_tick(c->reply_fd);
	}
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
	req.reply_channel = true; /* replies on their own socket: see HelloReply */
	cl_call_init(&ctx, c, NULL, cl_deadline_after(CL_FIXED_DEADLINE_MS), err);
	ctx.take = hello_take;
	sockrpc__sock_rpc__hello(&c->service, &req, hello_done, &ctx);
	return ctx.failed ? -1 : 0;
}

/*
 * ProtobufCService.invoke: frame the request, send it, wait for its reply,
 * unpack it as the method's output type, hand it to the closure and free it.
 * closure_data is always a struct call_ctx (see internal.h). With ctx->started
 * set the call is only sent: *ctx->started receives it, for cl_call_finish(), and
 * closure is not used (it may be NULL); if it cannot even be sent, ctx says why.
 */
static void
client_invoke(ProtobufCService *service, unsigned method_index, const ProtobufCMessage *input,
    ProtobufCClosure closure, void *closure_data)
{
	sr_client *c = (sr_client *)service;
	struct call_ctx *ctx = closure_data;
	struct pending *p, local;

	if (ctx->started != NULL) {
		if ((p = malloc(sizeof(*p))) == NULL) {
			cl_seterr(ctx->err, SR_ELIMIT, ENOMEM, "out of memory");
			ctx->failed = true;
			return;
		}
		pending_init(p, method_index);
		call_start(c, p, method_index, input, ctx->deadline);
		*ctx->started = p;
		return;
	}
	pending_init(&local, method_index);
	call_start(c, &local, method_index, input, ctx->deadline);
	call_wait(c, &local, ctx->deadline, false);
	call_finish(c, &local, closure, ctx);
	pthread_cond_destroy(&local.cond);
}

/*
 * Waits until a started call is answered or the deadline passes; unlike a call's own
 * deadline, passing this one is no fault of the daemon. Returns whether it is done.
 */
bool
cl_call_wait_until(sr_client *c, struct pending *p, int64_t deadline)
{
	return call_wait(c, p, deadline, true);
}

/* True when a started call's reply (or failure) is in: finishing it will not wait. */
bool
cl_call_ready(sr_client *c, struct pending *p)
{
	bool done;

	pthread_mutex_lock(&c->mu);
	done = p->done;
	pthread_mutex_unlock(&c->mu);
	return done;
}

/*
 * Waits for a call begun with ctx->started (until ctx->deadline), hands its reply to
 * cl_call_done() with ctx, and frees p.
 */
void
cl_call_finish(sr_client *c, struct pending *p, struct call_ctx *ctx)
{
	call_wait(c, p, ctx->deadline, false);
	call_finish(c, p, cl_call_done, ctx);
	pending_free(p);
}

/*
 * Gives up a started call without its reply: freed now if answered, else when its
 * reply arrives (or the connection breaks). sr_client_close() frees what is left.
 */
void
cl_call_abandon(sr_client *c, struct pending *p)
{
	pthread_mutex_lock(&c->mu);
	if (p->done) {
		cl_pool_free(c, p->body);
		pending_free(p);
	} else {
		p->orphan = true;
	}
	pthread_mutex_unlock(&c->mu);
}

static void
pending_init(struct pending *p, unsigned method_index)
{
	pthread_condattr_t ca;

	memset(p, 0, sizeof(*p));
	p->method = method_index;
	/* Deadlines are CLOCK_MONOTONIC so that a clock step cannot fire or hold them. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
}

/* Frees a heap pending (not its body). */
static void
pending_free(struct pending *p)
{
	pthread_cond_destroy(&p->cond);
	free(p);
}

/*
 * Packs input into a frame, leaving out a payload field long enough to be worth writing
 * from the caller's memory (payload.h): *payload then says where it is, and the frame
 * ends with the field's key. Returns the frame (malloc'd, header to fill) and its length
 * in *len, or NULL with p done and failed.
 */
static uint8_t *
frame_pack(sr_client *c, struct pending *p, const ProtobufCMessage *input, size_t *len,
           ProtobufCBinaryData *payload)
{
	const ProtobufCFieldDescriptor *field = sr_payload_field(input->descriptor);
	union {
		ProtobufCMessage base;
		uint8_t bytes[256];
	} rest; /* a shallow copy of input without its payload */
	const ProtobufCMessage *packed = input;
	uint8_t key[SR_PAYLOAD_KEY_MAX], *frame;
	size_t body, key_len = 0;

	payload->len = 0;
	payload->data = NULL;
	if (field != NULL && input->descriptor->sizeof_message <= sizeof(rest) &&
	    sr_payload_of((ProtobufCMessage *)(uintptr_t)input, field)->len >=
		SR_PAYLOAD_BY_REFERENCE_MIN) {
		memcpy(&rest, input, input->descriptor->sizeof_message);
		*payload = *sr_payload_of(&rest.base, field);
		sr_payload_of(&rest.base, field)->len = 0; /* an empty bytes field is not packed */
		packed = &rest.base;
		key_len = sr_payload_key(key, field->id, payload->len);
	}
	body = protobuf_c_message_get_packed_size(packed) + key_len;
	if (body + payload->len > c->max_frame) {
		p->done = p->failed = true;
		cl_seterr(&p->err, SR_ELIMIT, 0,
		    "request of %zu bytes is larger than the daemon's limit of %u",
		    body + payload->len, (unsigned)c->max_frame);
		return NULL;
	}
	if ((frame = malloc(SR_FRAME_HEADER_SIZE + body)) == NULL) {
		p->done = p->failed = true;
		cl_seterr(&p->err, SR_ELIMIT, ENOMEM, "out of memory");
		return NULL;
	}
	protobuf_c_message_pack(packed, frame + SR_FRAME_HEADER_SIZE);
	memcpy(frame + SR_FRAME_HEADER_SIZE + body - key_len, key, key_len);
	*len = SR_FRAME_HEADER_SIZE + body;
	return frame;
}

/* Frames input and sends it as call p. On failure p ends done and failed. */
static void
call_start(sr_client *c, struct pending *p, unsigned method_index, const ProtobufCMessage *input,
    int64_t deadline)
{
	struct sr_frame_header h;
	ProtobufCBinaryData payload;
	struct iovec iov[2];
	uint8_t *frame;
	size_t len;

	if ((frame = frame_pack(c, p, input, &len, &payload)) == NULL)
		return;
	/* call_send() assigns the id under the lock; the header is filled there. */
	h.length = (uint32_t)(len - SR_FRAME_HEADER_SIZE + payload.len);
	h.method = (uint16_t)method_index;
	h.flags = 0;
	h.call_id = 0;
	frame_header_encode(&h, frame);
	iov[0] = (struct iovec){ .iov_base = frame, .iov_len = len };
	iov[1] = (struct iovec){ .iov_base = payload.data, .iov_len = payload.len };
	call_send(c, p, iov, payload.len > 0 ? 2 : 1, deadline);
	free(frame);
}

/*
 * Unpacks the reply of a done call p and hands it to closure; frees the body. A large
 * payload is not copied out of the body: closure sees it in place, and ctx->take may
 * keep it (ctx->payload_block).
 */
static void
call_finish(sr_client *c, struct pending *p, ProtobufCClosure closure, struct call_ctx *ctx)
{
	const ProtobufCMessageDescriptor *out_desc;
	ProtobufCMessage *reply;
	ProtobufCBinaryData *borrowed;

	if (p->failed) {
		cl_copyerr(ctx->err, &p->err);
		closure(NULL, ctx);
		return;
	}
	out_desc = c->service.descriptor->methods[p->method].output;
	reply = sr_payload_unpack(out_desc, &c->pool_allocator, p->body, p->len, &borrowed);
	ctx->payload_block = borrowed != NULL ? p->body : NULL;
	if (borrowed == NULL)
		cl_pool_free(c, p->body);
	p->body = NULL;
	if (reply == NULL) {
		sr_error e;

		cl_seterr(&e, SR_EPROTO, 0, "undecodable %s from sockrpcd", out_desc->name);
		pthread_mutex_lock(&c->mu);
		client_break(c, &e);
		pthread_mutex_unlock(&c->mu);
		cl_copyerr(ctx->err, &e);
		closure(NULL, ctx);
		return;
	}
	ctx->arrival = p->arrival;
	closure(reply, ctx);
	sr_payload_free_unpacked(reply, &c->pool_allocator, borrowed);
	cl_pool_free(c, ctx->payload_block); /* unless take() kept it */
	ctx->payload_block = NULL;
}

/*
 * Registers p (giving it a call id), then writes the frame: iov[0] begins with its
 * header. On failure p ends up done and failed, like every other outstanding call of
 * a broken client.
 */
static int
call_send(sr_client *c, struct pending *p, struct iovec *iov, int n_iov, int64_t deadline)
{
	struct sr_frame_header h;
	uint8_t *frame = iov[0].iov_base;
	sr_error e;
	int rc;

	pthread_mutex_lock(&c->mu);
	if (c->broken) {
		p->done = p->failed = true;
		p->err = c->broken_err;
		pthread_mutex_unlock(&c->mu);
		return -1;
	}
	p->id = ++c->next_call_id;
	p->next = c->pending;
	c->pending = p;
	pthread_mutex_unlock(&c->mu);

	frame_header_decode(frame, &h);
	h.call_id = p->id;
	frame_header_encode(&h, frame);

	/* The whole frame under one lock: no other call's bytes come between its parts. */
	pthread_mutex_lock(&c->write_mu);
	rc = write_all(c->fd, iov, n_iov, deadline, &e);
	pthread_mutex_unlock(&c->write_mu);
	if (rc == -1) {
		pthread_mutex_lock(&c->mu);
		client_break(c, &e);
		pthread_mutex_unlock(&c->mu);
	}
	return rc;
}

static void
unlink_pending(sr_client *c, struct pending *p)
{
	struct pending **pp;

	for (pp = &c->pending; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			p->next = NULL;
			return;
		}
	}
}

/*
 * Waits until p is answered or fails. Whichever waiting thread finds no
 * reader becomes it: it reads frames (lock released) and hands each reply to
 * its call. On leaving, it wakes another waiter to take over reading. Past the
 * deadline the client breaks (the daemon failed to answer in time), unless the
 * wait is soft: then p stays outstanding. Returns whether p is done.
 */
static bool
call_wait(sr_client *c, struct pending *p, int64_t deadline, bool soft)
{
	bool done;
	struct sr_frame_header h;
	struct pending *q;
	struct timespec ts;
	uint8_t *body;
	sr_error e;
	int rc;

	pthread_mutex_lock(&c->mu);
	p->waiting = true;
	while (!p->done) {
		if (c->broken) {
			p->done = p->failed = true;
			p->err = c->broken_err;
			break;
		}
		if (!c->reading) {
			c->reading = true;
			pthread_mutex_unlock(&c->mu);
			rc = read_frame(c, deadline, &h, &body, &e);
			pthread_mutex_lock(&c->mu);
			c->reading = false;
			if (rc == READ_LATE && soft)
				break;
			if (rc != 0) {
				client_break(c, &e);
				continue;
			}
			for (q = c->pending; q != NULL; q = q->next)
				if (q->id == h.call_id)
					break;
			if (q == NULL || q->method != h.method) {
				cl_pool_free(c, body);
				cl_seterr(&e, SR_EPROTO, 0,
				    "reply from sockrpcd matches no call (id %llu, method %u)",
				    (unsigned long long)h.call_id, (unsigned)h.method);
				client_break(c, &e);
				continue;
			}
			unlink_pending(c, q);
			if (q->orphan) {
				cl_pool_free(c, body);
				pending_free(q);
				continue;
			}
			q->body = body;
			q->len = h.length;
			q->arrival = ++c->replies_read;
			q->done = true;
			if (q != p)
				pthread_cond_signal(&q->cond);
			continue;
		}
		if (deadline == CL_NO_DEADLINE) {
			pthread_cond_wait(&p->cond, &c->mu);
			continue;
		}
		ts.tv_sec = deadline / 1000;
		ts.tv_nsec = (deadline % 1000) * 1000000;
		if (pthread_cond_timedwait(&p->cond, &c->mu, &ts) == ETIMEDOUT && !p->done) {
			if (soft)
				break;
			cl_seterr(&e, SR_EDAEMON, ETIMEDOUT, "daemon did not answer");
			client_break(c, &e);
		}
	}
	p->waiting = false;
	done = p->done;
	if (done)
		unlink_pending(c, p);
	/* Hand reading over to a thread still waiting (started calls may have none). */
	if (!c->reading) {
		for (q = c->pending; q != NULL; q = q->next) {
			if (q->waiting) {
				pthread_cond_signal(&q->cond);
				break;
			}
		}
	}
	pthread_mutex_unlock(&c->mu);
	return done;
}

/*
 * Marks the client broken (first reason wins), its handles closed, and fails every
 * outstanding call. shutdown() wakes a reader blocked in poll(). Called with c->mu
 * held.
 */
static void
client_break(sr_client *c, const sr_error *why)
{
	struct pending *q, *next;
	sr_socket *s;

	if (!c->broken) {
		c->broken = true;
		c->broken_err = *why;
		if (c->fd != -1)
			shutdown(c->fd, SHUT_RDWR);
		if (c->reply_fd != c->fd)
			shutdown(c->reply_fd, SHUT_RDWR);
		/* The session is over on both sides: the daemon closes every handle of a
		 * session that ends, and this one ends when its connection does. */
		for (s = c->sockets; s != NULL; s = s->next)
			cl_state_mark_closed(&s->state);
	}
	for (q = c->pending; q != NULL; q = next) {
		next = q->next;
		if (q->orphan) {
			pending_free(q);
			continue;
		}
		q->done = q->failed = true;
		q->err = c->broken_err;
		q->next = NULL;
		pthread_cond_signal(&q->cond);
	}
	c->pending = NULL;
}

/* Writes all of buf; MSG_NOSIGNAL so a dead daemon cannot kill the caller with SIGPIPE. */
static int
write_all(int fd, struct iovec *iov, int n_iov, int64_t deadline, sr_error *err)
{
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)n_iov };
	char ebuf[128];
	ssize_t n;

	while (msg.msg_iovlen > 0) {
		n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0) {
			/* Skip what went out: whole parts, then into the first one left. */
			for (; msg.msg_iovlen > 0 && (size_t)n >= msg.msg_iov->iov_len;
			     msg.msg_iov++, msg.msg_iovlen--)
				n -= (ssize_t)msg.msg_iov->iov_len;
			if (msg.msg_iovlen > 0) {
				msg.msg_iov->iov_base = (uint8_t *)msg.msg_iov->iov_base + n;
				msg.msg_iov->iov_len -= (size_t)n;
			}
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (io_wait(fd, POLLOUT, deadline) == 0)
				continue;
			if (errno == ETIMEDOUT) {
				cl_seterr(err, SR_EDAEMON, ETIMEDOUT,
				    "daemon did not take the request in time");
				return -1;
			}
		}
		cl_seterr(err, SR_EDAEMON, errno, "writing to sockrpcd: %s",
		    cl_errno_text(errno, ebuf, sizeof(ebuf)));
		return -1;
	}
	return 0;
}

/* Room read into at once: many small replies, or a good part of a large one. The
 * fuzzer builds with less (tools/fuzz/build.sh), to split replies more often. */
#ifndef READ_CHUNK
#define READ_CHUNK (64 * 1024)
#endif

/* Keeps the first descriptor a reply brought (the reply channel) in c->passed_fd and
 * closes any other: nothing else is expected. */
static void
take_passed_fds(sr_client *c, struct msghdr *msg)
{
	struct cmsghdr *cm;

	for (cm = CMSG_FIRSTHDR(msg); cm != NULL; cm = CMSG_NXTHDR(msg, cm)) {
		size_t n;
		int fd;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		for (n = 0; (n + 1) * sizeof(int) <= cm->cmsg_len - CMSG_LEN(0); n++) {
			memcpy(&fd, CMSG_DATA(cm) + n * sizeof(int), sizeof(int));
			if (c->passed_fd == -1)
				c->passed_fd = fd;
			else
				close(fd);
		}
	}
}

/* One recv from where replies come. The connection is read with recvmsg, as the Hello
 * reply brings the reply channel along. */
static ssize_t
recv_replies(sr_client *c, uint8_t *buf, size_t len)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg;
	ssize_t n;

	if (c->reply_fd != c->fd)
		return recv(c->reply_fd, buf, len, 0);
	msg = (struct msghdr){ .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
	    .msg_controllen = sizeof(control.buf) };
	n = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC);
	if (n > 0)
		take_passed_fds(c, &msg);
	return n;
}

/*
 * Receives into buf (cap bytes, *len of them filled) until *len >= need, taking as much
 * as the socket has in each recv. The recv blocks, for at most READ_TICK_MS
 * (SO_RCVTIMEO) at a time, between which the deadline is checked: one syscall per
 * reply, where poll + recv would take two. Returns 0, or -1 (READ_LATE past the
 * deadline) with *err filled.
 */
static int
recv_until(sr_client *c, uint8_t *buf, size_t *len, size_t need, size_t cap,
    int64_t deadline, sr_error *err)
{
	char ebuf[128];
	ssize_t n;

	while (*len < need) {
		n = recv_replies(c, buf + *len, cap - *len);
		if (n > 0) {
			*len += (size_t)n;
			continue;
		}
		if (n == 0) {
			cl_seterr(err, SR_EDAEMON, 0, "daemon closed the connection");
			return -1;
		}
		if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
			break;
		if (deadline != CL_NO_DEADLINE && cl_now_ms() >= deadline) {
			cl_seterr(err, SR_EDAEMON, ETIMEDOUT, "daemon did not answer");
			return READ_LATE;
		}
	}
	if (*len >= need)
		return 0;
	cl_seterr(err, SR_EDAEMON, errno, "reading from sockrpcd: %s",
	    cl_errno_text(errno, ebuf, sizeof(ebuf)));
	return -1;
}

/*
 * Makes at least `need` unparsed bytes available at c->rbuf + c->roff, reading as much
 * as the socket has (so one syscall usually brings a whole reply). Only the reading
 * thread calls this. Returns as recv_until().
 */
static int
fill(sr_client *c, size_t need, int64_t deadline, sr_error *err)
{
	if (c->rlen - c->roff >= need)
		return 0;
	if (c->roff > 0) {
		memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
		c->rlen -= c->roff;
		c->roff = 0;
	}
	if (need > c->rcap || c->rcap - c->rlen < READ_CHUNK / 4) {
		size_t cap = need > READ_CHUNK ? need : READ_CHUNK;
		uint8_t *grown;

		if (cap < c->rlen + READ_CHUNK / 4)
			cap = c->rlen + READ_CHUNK;
		if ((grown = realloc(c->rbuf, cap)) == NULL) {
			cl_seterr(err, SR_ELIMIT, ENOMEM, "out of memory");
			return -1;
		}
		c->rbuf = grown;
		c->rcap = cap;
	}
	return recv_until(c, c->rbuf, &c->rlen, need, c->rcap, deadline, err);
}

/*
 * Puts a frame's header and the first `have` bytes of its body back into the (empty)
 * read buffer, for a read that gave up before the whole body came (READ_LATE) and is
 * taken up again later. Returns 0 or -1 with *err filled.
 */
static int
unread_frame(sr_client *c, const struct sr_frame_header *h, const uint8_t *body,
    size_t have, sr_error *err)
{
	size_t need = SR_FRAME_HEADER_SIZE + have;

	if (need > c->rcap) {
		uint8_t *grown = realloc(c->rbuf, need);

		if (grown == NULL) {
			cl_seterr(err, SR_ELIMIT, ENOMEM, "out of memory");
			return -1;
		}
		c->rbuf = grown;
		c->rcap = need;
	}
	frame_header_encode(h, c->rbuf);
	memcpy(c->rbuf + SR_FRAME_HEADER_SIZE, body, have);
	c->roff = 0;
	c->rlen = need;
	return 0;
}

/*
 * Reads one reply frame; *body is from cl_pool_alloc() (h->length bytes). A body
 * larger than the read buffer's chunk is received straight into *body, after what the
 * buffer holds of it, rather than through the buffer (a copy less, and no buffer that
 * size kept).
 * Returns as fill(); after READ_LATE the frame is read again from its start.
 */
static int
read_frame(sr_client *c, int64_t deadline, struct sr_frame_header *h, uint8_t **body,
    sr_error *err)
{
	const char *why;
	size_t have;
	int rc;

	if ((rc = fill(c, SR_FRAME_HEADER_SIZE, deadline, err)) != 0)
		return rc;
	frame_header_decode(c->rbuf + c->roff, h);
	if (frame_header_check(h, c->max_frame, sockrpc__sock_rpc__descriptor.n_methods, 1,
	    &why) == -1) {
		cl_seterr(err, SR_EPROTO, 0, "bad frame from sockrpcd: %s", why);
		return -1;
	}
	if ((*body = cl_pool_alloc(c, h->length)) == NULL) {
		cl_seterr(err, SR_ELIMIT, ENOMEM, "out of memory");
		return -1;
	}
	have = c->rlen - c->roff - SR_FRAME_HEADER_SIZE;
	if (h->length <= READ_CHUNK || have >= h->length) {
		rc = fill(c, SR_FRAME_HEADER_SIZE + (size_t)h->length, deadline, err);
		if (rc == 0) {
			memcpy(*body, c->rbuf + c->roff + SR_FRAME_HEADER_SIZE, h->length);
			c->roff += SR_FRAME_HEADER_SIZE + (size_t)h->length;
		}
	} else {
		memcpy(*body, c->rbuf + c->roff + SR_FRAME_HEADER_SIZE, have);
		c->roff = c->rlen = 0;
		rc = recv_until(c, *body, &have, h->length, h->length, deadline, err);
		if (rc == READ_LATE && unread_frame(c, h, *body, have, err) != 0)
			rc = -1;
	}
	if (rc != 0) {
		cl_pool_free(c, *body);
		*body = NULL;
	}
	return rc;
}

/* poll() for events until the deadline. Returns 0 when ready, -1 with errno. */
static int
io_wait(int fd, short events, int64_t deadline)
{
	struct pollfd pfd;
	int64_t left;
	int n;

	for (;;) {
		left = -1;
		if (deadline != CL_NO_DEADLINE) {
			left = deadline - cl_now_ms();
			if (left <= 0) {
				errno = ETIMEDOUT;
				return -1;
			}
		}
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		n = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (n > 0)
			return 0;	/* errors and hangups show up in the next I/O call */
		if (n == -1 && errno != EINTR)
			return -1;
	}
}

static void
free_client(sr_client *c)
{
	struct pending *q, *next;

	for (q = c->pending; q != NULL; q = next) {
		next = q->next;
		pending_free(q); /* only abandoned calls are left when the client closes */
	}
	if (c->reply_fd != c->fd)
		close(c->reply_fd);
	if (c->passed_fd != -1)
		close(c->passed_fd);
	if (c->fd != -1)
		close(c->fd);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->write_mu);
	cl_pool_destroy(c);
	free(c->rbuf);
	free(c);
}
