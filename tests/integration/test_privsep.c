/*
 * test_privsep.c - the split daemon (issue 15, item 1): a root parent and a `sockrpc`
 * worker with no capability and no_new_privs (as `ps -o user,pid,cmd` and /proc show);
 * a bind below 1024, a raw socket and an AF_UNIX connect as the client still work through
 * the parent where the policy allows them, and are refused where it does not; a SIGHUP
 * gives both sides the new policy; the parent ends with its worker, with a log line.
 * Needs root and the `sockrpc` user (tools/install-deps); skipped otherwise.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "as_user.h"
#include "harness.h"

#define NOBODY 65534

static char dir[64], policy_path[100], listen_path[100];
static bool usable;

static const char policy_text[] = "allow uid=0 *\n"
                                  "allow uid=65534 create tcp,raw,unix\n"
                                  "allow uid=65534 bind tcp 127.0.0.1 port 80\n"
                                  "allow uid=65534 connect unix %s/*\n";

static void
start(const char *const *args)
{
	char text[512];

	signal(SIGPIPE, SIG_IGN);
	usable = geteuid() == 0 && getpwnam("sockrpc") != NULL;
	if (!usable)
		return;
	snprintf(dir, sizeof(dir), "/tmp/sockrpc-privsep.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chmod(dir, 0777), 0);
	snprintf(policy_path, sizeof(policy_path), "%s/test.policy", dir);
	snprintf(listen_path, sizeof(listen_path), "%s/server.sock", dir);
	snprintf(text, sizeof(text), policy_text, dir);
	write_file(policy_path, text);
	ck_assert_int_eq(chmod(policy_path, 0600), 0); /* the parent reads it, as root */
	daemon_start(&test_daemon, args);
	ck_assert_int_eq(chmod(test_daemon.dir, 0755), 0);
}

static void
setup(void)
{
	const char *args[] = {"--policy", policy_path, NULL};

	start(args);
}

/* Two workers (--workers 2): each must be as unprivileged as the one. */
static void
setup_two(void)
{
	const char *args[] = {"--policy", policy_path, "--workers", "2", NULL};

	start(args);
}

static void
teardown(void)
{
	char cmd[128];

	if (!usable)
		return;
	if (test_daemon.pid > 0) {
		fixture_daemon_down();
	} else {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", test_daemon.dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", test_daemon.dir);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

#define SKIP_UNLESS_USABLE()                                                                       \
	do {                                                                                       \
		if (!usable) {                                                                     \
			fprintf(stderr, "SKIP %s: needs root and the sockrpc user\n", __func__);   \
			return;                                                                    \
		}                                                                                  \
	} while (0)

/* The value of `key:` in /proc/PID/status, tabs made spaces. */
static void
status_field(pid_t pid, const char *key, char *out, size_t n)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	ck_assert_ptr_nonnull(f = fopen(path, "re"));
	out[0] = '\0';
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, key, klen) != 0 || line[klen] != ':')
			continue;
		char *v = line + klen + 1;

		while (*v == '\t' || *v == ' ')
			v++;
		v[strcspn(v, "\n")] = '\0';
		for (char *p = v; *p; p++)
			if (*p == '\t')
				*p = ' ';
		snprintf(out, n, "%s", v);
	}
	fclose(f);
}

/* A worker of test_daemon: the `sockrpc` user, no capability, no_new_privs. */
static void
assert_unprivileged(pid_t worker)
{
	struct passwd *pw = getpwnam("sockrpc");
	char v[128], want[64];

	status_field(worker, "PPid", v, sizeof(v));
	ck_assert_int_eq(atoi(v), test_daemon.pid);
	snprintf(want, sizeof(want), "%u %u %u %u", pw->pw_uid, pw->pw_uid, pw->pw_uid, pw->pw_uid);
	status_field(worker, "Uid", v, sizeof(v));
	ck_assert_str_eq(v, want);
	ck_assert_uint_ne(pw->pw_uid, 0);
	snprintf(want, sizeof(want), "%u %u %u %u", pw->pw_gid, pw->pw_gid, pw->pw_gid, pw->pw_gid);
	status_field(worker, "Gid", v, sizeof(v));
	ck_assert_str_eq(v, want);
	status_field(worker, "Groups", v, sizeof(v));
	ck_assert_str_eq(v, "");
	for (int i = 0; i < 5; i++) {
		static const char *const caps[] = {"CapEff", "CapPrm", "CapBnd", "CapInh",
		                                   "CapAmb"};

		status_field(worker, caps[i], v, sizeof(v));
		ck_assert_msg(strcmp(v, "0000000000000000") == 0, "worker %s %s", caps[i], v);
	}
	status_field(worker, "NoNewPrivs", v, sizeof(v));
	ck_assert_str_eq(v, "1");
}

START_TEST(a_root_parent_and_a_worker_without_privilege)
{
	struct passwd *pw = getpwnam("sockrpc");
	pid_t worker;
	char v[128];

	SKIP_UNLESS_USABLE();
	worker = daemon_worker_pid(&test_daemon);
	ck_assert_int_ne(worker, test_daemon.pid);
	status_field(test_daemon.pid, "Uid", v, sizeof(v));
	ck_assert_str_eq(v, "0 0 0 0");
	assert_unprivileged(worker);
	fprintf(stderr, "privsep: parent pid %d uid 0; worker pid %d uid %u, no capabilities\n",
	        (int)test_daemon.pid, (int)worker, pw->pw_uid);
}
END_TEST

/* --- what needs privilege, as uid 65534 --- */

static void
child_privileged(sr_client *c, struct report *r)
{
	sr_error err;
	sr_socket *s;

	s = c_socket(c, r, AF_INET, SOCK_STREAM);           /* 0 */
	rec(r, sr_bind(s, 80, "127.0.0.1", &err), &err, 0); /* 1 */
	sr_socket_free(s);
	s = c_socket(c, r, AF_INET, SOCK_STREAM);           /* 2 */
	rec(r, sr_bind(s, 81, "127.0.0.1", &err), &err, 0); /* 3 */
	sr_socket_free(s);
	s = sr_socket_new(c, AF_INET, SOCK_RAW, IPPROTO_ICMP, &err);
	rec(r, s ? 0 : -1, &err, 0); /* 4 */
	sr_socket_free(s);
	s = sr_socket_new(c, AF_INET, SOCK_DGRAM, 0, &err);
	rec(r, s ? 0 : -1, &err, 0); /* 5 */
	sr_socket_free(s);
}

static void
child_raw_denied(sr_client *c, struct report *r)
{
	sr_error err;
	sr_socket *s = sr_socket_new(c, AF_INET, SOCK_RAW, IPPROTO_ICMP, &err);

	rec(r, s ? 0 : -1, &err, 0); /* 0 */
	sr_socket_free(s);
}

/* Whether the port is taken on 127.0.0.1 (by something else on this machine). */
static bool
port_taken(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
	                          .sin_port = htons(port),
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	r = bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	close(fd);
	return r != 0;
}

START_TEST(low_ports_and_raw_sockets_where_the_policy_allows)
{
	struct report r;
	FILE *f;
	int start = -1;

	SKIP_UNLESS_USABLE();
	if ((f = fopen("/proc/sys/net/ipv4/ip_unprivileged_port_start", "re")) != NULL) {
		if (fscanf(f, "%d", &start) != 1)
			start = -1;
		fclose(f);
	}
	ck_assert_msg(start > 80, "ip_unprivileged_port_start is %d: port 80 proves nothing",
	              start);
	ck_assert_msg(!port_taken(80), "127.0.0.1:80 is in use on this machine");
	run_as(NOBODY, NOBODY, child_privileged, &r);
	ck_assert_int_eq(r.n, 6);
	assert_ok(&r, 0);
	assert_ok(&r, 1); /* through the parent: the worker has no CAP_NET_BIND_SERVICE */
	assert_ok(&r, 2);
	assert_fail(&r, 3, SR_EDENIED, "denied by policy");
	assert_ok(&r, 4); /* through the parent: CAP_NET_RAW */
	assert_fail(&r, 5, SR_EDENIED, "denied by policy");
	run_as(1000, 1000, child_raw_denied, &r);
	assert_fail(&r, 0, SR_EDENIED, "denied by policy");
}
END_TEST

/* --- AF_UNIX as the client --- */

static void
child_unix(sr_client *c, struct report *r)
{
	sr_error err;
	sr_socket *s = sr_socket_new(c, AF_UNIX, SOCK_STREAM, 0, &err);

	rec(r, s ? 0 : -1, &err, 0);                                      /* 0 */
	rec(r, sr_connect(s, listen_path, 0, 3000, &err), &err, 0);       /* 1 */
	rec(r, (int)sr_send(s, "hi", 2, 0, &err) == 2 ? 0 : -1, &err, 0); /* 2 */
	sr_socket_free(s);
}

START_TEST(unix_peers_see_the_client_through_the_split)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct pollfd p;
	struct report r;
	int l, fd, one = 1;
	char buf[2];

	SKIP_UNLESS_USABLE();
	l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", listen_path);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(chmod(listen_path, 0666), 0);
	ck_assert_int_eq(listen(l, 8), 0);
	run_as(NOBODY, NOBODY, child_unix, &r);
	for (int i = 0; i < 3; i++)
		assert_ok(&r, i);
	p = (struct pollfd){.fd = l, .events = POLLIN};
	ck_assert_int_eq(poll(&p, 1, 2000), 1);
	ck_assert_int_ge(fd = accept4(l, NULL, NULL, SOCK_CLOEXEC), 0);
	ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len), 0);
	ck_assert_uint_eq(cred.uid, NOBODY);
	ck_assert_uint_eq(cred.gid, NOBODY);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
	ck_assert_int_eq(recv(fd, buf, 2, MSG_WAITALL), 2);
	close(fd);
	close(l);
}
END_TEST

/* --- SIGHUP: both sides take the new policy --- */

static void
child_bind_81(sr_client *c, struct report *r)
{
	sr_error err;
	sr_socket *s = c_socket(c, r, AF_INET, SOCK_STREAM); /* 0 */

	rec(r, sr_bind(s, 81, "127.0.0.1", &err), &err, 0); /* 1 */
	sr_socket_free(s);
}

static bool
log_has(const char *text)
{
	char buf[65536];
	int fd = open(test_daemon.log, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, text) != NULL;
}

static bool
wait_log(const char *text, int ms)
{
	for (int i = 0; i < ms / 20; i++) {
		if (log_has(text))
			return true;
		sleep_ms(20);
	}
	return log_has(text);
}

START_TEST(sighup_reloads_both_sides)
{
	char text[512];
	struct report r;

	SKIP_UNLESS_USABLE();
	ck_assert_msg(!port_taken(81), "127.0.0.1:81 is in use on this machine");
	snprintf(text, sizeof(text), policy_text, dir);
	strcat(text, "allow uid=65534 bind tcp 127.0.0.1 port 81\n");
	write_file(policy_path, text);
	ck_assert_int_eq(kill(test_daemon.pid, SIGHUP), 0);
	ck_assert(wait_log("policy reloaded", 5000));
	/* The worker allows it, and the parent (which binds below 1024) agrees. */
	for (int i = 0; i < 50; i++) {
		run_as(NOBODY, NOBODY, child_bind_81, &r);
		if (r.o[1].code == 0)
			break;
		sleep_ms(20); /* the worker takes the notice from its loop */
	}
	assert_ok(&r, 1);
}
END_TEST

/* --- the parent ends with its worker, and the worker with its parent --- */

START_TEST(killing_the_worker_ends_the_parent)
{
	pid_t worker;
	int status = 0;
	long long deadline;
	pid_t got = 0;

	SKIP_UNLESS_USABLE();
	worker = daemon_worker_pid(&test_daemon);
	ck_assert_int_ne(worker, test_daemon.pid);
	ck_assert_int_eq(kill(worker, SIGKILL), 0);
	deadline = now_ms() + 5000;
	while ((got = waitpid(test_daemon.pid, &status, WNOHANG)) == 0 && now_ms() < deadline)
		sleep_ms(10);
	ck_assert_int_eq(got, test_daemon.pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_ne(WEXITSTATUS(status), 0);
	ck_assert(log_has("was killed by signal 9: privileged parent exiting"));
	ck_assert_int_eq(access(test_daemon.path, F_OK), -1); /* its socket file is gone */
	test_daemon.pid = 0;
}
END_TEST

START_TEST(killing_the_parent_ends_the_worker)
{
	pid_t worker;
	char path[64];
	long long deadline;

	SKIP_UNLESS_USABLE();
	worker = daemon_worker_pid(&test_daemon);
	ck_assert_int_ne(worker, test_daemon.pid);
	ck_assert_int_eq(kill(test_daemon.pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(test_daemon.pid, NULL, 0), test_daemon.pid);
	snprintf(path, sizeof(path), "/proc/%d", (int)worker);
	deadline = now_ms() + 5000;
	while (access(path, F_OK) == 0 && now_ms() < deadline)
		sleep_ms(10);
	ck_assert_msg(access(path, F_OK) != 0, "the worker outlived its parent");
	unlink(test_daemon.path);
	test_daemon.pid = 0;
}
END_TEST

START_TEST(every_worker_without_privilege)
{
	char path[64], v[128];
	long pid;
	int n = 0;
	FILE *f;

	SKIP_UNLESS_USABLE();
	status_field(test_daemon.pid, "Uid", v, sizeof(v));
	ck_assert_str_eq(v, "0 0 0 0");
	/* Both forked before the socket answers (daemon_start waited for it). */
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)test_daemon.pid,
	         (int)test_daemon.pid);
	ck_assert_ptr_nonnull(f = fopen(path, "re"));
	while (fscanf(f, "%ld", &pid) == 1) {
		assert_unprivileged((pid_t)pid);
		n++;
	}
	fclose(f);
	ck_assert_int_eq(n, 2);
	fprintf(stderr, "privsep: --workers 2: both workers unprivileged\n");
}
END_TEST

Suite *
privsep_suite(void)
{
	Suite *s = suite_create("privsep");
	TCase *tc = tcase_create("split");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, a_root_parent_and_a_worker_without_privilege);
	tcase_add_test(tc, low_ports_and_raw_sockets_where_the_policy_allows);
	tcase_add_test(tc, unix_peers_see_the_client_through_the_split);
	tcase_add_test(tc, sighup_reloads_both_sides);
	tcase_add_test(tc, killing_the_worker_ends_the_parent);
	tcase_add_test(tc, killing_the_parent_ends_the_worker);
	suite_add_tcase(s, tc);
	tc = tcase_create("two_workers");
	tcase_add_checked_fixture(tc, setup_two, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, every_worker_without_privilege);
	suite_add_tcase(s, tc);
	return s;
}
