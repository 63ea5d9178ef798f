/*
 * test_load.c - 500 concurrent clients, each opening, using (connect to a loopback echo
 * server, send, read back) and closing sockets in a loop for LOAD_SECONDS (default 10,
 * as ctest's integration.load runs it; tests/scripts/test_load.sh, ctest's script.load,
 * runs the required 30), while one more client measures small-call
 * latency. Every call must be answered correctly, the daemon must stay up, and once the
 * clients are gone its fds return to idle and its memory settles.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rawcall.h"

#define LOAD_CLIENTS 500

/* Under AddressSanitizer, freed memory waits in a quarantine that counts in the RSS;
 * leaks are LeakSanitizer's to find there (at the daemon's exit, which must be 0). */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_AFTER_LOAD_KIB (256 * 1024)
#else
#define RSS_AFTER_LOAD_KIB (64 * 1024)
#endif
#define LATENCY_SAMPLES_MAX 200000

/* An epoll echo server for any number of connections (the harness's holds 32). */
struct echo {
	int lfd, ep, port, wake[2];
	pthread_t t;
};

static void *
echo_main(void *arg)
{
	struct echo *e = arg;
	struct epoll_event ev[64];
	char buf[16384];

	for (;;) {
		int n = epoll_wait(e->ep, ev, 64, 200);

		for (int i = 0; i < n; i++) {
			int fd = ev[i].data.fd;

			if (fd == e->wake[0])
				return NULL;
			if (fd == e->lfd) {
				int c;

				while ((c = accept4(e->lfd, NULL, NULL,
				                    SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};

					epoll_ctl(e->ep, EPOLL_CTL_ADD, c, &ce);
				}
				continue;
			}
			for (;;) {
				ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT), off = 0;

				if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
					close(fd);
					break;
				}
				if (r < 0)
					break;
				/* Echo payloads are small: a blocking-ish retry loop is enough. */
				while (off < r) {
					ssize_t w =
					    send(fd, buf + off, (size_t)(r - off), MSG_NOSIGNAL);

					if (w < 0 && errno != EAGAIN && errno != EINTR)
						break;
					if (w > 0)
						off += w;
				}
			}
		}
	}
}

static void
echo_start(struct echo *e)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	struct epoll_event ev = {.events = EPOLLIN};

	e->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ck_assert_int_ne(e->lfd, -1);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(e->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(e->lfd, 4096), 0);
	ck_assert_int_eq(getsockname(e->lfd, (struct sockaddr *)&sin, &len), 0);
	e->port = ntohs(sin.sin_port);
	e->ep = epoll_create1(EPOLL_CLOEXEC);
	ck_assert_int_eq(pipe2(e->wake, O_CLOEXEC), 0);
	ev.data.fd = e->lfd;
	epoll_ctl(e->ep, EPOLL_CTL_ADD, e->lfd, &ev);
	ev.data.fd = e->wake[0];
	epoll_ctl(e->ep, EPOLL_CTL_ADD, e->wake[0], &ev);
	ck_assert_int_eq(pthread_create(&e->t, NULL, echo_main, e), 0);
}

static void
echo_stop(struct echo *e)
{
	if (write(e->wake[1], "x", 1) != 1)
		ck_abort_msg("cannot stop the echo server");
	pthread_join(e->t, NULL);
	close(e->lfd);
	close(e->ep);
	close(e->wake[0]);
	close(e->wake[1]);
}

struct load {
	const char *path;
	int port;
	long long deadline;
	atomic_long cycles, calls, failures;
	atomic_int ready;
	char first_failure[300];
	pthread_mutex_t lock;
	/* latency of get_option, in microseconds */
	long *samples;
	size_t n_samples;
};

static void
load_fail(struct load *l, const char *what, const sr_error *err)
{
	pthread_mutex_lock(&l->lock);
	if (atomic_fetch_add(&l->failures, 1) == 0)
		snprintf(l->first_failure, sizeof(l->first_failure), "%s: %d %s", what,
		         err ? err->code : 0, err ? err->message : "");
	pthread_mutex_unlock(&l->lock);
}

static void *
worker(void *arg)
{
	struct load *l = arg;
	sr_error err;
	sr_client *c = sr_client_open(l->path, &err);
	unsigned seed = (unsigned)(uintptr_t)pthread_self();
	char out[4096], *in;
	size_t got;

	atomic_fetch_add(&l->ready, 1);
	if (c == NULL) {
		load_fail(l, "open", &err);
		return NULL;
	}
	while (now_ms() < l->deadline) {
		sr_socket *s = sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &err);
		size_t len = 1 + (size_t)rand_r(&seed) % sizeof(out);

		if (s == NULL) {
			load_fail(l, "socket", &err);
			break;
		}
		for (size_t i = 0; i < len; i++)
			out[i] = (char)rand_r(&seed);
		if (sr_connect(s, "127.0.0.1", l->port, 10000, &err) != 0) {
			load_fail(l, "connect", &err);
		} else if (sr_send(s, out, len, 0, &err) != (long)len) {
			load_fail(l, "send", &err);
		} else if (sr_read(s, (long)len, &in, &got, &err) != 0) {
			load_fail(l, "read", &err);
		} else {
			if (got != len || memcmp(in, out, len) != 0)
				load_fail(l, "echo differs", NULL);
			free(in);
		}
		if (sr_close(s, &err) != 0)
			load_fail(l, "close", &err);
		sr_socket_free(s);
		atomic_fetch_add(&l->cycles, 1);
		atomic_fetch_add(&l->calls, 5);
	}
	sr_client_close(c);
	return NULL;
}

static void *
latency_probe(void *arg)
{
	struct load *l = arg;
	sr_error err;
	sr_client *c = sr_client_open(l->path, &err);
	sr_socket *s;
	long v;

	if (c == NULL || (s = sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &err)) == NULL) {
		load_fail(l, "latency client", &err);
		return NULL;
	}
	while (now_ms() < l->deadline && l->n_samples < LATENCY_SAMPLES_MAX) {
		struct timespec a, b;

		clock_gettime(CLOCK_MONOTONIC, &a);
		if (sr_get_option(s, SO_RCVBUF, &v, &err) != 0) {
			load_fail(l, "get_option", &err);
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		l->samples[l->n_samples++] =
		    (b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000;
		usleep(1000);
	}
	sr_socket_free(s);
	sr_client_close(c);
	return NULL;
}

static int
cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return (x > y) - (x < y);
}

static void
fixture_up(void)
{
	struct rlimit rl;

	/* 500 sessions, their sockets and the echo server's ends: the daemon inherits. */
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = rl.rlim_max < 16384 ? rl.rlim_max : 16384;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	ck_assert_msg(rl.rlim_cur >= 4 * LOAD_CLIENTS, "RLIMIT_NOFILE hard limit %lu is too low",
	              (unsigned long)rl.rlim_max);
	asan_quarantine_mb(16);
	fixture_daemon_up();
}

START_TEST(five_hundred_clients)
{
	const char *env = getenv("LOAD_SECONDS");
	int seconds = env && atoi(env) > 0 ? atoi(env) : 10;
	struct load *l = calloc(1, sizeof(*l));
	pthread_t threads[LOAD_CLIENTS], probe;
	pthread_attr_t attr;
	struct echo e;
	long rss_idle = process_rss_kib(daemon_worker_pid(&test_daemon)), rss_peak = rss_idle,
	     rss_after, v;
	long long t0;

	ck_assert_ptr_nonnull(l);
	l->samples = calloc(LATENCY_SAMPLES_MAX, sizeof(long));
	ck_assert_ptr_nonnull(l->samples);
	pthread_mutex_init(&l->lock, NULL);
	echo_start(&e);
	l->path = test_daemon.path;
	l->port = e.port;
	t0 = now_ms();
	l->deadline = t0 + seconds * 1000LL;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (int i = 0; i < LOAD_CLIENTS; i++)
		ck_assert_int_eq(pthread_create(&threads[i], &attr, worker, l), 0);
	ck_assert_int_eq(pthread_create(&probe, &attr, latency_probe, l), 0);
	while (now_ms() < l->deadline) {
		if ((v = process_rss_kib(daemon_worker_pid(&test_daemon))) > rss_peak)
			rss_peak = v;
		usleep(200000);
	}
	for (int i = 0; i < LOAD_CLIENTS; i++)
		pthread_join(threads[i], NULL);
	pthread_join(probe, NULL);
	echo_stop(&e);
	ck_assert_msg(atomic_load(&l->failures) == 0, "%ld failures; first: %s",
	              atomic_load(&l->failures), l->first_failure);
	ck_assert_int_eq(atomic_load(&l->ready), LOAD_CLIENTS);
	ck_assert_int_gt(atomic_load(&l->cycles), LOAD_CLIENTS);
	ck_assert_int_gt(l->n_samples, 10);
	qsort(l->samples, l->n_samples, sizeof(long), cmp_long);
	fprintf(stderr,
	        "load: %d clients for %d s: %ld socket cycles (%ld calls, %.0f calls/s); "
	        "get_option latency under load: p50 %ld us, p99 %ld us, max %ld us (%zu samples); "
	        "daemon RSS idle %ld KiB, peak %ld KiB\n",
	        LOAD_CLIENTS, seconds, atomic_load(&l->cycles), atomic_load(&l->calls),
	        (double)atomic_load(&l->calls) * 1000.0 / (double)(now_ms() - t0),
	        l->samples[l->n_samples / 2], l->samples[l->n_samples * 99 / 100],
	        l->samples[l->n_samples - 1], l->n_samples, rss_idle, rss_peak);
	/* The sessions are gone: fds back to idle (the fixture checks exactly), and memory
	 * is not held per finished session. */
	ck_assert_int_eq(daemon_wait_fds(&test_daemon, test_daemon.idle_fds, 10000),
	                 test_daemon.idle_fds);
	rss_after = process_rss_kib(daemon_worker_pid(&test_daemon));
	ck_assert_msg(rss_after < rss_idle + RSS_AFTER_LOAD_KIB,
	              "daemon RSS %ld KiB after the load, %ld KiB idle", rss_after, rss_idle);
	free(l->samples);
	free(l);
}
END_TEST

Suite *
load_suite(void)
{
	Suite *s = suite_create("load");
	TCase *tc = tcase_create("load");

	tcase_add_checked_fixture(tc, fixture_up, fixture_daemon_down_serving);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, five_hundred_clients);
	suite_add_tcase(s, tc);
	return s;
}
