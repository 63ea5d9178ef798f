/*
 * format.c - the policy's words and text forms, shared by the audit log, --explain and
 * decisions: operation names, family and type names, socket addresses as people read
 * them, and a rule's "FILE:LINE" label.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "policy_internal.h"

static const char *const op_names[POLICY_OP_COUNT] = {
    [POLICY_CREATE] = "create",   [POLICY_CONNECT] = "connect", [POLICY_BIND] = "bind",
    [POLICY_LISTEN] = "listen",   [POLICY_ACCEPT] = "accept",   [POLICY_SEND] = "send",
    [POLICY_RESOLVE] = "resolve", [POLICY_OPTION] = "option",
};

const char *
policy_op_name(enum policy_op op)
{
	if ((unsigned)op >= POLICY_OP_COUNT)
		return "?";
	return op_names[op];
}

int
policy_op_parse(const char *name, enum policy_op *out)
{
	for (int i = 0; i < POLICY_OP_COUNT; i++) {
		if (strcmp(name, op_names[i]) == 0) {
			*out = (enum policy_op)i;
			return 0;
		}
	}
	return -1;
}

const char *
policy_family_name(int family, char *buf, size_t len)
{
	switch (family) {
	case AF_INET:
		return "ipv4";
	case AF_INET6:
		return "ipv6";
	case AF_UNIX:
		return "unix";
	case AF_UNSPEC:
		return "unspec";
	}
	snprintf(buf, len, "af%d", family);
	return buf;
}

const char *
policy_type_name(int type, char *buf, size_t len)
{
	switch (type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) {
	case 0:
		return "any";
	case SOCK_STREAM:
		return "stream";
	case SOCK_DGRAM:
		return "dgram";
	case SOCK_RAW:
		return "raw";
	case SOCK_SEQPACKET:
		return "seqpacket";
	}
	snprintf(buf, len, "type%d", type);
	return buf;
}

int
policy_format_addr(const struct sockaddr *addr, socklen_t len, char *buf, size_t buf_len, int *port)
{
	struct policy_request rq = {.addr = addr, .addr_len = len};
	struct target t;
	size_t i, o;

	*port = -1;
	if (buf_len == 0)
		return -1;
	buf[0] = '\0';
	decode_target(&rq, &t);
	switch (t.kind) {
	case TARGET_IP:
		/* Show a mapped address as the IPv4 address policy matched it as. */
		if (inet_ntop(t.family, t.ip, buf, buf_len) == NULL) {
			buf[0] = '\0';
			return -1;
		}
		*port = t.port;
		return 0;
	case TARGET_UNIX:
		o = 0;
		if (t.abstract && o + 1 < buf_len)
			buf[o++] = '@';
		for (i = 0; i < t.path_len && o + 1 < buf_len; i++)
			buf[o++] = t.path[i] == '\0' ? '@' : t.path[i];
		buf[o] = '\0';
		return 0;
	default:
		return -1;
	}
}

void
rule_label(const struct policy *p, const struct rule *r, char *buf, size_t len)
{
	if (r->line == 0 || p->source == NULL)
		snprintf(buf, len, "default");
	else
		snprintf(buf, len, "%s:%d", p->source, r->line);
}
