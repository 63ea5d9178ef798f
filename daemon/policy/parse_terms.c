/*
 * parse_terms.c - reads the value of each term of a rule into struct rule: who (uid=,
 * user=, gid=, group=, exe=, cgroup=, principal=, spki=; names resolved here, once, so matching
 * never touches NSS), operation lists, ports, host name patterns, option names and transports, and
 * the small helpers every reader uses. Addresses are parse_addr.c's.
 */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

static const struct {
	const char *name;
	unsigned bit;
} transport_names[] = {
    {"tcp", TRANSPORT_TCP},
    {"udp", TRANSPORT_UDP},
    {"raw", TRANSPORT_RAW},
    {"unix", TRANSPORT_UNIX},
};

static int
hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int who_value(struct parser *ps, const char *key, const char *item, struct rule *r);
static int claimed_exe(struct parser *ps, const char *key, const char *v, struct rule *r);

/* "sha256:" and 64 hex digits (either case), as `openssl ... | sha256sum` prints them. */
int
parse_spki(const char *s, uint8_t out[32])
{
	if (strncmp(s, "sha256:", 7) != 0 || strlen(s + 7) != 64)
		return -1;
	s += 7;
	for (int i = 0; i < 32; i++) {
		int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* One KEY=VALUE[,VALUE...] term of WHO. uid=/user= set one condition, gid=/group= another. */
int
parse_who(struct parser *ps, const char *term, struct rule *r)
{
	const char *eq = strchr(term, '=');
	size_t klen = eq - term;
	const char *v = eq + 1;
	char key[16], item[256];
	bool is_uid, is_gid;
	int rc;

	if (klen >= sizeof(key)) {
		perr(ps,
		     "unknown selector '%.*s=' (uid, gid, user, group, exe, cgroup, principal, "
		     "spki, claimed-exe)",
		     (int)klen, term);
		return -1;
	}
	memcpy(key, term, klen);
	key[klen] = '\0';
	if (strcmp(key, "claimed-exe") == 0 || strcmp(key, "claimed-exe!") == 0)
		return claimed_exe(ps, key, v, r);
	is_uid = strcmp(key, "uid") == 0 || strcmp(key, "user") == 0;
	is_gid = strcmp(key, "gid") == 0 || strcmp(key, "group") == 0;
	if (!is_uid && !is_gid && strcmp(key, "exe") != 0 && strcmp(key, "cgroup") != 0 &&
	    strcmp(key, "principal") != 0 && strcmp(key, "spki") != 0) {
		perr(ps,
		     "unknown selector '%s=' (uid, gid, user, group, exe, cgroup, principal, spki, "
		     "claimed-exe)",
		     key);
		return -1;
	}
	if ((is_uid && r->n_uids > 0) || (is_gid && r->n_gids > 0) ||
	    (key[0] == 'e' && r->n_exes > 0) || (key[0] == 'c' && r->n_cgroups > 0) ||
	    (key[0] == 'p' && r->n_principals > 0) || (key[0] == 's' && r->n_spkis > 0)) {
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

		if ((rc = who_value(ps, key, item, r)) != 0)
			return rc;
	}
	return 0;
}

/*
 * claimed-exe=GLOB[,GLOB...] or claimed-exe!=...: what the client says it runs (a
 * launcher's Hello). Nothing verifies a claim, so it may only take access away: deny
 * rules only.
 */
static int
claimed_exe(struct parser *ps, const char *key, const char *v, struct rule *r)
{
	char item[256];

	if (r->allow) {
		perr(ps, "claimed-exe= only in deny rules: it is what the client says, never "
		         "verified, so an allow rule on it would grant access on a claim");
		return -1;
	}
	if (r->n_claimed_exes > 0) {
		perr(ps, "duplicate claimed-exe (give several values as claimed-exe=a,b)");
		return -1;
	}
	r->claimed_exe_negated = key[strlen(key) - 1] == '!';
	if (*v == '\0') {
		perr(ps, "%s= needs a value", key);
		return -1;
	}
	while (*v != '\0') {
		size_t len = strcspn(v, ",");

		if (len == 0 || len >= sizeof(item) || v[0] != '/') {
			perr(ps, "%s= needs absolute paths or globs, got '%s'", key, v);
			return -1;
		}
		memcpy(item, v, len);
		item[len] = '\0';
		v += len;
		if (*v == ',' && *++v == '\0') {
			perr(ps, "bad %s= value", key);
			return -1;
		}
		if (array_push_string(&r->claimed_exes, &r->n_claimed_exes, item) != 0) {
			perr(ps, "out of memory");
			return -ENOMEM;
		}
	}
	return 0;
}

/* One VALUE of a who term: a number, a user or group name (looked up now) or a path glob. */
static int
who_value(struct parser *ps, const char *key, const char *item, struct rule *r)
{
	unsigned long long num;

	if (strcmp(key, "uid") == 0 || strcmp(key, "gid") == 0) {
		/* (uid_t)-1 means "no change" to chown and friends; never a real id. */
		if (parse_uint(item, UINT32_MAX - 1, &num) != 0) {
			perr(ps, "bad %s '%s'", key, item);
			return -1;
		}
		if (key[0] == 'u') {
			uid_t u = (uid_t)num;
			if (array_push(&r->uids, &r->n_uids, sizeof(u), &u) != 0)
				goto nomem;
		} else {
			gid_t g = (gid_t)num;
			if (array_push(&r->gids, &r->n_gids, sizeof(g), &g) != 0)
				goto nomem;
		}
	} else if (strcmp(key, "user") == 0) {
		struct passwd *pw;

		errno = 0;
		if ((pw = getpwnam(item)) == NULL) {
			perr(ps, "unknown user '%s'", item);
			return -1;
		}
		if (array_push(&r->uids, &r->n_uids, sizeof(pw->pw_uid), &pw->pw_uid) != 0)
			goto nomem;
	} else if (strcmp(key, "group") == 0) {
		struct group *gr;

		if ((gr = getgrnam(item)) == NULL) {
			perr(ps, "unknown group '%s'", item);
			return -1;
		}
		if (array_push(&r->gids, &r->n_gids, sizeof(gr->gr_gid), &gr->gr_gid) != 0)
			goto nomem;
	} else if (strcmp(key, "principal") == 0) {
		if (array_push_string(&r->principals, &r->n_principals, item) != 0)
			goto nomem;
	} else if (strcmp(key, "spki") == 0) {
		uint8_t hash[32];

		if (parse_spki(item, hash) != 0) {
			perr(ps, "spki= needs sha256: and 64 hex digits, got '%s'", item);
			return -1;
		}
		if (array_push(&r->spkis, &r->n_spkis, sizeof(hash), hash) != 0)
			goto nomem;
	} else {
		if (item[0] != '/') {
			perr(ps, "%s= needs an absolute path or glob, got '%s'", key, item);
			return -1;
		}
		if (array_push_string(key[0] == 'e' ? &r->exes : &r->cgroups,
		                      key[0] == 'e' ? &r->n_exes : &r->n_cgroups, item) != 0)
			goto nomem;
	}
	return 0;
nomem:
	perr(ps, "out of memory");
	return -ENOMEM;
}

int
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
int
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
		if (array_push(&r->ports, &r->n_ports, sizeof(pr), &pr) != 0) {
			perr(ps, "out of memory");
			return -ENOMEM;
		}
	}
	return 0;
}

/* NAME[,NAME...]: example.com, *.example.com or *. */
int
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
		    array_push(&r->names, &r->n_names, sizeof(np), &np) != 0) {
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

/* NAME[,NAME...]: options this OS knows (options.c's table: SO_*, TCP_NODELAY, IP_TTL...),
 * any case. */
int
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
		if (array_push(&r->options, &r->n_options, sizeof(option), &option) != 0) {
			perr(ps, "out of memory");
			return -ENOMEM;
		}
	}
	return 0;
}

/* tcp, udp, raw, unix or a comma list of them: their bits, or 0 if s is anything else
 * (including a list repeating one). */
unsigned
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

/* Strict decimal: digits only, no sign, no spaces, at most `max`. */
int
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
int
array_push(void *arrayp, size_t *n, size_t size, const void *elem)
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

int
array_push_string(char ***array, size_t *n, const char *s)
{
	char *copy;

	if ((copy = strdup(s)) == NULL)
		return -ENOMEM;
	if (array_push(array, n, sizeof(copy), &copy) != 0) {
		free(copy);
		return -ENOMEM;
	}
	return 0;
}
