/*
 * priv.c - the privileged parent's requests (priv.h): validation, the sessions it knows,
 * and the few acts that need privilege, each re-checked against the policy with the
 * identity the parent read from the kernel itself. Nothing the worker says is trusted:
 * not its sizes, types, descriptors, session ids, nor its idea of the policy's answer.
 *
 * Every act here is a non-blocking system call (sockets are non-blocking, connects to
 * AF_UNIX paths answer at once, file lookups are local), so the worker's synchronous
 * wait for a reply never stalls its loop for long.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "identity.h"
#include "priv.h"
#include "sockrpcd.h"

struct priv_parent {
	const struct policy *policy; /* borrowed */
	dev_t own_dev;
	ino_t own_ino;
	char listen_path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* the daemon's socket */
	struct priv_session_table *sessions; /* every worker's (priv_sessions.c) */
	int worker;                          /* whose message is being served */
	const struct daemon_limits *limits;  /* borrowed; NULL: none */
	X509_STORE *tls_ca;                  /* owned; NULL: no TLS sessions */
	EVP_PKEY *tls_key;                   /* owned; NULL: the worker holds the key (not EC) */
	EVP_PKEY *tls_key_before; /* owned: the one before the last reload, for handshakes
	                           * begun before it; NULL: none */
	struct sockaddr_storage tls_listeners[TLS_MAX_LISTENERS];
	int n_tls_listeners;
};

/* Descriptors each request type carries: exactly these many, or it is refused. */
static const int fds_wanted[PRIV_TYPE_END] = {
    [PRIV_READY] = 0,
    [PRIV_SESSION_OPEN] = 1,
    [PRIV_SESSION_CLOSE] = 0,
    [PRIV_SOCKET] = 0,
    [PRIV_BIND] = 1,
    [PRIV_SETSOCKOPT] = 1,
    [PRIV_UNIX_CONNECT] = 1,
    [PRIV_UNIX_BIND] = 1,
    [PRIV_UNIX_LISTEN] = 1,
    [PRIV_UNIX_SEND] = 1,
    [PRIV_UNIX_UNLINK] = 1,
    [PRIV_NOTICE] = -1, /* never a request */
    [PRIV_TLS_SESSION_OPEN] = 1,
    [PRIV_TLS_SIGN] = 0,
    [PRIV_SESSION_ADMIT] = 0,
};

/* Flags a send may carry; the parent adds MSG_DONTWAIT and MSG_NOSIGNAL itself. */
#define SEND_FLAGS_ALLOWED (MSG_OOB | MSG_DONTROUTE | MSG_EOR | MSG_MORE)

struct priv_parent *
priv_parent_new(const struct policy *policy, dev_t own_dev, ino_t own_ino, const char *listen_path)
{
	struct priv_parent *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	snprintf(p->listen_path, sizeof(p->listen_path), "%s", listen_path);
	p->policy = policy;
	p->own_dev = own_dev;
	p->own_ino = own_ino;
	if ((p->sessions = priv_sessions_new()) == NULL) {
		free(p);
		return NULL;
	}
	return p;
}

void
priv_parent_free(struct priv_parent *p)
{
	if (p == NULL)
		return;
	priv_sessions_free(p->sessions);
	X509_STORE_free(p->tls_ca);
	EVP_PKEY_free(p->tls_key);
	EVP_PKEY_free(p->tls_key_before);
	free(p);
}

void
priv_parent_set_tls_key(struct priv_parent *p, EVP_PKEY *key)
{
	EVP_PKEY_free(p->tls_key_before);
	p->tls_key_before = p->tls_key;
	p->tls_key = key;
}

void
priv_parent_set_tls(struct priv_parent *p, X509_STORE *ca, const struct sockaddr_storage *listeners,
                    int n)
{
	X509_STORE_free(p->tls_ca);
	p->tls_ca = ca;
	p->n_tls_listeners = n < TLS_MAX_LISTENERS ? n : TLS_MAX_LISTENERS;
	memcpy(p->tls_listeners, listeners, (size_t)p->n_tls_listeners * sizeof(*listeners));
}

void
priv_parent_set_policy(struct priv_parent *p, const struct policy *policy)
{
	p->policy = policy;
}

void
priv_parent_set_limits(struct priv_parent *p, const struct daemon_limits *limits)
{
	p->limits = limits;
}

void
priv_parent_set_worker(struct priv_parent *p, int worker)
{
	p->worker = worker;
}

void
priv_parent_forget_worker(struct priv_parent *p, int worker)
{
	priv_sessions_forget_worker(p->sessions, worker);
}

/* The session `id` of the worker being served: another worker's is not found. */
static struct priv_session *
find_session(struct priv_parent *p, uint64_t id)
{
	return priv_sessions_find(p->sessions, p->worker, id);
}

/* The kernel's word on what fd is: its family and type. -errno if not a socket. */
static int
socket_kind(int fd, int *family, int *type)
{
	socklen_t len = sizeof(int);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, family, &len) != 0)
		return -errno;
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, type, &len) != 0)
		return -errno;
	return 0;
}

/* Asks the policy, as the session's client; logs a refusal. */
static bool
allowed(struct priv_parent *p, struct priv_session *s, struct policy_request *rq)
{
	struct policy_decision d;

	rq->who = &s->who;
	policy_decide(p->policy, rq, &d);
	if (!d.allow)
		log_warn("privileged parent: refused %s for session %llu (uid %u): %s",
		         policy_op_name(rq->op), (unsigned long long)s->id, (unsigned)s->who.uid,
		         d.reason);
	return d.allow;
}

/* The request's path, normalised again here (the worker's normalisation is not
 * trusted) into a sockaddr_un for the policy. Returns 0 or -EINVAL. */
static int
request_path(const struct priv_req *rq, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (memchr(rq->path, '\0', sizeof(rq->path)) == NULL)
		return -EINVAL;
	if (unix_path_normalise(rq->path, sun->sun_path, sizeof(sun->sun_path)) != NULL)
		return -EINVAL;
	return 0;
}

/* Creates rq->value sockets (0: one) of one kind as the client: one policy check for the
 * batch, which refills the worker's reserve of this session (socket_reserve.c). */
static int64_t
serve_socket(struct priv_parent *p, struct priv_session *s, const struct priv_req *rq,
             struct priv_reply *reply, int *reply_fds, int *n_reply_fds)
{
	struct policy_request pr = {.op = POLICY_CREATE, .family = rq->a, .type = rq->b};
	bool owned;
	int n;

	if (rq->b & (SOCK_NONBLOCK | SOCK_CLOEXEC))
		return -EINVAL;
	if (rq->value < 0 || rq->value > PRIV_SOCKET_BATCH_MAX)
		return -EINVAL;
	/* What the policy language can name, and nothing else whatever a rule says (no
	 * AF_PACKET, AF_NETLINK or SOCK_PACKET from a root process). */
	if (rq->a != AF_UNIX && rq->a != AF_INET && rq->a != AF_INET6)
		return -EAFNOSUPPORT;
	if (rq->b != SOCK_STREAM && rq->b != SOCK_DGRAM && rq->b != SOCK_RAW &&
	    rq->b != SOCK_SEQPACKET)
		return -ESOCKTNOSUPPORT;
	if (!allowed(p, s, &pr))
		return -EACCES;
	n = as_client_sockets(&s->who, rq->a, rq->b | SOCK_NONBLOCK | SOCK_CLOEXEC, rq->c,
	                      reply_fds, rq->value > 0 ? (int)rq->value : 1, &owned);
	if (n < 0)
		return n;
	*n_reply_fds = n;
	reply->owned = owned;
	return n;
}

static int64_t
serve_bind(struct priv_parent *p, struct priv_session *s, const struct priv_req *rq, int fd)
{
	struct policy_request pr = {.op = POLICY_BIND};
	struct sockaddr_storage ss = rq->addr;
	int family, type, r;

	if ((r = socket_kind(fd, &family, &type)) != 0)
		return r;
	if ((family != AF_INET && family != AF_INET6) || ss.ss_family != family ||
	    rq->addr_len > sizeof(ss) ||
	    rq->addr_len !=
	        (family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)))
		return -EINVAL;
	pr.family = family;
	pr.type = type;
	pr.addr = (struct sockaddr *)&ss;
	pr.addr_len = rq->addr_len;
	if (!allowed(p, s, &pr))
		return -EACCES;
	return bind(fd, (struct sockaddr *)&ss, rq->addr_len) == 0 ? 0 : -errno;
}

static int64_t
serve_setsockopt(struct priv_parent *p, struct priv_session *s, const struct priv_req *rq, int fd)
{
	struct policy_request pr = {.op = POLICY_OPTION, .option = rq->a};
	int family, type, value, r;

	if ((r = socket_kind(fd, &family, &type)) != 0)
		return r;
	if (rq->value < -1 || rq->value > INT32_MAX)
		return -EINVAL;
	/* Only what needs privilege: the worker sets the rest itself. */
	if (policy_option_privilege(rq->a, rq->value) == NULL)
		return -EPERM;
	pr.family = family;
	pr.type = type;
	pr.option_value = rq->value;
	if (!allowed(p, s, &pr))
		return -EACCES;
	value = (int)rq->value;
	return setsockopt(fd, SOL_SOCKET, rq->a, &value, sizeof(value)) == 0 ? 0 : -errno;
}

/* The AF_UNIX acts: fd must be an AF_UNIX socket (the kernel says), the path is checked
 * by the policy for `op` (connect, bind, send) before anything is done as the client. */
static int
unix_check(struct priv_parent *p, struct priv_session *s, const struct priv_req *rq, int fd,
           enum policy_op op, struct sockaddr_un *sun)
{
	struct policy_request pr = {.op = op};
	int family, type, r;

	if ((r = socket_kind(fd, &family, &type)) != 0)
		return r;
	if (family != AF_UNIX)
		return -EINVAL;
	if ((r = request_path(rq, sun)) != 0)
		return r;
	pr.family = family;
	pr.type = type;
	pr.addr = (struct sockaddr *)sun;
	pr.addr_len = sizeof(*sun);
	if (!allowed(p, s, &pr))
		return -EACCES;
	return 0;
}

static int64_t
serve_unix_listen(struct priv_parent *p, struct priv_session *s, const struct priv_req *rq, int fd)
{
	struct policy_request pr = {.op = POLICY_LISTEN};
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int family, type, r;

	if ((r = socket_kind(fd, &family, &type)) != 0)
		return r;
	if (family != AF_UNIX || rq->a < 0 || rq->a > SOMAXCONN)
		return -EINVAL;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return -errno;
	pr.family = family;
	pr.type = type;
	pr.addr = (struct sockaddr *)&ss;
	pr.addr_len = len;
	if (!allowed(p, s, &pr))
		return -EACCES;
	return as_client_unix_listen(&s->who, fd, rq->a);
}

/* A send on an AF_UNIX socket, as the client: to a path (checked as POLICY_SEND), or on
 * its connection; either way the client's credentials go with the bytes. */
static int64_t
serve_unix_send(struct priv_parent *p, struct priv_session *s, const struct priv_req *rq, int fd,
                const uint8_t *payload, size_t n)
{
	struct sockaddr_un sun;
	struct ucred uc = {.pid = getpid(), .uid = s->who.uid, .gid = s->who.gid};
	struct iovec iov = {(void *)payload, n};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct ucred))];
	} creds = {.buf = {0}};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *cm;
	int flags = rq->a, family, type, r;
	ssize_t sent;

	if (flags & ~SEND_FLAGS_ALLOWED)
		return -EINVAL;
	flags |= MSG_DONTWAIT | MSG_NOSIGNAL;
	msg.msg_control = creds.buf;
	msg.msg_controllen = sizeof(creds.buf);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_CREDENTIALS;
	cm->cmsg_len = CMSG_LEN(sizeof(uc));
	memcpy(CMSG_DATA(cm), &uc, sizeof(uc));
	if (rq->path[0] == '\0') {
		/* On its connection, which the parent made and the policy checked then. */
		if ((r = socket_kind(fd, &family, &type)) != 0)
			return r;
		if (family != AF_UNIX)
			return -EINVAL;
		sent = sendmsg(fd, &msg, flags);
		return sent < 0 ? -errno : sent;
	}
	if ((r = unix_check(p, s, rq, fd, POLICY_SEND, &sun)) != 0)
		return r;
	msg.msg_name = &sun;
	msg.msg_namelen = sizeof(sun);
	return as_client_unix_sendmsg(&s->who, fd, &msg, flags, p->own_dev, p->own_ino);
}

static int64_t
serve_unix_bind(struct priv_parent *p, struct priv_session *s, const struct priv_req *rq, int fd,
                struct priv_reply *reply, int *reply_fd)
{
	struct sockaddr_un sun;
	struct unix_file f = {.dirfd = -1};
	int r;

	if ((r = unix_check(p, s, rq, fd, POLICY_BIND, &sun)) != 0)
		return r;
	if ((r = as_client_unix_bind(&s->who, fd, sun.sun_path, &f)) != 0)
		return r;
	*reply_fd = f.dirfd;
	reply->dev = f.dev;
	reply->ino = f.ino;
	memcpy(reply->name, f.name, sizeof(reply->name));
	return 0;
}

/* Removes a file a bind made, as the client: the client's own rights decide, so the
 * worker can ask no more than the client could do itself. */
static int64_t
serve_unix_unlink(struct priv_session *s, const struct priv_req *rq, int dirfd)
{
	struct unix_file f = {.dirfd = dirfd, .dev = rq->dev, .ino = rq->ino};
	struct stat st;

	if (memchr(rq->path, '\0', sizeof(rq->path)) == NULL || rq->path[0] == '\0' ||
	    strchr(rq->path, '/') != NULL || strcmp(rq->path, ".") == 0 ||
	    strcmp(rq->path, "..") == 0 || fstat(dirfd, &st) != 0 || !S_ISDIR(st.st_mode)) {
		close(dirfd);
		return -EINVAL;
	}
	memcpy(f.name, rq->path, sizeof(f.name));
	return as_client_unix_unlink(&s->who, &f); /* closes the dirfd */
}

static int64_t
serve_session_open(struct priv_parent *p, uint64_t id, int fd, struct priv_reply *reply)
{
	struct priv_session *s;
	struct sockaddr_un local;
	socklen_t len = sizeof(local);
	int family, type, r;

	memset(&local, 0, sizeof(local));
	if (id == 0 || find_session(p, id) != NULL)
		return -EEXIST;
	if ((r = socket_kind(fd, &family, &type)) != 0)
		return r;
	if (family != AF_UNIX || type != SOCK_STREAM)
		return -EINVAL;
	/* Accepted on the daemon's listener, so its peer is a client: a connection the worker
	 * made itself to some root service must not lend that service's identity. */
	if (getsockname(fd, (struct sockaddr *)&local, &len) != 0 || len <= sizeof(sa_family_t) ||
	    local.sun_path[0] == '\0' || p->listen_path[0] == '\0' ||
	    strncmp(local.sun_path, p->listen_path, sizeof(local.sun_path)) != 0)
		return -EINVAL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -ENOMEM;
	if ((r = priv_sessions_may_open(p->sessions, p->worker, fd, p->limits, s)) != 0 ||
	    (r = identity_from_socket(fd, &s->who)) != 0) {
		free(s);
		return r;
	}
	s->id = id;
	s->worker = p->worker;
	reply->who = s->who;
	priv_sessions_insert(p->sessions, s);
	return 0;
}

/* Whether local (a connection's own address) is one of the TLS listeners'. A listener on
 * a wildcard address matches any local address of its family and port. */
static bool
on_tls_listener(const struct priv_parent *p, const struct sockaddr_storage *local)
{
	for (int i = 0; i < p->n_tls_listeners; i++) {
		const struct sockaddr_storage *l = &p->tls_listeners[i];

		if (l->ss_family != local->ss_family)
			continue;
		if (l->ss_family == AF_INET) {
			const struct sockaddr_in *a = (const void *)l, *b = (const void *)local;

			if (a->sin_port == b->sin_port &&
			    (a->sin_addr.s_addr == INADDR_ANY ||
			     a->sin_addr.s_addr == b->sin_addr.s_addr))
				return true;
		} else if (l->ss_family == AF_INET6) {
			const struct sockaddr_in6 *a = (const void *)l, *b = (const void *)local;

			if (a->sin6_port == b->sin6_port &&
			    (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr) ||
			     IN6_ARE_ADDR_EQUAL(&a->sin6_addr, &b->sin6_addr)))
				return true;
		}
	}
	return false;
}

/*
 * A TLS session: the connection must have been accepted on a TLS listener, and the parent
 * verifies the certificate chain the worker passes against the CA itself and reads the
 * identity from it. (The parent cannot see the handshake: a compromised worker could
 * replay a certificate it has seen, but not forge one the CA did not sign.) The OS sees
 * TLS_PEER_UID act for it.
 */
static int64_t
serve_tls_session_open(struct priv_parent *p, uint64_t id, int fd, const uint8_t *der, size_t len,
                       struct priv_reply *reply)
{
	struct sockaddr_storage local, peer;
	socklen_t local_len = sizeof(local), peer_len = sizeof(peer);
	STACK_OF(X509) *chain = NULL;
	X509_STORE_CTX *vctx = NULL;
	X509 *leaf = NULL;
	struct priv_session *s = NULL;
	int family, type, r;
	int64_t result = -EPERM;

	if (id == 0 || find_session(p, id) != NULL)
		return -EEXIST;
	if (p->tls_ca == NULL)
		return -EPERM;
	if ((r = socket_kind(fd, &family, &type)) != 0)
		return r;
	if ((family != AF_INET && family != AF_INET6) || type != SOCK_STREAM ||
	    getsockname(fd, (struct sockaddr *)&local, &local_len) != 0 ||
	    getpeername(fd, (struct sockaddr *)&peer, &peer_len) != 0 ||
	    !on_tls_listener(p, &local))
		return -EINVAL;
	if ((chain = sk_X509_new_null()) == NULL || (s = calloc(1, sizeof(*s))) == NULL) {
		result = -ENOMEM;
		goto done;
	}
	if ((r = priv_sessions_may_open(p->sessions, p->worker, fd, p->limits, s)) != 0) {
		result = r;
		goto done;
	}
	while (len > 0) {
		const unsigned char *at = der;
		X509 *x = d2i_X509(NULL, &at, (long)len);

		if (x == NULL || sk_X509_num(chain) > TLS_VERIFY_DEPTH || !sk_X509_push(chain, x)) {
			X509_free(x);
			result = -EINVAL;
			goto done;
		}
		len -= (size_t)(at - der);
		der = at;
	}
	if ((leaf = sk_X509_shift(chain)) == NULL || (vctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(vctx, p->tls_ca, leaf, chain) != 1 ||
	    X509_STORE_CTX_set_purpose(vctx, X509_PURPOSE_SSL_CLIENT) != 1)
		goto done;
	if (X509_verify_cert(vctx) != 1) {
		log_warn("privileged parent: TLS session %llu: certificate: %s",
		         (unsigned long long)id,
		         X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx)));
		goto done;
	}
	s->who.uid = s->who.gid = TLS_PEER_UID;
	if (tls_identity_from_cert(leaf, &s->who) != 0)
		goto done;
	tls_identity_set_address(&s->who, (struct sockaddr *)&peer, peer_len);
	s->id = id;
	s->worker = p->worker;
	reply->who = s->who;
	priv_sessions_insert(p->sessions, s);
	s = NULL;
	result = 0;
done:
	free(s);
	X509_STORE_CTX_free(vctx);
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	return result;
}

static const char *const type_names[PRIV_TYPE_END] = {
    [PRIV_READY] = "ready",
    [PRIV_SESSION_OPEN] = "session-open",
    [PRIV_SESSION_CLOSE] = "session-close",
    [PRIV_SOCKET] = "socket",
    [PRIV_BIND] = "bind",
    [PRIV_SETSOCKOPT] = "setsockopt",
    [PRIV_UNIX_CONNECT] = "unix-connect",
    [PRIV_UNIX_BIND] = "unix-bind",
    [PRIV_UNIX_LISTEN] = "unix-listen",
    [PRIV_UNIX_SEND] = "unix-send",
    [PRIV_UNIX_UNLINK] = "unix-unlink",
    [PRIV_NOTICE] = "notice",
    [PRIV_TLS_SESSION_OPEN] = "tls-session-open",
    [PRIV_TLS_SIGN] = "tls-sign",
    [PRIV_SESSION_ADMIT] = "session-admit",
};

/* Checks the envelope: size, type, descriptors. Returns 0 or -errno (logged). */
static int
validate(const void *buf, size_t len, int n_fds, struct priv_req *rq)
{
	uint32_t type;

	if (len < sizeof(uint32_t)) {
		log_warn("privileged parent: refused a %zu-byte message", len);
		return -EINVAL;
	}
	memcpy(&type, buf, sizeof(type));
	if (type == 0 || type >= PRIV_TYPE_END || fds_wanted[type] < 0) {
		log_warn("privileged parent: refused a message of unknown type %u", type);
		return -EINVAL;
	}
	if (len < sizeof(*rq) ||
	    (type == PRIV_UNIX_SEND          ? len - sizeof(*rq) > PRIV_PAYLOAD_MAX
	     : type == PRIV_TLS_SESSION_OPEN ? len - sizeof(*rq) > PRIV_CERT_CHAIN_MAX
	                                     : len != sizeof(*rq))) {
		log_warn("privileged parent: refused a %s request of %zu bytes", type_names[type],
		         len);
		return -EINVAL;
	}
	if (n_fds != fds_wanted[type]) {
		log_warn("privileged parent: refused a %s request with %d descriptors (%d belong)",
		         type_names[type], n_fds, fds_wanted[type]);
		return -EINVAL;
	}
	memcpy(rq, buf, sizeof(*rq));
	return 0;
}

bool
priv_parent_serve(struct priv_parent *p, const void *buf, size_t len, int *fds, int n_fds,
                  struct priv_reply *reply, int *reply_fds, int *n_reply_fds)
{
	struct priv_req rq;
	struct priv_session *s = NULL;
	int fd = n_fds > 0 ? fds[0] : -1;
	int64_t r;

	memset(reply, 0, sizeof(*reply));
	memset(&rq, 0, sizeof(rq));
	*n_reply_fds = 0;
	if ((r = validate(buf, len, n_fds, &rq)) != 0)
		goto out;
	reply->type = rq.type;
	if (rq.type == PRIV_SESSION_CLOSE) {
		/* Never answered, so the worker need not wait; an unknown id is only logged. */
		if ((s = find_session(p, rq.session)) != NULL) {
			priv_sessions_remove(p->sessions, s);
		} else {
			log_warn(
			    "privileged parent: refused to close session %llu, which is not open",
			    (unsigned long long)rq.session);
		}
		return false;
	}
	if (rq.type == PRIV_READY) {
		r = 0;
		goto out;
	}
	if (rq.type == PRIV_SESSION_OPEN) {
		r = serve_session_open(p, rq.session, fd, reply);
		if (r != 0)
			log_warn("privileged parent: session %llu not opened: %s",
			         (unsigned long long)rq.session, strerror((int)-r));
		goto out;
	}
	if (rq.type == PRIV_TLS_SIGN) {
		/* No session yet: handshakes sign before there is one. */
		const uint8_t *which = (const uint8_t *)rq.path + 64;
		EVP_PKEY *key = tls_key_is(p->tls_key, which)          ? p->tls_key
		                : tls_key_is(p->tls_key_before, which) ? p->tls_key_before
		                                                       : NULL;
		size_t sig_len = sizeof(reply->name);

		if (key == NULL || rq.a <= 0 || rq.a > 64) {
			r = -EINVAL;
		} else if ((r = tls_sign_digest(key, (const uint8_t *)rq.path, (size_t)rq.a,
		                                (uint8_t *)reply->name, &sig_len)) == 0) {
			r = (int64_t)sig_len;
		}
		goto out;
	}
	if (rq.type == PRIV_TLS_SESSION_OPEN) {
		r = serve_tls_session_open(p, rq.session, fd, (const uint8_t *)buf + sizeof(rq),
		                           len - sizeof(rq), reply);
		if (r != 0)
			log_warn("privileged parent: TLS session %llu not opened: %s",
			         (unsigned long long)rq.session, strerror((int)-r));
		goto out;
	}
	if ((s = find_session(p, rq.session)) == NULL) {
		log_warn("privileged parent: refused a %s request for session %llu, which is not "
		         "open",
		         type_names[rq.type], (unsigned long long)rq.session);
		r = -EPERM;
		goto out;
	}
	switch (rq.type) {
	case PRIV_SESSION_ADMIT:
		r = priv_sessions_admit(p->sessions, s, p->limits);
		break;
	case PRIV_SOCKET:
		r = serve_socket(p, s, &rq, reply, reply_fds, n_reply_fds);
		break;
	case PRIV_BIND:
		r = serve_bind(p, s, &rq, fd);
		break;
	case PRIV_SETSOCKOPT:
		r = serve_setsockopt(p, s, &rq, fd);
		break;
	case PRIV_UNIX_CONNECT: {
		struct sockaddr_un sun;

		r = unix_check(p, s, &rq, fd, POLICY_CONNECT, &sun);
		if (r == 0)
			r = as_client_unix_connect(&s->who, fd, sun.sun_path, p->own_dev,
			                           p->own_ino);
		break;
	}
	case PRIV_UNIX_BIND:
		reply_fds[0] = -1;
		r = serve_unix_bind(p, s, &rq, fd, reply, &reply_fds[0]);
		*n_reply_fds = reply_fds[0] >= 0;
		break;
	case PRIV_UNIX_LISTEN:
		r = serve_unix_listen(p, s, &rq, fd);
		break;
	case PRIV_UNIX_SEND:
		r = serve_unix_send(p, s, &rq, fd, (const uint8_t *)buf + sizeof(rq),
		                    len - sizeof(rq));
		break;
	case PRIV_UNIX_UNLINK:
		fds[0] = -1; /* taken, and closed, there */
		r = serve_unix_unlink(s, &rq, fd);
		break;
	default:
		r = -EINVAL;
		break;
	}
out:
	for (int i = 0; i < n_fds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	reply->result = r;
	return true;
}
