/*
 * limits.c - the daemon's limits: the command line's, then the policy's `limit` lines,
 * over the built-in defaults. Applied at start and after every reload, in the worker for
 * its sessions and in the privileged parent for the global counts (priv_sessions.c).
 */
#include "sockrpcd.h"
#include "sockrpcd_limits.h"
#include "policy/policy.h"

void
daemon_apply_limits(struct sockrpcd *d)
{
	const struct daemon_limits *cli = &d->opt.limits_given;
	const struct policy_limits *pl = policy_limits(d->policy);
	struct daemon_limits *l = &d->opt.limits;

	l->max_sessions = cli->max_sessions  ? cli->max_sessions
	                  : pl->sessions > 0 ? (unsigned)pl->sessions
	                                     : DEFAULT_MAX_SESSIONS;
	/* Counts add margins to it (MAX_SESSIONS_MARGIN, shares): keep them from wrapping. */
	if (l->max_sessions > MAX_SESSIONS_CEILING)
		l->max_sessions = MAX_SESSIONS_CEILING;
	l->max_sessions_per_uid = cli->max_sessions_per_uid  ? cli->max_sessions_per_uid
	                          : pl->sessions_per_uid > 0 ? (unsigned)pl->sessions_per_uid
	                                                     : 0;
	l->max_handles = cli->max_handles              ? cli->max_handles
	                 : pl->handles_per_session > 0 ? (unsigned)pl->handles_per_session
	                                               : DEFAULT_MAX_HANDLES;
	l->max_queued_bytes = cli->max_queued_bytes  ? cli->max_queued_bytes
	                      : pl->queued_bytes > 0 ? (size_t)pl->queued_bytes
	                                             : DEFAULT_MAX_QUEUED_BYTES;
	/* A session must be able to hold at least one full frame in flight. */
	if (l->max_queued_bytes < 2 * SR_MAX_FRAME)
		l->max_queued_bytes = 2 * SR_MAX_FRAME;
}
