/*
 * log.c - the daemon's log: one line per event on stderr. Under systemd (JOURNAL_STREAM
 * set) each line starts with a sd-daemon priority prefix ("<3>") that journald turns
 * into the entry's priority; elsewhere lines start with the level's name.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "sockrpcd.h"

int log_verbose;
static int use_priority_prefix;

void
log_init(void)
{
	use_priority_prefix = getenv("JOURNAL_STREAM") != NULL;
}

static void __attribute__((format(printf, 3, 0)))
log_line(int priority, const char *level, const char *fmt, va_list ap)
{
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (use_priority_prefix)
		fprintf(stderr, "<%d>%s\n", priority, line);
	else
		fprintf(stderr, "sockrpcd: %s: %s\n", level, line);
}

#define LOG_FN(name, priority, level)                                                              \
	void name(const char *fmt, ...)                                                            \
	{                                                                                          \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		log_line(priority, level, fmt, ap);                                                \
		va_end(ap);                                                                        \
	}

LOG_FN(log_error, 3, "error")
LOG_FN(log_warn, 4, "warning")
LOG_FN(log_info, 6, "info")

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	log_line(7, "debug", fmt, ap);
	va_end(ap);
}
