/*
 * options.c - the socket options a policy can name (option rules), and which values of
 * each an unprivileged process could set by itself: setting any other needs a rule naming
 * the option. The table follows the kernel's checks in sk_setsockopt().
 */
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <strings.h>
#include <sys/socket.h>

#include "policy.h"

/*
 * Every SOL_SOCKET option a client can set (the wire's enum Option, plus the privileged
 * ones of this OS so a policy may name them), and the values an unprivileged process may
 * set directly: free_lo..free_hi (free_lo > free_hi: none). Outside that range the option
 * is privileged - the daemon would lend its own privilege - and only a rule naming it
 * allows it. An option missing here counts as privileged (fail closed), so a new wire
 * option is refused to everyone but the daemon's own uid until it is classified here.
 * The kernel's checks are those of sk_setsockopt() in net/core/sock.c.
 * Options of other levels are keyed by POLICY_OPTION_KEY(level, name). Of those only
 * unprivileged ones travel on the wire (TCP keepalive and Nagle, IP_TTL, IP_TOS, IPV6_V6ONLY,
 * multicast TTL, loop and membership): IP_TRANSPARENT, IP_FREEBIND and other options
 * needing CAP_NET_RAW/CAP_NET_ADMIN cannot be asked for.
 */
static const struct option_info {
	const char *name;
	int option;
	long long free_lo, free_hi;
	const char *privilege; /* what the kernel wants outside free_lo..free_hi */
} option_table[] = {
    /* EACCES unless CAP_NET_ADMIN for any non-zero value. */
    {"SO_DEBUG", SO_DEBUG, 0, 0, "CAP_NET_ADMIN"},
    /* The kernel's SO_REUSEADDR check compares no owner. */
    {"SO_REUSEADDR", SO_REUSEADDR, LLONG_MIN, LLONG_MAX, NULL},
#ifdef SO_REUSEPORT
    /* Sharing a port needs the same owner; a brokered socket is the client's
     * (as_client_socket), and ops_options.c refuses it on a socket the daemon owns. */
    {"SO_REUSEPORT", SO_REUSEPORT, LLONG_MIN, LLONG_MAX, NULL},
#endif
    {"SO_KEEPALIVE", SO_KEEPALIVE, LLONG_MIN, LLONG_MAX, NULL},
    {"SO_DONTROUTE", SO_DONTROUTE, LLONG_MIN, LLONG_MAX, NULL},
    {"SO_BROADCAST", SO_BROADCAST, LLONG_MIN, LLONG_MAX, NULL},
    {"SO_LINGER", SO_LINGER, LLONG_MIN, LLONG_MAX, NULL},
    {"SO_OOBINLINE", SO_OOBINLINE, LLONG_MIN, LLONG_MAX, NULL},
#ifdef SO_TIMESTAMP
    {"SO_TIMESTAMP", SO_TIMESTAMP, LLONG_MIN, LLONG_MAX, NULL},
#endif
    /* Capped at net.core.wmem_max/rmem_max for everyone, root included. */
    {"SO_SNDBUF", SO_SNDBUF, LLONG_MIN, LLONG_MAX, NULL},
    {"SO_RCVBUF", SO_RCVBUF, LLONG_MIN, LLONG_MAX, NULL},
    {"SO_SNDLOWAT", SO_SNDLOWAT, LLONG_MIN, LLONG_MAX, NULL},
    {"SO_RCVLOWAT", SO_RCVLOWAT, LLONG_MIN, LLONG_MAX, NULL},
    /* Kept by the daemon as call semantics, never set on the OS socket. */
    {"SO_SNDTIMEO", SO_SNDTIMEO, LLONG_MIN, LLONG_MAX, NULL},
    {"SO_RCVTIMEO", SO_RCVTIMEO, LLONG_MIN, LLONG_MAX, NULL},
#ifdef SO_PRIORITY
    /* EPERM outside 0..6 unless CAP_NET_RAW or CAP_NET_ADMIN. */
    {"SO_PRIORITY", SO_PRIORITY, 0, 6, "CAP_NET_RAW or CAP_NET_ADMIN"},
#endif
#ifdef SO_MARK
    /* EPERM unless CAP_NET_RAW or CAP_NET_ADMIN. */
    {"SO_MARK", SO_MARK, 1, 0, "CAP_NET_RAW or CAP_NET_ADMIN"},
#endif
#ifdef SO_BINDTODEVICE
    /* Re-binding a bound socket to another device needs CAP_NET_RAW; its value is a name,
     * which the wire's integer cannot carry anyway. */
    {"SO_BINDTODEVICE", SO_BINDTODEVICE, 1, 0, "CAP_NET_RAW"},
#endif
#ifdef SO_SNDBUFFORCE
    /* EPERM unless CAP_NET_ADMIN: beyond net.core.wmem_max/rmem_max. */
    {"SO_SNDBUFFORCE", SO_SNDBUFFORCE, 1, 0, "CAP_NET_ADMIN"},
    {"SO_RCVBUFFORCE", SO_RCVBUFFORCE, 1, 0, "CAP_NET_ADMIN"},
#endif
    /* Other levels: the kernel checks no privilege for any value of these (IP_TOS may
     * set any DSCP; ECN bits are the stack's own on TCP). */
    {"TCP_NODELAY", POLICY_OPTION_KEY(IPPROTO_TCP, TCP_NODELAY), LLONG_MIN, LLONG_MAX, NULL},
    {"TCP_KEEPIDLE", POLICY_OPTION_KEY(IPPROTO_TCP, TCP_KEEPIDLE), LLONG_MIN, LLONG_MAX, NULL},
    {"TCP_KEEPINTVL", POLICY_OPTION_KEY(IPPROTO_TCP, TCP_KEEPINTVL), LLONG_MIN, LLONG_MAX, NULL},
    {"TCP_KEEPCNT", POLICY_OPTION_KEY(IPPROTO_TCP, TCP_KEEPCNT), LLONG_MIN, LLONG_MAX, NULL},
    {"IPV6_V6ONLY", POLICY_OPTION_KEY(IPPROTO_IPV6, IPV6_V6ONLY), LLONG_MIN, LLONG_MAX, NULL},
    {"IP_TTL", POLICY_OPTION_KEY(IPPROTO_IP, IP_TTL), LLONG_MIN, LLONG_MAX, NULL},
    {"IP_TOS", POLICY_OPTION_KEY(IPPROTO_IP, IP_TOS), LLONG_MIN, LLONG_MAX, NULL},
    {"IP_MULTICAST_TTL", POLICY_OPTION_KEY(IPPROTO_IP, IP_MULTICAST_TTL), LLONG_MIN, LLONG_MAX,
     NULL},
    {"IP_MULTICAST_LOOP", POLICY_OPTION_KEY(IPPROTO_IP, IP_MULTICAST_LOOP), LLONG_MIN, LLONG_MAX,
     NULL},
    /* The kernel asks nothing, but a group joined through the daemon is joined on the
     * daemon's interfaces (the kernel's pick, or a named one), which a sandbox's own
     * network does not have: only a rule naming the option allows it. */
    {"IP_ADD_MEMBERSHIP", POLICY_OPTION_KEY(IPPROTO_IP, IP_ADD_MEMBERSHIP), 1, 0,
     "an interface of the daemon's network"},
    {"IP_DROP_MEMBERSHIP", POLICY_OPTION_KEY(IPPROTO_IP, IP_DROP_MEMBERSHIP), LLONG_MIN, LLONG_MAX,
     NULL},
};

#define N_OPTIONS (sizeof(option_table) / sizeof(option_table[0]))

static const struct option_info *option_find(int option);

const char *
policy_option_privilege(int option, long long value)
{
	const struct option_info *o = option_find(option);

	if (o == NULL)
		return "a privilege sockrpcd does not know (an unclassified option)";
	if (value >= o->free_lo && value <= o->free_hi)
		return NULL;
	return o->privilege;
}

const char *
policy_option_name(int option)
{
	const struct option_info *o = option_find(option);

	return o != NULL ? o->name : NULL;
}

int
policy_option_parse(const char *name, int *out)
{
	for (size_t i = 0; i < N_OPTIONS; i++) {
		if (strcasecmp(name, option_table[i].name) == 0) {
			*out = option_table[i].option;
			return 0;
		}
	}
	return -1;
}

static const struct option_info *
option_find(int option)
{
	for (size_t i = 0; i < N_OPTIONS; i++)
		if (option_table[i].option == option)
			return &option_table[i];
	return NULL;
}
