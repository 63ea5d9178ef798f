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
/* Names a TLS peer's certificate gives (URI SANs, DNS SANs, CN) kept for principal=. */
#define IDENTITY_MAX_PRINCIPALS 8
#define IDENTITY_PRINCIPAL_MAX 256

/* How the peer reached the daemon: its facts differ (a Unix peer has a uid, exe, cgroup;
 * a TLS peer has certificate names and a key hash). 0 is Unix, as before TLS existed. */
enum identity_transport { IDENTITY_UNIX = 0, IDENTITY_TLS = 1 };

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
	enum identity_transport transport;
	/* IDENTITY_TLS only (uid, gid, pid, groups, exe and cgroup then mean nothing and
	 * never match a rule): the peer's address "ADDR:PORT" ("[ADDR]:PORT" for IPv6), the
	 * verified certificate's URI SANs, then DNS SANs, then subject CN, in that order
	 * (the order principal= tries them), and the SHA-256 of its SubjectPublicKeyInfo. */
	char peer_address[64];
	int n_principals;
	char principals[IDENTITY_MAX_PRINCIPALS][IDENTITY_PRINCIPAL_MAX];
	unsigned char spki_sha256[32];
};

#endif
