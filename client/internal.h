/*
 * internal.h - what the files of libsockrpc share: the client and socket structs,
 * the per-call context handed through protobuf-c's service, and each file's
 * exports. Not installed; the public API is include/sockrpc.h. Internal names take
 * the cl_ prefix; sr_ is the public API's.
 *
 * Layers, each calling only the ones below it (an upper layer that must hear of an
 * event registers a callback: struct client_hooks):
 *
 *   socket.c, socket_io.c,    the sr_* stubs, one per method; handles and their state
 *   socket_options.c, names.c
 *   socket_pipeline.c,        calls sent together without waiting (protocol 1.2 ids);
 *   handback.c                descriptors handed back
 *   send_window.c,            fast paths (write-behind, read-ahead), each with an off
 *   receive_ahead.c           switch (fastpath.c)
 *   connection.c              open, Hello, close
 *   calls.c, replies.c        call ids, the table of calls, the reply reader, deadlines;
 *                             what a reply means to its call
 *   frames.c                  frames packed, written whole, read and checked
 *   transport.h               bytes to and from the daemon (transport_unix.c,
 *                             transport_tls.c)
 *   buffer_pool.c, errors.c, constants.c, fastpath.c: leaves, used by any layer
 *
 * Locks, and the one order they are taken in (a thread holding one may take only
 * those after it; those on the same line are never held together):
 *
 *   1. s->send_mu | s->recv_mu   per socket: one sender, one receiver at a time, so
 *                                 chunks and data stay in order; held across whole
 *                                 calls, and the write-behind / read-ahead state
 *                                 (s->window, s->ahead) is theirs (sr_socket_free and
 *                                 sr_client_close touch it without: no call may run)
 *   2. c->write_mu | c->mu       write_mu: one frame written at a time (calls.c); held
 *                                 only while writing, which may wait for the daemon,
 *                                 so never with mu, which the reader needs to hand out
 *                                 replies. mu: the call table and reader (pending,
 *                                 next_call_id, replies_read, reading, broken), the
 *                                 socket list and every socket's state; never held
 *                                 across a wait. Each pending's cond waits on mu.
 *   3. c->pool_mu                the pool's slots (buffer_pool.c); taken under mu
 *                                 when the reader drops a reply, never held long
 *
 * None is redundant: write_mu folded into mu would let a writer waiting for room stop
 * the reader (and the daemon stops reading a session whose replies are not read);
 * pool_mu folded into mu would make the reader, which allocates bodies without mu,
 * contend with every caller's state reads.
 *
 * (client/cli/relay.c has a mutex of its own; it is the CLI's, not the library's.)
 */
#ifndef SOCKRPC_CLIENT_INTERNAL_H
#define SOCKRPC_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/un.h>
#include <time.h>

#include <protobuf-c/protobuf-c.h>

#include "sockrpc.h"
#include "sockrpc.pb-c.h"
#include "transport.h"

/*
 * Deadlines. Calls that never wait on the network (socket, bind, listen,
 * options, info, close, shutdown, set_blocking, hello) are answered by the
 * daemon at once, so 30 s without an answer means the daemon is wedged. Calls
 * that wait rely on the daemon's own timer (the handle's timeout) plus a margin
 * for the reply to travel; with no timeout they wait without a deadline.
 * Name resolution has no per-handle timeout: the daemon's resolver gives up
 * well before 120 s (evdns: a few attempts of 5 s each).
 */
#define CL_NO_DEADLINE (-1)
#define CL_FIXED_DEADLINE_MS 30000
#define CL_WAIT_MARGIN_MS 5000
#define CL_READ_TICK_MS 250 /* how often a blocked reader checks its deadline */
#define CL_RESOLVE_DEADLINE_MS 120000
#define CL_CONNECT_DEFAULT_MS 300000 /* the daemon's default, as Blade's */
/* How long close and shutdown wait for write-behind sends that make no progress. */
#define CL_LINGER_MS 5000

/*
 * The most the library takes from a daemon, whatever its Hello announces: the
 * protocol's own limits (proto/frame.h), which sockrpcd announces as they are. A
 * reply's body is allocated before it arrives, so these bound what a hostile (or
 * remote) daemon can make the client reserve; a smaller announced limit is kept.
 */
#define CLIENT_MAX_FRAME SR_MAX_FRAME
#define CLIENT_MAX_PAYLOAD SR_MAX_PAYLOAD
/* Addresses one GetAddressInfo reply may list: sockrpcd's own cap (ops_resolve.c). */
#define CLIENT_MAX_ADDRESSES 64

struct pending;

/* Large buffers a client keeps for reuse (buffer_pool.c). */
#define POOL_BLOCKS 4

/* What the socket layer asks to hear of a client, registered by its first handle. */
struct client_hooks {
	void (*broken)(sr_client *c);  /* the session ended; called with c->mu held */
	void (*closing)(sr_client *c); /* sr_client_close, before c is freed */
};

struct sr_client {
	ProtobufCService service;    /* invoke() sends a frame and waits; calls.c */
	struct transport *transport; /* the byte stream to the daemon */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char claimed_exe[256]; /* said in Hello (sr_client_open_claiming), "" for nothing */

	pthread_mutex_t mu;       /* see the lock order above */
	pthread_mutex_t write_mu; /* one frame is written at a time */
	uint64_t next_call_id;
	uint64_t replies_read;   /* numbers replies in the order they arrive */
	struct pending *pending; /* calls sent and not yet answered */
	bool reading;            /* a waiting thread is reading replies */
	uint8_t *rbuf;           /* bytes read, not yet parsed: the reader's alone */
	size_t rcap, rlen, roff; /* its size, bytes in it, bytes parsed */
	bool broken;             /* no further call can succeed */
	sr_error broken_err;     /* why, given to every later call */

	uint64_t session_id;     /* from Hello; written before any other thread */
	char daemon_version[32]; /* from Hello */
	uint32_t max_frame;
	uint32_t max_payload;
	uint32_t max_handles;
	uint32_t daemon_minor;   /* the protocol minor version the daemon speaks (Hello) */
	bool client_ids;         /* the daemon takes handle ids we choose (protocol 1.2) */
	int64_t next_handle_id;  /* the next one; under mu */
	unsigned unwaited_calls; /* calls sent that no one waits for, unanswered; under mu */

	sr_socket *sockets;               /* every sr_socket not yet freed; under mu */
	const struct client_hooks *hooks; /* set by socket.c under mu, or NULL */

	pthread_mutex_t pool_mu;           /* guards pool; buffer_pool.c */
	void *pool[POOL_BLOCKS];           /* large buffers kept for reuse */
	ProtobufCAllocator pool_allocator; /* unpacks replies into pool buffers */
};

struct sr_socket {
	sr_client *client;           /* NULL once sr_client_close() detached it */
	long handle;                 /* the daemon's handle id */
	sr_state state;              /* the newest state received; under client->mu */
	uint64_t state_arrival;      /* which reply it came in (client->replies_read) */
	sr_socket *prev, *next;      /* in client->sockets */
	pthread_mutex_t send_mu;     /* one sender at a time, so chunks stay in order */
	struct send_window *window;  /* write-behind sends in flight; send_window.c */
	pthread_mutex_t recv_mu;     /* one receiver at a time, so data stays in order */
	struct receive_ahead *ahead; /* receives fetched ahead; receive_ahead.c */
	struct pending *closing;     /* a Close no one waited for, until its outcome is read;
	                              * under client->mu (socket_pipeline.c) */
	bool lingers;                /* SO_LINGER set positive: close must wait */
	/* Socket and SendTo of sr_socket_send_to, their outcomes owed to the next call;
	 * under client->mu (socket_pipeline.c) */
	struct pending *owed[2];
};

/*
 * Per-call context, passed to the generated stubs as closure_data: invoke()
 * reads the deadline from it, call_done() stores the outcome in it. take() is
 * called by call_done() for a successful reply to copy out the method's own
 * fields before the reply is freed.
 */
struct call_ctx {
	sr_client *client;
	sr_socket *socket; /* whose state the reply's `state` updates, or NULL */
	int64_t deadline;  /* CLOCK_MONOTONIC ms, or CL_NO_DEADLINE */
	sr_error *err;     /* may be NULL */
	bool failed;
	void (*take)(const ProtobufCMessage *reply, struct call_ctx *ctx);
	void *out;                /* for take() */
	struct pending **started; /* set: only send the call, store it here */
	bool unwaited;            /* with started: no one waits for it (c->unwaited_calls) */
	uint64_t arrival;         /* the reply's place in the order replies arrived */
	/* The pool block the reply's payload points into (proto/payload.h), or NULL; take()
	 * may keep the payload by taking the block (setting this NULL), else it is freed
	 * when take() returns. */
	void *payload_block;
	/* A descriptor the reply brought (handback.c): take() may keep it (setting it -1),
	 * else it is closed once the closure returns. */
	int passed_fd;
};

/* Typed closures for the generated stubs; all forward to cl_call_done(). */
#define CL_CLOSURE(fn, Type)                                                                       \
	static void fn(const Type *reply, void *data)                                              \
	{                                                                                          \
		cl_call_done((const ProtobufCMessage *)reply, data);                               \
	}

static inline int64_t
cl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* connection.c */
sr_client *cl_client_adopt(int fd, sr_error *err);

/* calls.c */
enum cl_wait_kind { WAIT_RECEIVE, WAIT_SEND };
void cl_calls_init(sr_client *c);
void cl_calls_destroy(sr_client *c);
int64_t cl_deadline_after(int64_t ms);
int64_t cl_wait_deadline(sr_socket *s, enum cl_wait_kind kind);
void cl_call_init(struct call_ctx *ctx, sr_client *c, sr_socket *s, int64_t deadline,
                  sr_error *err);
bool cl_call_ready(sr_client *c, struct pending *p);
bool cl_call_wait_until(sr_client *c, struct pending *p, int64_t deadline);
void cl_call_finish(sr_client *c, struct pending *p, struct call_ctx *ctx);
void cl_call_abandon(sr_client *c, struct pending *p);
#define CL_MAX_TOGETHER 4
int cl_calls_start_together(sr_client *c, unsigned n, const unsigned *methods,
                            const ProtobufCMessage *const *inputs, int64_t deadline,
                            struct pending **out, sr_error *err);
void cl_client_notice_hangup(sr_client *c);
int cl_client_broken(sr_client *c, sr_error *err);
void cl_client_fail(sr_client *c, const sr_error *why);

/* replies.c */
void cl_call_done(const ProtobufCMessage *reply, void *closure_data);
void cl_call_violation(struct call_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
bool cl_call_valid_port(struct call_ctx *ctx, const char *what, int32_t port);
int cl_state_from_wire(sr_state *out, const Sockrpc__SocketState *in, sr_error *err);

/* handback.c */
unsigned cl_handback_method(void);

/* frames.c: only the reading thread (c->reading) reads */
#define CL_READ_LATE (-2) /* a read's deadline passed; what came stays buffered */
struct sr_frame_header;
uint8_t *cl_frame_pack(sr_client *c, const ProtobufCMessage *input, size_t *len,
                       ProtobufCBinaryData *payload, sr_error *err);
int cl_frame_write(sr_client *c, struct iovec *iov, int n_iov, int64_t deadline, sr_error *err);
int cl_frame_read(sr_client *c, int64_t deadline, struct sr_frame_header *h, uint8_t **body,
                  sr_error *err);

/* fastpath.c: what SOCKRPC_DISABLE (read once) leaves on */
#define CL_FAST_WRITE_BEHIND 0x1u     /* send_window.c */
#define CL_FAST_READ_AHEAD 0x2u       /* receive_ahead.c */
#define CL_FAST_BORROWED_REPLIES 0x4u /* buffer_pool.c */
#define CL_FAST_PIPELINED 0x8u        /* socket_pipeline.c */
unsigned cl_method_index(const char *name);
sr_socket *cl_socket_named(sr_client *c, int family, int type, int protocol,
                           Sockrpc__SocketRequest *req, sr_error *err);
#define CL_FAST_ALL 0xfu
bool cl_fastpath_on(unsigned path);
unsigned cl_fastpath_parse(const char *list);

/* buffer_pool.c: blocks from cl_pool_alloc() go back through cl_pool_free() */
void cl_pool_init(sr_client *c);
void cl_pool_destroy(sr_client *c);
void *cl_pool_alloc(sr_client *c, size_t size);
void cl_pool_free(sr_client *c, void *p);
ProtobufCMessage *cl_pool_unpack(sr_client *c, const ProtobufCMessageDescriptor *desc,
                                 uint8_t *body, size_t len, ProtobufCBinaryData **borrowed);
void cl_pool_free_unpacked(sr_client *c, ProtobufCMessage *reply, ProtobufCBinaryData *borrowed);

/* send_window.c: the caller holds s->send_mu */
long cl_window_send(sr_socket *s, const void *data, size_t len, sr_error *err);
int cl_window_drain(sr_socket *s, int64_t linger_ms, sr_error *err);
void cl_window_forget(sr_socket *s);
void cl_window_free(sr_socket *s);

/* receive_ahead.c: the caller holds s->recv_mu */
void cl_ahead_start(sr_socket *s, long length);
int cl_ahead_take(sr_socket *s, long length, int flags, char **out, size_t *out_len, sr_error *err);
void cl_ahead_forget(sr_socket *s);
size_t cl_ahead_held(sr_socket *s);
void cl_ahead_free(sr_socket *s);

/* socket.c */
int cl_socket_usable(sr_socket *s, sr_error *err);
int cl_socket_check(sr_socket *s, bool collect_owed, sr_error *err);
long cl_socket_payload_limit(sr_socket *s);
int cl_socket_request(int family, int type, int protocol, Sockrpc__SocketRequest *req,
                      sr_error *err);
sr_socket *cl_socket_alloc(sr_error *err);
int cl_family_to_wire(int family, int *wire, sr_error *err);
void cl_socket_attach(sr_client *c, sr_socket *s);

/* socket_pipeline.c */
unsigned cl_method_index(const char *name);
sr_socket *cl_socket_named(sr_client *c, int family, int type, int protocol,
                           Sockrpc__SocketRequest *req, sr_error *err);
bool cl_close_unwaited(sr_socket *s, const Sockrpc__CloseRequest *req);
bool cl_close_pending(sr_socket *s);
int cl_close_collect(sr_socket *s, sr_error *err);
bool cl_close_forget(sr_socket *s);
bool cl_owed_pending(sr_socket *s);
int cl_owed_collect(sr_socket *s, sr_error *err);
void cl_owed_forget(sr_socket *s);

/* errors.c */
void cl_seterr(sr_error *err, int code, int sys_errno, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void cl_seterr_status(sr_error *err, const Sockrpc__Status *st);
void cl_copyerr(sr_error *dst, const sr_error *src);
const char *cl_errno_text(int e, char *buf, size_t len);
int cl_errno_from_name(const char *name, int fallback);

/* constants.c */
const char *cl_constant_name(const char *prefix, long value);

#endif
