/*
 * call.c - one request being served: its life from dispatch to reply.
 *
 * A call owns its decoded request and whatever progress it keeps while it waits
 * (a timer, a DNS job, a partial read). A request's payload of 4 KiB or more (a send's
 * data) is not copied out of its frame (proto/payload.h): it points into the session's
 * input buffer, which holds the frame while the call is dispatched, and a call that
 * outlives its dispatch copies it then (call_keep_payload), so only a send that has to
 * wait for its socket pays for a copy (borrowed payloads; off with
 * SOCKRPC_DISABLE=borrowed-payloads, see dispatch in session.c).
 *
 * Every call ends in exactly one reply, through call_reply() or call_fail(). A reply only
 * marks the call answered: the handler or step that answered it may go on using it. Its
 * runner frees it once the handler or step has returned (call_finish: the dispatcher,
 * the handle's queue runner, the event that resumed it); call_free() alone drops a call
 * without a reply (when its session ends).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* Whether c may be answered; a second answer is a bug, and is dropped. */
static bool
answerable(struct call *c)
{
	if (!c->answered)
		return true;
	log_error("session %llu: %s call %llu answered twice", (unsigned long long)c->session->id,
	          call_method_name(c), (unsigned long long)c->id);
	return false;
}

/* Queues `reply` (unless the session is closing) and marks the call answered. */
void
call_reply(struct call *c, ProtobufCMessage *reply)
{
	if (!answerable(c))
		return;
	c->answered = true;
	session_send_reply(c->session, c->method, c->id, reply);
}

/* The same for a Hello reply, with a reply channel if one can be made (it says whether). */
void
call_reply_with_channel(struct call *c, Sockrpc__HelloReply *reply)
{
	if (!answerable(c))
		return;
	c->answered = true;
	session_send_reply_with_channel(c->session, c->method, c->id, reply);
}

/* Answers c with reply and fd passed along (session_fd.c). Takes fd, even on failure. */
void
call_reply_with_fd(struct call *c, ProtobufCMessage *reply, int fd)
{
	if (!answerable(c)) {
		close(fd);
		return;
	}
	c->answered = true;
	session_send_reply_with_fd(c->session, c->method, c->id, reply, fd);
}

/* The same for a reply whose bytes field `data_field` is the n bytes in the pipe pipe_rd
 * (receive_splice.c); the pipe is empty on return. */
void
call_reply_spliced(struct call *c, ProtobufCMessage *reply, unsigned data_field, int pipe_rd,
                   size_t n)
{
	c->answered = true;
	session_send_spliced_reply(c->session, c->method, c->id, reply, data_field, pipe_rd, n);
}

/* The same for a reply whose bytes field `data_field` is all of data, moved into the output
 * buffer (receive_in_place.c). */
void
call_reply_buffer(struct call *c, ProtobufCMessage *reply, unsigned data_field,
                  struct evbuffer *data)
{
	if (!answerable(c))
		return;
	c->answered = true;
	session_send_buffer_reply(c->session, c->method, c->id, reply, data_field, data);
}

static void
fail_with(struct call *c, struct handle *h, int code, int err, const char *text)
{
	const ProtobufCMessageDescriptor *desc =
	    sockrpc__sock_rpc__descriptor.methods[c->method].output;
	const ProtobufCFieldDescriptor *field;
	Sockrpc__Status status = SOCKRPC__STATUS__INIT;
	Sockrpc__SocketState state;
	const char *name = err ? strerrorname_np(err) : NULL;
	ProtobufCMessage *reply = calloc(1, desc->sizeof_message);

	if (reply == NULL) {
		c->failed_code = code;
		c->answered = true; /* no reply can be made: the call ends all the same */
		return;
	}
	desc->message_init(reply);
	c->failed_code = code;
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

/* Answers the call with an error status (code SR_*); h may be NULL. */
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

/* Frees c if it is answered and no handler runs on it: true when it is gone. For the
 * code that ran it, after its handler or step returned. */
bool
call_finish(struct call *c)
{
	if (!c->answered || c->in_handler)
		return false;
	call_free(c);
	return true;
}

/* Gives c a target (connect, bind, send_to). NULL: out of memory. */
struct call_target *
call_target_new(struct call *c)
{
	if (c->target == NULL)
		c->target = calloc(1, sizeof(*c->target));
	return c->target;
}

static void
target_free(struct call_target *t)
{
	if (t == NULL)
		return;
	if (t->resolving)
		resolve_cancel(t->resolving);
	if (t->candidates)
		evutil_freeaddrinfo(t->candidates);
	free(t);
}

void
call_free(struct call *c)
{
	if (c == NULL)
		return;
	handle_unqueue_call(c);
	if (c->timer)
		event_free(c->timer);
	target_free(c->target);
	if (c->op_free)
		c->op_free(c);
	sr_payload_free_unpacked(c->request, NULL, c->borrowed);
	TAILQ_REMOVE(&c->session->calls, c, session_link);
	session_release_call_bytes(c->session, c->charged_bytes);
	free(c);
}
