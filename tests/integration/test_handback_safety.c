/*
 * test_handback_safety.c - what handback must never do, tried by an unprivileged uid
 * (65534) against the root daemon: no descriptor without `handback` in the matching rule
 * (the refusal names the rule, the handle stays usable); listening sockets, unconnected
 * UDP, AF_UNIX and raw sockets never leave the daemon; connected UDP only under a rule
 * that names udp; a handed-back TCP socket cannot be connected elsewhere (EISCONN); the
 * client's descriptors and the daemon's return to their baselines, and the daemon goes
 * on serving others.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "as_user.h"
#include "handback_env.h"
#include "harness.h"

#define NOBODY 65534

/* Set by the parent before a child forks. */
static int port_plain, port_handback, port_udp_named, port_udp_unnamed;
static char unix_path[108];

static int
own_fd_count(void)
{
	char path[64];
	int n = 0;

	for (int fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n += access(path, F_OK) == 0;
	}
	return n;
}

static void
write_policy(void)
{
	char text[1024];

	snprintf(text, sizeof(text),
	         "allow uid=%d create tcp,udp,unix\n"
	         "allow uid=%d connect tcp 127.0.0.1 port %d\n"
	         "allow uid=%d connect tcp 127.0.0.1 port %d handback\n"
	         "allow uid=%d bind,listen tcp,udp 127.0.0.1\n"
	         "allow uid=%d connect udp 127.0.0.1 port %d handback\n"
	         "allow uid=%d connect 127.0.0.1 port %d handback\n"
	         "allow uid=%d connect unix %s\n"
	         "allow uid=%d create raw\n"
	         "allow uid=%d connect raw,tcp 127.0.0.2 handback\n",
	         NOBODY, NOBODY, port_plain, NOBODY, port_handback, NOBODY, NOBODY, port_udp_named,
	         NOBODY, port_udp_unnamed, NOBODY, unix_path, NOBODY, NOBODY);
	hb_policy(text);
}

/* Takes s's descriptor, recorded (value: the fd); closes it. */
static void
c_take(struct report *r, sr_socket *s)
{
	sr_error err;
	int fd = s != NULL ? sr_socket_take_fd(s, &err) : -1;

	if (s == NULL)
		err = (sr_error){.code = -1, .message = "no socket"};
	rec(r, fd, &err, fd);
	if (fd >= 0)
		close(fd);
}

static void
child_handback_needs_the_rule(sr_client *c, struct report *r)
{
	struct sockaddr_in other = {.sin_family = AF_INET, .sin_port = htons(port_plain)};
	int base = own_fd_count(), fd;
	sr_socket *s;
	sr_error err;
	char buf[8] = "";

	/* 0: connected under rule 2, which does not say handback. */
	fd = sr_connect_fd(c, AF_INET, SOCK_STREAM, "127.0.0.1", port_plain, 5000, &err);
	rec(r, fd, &err, fd);
	/* 1, 2: an existing connection, refused; 3: it still serves. */
	s = c_socket(c, r, AF_INET, SOCK_STREAM);
	c_connect(r, s, "127.0.0.1", port_plain);
	c_take(r, s);
	c_echo(r, s, "still mine");
	sr_socket_free(s);
	/* 5: under rule 3; 6: connect elsewhere (errno); 7: its data still flows to its own
	 * peer (the parent counts each server's bytes). */
	fd = sr_connect_fd(c, AF_INET, SOCK_STREAM, "127.0.0.1", port_handback, 5000, &err);
	rec(r, fd, &err, fd);
	inet_pton(AF_INET, "127.0.0.1", &other.sin_addr);
	errno = 0;
	rec(r, 0, NULL, connect(fd, (struct sockaddr *)&other, sizeof(other)) == 0 ? 0 : errno);
	rec(r, 0, NULL,
	    send(fd, "abc", 3, 0) == 3 && recv(fd, buf, 3, MSG_WAITALL) == 3 &&
	        strcmp(buf, "abc") == 0);
	close(fd);
	/* 8: the client's descriptors are back where they were. */
	rec(r, 0, NULL, own_fd_count() - base);
}

START_TEST(no_handback_without_the_rule)
{
	struct server plain, handed;
	struct report r;

	server_start(&plain, AF_INET, SERVER_ECHO, 0);
	server_start(&handed, AF_INET, SERVER_ECHO, 0);
	port_plain = plain.port;
	port_handback = handed.port;
	port_udp_named = port_udp_unnamed = 9;
	snprintf(unix_path, sizeof(unix_path), "%s/none.sock", hb.dir);
	write_policy();
	hb_start();
	run_as(NOBODY, NOBODY, child_handback_needs_the_rule, &r);
	assert_fail(&r, 0, SR_EDENIED, "test.policy:2", "does not say handback");
	assert_ok(&r, 1);
	assert_ok(&r, 2);
	assert_fail(&r, 3, SR_EDENIED, "test.policy:2", "handback");
	assert_ok(&r, 4);
	assert_ok(&r, 5);
	ck_assert_int_ge(r.o[5].value, 0);
	ck_assert_msg(r.o[6].value == EISCONN, "connect elsewhere: errno %ld, want EISCONN",
	              r.o[6].value);
	ck_assert_int_eq(r.o[7].value, 1);
	ck_assert_uint_eq(server_wait_received(&handed, 3, 5000), 3);
	ck_assert_uint_eq(server_wait_received(&plain, 10, 5000), 10); /* "still mine" only */
	ck_assert_int_eq(r.o[8].value, 0);
	ck_assert_int_eq(hb_count_audit("\"event\":\"handback\",\"session\""), 3);
	ck_assert_int_eq(hb_count_audit("\"decision\":\"deny\",\"reason\":\"rule"), 2);
	server_stop(&plain);
	server_stop(&handed);
	hb_finish();
}
END_TEST

static void
child_never_handed_back(sr_client *c, struct report *r)
{
	sr_socket *s;
	sr_error err;

	/* 0..3: a listening socket, refused; it goes on listening. */
	s = c_socket(c, r, AF_INET, SOCK_STREAM);
	rec(r, sr_bind(s, 0, "127.0.0.1", &err), &err, 0);
	rec(r, sr_listen(s, 4, &err), &err, 0);
	c_take(r, s);
	rec(r, 0, NULL, sr_socket_state(s)->is_listening);
	sr_socket_free(s);
	/* 5, 6: an unconnected UDP socket, fresh; 7, 8, 9: bound. */
	s = c_socket(c, r, AF_INET, SOCK_DGRAM);
	c_take(r, s);
	sr_socket_free(s);
	s = c_socket(c, r, AF_INET, SOCK_DGRAM);
	rec(r, sr_bind(s, 0, "127.0.0.1", &err), &err, 0);
	c_take(r, s);
	sr_socket_free(s);
	/* 10..12: connected UDP under a rule naming udp: handed back. */
	s = c_socket(c, r, AF_INET, SOCK_DGRAM);
	c_connect(r, s, "127.0.0.1", port_udp_named);
	c_take(r, s);
	sr_socket_free(s);
	/* 13..15: connected UDP under a rule that does not name udp: refused. */
	s = c_socket(c, r, AF_INET, SOCK_DGRAM);
	c_connect(r, s, "127.0.0.1", port_udp_unnamed);
	c_take(r, s);
	sr_socket_free(s);
	/* 16..18: a connected AF_UNIX socket: never. */
	s = c_socket(c, r, AF_UNIX, SOCK_STREAM);
	c_connect(r, s, unix_path, 0);
	c_take(r, s);
	sr_socket_free(s);
	/* 19..21: a connected raw socket, though its rule says handback: never. */
	s = sr_socket_new(c, AF_INET, SOCK_RAW, IPPROTO_ICMP, &err);
	rec(r, s != NULL ? 0 : -1, &err, 0);
	c_connect(r, s, "127.0.0.2", 0);
	c_take(r, s);
	sr_socket_free(s);
}

START_TEST(what_is_never_handed_back)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct report r;
	int lfd;

	port_plain = port_handback = 9;
	port_udp_named = hb_free_port();
	port_udp_unnamed = hb_free_port();
	snprintf(unix_path, sizeof(unix_path), "%s/listen.sock", hb.dir);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", unix_path);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(chmod(unix_path, 0777), 0);
	ck_assert_int_eq(listen(lfd, 4), 0);
	write_policy();
	hb_start();
	run_as(NOBODY, NOBODY, child_never_handed_back, &r);
	for (int i = 0; i < 3; i++)
		assert_ok(&r, i);
	assert_fail(&r, 3, SR_ESTATE, "listening socket is never handed back");
	ck_assert_int_eq(r.o[4].value, 1);
	assert_fail(&r, 6, SR_ESTATE, "unconnected datagram socket is never handed back");
	assert_ok(&r, 8);
	assert_fail(&r, 9, SR_ESTATE, "unconnected datagram socket is never handed back");
	assert_ok(&r, 11);
	assert_ok(&r, 12);
	ck_assert_int_ge(r.o[12].value, 0);
	assert_ok(&r, 14);
	assert_fail(&r, 15, SR_EDENIED, "test.policy:6", "handback");
	assert_ok(&r, 17);
	assert_fail(&r, 18, SR_EDENIED, "AF_UNIX socket is never handed back");
	assert_ok(&r, 19);
	assert_ok(&r, 20);
	assert_fail(&r, 21, SR_EDENIED, "raw socket is never handed back");
	close(lfd);
	hb_finish();
}
END_TEST

/* After the refusals above, the daemon serves another client as before. */
static void
child_plain_echo(sr_client *c, struct report *r)
{
	sr_socket *s = c_socket(c, r, AF_INET, SOCK_STREAM);

	c_connect(r, s, "127.0.0.1", port_plain);
	c_echo(r, s, "after the attacks");
	sr_socket_free(s);
}

static void
child_attacks(sr_client *c, struct report *r)
{
	child_never_handed_back(c, r);
}

START_TEST(daemon_serves_others_after_refusals)
{
	struct server plain;
	struct child attacker;
	struct report r, a;

	server_start(&plain, AF_INET, SERVER_ECHO, 0);
	port_plain = plain.port;
	port_handback = port_udp_named = port_udp_unnamed = 9;
	snprintf(unix_path, sizeof(unix_path), "%s/none.sock", hb.dir);
	write_policy();
	hb_start();
	child_start(&attacker, NOBODY, NOBODY, child_attacks);
	child_finish(&attacker, &a);
	run_as(NOBODY, NOBODY, child_plain_echo, &r);
	assert_ok(&r, 0);
	assert_ok(&r, 1);
	assert_ok(&r, 2);
	server_stop(&plain);
	hb_finish();
}
END_TEST

Suite *
handback_safety_suite(void)
{
	Suite *s = suite_create("handback_safety");
	TCase *tc = tcase_create("refusals");

	tcase_add_checked_fixture(tc, hb_setup, hb_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, no_handback_without_the_rule);
	tcase_add_test(tc, what_is_never_handed_back);
	tcase_add_test(tc, daemon_serves_others_after_refusals);
	suite_add_tcase(s, tc);
	return s;
}
