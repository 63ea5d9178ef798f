/*
 * ops_resolve.c - get_address_info: a name resolved by the daemon, asynchronously,
 * subject to the policy's resolve rules. Not tied to any handle.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/util.h>

#include "enums.h"
#include "ops.h"

/* Upper bound on addresses returned: a name with more is unusual and its tail useless. */
#define MAX_ADDRESSES 64

static void
answer(struct call *c, int eai, struct evutil_addrinfo *res)
{
	const Sockrpc__GetAddressInfoRequest *in =
	    (const Sockrpc__GetAddressInfoRequest *)c->request;
	Sockrpc__GetAddressInfoReply reply = SOCKRPC__GET_ADDRESS_INFO_REPLY__INIT;
	Sockrpc__AddressEntry entries[MAX_ADDRESSES], *list[MAX_ADDRESSES];
	char ips[MAX_ADDRESSES][64];
	size_t n = 0;

	if (eai == RESOLVE_TIMED_OUT) {
		call_fail(c, NULL, SOCKRPC__CODE__ETIMEDOUT, ETIMEDOUT, "cannot resolve %.200s: %s",
		          in->address, resolve_strerror(eai));
		return;
	}
	if (eai != 0) {
		call_fail(c, NULL, SOCKRPC__CODE__EOS, 0, "cannot resolve %.200s: %s", in->address,
		          evutil_gai_strerror(eai));
		return;
	}
	for (struct evutil_addrinfo *ai = res; ai != NULL && n < MAX_ADDRESSES; ai = ai->ai_next) {
		int port, wire;
		bool seen = false;

		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		address_format(ai->ai_addr, (socklen_t)ai->ai_addrlen, ips[n], sizeof(ips[n]),
		               &port);
		for (size_t i = 0; i < n && !seen; i++)
			seen = strcmp(ips[i], ips[n]) == 0;
		if (seen)
			continue;
		sockrpc__address_entry__init(&entries[n]);
		entries[n].family = enum_family_from_host(ai->ai_family, &wire) == 0 ? wire : 0;
		entries[n].ip = ips[n];
		list[n] = &entries[n];
		n++;
	}
	if (n == 0) {
		call_fail(c, NULL, SOCKRPC__CODE__EOS, 0,
		          "cannot resolve %.200s: no address of that family", in->address);
		if (res) /* evdns answers an empty success with no list at all */
			evutil_freeaddrinfo(res);
		return;
	}
	reply.status = (Sockrpc__Status *)&status_ok;
	reply.canonical_name = res && res->ai_canonname ? res->ai_canonname : in->address;
	reply.n_addresses = n;
	reply.addresses = list;
	call_reply(c, &reply.base);
	if (res)
		evutil_freeaddrinfo(res);
}

/* The lookup's answer, from the loop: this resumed the call, so it frees it. */
static void
on_resolved(int eai, struct evutil_addrinfo *res, void *arg)
{
	struct call *c = arg;
	struct session *s = c->session;

	c->op.lookup = NULL;
	session_enter(s);
	answer(c, eai, res);
	call_finish(c);
	session_leave(s);
}

static void
lookup_free(struct call *c)
{
	if (c->op.lookup)
		resolve_cancel(c->op.lookup);
}

OP(get_address_info, GetAddressInfoRequest, GetAddressInfoReply)
{
	struct call *c = closure_data;
	struct policy_request rq = {.op = POLICY_RESOLVE, .name = in->address};
	struct policy_decision decision;
	int family = AF_UNSPEC;

	if (in->address[0] == '\0' || strlen(in->address) > 253) {
		call_fail(c, NULL, SOCKRPC__CODE__EINVAL, 0, "address must be 1-253 bytes");
		return;
	}
	if (in->family != SOCKRPC__FAMILY__FAMILY_UNSPEC &&
	    (enum_family_to_host(in->family, &family) != 0 ||
	     (family != AF_INET && family != AF_INET6))) {
		call_fail(c, NULL, SOCKRPC__CODE__EINVAL, 0,
		          "get_address_info needs AF_INET, AF_INET6 or AF_UNSPEC");
		return;
	}
	rq.family = family;
	rq.type = SOCK_STREAM;
	if (!op_policy_allows(c, NULL, &rq, &decision)) {
		call_fail(c, NULL, SOCKRPC__CODE__EDENIED, 0,
		          "resolving %s denied by policy (%s): %s", in->address, decision.rule,
		          decision.reason);
		return;
	}
	c->op.lookup = resolve_start(c->session, in->address, in->service[0] ? in->service : "http",
	                             family, SOCK_STREAM, EVUTIL_AI_CANONNAME, on_resolved, c);
	c->op_free = lookup_free;
	if (c->op.lookup == NULL && errno == EAGAIN)
		call_fail(
		    c, NULL, SOCKRPC__CODE__ELIMIT, EAGAIN,
		    "cannot resolve %.200s: too many name lookups waiting for uid %u (limit %d)",
		    in->address, (unsigned)c->session->peer.uid, DNS_MAX_WAITING_PER_UID);
	else if (c->op.lookup == NULL)
		call_fail(c, NULL, SOCKRPC__CODE__EOS, ENOMEM,
		          "cannot resolve %.200s: out of memory", in->address);
}
