/*
 * cli.h - what the files of the `sockrpc` command share: the parsed options,
 * the exit codes, and the prototypes each file exports. main.c parses and
 * dispatches, commands.c runs one command, relay.c pumps bytes between a
 * connected handle and stdin/stdout.
 */
#ifndef SOCKRPC_CLI_H
#define SOCKRPC_CLI_H

#include <stdbool.h>

#include "sockrpc.h"

/* Exit codes, documented in --help; scripts rely on them. */
enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_USAGE = 1,
	CLI_EXIT_DAEMON = 2,  /* SR_EDAEMON: the daemon is unreachable or went away */
	CLI_EXIT_DENIED = 3,  /* SR_EDENIED */
	CLI_EXIT_OS = 4,      /* SR_EOS or a local I/O error: refused, reset, unreachable... */
	CLI_EXIT_TIMEOUT = 5, /* SR_ETIMEDOUT, or an OS error that is a timeout */
	CLI_EXIT_OTHER = 6,
};

/* One read from stdin or one receive: 64 KiB keeps calls few and memory flat. */
#define CLI_CHUNK (64 * 1024)

struct options {
	const char *socket_path; /* NULL: $SOCKRPC_SOCKET, else the library default */
	int timeout_ms;          /* -1: none given */
	int family;              /* AF_UNSPEC: none given */
	bool verbose;
	bool keep;     /* listen: accept one connection after another */
	bool lines;    /* udp send: one datagram per line */
	long count;    /* udp listen: stop after this many datagrams; 0: never */
	bool no_netns; /* run: no network namespace of its own for the program */
};

/* main.c */
int cli_fail(const sr_error *e);
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_seterr(sr_error *err, int code, int sys_errno, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* commands.c */
int cmd_connect(const struct options *o, int argc, char **argv);
int cmd_listen(const struct options *o, int argc, char **argv);
int cmd_udp_send(const struct options *o, int argc, char **argv);
int cmd_udp_listen(const struct options *o, int argc, char **argv);
int cmd_resolve(const struct options *o, int argc, char **argv);
int cmd_status(const struct options *o, int argc, char **argv);

/* run.c */
int cmd_run(const struct options *o, int argc, char **argv);

/* relay.c */
int relay_run(sr_socket *s, int in_fd, int out_fd, sr_error *err);
int write_all(int fd, const void *buf, size_t len);

#endif
