/*
 * session.c - one client connection: framing, dispatch through the service descriptor,
 * the session's handle table, and backpressure. Sockets and their calls live in
 * handle.c and call.c; what each rpc does is in ops_*.c.
 *
 * The session reads requests and writes replies through its transport (transport_*.c),
 * into and out of two evbuffers. (libevent 2.1's bufferevents read at most 4 KiB per
 * syscall, which costs a loop trip per 4 KiB of a bulk send.) Framing is incremental: a
 * read takes what the transport has, sized to finish the frame in progress; then every
 * whole frame is removed and dispatched. Replies queued while the session's code runs
 * (session_enter/leave) are written once, when it returns; the write event is armed only
 * for what the transport did not take. A client whose replies pile up, or whose calls
 * hold too many bytes, stops being read until it drains.
 *
 * The phase (enum session_phase) is the session's state machine; session_close() is its
 * one way out, deferred to the loop when it is called from inside the session's code.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
_Static_assert(sizeof(struct call) + sizeof(struct call_target) + 512 <= CALL_OVERHEAD_BYTES,
               "a call costs more than its charge");

/*
 * Room offered to one read (more only to finish a large frame). A session whose last read
 * filled the small room is streaming, and gets the large one: the Send frames its client
 * has queued then arrive in one read and leave in one sendmsg per handle
 * (send_batch.c). Others keep the small one, as a buffer that large per small read
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

/*
 * Bytes the transport has taken from the socket but not handed over (TLS records that did
 * not fit the last read's room) wake no event: read them from the loop, or the session
 * would stall with a request inside OpenSSL.
 */
static void
wake_for_pending(struct session *s)
{
	if (s->phase <= SESSION_OPEN && !s->paused && s->t->ops->pending != NULL &&
	    s->t->ops->pending(s->t))
		event_active(s->ev_read, EV_READ, 0);
}

static void
arm_deadline(struct session *s, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(s->ev_close, &tv);
}

/* Takes ownership of fd (closed on failure too). */
struct session *
session_new(struct sockrpcd *d, int fd, const struct identity *peer)
{
	struct transport *t = transport_unix_new(fd);

	return t != NULL ? session_new_transport(d, t, peer) : NULL;
}

/* Takes ownership of t (freed on failure too). */
struct session *
session_new_transport(struct sockrpcd *d, struct transport *t, const struct identity *peer)
{
	struct session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		goto fail;
	s->d = d;
	s->t = t;
	s->phase = SESSION_HELLO;
	s->peer = *peer;
	s->next_handle_id = 1;
	s->next_client_id = SR_CLIENT_HANDLE_BASE;
	TAILQ_INIT(&s->calls);
	send_batch_init(&s->batch);
	s->in = evbuffer_new();
	s->out = evbuffer_new();
	s->ev_read = event_new(d->base, t->read_fd, EV_READ | EV_PERSIST, on_readable, s);
	s->ev_write = event_new(d->base, t->write_fd, EV_WRITE, on_writable, s);
	s->ev_hangup = event_new(d->base, -1, EV_PERSIST, on_hangup_check, s);
	s->ev_close = evtimer_new(d->base, on_close_due, s);
	if (s->in == NULL || s->out == NULL || s->ev_read == NULL || s->ev_write == NULL ||
	    s->ev_hangup == NULL || s->ev_close == NULL)
		goto fail;
	event_add(s->ev_read, NULL);
	/* A TLS client may have sent Hello with its last handshake flight. */
	if (t->ops->pending != NULL && t->ops->pending(t))
		event_active(s->ev_read, EV_READ, 0);
	arm_deadline(s, HELLO_TIMEOUT_MS); /* cancelled by a Hello */
	/* Several workers: each its own residue, so ids stay unique (priv_parent.c). */
	s->id = d->next_session_id += d->n_workers > 1 ? d->n_workers : 1;
	TAILQ_INSERT_TAIL(&d->sessions, s, link);
	d->n_sessions++;
	if (peer->transport == IDENTITY_TLS)
		log_debug("session %llu: TLS %s (%s) connected", (unsigned long long)s->id,
		          peer->peer_address, peer->n_principals > 0 ? peer->principals[0] : "");
	else
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
	t->ops->free(t);
	return NULL;
}

static void
free_session(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	free(s->handles);
	handle_ids_free(s);
	free(s);
}

/* Closes every handle (their waiting calls are dropped: nobody can read the answers),
 * frees the calls and the connection. The struct is freed from the loop afterwards. */
static void
teardown(struct session *s)
{
	struct sockrpcd *d = s->d;
	struct call *c;

	s->phase = SESSION_CLOSED;
	log_debug("session %llu closed: %s", (unsigned long long)s->id, s->close_reason);
	while (s->n_handles > 0) {
		struct handle *h = s->handles[s->n_handles - 1];

		handle_close(h, s->close_reason);
		handle_free(h);
	}
	while ((c = TAILQ_FIRST(&s->calls)) != NULL)
		call_free(c);
	session_close_deferred(s);
	event_free(s->ev_read);
	event_free(s->ev_write);
	event_free(s->ev_hangup);
	event_free(s->ev_close);
	evbuffer_free(s->in);
	evbuffer_free(s->out);
	session_drop_passing(s);
	s->t->ops->free(s->t);
	s->t = NULL;
	TAILQ_REMOVE(&d->sessions, s, link);
	d->n_sessions--;
	server_session_gone(d, s);
	if (event_base_once(d->base, -1, EV_TIMEOUT, free_session, s, NULL) != 0)
		log_error("session %llu: cannot schedule its release", (unsigned long long)s->id);
}

/*
 * Ends the session, the one way it ends. Called inside the session's own code (a frame
 * being dispatched, a reply being written, a call's step), it only marks the session
 * CLOSING and stops reading; the teardown then runs from the loop (ev_close), so that
 * nothing the callers still hold is freed under them.
 */
void
session_close(struct session *s, const char *reason)
{
	if (s->phase == SESSION_CLOSED)
		return;
	if (s->phase != SESSION_CLOSING) {
		s->close_reason = reason;
		s->phase = SESSION_CLOSING;
	}
	if (s->depth > 0) {
		event_del(s->ev_read);
		evtimer_del(s->ev_hangup);
		event_active(s->ev_close, EV_TIMEOUT, 0);
		return;
	}
	teardown(s);
}

/* Hello arrived: the session may now live as long as its client wants. */
void
session_hello_received(struct session *s)
{
	s->phase = SESSION_OPEN;
	evtimer_del(s->ev_close);
}

/* A deadline passed (Hello, drain), or a close was deferred. */
static void
on_close_due(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	if (s->phase == SESSION_HELLO)
		session_close(s, "no Hello in time");
	else if (s->phase == SESSION_DRAINING)
		session_close(s, "its client did not take its last replies in time");
	else
		session_close(s, s->close_reason); /* CLOSING: the teardown it waited for */
}

/* Code that may queue replies or close the session runs between these: replies go out
 * in one write at the end, and a close waits for it (session_close). */
void
session_enter(struct session *s)
{
	s->depth++;
}

void
session_leave(struct session *s)
{
	/* Flushed while still inside, so that a failed write defers its close too. */
	if (s->depth == 1 && s->phase < SESSION_CLOSING &&
	    !event_pending(s->ev_write, EV_WRITE, NULL))
		session_flush(s);
	if (s->depth == 1)
		session_close_deferred(s);
	s->depth--;
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
	struct timeval tv = {0, HANGUP_CHECK_MS * 1000};

	event_del(s->ev_read);
	evtimer_add(s->ev_hangup, &tv);
}

static void
resume_reading(struct session *s)
{
	evtimer_del(s->ev_hangup);
	event_add(s->ev_read, NULL);
}

/* A session that does not read still ends when its client hangs up or its transport
 * fails. */
static void
on_hangup_check(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	if (s->t->ops->hung_up(s->t))
		session_close(s, "client disconnected");
}

/*
 * Stops reading; if `why` is given, answers every call in flight with EDAEMON and it.
 * The session closes once its queued replies are written, or after CLOSE_FLUSH_MS if
 * its client does not take them. Called with a `why` only from outside the session's
 * code (the daemon stopping), as it frees the calls it answers.
 */
void
session_drain(struct session *s, const char *why)
{
	struct call *c;

	if (s->phase >= SESSION_DRAINING)
		return;
	s->phase = SESSION_DRAINING;
	stop_reading(s);
	arm_deadline(s, CLOSE_FLUSH_MS);
	session_enter(s); /* the replies below go out in one write */
	while (why != NULL && (c = TAILQ_FIRST(&s->calls)) != NULL) {
		call_fail(c, c->handle, SOCKRPC__CODE__EDAEMON, 0, "%s", why);
		call_free(c);
	}
	session_leave(s);
}

/* Pauses reading while the session holds too much, resumes once it has drained. */
void
session_update_reading(struct session *s)
{
	size_t pending = s->queued_bytes + evbuffer_get_length(s->out);
	bool too_much = pending > s->d->opt.limits.max_queued_bytes;

	if (too_much && !s->paused) {
		stop_reading(s);
		s->paused = true;
	} else if (!too_much && s->paused) {
		s->paused = false;
		if (s->phase != SESSION_HELLO && s->phase != SESSION_OPEN)
			return;
		resume_reading(s);
		/* Whole frames may already be buffered: serve them without waiting for more.
		 * (Inside dispatch_frames, its loop serves them and the read finds nothing.) */
		if (evbuffer_get_length(s->in) >= SR_FRAME_HEADER_SIZE)
			event_active(s->ev_read, EV_READ, 0);
		else
			wake_for_pending(s);
	}
}

void
session_release_call_bytes(struct session *s, size_t bytes)
{
	s->queued_bytes -= bytes;
	if (s->phase < SESSION_CLOSING)
		session_update_reading(s);
}

/*
 * Writes the output buffer while the client takes it. Returns 1 when it is then empty,
 * else the last write's result: -1 with errno (EAGAIN: the client is full), or 0.
 */
static int
write_queued(struct session *s)
{
	while (evbuffer_get_length(s->out) > 0) {
		int n =
		    s->n_passing > 0 ? session_write_passing(s) : s->t->ops->write(s->t, s->out);

		if (n <= 0)
			return n;
	}
	return 1;
}

/* Writes what the transport takes now; arms the write event for the rest. */
void
session_flush(struct session *s)
{
	int n = write_queued(s);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		event_add(s->ev_write, NULL);
	} else if (n <= 0) {
		session_close(s, n == 0 ? "client disconnected" : "client connection failed");
		return;
	}
	if (s->phase == SESSION_DRAINING && evbuffer_get_length(s->out) == 0) {
		session_close(s, "closed after its last reply");
		return;
	}
	session_update_reading(s);
}

static void
on_writable(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	session_enter(s);
	session_flush(s);
	session_leave(s);
}

/*
 * Frames `reply` into the output buffer, followed by `key` (key_len bytes); the frame's
 * length counts `more` bytes after them that the caller sends itself. Returns 0, or -1
 * when the reply cannot be framed (the session is then closing).
 */
int
session_queue_frame(struct session *s, unsigned method, uint64_t call_id,
                    const ProtobufCMessage *reply, const uint8_t *key, size_t key_len, size_t more)
{
	struct sr_frame_header h = {
	    .method = (uint16_t)method, .flags = SR_FRAME_FLAG_REPLY, .call_id = call_id};
	size_t size = protobuf_c_message_get_packed_size(reply) + key_len;
	struct evbuffer_iovec vec;
	uint8_t *at;

	if (size + more > SR_MAX_FRAME ||
	    evbuffer_reserve_space(s->out, SR_FRAME_HEADER_SIZE + size, &vec, 1) < 1) {
		log_error("session %llu: cannot frame a %zu-byte reply", (unsigned long long)s->id,
		          size + more);
		session_close(s, "reply could not be framed");
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

/* Frames and queues one reply; it is written when the session's code returns (at once,
 * if none runs). */
void
session_send_reply(struct session *s, unsigned method, uint64_t call_id,
                   const ProtobufCMessage *reply)
{
	if (s->phase >= SESSION_CLOSING)
		return;
	session_enter(s);
	session_queue_frame(s, method, call_id, reply, NULL, 0, 0);
	session_leave(s);
}

/*
 * Answers Hello with a reply channel if the transport can open one (nothing may be
 * queued before the reply then); the reply says whether it did. Without one, the reply
 * goes on the connection.
 */
void
session_send_reply_with_channel(struct session *s, unsigned method, uint64_t call_id,
                                Sockrpc__HelloReply *reply)
{
	struct transport *t = s->t;
	bool fatal = false;

	reply->reply_channel = false;
	if (s->phase >= SESSION_CLOSING)
		return;
	if (t->ops->open_reply_channel == NULL || evbuffer_get_length(s->out) > 0 ||
	    t->write_fd != t->read_fd) {
		session_send_reply(s, method, call_id, &reply->base);
		return;
	}
	session_enter(s);
	reply->reply_channel = true;
	if (session_queue_frame(s, method, call_id, &reply->base, NULL, 0, 0) == 0 &&
	    t->ops->open_reply_channel(t, s->out, &fatal) != 0) {
		if (fatal) {
			session_close(s, "its reply channel could not be sent");
		} else {
			evbuffer_drain(s->out, evbuffer_get_length(s->out));
			reply->reply_channel = false;
			session_queue_frame(s, method, call_id, &reply->base, NULL, 0, 0);
		}
	}
	if (t->write_fd != t->read_fd)
		event_assign(s->ev_write, s->d->base, t->write_fd, EV_WRITE, on_writable, s);
	session_leave(s);
}

/* Writes what is queued, if the client takes it now: true when a reply can then go
 * straight to the client (receive_splice.c). */
bool
session_output_drained(struct session *s)
{
	return s->phase < SESSION_DRAINING && write_queued(s) == 1;
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
	session_drain(s, NULL);
}

/*
 * Decodes one frame into a call and runs its handler. The call is freed here once the
 * handler has returned, if it was answered; otherwise it waits (on its handle, a name
 * lookup, a linger) and whoever resumes it frees it.
 */
static void
dispatch(struct session *s, const struct sr_frame_header *h, const uint8_t *body)
{
	const ProtobufCMethodDescriptor *m = &sockrpc__sock_rpc__descriptor.methods[h->method];
	ProtobufCMessage *request;
	ProtobufCBinaryData *borrowed;
	struct call *c;
	size_t held = 0, charge;
	bool over_budget;

	request = sr_decode(m->input, body, h->length, DECODE_BUDGET(h->length), &held, &borrowed,
	                    &over_budget);
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
	/*
	 * Borrowed payloads: a large payload (a Send's data) is not copied out of the frame
	 * unless its call outlives the frame, which saves a copy of every byte sent. Off
	 * (SOCKRPC_DISABLE=borrowed-payloads), every payload is copied at once.
	 */
	if (!fast_path_on(FAST_BORROWED_PAYLOADS) && call_keep_payload(c) != 0) {
		call_free(c);
		session_close(s, "out of memory");
		return;
	}
	/* Ops answer through call_reply()/call_fail() with the call as closure data. */
	c->in_handler = true;
	s->d->service.base.invoke(&s->d->service.base, h->method, request, NULL, c);
	c->in_handler = false;
	if (call_finish(c))
		return;
	/* It waits, and its payload must outlive the frame (drained next); in a batch of
	 * sends, the frame stays until the batch ends (send_batch.c). */
	if (!s->batch.open && call_keep_payload(c) != 0)
		session_close(s, "out of memory");
}

/* Checks a request's header; before Hello, only a Hello of SR_MAX_HELLO_FRAME at most. */
static int
check_header(const struct session *s, const struct sr_frame_header *h, const char **why)
{
	bool hello = s->phase == SESSION_HELLO;
	uint32_t max = hello ? SR_MAX_HELLO_FRAME : SR_MAX_FRAME;

	if (frame_header_check(h, max, sockrpc__sock_rpc__descriptor.n_methods, 0, why) != 0)
		return -1;
	if (hello && h->method != SOCKRPC_HELLO_METHOD) {
		*why = "the first call must be Hello";
		return -1;
	}
	return 0;
}

/*
 * Removes and dispatches every whole frame in the input buffer. A run of Send frames may
 * form a batch that stays in the buffer until it ends (send_batch.c).
 */
static void
dispatch_frames(struct session *s)
{
	while (s->phase <= SESSION_OPEN && !s->paused) {
		size_t avail = evbuffer_get_length(s->in) - s->batch.bytes;
		struct sr_frame_header h;
		const char *why;
		uint8_t *bytes;
		size_t size;

		if (avail < SR_FRAME_HEADER_SIZE)
			break;
		if (send_batch_full(s)) {
			send_batch_end(s);
			continue;
		}
		bytes =
		    evbuffer_pullup(s->in, s->batch.bytes + SR_FRAME_HEADER_SIZE) + s->batch.bytes;
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
		s->batch.open = send_batch_joins(s, &h, size);
		if (s->batch.bytes > 0 && !s->batch.open) {
			send_batch_end(s);
			continue;
		}
		s->frame_size = 0;
		bytes = evbuffer_pullup(s->in, s->batch.bytes + size) + s->batch.bytes;
		s->more_input = avail > size;
		dispatch(s, &h, bytes + SR_FRAME_HEADER_SIZE);
		s->more_input = false;
		if (s->phase >= SESSION_CLOSING)
			return;
		if (s->batch.open) {
			s->batch.bytes += size;
		} else {
			evbuffer_drain(s->in, size);
			session_update_reading(s);
		}
	}
	if (s->phase < SESSION_CLOSING)
		send_batch_end(s);
}

/* One read, sized to finish the frame in progress (one syscall for a 1 MiB send). */
static void
on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	size_t have = evbuffer_get_length(s->in);
	size_t want = s->frame_size > have ? s->frame_size - have : 0;
	/* Before Hello, no more room than a Hello takes (SR_MAX_HELLO_FRAME). */
	size_t room = s->phase == SESSION_HELLO ? SR_FRAME_HEADER_SIZE + SR_MAX_HELLO_FRAME
	              : s->streaming            ? READ_CHUNK
	                                        : READ_ROOM_SMALL;
	ssize_t n = s->t->ops->read(s->t, s->in, want > room ? want : room);

	if (n > 0)
		idle_poll_served(s->d);
	if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) {
		session_close(s, n == 0 ? "client disconnected" : strerror(errno));
		return;
	}
	/* n < 0 (EAGAIN): woken to serve frames read before a pause. */
	if (n > 0)
		s->streaming = (size_t)n >= READ_ROOM_SMALL;
	session_enter(s);
	dispatch_frames(s);
	session_leave(s);
	wake_for_pending(s);
}
