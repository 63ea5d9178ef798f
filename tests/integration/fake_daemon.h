/*
 * fake_daemon.h - a fake sockrpcd in the test process, for what the real one never
 * does: a Unix socket server thread that speaks the frame format of proto/frame.h to
 * one client and answers as the test's serve function says (protocol violations,
 * hostile replies, hang-ups). Used by test_errors.c and test_hostile.c.
 */
#ifndef SOCKRPC_TEST_FAKE_DAEMON_H
#define SOCKRPC_TEST_FAKE_DAEMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "sockrpc.pb-c.h"

struct fake;
/* Serves the one connection accepted, fd, which the fake closes once this returns. */
typedef void fake_serve_fn(struct fake *f, int fd);

struct fake {
	int mode; /* what serve is to do: the test's own enum */
	fake_serve_fn *serve;
	char dir[64], path[100];
	int listen_fd;
	pthread_t thread;
};

/* Listens on a new temporary directory's fake.sock (f->path) and serves one client
 * there from a thread. */
void fake_start(struct fake *f, fake_serve_fn *serve, int mode);
/* Waits for the thread (the client must have hung up) and removes the socket. */
void fake_stop(struct fake *f);

/* Reads one request into buf (at most cap bytes of body). Returns 0, or -1 at EOF or
 * for a larger body. */
int fake_read(int fd, struct sr_frame_header *h, uint8_t *buf, size_t cap);
/* Sends one frame: m packed, or raw_len bytes of raw when m is NULL. */
void fake_reply(int fd, unsigned method, uint64_t id, uint16_t flags, const ProtobufCMessage *m,
                const void *raw, size_t raw_len);
/* Reads the Hello and answers it with session 77 and the given limits (0: the
 * protocol's). Returns 0, or -1 if no Hello came. */
int fake_hello(int fd, uint32_t max_frame, uint32_t max_payload);
/* Reads until the client hangs up. */
void fake_hold(int fd);
/* A blocking TCP socket's state, connected or not, as the fake daemon reports it. */
void fake_socket_state(Sockrpc__SocketState *state, bool connected);
/* The index of the rpc named `name` ("Send") in the service. */
unsigned fake_method(const char *name);

#endif
