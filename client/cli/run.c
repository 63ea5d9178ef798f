/*
 * run.c - `sockrpc run -- PROGRAM ARGS...`: starts PROGRAM in a network namespace
 * of its own (loopback only, so even a call the filter misses reaches nothing),
 * under the seccomp filter of run_filter.c, and supervises it until it exits
 * (run_supervisor.c). The program's exit status is ours.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "run.h"

static pid_t program_pid = -1;

static void child_run(int sock, struct run_supervisor *sv, char **argv) __attribute__((noreturn));
static int pass_fds(int sock, const int *fds, int n);
static int take_fds(int sock, int pidfd, int *fds, int max);
static void forward_signal(int sig);
static void program_path(const char *name, char *out, size_t len);

int
cmd_run(const struct options *o, int argc, char **argv)
{
	struct run_supervisor sv = {.notify_fd = -1, .pidfd = -1, .pid = -1};
	struct sigaction sa;
	char exe[PATH_MAX];
	int sp[2] = {-1, -1}, fds[RUN_PASSED_FDS], status = 0, rc;
	sr_error e;

	if (argc == 0)
		return cli_usage_error("run takes -- PROGRAM [ARGS...]");
	for (int i = 0; i < 2 * RUN_BELLS; i++)
		sv.bells[i / RUN_BELLS][i % RUN_BELLS] = -1;
	sv.raw[0] = sv.raw[1] = -1;
	sv.netns = !o->no_netns;
	sv.verbose = o->verbose;
	if (o->no_netns)
		fprintf(stderr, "sockrpc run: --no-netns: the program shares this host's network; "
		                "only the filter stands between it and the network, which "
		                "confines a cooperative program, not a hostile one (sockrpc(1))\n");
	/* The daemon is told which program this session runs: a claim, for deny rules only. */
	program_path(argv[0], exe, sizeof(exe));
	if (strlen(exe) >= 256)
		exe[0] = '\0'; /* longer than a claim may be: none */
	if ((sv.client = sr_client_open_claiming(o->socket_path, exe, &e)) == NULL)
		return cli_fail(&e);
	/* With a namespace, queries to these are answered by the supervisor (run_dns.c). */
	if (sv.netns)
		sv.n_ns = run_nameservers_read("/etc/resolv.conf", sv.ns, RUN_MAX_NAMESERVERS);
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
		child_run(sp[1], &sv, argv);
	}
	close(sp[1]);
	sp[1] = -1;
	program_pid = sv.pid;
	/* Not the program's to look into: /proc/PID/fd and pidfd_getfd need CAP_SYS_PTRACE. */
	(void)prctl(PR_SET_DUMPABLE, 0);
	if ((sv.pidfd = (int)syscall(SYS_pidfd_open, sv.pid, 0)) == -1 ||
	    take_fds(sp[0], sv.pidfd, fds, RUN_PASSED_FDS) == -1) {
		/* The child said why on stderr, or died; its status is the answer. */
		if (sv.pidfd == -1)
			kill(sv.pid, SIGKILL);
		waitpid(sv.pid, &status, 0);
		rc = WIFEXITED(status) && WEXITSTATUS(status) != 0 ? WEXITSTATUS(status)
		                                                   : CLI_EXIT_OTHER;
		goto done;
	}
	sv.notify_fd = fds[0];
	if (sv.netns) {
		char path[64];
		struct stat st;

		snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)sv.pid);
		sv.netns_ino = stat(path, &st) == 0 ? st.st_ino : 0;
	}
	for (int i = 0; i < sv.n_ns; i++)
		sv.ns[i].fd = fds[1 + i];
	for (int i = 0; i < 2 * RUN_BELLS; i++)
		sv.bells[i / RUN_BELLS][i % RUN_BELLS] = fds[1 + sv.n_ns + i];
	for (int i = 0; i < 2; i++)
		sv.raw[i] = fds[1 + sv.n_ns + 2 * RUN_BELLS + i];
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
	/*
	 * A connect of a program that is gone may still wait on the daemon in a worker
	 * thread, and a listener's thread waits for the next peer, using the client and
	 * the listener: leave them to the exit.
	 */
	if (!run_workers_idle() || run_listen_any() || run_relay_any()) {
		fflush(NULL);
		_exit(rc);
	}
	if (sp[0] != -1)
		close(sp[0]);
	if (sp[1] != -1)
		close(sp[1]);
	if (sv.notify_fd != -1)
		close(sv.notify_fd);
	if (sv.pidfd != -1)
		close(sv.pidfd);
	for (int i = 0; i < sv.n_ns; i++)
		if (sv.ns[i].fd != -1)
			close(sv.ns[i].fd);
	for (int i = 0; i < 2 * RUN_BELLS; i++)
		if (sv.bells[i / RUN_BELLS][i % RUN_BELLS] != -1)
			close(sv.bells[i / RUN_BELLS][i % RUN_BELLS]);
	for (int i = 0; i < 2; i++)
		if (sv.raw[i] != -1)
			close(sv.raw[i]);
	sr_client_close(sv.client);
	return rc;
}

/*
 * In the child: namespace, filter, the listener to the supervisor, exec. Any
 * failure is said on stderr and ends the child with 127 before PROGRAM runs.
 */
static void
child_run(int sock, struct run_supervisor *sv, char **argv)
{
	int fds[RUN_PASSED_FDS], bells[2 * RUN_BELLS], raw[2], n = 0, rc;

	/* If the supervisor dies, its trapped calls would fail: the program goes with it. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() == 1)
		_exit(127);
	if (sv->netns && (rc = run_netns_enter()) < 0) {
		fprintf(stderr,
		        "sockrpc run: cannot make a network namespace: %s (--no-netns runs "
		        "without one)\n",
		        strerror(-rc));
		_exit(127);
	}
	for (int i = 0; i < sv->n_ns; i++)
		if ((rc = run_nameserver_open(&sv->ns[i])) < 0)
			fprintf(stderr,
			        "sockrpc run: name server %d of /etc/resolv.conf: %s; "
			        "queries to it will fail\n",
			        i + 1, strerror(-rc));
	/* Doorbells for the program's listeners (run_listen.c): made before the filter traps
	 * socket(). */
	for (int i = 0; i < 2 * RUN_BELLS; i++)
		bells[i] = sv->netns ? socket(i < RUN_BELLS ? AF_INET : AF_INET6,
		                              SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
		                     : -1;
	/*
	 * Raw sockets of the namespace (IPPROTO_RAW: the header is ours), with which the
	 * supervisor writes the replies to brokered datagrams, sender and all (run_relay.c).
	 */
	for (int i = 0; i < 2; i++)
		raw[i] = sv->netns ? socket(i == 0 ? AF_INET : AF_INET6,
		                            SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW)
		                   : -1;
	if ((rc = run_filter_install(sv->netns, &fds[n++])) < 0) {
		fprintf(stderr, "sockrpc run: cannot install the seccomp filter: %s\n",
		        strerror(-rc));
		_exit(127);
	}
	for (int i = 0; i < sv->n_ns; i++)
		fds[n++] = sv->ns[i].fd;
	for (int i = 0; i < 2 * RUN_BELLS; i++)
		fds[n++] = bells[i];
	for (int i = 0; i < 2; i++)
		fds[n++] = raw[i];
	if (pass_fds(sock, fds, n) == -1) {
		fprintf(stderr, "sockrpc run: cannot pass the filter to the supervisor: %s\n",
		        strerror(errno));
		_exit(127);
	}
	for (int i = 0; i < n; i++)
		if (fds[i] != -1)
			close(fds[i]);
	close(sock);
	execvp(argv[0], argv);
	fprintf(stderr, "sockrpc run: %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/*
 * The numbers of the child's descriptors (the filter's listener, then one per name
 * server, -1 for none), written (write(2) is not trapped; the child's sendmsg
 * already is) for the supervisor to take with pidfd_getfd; the child waits for
 * the supervisor's byte before it closes its copies.
 */
static int
pass_fds(int sock, const int *fds, int n)
{
	char ack;

	if (write(sock, fds, sizeof(int) * (size_t)n) != (ssize_t)(sizeof(int) * (size_t)n))
		return -1;
	return read(sock, &ack, 1) == 1 ? 0 : -1;
}

/*
 * The supervisor's copies of the child's descriptors, in fds (up to max; -1 where
 * the child had none). Returns 0, or -1 (the child failed first, or said so).
 */
static int
take_fds(int sock, int pidfd, int *fds, int max)
{
	int child_fds[RUN_PASSED_FDS];
	ssize_t len;
	int n;

	if ((len = read(sock, child_fds, sizeof(int) * (size_t)max)) < (ssize_t)sizeof(int))
		return -1;
	n = (int)(len / (ssize_t)sizeof(int));
	for (int i = 0; i < max; i++)
		fds[i] = -1;
	for (int i = 0; i < n; i++) {
		if (child_fds[i] == -1)
			continue;
		if ((fds[i] = (int)syscall(SYS_pidfd_getfd, pidfd, child_fds[i], 0)) == -1) {
			fprintf(stderr, "sockrpc run: cannot take the child's descriptor: %s\n",
			        strerror(errno));
			goto fail;
		}
	}
	if (write(sock, "", 1) != 1)
		goto fail;
	return 0;
fail:
	for (int i = 0; i < n; i++)
		if (fds[i] != -1)
			close(fds[i]);
	return -1;
}

static void
forward_signal(int sig)
{
	if (program_pid > 0)
		kill(program_pid, sig);
}

/*
 * The absolute path execvp(3) runs for name (realpath of the first executable found
 * along PATH, or of name itself if it has a slash), or "" if none: the claim Hello
 * carries (sr_client_open_claiming).
 */
static void
program_path(const char *name, char *out, size_t len)
{
	char try[PATH_MAX], resolved[PATH_MAX];
	const char *path = getenv("PATH"), *p, *end;

	out[0] = '\0';
	if (strchr(name, '/') != NULL) {
		if (realpath(name, resolved) != NULL && strlen(resolved) < len)
			strcpy(out, resolved);
		return;
	}
	for (p = path != NULL ? path : "/usr/local/bin:/bin:/usr/bin"; *p != '\0'; p = end) {
		end = strchr(p, ':');
		if (end == NULL)
			end = p + strlen(p);
		if (snprintf(try, sizeof(try), "%.*s/%s", (int)(end - p), end == p ? "." : p,
		             name) < (int)sizeof(try) &&
		    access(try, X_OK) == 0 && realpath(try, resolved) != NULL &&
		    strlen(resolved) < len) {
			strcpy(out, resolved);
			return;
		}
		if (*end == ':')
			end++;
	}
}
