/*
 * tls.c - the bench's TLS peers: a test CA and certificates (made with the openssl CLI at
 * run time, by tests/scripts/helpers/tls_certs.sh), and a direct TLS 1.3 server speaking
 * the bulk server's commands (sink, source) plus a 64-byte echo, with the client side
 * for each: the baseline a brokered TLS session is measured against. Mutual TLS on both,
 * so that both pay for the same handshake and record layer.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "bench.h"

static SSL_CTX *server_ctx, *client_ctx;
static char cert_dir[256];

static SSL_CTX *
make_ctx(bool server)
{
	char cert[300], key[300], ca[300];
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

	snprintf(cert, sizeof(cert), "%s/%s.pem", cert_dir, server ? "server" : "client");
	snprintf(key, sizeof(key), "%s/%s.key", cert_dir, server ? "server" : "client");
	snprintf(ca, sizeof(ca), "%s/ca.pem", cert_dir);
	if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
	                   NULL);
	return ctx;
}

int
tls_bench_setup(const char *tmpdir, const char *source_dir)
{
	char cmd[1024], path[300];

	snprintf(cert_dir, sizeof(cert_dir), "%s/certs", tmpdir);
	snprintf(cmd, sizeof(cmd), "bash %s/tests/scripts/helpers/tls_certs.sh %s", source_dir,
	         cert_dir);
	if (system(cmd) != 0)
		return -1;
	if ((server_ctx = make_ctx(true)) == NULL || (client_ctx = make_ctx(false)) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/client.pem", cert_dir);
	setenv("SOCKRPC_TLS_CERT", path, 1);
	snprintf(path, sizeof(path), "%s/client.key", cert_dir);
	setenv("SOCKRPC_TLS_KEY", path, 1);
	snprintf(path, sizeof(path), "%s/ca.pem", cert_dir);
	setenv("SOCKRPC_TLS_CA", path, 1);
	return 0;
}

const char *
tls_bench_cert_dir(void)
{
	return cert_dir;
}

static int
ssl_write_full(SSL *ssl, const void *buf, size_t len)
{
	size_t n;

	while (len > 0) {
		if (SSL_write_ex(ssl, buf, len, &n) != 1)
			return -1;
		buf = (const uint8_t *)buf + n;
		len -= n;
	}
	return 0;
}

static int
ssl_read_full(SSL *ssl, void *buf, size_t len)
{
	size_t n;

	while (len > 0) {
		if (SSL_read_ex(ssl, buf, len, &n) != 1)
			return -1;
		buf = (uint8_t *)buf + n;
		len -= n;
	}
	return 0;
}

static void *
serve_one(void *arg)
{
	static uint8_t buf[BENCH_CHUNK]; /* contents never matter */
	int fd = (int)(intptr_t)arg;
	SSL *ssl = SSL_new(server_ctx);
	uint8_t cmd[BENCH_CMD_SIZE];
	uint64_t n = 0;

	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 || SSL_accept(ssl) != 1 ||
	    ssl_read_full(ssl, cmd, sizeof(cmd)) != 0)
		goto out;
	for (int i = 0; i < 8; i++)
		n = n << 8 | cmd[1 + i];
	if (cmd[0] == BENCH_OP_SINK) {
		while (n > 0) {
			size_t got;

			if (SSL_read_ex(ssl, buf, n < sizeof(buf) ? n : sizeof(buf), &got) != 1)
				goto out;
			n -= got;
		}
		ssl_write_full(ssl, "k", 1);
	} else if (cmd[0] == BENCH_OP_SOURCE) {
		while (n > 0) {
			size_t k = n < sizeof(buf) ? n : sizeof(buf);

			if (ssl_write_full(ssl, buf, k) != 0)
				goto out;
			n -= k;
		}
	} else if (cmd[0] == TLS_BENCH_OP_ECHO) {
		uint8_t ping[BENCH_PING_SIZE];

		while (ssl_read_full(ssl, ping, sizeof(ping)) == 0 &&
		       ssl_write_full(ssl, ping, sizeof(ping)) == 0)
			;
	}
out:
	SSL_free(ssl);
	close(fd);
	return NULL;
}

static void *
accept_loop(void *arg)
{
	int lfd = (int)(intptr_t)arg;

	for (;;) {
		pthread_t t;
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL;
		}
		if (pthread_create(&t, NULL, serve_one, (void *)(intptr_t)fd) != 0)
			close(fd);
		else
			pthread_detach(t);
	}
}

int
tls_bench_server_start(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	pthread_t t;

	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(fd, 64) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) != 0 ||
	    pthread_create(&t, NULL, accept_loop, (void *)(intptr_t)fd) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	pthread_detach(t);
	return ntohs(sin.sin_port);
}

/* A TLS connection to the server with the command sent; NULL on failure. */
void *
tls_bench_open(int port, char op, uint64_t n)
{
	uint8_t cmd[BENCH_CMD_SIZE];
	int fd = tcp_connect(port);
	SSL *ssl;

	if (fd < 0)
		return NULL;
	if ((ssl = SSL_new(client_ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
	    SSL_connect(ssl) != 1) {
		SSL_free(ssl);
		close(fd);
		return NULL;
	}
	bench_cmd(cmd, op, n);
	if (ssl_write_full(ssl, cmd, sizeof(cmd)) != 0) {
		tls_bench_close(ssl);
		return NULL;
	}
	return ssl;
}

void
tls_bench_close(void *conn)
{
	SSL *ssl = conn;
	int fd = SSL_get_fd(ssl);

	SSL_shutdown(ssl);
	SSL_free(ssl);
	close(fd);
}

/* Seconds to move n bytes to the sink or from the source directly over TLS; NaN on error. */
double
tls_bench_bulk(int port, bool send_dir, uint64_t n)
{
	static uint8_t buf[BENCH_CHUNK];
	double t0 = now_s();
	void *c = tls_bench_open(port, send_dir ? BENCH_OP_SINK : BENCH_OP_SOURCE, n);
	int rc = 0;

	if (c == NULL)
		return 0.0 / 0.0;
	while (n > 0 && rc == 0) {
		size_t k = n < sizeof(buf) ? n : sizeof(buf), got = 0;

		if (send_dir)
			rc = ssl_write_full(c, buf, k), got = k;
		else
			rc = SSL_read_ex(c, buf, k, &got) == 1 ? 0 : -1;
		n -= got;
	}
	if (rc == 0 && send_dir)
		rc = ssl_read_full(c, buf, 1);
	tls_bench_close(c);
	return rc == 0 ? now_s() - t0 : 0.0 / 0.0;
}

/* One 64-byte round trip on an echo connection; µs, or NaN. */
double
tls_bench_ping(void *conn)
{
	uint8_t ping[BENCH_PING_SIZE] = {0};
	double t0 = now_s();

	if (ssl_write_full(conn, ping, sizeof(ping)) != 0 ||
	    ssl_read_full(conn, ping, sizeof(ping)) != 0)
		return 0.0 / 0.0;
	return (now_s() - t0) * 1e6;
}
