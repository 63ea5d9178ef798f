/*
 * explain.c - the policy's two command-line tools: `--check-policy FILE` validates a file
 * and warns of rules that do less than they seem to (policy_warnings), `--explain WORDS...`
 * builds one request from words ("uid=1000 connect tcp 10.1.2.3:443") and prints what the
 * policy decides, the deciding rule (FILE:LINE) and the reason. main.c runs them; they
 * print to the streams they are given and never exit.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "parse.h"

/* Enough for every error of a policy file a person would write by hand. */
#define CHECK_ERRORS_MAX 65536

struct explain_request {
	struct identity who;
	bool have_uid, have_gid, have_op;
	enum policy_op op;
	int family, type;
	bool want_v4, want_v6;
	struct sockaddr_storage ss;
	socklen_t ss_len;
	bool have_addr;
	int port;
	const char *name;
	bool have_option, have_value;
	int option;
	long long option_value;
};

static struct policy *load_policy(const char *path, FILE *out);
static void print_request(const struct explain_request *x, const struct policy_request *rq,
                          FILE *out);
static void print_limits(const struct policy *p, const struct policy_decision *d, FILE *out);
static int parse_words(int argc, char **argv, struct explain_request *x, FILE *out);
static int parse_who_word(const char *w, struct explain_request *x, FILE *out);
static int parse_target(const char *w, struct explain_request *x);
static int parse_id(const char *s, unsigned *out);
static void fill_from_passwd(struct explain_request *x, const struct passwd *pw);
static void usage(FILE *out);

int
check_policy_main(const char *path, FILE *out, FILE *err)
{
	struct policy *p;
	char *errors;

	if ((errors = malloc(CHECK_ERRORS_MAX)) == NULL) {
		fprintf(err, "%s: out of memory\n", path);
		return 1;
	}
	if ((p = policy_load(path, errors, CHECK_ERRORS_MAX)) == NULL) {
		fputs(errors, err);
		free(errors);
		return 1;
	}
	fprintf(out, "%s: ok, %zu rule%s\n", path, policy_rule_count(p),
	        policy_rule_count(p) == 1 ? "" : "s");
	/* Warnings leave the exit status alone: the file is valid, if not what it seems. */
	policy_warnings(p, err);
	policy_free(p);
	free(errors);
	return 0;
}

int
explain_main(const char *policy_path, int argc, char **argv, FILE *out)
{
	struct explain_request x;
	struct policy_request rq = {0};
	struct policy_decision d;
	struct policy *p;

	if (parse_words(argc, argv, &x, out) != 0) {
		usage(out);
		return 2;
	}
	if ((p = load_policy(policy_path, out)) == NULL)
		return 2;

	rq.who = &x.who;
	rq.op = x.op;
	rq.family = x.family;
	rq.type = x.type;
	if (x.have_addr) {
		rq.addr = (struct sockaddr *)&x.ss;
		rq.addr_len = x.ss_len;
	}
	rq.name = x.name;
	rq.option = x.option;
	rq.option_value = x.option_value;
	policy_decide(p, &rq, &d);

	fprintf(out, "%s\n", d.allow ? "allow" : "deny");
	fprintf(out, "  rule:    %s\n", d.rule);
	fprintf(out, "  reason:  %s\n", d.reason);
	if (d.allow && (rq.op == POLICY_CONNECT || rq.op == POLICY_ACCEPT))
		fprintf(out, "  handback: %s\n",
		        d.handback ? "yes (the socket may be handed to the client)" : "no");
	print_request(&x, &rq, out);
	print_limits(p, &d, out);
	policy_free(p);
	return d.allow ? 0 : 1;
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
		if (r->handback)
			fprintf(
			    out,
			    "%s:%d: note: handback: the sockets this rule allows leave the daemon; "
			    "byte quotas and later checks no longer apply to them, and a sandbox "
			    "that may call connect(2) can re-point a TCP socket "
			    "(docs/policy.md)%s\n",
			    file, r->line,
			    (r->transports & TRANSPORT_UDP)
			        ? "; a connected UDP socket can also be sent anywhere with "
			          "sendto/sendmsg, which the sandbox must block"
			        : "");
	}
	return n;
}

/* The policy at `path`, or the embedded default for the current uid when NULL. NULL with
 * the errors written to `out` if it does not load. */
static struct policy *
load_policy(const char *path, FILE *out)
{
	struct policy *p;
	char *errors;

	if (path == NULL)
		return policy_default(geteuid());
	if ((errors = malloc(CHECK_ERRORS_MAX)) == NULL) {
		fprintf(out, "explain: out of memory\n");
		return NULL;
	}
	if ((p = policy_load(path, errors, CHECK_ERRORS_MAX)) == NULL)
		fputs(errors, out);
	free(errors);
	return p;
}

/* "  request: uid=... OP FAMILY TYPE TARGET": the request as the policy saw it. */
static void
print_request(const struct explain_request *x, const struct policy_request *rq, FILE *out)
{
	char fam[16], type[16], addr[128];
	int port;

	if (x->who.transport == IDENTITY_TLS) {
		fprintf(out, "  request: tls");
		for (int i = 0; i < x->who.n_principals; i++)
			fprintf(out, " principal=%s", x->who.principals[i]);
	} else {
		fprintf(out, "  request: uid=%u gid=%u", (unsigned)x->who.uid,
		        (unsigned)x->who.gid);
	}
	for (int i = 0; i < x->who.n_groups; i++)
		fprintf(out, "%s%u", i == 0 ? " groups=" : ",", (unsigned)x->who.groups[i]);
	if (x->who.exe[0] != '\0')
		fprintf(out, " exe=%s", x->who.exe);
	if (x->who.cgroup[0] != '\0')
		fprintf(out, " cgroup=%s", x->who.cgroup);
	if (x->who.claimed_exe[0] != '\0')
		fprintf(out, " claimed-exe=%s", x->who.claimed_exe);
	fprintf(out, " %s %s %s", policy_op_name(x->op),
	        policy_family_name(x->family, fam, sizeof(fam)),
	        policy_type_name(x->type, type, sizeof(type)));
	if (policy_format_addr(rq->addr, rq->addr_len, addr, sizeof(addr), &port) == 0) {
		fprintf(out, " %s", addr);
		if (port >= 0)
			fprintf(out, " port %d", port);
	}
	if (x->name != NULL)
		fprintf(out, " %s", x->name);
	if (x->have_option)
		fprintf(out, " %s %lld", policy_option_name(x->option), x->option_value);
	if (rq->addr != NULL && (x->op == POLICY_CONNECT || x->op == POLICY_SEND)) {
		struct sockaddr_storage canon = x->ss;

		if (policy_canonical_destination((struct sockaddr *)&canon, x->ss_len) &&
		    policy_format_addr((struct sockaddr *)&canon, x->ss_len, addr, sizeof(addr),
		                       &port) == 0)
			fprintf(out, " (the kernel reaches %s)", addr);
	}
	fprintf(out, "\n");
}

/* The session limits the deciding rule grants, and the policy's daemon-wide limits. */
static void
print_limits(const struct policy *p, const struct policy_decision *d, FILE *out)
{
	const struct policy_limits *lim = policy_limits(p);

	if (d->allow && (d->max_handles >= 0 || d->max_connections >= 0))
		fprintf(out, "  limits:  max-handles %d, max-connections %d (-1: none)\n",
		        d->max_handles, d->max_connections);
	if (lim->sessions >= 0 || lim->sessions_per_uid >= 0 || lim->handles_per_session >= 0 ||
	    lim->queued_bytes >= 0)
		fprintf(out,
		        "  daemon:  sessions %d, sessions-per-uid %d, handles-per-session %d, "
		        "queued-bytes %lld (-1: daemon default)\n",
		        lim->sessions, lim->sessions_per_uid, lim->handles_per_session,
		        (long long)lim->queued_bytes);
}

static int
parse_words(int argc, char **argv, struct explain_request *x, FILE *out)
{
	bool have_transport = false;

	memset(x, 0, sizeof(*x));
	x->who.gid = (gid_t)-1;
	x->port = -1;
	for (int i = 0; i < argc; i++) {
		const char *w = argv[i];
		enum policy_op op;

		if (strchr(w, '=') != NULL && w[0] != '/' && w[0] != '[') {
			if (parse_who_word(w, x, out) != 0)
				return -1;
		} else if (!x->have_op && policy_op_parse(w, &op) == 0) {
			x->op = op;
			x->have_op = true;
		} else if (!x->have_op) {
			fprintf(out, "explain: expected an operation, got '%s'\n", w);
			return -1;
		} else if (strcmp(w, "tcp") == 0 || strcmp(w, "udp") == 0 ||
		           strcmp(w, "raw") == 0) {
			x->type = w[0] == 't' ? SOCK_STREAM : w[0] == 'u' ? SOCK_DGRAM : SOCK_RAW;
			have_transport = true;
		} else if (strcmp(w, "unix") == 0) {
			x->family = AF_UNIX;
			if (x->type == 0)
				x->type = SOCK_STREAM;
			have_transport = true;
		} else if (strcmp(w, "stream") == 0 || strcmp(w, "dgram") == 0 ||
		           strcmp(w, "seqpacket") == 0) {
			x->type = w[0] == 'd'   ? SOCK_DGRAM
			          : w[1] == 't' ? SOCK_STREAM
			                        : SOCK_SEQPACKET;
		} else if (strcmp(w, "ipv4") == 0) {
			x->want_v4 = true;
		} else if (strcmp(w, "ipv6") == 0) {
			x->want_v6 = true;
		} else if (strcmp(w, "port") == 0 && i + 1 < argc) {
			unsigned v;

			if (parse_id(argv[++i], &v) != 0 || v > 65535) {
				fprintf(out, "explain: bad port '%s'\n", argv[i]);
				return -1;
			}
			x->port = (int)v;
		} else if (x->op == POLICY_OPTION && !x->have_option &&
		           policy_option_parse(w, &x->option) == 0) {
			x->have_option = true;
			x->option_value = 1;
		} else if (x->have_option && !x->have_value) {
			char *end;

			errno = 0;
			x->option_value = strtoll(w, &end, 10);
			if (errno != 0 || end == w || *end != '\0') {
				fprintf(out, "explain: bad option value '%s'\n", w);
				return -1;
			}
			x->have_value = true;
		} else if (x->op == POLICY_OPTION) {
			fprintf(out, "explain: unknown option '%s'\n", w);
			return -1;
		} else if (x->have_addr || x->name != NULL) {
			fprintf(out, "explain: unexpected '%s' (one target only)\n", w);
			return -1;
		} else if (parse_target(w, x) != 0) {
			if (x->op != POLICY_RESOLVE) {
				fprintf(out, "explain: bad target '%s'\n", w);
				return -1;
			}
			x->name = w;
		}
	}
	if (!x->have_uid) {
		fprintf(out,
		        "explain: who? give uid=N, user=NAME or (a TLS peer) principal=NAME\n");
		return -1;
	}
	if (!x->have_op) {
		fprintf(out, "explain: missing operation\n");
		return -1;
	}

	/* Family: the address's, unless ipv4/ipv6 says otherwise (a v6 socket to a mapped
	 * address); with no address, ipv4 unless ipv6 is asked for. */
	if (x->family == 0 && x->have_addr)
		x->family = x->ss.ss_family;
	if (x->want_v6)
		x->family = AF_INET6;
	else if (x->want_v4 || (x->family == 0 && have_transport))
		x->family = AF_INET;
	if (x->have_addr && x->ss.ss_family == AF_INET && x->family == AF_INET6) {
		/* Present the IPv4 target as a v6 socket would see it: ::ffff:a.b.c.d. */
		struct sockaddr_in sin = *(struct sockaddr_in *)&x->ss;
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&x->ss;

		memset(sin6, 0, sizeof(*sin6));
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = sin.sin_port;
		sin6->sin6_addr.s6_addr[10] = 0xff;
		sin6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(sin6->sin6_addr.s6_addr + 12, &sin.sin_addr, 4);
		x->ss_len = sizeof(*sin6);
	}
	if (x->port >= 0 && x->have_addr) {
		if (x->ss.ss_family == AF_INET)
			((struct sockaddr_in *)&x->ss)->sin_port = htons((uint16_t)x->port);
		else if (x->ss.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&x->ss)->sin6_port = htons((uint16_t)x->port);
	}
	if (x->type == 0 && x->op != POLICY_RESOLVE)
		x->type = SOCK_STREAM;
	return 0;
}

/* uid=, user=, gid=, group= (adds a supplementary group), exe=, cgroup=, pid=; a TLS
 * peer's principal= (repeatable) and spki= */
static int
parse_who_word(const char *w, struct explain_request *x, FILE *out)
{
	const char *v = strchr(w, '=') + 1;
	unsigned id;

	if (strncmp(w, "uid=", 4) == 0) {
		struct passwd *pw;

		if (parse_id(v, &id) != 0)
			goto bad;
		x->who.uid = id;
		x->have_uid = true;
		if (!x->have_gid && (pw = getpwuid(id)) != NULL)
			fill_from_passwd(x, pw);
	} else if (strncmp(w, "user=", 5) == 0) {
		struct passwd *pw;

		if ((pw = getpwnam(v)) == NULL) {
			fprintf(out, "explain: unknown user '%s'\n", v);
			return -1;
		}
		x->who.uid = pw->pw_uid;
		x->have_uid = true;
		if (!x->have_gid)
			fill_from_passwd(x, pw);
	} else if (strncmp(w, "gid=", 4) == 0) {
		if (parse_id(v, &id) != 0)
			goto bad;
		x->who.gid = id;
		x->have_gid = true;
	} else if (strncmp(w, "group=", 6) == 0) {
		struct group *gr;
		gid_t g;

		if (parse_id(v, &id) == 0) {
			g = id;
		} else if ((gr = getgrnam(v)) != NULL) {
			g = gr->gr_gid;
		} else {
			fprintf(out, "explain: unknown group '%s'\n", v);
			return -1;
		}
		if (x->who.n_groups >= IDENTITY_MAX_GROUPS) {
			fprintf(out, "explain: too many groups\n");
			return -1;
		}
		x->who.groups[x->who.n_groups++] = g;
	} else if (strncmp(w, "exe=", 4) == 0) {
		if (strlen(v) >= sizeof(x->who.exe))
			goto bad;
		strcpy(x->who.exe, v);
	} else if (strncmp(w, "claimed-exe=", 12) == 0) {
		if (strlen(v) >= sizeof(x->who.claimed_exe))
			goto bad;
		strcpy(x->who.claimed_exe, v);
	} else if (strncmp(w, "cgroup=", 7) == 0) {
		if (strlen(v) >= sizeof(x->who.cgroup))
			goto bad;
		strcpy(x->who.cgroup, v);
	} else if (strncmp(w, "principal=", 10) == 0) {
		/* A TLS peer: give its URI SANs, DNS SANs and CN in that order. */
		if (*v == '\0' || strlen(v) >= IDENTITY_PRINCIPAL_MAX)
			goto bad;
		if (x->who.n_principals >= IDENTITY_MAX_PRINCIPALS) {
			fprintf(out, "explain: too many principals\n");
			return -1;
		}
		strcpy(x->who.principals[x->who.n_principals++], v);
		x->who.transport = IDENTITY_TLS;
		x->have_uid = true;
	} else if (strncmp(w, "spki=", 5) == 0) {
		if (parse_spki(v, x->who.spki_sha256) != 0)
			goto bad;
		x->who.transport = IDENTITY_TLS;
		x->have_uid = true;
	} else if (strncmp(w, "pid=", 4) == 0) {
		if (parse_id(v, &id) != 0 || id > INT_MAX)
			goto bad;
		x->who.pid = (pid_t)id;
	} else {
		fprintf(out, "explain: unknown selector '%s'\n", w);
		return -1;
	}
	return 0;
bad:
	fprintf(out, "explain: bad value in '%s'\n", w);
	return -1;
}

/* 10.1.2.3, 10.1.2.3:443, ::1, [::1]:53, /run/x.sock, abstract:NAME. Returns 0 or -1. */
static int
parse_target(const char *w, struct explain_request *x)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&x->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&x->ss;
	struct sockaddr_un *sun = (struct sockaddr_un *)&x->ss;
	char host[INET6_ADDRSTRLEN + 2];
	const char *port = NULL, *end;
	unsigned v;
	size_t len;

	memset(&x->ss, 0, sizeof(x->ss));
	if (w[0] == '/' || strncmp(w, "abstract:", 9) == 0) {
		bool abstract = w[0] != '/';
		const char *path = abstract ? w + 9 : w;

		len = strlen(path);
		if (len + 1 > sizeof(sun->sun_path))
			return -1;
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path + abstract, path, len);
		x->ss_len = offsetof(struct sockaddr_un, sun_path) + len + 1;
		x->family = AF_UNIX;
		if (x->type == 0)
			x->type = SOCK_STREAM;
		x->have_addr = true;
		return 0;
	}
	if (w[0] == '[') {
		if ((end = strchr(w, ']')) == NULL || (end[1] != '\0' && end[1] != ':'))
			return -1;
		len = end - w - 1;
		w++;
		port = end[1] == ':' ? end + 2 : NULL;
	} else if ((end = strchr(w, ':')) != NULL && strchr(end + 1, ':') == NULL) {
		len = end - w;
		port = end + 1;
	} else {
		len = strlen(w);
	}
	if (len >= sizeof(host))
		return -1;
	memcpy(host, w, len);
	host[len] = '\0';
	if (port != NULL && (parse_id(port, &v) != 0 || v > 65535))
		return -1;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port ? (uint16_t)v : 0);
		x->ss_len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port ? (uint16_t)v : 0);
		x->ss_len = sizeof(*sin6);
	} else {
		return -1;
	}
	x->have_addr = true;
	return 0;
}

static int
parse_id(const char *s, unsigned *out)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || v >= UINT_MAX)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static void
fill_from_passwd(struct explain_request *x, const struct passwd *pw)
{
	gid_t groups[IDENTITY_MAX_GROUPS];
	int n = IDENTITY_MAX_GROUPS;

	x->who.gid = pw->pw_gid;
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) == -1) {
		n = IDENTITY_MAX_GROUPS;
		x->who.groups_truncated = true;
	}
	/* Appended: group= words given before user= stay. */
	for (int i = 0; i < n; i++) {
		if (x->who.n_groups == IDENTITY_MAX_GROUPS) {
			x->who.groups_truncated = true;
			break;
		}
		x->who.groups[x->who.n_groups++] = groups[i];
	}
}

static void
usage(FILE *out)
{
	fprintf(out, "usage: sockrpcd --explain [--policy FILE] WHO... OP [TRANSPORT] [TARGET]\n"
	             "  WHO:       uid=N | user=NAME, and gid=N group=G exe=PATH cgroup=PATH "
	             "claimed-exe=PATH\n"
	             "             or a TLS peer: principal=NAME... spki=sha256:HEX\n"
	             "  OP:        create connect bind listen accept send resolve option\n"
	             "  OPTION:    option SO_NAME [VALUE] (VALUE 1 if not given)\n"
	             "  TRANSPORT: tcp udp raw unix, ipv4 ipv6, stream dgram seqpacket\n"
	             "  TARGET:    10.1.2.3:443 [::1]:53 ::1 /run/x.sock abstract:NAME "
	             "example.com, port N\n"
	             "  e.g. sockrpcd --explain uid=1000 connect tcp 10.1.2.3:443\n"
	             "       sockrpcd --explain uid=1000 option SO_DEBUG 1\n");
}
