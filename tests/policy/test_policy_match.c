/*
 * test_policy_match.c - what a loaded policy decides: CIDR edges (v4, v6, /0, /32, /128),
 * ports, first match, deny by default, named sets, IPv4-mapped IPv6, host name patterns,
 * identity (uid, groups, exe, cgroup, fail-closed unknowns), Unix paths, the default policy.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "policy.h"

static struct policy *
load(const char *text)
{
	char errors[2048];
	struct policy *p;
	FILE *f = tmpfile();

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	rewind(f);
	p = policy_load_stream(f, "m.policy", errors, sizeof(errors));
	fclose(f);
	ck_assert_msg(p != NULL, "%s", errors);
	return p;
}

static struct identity
who_uid(uid_t uid)
{
	struct identity id;

	memset(&id, 0, sizeof(id));
	id.uid = uid;
	id.gid = uid;
	id.pid = 4242;
	return id;
}

/* Decides op on a socket of `type` to ip:port; the socket family is the address's unless
 * `family` is given (AF_INET6 for a v6 socket reaching a mapped address). */
static struct policy_decision
decide_ip_family(const struct policy *p, const struct identity *who, enum policy_op op, int family,
                 int type, const char *ip, int port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct policy_request rq = {.who = who, .op = op, .type = type};
	struct policy_decision d;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		rq.addr_len = sizeof(*sin);
	} else {
		ck_assert_msg(inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1, "bad test ip %s", ip);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		rq.addr_len = sizeof(*sin6);
	}
	rq.family = family ? family : ss.ss_family;
	rq.addr = (struct sockaddr *)&ss;
	policy_decide(p, &rq, &d);
	return d;
}

static bool
allows(const struct policy *p, uid_t uid, enum policy_op op, int type, const char *ip, int port)
{
	struct identity id = who_uid(uid);

	return decide_ip_family(p, &id, op, 0, type, ip, port).allow;
}

#define CONNECT_OK(p, ip, port) allows(p, 1000, POLICY_CONNECT, SOCK_STREAM, ip, port)

/* An address and whether uid 1000 may connect a TCP socket to it (port 1). */
struct probe {
	const char *ip;
	bool allowed;
};

#define check_connects(p, ...)                                                                     \
	check_connects_at((p), (const struct probe[]){__VA_ARGS__, {NULL, false}}, __LINE__)

static void
check_connects_at(const struct policy *p, const struct probe *probe, int line)
{
	for (; probe->ip != NULL; probe++)
		ck_assert_msg(CONNECT_OK(p, probe->ip, 1) == probe->allowed,
		              "line %d: connect to %s %s, want %s", line, probe->ip,
		              probe->allowed ? "denied" : "allowed",
		              probe->allowed ? "allowed" : "denied");
}

static struct policy_decision
decide_unix(const struct policy *p, enum policy_op op, const char *path, size_t path_len,
            bool with_nul)
{
	struct identity id = who_uid(1000);
	struct sockaddr_un sun;
	struct policy_request rq = {.who = &id, .op = op, .family = AF_UNIX, .type = SOCK_STREAM};
	struct policy_decision d;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, path_len);
	rq.addr = (struct sockaddr *)&sun;
	rq.addr_len = offsetof(struct sockaddr_un, sun_path) + path_len + (with_nul ? 1 : 0);
	policy_decide(p, &rq, &d);
	return d;
}

static bool
resolves(const struct policy *p, const char *name)
{
	struct identity id = who_uid(1000);
	struct policy_request rq = {.who = &id, .op = POLICY_RESOLVE, .name = name};
	struct policy_decision d;

	policy_decide(p, &rq, &d);
	return d.allow;
}

START_TEST(cidr_v4_edges)
{
	struct policy *p = load("allow * connect 10.0.0.0/8\n"
	                        "allow * connect 192.0.2.1/32\n"
	                        "allow * connect 172.16.0.0/12\n"
	                        "allow * connect 198.51.100.128/25\n");

	check_connects(p, {"10.0.0.0", true}, {"10.255.255.255", true}, {"9.255.255.255", false},
	               {"11.0.0.0", false}, {"192.0.2.1", true}, {"192.0.2.0", false},
	               {"192.0.2.2", false}, {"172.16.0.0", true}, {"172.31.255.255", true},
	               {"172.32.0.0", false}, {"172.15.255.255", false}, {"198.51.100.128", true},
	               {"198.51.100.255", true}, {"198.51.100.127", false});
	/* an IPv4 rule never matches a native IPv6 address */
	ck_assert(!CONNECT_OK(p, "::a00:1", 1));
	policy_free(p);

	p = load("allow * connect 0.0.0.0/0\n");
	check_connects(p, {"0.0.0.0", true}, {"255.255.255.255", true}, {"::1", false},
	               {"2001:db8::1", false});
	policy_free(p);
}
END_TEST

START_TEST(cidr_v6_edges)
{
	struct policy *p = load("allow * connect 2001:db8::/32\n"
	                        "allow * connect [2001:db8:1::/127]\n"
	                        "allow * connect ::1/128\n"
	                        "allow * connect fe80::/10\n");

	check_connects(p, {"2001:db8::", true}, {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true},
	               {"2001:db9::", false}, {"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", false},
	               {"::1", true}, {"::2", false}, {"::", true} /* reaches ::1 */,
	               {"fe80::", true}, {"febf:ffff::1", true}, {"fec0::", false},
	               {"fe7f:ffff::", false}, {"127.0.0.1", false});
	policy_free(p);

	p = load("allow * connect ::/0\n");
	check_connects(p, {"::", true}, {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
	               {"10.0.0.1", false});
	policy_free(p);

	p = load("allow * connect 2001:db8::/127\n");
	check_connects(p, {"2001:db8::", true}, {"2001:db8::1", true}, {"2001:db8::2", false});
	policy_free(p);
}
END_TEST

START_TEST(ports)
{
	struct policy *p = load("allow * connect tcp port 80,443,8000-8999\n"
	                        "allow * connect udp port 0,65535\n"
	                        "allow * bind tcp [::1]:53\n"
	                        "allow * bind tcp 127.0.0.1:1-1023\n");

	ck_assert(CONNECT_OK(p, "192.0.2.1", 80));
	ck_assert(!CONNECT_OK(p, "192.0.2.1", 81));
	ck_assert(!CONNECT_OK(p, "192.0.2.1", 79));
	ck_assert(CONNECT_OK(p, "192.0.2.1", 443));
	ck_assert(!CONNECT_OK(p, "192.0.2.1", 7999));
	ck_assert(CONNECT_OK(p, "192.0.2.1", 8000));
	ck_assert(CONNECT_OK(p, "2001:db8::1", 8999));
	ck_assert(!CONNECT_OK(p, "192.0.2.1", 9000));
	ck_assert(allows(p, 1, POLICY_CONNECT, SOCK_DGRAM, "192.0.2.1", 0));
	ck_assert(allows(p, 1, POLICY_CONNECT, SOCK_DGRAM, "192.0.2.1", 65535));
	ck_assert(!allows(p, 1, POLICY_CONNECT, SOCK_DGRAM, "192.0.2.1", 80));
	ck_assert(allows(p, 1, POLICY_BIND, SOCK_STREAM, "::1", 53));
	ck_assert(!allows(p, 1, POLICY_BIND, SOCK_STREAM, "::1", 54));
	ck_assert(!allows(p, 1, POLICY_BIND, SOCK_STREAM, "::2", 53));
	ck_assert(allows(p, 1, POLICY_BIND, SOCK_STREAM, "127.0.0.1", 1023));
	ck_assert(!allows(p, 1, POLICY_BIND, SOCK_STREAM, "127.0.0.1", 1024));
	ck_assert(!allows(p, 1, POLICY_BIND, SOCK_STREAM, "127.0.0.1", 0));
	policy_free(p);
}
END_TEST

START_TEST(first_match_and_default_deny)
{
	struct policy *p = load("# header\n"
	                        "deny * connect 10.0.0.1 reason \"not that one\"\n"
	                        "allow * connect 10.0.0.0/8\n"
	                        "deny * connect 10.0.0.2\n");
	struct identity id = who_uid(1000);
	struct policy_decision d;

	d = decide_ip_family(p, &id, POLICY_CONNECT, 0, SOCK_STREAM, "10.0.0.1", 80);
	ck_assert(!d.allow);
	ck_assert_str_eq(d.rule, "m.policy:2");
	ck_assert_str_eq(d.reason, "not that one");
	d = decide_ip_family(p, &id, POLICY_CONNECT, 0, SOCK_STREAM, "10.0.0.2", 80);
	ck_assert(d.allow);
	ck_assert_str_eq(d.rule, "m.policy:3");
	ck_assert_str_eq(d.reason, "allowed by policy rule m.policy:3");
	ck_assert_int_eq(d.max_handles, -1);
	ck_assert_int_eq(d.max_connections, -1);
	d = decide_ip_family(p, &id, POLICY_CONNECT, 0, SOCK_STREAM, "11.0.0.1", 80);
	ck_assert(!d.allow);
	ck_assert_str_eq(d.rule, "default");
	ck_assert_ptr_nonnull(strstr(d.reason, "deny by default"));
	/* another op is not covered by a connect rule */
	d = decide_ip_family(p, &id, POLICY_BIND, 0, SOCK_STREAM, "10.0.0.2", 80);
	ck_assert(!d.allow);
	ck_assert_str_eq(d.rule, "default");
	policy_free(p);

	p = load("");
	d = decide_ip_family(p, &id, POLICY_CONNECT, 0, SOCK_STREAM, "127.0.0.1", 80);
	ck_assert(!d.allow);
	ck_assert_str_eq(d.rule, "default");
	policy_free(p);

	p = load("deny * connect 10.0.0.0/8\n");
	d = decide_ip_family(p, &id, POLICY_CONNECT, 0, SOCK_STREAM, "10.1.1.1", 80);
	ck_assert(!d.allow);
	ck_assert_str_eq(d.reason, "denied by policy rule m.policy:1");
	policy_free(p);
}
END_TEST

START_TEST(named_sets)
{
	struct policy *p = load("allow * connect @loopback\n");

	check_connects(p, {"127.0.0.1", true}, {"127.255.255.255", true}, {"127.0.0.0", true},
	               {"128.0.0.0", false}, {"126.255.255.255", false}, {"::1", true},
	               {"::2", false}, {"::", true} /* reaches ::1 */);
	policy_free(p);

	p = load("allow * connect @private\n");
	check_connects(p, {"10.1.2.3", true}, {"172.16.0.1", true}, {"172.31.255.255", true},
	               {"172.32.0.1", false}, {"192.168.255.255", true}, {"192.169.0.0", false},
	               {"11.0.0.1", false}, {"fc00::", true}, {"fd12:3456::1", true},
	               {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true}, {"fe00::", false},
	               {"fbff:ffff::", false}, {"127.0.0.1", false});
	policy_free(p);

	p = load("allow * connect @link-local\n");
	check_connects(p, {"169.254.0.0", true}, {"169.254.169.254", true}, {"169.255.0.0", false},
	               {"fe80::1", true}, {"fec0::1", false});
	policy_free(p);

	p = load("allow * send udp @multicast\n");
	ck_assert(allows(p, 1, POLICY_SEND, SOCK_DGRAM, "224.0.0.1", 5353));
	ck_assert(allows(p, 1, POLICY_SEND, SOCK_DGRAM, "239.255.255.255", 1));
	ck_assert(!allows(p, 1, POLICY_SEND, SOCK_DGRAM, "240.0.0.1", 1));
	ck_assert(!allows(p, 1, POLICY_SEND, SOCK_DGRAM, "223.255.255.255", 1));
	ck_assert(allows(p, 1, POLICY_SEND, SOCK_DGRAM, "ff02::fb", 5353));
	ck_assert(!allows(p, 1, POLICY_SEND, SOCK_DGRAM, "fe02::fb", 5353));
	/* send rules name udp: a tcp socket does not match */
	ck_assert(!allows(p, 1, POLICY_SEND, SOCK_STREAM, "224.0.0.1", 1));
	policy_free(p);

	p = load("allow * bind @unspecified\nallow * connect @any\n");
	ck_assert(allows(p, 1, POLICY_BIND, SOCK_STREAM, "0.0.0.0", 80));
	ck_assert(allows(p, 1, POLICY_BIND, SOCK_STREAM, "::", 80));
	ck_assert(!allows(p, 1, POLICY_BIND, SOCK_STREAM, "0.0.0.1", 80));
	ck_assert(CONNECT_OK(p, "8.8.8.8", 53));
	ck_assert(CONNECT_OK(p, "2001:4860:4860::8888", 53));
	policy_free(p);
}
END_TEST

/* Decision: ::ffff:a.b.c.d is matched as the IPv4 address a.b.c.d, so IPv4 rules (allow and
 * deny) apply to it and IPv6 blocks do not. */
START_TEST(ipv4_mapped)
{
	struct policy *p = load("allow * connect 127.0.0.1\n");
	struct identity id = who_uid(1000);

	ck_assert(
	    decide_ip_family(p, &id, POLICY_CONNECT, AF_INET6, SOCK_STREAM, "::ffff:127.0.0.1", 80)
	        .allow);
	ck_assert(
	    !decide_ip_family(p, &id, POLICY_CONNECT, AF_INET6, SOCK_STREAM, "::ffff:127.0.0.2", 80)
	         .allow);
	policy_free(p);

	p = load("deny * connect 10.0.0.0/8\nallow * connect @any\n");
	ck_assert(
	    !decide_ip_family(p, &id, POLICY_CONNECT, AF_INET6, SOCK_STREAM, "::ffff:10.1.2.3", 80)
	         .allow);
	ck_assert(
	    decide_ip_family(p, &id, POLICY_CONNECT, AF_INET6, SOCK_STREAM, "::ffff:11.1.2.3", 80)
	        .allow);
	policy_free(p);

	/* an IPv6 block does not see mapped addresses */
	p = load("allow * connect ::/0\n");
	ck_assert(
	    !decide_ip_family(p, &id, POLICY_CONNECT, AF_INET6, SOCK_STREAM, "::ffff:8.8.8.8", 80)
	         .allow);
	policy_free(p);

	/* a mapped block in a rule is stored as the IPv4 block */
	p = load("allow * connect ::ffff:10.0.0.0/104\n");
	ck_assert(CONNECT_OK(p, "10.9.9.9", 1));
	ck_assert(!CONNECT_OK(p, "11.0.0.0", 1));
	policy_free(p);

	/* ipv4/ipv6 constrain the socket's family, not the address */
	p = load("allow * connect tcp ipv6 127.0.0.1\n");
	ck_assert(
	    decide_ip_family(p, &id, POLICY_CONNECT, AF_INET6, SOCK_STREAM, "::ffff:127.0.0.1", 80)
	        .allow);
	ck_assert(!CONNECT_OK(p, "127.0.0.1", 80));
	policy_free(p);
}
END_TEST

/* The unspecified addresses reach the local host (Linux sends 0.0.0.0 to the bound address
 * or 127.0.0.1, :: to ::1): for connect and send they are matched as loopback, so `deny
 * @loopback` before `allow @any` stops every spelling of them. */
START_TEST(unspecified_destinations_are_loopback)
{
	static const char *const local_v4[] = {"0.0.0.0", "0.0.0.1", "0.1.2.3", "0.255.255.255"};
	static const char *const local_v6[] = {"::", "::ffff:0.0.0.0", "::ffff:0.9.9.9",
	                                       "::ffff:127.0.0.1", "::1"};
	/* Routed as the IPv6 addresses they are: not the local host. */
	static const char *const v6_not_local[] = {"::127.0.0.1", "::0.0.0.2", "64:ff9b::7f00:1",
	                                           "::2", "2002:7f00:1::1"};
	struct policy *p = load("deny * connect,send @loopback reason \"no loopback\"\n"
	                        "allow * connect,send @any\n");
	struct identity id = who_uid(1000);
	struct policy_decision d;
	enum policy_op ops[] = {POLICY_CONNECT, POLICY_SEND};

	for (size_t k = 0; k < 2; k++) {
		int type = ops[k] == POLICY_SEND ? SOCK_DGRAM : SOCK_STREAM;

		for (size_t i = 0; i < sizeof(local_v4) / sizeof(local_v4[0]); i++) {
			d = decide_ip_family(p, &id, ops[k], 0, type, local_v4[i], 80);
			ck_assert_msg(!d.allow, "%s %s allowed", policy_op_name(ops[k]),
			              local_v4[i]);
			ck_assert_str_eq(d.reason, "no loopback");
		}
		for (size_t i = 0; i < sizeof(local_v6) / sizeof(local_v6[0]); i++) {
			d = decide_ip_family(p, &id, ops[k], AF_INET6, type, local_v6[i], 80);
			ck_assert_msg(!d.allow, "%s %s allowed", policy_op_name(ops[k]),
			              local_v6[i]);
			ck_assert_str_eq(d.rule, "m.policy:1");
		}
		for (size_t i = 0; i < sizeof(v6_not_local) / sizeof(v6_not_local[0]); i++)
			ck_assert_msg(
			    decide_ip_family(p, &id, ops[k], AF_INET6, type, v6_not_local[i], 80)
			        .allow,
			    "%s denied", v6_not_local[i]);
		ck_assert(decide_ip_family(p, &id, ops[k], 0, type, "1.0.0.0", 80).allow);
	}
	policy_free(p);

	/* ... and any rule on 127.0.0.1 or ::1 sees them, ports included. */
	p = load("allow * connect 127.0.0.1:80\nallow * connect [::1]:80\n");
	ck_assert(CONNECT_OK(p, "0.0.0.0", 80));
	ck_assert(!CONNECT_OK(p, "0.0.0.0", 81));
	ck_assert(CONNECT_OK(p, "::", 80));
	ck_assert(
	    decide_ip_family(p, &id, POLICY_CONNECT, AF_INET6, SOCK_STREAM, "::ffff:0.0.0.0", 80)
	        .allow);
	policy_free(p);

	/* An operator who allows only @unspecified gets nothing: it is not where they go. */
	p = load("allow * connect @unspecified\n");
	ck_assert(!CONNECT_OK(p, "0.0.0.0", 80));
	ck_assert(!CONNECT_OK(p, "::", 80));
	policy_free(p);
}
END_TEST

/* Bind is not a destination: 0.0.0.0 there means every local address, and keeps its
 * meaning; ::ffff:127.0.0.1 on a v6 socket binds the IPv4 127.0.0.1, and is matched so. */
START_TEST(bind_addresses_are_not_rewritten)
{
	struct policy *p = load("deny * bind @loopback\n"
	                        "allow * bind @unspecified\n");
	struct identity id = who_uid(1000);

	ck_assert(decide_ip_family(p, &id, POLICY_BIND, 0, SOCK_STREAM, "0.0.0.0", 80).allow);
	ck_assert(decide_ip_family(p, &id, POLICY_BIND, 0, SOCK_STREAM, "::", 80).allow);
	ck_assert(decide_ip_family(p, &id, POLICY_BIND, AF_INET6, SOCK_STREAM, "::ffff:0.0.0.0", 80)
	              .allow);
	ck_assert(!decide_ip_family(p, &id, POLICY_BIND, 0, SOCK_STREAM, "0.1.2.3", 80).allow);
	policy_free(p);

	p = load("allow * bind 127.0.0.1\n");
	ck_assert(
	    decide_ip_family(p, &id, POLICY_BIND, AF_INET6, SOCK_STREAM, "::ffff:127.0.0.1", 80)
	        .allow);
	ck_assert(!decide_ip_family(p, &id, POLICY_BIND, AF_INET6, SOCK_STREAM, "::1", 80).allow);
	ck_assert(
	    !decide_ip_family(p, &id, POLICY_BIND, AF_INET6, SOCK_STREAM, "::127.0.0.1", 80).allow);
	policy_free(p);
}
END_TEST

static bool
canonical(const char *ip, int port, const char *want)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	char got[INET6_ADDRSTRLEN];
	socklen_t len;
	bool changed;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		len = sizeof(*sin);
	} else {
		ck_assert(inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		len = sizeof(*sin6);
	}
	changed = policy_canonical_destination((struct sockaddr *)&ss, len);
	if (ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &sin->sin_addr, got, sizeof(got));
		ck_assert_int_eq(ntohs(sin->sin_port), port);
	} else {
		inet_ntop(AF_INET6, &sin6->sin6_addr, got, sizeof(got));
		ck_assert_int_eq(ntohs(sin6->sin6_port), port);
	}
	ck_assert_msg(strcmp(got, want) == 0, "%s became %s, want %s", ip, got, want);
	return changed;
}

START_TEST(canonical_destination)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	ck_assert(canonical("0.0.0.0", 80, "127.0.0.1"));
	ck_assert(canonical("0.200.1.2", 1, "127.0.0.1"));
	ck_assert(canonical("::", 53, "::1"));
	ck_assert(canonical("::ffff:0.0.0.0", 53, "::ffff:127.0.0.1"));
	ck_assert(canonical("::ffff:0.1.0.0", 53, "::ffff:127.0.0.1"));
	ck_assert(!canonical("1.0.0.0", 80, "1.0.0.0"));
	ck_assert(!canonical("127.0.0.1", 80, "127.0.0.1"));
	ck_assert(!canonical("::1", 80, "::1"));
	ck_assert(!canonical("::ffff:1.2.3.4", 80, "::ffff:1.2.3.4"));
	ck_assert(!canonical("::0.0.0.1", 80, "::1")); /* ::0.0.0.1 is ::1 */
	ck_assert(!canonical("::127.0.0.1", 80, "::127.0.0.1"));
	/* too short to be an address, or not IP: left alone */
	ck_assert(!policy_canonical_destination((struct sockaddr *)&sin, 4));
	ck_assert_int_eq(sin.sin_addr.s_addr, 0);
	ck_assert(!policy_canonical_destination((struct sockaddr *)&sun, sizeof(sun)));
}
END_TEST

static struct policy_decision
decide_option(const struct policy *p, uid_t uid, int option, long long value)
{
	struct identity id = who_uid(uid);
	struct policy_request rq = {.who = &id,
	                            .op = POLICY_OPTION,
	                            .family = AF_INET,
	                            .type = SOCK_STREAM,
	                            .option = option,
	                            .option_value = value};
	struct policy_decision d;

	policy_decide(p, &rq, &d);
	return d;
}

/* Options that need privilege when set directly are granted only by a rule naming them;
 * `allow uid=X *` and `allow * option` grant the rest. */
/* handback travels in the allowing decision; a datagram socket only where the rule names
 * udp; the embedded default gives it to the daemon's own uid. */
START_TEST(handback_in_the_decision)
{
	struct policy *p = load("allow uid=1000 connect tcp 127.0.0.1 port 1 handback\n"
	                        "allow uid=1000 connect 127.0.0.1 port 2 handback\n"
	                        "allow uid=1000 connect udp 127.0.0.1 port 3 handback\n"
	                        "allow uid=1000 connect,accept tcp 127.0.0.1\n");
	struct identity id = who_uid(1000);
	struct policy_decision d;

	d = decide_ip_family(p, &id, POLICY_CONNECT, 0, SOCK_STREAM, "127.0.0.1", 1);
	ck_assert(d.allow && d.handback);
	ck_assert_int_eq(d.rule_line, 1);
	d = decide_ip_family(p, &id, POLICY_CONNECT, 0, SOCK_STREAM, "127.0.0.1", 2);
	ck_assert(d.allow && d.handback);
	d = decide_ip_family(p, &id, POLICY_CONNECT, 0, SOCK_DGRAM, "127.0.0.1", 2);
	ck_assert_msg(d.allow && !d.handback, "udp handed back by a rule not naming udp");
	d = decide_ip_family(p, &id, POLICY_CONNECT, 0, SOCK_DGRAM, "127.0.0.1", 3);
	ck_assert(d.allow && d.handback);
	d = decide_ip_family(p, &id, POLICY_ACCEPT, 0, SOCK_STREAM, "127.0.0.1", 9);
	ck_assert(d.allow && !d.handback);
	ck_assert_int_eq(d.rule_line, 4);
	d = decide_ip_family(p, &id, POLICY_CONNECT, 0, SOCK_STREAM, "127.0.0.2", 1);
	ck_assert(!d.allow && !d.handback);
	policy_free(p);
	p = policy_default(1000);
	d = decide_ip_family(p, &id, POLICY_CONNECT, 0, SOCK_STREAM, "10.0.0.1", 1);
	ck_assert(d.allow && d.handback);
	policy_free(p);
}
END_TEST

START_TEST(privileged_options_need_a_rule_naming_them)
{
	struct policy *p = load("allow uid=1000 *\n"
	                        "allow uid=1001 option *\n"
	                        "allow uid=1002 option SO_DEBUG,so_priority\n"
	                        "deny uid=1003 option SO_REUSEADDR reason \"no sharing\"\n"
	                        "allow uid=1003 option\n"
	                        "allow uid=1003 option SO_REUSEADDR,SO_REUSEPORT\n"
	                        "allow uid=1004 create,option tcp\n"
	                        "allow uid=1004 option SO_DEBUG\n");
	struct policy_decision d;
	uid_t broad[] = {1000, 1001};

	for (size_t i = 0; i < 2; i++) {
		uid_t u = broad[i];

		ck_assert(decide_option(p, u, SO_KEEPALIVE, 1).allow);
		ck_assert(decide_option(p, u, SO_SNDBUF, 1 << 20).allow);
		ck_assert(decide_option(p, u, SO_DEBUG, 0).allow);
		d = decide_option(p, u, SO_DEBUG, 1);
		ck_assert(!d.allow);
		ck_assert_str_eq(d.rule, "default");
		ck_assert_msg(strstr(d.reason, "SO_DEBUG") && strstr(d.reason, "CAP_NET_ADMIN") &&
		                  strstr(d.reason, "only a rule naming SO_DEBUG"),
		              "%s", d.reason);
		/* the kernel checks their owner, the client (as_client_socket) */
		ck_assert(decide_option(p, u, SO_REUSEADDR, 1).allow);
		ck_assert(decide_option(p, u, SO_REUSEPORT, 1).allow);
		for (int prio = 0; prio <= 6; prio++)
			ck_assert(decide_option(p, u, SO_PRIORITY, prio).allow);
		ck_assert(!decide_option(p, u, SO_PRIORITY, 7).allow);
		ck_assert(!decide_option(p, u, SO_PRIORITY, -1).allow);
		ck_assert(!decide_option(p, u, SO_MARK, 0).allow);
		ck_assert(!decide_option(p, u, SO_MARK, 1).allow);
		ck_assert(!decide_option(p, u, SO_RCVBUFFORCE, 1).allow);
		ck_assert(!decide_option(p, u, SO_SNDBUFFORCE, 1).allow);
		/* an option missing from the table fails closed */
		d = decide_option(p, u, 9999, 1);
		ck_assert(!d.allow);
		ck_assert_ptr_nonnull(strstr(d.reason, "unclassified"));
	}
	/* a rule naming options grants those, whatever the value, and only those */
	d = decide_option(p, 1002, SO_DEBUG, 1);
	ck_assert(d.allow);
	ck_assert_str_eq(d.rule, "m.policy:3");
	ck_assert(decide_option(p, 1002, SO_PRIORITY, 7).allow);
	ck_assert(!decide_option(p, 1002, SO_KEEPALIVE, 1).allow);
	ck_assert(!decide_option(p, 1002, SO_REUSEADDR, 1).allow);
	/* first match still wins: a deny before the naming allow */
	d = decide_option(p, 1003, SO_REUSEADDR, 1);
	ck_assert(!d.allow);
	ck_assert_str_eq(d.reason, "no sharing");
	d = decide_option(p, 1003, SO_DEBUG, 1);
	ck_assert(!d.allow); /* line 5 names none, line 6 others: default */
	d = decide_option(p, 1003, SO_REUSEPORT, 1);
	ck_assert(d.allow);
	ck_assert_str_eq(d.rule, "m.policy:5"); /* not privileged: line 5 grants it */
	ck_assert(decide_option(p, 1003, SO_KEEPALIVE, 1).allow);
	/* naming rules match no other operation */
	{
		struct identity id = who_uid(1002);
		struct policy_request rq = {
		    .who = &id, .op = POLICY_CREATE, .family = AF_INET, .type = SOCK_STREAM};

		policy_decide(p, &rq, &d);
		ck_assert(!d.allow);
	}
	ck_assert(decide_option(p, 1004, SO_KEEPALIVE, 1).allow);
	ck_assert(decide_option(p, 1004, SO_DEBUG, 1).allow);
	policy_free(p);

	/* The embedded default: the daemon's own uid may set everything. */
	p = policy_default(1234);
	ck_assert(decide_option(p, 1234, SO_DEBUG, 1).allow);
	ck_assert(decide_option(p, 1234, SO_PRIORITY, 7).allow);
	ck_assert(!decide_option(p, 1000, SO_KEEPALIVE, 1).allow);
	policy_free(p);
}
END_TEST

START_TEST(option_names)
{
	int o;

	ck_assert_int_eq(policy_option_parse("SO_DEBUG", &o), 0);
	ck_assert_int_eq(o, SO_DEBUG);
	ck_assert_int_eq(policy_option_parse("so_reuseport", &o), 0);
	ck_assert_int_eq(o, SO_REUSEPORT);
	ck_assert_int_eq(policy_option_parse("SO_FROB", &o), -1);
	ck_assert_int_eq(policy_option_parse("", &o), -1);
	ck_assert_str_eq(policy_option_name(SO_PRIORITY), "SO_PRIORITY");
	ck_assert_ptr_null(policy_option_name(9999));
	ck_assert_ptr_null(policy_option_privilege(SO_KEEPALIVE, 1));
	ck_assert_ptr_null(policy_option_privilege(SO_PRIORITY, 6));
	ck_assert_str_eq(policy_option_privilege(SO_PRIORITY, 7), "CAP_NET_RAW or CAP_NET_ADMIN");
	ck_assert_str_eq(policy_option_privilege(SO_DEBUG, 1), "CAP_NET_ADMIN");
}
END_TEST

START_TEST(transports)
{
	struct policy *p = load("allow * connect tcp ipv4\n"
	                        "allow * connect udp ipv6\n"
	                        "allow * create raw\n"
	                        "allow * create unix\n");
	struct identity id = who_uid(1);
	struct policy_request rq = {.who = &id, .op = POLICY_CREATE};
	struct policy_decision d;

	ck_assert(allows(p, 1, POLICY_CONNECT, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	                 "192.0.2.1", 1));
	ck_assert(!allows(p, 1, POLICY_CONNECT, SOCK_STREAM, "2001:db8::1", 1));
	ck_assert(allows(p, 1, POLICY_CONNECT, SOCK_DGRAM, "2001:db8::1", 1));
	ck_assert(!allows(p, 1, POLICY_CONNECT, SOCK_DGRAM, "192.0.2.1", 1));
	ck_assert(!allows(p, 1, POLICY_CONNECT, SOCK_SEQPACKET, "192.0.2.1", 1));

	rq.family = AF_INET;
	rq.type = SOCK_RAW;
	policy_decide(p, &rq, &d);
	ck_assert(d.allow);
	ck_assert_str_eq(d.rule, "m.policy:3");
	rq.family = AF_INET6;
	policy_decide(p, &rq, &d);
	ck_assert(d.allow);
	rq.family = AF_UNIX;
	rq.type = SOCK_DGRAM;
	policy_decide(p, &rq, &d);
	ck_assert(d.allow);
	ck_assert_str_eq(d.rule, "m.policy:4");
	rq.family = AF_INET;
	rq.type = SOCK_STREAM;
	policy_decide(p, &rq, &d);
	ck_assert(!d.allow);
	rq.family = AF_NETLINK;
	rq.type = SOCK_RAW;
	policy_decide(p, &rq, &d);
	ck_assert(!d.allow);
	policy_free(p);
}
END_TEST

/* Decision: *.example.com matches any depth below example.com, never example.com itself;
 * matching ignores case and one trailing dot. */
START_TEST(name_patterns)
{
	struct policy *p = load("allow * resolve *.example.com\n"
	                        "allow * resolve exact.org,localhost\n");

	ck_assert(resolves(p, "a.example.com"));
	ck_assert(resolves(p, "a.b.example.com"));
	ck_assert(resolves(p, "A.Example.COM."));
	ck_assert(!resolves(p, "example.com"));
	ck_assert(!resolves(p, "badexample.com"));
	ck_assert(!resolves(p, "example.com.evil.net"));
	ck_assert(resolves(p, "exact.org"));
	ck_assert(resolves(p, "EXACT.ORG."));
	ck_assert(!resolves(p, "www.exact.org"));
	ck_assert(!resolves(p, "exact.org.uk"));
	ck_assert(resolves(p, "localhost"));
	ck_assert(!resolves(p, "localhost2"));
	ck_assert(!resolves(p, NULL));
	ck_assert(!resolves(p, ""));
	policy_free(p);

	/* a connect carrying the name it came from is still decided on its address */
	p = load("allow * resolve,connect host *.example.com\n");
	{
		struct identity id = who_uid(1);
		struct sockaddr_in sin = {.sin_family = AF_INET};
		struct policy_request rq = {.who = &id,
		                            .op = POLICY_CONNECT,
		                            .family = AF_INET,
		                            .type = SOCK_STREAM,
		                            .addr = (struct sockaddr *)&sin,
		                            .addr_len = sizeof(sin),
		                            .name = "www.example.com"};
		struct policy_decision d;

		policy_decide(p, &rq, &d);
		ck_assert(!d.allow);
		ck_assert(resolves(p, "www.example.com"));
	}
	policy_free(p);

	p = load("allow * resolve *\n");
	ck_assert(resolves(p, "anything.at.all"));
	policy_free(p);

	p = load("allow * resolve\n");
	ck_assert(resolves(p, "anything"));
	policy_free(p);
}
END_TEST

START_TEST(identity_uid_gid_groups)
{
	struct policy *p = load("allow uid=1000,1001 connect\n"
	                        "allow gid=100 bind\n"
	                        "allow user=root listen\n"
	                        "allow group=daemon accept\n"
	                        "allow uid=2000 gid=300 send\n");
	struct identity id = who_uid(1000);
	struct policy_request rq = {.who = &id};
	struct policy_decision d;

#define DECIDE(o) (rq.op = (o), policy_decide(p, &rq, &d), d.allow)
	ck_assert(DECIDE(POLICY_CONNECT));
	id.uid = 1001;
	ck_assert(DECIDE(POLICY_CONNECT));
	id.uid = 1002;
	ck_assert(!DECIDE(POLICY_CONNECT));

	/* gid= matches the primary group or any supplementary one */
	id.gid = 100;
	ck_assert(DECIDE(POLICY_BIND));
	id.gid = 5;
	ck_assert(!DECIDE(POLICY_BIND));
	id.n_groups = 3;
	id.groups[0] = 7;
	id.groups[1] = 100;
	id.groups[2] = 9;
	ck_assert(DECIDE(POLICY_BIND));
	id.groups[1] = 8;
	ck_assert(!DECIDE(POLICY_BIND));

	/* names were resolved at load: root is uid 0, daemon is gid 1 on Debian */
	id.uid = 0;
	ck_assert(DECIDE(POLICY_LISTEN));
	id.uid = 1;
	ck_assert(!DECIDE(POLICY_LISTEN));
	id.n_groups = 1;
	id.groups[0] = 1;
	ck_assert(DECIDE(POLICY_ACCEPT));
	id.groups[0] = 2;
	ck_assert(!DECIDE(POLICY_ACCEPT));

	/* several selectors: all must hold */
	id.uid = 2000;
	id.gid = 300;
	ck_assert(DECIDE(POLICY_SEND));
	id.gid = 301;
	ck_assert(!DECIDE(POLICY_SEND));
	id.uid = 2001;
	id.gid = 300;
	ck_assert(!DECIDE(POLICY_SEND));

	/* no identity at all: an allow rule on who never matches */
	rq.who = NULL;
	ck_assert(!DECIDE(POLICY_CONNECT));
#undef DECIDE
	policy_free(p);
}
END_TEST

/* Unknown facts fail closed: truncated groups, an unreadable exe or cgroup make deny rules
 * on them apply and allow rules on them not apply. */
START_TEST(identity_fail_closed)
{
	struct policy *p = load("deny group=daemon connect\n"
	                        "allow gid=50 bind\n"
	                        "deny exe=/usr/bin/curl listen\n"
	                        "allow exe=/usr/bin/curl send\n"
	                        "allow * connect,listen\n");
	struct identity id = who_uid(1000);
	struct policy_request rq = {.who = &id};
	struct policy_decision d;

#define DECIDE(o) (rq.op = (o), policy_decide(p, &rq, &d), d.allow)
	strcpy(id.exe, "/usr/bin/python3");
	ck_assert(DECIDE(POLICY_CONNECT));
	id.groups_truncated = true;
	ck_assert(!DECIDE(POLICY_CONNECT));
	ck_assert_str_eq(d.rule, "m.policy:1");
	ck_assert(!DECIDE(POLICY_BIND));
	id.groups[0] = 50;
	id.n_groups = IDENTITY_MAX_GROUPS;
	ck_assert(DECIDE(POLICY_BIND));

	ck_assert(DECIDE(POLICY_LISTEN));
	ck_assert(!DECIDE(POLICY_SEND));
	id.exe[0] = '\0';
	ck_assert(!DECIDE(POLICY_LISTEN));
	ck_assert_str_eq(d.rule, "m.policy:3");
	ck_assert(!DECIDE(POLICY_SEND));
	strcpy(id.exe, "/usr/bin/curl");
	ck_assert(!DECIDE(POLICY_LISTEN));
	ck_assert(DECIDE(POLICY_SEND));
#undef DECIDE
	policy_free(p);
}
END_TEST

/*
 * claimed-exe= (deny rules only) narrows: a claim matching a deny rule is denied, one that
 * does not falls through to the uid's rules; claimed-exe!= denies every other claim and no
 * claim at all; a claim never satisfies exe=.
 */
START_TEST(claimed_exe_only_narrows)
{
	struct policy *p = load("deny uid=1000 claimed-exe=/usr/bin/curl connect\n"
	                        "deny uid=1000 claimed-exe!=/usr/bin/ssh,/usr/bin/scp bind\n"
	                        "allow uid=1000 exe=/usr/bin/nc listen\n"
	                        "allow uid=1000 connect,bind\n");
	struct identity id = who_uid(1000);
	struct policy_request rq = {.who = &id};
	struct policy_decision d;

#define DECIDE(o) (rq.op = (o), policy_decide(p, &rq, &d), d.allow)
	ck_assert(DECIDE(POLICY_CONNECT)); /* no claim */
	strcpy(id.claimed_exe, "/usr/bin/curl");
	ck_assert(!DECIDE(POLICY_CONNECT));
	ck_assert_int_eq(d.rule_line, 1);
	strcpy(id.claimed_exe, "/usr/bin/wget");
	ck_assert(DECIDE(POLICY_CONNECT));
	ck_assert(!DECIDE(POLICY_BIND));
	strcpy(id.claimed_exe, "/usr/bin/scp");
	ck_assert(DECIDE(POLICY_BIND));
	id.claimed_exe[0] = '\0';
	ck_assert(!DECIDE(POLICY_BIND));
	strcpy(id.claimed_exe, "/usr/bin/nc");
	ck_assert(!DECIDE(POLICY_LISTEN));
	strcpy(id.exe, "/usr/bin/nc");
	ck_assert(DECIDE(POLICY_LISTEN));
#undef DECIDE
	policy_free(p);
}
END_TEST

/* exe= and cgroup= are fnmatch(3) globs without FNM_PATHNAME: `*` crosses `/`. */
START_TEST(exe_and_cgroup_globs)
{
	struct policy *p = load("allow exe=/usr/bin/python3* connect\n"
	                        "allow exe=/opt/app/bin/server,/usr/sbin/nginx bind\n"
	                        "allow cgroup=/system.slice/jobs-*.service listen\n"
	                        "allow cgroup=/user.slice/* accept\n");
	struct identity id = who_uid(1000);
	struct policy_request rq = {.who = &id};
	struct policy_decision d;

#define DECIDE(o) (rq.op = (o), policy_decide(p, &rq, &d), d.allow)
	strcpy(id.exe, "/usr/bin/python3.11");
	ck_assert(DECIDE(POLICY_CONNECT));
	strcpy(id.exe, "/usr/bin/python3");
	ck_assert(DECIDE(POLICY_CONNECT));
	strcpy(id.exe, "/usr/local/bin/python3");
	ck_assert(!DECIDE(POLICY_CONNECT));
	strcpy(id.exe, "/usr/sbin/nginx");
	ck_assert(DECIDE(POLICY_BIND));
	strcpy(id.exe, "/usr/sbin/nginx-debug");
	ck_assert(!DECIDE(POLICY_BIND));

	strcpy(id.cgroup, "/system.slice/jobs-7.service");
	ck_assert(DECIDE(POLICY_LISTEN));
	strcpy(id.cgroup, "/system.slice/jobs-7.service/sub");
	ck_assert(!DECIDE(POLICY_LISTEN));
	strcpy(id.cgroup, "/system.slice/other.service");
	ck_assert(!DECIDE(POLICY_LISTEN));
	strcpy(id.cgroup, "/user.slice/user-1000.slice/session-2.scope");
	ck_assert(DECIDE(POLICY_ACCEPT));
	strcpy(id.cgroup, "/user.slice");
	ck_assert(!DECIDE(POLICY_ACCEPT));
#undef DECIDE
	policy_free(p);
}
END_TEST

START_TEST(unix_paths)
{
	struct policy *p = load("allow * connect unix /run/x.sock\n"
	                        "allow * connect unix /run/app/*\n"
	                        "allow * bind unix abstract:sockrpc-test\n"
	                        "allow * bind unix abstract:pre*\n");
	struct identity id = who_uid(1);
	struct policy_request rq = {
	    .who = &id, .op = POLICY_CONNECT, .family = AF_UNIX, .type = SOCK_STREAM};
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct policy_decision d;

	ck_assert(decide_unix(p, POLICY_CONNECT, "/run/x.sock", 11, true).allow);
	ck_assert(decide_unix(p, POLICY_CONNECT, "/run/x.sock", 11, false).allow);
	ck_assert(!decide_unix(p, POLICY_CONNECT, "/run/x.sock2", 12, true).allow);
	ck_assert(!decide_unix(p, POLICY_CONNECT, "/run/x.soc", 10, true).allow);
	ck_assert(decide_unix(p, POLICY_CONNECT, "/run/app/a", 10, true).allow);
	ck_assert(decide_unix(p, POLICY_CONNECT, "/run/app/sub/b", 14, true).allow);
	ck_assert(!decide_unix(p, POLICY_CONNECT, "/run/apps", 9, true).allow);
	ck_assert(!decide_unix(p, POLICY_CONNECT, "/run/app", 8, true).allow);
	d = decide_unix(p, POLICY_BIND, "\0sockrpc-test", 13, false);
	ck_assert(d.allow);
	ck_assert_str_eq(d.rule, "m.policy:3");
	ck_assert(!decide_unix(p, POLICY_BIND, "/sockrpc-test", 13, true).allow);
	ck_assert(!decide_unix(p, POLICY_BIND, "\0sockrpc-tes", 12, false).allow);
	ck_assert(decide_unix(p, POLICY_BIND, "\0prefixed", 9, false).allow);
	ck_assert(!decide_unix(p, POLICY_CONNECT, "\0/run/x.sock", 12, false).allow);

	/* an unnamed socket has no path to match */
	rq.addr = (struct sockaddr *)&sun;
	rq.addr_len = sizeof(sa_family_t);
	policy_decide(p, &rq, &d);
	ck_assert(!d.allow);
	/* an IP target never matches a path rule */
	ck_assert(!allows(p, 1, POLICY_CONNECT, SOCK_STREAM, "127.0.0.1", 1));
	policy_free(p);
}
END_TEST

START_TEST(requests_without_target)
{
	struct policy *p = load("allow * * 10.0.0.0/8\n"
	                        "deny * connect tcp 192.0.2.0/24\n"
	                        "allow * connect tcp\n");
	struct identity id = who_uid(1);
	struct policy_request rq = {
	    .who = &id, .op = POLICY_CREATE, .family = AF_INET, .type = SOCK_STREAM};
	struct sockaddr_in short_sin = {.sin_family = AF_INET};
	struct policy_decision d;

	/* a rule with an address does not cover a request that has none */
	policy_decide(p, &rq, &d);
	ck_assert(!d.allow);
	check_connects(p, {"10.0.0.1", true}, {"192.0.2.9", false}, {"198.51.100.1", true});

	/* a malformed address fails closed: the deny rule applies */
	rq.op = POLICY_CONNECT;
	rq.addr = (struct sockaddr *)&short_sin;
	rq.addr_len = 4;
	policy_decide(p, &rq, &d);
	ck_assert(!d.allow);
	ck_assert_str_eq(d.rule, "m.policy:2");

	/* an op out of range is denied by default */
	rq.op = POLICY_OP_COUNT;
	rq.addr = NULL;
	policy_decide(p, &rq, &d);
	ck_assert(!d.allow);
	ck_assert_str_eq(d.rule, "default");
	policy_free(p);
}
END_TEST

START_TEST(rule_limits_in_decision)
{
	struct policy *p = load("allow uid=1 create tcp max-handles 16 max-connections 4\n"
	                        "allow uid=2 create tcp max-connections 0\n"
	                        "limit handles-per-session 99\n");
	struct identity id = who_uid(1);
	struct policy_request rq = {
	    .who = &id, .op = POLICY_CREATE, .family = AF_INET6, .type = SOCK_STREAM};
	struct policy_decision d;

	policy_decide(p, &rq, &d);
	ck_assert(d.allow);
	ck_assert_int_eq(d.max_handles, 16);
	ck_assert_int_eq(d.max_connections, 4);
	id.uid = 2;
	policy_decide(p, &rq, &d);
	ck_assert(d.allow);
	ck_assert_int_eq(d.max_handles, -1);
	ck_assert_int_eq(d.max_connections, 0);
	id.uid = 3;
	policy_decide(p, &rq, &d);
	ck_assert(!d.allow);
	ck_assert_int_eq(d.max_handles, -1);
	ck_assert_int_eq(policy_limits(p)->handles_per_session, 99);
	policy_free(p);
}
END_TEST

START_TEST(default_policy)
{
	struct policy *p = policy_default(1234);
	struct identity id = who_uid(1234);
	struct policy_decision d;

	for (int op = 0; op < POLICY_OP_COUNT; op++) {
		d = decide_ip_family(p, &id, (enum policy_op)op, 0, SOCK_STREAM, "8.8.8.8", 53);
		ck_assert(d.allow);
		ck_assert_str_eq(d.rule, "default");
		ck_assert_str_eq(d.reason, "allowed by the embedded default policy");
	}
	ck_assert(resolves(p, "example.com") == false); /* resolves() asks as uid 1000 */
	id = who_uid(1000);
	d = decide_ip_family(p, &id, POLICY_CONNECT, 0, SOCK_STREAM, "127.0.0.1", 80);
	ck_assert(!d.allow);
	ck_assert_str_eq(d.rule, "default");
	ck_assert_ptr_nonnull(strstr(d.reason, "deny by default"));
	id = who_uid(0);
	ck_assert(!decide_ip_family(p, &id, POLICY_CREATE, 0, SOCK_STREAM, "::1", 0).allow);
	policy_free(p);
}
END_TEST

START_TEST(op_names)
{
	static const char *const names[] = {"create", "connect", "bind",    "listen",
	                                    "accept", "send",    "resolve", "option"};
	enum policy_op op;

	ck_assert_int_eq(sizeof(names) / sizeof(names[0]), POLICY_OP_COUNT);
	for (int i = 0; i < POLICY_OP_COUNT; i++) {
		ck_assert_str_eq(policy_op_name((enum policy_op)i), names[i]);
		ck_assert_int_eq(policy_op_parse(names[i], &op), 0);
		ck_assert_int_eq(op, i);
	}
	ck_assert_str_eq(policy_op_name(POLICY_OP_COUNT), "?");
	ck_assert_str_eq(policy_op_name((enum policy_op) - 1), "?");
	ck_assert_int_eq(policy_op_parse("frob", &op), -1);
}
END_TEST

static struct identity
who_tls(const char *const *names, int n, uint8_t spki_byte)
{
	struct identity id;

	memset(&id, 0, sizeof(id));
	id.transport = IDENTITY_TLS;
	id.uid = 0; /* meaningless for a TLS peer: must never match uid=0 */
	for (int i = 0; i < n; i++)
		snprintf(id.principals[id.n_principals++], IDENTITY_PRINCIPAL_MAX, "%s", names[i]);
	memset(id.spki_sha256, spki_byte, sizeof(id.spki_sha256));
	return id;
}

/* principal= tries URI SANs, DNS SANs, CN; spki= the key hash; Unix facts never match a TLS
 * peer and certificate facts never a Unix peer, allow or deny. */
/* A claim narrows a TLS peer's access as it does a Unix peer's; a claim-only deny rule
 * applies to a TLS peer only when its claim matches. */
START_TEST(claimed_exe_for_tls_peers)
{
	struct policy *p =
	    load("deny claimed-exe=/usr/bin/curl connect\n"
	         "deny principal=spiffe://example.org/x claimed-exe!=/usr/bin/ssh bind\n"
	         "allow principal=spiffe://example.org/* connect,bind\n");
	const char *names[] = {"spiffe://example.org/x"};
	struct identity t = who_tls(names, 1, 0);
	struct policy_request rq = {.who = &t};
	struct policy_decision d;

#define DECIDE(o) (rq.op = (o), policy_decide(p, &rq, &d), d.allow)
	ck_assert(DECIDE(POLICY_CONNECT)); /* no claim */
	ck_assert(!DECIDE(POLICY_BIND));   /* no claim: != matches */
	strcpy(t.claimed_exe, "/usr/bin/curl");
	ck_assert(!DECIDE(POLICY_CONNECT));
	ck_assert_int_eq(d.rule_line, 1);
	strcpy(t.claimed_exe, "/usr/bin/ssh");
	ck_assert(DECIDE(POLICY_CONNECT));
	ck_assert(DECIDE(POLICY_BIND));
#undef DECIDE
	policy_free(p);
}
END_TEST

START_TEST(tls_principals_and_spki)
{
	struct policy *p = load(
	    "deny principal=spiffe://example.org/bad/* * reason \"bad\"\n"
	    "allow principal=spiffe://example.org/sandbox/*,*.ci.example connect tcp 127.0.0.1\n"
	    "allow spki=sha256:"
	    "abababababababababababababababababababababababababababababababab"
	    " connect tcp 10.0.0.1\n"
	    "deny uid=0 connect tcp 10.0.0.2\n"
	    "allow * connect tcp 10.0.0.2\n"
	    "allow uid=0 connect tcp 10.0.0.3\n");
	const char *sandbox[] = {"spiffe://example.org/sandbox/42", "x.example", "cn"};
	const char *ci[] = {"runner.ci.example", "CN"};
	const char *bad[] = {"spiffe://example.org/bad/1", "runner.ci.example"};
	struct identity a = who_tls(sandbox, 3, 0), b = who_tls(ci, 2, 0xab),
	                c = who_tls(bad, 2, 0xab), u = who_uid(0);

	ck_assert(decide_ip_family(p, &a, POLICY_CONNECT, 0, SOCK_STREAM, "127.0.0.1", 7).allow);
	ck_assert(decide_ip_family(p, &b, POLICY_CONNECT, 0, SOCK_STREAM, "127.0.0.1", 7).allow);
	ck_assert(!decide_ip_family(p, &c, POLICY_CONNECT, 0, SOCK_STREAM, "127.0.0.1", 7).allow);
	ck_assert(!decide_ip_family(p, &a, POLICY_CONNECT, 0, SOCK_STREAM, "10.0.0.1", 7).allow);
	ck_assert(decide_ip_family(p, &b, POLICY_CONNECT, 0, SOCK_STREAM, "10.0.0.1", 7).allow);
	/* A Unix peer never matches principal= or spki= */
	ck_assert(!decide_ip_family(p, &u, POLICY_CONNECT, 0, SOCK_STREAM, "127.0.0.1", 7).allow);
	ck_assert(!decide_ip_family(p, &u, POLICY_CONNECT, 0, SOCK_STREAM, "10.0.0.1", 7).allow);
	/* uid=0 rules never match a TLS peer whose uid field is 0: the deny does not apply
	 * (the next rule allows), and neither does the allow */
	ck_assert(decide_ip_family(p, &a, POLICY_CONNECT, 0, SOCK_STREAM, "10.0.0.2", 7).allow);
	ck_assert(!decide_ip_family(p, &u, POLICY_CONNECT, 0, SOCK_STREAM, "10.0.0.2", 7).allow);
	ck_assert(!decide_ip_family(p, &a, POLICY_CONNECT, 0, SOCK_STREAM, "10.0.0.3", 7).allow);
	ck_assert(decide_ip_family(p, &u, POLICY_CONNECT, 0, SOCK_STREAM, "10.0.0.3", 7).allow);
	policy_free(p);
}
END_TEST

Suite *
policy_match_suite(void)
{
	Suite *s = suite_create("policy_match");
	TCase *tc = tcase_create("addresses");

	tcase_add_test(tc, cidr_v4_edges);
	tcase_add_test(tc, cidr_v6_edges);
	tcase_add_test(tc, ports);
	tcase_add_test(tc, named_sets);
	tcase_add_test(tc, ipv4_mapped);
	tcase_add_test(tc, unspecified_destinations_are_loopback);
	tcase_add_test(tc, bind_addresses_are_not_rewritten);
	tcase_add_test(tc, canonical_destination);
	tcase_add_test(tc, privileged_options_need_a_rule_naming_them);
	tcase_add_test(tc, handback_in_the_decision);
	tcase_add_test(tc, option_names);
	tcase_add_test(tc, transports);
	tcase_add_test(tc, unix_paths);
	tcase_add_test(tc, requests_without_target);
	suite_add_tcase(s, tc);

	tc = tcase_create("rules");
	tcase_add_test(tc, first_match_and_default_deny);
	tcase_add_test(tc, name_patterns);
	tcase_add_test(tc, rule_limits_in_decision);
	tcase_add_test(tc, default_policy);
	tcase_add_test(tc, op_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("identity");
	tcase_add_test(tc, identity_uid_gid_groups);
	tcase_add_test(tc, identity_fail_closed);
	tcase_add_test(tc, exe_and_cgroup_globs);
	tcase_add_test(tc, tls_principals_and_spki);
	tcase_add_test(tc, claimed_exe_only_narrows);
	tcase_add_test(tc, claimed_exe_for_tls_peers);
	suite_add_tcase(s, tc);
	return s;
}
