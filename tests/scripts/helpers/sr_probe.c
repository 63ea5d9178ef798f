/*
 * sr_probe.c - a minimal libsockrpc client for the shell tests: says Hello to a daemon,
 * or has it bind a TCP socket, and prints what happened. Exit 0 on success, 1 on a
 * refused or failed call, 2 on bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sockrpc.h"

static int
usage(void)
{
	fprintf(stderr, "usage: sr_probe SOCKET hello\n"
	                "       sr_probe SOCKET bind HOST PORT\n");
	return 2;
}

static int
probe_bind(sr_client *c, const char *host, int port)
{
	sr_error err;
	sr_socket *s = sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &err);

	if (s == NULL) {
		printf("socket: %s (%s)\n", err.message, sr_strerror(err.code));
		return 1;
	}
	if (sr_bind(s, port, host, &err) != 0) {
		printf("bind: %s (%s)\n", err.message, sr_strerror(err.code));
		sr_socket_free(s);
		return 1;
	}
	printf("bound %s:%d\n", sr_socket_state(s)->host, sr_socket_state(s)->port);
	sr_socket_free(s);
	return 0;
}

int
main(int argc, char **argv)
{
	sr_error err;
	sr_client *c;
	int status;

	if (argc < 3)
		return usage();
	c = sr_client_open(argv[1], &err);
	if (c == NULL) {
		printf("connect: %s (%s)\n", err.message, sr_strerror(err.code));
		return 1;
	}
	if (argc == 3 && strcmp(argv[2], "hello") == 0) {
		printf("session %llu\n", sr_client_session_id(c));
		status = 0;
	} else if (argc == 5 && strcmp(argv[2], "bind") == 0) {
		status = probe_bind(c, argv[3], atoi(argv[4]));
	} else {
		status = usage();
	}
	sr_client_close(c);
	return status;
}
