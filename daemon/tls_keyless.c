/*
 * tls_keyless.c - the daemon's TLS private key stays in the privileged parent. The
 * worker, which runs every handshake and parses every client byte, holds a stand-in: the
 * certificate's public EC key with a signing method that asks the parent to sign the
 * handshake's digest (PRIV_TLS_SIGN), as OpenBSD's relayd keeps keys out of its relays. A
 * compromised worker can have digests signed while the parent lives (it could already
 * answer clients as the daemon), but cannot take the key away. EC keys of up to 384 bits
 * only (a signature must fit one reply); an RSA or P-521 key stays in the worker, as the
 * start-up log says.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* EC_KEY_METHOD: OpenSSL 3 still honours it */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "sockrpcd.h"

static tls_sign_fn signer;
static EC_KEY_METHOD *method;

/* Worker: the function that has a digest signed (priv_tls_sign). */
void
tls_keyless_set_signer(tls_sign_fn fn)
{
	signer = fn;
}

/* Whether key (the certificate's) can be kept in the parent: EC, at most 384 bits. */
bool
tls_keyless_possible(EVP_PKEY *key)
{
	return key != NULL && EVP_PKEY_get_base_id(key) == EVP_PKEY_EC &&
	       EVP_PKEY_get_bits(key) <= 384;
}

/* SHA-256 of a public key's SubjectPublicKeyInfo: which key a signature is asked of. */
static int
spki_hash(const unsigned char *der, int len, uint8_t out[32])
{
	unsigned int n = 0;

	return len > 0 && EVP_Digest(der, (size_t)len, out, &n, EVP_sha256(), NULL) == 1 && n == 32
	           ? 0
	           : -1;
}

static int
sign_via_parent(int type, const unsigned char *dgst, int dlen, unsigned char *sig,
                unsigned int *siglen, const BIGNUM *kinv, const BIGNUM *r, EC_KEY *eckey)
{
	size_t n = (size_t)ECDSA_size(eckey);
	unsigned char *der = NULL;
	uint8_t which[32];
	int len = i2d_EC_PUBKEY(eckey, &der), bad = spki_hash(der, len, which);

	OPENSSL_free(der);
	/* A handshake begun before a reload signs with the key it started with. */
	if (signer == NULL || dlen <= 0 || bad || signer(dgst, (size_t)dlen, which, sig, &n) != 0)
		return 0;
	*siglen = (unsigned int)n;
	return 1;
}

static ECDSA_SIG *
sign_sig_via_parent(const unsigned char *dgst, int dlen, const BIGNUM *kinv, const BIGNUM *r,
                    EC_KEY *eckey)
{
	unsigned char der[160];
	const unsigned char *at = der;
	unsigned int len = 0;

	if ((size_t)ECDSA_size(eckey) > sizeof(der) ||
	    sign_via_parent(0, dgst, dlen, der, &len, kinv, r, eckey) != 1)
		return NULL;
	return d2i_ECDSA_SIG(NULL, &at, len);
}

/*
 * The stand-in for cert's private key: its public key, signing through the parent.
 * Returns a new key (EVP_PKEY_free), or NULL when the key cannot be kept in the parent.
 */
EVP_PKEY *
tls_keyless_key(X509 *cert)
{
	EVP_PKEY *pub = X509_get0_pubkey(cert), *out = NULL;
	EC_KEY *ec;

	if (!tls_keyless_possible(pub))
		return NULL;
	if (method == NULL) {
		method = EC_KEY_METHOD_new(EC_KEY_get_default_method());
		if (method == NULL)
			return NULL;
		EC_KEY_METHOD_set_sign(method, sign_via_parent, NULL, sign_sig_via_parent);
	}
	if ((ec = EVP_PKEY_get1_EC_KEY(pub)) == NULL)
		return NULL;
	/* OpenSSL 3 sees a key with its own method as "foreign" and signs through it. */
	if (EC_KEY_set_method(ec, method) != 1 || (out = EVP_PKEY_new()) == NULL ||
	    EVP_PKEY_assign_EC_KEY(out, ec) != 1) {
		EVP_PKEY_free(out);
		EC_KEY_free(ec);
		return NULL;
	}
	return out;
}

/* Parent: whether key is the one whose public key hashes to which. */
bool
tls_key_is(EVP_PKEY *key, const uint8_t which[32])
{
	unsigned char *der = NULL;
	uint8_t hash[32];
	int len = key != NULL ? i2d_PUBKEY(key, &der) : -1, bad = spki_hash(der, len, hash);

	OPENSSL_free(der);
	return !bad && memcmp(hash, which, 32) == 0;
}

/* Parent: signs a handshake digest with the real key. 0, or -errno. */
int
tls_sign_digest(EVP_PKEY *key, const uint8_t *dgst, size_t len, uint8_t *sig, size_t *sig_len)
{
	EVP_PKEY_CTX *ctx;
	int r = -EINVAL;

	if (key == NULL || len == 0 || len > 64)
		return -EINVAL;
	if ((ctx = EVP_PKEY_CTX_new(key, NULL)) != NULL && EVP_PKEY_sign_init(ctx) == 1 &&
	    EVP_PKEY_sign(ctx, sig, sig_len, dgst, len) == 1)
		r = 0;
	EVP_PKEY_CTX_free(ctx);
	return r;
}

/* Parent: the private key of pem, checked against its certificate. NULL with err. */
EVP_PKEY *
tls_private_key(const struct tls_pem *pem, char *err, size_t err_len)
{
	SSL_CTX *check = tls_server_context_new(pem, false, err, err_len);
	EVP_PKEY *key = NULL;

	if (check != NULL && (key = SSL_CTX_get0_privatekey(check)) != NULL)
		EVP_PKEY_up_ref(key);
	SSL_CTX_free(check);
	return key;
}
