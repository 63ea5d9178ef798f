/*
 * idle_poll.c - the worker's event loop, which polls a little before it sleeps.
 *
 * Most broker exchanges are a request, a short wait on a peer, and the reply: a UDP query
 * and its answer, a loopback connect. A worker that sleeps in epoll_wait between them is
 * woken twice per exchange, and waking a sleeping process costs microseconds, far more
 * on a virtual machine, where an idle vCPU is handed back to the hypervisor. So after
 * each wake the worker goes on serving its events without sleeping for a window of
 * microseconds, and sleeps once nothing came for that long.
 *
 * The window adapts as the kernel's haltpoll cpuidle governor does: it grows while what
 * woke the worker came soon after it stopped polling (a longer poll would have caught
 * it), and shrinks while it came long after, down to nothing, so an idle or lightly used
 * daemon sleeps at once and spends no CPU polling. Polling is off where it would take a
 * CPU from the processes the worker waits on: on one CPU, with as many workers as CPUs,
 * and with SOCKRPC_DISABLE=idle-poll.
 */
#include <sched.h>
#include <time.h>

#include <event2/event.h>

#include "sockrpcd.h"

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
idle_poll_served(struct sockrpcd *d)
{
	d->idle.served++;
	if (d->idle.woken_at_us == 0)
		d->idle.woken_at_us = now_us();
}

unsigned
idle_poll_next_window(unsigned window, int64_t slept_us)
{
	if (slept_us <= IDLE_POLL_MAX_US) {
		if (window == 0)
			return IDLE_POLL_FIRST_US;
		return window * 2 > IDLE_POLL_MAX_US ? IDLE_POLL_MAX_US : window * 2;
	}
	window /= 2;
	return window < IDLE_POLL_FIRST_US ? 0 : window;
}

/* Whether polling can help here: another CPU for the peers, and one per worker. */
static bool
worth_polling(const struct sockrpcd *d)
{
	cpu_set_t set;
	int cpus;

	if (!fast_path_on(FAST_IDLE_POLL) || sched_getaffinity(0, sizeof(set), &set) != 0)
		return false;
	cpus = CPU_COUNT(&set);
	return cpus >= 2 && d->n_workers < (unsigned)cpus;
}

static bool
loop_over(struct event_base *base)
{
	return event_base_got_exit(base) || event_base_got_break(base);
}

void
idle_poll_run(struct sockrpcd *d)
{
	bool polling = worth_polling(d);
	unsigned window = 0;

	log_info("idle polling %s",
	         polling ? "on (SOCKRPC_DISABLE=idle-poll turns it off)" : "off");
	while (!loop_over(d->base)) {
		uint64_t served = d->idle.served;
		int64_t since = now_us();

		/* Each pass serves what is ready without sleeping; the window restarts after
		 * every pass that served something. */
		while (window > 0 && now_us() - since < window) {
			if (event_base_loop(d->base, EVLOOP_NONBLOCK) < 0 || loop_over(d->base))
				return;
			if (d->idle.served != served) {
				served = d->idle.served;
				since = now_us();
			}
		}
		/* Slept: until the first event served, not the serving after it. */
		since = now_us();
		d->idle.woken_at_us = 0;
		if (event_base_loop(d->base, EVLOOP_ONCE) != 0)
			return;
		if (polling)
			window = idle_poll_next_window(
			    window,
			    (d->idle.woken_at_us != 0 ? d->idle.woken_at_us : now_us()) - since);
	}
}
