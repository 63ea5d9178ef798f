/*
 * launcher.c - what the `sockrpc run` figures run: iperf3's client (through the
 * launcher or direct) against an iperf3 server on loopback, and a connect+close
 * loop (this binary started again with --connect-loop) under the launcher or
 * direct. bench.c alternates them and makes the rows.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

static double run_reading(const char *cmd, const char *key);

/*
 * iperf3 -c to 127.0.0.1:port for secs seconds, under `cli --socket sock run` when
 * through: the receiver's bits per second, or NaN.
 */
double
launcher_iperf3_bps(const char *cli, const char *sock, int port, int secs, bool through)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "%s%s%s%s iperf3 -c 127.0.0.1 -p %d -t %d -J 2>/dev/null",
	         through ? cli : "", through ? " --socket " : "", through ? sock : "",
	         through ? " run --" : "", port, secs);
	return run_reading(cmd, "\"sum_received\"");
}

/* The same for the connect+close loop of `self --connect-loop PORT SECONDS`: per second. */
double
launcher_conn_rate(const char *cli, const char *sock, const char *self, int port, double secs,
                   bool through)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "%s%s%s%s %s --connect-loop %d %.3f", through ? cli : "",
	         through ? " --socket " : "", through ? sock : "", through ? " run --" : "", self,
	         port, secs);
	return run_reading(cmd, NULL);
}

/*
 * The program the connection-rate figure runs: socket, connect, close to
 * 127.0.0.1:port for secs seconds, as plain system calls; prints the rate.
 */
int
launcher_connect_loop(int port, double secs)
{
	double t0 = now_s(), until = t0 + secs;
	long n = 0;
	int fd;

	while (now_s() < until) {
		if ((fd = tcp_connect(port)) < 0) {
			fprintf(stderr, "connect-loop: %s\n", strerror(errno));
			return 1;
		}
		close(fd);
		n++;
	}
	printf("%.1f\n", (double)n / (now_s() - t0));
	return 0;
}

/*
 * Runs cmd and reads a number from its output: the first "bits_per_second" after
 * key, or (key NULL) the first number. NaN if there is none or cmd failed.
 */
static double
run_reading(const char *cmd, const char *key)
{
	static char out[1 << 16];
	size_t len = 0, n;
	const char *p = out;
	double v = NAN;
	FILE *f;

	if ((f = popen(cmd, "r")) == NULL)
		return NAN;
	while (len < sizeof(out) - 1 && (n = fread(out + len, 1, sizeof(out) - 1 - len, f)) > 0)
		len += n;
	out[len] = '\0';
	if (pclose(f) != 0)
		return NAN;
	if (key != NULL) {
		if ((p = strstr(out, key)) == NULL ||
		    (p = strstr(p, "\"bits_per_second\":")) == NULL)
			return NAN;
		p += strlen("\"bits_per_second\":");
	}
	if (sscanf(p, "%lf", &v) != 1)
		return NAN;
	return v;
}
