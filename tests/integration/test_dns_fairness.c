/*
 * test_dns_fairness.c - name lookups shared fairly (issue 14, item 10). A fake DNS server
 * on loopback answers names under fast.test at once and never answers those under
 * slow.test; the daemon's resolv.conf points at it, with a 30 s evdns timeout so that
 * only the daemon's own deadline ends a lookup. Uid 65534 floods thousands of pipelined
 * slow lookups from several sessions; a client of uid 1000 must still resolve fast.test
 * within a second, the flood must end in clear errors (queue full, timed out) within the
 * deadline, and the daemon must give back its fds and memory.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as_user.h"
#include "harness.h"
#include "rawcall.h"

#define NOBODY 65534
#define GOOD_UID 1000
#define FLOOD_CHILDREN 3
#define FLOOD_SESSIONS 2 /* per child */
#define FLOOD_PER_SESSION 1000
#define JOB_TIMEOUT_MS 10000 /* the daemon's DNS_JOB_TIMEOUT_MS */
#define GOOD_MAX_MS 1000

struct fake_dns {
	int fd, port;
	int wake[2];
	pthread_t thread;
	atomic_int slow_seen, fast_seen;
};

static struct fake_dns dns;
static char dir[64];

/* The query's name, dotted and lower-case; returns the offset past the question or -1. */
static int
query_name(const unsigned char *q, size_t n, char *name, size_t cap)
{
	size_t i = 12, o = 0;

	while (i < n && q[i] != 0) {
		size_t len = q[i++];

		if (len > 63 || i + len > n || o + len + 1 >= cap)
			return -1;
		for (size_t k = 0; k < len; k++)
			name[o++] =
			    (char)((q[i + k] >= 'A' && q[i + k] <= 'Z') ? q[i + k] + 32 : q[i + k]);
		name[o++] = '.';
		i += len;
	}
	name[o ? o - 1 : 0] = '\0';
	return i + 5 <= n ? (int)(i + 5) : -1;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void *
dns_serve(void *arg)
{
	struct fake_dns *f = arg;
	unsigned char q[512], r[600];
	char name[256];

	for (;;) {
		struct pollfd p[2] = {{.fd = f->fd, .events = POLLIN},
		                      {.fd = f->wake[0], .events = POLLIN}};
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t n;
		int end, qtype;
		size_t len;

		if (poll(p, 2, 1000) <= 0)
			continue;
		if (p[1].revents)
			return NULL;
		n = recvfrom(f->fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
		if (n < 12 || (end = query_name(q, (size_t)n, name, sizeof(name))) < 0)
			continue;
		if (ends_with(name, "slow.test")) {
			atomic_fetch_add(&f->slow_seen, 1);
			continue; /* never answered */
		}
		qtype = q[end - 4] << 8 | q[end - 3];
		memcpy(r, q, (size_t)end);
		r[2] = 0x84 | (q[2] & 0x01); /* a reply, authoritative, RD as asked */
		r[3] = 0x80;                 /* RA, no error */
		memset(r + 6, 0, 6);         /* no answer, authority or additional records yet */
		len = (size_t)end;
		if (!ends_with(name, "fast.test")) {
			r[3] |= 3; /* NXDOMAIN */
		} else {
			atomic_fetch_add(&f->fast_seen, 1);
			if (qtype == 1) { /* A: 127.0.0.1 */
				static const unsigned char a[] = {0xc0, 0x0c, 0, 1, 0,   1, 0, 0,
				                                  0,    60,   0, 4, 127, 0, 0, 1};

				r[7] = 1;
				memcpy(r + len, a, sizeof(a));
				len += sizeof(a);
			}
		}
		sendto(f->fd, r, len, 0, (struct sockaddr *)&from, fl);
	}
}

static void
dns_start(struct fake_dns *f)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);

	memset(f, 0, sizeof(*f));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(f->fd, 0);
	ck_assert_int_eq(bind(f->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(f->fd, (struct sockaddr *)&sin, &len), 0);
	f->port = ntohs(sin.sin_port);
	ck_assert_int_eq(pipe(f->wake), 0);
	ck_assert_int_eq(pthread_create(&f->thread, NULL, dns_serve, f), 0);
}

static void
dns_stop(struct fake_dns *f)
{
	ck_assert_int_eq(write(f->wake[1], "x", 1), 1);
	pthread_join(f->thread, NULL);
	close(f->fd);
	close(f->wake[0]);
	close(f->wake[1]);
}

static void
fairness_up(void)
{
	static char resolv[96], hosts[96], policy[96];
	const char *extra[] = {"--resolv-conf", resolv, "--hosts", hosts, "--policy", policy, NULL};
	char conf[128];

	signal(SIGPIPE, SIG_IGN);
	dns_start(&dns);
	snprintf(dir, sizeof(dir), "/tmp/srdnsfair.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chmod(dir, 0755), 0);
	snprintf(resolv, sizeof(resolv), "%s/resolv.conf", dir);
	snprintf(hosts, sizeof(hosts), "%s/hosts", dir);
	snprintf(policy, sizeof(policy), "%s/test.policy", dir);
	snprintf(conf, sizeof(conf),
	         "nameserver 127.0.0.1:%d\nsearch .\noptions timeout:30 attempts:1\n", dns.port);
	write_file(resolv, conf);
	write_file(hosts, "127.0.0.1 localhost\n");
	write_file(policy, "allow uid=0 *\nallow uid=65534 resolve *\nallow uid=1000 resolve *\n");
	daemon_start(&test_daemon, extra);
	ck_assert_int_eq(chmod(test_daemon.dir, 0755), 0);
}

static void
fairness_remove_dir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static void
fairness_down(void)
{
	fixture_daemon_down();
	dns_stop(&dns);
	fairness_remove_dir();
}

static long
daemon_rss_kib(void)
{
	return proc_status_number(daemon_worker_pid(&test_daemon), "VmRSS");
}

/*
 * As nobody: several sessions pipeline thousands of lookups that are never answered,
 * then read every reply. Reports: 0 refused (queue full), 1 timed out, 2 anything else,
 * 3 replies missing, 4 ms from the flood to its last reply; texts: one of each error.
 */
static void
flooder(sr_client *c, struct report *r)
{
	static uint8_t frames[FLOOD_PER_SESSION * 128];
	int fd[FLOOD_SESSIONS];
	long long t0;
	int counts[4] = {0, 0, 0, 0};

	(void)c;
	for (int s = 0; s < FLOOD_SESSIONS; s++)
		fd[s] = raw_session(test_daemon.path);
	child_sync();
	for (int s = 0; s < FLOOD_SESSIONS; s++) {
		size_t len = 0;

		for (int i = 0; i < FLOOD_PER_SESSION; i++) {
			Sockrpc__GetAddressInfoRequest req =
			    SOCKRPC__GET_ADDRESS_INFO_REQUEST__INIT;
			char name[64];

			snprintf(name, sizeof(name), "n%d-%d-%d.slow.test", getpid(), s, i);
			req.address = name;
			req.family = SOCKRPC__FAMILY__FAMILY_INET;
			len +=
			    rc_frame(frames + len, M_GET_ADDRESS_INFO, (uint64_t)i + 2, &req.base);
		}
		raw_write(fd[s], frames, len);
	}
	t0 = now_ms();
	child_sync();
	for (int s = 0; s < FLOOD_SESSIONS; s++) {
		for (int i = 0; i < FLOOD_PER_SESSION; i++) {
			uint64_t id;
			unsigned method;
			ProtobufCMessage *m = rc_reply(fd[s], &id, &method, JOB_TIMEOUT_MS + 10000);
			int code;

			if (m == NULL) {
				counts[3] += FLOOD_PER_SESSION - i;
				break;
			}
			code = rc_code(m);
			if (code == SR_ELIMIT || code == SR_ETIMEDOUT) {
				int k = code == SR_ELIMIT ? 0 : 1;

				if (counts[k]++ == 0)
					snprintf(r->o[k].text, sizeof(r->o[k].text), "%s",
					         rc_message(m));
			} else {
				if (counts[2]++ == 0)
					snprintf(r->o[2].text, sizeof(r->o[2].text), "%d %s", code,
					         rc_message(m));
			}
			protobuf_c_message_free_unpacked(m, NULL);
		}
		close(fd[s]);
	}
	for (int k = 0; k < 4; k++)
		r->o[k].value = counts[k];
	r->o[4].value = (long)(now_ms() - t0);
	r->n = 5;
}

/* As uid 1000: resolves fast.test a few times; each outcome's value is its time in ms. */
static void
good_resolver(sr_client *c, struct report *r)
{
	for (int i = 0; i < 5; i++) {
		sr_addrinfo *ai = NULL;
		sr_error e;
		long long t0 = now_ms();
		int rc = sr_get_address_info(c, "fast.test", NULL, AF_INET, &ai, &e);

		rec(r, rc, &e, (long)(now_ms() - t0));
		if (rc == 0) {
			snprintf(r->o[i].text, sizeof(r->o[i].text), "%s", ai->ip);
			sr_addrinfo_free(ai);
		}
		sleep_ms(100);
	}
}

START_TEST(flood_of_unanswered_lookups_does_not_delay_others)
{
	struct child flood[FLOOD_CHILDREN];
	struct report fr[FLOOD_CHILDREN], gr;
	long rss_idle = daemon_rss_kib(), rss_after;
	long worst = 0;
	sr_error e;

	for (int i = 0; i < FLOOD_CHILDREN; i++) {
		child_start(&flood[i], NOBODY, NOBODY, flooder);
		child_wait_ready(&flood[i]);
	}
	for (int i = 0; i < FLOOD_CHILDREN; i++)
		child_go(&flood[i]);
	for (int i = 0; i < FLOOD_CHILDREN; i++) {
		child_wait_ready(&flood[i]); /* its lookups are sent */
		child_go(&flood[i]);
	}
	sleep_ms(200);
	run_as(GOOD_UID, GOOD_UID, good_resolver, &gr);
	for (int i = 0; i < 5; i++) {
		assert_ok(&gr, i);
		ck_assert_str_eq(gr.o[i].text, "127.0.0.1");
		if (gr.o[i].value > worst)
			worst = gr.o[i].value;
	}
	ck_assert_msg(worst < GOOD_MAX_MS, "the good client's lookup took %ld ms", worst);
	/* A connect by a name never answered fails with the lookup's deadline, not its own. */
	{
		sr_client *c = daemon_client(&test_daemon);
		sr_socket *s = sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &e);
		long long t0 = now_ms();

		ck_assert_ptr_nonnull(s);
		ck_assert_int_eq(sr_connect(s, "connect.slow.test", 80, 30000, &e), -1);
		ck_assert_msg(e.code == SR_ETIMEDOUT && strstr(e.message, "cannot resolve host") &&
		                  strstr(e.message, "timed out"),
		              "connect: %d %s", e.code, e.message);
		ck_assert_int_le(now_ms() - t0, JOB_TIMEOUT_MS + 2000);
		sr_socket_free(s);
		sr_client_close(c);
	}
	for (int i = 0; i < FLOOD_CHILDREN; i++) {
		child_finish(&flood[i], &fr[i]);
		fprintf(stderr,
		        "dns flood %d: %ld refused, %ld timed out, %ld other, %ld missing, "
		        "last reply after %ld ms\n",
		        i, fr[i].o[0].value, fr[i].o[1].value, fr[i].o[2].value, fr[i].o[3].value,
		        fr[i].o[4].value);
		ck_assert_msg(fr[i].o[2].value == 0, "unexpected reply: %s", fr[i].o[2].text);
		ck_assert_int_eq(fr[i].o[3].value, 0);
		ck_assert_int_eq(fr[i].o[0].value + fr[i].o[1].value,
		                 FLOOD_SESSIONS * FLOOD_PER_SESSION);
		ck_assert_int_le(fr[i].o[4].value, JOB_TIMEOUT_MS + 3000);
		if (fr[i].o[0].value > 0)
			ck_assert_ptr_nonnull(
			    strstr(fr[i].o[0].text, "too many name lookups waiting"));
		if (fr[i].o[1].value > 0)
			ck_assert_ptr_nonnull(strstr(fr[i].o[1].text, "timed out"));
	}
	/* The uid's queue was full: most were refused at once; the rest timed out. */
	ck_assert_int_gt(fr[0].o[0].value + fr[1].o[0].value + fr[2].o[0].value, 0);
	ck_assert_int_gt(fr[0].o[1].value + fr[1].o[1].value + fr[2].o[1].value, 0);
	ck_assert_int_gt(atomic_load(&dns.slow_seen), 0);
	ck_assert_int_gt(atomic_load(&dns.fast_seen), 0);
	/* And a lookup of the good uid still works after the flood. */
	run_as(GOOD_UID, GOOD_UID, good_resolver, &gr);
	assert_ok(&gr, 0);
	sleep_ms(500);
	rss_after = daemon_rss_kib();
	fprintf(stderr,
	        "dns: good client's slowest lookup %ld ms; daemon RSS %ld KiB idle, %ld "
	        "after\n",
	        worst, rss_idle, rss_after);
#ifndef __SANITIZE_ADDRESS__ /* ASan's quarantine keeps freed memory resident */
	ck_assert_msg(rss_after - rss_idle < 8 * 1024, "daemon RSS %ld KiB, %ld idle", rss_after,
	              rss_idle);
#endif
}
END_TEST

/* SIGTERM with lookups in flight and queued: the daemon answers them, frees them (an ASan
 * build's leak check runs at exit) and exits 0 at once. */
START_TEST(sigterm_with_lookups_pending)
{
	static uint8_t frames[300 * 128];
	int fd = raw_session(test_daemon.path);
	size_t len = 0;
	long long t0;

	for (int i = 0; i < 300; i++) {
		Sockrpc__GetAddressInfoRequest req = SOCKRPC__GET_ADDRESS_INFO_REQUEST__INIT;
		char name[64];

		snprintf(name, sizeof(name), "t%d.slow.test", i);
		req.address = name;
		len += rc_frame(frames + len, M_GET_ADDRESS_INFO, (uint64_t)i + 2, &req.base);
	}
	raw_write(fd, frames, len);
	sleep_ms(300);
	t0 = now_ms();
	daemon_stop(&test_daemon); /* asserts exit 0 */
	ck_assert_int_lt(now_ms() - t0, 2000);
	close(fd);
	dns_stop(&dns);
	fairness_remove_dir();
}
END_TEST

Suite *
dns_fairness_suite(void)
{
	Suite *s = suite_create("dns_fairness");
	TCase *tc = tcase_create("flood");
	TCase *stop = tcase_create("stop");

	tcase_add_checked_fixture(tc, fairness_up, fairness_down);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, flood_of_unanswered_lookups_does_not_delay_others);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(stop, fairness_up, NULL);
	tcase_set_timeout(stop, 30);
	tcase_add_test(stop, sigterm_with_lookups_pending);
	suite_add_tcase(s, stop);
	return s;
}
