/*
 * buffer_pool.c - a client's few large buffers, kept for reuse.
 *
 * A bulk reply needs a body and, once unpacked, a copy of its bytes, each up to
 * max_payload. Blocks that large come fresh from the top of the heap or from mmap, and
 * glibc hands them back to the kernel when they are freed, so every reply paid a page
 * fault for each 4 KiB of it: at 256 KiB per reply most of the client's time (measured,
 * docs/internals.md). Blocks of POOL_MIN_BYTES or more are kept, up to POOL_BLOCKS,
 * and handed out again.
 *
 * Every block carries its size in a header, so that protobuf-c, whose free() is not told
 * the size, can unpack replies with the pool as its allocator (c->pool_allocator), and a
 * block's bytes can change hands (read-ahead keeps the unpacked data of a Receive).
 *
 * Borrowed replies (a fast path, off with SOCKRPC_DISABLE=borrowed-replies): a large
 * reply payload is not copied out of the reply's body; it stays in the body's block,
 * which the caller then keeps (cl_pool_unpack). Off, every reply is unpacked by
 * protobuf-c alone, the payload copied into a block of its own.
 */
#include <stdlib.h>

#include "internal.h"
#include "payload.h"

#define POOL_MIN_BYTES (64 * 1024)

struct block {
	size_t size; /* bytes usable after the header */
	max_align_t align[];
};

static struct block *
block_of(void *p)
{
	return (struct block *)((char *)p - offsetof(struct block, align));
}

static size_t
pooled_size(sr_client *c, int slot)
{
	return block_of(c->pool[slot])->size;
}

void *
cl_pool_alloc(sr_client *c, size_t size)
{
	struct block *b = NULL;

	if (size >= POOL_MIN_BYTES) {
		pthread_mutex_lock(&c->pool_mu);
		for (int i = 0; i < POOL_BLOCKS; i++) {
			if (c->pool[i] != NULL && block_of(c->pool[i])->size >= size) {
				b = block_of(c->pool[i]);
				c->pool[i] = NULL;
				break;
			}
		}
		pthread_mutex_unlock(&c->pool_mu);
	}
	if (b == NULL) {
		size_t room = size ? size : 1;

		/* A large block gets a power of two (or a whole frame, the most any reply
		 * needs), so that it serves the next replies, whose sizes vary, when it comes
		 * back. */
		if (size >= POOL_MIN_BYTES) {
			for (room = POOL_MIN_BYTES; room < size; room *= 2)
				;
			if (room > c->max_frame && size <= c->max_frame)
				room = c->max_frame;
		}
		if ((b = malloc(sizeof(*b) + room)) == NULL)
			return NULL;
		b->size = room;
	}
	return b->align;
}

/*
 * Frees p (from cl_pool_alloc, or NULL) or keeps it for reuse; c may be NULL. A full
 * pool keeps the larger block: a pool of small blocks (the short replies a transfer
 * begins with) would otherwise turn every large block away for good, and each large
 * reply after would pay its page faults again (seen: a 2 GiB receive at a tenth of
 * its speed, one run in fifteen).
 */
void
cl_pool_free(sr_client *c, void *p)
{
	if (p == NULL)
		return;
	if (c != NULL && block_of(p)->size >= POOL_MIN_BYTES) {
		int slot = 0; /* an empty slot, else the one of the smallest block */

		pthread_mutex_lock(&c->pool_mu);
		for (int i = 0; i < POOL_BLOCKS && c->pool[slot] != NULL; i++) {
			if (c->pool[i] == NULL || pooled_size(c, i) < pooled_size(c, slot))
				slot = i;
		}
		if (c->pool[slot] == NULL || pooled_size(c, slot) < block_of(p)->size) {
			void *evicted = c->pool[slot];

			c->pool[slot] = p;
			p = evicted;
		}
		pthread_mutex_unlock(&c->pool_mu);
	}
	if (p != NULL)
		free(block_of(p));
}

static void *
pool_alloc_cb(void *c, size_t size)
{
	return cl_pool_alloc(c, size);
}

static void
pool_free_cb(void *c, void *p)
{
	cl_pool_free(c, p);
}

void
cl_pool_init(sr_client *c)
{
	pthread_mutex_init(&c->pool_mu, NULL);
	c->pool_allocator.alloc = pool_alloc_cb;
	c->pool_allocator.free = pool_free_cb;
	c->pool_allocator.allocator_data = c;
}

void
cl_pool_destroy(sr_client *c)
{
	for (int i = 0; i < POOL_BLOCKS; i++)
		if (c->pool[i] != NULL)
			free(block_of(c->pool[i]));
	pthread_mutex_destroy(&c->pool_mu);
}

/*
 * Unpacks a reply body (len bytes, from cl_pool_alloc) as desc, into pool blocks; NULL
 * if it does not decode. With borrowed replies on, a large payload stays in body:
 * *borrowed then points at its field and body belongs to the caller (free it with
 * cl_pool_free once the payload is used). Otherwise *borrowed is NULL and body is
 * freed here. Free the reply with cl_pool_free_unpacked().
 */
ProtobufCMessage *
cl_pool_unpack(sr_client *c, const ProtobufCMessageDescriptor *desc, uint8_t *body, size_t len,
               ProtobufCBinaryData **borrowed)
{
	ProtobufCMessage *reply;

	*borrowed = NULL;
	if (cl_fastpath_on(CL_FAST_BORROWED_REPLIES))
		reply = sr_payload_unpack(desc, &c->pool_allocator, body, len, borrowed);
	else
		reply = protobuf_c_message_unpack(desc, &c->pool_allocator, len, body);
	if (*borrowed == NULL)
		cl_pool_free(c, body);
	return reply;
}

/* Frees a reply from cl_pool_unpack(), but not a payload it borrows. */
void
cl_pool_free_unpacked(sr_client *c, ProtobufCMessage *reply, ProtobufCBinaryData *borrowed)
{
	sr_payload_free_unpacked(reply, &c->pool_allocator, borrowed);
}
