/*
 * tls_sigpipe.c - for test_tls_abuse.sh: a libsockrpc client over TLS (the endpoint in
 * argv[1], credentials from SOCKRPC_TLS_*), SIGPIPE at its default disposition (death),
 * that opens its session, says "open", waits for a line on stdin (the test kills the
 * daemon meanwhile), then makes calls: each must fail with SR_EDAEMON, and the process
 * must not be killed by SIGPIPE. Exit 0 when so.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>

#include "sockrpc.h"

int
main(int argc, char **argv)
{
	char line[16];
	sr_error e;
	sr_client *c;

	signal(SIGPIPE, SIG_DFL);
	if (argc != 2 || (c = sr_client_open(argv[1], &e)) == NULL) {
		fprintf(stderr, "tls_sigpipe: cannot open: %s\n", argc == 2 ? e.message : "usage");
		return 2;
	}
	printf("open\n");
	fflush(stdout);
	if (fgets(line, sizeof(line), stdin) == NULL)
		return 2;
	for (int i = 0; i < 20; i++) {
		sr_socket *s = sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &e);

		if (s != NULL || e.code != SR_EDAEMON) {
			fprintf(stderr, "tls_sigpipe: call %d did not fail with SR_EDAEMON\n", i);
			return 1;
		}
		sr_socket_free(s);
	}
	printf("calls failed with SR_EDAEMON: %s\n", e.message);
	sr_client_close(c);
	return 0;
}
