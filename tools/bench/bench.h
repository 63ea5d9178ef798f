/*
 * bench.h - sockrpc_bench: the broker measured against the limit (direct loopback TCP, a
 * raw Unix-socket ping-pong) and against the relays a user would pick (socat, Dante).
 * peers.c owns everything the bench talks to besides libsockrpc (child processes,
 * loopback servers, SOCKS5); bench.c owns the figures, the rounds and the table.
 */
#ifndef SOCKRPC_BENCH_H
#define SOCKRPC_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Bytes each bulk write/read and each sr_send/sr_receive moves, as the figures ask. */
#define BENCH_CHUNK (64 * 1024)

/* Size of one raw ping-pong message: about a get_option request or reply with its frame. */
#define BENCH_PING_SIZE 64

/* The bench server's command, the first 9 bytes of a bulk connection: op then N (BE). */
#define BENCH_CMD_SIZE 9
#define BENCH_OP_SINK 'S'   /* read N bytes, then answer one byte */
#define BENCH_OP_SOURCE 'R' /* write N bytes */

/* peers.c: time */
double now_s(void);

/* peers.c: child processes, each killed at exit (and by PR_SET_PDEATHSIG if we die). */
pid_t spawn(const char *const argv[], const char *log_path);
void adopt_child(pid_t pid);
void kill_child(pid_t pid);
void kill_all_children(void);
int wait_unix_ready(const char *path, double timeout_s);
int wait_tcp_ready(int port, double timeout_s);
int free_tcp_port(void);
bool program_exists(const char *name);

/* peers.c: the loopback servers, each on 127.0.0.1 with its own accept thread. */
int server_bulk_start(void);  /* sink/source by command; returns the port */
int server_close_start(void); /* accepts and closes at once */
int server_hold_start(void);  /* accepts and keeps the connection */
size_t server_hold_count(void);
int server_udp_echo_start(void); /* answers each datagram with itself; returns the port */
void server_hold_release(void);

/* peers.c: plain sockets */
int tcp_connect(int port);
int unix_connect(const char *path);
int socks5_connect(int socks_port, int target_port); /* SOCKS5 CONNECT, no auth */
/* socket, sendto 127.0.0.1:port, recvfrom (2 s at most), close: 0 or -1. */
int udp_exchange(int port, const void *msg, size_t len);
int write_full(int fd, const void *buf, size_t len);
int read_full(int fd, void *buf, size_t len);
void bench_cmd(uint8_t out[BENCH_CMD_SIZE], char op, uint64_t n);

/* peers.c: the raw ping-pong floor; the echo side is a forked process. */
int pingpong_start(void); /* returns our end of the socketpair */

/* relay.c: the minimal relay, a forked process (forked before any thread exists). */
int relay_start(void); /* returns our end of its socketpair */
int relay_udp_exchange(int relay, int port, const void *msg); /* BENCH_PING_SIZE bytes */
int relay_connect_fd(int relay, int port);                    /* a connected socket, or -1 */

/* peers.c: the daemon's memory from /proc, in bytes (-1 if unreadable). */
long proc_vmrss(pid_t pid);
/* The process that serves sessions: the worker under privilege separation (the
 * daemon's child), else pid itself. */
pid_t proc_serving_pid(pid_t pid);
long proc_pss(pid_t pid);
double proc_cpu_s(pid_t pid);

/* scale.c: the scale figure spread over processes (parts: this binary, --scale-part). */
int scale_part_main(const char *path, int sessions, int handles);
int scale_parts_start(const char *self, const char *path, int k, int sessions, int handles);
int scale_parts_connect(void);
int scale_parts_measure(double *lat, int n);
void scale_parts_stop(void);
/* Pss (rss: VmRSS) of pid and its children, bytes; their number. */
long proc_pss_tree(pid_t pid, bool rss);
long proc_children(pid_t pid);

/* bench.c: the table, for the figures of other files. */
struct bench_args {
	uint64_t bytes; /* per bulk transfer */
	int rounds, calls;
	int bulk_port, close_port;
	int relay; /* relay_start() */
	bool verbose;
};
double bench_median(double *v, int n);
double bench_transfer_fd(int fd, bool send_dir, uint64_t bytes, size_t chunk, double t0,
                         const char *what);
void bench_add_row(const char *figure, double broker, const char *unit, const char *baseline,
                   double ratio, const char *target, int met);

/* handback.c: sockets handed back (sr_connect_fd) against direct TCP. */
struct sr_client;
void figure_handback_bulk(struct sr_client *c, const struct bench_args *a, bool send_dir);
void figure_handback_connect(struct sr_client *c, const struct bench_args *a);

/* python.c: the Python binding (python_bench.py) against Python's own socket. */
void figure_python(const char *daemon_socket, const struct bench_args *a);
/* launcher.c: the `sockrpc run` figures' programs (NaN: that run failed). */
double launcher_iperf3_bps(const char *cli, const char *sock, int port, int secs, bool through);
double launcher_conn_rate(const char *cli, const char *sock, const char *self, int port,
                          double secs, bool through);
int launcher_connect_loop(int port, double secs);

/* tls.c: the direct TLS 1.3 baseline (mutual TLS, the test CA made at run time). */
#define TLS_BENCH_OP_ECHO 'E' /* echo BENCH_PING_SIZE-byte messages until the end */
int tls_bench_setup(const char *tmpdir, const char *source_dir);
const char *tls_bench_cert_dir(void);
int tls_bench_server_start(void); /* returns the port */
void *tls_bench_open(int port, char op, uint64_t n);
void tls_bench_close(void *conn);
double tls_bench_bulk(int port, bool send_dir, uint64_t n);
double tls_bench_ping(void *conn);

#endif
