/*
 * commands.c - one function per `sockrpc` command: open a client, make and set
 * up the handle, hand it to relay.c or move datagrams, and turn the outcome
 * into an exit code. Argument words arrive here after main.c removed the
 * options and the command's name.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"

static sr_client *open_client(const struct options *o, sr_error *err);
static int family_for(const struct options *o, const char *host);
static int parse_port(const char *text, int *port);
static const char *endpoint(const char *host, int port, char *buf, size_t len);
static int apply_timeout(const struct options *o, sr_socket *s, sr_error *err);
static int bound_socket(const struct options *o, sr_client *c, int type, int argc, char **argv,
                        sr_socket **out, sr_error *err);
static int serve_one(const struct options *o, sr_socket *listener, sr_error *err);
static int read_all(int fd, char **out, size_t *out_len, sr_error *err);

int
cmd_connect(const struct options *o, int argc, char **argv)
{
	sr_client *c = NULL;
	sr_socket *s = NULL;
	sr_error e;
	char where[300];
	int port, rc = CLI_EXIT_OK;

	if (argc != 2)
		return cli_usage_error("connect takes HOST PORT");
	if (parse_port(argv[1], &port) == -1)
		return cli_usage_error("bad port '%s'", argv[1]);
	if ((c = open_client(o, &e)) == NULL ||
	    (s = sr_socket_new(c, family_for(o, argv[0]), SOCK_STREAM, 0, &e)) == NULL ||
	    apply_timeout(o, s, &e) == -1 ||
	    sr_connect(s, argv[0], port, o->timeout_ms >= 0 ? o->timeout_ms : -1, &e) == -1)
		goto fail;
	if (o->verbose)
		fprintf(stderr, "connected to %s\n", endpoint(argv[0], port, where, sizeof(where)));
	if (relay_run(s, STDIN_FILENO, STDOUT_FILENO, &e) == -1)
		goto fail;
	goto done;
fail:
	rc = cli_fail(&e);
done:
	sr_socket_free(s);
	sr_client_close(c);
	return rc;
}

int
cmd_listen(const struct options *o, int argc, char **argv)
{
	sr_client *c = NULL;
	sr_socket *s = NULL;
	sr_error e;
	int rc = CLI_EXIT_OK;

	if (argc != 1 && argc != 2)
		return cli_usage_error("listen takes [HOST] PORT");
	if ((c = open_client(o, &e)) == NULL)
		goto fail;
	if ((rc = bound_socket(o, c, SOCK_STREAM, argc, argv, &s, &e)) != CLI_EXIT_OK)
		goto done;
	if (sr_listen(s, -1, &e) == -1)
		goto fail;
	do {
		if ((rc = serve_one(o, s, &e)) == -1)
			goto fail; /* the listener failed: no use going on */
		if (rc != CLI_EXIT_OK && o->keep)
			rc = CLI_EXIT_OK; /* that connection failed, said so; serve the next */
	} while (o->keep);
	goto done;
fail:
	rc = cli_fail(&e);
done:
	sr_socket_free(s);
	sr_client_close(c);
	return rc;
}

/* All of stdin as one datagram, or (--lines) one datagram per line. */
int
cmd_udp_send(const struct options *o, int argc, char **argv)
{
	sr_client *c = NULL;
	sr_socket *s = NULL;
	char *data = NULL, where[300];
	size_t len = 0, cap = 0;
	ssize_t got;
	sr_error e;
	int port, rc = CLI_EXIT_OK;
	long datagrams = 0;

	if (argc != 2)
		return cli_usage_error("udp send takes HOST PORT");
	if (parse_port(argv[1], &port) == -1)
		return cli_usage_error("bad port '%s'", argv[1]);
	if ((c = open_client(o, &e)) == NULL ||
	    (s = sr_socket_new(c, family_for(o, argv[0]), SOCK_DGRAM, 0, &e)) == NULL)
		goto fail;
	if (!o->lines) {
		if (read_all(STDIN_FILENO, &data, &len, &e) == -1 ||
		    sr_send_to(s, argv[0], port, data, len, 0, &e) == -1)
			goto fail;
		datagrams = 1;
	} else {
		/* getdelim() returns the length, so a line may hold NUL bytes. */
		while ((got = getdelim(&data, &cap, '\n', stdin)) != -1) {
			if (sr_send_to(s, argv[0], port, data, (size_t)got, 0, &e) == -1)
				goto fail;
			len += (size_t)got;
			datagrams++;
		}
		if (ferror(stdin)) {
			cli_seterr(&e, SR_EOS, errno, "reading stdin: %s", strerror(errno));
			goto fail;
		}
	}
	if (o->verbose)
		fprintf(stderr, "sent %zu bytes in %ld datagram%s to %s\n", len, datagrams,
		        datagrams == 1 ? "" : "s", endpoint(argv[0], port, where, sizeof(where)));
	goto done;
fail:
	rc = cli_fail(&e);
done:
	free(data);
	sr_socket_free(s);
	sr_client_close(c);
	return rc;
}

/* Each datagram's payload to stdout, as is; the sender on stderr with -v. */
int
cmd_udp_listen(const struct options *o, int argc, char **argv)
{
	sr_client *c = NULL;
	sr_socket *s = NULL;
	char host[64], where[300], *buf;
	size_t len;
	sr_error e;
	int port, rc = CLI_EXIT_OK;

	if (argc != 1 && argc != 2)
		return cli_usage_error("udp listen takes [HOST] PORT");
	if ((c = open_client(o, &e)) == NULL)
		goto fail;
	if ((rc = bound_socket(o, c, SOCK_DGRAM, argc, argv, &s, &e)) != CLI_EXIT_OK)
		goto done;
	for (long n = 0; o->count == 0 || n < o->count; n++) {
		if (sr_receive_from(s, -1, 0, &buf, &len, host, &port, &e) == -1)
			goto fail;
		if (o->verbose)
			fprintf(stderr, "datagram from %s, %zu bytes\n",
			        endpoint(host, port, where, sizeof(where)), len);
		if (write_all(STDOUT_FILENO, buf, len) == -1) {
			cli_seterr(&e, SR_EOS, errno, "writing stdout: %s", strerror(errno));
			free(buf);
			goto fail;
		}
		free(buf);
	}
	goto done;
fail:
	rc = cli_fail(&e);
done:
	sr_socket_free(s);
	sr_client_close(c);
	return rc;
}

int
cmd_resolve(const struct options *o, int argc, char **argv)
{
	sr_addrinfo *ai = NULL;
	sr_client *c;
	sr_error e;
	int rc = CLI_EXIT_OK;

	if (argc != 1)
		return cli_usage_error("resolve takes NAME");
	if ((c = open_client(o, &e)) == NULL)
		return cli_fail(&e);
	if (sr_get_address_info(c, argv[0], NULL, o->family, &ai, &e) == -1) {
		rc = cli_fail(&e);
	} else if (ai->count == 0) {
		cli_seterr(&e, SR_EOS, 0, "%s has no address", argv[0]);
		rc = cli_fail(&e);
	} else {
		printf("%s\n", ai->canonical_name[0] != '\0' ? ai->canonical_name : argv[0]);
		for (size_t i = 0; i < ai->count; i++)
			printf("%s\n", ai->addresses[i].ip);
	}
	sr_addrinfo_free(ai);
	sr_client_close(c);
	return rc;
}

/*
 * The library keeps the daemon's version from Hello to itself, so status shows
 * what it can: where the daemon is, that it answers, and this session's id.
 */
int
cmd_status(const struct options *o, int argc, char **argv)
{
	const char *path;
	sr_client *c;
	sr_error e;

	if (argc != 0)
		return cli_usage_error("status takes no arguments");
	if ((c = open_client(o, &e)) == NULL)
		return cli_fail(&e);
	path = o->socket_path;
	if (path == NULL && ((path = getenv("SOCKRPC_SOCKET")) == NULL || path[0] == '\0'))
		path = sr_default_socket_path();
	printf("socket: %s\n", path);
	printf("session: %llu\n", sr_client_session_id(c));
	printf("daemon: sockrpcd %s\n", sr_client_daemon_version(c));
	printf("library: libsockrpc %s\n", SR_VERSION);
	sr_client_close(c);
	return CLI_EXIT_OK;
}

static sr_client *
open_client(const struct options *o, sr_error *err)
{
	return sr_client_open(o->socket_path, err);
}

/* -4/-6 if given; otherwise an address with ':' is IPv6, anything else IPv4. */
static int
family_for(const struct options *o, const char *host)
{
	if (o->family != AF_UNSPEC)
		return o->family;
	return strchr(host, ':') != NULL ? AF_INET6 : AF_INET;
}

static int
parse_port(const char *text, int *port)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (text[0] == '\0' || *end != '\0' || errno != 0 || v < 0 || v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}

/* "127.0.0.1:80" or "[::1]:80", for messages. Returns buf. */
static const char *
endpoint(const char *host, int port, char *buf, size_t len)
{
	if (strchr(host, ':') != NULL && host[0] != '[')
		snprintf(buf, len, "[%s]:%d", host, port);
	else
		snprintf(buf, len, "%s:%d", host, port);
	return buf;
}

/* --timeout: how long a receive or an accept may wait. */
static int
apply_timeout(const struct options *o, sr_socket *s, sr_error *err)
{
	if (o->timeout_ms <= 0)
		return 0;
	return sr_set_option(s, SO_RCVTIMEO, o->timeout_ms, err);
}

/*
 * A socket of `type` bound to [HOST] PORT (argv), with --timeout applied; with
 * -v, says where on stderr, with the port actually bound (for PORT 0). Returns
 * CLI_EXIT_OK with *out set, or the exit code of a usage error or of *err
 * (already reported).
 */
static int
bound_socket(const struct options *o, sr_client *c, int type, int argc, char **argv,
             sr_socket **out, sr_error *err)
{
	const char *host;
	sr_sockinfo info;
	sr_socket *s;
	char where[300];
	int port;

	if (parse_port(argv[argc - 1], &port) == -1)
		return cli_usage_error("bad port '%s'", argv[argc - 1]);
	if (argc == 2)
		host = argv[0];
	else
		host = o->family == AF_INET6 ? "::1" : SR_IP_LOCAL;
	if ((s = sr_socket_new(c, family_for(o, host), type, 0, err)) == NULL)
		return cli_fail(err);
	/* As netcat does, so that a listener can come back at once on the same port. */
	if (sr_set_option(s, SO_REUSEADDR, 1, err) == -1 || apply_timeout(o, s, err) == -1 ||
	    sr_bind(s, port, host, err) == -1 || sr_info(s, &info, err) == -1) {
		sr_socket_free(s);
		return cli_fail(err);
	}
	if (o->verbose)
		fprintf(stderr, "listening on %s\n",
		        endpoint(info.address, info.port, where, sizeof(where)));
	*out = s;
	return CLI_EXIT_OK;
}

/*
 * Accepts one connection and relays it. Returns -1 with *err filled if the
 * listener itself failed, otherwise the connection's exit code (its error
 * already reported).
 */
static int
serve_one(const struct options *o, sr_socket *listener, sr_error *err)
{
	const sr_state *peer;
	sr_socket *s;
	char where[300];
	int rc = CLI_EXIT_OK;

	if ((s = sr_accept(listener, err)) == NULL)
		return -1;
	peer = sr_socket_state(s);
	if (o->verbose)
		fprintf(stderr, "connection from %s\n",
		        endpoint(peer->host, peer->port, where, sizeof(where)));
	if (apply_timeout(o, s, err) == -1 || relay_run(s, STDIN_FILENO, STDOUT_FILENO, err) == -1)
		rc = cli_fail(err);
	sr_socket_free(s);
	return rc;
}

/* Reads fd to its end into a new buffer (free it); 64 KiB at a time. */
static int
read_all(int fd, char **out, size_t *out_len, sr_error *err)
{
	char *buf = NULL, *grown;
	size_t len = 0, cap = 0;
	ssize_t got;

	for (;;) {
		if (cap - len < CLI_CHUNK) {
			if ((grown = realloc(buf, cap + CLI_CHUNK)) == NULL) {
				free(buf);
				cli_seterr(err, SR_ELIMIT, ENOMEM, "out of memory");
				return -1;
			}
			buf = grown;
			cap += CLI_CHUNK;
		}
		got = read(fd, buf + len, cap - len);
		if (got == -1 && errno == EINTR)
			continue;
		if (got == -1) {
			free(buf);
			cli_seterr(err, SR_EOS, errno, "reading stdin: %s", strerror(errno));
			return -1;
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	*out = buf;
	*out_len = len;
	return 0;
}
