/*
 * rawcall.c - see rawcall.h.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rawcall.h"

void
rc_header(int fd, uint32_t length, uint16_t method, uint16_t flags, uint64_t id)
{
	struct sr_frame_header h = {
	    .length = length, .method = method, .flags = flags, .call_id = id};
	uint8_t hdr[SR_FRAME_HEADER_SIZE];

	frame_header_encode(&h, hdr);
	raw_write(fd, hdr, sizeof(hdr));
}

size_t
rc_frame(uint8_t *out, unsigned method, uint64_t id, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	struct sr_frame_header h = {
	    .length = (uint32_t)len, .method = (uint16_t)method, .call_id = id};

	frame_header_encode(&h, out);
	protobuf_c_message_pack(msg, out + SR_FRAME_HEADER_SIZE);
	return SR_FRAME_HEADER_SIZE + len;
}

void
rc_send_padded(int fd, unsigned method, uint64_t id, const ProtobufCMessage *msg, size_t pad)
{
	size_t len = msg ? protobuf_c_message_get_packed_size(msg) : 0;
	size_t total = len + (pad ? 1 + 10 + pad : 0);
	uint8_t *buf = malloc(total + 1), *p;
	size_t v = pad;

	ck_assert_ptr_nonnull(buf);
	if (msg)
		protobuf_c_message_pack(msg, buf);
	p = buf + len;
	if (pad) {
		*p++ = (15 << 3) | 2; /* field 15, length-delimited */
		do {
			*p++ = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
			v >>= 7;
		} while (v);
		memset(p, 'p', pad);
		p += pad;
	}
	total = (size_t)(p - buf);
	rc_header(fd, (uint32_t)total, (uint16_t)method, 0, id);
	if (total)
		raw_write(fd, buf, total);
	free(buf);
}

ProtobufCMessage *
rc_reply(int fd, uint64_t *id, unsigned *method, int timeout_ms)
{
	struct sr_frame_header h;
	unsigned char *body;
	ProtobufCMessage *m;

	if (raw_recv(fd, &h, &body, timeout_ms) != 0)
		return NULL;
	ck_assert_msg(h.flags == SR_FRAME_FLAG_REPLY, "reply flags 0x%x", h.flags);
	ck_assert_uint_lt(h.method, M_COUNT);
	m = protobuf_c_message_unpack(sockrpc__sock_rpc__descriptor.methods[h.method].output, NULL,
	                              h.length, body);
	free(body);
	ck_assert_msg(m != NULL, "reply of method %u (%u bytes) does not decode", h.method,
	              h.length);
	if (id)
		*id = h.call_id;
	if (method)
		*method = h.method;
	return m;
}

static const Sockrpc__Status *
status_of(const ProtobufCMessage *reply)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field(reply->descriptor, 1);

	ck_assert_ptr_nonnull(f);
	return *(Sockrpc__Status *const *)((const char *)reply + f->offset);
}

int
rc_code(const ProtobufCMessage *reply)
{
	const Sockrpc__Status *st = status_of(reply);

	return st ? (int)st->code : 0;
}

const char *
rc_message(const ProtobufCMessage *reply)
{
	const Sockrpc__Status *st = status_of(reply);

	return st && st->message ? st->message : "";
}

const Sockrpc__SocketState *
rc_state(const ProtobufCMessage *reply)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field(reply->descriptor, 2);

	if (f == NULL || f->descriptor != &sockrpc__socket_state__descriptor)
		return NULL;
	return *(Sockrpc__SocketState *const *)((const char *)reply + f->offset);
}

const char *
rc_expect(int fd, uint64_t id, int code)
{
	static char text[512];
	uint64_t got_id = 0;
	ProtobufCMessage *m = rc_reply(fd, &got_id, NULL, 5000);

	ck_assert_msg(m != NULL, "no reply to call %llu", (unsigned long long)id);
	snprintf(text, sizeof(text), "%s", rc_message(m));
	ck_assert_msg(got_id == id, "reply to call %llu, expected %llu (%s)",
	              (unsigned long long)got_id, (unsigned long long)id, text);
	ck_assert_msg(rc_code(m) == code, "call %llu: code %d (%s), expected %d",
	              (unsigned long long)id, rc_code(m), text, code);
	protobuf_c_message_free_unpacked(m, NULL);
	return text;
}

int
rc_expect_any(int fd, uint64_t id, const int *codes)
{
	uint64_t got_id = 0;
	ProtobufCMessage *m = rc_reply(fd, &got_id, NULL, 5000);
	int code;

	ck_assert_msg(m != NULL, "no reply to call %llu", (unsigned long long)id);
	code = rc_code(m);
	ck_assert_msg(got_id == id, "reply to call %llu, expected %llu", (unsigned long long)got_id,
	              (unsigned long long)id);
	for (int i = 0; codes[i] != -1; i++) {
		if (codes[i] == code) {
			protobuf_c_message_free_unpacked(m, NULL);
			return code;
		}
	}
	ck_abort_msg("call %llu: unexpected code %d (%s)", (unsigned long long)id, code,
	             rc_message(m));
	return -1;
}

void
rc_expect_refused(int fd)
{
	ProtobufCMessage *m = rc_reply(fd, NULL, NULL, 5000);

	ck_assert_msg(m != NULL, "no error reply before the close");
	ck_assert_msg(rc_code(m) == SOCKRPC__CODE__EPROTO, "code %d (%s), expected EPROTO",
	              rc_code(m), rc_message(m));
	ck_assert_str_ne(rc_message(m), "");
	protobuf_c_message_free_unpacked(m, NULL);
	ck_assert_msg(raw_closed(fd, 5000), "the daemon kept the connection open");
}

void
rc_connect_loopback(int fd, int reply_fd, uint64_t id, int64_t h, int port)
{
	Sockrpc__ConnectRequest cr = SOCKRPC__CONNECT_REQUEST__INIT;

	cr.handle = h;
	cr.host = "127.0.0.1";
	cr.port = port;
	cr.timeout_ms = 2000;
	raw_send(fd, M_CONNECT, id, &cr.base);
	rc_expect(reply_fd, id, 0);
}

void
rc_socket_request(int fd, uint64_t id)
{
	Sockrpc__SocketRequest rq = SOCKRPC__SOCKET_REQUEST__INIT;

	rq.family = SOCKRPC__FAMILY__FAMILY_INET;
	rq.type = SOCKRPC__TYPE__TYPE_STREAM;
	raw_send(fd, M_SOCKET, id, &rq.base);
}

int64_t
rc_socket(int fd, uint64_t id, int wire_family, int wire_type)
{
	Sockrpc__SocketRequest rq = SOCKRPC__SOCKET_REQUEST__INIT;
	ProtobufCMessage *m;
	uint64_t got;
	unsigned method;
	int64_t h;

	rq.family = wire_family;
	rq.type = wire_type;
	raw_send(fd, M_SOCKET, id, &rq.base);
	m = rc_reply(fd, &got, &method, 5000);
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(got, id);
	ck_assert_uint_eq(method, M_SOCKET);
	ck_assert_msg(rc_code(m) == 0, "socket: %s", rc_message(m));
	ck_assert_ptr_nonnull(rc_state(m));
	h = rc_state(m)->id;
	protobuf_c_message_free_unpacked(m, NULL);
	return h;
}

void
assert_daemon_serves(const struct daemon *d)
{
	sr_client *c = daemon_client(d);
	sr_error err;
	sr_socket *s;
	long v = 0;

	memset(&err, 0, sizeof(err));
	s = sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &err);
	ck_assert_msg(s != NULL, "a well-behaved client cannot create a socket: %s", err.message);
	ck_assert_msg(sr_get_option(s, SO_TYPE, &v, &err) == 0, "get_option: %s", err.message);
	ck_assert_int_eq(v, SOCK_STREAM);
	ck_assert_int_eq(sr_close(s, &err), 0);
	sr_socket_free(s);
	sr_client_close(c);
}

void
fixture_daemon_down_serving(void)
{
	ck_assert_int_eq(waitpid(test_daemon.pid, NULL, WNOHANG), 0);
	assert_daemon_serves(&test_daemon);
	fixture_daemon_down();
}

void
asan_quarantine_mb(int mb)
{
	const char *old = getenv("ASAN_OPTIONS");
	char opts[512];

	snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=%d", old ? old : "",
	         old && *old ? ":" : "", mb);
	setenv("ASAN_OPTIONS", opts, 1);
}

static long
proc_field(pid_t pid, const char *file, const char *key, int index)
{
	char path[64], line[1024];
	FILE *f;
	long v = -1;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (key != NULL) {
		while (fgets(line, sizeof(line), f))
			if (strncmp(line, key, strlen(key)) == 0)
				v = strtol(line + strlen(key), NULL, 10);
	} else if (fgets(line, sizeof(line), f)) {
		/* /proc/PID/stat: skip "pid (comm)" whose comm may hold spaces */
		char *p = strrchr(line, ')');
		long a = 0, b = 0;

		if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &a,
		                &b) == 2)
			v = a + b;
		(void)index;
	}
	fclose(f);
	return v;
}

long
process_rss_kib(pid_t pid)
{
	return proc_field(pid, "status", "VmRSS:", 0);
}

long
process_cpu_ticks(pid_t pid)
{
	return proc_field(pid, "stat", NULL, 0);
}
