/*
 * scale.c - the scale figure spread over processes: 100,000 handles need more descriptors
 * than one process may hold where the hard RLIMIT_NOFILE is low (often 20,000 in
 * containers). Each part is this binary started again (`--scale-part`): it holds its share
 * of the sessions, the server end of each of their handles (its own hold servers), and
 * answers the bench's commands on its stdin/stdout:
 *
 *   part -> bench   "s N\n"        N sessions open (one socket pair: its stdin and stdout)
 *   bench -> part   "h\n"          connect the handles
 *   part -> bench   "H N\n"        N handles connected, their server ends held
 *   bench -> part   "m N\n"        N get_option calls on random handles, one at a time
 *   part -> bench   N doubles      their latencies in µs (-1: a call failed)
 *   bench -> part   "q\n"          close everything and exit
 *
 * The bench asks the parts to measure one after the other, so the calls never overlap.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "sockrpc.h"

/* Ports of each part's hold server: a connection from 127.0.0.1 takes one of ~28,000
 * ephemeral ports per destination. */
#define PART_PORTS 4

/* --- the part ----------------------------------------------------------------------- */

static void
say(char what, long n)
{
	char line[64];
	int len = snprintf(line, sizeof(line), "%c %ld\n", what, n);

	if (write_full(STDOUT_FILENO, line, (size_t)len) != 0)
		exit(1);
}

int
scale_part_main(const char *path, int sessions, int handles)
{
	sr_client **clients = calloc((size_t)sessions, sizeof(*clients));
	sr_socket **socks = calloc((size_t)sessions * (size_t)handles, sizeof(*socks));
	int ports[PART_PORTS], opened = 0, held = 0;
	unsigned seed = (unsigned)getpid();
	char cmd[64];
	sr_error e;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (clients == NULL || socks == NULL)
		return 1;
	for (int i = 0; i < PART_PORTS; i++)
		if ((ports[i] = server_hold_start()) < 0)
			return 1;
	for (; opened < sessions; opened++)
		if ((clients[opened] = sr_client_open(path, &e)) == NULL) {
			fprintf(stderr, "scale part: session %d: %s\n", opened, e.message);
			break;
		}
	say('s', opened);
	if (fgets(cmd, sizeof(cmd), stdin) == NULL || cmd[0] != 'h')
		return 1;
	for (int i = 0; i < opened && held == i * handles; i++)
		for (int j = 0; j < handles; j++) {
			sr_socket *s = sr_socket_new(clients[i], AF_INET, SOCK_STREAM, 0, &e);

			if (s == NULL ||
			    sr_connect(s, "127.0.0.1", ports[held % PART_PORTS], 10000, &e) != 0) {
				fprintf(stderr, "scale part: handle %d: %s\n", held, e.message);
				sr_socket_free(s);
				break;
			}
			socks[held++] = s;
		}
	/* The daemon answered every connect: the hold servers have the other ends, or soon. */
	for (int t = 0; t < 500 && server_hold_count() < (size_t)held; t++)
		usleep(10000);
	say('H', held);
	while (fgets(cmd, sizeof(cmd), stdin) != NULL && cmd[0] == 'm') {
		int n = atoi(cmd + 2);
		double *lat = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
		long v;

		if (lat == NULL)
			return 1;
		for (int i = 0; i < n; i++) {
			sr_socket *s = held > 0 ? socks[rand_r(&seed) % (unsigned)held] : NULL;
			double c0 = now_s();

			lat[i] = s != NULL && sr_get_option(s, SO_RCVBUF, &v, &e) == 0
			             ? (now_s() - c0) * 1e6
			             : -1;
		}
		if (write_full(STDOUT_FILENO, lat, (size_t)n * sizeof(double)) != 0)
			return 1;
		free(lat);
	}
	for (int i = 0; i < held; i++)
		sr_socket_free(socks[i]);
	for (int i = 0; i < opened; i++)
		sr_client_close(clients[i]);
	server_hold_release();
	free(socks);
	free(clients);
	return 0;
}

/* --- the bench's side ---------------------------------------------------------------- */

struct part {
	pid_t pid;
	int to, from; /* its stdin and stdout: one socket */
};

static struct part *parts;
static int n_parts;

/* Reads one "c N\n" line of part p; returns N, or -1. */
static long
hear(struct part *p, char want)
{
	char line[64];
	size_t n = 0;

	while (n < sizeof(line) - 1 && read(p->from, &line[n], 1) == 1 && line[n] != '\n')
		n++;
	line[n] = '\0';
	if (n < 3 || line[0] != want)
		return -1;
	return atol(line + 2);
}

static void
tell(struct part *p, const char *cmd)
{
	if (write_full(p->to, cmd, strlen(cmd)) != 0)
		fprintf(stderr, "sockrpc_bench: scale part %d is gone\n", (int)p->pid);
}

/* Starts k parts (self: this binary) sharing `sessions` x `handles` on the daemon at
 * path; returns the sessions they opened in all. */
int
scale_parts_start(const char *self, const char *path, int k, int sessions, int handles)
{
	int opened = 0;

	parts = calloc((size_t)k, sizeof(*parts));
	if (parts == NULL)
		return 0;
	for (n_parts = 0; n_parts < k; n_parts++) {
		struct part *p = &parts[n_parts];
		int sv[2]; /* a socket pair: write_full() sends with MSG_NOSIGNAL */
		char s_arg[16], h_arg[16];
		int share = sessions / k + (n_parts < sessions % k);

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
			break;
		snprintf(s_arg, sizeof(s_arg), "%d", share);
		snprintf(h_arg, sizeof(h_arg), "%d", handles);
		fflush(NULL);
		if ((p->pid = fork()) == 0) {
			dup2(sv[1], STDIN_FILENO);
			dup2(sv[1], STDOUT_FILENO);
			execl(self, self, "--scale-part", path, s_arg, h_arg, (char *)NULL);
			_exit(127);
		}
		close(sv[1]);
		p->to = p->from = sv[0];
		if (p->pid < 0) {
			close(sv[0]);
			break;
		}
	}
	for (int i = 0; i < n_parts; i++) {
		long n = hear(&parts[i], 's');

		opened += n > 0 ? (int)n : 0;
	}
	return opened;
}

/* Has every part connect its handles (at once); returns the handles held in all. */
int
scale_parts_connect(void)
{
	int held = 0;

	for (int i = 0; i < n_parts; i++)
		tell(&parts[i], "h\n");
	for (int i = 0; i < n_parts; i++) {
		long n = hear(&parts[i], 'H');

		held += n > 0 ? (int)n : 0;
	}
	return held;
}

/* n get_option latencies (µs) into lat, spread over the parts, one call at a time.
 * Returns 0, or -1 if a call failed. */
int
scale_parts_measure(double *lat, int n)
{
	int at = 0;

	for (int i = 0; i < n_parts; i++) {
		int k = n / n_parts + (i < n % n_parts);
		char cmd[32];

		snprintf(cmd, sizeof(cmd), "m %d\n", k);
		tell(&parts[i], cmd);
		if (read_full(parts[i].from, lat + at, (size_t)k * sizeof(double)) != 0)
			return -1;
		for (int j = 0; j < k; j++)
			if (lat[at + j] < 0)
				return -1;
		at += k;
	}
	return 0;
}

void
scale_parts_stop(void)
{
	for (int i = 0; i < n_parts; i++)
		tell(&parts[i], "q\n");
	for (int i = 0; i < n_parts; i++) {
		close(parts[i].to); /* the same socket as .from */
		waitpid(parts[i].pid, NULL, 0);
	}
	free(parts);
	parts = NULL;
	n_parts = 0;
}

/* Pss (VmRSS: rss) of pid and its children (a split daemon: the parent and its workers),
 * in bytes; -1 if unreadable. */
long
proc_pss_tree(pid_t pid, bool rss)
{
	char path[64];
	long child, all = rss ? proc_vmrss(pid) : proc_pss(pid), v;
	FILE *f;

	if (all < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return all;
	while (fscanf(f, "%ld", &child) == 1)
		if ((v = rss ? proc_vmrss((pid_t)child) : proc_pss((pid_t)child)) > 0)
			all += v;
	fclose(f);
	return all;
}

long
proc_children(pid_t pid)
{
	char path[64];
	long child, n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (fscanf(f, "%ld", &child) == 1)
		n++;
	fclose(f);
	return n;
}
