/*
 * priv_sessions.c - the privileged parent's table of open sessions (priv.h), across all
 * workers. A session is keyed by (worker, id): a worker names only its own sessions, so
 * one worker can neither use nor close another's. The global session limits
 * (--max-sessions, --max-sessions-per-uid) are counted here, over every worker's admitted
 * sessions, so they hold however the connections are spread.
 */
#include <stdlib.h>

#include "priv.h"
#include "sockrpcd.h"

#define SESSION_BUCKETS 256

struct priv_session_table {
	LIST_HEAD(, priv_session) buckets[SESSION_BUCKETS];
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
	for (int i = 0; i < SESSION_BUCKETS; i++)
		LIST_INIT(&t->buckets[i]);
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
			if (worker < 0 || s->worker == worker) {
				LIST_REMOVE(s, link);
				free(s);
			}
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

void
priv_sessions_insert(struct priv_session_table *t, struct priv_session *s)
{
	LIST_INSERT_HEAD(&t->buckets[bucket_of(s->id)], s, link);
}

void
priv_sessions_remove(struct priv_session_table *t, struct priv_session *s)
{
	(void)t;
	LIST_REMOVE(s, link);
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
