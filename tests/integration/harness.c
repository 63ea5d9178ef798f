/*
 * harness.c - start and stop a real sockrpcd, count its fds, and run small
 * loopback TCP servers in a thread for the integration suites.
 */
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "harness.h"
#include "sockrpc.pb-c.h"

struct daemon test_daemon;

long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

void
write_file(const char *path, const char *text)
{
	char tmp[160];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	ck_assert_msg(f != NULL, "%s: %s", tmp, strerror(errno));
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
	/* The daemon drops to its own user: it must still read the file (on SIGHUP too). */
	ck_assert_int_eq(chmod(tmp, 0644), 0);
	ck_assert_int_eq(rename(tmp, path), 0);
}

/* Prints the daemon's log to stderr, to explain a failure. */
static void
dump_log(const struct daemon *d)
{
	char buf[4096];
	size_t n;
	FILE *f;

	if ((f = fopen(d->log, "r")) == NULL)
		return;
	fprintf(stderr, "--- %s ---\n", d->log);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, stderr);
	fclose(f);
}

static bool
socket_accepts(const char *path)
{
	struct sockaddr_un sun;
	int fd, ok;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return false;
	ok = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	close(fd);
	return ok;
}

static void
write_resolv_conf(const char *path)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n", f);
	ck_assert_int_eq(fclose(f), 0);
}

void
daemon_start(struct daemon *d, const char *const *extra)
{
	const char *argv[48];
	const char *wrapper = getenv("SOCKRPC_TEST_WRAPPER");
	static char wrapper_words[512];
	char resolv[128];
	long long deadline;
	const char *as;
	struct passwd *pw = NULL;
	int n = 0, status, fd, before;
	sr_client *probe;

	memset(d, 0, sizeof(*d));
	snprintf(d->dir, sizeof(d->dir), "/tmp/sockrpc-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(d->dir));
	snprintf(d->path, sizeof(d->path), "%s/sockrpc.sock", d->dir);
	/* SOCKRPC_TEST_DAEMON_USER=NAME starts the daemon as NAME, without root (its
	 * directory is then NAME's). */
	if ((as = getenv("SOCKRPC_TEST_DAEMON_USER")) != NULL) {
		ck_assert_ptr_nonnull(pw = getpwnam(as));
		ck_assert_int_eq(chown(d->dir, pw->pw_uid, pw->pw_gid), 0);
	}
	snprintf(d->log, sizeof(d->log), "%s/daemon.log", d->dir);
	snprintf(resolv, sizeof(resolv), "%s/resolv.conf", d->dir);
	write_resolv_conf(resolv);

	/* SOCKRPC_TEST_WRAPPER runs the daemon under a tool, e.g. "valgrind --error-exitcode=99
	 * --leak-check=full": its verdict becomes the daemon's exit status, which
	 * daemon_stop() checks. */
	if (wrapper != NULL) {
		snprintf(wrapper_words, sizeof(wrapper_words), "%s", wrapper);
		for (char *w = strtok(wrapper_words, " "); w != NULL && n < 12;
		     w = strtok(NULL, " "))
			argv[n++] = w;
	}
	argv[n++] = SOCKRPCD_PATH;
	argv[n++] = "--socket";
	argv[n++] = d->path;
	argv[n++] = "--foreground";
	/* Split into a root parent and a `sockrpc` worker, as deployed (the worker reaches no
	 * file of the tests': the parent reads them, or acts as the client). Where the machine
	 * has no such user (tools/install-deps creates it), or SOCKRPC_TEST_ONE_PROCESS is
	 * set, one root process (--user root) instead. */
	if (getpwnam("sockrpc") == NULL || getenv("SOCKRPC_TEST_ONE_PROCESS") != NULL) {
		argv[n++] = "--user";
		argv[n++] = "root";
	}
	/* Names the hosts file lacks must never reach the machine's real name server: the
	 * tests' resolver is a loopback address nobody answers on (a suite may override). */
	argv[n++] = "--resolv-conf";
	argv[n++] = resolv;
	for (int i = 0; extra != NULL && extra[i] != NULL && n < 47; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;

	d->pid = fork();
	ck_assert_int_ne(d->pid, -1);
	if (d->pid == 0) {
		fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd != -1) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		/* A daemon inherits no test fds: its fd count must start clean. */
		for (int i = 3; i < 1024; i++)
			if (i != fd)
				close(i);
		/* A test that fails skips its teardown: the daemon must not outlive it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (pw != NULL && (setgroups(0, NULL) != 0 ||
		                   setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0 ||
		                   setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) != 0))
			_exit(126);
		unsetenv("NOTIFY_SOCKET");
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_PID");
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	deadline = now_ms() + HARNESS_START_MS;
	while (!socket_accepts(d->path)) {
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			dump_log(d);
			d->pid = 0;
			ck_abort_msg("sockrpcd exited at start-up (status 0x%x)", status);
		}
		if (now_ms() > deadline) {
			dump_log(d);
			kill(d->pid, SIGKILL);
			waitpid(d->pid, NULL, 0);
			d->pid = 0;
			ck_abort_msg("sockrpcd did not accept on %s within %d ms", d->path,
			             HARNESS_START_MS);
		}
		sleep_ms(10);
	}
	/* Idle = after one session has come and gone (lazy opens, e.g. the resolver,
	 * belong to the idle state) and the count has held still for 100 ms. */
	probe = daemon_client(d);
	sr_client_close(probe);
	before = -2;
	deadline = now_ms() + HARNESS_START_MS;
	while ((d->idle_fds = daemon_fd_count(d)) != before && now_ms() < deadline) {
		before = d->idle_fds;
		sleep_ms(100);
	}
	ck_assert_int_gt(d->idle_fds, 0);
}

void
daemon_start_disabling(struct daemon *d, const char *list)
{
	const char *was = getenv("SOCKRPC_DISABLE");
	char *saved = was ? strdup(was) : NULL;

	if (list != NULL)
		setenv("SOCKRPC_DISABLE", list, 1);
	else
		unsetenv("SOCKRPC_DISABLE");
	daemon_start(d, NULL);
	if (saved != NULL)
		setenv("SOCKRPC_DISABLE", saved, 1);
	else
		unsetenv("SOCKRPC_DISABLE");
	free(saved);
}

void
daemon_stop(struct daemon *d)
{
	long long deadline;
	pid_t got;
	int status = 0;
	char cmd[128];

	if (d->pid <= 0)
		return;
	ck_assert_int_eq(kill(d->pid, SIGTERM), 0);
	deadline = now_ms() + HARNESS_STOP_MS;
	while ((got = waitpid(d->pid, &status, WNOHANG)) == 0 && now_ms() < deadline)
		sleep_ms(10);
	if (got != d->pid) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
		d->pid = 0;
		dump_log(d);
		ck_abort_msg("sockrpcd did not exit within %d ms of SIGTERM", HARNESS_STOP_MS);
	}
	d->pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		dump_log(d);
	ck_assert_msg(WIFEXITED(status), "sockrpcd died of signal %d", WTERMSIG(status));
	ck_assert_msg(WEXITSTATUS(status) == 0, "sockrpcd exited %d", WEXITSTATUS(status));
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", d->dir);
}

pid_t
daemon_worker_pid(const struct daemon *d)
{
	char path[64];
	long child = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)d->pid, (int)d->pid);
	if ((f = fopen(path, "re")) != NULL) {
		if (fscanf(f, "%ld", &child) != 1)
			child = 0;
		fclose(f);
	}
	return child > 0 ? (pid_t)child : d->pid;
}

long
proc_status_number(pid_t pid, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

int
daemon_prlimit(const struct daemon *d, int resource, const struct rlimit *rl)
{
	pid_t w = daemon_worker_pid(d), child;
	unsigned uid = 0, gid = 0;
	char path[64], line[256];
	int status;
	FILE *f;

	if (w == d->pid)
		return prlimit(w, resource, rl, NULL);
	/* Without CAP_SYS_RESOURCE only a process of the worker's ids may. */
	snprintf(path, sizeof(path), "/proc/%d/status", (int)w);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		sscanf(line, "Uid: %u", &uid);
		sscanf(line, "Gid: %u", &gid);
	}
	fclose(f);
	if ((child = fork()) == 0) {
		if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 ||
		    setresuid(uid, uid, uid) != 0)
			_exit(2);
		_exit(prlimit(w, resource, rl, NULL) == 0 ? 0 : 1);
	}
	if (child < 0 || waitpid(child, &status, 0) != child)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int
daemon_fd_count(const struct daemon *d)
{
	char path[64];
	struct dirent *e;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)daemon_worker_pid(d));
	if ((dir = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(dir)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

int
daemon_wait_fds(const struct daemon *d, int want, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	int n;

	while ((n = daemon_fd_count(d)) != want && now_ms() < deadline)
		sleep_ms(10);
	return n;
}

sr_client *
daemon_client(const struct daemon *d)
{
	sr_client *c;
	sr_error err;

	memset(&err, 0, sizeof(err));
	c = sr_client_open(d->path, &err);
	ck_assert_msg(c != NULL, "sr_client_open(%s): %d %s", d->path, err.code, err.message);
	return c;
}

void
fixture_daemon_up(void)
{
	signal(SIGPIPE, SIG_IGN);
	daemon_start(&test_daemon, NULL);
}

void
fixture_daemon_down(void)
{
	int fds = daemon_wait_fds(&test_daemon, test_daemon.idle_fds, HARNESS_IDLE_MS);

	ck_assert_msg(fds == test_daemon.idle_fds,
	              "sockrpcd holds %d fds after the test, %d when idle", fds,
	              test_daemon.idle_fds);
	daemon_stop(&test_daemon);
}

/* --- the sockrpc user --- */

static pid_t user_guard;       /* removes the user this process created; 0: none */
static int user_guard_fd = -1; /* a byte or EOF here tells it to */

/* userdel, then groupdel if the group outlived it (as test_privileges.sh does). True if
 * both are gone. */
static bool
sockrpc_user_remove(void)
{
	int st = -1;

	/* userdel exits 8 while a process of the user runs: a daemon killed along with a
	 * failed test may still be on its way out. */
	for (int i = 0; i < 50; i++) {
		st = system("userdel sockrpc");
		if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 8)
			break;
		sleep_ms(100);
	}
	if (system("! getent group sockrpc >/dev/null || groupdel sockrpc") != 0)
		return false;
	return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

bool
sockrpc_user_acquire(const char *test)
{
	char c;
	int p[2];

	if (getpwnam("sockrpc") != NULL)
		return true;
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP %s: no sockrpc user, and only root may create it\n", test);
		return false;
	}
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_msg(system("useradd --system --no-create-home --shell /usr/sbin/nologin "
	                     "--user-group sockrpc") == 0,
	              "could not create the sockrpc user");
	fflush(NULL);
	/* A failed assertion _exits the test, skipping its end: a guard process removes
	 * the user when told to, or when the test process is gone whatever the cause. */
	user_guard = fork();
	if (user_guard == -1) {
		sockrpc_user_remove();
		ck_abort_msg("fork: %s", strerror(errno));
	}
	if (user_guard == 0) {
		setpgid(0, 0); /* Check kills a test that times out by its process group */
		for (int i = 3; i < 1024; i++)
			if (i != p[0])
				close(i); /* hold none of the test's sockets open */
		while (read(p[0], &c, 1) == -1 && errno == EINTR)
			;
		_exit(sockrpc_user_remove() ? 0 : 1);
	}
	close(p[0]);
	user_guard_fd = p[1];
	ck_assert_ptr_nonnull(getpwnam("sockrpc"));
	return true;
}

void
sockrpc_user_release(void)
{
	int status;

	if (user_guard <= 0)
		return;
	ck_assert_int_eq(write(user_guard_fd, "x", 1), 1);
	close(user_guard_fd);
	user_guard_fd = -1;
	ck_assert_int_eq(waitpid(user_guard, &status, 0), user_guard);
	user_guard = 0;
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	              "could not remove the sockrpc user the test created");
	ck_assert_ptr_null(getpwnam("sockrpc"));
}

/* --- loopback servers --- */

struct conn {
	int fd;
	size_t sent;         /* SERVER_SOURCE progress */
	char pending[65536]; /* SERVER_ECHO: read, not yet written back */
	size_t pending_len;
};

static void
conn_close(struct server *srv, struct conn *c)
{
	close(c->fd);
	c->fd = -1;
	atomic_fetch_add(&srv->finished, 1);
}

/* One step of a connection that poll() reported ready. */
static void
conn_step(struct server *srv, struct conn *c, short revents)
{
	char buf[65536];
	size_t want;
	ssize_t n;

	if (srv->kind == SERVER_SOURCE) {
		while (c->sent < srv->bytes) {
			want = srv->bytes - c->sent;
			if (want > sizeof(buf))
				want = sizeof(buf);
			for (size_t i = 0; i < want; i++)
				buf[i] = pattern_byte(c->sent + i);
			n = send(c->fd, buf, want, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n <= 0) {
				if (n == -1 && (errno == EAGAIN || errno == EINTR))
					return;
				conn_close(srv, c);
				return;
			}
			c->sent += (size_t)n;
		}
		conn_close(srv, c);
		return;
	}
	if (srv->kind == SERVER_ECHO && c->pending_len > 0 && (revents & POLLOUT)) {
		n = send(c->fd, c->pending, c->pending_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			memmove(c->pending, c->pending + n, c->pending_len - (size_t)n);
			c->pending_len -= (size_t)n;
		} else if (n == -1 && errno != EAGAIN && errno != EINTR) {
			conn_close(srv, c);
			return;
		}
	}
	if (!(revents & (POLLIN | POLLHUP | POLLERR)))
		return;
	want = srv->kind == SERVER_ECHO ? sizeof(c->pending) - c->pending_len : sizeof(buf);
	if (want == 0)
		return;
	n = recv(c->fd, srv->kind == SERVER_ECHO ? c->pending + c->pending_len : buf, want,
	         MSG_DONTWAIT);
	if (n > 0) {
		atomic_fetch_add(&srv->received, (size_t)n);
		if (srv->kind == SERVER_ECHO)
			c->pending_len += (size_t)n;
	} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		conn_close(srv, c);
	}
}

static void *
server_main(void *arg)
{
	struct server *srv = arg;
	struct conn *conns;
	struct pollfd pfd[SERVER_MAX_CONNS + 3];
	int map[SERVER_MAX_CONNS + 3];
	int n, fd;

	conns = calloc(SERVER_MAX_CONNS, sizeof(*conns));
	if (conns == NULL)
		return NULL;
	for (int i = 0; i < SERVER_MAX_CONNS; i++)
		conns[i].fd = -1;
	for (;;) {
		n = 0;
		pfd[n].fd = srv->wake[0];
		pfd[n++].events = POLLIN;
		pfd[n].fd = srv->listen_fd;
		pfd[n++].events = POLLIN;
		pfd[n].fd = srv->listen_fd2;
		pfd[n++].events = POLLIN;
		for (int i = 0; i < SERVER_MAX_CONNS; i++) {
			if (conns[i].fd == -1)
				continue;
			pfd[n].fd = conns[i].fd;
			pfd[n].events = POLLIN;
			if (srv->kind == SERVER_SOURCE ||
			    (srv->kind == SERVER_ECHO && conns[i].pending_len > 0))
				pfd[n].events |= POLLOUT;
			if (srv->kind == SERVER_SILENT)
				pfd[n].events = POLLIN;
			map[n++] = i;
		}
		if (poll(pfd, (nfds_t)n, 100) <= 0)
			continue;
		if (pfd[0].revents)
			break;
		for (int l = 1; l <= 2; l++) {
			if (!(pfd[l].revents & POLLIN))
				continue;
			fd = accept4(pfd[l].fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
			for (int i = 0; fd != -1 && i < SERVER_MAX_CONNS; i++) {
				if (conns[i].fd == -1) {
					memset(&conns[i], 0, sizeof(conns[i]));
					conns[i].fd = fd;
					fd = -1;
					atomic_fetch_add(&srv->accepted, 1);
				}
			}
			if (fd != -1)
				close(fd);
		}
		for (int k = 3; k < n; k++) {
			if (pfd[k].revents == 0 || conns[map[k]].fd == -1)
				continue;
			if (srv->kind == SERVER_SILENT) {
				char b[4096];
				ssize_t r = recv(pfd[k].fd, b, sizeof(b), MSG_DONTWAIT);

				if (r > 0)
					atomic_fetch_add(&srv->received, (size_t)r);
				else if (r == 0)
					conn_close(srv, &conns[map[k]]);
				continue;
			}
			conn_step(srv, &conns[map[k]], pfd[k].revents);
		}
	}
	for (int i = 0; i < SERVER_MAX_CONNS; i++)
		if (conns[i].fd != -1)
			close(conns[i].fd);
	free(conns);
	return NULL;
}

/* A listening socket on the loopback of family at port (0: ephemeral), or -1. */
static int
loopback_listener(int family, int port, int *bound_port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET6) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
		sin6->sin6_port = htons((uint16_t)port);
		len = sizeof(*sin6);
	} else {
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin->sin_port = htons((uint16_t)port);
		len = sizeof(*sin);
	}
	if ((fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) == -1 || listen(fd, 64) == -1 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) == -1) {
		close(fd);
		return -1;
	}
	*bound_port = ntohs(family == AF_INET6 ? sin6->sin6_port : sin->sin_port);
	return fd;
}

void
server_start(struct server *srv, int family, enum server_kind kind, size_t bytes)
{
	int port = 0;

	memset(srv, 0, sizeof(*srv));
	srv->kind = kind;
	srv->family = family;
	srv->bytes = bytes;
	srv->listen_fd2 = -1;
	if (family != AF_UNSPEC) {
		srv->listen_fd = loopback_listener(family, 0, &srv->port);
		ck_assert_msg(srv->listen_fd != -1, "test server: %s", strerror(errno));
	} else {
		/* Both loopbacks on one port, so "localhost" reaches it whichever
		 * address the resolver puts first. The v4 port may be taken: retry. */
		for (int tries = 0; tries < 50 && srv->listen_fd2 == -1; tries++) {
			srv->listen_fd = loopback_listener(AF_INET6, 0, &srv->port);
			ck_assert_msg(srv->listen_fd != -1, "test server: %s", strerror(errno));
			srv->listen_fd2 = loopback_listener(AF_INET, srv->port, &port);
			if (srv->listen_fd2 == -1)
				close(srv->listen_fd);
		}
		ck_assert_int_ne(srv->listen_fd2, -1);
	}
	ck_assert_int_eq(pipe2(srv->wake, O_CLOEXEC), 0);
	ck_assert_int_eq(pthread_create(&srv->thread, NULL, server_main, srv), 0);
}

void
server_stop(struct server *srv)
{
	if (srv->listen_fd <= 0)
		return;
	if (write(srv->wake[1], "x", 1) != 1)
		ck_abort_msg("cannot wake the test server");
	pthread_join(srv->thread, NULL);
	close(srv->listen_fd);
	if (srv->listen_fd2 != -1)
		close(srv->listen_fd2);
	close(srv->wake[0]);
	close(srv->wake[1]);
	srv->listen_fd = -1;
}

size_t
server_wait_received(struct server *srv, size_t want, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	size_t n;

	while ((n = atomic_load(&srv->received)) < want && now_ms() < deadline)
		sleep_ms(5);
	return n;
}

int
server_wait_finished(struct server *srv, int want, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	int n;

	while ((n = atomic_load(&srv->finished)) < want && now_ms() < deadline)
		sleep_ms(5);
	return n;
}

/* --- raw frames --- */

int
raw_connect(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ne(fd, -1);
	ck_assert_msg(connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0, "connect %s: %s",
	              path, strerror(errno));
	return fd;
}

void
raw_write(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		ck_assert_msg(n > 0, "raw write: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

void
raw_send(int fd, unsigned method, unsigned long long call_id, const ProtobufCMessage *msg)
{
	struct sr_frame_header h;
	uint8_t hdr[SR_FRAME_HEADER_SIZE];
	uint8_t *body = NULL;
	size_t len = 0;

	if (msg != NULL) {
		len = protobuf_c_message_get_packed_size(msg);
		body = malloc(len + 1);
		ck_assert_ptr_nonnull(body);
		protobuf_c_message_pack(msg, body);
	}
	h.length = (uint32_t)len;
	h.method = (uint16_t)method;
	h.flags = 0;
	h.call_id = call_id;
	frame_header_encode(&h, hdr);
	raw_write(fd, hdr, sizeof(hdr));
	if (len > 0)
		raw_write(fd, body, len);
	free(body);
}

static int
raw_read_full(int fd, uint8_t *buf, size_t len, long long deadline)
{
	struct pollfd pfd;
	ssize_t n;
	long long left;

	while (len > 0) {
		left = deadline - now_ms();
		if (left <= 0)
			return -1;
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		n = recv(fd, buf, len, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int
raw_recv(int fd, struct sr_frame_header *h, unsigned char **body, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	uint8_t hdr[SR_FRAME_HEADER_SIZE];

	*body = NULL;
	if (raw_read_full(fd, hdr, sizeof(hdr), deadline) == -1)
		return -1;
	frame_header_decode(hdr, h);
	ck_assert_uint_le(h->length, SR_MAX_FRAME);
	*body = malloc(h->length + 1);
	ck_assert_ptr_nonnull(*body);
	if (raw_read_full(fd, *body, h->length, deadline) == -1) {
		free(*body);
		*body = NULL;
		return -1;
	}
	return 0;
}

bool
raw_closed(int fd, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	struct pollfd pfd;
	char buf[4096];
	ssize_t n;

	while (now_ms() < deadline) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
			return true;
	}
	return false;
}

int
raw_session(const char *path)
{
	Sockrpc__HelloRequest req = SOCKRPC__HELLO_REQUEST__INIT;
	Sockrpc__HelloReply *rep;
	struct sr_frame_header h;
	unsigned char *body;
	int fd = raw_connect(path);

	req.major = SR_PROTOCOL_MAJOR;
	req.minor = SR_PROTOCOL_MINOR;
	req.client_name = "raw-test";
	raw_send(fd, 0, 1, &req.base);
	ck_assert_int_eq(raw_recv(fd, &h, &body, 5000), 0);
	ck_assert_uint_eq(h.call_id, 1);
	ck_assert_uint_eq(h.method, 0);
	ck_assert_uint_eq(h.flags, SR_FRAME_FLAG_REPLY);
	rep = sockrpc__hello_reply__unpack(NULL, h.length, body);
	free(body);
	ck_assert_ptr_nonnull(rep);
	ck_assert_int_eq(rep->status == NULL ? 0 : (int)rep->status->code, 0);
	sockrpc__hello_reply__free_unpacked(rep, NULL);
	return fd;
}
