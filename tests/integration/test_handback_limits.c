/*
 * test_handback_limits.c - descriptors a session hands back count against its socket
 * limit until they have left the daemon. An unprivileged uid (65534) pipelines thousands
 * of Socket, Connect and Handback calls and never reads a reply: the descriptors wait in
 * the daemon for a client that does not take them, and without a bound one session
 * would hold any number of them (max-handles counts open handles only), up to the
 * daemon's RLIMIT_NOFILE, and every other client would be refused.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "as_user.h"
#include "fast_paths.h"
#include "harness.h"
#include "policy_env.h"
#include "rawcall.h"

#define NOBODY 65534
#define MAX_HANDLES 16
#define ROUNDS 3000
#define TAKEN_MAX 8 /* --max-handles of taken_handbacks_do_not_count */

static int listen_port;

/* Socket (a client id), Connect and Handback, ROUNDS times, written at once; no reply is
 * read until the parent has counted the daemon's descriptors. */
static void
child_handback_flood(sr_client *c, struct report *r)
{
	size_t cap = (size_t)ROUNDS * 3 * 128, len = 0;
	uint8_t *buf = malloc(cap);
	int fd = raw_session(test_daemon.path), handed = 0;

	(void)c;
	for (int i = 0; i < ROUNDS; i++) {
		Sockrpc__SocketRequest sq = SOCKRPC__SOCKET_REQUEST__INIT;
		Sockrpc__ConnectRequest cq = SOCKRPC__CONNECT_REQUEST__INIT;
		Sockrpc__HandbackRequest hq = SOCKRPC__HANDBACK_REQUEST__INIT;
		int64_t h = SR_CLIENT_HANDLE_BASE + i;

		sq.family = SOCKRPC__FAMILY__FAMILY_INET;
		sq.type = SOCKRPC__TYPE__TYPE_STREAM;
		sq.handle = h;
		cq.handle = h;
		cq.host = "127.0.0.1";
		cq.port = listen_port;
		cq.timeout_ms = 5000;
		hq.handle = h;
		len += rc_frame(buf + len, M_SOCKET, 10 + 3 * (uint64_t)i, &sq.base);
		len += rc_frame(buf + len, M_CONNECT, 11 + 3 * (uint64_t)i, &cq.base);
		len += rc_frame(buf + len, M_HANDBACK, 12 + 3 * (uint64_t)i, &hq.base);
	}
	raw_write(fd, buf, len);
	free(buf);
	rec(r, 0, NULL, 0);
	child_sync(); /* the parent counts the daemon's descriptors */
	/* 1: how many handbacks succeeded while nothing was read (their descriptors, read
	 * without SCM_RIGHTS room, are dropped by the kernel now). */
	for (int i = 0; i < ROUNDS * 3; i++) {
		ProtobufCMessage *m;
		unsigned method;
		uint64_t id;

		if ((m = rc_reply(fd, &id, &method, 5000)) == NULL)
			break;
		handed += method == M_HANDBACK && rc_code(m) == 0;
		protobuf_c_message_free_unpacked(m, NULL);
	}
	rec(r, 0, NULL, handed);
	close(fd);
}

/* A listener on the loopback that never accepts (its queue completes every handshake), at
 * listen_port; nobody may connect to it with handback, under --max-handles max_handles.
 * Returns the listener, for the caller to close. */
static int
start_handback_daemon(const char *max_handles)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(lfd, 4096), 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
	listen_port = ntohs(a.sin_port);
	write_policy("allow uid=0 create tcp\n"
	             "allow uid=%d create tcp\n"
	             "allow uid=%d connect tcp 127.0.0.1 port %d handback\n",
	             NOBODY, NOBODY, listen_port);
	policy_daemon_start(true, "--max-handles", max_handles, NULL);
	return lfd;
}

START_TEST(unsent_handbacks_count_against_the_limit)
{
	int lfd, held = 0, fds;
	long long deadline;
	struct child ch;
	struct report r;

	/* The flood pipelines Handback right behind Connect, which finds the socket connected
	 * only where the daemon answers a finished connect at once. */
	if (fast_path_off("connect-at-once"))
		return;
	lfd = start_handback_daemon("16");
	child_start(&ch, NOBODY, NOBODY, child_handback_flood);
	child_wait_ready(&ch);
	/* The daemon works through the calls for a while: its highest count is the one. */
	deadline = now_ms() + 3000;
	while (now_ms() < deadline) {
		if ((fds = daemon_fd_count(&test_daemon)) > held)
			held = fds;
		sleep_ms(50);
	}
	child_go(&ch);
	child_finish(&ch, &r);
	/* Its idle descriptors, the session's, a few it opens on first use, and at most
	 * MAX_HANDLES sockets (without the bound: over a thousand). */
	ck_assert_msg(held <= test_daemon.idle_fds + 4 + MAX_HANDLES,
	              "one session made the daemon hold %d descriptors (idle %d, max-handles %d)",
	              held, test_daemon.idle_fds, MAX_HANDLES);
	/* Sent but not taken, they wait in the client's socket, charged to the daemon's uid. */
	ck_assert_msg(r.o[1].value <= MAX_HANDLES,
	              "%ld sockets handed back to a client that read nothing (max-handles %d)",
	              r.o[1].value, MAX_HANDLES);
	ck_assert_int_gt(r.o[1].value, 0);
	assert_daemon_serves(&test_daemon);
	policy_daemon_finish();
	close(lfd);
}
END_TEST

/* 4 x TAKEN_MAX connections handed back one after another, each taken and closed. */
static void
child_handbacks_taken(sr_client *c, struct report *r)
{
	sr_error e;
	int fd, i;

	for (i = 0; i < 4 * TAKEN_MAX; i++) {
		if ((fd = sr_connect_fd(c, AF_INET, SOCK_STREAM, "127.0.0.1", listen_port, 5000,
		                        &e)) < 0)
			break;
		close(fd);
	}
	rec(r, i == 4 * TAKEN_MAX ? 0 : -1, &e, i);
}

/* Descriptors the client has taken no longer count (the daemon asks the kernel how much
 * of its output the client read before it refuses a socket near the limit); a limit
 * below the daemon's slack of unconfirmed ones (session_fd.c) too. */
START_TEST(taken_handbacks_do_not_count)
{
	int lfd = start_handback_daemon("8");
	struct child ch;
	struct report r;

	child_start(&ch, NOBODY, NOBODY, child_handbacks_taken);
	child_finish(&ch, &r);
	ck_assert_msg(r.o[0].code == 0, "handback %ld of %d failed: %s", r.o[0].value,
	              4 * TAKEN_MAX, r.o[0].msg);
	policy_daemon_finish();
	close(lfd);
}
END_TEST

static void
env_setup(void)
{
	policy_env_setup("handback_limits", "127.0.0.1 localhost\n");
}

Suite *
handback_limits_suite(void)
{
	Suite *s = suite_create("handback_limits");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, env_setup, policy_env_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, unsent_handbacks_count_against_the_limit);
	tcase_add_test(tc, taken_handbacks_do_not_count);
	suite_add_tcase(s, tc);
	return s;
}
