/*
 * test_option_levels.c - options beyond SOL_SOCKET through the broker (sr_set_option_level,
 * sr_get_option_level): TCP keepalive and Nagle, IP_TTL, IP_TOS, multicast TTL and loop,
 * IPV6_V6ONLY, read back from the kernel and seen on the wire by a plain receiver; joining
 * and leaving a multicast group (in a network namespace of the test's own, loopback only);
 * an option the protocol does not carry is refused; the policy's option operation gates
 * them by name, an unprivileged uid may set them, and a join needs a rule naming it.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as_user.h"
#include "harness.h"
#include "sockets.h"

static long
get_level_ok(sr_socket *s, int level, int option)
{
	sr_error err;
	long v = -12345;

	ck_assert_msg(sr_get_option_level(s, level, option, &v, &err) == 0,
	              "get_option %d/%d: %d %s", level, option, err.code, err.message);
	return v;
}

static void
set_level_ok(sr_socket *s, int level, int option, long value)
{
	sr_error err;

	ck_assert_msg(sr_set_option_level(s, level, option, value, &err) == 0,
	              "set_option %d/%d=%ld: %d %s", level, option, value, err.code, err.message);
}

START_TEST(levels_set_and_read_back)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *t = new_sock(c, AF_INET, SOCK_STREAM);
	sr_socket *u = new_sock(c, AF_INET, SOCK_DGRAM);
	sr_socket *six = new_sock(c, AF_INET6, SOCK_STREAM);
	static const struct {
		int level, option;
		long value;
	} cases[] = {
	    {IPPROTO_TCP, TCP_NODELAY, 1},   {IPPROTO_TCP, TCP_KEEPIDLE, 77},
	    {IPPROTO_TCP, TCP_KEEPINTVL, 9}, {IPPROTO_TCP, TCP_KEEPCNT, 4},
	    {IPPROTO_IP, IP_TTL, 33},        {IPPROTO_IP, IP_TOS, 0x10},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		set_level_ok(t, cases[i].level, cases[i].option, cases[i].value);
		ck_assert_int_eq(get_level_ok(t, cases[i].level, cases[i].option), cases[i].value);
	}
	set_level_ok(t, IPPROTO_TCP, TCP_NODELAY, 0);
	ck_assert_int_eq(get_level_ok(t, IPPROTO_TCP, TCP_NODELAY), 0);
	/* TCP_NODELAY is 1 on Linux, as SO_DEBUG: the level tells them apart. */
	ck_assert_int_eq(get_level_ok(t, SOL_SOCKET, SO_DEBUG), 0);
	set_level_ok(u, IPPROTO_IP, IP_MULTICAST_TTL, 3);
	ck_assert_int_eq(get_level_ok(u, IPPROTO_IP, IP_MULTICAST_TTL), 3);
	set_level_ok(u, IPPROTO_IP, IP_MULTICAST_LOOP, 0);
	ck_assert_int_eq(get_level_ok(u, IPPROTO_IP, IP_MULTICAST_LOOP), 0);
	set_level_ok(six, IPPROTO_IPV6, IPV6_V6ONLY, 1);
	ck_assert_int_eq(get_level_ok(six, IPPROTO_IPV6, IPV6_V6ONLY), 1);
	set_level_ok(six, IPPROTO_IPV6, IPV6_V6ONLY, 0);
	ck_assert_int_eq(get_level_ok(six, IPPROTO_IPV6, IPV6_V6ONLY), 0);
	sr_socket_free(t);
	sr_socket_free(u);
	sr_socket_free(six);
	sr_client_close(c);
}
END_TEST

/* IP_TTL and IP_TOS of a brokered datagram, as a plain receiver sees them. */
START_TEST(ttl_and_tos_reach_the_wire)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *u = new_sock(c, AF_INET, SOCK_DGRAM);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
	socklen_t len = sizeof(sin);
	int fd, on = 1, ttl = -1, tos = -1;
	char data[16], control[256];
	struct iovec iov = {data, sizeof(data)};
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = control,
	                    .msg_controllen = sizeof(control)};
	sr_error err;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(setsockopt(fd, IPPROTO_IP, IP_RECVTTL, &on, sizeof(on)), 0);
	ck_assert_int_eq(setsockopt(fd, IPPROTO_IP, IP_RECVTOS, &on, sizeof(on)), 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, len), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	set_level_ok(u, IPPROTO_IP, IP_TTL, 7);
	set_level_ok(u, IPPROTO_IP, IP_TOS, 0x20);
	ck_assert_int_eq(sr_send_to(u, "127.0.0.1", ntohs(sin.sin_port), "ttl", 3, 0, &err), 3);
	ck_assert_int_eq(recvmsg(fd, &mh, 0), 3);
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_TTL)
			memcpy(&ttl, CMSG_DATA(cm), sizeof(ttl));
		if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_TOS)
			tos = *(unsigned char *)CMSG_DATA(cm);
	}
	ck_assert_int_eq(ttl, 7);
	ck_assert_int_eq(tos, 0x20);
	close(fd);
	sr_socket_free(u);
	sr_client_close(c);
}
END_TEST

START_TEST(an_option_the_protocol_lacks_is_refused)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *t = new_sock(c, AF_INET, SOCK_STREAM);
	sr_error err;
	long v;

	ck_assert_int_eq(sr_set_option_level(t, IPPROTO_TCP, TCP_CORK, 1, &err), -1);
	assert_err(err, SR_EUNSUPPORTED, ENOPROTOOPT, "not supported by sockrpc");
	ck_assert_int_eq(sr_get_option_level(t, IPPROTO_IP, IP_TRANSPARENT, &v, &err), -1);
	assert_err(err, SR_EUNSUPPORTED, ENOPROTOOPT, "not supported by sockrpc");
	ck_assert_int_eq(sr_set_option_level(t, 12345, 1, 1, &err), -1);
	assert_err(err, SR_EUNSUPPORTED, ENOPROTOOPT, "level 12345");
	/* An OS error of the option itself comes back as such. */
	ck_assert_int_eq(sr_set_option_level(t, IPPROTO_IP, IP_TTL, 1000, &err), -1);
	assert_err(err, SR_EOS, EINVAL, "IP_TTL");
	sr_socket_free(t);
	sr_client_close(c);
}
END_TEST

/* --- multicast, in a network namespace whose loopback carries it */

#define GROUP 0xef010203L /* 239.1.2.3 */
#define MREQ(group, iface) ((long)((unsigned long)(iface) << 32 | (unsigned long)(group)))

/* Enters a new network namespace with lo up and multicast on; false if that is refused. */
static bool
enter_multicast_netns(void)
{
	struct ifreq ifr;
	int fd;
	bool ok;

	if (unshare(CLONE_NEWNET) != 0)
		return false;
	if ((fd = socket(AF_INET, SOCK_DGRAM, 0)) < 0)
		return false;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	ok = ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
	ifr.ifr_flags |= IFF_UP | IFF_MULTICAST;
	ok = ok && ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
	close(fd);
	return ok;
}

/* Sends text to the group on port from a plain socket, out through lo. */
static void
send_to_group(int fd, int port, const char *text)
{
	struct sockaddr_in to = {
	    .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(GROUP)};

	ck_assert_int_eq(sendto(fd, text, strlen(text), 0, (struct sockaddr *)&to, sizeof(to)),
	                 (ssize_t)strlen(text));
}

static void
expect_nothing(sr_socket *u)
{
	char *data = NULL, host[64];
	size_t len;
	int port;
	sr_error err;

	ck_assert_int_eq(sr_receive_from(u, -1, 0, &data, &len, host, &port, &err), -1);
	assert_err(err, SR_ETIMEDOUT, -1, NULL);
}

START_TEST(multicast_join_and_leave)
{
	struct in_addr lo = {.s_addr = htonl(0x7f000001)};
	struct sockaddr_in me = {.sin_family = AF_INET, .sin_addr = lo};
	socklen_t len = sizeof(me);
	sr_sockinfo info;
	sr_client *c;
	sr_socket *u;
	sr_error err;
	int fd;

	if (!enter_multicast_netns()) {
		fprintf(stderr, "multicast_join_and_leave: no network namespace here, skipped\n");
		return;
	}
	daemon_start(&test_daemon, NULL);
	c = daemon_client(&test_daemon);
	u = new_sock(c, AF_INET, SOCK_DGRAM);
	bind_ok(u, 0, "0.0.0.0");
	ck_assert_int_eq(sr_info(u, &info, &err), 0);
	set_level_ok(u, SOL_SOCKET, SO_RCVTIMEO, 300);
	ck_assert_int_ge(fd = socket(AF_INET, SOCK_DGRAM, 0), 0);
	ck_assert_int_eq(setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &lo, sizeof(lo)), 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&me, len), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&me, &len), 0);

	/* Not a member yet: the group's datagram is not delivered. */
	send_to_group(fd, info.port, "before");
	expect_nothing(u);
	set_level_ok(u, IPPROTO_IP, IP_ADD_MEMBERSHIP, MREQ(GROUP, 0x7f000001));
	send_to_group(fd, info.port, "joined");
	expect_from(u, -1, "joined", 6, "127.0.0.1", ntohs(me.sin_port));
	set_level_ok(u, IPPROTO_IP, IP_DROP_MEMBERSHIP, MREQ(GROUP, 0x7f000001));
	send_to_group(fd, info.port, "left");
	expect_nothing(u);
	/* No group: refused before the kernel sees it. */
	ck_assert_int_eq(sr_set_option_level(u, IPPROTO_IP, IP_ADD_MEMBERSHIP, MREQ(0, 0), &err),
	                 -1);
	assert_err(err, SR_EINVAL, 0, "no multicast group");
	close(fd);
	sr_socket_free(u);
	sr_client_close(c);
	daemon_stop(&test_daemon);
}
END_TEST

/* --- the policy: option rules name these options; an unprivileged uid may set them */

static char policy_dir[64], policy_path[128];

static void
policy_up(const char *text)
{
	const char *args[] = {"--policy", policy_path, NULL};

	snprintf(policy_dir, sizeof(policy_dir), "/tmp/sockrpc-levels.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(policy_dir));
	snprintf(policy_path, sizeof(policy_path), "%s/policy", policy_dir);
	write_file(policy_path, text);
	daemon_start(&test_daemon, args);
	ck_assert_int_eq(chmod(test_daemon.dir, 0755), 0);
}

static void
policy_down(void)
{
	daemon_stop(&test_daemon);
	unlink(policy_path);
	rmdir(policy_dir);
}

static void
child_options(sr_client *c, struct report *r)
{
	sr_socket *s = c_socket(c, r, AF_INET, SOCK_STREAM);
	sr_error err;

	if (s == NULL)
		return;
	rec(r, sr_set_option_level(s, IPPROTO_TCP, TCP_NODELAY, 1, &err), &err, 0);
	rec(r, sr_set_option_level(s, IPPROTO_IP, IP_TOS, 0x10, &err), &err, 0);
	rec(r, sr_set_option_level(s, IPPROTO_TCP, TCP_KEEPIDLE, 30, &err), &err, 0);
	sr_socket_free(s);
	if ((s = c_socket(c, r, AF_INET, SOCK_DGRAM)) == NULL)
		return;
	/* Denied before any syscall: no group is joined on the host. */
	rec(r, sr_set_option_level(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, MREQ(GROUP, 0x7f000001), &err),
	    &err, 0);
	sr_socket_free(s);
}

START_TEST(policy_gates_options_by_name)
{
	struct report r;

	policy_up("deny * option IP_TOS reason \"no marking\"\n"
	          "allow * *\n");
	run_as(65534, 65534, child_options, &r);
	ck_assert_int_eq(r.n, 6);
	assert_ok(&r, 0); /* the socket */
	assert_ok(&r, 1); /* TCP_NODELAY: no privilege needed, a broad allow grants it */
	assert_fail(&r, 2, SR_EDENIED, "setting IP_TOS denied by policy", "policy:1", "no marking");
	assert_ok(&r, 3);
	assert_ok(&r, 4);
	/* A join: only a rule naming IP_ADD_MEMBERSHIP allows it. */
	assert_fail(&r, 5, SR_EDENIED, "setting IP_ADD_MEMBERSHIP denied by policy (default)",
	            "an interface of the daemon's network", "only a rule naming");
	policy_down();
}
END_TEST

START_TEST(policy_names_them_in_explain)
{
	char cmd[512], out[4096];
	size_t n;
	FILE *p;

	/* A rule naming a new option parses, and --explain names it and the rule. */
	policy_up("allow * option TCP_NODELAY,IP_TTL,IPV6_V6ONLY\n");
	snprintf(cmd, sizeof(cmd), "%s --policy %s --explain uid=65534 option TCP_NODELAY 1",
	         SOCKRPCD_PATH, policy_path);
	ck_assert_ptr_nonnull(p = popen(cmd, "r"));
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	ck_assert_int_eq(pclose(p), 0);
	ck_assert_msg(strncmp(out, "allow", 5) == 0 && strstr(out, "TCP_NODELAY 1") != NULL &&
	                  strstr(out, "policy:1") != NULL,
	              "explain said: %s", out);
	policy_down();
}
END_TEST

Suite *
option_levels_suite(void)
{
	Suite *s = suite_create("option_levels");
	TCase *tc = tcase_create("levels");
	TCase *tp = tcase_create("policy");
	TCase *tm = tcase_create("multicast");

	tcase_add_checked_fixture(tc, fixture_daemon_up, fixture_daemon_down);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, levels_set_and_read_back);
	tcase_add_test(tc, ttl_and_tos_reach_the_wire);
	tcase_add_test(tc, an_option_the_protocol_lacks_is_refused);
	suite_add_tcase(s, tc);
	/* Starts its own daemon, inside the namespace the test enters. */
	tcase_set_timeout(tm, 30);
	tcase_add_test(tm, multicast_join_and_leave);
	suite_add_tcase(s, tm);
	tcase_set_timeout(tp, 30);
	tcase_add_test(tp, policy_gates_options_by_name);
	tcase_add_test(tp, policy_names_them_in_explain);
	suite_add_tcase(s, tp);
	return s;
}
