/*
 * audit.c - writes the audit trail: one JSON object per line, per policy decision and per
 * handle closed, to a file opened O_APPEND or to stderr. Each line is built in memory and
 * written with one write(2), so lines from one daemon never interleave. Writing never
 * fails the caller: errors are counted and reported once on stderr.
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

#include "audit.h"

/* One line: identity, target and reason are each bounded (exe 256, Unix path 108, reason
 * 200, name ~255), and escaping can grow a byte to six; 8 KiB holds the worst case. */
#define AUDIT_LINE_MAX 8192

struct audit {
	char *path; /* NULL: stderr */
	int fd;
	uint64_t write_errors;
	bool reported;
};

struct line {
	char buf[AUDIT_LINE_MAX];
	size_t len;
	bool overflow;
	uint64_t session;
};

static void line_add(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line_start(struct line *l, const char *event, uint64_t session);
static void line_string(struct line *l, const char *key, const char *s, size_t n);
static void line_cstring(struct line *l, const char *key, const char *s);
static void line_finish(struct audit *a, struct line *l);

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

int
audit_reopen(struct audit *a)
{
	int fd;

	if (a->path == NULL)
		return 0;
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

void
audit_tls_refused(struct audit *a, const char *peer_address, const char *reason)
{
	struct line l;

	if (a == NULL)
		return;
	line_start(&l, "tls-refused", 0);
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
	line_start(&l, "decision", session);
	if (rq->who != NULL && rq->who->transport == IDENTITY_TLS) {
		line_who_tls(&l, rq->who);
	} else if (rq->who != NULL) {
		line_cstring(&l, "transport", "unix");
		line_add(&l, ",\"uid\":%u,\"gid\":%u,\"pid\":%d", (unsigned)rq->who->uid,
		         (unsigned)rq->who->gid, (int)rq->who->pid);
		if (rq->who->exe[0] == '\0')
			line_add(&l, ",\"exe\":null"); /* unknown, as the docs say */
		else
			line_string(&l, "exe", rq->who->exe,
			            strnlen(rq->who->exe, sizeof(rq->who->exe)));
	} else {
		line_add(&l, ",\"uid\":null,\"gid\":null,\"pid\":null,\"exe\":null");
	}
	line_cstring(&l, "op", policy_op_name(rq->op));
	line_cstring(&l, "family", policy_family_name(rq->family, fam, sizeof(fam)));
	line_cstring(&l, "type", policy_type_name(rq->type, type, sizeof(type)));
	if (policy_format_addr(rq->addr, rq->addr_len, addr, sizeof(addr), &port) == 0)
		line_cstring(&l, "address", addr);
	else
		line_add(&l, ",\"address\":null");
	if (port >= 0)
		line_add(&l, ",\"port\":%d", port);
	else
		line_add(&l, ",\"port\":null");
	line_cstring(&l, "name", rq->name);
	if (rq->op == POLICY_OPTION)
		line_add(&l, ",\"option\":%d", rq->option);
	line_cstring(&l, "decision", d->allow ? "allow" : "deny");
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
	line_start(&l, "close", session);
	if (who != NULL && who->transport == IDENTITY_TLS)
		line_who_tls(&l, who);
	else if (who != NULL)
		line_add(&l, ",\"uid\":%u", (unsigned)who->uid);
	else
		line_add(&l, ",\"uid\":null");
	line_add(&l, ",\"handle\":%" PRId64 ",\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64,
	         handle, bytes_in, bytes_out);
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

/* {"time":"2024-05-01T12:00:00.123Z","event":...,"session":N */
static void
line_start(struct line *l, const char *event, uint64_t session)
{
	struct timespec ts;
	struct tm tm;
	char when[32];

	l->len = 0;
	l->overflow = false;
	l->session = session;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	line_add(l, "{\"time\":\"%s.%03ldZ\",\"event\":\"%s\",\"session\":%" PRIu64, when,
	         ts.tv_nsec / 1000000, event, session);
}

static void
line_cstring(struct line *l, const char *key, const char *s)
{
	if (s == NULL)
		line_add(l, ",\"%s\":null", key);
	else
		line_string(l, key, s, strlen(s));
}

/* A JSON string. Bytes that are not valid UTF-8 (a path may hold any byte) are written as
 * the six characters \\xNN, so the line stays valid JSON and the byte stays visible. */
static void
line_string(struct line *l, const char *key, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	line_add(l, ",\"%s\":\"", key);
	while (i < n && !l->overflow) {
		unsigned char c = p[i];
		size_t seq = 0;

		if (c == '"' || c == '\\') {
			line_add(l, "\\%c", c);
		} else if (c == '\n') {
			line_add(l, "\\n");
		} else if (c == '\t') {
			line_add(l, "\\t");
		} else if (c == '\r') {
			line_add(l, "\\r");
		} else if (c < 0x20 || c == 0x7f) {
			line_add(l, "\\u%04x", c);
		} else if (c < 0x80) {
			line_add(l, "%c", c);
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
				line_add(l, "%.*s", (int)seq, (const char *)p + i);
				i += seq;
				continue;
			}
		}
		i++;
	}
	line_add(l, "\"");
}

/* Closes the object and writes the line with one write(2). A line that did not fit is
 * replaced by a short valid one rather than cut in the middle of a string. */
static void
line_finish(struct audit *a, struct line *l)
{
	ssize_t n;

	line_add(l, "}\n");
	if (l->overflow) {
		struct line short_line;

		line_start(&short_line, "truncated", l->session);
		line_add(&short_line, "}\n");
		*l = short_line;
	}
	do
		n = write(a->fd, l->buf, l->len);
	while (n == -1 && errno == EINTR);
	if (n == (ssize_t)l->len)
		return;
	a->write_errors++;
	if (!a->reported) {
		a->reported = true;
		fprintf(stderr, "sockrpcd: audit: write to %s failed: %s\n",
		        a->path != NULL ? a->path : "stderr",
		        n == -1 ? strerror(errno) : "short write");
	}
}
