/*
 * transport_tls.c - the transport (transport.h) over TLS 1.3 to a sockrpcd on another
 * host (sr_client_open("tls://HOST:PORT")). The client's certificate and key and the CA
 * the daemon's certificate must chain to come from SOCKRPC_TLS_CERT, SOCKRPC_TLS_KEY
 * and SOCKRPC_TLS_CA; the daemon's certificate must also name HOST. One SSL is shared
 * by the reading and the writing thread, so every SSL call holds `mu`; waiting for the
 * socket (poll) never does. OpenSSL reads and writes the socket through sock_bio: send(2)
 * with MSG_NOSIGNAL, so that a daemon gone never raises SIGPIPE in the caller
 * (transport.h), without a signal mask set and restored around each call. Each failure says which
 * step failed: the name, the TCP connection, the daemon's certificate, or the daemon refusing ours.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "internal.h"

/* Plaintext gathered into one record when a write's first part is small (a header). */
#define TLS_GATHER 16384

struct transport_tls {
	struct transport base;
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	pthread_mutex_t mu; /* guards ssl, retry_len, gather, alert */
	size_t retry_len;   /* a write that wanted the socket is repeated with this length */
	uint8_t gather[TLS_GATHER];
	char alert[160]; /* the TLS failure that ended the stream (a refusal), or "" */
};

static const struct transport_ops tls_ops;

/* The socket BIO's I/O: the descriptor is the BIO's data. */
static int
sock_bio_write(BIO *b, const char *buf, int len)
{
	ssize_t n = send((int)(intptr_t)BIO_get_data(b), buf, (size_t)len, MSG_NOSIGNAL);

	BIO_clear_retry_flags(b);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_write(b);
	return (int)n;
}

static int
sock_bio_read(BIO *b, char *buf, int len)
{
	ssize_t n = recv((int)(intptr_t)BIO_get_data(b), buf, (size_t)len, 0);

	BIO_clear_retry_flags(b);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_read(b);
	else if (n == 0)
		BIO_set_flags(b, BIO_FLAGS_IN_EOF); /* OpenSSL tells an EOF from an error so */
	return (int)n;
}

static long
sock_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)num, (void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_EOF:
		return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
	default:
		return 0;
	}
}

static BIO_METHOD *sock_bio_method;

static void
sock_bio_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sockrpc socket");

	if (m != NULL && (BIO_meth_set_write(m, sock_bio_write) != 1 ||
	                  BIO_meth_set_read(m, sock_bio_read) != 1 ||
	                  BIO_meth_set_ctrl(m, sock_bio_ctrl) != 1)) {
		BIO_meth_free(m);
		m = NULL;
	}
	sock_bio_method = m;
}

/* A BIO for fd (not closed with it), or NULL. */
static BIO *
sock_bio_new(int fd)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	BIO *b;

	pthread_once(&once, sock_bio_method_init);
	if (sock_bio_method == NULL || (b = BIO_new(sock_bio_method)) == NULL)
		return NULL;
	BIO_set_data(b, (void *)(intptr_t)fd);
	BIO_set_init(b, 1);
	return b;
}

static const char *
ssl_error_text(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(buf, len, "the connection was closed");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

/* Splits tls://HOST:PORT (HOST may be [V6]). 0 or -1. */
static int
split_endpoint(const char *endpoint, char *host, size_t host_len, char *port, size_t port_len)
{
	const char *s = endpoint + strlen("tls://"), *colon, *end;
	size_t n;

	if (*s == '[') {
		if ((end = strchr(s, ']')) == NULL || end[1] != ':')
			return -1;
		n = (size_t)(end - s - 1);
		s++;
		colon = end + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return -1;
		n = (size_t)(colon - s);
	}
	if (n == 0 || n >= host_len || colon[1] == '\0' || strlen(colon + 1) >= port_len)
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	strcpy(port, colon + 1);
	return 0;
}

/* A TCP connection to host:port, trying each address, within the deadline. */
static int
tcp_connect(const char *endpoint, const char *host, const char *port, int64_t deadline,
            sr_error *err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG}, *res, *ai;
	char ebuf[128];
	int r, fd = -1, saved = 0;

	if ((r = getaddrinfo(host, port, &hints, &res)) != 0) {
		cl_seterr(err, SR_EDAEMON, r == EAI_SYSTEM ? errno : 0,
		          "cannot resolve sockrpcd's host %s (%s): %s", host, endpoint,
		          gai_strerror(r));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		struct pollfd p;
		socklen_t len = sizeof(saved);

		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		/* Requests are whole frames in records already: no need to hold them back. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		saved = errno;
		if (errno == EINPROGRESS) {
			int64_t left = deadline - cl_now_ms();

			p = (struct pollfd){.fd = fd, .events = POLLOUT};
			if (left > 0 && poll(&p, 1, (int)left) == 1 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &saved, &len) == 0 && saved == 0)
				break;
			if (left <= 0 || saved == EINPROGRESS)
				saved = ETIMEDOUT;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		cl_seterr(err, SR_EDAEMON, saved, "cannot reach sockrpcd at %s (TCP): %s", endpoint,
		          cl_errno_text(saved, ebuf, sizeof(ebuf)));
	return fd;
}

/* The client's context: TLS 1.3, our certificate, the CA to check the daemon with. */
static SSL_CTX *
client_context(const char *endpoint, sr_error *err)
{
	const char *cert = getenv("SOCKRPC_TLS_CERT"), *key = getenv("SOCKRPC_TLS_KEY"),
	           *ca = getenv("SOCKRPC_TLS_CA");
	char why[256];
	SSL_CTX *ctx;

	if (!cert || !*cert || !key || !*key || !ca || !*ca) {
		cl_seterr(err, SR_EINVAL, 0,
		          "%s needs SOCKRPC_TLS_CERT, SOCKRPC_TLS_KEY and SOCKRPC_TLS_CA",
		          endpoint);
		return NULL;
	}
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		cl_seterr(err, SR_ELIMIT, ENOMEM, "cannot create a TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Read ahead: one recv(2) per record, not two (header, then body); the buffer stays
	 * one record long, as the daemon's (daemon/tls_context.c says why). tls_read tries
	 * SSL_read before it polls, so nothing read ahead waits. */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		cl_seterr(err, SR_EINVAL, 0, "SOCKRPC_TLS_CERT %s: %s", cert,
		          ssl_error_text(why, sizeof(why)));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		cl_seterr(err, SR_EINVAL, 0, "SOCKRPC_TLS_KEY %s: %s", key,
		          ssl_error_text(why, sizeof(why)));
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		cl_seterr(err, SR_EINVAL, 0, "SOCKRPC_TLS_CA %s: %s", ca,
		          ssl_error_text(why, sizeof(why)));
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* Runs the handshake on the non-blocking socket until done or the deadline. */
static int
handshake(struct transport_tls *t, const char *endpoint, int64_t deadline, sr_error *err)
{
	char why[256];
	long verify;

	for (;;) {
		struct pollfd p = {.fd = t->fd};
		int64_t left;
		int r, e;

		r = SSL_connect(t->ssl);
		e = SSL_get_error(t->ssl, r);

		if (r == 1)
			return 0;
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			break;
		p.events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		if ((left = deadline - cl_now_ms()) <= 0 || poll(&p, 1, (int)left) == 0) {
			cl_seterr(err, SR_EDAEMON, ETIMEDOUT,
			          "sockrpcd at %s did not finish the TLS handshake in time",
			          endpoint);
			return -1;
		}
	}
	if ((verify = SSL_get_verify_result(t->ssl)) != X509_V_OK)
		cl_seterr(err, SR_EDAEMON, 0, "sockrpcd at %s is not trusted (its certificate): %s",
		          endpoint, X509_verify_cert_error_string(verify));
	else
		cl_seterr(err, SR_EDAEMON, 0, "TLS handshake with sockrpcd at %s failed: %s",
		          endpoint, ssl_error_text(why, sizeof(why)));
	return -1;
}

struct transport *
transport_tls_connect(const char *endpoint, sr_error *err)
{
	char host[256], port[16];
	int64_t deadline = cl_deadline_after(CL_FIXED_DEADLINE_MS);
	struct transport_tls *t;
	X509_VERIFY_PARAM *vp;
	BIO *bio;
	unsigned char ip[16];
	bool is_ip;

	if (split_endpoint(endpoint, host, sizeof(host), port, sizeof(port)) != 0) {
		cl_seterr(err, SR_EINVAL, 0, "bad endpoint %s: not tls://HOST:PORT", endpoint);
		return NULL;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		cl_seterr(err, SR_ELIMIT, ENOMEM, "out of memory");
		return NULL;
	}
	t->base.ops = &tls_ops;
	t->fd = -1;
	pthread_mutex_init(&t->mu, NULL);
	if ((t->ctx = client_context(endpoint, err)) == NULL)
		goto fail;
	if ((t->fd = tcp_connect(endpoint, host, port, deadline, err)) < 0)
		goto fail;
	if ((t->ssl = SSL_new(t->ctx)) == NULL || (bio = sock_bio_new(t->fd)) == NULL) {
		cl_seterr(err, SR_ELIMIT, ENOMEM, "out of memory");
		goto fail;
	}
	SSL_set_bio(t->ssl, bio, bio);
	/* The daemon's certificate must name what we dialled: an IP SAN for an address. */
	vp = SSL_get0_param(t->ssl);
	is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
	if ((is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host) : SSL_set1_host(t->ssl, host)) != 1 ||
	    (!is_ip && SSL_set_tlsext_host_name(t->ssl, host) != 1)) {
		cl_seterr(err, SR_EINVAL, 0, "bad host name in %s", endpoint);
		goto fail;
	}
	if (handshake(t, endpoint, deadline, err) != 0)
		goto fail;
	return &t->base;
fail:
	tls_ops.free(&t->base);
	return NULL;
}

/* Under mu: maps a failed SSL call to -1/errno or 0 (end of stream). A refusal by the
 * daemon (an alert: our certificate unknown, expired, required) is kept in t->alert. */
static ssize_t
ssl_failure(struct transport_tls *t, int r)
{
	int e = SSL_get_error(t->ssl, r);

	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		errno = EAGAIN;
		return -1;
	}
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
		return errno == 0 ? 0 : -1;
	if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		ERR_clear_error();
		return 0;
	}
	ssl_error_text(t->alert, sizeof(t->alert));
	errno = EPROTO;
	return -1;
}

static ssize_t
tls_read(struct transport *base, void *buf, size_t len)
{
	struct transport_tls *t = (struct transport_tls *)base;
	int64_t until = cl_now_ms() + CL_READ_TICK_MS;
	size_t n = 0;
	ssize_t rc;
	int r;

	for (;;) {
		struct pollfd p = {.fd = t->fd, .events = POLLIN};
		int64_t left;
		int saved;

		pthread_mutex_lock(&t->mu);
		errno = 0;
		r = SSL_read_ex(t->ssl, buf, len, &n);
		rc = r == 1 ? (ssize_t)n : ssl_failure(t, r);
		saved = errno;
		pthread_mutex_unlock(&t->mu);
		errno = saved;
		if (rc >= 0 || errno != EAGAIN)
			return rc;
		if ((left = until - cl_now_ms()) <= 0)
			return -1; /* EAGAIN: the tick passed */
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			return -1;
	}
}

static ssize_t
tls_writev(struct transport *base, const struct iovec *iov, int n_iov)
{
	struct transport_tls *t = (struct transport_tls *)base;
	const void *at = iov[0].iov_base;
	size_t len = iov[0].iov_len, n = 0;
	ssize_t rc;
	int r, saved;

	pthread_mutex_lock(&t->mu);
	/* A small first part (a frame header) joins what follows in one record; the same
	 * iov comes back after EAGAIN, so a retry gathers the same bytes. */
	if (len < TLS_GATHER && n_iov > 1) {
		len = 0;
		for (int i = 0; i < n_iov && len < TLS_GATHER; i++) {
			size_t k =
			    iov[i].iov_len < TLS_GATHER - len ? iov[i].iov_len : TLS_GATHER - len;

			memcpy(t->gather + len, iov[i].iov_base, k);
			len += k;
		}
		at = t->gather;
	}
	if (t->retry_len != 0 && t->retry_len < len)
		len = t->retry_len;
	errno = 0;
	r = SSL_write_ex(t->ssl, at, len, &n);
	if (r == 1) {
		t->retry_len = 0;
		rc = (ssize_t)n;
	} else if ((rc = ssl_failure(t, r)) < 0 && errno == EAGAIN) {
		t->retry_len = len;
	} else if (rc == 0) {
		errno = EPIPE;
		rc = -1;
	}
	saved = errno;
	pthread_mutex_unlock(&t->mu);
	errno = saved;
	return rc;
}

static int
tls_wait_writable(struct transport *base, int64_t deadline)
{
	struct transport_tls *t = (struct transport_tls *)base;

	for (;;) {
		struct pollfd p = {.fd = t->fd, .events = POLLOUT};
		int64_t left = -1;
		int n;

		if (deadline != CL_NO_DEADLINE && (left = deadline - cl_now_ms()) <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		n = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (n > 0)
			return 0;
		if (n == -1 && errno != EINTR)
			return -1;
	}
}

static bool
tls_hung_up(struct transport *base)
{
	struct transport_tls *t = (struct transport_tls *)base;
	struct pollfd p = {.fd = t->fd, .events = POLLRDHUP};
	bool pending;

	if (poll(&p, 1, 0) <= 0 || !(p.revents & (POLLHUP | POLLERR | POLLRDHUP)))
		return false;
	pthread_mutex_lock(&t->mu);
	pending = SSL_has_pending(t->ssl) == 1;
	pthread_mutex_unlock(&t->mu);
	return !pending;
}

/* shutdown() wakes a reader in poll(); the SSL is left to free(). */
static void
tls_shutdown(struct transport *base)
{
	struct transport_tls *t = (struct transport_tls *)base;

	shutdown(t->fd, SHUT_RDWR);
}

/* The daemon's alert, if one ended the stream. A write may have failed first (the daemon
 * reset the connection after its alert): the alert is then read now, without waiting. */
static const char *
tls_failure(struct transport *base)
{
	struct transport_tls *t = (struct transport_tls *)base;
	char byte;
	size_t n;
	int r;

	pthread_mutex_lock(&t->mu);
	if (t->alert[0] == '\0') {
		ERR_clear_error();
		if ((r = SSL_peek_ex(t->ssl, &byte, 1, &n)) != 1)
			ssl_failure(t, r);
	}
	pthread_mutex_unlock(&t->mu);
	return t->alert[0] != '\0' ? t->alert : NULL;
}

static void
tls_free(struct transport *base)
{
	struct transport_tls *t = (struct transport_tls *)base;

	if (t == NULL)
		return;
	if (t->ssl != NULL) {
		if (SSL_is_init_finished(t->ssl))
			SSL_shutdown(t->ssl); /* close_notify, if the socket takes it now */
		SSL_free(t->ssl);
	}
	SSL_CTX_free(t->ctx);
	ERR_clear_error();
	if (t->fd >= 0)
		close(t->fd);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static const struct transport_ops tls_ops = {
    .read = tls_read,
    .writev = tls_writev,
    .wait_writable = tls_wait_writable,
    .hung_up = tls_hung_up,
    .shutdown = tls_shutdown,
    .failure = tls_failure,
    .free = tls_free,
};
