/*
 * parse_addr.c - reads the addresses a rule names: IP addresses and CIDR blocks with an
 * optional port, the named address sets (@loopback, @private, ...), and Unix socket paths
 * and abstract names. Stores them as struct cidr and struct unix_path.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "parse.h"

/* sun_path less its NUL terminator: the longest Unix path a socket can have. */
#define UNIX_PATH_MAX_LEN (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

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

static int parse_address_list(struct parser *ps, const char *s, size_t len, struct rule *r);
static int parse_cidr(const char *s, struct cidr *out, char *msg, size_t msg_len);

/* ADDRS, ADDRS:PORTS (one colon), [ADDRS] or [ADDRS]:PORTS; ADDRS is a comma list of
 * addresses, CIDRs and @sets. A bare token with two or more colons is IPv6 without a port. */
int
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

/* /path, /prefix/... with a trailing `*`; the same after `abstract:` for abstract names. */
int
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
	    array_push(&r->paths, &r->n_paths, sizeof(up), &up) != 0) {
		free(up.path);
		perr(ps, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* An address token: [..., @set, anything with a colon or a slash, or digits and dots. Host
 * names have a letter somewhere, so `1password.com` stays a host pattern. */
bool
looks_like_address(const char *s)
{
	if (s[0] == '[' || s[0] == '@' || strpbrk(s, ":/") != NULL)
		return true;
	for (; *s != '\0'; s++)
		if (!isdigit((unsigned char)*s) && *s != '.' && *s != '/' && *s != ',')
			return false;
	return true;
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
				    array_push(&r->cidrs, &r->n_cidrs, sizeof(c), &c) != 0) {
					perr(ps, "out of memory");
					return -ENOMEM;
				}
			}
		} else {
			if (parse_cidr(item, &c, msg, sizeof(msg)) != 0) {
				perr(ps, "%s", msg);
				return -1;
			}
			if (array_push(&r->cidrs, &r->n_cidrs, sizeof(c), &c) != 0) {
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
