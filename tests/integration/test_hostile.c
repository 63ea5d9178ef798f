/*
 * test_hostile.c - the client library against a hostile daemon (issue 14, item 12):
 * everything a daemon says is bounded by what the caller asked and by the library's
 * fixed maxima. A fake daemon (fake_daemon.h) answers Hello, then sends crafted
 * replies: counts beyond what was sent, data longer than asked, Hello limits of
 * 4 GiB and a header announcing a 4 GiB body, replies nobody asked for, states out
 * of range, and hang-ups. Each must give a clear error, bounded memory, no undefined
 * behaviour (the ASan build aborts on any), and handles that read closed once the
 * connection is lost.
 */
#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fake_daemon.h"
#include "fast_paths.h"
#include "harness.h"
#include "sockets.h"
#include "sockrpc.pb-c.h"

#define REQUEST_MAX (2u * 1024 * 1024) /* the most the fake takes in one request */

/* How the fake answers. Zero fields keep a well-behaved answer. */
struct scenario {
	uint32_t max_frame, max_payload;                       /* Hello */
	bool blocking;                                         /* every state the fake sends */
	int32_t family, type, protocol, shutdown_reason, port; /* the Socket's state */
	int64_t id;             /* the Socket's handle id (default 1, 2, ...) */
	bool same_id;           /* every Socket gets handle 1 */
	int64_t info_state_id;  /* the handle whose state Info answers with */
	int32_t info_family;    /* InfoReply.family */
	int n_addresses;        /* GetAddressInfo: how many entries ... */
	int32_t address_family; /* ... of which family */
	int32_t status_code;    /* Info is answered with this status code */
	/* Send/SendTo counts in turn, the last repeated; 0: all that was sent. */
	int64_t sent[2];
	/* Receive/Read/ReceiveFrom lengths in turn, the last repeated; 0: what was asked
	 * (at most 4096). */
	size_t data[2];
	int32_t from_port;      /* ReceiveFromReply.port */
	bool unsolicited;       /* a reply with call id 0 right after Hello */
	bool twice;             /* Socket is answered twice */
	bool not_a_reply;       /* Socket is answered without the reply flag */
	int hang_up_after;      /* hang up once this request is answered (1: the
	                         * first after Hello); 0: never */
	int header_at;          /* on this request, send only a header ... */
	uint32_t header_length; /* ... announcing this body ... */
	size_t header_body;     /* ... and this many bytes of it, then hang up */
};

enum {
	SENT_OVERFLOW,
	SENT_NEGATIVE,
	SENT_BEHIND,
	DATA_LONG,
	DATA_BEYOND_PAYLOAD,
	DATA_AHEAD_LONG,
	HUGE_LIMITS,
	HUGE_BODY,
	BODY_THEN_HANG_UP,
	HANG_UP,
	TWICE,
	UNSOLICITED,
	NOT_A_REPLY,
	BAD_FAMILY,
	BAD_TYPE,
	BAD_PROTOCOL,
	BAD_SHUTDOWN,
	BAD_PORT,
	BAD_ID,
	OTHER_HANDLE,
	SAME_ID,
	UNKNOWN_CODE,
	INFO_FAMILY,
	ADDRESSES,
	ADDRESS_FAMILY,
	FROM_PORT,
};

static const struct scenario scenarios[] = {
    [SENT_OVERFLOW] = {.max_payload = 16, .sent = {16, INT64_MAX}},
    [SENT_NEGATIVE] = {.sent = {-5}},
    [SENT_BEHIND] = {.blocking = true, .sent = {3}},
    [DATA_LONG] = {.data = {2000}},
    [DATA_BEYOND_PAYLOAD] = {.max_payload = 1024, .data = {2000}},
    [DATA_AHEAD_LONG] = {.blocking = true, .max_payload = 4096, .data = {100, 5000}},
    [HUGE_LIMITS] = {.max_frame = UINT32_MAX, .max_payload = UINT32_MAX},
    [HUGE_BODY] = {.max_frame = UINT32_MAX,
                   .max_payload = UINT32_MAX,
                   .header_at = 1,
                   .header_length = UINT32_MAX},
    [BODY_THEN_HANG_UP] = {.header_at = 2, .header_length = SR_MAX_FRAME, .header_body = 100},
    [HANG_UP] = {.hang_up_after = 1},
    [TWICE] = {.twice = true},
    [UNSOLICITED] = {.unsolicited = true},
    [NOT_A_REPLY] = {.not_a_reply = true},
    [BAD_FAMILY] = {.family = 99},
    [BAD_TYPE] = {.type = 77},
    [BAD_PROTOCOL] = {.protocol = 999},
    [BAD_SHUTDOWN] = {.shutdown_reason = 42},
    [BAD_PORT] = {.port = 70000},
    [BAD_ID] = {.id = -3},
    [OTHER_HANDLE] = {.info_state_id = 2},
    [SAME_ID] = {.same_id = true},
    [UNKNOWN_CODE] = {.status_code = 999},
    [INFO_FAMILY] = {.info_family = 99},
    [ADDRESSES] = {.n_addresses = 65},
    [ADDRESS_FAMILY] = {.n_addresses = 2, .address_family = 99},
    [FROM_PORT] = {.from_port = -1},
};

static void
fill_state(const struct scenario *sc, Sockrpc__SocketState *state, int64_t id)
{
	fake_socket_state(state, true);
	state->id = id;
	state->is_blocking = sc->blocking;
	if (sc->family != 0)
		state->family = sc->family;
	if (sc->type != 0)
		state->type = sc->type;
	if (sc->protocol != 0)
		state->protocol = sc->protocol;
	if (sc->shutdown_reason != 0)
		state->shutdown_reason = sc->shutdown_reason;
	if (sc->port != 0)
		state->port = sc->port;
}

/* The data a Receive, Read or ReceiveFrom is answered with, from what it asked. */
static size_t
data_length(const struct scenario *sc, int n, int64_t asked)
{
	size_t len = sc->data[n > 0 && sc->data[1] != 0 ? 1 : 0];

	if (len != 0)
		return len;
	return asked < 0 || asked > 4096 ? 4096 : (size_t)asked;
}

/* Answers one request of method `name` the way the scenario says. */
static void
answer(int fd, const struct scenario *sc, const struct sr_frame_header *h, const uint8_t *body,
       int *n_sockets, int *n_sent, int *n_data)
{
	const char *name = sockrpc__sock_rpc__descriptor.methods[h->method].name;
	Sockrpc__Status ok = SOCKRPC__STATUS__INIT, bad = SOCKRPC__STATUS__INIT;
	Sockrpc__SocketState state = SOCKRPC__SOCKET_STATE__INIT;
	uint16_t flags = SR_FRAME_FLAG_REPLY;
	static uint8_t data[2 * 1024 * 1024];
	int64_t id = 1;

	memset(data, 'h', sizeof(data));
	fill_state(sc, &state, id);
	if (strcmp(name, "Socket") == 0) {
		Sockrpc__SocketReply r = SOCKRPC__SOCKET_REPLY__INIT;

		++*n_sockets;
		state.id = sc->id != 0 ? sc->id : sc->same_id ? 1 : *n_sockets;
		r.status = &ok;
		r.state = &state;
		if (sc->not_a_reply)
			flags = 0;
		fake_reply(fd, h->method, h->call_id, flags, &r.base, NULL, 0);
		if (sc->twice)
			fake_reply(fd, h->method, h->call_id, flags, &r.base, NULL, 0);
	} else if (strcmp(name, "Send") == 0 || strcmp(name, "SendTo") == 0) {
		Sockrpc__SendRequest *in = sockrpc__send_request__unpack(NULL, h->length, body);
		Sockrpc__SendReply r = SOCKRPC__SEND_REPLY__INIT; /* the same fields as SendTo */
		int64_t sent = sc->sent[*n_sent > 0 && sc->sent[1] != 0 ? 1 : 0];

		ck_assert_ptr_nonnull(in);
		r.status = &ok;
		r.state = &state;
		r.sent = sent != 0 ? sent : (int64_t)in->data.len;
		++*n_sent;
		fake_reply(fd, h->method, h->call_id, flags, &r.base, NULL, 0);
		sockrpc__send_request__free_unpacked(in, NULL);
	} else if (strcmp(name, "Receive") == 0 || strcmp(name, "Read") == 0 ||
	           strcmp(name, "ReceiveFrom") == 0) {
		/* The three requests and replies share their first fields' numbers. */
		Sockrpc__ReceiveRequest *in;
		Sockrpc__ReceiveFromReply r = SOCKRPC__RECEIVE_FROM_REPLY__INIT;

		in = sockrpc__receive_request__unpack(NULL, h->length, body);
		ck_assert_ptr_nonnull(in);
		r.status = &ok;
		r.state = &state;
		if (in->length > (int64_t)sizeof(data)) {
			/* Only a client that took a limit of 4 GiB asks for this much. */
			bad.code = SOCKRPC__CODE__EINVAL;
			bad.message = "the fake was asked for more than 2 MiB";
			r.status = &bad;
		} else {
			r.data.data = data;
			r.data.len = data_length(sc, *n_data, in->length);
			if (in->length > 4096 && sc->data[0] == 0)
				r.data.len = (size_t)in->length;
		}
		if (strcmp(name, "ReceiveFrom") == 0) {
			r.host = "127.0.0.1";
			r.port = sc->from_port != 0 ? sc->from_port : 9;
		}
		++*n_data;
		fake_reply(fd, h->method, h->call_id, flags, &r.base, NULL, 0);
		sockrpc__receive_request__free_unpacked(in, NULL);
	} else if (strcmp(name, "Info") == 0) {
		Sockrpc__InfoReply r = SOCKRPC__INFO_REPLY__INIT;

		if (sc->info_state_id != 0)
			state.id = sc->info_state_id;
		r.status = &ok;
		if (sc->status_code != 0) {
			bad.code = sc->status_code;
			bad.message = "no such thing";
			r.status = &bad;
		}
		r.state = &state;
		r.address = "127.0.0.1";
		r.port = 4242;
		r.family = sc->info_family != 0 ? sc->info_family : SOCKRPC__FAMILY__FAMILY_INET;
		fake_reply(fd, h->method, h->call_id, flags, &r.base, NULL, 0);
	} else if (strcmp(name, "GetAddressInfo") == 0) {
		Sockrpc__GetAddressInfoReply r = SOCKRPC__GET_ADDRESS_INFO_REPLY__INIT;
		Sockrpc__AddressEntry entries[100], *list[100];

		for (int i = 0; i < sc->n_addresses; i++) {
			sockrpc__address_entry__init(&entries[i]);
			entries[i].family = SOCKRPC__FAMILY__FAMILY_INET;
			if (i == 1 && sc->address_family != 0)
				entries[i].family = sc->address_family;
			entries[i].ip = "127.0.0.1";
			list[i] = &entries[i];
		}
		r.status = &ok;
		r.canonical_name = "localhost";
		r.n_addresses = (size_t)sc->n_addresses;
		r.addresses = list;
		fake_reply(fd, h->method, h->call_id, flags, &r.base, NULL, 0);
	} else {
		/* Close, Shutdown and the rest: Status OK and a closed state. */
		Sockrpc__CloseReply r = SOCKRPC__CLOSE_REPLY__INIT;

		state.is_closed = true;
		r.status = &ok;
		r.state = &state;
		fake_reply(fd, h->method, h->call_id, flags, &r.base, NULL, 0);
	}
}

static void
hostile_serve(struct fake *f, int fd)
{
	const struct scenario *sc = &scenarios[f->mode];
	Sockrpc__CloseReply empty = SOCKRPC__CLOSE_REPLY__INIT;
	int n_sockets = 0, n_sent = 0, n_data = 0;
	struct sr_frame_header h;
	uint8_t *body = malloc(REQUEST_MAX);

	ck_assert_ptr_nonnull(body);
	if (fake_hello(fd, sc->max_frame, sc->max_payload) == -1)
		goto out;
	if (sc->unsolicited)
		fake_reply(fd, fake_method("Close"), 0, SR_FRAME_FLAG_REPLY, &empty.base, NULL, 0);
	for (int n = 1; fake_read(fd, &h, body, REQUEST_MAX) == 0; n++) {
		if (n == sc->header_at) {
			uint8_t frame[SR_FRAME_HEADER_SIZE + 4096];
			size_t len = SR_FRAME_HEADER_SIZE + sc->header_body;
			struct sr_frame_header r = {.length = sc->header_length,
			                            .method = h.method,
			                            .flags = SR_FRAME_FLAG_REPLY,
			                            .call_id = h.call_id};

			frame_header_encode(&r, frame);
			memset(frame + SR_FRAME_HEADER_SIZE, 'b', 4096);
			(void)!send(fd, frame, len, MSG_NOSIGNAL);
			sleep_ms(1000);
			break;
		}
		answer(fd, sc, &h, body, &n_sockets, &n_sent, &n_data);
		if (n == sc->hang_up_after)
			break;
	}
out:
	free(body);
}

/* A client of the fake in `mode`. */
static sr_client *
hostile_open(struct fake *f, int mode)
{
	sr_client *c;
	sr_error err;

	signal(SIGPIPE, SIG_IGN);
	fake_start(f, hostile_serve, mode);
	c = sr_client_open(f->path, &err);
	ck_assert_msg(c != NULL, "%s", err.message);
	return c;
}

static void
assert_error(const sr_error *err, int code, const char *want)
{
	ck_assert_msg(err->code == code, "code %d (%s), want %d", err->code, err->message, code);
	ck_assert_msg(strstr(err->message, want) != NULL, "message: %s", err->message);
}

/* The connection is broken for good: the handle reads closed and every call fails at
 * once with the reason, SR_EPROTO or SR_EDAEMON. */
static void
assert_broken(sr_client *c, sr_socket *s, int code)
{
	long long t0 = now_ms();
	sr_error err;

	if (s != NULL) {
		ck_assert(sr_socket_state(s)->is_closed);
		ck_assert(!sr_socket_state(s)->is_connected);
		ck_assert_int_eq(sr_send(s, "x", 1, 0, &err), -1);
		ck_assert_int_eq(err.code, code);
	}
	ck_assert_ptr_null(sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &err));
	ck_assert_int_eq(err.code, code);
	ck_assert_msg(now_ms() - t0 < 1000, "failing took %lld ms", now_ms() - t0);
	if (s != NULL)
		ck_assert_int_eq(sr_close(s, &err), 0); /* the session is gone, and s with it */
}

static sr_socket *
hostile_socket(sr_client *c)
{
	sr_socket *s;
	sr_error err;

	s = sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &err);
	ck_assert_msg(s != NULL, "%s", err.message);
	return s;
}

static void
hostile_close(struct fake *f, sr_client *c, sr_socket *s)
{
	sr_socket_free(s);
	sr_client_close(c);
	fake_stop(f);
}

/* The count of a Send is bounded by the chunk sent: a huge one would overflow the
 * total (undefined behaviour) and return more than was asked. */
START_TEST(send_count_beyond_the_chunk)
{
	struct fake f;
	sr_client *c = hostile_open(&f, SENT_OVERFLOW);
	sr_socket *s = hostile_socket(c);
	char data[40];
	sr_error err;

	memset(data, 'd', sizeof(data));
	/* 16-byte chunks: the first is answered 16, the second INT64_MAX. */
	ck_assert_int_eq(sr_send(s, data, sizeof(data), 0, &err), 16);
	assert_error(&err, SR_EPROTO, "sockrpcd reports 9223372036854775807 bytes sent of 16");
	assert_broken(c, s, SR_EPROTO);
	hostile_close(&f, c, s);
}
END_TEST

START_TEST(send_count_negative)
{
	struct fake f;
	sr_client *c = hostile_open(&f, SENT_NEGATIVE);
	sr_socket *s = hostile_socket(c);
	sr_error err;

	ck_assert_int_eq(sr_send(s, "0123456789", 10, 0, &err), -1);
	assert_error(&err, SR_EPROTO, "sockrpcd reports -5 bytes sent of 10");
	assert_broken(c, s, SR_EPROTO);
	hostile_close(&f, c, s);
}
END_TEST

START_TEST(send_to_count_beyond_the_datagram)
{
	struct fake f;
	sr_client *c;
	sr_socket *s;
	sr_error err;

	c = hostile_open(&f, SENT_NEGATIVE);
	s = hostile_socket(c);
	ck_assert_int_eq(sr_send_to(s, "127.0.0.1", 9, "abc", 3, 0, &err), -1);
	assert_error(&err, SR_EPROTO, "sockrpcd reports -5 bytes sent of 3");
	assert_broken(c, s, SR_EPROTO);
	hostile_close(&f, c, s);
}
END_TEST

/* A send written behind (blocking, connected) answered short breaks the connection:
 * the next call that collects it says why. */
START_TEST(send_behind_answered_short)
{
	if (fast_path_off("write-behind"))
		return; /* it tests write-behind itself */
	struct fake f;
	sr_client *c = hostile_open(&f, SENT_BEHIND);
	sr_socket *s = hostile_socket(c);
	sr_error err;

	ck_assert_int_eq(sr_send(s, "0123456789", 10, 0, &err), 10);
	ck_assert_int_eq(sr_shutdown(s, SHUT_WR, &err), -1);
	assert_error(&err, SR_EPROTO, "sockrpcd sent 3 of 10 bytes without an error");
	assert_broken(c, s, SR_EPROTO);
	hostile_close(&f, c, s);
}
END_TEST

/* Receive, Read and ReceiveFrom never hand out more than was asked. */
START_TEST(data_longer_than_asked)
{
	static const char *const calls[] = {"receive", "read", "receive_from"};
	struct fake f;
	sr_client *c;
	sr_socket *s;
	sr_error err;
	char *got = NULL;
	size_t len;
	int rc;

	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		c = hostile_open(&f, DATA_LONG);
		s = hostile_socket(c);
		if (i == 0)
			rc = sr_receive(s, 10, 0, &got, &len, &err);
		else if (i == 1)
			rc = sr_read(s, 10, &got, &len, &err);
		else
			rc = sr_receive_from(s, 10, 0, &got, &len, NULL, NULL, &err);
		ck_assert_msg(rc == -1, "%s took %zu bytes of 10", calls[i], len);
		assert_error(&err, SR_EPROTO, "returned 2000 bytes where at most 10 were asked");
		assert_broken(c, s, SR_EPROTO);
		hostile_close(&f, c, s);
	}
}
END_TEST

/* "All that is pending" is bounded by the payload limit the daemon announced. */
START_TEST(data_beyond_the_payload_limit)
{
	struct fake f;
	sr_client *c = hostile_open(&f, DATA_BEYOND_PAYLOAD);
	sr_socket *s = hostile_socket(c);
	sr_error err;
	char *got;
	size_t len;

	ck_assert_int_eq(sr_receive(s, -1, 0, &got, &len, &err), -1);
	assert_error(&err, SR_EPROTO, "returned 2000 bytes where at most 1024 were asked");
	assert_broken(c, s, SR_EPROTO);
	hostile_close(&f, c, s);
}
END_TEST

/* Read-ahead (blocking, connected) checks its replies as a receive does. */
START_TEST(data_read_ahead_longer_than_asked)
{
	if (fast_path_off("read-ahead"))
		return; /* it tests read-ahead itself */
	struct fake f;
	sr_client *c = hostile_open(&f, DATA_AHEAD_LONG);
	sr_socket *s = hostile_socket(c);
	sr_error err;
	char *got;
	size_t len;

	ck_assert_int_eq(sr_receive(s, 100, 0, &got, &len, &err), 0);
	ck_assert_uint_eq(len, 100); /* full: read-ahead of 4096 bytes starts */
	free(got);
	ck_assert_int_eq(sr_receive(s, 100, 0, &got, &len, &err), -1);
	assert_error(&err, SR_EPROTO, "returned 5000 bytes where at most 4096 were asked");
	assert_broken(c, s, SR_EPROTO);
	hostile_close(&f, c, s);
}
END_TEST

/* Bytes of address space the process has had at most (VmPeak), or -1. */
static long long
vm_peak(void)
{
	char line[256];
	long long kb = -1;
	FILE *fp = fopen("/proc/self/status", "r");

	if (fp == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "VmPeak: %lld kB", &kb) == 1)
			break;
	fclose(fp);
	return kb * 1024;
}

/* Hello limits of 4 GiB are clamped: a receive of "everything" asks for 1 MiB. */
START_TEST(hello_limits_clamped)
{
	struct fake f;
	sr_client *c = hostile_open(&f, HUGE_LIMITS);
	sr_socket *s = hostile_socket(c);
	sr_error err;
	char *got;
	size_t len;

	ck_assert_msg(sr_receive(s, 8L << 30, 0, &got, &len, &err) == 0, "%s", err.message);
	ck_assert_uint_eq(len, SR_MAX_PAYLOAD);
	free(got);
	hostile_close(&f, c, s);
}
END_TEST

/* A header announcing a 4 GiB body, then nothing: refused at once, before any buffer
 * of that size is reserved (address space is measured: an untouched allocation counts). */
START_TEST(header_announces_4_gib)
{
	struct fake f;
	sr_client *c = hostile_open(&f, HUGE_BODY);
	long long peak = vm_peak(), t0 = now_ms();
	sr_error err;

	ck_assert_ptr_null(sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &err));
	ck_assert_msg(vm_peak() - peak < 64LL << 20, "address space grew by %lld MiB",
	              (vm_peak() - peak) >> 20);
	assert_error(&err, SR_EPROTO, "bad frame from sockrpcd: frame larger than the maximum");
	ck_assert_msg(now_ms() - t0 < 900, "refused after %lld ms", now_ms() - t0);
	assert_broken(c, NULL, SR_EPROTO);
	sr_client_close(c);
	fake_stop(&f);
}
END_TEST

/* A body that stops in the middle, then a hang-up: the call fails, the handle reads
 * closed, and every later call fails at once. */
START_TEST(hang_up_in_the_middle_of_a_reply)
{
	struct fake f;
	sr_client *c = hostile_open(&f, BODY_THEN_HANG_UP);
	sr_socket *s = hostile_socket(c);
	sr_error err;
	char *got;
	size_t len;

	ck_assert(sr_socket_state(s)->is_connected);
	ck_assert_int_eq(sr_receive(s, 10, 0, &got, &len, &err), -1);
	assert_error(&err, SR_EDAEMON, "daemon closed the connection");
	assert_broken(c, s, SR_EDAEMON);
	hostile_close(&f, c, s);
}
END_TEST

/* Waits up to 2 s for the state of s to read closed; sr_socket_state() notices a
 * hang-up itself, without a call. */
static void
wait_closed(sr_socket *s)
{
	long long t0 = now_ms();

	while (!sr_socket_state(s)->is_closed && now_ms() - t0 < 2000)
		sleep_ms(10);
	ck_assert_msg(sr_socket_state(s)->is_closed, "still open 2 s after the hang-up");
}

/* A daemon that hangs up between calls: the state shows it without a call. */
START_TEST(hang_up_between_calls)
{
	struct fake f;
	sr_client *c = hostile_open(&f, HANG_UP);
	sr_socket *s = hostile_socket(c);

	wait_closed(s);
	assert_broken(c, s, SR_EDAEMON);
	hostile_close(&f, c, s);
}
END_TEST

/* The same with the real daemon, killed while its client is idle: replies come on the
 * reply channel there, and the state of every handle reads closed. */
START_TEST(daemon_killed_between_calls)
{
	struct server srv;
	struct daemon d;
	sr_client *c;
	sr_socket *s, *listener;
	sr_error err;
	char cmd[128];

	server_start(&srv, AF_INET, SERVER_SILENT, 0);
	daemon_start(&d, NULL);
	c = daemon_client(&d);
	s = new_sock(c, AF_INET, SOCK_STREAM);
	ck_assert_int_eq(sr_connect(s, "127.0.0.1", srv.port, 2000, &err), 0);
	listener = new_sock(c, AF_INET, SOCK_STREAM);
	ck_assert_int_eq(sr_bind(listener, 0, "127.0.0.1", &err), 0);
	ck_assert_int_eq(sr_listen(listener, 4, &err), 0);
	ck_assert(sr_socket_state(s)->is_connected);
	kill(d.pid, SIGKILL);
	waitpid(d.pid, NULL, 0);
	d.pid = 0;
	wait_closed(s);
	ck_assert(sr_socket_state(listener)->is_closed);
	ck_assert(!sr_socket_state(listener)->is_listening);
	ck_assert(!sr_socket_state(listener)->is_bound);
	assert_broken(c, s, SR_EDAEMON);
	assert_broken(c, listener, SR_EDAEMON);
	sr_socket_free(s);
	sr_socket_free(listener);
	sr_client_close(c);
	server_stop(&srv);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d.dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* Replies that match no outstanding call. */
static void
expect_violation(int mode, const char *want)
{
	struct fake f;
	sr_client *c = hostile_open(&f, mode);
	sr_error err;

	ck_assert_ptr_null(sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &err));
	assert_error(&err, SR_EPROTO, want);
	assert_broken(c, NULL, SR_EPROTO);
	sr_client_close(c);
	fake_stop(&f);
}

START_TEST(replies_nobody_asked_for)
{
	struct fake f;
	sr_client *c;
	sr_socket *s;
	sr_error err;

	expect_violation(UNSOLICITED, "matches no call (id 0,");
	expect_violation(NOT_A_REPLY, "expected a reply frame");
	/* The same reply twice: the second matches no call any more. */
	c = hostile_open(&f, TWICE);
	s = hostile_socket(c);
	ck_assert_int_eq(sr_info(s, NULL, &err), -1);
	assert_error(&err, SR_EPROTO, "matches no call (id 2,");
	assert_broken(c, s, SR_EPROTO);
	hostile_close(&f, c, s);
}
END_TEST

/* States no socket can have. */
START_TEST(states_out_of_range)
{
	expect_violation(BAD_FAMILY, "unknown family, type, protocol or shutdown (99, 1, 6, -1)");
	expect_violation(BAD_TYPE, "unknown family, type, protocol or shutdown (2, 77, 6, -1)");
	expect_violation(BAD_PROTOCOL, "unknown family, type, protocol or shutdown (2, 1, 999");
	expect_violation(BAD_SHUTDOWN, "unknown family, type, protocol or shutdown (2, 1, 6, 42)");
	expect_violation(BAD_PORT, "socket state with port 70000");
	expect_violation(BAD_ID, "socket state with handle id -3");
}
END_TEST

/* Handle ids: a reply for handle 1 with handle 2's state, one id given twice. */
START_TEST(handle_ids_checked)
{
	struct fake f;
	sr_client *c;
	sr_socket *s;
	sr_error err;

	c = hostile_open(&f, OTHER_HANDLE);
	s = hostile_socket(c);
	ck_assert_int_eq(sr_info(s, NULL, &err), -1);
	assert_error(&err, SR_EPROTO, "answered for handle 1 with the state of handle 2");
	assert_broken(c, s, SR_EPROTO);
	hostile_close(&f, c, s);

	c = hostile_open(&f, SAME_ID);
	s = hostile_socket(c);
	ck_assert_ptr_null(sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &err));
	assert_error(&err, SR_EPROTO, "new socket handle 1, already in use");
	assert_broken(c, s, SR_EPROTO);
	hostile_close(&f, c, s);
}
END_TEST

/* Other fields: a status code this library does not know (the call fails, the
 * connection goes on), InfoReply's family, GetAddressInfo's count and families,
 * ReceiveFrom's port. */
START_TEST(reply_fields_checked)
{
	struct fake f;
	sr_client *c;
	sr_socket *s;
	sr_addrinfo *ai;
	sr_sockinfo info;
	sr_error err;
	char *got, host[64];
	size_t len;
	int port;

	c = hostile_open(&f, UNKNOWN_CODE);
	s = hostile_socket(c);
	ck_assert_int_eq(sr_info(s, &info, &err), -1);
	assert_error(&err, SR_EPROTO, "sockrpcd answered with unknown code 999: no such thing");
	ck_assert(sr_socket_state(s)->is_connected);
	hostile_close(&f, c, s);

	c = hostile_open(&f, INFO_FAMILY);
	s = hostile_socket(c);
	ck_assert_int_eq(sr_info(s, &info, &err), -1);
	assert_error(&err, SR_EPROTO, "InfoReply with unknown family 99");
	assert_broken(c, s, SR_EPROTO);
	hostile_close(&f, c, s);

	c = hostile_open(&f, ADDRESSES);
	ck_assert_int_eq(sr_get_address_info(c, "localhost", NULL, AF_INET, &ai, &err), -1);
	assert_error(&err, SR_EPROTO, "GetAddressInfoReply with 65 addresses (at most 64)");
	assert_broken(c, NULL, SR_EPROTO);
	sr_client_close(c);
	fake_stop(&f);

	c = hostile_open(&f, ADDRESS_FAMILY);
	ck_assert_int_eq(sr_get_address_info(c, "localhost", NULL, AF_INET, &ai, &err), -1);
	assert_error(&err, SR_EPROTO, "GetAddressInfoReply with unknown family 99");
	sr_client_close(c);
	fake_stop(&f);

	c = hostile_open(&f, FROM_PORT);
	s = hostile_socket(c);
	ck_assert_int_eq(sr_receive_from(s, 10, 0, &got, &len, host, &port, &err), -1);
	assert_error(&err, SR_EPROTO, "ReceiveFromReply with port -1");
	assert_broken(c, s, SR_EPROTO);
	hostile_close(&f, c, s);
}
END_TEST

Suite *
hostile_suite(void)
{
	Suite *s = suite_create("hostile");
	TCase *tc = tcase_create("fake");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, send_count_beyond_the_chunk);
	tcase_add_test(tc, send_count_negative);
	tcase_add_test(tc, send_to_count_beyond_the_datagram);
	tcase_add_test(tc, send_behind_answered_short);
	tcase_add_test(tc, data_longer_than_asked);
	tcase_add_test(tc, data_beyond_the_payload_limit);
	tcase_add_test(tc, data_read_ahead_longer_than_asked);
	tcase_add_test(tc, hello_limits_clamped);
	tcase_add_test(tc, header_announces_4_gib);
	tcase_add_test(tc, hang_up_in_the_middle_of_a_reply);
	tcase_add_test(tc, hang_up_between_calls);
	tcase_add_test(tc, daemon_killed_between_calls);
	tcase_add_test(tc, replies_nobody_asked_for);
	tcase_add_test(tc, states_out_of_range);
	tcase_add_test(tc, handle_ids_checked);
	tcase_add_test(tc, reply_fields_checked);
	suite_add_tcase(s, tc);
	return s;
}
