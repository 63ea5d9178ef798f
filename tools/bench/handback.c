/*
 * handback.c - the handback figures (issue 16): bulk send and receive on a socket the
 * daemon handed back (sr_connect_fd) against direct loopback TCP, and the latency of
 * sr_connect_fd against a direct connect(2), with one broker round trip (get_option)
 * measured beside them for the target. Variants alternate within each round, as the
 * other figures' do; bench.c owns the table.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"
#include "sockrpc.h"

static int
handed_back(sr_client *c, int port)
{
	sr_error e;
	int fd = sr_connect_fd(c, AF_INET, SOCK_STREAM, "127.0.0.1", port, 10000, &e);

	if (fd < 0)
		fprintf(stderr, "sockrpc_bench: sr_connect_fd: %s\n", e.message);
	return fd;
}

/* Seconds to move `bytes` to the sink (send) or from the source over fd, which it closes;
 * NaN on failure. The clock starts once fd is connected: this figure is about the data
 * path (the connect has its own figure). */
static double
bulk_fd(int fd, bool send_dir, uint64_t bytes)
{
	return bench_transfer_fd(fd, send_dir, bytes, BENCH_CHUNK, now_s(), "handback bulk");
}

void
figure_handback_bulk(sr_client *c, const struct bench_args *a, bool send_dir)
{
	double *hb = calloc((size_t)a->rounds, sizeof(double));
	double *direct = calloc((size_t)a->rounds, sizeof(double));
	double mib = (double)a->bytes / (1024.0 * 1024.0), m_hb, m_direct;
	char name[48], base[48];

	for (int r = 0; r < a->rounds; r++) {
		for (int k = 0; k < 2; k++) {
			if ((k + r) % 2 == 0)
				hb[r] =
				    mib / bulk_fd(handed_back(c, a->bulk_port), send_dir, a->bytes);
			else
				direct[r] =
				    mib / bulk_fd(tcp_connect(a->bulk_port), send_dir, a->bytes);
		}
		if (a->verbose)
			fprintf(stderr, "round %d: handback %s %.0f MiB/s, direct %.0f MiB/s\n",
			        r + 1, send_dir ? "send" : "recv", hb[r], direct[r]);
	}
	m_hb = bench_median(hb, a->rounds);
	m_direct = bench_median(direct, a->rounds);
	snprintf(name, sizeof(name), "handback %s MiB/s (%.0f MiB)", send_dir ? "send" : "recv",
	         mib);
	snprintf(base, sizeof(base), "direct TCP %.0f", m_direct);
	bench_add_row(name, m_hb, "", base, m_hb / m_direct, ">= 0.97x",
	              isnan(m_hb / m_direct) ? 0 : m_hb / m_direct >= 0.97);
	free(hb);
	free(direct);
}

enum connect_by { BY_BROKER, BY_DIRECT, BY_RELAY };

/* Microseconds per connect (to the server that accepts and closes), p50 of n. */
static double
connect_p50(sr_client *c, enum connect_by by, const struct bench_args *a, int n)
{
	double *lat = calloc((size_t)n, sizeof(double)), p50;

	for (int i = 0; i < n; i++) {
		double t0 = now_s();
		int fd = by == BY_BROKER   ? handed_back(c, a->close_port)
		         : by == BY_DIRECT ? tcp_connect(a->close_port)
		                           : relay_connect_fd(a->relay, a->close_port);

		lat[i] = (now_s() - t0) * 1e6;
		if (fd < 0) {
			free(lat);
			return NAN;
		}
		close(fd);
	}
	p50 = bench_median(lat, n);
	free(lat);
	return p50;
}

/* One broker round trip (get_option), p50 of n, in microseconds. */
static double
round_trip_p50(sr_socket *s, int n)
{
	double *lat = calloc((size_t)n, sizeof(double)), p50;
	sr_error e;
	long v;

	for (int i = 0; i < n; i++) {
		double t0 = now_s();

		if (sr_get_option(s, SO_RCVBUF, &v, &e) != 0) {
			free(lat);
			return NAN;
		}
		lat[i] = (now_s() - t0) * 1e6;
	}
	p50 = bench_median(lat, n);
	free(lat);
	return p50;
}

void
figure_handback_connect(sr_client *c, const struct bench_args *a)
{
	int R = a->rounds, n = a->calls / 10 > 50 ? a->calls / 10 : 50;
	double *hb = calloc((size_t)R, sizeof(double)), *direct = calloc((size_t)R, sizeof(double));
	double *rt = calloc((size_t)R, sizeof(double)), *relay = calloc((size_t)R, sizeof(double));
	double m_hb, m_direct, m_rt, m_relay, limit;
	sr_socket *s = sr_socket_new(c, AF_INET, SOCK_STREAM, 0, NULL);
	char base[48], target[24];

	for (int r = 0; r < R; r++) {
		for (int k = 0; k < 4; k++) {
			switch ((k + r) % 4) {
			case 0:
				hb[r] = connect_p50(c, BY_BROKER, a, n);
				break;
			case 1:
				direct[r] = connect_p50(c, BY_DIRECT, a, n);
				break;
			case 2:
				relay[r] = connect_p50(c, BY_RELAY, a, n);
				break;
			default:
				rt[r] = s != NULL ? round_trip_p50(s, n) : NAN;
			}
		}
	}
	m_hb = bench_median(hb, R), m_direct = bench_median(direct, R), m_rt = bench_median(rt, R);
	m_relay = bench_median(relay, R);
	limit = 1.5 * m_direct + m_rt;
	snprintf(base, sizeof(base), "direct %.1fus, 1 RT %.1fus", m_direct, m_rt);
	snprintf(target, sizeof(target), "<= %.0fus", limit);
	bench_add_row("handback connect p50 (sr_connect_fd)", m_hb, "us", base, m_hb / m_direct,
	              target, isnan(m_hb) ? 0 : m_hb <= limit);
	bench_add_row("  the same, minimal relay", m_relay, "us", base, m_relay / m_direct,
	              "(reference)", -1);
	sr_socket_free(s);
	free(hb), free(direct), free(rt), free(relay);
}
