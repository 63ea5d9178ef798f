/*
 * policy_internal.h - the loaded form of a policy, shared by the library's files: parse.c
 * builds it, policy.c owns and frees it, match.c reads it, format.c and explain.c show it.
 * Nothing outside daemon/policy/ includes this; the daemon sees only policy.h.
 */
#ifndef SOCKRPCD_POLICY_INTERNAL_H
#define SOCKRPCD_POLICY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

/* Transports a rule may name; 0 in a rule means any. */
#define TRANSPORT_TCP 0x1u
#define TRANSPORT_UDP 0x2u
#define TRANSPORT_RAW 0x4u
#define TRANSPORT_UNIX 0x8u
#define TRANSPORT_INET (TRANSPORT_TCP | TRANSPORT_UDP | TRANSPORT_RAW)

/* IP versions a rule may name (`ipv4`, `ipv6`); 0 means both. */
#define IPVER_4 0x1u
#define IPVER_6 0x2u

#define POLICY_ALL_OPS ((1u << POLICY_OP_COUNT) - 1)

/* A CIDR block; family is AF_INET (addr[0..3]) or AF_INET6. */
struct cidr {
	int family;
	int prefix;
	uint8_t addr[16];
};

struct port_range {
	uint16_t lo, hi;
};

/* A Unix socket path: exact, or a prefix (written with a trailing `*`). Abstract names are
 * stored without the leading NUL and flagged. */
struct unix_path {
	char *path;
	size_t len;
	bool prefix;
	bool abstract;
};

/* A host name pattern, lower-case, no trailing dot: exact "example.com", suffix
 * "*.example.com" (stored as ".example.com", at least one more label), or any ("*"). */
struct name_pattern {
	char *text;
	bool suffix;
	bool any;
};

struct rule {
	int line; /* 0: the embedded default */
	bool allow;

	/* who: every condition present must hold; an empty list means no condition */
	uid_t *uids;
	size_t n_uids;
	gid_t *gids; /* membership: primary or supplementary */
	size_t n_gids;
	char **exes; /* fnmatch(3) globs */
	size_t n_exes;
	char **cgroups;
	size_t n_cgroups;
	/* TLS peers only (a Unix peer never matches them, nor a TLS peer uid/gid/exe/cgroup) */
	char **principals; /* fnmatch(3) globs on URI SANs, DNS SANs, CN */
	size_t n_principals;
	uint8_t (*spkis)[32]; /* SHA-256 of the certificate's SubjectPublicKeyInfo */
	size_t n_spkis;
	/* claimed-exe= (or != when negated) globs: deny rules only, as the client says it */
	char **claimed_exes;
	size_t n_claimed_exes;
	bool claimed_exe_negated;

	unsigned ops; /* bit per enum policy_op */

	/* where */
	unsigned transports;
	unsigned ipvers;
	struct cidr *cidrs;
	size_t n_cidrs;
	struct unix_path *paths;
	size_t n_paths;
	struct port_range *ports;
	size_t n_ports;
	struct name_pattern *names;
	size_t n_names;
	int *options; /* option names (host SO_*): the rule matches only setting these */
	size_t n_options;
	/* The embedded default's rule: the daemon's own uid may set every option, privileged
	 * ones included (that peer could already ptrace the daemon). No file rule has it. */
	bool all_options;

	int max_handles;
	int max_connections;
	bool handback; /* `handback`: connect and accept may hand the socket to the client */
	char *reason;  /* NULL: a generated reason */
};

struct policy {
	char *source; /* file name, or NULL for the embedded default */
	struct rule *rules;
	size_t n_rules;
	struct policy_limits limits;
	/* The embedded default owns its one rule and uid here, so it needs one allocation. */
	struct rule default_rule;
	uid_t default_uid;
	bool is_static; /* the out-of-memory fallback: never freed */
};

/* A request's target address, decoded once per decision. */
struct target {
	enum { TARGET_NONE, TARGET_BAD, TARGET_IP, TARGET_UNIX } kind;
	int family; /* TARGET_IP: AF_INET (including IPv4-mapped IPv6) or AF_INET6 */
	uint8_t ip[16];
	int port;
	const char *path; /* TARGET_UNIX: not NUL-terminated; NULL for an unnamed socket */
	size_t path_len;
	bool abstract;
};

/* policy.c */
/* Frees what a rule owns (not the rule itself) and zeroes it. */
void rule_free(struct rule *r);

/* match.c */
bool cidr_contains(const struct cidr *c, int family, const uint8_t *addr);
/* Decodes rq->addr (NULL: TARGET_NONE; malformed: TARGET_BAD). Points into rq->addr. */
void decode_target(const struct policy_request *rq, struct target *t);

/* format.c */
/* Copies s into buf of len bytes, cut to fit, NUL-terminated; returns the length copied
 * (strlen(s) when len is 0). A snprintf "%s" without the format. */
size_t policy_copy_text(char *buf, size_t len, const char *s);
/* "FILE:LINE" of a rule, or "default" for the embedded default's. */
void rule_label(const struct policy *p, const struct rule *r, char *buf, size_t len);

#endif
