/*
 * socket_reserve.c - each session's reserve of fresh sockets of the common kinds (TCP and
 * UDP, IPv4 and IPv6, the default protocol), so that creating one seldom waits for the
 * privileged parent.
 *
 * Sockets must be created with the client's fsuid (the kernel's SO_REUSEPORT owner check,
 * netfilter's owner match), which only the parent can do: split, each creation is a round
 * trip to it. So, once the worker's policy and limit checks have passed (ops_socket.c), a
 * socket of a common kind comes from the session's reserve; when that is empty one
 * request asks the parent for a batch (one policy check there, one SCM_RIGHTS reply):
 * one socket on a session's first of a kind, doubling on each refill up to
 * PRIV_SOCKET_BATCH_MAX, so a session that makes one socket holds no extras.
 *
 * Ownership: the sockets in a reserve are the worker's, made by the parent for that
 * session's client only (their owner is its uid): never handed to another session. They
 * are not handles (max-handles does not count them), but a refill never reaches past the
 * room the session has left under its limits, all reserves together hold at most
 * RESERVE_NOFILE_SHARE of RLIMIT_NOFILE, a kind not taken from for RESERVE_IDLE_MS is
 * closed (and its batch starts at one again), and every reserve is closed on a policy
 * reload (sockets made under the old policy are not kept) and at its session's end.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>

#include "priv.h"
#include "sockrpcd.h"

/* A kind not taken from for this long is closed (checked once a period as long: closed
 * one to two periods after its last use). */
#define RESERVE_IDLE_MS 1000
/* All reserves together hold at most this share of the worker's RLIMIT_NOFILE... */
#define RESERVE_NOFILE_SHARE 16
/* ...and never more than this. */
#define RESERVE_TOTAL_MAX 4096

enum { KIND_TCP4, KIND_UDP4, KIND_TCP6, KIND_UDP6, KIND_N };

struct reserve_kind {
	int fds[PRIV_SOCKET_BATCH_MAX - 1]; /* owned; the batch's first went to its caller */
	int n;
	int batch;      /* the next refill's size: 1, doubling to PRIV_SOCKET_BATCH_MAX */
	int protocol;   /* what the kernel chose for the default, read once per batch */
	bool owned;     /* they carry the client's uid (as_client_socket) */
	long long used; /* monotonic ms of the last take */
};

/* A session's reserve (s->reserve, owned by the session; made on its first socket of a
 * common kind). On the daemon's list while it holds a socket or a batch above one. */
struct socket_reserve {
	LIST_ENTRY(socket_reserve) link;
	bool listed;
	struct reserve_kind kinds[KIND_N];
};

/* The daemon's (d->reserves, owned): the reserves to sweep and what they hold. */
struct socket_reserves {
	LIST_HEAD(, socket_reserve) active;
	unsigned held; /* sockets in all reserves */
	unsigned cap;
	struct event *sweep; /* every RESERVE_IDLE_MS while any is active */
};

static const struct timeval sweep_period = {RESERVE_IDLE_MS / 1000,
                                            (RESERVE_IDLE_MS % 1000) * 1000};

/* The protocol the kernel chose for a socket made with the default (0), as its type
 * implies: what the client is told. */
static int
protocol_of(int fd)
{
	int protocol;
	socklen_t len = sizeof(protocol);

	return getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) == 0 ? protocol : 0;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
kind_of(int family, int type, int protocol)
{
	if (protocol != 0 || (family != AF_INET && family != AF_INET6) ||
	    (type != SOCK_STREAM && type != SOCK_DGRAM))
		return -1;
	return (family == AF_INET6 ? KIND_TCP6 : KIND_TCP4) + (type == SOCK_DGRAM);
}

/* Closes what k holds; its next refill starts at one socket again. */
static void
kind_clear(struct socket_reserves *all, struct reserve_kind *k)
{
	all->held -= (unsigned)k->n;
	while (k->n > 0)
		close(k->fds[--k->n]);
	k->batch = 1;
}

static void
reserve_clear(struct socket_reserves *all, struct socket_reserve *r)
{
	for (int i = 0; i < KIND_N; i++)
		kind_clear(all, &r->kinds[i]);
	if (r->listed) {
		LIST_REMOVE(r, link);
		r->listed = false;
	}
}

/* Closes the kinds idle for RESERVE_IDLE_MS; runs again while a reserve stays active. */
static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct socket_reserves *all = arg;
	struct socket_reserve *r, *next;
	long long now = now_ms();

	for (r = LIST_FIRST(&all->active); r != NULL; r = next) {
		bool active = false;

		next = LIST_NEXT(r, link);
		for (int i = 0; i < KIND_N; i++) {
			struct reserve_kind *k = &r->kinds[i];

			if (now - k->used >= RESERVE_IDLE_MS)
				kind_clear(all, k);
			active |= k->n > 0 || k->batch > 1;
		}
		if (!active) {
			LIST_REMOVE(r, link);
			r->listed = false;
		}
	}
	if (!LIST_EMPTY(&all->active))
		evtimer_add(all->sweep, &sweep_period);
}

static struct socket_reserves *
reserves_get(struct sockrpcd *d)
{
	struct socket_reserves *all = d->reserves;
	struct rlimit rl;

	if (all != NULL)
		return all;
	if ((all = calloc(1, sizeof(*all))) == NULL)
		return NULL;
	if ((all->sweep = evtimer_new(d->base, on_sweep, all)) == NULL) {
		free(all);
		return NULL;
	}
	LIST_INIT(&all->active);
	all->cap = RESERVE_TOTAL_MAX;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur / RESERVE_NOFILE_SHARE < all->cap)
		all->cap = (unsigned)(rl.rlim_cur / RESERVE_NOFILE_SHARE);
	d->reserves = all;
	return all;
}

/* Puts r on the list the sweep visits. */
static void
reserve_activate(struct socket_reserves *all, struct socket_reserve *r)
{
	if (r->listed)
		return;
	LIST_INSERT_HEAD(&all->active, r, link);
	r->listed = true;
	if (!evtimer_pending(all->sweep, NULL))
		evtimer_add(all->sweep, &sweep_period);
}

/* One socket as the client, past the reserve: an uncommon kind, or no reserve. */
static int
create_one(struct session *s, int family, int type, int protocol, int *protocol_out, bool *owned)
{
	int fd, n = priv_sockets(s, family, type, protocol, &fd, 1, owned);

	if (n < 0)
		return n;
	*protocol_out = protocol != 0 ? protocol : protocol_of(fd);
	return fd;
}

/* Refills kind k of s's reserve, returning one of the new sockets or -errno. */
static int
refill(struct session *s, struct socket_reserves *all, struct socket_reserve *r,
       struct reserve_kind *k, int family, int type, unsigned spare)
{
	int fds[PRIV_SOCKET_BATCH_MAX], want = k->batch, got;

	/* No more than the session could still make, nor past the daemon's cap. */
	if ((unsigned)want > spare + 1)
		want = (int)spare + 1;
	if (all->held >= all->cap)
		want = 1;
	else if ((unsigned)want > all->cap - all->held + 1)
		want = (int)(all->cap - all->held) + 1;
	if ((got = priv_sockets(s, family, type, 0, fds, want, &k->owned)) < 0)
		return got;
	k->protocol = protocol_of(fds[0]);
	for (int i = 1; i < got; i++)
		k->fds[k->n++] = fds[i];
	all->held += (unsigned)(got - 1);
	if (k->batch < PRIV_SOCKET_BATCH_MAX)
		k->batch *= 2;
	reserve_activate(all, r);
	return fds[0];
}

int
socket_reserve_take(struct session *s, int family, int type, int protocol, unsigned spare,
                    int *protocol_out, bool *owned)
{
	struct socket_reserves *all;
	struct socket_reserve *r = s->reserve;
	struct reserve_kind *k;
	int kind = kind_of(family, type, protocol), fd;

	if (kind < 0 || s->d->priv_fd < 0 || !fast_path_on(FAST_SOCKET_RESERVE) ||
	    (all = reserves_get(s->d)) == NULL)
		return create_one(s, family, type, protocol, protocol_out, owned);
	if (r == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return create_one(s, family, type, protocol, protocol_out, owned);
		for (int i = 0; i < KIND_N; i++)
			r->kinds[i].batch = 1;
		s->reserve = r;
	}
	k = &r->kinds[kind];
	k->used = now_ms();
	if (k->n > 0) {
		all->held--;
		fd = k->fds[--k->n];
	} else if ((fd = refill(s, all, r, k, family, type, spare)) < 0) {
		return fd;
	}
	*protocol_out = k->protocol;
	*owned = k->owned;
	return fd;
}

void
socket_reserve_drop(struct session *s)
{
	if (s->reserve == NULL)
		return;
	if (s->d->reserves != NULL)
		reserve_clear(s->d->reserves, s->reserve);
	free(s->reserve);
	s->reserve = NULL;
}

void
socket_reserve_flush_all(struct sockrpcd *d)
{
	struct socket_reserves *all = d->reserves;
	struct socket_reserve *r;

	if (all == NULL)
		return;
	while ((r = LIST_FIRST(&all->active)) != NULL)
		reserve_clear(all, r);
}

void
socket_reserve_free(struct sockrpcd *d)
{
	if (d->reserves == NULL)
		return;
	socket_reserve_flush_all(d);
	event_free(d->reserves->sweep);
	free(d->reserves);
	d->reserves = NULL;
}
