/*
 * match.c - answers one request against a loaded policy: first matching rule wins, no
 * match denies. Pure functions over the rules of policy_internal.h; no allocation, no
 * I/O, so the daemon may call it once per resolved address without cost. Names and text
 * forms are format.c's, the option table options.c's.
 */
#include <arpa/inet.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "policy_internal.h"

/* A condition holds, fails, or cannot be known (an unreadable exe, truncated groups, a
 * malformed address). Unknown fails closed: a deny rule applies, an allow rule does not. */
enum match { MATCH_NO, MATCH_YES, MATCH_UNKNOWN };

static bool rule_applies(const struct rule *r, const struct policy_request *rq,
                         const struct target *t);
static enum match match_who(const struct rule *r, const struct identity *who);
static enum match match_transport(const struct rule *r, const struct policy_request *rq);
static enum match match_address(const struct rule *r, const struct target *t);
static enum match match_name(const struct rule *r, const char *name);
static enum match match_option(const struct rule *r, const struct policy_request *rq);

void
policy_decide(const struct policy *p, const struct policy_request *rq, struct policy_decision *out)
{
	struct target t;
	struct sockaddr_storage canon;
	struct policy_request canon_rq;
	const char *privilege;

	memset(out, 0, sizeof(*out));
	out->max_handles = -1;
	out->max_connections = -1;
	/* A destination is matched as what the kernel reaches (0.0.0.0 as 127.0.0.1). */
	if ((rq->op == POLICY_CONNECT || rq->op == POLICY_SEND) && rq->addr != NULL &&
	    rq->addr_len <= sizeof(canon)) {
		memcpy(&canon, rq->addr, rq->addr_len);
		if (policy_canonical_destination((struct sockaddr *)&canon, rq->addr_len)) {
			canon_rq = *rq;
			canon_rq.addr = (struct sockaddr *)&canon;
			rq = &canon_rq;
		}
	}
	decode_target(rq, &t);
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct rule *r = &p->rules[i];

		if (!rule_applies(r, rq, &t))
			continue;
		rule_label(p, r, out->rule, sizeof(out->rule));
		out->allow = r->allow;
		out->rule_line = r->line;
		/* Copies, not snprintf: a decision is made per socket and per connect. */
		if (r->reason != NULL)
			policy_copy_text(out->reason, sizeof(out->reason), r->reason);
		else if (r->line == 0)
			policy_copy_text(out->reason, sizeof(out->reason),
			                 r->allow ? "allowed by the embedded default policy"
			                          : "denied by the embedded default policy");
		else
			snprintf(out->reason, sizeof(out->reason), "%s by policy rule %.170s",
			         r->allow ? "allowed" : "denied", out->rule);
		if (r->allow) {
			out->max_handles = r->max_handles;
			out->max_connections = r->max_connections;
			/* A datagram socket can be re-connected or sent anywhere: only a rule
			 * that names udp hands one back. */
			out->handback = r->handback && (rq->type != SOCK_DGRAM ||
			                                (r->transports & TRANSPORT_UDP) != 0);
		}
		return;
	}
	out->allow = false;
	policy_copy_text(out->rule, sizeof(out->rule), "default");
	if (rq->op == POLICY_OPTION &&
	    (privilege = policy_option_privilege(rq->option, rq->option_value)) != NULL) {
		const char *name = policy_option_name(rq->option);

		snprintf(out->reason, sizeof(out->reason),
		         "%s %lld needs %s when set directly: only a rule naming %s allows it",
		         name ? name : "this option", rq->option_value, privilege,
		         name ? name : "it");
		return;
	}
	snprintf(out->reason, sizeof(out->reason), "no %s rule allows %s (deny by default)",
	         p->source == NULL ? "embedded" : "policy", policy_op_name(rq->op));
}

bool
policy_canonical_destination(struct sockaddr *sa, socklen_t len)
{
	/* Too short for any IP address: a malformed target, which matching fails closed. */
	if (len < sizeof(struct sockaddr_in))
		return false;
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)sa;

		/* 0.0.0.0 reaches the socket's bound address or 127.0.0.1; the rest of 0/8
		 * ("this network", never a valid destination) is treated the same. */
		if ((ntohl(sin->sin_addr.s_addr) >> 24) != 0)
			return false;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return true;
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)sa;
		uint8_t *a = sin6->sin6_addr.s6_addr;

		if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr)) {
			/* tcp_v6_connect and udpv6_sendmsg send :: to ::1. */
			sin6->sin6_addr = in6addr_loopback;
			return true;
		}
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) && a[12] == 0) {
			/* ::ffff:0.x.y.z takes the IPv4 path above. */
			a[12] = 127;
			a[13] = a[14] = 0;
			a[15] = 1;
			return true;
		}
	}
	return false;
}

void
decode_target(const struct policy_request *rq, struct target *t)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	const struct sockaddr *sa = rq->addr;
	size_t off = offsetof(struct sockaddr_un, sun_path);

	memset(t, 0, sizeof(*t));
	if (sa == NULL) {
		t->kind = TARGET_NONE;
		return;
	}
	t->kind = TARGET_BAD;
	if (rq->addr_len < sizeof(sa_family_t))
		return;
	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		if (rq->addr_len < sizeof(*sin))
			return;
		t->kind = TARGET_IP;
		t->family = AF_INET;
		memcpy(t->ip, &sin->sin_addr, 4);
		t->port = ntohs(sin->sin_port);
		return;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		if (rq->addr_len < sizeof(*sin6))
			return;
		t->kind = TARGET_IP;
		t->port = ntohs(sin6->sin6_port);
		/* ::ffff:a.b.c.d reaches the IPv4 host a.b.c.d: IPv4 rules must see it. */
		if (memcmp(sin6->sin6_addr.s6_addr, mapped, 12) == 0) {
			t->family = AF_INET;
			memcpy(t->ip, sin6->sin6_addr.s6_addr + 12, 4);
		} else {
			t->family = AF_INET6;
			memcpy(t->ip, sin6->sin6_addr.s6_addr, 16);
		}
		return;
	}
	case AF_UNIX: {
		const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
		size_t n;

		if (rq->addr_len > sizeof(*sun))
			return;
		t->kind = TARGET_UNIX;
		if (rq->addr_len <= off)
			return; /* unnamed */
		n = rq->addr_len - off;
		if (sun->sun_path[0] == '\0') {
			t->abstract = true;
			t->path = sun->sun_path + 1;
			t->path_len = n - 1;
		} else {
			t->path = sun->sun_path;
			t->path_len = strnlen(sun->sun_path, n);
		}
		return;
	}
	}
}

bool
cidr_contains(const struct cidr *c, int family, const uint8_t *addr)
{
	int full = c->prefix / 8, rest = c->prefix % 8;

	if (c->family != family)
		return false;
	if (memcmp(c->addr, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((c->addr[full] ^ addr[full]) & (0xff00 >> rest)) == 0;
}

static bool
rule_applies(const struct rule *r, const struct policy_request *rq, const struct target *t)
{
	enum match m[5];
	bool unknown = false;

	if ((unsigned)rq->op >= POLICY_OP_COUNT || !(r->ops & (1u << rq->op)))
		return false;
	m[0] = match_who(r, rq->who);
	m[1] = match_transport(r, rq);
	m[2] = match_address(r, t);
	/* Only resolve is decided on a name: the daemon may pass the name a connect came
	 * from, but connect and send are decided on the resolved address alone. */
	m[3] = match_name(r, rq->op == POLICY_RESOLVE ? rq->name : NULL);
	m[4] = match_option(r, rq);
	for (int i = 0; i < 5; i++) {
		if (m[i] == MATCH_NO)
			return false;
		unknown |= m[i] == MATCH_UNKNOWN;
	}
	return unknown ? !r->allow : true;
}

/* principal= tries each certificate name in turn (URI SANs, DNS SANs, CN); spki= the key
 * hash. Both given: both must hold. */
static enum match
match_certificate(const struct rule *r, const struct identity *who)
{
	bool found;
	size_t i;

	if (r->n_principals > 0) {
		found = false;
		for (int k = 0; k < who->n_principals && k < IDENTITY_MAX_PRINCIPALS && !found;
		     k++) {
			const char *name = who->principals[k];

			if (memchr(name, '\0', IDENTITY_PRINCIPAL_MAX) == NULL || name[0] == '\0')
				continue;
			for (i = 0; i < r->n_principals && !found; i++)
				found = fnmatch(r->principals[i], name, 0) == 0;
		}
		if (!found)
			return MATCH_NO;
	}
	if (r->n_spkis > 0) {
		found = false;
		for (i = 0; i < r->n_spkis && !found; i++)
			found = memcmp(r->spkis[i], who->spki_sha256, 32) == 0;
		if (!found)
			return MATCH_NO;
	}
	return MATCH_YES;
}

/* A Unix peer's kernel-verified facts: uid, gids, exe, cgroup. */
static enum match
match_unix(const struct rule *r, const struct identity *who)
{
	enum match result = MATCH_YES;
	size_t i;
	int k;
	bool found;

	if (r->n_uids > 0) {
		for (i = 0, found = false; i < r->n_uids && !found; i++)
			found = r->uids[i] == who->uid;
		if (!found)
			return MATCH_NO;
	}
	if (r->n_gids > 0) {
		for (i = 0, found = false; i < r->n_gids && !found; i++) {
			found = r->gids[i] == who->gid;
			for (k = 0; k < who->n_groups && k < IDENTITY_MAX_GROUPS && !found; k++)
				found = r->gids[i] == who->groups[k];
		}
		if (!found) {
			if (!who->groups_truncated)
				return MATCH_NO;
			result = MATCH_UNKNOWN;
		}
	}
	if (r->n_exes > 0) {
		if (who->exe[0] == '\0' || memchr(who->exe, '\0', sizeof(who->exe)) == NULL) {
			result = MATCH_UNKNOWN;
		} else {
			for (i = 0, found = false; i < r->n_exes && !found; i++)
				found = fnmatch(r->exes[i], who->exe, 0) == 0;
			if (!found)
				return MATCH_NO;
		}
	}
	if (r->n_cgroups > 0) {
		if (who->cgroup[0] == '\0' ||
		    memchr(who->cgroup, '\0', sizeof(who->cgroup)) == NULL) {
			result = MATCH_UNKNOWN;
		} else {
			for (i = 0, found = false; i < r->n_cgroups && !found; i++)
				found = fnmatch(r->cgroups[i], who->cgroup, 0) == 0;
			if (!found)
				return MATCH_NO;
		}
	}
	return result;
}

/* claimed-exe= (or !=): what the client says it runs, over either transport; known, or
 * absent, either way. */
static bool
claim_matches(const struct rule *r, const struct identity *who)
{
	bool found = false;

	if (r->n_claimed_exes == 0)
		return true;
	if (who->claimed_exe[0] != '\0' &&
	    memchr(who->claimed_exe, '\0', sizeof(who->claimed_exe)) != NULL)
		for (size_t i = 0; i < r->n_claimed_exes && !found; i++)
			found = fnmatch(r->claimed_exes[i], who->claimed_exe, 0) == 0;
	return found != r->claimed_exe_negated;
}

static enum match
match_who(const struct rule *r, const struct identity *who)
{
	enum match result;

	if (r->n_uids + r->n_gids + r->n_exes + r->n_cgroups + r->n_principals + r->n_spkis +
	        r->n_claimed_exes ==
	    0)
		return MATCH_YES;
	if (who == NULL)
		return MATCH_UNKNOWN;
	/* Each transport's facts exist only for its peers: a rule asking for the other's
	 * never matches, allow or deny (a TLS peer has no uid; a Unix peer no certificate). */
	if (who->transport == IDENTITY_TLS && r->n_uids + r->n_gids + r->n_exes + r->n_cgroups == 0)
		result = match_certificate(r, who);
	else if (who->transport == IDENTITY_UNIX && r->n_principals + r->n_spkis == 0)
		result = match_unix(r, who);
	else
		return MATCH_NO;
	if (result == MATCH_NO || !claim_matches(r, who))
		return MATCH_NO;
	return result;
}

static enum match
match_transport(const struct rule *r, const struct policy_request *rq)
{
	int type = rq->type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	bool inet = rq->family == AF_INET || rq->family == AF_INET6;
	unsigned have = 0;

	if (inet) {
		if (type == SOCK_STREAM)
			have = TRANSPORT_TCP;
		else if (type == SOCK_DGRAM)
			have = TRANSPORT_UDP;
		else if (type == SOCK_RAW)
			have = TRANSPORT_RAW;
	} else if (rq->family == AF_UNIX) {
		have = TRANSPORT_UNIX;
	}
	if (r->transports != 0 && !(r->transports & have))
		return MATCH_NO;
	if (r->ipvers != 0) {
		if (inet)
			return (r->ipvers & (rq->family == AF_INET ? IPVER_4 : IPVER_6)) ? MATCH_YES
			                                                                 : MATCH_NO;
		/* `tcp,unix ipv4`: the IP version constrains only the IP transports. */
		return have == TRANSPORT_UNIX && (r->transports & TRANSPORT_UNIX) ? MATCH_YES
		                                                                  : MATCH_NO;
	}
	return MATCH_YES;
}

static enum match
match_address(const struct rule *r, const struct target *t)
{
	size_t i;
	bool found = false;

	if (r->n_cidrs + r->n_paths + r->n_ports == 0)
		return MATCH_YES;
	if (t->kind == TARGET_NONE)
		return MATCH_NO;
	if (t->kind == TARGET_BAD)
		return MATCH_UNKNOWN;
	if (t->kind == TARGET_UNIX) {
		if (r->n_paths == 0 || r->n_ports > 0 || t->path == NULL)
			return MATCH_NO;
		for (i = 0; i < r->n_paths && !found; i++) {
			const struct unix_path *up = &r->paths[i];

			if (up->abstract != t->abstract)
				continue;
			if (up->prefix)
				found = t->path_len >= up->len &&
				        memcmp(t->path, up->path, up->len) == 0;
			else
				found = t->path_len == up->len &&
				        memcmp(t->path, up->path, up->len) == 0;
		}
		return found ? MATCH_YES : MATCH_NO;
	}
	if (r->n_cidrs > 0) {
		for (i = 0; i < r->n_cidrs && !found; i++)
			found = cidr_contains(&r->cidrs[i], t->family, t->ip);
		if (!found)
			return MATCH_NO;
	} else if (r->n_paths > 0) {
		return MATCH_NO;
	}
	if (r->n_ports > 0) {
		for (i = 0, found = false; i < r->n_ports && !found; i++)
			found = t->port >= r->ports[i].lo && t->port <= r->ports[i].hi;
		if (!found)
			return MATCH_NO;
	}
	return MATCH_YES;
}

static enum match
match_name(const struct rule *r, const char *name)
{
	size_t len, i;

	if (r->n_names == 0)
		return MATCH_YES;
	if (name == NULL)
		return MATCH_NO;
	len = strlen(name);
	if (len > 1 && name[len - 1] == '.')
		len--;
	for (i = 0; i < r->n_names; i++) {
		const struct name_pattern *np = &r->names[i];
		size_t plen = strlen(np->text);

		if (np->any)
			return MATCH_YES;
		if (np->suffix) {
			/* ".example.com": at least one label before it, any depth. */
			if (len > plen && strncasecmp(name + len - plen, np->text, plen) == 0)
				return MATCH_YES;
		} else if (len == plen && strncasecmp(name, np->text, plen) == 0) {
			return MATCH_YES;
		}
	}
	return MATCH_NO;
}

/*
 * A rule naming options matches only setting one of them. A privileged option (one the
 * client could not set directly) is allowed only by a rule naming it: an allow rule that
 * names none (`allow uid=1000 *`, `allow * option`) does not apply, so the search goes on
 * to a later rule that names it, or ends in the default deny. Deny rules apply as usual.
 */
static enum match
match_option(const struct rule *r, const struct policy_request *rq)
{
	size_t i;

	if (r->n_options == 0) {
		if (rq->op == POLICY_OPTION && r->allow && !r->all_options &&
		    policy_option_privilege(rq->option, rq->option_value) != NULL)
			return MATCH_NO;
		return MATCH_YES;
	}
	if (rq->op != POLICY_OPTION)
		return MATCH_NO;
	for (i = 0; i < r->n_options; i++)
		if (r->options[i] == rq->option)
			return MATCH_YES;
	return MATCH_NO;
}
