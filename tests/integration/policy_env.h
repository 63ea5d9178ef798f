/*
 * policy_env.h - the files a policy test gives the daemon (policy, hosts, resolv.conf,
 * audit log) in one private directory, the daemon started on them, and reading what the
 * daemon wrote. One environment per test process (check forks each test).
 */
#ifndef SOCKRPC_TEST_POLICY_ENV_H
#define SOCKRPC_TEST_POLICY_ENV_H

#include <stdbool.h>
#include <stddef.h>

struct policy_env {
	char dir[64];
	char policy[128];
	char hosts[128];
	char resolv[128];
	char audit[128];
};

extern struct policy_env env;

/* Makes /tmp/sockrpc-<name>.XXXXXX (mode 0755) with the hosts file hosts_text and a
 * resolv.conf naming this machine, so a name that escapes the hosts file never leaves it. */
void policy_env_setup(const char *name, const char *hosts_text);
void policy_env_teardown(void);

/* Writes the policy file from a printf format. */
void write_policy(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Starts test_daemon on the hosts and resolv.conf files, with (with_policy true)
 * --policy and --audit, then the NULL-ended extra args; opens its directory to all uids. */
void policy_daemon_start(bool with_policy, ...);

/* Asserts the daemon holds only its idle descriptors again, then stops it. */
void policy_daemon_finish(void);

/* Waits out the daemon's audit buffering (lines reach the file within 100 ms,
 * daemon/audit.c), before a test counts lines that must not be there yet. */
void audit_settle(void);

/* A whole file as a malloc'd string ("" if it cannot be read). */
char *file_read_all(const char *path);
/* How often text occurs in the file. */
int file_count_text(const char *path, const char *text);
/* True once text occurs at least nth times in the file, within timeout_ms. */
bool file_wait_text(const char *path, const char *text, int nth, int timeout_ms);

/* Runs sockrpcd with the NULL-ended args, captures stdout and stderr (NUL-terminated)
 * and returns its exit status. */
int run_sockrpcd(char *out, size_t out_len, char *err, size_t err_len, ...);

/* A TCP port on 127.0.0.1 that nothing listens on right now. */
int free_tcp_port(void);

#endif
