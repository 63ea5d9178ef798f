/*
 * harness.h - what integration suites share: a real sockrpcd started as a
 * child process on a private socket, its open-fd count, and small loopback TCP
 * servers (echo, sink, source) running in a thread. Everything is bounded in
 * time; failures are Check assertions.
 */
#ifndef SOCKRPC_TEST_HARNESS_H
#define SOCKRPC_TEST_HARNESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "sockrpc.h"

#define HARNESS_START_MS 5000 /* the daemon must accept within this */
#define HARNESS_STOP_MS 5000  /* and exit 0 within this after SIGTERM */
#define HARNESS_IDLE_MS 3000  /* fd count must return to idle within this */

struct daemon {
	pid_t pid;
	char dir[64];   /* private temporary directory */
	char path[100]; /* dir/sockrpc.sock (fits sun_path) */
	char log[128];  /* dir/daemon.log: the daemon's stdout and stderr */
	int idle_fds;   /* open fds once started, no session */
};

/* Starts SOCKRPCD_PATH --socket <dir>/sockrpc.sock --foreground [extra...]; extra
 * is NULL-terminated, may be NULL. Asserts it accepts within HARNESS_START_MS. */
void daemon_start(struct daemon *d, const char *const *extra);
/* daemon_start(d, NULL) with SOCKRPC_DISABLE set to `list` (NULL: unset) for the daemon
 * only; this process's own value is left as it was. */
void daemon_start_disabling(struct daemon *d, const char *list);
/* SIGTERM; asserts exit status 0 within HARNESS_STOP_MS. Removes the directory. */
void daemon_stop(struct daemon *d);
/* Entries of /proc/PID/fd, or -1. */
/* The worker of a split daemon (its only child), else the daemon itself. */
pid_t daemon_worker_pid(const struct daemon *d);
/* The number after `key:` in /proc/PID/status (VmRSS in kB, voluntary_ctxt_switches),
 * or -1 when unreadable or absent. */
long proc_status_number(pid_t pid, const char *key);
/* prlimit() on that worker (from a process of its ids when it is not root). 0 or -1. */
struct rlimit;
int daemon_prlimit(const struct daemon *d, int resource, const struct rlimit *rl);
int daemon_fd_count(const struct daemon *d);
/* Waits up to timeout_ms for the fd count to equal want; returns the last count. */
int daemon_wait_fds(const struct daemon *d, int want, int timeout_ms);
/* Opens a client on d; asserts success. */
sr_client *daemon_client(const struct daemon *d);

/* The daemon of the current test, for suites using the fixtures below. */
extern struct daemon test_daemon;
/* Checked fixtures: start test_daemon; assert fds back to idle and stop it. */
void fixture_daemon_up(void);
void fixture_daemon_down(void);

/* The `sockrpc` user, for tests of a daemon run as it. tools/install-deps creates it, so
 * it normally exists and is left alone (never removed). If it is missing and this is
 * root, creates it as install-deps does
 * (useradd --system ... --user-group sockrpc) and returns true; if missing and not root,
 * prints why `test` is skipped and returns false: the test returns. Once the daemon has
 * stopped, sockrpc_user_release() removes the user again if acquire created it (after a
 * failed assertion, a guard process removes it once the test's process is gone). */
bool sockrpc_user_acquire(const char *test);
void sockrpc_user_release(void);

enum server_kind {
	SERVER_ECHO,   /* writes back what it reads, until EOF */
	SERVER_SINK,   /* reads and counts until EOF */
	SERVER_SOURCE, /* writes `bytes` bytes of pattern, then closes */
	SERVER_SILENT, /* accepts and holds the connection, never writes */
};

#define SERVER_MAX_CONNS 32

struct server {
	enum server_kind kind;
	int family;             /* AF_INET (127.0.0.1), AF_INET6 (::1), AF_UNSPEC (both) */
	int port;               /* ephemeral, set by server_start */
	size_t bytes;           /* SERVER_SOURCE */
	atomic_size_t received; /* bytes read from all connections */
	atomic_int accepted;    /* connections accepted */
	atomic_int finished;    /* connections that reached EOF or were closed */
	int listen_fd;
	int listen_fd2; /* AF_UNSPEC: the IPv4 listener, else -1 */
	int wake[2];    /* server_stop() writes here */
	pthread_t thread;
};

/* Starts a server on the loopback of `family`; asserts success. */
void server_start(struct server *srv, int family, enum server_kind kind, size_t bytes);
void server_stop(struct server *srv);
/* Waits up to timeout_ms for received >= want; returns the last value. */
size_t server_wait_received(struct server *srv, size_t want, int timeout_ms);
/* Waits up to timeout_ms for finished >= want; returns the last value. */
int server_wait_finished(struct server *srv, int want, int timeout_ms);

/* Byte i of the pattern SERVER_SOURCE sends and tests compare against. */
static inline char
pattern_byte(size_t i)
{
	return (char)('a' + i % 23);
}

/* Raw frames, for what the library will not send (other sessions' handles, bad frames). */
struct sr_frame_header;
struct ProtobufCMessage;
/* Connects to path (no Hello); asserts success. */
int raw_connect(const char *path);
/* Connects and says Hello; asserts an OK reply. */
int raw_session(const char *path);
/* Writes one request frame of msg (NULL: empty) for method. */
void raw_send(int fd, unsigned method, unsigned long long call_id,
              const struct ProtobufCMessage *msg);
/* Writes bytes as they are. */
void raw_write(int fd, const void *buf, size_t len);
/* Reads one frame within timeout_ms; *body malloc'd. 0, or -1 at EOF/timeout/error. */
int raw_recv(int fd, struct sr_frame_header *h, unsigned char **body, int timeout_ms);
/* True if the peer closes fd within timeout_ms (after any remaining frames). */
bool raw_closed(int fd, int timeout_ms);

/* Monotonic milliseconds. */
long long now_ms(void);
void sleep_ms(int ms);

/* Writes a file the daemon reads (policy, resolv.conf, hosts), mode 0644; asserts
 * success. Written then renamed, so a daemon reloading never reads half a file. */
void write_file(const char *path, const char *text);

#endif
