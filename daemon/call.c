/*
 * call.c - one request being served: its life from dispatch to reply.
 *
 * A call owns its decoded request and whatever progress it keeps while it waits
 * (a timer, a DNS job, a partial read). A request's payload of 4 KiB or more (a send's
 * data) is not copied out of its frame (proto/payload.h): it points into the session's
 * input buffer, which holds the frame while the call is dispatched, and a call that
 * outlives its dispatch copies it then (call_keep_payload), so only a send that has to
 * wait for its socket pays for a copy. Every call ends in exactly one reply, through
 * call_reply() or call_fail(), which also frees it; call_free() alone drops a call
 * without a reply (only when its session is already gone).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/util.h>

#include "payload.h"
#include "sockrpcd.h"

const Sockrpc__Status status_ok = SOCKRPC__STATUS__INIT;

/*
 * Takes ownership of `request`, even on failure (returns NULL only when out of memory);
 * `borrowed` is its payload field if that points into the frame (sr_payload_unpack()).
 */
struct call *
call_new(struct session *s, unsigned method, uint64_t id, ProtobufCMessage *request,
         ProtobufCBinaryData *borrowed, size_t charged_bytes)
{
	struct call *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		sr_payload_free_unpacked(request, NULL, borrowed);
		return NULL;
	}
	c->session = s;
	c->method = method;
	c->id = id;
	c->request = request;
	c->borrowed = borrowed;
	c->charged_bytes = charged_bytes;
	c->timeout_ms = -1;
	c->last_errno = 0;
	TAILQ_INSERT_TAIL(&s->calls, c, session_link);
	return c;
}

/*
 * Counts `bytes` more against the session's queue limit until the call ends: what a
 * receiving call's reply may hold, so that calls queued by a client that does not read
 * cannot make the daemon buffer more than the limit.
 */
void
call_charge(struct call *c, size_t bytes)
{
	c->charged_bytes += bytes;
	c->session->queued_bytes += bytes;
}

/* Gives a payload borrowed from the frame a copy of its own. -1: out of memory. */
int
call_keep_payload(struct call *c)
{
	ProtobufCBinaryData *bytes = c->borrowed;
	uint8_t *copy;

	if (bytes == NULL)
		return 0;
	if ((copy = malloc(bytes->len)) == NULL)
		return -1;
	memcpy(copy, bytes->data, bytes->len);
	bytes->data = copy; /* freed with the request, as protobuf-c's own copy would be */
	c->borrowed = NULL;
	return 0;
}

const char *
call_method_name(const struct call *c)
{
	return sockrpc__sock_rpc__descriptor.methods[c->method].name;
}

/* Whether c may wait for its socket: a blocking handle, and no MSG_DONTWAIT. */
bool
call_may_wait(const struct call *c)
{
	return c->handle->blocking && !c->dont_wait;
}

/* Sends `reply` (unless the session is closing) and frees the call. */
void
call_reply(struct call *c, ProtobufCMessage *reply)
{
	struct session *s = c->session;

	if (!s->closing)
		session_send_reply(s, c->method, c->id, reply);
	call_free(c);
}

/* The same for a Hello reply, with a reply channel if one can be made (it says whether). */
void
call_reply_with_channel(struct call *c, Sockrpc__HelloReply *reply)
{
	struct session *s = c->session;

	if (!s->closing)
		session_send_reply_with_channel(s, c->method, c->id, reply);
	call_free(c);
}

/* The same for a reply whose bytes field `data_field` is the n bytes in the pipe pipe_rd
 * (receive_splice.c); the pipe is empty on return. */
void
call_reply_spliced(struct call *c, ProtobufCMessage *reply, unsigned data_field, int pipe_rd,
                   size_t n)
{
	session_send_spliced_reply(c->session, c->method, c->id, reply, data_field, pipe_rd, n);
	call_free(c);
}

static void
fail_with(struct call *c, struct handle *h, int code, int err, const char *text)
{
	const ProtobufCMessageDescriptor *desc = sockrpc__sock_rpc__descriptor.methods[c->method].output;
	const ProtobufCFieldDescriptor *field;
	Sockrpc__Status status = SOCKRPC__STATUS__INIT;
	Sockrpc__SocketState state;
	const char *name = err ? strerrorname_np(err) : NULL;
	ProtobufCMessage *reply = calloc(1, desc->sizeof_message);

	if (reply == NULL) {
		call_free(c);
		return;
	}
	desc->message_init(reply);
	status.code = (Sockrpc__Code)code;
	status.errno_number = err;
	status.errno_name = (char *)(name ? name : "");
	status.message = (char *)text;
	/* Every reply has Status as field 1 and, about a handle, SocketState as field 2. */
	field = protobuf_c_message_descriptor_get_field(desc, 1);
	*(Sockrpc__Status **)((char *)reply + field->offset) = &status;
	field = protobuf_c_message_descriptor_get_field(desc, 2);
	if (h != NULL && field != NULL && field->descriptor == &sockrpc__socket_state__descriptor)
		*(Sockrpc__SocketState **)((char *)reply + field->offset) =
			handle_state_message(h, &state);
	call_reply(c, reply);
	free(reply);
}

/* Answers the call with an error status (code SR_*) and frees it; h may be NULL. */
void
call_fail(struct call *c, struct handle *h, int code, int err, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	fail_with(c, h, code, err, text);
}

/* Answers an OS error: the message is fmt's text, ": ", then strerror(err). */
void
call_fail_errno(struct call *c, struct handle *h, int err, const char *fmt, ...)
{
	char what[400], text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(text, sizeof(text), "%s: %s", what, strerror(err));
	fail_with(c, h, err == ETIMEDOUT ? SOCKRPC__CODE__ETIMEDOUT : SOCKRPC__CODE__EOS, err,
	          text);
}

void
call_free(struct call *c)
{
	if (c == NULL)
		return;
	handle_unqueue_call(c);
	if (c->timer)
		event_free(c->timer);
	if (c->resolving)
		resolve_cancel(c->resolving);
	if (c->lingering)
		linger_call_gone(c);
	if (c->candidates)
		evutil_freeaddrinfo(c->candidates);
	free(c->buf);
	sr_payload_free_unpacked(c->request, NULL, c->borrowed);
	if (c->session->dispatching == c)
		c->session->dispatching = NULL;
	TAILQ_REMOVE(&c->session->calls, c, session_link);
	session_release_call_bytes(c->session, c->charged_bytes);
	free(c);
}
