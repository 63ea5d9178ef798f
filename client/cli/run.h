/*
 * run.h - what the files of `sockrpc run` share. run.c starts the program in its
 * own network namespace under the filter (run_filter.c) and hands the filter's
 * notification descriptor to the supervisor (run_supervisor.c), which answers
 * every trapped call itself after reading its arguments (run_args.c) and asking
 * the daemon.
 */
#ifndef SOCKRPC_RUN_H
#define SOCKRPC_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "sockrpc.h"

/* A denied connect, bind or send fails with this errno (documented in sockrpc(1)). */
#define RUN_DENIED_ERRNO EACCES

/*
 * A decision is a result >= 0, a negative errno, or this: let the call run as it
 * is (only where no argument in memory matters).
 */
#define RUN_ANSWER_CONTINUE (-100000)
/* The call was answered already (ADDFD with SEND), or will be, by another thread. */
#define RUN_ANSWER_SENT (-100001)
#define RUN_ANSWER_PARKED (-100002)

/* One trapped call of the program: who made it and what it is. */
struct run_call {
	uint64_t id; /* the notification's id */
	pid_t pid;   /* the thread that made the call */
	int nr;      /* syscall number */
	uint64_t args[6];
};

/* What the supervisor knows about the program's socket behind an fd argument. */
struct run_sock {
	int fd;           /* the supervisor's duplicate (pidfd_getfd), or -1 */
	int family;       /* SO_DOMAIN */
	int type;         /* SO_TYPE */
	int status_flags; /* F_GETFL of the shared file description (O_NONBLOCK) */
};

/* resolv.conf allows 3 (MAXNS); queries to these are answered by the supervisor. */
#define RUN_MAX_NAMESERVERS 3

struct run_nameserver {
	struct sockaddr_storage addr; /* port 53 */
	socklen_t len;
	int fd; /* the responder's UDP socket, in the program's namespace; owned; or -1 */
};

/* Doorbell sockets per family, made in the namespace by the child (run_listen.c). */
#define RUN_BELLS 8
/* What the child passes: the filter's listener, the name servers' sockets, the bells,
 * a raw socket per family (run_relay.c). */
#define RUN_PASSED_FDS (1 + RUN_MAX_NAMESERVERS + 2 * RUN_BELLS + 2)

struct run_supervisor {
	int notify_fd; /* the filter's listener; owned */
	int pidfd;     /* the program's first process; owned */
	pid_t pid;
	sr_client *client; /* borrowed */
	bool netns;        /* the program has its own network namespace */
	bool verbose;
	struct run_nameserver ns[RUN_MAX_NAMESERVERS];
	int n_ns;
	int bells[2][RUN_BELLS]; /* [0] inet, [1] inet6; -1 where none */
	ino_t netns_ino;         /* the program's network namespace; 0 without one */
	unsigned bell_next[2];
	int raw[2]; /* raw sockets of the namespace, [0] inet, [1] inet6; -1 where none */
};

/* run_filter.c */
int run_filter_install(bool netns, int *notify_fd);

/* run_netns.c */
int run_netns_enter(void);
int run_nameservers_read(const char *path, struct run_nameserver *ns, int max);
int run_nameserver_open(struct run_nameserver *ns);

/* run_dns.c */
void run_dns_serve(struct run_supervisor *sv, int fd);
const struct run_nameserver *run_nameserver_find(const struct run_supervisor *sv,
                                                 const struct sockaddr_storage *ss, socklen_t len);

/* run_udp.c */
int run_udp_send(struct run_supervisor *sv, const struct run_call *call,
                 const struct run_sock *sock);

/* run_listen.c */
int run_listen_bind(struct run_supervisor *sv, pid_t pid, const struct run_sock *sock,
                    const struct sockaddr_storage *ss, socklen_t ss_len);
int run_listen_listen(struct run_supervisor *sv, const struct run_sock *sock, int backlog);
int run_listen_accept(struct run_supervisor *sv, const struct run_call *call,
                      const struct run_sock *sock);
bool run_listen_any(void);
bool run_program_has_socket(pid_t pid, ino_t ino);

/* run_relay.c */
int run_relay_send(struct run_supervisor *sv, pid_t pid, const struct run_sock *sock,
                   const struct sockaddr_storage *ss, socklen_t ss_len, const void *data,
                   size_t len);
bool run_relay_any(void);

/* run_supervisor.c */
int run_supervise(struct run_supervisor *sv, int *status);
bool run_workers_idle(void);

/* run_connect.c */
int run_connect(struct run_supervisor *sv, const struct run_call *call, const struct run_sock *sock,
                const struct sockaddr_storage *ss, socklen_t ss_len);

/* run_args.c */
int run_read_mem(pid_t pid, uint64_t addr, void *buf, size_t len);
int run_write_mem(pid_t pid, uint64_t addr, const void *buf, size_t len);
int run_call_still_valid(int notify_fd, uint64_t id);
int run_sock_open(int pidfd, int target_fd, struct run_sock *out);
void run_sock_close(struct run_sock *s);
bool run_sock_in_netns(const struct run_supervisor *sv, const struct run_sock *s);
int run_sockaddr_text(const struct sockaddr_storage *ss, socklen_t len, int *family, char *host,
                      size_t host_len, int *port);

#endif
