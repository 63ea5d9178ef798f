/*
 * reference_constants.h - the constant names of the API reference, in its order
 * (shared/api/blade-socket.md, "Constants", strings aside), for the suites that check the
 * library's table against it.
 */
#ifndef SOCKRPC_TEST_REFERENCE_CONSTANTS_H
#define SOCKRPC_TEST_REFERENCE_CONSTANTS_H

#include <stddef.h>

static const char *const reference_names[] = {
    "SOCK_STREAM",  "SOCK_DGRAM",     "SOCK_RAW",        "SOCK_RDM",      "SOCK_SEQPACKET",
    "SO_DEBUG",     "SO_ACCEPTCONN",  "SO_REUSEADDR",    "SO_KEEPALIVE",  "SO_DONTROUTE",
    "SO_BROADCAST", "SO_USELOOPBACK", "SO_LINGER",       "SO_OOBINLINE",  "SO_REUSEPORT",
    "SO_TIMESTAMP", "SO_SNDBUF",      "SO_RCVBUF",       "SO_SNDLOWAT",   "SO_RCVLOWAT",
    "SO_SNDTIMEO",  "SO_RCVTIMEO",    "SO_ERROR",        "SO_TYPE",       "SOL_SOCKET",
    "AF_UNSPEC",    "AF_UNIX",        "AF_LOCAL",        "AF_INET",       "AF_IMPLINK",
    "AF_PUP",       "AF_CHAOS",       "AF_NS",           "AF_ISO",        "AF_OSI",
    "AF_ECMA",      "AF_DATAKIT",     "AF_CCITT",        "AF_SNA",        "AF_DECnet",
    "AF_DLI",       "AF_LAT",         "AF_HYLINK",       "AF_APPLETALK",  "AF_INET6",
    "IPPROTO_IP",   "IPPROTO_ICMP",   "IPPROTO_IGMP",    "IPPROTO_IPIP",  "IPPROTO_TCP",
    "IPPROTO_EGP",  "IPPROTO_PUP",    "IPPROTO_UDP",     "IPPROTO_IDP",   "IPPROTO_TP",
    "IPPROTO_DCCP", "IPPROTO_IPV6",   "IPPROTO_RSVP",    "IPPROTO_GRE",   "IPPROTO_ESP",
    "IPPROTO_AH",   "IPPROTO_MTP",    "IPPROTO_BEETPH",  "IPPROTO_ENCAP", "IPPROTO_PIM",
    "IPPROTO_COMP", "IPPROTO_SCTP",   "IPPROTO_UDPLITE", "IPPROTO_MPLS",  "IPPROTO_RAW",
    "IPPROTO_MAX",  "SHUT_RD",        "SHUT_WR",         "SHUT_RDWR",     "SOMAXCONN",
};
#define N_REFERENCE (sizeof(reference_names) / sizeof(reference_names[0]))

#endif
