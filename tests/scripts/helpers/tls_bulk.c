/*
 * tls_bulk.c - for test_tls_bulk.sh: a libsockrpc client over TLS (the endpoint in argv[1],
 * credentials from SOCKRPC_TLS_*) that moves pseudo-random bytes through the broker to an
 * echo server of its own on 127.0.0.1 and checks every byte that comes back.
 *
 *   lockstep: chunks of odd sizes (1 byte to just over one frame), each echoed and read
 *     back in full, with odd receive lengths, before the next is sent: after each chunk
 *     the client waits and sends nothing, so what the daemon has left inside OpenSSL
 *     (decrypted or read ahead) must be served without more bytes on the socket.
 *   stream N: N MiB sent in odd chunk sizes by one thread while another reads the echo
 *     back with odd lengths: records split across reads, writes that wait for room.
 *
 * Exit 0 when every byte matched, 1 on a mismatch or failure (said on stderr), 2 on a
 * usage error. An alarm ends a stall (a byte the daemon held back) as a failure.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockrpc.h"

#define STALL_SECONDS 30

static void
on_alarm(int sig)
{
	static const char msg[] = "tls_bulk: stalled: no progress in 30 s\n";

	(void)sig;
	write(2, msg, sizeof(msg) - 1);
	_exit(1);
}

/* Chunk and receive sizes around the record (16 KiB), read room (64 KiB) and frame (1 MiB)
 * boundaries, and small ones. */
static const size_t send_sizes[] = {1,     7,      16383,  16384,   16385,   65535,   65536,
                                    65537, 72000,  131071, 200003,  1048575, 1048576, 1048577,
                                    3,     300001, 2,      1100000, 40000,   999};
static const long recv_sizes[] = {1, 4097, 16389, 70001, 1048579, 5, 262147, 65536};

/* The byte at stream offset i: the same on both sides, different for nearby offsets. */
static uint8_t
byte_at(uint64_t i)
{
	uint64_t x = i * 0x9e3779b97f4a7c15ull;

	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	return (uint8_t)(x >> 32);
}

static void
fill(uint8_t *buf, uint64_t at, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = byte_at(at + i);
}

/* Reads len bytes of the echo, checking them against the stream from *at on. 0 or -1. */
static int
read_back(sr_socket *s, uint64_t *at, uint64_t len, unsigned *k)
{
	while (len > 0) {
		long want = recv_sizes[(*k)++ % (sizeof(recv_sizes) / sizeof(recv_sizes[0]))];
		sr_error e;
		size_t got;
		char *data;

		if (sr_receive(s, want, 0, &data, &got, &e) != 0) {
			fprintf(stderr, "tls_bulk: receive at byte %llu: %s\n",
			        (unsigned long long)*at, e.message);
			return -1;
		}
		if (got == 0 || got > len) {
			fprintf(stderr,
			        "tls_bulk: receive at byte %llu brought %zu bytes, %llu due\n",
			        (unsigned long long)*at, got, (unsigned long long)len);
			free(data);
			return -1;
		}
		for (size_t i = 0; i < got; i++) {
			if ((uint8_t)data[i] != byte_at(*at + i)) {
				fprintf(stderr, "tls_bulk: byte %llu differs\n",
				        (unsigned long long)(*at + i));
				free(data);
				return -1;
			}
		}
		free(data);
		*at += got;
		len -= got;
	}
	return 0;
}

static void *
echo_one(void *arg)
{
	static uint8_t buf[100003]; /* an odd size: reads and writes split differently */
	int lfd = (int)(intptr_t)arg, fd = accept(lfd, NULL, NULL);
	ssize_t n;

	while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t off = 0, w; off < n; off += w)
			if ((w = write(fd, buf + off, (size_t)(n - off))) <= 0)
				goto out;
	}
out:
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* An echo server for one connection on 127.0.0.1; returns its port, or -1. */
static int
echo_start(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	pthread_t t;

	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(fd, 1) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) != 0 ||
	    pthread_create(&t, NULL, echo_one, (void *)(intptr_t)fd) != 0)
		return -1;
	pthread_detach(t);
	return ntohs(sin.sin_port);
}

struct sender {
	sr_socket *s;
	uint64_t total;
	int rc;
};

static void *
send_all(void *arg)
{
	struct sender *w = arg;
	uint8_t *buf = malloc(2u << 20);
	uint64_t at = 0;
	unsigned k = 0;

	w->rc = buf == NULL ? -1 : 0;
	while (w->rc == 0 && at < w->total) {
		size_t len = send_sizes[k++ % (sizeof(send_sizes) / sizeof(send_sizes[0]))];
		sr_error e;

		if (len > w->total - at)
			len = (size_t)(w->total - at);
		fill(buf, at, len);
		if (sr_send(w->s, buf, len, 0, &e) != (long)len) {
			fprintf(stderr, "tls_bulk: send at byte %llu: %s\n", (unsigned long long)at,
			        e.message);
			w->rc = -1;
		}
		at += len;
	}
	free(buf);
	return NULL;
}

int
main(int argc, char **argv)
{
	uint8_t *buf = malloc(2u << 20);
	uint64_t at = 0, back = 0;
	unsigned k = 0;
	sr_client *c;
	sr_socket *s;
	sr_error e;
	int port;

	if (argc < 3 || buf == NULL ||
	    (strcmp(argv[2], "lockstep") != 0 && (strcmp(argv[2], "stream") != 0 || argc != 4))) {
		fprintf(stderr, "usage: tls_bulk tls://HOST:PORT lockstep|stream MIB\n");
		return 2;
	}
	signal(SIGALRM, on_alarm);
	alarm(STALL_SECONDS);
	if ((port = echo_start()) < 0) {
		perror("tls_bulk: echo server");
		return 1;
	}
	if ((c = sr_client_open(argv[1], &e)) == NULL ||
	    (s = sr_socket_connect(c, AF_INET, SOCK_STREAM, 0, SR_IP_LOCAL, port, 10000, &e)) ==
	        NULL) {
		fprintf(stderr, "tls_bulk: cannot connect through %s: %s\n", argv[1], e.message);
		return 1;
	}
	if (strcmp(argv[2], "lockstep") == 0) {
		for (size_t i = 0; i < sizeof(send_sizes) / sizeof(send_sizes[0]); i++) {
			size_t len = send_sizes[i];

			fill(buf, at, len);
			if (sr_send(s, buf, len, 0, &e) != (long)len) {
				fprintf(stderr, "tls_bulk: send of %zu: %s\n", len, e.message);
				return 1;
			}
			at += len;
			if (read_back(s, &back, len, &k) != 0)
				return 1;
		}
	} else {
		struct sender w = {.s = s, .total = strtoull(argv[3], NULL, 10) << 20};
		pthread_t t;

		if (w.total == 0 || pthread_create(&t, NULL, send_all, &w) != 0)
			return 2;
		if (read_back(s, &back, w.total, &k) != 0)
			return 1;
		pthread_join(t, NULL);
		if (w.rc != 0)
			return 1;
		at = w.total;
	}
	printf("%llu bytes echoed intact\n", (unsigned long long)back);
	sr_socket_free(s);
	sr_client_close(c);
	free(buf);
	return 0;
}
