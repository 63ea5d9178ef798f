/*
 * test_policy_escapes.c - policy escapes of issue 14 attacked through the real daemon by an
 * unprivileged uid (65534, 1000): every spelling of the unspecified address as a way to
 * loopback (item 3), options that need privilege when set directly (item 5), and the
 * fork/exec and descriptor-theft spoofs of exe= (item 6), whose outcome docs/policy.md
 * states. Servers listen on loopback only; nothing is sent anywhere else.
 */
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "as_user.h"
#include "harness.h"
#include "policy_env.h"
#include "rawcall.h"

#define NOBODY 65534
#define ALLOWED_EXE "/usr/bin/sleep" /* the program an exe= rule allows in these tests */

/* What children use (inherited at fork). */
static int g_tcp_port, g_udp_port, g_bind_port;

static void
env_setup(void)
{
	policy_env_setup("escapes", "0.0.0.0 zero.test\n"
	                            ":: zero6.test\n"
	                            "::ffff:0.0.0.0 zeromapped.test\n"
	                            "127.0.0.1 localhost\n"
	                            "::1 localhost\n");
}

/* A non-blocking UDP socket on the loopback of family, port 0: a trap for datagrams. */
static int
udp_trap(int family, int port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len = family == AF_INET ? sizeof(*sin) : sizeof(*sin6);
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	ck_assert_int_ne(fd, -1);
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = family;
	if (family == AF_INET) {
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin->sin_port = htons((uint16_t)port);
	} else {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		sin6->sin6_addr = in6addr_loopback;
		sin6->sin6_port = htons((uint16_t)port);
	}
	ck_assert_msg(bind(fd, (struct sockaddr *)&ss, len) == 0, "udp trap: %s", strerror(errno));
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	return fd;
}

static int
bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
	                                     : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* A non-blocking TCP listener on 127.0.0.2:port, to catch what the policy should stop. */
static int
tcp_trap_127_0_0_2(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	ck_assert_int_ne(fd, -1);
	inet_pton(AF_INET, "127.0.0.2", &sin.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ck_assert_msg(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0, "bind 127.0.0.2: %s",
	              strerror(errno));
	ck_assert_int_eq(listen(fd, 8), 0);
	return fd;
}

/* Datagrams waiting on a trap. */
static int
trap_count(int fd)
{
	char buf[64];
	int n = 0;

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
		n++;
	return n;
}

/* In a child: send_to, recorded. */
static void
c_send_to(struct report *r, sr_socket *s, const char *host, int port)
{
	sr_error err;

	if (s == NULL) {
		rec(r, -1, &(sr_error){.code = -1, .message = "no socket"}, 0);
		return;
	}
	rec(r, sr_send_to(s, host, port, "x", 1, 0, &err) == 1 ? 0 : -1, &err, 0);
}

/* --- item 3: the unspecified address is loopback --- */

static const char *const tcp4_spellings[] = {
    "0.0.0.0", "",           "*",      "zero.test",          "localhost", "localhost.",
    "127.1",   "2130706433", "0x7f.1", "[::ffff:127.0.0.1]", "127.0.0.1",
};
static const char *const tcp6_spellings[] = {
    "::",      "[::]",       "::ffff:0.0.0.0",  "[::ffff:127.0.0.1]",
    "0.0.0.0", "zero6.test", "zeromapped.test", "localhost",
    "::1",
};
/* (0.0.0.1 and the rest of 0/8 are left to the unit tests: were the fix undone, the kernel
 * might route them off this machine.) */
static const char *const udp4_spellings[] = {"0.0.0.0", "zero.test", "", "127.0.0.1"};
static const char *const udp6_spellings[] = {"::", "::ffff:0.0.0.0", "zero6.test", "::1"};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void
child_tcp4_spellings(sr_client *c, struct report *r)
{
	sr_socket *s = c_socket(c, r, AF_INET, SOCK_STREAM);

	for (size_t i = 0; i < N(tcp4_spellings); i++)
		c_connect(r, s, tcp4_spellings[i], g_tcp_port);
	sr_socket_free(s);
}

static void
child_tcp6_spellings(sr_client *c, struct report *r)
{
	sr_socket *s = c_socket(c, r, AF_INET6, SOCK_STREAM);

	for (size_t i = 0; i < N(tcp6_spellings); i++)
		c_connect(r, s, tcp6_spellings[i], g_tcp_port);
	sr_socket_free(s);
}

static void
child_udp_spellings(sr_client *c, struct report *r)
{
	sr_socket *u4 = c_socket(c, r, AF_INET, SOCK_DGRAM);
	sr_socket *u6 = c_socket(c, r, AF_INET6, SOCK_DGRAM);
	sr_socket *uc = c_socket(c, r, AF_INET, SOCK_DGRAM);

	for (size_t i = 0; i < N(udp4_spellings); i++)
		c_send_to(r, u4, udp4_spellings[i], g_udp_port);
	for (size_t i = 0; i < N(udp6_spellings); i++)
		c_send_to(r, u6, udp6_spellings[i], g_udp_port);
	/* a connected datagram socket is decided at connect */
	c_connect(r, uc, "0.0.0.0", g_udp_port);
	sr_socket_free(u4);
	sr_socket_free(u6);
	sr_socket_free(uc);
}

/* Fails as refused by the policy's loopback rule, or as an address that is not one. */
static void
assert_stopped(const struct report *r, int i, const char *what)
{
	ck_assert_msg(r->o[i].code != 0, "%s: allowed", what);
	if (r->o[i].code == SR_EDENIED)
		ck_assert_msg(strstr(r->o[i].msg, "loopback is off limits") != NULL, "%s: %s", what,
		              r->o[i].msg);
	else
		ck_assert_msg(r->o[i].code == SR_EINVAL || r->o[i].code == SR_EOS,
		              "%s: code %d: %s", what, r->o[i].code, r->o[i].msg);
}

START_TEST(unspecified_address_does_not_reach_loopback)
{
	struct server srv;
	struct report r;
	int trap4, trap6;

	server_start(&srv, AF_UNSPEC, SERVER_ECHO, 0);
	g_tcp_port = srv.port;
	trap4 = udp_trap(AF_INET, 0);
	g_udp_port = bound_port(trap4);
	trap6 = udp_trap(AF_INET6, g_udp_port);
	write_policy("allow uid=0 *\n"
	             "allow uid=%d create tcp,udp\n"
	             "deny uid=%d connect,send @loopback reason \"loopback is off limits\"\n"
	             "allow uid=%d connect,send @any\n",
	             NOBODY, NOBODY, NOBODY);
	policy_daemon_start(true, NULL);

	run_as(NOBODY, NOBODY, child_tcp4_spellings, &r);
	ck_assert_int_eq(r.open_code, 0);
	ck_assert_int_eq(r.n, 1 + (int)N(tcp4_spellings));
	assert_ok(&r, 0);
	for (size_t i = 0; i < N(tcp4_spellings); i++)
		assert_stopped(&r, 1 + (int)i, tcp4_spellings[i]);
	/* the exact answers where they are certain */
	assert_fail(&r, 1, SR_EDENIED, "connect to 0.0.0.0:", "loopback is off limits");
	assert_fail(&r, 2, SR_EDENIED, "loopback is off limits");
	assert_fail(&r, 3, SR_EDENIED, "loopback is off limits");
	assert_fail(&r, 4, SR_EDENIED, "connect to zero.test:", "loopback is off limits");
	assert_fail(&r, 5, SR_EDENIED, "loopback is off limits");
	assert_fail(&r, 7, SR_EINVAL, "127.1");
	assert_fail(&r, 8, SR_EINVAL, "2130706433");
	assert_fail(&r, 10, SR_EINVAL, "not an IPv4 address");
	assert_fail(&r, 11, SR_EDENIED, "loopback is off limits");

	run_as(NOBODY, NOBODY, child_tcp6_spellings, &r);
	ck_assert_int_eq(r.open_code, 0);
	ck_assert_int_eq(r.n, 1 + (int)N(tcp6_spellings));
	assert_ok(&r, 0);
	for (size_t i = 0; i < N(tcp6_spellings); i++) {
		ck_assert_msg(r.o[1 + i].code == SR_EDENIED, "%s: code %d: %s", tcp6_spellings[i],
		              r.o[1 + i].code, r.o[1 + i].msg);
		assert_stopped(&r, 1 + (int)i, tcp6_spellings[i]);
	}

	run_as(NOBODY, NOBODY, child_udp_spellings, &r);
	ck_assert_int_eq(r.open_code, 0);
	ck_assert_int_eq(r.n, 3 + (int)N(udp4_spellings) + (int)N(udp6_spellings) + 1);
	for (int i = 0; i < 3; i++)
		assert_ok(&r, i);
	for (int i = 3; i < r.n; i++) {
		ck_assert_msg(r.o[i].code == SR_EDENIED, "udp %d: code %d: %s", i, r.o[i].code,
		              r.o[i].msg);
		assert_stopped(&r, i, "udp");
	}

	/* Nothing arrived on either loopback. */
	sleep_ms(100);
	ck_assert_int_eq(atomic_load(&srv.accepted), 0);
	ck_assert_int_eq(trap_count(trap4), 0);
	ck_assert_int_eq(trap_count(trap6), 0);
	close(trap4);
	close(trap6);
	server_stop(&srv);
	assert_daemon_serves(&test_daemon);
	policy_daemon_finish();
}
END_TEST

static void
child_unspecified_allowed(sr_client *c, struct report *r)
{
	sr_socket *a = c_socket(c, r, AF_INET, SOCK_STREAM);  /* 0 */
	sr_socket *b = c_socket(c, r, AF_INET6, SOCK_STREAM); /* 1 */
	sr_socket *m = c_socket(c, r, AF_INET6, SOCK_STREAM); /* 2 */
	sr_socket *u = c_socket(c, r, AF_INET, SOCK_DGRAM);   /* 3 */
	sr_socket *l = c_socket(c, r, AF_INET6, SOCK_STREAM); /* 4 */
	sr_socket *k = c_socket(c, r, AF_INET6, SOCK_STREAM); /* 5 */
	sr_socket *n = c_socket(c, r, AF_INET, SOCK_STREAM);  /* 6 */
	sr_error err;

	/* bind: ::ffff:127.0.0.1 on a v6 socket binds the IPv4 127.0.0.1. First, before the
	 * connects below take ephemeral ports, one of which could be g_bind_port. */
	rec(r, sr_bind(l, g_bind_port, "::ffff:127.0.0.1", &err), &err, 0); /* 7 */
	rec(r, sr_listen(l, 4, &err), &err, 0);                             /* 8 */
	rec(r, sr_bind(k, 0, "::1", &err), &err, 0);                        /* 9 */
	c_connect(r, a, "0.0.0.0", g_tcp_port);                             /* 10 */
	c_echo(r, a, "v4");                                                 /* 11 */
	c_connect(r, b, "::", g_tcp_port);                                  /* 12 */
	c_echo(r, b, "v6");                                                 /* 13 */
	c_connect(r, m, "::ffff:0.0.0.0", g_tcp_port);                      /* 14 */
	c_echo(r, m, "mapped");                                             /* 15 */
	c_send_to(r, u, "0.0.0.0", g_udp_port);                             /* 16 */
	/* Bound to 127.0.0.2, 0.0.0.0 would reach 127.0.0.2: the daemon connects to the
	 * 127.0.0.1 it checked instead. */
	sr_set_option(n, SO_RCVTIMEO, 2000, &err);         /* a trap never answers */
	rec(r, sr_bind(n, 0, "127.0.0.2", &err), &err, 0); /* 17 */
	c_connect(r, n, "0.0.0.0", g_tcp_port);            /* 18 */
	c_echo(r, n, "bound");                             /* 19 */

	child_sync(); /* the parent connects to 127.0.0.1:g_bind_port directly */
	sr_socket_free(a);
	sr_socket_free(b);
	sr_socket_free(m);
	sr_socket_free(u);
	sr_socket_free(l);
	sr_socket_free(k);
	sr_socket_free(n);
}

/* A rule on 127.0.0.1 or ::1 covers the unspecified address, which then really reaches
 * loopback (the daemon connects to what it checked). */
START_TEST(unspecified_address_is_matched_and_used_as_loopback)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct server srv;
	struct report r;
	struct child ch;
	int trap4, trap2, fd, direct_errno;

	server_start(&srv, AF_UNSPEC, SERVER_ECHO, 0);
	g_tcp_port = srv.port;
	trap4 = udp_trap(AF_INET, 0);
	g_udp_port = bound_port(trap4);
	/* A free TCP port for the bind: one TIME_WAIT of an earlier test does not hold. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	g_bind_port = bound_port(fd);
	close(fd);
	trap2 = tcp_trap_127_0_0_2(g_tcp_port);
	write_policy("allow uid=0 *\n"
	             "allow uid=%d create tcp,udp\n"
	             "allow uid=%d connect tcp 127.0.0.1 port %d\n"
	             "allow uid=%d connect tcp [::1]:%d\n"
	             "allow uid=%d send udp 127.0.0.1 port %d\n"
	             "allow uid=%d bind,listen tcp 127.0.0.0/8\n"
	             "allow uid=%d option\n",
	             NOBODY, NOBODY, g_tcp_port, NOBODY, g_tcp_port, NOBODY, g_udp_port, NOBODY,
	             NOBODY);
	policy_daemon_start(true, NULL);

	child_start(&ch, NOBODY, NOBODY, child_unspecified_allowed);
	child_wait_ready(&ch);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)g_bind_port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	direct_errno = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 ? 0 : errno;
	close(fd);
	child_go(&ch);
	child_finish(&ch, &r);
	ck_assert_int_eq(r.open_code, 0);
	ck_assert_int_eq(r.n, 20);
	for (int i = 0; i <= 16; i++)
		if (i != 9)
			assert_ok(&r, i);
	ck_assert_msg(direct_errno == 0,
	              "IPv4 connect to the v6 socket bound to ::ffff:127.0.0.1: %s",
	              strerror(direct_errno));
	ck_assert_str_eq(r.o[11].text, "v4");
	ck_assert_str_eq(r.o[13].text, "v6");
	ck_assert_str_eq(r.o[15].text, "mapped");
	assert_fail(&r, 9, SR_EDENIED, "bind to", "(default)");
	for (int i = 17; i <= 19; i++)
		assert_ok(&r, i);
	ck_assert_str_eq(r.o[19].text, "bound");
	fd = accept(trap2, NULL, NULL);
	ck_assert_msg(fd == -1 && errno == EAGAIN, "a connection reached 127.0.0.2");
	close(trap2);
	ck_assert_int_eq(atomic_load(&srv.accepted), 4);
	sleep_ms(50);
	ck_assert_int_eq(trap_count(trap4), 1);
	close(trap4);
	server_stop(&srv);
	policy_daemon_finish();
}
END_TEST

/* --- item 5: options that need privilege when set directly --- */

static int
set_result(sr_socket *s, struct report *r, int option, long value)
{
	sr_error err;

	return rec(r, s ? sr_set_option(s, option, value, &err) : -1,
	           s ? &err : &(sr_error){.code = -1, .message = "no socket"}, 0);
}

/* Records a direct setsockopt by this uid: 0, or -errno. */
static void
direct_set(struct report *r, int option, int value)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc = setsockopt(fd, SOL_SOCKET, option, &value, sizeof(value));

	rec(r, 0, NULL, rc == 0 ? 0 : -errno);
	close(fd);
}

static void
child_options(sr_client *c, struct report *r)
{
	sr_socket *s = c_socket(c, r, AF_INET, SOCK_STREAM); /* 0 */
	long v = -1;
	sr_error err;
	int rc;

	set_result(s, r, SO_DEBUG, 0);     /* 1 */
	set_result(s, r, SO_DEBUG, 1);     /* 2 */
	set_result(s, r, SO_REUSEADDR, 0); /* 3 */
	set_result(s, r, SO_REUSEADDR, 1); /* 4 */
	set_result(s, r, SO_REUSEPORT, 1); /* 5 */
	set_result(s, r, SO_KEEPALIVE, 1); /* 6 */
	rc = sr_get_option(s, SO_DEBUG, &v, &err);
	rec(r, rc, &err, v); /* 7 */
	rc = sr_get_option(s, SO_REUSEADDR, &v, &err);
	rec(r, rc, &err, v); /* 8 */
	/* what this uid gets without the broker */
	direct_set(r, SO_DEBUG, 1);     /* 9 */
	direct_set(r, SO_PRIORITY, 6);  /* 10 */
	direct_set(r, SO_PRIORITY, 7);  /* 11 */
	direct_set(r, SO_MARK, 1);      /* 12 */
	direct_set(r, SO_REUSEADDR, 1); /* 13 */
	sr_socket_free(s);
}

START_TEST(privileged_options_need_a_rule_naming_them)
{
	char out[4096], err[4096];
	struct report r;
	int rc;

	write_policy("allow uid=0 *\n"
	             "allow uid=%d *\n"
	             "allow uid=1000 create tcp\n"
	             "allow uid=1000 option *\n"
	             "allow uid=1000 option SO_DEBUG,SO_REUSEADDR\n",
	             NOBODY);
	policy_daemon_start(true, NULL);

	/* `allow uid=65534 *` grants every option but the privileged ones. */
	run_as(NOBODY, NOBODY, child_options, &r);
	ck_assert_int_eq(r.open_code, 0);
	ck_assert_int_eq(r.n, 14);
	assert_ok(&r, 0);
	assert_ok(&r, 1);
	assert_fail(&r, 2, SR_EDENIED, "setting SO_DEBUG denied by policy (default)",
	            "SO_DEBUG 1 needs CAP_NET_ADMIN", "only a rule naming SO_DEBUG allows it");
	/* Port sharing is checked by the kernel against the socket's owner, the client. */
	for (int i = 3; i <= 7; i++)
		assert_ok(&r, i);
	ck_assert_int_eq(r.o[7].value, 0); /* the refused option was not set */
	ck_assert_int_ne(r.o[8].value, 0);
	/* The broker now answers as the kernel does to this uid directly. */
	ck_assert_int_eq(r.o[9].value, -EACCES);
	ck_assert_int_eq(r.o[10].value, 0);
	ck_assert_int_eq(r.o[11].value, -EPERM);
	ck_assert_int_eq(r.o[12].value, -EPERM);
	ck_assert_int_eq(r.o[13].value, 0);

	/* A rule naming the options grants them, and only them. */
	run_as(1000, 1000, child_options, &r);
	ck_assert_int_eq(r.open_code, 0);
	ck_assert_int_eq(r.n, 14);
	for (int i = 0; i <= 6; i++)
		assert_ok(&r, i);
	ck_assert_int_eq(r.o[7].value, 1); /* SO_DEBUG really set, by the daemon */
	ck_assert_int_ne(r.o[8].value, 0);

	/* SO_PRIORITY has no wire value yet; the policy's answer, from the daemon binary. */
	rc = run_sockrpcd(out, sizeof(out), err, sizeof(err), "--explain", "--policy", env.policy,
	                  "uid=65534", "option", "SO_PRIORITY", "6", NULL);
	ck_assert_msg(rc == 0, "SO_PRIORITY 6: exit %d: %s%s", rc, out, err);
	rc = run_sockrpcd(out, sizeof(out), err, sizeof(err), "--explain", "--policy", env.policy,
	                  "uid=65534", "option", "SO_PRIORITY", "7", NULL);
	ck_assert_msg(rc == 1, "SO_PRIORITY 7: exit %d: %s%s", rc, out, err);
	ck_assert_msg(strstr(out, "only a rule naming SO_PRIORITY allows it") != NULL, "%s", out);
	rc = run_sockrpcd(out, sizeof(out), err, sizeof(err), "--check-policy", env.policy, NULL);
	ck_assert_msg(rc == 0, "check: exit %d: %s%s", rc, out, err);
	ck_assert_msg(strstr(err, ":2: note: allows no privileged option") != NULL, "%s", err);
	ck_assert_msg(strstr(err, ":4: note: allows no privileged option") != NULL, "%s", err);
	ck_assert_msg(strstr(err, ":5:") == NULL, "%s", err);
	assert_daemon_serves(&test_daemon);
	policy_daemon_finish();
}
END_TEST

/* --- item 6: exe= is read once, at accept --- */

/* Waits until /proc/pid/exe is want; true if within timeout_ms. */
static bool
wait_exe(pid_t pid, const char *want, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	char path[64], exe[256];

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	for (;;) {
		ssize_t k = readlink(path, exe, sizeof(exe) - 1);

		if (k > 0) {
			exe[k] = '\0';
			if (strcmp(exe, want) == 0)
				return true;
		}
		if (now_ms() > deadline)
			return false;
		sleep_ms(2);
	}
}

/* What the attacker's child reports: Hello's and the create's status codes. */
struct spoof_result {
	int hello_code;
	int create_code;
	pid_t exec_pid;
};

static void
drop_to(uid_t uid)
{
	gid_t g = (gid_t)uid;

	if (setgroups(1, &g) != 0 || setresgid(g, g, g) != 0 || setresuid(uid, uid, uid) != 0)
		_exit(4);
	prctl(PR_SET_DUMPABLE, 1);
}

/*
 * The attack of the issue, as uid 65534: connect to the daemon; fork a child that keeps
 * the descriptor; exec the program an exe= rule allows in the parent; the child speaks.
 * hello_first: the attacker's session says Hello (so the daemon has accepted) before the
 * exec; otherwise the child says it afterwards. `ready` gets a byte once the exec is done
 * and the child waits for a byte on `go` before speaking (the test may resume a paused
 * daemon meanwhile). The result comes back on `result`.
 */
static pid_t
spoof_start(bool hello_first, int ready, int go, int result)
{
	pid_t attacker = fork();

	ck_assert_int_ne(attacker, -1);
	if (attacker == 0) {
		int fd;
		pid_t child;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		drop_to(NOBODY);
		fd = raw_connect(test_daemon.path);
		if (hello_first) {
			Sockrpc__HelloRequest hello = SOCKRPC__HELLO_REQUEST__INIT;

			hello.major = SR_PROTOCOL_MAJOR;
			hello.client_name = "spoof";
			raw_send(fd, M_HELLO, 1, &hello.base);
			if (rc_expect(fd, 1, 0) == NULL)
				_exit(6);
		}
		child = fork();
		if (child == -1)
			_exit(5);
		if (child == 0) {
			struct spoof_result res = {.hello_code = 0, .exec_pid = getppid()};
			Sockrpc__HelloRequest hello = SOCKRPC__HELLO_REQUEST__INIT;
			Sockrpc__SocketRequest sq = SOCKRPC__SOCKET_REQUEST__INIT;
			ProtobufCMessage *m;
			uint64_t id;
			char b = 'r';

			if (!wait_exe(res.exec_pid, ALLOWED_EXE, CHILD_MS))
				_exit(7);
			if (write(ready, &b, 1) != 1 || read(go, &b, 1) != 1)
				_exit(8);
			if (!hello_first) {
				hello.major = SR_PROTOCOL_MAJOR;
				hello.client_name = "spoof";
				raw_send(fd, M_HELLO, 1, &hello.base);
				m = rc_reply(fd, &id, NULL, 5000);
				res.hello_code = m ? rc_code(m) : -1;
				if (m)
					protobuf_c_message_free_unpacked(m, NULL);
			}
			sq.family = SOCKRPC__FAMILY__FAMILY_INET;
			sq.type = SOCKRPC__TYPE__TYPE_STREAM;
			raw_send(fd, M_SOCKET, 2, &sq.base);
			m = rc_reply(fd, &id, NULL, 5000);
			res.create_code = m ? rc_code(m) : -1;
			if (m)
				protobuf_c_message_free_unpacked(m, NULL);
			if (write(result, &res, sizeof(res)) != sizeof(res))
				_exit(9);
			close(fd);
			_exit(0);
		}
		/* The parent: become the allowed program, keeping the connection open. */
		execl(ALLOWED_EXE, "sleep", "5", (char *)NULL);
		_exit(127);
	}
	return attacker;
}

static struct spoof_result
spoof(bool hello_first, bool pause_daemon)
{
	struct spoof_result res = {-2, -2, 0};
	int ready[2], go[2], result[2];
	struct pollfd p;
	pid_t attacker;
	char b;

	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(go), 0);
	ck_assert_int_eq(pipe(result), 0);
	/* A daemon busy with other clients accepts late; SIGSTOP makes "late" certain. */
	if (pause_daemon)
		ck_assert_int_eq(kill(test_daemon.pid, SIGSTOP), 0);
	attacker = spoof_start(hello_first, ready[1], go[0], result[1]);
	p = (struct pollfd){.fd = ready[0], .events = POLLIN};
	ck_assert_msg(poll(&p, 1, CHILD_MS) == 1, "the attacker did not exec");
	ck_assert_int_eq(read(ready[0], &b, 1), 1);
	if (pause_daemon)
		ck_assert_int_eq(kill(test_daemon.pid, SIGCONT), 0);
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	p = (struct pollfd){.fd = result[0], .events = POLLIN};
	ck_assert_msg(poll(&p, 1, CHILD_MS) == 1, "the attacker's child did not report");
	ck_assert_int_eq(read(result[0], &res, sizeof(res)), (ssize_t)sizeof(res));
	kill(attacker, SIGKILL);
	waitpid(attacker, NULL, 0);
	for (int i = 0; i < 2; i++) {
		close(ready[i]);
		close(go[i]);
		close(result[i]);
	}
	return res;
}

START_TEST(exe_spoof_by_fork_and_exec)
{
	struct spoof_result res;
	char out[4096], err[4096], *audit;
	int rc;

	write_policy("allow uid=0 *\n"
	             "allow uid=%d exe=" ALLOWED_EXE " create tcp\n",
	             NOBODY);
	policy_daemon_start(true, NULL);

	/* The daemon read /proc/PID/exe at accept, before the exec: the spoof fails. */
	res = spoof(true, false);
	ck_assert_int_eq(res.hello_code, 0);
	ck_assert_int_eq(res.create_code, SR_EDENIED);

	/* The exec done before the daemon accepts: the spoof wins, with the allowed exe. */
	res = spoof(false, true);
	ck_assert_int_eq(res.hello_code, 0);
	ck_assert_int_eq(res.create_code, 0);
	audit = NULL;
	audit_settle();
	{
		FILE *f = fopen(env.audit, "r");
		char line[2048];
		char want[64];

		ck_assert_ptr_nonnull(f);
		snprintf(want, sizeof(want), "\"pid\":%d,\"exe\":\"" ALLOWED_EXE "\"",
		         (int)res.exec_pid);
		while (fgets(line, sizeof(line), f) != NULL)
			if (strstr(line, want) && strstr(line, "\"decision\":\"allow\""))
				audit = strdup(line);
		fclose(f);
	}
	ck_assert_msg(audit != NULL, "no allow for pid %d as " ALLOWED_EXE " in the audit",
	              (int)res.exec_pid);
	free(audit);

	/* --check-policy says so, and the file stays valid. */
	rc = run_sockrpcd(out, sizeof(out), err, sizeof(err), "--check-policy", env.policy, NULL);
	ck_assert_msg(rc == 0, "exit %d: %s%s", rc, out, err);
	ck_assert_msg(strstr(err, ":2: warning: exe= does not confine a user who can run") != NULL,
	              "%s", err);
	assert_daemon_serves(&test_daemon);
	policy_daemon_finish();
}
END_TEST

#ifdef SYS_pidfd_getfd
/* In the thief: takes every socket of process `prog`; the one whose peer is the daemon's
 * socket carries requests, another (the reply channel, if any) the replies. */
static bool
take_session(pid_t prog, int *req_fd, int *reply_fd)
{
	char path[64], link[64], full[600];
	int pidfd = (int)syscall(SYS_pidfd_open, prog, 0);
	struct dirent *e;
	DIR *dir;

	*req_fd = *reply_fd = -1;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)prog);
	if (pidfd < 0 || (dir = opendir(path)) == NULL)
		return false;
	while ((e = readdir(dir)) != NULL) {
		struct sockaddr_un peer;
		socklen_t len = sizeof(peer);
		ssize_t k;
		int fd;

		snprintf(full, sizeof(full), "%s/%s", path, e->d_name);
		k = readlink(full, link, sizeof(link) - 1);
		if (k <= 0 || (link[k] = '\0', strncmp(link, "socket:", 7) != 0))
			continue;
		fd = (int)syscall(SYS_pidfd_getfd, pidfd, atoi(e->d_name), 0);
		if (fd < 0)
			continue;
		memset(&peer, 0, sizeof(peer));
		if (getpeername(fd, (struct sockaddr *)&peer, &len) == 0 &&
		    strcmp(peer.sun_path, test_daemon.path) == 0)
			*req_fd = fd;
		else
			*reply_fd = fd;
	}
	closedir(dir);
	close(pidfd);
	if (*reply_fd == -1)
		*reply_fd = *req_fd;
	return *req_fd != -1;
}

/*
 * No race at all: run the allowed program (here the sockrpc command, allowed by exe=),
 * let it connect, stop it, and take its connection with pidfd_getfd(2) - which a process
 * may do to its own child of the same uid. The daemon serves the thief as that program.
 */
START_TEST(exe_spoof_by_taking_the_descriptor)
{
	char cli[256], port[16];
	struct server srv;
	int result[2], go[2];
	pid_t thief;
	int code = -2;
	struct pollfd p;
	ssize_t k;

	if (SOCKRPC_CLI_PATH[0] == '\0' || realpath(SOCKRPC_CLI_PATH, cli) == NULL)
		return;
	server_start(&srv, AF_INET, SERVER_SILENT, 0);
	snprintf(port, sizeof(port), "%d", srv.port);
	write_policy("allow uid=0 *\n"
	             "allow uid=%d exe=%s *\n",
	             NOBODY, cli);
	policy_daemon_start(true, NULL);
	ck_assert_int_eq(pipe(result), 0);
	ck_assert_int_eq(pipe(go), 0);
	thief = fork();
	ck_assert_int_ne(thief, -1);
	if (thief == 0) {
		Sockrpc__SocketRequest sq = SOCKRPC__SOCKET_REQUEST__INIT;
		int stdin_pipe[2], req_fd, reply_fd;
		ProtobufCMessage *m;
		uint64_t id;
		pid_t prog;
		char b;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		drop_to(NOBODY);
		if (pipe(stdin_pipe) != 0)
			_exit(5);
		prog = fork();
		if (prog == 0) {
			dup2(stdin_pipe[0], 0);
			close(stdin_pipe[1]);
			execl(cli, "sockrpc", "--socket", test_daemon.path, "connect", "127.0.0.1",
			      port, (char *)NULL);
			_exit(127);
		}
		/* The test says when the program's connection reached the server. */
		if (read(go[0], &b, 1) != 1 || kill(prog, SIGSTOP) != 0)
			_exit(6);
		if (!take_session(prog, &req_fd, &reply_fd))
			_exit(8);
		sq.family = SOCKRPC__FAMILY__FAMILY_INET;
		sq.type = SOCKRPC__TYPE__TYPE_STREAM;
		raw_send(req_fd, M_SOCKET, 1u << 30, &sq.base);
		m = rc_reply(reply_fd, &id, NULL, 5000);
		code = m ? rc_code(m) : -1;
		if (write(result[1], &code, sizeof(code)) != sizeof(code))
			_exit(9);
		kill(prog, SIGKILL);
		waitpid(prog, NULL, 0);
		_exit(0);
	}
	for (int i = 0; i < 500 && atomic_load(&srv.accepted) == 0; i++)
		sleep_ms(10);
	ck_assert_msg(atomic_load(&srv.accepted) == 1, "the allowed program did not connect");
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	p = (struct pollfd){.fd = result[0], .events = POLLIN};
	ck_assert_msg(poll(&p, 1, CHILD_MS) == 1, "the thief did not report");
	k = read(result[0], &code, sizeof(code));
	ck_assert_int_eq(k, (ssize_t)sizeof(code));
	waitpid(thief, NULL, 0);
	for (int i = 0; i < 2; i++) {
		close(result[i]);
		close(go[i]);
	}
	/* The thief's own request, on the program's session, is allowed as the program. */
	ck_assert_int_eq(code, 0);
	server_stop(&srv);
	assert_daemon_serves(&test_daemon);
	policy_daemon_finish();
}
END_TEST
#endif

Suite *
policy_escapes_suite(void)
{
	Suite *s = suite_create("policy_escapes");
	TCase *addr = tcase_create("unspecified");
	TCase *opt = tcase_create("options");
	TCase *exe = tcase_create("exe");

	tcase_set_timeout(addr, 60);
	tcase_add_checked_fixture(addr, env_setup, policy_env_teardown);
	tcase_add_test(addr, unspecified_address_does_not_reach_loopback);
	tcase_add_test(addr, unspecified_address_is_matched_and_used_as_loopback);
	suite_add_tcase(s, addr);

	tcase_set_timeout(opt, 30);
	tcase_add_checked_fixture(opt, env_setup, policy_env_teardown);
	tcase_add_test(opt, privileged_options_need_a_rule_naming_them);
	suite_add_tcase(s, opt);

	tcase_set_timeout(exe, 60);
	tcase_add_checked_fixture(exe, env_setup, policy_env_teardown);
	tcase_add_test(exe, exe_spoof_by_fork_and_exec);
#ifdef SYS_pidfd_getfd
	tcase_add_test(exe, exe_spoof_by_taking_the_descriptor);
#endif
	suite_add_tcase(s, exe);
	return s;
}
