/*
 * parse.h - what the parser's files share, and only they include: parse.c reads lines,
 * `limit`s and rules, and calls the term readers of parse_terms.c (who, operations, ports,
 * host names, options, transports) and parse_addr.c (addresses, CIDRs, named sets, Unix
 * paths). Every reader reports its errors through perr() as "FILE:LINE: message".
 */
#ifndef SOCKRPC_POLICY_PARSE_H
#define SOCKRPC_POLICY_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy_internal.h"

/* Where the parser is in which file, the errors written so far and the policy it builds. */
struct parser {
	const char *file;
	int line;
	char *errors;
	size_t errors_len;
	size_t errors_used;
	int n_errors;
	struct policy *p;
	bool seen_limit[4];
};

/* parse.c */
/* Appends "FILE:LINE: message\n" to the errors (as much as fits) and counts it. */
void perr(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* parse_terms.c: each returns 0, -1 (error reported) or -ENOMEM (reported too). */
int parse_who(struct parser *ps, const char *term, struct rule *r);
/* "sha256:HEX" (64 digits) into out. 0 or -1. */
int parse_spki(const char *s, uint8_t out[32]);
int parse_ops(struct parser *ps, const char *s, unsigned *ops);
int parse_ports(struct parser *ps, const char *s, struct rule *r);
int parse_names(struct parser *ps, const char *s, struct rule *r);
int parse_options(struct parser *ps, const char *s, struct rule *r);
/* The TRANSPORT_* bits of "tcp", "udp,unix", ...; 0 if s is anything else. */
unsigned parse_transports(const char *s);
/* Strict decimal: digits only, no sign, no spaces, at most `max`. 0 or -1. */
int parse_uint(const char *s, unsigned long long max, unsigned long long *out);
/* Appends one element (a copy of a string) to a realloc'd array. 0 or -ENOMEM. */
int array_push(void *arrayp, size_t *n, size_t size, const void *elem);
int array_push_string(char ***array, size_t *n, const char *s);

/* parse_addr.c */
int parse_address_token(struct parser *ps, const char *s, struct rule *r);
int parse_unix_path(struct parser *ps, const char *s, bool abstract, struct rule *r);
bool looks_like_address(const char *s);

#endif
