/*
 * priv_sessions.c - the privileged parent's table of open sessions (priv.h), across all
 * workers. A session is keyed by (worker, id): a worker names only its own sessions, so
 * one worker can neither use nor close another's. The global session limits
 * (--max-sessions, --max-sessions-per-uid) are counted here, over every worker's admitted
 * sessions, so they hold however the connections are spread.
 *
 * A worker may be compromised, so what it says is bounded here: a connection is one
 * session (the same one opened again under other ids would count its owner many times and
 * lock that uid out of every worker), and a worker holds no more sessions than an honest
 * one can (past that it could only grow the parent's memory and scans).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "priv.h"
#include "sockrpcd.h"

#define SESSION_BUCKETS 256

struct priv_session_table {
	LIST_HEAD(, priv_session) buckets[SESSION_BUCKETS];
	LIST_HEAD(, priv_session) conn_buckets[SESSION_BUCKETS]; /* by conn_ino */
	unsigned n_open[MAX_WORKERS];                            /* each worker's sessions */
};

static unsigned
bucket_of(uint64_t id)
{
	return (unsigned)(id % SESSION_BUCKETS);
}

struct priv_session_table *
priv_sessions_new(void)
{
	struct priv_session_table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	for (int i = 0; i < SESSION_BUCKETS; i++) {
		LIST_INIT(&t->buckets[i]);
		LIST_INIT(&t->conn_buckets[i]);
	}
	return t;
}

/* Forgets every session of `worker` (all of them: worker < 0). */
void
priv_sessions_forget_worker(struct priv_session_table *t, int worker)
{
	struct priv_session *s, *next;

	if (t == NULL)
		return;
	for (int i = 0; i < SESSION_BUCKETS; i++)
		for (s = LIST_FIRST(&t->buckets[i]); s != NULL; s = next) {
			next = LIST_NEXT(s, link);
			if (worker < 0 || s->worker == worker)
				priv_sessions_remove(t, s);
		}
}

void
priv_sessions_free(struct priv_session_table *t)
{
	priv_sessions_forget_worker(t, -1);
	free(t);
}

struct priv_session *
priv_sessions_find(struct priv_session_table *t, int worker, uint64_t id)
{
	struct priv_session *s;

	LIST_FOREACH (s, &t->buckets[bucket_of(id)], link)
		if (s->id == id && s->worker == worker)
			return s;
	return NULL;
}

/*
 * Whether `worker` may open a session on connection fd: not one that is a session already
 * (of any worker), and not past what an honest worker holds at most (l: NULL, no bound):
 * it accepts no connection past max_sessions and the margin, and TLS handshakes under way
 * may end as sessions beyond that. Returns 0, having set s's connection, or -errno.
 */
int
priv_sessions_may_open(struct priv_session_table *t, int worker, int fd,
                       const struct daemon_limits *l, struct priv_session *s)
{
	struct priv_session *o;
	struct stat st;

	if (worker < 0 || worker >= MAX_WORKERS || fstat(fd, &st) != 0)
		return -EINVAL;
	LIST_FOREACH (o, &t->conn_buckets[bucket_of(st.st_ino)], by_conn)
		if (o->conn_ino == st.st_ino && o->conn_dev == st.st_dev)
			return -EEXIST;
	if (l != NULL && t->n_open[worker] >=
	                     (uint64_t)l->max_sessions + MAX_SESSIONS_MARGIN + TLS_MAX_HANDSHAKES)
		return -ENOSPC;
	s->conn_dev = st.st_dev;
	s->conn_ino = st.st_ino;
	return 0;
}

/* Inserts s, its worker and connection set (priv_sessions_may_open). */
void
priv_sessions_insert(struct priv_session_table *t, struct priv_session *s)
{
	LIST_INSERT_HEAD(&t->buckets[bucket_of(s->id)], s, link);
	LIST_INSERT_HEAD(&t->conn_buckets[bucket_of(s->conn_ino)], s, by_conn);
	t->n_open[s->worker]++;
}

void
priv_sessions_remove(struct priv_session_table *t, struct priv_session *s)
{
	LIST_REMOVE(s, link);
	LIST_REMOVE(s, by_conn);
	t->n_open[s->worker]--;
	free(s);
}

/*
 * Admits s under the global limits (NULL: none), counting the admitted sessions of every
 * worker. Returns 0, or PRIV_REFUSED_SESSIONS / PRIV_REFUSED_OWNER (s stays not admitted).
 */
int
priv_sessions_admit(struct priv_session_table *t, struct priv_session *s,
                    const struct daemon_limits *l)
{
	unsigned all = 0, same = 0;
	struct priv_session *o;

	if (s->admitted || l == NULL) {
		s->admitted = true;
		return 0;
	}
	for (int i = 0; i < SESSION_BUCKETS; i++)
		LIST_FOREACH (o, &t->buckets[i], link) {
			if (!o->admitted)
				continue;
			all++;
			same += server_same_owner(&o->who, &s->who);
		}
	if (all >= l->max_sessions)
		return PRIV_REFUSED_SESSIONS;
	if (l->max_sessions_per_uid > 0 && same >= l->max_sessions_per_uid)
		return PRIV_REFUSED_OWNER;
	s->admitted = true;
	return 0;
}
