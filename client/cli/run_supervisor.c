/*
 * run_supervisor.c - the notification loop of `sockrpc run`: receive each trapped
 * call, read its arguments once, decide, and answer it. A call that names an
 * address is never let continue: the supervisor (or the daemon) performs it and
 * returns its result, so no other thread of the program can change the address
 * between the check and the use. Calls on sockets that reach no network (unix,
 * netlink) and calls whose arguments are all in registers continue.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run.h"

static bool handle_call(struct run_supervisor *sv, const struct run_call *call,
                        struct seccomp_notif_resp *resp);
static void *worker_main(void *arg);
static int on_socket(const struct run_call *call);
static int on_connect(struct run_supervisor *sv, const struct run_call *call);
static int on_send(struct run_supervisor *sv, const struct run_call *call);
static int on_listener_call(struct run_supervisor *sv, const struct run_call *call);
static int read_sockaddr(const struct run_call *call, uint64_t addr, uint64_t len,
                         struct sockaddr_storage *ss, socklen_t *ss_len);

/*
 * A connect waits on the network: each runs in a thread of its own so that the
 * program's other threads are served meanwhile (up to this many at once; past
 * that, in the loop).
 */
#define RUN_MAX_WORKERS 64

struct worker {
	struct run_supervisor *sv;
	struct run_call call;
};

static atomic_int workers_active;

/*
 * Serves the program's trapped calls until its first process exits; *status is
 * its wait status. Returns 0, or a negative errno if the loop itself failed.
 */
int
run_supervise(struct run_supervisor *sv, int *status)
{
	struct seccomp_notif *req = NULL;
	struct seccomp_notif_resp *resp = NULL;
	struct pollfd pfd[2 + RUN_MAX_NAMESERVERS];
	struct run_call call;
	int rc;

	if ((rc = seccomp_notify_alloc(&req, &resp)) < 0)
		return rc;
	pfd[0] = (struct pollfd){.fd = sv->notify_fd, .events = POLLIN};
	pfd[1] = (struct pollfd){.fd = sv->pidfd, .events = POLLIN};
	for (int i = 0; i < sv->n_ns; i++)
		pfd[2 + i] = (struct pollfd){.fd = sv->ns[i].fd, .events = POLLIN};
	for (;;) {
		if (poll(pfd, (nfds_t)(2 + sv->n_ns), -1) == -1) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if (pfd[1].revents != 0) {
			rc = waitpid(sv->pid, status, 0) == -1 ? -errno : 0;
			break;
		}
		for (int i = 0; i < sv->n_ns; i++)
			if (pfd[2 + i].revents != 0)
				run_dns_serve(sv, sv->ns[i].fd);
		if (pfd[0].revents == 0)
			continue;
		/* seccomp_notify_receive wants a zeroed request (the kernel checks). */
		memset(req, 0, sizeof(*req));
		if (seccomp_notify_receive(sv->notify_fd, req) < 0)
			continue; /* the thread died or took a signal before we read it */
		call = (struct run_call){.id = req->id, .pid = (pid_t)req->pid, .nr = req->data.nr};
		memcpy(call.args, req->data.args, sizeof(call.args));
		if (call.nr == SCMP_SYS(connect) &&
		    atomic_load(&workers_active) < RUN_MAX_WORKERS) {
			struct worker *w = malloc(sizeof(*w));
			pthread_attr_t attr;
			pthread_t t;

			if (w != NULL) {
				*w = (struct worker){.sv = sv, .call = call};
				atomic_fetch_add(&workers_active, 1);
				pthread_attr_init(&attr);
				pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
				rc = pthread_create(&t, &attr, worker_main, w);
				pthread_attr_destroy(&attr);
				if (rc == 0)
					continue;
				atomic_fetch_sub(&workers_active, 1);
				free(w);
			}
		}
		memset(resp, 0, sizeof(*resp));
		resp->id = req->id;
		/* ENOENT: the thread went away (or a signal restarted the call) meanwhile. */
		if (handle_call(sv, &call, resp))
			(void)seccomp_notify_respond(sv->notify_fd, resp);
	}
	seccomp_notify_free(req, resp);
	return rc;
}

/* Whether no connect is still being served (the client and the listener are in use). */
bool
run_workers_idle(void)
{
	return atomic_load(&workers_active) == 0;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct seccomp_notif_resp resp;

	memset(&resp, 0, sizeof(resp));
	resp.id = w->call.id;
	if (handle_call(w->sv, &w->call, &resp))
		(void)seccomp_notify_respond(w->sv->notify_fd, &resp);
	free(w);
	atomic_fetch_sub(&workers_active, 1);
	return NULL;
}

/* Decides the call and fills resp; false if the call is (or will be) answered otherwise. */
static bool
handle_call(struct run_supervisor *sv, const struct run_call *call, struct seccomp_notif_resp *resp)
{
	int answer;

	if (call->nr == SCMP_SYS(socket))
		answer = on_socket(call);
	else if (call->nr == SCMP_SYS(connect))
		answer = on_connect(sv, call);
	else if (call->nr == SCMP_SYS(sendto) || call->nr == SCMP_SYS(sendmsg) ||
	         call->nr == SCMP_SYS(sendmmsg))
		answer = on_send(sv, call);
	else
		answer = on_listener_call(sv, call); /* bind, listen, accept, accept4 */
	if (sv->verbose)
		fprintf(stderr, "sockrpc run: pid %d syscall %d -> %s%d\n", (int)call->pid,
		        call->nr, answer == RUN_ANSWER_CONTINUE ? "continue" : "", answer);
	if (answer == RUN_ANSWER_SENT || answer == RUN_ANSWER_PARKED)
		return false;
	if (answer == RUN_ANSWER_CONTINUE) {
		resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	} else if (answer < 0) {
		resp->error = answer;
	} else {
		resp->val = answer;
	}
	return true;
}

/*
 * socket(AF_INET/AF_INET6, ...): its arguments are registers, so letting it run
 * is safe; the new socket lives in the program's namespace and reaches nothing
 * until the supervisor answers its connect. Raw and packet-like types are refused.
 */
static int
on_socket(const struct run_call *call)
{
	int type = (int)call->args[1] & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	int protocol = (int)call->args[2];

	if (type != SOCK_STREAM && type != SOCK_DGRAM)
		return -RUN_DENIED_ERRNO;
	/* The daemon makes TCP and UDP: no other protocol (SCTP, MPTCP, ICMP) is brokered. */
	if (protocol != 0 && protocol != (type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP))
		return -EPROTONOSUPPORT;
	return RUN_ANSWER_CONTINUE;
}

static int
on_connect(struct run_supervisor *sv, const struct run_call *call)
{
	struct sockaddr_storage ss;
	struct run_sock sock;
	socklen_t ss_len;
	int rc;

	if ((rc = run_sock_open(sv->pidfd, (int)call->args[0], &sock)) < 0)
		return rc == -ENOTSOCK || rc == -EBADF ? rc : -EBADF;
	if (sock.family != AF_INET && sock.family != AF_INET6) {
		/* A unix (or netlink) socket cannot reach a network whatever the address. */
		run_sock_close(&sock);
		return RUN_ANSWER_CONTINUE;
	}
	rc = read_sockaddr(call, call->args[1], call->args[2], &ss, &ss_len);
	if (rc == 0 && !run_call_still_valid(sv->notify_fd, call->id))
		rc = -ESRCH;
	if (rc == 0)
		rc = run_connect(sv, call, &sock, &ss, ss_len);
	run_sock_close(&sock);
	return rc;
}

/*
 * sendto/sendmsg/sendmmsg on an inet socket. A stream socket ignores the address
 * unless MSG_FASTOPEN asks it to connect, so those continue; datagrams are sent
 * by the supervisor (run_udp.c), to our name servers only.
 */
static int
on_send(struct run_supervisor *sv, const struct run_call *call)
{
	struct run_sock sock;
	uint64_t flags;
	int rc;

	if ((rc = run_sock_open(sv->pidfd, (int)call->args[0], &sock)) < 0)
		return rc == -ENOTSOCK || rc == -EBADF ? rc : -EBADF;
	flags = call->nr == SCMP_SYS(sendto) ? call->args[3] : call->args[2];
	if (call->nr == SCMP_SYS(sendmmsg))
		flags = call->args[3];
	if (sock.family != AF_INET && sock.family != AF_INET6)
		rc = RUN_ANSWER_CONTINUE;
	else if (sock.type == SOCK_STREAM && (flags & MSG_FASTOPEN) == 0)
		rc = RUN_ANSWER_CONTINUE;
	else if (sock.type == SOCK_DGRAM)
		rc = run_udp_send(sv, call, &sock);
	else
		rc = -RUN_DENIED_ERRNO;
	run_sock_close(&sock);
	return rc;
}

/*
 * bind, listen, accept: untouched on other families; on inet stream sockets the
 * daemon keeps the listener (run_listen.c); an inet datagram socket of the
 * namespace is bound there, from our copy of the address (nothing outside the
 * namespace can reach it but the replies run_relay.c writes to it).
 */
static int
on_listener_call(struct run_supervisor *sv, const struct run_call *call)
{
	struct sockaddr_storage ss;
	struct run_sock sock;
	socklen_t ss_len;
	int rc;

	if ((rc = run_sock_open(sv->pidfd, (int)call->args[0], &sock)) < 0)
		return rc == -ENOTSOCK || rc == -EBADF ? rc : -EBADF;
	if (sock.family != AF_INET && sock.family != AF_INET6)
		rc = RUN_ANSWER_CONTINUE;
	else if (call->nr == SCMP_SYS(accept) || call->nr == SCMP_SYS(accept4))
		rc = run_listen_accept(sv, call, &sock);
	else if (sock.type != SOCK_STREAM &&
	         (call->nr != SCMP_SYS(bind) || !run_sock_in_netns(sv, &sock)))
		rc = -RUN_DENIED_ERRNO;
	else if (call->nr == SCMP_SYS(listen))
		rc = run_listen_listen(sv, &sock, (int)call->args[1]);
	else if ((rc = read_sockaddr(call, call->args[1], call->args[2], &ss, &ss_len)) == 0) {
		if (!run_call_still_valid(sv->notify_fd, call->id))
			rc = -ESRCH;
		else if (sock.type != SOCK_STREAM)
			rc = bind(sock.fd, (struct sockaddr *)&ss, ss_len) == -1 ? -errno : 0;
		else
			rc = run_listen_bind(sv, call->pid, &sock, &ss, ss_len);
	}
	run_sock_close(&sock);
	return rc;
}

/* Reads the program's sockaddr (at most sizeof(*ss) bytes) once. */
static int
read_sockaddr(const struct run_call *call, uint64_t addr, uint64_t len, struct sockaddr_storage *ss,
              socklen_t *ss_len)
{
	int rc;

	if (len > sizeof(*ss) || len < sizeof(sa_family_t))
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	if ((rc = run_read_mem(call->pid, addr, ss, (size_t)len)) < 0)
		return rc;
	*ss_len = (socklen_t)len;
	return 0;
}
