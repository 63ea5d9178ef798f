/*
 * test_priv.c - the privileged parent's request validation (daemon/priv.c), fed forged
 * requests as a compromised worker would send them: a session it never opened, a wrong
 * size, an unknown type, a descriptor where none belongs (or none where one does), a
 * second session with a taken id, and requests the policy does not allow for the identity
 * the parent holds. Each is refused, with every descriptor it came with closed.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "priv.h"
#include "sockrpcd.h"

static struct policy *pol;
static struct priv_parent *parent;
static int client[2]; /* a session's connection: [0] the daemon's end, accepted on lfd */
static int lfd = -1;
static char dir[64], listen_path[100];
static int conns[160][2]; /* more connections accepted on lfd (connection()) */
static int n_conns;

/* A listener at path, and a connection accepted on it in out (out[1]: the client's end). */
static int
listener_and_connection(const char *path, int out[2])
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(l, 4), 0);
	out[1] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(connect(out[1], (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_ge(out[0] = accept4(l, NULL, NULL, SOCK_CLOEXEC), 0);
	return l;
}

static void
setup(void)
{
	char errors[512];
	FILE *f = fmemopen(
	    (void *)"allow uid=0 create tcp\n"
	            "allow uid=0 bind tcp 127.0.0.1 port 80\n",
	    strlen("allow uid=0 create tcp\nallow uid=0 bind tcp 127.0.0.1 port 80\n"), "r");

	ck_assert_ptr_nonnull(f);
	pol = policy_load_stream(f, "test", errors, sizeof(errors));
	fclose(f);
	ck_assert_msg(pol != NULL, "%s", errors);
	snprintf(dir, sizeof(dir), "/tmp/sockrpc-unit-priv.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(listen_path, sizeof(listen_path), "%s/sockrpc.sock", dir);
	lfd = listener_and_connection(listen_path, client);
	ck_assert_ptr_nonnull(parent = priv_parent_new(pol, 0, 0, listen_path));
}

static void
teardown(void)
{
	priv_parent_free(parent);
	policy_free(pol);
	for (; n_conns > 0; n_conns--) {
		close(conns[n_conns - 1][0]);
		close(conns[n_conns - 1][1]);
	}
	close(client[0]);
	close(client[1]);
	close(lfd);
	unlink(listen_path);
	rmdir(dir);
}

static struct priv_req
req(enum priv_type type, uint64_t session)
{
	struct priv_req rq;

	memset(&rq, 0, sizeof(rq));
	rq.type = type;
	rq.session = session;
	return rq;
}

/* Serves rq (len bytes of it) with the given fds; returns the reply's result. The first
 * descriptor of the reply lands in *reply_fd (else -1; NULL: closed), any others are closed. */
static int64_t
serve(const void *rq, size_t len, int *fds, int n_fds, int *reply_fd)
{
	struct priv_reply reply;
	int out[PRIV_REPLY_FDS_MAX], n_out = -1;

	ck_assert(priv_parent_serve(parent, rq, len, fds, n_fds, &reply, out, &n_out));
	ck_assert(n_out >= 0 && n_out <= PRIV_REPLY_FDS_MAX);
	for (int i = reply_fd != NULL; i < n_out; i++)
		close(out[i]);
	if (reply_fd != NULL)
		*reply_fd = n_out > 0 ? out[0] : -1;
	return reply.result;
}

static bool
is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

/* Another connection accepted on lfd (closed at teardown): its daemon's end. */
static int
connection(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int *c = conns[n_conns++];

	ck_assert_int_le(n_conns, 160);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", listen_path);
	c[1] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(connect(c[1], (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_ge(c[0] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), 0);
	return c[0];
}

/* Opens session id on a connection of its own (a connection is one session). */
static void
open_session(uint64_t id)
{
	struct priv_req rq = req(PRIV_SESSION_OPEN, id);
	int fd = dup(connection());

	ck_assert_int_eq(serve(&rq, sizeof(rq), &fd, 1, NULL), 0);
	ck_assert(!is_open(fd)); /* read, then closed */
}

START_TEST(a_session_never_opened_is_refused)
{
	struct priv_req rq = req(PRIV_SOCKET, 7);
	int fd = -1;

	rq.a = AF_INET;
	rq.b = SOCK_STREAM;
	ck_assert_int_eq(serve(&rq, sizeof(rq), NULL, 0, &fd), -EPERM);
	ck_assert_int_eq(fd, -1);
	open_session(7);
	ck_assert_int_eq(serve(&rq, sizeof(rq), NULL, 0, &fd), 1);
	ck_assert_int_ge(fd, 0);
	close(fd);
	/* Closed (no reply), then unknown again. */
	{
		struct priv_req close_rq = req(PRIV_SESSION_CLOSE, 7);
		struct priv_reply reply;
		int ignored[PRIV_REPLY_FDS_MAX], n_ignored;

		ck_assert(!priv_parent_serve(parent, &close_rq, sizeof(close_rq), NULL, 0, &reply,
		                             ignored, &n_ignored));
	}
	fd = -1;
	ck_assert_int_eq(serve(&rq, sizeof(rq), NULL, 0, &fd), -EPERM);
	ck_assert_int_eq(fd, -1);
}
END_TEST

/* Several workers: a worker names only its own sessions (the same id in another worker is
 * another session), and the global limits count every worker's admitted sessions. */
START_TEST(a_worker_reaches_only_its_own_sessions)
{
	struct daemon_limits limits = {.max_sessions = 10, .max_sessions_per_uid = 2};
	struct priv_req rq = req(PRIV_SOCKET, 5), admit;
	struct priv_reply reply;
	int fd = -1, ignored[PRIV_REPLY_FDS_MAX], n_ignored;

	rq.a = AF_INET;
	rq.b = SOCK_STREAM;
	priv_parent_set_limits(parent, &limits);
	priv_parent_set_worker(parent, 0);
	open_session(5);
	priv_parent_set_worker(parent, 1);
	ck_assert_int_eq(serve(&rq, sizeof(rq), NULL, 0, &fd), -EPERM);
	ck_assert_int_eq(fd, -1);
	admit = req(PRIV_SESSION_ADMIT, 5);
	ck_assert_int_eq(serve(&admit, sizeof(admit), NULL, 0, NULL), -EPERM);
	/* Its close of worker 0's session is refused: worker 0's still works. */
	rq.type = PRIV_SESSION_CLOSE;
	ck_assert(
	    !priv_parent_serve(parent, &rq, sizeof(rq), NULL, 0, &reply, ignored, &n_ignored));
	rq.type = PRIV_SOCKET;
	priv_parent_set_worker(parent, 0);
	ck_assert_int_eq(serve(&rq, sizeof(rq), NULL, 0, &fd), 1); /* one socket */
	close(fd);
	/* uid 0 twice, on workers 0 and 1 (the same id): a third, on worker 2, is refused. */
	ck_assert_int_eq(serve(&admit, sizeof(admit), NULL, 0, NULL), 0);
	priv_parent_set_worker(parent, 1);
	open_session(5);
	ck_assert_int_eq(serve(&admit, sizeof(admit), NULL, 0, NULL), 0);
	priv_parent_set_worker(parent, 2);
	open_session(9);
	admit.session = 9;
	ck_assert_int_eq(serve(&admit, sizeof(admit), NULL, 0, NULL), PRIV_REFUSED_OWNER);
	/* Worker 0 gone: its session no longer counts. */
	priv_parent_forget_worker(parent, 0);
	ck_assert_int_eq(serve(&admit, sizeof(admit), NULL, 0, NULL), 0);
	limits.max_sessions = 2;
	priv_parent_set_worker(parent, 1);
	open_session(12);
	admit.session = 12;
	ck_assert_int_eq(serve(&admit, sizeof(admit), NULL, 0, NULL), PRIV_REFUSED_SESSIONS);
}
END_TEST

/* A compromised worker opens one client's connection under several ids: each would count
 * against that uid in every worker, and lock it out. A connection is one session. */
START_TEST(a_connection_is_one_session_in_all_workers)
{
	struct daemon_limits limits = {.max_sessions = 10, .max_sessions_per_uid = 2};
	struct priv_req rq = req(PRIV_SESSION_OPEN, 2), admit = req(PRIV_SESSION_ADMIT, 2);
	struct priv_reply reply;
	int fd, ignored[PRIV_REPLY_FDS_MAX], n_ignored;

	priv_parent_set_limits(parent, &limits);
	priv_parent_set_worker(parent, 1);
	fd = dup(client[0]);
	ck_assert_int_eq(serve(&rq, sizeof(rq), &fd, 1, NULL), 0);
	ck_assert_int_eq(serve(&admit, sizeof(admit), NULL, 0, NULL), 0);
	ck_assert_int_eq(serve(&admit, sizeof(admit), NULL, 0, NULL), 0); /* counted once */
	rq.session = admit.session = 5;
	fd = dup(client[0]);
	ck_assert_int_eq(serve(&rq, sizeof(rq), &fd, 1, NULL), -EEXIST);
	ck_assert(!is_open(fd));
	ck_assert_int_eq(serve(&admit, sizeof(admit), NULL, 0, NULL), -EPERM);
	priv_parent_set_worker(parent, 2); /* nor in another worker */
	fd = dup(client[0]);
	ck_assert_int_eq(serve(&rq, sizeof(rq), &fd, 1, NULL), -EEXIST);
	/* So uid 0's own second session, in worker 0, is admitted. */
	priv_parent_set_worker(parent, 0);
	open_session(1);
	admit.session = 1;
	ck_assert_int_eq(serve(&admit, sizeof(admit), NULL, 0, NULL), 0);
	/* Closed, the connection may be a session again. */
	priv_parent_set_worker(parent, 1);
	rq = req(PRIV_SESSION_CLOSE, 2);
	ck_assert(
	    !priv_parent_serve(parent, &rq, sizeof(rq), NULL, 0, &reply, ignored, &n_ignored));
	admit.session = 2;
	ck_assert_int_eq(serve(&admit, sizeof(admit), NULL, 0, NULL), -EPERM);
	rq = req(PRIV_SESSION_OPEN, 8);
	fd = dup(client[0]);
	ck_assert_int_eq(serve(&rq, sizeof(rq), &fd, 1, NULL), 0);
}
END_TEST

/* A worker holds no more sessions than an honest one can (max_sessions, the margin, and
 * the TLS handshakes under way): a compromised one cannot grow the parent's table. The
 * bound is each worker's own. */
START_TEST(a_worker_holds_no_more_sessions_than_an_honest_one)
{
	struct daemon_limits limits = {.max_sessions = 2};
	const int most = 2 + MAX_SESSIONS_MARGIN + TLS_MAX_HANDSHAKES;
	struct priv_req rq;
	struct priv_reply reply;
	int fd, ignored[PRIV_REPLY_FDS_MAX], n_ignored;

	priv_parent_set_limits(parent, &limits);
	priv_parent_set_worker(parent, 1);
	for (int i = 1; i <= most; i++)
		open_session((uint64_t)i);
	rq = req(PRIV_SESSION_OPEN, (uint64_t)most + 1);
	fd = dup(connection());
	ck_assert_int_eq(serve(&rq, sizeof(rq), &fd, 1, NULL), -ENOSPC);
	ck_assert(!is_open(fd));
	priv_parent_set_worker(parent, 0);
	open_session(1);
	/* One closed, one more. */
	priv_parent_set_worker(parent, 1);
	rq = req(PRIV_SESSION_CLOSE, 3);
	ck_assert(
	    !priv_parent_serve(parent, &rq, sizeof(rq), NULL, 0, &reply, ignored, &n_ignored));
	open_session((uint64_t)most + 1);
}
END_TEST

START_TEST(wrong_sizes_and_types_are_refused)
{
	struct priv_req rq = req(PRIV_SOCKET, 1);
	char big[sizeof(rq) + 16];

	open_session(1);
	rq.a = AF_INET;
	rq.b = SOCK_STREAM;
	ck_assert_int_eq(serve(&rq, sizeof(rq) - 1, NULL, 0, NULL), -EINVAL);
	ck_assert_int_eq(serve(&rq, 2, NULL, 0, NULL), -EINVAL);
	ck_assert_int_eq(serve(&rq, 0, NULL, 0, NULL), -EINVAL);
	memset(big, 0, sizeof(big));
	memcpy(big, &rq, sizeof(rq));
	ck_assert_int_eq(serve(big, sizeof(big), NULL, 0, NULL), -EINVAL);
	rq.type = PRIV_TYPE_END;
	ck_assert_int_eq(serve(&rq, sizeof(rq), NULL, 0, NULL), -EINVAL);
	rq.type = 0;
	ck_assert_int_eq(serve(&rq, sizeof(rq), NULL, 0, NULL), -EINVAL);
	rq.type = PRIV_NOTICE; /* the parent's own notice, never a request */
	ck_assert_int_eq(serve(&rq, sizeof(rq), NULL, 0, NULL), -EINVAL);
	/* A send may carry a payload, but no more than a frame's. */
	{
		size_t n = sizeof(rq) + PRIV_PAYLOAD_MAX + 1;
		char *send = calloc(1, n);
		struct priv_req s = req(PRIV_UNIX_SEND, 1);
		int fd = dup(client[0]);

		memcpy(send, &s, sizeof(s));
		ck_assert_int_eq(serve(send, n, &fd, 1, NULL), -EINVAL);
		ck_assert(!is_open(fd));
		free(send);
	}
}
END_TEST

START_TEST(descriptors_where_none_belong_are_refused_and_closed)
{
	struct priv_req rq = req(PRIV_SOCKET, 1);
	int fds[2];

	open_session(1);
	rq.a = AF_INET;
	rq.b = SOCK_STREAM;
	fds[0] = dup(client[0]);
	ck_assert_int_eq(serve(&rq, sizeof(rq), fds, 1, NULL), -EINVAL);
	ck_assert(!is_open(fds[0]));
	/* One too many, and one too few. */
	rq = req(PRIV_BIND, 1);
	fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	fds[1] = dup(client[0]);
	ck_assert_int_eq(serve(&rq, sizeof(rq), fds, 2, NULL), -EINVAL);
	ck_assert(!is_open(fds[0]) && !is_open(fds[1]));
	ck_assert_int_eq(serve(&rq, sizeof(rq), NULL, 0, NULL), -EINVAL);
	/* A session is opened with its connection, and an id only once. */
	rq = req(PRIV_SESSION_OPEN, 2);
	ck_assert_int_eq(serve(&rq, sizeof(rq), NULL, 0, NULL), -EINVAL);
	open_session(2);
	fds[0] = dup(client[0]);
	ck_assert_int_eq(serve(&rq, sizeof(rq), fds, 1, NULL), -EEXIST);
	ck_assert(!is_open(fds[0]));
	/* Not a connection at all. */
	rq = req(PRIV_SESSION_OPEN, 3);
	fds[0] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(serve(&rq, sizeof(rq), fds, 1, NULL), -EINVAL);
	ck_assert(!is_open(fds[0]));
}
END_TEST

/* A session is a connection accepted on the daemon's listener: not one the worker made
 * itself to another server (whose peer, a root service say, would lend its identity). */
START_TEST(only_connections_accepted_on_the_listener_open_sessions)
{
	struct priv_req rq = req(PRIV_SESSION_OPEN, 4);
	char other[128];
	int pair[2], conn[2], l;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
	ck_assert_int_eq(serve(&rq, sizeof(rq), &pair[0], 1, NULL), -EINVAL);
	close(pair[1]);
	snprintf(other, sizeof(other), "%s/other.sock", dir);
	l = listener_and_connection(other, conn);
	/* The connecting end (the worker's own) and the end accepted elsewhere. */
	ck_assert_int_eq(serve(&rq, sizeof(rq), &conn[1], 1, NULL), -EINVAL);
	ck_assert_int_eq(serve(&rq, sizeof(rq), &conn[0], 1, NULL), -EINVAL);
	close(l);
	unlink(other);
	open_session(4);
}
END_TEST

/* Whatever a rule allows, the parent makes no socket of a family or type the policy
 * language cannot name (a root process's AF_PACKET, AF_NETLINK, SOCK_PACKET). */
START_TEST(only_the_brokered_families_and_types)
{
	struct priv_req rq = req(PRIV_SOCKET, 1);
	int fd = -1;

	open_session(1);
	rq.a = AF_NETLINK;
	rq.b = SOCK_RAW;
	ck_assert_int_eq(serve(&rq, sizeof(rq), NULL, 0, &fd), -EAFNOSUPPORT);
	rq.a = AF_PACKET;
	ck_assert_int_eq(serve(&rq, sizeof(rq), NULL, 0, &fd), -EAFNOSUPPORT);
	rq.a = AF_INET;
	rq.b = SOCK_PACKET;
	ck_assert_int_eq(serve(&rq, sizeof(rq), NULL, 0, &fd), -ESOCKTNOSUPPORT);
	ck_assert_int_eq(fd, -1);
}
END_TEST

/* The parent decides with the identity it read (uid 0 here, from the socketpair), by its
 * own policy: what the policy does not allow is refused whatever the worker thinks. */
START_TEST(the_parent_rechecks_the_policy)
{
	struct priv_req rq = req(PRIV_SOCKET, 1);
	struct sockaddr_in *sin = (struct sockaddr_in *)&rq.addr;
	int fd = -1, sock;

	open_session(1);
	rq.a = AF_INET;
	rq.b = SOCK_DGRAM; /* only tcp is allowed */
	ck_assert_int_eq(serve(&rq, sizeof(rq), NULL, 0, &fd), -EACCES);
	ck_assert_int_eq(fd, -1);
	rq.b = SOCK_STREAM | SOCK_CLOEXEC; /* flags are the parent's to add */
	ck_assert_int_eq(serve(&rq, sizeof(rq), NULL, 0, &fd), -EINVAL);
	/* A bind to a port the policy does not name. */
	rq = req(PRIV_BIND, 1);
	sin->sin_family = AF_INET;
	sin->sin_port = htons(81);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rq.addr_len = sizeof(*sin);
	sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	fd = dup(sock);
	ck_assert_int_eq(serve(&rq, sizeof(rq), &fd, 1, NULL), -EACCES);
	/* An address of another family than the socket's, or a forged length. */
	rq.addr_len = sizeof(struct sockaddr_in6);
	fd = dup(sock);
	ck_assert_int_eq(serve(&rq, sizeof(rq), &fd, 1, NULL), -EINVAL);
	/* An AF_UNIX request on an IP socket. */
	rq = req(PRIV_UNIX_CONNECT, 1);
	strcpy(rq.path, "/tmp/x.sock");
	fd = dup(sock);
	ck_assert_int_eq(serve(&rq, sizeof(rq), &fd, 1, NULL), -EINVAL);
	/* A setsockopt that needs no privilege is the worker's to make. */
	rq = req(PRIV_SETSOCKOPT, 1);
	rq.a = SO_KEEPALIVE;
	rq.value = 1;
	fd = dup(sock);
	ck_assert_int_eq(serve(&rq, sizeof(rq), &fd, 1, NULL), -EPERM);
	/* SO_DEBUG needs privilege, and no rule names it. */
	rq.a = SO_DEBUG;
	fd = dup(sock);
	ck_assert_int_eq(serve(&rq, sizeof(rq), &fd, 1, NULL), -EACCES);
	close(sock);
}
END_TEST

/* A batch (a session's socket reserve): up to PRIV_SOCKET_BATCH_MAX sockets of the kind
 * asked in one reply, all checked by the policy once; a count out of range, or a kind the
 * policy refuses, makes none. */
START_TEST(a_batch_of_sockets)
{
	struct priv_req rq = req(PRIV_SOCKET, 1);
	struct priv_reply reply;
	int out[PRIV_REPLY_FDS_MAX], n_out = -1;

	open_session(1);
	rq.a = AF_INET;
	rq.b = SOCK_STREAM;
	rq.value = PRIV_SOCKET_BATCH_MAX;
	ck_assert(priv_parent_serve(parent, &rq, sizeof(rq), NULL, 0, &reply, out, &n_out));
	ck_assert_int_eq(reply.result, PRIV_SOCKET_BATCH_MAX);
	ck_assert_int_eq(n_out, PRIV_SOCKET_BATCH_MAX);
	for (int i = 0; i < n_out; i++) {
		int family = -1, type = -1, flags = fcntl(out[i], F_GETFL);
		socklen_t len = sizeof(int);

		ck_assert_int_eq(getsockopt(out[i], SOL_SOCKET, SO_DOMAIN, &family, &len), 0);
		ck_assert_int_eq(getsockopt(out[i], SOL_SOCKET, SO_TYPE, &type, &len), 0);
		ck_assert(family == AF_INET && type == SOCK_STREAM && (flags & O_NONBLOCK));
		ck_assert(fcntl(out[i], F_GETFD) & FD_CLOEXEC);
		close(out[i]);
	}
	rq.value = 3;
	ck_assert_int_eq(serve(&rq, sizeof(rq), NULL, 0, NULL), 3);
	rq.value = PRIV_SOCKET_BATCH_MAX + 1;
	ck_assert_int_eq(serve(&rq, sizeof(rq), NULL, 0, NULL), -EINVAL);
	rq.value = -1;
	ck_assert_int_eq(serve(&rq, sizeof(rq), NULL, 0, NULL), -EINVAL);
	rq.value = 8;
	rq.b = SOCK_DGRAM; /* only tcp is allowed */
	n_out = -1;
	ck_assert(priv_parent_serve(parent, &rq, sizeof(rq), NULL, 0, &reply, out, &n_out));
	ck_assert_int_eq(reply.result, -EACCES);
	ck_assert_int_eq(n_out, 0);
}
END_TEST

Suite *
priv_suite(void)
{
	Suite *s = suite_create("priv");
	TCase *tc = tcase_create("validation");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, a_session_never_opened_is_refused);
	tcase_add_test(tc, a_worker_reaches_only_its_own_sessions);
	tcase_add_test(tc, a_connection_is_one_session_in_all_workers);
	tcase_add_test(tc, a_worker_holds_no_more_sessions_than_an_honest_one);
	tcase_add_test(tc, wrong_sizes_and_types_are_refused);
	tcase_add_test(tc, descriptors_where_none_belong_are_refused_and_closed);
	tcase_add_test(tc, the_parent_rechecks_the_policy);
	tcase_add_test(tc, only_connections_accepted_on_the_listener_open_sessions);
	tcase_add_test(tc, only_the_brokered_families_and_types);
	tcase_add_test(tc, a_batch_of_sockets);
	suite_add_tcase(s, tc);
	return s;
}
