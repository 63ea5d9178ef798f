/*
 * fake_daemon.c - a fake sockrpcd in the test process: see fake_daemon.h.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fake_daemon.h"

static void *
fake_main(void *arg)
{
	struct fake *f = arg;
	int fd;

	if ((fd = accept(f->listen_fd, NULL, NULL)) == -1)
		return NULL;
	f->serve(f, fd);
	close(fd);
	return NULL;
}

void
fake_start(struct fake *f, fake_serve_fn *serve, int mode)
{
	struct sockaddr_un sun;

	memset(f, 0, sizeof(*f));
	f->mode = mode;
	f->serve = serve;
	snprintf(f->dir, sizeof(f->dir), "/tmp/sockrpc-fake.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/fake.sock", f->dir);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", f->path);
	f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(f->listen_fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(f->listen_fd, 4), 0);
	ck_assert_int_eq(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

void
fake_stop(struct fake *f)
{
	pthread_join(f->thread, NULL);
	close(f->listen_fd);
	unlink(f->path);
	rmdir(f->dir);
}

int
fake_read(int fd, struct sr_frame_header *h, uint8_t *buf, size_t cap)
{
	uint8_t hdr[SR_FRAME_HEADER_SIZE];

	if (recv(fd, hdr, sizeof(hdr), MSG_WAITALL) != (ssize_t)sizeof(hdr))
		return -1;
	frame_header_decode(hdr, h);
	if (h->length > cap ||
	    (h->length > 0 && recv(fd, buf, h->length, MSG_WAITALL) != (ssize_t)h->length))
		return -1;
	return 0;
}

void
fake_reply(int fd, unsigned method, uint64_t id, uint16_t flags, const ProtobufCMessage *m,
           const void *raw, size_t raw_len)
{
	struct sr_frame_header h;
	uint8_t *buf;
	size_t len = m != NULL ? protobuf_c_message_get_packed_size(m) : raw_len;

	buf = malloc(SR_FRAME_HEADER_SIZE + len);
	ck_assert_ptr_nonnull(buf);
	if (m != NULL)
		protobuf_c_message_pack(m, buf + SR_FRAME_HEADER_SIZE);
	else if (raw_len > 0)
		memcpy(buf + SR_FRAME_HEADER_SIZE, raw, raw_len);
	h.length = (uint32_t)len;
	h.method = (uint16_t)method;
	h.flags = flags;
	h.call_id = id;
	frame_header_encode(&h, buf);
	(void)!send(fd, buf, SR_FRAME_HEADER_SIZE + len, MSG_NOSIGNAL);
	free(buf);
}

int
fake_hello(int fd, uint32_t max_frame, uint32_t max_payload)
{
	Sockrpc__HelloReply hello = SOCKRPC__HELLO_REPLY__INIT;
	struct sr_frame_header h;
	uint8_t buf[4096];

	if (fake_read(fd, &h, buf, sizeof(buf)) == -1)
		return -1;
	hello.major = SR_PROTOCOL_MAJOR;
	hello.minor = SR_PROTOCOL_MINOR;
	hello.session_id = 77;
	hello.max_frame = max_frame != 0 ? max_frame : SR_MAX_FRAME;
	hello.max_payload = max_payload != 0 ? max_payload : SR_MAX_PAYLOAD;
	fake_reply(fd, 0, h.call_id, SR_FRAME_FLAG_REPLY, &hello.base, NULL, 0);
	return 0;
}

void
fake_hold(int fd)
{
	uint8_t buf[4096];

	while (recv(fd, buf, sizeof(buf), 0) > 0)
		;
}

void
fake_socket_state(Sockrpc__SocketState *state, bool connected)
{
	state->id = 1;
	state->host = "127.0.0.1";
	state->family = SOCKRPC__FAMILY__FAMILY_INET;
	state->type = SOCKRPC__TYPE__TYPE_STREAM;
	state->protocol = SOCKRPC__PROTOCOL__PROTO_TCP;
	state->is_blocking = true;
	state->is_client = connected;
	state->is_connected = connected;
	state->port = connected ? 9 : 0;
	state->shutdown_reason = -1;
	state->send_timeout = -1;
	state->receive_timeout = -1;
}

unsigned
fake_method(const char *name)
{
	const ProtobufCMethodDescriptor *m =
	    protobuf_c_service_descriptor_get_method_by_name(&sockrpc__sock_rpc__descriptor, name);

	ck_assert_ptr_nonnull(m);
	return (unsigned)(m - sockrpc__sock_rpc__descriptor.methods);
}
