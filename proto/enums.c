/*
 * enums.c - tables pairing each wire enum value with this host's constant.
 * A row whose host constant this OS lacks is left out by #ifdef, so the
 * translation fails for it instead of inventing a value.
 */
#include <stddef.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "enums.h"
#include "sockrpc.pb-c.h"

struct pair {
	int wire;
	int host;
	const char *name;
};

#define ROW(wire, host)                                                                            \
	{                                                                                          \
		wire, host, #host                                                                  \
	}

static const struct pair families[] = {
    ROW(SOCKRPC__FAMILY__FAMILY_UNSPEC, AF_UNSPEC),
    ROW(SOCKRPC__FAMILY__FAMILY_UNIX, AF_UNIX),
    ROW(SOCKRPC__FAMILY__FAMILY_INET, AF_INET),
    ROW(SOCKRPC__FAMILY__FAMILY_INET6, AF_INET6),
#ifdef AF_IMPLINK
    ROW(SOCKRPC__FAMILY__FAMILY_IMPLINK, AF_IMPLINK),
#endif
#ifdef AF_PUP
    ROW(SOCKRPC__FAMILY__FAMILY_PUP, AF_PUP),
#endif
#ifdef AF_CHAOS
    ROW(SOCKRPC__FAMILY__FAMILY_CHAOS, AF_CHAOS),
#endif
#ifdef AF_NS
    ROW(SOCKRPC__FAMILY__FAMILY_NS, AF_NS),
#endif
#ifdef AF_ISO
    ROW(SOCKRPC__FAMILY__FAMILY_ISO, AF_ISO),
#endif
#ifdef AF_ECMA
    ROW(SOCKRPC__FAMILY__FAMILY_ECMA, AF_ECMA),
#endif
#ifdef AF_DATAKIT
    ROW(SOCKRPC__FAMILY__FAMILY_DATAKIT, AF_DATAKIT),
#endif
#ifdef AF_CCITT
    ROW(SOCKRPC__FAMILY__FAMILY_CCITT, AF_CCITT),
#endif
#ifdef AF_SNA
    ROW(SOCKRPC__FAMILY__FAMILY_SNA, AF_SNA),
#endif
#ifdef AF_DECnet
    ROW(SOCKRPC__FAMILY__FAMILY_DECNET, AF_DECnet),
#endif
#ifdef AF_DLI
    ROW(SOCKRPC__FAMILY__FAMILY_DLI, AF_DLI),
#endif
#ifdef AF_LAT
    ROW(SOCKRPC__FAMILY__FAMILY_LAT, AF_LAT),
#endif
#ifdef AF_HYLINK
    ROW(SOCKRPC__FAMILY__FAMILY_HYLINK, AF_HYLINK),
#endif
#ifdef AF_APPLETALK
    ROW(SOCKRPC__FAMILY__FAMILY_APPLETALK, AF_APPLETALK),
#endif
};

static const struct pair types[] = {
    ROW(SOCKRPC__TYPE__TYPE_UNSPEC, 0),         ROW(SOCKRPC__TYPE__TYPE_STREAM, SOCK_STREAM),
    ROW(SOCKRPC__TYPE__TYPE_DGRAM, SOCK_DGRAM), ROW(SOCKRPC__TYPE__TYPE_RAW, SOCK_RAW),
    ROW(SOCKRPC__TYPE__TYPE_RDM, SOCK_RDM),     ROW(SOCKRPC__TYPE__TYPE_SEQPACKET, SOCK_SEQPACKET),
};

static const struct pair protocols[] = {
    ROW(SOCKRPC__PROTOCOL__PROTO_IP, IPPROTO_IP),
    ROW(SOCKRPC__PROTOCOL__PROTO_ICMP, IPPROTO_ICMP),
    ROW(SOCKRPC__PROTOCOL__PROTO_IGMP, IPPROTO_IGMP),
    ROW(SOCKRPC__PROTOCOL__PROTO_IPIP, IPPROTO_IPIP),
    ROW(SOCKRPC__PROTOCOL__PROTO_TCP, IPPROTO_TCP),
    ROW(SOCKRPC__PROTOCOL__PROTO_EGP, IPPROTO_EGP),
    ROW(SOCKRPC__PROTOCOL__PROTO_PUP, IPPROTO_PUP),
    ROW(SOCKRPC__PROTOCOL__PROTO_UDP, IPPROTO_UDP),
    ROW(SOCKRPC__PROTOCOL__PROTO_IDP, IPPROTO_IDP),
    ROW(SOCKRPC__PROTOCOL__PROTO_TP, IPPROTO_TP),
    ROW(SOCKRPC__PROTOCOL__PROTO_DCCP, IPPROTO_DCCP),
    ROW(SOCKRPC__PROTOCOL__PROTO_IPV6, IPPROTO_IPV6),
    ROW(SOCKRPC__PROTOCOL__PROTO_RSVP, IPPROTO_RSVP),
    ROW(SOCKRPC__PROTOCOL__PROTO_GRE, IPPROTO_GRE),
    ROW(SOCKRPC__PROTOCOL__PROTO_ESP, IPPROTO_ESP),
    ROW(SOCKRPC__PROTOCOL__PROTO_AH, IPPROTO_AH),
    ROW(SOCKRPC__PROTOCOL__PROTO_MTP, IPPROTO_MTP),
    ROW(SOCKRPC__PROTOCOL__PROTO_BEETPH, IPPROTO_BEETPH),
    ROW(SOCKRPC__PROTOCOL__PROTO_ENCAP, IPPROTO_ENCAP),
    ROW(SOCKRPC__PROTOCOL__PROTO_PIM, IPPROTO_PIM),
    ROW(SOCKRPC__PROTOCOL__PROTO_COMP, IPPROTO_COMP),
    ROW(SOCKRPC__PROTOCOL__PROTO_SCTP, IPPROTO_SCTP),
    ROW(SOCKRPC__PROTOCOL__PROTO_UDPLITE, IPPROTO_UDPLITE),
    ROW(SOCKRPC__PROTOCOL__PROTO_MPLS, IPPROTO_MPLS),
    ROW(SOCKRPC__PROTOCOL__PROTO_RAW, IPPROTO_RAW),
};

static const struct pair options[] = {
    ROW(SOCKRPC__OPTION__SO_DEBUG, SO_DEBUG),
    ROW(SOCKRPC__OPTION__SO_ACCEPTCONN, SO_ACCEPTCONN),
    ROW(SOCKRPC__OPTION__SO_REUSEADDR, SO_REUSEADDR),
    ROW(SOCKRPC__OPTION__SO_KEEPALIVE, SO_KEEPALIVE),
    ROW(SOCKRPC__OPTION__SO_DONTROUTE, SO_DONTROUTE),
    ROW(SOCKRPC__OPTION__SO_BROADCAST, SO_BROADCAST),
#ifdef SO_USELOOPBACK
    ROW(SOCKRPC__OPTION__SO_USELOOPBACK, SO_USELOOPBACK),
#endif
    ROW(SOCKRPC__OPTION__SO_LINGER, SO_LINGER),
    ROW(SOCKRPC__OPTION__SO_OOBINLINE, SO_OOBINLINE),
#ifdef SO_REUSEPORT
    ROW(SOCKRPC__OPTION__SO_REUSEPORT, SO_REUSEPORT),
#endif
    ROW(SOCKRPC__OPTION__SO_TIMESTAMP, SO_TIMESTAMP),
    ROW(SOCKRPC__OPTION__SO_SNDBUF, SO_SNDBUF),
    ROW(SOCKRPC__OPTION__SO_RCVBUF, SO_RCVBUF),
    ROW(SOCKRPC__OPTION__SO_SNDLOWAT, SO_SNDLOWAT),
    ROW(SOCKRPC__OPTION__SO_RCVLOWAT, SO_RCVLOWAT),
    ROW(SOCKRPC__OPTION__SO_SNDTIMEO, SO_SNDTIMEO),
    ROW(SOCKRPC__OPTION__SO_RCVTIMEO, SO_RCVTIMEO),
    ROW(SOCKRPC__OPTION__SO_ERROR, SO_ERROR),
    ROW(SOCKRPC__OPTION__SO_TYPE, SO_TYPE),
};

/* Options of levels other than SOL_SOCKET: the wire enum implies the level. */
static const struct leveled {
	int wire, level, name;
} leveled_options[] = {
    {SOCKRPC__OPTION__TCP_NODELAY, IPPROTO_TCP, TCP_NODELAY},
    {SOCKRPC__OPTION__TCP_KEEPIDLE, IPPROTO_TCP, TCP_KEEPIDLE},
    {SOCKRPC__OPTION__TCP_KEEPINTVL, IPPROTO_TCP, TCP_KEEPINTVL},
    {SOCKRPC__OPTION__TCP_KEEPCNT, IPPROTO_TCP, TCP_KEEPCNT},
    {SOCKRPC__OPTION__IPV6_V6ONLY, IPPROTO_IPV6, IPV6_V6ONLY},
    {SOCKRPC__OPTION__IP_TTL, IPPROTO_IP, IP_TTL},
    {SOCKRPC__OPTION__IP_TOS, IPPROTO_IP, IP_TOS},
    {SOCKRPC__OPTION__IP_MULTICAST_TTL, IPPROTO_IP, IP_MULTICAST_TTL},
    {SOCKRPC__OPTION__IP_MULTICAST_LOOP, IPPROTO_IP, IP_MULTICAST_LOOP},
    {SOCKRPC__OPTION__IP_ADD_MEMBERSHIP, IPPROTO_IP, IP_ADD_MEMBERSHIP},
    {SOCKRPC__OPTION__IP_DROP_MEMBERSHIP, IPPROTO_IP, IP_DROP_MEMBERSHIP},
};

static const struct pair shutdowns[] = {
    ROW(SOCKRPC__SHUTDOWN__SHUT_RD, SHUT_RD),
    ROW(SOCKRPC__SHUTDOWN__SHUT_WR, SHUT_WR),
    ROW(SOCKRPC__SHUTDOWN__SHUT_RDWR, SHUT_RDWR),
};

static const struct pair msg_flags[] = {
    ROW(SOCKRPC__MESSAGE_FLAG__MSG_OOB, MSG_OOB),
    ROW(SOCKRPC__MESSAGE_FLAG__MSG_PEEK, MSG_PEEK),
    ROW(SOCKRPC__MESSAGE_FLAG__MSG_DONTROUTE, MSG_DONTROUTE),
    ROW(SOCKRPC__MESSAGE_FLAG__MSG_WAITALL, MSG_WAITALL),
    ROW(SOCKRPC__MESSAGE_FLAG__MSG_DONTWAIT, MSG_DONTWAIT),
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int
lookup(const struct pair *table, size_t n, int key, int by_wire, int *out)
{
	for (size_t i = 0; i < n; i++) {
		if ((by_wire ? table[i].wire : table[i].host) == key) {
			*out = by_wire ? table[i].host : table[i].wire;
			return 0;
		}
	}
	return -1;
}

static const char *
name_of(const struct pair *table, size_t n, int wire)
{
	for (size_t i = 0; i < n; i++)
		if (table[i].wire == wire)
			return table[i].name;
	return "?";
}

#define TRANSLATORS(kind, table)                                                                   \
	int enum_##kind##_to_host(int wire, int *out)                                              \
	{                                                                                          \
		return lookup(table, COUNT(table), wire, 1, out);                                  \
	}                                                                                          \
	int enum_##kind##_from_host(int host, int *out)                                            \
	{                                                                                          \
		return lookup(table, COUNT(table), host, 0, out);                                  \
	}

TRANSLATORS(family, families)
TRANSLATORS(type, types)
TRANSLATORS(protocol, protocols)
TRANSLATORS(option, options)
TRANSLATORS(shutdown, shutdowns)

int
enum_msg_flags_to_host(uint32_t wire, int *out)
{
	int host = 0;

	for (size_t i = 0; i < COUNT(msg_flags); i++) {
		if (wire & (uint32_t)msg_flags[i].wire) {
			host |= msg_flags[i].host;
			wire &= ~(uint32_t)msg_flags[i].wire;
		}
	}
	if (wire != 0)
		return -1;
	*out = host;
	return 0;
}

int
enum_msg_flags_from_host(int host, uint32_t *out)
{
	uint32_t wire = 0;

	for (size_t i = 0; i < COUNT(msg_flags); i++) {
		if (host & msg_flags[i].host) {
			wire |= (uint32_t)msg_flags[i].wire;
			host &= ~msg_flags[i].host;
		}
	}
	if (host != 0)
		return -1;
	*out = wire;
	return 0;
}

int
enum_option_level_to_host(int wire, int *level, int *name)
{
	for (size_t i = 0; i < COUNT(leveled_options); i++) {
		if (leveled_options[i].wire == wire) {
			*level = leveled_options[i].level;
			*name = leveled_options[i].name;
			return 0;
		}
	}
	if (enum_option_to_host(wire, name) != 0)
		return -1;
	*level = SOL_SOCKET;
	return 0;
}

int
enum_option_level_from_host(int level, int name, int *out)
{
	if (level == SOL_SOCKET)
		return enum_option_from_host(name, out);
	for (size_t i = 0; i < COUNT(leveled_options); i++) {
		if (leveled_options[i].level == level && leveled_options[i].name == name) {
			*out = leveled_options[i].wire;
			return 0;
		}
	}
	return -1;
}

const char *
enum_family_name(int wire)
{
	return name_of(families, COUNT(families), wire);
}

const char *
enum_type_name(int wire)
{
	return name_of(types, COUNT(types), wire);
}

const char *
enum_option_name(int wire)
{
	/* From the wire enum itself, so options this OS lacks are named too. */
	const ProtobufCEnumValue *v =
	    protobuf_c_enum_descriptor_get_value(&sockrpc__option__descriptor, wire);

	return v ? v->name : "?";
}
