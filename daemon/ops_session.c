/*
 * ops_session.c - Hello: the version handshake that opens every session, the limits
 * the session runs under, and the reply channel if the client asks for one.
 */

#include <stdbool.h>
#include <string.h>

#include "frame.h"
#include "ops.h"

OP(hello, HelloRequest, HelloReply)
{
	struct call *c = closure_data;
	struct session *s = c->session;
	Sockrpc__HelloReply reply = SOCKRPC__HELLO_REPLY__INIT;
	const char *refusal;
	char text[160];

	if (s->phase != SESSION_HELLO) {
		call_fail(c, NULL, SOCKRPC__CODE__EPROTO, 0, "Hello was already received");
		return;
	}
	refusal = server_admission_refusal(s->d, s);
	if (refusal == NULL && in->major == SR_PROTOCOL_MAJOR)
		refusal = priv_session_admit(s); /* several workers: the global count */
	if (in->major != SR_PROTOCOL_MAJOR || refusal != NULL) {
		if (refusal != NULL)
			snprintf(text, sizeof(text), "%s", refusal);
		else
			snprintf(text, sizeof(text),
			         "protocol version %u is not supported: sockrpcd speaks %d.%d",
			         in->major, SR_PROTOCOL_MAJOR, SR_PROTOCOL_MINOR);
		call_fail(c, NULL, refusal ? SOCKRPC__CODE__ELIMIT : SOCKRPC__CODE__EPROTO, 0, "%s",
		          text);
		session_drain(s, NULL);
		return;
	}
	/* A launcher's claim (never verified; only deny rules match on it). */
	if (in->claimed_exe != NULL && in->claimed_exe[0] != '\0') {
		size_t len = strlen(in->claimed_exe);
		bool printable = true;

		for (size_t i = 0; i < len; i++)
			printable = printable && (unsigned char)in->claimed_exe[i] >= 0x20 &&
			            in->claimed_exe[i] != 0x7f;
		if (in->claimed_exe[0] != '/' || len >= sizeof(s->peer.claimed_exe) || !printable) {
			call_fail(c, NULL, SOCKRPC__CODE__EINVAL, 0,
			          "claimed_exe must be an absolute path of at most %zu printable "
			          "bytes",
			          sizeof(s->peer.claimed_exe) - 1);
			session_drain(s, NULL);
			return;
		}
		memcpy(s->peer.claimed_exe, in->claimed_exe, len + 1);
	}
	session_hello_received(s);
	reply.status = (Sockrpc__Status *)&status_ok;
	reply.major = SR_PROTOCOL_MAJOR;
	reply.minor = SR_PROTOCOL_MINOR;
	reply.daemon_version = (char *)SOCKRPC_VERSION;
	reply.session_id = s->id;
	reply.max_frame = SR_MAX_FRAME;
	reply.max_handles = s->d->opt.limits.max_handles;
	reply.max_payload = SR_MAX_PAYLOAD;
	if (in->reply_channel && !s->d->opt.no_reply_channel)
		call_reply_with_channel(c, &reply);
	else
		call_reply(c, &reply.base);
}
