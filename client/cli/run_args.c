/*
 * run_args.c - reading a trapped call's arguments out of the program: its memory
 * (process_vm_readv, one copy), the socket behind a descriptor number
 * (pidfd_getfd), and whether the call is still the one we were told about
 * (SECCOMP_IOCTL_NOTIF_ID_VALID). Nothing here decides anything.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "run.h"

/*
 * Copies len bytes at addr in pid's memory into buf. Returns 0, or a negative
 * errno (-EFAULT when the range is not all readable).
 */
int
run_read_mem(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = {.iov_base = buf, .iov_len = len};
	struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};
	ssize_t n;

	if (len == 0)
		return 0;
	n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (n == -1)
		return errno == ESRCH ? -ESRCH : -EFAULT;
	return (size_t)n == len ? 0 : -EFAULT;
}

/* Copies len bytes of buf to addr in pid's memory. Returns 0 or a negative errno. */
int
run_write_mem(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
	struct iovec local = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};
	struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};
	ssize_t n;

	n = process_vm_writev(pid, &local, 1, &remote, 1, 0);
	if (n == -1)
		return errno == ESRCH ? -ESRCH : -EFAULT;
	return (size_t)n == len ? 0 : -EFAULT;
}

/*
 * 1 if the notification id still stands for a waiting call: the thread has not
 * died and its pid has not been reused since its memory was read. 0 if not.
 */
int
run_call_still_valid(int notify_fd, uint64_t id)
{
	return seccomp_notify_id_valid(notify_fd, id) == 0;
}

/*
 * Fills out with the socket behind the program's target_fd, through a duplicate
 * the caller closes with run_sock_close(). Returns 0, -ENOTSOCK for a descriptor
 * that is not a socket, or another negative errno (-EBADF: no such descriptor).
 */
int
run_sock_open(int pidfd, int target_fd, struct run_sock *out)
{
	socklen_t len;
	int fd, rc;

	out->fd = -1;
	if (target_fd < 0)
		return -EBADF;
	if ((fd = (int)syscall(SYS_pidfd_getfd, pidfd, target_fd, 0)) == -1)
		return -errno;
	len = sizeof(out->family);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &out->family, &len) == -1) {
		rc = errno == ENOTSOCK ? -ENOTSOCK : -errno;
		close(fd);
		return rc;
	}
	len = sizeof(out->type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &out->type, &len) == -1 ||
	    (out->status_flags = fcntl(fd, F_GETFL)) == -1) {
		rc = -errno;
		close(fd);
		return rc;
	}
	out->fd = fd;
	return 0;
}

/*
 * Whether the socket lives in the program's own network namespace (false for one
 * it inherited from outside, or without a namespace): only such a socket may be
 * used by the supervisor as it is, since it can reach nothing else.
 */
bool
run_sock_in_netns(const struct run_supervisor *sv, const struct run_sock *s)
{
	struct stat st;
	int ns;
	bool in;

	if (sv->netns_ino == 0 || (ns = ioctl(s->fd, SIOCGSKNS)) == -1)
		return false;
	in = fstat(ns, &st) == 0 && st.st_ino == sv->netns_ino;
	close(ns);
	return in;
}

void
run_sock_close(struct run_sock *s)
{
	if (s->fd != -1)
		close(s->fd);
	s->fd = -1;
}

/*
 * Turns an inet or inet6 sockaddr of len bytes into its family, numeric host and
 * port. Returns 0, or -EINVAL (too short) or -EAFNOSUPPORT (another family).
 */
int
run_sockaddr_text(const struct sockaddr_storage *ss, socklen_t len, int *family, char *host,
                  size_t host_len, int *port)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

	if (len < (socklen_t)sizeof(sa_family_t))
		return -EINVAL;
	switch (ss->ss_family) {
	case AF_INET:
		if (len < (socklen_t)sizeof(*sin))
			return -EINVAL;
		inet_ntop(AF_INET, &sin->sin_addr, host, (socklen_t)host_len);
		*port = ntohs(sin->sin_port);
		break;
	case AF_INET6:
		if (len < (socklen_t)sizeof(*sin6))
			return -EINVAL;
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, (socklen_t)host_len);
		*port = ntohs(sin6->sin6_port);
		break;
	default:
		return -EAFNOSUPPORT;
	}
	*family = ss->ss_family;
	return 0;
}
