/*
 * priv.h - privilege separation: the messages between the privileged parent (priv.c) and
 * the unprivileged worker (priv_proxy.c), OpenBSD imsg style.
 *
 * Two SOCK_SEQPACKET socketpairs join them. On the request channel the worker sends one
 * request and waits for its reply (every request but PRIV_SESSION_CLOSE has exactly one);
 * on the notify channel the parent sends a new policy after SIGHUP, and its end of file
 * tells the worker the parent is gone. Descriptors travel as SCM_RIGHTS. Every message
 * is one fixed-size struct (PRIV_UNIX_SEND: followed by the payload); the parent checks
 * the size, the type, the number of descriptors and the session of each request, acts only
 * with the identity it read from the kernel itself, and re-checks the policy.
 */
#ifndef SOCKRPCD_PRIV_H
#define SOCKRPCD_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "policy.h"

enum priv_type {
	PRIV_READY = 1,        /* the worker listens: the parent tells systemd READY=1 */
	PRIV_SESSION_OPEN,     /* fd: the client's connection; the parent reads its identity */
	PRIV_SESSION_CLOSE,    /* forget the session (no reply) */
	PRIV_SOCKET,           /* a = family, b = type, c = protocol, value = how many (0: one,
	                        * at most PRIV_SOCKET_BATCH_MAX) -> fds, as the client's fsuid;
	                        * result: how many came */
	PRIV_BIND,             /* fd, addr: an IP bind the worker may not make (port < 1024) */
	PRIV_SETSOCKOPT,       /* fd, a = SOL_SOCKET option, value: one needing privilege */
	PRIV_UNIX_CONNECT,     /* fd, path: connect as the client */
	PRIV_UNIX_BIND,        /* fd, path: bind as the client -> dirfd, dev, ino, name */
	PRIV_UNIX_LISTEN,      /* fd, a = backlog: listen as the client */
	PRIV_UNIX_SEND,        /* fd, path ("" = connected), a = flags; payload follows */
	PRIV_UNIX_UNLINK,      /* dirfd, path = name, dev, ino: remove a bound file as the client */
	PRIV_NOTICE,           /* parent -> worker after SIGHUP: b = a new policy (its text in a
	                        * memfd, or none: the default for uid a); c = the audit log,
	                        * reopened (its fd last) */
	PRIV_TLS_SESSION_OPEN, /* fd: a TLS client's connection; payload: its certificate
	                        * chain (DER, leaf first), which the parent verifies itself */
	PRIV_TLS_SIGN,         /* a = length, path = a handshake digest, then at 64 the SHA-256
	                        * of the key's SPKI -> name = signature (DER, result its
	                        * length), with the key only the parent has */
	PRIV_SESSION_ADMIT,    /* at Hello, with several workers: the global session limits,
	                        * counted by the parent -> 0 or a PRIV_REFUSED_* */
	PRIV_TYPE_END
};

/* A TLS session's certificate chain, in bytes, at most (TLS_VERIFY_DEPTH certificates). */
#define PRIV_CERT_CHAIN_MAX (64u * 1024u)

/* Sockets one PRIV_SOCKET creates at most: a refill of a session's reserve
 * (socket_reserve.c), one policy check and one round trip for all of them. */
#define PRIV_SOCKET_BATCH_MAX 16

/* Descriptors one reply carries at most. */
#define PRIV_REPLY_FDS_MAX PRIV_SOCKET_BATCH_MAX

/* Bytes of payload one PRIV_UNIX_SEND carries at most: a frame's payload. */
#define PRIV_PAYLOAD_MAX (1u << 20)

/* One request, or the parent's notice. */
struct priv_req {
	uint32_t type;
	uint32_t pad;
	uint64_t session;
	int32_t a, b, c;
	int32_t pad2;
	int64_t value;
	uint64_t dev, ino;
	uint32_t addr_len;
	struct sockaddr_storage addr;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* One reply: result is 0, a count (sends, sockets), or -errno; descriptors may come with
 * it (one, or PRIV_SOCKET's batch). */
struct priv_reply {
	uint32_t type; /* the request's */
	int32_t owned; /* PRIV_SOCKET: the socket carries the client's uid */
	int64_t result;
	uint64_t dev, ino; /* PRIV_UNIX_BIND */
	char name[sizeof(((struct sockaddr_un *)0)->sun_path)];
	/* PRIV_SESSION_OPEN: the identity the parent read as root (exe and cgroup included,
	 * which the worker could not read), so both sides decide on the same facts. */
	struct identity who;
};

/* PRIV_SESSION_ADMIT's refusals (as the result). */
#define PRIV_REFUSED_SESSIONS 1 /* --max-sessions, over all workers */
#define PRIV_REFUSED_OWNER 2    /* --max-sessions-per-uid (per principal over TLS) */

/* A session the parent knows: opened by worker `worker` under its id (priv_sessions.c). */
struct priv_session {
	LIST_ENTRY(priv_session) link;
	LIST_ENTRY(priv_session) by_conn;
	int worker;
	uint64_t id;
	dev_t conn_dev; /* its connection (fstat): one connection is one session */
	ino_t conn_ino;
	bool admitted; /* past Hello, counted against the global limits */
	struct identity who;
};

struct priv_session_table;
struct daemon_limits;
struct priv_session_table *priv_sessions_new(void);
void priv_sessions_free(struct priv_session_table *t);
struct priv_session *priv_sessions_find(struct priv_session_table *t, int worker, uint64_t id);
int priv_sessions_may_open(struct priv_session_table *t, int worker, int fd,
                           const struct daemon_limits *l, struct priv_session *s);
void priv_sessions_insert(struct priv_session_table *t, struct priv_session *s);
void priv_sessions_remove(struct priv_session_table *t, struct priv_session *s);
void priv_sessions_forget_worker(struct priv_session_table *t, int worker);
int priv_sessions_admit(struct priv_session_table *t, struct priv_session *s,
                        const struct daemon_limits *l);

struct priv_parent;

/* The parent's state; exported for the unit tests of its request validation. Returns a
 * new parent (free with priv_parent_free) acting under `policy` (borrowed), for a daemon
 * whose own socket file is (own_dev, own_ino) and whose listener is bound at listen_path
 * (sessions are connections accepted there). */
struct priv_parent *priv_parent_new(const struct policy *policy, dev_t own_dev, ino_t own_ino,
                                    const char *listen_path);
void priv_parent_free(struct priv_parent *p);
void priv_parent_set_policy(struct priv_parent *p, const struct policy *policy);
/* The limits (borrowed; NULL: none): the global ones PRIV_SESSION_ADMIT applies with
 * several workers, and the sessions a worker may hold at most. Several workers: the
 * worker whose messages priv_parent_serve serves next (0 until set), and the sessions of
 * a worker that is gone, forgotten. */
void priv_parent_set_limits(struct priv_parent *p, const struct daemon_limits *limits);
void priv_parent_set_worker(struct priv_parent *p, int worker);
void priv_parent_forget_worker(struct priv_parent *p, int worker);
/* TLS sessions: the CA store (taken) the parent verifies their certificates against,
 * and the addresses of the TLS listeners (sessions are connections accepted there). */
struct x509_store_st;
void priv_parent_set_tls(struct priv_parent *p, struct x509_store_st *ca,
                         const struct sockaddr_storage *listeners, int n);
/* The daemon's TLS key (taken), for PRIV_TLS_SIGN; NULL: none (the worker holds it). */
struct evp_pkey_st;
void priv_parent_set_tls_key(struct priv_parent *p, struct evp_pkey_st *key);

/*
 * Serves one message as received: `len` bytes at buf and the n_fds descriptors that came
 * with it (all taken: each is closed or handed on). Fills *reply and the *n_reply_fds
 * descriptors to send with it in reply_fds (PRIV_REPLY_FDS_MAX of room; the caller closes
 * them once sent) and returns true when a reply is due. A malformed or forged message is
 * refused with -EPERM/-EINVAL, logged.
 */
bool priv_parent_serve(struct priv_parent *p, const void *buf, size_t len, int *fds, int n_fds,
                       struct priv_reply *reply, int *reply_fds, int *n_reply_fds);

#endif
