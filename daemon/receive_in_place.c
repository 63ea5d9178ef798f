/*
 * receive_in_place.c - answers a large Receive on a stream socket, over a transport that
 * cannot splice (TLS: the bytes must pass through the daemon to be encrypted), with one
 * copy of its bytes: recv(2) into a buffer of their own, whose chain is then moved behind
 * the reply's head in the output buffer. The copying path in ops_io.c takes two (recv
 * into a malloc'd buffer, then protobuf packs it into the output buffer). The reply is the
 * same message, its `data` field written last, as receive_splice.c writes it.
 *
 * Everything else (flags, small lengths, nothing to read yet, end of stream) goes to the
 * copying path, which reads the same socket and answers the same way.
 *
 * Off (SOCKRPC_DISABLE=receive-in-place): every such receive copies twice.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>

#include "payload.h"
#include "sockrpcd.h"

/* Below this the copy saved is worth less than a buffer of its own. */
#define IN_PLACE_MIN_LENGTH (16 * 1024)

/*
 * Queues a reply whose bytes field number `data_field` holds all of data (emptied); `reply`
 * has every other field. The frame's head is packed into the output buffer and data's
 * chains follow it there, not copied.
 */
void
session_send_buffer_reply(struct session *s, unsigned method, uint64_t call_id,
                          const ProtobufCMessage *reply, unsigned data_field, struct evbuffer *data)
{
	uint8_t key[SR_PAYLOAD_KEY_MAX];
	size_t n = evbuffer_get_length(data), key_len = sr_payload_key(key, data_field, n);

	if (s->phase >= SESSION_CLOSING)
		return; /* nobody will read this reply */
	session_enter(s);
	if (session_queue_frame(s, method, call_id, reply, key, key_len, n) == 0 &&
	    evbuffer_add_buffer(s->out, data) != 0)
		session_close(s, "reply could not be queued"); /* its head went without its bytes */
	session_leave(s);
}

/*
 * Serves c, a Receive of `length` bytes with host `flags` on h, reading in place. Returns
 * true when c is answered, false when nothing was taken from the socket: the copying path
 * serves it then.
 */
bool
receive_in_place(struct call *c, struct handle *h, int64_t length, int flags)
{
	static const ProtobufCFieldDescriptor *data_field;
	Sockrpc__ReceiveReply reply = SOCKRPC__RECEIVE_REPLY__INIT;
	Sockrpc__SocketState state;
	struct evbuffer_iovec vec;
	struct evbuffer *data;
	size_t want;
	ssize_t n;

	if (!fast_path_on(FAST_RECEIVE_IN_PLACE) || c->session->t->ops->splice_from != NULL ||
	    h->type != SOCK_STREAM || (flags & ~MSG_DONTWAIT) != 0 || length < IN_PLACE_MIN_LENGTH)
		return false;
	want = (uint64_t)length < SR_MAX_PAYLOAD ? (size_t)length : SR_MAX_PAYLOAD;
	/* One vector: an empty buffer reserves one contiguous chain. */
	if ((data = evbuffer_new()) == NULL ||
	    evbuffer_reserve_space(data, (ev_ssize_t)want, &vec, 1) != 1) {
		if (data != NULL)
			evbuffer_free(data);
		return false;
	}
	do
		n = recv(h->fd, vec.iov_base, want, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	/* A socket error is taken by the call that sees it: report it here, as the copying
	 * path would. Nothing yet, or the end of the stream: the copying path. */
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
		call_fail_errno(c, h, errno, "receive failed");
		evbuffer_free(data);
		return true;
	}
	if (n <= 0) {
		evbuffer_free(data);
		return false;
	}
	vec.iov_len = (size_t)n;
	evbuffer_commit_space(data, &vec, 1);
	h->bytes_in += (uint64_t)n;
	if (data_field == NULL)
		data_field = protobuf_c_message_descriptor_get_field_by_name(
		    &sockrpc__receive_reply__descriptor, "data");
	reply.status = (Sockrpc__Status *)&status_ok;
	reply.state = handle_state_message(h, &state);
	call_reply_buffer(c, &reply.base, data_field->id, data);
	evbuffer_free(data);
	return true;
}
