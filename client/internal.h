/*
 * internal.h - what the files of libsockrpc share: the client and socket
 * structs, the per-call context handed through protobuf-c's service, and the
 * error helpers. Not installed; the public API is include/sockrpc.h.
 */
#ifndef SOCKRPC_CLIENT_INTERNAL_H
#define SOCKRPC_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/un.h>

#include <protobuf-c/protobuf-c.h>

#include "sockrpc.h"
#include "sockrpc.pb-c.h"

/*
 * Deadlines. Calls that never wait on the network (socket, bind, listen,
 * options, info, close, shutdown, set_blocking, hello) are answered by the
 * daemon at once, so 30 s without an answer means the daemon is wedged. Calls
 * that wait rely on the daemon's own timer (the handle's timeout) plus a margin
 * for the reply to travel; with no timeout they wait without a deadline.
 * Name resolution has no per-handle timeout: the daemon's resolver gives up
 * well before 120 s (evdns: a few attempts of 5 s each).
 */
#define CL_NO_DEADLINE		(-1)
#define CL_FIXED_DEADLINE_MS	30000
#define CL_WAIT_MARGIN_MS	5000
#define READ_TICK_MS		250	/* how often a blocked reader checks its deadline */
#define CL_RESOLVE_DEADLINE_MS	120000
#define CL_CONNECT_DEFAULT_MS	300000	/* the daemon's default, as Blade's */
/* How long close and shutdown wait for write-behind sends that make no progress. */
#define CL_LINGER_MS		5000

/*
 * The most the library takes from a daemon, whatever its Hello announces: the
 * protocol's own limits (proto/frame.h), which sockrpcd announces as they are. A
 * reply's body is allocated before it arrives, so these bound what a hostile (or
 * remote) daemon can make the client reserve; a smaller announced limit is kept.
 */
#define CLIENT_MAX_FRAME	SR_MAX_FRAME
#define CLIENT_MAX_PAYLOAD	SR_MAX_PAYLOAD
/* Addresses one GetAddressInfo reply may list: sockrpcd's own cap (ops_resolve.c). */
#define CLIENT_MAX_ADDRESSES	64

struct pending;

/* Large buffers a client keeps for reuse (buffer_pool.c). */
#define POOL_BLOCKS 4

struct sr_client {
	ProtobufCService service;	/* invoke() sends a frame and waits */
	int fd;				/* the connection; -1 once closed */
	int reply_fd;			/* replies come here: fd, or the reply channel */
	int passed_fd;			/* the channel, from its arrival until Hello takes it */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];

	pthread_mutex_t mu;		/* guards every field below and socket states */
	pthread_mutex_t write_mu;	/* one frame is written at a time */
	uint64_t next_call_id;
	uint64_t replies_read;		/* numbers replies in the order they arrive */
	struct pending *pending;	/* calls sent and not yet answered */
	bool reading;			/* a waiting thread is reading replies */
	uint8_t *rbuf;			/* bytes read, not yet parsed: the reader's alone */
	size_t rcap, rlen, roff;	/* its size, bytes in it, bytes parsed */
	bool broken;			/* no further call can succeed */
	sr_error broken_err;		/* why, given to every later call */

	uint64_t session_id;		/* from Hello */
	char daemon_version[32];	/* from Hello */
	uint32_t max_frame;
	uint32_t max_payload;
	uint32_t max_handles;

	sr_socket *sockets;		/* every sr_socket not yet freed */

	pthread_mutex_t pool_mu;	/* guards pool; buffer_pool.c */
	void *pool[POOL_BLOCKS];	/* large buffers kept for reuse */
	ProtobufCAllocator pool_allocator; /* unpacks replies into pool buffers */
};

struct sr_socket {
	sr_client *client;	/* NULL once sr_client_close() detached it */
	long handle;		/* the daemon's handle id */
	sr_state state;		/* the newest state received; written under client->mu */
	uint64_t state_arrival;	/* which reply it came in (client->replies_read) */
	sr_socket *prev, *next;	/* in client->sockets */
	pthread_mutex_t send_mu;	/* one sender at a time, so chunks stay in order */
	struct send_window *window;	/* write-behind sends in flight; send_window.c */
	pthread_mutex_t recv_mu;	/* one receiver at a time, so data stays in order */
	struct receive_ahead *ahead;	/* receives fetched ahead; receive_ahead.c */
};

/*
 * Per-call context, passed to the generated stubs as closure_data: invoke()
 * reads the deadline from it, call_done() stores the outcome in it. take() is
 * called by call_done() for a successful reply to copy out the method's own
 * fields before the reply is freed.
 */
struct call_ctx {
	sr_client *client;
	sr_socket *socket;	/* whose state the reply's `state` updates, or NULL */
	int64_t deadline;	/* CLOCK_MONOTONIC ms, or CL_NO_DEADLINE */
	sr_error *err;		/* may be NULL */
	bool failed;
	void (*take)(const ProtobufCMessage *reply, struct call_ctx *ctx);
	void *out;		/* for take() */
	struct pending **started; /* set: only send the call, store it here */
	uint64_t arrival;	/* the reply's place in the order replies arrived */
	/* The pool block the reply's payload points into (proto/payload.h), or NULL; take()
	 * may keep the payload by taking the block (setting this NULL), else it is freed
	 * when take() returns. */
	void *payload_block;
};

/* client.c */
sr_client *cl_client_adopt(int fd, sr_error *err);
int64_t	 cl_now_ms(void);
int64_t	 cl_deadline_after(int64_t ms);
void	 cl_call_init(struct call_ctx *ctx, sr_client *c, sr_socket *s, int64_t deadline,
	    sr_error *err);
void	 cl_call_done(const ProtobufCMessage *reply, void *closure_data);
void	 cl_call_violation(struct call_ctx *ctx, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	 cl_state_from_wire(sr_state *out, const Sockrpc__SocketState *in, sr_error *err);
void	 cl_state_mark_closed(sr_state *st);
void	 cl_client_attach(sr_client *c, sr_socket *s);
void	 cl_client_detach(sr_client *c, sr_socket *s);
bool	 cl_client_holds(sr_client *c, long handle);
void	 cl_client_fail(sr_client *c, const sr_error *why);
void	 cl_client_notice_hangup(sr_client *c);
int	 cl_client_broken(sr_client *c, sr_error *err);
bool	 cl_call_ready(sr_client *c, struct pending *p);
bool	 cl_call_wait_until(sr_client *c, struct pending *p, int64_t deadline);
void	 cl_call_finish(sr_client *c, struct pending *p, struct call_ctx *ctx);
void	 cl_call_abandon(sr_client *c, struct pending *p);

/* buffer_pool.c: blocks from cl_pool_alloc() go back through cl_pool_free() */
void	 cl_pool_init(sr_client *c);
void	 cl_pool_destroy(sr_client *c);
void	*cl_pool_alloc(sr_client *c, size_t size);
void	 cl_pool_free(sr_client *c, void *p);

/* send_window.c */
long	 cl_window_send(sr_socket *s, const void *data, size_t len, sr_error *err);
int	 cl_window_drain(sr_socket *s, int64_t linger_ms, sr_error *err);
void	 cl_window_forget(sr_socket *s);
void	 cl_window_free(sr_socket *s);

/* receive_ahead.c */
void	 cl_ahead_start(sr_socket *s, long length);
int	 cl_ahead_take(sr_socket *s, long length, int flags, char **out, size_t *out_len,
	    sr_error *err);
void	 cl_ahead_forget(sr_socket *s);
void	 cl_ahead_free(sr_socket *s);

/* socket.c */
enum cl_wait_kind { WAIT_RECEIVE, WAIT_SEND };
int64_t	 cl_wait_deadline(sr_socket *s, enum cl_wait_kind kind);

/* errors.c */
void	 cl_seterr(sr_error *err, int code, int sys_errno, const char *fmt, ...)
	    __attribute__((format(printf, 4, 5)));
void	 cl_seterr_status(sr_error *err, const Sockrpc__Status *st);
void	 cl_copyerr(sr_error *dst, const sr_error *src);
const char *cl_errno_text(int e, char *buf, size_t len);
int	 cl_errno_from_name(const char *name, int fallback);

/* constants.c */
const char *cl_constant_name(const char *prefix, long value);

#endif
