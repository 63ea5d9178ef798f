/*
 * constants.c - sr_constants(): every constant name of Blade's socket module
 * (shared/api/blade-socket.md, "Constants") with this host's value. A name
 * this OS lacks is listed with present = false and value 0: each row is
 * #ifdef'd on its own macro so that no value is ever invented.
 */
#include <stddef.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "internal.h"

#define HAVE(name)                                                                                 \
	{                                                                                          \
#name, (long)(name), true                                                          \
	}
#define LACK(name)                                                                                 \
	{                                                                                          \
#name, 0, false                                                                    \
	}

/*
 * glibc declares IPPROTO_MAX as an enum member only (no macro), so #ifdef
 * cannot see it; its netinet/in.h has carried it since the enum was written.
 */
#if defined(IPPROTO_MAX) || defined(__GLIBC__)
#define SR_HAVE_IPPROTO_MAX 1
#endif

static const sr_constant constants[] = {
    HAVE(SOCK_STREAM),     HAVE(SOCK_DGRAM),   HAVE(SOCK_RAW),
#ifdef SOCK_RDM
    HAVE(SOCK_RDM),
#else
    LACK(SOCK_RDM),
#endif
    HAVE(SOCK_SEQPACKET),  HAVE(SO_DEBUG),     HAVE(SO_ACCEPTCONN), HAVE(SO_REUSEADDR),
    HAVE(SO_KEEPALIVE),    HAVE(SO_DONTROUTE), HAVE(SO_BROADCAST),
#ifdef SO_USELOOPBACK
    HAVE(SO_USELOOPBACK),
#else
    LACK(SO_USELOOPBACK),
#endif
    HAVE(SO_LINGER),       HAVE(SO_OOBINLINE),
#ifdef SO_REUSEPORT
    HAVE(SO_REUSEPORT),
#else
    LACK(SO_REUSEPORT),
#endif
#ifdef SO_TIMESTAMP
    HAVE(SO_TIMESTAMP),
#else
    LACK(SO_TIMESTAMP),
#endif
    HAVE(SO_SNDBUF),       HAVE(SO_RCVBUF),    HAVE(SO_SNDLOWAT),   HAVE(SO_RCVLOWAT),
    HAVE(SO_SNDTIMEO),     HAVE(SO_RCVTIMEO),  HAVE(SO_ERROR),      HAVE(SO_TYPE),
    HAVE(SOL_SOCKET),      HAVE(AF_UNSPEC),    HAVE(AF_UNIX),
#ifdef AF_LOCAL
    HAVE(AF_LOCAL),
#else
    LACK(AF_LOCAL),
#endif
    HAVE(AF_INET),
#ifdef AF_IMPLINK
    HAVE(AF_IMPLINK),
#else
    LACK(AF_IMPLINK),
#endif
#ifdef AF_PUP
    HAVE(AF_PUP),
#else
    LACK(AF_PUP),
#endif
#ifdef AF_CHAOS
    HAVE(AF_CHAOS),
#else
    LACK(AF_CHAOS),
#endif
#ifdef AF_NS
    HAVE(AF_NS),
#else
    LACK(AF_NS),
#endif
#ifdef AF_ISO
    HAVE(AF_ISO),
#else
    LACK(AF_ISO),
#endif
#ifdef AF_OSI
    HAVE(AF_OSI),
#else
    LACK(AF_OSI),
#endif
#ifdef AF_ECMA
    HAVE(AF_ECMA),
#else
    LACK(AF_ECMA),
#endif
#ifdef AF_DATAKIT
    HAVE(AF_DATAKIT),
#else
    LACK(AF_DATAKIT),
#endif
#ifdef AF_CCITT
    HAVE(AF_CCITT),
#else
    LACK(AF_CCITT),
#endif
#ifdef AF_SNA
    HAVE(AF_SNA),
#else
    LACK(AF_SNA),
#endif
#ifdef AF_DECnet
    HAVE(AF_DECnet),
#else
    LACK(AF_DECnet),
#endif
#ifdef AF_DLI
    HAVE(AF_DLI),
#else
    LACK(AF_DLI),
#endif
#ifdef AF_LAT
    HAVE(AF_LAT),
#else
    LACK(AF_LAT),
#endif
#ifdef AF_HYLINK
    HAVE(AF_HYLINK),
#else
    LACK(AF_HYLINK),
#endif
#ifdef AF_APPLETALK
    HAVE(AF_APPLETALK),
#else
    LACK(AF_APPLETALK),
#endif
    HAVE(AF_INET6),        HAVE(IPPROTO_IP),   HAVE(IPPROTO_ICMP),
#ifdef IPPROTO_IGMP
    HAVE(IPPROTO_IGMP),
#else
    LACK(IPPROTO_IGMP),
#endif
#ifdef IPPROTO_IPIP
    HAVE(IPPROTO_IPIP),
#else
    LACK(IPPROTO_IPIP),
#endif
    HAVE(IPPROTO_TCP),
#ifdef IPPROTO_EGP
    HAVE(IPPROTO_EGP),
#else
    LACK(IPPROTO_EGP),
#endif
#ifdef IPPROTO_PUP
    HAVE(IPPROTO_PUP),
#else
    LACK(IPPROTO_PUP),
#endif
    HAVE(IPPROTO_UDP),
#ifdef IPPROTO_IDP
    HAVE(IPPROTO_IDP),
#else
    LACK(IPPROTO_IDP),
#endif
#ifdef IPPROTO_TP
    HAVE(IPPROTO_TP),
#else
    LACK(IPPROTO_TP),
#endif
#ifdef IPPROTO_DCCP
    HAVE(IPPROTO_DCCP),
#else
    LACK(IPPROTO_DCCP),
#endif
    HAVE(IPPROTO_IPV6),
#ifdef IPPROTO_RSVP
    HAVE(IPPROTO_RSVP),
#else
    LACK(IPPROTO_RSVP),
#endif
#ifdef IPPROTO_GRE
    HAVE(IPPROTO_GRE),
#else
    LACK(IPPROTO_GRE),
#endif
#ifdef IPPROTO_ESP
    HAVE(IPPROTO_ESP),
#else
    LACK(IPPROTO_ESP),
#endif
#ifdef IPPROTO_AH
    HAVE(IPPROTO_AH),
#else
    LACK(IPPROTO_AH),
#endif
#ifdef IPPROTO_MTP
    HAVE(IPPROTO_MTP),
#else
    LACK(IPPROTO_MTP),
#endif
#ifdef IPPROTO_BEETPH
    HAVE(IPPROTO_BEETPH),
#else
    LACK(IPPROTO_BEETPH),
#endif
#ifdef IPPROTO_ENCAP
    HAVE(IPPROTO_ENCAP),
#else
    LACK(IPPROTO_ENCAP),
#endif
#ifdef IPPROTO_PIM
    HAVE(IPPROTO_PIM),
#else
    LACK(IPPROTO_PIM),
#endif
#ifdef IPPROTO_COMP
    HAVE(IPPROTO_COMP),
#else
    LACK(IPPROTO_COMP),
#endif
#ifdef IPPROTO_SCTP
    HAVE(IPPROTO_SCTP),
#else
    LACK(IPPROTO_SCTP),
#endif
#ifdef IPPROTO_UDPLITE
    HAVE(IPPROTO_UDPLITE),
#else
    LACK(IPPROTO_UDPLITE),
#endif
#ifdef IPPROTO_MPLS
    HAVE(IPPROTO_MPLS),
#else
    LACK(IPPROTO_MPLS),
#endif
    HAVE(IPPROTO_RAW),
#ifdef SR_HAVE_IPPROTO_MAX
    HAVE(IPPROTO_MAX),
#else
    LACK(IPPROTO_MAX),
#endif
    HAVE(SHUT_RD),         HAVE(SHUT_WR),      HAVE(SHUT_RDWR),     HAVE(SOMAXCONN),
};

/*
 * Families outside Blade's list, only to name them in errors ("AF_IPX is not
 * supported by sockrpc"); not part of sr_constants().
 */
static const sr_constant other_families[] = {
#ifdef AF_IPX
    HAVE(AF_IPX),
#endif
#ifdef AF_NETLINK
    HAVE(AF_NETLINK),
#endif
#ifdef AF_PACKET
    HAVE(AF_PACKET),
#endif
#ifdef AF_BLUETOOTH
    HAVE(AF_BLUETOOTH),
#endif
#ifdef AF_CAN
    HAVE(AF_CAN),
#endif
#ifdef AF_AX25
    HAVE(AF_AX25),
#endif
#ifdef AF_X25
    HAVE(AF_X25),
#endif
#ifdef AF_KEY
    HAVE(AF_KEY),
#endif
#ifdef AF_VSOCK
    HAVE(AF_VSOCK),
#endif
#ifdef AF_ALG
    HAVE(AF_ALG),
#endif
#ifdef AF_TIPC
    HAVE(AF_TIPC),
#endif
#ifdef AF_RDS
    HAVE(AF_RDS),
#endif
#ifdef AF_NETROM
    HAVE(AF_NETROM),
#endif
#ifdef AF_ROSE
    HAVE(AF_ROSE),
#endif
#ifdef AF_BRIDGE
    HAVE(AF_BRIDGE),
#endif
#ifdef AF_ATMPVC
    HAVE(AF_ATMPVC),
#endif
#ifdef AF_ATMSVC
    HAVE(AF_ATMSVC),
#endif
#ifdef AF_IRDA
    HAVE(AF_IRDA),
#endif
#ifdef AF_PPPOX
    HAVE(AF_PPPOX),
#endif
#ifdef AF_WANPIPE
    HAVE(AF_WANPIPE),
#endif
#ifdef AF_LLC
    HAVE(AF_LLC),
#endif
#ifdef AF_IB
    HAVE(AF_IB),
#endif
#ifdef AF_MPLS
    HAVE(AF_MPLS),
#endif
#ifdef AF_ISDN
    HAVE(AF_ISDN),
#endif
#ifdef AF_PHONET
    HAVE(AF_PHONET),
#endif
#ifdef AF_IEEE802154
    HAVE(AF_IEEE802154),
#endif
#ifdef AF_CAIF
    HAVE(AF_CAIF),
#endif
#ifdef AF_NFC
    HAVE(AF_NFC),
#endif
#ifdef AF_KCM
    HAVE(AF_KCM),
#endif
#ifdef AF_QIPCRTR
    HAVE(AF_QIPCRTR),
#endif
#ifdef AF_SMC
    HAVE(AF_SMC),
#endif
#ifdef AF_XDP
    HAVE(AF_XDP),
#endif
#ifdef AF_MCTP
    HAVE(AF_MCTP),
#endif
#ifdef AF_SECURITY
    HAVE(AF_SECURITY),
#endif
#ifdef AF_ROUTE
    HAVE(AF_ROUTE),
#endif
#ifdef AF_ECONET
    HAVE(AF_ECONET),
#endif
#ifdef AF_ASH
    HAVE(AF_ASH),
#endif
#ifdef AF_RXRPC
    HAVE(AF_RXRPC),
#endif
#ifdef AF_IUCV
    HAVE(AF_IUCV),
#endif
#ifdef AF_LINK
    HAVE(AF_LINK),
#endif
    {NULL, 0, false},
};

/* Returns the table and its length in *count (if count is not NULL). */
const sr_constant *
sr_constants(size_t *count)
{
	if (count != NULL)
		*count = sizeof(constants) / sizeof(constants[0]);
	return constants;
}

/* The first present name starting with prefix whose value is value, or NULL. */
const char *
cl_constant_name(const char *prefix, long value)
{
	size_t plen = strlen(prefix);

	for (size_t i = 0; i < sizeof(constants) / sizeof(constants[0]); i++) {
		if (constants[i].present && constants[i].value == value &&
		    strncmp(constants[i].name, prefix, plen) == 0)
			return constants[i].name;
	}
	for (size_t i = 0; other_families[i].name != NULL; i++) {
		if (other_families[i].value == value &&
		    strncmp(other_families[i].name, prefix, plen) == 0)
			return other_families[i].name;
	}
	return NULL;
}
