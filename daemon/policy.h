/*
 * policy.h - who may do what to which address: the daemon's decision interface.
 *
 * A policy is an ordered list of rules loaded from a file (docs/policy.md) or the
 * embedded default (the daemon's own uid may do everything, everyone else is
 * denied). policy_decide() answers one request; first matching rule wins; no match
 * denies. A policy is immutable once loaded, so a reload builds a new one and swaps.
 */
#ifndef SOCKRPCD_POLICY_H
#define SOCKRPCD_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#define IDENTITY_MAX_GROUPS 64

/* Who is calling: taken from the kernel at accept, never from the client. */
struct identity {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	int n_groups; /* supplementary groups (SO_PEERGROUPS), at most IDENTITY_MAX_GROUPS */
	gid_t groups[IDENTITY_MAX_GROUPS];
	char exe[256];    /* the peer's executable path, "" if unknown */
	char cgroup[256]; /* the peer's cgroup v2 path, "" if unknown */
};

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

struct policy_request {
	const struct identity *who;
	enum policy_op op;
	int family;                  /* host AF_* */
	int type;                    /* host SOCK_* */
	const struct sockaddr *addr; /* connect/bind/listen/accept/send target, else NULL */
	socklen_t addr_len;
	const char *name;            /* resolve: the host name asked for; else may be NULL */
	int option;                  /* POLICY_OPTION: host SO_* */
};

struct policy_decision {
	bool allow;
	char rule[300];   /* "FILE:LINE" of the deciding rule, or "default" */
	char reason[200]; /* the rule's reason "...", or a generated one */
};

struct policy;

/* The embedded default policy, for a daemon running as `daemon_uid`. Never NULL. */
struct policy *policy_default(uid_t daemon_uid);

/* Parses FILE. Returns a new policy (free with policy_free), or NULL with every error
 * written to `errors` as "FILE:LINE: message\n" lines (truncated to errors_len). */
struct policy *policy_load(const char *path, char *errors, size_t errors_len);

void policy_free(struct policy *p);

/* Decides one request. Never fails. */
void policy_decide(const struct policy *p, const struct policy_request *rq,
                   struct policy_decision *out);

const char *policy_op_name(enum policy_op op);

#endif
