/*
 * identity.c - reads who is on the other end of an accepted Unix socket from the kernel:
 * SO_PEERCRED, SO_PEERGROUPS and SO_PEERPIDFD, then /proc/<pid>/exe and /proc/<pid>/cgroup.
 * A pid can be reused between accept and reading /proc; the pidfd pins the process, so the
 * /proc reads count only if the pidfd's process still lives after them and has that pid.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "identity.h"

/* Linux 6.5+; older headers lack it. */
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

static void read_groups(int fd, struct identity *id);
static void read_exe(pid_t pid, char *out, size_t len);
static void read_cgroup(pid_t pid, char *out, size_t len);
static pid_t pidfd_pid(int pidfd);
static int pidfd_alive(int pidfd, pid_t pid);

int
identity_from_socket(int fd, struct identity *out)
{
	struct identity id;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int pidfd = -1;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
		return -errno;
	if (len != sizeof(cred))
		return -EINVAL;
	memset(&id, 0, sizeof(id));
	id.uid = cred.uid;
	id.gid = cred.gid;
	id.pid = cred.pid;
	read_groups(fd, &id);

	/* pid 0: the peer is in a pid namespace we cannot see into. */
	if (cred.pid <= 0)
		goto done;
	len = sizeof(pidfd);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == -1 || pidfd < 0) {
		/* Without a pidfd nothing proves /proc/<pid> is still the peer. */
		pidfd = -1;
		goto done;
	}
	if (pidfd_pid(pidfd) != cred.pid)
		goto done;
	read_exe(cred.pid, id.exe, sizeof(id.exe));
	read_cgroup(cred.pid, id.cgroup, sizeof(id.cgroup));
	if (pidfd_alive(pidfd, cred.pid) != 0) {
		/* The peer exited (its pid may since be someone else's): discard /proc reads. */
		id.exe[0] = '\0';
		id.cgroup[0] = '\0';
	}
done:
	if (pidfd != -1)
		close(pidfd);
	*out = id;
	return 0;
}

/* SO_PEERGROUPS fills as many as fit and fails with ERANGE if there are more; then we keep
 * what fit and say so, and group rules fail closed. */
static void
read_groups(int fd, struct identity *id)
{
	gid_t groups[IDENTITY_MAX_GROUPS];
	socklen_t len = sizeof(groups);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
		id->n_groups = (int)(len / sizeof(gid_t));
		memcpy(id->groups, groups, len);
		return;
	}
	if (errno == ERANGE) {
		gid_t *all;

		if ((all = malloc(len)) != NULL &&
		    getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, all, &len) == 0) {
			memcpy(id->groups, all, sizeof(id->groups));
			id->n_groups = IDENTITY_MAX_GROUPS;
		}
		free(all);
		id->groups_truncated = true;
		return;
	}
	/* Other errors (e.g. an old kernel): no supplementary groups known, so say truncated
	 * only if the option exists but failed oddly; ENOPROTOOPT means none recorded. */
	id->n_groups = 0;
	id->groups_truncated = errno != ENOPROTOOPT;
}

static void
read_exe(pid_t pid, char *out, size_t len)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, out, len);
	/* A path that fills the buffer may be cut: unknown beats wrong. */
	if (n <= 0 || (size_t)n >= len)
		n = 0;
	out[n] = '\0';
}

/* The cgroup v2 line is "0::/path". */
static void
read_cgroup(pid_t pid, char *out, size_t len)
{
	char path[64], buf[4096];
	ssize_t n;
	int fd;
	char *line, *end;

	out[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (line = buf; line != NULL && *line != '\0'; line = end ? end + 1 : NULL) {
		end = strchr(line, '\n');
		if (strncmp(line, "0::", 3) != 0)
			continue;
		line += 3;
		if (end != NULL)
			*end = '\0';
		if (strlen(line) < len)
			snprintf(out, len, "%s", line);
		return;
	}
}

/* The pid a pidfd refers to, from the "Pid:" line of /proc/self/fdinfo/<pidfd>; -1 if the
 * process is gone (the kernel shows -1) or unreadable. */
static pid_t
pidfd_pid(int pidfd)
{
	char path[64], buf[1024];
	ssize_t n;
	int fd;
	char *p;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if ((p = strstr(buf, "\nPid:")) == NULL)
		return -1;
	return (pid_t)strtol(p + 5, NULL, 10);
}

/* 0 while the process lives (a zombie still holds its pid, so also counts). Where
 * pidfd_send_signal is missing (ENOSYS: old kernels, valgrind), fdinfo's Pid turns -1 once
 * the process is reaped, which is exactly when its pid becomes reusable. */
static int
pidfd_alive(int pidfd, pid_t pid)
{
	if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) == 0)
		return 0;
	if (errno != ENOSYS)
		return -errno;
	return pidfd_pid(pidfd) == pid ? 0 : -ESRCH;
}
