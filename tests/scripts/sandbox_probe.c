/*
 * sandbox_probe.c - run inside a network namespace by test_sandbox.sh: proves that a
 * direct TCP connection to HOST:PORT is impossible here, then that the same server is
 * reached through the daemon, with an echoed message intact.
 * Usage: sandbox_probe SOCKET HOST PORT. Exit 0 on the expected outcome, 1 otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockrpc.h"

static int
direct_connect_fails(const char *host, int port)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), r;

	inet_pton(AF_INET, host, &in.sin_addr);
	r = connect(fd, (struct sockaddr *)&in, sizeof(in));
	if (r == 0) {
		fprintf(stderr, "probe: a direct connection worked: this is no sandbox\n");
		close(fd);
		return 0;
	}
	printf("direct connect: %s\n", strerror(errno));
	close(fd);
	return 1;
}

int
main(int argc, char **argv)
{
	static const char message[] = "hello from the sandbox\n";
	sr_error err;
	sr_client *c;
	sr_socket *s;
	char *reply = NULL;
	size_t got = 0;

	if (argc != 4) {
		fprintf(stderr, "usage: sandbox_probe SOCKET HOST PORT\n");
		return 1;
	}
	if (!direct_connect_fails(argv[2], atoi(argv[3])))
		return 1;
	c = sr_client_open(argv[1], &err);
	if (c == NULL) {
		fprintf(stderr, "probe: %s\n", err.message);
		return 1;
	}
	s = sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &err);
	if (s == NULL || sr_connect(s, argv[2], atoi(argv[3]), 5000, &err) != 0 ||
	    sr_send(s, message, strlen(message), 0, &err) != (long)strlen(message) ||
	    sr_read(s, (long)strlen(message), &reply, &got, &err) != 0) {
		fprintf(stderr, "probe: brokered exchange failed: %s\n", err.message);
		return 1;
	}
	if (got != strlen(message) || memcmp(reply, message, got) != 0) {
		fprintf(stderr, "probe: echo mismatch (%zu bytes)\n", got);
		return 1;
	}
	printf("brokered echo: %.*s", (int)got, reply);
	free(reply);
	sr_socket_free(s);
	sr_client_close(c);
	return 0;
}
