/*
 * workers_fixture.h - the daemon with three workers (--workers 3), shared by the suites
 * workers and workers_attacks (workers_fixture.c). Needs root and the `sockrpc` user
 * (tools/install-deps); the tests skip otherwise.
 */
#ifndef SOCKRPC_TEST_WORKERS_FIXTURE_H
#define SOCKRPC_TEST_WORKERS_FIXTURE_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "sockrpc.h"

#define N_WORKERS 3
#define PER_UID 2 /* workers_setup's --max-sessions-per-uid */
#define N_UIDS 16
#define MIN_UIDS 3
#define AUDIT_SOCKETS 400 /* audited_sockets' sockets, two audit lines each */

extern char wk_policy_path[100], wk_audit_path[100];
extern bool wk_usable;
extern pid_t wk_pids[N_WORKERS];
extern int wk_idle[N_WORKERS];
extern const uid_t wk_uids[N_UIDS];
extern const char wk_policy_before[], wk_policy_after[];

/* The parent's children: its workers, into out. Returns how many. */
int worker_pids(pid_t *out, int max);
int fd_count(pid_t pid);
/* Starts the daemon with args (--workers 3 among them) and finds its workers. */
void setup_with(const char *const *args);
/* setup_with --max-sessions-per-uid 2, --audit and --no-reply-channel. */
void workers_setup(void);
void workers_teardown(void);
/* Sessions held by each worker now, into held[]; returns how many workers hold one. */
int sessions_per_worker(int held[N_WORKERS]);
/* Waits until the workers hold `want` sessions in all (asserted). */
void wait_sessions(int want);
/* In a child: a second session beside c, then AUDIT_SOCKETS sockets made and closed on
 * the two in turn (report 0: the second session opened; 1: how many were made). With
 * sync_halfway, a child_sync() after half of them (the log is rotated between). */
struct report;
void audited_sockets(sr_client *c, struct report *r, bool sync_halfway);

#define SKIP_UNLESS_USABLE()                                                                       \
	do {                                                                                       \
		if (!wk_usable) {                                                                  \
			fprintf(stderr, "SKIP %s: needs root and the sockrpc user\n", __func__);   \
			return;                                                                    \
		}                                                                                  \
	} while (0)

#endif
