/*
 * methods.h - the frame header's method numbers: each rpc's index in the service of
 * proto/sockrpc.proto, in its order. For code that writes raw frames (tests, the fuzz
 * corpus); the library and the daemon look methods up in the service descriptor.
 */
#ifndef SOCKRPC_METHODS_H
#define SOCKRPC_METHODS_H

enum {
	M_HELLO,
	M_SOCKET,
	M_CONNECT,
	M_BIND,
	M_LISTEN,
	M_ACCEPT,
	M_SEND,
	M_RECEIVE,
	M_READ,
	M_CLOSE,
	M_SHUTDOWN,
	M_SET_OPTION,
	M_GET_OPTION,
	M_SET_BLOCKING,
	M_INFO,
	M_GET_ADDRESS_INFO,
	M_SEND_TO,
	M_RECEIVE_FROM,
	M_HANDBACK,
	M_COUNT
};

#endif
