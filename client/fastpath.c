/*
 * fastpath.c - which of the client's fast paths are on. Each fast path lives in its
 * own file (write-behind: send_window.c; read-ahead: receive_ahead.c; borrowed
 * replies: buffer_pool.c; pipelined creation and close: socket_pipeline.c) and asks here before it
 * acts; with it off the core path runs. The environment variable SOCKRPC_DISABLE, read once per
 * process, turns them off: a comma-separated list of names, or "all". sockrpcd reads the same
 * variable for its own fast paths; names this library does not know are ignored.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const struct {
	const char *name;
	unsigned bit;
} names[] = {
    {"write-behind", CL_FAST_WRITE_BEHIND},
    {"read-ahead", CL_FAST_READ_AHEAD},
    {"borrowed-replies", CL_FAST_BORROWED_REPLIES},
    {"pipelined", CL_FAST_PIPELINED},
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static unsigned disabled;

/* The fast paths a SOCKRPC_DISABLE value turns off (NULL: none), as CL_FAST_* bits. */
unsigned
cl_fastpath_parse(const char *list)
{
	unsigned off = 0;
	const char *p, *end;
	size_t len;

	for (p = list; p != NULL && *p != '\0'; p = *end == ',' ? end + 1 : end) {
		end = p + strcspn(p, ",");
		while (p < end && *p == ' ')
			p++;
		for (len = (size_t)(end - p); len > 0 && p[len - 1] == ' '; len--)
			;
		if (len == 3 && strncmp(p, "all", 3) == 0)
			off |= CL_FAST_ALL;
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strlen(names[i].name) == len && strncmp(p, names[i].name, len) == 0)
				off |= names[i].bit;
	}
	return off;
}

static void
read_environment(void)
{
	disabled = cl_fastpath_parse(getenv("SOCKRPC_DISABLE"));
}

bool
cl_fastpath_on(unsigned path)
{
	pthread_once(&once, read_environment);
	return (disabled & path) == 0;
}
