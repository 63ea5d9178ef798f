/*
 * send_batch.c - the send-batching fast path: the Send frames a client has queued
 * leave in one sendmsg per socket.
 *
 * What it buys: a streaming client's read brings many Send frames at once. Dispatched
 * one by one, each would cost a sendmsg and a wake-up of the peer. Instead, consecutive
 * Send frames that lie in one piece of the input buffer form a batch: they stay there,
 * their payloads pointing into it (borrowed, proto/payload.h), while the sends of each
 * handle wait on its queue; when the batch ends the queues run, and a send gathers the
 * sends queued behind it on the same stream socket into its sendmsg.
 *
 * Off (SOCKRPC_DISABLE=send-batching): every frame is dispatched and drained alone and
 * each Send makes its own sendmsg (the core path, ops_io.c).
 */
#include <stdlib.h>

#include <event2/buffer.h>

#include "frame.h"
#include "sockrpcd.h"

void
send_batch_init(struct send_batch *b)
{
	b->bytes = 0;
	b->open = false;
	TAILQ_INIT(&b->deferred);
}

static bool
is_send_frame(const struct sr_frame_header *h)
{
	return sockrpc__sock_rpc__descriptor.methods[h->method].input ==
	       &sockrpc__send_request__descriptor;
}

/*
 * Whether the whole frame h (size bytes, just after the batch in the input buffer) may
 * join the batch: a Send, that starts a batch or lies in the same piece of the buffer.
 */
bool
send_batch_joins(struct session *s, const struct sr_frame_header *h, size_t size)
{
	return fast_path_on(FAST_SEND_BATCHING) && is_send_frame(h) &&
	       (s->batch.bytes == 0 ||
	        s->batch.bytes + size <= (size_t)evbuffer_get_contiguous_space(s->in));
}

/* Whether the next frame's header does not lie in the batch's piece: the batch ends. */
bool
send_batch_full(struct session *s)
{
	return s->batch.bytes > 0 &&
	       s->batch.bytes + SR_FRAME_HEADER_SIZE > (size_t)evbuffer_get_contiguous_space(s->in);
}

/*
 * Ends the batch: the handles' deferred queues run (each handle's sends leave together),
 * a send still waiting copies its payload, and the batch's frames are drained.
 */
void
send_batch_end(struct session *s)
{
	struct call *c;

	s->batch.open = false;
	if (s->batch.bytes == 0)
		return;
	send_batch_run_deferred(s);
	if (s->phase >= SESSION_CLOSING)
		return;
	TAILQ_FOREACH (c, &s->calls, session_link) {
		if (call_keep_payload(c) != 0) {
			session_close(s, "out of memory");
			return;
		}
	}
	evbuffer_drain(s->in, s->batch.bytes);
	s->batch.bytes = 0;
	session_update_reading(s);
}

/*
 * From handle_queue_call(), for a call c on h's send queue. While a batch is dispatched,
 * the first send of a handle that may wait is queued and its queue deferred to the end
 * of the batch: returns true. A call that may not wait first sees the queue as it would
 * be without the batch.
 */
bool
send_batch_defer(struct handle *h, struct call *c)
{
	struct session *s = h->session;

	if (h->batch.deferred && !call_may_wait(c))
		send_batch_run_deferred(s);
	if (!s->batch.open || !TAILQ_EMPTY(&h->tx.calls) || !call_may_wait(c))
		return false;
	c->queued = true;
	TAILQ_INSERT_TAIL(&h->tx.calls, c, queue_link);
	h->batch.deferred = true;
	TAILQ_INSERT_TAIL(&s->batch.deferred, h, batch.link);
	return true;
}

/* Runs the send queues deferred by the batch, oldest first. */
void
send_batch_run_deferred(struct session *s)
{
	struct handle *h;

	while ((h = TAILQ_FIRST(&s->batch.deferred)) != NULL) {
		TAILQ_REMOVE(&s->batch.deferred, h, batch.link);
		h->batch.deferred = false;
		handle_run_queue(h, CALL_TX);
	}
}

/* h closes: its queue is no longer deferred. */
void
send_batch_forget(struct handle *h)
{
	if (h->batch.deferred) {
		TAILQ_REMOVE(&h->session->batch.deferred, h, batch.link);
		h->batch.deferred = false;
	}
}

static const Sockrpc__SendRequest *
send_request(const struct call *c)
{
	return c->request->descriptor == &sockrpc__send_request__descriptor
	           ? (const Sockrpc__SendRequest *)c->request
	           : NULL;
}

/*
 * Fills iov with what is left of c's bytes (len in all) and, batching on, with the bytes
 * of the Send calls queued behind it that may follow them on the wire: same stream
 * socket, same flags, nothing sent yet. Returns the number of entries.
 */
int
send_batch_gather(struct call *c, const uint8_t *bytes, size_t len, int flags, struct iovec *iov)
{
	const Sockrpc__SendRequest *own = send_request(c);
	const struct call *q;
	int n = 0;

	iov[n++] = (struct iovec){(void *)(bytes + c->op.sent), len - c->op.sent};
	if (!fast_path_on(FAST_SEND_BATCHING) || own == NULL || c->handle->type != SOCK_STREAM ||
	    (flags & MSG_OOB))
		return n; /* an urgent byte ends each send; datagrams keep their boundaries */
	for (q = TAILQ_NEXT(c, queue_link); q != NULL && n < SEND_GATHER_MAX;
	     q = TAILQ_NEXT(q, queue_link)) {
		const Sockrpc__SendRequest *r = send_request(q);

		if (r == NULL || r->flags != own->flags || q->op.sent != 0)
			break;
		iov[n++] = (struct iovec){r->data.data, r->data.len};
	}
	return n;
}

/* Counts `sent` bytes to c, then the rest to the calls send_batch_gather() put behind
 * it; each of those replies when its turn at the head of the queue comes. */
void
send_batch_credit(struct call *c, size_t len, size_t sent, int n_iov)
{
	size_t own = sent < len - c->op.sent ? sent : len - c->op.sent;
	struct call *q = c;

	c->op.sent += own;
	sent -= own;
	while (sent > 0 && --n_iov > 0) {
		size_t take, qlen;

		q = TAILQ_NEXT(q, queue_link);
		qlen = send_request(q)->data.len;
		take = sent < qlen ? sent : qlen;
		q->op.sent += take;
		sent -= take;
	}
}
