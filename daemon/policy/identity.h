/*
 * identity.h - who is calling: the peer a policy decides for. Plain data, filled by the
 * daemon from the kernel at accept (daemon/identity.c, never from the client) or by
 * --explain from its words; the policy only reads it.
 */
#ifndef SOCKRPC_POLICY_IDENTITY_H
#define SOCKRPC_POLICY_IDENTITY_H

#include <stdbool.h>
#include <sys/types.h>

#define IDENTITY_MAX_GROUPS 64

struct identity {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	int n_groups; /* supplementary groups (SO_PEERGROUPS), at most IDENTITY_MAX_GROUPS */
	gid_t groups[IDENTITY_MAX_GROUPS];
	char exe[256];    /* the peer's executable path, "" if unknown */
	char cgroup[256]; /* the peer's cgroup v2 path, "" if unknown */
	/* What the client says it runs (Hello's claimed_exe), "" if it says nothing: never
	 * verified, so only deny rules match on it (claimed-exe=). */
	char claimed_exe[256];
	/* The peer has more supplementary groups than fit: group rules then fail closed
	 * (a deny rule on a group matches, an allow rule needs the group among those kept). */
	bool groups_truncated;
};

#endif
