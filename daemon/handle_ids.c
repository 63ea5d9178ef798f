/*
 * handle_ids.c - a session's handle id space. The daemon numbers the handles it makes
 * (accepted connections, sockets whose Socket call names no id) from 1; a client of
 * protocol 1.2 numbers the sockets it creates from SR_CLIENT_HANDLE_BASE up, one after
 * the other, so that it can send calls on a socket before Socket's reply. Ids are never
 * reused. This file says whether an id may name a new socket, and what became of an id
 * that names no open socket (closed, or its creation failed), and keeps the table of
 * open handles, sorted by id.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "sockrpcd.h"

/* Client ids whose Socket call failed, newest last: enough for the calls a client
 * pipelines behind a Socket, which are what asks about them. */
#define FAILED_IDS_KEPT 16

struct failed_ids {
	int64_t id[FAILED_IDS_KEPT];
	int code[FAILED_IDS_KEPT];
	unsigned next; /* where the next one goes (a ring) */
};

/*
 * Checks that `id`, named by a Socket request, may be the new socket's and takes it.
 * Returns 0, or -1 with the reason in why (the id is then not taken).
 */
int
handle_id_claim(struct session *s, int64_t id, char *why, size_t len)
{
	if (id < SR_CLIENT_HANDLE_BASE) {
		snprintf(why, len,
		         "handle id %lld is not a client id (client ids start at %lld; 0 lets "
		         "sockrpcd choose)",
		         (long long)id, (long long)SR_CLIENT_HANDLE_BASE);
		return -1;
	}
	if (id < s->next_client_id) {
		snprintf(why, len,
		         "handle id %lld was already used in this session (ids are never reused; "
		         "the next is %lld)",
		         (long long)id, (long long)s->next_client_id);
		return -1;
	}
	if (id > s->next_client_id) {
		snprintf(why, len, "handle id %lld skips ids: the next new id must be %lld",
		         (long long)id, (long long)s->next_client_id);
		return -1;
	}
	s->next_client_id++;
	return 0;
}

/* Remembers that the Socket call that took `id` failed with `code`. */
void
handle_id_failed(struct session *s, int64_t id, int code)
{
	struct failed_ids *f = s->failed_ids;

	if (f == NULL && (f = s->failed_ids = calloc(1, sizeof(*f))) == NULL)
		return; /* then a call on it reads "closed": less precise, still an error */
	f->id[f->next] = id;
	f->code[f->next] = code;
	f->next = (f->next + 1) % FAILED_IDS_KEPT;
}

/* Whether `id` was given to a socket of this session (open or not). */
bool
handle_id_used(const struct session *s, int64_t id)
{
	return (id > 0 && id < s->next_handle_id) ||
	       (id >= SR_CLIENT_HANDLE_BASE && id < s->next_client_id);
}

/* The code of the failed Socket call that took `id`, if it is remembered; else 0. */
int
handle_id_failure(const struct session *s, int64_t id)
{
	const struct failed_ids *f = s->failed_ids;

	for (unsigned i = 0; f != NULL && i < FAILED_IDS_KEPT; i++)
		if (f->id[i] == id && f->code[i] != 0)
			return f->code[i];
	return 0;
}

void
handle_ids_free(struct session *s)
{
	free(s->failed_ids);
	s->failed_ids = NULL;
}

/* Where id is, or would go, in the table: the first handle whose id is not below it. */
static unsigned
handle_slot(const struct session *s, int64_t id)
{
	unsigned lo = 0, hi = s->n_handles;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (s->handles[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The handle table: open handles sorted by id, found by binary search. */
struct handle *
session_find_handle(struct session *s, int64_t id)
{
	unsigned i = handle_slot(s, id);

	return i < s->n_handles && s->handles[i]->id == id ? s->handles[i] : NULL;
}

/*
 * Adds h: with the id it has (a client's, taken with handle_id_claim()), or, if 0, the
 * daemon's next. Returns 0, -ENOMEM, or -EMFILE past the limit.
 */
int
session_add_handle(struct session *s, struct handle *h)
{
	unsigned i;

	/* Descriptors handed back but not yet taken count: the daemon holds them (session_fd.c). */
	if (session_sockets_held(s, s->d->opt.limits.max_handles) >= s->d->opt.limits.max_handles ||
	    (h->id == 0 && s->next_handle_id >= SR_CLIENT_HANDLE_BASE))
		return -EMFILE;
	if (s->n_handles == s->cap_handles) {
		unsigned cap = s->cap_handles ? s->cap_handles * 2 : 8;
		struct handle **grown = realloc(s->handles, cap * sizeof(*grown));

		if (grown == NULL)
			return -ENOMEM;
		s->handles = grown;
		s->cap_handles = cap;
	}
	if (h->id == 0)
		h->id = s->next_handle_id++;
	/* The daemon's ids sort below the client's: an accepted handle may go in the middle. */
	i = handle_slot(s, h->id);
	memmove(&s->handles[i + 1], &s->handles[i], (s->n_handles - i) * sizeof(*s->handles));
	s->handles[i] = h;
	s->n_handles++;
	return 0;
}

void
session_remove_handle(struct session *s, struct handle *h)
{
	unsigned i = handle_slot(s, h->id);

	if (i < s->n_handles && s->handles[i] == h) {
		memmove(&s->handles[i], &s->handles[i + 1],
		        (s->n_handles - i - 1) * sizeof(*s->handles));
		s->n_handles--;
	}
}
