/*
 * test_fast_paths.c - the daemon's fast-path switches (daemon/fast_path.c): with
 * SOCKRPC_DISABLE=all the daemon says each path is off, opens no splice pipe, and its
 * core paths alone carry bulk data both ways, whole and in order; a list turns off only
 * what it names, and an unknown name is reported and ignored. (CI also runs every
 * integration suite with SOCKRPC_DISABLE=all: tools/run-tests.)
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "sockets.h"

static bool
log_has(const struct daemon *d, const char *text)
{
	char buf[16384];
	FILE *f = fopen(d->log, "r");
	size_t n;

	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, text) != NULL;
}

/* Pipes the daemon holds that were grown past the default 64 KiB: the splice relay's
 * two ends (daemon/receive_splice.c), and nothing else. */
static int
daemon_pipes(const struct daemon *d)
{
	char dir[64], path[400], target[64];
	struct dirent *e;
	DIR *fds;
	int n = 0;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)daemon_worker_pid(d));
	fds = opendir(dir);
	ck_assert_ptr_nonnull(fds);
	while ((e = readdir(fds)) != NULL) {
		ssize_t len;

		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		if (strncmp(target, "pipe:", 5) == 0) {
			int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

			if (fd >= 0) {
				n += fcntl(fd, F_GETPIPE_SZ) > 64 * 1024;
				close(fd);
			}
		}
	}
	closedir(fds);
	return n;
}

/* Sends `total` bytes of pattern in 64 KiB calls to a sink: all of it arrives. */
static void
send_through(sr_client *c, size_t total)
{
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	struct server srv;
	char *data = malloc(total);
	sr_error err;

	for (size_t i = 0; i < total; i++)
		data[i] = pattern_byte(i);
	server_start(&srv, AF_INET, SERVER_SINK, 0);
	connect_ok(s, "127.0.0.1", srv.port);
	for (size_t off = 0; off < total; off += 65536)
		ck_assert_int_eq(sr_send(s, data + off, 65536, 0, &err), 65536);
	ck_assert_int_eq(sr_close(s, &err), 0);
	ck_assert_uint_eq(server_wait_received(&srv, total, 10000), total);
	sr_socket_free(s);
	server_stop(&srv);
	free(data);
}

/* Receives `total` bytes of pattern in 1 MiB calls: whole and in order. */
static void
receive_through(sr_client *c, size_t total)
{
	sr_socket *s = new_sock(c, AF_INET, SOCK_STREAM);
	struct server srv;
	size_t have = 0, len = 1;
	sr_error err;
	char *got;

	server_start(&srv, AF_INET, SERVER_SOURCE, total);
	connect_ok(s, "127.0.0.1", srv.port);
	while (len > 0) {
		ck_assert_int_eq(sr_receive(s, 1 << 20, 0, &got, &len, &err), 0);
		for (size_t k = 0; k < len; k++)
			if (got[k] != pattern_byte(have + k))
				ck_abort_msg("byte %zu differs", have + k);
		free(got);
		have += len;
	}
	ck_assert_uint_eq(have, total);
	sr_socket_free(s);
	server_stop(&srv);
}

START_TEST(all_off_core_paths_carry_bulk_both_ways)
{
	struct daemon d;
	sr_client *c;

	daemon_start_disabling(&d, "all");
	ck_assert(log_has(&d, "fast path send-batching is off"));
	ck_assert(log_has(&d, "fast path borrowed-payloads is off"));
	ck_assert(log_has(&d, "fast path splice-receive is off"));
	ck_assert_int_eq(daemon_pipes(&d), 0);
	c = daemon_client(&d);
	send_through(c, 8u << 20);
	receive_through(c, 8u << 20);
	sr_client_close(c);
	daemon_stop(&d);
}
END_TEST

START_TEST(on_by_default)
{
	struct daemon d;

	daemon_start_disabling(&d, NULL); /* as by default (CI also runs every suite with all) */
	ck_assert(!log_has(&d, "is off"));
	ck_assert_int_eq(daemon_pipes(&d), 2);
	daemon_stop(&d);
}
END_TEST

START_TEST(a_list_turns_off_what_it_names)
{
	struct daemon d;
	sr_client *c;

	daemon_start_disabling(&d, "splice-receive, no-such-path,write-behind");
	ck_assert(log_has(&d, "fast path splice-receive is off"));
	ck_assert(!log_has(&d, "send-batching is off"));
	ck_assert(!log_has(&d, "borrowed-payloads is off"));
	ck_assert(log_has(&d, "unknown fast path \"no-such-path\""));
	ck_assert(!log_has(&d, "\"write-behind\"")); /* the client library's: known */
	ck_assert_int_eq(daemon_pipes(&d), 0);
	c = daemon_client(&d);
	receive_through(c, 4u << 20);
	sr_client_close(c);
	daemon_stop(&d);
}
END_TEST

Suite *
fast_paths_suite(void)
{
	Suite *s = suite_create("fast_paths");
	TCase *tc = tcase_create("switches");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, all_off_core_paths_carry_bulk_both_ways);
	tcase_add_test(tc, on_by_default);
	tcase_add_test(tc, a_list_turns_off_what_it_names);
	suite_add_tcase(s, tc);
	return s;
}
