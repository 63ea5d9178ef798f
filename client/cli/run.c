/*
 * run.c - `sockrpc run -- PROGRAM ARGS...`: starts PROGRAM in a network namespace
 * of its own (loopback only, so even a call the filter misses reaches nothing),
 * under the seccomp filter of run_filter.c, and supervises it until it exits
 * (run_supervisor.c). The program's exit status is ours.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "run.h"

static pid_t program_pid = -1;

static void child_run(int sock, bool netns, char **argv) __attribute__((noreturn));
static int enter_netns(void);
static int write_file(const char *path, const char *text);
static int pass_listener(int sock, int fd);
static int take_listener(int sock, int pidfd);
static void forward_signal(int sig);

int
cmd_run(const struct options *o, int argc, char **argv)
{
	struct run_supervisor sv = {.notify_fd = -1, .pidfd = -1, .pid = -1};
	struct sigaction sa;
	int sp[2] = {-1, -1}, status = 0, rc;
	sr_error e;

	if (argc == 0)
		return cli_usage_error("run takes -- PROGRAM [ARGS...]");
	sv.netns = !o->no_netns;
	sv.verbose = o->verbose;
	if (o->no_netns)
		fprintf(stderr, "sockrpc run: --no-netns: the program shares this host's network; "
		                "only the filter stands between it and the network\n");
	if ((sv.client = sr_client_open(o->socket_path, &e)) == NULL)
		return cli_fail(&e);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1) {
		perror("sockrpc run: socketpair");
		rc = CLI_EXIT_OS;
		goto done;
	}
	fflush(NULL);
	if ((sv.pid = fork()) == -1) {
		perror("sockrpc run: fork");
		rc = CLI_EXIT_OS;
		goto done;
	}
	if (sv.pid == 0) {
		close(sp[0]);
		child_run(sp[1], sv.netns, argv);
	}
	close(sp[1]);
	sp[1] = -1;
	program_pid = sv.pid;
	if ((sv.pidfd = (int)syscall(SYS_pidfd_open, sv.pid, 0)) == -1 ||
	    (sv.notify_fd = take_listener(sp[0], sv.pidfd)) == -1) {
		/* The child said why on stderr, or died; its status is the answer. */
		if (sv.pidfd == -1)
			kill(sv.pid, SIGKILL);
		waitpid(sv.pid, &status, 0);
		rc = WIFEXITED(status) && WEXITSTATUS(status) != 0 ? WEXITSTATUS(status)
		                                                   : CLI_EXIT_OTHER;
		goto done;
	}
	/* Like a shell: ^C and ^\ are the program's to handle; TERM and HUP are passed on. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sa.sa_handler = forward_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if ((rc = run_supervise(&sv, &status)) < 0) {
		fprintf(stderr, "sockrpc run: supervisor: %s\n", strerror(-rc));
		kill(sv.pid, SIGKILL);
		waitpid(sv.pid, &status, 0);
		rc = CLI_EXIT_OTHER;
		goto done;
	}
	if (WIFEXITED(status))
		rc = WEXITSTATUS(status);
	else
		rc = 128 + WTERMSIG(status);
done:
	if (sp[0] != -1)
		close(sp[0]);
	if (sp[1] != -1)
		close(sp[1]);
	if (sv.notify_fd != -1)
		close(sv.notify_fd);
	if (sv.pidfd != -1)
		close(sv.pidfd);
	sr_client_close(sv.client);
	return rc;
}

/*
 * In the child: namespace, filter, the listener to the supervisor, exec. Any
 * failure is said on stderr and ends the child with 127 before PROGRAM runs.
 */
static void
child_run(int sock, bool netns, char **argv)
{
	int notify_fd, rc;

	/* If the supervisor dies, its trapped calls would fail: the program goes with it. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() == 1)
		_exit(127);
	if (netns && (rc = enter_netns()) < 0) {
		fprintf(stderr,
		        "sockrpc run: cannot make a network namespace: %s (--no-netns runs "
		        "without one)\n",
		        strerror(-rc));
		_exit(127);
	}
	if ((rc = run_filter_install(netns, &notify_fd)) < 0) {
		fprintf(stderr, "sockrpc run: cannot install the seccomp filter: %s\n",
		        strerror(-rc));
		_exit(127);
	}
	if (pass_listener(sock, notify_fd) == -1) {
		fprintf(stderr, "sockrpc run: cannot pass the filter to the supervisor: %s\n",
		        strerror(errno));
		_exit(127);
	}
	close(notify_fd);
	close(sock);
	execvp(argv[0], argv);
	fprintf(stderr, "sockrpc run: %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/*
 * A new network namespace with loopback up: directly as root, otherwise inside a
 * new user namespace where our uid and gid map to themselves. Returns 0 or a
 * negative errno.
 */
static int
enter_netns(void)
{
	char map[64];
	uid_t uid = geteuid();
	gid_t gid = getegid();
	struct ifreq ifr;
	int fd, rc = 0;

	if (uid != 0) {
		if (unshare(CLONE_NEWUSER | CLONE_NEWNET) == -1)
			return -errno;
		snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
		if ((rc = write_file("/proc/self/uid_map", map)) < 0 ||
		    (rc = write_file("/proc/self/setgroups", "deny\n")) < 0)
			return rc;
		snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
		if ((rc = write_file("/proc/self/gid_map", map)) < 0)
			return rc;
	} else if (unshare(CLONE_NEWNET) == -1) {
		return -errno;
	}
	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == -1)
		rc = -errno;
	ifr.ifr_flags |= IFF_UP;
	if (rc == 0 && ioctl(fd, SIOCSIFFLAGS, &ifr) == -1)
		rc = -errno;
	close(fd);
	return rc;
}

static int
write_file(const char *path, const char *text)
{
	size_t len = strlen(text);
	int fd, rc = 0;

	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) == -1)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		rc = -errno;
	close(fd);
	return rc;
}

/*
 * The listener's number in the child, written (write(2) is not trapped; the
 * child's sendmsg already is) for the supervisor to take with pidfd_getfd; the
 * child waits for the supervisor's byte before it closes its copy.
 */
static int
pass_listener(int sock, int fd)
{
	char ack;

	if (write(sock, &fd, sizeof(fd)) != (ssize_t)sizeof(fd))
		return -1;
	return read(sock, &ack, 1) == 1 ? 0 : -1;
}

/* The supervisor's copy of the child's listener, or -1 (the child failed first). */
static int
take_listener(int sock, int pidfd)
{
	int child_fd, fd;

	if (read(sock, &child_fd, sizeof(child_fd)) != (ssize_t)sizeof(child_fd))
		return -1;
	if ((fd = (int)syscall(SYS_pidfd_getfd, pidfd, child_fd, 0)) == -1) {
		fprintf(stderr, "sockrpc run: cannot take the filter's listener: %s\n",
		        strerror(errno));
		return -1;
	}
	if (write(sock, "", 1) != 1) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
forward_signal(int sig)
{
	if (program_pid > 0)
		kill(program_pid, sig);
}
