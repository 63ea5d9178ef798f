/*
 * main.c - sockrpcd: options, start-up, signals and the event loop.
 *
 * The daemon runs in the foreground (systemd, or a supervisor, keeps it). It takes its
 * listening socket from systemd when socket-activated, or creates it; then, started as
 * root, it splits into a privileged parent and an unprivileged worker (priv_parent.c),
 * which serves until SIGTERM; the policy reloads on SIGHUP.
 */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <systemd/sd-daemon.h>

#include "ops.h"
#include "privileges.h"
#include "sockrpcd.h"

static void
usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: sockrpcd [options]\n"
	    "       sockrpcd --check-policy FILE\n"
	    "       sockrpcd --explain [--policy FILE] WHO OP [TYPE] [TARGET]\n"
	    "\n"
	    "Brokers sockets for processes that have no network of their own.\n"
	    "\n"
	    "  -s, --socket PATH          listen here (default: $SOCKRPC_SOCKET, else\n"
	    "                             /run/sockrpc/sockrpc.sock as root,\n"
	    "                             $XDG_RUNTIME_DIR/sockrpc.sock otherwise)\n"
	    "  -p, --policy FILE          the policy (default: the embedded one: the daemon's\n"
	    "                             own uid may do everything, others nothing)\n"
	    "  -a, --audit FILE           append the audit log here (default: stderr)\n"
	    "  -f, --foreground           run in the foreground (always the case)\n"
	    "      --socket-mode MODE     octal mode of a created socket (default 0666)\n"
	    "      --socket-group GROUP   group of a created socket\n"
	    "  -u, --user USER            run the unprivileged worker as USER when started\n"
	    "                             as root (default: 'sockrpc', which must exist);\n"
	    "                             'root': one root process (development only)\n"
	    "      --workers N|auto       unprivileged worker processes (default 1; auto: one\n"
	    "                             per online CPU); they share the listeners\n"
	    "      --max-sessions N       sessions at once (default %d)\n"
	    "      --max-sessions-per-uid N  per uid; for TLS clients, per principal\n"
	    "      --max-handles N        sockets per session (default %d)\n"
	    "      --max-queued-bytes N   bytes outstanding per session (default %u)\n"
	    "      --resolv-conf FILE     name servers for host names (default /etc/resolv.conf)\n"
	    "      --hosts FILE           hosts file for host names (default /etc/hosts)\n"
	    "      --listen-tls HOST:PORT also serve TLS 1.3 clients with certificates here\n"
	    "                             (repeatable; [IPV6]:PORT)\n"
	    "      --tls-cert FILE        the daemon's certificate chain (PEM)\n"
	    "      --tls-key FILE         its private key (PEM; read as root)\n"
	    "      --tls-client-ca FILE   CA bundle that must have signed client certificates\n"
	    "      --no-ktls              keep TLS encryption in user space (no kernel TLS)\n"
	    "      --no-reply-channel     keep every session's replies on its connection\n"
	    "                             (saves ~5 KiB of kernel memory per session)\n"
	    "      --check-policy FILE    validate a policy file and exit\n"
	    "      --explain ...          say what the policy decides for one request, and why\n"
	    "  -v, --verbose              log every session\n"
	    "  -h, --help                 this text\n"
	    "  -V, --version              the version\n",
	    DEFAULT_MAX_SESSIONS, DEFAULT_MAX_HANDLES, DEFAULT_MAX_QUEUED_BYTES);
}

static const char *
default_socket_path(void)
{
	static char path[PATH_MAX];
	const char *env = getenv("SOCKRPC_SOCKET");
	const char *runtime = getenv("XDG_RUNTIME_DIR");

	if (env && *env)
		return env;
	if (geteuid() == 0 || runtime == NULL || *runtime == '\0')
		return "/run/sockrpc/sockrpc.sock";
	snprintf(path, sizeof(path), "%s/sockrpc.sock", runtime);
	return path;
}

static int
parse_count(const char *text, const char *what, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(text, &end, 0);
	if (errno || *end || end == text || text[0] == '-') {
		fprintf(stderr, "sockrpcd: %s: not a number: %s\n", what, text);
		return -1;
	}
	*out = v;
	return 0;
}

/* An octal file mode such as 0660 or 660; only permission bits mean anything on a socket. */
static int
parse_mode(const char *text, int *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(text, &end, 8);
	if (errno || *end || end == text || text[0] == '-' || v > 0777) {
		fprintf(stderr, "sockrpcd: --socket-mode: not an octal mode 0-0777: %s\n", text);
		return -1;
	}
	*out = (int)v;
	return 0;
}

enum {
	OPT_MAX_SESSIONS = 256,
	OPT_MAX_SESSIONS_PER_UID,
	OPT_MAX_HANDLES,
	OPT_MAX_QUEUED,
	OPT_RESOLV_CONF,
	OPT_HOSTS,
	OPT_CHECK_POLICY,
	OPT_EXPLAIN,
	OPT_SOCKET_MODE,
	OPT_SOCKET_GROUP,
	OPT_NO_REPLY_CHANNEL,
	OPT_LISTEN_TLS,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_TLS_CLIENT_CA,
	OPT_NO_KTLS,
	OPT_WORKERS,
};

static const struct option long_options[] = {
    {"socket", required_argument, NULL, 's'},
    {"policy", required_argument, NULL, 'p'},
    {"audit", required_argument, NULL, 'a'},
    {"foreground", no_argument, NULL, 'f'},
    {"user", required_argument, NULL, 'u'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {"max-sessions", required_argument, NULL, OPT_MAX_SESSIONS},
    {"max-sessions-per-uid", required_argument, NULL, OPT_MAX_SESSIONS_PER_UID},
    {"max-handles", required_argument, NULL, OPT_MAX_HANDLES},
    {"max-queued-bytes", required_argument, NULL, OPT_MAX_QUEUED},
    {"resolv-conf", required_argument, NULL, OPT_RESOLV_CONF},
    {"hosts", required_argument, NULL, OPT_HOSTS},
    {"check-policy", required_argument, NULL, OPT_CHECK_POLICY},
    {"explain", no_argument, NULL, OPT_EXPLAIN},
    {"no-reply-channel", no_argument, NULL, OPT_NO_REPLY_CHANNEL},
    {"socket-mode", required_argument, NULL, OPT_SOCKET_MODE},
    {"socket-group", required_argument, NULL, OPT_SOCKET_GROUP},
    {"listen-tls", required_argument, NULL, OPT_LISTEN_TLS},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"tls-client-ca", required_argument, NULL, OPT_TLS_CLIENT_CA},
    {"no-ktls", no_argument, NULL, OPT_NO_KTLS},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {NULL, 0, NULL, 0},
};

static struct policy *
load_policy(const char *path)
{
	/* The embedded default's owner is whoever started the daemon, before any drop to
	 * --user, and stays so across reloads. */
	static uid_t default_owner = (uid_t)-1;
	char errors[4096];
	struct policy *p;

	if (default_owner == (uid_t)-1)
		default_owner = geteuid();
	if (path == NULL)
		return policy_default(default_owner);
	p = policy_load(path, errors, sizeof(errors));
	if (p == NULL)
		log_error("policy %s rejected:\n%s", path, errors);
	return p;
}

/*
 * Raises the soft RLIMIT_NOFILE to the hard one: every handle and every session (its
 * connection, its reply channel) is a descriptor, and the usual soft limit of 1024 would
 * stop the daemon far below its session and handle limits. Logged, as the number bounds
 * what the daemon can hold. The worker inherits it.
 */
static void
raise_fd_limit(void)
{
	struct rlimit rl;
	rlim_t was;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	was = rl.rlim_cur;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
			log_warn("cannot raise RLIMIT_NOFILE from %llu to %llu: %s",
			         (unsigned long long)was, (unsigned long long)rl.rlim_max,
			         strerror(errno));
			return;
		}
	}
	log_info("descriptors: RLIMIT_NOFILE %llu (soft limit was %llu)",
	         (unsigned long long)rl.rlim_cur, (unsigned long long)was);
}

static bool parent_lost; /* the worker's privileged parent went away */

static void
on_reload(evutil_socket_t sig, short what, void *arg)
{
	struct sockrpcd *d = arg;
	struct policy *p;
	struct timespec now;

	if (d->priv_fd >= 0)
		return; /* split: the parent reloads, and sends the policy (on_parent_notice) */
	/* MONOTONIC_USEC lets systemd >= 253 (Type=notify-reload) match this to its signal. */
	clock_gettime(CLOCK_MONOTONIC, &now);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
	           (unsigned long long)now.tv_sec * 1000000ULL +
	               (unsigned long long)now.tv_nsec / 1000ULL);
	p = load_policy(d->opt.policy_path);
	/* Credentials and policy change together, or neither does. */
	if (p != NULL && d->tls != NULL) {
		struct tls_pem tls;
		char err[512];

		if (tls_pem_read(&d->opt, &tls, err, sizeof(err)) != 0)
			log_error("TLS credentials rejected: %s", err);
		if (tls.cert == NULL || tls_reload(d, &tls) != 0) {
			policy_free(p);
			p = NULL;
		}
		tls_pem_clear(&tls);
	}
	if (p != NULL) {
		policy_free(d->policy);
		d->policy = p;
		daemon_apply_limits(d);
		log_info("policy reloaded from %s",
		         d->opt.policy_path ? d->opt.policy_path : "the embedded default");
	} else {
		log_warn("keeping the previous policy%s", d->tls ? " and TLS credentials" : "");
	}
	if (audit_reopen(d->audit) != 0)
		log_warn("cannot reopen the audit log");
	sd_notify(0, "READY=1");
}

/* The worker's notify channel: a new policy and the reopened audit log from the parent
 * (after SIGHUP), or its end. */
static void
on_parent_notice(evutil_socket_t fd, short what, void *arg)
{
	struct sockrpcd *d = arg;
	struct policy *p;
	struct tls_pem tls;
	bool have_tls;
	int audit_fd;

	if (priv_receive_notice(d, &p, &audit_fd, &tls, &have_tls) != 0) {
		log_error("the privileged parent is gone: worker exiting");
		parent_lost = true;
		event_del(d->priv_notify_ev);
		event_base_loopexit(d->base, NULL);
		return;
	}
	/* The parent may decide on a new policy from now on: no socket made under the old
	 * one is handed out after it. */
	socket_reserve_flush_all(d);
	if (audit_fd >= 0)
		audit_reopen_fd(d->audit, audit_fd);
	/* Credentials and policy change together, or neither does. */
	if (have_tls) {
		if (p == NULL || tls_reload(d, &tls) != 0) {
			policy_free(p);
			p = NULL;
		}
		tls_pem_clear(&tls);
	}
	if (p == NULL)
		return;
	policy_free(d->policy);
	d->policy = p;
	daemon_apply_limits(d);
	server_shared_resume(d); /* a larger share than it stopped at (server_shared.c) */
}

/*
 * Started as root, the daemon splits (priv_parent.c): *pw is the worker's user. NULL there
 * means one process: started without root (nothing to split off), or --user root.
 * A missing user is an error, never a reason to stay root. Returns 0 or -1 (logged).
 */
static int
worker_user(const struct sockrpcd *d, struct passwd **pw)
{
	const char *name = d->opt.user ? d->opt.user : PRIVILEGES_DEFAULT_USER;

	*pw = NULL;
	if (geteuid() != 0)
		return 0;
	if (strcmp(name, "root") == 0) {
		log_warn("--user root: one root process parses every client byte (for development "
		         "only; see docs/deployment.md)");
		return 0;
	}
	*pw = getpwnam(name);
	if (*pw == NULL && d->opt.user != NULL) {
		log_error("--user %s: no such user", name);
		return -1;
	}
	if (*pw == NULL) {
		log_error(
		    "no user '%s' for the unprivileged worker: refusing to run as root. Create "
		    "it (tools/install-deps does: useradd --system --no-create-home --shell "
		    "/usr/sbin/nologin --user-group %s), or give --user root to run as one "
		    "root process (development only)",
		    name, name);
		return -1;
	}
	if ((*pw)->pw_uid == 0) {
		log_error("--user %s has uid 0: say --user root to run as one root process", name);
		*pw = NULL;
		return -1;
	}
	return 0;
}

static void
on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct sockrpcd *d = arg;

	log_info("stopping on signal %d", (int)sig);
	sd_notify(0, "STOPPING=1");
	server_stop(d);
}

static int
install_signals(struct sockrpcd *d)
{
	static const int stops[] = {SIGTERM, SIGINT};

	signal(SIGPIPE, SIG_IGN); /* a peer gone mid-write is an error value, never a death */
	for (int i = 0; i < 2; i++) {
		d->signals[i] = evsignal_new(d->base, stops[i], on_stop, d);
		if (d->signals[i] == NULL || evsignal_add(d->signals[i], NULL) != 0)
			return -1;
	}
	d->signals[2] = evsignal_new(d->base, SIGHUP, on_reload, d);
	if (d->signals[2] == NULL || evsignal_add(d->signals[2], NULL) != 0)
		return -1;
	return 0;
}

/* Under systemd socket activation: the inherited listening socket in *fd, else -1 there.
 * Returns -1 (logged) if what was passed is not a listening Unix stream socket: serving
 * anything else would be a misconfiguration, not a broker. */
static int
activation_fd(int *fd)
{
	int n = sd_listen_fds(1);

	*fd = -1;
	if (n < 0)
		log_warn("ignoring the systemd socket environment: %s", strerror(-n));
	if (n <= 0)
		return 0;
	if (n > 1)
		log_warn("systemd passed %d sockets; using only the first", n);
	if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0) <= 0) {
		log_error("the socket systemd passed is not a listening Unix stream socket");
		return -1;
	}
	*fd = SD_LISTEN_FDS_START;
	return 0;
}

static void
teardown(struct sockrpcd *d)
{
	struct session *s;

	while ((s = TAILQ_FIRST(&d->sessions)) != NULL)
		session_close(s, "daemon exiting");
	if (d->listener)
		evconnlistener_free(d->listener);
	server_shared_free(d);
	tls_free(d);
	if (d->accept_retry)
		event_free(d->accept_retry);
	if (d->trim)
		event_free(d->trim);
	for (int i = 0; i < 4; i++)
		if (d->signals[i])
			event_free(d->signals[i]);
	linger_close_all(d);
	if (d->priv_notify_ev)
		event_free(d->priv_notify_ev);
	if (d->dns)
		evdns_base_free(d->dns, 0);
	/* Run the loop once more so deferred session releases happen. */
	event_base_loop(d->base, EVLOOP_NONBLOCK);
	socket_reserve_free(d);
	audit_unbuffer(d->audit); /* every line out, before the loop its timer is on goes */
	event_base_free(d->base);
	relay_pipe_close(&d->relay);
	policy_free(d->policy);
	audit_free(d->audit);
}

int
main(int argc, char **argv)
{
	struct sockrpcd d;
	struct passwd *pw = NULL;
	char err[256];
	const char *check_policy = NULL;
	bool explain = false;
	int ch, lfd = -1, status = EXIT_FAILURE;
	unsigned long n;

	memset(&d, 0, sizeof(d));
	TAILQ_INIT(&d.sessions);
	/* Payload buffers (up to 1 MiB) come and go with every bulk call: keep them in the
	 * heap rather than mapping and unmapping each, and do not hand the heap back to the
	 * kernel after every burst. */
	mallopt(M_MMAP_THRESHOLD, 4 * SR_MAX_FRAME);
	mallopt(M_TRIM_THRESHOLD, 8 * SR_MAX_FRAME);
	d.opt.socket_mode = -1;
	d.priv_fd = d.priv_notify_fd = -1;
	log_init();
	while ((ch = getopt_long(argc, argv, "+s:p:a:fu:vhV", long_options, NULL)) != -1) {
		switch (ch) {
		case 's':
			d.opt.socket_path = optarg;
			break;
		case 'p':
			d.opt.policy_path = optarg;
			break;
		case 'a':
			d.opt.audit_path = optarg;
			break;
		case 'f':
			break;
		case 'u':
			d.opt.user = optarg;
			break;
		case 'v':
			log_verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case 'V':
			printf("sockrpcd %s (protocol %d.%d)\n", SOCKRPC_VERSION, SR_PROTOCOL_MAJOR,
			       SR_PROTOCOL_MINOR);
			return EXIT_SUCCESS;
		case OPT_RESOLV_CONF:
			d.opt.resolv_conf = optarg;
			break;
		case OPT_HOSTS:
			d.opt.hosts_file = optarg;
			break;
		case OPT_CHECK_POLICY:
			check_policy = optarg;
			break;
		case OPT_EXPLAIN:
			explain = true;
			break;
		case OPT_NO_REPLY_CHANNEL:
			d.opt.no_reply_channel = true;
			break;
		case OPT_LISTEN_TLS:
			if (d.opt.n_tls_listen == TLS_MAX_LISTENERS) {
				fprintf(stderr, "sockrpcd: at most %d --listen-tls\n",
				        TLS_MAX_LISTENERS);
				return 2;
			}
			d.opt.tls_listen[d.opt.n_tls_listen++] = optarg;
			break;
		case OPT_TLS_CERT:
			d.opt.tls_cert = optarg;
			break;
		case OPT_TLS_KEY:
			d.opt.tls_key = optarg;
			break;
		case OPT_TLS_CLIENT_CA:
			d.opt.tls_client_ca = optarg;
			break;
		case OPT_NO_KTLS:
			d.opt.no_ktls = true;
			break;
		case OPT_WORKERS:
			if (strcmp(optarg, "auto") == 0) {
				long cpus = sysconf(_SC_NPROCESSORS_ONLN);

				n = cpus > 0 ? (unsigned long)cpus : 1;
				n = n > MAX_WORKERS ? MAX_WORKERS : n;
			} else if (parse_count(optarg, "--workers", &n) != 0 || n == 0 ||
			           n > MAX_WORKERS) {
				fprintf(stderr, "sockrpcd: --workers must be 1-%d or auto\n",
				        MAX_WORKERS);
				return 2;
			}
			d.opt.workers = (unsigned)n;
			break;
		case OPT_SOCKET_GROUP:
			d.opt.socket_group = optarg;
			break;
		case OPT_SOCKET_MODE:
			if (parse_mode(optarg, &d.opt.socket_mode) != 0)
				return 2;
			break;
		case OPT_MAX_SESSIONS:
		case OPT_MAX_SESSIONS_PER_UID:
		case OPT_MAX_HANDLES:
		case OPT_MAX_QUEUED:
			if (parse_count(optarg, "limit", &n) != 0 || n == 0 || n > UINT_MAX) {
				fprintf(stderr, "sockrpcd: limits must be 1-%u\n", UINT_MAX);
				return 2;
			}
			if (ch == OPT_MAX_SESSIONS)
				d.opt.limits_given.max_sessions = (unsigned)n;
			else if (ch == OPT_MAX_SESSIONS_PER_UID)
				d.opt.limits_given.max_sessions_per_uid = (unsigned)n;
			else if (ch == OPT_MAX_HANDLES)
				d.opt.limits_given.max_handles = (unsigned)n;
			else
				d.opt.limits_given.max_queued_bytes = (size_t)n;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (check_policy)
		return check_policy_main(check_policy, stdout, stderr);
	if (explain)
		return explain_main(d.opt.policy_path, argc - optind, argv + optind, stdout);
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (d.opt.socket_path == NULL)
		d.opt.socket_path = default_socket_path();
	if (worker_user(&d, &pw) != 0)
		return EXIT_FAILURE;
	if (d.opt.workers > 1 && pw == NULL) {
		log_error("--workers %u needs the privilege split: start sockrpcd as root, "
		          "without --user root",
		          d.opt.workers);
		return EXIT_FAILURE;
	}
	raise_fd_limit();

	d.policy = load_policy(d.opt.policy_path);
	if (d.policy == NULL)
		return EXIT_FAILURE;
	daemon_apply_limits(&d);
	d.audit = audit_open(d.opt.audit_path, err, sizeof(err));
	if (d.audit == NULL) {
		log_error("audit log: %s", err);
		goto out;
	}
	d.base = event_base_new();
	if (d.base == NULL) {
		log_error("cannot create the event loop");
		goto out;
	}
	d.dns = resolve_base_new(d.base, d.opt.resolv_conf, d.opt.hosts_file);
	if (d.dns == NULL) {
		log_error("cannot start the resolver (hosts file %s)",
		          d.opt.hosts_file ? d.opt.hosts_file : "/etc/hosts");
		goto out;
	}
	/* The listener, the policy, the audit log and the resolver's files are opened as
	 * root, before the split; the worker inherits them. */
	if (activation_fd(&lfd) != 0)
		goto out;
	if (lfd < 0 && (lfd = server_create_listener(&d)) < 0)
		goto out;
	/* The TLS credentials are read here, as root (split, the key only by the parent, after
	 * the split); a port below 1024 is bound here too. */
	d.tls_keyless = pw != NULL;
	if (tls_open(&d) != 0)
		goto out;
	if (pw != NULL) {
		if (priv_split(&d, pw, lfd) != 0) {
			lfd = -1; /* the worker failed at set-up; the parent owns the socket file */
			goto out;
		}
		/* The worker: its own epoll, after the fork. */
		if (event_reinit(d.base) != 0) {
			log_error("cannot restart the event loop in the worker");
			goto out;
		}
		d.priv_notify_ev =
		    event_new(d.base, d.priv_notify_fd, EV_READ | EV_PERSIST, on_parent_notice, &d);
		if (d.priv_notify_ev == NULL || event_add(d.priv_notify_ev, NULL) != 0)
			goto out;
	}
	fast_path_init();
	if (fast_path_on(FAST_AUDIT_BUFFERING) && audit_buffer(d.audit, d.base) != 0)
		log_warn("cannot buffer the audit log: each line is written at once");
	ops_install(&d);
	if (relay_pipe_open(&d.relay) != 0)
		log_warn("no pipe for splicing received bytes: receives copy them");
	if (install_signals(&d) != 0) {
		log_error("cannot install signal handlers");
		goto out;
	}
	if (server_listen(&d, lfd) != 0) {
		lfd = -1;
		goto out;
	}
	lfd = -1;
	if (tls_start(&d) != 0)
		goto out;
	log_info("listening on %s (policy: %s)", d.opt.socket_path,
	         d.opt.policy_path ? d.opt.policy_path : "embedded default");
	priv_ready(&d); /* split: the parent tells systemd */
	sd_notify(0, "READY=1");
	idle_poll_run(&d);
	log_info("stopped");
	status = parent_lost ? EXIT_FAILURE : EXIT_SUCCESS;
out:
	if (lfd >= 0) {
		close(lfd);
		if (d.socket_created)
			unlink(d.opt.socket_path);
	}
	if (d.base)
		teardown(&d);
	else {
		tls_free(&d);
		policy_free(d.policy);
		audit_free(d.audit);
	}
	return status;
}
