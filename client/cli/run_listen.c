/*
 * run_listen.c - inet stream listeners of the program, kept by the daemon. bind and
 * listen go to the daemon (its bind and listen rules); the program's own socket is
 * bound and listening on the same port in its namespace, so getsockname and poll
 * work on it, but no peer can reach it. A thread per listener takes each connection
 * the daemon's accept rules allow (sr_accept_fd): it answers an accept the program
 * is blocked in, or queues the connection and rings a "doorbell" (a loopback
 * connection, inside the namespace, to the program's socket) so that poll and
 * epoll see the listener readable; the trapped accept then takes the doorbell
 * away and gets the queued connection, installed with SECCOMP_ADDFD_FLAG_SEND.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run.h"

/* Listeners one program may have brokered; connections queued on one. */
#define MAX_LISTENERS 64
#define MAX_QUEUED 128
#define MAX_PARKED 64

struct listener {
	ino_t ino;                         /* the program's socket (its inode), 0: free slot */
	sr_socket *handle;                 /* the daemon's listener */
	int netns_fd;                      /* our duplicate of the program's socket; owned */
	struct sockaddr_storage bell_addr; /* where a doorbell connects */
	socklen_t bell_len;
	bool listening;
	bool closing; /* the program closed its socket: the thread frees the slot */
	int queued[MAX_QUEUED], n_queued;
	int doorbells; /* rung and not yet taken away */
	struct run_call parked[MAX_PARKED];
	int n_parked;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* guards listeners[] */
static struct listener listeners[MAX_LISTENERS];

static struct listener *find(const struct run_sock *sock);
static void reap(struct run_supervisor *sv, pid_t pid);
static void *listener_main(void *arg);
static int install(struct run_supervisor *sv, const struct run_call *call, int fd);
static void ring(struct run_supervisor *sv, struct listener *l);
static int errno_for(const sr_error *e);

struct thread_arg {
	struct run_supervisor *sv;
	struct listener *l;
};

/* Whether a listener's thread may still use the client (it waits in sr_accept_fd). */
bool
run_listen_any(void)
{
	bool any = false;

	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_LISTENERS; i++)
		any = any || listeners[i].listening;
	pthread_mutex_unlock(&lock);
	return any;
}

/* bind on an inet stream socket: the daemon binds (policy), then the program's socket. */
int
run_listen_bind(struct run_supervisor *sv, pid_t pid, const struct run_sock *sock,
                const struct sockaddr_storage *ss, socklen_t ss_len)
{
	char host[INET6_ADDRSTRLEN];
	struct sockaddr_storage local = *ss;
	struct listener *l = NULL;
	sr_sockinfo info;
	struct stat st;
	int family, port, on = 1, rc;
	sr_socket *h;
	sr_error e;

	/*
	 * Without a namespace (or for a socket inherited from outside it) the program's
	 * own socket would listen on the host, its peers unchecked.
	 */
	if (!run_sock_in_netns(sv, sock))
		return -RUN_DENIED_ERRNO;
	if (ss->ss_family != sock->family)
		return -EAFNOSUPPORT;
	if ((rc = run_sockaddr_text(ss, ss_len, &family, host, sizeof(host), &port)) < 0)
		return rc;
	if (fstat(sock->fd, &st) == -1)
		return -errno;
	reap(sv, pid);
	if ((h = sr_socket_new(sv->client, family, SOCK_STREAM, 0, &e)) == NULL)
		return -errno_for(&e);
	if (sr_bind(h, port, host, &e) == -1 || sr_info(h, &info, &e) == -1) {
		sr_socket_free(h);
		return -errno_for(&e);
	}
	/* The same port in the namespace; any address, as the daemon took it. */
	(void)setsockopt(sock->fd, family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6,
	                 family == AF_INET ? IP_FREEBIND : IPV6_FREEBIND, &on, sizeof(on));
	if (family == AF_INET)
		((struct sockaddr_in *)&local)->sin_port = htons((uint16_t)info.port);
	else
		((struct sockaddr_in6 *)&local)->sin6_port = htons((uint16_t)info.port);
	if (bind(sock->fd, (struct sockaddr *)&local, ss_len) == -1) {
		rc = -errno;
		sr_socket_free(h);
		return rc;
	}
	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_LISTENERS && l == NULL; i++)
		if (listeners[i].ino == 0)
			l = &listeners[i];
	if (l == NULL) {
		pthread_mutex_unlock(&lock);
		sr_socket_free(h);
		return -ENOBUFS;
	}
	memset(l, 0, sizeof(*l));
	l->ino = st.st_ino;
	l->handle = h;
	l->netns_fd = fcntl(sock->fd, F_DUPFD_CLOEXEC, 0);
	/* A doorbell rings on the loopback address of the family (or the address bound). */
	l->bell_addr = local;
	l->bell_len = ss_len;
	if (family == AF_INET &&
	    ((struct sockaddr_in *)&local)->sin_addr.s_addr == htonl(INADDR_ANY))
		((struct sockaddr_in *)&l->bell_addr)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (family == AF_INET6 &&
	    IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&local)->sin6_addr))
		((struct sockaddr_in6 *)&l->bell_addr)->sin6_addr = in6addr_loopback;
	pthread_mutex_unlock(&lock);
	return 0;
}

/* listen on a socket bound through run_listen_bind; -EACCES for any other inet socket. */
int
run_listen_listen(struct run_supervisor *sv, const struct run_sock *sock, int backlog)
{
	struct thread_arg *ta;
	struct listener *l;
	pthread_attr_t attr;
	pthread_t t;
	sr_error e;
	int rc;

	pthread_mutex_lock(&lock);
	l = find(sock);
	pthread_mutex_unlock(&lock);
	if (l == NULL)
		return -RUN_DENIED_ERRNO; /* not bound through us: nothing to listen with */
	if (l->listening)
		return 0;
	/* The kernel caps a backlog at somaxconn (iperf3 asks INT_MAX); the daemon refuses. */
	if (backlog < 0 || backlog > 4096)
		backlog = -1;
	if (sr_listen(l->handle, backlog, &e) == -1)
		return -errno_for(&e);
	if (listen(sock->fd, backlog < 0 ? 4096 : backlog) == -1)
		return -errno;
	if ((ta = malloc(sizeof(*ta))) == NULL)
		return -ENOMEM;
	*ta = (struct thread_arg){.sv = sv, .l = l};
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &attr, listener_main, ta);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		free(ta);
		return -rc;
	}
	l->listening = true;
	return 0;
}

/*
 * accept/accept4 on the program's socket. Returns RUN_ANSWER_CONTINUE if it is not a
 * brokered listener but a socket of the program's namespace (nothing can connect to
 * it), RUN_ANSWER_SENT once a connection was installed (the call is
 * answered), RUN_ANSWER_PARKED if the call waits for the listener's thread, or a
 * negative errno (-EAGAIN: non-blocking and none queued).
 */
int
run_listen_accept(struct run_supervisor *sv, const struct run_call *call,
                  const struct run_sock *sock)
{
	struct listener *l;
	int fd, rc;

	pthread_mutex_lock(&lock);
	if ((l = find(sock)) == NULL) {
		pthread_mutex_unlock(&lock);
		/* A listener the daemon did not make (inherited from outside): its peers are
		 * not checked, so it accepts nothing. Any other socket: accept's own error. */
		return run_sock_in_netns(sv, sock) ? RUN_ANSWER_CONTINUE : -RUN_DENIED_ERRNO;
	}
	if (l->n_queued == 0) {
		if ((sock->status_flags & O_NONBLOCK) != 0 || l->n_parked == MAX_PARKED) {
			pthread_mutex_unlock(&lock);
			return -EAGAIN;
		}
		l->parked[l->n_parked++] = *call;
		pthread_mutex_unlock(&lock);
		return RUN_ANSWER_PARKED;
	}
	fd = l->queued[0];
	memmove(l->queued, l->queued + 1, sizeof(int) * (size_t)--l->n_queued);
	if (l->doorbells > 0) {
		int bell = accept4(l->netns_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (bell != -1) {
			close(bell);
			l->doorbells--;
		}
	}
	pthread_mutex_unlock(&lock);
	rc = install(sv, call, fd);
	close(fd);
	return rc < 0 ? rc : RUN_ANSWER_SENT;
}

/* The listener's thread: every connection the daemon hands back goes to the program. */
static void *
listener_main(void *arg)
{
	struct thread_arg *ta = arg;
	struct listener *l = ta->l;
	struct run_call call;
	sr_error e;
	int fd;

	for (;;) {
		if ((fd = sr_accept_fd(l->handle, &e)) == -1) {
			if (e.code == SR_EDAEMON || e.code == SR_ECLOSED || e.code == SR_EPROTO ||
			    l->closing)
				break;
			continue; /* that peer is gone or was refused; the next */
		}
		pthread_mutex_lock(&lock);
		while (l->n_parked > 0) {
			call = l->parked[0];
			memmove(l->parked, l->parked + 1, sizeof(call) * (size_t)--l->n_parked);
			pthread_mutex_unlock(&lock);
			if (install(ta->sv, &call, fd) == 0) {
				close(fd);
				fd = -1;
				pthread_mutex_lock(&lock);
				break;
			}
			pthread_mutex_lock(
			    &lock); /* that thread went away: the next, or queue it */
		}
		if (fd != -1) {
			if (l->n_queued < MAX_QUEUED) {
				l->queued[l->n_queued++] = fd;
				ring(ta->sv, l);
			} else {
				close(
				    fd); /* the program does not accept: as a full backlog would */
			}
		}
		pthread_mutex_unlock(&lock);
	}
	pthread_mutex_lock(&lock);
	for (int i = 0; i < l->n_queued; i++)
		close(l->queued[i]);
	for (int i = 0; i < l->n_parked; i++) {
		struct seccomp_notif_resp resp = {.id = l->parked[i].id, .error = -EBADF};
		(void)seccomp_notify_respond(ta->sv->notify_fd, &resp);
	}
	sr_socket_free(l->handle);
	close(l->netns_fd);
	memset(l, 0, sizeof(*l)); /* the slot is free again (ino 0) */
	pthread_mutex_unlock(&lock);
	free(ta);
	return NULL;
}

/*
 * Installs fd as the result of the accept call: peer address written back where
 * asked, accept4's flags applied, then ADDFD with SECCOMP_ADDFD_FLAG_SEND answers
 * the call with the new descriptor's number. Returns 0 or a negative errno.
 */
static int
install(struct run_supervisor *sv, const struct run_call *call, int fd)
{
	struct seccomp_notif_addfd addfd;
	struct sockaddr_storage peer;
	socklen_t peer_len = sizeof(peer), want;
	int flags = call->nr == SCMP_SYS(accept4) ? (int)call->args[3] : 0;

	if (call->args[1] != 0 && call->args[2] != 0 &&
	    getpeername(fd, (struct sockaddr *)&peer, &peer_len) == 0 &&
	    run_read_mem(call->pid, call->args[2], &want, sizeof(want)) == 0) {
		(void)run_write_mem(call->pid, call->args[1], &peer,
		                    want < peer_len ? want : peer_len);
		(void)run_write_mem(call->pid, call->args[2], &peer_len, sizeof(peer_len));
	}
	if ((flags & SOCK_NONBLOCK) != 0)
		(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	addfd = (struct seccomp_notif_addfd){
	    .id = call->id,
	    .flags = SECCOMP_ADDFD_FLAG_SEND,
	    .srcfd = (uint32_t)fd,
	    .newfd_flags = (flags & SOCK_CLOEXEC) != 0 ? O_CLOEXEC : 0,
	};
	return ioctl(sv->notify_fd, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd) == -1 ? -errno : 0;
}

/*
 * A connection to the program's socket from inside its namespace, so that it reads
 * readable: from the child's pool of sockets (non-blocking), taken in turn; one
 * used before is first disconnected (connect AF_UNSPEC).
 */
static void
ring(struct run_supervisor *sv, struct listener *l)
{
	struct sockaddr unspec = {.sa_family = AF_UNSPEC};
	int v6 = l->bell_addr.ss_family == AF_INET6;
	int fd = sv->bells[v6][sv->bell_next[v6]++ % RUN_BELLS];

	if (fd == -1)
		return;
	(void)connect(fd, &unspec, sizeof(unspec));
	if (connect(fd, (struct sockaddr *)&l->bell_addr, l->bell_len) == 0 || errno == EINPROGRESS)
		l->doorbells++;
}

/*
 * Closes the daemon's listeners whose socket the program no longer has (it cannot be
 * seen closing them: close is not trapped), so that their ports can be bound again.
 */
static void
reap(struct run_supervisor *sv, pid_t pid)
{
	sr_error e;

	(void)sv;
	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_LISTENERS; i++) {
		struct listener *l = &listeners[i];

		if (l->ino == 0 || l->closing || run_program_has_socket(pid, l->ino))
			continue;
		if (!l->listening) {
			sr_socket_free(l->handle);
			close(l->netns_fd);
			memset(l, 0, sizeof(*l));
			continue;
		}
		l->closing = true;
		(void)sr_close(l->handle, &e); /* its thread's sr_accept_fd returns, and it frees */
	}
	pthread_mutex_unlock(&lock);
}

/* Whether the program (the thread pid's descriptor table) has a socket of inode ino. */
bool
run_program_has_socket(pid_t pid, ino_t ino)
{
	char dir[64], path[352], link[64], want[64];
	struct dirent *d;
	bool found = false;
	ssize_t n;
	DIR *fds;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	snprintf(want, sizeof(want), "socket:[%lu]", (unsigned long)ino);
	if ((fds = opendir(dir)) == NULL)
		return true; /* cannot tell: keep it */
	while (!found && (d = readdir(fds)) != NULL) {
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		if ((n = readlink(path, link, sizeof(link) - 1)) > 0) {
			link[n] = '\0';
			found = strcmp(link, want) == 0;
		}
	}
	closedir(fds);
	return found;
}

static struct listener *
find(const struct run_sock *sock)
{
	struct stat st;

	if (fstat(sock->fd, &st) == -1)
		return NULL;
	for (int i = 0; i < MAX_LISTENERS; i++)
		if (listeners[i].ino == st.st_ino && !listeners[i].closing)
			return &listeners[i];
	return NULL;
}

static int
errno_for(const sr_error *e)
{
	switch (e->code) {
	case SR_EDENIED:
		return RUN_DENIED_ERRNO;
	case SR_EOS:
		return e->sys_errno > 0 ? e->sys_errno : EADDRNOTAVAIL;
	case SR_EINVAL:
		return EINVAL;
	default:
		return ENETDOWN;
	}
}
