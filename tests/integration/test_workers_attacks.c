/*
 * test_workers_attacks.c - attacks on the daemon with three workers (--workers 3), by
 * clients of uid 65534 and others, and by a worker that lies (workers_fixture.h): a uid
 * racing a dozen sessions at once, with others leaving mid-Hello, never holds more than
 * --max-sessions-per-uid and every count comes back; a silent flood of one uid leaves
 * room on every worker; logrotate and SIGHUP move every worker to the new audit log
 * without losing or splitting a line; a limit lowered then raised by reload wakes the
 * workers that stopped at their share; --max-sessions 4294967295 does not wrap; a worker
 * that closes its channels but lives on is killed and the daemon ends (fail-closed).
 * The parent's side of a lying worker (forged ids, one connection under many ids, too
 * many sessions) is tests/unit/test_priv.c.
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "as_user.h"
#include "frame.h"
#include "harness.h"
#include "sockrpc.pb-c.h"
#include "workers_fixture.h"

/* Half the Hello timeout: a client served later waited for silent ones to time out. */
#define HELLO_WAIT_MS 1500

static void
child_hold_none(sr_client *c, struct report *r)
{
}

/* No limit on the command line: the policy's `limit sessions` decides, and reloads. */
static void
setup_plain(void)
{
	const char *args[] = {"--policy", wk_policy_path,       "--workers",
	                      "3",        "--no-reply-channel", NULL};

	setup_with(args);
}

/* --max-sessions as large as it goes: effectively none, never a small one wrapped. */
static void
setup_huge(void)
{
	const char *args[] = {
	    "--policy",       wk_policy_path, "--workers",          "3", "--audit", wk_audit_path,
	    "--max-sessions", "4294967295",   "--no-reply-channel", NULL};

	setup_with(args);
}

/* Sockets made in two halves around a sync point (the log is rotated between). */
static void
child_audited_halves(sr_client *c, struct report *r)
{
	audited_sockets(c, r, true);
}

/* Whole lines of path (asserted), and how many record a socket's creation. */
static int
creations_in(const char *path)
{
	char line[8192];
	int n = 0;
	FILE *f;

	ck_assert_ptr_nonnull(f = fopen(path, "re"));
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t len = strlen(line);

		ck_assert_msg(len > 1 && line[len - 1] == '\n' && line[len - 2] == '}' &&
		                  strncmp(line, "{\"time\":\"", 9) == 0 &&
		                  strstr(line + 1, "{\"time\"") == NULL,
		              "%s: a broken line: %s", path, line);
		n += strstr(line, "\"op\":\"create\"") != NULL;
	}
	fclose(f);
	return n;
}

/* Whether worker k's descriptors include the file at path (by its inode). */
static bool
worker_has_open(int k, const char *path)
{
	char dir_path[64], fd_path[320];
	struct stat want, st;
	struct dirent *e;
	bool found = false;
	DIR *dp;

	snprintf(dir_path, sizeof(dir_path), "/proc/%d/fd", (int)wk_pids[k]);
	if (stat(path, &want) != 0 || (dp = opendir(dir_path)) == NULL)
		return false;
	while (!found && (e = readdir(dp)) != NULL) {
		snprintf(fd_path, sizeof(fd_path), "%s/%s", dir_path, e->d_name);
		found = e->d_name[0] != '.' && stat(fd_path, &st) == 0 &&
		        st.st_ino == want.st_ino && st.st_dev == want.st_dev;
	}
	closedir(dp);
	return found;
}

/* logrotate with three workers: the log renamed, then SIGHUP, while every worker's
 * sessions write. Every worker moves to the new file, and no line is lost or split
 * across the two. */
START_TEST(every_worker_reopens_the_audit_log)
{
	struct child ch[MIN_UIDS];
	struct report r;
	char rotated[128];
	bool moved = false;
	int before, after;

	SKIP_UNLESS_USABLE();
	snprintf(rotated, sizeof(rotated), "%s.1", wk_audit_path);
	for (int u = 0; u < MIN_UIDS; u++)
		child_start(&ch[u], wk_uids[u], wk_uids[u], child_audited_halves);
	for (int u = 0; u < MIN_UIDS; u++)
		child_wait_ready(&ch[u]);
	ck_assert_int_eq(rename(wk_audit_path, rotated), 0);
	ck_assert_int_eq(kill(test_daemon.pid, SIGHUP), 0);
	for (int u = 0; u < MIN_UIDS; u++)
		child_go(&ch[u]);
	for (int u = 0; u < MIN_UIDS; u++) {
		child_finish(&ch[u], &r);
		ck_assert_msg(r.open_code == 0, "%s", r.open_msg);
		assert_ok(&r, 0);
		assert_ok(&r, 1);
	}
	for (int i = 0; i < 200 && !moved; i++) {
		moved = true;
		for (int k = 0; k < N_WORKERS; k++)
			moved = moved && worker_has_open(k, wk_audit_path) &&
			        !worker_has_open(k, rotated);
		if (!moved)
			sleep_ms(10);
	}
	ck_assert_msg(moved, "a worker still writes to the rotated log");
	daemon_stop(&test_daemon); /* every buffered line out */
	test_daemon.pid = 0;
	before = creations_in(rotated);
	after = creations_in(wk_audit_path);
	fprintf(stderr, "workers: %d socket lines before the rotation, %d after\n", before, after);
	ck_assert_int_eq(before + after, AUDIT_SOCKETS * MIN_UIDS);
}
END_TEST

/* Racers and quitters of one uid, released at once (race_round). */
#define RACERS 12
#define QUITTERS 6

static void
become(uid_t uid)
{
	if (setgroups(0, NULL) != 0 || setgid(uid) != 0 || setuid(uid) != 0)
		_exit(99);
}

/* A racer: waits for the start (end of file on start_fd), opens a session, says whether it
 * got one on result_fd, and holds it until the end of file on hold_fd. */
static void
racer(int start_fd, int result_fd, int hold_fd)
{
	sr_client *c;
	sr_error err;
	char b;

	become(65534);
	(void)read(start_fd, &b, 1);
	c = sr_client_open(test_daemon.path, &err);
	if (write(result_fd, c != NULL ? "Y" : "N", 1) != 1)
		_exit(1);
	(void)read(hold_fd, &b, 1);
	if (c != NULL)
		sr_client_close(c);
	_exit(0);
}

/* A quitter leaves mid-way: after half a frame, or with its Hello unanswered (the worker
 * may be asking the parent to admit it), or right after its Hello, without a goodbye. */
static void
quitter(int start_fd, int how)
{
	Sockrpc__HelloRequest req = SOCKRPC__HELLO_REQUEST__INIT;
	sr_error err;
	char b;
	int fd;

	become(65534);
	(void)read(start_fd, &b, 1);
	if (how == 2) {
		(void)sr_client_open(test_daemon.path, &err);
		_exit(0);
	}
	fd = raw_connect(test_daemon.path);
	if (how == 0) {
		(void)write(fd, "\0\0", 2);
	} else {
		req.major = SR_PROTOCOL_MAJOR;
		req.client_name = "quitter";
		raw_send(fd, 0, 1, &req.base);
	}
	_exit(0);
}

/* One round: RACERS sessions of uid 65534 (and `quitters` that leave mid-Hello) at once,
 * on three workers. Returns how many racers hold a session at the same moment. */
static int
race_round(int quitters)
{
	int start[2], result[2], hold[2], got = 0, replies = 0, status;
	pid_t pids[RACERS + QUITTERS];
	char b;

	ck_assert_int_eq(pipe2(start, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(result, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(hold, O_CLOEXEC), 0);
	for (int i = 0; i < RACERS + quitters; i++) {
		ck_assert_int_ge(pids[i] = fork(), 0);
		if (pids[i] == 0) {
			close(start[1]);
			close(hold[1]);
			if (i < RACERS)
				racer(start[0], result[1], hold[0]);
			quitter(start[0], i % 3);
		}
	}
	close(start[0]);
	close(result[1]);
	close(hold[0]);
	close(start[1]); /* go */
	while (replies < RACERS) {
		struct pollfd pfd = {.fd = result[0], .events = POLLIN};

		ck_assert_msg(poll(&pfd, 1, CHILD_MS) == 1, "the racers did not answer");
		ck_assert_int_eq(read(result[0], &b, 1), 1);
		replies++;
		got += b == 'Y';
	}
	/* Every racer answered and those admitted still hold: this many at once. */
	wait_sessions(got);
	close(hold[1]);
	for (int i = 0; i < RACERS + quitters; i++) {
		ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d: %#x", i,
		              status);
	}
	close(result[0]);
	wait_sessions(0);
	return got;
}

/* --max-sessions-per-uid 2 over three workers, raced: a dozen processes of one uid open
 * sessions at once while others leave mid-Hello. No more than two are ever admitted, and
 * every count comes back (a leak would lock the uid out, a double release give it more). */
START_TEST(a_raced_uid_never_holds_more_than_its_limit)
{
	int got;

	SKIP_UNLESS_USABLE();
	for (int round = 0; round < 3; round++) {
		got = race_round(QUITTERS);
		ck_assert_msg(got >= 1 && got <= PER_UID, "round %d: %d sessions at once", round,
		              got);
	}
	ck_assert_int_eq(race_round(0), PER_UID); /* nothing leaked */
}
END_TEST

#define SILENT 1400 /* more than the three workers' shares of the default 1024 sessions */

/* uid 65534 floods every worker with connections that never say Hello: each worker keeps
 * half its own share for others (as one worker keeps half of --max-sessions), so another
 * uid's client is served at once, not when the silent ones time out (HELLO_TIMEOUT_MS). */
START_TEST(a_silent_flood_leaves_room_on_every_worker)
{
	struct rlimit rl = {SILENT + 64, SILENT + 64};
	struct report r;
	int ready[2], hold[2], status;
	long long t0, took;
	pid_t pid;
	char b;

	SKIP_UNLESS_USABLE();
	ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(hold, O_CLOEXEC), 0);
	ck_assert_int_ge(pid = fork(), 0);
	if (pid == 0) {
		close(hold[1]);
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			_exit(98);
		become(65534);
		for (int i = 0; i < SILENT; i++)
			(void)raw_connect(test_daemon.path); /* held until the exit */
		(void)write(ready[1], "r", 1);
		(void)read(hold[0], &b, 1);
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	ck_assert_int_eq(read(ready[0], &b, 1), 1);
	sleep_ms(300); /* the workers take what they take */
	t0 = now_ms();
	run_as(1000, 1000, child_hold_none, &r);
	took = now_ms() - t0;
	fprintf(stderr, "workers: a client past a silent flood: %lld ms\n", took);
	ck_assert_msg(r.open_code == 0, "%s", r.open_msg);
	ck_assert_msg(took < HELLO_WAIT_MS, "served after %lld ms", took);
	close(hold[1]);
	close(ready[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "flood: %#x", status);
}
END_TEST

/* Sends a Hello on a new connection; returns the connection. */
static int
hello_sent(void)
{
	Sockrpc__HelloRequest req = SOCKRPC__HELLO_REQUEST__INIT;
	int fd = raw_connect(test_daemon.path);

	req.major = SR_PROTOCOL_MAJOR;
	req.minor = SR_PROTOCOL_MINOR;
	req.client_name = "late";
	raw_send(fd, 0, 1, &req.base);
	return fd;
}

#define HELD_MAX 1000

/* `limit sessions` lowered under what the workers hold: each, past its new share, stops
 * taking connections. Raised again, they take them at once, not when a session ends
 * (long-lived sessions may never end). */
START_TEST(a_raised_limit_wakes_workers_past_their_share)
{
	static int held[HELD_MAX];
	char policy[512];
	struct sr_frame_header h;
	unsigned char *body = NULL;
	int n = 0, least = 0, late, per[N_WORKERS];

	SKIP_UNLESS_USABLE();
	/* Every worker over 90 sessions: over its share of `limit sessions 1` (65 / 3 + 64). */
	while (least < 90 && n < HELD_MAX) {
		held[n++] = raw_session(test_daemon.path);
		if (n % 30 == 0) {
			wait_sessions(n);
			sessions_per_worker(per);
			least = per[0] < per[1] ? per[0] : per[1];
			least = least < per[2] ? least : per[2];
		}
	}
	ck_assert_int_ge(least, 90);
	snprintf(policy, sizeof(policy), "%slimit sessions 1\n", wk_policy_before);
	write_file(wk_policy_path, policy);
	ck_assert_int_eq(kill(test_daemon.pid, SIGHUP), 0);
	sleep_ms(300);
	late = hello_sent();
	ck_assert_msg(raw_recv(late, &h, &body, 300) == -1, "a worker past its share took it");
	write_file(wk_policy_path, wk_policy_before);
	ck_assert_int_eq(kill(test_daemon.pid, SIGHUP), 0);
	ck_assert_msg(raw_recv(late, &h, &body, 2000) == 0, "no worker takes connections");
	free(body);
	close(late);
	for (int i = 0; i < n; i++)
		close(held[i]);
	wait_sessions(0);
}
END_TEST

#define MANY 260 /* over three workers' 63 each, were max-sessions + 64 to wrap */

/* --max-sessions 4294967295: the margins added to it must not wrap it to 63 a worker. */
START_TEST(the_largest_max_sessions_limits_nothing)
{
	int fds[MANY];

	SKIP_UNLESS_USABLE();
	for (int i = 0; i < MANY; i++)
		fds[i] = raw_session(test_daemon.path); /* asserts the Hello's answer */
	wait_sessions(MANY);
	for (int i = 0; i < MANY; i++)
		close(fds[i]);
	wait_sessions(0);
}
END_TEST

/* Worker k's descriptors that are SEQPACKET sockets (its two channels to the parent),
 * read through pidfd_getfd; returns how many, their numbers in out. */
static int
channels_of(int k, int out[4])
{
	char path[64];
	struct dirent *e;
	int pidfd, n = 0, fd, type;
	socklen_t len = sizeof(type);
	DIR *dp;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)wk_pids[k]);
	ck_assert_int_ge(pidfd = (int)syscall(SYS_pidfd_open, wk_pids[k], 0), 0);
	ck_assert_ptr_nonnull(dp = opendir(path));
	while ((e = readdir(dp)) != NULL && n < 4) {
		if (e->d_name[0] == '.' ||
		    (fd = (int)syscall(SYS_pidfd_getfd, pidfd, atoi(e->d_name), 0)) < 0)
			continue;
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_SEQPACKET)
			out[n++] = atoi(e->d_name);
		close(fd);
	}
	closedir(dp);
	close(pidfd);
	return n;
}

/* A compromised worker closes its channels to the parent but lives on. The parent must not
 * wait for it to exit (in waitpid, while the other workers wait for their replies): it
 * kills it after a grace period, and the daemon ends (fail-closed), as for a dead one. */
START_TEST(a_worker_that_hangs_up_but_lives_ends_them_all)
{
	char cmd[256], log[16384];
	int ch[4], n, status = 0, fd;
	long long deadline;
	ssize_t got_n;
	pid_t got = 0;

	SKIP_UNLESS_USABLE();
	if (system("command -v gdb >/dev/null") != 0) {
		fprintf(stderr, "SKIP %s: needs gdb (tools/install-deps)\n", __func__);
		return;
	}
	ck_assert_int_eq(n = channels_of(1, ch), 2);
	snprintf(cmd, sizeof(cmd),
	         "gdb -nx -batch -p %d -ex 'call (int)close(%d)' -ex 'call (int)close(%d)' "
	         ">/dev/null 2>&1",
	         (int)wk_pids[1], ch[0], ch[1]);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(channels_of(1, ch), 0);
	deadline = now_ms() + 5000;
	while ((got = waitpid(test_daemon.pid, &status, WNOHANG)) == 0 && now_ms() < deadline)
		sleep_ms(10);
	ck_assert_msg(got == test_daemon.pid, "the parent still runs (waiting for the worker?)");
	test_daemon.pid = 0;
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) != 0);
	for (int i = 0; i < N_WORKERS; i++) {
		snprintf(cmd, sizeof(cmd), "/proc/%d", (int)wk_pids[i]);
		ck_assert_msg(access(cmd, F_OK) != 0, "worker %d outlived the parent", i);
	}
	ck_assert_int_ge(fd = open(test_daemon.log, O_RDONLY | O_CLOEXEC), 0);
	got_n = read(fd, log, sizeof(log) - 1);
	close(fd);
	log[got_n > 0 ? got_n : 0] = '\0';
	ck_assert_msg(strstr(log, "closed its channel but did not exit") != NULL, "%s", log);
}
END_TEST

Suite *
workers_attacks_suite(void)
{
	Suite *s = suite_create("workers_attacks");
	TCase *tc = tcase_create("three");

	tcase_add_checked_fixture(tc, workers_setup, workers_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, every_worker_reopens_the_audit_log);
	tcase_add_test(tc, a_raced_uid_never_holds_more_than_its_limit);
	tcase_add_test(tc, a_silent_flood_leaves_room_on_every_worker);
	tcase_add_test(tc, a_worker_that_hangs_up_but_lives_ends_them_all);
	suite_add_tcase(s, tc);
	tc = tcase_create("plain");
	tcase_add_checked_fixture(tc, setup_plain, workers_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, a_raised_limit_wakes_workers_past_their_share);
	suite_add_tcase(s, tc);
	tc = tcase_create("huge");
	tcase_add_checked_fixture(tc, setup_huge, workers_teardown);
	tcase_add_test(tc, the_largest_max_sessions_limits_nothing);
	suite_add_tcase(s, tc);
	return s;
}
