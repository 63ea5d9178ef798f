/*
 * audit.h - the audit trail: one JSON line per policy decision and per handle closed.
 * Lines go to a file (--audit FILE) or to stderr, buffered by the daemon (audit_buffer).
 * Writing never fails the caller: a write error is counted and reported once.
 */
#ifndef SOCKRPCD_AUDIT_H
#define SOCKRPCD_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include "policy.h"

struct audit;

/* path NULL: stderr. Returns a new sink (free with audit_free), or NULL with a message in err. */
struct audit *audit_open(const char *path, char *err, size_t err_len);

/* Buffers lines, flushed on a timer of base's loop, when full, on reopen and on free
 * (audit.c). 0, or -1: lines are written one by one. */
struct event_base;
int audit_buffer(struct audit *a, struct event_base *base);
/* Writes the buffered lines now. a NULL: does nothing. */
void audit_flush(struct audit *a);
/* Flushes and stops buffering: before base is freed. a NULL: does nothing. */
void audit_unbuffer(struct audit *a);

/* Reopens the file (after log rotation, on SIGHUP), after flushing. Returns 0 or -errno. */
int audit_reopen(struct audit *a);

/* As audit_reopen, with the file another process opened (the privileged parent, for the
 * worker, which may not): takes fd, even on failure. */
void audit_reopen_fd(struct audit *a, int fd);

/* Every line starts {"time":"2024-05-01T12:00:00.123Z" (UTC, ms), "event":...; absent
 * values are null. Strings are JSON-escaped; bytes that are not UTF-8 appear as \\xNN.
 * a NULL: does nothing. */

/* {"time":..., "event":"decision", "session":..., "transport":"unix", "uid":..., "gid":...,
 *  "pid":..., "exe":... (a TLS peer: "transport":"tls", "peer", "principal", "spki"),
 *  "op":..., "family":..., "type":..., "address":..., "port":..., "name":..., "decision":
 *  "allow"|"deny", "rule":"FILE:LINE", "reason":...} */
void audit_decision(struct audit *a, uint64_t session, const struct policy_request *rq,
                    const struct policy_decision *d);

/* {"time":..., "event":"close", "session":..., "uid":..., "handle":..., "bytes_in":...,
 *  "bytes_out":..., "reason":...} */
void audit_handle_closed(struct audit *a, uint64_t session, const struct identity *who,
                         int64_t handle, uint64_t bytes_in, uint64_t bytes_out, const char *reason);

/* {"time":..., "event":"handback", "session":..., "uid":..., "handle":..., "address":...,
 *  "port":..., "cookie":..., "decision":"allow"|"deny", "reason":...}: a socket handed to
 *  the client (cookie: its SO_COOKIE, null if refused or unknown), or a refusal. */
void audit_handback(struct audit *a, uint64_t session, const struct identity *who, int64_t handle,
                    const char *address, int port, uint64_t cookie, bool allowed,
                    const char *reason);

/* Lines that could not be written since the sink was opened. */
uint64_t audit_write_errors(const struct audit *a);

/* Accepts NULL. Closes the file (never stderr). */
/* A TLS client refused during its handshake (it never became a session): its address and
 * why (no certificate, a wrong CA, expired, not TLS 1.3, not TLS at all, too slow). */
void audit_tls_refused(struct audit *a, const char *peer_address, const char *reason);
void audit_free(struct audit *a);

#endif
