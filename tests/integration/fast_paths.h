/*
 * fast_paths.h - whether the run turned a fast path off (SOCKRPC_DISABLE, as
 * client/fastpath.c and the daemon read it: names separated by commas, or "all").
 * A test of a fast path's own behaviour (write-behind's linger, say) has nothing to
 * test with it off and passes at once; every other test runs either way.
 */
#ifndef SOCKRPC_TEST_FAST_PATHS_H
#define SOCKRPC_TEST_FAST_PATHS_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static inline bool
fast_path_off(const char *name)
{
	const char *p = getenv("SOCKRPC_DISABLE");
	size_t len;

	for (; p != NULL && *p != '\0'; p += len + (p[len] == ',')) {
		len = strcspn(p, ",");
		if ((len == 3 && strncmp(p, "all", 3) == 0) ||
		    (len == strlen(name) && strncmp(p, name, len) == 0))
			return true;
	}
	return false;
}

#endif
