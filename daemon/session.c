/*
 * session.c - one client connection: framing, dispatch through the service descriptor,
 * the session's handle table, and backpressure. Sockets and their calls live in
 * handle.c and call.c; what each rpc does is in ops_*.c.
 *
 * The session reads its connection and writes its replies itself, into and out of two
 * evbuffers. (libevent 2.1's bufferevents read at most 4 KiB per syscall, which costs a
 * loop trip per 4 KiB of a bulk send.) Replies go back on the connection, or on the reply
 * channel that Hello may open (out_fd). Framing is incremental: a read takes what the
 * socket has, sized to finish the frame in progress; then every whole frame is removed
 * and dispatched. Replies are written at once when nothing is queued before them, and the
 * write event is armed only for what the socket did not take. A client whose replies pile
 * up, or whose calls hold too many bytes, stops being read until it drains.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "decode.h"
#include "frame.h"
#include "payload.h"
#include "sockrpcd.h"

/* Bytes a call costs besides its frame (the call, a small decoded message, bookkeeping), so
 * that 10,000 tiny pipelined calls also count against the queue limit. A round figure
 * that clients can count with (tests/integration/test_abuse.c does); a request whose
 * decoded message holds more is charged what it holds (dispatch). */
#define CALL_OVERHEAD_BYTES 2048
_Static_assert(sizeof(struct call) + 512 <= CALL_OVERHEAD_BYTES,
               "a call costs more than its charge");

/*
 * Room offered to one read (more only to finish a large frame). A session whose last read
 * filled the small room is streaming, and gets the large one: the Send frames its client
 * has queued then arrive in one read and leave in one sendmsg per handle
 * (dispatch_frames). Others keep the small one, as a buffer that large per small read
 * would cost an allocation of 2 MiB each time (libevent rounds up), which ASan, for one,
 * maps and unmaps. The fuzz target builds with a smaller READ_CHUNK (tools/fuzz/build.sh).
 */
#ifndef READ_CHUNK
#define READ_CHUNK (1024u * 1024u)
#endif
#define READ_ROOM_SMALL (READ_CHUNK < 65u * 1024u ? READ_CHUNK : 65u * 1024u)

static void on_readable(evutil_socket_t fd, short what, void *arg);
static void on_writable(evutil_socket_t fd, short what, void *arg);
static void on_hangup_check(evutil_socket_t fd, short what, void *arg);
static void on_close_due(evutil_socket_t fd, short what, void *arg);
static void flush_output(struct session *s);
static ssize_t read_into(struct evbuffer *buf, int fd, size_t room);

/* Takes ownership of fd (closed on failure too). */
struct session *
session_new(struct sockrpcd *d, int fd, const struct identity *peer)
{
	struct session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		goto fail;
	s->d = d;
	s->fd = fd;
	s->out_fd = fd;
	s->peer = *peer;
	s->next_handle_id = 1;
	TAILQ_INIT(&s->calls);
	TAILQ_INIT(&s->deferred_tx);
	s->in = evbuffer_new();
	s->out = evbuffer_new();
	s->ev_read = event_new(d->base, fd, EV_READ | EV_PERSIST, on_readable, s);
	s->ev_write = event_new(d->base, fd, EV_WRITE, on_writable, s);
	s->ev_hangup = event_new(d->base, -1, EV_PERSIST, on_hangup_check, s);
	s->ev_close = evtimer_new(d->base, on_close_due, s);
	if (s->in == NULL || s->out == NULL || s->ev_read == NULL || s->ev_write == NULL ||
	    s->ev_hangup == NULL || s->ev_close == NULL)
		goto fail;
	evutil_make_socket_nonblocking(fd);
	frame_send_room(fd);
	event_add(s->ev_read, NULL);
	{
		struct timeval tv = { HELLO_TIMEOUT_MS / 1000, (HELLO_TIMEOUT_MS % 1000) * 1000 };

		evtimer_add(s->ev_close, &tv); /* cancelled by a Hello */
	}
	s->id = ++d->next_session_id;
	TAILQ_INSERT_TAIL(&d->sessions, s, link);
	d->n_sessions++;
	log_debug("session %llu: uid %u gid %u pid %d connected", (unsigned long long)s->id,
	          (unsigned)peer->uid, (unsigned)peer->gid, (int)peer->pid);
	return s;
fail:
	if (s != NULL) {
		if (s->in)
			evbuffer_free(s->in);
		if (s->out)
			evbuffer_free(s->out);
		if (s->ev_read)
			event_free(s->ev_read);
		if (s->ev_write)
			event_free(s->ev_write);
		if (s->ev_hangup)
			event_free(s->ev_hangup);
		if (s->ev_close)
			event_free(s->ev_close);
		free(s);
	}
	close(fd);
	return NULL;
}

static void
free_session(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	free(s->handles);
	free(s);
}

/*
 * Ends the session: closes every handle it owns (their waiting calls are dropped, as
 * nobody can read the answers), frees its calls and connection. The struct itself is
 * freed from the loop afterwards, so a callback that is still running on it stays safe.
 */
void
session_close(struct session *s, const char *reason)
{
	struct sockrpcd *d = s->d;
	struct call *c;

	if (s->closing)
		return;
	s->closing = true;
	log_debug("session %llu closed: %s", (unsigned long long)s->id, reason);
	while (s->n_handles > 0) {
		struct handle *h = s->handles[s->n_handles - 1];

		handle_close(h, reason);
		handle_free(h);
	}
	while ((c = TAILQ_FIRST(&s->calls)) != NULL)
		call_free(c);
	event_free(s->ev_read);
	event_free(s->ev_write);
	event_free(s->ev_hangup);
	event_free(s->ev_close);
	evbuffer_free(s->in);
	evbuffer_free(s->out);
	if (s->out_fd != s->fd)
		close(s->out_fd);
	close(s->fd);
	s->fd = s->out_fd = -1;
	TAILQ_REMOVE(&d->sessions, s, link);
	d->n_sessions--;
	server_session_gone(d, s);
	if (event_base_once(d->base, -1, EV_TIMEOUT, free_session, s, NULL) != 0)
		log_error("session %llu: cannot schedule its release", (unsigned long long)s->id);
}

/* Hello arrived: the session may now live as long as its client wants. */
void
session_hello_received(struct session *s)
{
	s->hello_done = true;
	evtimer_del(s->ev_close);
}

/*
 * Closes the session from the loop, soon. Code that runs inside a call (writing its
 * reply, say) uses this, since session_close() frees every call of the session.
 */
static void
close_later(struct session *s, const char *reason)
{
	if (s->closing || s->close_reason != NULL)
		return;
	s->close_reason = reason;
	event_del(s->ev_read);
	event_active(s->ev_close, EV_TIMEOUT, 0);
}

static void
on_close_due(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	if (s->close_reason == NULL)
		s->close_reason = s->hello_done ? "its client did not take its last replies in time"
		                                : "no Hello in time";
	session_close(s, s->close_reason);
}

/*
 * Stops reading the connection; a timer then looks every HANGUP_CHECK_MS whether the client
 * hung up. Nothing watches the connection in the loop meanwhile: libevent reports an error
 * on a socket (a client gone with replies unread leaves ECONNRESET) as readable and
 * writable, never as closed, so an event for EV_CLOSED alone would miss it while epoll
 * woke the loop for it again and again; and an event for reading would wake it for every
 * request the session is not reading.
 */
static void
stop_reading(struct session *s)
{
	struct timeval tv = { 0, HANGUP_CHECK_MS * 1000 };

	event_del(s->ev_read);
	evtimer_add(s->ev_hangup, &tv);
}

static void
resume_reading(struct session *s)
{
	evtimer_del(s->ev_hangup);
	event_add(s->ev_read, NULL);
}

/* A session that does not read still ends when its client hangs up or its connection (or
 * reply channel) fails. */
static void
on_hangup_check(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	struct pollfd p[2] = { { .fd = s->fd, .events = POLLRDHUP },
		               { .fd = s->out_fd, .events = 0 } };
	int n = poll(p, s->out_fd != s->fd ? 2 : 1, 0);

	if (n > 0 && ((p[0].revents | p[1].revents) & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
		session_close(s, "client disconnected");
}

/*
 * Stops reading; if `why` is given, answers every call in flight with EDAEMON and it.
 * The session closes once its queued replies are written, or after CLOSE_FLUSH_MS if
 * its client does not take them.
 */
void
session_close_after_flush(struct session *s, const char *why)
{
	struct timeval tv = { CLOSE_FLUSH_MS / 1000, (CLOSE_FLUSH_MS % 1000) * 1000 };
	struct call *c;

	if (s->closing || s->close_after_flush)
		return;
	s->close_after_flush = true;
	stop_reading(s);
	evtimer_add(s->ev_close, &tv);
	s->in_dispatch++; /* the replies below go out in one write, after the loop */
	while (why != NULL && (c = TAILQ_FIRST(&s->calls)) != NULL)
		call_fail(c, c->handle, SOCKRPC__CODE__EDAEMON, 0, "%s", why);
	s->in_dispatch--;
	flush_output(s);
}

static void
update_reading(struct session *s)
{
	size_t pending = s->queued_bytes + evbuffer_get_length(s->out);
	bool too_much = pending > s->d->opt.limits.max_queued_bytes;

	if (too_much && !s->reading_paused) {
		stop_reading(s);
		s->reading_paused = true;
	} else if (!too_much && s->reading_paused && !s->close_after_flush) {
		s->reading_paused = false;
		resume_reading(s);
		/* Whole frames may already be buffered: serve them without waiting for more. */
		if (!s->in_dispatch && evbuffer_get_length(s->in) >= SR_FRAME_HEADER_SIZE)
			event_active(s->ev_read, EV_READ, 0);
	}
}

void
session_release_call_bytes(struct session *s, size_t bytes)
{
	s->queued_bytes -= bytes;
	if (!s->closing)
		update_reading(s);
}

/*
 * Writes the output buffer while the client takes it. Returns 1 when it is then empty,
 * else the last write's result: -1 with errno (EAGAIN: the client is full), or 0.
 */
static int
write_queued(struct session *s)
{
	while (evbuffer_get_length(s->out) > 0) {
		int n = evbuffer_write(s->out, s->out_fd);

		if (n <= 0 && !(n < 0 && errno == EINTR))
			return n;
	}
	return 1;
}

/* Writes what the socket takes now; arms the write event for the rest. */
static void
flush_output(struct session *s)
{
	int n = write_queued(s);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		event_add(s->ev_write, NULL);
	} else if (n <= 0) {
		close_later(s, n == 0 ? "client disconnected" : "client connection failed");
		return;
	}
	if (s->close_after_flush && evbuffer_get_length(s->out) == 0) {
		close_later(s, "closed after its last reply");
		return;
	}
	update_reading(s);
}

static void
on_writable(evutil_socket_t fd, short what, void *arg)
{
	flush_output(arg);
}

/*
 * Frames `reply` into the output buffer, followed by `key` (key_len bytes); the frame's
 * length counts `more` bytes after them that the caller sends itself. Returns 0, or -1
 * when the reply cannot be framed (the session is then closing).
 */
static int
queue_frame(struct session *s, unsigned method, uint64_t call_id, const ProtobufCMessage *reply,
            const uint8_t *key, size_t key_len, size_t more)
{
	struct sr_frame_header h = { .method = (uint16_t)method, .flags = SR_FRAME_FLAG_REPLY,
		                     .call_id = call_id };
	size_t size = protobuf_c_message_get_packed_size(reply) + key_len;
	struct evbuffer_iovec vec;
	uint8_t *at;

	if (size + more > SR_MAX_FRAME ||
	    evbuffer_reserve_space(s->out, SR_FRAME_HEADER_SIZE + size, &vec, 1) < 1) {
		log_error("session %llu: cannot frame a %zu-byte reply", (unsigned long long)s->id,
		          size + more);
		close_later(s, "reply could not be framed");
		return -1;
	}
	h.length = (uint32_t)(size + more);
	at = vec.iov_base;
	frame_header_encode(&h, at);
	at += SR_FRAME_HEADER_SIZE;
	at += protobuf_c_message_pack(reply, at);
	if (key_len > 0)
		memcpy(at, key, key_len);
	vec.iov_len = SR_FRAME_HEADER_SIZE + size;
	evbuffer_commit_space(s->out, &vec, 1);
	return 0;
}

/* Frames and queues one reply; it is written at once unless a batch of calls is being
 * dispatched (then once, after the batch). */
void
session_send_reply(struct session *s, unsigned method, uint64_t call_id,
                   const ProtobufCMessage *reply)
{
	if (queue_frame(s, method, call_id, reply, NULL, 0, 0) != 0)
		return;
	if (!s->in_dispatch && !event_pending(s->ev_write, EV_WRITE, NULL))
		flush_output(s);
}

/*
 * Writes the whole output buffer to the connection in one sendmsg, with fd attached
 * (SCM_RIGHTS). Returns 0, or -1 when the client did not take all of it: what is left
 * could not follow on another socket.
 */
static int
send_output_with_fd(struct session *s, int fd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = { .iov_len = evbuffer_get_length(s->out) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
		              .msg_controllen = sizeof(control.buf) };
	struct cmsghdr *cm;
	ssize_t n;

	memset(&control, 0, sizeof(control));
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	iov.iov_base = evbuffer_pullup(s->out, -1);
	do
		n = sendmsg(s->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 || (size_t)n != iov.iov_len)
		return -1;
	evbuffer_drain(s->out, iov.iov_len);
	return 0;
}

/*
 * Answers Hello with a reply channel: a new socket pair, whose client end goes with the
 * reply and whose daemon end every later reply goes to. A client blocked reading its
 * connection is woken each time the daemon reads one of its requests (the kernel signals
 * room to write); on the channel it sleeps until its reply comes. Without a channel
 * (nothing to make it with, or replies already queued) the reply says so and goes on
 * the connection.
 */
void
session_send_reply_with_channel(struct session *s, unsigned method, uint64_t call_id,
                                Sockrpc__HelloReply *reply)
{
	int pair[2]; /* [0] the daemon's end, [1] the client's */

	reply->reply_channel = false;
	if (evbuffer_get_length(s->out) > 0 || s->out_fd != s->fd) {
		session_send_reply(s, method, call_id, &reply->base);
		return;
	}
	/* The client's end blocks: its reads wait in the kernel. Only the daemon's is made
	 * non-blocking (each end is its own open file, so the flag is not shared). */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
		log_warn("session %llu: no reply channel: %s", (unsigned long long)s->id,
		         strerror(errno));
		session_send_reply(s, method, call_id, &reply->base);
		return;
	}
	reply->reply_channel = true;
	if (queue_frame(s, method, call_id, &reply->base, NULL, 0, 0) != 0 ||
	    send_output_with_fd(s, pair[1]) != 0) {
		close(pair[0]);
		close(pair[1]);
		close_later(s, "its reply channel could not be sent");
		return;
	}
	close(pair[1]);
	evutil_make_socket_nonblocking(pair[0]);
	frame_send_room(pair[0]);
	s->out_fd = pair[0];
	event_assign(s->ev_write, s->d->base, s->out_fd, EV_WRITE, on_writable, s);
}

/* Writes what is queued, if the client takes it now: true when a reply can then go
 * straight to the client, the condition for session_send_spliced_reply(). */
bool
session_output_drained(struct session *s)
{
	return !s->closing && s->close_reason == NULL && !s->close_after_flush &&
	       write_queued(s) == 1;
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
 * connection does not take at once is read from the pipe into the output buffer, behind
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

	if (s->closing || queue_frame(s, method, call_id, reply, key, key_len, n) != 0) {
		discard_from_pipe(pipe_rd, n); /* nobody will read this reply */
		return;
	}
	while (left > 0 && write_queued(s) == 1) {
		w = splice(pipe_rd, NULL, s->out_fd, NULL, left, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (w > 0)
			left -= (size_t)w;
		else if (w == 0 || errno != EINTR)
			break;
	}
	while (left > 0) {
		w = read_into(s->out, pipe_rd, left);
		if (w > 0) {
			left -= (size_t)w;
		} else {
			log_error("session %llu: cannot queue a spliced reply: %s",
			          (unsigned long long)s->id, strerror(errno));
			discard_from_pipe(pipe_rd, left);
			close_later(s, "reply could not be queued");
			return;
		}
	}
	flush_output(s);
}

/* A reply with only a status decodes as any reply type, so it can answer a frame whose
 * method is unknown. The session then closes once the reply is written. */
static void
refuse_frame(struct session *s, const struct sr_frame_header *h, int code, const char *why)
{
	Sockrpc__HelloReply reply = SOCKRPC__HELLO_REPLY__INIT;
	Sockrpc__Status status = SOCKRPC__STATUS__INIT;
	unsigned method = h->method < sockrpc__sock_rpc__descriptor.n_methods ? h->method : 0;

	log_info("session %llu: closing: %s", (unsigned long long)s->id, why);
	status.code = (Sockrpc__Code)code;
	status.message = (char *)why;
	reply.status = &status;
	session_send_reply(s, method, h->call_id, &reply.base);
	session_close_after_flush(s, NULL);
}

static void
dispatch(struct session *s, const struct sr_frame_header *h, const uint8_t *body)
{
	const ProtobufCMethodDescriptor *m = &sockrpc__sock_rpc__descriptor.methods[h->method];
	ProtobufCMessage *request;
	ProtobufCBinaryData *borrowed;
	struct call *c;
	size_t held = 0, charge;
	bool over_budget;

	request = sr_decode(m->input, body, h->length, DECODE_BUDGET(h->length), &held,
	                    &borrowed, &over_budget);
	if (request == NULL || !protobuf_c_message_check(request)) {
		char why[128];

		snprintf(why, sizeof(why), "%s request %s", m->name,
		         over_budget ? "takes too much memory to decode (too many fields)"
		                     : "does not decode");
		if (request)
			sr_payload_free_unpacked(request, NULL, borrowed);
		refuse_frame(s, h, SOCKRPC__CODE__EPROTO, why);
		return;
	}
	/* The frame (a payload kept by call_keep_payload lies within it) and the call with
	 * its decoded request, at least CALL_OVERHEAD_BYTES. */
	charge = SR_FRAME_HEADER_SIZE + h->length;
	charge += sizeof(*c) + held > CALL_OVERHEAD_BYTES ? sizeof(*c) + held : CALL_OVERHEAD_BYTES;
	s->queued_bytes += charge;
	c = call_new(s, h->method, h->call_id, request, borrowed, charge);
	if (c == NULL) {
		s->queued_bytes -= charge;
		session_close(s, "out of memory");
		return;
	}
	/* Ops answer through call_reply()/call_fail() with the call as closure data. */
	s->dispatching = c;
	s->d->service.base.invoke(&s->d->service.base, h->method, request, NULL, c);
	/* Still here: the call waits, and its payload must outlive the frame (freed next);
	 * in a batch of sends, the frame stays until the batch ends (end_send_batch). */
	if ((c = s->dispatching) != NULL) {
		s->dispatching = NULL;
		if (!s->batching_sends && call_keep_payload(c) != 0)
			session_close(s, "out of memory");
	}
}

/* Checks a request's header; before Hello, only a Hello of SR_MAX_HELLO_FRAME at most. */
static int
check_header(const struct session *s, const struct sr_frame_header *h, const char **why)
{
	uint32_t max = s->hello_done ? SR_MAX_FRAME : SR_MAX_HELLO_FRAME;

	if (frame_header_check(h, max, sockrpc__sock_rpc__descriptor.n_methods, 0, why) != 0)
		return -1;
	if (!s->hello_done && h->method != SOCKRPC_HELLO_METHOD) {
		*why = "the first call must be Hello";
		return -1;
	}
	return 0;
}

static bool
is_send_frame(const struct sr_frame_header *h)
{
	return sockrpc__sock_rpc__descriptor.methods[h->method].input ==
	       &sockrpc__send_request__descriptor;
}

/*
 * Ends a batch of Send frames: their handles' deferred queues run (each handle's sends
 * leave together, ops_io.c), a send still waiting copies its payload, and the frames,
 * `*batched` bytes at the head of the input buffer, are drained.
 */
static void
end_send_batch(struct session *s, size_t *batched)
{
	struct call *c;

	s->batching_sends = false;
	if (*batched == 0)
		return;
	handle_run_deferred(s);
	if (s->closing)
		return;
	TAILQ_FOREACH(c, &s->calls, session_link) {
		if (call_keep_payload(c) != 0) {
			session_close(s, "out of memory");
			return;
		}
	}
	evbuffer_drain(s->in, *batched);
	*batched = 0;
	update_reading(s);
}

/*
 * Removes and dispatches every whole frame in the input buffer. Consecutive Send frames
 * that lie in one piece of the buffer form a batch: they stay in the buffer, their
 * payloads pointing into it, until the batch ends (end_send_batch).
 */
static void
dispatch_frames(struct session *s)
{
	size_t batched = 0; /* bytes of the batch's frames, at the head of s->in */

	s->in_dispatch++;
	while (!s->closing && !s->close_after_flush && !s->reading_paused) {
		size_t avail = evbuffer_get_length(s->in) - batched;
		size_t in_one_piece = (size_t)evbuffer_get_contiguous_space(s->in);
		struct sr_frame_header h;
		const char *why;
		uint8_t *bytes;
		size_t size;
		bool send;

		if (avail < SR_FRAME_HEADER_SIZE)
			break;
		if (batched > 0 && batched + SR_FRAME_HEADER_SIZE > in_one_piece) {
			end_send_batch(s, &batched);
			continue;
		}
		bytes = evbuffer_pullup(s->in, batched + SR_FRAME_HEADER_SIZE) + batched;
		frame_header_decode(bytes, &h);
		if (check_header(s, &h, &why) != 0) {
			refuse_frame(s, &h, SOCKRPC__CODE__EPROTO, why);
			break;
		}
		size = SR_FRAME_HEADER_SIZE + h.length;
		if (avail < size) {
			s->frame_size = size;
			break;
		}
		send = is_send_frame(&h);
		if (batched > 0 && (!send || batched + size > in_one_piece)) {
			end_send_batch(s, &batched);
			continue;
		}
		s->frame_size = 0;
		s->batching_sends = send;
		bytes = evbuffer_pullup(s->in, batched + size) + batched;
		dispatch(s, &h, bytes + SR_FRAME_HEADER_SIZE);
		if (s->closing)
			return; /* freed from the loop later; nothing of it is used again */
		if (s->batching_sends) {
			batched += size;
		} else {
			evbuffer_drain(s->in, size);
			update_reading(s);
		}
	}
	end_send_batch(s, &batched);
	s->in_dispatch--;
	if (!s->closing)
		flush_output(s);
}

/*
 * Reads from fd into buf with one readv, at most `room` bytes. Returns readv's result;
 * -1 with ENOMEM when buf cannot grow.
 */
static ssize_t
read_into(struct evbuffer *buf, int fd, size_t room)
{
	struct evbuffer_iovec vec[2];
	int n_vec = evbuffer_reserve_space(buf, (ev_ssize_t)room, vec, 2);
	ssize_t n;

	if (n_vec < 1) {
		errno = ENOMEM;
		return -1;
	}
	if (vec[0].iov_len >= room) {
		vec[0].iov_len = room;
		n_vec = 1;
	} else if (n_vec == 2 && vec[1].iov_len > room - vec[0].iov_len) {
		vec[1].iov_len = room - vec[0].iov_len;
	}
	do
		n = readv(fd, (struct iovec *)vec, n_vec);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		evbuffer_commit_space(buf, vec, 0);
		return n;
	}
	if ((size_t)n <= vec[0].iov_len) {
		vec[0].iov_len = (size_t)n;
		n_vec = 1;
	} else {
		vec[1].iov_len = (size_t)n - vec[0].iov_len;
	}
	evbuffer_commit_space(buf, vec, n_vec);
	return n;
}

/* One read, sized to finish the frame in progress (one syscall for a 1 MiB send). */
static void
on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	size_t have = evbuffer_get_length(s->in);
	size_t want = s->frame_size > have ? s->frame_size - have : 0;
	/* Before Hello, no more room than a Hello takes (SR_MAX_HELLO_FRAME). */
	size_t room = !s->hello_done ? SR_FRAME_HEADER_SIZE + SR_MAX_HELLO_FRAME
	              : s->streaming ? READ_CHUNK
	                             : READ_ROOM_SMALL;
	ssize_t n = read_into(s->in, s->fd, want > room ? want : room);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		dispatch_frames(s); /* woken to serve frames read before a pause */
		return;
	}
	if (n <= 0) {
		session_close(s, n == 0 ? "client disconnected" : strerror(errno));
		return;
	}
	s->streaming = (size_t)n >= READ_ROOM_SMALL;
	dispatch_frames(s);
}

/* The handle table: open handles sorted by id (ids only grow), found by binary search. */
struct handle *
session_find_handle(struct session *s, int64_t id)
{
	unsigned lo = 0, hi = s->n_handles;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (s->handles[mid]->id == id)
			return s->handles[mid];
		if (s->handles[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Gives h the next id and adds it. Returns 0, -ENOMEM, or -EMFILE past the limit. */
int
session_add_handle(struct session *s, struct handle *h)
{
	if (s->n_handles >= s->d->opt.limits.max_handles)
		return -EMFILE;
	if (s->n_handles == s->cap_handles) {
		unsigned cap = s->cap_handles ? s->cap_handles * 2 : 8;
		struct handle **grown = realloc(s->handles, cap * sizeof(*grown));

		if (grown == NULL)
			return -ENOMEM;
		s->handles = grown;
		s->cap_handles = cap;
	}
	h->id = s->next_handle_id++;
	s->handles[s->n_handles++] = h;
	return 0;
}

void
session_remove_handle(struct session *s, struct handle *h)
{
	for (unsigned i = 0; i < s->n_handles; i++) {
		if (s->handles[i] == h) {
			memmove(&s->handles[i], &s->handles[i + 1],
			        (s->n_handles - i - 1) * sizeof(*s->handles));
			s->n_handles--;
			return;
		}
	}
}
