/*
 * fast_path.c - the switches of the daemon's fast paths. Each fast path lives in its own
 * file and can be turned off, so that the core path runs alone and a bug in a fast path
 * is told from one in the core: SOCKRPC_DISABLE=name,name... or `all`, read once at
 * start-up. The client library reads the same variable for its own names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sockrpcd.h"

static const char *const names[FAST_N] = {
    [FAST_SEND_BATCHING] = "send-batching",       [FAST_BORROWED_PAYLOADS] = "borrowed-payloads",
    [FAST_SPLICE_RECEIVE] = "splice-receive",     [FAST_AUDIT_BUFFERING] = "audit-buffering",
    [FAST_CONNECT_AT_ONCE] = "connect-at-once",   [FAST_SOCKET_RESERVE] = "socket-reserve",
    [FAST_RECEIVE_IN_PLACE] = "receive-in-place", [FAST_IDLE_POLL] = "idle-poll",
};
/* The client library's fast paths: known, so that they raise no warning here. */
static const char *const client_names[] = {"write-behind", "read-ahead", "borrowed-replies",
                                           "pipelined"};

static bool disabled[FAST_N];

void
fast_path_init(void)
{
	const char *env = getenv("SOCKRPC_DISABLE");
	char list[256], *tok, *save = NULL;

	if (env == NULL || env[0] == '\0')
		return;
	snprintf(list, sizeof(list), "%s", env);
	for (tok = strtok_r(list, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save)) {
		bool known = false;

		for (int i = 0; i < FAST_N; i++) {
			if (strcmp(tok, "all") == 0 || strcmp(tok, names[i]) == 0) {
				disabled[i] = true;
				known = true;
			}
		}
		for (size_t i = 0; i < sizeof(client_names) / sizeof(client_names[0]); i++)
			known |= strcmp(tok, client_names[i]) == 0;
		if (!known)
			log_warn("SOCKRPC_DISABLE: unknown fast path \"%s\" ignored", tok);
	}
	for (int i = 0; i < FAST_N; i++)
		if (disabled[i])
			log_info("fast path %s is off (SOCKRPC_DISABLE)", names[i]);
}

bool
fast_path_on(enum fast_path p)
{
	return !disabled[p];
}
