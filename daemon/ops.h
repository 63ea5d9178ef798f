/*
 * ops.h - the rpc handlers. SOCKRPC__SOCK_RPC__INIT(op_) in ops.c collects them into
 * the service that session.c dispatches through, so a missing or mistyped handler
 * fails the build. Each answers its call exactly once, now or later, through
 * call_reply() or call_fail(); the call (closure_data) owns the request. Answering does
 * not free the call: the dispatcher, or whatever resumes a waiting call, frees it after
 * the handler or step returns, so a handler may use its call and request throughout.
 */
#ifndef SOCKRPCD_OPS_H
#define SOCKRPCD_OPS_H

#include "sockrpcd.h"

#define OP(name, Req, Reply)                                                                       \
	void op_##name(Sockrpc__SockRpc_Service *service, const Sockrpc__##Req *in,                \
	               Sockrpc__##Reply##_Closure closure, void *closure_data)

/* ops_session.c */
OP(hello, HelloRequest, HelloReply);
/* ops_socket.c */
OP(socket, SocketRequest, SocketReply);
OP(bind, BindRequest, BindReply);
OP(listen, ListenRequest, ListenReply);
OP(close, CloseRequest, CloseReply);
OP(shutdown, ShutdownRequest, ShutdownReply);
OP(info, InfoRequest, InfoReply);
/* ops_connect.c */
OP(connect, ConnectRequest, ConnectReply);
OP(accept, AcceptRequest, AcceptReply);
/* ops_io.c */
OP(send, SendRequest, SendReply);
OP(receive, ReceiveRequest, ReceiveReply);
OP(read, ReadRequest, ReadReply);
OP(send_to, SendToRequest, SendToReply);
OP(receive_from, ReceiveFromRequest, ReceiveFromReply);
/* ops_options.c */
OP(set_option, SetOptionRequest, SetOptionReply);
OP(get_option, GetOptionRequest, GetOptionReply);
OP(set_blocking, SetBlockingRequest, SetBlockingReply);
/* ops_handback.c */
OP(handback, HandbackRequest, HandbackReply);
/* ops_resolve.c */
OP(get_address_info, GetAddressInfoRequest, GetAddressInfoReply);

/* ops.c: helpers every handler shares. */

/* Replies OK with the handle's state: for the many calls whose reply is just that. */
void op_reply_state(struct call *c, struct handle *h);

const char *op_target_host(struct call *c, struct handle *h, const char *host, int port);

/*
 * Sets c's target (host, port in h's family): a numeric address is ready at once; a
 * name starts resolving, and the call's step is run again (CALL_READY) once the answer
 * is in c->candidates. Returns 0, or -1 after answering the call (bad address).
 */
int op_set_target(struct call *c, struct handle *h, const char *host, int port);

/* The next target address for c that policy allows for `op`, or NULL when none is left
 * (c->denied_seen / c->denial tell whether policy refused any). */
const struct sockaddr *op_next_target(struct call *c, struct handle *h, enum policy_op op,
                                      socklen_t *len);

/* Fails c for having no usable target: the last OS error, the policy's denial, or none. */
void op_fail_no_target(struct call *c, struct handle *h, const char *what);

bool op_connection_allowed(struct call *c, struct handle *h, const struct policy_decision *d);
bool op_unix_refused(struct call *c, struct handle *h, const char *what);
void op_fail_unix(struct call *c, struct handle *h, int r, const char *what);

#endif
