/*
 * table.c - the process's sr_client, the sockets by id, and the thread's last error.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "binding.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static sr_client *client;      /* owned, for the life of the process */
static struct entry **entries; /* owned, indexed by id */
static int nentries;

sr_client *
bl_client(sr_error *err)
{
	sr_client *c;

	static bool told;

	pthread_mutex_lock(&mu);
	if (client == NULL) {
		client = sr_client_open(NULL, err);
		/* Blade's Socket() turns a failed create into "stack overflow" (its close(-1)
		 * fails too, and it retries): say once what is really wrong. */
		if (client == NULL && !told) {
			fprintf(stderr, "sockrpc_socket: %s\n", err->message);
			told = true;
		}
	}
	c = client;
	pthread_mutex_unlock(&mu);
	return c;
}

/*
 * A descriptor that stands for a brokered socket: an unconnected Unix stream socket,
 * so that code handed the id (OpenSSL, select) gets a prompt error from the kernel
 * (ENOTCONN) instead of blocking on a file; /dev/null if Unix sockets are refused.
 */
static int
placeholder(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd == -1)
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	return fd;
}

struct entry *
bl_entry_new(sr_socket *s, int family, int type, int protocol, sr_error *err)
{
	struct entry *e;
	int fd;

	e = calloc(1, sizeof(*e));
	fd = placeholder();
	if (e == NULL || fd == -1) {
		snprintf(err->message, sizeof(err->message), "no descriptor for the socket: %s",
		         strerror(errno));
		err->code = SR_EOS;
		err->sys_errno = errno;
		free(e);
		if (fd != -1)
			close(fd);
		sr_socket_free(s);
		return NULL;
	}
	e->id = fd;
	e->s = s;
	e->family = family;
	e->type = type;
	e->protocol = protocol;
	e->refs = 1;
	pthread_mutex_lock(&mu);
	if (fd >= nentries) {
		int n = fd + 64;
		struct entry **grown = realloc(entries, (size_t)n * sizeof(*grown));

		if (grown == NULL) {
			pthread_mutex_unlock(&mu);
			err->code = SR_EOS;
			err->sys_errno = ENOMEM;
			snprintf(err->message, sizeof(err->message), "%s", strerror(ENOMEM));
			close(fd);
			sr_socket_free(s);
			free(e);
			return NULL;
		}
		memset(grown + nentries, 0, (size_t)(n - nentries) * sizeof(*grown));
		entries = grown;
		nentries = n;
	}
	entries[fd] = e;
	pthread_mutex_unlock(&mu);
	return e;
}

struct entry *
bl_entry_get(int id)
{
	struct entry *e = NULL;

	pthread_mutex_lock(&mu);
	if (id >= 0 && id < nentries && entries[id] != NULL) {
		e = entries[id];
		e->refs++;
	}
	pthread_mutex_unlock(&mu);
	return e;
}

void
bl_entry_put(struct entry *e)
{
	bool last;

	pthread_mutex_lock(&mu);
	last = --e->refs == 0;
	pthread_mutex_unlock(&mu);
	if (!last)
		return;
	/* Nobody can reach e any more: its number is given up last, so it is never
	 * reused while the table still maps it. */
	sr_socket_free(e->s);
	close(e->id);
	free(e);
}

int
bl_entry_remove(struct entry *e)
{
	int rc = -1;

	pthread_mutex_lock(&mu);
	if (e->id < nentries && entries[e->id] == e) {
		entries[e->id] = NULL;
		e->refs--; /* the caller holds one, so this is never the last */
		rc = 0;
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

/* The thread's last failure, as errno is for Blade's own module. */
static _Thread_local struct {
	int sys_errno;     /* 0: the message below */
	char message[320]; /* empty: no error */
} last;

void
bl_err_errno(int sys_errno)
{
	last.sys_errno = sys_errno;
	snprintf(last.message, sizeof(last.message), "%s", strerror(sys_errno));
}

void
bl_err_sr(const sr_error *err)
{
	switch (err->code) {
	case SR_EOS:
		bl_err_errno(err->sys_errno != 0 ? err->sys_errno : EIO);
		return;
	case SR_ETIMEDOUT:
		bl_err_errno(ETIMEDOUT);
		return;
	case SR_EWOULDBLOCK:
		bl_err_errno(EAGAIN);
		return;
	case SR_EBADHANDLE:
	case SR_ECLOSED:
		bl_err_errno(EBADF);
		return;
	default:
		/* Denied, limits, the daemon gone...: the daemon's own words (the rule). */
		last.sys_errno = 0;
		snprintf(last.message, sizeof(last.message), "%s", err->message);
		if (last.message[0] == '\0')
			snprintf(last.message, sizeof(last.message), "%s", sr_strerror(err->code));
	}
}

void
bl_err_text(const char *fmt, ...)
{
	va_list ap;

	last.sys_errno = 0;
	va_start(ap, fmt);
	vsnprintf(last.message, sizeof(last.message), fmt, ap);
	va_end(ap);
}

const char *
bl_err_message(void)
{
	if (last.sys_errno == EAGAIN || last.sys_errno == EINPROGRESS)
		return NULL;
	return last.message[0] != '\0' ? last.message : NULL;
}
