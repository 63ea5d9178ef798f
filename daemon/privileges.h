/*
 * privileges.h - dropping root after start-up, keeping only the capabilities a policy
 * can grant to brokered sockets (CAP_NET_BIND_SERVICE, CAP_NET_RAW).
 */
#ifndef SOCKRPCD_PRIVILEGES_H
#define SOCKRPCD_PRIVILEGES_H

/* The user a root daemon drops to when --user is not given, if that user exists. */
#define PRIVILEGES_DEFAULT_USER "sockrpc"

/*
 * When running as root: switch to `user` (NULL: PRIVILEGES_DEFAULT_USER if it exists,
 * else stay root with a warning) with no supplementary groups, keeping exactly
 * CAP_NET_BIND_SERVICE and CAP_NET_RAW (permitted and effective; nothing inheritable,
 * nothing ambient), with every other capability gone from the bounding set and
 * no_new_privs set. Call it once, after the listener is open and before serving.
 * Not root (systemd started us as User= with AmbientCapabilities=): does nothing.
 *
 * Files the daemon reopens later (the policy on SIGHUP, the audit log) are then opened
 * as that user, so they must be readable (writable for the audit log) by it.
 * Returns 0 or -1 (logged).
 */
int privileges_drop(const char *user);

#endif
