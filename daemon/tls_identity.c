/*
 * tls_identity.c - who a TLS peer is, from its verified certificate: the URI SANs (a
 * SPIFFE ID), then the DNS SANs, then the subject CN, in the order principal= tries them,
 * and the SHA-256 of the SubjectPublicKeyInfo for spki=. The worker reads it after the
 * handshake; the privileged parent reads it again from the chain it verified itself.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "sockrpcd.h"

static void add_principal(struct identity *id, const unsigned char *s, int len);

/* Fills id's TLS facts from cert (the rest of *id is left alone). Returns 0, or -1 if
 * the key cannot be hashed. Names with a NUL byte in them, or longer than fits, are
 * skipped: a truncated name could match a pattern the whole does not. */
int
tls_identity_from_cert(X509 *cert, struct identity *id)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	X509_NAME *subject = X509_get_subject_name(cert);
	unsigned char *der = NULL;
	unsigned int md_len = 0;
	int der_len, n, pass, loc;

	id->transport = IDENTITY_TLS;
	id->n_principals = 0;
	for (pass = 0; pass < 2 && sans != NULL; pass++) {
		n = sk_GENERAL_NAME_num(sans);
		for (int i = 0; i < n; i++) {
			GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);

			if (pass == 0 && g->type == GEN_URI)
				add_principal(id,
				              ASN1_STRING_get0_data(g->d.uniformResourceIdentifier),
				              ASN1_STRING_length(g->d.uniformResourceIdentifier));
			else if (pass == 1 && g->type == GEN_DNS)
				add_principal(id, ASN1_STRING_get0_data(g->d.dNSName),
				              ASN1_STRING_length(g->d.dNSName));
		}
	}
	GENERAL_NAMES_free(sans);
	loc = subject ? X509_NAME_get_index_by_NID(subject, NID_commonName, -1) : -1;
	if (loc >= 0) {
		ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, loc));
		unsigned char *utf8 = NULL;
		int len = ASN1_STRING_to_UTF8(&utf8, cn);

		if (len >= 0)
			add_principal(id, utf8, len);
		OPENSSL_free(utf8);
	}
	der_len = i2d_PUBKEY(X509_get0_pubkey(cert), &der);
	if (der_len <= 0 ||
	    EVP_Digest(der, (size_t)der_len, id->spki_sha256, &md_len, EVP_sha256(), NULL) != 1 ||
	    md_len != sizeof(id->spki_sha256)) {
		OPENSSL_free(der);
		return -1;
	}
	OPENSSL_free(der);
	return 0;
}

/* "ADDR:PORT", or "[ADDR]:PORT" for IPv6, into id->peer_address. */
void
tls_identity_set_address(struct identity *id, const struct sockaddr *sa, socklen_t len)
{
	address_describe(sa, len, id->peer_address, sizeof(id->peer_address));
}

static void
add_principal(struct identity *id, const unsigned char *s, int len)
{
	if (s == NULL || len <= 0 || len >= IDENTITY_PRINCIPAL_MAX ||
	    id->n_principals >= IDENTITY_MAX_PRINCIPALS || memchr(s, '\0', (size_t)len) != NULL)
		return;
	memcpy(id->principals[id->n_principals], s, (size_t)len);
	id->principals[id->n_principals][len] = '\0';
	id->n_principals++;
}
