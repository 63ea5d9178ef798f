/*
 * fuzz_policy.c - libFuzzer target for the policy language: arbitrary text through the
 * parser (policy_parse.c), then every loaded policy asked a fixed set of questions
 * (policy_decide for every op, family and kind of target, four identities), its limits
 * and formatting helpers, and the command-line tools on it (--check-policy, --explain).
 *
 * Input: the policy text; if it holds a NUL byte, what follows it is a line of words for
 * --explain (split at spaces, at most 12), else a few fixed word lists are explained.
 * Oracles: ASan/UBSan/LSan; a decision must be the same when asked twice; an allow must
 * come from a rule ("FILE:LINE"), never "default" (the default denies).
 *
 * fuzz-build: daemon
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/un.h>
#include <unistd.h>

#include "policy.h"

static FILE *devnull;
static int text_fd = -1;
static char text_path[64];

struct target {
	struct sockaddr_storage ss;
	socklen_t len;
};

static struct target targets[12];
static size_t n_targets;

static void
add_inet(const char *host, int port)
{
	struct target *t = &targets[n_targets++];
	struct sockaddr_in *sin = (struct sockaddr_in *)&t->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&t->ss;

	memset(t, 0, sizeof(*t));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		t->len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		t->len = sizeof(*sin6);
	} else {
		abort();
	}
}

static void
add_unix(const char *path, size_t len)
{
	struct target *t = &targets[n_targets++];
	struct sockaddr_un *sun = (struct sockaddr_un *)&t->ss;

	memset(t, 0, sizeof(*t));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, len);
	t->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	devnull = fopen("/dev/null", "w");
	text_fd = memfd_create("fuzz.policy", MFD_CLOEXEC);
	if (devnull == NULL || text_fd < 0)
		abort();
	snprintf(text_path, sizeof(text_path), "/proc/self/fd/%d", text_fd);
	add_inet("127.0.0.1", 80);
	add_inet("10.1.2.3", 443);
	add_inet("0.0.0.0", 22);
	add_inet("::1", 53);
	add_inet("::", 8000);
	add_inet("::ffff:127.0.0.1", 80);
	add_inet("2001:db8::1", 443);
	add_inet("169.254.169.254", 80);
	add_unix("/run/jobs/a.sock", sizeof("/run/jobs/a.sock"));
	add_unix("/run/jobs/../x.sock", sizeof("/run/jobs/../x.sock"));
	add_unix("\0abstract", sizeof("\0abstract") - 1);
	add_unix("", 0); /* unnamed */
	return 0;
}

static void
decide_twice(const struct policy *p, const struct policy_request *rq)
{
	struct policy_decision a, b;

	policy_decide(p, rq, &a);
	policy_decide(p, rq, &b);
	if (a.allow != b.allow || strcmp(a.rule, b.rule) != 0) {
		fprintf(stderr, "fuzz_policy: the same question got two answers\n");
		abort();
	}
	if (a.allow && strcmp(a.rule, "default") == 0) {
		fprintf(stderr, "fuzz_policy: an allow from no rule\n");
		abort();
	}
}

static void
ask(const struct policy *p)
{
	static const int families[] = {AF_INET, AF_INET6, AF_UNIX};
	static const int types[] = {SOCK_STREAM, SOCK_DGRAM, SOCK_RAW};
	static const char *const names[] = {"example.com", "a.b.example.com.", "EXAMPLE.COM",
	                                    "localhost", ""};
	struct identity who[4];
	char buf[256], small[16];
	int port;

	memset(who, 0, sizeof(who));
	who[0].uid = 0;
	who[1].uid = 1000, who[1].gid = 100, who[1].n_groups = 2, who[1].groups[0] = 33,
	who[1].groups[1] = 1000;
	snprintf(who[1].exe, sizeof(who[1].exe), "/usr/bin/python3");
	snprintf(who[1].cgroup, sizeof(who[1].cgroup), "/system.slice/jobs-1.service");
	who[2].uid = 65534, who[2].gid = 65534, who[2].groups_truncated = true;
	who[3].uid = 33, who[3].gid = 33;
	snprintf(who[3].exe, sizeof(who[3].exe), "/usr/sbin/apache2");
	for (int w = 0; w < 4; w++) {
		for (int op = 0; op < POLICY_OP_COUNT; op++) {
			struct policy_request rq = {.who = &who[w], .op = (enum policy_op)op};

			for (size_t f = 0; f < 3; f++) {
				rq.family = families[f];
				rq.type = types[(f + (size_t)op) % 3];
				rq.option = op == POLICY_OPTION ? 2 + (int)f : 0;
				decide_twice(p, &rq);
			}
			if (op == POLICY_RESOLVE) {
				for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
					rq.family = AF_UNSPEC;
					rq.name = names[i];
					decide_twice(p, &rq);
				}
				continue;
			}
			for (size_t t = 0; t < n_targets; t++) {
				rq.family = targets[t].ss.ss_family;
				rq.type = t % 2 ? SOCK_DGRAM : SOCK_STREAM;
				rq.addr = (const struct sockaddr *)&targets[t].ss;
				rq.addr_len = targets[t].len;
				decide_twice(p, &rq);
				/* A truncated address must not be read past its length. */
				rq.addr_len = targets[t].len / 2;
				decide_twice(p, &rq);
			}
		}
	}
	for (size_t t = 0; t < n_targets; t++)
		policy_format_addr((const struct sockaddr *)&targets[t].ss, targets[t].len, buf,
		                   sizeof(buf), &port);
	policy_format_addr(NULL, 0, buf, sizeof(buf), &port);
	for (int op = -1; op <= POLICY_OP_COUNT; op++) {
		enum policy_op back;

		if (policy_op_parse(policy_op_name((enum policy_op)op), &back) == 0 &&
		    back != (enum policy_op)op) {
			fprintf(stderr, "fuzz_policy: op names do not round-trip\n");
			abort();
		}
	}
	for (int i = -1; i < 12; i++) {
		policy_family_name(i, small, sizeof(small));
		policy_type_name(i, small, sizeof(small));
	}
	(void)policy_limits(p);
	(void)policy_rule_count(p);
	(void)policy_source(p);
}

static void
explain(const char *line, size_t len)
{
	static const char *const fixed[][4] = {
	    {"uid=1000", "connect", "tcp", "10.1.2.3:443"},
	    {"uid=65534", "bind", "unix", "/run/jobs/a.sock"},
	    {"user=root", "resolve", "example.com", NULL},
	    {"gid=33", "send", "udp", "[::1]:53"},
	};
	char copy[512], *words[13], *save = NULL, *w;
	int argc = 0;

	if (line == NULL) {
		for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
			int n = fixed[i][3] ? 4 : 3;

			explain_main(text_path, n, (char **)fixed[i], devnull);
		}
		return;
	}
	if (len >= sizeof(copy))
		len = sizeof(copy) - 1;
	memcpy(copy, line, len);
	copy[len] = '\0';
	for (w = strtok_r(copy, " ", &save); w != NULL && argc < 12; w = strtok_r(NULL, " ", &save))
		words[argc++] = w;
	words[argc] = NULL;
	explain_main(text_path, argc, words, devnull);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t text_len = nul ? (size_t)(nul - data) : size;
	char errors[1024];
	struct policy *p;
	FILE *f;

	if (size == 0 || text_len > 16384)
		return 0;
	f = fmemopen((void *)data, text_len, "r");
	if (f == NULL)
		abort();
	p = policy_load_stream(f, "fuzz.policy", errors, sizeof(errors));
	fclose(f);
	if (p != NULL) {
		ask(p);
		policy_free(p);
	}
	/* The file-based tools read the same text from a memfd. */
	if (ftruncate(text_fd, 0) != 0 || pwrite(text_fd, data, text_len, 0) != (ssize_t)text_len)
		abort();
	check_policy_main(text_path, devnull, devnull);
	explain(nul ? (const char *)nul + 1 : NULL, nul ? size - text_len - 1 : 0);
	return 0;
}
