/*
 * frame.h - the sockrpc frame header and the protocol's limits.
 *
 * Every message on the daemon socket is one frame: a 16-byte header (see
 * docs/protocol.md) followed by the protobuf message. This file encodes and
 * validates headers; it knows nothing of sockets or of the messages themselves.
 * Shared by the daemon and the client library.
 */
#ifndef SOCKRPC_FRAME_H
#define SOCKRPC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define SR_PROTOCOL_MAJOR 1
#define SR_PROTOCOL_MINOR 2 /* 1.1: Hello's reply_channel; 1.2: Handback */

#define SR_FRAME_HEADER_SIZE 16

/* Bit 0 of the flags: the frame is a reply. The other bits are reserved and must be zero. */
#define SR_FRAME_FLAG_REPLY 0x0001u
#define SR_FRAME_FLAGS_KNOWN SR_FRAME_FLAG_REPLY

/*
 * Largest data one send or receive carries. 1 MiB keeps a single call's copy
 * small next to a socket buffer (Linux autotunes TCP buffers to a few MiB) while
 * amortising the per-call cost over enough bytes to reach loopback speed.
 */
#define SR_MAX_PAYLOAD (1u << 20)

/* Largest message: a full payload plus room for the state and status around it. */
#define SR_MAX_FRAME (SR_MAX_PAYLOAD + 64u * 1024u)

/*
 * Largest Hello request a daemon reads: major, minor, reply_channel and a client name
 * (libsockrpc sends under 64 bytes), with room for fields later minor versions add. Before
 * Hello a daemon reserves no more than this for a connection, so connections that never
 * finish their Hello cost little each.
 */
#define SR_MAX_HELLO_FRAME 4096u

struct sr_frame_header {
	uint32_t length;  /* bytes of the message after the header */
	uint16_t method;  /* index of the rpc in the service descriptor */
	uint16_t flags;   /* SR_FRAME_FLAG_* */
	uint64_t call_id; /* chosen by the client, echoed in the reply */
};

/* Writes the 16-byte big-endian form of `h` to `out`. */
void frame_header_encode(const struct sr_frame_header *h, uint8_t out[SR_FRAME_HEADER_SIZE]);

/* Reads a header from 16 bytes; never fails (validation is frame_header_check()). */
void frame_header_decode(const uint8_t in[SR_FRAME_HEADER_SIZE], struct sr_frame_header *h);

/*
 * Checks a decoded header against the limits: length <= max_length, method <
 * n_methods, no reserved flag, and the reply bit equal to `expect_reply`.
 * Returns 0, or -1 with a static description of what is wrong in *why.
 */
int frame_header_check(const struct sr_frame_header *h, uint32_t max_length, unsigned n_methods,
                       int expect_reply, const char **why);

/*
 * Asks for room for a whole frame in the send buffer of fd, a connection frames go out
 * on (the kernel caps it at net.core.wmem_max). Replies: a spliced receive then reaches
 * the client in one piece. Requests: the Send frames a client queues reach the daemon in
 * one read, and leave in one sendmsg (docs/internals.md). Best effort: errors are ignored.
 */
void frame_send_room(int fd);

#endif
