/*
 * test_identity_socket.c - identity_from_socket() on a real socketpair (uid, gid, pid,
 * groups, exe and cgroup read from the kernel). The daemon's, not the policy library's:
 * moved here from tests/policy/test_policy_tools.c unchanged.
 */
#include <check.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "identity.h"

START_TEST(identity_of_socketpair)
{
	struct identity id;
	char exe[256];
	ssize_t n;
	int sv[2];
	gid_t groups[IDENTITY_MAX_GROUPS];
	int n_groups = getgroups(IDENTITY_MAX_GROUPS, groups);

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	memset(&id, 0x55, sizeof(id));
	ck_assert_int_eq(identity_from_socket(sv[0], &id), 0);
	ck_assert_uint_eq(id.uid, geteuid());
	ck_assert_uint_eq(id.gid, getegid());
	ck_assert_int_eq(id.pid, getpid());
	ck_assert_int_eq(id.n_groups, n_groups);
	for (int i = 0; i < n_groups; i++)
		ck_assert_uint_eq(id.groups[i], groups[i]);
	ck_assert(!id.groups_truncated);

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	ck_assert_int_gt(n, 0);
	exe[n] = '\0';
	ck_assert_str_eq(id.exe, exe);
	/* cgroup v2 is mounted on any kernel this runs on; a path always starts with / */
	if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0)
		ck_assert_int_eq(id.cgroup[0], '/');
	close(sv[0]);
	close(sv[1]);

	/* not a socket: an error, and *out untouched */
	ck_assert_int_eq(pipe(sv), 0);
	memset(&id, 0, sizeof(id));
	id.uid = 77;
	ck_assert_int_eq(identity_from_socket(sv[0], &id), -ENOTSOCK);
	ck_assert_uint_eq(id.uid, 77);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(identity_opens_no_fds)
{
	struct identity id;
	int sv[2], probe_before, probe_after;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	probe_before = dup(0);
	close(probe_before);
	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(identity_from_socket(sv[1], &id), 0);
	probe_after = dup(0);
	close(probe_after);
	ck_assert_int_eq(probe_before, probe_after);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

Suite *
identity_socket_suite(void)
{
	Suite *s = suite_create("identity_socket");
	TCase *tc = tcase_create("identity");

	tcase_add_test(tc, identity_of_socketpair);
	tcase_add_test(tc, identity_opens_no_fds);
	suite_add_tcase(s, tc);
	return s;
}
