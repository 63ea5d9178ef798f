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

#include <openssl/err.h>
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

/*
 * A server context for cert, key and the client CA bundle ca. Returns a new SSL_CTX
 * (SSL_CTX_free), or NULL with why in err.
 */
SSL_CTX *
tls_server_context_new(const char *cert, const char *key, const char *ca, bool ktls, char *err,
                       size_t err_len)
{
	STACK_OF(X509_NAME) * names;
	char why[256];
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

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
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		snprintf(err, err_len, "--tls-cert %s: %s", cert, tls_error_text(why, sizeof(why)));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		snprintf(err, err_len, "--tls-key %s: %s", key, tls_error_text(why, sizeof(why)));
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, err_len, "--tls-key %s does not match --tls-cert %s", key, cert);
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		snprintf(err, err_len, "--tls-client-ca %s: %s", ca,
		         tls_error_text(why, sizeof(why)));
		goto fail;
	}
	/* The CAs named to clients, so that one with several certificates picks ours. */
	if ((names = SSL_load_client_CA_file(ca)) != NULL)
		SSL_CTX_set_client_CA_list(ctx, names);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_verify_depth(ctx, TLS_VERIFY_DEPTH);
	ERR_clear_error();
	return ctx;
fail:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return NULL;
}

/* The CA bundle alone, for the privileged parent's own check of a session's certificate
 * (priv.c). Returns a new store (X509_STORE_free) or NULL with why in err. */
X509_STORE *
tls_ca_store_new(const char *ca, char *err, size_t err_len)
{
	X509_STORE *store = X509_STORE_new();
	char why[256];

	if (store == NULL || X509_STORE_load_file(store, ca) != 1) {
		snprintf(err, err_len, "--tls-client-ca %s: %s", ca,
		         tls_error_text(why, sizeof(why)));
		X509_STORE_free(store);
		return NULL;
	}
	return store;
}
