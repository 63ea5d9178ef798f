/*
 * test_tls_identity.c - who a TLS peer is, from its certificate (daemon/tls_identity.c):
 * principals in the order principal= tries them (URI SANs, DNS SANs, CN), a name with a
 * NUL byte in it or too long to keep skipped (never cut), the SPKI hash equal to SHA-256 of
 * the DER SubjectPublicKeyInfo; the peer's address as "ADDR:PORT" / "[ADDR]:PORT".
 */
#include <arpa/inet.h>
#include <check.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "sockrpcd.h"

static void
add_san(GENERAL_NAMES *names, int type, const char *value, int len)
{
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();

	ck_assert(g && s && ASN1_STRING_set(s, value, len) == 1);
	GENERAL_NAME_set0_value(g, type, s);
	ck_assert(sk_GENERAL_NAME_push(names, g) > 0);
}

/* A self-signed certificate with CN and these SANs (NULL-terminated lists). */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, const char *const *uris, const char *const *dns,
          bool nul_dns)
{
	X509 *x = X509_new();
	GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
	X509_NAME *subject = X509_get_subject_name(x);

	ck_assert_ptr_nonnull(x);
	X509_set_version(x, 2);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	if (cn != NULL)
		X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
		                           -1, -1, 0);
	X509_set_issuer_name(x, subject);
	/* DNS first and URIs last in the certificate: the order of the principals must not
	 * follow the certificate's. */
	for (int i = 0; dns != NULL && dns[i] != NULL; i++)
		add_san(names, GEN_DNS, dns[i], (int)strlen(dns[i]));
	if (nul_dns)
		add_san(names, GEN_DNS, "evil.example\0.allowed.example", 29);
	for (int i = 0; uris != NULL && uris[i] != NULL; i++)
		add_san(names, GEN_URI, uris[i], (int)strlen(uris[i]));
	if (sk_GENERAL_NAME_num(names) > 0)
		ck_assert(X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, 0) == 1);
	GENERAL_NAMES_free(names);
	ck_assert(X509_sign(x, key, EVP_sha256()) > 0);
	return x;
}

static EVP_PKEY *
make_key(void)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");

	ck_assert_ptr_nonnull(key);
	return key;
}

START_TEST(principals_in_order)
{
	const char *uris[] = {"spiffe://example.org/sandbox/42", "urn:x:1", NULL};
	const char *dns[] = {"a.example", "b.example", NULL};
	EVP_PKEY *key = make_key();
	X509 *x = make_cert(key, "the-cn", uris, dns, false);
	struct identity id;

	memset(&id, 0, sizeof(id));
	ck_assert_int_eq(tls_identity_from_cert(x, &id), 0);
	ck_assert_int_eq(id.transport, IDENTITY_TLS);
	ck_assert_int_eq(id.n_principals, 5);
	ck_assert_str_eq(id.principals[0], "spiffe://example.org/sandbox/42");
	ck_assert_str_eq(id.principals[1], "urn:x:1");
	ck_assert_str_eq(id.principals[2], "a.example");
	ck_assert_str_eq(id.principals[3], "b.example");
	ck_assert_str_eq(id.principals[4], "the-cn");
	X509_free(x);
	EVP_PKEY_free(key);
}
END_TEST

START_TEST(bad_names_are_skipped_not_cut)
{
	char long_uri[IDENTITY_PRINCIPAL_MAX + 20];
	const char *uris[] = {long_uri, NULL};
	EVP_PKEY *key = make_key();
	X509 *x;
	struct identity id;

	memset(long_uri, 'u', sizeof(long_uri) - 1);
	long_uri[sizeof(long_uri) - 1] = '\0';
	x = make_cert(key, "cn-only", uris, NULL, true);
	memset(&id, 0, sizeof(id));
	ck_assert_int_eq(tls_identity_from_cert(x, &id), 0);
	/* Neither the overlong URI nor the DNS name with a NUL in it: only the CN. */
	ck_assert_int_eq(id.n_principals, 1);
	ck_assert_str_eq(id.principals[0], "cn-only");
	X509_free(x);
	EVP_PKEY_free(key);
}
END_TEST

START_TEST(spki_hash_and_no_names)
{
	EVP_PKEY *key = make_key();
	X509 *x = make_cert(key, NULL, NULL, NULL, false);
	unsigned char *der = NULL, want[32];
	unsigned int len = 0;
	int der_len = i2d_PUBKEY(key, &der);
	struct identity id;

	ck_assert_int_gt(der_len, 0);
	ck_assert(EVP_Digest(der, (size_t)der_len, want, &len, EVP_sha256(), NULL) == 1);
	OPENSSL_free(der);
	memset(&id, 0, sizeof(id));
	ck_assert_int_eq(tls_identity_from_cert(x, &id), 0);
	ck_assert_int_eq(id.n_principals, 0);
	ck_assert(memcmp(id.spki_sha256, want, 32) == 0);
	X509_free(x);
	EVP_PKEY_free(key);
}
END_TEST

START_TEST(peer_address)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(7443)};
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
	struct identity id;

	inet_pton(AF_INET, "169.254.77.2", &sin.sin_addr);
	inet_pton(AF_INET6, "2001:db8::2", &sin6.sin6_addr);
	tls_identity_set_address(&id, (struct sockaddr *)&sin, sizeof(sin));
	ck_assert_str_eq(id.peer_address, "169.254.77.2:7443");
	tls_identity_set_address(&id, (struct sockaddr *)&sin6, sizeof(sin6));
	ck_assert_str_eq(id.peer_address, "[2001:db8::2]:443");
}
END_TEST

Suite *
tls_identity_suite(void)
{
	Suite *s = suite_create("tls_identity");
	TCase *tc = tcase_create("certificate");

	tcase_add_test(tc, principals_in_order);
	tcase_add_test(tc, bad_names_are_skipped_not_cut);
	tcase_add_test(tc, spki_hash_and_no_names);
	tcase_add_test(tc, peer_address);
	suite_add_tcase(s, tc);
	return s;
}
