/*
 * payload.c - the payload field of a message, packed and unpacked without protobuf-c's
 * copies (see payload.h): the walk over a body's fields, the key written before a payload
 * sent apart, and the unpacking that borrows a payload from the body.
 */
#include <string.h>

#include "payload.h"

const ProtobufCFieldDescriptor *
sr_payload_field(const ProtobufCMessageDescriptor *desc)
{
	const ProtobufCFieldDescriptor *found = NULL;

	for (unsigned i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];

		if (f->type != PROTOBUF_C_TYPE_BYTES)
			continue;
		if (found != NULL || f->label == PROTOBUF_C_LABEL_REPEATED ||
		    (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
			return NULL;
		found = f;
	}
	return found;
}

ProtobufCBinaryData *
sr_payload_of(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *field)
{
	return (ProtobufCBinaryData *)((char *)msg + field->offset);
}

size_t
sr_varint_put(uint8_t *at, uint64_t v)
{
	size_t n = 0;

	for (; v >= 0x80; v >>= 7)
		at[n++] = (uint8_t)(v | 0x80);
	at[n++] = (uint8_t)v;
	return n;
}

size_t
sr_payload_key(uint8_t out[SR_PAYLOAD_KEY_MAX], unsigned field_number, size_t len)
{
	size_t n =
	    sr_varint_put(out, (uint64_t)field_number << 3 | PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED);

	return n + sr_varint_put(out + n, len);
}

/* Reads a varint at *at (below end) and advances *at; -1 if truncated or over 64 bits. */
static int
varint_get(const uint8_t **at, const uint8_t *end, uint64_t *v)
{
	uint64_t value = 0;

	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (*at >= end)
			return -1;
		value |= (uint64_t)(**at & 0x7f) << shift;
		if ((*(*at)++ & 0x80) == 0) {
			*v = value;
			return 0;
		}
	}
	return -1;
}

int
sr_payload_split(const uint8_t *body, size_t len, unsigned field_number, uint8_t *rest,
                 size_t rest_cap, size_t *rest_len, const uint8_t **payload, size_t *payload_len)
{
	const uint8_t *at = body, *end = body + len;
	size_t kept = 0;

	*payload = NULL;
	*payload_len = 0;
	while (at < end) {
		const uint8_t *field_start = at, *value;
		uint64_t key, n;
		size_t value_len;

		if (varint_get(&at, end, &key) != 0 || key >> 3 == 0 || key >> 3 > UINT32_MAX)
			return -1;
		switch (key & 7) {
		case PROTOBUF_C_WIRE_TYPE_VARINT:
			if (varint_get(&at, end, &n) != 0)
				return -1;
			value = at;
			value_len = 0;
			break;
		case PROTOBUF_C_WIRE_TYPE_64BIT:
		case PROTOBUF_C_WIRE_TYPE_32BIT:
			value_len = (key & 7) == PROTOBUF_C_WIRE_TYPE_64BIT ? 8 : 4;
			if ((size_t)(end - at) < value_len)
				return -1;
			value = at;
			at += value_len;
			break;
		case PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED:
			if (varint_get(&at, end, &n) != 0 || n > (uint64_t)(end - at))
				return -1;
			value = at;
			value_len = (size_t)n;
			at += value_len;
			break;
		default: /* groups, and wire types that do not exist */
			return -1;
		}
		if (key >> 3 == field_number) {
			if ((key & 7) != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)
				return -1;
			*payload = value;
			*payload_len = value_len;
			continue;
		}
		if ((size_t)(at - field_start) > rest_cap - kept)
			return -1;
		memcpy(rest + kept, field_start, (size_t)(at - field_start));
		kept += (size_t)(at - field_start);
	}
	*rest_len = kept;
	return 0;
}

/* Unpacks body with the payload field left out, then points that field into body. */
static ProtobufCMessage *
unpack_borrowing(const ProtobufCMessageDescriptor *desc, const ProtobufCFieldDescriptor *field,
                 ProtobufCAllocator *allocator, const uint8_t *body, size_t len,
                 ProtobufCBinaryData **borrowed)
{
	uint8_t rest[SR_PAYLOAD_REST_MAX];
	const uint8_t *payload;
	size_t rest_len, payload_len;
	ProtobufCMessage *msg;
	ProtobufCBinaryData *bytes;

	if (sr_payload_split(body, len, field->id, rest, sizeof(rest), &rest_len, &payload,
	                     &payload_len) != 0 ||
	    payload_len < SR_PAYLOAD_BY_REFERENCE_MIN)
		return NULL;
	if ((msg = protobuf_c_message_unpack(desc, allocator, rest_len, rest)) == NULL)
		return NULL;
	bytes = sr_payload_of(msg, field);
	bytes->data = (uint8_t *)(uintptr_t)payload;
	bytes->len = payload_len;
	if (field->quantifier_offset != 0)
		*(protobuf_c_boolean *)((char *)msg + field->quantifier_offset) = 1;
	*borrowed = bytes;
	return msg;
}

ProtobufCMessage *
sr_payload_unpack(const ProtobufCMessageDescriptor *desc, ProtobufCAllocator *allocator,
                  const uint8_t *body, size_t len, ProtobufCBinaryData **borrowed)
{
	const ProtobufCFieldDescriptor *field;
	ProtobufCMessage *msg;

	*borrowed = NULL;
	/* The length first: most bodies are small, and then the field walk is not needed. */
	if (len >= SR_PAYLOAD_BY_REFERENCE_MIN && (field = sr_payload_field(desc)) != NULL &&
	    (msg = unpack_borrowing(desc, field, allocator, body, len, borrowed)) != NULL)
		return msg;
	/* Small, malformed, or oddly laid out: protobuf-c decodes it (or says why not). */
	return protobuf_c_message_unpack(desc, allocator, len, body);
}

void
sr_payload_free_unpacked(ProtobufCMessage *msg, ProtobufCAllocator *allocator,
                         ProtobufCBinaryData *borrowed)
{
	if (borrowed != NULL) {
		borrowed->data = NULL;
		borrowed->len = 0;
	}
	protobuf_c_message_free_unpacked(msg, allocator);
}
