/*
 * policy_parse.c - reads a policy file into the rule list of policy_internal.h, and builds
 * the embedded default. The grammar is in docs/policy.md; every error names FILE:LINE.
 * Names (user=, group=) are resolved here, once, so matching never touches NSS.
 * Matching lives in policy_match.c.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "policy_internal.h"

/* A policy line longer than this is a mistake (or not a policy file at all). */
#define POLICY_MAX_LINE 4096

/* sun_path less its NUL terminator: the longest Unix path a socket can have. */
#define UNIX_PATH_MAX_LEN (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

struct token {
	char *text;
	bool quoted;
};

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

/* Named address sets. Kept in one table so docs/policy.md can list it verbatim. */
static const struct {
	const char *name;
	const char *cidrs[5];
} address_sets[] = {
    {"any", {"0.0.0.0/0", "::/0"}},
    {"loopback", {"127.0.0.0/8", "::1/128"}},
    {"private", {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"}},
    {"link-local", {"169.254.0.0/16", "fe80::/10"}},
    {"multicast", {"224.0.0.0/4", "ff00::/8"}},
    {"unspecified", {"0.0.0.0/32", "::/128"}},
};

static const struct {
	const char *name;
	unsigned bit;
} transport_names[] = {
    {"tcp", TRANSPORT_TCP},
    {"udp", TRANSPORT_UDP},
    {"raw", TRANSPORT_RAW},
    {"unix", TRANSPORT_UNIX},
};

static const char *const limit_names[] = {"sessions", "sessions-per-uid", "handles-per-session",
                                          "queued-bytes"};

static void perr(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int parse_line(struct parser *ps, char *line);
static int tokenize(struct parser *ps, const char *line, char *buf, struct token *toks,
                    size_t *n_toks);
static int parse_limit(struct parser *ps, struct token *t, size_t n);
static int parse_rule(struct parser *ps, struct token *t, size_t n, struct rule *r);
static int parse_who(struct parser *ps, const char *term, struct rule *r);
static int parse_ops(struct parser *ps, const char *s, unsigned *ops);
static int parse_ports(struct parser *ps, const char *s, struct rule *r);
static int parse_address_token(struct parser *ps, const char *s, struct rule *r);
static int parse_address_list(struct parser *ps, const char *s, size_t len, struct rule *r);
static int parse_cidr(const char *s, struct cidr *out, char *msg, size_t msg_len);
static int parse_unix_path(struct parser *ps, const char *s, bool abstract, struct rule *r);
static int parse_names(struct parser *ps, const char *s, struct rule *r);
static int parse_options(struct parser *ps, const char *s, struct rule *r);
static int parse_uint(const char *s, unsigned long long max, unsigned long long *out);
static int push(void *arrayp, size_t *n, size_t size, const void *elem);
static int push_string(char ***array, size_t *n, const char *s);
static void rule_free(struct rule *r);
static bool looks_like_address(const char *s);
static unsigned parse_transports(const char *s);

static struct policy static_deny_all = {
    .limits = {-1, -1, -1, -1},
    .is_static = true,
};

struct policy *
policy_default(uid_t daemon_uid)
{
	struct policy *p;
	struct rule *r;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return &static_deny_all;
	p->limits = (struct policy_limits){-1, -1, -1, -1};
	p->default_uid = daemon_uid;
	r = &p->default_rule;
	r->line = 0;
	r->allow = true;
	r->uids = &p->default_uid;
	r->n_uids = 1;
	r->ops = POLICY_ALL_OPS;
	r->all_options = true;
	r->max_handles = -1;
	r->max_connections = -1;
	p->rules = r;
	p->n_rules = 1;
	return p;
}

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
policy_free(struct policy *p)
{
	if (p == NULL || p->is_static)
		return;
	if (p->rules != &p->default_rule) {
		for (size_t i = 0; i < p->n_rules; i++)
			rule_free(&p->rules[i]);
		free(p->rules);
	}
	free(p->source);
	free(p);
}

int
policy_warnings(const struct policy *p, FILE *out)
{
	const char *file = policy_source(p);
	int n = 0;

	for (size_t i = 0; i < p->n_rules; i++) {
		const struct rule *r = &p->rules[i];

		if (!r->allow || r->line == 0)
			continue;
		/* identity.c reads /proc/PID/exe and /proc/PID/cgroup once, at accept, for the
		 * pid that connected; the connection then keeps that identity whoever holds it
		 * (tests/integration/test_policy_escapes.c shows the spoof working). */
		if (r->n_exes > 0) {
			fprintf(out,
			        "%s:%d: warning: exe= does not confine a user who can run a "
			        "matching program: the executable is read once, when the client "
			        "connects, so a process that connects, forks a child keeping the "
			        "connection and execs the program (or runs it with LD_PRELOAD, "
			        "under ptrace, or is passed its descriptor) gets this rule\n",
			        file, r->line);
			n++;
		}
		if (r->n_cgroups > 0) {
			fprintf(out,
			        "%s:%d: warning: cgroup= does not confine a user who can move a "
			        "process into a matching cgroup: the cgroup is read once, when the "
			        "client connects, so a process that joins it, connects and leaves "
			        "(or any process there that passes its descriptor on) keeps this "
			        "rule\n",
			        file, r->line);
			n++;
		}
		if ((r->ops & (1u << POLICY_OPTION)) && r->n_options == 0)
			fprintf(out,
			        "%s:%d: note: allows no privileged option (SO_DEBUG, SO_PRIORITY "
			        "above 6, ...): only a rule naming the option allows it\n",
			        file, r->line);
	}
	return n;
}

static void
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
		    (rc = push(&ps->p->rules, &ps->p->n_rules, sizeof(r), &r)) != 0)
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
	unsigned long long v;
	bool have_ports_kw = false;
	size_t i = 1;
	int rc;

	r->line = ps->line;
	r->allow = strcmp(t[0].text, "allow") == 0;
	r->max_handles = -1;
	r->max_connections = -1;

	if (i >= n || t[i].quoted || (strcmp(t[i].text, "*") != 0 && !strchr(t[i].text, '='))) {
		perr(ps, "missing who (*, uid=, gid=, user=, group=, exe= or cgroup=)%s%s%s",
		     i < n ? " before '" : "", i < n ? t[i].text : "", i < n ? "'" : "");
		return -1;
	}
	if (strcmp(t[i].text, "*") == 0) {
		i++;
	} else {
		for (; i < n && !t[i].quoted && strchr(t[i].text, '=') != NULL; i++)
			if ((rc = parse_who(ps, t[i].text, r)) != 0)
				return rc;
	}

	if (i >= n || t[i].quoted) {
		perr(ps, "missing operation (create, connect, bind, listen, accept, send, "
		         "resolve, option or *)");
		return -1;
	}
	if ((rc = parse_ops(ps, t[i].text, &r->ops)) != 0)
		return rc;
	i++;

	for (; i < n; i++) {
		const char *w = t[i].text;
		const char *arg = i + 1 < n && !t[i + 1].quoted ? t[i + 1].text : NULL;
		size_t k;

		if (t[i].quoted) {
			perr(ps, "unexpected string \"%s\" (strings follow 'reason')", w);
			return -1;
		}
		if ((k = parse_transports(w)) != 0) {
			if (r->transports & k) {
				perr(ps, "duplicate transport in '%s'", w);
				return -1;
			}
			r->transports |= k;
		} else if (strcmp(w, "ipv4") == 0 || strcmp(w, "ipv6") == 0) {
			unsigned bit = w[3] == '4' ? IPVER_4 : IPVER_6;

			if (r->ipvers & bit) {
				perr(ps, "duplicate '%s'", w);
				return -1;
			}
			r->ipvers |= bit;
		} else if (strcmp(w, "port") == 0) {
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
			have_ports_kw = true;
			i++;
		} else if (strcmp(w, "host") == 0) {
			if (arg == NULL) {
				perr(ps, "'host' needs a name pattern");
				return -1;
			}
			if ((rc = parse_names(ps, arg, r)) != 0)
				return rc;
			i++;
		} else if (strcmp(w, "reason") == 0) {
			if (i + 1 >= n || !t[i + 1].quoted) {
				perr(ps, "'reason' needs a \"quoted string\"");
				return -1;
			}
			if (r->reason != NULL) {
				perr(ps, "duplicate reason");
				return -1;
			}
			if (strlen(t[i + 1].text) >=
			    sizeof(((struct policy_decision *)0)->reason)) {
				perr(ps, "reason too long (max %zu bytes)",
				     sizeof(((struct policy_decision *)0)->reason) - 1);
				return -1;
			}
			if ((r->reason = strdup(t[i + 1].text)) == NULL) {
				perr(ps, "out of memory");
				return -ENOMEM;
			}
			i++;
		} else if (strcmp(w, "max-handles") == 0 || strcmp(w, "max-connections") == 0) {
			int *field = w[4] == 'h' ? &r->max_handles : &r->max_connections;

			if (arg == NULL || parse_uint(arg, INT_MAX, &v) != 0) {
				perr(ps, "'%s' needs a number", w);
				return -1;
			}
			if (*field != -1) {
				perr(ps, "duplicate %s", w);
				return -1;
			}
			*field = (int)v;
			i++;
		} else if (strcmp(w, "*") == 0) {
			/* "anywhere": the same as no address at all */
		} else if (w[0] == '/') {
			if ((rc = parse_unix_path(ps, w, false, r)) != 0)
				return rc;
		} else if (strncmp(w, "abstract:", 9) == 0) {
			if ((rc = parse_unix_path(ps, w + 9, true, r)) != 0)
				return rc;
		} else if (strncasecmp(w, "SO_", 3) == 0) {
			if ((rc = parse_options(ps, w, r)) != 0)
				return rc;
		} else if (looks_like_address(w)) {
			if ((rc = parse_address_token(ps, w, r)) != 0)
				return rc;
		} else if ((r->ops & (1u << POLICY_RESOLVE)) && strpbrk(w, ".*") != NULL) {
			if ((rc = parse_names(ps, w, r)) != 0)
				return rc;
		} else {
			perr(ps, "unknown keyword '%s'", w);
			return -1;
		}
	}

	if (r->n_ports > 0 && r->transports == TRANSPORT_UNIX) {
		perr(ps, "%s applies only to tcp, udp or raw, not unix",
		     have_ports_kw ? "'port'" : "a port");
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
	return 0;
}

/* One KEY=VALUE[,VALUE...] term of WHO. uid=/user= set one condition, gid=/group= another. */
static int
parse_who(struct parser *ps, const char *term, struct rule *r)
{
	const char *eq = strchr(term, '=');
	size_t klen = eq - term;
	const char *v = eq + 1;
	char key[16], item[256];
	bool is_uid, is_gid;
	unsigned long long num;

	if (klen >= sizeof(key)) {
		perr(ps, "unknown selector '%.*s=' (uid, gid, user, group, exe, cgroup)", (int)klen,
		     term);
		return -1;
	}
	memcpy(key, term, klen);
	key[klen] = '\0';
	is_uid = strcmp(key, "uid") == 0 || strcmp(key, "user") == 0;
	is_gid = strcmp(key, "gid") == 0 || strcmp(key, "group") == 0;
	if (!is_uid && !is_gid && strcmp(key, "exe") != 0 && strcmp(key, "cgroup") != 0) {
		perr(ps, "unknown selector '%s=' (uid, gid, user, group, exe, cgroup)", key);
		return -1;
	}
	if ((is_uid && r->n_uids > 0) || (is_gid && r->n_gids > 0) ||
	    (key[0] == 'e' && r->n_exes > 0) || (key[0] == 'c' && r->n_cgroups > 0)) {
		perr(ps, "duplicate %s (give several values as %s=a,b)",
		     is_uid   ? "uid=/user="
		     : is_gid ? "gid=/group="
		              : key,
		     key);
		return -1;
	}
	if (*v == '\0') {
		perr(ps, "%s= needs a value", key);
		return -1;
	}

	while (*v != '\0') {
		size_t len = strcspn(v, ",");

		if (len == 0 || len >= sizeof(item)) {
			perr(ps, "bad %s= value '%s'", key, eq + 1);
			return -1;
		}
		memcpy(item, v, len);
		item[len] = '\0';
		v += len;
		if (*v == ',' && *++v == '\0') {
			perr(ps, "bad %s= value '%s'", key, eq + 1);
			return -1;
		}

		if (strcmp(key, "uid") == 0 || strcmp(key, "gid") == 0) {
			/* (uid_t)-1 means "no change" to chown and friends; never a real id. */
			if (parse_uint(item, UINT32_MAX - 1, &num) != 0) {
				perr(ps, "bad %s '%s'", key, item);
				return -1;
			}
			if (key[0] == 'u') {
				uid_t u = (uid_t)num;
				if (push(&r->uids, &r->n_uids, sizeof(u), &u) != 0)
					goto nomem;
			} else {
				gid_t g = (gid_t)num;
				if (push(&r->gids, &r->n_gids, sizeof(g), &g) != 0)
					goto nomem;
			}
		} else if (strcmp(key, "user") == 0) {
			struct passwd *pw;

			errno = 0;
			if ((pw = getpwnam(item)) == NULL) {
				perr(ps, "unknown user '%s'", item);
				return -1;
			}
			if (push(&r->uids, &r->n_uids, sizeof(pw->pw_uid), &pw->pw_uid) != 0)
				goto nomem;
		} else if (strcmp(key, "group") == 0) {
			struct group *gr;

			if ((gr = getgrnam(item)) == NULL) {
				perr(ps, "unknown group '%s'", item);
				return -1;
			}
			if (push(&r->gids, &r->n_gids, sizeof(gr->gr_gid), &gr->gr_gid) != 0)
				goto nomem;
		} else {
			if (item[0] != '/') {
				perr(ps, "%s= needs an absolute path or glob, got '%s'", key, item);
				return -1;
			}
			if (push_string(key[0] == 'e' ? &r->exes : &r->cgroups,
			                key[0] == 'e' ? &r->n_exes : &r->n_cgroups, item) != 0)
				goto nomem;
		}
	}
	return 0;
nomem:
	perr(ps, "out of memory");
	return -ENOMEM;
}

static int
parse_ops(struct parser *ps, const char *s, unsigned *ops)
{
	char item[32];
	enum policy_op op;

	if (strcmp(s, "*") == 0) {
		*ops = POLICY_ALL_OPS;
		return 0;
	}
	while (*s != '\0') {
		size_t len = strcspn(s, ",");

		if (len == 0 || len >= sizeof(item)) {
			perr(ps, "bad operation list '%s'", s);
			return -1;
		}
		memcpy(item, s, len);
		item[len] = '\0';
		if (policy_op_parse(item, &op) != 0) {
			perr(ps,
			     "unknown operation '%s' (create, connect, bind, listen, accept, "
			     "send, resolve, option or *)",
			     item);
			return -1;
		}
		if (*ops & (1u << op)) {
			perr(ps, "duplicate operation '%s'", item);
			return -1;
		}
		*ops |= 1u << op;
		s += len;
		if (*s == ',' && *++s == '\0') {
			perr(ps, "bad operation list (trailing comma)");
			return -1;
		}
	}
	return 0;
}

/* PORT[,PORT...] where PORT is N, N-M or *. */
static int
parse_ports(struct parser *ps, const char *s, struct rule *r)
{
	const char *all = s;
	char item[32], *dash;
	unsigned long long lo, hi;
	struct port_range pr;

	if (*s == '\0') {
		perr(ps, "empty port");
		return -1;
	}
	while (*s != '\0') {
		size_t len = strcspn(s, ",");

		if (len == 0 || len >= sizeof(item)) {
			perr(ps, "bad port '%s'", all);
			return -1;
		}
		memcpy(item, s, len);
		item[len] = '\0';
		s += len;
		if (*s == ',' && *++s == '\0') {
			perr(ps, "bad port list '%s' (trailing comma)", all);
			return -1;
		}
		if (strcmp(item, "*") == 0) {
			lo = 0;
			hi = 65535;
		} else if ((dash = strchr(item, '-')) != NULL) {
			*dash = '\0';
			if (parse_uint(item, ULLONG_MAX, &lo) != 0 ||
			    parse_uint(dash + 1, ULLONG_MAX, &hi) != 0) {
				*dash = '-';
				perr(ps, "bad port range '%s'", item);
				return -1;
			}
			*dash = '-';
			if (lo > 65535 || hi > 65535) {
				perr(ps, "port range '%s' out of range (0-65535)", item);
				return -1;
			}
			if (lo > hi) {
				perr(ps, "bad port range '%s' (start after end)", item);
				return -1;
			}
		} else {
			if (parse_uint(item, ULLONG_MAX, &lo) != 0) {
				perr(ps, "bad port '%s'", item);
				return -1;
			}
			if (lo > 65535) {
				perr(ps, "port %s out of range (0-65535)", item);
				return -1;
			}
			hi = lo;
		}
		pr.lo = (uint16_t)lo;
		pr.hi = (uint16_t)hi;
		if (push(&r->ports, &r->n_ports, sizeof(pr), &pr) != 0) {
			perr(ps, "out of memory");
			return -ENOMEM;
		}
	}
	return 0;
}

/* ADDRS, ADDRS:PORTS (one colon), [ADDRS] or [ADDRS]:PORTS; ADDRS is a comma list of
 * addresses, CIDRs and @sets. A bare token with two or more colons is IPv6 without a port. */
static int
parse_address_token(struct parser *ps, const char *s, struct rule *r)
{
	const char *close, *colon;
	size_t n_colons = 0;
	int rc;

	if (s[0] == '[') {
		if ((close = strchr(s, ']')) == NULL) {
			perr(ps, "bad address '%s' (missing ']')", s);
			return -1;
		}
		if (close[1] != '\0' && close[1] != ':') {
			perr(ps, "bad address '%s' (expected ':PORT' after ']')", s);
			return -1;
		}
		if ((rc = parse_address_list(ps, s + 1, close - s - 1, r)) != 0)
			return rc;
		colon = close[1] == ':' ? close + 1 : NULL;
	} else {
		for (const char *c = s; *c != '\0'; c++)
			n_colons += *c == ':';
		colon = n_colons == 1 ? strchr(s, ':') : NULL;
		if ((rc = parse_address_list(ps, s, colon ? (size_t)(colon - s) : strlen(s), r)) !=
		    0)
			return rc;
	}
	if (colon == NULL)
		return 0;
	if (r->n_ports > 0) {
		perr(ps, "duplicate port");
		return -1;
	}
	return parse_ports(ps, colon + 1, r);
}

static int
parse_address_list(struct parser *ps, const char *s, size_t len, struct rule *r)
{
	char item[128], msg[160];
	struct cidr c;

	if (len == 0) {
		perr(ps, "empty address");
		return -1;
	}
	while (len > 0) {
		size_t ilen = 0;

		while (ilen < len && s[ilen] != ',')
			ilen++;
		if (ilen == 0 || ilen >= sizeof(item)) {
			perr(ps, "bad address '%.*s'", (int)(ilen ? ilen : len), s);
			return -1;
		}
		memcpy(item, s, ilen);
		item[ilen] = '\0';
		if (item[0] == '@') {
			size_t k, j;

			for (k = 0; k < sizeof(address_sets) / sizeof(address_sets[0]); k++)
				if (strcmp(item + 1, address_sets[k].name) == 0)
					break;
			if (k == sizeof(address_sets) / sizeof(address_sets[0])) {
				perr(ps,
				     "unknown address set '%s' (@any, @loopback, @private, "
				     "@link-local, @multicast, @unspecified)",
				     item);
				return -1;
			}
			for (j = 0; j < 5 && address_sets[k].cidrs[j] != NULL; j++) {
				if (parse_cidr(address_sets[k].cidrs[j], &c, msg, sizeof(msg)) !=
				        0 ||
				    push(&r->cidrs, &r->n_cidrs, sizeof(c), &c) != 0) {
					perr(ps, "out of memory");
					return -ENOMEM;
				}
			}
		} else {
			if (parse_cidr(item, &c, msg, sizeof(msg)) != 0) {
				perr(ps, "%s", msg);
				return -1;
			}
			if (push(&r->cidrs, &r->n_cidrs, sizeof(c), &c) != 0) {
				perr(ps, "out of memory");
				return -ENOMEM;
			}
		}
		s += ilen;
		len -= ilen;
		if (len > 0) {
			s++;
			len--;
			if (len == 0) {
				perr(ps, "bad address list (trailing comma)");
				return -1;
			}
		}
	}
	return 0;
}

/* ADDR or ADDR/PREFIX, IPv4 or IPv6. An IPv4-mapped IPv6 block (::ffff:a.b.c.d/96+) is
 * stored as the IPv4 block, since matching sees mapped addresses as IPv4 too. */
static int
parse_cidr(const char *s, struct cidr *out, char *msg, size_t msg_len)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	char addr[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned long long prefix;
	struct cidr c = {0};
	int max;

	if (alen >= sizeof(addr))
		goto bad;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, c.addr) == 1) {
		c.family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, c.addr) == 1) {
		c.family = AF_INET6;
		max = 128;
	} else {
		goto bad;
	}
	if (slash == NULL) {
		prefix = max;
	} else if (parse_uint(slash + 1, ULLONG_MAX, &prefix) != 0) {
		goto bad;
	} else if (prefix > (unsigned long long)max) {
		snprintf(msg, msg_len, "prefix /%llu too long for %s '%s' (max /%d)", prefix,
		         c.family == AF_INET ? "IPv4" : "IPv6", s, max);
		return -1;
	}
	c.prefix = (int)prefix;
	for (int bit = c.prefix; bit < max; bit++) {
		if (c.addr[bit / 8] & (0x80 >> (bit % 8))) {
			snprintf(msg, msg_len, "bad CIDR '%s': host bits set after /%d", s,
			         c.prefix);
			return -1;
		}
	}
	if (c.family == AF_INET6 && c.prefix >= 96 && memcmp(c.addr, mapped, 12) == 0) {
		c.family = AF_INET;
		c.prefix -= 96;
		memmove(c.addr, c.addr + 12, 4);
		memset(c.addr + 4, 0, 12);
	}
	*out = c;
	return 0;
bad:
	snprintf(msg, msg_len, "%s '%s'", slash ? "bad CIDR" : "bad address", s);
	return -1;
}

/* /path, /prefix/... with a trailing `*`; the same after `abstract:` for abstract names. */
static int
parse_unix_path(struct parser *ps, const char *s, bool abstract, struct rule *r)
{
	struct unix_path up = {0};
	size_t len = strlen(s);
	const char *star = strchr(s, '*');

	if (star != NULL && star != s + len - 1) {
		perr(ps, "'*' only at the end of a Unix path: '%s'", s);
		return -1;
	}
	up.prefix = star != NULL;
	up.abstract = abstract;
	up.len = len - up.prefix;
	if (up.len == 0 && !up.prefix) {
		perr(ps, "empty abstract socket name");
		return -1;
	}
	/* A path needs its NUL in sun_path; an abstract name its leading NUL: same room. */
	if (up.len > UNIX_PATH_MAX_LEN) {
		perr(ps, "Unix path too long (max %zu bytes): '%s'", UNIX_PATH_MAX_LEN, s);
		return -1;
	}
	if ((up.path = strndup(s, up.len)) == NULL ||
	    push(&r->paths, &r->n_paths, sizeof(up), &up) != 0) {
		free(up.path);
		perr(ps, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* NAME[,NAME...]: example.com, *.example.com or *. */
static int
parse_names(struct parser *ps, const char *s, struct rule *r)
{
	const char *all = s;
	char item[256];
	struct name_pattern np;

	while (*s != '\0') {
		size_t len = strcspn(s, ","), i;
		const char *body;

		if (len == 0 || len >= sizeof(item))
			goto bad;
		memcpy(item, s, len);
		item[len] = '\0';
		s += len;
		if (*s == ',' && *++s == '\0')
			goto bad;
		for (i = 0; i < len; i++)
			item[i] = (char)tolower((unsigned char)item[i]);
		if (len > 1 && item[len - 1] == '.')
			item[--len] = '\0';

		memset(&np, 0, sizeof(np));
		body = item;
		if (strcmp(item, "*") == 0) {
			np.any = true;
		} else if (strncmp(item, "*.", 2) == 0) {
			np.suffix = true;
			body = item + 2;
		}
		if (!np.any) {
			/* Labels of letters, digits, '-' and '_', none empty. */
			bool label_start = true;

			if (*body == '\0')
				goto bad_item;
			for (const char *c = body; *c != '\0'; c++) {
				if (*c == '.') {
					if (label_start)
						goto bad_item;
					label_start = true;
				} else if (isalnum((unsigned char)*c) || *c == '-' || *c == '_') {
					label_start = false;
				} else {
					goto bad_item;
				}
			}
			if (label_start)
				goto bad_item;
		}
		if ((np.text = strdup(np.suffix ? item + 1 : item)) == NULL ||
		    push(&r->names, &r->n_names, sizeof(np), &np) != 0) {
			free(np.text);
			perr(ps, "out of memory");
			return -ENOMEM;
		}
	}
	return 0;
bad_item:
	perr(ps, "bad host pattern '%s' (name, *.suffix or *)", item);
	return -1;
bad:
	perr(ps, "bad host pattern list '%s'", all);
	return -1;
}

/* SO_NAME[,SO_NAME...]: options this OS knows (policy_match.c's table), any case. */
static int
parse_options(struct parser *ps, const char *s, struct rule *r)
{
	const char *all = s;
	char item[32];
	int option;

	while (*s != '\0') {
		size_t len = strcspn(s, ",");

		if (len == 0 || len >= sizeof(item)) {
			perr(ps, "bad option list '%s'", all);
			return -1;
		}
		memcpy(item, s, len);
		item[len] = '\0';
		s += len;
		if (*s == ',' && *++s == '\0') {
			perr(ps, "bad option list '%s' (trailing comma)", all);
			return -1;
		}
		if (policy_option_parse(item, &option) != 0) {
			perr(ps, "unknown option '%s' (SO_DEBUG, SO_REUSEADDR, SO_KEEPALIVE, ...)",
			     item);
			return -1;
		}
		for (size_t i = 0; i < r->n_options; i++) {
			if (r->options[i] == option) {
				perr(ps, "duplicate option '%s'", item);
				return -1;
			}
		}
		if (push(&r->options, &r->n_options, sizeof(option), &option) != 0) {
			perr(ps, "out of memory");
			return -ENOMEM;
		}
	}
	return 0;
}

/* Strict decimal: digits only, no sign, no spaces, at most `max`. */
static int
parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Appends one element to a realloc'd array. Returns 0 or -ENOMEM (array untouched). */
static int
push(void *arrayp, size_t *n, size_t size, const void *elem)
{
	void **array = arrayp;
	char *grown;

	if ((grown = realloc(*array, (*n + 1) * size)) == NULL)
		return -ENOMEM;
	memcpy(grown + *n * size, elem, size);
	*array = grown;
	(*n)++;
	return 0;
}

static int
push_string(char ***array, size_t *n, const char *s)
{
	char *copy;

	if ((copy = strdup(s)) == NULL)
		return -ENOMEM;
	if (push(array, n, sizeof(copy), &copy) != 0) {
		free(copy);
		return -ENOMEM;
	}
	return 0;
}

static void
rule_free(struct rule *r)
{
	size_t i;

	free(r->uids);
	free(r->gids);
	for (i = 0; i < r->n_exes; i++)
		free(r->exes[i]);
	free(r->exes);
	for (i = 0; i < r->n_cgroups; i++)
		free(r->cgroups[i]);
	free(r->cgroups);
	free(r->cidrs);
	for (i = 0; i < r->n_paths; i++)
		free(r->paths[i].path);
	free(r->paths);
	free(r->ports);
	for (i = 0; i < r->n_names; i++)
		free(r->names[i].text);
	free(r->names);
	free(r->options);
	free(r->reason);
	memset(r, 0, sizeof(*r));
}

/* An address token: [..., @set, anything with a colon or a slash, or digits and dots. Host
 * names have a letter somewhere, so `1password.com` stays a host pattern. */
static bool
looks_like_address(const char *s)
{
	if (s[0] == '[' || s[0] == '@' || strpbrk(s, ":/") != NULL)
		return true;
	for (; *s != '\0'; s++)
		if (!isdigit((unsigned char)*s) && *s != '.' && *s != '/' && *s != ',')
			return false;
	return true;
}

/* tcp, udp, raw, unix or a comma list of them: their bits, or 0 if s is anything else
 * (including a list repeating one). */
static unsigned
parse_transports(const char *s)
{
	unsigned bits = 0;
	size_t k;

	while (*s != '\0') {
		size_t len = strcspn(s, ",");

		for (k = 0; k < sizeof(transport_names) / sizeof(transport_names[0]); k++)
			if (strlen(transport_names[k].name) == len &&
			    strncmp(s, transport_names[k].name, len) == 0)
				break;
		if (k == sizeof(transport_names) / sizeof(transport_names[0]) ||
		    (bits & transport_names[k].bit))
			return 0;
		bits |= transport_names[k].bit;
		s += len;
		if (*s == ',' && *++s == '\0')
			return 0;
	}
	return bits;
}
