/*
 * tls_listener.c - the TLS listeners (--listen-tls HOST:PORT) and the handshakes on them.
 * The sockets and the TLS context are made as root before privileges drop (tls_open);
 * the worker accepts (tls_start) and runs each handshake on the loop, non-blocking,
 * under a deadline (TLS_HANDSHAKE_TIMEOUT_MS) and a cap on how many run at once
 * (TLS_MAX_HANDSHAKES: past it the listeners pause and connections wait in the kernel's
 * backlog). A handshake that fails (no certificate, a wrong CA, an expired one, TLS 1.2,
 * plaintext) is logged and audited and never becomes a session; one that succeeds hands
 * its socket and SSL to a session (transport_tls.c) with the certificate's identity.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "sockrpcd.h"

struct tls_listener {
	int fd;
	struct evconnlistener *l;
	char name[128]; /* as given: HOST:PORT */
};

struct tls_handshake {
	LIST_ENTRY(tls_handshake) link;
	struct tls_server *server;
	SSL *ssl;
	int fd;
	struct event *io, *deadline;
	uint8_t ip[16]; /* the peer's address (IPv4 in the first 4 bytes), for its allowance */
	struct identity peer; /* the address now, the certificate's names once verified */
};

struct tls_server {
	struct sockrpcd *d;
	SSL_CTX *ctx;
	struct tls_listener listeners[TLS_MAX_LISTENERS];
	int n_listeners;
	LIST_HEAD(, tls_handshake) handshakes;
	unsigned n_handshakes;
	bool paused; /* listeners disabled: TLS_MAX_HANDSHAKES in progress */
};

static int open_listener(const char *spec, struct tls_listener *out);
static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg);
static void on_accept_error(struct evconnlistener *l, void *arg);
static void handshake_step(evutil_socket_t fd, short what, void *arg);
static void handshake_free(struct tls_handshake *h);

/*
 * Says whether the kernel can take over TLS records (OpenSSL's SSL_OP_ENABLE_KTLS needs the
 * `tls` upper-layer protocol, from the tls module). Without it OpenSSL quietly encrypts in
 * user space, so this is the only word on it; the daemon never loads modules itself.
 */
static void
log_kernel_tls(struct sockrpcd *d)
{
	char ulps[256] = "";
	FILE *f;

	if (d->opt.no_ktls) {
		log_info("kernel TLS: off (--no-ktls)");
		return;
	}
	if ((f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "re")) != NULL) {
		if (fgets(ulps, sizeof(ulps), f) == NULL)
			ulps[0] = '\0';
		fclose(f);
	}
	for (char *w = strtok(ulps, " \n"); w != NULL; w = strtok(NULL, " \n")) {
		if (strcmp(w, "tls") == 0) {
			log_info("kernel TLS: available; OpenSSL uses it where the cipher allows");
			return;
		}
	}
	log_info("kernel TLS: unavailable (no 'tls' in tcp_available_ulp: modprobe tls); "
	         "records are encrypted in user space");
}

/*
 * As root, before privileges drop: the TLS context from opt.tls_* and a listening socket
 * for each --listen-tls. Returns 0 (nothing to do without --listen-tls) or -1 (logged).
 */
int
tls_open(struct sockrpcd *d)
{
	struct tls_server *ts;
	struct tls_pem pem;
	char err[512];

	if (d->opt.n_tls_listen == 0)
		return 0;
	if (!d->opt.tls_cert || !d->opt.tls_key || !d->opt.tls_client_ca) {
		log_error("--listen-tls needs --tls-cert, --tls-key and --tls-client-ca");
		return -1;
	}
	if ((ts = calloc(1, sizeof(*ts))) == NULL) {
		log_error("out of memory");
		return -1;
	}
	ts->d = d;
	LIST_INIT(&ts->handshakes);
	d->tls = ts;
	/* Split, the key is read by the parent alone (tls_keyless.c), if it is one that can
	 * be kept there; the worker's context gets a stand-in. */
	if (d->tls_keyless && tls_pem_read_public(&d->opt, &pem, err, sizeof(err)) == 0) {
		X509 *cert = NULL;
		BIO *bio = BIO_new_mem_buf(pem.cert, (int)pem.cert_len);

		if (bio != NULL)
			cert = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL);
		BIO_free(bio);
		if (!tls_keyless_possible(cert ? X509_get0_pubkey(cert) : NULL)) {
			log_warn(
			    "--tls-cert's key is not EC of 384 bits or fewer: the worker holds "
			    "the private key");
			d->tls_keyless = false;
			tls_pem_clear(&pem);
		}
		X509_free(cert);
		ERR_clear_error();
	} else {
		d->tls_keyless = false;
	}
	if (!d->tls_keyless && tls_pem_read(&d->opt, &pem, err, sizeof(err)) != 0) {
		log_error("%s", err);
		return -1;
	}
	ts->ctx = tls_server_context_new(&pem, !d->opt.no_ktls, err, sizeof(err));
	tls_pem_clear(&pem);
	if (ts->ctx == NULL) {
		log_error("%s", err);
		return -1;
	}
	log_kernel_tls(d);
	for (int i = 0; i < d->opt.n_tls_listen; i++) {
		if (open_listener(d->opt.tls_listen[i], &ts->listeners[i]) != 0)
			return -1;
		ts->n_listeners++;
	}
	return 0;
}

/* In the worker: starts accepting. Returns 0 or -1 (logged). */
int
tls_start(struct sockrpcd *d)
{
	struct tls_server *ts = d->tls;

	if (ts != NULL && d->tls_keyless && priv_tls_sign_init(d) != 0)
		return -1;
	for (int i = 0; ts != NULL && i < ts->n_listeners; i++) {
		struct tls_listener *tl = &ts->listeners[i];

		tl->l =
		    evconnlistener_new(d->base, on_accept, ts, LEV_OPT_CLOSE_ON_FREE, -1, tl->fd);
		if (tl->l == NULL) {
			log_error("cannot listen on %s: %s", tl->name, strerror(errno));
			return -1;
		}
		tl->fd = -1; /* the listener's now */
		evconnlistener_set_error_cb(tl->l, on_accept_error);
		log_info("listening for TLS clients on %s", tl->name);
	}
	return 0;
}

/*
 * SIGHUP: new credentials for the handshakes to come (those under way, and the sessions,
 * keep theirs). Returns 0, or -1 (logged) with the old context kept.
 */
int
tls_reload(struct sockrpcd *d, const struct tls_pem *pem)
{
	char err[512];
	SSL_CTX *ctx;

	if (d->tls == NULL)
		return 0;
	if ((ctx = tls_server_context_new(pem, !d->opt.no_ktls, err, sizeof(err))) == NULL) {
		log_error("TLS credentials rejected: %s", err);
		return -1;
	}
	SSL_CTX_free(d->tls->ctx); /* each SSL holds a reference of its own */
	d->tls->ctx = ctx;
	return 0;
}

/* Stops accepting and abandons the handshakes in progress (SIGTERM). */
void
tls_stop(struct sockrpcd *d)
{
	struct tls_server *ts = d->tls;
	struct tls_handshake *h;

	if (ts == NULL)
		return;
	for (int i = 0; i < ts->n_listeners; i++) {
		if (ts->listeners[i].l != NULL)
			evconnlistener_free(ts->listeners[i].l);
		else if (ts->listeners[i].fd >= 0)
			close(ts->listeners[i].fd);
		ts->listeners[i].l = NULL;
		ts->listeners[i].fd = -1;
	}
	while ((h = LIST_FIRST(&ts->handshakes)) != NULL)
		handshake_free(h);
}

/* Accepts NULL. */
void
tls_free(struct sockrpcd *d)
{
	if (d->tls == NULL)
		return;
	tls_stop(d);
	SSL_CTX_free(d->tls->ctx);
	free(d->tls);
	d->tls = NULL;
}

/* The listeners' addresses (the privileged parent keeps them to recognise TLS sessions).
 * Returns how many were written. */
int
tls_listener_addresses(const struct sockrpcd *d, struct sockaddr_storage *out, int max)
{
	int n = 0;

	for (int i = 0; d->tls != NULL && i < d->tls->n_listeners && n < max; i++) {
		socklen_t len = sizeof(out[n]);

		memset(&out[n], 0, sizeof(out[n]));
		if (getsockname(d->tls->listeners[i].fd, (struct sockaddr *)&out[n], &len) == 0)
			n++;
	}
	return n;
}

/* Splits "HOST:PORT" or "[V6]:PORT". Returns 0 or -1. */
static int
split_host_port(const char *spec, char *host, size_t host_len, const char **port)
{
	const char *colon;
	size_t n;

	if (spec[0] == '[') {
		const char *end = strchr(spec, ']');

		if (end == NULL || end[1] != ':')
			return -1;
		n = (size_t)(end - spec - 1);
		spec++;
		colon = end + 1;
	} else {
		if ((colon = strrchr(spec, ':')) == NULL || strchr(spec, ':') != colon)
			return -1;
		n = (size_t)(colon - spec);
	}
	if (n == 0 || n >= host_len || colon[1] == '\0')
		return -1;
	memcpy(host, spec, n);
	host[n] = '\0';
	*port = colon + 1;
	return 0;
}

static int
open_listener(const char *spec, struct tls_listener *out)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res = NULL;
	char host[256];
	const char *port;
	int fd = -1, one = 1, r;

	snprintf(out->name, sizeof(out->name), "%s", spec);
	out->fd = -1;
	if (split_host_port(spec, host, sizeof(host), &port) != 0) {
		log_error("--listen-tls %s: not HOST:PORT (or [IPV6]:PORT)", spec);
		return -1;
	}
	if ((r = getaddrinfo(host, port, &hints, &res)) != 0) {
		log_error("--listen-tls %s: %s", spec, gai_strerror(r));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0)
		goto fail;
	freeaddrinfo(res);
	out->fd = fd;
	return 0;
fail:
	log_error("--listen-tls %s: %s", spec, strerror(errno));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return -1;
}

static void
pause_listeners(struct tls_server *ts, bool pause)
{
	if (ts->paused == pause)
		return;
	ts->paused = pause;
	for (int i = 0; i < ts->n_listeners; i++) {
		if (ts->listeners[i].l == NULL)
			continue;
		if (pause)
			evconnlistener_disable(ts->listeners[i].l);
		else
			evconnlistener_enable(ts->listeners[i].l);
	}
}

static void
peer_ip(const struct sockaddr *sa, uint8_t ip[16])
{
	memset(ip, 0, 16);
	if (sa->sa_family == AF_INET)
		memcpy(ip, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else if (sa->sa_family == AF_INET6)
		memcpy(ip, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
}

/* Handshakes in progress from the address ip. */
static unsigned
handshakes_from(struct tls_server *ts, const uint8_t ip[16])
{
	struct tls_handshake *h;
	unsigned n = 0;

	LIST_FOREACH (h, &ts->handshakes, link)
		n += memcmp(h->ip, ip, 16) == 0;
	return n;
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
	struct tls_server *ts = arg;
	struct sockrpcd *d = ts->d;
	struct tls_handshake *h;
	int one = 1;
	struct timeval tv = {TLS_HANDSHAKE_TIMEOUT_MS / 1000,
	                     (TLS_HANDSHAKE_TIMEOUT_MS % 1000) * 1000};

	if (d->stopping || d->n_sessions >= d->opt.limits.max_sessions + MAX_SESSIONS_MARGIN) {
		close(fd);
		return;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		close(fd);
		return;
	}
	peer_ip(sa, h->ip);
	/* One address may hold the slots freely while half of them are free; past that, only
	 * its allowance, so that one slow client cannot keep every other one waiting. */
	if (ts->n_handshakes >= TLS_MAX_HANDSHAKES / 2 &&
	    handshakes_from(ts, h->ip) >= TLS_MAX_HANDSHAKES_PER_ADDRESS) {
		log_debug("TLS client %s: too many handshakes from its address; closed",
		          address_describe(sa, (socklen_t)len, h->peer.peer_address,
		                           sizeof(h->peer.peer_address)));
		free(h);
		close(fd);
		return;
	}
	h->server = ts;
	h->fd = fd;
	/* Replies are whole frames in records already: the kernel need not hold them back. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	h->peer.transport = IDENTITY_TLS;
	h->peer.uid = h->peer.gid = TLS_PEER_UID; /* what the OS sees act for it, if anything */
	tls_identity_set_address(&h->peer, sa, (socklen_t)len);
	h->ssl = SSL_new(ts->ctx);
	h->io = event_new(d->base, fd, EV_READ, handshake_step, h);
	h->deadline = evtimer_new(d->base, handshake_step, h);
	LIST_INSERT_HEAD(&ts->handshakes, h, link);
	ts->n_handshakes++;
	if (ts->n_handshakes >= TLS_MAX_HANDSHAKES)
		pause_listeners(ts, true);
	if (h->ssl == NULL || h->io == NULL || h->deadline == NULL || SSL_set_fd(h->ssl, fd) != 1) {
		log_error("TLS client %s: out of memory", h->peer.peer_address);
		handshake_free(h);
		return;
	}
	SSL_set_accept_state(h->ssl);
	evtimer_add(h->deadline, &tv);
	handshake_step(fd, EV_READ, h);
}

static void
on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
	struct tls_listener *tl = arg;

	if (tl->l != NULL)
		evconnlistener_enable(tl->l);
}

/* As server.c's: out of fds, pause and retry shortly; the sessions keep working. */
static void
on_accept_error(struct evconnlistener *l, void *arg)
{
	struct tls_server *ts = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = {0, ACCEPT_RETRY_MS * 1000};

	if (err == EINTR || err == ECONNABORTED || err == EAGAIN)
		return;
	log_warn("TLS accept: %s; pausing the listener for %d ms", strerror(err), ACCEPT_RETRY_MS);
	evconnlistener_disable(l);
	for (int i = 0; i < ts->n_listeners; i++)
		if (ts->listeners[i].l == l)
			event_base_once(ts->d->base, -1, EV_TIMEOUT, on_accept_retry,
			                &ts->listeners[i], &tv);
}

/* The handshake failed: logged and audited, never a session. */
static void
refuse(struct tls_handshake *h, const char *why)
{
	struct sockrpcd *d = h->server->d;

	log_info("TLS client %s refused: %s", h->peer.peer_address, why);
	audit_tls_refused(d->audit, h->peer.peer_address, why);
	handshake_free(h);
}

/* The handshake is done and the certificate verified: a session begins. */
static void
handshake_done(struct tls_handshake *h)
{
	struct sockrpcd *d = h->server->d;
	X509 *cert = SSL_get0_peer_certificate(h->ssl);
	struct transport *t;
	struct session *s;
	struct identity peer;
	int fd = h->fd;
	SSL *ssl = h->ssl;

	if (cert == NULL || SSL_get_verify_result(h->ssl) != X509_V_OK) {
		refuse(h, "no verified client certificate");
		return;
	}
	if (tls_identity_from_cert(cert, &h->peer) != 0) {
		refuse(h, "cannot read the client certificate's key");
		return;
	}
	peer = h->peer;
	h->ssl = NULL;
	h->fd = -1;
	handshake_free(h);
	if ((t = transport_tls_new(fd, ssl)) == NULL) {
		log_error("cannot start a TLS session: out of memory");
		return;
	}
	log_debug("TLS client %s: kernel TLS send %s, receive %s", peer.peer_address,
	          BIO_get_ktls_send(SSL_get_wbio(ssl)) ? "on" : "off",
	          BIO_get_ktls_recv(SSL_get_rbio(ssl)) ? "on" : "off");
	if ((s = session_new_transport(d, t, &peer)) == NULL)
		log_error("cannot start a session: out of memory");
	else if (priv_session_open(s) != 0)
		session_close(s, "the privileged parent refused the session");
}

static void
handshake_step(evutil_socket_t fd, short what, void *arg)
{
	struct tls_handshake *h = arg;
	char why[256], ssl_why[200];
	int r, e;

	if (what & EV_TIMEOUT) {
		refuse(h, "no TLS handshake in time");
		return;
	}
	ERR_clear_error();
	errno = 0;
	r = SSL_do_handshake(h->ssl);
	if (r == 1) {
		handshake_done(h);
		return;
	}
	e = SSL_get_error(h->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		event_del(h->io);
		event_assign(h->io, h->server->d->base, h->fd,
		             e == SSL_ERROR_WANT_READ ? EV_READ : EV_WRITE, handshake_step, h);
		event_add(h->io, NULL);
		return;
	}
	if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
		snprintf(why, sizeof(why), "handshake: %s",
		         errno ? strerror(errno) : "the client closed the connection");
	else if (SSL_get_verify_result(h->ssl) != X509_V_OK)
		snprintf(why, sizeof(why), "client certificate: %s",
		         X509_verify_cert_error_string(SSL_get_verify_result(h->ssl)));
	else
		snprintf(why, sizeof(why), "handshake: %s",
		         tls_error_text(ssl_why, sizeof(ssl_why)));
	refuse(h, why);
}

/* Frees h and what it still owns; resumes the listeners if they waited for a slot. */
static void
handshake_free(struct tls_handshake *h)
{
	struct tls_server *ts = h->server;

	LIST_REMOVE(h, link);
	ts->n_handshakes--;
	if (h->io)
		event_free(h->io);
	if (h->deadline)
		event_free(h->deadline);
	SSL_free(h->ssl);
	if (h->fd >= 0)
		close(h->fd);
	ERR_clear_error();
	free(h);
	if (ts->n_handshakes < TLS_MAX_HANDSHAKES && !ts->d->stopping)
		pause_listeners(ts, false);
}
