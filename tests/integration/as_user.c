/*
 * as_user.c - clients in children under another uid (see as_user.h).
 */
#include <check.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "as_user.h"
#include "harness.h"

/* What a child may use: the parent's values (inherited at fork) and its sync pipes. */
gid_t g_extra_gid;
static int child_ready_fd = -1, child_go_fd = -1;

/* In a child: records a call's outcome; returns it for chaining. */
int
rec(struct report *r, int rc, const sr_error *e, long value)
{
	struct outcome *o;

	if (r->n >= (int)(sizeof(r->o) / sizeof(r->o[0])))
		return rc;
	o = &r->o[r->n++];
	o->code = rc < 0 ? e->code : 0;
	if (rc < 0)
		snprintf(o->msg, sizeof(o->msg), "%s", e->message);
	o->value = value;
	return rc;
}

/* In a child: creates a socket and records the outcome. */
sr_socket *
c_socket(sr_client *c, struct report *r, int family, int type)
{
	sr_error err;
	sr_socket *s = sr_socket_new(c, family, type, 0, &err);

	rec(r, s ? 0 : -1, &err, 0);
	return s;
}

/* In a child: connect, recorded. */
int
c_connect(struct report *r, sr_socket *s, const char *host, int port)
{
	sr_error err;

	if (s == NULL)
		return rec(r, -1, &(sr_error){.code = -1, .message = "no socket"}, 0);
	return rec(r, sr_connect(s, host, port, 5000, &err), &err, 0);
}

/* In a child: sends text and receives its echo; records 0 and the text. */
void
c_echo(struct report *r, sr_socket *s, const char *text)
{
	sr_error err;
	char *got = NULL;
	size_t len = 0, want = strlen(text), have = 0;
	char buf[256] = "";

	if (s == NULL || sr_send(s, text, want, 0, &err) != (long)want) {
		rec(r, -1, s ? &err : &(sr_error){.code = -1, .message = "no socket"}, 0);
		return;
	}
	while (have < want) {
		if (sr_receive(s, (long)(want - have), 0, &got, &len, &err) != 0) {
			rec(r, -1, &err, 0);
			return;
		}
		if (len == 0)
			break;
		memcpy(buf + have, got,
		       len < sizeof(buf) - have - 1 ? len : sizeof(buf) - have - 1);
		have += len;
		free(got);
	}
	rec(r, 0, &err, (long)have);
	snprintf(r->o[r->n - 1].text, sizeof(r->o[0].text), "%s", buf);
}

/* In a child: tells the parent it reached a point, then waits for the go-ahead. */
void
child_sync(void)
{
	char b = 'r';

	if (write(child_ready_fd, &b, 1) != 1 || read(child_go_fd, &b, 1) != 1)
		_exit(3);
}

/* Forks a child that becomes uid/gid (groups: gid only), opens a client on the test daemon
 * and runs fn. */
void
child_start(struct child *ch, uid_t uid, gid_t gid, child_fn fn)
{
	int rep[2], ready[2], go[2];

	ck_assert_int_eq(pipe2(rep, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(go, O_CLOEXEC), 0);
	ch->pid = fork();
	ck_assert_int_ne(ch->pid, -1);
	if (ch->pid == 0) {
		struct report r;
		sr_error err;
		sr_client *c;
		const char *p;
		size_t left;
		gid_t groups[2] = {gid, g_extra_gid};

		close(rep[0]);
		close(ready[0]);
		close(go[1]);
		child_ready_fd = ready[1];
		child_go_fd = go[0];
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		memset(&r, 0, sizeof(r));
		r.pid = getpid();
		if (setgroups(g_extra_gid ? 2 : 1, groups) != 0 || setresgid(gid, gid, gid) != 0 ||
		    setresuid(uid, uid, uid) != 0)
			_exit(4);
		/* As a process started by its user would be (a uid change clears it). */
		prctl(PR_SET_DUMPABLE, 1);
		memset(&err, 0, sizeof(err));
		c = sr_client_open(test_daemon.path, &err);
		if (c == NULL) {
			r.open_code = err.code;
			snprintf(r.open_msg, sizeof(r.open_msg), "%s", err.message);
		} else {
			r.session = sr_client_session_id(c);
			fn(c, &r);
			sr_client_close(c);
		}
		for (p = (const char *)&r, left = sizeof(r); left > 0;) {
			ssize_t n = write(rep[1], p, left);

			if (n <= 0)
				_exit(5);
			p += n;
			left -= (size_t)n;
		}
		_exit(0);
	}
	close(rep[1]);
	close(ready[1]);
	close(go[0]);
	ch->report_fd = rep[0];
	ch->ready_fd = ready[0];
	ch->go_fd = go[1];
}

/* Waits for the child to reach its next child_sync(). */
void
child_wait_ready(struct child *ch)
{
	struct pollfd pfd = {.fd = ch->ready_fd, .events = POLLIN};
	char b;

	ck_assert_msg(poll(&pfd, 1, CHILD_MS) == 1, "child did not reach its sync point");
	ck_assert_int_eq(read(ch->ready_fd, &b, 1), 1);
}

void
child_go(struct child *ch)
{
	ck_assert_int_eq(write(ch->go_fd, "g", 1), 1);
}

void
child_finish(struct child *ch, struct report *r)
{
	long long deadline = now_ms() + CHILD_MS;
	char *p = (char *)r;
	size_t left = sizeof(*r);
	int status;

	while (left > 0) {
		struct pollfd pfd = {.fd = ch->report_fd, .events = POLLIN};
		ssize_t n;

		if (poll(&pfd, 1, (int)(deadline - now_ms())) != 1)
			break;
		n = read(ch->report_fd, p, left);
		if (n <= 0)
			break;
		p += n;
		left -= (size_t)n;
	}
	if (left > 0)
		kill(ch->pid, SIGKILL);
	ck_assert_int_eq(waitpid(ch->pid, &status, 0), ch->pid);
	close(ch->report_fd);
	close(ch->ready_fd);
	close(ch->go_fd);
	ck_assert_msg(left == 0, "child reported nothing (status 0x%x)", status);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status 0x%x", status);
}

void
run_as(uid_t uid, gid_t gid, child_fn fn, struct report *r)
{
	struct child ch;

	child_start(&ch, uid, gid, fn);
	child_finish(&ch, r);
}

/* Outcome i failed with code and its message holds every one of the NULL-ended words. */
void
assert_fail_at(const struct report *r, int i, int code, int line, ...)
{
	const char *word;
	va_list ap;

	ck_assert_msg(i < r->n, "line %d: only %d outcomes", line, r->n);
	ck_assert_msg(r->o[i].code == code, "line %d: outcome %d: code %d, want %d (%s)", line, i,
	              r->o[i].code, code, r->o[i].msg);
	va_start(ap, line);
	while ((word = va_arg(ap, const char *)) != NULL)
		ck_assert_msg(strstr(r->o[i].msg, word) != NULL,
		              "line %d: outcome %d: message \"%s\" lacks \"%s\"", line, i,
		              r->o[i].msg, word);
	va_end(ap);
}
