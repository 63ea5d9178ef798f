/*
 * fuzz_client_reply.c - libFuzzer target: the client library's reply path (client/)
 * against a hostile daemon. Each input is a script of client calls and the replies a
 * fake daemon answers them with: the fake, a thread on the other end of a socketpair,
 * reads each request and answers it with the next reply record of the input, framed
 * with the request's own call id and method unless the record says otherwise (another
 * id, method or flags, a length that lies, the reply twice, a hang-up). Past the input's
 * replies, or when no request comes for a moment, the fake hangs up.
 *
 * Besides ASan/UBSan, it checks what the library promises a caller whatever the daemon
 * says (see check_*): counts and data never beyond what was asked, only codes of
 * sockrpc.h, every handle closed once the connection is broken. Run with
 * -malloc_limit_mb=16: no reply may make the client allocate more than about its
 * largest frame (1 MiB + 64 KiB, CLIENT_MAX_FRAME) at once.
 *
 * Build: tools/fuzz/build.sh [OUTDIR] (FUZZ_TARGETS=client_reply for this one alone).
 * Run:
 *   build-fuzz/fuzz_client_reply -malloc_limit_mb=16 -max_len=8192 CORPUS_DIR
 * tools/fuzz/corpus/client_reply
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "frame.h"
#include "internal.h"

#define MAX_SOCKETS 4
#define MAX_OPS 48
#define SEND_MAX 64             /* bytes one sr_send or sr_send_to carries */
#define IDLE_MS 10              /* the fake hangs up when no request comes for this long */
#define REQUEST_MAX (64 * 1024) /* the most the fake reads of one request */

/* Record controls: how the fake frames a reply. */
enum {
	REC_ID = 1 << 0,      /* call id + param */
	REC_METHOD = 1 << 1,  /* method + param */
	REC_FLAGS = 1 << 2,   /* flags = param */
	REC_LENGTH = 1 << 3,  /* header length = the next 4 bytes (the body is sent as is) */
	REC_TWICE = 1 << 4,   /* send it twice */
	REC_HANG_UP = 1 << 5, /* hang up after it */
};

/* FUZZ_CLIENT_VERBOSE set: say how each op ended (to check seeds). */
static bool verbose;

struct input {
	const uint8_t *p;
	size_t left;
};

struct fake {
	int fd;
	struct input replies;
	const uint8_t *hello; /* a canned Hello reply, or NULL: the first record is it */
	size_t hello_len;
};

static uint8_t
take_u8(struct input *in)
{
	uint8_t v = 0;

	if (in->left > 0) {
		v = *in->p++;
		in->left--;
	}
	return v;
}

static uint32_t
take_u32(struct input *in)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v = v << 8 | take_u8(in);
	return v;
}

static void
send_frame(int fd, const struct sr_frame_header *h, const uint8_t *body, size_t len)
{
	uint8_t hdr[SR_FRAME_HEADER_SIZE];
	struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)(uintptr_t)body, len}};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};

	frame_header_encode(h, hdr);
	(void)!sendmsg(fd, &msg, MSG_NOSIGNAL);
}

/* Reads one request (header and body); -1 at EOF or when none comes in IDLE_MS. */
static int
read_request(int fd, struct sr_frame_header *h, uint8_t *body)
{
	uint8_t hdr[SR_FRAME_HEADER_SIZE];
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	if (poll(&pfd, 1, IDLE_MS) != 1 ||
	    recv(fd, hdr, sizeof(hdr), MSG_WAITALL) != (ssize_t)sizeof(hdr))
		return -1;
	frame_header_decode(hdr, h);
	if (h->length > REQUEST_MAX ||
	    (h->length > 0 && recv(fd, body, h->length, MSG_WAITALL) != (ssize_t)h->length))
		return -1;
	return 0;
}

/* Answers requests with the input's reply records until they run out. */
static void *
fake_main(void *arg)
{
	struct fake *f = arg;
	struct sr_frame_header h;
	static _Thread_local uint8_t body[REQUEST_MAX];
	bool first = true;

	while (read_request(f->fd, &h, body) == 0) {
		struct input *in = &f->replies;
		uint8_t ctl, param;
		size_t len;
		uint32_t length;

		h.flags = SR_FRAME_FLAG_REPLY;
		if (first && f->hello != NULL) {
			h.length = (uint32_t)f->hello_len;
			send_frame(f->fd, &h, f->hello, f->hello_len);
			first = false;
			continue;
		}
		first = false;
		if (in->left == 0)
			break;
		ctl = take_u8(in);
		param = take_u8(in);
		length = ctl & REC_LENGTH ? take_u32(in) : 0;
		len = (size_t)take_u8(in) << 8;
		len |= take_u8(in);
		if (len > in->left)
			len = in->left;
		if (ctl & REC_ID)
			h.call_id += param;
		if (ctl & REC_METHOD)
			h.method = (uint16_t)(h.method + param);
		if (ctl & REC_FLAGS)
			h.flags = param;
		h.length = ctl & REC_LENGTH ? length : (uint32_t)len;
		send_frame(f->fd, &h, in->p, len);
		if (ctl & REC_TWICE)
			send_frame(f->fd, &h, in->p, len);
		in->p += len;
		in->left -= len;
		if (ctl & REC_HANG_UP)
			break;
	}
	shutdown(f->fd, SHUT_RDWR);
	return NULL;
}

/* A code the library may return: those of sockrpc.h. */
static void
check_code(int rc, const sr_error *err)
{
	if (rc == -1 && (err->code < SR_EINVAL || err->code > SR_ESTATE)) {
		fprintf(stderr, "code %d: %s\n", err->code, err->message);
		abort();
	}
}

/* A count or a length within what was asked. */
static void
check_bound(long long got, long long asked, const char *what)
{
	if (got < 0 || got > asked) {
		fprintf(stderr, "%s: %lld of %lld\n", what, got, asked);
		abort();
	}
}

/* Once the connection is broken, every handle reads closed. */
static void
check_handles(sr_client *c)
{
	bool broken;

	pthread_mutex_lock(&c->mu);
	broken = c->broken;
	for (sr_socket *s = c->sockets; broken && s != NULL; s = s->next) {
		if (!s->state.is_closed || s->state.is_connected || s->state.is_listening) {
			fprintf(stderr, "handle %ld open on a broken connection\n", s->handle);
			abort();
		}
	}
	pthread_mutex_unlock(&c->mu);
}

/* Runs one op (two bytes of the script) on c. */
static void
run_op(sr_client *c, sr_socket **socks, uint8_t op, uint8_t arg)
{
	static const char data[SEND_MAX] = "0123456789abcdef0123456789abcdef"
	                                   "0123456789abcdef0123456789abcde";
	sr_socket **sp = &socks[arg % MAX_SOCKETS], *s = *sp;
	size_t n = arg % SEND_MAX, len = 0;
	long length = (long)arg - 2, got;
	char *out = NULL, host[64];
	sr_addrinfo *ai = NULL;
	sr_sockinfo info;
	sr_error err;
	int rc = 0, port;

	if (s == NULL && op % 20 > 1 && op % 20 != 18)
		op = 0;
	switch (op % 20) {
	case 0:
	case 1:
		if (*sp != NULL)
			sr_socket_free(*sp);
		*sp = sr_socket_new(c, AF_INET, op % 20 == 0 ? SOCK_STREAM : SOCK_DGRAM, 0, &err);
		rc = *sp == NULL ? -1 : 0;
		break;
	case 2:
		rc = sr_connect(s, "127.0.0.1", 9, arg, &err);
		break;
	case 3:
		got = sr_send(s, data, n, 0, &err);
		if (got != -1)
			check_bound(got, (long long)n, "send");
		rc = got == -1 ? -1 : 0;
		break;
	case 4:
	case 5:
		rc = sr_receive(s, length, op % 20 == 5 ? MSG_PEEK : 0, &out, &len, &err);
		if (rc == 0)
			check_bound((long long)len, length < 0 ? SR_MAX_PAYLOAD : length,
			            "receive");
		break;
	case 6:
		rc = sr_read(s, length, &out, &len, &err);
		if (rc == 0)
			check_bound((long long)len, length < 0 ? 1024 : length, "read");
		break;
	case 7:
		rc = sr_receive_from(s, length, 0, &out, &len, host, &port, &err);
		if (rc == 0) {
			check_bound((long long)len, length < 0 ? SR_MAX_PAYLOAD : length,
			            "recvfrom");
			check_bound(port, 65535, "port");
		}
		break;
	case 8:
		got = sr_send_to(s, "127.0.0.1", 9, data, n, 0, &err);
		if (got != -1)
			check_bound(got, (long long)n, "send_to");
		rc = got == -1 ? -1 : 0;
		break;
	case 9:
		rc = sr_info(s, &info, &err);
		break;
	case 10:
		rc = sr_get_option(s, SO_RCVBUF, &got, &err);
		break;
	case 11:
		rc = sr_set_option(s, SO_RCVTIMEO, arg, &err);
		break;
	case 12:
		rc = sr_set_blocking(s, arg & 1, &err);
		break;
	case 13: {
		sr_socket *a = sr_accept(s, &err);

		rc = a == NULL ? -1 : 0;
		sr_socket_free(a);
		break;
	}
	case 14:
		rc = sr_bind(s, 0, "127.0.0.1", &err);
		break;
	case 15:
		rc = sr_listen(s, arg, &err);
		break;
	case 16:
		rc = sr_shutdown(s, SHUT_RDWR, &err);
		break;
	case 17:
		rc = sr_close(s, &err);
		break;
	case 18:
		rc = sr_get_address_info(c, "localhost", NULL, AF_UNSPEC, &ai, &err);
		if (rc == 0)
			check_bound((long long)ai->count, CLIENT_MAX_ADDRESSES, "addresses");
		sr_addrinfo_free(ai);
		break;
	case 19:
		(void)sr_socket_state(s);
		break;
	}
	free(out);
	if (verbose)
		fprintf(stderr, "op %u arg %u: %s\n", op % 20, arg, rc == 0 ? "ok" : err.message);
	check_code(rc, &err);
	check_handles(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {data, size};
	uint8_t hello_buf[64];
	Sockrpc__HelloReply hello = SOCKRPC__HELLO_REPLY__INIT;
	sr_socket *socks[MAX_SOCKETS] = {0};
	struct fake f;
	pthread_t thread;
	sr_client *c;
	sr_error err;
	uint8_t mode, n_ops, ops[2 * MAX_OPS];
	int sv[2];

	signal(SIGPIPE, SIG_IGN);
	verbose = getenv("FUZZ_CLIENT_VERBOSE") != NULL;
	memset(&f, 0, sizeof(f));
	mode = take_u8(&in);
	hello.major = SR_PROTOCOL_MAJOR;
	hello.minor = SR_PROTOCOL_MINOR;
	hello.session_id = 1;
	hello.daemon_version = "fuzz";
	hello.max_frame = take_u32(&in);
	hello.max_payload = take_u32(&in);
	if (!(mode & 1)) { /* else the first record is the Hello reply */
		f.hello = hello_buf;
		f.hello_len = protobuf_c_message_pack(&hello.base, hello_buf);
	}
	n_ops = take_u8(&in) % (MAX_OPS + 1);
	for (int i = 0; i < 2 * n_ops; i++)
		ops[i] = take_u8(&in);
	f.replies = in;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		abort();
	f.fd = sv[1];
	if (pthread_create(&thread, NULL, fake_main, &f) != 0)
		abort();
	c = cl_client_adopt(sv[0], &err);
	if (c == NULL) {
		if (verbose)
			fprintf(stderr, "hello: %s\n", err.message);
		check_code(-1, &err);
	} else {
		for (int i = 0; i < n_ops; i++)
			run_op(c, socks, ops[2 * i], ops[2 * i + 1]);
		for (int i = 0; i < MAX_SOCKETS; i++)
			sr_socket_free(socks[i]);
		sr_client_close(c);
	}
	pthread_join(thread, NULL);
	close(sv[1]);
	return 0;
}
