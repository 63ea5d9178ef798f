/*
 * test_unix.c - AF_UNIX stream and datagram sockets to paths through the broker:
 * a brokered server on a temporary path, a plain (non-brokered) server, datagrams
 * with their sender's path, and what the daemon refuses: its own socket (however
 * it is named) and paths longer than sun_path.
 */
#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"
#include "sockets.h"

#define SUN_PATH_MAX ((int)sizeof(((struct sockaddr_un *)0)->sun_path))

/* A private directory for the test's socket files; removed by tmp_cleanup(). */
static char tmp_dir[64];

static void
tmp_setup(void)
{
	fixture_daemon_up();
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/srunix.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
	/* The daemon runs as its own user once started as root: let it create and reach
	 * socket files here. */
	ck_assert_int_eq(chmod(tmp_dir, 0777), 0);
}

static void
tmp_cleanup(void)
{
	char cmd[128];

	fixture_daemon_down();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmp_dir);
}

static const char *
tmp_path(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", tmp_dir, name);
	return buf;
}

/* A plain AF_UNIX socket of type, bound to path (NULL: unbound). */
static int
plain_unix(int type, const char *path)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	ck_assert_int_ne(fd, -1);
	if (path != NULL) {
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
		ck_assert_msg(bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0, "bind %s: %s",
		              path, strerror(errno));
		ck_assert_int_eq(chmod(path, 0666), 0); /* connecting needs write access */
	}
	return fd;
}

static void
plain_sendto(int fd, const char *path, const void *data, size_t len)
{
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	ck_assert_uint_lt(strlen(path), sizeof(sun.sun_path));
	memcpy(sun.sun_path, path, strlen(path));
	ck_assert_int_eq(sendto(fd, data, len, 0, (struct sockaddr *)&sun, sizeof(sun)),
	                 (ssize_t)len);
}

START_TEST(stream_brokered_server)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *l = new_sock(c, AF_UNIX, SOCK_STREAM), *cl, *a;
	sr_sockinfo info;
	sr_error err;
	char path[128], *got;
	size_t len;

	tmp_path(path, sizeof(path), "server.sock");
	ck_assert_int_eq(sr_socket_state(l)->family, AF_UNIX);
	ck_assert_int_eq(sr_socket_state(l)->type, SOCK_STREAM);
	assert_state(l, .port = 0, .shutdown_reason = -1);
	bind_ok(l, 0, path);
	assert_state(l, .host = path, .port = 0, .is_bound = true, .shutdown_reason = -1);
	ck_assert_int_eq(access(path, F_OK), 0); /* the path exists now */
	ck_assert_int_eq(sr_info(l, &info, &err), 0);
	ck_assert_str_eq(info.address, path);
	ck_assert_int_eq(info.family, AF_UNIX);
	ck_assert(!info.ipv6);
	listen_ok(l, -1);
	assert_state(l, .host = path, .port = 0, .is_bound = true, .is_listening = true,
	             .shutdown_reason = -1);

	cl = new_sock(c, AF_UNIX, SOCK_STREAM);
	ck_assert_msg(sr_connect(cl, path, 0, 2000, &err) == 0, "connect: %s", err.message);
	assert_state(cl, .host = path, .port = 0, .is_client = true, .is_connected = true,
	             .shutdown_reason = -1);
	a = sr_accept(l, &err);
	ck_assert_msg(a != NULL, "accept: %d %s", err.code, err.message);
	/* The peer is unnamed: no path, no port. */
	assert_state(a, .host = "", .port = 0, .is_client = true, .is_connected = true,
	             .shutdown_reason = -1);
	ck_assert_int_eq(sr_socket_state(a)->family, AF_UNIX);
	ck_assert_int_eq(sr_send(cl, "over unix", 9, 0, &err), 9);
	got = receive_exact(a, 9);
	ck_assert_str_eq(got, "over unix");
	free(got);
	ck_assert_int_eq(sr_send(a, "and back", 8, 0, &err), 8);
	got = receive_exact(cl, 8);
	ck_assert_str_eq(got, "and back");
	free(got);
	ck_assert_int_eq(sr_close(cl, &err), 0);
	ck_assert_int_eq(sr_receive(a, -1, 0, &got, &len, &err), 0);
	ck_assert_uint_eq(len, 0);
	free(got);
	/* The path is taken while the listener lives. */
	{
		sr_socket *again = new_sock(c, AF_UNIX, SOCK_STREAM);

		ck_assert_int_eq(sr_bind(again, 0, path, &err), -1);
		assert_err(err, SR_EOS, EADDRINUSE, "Address already in use");
		sr_socket_free(again);
	}
	sr_socket_free(a);
	sr_socket_free(cl);
	sr_socket_free(l);
	sr_client_close(c);
}
END_TEST

START_TEST(stream_plain_server)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_UNIX, SOCK_STREAM);
	sr_error err;
	char path[128], missing[128], buf[16], *got;
	int lfd, fd;

	tmp_path(path, sizeof(path), "plain.sock");
	lfd = plain_unix(SOCK_STREAM, path);
	ck_assert_int_eq(listen(lfd, 4), 0);
	/* A path nobody listens on. */
	tmp_path(missing, sizeof(missing), "missing.sock");
	ck_assert_int_eq(sr_connect(s, missing, 0, 2000, &err), -1);
	assert_err(err, SR_EOS, ENOENT, "No such file or directory");
	assert_err(err, SR_EOS, ENOENT, missing);
	assert_state(s, .port = 0, .shutdown_reason = -1);

	ck_assert_msg(sr_connect(s, path, 0, 2000, &err) == 0, "connect: %s", err.message);
	assert_state(s, .host = path, .port = 0, .is_client = true, .is_connected = true,
	             .shutdown_reason = -1);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(sr_send(s, "hi plain", 8, 0, &err), 8);
	ck_assert_int_eq(recv(fd, buf, 8, MSG_WAITALL), 8);
	ck_assert_mem_eq(buf, "hi plain", 8);
	ck_assert_int_eq(send(fd, "hi broker", 9, MSG_NOSIGNAL), 9);
	got = receive_exact(s, 9);
	ck_assert_str_eq(got, "hi broker");
	free(got);
	close(fd);
	close(lfd);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

START_TEST(datagrams_to_paths)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *d = new_sock(c, AF_UNIX, SOCK_DGRAM), *u = new_sock(c, AF_UNIX, SOCK_DGRAM);
	struct sockaddr_un from;
	socklen_t flen = sizeof(from);
	sr_error err;
	char dpath[128], ppath[128], buf[64];
	const size_t sizes[3] = {1, 50, 2000};
	char *big = calloc(1, 2000);
	int pfd;

	ck_assert_ptr_nonnull(big);
	tmp_path(dpath, sizeof(dpath), "dgram.sock");
	tmp_path(ppath, sizeof(ppath), "peer.sock");
	bind_ok(d, 0, dpath);
	assert_state(d, .host = dpath, .port = 0, .is_bound = true, .shutdown_reason = -1);
	pfd = plain_unix(SOCK_DGRAM, ppath);

	/* From a plain, bound sender: data (binary) and the sender's path. */
	plain_sendto(pfd, dpath, "bin\0ary", 7);
	expect_from(d, -1, "bin\0ary", 7, ppath, 0);
	/* Boundaries kept. */
	for (int i = 0; i < 3; i++) {
		memset(big, 'a' + i, sizes[i]);
		plain_sendto(pfd, dpath, big, sizes[i]);
	}
	for (int i = 0; i < 3; i++) {
		char *got;
		size_t len;

		ck_assert_int_eq(sr_receive(d, -1, 0, &got, &len, &err), 0);
		ck_assert_uint_eq(len, sizes[i]);
		ck_assert_int_eq(got[0], 'a' + i);
		free(got);
	}
	/* Brokered send_to a plain socket's path. */
	ck_assert_int_eq(sr_send_to(d, ppath, 0, "reply", 5, 0, &err), 5);
	ck_assert_int_eq(recvfrom(pfd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen), 5);
	ck_assert_mem_eq(buf, "reply", 5);
	ck_assert_str_eq(from.sun_path, dpath);
	/* A brokered, unbound sender connected to the brokered receiver: no sender path. */
	ck_assert_msg(sr_connect(u, dpath, 0, 2000, &err) == 0, "connect: %s", err.message);
	assert_state(u, .host = dpath, .port = 0, .is_client = true, .is_connected = true,
	             .shutdown_reason = -1);
	ck_assert_int_eq(sr_send(u, "anon", 4, 0, &err), 4);
	expect_from(d, -1, "anon", 4, "", 0);
	free(big);
	close(pfd);
	sr_socket_free(u);
	sr_socket_free(d);
	sr_client_close(c);
}
END_TEST

START_TEST(daemon_socket_is_refused)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_UNIX, SOCK_STREAM);
	sr_socket *d = new_sock(c, AF_UNIX, SOCK_DGRAM);
	sr_error err;
	char alias[128], symlinked[128];

	/* Where the daemon's user can reach its own socket (as in /run/sockrpc), the
	 * daemon could connect: only its check stops it. */
	ck_assert_int_eq(chmod(test_daemon.dir, 0755), 0);
	ck_assert_int_eq(sr_connect(s, test_daemon.path, 0, 2000, &err), -1);
	assert_err(err, SR_EDENIED, 0, "sockrpcd's own socket");
	assert_state(s, .port = 0, .shutdown_reason = -1);
	/* Another name for the same socket is the same socket: a hard link, or a spelling
	 * with `..`, `//` and `.`. */
	tmp_path(alias, sizeof(alias), "alias.sock");
	ck_assert_int_eq(link(test_daemon.path, alias), 0);
	ck_assert_int_eq(sr_connect(s, alias, 0, 2000, &err), -1);
	assert_err(err, SR_EDENIED, 0, "sockrpcd's own socket");
	assert_state(s, .port = 0, .shutdown_reason = -1);
	{
		char odd[160];

		snprintf(odd, sizeof(odd), "%s/../%s//./sockrpc.sock", test_daemon.dir,
		         strrchr(test_daemon.dir, '/') + 1);
		ck_assert_int_eq(sr_connect(s, odd, 0, 2000, &err), -1);
		assert_err(err, SR_EDENIED, 0, "sockrpcd's own socket");
	}
	/* A symbolic link is never followed: the real path must be named. */
	tmp_path(symlinked, sizeof(symlinked), "symlink.sock");
	ck_assert_int_eq(symlink(test_daemon.path, symlinked), 0);
	ck_assert_int_eq(sr_connect(s, symlinked, 0, 2000, &err), -1);
	assert_err(err, SR_EOS, ELOOP, "symbolic link");
	assert_state(s, .port = 0, .shutdown_reason = -1);
	/* Datagram sockets neither. */
	ck_assert_int_eq(sr_connect(d, test_daemon.path, 0, 2000, &err), -1);
	assert_err(err, SR_EDENIED, 0, "sockrpcd's own socket");
	ck_assert_int_eq(sr_send_to(d, test_daemon.path, 0, "x", 1, 0, &err), -1);
	assert_err(err, SR_EDENIED, 0, "sockrpcd's own socket");
	ck_assert_int_eq(sr_send_to(d, alias, 0, "x", 1, 0, &err), -1);
	assert_err(err, SR_EDENIED, 0, "sockrpcd's own socket");
	ck_assert_int_eq(sr_send_to(d, symlinked, 0, "x", 1, 0, &err), -1);
	assert_err(err, SR_EOS, ELOOP, "symbolic link");
	/* The session is unharmed. */
	ck_assert(!sr_socket_state(s)->is_closed);
	sr_socket_free(d);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

/*
 * A daemon started without root (as its own user) cannot act as its clients, so it
 * refuses every AF_UNIX path (it would otherwise lend its own identity), its own socket
 * included, with the reason. Needs the `sockrpc` user: created for the test as root,
 * skipped otherwise.
 */
START_TEST(daemon_socket_refused_when_its_directory_is_private)
{
	static const char policy[] = "/tmp/sockrpc-unix-nonroot.policy";
	const char *const extra[] = {"--policy", policy, NULL};
	struct daemon dropped;
	sr_client *c;
	sr_socket *s;
	sr_error err;
	FILE *f;

	if (!sockrpc_user_acquire("daemon_socket_refused_when_its_directory_is_private"))
		return;
	ck_assert_ptr_nonnull(f = fopen(policy, "we"));
	fputs("allow uid=0 *\n", f);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(policy, 0644), 0);
	setenv("SOCKRPC_TEST_DAEMON_USER", "sockrpc", 1);
	daemon_start(&dropped, extra);
	unsetenv("SOCKRPC_TEST_DAEMON_USER");
	unlink(policy);
	c = daemon_client(&dropped);
	s = new_sock(c, AF_UNIX, SOCK_STREAM);
	ck_assert_int_eq(sr_connect(s, dropped.path, 0, 2000, &err), -1);
	assert_err(err, SR_EDENIED, 0, "runs without root, so it cannot act as uid 0");
	ck_assert_int_eq(sr_bind(s, 0, "/tmp/sockrpc-dropped.sock", &err), -1);
	assert_err(err, SR_EDENIED, 0, "docs/deployment.md");
	ck_assert_int_eq(access("/tmp/sockrpc-dropped.sock", F_OK), -1);
	assert_state(s, .port = 0, .shutdown_reason = -1);
	sr_socket_free(s);
	sr_client_close(c);
	ck_assert_int_eq(daemon_wait_fds(&dropped, dropped.idle_fds, HARNESS_IDLE_MS),
	                 dropped.idle_fds);
	daemon_stop(&dropped);
	sockrpc_user_release();
}
END_TEST

START_TEST(path_longer_than_sun_path)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *s = new_sock(c, AF_UNIX, SOCK_STREAM), *ok = new_sock(c, AF_UNIX, SOCK_STREAM);
	sr_socket *d = new_sock(c, AF_UNIX, SOCK_DGRAM);
	sr_error err;
	char longest[SUN_PATH_MAX + 1], over[SUN_PATH_MAX + 2], huge[400];
	size_t n;

	/* The longest path that fits: sun_path minus its NUL. */
	n = (size_t)snprintf(longest, sizeof(longest), "%s/", tmp_dir);
	memset(longest + n, 'x', (size_t)SUN_PATH_MAX - 1 - n);
	longest[SUN_PATH_MAX - 1] = '\0';
	memcpy(over, longest, (size_t)SUN_PATH_MAX - 1);
	over[SUN_PATH_MAX - 1] = 'y';
	over[SUN_PATH_MAX] = '\0';
	ck_assert_uint_eq(strlen(over), (size_t)SUN_PATH_MAX);
	memset(huge, 'z', sizeof(huge) - 1);
	huge[0] = '/';
	huge[sizeof(huge) - 1] = '\0';

	ck_assert_int_eq(sr_connect(s, over, 0, 2000, &err), -1);
	assert_err(err, SR_EINVAL, 0, NULL);
	ck_assert_int_eq(sr_bind(s, 0, over, &err), -1);
	assert_err(err, SR_EINVAL, 0, "address not valid or unsupported");
	ck_assert_int_eq(sr_send_to(d, over, 0, "x", 1, 0, &err), -1);
	assert_err(err, SR_EINVAL, 0, NULL);
	ck_assert_int_eq(sr_connect(s, huge, 0, 2000, &err), -1);
	assert_err(err, SR_EINVAL, 0, NULL);
	ck_assert_int_eq(sr_bind(s, 0, huge, &err), -1);
	assert_err(err, SR_EINVAL, 0, NULL);
	assert_state(s, .port = 0, .shutdown_reason = -1);
	/* One byte less fits. */
	bind_ok(ok, 0, longest);
	assert_state(ok, .host = longest, .port = 0, .is_bound = true, .shutdown_reason = -1);
	sr_socket_free(d);
	sr_socket_free(ok);
	sr_socket_free(s);
	sr_client_close(c);
}
END_TEST

START_TEST(unix_datagram_cannot_listen)
{
	sr_client *c = daemon_client(&test_daemon);
	sr_socket *d = new_sock(c, AF_UNIX, SOCK_DGRAM);
	sr_error err;
	char path[128];

	bind_ok(d, 0, tmp_path(path, sizeof(path), "nolisten.sock"));
	ck_assert_int_eq(sr_listen(d, 1, &err), -1);
	assert_err(err, SR_EOS, EOPNOTSUPP, "Operation not supported");
	assert_state(d, .host = path, .port = 0, .is_bound = true, .shutdown_reason = -1);
	sr_socket_free(d);
	sr_client_close(c);
}
END_TEST

Suite *
unix_suite(void)
{
	Suite *s = suite_create("unix");
	TCase *tc = tcase_create("unix");

	tcase_add_checked_fixture(tc, tmp_setup, tmp_cleanup);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, stream_brokered_server);
	tcase_add_test(tc, stream_plain_server);
	tcase_add_test(tc, datagrams_to_paths);
	tcase_add_test(tc, daemon_socket_is_refused);
	tcase_add_test(tc, daemon_socket_refused_when_its_directory_is_private);
	tcase_add_test(tc, path_longer_than_sun_path);
	tcase_add_test(tc, unix_datagram_cannot_listen);
	suite_add_tcase(s, tc);
	return s;
}
