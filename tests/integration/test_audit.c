/*
 * test_audit.c - the audit trail is buffered (daemon/audit.c) and loses no line: lines
 * reach the file on a timer while the daemon is idle, when the buffer fills, before the
 * file is reopened on SIGHUP (the lines decided before go to the rotated file), and when
 * the daemon stops on SIGTERM right after a burst of calls.
 */
#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static char dir[64], audit_path[128], rotated[140];

static void
fixture_up(void)
{
	static char opt[] = "--audit";
	const char *extra[] = {opt, audit_path, NULL};

	snprintf(dir, sizeof(dir), "/tmp/sockrpc-audit.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chmod(dir, 0755), 0);
	snprintf(audit_path, sizeof(audit_path), "%s/audit.log", dir);
	snprintf(rotated, sizeof(rotated), "%s.1", audit_path);
	daemon_start(&test_daemon, extra);
}

static void
fixture_down(void)
{
	unlink(audit_path);
	unlink(rotated);
	rmdir(dir);
}

/* Lines of path holding text (0 if there is no file). */
static int
count_lines(const char *path, const char *text)
{
	FILE *f = fopen(path, "r");
	char line[8192];
	int n = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, text) != NULL;
	fclose(f);
	return n;
}

/* Whether process pid holds path open (its /proc fd links). */
static bool
holds_open(pid_t pid, const char *path)
{
	char dir_path[64], fd_path[PATH_MAX], target[PATH_MAX];
	struct dirent *e;
	bool held = false;
	DIR *fds;
	ssize_t n;

	snprintf(dir_path, sizeof(dir_path), "/proc/%d/fd", (int)pid);
	if ((fds = opendir(dir_path)) == NULL)
		return false;
	while (!held && (e = readdir(fds)) != NULL) {
		snprintf(fd_path, sizeof(fd_path), "%s/%s", dir_path, e->d_name);
		n = readlink(fd_path, target, sizeof(target) - 1);
		if (n > 0) {
			target[n] = '\0';
			held = strcmp(target, path) == 0;
		}
	}
	closedir(fds);
	return held;
}

/* n sockets created and closed: 2n lines (a decision, a close). */
static void
create_and_close(sr_client *c, int n)
{
	sr_error err;

	for (int i = 0; i < n; i++) {
		sr_socket *s = sr_socket_new(c, AF_INET, SOCK_DGRAM, 0, &err);

		ck_assert_msg(s != NULL, "%s", err.message);
		ck_assert_int_eq(sr_close(s, &err), 0);
		sr_socket_free(s);
	}
}

/* Stops the daemon now (SIGTERM, exit 0 asserted). */
static void
stop_now(void)
{
	daemon_stop(&test_daemon);
}

START_TEST(idle_lines_reach_the_file)
{
	sr_client *c = daemon_client(&test_daemon);
	long long deadline;

	create_and_close(c, 1);
	/* Nothing else happens: the timer writes the lines within a moment. */
	deadline = now_ms() + 2000;
	while (count_lines(audit_path, "\"event\":\"close\"") < 1 && now_ms() < deadline)
		sleep_ms(10);
	ck_assert_int_eq(count_lines(audit_path, "\"op\":\"create\""), 1);
	ck_assert_int_eq(count_lines(audit_path, "\"event\":\"close\""), 1);
	sr_client_close(c);
	stop_now();
}
END_TEST

/* A burst, then SIGTERM at once (well within the flush timer): every line is there. */
START_TEST(nothing_lost_on_sigterm)
{
	enum { N = 2000 }; /* about 600 KiB of lines: the buffer fills several times too */
	sr_client *c = daemon_client(&test_daemon);

	create_and_close(c, N);
	sr_client_close(c);
	stop_now();
	ck_assert_int_eq(count_lines(audit_path, "\"op\":\"create\""), N);
	/* The handles closed by the client, plus none left to close at exit. */
	ck_assert_int_eq(count_lines(audit_path, "\"event\":\"close\""), N);
}
END_TEST

/* SIGHUP after rotation: the lines decided before go to the rotated file, none is lost
 * or written twice, and the next go to the new file. */
START_TEST(nothing_lost_on_sighup)
{
	enum { N = 50 };
	sr_client *c = daemon_client(&test_daemon);
	long long deadline;

	create_and_close(c, N);
	ck_assert_int_eq(rename(audit_path, rotated), 0);
	ck_assert_int_eq(kill(test_daemon.pid, SIGHUP), 0);
	/* The parent reopens the file, then the worker takes it from its loop: wait until
	 * the worker writes to it (the file merely existing raced that). */
	deadline = now_ms() + 3000;
	while (!holds_open(daemon_worker_pid(&test_daemon), audit_path) && now_ms() < deadline)
		sleep_ms(10);
	ck_assert(holds_open(daemon_worker_pid(&test_daemon), audit_path));
	create_and_close(c, 1);
	sr_client_close(c);
	stop_now();
	ck_assert_int_eq(count_lines(rotated, "\"op\":\"create\""), N);
	ck_assert_int_eq(count_lines(rotated, "\"event\":\"close\""), N);
	ck_assert_int_eq(count_lines(audit_path, "\"op\":\"create\""), 1);
	ck_assert_int_eq(count_lines(audit_path, "\"event\":\"close\""), 1);
}
END_TEST

/* Sessions the daemon closes at exit write their handles' close lines too. */
START_TEST(handles_closed_at_exit_are_audited)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s[10];
	sr_error err;

	for (int i = 0; i < 10; i++) {
		s[i] = sr_socket_new(c, AF_INET, SOCK_DGRAM, 0, &err);
		ck_assert_msg(s[i] != NULL, "%s", err.message);
	}
	stop_now();
	ck_assert_int_eq(count_lines(audit_path, "\"op\":\"create\""), 10);
	ck_assert_int_eq(count_lines(audit_path, "\"event\":\"close\""), 10);
	for (int i = 0; i < 10; i++)
		sr_socket_free(s[i]);
	sr_client_close(c);
}
END_TEST

Suite *
audit_suite(void)
{
	Suite *s = suite_create("audit");
	TCase *tc = tcase_create("flush");

	tcase_add_checked_fixture(tc, fixture_up, fixture_down);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, idle_lines_reach_the_file);
	tcase_add_test(tc, nothing_lost_on_sigterm);
	tcase_add_test(tc, nothing_lost_on_sighup);
	tcase_add_test(tc, handles_closed_at_exit_are_audited);
	suite_add_tcase(s, tc);
	return s;
}
