/*
 * tls_context.c - the daemon's TLS configuration, loaded as root before privileges drop:
 * its certificate and key, and the CA whose certificates clients must present. TLS 1.3
 * only, a client certificate required and verified during the handshake, no session
 * tickets (a ticket key would be one more secret in the worker). Listeners and
 * handshakes are tls_listener.c's; the byte stream transport_tls.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "sockrpcd.h"

/* The first queued OpenSSL error as text ("no error" if none), and the queue cleared. */
const char *
tls_error_text(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(buf, len, "no error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

/* Reads a PEM file (at most TLS_PEM_MAX bytes) into a new NUL-terminated string, with
 * read(2): no stdio buffer is left behind holding a key. */
static char *
read_pem(const char *path, size_t *len, char *err, size_t err_len, const char *what)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	char *buf = NULL;
	size_t n = 0;
	ssize_t k = 1;

	if (fd < 0 || (buf = malloc(TLS_PEM_MAX + 1)) == NULL) {
		snprintf(err, err_len, "%s %s: %s", what, path, strerror(errno));
		goto fail;
	}
	while (n <= TLS_PEM_MAX && (k = read(fd, buf + n, TLS_PEM_MAX + 1 - n)) > 0)
		n += (size_t)k;
	if (k < 0 || n > TLS_PEM_MAX) {
		snprintf(err, err_len, "%s %s: unreadable, or larger than %u bytes", what, path,
		         TLS_PEM_MAX);
		goto fail;
	}
	close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
fail:
	if (fd >= 0)
		close(fd);
	if (buf != NULL)
		OPENSSL_cleanse(buf, n);
	free(buf);
	return NULL;
}

/* Reads --tls-cert and --tls-client-ca, not the key (held by the privileged parent). */
int
tls_pem_read_public(const struct daemon_options *opt, struct tls_pem *out, char *err,
                    size_t err_len)
{
	memset(out, 0, sizeof(*out));
	if ((out->cert = read_pem(opt->tls_cert, &out->cert_len, err, err_len, "--tls-cert")) &&
	    (out->ca = read_pem(opt->tls_client_ca, &out->ca_len, err, err_len, "--tls-client-ca")))
		return 0;
	tls_pem_clear(out);
	return -1;
}

/* Reads --tls-cert, --tls-key and --tls-client-ca (as root). 0, or -1 with why in err. */
int
tls_pem_read(const struct daemon_options *opt, struct tls_pem *out, char *err, size_t err_len)
{
	memset(out, 0, sizeof(*out));
	if ((out->cert = read_pem(opt->tls_cert, &out->cert_len, err, err_len, "--tls-cert")) &&
	    (out->key = read_pem(opt->tls_key, &out->key_len, err, err_len, "--tls-key")) &&
	    (out->ca = read_pem(opt->tls_client_ca, &out->ca_len, err, err_len, "--tls-client-ca")))
		return 0;
	tls_pem_clear(out);
	return -1;
}

/* Frees what pem holds; the key's bytes are wiped first. */
void
tls_pem_clear(struct tls_pem *pem)
{
	if (pem->key != NULL)
		OPENSSL_cleanse(pem->key, pem->key_len);
	free(pem->cert);
	free(pem->key);
	free(pem->ca);
	memset(pem, 0, sizeof(*pem));
}

/* Each certificate of a PEM bundle, to `add`. Returns how many, -1 on a bad one. */
static int
each_certificate(const char *pem, size_t len, int (*add)(void *arg, X509 *x), void *arg)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509 *x;
	int n = 0;

	if (bio == NULL)
		return -1;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		int r = add(arg, x);

		X509_free(x);
		if (r != 1) {
			n = -1;
			break;
		}
		n++;
	}
	BIO_free(bio);
	ERR_clear_error(); /* the end of the bundle reads as an error */
	return n;
}

static int
add_trusted(void *ctx, X509 *x)
{
	return X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), x) == 1 &&
	       SSL_CTX_add_client_CA(ctx, x) == 1;
}

/*
 * A server context for the certificate chain, key and client CA bundle in pem. Returns a
 * new SSL_CTX (SSL_CTX_free), or NULL with why in err.
 */
SSL_CTX *
tls_server_context_new(const struct tls_pem *pem, bool ktls, char *err, size_t err_len)
{
	char why[256];
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	BIO *bio = NULL;
	X509 *leaf = NULL;
	EVP_PKEY *key = NULL;

	if (ctx == NULL) {
		snprintf(err, err_len, "cannot create a TLS context: %s",
		         tls_error_text(why, sizeof(why)));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
	                             (ktls ? SSL_OP_ENABLE_KTLS : 0));
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* Writes take what fits and are retried from the same bytes, which move as the
	 * output buffer is drained and refilled (transport_tls.c). */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                          SSL_MODE_RELEASE_BUFFERS);
	/* Read ahead: one read(2) takes a whole record and the start of the next (without
	 * it OpenSSL reads each record's header and body apart, two syscalls per 16 KiB).
	 * Its buffer stays one record long: OpenSSL moves what follows a record to the
	 * buffer's start before each one (to align it), so a longer buffer costs more in
	 * copies than the reads it saves (measured with 32 and 128 KiB). */
	SSL_CTX_set_read_ahead(ctx, 1);
	/* The certificate, then the rest of its chain. */
	if ((bio = BIO_new_mem_buf(pem->cert, (int)pem->cert_len)) == NULL ||
	    (leaf = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL)) == NULL ||
	    SSL_CTX_use_certificate(ctx, leaf) != 1) {
		snprintf(err, err_len, "--tls-cert: %s", tls_error_text(why, sizeof(why)));
		goto fail;
	}
	/* The rest of the bundle, after the leaf, is its chain. */
	for (X509 *x; (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL;) {
		if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
			X509_free(x);
			snprintf(err, err_len, "--tls-cert: a bad certificate in the chain");
			goto fail;
		}
	}
	ERR_clear_error(); /* the end of the bundle reads as an error */
	BIO_free(bio);
	bio = NULL;
	if (pem->key_len == 0) {
		/* Keyless (tls_keyless.c): a stand-in that asks the parent to sign. */
		if ((key = tls_keyless_key(leaf)) == NULL ||
		    SSL_CTX_use_PrivateKey(ctx, key) != 1) {
			snprintf(err, err_len, "--tls-cert: its key cannot be kept in the parent");
			goto fail;
		}
	} else if ((bio = BIO_new_mem_buf(pem->key, (int)pem->key_len)) == NULL ||
	           (key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL ||
	           SSL_CTX_use_PrivateKey(ctx, key) != 1) {
		snprintf(err, err_len, "--tls-key: %s", tls_error_text(why, sizeof(why)));
		goto fail;
	}
	if (pem->key_len > 0 && SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, err_len, "--tls-key does not match --tls-cert");
		goto fail;
	}
	if (each_certificate(pem->ca, pem->ca_len, add_trusted, ctx) <= 0) {
		snprintf(err, err_len, "--tls-client-ca: no certificate, or a bad one");
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_verify_depth(ctx, TLS_VERIFY_DEPTH);
	BIO_free(bio);
	EVP_PKEY_free(key);
	X509_free(leaf);
	ERR_clear_error();
	return ctx;
fail:
	BIO_free(bio);
	EVP_PKEY_free(key);
	X509_free(leaf);
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return NULL;
}

static int
add_to_store(void *store, X509 *x)
{
	return X509_STORE_add_cert(store, x) == 1;
}

/* The CA bundle alone, for the privileged parent's own check of a session's certificate
 * (priv.c). Returns a new store (X509_STORE_free) or NULL with why in err. */
X509_STORE *
tls_ca_store_new(const struct tls_pem *pem, char *err, size_t err_len)
{
	X509_STORE *store = X509_STORE_new();

	if (store == NULL || each_certificate(pem->ca, pem->ca_len, add_to_store, store) <= 0) {
		snprintf(err, err_len, "--tls-client-ca: no certificate, or a bad one");
		X509_STORE_free(store);
		return NULL;
	}
	return store;
}

/* The credentials in a new memfd, for the worker after SIGHUP: three u32 lengths (cert,
 * key, CA), then the bytes. Returns the fd (read back with tls_pem_from_fd), or -1. */
int
tls_pem_to_fd(const struct tls_pem *pem)
{
	uint32_t lens[3] = {(uint32_t)pem->cert_len, (uint32_t)pem->key_len, (uint32_t)pem->ca_len};
	int fd = memfd_create("sockrpc-tls", MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	if (write(fd, lens, sizeof(lens)) != (ssize_t)sizeof(lens) ||
	    write(fd, pem->cert, pem->cert_len) != (ssize_t)pem->cert_len ||
	    write(fd, pem->key, pem->key_len) != (ssize_t)pem->key_len ||
	    write(fd, pem->ca, pem->ca_len) != (ssize_t)pem->ca_len ||
	    lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static char *
read_part(int fd, uint32_t len)
{
	char *buf;
	size_t got = 0;
	ssize_t n;

	if (len > TLS_PEM_MAX || (buf = malloc((size_t)len + 1)) == NULL)
		return NULL;
	while (got < len && (n = read(fd, buf + got, len - got)) > 0)
		got += (size_t)n;
	if (got != len) {
		free(buf);
		return NULL;
	}
	buf[len] = '\0';
	return buf;
}

/* Reads what tls_pem_to_fd wrote; closes fd. 0, or -1 (out cleared). */
int
tls_pem_from_fd(int fd, struct tls_pem *out)
{
	uint32_t lens[3];

	memset(out, 0, sizeof(*out));
	if (read(fd, lens, sizeof(lens)) != (ssize_t)sizeof(lens) ||
	    (out->cert = read_part(fd, lens[0])) == NULL ||
	    (out->key = read_part(fd, lens[1])) == NULL ||
	    (out->ca = read_part(fd, lens[2])) == NULL) {
		close(fd);
		tls_pem_clear(out);
		return -1;
	}
	out->cert_len = lens[0];
	out->key_len = lens[1];
	out->ca_len = lens[2];
	close(fd);
	return 0;
}
