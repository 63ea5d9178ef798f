/*
 * server.c - the daemon's listening socket and the admission of sessions: peer identity
 * from the kernel, the session limits, recovery from fd exhaustion, and the orderly stop.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/listener.h>

#include "identity.h"
#include "sockrpcd.h"

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg);
static void on_accept_error(struct evconnlistener *l, void *arg);
static void accepted(struct sockrpcd *d, int fd);

/*
 * Whether a daemon still serves the Unix socket at path: 1 live, 0 stale (nothing
 * listens), or a negative errno when it cannot tell, in which case the file is left
 * alone. Non-blocking, so a live daemon with a full backlog (EAGAIN) cannot stall us.
 */
static int
socket_is_live(const char *path)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int live;

	if (fd < 0)
		return -errno;
	snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&un, sizeof(un)) == 0 || errno == EAGAIN ||
	    errno == EINPROGRESS)
		live = 1;
	else if (errno == ECONNREFUSED)
		live = 0;
	else
		live = -errno;
	close(fd);
	return live;
}

/*
 * Creates the parent directory when missing (the last component only), 0755 whatever
 * the umask, so clients can reach a socket whose own mode then decides who may connect.
 * An existing parent that anyone may write to without the sticky bit is only warned
 * about: others could replace the socket there.
 */
static void
make_parent_dir(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct stat st;
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return;
	*slash = '\0';
	if (mkdir(dir, 0755) == 0) {
		if (chmod(dir, 0755) != 0)
			log_warn("chmod %s: %s", dir, strerror(errno));
		return;
	}
	if (errno != EEXIST)
		log_warn("cannot create %s: %s", dir, strerror(errno));
	else if (stat(dir, &st) == 0 && (st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX))
		log_warn("%s is writable by anyone: others can replace the socket", dir);
}

/*
 * Clears the way for a new socket at path: nothing there, or a socket file whose daemon
 * is gone, which is removed. Anything else (a live daemon, a file that is not a socket,
 * a symbolic link) stays and is an error. Returns 0 or -1 (logged).
 */
static int
remove_stale_socket(const char *path)
{
	struct stat st;
	int live;

	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		log_error("%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_error("%s exists and is not a socket; not replacing it", path);
		return -1;
	}
	live = socket_is_live(path);
	if (live == 1) {
		log_error("another daemon is listening on %s", path);
		return -1;
	}
	if (live < 0) {
		log_error("cannot tell whether a daemon listens on %s: %s", path, strerror(-live));
		return -1;
	}
	if (unlink(path) != 0 && errno != ENOENT) {
		log_error("cannot remove the stale socket %s: %s", path, strerror(errno));
		return -1;
	}
	log_info("removed the stale socket %s", path);
	return 0;
}

/*
 * Binds and listens on a new socket at opt.socket_path, giving it opt.socket_group and
 * opt.socket_mode. It is created 0600 and only then opened up, and the later chown and
 * chmod do not follow symbolic links, so the path never leads them to another file.
 * Returns the listening fd, or -1 (logged) with nothing left behind.
 */
int
server_create_listener(struct sockrpcd *d)
{
	const char *path = d->opt.socket_path;
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	int fd, mode = d->opt.socket_mode >= 0 ? d->opt.socket_mode : 0666;
	mode_t old_umask;

	if (strlen(path) >= sizeof(un.sun_path)) {
		log_error("socket path too long (max %zu bytes): %s", sizeof(un.sun_path) - 1,
		          path);
		return -1;
	}
	strcpy(un.sun_path, path);
	make_parent_dir(path);
	if (remove_stale_socket(path) != 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error("socket: %s", strerror(errno));
		return -1;
	}
	/* Bind with a tight umask so there is no window in which the socket is more open. */
	old_umask = umask(0177);
	if (bind(fd, (struct sockaddr *)&un, sizeof(un)) != 0) {
		log_error("bind %s: %s", path, strerror(errno));
		umask(old_umask);
		close(fd);
		return -1;
	}
	umask(old_umask);
	if (d->opt.socket_group != NULL) {
		struct group *g = getgrnam(d->opt.socket_group);

		if (g == NULL) {
			log_error("--socket-group %s: no such group", d->opt.socket_group);
			goto fail;
		}
		if (fchownat(AT_FDCWD, path, (uid_t)-1, g->gr_gid, AT_SYMLINK_NOFOLLOW) != 0) {
			log_error("cannot give %s to group %s: %s", path, d->opt.socket_group,
			          strerror(errno));
			goto fail;
		}
	}
	/* AT_SYMLINK_NOFOLLOW: glibc fails with EOPNOTSUPP if path became a symbolic link. */
	if (fchmodat(AT_FDCWD, path, (mode_t)mode, AT_SYMLINK_NOFOLLOW) != 0) {
		log_error("chmod %s: %s", path, strerror(errno));
		goto fail;
	}
	if (listen(fd, SOMAXCONN) != 0) {
		log_error("listen %s: %s", path, strerror(errno));
		goto fail;
	}
	d->socket_created = true;
	return fd;
fail:
	close(fd);
	unlink(path);
	return -1;
}

/*
 * Starts accepting on the inherited fd (systemd socket activation) or on a socket
 * created at opt.socket_path. Returns 0 or -1 (logged).
 */
int
server_listen(struct sockrpcd *d, int inherited_fd)
{
	int fd = inherited_fd >= 0 ? inherited_fd : server_create_listener(d);
	struct stat st;

	if (fd < 0)
		return -1;
	evutil_make_socket_nonblocking(fd);
	evutil_make_socket_closeonexec(fd);
	if (d->n_workers > 1) {
		if (server_listen_shared(d, fd, accepted) != 0)
			return -1;
	} else {
		d->listener =
		    evconnlistener_new(d->base, on_accept, d, LEV_OPT_CLOSE_ON_FREE, -1, fd);
		if (d->listener == NULL) {
			log_error("cannot listen: %s", strerror(errno));
			close(fd);
			return -1;
		}
		evconnlistener_set_error_cb(d->listener, on_accept_error);
	}
	if (stat(d->opt.socket_path, &st) == 0 && S_ISSOCK(st.st_mode)) {
		d->socket_dev = st.st_dev;
		d->socket_ino = st.st_ino;
	}
	return 0;
}

/*
 * Whether two peers count as one for the per-uid limits: the same uid over the Unix
 * socket; over TLS, the same principal (the first name of the certificate), or the same
 * key when the certificate has no name. A TLS peer's uid means nothing.
 */
bool
server_same_owner(const struct identity *a, const struct identity *b)
{
	if (a->transport != b->transport)
		return false;
	if (a->transport == IDENTITY_UNIX)
		return a->uid == b->uid;
	if (a->n_principals > 0 && b->n_principals > 0)
		return strcmp(a->principals[0], b->principals[0]) == 0;
	return a->n_principals == b->n_principals &&
	       memcmp(a->spki_sha256, b->spki_sha256, sizeof(a->spki_sha256)) == 0;
}

/*
 * Why a session that says Hello now must be refused, or NULL. Only open sessions count
 * (past Hello, not draining or closing): a connection that hung up before Hello (its end of stream
 * not read yet) must not hold a live client out.
 */
const char *
server_admission_refusal(struct sockrpcd *d, const struct session *newcomer)
{
	const struct daemon_limits *l = &d->opt.limits;
	unsigned all = 0, same_uid = 0;
	struct session *s;

	TAILQ_FOREACH (s, &d->sessions, link) {
		if (s == newcomer || s->phase != SESSION_OPEN)
			continue;
		all++;
		same_uid += server_same_owner(&s->peer, &newcomer->peer);
	}
	if (all >= l->max_sessions)
		return "too many sessions";
	if (l->max_sessions_per_uid > 0 && same_uid >= l->max_sessions_per_uid)
		return newcomer->peer.transport == IDENTITY_TLS
		           ? "too many sessions for this principal"
		           : "too many sessions for this uid";
	return NULL;
}

/* Sessions of a Unix peer's uid that have not said Hello yet (nor are closing). */
static unsigned
pre_hello_sessions(struct sockrpcd *d, uid_t uid)
{
	struct session *s;
	unsigned n = 0;

	TAILQ_FOREACH (s, &d->sessions, link)
		n += s->phase == SESSION_HELLO && s->peer.transport == IDENTITY_UNIX &&
		     s->peer.uid == uid;
	return n;
}

/* A connection accepted on the daemon's socket: a session, or closed. */
static void
accepted(struct sockrpcd *d, int fd)
{
	struct identity peer;
	struct session *s;

	if (d->stopping) {
		close(fd);
		return;
	}
	/* Past the limit by a margin, refuse outright: refusing politely costs a session. */
	if (d->n_sessions >= d->opt.limits.max_sessions + MAX_SESSIONS_MARGIN) {
		close(fd);
		return;
	}
	if (identity_from_socket(fd, &peer) != 0) {
		log_warn("cannot read the peer's credentials: %s", strerror(errno));
		close(fd);
		return;
	}
	/* A brokered connection back into this daemon: a client must never reach another
	 * session through it (ops_connect.c refuses the socket's inode; this holds even
	 * where that inode is unknown). */
	if (peer.pid == getpid() || (d->priv_fd >= 0 && peer.pid == d->priv_parent_pid)) {
		log_warn("refused a connection from sockrpcd itself");
		close(fd);
		return;
	}
	/* Connections that have not said Hello are counted per uid here, as sessions are at
	 * Hello, so that one uid's silent connections cannot take every slot: past its
	 * allowance, only while half the slots are free (a burst of a uid's clients). This
	 * worker's slots: with several, its share, which may be under half of them all. */
	if (d->n_sessions >= server_worker_slots(d) / 2 &&
	    pre_hello_sessions(d, peer.uid) >= MAX_PRE_HELLO_PER_UID) {
		log_debug("uid %u: too many connections without Hello; closing a new one",
		          (unsigned)peer.uid);
		close(fd);
		return;
	}
	/* Session limits are applied at Hello, where the client can be told why. */
	if ((s = session_new(d, fd, &peer)) == NULL)
		log_error("cannot start a session: out of memory");
	else if (priv_session_open(s) != 0) /* the parent reads the identity itself */
		session_close(s, "the privileged parent refused the session");
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
	accepted(arg, fd);
}

static void
on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
	struct sockrpcd *d = arg;

	if (d->listener && !d->stopping)
		evconnlistener_enable(d->listener);
	if (!d->stopping)
		server_shared_resume(d);
}

/*
 * libevent gives up on a listener after an accept error unless told otherwise. Out of
 * fds (EMFILE/ENFILE) the pending connection stays queued and the listener would spin,
 * so it pauses and retries shortly; existing sessions keep working meanwhile.
 */
static void
on_accept_error(struct evconnlistener *l, void *arg)
{
	struct sockrpcd *d = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = {0, ACCEPT_RETRY_MS * 1000};

	if (err == EINTR || err == ECONNABORTED || err == EAGAIN)
		return;
	log_warn("accept: %s; pausing the listener for %d ms", strerror(err), ACCEPT_RETRY_MS);
	evconnlistener_disable(l);
	if (d->accept_retry == NULL)
		d->accept_retry = evtimer_new(d->base, on_accept_retry, d);
	if (d->accept_retry)
		evtimer_add(d->accept_retry, &tv);
}

static void
on_stop_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct sockrpcd *d = arg;

	event_base_loopexit(d->base, NULL);
}

static void
on_trim_due(evutil_socket_t fd, short what, void *arg)
{
	malloc_trim(0);
}

/*
 * A session ended. The memory its buffers and calls held goes back to malloc, which keeps
 * it (main.c raises the trim threshold for bulk transfers' sake): a flood of sessions
 * would leave the daemon at its peak for good. So, at most every TRIM_INTERVAL_MS, what
 * is free is handed back to the kernel.
 */
void
server_session_gone(struct sockrpcd *d, struct session *s)
{
	struct timeval tv = {TRIM_INTERVAL_MS / 1000, (TRIM_INTERVAL_MS % 1000) * 1000};

	socket_reserve_drop(s);
	priv_session_close(s);
	server_shared_resume(d); /* below its share again (server_shared.c) */
	if (d->stopping && d->n_sessions == 0) {
		event_base_loopexit(d->base, NULL);
		return;
	}
	if (d->trim == NULL)
		d->trim = evtimer_new(d->base, on_trim_due, d);
	if (d->trim != NULL && !evtimer_pending(d->trim, NULL))
		evtimer_add(d->trim, &tv);
}

/*
 * The orderly stop (SIGTERM): stop accepting, answer every call in flight with
 * EDAEMON, then give clients SHUTDOWN_FLUSH_MS to take those replies before exiting.
 */
void
server_stop(struct sockrpcd *d)
{
	struct session *s, *next;
	struct timeval tv = {0, SHUTDOWN_FLUSH_MS * 1000};

	if (d->stopping)
		return;
	d->stopping = true;
	if (d->listener) {
		evconnlistener_free(d->listener);
		d->listener = NULL;
	}
	server_shared_free(d);
	if (d->socket_created)
		unlink(d->opt.socket_path);
	tls_stop(d);
	for (s = TAILQ_FIRST(&d->sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, link);
		session_drain(s, "sockrpcd is shutting down");
	}
	if (d->n_sessions == 0)
		event_base_loopexit(d->base, NULL);
	else
		event_base_once(d->base, -1, EV_TIMEOUT, on_stop_timeout, d, &tv);
}
