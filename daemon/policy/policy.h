/*
 * policy.h - who may do what to which address: the policy library's interface. A policy is
 * an ordered list of rules loaded from a file (docs/policy.md) or the embedded default (the
 * daemon's own uid may do everything, everyone else is denied). policy_decide() answers one
 * request: first matching rule wins, no match denies. A loaded policy is immutable, so a
 * reload builds a new one and swaps.
 */
#ifndef SOCKRPCD_POLICY_H
#define SOCKRPCD_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "identity.h"

enum policy_op {
	POLICY_CREATE,
	POLICY_CONNECT,
	POLICY_BIND,
	POLICY_LISTEN,
	POLICY_ACCEPT,
	POLICY_SEND, /* send_to on an unconnected datagram socket */
	POLICY_RESOLVE,
	POLICY_OPTION,
	POLICY_OP_COUNT
};

/* One question for the policy. addr is set for connect, bind, send (the remote or local
 * address), listen (the bound local address) and accept (the new peer); NULL otherwise. */
struct policy_request {
	const struct identity *who;
	enum policy_op op;
	int family;                  /* host AF_* (AF_UNSPEC for a resolve with no hint) */
	int type;                    /* host SOCK_* (SOCK_NONBLOCK/SOCK_CLOEXEC ignored) */
	const struct sockaddr *addr; /* the target (listen: bound address, accept: peer) */
	socklen_t addr_len;
	const char *name;       /* resolve: the host name asked for; else may be NULL */
	int option;             /* POLICY_OPTION: host SO_* */
	long long option_value; /* POLICY_OPTION: the value to set (privilege may depend on it) */
};

struct policy_decision {
	bool allow;
	char rule[300];      /* "FILE:LINE" of the deciding rule, or "default" */
	char reason[200];    /* the rule's reason "...", or a generated one */
	int max_handles;     /* allow: the rule's max-handles for the session, -1 none */
	int max_connections; /* allow: the rule's max-connections for the session, -1 none */
	/* allow: the rule says `handback` and it covers this socket's type (a datagram socket
	 * only where the rule names udp): the socket may be handed to the client. */
	bool handback;
	int rule_line; /* the deciding rule's line; 0: the embedded default or no rule */
};

/* Daemon-wide limits set by `limit NAME VALUE` lines; -1 where the policy sets none. */
struct policy_limits {
	int sessions;            /* limit sessions N */
	int sessions_per_uid;    /* limit sessions-per-uid N */
	int handles_per_session; /* limit handles-per-session N */
	int64_t queued_bytes;    /* limit queued-bytes N[K|M|G] */
};

struct policy;

/* policy.c */

/* The embedded default policy, for a daemon running as `daemon_uid`. Never NULL (if memory
 * is short it returns a static deny-everything policy; policy_free() accepts it). */
struct policy *policy_default(uid_t daemon_uid);

/* Accepts NULL. */
void policy_free(struct policy *p);

/* The `limit` lines of the policy; fields are -1 when unset. Never NULL. */
const struct policy_limits *policy_limits(const struct policy *p);

/* Number of rules (the embedded default has one). */
size_t policy_rule_count(const struct policy *p);

/* "FILE" the rules came from, or "default". */
const char *policy_source(const struct policy *p);

/* parse.c */

/* Parses FILE. Returns a new policy (free with policy_free), or NULL with every error
 * written to `errors` as "FILE:LINE: message\n" lines (truncated to errors_len). */
struct policy *policy_load(const char *path, char *errors, size_t errors_len);

/* As policy_load, from a stream; `name` is the FILE shown in rules and errors. */
struct policy *policy_load_stream(FILE *f, const char *name, char *errors, size_t errors_len);

/* match.c */

/* Decides one request. Never fails. */
void policy_decide(const struct policy *p, const struct policy_request *rq,
                   struct policy_decision *out);

/*
 * Rewrites a destination (connect, send) in place to the address the kernel reaches, so
 * that the address checked and the address used are one: 0.0.0.0/8 and ::ffff:0.0.0.0/104
 * become 127.0.0.1 (::ffff:127.0.0.1), :: becomes ::1. Family and length never change.
 * policy_decide applies it to connect and send itself; the daemon applies it to the
 * address it then uses. Returns true if it rewrote `sa`. Not for bind (0.0.0.0 there means
 * every local address) nor for accept or listen.
 */
bool policy_canonical_destination(struct sockaddr *sa, socklen_t len);

/* options.c */

/*
 * How the policy names an option (struct policy_request's `option`, a rule's options): a
 * SOL_SOCKET option is its host SO_* number; one of another level (IPPROTO_TCP, IPPROTO_IP,
 * IPPROTO_IPV6) is offset past every SO_* number, so TCP_NODELAY never reads as SO_DEBUG.
 */
#define POLICY_OPTION_KEY(level, name)                                                             \
	((level) == SOL_SOCKET ? (name) : (((level) + 1) << 16 | (name)))

/*
 * Options that give what a client could not do by itself (a capability, or the same-owner
 * checks of SO_REUSEADDR/SO_REUSEPORT that brokered sockets, all owned by the daemon,
 * would void). Setting `option` (host SO_*) to `value` needs a rule naming the option:
 * returns what the kernel would want directly ("CAP_NET_ADMIN", ...), or NULL when the
 * value is free to set.
 */
const char *policy_option_privilege(int option, long long value);

/* "SO_DEBUG" for the host SO_DEBUG, or NULL for an option the policy cannot name. */
const char *policy_option_name(int option);

/* Parses an option name as written in policy files ("SO_DEBUG", any case). 0 or -1. */
int policy_option_parse(const char *name, int *out);

/* format.c */

/* "create", "connect", ... as written in policy files; "?" when out of range. */
const char *policy_op_name(enum policy_op op);

/* Parses an op name as written in policy files. Returns 0 or -1. */
int policy_op_parse(const char *name, enum policy_op *out);

/* "ipv4", "ipv6", "unix", "unspec", or "af<N>". Returns a static or `buf` (>= 16 bytes). */
const char *policy_family_name(int family, char *buf, size_t len);

/* "stream", "dgram", "raw", "seqpacket", "any" (0), or "type<N>". As above. */
const char *policy_type_name(int type, char *buf, size_t len);

/* Formats a socket address for people and the audit log: "10.0.0.1", "::1", "/run/x.sock",
 * "@abstract" (NUL bytes shown as @), "" for an unnamed Unix socket. *port is the port or -1.
 * Returns 0, or -1 if addr is NULL or malformed (buf then ""). */
int policy_format_addr(const struct sockaddr *addr, socklen_t len, char *buf, size_t buf_len,
                       int *port);

/* "a.b.c.d" into buf, which holds INET_ADDRSTRLEN (16) bytes. */
void policy_format_ipv4(const uint8_t ip[4], char *buf);

/* explain.c */

/*
 * Writes to `out` what a valid policy does not do although it may look as if it does, one
 * line per rule, "FILE:LINE: warning: ..." (exe= and cgroup= allow rules) or
 * "FILE:LINE: note: ..." (allow rules covering `option` that name none, so grant no
 * privileged option). Returns the number of warnings (notes not counted).
 */
int policy_warnings(const struct policy *p, FILE *out);

/* `sockrpcd --explain [--policy FILE] WORDS...`: argv[0..argc-1] are the WORDS (no program
 * name), e.g. {"uid=1000", "connect", "tcp", "10.1.2.3:443"}. policy_path NULL: the
 * embedded default for the current uid. Prints the decision, rule and reason to `out`.
 * Returns 0 allow, 1 deny, 2 usage error or unloadable policy (message on `out`). */
int explain_main(const char *policy_path, int argc, char **argv, FILE *out);

/* `sockrpcd --check-policy FILE`: prints "FILE: ok, N rules" to `out`, or each error as
 * "FILE:LINE: message" to `err`. Returns 0 valid, 1 invalid. */
int check_policy_main(const char *path, FILE *out, FILE *err);

#endif
