/*
 * identity.h - the peer's identity, read from the kernel at accept (never from the client).
 * Fills struct identity (policy/identity.h) for the policy to match on.
 */
#ifndef SOCKRPCD_IDENTITY_H
#define SOCKRPCD_IDENTITY_H

#include "policy/identity.h"

/* Snapshots the peer of a connected Unix socket: SO_PEERCRED (uid, gid, pid), SO_PEERGROUPS,
 * and, via SO_PEERPIDFD, /proc/<pid>/exe and /proc/<pid>/cgroup. exe and cgroup are filled
 * only when the pidfd proves the pid was not reused while they were read; otherwise they
 * stay "" (unknown, and rules on them fail closed). Returns 0, or -errno if SO_PEERCRED
 * fails (then *out is untouched). Does not block; opens no fd that outlives the call. */
int identity_from_socket(int fd, struct identity *out);

#endif
