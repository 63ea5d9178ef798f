/*
 * receive_ahead.c - read-ahead for stream receives. When a receive on a connected,
 * blocking stream comes back full (the caller took all it asked for, so more is
 * likely waiting), the library asks at once for the next chunks (max_payload, 1 MiB,
 * each), with MSG_DONTWAIT so that these calls never wait in the daemon, never outlive
 * a timeout the caller changes, and never hold data back: the daemon fetches while
 * the caller works, instead of one round trip per chunk, and keeps fetching while they
 * find data. What they bring is handed out first, in order; one that found nothing
 * (EWOULDBLOCK) is dropped; an end of stream or an error is handed out in its turn.
 * The caller holds s->recv_mu. Off with SOCKRPC_DISABLE=read-ahead (fastpath.c): each
 * receive is then one call, answered before the next.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"

/* Calls ahead per socket: two keep the daemon fetching while one reply travels. */
#define RECEIVE_AHEAD_CALLS 2
/* Each asks for at least this much (up to max_payload): fewer, larger calls cost the
 * daemon less per byte, and a MSG_DONTWAIT call only takes what the socket holds. */
#define RECEIVE_AHEAD_MIN_LENGTH (1024L * 1024)

struct ahead_entry {
	struct pending *call; /* the Receive in flight; NULL once collected */
	size_t asked;         /* its length: the most it may bring */
	char *data;           /* what it brought, handed out from off */
	void *block;          /* the pool block data is in */
	size_t len, off;
	bool failed;
	sr_error err;
	struct ahead_entry *next;
};

struct receive_ahead {
	struct ahead_entry *head, *tail; /* in call order */
};

static int calls_in_flight(const struct receive_ahead *a);
static void collect(sr_socket *s, struct ahead_entry *e);
static void ahead_take(const ProtobufCMessage *msg, struct call_ctx *ctx);
static void drop_head(sr_socket *s);

/* Starts Receive calls of `length` bytes ahead, up to RECEIVE_AHEAD_CALLS in flight. */
void
cl_ahead_start(sr_socket *s, long length)
{
	struct receive_ahead *a = s->ahead;

	if (a == NULL && (a = s->ahead = calloc(1, sizeof(*a))) == NULL)
		return; /* read-ahead is only an optimisation */
	if (length < RECEIVE_AHEAD_MIN_LENGTH)
		length = RECEIVE_AHEAD_MIN_LENGTH;
	if (length > (long)s->client->max_payload)
		length = (long)s->client->max_payload;
	while (calls_in_flight(a) < RECEIVE_AHEAD_CALLS) {
		Sockrpc__ReceiveRequest req = SOCKRPC__RECEIVE_REQUEST__INIT;
		struct ahead_entry *e = calloc(1, sizeof(*e));
		struct call_ctx ctx;
		sr_error ignored;

		if (e == NULL)
			return;
		e->asked = (size_t)length;
		req.handle = s->handle;
		req.length = length;
		req.flags = SOCKRPC__MESSAGE_FLAG__MSG_DONTWAIT;
		cl_call_init(&ctx, s->client, s, CL_NO_DEADLINE, &ignored);
		ctx.started = &e->call;
		sockrpc__sock_rpc__receive(&s->client->service, &req, NULL, &ctx);
		if (e->call == NULL) {
			free(e);
			return;
		}
		if (a->tail != NULL)
			a->tail->next = e;
		else
			a->head = e;
		a->tail = e;
	}
}

/*
 * Hands out what read-ahead brought, as one receive of `length` (negative: all the
 * oldest reply holds) with flags (MSG_PEEK leaves it in place) would. Returns 1 with
 * *out (malloc'd) and *out_len set (0 bytes: end of stream), -1 with *err filled for
 * an error in its turn, or 0 when read-ahead has nothing: receive from the daemon.
 */
int
cl_ahead_take(sr_socket *s, long length, int flags, char **out, size_t *out_len, sr_error *err)
{
	struct receive_ahead *a = s->ahead;
	struct ahead_entry *e;
	size_t n;

	while (a != NULL && (e = a->head) != NULL) {
		if (e->call != NULL)
			collect(s, e);
		if (e->failed) {
			if (e->err.code == SR_EWOULDBLOCK) {
				drop_head(s); /* it found nothing: not an answer to the caller */
				continue;
			}
			cl_copyerr(err, &e->err);
			drop_head(s);
			return -1;
		}
		n = e->len - e->off;
		if (length >= 0 && n > (size_t)length)
			n = (size_t)length;
		if ((*out = malloc(n + 1)) == NULL) {
			cl_seterr(err, SR_ELIMIT, ENOMEM, "out of memory");
			return -1;
		}
		if (n > 0) /* an end of stream holds no data at all */
			memcpy(*out, e->data + e->off, n);
		(*out)[n] = '\0';
		*out_len = n;
		if (!(flags & MSG_PEEK)) {
			e->off += n;
			if (e->off == e->len)
				drop_head(s); /* an end of stream is answered once, like the data */
		}
		return 1;
	}
	return 0;
}

/* Gives up calls in flight without waiting, and drops what was read ahead. */
void
cl_ahead_forget(sr_socket *s)
{
	struct receive_ahead *a = s->ahead;

	if (a == NULL)
		return;
	while (a->head != NULL) {
		if (a->head->call != NULL)
			cl_call_abandon(s->client, a->head->call);
		drop_head(s);
	}
}

/*
 * Before a handback: waits for the calls in flight and returns the bytes they brought that
 * the caller has not received (they left the socket, so its descriptor would miss them).
 * With none, the entries are dropped (an end of stream or an error is the socket's own to
 * report again).
 */
size_t
cl_ahead_held(sr_socket *s)
{
	struct receive_ahead *a = s->ahead;
	size_t held = 0;

	if (a == NULL)
		return 0;
	for (struct ahead_entry *e = a->head; e != NULL; e = e->next) {
		if (e->call != NULL)
			collect(s, e);
		if (!e->failed)
			held += e->len - e->off;
	}
	if (held == 0)
		cl_ahead_forget(s);
	return held;
}

void
cl_ahead_free(sr_socket *s)
{
	free(s->ahead);
	s->ahead = NULL;
}

static int
calls_in_flight(const struct receive_ahead *a)
{
	int n = 0;

	for (const struct ahead_entry *e = a->head; e != NULL; e = e->next)
		n += e->call != NULL;
	return n;
}

/* Waits for e's reply (a MSG_DONTWAIT call: the daemon answers at once). */
static void
collect(sr_socket *s, struct ahead_entry *e)
{
	struct call_ctx ctx;

	cl_call_init(&ctx, s->client, s, cl_deadline_after(CL_FIXED_DEADLINE_MS), &e->err);
	ctx.take = ahead_take;
	ctx.out = e;
	cl_call_finish(s->client, e->call, &ctx);
	e->call = NULL;
	e->failed = ctx.failed;
}

static void
ahead_take(const ProtobufCMessage *msg, struct call_ctx *ctx)
{
	const Sockrpc__ReceiveReply *r = (const Sockrpc__ReceiveReply *)msg;
	struct ahead_entry *e = ctx->out;

	if (r->data.len > e->asked) {
		cl_call_violation(ctx,
		                  "sockrpcd returned %zu bytes where at most %zu were asked "
		                  "for",
		                  r->data.len, e->asked);
		return;
	}
	/* The bytes change hands without a copy: the pool block of the reply's body they
	 * point into, or (a small reply, unpacked into the pool) the block they are. The
	 * reply is freed without them. */
	e->data = (char *)r->data.data;
	e->len = r->data.len;
	e->block = ctx->payload_block != NULL ? ctx->payload_block : e->data;
	ctx->payload_block = NULL;
	((Sockrpc__ReceiveReply *)r)->data.data = NULL;
	((Sockrpc__ReceiveReply *)r)->data.len = 0;
}

static void
drop_head(sr_socket *s)
{
	struct receive_ahead *a = s->ahead;
	struct ahead_entry *e = a->head;

	a->head = e->next;
	if (a->head == NULL)
		a->tail = NULL;
	cl_pool_free(s->client, e->block);
	free(e);
}
