/*
 * frame.c - encode, decode and validate the 16-byte frame header (pure functions: no
 * I/O, no allocation), and size a connection's send buffer for frames.
 */
#include <sys/socket.h>

#include "frame.h"

static void
put_be(uint8_t *out, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--) {
		out[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
}

static uint64_t
get_be(const uint8_t *in, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v = (v << 8) | in[i];
	return v;
}

void
frame_header_encode(const struct sr_frame_header *h, uint8_t out[SR_FRAME_HEADER_SIZE])
{
	put_be(out, h->length, 4);
	put_be(out + 4, h->method, 2);
	put_be(out + 6, h->flags, 2);
	put_be(out + 8, h->call_id, 8);
}

void
frame_header_decode(const uint8_t in[SR_FRAME_HEADER_SIZE], struct sr_frame_header *h)
{
	h->length = (uint32_t)get_be(in, 4);
	h->method = (uint16_t)get_be(in + 4, 2);
	h->flags = (uint16_t)get_be(in + 6, 2);
	h->call_id = get_be(in + 8, 8);
}

int
frame_header_check(const struct sr_frame_header *h, uint32_t max_length, unsigned n_methods,
                   int expect_reply, const char **why)
{
	if (h->flags & ~SR_FRAME_FLAGS_KNOWN) {
		*why = "reserved flag bits set";
		return -1;
	}
	if (!!(h->flags & SR_FRAME_FLAG_REPLY) != !!expect_reply) {
		*why = expect_reply ? "expected a reply frame" : "a reply frame sent as a request";
		return -1;
	}
	if (h->method >= n_methods) {
		*why = "unknown method";
		return -1;
	}
	if (h->length > max_length) {
		*why = "frame larger than the maximum";
		return -1;
	}
	return 0;
}

void
frame_send_room(int fd)
{
	int room = (int)SR_MAX_FRAME;

	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &room, sizeof(room));
}
