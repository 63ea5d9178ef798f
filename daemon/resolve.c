/*
 * resolve.c - asynchronous name resolution with libevent's evdns (honouring resolv.conf
 * and the hosts file), shared fairly between clients. A job always reports from the event
 * loop, never from inside resolve_start(), even when evdns answers at once (numeric or
 * hosts-file names), so callers never see their callback run before they have stored it.
 *
 * Fairness: evdns keeps one FIFO of the requests past its in-flight limit, so one uid's
 * thousands of lookups that a name server never answers once held up every other
 * client's for minutes. Here each uid has its own bounded queue; a job starts only while
 * its session, its uid and the daemon are under their in-flight limits (the daemon's well
 * under evdns's own, so evdns never queues), and freed slots go round-robin across the
 * uids with work waiting. Every job has a deadline from its submission, queued or not.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/util.h>

#include "sockrpcd.h"

enum job_state { JOB_WAITING, JOB_IN_FLIGHT, JOB_ANSWERED };

/* The lookups of one uid: those in flight and those waiting their turn. */
struct resolve_uid {
	LIST_ENTRY(resolve_uid) link;
	uid_t uid;
	unsigned in_flight, waiting;
	TAILQ_HEAD(, resolve_job) queue;
};

struct resolve_job {
	TAILQ_ENTRY(resolve_job) queue_link;
	struct sockrpcd *d;
	struct session *session; /* lives while the job does: its call cancels the job */
	struct resolve_uid *owner;
	enum job_state state;
	char *name, *service;
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *request;
	struct event *timer;  /* the deadline; also fires to deliver an answer given at once */
	resolve_done_fn done; /* NULL once nobody waits (cancelled or timed out) */
	void *arg;
	int result;
	struct evutil_addrinfo *answer;
	bool in_start;
};

static void on_answer(int result, struct evutil_addrinfo *res, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);
static void pump(struct sockrpcd *d);

struct evdns_base *
resolve_base_new(struct event_base *base, const char *resolv_conf, const char *hosts_file)
{
	struct evdns_base *dns = evdns_base_new(base, 0);
	char inflight[16];

	if (dns == NULL)
		return NULL;
	/* A missing resolv.conf is not fatal: evdns then asks 127.0.0.1, like libc does. */
	evdns_base_resolv_conf_parse(dns, DNS_OPTIONS_ALL,
	                             resolv_conf ? resolv_conf : "/etc/resolv.conf");
	if (hosts_file != NULL && evdns_base_load_hosts(dns, hosts_file) != 0) {
		evdns_base_free(dns, 0);
		errno = ENOENT;
		return NULL;
	}
	/* Room for every job's A and AAAA requests: evdns must never queue them itself. */
	snprintf(inflight, sizeof(inflight), "%d", 2 * DNS_MAX_IN_FLIGHT + 16);
	evdns_base_set_option(dns, "max-inflight:", inflight);
	return dns;
}

/* The message for a resolve_done_fn's eai_error. */
const char *
resolve_strerror(int eai)
{
	static char timed_out[64];

	if (eai != RESOLVE_TIMED_OUT)
		return evutil_gai_strerror(eai);
	snprintf(timed_out, sizeof(timed_out), "no answer within %d ms (timed out)",
	         DNS_JOB_TIMEOUT_MS);
	return timed_out;
}

static struct resolve_uid *
owner_of(struct sockrpcd *d, uid_t uid)
{
	struct resolve_uid *o;

	LIST_FOREACH (o, &d->dns_uids, link)
		if (o->uid == uid)
			return o;
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return NULL;
	o->uid = uid;
	TAILQ_INIT(&o->queue);
	LIST_INSERT_HEAD(&d->dns_uids, o, link);
	return o;
}

static void
owner_release_if_idle(struct sockrpcd *d, struct resolve_uid *o)
{
	if (o->in_flight > 0 || o->waiting > 0)
		return;
	if (d->dns_turn == o)
		d->dns_turn = LIST_NEXT(o, link);
	LIST_REMOVE(o, link);
	free(o);
}

static bool
may_start(const struct resolve_job *job)
{
	return job->d->dns_in_flight < DNS_MAX_IN_FLIGHT &&
	       job->owner->in_flight < DNS_MAX_IN_FLIGHT_PER_UID &&
	       job->session->dns_in_flight < DNS_MAX_IN_FLIGHT_PER_SESSION;
}

/* Frees a job that is in no list and whose request evdns no longer holds. */
static void
job_free(struct resolve_job *job)
{
	if (job->answer)
		evutil_freeaddrinfo(job->answer);
	if (job->timer)
		event_free(job->timer);
	free(job->name);
	free(job->service);
	free(job);
}

/* Gives back a job's in-flight slot (the owner may be freed). */
static void
release_slot(struct resolve_job *job)
{
	job->d->dns_in_flight--;
	job->owner->in_flight--;
	job->session->dns_in_flight--;
	owner_release_if_idle(job->d, job->owner);
	job->owner = NULL;
}

static void
launch(struct resolve_job *job)
{
	struct evdns_getaddrinfo_request *req;

	if (job->state == JOB_WAITING) {
		TAILQ_REMOVE(&job->owner->queue, job, queue_link);
		job->owner->waiting--;
	}
	job->state = JOB_IN_FLIGHT;
	job->d->dns_in_flight++;
	job->owner->in_flight++;
	job->session->dns_in_flight++;
	job->in_start = true;
	req = evdns_getaddrinfo(job->d->dns, job->name, job->service, &job->hints, on_answer, job);
	job->in_start = false;
	if (job->state == JOB_IN_FLIGHT && req == NULL) { /* failed without calling back */
		release_slot(job);
		job->state = JOB_ANSWERED;
		job->result = EVUTIL_EAI_MEMORY;
	}
	if (job->state == JOB_ANSWERED) {
		/* Answered at once: deliver from the loop. */
		evtimer_del(job->timer);
		event_active(job->timer, EV_TIMEOUT, 0);
		return;
	}
	job->request = req;
}

/* Calls back and frees a job that evdns no longer holds. */
static void
deliver(struct resolve_job *job, int result, struct evutil_addrinfo *answer)
{
	resolve_done_fn done = job->done;

	job->answer = NULL;
	if (done != NULL)
		done(result, answer, job->arg);
	else if (answer)
		evutil_freeaddrinfo(answer);
	job_free(job);
}

/*
 * Starts resolving `name` for session s. `done` is called once, later, from the loop,
 * with the result (an EVUTIL_EAI_* or RESOLVE_TIMED_OUT) and the answer list, which it
 * then owns (free with evutil_freeaddrinfo). Returns NULL with nothing scheduled if the
 * job could not be started: errno EAGAIN when the uid's queue is full, else ENOMEM.
 */
struct resolve_job *
resolve_start(struct session *s, const char *name, const char *service, int family, int type,
              int flags, resolve_done_fn done, void *arg)
{
	struct sockrpcd *d = s->d;
	struct resolve_uid *owner = owner_of(d, s->peer.uid);
	struct resolve_job *job = NULL;
	struct timeval tv = {DNS_JOB_TIMEOUT_MS / 1000, (DNS_JOB_TIMEOUT_MS % 1000) * 1000};

	if (owner == NULL)
		goto nomem;
	if (owner->waiting >= DNS_MAX_WAITING_PER_UID) {
		owner_release_if_idle(d, owner);
		errno = EAGAIN;
		return NULL;
	}
	if ((job = calloc(1, sizeof(*job))) == NULL || (job->name = strdup(name)) == NULL ||
	    (service && (job->service = strdup(service)) == NULL) ||
	    (job->timer = evtimer_new(d->base, on_timer, job)) == NULL)
		goto nomem;
	job->d = d;
	job->session = s;
	job->owner = owner;
	job->done = done;
	job->arg = arg;
	job->hints.ai_family = family;
	job->hints.ai_socktype = type;
	job->hints.ai_flags = flags;
	evtimer_add(job->timer, &tv);
	/* Behind its uid's queue; it starts now if there is room (answers come later). */
	job->state = JOB_WAITING;
	TAILQ_INSERT_TAIL(&owner->queue, job, queue_link);
	owner->waiting++;
	pump(d);
	return job;
nomem:
	if (job)
		job_free(job);
	if (owner)
		owner_release_if_idle(d, owner);
	errno = ENOMEM;
	return NULL;
}

/* Abandons a job whose callback has not run yet; it will not run. */
void
resolve_cancel(struct resolve_job *job)
{
	struct sockrpcd *d = job->d;

	job->done = NULL;
	switch (job->state) {
	case JOB_WAITING:
		TAILQ_REMOVE(&job->owner->queue, job, queue_link);
		job->owner->waiting--;
		owner_release_if_idle(d, job->owner);
		job_free(job);
		break;
	case JOB_IN_FLIGHT:
		/* evdns calls back with EVUTIL_EAI_CANCEL, later; on_answer frees the job. */
		release_slot(job);
		evtimer_del(job->timer);
		evdns_getaddrinfo_cancel(job->request);
		pump(d);
		break;
	case JOB_ANSWERED:
		job_free(job);
		break;
	}
}

static void
on_answer(int result, struct evutil_addrinfo *res, void *arg)
{
	struct resolve_job *job = arg;
	struct sockrpcd *d = job->d;

	job->request = NULL;
	if (job->owner == NULL) {
		/* Cancelled or timed out: the slot is already given back, nobody waits. */
		if (res)
			evutil_freeaddrinfo(res);
		job_free(job);
		return;
	}
	release_slot(job);
	job->state = JOB_ANSWERED;
	job->result = result;
	job->answer = res;
	if (job->in_start)
		return; /* launch() delivers it from the loop */
	deliver(job, result, res);
	pump(d);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct resolve_job *job = arg;
	struct sockrpcd *d = job->d;

	switch (job->state) {
	case JOB_ANSWERED:
		deliver(job, job->result, job->answer);
		break;
	case JOB_WAITING:
		TAILQ_REMOVE(&job->owner->queue, job, queue_link);
		job->owner->waiting--;
		owner_release_if_idle(d, job->owner);
		deliver(job, RESOLVE_TIMED_OUT, NULL);
		break;
	case JOB_IN_FLIGHT: {
		resolve_done_fn done = job->done;
		void *cb_arg = job->arg;

		/* The job stays for evdns's EVUTIL_EAI_CANCEL callback, which frees it. */
		job->done = NULL;
		release_slot(job);
		evdns_getaddrinfo_cancel(job->request);
		if (done)
			done(RESOLVE_TIMED_OUT, NULL, cb_arg);
		break;
	}
	}
	pump(d);
}

/* Starts waiting jobs while there is room, taking the uids in turn. */
static void
pump(struct sockrpcd *d)
{
	while (d->dns_in_flight < DNS_MAX_IN_FLIGHT && !LIST_EMPTY(&d->dns_uids)) {
		struct resolve_uid *start = d->dns_turn ? d->dns_turn : LIST_FIRST(&d->dns_uids);
		struct resolve_uid *o = start, *next;
		struct resolve_job *job = NULL;

		do {
			next = LIST_NEXT(o, link) ? LIST_NEXT(o, link) : LIST_FIRST(&d->dns_uids);
			if (o->waiting > 0 && o->in_flight < DNS_MAX_IN_FLIGHT_PER_UID)
				TAILQ_FOREACH (job, &o->queue, queue_link)
					if (may_start(job))
						break;
			if (job != NULL)
				break;
			o = next;
		} while (o != start);
		if (job == NULL)
			return;
		d->dns_turn = next; /* the next uid goes first next time */
		launch(job);
	}
}
