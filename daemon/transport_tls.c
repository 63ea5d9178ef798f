/*
 * transport_tls.c - a session's byte stream over TLS 1.3 (OpenSSL), once its handshake is
 * done (tls_listener.c). Bytes pass through the daemon to be encrypted, so there is no
 * splice and no reply channel; nor will there be descriptor handback: a descriptor cannot
 * cross a network. What it must know of OpenSSL: records it has decrypted but not handed
 * over are invisible to the loop (pending()); a write that could not finish is retried
 * with the same bytes; a peer that closes without close_notify is an end of stream.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "frame.h"
#include "sockrpcd.h"

/* Plaintext handed to one SSL_write: a few records; more gains nothing and the retry
 * rule makes a larger one stick. */
#define TLS_WRITE_MAX (256u * 1024u)

struct transport_tls {
	struct transport base;
	SSL *ssl;
	size_t retry_len; /* the length of a write to repeat (it wanted the socket), else 0 */
	bool drained;     /* the last read ended wanting the socket: what OpenSSL holds (read
	                   * ahead) is not a whole record, and the socket will wake the loop */
};

/* Maps an SSL_read/SSL_write failure to the transport's convention: -1 with EAGAIN to
 * wait, 0 for a peer gone (close_notify, or none: OpenSSL 3 reports a bare end of stream
 * as SSL_R_UNEXPECTED_EOF_WHILE_READING), -1 with EPROTO or the socket's errno otherwise. */
static int
ssl_failure(struct transport_tls *t, int r)
{
	int e = SSL_get_error(t->ssl, r);
	unsigned long lib;

	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		if (errno == 0 || errno == ECONNRESET || errno == EPIPE)
			return 0;
		return -1;
	default:
		lib = ERR_peek_error();
		ERR_clear_error();
		if (ERR_GET_REASON(lib) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
			return 0;
		errno = EPROTO;
		return -1;
	}
}

/* Reads up to room bytes of plaintext: as many records as fit, so a 1 MiB Send frame takes
 * few trips through the loop. */
static ssize_t
tls_read(struct transport *base, struct evbuffer *in, size_t room)
{
	struct transport_tls *t = (struct transport_tls *)base;
	struct evbuffer_iovec vec[2];
	size_t got = 0, n;
	int n_vec, r = 1, k;

	if ((n_vec = evbuffer_reserve_space(in, (ev_ssize_t)room, vec, 2)) < 1) {
		errno = ENOMEM;
		return -1;
	}
	for (k = 0; k < n_vec; k++) {
		size_t want = vec[k].iov_len < room - got ? vec[k].iov_len : room - got, done = 0;

		while (r == 1 && done < want) {
			errno = 0;
			r = SSL_read_ex(t->ssl, (char *)vec[k].iov_base + done, want - done, &n);
			if (r == 1)
				done += n;
		}
		vec[k].iov_len = done; /* 0 for those not reached */
		got += done;
	}
	t->drained = r != 1 && SSL_get_error(t->ssl, r) == SSL_ERROR_WANT_READ;
	if (got > 0) {
		ERR_clear_error();
		evbuffer_commit_space(in, vec, vec[n_vec - 1].iov_len > 0 ? n_vec : 1);
		return (ssize_t)got;
	}
	evbuffer_commit_space(in, vec, 0);
	return ssl_failure(t, r);
}

static int
tls_write(struct transport *base, struct evbuffer *out)
{
	struct transport_tls *t = (struct transport_tls *)base;
	size_t len = t->retry_len, n = 0;
	struct evbuffer_iovec head;
	const void *at;
	int r;

	/* OpenSSL wants a retried write to carry the same bytes, at least as many: the head
	 * of out is unchanged until it is written, so the same length from it is. */
	if (len == 0) {
		if (evbuffer_peek(out, -1, NULL, &head, 1) < 1)
			return 1; /* nothing to write: the caller does not ask */
		len = head.iov_len < TLS_WRITE_MAX ? head.iov_len : TLS_WRITE_MAX;
		/* A tiny first chain would make a record of its own: gather a little. */
		if (len < 16384 && evbuffer_get_length(out) > len)
			len = evbuffer_get_length(out) < 16384 ? evbuffer_get_length(out) : 16384;
	}
	if ((at = evbuffer_pullup(out, (ev_ssize_t)len)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	errno = 0;
	r = SSL_write_ex(t->ssl, at, len, &n);
	if (r == 1) {
		t->retry_len = 0;
		evbuffer_drain(out, n);
		return n > INT_MAX ? INT_MAX : (int)n;
	}
	if ((r = ssl_failure(t, r)) < 0 && errno == EAGAIN)
		t->retry_len = len;
	return r;
}

/* Records OpenSSL holds, read ahead or decrypted (the socket may have nothing more to wake
 * the loop). After a read that wanted the socket, what it holds is part of a record:
 * waking for it would spin until the rest arrives. */
static bool
tls_pending(struct transport *base)
{
	struct transport_tls *t = (struct transport_tls *)base;

	return !t->drained && SSL_has_pending(t->ssl) == 1;
}

static bool
tls_hung_up(struct transport *base)
{
	struct pollfd p = {.fd = base->read_fd, .events = POLLRDHUP};

	return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* Sends close_notify if the socket takes it now (never waits), then closes. */
static void
tls_transport_free(struct transport *base)
{
	struct transport_tls *t = (struct transport_tls *)base;

	if (t == NULL)
		return;
	if (t->ssl != NULL) {
		if (SSL_is_init_finished(t->ssl) && !(SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN))
			SSL_shutdown(t->ssl);
		SSL_free(t->ssl);
		ERR_clear_error();
	}
	close(base->read_fd);
	free(t);
}

static const struct transport_ops tls_ops = {
    .name = "tls",
    .read = tls_read,
    .write = tls_write,
    .pending = tls_pending,
    .hung_up = tls_hung_up,
    .free = tls_transport_free,
};

/* Takes ownership of ssl and of fd, its socket (both freed on failure too), once its
 * handshake is done. Returns a transport; free with its ops->free(). */
struct transport *
transport_tls_new(int fd, SSL *ssl)
{
	struct transport_tls *t = calloc(1, sizeof(*t));

	if (t == NULL) {
		SSL_free(ssl);
		close(fd);
		return NULL;
	}
	t->base.ops = &tls_ops;
	t->base.read_fd = t->base.write_fd = fd;
	t->ssl = ssl;
	return &t->base;
}

/* The SSL of a TLS transport (priv_proxy.c sends its peer's certificates), else NULL. */
SSL *
transport_tls_ssl(struct transport *t)
{
	return t->ops == &tls_ops ? ((struct transport_tls *)t)->ssl : NULL;
}

/* Whether the transport is TLS (a session's transport name is for logs; this is for
 * decisions). */
bool
transport_is_tls(const struct transport *t)
{
	return t->ops == &tls_ops;
}
