/*
 * receive_splice.c - answers a large Receive on a stream socket without copying its bytes
 * through the daemon.
 *
 * splice(2) moves the bytes from the socket into a pipe and from the pipe into the
 * client's connection as page references: the daemon's two copies per byte (recv into a
 * buffer, write it to the client) go, which is what bounded bulk receive (tools/bench).
 * The reply is the same protobuf message as on the copying path, its `data` field
 * written last (protobuf fields may come in any order).
 *
 * One pipe serves the daemon (it has one thread); it is empty between replies. Everything
 * this path does not take (flags, small or open-ended lengths, output the client has not
 * taken yet, end of stream, nothing to read, a transport that cannot splice) goes to the
 * copying path in ops_io.c, which reads the same socket and answers the same way.
 *
 * Off (SOCKRPC_DISABLE=splice-receive): no pipe is opened, and every receive copies.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "payload.h"
#include "sockrpcd.h"

/* Below this a plain recv and write cost fewer system calls than splicing. */
#define SPLICE_MIN_LENGTH (16 * 1024)

int
relay_pipe_open(struct relay_pipe *p)
{
	int fds[2], size;

	p->capacity = 0;
	if (!fast_path_on(FAST_SPLICE_RECEIVE))
		return 0;
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
		return -errno;
	/* Room for a whole payload; a pipe keeps its default size (64 KiB) if refused. */
	fcntl(fds[1], F_SETPIPE_SZ, (int)SR_MAX_PAYLOAD);
	size = fcntl(fds[1], F_GETPIPE_SZ);
	if (size <= 0) {
		close(fds[0]);
		close(fds[1]);
		return -EINVAL;
	}
	p->rd = fds[0];
	p->wr = fds[1];
	p->capacity = (size_t)size;
	return 0;
}

void
relay_pipe_close(struct relay_pipe *p)
{
	if (p->capacity == 0)
		return;
	close(p->rd);
	close(p->wr);
	p->capacity = 0;
}

/*
 * Serves c, a Receive of `length` bytes with host `flags` on h, by splicing. Returns true
 * when c is answered (and gone), false when nothing was taken from the socket: the
 * copying path serves it then.
 */
bool
receive_by_splice(struct call *c, struct handle *h, int64_t length, int flags)
{
	static const ProtobufCFieldDescriptor *data_field;
	struct relay_pipe *p = &c->session->d->relay;
	Sockrpc__ReceiveReply reply = SOCKRPC__RECEIVE_REPLY__INIT;
	Sockrpc__SocketState state;
	size_t want;
	ssize_t n;

	if (p->capacity == 0 || c->session->t->ops->splice_from == NULL || h->type != SOCK_STREAM ||
	    (flags & ~MSG_DONTWAIT) != 0 || length < SPLICE_MIN_LENGTH ||
	    !session_output_drained(c->session))
		return false;
	want = (uint64_t)length < p->capacity ? (size_t)length : p->capacity;
	do
		n = splice(h->fd, NULL, p->wr, NULL, want, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
	while (n < 0 && errno == EINTR);
	/* A socket error is taken by the call that sees it: report it here, as the copying
	 * path would, or the next read sees none. Anything else took nothing from the socket
	 * (end of stream, nothing yet, a socket splice cannot read): the copying path. */
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINVAL) {
		call_fail_errno(c, h, errno, "receive failed");
		return true;
	}
	if (n <= 0)
		return false;
	h->bytes_in += (uint64_t)n;
	if (data_field == NULL)
		data_field = protobuf_c_message_descriptor_get_field_by_name(
		    &sockrpc__receive_reply__descriptor, "data");
	reply.status = (Sockrpc__Status *)&status_ok;
	reply.state = handle_state_message(h, &state);
	call_reply_spliced(c, &reply.base, data_field->id, p->rd, (size_t)n);
	return true;
}

/* Empties the pipe of what a failed reply left in it, so the next reply starts clean. */
static void
discard_from_pipe(int pipe_rd, size_t n)
{
	char scrap[4096];

	while (n > 0) {
		ssize_t got = read(pipe_rd, scrap, n < sizeof(scrap) ? n : sizeof(scrap));

		if (got > 0)
			n -= (size_t)got;
		else if (got < 0 && errno != EINTR)
			break;
	}
}

/*
 * Sends a reply whose bytes field number `data_field` holds the n bytes waiting in the
 * pipe pipe_rd; `reply` has every other field. The frame's head is written with what was
 * queued before it, then the bytes are spliced from the pipe to the client; what the
 * transport does not take at once is read from the pipe into the output buffer, behind
 * the head, and written as usual. The pipe is empty on return.
 */
void
session_send_spliced_reply(struct session *s, unsigned method, uint64_t call_id,
                           const ProtobufCMessage *reply, unsigned data_field, int pipe_rd,
                           size_t n)
{
	uint8_t key[SR_PAYLOAD_KEY_MAX];
	size_t key_len = sr_payload_key(key, data_field, n), left = n;
	ssize_t w;

	if (s->phase >= SESSION_CLOSING) {
		discard_from_pipe(pipe_rd, n); /* nobody will read this reply */
		return;
	}
	session_enter(s);
	if (session_queue_frame(s, method, call_id, reply, key, key_len, n) != 0) {
		discard_from_pipe(pipe_rd, n);
		goto out;
	}
	while (left > 0 && session_output_drained(s)) {
		w = s->t->ops->splice_from(s->t, pipe_rd, left);
		if (w <= 0)
			break;
		left -= (size_t)w;
	}
	while (left > 0) {
		w = read_into_buffer(s->out, pipe_rd, left);
		if (w > 0) {
			left -= (size_t)w;
		} else {
			log_error("session %llu: cannot queue a spliced reply: %s",
			          (unsigned long long)s->id, strerror(errno));
			discard_from_pipe(pipe_rd, left);
			session_close(s, "reply could not be queued");
			break;
		}
	}
out:
	session_leave(s);
}
