/*
 * session.c - one client connection: framing, dispatch through the service descriptor,
 * the session's handle table, and backpressure. Sockets and their calls live in
 * handle.c and call.c; what each rpc does is in ops_*.c.
 *
 * Framing is incremental: the read low watermark is one header; once a header has been
 * checked, the watermark becomes header + body, then exactly one frame is removed and
 * dispatched. A client whose replies pile up, or whose calls hold too many bytes,
 * stops being read until it drains.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "frame.h"
#include "sockrpcd.h"

/* Bytes a call costs besides its frame (the call, the decoded message, bookkeeping), so
 * that 10,000 tiny pipelined calls also count against the queue limit. */
#define CALL_OVERHEAD_BYTES 512

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

/* Takes ownership of fd (closed on failure too). */
struct session *
session_new(struct sockrpcd *d, int fd, const struct identity *peer)
{
	struct session *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		close(fd);
		return NULL;
	}
	s->d = d;
	s->id = ++d->next_session_id;
	s->peer = *peer;
	s->next_handle_id = 1;
	TAILQ_INIT(&s->calls);
	s->bev = bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		close(fd);
		free(s);
		return NULL;
	}
	bufferevent_setcb(s->bev, on_read, on_write, on_event, s);
	bufferevent_setwatermark(s->bev, EV_READ, SR_FRAME_HEADER_SIZE, 0);
	bufferevent_setwatermark(s->bev, EV_WRITE, d->opt.limits.max_queued_bytes / 2, 0);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	TAILQ_INSERT_TAIL(&d->sessions, s, link);
	d->n_sessions++;
	log_debug("session %llu: uid %u gid %u pid %d connected", (unsigned long long)s->id,
	          (unsigned)peer->uid, (unsigned)peer->gid, (int)peer->pid);
	return s;
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
	bufferevent_free(s->bev);
	s->bev = NULL;
	TAILQ_REMOVE(&d->sessions, s, link);
	d->n_sessions--;
	server_session_gone(d, s);
	if (event_base_once(d->base, -1, EV_TIMEOUT, free_session, s, NULL) != 0)
		log_error("session %llu: cannot schedule its release", (unsigned long long)s->id);
}

static void
update_reading(struct session *s)
{
	size_t pending = s->queued_bytes + evbuffer_get_length(bufferevent_get_output(s->bev));
	bool too_much = pending > s->d->opt.limits.max_queued_bytes;

	if (too_much && !s->reading_paused) {
		bufferevent_disable(s->bev, EV_READ);
		s->reading_paused = true;
	} else if (!too_much && s->reading_paused && !s->close_after_flush) {
		s->reading_paused = false;
		bufferevent_enable(s->bev, EV_READ);
		/* Frames may already be buffered: the read callback only runs on new data. */
		on_read(s->bev, s);
	}
}

void
session_release_call_bytes(struct session *s, size_t bytes)
{
	s->queued_bytes -= bytes;
	if (!s->closing)
		update_reading(s);
}

/* Frames and queues one reply. */
void
session_send_reply(struct session *s, unsigned method, uint64_t call_id,
                   const ProtobufCMessage *reply)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	struct sr_frame_header h = { .method = (uint16_t)method, .flags = SR_FRAME_FLAG_REPLY,
		                     .call_id = call_id };
	size_t size = protobuf_c_message_get_packed_size(reply);
	struct evbuffer_iovec vec;

	if (size > SR_MAX_FRAME || evbuffer_reserve_space(out, SR_FRAME_HEADER_SIZE + size, &vec, 1) < 1) {
		log_error("session %llu: cannot frame a %zu-byte reply", (unsigned long long)s->id,
		          size);
		session_close(s, "reply could not be framed");
		return;
	}
	h.length = (uint32_t)size;
	frame_header_encode(&h, vec.iov_base);
	protobuf_c_message_pack(reply, (uint8_t *)vec.iov_base + SR_FRAME_HEADER_SIZE);
	vec.iov_len = SR_FRAME_HEADER_SIZE + size;
	evbuffer_commit_space(out, &vec, 1);
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

/*
 * Stops reading; if `why` is given, answers every call in flight with EDAEMON and it.
 * The session closes once its queued replies are written.
 */
void
session_close_after_flush(struct session *s, const char *why)
{
	struct call *c;

	if (s->closing)
		return;
	s->close_after_flush = true;
	bufferevent_disable(s->bev, EV_READ);
	while (why != NULL && (c = TAILQ_FIRST(&s->calls)) != NULL)
		call_fail(c, c->handle, SOCKRPC__CODE__EDAEMON, 0, "%s", why);
	on_write(s->bev, s);
}

static void
dispatch(struct session *s, const struct sr_frame_header *h, const uint8_t *body)
{
	const ProtobufCMethodDescriptor *m = &sockrpc__sock_rpc__descriptor.methods[h->method];
	ProtobufCMessage *request;
	struct call *c;
	size_t charge = SR_FRAME_HEADER_SIZE + h->length + CALL_OVERHEAD_BYTES;

	if (!s->hello_done && h->method != SOCKRPC_HELLO_METHOD) {
		refuse_frame(s, h, SOCKRPC__CODE__EPROTO, "the first call must be Hello");
		return;
	}
	request = protobuf_c_message_unpack(m->input, NULL, h->length, body);
	if (request == NULL || !protobuf_c_message_check(request)) {
		char why[128];

		snprintf(why, sizeof(why), "%s request does not decode", m->name);
		if (request)
			protobuf_c_message_free_unpacked(request, NULL);
		refuse_frame(s, h, SOCKRPC__CODE__EPROTO, why);
		return;
	}
	s->queued_bytes += charge;
	c = call_new(s, h->method, h->call_id, request, charge);
	if (c == NULL) {
		s->queued_bytes -= charge;
		session_close(s, "out of memory");
		return;
	}
	/* Ops answer through call_reply()/call_fail() with the call as closure data. */
	s->d->service.base.invoke(&s->d->service.base, h->method, request, NULL, c);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (!s->closing && !s->close_after_flush && !s->reading_paused) {
		size_t avail = evbuffer_get_length(in);
		struct sr_frame_header h;
		const char *why;
		uint8_t *bytes;

		if (avail < SR_FRAME_HEADER_SIZE)
			break;
		frame_header_decode(evbuffer_pullup(in, SR_FRAME_HEADER_SIZE), &h);
		if (frame_header_check(&h, SR_MAX_FRAME, sockrpc__sock_rpc__descriptor.n_methods, 0,
		                       &why) != 0) {
			refuse_frame(s, &h, SOCKRPC__CODE__EPROTO, why);
			return;
		}
		if (avail < SR_FRAME_HEADER_SIZE + (size_t)h.length) {
			bufferevent_setwatermark(bev, EV_READ, SR_FRAME_HEADER_SIZE + h.length, 0);
			return;
		}
		bytes = evbuffer_pullup(in, SR_FRAME_HEADER_SIZE + h.length);
		dispatch(s, &h, bytes + SR_FRAME_HEADER_SIZE);
		if (s->closing)
			return;
		evbuffer_drain(in, SR_FRAME_HEADER_SIZE + h.length);
		update_reading(s);
	}
	if (!s->closing)
		bufferevent_setwatermark(bev, EV_READ, SR_FRAME_HEADER_SIZE, 0);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	if (s->close_after_flush && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		session_close(s, "closed after its last reply");
		return;
	}
	update_reading(s);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;

	if (what & BEV_EVENT_EOF)
		session_close(s, "client disconnected");
	else if (what & BEV_EVENT_ERROR)
		session_close(s, strerror(EVUTIL_SOCKET_ERROR()));
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
