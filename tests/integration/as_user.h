/*
 * as_user.h - clients in children under another uid: a child drops to uid/gid (and
 * g_extra_gid, if set), opens a client on test_daemon, runs a function that records each
 * call's outcome in a report, and sends the report to the parent through a pipe.
 * Attacks on the daemon run this way, as an unprivileged uid against a root daemon.
 */
#ifndef SOCKRPC_TEST_AS_USER_H
#define SOCKRPC_TEST_AS_USER_H

#include <sys/types.h>

#include "sockrpc.h"

#define CHILD_MS 15000 /* a child must report within this */

/* A supplementary group for the next child, 0: none. */
extern gid_t g_extra_gid;

struct outcome {
	int code;
	char msg[256];
	long value;
	char text[256];
};

struct report {
	int open_code;
	char open_msg[256];
	int n;
	pid_t pid;
	unsigned long long session;
	struct outcome o[24];
};

typedef void (*child_fn)(sr_client *c, struct report *r);

struct child {
	pid_t pid;
	int report_fd; /* the child writes its report here */
	int ready_fd;  /* the child says it reached a sync point */
	int go_fd;     /* the parent lets it go on */
};

#define assert_ok(r, i)                                                                            \
	ck_assert_msg((r)->o[i].code == 0, "outcome %d: code %d: %s", (i), (r)->o[i].code,         \
	              (r)->o[i].msg)

#define assert_fail(r, i, code, ...) assert_fail_at((r), (i), (code), __LINE__, __VA_ARGS__, NULL)

/* In a child: records a call's outcome (rc < 0: e's code and message); returns rc. */
int rec(struct report *r, int rc, const sr_error *e, long value);
/* In a child: creates a socket / connects / sends text and reads its echo, recorded. */
sr_socket *c_socket(sr_client *c, struct report *r, int family, int type);
int c_connect(struct report *r, sr_socket *s, const char *host, int port);
void c_echo(struct report *r, sr_socket *s, const char *text);
/* In a child: tells the parent it reached a point, then waits for the go-ahead. */
void child_sync(void);

/* Forks a child that becomes uid/gid, opens a client on test_daemon and runs fn. */
void child_start(struct child *ch, uid_t uid, gid_t gid, child_fn fn);
/* Waits for the child to reach its next child_sync(); then lets it go on. */
void child_wait_ready(struct child *ch);
void child_go(struct child *ch);
/* Reads the child's report and reaps it; asserts it reported and exited 0. */
void child_finish(struct child *ch, struct report *r);
/* child_start, then child_finish. */
void run_as(uid_t uid, gid_t gid, child_fn fn, struct report *r);
/* Outcome i failed with code and its message holds every one of the NULL-ended words. */
void assert_fail_at(const struct report *r, int i, int code, int line, ...);

#endif
