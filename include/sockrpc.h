/*
 * sockrpc.h - libsockrpc, Blade's socket API brokered by the sockrpcd daemon.
 *
 * A process with no network of its own opens one sr_client (a connection to the
 * daemon) and creates sr_socket handles through it; each handle is a real socket
 * owned by the daemon. Every method mirrors a method of Blade's Socket class.
 *
 * Conventions:
 * - Family, type, protocol, option, flags and `how` arguments are this host's
 *   constants (AF_INET, SOCK_STREAM, SO_KEEPALIVE, SHUT_RDWR, MSG_PEEK...).
 * - Functions return 0 (or a count) on success and -1 (or NULL) on failure with
 *   *err filled; err may be NULL.
 * - Buffers returned through `char **out` are malloc'd and belong to the caller.
 * - A client may be used from several threads at once: calls are pipelined to the
 *   daemon and matched to their replies by call id. One thread may close a handle
 *   that another thread is waiting on; the waiting call then returns SR_ECLOSED.
 * - Properties are read locally from the state of the last reply (no round trip).
 * - The daemon is not trusted: a reply that breaks the protocol (a count beyond what was
 *   sent, data longer than asked, a state no socket can have, a reply nobody asked for)
 *   fails the call with SR_EPROTO. Hello's limits are taken only below the protocol's
 *   own (1 MiB of payload a call). Once the connection breaks or the daemon goes away,
 *   every handle reads closed and every call fails at once with the reason.
 */
#ifndef SOCKRPC_H
#define SOCKRPC_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SR_VERSION "0.1.0"

/* Outcome codes; the same table travels as the Code enum of the wire protocol. */
enum {
	SR_OK = 0,
	SR_EINVAL = 1,       /* a bad argument */
	SR_EBADHANDLE = 2,   /* no such handle in this session */
	SR_EDENIED = 3,      /* refused by policy */
	SR_ETIMEDOUT = 4,    /* the call's timeout passed */
	SR_EWOULDBLOCK = 5,  /* non-blocking handle and the call would wait */
	SR_ECLOSED = 6,      /* the handle is closed, or was closed while the call waited */
	SR_EOS = 7,          /* an operating-system error: see sys_errno */
	SR_EUNSUPPORTED = 8, /* this OS or this daemon cannot do it */
	SR_ELIMIT = 9,       /* a configured limit was reached */
	SR_EPROTO = 10,      /* protocol violation (bad frame, unexpected reply) */
	SR_EDAEMON = 11,     /* the daemon is unreachable or went away */
	SR_ESTATE = 12,      /* the socket's state does not permit the call */
};

typedef struct sr_client sr_client; /* one connection to the daemon */
typedef struct sr_socket sr_socket; /* one handle */

typedef struct sr_error {
	int code;          /* SR_* */
	int sys_errno;     /* the OS errno behind SR_EOS (and some others), else 0 */
	char message[256]; /* what failed and why, e.g. "connect to 127.0.0.1:1 failed: ..." */
} sr_error;

typedef struct sr_state {
	char host[256];
	int port, family, type, protocol;
	long id;
	bool is_client, is_bound, is_connected, is_listening, is_closed, is_shutdown, is_blocking;
	int shutdown_reason, send_timeout, receive_timeout;
} sr_state;

typedef struct sr_sockinfo {
	char address[64]; /* local address text */
	bool ipv6;
	int port;
	int family;
} sr_sockinfo;

/* The text for a code: "connection refused" style, never NULL. */
const char *sr_strerror(int code);

/* Client: path NULL means $SOCKRPC_SOCKET, else the default path (sr_default_socket_path). */
sr_client *sr_client_open(const char *path, sr_error *err);
/* Ends the session (the daemon closes every socket of it). sr_socket objects still allocated
 * stay valid, read as closed, and are freed with sr_socket_free(), before or after this.
 * No call may be in progress on the client. */
void sr_client_close(sr_client *c);
/* As sr_client_open, claiming in Hello to run claimed_exe (an absolute path; launchers such
 * as sockrpc run). The daemon never trusts a claim: only deny rules match on it. */
sr_client *sr_client_open_claiming(const char *path, const char *claimed_exe, sr_error *err);
/* Default path: /run/sockrpc/sockrpc.sock for root, else $XDG_RUNTIME_DIR/sockrpc.sock. */
const char *sr_default_socket_path(void);
/* The session id the daemon gave this client at Hello. */
unsigned long long sr_client_session_id(const sr_client *c);
/* The daemon's version, as it said at Hello ("0.1.0"). */
const char *sr_client_daemon_version(const sr_client *c);

/* Socket(family, type, protocol); 0 for type or protocol means the default. */
sr_socket *sr_socket_new(sr_client *c, int family, int type, int protocol, sr_error *err);
/* timeout_ms: 0 means no limit, negative the default 300000; host NULL: the socket's host. */
int sr_connect(sr_socket *s, const char *host, int port, int timeout_ms, sr_error *err);
long sr_send(sr_socket *s, const void *data, size_t len, int flags, sr_error *err);
/* Streams the rest of the file open on fd to the socket; returns the bytes sent. */
long sr_send_file(sr_socket *s, int fd, sr_error *err);
/* length -1: all that is pending once data arrives. At end of stream *out_len is 0. */
int sr_receive(sr_socket *s, long length, int flags, char **out, size_t *out_len, sr_error *err);
/* Until length bytes (negative: 1024), end of stream or the receive timeout. */
int sr_read(sr_socket *s, long length, char **out, size_t *out_len, sr_error *err);
int sr_shutdown(sr_socket *s, int how, sr_error *err);
int sr_close(sr_socket *s, sr_error *err); /* the handle stays readable until freed */
void sr_socket_free(sr_socket *s);         /* closes it if still open */
int sr_info(sr_socket *s, sr_sockinfo *out, sr_error *err);
/* No round trip; a daemon that hung up is noticed here: the state then reads closed. */
const sr_state *sr_socket_state(const sr_socket *s);

/* Servers, datagrams, options, blocking mode. */
int sr_bind(sr_socket *s, int port, const char *host, sr_error *err);
int sr_listen(sr_socket *s, int queue_length, sr_error *err);
sr_socket *sr_accept(sr_socket *s, sr_error *err);
long sr_send_to(sr_socket *s, const char *host, int port, const void *data, size_t len, int flags,
                sr_error *err);
int sr_receive_from(sr_socket *s, long length, int flags, char **out, size_t *out_len,
                    char host[64], int *port, sr_error *err);
int sr_set_option(sr_socket *s, int option, long value, sr_error *err);
int sr_get_option(sr_socket *s, int option, long *value, sr_error *err);
int sr_set_blocking(sr_socket *s, bool blocking, sr_error *err);
/* Options of any level: SOL_SOCKET as above, IPPROTO_TCP (TCP_NODELAY, TCP_KEEPIDLE,
 * TCP_KEEPINTVL, TCP_KEEPCNT), IPPROTO_IP (IP_TTL, IP_TOS, IP_MULTICAST_TTL,
 * IP_MULTICAST_LOOP), IPPROTO_IPV6 (IPV6_V6ONLY); integer values. IP_ADD_MEMBERSHIP and
 * IP_DROP_MEMBERSHIP (set only; a 64-bit long) take SR_MREQ(group, interface). */
int sr_set_option_level(sr_socket *s, int level, int option, long value, sr_error *err);
int sr_get_option_level(sr_socket *s, int level, int option, long *value, sr_error *err);
/* An IPv4 group and interface (addresses as numbers, 239.1.2.3 = 0xef010203; interface 0:
 * the kernel picks) as the value of IP_ADD_MEMBERSHIP and IP_DROP_MEMBERSHIP. */
#define SR_MREQ(group, iface) ((long)((unsigned long)(iface) << 32 | (unsigned long)(group)))

/*
 * Handing real sockets back (docs/policy.md "Handback"). Where the policy rule that allowed a
 * connect or an accept says `handback`, the daemon passes the OS socket itself to the client
 * (SCM_RIGHTS over the Unix socket) and keeps no copy: data then flows without the broker,
 * and the descriptor works with TLS libraries, poll/epoll and unmodified code. What is never
 * handed back: listening sockets, unconnected datagram sockets, raw and AF_UNIX sockets; a
 * connected UDP socket only where the rule names udp. A refusal is SR_EDENIED naming the
 * rule; a transport that cannot pass descriptors (TLS) gives SR_EUNSUPPORTED. Descriptors
 * arrive close-on-exec, and are the caller's to close (close(2) sends the FIN).
 *
 * sr_connect_fd: Socket + connect (through the policy, as sr_connect) + handback, in one call.
 * type may carry SOCK_NONBLOCK: the descriptor then comes back as soon as the connection is
 * under way (the caller waits for POLLOUT and reads SO_ERROR, as after a non-blocking
 * connect(2)), so an event loop never waits on the broker for the handshake; without it the
 * connection is made (or fails) first and the descriptor is blocking. timeout_ms as
 * sr_connect. Returns the descriptor, or -1.
 */
int sr_connect_fd(sr_client *c, int family, int type, const char *host, int port, int timeout_ms,
                  sr_error *err);
/* Hands back the socket of a connected (or connecting) or accepted handle: returns its
 * descriptor, in the handle's blocking mode, or -1. On success the handle ends (it reads
 * closed; free it with sr_socket_free). On failure the handle is unchanged. */
int sr_socket_take_fd(sr_socket *s, sr_error *err);
/*
 * For supervisors (sockrpc run): the daemon keeps the listening socket (sr_bind, sr_listen
 * through the policy), checks each peer against the policy's `accept` rules (a denied peer
 * is closed and audited, never seen), and hands back each allowed connection. Equivalent to
 * sr_accept then sr_socket_take_fd, in the listener's blocking mode and receive timeout.
 * Returns the accepted connection's descriptor (getpeername(2) names the peer), or -1; a
 * connection refused for handback (no `handback` in its accept rule) is closed.
 */
int sr_accept_fd(sr_socket *listener, sr_error *err);

/* get_address_info(address, type, family): type is a service name (NULL: "http");
 * AF_UNSPEC returns both families. */
typedef struct sr_addrinfo {
	char canonical_name[256];
	char ip[64];  /* the first address found */
	size_t count; /* every address found, in resolver order */
	struct sr_address {
		int family;
		char ip[64];
	} * addresses;
} sr_addrinfo;
int sr_get_address_info(sr_client *c, const char *address, const char *type, int family,
                        sr_addrinfo **out, sr_error *err); /* free with sr_addrinfo_free */
void sr_addrinfo_free(sr_addrinfo *ai);

/* Every constant name of Blade's socket module with this host's value; present is
 * false for a name this OS lacks. IP_ANY and IP_LOCAL are strings. */
typedef struct sr_constant {
	const char *name;
	long value;
	bool present;
} sr_constant;
const sr_constant *sr_constants(size_t *count);
#define SR_IP_ANY "0.0.0.0"
#define SR_IP_LOCAL "127.0.0.1"

/* Fewer round trips. sr_socket_new + sr_connect in one (sockrpcd 1.2 and later; two
 * before): the new socket, connected, or NULL with the error of whichever failed. */
sr_socket *sr_socket_connect(sr_client *c, int family, int type, int protocol, const char *host,
                             int port, int timeout_ms, sr_error *err);
/* sr_socket_new + sr_send_to without waiting (1.2; both wait before): the new socket, or
 * NULL. A failure of either is reported by the next call on it, e.g. the sr_receive_from
 * of the answer, which then waits once for everything. */
sr_socket *sr_socket_send_to(sr_client *c, int family, int type, int protocol, const char *host,
                             int port, const void *data, size_t len, int flags, sr_error *err);

#ifdef __cplusplus
}
#endif

#endif
