/*
 * test_idle_poll.c - the worker polls a little before it sleeps (daemon/idle_poll.c):
 * under back-to-back calls it stays awake between them (far fewer sleeps than without),
 * and once the calls stop, or come too far apart to be caught, it sleeps: an idle daemon
 * spends no CPU, and sparse calls cost no more CPU than with polling off. A polling
 * worker still stops on SIGTERM.
 */
#include <check.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fast_paths.h"
#include "harness.h"

/* The worker's CPU time (user + system) in clock ticks. */
static long
cpu_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long utime, stime;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields 14 and 15, counted after the command's closing parenthesis (field 2). */
	p = strrchr(buf, ')');
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime),
	    2);
	return (long)(utime + stime);
}

static long
voluntary_switches(pid_t pid)
{
	long n = proc_status_number(pid, "voluntary_ctxt_switches");

	ck_assert_int_ge(n, 0);
	return n;
}

/* n get_option calls on s, gap_us apart (0: back to back). */
static void
calls(sr_socket *s, int n, int gap_us)
{
	sr_error e;
	long v;

	for (int i = 0; i < n; i++) {
		ck_assert_msg(sr_get_option(s, SO_RCVBUF, &v, &e) == 0, "get_option: %s",
		              e.message);
		if (gap_us > 0)
			usleep((useconds_t)gap_us);
	}
}

/* Starts d with polling off (idle-poll added to the run's SOCKRPC_DISABLE) or as the
 * run has it, so that both differ only in polling. */
static void
start(struct daemon *d, bool polling_off)
{
	const char *was = getenv("SOCKRPC_DISABLE");
	char list[256];

	if (!polling_off) {
		daemon_start(d, NULL);
		return;
	}
	snprintf(list, sizeof(list), "%s%sidle-poll", was ? was : "", was && was[0] ? "," : "");
	daemon_start_disabling(d, list);
}

/* Whether the daemon started by start(d, false) polls: another CPU, and not turned off. */
static bool
polls(void)
{
	cpu_set_t set;

	return !fast_path_off("idle-poll") && sched_getaffinity(0, sizeof(set), &set) == 0 &&
	       CPU_COUNT(&set) >= 2;
}

/* A daemon (polling, or off with SOCKRPC_DISABLE=idle-poll), a client on it and a
 * socket, warmed up with a few calls. */
struct run {
	struct daemon d;
	sr_client *c;
	sr_socket *s;
	pid_t worker;
	cpu_set_t was; /* this process's CPUs before run_open */
};

/* Puts the worker on one CPU and this process (the client) on another, where there are
 * two: a client on the worker's CPU would preempt it, and the worker would then find
 * the next call in without having slept, polling or not. */
static void
separate_cpus(struct run *r)
{
	cpu_set_t mine, one;
	int first = -1, second = -1;

	CPU_ZERO(&mine);
	if (sched_getaffinity(0, sizeof(mine), &mine) != 0)
		return;
	r->was = mine;
	for (int i = 0; i < CPU_SETSIZE && second < 0; i++)
		if (CPU_ISSET(i, &mine)) {
			if (first < 0)
				first = i;
			else
				second = i;
		}
	if (second < 0)
		return;
	CPU_ZERO(&one);
	CPU_SET(first, &one);
	ck_assert_int_eq(sched_setaffinity(r->worker, sizeof(one), &one), 0);
	CPU_ZERO(&one);
	CPU_SET(second, &one);
	ck_assert_int_eq(sched_setaffinity(0, sizeof(one), &one), 0);
}

static void
run_open(struct run *r, bool polling_off)
{
	start(&r->d, polling_off);
	r->c = daemon_client(&r->d);
	r->s = sr_socket_new(r->c, AF_INET, SOCK_STREAM, 0, NULL);
	ck_assert_ptr_nonnull(r->s);
	r->worker = daemon_worker_pid(&r->d);
	CPU_ZERO(&r->was);
	separate_cpus(r);
	calls(r->s, 200, 0);
}

/* This process back on the CPUs it had before run_open. */
static void
restore_cpus(const struct run *r)
{
	if (CPU_COUNT(&r->was) > 0)
		sched_setaffinity(0, sizeof(r->was), &r->was);
}

static void
run_close(struct run *r)
{
	sr_socket_free(r->s);
	sr_client_close(r->c);
	daemon_stop(&r->d);
	restore_cpus(r);
}

/* How often the worker slept (voluntary context switches) during n back-to-back calls. */
static long
sleeps_in_calls(bool polling_off, int n)
{
	struct run r;
	long before, slept;

	run_open(&r, polling_off);
	before = voluntary_switches(r.worker);
	calls(r.s, n, 0);
	slept = voluntary_switches(r.worker) - before;
	run_close(&r);
	return slept;
}

START_TEST(back_to_back_calls_keep_the_worker_awake)
{
	const int n = 4000;
	long on, off;

	/* A daemon run under a tool (SOCKRPC_TEST_WRAPPER) is too slow for the window. */
	if (!polls() || getenv("SOCKRPC_TEST_WRAPPER") != NULL)
		return;
	on = sleeps_in_calls(false, n);
	off = sleeps_in_calls(true, n);
	/* Without polling the worker, on a CPU of its own, sleeps after every answer;
	 * polling, only when a call is late past the window (a slow client, under ASan). */
	ck_assert_msg(on < n / 4 && off > n / 2,
	              "the worker slept %ld times in %d calls polling, %ld without", on, n, off);
}
END_TEST

START_TEST(an_idle_worker_sleeps)
{
	struct run r;
	long used;

	run_open(&r, false);
	calls(r.s, 3000, 0);
	usleep(100 * 1000);
	used = cpu_ticks(r.worker);
	sleep(1); /* the session stays open, its socket too */
	used = cpu_ticks(r.worker) - used;
	/* Polling for ever would be about a second of CPU (100 ticks at 100 Hz). */
	ck_assert_msg(used <= 5, "the idle worker used %ld ticks in a second", used);
	run_close(&r);
}
END_TEST

START_TEST(a_polling_worker_stops_on_sigterm)
{
	struct run r;
	sr_error e;
	long v;

	run_open(&r, false);
	calls(r.s, 2000, 0);
	/* The window is open: the daemon must still stop within HARNESS_STOP_MS, exit 0,
	 * with the session open; the client then finds it gone. */
	daemon_stop(&r.d);
	ck_assert_int_ne(sr_get_option(r.s, SO_RCVBUF, &v, &e), 0);
	sr_socket_free(r.s);
	sr_client_close(r.c);
	restore_cpus(&r);
}
END_TEST

/* Worker CPU ticks for n calls gap_us apart, with polling off or as the run has it. */
static long
sparse_cost(bool polling_off, int n, int gap_us)
{
	struct run r;
	long used;

	run_open(&r, polling_off);
	used = cpu_ticks(r.worker);
	calls(r.s, n, gap_us);
	used = cpu_ticks(r.worker) - used;
	run_close(&r);
	return used;
}

START_TEST(sparse_calls_cost_no_polling)
{
	/* 1 ms apart, no poll window catches the next call: it shrinks to nothing. One
	 * that stayed at its 50 us would cost 2000 x 50 us = 100 ms, 10 ticks, more. */
	long on = sparse_cost(false, 2000, 1000), off = sparse_cost(true, 2000, 1000);

	ck_assert_msg(on <= off + 5, "sparse calls: %ld ticks polling, %ld without", on, off);
}
END_TEST

Suite *
idle_poll_suite(void)
{
	Suite *s = suite_create("idle_poll");
	TCase *tc = tcase_create("idle_poll");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, back_to_back_calls_keep_the_worker_awake);
	tcase_add_test(tc, an_idle_worker_sleeps);
	tcase_add_test(tc, a_polling_worker_stops_on_sigterm);
	tcase_add_test(tc, sparse_calls_cost_no_polling);
	suite_add_tcase(s, tc);
	return s;
}
