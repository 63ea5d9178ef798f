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
		if (t.family == AF_INET && buf_len >= INET_ADDRSTRLEN) {
			policy_format_ipv4(t.ip,
			                   buf); /* inet_ntop's sprintf was most of a decision */
			*port = t.port;
			return 0;
		}
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
	char digits[12];
	size_t n, i = sizeof(digits);
	unsigned line = (unsigned)r->line;

	if (r->line == 0 || p->source == NULL) {
		policy_copy_text(buf, len, "default");
		return;
	}
	/* "%s:%d" without snprintf (once per decision) */
	n = policy_copy_text(buf, len, p->source);
	digits[--i] = '\0';
	do
		digits[--i] = (char)('0' + line % 10);
	while ((line /= 10) != 0);
	digits[--i] = ':';
	if (n + 1 < len)
		policy_copy_text(buf + n, len - n, digits + i);
}

size_t
policy_copy_text(char *buf, size_t len, const char *s)
{
	size_t n = strlen(s);

	if (len == 0)
		return n;
	if (n >= len)
		n = len - 1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return n;
}

/* inet_ntop for IPv4 without its sprintf (most of a decision's cost, and of a UDP receive's
 * sender). */
void
policy_format_ipv4(const uint8_t ip[4], char *buf)
{
	size_t o = 0;

	for (int i = 0; i < 4; i++) {
		unsigned v = ip[i];

		if (v >= 100)
			buf[o++] = (char)('0' + v / 100);
		if (v >= 10)
			buf[o++] = (char)('0' + v / 10 % 10);
		buf[o++] = (char)('0' + v % 10);
		buf[o++] = i < 3 ? '.' : '\0';
	}
}
