/*
 * ops_options.c - socket options and the blocking mode. SO_SNDTIMEO and SO_RCVTIMEO
 * are semantics of the broker's calls (the daemon's own sockets never block), so they
 * are kept on the handle in milliseconds rather than set on the OS socket. Options of
 * other levels (TCP_NODELAY, IP_TTL...) need no privilege and are set here directly.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "enums.h"
#include "ops.h"

/* Translates the wire option, answering the call when this OS has no such option. */
static int
host_option(struct call *c, struct handle *h, int wire, int *level, int *out)
{
	if (enum_option_level_to_host(wire, level, out) == 0)
		return 0;
	if (wire != SOCKRPC__OPTION__OPTION_UNSPEC && strcmp(enum_option_name(wire), "?") != 0)
		call_fail(c, h, SOCKRPC__CODE__EUNSUPPORTED, ENOPROTOOPT,
		          "%s is not available on this OS", enum_option_name(wire));
	else
		call_fail(c, h, SOCKRPC__CODE__EINVAL, 0, "%d is not an SO_ option", wire);
	return -1;
}

/* Joins or leaves an IPv4 group: value holds the group (low 32 bits) and the interface's
 * address (high 32 bits), as the wire's Option enum says. 0 or -1 with errno. */
static int
set_membership(int fd, int option, int64_t value)
{
	struct ip_mreq mreq;

	memset(&mreq, 0, sizeof(mreq));
	mreq.imr_multiaddr.s_addr = htonl((uint32_t)value);
	mreq.imr_interface.s_addr = htonl((uint32_t)((uint64_t)value >> 32));
	return setsockopt(fd, IPPROTO_IP, option, &mreq, sizeof(mreq));
}

OP(set_option, SetOptionRequest, SetOptionReply)
{
	struct call *c = closure_data;
	struct handle *h = op_lookup_handle(c, in->handle, HOP_SET_OPTION);
	struct policy_request rq = {.op = POLICY_OPTION};
	struct policy_decision decision;
	int level, option, value, err;

	if (h == NULL || host_option(c, h, in->option, &level, &option) != 0)
		return;
	if (level == SOL_SOCKET &&
	    (option == SO_TYPE || option == SO_ERROR || option == SO_ACCEPTCONN)) {
		call_fail(c, h, SOCKRPC__CODE__EINVAL, 0, "the given option is read-only");
		return;
	}
	if (level == IPPROTO_IP && (option == IP_ADD_MEMBERSHIP || option == IP_DROP_MEMBERSHIP)) {
		/* Any 64 bits are a group and an interface (as unsigned); group 0 is none. */
		if ((uint32_t)in->value == 0) {
			call_fail(c, h, SOCKRPC__CODE__EINVAL, 0, "no multicast group given");
			return;
		}
	} else if (in->value < -1 || in->value > INT32_MAX) {
		call_fail(c, h, SOCKRPC__CODE__EINVAL, 0, "option value %lld out of range",
		          (long long)in->value);
		return;
	}
	rq.option = POLICY_OPTION_KEY(level, option);
	rq.option_value = in->value;
	/* Options that need privilege when set directly are allowed only by a rule naming
	 * them (policy_option_privilege): the daemon's privilege is not lent. */
	if (!op_policy_allows(c, h, &rq, &decision)) {
		call_fail(c, h, SOCKRPC__CODE__EDENIED, 0, "setting %s denied by policy (%s): %s",
		          enum_option_name(in->option), decision.rule, decision.reason);
		return;
	}
	if (level == IPPROTO_IP && (option == IP_ADD_MEMBERSHIP || option == IP_DROP_MEMBERSHIP)) {
		if (set_membership(h->fd, option, in->value) != 0) {
			call_fail_errno(c, h, errno, "set_option %s failed",
			                enum_option_name(in->option));
			return;
		}
		op_reply_state(c, h);
		return;
	}
	value = (int)in->value;
	if (level != SOL_SOCKET) {
		if (setsockopt(h->fd, level, option, &value, sizeof(value)) != 0) {
			call_fail_errno(c, h, errno, "set_option %s failed",
			                enum_option_name(in->option));
			return;
		}
		op_reply_state(c, h);
		return;
	}
	/* The kernel lets sockets of one owner share a port; owned by the daemon, every
	 * client's socket would share with every other's (as_client_socket). */
	if (option == SO_REUSEPORT && value != 0 && !h->client_owned) {
		call_fail(
		    c, h, SOCKRPC__CODE__EDENIED, 0,
		    "setting SO_REUSEPORT refused: the daemon runs without root, so its sockets "
		    "cannot carry uid %u as their owner; see docs/deployment.md",
		    (unsigned)c->session->peer.uid);
		return;
	}
	if (option == SO_SNDTIMEO) {
		h->send_timeout_ms = value;
	} else if (option == SO_RCVTIMEO) {
		h->receive_timeout_ms = value;
	} else if (option == SO_LINGER) {
		/* Emulated (linger.c): a positive linger would block the loop at close. */
		if ((err = linger_set_option(h, value)) != 0) {
			call_fail_errno(c, h, err, "set_option SO_LINGER failed");
			return;
		}
	} else if ((err = priv_setsockopt(c->session, h->fd, option, value)) != 0) {
		/* One needing privilege is set by the parent (priv.c), checked again there. */
		call_fail_errno(c, h, -err, "set_option %s failed", enum_option_name(in->option));
		return;
	}
	op_reply_state(c, h);
}

OP(get_option, GetOptionRequest, GetOptionReply)
{
	struct call *c = closure_data;
	struct handle *h = op_lookup_handle(c, in->handle, HOP_QUERY);
	Sockrpc__GetOptionReply reply = SOCKRPC__GET_OPTION_REPLY__INIT;
	Sockrpc__SocketState state;
	int level, option, value = 0;
	socklen_t len = sizeof(value);

	if (h == NULL || host_option(c, h, in->option, &level, &option) != 0)
		return;
	reply.error_message = (char *)"";
	if (level != SOL_SOCKET) {
		if (getsockopt(h->fd, level, option, &value, &len) != 0) {
			call_fail_errno(c, h, errno, "get_option %s failed",
			                enum_option_name(in->option));
			return;
		}
	} else if (option == SO_SNDTIMEO) {
		value = h->send_timeout_ms;
	} else if (option == SO_RCVTIMEO) {
		value = h->receive_timeout_ms;
	} else if (option == SO_LINGER) {
		value = h->linger_s; /* what the client set (linger.c) */
	} else if (getsockopt(h->fd, SOL_SOCKET, option, &value, &len) != 0) {
		call_fail_errno(c, h, errno, "get_option %s failed", enum_option_name(in->option));
		return;
	}
	if (level == SOL_SOCKET && option == SO_TYPE) {
		int wire;

		value = enum_type_from_host(value, &wire) == 0 ? wire : 0;
	}
	if (level == SOL_SOCKET && option == SO_ERROR) {
		/* A failed non-blocking connect left its error with us when the state was
		 * refreshed; report it once, as the kernel would have. */
		if (value == 0 && h->pending_error != 0) {
			value = h->pending_error;
			h->pending_error = 0;
		}
		reply.error_message = value ? strerror(value) : (char *)"";
	}
	reply.status = (Sockrpc__Status *)&status_ok;
	reply.state = handle_state_message(h, &state);
	reply.value = value;
	call_reply(c, &reply.base);
}

OP(set_blocking, SetBlockingRequest, SetBlockingReply)
{
	struct call *c = closure_data;
	struct handle *h = op_lookup_handle(c, in->handle, HOP_QUERY);

	if (h == NULL)
		return;
	h->blocking = in->blocking;
	op_reply_state(c, h);
}
