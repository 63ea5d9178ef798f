/*
 * test_socket_reserve.c - the worker's per-session reserve of sockets made ahead by the
 * privileged parent (daemon/socket_reserve.c), seen from outside: every socket of a session,
 * those from refills of the reserve too, is owned by the client's uid as the kernel reports
 * it (/proc/net/udp, /proc/net/tcp); two sessions of different uids never get each other's;
 * a reload that denies `create` leaves no socket made ahead in the worker and the next
 * creation is denied; and the worker's descriptors return to their baseline once a
 * reserve is idle and once its session ends; a session makes ahead no more than its
 * max-handles leaves room for. Needs the split daemon (root and the
 * `sockrpc` user); skipped otherwise. With SOCKRPC_DISABLE=socket-reserve the same hold,
 * with nothing made ahead.
 */
#include <check.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "as_user.h"
#include "fast_paths.h"
#include "harness.h"
#include "policy_env.h"

#define NOBODY 65534
#define OTHER 1000
#define N_SOCKETS 24 /* past the refills of 1, 2, 4 and 8 and into one of 16 */
#define LOG_MS 5000

static int g_type; /* SOCK_DGRAM or SOCK_STREAM, set before a child forks */

/* The uid the kernel reports for the socket bound to 127.0.0.1:port, or -1. */
static long
kernel_owner(int type, int port)
{
	FILE *f = fopen(type == SOCK_STREAM ? "/proc/net/tcp" : "/proc/net/udp", "r");
	char line[512];
	unsigned addr, lport;
	long uid = -1, u;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, " %*d: %x:%x %*x:%*x %*x %*x:%*x %*x:%*x %*x %ld", &addr, &lport,
		           &u) == 3 &&
		    addr == 0x0100007f && (int)lport == port)
			uid = u;
	fclose(f);
	return uid;
}

/* In a child: a socket of g_type bound to 127.0.0.1 (listening, for TCP: only then does
 * /proc/net/tcp list it), recorded with the owner the kernel reports. */
static sr_socket *
owned_socket(sr_client *c, struct report *r)
{
	sr_socket *s;
	sr_sockinfo info;
	sr_error e;

	if ((s = sr_socket_new(c, AF_INET, g_type, 0, &e)) == NULL ||
	    sr_bind(s, 0, "127.0.0.1", &e) != 0 ||
	    (g_type == SOCK_STREAM && sr_listen(s, 1, &e) != 0) || sr_info(s, &info, &e) != 0) {
		rec(r, -1, &e, 0);
		return s;
	}
	rec(r, 0, NULL, kernel_owner(g_type, info.port));
	return s;
}

static void
child_owned(sr_client *c, struct report *r)
{
	sr_socket *s[N_SOCKETS];

	for (int i = 0; i < N_SOCKETS; i++)
		s[i] = owned_socket(c, r);
	for (int i = 0; i < N_SOCKETS; i++)
		sr_socket_free(s[i]);
}

/* Half its sockets, a pause (another uid's session makes its own), the other half. */
static void
child_owned_in_two(sr_client *c, struct report *r)
{
	sr_socket *s[16];

	for (int i = 0; i < 8; i++)
		s[i] = owned_socket(c, r);
	child_sync();
	for (int i = 8; i < 16; i++)
		s[i] = owned_socket(c, r);
	for (int i = 0; i < 16; i++)
		sr_socket_free(s[i]);
}

static bool
split_daemon(void)
{
	if (geteuid() != 0 || getpwnam("sockrpc") == NULL) {
		fprintf(stderr, "socket_reserve: skipped: needs root and the sockrpc user\n");
		return false;
	}
	return true;
}

static void
start(void)
{
	write_policy("allow uid=%d,%d create tcp,udp\n"
	             "allow uid=%d,%d bind,listen tcp,udp 127.0.0.1\n",
	             NOBODY, OTHER, NOBODY, OTHER);
	policy_daemon_start(true, NULL);
	ck_assert_int_ne(daemon_worker_pid(&test_daemon), test_daemon.pid);
}

static void
assert_owners(const struct report *r, int n, long uid)
{
	ck_assert_int_eq(r->open_code, 0);
	ck_assert_int_ge(r->n, n);
	for (int i = 0; i < n; i++) {
		assert_ok(r, i);
		ck_assert_msg(r->o[i].value == uid, "socket %d: owner %ld, not %ld", i,
		              r->o[i].value, uid);
	}
}

START_TEST(sockets_from_the_reserve_carry_the_client_uid)
{
	struct report r;

	if (!split_daemon())
		return;
	start();
	g_type = _i == 0 ? SOCK_DGRAM : SOCK_STREAM;
	run_as(NOBODY, NOBODY, child_owned, &r);
	assert_owners(&r, N_SOCKETS, NOBODY);
	ck_assert_int_eq(r.n, N_SOCKETS);
	policy_daemon_finish();
}
END_TEST

START_TEST(two_uids_never_share_a_reserve)
{
	struct child a;
	struct report ra, rb;

	if (!split_daemon())
		return;
	start();
	g_type = SOCK_DGRAM;
	child_start(&a, NOBODY, NOBODY, child_owned_in_two);
	child_wait_ready(&a); /* its reserve holds sockets made for uid 65534 */
	run_as(OTHER, OTHER, child_owned, &rb);
	child_go(&a);
	child_finish(&a, &ra);
	assert_owners(&ra, 16, NOBODY);
	assert_owners(&rb, N_SOCKETS, OTHER);
	policy_daemon_finish();
}
END_TEST

/* Eight sockets (the reserve then holds more), a pause (the parent reloads a policy
 * that denies create), one more. */
static void
child_reload(sr_client *c, struct report *r)
{
	sr_socket *s[9];
	sr_error e;

	child_sync();
	for (int i = 0; i < 8; i++)
		s[i] = owned_socket(c, r);
	child_sync();
	s[8] = sr_socket_new(c, AF_INET, SOCK_DGRAM, 0, &e);
	rec(r, s[8] != NULL ? 0 : -1, &e, 0);
	for (int i = 0; i < 9; i++)
		sr_socket_free(s[i]);
}

START_TEST(a_reload_leaves_no_socket_made_ahead)
{
	struct child ch;
	struct report r;
	int base, fds;

	if (!split_daemon())
		return;
	start();
	g_type = SOCK_DGRAM;
	child_start(&ch, NOBODY, NOBODY, child_reload);
	child_wait_ready(&ch);
	base = daemon_fd_count(&test_daemon); /* with its session */
	child_go(&ch);
	child_wait_ready(&ch);
	fds = daemon_fd_count(&test_daemon);
	ck_assert_msg(fds > base + 8 || fast_path_off("socket-reserve"),
	              "%d descriptors for 8 sockets (base %d): no reserve", fds, base);
	write_policy("deny uid=%d create udp reason \"reserve test\"\n"
	             "allow uid=%d,%d create tcp,udp\n"
	             "allow uid=%d,%d bind,listen tcp,udp 127.0.0.1\n",
	             NOBODY, NOBODY, OTHER, NOBODY, OTHER);
	ck_assert_int_eq(kill(test_daemon.pid, SIGHUP), 0);
	ck_assert_msg(file_wait_text(test_daemon.log, "policy reloaded from", 1, LOG_MS),
	              "no reload in the daemon log");
	/* Well before a reserve would be closed as idle (1 s after its last use). */
	fds = daemon_wait_fds(&test_daemon, base + 8, 400);
	ck_assert_msg(fds == base + 8, "%d descriptors after the reload, %d expected", fds,
	              base + 8);
	child_go(&ch);
	child_finish(&ch, &r);
	assert_owners(&r, 8, NOBODY);
	ck_assert_int_eq(r.n, 9);
	assert_fail(&r, 8, SR_EDENIED, "reserve test");
	policy_daemon_finish();
}
END_TEST

/* Sockets made and closed (one kept), a pause; sockets made and held, a pause; the end. */
static void
child_baseline(sr_client *c, struct report *r)
{
	sr_socket *s[N_SOCKETS];
	sr_sockinfo info;
	sr_error e;

	child_sync();
	for (int i = 0; i < N_SOCKETS; i++)
		s[i] = sr_socket_new(c, AF_INET, SOCK_DGRAM, 0, &e);
	for (int i = 1; i < N_SOCKETS; i++)
		sr_socket_free(s[i]);
	/* Answered after the closes before it: the daemon has made them all. */
	rec(r, sr_info(s[0], &info, &e), &e, 0);
	child_sync();
	sr_socket_free(s[0]);
	for (int i = 0; i < N_SOCKETS; i++)
		s[i] = sr_socket_new(c, AF_INET, SOCK_DGRAM, 0, &e);
	rec(r, sr_info(s[0], &info, &e), &e, 0);
	child_sync();
	for (int i = 0; i < N_SOCKETS; i++)
		sr_socket_free(s[i]);
}

START_TEST(descriptors_return_to_the_baseline)
{
	struct child ch;
	struct report r;
	long long t;
	int base, fds;

	if (!split_daemon())
		return;
	start();
	child_start(&ch, NOBODY, NOBODY, child_baseline);
	child_wait_ready(&ch);
	base = daemon_fd_count(&test_daemon);
	child_go(&ch);
	child_wait_ready(&ch);
	/* One socket held, and those made ahead, until the reserve has been idle a while. */
	t = now_ms();
	fds = daemon_fd_count(&test_daemon);
	ck_assert_msg(fds > base + 1 || fast_path_off("socket-reserve"),
	              "%d descriptors, base %d: no reserve", fds, base);
	fds = daemon_wait_fds(&test_daemon, base + 1, 3000);
	ck_assert_msg(fds == base + 1, "%d descriptors %lld ms after, %d expected", fds,
	              now_ms() - t, base + 1);
	child_go(&ch);
	child_wait_ready(&ch);
	fds = daemon_fd_count(&test_daemon);
	ck_assert_msg(fds > base + N_SOCKETS || fast_path_off("socket-reserve"),
	              "%d descriptors, base %d: no reserve", fds, base);
	/* The session ends: all of it goes, at once. */
	child_go(&ch);
	child_finish(&ch, &r);
	ck_assert_int_eq(r.n, 2);
	assert_ok(&r, 0);
	assert_ok(&r, 1);
	fds = daemon_wait_fds(&test_daemon, test_daemon.idle_fds, 500);
	ck_assert_msg(fds == test_daemon.idle_fds, "%d descriptors after the session, %d idle", fds,
	              test_daemon.idle_fds);
	policy_daemon_finish();
}
END_TEST

/* Eight sockets held, a pause, a ninth (past --max-handles 8). */
static void
child_limit(sr_client *c, struct report *r)
{
	sr_socket *s[9];
	sr_error e;

	child_sync();
	for (int i = 0; i < 8; i++) {
		s[i] = sr_socket_new(c, AF_INET, SOCK_DGRAM, 0, &e);
		rec(r, s[i] != NULL ? 0 : -1, &e, 0);
	}
	child_sync();
	s[8] = sr_socket_new(c, AF_INET, SOCK_DGRAM, 0, &e);
	rec(r, s[8] != NULL ? 0 : -1, &e, 0);
	for (int i = 0; i < 9; i++)
		sr_socket_free(s[i]);
}

/* A session makes ahead no more than its max-handles leaves room for, and what it made
 * ahead does not count against that limit. */
START_TEST(a_reserve_stays_within_max_handles)
{
	struct child ch;
	struct report r;
	int base, fds;

	if (!split_daemon())
		return;
	write_policy("allow uid=%d create tcp,udp\n", NOBODY);
	policy_daemon_start(true, "--max-handles", "8", NULL);
	child_start(&ch, NOBODY, NOBODY, child_limit);
	child_wait_ready(&ch);
	base = daemon_fd_count(&test_daemon);
	child_go(&ch);
	child_wait_ready(&ch);
	fds = daemon_fd_count(&test_daemon);
	/* Refills of 1, 2 and 4, then of 1 where 8 would have gone past the limit. */
	ck_assert_msg(fds == base + 8, "%d descriptors for 8 sockets under max-handles 8 (base %d)",
	              fds, base);
	child_go(&ch);
	child_finish(&ch, &r);
	ck_assert_int_eq(r.n, 9);
	for (int i = 0; i < 8; i++)
		assert_ok(&r, i);
	assert_fail(&r, 8, SR_ELIMIT, "too many sockets");
	policy_daemon_finish();
}
END_TEST

static void
env_setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	policy_env_setup("reserve", "127.0.0.1 localhost\n");
}

Suite *
socket_reserve_suite(void)
{
	Suite *s = suite_create("socket_reserve");
	TCase *tc = tcase_create("reserve");

	tcase_add_checked_fixture(tc, env_setup, policy_env_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, sockets_from_the_reserve_carry_the_client_uid, 0, 2);
	tcase_add_test(tc, two_uids_never_share_a_reserve);
	tcase_add_test(tc, a_reload_leaves_no_socket_made_ahead);
	tcase_add_test(tc, descriptors_return_to_the_baseline);
	tcase_add_test(tc, a_reserve_stays_within_max_handles);
	suite_add_tcase(s, tc);
	return s;
}
