/*
 * test_nofile.c - the daemon raises its soft RLIMIT_NOFILE to the hard limit at start and
 * logs it, so that it can hold more descriptors than the usual soft 1024 (here: started
 * with a soft limit of 256, it holds 1,000 sockets in one session).
 * The hard limit must be 2048 or more (CI's root has far more).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "harness.h"

#define SOFT 256

/* Field `which` (1 soft, 2 hard) of "Max open files" in /proc/PID/limits, or -1. */
static long
open_files_limit(pid_t pid, int which)
{
	char path[64], line[256];
	long soft = -1, hard = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "Max open files", 14) == 0)
			sscanf(line + 14, "%ld %ld", &soft, &hard);
	fclose(f);
	return which == 1 ? soft : hard;
}

START_TEST(soft_limit_raised_to_hard)
{
	static char opt[] = "--max-handles", value[] = "2000";
	const char *extra[] = {opt, value, NULL};
	struct rlimit saved, low;
	sr_socket *s[1000];
	sr_client *c;
	sr_error err;
	char line[128];

	/* Only the soft limit is lowered: raising a hard one back needs CAP_SYS_RESOURCE. */
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
	ck_assert_msg(saved.rlim_max >= 2048, "hard RLIMIT_NOFILE %llu: too low for the test",
	              (unsigned long long)saved.rlim_max);
	low.rlim_cur = SOFT;
	low.rlim_max = saved.rlim_max;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	daemon_start(&test_daemon, extra);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);

	ck_assert_int_eq(open_files_limit(daemon_worker_pid(&test_daemon), 1),
	                 (long)saved.rlim_max);
	ck_assert_int_eq(open_files_limit(test_daemon.pid, 1), (long)saved.rlim_max);
	snprintf(line, sizeof(line), "RLIMIT_NOFILE %llu (soft limit was %d)",
	         (unsigned long long)saved.rlim_max, SOFT);
	{
		FILE *f = fopen(test_daemon.log, "r");
		char buf[4096];
		size_t n;

		ck_assert_ptr_nonnull(f);
		n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = '\0';
		fclose(f);
		ck_assert_msg(strstr(buf, line) != NULL, "log: %s", buf);
	}
	c = daemon_client(&test_daemon);
	for (int i = 0; i < 1000; i++) {
		s[i] = sr_socket_new(c, AF_INET, SOCK_DGRAM, 0, &err);
		ck_assert_msg(s[i] != NULL, "socket %d: %s", i, err.message);
	}
	for (int i = 0; i < 1000; i++)
		sr_socket_free(s[i]);
	sr_client_close(c);
	fixture_daemon_down();
}
END_TEST

Suite *
nofile_suite(void)
{
	Suite *s = suite_create("nofile");
	TCase *tc = tcase_create("rlimit");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, soft_limit_raised_to_hard);
	suite_add_tcase(s, tc);
	return s;
}
