/*
 * fuzz_sessions.c - libFuzzer target: several interacting sessions of the daemon (its core
 * sources, the production read size) driven by one input, under a fuzzed policy and fuzzed
 * identities, with timers that fire and clients that stop reading or hang up mid-reply.
 *
 * Input format (every field optional: a short input just does less):
 *
 *   byte 0      bits 0-1: sessions - 1 (1 to 4); bit 2: a policy text follows
 *   [policy]    one length byte L, then L bytes of policy text. It is parsed with the real
 *               parser after the guard rules below; if it does not load, a fixed loopback
 *               policy is used instead.
 *   per session two bytes: who (bits 0-1 uid, 2-3 gid, 4-5 exe, 6-7 cgroup, each one of
 *               four values) and how (bit 0 a valid Hello is sent first, bit 1 it asks for
 *               a reply channel, bit 2 the client does not read its replies, bits 3-4 the
 *               number of supplementary groups)
 *   then ops    one byte each, bits 0-1 the session, bits 2-4 the op, bit 5 "framed",
 *               then its operands:
 *     0 SEND n(1) bytes(n)         the client writes bytes
 *     1 SEND_LONG n(2) bytes(n)    the same, n up to 65535
 *     2 REPEAT count(2) n(1) bytes(n)  writes the bytes count times, up to 16 KiB (many
 *                                  small frames: each call costs, so not more)
 *     framed SEND, SEND_LONG: method(1) first; the bytes go out as one frame's body behind
 *                                  a header the harness writes (length right, next call id)
 *     framed REPEAT method(1) n(1) prefix(n) count(2) n(1) bytes(n): one frame whose body is
 *                                  the prefix, then the bytes count times (up to a little
 *                                  more than the largest frame: a large frame of small
 *                                  fields from a small input)
 *     3 RUN                        runs the loop a few times more
 *     4 TIME t(1)                  advances the clock by t*128 ms and runs the loop: the
 *                                  Hello, flush, call and connect timeouts fire
 *     5 READ                       the client starts (or stops) reading its replies
 *     6 HANGUP                     the client closes its end, whatever is unread
 *     7 SHUT_WR                    the client half-closes its end
 *
 * After every op a bound on the heap is asserted: every session may hold what it is charged
 * for (its calls' queued_bytes, bounded by the queue limit, and its buffered bytes) plus a
 * fixed allowance for buffer room and bookkeeping; a session before Hello much less. The heap is
 * read from the allocator (ASan's statistics, or mallinfo2 without ASan). At the end every client
 * hangs up: every session must then be gone, and no fd left behind.
 *
 * Oracles for escapes, on the system calls the daemon makes (defined here, they replace
 * libc's for the daemon's code):
 *   - AF_UNIX connect/bind: the guard rules below allow only paths under SPOOL; the path the
 *     daemon actually uses must resolve (symlinks and .. followed) under SPOOL. SPOOL holds a
 *     symlink to a directory outside it. A path elsewhere is refused (safety) and reported.
 *   - IP connect/send: the guard denies loopback port 7; reaching any address the kernel
 *     maps to the local host on port 7 (127/8, 0.0.0.0/8, ::, ::1, their mapped forms) is
 *     reported. Any non-local address is refused: nothing leaves the machine.
 * And the loop must never block: one non-blocking loop run taking over LOOP_BLOCK_MS is
 * reported.
 *
 * Each oracle is named for the issue 14 item it would have caught (1 a Unix path escape,
 * 3 the guarded port reached, 7 the loop blocked, 8 the heap held before Hello, 9 a session
 * outliving its client, 11 the heap held beyond the charge), or 21 for issue 21's
 * client-chosen handle ids (a handle table out of order, or holding an id never given).
 * Environment: FUZZ_KNOWN=3,11 (a comma list) turns the findings of those items into log lines, to
 * fuzz past a known bug that is being fixed; FUZZ_VERBOSE=1 prints the policy used, the heap
 * figures, the audit log and the daemon's debug log.
 *
 * fuzz-build: daemon
 */
#include <dlfcn.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "frame.h"
#include "sockrpcd.h"

#define MAX_SESSIONS 4
/* Bytes one session's client may write per input: a few maximal frames. */
#define MAX_STREAM (3u * SR_MAX_FRAME)
/* The most an unframed REPEAT writes. */
#define MAX_RAW_REPEAT (16u * 1024u)
/* The largest body an op builds: a little more than the largest frame allowed. */
#define MAX_BODY (SR_MAX_FRAME + 64u)
/*
 * What a session may hold besides what it is charged for (its calls' queued_bytes, the
 * bytes in its input and output buffers): the unused room of those buffers (a production
 * read reserves 1 MiB, which libevent rounds up to a 2 MiB chunk; a reply's chunk the
 * same), the handle table, a reply channel. Generous: it is meant to catch multiples.
 */
#define PRODUCTION_READ_CHUNK (1024u * 1024u)
#define SESSION_ALLOWANCE (4u * PRODUCTION_READ_CHUNK + 512u * 1024u)
/* What a session's own structures may hold besides its calls' charge: the session, its
 * handle table and handles (at most 32 here). */
#define SESSION_OWN_ALLOWANCE (64u * 1024u)
/* Before Hello a session needs room for a Hello, not for a maximal frame (issue 14, 8/11):
 * this bound holds everything it has. */
#define PRE_HELLO_ALLOWANCE (256u * 1024u)
/* The loop's own growth, the resolver, the policy. */
#define GLOBAL_ALLOWANCE (256u * 1024u)
#define LOOP_BLOCK_MS 2000
#define GUARDED_PORT 7
/* Fds the resolver and NSS may open lazily, once, for the whole run. */
#define LAZY_FDS 6

static const char fallback_policy[] =
    "deny * resolve *\n"
    "allow * create tcp,udp,unix\n"
    "allow * connect,send,bind,listen,accept tcp,udp @loopback,@unspecified\n"
    "allow * option tcp,udp,unix\n";

static const uid_t uids[4] = {0, 1000, 65534, 33};
static const gid_t gids[4] = {0, 1000, 65534, 33};
static const char *const exes[4] = {"", "/usr/bin/python3", "/usr/bin/curl", "/tmp/x"};
static const char *const cgroups[4] = {"", "/system.slice/jobs-1.service",
                                       "/user.slice/user-1000.slice", "/"};

struct client {
	int fd;      /* the client's end of the connection, -1 once hung up */
	int channel; /* the reply channel's client end, -1 if none */
	bool reading;
	size_t written;
	uint64_t call_id; /* of the last framed op */
};

static struct sockrpcd daemon_state;
static char spool[PATH_MAX]; /* the only directory Unix sockets may be used in */
static char guard[1024];
static int fds_at_start;
static unsigned long runs;
static bool verbose;
static const char *known_items; /* FUZZ_KNOWN */
static long long fake_ns;       /* added to CLOCK_MONOTONIC_COARSE, libevent's clock */

static void
fatal(const char *what)
{
	fprintf(stderr, "fuzz_sessions: %s: %s\n", what, strerror(errno));
	abort();
}

/* Whether FUZZ_KNOWN lists issue 14's item. */
static bool
known(int item)
{
	const char *p = known_items;

	while (p != NULL && *p != '\0') {
		if (atoi(p) == item)
			return true;
		p = strchr(p, ',');
		p = p != NULL ? p + 1 : NULL;
	}
	return false;
}

/* A property the daemon must keep does not hold: the input is a finding, unless the
 * item is known (FUZZ_KNOWN), then it is logged and the run goes on. */
static void __attribute__((format(printf, 2, 3))) finding(int item, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr,
	        "fuzz_sessions: %s (issue %s item %d): ", known(item) ? "known finding" : "FINDING",
	        item == 21 ? "21" : "14", item);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (!known(item))
		abort();
}

/* --- The fake clock. libevent reads CLOCK_MONOTONIC_COARSE (unless asked to be precise);
 * libFuzzer and the sanitizers read CLOCK_MONOTONIC, which stays true. --- */

int
clock_gettime(clockid_t id, struct timespec *ts)
{
	static int (*real)(clockid_t, struct timespec *);
	int rc;

	if (real == NULL)
		real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
	rc = real != NULL ? real(id, ts) : (int)syscall(SYS_clock_gettime, id, ts);
	if (rc == 0 && id == CLOCK_MONOTONIC_COARSE && fake_ns > 0) {
		long long ns = ts->tv_nsec + fake_ns % 1000000000LL;

		ts->tv_sec += (time_t)(fake_ns / 1000000000LL + ns / 1000000000LL);
		ts->tv_nsec = (long)(ns % 1000000000LL);
	}
	return rc;
}

/* --- The system call oracles. --- */

/* Whether the kernel would deliver to this host locally (the netns has only lo). */
static bool
is_local(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);

		return (a >> 24) == 127 || (a >> 24) == 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};

		if (IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LOOPBACK(a))
			return true;
		/* ::ffff:a.b.c.d reaches a.b.c.d; ::a.b.c.d (the old compatible form) does not. */
		if (memcmp(a->s6_addr, mapped, 12) == 0)
			return a->s6_addr[12] == 127 || a->s6_addr[12] == 0;
	}
	return false;
}

static int
ip_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
}

/*
 * Checks a destination the daemon is about to use. Returns 0 to let the call go on, or an
 * errno to refuse it (a destination outside the sandbox, which the fuzzer must not reach).
 */
static int
check_target(const char *call, const struct sockaddr *sa, socklen_t len, bool remote)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	char dir[PATH_MAX], real[PATH_MAX], *slash;
	size_t n;

	if (sa == NULL || len < sizeof(sa_family_t))
		return 0;
	if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
		if (!is_local(sa))
			return ENETUNREACH;
		if (remote && ip_port(sa) == GUARDED_PORT)
			finding(3, "the daemon reached the guarded loopback port through %s", call);
		return 0;
	}
	if (sa->sa_family != AF_UNIX || len <= offsetof(struct sockaddr_un, sun_path))
		return 0;
	n = len - offsetof(struct sockaddr_un, sun_path);
	if (n > sizeof(path) - 1)
		n = sizeof(path) - 1;
	memcpy(path, ((const struct sockaddr_un *)sa)->sun_path, n);
	path[n] = '\0';
	if (n == 0 || path[0] == '\0')
		return 0; /* autobind, abstract: no file system */
	if (strcmp(path, daemon_state.opt.socket_path) == 0)
		return 0;
	/* The daemon reaches a file it opened through its descriptor (unix_path.c): the
	 * file's own path is what counts. */
	if (strncmp(path, "/proc/self/fd/", 14) == 0) {
		ssize_t k = readlink(path, real, sizeof(real) - 1);
		size_t end;

		if (k <= 0)
			return 0; /* no such descriptor: the call fails by itself */
		real[k] = '\0';
		/* A file removed since it was opened (by an earlier input's close). */
		end = strlen(real);
		if (end > 10 && strcmp(real + end - 10, " (deleted)") == 0)
			real[end - 10] = '\0';
		snprintf(dir, sizeof(dir), "%s", real);
	} else {
		snprintf(dir, sizeof(dir), "%s", path);
	}
	/* The directory the name is created in or looked up in, resolved. */
	slash = strrchr(dir, '/');
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if (realpath(dir, real) == NULL)
		return 0; /* no such directory: the call fails by itself */
	n = strlen(spool);
	if (strncmp(real, spool, n) == 0 && (real[n] == '\0' || real[n] == '/'))
		return 0;
	finding(1, "a Unix socket path escaped the allowed directory: %s", path);
	return EACCES;
}

int
connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	int err = check_target("connect", sa, len, true);

	if (err != 0) {
		errno = err;
		return -1;
	}
	return (int)syscall(SYS_connect, fd, sa, len);
}

int
bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	int err = check_target("bind", sa, len, false);

	if (err != 0) {
		errno = err;
		return -1;
	}
	return (int)syscall(SYS_bind, fd, sa, len);
}

ssize_t
sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *sa, socklen_t len)
{
	int err = check_target("sendto", sa, len, true);

	if (err != 0) {
		errno = err;
		return -1;
	}
	return syscall(SYS_sendto, fd, buf, n, flags, sa, len);
}

ssize_t
sendmsg(int fd, const struct msghdr *msg, int flags)
{
	int err = check_target("sendmsg", msg->msg_name, msg->msg_namelen, true);

	if (err != 0) {
		errno = err;
		return -1;
	}
	return syscall(SYS_sendmsg, fd, msg, flags);
}

/* --- The heap. --- */

size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

/* Bytes libevent holds (its buffers, events, the resolver), counted through
 * event_set_mem_functions(): the rest of the heap is what the daemon's own code holds.
 * (Sizes come from malloc_usable_size, not a header: a header would push libevent's
 * 128 KiB chunks past ASan's largest size class, into an mmap each.) */
static size_t libevent_bytes;

static void *
mm_malloc(size_t n)
{
	void *p = malloc(n);

	if (p != NULL)
		libevent_bytes += malloc_usable_size(p);
	return p;
}

static void *
mm_realloc(void *p, size_t n)
{
	size_t old = p != NULL ? malloc_usable_size(p) : 0;
	void *q = realloc(p, n);

	if (q != NULL)
		libevent_bytes += malloc_usable_size(q) - old;
	return q;
}

static void
mm_free(void *p)
{
	if (p != NULL)
		libevent_bytes -= malloc_usable_size(p);
	free(p);
}

static size_t
heap_in_use(void)
{
	struct mallinfo2 mi;

	if (__sanitizer_get_current_allocated_bytes != NULL)
		return __sanitizer_get_current_allocated_bytes();
	mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

struct heap_mark {
	size_t all, libevent;
};

static struct heap_mark
heap_mark(void)
{
	return (struct heap_mark){heap_in_use(), libevent_bytes};
}

static void
heap_violation(struct sockrpcd *d, int item, const char *what, size_t held, size_t bound,
               bool pre_hello)
{
	finding(item,
	        "the sessions hold more memory than they are charged: %s: %zu bytes held "
	        "by %u sessions%s, bound %zu",
	        what, held, d->n_sessions, pre_hello ? " (some before Hello)" : "", bound);
}

/*
 * Two bounds. The daemon's own heap (all but libevent's) may hold what the sessions are
 * charged (their calls' queued_bytes) plus a small allowance each: a call must be charged
 * what it holds (issue 14, item 11). All of the heap, libevent's buffers included, may hold
 * that plus the bytes in the sessions' buffers and their unused room.
 */
static void
check_heap(struct sockrpcd *d, struct heap_mark base)
{
	struct heap_mark now = heap_mark();
	size_t own, all, own_bound = GLOBAL_ALLOWANCE, all_bound = GLOBAL_ALLOWANCE;
	bool pre_hello = false;
	struct session *s;

	if (now.all == 0)
		return; /* an allocator that does not tell (valgrind's) */
	TAILQ_FOREACH (s, &d->sessions, link) {
		if (s->phase == SESSION_CLOSING || s->phase == SESSION_CLOSED)
			continue; /* freed by the loop's next run */
		if (s->phase == SESSION_HELLO) {
			own_bound += s->queued_bytes + SESSION_OWN_ALLOWANCE;
			all_bound += PRE_HELLO_ALLOWANCE;
			pre_hello = true;
			continue;
		}
		own_bound += s->queued_bytes + SESSION_OWN_ALLOWANCE;
		all_bound += s->queued_bytes + evbuffer_get_length(s->in) +
		             evbuffer_get_length(s->out) + SESSION_ALLOWANCE;
	}
	all = now.all > base.all ? now.all - base.all : 0;
	own = now.all - now.libevent > base.all - base.libevent
	          ? (now.all - now.libevent) - (base.all - base.libevent)
	          : 0;
	if (verbose)
		fprintf(stderr,
		        "heap: %zu bytes held (bound %zu), %zu outside libevent (bound %zu)\n", all,
		        all_bound, own, own_bound);
	if (own > own_bound)
		heap_violation(d, 11, "outside libevent", own, own_bound, pre_hello);
	else if (all > all_bound)
		heap_violation(d, pre_hello ? 8 : 11, "in all", all, all_bound, pre_hello);
}

/*
 * Every session's handle table is in order (binary search finds every handle), holds
 * only its own handles, and only ids the session gave out: the daemon's from 1, the
 * client's from SR_CLIENT_HANDLE_BASE, each once (issue 21: client-chosen ids must never
 * make two handles share an id or a lookup miss one).
 */
static void
check_handle_ids(struct sockrpcd *d)
{
	struct session *s;

	TAILQ_FOREACH (s, &d->sessions, link) {
		for (unsigned i = 0; i < s->n_handles; i++) {
			const struct handle *h = s->handles[i];

			if (h->session != s || !handle_id_used(s, h->id))
				finding(21, "session %llu holds handle %lld it never gave out",
				        (unsigned long long)s->id, (long long)h->id);
			if (i > 0 && s->handles[i - 1]->id >= h->id)
				finding(21, "session %llu's handle table is out of order at %lld",
				        (unsigned long long)s->id, (long long)h->id);
			if (session_find_handle(s, h->id) != h)
				finding(21, "session %llu cannot find its handle %lld",
				        (unsigned long long)s->id, (long long)h->id);
		}
	}
}

/* --- Set-up. --- */

static int
open_fd_count(void)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			n++;
	return n;
}

static struct policy *
parse_policy(const char *text, size_t len)
{
	char err[512];
	struct policy *p;
	FILE *f;

	if (len == 0)
		return NULL;
	f = fmemopen((void *)text, len, "r");
	if (f == NULL)
		fatal("fmemopen");
	p = policy_load_stream(f, "fuzz.policy", err, sizeof(err));
	fclose(f);
	return p;
}

/* The guard rules, then `extra` (len bytes), or the fallback if that does not load. */
static struct policy *
load_policy(const uint8_t *extra, size_t len)
{
	static char text[1024 + 256 + 1];
	size_t g = strlen(guard);
	struct policy *p = NULL;

	memcpy(text, guard, g);
	if (len > 0) {
		memcpy(text + g, extra, len);
		text[g + len] = '\n';
		p = parse_policy(text, g + len + 1);
		if (verbose && p != NULL)
			fprintf(stderr, "policy:\n%.*s\n", (int)(g + len + 1), text);
	}
	if (p == NULL) {
		memcpy(text + g, fallback_policy, sizeof(fallback_policy) - 1);
		p = parse_policy(text, g + sizeof(fallback_policy) - 1);
		if (p == NULL) {
			fprintf(stderr, "fuzz_sessions: the fixed policy does not load\n");
			abort();
		}
	}
	return p;
}

/* As the daemon's apply_limits, capped so that a run cannot exhaust fds. */
static void
apply_limits(struct sockrpcd *d)
{
	const struct policy_limits *pl = policy_limits(d->policy);
	struct daemon_limits *l = &d->opt.limits;

	l->max_sessions = pl->sessions > 0 ? (unsigned)pl->sessions : 16;
	l->max_sessions_per_uid = pl->sessions_per_uid > 0 ? (unsigned)pl->sessions_per_uid : 0;
	l->max_handles = pl->handles_per_session > 0 && pl->handles_per_session < 32
	                     ? (unsigned)pl->handles_per_session
	                     : 32;
	l->max_queued_bytes =
	    pl->queued_bytes > 0 ? (size_t)pl->queued_bytes : DEFAULT_MAX_QUEUED_BYTES;
	if (l->max_queued_bytes < 2 * SR_MAX_FRAME)
		l->max_queued_bytes = 2 * SR_MAX_FRAME;
	/* Past 64 MiB the bound would never bite within one input. */
	if (l->max_queued_bytes > 64u * 1024 * 1024)
		l->max_queued_bytes = 64u * 1024 * 1024;
}

/*
 * FUZZ_DIR (default /tmp/sockrpc-fuzz) holds spool/, where Unix sockets may go, with
 * spool/link leading to secret/ beside it. A fixed place, so that inputs can name it.
 */
static void
make_spool(void)
{
	const char *base = getenv("FUZZ_DIR") ? getenv("FUZZ_DIR") : "/tmp/sockrpc-fuzz";
	char path[PATH_MAX];

	if (strlen(base) > 64) {
		errno = ENAMETOOLONG; /* paths below it must fit a sockaddr_un */
		fatal(base);
	}
	snprintf(spool, sizeof(spool), "%.64s/spool", base);
	if ((mkdir(base, 0755) != 0 && errno != EEXIST) ||
	    (mkdir(spool, 0755) != 0 && errno != EEXIST))
		fatal(spool);
	snprintf(path, sizeof(path), "%.64s/secret", base);
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		fatal(path);
	/* spool/link leads out of the spool: a path through it must not be used. */
	snprintf(path, sizeof(path), "%.64s/spool/link", base);
	if (symlink("../secret", path) != 0 && errno != EEXIST)
		fatal(path);
	if (realpath(spool, path) == NULL || strlen(path) > 80)
		fatal(spool);
	snprintf(spool, sizeof(spool), "%.80s", path);
	snprintf(guard, sizeof(guard),
	         "allow * connect,bind unix %.80s/*\n"
	         "deny * connect,bind,send unix *\n"
	         "deny * connect,send @loopback port %d reason \"the guarded port\"\n",
	         spool, GUARDED_PORT);
}

/* Removes the socket files the last input bound (the daemon leaves them; issue 14), so
 * that every input starts from the same spool. */
static void
clean_spool(void)
{
	char path[PATH_MAX];
	struct dirent *e;
	struct stat st;
	DIR *dir = opendir(spool);

	if (dir == NULL)
		return;
	while ((e = readdir(dir)) != NULL) {
		if (snprintf(path, sizeof(path), "%.80s/%.255s", spool, e->d_name) > 0 &&
		    lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(path);
	}
	closedir(dir);
}

static void
on_probe(evutil_socket_t fd, short what, void *arg)
{
	*(bool *)arg = true;
}

/* The fake clock must reach libevent, or no timer would ever fire. */
static void
check_fake_clock(struct sockrpcd *d)
{
	struct timeval tv = {100, 0};
	bool fired = false;
	struct event *ev = evtimer_new(d->base, on_probe, &fired);

	evtimer_add(ev, &tv);
	fake_ns += 101LL * 1000000000LL;
	event_base_loop(d->base, EVLOOP_NONBLOCK);
	event_free(ev);
	if (!fired) {
		fprintf(stderr, "fuzz_sessions: libevent does not read CLOCK_MONOTONIC_COARSE\n");
		abort();
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sockrpcd *d = &daemon_state;
	char err[256];

	(void)argc;
	(void)argv;
	known_items = getenv("FUZZ_KNOWN");
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	make_spool();
	memset(d, 0, sizeof(*d));
	TAILQ_INIT(&d->sessions);
	d->opt.socket_path = "/nonexistent/sockrpc-fuzz.sock";
	d->opt.socket_mode = -1;
	/* Before libevent allocates anything. */
	event_set_mem_functions(mm_malloc, mm_realloc, mm_free);
	/* One process: the privileged acts are done directly (priv_proxy.c). */
	d->priv_fd = d->priv_notify_fd = -1;
	d->base = event_base_new();
	if (d->base == NULL)
		fatal("event_base_new");
	check_fake_clock(d);
	d->policy = load_policy(NULL, 0);
	apply_limits(d);
	d->audit = audit_open(verbose ? "/dev/stderr" : "/dev/null", err, sizeof(err));
	if (verbose)
		log_verbose = 2;
	if (d->audit == NULL) {
		fprintf(stderr, "audit: %s\n", err);
		abort();
	}
	/* No name servers, only the hosts file: names never leave the machine. */
	d->dns = resolve_base_new(d->base, "/dev/null", "/etc/hosts");
	if (d->dns == NULL)
		fatal("resolver");
	ops_install(d);
	if (relay_pipe_open(&d->relay) != 0)
		fatal("relay pipe");
	signal(SIGPIPE, SIG_IGN); /* as sockrpcd does */
	fds_at_start = open_fd_count();
	return 0;
}

/* --- One input. --- */

struct input {
	const uint8_t *p;
	size_t left;
};

static int
take(struct input *in)
{
	if (in->left == 0)
		return -1;
	in->left--;
	return *in->p++;
}

static size_t
take_bytes(struct input *in, size_t n, const uint8_t **out)
{
	if (n > in->left)
		n = in->left;
	*out = in->p;
	in->p += n;
	in->left -= n;
	return n;
}

/* Runs the loop without blocking: every ready callback, the deferred releases and what
 * they schedule. A run must not block (the daemon has one thread). */
static void
run_loop(struct sockrpcd *d, int rounds)
{
	for (int i = 0; i < rounds; i++) {
		struct timespec a, b;
		long ms;

		clock_gettime(CLOCK_MONOTONIC, &a);
		event_base_loop(d->base, EVLOOP_NONBLOCK);
		clock_gettime(CLOCK_MONOTONIC, &b);
		ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
		if (ms > LOOP_BLOCK_MS)
			finding(7, "one run of the loop blocked for %ld ms", ms);
	}
}

/* Reads and drops what the daemon wrote to a reading client, keeping a reply channel. */
static void
drain(struct client *c)
{
	static char buf[65536];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} control;
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr msg;
	struct cmsghdr *cm;

	if (c->fd < 0 || !c->reading)
		return;
	for (;;) {
		msg = (struct msghdr){.msg_iov = &iov,
		                      .msg_iovlen = 1,
		                      .msg_control = control.buf,
		                      .msg_controllen = sizeof(control.buf)};
		if (recvmsg(c->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) <= 0)
			break;
		for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
			int *fds = (int *)CMSG_DATA(cm);
			size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
				continue;
			for (size_t i = 0; i < n; i++) {
				int passed;

				memcpy(&passed, fds + i, sizeof(int));
				if (c->channel == -1)
					c->channel = passed;
				else
					close(passed);
			}
		}
	}
	while (c->channel != -1 && recv(c->channel, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

static void
step(struct sockrpcd *d, struct client *cl, int n, int rounds)
{
	run_loop(d, rounds);
	for (int i = 0; i < n; i++)
		drain(&cl[i]);
}

/* Writes as much of data as the session takes; one that stops reading ends it. */
static void
feed(struct sockrpcd *d, struct client *cl, int n, struct client *c, const uint8_t *data,
     size_t size)
{
	size_t off = 0;

	if (c->fd < 0)
		return;
	if (size > MAX_STREAM - c->written)
		size = MAX_STREAM - c->written;
	for (int stuck = 0; off < size && stuck < 3;) {
		ssize_t w = send(c->fd, data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w > 0) {
			off += (size_t)w;
			stuck = 0;
		} else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			break; /* the session closed */
		} else {
			stuck++;
		}
		step(d, cl, n, 2);
	}
	c->written += off;
}

static size_t
hello_frame(uint8_t *out, bool reply_channel)
{
	Sockrpc__HelloRequest hello = SOCKRPC__HELLO_REQUEST__INIT;
	struct sr_frame_header h = {.method = SOCKRPC_HELLO_METHOD, .call_id = 1};

	hello.major = SR_PROTOCOL_MAJOR;
	hello.client_name = (char *)"fuzz";
	hello.reply_channel = reply_channel;
	h.length = (uint32_t)protobuf_c_message_pack(&hello.base, out + SR_FRAME_HEADER_SIZE);
	frame_header_encode(&h, out);
	return SR_FRAME_HEADER_SIZE + h.length;
}

static void
hang_up(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	if (c->channel >= 0)
		close(c->channel);
	c->fd = c->channel = -1;
}

static void
start_session(struct sockrpcd *d, struct client *c, int who, int how)
{
	struct identity peer;
	uint8_t hello[64];
	size_t len;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
		fatal("socketpair");
	memset(&peer, 0, sizeof(peer));
	peer.uid = uids[who & 3];
	peer.gid = gids[(who >> 2) & 3];
	peer.pid = getpid();
	snprintf(peer.exe, sizeof(peer.exe), "%s", exes[(who >> 4) & 3]);
	snprintf(peer.cgroup, sizeof(peer.cgroup), "%s", cgroups[(who >> 6) & 3]);
	peer.n_groups = (how >> 3) & 3;
	for (int i = 0; i < peer.n_groups; i++)
		peer.groups[i] = gids[(who + i + 1) & 3];
	*c = (struct client){.fd = sv[1], .channel = -1, .reading = !(how & 4), .call_id = 1};
	if (session_new(d, sv[0], &peer) == NULL)
		fatal("session_new");
	if (how & 1) {
		len = hello_frame(hello, how & 2);
		if (send(c->fd, hello, len, MSG_NOSIGNAL) != (ssize_t)len)
			fatal("send hello");
	}
}

/* Puts a frame header before the len bytes at out + SR_FRAME_HEADER_SIZE: method (a
 * byte, so also unknown ones), the client's next call id. Returns the frame's size. */
static size_t
frame(uint8_t *out, struct client *c, int method, size_t len)
{
	struct sr_frame_header h = {.method = (uint16_t)(method < 0 ? 0 : method),
	                            .call_id = ++c->call_id,
	                            .length = (uint32_t)len};

	frame_header_encode(&h, out);
	return SR_FRAME_HEADER_SIZE + len;
}

/* The bytes of a REPEAT op, repeated into one buffer. */
static size_t
repeat(uint8_t *out, size_t cap, const uint8_t *unit, size_t n, size_t count)
{
	size_t len = 0;

	if (n == 0)
		return 0;
	for (size_t i = 0; i < count && len + n <= cap; i++, len += n)
		memcpy(out + len, unit, n);
	return len;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t big[SR_FRAME_HEADER_SIZE + MAX_BODY];
	uint8_t *body = big + SR_FRAME_HEADER_SIZE;
	struct sockrpcd *d = &daemon_state;
	struct input in = {data, size};
	struct client cl[MAX_SESSIONS];
	struct policy *fallback = d->policy;
	const uint8_t *bytes;
	struct heap_mark heap_base;
	size_t len, count, unit;
	int config, n, op, method;
	bool framed;

	if ((config = take(&in)) < 0)
		return 0;
	clean_spool();
	n = (config & 3) + 1;
	if (config & 4) {
		int plen = take(&in);

		len = take_bytes(&in, plen > 0 ? (size_t)plen : 0, &bytes);
		d->policy = load_policy(bytes, len);
		apply_limits(d);
	}
	/* Measured after the policy: the policy is the daemon's, not a session's. */
	heap_base = heap_mark();
	for (int i = 0; i < n; i++) {
		int who = take(&in), how = take(&in);

		start_session(d, &cl[i], who < 0 ? 0 : who, how < 0 ? 1 : how);
	}
	step(d, cl, n, 2);
	while ((op = take(&in)) >= 0) {
		struct client *c = &cl[(op & 3) % n];
		int a, b;

		framed = op & 0x20;
		switch ((op >> 2) & 7) {
		case 0:
		case 1:
			method = framed ? take(&in) : -1;
			if ((op >> 2 & 7) == 0) {
				a = take(&in);
			} else {
				a = take(&in), b = take(&in);
				a = ((a & 0xff) << 8) | (b & 0xff);
			}
			len = take_bytes(&in, (size_t)(a < 0 ? 0 : a), &bytes);
			if (framed) {
				memcpy(body, bytes, len);
				len = frame(big, c, method, len);
				bytes = big;
			}
			feed(d, cl, n, c, bytes, len);
			break;
		case 2:
			method = framed ? take(&in) : -1;
			len = 0;
			if (framed) {
				len = take_bytes(&in, (size_t)(take(&in) & 0xff), &bytes);
				memcpy(body, bytes, len);
			}
			a = take(&in), b = take(&in);
			count = (size_t)(((a & 0xff) << 8) | (b & 0xff));
			unit = take_bytes(&in, (size_t)(take(&in) & 0xff), &bytes);
			len += repeat(body + len, (framed ? MAX_BODY : MAX_RAW_REPEAT) - len, bytes,
			              unit, count);
			if (framed)
				len = frame(big, c, method, len);
			feed(d, cl, n, c, framed ? big : body, len);
			break;
		case 3:
			step(d, cl, n, 4);
			break;
		case 4:
			fake_ns += (long long)((take(&in) & 0xff) + 1) * 128 * 1000000LL;
			step(d, cl, n, 3);
			break;
		case 5:
			c->reading = !c->reading;
			step(d, cl, n, 2);
			break;
		case 6:
			hang_up(c);
			step(d, cl, n, 2);
			break;
		case 7:
			if (c->fd >= 0)
				shutdown(c->fd, SHUT_WR);
			step(d, cl, n, 2);
			break;
		}
		check_heap(d, heap_base);
		check_handle_ids(d);
	}
	step(d, cl, n, 3);
	check_heap(d, heap_base);
	check_handle_ids(d);
	for (int i = 0; i < n; i++)
		hang_up(&cl[i]);
	run_loop(d, 4);
	if (d->n_sessions != 0)
		finding(9, "a session outlived its client");
	/* Known: close them, so that the next input starts clean. */
	while (!TAILQ_EMPTY(&d->sessions))
		session_close(TAILQ_FIRST(&d->sessions), "fuzz: left over");
	run_loop(d, 1);
	if (d->policy != fallback) {
		policy_free(d->policy);
		d->policy = fallback;
		apply_limits(d);
	}
	/* A leak per session would grow without end; checked every so often, as counting
	 * costs a thousand system calls. */
	if (++runs % 256 == 0 && open_fd_count() > fds_at_start + LAZY_FDS)
		finding(9, "sessions leak fds: %d open, %d at start", open_fd_count(),
		        fds_at_start);
	return 0;
}
