/*
 * handback_env.h - what the handback suites share (test_handback.c,
 * test_handback_safety.c): a private directory with a policy and an audit log, the real
 * daemon started on them, and the audit log read back.
 */
#ifndef SOCKRPC_TEST_HANDBACK_ENV_H
#define SOCKRPC_TEST_HANDBACK_ENV_H

#include <stdbool.h>

struct hb_env {
	char dir[64]; /* mode 0755, so other uids reach the daemon's socket */
	char policy[128];
	char audit[128];
};

extern struct hb_env hb;

/* Checked fixture: the directory; teardown removes it. */
void hb_setup(void);
void hb_teardown(void);
/* Writes the policy file ("test.policy": its rules are test.policy:LINE). */
void hb_policy(const char *text);
/* Starts test_daemon with --policy and --audit (and `extra`, NULL or one argument); its
 * directory open to other uids. */
void hb_start(void);
void hb_start_with(const char *extra);
/* Asserts the daemon's fds are back to idle, then stops it. */
void hb_finish(void);
/* Waits up to 5 s for the nth occurrence of text in the audit log. */
bool hb_wait_audit(const char *text, int nth);
int hb_count_audit(const char *text);
/* A TCP port on 127.0.0.1 that nothing listens on right now. */
int hb_free_port(void);

#endif
