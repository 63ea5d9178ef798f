/*
 * priv_parent.c - the split into a privileged parent and an unprivileged worker (priv.h).
 *
 * The parent stays root. It keeps no listener, parses no client byte and runs no session:
 * it serves the worker's requests (priv.c), reloads the policy on SIGHUP (reading the file
 * as root and handing both sides the same bytes), tells systemd about readiness (only the
 * main process may), and ends with the worker: SIGTERM is passed on and the parent exits
 * as the worker did; a worker that dies on its own makes the parent exit non-zero with a
 * log line (the supervisor restarts the pair). The worker is the `sockrpc` user with no
 * capability at all and no_new_privs; it dies with the parent (PR_SET_PDEATHSIG, and the
 * end of file on the notify channel).
 *
 * With --workers N the parent forks N such workers, each with its own two channels, and
 * serves them all from one loop: READY=1 once every one is ready, each reload sent to
 * each, SIGTERM to all; one that dies on its own ends the parent, which kills the rest
 * (fail-closed, as with one). Their sessions and the global limits: priv_sessions.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "priv.h"
#include "privileges.h"
#include "sockrpcd.h"

/* A policy file larger than this is refused on reload. */
#define POLICY_TEXT_MAX (16u << 20)
/* Descriptors read with one request: one more than any request carries, to see excess. */
#define FDS_READ_MAX 4

/* A worker that closed its request channel has this long to exit before it is killed. */
#define WORKER_EXIT_GRACE_MS 1000

/* One worker: its process and its two channels. */
struct worker {
	struct parent *p;
	int index;
	pid_t pid;
	int req_fd, notify_fd;
	struct event *ev;
	int status;
	bool done;
	bool ready;
};

struct parent {
	struct sockrpcd *d;
	struct priv_parent *serve;
	struct event_base *base;
	struct worker *w; /* n of them (--workers) */
	int n;
	int n_ready;
	int first_gone; /* the worker that ended first; -1: none yet */
	bool stopping;
	uint8_t *buf; /* one request and its payload */
	int n_tls;    /* TLS listeners: their addresses, for the CA store's swaps */
	bool keyless; /* the TLS key is the parent's alone (tls_keyless.c) */
	struct sockaddr_storage tls_addrs[TLS_MAX_LISTENERS];
};

static void
close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Receives one request, serves it, answers it. Returns false at the worker's end of file. */
static bool
serve_one(struct worker *w)
{
	struct parent *p = w->p;
	struct iovec iov = {p->buf, sizeof(struct priv_req) + PRIV_PAYLOAD_MAX};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(FDS_READ_MAX * sizeof(int))];
	} ctl = {.buf = {0}}; /* padding included, as valgrind checks it */
	struct msghdr msg = {.msg_iov = &iov,
	                     .msg_iovlen = 1,
	                     .msg_control = ctl.buf,
	                     .msg_controllen = sizeof(ctl.buf)};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(PRIV_REPLY_FDS_MAX * sizeof(int))];
	} reply_ctl = {.buf = {0}};
	struct priv_reply reply;
	struct cmsghdr *cm;
	int fds[FDS_READ_MAX], n_fds = 0, reply_fds[PRIV_REPLY_FDS_MAX], n_reply_fds;
	ssize_t n;

	n = recvmsg(w->req_fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	if (n == 0)
		return false;
	for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
		size_t k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k && n_fds < FDS_READ_MAX; i++)
			memcpy(&fds[n_fds++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
	}
	if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		/* Too long, or too many descriptors: refused whatever it says. */
		close_fds(fds, n_fds);
		n_fds = FDS_READ_MAX;
		for (int i = 0; i < n_fds; i++)
			fds[i] = -1;
	}
	priv_parent_set_worker(p->serve, w->index); /* it names only its own sessions */
	if (!priv_parent_serve(p->serve, p->buf, (size_t)n, fds, n_fds, &reply, reply_fds,
	                       &n_reply_fds))
		return true;
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = &reply;
	iov.iov_len = sizeof(reply);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (n_reply_fds > 0) {
		msg.msg_control = reply_ctl.buf;
		msg.msg_controllen = CMSG_SPACE((size_t)n_reply_fds * sizeof(int));
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN((size_t)n_reply_fds * sizeof(int));
		memcpy(CMSG_DATA(cm), reply_fds, (size_t)n_reply_fds * sizeof(int));
	}
	/* The worker waits for this reply, so there is room for it; a worker that sends
	 * without reading is not one the parent waits for. */
	if (sendmsg(w->req_fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EPIPE) {
		log_error("the worker (pid %d) does not take its replies (%s): stopping it",
		          (int)w->pid, strerror(errno));
		kill(w->pid, SIGKILL);
	}
	close_fds(reply_fds, n_reply_fds);
	/* systemd hears READY=1 once every worker listens. */
	if (reply.type == PRIV_READY && reply.result == 0 && !w->ready) {
		w->ready = true;
		if (++p->n_ready == p->n)
			sd_notify(0, "READY=1");
	}
	return true;
}

/* Reads the policy file into memory. Returns the bytes (free()) or NULL (logged). */
static char *
read_policy(const char *path, size_t *len)
{
	char *text = NULL;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	size_t got = 0;
	ssize_t n;

	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (size_t)st.st_size > POLICY_TEXT_MAX ||
	    (text = malloc((size_t)st.st_size + 1)) == NULL) {
		log_error("policy %s: cannot read it: %s", path,
		          fd < 0 || errno ? strerror(errno) : "not a regular file, or too large");
		goto fail;
	}
	while (got < (size_t)st.st_size && (n = read(fd, text + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	close(fd);
	*len = got;
	return text;
fail:
	if (fd >= 0)
		close(fd);
	free(text);
	return NULL;
}

/*
 * Tells the worker after SIGHUP: the new policy when there is one (the same bytes the
 * parent parsed, in a memfd; none for the embedded default), and the audit log reopened
 * here, as root, since the worker may not create it after rotation.
 */
static void
send_notice(struct parent *p, struct worker *w, bool new_policy, const char *text, size_t len,
            const struct tls_pem *tls)
{
	struct priv_req rq = {.type = PRIV_NOTICE};
	struct iovec iov = {&rq, sizeof(rq)};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(3 * sizeof(int))];
	} ctl = {.buf = {0}}; /* padding included, as valgrind checks it */
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	const char *audit = p->d->opt.audit_path;
	struct cmsghdr *cm;
	int fds[3], n = 0;

	rq.a = 0; /* the embedded default's owner: root, who started the daemon */
	rq.b = new_policy;
	if (new_policy && text != NULL) {
		fds[n] = memfd_create("sockrpc-policy", MFD_CLOEXEC);
		if (fds[n] < 0 || write(fds[n], text, len) != (ssize_t)len) {
			log_error("cannot pass the policy to the worker: %s", strerror(errno));
			if (fds[n] >= 0)
				close(fds[n]);
			rq.b = 0;
		} else {
			lseek(fds[n++], 0, SEEK_SET);
		}
	}
	/* New TLS credentials go only with the policy they were checked with. */
	if (tls != NULL && rq.b) {
		if ((fds[n] = tls_pem_to_fd(tls)) < 0) {
			log_error("cannot pass the TLS credentials to the worker: %s",
			          strerror(errno));
			if (n > 0)
				close(fds[--n]);
			rq.b = 0;
		} else {
			n++;
			rq.value = 1;
		}
	}
	if (audit != NULL) {
		fds[n] = open(audit, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
		if (fds[n] >= 0) {
			n++;
			rq.c = 1;
		} else {
			log_warn("cannot reopen the audit log %s: %s", audit, strerror(errno));
		}
	}
	if (n > 0) {
		msg.msg_control = ctl.buf;
		msg.msg_controllen = CMSG_SPACE((size_t)n * sizeof(int));
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, (size_t)n * sizeof(int));
	}
	if (sendmsg(w->notify_fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_error("cannot tell the worker (pid %d) about the reload: %s", (int)w->pid,
		          strerror(errno));
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

static void
on_reload(evutil_socket_t sig, short what, void *arg)
{
	struct parent *p = arg;
	const char *path = p->d->opt.policy_path;
	struct policy *pol;
	struct timespec now;
	struct tls_pem tls = {0};
	X509_STORE *ca = NULL;
	EVP_PKEY *key = NULL;
	bool have_tls = false;
	char errors[4096], *text = NULL;
	size_t len = 0;
	FILE *f;

	clock_gettime(CLOCK_MONOTONIC, &now);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
	           (unsigned long long)now.tv_sec * 1000000ULL +
	               (unsigned long long)now.tv_nsec / 1000ULL);
	if (path == NULL) {
		pol = policy_default(0);
	} else if ((text = read_policy(path, &len)) == NULL ||
	           (f = fmemopen(text, len ? len : 1, "r")) == NULL) {
		pol = NULL;
	} else {
		if (len == 0)
			fgetc(f); /* fmemopen wants a size: an empty file reads as empty */
		pol = policy_load_stream(f, path, errors, sizeof(errors));
		fclose(f);
		if (pol == NULL)
			log_error("policy %s rejected:\n%s", path, errors);
	}
	/* TLS credentials are read with the policy and swapped with it, or not at all. */
	if (pol != NULL && p->n_tls > 0) {
		char err[512];
		SSL_CTX *check = NULL;

		have_tls = tls_pem_read(&p->d->opt, &tls, err, sizeof(err)) == 0;
		if (have_tls &&
		    ((check = tls_server_context_new(&tls, false, err, sizeof(err))) == NULL ||
		     (ca = tls_ca_store_new(&tls, err, sizeof(err))) == NULL ||
		     (p->keyless && (key = tls_private_key(&tls, err, sizeof(err))) == NULL)))
			have_tls = false;
		if (have_tls && p->keyless) {
			/* A new key of a kind the worker cannot do without would need a restart. */
			X509 *cert = SSL_CTX_get0_certificate(check);

			if (!tls_keyless_possible(cert ? X509_get0_pubkey(cert) : NULL)) {
				snprintf(err, sizeof(err),
				         "the new key is not EC of 384 bits or "
				         "fewer: restart sockrpcd to use it");
				have_tls = false;
			}
		}
		SSL_CTX_free(check);
		if (!have_tls) {
			X509_STORE_free(ca);
			EVP_PKEY_free(key);
			ca = NULL;
			key = NULL;
			log_error("TLS credentials rejected: %s", err);
			policy_free(pol);
			pol = NULL;
		}
	}
	if (have_tls && p->keyless) {
		/* The worker gets the certificate and CA; the key stays here. */
		OPENSSL_cleanse(tls.key, tls.key_len);
		tls.key_len = 0;
	}
	/* Each worker its own copy: a shared memfd would share its offset too. */
	for (int i = 0; i < p->n; i++)
		if (!p->w[i].done)
			send_notice(p, &p->w[i], pol != NULL, text, len, have_tls ? &tls : NULL);
	if (pol != NULL) {
		priv_parent_set_policy(p->serve, pol);
		policy_free(p->d->policy);
		p->d->policy = pol;
		daemon_apply_limits(p->d); /* the global ones, which the parent counts */
		if (have_tls) {
			priv_parent_set_tls(p->serve, ca, p->tls_addrs, p->n_tls);
			if (p->keyless)
				priv_parent_set_tls_key(p->serve, key);
		}
		log_info("policy reloaded from %s%s", path ? path : "the embedded default",
		         have_tls ? ", with the TLS credentials" : "");
	} else {
		log_warn("keeping the previous policy%s",
		         p->n_tls > 0 ? " and TLS credentials" : "");
	}
	tls_pem_clear(&tls); /* read, whether taken or not */
	free(text);
	sd_notify(0, "READY=1");
}

static void
on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct parent *p = arg;

	if (!p->stopping) {
		log_info("stopping on signal %d", (int)sig);
		sd_notify(0, "STOPPING=1");
	}
	p->stopping = true;
	for (int i = 0; i < p->n; i++)
		if (!p->w[i].done)
			kill(p->w[i].pid, SIGTERM);
}

/*
 * Collects worker w if it has ended (never waits: one that lives on must not stall the
 * parent, which serves every other worker). The rule is fail-closed, as with one
 * worker: a worker that ends, unless all are stopping, ends the parent, which
 * then stops the others, and the supervisor restarts the whole (a worker that crashed or
 * was killed may have been attacked; restarting it alone would hide that).
 */
static void
reap(struct worker *w)
{
	struct parent *p = w->p;
	int st, gone = 0;

	if (!w->done && waitpid(w->pid, &st, WNOHANG) == w->pid) {
		w->done = true;
		w->status = st;
		if (w->ev != NULL)
			event_del(w->ev);
		priv_parent_forget_worker(p->serve, w->index); /* its sessions' counts */
		if (p->first_gone < 0)
			p->first_gone = w->index;
	}
	for (int i = 0; i < p->n; i++)
		gone += p->w[i].done;
	if (gone == p->n || (gone > 0 && !p->stopping))
		event_base_loopexit(p->base, NULL);
}

static void
on_child(evutil_socket_t sig, short what, void *arg)
{
	struct parent *p = arg;

	for (int i = 0; i < p->n; i++)
		reap(&p->w[i]);
}

static void
on_exit_grace(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	if (w->done)
		return;
	log_error("the worker (pid %d) closed its channel but did not exit: killing it",
	          (int)w->pid);
	kill(w->pid, SIGKILL); /* SIGCHLD reaps it */
}

static void
on_request(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval tv = {WORKER_EXIT_GRACE_MS / 1000, (WORKER_EXIT_GRACE_MS % 1000) * 1000};

	if (serve_one(w))
		return;
	/* The worker closed its end: it is exiting, or (compromised) only says so, and must
	 * not hang the parent in waitpid() while the other workers wait for their replies. */
	event_del(w->ev);
	reap(w);
	if (!w->done)
		event_base_once(w->p->base, -1, EV_TIMEOUT, on_exit_grace, w, &tv);
}

/* The parent's life after the forks. Returns the exit status. */
static int
parent_main(struct parent *p)
{
	static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD};
	static void (*const handlers[])(evutil_socket_t, short, void *) = {on_stop, on_stop,
	                                                                   on_reload, on_child};
	struct event *ev[4] = {NULL};
	struct worker *w;
	int status = EXIT_FAILURE, st;
	bool clean = true;

	signal(SIGPIPE, SIG_IGN); /* a worker gone mid-reply is an error value */
	p->base = event_base_new();
	p->buf = malloc(sizeof(struct priv_req) + PRIV_PAYLOAD_MAX);
	if (p->base == NULL || p->buf == NULL) {
		log_error("privileged parent: out of memory");
		goto out;
	}
	for (int i = 0; i < 4; i++) {
		ev[i] = evsignal_new(p->base, sigs[i], handlers[i], p);
		if (ev[i] == NULL || evsignal_add(ev[i], NULL) != 0)
			goto out;
	}
	for (int i = 0; i < p->n; i++) {
		w = &p->w[i];
		w->ev = event_new(p->base, w->req_fd, EV_READ | EV_PERSIST, on_request, w);
		if (w->ev == NULL || event_add(w->ev, NULL) != 0)
			goto out;
	}
	on_child(-1, 0, p); /* a worker that died before the handlers were in */
	event_base_dispatch(p->base);
	if (p->first_gone < 0)
		goto out;
	for (int i = 0; i < p->n; i++)
		clean = clean && p->w[i].done && WIFEXITED(p->w[i].status) &&
		        WEXITSTATUS(p->w[i].status) == 0;
	w = &p->w[p->first_gone];
	st = w->status;
	if (p->stopping && clean) {
		log_info("the worker%s stopped; privileged parent exiting", p->n > 1 ? "s" : "");
		status = EXIT_SUCCESS;
	} else if (WIFSIGNALED(st)) {
		log_error("the worker (pid %d) was killed by signal %d: privileged parent exiting",
		          (int)w->pid, WTERMSIG(st));
	} else {
		log_error("the worker (pid %d) exited with status %d: privileged parent exiting",
		          (int)w->pid, WEXITSTATUS(st));
	}
out:
	for (int i = 0; i < p->n; i++) {
		w = &p->w[i];
		if (!w->done) {
			kill(w->pid, SIGKILL);
			waitpid(w->pid, &st, 0);
		}
		if (w->ev != NULL)
			event_free(w->ev);
		close(w->req_fd);
		close(w->notify_fd);
	}
	for (int i = 0; i < 4; i++)
		if (ev[i] != NULL)
			event_free(ev[i]);
	if (p->base != NULL)
		event_base_free(p->base);
	free(p->buf);
	return status;
}

/* The worker's end of the split: no privilege, and no life without the parent. */
static int
worker_setup(struct sockrpcd *d, const struct passwd *pw, pid_t parent)
{
	if (privileges_drop(pw->pw_name, pw->pw_uid, pw->pw_gid) != 0)
		return -1;
	/* Set after the drop: a change of credentials clears the parent-death signal. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) != 0 || getppid() != parent) {
		log_error("the privileged parent is gone: worker exiting");
		return -1;
	}
	/* Only the main process may talk to systemd; the parent does. */
	unsetenv("NOTIFY_SOCKET");
	d->priv_parent_pid = parent;
	d->socket_created = false; /* the parent removes it: the worker may not */
	return 0;
}

int
priv_split(struct sockrpcd *d, const struct passwd *pw, int listen_fd)
{
	struct parent p = {.d = d, .first_gone = -1};
	struct stat st = {0};
	struct sockaddr_un local;
	socklen_t local_len = sizeof(local);
	int req[2], notify[2], size = (int)(2 * PRIV_PAYLOAD_MAX + 65536), status, n_tls;
	struct sockaddr_storage tls_addrs[TLS_MAX_LISTENERS];
	char err[512];
	pid_t parent = getpid();
	unsigned n = d->opt.workers > 0 ? d->opt.workers : 1;

	if ((p.w = calloc(n, sizeof(*p.w))) == NULL)
		goto fail;
	for (p.n = 0; p.n < (int)n; p.n++) {
		struct worker *w = &p.w[p.n];

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, req) != 0)
			goto fail;
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, notify) != 0) {
			close(req[0]);
			close(req[1]);
			goto fail;
		}
		/* Room for a send's payload in one message (the parent is root: forced). */
		setsockopt(req[1], SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size));
		fflush(NULL);
		w->pid = fork();
		if (w->pid < 0) {
			close(req[0]);
			close(req[1]);
			close(notify[0]);
			close(notify[1]);
			goto fail;
		}
		if (w->pid == 0) {
			/* Its own channels only: another's would let it pass for that one. */
			for (int i = 0; i < p.n; i++) {
				close(p.w[i].req_fd);
				close(p.w[i].notify_fd);
			}
			free(p.w);
			close(req[0]);
			close(notify[0]);
			d->priv_fd = req[1];
			d->priv_notify_fd = notify[1];
			d->n_workers = n;
			d->worker_index = (unsigned)p.n;
			/* Ids k + 1, k + 1 + n, ...: session.c adds n before each. */
			d->next_session_id = (uint64_t)p.n + 1 - n;
			return worker_setup(d, pw, parent);
		}
		close(req[1]);
		close(notify[1]);
		w->p = &p;
		w->index = p.n;
		w->req_fd = req[0];
		w->notify_fd = notify[0];
	}
	n_tls = tls_listener_addresses(d, tls_addrs, TLS_MAX_LISTENERS);
	p.keyless = d->tls_keyless;
	tls_free(d); /* the worker's: the parent keeps only the CA (and the key, keyless) */
	memset(&local, 0, sizeof(local));
	if (getsockname(listen_fd, (struct sockaddr *)&local, &local_len) != 0)
		memset(&local, 0, sizeof(local));
	close(listen_fd);
	audit_free(d->audit);
	d->audit = NULL;
	if (stat(d->opt.socket_path, &st) != 0 || !S_ISSOCK(st.st_mode))
		memset(&st, 0, sizeof(st));
	p.serve = priv_parent_new(d->policy, st.st_dev, st.st_ino, local.sun_path);
	if (p.serve != NULL && n_tls > 0) {
		struct tls_pem pem;
		X509_STORE *ca = NULL;

		EVP_PKEY *key = NULL;

		if (tls_pem_read(&d->opt, &pem, err, sizeof(err)) == 0 &&
		    (ca = tls_ca_store_new(&pem, err, sizeof(err))) != NULL && p.keyless)
			key = tls_private_key(&pem, err, sizeof(err));
		tls_pem_clear(&pem);
		if (ca == NULL || (p.keyless && key == NULL)) {
			/* The worker signs handshakes with this key, or checks sessions with the
			 * CA: without them it cannot serve TLS at all. */
			log_error("privileged parent: %s", err);
			for (int i = 0; i < p.n; i++)
				kill(p.w[i].pid, SIGKILL);
			X509_STORE_free(ca);
			priv_parent_free(p.serve);
			exit(EXIT_FAILURE);
		}
		priv_parent_set_tls(p.serve, ca, tls_addrs, n_tls);
		priv_parent_set_tls_key(p.serve, key);
		p.n_tls = n_tls;
		memcpy(p.tls_addrs, tls_addrs, sizeof(tls_addrs));
	}
	if (p.serve == NULL) {
		log_error("privileged parent: out of memory");
		for (int i = 0; i < p.n; i++)
			kill(p.w[i].pid, SIGKILL);
		status = EXIT_FAILURE;
	} else {
		priv_parent_set_limits(p.serve, &d->opt.limits);
		for (int i = 0; i < p.n; i++)
			log_info("privileged parent (pid %d) serving worker pid %d as %s",
			         (int)parent, (int)p.w[i].pid, pw->pw_name);
		status = parent_main(&p);
	}
	if (d->socket_created)
		unlink(d->opt.socket_path);
	priv_parent_free(p.serve);
	policy_free(d->policy);
	free(p.w);
	exit(status);
fail:
	log_error("cannot start the worker: %s", strerror(errno));
	for (int i = 0; i < p.n; i++) {
		kill(p.w[i].pid, SIGKILL);
		waitpid(p.w[i].pid, &status, 0);
		close(p.w[i].req_fd);
		close(p.w[i].notify_fd);
	}
	free(p.w);
	return -1;
}
