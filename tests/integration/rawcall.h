/*
 * rawcall.h - a hand-driven client for the hardening suites (bad_input, abuse,
 * load) and the daemon's side of options: frames written byte by byte as a hostile client would,
 * replies decoded with the generated descriptors, and the checks every such test ends with (the
 * daemon still serves a well-behaved client).
 */
#ifndef SOCKRPC_TEST_RAWCALL_H
#define SOCKRPC_TEST_RAWCALL_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "harness.h"
#include "methods.h"
#include "sockrpc.pb-c.h"

/* Writes a bare header. */
void rc_header(int fd, uint32_t length, uint16_t method, uint16_t flags, uint64_t id);
/* Encodes one request frame of msg at out (room for the header and msg's packed size);
 * returns its length. Lets a test write many frames at once. */
size_t rc_frame(uint8_t *out, unsigned method, uint64_t id, const ProtobufCMessage *msg);
/* Writes one request of msg followed by an unknown length-delimited field (number 15)
 * of pad bytes, which protobuf-c keeps and the daemon must charge for. */
void rc_send_padded(int fd, unsigned method, uint64_t id, const ProtobufCMessage *msg, size_t pad);
/* Reads one reply frame within timeout_ms and decodes it as its method's output.
 * Returns NULL at EOF or timeout; asserts the frame is a well-formed reply. */
ProtobufCMessage *rc_reply(int fd, uint64_t *id, unsigned *method, int timeout_ms);
/* The status code of a reply (field 1 of every reply). */
int rc_code(const ProtobufCMessage *reply);
const char *rc_message(const ProtobufCMessage *reply);
/* Field 2 when it is a SocketState, else NULL. */
const Sockrpc__SocketState *rc_state(const ProtobufCMessage *reply);
/* Reads one reply, asserts its call id and code; returns the status message (static). */
const char *rc_expect(int fd, uint64_t id, int code);
/* Reads one reply, asserts its code is one of `codes` (-1 terminated). Returns the code. */
int rc_expect_any(int fd, uint64_t id, const int *codes);
/* Asserts the daemon answers a protocol error (EPROTO) and then closes the connection. */
void rc_expect_refused(int fd);
/* Connects handle h to 127.0.0.1:port as call `id`, sent on fd; asserts success, read
 * from reply_fd (fd, or the session's reply channel). */
void rc_connect_loopback(int fd, int reply_fd, uint64_t id, int64_t h, int port);
/* Sends a request for a TCP socket, without reading its reply. */
void rc_socket_request(int fd, uint64_t id);
/* Creates a socket in a raw session; asserts success; returns its handle id. */
int64_t rc_socket(int fd, uint64_t id, int wire_family, int wire_type);
/* A well-behaved library client opens a socket, reads an option and closes it. */
void assert_daemon_serves(const struct daemon *d);
/* Checked fixture end: test_daemon is still running (not just listening) and serves a
 * well-behaved client; then fixture_daemon_down(). */
void fixture_daemon_down_serving(void);
/* Under AddressSanitizer freed memory sits in a quarantine (256 MB by default) that counts
 * in the RSS: daemons started after this keep it to mb, so memory bounds see their own
 * buffers. */
void asan_quarantine_mb(int mb);
/* Resident set of a process in KiB, or -1. */
long process_rss_kib(pid_t pid);
/* utime + stime of a process, in clock ticks, or -1. */
long process_cpu_ticks(pid_t pid);

#endif
