/*
 * sockets.c - see sockets.h.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sockets.h"

void
assert_state_at(const sr_socket *s, struct want w, int line)
{
	const sr_state *st = sr_socket_state(s);

	ck_assert_msg(st != NULL, "line %d: no state", line);
	if (w.host != NULL)
		ck_assert_msg(strcmp(st->host, w.host) == 0, "line %d: host \"%s\", want \"%s\"",
		              line, st->host, w.host);
	if (w.port >= 0)
		ck_assert_msg(st->port == w.port, "line %d: port %d, want %d", line, st->port,
		              w.port);
	ck_assert_msg(st->is_client == w.is_client, "line %d: is_client %d", line, st->is_client);
	ck_assert_msg(st->is_bound == w.is_bound, "line %d: is_bound %d", line, st->is_bound);
	ck_assert_msg(st->is_connected == w.is_connected, "line %d: is_connected %d", line,
	              st->is_connected);
	ck_assert_msg(st->is_listening == w.is_listening, "line %d: is_listening %d", line,
	              st->is_listening);
	ck_assert_msg(st->is_closed == w.is_closed, "line %d: is_closed %d", line, st->is_closed);
	ck_assert_msg(st->is_shutdown == w.is_shutdown, "line %d: is_shutdown %d", line,
	              st->is_shutdown);
	ck_assert_msg(st->shutdown_reason == w.shutdown_reason, "line %d: shutdown_reason %d", line,
	              st->shutdown_reason);
}

void
assert_err_at(const sr_error *e, int code, int sys, const char *text, int line)
{
	ck_assert_msg(e->code == code, "line %d: code %d (%s), want %d", line, e->code, e->message,
	              code);
	if (sys >= 0)
		ck_assert_msg(e->sys_errno == sys, "line %d: errno %d (%s), want %d", line,
		              e->sys_errno, e->message, sys);
	if (text != NULL)
		ck_assert_msg(strstr(e->message, text) != NULL,
		              "line %d: message \"%s\" lacks \"%s\"", line, e->message, text);
}

sr_socket *
new_sock(sr_client *c, int family, int type)
{
	sr_error err;
	sr_socket *s = sr_socket_new(c, family, type, 0, &err);

	ck_assert_msg(s != NULL, "socket: %d %s", err.code, err.message);
	return s;
}

void
bind_ok(sr_socket *s, int port, const char *host)
{
	sr_error err;

	ck_assert_msg(sr_bind(s, port, host, &err) == 0, "bind %s:%d: %d %s",
	              host ? host : "(default)", port, err.code, err.message);
}

void
listen_ok(sr_socket *s, int queue)
{
	sr_error err;

	ck_assert_msg(sr_listen(s, queue, &err) == 0, "listen: %d %s", err.code, err.message);
}

void
connect_ok(sr_socket *s, const char *host, int port)
{
	sr_error err;

	ck_assert_msg(sr_connect(s, host, port, 5000, &err) == 0, "connect %s:%d: %d %s", host,
	              port, err.code, err.message);
}

char *
receive_exact(sr_socket *s, size_t n)
{
	char *all = malloc(n + 1), *part;
	size_t have = 0, len;
	sr_error err;

	ck_assert_ptr_nonnull(all);
	while (have < n) {
		ck_assert_msg(sr_receive(s, (long)(n - have), 0, &part, &len, &err) == 0,
		              "receive: %d %s", err.code, err.message);
		ck_assert_msg(len > 0, "end of stream after %zu of %zu bytes", have, n);
		ck_assert_uint_le(len, n - have);
		memcpy(all + have, part, len);
		have += len;
		free(part);
	}
	all[n] = '\0';
	return all;
}

void
expect_from(sr_socket *s, long length, const void *want, size_t want_len, const char *host,
            int port)
{
	char from[64], *got;
	size_t len;
	sr_error err;
	int from_port = -1;

	ck_assert_msg(sr_receive_from(s, length, 0, &got, &len, from, &from_port, &err) == 0,
	              "receive_from: %d %s", err.code, err.message);
	ck_assert_msg(len == want_len, "datagram of %zu bytes, want %zu", len, want_len);
	ck_assert(memcmp(got, want, want_len) == 0);
	ck_assert_str_eq(from, host);
	ck_assert_int_eq(from_port, port);
	free(got);
}

int
plain_listener(int queue, int *port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ne(fd, -1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(fd, queue), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

int
plain_connect(int family, int port, int *local_port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int fd;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET6) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		sin6->sin6_addr = in6addr_loopback;
		len = sizeof(*sin6);
	} else {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*sin);
	}
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ne(fd, -1);
	ck_assert_msg(connect(fd, (struct sockaddr *)&ss, len) == 0, "connect: %s",
	              strerror(errno));
	if (local_port != NULL) {
		len = sizeof(ss);
		ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
		*local_port = ntohs(family == AF_INET6 ? sin6->sin6_port : sin->sin_port);
	}
	return fd;
}
