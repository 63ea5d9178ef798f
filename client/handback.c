/*
 * handback.c - sockets handed back: the daemon passes a connected or accepted socket
 * itself (SCM_RIGHTS, on the reply) where the policy's rule says `handback`, and keeps no
 * copy. The descriptor arrives through the transport (transport.h take_fd); this file
 * asks for it and hands it to the caller.
 */
#include <errno.h>

#include "internal.h"

int
sr_connect_fd(sr_client *c, int family, int type, const char *host, int port, int timeout_ms,
              sr_error *err)
{
	(void)c, (void)family, (void)type, (void)host, (void)port, (void)timeout_ms;
	cl_seterr(err, SR_EUNSUPPORTED, 0, "handback is not implemented yet");
	return -1;
}

int
sr_socket_take_fd(sr_socket *s, sr_error *err)
{
	(void)s;
	cl_seterr(err, SR_EUNSUPPORTED, 0, "handback is not implemented yet");
	return -1;
}

int
sr_accept_fd(sr_socket *listener, sr_error *err)
{
	(void)listener;
	cl_seterr(err, SR_EUNSUPPORTED, 0, "handback is not implemented yet");
	return -1;
}
