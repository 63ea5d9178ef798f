/*
 * audit.c - writes the audit trail: one JSON object per line, per policy decision and per
 * handle closed, to a file opened O_APPEND or to stderr. Each line is built in memory and
 * written whole, so lines from one daemon never interleave. Writing never fails the
 * caller: errors are counted and reported once on stderr.
 *
 * Buffered (audit_buffer, the daemon's loop): lines collect in memory and go out in one
 * write(2) when AUDIT_FLUSH_MS have passed since the first, when the buffer is full, before
 * the file is reopened (SIGHUP) and when the daemon exits; a connection then costs no
 * write of its own. Only a crash or SIGKILL loses lines: at most AUDIT_FLUSH_MS of them.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "audit.h"

/* One line: identity, target and reason are each bounded (exe and claimed exe 256, Unix path 108,
 * reason 200, name ~255), and escaping can grow a byte to six; 8 KiB holds the worst case. */
#define AUDIT_LINE_MAX 8192
/* How long a buffered line may wait, and how much may wait: a write per 100 ms is nothing,
 * and an operator tailing the log sees a decision at once as far as a person can tell. */
#define AUDIT_FLUSH_MS 100
#define AUDIT_BUFFER (64 * 1024)

struct audit {
	char *path; /* NULL: stderr */
	int fd;
	uint64_t write_errors;
	bool reported;
	struct event *flush_timer; /* buffered: armed while lines wait; else NULL */
	char *buf;                 /* buffered lines, AUDIT_BUFFER bytes */
	size_t len;
	unsigned lines; /* in buf */
	/* The last second formatted for a line's time (strftime costs more than the rest of
	 * a line's formatting): "2024-05-01T12:00:00". */
	time_t when_sec;
	char when[32];
	/* The last Unix peer's part of a decision line (transport to claimed_exe), with what
	 * it was made from: a session's decisions repeat it, and escaping the paths again
	 * cost more than the rest of the line. Compared field by field, never by pointer. */
	struct {
		uid_t uid;
		gid_t gid;
		pid_t pid;
		char exe[sizeof(((struct identity *)0)->exe)];
		char claimed_exe[sizeof(((struct identity *)0)->claimed_exe)];
		size_t len; /* 0: empty */
		char text[1400];
	} who;
};

struct line {
	char buf[AUDIT_LINE_MAX];
	size_t len;
	bool overflow;
	uint64_t session;
};

static void line_add(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line_put(struct line *l, const char *s, size_t n);
static void line_key(struct line *l, const char *key);
static void line_int(struct line *l, const char *key, int64_t v);
/* Appends a string literal. */
#define LINE_LIT(l, s) line_put((l), (s), sizeof(s) - 1)
static void line_uint(struct line *l, const char *key, uint64_t v);
static void line_start(struct audit *a, struct line *l, const char *event, uint64_t session);
static void line_string(struct line *l, const char *key, const char *s, size_t n);
static void line_cstring(struct line *l, const char *key, const char *s);
static void line_word(struct line *l, const char *key, const char *s);
static void line_finish(struct audit *a, struct line *l);
static void write_out(struct audit *a, const char *buf, size_t len, unsigned lines);
static void on_flush_due(evutil_socket_t fd, short what, void *arg);

struct audit *
audit_open(const char *path, char *err, size_t err_len)
{
	struct audit *a;

	if ((a = calloc(1, sizeof(*a))) == NULL) {
		snprintf(err, err_len, "audit: out of memory");
		return NULL;
	}
	a->fd = -1;
	if (path == NULL) {
		a->fd = STDERR_FILENO;
		return a;
	}
	if ((a->path = strdup(path)) == NULL) {
		snprintf(err, err_len, "audit: out of memory");
		goto fail;
	}
	if ((a->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)) == -1) {
		snprintf(err, err_len, "audit: %s: %s", path, strerror(errno));
		goto fail;
	}
	return a;
fail:
	audit_free(a);
	return NULL;
}

/*
 * Buffers lines from now on, flushed from base's loop (see the top of the file). Returns 0,
 * or -1 if it cannot (out of memory): lines are then written one by one, as before.
 */
int
audit_buffer(struct audit *a, struct event_base *base)
{
	if (a->flush_timer != NULL)
		return 0;
	if ((a->buf = malloc(AUDIT_BUFFER)) == NULL)
		return -1;
	if ((a->flush_timer = evtimer_new(base, on_flush_due, a)) == NULL) {
		free(a->buf);
		a->buf = NULL;
		return -1;
	}
	return 0;
}

/* Writes the lines that wait, now. */
void
audit_flush(struct audit *a)
{
	if (a == NULL || a->len == 0)
		return;
	write_out(a, a->buf, a->len, a->lines);
	a->len = 0;
	a->lines = 0;
	evtimer_del(a->flush_timer);
}

/* Flushes and writes each line at once from now on; before the loop that flushes is freed. */
void
audit_unbuffer(struct audit *a)
{
	if (a == NULL || a->flush_timer == NULL)
		return;
	audit_flush(a);
	event_free(a->flush_timer);
	a->flush_timer = NULL;
	free(a->buf);
	a->buf = NULL;
}

int
audit_reopen(struct audit *a)
{
	int fd;

	if (a->path == NULL)
		return 0;
	audit_flush(a); /* what was decided before goes to the file it was meant for */
	if ((fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)) == -1)
		return -errno;
	if (a->fd != -1)
		close(a->fd);
	a->fd = fd;
	a->reported = false;
	return 0;
}

void
audit_reopen_fd(struct audit *a, int fd)
{
	if (a->path == NULL) {
		close(fd);
		return;
	}
	audit_flush(a);
	if (a->fd != -1)
		close(a->fd);
	a->fd = fd;
	a->reported = false;
}

/* A TLS peer: "transport":"tls", its address, its principal (the first of its names, as
 * principal= tries them) and its key hash. */
static void
line_who_tls(struct line *l, const struct identity *who)
{
	char hex[2 * sizeof(who->spki_sha256) + 8] = "sha256:";

	for (size_t i = 0; i < sizeof(who->spki_sha256); i++)
		snprintf(hex + 7 + 2 * i, 3, "%02x", who->spki_sha256[i]);
	line_cstring(l, "transport", "tls");
	line_string(l, "peer", who->peer_address,
	            strnlen(who->peer_address, sizeof(who->peer_address)));
	if (who->n_principals > 0)
		line_string(l, "principal", who->principals[0],
		            strnlen(who->principals[0], IDENTITY_PRINCIPAL_MAX));
	else
		line_add(l, ",\"principal\":null");
	line_cstring(l, "spki", hex);
}

/* Said by the client (a launcher's Hello), never verified. */
static void
line_claimed_exe(struct line *l, const struct identity *who)
{
	if (who == NULL || who->claimed_exe[0] == '\0')
		LINE_LIT(l, ",\"claimed_exe\":null");
	else
		line_string(l, "claimed_exe", who->claimed_exe,
		            strnlen(who->claimed_exe, sizeof(who->claimed_exe)));
}

/* A Unix peer: transport, uid, gid, pid, exe and claimed_exe, from a.who when it was made
 * from the same values. */
static void
line_who_unix(struct audit *a, struct line *l, const struct identity *who)
{
	size_t start = l->len;

	if (a->who.len > 0 && a->who.uid == who->uid && a->who.gid == who->gid &&
	    a->who.pid == who->pid && strncmp(a->who.exe, who->exe, sizeof(who->exe)) == 0 &&
	    strncmp(a->who.claimed_exe, who->claimed_exe, sizeof(who->claimed_exe)) == 0) {
		line_put(l, a->who.text, a->who.len);
		return;
	}
	line_word(l, "transport", "unix");
	line_uint(l, "uid", (unsigned)who->uid);
	line_uint(l, "gid", (unsigned)who->gid);
	line_int(l, "pid", (int)who->pid);
	if (who->exe[0] == '\0')
		LINE_LIT(l, ",\"exe\":null"); /* unknown, as the docs say */
	else
		line_string(l, "exe", who->exe, strnlen(who->exe, sizeof(who->exe)));
	line_claimed_exe(l, who);
	a->who.len = 0;
	if (l->overflow || l->len - start > sizeof(a->who.text))
		return;
	a->who.uid = who->uid;
	a->who.gid = who->gid;
	a->who.pid = who->pid;
	memcpy(a->who.exe, who->exe, sizeof(who->exe));
	memcpy(a->who.claimed_exe, who->claimed_exe, sizeof(who->claimed_exe));
	memcpy(a->who.text, l->buf + start, l->len - start);
	a->who.len = l->len - start;
}

void
audit_tls_refused(struct audit *a, const char *peer_address, const char *reason)
{
	struct line l;

	if (a == NULL)
		return;
	line_start(a, &l, "tls-refused", 0);
	line_cstring(&l, "transport", "tls");
	line_cstring(&l, "peer", peer_address);
	line_cstring(&l, "reason", reason);
	line_finish(a, &l);
}

void
audit_decision(struct audit *a, uint64_t session, const struct policy_request *rq,
               const struct policy_decision *d)
{
	struct line l;
	char fam[16], type[16], addr[256];
	int port = -1;

	if (a == NULL)
		return;
	line_start(a, &l, "decision", session);
	if (rq->who != NULL && rq->who->transport != IDENTITY_TLS) {
		line_who_unix(a, &l, rq->who);
	} else {
		if (rq->who != NULL)
			line_who_tls(&l, rq->who);
		else
			line_add(&l, ",\"uid\":null,\"gid\":null,\"pid\":null,\"exe\":null");
		line_claimed_exe(&l, rq->who);
	}
	line_word(&l, "op", policy_op_name(rq->op));
	line_word(&l, "family", policy_family_name(rq->family, fam, sizeof(fam)));
	line_word(&l, "type", policy_type_name(rq->type, type, sizeof(type)));
	if (policy_format_addr(rq->addr, rq->addr_len, addr, sizeof(addr), &port) == 0)
		line_cstring(&l, "address", addr);
	else
		LINE_LIT(&l, ",\"address\":null");
	if (port >= 0)
		line_int(&l, "port", port);
	else
		LINE_LIT(&l, ",\"port\":null");
	line_cstring(&l, "name", rq->name);
	if (rq->op == POLICY_OPTION) {
		line_add(&l, ",\"option\":%d", rq->option);
		line_cstring(&l, "option_name", policy_option_name(rq->option));
	}
	line_word(&l, "decision", d->allow ? "allow" : "deny");
	line_string(&l, "rule", d->rule, strnlen(d->rule, sizeof(d->rule)));
	line_string(&l, "reason", d->reason, strnlen(d->reason, sizeof(d->reason)));
	line_finish(a, &l);
}

void
audit_handle_closed(struct audit *a, uint64_t session, const struct identity *who, int64_t handle,
                    uint64_t bytes_in, uint64_t bytes_out, const char *reason)
{
	struct line l;

	if (a == NULL)
		return;
	line_start(a, &l, "close", session);
	if (who != NULL && who->transport == IDENTITY_TLS)
		line_who_tls(&l, who);
	else if (who != NULL)
		line_uint(&l, "uid", (unsigned)who->uid);
	else
		LINE_LIT(&l, ",\"uid\":null");
	line_int(&l, "handle", handle);
	line_uint(&l, "bytes_in", bytes_in);
	line_uint(&l, "bytes_out", bytes_out);
	line_cstring(&l, "reason", reason);
	line_finish(a, &l);
}

void
audit_handback(struct audit *a, uint64_t session, const struct identity *who, int64_t handle,
               const char *address, int port, uint64_t cookie, bool allowed, const char *reason)
{
	struct line l;

	if (a == NULL)
		return;
	line_start(a, &l, "handback", session);
	if (who != NULL)
		line_uint(&l, "uid", (unsigned)who->uid);
	else
		LINE_LIT(&l, ",\"uid\":null");
	line_int(&l, "handle", handle);
	line_cstring(&l, "address", address);
	line_int(&l, "port", port);
	if (cookie != 0)
		line_uint(&l, "cookie", cookie);
	else
		LINE_LIT(&l, ",\"cookie\":null");
	line_word(&l, "decision", allowed ? "allow" : "deny");
	line_cstring(&l, "reason", reason);
	line_finish(a, &l);
}

uint64_t
audit_write_errors(const struct audit *a)
{
	return a->write_errors;
}

void
audit_free(struct audit *a)
{
	if (a == NULL)
		return;
	audit_unbuffer(a);
	if (a->path != NULL && a->fd != -1)
		close(a->fd);
	free(a->path);
	free(a);
}

static void
line_add(struct line *l, const char *fmt, ...)
{
	va_list ap;
	size_t room = sizeof(l->buf) - l->len;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(l->buf + l->len, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room) {
		l->overflow = true;
		return;
	}
	l->len += n;
}

/* Appends n bytes as they are (the hot path: no format to parse). */
static void
line_put(struct line *l, const char *s, size_t n)
{
	if (l->overflow || n >= sizeof(l->buf) - l->len) {
		l->overflow = true;
		return;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	l->buf[l->len] = '\0';
}

/* ,"key": (every field starts so). */
static void
line_key(struct line *l, const char *key)
{
	LINE_LIT(l, ",\"");
	line_put(l, key, strlen(key));
	LINE_LIT(l, "\":");
}

/* ,"key":v in decimal, without a format to parse (every line has a few); a minus sign
 * before the digits when negative. */
static void
line_number(struct line *l, const char *key, bool negative, uint64_t v)
{
	char buf[24];
	size_t i = sizeof(buf);

	do
		buf[--i] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	if (negative)
		buf[--i] = '-';
	line_key(l, key);
	line_put(l, buf + i, sizeof(buf) - i);
}

static void
line_uint(struct line *l, const char *key, uint64_t v)
{
	line_number(l, key, false, v);
}

static void
line_int(struct line *l, const char *key, int64_t v)
{
	line_number(l, key, v < 0, v < 0 ? -(uint64_t)v : (uint64_t)v);
}

/* {"time":"2024-05-01T12:00:00.123Z","event":...,"session":N */
static void
line_start(struct audit *a, struct line *l, const char *event, uint64_t session)
{
	struct timespec ts;
	struct tm tm;

	l->len = 0;
	l->overflow = false;
	l->session = session;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (a->when[0] == '\0' || ts.tv_sec != a->when_sec) {
		gmtime_r(&ts.tv_sec, &tm);
		strftime(a->when, sizeof(a->when), "%Y-%m-%dT%H:%M:%S", &tm);
		a->when_sec = ts.tv_sec;
	}
	{
		long ms = ts.tv_nsec / 1000000;
		char frac[] = {'.',
		               (char)('0' + ms / 100),
		               (char)('0' + ms / 10 % 10),
		               (char)('0' + ms % 10),
		               'Z',
		               '"'};

		LINE_LIT(l, "{\"time\":\"");
		line_put(l, a->when, strlen(a->when));
		line_put(l, frac, sizeof(frac));
		LINE_LIT(l, ",\"event\":\"");
		line_put(l, event, strlen(event));
		LINE_LIT(l, "\"");
		line_uint(l, "session", session);
	}
}

static void
line_cstring(struct line *l, const char *key, const char *s)
{
	if (s != NULL) {
		line_string(l, key, s, strlen(s));
		return;
	}
	line_key(l, key);
	LINE_LIT(l, "null");
}

/* ,"key":"s" for s the daemon's own words (a name from a table), which need no escaping. */
static void
line_word(struct line *l, const char *key, const char *s)
{
	line_key(l, key);
	LINE_LIT(l, "\"");
	line_put(l, s, strlen(s));
	LINE_LIT(l, "\"");
}

/* Printable ASCII but '"' and '\\': written as they are. */
static const bool plain_ascii[256] = {
    [' '] = true,
    ['!'] = true,
    ['#' ... '['] = true,
    [']' ... '~'] = true,
};

/* A JSON string. Bytes that are not valid UTF-8 (a path may hold any byte) are written as
 * the six characters \\xNN, so the line stays valid JSON and the byte stays visible. */
static void
line_string(struct line *l, const char *key, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	line_key(l, key);
	LINE_LIT(l, "\"");
	while (i < n && !l->overflow) {
		unsigned char c = p[i];
		size_t seq = 0, run;

		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};

			line_put(l, esc, 2);
		} else if (c == '\n') {
			LINE_LIT(l, "\\n");
		} else if (c == '\t') {
			LINE_LIT(l, "\\t");
		} else if (c == '\r') {
			LINE_LIT(l, "\\r");
		} else if (c < 0x20 || c == 0x7f) {
			line_add(l, "\\u%04x", c);
		} else if (c < 0x80) {
			/* A run of plain ASCII goes in at once. */
			for (run = 1; i + run < n && plain_ascii[p[i + run]]; run++)
				;
			line_put(l, (const char *)p + i, run);
			i += run;
			continue;
		} else {
			/* Length of a valid UTF-8 sequence starting here, 0 if invalid. */
			if (c >= 0xc2 && c <= 0xdf)
				seq = 2;
			else if (c >= 0xe0 && c <= 0xef)
				seq = 3;
			else if (c >= 0xf0 && c <= 0xf4)
				seq = 4;
			if (seq > 0 && i + seq <= n) {
				for (size_t k = 1; k < seq; k++)
					if ((p[i + k] & 0xc0) != 0x80)
						seq = 0;
				/* Overlongs, surrogates and past U+10FFFF. */
				if ((c == 0xe0 && p[i + 1] < 0xa0) ||
				    (c == 0xed && p[i + 1] > 0x9f) ||
				    (c == 0xf0 && p[i + 1] < 0x90) ||
				    (c == 0xf4 && p[i + 1] > 0x8f))
					seq = 0;
			} else {
				seq = 0;
			}
			if (seq == 0) {
				line_add(l, "\\\\x%02x", c);
			} else {
				line_put(l, (const char *)p + i, seq);
				i += seq;
				continue;
			}
		}
		i++;
	}
	LINE_LIT(l, "\"");
}

/* Closes the object and writes the line, or buffers it. A line that did not fit is
 * replaced by a short valid one rather than cut in the middle of a string. */
static void
line_finish(struct audit *a, struct line *l)
{
	struct timeval tv = {AUDIT_FLUSH_MS / 1000, (AUDIT_FLUSH_MS % 1000) * 1000};

	LINE_LIT(l, "}\n");
	if (l->overflow) {
		struct line short_line;

		line_start(a, &short_line, "truncated", l->session);
		line_add(&short_line, "}\n");
		*l = short_line;
	}
	if (a->flush_timer == NULL) {
		write_out(a, l->buf, l->len, 1);
		return;
	}
	if (a->len + l->len > AUDIT_BUFFER)
		audit_flush(a);
	memcpy(a->buf + a->len, l->buf, l->len);
	a->len += l->len;
	a->lines++;
	if (!evtimer_pending(a->flush_timer, NULL))
		evtimer_add(a->flush_timer, &tv);
}

static void
on_flush_due(evutil_socket_t fd, short what, void *arg)
{
	audit_flush(arg);
}

/* Writes whole lines with one write(2) (a short write to a file is an error: the disk is
 * full); counts the lines lost. */
static void
write_out(struct audit *a, const char *buf, size_t len, unsigned lines)
{
	ssize_t n;

	do
		n = write(a->fd, buf, len);
	while (n == -1 && errno == EINTR);
	if (n == (ssize_t)len)
		return;
	a->write_errors += lines;
	if (!a->reported) {
		a->reported = true;
		fprintf(stderr, "sockrpcd: audit: write to %s failed: %s\n",
		        a->path != NULL ? a->path : "stderr",
		        n == -1 ? strerror(errno) : "short write");
	}
}
