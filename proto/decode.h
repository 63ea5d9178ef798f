/*
 * decode.h - a message unpacked under a memory budget, without its unknown fields.
 *
 * protobuf-c keeps every field it does not know, each in an allocation of its own, so a
 * body of 2-byte unknown fields unpacks to some 30 times its size. sr_decode() unpacks
 * with an allocator that counts the heap in use and fails past a budget, then drops the
 * unknown fields at every level (a newer peer's fields are ignored, as protobuf intends;
 * Hello's reply_channel relies on it) and says how much heap the message still holds.
 * Shared by the daemon and the client library.
 */
#ifndef SOCKRPC_DECODE_H
#define SOCKRPC_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/*
 * Unpacks a body of `len` bytes as sr_payload_unpack() does (a large payload is borrowed
 * from body; *borrowed says so), using at most `budget` bytes of heap at any time, and
 * drops its unknown fields. On success *held is the heap the message holds (malloc's
 * bookkeeping included). Returns NULL if it does not decode; *over_budget then says
 * whether it was for want of budget. Free the result with sr_payload_free_unpacked(msg,
 * NULL, *borrowed).
 */
ProtobufCMessage *sr_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *body, size_t len,
                            size_t budget, size_t *held, ProtobufCBinaryData **borrowed,
                            bool *over_budget);

#endif
