/*
 * errors.c - sr_error values: the text of each code, filling an error from a
 * format or from a reply's Status, and errno names. Never prints.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const char *const code_texts[] = {
    [SR_OK] = "success",
    [SR_EINVAL] = "invalid argument",
    [SR_EBADHANDLE] = "no such handle",
    [SR_EDENIED] = "denied by policy",
    [SR_ETIMEDOUT] = "timed out",
    [SR_EWOULDBLOCK] = "operation would block",
    [SR_ECLOSED] = "socket is closed",
    [SR_EOS] = "operating-system error",
    [SR_EUNSUPPORTED] = "not supported",
    [SR_ELIMIT] = "limit reached",
    [SR_EPROTO] = "protocol error",
    [SR_EDAEMON] = "daemon unreachable",
    [SR_ESTATE] = "socket is in an illegal state",
};

const char *
sr_strerror(int code)
{
	if (code < 0 || (size_t)code >= sizeof(code_texts) / sizeof(code_texts[0]))
		return "unknown error";
	return code_texts[code];
}

/* Fills *err (if err is not NULL); the message is truncated to fit. */
void
cl_seterr(sr_error *err, int code, int sys_errno, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	err->code = code;
	err->sys_errno = sys_errno;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

/* errno values are small on every libc we know; a daemon's number beyond is none. */
#define ERRNO_MAX 4096

/*
 * From a reply's Status. The daemon runs on this host, so its errno number is
 * ours; the name is preferred all the same when this libc knows it, so that a
 * daemon built against another libc cannot confuse us. A code this library does
 * not know (a newer or hostile daemon) is reported as SR_EPROTO, so that a caller
 * only ever sees codes of sockrpc.h.
 */
void
cl_seterr_status(sr_error *err, const Sockrpc__Status *st)
{
	const char *text;
	int code, number, sys_errno;

	if (err == NULL || st == NULL)
		return;
	code = (int)st->code;
	number = st->errno_number;
	if (number < 0 || number >= ERRNO_MAX)
		number = 0;
	sys_errno = cl_errno_from_name(st->errno_name, number);
	text = st->message != NULL && st->message[0] != '\0' ? st->message : NULL;
	if (code <= SR_OK || (size_t)code >= sizeof(code_texts) / sizeof(code_texts[0]))
		cl_seterr(err, SR_EPROTO, sys_errno, "sockrpcd answered with unknown code %d: %s",
		          code, text != NULL ? text : "(no message)");
	else
		cl_seterr(err, code, sys_errno, "%s", text != NULL ? text : sr_strerror(code));
}

void
cl_copyerr(sr_error *dst, const sr_error *src)
{
	if (dst != NULL && dst != src)
		*dst = *src;
}

/* Thread-safe strerror. */
const char *
cl_errno_text(int e, char *buf, size_t len)
{
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
	return strerror_r(e, buf, len);
#else
	if (strerror_r(e, buf, len) != 0)
		snprintf(buf, len, "error %d", e);
	return buf;
#endif
}

/* "ECONNREFUSED" -> ECONNREFUSED; fallback if the name is empty or unknown here. */
int
cl_errno_from_name(const char *name, int fallback)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
	const char *known;

	if (name == NULL || name[0] == '\0')
		return fallback;
	if (fallback > 0 && (known = strerrorname_np(fallback)) != NULL && strcmp(known, name) == 0)
		return fallback;
	for (int e = 1; e < ERRNO_MAX; e++) {
		if ((known = strerrorname_np(e)) != NULL && strcmp(known, name) == 0)
			return e;
	}
#else
	(void)name;
#endif
	return fallback;
}
