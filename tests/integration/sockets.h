/*
 * sockets.h - checked library calls the client-facing suites share: a socket's state
 * and a failed call's error compared field by field, sockets created, bound, listening,
 * connected and read from or the test fails, and plain (kernel) loopback peers for
 * brokered sockets to talk to. Failures are Check assertions naming the caller's line.
 */
#ifndef SOCKRPC_TEST_SOCKETS_H
#define SOCKRPC_TEST_SOCKETS_H

#include <stdbool.h>
#include <stddef.h>

#include "sockrpc.h"

/* The state a socket must show: fields assert_state() does not name must be false or 0. */
struct want {
	const char *host; /* NULL: not checked */
	int port;         /* -1: not checked */
	bool is_client, is_bound, is_connected, is_listening, is_closed, is_shutdown;
	int shutdown_reason;
};

#define assert_state(s, ...) assert_state_at((s), (struct want){__VA_ARGS__}, __LINE__)
void assert_state_at(const sr_socket *s, struct want w, int line);

/* A failed call's error: code, errno (-1: not checked) and a part of the message (NULL:
 * not checked). */
#define assert_err(e, code, sys, text) assert_err_at(&(e), (code), (sys), (text), __LINE__)
void assert_err_at(const sr_error *e, int code, int sys, const char *text, int line);

/* Returns a new brokered socket; free with sr_socket_free(). */
sr_socket *new_sock(sr_client *c, int family, int type);
/* host NULL: the library's default. */
void bind_ok(sr_socket *s, int port, const char *host);
void listen_ok(sr_socket *s, int queue);
/* Connects within 5 s. */
void connect_ok(sr_socket *s, const char *host, int port);
/* Receives exactly n bytes, in as many receives as the stream splits them into; returns
 * them malloc'd and NUL-terminated. */
char *receive_exact(sr_socket *s, size_t n);
/* Receives one datagram of at most length bytes (-1: any) through receive_from; asserts
 * its bytes and its sender. */
void expect_from(sr_socket *s, long length, const void *want, size_t want_len, const char *host,
                 int port);

/* A plain IPv4 loopback listener with backlog queue. Returns the fd, *port its port. */
int plain_listener(int queue, int *port);
/* A plain blocking TCP connection to the loopback of family (AF_INET or AF_INET6).
 * Returns the fd; *local_port (may be NULL) its own port. */
int plain_connect(int family, int port, int *local_port);

#endif
