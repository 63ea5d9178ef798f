/*
 * resolve.c - asynchronous name resolution with libevent's evdns (honouring resolv.conf
 * and the hosts file). A job always reports from the event loop, never from inside
 * resolve_start(), even when evdns answers at once (numeric or hosts-file names), so
 * callers never see their callback run before they have stored the job.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/util.h>

#include "sockrpcd.h"

struct resolve_job {
	struct evdns_getaddrinfo_request *request;
	struct event *deliver; /* fires the callback for an answer evdns gave at once */
	resolve_done_fn done;
	void *arg;
	int result;
	struct evutil_addrinfo *answer;
	bool in_start;
	bool answered;
};

struct evdns_base *
resolve_base_new(struct event_base *base, const char *resolv_conf, const char *hosts_file)
{
	struct evdns_base *dns = evdns_base_new(base, 0);

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
	return dns;
}

static void
job_finish(struct resolve_job *job)
{
	job->done(job->result, job->answer, job->arg);
	if (job->deliver)
		event_free(job->deliver);
	free(job);
}

static void
on_deliver(evutil_socket_t fd, short what, void *arg)
{
	job_finish(arg);
}

static void
on_answer(int result, struct evutil_addrinfo *res, void *arg)
{
	struct resolve_job *job = arg;

	job->request = NULL;
	if (result == EVUTIL_EAI_CANCEL) {
		/* resolve_cancel() already gave up on the job: nobody waits for it. */
		if (res)
			evutil_freeaddrinfo(res);
		free(job);
		return;
	}
	job->result = result;
	job->answer = res;
	job->answered = true;
	if (!job->in_start)
		job_finish(job);
}

/*
 * Starts resolving `name`. `done` is called once, later, from the loop, with the
 * result and the answer list, which it then owns (free with evutil_freeaddrinfo).
 * Returns NULL (with nothing scheduled) only if the job could not be started.
 */
struct resolve_job *
resolve_start(struct sockrpcd *d, const char *name, const char *service, int family, int type,
              int flags, resolve_done_fn done, void *arg)
{
	struct resolve_job *job = calloc(1, sizeof(*job));
	struct evutil_addrinfo hints;

	if (job == NULL)
		return NULL;
	job->done = done;
	job->arg = arg;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = type;
	hints.ai_flags = flags;
	job->in_start = true;
	job->request = evdns_getaddrinfo(d->dns, name, service, &hints, on_answer, job);
	job->in_start = false;
	if (!job->answered) {
		if (job->request == NULL) { /* failed without calling back */
			free(job);
			return NULL;
		}
		return job;
	}
	job->deliver = evtimer_new(d->base, on_deliver, job);
	if (job->deliver == NULL) {
		if (job->answer)
			evutil_freeaddrinfo(job->answer);
		free(job);
		return NULL;
	}
	event_active(job->deliver, EV_TIMEOUT, 0);
	return job;
}

/* Abandons a job whose callback has not run yet; it will not run. */
void
resolve_cancel(struct resolve_job *job)
{
	if (job->answered) {
		if (job->answer)
			evutil_freeaddrinfo(job->answer);
		if (job->deliver)
			event_free(job->deliver);
		free(job);
		return;
	}
	/* The cancel callback (EVUTIL_EAI_CANCEL) frees the job. */
	evdns_getaddrinfo_cancel(job->request);
}
