/*
 * request.c - a request decoded from its frame.
 *
 * A payload of SR_PAYLOAD_BY_REFERENCE_MIN bytes or more (a send's data) is not copied
 * out of the frame: the request's payload field points into the session's input buffer,
 * which holds the frame until the call's dispatch returns. A call that outlives its
 * dispatch (it waits for its socket, or for a name) copies the payload then, with
 * request_keep_payload(), so only a send that has to wait pays for a copy.
 */
#include <stdlib.h>
#include <string.h>

#include "payload.h"
#include "sockrpcd.h"

/* Unpacks body with the payload field left out, then points that field into body. */
static ProtobufCMessage *
unpack_borrowing(const ProtobufCMessageDescriptor *desc, const ProtobufCFieldDescriptor *field,
                 const uint8_t *body, size_t len, ProtobufCBinaryData **borrowed)
{
	uint8_t rest[SR_PAYLOAD_REST_MAX];
	const uint8_t *payload;
	size_t rest_len, payload_len;
	ProtobufCMessage *request;
	ProtobufCBinaryData *bytes;

	if (sr_payload_split(body, len, field->id, rest, sizeof(rest), &rest_len, &payload,
	                     &payload_len) != 0 ||
	    payload_len < SR_PAYLOAD_BY_REFERENCE_MIN)
		return NULL;
	if ((request = protobuf_c_message_unpack(desc, NULL, rest_len, rest)) == NULL)
		return NULL;
	bytes = sr_payload_of(request, field);
	bytes->data = (uint8_t *)(uintptr_t)payload;
	bytes->len = payload_len;
	if (field->quantifier_offset != 0)
		*(protobuf_c_boolean *)((char *)request + field->quantifier_offset) = 1;
	*borrowed = bytes;
	return request;
}

/*
 * Unpacks a request body of `len` bytes, or returns NULL if it does not decode. When the
 * request's payload is borrowed from body, *borrowed points at its field (else NULL).
 */
ProtobufCMessage *
request_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *body, size_t len,
               ProtobufCBinaryData **borrowed)
{
	const ProtobufCFieldDescriptor *field = sr_payload_field(desc);
	ProtobufCMessage *request;

	*borrowed = NULL;
	if (field != NULL && len >= SR_PAYLOAD_BY_REFERENCE_MIN &&
	    (request = unpack_borrowing(desc, field, body, len, borrowed)) != NULL)
		return request;
	/* Small, malformed, or oddly laid out: protobuf-c decodes it (or says why not). */
	return protobuf_c_message_unpack(desc, NULL, len, body);
}

/* Gives a borrowed payload a copy of its own; *borrowed is then NULL. -1: out of memory. */
int
request_keep_payload(ProtobufCBinaryData **borrowed)
{
	ProtobufCBinaryData *bytes = *borrowed;
	uint8_t *copy;

	if (bytes == NULL)
		return 0;
	if ((copy = malloc(bytes->len)) == NULL)
		return -1;
	memcpy(copy, bytes->data, bytes->len);
	bytes->data = copy; /* freed with the request, as protobuf-c's own copy would be */
	*borrowed = NULL;
	return 0;
}

/* Frees a request, but not a payload it borrows. */
void
request_free(ProtobufCMessage *request, ProtobufCBinaryData *borrowed)
{
	if (borrowed != NULL) {
		borrowed->data = NULL;
		borrowed->len = 0;
	}
	protobuf_c_message_free_unpacked(request, NULL);
}
