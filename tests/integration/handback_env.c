/*
 * handback_env.c - the handback suites' directory, policy, daemon and audit log
 * (handback_env.h).
 */
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "handback_env.h"
#include "harness.h"

struct hb_env hb;

void
hb_setup(void)
{
	memset(&hb, 0, sizeof(hb));
	snprintf(hb.dir, sizeof(hb.dir), "/tmp/sockrpc-handback.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(hb.dir));
	ck_assert_int_eq(chmod(hb.dir, 0755), 0);
	snprintf(hb.policy, sizeof(hb.policy), "%s/test.policy", hb.dir);
	snprintf(hb.audit, sizeof(hb.audit), "%s/audit.log", hb.dir);
}

void
hb_teardown(void)
{
	char cmd[128];

	if (hb.dir[0] == '\0')
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", hb.dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", hb.dir);
	hb.dir[0] = '\0';
}

void
hb_policy(const char *text)
{
	write_file(hb.policy, text);
}

void
hb_start(void)
{
	hb_start_with(NULL);
}

void
hb_start_with(const char *extra)
{
	const char *args[] = {"--policy", hb.policy, "--audit", hb.audit, extra, NULL};

	daemon_start(&test_daemon, args);
	ck_assert_int_eq(chmod(test_daemon.dir, 0755), 0);
}

void
hb_finish(void)
{
	int fds = daemon_wait_fds(&test_daemon, test_daemon.idle_fds, HARNESS_IDLE_MS);

	ck_assert_msg(fds == test_daemon.idle_fds, "sockrpcd holds %d fds after the test, %d idle",
	              fds, test_daemon.idle_fds);
	daemon_stop(&test_daemon);
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (f == NULL)
		return strdup("");
	buf = calloc(1, 1 << 20);
	ck_assert_ptr_nonnull(buf);
	n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

int
hb_count_audit(const char *text)
{
	char *all = slurp(hb.audit), *p = all;
	int n = 0;

	while ((p = strstr(p, text)) != NULL) {
		n++;
		p += strlen(text);
	}
	free(all);
	return n;
}

bool
hb_wait_audit(const char *text, int nth)
{
	long long deadline = now_ms() + 5000;

	while (hb_count_audit(text) < nth) {
		if (now_ms() > deadline)
			return false;
		sleep_ms(20);
	}
	return true;
}

int
hb_free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}
