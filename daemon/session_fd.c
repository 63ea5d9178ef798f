/*
 * session_fd.c - descriptors a session hands back (ops_handback.c): each rides, with
 * SCM_RIGHTS, on the first write that carries bytes of its reply frame, so the client has
 * it no later than the reply. Until then the session owns it; it is closed once sent (the
 * daemon keeps no copy), or when the session ends unsent.
 */
#include <errno.h>
#include <linux/sockios.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "sockrpcd.h"

/* Sockets handed back that may wait unconfirmed before the kernel is asked (see
 * session_sockets_held). */
#define FDS_SENT_SLACK 16

/* Frames reply, and queues fd to travel with it. Takes fd, even on failure. */
void
session_send_reply_with_fd(struct session *s, unsigned method, uint64_t call_id,
                           const ProtobufCMessage *reply, int fd)
{
	struct passing_fd *grown;

	if (s->phase >= SESSION_CLOSING || s->t->ops->pass_fd == NULL) {
		close(fd);
		return;
	}
	grown = realloc(s->passing, (s->n_passing + 1) * sizeof(*grown));
	if (grown == NULL) {
		close(fd);
		session_close(s, "out of memory for a handback");
		return;
	}
	s->passing = grown;
	session_enter(s);
	if (session_queue_frame(s, method, call_id, reply, NULL, 0, 0) != 0) {
		close(fd);
	} else {
		s->passing[s->n_passing].fd = fd;
		s->passing[s->n_passing].until = evbuffer_get_length(s->out);
		s->n_passing++;
	}
	session_leave(s);
}

/*
 * One write of the output buffer for session.c's writer while descriptors wait: up to the
 * end of the first one's reply, with it attached. Returns as transport_ops.write.
 */
int
session_write_passing(struct session *s)
{
	struct passing_fd *p = &s->passing[0];
	ssize_t n = s->t->ops->pass_fd(s->t, s->out, p->until, p->fd);

	if (n <= 0)
		return n < 0 ? -1 : 0;
	close(p->fd); /* the client has its own reference now */
	s->fds_sent++;
	for (unsigned i = 1; i < s->n_passing; i++) {
		s->passing[i - 1] = s->passing[i];
		s->passing[i - 1].until -= (size_t)n;
	}
	s->n_passing--;
	return n > 0x7fffffff ? 0x7fffffff : (int)n;
}

/* The session ends: descriptors not yet sent are closed. */
void
session_drop_passing(struct session *s)
{
	for (unsigned i = 0; i < s->n_passing; i++)
		close(s->passing[i].fd);
	free(s->passing);
	s->passing = NULL;
	s->n_passing = 0;
}

/*
 * The sockets the session makes the daemon answer for, which its socket limits count: its
 * open handles, the descriptors waiting to be sent, and those sent that the client has not
 * taken yet (they wait in its socket, charged to the daemon's uid: past RLIMIT_NOFILE of
 * them every handback fails). Those are counted until the client is seen to have read all
 * that was written to it (SIOCOUTQ empty). The kernel is asked only when they matter: when
 * the count with them comes within FDS_SENT_SLACK of `limit`, or FDS_SENT_SLACK of them
 * wait; so a handback per connection does not cost an ioctl per connection, and the count
 * is never below the truth.
 */
unsigned
session_sockets_held(struct session *s, unsigned limit)
{
	unsigned held = s->n_handles + s->n_passing + s->fds_sent;
	int unread;

	if (s->fds_sent > 0 && (s->fds_sent >= FDS_SENT_SLACK || held + FDS_SENT_SLACK >= limit) &&
	    ioctl(s->t->write_fd, SIOCOUTQ, &unread) == 0 && unread == 0) {
		s->fds_sent = 0;
		held = s->n_handles + s->n_passing;
	}
	return held;
}

/*
 * Takes fd to close once this turn's replies are written, when the client sent more
 * behind the frame being served and so does not wait for its reply (an unwaited Close
 * pipelined before a Socket and Connect): the close's work in the kernel (a TCP FIN and
 * its answer) then runs after the replies, while the client reads them, not before them.
 * Returns false when fd must be closed now.
 */
bool
session_close_later(struct session *s, int fd)
{
	if (!s->more_input || s->depth == 0 || s->n_closing == SESSION_CLOSE_LATER_MAX)
		return false;
	s->closing[s->n_closing++] = fd;
	return true;
}

/* Closes what session_close_later() took. */
void
session_close_deferred(struct session *s)
{
	while (s->n_closing > 0)
		close(s->closing[--s->n_closing]);
}
