/*
 * peers.c - what the bench talks to besides libsockrpc: child processes (sockrpcd, socat,
 * danted, the ping-pong echo), the loopback TCP servers the bytes go to and come from,
 * SOCKS5, and the daemon's memory from /proc. Nothing here measures anything.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

/* Every child we started, killed at exit. */
#define MAX_CHILDREN 16
static pid_t children[MAX_CHILDREN];
static int n_children;

/* Accepted connections the hold server keeps for the scale figure. */
static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static int *hold_fds;
static size_t hold_n, hold_cap;

double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
sleep_s(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};

	nanosleep(&ts, NULL);
}

/* Starts argv[0] (searched in PATH) with stdout and stderr to log_path (NULL: /dev/null). */
pid_t
spawn(const char *const argv[], const char *log_path)
{
	pid_t pid, parent = getpid();
	int fd;

	if (n_children == MAX_CHILDREN)
		return -1;
	pid = fork();
	if (pid == -1)
		return -1;
	if (pid == 0) {
		/* If the bench dies, so do its children: nothing is left listening. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		fd = open(log_path ? log_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0) {
			dup2(fd, 0);
			close(fd);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	children[n_children++] = pid;
	return pid;
}

/* A child this process forked itself, killed at exit like the spawned ones. */
void
adopt_child(pid_t pid)
{
	if (n_children < MAX_CHILDREN)
		children[n_children++] = pid;
}

/* SIGTERM, then SIGKILL after a second. */
void
kill_child(pid_t pid)
{
	int i, status;

	for (i = 0; i < n_children; i++)
		if (children[i] == pid)
			break;
	if (i == n_children)
		return;
	children[i] = children[--n_children];
	kill(pid, SIGTERM);
	for (int t = 0; t < 100; t++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		sleep_s(0.01);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

void
kill_all_children(void)
{
	while (n_children > 0)
		kill_child(children[n_children - 1]);
}

int
wait_unix_ready(const char *path, double timeout_s)
{
	double end = now_s() + timeout_s;
	int fd;

	while (now_s() < end) {
		if ((fd = unix_connect(path)) >= 0) {
			close(fd);
			return 0;
		}
		sleep_s(0.02);
	}
	return -1;
}

int
wait_tcp_ready(int port, double timeout_s)
{
	double end = now_s() + timeout_s;
	int fd;

	while (now_s() < end) {
		if ((fd = tcp_connect(port)) >= 0) {
			close(fd);
			return 0;
		}
		sleep_s(0.02);
	}
	return -1;
}

/* A port that was free a moment ago (for danted, which must be told its port). */
int
free_tcp_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

bool
program_exists(const char *name)
{
	char path[4096], *dirs, *dir, *save = NULL;
	const char *env = getenv("PATH");
	bool found = false;

	if (strchr(name, '/') != NULL)
		return access(name, X_OK) == 0;
	dirs = strdup(env ? env : "/usr/bin:/bin:/usr/sbin:/sbin");
	for (dir = strtok_r(dirs, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		found = access(path, X_OK) == 0;
	}
	free(dirs);
	return found;
}

int
write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void
bench_cmd(uint8_t out[BENCH_CMD_SIZE], char op, uint64_t n)
{
	out[0] = (uint8_t)op;
	for (int i = 0; i < 8; i++)
		out[1 + i] = (uint8_t)(n >> (56 - 8 * i));
}

/* A bounded wait on every blocking socket, so a stuck peer cannot hang the bench. */
static void
set_timeouts(int fd)
{
	struct timeval tv = {30, 0};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int
tcp_connect(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		close(fd);
		return -1;
	}
	set_timeouts(fd);
	return fd;
}

int
unix_connect(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		close(fd);
		return -1;
	}
	set_timeouts(fd);
	return fd;
}

/* RFC 1928: greeting offering "no authentication", then CONNECT 127.0.0.1:target_port. */
int
socks5_connect(int socks_port, int target_port)
{
	uint8_t greet[3] = {5, 1, 0}, choice[2], req[10] = {5, 1, 0, 1, 127, 0, 0, 1};
	uint8_t rep[10];
	int fd = tcp_connect(socks_port);

	if (fd < 0)
		return -1;
	req[8] = (uint8_t)(target_port >> 8);
	req[9] = (uint8_t)target_port;
	if (write_full(fd, greet, sizeof(greet)) != 0 || read_full(fd, choice, 2) != 0 ||
	    choice[0] != 5 || choice[1] != 0 || write_full(fd, req, sizeof(req)) != 0 ||
	    read_full(fd, rep, 4) != 0 || rep[1] != 0 || rep[3] != 1 ||
	    read_full(fd, rep + 4, 6) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
listen_loopback(int *port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(fd, 4096) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

/* The server's reads and writes: large, so that its side costs every variant as little as
 * it can (the direct baselines are then the real limit). */
#define SERVER_CHUNK (1024 * 1024)

/* One bulk connection: sink N bytes and acknowledge, or source N bytes. */
static void *
bulk_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	static const uint8_t zeros[SERVER_CHUNK];
	uint8_t cmd[BENCH_CMD_SIZE], *buf;
	uint64_t n = 0;
	ssize_t got;

	if (read_full(fd, cmd, sizeof(cmd)) != 0)
		goto done;
	for (int i = 0; i < 8; i++)
		n = n << 8 | cmd[1 + i];
	if (cmd[0] == BENCH_OP_SINK) {
		buf = malloc(SERVER_CHUNK);
		while (n > 0 && buf != NULL) {
			got = read(fd, buf, n < SERVER_CHUNK ? n : SERVER_CHUNK);
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0)
				break;
			n -= (uint64_t)got;
		}
		free(buf);
		if (n == 0)
			write_full(fd, "k", 1);
	} else if (cmd[0] == BENCH_OP_SOURCE) {
		while (n > 0) {
			size_t chunk = n < SERVER_CHUNK ? n : SERVER_CHUNK;

			if (write_full(fd, zeros, chunk) != 0)
				break;
			n -= chunk;
		}
		/* Wait for the reader to finish before closing, so nothing is reset. */
		shutdown(fd, SHUT_WR);
		read(fd, cmd, 1);
	}
done:
	close(fd);
	return NULL;
}

enum server_kind { SERVER_BULK, SERVER_CLOSE, SERVER_HOLD };

struct server {
	int fd;
	enum server_kind kind;
};

static void *
accept_loop(void *arg)
{
	struct server *sv = arg;
	pthread_t t;
	int fd;

	for (;;) {
		fd = accept4(sv->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				sleep_s(0.01);
			continue;
		}
		switch (sv->kind) {
		case SERVER_BULK:
			set_timeouts(fd);
			if (pthread_create(&t, NULL, bulk_conn, (void *)(intptr_t)fd) != 0)
				close(fd);
			else
				pthread_detach(t);
			break;
		case SERVER_CLOSE:
			close(fd);
			break;
		case SERVER_HOLD:
			pthread_mutex_lock(&hold_mu);
			if (hold_n == hold_cap) {
				size_t cap = hold_cap ? hold_cap * 2 : 1024;
				int *grown = realloc(hold_fds, cap * sizeof(*grown));

				if (grown == NULL) {
					close(fd);
					pthread_mutex_unlock(&hold_mu);
					break;
				}
				hold_fds = grown;
				hold_cap = cap;
			}
			hold_fds[hold_n++] = fd;
			pthread_mutex_unlock(&hold_mu);
			break;
		}
	}
	return NULL;
}

static int
server_start(enum server_kind kind)
{
	struct server *sv = malloc(sizeof(*sv));
	pthread_t t;
	int port;

	if (sv == NULL)
		return -1;
	sv->kind = kind;
	if ((sv->fd = listen_loopback(&port)) < 0 ||
	    pthread_create(&t, NULL, accept_loop, sv) != 0) {
		free(sv);
		return -1;
	}
	pthread_detach(t);
	return port;
}

int
server_bulk_start(void)
{
	return server_start(SERVER_BULK);
}

int
server_close_start(void)
{
	return server_start(SERVER_CLOSE);
}

int
server_hold_start(void)
{
	return server_start(SERVER_HOLD);
}

size_t
server_hold_count(void)
{
	size_t n;

	pthread_mutex_lock(&hold_mu);
	n = hold_n;
	pthread_mutex_unlock(&hold_mu);
	return n;
}

void
server_hold_release(void)
{
	pthread_mutex_lock(&hold_mu);
	for (size_t i = 0; i < hold_n; i++)
		close(hold_fds[i]);
	hold_n = 0;
	pthread_mutex_unlock(&hold_mu);
}

/* A UDP echo on 127.0.0.1, its own thread: each datagram goes back to its sender. */
static void *
udp_echo_loop(void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct sockaddr_in from;
	socklen_t len;
	char buf[2048];
	ssize_t n;

	for (;;) {
		len = sizeof(from);
		n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len);
		if (n >= 0)
			sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, len);
	}
	return NULL;
}

int
server_udp_echo_start(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	pthread_t t;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) != 0 ||
	    pthread_create(&t, NULL, udp_echo_loop, (void *)(intptr_t)fd) != 0) {
		close(fd);
		return -1;
	}
	pthread_detach(t);
	return ntohs(sin.sin_port);
}

int
udp_exchange(int port, const void *msg, size_t len)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {2, 0};
	char buf[2048];
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ssize_t n;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (sendto(fd, msg, len, 0, (struct sockaddr *)&sin, sizeof(sin)) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	n = recv(fd, buf, sizeof(buf), 0);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

/* The echo process answers each 64-byte message with the same bytes, blocking I/O. */
int
pingpong_start(void)
{
	int sv[2];
	uint8_t buf[BENCH_PING_SIZE];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return -1;
	pid = fork();
	if (pid == -1)
		return -1;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(sv[0]);
		while (read_full(sv[1], buf, sizeof(buf)) == 0 &&
		       write_full(sv[1], buf, sizeof(buf)) == 0)
			;
		_exit(0);
	}
	adopt_child(pid);
	close(sv[1]);
	return sv[0];
}

static long
proc_field_kb(const char *path, const char *field)
{
	char line[256];
	size_t flen = strlen(field);
	long kb = -1;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
			kb = strtol(line + flen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

long
proc_vmrss(pid_t pid)
{
	char path[64];
	long kb;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	kb = proc_field_kb(path, "VmRSS");
	return kb < 0 ? -1 : kb * 1024;
}

pid_t
proc_serving_pid(pid_t pid)
{
	char path[64];
	long child = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	if ((f = fopen(path, "re")) != NULL) {
		if (fscanf(f, "%ld", &child) != 1)
			child = 0;
		fclose(f);
	}
	return child > 0 ? (pid_t)child : pid;
}

long
proc_pss(pid_t pid)
{
	char path[64];
	long kb;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	kb = proc_field_kb(path, "Pss");
	return kb < 0 ? -1 : kb * 1024;
}

/* CPU seconds (user + system) that pid has used, from /proc/PID/stat; NAN if unreadable. */
double
proc_cpu_s(pid_t pid)
{
	unsigned long long ut, st;
	char path[64], buf[1024], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0.0 / 0.0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* After the command's closing parenthesis: state is field 3, utime 14, stime 15. */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0.0 / 0.0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}
