/*
 * policy_env.c - the files a policy test gives the daemon, the daemon started on them, and
 * reading what it wrote (see policy_env.h).
 */
#include <check.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "policy_env.h"

struct policy_env env;

void
policy_env_setup(const char *name, const char *hosts_text)
{
	signal(SIGPIPE, SIG_IGN);
	memset(&env, 0, sizeof(env));
	snprintf(env.dir, sizeof(env.dir), "/tmp/sockrpc-%s.XXXXXX", name);
	ck_assert_ptr_nonnull(mkdtemp(env.dir));
	ck_assert_int_eq(chmod(env.dir, 0755), 0);
	snprintf(env.policy, sizeof(env.policy), "%s/test.policy", env.dir);
	snprintf(env.hosts, sizeof(env.hosts), "%s/hosts", env.dir);
	snprintf(env.resolv, sizeof(env.resolv), "%s/resolv.conf", env.dir);
	snprintf(env.audit, sizeof(env.audit), "%s/audit.log", env.dir);
	write_file(env.resolv, "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
	write_file(env.hosts, hosts_text);
}

void
policy_env_teardown(void)
{
	char cmd[128];

	if (env.dir[0] == '\0')
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", env.dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", env.dir);
	env.dir[0] = '\0';
}

void
write_policy(const char *fmt, ...)
{
	char text[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	write_file(env.policy, text);
}

void
policy_daemon_start(bool with_policy, ...)
{
	const char *args[24];
	const char *a;
	int n = 0;
	va_list ap;

	args[n++] = "--hosts";
	args[n++] = env.hosts;
	args[n++] = "--resolv-conf";
	args[n++] = env.resolv;
	if (with_policy) {
		args[n++] = "--policy";
		args[n++] = env.policy;
		args[n++] = "--audit";
		args[n++] = env.audit;
	}
	va_start(ap, with_policy);
	while ((a = va_arg(ap, const char *)) != NULL && n < 23)
		args[n++] = a;
	va_end(ap);
	args[n] = NULL;
	daemon_start(&test_daemon, args);
	ck_assert_int_eq(chmod(test_daemon.dir, 0755), 0);
}

void
policy_daemon_finish(void)
{
	int fds = daemon_wait_fds(&test_daemon, test_daemon.idle_fds, HARNESS_IDLE_MS);

	ck_assert_msg(fds == test_daemon.idle_fds, "sockrpcd holds %d fds after the test, %d idle",
	              fds, test_daemon.idle_fds);
	daemon_stop(&test_daemon);
}

void
audit_settle(void)
{
	sleep_ms(250);
}

char *
file_read_all(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n = 0, cap = 4096, r;

	if (f == NULL)
		return strdup("");
	buf = malloc(cap + 1);
	ck_assert_ptr_nonnull(buf);
	while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			ck_assert_ptr_nonnull(buf);
		}
	}
	fclose(f);
	buf[n] = '\0';
	return buf;
}

int
file_count_text(const char *path, const char *text)
{
	char *all = file_read_all(path), *p = all;
	int n = 0;

	while ((p = strstr(p, text)) != NULL) {
		n++;
		p += strlen(text);
	}
	free(all);
	return n;
}

bool
file_wait_text(const char *path, const char *text, int nth, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;

	while (file_count_text(path, text) < nth) {
		if (now_ms() > deadline)
			return false;
		sleep_ms(20);
	}
	return true;
}

/* Reads what is ready on fd into buf (keeping room for the NUL; the rest is drained and
 * dropped); false at end of file. */
static bool
read_some(int fd, char *buf, size_t cap, size_t *got)
{
	char sink[256];
	ssize_t r;

	if (*got + 1 < cap)
		r = read(fd, buf + *got, cap - 1 - *got);
	else
		r = read(fd, sink, sizeof(sink));
	if (r > 0 && *got + 1 < cap)
		*got += (size_t)r;
	return r > 0;
}

int
run_sockrpcd(char *out, size_t out_len, char *err, size_t err_len, ...)
{
	const char *argv[24] = {SOCKRPCD_PATH};
	int po[2], pe[2], status, n = 1;
	size_t got_out = 0, got_err = 0;
	const char *a;
	pid_t pid;
	va_list ap;

	va_start(ap, err_len);
	while ((a = va_arg(ap, const char *)) != NULL && n < 23)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	ck_assert_int_eq(pipe2(po, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(pe, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		dup2(po[1], STDOUT_FILENO);
		dup2(pe[1], STDERR_FILENO);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	while (po[0] >= 0 || pe[0] >= 0) {
		struct pollfd pfd[2] = {{.fd = po[0], .events = POLLIN},
		                        {.fd = pe[0], .events = POLLIN}};

		if (poll(pfd, 2, 5000) <= 0)
			break;
		if ((pfd[0].revents & (POLLIN | POLLHUP)) &&
		    !read_some(po[0], out, out_len, &got_out)) {
			close(po[0]);
			po[0] = -1;
		}
		if ((pfd[1].revents & (POLLIN | POLLHUP)) &&
		    !read_some(pe[0], err, err_len, &got_err)) {
			close(pe[0]);
			pe[0] = -1;
		}
	}
	if (po[0] >= 0)
		close(po[0]);
	if (pe[0] >= 0)
		close(pe[0]);
	out[got_out] = '\0';
	err[got_err] = '\0';
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "sockrpcd died: 0x%x", status);
	return WEXITSTATUS(status);
}

int
free_tcp_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}
