/*
 * run_filter.c - the seccomp filter `sockrpc run` installs in the program before
 * exec: inet socket calls go to the supervisor (SECCOMP_RET_USER_NOTIF), calls
 * that would bypass any filter (io_uring) or reach into another process (ptrace,
 * pidfd_getfd) fail outright, everything else runs as usual. Loaded by the child, which then
 * sends the listener descriptor to the supervisor.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "run.h"

static int add(scmp_filter_ctx ctx, uint32_t action, int nr, unsigned int n_args,
               const struct scmp_arg_cmp *args);
static int load_wait_killable(scmp_filter_ctx ctx);

/*
 * Installs the filter in the calling process (no new privileges is set) and
 * returns the notification listener in *notify_fd. Returns 0 or a negative errno.
 */
int
run_filter_install(bool netns, int *notify_fd)
{
	const int fd_calls[] = {
	    SCMP_SYS(connect), SCMP_SYS(bind),    SCMP_SYS(listen),   SCMP_SYS(accept),
	    SCMP_SYS(accept4), SCMP_SYS(sendmsg), SCMP_SYS(sendmmsg),
	};
	const int no_ring[] = {SCMP_SYS(io_uring_setup), SCMP_SYS(io_uring_enter),
	                       SCMP_SYS(io_uring_register)};
	struct scmp_arg_cmp cmp;
	scmp_filter_ctx ctx;
	int rc, fd;

	/* Other architectures' calls (i386 int 0x80, x32) kill: the default bad-arch action. */
	if ((ctx = seccomp_init(SCMP_ACT_ALLOW)) == NULL)
		return -ENOMEM;
	/*
	 * socket() is trapped only for the inet families; the others never reach a network.
	 * The kernel reads the family as an int: the filter compares the low 32 bits only,
	 * or AF_INET | 1 << 32 would make an untrapped raw, SCTP or MPTCP socket.
	 */
	cmp = SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, AF_INET);
	if ((rc = add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(socket), 1, &cmp)) < 0)
		goto done;
	cmp = SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, AF_INET6);
	if ((rc = add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(socket), 1, &cmp)) < 0)
		goto done;
	if (!netns) {
		/* Without a namespace a packet socket would reach the host's interfaces. */
		cmp = SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, AF_PACKET);
		if ((rc = add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1, &cmp)) < 0)
			goto done;
	}
	/*
	 * The fd's family decides for these, and only the supervisor can look at the
	 * fd: they are all trapped. sendto only with an address: without one it goes
	 * where the socket is connected, which the supervisor already decided.
	 */
	for (size_t i = 0; i < sizeof(fd_calls) / sizeof(fd_calls[0]); i++)
		if ((rc = add(ctx, SCMP_ACT_NOTIFY, fd_calls[i], 0, NULL)) < 0)
			goto done;
	cmp = SCMP_A4(SCMP_CMP_NE, 0);
	if ((rc = add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(sendto), 1, &cmp)) < 0)
		goto done;
	/* io_uring's operations are not system calls a filter sees: as if the kernel had none. */
	for (size_t i = 0; i < sizeof(no_ring) / sizeof(no_ring[0]); i++)
		if ((rc = add(ctx, SCMP_ACT_ERRNO(ENOSYS), no_ring[i], 0, NULL)) < 0)
			goto done;
	/*
	 * ptrace could rewrite a stopped thread's registers or the supervisor's answer;
	 * pidfd_getfd could take the supervisor's listener and answer its own calls.
	 */
	if ((rc = add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ptrace), 0, NULL)) < 0 ||
	    (rc = add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(process_vm_writev), 0, NULL)) < 0 ||
	    (rc = add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(pidfd_getfd), 0, NULL)) < 0)
		goto done;
	/*
	 * Once the supervisor has a call, a signal must not abort it: the kernel would
	 * restart the connect and the daemon connect twice. Where the kernel cannot
	 * (before 5.19), libseccomp loads the filter as usual.
	 */
	if ((fd = load_wait_killable(ctx)) == -EINVAL || fd == -ENOSYS) {
		if ((rc = seccomp_load(ctx)) < 0)
			goto done;
		fd = seccomp_notify_fd(ctx);
	}
	if (fd < 0) {
		rc = fd;
		goto done;
	}
	/*
	 * Our own close-on-exec copy: the program must never hold the listener (it
	 * could answer its own calls), whatever libseccomp does with the original.
	 */
	*notify_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	rc = *notify_fd == -1 ? -errno : 0;
	close(fd);
done:
	seccomp_release(ctx);
	return rc;
}

static int
add(scmp_filter_ctx ctx, uint32_t action, int nr, unsigned int n_args,
    const struct scmp_arg_cmp *args)
{
	return seccomp_rule_add_array(ctx, action, nr, n_args, args);
}

/*
 * Loads the filter with seccomp(2) itself, as libseccomp 2.5 cannot ask for
 * SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: a call the supervisor has received then
 * waits for its answer through any signal but a fatal one. Off with
 * SOCKRPC_DISABLE=wait-killable (tests of the fallback). Returns the listener, or a
 * negative errno (-EINVAL: the kernel lacks the flag).
 */
static int
load_wait_killable(scmp_filter_ctx ctx)
{
	const char *off = getenv("SOCKRPC_DISABLE");
	struct sock_fprog prog;
	char *buf = NULL;
	size_t len;
	int fd, rc;

	if (off != NULL && strstr(off, "wait-killable") != NULL)
		return -EINVAL;
	/* libseccomp 2.5 exports the program only to a descriptor. */
	if ((fd = memfd_create("sockrpc-filter", MFD_CLOEXEC)) == -1)
		return -errno;
	if ((rc = seccomp_export_bpf(ctx, fd)) < 0) {
		close(fd);
		return rc;
	}
	len = (size_t)lseek(fd, 0, SEEK_END);
	if (len == 0 || len % sizeof(struct sock_filter) != 0 || len > 0xffff * 8 ||
	    (buf = malloc(len)) == NULL || pread(fd, buf, len, 0) != (ssize_t)len) {
		free(buf);
		close(fd);
		return -EIO;
	}
	close(fd);
	prog.len = (unsigned short)(len / sizeof(struct sock_filter));
	prog.filter = (struct sock_filter *)buf;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		free(buf);
		return -errno;
	}
	fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
	                  SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
	                  &prog);
	rc = fd == -1 ? -errno : fd;
	free(buf);
	return rc;
}
