/*
 * sockrpcd.h - the daemon's structures and, grouped by file, what each file exports.
 *
 * One state root (struct sockrpcd) owns the event loop, the listener, the sessions,
 * the policy and the audit sink. A session is one client connection with its own
 * handle table; a handle is one OS socket; a call is one request being served.
 */
#ifndef SOCKRPCD_H
#define SOCKRPCD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <event2/event.h>

#include "audit.h"
#include "sockrpcd_limits.h"
#include "policy.h"
#include "sockrpc.pb-c.h"

struct session;
struct tls_server;
struct handle;
struct call;
struct evbuffer;
struct sr_frame_header;

struct daemon_limits {
	unsigned max_sessions;
	unsigned max_handles; /* per session */
	unsigned max_sessions_per_uid;
	size_t max_queued_bytes; /* per session */
};

struct daemon_options {
	const char *socket_path;
	const char *policy_path; /* NULL: the embedded default */
	const char *audit_path;  /* NULL: stderr */
	const char *resolv_conf; /* NULL: /etc/resolv.conf */
	const char *hosts_file;  /* NULL: /etc/hosts */
	const char *user;        /* drop to this user when started as root */
	const char *socket_group;
	int socket_mode;       /* -1: default 0660 under systemd, 0666 otherwise */
	bool no_reply_channel; /* answer Hello's reply_channel with false */
	/* TLS (tls_listener.c): --listen-tls (repeatable), --tls-cert, --tls-key,
	 * --tls-client-ca; --no-ktls keeps encryption in user space */
	const char *tls_listen[TLS_MAX_LISTENERS];
	int n_tls_listen;
	const char *tls_cert, *tls_key, *tls_client_ca;
	bool no_ktls;
	struct daemon_limits limits; /* in force (limits.c) */
	struct daemon_limits
	    limits_given; /* on the command line; 0: not given (beats the policy) */
	unsigned workers; /* --workers: worker processes (priv_parent.c); 0: one */
};

/* The pipe that splices received bytes through the daemon (receive_splice.c);
 * capacity 0: none, every receive copies. */
struct relay_pipe {
	int rd, wr;
	size_t capacity;
};

struct sockrpcd {
	struct event_base *base;
	struct evdns_base *dns;
	struct evconnlistener *listener;
	struct tls_server *tls; /* NULL without --listen-tls (tls_listener.c) */
	bool tls_keyless;       /* split: the TLS key stays in the parent (tls_keyless.c) */
	struct event *accept_retry;
	struct event *trim; /* hands free memory back after sessions end (server.c) */
	struct event *signals[4];
	Sockrpc__SockRpc_Service service; /* the dispatch table: one op_ per rpc */
	TAILQ_HEAD(session_list, session) sessions;
	unsigned n_sessions;
	uint64_t next_session_id;
	struct policy *policy;
	struct audit *audit;
	struct relay_pipe relay;
	struct daemon_options opt;
	bool socket_created; /* we made the socket file, so we unlink it at exit */
	dev_t socket_dev;    /* the socket file's identity, taken before privileges drop, */
	ino_t socket_ino;    /* so no client can target the daemon's own socket */
	bool stopping;
	LIST_HEAD(, lingering) lingering; /* closed sockets waiting out SO_LINGER (linger.c) */
	unsigned n_lingering;
	LIST_HEAD(, resolve_uid) dns_uids; /* uids with lookups in flight or waiting */
	struct resolve_uid *dns_turn;      /* the uid served first when a slot frees */
	unsigned dns_in_flight;
	/* Privilege separation (priv.h): the worker's channels to its privileged parent;
	 * -1 in one process (--user root, or started without root). */
	int priv_fd;
	int priv_notify_fd;
	pid_t priv_parent_pid;
	struct event *priv_notify_ev;
	/* Several workers (--workers, priv_parent.c): how many, this one's index (0-based),
	 * and the stride of its session ids (worker k of n: k + 1, k + 1 + n, ...), so ids
	 * stay unique across workers. 1, 0, 1 with one. */
	unsigned n_workers;
	unsigned worker_index;
	struct event *accept_ev; /* the shared socket (server_shared.c); NULL: one worker */
	int accept_epfd;         /* its EPOLLEXCLUSIVE registration, when accept_ev is set */
	struct socket_reserves *reserves; /* owned; NULL until first used (socket_reserve.c) */
	struct {
		uint64_t served;     /* events served: requests read, sockets ready */
		int64_t woken_at_us; /* when the first event after the last sleep was served; 0 */
	} idle;                      /* idle_poll.c */
};

/* A handle's state; handle_permits() holds which operations each state allows. */
enum handle_state {
	HANDLE_FRESH,
	HANDLE_CONNECTING,
	HANDLE_CONNECTED,
	HANDLE_BOUND,
	HANDLE_LISTENING,
	HANDLE_SHUTDOWN,
	HANDLE_CLOSED,
};

enum handle_op {
	HOP_CONNECT,
	HOP_BIND,
	HOP_LISTEN,
	HOP_ACCEPT,
	HOP_SEND,
	HOP_RECEIVE,
	HOP_SEND_TO,
	HOP_RECEIVE_FROM,
	HOP_SHUTDOWN,
	HOP_SET_OPTION,
	HOP_QUERY, /* get_option, info, set_blocking */
	HOP_HANDBACK,
};

/* Calls that wait queue on their handle by direction, so that a receive waiting for
 * data never holds up a send on the same socket (and vice versa). */
enum call_dir { CALL_RX, CALL_TX };

struct call_queue {
	TAILQ_HEAD(, call) calls;
	struct event *io; /* EV_READ for rx, EV_WRITE for tx */
};

/* The socket file a brokered bind made: removed when its handle closes, if still there. */
struct unix_file {
	int dirfd; /* O_PATH, the directory it was made in; -1: nothing to remove */
	dev_t dev;
	ino_t ino;
	char name[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* A handle's place in its session's batch of sends (send_batch.c). */
struct send_batch_link {
	bool deferred; /* its send queue runs when the batch ends */
	TAILQ_ENTRY(handle) link;
};

struct handle {
	struct session *session;
	int64_t id;
	int fd;
	enum handle_state state;
	int family, type, protocol; /* host values */
	char host[256];
	int port;
	bool blocking;
	bool shut_rd, shut_wr;
	int shutdown_reason;                     /* host SHUT_*, -1 if never */
	int send_timeout_ms, receive_timeout_ms; /* -1: none set */
	bool connect_pending;                    /* a connect call is resolving or connecting */
	int pending_error; /* a failed non-blocking connect's errno, for SO_ERROR */
	uint64_t bytes_in, bytes_out;
	struct call_queue rx, tx;
	struct send_batch_link batch; /* send_batch.c */
	int linger_s; /* SO_LINGER seconds as the client set them, -1: off (linger.c) */
	struct lingering *lingering; /* set by handle_close() while its fd lingers */
	bool client_owned;           /* the OS socket carries the client's uid (as_client_socket) */
	struct unix_file *unix_file; /* owned; NULL unless an AF_UNIX bind made a file */
	/* The rule that allowed its connection (connect or accept) says `handback`; else the
	 * rule's line (0: the embedded default, -1: none yet), for the refusal. */
	bool handback;
	int allowed_by_line;
	bool connect_settled; /* connect(2) itself returned 0: the kernel reads it connected */
};

/* What a waiting call's step function is told. */
enum call_event { CALL_READY, CALL_TIMEOUT };
/* What it answers: it is answered (its reply is queued; the queue runner frees it), or it
 * waits for I/O or for something else (a DNS answer) that will resume it. */
enum call_progress { CALL_DONE, CALL_WAIT_IO, CALL_WAIT_OTHER };

typedef enum call_progress (*call_step_fn)(struct call *c, enum call_event ev);

/*
 * Where connect, bind and send_to aim: a numeric address, or the addresses a name
 * resolved to, tried in turn against the policy (ops.c). Owned by its call.
 */
struct call_target {
	const char *name; /* the host asked for (in the request or the handle) */
	struct resolve_job *resolving;
	struct evutil_addrinfo *candidates, *next_candidate;
	struct sockaddr_storage addr;
	socklen_t addr_len; /* 0: none yet (a name is being resolved) */
	bool addr_used;
	bool chosen;       /* connect: under way; send_to: destination chosen */
	int resolve_error; /* EVUTIL_EAI_* of a failed resolution, else 0 */
	bool denied_seen;
	struct policy_decision denial;
	struct policy_decision allowed_by; /* the decision for the address chosen */
	int last_errno;
};

/*
 * One request being served. Handlers and step functions answer it (call_reply,
 * call_fail), which only queues the reply and marks it answered; it is freed by whoever
 * ran it, once the handler or step has returned: the dispatcher (session.c), the
 * handle's queue runner or its timer (handle.c), or the event that resumed it
 * (call_finish). Nothing else frees a call, except its session's teardown.
 */
struct call {
	TAILQ_ENTRY(call) session_link;
	TAILQ_ENTRY(call) queue_link;
	struct session *session;
	uint64_t id;
	unsigned method;
	ProtobufCMessage *request;     /* owned: freed with the call */
	ProtobufCBinaryData *borrowed; /* request's payload, while it points into the frame */
	size_t charged_bytes;          /* counted against the session's queue limit */
	bool answered;                 /* its reply is queued: free it once its runner returns */
	bool in_handler;               /* its handler runs: only the dispatcher frees it */
	struct handle *handle;         /* set while queued on a handle */
	enum call_dir dir;
	bool queued;
	call_step_fn step;
	int timeout_ms; /* -1: wait without limit */
	bool dont_wait; /* MSG_DONTWAIT: answer EWOULDBLOCK rather than wait */
	struct event *timer;
	/* What one operation keeps while it waits. */
	struct call_target *target; /* connect, bind, send_to; owned */
	union {
		size_t sent; /* send, send_to: bytes sent */
		struct {
			uint8_t *buf; /* the bytes gathered so far; owned */
			size_t want, got;
		} read;
		struct resolve_job *lookup;  /* get_address_info */
		struct lingering *lingering; /* close: answered when the socket's linger ends */
	} op;
	void (*op_free)(struct call *c); /* releases `op`; NULL: nothing to release */
	int failed_code;                 /* the code call_fail() answered, else 0 */
};

/*
 * A session's phase. HELLO: only Hello is read, under a deadline. OPEN: serving.
 * DRAINING: nothing more is read; it closes once its replies are written, or after a
 * deadline. CLOSING: session_close() was called inside one of its callbacks; it is torn
 * down from the loop. CLOSED: torn down; the struct is freed from the loop.
 */
enum session_phase {
	SESSION_HELLO,
	SESSION_OPEN,
	SESSION_DRAINING,
	SESSION_CLOSING,
	SESSION_CLOSED
};

/*
 * The byte stream a session reads requests from and writes replies to (transport_*.c).
 * Session and call code use only these; the loop watches read_fd and write_fd.
 */
struct transport;
struct transport_ops {
	const char *name;
	/* Reads at most `room` bytes into in: > 0 bytes, 0 end of stream, -1 with errno. */
	ssize_t (*read)(struct transport *t, struct evbuffer *in, size_t room);
	/* Writes from the head of out: > 0 bytes, 0 the peer is gone, -1 with errno. */
	int (*write)(struct transport *t, struct evbuffer *out);
	/* Sends all of out with a new reply channel's client end; replies then go to the
	 * channel. 0, -1 if it could not (out unchanged, or the session must close: *fatal).
	 * NULL: this transport has none. */
	int (*open_reply_channel)(struct transport *t, struct evbuffer *out, bool *fatal);
	/* Moves up to n bytes from pipe_rd to the peer as they are (zero copy): > 0 bytes,
	 * -1 with errno. NULL: bytes must pass through the daemon (encryption). */
	ssize_t (*splice_from)(struct transport *t, int pipe_rd, size_t n);
	/* Writes up to len bytes from the head of out, with fd attached (SCM_RIGHTS) to the
	 * first of them: > 0 bytes, -1 with errno. Does not take fd. NULL: this transport
	 * cannot pass descriptors, so nothing is ever handed back over it. */
	ssize_t (*pass_fd)(struct transport *t, struct evbuffer *out, size_t len, int fd);
	/* Whether bytes already taken from the socket wait inside the transport (decrypted
	 * TLS records): the loop would not wake for them. NULL: never. */
	bool (*pending)(struct transport *t);
	/* Whether the peer hung up or the connection failed (polled while not reading). */
	bool (*hung_up)(struct transport *t);
	void (*free)(struct transport *t);
};

struct transport {
	const struct transport_ops *ops;
	int read_fd;  /* requests come in here */
	int write_fd; /* replies go out here (read_fd, or a reply channel) */
};

/* The state of a session's batch of Send frames (send_batch.c). */
struct send_batch {
	size_t bytes; /* the batch's frames, at the head of the input buffer; 0: no batch */
	bool open;    /* the frame being dispatched belongs to the batch */
	TAILQ_HEAD(, handle) deferred; /* handles whose send queue runs at the batch's end */
};

/* Descriptors handed back, each waiting for the write that carries its reply (session_fd.c). */
struct passing_fd {
	int fd;       /* owned until sent */
	size_t until; /* bytes of the output buffer up to the end of its reply frame */
};

struct session {
	TAILQ_ENTRY(session) link;
	struct sockrpcd *d;
	uint64_t id;
	enum session_phase phase;
	const char *close_reason; /* CLOSING, CLOSED: why */
	int depth;   /* > 0 while its code runs: replies wait for the end, and so does a close */
	bool paused; /* backpressure: not read while its replies and calls hold too much */
	struct transport *t; /* owned */
	struct evbuffer *in, *out;
	struct event *ev_read, *ev_write;
	struct event *ev_hangup; /* timer: did the client hang up? while it is not read */
	struct event *ev_close;  /* Hello and drain deadlines; a deferred close */
	size_t frame_size;       /* bytes of the frame being read, once its header is in; else 0 */
	bool streaming;          /* the last read filled the small room: offer the large one */
	struct identity peer;
	int64_t next_handle_id;        /* the next id the daemon chooses */
	int64_t next_client_id;        /* the next id a client may choose (handle_ids.c) */
	struct failed_ids *failed_ids; /* client ids whose creation failed, or NULL */
	struct handle **handles;       /* open handles, sorted by id */
	unsigned n_handles, cap_handles;
	TAILQ_HEAD(, call) calls; /* every call being served */
	size_t queued_bytes;
	struct send_batch batch;
	unsigned dns_in_flight;     /* its lookups evdns is working on (resolve.c) */
	struct passing_fd *passing; /* owned; in the order of their replies */
	unsigned n_passing;
	unsigned fds_sent; /* handed back since the client was last seen to have taken all */
	struct socket_reserve *reserve; /* owned; NULL: none yet (socket_reserve.c) */
	bool more_input; /* the frame being served has others behind it (session_close_later) */
	int closing[SESSION_CLOSE_LATER_MAX]; /* owned: fds to close once replies are out */
	unsigned n_closing;
};

/* The index of Hello, the first rpc of the service. */
#define SOCKRPC_HELLO_METHOD 0

/* server.c */
int server_create_listener(struct sockrpcd *d);
int server_listen(struct sockrpcd *d, int inherited_fd);
void server_stop(struct sockrpcd *d);
void server_session_gone(struct sockrpcd *d, struct session *s);
const char *server_admission_refusal(struct sockrpcd *d, const struct session *newcomer);
bool server_same_owner(const struct identity *a, const struct identity *b);
/* server_shared.c: the daemon's socket, shared by several workers. */
int server_listen_shared(struct sockrpcd *d, int fd, void (*cb)(struct sockrpcd *, int));
void server_shared_resume(struct sockrpcd *d);
unsigned server_worker_slots(const struct sockrpcd *d);
void server_shared_free(struct sockrpcd *d);

/* session.c */
struct session *session_new(struct sockrpcd *d, int fd, const struct identity *peer);
struct session *session_new_transport(struct sockrpcd *d, struct transport *t,
                                      const struct identity *peer);
void session_close(struct session *s, const char *reason);
void session_drain(struct session *s, const char *why);
void session_hello_received(struct session *s);
void session_enter(struct session *s);
void session_leave(struct session *s);
int session_queue_frame(struct session *s, unsigned method, uint64_t call_id,
                        const ProtobufCMessage *reply, const uint8_t *key, size_t key_len,
                        size_t more);
void session_send_reply(struct session *s, unsigned method, uint64_t call_id,
                        const ProtobufCMessage *reply);
void session_send_reply_with_channel(struct session *s, unsigned method, uint64_t call_id,
                                     Sockrpc__HelloReply *reply);
bool session_output_drained(struct session *s);
void session_flush(struct session *s);
void session_update_reading(struct session *s);
void session_release_call_bytes(struct session *s, size_t bytes);

/* session_fd.c */
bool session_close_later(struct session *s, int fd);
void session_close_deferred(struct session *s);
void session_send_reply_with_fd(struct session *s, unsigned method, uint64_t call_id,
                                const ProtobufCMessage *reply, int fd);
int session_write_passing(struct session *s);
void session_drop_passing(struct session *s);
unsigned session_sockets_held(struct session *s, unsigned limit);

/* transport_unix.c */
struct transport *transport_unix_new(int fd);
ssize_t read_into_buffer(struct evbuffer *in, int fd, size_t room);

/* transport_tls.c, tls_context.c, tls_identity.c, tls_listener.c */
typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;
typedef struct x509_st X509;
typedef struct x509_store_st X509_STORE;
struct transport *transport_tls_new(int fd, SSL *ssl);
bool transport_is_tls(const struct transport *t);
SSL *transport_tls_ssl(struct transport *t);
const char *tls_error_text(char *buf, size_t len);
/* The TLS credentials as read from their files (as root), NUL-terminated. */
struct tls_pem {
	char *cert, *key, *ca;
	size_t cert_len, key_len, ca_len;
};
int tls_pem_read(const struct daemon_options *opt, struct tls_pem *out, char *err, size_t err_len);
void tls_pem_clear(struct tls_pem *pem);
int tls_pem_to_fd(const struct tls_pem *pem);
int tls_pem_from_fd(int fd, struct tls_pem *out);
SSL_CTX *tls_server_context_new(const struct tls_pem *pem, bool ktls, char *err, size_t err_len);
X509_STORE *tls_ca_store_new(const struct tls_pem *pem, char *err, size_t err_len);
int tls_reload(struct sockrpcd *d, const struct tls_pem *pem);
int tls_pem_read_public(const struct daemon_options *opt, struct tls_pem *out, char *err,
                        size_t err_len);
/* tls_keyless.c */
typedef struct evp_pkey_st EVP_PKEY;
typedef int (*tls_sign_fn)(const uint8_t *dgst, size_t len, const uint8_t which[32], uint8_t *sig,
                           size_t *sig_len);
bool tls_key_is(EVP_PKEY *key, const uint8_t which[32]);
void tls_keyless_set_signer(tls_sign_fn fn);
bool tls_keyless_possible(EVP_PKEY *key);
EVP_PKEY *tls_keyless_key(X509 *cert);
int tls_sign_digest(EVP_PKEY *key, const uint8_t *dgst, size_t len, uint8_t *sig, size_t *sig_len);
EVP_PKEY *tls_private_key(const struct tls_pem *pem, char *err, size_t err_len);
int tls_identity_from_cert(X509 *cert, struct identity *id);
void tls_identity_set_address(struct identity *id, const struct sockaddr *sa, socklen_t len);
int tls_open(struct sockrpcd *d);
int tls_start(struct sockrpcd *d);
void tls_stop(struct sockrpcd *d);
void tls_free(struct sockrpcd *d);
int tls_listener_addresses(const struct sockrpcd *d, struct sockaddr_storage *out, int max);

/* fast_path.c */
enum fast_path {
	FAST_SEND_BATCHING,
	FAST_BORROWED_PAYLOADS,
	FAST_SPLICE_RECEIVE,
	FAST_AUDIT_BUFFERING, /* audit.c: lines written on a timer, not one write each */
	FAST_CONNECT_AT_ONCE, /* ops_connect.c: a connect already over is answered at once */
	FAST_SOCKET_RESERVE,  /* socket_reserve.c: sockets made ahead, a batch per parent trip */
	/* receive_in_place.c: a TLS session's receives read into the reply */
	FAST_RECEIVE_IN_PLACE,
	FAST_IDLE_POLL, /* idle_poll.c: the worker polls a little before it sleeps */
	FAST_N
};
void fast_path_init(void);
bool fast_path_on(enum fast_path p);

/* idle_poll.c: the worker's loop (main.c), and what counts as its work. */
#define IDLE_POLL_MAX_US 50  /* the longest window */
#define IDLE_POLL_FIRST_US 8 /* a window grows from nothing to this; below it, none */
void idle_poll_run(struct sockrpcd *d);
void idle_poll_served(struct sockrpcd *d);
/* The window after one that ended in a sleep of slept_us (exported for its test). */
unsigned idle_poll_next_window(unsigned window, int64_t slept_us);

/* send_batch.c */
void send_batch_init(struct send_batch *b);
bool send_batch_joins(struct session *s, const struct sr_frame_header *h, size_t size);
bool send_batch_full(struct session *s);
void send_batch_end(struct session *s);
bool send_batch_defer(struct handle *h, struct call *c);
void send_batch_run_deferred(struct session *s);
void send_batch_forget(struct handle *h);
/* The most Send calls of one handle that leave in one sendmsg: a batch of Send frames then
 * costs one system call, and one wake-up of the peer, rather than one per frame. */
#define SEND_GATHER_MAX 16
int send_batch_gather(struct call *c, const uint8_t *bytes, size_t len, int flags,
                      struct iovec *iov);
void send_batch_credit(struct call *c, size_t len, size_t sent, int n_iov);

/* call.c */
struct call *call_new(struct session *s, unsigned method, uint64_t id, ProtobufCMessage *request,
                      ProtobufCBinaryData *borrowed, size_t charged_bytes);
void call_charge(struct call *c, size_t bytes);
int call_keep_payload(struct call *c);
void call_reply(struct call *c, ProtobufCMessage *reply);
void call_reply_with_channel(struct call *c, Sockrpc__HelloReply *reply);
void call_reply_with_fd(struct call *c, ProtobufCMessage *reply, int fd);
void call_reply_spliced(struct call *c, ProtobufCMessage *reply, unsigned data_field, int pipe_rd,
                        size_t n);
void call_reply_buffer(struct call *c, ProtobufCMessage *reply, unsigned data_field,
                       struct evbuffer *data);
void call_fail(struct call *c, struct handle *h, int code, int err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void call_fail_errno(struct call *c, struct handle *h, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
bool call_finish(struct call *c);
void call_free(struct call *c);
struct call_target *call_target_new(struct call *c);
const char *call_method_name(const struct call *c);
bool call_may_wait(const struct call *c);
extern const Sockrpc__Status status_ok;

/* handle_ids.c: the ids and the table of a session's open handles */
struct handle *session_find_handle(struct session *s, int64_t id);
int session_add_handle(struct session *s, struct handle *h);
void session_remove_handle(struct session *s, struct handle *h);
struct failed_ids;
int handle_id_claim(struct session *s, int64_t id, char *why, size_t len);
void handle_id_failed(struct session *s, int64_t id, int code);
bool handle_id_used(const struct session *s, int64_t id);
int handle_id_failure(const struct session *s, int64_t id);
void handle_ids_free(struct session *s);

/* handle.c */
struct handle *handle_new(struct session *s, int fd, int family, int type, int protocol);
int handle_permits(struct handle *h, enum handle_op op, const char **why);
void handle_refresh(struct handle *h);
void handle_reset_connection(struct handle *h);
Sockrpc__SocketState *handle_state_message(const struct handle *h, Sockrpc__SocketState *out);
void handle_queue_call(struct handle *h, struct call *c, enum call_dir dir);
void handle_run_queue(struct handle *h, enum call_dir dir);
void handle_unqueue_call(struct call *c);
void handle_close(struct handle *h, const char *reason);
void handle_free(struct handle *h);

/* ops_*.c: the rpc handlers, collected into the service by ops_install(). */
void ops_install(struct sockrpcd *d);
struct handle *op_lookup_handle(struct call *c, int64_t id, enum handle_op op);
bool op_policy_allows(struct call *c, struct handle *h, struct policy_request *rq,
                      struct policy_decision *out);

/* address.c */
int address_parse(const char *host, int port, int family, struct sockaddr_storage *out,
                  socklen_t *out_len);
void address_format(const struct sockaddr *sa, socklen_t len, char *host, size_t host_len,
                    int *port);
const char *address_describe(const struct sockaddr *sa, socklen_t len, char *buf, size_t n);

/* resolve.c */
struct resolve_job;
struct resolve_uid;
/* eai_error is an EVUTIL_EAI_* or this: the lookup's deadline (DNS_JOB_TIMEOUT_MS) passed. */
#define RESOLVE_TIMED_OUT (-1999)
typedef void (*resolve_done_fn)(int eai_error, struct evutil_addrinfo *res, void *arg);
struct evdns_base *resolve_base_new(struct event_base *base, const char *resolv_conf,
                                    const char *hosts_file);
struct resolve_job *resolve_start(struct session *s, const char *name, const char *service,
                                  int family, int type, int flags, resolve_done_fn done, void *arg);
void resolve_cancel(struct resolve_job *job);
const char *resolve_strerror(int eai_error);

/* linger.c */
int linger_set_option(struct handle *h, int seconds);
void linger_close_fd(struct handle *h);
bool linger_wait_for_close(struct handle *h, struct call *c);
void linger_call_gone(struct call *c);
void linger_close_all(struct sockrpcd *d);

/* unix_path.c */
const char *unix_path_normalise(const char *path, char *out, size_t out_len);
int unix_path_open_dir(const char *path, const char **name);
int unix_path_open_file(int dirfd, const char *name);
socklen_t unix_path_fd_address(int fd, struct sockaddr_un *out);
int unix_path_bound_file(int sock, dev_t *dev, ino_t *ino);

/* as_client.c */
/* as_client_unix_connect/_sendmsg: the target is the daemon's own socket (not an errno). */
#define AS_CLIENT_OWN_SOCKET (-100000)
bool as_client_available(void);
int as_client_socket(const struct identity *who, int family, int type, int protocol, bool *owned);
int as_client_sockets(const struct identity *who, int family, int type, int protocol, int *fds,
                      int n, bool *owned);
int as_client_unix_connect(const struct identity *who, int fd, const char *path, dev_t own_dev,
                           ino_t own_ino);
ssize_t as_client_unix_sendmsg(const struct identity *who, int fd, const struct msghdr *msg,
                               int flags, dev_t own_dev, ino_t own_ino);
int as_client_unix_bind(const struct identity *who, int fd, const char *path,
                        struct unix_file *out);
int as_client_unix_listen(const struct identity *who, int fd, int backlog);
int as_client_unix_unlink(const struct identity *who, struct unix_file *f);

/* priv_parent.c: forks the worker; returns 0 in it (privileges dropped), -1 (logged) on
 * failure; the parent never returns. Takes listen_fd in the parent (closed there). */
struct passwd;
int priv_split(struct sockrpcd *d, const struct passwd *pw, int listen_fd);
/* limits.c: the limits in force, from the command line and the policy now in d. */
void daemon_apply_limits(struct sockrpcd *d);

/* priv_proxy.c: what needs privilege or the client's identity, asked of the parent when
 * split, done directly otherwise; as_client.c's semantics (fd/0/count or -errno). */
bool priv_unix_available(const struct sockrpcd *d);
int priv_ready(struct sockrpcd *d);
int priv_session_open(struct session *s);
void priv_session_close(struct session *s);
const char *priv_session_admit(struct session *s);
int priv_sockets(struct session *s, int family, int type, int protocol, int *fds, int n,
                 bool *owned);
int priv_bind(struct session *s, int fd, const struct sockaddr *sa, socklen_t len);
int priv_setsockopt(struct session *s, int fd, int option, int value);
int priv_unix_connect(struct session *s, int fd, const char *path);
ssize_t priv_unix_sendmsg(struct session *s, int fd, const struct msghdr *msg, int flags);
int priv_unix_bind(struct session *s, int fd, const char *path, struct unix_file *out);
int priv_unix_listen(struct session *s, int fd, int backlog);
int priv_unix_unlink(struct session *s, struct unix_file *f);
int priv_tls_sign_init(struct sockrpcd *d);
int priv_receive_notice(struct sockrpcd *d, struct policy **policy, int *audit_fd,
                        struct tls_pem *tls, bool *have_tls);

/* socket_reserve.c: a socket as the client, from the session's reserve for the common
 * kinds (its first `spare` sockets after this one at most are made ahead), else from the
 * parent; *protocol_out the protocol the kernel chose. Returns a new fd or -errno. */
int socket_reserve_take(struct session *s, int family, int type, int protocol, unsigned spare,
                        int *protocol_out, bool *owned);
void socket_reserve_drop(struct session *s);
void socket_reserve_flush_all(struct sockrpcd *d);
void socket_reserve_free(struct sockrpcd *d);

/* receive_splice.c */
int relay_pipe_open(struct relay_pipe *p);
void relay_pipe_close(struct relay_pipe *p);
bool receive_by_splice(struct call *c, struct handle *h, int64_t length, int flags);
void session_send_spliced_reply(struct session *s, unsigned method, uint64_t call_id,
                                const ProtobufCMessage *reply, unsigned data_field, int pipe_rd,
                                size_t n);

/* receive_in_place.c */
bool receive_in_place(struct call *c, struct handle *h, int64_t length, int flags);
void session_send_buffer_reply(struct session *s, unsigned method, uint64_t call_id,
                               const ProtobufCMessage *reply, unsigned data_field,
                               struct evbuffer *data);

/* log.c */
void log_init(void);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern int log_verbose;

#endif
