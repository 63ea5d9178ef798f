/*
 * main.c - the `sockrpc` command: parses options, picks the command, and turns
 * library errors into one line on stderr and a documented exit code. The
 * commands themselves are commands.c's; nothing here talks to the daemon.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cli.h"

struct command {
	const char *name;
	const char *sub; /* second word ("udp send"), or NULL */
	int (*run)(const struct options *o, int argc, char **argv);
};

static const struct command commands[] = {
    {"connect", NULL, cmd_connect}, {"listen", NULL, cmd_listen},
    {"udp", "send", cmd_udp_send},  {"udp", "listen", cmd_udp_listen},
    {"resolve", NULL, cmd_resolve}, {"status", NULL, cmd_status},
    {"run", NULL, cmd_run},
};

enum { OPT_SOCKET = 256, OPT_TIMEOUT, OPT_FAMILY, OPT_LINES, OPT_COUNT, OPT_VERSION, OPT_NO_NETNS };

static const struct option long_options[] = {
    {"socket", required_argument, NULL, OPT_SOCKET},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"family", required_argument, NULL, OPT_FAMILY},
    {"verbose", no_argument, NULL, 'v'},
    {"keep", no_argument, NULL, 'k'},
    {"lines", no_argument, NULL, OPT_LINES},
    {"count", required_argument, NULL, OPT_COUNT},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"no-netns", no_argument, NULL, OPT_NO_NETNS},
    {NULL, 0, NULL, 0},
};

static void usage(FILE *f);
static int parse_long(const char *text, long min, long max, long *out);

int
main(int argc, char **argv)
{
	struct options o;
	const struct command *cmd = NULL;
	long n;
	int ch;

	memset(&o, 0, sizeof(o));
	o.timeout_ms = -1;
	o.family = AF_UNSPEC;
	/* A peer or a stdout reader that goes away must be an error value, not a death. */
	signal(SIGPIPE, SIG_IGN);

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":46hkv", long_options, NULL)) != -1) {
		switch (ch) {
		case '4':
			o.family = AF_INET;
			break;
		case '6':
			o.family = AF_INET6;
			break;
		case OPT_FAMILY:
			if (strcmp(optarg, "4") == 0)
				o.family = AF_INET;
			else if (strcmp(optarg, "6") == 0)
				o.family = AF_INET6;
			else
				return cli_usage_error("--family takes 4 or 6, not '%s'", optarg);
			break;
		case OPT_SOCKET:
			o.socket_path = optarg;
			break;
		case OPT_TIMEOUT:
			if (parse_long(optarg, 0, INT_MAX, &n) == -1)
				return cli_usage_error("--timeout takes milliseconds, not '%s'",
				                       optarg);
			o.timeout_ms = (int)n;
			break;
		case 'v':
			o.verbose = true;
			break;
		case 'k':
			o.keep = true;
			break;
		case OPT_LINES:
			o.lines = true;
			break;
		case OPT_COUNT:
			if (parse_long(optarg, 1, LONG_MAX, &n) == -1)
				return cli_usage_error("--count takes a positive number, not '%s'",
				                       optarg);
			o.count = n;
			break;
		case OPT_NO_NETNS:
			o.no_netns = true;
			break;
		case 'h':
			usage(stdout);
			return CLI_EXIT_OK;
		case OPT_VERSION:
			printf("sockrpc %s\n", SR_VERSION);
			return CLI_EXIT_OK;
		case ':':
			return cli_usage_error("%s needs an argument", argv[optind - 1]);
		default:
			if (optopt != 0)
				return cli_usage_error("unknown option -%c", optopt);
			return cli_usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		return cli_usage_error("no command given");

	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, argv[0]) != 0)
			continue;
		if (commands[i].sub != NULL && (argc < 2 || strcmp(commands[i].sub, argv[1]) != 0))
			continue;
		cmd = &commands[i];
		break;
	}
	if (cmd == NULL) {
		if (strcmp(argv[0], "udp") == 0)
			return cli_usage_error("udp takes 'send' or 'listen'");
		return cli_usage_error("unknown command '%s'", argv[0]);
	}
	if (o.keep && cmd->run != cmd_listen)
		return cli_usage_error("--keep is only for listen");
	if (o.lines && cmd->run != cmd_udp_send)
		return cli_usage_error("--lines is only for udp send");
	if (o.count != 0 && cmd->run != cmd_udp_listen)
		return cli_usage_error("--count is only for udp listen");
	if (o.no_netns && cmd->run != cmd_run)
		return cli_usage_error("--no-netns is only for run");
	argc -= cmd->sub != NULL ? 2 : 1;
	argv += cmd->sub != NULL ? 2 : 1;
	return cmd->run(&o, argc, argv);
}

/* Prints e on stderr and returns the exit code for it. */
int
cli_fail(const sr_error *e)
{
	fprintf(stderr, "sockrpc: %s\n", e->message[0] != '\0' ? e->message : sr_strerror(e->code));
	switch (e->code) {
	case SR_EDAEMON:
		return CLI_EXIT_DAEMON;
	case SR_EDENIED:
		return CLI_EXIT_DENIED;
	case SR_ETIMEDOUT:
		return CLI_EXIT_TIMEOUT;
	case SR_EOS:
		/* A connect that timed out in the kernel is a timeout to the user. */
		return e->sys_errno == ETIMEDOUT ? CLI_EXIT_TIMEOUT : CLI_EXIT_OS;
	default:
		return CLI_EXIT_OTHER;
	}
}

int
cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("sockrpc: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see sockrpc --help)\n", stderr);
	return CLI_EXIT_USAGE;
}

/* sr_error for failures found here rather than by the library (local I/O). */
void
cli_seterr(sr_error *err, int code, int sys_errno, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	err->code = code;
	err->sys_errno = sys_errno;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

static void
usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: sockrpc [options] connect HOST PORT\n"
	    "       sockrpc [options] listen [HOST] PORT\n"
	    "       sockrpc [options] udp send HOST PORT\n"
	    "       sockrpc [options] udp listen [HOST] PORT\n"
	    "       sockrpc [options] resolve NAME\n"
	    "       sockrpc [options] status\n"
	    "       sockrpc [options] run [--no-netns] -- PROGRAM [ARGS...]\n"
	    "\n"
	    "Netcat through sockrpcd: sockets are opened by the daemon, as its policy\n"
	    "allows, and bytes are relayed between them and stdin/stdout.\n"
	    "\n"
	    "  connect HOST PORT     connect over TCP; stdin goes to the socket, the socket to\n"
	    "                        stdout; at the end of stdin the write side is shut down\n"
	    "                        and output goes on until the peer closes; if the peer\n"
	    "                        closes first, the rest of stdin is still sent unless\n"
	    "                        stdin is a terminal\n"
	    "  listen [HOST] PORT    accept one TCP connection and relay it as connect does;\n"
	    "                        HOST defaults to the loopback address, '*' means any;\n"
	    "                        PORT 0 picks a free port (see -v)\n"
	    "  udp send HOST PORT    send all of stdin as one datagram\n"
	    "  udp listen [HOST] PORT\n"
	    "                        write each datagram's payload to stdout\n"
	    "  resolve NAME          print the canonical name, then every address, one a line\n"
	    "  status                print the daemon's socket, this session's id and the\n"
	    "                        library version\n"
	    "  run -- PROGRAM [ARGS...]\n"
	    "                        run an unmodified program in a network namespace of its\n"
	    "                        own with its inet socket calls trapped (seccomp) and\n"
	    "                        answered through the daemon: a connect the policy denies\n"
	    "                        fails with EACCES; exit status: the program's (127: it\n"
	    "                        could not be started)\n"
	    "\n"
	    "Options:\n"
	    "      --socket PATH     the daemon's socket (default: $SOCKRPC_SOCKET, else\n"
	    "                        %s)\n"
	    "      --timeout MS      connect timeout, and how long a receive or an accept\n"
	    "                        may wait (SO_RCVTIMEO); 0 means no limit\n"
	    "  -4, -6, --family 4|6  IPv4 or IPv6 (default: IPv6 for a host with ':', else\n"
	    "                        IPv4; resolve: both)\n"
	    "  -v, --verbose         say on stderr where we listen, who connected, who sent\n"
	    "  -k, --keep            listen: accept connections one after another, forever\n"
	    "      --lines           udp send: one datagram per line (newline included)\n"
	    "      --count N         udp listen: stop after N datagrams\n"
	    "      --no-netns        run: no network namespace (where none can be made);\n"
	    "                        only the filter then keeps the program off the network\n"
	    "  -h, --help            this text\n"
	    "      --version         the version\n"
	    "\n"
	    "Only data is written to stdout. Exit status:\n"
	    "  0  success\n"
	    "  1  usage error\n"
	    "  2  the daemon is unreachable or went away\n"
	    "  3  denied by the daemon's policy\n"
	    "  4  refused, reset or another operating-system error (also local I/O)\n"
	    "  5  timed out\n"
	    "  6  any other error\n",
	    sr_default_socket_path());
}

/* Parses a whole decimal number within [min, max]; -1 if it is not one. */
static int
parse_long(const char *text, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (text[0] == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}
