/*
 * names.c - name resolution through the daemon (sr_get_address_info): the request, the
 * addresses of the reply checked and copied into one sr_addrinfo.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "enums.h"
#include "internal.h"

CL_CLOSURE(get_address_info_done, Sockrpc__GetAddressInfoReply)

static void
address_info_take(const ProtobufCMessage *msg, struct call_ctx *ctx)
{
	const Sockrpc__GetAddressInfoReply *r = (const Sockrpc__GetAddressInfoReply *)msg;
	sr_addrinfo *ai;
	int v;

	if (r->n_addresses > CLIENT_MAX_ADDRESSES) {
		cl_call_violation(ctx, "GetAddressInfoReply with %zu addresses (at most %d)",
		                  r->n_addresses, CLIENT_MAX_ADDRESSES);
		return;
	}
	for (size_t i = 0; i < r->n_addresses; i++) {
		if (enum_family_to_host(r->addresses[i]->family, &v) == -1) {
			cl_call_violation(ctx, "GetAddressInfoReply with unknown family %d",
			                  (int)r->addresses[i]->family);
			return;
		}
	}
	if ((ai = calloc(1, sizeof(*ai))) == NULL ||
	    (r->n_addresses > 0 &&
	     (ai->addresses = calloc(r->n_addresses, sizeof(*ai->addresses))) == NULL)) {
		free(ai);
		cl_seterr(ctx->err, SR_ELIMIT, ENOMEM, "out of memory");
		ctx->failed = true;
		return;
	}
	snprintf(ai->canonical_name, sizeof(ai->canonical_name), "%s",
	         r->canonical_name != NULL ? r->canonical_name : "");
	ai->count = r->n_addresses;
	for (size_t i = 0; i < r->n_addresses; i++) {
		const Sockrpc__AddressEntry *a = r->addresses[i];

		(void)enum_family_to_host(a->family, &ai->addresses[i].family);
		snprintf(ai->addresses[i].ip, sizeof(ai->addresses[i].ip), "%s",
		         a->ip != NULL ? a->ip : "");
	}
	if (ai->count > 0)
		memcpy(ai->ip, ai->addresses[0].ip, sizeof(ai->ip));
	*(sr_addrinfo **)ctx->out = ai;
}

/* Resolves through the daemon; *out is new, free with sr_addrinfo_free(). */
int
sr_get_address_info(sr_client *c, const char *address, const char *type, int family,
                    sr_addrinfo **out, sr_error *err)
{
	Sockrpc__GetAddressInfoRequest req = SOCKRPC__GET_ADDRESS_INFO_REQUEST__INIT;
	struct call_ctx ctx;
	sr_addrinfo *ai = NULL;
	int wire;

	if (c == NULL || address == NULL || out == NULL) {
		cl_seterr(err, SR_EINVAL, 0,
		          "get_address_info needs a client, an address and "
		          "an output");
		return -1;
	}
	if (cl_family_to_wire(family, &wire, err) == -1)
		return -1;
	req.address = (char *)address;
	req.service = (char *)(type != NULL ? type : "");
	req.family = wire;
	cl_call_init(&ctx, c, NULL, cl_deadline_after(CL_RESOLVE_DEADLINE_MS), err);
	ctx.take = address_info_take;
	ctx.out = &ai;
	sockrpc__sock_rpc__get_address_info(&c->service, &req, get_address_info_done, &ctx);
	if (ctx.failed)
		return -1;
	*out = ai;
	return 0;
}

void
sr_addrinfo_free(sr_addrinfo *ai)
{
	if (ai == NULL)
		return;
	free(ai->addresses);
	free(ai);
}
