/*
 * make_corpus.c - writes the seed corpora of the fuzz targets, one file per seed, into
 * DIR/session (fuzz_session.c: a mode byte, then frames), DIR/sessions (fuzz_sessions.c:
 * sessions, identities, a policy, then ops carrying frames) and DIR/policy (fuzz_policy.c:
 * policy text). usage: make_corpus DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frame.h"
#include "payload.h"
#include "methods.h"
#include "sockrpc.pb-c.h"

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
	struct sr_frame_header h = {.method = (uint16_t)method, .call_id = next_id++};

	h.length = (uint32_t)protobuf_c_message_pack(m, buf + len + SR_FRAME_HEADER_SIZE);
	frame_header_encode(&h, buf + len);
	len += SR_FRAME_HEADER_SIZE + h.length;
}

static void
write_file(const char *dir, const char *sub, const char *name, const void *data, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void
save(const char *dir, const char *name)
{
	write_file(dir, "session", name, buf, len);
}

/* fuzz_sessions inputs: a header, then ops; frames are built in buf and moved into an op. */
static unsigned char sbuf[1 << 17];
static size_t slen;

enum { OP_SEND, OP_SEND_LONG, OP_REPEAT, OP_RUN, OP_TIME, OP_READ, OP_HANGUP, OP_SHUT_WR };

/* n sessions; policy text or NULL; who[i], how[i] per session (see fuzz_sessions.c). */
static void
s_begin(int n, const char *policy, const unsigned char *who, const unsigned char *how)
{
	slen = 0;
	sbuf[slen++] = (unsigned char)((n - 1) | (policy ? 4 : 0));
	if (policy) {
		sbuf[slen++] = (unsigned char)strlen(policy);
		memcpy(sbuf + slen, policy, strlen(policy));
		slen += strlen(policy);
	}
	for (int i = 0; i < n; i++) {
		sbuf[slen++] = who[i];
		sbuf[slen++] = how[i];
	}
	len = 0;
}

static void
s_op(int session, int op)
{
	sbuf[slen++] = (unsigned char)(session | op << 2);
}

/* The frames built in buf since the last call, sent by session's client. */
static void
s_send(int session)
{
	s_op(session, OP_SEND_LONG);
	sbuf[slen++] = (unsigned char)(len >> 8);
	sbuf[slen++] = (unsigned char)len;
	memcpy(sbuf + slen, buf, len);
	slen += len;
	len = 0;
}

static void
s_time(int session, int ticks)
{
	s_op(session, OP_TIME);
	sbuf[slen++] = (unsigned char)ticks;
}

static void
s_save(const char *dir, const char *name)
{
	write_file(dir, "sessions", name, sbuf, slen);
}

static void
sock(int family, int type)
{
	Sockrpc__SocketRequest m = SOCKRPC__SOCKET_REQUEST__INIT;

	m.family = family;
	m.type = type;
	call(M_SOCKET, &m.base);
}

/* A Socket that names its id (protocol 1.2; SR_CLIENT_HANDLE_BASE up). */
static void
sock_id(int family, int type, long id)
{
	Sockrpc__SocketRequest m = SOCKRPC__SOCKET_REQUEST__INIT;

	m.family = family;
	m.type = type;
	m.handle = id;
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
	struct sr_frame_header hd = {.method = M_SEND, .call_id = next_id++};
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

/* One framed SEND op: the harness writes the header (fuzz_sessions.c). */
/* Client-chosen ids: Socket, Connect, Send and Close pipelined on the first, the rules
 * broken (reused open and closed, skipped, below the range), a creation that fails
 * (an unknown family) with calls behind it, the daemon's ids beside the client's. */
static void
client_ids(int port)
{
	const long b = (long)SR_CLIENT_HANDLE_BASE;

	sock_id(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM, b);
	bind_to(b, "127.0.0.1", port);
	listen_on(b);
	sock_id(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM, b + 1);
	connect_to(b + 1, "127.0.0.1", port, 100);
	send_data(b + 1, "pipelined", 0);
	simple(M_ACCEPT, b);
	sock(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_DGRAM);
	sock_id(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM, b + 1);
	sock_id(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM, b + 5);
	sock_id(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM, 7);
	sock_id(99, SOCKRPC__TYPE__TYPE_STREAM, b + 2);
	connect_to(b + 2, "127.0.0.1", port, 100);
	simple(M_CLOSE, b + 2);
	simple(M_CLOSE, b + 1);
	sock_id(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM, b + 1);
	sock_id(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_DGRAM, b + 3);
	receive(1, -1, 0);
	simple(M_CLOSE, b + 1);
	simple(M_CLOSE, 1);
}

/* Handback (issue 16) with client ids: pipelined behind the Connect that makes the
 * connection, on the listener, on the accepted socket, twice, after a Close, on an
 * unconnected datagram socket, then calls on the handle that ended. */
static void
handbacks(int port)
{
	const long b = (long)SR_CLIENT_HANDLE_BASE;

	sock_id(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM, b);
	bind_to(b, "127.0.0.1", port);
	listen_on(b);
	sock_id(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM, b + 1);
	connect_to(b + 1, "127.0.0.1", port, 100);
	simple(M_HANDBACK, b + 1);
	simple(M_HANDBACK, b);
	simple(M_ACCEPT, b);
	simple(M_HANDBACK, 1);
	simple(M_HANDBACK, 1);
	send_data(b + 1, "after handback", 0);
	simple(M_CLOSE, b + 1);
	simple(M_HANDBACK, b + 1);
	sock_id(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_DGRAM, b + 2);
	simple(M_HANDBACK, b + 2);
	connect_to(b + 2, "127.0.0.1", port, 100);
	simple(M_HANDBACK, b + 2);
	simple(M_CLOSE, b);
}

static void
s_framed(int session, unsigned method, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_pack(m, buf);

	s_op(session, OP_SEND | 8);
	sbuf[slen++] = (unsigned char)method;
	sbuf[slen++] = (unsigned char)n;
	memcpy(sbuf + slen, buf, n);
	slen += n;
}

/* A framed REPEAT: a Send on handle h whose data is `count` bytes of 'y'. */
static void
s_framed_big_send(int session, long h, unsigned count)
{
	size_t n = 0, data = count;

	n += sr_varint_put(buf + n, 1 << 3);
	n += sr_varint_put(buf + n, (uint64_t)h);
	n += sr_payload_key(buf + n, 2, data);
	s_op(session, OP_REPEAT | 8);
	sbuf[slen++] = M_SEND;
	sbuf[slen++] = (unsigned char)n;
	memcpy(sbuf + slen, buf, n);
	slen += n;
	sbuf[slen++] = (unsigned char)(count >> 8);
	sbuf[slen++] = (unsigned char)count;
	sbuf[slen++] = 1;
	sbuf[slen++] = 'y';
}

static void
sessions_seeds(const char *dir)
{
	static const unsigned char who_any[4] = {0x00, 0x01, 0x02, 0x03};
	static const unsigned char hello[4] = {1, 1, 1, 1};
	static const unsigned char channel[4] = {3, 1, 3, 1};
	static const unsigned char no_hello[4] = {0, 1, 0, 1};
	static const unsigned char not_reading[4] = {1, 5, 1, 5};

	/* Two sessions: one listens, the other connects, sends; the listener receives. */
	s_begin(2, NULL, who_any, hello);
	sock(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	bind_to(1, "127.0.0.1", 45690);
	listen_on(1);
	simple(M_ACCEPT, 1);
	s_send(0);
	sock(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	connect_to(1, "127.0.0.1", 45690, 1000);
	send_data(1, "hello across sessions", 0);
	s_send(1);
	receive(2, -1, 0);
	receive(2, 100, 0);
	s_send(0);
	s_op(1, OP_RUN);
	simple(M_CLOSE, 1);
	s_send(1);
	s_save(dir, "two_sessions_connect");

	/* Client-chosen ids in two sessions at once: each its own id space. */
	s_begin(2, NULL, who_any, hello);
	client_ids(45711);
	s_send(0);
	s_op(0, OP_RUN);
	client_ids(45712);
	s_send(1);
	s_op(1, OP_RUN);
	s_save(dir, "client_ids");

	/* Handbacks in a session that stops reading, beside one that reads. */
	s_begin(2,
	        "allow * create tcp,udp\n"
	        "allow * bind,listen,connect,accept tcp,udp @loopback handback\n",
	        who_any, not_reading);
	handbacks(45714);
	s_send(0);
	s_op(0, OP_RUN);
	handbacks(45715);
	s_send(1);
	s_op(1, OP_HANGUP);
	s_op(0, OP_RUN);
	s_save(dir, "handbacks");

	/* A client that stops reading while its peer streams to it, then hangs up. */
	s_begin(2, NULL, who_any, not_reading);
	sock(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	bind_to(1, "127.0.0.1", 45691);
	listen_on(1);
	simple(M_ACCEPT, 1);
	s_send(0);
	sock(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	connect_to(1, "127.0.0.1", 45691, 1000);
	s_send(1);
	s_op(0, OP_RUN);
	for (int i = 0; i < 8; i++)
		receive(2, 65536, 0);
	s_send(0);
	s_framed_big_send(1, 1, 65535);
	s_op(1, OP_HANGUP);
	s_op(0, OP_RUN);
	s_save(dir, "peer_stops_reading");

	/* Large sends built by REPEAT, on a reply channel. */
	s_begin(1, NULL, who_any, channel);
	sock(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_DGRAM);
	bind_to(1, "127.0.0.1", 45692);
	connect_to(1, "127.0.0.1", 45692, 100);
	s_send(0);
	s_framed_big_send(0, 1, 32768);
	receive(1, -1, 0);
	s_send(0);
	s_save(dir, "big_datagram");

	/* Timers: a Hello never comes, a receive times out, a connect waits. */
	s_begin(2, NULL, who_any, no_hello);
	sock(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_DGRAM);
	bind_to(1, "127.0.0.1", 0);
	option(1, SOCKRPC__OPTION__SO_RCVTIMEO, 300, 1);
	receive(1, 100, 0);
	s_send(1);
	s_time(0, 4);
	s_time(0, 90);
	s_save(dir, "timers");

	/* A waiting receive, the client hangs up mid-reply. */
	s_begin(1, NULL, who_any, not_reading);
	sock(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_DGRAM);
	bind_to(1, "127.0.0.1", 0);
	for (int i = 0; i < 32; i++)
		option(1, SOCKRPC__OPTION__SO_TYPE, 0, 0);
	receive(1, 100, 0);
	s_send(0);
	s_op(0, OP_SHUT_WR);
	s_time(0, 50);
	s_op(0, OP_HANGUP);
	s_save(dir, "hangup_waiting");

	/* A fuzzed policy: uids 1000 and 33 may use the loopback, others are denied. */
	s_begin(4,
	        "allow uid=1000,33 create tcp,udp\n"
	        "allow uid=1000,33 bind,listen,accept,connect,send tcp,udp @loopback\n"
	        "allow gid=65534 create unix\n"
	        "limit queued-bytes 4M\n",
	        who_any, hello);
	sock(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	bind_to(1, "127.0.0.1", 45693);
	s_send(0);
	s_send(1);
	sock(SOCKRPC__FAMILY__FAMILY_UNIX, SOCKRPC__TYPE__TYPE_STREAM);
	bind_to(1, "/tmp/sockrpc-fuzz/spool/a.sock", 0);
	listen_on(1);
	simple(M_ACCEPT, 1);
	s_send(2);
	sock(SOCKRPC__FAMILY__FAMILY_UNIX, SOCKRPC__TYPE__TYPE_STREAM);
	connect_to(1, "/tmp/sockrpc-fuzz/spool/a.sock", 0, 100);
	s_send(3);
	s_save(dir, "policy_identities");

	/* Unix sockets in the spool, and the paths that must not leave it. */
	s_begin(2, NULL, who_any, hello);
	sock(SOCKRPC__FAMILY__FAMILY_UNIX, SOCKRPC__TYPE__TYPE_STREAM);
	bind_to(1, "/tmp/sockrpc-fuzz/spool/b.sock", 0);
	listen_on(1);
	simple(M_ACCEPT, 1);
	s_send(0);
	sock(SOCKRPC__FAMILY__FAMILY_UNIX, SOCKRPC__TYPE__TYPE_STREAM);
	connect_to(1, "/tmp/sockrpc-fuzz/spool/b.sock", 0, 100);
	sock(SOCKRPC__FAMILY__FAMILY_UNIX, SOCKRPC__TYPE__TYPE_DGRAM);
	bind_to(2, "/tmp/sockrpc-fuzz/spool/./c.sock", 0);
	s_send(1);
	s_save(dir, "unix_spool");

	/* Framed ops: the harness writes the headers; a large framed Send; a waiting receive. */
	s_begin(2, NULL, who_any, hello);
	{
		Sockrpc__SocketRequest m = SOCKRPC__SOCKET_REQUEST__INIT;
		Sockrpc__BindRequest b = SOCKRPC__BIND_REQUEST__INIT;
		Sockrpc__ConnectRequest c = SOCKRPC__CONNECT_REQUEST__INIT;
		Sockrpc__ReceiveRequest r = SOCKRPC__RECEIVE_REQUEST__INIT;

		m.family = SOCKRPC__FAMILY__FAMILY_INET;
		m.type = SOCKRPC__TYPE__TYPE_DGRAM;
		s_framed(0, M_SOCKET, &m.base);
		b.handle = 1;
		b.host = (char *)"127.0.0.1";
		b.port = 45694;
		s_framed(0, M_BIND, &b.base);
		r.handle = 1;
		r.length = 100;
		s_framed(0, M_RECEIVE, &r.base);
		s_framed(1, M_SOCKET, &m.base);
		c.handle = 1;
		c.host = (char *)"127.0.0.1";
		c.port = 45694;
		s_framed(1, M_CONNECT, &c.base);
		s_framed_big_send(1, 1, 1024);
		s_framed(0, M_RECEIVE, &r.base);
	}
	s_save(dir, "framed_ops");

	/* Unknown fields (a newer client's): a receive that waits carries a few, repeated. */
	s_begin(1, NULL, who_any, hello);
	{
		Sockrpc__SocketRequest m = SOCKRPC__SOCKET_REQUEST__INIT;
		Sockrpc__BindRequest b = SOCKRPC__BIND_REQUEST__INIT;
		static const unsigned char prefix[] = {0x08, 0x01, 0x10, 0x64}; /* handle 1, 100 */

		m.family = SOCKRPC__FAMILY__FAMILY_INET;
		m.type = SOCKRPC__TYPE__TYPE_DGRAM;
		s_framed(0, M_SOCKET, &m.base);
		b.handle = 1;
		b.host = (char *)"127.0.0.1";
		s_framed(0, M_BIND, &b.base);
		s_op(0, OP_REPEAT | 8);
		sbuf[slen++] = M_RECEIVE;
		sbuf[slen++] = sizeof(prefix);
		memcpy(sbuf + slen, prefix, sizeof(prefix));
		slen += sizeof(prefix);
		sbuf[slen++] = 0;
		sbuf[slen++] = 8; /* 8 times */
		sbuf[slen++] = 2;
		sbuf[slen++] = 0x78; /* field 15, varint 1 */
		sbuf[slen++] = 0x01;
		s_op(0, OP_RUN);
	}
	s_save(dir, "unknown_fields");

	/* The guarded port: loopback port 7 is denied, whatever spelling reaches it. */
	s_begin(1, "allow * create tcp,udp\nallow * connect,send tcp,udp @any\n", who_any, hello);
	sock(SOCKRPC__FAMILY__FAMILY_INET, SOCKRPC__TYPE__TYPE_STREAM);
	connect_to(1, "127.0.0.1", 7, 100);
	connect_to(1, "127.0.0.1", 8, 100);
	sock(SOCKRPC__FAMILY__FAMILY_INET6, SOCKRPC__TYPE__TYPE_DGRAM);
	connect_to(2, "::1", 9, 100);
	s_send(0);
	s_save(dir, "guarded_port");
}

static void
policy_seeds(const char *dir)
{
	static const char *const seeds[][2] = {
	    {"example", "limit sessions-per-uid 64\n"
	                "allow uid=0 *\n"
	                "deny  * connect,send 169.254.169.254 reason \"metadata\"\n"
	                "deny  * connect,send,bind @private,@link-local\n"
	                "allow group=root create tcp,udp max-handles 64\n"
	                "allow gid=33 resolve *.example.com example.com\n"
	                "allow gid=33 connect tcp @any port 80,443 max-connections 32\n"
	                "allow uid=1000 connect,send udp [::1]:53\n"
	                "allow user=root create,bind,listen,accept tcp @loopback port 8000-8999\n"
	                "allow cgroup=/system.slice/jobs-*.service create unix\n"
	                "allow cgroup=/system.slice/jobs-*.service connect unix /run/jobs/*\n"
	                "allow exe=/usr/bin/python3* connect unix abstract:app*\n"},
	    {"addresses", "allow * connect tcp [2001:db8::/32]:8000-8999\n"
	                  "allow * bind udp @loopback:53\n"
	                  "allow * connect tcp [@private,::1]:22\n"
	                  "deny * connect ::ffff:10.0.0.0/104 port *\n"
	                  "allow * send udp @unspecified,@multicast ipv6\n"
	                  "allow * resolve,connect host *.example.com\n"},
	    {"limits", "limit sessions 10\nlimit handles-per-session 5\n"
	               "limit queued-bytes 3M\nallow * option raw,unix\n"},
	    {"explain", "allow uid=1000 connect tcp 10.0.0.0/8\n"
	                "\0uid=1000 gid=5 connect tcp 10.1.2.3:443"},
	    {"errors", "allow * conect tcp\nallow * * 10.0.0.0/33\nallow user=nobodyatall *\n"
	               "allow * * reason \"unterminated\n"},
	};

	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		size_t n = strlen(seeds[i][1]);

		if (strcmp(seeds[i][0], "explain") == 0)
			n += 1 + strlen(seeds[i][1] + n + 1);
		write_file(dir, "policy", seeds[i][0], seeds[i][1], n);
	}
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

	begin(1);
	client_ids(45713);
	save(dir, "client_ids");

	begin(1);
	handbacks(45716);
	save(dir, "handbacks");

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

	sessions_seeds(dir);
	policy_seeds(dir);
	return 0;
}
