/*
 * ops_io.c - moving data: send, receive, read, send_to, receive_from. Each tries the
 * non-blocking syscall at once and, when it would block, waits on the handle's queue
 * for readiness or its timeout (the handle's send/receive timeout).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "enums.h"
#include "frame.h"
#include "ops.h"

/* Room for any UDP datagram: its length field is 16 bits. */
#define UDP_DATAGRAM_MAX 65536u

/* The most data a receive of `length` (-1: all pending) can answer with. */
static size_t
reply_bound(int64_t length)
{
	return length < 0 || length > (int64_t)SR_MAX_PAYLOAD ? SR_MAX_PAYLOAD : (size_t)length;
}

static int
timeout_or_none(int ms)
{
	return ms > 0 ? ms : -1; /* 0 means "no timeout", as for SO_RCVTIMEO */
}

/* Queues a receiving call: it waits up to the receive timeout, and what its reply may
 * hold counts against the session's queue limit meanwhile. */
static void
queue_receiving(struct call *c, struct handle *h, call_step_fn step, size_t reply_bytes)
{
	c->step = step;
	c->timeout_ms = timeout_or_none(h->receive_timeout_ms);
	call_charge(c, reply_bytes);
	handle_queue_call(h, c, CALL_RX);
}

/* Translates wire message flags, answering the call when they are unknown. */
static int
host_flags(struct call *c, struct handle *h, uint32_t wire, int *out)
{
	if (enum_msg_flags_to_host(wire, out) == 0) {
		c->dont_wait = (*out & MSG_DONTWAIT) != 0;
		return 0;
	}
	call_fail(c, h, SOCKRPC__CODE__EINVAL, 0, "unknown message flags 0x%x", wire);
	return -1;
}

static void
reply_sent(struct call *c, struct handle *h, size_t sent)
{
	Sockrpc__SocketState state;

	if (c->request->descriptor == &sockrpc__send_to_request__descriptor) {
		Sockrpc__SendToReply reply = SOCKRPC__SEND_TO_REPLY__INIT;

		reply.status = (Sockrpc__Status *)&status_ok;
		reply.state = handle_state_message(h, &state);
		reply.sent = (int64_t)sent;
		call_reply(c, &reply.base);
	} else {
		Sockrpc__SendReply reply = SOCKRPC__SEND_REPLY__INIT;

		reply.status = (Sockrpc__Status *)&status_ok;
		reply.state = handle_state_message(h, &state);
		reply.sent = (int64_t)sent;
		call_reply(c, &reply.base);
	}
}

/*
 * A receiver with SO_PASSCRED would otherwise be told the sending thread's real ids (the
 * daemon's): say the client's, which a root daemon may (CAP_SETUID, CAP_SETGID). Without
 * root the daemon has no AF_UNIX socket that can send (as_client.c).
 */
static void
attach_client_credentials(struct call *c, struct msghdr *msg, char *buf, size_t len)
{
	const struct identity *who = &c->session->peer;
	struct ucred uc = {.pid = getpid(), .uid = who->uid, .gid = who->gid};
	struct cmsghdr *cm;

	if (!as_client_available())
		return;
	msg->msg_control = buf;
	msg->msg_controllen = len;
	cm = CMSG_FIRSTHDR(msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_CREDENTIALS;
	cm->cmsg_len = CMSG_LEN(sizeof(uc));
	memcpy(CMSG_DATA(cm), &uc, sizeof(uc));
}

/* The shared tail of send and send_to: data, flags and destination (NULL: connected). */
static enum call_progress
transmit(struct call *c, const ProtobufCBinaryData *data, int flags, const struct sockaddr *to,
         socklen_t to_len, enum call_event ev)
{
	struct handle *h = c->handle;
	/* An empty bytes field decodes as NULL: a zero-length datagram is still sent. */
	const uint8_t *bytes = data->data ? data->data : (const uint8_t *)"";
	bool once = data->len == 0;

	if (ev == CALL_TIMEOUT) {
		call_fail(c, h, SOCKRPC__CODE__ETIMEDOUT, ETIMEDOUT,
		          "send timed out after %d ms (%zu of %zu bytes sent)", c->timeout_ms,
		          c->op.sent, data->len);
		return CALL_DONE;
	}
	if (h->connect_pending)
		return CALL_WAIT_OTHER;
	/* Already done when an earlier call's sendmsg took this one's bytes too. */
	while (once || c->op.sent < data->len) {
		struct iovec iov[SEND_GATHER_MAX];
		struct msghdr msg = {.msg_name = (void *)to, .msg_namelen = to_len, .msg_iov = iov};
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(struct ucred))];
		} creds;
		ssize_t n;

		msg.msg_iovlen = (size_t)send_batch_gather(c, bytes, data->len, flags, iov);
		if (h->family == AF_UNIX)
			attach_client_credentials(c, &msg, creds.buf, sizeof(creds.buf));
		if (h->family == AF_UNIX && (to != NULL || c->session->d->priv_fd >= 0)) {
			/* To a path: reached as the client, the path's file pinned (as_client.c);
			 * split, every AF_UNIX send goes through the parent, which alone can give
			 * the bytes the client's credentials (SCM_CREDENTIALS). */
			n = priv_unix_sendmsg(c->session, h->fd, &msg,
			                      flags | MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n == AS_CLIENT_OWN_SOCKET || n == -ELOOP) {
				char what[300];

				snprintf(what, sizeof(what), "send to %.200s", c->target->name);
				op_fail_unix(c, h, (int)n, what);
				return CALL_DONE;
			}
			if (n < 0) {
				errno = (int)-n;
				n = -1;
			}
		} else {
			n = sendmsg(h->fd, &msg, flags | MSG_NOSIGNAL | MSG_DONTWAIT);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (!call_may_wait(c) && c->op.sent > 0)
					break;
				return CALL_WAIT_IO;
			}
			if (to != NULL) {
				char where[300];

				call_fail_errno(c, h, errno, "send to %s failed",
				                address_describe(to, to_len, where, sizeof(where)));
			} else {
				call_fail_errno(c, h, errno, "send failed");
			}
			return CALL_DONE;
		}
		once = false;
		send_batch_credit(c, data->len, (size_t)n, (int)msg.msg_iovlen);
		h->bytes_out += (uint64_t)n;
	}
	reply_sent(c, h, c->op.sent);
	return CALL_DONE;
}

static enum call_progress
send_step(struct call *c, enum call_event ev)
{
	const Sockrpc__SendRequest *in = (const Sockrpc__SendRequest *)c->request;
	int flags = 0;

	enum_msg_flags_to_host(in->flags, &flags); /* checked when the call came in */
	return transmit(c, &in->data, flags, NULL, 0, ev);
}

OP(send, SendRequest, SendReply)
{
	struct call *c = closure_data;
	struct handle *h = op_lookup_handle(c, in->handle, HOP_SEND);
	int flags;

	if (h == NULL || host_flags(c, h, in->flags, &flags) != 0)
		return;
	c->step = send_step;
	c->timeout_ms = timeout_or_none(h->send_timeout_ms);
	handle_queue_call(h, c, CALL_TX);
}

/*
 * How many bytes the next receive should take: `length`, or for -1 everything pending
 * (a stream's queued bytes, or the next datagram's size), capped at one payload.
 * Returns 1 with *size set, 0 at end of stream, or -errno (-EAGAIN: nothing yet).
 */
static int
receive_size(struct handle *h, int64_t length, size_t *size)
{
	int pending = 0;
	char probe;
	ssize_t n;

	if (length >= 0) {
		*size = (uint64_t)length > SR_MAX_PAYLOAD ? SR_MAX_PAYLOAD : (size_t)length;
		return 1;
	}
	if (h->type == SOCK_STREAM) {
		if (ioctl(h->fd, FIONREAD, &pending) != 0)
			return -errno;
		if (pending == 0) {
			n = recv(h->fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT);
			if (n == 0)
				return 0;
			if (n < 0)
				return -errno;
			if (ioctl(h->fd, FIONREAD, &pending) != 0 || pending == 0)
				pending = 1;
		}
	} else if (h->family == AF_INET || h->family == AF_INET6) {
		/* No UDP datagram is larger (its length is 16 bits): taken without asking. */
		pending = UDP_DATAGRAM_MAX;
	} else {
		/* MSG_TRUNC with MSG_PEEK reports the whole datagram's length (Linux). */
		n = recv(h->fd, NULL, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
		if (n < 0)
			return -errno;
		pending = (int)n;
	}
	*size = (size_t)pending > SR_MAX_PAYLOAD ? SR_MAX_PAYLOAD : (size_t)pending;
	return 1;
}

/*
 * The shared body of receive and receive_from: takes at most one payload (one
 * datagram on a datagram socket). On success *out is a malloc'd buffer of *got bytes.
 * Returns CALL_DONE with *out set, CALL_DONE with the call answered (*out NULL), or a wait.
 */
static enum call_progress
take_bytes(struct call *c, int64_t length, int flags, struct sockaddr_storage *from,
           socklen_t *from_len, uint8_t **out, size_t *got, bool *eos)
{
	struct handle *h = c->handle;
	size_t size = 0;
	ssize_t n;
	int r;

	*out = NULL;
	*eos = false;
	r = receive_size(h, length, &size);
	/* Shut down for reading, a socket polls readable with nothing to read (a datagram
	 * socket's recv says EAGAIN, not 0): that is its end, or the wait would spin. */
	if ((r == -EAGAIN || r == -EWOULDBLOCK) && h->shut_rd)
		r = 0;
	if (r == -EAGAIN || r == -EWOULDBLOCK)
		return CALL_WAIT_IO;
	if (r < 0) {
		call_fail_errno(c, h, -r, "receive failed");
		return CALL_DONE;
	}
	*out = malloc(size ? size : 1);
	if (*out == NULL) {
		call_fail(c, h, SOCKRPC__CODE__EOS, ENOMEM, "receive failed: out of memory");
		return CALL_DONE;
	}
	if (r == 0) {
		*got = 0;
		*eos = true;
		return CALL_DONE;
	}
	for (;;) {
		n = recvfrom(h->fd, *out, size, flags | MSG_DONTWAIT, (struct sockaddr *)from,
		             from_len);
		if (n >= 0 || errno != EINTR)
			break;
	}
	if (n < 0) {
		int err = errno;

		if ((err == EAGAIN || err == EWOULDBLOCK) && h->shut_rd) {
			*got = 0;
			*eos = true;
			return CALL_DONE;
		}
		free(*out);
		*out = NULL;
		if (err == EAGAIN || err == EWOULDBLOCK)
			return CALL_WAIT_IO;
		call_fail_errno(c, h, err, "receive failed");
		return CALL_DONE;
	}
	/* A UDP datagram read into room for the largest: what it does not use goes back. */
	if (size == UDP_DATAGRAM_MAX && (size_t)n < size && h->type == SOCK_DGRAM) {
		uint8_t *fit = realloc(*out, n > 0 ? (size_t)n : 1);

		if (fit != NULL)
			*out = fit;
	}
	*got = (size_t)n;
	*eos = n == 0 && size > 0 && h->type == SOCK_STREAM;
	h->bytes_in += (uint64_t)n;
	return CALL_DONE;
}

static bool
timed_out(struct call *c, enum call_event ev)
{
	if (ev != CALL_TIMEOUT)
		return false;
	call_fail(c, c->handle, SOCKRPC__CODE__ETIMEDOUT, ETIMEDOUT,
	          "receive timed out after %d ms", c->timeout_ms);
	return true;
}

static enum call_progress
receive_step(struct call *c, enum call_event ev)
{
	const Sockrpc__ReceiveRequest *in = (const Sockrpc__ReceiveRequest *)c->request;
	struct handle *h = c->handle;
	Sockrpc__ReceiveReply reply = SOCKRPC__RECEIVE_REPLY__INIT;
	Sockrpc__SocketState state;
	enum call_progress p;
	uint8_t *data;
	size_t got = 0;
	bool eos;
	int flags = 0;

	if (timed_out(c, ev))
		return CALL_DONE;
	if (h->connect_pending)
		return CALL_WAIT_OTHER;
	enum_msg_flags_to_host(in->flags, &flags);
	if (in->length == 0) {
		data = NULL;
		eos = false;
	} else if (receive_by_splice(c, h, in->length, flags) ||
	           receive_in_place(c, h, in->length, flags)) {
		return CALL_DONE;
	} else {
		p = take_bytes(c, in->length, flags, NULL, NULL, &data, &got, &eos);
		if (p != CALL_DONE || data == NULL)
			return p;
	}
	reply.status = (Sockrpc__Status *)&status_ok;
	reply.state = handle_state_message(h, &state);
	reply.data.data = data;
	reply.data.len = got;
	reply.end_of_stream = eos;
	call_reply(c, &reply.base);
	free(data);
	return CALL_DONE;
}

OP(receive, ReceiveRequest, ReceiveReply)
{
	struct call *c = closure_data;
	struct handle *h = op_lookup_handle(c, in->handle, HOP_RECEIVE);
	int flags;

	if (h == NULL || host_flags(c, h, in->flags, &flags) != 0)
		return;
	queue_receiving(c, h, receive_step, reply_bound(in->length));
}

static void
reply_read(struct call *c)
{
	Sockrpc__ReadReply reply = SOCKRPC__READ_REPLY__INIT;
	Sockrpc__SocketState state;

	reply.status = (Sockrpc__Status *)&status_ok;
	reply.state = handle_state_message(c->handle, &state);
	reply.data.data = c->op.read.buf;
	reply.data.len = c->op.read.got;
	call_reply(c, &reply.base);
}

/* Read gathers until `want` bytes, end of stream or the timeout, and never fails for
 * the last two: it answers with what it has, as Blade's read does. */
static enum call_progress
read_step(struct call *c, enum call_event ev)
{
	struct handle *h = c->handle;

	if (ev == CALL_TIMEOUT) {
		reply_read(c);
		return CALL_DONE;
	}
	if (h->connect_pending)
		return CALL_WAIT_OTHER;
	while (c->op.read.got < c->op.read.want) {
		ssize_t n = recv(h->fd, c->op.read.buf + c->op.read.got,
		                 c->op.read.want - c->op.read.got, MSG_DONTWAIT);

		if (n > 0) {
			c->op.read.got += (size_t)n;
			h->bytes_in += (uint64_t)n;
			continue;
		}
		if (n == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (h->shut_rd || (!call_may_wait(c) && c->op.read.got > 0))
				break; /* shut down for reading: what there is, is all */
			return CALL_WAIT_IO;
		}
		call_fail_errno(c, h, errno, "read failed");
		return CALL_DONE;
	}
	reply_read(c);
	return CALL_DONE;
}

static void
read_free(struct call *c)
{
	free(c->op.read.buf);
}

OP(read, ReadRequest, ReadReply)
{
	struct call *c = closure_data;
	struct handle *h = op_lookup_handle(c, in->handle, HOP_RECEIVE);
	int64_t want;

	if (h == NULL)
		return;
	want = in->length < 0 ? DEFAULT_READ_LENGTH : in->length;
	if (want > (int64_t)SR_MAX_PAYLOAD) {
		call_fail(c, h, SOCKRPC__CODE__EINVAL, 0,
		          "read length %lld exceeds the largest payload (%u bytes)",
		          (long long)want, SR_MAX_PAYLOAD);
		return;
	}
	c->op.read.want = (size_t)want;
	c->op.read.buf = malloc(want ? (size_t)want : 1);
	if (c->op.read.buf == NULL) {
		call_fail(c, h, SOCKRPC__CODE__EOS, ENOMEM, "read failed: out of memory");
		return;
	}
	c->op_free = read_free;
	queue_receiving(c, h, read_step, c->op.read.want);
}

static enum call_progress
send_to_step(struct call *c, enum call_event ev)
{
	const Sockrpc__SendToRequest *in = (const Sockrpc__SendToRequest *)c->request;
	struct handle *h = c->handle;
	struct call_target *t = c->target;
	int flags = 0;

	if (ev == CALL_READY && t->resolving)
		return CALL_WAIT_OTHER;
	if (ev == CALL_READY && !t->chosen) {
		/* Choose the destination once: the first address the policy allows. */
		socklen_t len;
		const struct sockaddr *sa = op_next_target(c, h, POLICY_SEND, &len);
		char what[300];

		/* The words are formatted only for a message that says them (a send per
		 * exchange: the snprintf was a tenth of a UDP request's work). */
		if (sa == NULL || h->family == AF_UNIX) {
			if (h->family == AF_UNIX)
				snprintf(what, sizeof(what), "send to %.200s", t->name);
			else
				snprintf(what, sizeof(what), "send to %.200s:%d", t->name,
				         in->port);
			if (sa == NULL) {
				op_fail_no_target(c, h, what);
				return CALL_DONE;
			}
			if (op_unix_refused(c, h, what))
				return CALL_DONE;
		}
		if (sa != (const struct sockaddr *)&t->addr)
			memcpy(&t->addr, sa, len);
		t->addr_len = len;
		t->chosen = true;
	}
	enum_msg_flags_to_host(in->flags, &flags);
	return transmit(c, &in->data, flags, (struct sockaddr *)&t->addr, t->addr_len, ev);
}

OP(send_to, SendToRequest, SendToReply)
{
	struct call *c = closure_data;
	struct handle *h = op_lookup_handle(c, in->handle, HOP_SEND_TO);
	const char *host;
	int flags, family;

	if (h == NULL || host_flags(c, h, in->flags, &flags) != 0)
		return;
	if (in->family != SOCKRPC__FAMILY__FAMILY_UNSPEC &&
	    (enum_family_to_host(in->family, &family) != 0 || family != h->family)) {
		call_fail(c, h, SOCKRPC__CODE__EINVAL, 0,
		          "send_to family %s does not match the socket's",
		          enum_family_name(in->family));
		return;
	}
	host = op_target_host(c, h, in->host, in->port);
	if (host == NULL)
		return;
	c->step = send_to_step;
	c->timeout_ms = timeout_or_none(h->send_timeout_ms);
	if (op_set_target(c, h, host, in->port) != 0)
		return;
	handle_queue_call(h, c, CALL_TX);
}

static enum call_progress
receive_from_step(struct call *c, enum call_event ev)
{
	const Sockrpc__ReceiveFromRequest *in = (const Sockrpc__ReceiveFromRequest *)c->request;
	struct handle *h = c->handle;
	Sockrpc__ReceiveFromReply reply = SOCKRPC__RECEIVE_FROM_REPLY__INIT;
	Sockrpc__SocketState state;
	struct sockaddr_storage from;
	socklen_t from_len = sizeof(from);
	char host[INET6_ADDRSTRLEN + 108];
	enum call_progress p;
	uint8_t *data;
	size_t got = 0;
	bool eos;
	int flags = 0, port = 0;

	if (timed_out(c, ev))
		return CALL_DONE;
	enum_msg_flags_to_host(in->flags, &flags);
	memset(&from, 0, sizeof(from));
	p = take_bytes(c, in->length, flags, &from, &from_len, &data, &got, &eos);
	if (p != CALL_DONE || data == NULL)
		return p;
	host[0] = '\0';
	if (from.ss_family != AF_UNSPEC)
		address_format((struct sockaddr *)&from, from_len, host, sizeof(host), &port);
	reply.status = (Sockrpc__Status *)&status_ok;
	reply.state = handle_state_message(h, &state);
	reply.data.data = data;
	reply.data.len = got;
	reply.host = host;
	reply.port = port < 0 ? 0 : port;
	call_reply(c, &reply.base);
	free(data);
	return CALL_DONE;
}

OP(receive_from, ReceiveFromRequest, ReceiveFromReply)
{
	struct call *c = closure_data;
	struct handle *h = op_lookup_handle(c, in->handle, HOP_RECEIVE_FROM);
	int flags;

	if (h == NULL || host_flags(c, h, in->flags, &flags) != 0)
		return;
	queue_receiving(c, h, receive_from_step, reply_bound(in->length));
}
