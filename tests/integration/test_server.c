/*
 * test_server.c - what a TCP server does through the broker: bind (default, any
 * and IPv6 hosts, ephemeral ports, errors), listen (queue lengths, states, UDP),
 * accept (peer state, timeouts, blocking, several waiting threads) and brokered
 * servers talking to brokered clients in one session and across two.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "sockets.h"

/* A brokered listener on the loopback of family (ephemeral port); returns the port. */
static sr_socket *
brokered_listener(sr_client *c, int family, int *port)
{
	sr_socket *l = new_sock(c, family, SOCK_STREAM);
	sr_sockinfo info;
	sr_error err;

	bind_ok(l, 0, family == AF_INET6 ? "::1" : "127.0.0.1");
	listen_ok(l, -1);
	ck_assert_int_eq(sr_info(l, &info, &err), 0);
	*port = info.port;
	return l;
}

/* The backlog the kernel holds for the listener on 127.0.0.1:port (ss's Send-Q), or -1. */
static int
kernel_backlog(int port)
{
	char cmd[128], line[512];
	int recvq, sendq = -1;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "ss -Hltn 'sport = :%d' 2>/dev/null", port);
	if ((p = popen(cmd, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), p) != NULL)
		if (sscanf(line, "LISTEN %d %d", &recvq, &sendq) == 2)
			break;
	pclose(p);
	return sendq;
}

static int
host_somaxconn(void)
{
	FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
	int n = SOMAXCONN;

	if (f != NULL) {
		if (fscanf(f, "%d", &n) != 1)
			n = SOMAXCONN;
		fclose(f);
	}
	return n < SOMAXCONN ? n : SOMAXCONN;
}

/* --- bind --- */

START_TEST(bind_default_host_and_ephemeral_port)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	sr_sockinfo info;
	sr_error err;
	int port;

	assert_state(s, .host = "127.0.0.1", .port = 0, .shutdown_reason = -1);
	bind_ok(s, 0, NULL);
	port = sr_socket_state(s)->port;
	ck_assert_int_gt(port, 0);
	ck_assert_int_eq(sr_info(s, &info, &err), 0);
	ck_assert_int_eq(info.port, port);
	ck_assert_str_eq(info.address, "127.0.0.1");
	ck_assert(!info.ipv6);
	ck_assert_int_eq(info.family, AF_INET);
	/* The socket's host, IP_LOCAL, is the default: not the any address. */
	assert_state(s, .host = "127.0.0.1", .port = port, .is_bound = true, .shutdown_reason = -1);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

START_TEST(bind_explicit_port_and_host)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *probe = new_sock(c, AF_INET, SOCK_STREAM), *s;
	sr_sockinfo info;
	sr_error err;
	int port;

	/* Find a free port by binding to 0, release it, then ask for it explicitly. */
	bind_ok(probe, 0, "127.0.0.1");
	ck_assert_int_eq(sr_info(probe, &info, &err), 0);
	port = info.port;
	sr_socket_free(probe);
	s = new_sock(c, AF_INET, SOCK_STREAM);
	bind_ok(s, port, "127.0.0.1");
	assert_state(s, .host = "127.0.0.1", .port = port, .is_bound = true, .shutdown_reason = -1);
	ck_assert_int_eq(sr_info(s, &info, &err), 0);
	ck_assert_int_eq(info.port, port);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

START_TEST(bind_any_address)
{
	static const struct {
		int family;
		const char *host, *state_host, *info_address;
	} cases[] = {
	    {AF_INET, "*", "0.0.0.0", "0.0.0.0"},
	    {AF_INET, "0.0.0.0", "0.0.0.0", "0.0.0.0"},
	    {AF_INET6, "*", "::", "::"},
	    {AF_INET6, "::", "::", "::"},
	    {AF_INET6, "::1", "::1", "::1"},
	    {AF_INET6, NULL, "::1", "::1"}, /* an IPv6 socket's host is ::1 */
	};
	sr_client *c = daemon_client(&test_daemon);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sr_socket *s = new_sock(c, cases[i].family, SOCK_STREAM);
		sr_sockinfo info;
		sr_error err;

		bind_ok(s, 0, cases[i].host);
		ck_assert_int_eq(sr_info(s, &info, &err), 0);
		ck_assert_msg(strcmp(info.address, cases[i].info_address) == 0,
		              "case %zu: info address %s", i, info.address);
		ck_assert_int_eq(info.ipv6, cases[i].family == AF_INET6);
		ck_assert_int_eq(info.family, cases[i].family);
		ck_assert_int_gt(info.port, 0);
		ck_assert_msg(strcmp(sr_socket_state(s)->host, cases[i].state_host) == 0,
		              "case %zu: state host \"%s\", want \"%s\"", i,
		              sr_socket_state(s)->host, cases[i].state_host);
		assert_state(s, .port = info.port, .is_bound = true, .shutdown_reason = -1);
		sr_socket_free(s);
	}
	sr_client_close(c);
}
END_TEST

START_TEST(bind_twice_is_refused)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	sr_error err;
	int port;

	bind_ok(s, 0, "127.0.0.1");
	port = sr_socket_state(s)->port;
	ck_assert_int_eq(sr_bind(s, 0, "127.0.0.1", &err), -1);
	assert_err(err, SR_ESTATE, 0, "socket previously bound");
	assert_state(s, .host = "127.0.0.1", .port = port, .is_bound = true, .shutdown_reason = -1);
	/* Still refused once listening. */
	listen_ok(s, 5);
	ck_assert_int_eq(sr_bind(s, 0, NULL, &err), -1);
	assert_err(err, SR_ESTATE, 0, "socket previously bound");
	assert_state(s, .port = port, .is_bound = true, .is_listening = true,
	             .shutdown_reason = -1);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

START_TEST(bind_port_in_use)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	sr_error err;
	char want[64];
	int fd, port;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);

	ck_assert_int_eq(sr_bind(s, port, "127.0.0.1", &err), -1);
	assert_err(err, SR_EOS, EADDRINUSE, "Address already in use");
	snprintf(want, sizeof(want), "bind to 127.0.0.1:%d failed", port);
	assert_err(err, SR_EOS, EADDRINUSE, want);
	/* An OS error does not close the socket, and it is not bound. */
	assert_state(s, .host = "127.0.0.1", .port = 0, .shutdown_reason = -1);
	bind_ok(s, 0, "127.0.0.1");
	ck_assert(sr_socket_state(s)->is_bound);
	close(fd);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

START_TEST(bind_bad_arguments)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	sr_socket *v6 = new_sock(c, AF_INET6, SOCK_STREAM);
	sr_error err;

	ck_assert_int_eq(sr_bind(s, 0, "256.1.2.3", &err), -1);
	assert_err(err, SR_EINVAL, 0, "address not valid or unsupported");
	ck_assert_int_eq(sr_bind(s, 0, "::1", &err), -1); /* IPv6 on an IPv4 socket */
	assert_err(err, SR_EINVAL, 0, "address not valid or unsupported");
	ck_assert_int_eq(sr_bind(s, 65536, "127.0.0.1", &err), -1);
	assert_err(err, SR_EINVAL, 0, "out of range");
	ck_assert_int_eq(sr_bind(s, -1, "127.0.0.1", &err), -1);
	assert_err(err, SR_EINVAL, 0, "port not specified");
	/* None of that changed the socket. */
	assert_state(s, .host = "127.0.0.1", .port = 0, .shutdown_reason = -1);
	assert_state(v6, .host = "::1", .port = 0, .shutdown_reason = -1);
	/* An IPv4 address on an IPv6 socket is its IPv4-mapped form. */
	{
		sr_socket *m = new_sock(c, AF_INET6, SOCK_STREAM);
		sr_sockinfo info;

		bind_ok(m, 0, "127.0.0.1");
		ck_assert_int_eq(sr_info(m, &info, &err), 0);
		ck_assert_str_eq(info.address, "::ffff:127.0.0.1");
		ck_assert(info.ipv6);
		assert_state(m, .host = "127.0.0.1", .port = info.port, .is_bound = true,
		             .shutdown_reason = -1);
		sr_socket_free(m);
	}
	/* A closed socket refuses bind. */
	ck_assert_int_eq(sr_close(s, &err), 0);
	ck_assert_int_eq(sr_bind(s, 0, NULL, &err), -1);
	assert_err(err, SR_ECLOSED, -1, "closed");
	sr_socket_free(v6);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

/* --- listen --- */

START_TEST(listen_queue_lengths)
{
	sr_client *c = daemon_client(&test_daemon);
	static const struct {
		int asked, want;
	} cases[] = {{-1, -2}, {0, 0}, {7, 7}, {SOMAXCONN, -2}};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
		int port, backlog, want = cases[i].want == -2 ? host_somaxconn() : cases[i].want;

		bind_ok(s, 0, NULL);
		port = sr_socket_state(s)->port;
		listen_ok(s, cases[i].asked);
		assert_state(s, .port = port, .is_bound = true, .is_listening = true,
		             .shutdown_reason = -1);
		backlog = kernel_backlog(port);
		if (backlog != -1)
			ck_assert_msg(backlog == want, "listen(%d): kernel backlog %d, want %d",
			              cases[i].asked, backlog, want);
		sr_socket_free(s);
	}
	sr_client_close(c);
}
END_TEST

START_TEST(listen_errors)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	sr_socket *u = new_sock(c, AF_INET, SOCK_DGRAM);
	sr_error err;
	int port;

	/* Before bind: illegal state. */
	ck_assert_int_eq(sr_listen(s, 5, &err), -1);
	assert_err(err, SR_ESTATE, 0, "socket is in an illegal state");
	assert_state(s, .host = "127.0.0.1", .port = 0, .shutdown_reason = -1);
	bind_ok(s, 0, NULL);
	port = sr_socket_state(s)->port;
	/* Over SOMAXCONN. */
	ck_assert_int_eq(sr_listen(s, SOMAXCONN + 1, &err), -1);
	assert_err(err, SR_EINVAL, 0, "maximum queue length exceeded");
	assert_state(s, .port = port, .is_bound = true, .shutdown_reason = -1);
	/* Twice. */
	listen_ok(s, 1);
	ck_assert_int_eq(sr_listen(s, 1, &err), -1);
	assert_err(err, SR_ESTATE, 0, NULL);
	assert_state(s, .port = port, .is_bound = true, .is_listening = true,
	             .shutdown_reason = -1);
	/* UDP: the OS says no. */
	bind_ok(u, 0, NULL);
	ck_assert_int_eq(sr_listen(u, 5, &err), -1);
	assert_err(err, SR_EOS, EOPNOTSUPP, "Operation not supported");
	assert_state(u, .port = -1, .is_bound = true, .shutdown_reason = -1);
	/* Closed. */
	ck_assert_int_eq(sr_close(s, &err), 0);
	ck_assert_int_eq(sr_listen(s, 1, &err), -1);
	assert_err(err, SR_ECLOSED, -1, NULL);
	sr_socket_free(u);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

/* --- accept --- */

static void
accept_from_plain_client(int family)
{
	const char *loop = family == AF_INET6 ? "::1" : "127.0.0.1";
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *l, *a;
	const sr_state *st;
	sr_sockinfo info;
	sr_error err;
	char buf[8], *got;
	size_t len;
	int port, fd, peer_port;
	long lid;

	l = brokered_listener(c, family, &port);
	lid = sr_socket_state(l)->id;
	fd = plain_connect(family, port, &peer_port);
	a = sr_accept(l, &err);
	ck_assert_msg(a != NULL, "accept: %d %s", err.code, err.message);
	st = sr_socket_state(a);
	assert_state(a, .host = loop, .port = peer_port, .is_client = true, .is_connected = true,
	             .shutdown_reason = -1);
	ck_assert_int_eq(st->family, family);
	ck_assert_int_eq(st->type, SOCK_STREAM);
	ck_assert_int_eq(st->protocol, IPPROTO_TCP);
	ck_assert(st->is_blocking);
	ck_assert_int_eq(st->send_timeout, -1);
	ck_assert_int_eq(st->receive_timeout, -1);
	ck_assert_int_gt(st->id, lid);
	/* The listener is unchanged. */
	assert_state(l, .host = loop, .port = port, .is_bound = true, .is_listening = true,
	             .shutdown_reason = -1);
	/* The accepted socket's local address is the listener's. */
	ck_assert_int_eq(sr_info(a, &info, &err), 0);
	ck_assert_str_eq(info.address, loop);
	ck_assert_int_eq(info.port, port);
	ck_assert_int_eq(info.ipv6, family == AF_INET6);

	ck_assert_int_eq(sr_send(a, "ping", 4, 0, &err), 4);
	ck_assert_int_eq(recv(fd, buf, 4, MSG_WAITALL), 4);
	ck_assert_mem_eq(buf, "ping", 4);
	ck_assert_int_eq(send(fd, "pong!", 5, MSG_NOSIGNAL), 5);
	got = receive_exact(a, 5);
	ck_assert_str_eq(got, "pong!");
	free(got);
	close(fd);
	ck_assert_int_eq(sr_receive(a, -1, 0, &got, &len, &err), 0);
	ck_assert_uint_eq(len, 0);
	free(got);
	/* Closing the accepted socket leaves the listener listening. */
	ck_assert_int_eq(sr_close(a, &err), 0);
	assert_state(a, .port = -1, .is_closed = true, .shutdown_reason = -1);
	assert_state(l, .port = port, .is_bound = true, .is_listening = true,
	             .shutdown_reason = -1);
	sr_socket_free(a);
	sr_socket_free(l);
	sr_client_close(c);
}

START_TEST(accept_ipv4_peer_state)
{
	accept_from_plain_client(AF_INET);
}
END_TEST

START_TEST(accept_ipv6_peer_state)
{
	accept_from_plain_client(AF_INET6);
}
END_TEST

START_TEST(accept_on_non_listening_socket)
{
	struct server srv;
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *fresh = new_sock(c, AF_INET, SOCK_STREAM);
	sr_socket *bound = new_sock(c, AF_INET, SOCK_STREAM);
	sr_socket *conn = new_sock(c, AF_INET, SOCK_STREAM);
	sr_socket *dgram = new_sock(c, AF_INET, SOCK_DGRAM);
	sr_error err;

	server_start(&srv, AF_INET, SERVER_SILENT, 0);
	ck_assert_ptr_null(sr_accept(fresh, &err));
	assert_err(err, SR_ESTATE, 0, "socket not bound/listening");
	assert_state(fresh, .host = "127.0.0.1", .port = 0, .shutdown_reason = -1);
	bind_ok(bound, 0, NULL);
	ck_assert_ptr_null(sr_accept(bound, &err));
	assert_err(err, SR_ESTATE, 0, "socket not bound/listening");
	ck_assert_int_eq(sr_connect(conn, "127.0.0.1", srv.port, 2000, &err), 0);
	ck_assert_ptr_null(sr_accept(conn, &err));
	assert_err(err, SR_ESTATE, 0, "socket not bound/listening");
	assert_state(conn, .host = "127.0.0.1", .port = srv.port, .is_client = true,
	             .is_connected = true, .shutdown_reason = -1);
	bind_ok(dgram, 0, NULL);
	ck_assert_ptr_null(sr_accept(dgram, &err));
	assert_err(err, SR_ESTATE, 0, "socket not bound/listening");
	ck_assert_int_eq(sr_close(fresh, &err), 0);
	ck_assert_ptr_null(sr_accept(fresh, &err));
	assert_err(err, SR_ECLOSED, -1, NULL);
	sr_socket_free(dgram);
	sr_socket_free(conn);
	sr_socket_free(bound);
	sr_socket_free(fresh);
	sr_client_close(c);
	server_stop(&srv);
}
END_TEST

START_TEST(accept_times_out_with_receive_timeout)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *l, *a;
	sr_error err;
	long long t0, took;
	int port, fd;

	l = brokered_listener(c, AF_INET, &port);
	ck_assert_int_eq(sr_set_option(l, SO_RCVTIMEO, 200, &err), 0);
	ck_assert_int_eq(sr_socket_state(l)->receive_timeout, 200);
	t0 = now_ms();
	ck_assert_ptr_null(sr_accept(l, &err));
	took = now_ms() - t0;
	assert_err(err, SR_ETIMEDOUT, ETIMEDOUT, "accept timed out after 200 ms");
	ck_assert_msg(took >= 180 && took < 2000, "accept timed out after %lld ms", took);
	/* Unlike Blade, the timeout leaves the listener open and listening. */
	assert_state(l, .port = port, .is_bound = true, .is_listening = true,
	             .shutdown_reason = -1);
	fd = plain_connect(AF_INET, port, NULL);
	a = sr_accept(l, &err);
	ck_assert_msg(a != NULL, "accept after a timeout: %d %s", err.code, err.message);
	close(fd);
	sr_socket_free(a);
	sr_socket_free(l);
	sr_client_close(c);
}
END_TEST

struct accept_job {
	sr_socket *listener;
	sr_socket *accepted;
	sr_error err;
	long long returned_at;
	pthread_t thread;
};

static void *
accept_thread(void *arg)
{
	struct accept_job *j = arg;

	j->accepted = sr_accept(j->listener, &j->err);
	j->returned_at = now_ms();
	return NULL;
}

START_TEST(accept_blocks_until_a_connection)
{
	sr_client *c = daemon_client(&test_daemon);
	struct accept_job job;
	sr_socket *l;
	long long connected_at;
	int port, fd, peer_port;

	memset(&job, 0, sizeof(job));
	l = brokered_listener(c, AF_INET, &port);
	job.listener = l;
	ck_assert_int_eq(pthread_create(&job.thread, NULL, accept_thread, &job), 0);
	sleep_ms(300);
	ck_assert_int_eq(job.returned_at, 0); /* still waiting */
	connected_at = now_ms();
	fd = plain_connect(AF_INET, port, &peer_port);
	pthread_join(job.thread, NULL);
	ck_assert_msg(job.accepted != NULL, "accept: %d %s", job.err.code, job.err.message);
	ck_assert_int_ge(job.returned_at, connected_at);
	assert_state(job.accepted, .host = "127.0.0.1", .port = peer_port, .is_client = true,
	             .is_connected = true, .shutdown_reason = -1);
	close(fd);
	sr_socket_free(job.accepted);
	sr_socket_free(l);
	sr_client_close(c);
}
END_TEST

START_TEST(close_ends_a_waiting_accept)
{
	sr_client *c = daemon_client(&test_daemon);
	struct accept_job job;
	sr_error err;
	sr_socket *l;
	int port;

	memset(&job, 0, sizeof(job));
	l = brokered_listener(c, AF_INET, &port);
	job.listener = l;
	ck_assert_int_eq(pthread_create(&job.thread, NULL, accept_thread, &job), 0);
	sleep_ms(200);
	ck_assert_int_eq(sr_close(l, &err), 0);
	pthread_join(job.thread, NULL);
	ck_assert_ptr_null(job.accepted);
	assert_err(job.err, SR_ECLOSED, -1, NULL);
	assert_state(l, .port = -1, .is_closed = true, .shutdown_reason = -1);
	sr_socket_free(l);
	sr_client_close(c);
}
END_TEST

#define N_ACCEPTERS 4

START_TEST(several_threads_accept_on_one_listener)
{
	sr_client *c = daemon_client(&test_daemon);
	struct accept_job jobs[N_ACCEPTERS];
	int fds[N_ACCEPTERS], ports[N_ACCEPTERS];
	bool port_seen[N_ACCEPTERS] = {false};
	sr_socket *l;
	sr_error err;
	int port;

	memset(jobs, 0, sizeof(jobs));
	l = brokered_listener(c, AF_INET, &port);
	for (int i = 0; i < N_ACCEPTERS; i++) {
		jobs[i].listener = l;
		ck_assert_int_eq(pthread_create(&jobs[i].thread, NULL, accept_thread, &jobs[i]), 0);
	}
	sleep_ms(200);
	for (int i = 0; i < N_ACCEPTERS; i++) {
		fds[i] = plain_connect(AF_INET, port, &ports[i]);
		sleep_ms(20);
	}
	for (int i = 0; i < N_ACCEPTERS; i++) {
		pthread_join(jobs[i].thread, NULL);
		ck_assert_msg(jobs[i].accepted != NULL, "accepter %d: %d %s", i, jobs[i].err.code,
		              jobs[i].err.message);
	}
	/* Each waiting accept got its own connection. */
	for (int i = 0; i < N_ACCEPTERS; i++) {
		const sr_state *st = sr_socket_state(jobs[i].accepted);
		int match = -1;

		for (int k = 0; k < N_ACCEPTERS; k++)
			if (ports[k] == st->port)
				match = k;
		ck_assert_msg(match >= 0 && !port_seen[match], "accepter %d: peer port %d", i,
		              st->port);
		port_seen[match] = true;
		for (int k = 0; k < i; k++)
			ck_assert_int_ne(sr_socket_state(jobs[k].accepted)->id, st->id);
		/* Each works: data from its own peer. */
		ck_assert_int_eq(send(fds[match], "x", 1, MSG_NOSIGNAL), 1);
		{
			char *got = receive_exact(jobs[i].accepted, 1);

			ck_assert_str_eq(got, "x");
			free(got);
		}
	}
	for (int i = 0; i < N_ACCEPTERS; i++) {
		close(fds[i]);
		ck_assert_int_eq(sr_close(jobs[i].accepted, &err), 0);
		sr_socket_free(jobs[i].accepted);
	}
	sr_socket_free(l);
	sr_client_close(c);
}
END_TEST

/* A brokered server and a brokered client exchange data; c1 == c2 for one session. */
static void
brokered_pair(sr_client *c1, sr_client *c2, int family)
{
	const char *loop = family == AF_INET6 ? "::1" : "127.0.0.1";
	sr_socket *l, *cl, *a;
	sr_sockinfo cinfo;
	sr_error err;
	char *got;
	size_t len;
	int port;

	l = brokered_listener(c1, family, &port);
	cl = new_sock(c2, family, SOCK_STREAM);
	ck_assert_msg(sr_connect(cl, loop, port, 2000, &err) == 0, "connect: %s", err.message);
	assert_state(cl, .host = loop, .port = port, .is_client = true, .is_connected = true,
	             .shutdown_reason = -1);
	ck_assert_int_eq(sr_info(cl, &cinfo, &err), 0);
	a = sr_accept(l, &err);
	ck_assert_msg(a != NULL, "accept: %d %s", err.code, err.message);
	assert_state(a, .host = loop, .port = cinfo.port, .is_client = true, .is_connected = true,
	             .shutdown_reason = -1);
	ck_assert_int_ne(sr_socket_state(a)->id, sr_socket_state(l)->id);
	if (c1 == c2)
		ck_assert_int_ne(sr_socket_state(a)->id, sr_socket_state(cl)->id);

	ck_assert_int_eq(sr_send(cl, "request", 7, 0, &err), 7);
	got = receive_exact(a, 7);
	ck_assert_str_eq(got, "request");
	free(got);
	ck_assert_int_eq(sr_send(a, "response", 8, 0, &err), 8);
	got = receive_exact(cl, 8);
	ck_assert_str_eq(got, "response");
	free(got);
	/* The client half-closes: the server sees end of stream, then answers. */
	ck_assert_int_eq(sr_shutdown(cl, SHUT_WR, &err), 0);
	assert_state(cl, .host = loop, .port = port, .is_shutdown = true,
	             .shutdown_reason = SHUT_WR);
	ck_assert_int_eq(sr_receive(a, -1, 0, &got, &len, &err), 0);
	ck_assert_uint_eq(len, 0);
	free(got);
	ck_assert_int_eq(sr_send(a, "bye", 3, 0, &err), 3);
	got = receive_exact(cl, 3);
	ck_assert_str_eq(got, "bye");
	free(got);
	ck_assert_int_eq(sr_close(a, &err), 0);
	ck_assert_int_eq(sr_receive(cl, -1, 0, &got, &len, &err), 0);
	ck_assert_uint_eq(len, 0);
	free(got);
	sr_socket_free(a);
	sr_socket_free(cl);
	sr_socket_free(l);
}

START_TEST(brokered_server_and_client_one_session)
{
	sr_client *c = daemon_client(&test_daemon);

	brokered_pair(c, c, AF_INET);
	brokered_pair(c, c, AF_INET6);
	sr_client_close(c);
}
END_TEST

START_TEST(brokered_server_and_client_two_sessions)
{
	sr_client *c1 = daemon_client(&test_daemon);
	sr_client *c2 = daemon_client(&test_daemon);

	ck_assert_uint_ne(sr_client_session_id(c1), sr_client_session_id(c2));
	brokered_pair(c1, c2, AF_INET);
	brokered_pair(c2, c1, AF_INET6);
	sr_client_close(c2);
	sr_client_close(c1);
}
END_TEST

START_TEST(shutdown_listener_stops_listening)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *l;
	sr_error err;
	int port;

	l = brokered_listener(c, AF_INET, &port);
	ck_assert_int_eq(sr_shutdown(l, SHUT_RDWR, &err), 0);
	assert_state(l, .port = port, .is_shutdown = true, .shutdown_reason = SHUT_RDWR);
	ck_assert_ptr_null(sr_accept(l, &err));
	assert_err(err, SR_ESTATE, 0, "socket not bound/listening");
	ck_assert_int_eq(sr_listen(l, 1, &err), -1);
	assert_err(err, SR_ESTATE, 0, NULL);
	sr_socket_free(l);
	sr_client_close(c);
}
END_TEST

START_TEST(client_close_frees_accepted_sockets)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *l, *a;
	sr_error err;
	int port, fd;

	l = brokered_listener(c, AF_INET, &port);
	fd = plain_connect(AF_INET, port, NULL);
	a = sr_accept(l, &err);
	ck_assert_ptr_nonnull(a);
	/* No sr_close: the session's end closes both (the fixture checks the fds). */
	sr_client_close(c);
	ck_assert(sr_socket_state(a) != NULL);
	sr_socket_free(a);
	sr_socket_free(l);
	close(fd);
}
END_TEST

Suite *
server_suite(void)
{
	Suite *s = suite_create("server");
	TCase *b = tcase_create("bind_listen");
	TCase *a = tcase_create("accept");

	tcase_add_checked_fixture(b, fixture_daemon_up, fixture_daemon_down);
	tcase_set_timeout(b, 30);
	tcase_add_test(b, bind_default_host_and_ephemeral_port);
	tcase_add_test(b, bind_explicit_port_and_host);
	tcase_add_test(b, bind_any_address);
	tcase_add_test(b, bind_twice_is_refused);
	tcase_add_test(b, bind_port_in_use);
	tcase_add_test(b, bind_bad_arguments);
	tcase_add_test(b, listen_queue_lengths);
	tcase_add_test(b, listen_errors);
	suite_add_tcase(s, b);

	tcase_add_checked_fixture(a, fixture_daemon_up, fixture_daemon_down);
	tcase_set_timeout(a, 30);
	tcase_add_test(a, accept_ipv4_peer_state);
	tcase_add_test(a, accept_ipv6_peer_state);
	tcase_add_test(a, accept_on_non_listening_socket);
	tcase_add_test(a, accept_times_out_with_receive_timeout);
	tcase_add_test(a, accept_blocks_until_a_connection);
	tcase_add_test(a, close_ends_a_waiting_accept);
	tcase_add_test(a, several_threads_accept_on_one_listener);
	tcase_add_test(a, brokered_server_and_client_one_session);
	tcase_add_test(a, brokered_server_and_client_two_sessions);
	tcase_add_test(a, shutdown_listener_stops_listening);
	tcase_add_test(a, client_close_frees_accepted_sockets);
	suite_add_tcase(s, a);
	return s;
}
