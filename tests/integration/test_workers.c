/*
 * test_workers.c - several unprivileged workers under the one root parent (--workers 3,
 * issue 21): sessions land on more than one worker (their descriptors in /proc); the
 * per-uid limit counts over all workers, so a uid's third session is refused with the
 * usual error whichever worker takes it; session ids stay unique; a SIGHUP reaches every
 * worker; a client that dies gives its sessions back; the workers' audit lines stay
 * whole in the one log; a worker that dies ends them all. The daemon: workers_fixture.h;
 * attacks on it: test_workers_attacks.c. Needs root and the `sockrpc` user
 * (tools/install-deps); skipped otherwise.
 */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "as_user.h"
#include "harness.h"
#include "workers_fixture.h"

/* A uid's second session is admitted and its third refused; both hold, then (after the
 * reload) make a UDP socket, which only the new policy allows. */
static void
child_two_sessions(sr_client *c, struct report *r)
{
	sr_client *c2, *c3;
	sr_client *both[2];
	sr_error err;
	sr_socket *s;

	c2 = sr_client_open(test_daemon.path, &err);
	rec(r, c2 != NULL ? 0 : -1, &err, c2 != NULL ? (long)sr_client_session_id(c2) : 0); /* 0 */
	c3 = sr_client_open(test_daemon.path, &err);
	rec(r, c3 != NULL ? 0 : -1, &err, 0); /* 1 */
	if (c3 != NULL)
		sr_client_close(c3);
	s = sr_socket_new(c, AF_INET, SOCK_DGRAM, 0, &err);
	rec(r, s != NULL ? 0 : -1, &err, 0); /* 2: refused before the reload */
	if (s != NULL)
		sr_socket_free(s);
	child_sync();
	both[0] = c;
	both[1] = c2;
	for (int k = 0; k < 2; k++) { /* 3, 4: each worker applies the notice from its loop */
		s = NULL;
		for (int i = 0; i < 100 && both[k] != NULL && s == NULL; i++) {
			s = sr_socket_new(both[k], AF_INET, SOCK_DGRAM, 0, &err);
			if (s == NULL)
				usleep(20000);
		}
		rec(r, s != NULL ? 0 : -1, &err, 0);
		if (s != NULL)
			sr_socket_free(s);
	}
	if (c2 != NULL)
		sr_client_close(c2);
}

START_TEST(limits_ids_and_reloads_hold_across_workers)
{
	struct child ch[N_UIDS];
	struct report r[N_UIDS];
	unsigned long long ids[2 * N_UIDS];
	int held[N_WORKERS], used = 0, busy = 0;

	SKIP_UNLESS_USABLE();
	/* One uid after the other: its connections go to the workers in turn (mostly: the
	 * kernel wakes the first idle one), so only a count over all workers refuses the
	 * third. More uids until every worker holds a session, for (c). */
	while (used < N_UIDS && (used < MIN_UIDS || busy < N_WORKERS)) {
		child_start(&ch[used], wk_uids[used], wk_uids[used], child_two_sessions);
		child_wait_ready(&ch[used]);
		used++;
		wait_sessions(PER_UID * used);
		busy = sessions_per_worker(held);
	}
	/* (a) the sessions are spread; for (c) every worker must hold one. */
	ck_assert_int_eq(busy, N_WORKERS);
	write_file(wk_policy_path, wk_policy_after);
	ck_assert_int_eq(kill(test_daemon.pid, SIGHUP), 0);
	for (int u = 0; u < used; u++)
		child_go(&ch[u]);
	for (int u = 0; u < used; u++) {
		child_finish(&ch[u], &r[u]);
		ck_assert_msg(r[u].open_code == 0, "uid %u: %s", wk_uids[u], r[u].open_msg);
		assert_ok(&r[u], 0);
		/* (b) the third, whichever worker took it */
		assert_fail(&r[u], 1, SR_ELIMIT, "too many sessions for this uid");
		assert_fail(&r[u], 2, SR_EDENIED, "");
		/* (c) the new policy, on both sessions, on every worker */
		assert_ok(&r[u], 3);
		assert_ok(&r[u], 4);
		ids[2 * u] = r[u].session;
		ids[2 * u + 1] = (unsigned long long)r[u].o[0].value;
	}
	for (int i = 0; i < 2 * used; i++)
		for (int k = 0; k < i; k++)
			ck_assert_msg(ids[i] != ids[k], "session id %llu twice", ids[i]);
	wait_sessions(0);
}
END_TEST

static void
child_hold(sr_client *c, struct report *r)
{
	sr_client *c2;
	sr_error err;

	c2 = sr_client_open(test_daemon.path, &err);
	rec(r, c2 != NULL ? 0 : -1, &err, 0); /* 0 */
	child_sync();
	if (c2 != NULL)
		sr_client_close(c2);
}

START_TEST(a_dead_client_gives_its_sessions_back)
{
	struct child a, b;
	struct report r;
	int status;

	SKIP_UNLESS_USABLE();
	child_start(&a, 65534, 65534, child_hold);
	child_wait_ready(&a);
	wait_sessions(PER_UID);
	/* At the limit: a third session of the uid is refused... */
	run_as(65534, 65534, child_hold, &r);
	ck_assert_int_eq(r.open_code, SR_ELIMIT);
	ck_assert_msg(strstr(r.open_msg, "too many sessions for this uid") != NULL, "%s",
	              r.open_msg);
	/* ...until the holder dies: its worker closes both sessions and the parent forgets
	 * them. */
	ck_assert_int_eq(kill(a.pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(a.pid, &status, 0), a.pid);
	close(a.report_fd);
	close(a.ready_fd);
	close(a.go_fd);
	wait_sessions(0);
	child_start(&b, 65534, 65534, child_hold);
	child_wait_ready(&b);
	child_go(&b);
	child_finish(&b, &r);
	ck_assert_msg(r.open_code == 0, "%s", r.open_msg);
	assert_ok(&r, 0);
}
END_TEST

/* Two sessions, each making and closing sockets: two audit lines a socket. */
static void
child_audited(sr_client *c, struct report *r)
{
	audited_sockets(c, r, false);
}

/* Every worker appends to the one audit log (O_APPEND, whole lines per write): lines of
 * all workers' sessions, written at once, never run into each other. */
START_TEST(every_worker_appends_whole_audit_lines)
{
	struct child ch[MIN_UIDS];
	struct report r;
	bool seen[N_WORKERS] = {false};
	char line[8192];
	int lines = 0, writers = 0;
	FILE *f;

	SKIP_UNLESS_USABLE();
	for (int u = 0; u < MIN_UIDS; u++)
		child_start(&ch[u], wk_uids[u], wk_uids[u], child_audited);
	for (int u = 0; u < MIN_UIDS; u++) {
		child_finish(&ch[u], &r);
		ck_assert_msg(r.open_code == 0, "%s", r.open_msg);
		assert_ok(&r, 0);
		assert_ok(&r, 1);
	}
	daemon_stop(&test_daemon); /* every buffered line out */
	test_daemon.pid = 0;
	ck_assert_ptr_nonnull(f = fopen(wk_audit_path, "re"));
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t len = strlen(line);
		const char *at = strstr(line, "\"session\":");
		unsigned long long id;

		ck_assert_msg(len > 1 && line[len - 1] == '\n', "a line without its end: %s", line);
		ck_assert_msg(strncmp(line, "{\"time\":\"", 9) == 0 && line[len - 2] == '}' &&
		                  strstr(line + 1, "{\"time\"") == NULL,
		              "a broken line: %s", line);
		if (at != NULL && sscanf(at, "\"session\":%llu", &id) == 1 && id > 0)
			seen[(id - 1) % N_WORKERS] = true; /* worker k's ids: k + 1 + 3j */
		lines++;
	}
	fclose(f);
	fprintf(stderr, "workers: %d audit lines\n", lines);
	ck_assert_int_ge(lines, 2 * AUDIT_SOCKETS * MIN_UIDS);
	for (int k = 0; k < N_WORKERS; k++)
		writers += seen[k];
	ck_assert_msg(writers >= 2, "audit lines from %d worker(s) only", writers);
}
END_TEST

/* Fail-closed: one worker killed ends the parent (non-zero) and every other worker. */
START_TEST(a_dead_worker_ends_them_all)
{
	char path[64], log[8192];
	long long deadline;
	int status = 0, fd;
	ssize_t n;
	pid_t got = 0;

	SKIP_UNLESS_USABLE();
	ck_assert_int_eq(kill(wk_pids[1], SIGKILL), 0);
	deadline = now_ms() + 5000;
	while ((got = waitpid(test_daemon.pid, &status, WNOHANG)) == 0 && now_ms() < deadline)
		sleep_ms(10);
	ck_assert_int_eq(got, test_daemon.pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_ne(WEXITSTATUS(status), 0);
	for (int i = 0; i < N_WORKERS; i++) {
		snprintf(path, sizeof(path), "/proc/%d", (int)wk_pids[i]);
		ck_assert_msg(access(path, F_OK) != 0, "worker %d outlived the parent", i);
	}
	ck_assert_int_ge(fd = open(test_daemon.log, O_RDONLY | O_CLOEXEC), 0);
	n = read(fd, log, sizeof(log) - 1);
	close(fd);
	log[n > 0 ? n : 0] = '\0';
	snprintf(path, sizeof(path), "worker (pid %d) was killed by signal 9", (int)wk_pids[1]);
	ck_assert_msg(strstr(log, path) != NULL, "no '%s' in the log", path);
	ck_assert_int_eq(access(test_daemon.path, F_OK), -1); /* its socket file is gone */
	test_daemon.pid = 0;
}
END_TEST

Suite *
workers_suite(void)
{
	Suite *s = suite_create("workers");
	TCase *tc = tcase_create("three");

	tcase_add_checked_fixture(tc, workers_setup, workers_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, limits_ids_and_reloads_hold_across_workers);
	tcase_add_test(tc, a_dead_client_gives_its_sessions_back);
	tcase_add_test(tc, every_worker_appends_whole_audit_lines);
	tcase_add_test(tc, a_dead_worker_ends_them_all);
	suite_add_tcase(s, tc);
	return s;
}
