/*
 * send_window.c - write-behind for blocking stream sends. sr_send() on a connected,
 * blocking stream socket starts its Send calls without waiting for their replies, up
 * to SEND_WINDOW bytes in flight, so the next chunk travels while the daemon writes
 * the last one: a round trip per call, not the copying, is what bounds bulk sends.
 * A send that fails in flight is reported by the next sr_send(), as a TCP socket
 * reports a reset on the next send(); shutdown and close first wait for the sends in
 * flight, so no byte sr_send() accepted is dropped. The caller holds s->send_mu
 * around every function here; replies are read by calls.c as for any call. Off with
 * SOCKRPC_DISABLE=write-behind (fastpath.c): each chunk then waits for its answer.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "internal.h"

/*
 * Bytes in flight per socket. Four calls of the largest payload keep both ends busy;
 * the daemon's per-session queue limit is sixteen frames, so a window never makes
 * the daemon stop reading the session.
 */
#define SEND_WINDOW (4u * SR_MAX_PAYLOAD)

struct window_entry {
	struct pending *call;
	size_t len;
	struct window_entry *next;
};

struct send_window {
	struct window_entry *head, *tail; /* oldest first: the daemon answers in order */
	size_t bytes;                     /* sent and not yet answered */
	bool failed;                      /* a send in flight failed ... */
	sr_error err;                     /* ... so: not yet reported to the caller */
};

static int collect_oldest(sr_socket *s);
static int collect_answered(sr_socket *s);
static void sent_take(const ProtobufCMessage *msg, struct call_ctx *ctx);
static int report_failure(struct send_window *w, sr_error *err);

/*
 * Starts Send calls for all of data (in max_payload chunks), first waiting for the
 * oldest replies while the window is full. Returns len, or -1 with *err filled
 * when a send in flight (this call's or an earlier one's) failed.
 */
long
cl_window_send(sr_socket *s, const void *data, size_t len, sr_error *err)
{
	struct send_window *w = s->window;
	const char *p = data;
	size_t off = 0, chunk;

	if (w == NULL && (w = s->window = calloc(1, sizeof(*w))) == NULL) {
		cl_seterr(err, SR_ELIMIT, ENOMEM, "out of memory");
		return -1;
	}
	if (collect_answered(s) == -1)
		return report_failure(w, err);
	while (off < len) {
		Sockrpc__SendRequest req = SOCKRPC__SEND_REQUEST__INIT;
		struct window_entry *e;
		struct call_ctx ctx;
		struct pending *call = NULL;

		chunk = len - off;
		if (chunk > s->client->max_payload)
			chunk = s->client->max_payload;
		while (w->head != NULL && w->bytes + chunk > SEND_WINDOW) {
			if (collect_oldest(s) == -1)
				return report_failure(w, err);
		}
		if ((e = malloc(sizeof(*e))) == NULL) {
			cl_seterr(err, SR_ELIMIT, ENOMEM, "out of memory");
			return -1;
		}
		req.handle = s->handle;
		req.data.data = (uint8_t *)(uintptr_t)(p + off);
		req.data.len = chunk;
		cl_call_init(&ctx, s->client, s, CL_NO_DEADLINE, err);
		ctx.started = &call;
		sockrpc__sock_rpc__send(&s->client->service, &req, NULL, &ctx);
		if (call == NULL) { /* not even sent: ctx.err says why */
			free(e);
			return -1;
		}
		e->call = call;
		e->len = chunk;
		e->next = NULL;
		if (w->tail != NULL)
			w->tail->next = e;
		else
			w->head = e;
		w->tail = e;
		w->bytes += chunk;
		off += chunk;
		/* A call that failed at once (the daemon is gone) is reported now. */
		if (collect_answered(s) == -1)
			return report_failure(w, err);
	}
	return (long)len;
}

/*
 * Waits for every send in flight. With linger_ms >= 0, gives up when no send has
 * been answered for that long and forgets the rest (shutdown and close then go
 * ahead and answer them). Returns 0, or -1 with *err (may be NULL) filled if one
 * failed or was given up: the failure is reported here, not by the next sr_send().
 */
int
cl_window_drain(sr_socket *s, int64_t linger_ms, sr_error *err)
{
	struct send_window *w = s->window;

	if (w == NULL)
		return 0;
	while (w->head != NULL) {
		if (linger_ms >= 0 &&
		    !cl_call_wait_until(s->client, w->head->call, cl_deadline_after(linger_ms))) {
			cl_window_forget(s);
			if (!w->failed) {
				w->failed = true;
				cl_seterr(&w->err, SR_ETIMEDOUT, ETIMEDOUT,
				          "sends in flight made no progress for %lld ms",
				          (long long)linger_ms);
			}
			break;
		}
		(void)collect_oldest(s);
	}
	return w->failed ? report_failure(w, err) : 0;
}

/* Gives up the sends in flight without waiting (their replies are discarded). */
void
cl_window_forget(sr_socket *s)
{
	struct send_window *w = s->window;
	struct window_entry *e;

	if (w == NULL)
		return;
	while ((e = w->head) != NULL) {
		w->head = e->next;
		cl_call_abandon(s->client, e->call);
		free(e);
	}
	w->tail = NULL;
	w->bytes = 0;
}

/* Frees the window; cl_window_forget() must have emptied it. Accepts none. */
void
cl_window_free(sr_socket *s)
{
	free(s->window);
	s->window = NULL;
}

/* Waits for the oldest send's reply; a failure is kept for the caller. */
static int
collect_oldest(sr_socket *s)
{
	struct send_window *w = s->window;
	struct window_entry *e = w->head;
	struct call_ctx ctx;
	sr_error local;
	long sent = -1;

	w->head = e->next;
	if (w->head == NULL)
		w->tail = NULL;
	w->bytes -= e->len;
	cl_call_init(&ctx, s->client, s, cl_wait_deadline(s, WAIT_SEND), &local);
	ctx.take = sent_take;
	ctx.out = &sent;
	cl_call_finish(s->client, e->call, &ctx);
	if (!ctx.failed && sent != (long)e->len) {
		/* A blocking send writes everything or fails: anything else is a fault. */
		cl_call_violation(&ctx, "sockrpcd sent %ld of %zu bytes without an error", sent,
		                  e->len);
	}
	free(e);
	if (!ctx.failed)
		return 0;
	if (!w->failed) {
		w->failed = true;
		w->err = local;
	}
	return -1;
}

/* Collects the replies already in, without waiting. Returns -1 if a send failed. */
static int
collect_answered(sr_socket *s)
{
	struct send_window *w = s->window;

	while (w->head != NULL && cl_call_ready(s->client, w->head->call))
		(void)collect_oldest(s);
	return w->failed ? -1 : 0;
}

/* Any count but the chunk's own is refused by collect_oldest(); -1 stands for one
 * that is not even a long. */
static void
sent_take(const ProtobufCMessage *msg, struct call_ctx *ctx)
{
	int64_t sent = ((const Sockrpc__SendReply *)msg)->sent;

	*(long *)ctx->out = sent >= 0 && sent <= LONG_MAX ? (long)sent : -1;
}

/* Hands the kept failure to the caller, once. Returns -1. */
static int
report_failure(struct send_window *w, sr_error *err)
{
	cl_copyerr(err, &w->err);
	w->failed = false;
	return -1;
}
