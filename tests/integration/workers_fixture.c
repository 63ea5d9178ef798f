/*
 * workers_fixture.c - the daemon with three workers for test_workers.c and
 * test_workers_attacks.c (workers_fixture.h): started with some arguments, its workers
 * found in /proc and their idle descriptors counted, so that the sessions each holds (one
 * descriptor each, with --no-reply-channel) can be told apart.
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as_user.h"
#include "harness.h"
#include "workers_fixture.h"
static char wk_dir[64];
char wk_policy_path[100], wk_audit_path[100];
bool wk_usable;
pid_t wk_pids[N_WORKERS];
int wk_idle[N_WORKERS]; /* each worker's descriptors with no session */

/* Clients' uids: the first three always; more until every worker holds a session (under
 * load the kernel may wake the same idle worker several times in a row). */
const uid_t wk_uids[N_UIDS] = {65534, 1000, 1001, 1002, 1003, 1004, 1005, 1006,
                               1007,  1008, 1009, 1010, 1011, 1012, 1013, 1014};

const char wk_policy_before[] =
    "allow uid=0 *\n"
    "allow uid=65534,1000,1001,1002,1003,1004,1005,1006,1007,1008,1009,1010,1011,1012,1013,1014 "
    "create tcp\n";
const char wk_policy_after[] =
    "allow uid=0 *\n"
    "allow uid=65534,1000,1001,1002,1003,1004,1005,1006,1007,1008,1009,1010,1011,1012,1013,1014 "
    "create tcp,udp\n";

/* The parent's children: its workers. Returns how many. */
int
worker_pids(pid_t *out, int max)
{
	char path[64];
	long pid;
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)test_daemon.pid,
	         (int)test_daemon.pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (n < max && fscanf(f, "%ld", &pid) == 1)
		out[n++] = (pid_t)pid;
	fclose(f);
	return n;
}

int
fd_count(pid_t pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *dp;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if ((dp = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(dp)) != NULL)
		n += e->d_name[0] != '.';
	closedir(dp);
	return n;
}

/* Workers that said they listen, in the daemon's log. */
static int
ready_workers(void)
{
	char log[65536];
	const char *at = log;
	ssize_t n;
	int fd, ready = 0;

	if ((fd = open(test_daemon.log, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, log, sizeof(log) - 1);
	close(fd);
	log[n > 0 ? n : 0] = '\0';
	while ((at = strstr(at, "listening on ")) != NULL) {
		ready++;
		at++;
	}
	return ready;
}

/* The daemon with args (three workers among them), and its workers found. */
void
setup_with(const char *const *args)
{
	signal(SIGPIPE, SIG_IGN);
	wk_usable = geteuid() == 0 && getpwnam("sockrpc") != NULL;
	if (!wk_usable)
		return;
	snprintf(wk_dir, sizeof(wk_dir), "/tmp/sockrpc-workers.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(wk_dir));
	snprintf(wk_policy_path, sizeof(wk_policy_path), "%s/test.policy", wk_dir);
	snprintf(wk_audit_path, sizeof(wk_audit_path), "%s/audit.log", wk_dir);
	write_file(wk_policy_path, wk_policy_before);
	daemon_start(&test_daemon, args);
	ck_assert_int_eq(chmod(test_daemon.dir, 0755), 0);
	/* Every worker is up once the socket answers: the parent forked them all first. */
	for (int i = 0; i < 100 && worker_pids(wk_pids, N_WORKERS) < N_WORKERS; i++)
		sleep_ms(10);
	ck_assert_int_eq(worker_pids(wk_pids, N_WORKERS), N_WORKERS);
	/* The socket answers once one worker listens: the others may still be opening their
	 * descriptors, so each one's idle count waits for its own "listening on". */
	for (int i = 0; i < 500 && ready_workers() < N_WORKERS; i++)
		sleep_ms(10);
	ck_assert_int_eq(ready_workers(), N_WORKERS);
	for (int i = 0; i < N_WORKERS; i++)
		wk_idle[i] = fd_count(wk_pids[i]);
}

void
workers_setup(void)
{
	/* --no-reply-channel: one descriptor per session, which the counts below rely on */
	const char *args[] = {
	    "--policy", wk_policy_path,           "--audit", wk_audit_path,        "--workers",
	    "3",        "--max-sessions-per-uid", "2",       "--no-reply-channel", NULL};

	setup_with(args);
}

void
workers_teardown(void)
{
	char cmd[128];

	if (!wk_usable)
		return;
	if (test_daemon.pid > 0) {
		/* Not fixture_daemon_down: it counts the parent's descriptors only. */
		daemon_stop(&test_daemon);
	} else {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", test_daemon.dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", test_daemon.dir);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", wk_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", wk_dir);
}

/* Sessions (one descriptor each) held by each worker now, into held[]; returns how many
 * workers hold at least one. */
int
sessions_per_worker(int held[N_WORKERS])
{
	int busy = 0;

	for (int i = 0; i < N_WORKERS; i++) {
		held[i] = fd_count(wk_pids[i]) - wk_idle[i];
		busy += held[i] > 0;
	}
	fprintf(stderr, "workers: sessions %d %d %d\n", held[0], held[1], held[2]);
	return busy;
}

/* Waits until the workers hold `want` sessions in all. */
void
wait_sessions(int want)
{
	int held[N_WORKERS], all = -1;

	for (int i = 0; i < 250 && all != want; i++) {
		all = 0;
		for (int k = 0; k < N_WORKERS; k++)
			all += fd_count(wk_pids[k]) - wk_idle[k];
		if (all != want)
			sleep_ms(20);
	}
	ck_assert_msg(all == want, "the workers hold %d sessions, want %d", all, want);
	sessions_per_worker(held);
}

void
audited_sockets(sr_client *c, struct report *r, bool sync_halfway)
{
	sr_client *c2;
	sr_error err;
	sr_socket *s;
	int ok = 0;

	c2 = sr_client_open(test_daemon.path, &err);
	rec(r, c2 != NULL ? 0 : -1, &err, 0); /* 0 */
	for (int i = 0; i < AUDIT_SOCKETS && c2 != NULL; i++) {
		if (sync_halfway && i == AUDIT_SOCKETS / 2)
			child_sync();
		if ((s = sr_socket_new(i % 2 ? c2 : c, AF_INET, SOCK_STREAM, 0, &err)) != NULL) {
			ok++;
			sr_socket_free(s);
		}
	}
	if (sync_halfway && c2 == NULL)
		child_sync();
	rec(r, ok == AUDIT_SOCKETS ? 0 : -1, &err, ok); /* 1 */
	if (c2 != NULL)
		sr_client_close(c2);
}
