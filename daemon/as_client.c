/*
 * as_client.c - system calls whose outcome depends on who makes them, made as the client:
 * AF_UNIX connect, bind, listen, send_to and unlink with the client's uid, gid and groups
 * (file permissions apply as without the broker; the peer's SO_PEERCRED shows the client),
 * and sockets created with the client's fsuid (the kernel's same-owner check for
 * SO_REUSEPORT then compares the client's uid, not the daemon's).
 *
 * How: the calling thread alone takes the client's effective ids for one non-blocking
 * system call (the path's resolution included) and takes its own back at once, through
 * the raw system calls (glibc's setresuid() and friends change every thread). The real
 * and saved uid stay 0, so during the switch the client can neither signal nor trace the
 * daemon (the kernel also makes a process whose euid changes non-dumpable), and the
 * switch back cannot be refused; if it fails anyway the daemon exits rather than serve
 * on with a client's identity.
 *
 * Split (priv.h), this runs in the privileged parent only (priv.c calls it for the
 * worker's requests, after its own policy check); the worker reaches it through
 * priv_proxy.c. In one root process (--user root) the daemon calls it directly. Started
 * without root, the daemon cannot act as anyone else: as_client_available() says so and
 * the callers refuse AF_UNIX paths and SO_REUSEPORT.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "sockrpcd.h"

/* The daemon's own supplementary groups, restored after each switch (root has few). */
#define SAVED_GROUPS_MAX 64

struct saved_ids {
	gid_t egid;
	int n_groups;
	gid_t groups[SAVED_GROUPS_MAX];
};

static int become(const struct identity *who, struct saved_ids *sv);
static void come_back(const struct saved_ids *sv);
static int open_target(const char *path, int *dirfd, const char **name);
static void remove_stray(const char *path, dev_t dev, ino_t ino);

bool
as_client_available(void)
{
	return geteuid() == 0;
}

/*
 * A new socket owned by the client when the daemon is root, else by the daemon; *owned
 * says which. The kernel's owner checks (SO_REUSEPORT) compare the socket's uid, taken from
 * the creator's fsuid; the gid is never compared, so only the fsuid switches (each switch
 * costs a credentials copy). Returns the fd or -errno.
 */
int
as_client_socket(const struct identity *who, int family, int type, int protocol, bool *owned)
{
	int fd, n = as_client_sockets(who, family, type, protocol, &fd, 1, owned);

	return n < 0 ? n : fd;
}

/*
 * As as_client_socket, n of them (a reserve's refill) under one switch of the fsuid: fills
 * fds (new, the caller's) and returns how many it made, at least one, or -errno when it
 * made none (a failure after the first ends the batch short).
 */
int
as_client_sockets(const struct identity *who, int family, int type, int protocol, int *fds, int n,
                  bool *owned)
{
	int made = 0, err = 0;

	*owned = false;
	if (!as_client_available() || who->uid == 0) {
		while (made < n && (fds[made] = socket(family, type, protocol)) >= 0)
			made++;
		if (made == 0)
			return -errno;
		*owned = as_client_available(); /* root's own: the daemon's uid */
		return made;
	}
	/* setfsuid() reports the previous value, never failure: read it back with -1 (an
	 * invalid id, which changes nothing). */
	syscall(SYS_setfsuid, who->uid);
	if ((uid_t)syscall(SYS_setfsuid, -1) != who->uid) {
		err = EPERM;
	} else {
		while (made < n && (fds[made] = socket(family, type, protocol)) >= 0)
			made++;
		err = errno;
	}
	syscall(SYS_setfsuid, 0);
	if (syscall(SYS_setfsuid, -1) != 0) {
		log_error("cannot take the daemon's file system uid back after creating a socket "
		          "for uid %u: exiting",
		          (unsigned)who->uid);
		_exit(EXIT_FAILURE);
	}
	if (made == 0)
		return -err;
	*owned = true;
	return made;
}

/*
 * Opens the socket file at the normalised `path` (O_PATH, no symbolic link followed) into
 * *file, refusing (own_dev, own_ino), the daemon's own socket. 0, -errno, or
 * AS_CLIENT_OWN_SOCKET. Runs as the client, so directory permissions are the client's.
 */
static int
open_socket_file(const char *path, dev_t own_dev, ino_t own_ino, int *file)
{
	struct stat st;
	const char *name;
	int dirfd, r;

	if ((r = open_target(path, &dirfd, &name)) != 0)
		return r;
	*file = unix_path_open_file(dirfd, name);
	close(dirfd);
	if (*file < 0) {
		r = *file;
		*file = -1;
		return r;
	}
	if (fstat(*file, &st) != 0)
		return -errno;
	if (own_ino != 0 && st.st_dev == own_dev && st.st_ino == own_ino)
		return AS_CLIENT_OWN_SOCKET;
	return 0;
}

/*
 * Connects fd to the socket file at the normalised `path`, as the client, following no
 * symbolic link, through the opened file itself (so what was checked is what is reached).
 * Returns 0, -errno (-EINPROGRESS/-EAGAIN: under way), or AS_CLIENT_OWN_SOCKET when the
 * file is (own_dev, own_ino), the daemon's own socket.
 */
int
as_client_unix_connect(const struct identity *who, int fd, const char *path, dev_t own_dev,
                       ino_t own_ino)
{
	struct saved_ids sv;
	struct sockaddr_un sun;
	int file = -1, r;

	if (!as_client_available())
		return -EPERM;
	if ((r = become(who, &sv)) != 0)
		return r;
	if ((r = open_socket_file(path, own_dev, own_ino, &file)) != 0)
		goto out;
	r = connect(fd, (struct sockaddr *)&sun, unix_path_fd_address(file, &sun)) == 0 ? 0
	                                                                                : -errno;
out:
	come_back(&sv);
	if (file >= 0)
		close(file);
	return r;
}

/*
 * Sends msg (its msg_name: a normalised path) as the client, as as_client_unix_connect
 * reaches its target. Returns the bytes sent, -errno, or AS_CLIENT_OWN_SOCKET.
 */
ssize_t
as_client_unix_sendmsg(const struct identity *who, int fd, const struct msghdr *msg, int flags,
                       dev_t own_dev, ino_t own_ino)
{
	const struct sockaddr_un *to = msg->msg_name;
	struct saved_ids sv;
	struct sockaddr_un sun;
	struct msghdr m = *msg;
	int file = -1;
	ssize_t r;

	if (!as_client_available())
		return -EPERM;
	if ((r = become(who, &sv)) != 0)
		return r;
	if ((r = open_socket_file(to->sun_path, own_dev, own_ino, &file)) != 0)
		goto out;
	m.msg_name = &sun;
	m.msg_namelen = unix_path_fd_address(file, &sun);
	r = sendmsg(fd, &m, flags);
	if (r < 0)
		r = -errno;
out:
	come_back(&sv);
	if (file >= 0)
		close(file);
	return r;
}

/*
 * Binds fd to the normalised `path` as the client. No symbolic link is followed up to the
 * directory; the kernel's bind then walks the path once more, so the file bind made is
 * checked, by inode, to be the one in that directory: if a directory was swapped between
 * the two walks, -EXDEV (the socket is then bound elsewhere, where the client may create
 * files, and must not be used; the file is removed if it can still be found). On success
 * *out holds what to remove on close.
 * Returns 0 or -errno.
 */
int
as_client_unix_bind(const struct identity *who, int fd, const char *path, struct unix_file *out)
{
	struct saved_ids sv;
	struct sockaddr_un sun;
	struct stat st;
	const char *name;
	dev_t dev;
	ino_t ino;
	int dirfd = -1, r;

	if (!as_client_available())
		return -EPERM;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	if ((r = become(who, &sv)) != 0)
		return r;
	if ((r = open_target(path, &dirfd, &name)) != 0)
		goto out;
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		r = -errno;
		goto out;
	}
	if ((r = unix_path_bound_file(fd, &dev, &ino)) != 0)
		goto out;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_dev != dev ||
	    st.st_ino != ino) {
		remove_stray(path, dev, ino);
		r = -EXDEV;
		goto out;
	}
	out->dirfd = dirfd;
	dirfd = -1;
	out->dev = dev;
	out->ino = ino;
	snprintf(out->name, sizeof(out->name), "%s", name);
out:
	come_back(&sv);
	if (dirfd >= 0)
		close(dirfd);
	return r;
}

/* listen() records the listener's credentials, which connecting peers then see. */
int
as_client_unix_listen(const struct identity *who, int fd, int backlog)
{
	struct saved_ids sv;
	int r;

	if (!as_client_available())
		return -EPERM;
	if ((r = become(who, &sv)) != 0)
		return r;
	r = listen(fd, backlog) == 0 ? 0 : -errno;
	come_back(&sv);
	return r;
}

/*
 * Removes the socket file bind made, if that very file (by inode) is still at its name,
 * as the client: a file put there since, or a race with one, is never the daemon's to
 * remove. Closes f->dirfd. Returns 0 or -errno.
 */
int
as_client_unix_unlink(const struct identity *who, struct unix_file *f)
{
	struct saved_ids sv;
	struct stat st;
	int r;

	if (f->dirfd < 0)
		return 0;
	if (!as_client_available() || (r = become(who, &sv)) != 0) {
		r = -EPERM;
	} else {
		r = -ESTALE;
		if (fstatat(f->dirfd, f->name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    st.st_dev == f->dev && st.st_ino == f->ino)
			r = unlinkat(f->dirfd, f->name, 0) == 0 ? 0 : -errno;
		come_back(&sv);
	}
	close(f->dirfd);
	f->dirfd = -1;
	return r;
}

/* Takes the client's groups, gid and uid (effective and file system); real and saved
 * ids stay root. Returns 0, or -errno with the daemon's ids unchanged. */
static int
become(const struct identity *who, struct saved_ids *sv)
{
	long n = syscall(SYS_getgroups, SAVED_GROUPS_MAX, sv->groups);
	int err;

	if (n < 0)
		return -errno;
	sv->n_groups = (int)n;
	sv->egid = getegid();
	if (syscall(SYS_setgroups, (size_t)who->n_groups, who->groups) != 0)
		return -errno;
	if (syscall(SYS_setresgid, -1, who->gid, -1) != 0 ||
	    syscall(SYS_setresuid, -1, who->uid, -1) != 0) {
		err = errno;
		come_back(sv);
		return -err;
	}
	return 0;
}

/* Takes the daemon's ids back, and checks them; never returns otherwise. */
static void
come_back(const struct saved_ids *sv)
{
	uid_t r, e, s;
	gid_t rg, eg, sg, groups[SAVED_GROUPS_MAX];
	long n;

	if (syscall(SYS_setresuid, -1, 0, -1) == 0 &&
	    syscall(SYS_setresgid, -1, sv->egid, -1) == 0 &&
	    syscall(SYS_setgroups, (size_t)sv->n_groups, sv->groups) == 0 &&
	    syscall(SYS_getresuid, &r, &e, &s) == 0 && r == 0 && e == 0 && s == 0 &&
	    syscall(SYS_getresgid, &rg, &eg, &sg) == 0 && eg == sv->egid &&
	    (n = syscall(SYS_getgroups, SAVED_GROUPS_MAX, groups)) == sv->n_groups &&
	    memcmp(groups, sv->groups, (size_t)n * sizeof(gid_t)) == 0)
		return;
	log_error("cannot take the daemon's own credentials back after acting as a client: "
	          "exiting");
	_exit(EXIT_FAILURE);
}

static int
open_target(const char *path, int *dirfd, const char **name)
{
	int fd = unix_path_open_dir(path, name);

	if (fd < 0)
		return fd;
	*dirfd = fd;
	return 0;
}

/* After a lost bind race: removes the file bind made if the path, links followed as the
 * kernel's bind followed them, still leads to it. Best effort; the file is the client's. */
static void
remove_stray(const char *path, dev_t dev, ino_t ino)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const char *slash = strrchr(path, '/');
	struct stat st;
	int fd;

	if (slash == NULL || slash == path || (size_t)(slash - path) >= sizeof(dir))
		return;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	if ((fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return;
	if (fstatat(fd, slash + 1, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == dev &&
	    st.st_ino == ino)
		unlinkat(fd, slash + 1, 0);
	close(fd);
}
