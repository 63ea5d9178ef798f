/*
 * priv_proxy.c - the worker's side of privilege separation: the acts that need privilege
 * or the client's identity, with the semantics of as_client.c (0, an fd or a count, or
 * -errno). Split (d->priv_fd >= 0), each is one synchronous request to the privileged
 * parent (priv.c), which only makes non-blocking system calls, so the wait is short.
 * In one process (--user root, or a daemon started without root) they act directly.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "priv.h"
#include "sockrpcd.h"

/* iovecs of one send passed on as they are (ops_io.c gathers at most 16). */
#define PRIV_GATHER_MAX 16

/* The parent is gone: nothing privileged can be done any more, so the worker ends. */
static void __attribute__((noreturn)) parent_gone(const char *why)
{
	log_error("the privileged parent is gone (%s): worker exiting", why);
	_exit(EXIT_FAILURE);
}

/*
 * Sends rq (with `payload`, and fd_out unless -1) and waits for the reply; the descriptors
 * that come with it land in fds_in (at most max_in: any beyond are closed), their number
 * in *n_in. Returns the reply's result.
 */
static int64_t
request_fds(struct sockrpcd *d, struct priv_req *rq, const struct iovec *payload, int n_payload,
            int fd_out, int *fds_in, int max_in, int *n_in, struct priv_reply *reply)
{
	struct iovec iov[1 + PRIV_GATHER_MAX];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(PRIV_REPLY_FDS_MAX * sizeof(int))];
	} ctl = {.buf = {0}}; /* padding included, as valgrind checks it */
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 1};
	struct cmsghdr *cm;
	ssize_t n;

	*n_in = 0;
	iov[0].iov_base = rq;
	iov[0].iov_len = sizeof(*rq);
	for (int i = 0; i < n_payload && i < PRIV_GATHER_MAX; i++)
		iov[msg.msg_iovlen++] = payload[i];
	if (fd_out >= 0) {
		msg.msg_control = ctl.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int));
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd_out, sizeof(int));
	}
	while ((n = sendmsg(d->priv_fd, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (n < 0)
		parent_gone(strerror(errno));
	if (rq->type == PRIV_SESSION_CLOSE)
		return 0;
	memset(&msg, 0, sizeof(msg));
	iov[0].iov_base = reply;
	iov[0].iov_len = sizeof(*reply);
	msg.msg_iov = iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof(ctl.buf);
	while ((n = recvmsg(d->priv_fd, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (n <= 0)
		parent_gone(n == 0 ? "end of file" : strerror(errno));
	if ((size_t)n != sizeof(*reply) || (msg.msg_flags & MSG_TRUNC) || reply->type != rq->type) {
		log_error("a malformed reply from the privileged parent: worker exiting");
		_exit(EXIT_FAILURE);
	}
	cm = CMSG_FIRSTHDR(&msg);
	if (cm != NULL && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
	    cm->cmsg_len >= CMSG_LEN(sizeof(int))) {
		int k = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));

		for (int i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + (size_t)i * sizeof(int), sizeof(int));
			if (*n_in < max_in)
				fds_in[(*n_in)++] = fd;
			else
				close(fd);
		}
	}
	/* Out of descriptors (RLIMIT_NOFILE), the kernel drops those that did not fit. */
	if ((msg.msg_flags & MSG_CTRUNC) && reply->result >= 0 && *n_in == 0)
		reply->result = -EMFILE;
	return reply->result;
}

/* request_fds() with at most one descriptor coming back, into *fd_in (NULL: none expected). */
static int64_t
request(struct sockrpcd *d, struct priv_req *rq, const struct iovec *payload, int n_payload,
        int fd_out, int *fd_in, struct priv_reply *reply)
{
	int fd = -1, n;
	int64_t r = request_fds(d, rq, payload, n_payload, fd_out, &fd, 1, &n, reply);

	if (fd_in != NULL)
		*fd_in = fd;
	else if (fd >= 0)
		close(fd);
	return r;
}

static void
init_req(struct priv_req *rq, enum priv_type type, const struct session *s)
{
	memset(rq, 0, sizeof(*rq));
	rq->type = type;
	rq->session = s != NULL ? s->id : 0;
}

static int
set_path(struct priv_req *rq, const char *path)
{
	if (strlen(path) >= sizeof(rq->path))
		return -ENAMETOOLONG;
	strcpy(rq->path, path);
	return 0;
}

bool
priv_unix_available(const struct sockrpcd *d)
{
	return d->priv_fd >= 0 || as_client_available();
}

int
priv_ready(struct sockrpcd *d)
{
	struct priv_req rq;
	struct priv_reply reply;

	if (d->priv_fd < 0)
		return 0;
	init_req(&rq, PRIV_READY, NULL);
	return (int)request(d, &rq, NULL, 0, -1, NULL, &reply);
}

/* The peer's certificate chain, DER, leaf first, into buf. Returns its length, or 0. */
static size_t
peer_chain_der(SSL *ssl, uint8_t *buf, size_t cap)
{
	STACK_OF(X509) *rest = SSL_get_peer_cert_chain(ssl); /* a server's lacks the leaf */
	X509 *leaf = SSL_get0_peer_certificate(ssl);
	size_t len = 0;

	for (int i = -1; leaf != NULL && (i < 0 || i < sk_X509_num(rest)); i++) {
		X509 *x = i < 0 ? leaf : sk_X509_value(rest, i);
		int n = i2d_X509(x, NULL);
		uint8_t *at = buf + len;

		if (i >= 0 && X509_cmp(x, leaf) == 0)
			continue;
		if (n <= 0 || (size_t)n > cap - len)
			return 0;
		len += (size_t)i2d_X509(x, &at);
	}
	return len;
}

static struct sockrpcd *sign_daemon; /* the worker's, for tls_keyless.c's callback */

/* Has the parent sign a handshake digest with the key the worker never sees. */
static int
tls_sign(const uint8_t *dgst, size_t len, const uint8_t which[32], uint8_t *sig, size_t *sig_len)
{
	struct priv_req rq;
	struct priv_reply reply;
	int64_t r;

	if (sign_daemon == NULL || len == 0 || len > 64)
		return -EINVAL;
	init_req(&rq, PRIV_TLS_SIGN, NULL);
	rq.a = (int32_t)len;
	memcpy(rq.path, dgst, len);
	memcpy(rq.path + 64, which, 32); /* the key: the worker's, or one before a reload */
	r = request(sign_daemon, &rq, NULL, 0, -1, NULL, &reply);
	if (r <= 0 || (size_t)r > sizeof(reply.name) || (size_t)r > *sig_len)
		return r < 0 ? (int)r : -EPROTO;
	memcpy(sig, reply.name, (size_t)r);
	*sig_len = (size_t)r;
	return 0;
}

/* Worker, split: handshakes sign through the parent from now on. */
int
priv_tls_sign_init(struct sockrpcd *d)
{
	if (d->priv_fd < 0)
		return 0;
	sign_daemon = d;
	tls_keyless_set_signer(tls_sign);
	return 0;
}

/* A TLS session: the parent verifies the certificate itself and answers its identity. */
static int
tls_session_open(struct session *s)
{
	static uint8_t der[PRIV_CERT_CHAIN_MAX];
	struct iovec iov = {der, 0};
	struct priv_req rq;
	struct priv_reply reply;
	int r;

	if ((iov.iov_len = peer_chain_der(transport_tls_ssl(s->t), der, sizeof(der))) == 0)
		return -EINVAL;
	init_req(&rq, PRIV_TLS_SESSION_OPEN, s);
	r = (int)request(s->d, &rq, &iov, 1, s->t->read_fd, NULL, &reply);
	if (r == 0 && reply.who.transport == IDENTITY_TLS &&
	    memcmp(reply.who.spki_sha256, s->peer.spki_sha256, sizeof(s->peer.spki_sha256)) == 0) {
		reply.who.peer_address[sizeof(reply.who.peer_address) - 1] = '\0';
		for (int i = 0; i < IDENTITY_MAX_PRINCIPALS; i++)
			reply.who.principals[i][IDENTITY_PRINCIPAL_MAX - 1] = '\0';
		if (reply.who.n_principals < 0 || reply.who.n_principals > IDENTITY_MAX_PRINCIPALS)
			reply.who.n_principals = 0;
		s->peer = reply.who;
	} else if (r == 0) {
		r = -EPROTO;
	}
	return r;
}

int
priv_session_open(struct session *s)
{
	struct priv_req rq;
	struct priv_reply reply;
	int r;

	if (s->d->priv_fd < 0)
		return 0;
	if (transport_is_tls(s->t))
		return tls_session_open(s);
	init_req(&rq, PRIV_SESSION_OPEN, s);
	/* The connection itself: the parent reads its peer from the kernel. */
	r = (int)request(s->d, &rq, NULL, 0, s->t->read_fd, NULL, &reply);
	if (r == 0 && reply.who.uid == s->peer.uid && reply.who.pid == s->peer.pid) {
		reply.who.exe[sizeof(reply.who.exe) - 1] = '\0';
		reply.who.cgroup[sizeof(reply.who.cgroup) - 1] = '\0';
		if (reply.who.n_groups < 0 || reply.who.n_groups > IDENTITY_MAX_GROUPS)
			reply.who.n_groups = 0;
		s->peer = reply.who;
	}
	return r;
}

/*
 * With several workers, the global session limits as the parent counts them over every
 * worker (one worker sees only its own). Returns why s must be refused, or NULL.
 */
const char *
priv_session_admit(struct session *s)
{
	struct priv_req rq;
	struct priv_reply reply;
	int64_t r;

	if (s->d->priv_fd < 0 || s->d->n_workers <= 1)
		return NULL;
	init_req(&rq, PRIV_SESSION_ADMIT, s);
	r = request(s->d, &rq, NULL, 0, -1, NULL, &reply);
	if (r == 0)
		return NULL;
	if (r == PRIV_REFUSED_OWNER)
		return s->peer.transport == IDENTITY_TLS ? "too many sessions for this principal"
		                                         : "too many sessions for this uid";
	if (r == PRIV_REFUSED_SESSIONS)
		return "too many sessions";
	return "the privileged parent refused the session";
}

void
priv_session_close(struct session *s)
{
	struct priv_req rq;

	if (s->d->priv_fd < 0)
		return;
	init_req(&rq, PRIV_SESSION_CLOSE, s);
	request(s->d, &rq, NULL, 0, -1, NULL, NULL);
}

/*
 * Creates up to n (1..PRIV_SOCKET_BATCH_MAX) sockets of one kind as the client, into fds
 * (new, the caller's): split, one request to the parent for all of them. Returns how many
 * it made (at least one; fewer than n when the parent or the worker ran short of
 * descriptors), or -errno.
 */
int
priv_sockets(struct session *s, int family, int type, int protocol, int *fds, int n, bool *owned)
{
	struct priv_req rq;
	struct priv_reply reply;
	int got, r;

	if (s->d->priv_fd < 0)
		return as_client_sockets(&s->peer, family, type | SOCK_NONBLOCK | SOCK_CLOEXEC,
		                         protocol, fds, n, owned);
	init_req(&rq, PRIV_SOCKET, s);
	rq.a = family;
	rq.b = type;
	rq.c = protocol;
	rq.value = n;
	r = (int)request_fds(s->d, &rq, NULL, 0, -1, fds, n, &got, &reply);
	if (r > 0 && got == 0)
		r = -EPROTO;
	if (r <= 0) {
		for (int i = 0; i < got; i++)
			close(fds[i]);
		return r < 0 ? r : -EPROTO;
	}
	*owned = reply.owned != 0;
	return got;
}

/* An IP bind: made here, unless the kernel wants privilege for it (a port below 1024). */
int
priv_bind(struct session *s, int fd, const struct sockaddr *sa, socklen_t len)
{
	struct priv_req rq;
	struct priv_reply reply;

	if (bind(fd, sa, len) == 0)
		return 0;
	if (errno != EACCES || s->d->priv_fd < 0 || len > sizeof(rq.addr))
		return -errno;
	init_req(&rq, PRIV_BIND, s);
	memcpy(&rq.addr, sa, len);
	rq.addr_len = len;
	return (int)request(s->d, &rq, NULL, 0, fd, NULL, &reply);
}

/* A SOL_SOCKET option: set here, unless it is one that needs privilege (policy_match.c). */
int
priv_setsockopt(struct session *s, int fd, int option, int value)
{
	struct priv_req rq;
	struct priv_reply reply;

	if (setsockopt(fd, SOL_SOCKET, option, &value, sizeof(value)) == 0)
		return 0;
	if ((errno != EPERM && errno != EACCES) || s->d->priv_fd < 0 ||
	    policy_option_privilege(option, value) == NULL)
		return -errno;
	init_req(&rq, PRIV_SETSOCKOPT, s);
	rq.a = option;
	rq.value = value;
	return (int)request(s->d, &rq, NULL, 0, fd, NULL, &reply);
}

int
priv_unix_connect(struct session *s, int fd, const char *path)
{
	struct priv_req rq;
	struct priv_reply reply;
	int r;

	if (s->d->priv_fd < 0)
		return as_client_unix_connect(&s->peer, fd, path, s->d->socket_dev,
		                              s->d->socket_ino);
	init_req(&rq, PRIV_UNIX_CONNECT, s);
	if ((r = set_path(&rq, path)) != 0)
		return r;
	return (int)request(s->d, &rq, NULL, 0, fd, NULL, &reply);
}

/*
 * Sends msg on an AF_UNIX socket as the client: to msg_name's path, or (split only, where
 * the client's credentials must go with the bytes) on its connection. At most
 * PRIV_PAYLOAD_MAX bytes go at once: a stream sends the rest later, a larger datagram
 * fails with -EMSGSIZE.
 */
ssize_t
priv_unix_sendmsg(struct session *s, int fd, const struct msghdr *msg, int flags)
{
	const struct sockaddr_un *to = msg->msg_name;
	struct iovec iov[PRIV_GATHER_MAX];
	struct priv_req rq;
	struct priv_reply reply;
	size_t total = 0;
	int n = 0, r, type;
	socklen_t len = sizeof(type);

	if (s->d->priv_fd < 0)
		return as_client_unix_sendmsg(&s->peer, fd, msg, flags, s->d->socket_dev,
		                              s->d->socket_ino);
	init_req(&rq, PRIV_UNIX_SEND, s);
	if (to != NULL && (r = set_path(&rq, to->sun_path)) != 0)
		return r;
	rq.a = flags & ~(MSG_DONTWAIT | MSG_NOSIGNAL);
	for (size_t i = 0; i < msg->msg_iovlen; i++) {
		size_t room = PRIV_PAYLOAD_MAX - total;

		if (room == 0 || n == PRIV_GATHER_MAX || msg->msg_iov[i].iov_len > room) {
			/* Not all of it fits: a stream sends the rest later; a datagram cannot. */
			if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
			    type != SOCK_STREAM)
				return -EMSGSIZE;
			if (room == 0 || n == PRIV_GATHER_MAX)
				break;
		}
		iov[n] = msg->msg_iov[i];
		if (iov[n].iov_len > room)
			iov[n].iov_len = room;
		total += iov[n++].iov_len;
	}
	return (ssize_t)request(s->d, &rq, iov, n, fd, NULL, &reply);
}

int
priv_unix_bind(struct session *s, int fd, const char *path, struct unix_file *out)
{
	struct priv_req rq;
	struct priv_reply reply;
	int dirfd = -1, r;

	if (s->d->priv_fd < 0)
		return as_client_unix_bind(&s->peer, fd, path, out);
	init_req(&rq, PRIV_UNIX_BIND, s);
	if ((r = set_path(&rq, path)) != 0)
		return r;
	r = (int)request(s->d, &rq, NULL, 0, fd, &dirfd, &reply);
	if (r == 0 && dirfd < 0)
		r = -EPROTO;
	if (r != 0) {
		if (dirfd >= 0)
			close(dirfd);
		return r;
	}
	out->dirfd = dirfd;
	out->dev = (dev_t)reply.dev;
	out->ino = (ino_t)reply.ino;
	reply.name[sizeof(reply.name) - 1] = '\0';
	snprintf(out->name, sizeof(out->name), "%s", reply.name);
	return 0;
}

int
priv_unix_listen(struct session *s, int fd, int backlog)
{
	struct priv_req rq;
	struct priv_reply reply;

	if (s->d->priv_fd < 0)
		return as_client_unix_listen(&s->peer, fd, backlog);
	init_req(&rq, PRIV_UNIX_LISTEN, s);
	rq.a = backlog;
	return (int)request(s->d, &rq, NULL, 0, fd, NULL, &reply);
}

/* As as_client_unix_unlink: closes f->dirfd. */
int
priv_unix_unlink(struct session *s, struct unix_file *f)
{
	struct priv_req rq;
	struct priv_reply reply;
	int r;

	if (s->d->priv_fd < 0 || f->dirfd < 0)
		return as_client_unix_unlink(&s->peer, f);
	init_req(&rq, PRIV_UNIX_UNLINK, s);
	rq.dev = f->dev;
	rq.ino = f->ino;
	snprintf(rq.path, sizeof(rq.path), "%s", f->name);
	r = (int)request(s->d, &rq, NULL, 0, f->dirfd, NULL, &reply);
	close(f->dirfd);
	f->dirfd = -1;
	return r;
}

/*
 * Reads the parent's next notice: a new policy in *policy (new; free with policy_free), or
 * NULL there (none, or one that does not parse: logged); the TLS credentials read with it
 * in *tls (*have_tls; free with tls_pem_clear); the reopened audit log in *audit_fd, or -1.
 * Returns 0, or -EPIPE when the parent is gone.
 */
int
priv_receive_notice(struct sockrpcd *d, struct policy **policy, int *audit_fd, struct tls_pem *tls,
                    bool *have_tls)
{
	struct priv_req rq;
	struct iovec iov = {&rq, sizeof(rq)};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(3 * sizeof(int))];
	} ctl = {.buf = {0}}; /* padding included, as valgrind checks it */
	struct msghdr msg = {.msg_iov = &iov,
	                     .msg_iovlen = 1,
	                     .msg_control = ctl.buf,
	                     .msg_controllen = sizeof(ctl.buf)};
	struct cmsghdr *cm;
	char errors[4096];
	int fds[3] = {-1, -1, -1}, n_fds = 0, text_fd;
	ssize_t n;
	FILE *f;

	*policy = NULL;
	*audit_fd = -1;
	*have_tls = false;
	n = recvmsg(d->priv_notify_fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0)
		return -EPIPE;
	cm = CMSG_FIRSTHDR(&msg);
	if (cm != NULL && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
		n_fds = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		if (n_fds > 3)
			n_fds = 3;
		memcpy(fds, CMSG_DATA(cm), (size_t)n_fds * sizeof(int));
	}
	if ((size_t)n != sizeof(rq) || rq.type != PRIV_NOTICE ||
	    n_fds != (rq.b && d->opt.policy_path != NULL) + (rq.value != 0) + (rq.c != 0) ||
	    (rq.value != 0 && !rq.b)) {
		for (int i = 0; i < n_fds; i++)
			close(fds[i]);
		log_error("a malformed notice from the privileged parent");
		return 0;
	}
	if (rq.c)
		*audit_fd = fds[n_fds - 1];
	if (rq.value != 0) {
		/* The policy's memfd (when there is a file) comes first, then the credentials. */
		if (tls_pem_from_fd(fds[d->opt.policy_path != NULL], tls) == 0)
			*have_tls = true;
		else
			log_error("cannot read the TLS credentials the privileged parent sent");
	}
	if (!rq.b)
		return 0;
	if (d->opt.policy_path == NULL) {
		*policy = policy_default((uid_t)rq.a);
		return 0;
	}
	text_fd = fds[0];
	if ((f = fdopen(text_fd, "r")) == NULL) {
		close(text_fd);
		log_error("cannot read the policy the privileged parent sent: %s", strerror(errno));
		return 0;
	}
	*policy = policy_load_stream(f, d->opt.policy_path, errors, sizeof(errors));
	fclose(f);
	if (*policy == NULL)
		log_error("the policy the privileged parent sent does not parse:\n%s", errors);
	return 0;
}
