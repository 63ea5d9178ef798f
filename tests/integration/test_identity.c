/*
 * test_identity.c - whose identity the OS sees (issue 14, items 1, 2 and 4): an
 * unprivileged client (uid 65534) against the root daemon, with a policy that allows
 * AF_UNIX paths under one spool directory. Every way out of the spool is tried (`..`,
 * `//`, `/./`, symbolic links in the last and in a directory component, a link flipped
 * during 2000 connects), file permissions must apply to the client (a root-only
 * directory), peers must see the client (SO_PEERCRED, another sockrpcd's session), a
 * client must not take over a port of another owner with SO_REUSEPORT nor get more from
 * SO_REUSEADDR than it would directly, and a bound socket file goes away with its socket.
 */
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "as_user.h"
#include "harness.h"
#include "rawcall.h"

#define NOBODY 65534
#define OTHER_UID 1000
#define EXTRA_GID 4242
#define RACE_CONNECTS 2000
#define RACE_BINDS 300
/* The race also stops at these times, so that a slow build (ASan, valgrind) on a busy
 * machine reports within CHILD_MS; it then counts fewer tries, each still checked. */
#define RACE_CONNECT_MS 6000
#define RACE_BIND_MS 3000

/* The test's tree: DIR/spool (the policy's, writable by all), DIR/secret (root only,
 * 0700, allowed by the policy all the same), DIR/outside (0755, not allowed). */
static struct {
	char dir[64];
	char spool[96], secret[96], outside[96];
	char policy[128], audit[128];
} t;

static char *at(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static char *
at(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return buf;
}

static void
setup(void)
{
	char text[1024];

	signal(SIGPIPE, SIG_IGN);
	snprintf(t.dir, sizeof(t.dir), "/tmp/sockrpc-id.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t.dir));
	ck_assert_int_eq(chmod(t.dir, 0755), 0);
	at(t.spool, sizeof(t.spool), "%s/spool", t.dir);
	at(t.secret, sizeof(t.secret), "%s/secret", t.dir);
	at(t.outside, sizeof(t.outside), "%s/outside", t.dir);
	at(t.policy, sizeof(t.policy), "%s/test.policy", t.dir);
	at(t.audit, sizeof(t.audit), "%s/audit.log", t.dir);
	ck_assert_int_eq(mkdir(t.spool, 0777), 0);
	ck_assert_int_eq(chmod(t.spool, 0777), 0);
	ck_assert_int_eq(mkdir(t.secret, 0700), 0);
	ck_assert_int_eq(mkdir(t.outside, 0755), 0);
	snprintf(text, sizeof(text),
	         "allow * create,listen,accept,option\n"
	         "allow * connect,bind,send unix %s/*\n"
	         "allow * connect,bind,send unix %s/*\n"
	         "allow * bind,connect tcp,udp @loopback\n",
	         t.spool, t.secret);
	write_file(t.policy, text);
	{
		const char *args[] = {"--policy", t.policy, "--audit", t.audit, NULL};

		daemon_start(&test_daemon, args);
	}
	ck_assert_int_eq(chmod(test_daemon.dir, 0755), 0);
}

static void
teardown(void)
{
	char cmd[128];

	g_extra_gid = 0;
	fixture_daemon_down();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t.dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", t.dir);
}

/* A plain (kernel) AF_UNIX socket of type bound to path, mode 0666; listening if stream. */
static int
plain_unix(int type, const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	ck_assert_int_ne(fd, -1);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	ck_assert_msg(bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0, "bind %s: %s", path,
	              strerror(errno));
	ck_assert_int_eq(chmod(path, 0666), 0);
	if (type == SOCK_STREAM)
		ck_assert_int_eq(listen(fd, 4096), 0);
	return fd;
}

/* Accepts one pending connection within ms, or returns -1. */
static int
accept_within(int lfd, int ms)
{
	struct pollfd p = {.fd = lfd, .events = POLLIN};

	if (poll(&p, 1, ms) != 1)
		return -1;
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

static bool
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* --- the child's side: paths, as uid 65534 --- */

static int
c_conn(struct report *r, sr_client *c, int type, const char *path)
{
	sr_error err;
	sr_socket *s = sr_socket_new(c, AF_UNIX, type, 0, &err);
	int rc;

	if (s == NULL)
		return rec(r, -1, &err, 0);
	rc = rec(r, sr_connect(s, path, 0, 3000, &err), &err, 0);
	if (rc == 0)
		sr_send(s, "hi", 2, 0, &err);
	sr_socket_free(s);
	return rc;
}

static int
c_bind(struct report *r, sr_client *c, const char *path)
{
	sr_error err;
	sr_socket *s = sr_socket_new(c, AF_UNIX, SOCK_STREAM, 0, &err);
	int rc;

	if (s == NULL)
		return rec(r, -1, &err, 0);
	rc = rec(r, sr_bind(s, 0, path, &err), &err, 0);
	sr_socket_free(s);
	return rc;
}

static int
c_send_to(struct report *r, sr_client *c, const char *path)
{
	sr_error err;
	sr_socket *s = sr_socket_new(c, AF_UNIX, SOCK_DGRAM, 0, &err);
	int rc;

	if (s == NULL)
		return rec(r, -1, &err, 0);
	rc = rec(r, sr_send_to(s, path, 0, "x", 1, 0, &err) == 1 ? 0 : -1, &err, 0);
	sr_socket_free(s);
	return rc;
}

static void
child_spellings(sr_client *c, struct report *r)
{
	char p[160];

	c_conn(r, c, SOCK_STREAM, at(p, sizeof(p), "%s/../outside/out.sock", t.spool));  /* 0 */
	c_conn(r, c, SOCK_STREAM, at(p, sizeof(p), "%s//../outside/out.sock", t.spool)); /* 1 */
	c_conn(r, c, SOCK_STREAM,
	       at(p, sizeof(p), "%s/./sub/../../outside/out.sock", t.spool));           /* 2 */
	c_conn(r, c, SOCK_STREAM, "spool/ok.sock");                                     /* 3 */
	c_conn(r, c, SOCK_STREAM, at(p, sizeof(p), "/../../..%s/ok.sock", t.spool));    /* 4 */
	c_conn(r, c, SOCK_STREAM, at(p, sizeof(p), "%s/admin.sock", t.secret));         /* 5 */
	c_conn(r, c, SOCK_STREAM, at(p, sizeof(p), "%s//./sub/..///ok.sock", t.spool)); /* 6 */
	c_bind(r, c, at(p, sizeof(p), "%s/../planted.sock", t.spool));                  /* 7 */
	c_bind(r, c, at(p, sizeof(p), "%s/sub/../../planted.sock", t.spool));           /* 8 */
	c_bind(r, c, at(p, sizeof(p), "%s/sub/../../secret/planted.sock", t.spool));    /* 9 */
	c_conn(r, c, SOCK_STREAM, at(p, sizeof(p), "%s/ok.sock/", t.spool));            /* 10 */
	c_send_to(r, c, at(p, sizeof(p), "%s/../outside/dgram.sock", t.spool));         /* 11 */
	c_send_to(r, c, at(p, sizeof(p), "%s/dgram.sock", t.secret));                   /* 12 */
	c_bind(r, c, at(p, sizeof(p), "%s/secret/planted.sock", t.dir));                /* 13 */
	c_conn(r, c, SOCK_STREAM, at(p, sizeof(p), "%s/ok.sock", t.spool));             /* 14 */
}

START_TEST(dotdot_and_odd_spellings_stay_in_the_spool)
{
	struct report r;
	char p[160];
	int admin, ok, dgram, out, fd;

	ck_assert_int_eq(mkdir(at(p, sizeof(p), "%s/sub", t.spool), 0755), 0);
	out = plain_unix(SOCK_STREAM, at(p, sizeof(p), "%s/out.sock", t.outside));
	admin = plain_unix(SOCK_STREAM, at(p, sizeof(p), "%s/admin.sock", t.secret));
	dgram = plain_unix(SOCK_DGRAM, at(p, sizeof(p), "%s/dgram.sock", t.secret));
	ok = plain_unix(SOCK_STREAM, at(p, sizeof(p), "%s/ok.sock", t.spool));
	run_as(NOBODY, NOBODY, child_spellings, &r);
	ck_assert_int_eq(r.n, 15);
	/* `..` out of the spool: the policy sees the path it leads to. */
	for (int i = 0; i <= 2; i++)
		assert_fail(&r, i, SR_EDENIED, "denied by policy");
	assert_fail(&r, 3, SR_EINVAL, "not an absolute path");
	assert_fail(&r, 4, SR_EINVAL, "'..' goes above /");
	/* Allowed by the policy, but the directory is root's: the client's permissions. */
	assert_fail(&r, 5, SR_EOS, "Permission denied");
	assert_ok(&r, 6);
	for (int i = 7; i <= 8; i++)
		assert_fail(&r, i, SR_EDENIED, "denied by policy");
	assert_fail(&r, 9, SR_EOS, "Permission denied");
	assert_fail(&r, 10, SR_EINVAL, "names a directory");
	assert_fail(&r, 11, SR_EDENIED, "denied by policy");
	assert_fail(&r, 12, SR_EOS, "Permission denied");
	assert_fail(&r, 13, SR_EOS, "Permission denied");
	/* The daemon goes on serving the client that tried. */
	assert_ok(&r, 14);
	/* Nothing planted, nothing reached but ok.sock (twice). */
	ck_assert(!exists(at(p, sizeof(p), "%s/planted.sock", t.dir)));
	ck_assert(!exists(at(p, sizeof(p), "%s/planted.sock", t.secret)));
	ck_assert_int_eq(accept_within(admin, 0), -1);
	ck_assert_int_eq(accept_within(out, 0), -1);
	ck_assert_int_eq(recv(dgram, p, sizeof(p), MSG_DONTWAIT), -1);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_ge(fd = accept_within(ok, 1000), 0);
		close(fd);
	}
	/* Root, through the same daemon, reaches the secret socket: the difference is the
	 * client's identity, not the path. */
	{
		sr_client *c = daemon_client(&test_daemon);
		sr_socket *s = sr_socket_new(c, AF_UNIX, SOCK_STREAM, 0, NULL);
		sr_error err;

		ck_assert_msg(
		    sr_connect(s, at(p, sizeof(p), "%s/admin.sock", t.secret), 0, 3000, &err) == 0,
		    "%s", err.message);
		ck_assert_int_ge(fd = accept_within(admin, 1000), 0);
		close(fd);
		sr_socket_free(s);
		sr_client_close(c);
	}
	close(admin);
	close(ok);
	close(out);
	close(dgram);
	assert_daemon_serves(&test_daemon);
}
END_TEST

static void
child_symlinks(sr_client *c, struct report *r)
{
	char p[160];

	c_conn(r, c, SOCK_STREAM, at(p, sizeof(p), "%s/link.sock", t.spool));             /* 0 */
	c_conn(r, c, SOCK_STREAM, at(p, sizeof(p), "%s/dirlink/out.sock", t.spool));      /* 1 */
	c_conn(r, c, SOCK_STREAM, at(p, sizeof(p), "%s/alias.sock", t.spool));            /* 2 */
	c_bind(r, c, at(p, sizeof(p), "%s/dirlink/planted.sock", t.spool));               /* 3 */
	c_bind(r, c, at(p, sizeof(p), "%s/dangling.sock", t.spool));                      /* 4 */
	c_send_to(r, c, at(p, sizeof(p), "%s/dirlink/dgram.sock", t.spool));              /* 5 */
	c_send_to(r, c, at(p, sizeof(p), "%s/dglink.sock", t.spool));                     /* 6 */
	c_conn(r, c, SOCK_STREAM, at(p, sizeof(p), "%s/deep/dirlink/out.sock", t.spool)); /* 7 */
	c_conn(r, c, SOCK_STREAM, at(p, sizeof(p), "%s/ok.sock", t.spool));               /* 8 */
}

START_TEST(symbolic_links_are_never_followed)
{
	struct report r;
	char p[160], q[160];
	int out, dgram, ok, fd;

	out = plain_unix(SOCK_STREAM, at(p, sizeof(p), "%s/out.sock", t.outside));
	dgram = plain_unix(SOCK_DGRAM, at(p, sizeof(p), "%s/dgram.sock", t.outside));
	ok = plain_unix(SOCK_STREAM, at(p, sizeof(p), "%s/ok.sock", t.spool));
	/* In the last component, to a socket outside and to one inside; in a directory
	 * component, at the top of the spool and deeper; dangling, for bind. */
	ck_assert_int_eq(symlink(at(q, sizeof(q), "%s/out.sock", t.outside),
	                         at(p, sizeof(p), "%s/link.sock", t.spool)),
	                 0);
	ck_assert_int_eq(symlink(t.outside, at(p, sizeof(p), "%s/dirlink", t.spool)), 0);
	ck_assert_int_eq(symlink(at(q, sizeof(q), "%s/ok.sock", t.spool),
	                         at(p, sizeof(p), "%s/alias.sock", t.spool)),
	                 0);
	ck_assert_int_eq(symlink(at(q, sizeof(q), "%s/planted2.sock", t.outside),
	                         at(p, sizeof(p), "%s/dangling.sock", t.spool)),
	                 0);
	ck_assert_int_eq(symlink(at(q, sizeof(q), "%s/dgram.sock", t.outside),
	                         at(p, sizeof(p), "%s/dglink.sock", t.spool)),
	                 0);
	ck_assert_int_eq(mkdir(at(p, sizeof(p), "%s/deep", t.spool), 0777), 0);
	ck_assert_int_eq(symlink(t.outside, at(p, sizeof(p), "%s/deep/dirlink", t.spool)), 0);
	run_as(NOBODY, NOBODY, child_symlinks, &r);
	ck_assert_int_eq(r.n, 9);
	for (int i = 0; i <= 3; i++)
		assert_fail(&r, i, SR_EOS, "symbolic link");
	/* bind never follows a last-component link; the name is simply taken. */
	assert_fail(&r, 4, SR_EOS, "Address already in use");
	assert_fail(&r, 5, SR_EOS, "symbolic link");
	assert_fail(&r, 6, SR_EOS, "symbolic link");
	assert_fail(&r, 7, SR_EOS, "symbolic link");
	assert_ok(&r, 8);
	ck_assert_int_eq(accept_within(out, 0), -1);
	ck_assert_int_eq(recv(dgram, p, sizeof(p), MSG_DONTWAIT), -1);
	ck_assert(!exists(at(p, sizeof(p), "%s/planted.sock", t.outside)));
	ck_assert(!exists(at(p, sizeof(p), "%s/planted2.sock", t.outside)));
	ck_assert_int_ge(fd = accept_within(ok, 1000), 0);
	close(fd);
	ck_assert_int_eq(accept_within(ok, 0), -1); /* alias.sock reached nothing */
	assert_daemon_serves(&test_daemon);
	close(out);
	close(dgram);
	close(ok);
}
END_TEST

/* --- a directory flipped to a link to outside while the client connects and binds --- */

static atomic_bool race_stop;
static atomic_int inside_accepts, outside_accepts;
static int race_inside = -1, race_outside = -1;

static void *
flipper(void *arg)
{
	char a[160], b[160];
	unsigned long flips = 0;

	at(a, sizeof(a), "%s/flip", t.spool);
	at(b, sizeof(b), "%s/flip.alt", t.spool);
	while (!atomic_load(&race_stop)) {
		/* Swap the real directory and the link to outside, atomically. */
		if (renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0)
			flips++;
		if (flips % 64 == 0)
			sched_yield();
	}
	return (void *)flips;
}

static void *
acceptor(void *arg)
{
	struct pollfd p[2] = {{.fd = race_inside, .events = POLLIN},
	                      {.fd = race_outside, .events = POLLIN}};

	while (!atomic_load(&race_stop)) {
		if (poll(p, 2, 50) <= 0)
			continue;
		for (int i = 0; i < 2; i++) {
			int fd;

			if (!(p[i].revents & POLLIN))
				continue;
			while ((fd = accept4(p[i].fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >=
			       0) {
				atomic_fetch_add(i == 0 ? &inside_accepts : &outside_accepts, 1);
				close(fd);
			}
		}
	}
	return NULL;
}

static void
child_race(sr_client *c, struct report *r)
{
	char p[160];
	long ok = 0, link = 0, other = 0, bound = 0, refused = 0, bind_other = 0, bind_link = 0;
	char first_other[256] = "";
	sr_error err;
	long long until;

	child_sync(); /* forked before the parent's threads: see the test */
	until = now_ms() + RACE_CONNECT_MS;

	at(p, sizeof(p), "%s/flip/s.sock", t.spool);
	for (int i = 0; i < RACE_CONNECTS && now_ms() < until; i++) {
		sr_socket *s = sr_socket_new(c, AF_UNIX, SOCK_STREAM, 0, &err);

		if (s == NULL) {
			other++;
			continue;
		}
		if (sr_connect(s, p, 0, 3000, &err) == 0)
			ok++;
		else if (err.sys_errno == ELOOP || err.sys_errno == ENOENT)
			link++;
		else if (other++ == 0)
			snprintf(first_other, sizeof(first_other), "%s", err.message);
		sr_socket_free(s);
	}
	until = now_ms() + RACE_BIND_MS;
	for (int i = 0; i < RACE_BINDS && now_ms() < until; i++) {
		sr_socket *s = sr_socket_new(c, AF_UNIX, SOCK_DGRAM, 0, &err);

		at(p, sizeof(p), "%s/flip/b%d.sock", t.spool, i);
		if (s == NULL)
			bind_other++;
		else if (sr_bind(s, 0, p, &err) == 0)
			bound++;
		else if (err.code == SR_EDENIED && strstr(err.message, "changed while binding"))
			refused++;
		else if (err.sys_errno == ELOOP || err.sys_errno == ENOENT)
			bind_link++;
		else if (bind_other++ == 0 && first_other[0] == '\0')
			snprintf(first_other, sizeof(first_other), "%s", err.message);
		sr_socket_free(s); /* closing removes what bind made */
	}
	rec(r, 0, &err, ok);
	rec(r, 0, &err, link);
	rec(r, 0, &err, other);
	rec(r, 0, &err, bound);
	rec(r, 0, &err, refused);
	rec(r, 0, &err, bind_other);
	rec(r, 0, &err, bind_link);
	snprintf(r->o[0].text, sizeof(r->o[0].text), "%s", first_other);
}

START_TEST(a_flipped_link_never_leads_outside)
{
	struct child ch;
	struct report r;
	pthread_t flip_thread, accept_thread;
	char p[160];
	void *flips;
	DIR *dir;
	struct dirent *e;
	int strays = 0;

	ck_assert_int_eq(mkdir(at(p, sizeof(p), "%s/flip", t.spool), 0777), 0);
	ck_assert_int_eq(chmod(p, 0777), 0);
	race_inside = plain_unix(SOCK_STREAM, at(p, sizeof(p), "%s/flip/s.sock", t.spool));
	race_outside = plain_unix(SOCK_STREAM, at(p, sizeof(p), "%s/s.sock", t.outside));
	ck_assert_int_eq(chmod(t.outside, 0777), 0); /* a bind that escapes would land here */
	ck_assert_int_eq(symlink(t.outside, at(p, sizeof(p), "%s/flip.alt", t.spool)), 0);
	ck_assert_int_eq(fcntl(race_inside, F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(fcntl(race_outside, F_SETFL, O_NONBLOCK), 0);
	atomic_store(&race_stop, false);
	atomic_store(&inside_accepts, 0);
	atomic_store(&outside_accepts, 0);
	/* The child is forked before the threads start: a fork while another thread holds an
	 * allocator's lock (GCC 12's ASan allocator has no fork handler) leaves the child
	 * stuck in malloc. */
	child_start(&ch, NOBODY, NOBODY, child_race);
	child_wait_ready(&ch);
	ck_assert_int_eq(pthread_create(&accept_thread, NULL, acceptor, NULL), 0);
	ck_assert_int_eq(pthread_create(&flip_thread, NULL, flipper, NULL), 0);
	child_go(&ch);
	child_finish(&ch, &r);
	atomic_store(&race_stop, true);
	pthread_join(flip_thread, &flips);
	pthread_join(accept_thread, NULL);
	fprintf(stderr,
	        "race: %lu flips; connects %ld ok, %ld refused as links; binds %ld ok, %ld "
	        "refused as links, %ld refused after the fact; inside accepted %d\n",
	        (unsigned long)(uintptr_t)flips, r.o[0].value, r.o[1].value, r.o[3].value,
	        r.o[6].value, r.o[4].value, atomic_load(&inside_accepts));
	ck_assert_msg(r.o[2].value == 0 && r.o[5].value == 0, "unexpected failures: %s",
	              r.o[0].text);
	ck_assert_int_eq(atomic_load(&outside_accepts), 0);
	ck_assert_int_gt(r.o[0].value, 0); /* the race was real: both sides were seen */
	ck_assert_int_gt(r.o[1].value, 0);
	/* A bind that lost the race was refused and its socket shut down; the file the
	 * kernel made on the way is the client's own, where the client may create files. */
	ck_assert_ptr_nonnull(dir = opendir(t.outside));
	while ((e = readdir(dir)) != NULL) {
		struct stat st;

		if (e->d_name[0] == '.' || strcmp(e->d_name, "s.sock") == 0)
			continue;
		ck_assert_int_eq(fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW), 0);
		ck_assert_msg(st.st_uid == NOBODY, "%s owned by %u", e->d_name,
		              (unsigned)st.st_uid);
		strays++;
	}
	closedir(dir);
	fprintf(stderr, "race: %d files left outside by binds that lost the race\n", strays);
	ck_assert_int_le(strays, r.o[4].value);
	assert_daemon_serves(&test_daemon);
	close(race_inside);
	close(race_outside);
}
END_TEST

/* --- who the peer sees --- */

static char listen_path[100];

static void
child_peer(sr_client *c, struct report *r)
{
	char p[160];
	sr_error err;
	sr_socket *l, *a;

	c_conn(r, c, SOCK_STREAM, at(p, sizeof(p), "%s/ok.sock", t.spool)); /* 0 */
	l = c_socket(c, r, AF_UNIX, SOCK_STREAM);                           /* 1 */
	rec(r, sr_bind(l, 0, listen_path, &err), &err, 0);                  /* 2 */
	rec(r, sr_listen(l, 4, &err), &err, 0);                             /* 3 */
	c_send_to(r, c, at(p, sizeof(p), "%s/pass.sock", t.spool));         /* 4 */
	child_sync();
	a = sr_accept(l, &err);
	rec(r, a ? 0 : -1, &err, 0); /* 5 */
	if (a)
		c_echo(r, a, "hello"); /* 6 */
	sr_socket_free(a);
	sr_socket_free(l);
}

/* Reads text from fd (SO_PASSCRED set) and asserts the sender's credentials. */
static void
expect_passed_credentials(int fd, const char *text)
{
	char buf[64], control[CMSG_SPACE(sizeof(struct ucred))];
	struct iovec iov = {buf, strlen(text)};
	struct msghdr m = {.msg_iov = &iov,
	                   .msg_iovlen = 1,
	                   .msg_control = control,
	                   .msg_controllen = sizeof(control)};
	struct cmsghdr *cm;
	struct ucred uc;
	struct pollfd p = {.fd = fd, .events = POLLIN};

	ck_assert_int_eq(poll(&p, 1, 2000), 1);
	ck_assert_int_eq(recvmsg(fd, &m, MSG_WAITALL), (ssize_t)strlen(text));
	ck_assert_mem_eq(buf, text, strlen(text));
	cm = CMSG_FIRSTHDR(&m);
	ck_assert_ptr_nonnull(cm);
	ck_assert_int_eq(cm->cmsg_type, SCM_CREDENTIALS);
	memcpy(&uc, CMSG_DATA(cm), sizeof(uc));
	ck_assert_uint_eq(uc.uid, NOBODY);
	ck_assert_uint_eq(uc.gid, NOBODY);
}

START_TEST(peers_see_the_client)
{
	struct child ch;
	struct report r;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	gid_t groups[64];
	char p[160], buf[8];
	int ok, pass, fd, n_groups, one = 1;
	bool extra = false, root_group = false;

	ok = plain_unix(SOCK_STREAM, at(p, sizeof(p), "%s/ok.sock", t.spool));
	ck_assert_int_eq(setsockopt(ok, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
	pass = plain_unix(SOCK_DGRAM, at(p, sizeof(p), "%s/pass.sock", t.spool));
	ck_assert_int_eq(setsockopt(pass, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
	at(listen_path, sizeof(listen_path), "%s/listener.sock", t.spool);
	g_extra_gid = EXTRA_GID;
	child_start(&ch, NOBODY, NOBODY, child_peer);
	child_wait_ready(&ch);
	/* The brokered connection to a server of ours carries the client's credentials. */
	ck_assert_int_ge(fd = accept_within(ok, 1000), 0);
	ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len), 0);
	ck_assert_uint_eq(cred.uid, NOBODY);
	ck_assert_uint_eq(cred.gid, NOBODY);
	len = sizeof(groups);
	ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len), 0);
	n_groups = (int)(len / sizeof(gid_t));
	for (int i = 0; i < n_groups; i++) {
		extra |= groups[i] == EXTRA_GID;
		root_group |= groups[i] == 0;
	}
	ck_assert(extra);
	ck_assert(!root_group);
	/* The bytes it sent carry the client's credentials too (SCM_CREDENTIALS). */
	expect_passed_credentials(fd, "hi");
	close(fd);
	/* The brokered listener's file and its credentials are the client's, too. */
	ck_assert_int_eq(stat(listen_path, &st), 0);
	ck_assert_uint_eq(st.st_uid, NOBODY);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", listen_path);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	len = sizeof(cred);
	ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len), 0);
	ck_assert_uint_eq(cred.uid, NOBODY);
	ck_assert_uint_eq(cred.gid, NOBODY);
	child_go(&ch);
	ck_assert_int_eq(recv(fd, buf, 5, MSG_WAITALL), 5);
	ck_assert_int_eq(send(fd, buf, 5, MSG_NOSIGNAL), 5);
	child_finish(&ch, &r);
	for (int i = 0; i <= 6; i++)
		assert_ok(&r, i);
	ck_assert_str_eq(r.o[6].text, "hello");
	expect_passed_credentials(pass, "x");
	close(pass);
	close(fd);
	close(ok);
	/* The listener's file went with it. */
	ck_assert(!exists(listen_path));
}
END_TEST

/* --- another sockrpcd, and this one, reached through the spool --- */

static void
child_other_daemon(sr_client *c, struct report *r)
{
	char p[160];
	uint8_t frames[512];
	size_t n;
	sr_error err;
	sr_socket *s;
	Sockrpc__HelloRequest hello = SOCKRPC__HELLO_REQUEST__INIT;
	Sockrpc__SocketRequest sock = SOCKRPC__SOCKET_REQUEST__INIT;

	c_conn(r, c, SOCK_STREAM, at(p, sizeof(p), "%s/self.sock", t.spool)); /* 0 */
	s = c_socket(c, r, AF_UNIX, SOCK_STREAM);                             /* 1 */
	rec(r, sr_connect(s, at(p, sizeof(p), "%s/other.sock", t.spool), 0, 3000, &err), &err,
	    0); /* 2 */
	hello.major = SR_PROTOCOL_MAJOR;
	hello.minor = SR_PROTOCOL_MINOR;
	hello.client_name = "through the broker";
	sock.family = SOCKRPC__FAMILY__FAMILY_INET;
	sock.type = SOCKRPC__TYPE__TYPE_STREAM;
	n = rc_frame(frames, M_HELLO, 1, &hello.base);
	n += rc_frame(frames + n, M_SOCKET, 2, &sock.base);
	rec(r, sr_send(s, frames, n, 0, &err) == (long)n ? 0 : -1, &err, 0); /* 3 */
	child_sync(); /* the parent reads the other daemon's audit log */
	sr_socket_free(s);
}

START_TEST(another_sockrpcd_sees_the_client)
{
	struct daemon other;
	struct child ch;
	struct report r;
	char p[160], audit[160], text[8192];
	const char *args[] = {"--audit", audit, NULL};
	long long deadline;
	FILE *f;
	size_t n = 0;

	at(audit, sizeof(audit), "%s/other-audit.log", t.dir);
	daemon_start(&other, args);
	/* Both daemons' sockets, by another name (a hard link: the same file) in the spool. */
	ck_assert_int_eq(link(other.path, at(p, sizeof(p), "%s/other.sock", t.spool)), 0);
	ck_assert_int_eq(link(test_daemon.path, at(p, sizeof(p), "%s/self.sock", t.spool)), 0);
	child_start(&ch, NOBODY, NOBODY, child_other_daemon);
	child_wait_ready(&ch);
	/* The other daemon (embedded policy: root only) must see uid 65534 and refuse. */
	deadline = now_ms() + 3000;
	while (now_ms() < deadline) {
		if ((f = fopen(audit, "r")) != NULL) {
			n = fread(text, 1, sizeof(text) - 1, f);
			fclose(f);
			text[n] = '\0';
			if (strstr(text, "\"op\":\"create\""))
				break;
		}
		sleep_ms(20);
	}
	child_go(&ch);
	child_finish(&ch, &r);
	assert_fail(&r, 0, SR_EDENIED, "sockrpcd's own socket");
	assert_ok(&r, 1);
	assert_ok(&r, 2);
	assert_ok(&r, 3);
	ck_assert_msg(strstr(text, "\"uid\":65534") && strstr(text, "\"decision\":\"deny\""),
	              "other daemon's audit: %s", text);
	ck_assert_msg(strstr(text, "\"uid\":0,") == NULL, "other daemon's audit: %s", text);
	ck_assert_int_eq(daemon_wait_fds(&other, other.idle_fds, HARNESS_IDLE_MS), other.idle_fds);
	daemon_stop(&other);
}
END_TEST

/* --- SO_REUSEPORT and SO_REUSEADDR --- */

static int reuse_port;

/* A plain socket of type on 127.0.0.1:*port (0: ephemeral, set) with the option set. */
static int
plain_inet(int type, int option, int *port, bool do_listen)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0), one = 1;

	ck_assert_int_ne(fd, -1);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (option)
		ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, option, &one, sizeof(one)), 0);
	ck_assert_msg(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0, "bind: %s",
	              strerror(errno));
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	if (do_listen)
		ck_assert_int_eq(listen(fd, 8), 0);
	return fd;
}

static int reuse_type = SOCK_STREAM, reuse_option = SO_REUSEPORT;

/* In a child: a socket of reuse_type with reuse_option, bound to reuse_port, listening
 * if a stream; outcomes: create, option, bind[, listen]. Keeps it until told to go. */
static void
child_share_port(sr_client *c, struct report *r)
{
	sr_error err;
	sr_socket *s = c_socket(c, r, AF_INET, reuse_type);

	rec(r, sr_set_option(s, reuse_option, 1, &err), &err, 0);
	if (rec(r, sr_bind(s, reuse_port, "127.0.0.1", &err), &err, 0) == 0 &&
	    reuse_type == SOCK_STREAM)
		rec(r, sr_listen(s, 4, &err), &err, 0);
	child_sync();
	sr_socket_free(s);
}

static void
share_port_as(uid_t uid, int type, int port, struct report *r)
{
	struct child ch;

	reuse_type = type;
	reuse_port = port;
	child_start(&ch, uid, uid, child_share_port);
	child_wait_ready(&ch);
	child_go(&ch);
	child_finish(&ch, r);
}

START_TEST(reuseport_cannot_take_another_owners_port)
{
	struct child owner;
	struct report r, mine;
	int type, port, fd;

	reuse_option = SO_REUSEPORT;
	for (int k = 0; k < 2; k++) {
		type = k == 0 ? SOCK_STREAM : SOCK_DGRAM;
		/* Root's own service, outside the broker. */
		port = 0;
		fd = plain_inet(type, SO_REUSEPORT, &port, type == SOCK_STREAM);
		share_port_as(NOBODY, type, port, &r);
		assert_ok(&r, 0);
		assert_ok(&r, 1);
		assert_fail(&r, 2, SR_EOS, "Address already in use");
		close(fd);
		/* Another uid's brokered socket. */
		port = 0;
		fd = plain_inet(type, 0, &port, false);
		close(fd); /* a free port */
		reuse_type = type;
		reuse_port = port;
		child_start(&owner, OTHER_UID, OTHER_UID, child_share_port);
		child_wait_ready(&owner);
		share_port_as(NOBODY, type, port, &r);
		assert_fail(&r, 2, SR_EOS, "Address already in use");
		/* The same uid shares its own port, as it would directly. */
		share_port_as(OTHER_UID, type, port, &mine);
		for (int i = 0; i < mine.n; i++)
			assert_ok(&mine, i);
		child_go(&owner);
		child_finish(&owner, &r);
		for (int i = 0; i < r.n; i++)
			assert_ok(&r, i);
	}
}
END_TEST

/* What uid 65534 gets binding port with SO_REUSEADDR directly: 0 or errno. */
static int
direct_bind(int type, int port)
{
	pid_t pid = fork();
	int status;

	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		int one = 1, fd;

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
		    setresuid(NOBODY, NOBODY, NOBODY))
			_exit(255);
		fd = socket(AF_INET, type, 0);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		_exit(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 ? 0 : errno);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) != 255);
	return WEXITSTATUS(status);
}

START_TEST(reuseaddr_gives_no_more_than_directly)
{
	static const struct {
		int type;
		bool listening;
	} cases[] = {{SOCK_DGRAM, false}, {SOCK_STREAM, false}, {SOCK_STREAM, true}};
	struct report r;

	reuse_option = SO_REUSEADDR;
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		int port = 0,
		    fd = plain_inet(cases[k].type, SO_REUSEADDR, &port, cases[k].listening);
		int direct = direct_bind(cases[k].type, port);

		share_port_as(NOBODY, cases[k].type, port, &r);
		fprintf(stderr,
		        "SO_REUSEADDR on root's %s%s port, uid 65534: directly %s, brokered %s\n",
		        cases[k].type == SOCK_DGRAM ? "UDP" : "TCP",
		        cases[k].listening ? " listening" : "", direct ? strerror(direct) : "bound",
		        r.o[2].code ? r.o[2].msg : "bound");
		assert_ok(&r, 1);
		if (direct == 0)
			assert_ok(&r, 2);
		else
			ck_assert_msg(r.o[2].code == SR_EOS && strstr(r.o[2].msg, strerror(direct)),
			              "case %zu: directly %s, brokered %d %s", k, strerror(direct),
			              r.o[2].code, r.o[2].msg);
		close(fd);
	}
}
END_TEST

/* --- a bound socket file goes with its socket, and only that file --- */

static void
child_rebind(sr_client *c, struct report *r)
{
	char p[160], q[160];
	sr_error err;
	sr_socket *s;

	at(p, sizeof(p), "%s/again.sock", t.spool);
	for (int i = 0; i < 3; i++) {
		s = c_socket(c, r, AF_UNIX, i == 2 ? SOCK_DGRAM : SOCK_STREAM);
		rec(r, sr_bind(s, 0, p, &err), &err, 0);
		if (i == 0)
			child_sync(); /* the parent looks at the file */
		sr_socket_free(s);
	}
	s = c_socket(c, r, AF_UNIX, SOCK_STREAM);
	rec(r, sr_bind(s, 0, at(q, sizeof(q), "%s/replaced.sock", t.spool), &err), &err, 0);
	child_sync(); /* the parent puts another file in its place */
	sr_socket_free(s);
	s = c_socket(c, r, AF_UNIX, SOCK_STREAM);
	/* The spelling does not matter: the file is removed by what bind made. */
	rec(r, sr_bind(s, 0, at(q, sizeof(q), "%s/./x/../odd.sock", t.spool), &err), &err, 0);
	child_sync();
	sr_socket_free(s);
}

START_TEST(bound_file_removed_on_close_and_only_it)
{
	struct child ch;
	struct report r;
	struct stat st;
	char p[160], q[160];
	int fd;

	child_start(&ch, NOBODY, NOBODY, child_rebind);
	child_wait_ready(&ch);
	ck_assert_int_eq(stat(at(p, sizeof(p), "%s/again.sock", t.spool), &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_uid, NOBODY);
	child_go(&ch);
	child_wait_ready(&ch);
	/* Someone else's file now has the name: closing must leave it. */
	at(p, sizeof(p), "%s/replaced.sock", t.spool);
	at(q, sizeof(q), "%s/replacement", t.spool);
	ck_assert_int_ge(fd = open(q, O_CREAT | O_WRONLY | O_CLOEXEC, 0644), 0);
	close(fd);
	ck_assert_int_eq(rename(q, p), 0);
	child_go(&ch);
	child_wait_ready(&ch);
	ck_assert(exists(at(q, sizeof(q), "%s/odd.sock", t.spool)));
	child_go(&ch);
	child_finish(&ch, &r);
	for (int i = 0; i < r.n; i++)
		assert_ok(&r, i);
	ck_assert_int_eq(r.n, 10);
	ck_assert(!exists(at(q, sizeof(q), "%s/again.sock", t.spool)));
	ck_assert(!exists(at(q, sizeof(q), "%s/odd.sock", t.spool)));
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
}
END_TEST

/* --- a daemon without root cannot act as its clients: it says so --- */

static void
child_dropped(sr_client *c, struct report *r)
{
	char p[160];
	sr_error err;
	sr_socket *s = c_socket(c, r, AF_INET, SOCK_STREAM);

	rec(r, sr_set_option(s, SO_REUSEPORT, 1, &err), &err, 0);           /* 1 */
	rec(r, sr_set_option(s, SO_REUSEADDR, 1, &err), &err, 0);           /* 2 */
	c_conn(r, c, SOCK_STREAM, at(p, sizeof(p), "%s/ok.sock", t.spool)); /* 3 */
	c_bind(r, c, at(p, sizeof(p), "%s/dropped.sock", t.spool));         /* 4 */
	c_send_to(r, c, at(p, sizeof(p), "%s/ok.sock", t.spool));           /* 5 */
	sr_socket_free(s);
}

START_TEST(a_daemon_without_root_refuses_to_lend_its_identity)
{
	const char *args[] = {"--policy", t.policy, NULL};
	struct daemon root = test_daemon;
	struct report r;
	char p[160];
	int ok;

	if (!sockrpc_user_acquire("a_daemon_without_root_refuses_to_lend_its_identity"))
		return;
	ok = plain_unix(SOCK_STREAM, at(p, sizeof(p), "%s/ok.sock", t.spool));
	/* Started as `sockrpc` (no split: nothing privileged to split off), which must
	 * read the policy. */
	ck_assert_int_eq(chmod(t.dir, 0755), 0);
	ck_assert_int_eq(chmod(t.policy, 0644), 0);
	setenv("SOCKRPC_TEST_DAEMON_USER", "sockrpc", 1);
	daemon_start(&test_daemon, args);
	unsetenv("SOCKRPC_TEST_DAEMON_USER");
	ck_assert_int_eq(chmod(test_daemon.dir, 0755), 0);
	run_as(NOBODY, NOBODY, child_dropped, &r);
	assert_ok(&r, 0);
	assert_fail(&r, 1, SR_EDENIED, "cannot carry uid 65534");
	assert_ok(&r, 2);
	assert_fail(&r, 3, SR_EDENIED, "cannot act as uid 65534 for AF_UNIX");
	assert_fail(&r, 4, SR_EDENIED, "runs without root");
	assert_fail(&r, 5, SR_EDENIED, "runs without root");
	ck_assert_int_eq(accept_within(ok, 0), -1);
	ck_assert(!exists(at(p, sizeof(p), "%s/dropped.sock", t.spool)));
	fixture_daemon_down();
	sockrpc_user_release();
	test_daemon = root;
	close(ok);
}
END_TEST

Suite *
identity_suite(void)
{
	Suite *s = suite_create("identity");
	TCase *tc = tcase_create("identity");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, dotdot_and_odd_spellings_stay_in_the_spool);
	tcase_add_test(tc, symbolic_links_are_never_followed);
	tcase_add_test(tc, a_flipped_link_never_leads_outside);
	tcase_add_test(tc, peers_see_the_client);
	tcase_add_test(tc, another_sockrpcd_sees_the_client);
	tcase_add_test(tc, reuseport_cannot_take_another_owners_port);
	tcase_add_test(tc, reuseaddr_gives_no_more_than_directly);
	tcase_add_test(tc, bound_file_removed_on_close_and_only_it);
	tcase_add_test(tc, a_daemon_without_root_refuses_to_lend_its_identity);
	suite_add_tcase(s, tc);
	return s;
}
