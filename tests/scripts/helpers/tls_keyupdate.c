/*
 * tls_keyupdate.c - for test_tls_abuse.sh: a TLS 1.3 client that says Hello, then sends
 * GetOption calls in rounds, each round after a KeyUpdate that asks the daemon to update
 * its keys too (TLS 1.3 has no renegotiation; this is what it has instead). Every call
 * must be answered. Usage: tls_keyupdate HOST PORT CERT KEY CA ROUNDS. Exit 0 when all
 * replies came, 1 otherwise.
 */
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define GET_OPTION 12
#define CALLS_PER_ROUND 50

static size_t
frame(uint8_t *out, unsigned method, uint64_t id, const uint8_t *body, size_t len)
{
	out[0] = (uint8_t)(len >> 24), out[1] = (uint8_t)(len >> 16);
	out[2] = (uint8_t)(len >> 8), out[3] = (uint8_t)len;
	out[4] = (uint8_t)(method >> 8), out[5] = (uint8_t)method, out[6] = out[7] = 0;
	for (int i = 0; i < 8; i++)
		out[8 + i] = (uint8_t)(id >> (56 - 8 * i));
	memcpy(out + 16, body, len);
	return 16 + len;
}

/* Reads n whole reply frames. 0 or -1. */
static int
read_replies(SSL *ssl, int n)
{
	uint8_t hdr[16], body[4096];

	while (n-- > 0) {
		size_t len;

		if (SSL_read_ex(ssl, hdr, 16, &len) != 1 || len != 16)
			return -1; /* records hold whole frames here, but be strict */
		len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
		for (size_t got = 0, k; got < len; got += k)
			if (len > sizeof(body) || SSL_read_ex(ssl, body + got, len - got, &k) != 1)
				return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const uint8_t hello[] = {0x08, 0x01, 0x10, 0x00, 0x1a, 0x02, 'k', 'u'};
	static const uint8_t get_option[] = {0x08, 0xe7, 0x07}; /* handle 999: unknown */
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
	uint8_t buf[CALLS_PER_ROUND * 32];
	uint64_t id = 1;
	int fd, rounds;
	SSL_CTX *ctx;
	SSL *ssl;

	if (argc != 7 || getaddrinfo(argv[1], argv[2], &hints, &ai) != 0) {
		fprintf(stderr, "usage: tls_keyupdate HOST PORT CERT KEY CA ROUNDS\n");
		return 2;
	}
	rounds = atoi(argv[6]);
	ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, argv[3]) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, argv[4], SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_load_verify_locations(ctx, argv[5], NULL) != 1)
		return 2;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
		return 1;
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1 ||
	    SSL_write(ssl, buf, (int)frame(buf, 0, id++, hello, sizeof(hello))) <= 0 ||
	    read_replies(ssl, 1) != 0) {
		fprintf(stderr, "tls_keyupdate: no Hello reply\n");
		return 1;
	}
	for (int r = 0; r < rounds; r++) {
		size_t len = 0;

		if (SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) != 1) {
			fprintf(stderr, "tls_keyupdate: cannot schedule a key update\n");
			return 1;
		}
		for (int i = 0; i < CALLS_PER_ROUND; i++)
			len += frame(buf + len, GET_OPTION, id++, get_option, sizeof(get_option));
		if (SSL_write(ssl, buf, (int)len) <= 0 || read_replies(ssl, CALLS_PER_ROUND) != 0) {
			fprintf(stderr, "tls_keyupdate: round %d: %s\n", r + 1,
			        ERR_error_string(ERR_get_error(), NULL));
			return 1;
		}
	}
	printf("keyupdate: %d rounds of %d calls, each after a KeyUpdate both ways\n", rounds,
	       CALLS_PER_ROUND);
	SSL_shutdown(ssl);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	freeaddrinfo(ai);
	return 0;
}
