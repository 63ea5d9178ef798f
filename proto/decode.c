/*
 * decode.c - unpacking under a memory budget (see decode.h): a counting allocator over
 * malloc, and the walk that drops unknown fields from a message and its sub-messages.
 */
#include <malloc.h>
#include <stdlib.h>

#include "decode.h"
#include "payload.h"

/* What malloc spends on each block besides its usable size (glibc: a size word, rounded
 * to 16 bytes), so that many tiny blocks are counted at what they cost. */
#define MALLOC_BLOCK_OVERHEAD 16u

struct budget {
	size_t used, limit; /* used <= limit */
	bool exceeded;
};

static size_t
block_size(void *p)
{
	return p ? malloc_usable_size(p) + MALLOC_BLOCK_OVERHEAD : 0;
}

static void *
budget_alloc(void *data, size_t size)
{
	struct budget *b = data;
	void *p;

	if (size > b->limit - b->used || (p = malloc(size)) == NULL)
		goto refused;
	if (block_size(p) > b->limit - b->used) {
		free(p);
		goto refused;
	}
	b->used += block_size(p);
	return p;
refused:
	b->exceeded = true; /* also when malloc fails: the budget is what it could not get */
	return NULL;
}

static void
budget_free(void *data, void *p)
{
	struct budget *b = data;

	b->used -= block_size(p);
	free(p);
}

/* Frees the unknown fields of m and of every sub-message it holds. */
static void
drop_unknown_fields(ProtobufCMessage *m, ProtobufCAllocator *a)
{
	const ProtobufCMessageDescriptor *desc = m->descriptor;

	for (size_t i = 0; i < m->n_unknown_fields; i++)
		a->free(a->allocator_data, m->unknown_fields[i].data);
	a->free(a->allocator_data, m->unknown_fields);
	m->unknown_fields = NULL;
	m->n_unknown_fields = 0;
	for (unsigned i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];
		char *at = (char *)m + f->offset;

		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		/* A oneof's member is only there if the oneof's case names it. */
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(uint32_t *)((char *)m + f->quantifier_offset) != f->id)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(size_t *)((char *)m + f->quantifier_offset);
			ProtobufCMessage **subs = *(ProtobufCMessage ***)at;

			for (size_t j = 0; j < n; j++)
				if (subs[j] != NULL)
					drop_unknown_fields(subs[j], a);
		} else if (*(ProtobufCMessage **)at != NULL) {
			drop_unknown_fields(*(ProtobufCMessage **)at, a);
		}
	}
}

ProtobufCMessage *
sr_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *body, size_t len, size_t budget,
          size_t *held, ProtobufCBinaryData **borrowed, bool *over_budget)
{
	struct budget b = {.limit = budget};
	ProtobufCAllocator counting = {budget_alloc, budget_free, &b};
	ProtobufCMessage *msg = sr_payload_unpack(desc, &counting, body, len, borrowed);

	*over_budget = msg == NULL && b.exceeded;
	if (msg == NULL)
		return NULL;
	drop_unknown_fields(msg, &counting);
	*held = b.used;
	return msg;
}
