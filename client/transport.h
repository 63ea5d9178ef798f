/*
 * transport.h - the byte stream under libsockrpc's call layer (calls.c): read what
 * the daemon sent, write frames, wait for room, notice a hang-up, stop, free. One
 * over a Unix socket (transport_unix.c), one over TLS to a remote daemon
 * (transport_tls.c); connection.c picks one by the endpoint. A transport knows
 * nothing of frames or calls.
 */
#ifndef SOCKRPC_CLIENT_TRANSPORT_H
#define SOCKRPC_CLIENT_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "sockrpc.h"

struct transport;

struct transport_ops {
	/* One read of what the daemon sent, up to len bytes, waiting at most a tick
	 * (CL_READ_TICK_MS) so that the caller checks its deadline that often. Returns the
	 * bytes read, 0 at end of stream, or -1 with errno (EAGAIN: the tick passed). */
	ssize_t (*read)(struct transport *t, void *buf, size_t len);
	/* Writes what fits of iov without waiting, never raising SIGPIPE. Returns the
	 * bytes written or -1 with errno (EAGAIN: no room now). */
	ssize_t (*writev)(struct transport *t, const struct iovec *iov, int n_iov);
	/* Waits until there is room to write or the deadline (CLOCK_MONOTONIC ms,
	 * CL_NO_DEADLINE) passes. Returns 0, or -1 with errno (ETIMEDOUT). */
	int (*wait_writable)(struct transport *t, int64_t deadline);
	/* Whether the daemon hung up with nothing left to read. Does not wait. */
	bool (*hung_up)(struct transport *t);
	/* Stops the stream both ways, so that a read in progress returns. */
	void (*shutdown)(struct transport *t);
	/* Reads from now on come from the reply channel the Hello reply brought. Returns 0,
	 * or -1 with *err filled. NULL: this transport has no reply channel to offer. */
	int (*use_reply_channel)(struct transport *t, sr_error *err);
	/* The oldest descriptor that arrived with the replies read so far (SCM_RIGHTS,
	 * close-on-exec), now the caller's; -1 if none came, or one came truncated (the
	 * kernel dropped it: MSG_CTRUNC). Only the reading thread calls it. NULL: this
	 * transport cannot carry descriptors, so nothing is ever handed back over it. */
	int (*take_fd)(struct transport *t);
	/* Closes every descriptor that arrived and was not taken. Reading thread only. */
	void (*drop_fds)(struct transport *t);
	/* Why the stream failed, if the transport knows better than errno (a TLS alert:
	 * the daemon refused our certificate), or NULL. NULL op: never. */
	const char *(*failure)(struct transport *t);
	/* Closes what t owns and frees it. */
	void (*free)(struct transport *t);
};

struct transport {
	const struct transport_ops *ops;
};

/* transport_tls.c: endpoint is "tls://HOST:PORT"; credentials from SOCKRPC_TLS_CERT,
 * SOCKRPC_TLS_KEY, SOCKRPC_TLS_CA. Returns a new transport (free with t->ops->free), or
 * NULL with *err saying which step failed (DNS, TCP, the daemon's certificate). */
struct transport *transport_tls_connect(const char *endpoint, sr_error *err);

/* transport_unix.c: each returns a new transport (free with t->ops->free), or NULL. */
struct transport *transport_unix_connect(const char *path, sr_error *err);
/* Takes fd, a connected stream socket, even on failure. */
struct transport *transport_unix_adopt(int fd, sr_error *err);

#endif
