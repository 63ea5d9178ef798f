/*
 * frames.c - frames over the client's transport: packs a request into a frame,
 * writes it whole, and reads reply frames (header checked against the daemon's
 * limits) through a read buffer that takes as much as each read brings. Which call a
 * frame belongs to is calls.c's business; how bytes travel, the transport's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "frame.h"
#include "internal.h"
#include "payload.h"

/* Room read into at once: many small replies, or a good part of a large one. The
 * fuzzer builds with less (tools/fuzz/build.sh), to split replies more often. */
#ifndef READ_CHUNK
#define READ_CHUNK (64 * 1024)
#endif

static int recv_until(sr_client *c, uint8_t *buf, size_t *len, size_t need, size_t cap,
                      int64_t deadline, sr_error *err);
static int fill(sr_client *c, size_t need, int64_t deadline, sr_error *err);
static int unread_frame(sr_client *c, const struct sr_frame_header *h, const uint8_t *body,
                        size_t have, sr_error *err);

/*
 * Packs input into a frame, leaving out a payload field long enough to be worth writing
 * from the caller's memory (payload.h): *payload then says where it is, and the frame
 * ends with the field's key. Returns the frame (malloc'd, header to fill) and its length
 * in *len, or NULL with *err filled.
 */
uint8_t *
cl_frame_pack(sr_client *c, const ProtobufCMessage *input, size_t *len,
              ProtobufCBinaryData *payload, sr_error *err)
{
	const ProtobufCFieldDescriptor *field = sr_payload_field(input->descriptor);
	union {
		ProtobufCMessage base;
		uint8_t bytes[256];
	} rest; /* a shallow copy of input without its payload */
	const ProtobufCMessage *packed = input;
	uint8_t key[SR_PAYLOAD_KEY_MAX], *frame;
	size_t body, key_len = 0;

	payload->len = 0;
	payload->data = NULL;
	if (field != NULL && input->descriptor->sizeof_message <= sizeof(rest) &&
	    sr_payload_of((ProtobufCMessage *)(uintptr_t)input, field)->len >=
	        SR_PAYLOAD_BY_REFERENCE_MIN) {
		memcpy(&rest, input, input->descriptor->sizeof_message);
		*payload = *sr_payload_of(&rest.base, field);
		sr_payload_of(&rest.base, field)->len = 0; /* an empty bytes field is not packed */
		packed = &rest.base;
		key_len = sr_payload_key(key, field->id, payload->len);
	}
	body = protobuf_c_message_get_packed_size(packed) + key_len;
	if (body + payload->len > c->max_frame) {
		cl_seterr(err, SR_ELIMIT, 0,
		          "request of %zu bytes is larger than the daemon's limit of %u",
		          body + payload->len, (unsigned)c->max_frame);
		return NULL;
	}
	if ((frame = malloc(SR_FRAME_HEADER_SIZE + body)) == NULL) {
		cl_seterr(err, SR_ELIMIT, ENOMEM, "out of memory");
		return NULL;
	}
	protobuf_c_message_pack(packed, frame + SR_FRAME_HEADER_SIZE);
	memcpy(frame + SR_FRAME_HEADER_SIZE + body - key_len, key, key_len);
	*len = SR_FRAME_HEADER_SIZE + body;
	return frame;
}

/* Writes all of iov (one frame), waiting for room until the deadline. */
int
cl_frame_write(sr_client *c, struct iovec *iov, int n_iov, int64_t deadline, sr_error *err)
{
	struct transport *t = c->transport;
	char ebuf[128];
	ssize_t n;

	while (n_iov > 0) {
		n = t->ops->writev(t, iov, n_iov);
		if (n >= 0) {
			/* Skip what went out: whole parts, then into the first one left. */
			for (; n_iov > 0 && (size_t)n >= iov->iov_len; iov++, n_iov--)
				n -= (ssize_t)iov->iov_len;
			if (n_iov > 0) {
				iov->iov_base = (uint8_t *)iov->iov_base + n;
				iov->iov_len -= (size_t)n;
			}
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (t->ops->wait_writable(t, deadline) == 0)
				continue;
			if (errno == ETIMEDOUT) {
				cl_seterr(err, SR_EDAEMON, ETIMEDOUT,
				          "daemon did not take the request in time");
				return -1;
			}
		}
		cl_seterr(err, SR_EDAEMON, errno, "writing to sockrpcd: %s",
		          cl_errno_text(errno, ebuf, sizeof(ebuf)));
		return -1;
	}
	return 0;
}

/*
 * Reads one reply frame; *body is from cl_pool_alloc() (h->length bytes). A body
 * larger than the read buffer's chunk is received straight into *body, after what the
 * buffer holds of it, rather than through the buffer (a copy less, and no buffer that
 * size kept).
 * Returns as fill(); after CL_READ_LATE the frame is read again from its start.
 */
int
cl_frame_read(sr_client *c, int64_t deadline, struct sr_frame_header *h, uint8_t **body,
              sr_error *err)
{
	const char *why;
	size_t have;
	int rc;

	if ((rc = fill(c, SR_FRAME_HEADER_SIZE, deadline, err)) != 0)
		return rc;
	frame_header_decode(c->rbuf + c->roff, h);
	if (frame_header_check(h, c->max_frame, sockrpc__sock_rpc__descriptor.n_methods, 1, &why) ==
	    -1) {
		cl_seterr(err, SR_EPROTO, 0, "bad frame from sockrpcd: %s", why);
		return -1;
	}
	if ((*body = cl_pool_alloc(c, h->length)) == NULL) {
		cl_seterr(err, SR_ELIMIT, ENOMEM, "out of memory");
		return -1;
	}
	have = c->rlen - c->roff - SR_FRAME_HEADER_SIZE;
	if (h->length <= READ_CHUNK || have >= h->length) {
		rc = fill(c, SR_FRAME_HEADER_SIZE + (size_t)h->length, deadline, err);
		if (rc == 0) {
			memcpy(*body, c->rbuf + c->roff + SR_FRAME_HEADER_SIZE, h->length);
			c->roff += SR_FRAME_HEADER_SIZE + (size_t)h->length;
		}
	} else {
		memcpy(*body, c->rbuf + c->roff + SR_FRAME_HEADER_SIZE, have);
		c->roff = c->rlen = 0;
		rc = recv_until(c, *body, &have, h->length, h->length, deadline, err);
		if (rc == CL_READ_LATE && unread_frame(c, h, *body, have, err) != 0)
			rc = -1;
	}
	if (rc != 0) {
		cl_pool_free(c, *body);
		*body = NULL;
	}
	return rc;
}

/*
 * Receives into buf (cap bytes, *len of them filled) until *len >= need, taking as much
 * as the transport has in each read. A read blocks for at most CL_READ_TICK_MS at a
 * time, between which the deadline is checked: one syscall per
 * reply, where poll + recv would take two. Returns 0, or -1 (CL_READ_LATE past the
 * deadline) with *err filled.
 */
static int
recv_until(sr_client *c, uint8_t *buf, size_t *len, size_t need, size_t cap, int64_t deadline,
           sr_error *err)
{
	char ebuf[128];
	ssize_t n;

	while (*len < need) {
		n = c->transport->ops->read(c->transport, buf + *len, cap - *len);
		if (n > 0) {
			*len += (size_t)n;
			continue;
		}
		if (n == 0) {
			cl_seterr(err, SR_EDAEMON, 0, "daemon closed the connection");
			return -1;
		}
		if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
			break;
		if (deadline != CL_NO_DEADLINE && cl_now_ms() >= deadline) {
			cl_seterr(err, SR_EDAEMON, ETIMEDOUT, "daemon did not answer");
			return CL_READ_LATE;
		}
	}
	if (*len >= need)
		return 0;
	cl_seterr(err, SR_EDAEMON, errno, "reading from sockrpcd: %s",
	          cl_errno_text(errno, ebuf, sizeof(ebuf)));
	return -1;
}

/*
 * Makes at least `need` unparsed bytes available at c->rbuf + c->roff, reading as much
 * as the socket has (so one syscall usually brings a whole reply). Only the reading
 * thread calls this. Returns as recv_until().
 */
static int
fill(sr_client *c, size_t need, int64_t deadline, sr_error *err)
{
	if (c->rlen - c->roff >= need)
		return 0;
	if (c->roff > 0) {
		memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
		c->rlen -= c->roff;
		c->roff = 0;
	}
	if (need > c->rcap || c->rcap - c->rlen < READ_CHUNK / 4) {
		size_t cap = need > READ_CHUNK ? need : READ_CHUNK;
		uint8_t *grown;

		if (cap < c->rlen + READ_CHUNK / 4)
			cap = c->rlen + READ_CHUNK;
		if ((grown = realloc(c->rbuf, cap)) == NULL) {
			cl_seterr(err, SR_ELIMIT, ENOMEM, "out of memory");
			return -1;
		}
		c->rbuf = grown;
		c->rcap = cap;
	}
	return recv_until(c, c->rbuf, &c->rlen, need, c->rcap, deadline, err);
}

/*
 * Puts a frame's header and the first `have` bytes of its body back into the (empty)
 * read buffer, for a read that gave up before the whole body came (CL_READ_LATE) and is
 * taken up again later. Returns 0 or -1 with *err filled.
 */
static int
unread_frame(sr_client *c, const struct sr_frame_header *h, const uint8_t *body, size_t have,
             sr_error *err)
{
	size_t need = SR_FRAME_HEADER_SIZE + have;

	if (need > c->rcap) {
		uint8_t *grown = realloc(c->rbuf, need);

		if (grown == NULL) {
			cl_seterr(err, SR_ELIMIT, ENOMEM, "out of memory");
			return -1;
		}
		c->rbuf = grown;
		c->rcap = need;
	}
	frame_header_encode(h, c->rbuf);
	memcpy(c->rbuf + SR_FRAME_HEADER_SIZE, body, have);
	c->roff = 0;
	c->rlen = need;
	return 0;
}
