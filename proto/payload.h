/*
 * payload.h - a message's payload (its one bytes field, such as Send's or Receive's data)
 * kept out of protobuf-c's copies.
 *
 * protobuf-c packs a bytes field by copying it into the message and unpacks it by copying
 * it out again: two copies of every byte a client sends, one on each side, and one more of
 * every byte it receives. Instead, the client packs a request's other fields and writes the
 * payload field after them straight from the caller's buffer, and whoever unpacks (the
 * daemon a request, the client a reply) decodes the other fields and points the payload
 * field into the body it read. What travels is ordinary protobuf either way: a field may
 * come in any order, and the last of a repeated singular field wins, as this code keeps it.
 * Shared by the daemon and the client library.
 */
#ifndef SOCKRPC_PAYLOAD_H
#define SOCKRPC_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* Payloads shorter than this are packed and unpacked as usual: copying them costs less. */
#define SR_PAYLOAD_BY_REFERENCE_MIN 4096u

/* The most bytes the other fields of a message whose payload is kept apart may take. */
#define SR_PAYLOAD_REST_MAX 1024u

/* Room sr_payload_key() needs: a field key and a length, each a varint. */
#define SR_PAYLOAD_KEY_MAX 20u

/* The message's payload field: its only bytes field, singular; NULL if it has none. */
const ProtobufCFieldDescriptor *sr_payload_field(const ProtobufCMessageDescriptor *desc);

/* The payload field's bytes in `msg` (whose descriptor has `field`). */
ProtobufCBinaryData *sr_payload_of(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *field);

/* Writes v as a protobuf varint (at most 10 bytes) at `at`; returns its length. */
size_t sr_varint_put(uint8_t *at, uint64_t v);

/* Writes the key and length prefix of a `len`-byte length-delimited field; returns their
 * length (at most SR_PAYLOAD_KEY_MAX). */
size_t sr_payload_key(uint8_t out[SR_PAYLOAD_KEY_MAX], unsigned field_number, size_t len);

/*
 * Splits a message body of `len` bytes: every field but `field_number` is copied, in
 * order, to rest (at most rest_cap bytes; *rest_len says how many), and *payload and
 * *payload_len locate the field's last occurrence inside body (NULL and 0 if it is
 * absent). Returns 0, or -1 when the body is not a well-formed sequence of fields, the
 * field is not length-delimited, or the rest does not fit: the caller then unpacks body
 * whole, which reports a malformed body as protobuf-c does.
 */
int sr_payload_split(const uint8_t *body, size_t len, unsigned field_number, uint8_t *rest,
                     size_t rest_cap, size_t *rest_len, const uint8_t **payload,
                     size_t *payload_len);

/*
 * Unpacks a message body of `len` bytes with protobuf-c (allocator may be NULL), or
 * returns NULL if it does not decode. A payload of SR_PAYLOAD_BY_REFERENCE_MIN bytes or
 * more is not copied: the payload field points into body, which must outlive that use,
 * and *borrowed points at the field (else it is NULL).
 */
ProtobufCMessage *sr_payload_unpack(const ProtobufCMessageDescriptor *desc,
                                    ProtobufCAllocator *allocator, const uint8_t *body, size_t len,
                                    ProtobufCBinaryData **borrowed);

/* Frees what sr_payload_unpack() returned, but not a payload it borrows. */
void sr_payload_free_unpacked(ProtobufCMessage *msg, ProtobufCAllocator *allocator,
                              ProtobufCBinaryData *borrowed);

#endif
