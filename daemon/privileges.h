/*
 * privileges.h - dropping root after start-up, keeping only the capabilities a policy
 * can grant to brokered sockets (CAP_NET_BIND_SERVICE, CAP_NET_RAW).
 */
#ifndef SOCKRPCD_PRIVILEGES_H
#define SOCKRPCD_PRIVILEGES_H

/* When running as root: switch to `user` (NULL: "sockrpc" if it exists, else stay root
 * with a warning), keeping the two capabilities. Not root: does nothing. Returns 0 or -1
 * (logged). */
int privileges_drop(const char *user);

#endif
