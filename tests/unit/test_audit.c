/*
 * test_audit.c - the audit log: every line written to a file is one valid JSON object
 * (checked by a small strict JSON parser here) with the fields audit.h lists, strings
 * escaped (quotes, backslashes, control characters, bytes that are not UTF-8), time in
 * RFC 3339 UTC with milliseconds; reopen after rotation; write errors counted.
 */
#include <arpa/inet.h>
#include <check.h>
#include <ctype.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"

#define MAX_FIELDS 32
#define TEST_LINE 16384

/* One parsed line: top-level keys and their values, strings decoded (\u escapes below
 * U+0080 only, which is all audit.c emits), other values as their raw text. */
struct json_line {
	int n;
	char key[MAX_FIELDS][32];
	char value[MAX_FIELDS][1024];
	bool is_string[MAX_FIELDS];
};

static const char *json_value(const char *s, char *out, size_t out_len, bool *is_string);

static const char *
skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	return s;
}

/* A JSON string at s (which is at the opening quote). Returns the char after the closing
 * quote, or NULL if invalid. Rejects raw control characters, bad escapes, bad UTF-8. */
static const char *
json_string(const char *s, char *out, size_t out_len)
{
	size_t o = 0;

	if (*s++ != '"')
		return NULL;
	for (;;) {
		unsigned char c = (unsigned char)*s;
		char ch;

		if (c == '\0' || c < 0x20)
			return NULL;
		if (c == '"')
			break;
		if (c == '\\') {
			s++;
			switch (*s) {
			case '"':
				ch = '"';
				break;
			case '\\':
				ch = '\\';
				break;
			case '/':
				ch = '/';
				break;
			case 'b':
				ch = '\b';
				break;
			case 'f':
				ch = '\f';
				break;
			case 'n':
				ch = '\n';
				break;
			case 'r':
				ch = '\r';
				break;
			case 't':
				ch = '\t';
				break;
			case 'u': {
				unsigned v = 0;

				for (int i = 1; i <= 4; i++) {
					if (!isxdigit((unsigned char)s[i]))
						return NULL;
					v = v * 16 + (unsigned)(isdigit((unsigned char)s[i])
					                            ? s[i] - '0'
					                            : tolower((unsigned char)s[i]) -
					                                  'a' + 10);
				}
				if (v >= 0x80)
					return NULL; /* audit.c never needs more */
				ch = (char)v;
				s += 4;
				break;
			}
			default:
				return NULL;
			}
			s++;
			if (o + 1 < out_len)
				out[o++] = ch;
			continue;
		}
		if (c >= 0x80) {
			int len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;

			if (len == 0 || c > 0xf4)
				return NULL;
			for (int i = 1; i < len; i++)
				if (((unsigned char)s[i] & 0xc0) != 0x80)
					return NULL;
			for (int i = 0; i < len; i++)
				if (o + 1 < out_len)
					out[o++] = s[i];
			s += len;
			continue;
		}
		if (o + 1 < out_len)
			out[o++] = (char)c;
		s++;
	}
	out[o] = '\0';
	return s + 1;
}

static const char *
json_number(const char *s, char *out, size_t out_len)
{
	const char *start = s;

	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (isdigit((unsigned char)*s))
		while (isdigit((unsigned char)*s))
			s++;
	else
		return NULL;
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return NULL;
		while (isdigit((unsigned char)*s))
			s++;
	}
	snprintf(out, out_len, "%.*s", (int)(s - start), start);
	return s;
}

static const char *
json_value(const char *s, char *out, size_t out_len, bool *is_string)
{
	*is_string = false;
	s = skip_ws(s);
	if (*s == '"') {
		*is_string = true;
		return json_string(s, out, out_len);
	}
	if (strncmp(s, "null", 4) == 0 || strncmp(s, "true", 4) == 0) {
		snprintf(out, out_len, "%.4s", s);
		return s + 4;
	}
	if (strncmp(s, "false", 5) == 0) {
		snprintf(out, out_len, "false");
		return s + 5;
	}
	return json_number(s, out, out_len);
}

/* Parses one line as exactly one flat JSON object followed by "\n". */
static bool
json_parse_line(const char *line, struct json_line *j)
{
	const char *s = skip_ws(line);

	memset(j, 0, sizeof(*j));
	if (*s++ != '{')
		return false;
	s = skip_ws(s);
	if (*s == '}')
		return strcmp(s, "}\n") == 0;
	for (;;) {
		if (j->n == MAX_FIELDS)
			return false;
		s = skip_ws(s);
		if ((s = json_string(s, j->key[j->n], sizeof(j->key[0]))) == NULL)
			return false;
		for (int i = 0; i < j->n; i++)
			if (strcmp(j->key[i], j->key[j->n]) == 0)
				return false; /* duplicate key */
		s = skip_ws(s);
		if (*s++ != ':')
			return false;
		if ((s = json_value(s, j->value[j->n], sizeof(j->value[0]), &j->is_string[j->n])) ==
		    NULL)
			return false;
		j->n++;
		s = skip_ws(s);
		if (*s == ',') {
			s++;
			continue;
		}
		if (*s != '}')
			return false;
		return strcmp(s, "}\n") == 0;
	}
}

static const char *
field(const struct json_line *j, const char *key)
{
	for (int i = 0; i < j->n; i++)
		if (strcmp(j->key[i], key) == 0)
			return j->value[i];
	ck_abort_msg("no field %s", key);
	return NULL;
}

static bool
field_is_string(const struct json_line *j, const char *key)
{
	for (int i = 0; i < j->n; i++)
		if (strcmp(j->key[i], key) == 0)
			return j->is_string[i];
	return false;
}

static char log_path[] = "/tmp/sockrpc-audit-XXXXXX";

static void
setup(void)
{
	int fd = mkstemp(log_path);

	ck_assert_int_ge(fd, 0);
	close(fd);
}

static void
teardown(void)
{
	unlink(log_path);
	strcpy(log_path, "/tmp/sockrpc-audit-XXXXXX");
}

/* Reads the file's lines; returns how many (at most max). */
static int
read_lines(const char *path, char lines[][TEST_LINE], int max)
{
	FILE *f = fopen(path, "r");
	int n = 0;

	ck_assert_ptr_nonnull(f);
	while (n < max && fgets(lines[n], TEST_LINE, f) != NULL) {
		ck_assert_msg(strchr(lines[n], '\n') != NULL, "line %d not ended", n);
		n++;
	}
	fclose(f);
	return n;
}

static void
check_time(const char *t)
{
	struct tm tm;
	char *end;
	time_t when, now = time(NULL);

	memset(&tm, 0, sizeof(tm));
	ck_assert_uint_eq(strlen(t), 24);
	end = strptime(t, "%Y-%m-%dT%H:%M:%S", &tm);
	ck_assert_ptr_nonnull(end);
	ck_assert_msg(end[0] == '.' && isdigit((unsigned char)end[1]) &&
	                  isdigit((unsigned char)end[2]) && isdigit((unsigned char)end[3]) &&
	                  end[4] == 'Z' && end[5] == '\0',
	              "bad time %s", t);
	when = timegm(&tm);
	ck_assert_msg(when <= now + 1 && when >= now - 60, "time %s is not now", t);
}

/* A decision line's peer part is kept for the next line with the same peer (audit.c): a
 * peer that differs in any of uid, gid, pid, exe or claimed_exe gets its own. */
START_TEST(each_line_names_its_own_peer)
{
	static char lines[8][TEST_LINE];
	char err[256], want[32];
	struct audit *a = audit_open(log_path, err, sizeof(err));
	struct identity who[6];
	struct policy_request rq;
	struct policy_decision d;
	struct json_line j;

	ck_assert_msg(a != NULL, "%s", err);
	memset(who, 0, sizeof(who));
	for (int i = 0; i < 6; i++) {
		who[i].uid = 1000;
		who[i].gid = 100;
		who[i].pid = 4321;
		strcpy(who[i].exe, "/usr/bin/a");
	}
	who[1].uid = 1001;
	who[2].gid = 101;
	who[3].pid = 4322;
	strcpy(who[4].exe, "/usr/bin/b");
	strcpy(who[5].claimed_exe, "/usr/bin/c");
	memset(&rq, 0, sizeof(rq));
	rq.op = POLICY_CREATE;
	rq.family = AF_INET;
	rq.type = SOCK_STREAM;
	memset(&d, 0, sizeof(d));
	d.allow = true;
	strcpy(d.rule, "default");
	strcpy(d.reason, "ok");
	for (int i = 0; i < 6; i++) {
		rq.who = &who[i];
		audit_decision(a, 1, &rq, &d);
	}
	rq.who = &who[0]; /* the first again, after the others */
	audit_decision(a, 1, &rq, &d);
	audit_free(a);

	ck_assert_int_eq(read_lines(log_path, lines, 8), 7);
	for (int i = 0; i < 7; i++) {
		const struct identity *w = &who[i % 6];

		ck_assert_msg(json_parse_line(lines[i], &j), "not JSON: %s", lines[i]);
		snprintf(want, sizeof(want), "%u", (unsigned)w->uid);
		ck_assert_str_eq(field(&j, "uid"), want);
		snprintf(want, sizeof(want), "%u", (unsigned)w->gid);
		ck_assert_str_eq(field(&j, "gid"), want);
		snprintf(want, sizeof(want), "%d", (int)w->pid);
		ck_assert_str_eq(field(&j, "pid"), want);
		ck_assert_str_eq(field(&j, "exe"), w->exe);
		if (w->claimed_exe[0] != '\0')
			ck_assert_str_eq(field(&j, "claimed_exe"), w->claimed_exe);
		else
			ck_assert_str_eq(field(&j, "claimed_exe"), "null");
	}
}
END_TEST

START_TEST(decision_lines_are_json)
{
	static char lines[4][TEST_LINE];
	char err[256];
	struct audit *a = audit_open(log_path, err, sizeof(err));
	struct identity who;
	struct sockaddr_in6 sin6;
	struct policy_request rq;
	struct policy_decision d;
	struct json_line j;

	ck_assert_msg(a != NULL, "%s", err);
	memset(&who, 0, sizeof(who));
	who.uid = 1000;
	who.gid = 100;
	who.pid = 4321;
	strcpy(who.exe, "/opt/we\"ird\\dir/new\nline\x01\x7f\xff-\xc3\xa9");

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(443);
	inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);

	memset(&rq, 0, sizeof(rq));
	rq.who = &who;
	rq.op = POLICY_CONNECT;
	rq.family = AF_INET6;
	rq.type = SOCK_STREAM | SOCK_NONBLOCK;
	rq.addr = (struct sockaddr *)&sin6;
	rq.addr_len = sizeof(sin6);

	memset(&d, 0, sizeof(d));
	d.allow = false;
	strcpy(d.rule, "/etc/sockrpc/policy:12");
	strcpy(d.reason, "say \"no\"\tplease");
	audit_decision(a, 7, &rq, &d);

	rq.op = POLICY_RESOLVE;
	rq.addr = NULL;
	rq.family = AF_UNSPEC;
	rq.type = 0;
	rq.name = "example.com";
	d.allow = true;
	strcpy(d.rule, "default");
	strcpy(d.reason, "ok");
	audit_decision(a, 8, &rq, &d);
	audit_free(a);

	ck_assert_int_eq(read_lines(log_path, lines, 4), 2);

	ck_assert_msg(json_parse_line(lines[0], &j), "not JSON: %s", lines[0]);
	check_time(field(&j, "time"));
	ck_assert_str_eq(field(&j, "event"), "decision");
	ck_assert_str_eq(field(&j, "session"), "7");
	ck_assert_str_eq(field(&j, "uid"), "1000");
	ck_assert_str_eq(field(&j, "gid"), "100");
	ck_assert_str_eq(field(&j, "pid"), "4321");
	ck_assert_str_eq(field(&j, "exe"), "/opt/we\"ird\\dir/new\nline\x01\x7f\\xff-\xc3\xa9");
	ck_assert_str_eq(field(&j, "op"), "connect");
	ck_assert_str_eq(field(&j, "family"), "ipv6");
	ck_assert_str_eq(field(&j, "type"), "stream");
	ck_assert_str_eq(field(&j, "address"), "2001:db8::1");
	ck_assert_str_eq(field(&j, "port"), "443");
	ck_assert(!field_is_string(&j, "port"));
	ck_assert_str_eq(field(&j, "name"), "null");
	ck_assert(!field_is_string(&j, "name"));
	ck_assert_str_eq(field(&j, "decision"), "deny");
	ck_assert_str_eq(field(&j, "rule"), "/etc/sockrpc/policy:12");
	ck_assert_str_eq(field(&j, "reason"), "say \"no\"\tplease");
	/* the raw line has no control bytes at all */
	for (const char *c = lines[0]; *c != '\n'; c++)
		ck_assert_int_ge((unsigned char)*c, 0x20);

	ck_assert_msg(json_parse_line(lines[1], &j), "not JSON: %s", lines[1]);
	ck_assert_str_eq(field(&j, "session"), "8");
	ck_assert_str_eq(field(&j, "op"), "resolve");
	ck_assert_str_eq(field(&j, "family"), "unspec");
	ck_assert_str_eq(field(&j, "address"), "null");
	ck_assert_str_eq(field(&j, "port"), "null");
	ck_assert_str_eq(field(&j, "name"), "example.com");
	ck_assert_str_eq(field(&j, "decision"), "allow");
	ck_assert_str_eq(field(&j, "rule"), "default");
}
END_TEST

START_TEST(unix_and_mapped_targets)
{
	static char lines[4][TEST_LINE];
	char err[256];
	struct audit *a = audit_open(log_path, err, sizeof(err));
	struct identity who = {.uid = 1};
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(80)};
	struct policy_request rq = {
	    .who = &who, .op = POLICY_BIND, .family = AF_UNIX, .type = SOCK_DGRAM};
	struct policy_decision d = {.allow = true, .rule = "p:1", .reason = "r"};
	struct json_line j;

	memcpy(sun.sun_path, "\0abs\"name", 9);
	rq.addr = (struct sockaddr *)&sun;
	rq.addr_len = offsetof(struct sockaddr_un, sun_path) + 9;
	audit_decision(a, 1, &rq, &d);

	inet_pton(AF_INET6, "::ffff:10.0.0.1", &sin6.sin6_addr);
	rq.op = POLICY_CONNECT;
	rq.family = AF_INET6;
	rq.type = SOCK_STREAM;
	rq.addr = (struct sockaddr *)&sin6;
	rq.addr_len = sizeof(sin6);
	rq.who = NULL;
	audit_decision(a, 2, &rq, &d);
	audit_free(a);

	ck_assert_int_eq(read_lines(log_path, lines, 4), 2);
	ck_assert_msg(json_parse_line(lines[0], &j), "not JSON: %s", lines[0]);
	ck_assert_str_eq(field(&j, "family"), "unix");
	ck_assert_str_eq(field(&j, "type"), "dgram");
	ck_assert_str_eq(field(&j, "address"), "@abs\"name");
	ck_assert_str_eq(field(&j, "port"), "null");
	ck_assert_msg(json_parse_line(lines[1], &j), "not JSON: %s", lines[1]);
	ck_assert_str_eq(field(&j, "address"), "10.0.0.1");
	ck_assert_str_eq(field(&j, "port"), "80");
	ck_assert_str_eq(field(&j, "uid"), "null");
	ck_assert_str_eq(field(&j, "exe"), "null");
}
END_TEST

START_TEST(close_lines_are_json)
{
	static char lines[4][TEST_LINE];
	char err[256];
	struct audit *a = audit_open(log_path, err, sizeof(err));
	struct identity who = {.uid = 4242};
	struct json_line j;

	audit_handle_closed(a, 99, &who, 3, 1234567890123ull, 0, "peer \"closed\"\r\n");
	audit_handle_closed(a, 99, NULL, -1, 0, 18446744073709551615ull, NULL);
	audit_decision(NULL, 1, NULL, NULL); /* a NULL sink is a no-op */
	audit_free(a);
	audit_free(NULL);

	ck_assert_int_eq(read_lines(log_path, lines, 4), 2);
	ck_assert_msg(json_parse_line(lines[0], &j), "not JSON: %s", lines[0]);
	check_time(field(&j, "time"));
	ck_assert_str_eq(field(&j, "event"), "close");
	ck_assert_str_eq(field(&j, "session"), "99");
	ck_assert_str_eq(field(&j, "uid"), "4242");
	ck_assert_str_eq(field(&j, "handle"), "3");
	ck_assert_str_eq(field(&j, "bytes_in"), "1234567890123");
	ck_assert_str_eq(field(&j, "bytes_out"), "0");
	ck_assert_str_eq(field(&j, "reason"), "peer \"closed\"\r\n");
	ck_assert_msg(json_parse_line(lines[1], &j), "not JSON: %s", lines[1]);
	ck_assert_str_eq(field(&j, "uid"), "null");
	ck_assert_str_eq(field(&j, "handle"), "-1");
	ck_assert_str_eq(field(&j, "bytes_out"), "18446744073709551615");
	ck_assert_str_eq(field(&j, "reason"), "null");
}
END_TEST

START_TEST(appends_and_reopens)
{
	static char lines[8][TEST_LINE];
	char err[256], rotated[64];
	struct audit *a;
	struct identity who = {.uid = 1};
	FILE *f = fopen(log_path, "w");

	fputs("{\"existing\":1}\n", f);
	fclose(f);
	a = audit_open(log_path, err, sizeof(err));
	ck_assert_ptr_nonnull(a);
	audit_handle_closed(a, 1, &who, 1, 0, 0, "first");

	snprintf(rotated, sizeof(rotated), "%s.1", log_path);
	ck_assert_int_eq(rename(log_path, rotated), 0);
	audit_handle_closed(a, 1, &who, 2, 0, 0, "second, into the rotated file");
	ck_assert_int_eq(audit_reopen(a), 0);
	audit_handle_closed(a, 1, &who, 3, 0, 0, "third, into a new file");
	audit_free(a);

	ck_assert_int_eq(read_lines(rotated, lines, 8), 3);
	ck_assert_str_eq(lines[0], "{\"existing\":1}\n");
	ck_assert_ptr_nonnull(strstr(lines[1], "\"first\""));
	ck_assert_ptr_nonnull(strstr(lines[2], "\"second"));
	ck_assert_int_eq(read_lines(log_path, lines, 8), 1);
	ck_assert_ptr_nonnull(strstr(lines[0], "\"third"));
	unlink(rotated);
}
END_TEST

START_TEST(open_errors_and_write_errors)
{
	char err[256];
	struct audit *a;
	struct identity who = {.uid = 1};

	ck_assert_ptr_null(audit_open("/nonexistent/dir/audit.log", err, sizeof(err)));
	ck_assert_str_eq(err, "audit: /nonexistent/dir/audit.log: No such file or directory");

	a = audit_open("/dev/full", err, sizeof(err));
	ck_assert_ptr_nonnull(a);
	audit_handle_closed(a, 1, &who, 1, 0, 0, "x");
	audit_handle_closed(a, 1, &who, 2, 0, 0, "y");
	ck_assert_uint_eq(audit_write_errors(a), 2);
	audit_free(a);

	/* stderr sink: opens, reopens as a no-op, frees without closing fd 2 */
	a = audit_open(NULL, err, sizeof(err));
	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(audit_reopen(a), 0);
	audit_free(a);
	ck_assert_int_ne(fcntl(STDERR_FILENO, F_GETFD), -1);
}
END_TEST

START_TEST(long_values_stay_valid)
{
	static char lines[2][TEST_LINE];
	char err[256];
	struct audit *a = audit_open(log_path, err, sizeof(err));
	struct identity who;
	struct policy_request rq = {.who = &who, .op = POLICY_RESOLVE};
	struct policy_decision d;
	char name[1024];
	struct json_line j;

	memset(&who, 0, sizeof(who));
	/* exe with no NUL inside its array, all bytes needing escapes */
	memset(who.exe, '\x01', sizeof(who.exe));
	memset(who.cgroup, 'c', sizeof(who.cgroup));
	memset(&d, 0, sizeof(d));
	memset(d.rule, '"', sizeof(d.rule));
	memset(d.reason, '\\', sizeof(d.reason));
	memset(name, '\n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	rq.name = name;
	audit_decision(a, 5, &rq, &d);
	audit_free(a);

	ck_assert_int_eq(read_lines(log_path, lines, 2), 1);
	ck_assert_msg(json_parse_line(lines[0], &j), "not JSON: %.200s", lines[0]);
	ck_assert_uint_eq(strlen(field(&j, "exe")), sizeof(who.exe));
	ck_assert_uint_eq(strlen(field(&j, "rule")), sizeof(d.rule));
}
END_TEST

Suite *
audit_suite(void)
{
	Suite *s = suite_create("audit");
	TCase *tc = tcase_create("lines");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, decision_lines_are_json);
	tcase_add_test(tc, each_line_names_its_own_peer);
	tcase_add_test(tc, unix_and_mapped_targets);
	tcase_add_test(tc, close_lines_are_json);
	tcase_add_test(tc, appends_and_reopens);
	tcase_add_test(tc, open_errors_and_write_errors);
	tcase_add_test(tc, long_values_stay_valid);
	suite_add_tcase(s, tc);
	return s;
}
