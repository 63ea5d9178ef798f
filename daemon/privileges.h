/*
 * privileges.h - the worker's drop from root to nothing: another user, no supplementary
 * groups, no capability in any set (the bounding set included), no_new_privs.
 */
#ifndef SOCKRPCD_PRIVILEGES_H
#define SOCKRPCD_PRIVILEGES_H

#include <sys/types.h>

/* The user the worker runs as when --user is not given; it must exist (tools/install-deps
 * and systemd/sockrpcd.sysusers create it). `--user root` runs one root process instead. */
#define PRIVILEGES_DEFAULT_USER "sockrpc"

/*
 * Becomes `name` (uid, gid, no supplementary groups) for good, with every capability gone
 * from the effective, permitted, inheritable, ambient and bounding sets and no_new_privs
 * set, then checks that the kernel agrees and that root cannot be taken back.
 * Must be called as root. Returns 0 or -1 (logged).
 */
int privileges_drop(const char *name, uid_t uid, gid_t gid);

#endif
