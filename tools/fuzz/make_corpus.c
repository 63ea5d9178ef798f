/*
 * make_corpus.c - writes the seed corpus of fuzz_session: valid call sequences, one file
 * each, in the target's input format (a mode byte, then frames; see fuzz_session.c).
 * usage: make_corpus DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "payload.h"
#include "sockrpc.pb-c.h"

enum {
	M_HELLO, M_SOCKET, M_CONNECT, M_BIND, M_LISTEN, M_ACCEPT, M_SEND, M_RECEIVE,
	M_READ, M_CLOSE, M_SHUTDOWN, M_SET_OPTION, M_GET_OPTION, M_SET_BLOCKING, M_INFO,
	M_GET_ADDRESS_INFO, M_SEND_TO, M_RECEIVE_FROM
};

static unsigned char buf[1 << 16];
static size_t len;
static unsigned long long next_id = 2;

static void
begin(int mode)
{
	len = 0;
	buf[len++] = (unsigned char)mode;
}

static void
call(unsigned method, const ProtobufCMessage *m)
{
	struct sr_frame_header h = { .method = (uint16_t)method, .call_id = next_id++ };

	h.length = (uint32_t)protobuf_c_message_pack(m, buf + len + SR_FRAME_HEADER_SIZE);
	frame_header_encode(&h, buf + len);
	len += SR_FRAME_HEADER_SIZE + h.length;
}

static void
save(const char *dir, const char *name)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void
sock(int family, int type)
{
	Sockrpc__SocketRequest m = SOCKRPC__SOCKET_REQUEST__INIT;

	m.family = family;
	m.type = type;
	call(M_SOCKET, &m.base);
}

static void
nonblocking(long h)
{
	Sockrpc__SetBlockingRequest m = SOCKRPC__SET_BLOCKING_REQUEST__INIT;

	m.handle = h;
	m.blocking = 0;
	call(M_SET_BLOCKING, &m.base);
}

static void
bind_to(long h, const char *host, int port)
{
	Sockrpc__BindRequest m = SOCKRPC__BIND_REQUEST__INIT;

	m.handle = h;
	m.host = (char *)host;
	m.port = port;
	call(M_BIND, &m.base);
}

static void
listen_on(long h)
{
	Sockrpc__ListenRequest m = SOCKRPC__LISTEN_REQUEST__INIT;

	m.handle = h;
	m.queue_length = 4;
	call(M_LISTEN, &m.base);
}

static void
connect_to(long h, const char *host, int port, int timeout)
{
	Sockrpc__ConnectRequest m = SOCKRPC__CONNECT_REQUEST__INIT;

	m.handle = h;
	m.host = (char *)host;
	m.port = port;
	m.timeout_ms = timeout;
	call(M_CONNECT, &m.base);
}

static void
simple(unsigned method, long h)
{
	/* Requests whose only field that matters is the handle (field 1). */
	Sockrpc__InfoRequest m = SOCKRPC__INFO_REQUEST__INIT;

	m.handle = h;
	m.base.descriptor = sockrpc__sock_rpc__descriptor.methods[method].input;
	call(method, &m.base);
}

static void
option(long h, int opt, long value, int set)
{
	Sockrpc__SetOptionRequest s = SOCKRPC__SET_OPTION_REQUEST__INIT;
	Sockrpc__GetOptionRequest g = SOCKRPC__GET_OPTION_REQUEST__INIT;

	s.handle = g.handle = h;
	s.option = g.option = opt;
	s.value = value;
	if (set)
		call(M_SET_OPTION, &s.base);
	else
		call(M_GET_OPTION, &g.base);
}

static void
send_data(long h, const char *text, unsigned flags)
{
	Sockrpc__SendRequest m = SOCKRPC__SEND_REQUEST__INIT;

	m.handle = h;
	m.data.data = (uint8_t *)text;
	m.data.len = strlen(text);
	m.flags = flags;
	call(M_SEND, &m.base);
}

/* A Send whose data comes first and then again (the last counts), n bytes each: the
 * daemon borrows a payload from the frame (proto/payload.c, daemon/request.c). */
static void
send_payload_twice(long h, size_t n)
{
	struct sr_frame_header hd = { .method = M_SEND, .call_id = next_id++ };
	unsigned char *body = buf + len + SR_FRAME_HEADER_SIZE;
	size_t off = 0;

	off += sr_payload_key(body + off, 2, n);
	memset(body + off, 'a', n);
	off += n;
	off += sr_varint_put(body + off, 1 << 3);
	off += sr_varint_put(body + off, (uint64_t)h);
	off += sr_payload_key(body + off, 2, n);
	memset(body + off, 'b', n);
	off += n;
	hd.length = (uint32_t)off;
	frame_header_encode(&hd, buf + len);
	len += SR_FRAME_HEADER_SIZE + off;
}

static void
receive(long h, long length, unsigned flags)
{
	Sockrpc__ReceiveRequest m = SOCKRPC__RECEIVE_REQUEST__INIT;

	m.handle = h;
	m.length = length;
	m.flags = flags;
	call(M_RECEIVE, &m.base);
}

int
main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : ".";

	begin(1); /* options and queries */
	sock(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	option(1, SOCKRPC__OPTION__SO_TYPE, 0, 0);
	option(1, SOCKRPC__OPTION__SO_RCVTIMEO, 100, 1);
	option(1, SOCKRPC__OPTION__SO_LINGER, 1, 1);
	option(1, SOCKRPC__OPTION__SO_ERROR, 0, 0);
	simple(M_INFO, 1);
	simple(M_CLOSE, 1);
	simple(M_CLOSE, 1);
	save(dir, "options");

	begin(1 | 4); /* calls answered on a reply channel */
	sock(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	option(1, SOCKRPC__OPTION__SO_TYPE, 0, 0);
	simple(M_INFO, 1);
	simple(M_CLOSE, 1);
	save(dir, "reply_channel");

	begin(1); /* a loopback connection to ourselves */
	sock(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	bind_to(1, "127.0.0.1", 45678);
	listen_on(1);
	sock(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	nonblocking(2);
	connect_to(2, "127.0.0.1", 45678, 100);
	simple(M_ACCEPT, 1);
	send_data(2, "ping", 0);
	receive(3, -1, 0);
	send_data(2, "spliced", 0);
	receive(3, 32768, 0); /* a large receive: daemon/receive_splice.c */
	{
		Sockrpc__ReadRequest m = SOCKRPC__READ_REQUEST__INIT;

		m.handle = 3;
		m.length = 4;
		call(M_READ, &m.base);
	}
	{
		Sockrpc__ShutdownRequest m = SOCKRPC__SHUTDOWN_REQUEST__INIT;

		m.handle = 2;
		m.how = SOCKRPC__SHUTDOWN__SHUT_WR;
		call(M_SHUTDOWN, &m.base);
	}
	receive(3, 10, 2);
	simple(M_CLOSE, 3);
	save(dir, "connect_accept");

	begin(1); /* large sends, their data borrowed from the frame */
	sock(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	bind_to(1, "127.0.0.1", 45680);
	listen_on(1);
	sock(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	connect_to(2, "127.0.0.1", 45680, 100);
	simple(M_ACCEPT, 1);
	send_payload_twice(2, 5000);
	receive(3, -1, 0);
	send_payload_twice(2, 4096);
	simple(M_CLOSE, 2);
	save(dir, "payload");

	begin(3); /* datagrams */
	sock(SOCKRPC__FAMILY__FAMILY_INET6, SOCKRPC__TYPE__TYPE_DGRAM);
	bind_to(1, "::1", 45679);
	nonblocking(1);
	{
		Sockrpc__SendToRequest m = SOCKRPC__SEND_TO_REQUEST__INIT;

		m.handle = 1;
		m.host = (char *)"::1";
		m.port = 45679;
		m.data.data = (uint8_t *)"datagram";
		m.data.len = 8;
		call(M_SEND_TO, &m.base);
	}
	{
		Sockrpc__ReceiveFromRequest m = SOCKRPC__RECEIVE_FROM_REQUEST__INIT;

		m.handle = 1;
		m.length = -1;
		call(M_RECEIVE_FROM, &m.base);
	}
	save(dir, "datagram");

	begin(1); /* refusals: policy, state, values */
	sock(SOCKRPC__FAMILY__FAMILY_UNIX, SOCKRPC__TYPE__TYPE_STREAM);
	connect_to(1, "/tmp/x.sock", 0, 10);
	bind_to(1, "/tmp/x.sock", 0);
	sock(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	connect_to(2, "127.0.0.1", 1, 10);
	connect_to(2, "localhost", 70000, 10);
	{
		Sockrpc__GetAddressInfoRequest m = SOCKRPC__GET_ADDRESS_INFO_REQUEST__INIT;

		m.address = (char *)"localhost";
		m.service = (char *)"";
		call(M_GET_ADDRESS_INFO, &m.base);
	}
	simple(M_ACCEPT, 2);
	simple(M_INFO, 9);
	save(dir, "refusals");

	begin(1); /* a receive that waits, then the socket closes under it */
	sock(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_DGRAM);
	bind_to(1, "127.0.0.1", 0);
	receive(1, 100, 0);
	receive(1, 100, 0);
	simple(M_CLOSE, 1);
	save(dir, "close_while_waiting");

	begin(0); /* no Hello: the first frame is Hello itself */
	{
		Sockrpc__HelloRequest m = SOCKRPC__HELLO_REQUEST__INIT;

		m.major = 1;
		m.client_name = (char *)"seed";
		call(M_HELLO, &m.base);
		call(M_HELLO, &m.base);
	}
	sock(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	save(dir, "hello");
	return 0;
}
