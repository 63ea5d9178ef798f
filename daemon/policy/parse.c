/*
 * parse.c - reads a policy file into the rule list of policy_internal.h: lines, words and
 * strings, `limit` lines, and the shape of a rule (who, operations, then where, limits and
 * reason), each term's value read by parse_terms.c and parse_addr.c. The grammar is in
 * docs/policy.md; every error names FILE:LINE. Lifetime and the default are policy.c's.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parse.h"

/* A policy line longer than this is a mistake (or not a policy file at all). */
#define POLICY_MAX_LINE 4096

struct token {
	char *text;
	bool quoted;
};

/* The words of one rule as parse_rule walks them. */
struct words {
	struct token *t;
	size_t n;
	size_t i;          /* the word being read */
	bool port_keyword; /* the ports came from `port ...` (for an error message) */
};

static const char *const limit_names[] = {"sessions", "sessions-per-uid", "handles-per-session",
                                          "queued-bytes"};

static int parse_line(struct parser *ps, char *line);
static int tokenize(struct parser *ps, const char *line, char *buf, struct token *toks,
                    size_t *n_toks);
static int parse_limit(struct parser *ps, struct token *t, size_t n);
static int parse_rule(struct parser *ps, struct token *t, size_t n, struct rule *r);
static int rule_who(struct parser *ps, struct words *w, struct rule *r);
static int rule_ops(struct parser *ps, struct words *w, struct rule *r);
static int rule_word(struct parser *ps, struct words *w, struct rule *r);
static int rule_transport(struct parser *ps, const char *word, unsigned bits, struct rule *r);
static int rule_ipver(struct parser *ps, const char *word, struct rule *r);
static int rule_port_or_host(struct parser *ps, struct words *w, struct rule *r);
static int rule_reason(struct parser *ps, struct words *w, struct rule *r);
static int rule_session_limit(struct parser *ps, struct words *w, struct rule *r);
static int rule_target(struct parser *ps, const char *word, struct rule *r);
static int rule_check(struct parser *ps, const struct words *w, const struct rule *r);
static const char *words_arg(const struct words *w);

struct policy *
policy_load(const char *path, char *errors, size_t errors_len)
{
	struct policy *p;
	FILE *f;

	if (errors_len > 0)
		errors[0] = '\0';
	if ((f = fopen(path, "re")) == NULL) {
		if (errors_len > 0)
			snprintf(errors, errors_len, "%s: %s\n", path, strerror(errno));
		return NULL;
	}
	p = policy_load_stream(f, path, errors, errors_len);
	fclose(f);
	return p;
}

struct policy *
policy_load_stream(FILE *f, const char *name, char *errors, size_t errors_len)
{
	struct parser ps = {0};
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	if (errors_len > 0)
		errors[0] = '\0';
	ps.file = name;
	ps.errors = errors;
	ps.errors_len = errors_len;
	if ((ps.p = calloc(1, sizeof(*ps.p))) == NULL || (ps.p->source = strdup(name)) == NULL) {
		perr(&ps, "out of memory");
		goto fail;
	}
	ps.p->limits = (struct policy_limits){-1, -1, -1, -1};

	while ((len = getline(&line, &cap, f)) != -1) {
		ps.line++;
		if (len > POLICY_MAX_LINE) {
			perr(&ps, "line too long (max %d bytes)", POLICY_MAX_LINE);
			continue;
		}
		if ((size_t)len != strlen(line)) {
			perr(&ps, "NUL byte in line");
			continue;
		}
		if (parse_line(&ps, line) == -ENOMEM)
			break;
	}
	if (ferror(f)) {
		ps.line++;
		perr(&ps, "read error: %s", strerror(errno));
	}
	free(line);
	if (ps.n_errors > 0)
		goto fail;
	return ps.p;
fail:
	policy_free(ps.p);
	return NULL;
}

void
perr(struct parser *ps, const char *fmt, ...)
{
	va_list ap;
	size_t room;
	int n;

	ps->n_errors++;
	if (ps->errors == NULL || ps->errors_used + 1 >= ps->errors_len)
		return;
	room = ps->errors_len - ps->errors_used;
	n = snprintf(ps->errors + ps->errors_used, room, "%s:%d: ", ps->file, ps->line);
	if (n < 0 || (size_t)n >= room)
		goto full;
	ps->errors_used += n;
	room -= n;
	va_start(ap, fmt);
	n = vsnprintf(ps->errors + ps->errors_used, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room)
		goto full;
	ps->errors_used += n;
	room -= n;
	if (room < 2)
		goto full;
	ps->errors[ps->errors_used++] = '\n';
	ps->errors[ps->errors_used] = '\0';
	return;
full:
	/* Keep the buffer a whole number of lines where possible: end with a newline. */
	ps->errors_used = ps->errors_len - 1;
	if (ps->errors_len >= 2)
		ps->errors[ps->errors_len - 2] = '\n';
	ps->errors[ps->errors_len - 1] = '\0';
}

/* One line: blank, comment, `limit ...` or a rule. Returns 0, -1 (error reported), or
 * -ENOMEM. */
static int
parse_line(struct parser *ps, char *line)
{
	struct token *toks;
	struct rule r;
	size_t n = 0, len = strlen(line);
	char *buf;
	int rc = -1;

	toks = calloc(len / 2 + 2, sizeof(*toks));
	buf = malloc(len + 1);
	if (toks == NULL || buf == NULL) {
		perr(ps, "out of memory");
		rc = -ENOMEM;
		goto done;
	}
	if (tokenize(ps, line, buf, toks, &n) == -1)
		goto done;
	if (n == 0) {
		rc = 0;
	} else if (toks[0].quoted) {
		perr(ps, "missing action (allow or deny) before a string");
	} else if (strcmp(toks[0].text, "limit") == 0) {
		rc = parse_limit(ps, toks, n);
	} else if (strcmp(toks[0].text, "allow") == 0 || strcmp(toks[0].text, "deny") == 0) {
		memset(&r, 0, sizeof(r));
		if ((rc = parse_rule(ps, toks, n, &r)) == 0 &&
		    (rc = array_push(&ps->p->rules, &ps->p->n_rules, sizeof(r), &r)) != 0)
			perr(ps, "out of memory");
		if (rc != 0)
			rule_free(&r);
	} else if (strchr(toks[0].text, '=') != NULL || strcmp(toks[0].text, "*") == 0) {
		perr(ps, "missing action (allow or deny) before '%s'", toks[0].text);
	} else {
		perr(ps, "unknown keyword '%s' (expected allow, deny or limit)", toks[0].text);
	}
done:
	free(toks);
	free(buf);
	return rc;
}

/* Splits a line into words and "strings" (with \" and \\ escapes); `#` outside a string
 * starts a comment. Token texts point into buf (strlen(line) + 1 bytes). */
static int
tokenize(struct parser *ps, const char *line, char *buf, struct token *toks, size_t *n_toks)
{
	const char *s = line;
	char *o = buf;
	size_t n = 0;

	for (;;) {
		while (isspace((unsigned char)*s))
			s++;
		if (*s == '\0' || *s == '#')
			break;
		toks[n].text = o;
		toks[n].quoted = false;
		if (*s == '"') {
			toks[n].quoted = true;
			for (s++;; s++) {
				if (*s == '\0' || *s == '\n') {
					perr(ps, "unterminated string");
					return -1;
				}
				if (*s == '"')
					break;
				if (*s == '\\') {
					s++;
					if (*s != '"' && *s != '\\') {
						perr(ps,
						     "bad escape in string (only \\\" and \\\\)");
						return -1;
					}
				}
				if ((unsigned char)*s < 0x20 && *s != '\t') {
					perr(ps, "control character in string");
					return -1;
				}
				*o++ = *s;
			}
			s++;
			if (*s != '\0' && !isspace((unsigned char)*s) && *s != '#') {
				perr(ps, "missing space after string");
				return -1;
			}
		} else {
			while (*s != '\0' && !isspace((unsigned char)*s) && *s != '#') {
				if (*s == '"') {
					perr(ps, "unexpected '\"' inside a word");
					return -1;
				}
				*o++ = *s++;
			}
		}
		*o++ = '\0';
		n++;
	}
	*n_toks = n;
	return 0;
}

/* limit NAME VALUE */
static int
parse_limit(struct parser *ps, struct token *t, size_t n)
{
	struct policy_limits *l = &ps->p->limits;
	unsigned long long v, mult = 1;
	char num[32];
	size_t i, len;

	if (n != 3 || t[1].quoted || t[2].quoted) {
		perr(ps, "limit needs a name and a number: limit NAME VALUE");
		return -1;
	}
	for (i = 0; i < sizeof(limit_names) / sizeof(limit_names[0]); i++)
		if (strcmp(t[1].text, limit_names[i]) == 0)
			break;
	if (i == sizeof(limit_names) / sizeof(limit_names[0])) {
		perr(ps,
		     "unknown limit '%s' (sessions, sessions-per-uid, handles-per-session, "
		     "queued-bytes)",
		     t[1].text);
		return -1;
	}
	if (ps->seen_limit[i]) {
		perr(ps, "duplicate limit '%s'", t[1].text);
		return -1;
	}
	len = strlen(t[2].text);
	if (len == 0 || len >= sizeof(num))
		goto bad;
	memcpy(num, t[2].text, len + 1);
	if (i == 3) {
		switch (num[len - 1]) {
		case 'K':
		case 'k':
			mult = 1ull << 10;
			break;
		case 'M':
		case 'm':
			mult = 1ull << 20;
			break;
		case 'G':
		case 'g':
			mult = 1ull << 30;
			break;
		}
		if (mult != 1)
			num[len - 1] = '\0';
		if (parse_uint(num, INT64_MAX / mult, &v) != 0)
			goto bad;
		l->queued_bytes = (int64_t)(v * mult);
	} else {
		if (parse_uint(num, INT_MAX, &v) != 0)
			goto bad;
		if (i == 0)
			l->sessions = (int)v;
		else if (i == 1)
			l->sessions_per_uid = (int)v;
		else
			l->handles_per_session = (int)v;
	}
	ps->seen_limit[i] = true;
	return 0;
bad:
	perr(ps, "bad value '%s' for limit %s", t[2].text, t[1].text);
	return -1;
}

/* allow|deny WHO OPS [WHERE...] [max-handles N] [max-connections N] [reason "..."] */
static int
parse_rule(struct parser *ps, struct token *t, size_t n, struct rule *r)
{
	struct words w = {.t = t, .n = n, .i = 1};
	int rc;

	r->line = ps->line;
	r->allow = strcmp(t[0].text, "allow") == 0;
	r->max_handles = -1;
	r->max_connections = -1;

	if ((rc = rule_who(ps, &w, r)) != 0 || (rc = rule_ops(ps, &w, r)) != 0)
		return rc;
	for (; w.i < w.n; w.i++)
		if ((rc = rule_word(ps, &w, r)) != 0)
			return rc;
	return rule_check(ps, &w, r);
}

/* WHO: `*`, or one or more KEY=VALUE terms. */
static int
rule_who(struct parser *ps, struct words *w, struct rule *r)
{
	struct token *t = w->t;
	int rc;

	if (w->i >= w->n || t[w->i].quoted ||
	    (strcmp(t[w->i].text, "*") != 0 && !strchr(t[w->i].text, '='))) {
		perr(ps, "missing who (*, uid=, gid=, user=, group=, exe= or cgroup=)%s%s%s",
		     w->i < w->n ? " before '" : "", w->i < w->n ? t[w->i].text : "",
		     w->i < w->n ? "'" : "");
		return -1;
	}
	if (strcmp(t[w->i].text, "*") == 0) {
		w->i++;
		return 0;
	}
	for (; w->i < w->n && !t[w->i].quoted && strchr(t[w->i].text, '=') != NULL; w->i++)
		if ((rc = parse_who(ps, t[w->i].text, r)) != 0)
			return rc;
	return 0;
}

/* OPS: `*` or a comma list of operations. */
static int
rule_ops(struct parser *ps, struct words *w, struct rule *r)
{
	int rc;

	if (w->i >= w->n || w->t[w->i].quoted) {
		perr(ps, "missing operation (create, connect, bind, listen, accept, send, "
		         "resolve, option or *)");
		return -1;
	}
	if ((rc = parse_ops(ps, w->t[w->i].text, &r->ops)) != 0)
		return rc;
	w->i++;
	return 0;
}

/* One word after OPS (with its argument, if it takes one: w->i then points at that). */
static int
rule_word(struct parser *ps, struct words *w, struct rule *r)
{
	const char *word = w->t[w->i].text;
	unsigned bits;

	if (w->t[w->i].quoted) {
		perr(ps, "unexpected string \"%s\" (strings follow 'reason')", word);
		return -1;
	}
	if ((bits = parse_transports(word)) != 0)
		return rule_transport(ps, word, bits, r);
	if (strcmp(word, "ipv4") == 0 || strcmp(word, "ipv6") == 0)
		return rule_ipver(ps, word, r);
	if (strcmp(word, "port") == 0 || strcmp(word, "host") == 0)
		return rule_port_or_host(ps, w, r);
	if (strcmp(word, "reason") == 0)
		return rule_reason(ps, w, r);
	if (strcmp(word, "max-handles") == 0 || strcmp(word, "max-connections") == 0)
		return rule_session_limit(ps, w, r);
	if (strcmp(word, "handback") == 0) {
		if (r->handback) {
			perr(ps, "duplicate handback");
			return -1;
		}
		r->handback = true;
		return 0;
	}
	return rule_target(ps, word, r);
}

/* tcp, udp, raw, unix or a comma list of them (`bits`, from parse_transports). */
static int
rule_transport(struct parser *ps, const char *word, unsigned bits, struct rule *r)
{
	if (r->transports & bits) {
		perr(ps, "duplicate transport in '%s'", word);
		return -1;
	}
	r->transports |= bits;
	return 0;
}

static int
rule_ipver(struct parser *ps, const char *word, struct rule *r)
{
	unsigned bit = word[3] == '4' ? IPVER_4 : IPVER_6;

	if (r->ipvers & bit) {
		perr(ps, "duplicate '%s'", word);
		return -1;
	}
	r->ipvers |= bit;
	return 0;
}

/* `port PORTS` or `host NAMES`: a keyword and the unquoted word after it. */
static int
rule_port_or_host(struct parser *ps, struct words *w, struct rule *r)
{
	const char *arg = words_arg(w);
	int rc;

	if (w->t[w->i].text[0] == 'p') {
		if (arg == NULL) {
			perr(ps, "'port' needs a port, range or list");
			return -1;
		}
		if (r->n_ports > 0) {
			perr(ps, "duplicate port");
			return -1;
		}
		if ((rc = parse_ports(ps, arg, r)) != 0)
			return rc;
		w->port_keyword = true;
	} else {
		if (arg == NULL) {
			perr(ps, "'host' needs a name pattern");
			return -1;
		}
		if ((rc = parse_names(ps, arg, r)) != 0)
			return rc;
	}
	w->i++;
	return 0;
}

/* reason "TEXT": shown in decisions and the audit log instead of a generated one. */
static int
rule_reason(struct parser *ps, struct words *w, struct rule *r)
{
	const char *text;

	if (w->i + 1 >= w->n || !w->t[w->i + 1].quoted) {
		perr(ps, "'reason' needs a \"quoted string\"");
		return -1;
	}
	text = w->t[w->i + 1].text;
	if (r->reason != NULL) {
		perr(ps, "duplicate reason");
		return -1;
	}
	if (strlen(text) >= sizeof(((struct policy_decision *)0)->reason)) {
		perr(ps, "reason too long (max %zu bytes)",
		     sizeof(((struct policy_decision *)0)->reason) - 1);
		return -1;
	}
	if ((r->reason = strdup(text)) == NULL) {
		perr(ps, "out of memory");
		return -ENOMEM;
	}
	w->i++;
	return 0;
}

/* max-handles N, max-connections N: per-session limits an allow rule grants. */
static int
rule_session_limit(struct parser *ps, struct words *w, struct rule *r)
{
	const char *word = w->t[w->i].text, *arg = words_arg(w);
	int *field = word[4] == 'h' ? &r->max_handles : &r->max_connections;
	unsigned long long v;

	if (arg == NULL || parse_uint(arg, INT_MAX, &v) != 0) {
		perr(ps, "'%s' needs a number", word);
		return -1;
	}
	if (*field != -1) {
		perr(ps, "duplicate %s", word);
		return -1;
	}
	*field = (int)v;
	w->i++;
	return 0;
}

/* Any other word names where: `*`, a Unix path, an address, option names or host names. */
static int
rule_target(struct parser *ps, const char *word, struct rule *r)
{
	if (strcmp(word, "*") == 0)
		return 0; /* "anywhere": the same as no address at all */
	if (word[0] == '/')
		return parse_unix_path(ps, word, false, r);
	if (strncmp(word, "abstract:", 9) == 0)
		return parse_unix_path(ps, word + 9, true, r);
	if (strncasecmp(word, "SO_", 3) == 0)
		return parse_options(ps, word, r);
	if (looks_like_address(word))
		return parse_address_token(ps, word, r);
	if ((r->ops & (1u << POLICY_RESOLVE)) && strpbrk(word, ".*") != NULL)
		return parse_names(ps, word, r);
	perr(ps, "unknown keyword '%s'", word);
	return -1;
}

/* Why `handback` makes no sense on r, or NULL. */
static const char *
handback_refusal(const struct rule *r)
{
	if (!r->allow)
		return "applies only to allow rules";
	if (!(r->ops & (1u << POLICY_CONNECT | 1u << POLICY_ACCEPT)))
		return "applies only to connect and accept rules";
	if (r->transports != 0 && !(r->transports & (TRANSPORT_TCP | TRANSPORT_UDP)))
		return "applies only to tcp or udp (raw and unix sockets are never handed back)";
	return NULL;
}

/* What each word allowed alone but the rule as a whole does not. */
static int
rule_check(struct parser *ps, const struct words *w, const struct rule *r)
{
	const char *err;

	if (r->n_ports > 0 && r->transports == TRANSPORT_UNIX) {
		perr(ps, "%s applies only to tcp, udp or raw, not unix",
		     w->port_keyword ? "'port'" : "a port");
		return -1;
	}
	if (r->ipvers != 0 && r->transports == TRANSPORT_UNIX) {
		perr(ps, "ipv4/ipv6 apply only to tcp, udp or raw, not unix");
		return -1;
	}
	if (r->n_names > 0 && !(r->ops & (1u << POLICY_RESOLVE))) {
		perr(ps, "host patterns apply only to resolve rules");
		return -1;
	}
	if (r->n_options > 0 && !(r->ops & (1u << POLICY_OPTION))) {
		perr(ps, "option names apply only to option rules");
		return -1;
	}
	if (!r->allow && (r->max_handles != -1 || r->max_connections != -1)) {
		perr(ps, "max-handles and max-connections apply only to allow rules");
		return -1;
	}
	if (r->handback && (err = handback_refusal(r)) != NULL) {
		perr(ps, "handback %s", err);
		return -1;
	}
	return 0;
}

/* The unquoted word after the current one, or NULL. */
static const char *
words_arg(const struct words *w)
{
	return w->i + 1 < w->n && !w->t[w->i + 1].quoted ? w->t[w->i + 1].text : NULL;
}
