/*
 * calls.c - the call layer: the ProtobufCService whose invoke() frames a request,
 * gives it a call id, writes it through the client's transport and waits for the
 * reply with the same id; the table of calls outstanding; the reader that matches
 * replies to calls; deadlines. It does not know any method (the generated stubs,
 * called from socket.c and socket_io.c, choose it) nor how bytes travel (transport.h).
 *
 * Threads: requests are written whole under write_mu, so several threads may have
 * calls outstanding at once. Replies are read by one waiting thread at a time (the
 * reader, leader/follower style) which hands each reply to the call it answers and
 * wakes that caller. Any fault of the stream (a bad header, a reply nobody asked for,
 * EOF, a missed deadline) breaks the connection for good: every outstanding and later
 * call fails with the same error.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "enums.h"
#include "frame.h"
#include "internal.h"
#include "payload.h"

/*
 * One call sent and not yet answered. A call that waits for its reply keeps it on
 * its stack; one only started (ctx->started) has it on the heap, owned by whoever
 * collects it (cl_call_finish) or gives it up (cl_call_abandon).
 */
struct pending {
	uint64_t id;
	unsigned method;
	pthread_cond_t cond; /* signalled when done, or to hand over reading */
	bool waiting;        /* a thread sleeps on cond for this call */
	bool done;
	bool failed;   /* done with err instead of a reply */
	bool orphan;   /* abandoned: freed when its reply arrives */
	bool unwaited; /* counted in c->unwaited_calls until its reply arrives */
	sr_error err;
	uint8_t *body; /* the reply message, from cl_pool_alloc() by the reader */
	size_t len;
	uint64_t arrival; /* order in which replies were read, from 1 */
	int fd;           /* Handback: the descriptor its reply brought, or -1; owned */
	struct pending *next;
};

static void client_invoke(ProtobufCService *service, unsigned method_index,
                          const ProtobufCMessage *input, ProtobufCClosure closure,
                          void *closure_data);
static void client_break(sr_client *c, const sr_error *why);
static void call_start(sr_client *c, struct pending *p, unsigned method_index,
                       const ProtobufCMessage *input, int64_t deadline);
static void call_finish(sr_client *c, struct pending *p, ProtobufCClosure closure,
                        struct call_ctx *ctx);
static int call_send(sr_client *c, struct pending *p, struct iovec *iov, int n_iov,
                     int64_t deadline);
static bool call_wait(sr_client *c, struct pending *p, int64_t deadline, bool soft);
static void pending_init(struct pending *p, unsigned method_index);
static void pending_free(struct pending *p);

/* Sets up c's call table and service; c->transport is set before the first call. */
void
cl_calls_init(sr_client *c)
{
	c->service.descriptor = &sockrpc__sock_rpc__descriptor;
	c->service.invoke = client_invoke;
	c->service.destroy = NULL;
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->write_mu, NULL);
}

/* Frees what the call table holds: only abandoned calls are left when a client closes. */
void
cl_calls_destroy(sr_client *c)
{
	struct pending *q, *next;

	for (q = c->pending; q != NULL; q = next) {
		next = q->next;
		pending_free(q);
	}
	c->pending = NULL;
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->write_mu);
	free(c->rbuf);
	c->rbuf = NULL;
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
	ctx->passed_fd = -1;
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
/*
 * Breaks c if the daemon hung up and no reply is left to read, so that the state of
 * its handles shows the session is over without waiting for the next call. No round
 * trip. Skipped while a thread reads replies: it will see the end.
 */
void
cl_client_notice_hangup(sr_client *c)
{
	sr_error e;

	pthread_mutex_lock(&c->mu);
	if (!c->broken && !c->reading && c->rlen == c->roff &&
	    c->transport->ops->hung_up(c->transport)) {
		cl_seterr(&e, SR_EDAEMON, 0, "daemon closed the connection");
		client_break(c, &e);
	}
	pthread_mutex_unlock(&c->mu);
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
		p->unwaited = ctx->unwaited;
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
 * Starts n calls (at most CL_MAX_TOGETHER) in one write, in order, so that the daemon reads
 * them together: a request that names a handle the one before it creates (Socket, then
 * Connect) costs no wakeup of its own. out[i] receives call i's pending, as ctx->started
 * would; collect each with cl_call_finish() or give it up with cl_call_abandon(). Returns
 * 0, or -1 with *err filled and nothing sent (out untouched). Once sent, a failure of the
 * connection fails every pending, as for any call.
 */
int
cl_calls_start_together(sr_client *c, unsigned n, const unsigned *methods,
                        const ProtobufCMessage *const *inputs, int64_t deadline,
                        struct pending **out, sr_error *err)
{
	struct iovec iov[2 * CL_MAX_TOGETHER];
	uint8_t *frames[CL_MAX_TOGETHER] = {0};
	struct pending *p[CL_MAX_TOGETHER] = {0};
	struct sr_frame_header h;
	ProtobufCBinaryData payload;
	unsigned i;
	int n_iov = 0, rc = -1;
	size_t len;
	sr_error e;

	if (n > CL_MAX_TOGETHER) {
		cl_seterr(err, SR_EINVAL, 0, "too many calls in one write");
		return -1;
	}
	for (i = 0; i < n; i++) {
		if ((frames[i] = cl_frame_pack(c, inputs[i], &len, &payload, err)) == NULL)
			goto out;
		if ((p[i] = malloc(sizeof(*p[i]))) == NULL) {
			cl_seterr(err, SR_ELIMIT, ENOMEM, "out of memory");
			goto out;
		}
		pending_init(p[i], methods[i]);
		h.length = (uint32_t)(len - SR_FRAME_HEADER_SIZE + payload.len);
		h.method = (uint16_t)methods[i];
		h.flags = 0;
		h.call_id = 0;
		frame_header_encode(&h, frames[i]);
		iov[n_iov++] = (struct iovec){.iov_base = frames[i], .iov_len = len};
		if (payload.len > 0)
			iov[n_iov++] =
			    (struct iovec){.iov_base = payload.data, .iov_len = payload.len};
	}
	pthread_mutex_lock(&c->mu);
	if (c->broken) {
		cl_copyerr(err, &c->broken_err);
		pthread_mutex_unlock(&c->mu);
		goto out;
	}
	for (i = 0; i < n; i++) {
		p[i]->id = ++c->next_call_id;
		p[i]->next = c->pending;
		c->pending = p[i];
		frame_header_decode(frames[i], &h);
		h.call_id = p[i]->id;
		frame_header_encode(&h, frames[i]);
		out[i] = p[i];
		p[i] = NULL;
	}
	pthread_mutex_unlock(&c->mu);
	pthread_mutex_lock(&c->write_mu);
	rc = cl_frame_write(c, iov, n_iov, deadline, &e);
	pthread_mutex_unlock(&c->write_mu);
	if (rc == -1)
		cl_client_fail(c, &e); /* every call of the batch fails with it */
	rc = 0;
out:
	for (i = 0; i < n; i++) {
		free(frames[i]);
		if (p[i] != NULL)
			pending_free(p[i]);
	}
	return rc;
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
	p->fd = -1;
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
	if (p->fd != -1)
		close(p->fd);
	pthread_cond_destroy(&p->cond);
	free(p);
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

	if ((frame = cl_frame_pack(c, input, &len, &payload, &p->err)) == NULL) {
		p->done = p->failed = true;
		p->unwaited = false;
		return;
	}
	/* call_send() assigns the id under the lock; the header is filled there. */
	h.length = (uint32_t)(len - SR_FRAME_HEADER_SIZE + payload.len);
	h.method = (uint16_t)method_index;
	h.flags = 0;
	h.call_id = 0;
	frame_header_encode(&h, frame);
	iov[0] = (struct iovec){.iov_base = frame, .iov_len = len};
	iov[1] = (struct iovec){.iov_base = payload.data, .iov_len = payload.len};
	call_send(c, p, iov, payload.len > 0 ? 2 : 1, deadline);
	free(frame);
}

static void
close_passed(struct call_ctx *ctx)
{
	if (ctx->passed_fd != -1)
		close(ctx->passed_fd);
	ctx->passed_fd = -1;
}

/*
 * Unpacks the reply of a done call p and hands it to closure; frees the body. A large
 * payload may be borrowed (buffer_pool.c): closure sees it in place in the body, and
 * ctx->take may keep it (ctx->payload_block).
 */
static void
call_finish(sr_client *c, struct pending *p, ProtobufCClosure closure, struct call_ctx *ctx)
{
	const ProtobufCMessageDescriptor *out_desc;
	ProtobufCMessage *reply;
	ProtobufCBinaryData *borrowed;

	ctx->passed_fd = p->fd; /* closure's take() keeps it, or it is closed below */
	p->fd = -1;
	if (p->failed) {
		cl_copyerr(ctx->err, &p->err);
		closure(NULL, ctx);
		close_passed(ctx);
		return;
	}
	out_desc = c->service.descriptor->methods[p->method].output;
	reply = cl_pool_unpack(c, out_desc, p->body, p->len, &borrowed);
	ctx->payload_block = borrowed != NULL ? p->body : NULL;
	p->body = NULL;
	if (reply == NULL) {
		sr_error e;

		cl_seterr(&e, SR_EPROTO, 0, "undecodable %s from sockrpcd", out_desc->name);
		cl_client_fail(c, &e);
		cl_copyerr(ctx->err, &e);
		closure(NULL, ctx);
		close_passed(ctx);
		return;
	}
	ctx->arrival = p->arrival;
	closure(reply, ctx);
	close_passed(ctx);
	cl_pool_free_unpacked(c, reply, borrowed);
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
		p->unwaited = false;
		pthread_mutex_unlock(&c->mu);
		return -1;
	}
	if (p->unwaited)
		c->unwaited_calls++;
	p->id = ++c->next_call_id;
	p->next = c->pending;
	c->pending = p;
	pthread_mutex_unlock(&c->mu);

	frame_header_decode(frame, &h);
	h.call_id = p->id;
	frame_header_encode(&h, frame);

	/* The whole frame under one lock: no other call's bytes come between its parts. */
	pthread_mutex_lock(&c->write_mu);
	rc = cl_frame_write(c, iov, n_iov, deadline, &e);
	pthread_mutex_unlock(&c->write_mu);
	if (rc == -1) {
		cl_client_fail(c, &e);
	}
	return rc;
}

/*
 * Descriptors ride on the bytes of their reply (docs/protocol.md "Handback"): a Handback
 * reply takes the oldest that arrived. Once no Handback call is outstanding, whatever else
 * came is closed: the daemon is not trusted to send only what was asked. Called by the
 * reader with c->mu held, q unlinked.
 */
static void
take_passed_fd(sr_client *c, struct pending *q)
{
	struct transport *t = c->transport;
	unsigned handback = cl_handback_method();
	struct pending *o;

	/* Hello's descriptor is its reply channel, which connection.c takes. */
	if (t->ops->take_fd == NULL || q->method == 0)
		return;
	if (q->method == handback)
		q->fd = t->ops->take_fd(t);
	for (o = c->pending; o != NULL; o = o->next)
		if (o->method == handback)
			return;
	t->ops->drop_fds(t);
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
			rc = cl_frame_read(c, deadline, &h, &body, &e);
			pthread_mutex_lock(&c->mu);
			c->reading = false;
			if (rc == CL_READ_LATE && soft)
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
				cl_seterr(
				    &e, SR_EPROTO, 0,
				    "reply from sockrpcd matches no call (id %llu, method %u)",
				    (unsigned long long)h.call_id, (unsigned)h.method);
				client_break(c, &e);
				continue;
			}
			unlink_pending(c, q);
			take_passed_fd(c, q);
			if (q->unwaited) {
				q->unwaited = false;
				c->unwaited_calls--;
			}
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
 * Marks the client broken (first reason wins), tells the socket layer (its handles
 * are closed) and fails every outstanding call. Stopping the transport wakes a reader
 * blocked in it. Called with c->mu held.
 */
static void
client_break(sr_client *c, const sr_error *why)
{
	struct pending *q, *next;

	if (!c->broken) {
		c->broken = true;
		c->broken_err = *why;
		if (c->transport != NULL)
			c->transport->ops->shutdown(c->transport);
		/* The session is over on both sides: the daemon closes every handle of a
		 * session that ends, and this one ends when its connection does. */
		if (c->hooks != NULL)
			c->hooks->broken(c);
	}
	c->unwaited_calls = 0;
	for (q = c->pending; q != NULL; q = next) {
		next = q->next;
		q->unwaited = false;
		if (q->orphan) {
			pending_free(q);
			continue;
		}
		q->done = q->failed = true;
		q->err = c->broken_err;
		if (q->fd != -1)
			close(q->fd);
		q->fd = -1;
		q->next = NULL;
		pthread_cond_signal(&q->cond);
	}
	c->pending = NULL;
}
