/*
 * enums.h - this host's socket constants <-> the wire enums of sockrpc.proto.
 *
 * The daemon and the client library both translate through these tables, so a
 * value on the wire never depends on one operating system's numbering. Each
 * function returns 0 with the result in *out, or -1 if the value has no
 * counterpart (a wire value unknown to this protocol, or a constant this OS lacks).
 */
#ifndef SOCKRPC_ENUMS_H
#define SOCKRPC_ENUMS_H

#include <stdint.h>

int enum_family_to_host(int wire, int *out);
int enum_family_from_host(int host, int *out);
int enum_type_to_host(int wire, int *out);
int enum_type_from_host(int host, int *out);
int enum_protocol_to_host(int wire, int *out);
int enum_protocol_from_host(int host, int *out);
int enum_option_to_host(int wire, int *out);
int enum_option_from_host(int host, int *out);
/* Any level: SOL_SOCKET's SO_* or another level's option (TCP_NODELAY, IP_TTL...). */
int enum_option_level_to_host(int wire, int *level, int *name);
int enum_option_level_from_host(int level, int name, int *out);
int enum_shutdown_to_host(int wire, int *out);
int enum_shutdown_from_host(int host, int *out);
/* Message flags are bit sets; an unknown bit fails the whole set. */
int enum_msg_flags_to_host(uint32_t wire, int *out);
int enum_msg_flags_from_host(int host, uint32_t *out);

/* Names for messages: "AF_INET", "SOCK_STREAM", "SO_KEEPALIVE"; "?" if unknown. */
const char *enum_family_name(int wire);
const char *enum_type_name(int wire);
const char *enum_option_name(int wire);

#endif
