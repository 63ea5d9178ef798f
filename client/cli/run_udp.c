/*
 * run_udp.c - trapped sends on the program's inet datagram sockets. The
 * supervisor copies the data and the address out of the program once and sends
 * that copy itself, so no other thread can redirect it: to the name servers it
 * answers for (run_dns.c) on the program's own socket, to the peer of a
 * connected socket on that socket, anywhere else through the daemon's policy
 * (run_relay.c).
 */
#include <errno.h>
#include <seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "run.h"

/* A datagram is at most 64 KiB; a message of more pieces than this is refused. */
#define UDP_MAX 65535
#define UDP_MAX_IOV 64
/* sendmmsg: how many messages one trapped call sends at most (the kernel's UIO_MAXIOV). */
#define UDP_MAX_BATCH 16

static int send_one(struct run_supervisor *sv, const struct run_call *call,
                    const struct run_sock *sock, uint64_t msg_addr, int flags);
static int send_copied(struct run_supervisor *sv, pid_t pid, const struct run_sock *sock,
                       const struct sockaddr_storage *ss, socklen_t ss_len, const void *data,
                       size_t len, int flags);
static int gather(pid_t pid, const struct msghdr *m, char *buf, size_t *len);

/* Answers a trapped sendto, sendmsg or sendmmsg on an inet datagram socket. */
int
run_udp_send(struct run_supervisor *sv, const struct run_call *call, const struct run_sock *sock)
{
	struct sockaddr_storage ss;
	struct mmsghdr mm;
	size_t len;
	char *buf;
	int rc, sent = 0;
	unsigned vlen;

	if (call->nr == SCMP_SYS(sendto)) {
		len = call->args[2] > UDP_MAX ? UDP_MAX + 1 : (size_t)call->args[2];
		if (len > UDP_MAX)
			return -EMSGSIZE;
		if (call->args[5] > sizeof(ss) || call->args[5] < sizeof(sa_family_t))
			return -EINVAL;
		if ((buf = malloc(len + 1)) == NULL)
			return -ENOMEM;
		memset(&ss, 0, sizeof(ss));
		rc = run_read_mem(call->pid, call->args[4], &ss, (size_t)call->args[5]);
		if (rc == 0)
			rc = run_read_mem(call->pid, call->args[1], buf, len);
		if (rc == 0 && !run_call_still_valid(sv->notify_fd, call->id))
			rc = -ESRCH;
		if (rc == 0)
			rc = send_copied(sv, call->pid, sock, &ss, (socklen_t)call->args[5], buf,
			                 len, (int)call->args[3]);
		free(buf);
		return rc;
	}
	if (call->nr == SCMP_SYS(sendmsg))
		return send_one(sv, call, sock, call->args[1], (int)call->args[2]);
	/* sendmmsg: each message as sendmsg, its msg_len written back, as the kernel does. */
	vlen = call->args[2] > UDP_MAX_BATCH ? UDP_MAX_BATCH : (unsigned)call->args[2];
	for (unsigned i = 0; i < vlen; i++) {
		uint64_t at = call->args[1] + i * sizeof(struct mmsghdr);

		rc = send_one(sv, call, sock, at, (int)call->args[3]);
		if (rc < 0)
			return sent > 0 ? sent : rc;
		mm.msg_len = (unsigned)rc;
		if (run_write_mem(call->pid, at + offsetof(struct mmsghdr, msg_len), &mm.msg_len,
		                  sizeof(mm.msg_len)) < 0)
			return sent > 0 ? sent : -EFAULT;
		sent++;
	}
	return sent;
}

/* One struct msghdr at msg_addr in the program, copied and sent. */
static int
send_one(struct run_supervisor *sv, const struct run_call *call, const struct run_sock *sock,
         uint64_t msg_addr, int flags)
{
	struct sockaddr_storage ss;
	struct msghdr m;
	socklen_t ss_len = 0;
	size_t len;
	char *buf;
	int rc;

	if ((rc = run_read_mem(call->pid, msg_addr, &m, sizeof(m))) < 0)
		return rc;
	memset(&ss, 0, sizeof(ss));
	if (m.msg_name != NULL) {
		if (m.msg_namelen > sizeof(ss) || m.msg_namelen < sizeof(sa_family_t))
			return -EINVAL;
		ss_len = m.msg_namelen;
		if ((rc = run_read_mem(call->pid, (uintptr_t)m.msg_name, &ss, ss_len)) < 0)
			return rc;
	}
	if ((buf = malloc(UDP_MAX)) == NULL)
		return -ENOMEM;
	if ((rc = gather(call->pid, &m, buf, &len)) == 0 &&
	    !run_call_still_valid(sv->notify_fd, call->id))
		rc = -ESRCH;
	if (rc == 0)
		rc = send_copied(sv, call->pid, sock, m.msg_name != NULL ? &ss : NULL, ss_len, buf,
		                 len, flags);
	free(buf);
	return rc;
}

/*
 * Sends len bytes to ss (NULL: to the socket's peer): to our name servers on the
 * program's socket, elsewhere through the daemon (run_relay.c). Returns the count
 * sent or a negative errno.
 */
static int
send_copied(struct run_supervisor *sv, pid_t pid, const struct run_sock *sock,
            const struct sockaddr_storage *ss, socklen_t ss_len, const void *data, size_t len,
            int flags)
{
	struct sockaddr_storage peer;
	socklen_t peer_len = sizeof(peer);
	bool in_netns = run_sock_in_netns(sv, sock);
	ssize_t n;

	if (getpeername(sock->fd, (struct sockaddr *)&peer, &peer_len) == -1)
		peer_len = 0;
	if (ss == NULL && peer_len == 0)
		return -EDESTADDRREQ;
	/*
	 * Connected: to a name server (run_connect, in the namespace) or to the peer the
	 * daemon connected a handed-back socket to; an address naming that peer changes
	 * nothing.
	 */
	if (ss != NULL && peer_len != 0 && ss_len == peer_len && memcmp(ss, &peer, ss_len) == 0)
		ss = NULL;
	if (ss == NULL && (!in_netns || run_nameserver_find(sv, &peer, peer_len) != NULL))
		goto send;
	if (ss == NULL)
		return -RUN_DENIED_ERRNO;
	if (in_netns && run_nameserver_find(sv, ss, ss_len) != NULL)
		goto send;
	/*
	 * Elsewhere: through the daemon. A socket from outside the namespace (inherited,
	 * or handed back connected) cannot get the replies: refused.
	 */
	if (!in_netns || peer_len != 0)
		return -RUN_DENIED_ERRNO;
	return run_relay_send(sv, pid, sock, ss, ss_len, data, len);
send:
	/* Never wait or die on the program's behalf; the program's own flags may not say so. */
	flags = (flags & (MSG_MORE | MSG_CONFIRM)) | MSG_DONTWAIT | MSG_NOSIGNAL;
	n = ss == NULL ? send(sock->fd, data, len, flags)
	               : sendto(sock->fd, data, len, flags, (const struct sockaddr *)ss, ss_len);
	return n == -1 ? -errno : (int)n;
}

/* Copies the message's iovecs into buf (UDP_MAX bytes); -EMSGSIZE if they hold more. */
static int
gather(pid_t pid, const struct msghdr *m, char *buf, size_t *len)
{
	struct iovec iov[UDP_MAX_IOV];
	size_t total = 0;
	int rc;

	if (m->msg_iovlen > UDP_MAX_IOV)
		return -EMSGSIZE;
	if (m->msg_iovlen > 0 && (rc = run_read_mem(pid, (uintptr_t)m->msg_iov, iov,
	                                            m->msg_iovlen * sizeof(iov[0]))) < 0)
		return rc;
	for (size_t i = 0; i < m->msg_iovlen; i++) {
		if (iov[i].iov_len > UDP_MAX - total)
			return -EMSGSIZE;
		if ((rc = run_read_mem(pid, (uintptr_t)iov[i].iov_base, buf + total,
		                       iov[i].iov_len)) < 0)
			return rc;
		total += iov[i].iov_len;
	}
	*len = total;
	return 0;
}
