/*
 * bench.c - sockrpc_bench: every performance figure of DESIGN.md in one run, each variant
 * measured alternately with its baselines (the order rotates every round) and reported
 * as the median of the rounds, then one table of ratios against the targets.
 * It starts its own sockrpcd, socat and danted on loopback temp sockets and ports
 * (peers.c) and kills them on every exit path. It is a tool, not a test.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <netinet/in.h>
#include <unistd.h>

#include "bench.h"
#include "sockrpc.h"

/* Wall-clock bound on the whole run: a wedged peer ends the bench, not CI. */
#define WATCHDOG_FULL_S 900
#define WATCHDOG_QUICK_S 60

/* Each figure is a bit in --only. */
enum {
	FIG_SMALL = 1 << 0,
	FIG_PIPE = 1 << 1,
	FIG_SEND = 1 << 2,
	FIG_RECV = 1 << 3,
	FIG_CONN = 1 << 4,
	FIG_SCALE = 1 << 5,
	FIG_UDP = 1 << 6,
	FIG_HANDBACK = 1 << 7, /* handback.c: bulk send, recv and connect latency */
	FIG_PYTHON = 1 << 8,   /* python.c: the Python binding against Python's socket */
	FIG_RUN = 1 << 9,      /* sockrpc run (launcher.c) */
	FIG_TLS = 1 << 10,     /* tls.c: over TLS, against direct TLS and ssh -L */
	FIG_ALL = (1 << 11) - 1,
};

/* Ports of the hold server: a connection from 127.0.0.1 takes one of ~28,000 ephemeral
 * ports per destination, and the scale figure holds 100,000. */
#define HOLD_PORTS 8

struct options {
	const char *sockrpcd; /* daemon binary; NULL with --socket */
	const char *socket;   /* an already running daemon, for profiling */
	const char *danted;
	uint64_t bytes; /* per bulk transfer */
	int rounds;
	int calls;             /* small calls per round per variant */
	int threads;           /* pipelined figure */
	double seconds;        /* per round of the rate figures */
	int sessions, handles; /* scale figure */
	int scale_procs;       /* its processes (scale.c); 0: as the descriptor limit needs */
	int scale_workers;     /* the scale daemon's --workers; 0: as the limit needs */
	unsigned only;
	bool broker_only; /* skip the baselines (to profile the broker alone) */
	bool quick;
	bool verbose;        /* every round's bulk figures on stderr */
	const char *sockrpc; /* the sockrpc command, for the run figures; NULL: skip them */
};

struct row {
	char figure[48], broker[24], baseline[48], ratio[16], target[24], met[8];
};

static struct options opt;
static const char self_path[] = "/proc/self/exe"; /* scale.c's parts are this binary */
static char tmpdir[128];
static const char *daemon_socket; /* the daemon of figures 1-4 */
static pid_t daemon_pid = -1;
static char socat_socket[192]; /* "" when socat is missing */
static int socks_port = -1;    /* -1 when danted is missing */
static int bulk_port, close_port, udp_port, hold_ports[HOLD_PORTS];
static int ping_fd = -1, relay_fd = -1;
#define MAX_ROWS 64
static struct row rows[MAX_ROWS];
static int n_rows;
static double idle_p50_us = NAN, idle_p99_us = NAN;

/* --- small helpers ------------------------------------------------------------------ */

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "sockrpc_bench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median of the finite values (NaN marks a failed round); sorts v. */
static double
median(double *v, int n)
{
	int m = 0;

	for (int i = 0; i < n; i++)
		if (!isnan(v[i]))
			v[m++] = v[i];
	if (m == 0)
		return NAN;
	qsort(v, (size_t)m, sizeof(*v), cmp_double);
	return m % 2 ? v[m / 2] : (v[m / 2 - 1] + v[m / 2]) / 2;
}

/* The p-th percentile (0-100) by nearest rank; sorts v. */
static double
percentile(double *v, int n, double p)
{
	int k;

	if (n == 0)
		return NAN;
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	k = (int)ceil(p / 100.0 * n) - 1;
	return v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

static void
fmt_num(char *out, size_t size, double v, const char *unit)
{
	if (isnan(v))
		snprintf(out, size, "fail");
	else if (v >= 100)
		snprintf(out, size, "%.0f%s", v, unit);
	else if (v >= 10)
		snprintf(out, size, "%.1f%s", v, unit);
	else
		snprintf(out, size, "%.2f%s", v, unit);
}

double
bench_median(double *v, int n)
{
	return median(v, n);
}

/* Adds a row. ratio NaN: none shown. met: <0 no target, 0 not met, 1 met. */
static void
add_row(const char *figure, double broker, const char *unit, const char *baseline, double ratio,
        const char *target, int met)
{
	struct row *r;

	if (n_rows == MAX_ROWS) {
		fprintf(stderr, "sockrpc_bench: more than %d rows; \"%s\" left out\n", MAX_ROWS,
		        figure);
		return;
	}
	r = &rows[n_rows++];

	snprintf(r->figure, sizeof(r->figure), "%s", figure);
	fmt_num(r->broker, sizeof(r->broker), broker, unit);
	snprintf(r->baseline, sizeof(r->baseline), "%s", baseline);
	if (isnan(ratio))
		snprintf(r->ratio, sizeof(r->ratio), "-");
	else
		snprintf(r->ratio, sizeof(r->ratio), "%.2fx", ratio);
	snprintf(r->target, sizeof(r->target), "%s", target);
	snprintf(r->met, sizeof(r->met), "%s", met < 0 ? "-" : met ? "yes" : "NO");
}

void
bench_add_row(const char *figure, double broker, const char *unit, const char *baseline,
              double ratio, const char *target, int met)
{
	add_row(figure, broker, unit, baseline, ratio, target, met);
}

static void
print_table(void)
{
	printf("\n%-34s | %-11s | %-34s | %-7s | %-14s | %s\n", "figure", "broker", "baseline(s)",
	       "ratio", "target", "met");
	printf("%.34s-+-%.11s-+-%.34s-+-%.7s-+-%.14s-+-----\n",
	       "----------------------------------------", "--------------------",
	       "----------------------------------------", "----------", "--------------------");
	for (int i = 0; i < n_rows; i++)
		printf("%-34s | %-11s | %-34s | %-7s | %-14s | %s\n", rows[i].figure,
		       rows[i].broker, rows[i].baseline, rows[i].ratio, rows[i].target,
		       rows[i].met);
	fflush(stdout);
}

static void
on_fatal_signal(int sig)
{
	static const char msg[] = "sockrpc_bench: stopped (watchdog or signal); cleaning up\n";

	write(2, msg, sizeof(msg) - 1);
	kill_all_children();
	_exit(sig == SIGALRM ? 3 : 2);
}

static void
cleanup(void)
{
	char path[256];

	kill_all_children();
	if (tmpdir[0] == '\0')
		return;
	/* The temp dir holds only our sockets, config and logs. */
	const char *names[] = {"a.sock", "b.sock", "socat.sock",  "danted.conf", "danted.log",
	                       "a.log",  "b.log",  "audit-a.log", "audit-b.log", "socat.log"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
		unlink(path);
	}
	rmdir(tmpdir);
}

static sr_client *
open_client(const char *path)
{
	sr_error e;
	sr_client *c = sr_client_open(path, &e);

	if (c == NULL)
		fprintf(stderr, "sockrpc_bench: cannot open a client on %s: %s\n", path, e.message);
	return c;
}

/* A new handle connected to 127.0.0.1:port, or NULL. */
static sr_socket *
broker_connect(sr_client *c, int port)
{
	sr_error e;
	sr_socket *s = sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &e);

	if (s == NULL) {
		fprintf(stderr, "sockrpc_bench: socket: %s\n", e.message);
		return NULL;
	}
	if (sr_connect(s, "127.0.0.1", port, 10000, &e) != 0) {
		fprintf(stderr, "sockrpc_bench: connect: %s\n", e.message);
		sr_socket_free(s);
		return NULL;
	}
	return s;
}

/* --- 1. small calls ---------------------------------------------------------------- */

/* Per-call latencies in µs into lat[0..n). Returns 0 or -1. */
static int
small_broker(sr_socket *s, double *lat, int n)
{
	sr_error e;
	long v;

	for (int i = 0; i < n; i++) {
		double t0 = now_s();

		if (sr_get_option(s, SO_RCVBUF, &v, &e) != 0) {
			fprintf(stderr, "sockrpc_bench: get_option: %s\n", e.message);
			return -1;
		}
		lat[i] = (now_s() - t0) * 1e6;
	}
	return 0;
}

static int
small_raw(double *lat, int n)
{
	uint8_t buf[BENCH_PING_SIZE] = {0};

	for (int i = 0; i < n; i++) {
		double t0 = now_s();

		if (write_full(ping_fd, buf, sizeof(buf)) != 0 ||
		    read_full(ping_fd, buf, sizeof(buf)) != 0)
			return -1;
		lat[i] = (now_s() - t0) * 1e6;
	}
	return 0;
}

static void
figure_small(sr_client *c)
{
	int n = opt.calls, R = opt.rounds;
	double *lat = calloc((size_t)n, sizeof(double));
	double *b50 = calloc((size_t)R, sizeof(double)), *r50 = calloc((size_t)R, sizeof(double));
	double *b99 = calloc((size_t)R, sizeof(double)), *bmean = calloc((size_t)R, sizeof(double));
	double *rmean = calloc((size_t)R, sizeof(double));
	sr_error e;
	sr_socket *s = sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &e);
	char base[48];
	double bm, rm;

	if (s == NULL)
		die("socket: %s", e.message);
	small_broker(s, lat, n < 1000 ? n : 1000); /* warm-up both paths */
	small_raw(lat, n < 1000 ? n : 1000);
	for (int r = 0; r < R; r++) {
		for (int k = 0; k < 2; k++) {
			double sum = 0;

			if ((k + r) % 2 == 0) {
				if (small_broker(s, lat, n) != 0) {
					b50[r] = b99[r] = bmean[r] = NAN;
					continue;
				}
				for (int i = 0; i < n; i++)
					sum += lat[i];
				bmean[r] = sum / n;
				b99[r] = percentile(lat, n, 99);
				b50[r] = percentile(lat, n, 50);
			} else if (!opt.broker_only) {
				if (small_raw(lat, n) != 0) {
					r50[r] = rmean[r] = NAN;
					continue;
				}
				for (int i = 0; i < n; i++)
					sum += lat[i];
				rmean[r] = sum / n;
				r50[r] = percentile(lat, n, 50);
			}
		}
	}
	idle_p50_us = median(b50, R);
	idle_p99_us = median(b99, R);
	bm = median(bmean, R);
	rm = opt.broker_only ? NAN : median(r50, R);
	snprintf(base, sizeof(base), "raw 64B ping-pong %.1fus", rm);
	add_row("small call get_option p50", idle_p50_us, "us", base, idle_p50_us / rm, "<= 1.5x",
	        isnan(rm) ? -1 : idle_p50_us / rm <= 1.5);
	rm = opt.broker_only ? NAN : median(rmean, R);
	snprintf(base, sizeof(base), "raw 64B ping-pong %.1fus", rm);
	add_row("small call get_option mean", bm, "us", base, bm / rm, "<= 1.5x",
	        isnan(rm) ? -1 : bm / rm <= 1.5);
	sr_socket_free(s);
	free(lat), free(b50), free(r50), free(b99), free(bmean), free(rmean);
}

/* --- 1b. pipelined small calls ------------------------------------------------------ */

struct pipe_worker {
	sr_socket *s;
	double until;
	long calls;
	bool failed;
};

static void *
pipe_thread(void *arg)
{
	struct pipe_worker *w = arg;
	sr_error e;
	long v;

	while (now_s() < w->until) {
		for (int i = 0; i < 64; i++) {
			if (sr_get_option(w->s, SO_RCVBUF, &v, &e) != 0) {
				w->failed = true;
				return NULL;
			}
		}
		w->calls += 64;
	}
	return NULL;
}

/* Calls per second from `threads` threads sharing the client c. */
static double
pipe_rate(sr_client *c, sr_socket **socks, int threads)
{
	struct pipe_worker w[64];
	pthread_t t[64];
	double t0 = now_s();
	long total = 0;

	for (int i = 0; i < threads; i++) {
		w[i] = (struct pipe_worker){.s = socks[i], .until = t0 + opt.seconds};
		pthread_create(&t[i], NULL, pipe_thread, &w[i]);
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		if (w[i].failed)
			return NAN;
		total += w[i].calls;
	}
	return (double)total / (now_s() - t0);
}

static double
raw_rate(void)
{
	uint8_t buf[BENCH_PING_SIZE] = {0};
	double t0 = now_s(), until = t0 + opt.seconds;
	long n = 0;

	while (now_s() < until) {
		for (int i = 0; i < 64; i++)
			if (write_full(ping_fd, buf, sizeof(buf)) != 0 ||
			    read_full(ping_fd, buf, sizeof(buf)) != 0)
				return NAN;
		n += 64;
	}
	return (double)n / (now_s() - t0);
}

static void
figure_pipe(sr_client *c)
{
	int R = opt.rounds, T = opt.threads > 64 ? 64 : opt.threads;
	double *piped = calloc((size_t)R, sizeof(double)),
	       *serial = calloc((size_t)R, sizeof(double));
	double *raw = calloc((size_t)R, sizeof(double));
	sr_socket *socks[64];
	char base[48], name[48];
	sr_error e;
	double p, s, rr;

	for (int i = 0; i < T; i++)
		if ((socks[i] = sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &e)) == NULL)
			die("socket: %s", e.message);
	for (int r = 0; r < R; r++) {
		for (int k = 0; k < 3; k++) {
			switch ((k + r) % 3) {
			case 0:
				piped[r] = pipe_rate(c, socks, T);
				break;
			case 1:
				serial[r] = opt.broker_only ? NAN : pipe_rate(c, socks, 1);
				break;
			case 2:
				raw[r] = opt.broker_only ? NAN : raw_rate();
				break;
			}
		}
	}
	p = median(piped, R), s = median(serial, R), rr = median(raw, R);
	snprintf(name, sizeof(name), "pipelined calls/s, %d threads", T);
	snprintf(base, sizeof(base), "1 thread %.0f/s", s);
	add_row(name, p / 1000, "k/s", base, p / s, "> 1x serial", isnan(s) ? -1 : p > s);
	snprintf(base, sizeof(base), "raw ping-pong %.0fk/s", rr / 1000);
	add_row(name, p / 1000, "k/s", base, p / rr, "info", -1);
	for (int i = 0; i < T; i++)
		sr_socket_free(socks[i]);
	free(piped), free(serial), free(raw);
}

/* --- 2, 3. bulk ---------------------------------------------------------------------- */

/* Direct TCP twice: with the broker's 64 KiB calls and with 1 MiB ones, which on this kind
 * of machine is usually faster; the target is against the faster (the limit). */
enum via { VIA_BROKER, VIA_DIRECT, VIA_DIRECT_1M, VIA_SOCAT, VIA_DANTE, N_VIA, VIA_SSH = N_VIA };
static const char *const via_name[N_VIA + 1] = {"broker", "direct TCP 64K", "direct TCP 1M",
                                                "socat",  "Dante",          "ssh -L"};
#define DIRECT_BIG_CHUNK (1024 * 1024)
static int ssh_port = -1; /* ssh -L's local end (the tls figure), -1: none */

static bool
via_available(enum via v)
{
	if (v == VIA_BROKER)
		return true;
	if (opt.broker_only)
		return false;
	if (v == VIA_SOCAT)
		return socat_socket[0] != '\0';
	if (v == VIA_DANTE)
		return socks_port > 0;
	return true;
}

/* A plain connection to the bulk server through a relay (or none). */
static int
relay_connect(enum via v)
{
	switch (v) {
	case VIA_DIRECT:
	case VIA_DIRECT_1M:
		return tcp_connect(bulk_port);
	case VIA_SOCAT:
		return unix_connect(socat_socket);
	case VIA_DANTE:
		return socks5_connect(socks_port, bulk_port);
	case VIA_SSH:
		return tcp_connect(ssh_port);
	default:
		return -1;
	}
}

/*
 * Moves `bytes` over fd, connected to the bulk server, in `chunk`-byte calls: to the sink
 * (send) or from the source. Returns the seconds since t0, NaN on failure (said with
 * `what`). Closes fd.
 */
double
bench_transfer_fd(int fd, bool send_dir, uint64_t bytes, size_t chunk, double t0, const char *what)
{
	static uint8_t buf[DIRECT_BIG_CHUNK];
	uint8_t cmd[BENCH_CMD_SIZE];
	uint64_t left = bytes;
	ssize_t n;

	if (fd < 0)
		return NAN;
	bench_cmd(cmd, send_dir ? BENCH_OP_SINK : BENCH_OP_SOURCE, bytes);
	if (write_full(fd, cmd, sizeof(cmd)) != 0)
		goto fail;
	while (left > 0) {
		size_t len = left < chunk ? left : chunk;

		if (send_dir) {
			if (write_full(fd, buf, len) != 0)
				goto fail;
			n = (ssize_t)len;
		} else {
			n = read(fd, buf, len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				goto fail;
		}
		left -= (uint64_t)n;
	}
	if (send_dir && read_full(fd, cmd, 1) != 0)
		goto fail;
	close(fd);
	return now_s() - t0;
fail:
	fprintf(stderr, "sockrpc_bench: %s %s failed with %llu bytes left\n", what,
	        send_dir ? "send" : "receive", (unsigned long long)left);
	close(fd);
	return NAN;
}

/* Seconds to move opt.bytes to the sink (send) or from the source (receive); NaN on failure. */
static double
bulk_plain(enum via v, bool send_dir)
{
	double t0 = now_s();

	return bench_transfer_fd(relay_connect(v), send_dir, opt.bytes,
	                         v == VIA_DIRECT_1M ? DIRECT_BIG_CHUNK : BENCH_CHUNK, t0,
	                         via_name[v]);
}

static double
bulk_broker(sr_client *c, bool send_dir)
{
	static uint8_t buf[BENCH_CHUNK];
	uint8_t cmd[BENCH_CMD_SIZE];
	uint64_t left = opt.bytes;
	double t0 = now_s();
	sr_socket *s = broker_connect(c, bulk_port);
	sr_error e;
	char *data;
	size_t got;
	long n;

	if (s == NULL)
		return NAN;
	bench_cmd(cmd, send_dir ? BENCH_OP_SINK : BENCH_OP_SOURCE, opt.bytes);
	if (sr_send(s, cmd, sizeof(cmd), 0, &e) != (long)sizeof(cmd))
		goto fail;
	while (left > 0) {
		size_t chunk = left < BENCH_CHUNK ? left : BENCH_CHUNK;

		if (send_dir) {
			n = sr_send(s, buf, chunk, 0, &e);
			if (n <= 0)
				goto fail;
		} else {
			if (sr_receive(s, (long)chunk, 0, &data, &got, &e) != 0)
				goto fail;
			free(data);
			if (got == 0) {
				snprintf(e.message, sizeof(e.message), "early end of stream");
				goto fail;
			}
			n = (long)got;
		}
		left -= (uint64_t)n;
	}
	if (send_dir) {
		if (sr_receive(s, 1, 0, &data, &got, &e) != 0)
			goto fail;
		free(data);
	}
	sr_socket_free(s);
	return now_s() - t0;
fail:
	fprintf(stderr, "sockrpc_bench: broker %s failed with %llu bytes left: %s\n",
	        send_dir ? "send" : "receive", (unsigned long long)left, e.message);
	sr_socket_free(s);
	return NAN;
}

static void
figure_bulk(sr_client *c, bool send_dir)
{
	int R = opt.rounds;
	double *mibs[N_VIA], med[N_VIA];
	double mib = (double)opt.bytes / (1024.0 * 1024.0);
	char name[48], base[48];

	for (int v = 0; v < N_VIA; v++)
		mibs[v] = calloc((size_t)R, sizeof(double));
	for (int r = 0; r < R; r++) {
		for (int k = 0; k < N_VIA; k++) {
			enum via v = (enum via)((k + r) % N_VIA);
			double t;

			if (!via_available(v)) {
				mibs[v][r] = NAN;
				continue;
			}
			t = v == VIA_BROKER ? bulk_broker(c, send_dir) : bulk_plain(v, send_dir);
			mibs[v][r] = mib / t;
			if (opt.verbose)
				fprintf(stderr, "round %d: bulk %s via %s: %.0f MiB/s\n", r + 1,
				        send_dir ? "send" : "recv", via_name[v], mibs[v][r]);
		}
	}
	for (int v = 0; v < N_VIA; v++)
		med[v] = median(mibs[v], R);
	/* The size goes in the name: 2 GiB or e.g. 8 MiB. */
	if (opt.bytes >= (1ull << 30))
		snprintf(name, sizeof(name), "bulk %s MiB/s (%.0f GiB)", send_dir ? "send" : "recv",
		         mib / 1024);
	else
		snprintf(name, sizeof(name), "bulk %s MiB/s (%.0f MiB)", send_dir ? "send" : "recv",
		         mib);
	for (int v = VIA_DIRECT; v < N_VIA; v++) {
		double ratio = med[VIA_BROKER] / med[v];
		/* Held to the faster direct variant; the slower one is shown for information. */
		bool limit = (v == VIA_DIRECT && !(med[VIA_DIRECT_1M] > med[VIA_DIRECT])) ||
		             (v == VIA_DIRECT_1M && med[VIA_DIRECT_1M] > med[VIA_DIRECT]);
		const char *target = limit ? ">= 0.8x" : v == VIA_DANTE ? ">= 1x" : "info";
		int met = -1;

		if (!via_available(v))
			continue;
		if (limit)
			met = ratio >= 0.8;
		else if (v == VIA_DANTE)
			met = ratio >= 1.0;
		snprintf(base, sizeof(base), "%s %.0f", via_name[v], med[v]);
		add_row(name, med[VIA_BROKER], "", base, ratio, target, isnan(ratio) ? 0 : met);
	}
	if (opt.broker_only)
		add_row(name, med[VIA_BROKER], "", "-", NAN, "-", -1);
	for (int v = 0; v < N_VIA; v++)
		free(mibs[v]);
}

/* --- 4. connection rate -------------------------------------------------------------- */

static double
conn_rate_direct(void)
{
	double t0 = now_s(), until = t0 + opt.seconds;
	long n = 0;
	int fd;

	while (now_s() < until) {
		if ((fd = tcp_connect(close_port)) < 0)
			return NAN;
		close(fd);
		n++;
	}
	return (double)n / (now_s() - t0);
}

static double
conn_rate_broker(sr_client *c)
{
	double t0 = now_s(), until = t0 + opt.seconds;
	long n = 0;
	sr_socket *s;
	sr_error e;

	while (now_s() < until) {
		/* Socket and Connect in one round trip; the close is not waited for. */
		s = sr_socket_connect(c, AF_INET, SOCK_STREAM, 0, "127.0.0.1", close_port, 10000,
		                      &e);
		if (s == NULL) {
			fprintf(stderr, "sockrpc_bench: socket_connect: %s\n", e.message);
			return NAN;
		}
		if (sr_close(s, &e) != 0) {
			fprintf(stderr, "sockrpc_bench: close: %s\n", e.message);
			sr_socket_free(s);
			return NAN;
		}
		sr_socket_free(s);
		n++;
	}
	return (double)n / (now_s() - t0);
}

/* A rate figure: broker, direct and (if given) the minimal relay alternating each round;
 * the medians against 0.5x, and the relay's beside them for what a second process can
 * reach here. */
static void
rate_figure(const char *figure, sr_client *c, double (*broker)(sr_client *), double (*direct)(void),
            double (*relay)(void))
{
	int R = opt.rounds, variants = relay != NULL ? 3 : 2;
	double *b = calloc((size_t)R, sizeof(double)), *d = calloc((size_t)R, sizeof(double));
	double *f = calloc((size_t)R, sizeof(double));
	double bm, dm, fm;
	char base[48];

	for (int r = 0; r < R; r++) {
		for (int k = 0; k < variants; k++) {
			switch ((k + r) % variants) {
			case 0:
				b[r] = broker(c);
				break;
			case 1:
				d[r] = opt.broker_only ? NAN : direct();
				break;
			default:
				f[r] = opt.broker_only ? NAN : relay();
			}
		}
	}
	bm = median(b, R), dm = median(d, R);
	snprintf(base, sizeof(base), "direct %.0f/s", dm);
	add_row(figure, bm, "/s", base, bm / dm, ">= 0.5x", isnan(dm) ? -1 : bm / dm >= 0.5);
	if (relay != NULL) {
		fm = median(f, R);
		add_row("  the same, minimal relay", fm, "/s", base, fm / dm, "(reference)", -1);
	}
	free(b), free(d), free(f);
}

static void
figure_conn(sr_client *c)
{
	rate_figure("connect+close per second", c, conn_rate_broker, conn_rate_direct, NULL);
}

/* --- 6. UDP request/response (a DNS-style exchange) ---------------------------------- */

/* Exchanges per second done directly, or by the minimal relay (relay.c) for us. */
static double
udp_rate(bool by_relay)
{
	double t0 = now_s(), until = t0 + opt.seconds;
	char buf[BENCH_PING_SIZE];
	long n = 0;

	memset(buf, 'q', sizeof(buf));
	while (now_s() < until) {
		if ((by_relay ? relay_udp_exchange(relay_fd, udp_port, buf)
		              : udp_exchange(udp_port, buf, sizeof(buf))) != 0)
			return NAN;
		n++;
	}
	return (double)n / (now_s() - t0);
}

static double
udp_rate_direct(void)
{
	return udp_rate(false);
}

static double
udp_rate_relay(void)
{
	return udp_rate(true);
}

/* socket + send_to (sr_socket_send_to), receive_from, close: one exchange. */
static double
udp_rate_broker(sr_client *c)
{
	double t0 = now_s(), until = t0 + opt.seconds;
	char buf[BENCH_PING_SIZE], *got;
	size_t len;
	long n = 0;
	sr_socket *s;
	sr_error e;

	memset(buf, 'q', sizeof(buf));
	while (now_s() < until) {
		/* Socket and SendTo go unwaited; the receive reads their outcomes too. */
		s = sr_socket_send_to(c, AF_INET, SOCK_DGRAM, 0, "127.0.0.1", udp_port, buf,
		                      sizeof(buf), 0, &e);
		if (s == NULL)
			goto fail;
		if (sr_receive_from(s, -1, 0, &got, &len, NULL, NULL, &e) != 0) {
			sr_socket_free(s);
			goto fail;
		}
		free(got);
		if (len != sizeof(buf) || sr_close(s, &e) != 0) {
			sr_socket_free(s);
			goto fail;
		}
		sr_socket_free(s);
		n++;
	}
	return (double)n / (now_s() - t0);
fail:
	fprintf(stderr, "sockrpc_bench: udp exchange: %s\n", e.message);
	return NAN;
}

static void
figure_udp(sr_client *c)
{
	rate_figure("UDP request/response per second", c, udp_rate_broker, udp_rate_direct,
	            udp_rate_relay);
}

/* --- sockrpc run: iperf3 and a connect loop, under the launcher against direct --------- */

static void
figure_run(void)
{
	int R = opt.rounds, port, secs = opt.quick ? 1 : 3;
	double *bt = calloc((size_t)R, sizeof(double)), *bd = calloc((size_t)R, sizeof(double));
	double *ct = calloc((size_t)R, sizeof(double)), *cd = calloc((size_t)R, sizeof(double));
	double mt, md;
	char self[512], base[48], portarg[16];
	ssize_t n;
	pid_t iperf = -1;

	if (opt.sockrpc == NULL || (n = readlink("/proc/self/exe", self, sizeof(self) - 1)) < 0) {
		fprintf(stderr, "sockrpc_bench: no --sockrpc: the run figures are skipped\n");
		goto out;
	}
	self[n] = '\0';
	if (program_exists("iperf3") && (port = free_tcp_port()) > 0) {
		snprintf(portarg, sizeof(portarg), "%d", port);
		iperf = spawn(
		    (const char *const[]){"iperf3", "-s", "-B", "127.0.0.1", "-p", portarg, NULL},
		    NULL);
		if (iperf > 0 && wait_tcp_ready(port, 5) == 0) {
			for (int r = 0; r < R; r++)
				for (int k = 0; k < 2; k++) {
					bool through = (k + r) % 2 == 0;
					double v = launcher_iperf3_bps(opt.sockrpc, daemon_socket,
					                               port, secs, through);
					if (through)
						bt[r] = v / 8 / (1 << 20);
					else
						bd[r] = v / 8 / (1 << 20);
				}
			mt = median(bt, R), md = median(bd, R);
			snprintf(base, sizeof(base), "iperf3 direct %.0f MiB/s", md);
			add_row("sockrpc run: iperf3", mt, "MiB/s", base, mt / md, ">= 0.95x",
			        mt / md >= 0.95);
		}
		if (iperf > 0)
			kill_child(iperf);
	}
	for (int r = 0; r < R; r++)
		for (int k = 0; k < 2; k++) {
			bool through = (k + r) % 2 == 0;
			double v = launcher_conn_rate(opt.sockrpc, daemon_socket, self, close_port,
			                              opt.seconds * 4, through);
			if (through)
				ct[r] = v;
			else
				cd[r] = v;
		}
	mt = median(ct, R), md = median(cd, R);
	snprintf(base, sizeof(base), "direct %.0f/s", md);
	add_row("sockrpc run: connect+close/s", mt, "/s", base, mt / md, "info", -1);
out:
	free(bt), free(bd), free(ct), free(cd);
}

/* --- 5. scale ------------------------------------------------------------------------ */

/*
 * How the scale figure fits the descriptor limits: *procs processes hold the sessions and
 * the server ends of their handles (1: this one; more: scale.c's parts, each under the
 * soft limit), and the daemon runs *workers workers (each under the hard limit, which
 * the daemon raises its soft one to). Returns NULL, or why it cannot.
 */
static const char *
scale_plan(int *procs, int *workers)
{
	static char why[96];
	long S = opt.sessions, H = opt.handles, per_session = H + 2; /* + connection, reply */
	long need = S * H + 2 * S + 64;
	struct rlimit rl;

	*procs = *workers = 1;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return "getrlimit failed";
	if (opt.scale_procs > 0)
		*procs = opt.scale_procs;
	else if ((long)rl.rlim_cur < need)
		*procs = (int)((S * per_session + (long)rl.rlim_cur - 1001) /
		               ((long)rl.rlim_cur - 1000));
	if (opt.scale_workers > 0)
		*workers = opt.scale_workers;
	else if ((long)rl.rlim_max < need + 1000)
		*workers = (int)((S * per_session + (long)rl.rlim_max - 3001) /
		                 ((long)rl.rlim_max - 3000));
	if (*procs < 1 || *workers < 1 || rl.rlim_cur <= 1000 || rl.rlim_max <= 3000 ||
	    S * per_session / *procs > (long)rl.rlim_cur - 500) {
		snprintf(why, sizeof(why), "RLIMIT_NOFILE %ld < %ld needed", (long)rl.rlim_cur,
		         need);
		return why;
	}
	if (*workers > 1 && geteuid() != 0) {
		snprintf(why, sizeof(why), "RLIMIT_NOFILE %ld < %ld, and --workers needs root",
		         (long)rl.rlim_max, need);
		return why;
	}
	return NULL;
}

static void
figure_scale(const char *path, pid_t pid, int procs, const char *cannot)
{
	int S = opt.sessions, H = opt.handles, R = opt.rounds, total = S * H, held = 0;
	int calls = opt.calls;
	sr_client **clients = NULL;
	sr_socket **socks = NULL;
	double *lat = calloc((size_t)calls, sizeof(double));
	double *p50 = calloc((size_t)R, sizeof(double)), *p99 = calloc((size_t)R, sizeof(double));
	long rss0, pss0, rss1, pss1, rss2, pss2;
	double t0, setup_s, m50, m99, per_handle, per_handle_rss, per_session, all_in;
	char base[64], name[64];
	unsigned seed = 12345;

	if (cannot != NULL) {
		fprintf(stderr, "sockrpc_bench: scale: %s (raise the hard limit)\n", cannot);
		add_row("scale: handles held", 0, "", cannot, NAN, ">= 100000", 0);
		held = total; /* reported: no second row */
		goto out;
	}
	/* The daemon's memory: the privileged parent's and every worker's. */
	rss0 = proc_pss_tree(pid, true), pss0 = proc_pss_tree(pid, false);
	t0 = now_s();
	if (procs > 1) {
		/* Spread over processes (scale.c), each holding its share. */
		if (scale_parts_start(self_path, path, procs, S, H) < S)
			goto out;
		rss1 = proc_pss_tree(pid, true), pss1 = proc_pss_tree(pid, false);
		held = scale_parts_connect();
		if (held < total)
			goto out;
		setup_s = now_s() - t0;
	} else {
		clients = calloc((size_t)S, sizeof(*clients));
		socks = calloc((size_t)total, sizeof(*socks));
		for (int i = 0; i < S; i++)
			if ((clients[i] = open_client(path)) == NULL)
				goto out;
		rss1 = proc_pss_tree(pid, true), pss1 = proc_pss_tree(pid, false);
		for (int i = 0; i < S; i++)
			for (int j = 0; j < H; j++) {
				int port = hold_ports[(i * H + j) % HOLD_PORTS];

				if ((socks[i * H + j] = broker_connect(clients[i], port)) == NULL)
					goto out;
				held++;
			}
		setup_s = now_s() - t0;
		/* The daemon answered every connect: the server has the other ends, or soon. */
		for (int t = 0; t < 500 && server_hold_count() < (size_t)total; t++)
			usleep(10000);
	}
	rss2 = proc_pss_tree(pid, true), pss2 = proc_pss_tree(pid, false);

	for (int r = 0; r < R; r++) {
		sr_error e;
		long v;

		if (procs > 1 && scale_parts_measure(lat, calls) != 0) {
			fprintf(stderr, "sockrpc_bench: get_option failed in a scale part\n");
			goto out;
		}
		for (int i = 0; i < calls && procs == 1; i++) {
			sr_socket *s = socks[rand_r(&seed) % total];
			double c0 = now_s();

			if (sr_get_option(s, SO_RCVBUF, &v, &e) != 0) {
				fprintf(stderr, "sockrpc_bench: get_option: %s\n", e.message);
				goto out;
			}
			lat[i] = (now_s() - c0) * 1e6;
		}
		p50[r] = percentile(lat, calls, 50);
		p99[r] = percentile(lat, calls, 99);
	}
	m50 = median(p50, R), m99 = median(p99, R);

	snprintf(name, sizeof(name), "scale: handles held (%dx%d)", S, H);
	snprintf(base, sizeof(base), "set up in %.2fs (%.0f handles/s)", setup_s, total / setup_s);
	add_row(name, held, "", base, NAN, ">= 100000", opt.quick ? -1 : held >= 100000);
	per_handle = (double)(pss2 - pss1) / total;
	per_handle_rss = (double)(rss2 - rss1) / total;
	per_session = (double)(pss1 - pss0) / S;
	all_in = (double)(pss2 - pss0) / total;
	snprintf(base, sizeof(base), "RSS %.0fB; incl. sessions %.0fB", per_handle_rss, all_in);
	add_row("daemon Pss per idle handle", per_handle, "B", base, NAN, "<= 1024 B",
	        pss0 < 0 || opt.quick ? -1 : per_handle <= 1024); /* 100 handles: too few */
	snprintf(base, sizeof(base), "RSS %.0fB", (double)(rss1 - rss0) / S);
	add_row("daemon Pss per idle session", per_session, "B", base, NAN, "info", -1);
	snprintf(base, sizeof(base), "idle p50 %.1fus", idle_p50_us);
	add_row("p50 call under load", m50, "us", base, m50 / idle_p50_us, "info", -1);
	snprintf(base, sizeof(base), "idle p99 %.1fus", idle_p99_us);
	add_row("p99 call under load", m99 / 1000, "ms", base, m99 / idle_p99_us, "<= 5 ms",
	        m99 <= 5000);
	fprintf(stderr,
	        "scale: %d process(es) of the bench, daemon %d process(es); Pss %ld -> %ld "
	        "(sessions) -> %ld (handles) B; VmRSS %ld -> %ld -> %ld B\n",
	        procs, 1 + (int)proc_children(pid), pss0, pss1, pss2, rss0, rss1, rss2);
out:
	if (held < total)
		add_row("scale: handles held", held, "", "setup failed", NAN, ">= 100000", 0);
	if (procs > 1 && cannot == NULL)
		scale_parts_stop();
	for (int i = 0; socks != NULL && i < total; i++)
		sr_socket_free(socks[i]);
	for (int i = 0; clients != NULL && i < S; i++)
		sr_client_close(clients[i]);
	server_hold_release();
	free(clients), free(socks), free(lat), free(p50), free(p99);
}

/* --- 6. remote clients over TLS ----------------------------------------------------- */

/* Whether the kernel offers the tls ULP (kernel TLS); as root, tries `modprobe tls` once. */
static bool
kernel_tls_available(void)
{
	char ulps[256] = "";
	FILE *f;

	for (int attempt = 0; attempt < 2; attempt++) {
		if ((f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "re")) != NULL) {
			if (fgets(ulps, sizeof(ulps), f) == NULL)
				ulps[0] = '\0';
			fclose(f);
		}
		for (char *w = strtok(ulps, " \n"); w != NULL; w = strtok(NULL, " \n"))
			if (strcmp(w, "tls") == 0)
				return true;
		if (attempt > 0 || geteuid() != 0 || !program_exists("modprobe") ||
		    system("modprobe tls >/dev/null 2>&1") != 0)
			break;
	}
	return false;
}

/*
 * ssh -L to the bulk server, through an sshd of our own on 127.0.0.1 (root only: it logs
 * in as root with a key made here). What a user would pick instead of a remote broker.
 */
static void
start_ssh_forward(void)
{
	char conf[256], key[256], cmd[1024], log[256], fwd[64], port_arg[16];
	int sshd_port = free_tcp_port();
	pid_t pid;
	FILE *f;

	if (geteuid() != 0 || !program_exists("ssh") || access("/usr/sbin/sshd", X_OK) != 0) {
		fprintf(stderr,
		        "sockrpc_bench: no ssh/sshd (openssh-client, openssh-server) or not "
		        "root; the ssh -L row is skipped\n");
		return;
	}
	mkdir("/run/sshd", 0755); /* sshd's privilege separation directory */
	snprintf(key, sizeof(key), "%s/ssh_key", tmpdir);
	snprintf(conf, sizeof(conf), "%s/sshd_config", tmpdir);
	snprintf(cmd, sizeof(cmd),
	         "ssh-keygen -q -t ed25519 -N '' -f %s && ssh-keygen -q -t ed25519 -N '' -f %s/host"
	         " && cp %s.pub %s/authorized_keys",
	         key, tmpdir, key, tmpdir);
	if (system(cmd) != 0 || (f = fopen(conf, "w")) == NULL) {
		fprintf(stderr, "sockrpc_bench: cannot make ssh keys; the ssh -L row is skipped\n");
		return;
	}
	fprintf(f,
	        "Port %d\nListenAddress 127.0.0.1\nHostKey %s/host\nAuthorizedKeysFile "
	        "%s/authorized_keys\nPidFile none\nUsePAM no\nStrictModes no\n"
	        "PermitRootLogin prohibit-password\nAllowTcpForwarding yes\n",
	        sshd_port, tmpdir, tmpdir);
	fclose(f);
	snprintf(log, sizeof(log), "%s/sshd.log", tmpdir);
	const char *sshd_argv[] = {"/usr/sbin/sshd", "-D", "-e", "-f", conf, NULL};
	if ((pid = spawn(sshd_argv, log)) < 0 || wait_tcp_ready(sshd_port, 10) != 0) {
		fprintf(stderr, "sockrpc_bench: sshd did not start (see %s)\n", log);
		return;
	}
	ssh_port = free_tcp_port();
	snprintf(fwd, sizeof(fwd), "%d:127.0.0.1:%d", ssh_port, bulk_port);
	snprintf(port_arg, sizeof(port_arg), "%d", sshd_port);
	snprintf(log, sizeof(log), "%s/ssh.log", tmpdir);
	const char *ssh_argv[] = {"ssh",
	                          "-N",
	                          "-i",
	                          key,
	                          "-p",
	                          port_arg,
	                          "-L",
	                          fwd,
	                          "-o",
	                          "BatchMode=yes",
	                          "-o",
	                          "StrictHostKeyChecking=no",
	                          "-o",
	                          "UserKnownHostsFile=/dev/null",
	                          "root@127.0.0.1",
	                          NULL};
	if (spawn(ssh_argv, log) < 0 || wait_tcp_ready(ssh_port, 10) != 0) {
		fprintf(stderr, "sockrpc_bench: ssh -L did not start (see %s)\n", log);
		ssh_port = -1;
	}
}

/* CPU seconds used so far by the tls figure's processes: this thread (the client of both
 * paths), the rest of this process (the bench's servers, threads) and the daemon's worker. */
struct cpu_use {
	double client, servers, worker;
};

static struct cpu_use
cpu_now(pid_t worker)
{
	struct cpu_use c;
	struct timespec ts;
	struct rusage ru;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	getrusage(RUSAGE_SELF, &ru);
	c.client = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	c.servers = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	            (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6 - c.client;
	c.worker = proc_cpu_s(worker);
	return c;
}

/*
 * A client over TLS 1.3 (tls://127.0.0.1:PORT, the daemon's --listen-tls) against a direct
 * TLS 1.3 stream to the same kind of server: bulk both ways, and the small call against
 * a 64-byte TLS ping-pong. The brokered path's second leg (daemon to server) is plain
 * loopback TCP, as it would be on the daemon's host.
 */
static void
figure_tls(void)
{
	char sock[192], log[256], policy[256], listen_arg[64], endpoint[64], base[64], name[48];
	int R = opt.rounds, n = opt.calls, tls_port, direct_port;
	double mib = (double)opt.bytes / (1024.0 * 1024.0), *lat, *b50, *d50, med_b, med_d;
	double *mibs[3], *cpu_all[2], *cpu_end[2];
	pid_t worker;
	sr_client *c;
	sr_socket *s;
	void *echo;
	sr_error e;
	pid_t pid;
	FILE *f;

	if (opt.sockrpcd == NULL) {
		fprintf(stderr, "sockrpc_bench: the tls figure starts a daemon of its own: "
		                "give --sockrpcd\n");
		return;
	}
	if (tls_bench_setup(tmpdir, SOCKRPC_SOURCE_DIR) != 0 ||
	    (direct_port = tls_bench_server_start()) < 0)
		die("cannot set up the TLS peers (openssl CLI, %s)", SOCKRPC_SOURCE_DIR);
	snprintf(policy, sizeof(policy), "%s/tls.policy", tmpdir);
	if ((f = fopen(policy, "w")) == NULL)
		die("%s: %s", policy, strerror(errno));
	fprintf(f, "allow principal=* *\n");
	fclose(f);
	tls_port = free_tcp_port();
	snprintf(sock, sizeof(sock), "%s/t.sock", tmpdir);
	snprintf(log, sizeof(log), "%s/t.log", tmpdir);
	snprintf(listen_arg, sizeof(listen_arg), "127.0.0.1:%d", tls_port);
	{
		char cert[300], key[300], ca[300];

		snprintf(cert, sizeof(cert), "%s/server.pem", tls_bench_cert_dir());
		snprintf(key, sizeof(key), "%s/server.key", tls_bench_cert_dir());
		snprintf(ca, sizeof(ca), "%s/ca.pem", tls_bench_cert_dir());
		const char *argv[] = {opt.sockrpcd, "--socket",        sock,        "--policy",
		                      policy,       "--audit",         "/dev/null", "--listen-tls",
		                      listen_arg,   "--tls-cert",      cert,        "--tls-key",
		                      key,          "--tls-client-ca", ca,          NULL};
		pid = spawn(argv, log);
	}
	if (pid < 0 || wait_unix_ready(sock, 10) != 0 || wait_tcp_ready(tls_port, 10) != 0)
		die("sockrpcd with --listen-tls did not start (see %s)", log);
	snprintf(endpoint, sizeof(endpoint), "tls://127.0.0.1:%d", tls_port);
	if ((c = open_client(endpoint)) == NULL)
		die("no TLS session with %s", endpoint);
	worker = proc_serving_pid(pid);

	/* OpenSSL falls back to user-space records silently: say which ran. */
	add_row("tls kernel TLS offload", NAN, "",
	        kernel_tls_available() ? "tls ULP available: on" : "no tls ULP: user space", NAN,
	        "info", -1);
	snprintf(rows[n_rows - 1].broker, sizeof(rows[n_rows - 1].broker), "-");
	if (!opt.broker_only)
		start_ssh_forward();
	for (int dir = 1; dir >= 0; dir--) {
		static const char *const names[3] = {"broker", "direct TLS", "ssh -L"};

		for (int v = 0; v < 3; v++)
			mibs[v] = calloc((size_t)R, sizeof(double));
		for (int v = 0; v < 2; v++) {
			cpu_all[v] = calloc((size_t)R, sizeof(double));
			cpu_end[v] = calloc((size_t)R, sizeof(double));
		}
		for (int r = 0; r < R; r++) {
			for (int k = 0; k < 3; k++) {
				int v = (k + r) % 3;
				struct cpu_use u0 = cpu_now(worker), u1;
				double t = NAN;

				if (v == 0)
					t = bulk_broker(c, dir);
				else if (v == 1 && !opt.broker_only)
					t = tls_bench_bulk(direct_port, dir, opt.bytes);
				else if (v == 2 && ssh_port > 0)
					t = bulk_plain(VIA_SSH, dir);
				mibs[v][r] = mib / t;
				/* CPU per MiB: of every process on the path, and of the daemon's
				 * worker against its counterpart, the direct TLS server. */
				u1 = cpu_now(worker);
				if (v < 2) {
					cpu_all[v][r] = (u1.client - u0.client + u1.servers -
					                 u0.servers + u1.worker - u0.worker) *
					                1e3 / mib;
					cpu_end[v][r] = (v == 0 ? u1.worker - u0.worker
					                        : u1.servers - u0.servers) *
					                1e3 / mib;
				}
				if (opt.verbose)
					fprintf(
					    stderr,
					    "round %d: tls bulk %s via %s: %.0f MiB/s; CPU ms/MiB: "
					    "client %.2f, daemon worker %.2f, servers %.2f\n",
					    r + 1, dir ? "send" : "recv", names[v], mibs[v][r],
					    (u1.client - u0.client) * 1e3 / mib,
					    (u1.worker - u0.worker) * 1e3 / mib,
					    (u1.servers - u0.servers) * 1e3 / mib);
			}
		}
		med_b = median(mibs[0], R);
		med_d = median(mibs[1], R);
		snprintf(name, sizeof(name), "tls bulk %s MiB/s (%.0f MiB)", dir ? "send" : "recv",
		         mib);
		snprintf(base, sizeof(base), "direct TLS 1.3 %.0f", med_d);
		add_row(name, med_b, "", base, med_b / med_d, ">= 0.9x",
		        isnan(med_d) ? -1 : med_b / med_d >= 0.9);
		if (ssh_port > 0) {
			med_d = median(mibs[2], R);
			snprintf(base, sizeof(base), "ssh -L %.0f", med_d);
			add_row(name, med_b, "", base, med_b / med_d, "> 1x",
			        isnan(med_d) ? -1 : med_b / med_d > 1.0);
		}
		if (!opt.broker_only) {
			/* On 2 cores every process competes for the same CPUs: the ratio of the
			 * CPU per MiB bounds the ratio of the rates. */
			med_b = median(cpu_all[0], R);
			med_d = median(cpu_all[1], R);
			snprintf(name, sizeof(name), "tls %s CPU ms/MiB, all",
			         dir ? "send" : "recv");
			snprintf(base, sizeof(base), "direct TLS pair %.2f", med_d);
			add_row(name, med_b, "", base, med_b / med_d, "info", -1);
			med_b = median(cpu_end[0], R);
			med_d = median(cpu_end[1], R);
			snprintf(name, sizeof(name), "tls %s CPU ms/MiB, daemon",
			         dir ? "send" : "recv");
			snprintf(base, sizeof(base), "direct TLS server %.2f", med_d);
			add_row(name, med_b, "", base, med_b / med_d, "info", -1);
		}
		free(mibs[0]), free(mibs[1]), free(mibs[2]);
		for (int v = 0; v < 2; v++)
			free(cpu_all[v]), free(cpu_end[v]);
	}

	lat = calloc((size_t)n, sizeof(double));
	b50 = calloc((size_t)R, sizeof(double));
	d50 = calloc((size_t)R, sizeof(double));
	if ((s = sr_socket_new(c, AF_INET, SOCK_STREAM, 0, &e)) == NULL)
		die("socket over TLS: %s", e.message);
	echo = opt.broker_only ? NULL : tls_bench_open(direct_port, TLS_BENCH_OP_ECHO, 0);
	for (int r = 0; r < R; r++) {
		for (int k = 0; k < 2; k++) {
			if ((k + r) % 2 == 0) {
				b50[r] =
				    small_broker(s, lat, n) == 0 ? percentile(lat, n, 50) : NAN;
			} else if (echo != NULL) {
				for (int i = 0; i < n; i++)
					lat[i] = tls_bench_ping(echo);
				d50[r] = percentile(lat, n, 50);
			} else {
				d50[r] = NAN;
			}
		}
	}
	med_b = median(b50, R);
	med_d = median(d50, R);
	snprintf(base, sizeof(base), "TLS 64B ping-pong %.1fus", med_d);
	add_row("tls small call get_option p50", med_b, "us", base, med_b / med_d, "info", -1);
	if (echo != NULL)
		tls_bench_close(echo);
	sr_socket_free(s);
	sr_client_close(c);
	kill_child(pid);
	free(lat), free(b50), free(d50);
}

/* --- start-up ------------------------------------------------------------------------ */

static pid_t
start_daemon(const char *name, char *sock, size_t size, int workers)
{
	char log[256], audit[256], sessions[16], n_workers[16];
	pid_t pid;

	snprintf(sessions, sizeof(sessions), "%d", opt.sessions + 100);
	snprintf(sock, size, "%s/%s.sock", tmpdir, name);
	snprintf(log, sizeof(log), "%s/%s.log", tmpdir, name);
	snprintf(audit, sizeof(audit), "%s/audit-%s.log", tmpdir, name);
	const char *argv[] = {opt.sockrpcd,     "--socket", sock, "--audit", audit,
	                      "--max-sessions", sessions,   NULL, NULL,      NULL};

	snprintf(n_workers, sizeof(n_workers), "%d", workers);
	if (workers > 1) {
		argv[7] = "--workers";
		argv[8] = n_workers;
	}
	pid = spawn(argv, log);
	if (pid < 0 || wait_unix_ready(sock, 10) != 0)
		die("sockrpcd did not start (see %s)", log);
	return pid;
}

static void
start_socat(void)
{
	char target[64], listen_arg[256];

	if (!program_exists("socat")) {
		fprintf(stderr, "sockrpc_bench: socat not found; its rows are skipped\n");
		return;
	}
	snprintf(socat_socket, sizeof(socat_socket), "%s/socat.sock", tmpdir);
	snprintf(listen_arg, sizeof(listen_arg), "UNIX-LISTEN:%s,fork,unlink-early", socat_socket);
	snprintf(target, sizeof(target), "TCP:127.0.0.1:%d", bulk_port);
	const char *argv[] = {"socat", listen_arg, target, NULL};
	char log[256];

	snprintf(log, sizeof(log), "%s/socat.log", tmpdir);
	if (spawn(argv, log) < 0 || wait_unix_ready(socat_socket, 5) != 0) {
		fprintf(stderr, "sockrpc_bench: socat did not start; its rows are skipped\n");
		socat_socket[0] = '\0';
	}
}

/* Dante on 127.0.0.1, no authentication, CONNECT only, to loopback only. */
static void
start_danted(void)
{
	char conf[256], log[256];
	pid_t pid;
	FILE *f;

	if (!program_exists(opt.danted)) {
		fprintf(stderr, "sockrpc_bench: %s not found; Dante rows are skipped\n",
		        opt.danted);
		return;
	}
	snprintf(conf, sizeof(conf), "%s/danted.conf", tmpdir);
	snprintf(log, sizeof(log), "%s/danted.log", tmpdir);
	socks_port = free_tcp_port();
	if ((f = fopen(conf, "w")) == NULL)
		die("cannot write %s", conf);
	fprintf(f,
	        "logoutput: %s\n"
	        "internal: 127.0.0.1 port = %d\n"
	        "external: 127.0.0.1\n"
	        "clientmethod: none\n"
	        "socksmethod: none\n"
	        "user.privileged: root\n"
	        "user.unprivileged: nobody\n"
	        "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }\n"
	        "socks pass { from: 127.0.0.0/8 to: 127.0.0.0/8 command: connect }\n",
	        log, socks_port);
	fclose(f);
	const char *argv[] = {opt.danted, "-f", conf, "-N", "1", NULL};
	pid = spawn(argv, log);
	if (pid < 0 || wait_tcp_ready(socks_port, 10) != 0) {
		fprintf(stderr,
		        "sockrpc_bench: danted did not start (see %s); Dante rows skipped\n", log);
		socks_port = -1;
		return;
	}
	/* A SOCKS handshake proves it relays, not just listens. */
	int fd = socks5_connect(socks_port, bulk_port);
	if (fd < 0) {
		fprintf(stderr, "sockrpc_bench: danted refuses CONNECT (see %s); rows skipped\n",
		        log);
		socks_port = -1;
		return;
	}
	close(fd);
}

static uint64_t
parse_size(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	switch (*end) {
	case 'k':
	case 'K':
		v *= 1024;
		break;
	case 'm':
	case 'M':
		v *= 1024 * 1024;
		break;
	case 'g':
	case 'G':
		v *= 1024.0 * 1024 * 1024;
		break;
	default:
		break;
	}
	if (v < 1)
		die("bad size %s", s);
	return (uint64_t)v;
}

static unsigned
parse_only(const char *s)
{
	static const char *const names[] = {"small", "pipe",     "send",   "recv", "conn", "scale",
	                                    "udp",   "handback", "python", "run",  "tls"};
	char *copy = strdup(s), *tok, *save = NULL;
	unsigned mask = 0;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t i;

		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strcmp(tok, names[i]) == 0)
				break;
		if (i == sizeof(names) / sizeof(names[0]))
			die("unknown figure %s "
			    "(small,pipe,send,recv,conn,scale,udp,handback,python,run,tls)",
			    tok);
		mask |= 1u << i;
	}
	free(copy);
	return mask;
}

static void
usage(void)
{
	printf("usage: sockrpc_bench --sockrpcd PATH [options]\n"
	       "  --sockrpcd PATH   the daemon to start (one for figures 1-4, one for scale)\n"
	       "  --socket PATH     use this running daemon for figures 1-4 instead (profiling)\n"
	       "  --quick           tiny sizes, 3 rounds, 20 sessions x 5 handles\n"
	       "  --bytes N[KMG]    bytes per bulk transfer (default 2G)\n"
	       "  --rounds N        rounds per figure, median reported (default 5)\n"
	       "  --calls N         small calls per round per variant (default 20000)\n"
	       "  --threads N       threads of the pipelined figure (default 4)\n"
	       "  --seconds S       length of one round of the rate figures (default 0.5)\n"
	       "  --sessions N --handles N   scale figure (default 10000 x 10)\n"
	       "  --scale-procs N --scale-workers N   its bench processes and daemon workers\n"
	       "                    (default: as many as RLIMIT_NOFILE needs)\n"
	       "  --only LIST       small,pipe,send,recv,conn,scale,udp,handback,python,run,tls\n"
	       "  --sockrpc PATH    the sockrpc command, for the run figures\n"
	       "  --broker-only     skip the baselines (to profile the broker)\n"
	       "  --danted PATH     the Dante server (default danted)\n"
	       "  --verbose         print every round of the bulk figures to stderr\n");
}

static void
raise_fd_limit(void)
{
	struct rlimit rl = {262144, 262144};

	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"sockrpcd", required_argument, NULL, 'd'},
	    {"socket", required_argument, NULL, 's'},
	    {"quick", no_argument, NULL, 'q'},
	    {"bytes", required_argument, NULL, 'b'},
	    {"rounds", required_argument, NULL, 'r'},
	    {"calls", required_argument, NULL, 'c'},
	    {"threads", required_argument, NULL, 't'},
	    {"seconds", required_argument, NULL, 'S'},
	    {"sessions", required_argument, NULL, 'n'},
	    {"handles", required_argument, NULL, 'H'},
	    {"only", required_argument, NULL, 'o'},
	    {"broker-only", no_argument, NULL, 'B'},
	    {"danted", required_argument, NULL, 'D'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"sockrpc", required_argument, NULL, 'R'},
	    {"scale-procs", required_argument, NULL, 'P'},
	    {"scale-workers", required_argument, NULL, 'W'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t bytes = 0;
	int rounds = 0, calls = 0, sessions = 0, handles = 0, ch;
	double seconds = 0;
	char scale_sock[192];
	struct utsname un;
	sr_client *c = NULL;
	pid_t scale_pid;

	/* The connection-rate program of the run figure is this binary, started again. */
	if (argc == 4 && strcmp(argv[1], "--connect-loop") == 0)
		return launcher_connect_loop(atoi(argv[2]), atof(argv[3]));
	/* So are the parts of the scale figure (scale.c). */
	if (argc == 5 && strcmp(argv[1], "--scale-part") == 0)
		return scale_part_main(argv[2], atoi(argv[3]), atoi(argv[4]));
	opt.threads = 4;
	opt.only = FIG_ALL;
	opt.danted = "danted";
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			opt.sockrpcd = optarg;
			break;
		case 's':
			opt.socket = optarg;
			break;
		case 'q':
			opt.quick = true;
			break;
		case 'b':
			bytes = parse_size(optarg);
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'c':
			calls = atoi(optarg);
			break;
		case 't':
			opt.threads = atoi(optarg);
			break;
		case 'S':
			seconds = atof(optarg);
			break;
		case 'n':
			sessions = atoi(optarg);
			break;
		case 'H':
			handles = atoi(optarg);
			break;
		case 'o':
			opt.only = parse_only(optarg);
			break;
		case 'B':
			opt.broker_only = true;
			break;
		case 'D':
			opt.danted = optarg;
			break;
		case 'v':
			opt.verbose = true;
			break;
		case 'R':
			opt.sockrpc = optarg;
			break;
		case 'P':
			opt.scale_procs = atoi(optarg);
			break;
		case 'W':
			opt.scale_workers = atoi(optarg);
			break;
		case 'h':
			usage();
			return 0;
		default:
			usage();
			return 2;
		}
	}
	if (opt.sockrpcd == NULL && opt.socket == NULL)
		die("--sockrpcd PATH (or --socket PATH) is required");
	if (opt.sockrpcd == NULL)
		opt.only &= ~(unsigned)FIG_SCALE; /* scale needs a fresh daemon to measure */
	opt.bytes = bytes ? bytes : opt.quick ? 8ull << 20 : 2ull << 30;
	opt.rounds = rounds > 0 ? rounds : opt.quick ? 3 : 5;
	opt.calls = calls > 0 ? calls : opt.quick ? 2000 : 20000;
	opt.seconds = seconds > 0 ? seconds : opt.quick ? 0.1 : 0.5;
	opt.sessions = sessions > 0 ? sessions : opt.quick ? 20 : 10000;
	opt.handles = handles > 0 ? handles : opt.quick ? 5 : 10;
	if (opt.threads < 1)
		opt.threads = 1;

	/* Forked before any thread exists. */
	if ((ping_fd = pingpong_start()) < 0)
		die("cannot start the ping-pong echo: %s", strerror(errno));
	if ((relay_fd = relay_start()) < 0)
		die("cannot start the minimal relay: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_fatal_signal);
	signal(SIGTERM, on_fatal_signal);
	signal(SIGALRM, on_fatal_signal);
	alarm(opt.quick ? WATCHDOG_QUICK_S : WATCHDOG_FULL_S);
	atexit(cleanup);
	raise_fd_limit();

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sockrpc-bench.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		die("mkdtemp: %s", strerror(errno));
	if ((bulk_port = server_bulk_start()) < 0 || (close_port = server_close_start()) < 0 ||
	    (udp_port = server_udp_echo_start()) < 0)
		die("cannot start the loopback servers");
	for (int i = 0; i < HOLD_PORTS; i++)
		if ((hold_ports[i] = server_hold_start()) < 0)
			die("cannot start the loopback servers");
	if (opt.socket != NULL) {
		daemon_socket = opt.socket;
	} else {
		static char sock[192];

		daemon_pid = start_daemon("a", sock, sizeof(sock), 1);
		daemon_socket = sock;
	}
	if ((opt.only & (FIG_SEND | FIG_RECV)) && !opt.broker_only) {
		start_socat();
		start_danted();
	}

	uname(&un);
	printf("sockrpc_bench: %s %s, %ld CPUs; bulk %llu bytes in %d-byte calls; %d rounds "
	       "(median), %d calls/round; scale %d x %d\n",
	       un.sysname, un.release, sysconf(_SC_NPROCESSORS_ONLN), (unsigned long long)opt.bytes,
	       BENCH_CHUNK, opt.rounds, opt.calls, opt.sessions, opt.handles);
	fflush(stdout);

	if (opt.only & ~(unsigned)(FIG_SCALE | FIG_TLS)) {
		if ((c = open_client(daemon_socket)) == NULL)
			die("no daemon at %s", daemon_socket);
	}
	if (opt.only & (FIG_SMALL | FIG_SCALE))
		figure_small(c != NULL ? c : open_client(daemon_socket));
	if (opt.only & FIG_PIPE)
		figure_pipe(c);
	if (opt.only & FIG_SEND)
		figure_bulk(c, true);
	if (opt.only & FIG_RECV)
		figure_bulk(c, false);
	if (opt.only & FIG_CONN)
		figure_conn(c);
	if (opt.only & FIG_UDP)
		figure_udp(c);
	if (opt.only & FIG_HANDBACK) {
		struct bench_args a = {.bytes = opt.bytes,
		                       .rounds = opt.rounds,
		                       .calls = opt.calls,
		                       .bulk_port = bulk_port,
		                       .close_port = close_port,
		                       .relay = relay_fd,
		                       .verbose = opt.verbose};

		figure_handback_bulk(c, &a, true);
		figure_handback_bulk(c, &a, false);
		figure_handback_connect(c, &a);
	}
	if (opt.only & FIG_PYTHON) {
		struct bench_args a = {.bytes = opt.bytes,
		                       .rounds = opt.rounds,
		                       .calls = opt.calls,
		                       .bulk_port = bulk_port,
		                       .close_port = close_port,
		                       .verbose = opt.verbose};

		figure_python(daemon_socket, &a);
	}
	if (opt.only & FIG_RUN)
		figure_run();
	sr_client_close(c);
	c = NULL;
	if (opt.only & FIG_TLS)
		figure_tls();
	if (opt.only & FIG_SCALE) {
		/* A daemon of its own, so that its memory before is that of an idle daemon. */
		if (daemon_pid > 0)
			kill_child(daemon_pid);
		int procs, workers;
		const char *cannot = scale_plan(&procs, &workers);

		scale_pid = start_daemon("b", scale_sock, sizeof(scale_sock), workers);
		figure_scale(scale_sock, scale_pid, procs, cannot);
	}
	print_table();
	return 0;
}
