/*
 * unix_path.c - AF_UNIX paths a client names: normalised as text (absolute, no `//`, `.`
 * or `..`), then opened without following any symbolic link, so the path the policy
 * matched is the file the daemon reaches. Opening is done by as_client.c under the
 * client's credentials; this file only knows paths, descriptors and inodes.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/openat2.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>

#include "sockrpcd.h"

/*
 * Writes the normalised form of `path` to out: `//` and `/./` collapse, `..` removes the
 * component before it. With no symbolic link followed (unix_path_open_dir), the lexical
 * `..` is the real one. Returns NULL, or why the path is refused.
 */
const char *
unix_path_normalise(const char *path, char *out, size_t out_len)
{
	size_t o = 0;
	const char *p = path;
	bool names_dir = false; /* the last component was "", "." or ".." */

	if (path[0] != '/')
		return "not an absolute path (a Unix socket path must start with /)";
	while (*p != '\0') {
		const char *start, *end;
		size_t n;

		while (*p == '/')
			p++;
		start = p;
		while (*p != '\0' && *p != '/')
			p++;
		end = p;
		n = (size_t)(end - start);
		names_dir = true;
		if (n == 0 || (n == 1 && start[0] == '.'))
			continue;
		if (n == 2 && start[0] == '.' && start[1] == '.') {
			if (o == 0)
				return "'..' goes above /";
			while (o > 0 && out[o - 1] != '/')
				o--;
			o--; /* the '/' before the removed component */
			continue;
		}
		names_dir = false;
		if (o + 1 + n + 1 > out_len)
			return "path too long";
		out[o++] = '/';
		memcpy(out + o, start, n);
		o += n;
	}
	/* "/a/b/", "/a/b/." and "/a/b/.." name a directory, not a socket in it. */
	if (o == 0 || names_dir)
		return "names a directory, not a socket";
	out[o] = '\0';
	return NULL;
}

/*
 * Opens the directory of a normalised path (O_PATH) with no symbolic link followed
 * anywhere, the daemon's directory permissions being those of the calling thread.
 * *name points at the last component in path. Returns the fd or -errno (-ELOOP: a link).
 */

/*
 * openat2's RESOLVE_NO_SYMLINKS where the kernel (before 5.6) or valgrind lacks openat2:
 * the normalised absolute path `dir` walked one component at a time, O_NOFOLLOW, each
 * a directory. Returns an O_PATH fd or -errno (ELOOP on a symbolic link).
 */
static int
open_dir_by_components(const char *dir)
{
	char copy[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *part, *save = NULL;
	int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC), next;

	if (fd < 0)
		return -errno;
	snprintf(copy, sizeof(copy), "%s", dir);
	for (part = strtok_r(copy, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
		next = openat(fd, part, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			/* O_NOFOLLOW|O_DIRECTORY on a link: ENOTDIR; say what it is (a directory
			 * now was a link an instant ago: one swapped under us). */
			struct stat st;
			int err = errno;

			if (err == ENOTDIR && fstatat(fd, part, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    (S_ISLNK(st.st_mode) || S_ISDIR(st.st_mode)))
				err = ELOOP;
			close(fd);
			return -err;
		}
		close(fd);
		fd = next;
	}
	return fd;
}

int
unix_path_open_dir(const char *path, const char **name)
{
	struct open_how how = {
	    .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
	    .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	const char *slash = strrchr(path, '/');
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	size_t n;
	long fd;

	if (slash == NULL || slash[1] == '\0')
		return -EINVAL;
	n = (size_t)(slash - path);
	if (n >= sizeof(dir))
		return -ENAMETOOLONG;
	if (n == 0)
		strcpy(dir, "/");
	else {
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	*name = slash + 1;
	fd = syscall(SYS_openat2, AT_FDCWD, dir, &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS)
		return open_dir_by_components(dir);
	return fd < 0 ? -errno : (int)fd;
}

/* Opens `name` in dirfd (O_PATH), refusing a symbolic link. Returns the fd or -errno. */
int
unix_path_open_file(int dirfd, const char *name)
{
	struct open_how how = {
	    .flags = O_PATH | O_CLOEXEC,
	    .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH,
	};
	long fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
	struct stat st;

	if (fd >= 0 || errno != ENOSYS)
		return fd < 0 ? -errno : (int)fd;
	/* name is one normalised component, so it cannot leave dirfd; refuse a link. */
	if ((fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -errno;
	if (fstat((int)fd, &st) != 0 || S_ISLNK(st.st_mode)) {
		close((int)fd);
		return -ELOOP;
	}
	return (int)fd;
}

/* The address that reaches exactly the file open as fd: its /proc magic link. */
socklen_t
unix_path_fd_address(int fd, struct sockaddr_un *out)
{
	memset(out, 0, sizeof(*out));
	out->sun_family = AF_UNIX;
	snprintf(out->sun_path, sizeof(out->sun_path), "/proc/self/fd/%d", fd);
	return (socklen_t)sizeof(*out);
}

/*
 * The file a bound AF_UNIX socket made, from the kernel (sock_diag, UNIX_DIAG_VFS): the
 * inode bind created wherever the path led, which no later rename can change.
 * Returns 0 or -errno.
 */
int
unix_path_bound_file(int sock, dev_t *dev, ino_t *ino)
{
	struct {
		struct nlmsghdr nh;
		struct unix_diag_req rq;
	} q;
	union {
		struct nlmsghdr nh;
		char buf[1024];
	} a;
	struct stat st;
	struct unix_diag_msg *m;
	struct rtattr *at;
	ssize_t n;
	int len, nl, err = -ENOENT;

	if (fstat(sock, &st) != 0)
		return -errno;
	nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return -errno;
	memset(&q, 0, sizeof(q));
	q.nh.nlmsg_len = sizeof(q);
	q.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	q.nh.nlmsg_flags = NLM_F_REQUEST;
	q.rq.sdiag_family = AF_UNIX;
	q.rq.udiag_states = ~0u;
	q.rq.udiag_ino = (unsigned)st.st_ino;
	q.rq.udiag_show = UDIAG_SHOW_VFS;
	q.rq.udiag_cookie[0] = q.rq.udiag_cookie[1] = ~0u; /* no cookie: by inode alone */
	/* The kernel answers a sock_diag request at once, from within send(). */
	if (send(nl, &q, sizeof(q), 0) != (ssize_t)sizeof(q) ||
	    (n = recv(nl, &a, sizeof(a), MSG_DONTWAIT)) < 0) {
		err = -errno;
		goto out;
	}
	if (!NLMSG_OK(&a.nh, (size_t)n) || a.nh.nlmsg_type != SOCK_DIAG_BY_FAMILY) {
		if (NLMSG_OK(&a.nh, (size_t)n) && a.nh.nlmsg_type == NLMSG_ERROR)
			err = ((struct nlmsgerr *)NLMSG_DATA(&a.nh))->error;
		goto out;
	}
	m = NLMSG_DATA(&a.nh);
	at = (struct rtattr *)(m + 1);
	len = (int)a.nh.nlmsg_len - (int)NLMSG_LENGTH(sizeof(*m));
	for (; RTA_OK(at, len); at = RTA_NEXT(at, len)) {
		const struct unix_diag_vfs *v = RTA_DATA(at);

		if (at->rta_type != UNIX_DIAG_VFS || RTA_PAYLOAD(at) < sizeof(*v))
			continue;
		/* The kernel's dev_t: major in the top 12 bits, minor in the low 20. */
		*dev = makedev(v->udiag_vfs_dev >> 20, v->udiag_vfs_dev & 0xfffff);
		*ino = v->udiag_vfs_ino;
		err = 0;
		break;
	}
out:
	close(nl);
	return err;
}
