/*
 * run_probe.c - the program test_run.sh starts under `sockrpc run`: each mode makes
 * a few raw system calls (no libc resolver, no libsockrpc) and prints one line per
 * outcome with the errno's name, so the script can check what the supervisor did.
 * Exit 0 when the mode's calls succeeded, 1 when one failed, 2 on bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *
ename(int e)
{
	const char *n = strerrorname_np(e);

	return n != NULL ? n : "?";
}

static int
fail(const char *what)
{
	printf("%s: %s\n", what, ename(errno));
	return 1;
}

static int
parse_addr(const char *host, const char *port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)atoi(port));
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)atoi(port));
		*len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

/* connect HOST PORT: connect, say "ping", print the peer's first line and the peer name. */
static int
mode_connect(const char *host, const char *port)
{
	struct sockaddr_storage ss, peer;
	socklen_t len, plen = sizeof(peer);
	char buf[256], name[INET6_ADDRSTRLEN];
	ssize_t n;
	int fd;

	if (parse_addr(host, port, &ss, &len) == -1)
		return 2;
	if ((fd = socket(ss.ss_family, SOCK_STREAM, 0)) == -1)
		return fail("socket");
	if (connect(fd, (struct sockaddr *)&ss, len) == -1)
		return fail("connect");
	if (getpeername(fd, (struct sockaddr *)&peer, &plen) == -1)
		return fail("getpeername");
	inet_ntop(peer.ss_family,
	          peer.ss_family == AF_INET ? (void *)&((struct sockaddr_in *)&peer)->sin_addr
	                                    : (void *)&((struct sockaddr_in6 *)&peer)->sin6_addr,
	          name, sizeof(name));
	printf("connected: peer %s port %d\n", name,
	       ntohs(((struct sockaddr_in *)&peer)->sin_port));
	if (write(fd, "ping\n", 5) != 5)
		return fail("write");
	if ((n = read(fd, buf, sizeof(buf) - 1)) <= 0)
		return fail("read");
	buf[n] = '\0';
	printf("received: %s", buf);
	close(fd);
	return 0;
}

/*
 * nbconnect HOST PORT: a non-blocking connect, then POLLOUT and SO_ERROR, as
 * event loops do; on success "ping" and the first line back.
 */
static int
mode_nbconnect(const char *host, const char *port)
{
	struct sockaddr_storage ss;
	struct pollfd pfd;
	socklen_t len, elen = sizeof(int);
	char buf[256];
	ssize_t n;
	int fd, err = 0;

	if (parse_addr(host, port, &ss, &len) == -1)
		return 2;
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1)
		return fail("socket");
	if (connect(fd, (struct sockaddr *)&ss, len) == 0)
		printf("connect: 0\n");
	else if (errno == EINPROGRESS)
		printf("connect: EINPROGRESS\n");
	else
		return fail("connect");
	pfd = (struct pollfd){.fd = fd, .events = POLLOUT};
	if (poll(&pfd, 1, 5000) != 1)
		return fail("poll");
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == -1)
		return fail("getsockopt");
	printf("so_error: %s\n", err == 0 ? "0" : ename(err));
	if (err != 0)
		return 1;
	if (write(fd, "ping\n", 5) != 5)
		return fail("write");
	pfd = (struct pollfd){.fd = fd, .events = POLLIN};
	if (poll(&pfd, 1, 5000) != 1 || (n = read(fd, buf, sizeof(buf) - 1)) <= 0)
		return fail("read");
	buf[n] = '\0';
	printf("received: %s", buf);
	return 0;
}

/* A query for name (type 1: A, 28: AAAA) in buf; returns its length. */
static size_t
dns_query(unsigned char *buf, uint16_t id, const char *name, int type)
{
	size_t n = 12;
	const char *p = name, *dot;

	memset(buf, 0, 12);
	buf[0] = (unsigned char)(id >> 8);
	buf[1] = (unsigned char)id;
	buf[2] = 1; /* RD */
	buf[5] = 1; /* one question */
	while (*p != '\0') {
		dot = strchr(p, '.');
		size_t len = dot != NULL ? (size_t)(dot - p) : strlen(p);
		buf[n++] = (unsigned char)len;
		memcpy(buf + n, p, len);
		n += len;
		p += len + (dot != NULL);
	}
	buf[n++] = 0;
	buf[n++] = 0;
	buf[n++] = (unsigned char)type;
	buf[n++] = 0;
	buf[n++] = 1;
	return n;
}

/* Prints the rcode and answer count of the response in buf. */
static void
dns_print(const char *how, const unsigned char *buf, ssize_t n)
{
	if (n < 12) {
		printf("%s: short answer\n", how);
		return;
	}
	printf("%s: id %d rcode %d answers %d\n", how, buf[0] << 8 | buf[1], buf[3] & 0xf,
	       buf[6] << 8 | buf[7]);
}

/*
 * dns NAMESERVER NAME: a query with sendto (as musl does), then an A and an AAAA
 * query in one sendmmsg (as glibc can), each to the address, on an unconnected socket.
 */
static int
mode_dns(const char *ns, const char *name)
{
	unsigned char q[2][300], r[600];
	struct sockaddr_storage ss;
	struct mmsghdr mm[2];
	struct iovec iov[2];
	struct timeval tv = {.tv_sec = 5};
	socklen_t len = 0;
	ssize_t n;
	int fd, sent;

	if (parse_addr(ns, "53", &ss, &len) == -1)
		return 2;
	if ((fd = socket(ss.ss_family, SOCK_DGRAM, 0)) == -1)
		return fail("socket");
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = (ssize_t)dns_query(q[0], 1, name, 1);
	if (sendto(fd, q[0], (size_t)n, 0, (struct sockaddr *)&ss, len) != n)
		return fail("sendto");
	if ((n = recv(fd, r, sizeof(r), 0)) == -1)
		return fail("recv");
	dns_print("sendto", r, n);
	memset(mm, 0, sizeof(mm));
	for (int i = 0; i < 2; i++) {
		iov[i].iov_base = q[i];
		iov[i].iov_len = dns_query(q[i], (uint16_t)(2 + i), name, i == 0 ? 1 : 28);
		mm[i].msg_hdr.msg_name = &ss;
		mm[i].msg_hdr.msg_namelen = len;
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	if ((sent = sendmmsg(fd, mm, 2, 0)) != 2)
		return fail("sendmmsg");
	printf("sendmmsg: sent %d, lengths %s\n", sent,
	       mm[0].msg_len == iov[0].iov_len && mm[1].msg_len == iov[1].iov_len ? "ok" : "wrong");
	for (int i = 0; i < 2; i++) {
		if ((n = recv(fd, r, sizeof(r), 0)) == -1)
			return fail("recv");
		dns_print("sendmmsg", r, n);
	}
	return 0;
}

/*
 * parallel HOST SLOW GOOD: one thread connects to HOST:SLOW (which does not answer),
 * then the main thread times a connect to HOST:GOOD; exits without waiting for the
 * first.
 */
static const char *slow_host, *slow_port;

static void *
slow_connect(void *arg)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	int fd;

	(void)arg;
	parse_addr(slow_host, slow_port, &ss, &len);
	if ((fd = socket(ss.ss_family, SOCK_STREAM, 0)) != -1)
		connect(fd, (struct sockaddr *)&ss, len);
	return NULL;
}

static int
mode_parallel(const char *host, const char *slow, const char *good)
{
	struct sockaddr_storage ss;
	struct timespec t0, t1;
	socklen_t len = 0;
	pthread_t t;
	int fd;

	slow_host = host, slow_port = slow;
	pthread_create(&t, NULL, slow_connect, NULL);
	usleep(200 * 1000);
	if (parse_addr(host, good, &ss, &len) == -1)
		return 2;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((fd = socket(ss.ss_family, SOCK_STREAM, 0)) == -1)
		return fail("socket");
	if (connect(fd, (struct sockaddr *)&ss, len) == -1)
		return fail("connect");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("good: connected in %ld ms\n",
	       (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
	fflush(stdout);
	_exit(0);
}

/*
 * inherited LFD UFD NAMESERVER: sockets of the host's namespace handed to us at exec,
 * a listener with a connection waiting (LFD) and a UDP socket (UFD): neither may be
 * used around the broker.
 */
static int
mode_inherited(const char *lfd, const char *ufd, const char *ns)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	int fd;

	if ((fd = accept4(atoi(lfd), NULL, NULL, SOCK_NONBLOCK)) == -1)
		printf("accept: %s\n", ename(errno));
	else
		printf("accept: accepted\n");
	if (parse_addr(ns, "53", &ss, &len) == -1)
		return 2;
	if (sendto(atoi(ufd), "x", 1, 0, (struct sockaddr *)&ss, len) == -1)
		printf("sendto: %s\n", ename(errno));
	else
		printf("sendto: sent\n");
	return 0;
}

/* udp HOST PORT: one sendto with an address. */
static int
mode_udp(const char *host, const char *port)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	int fd;

	if (parse_addr(host, port, &ss, &len) == -1)
		return 2;
	if ((fd = socket(ss.ss_family, SOCK_DGRAM, 0)) == -1)
		return fail("socket");
	if (sendto(fd, "ping\n", 5, 0, (struct sockaddr *)&ss, len) == -1)
		return fail("sendto");
	printf("sendto: sent\n");
	return 0;
}

/* unix PATH: a unix-domain connect goes through untouched. */
static int
mode_unix(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1)
		return fail("socket");
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		return fail("connect");
	printf("unix: connected\n");
	return 0;
}

/* listen PORT: bind and listen on the loopback address. */
static int
mode_listen(const char *port)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	int fd;

	parse_addr("127.0.0.1", port, &ss, &len);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return fail("socket");
	if (bind(fd, (struct sockaddr *)&ss, len) == -1)
		return fail("bind");
	if (listen(fd, 8) == -1)
		return fail("listen");
	printf("listen: listening\n");
	return 0;
}

/* escapes: the calls the filter refuses outright, and a raw socket type. */
static int
mode_escapes(void)
{
	long params[30];
	int rc = 0;

	memset(params, 0, sizeof(params));
	if (syscall(SYS_io_uring_setup, 4, params) == -1)
		printf("io_uring_setup: %s\n", ename(errno));
	else
		rc = printf("io_uring_setup: allowed\n");
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) == -1)
		printf("ptrace: %s\n", ename(errno));
	else
		rc = printf("ptrace: allowed\n");
	if (socket(AF_INET, SOCK_RAW, IPPROTO_UDP) == -1)
		printf("raw socket: %s\n", ename(errno));
	else
		rc = printf("raw socket: allowed\n");
	if (socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP) == -1)
		printf("icmp socket: %s\n", ename(errno));
	else
		rc = printf("icmp socket: allowed\n");
	/* The kernel reads socket()'s family as an int: bits above 32 must not slip a raw
	 * socket past a filter comparing all 64 bits of the register. */
	if (syscall(SYS_socket, (long)AF_INET | (1L << 32), SOCK_RAW, IPPROTO_UDP) == -1)
		printf("raw socket, high bits: %s\n", ename(errno));
	else
		rc = printf("raw socket, high bits: allowed\n");
	/* The supervisor (our parent) holds the filter's listener: none of its fds is ours. */
	{
		int pidfd = (int)syscall(SYS_pidfd_open, getppid(), 0), taken = 0, err = 0;

		for (int fd = 0; pidfd != -1 && fd < 64; fd++)
			if (syscall(SYS_pidfd_getfd, pidfd, fd, 0) != -1)
				taken++;
			else if (errno != EBADF)
				err = errno;
		if (taken > 0)
			rc = printf("pidfd_getfd: took %d\n", taken);
		else
			printf("pidfd_getfd: %s\n", ename(err));
	}
	return rc != 0;
}

/* links: the network interfaces this process sees. */
static int
mode_links(void)
{
	struct if_nameindex *ifs = if_nameindex(), *i;

	if (ifs == NULL)
		return fail("if_nameindex");
	for (i = ifs; i->if_index != 0; i++)
		printf("link: %s\n", i->if_name);
	if_freenameindex(ifs);
	return 0;
}

static uint16_t
ip_checksum(const void *hdr, size_t len)
{
	uint16_t w[30];
	uint32_t sum = 0;

	memcpy(w, hdr, len);
	for (size_t i = 0; i < len / 2; i++)
		sum += w[i];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/*
 * packet PORT: a UDP datagram to 127.0.0.1:PORT written as a raw frame on "lo"
 * through AF_PACKET, a family the filter does not trap; it can only reach this
 * namespace's loopback.
 */
static int
mode_packet(const char *port)
{
	struct {
		struct ether_header eth;
		struct iphdr ip;
		struct udphdr udp;
		char data[8];
	} __attribute__((packed)) f;
	struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP)};
	int fd;

	if ((fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IP))) == -1)
		return fail("packet socket");
	memset(&f, 0, sizeof(f));
	f.eth.ether_type = htons(ETH_P_IP);
	f.ip = (struct iphdr){.version = 4, .ihl = 5, .ttl = 64, .protocol = IPPROTO_UDP};
	f.ip.tot_len = htons(sizeof(f) - sizeof(f.eth));
	f.ip.saddr = f.ip.daddr = htonl(INADDR_LOOPBACK);
	f.udp.source = htons(9);
	f.udp.dest = htons((uint16_t)atoi(port));
	f.udp.len = htons(sizeof(f.udp) + sizeof(f.data));
	memcpy(f.data, "escaped\n", 8);
	ll.sll_ifindex = (int)if_nametoindex("lo");
	f.ip.check = ip_checksum(&f.ip, sizeof(f.ip));
	if (sendto(fd, &f, sizeof(f), 0, (struct sockaddr *)&ll, sizeof(ll)) == -1)
		return fail("packet sendto");
	printf("packet: sent\n");
	return 0;
}

/*
 * race HOST GOOD BAD TRIES: one thread connects to HOST:GOOD again and again while
 * another flips the port in the very sockaddr between GOOD and BAD. Prints how many
 * connects reached each port (by the peer's name).
 */
static struct sockaddr_storage race_addr;
static atomic_int race_stop;
static uint16_t race_ports[2];

static void *
flipper(void *arg)
{
	volatile uint16_t *p = &((struct sockaddr_in *)&race_addr)->sin_port;
	unsigned i = 0;

	(void)arg;
	while (!atomic_load_explicit(&race_stop, memory_order_relaxed))
		*p = race_ports[i++ & 1];
	return NULL;
}

static int
mode_race(const char *host, const char *good, const char *bad, const char *tries)
{
	struct sockaddr_storage peer;
	socklen_t len, plen;
	long n = atol(tries), ok = 0, refused = 0, other = 0, at_bad = 0;
	pthread_t t;
	int fd;

	if (parse_addr(host, good, &race_addr, &len) == -1)
		return 2;
	race_ports[0] = htons((uint16_t)atoi(good));
	race_ports[1] = htons((uint16_t)atoi(bad));
	pthread_create(&t, NULL, flipper, NULL);
	for (long i = 0; i < n; i++) {
		if ((fd = socket(race_addr.ss_family, SOCK_STREAM, 0)) == -1)
			return fail("socket");
		if (connect(fd, (struct sockaddr *)&race_addr, len) == 0) {
			plen = sizeof(peer);
			getpeername(fd, (struct sockaddr *)&peer, &plen);
			if (((struct sockaddr_in *)&peer)->sin_port == race_ports[1])
				at_bad++;
			else
				ok++;
		} else if (errno == EACCES) {
			refused++;
		} else {
			other++;
		}
		close(fd);
	}
	atomic_store(&race_stop, 1);
	pthread_join(t, NULL);
	printf("race: good %ld bad %ld denied %ld other %ld\n", ok, at_bad, refused, other);
	return at_bad != 0;
}

static atomic_int sig_stop;
static atomic_long sig_count;
static pthread_t sig_target;

static void
on_signal(int sig)
{
	(void)sig;
	atomic_fetch_add(&sig_count, 1);
}

static void *
signaller(void *arg)
{
	const char *us = getenv("PROBE_SIGNAL_US");
	struct timespec ts = {0, 1000L * (us != NULL ? atol(us) : 20)};

	(void)arg;
	while (!atomic_load(&sig_stop)) {
		pthread_kill(sig_target, SIGUSR1);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/*
 * sigconnect HOST PORT N [PAUSE]: N blocking connects (each "ping", the echo read)
 * while another thread sends this one SIGUSR1 (SA_RESTART) every 20 us (or
 * $PROBE_SIGNAL_US); then, with
 * PAUSE, "done" and a pause so the script can count the supervisor's descriptors.
 */
static int
mode_sigconnect(const char *host, const char *port, const char *tries, bool pause)
{
	struct sigaction sa;
	struct sockaddr_storage ss;
	socklen_t len;
	long n = atol(tries), ok = 0, other = 0;
	char buf[16];
	pthread_t t;
	int fd;

	if (parse_addr(host, port, &ss, &len) == -1)
		return 2;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	sig_target = pthread_self();
	pthread_create(&t, NULL, signaller, NULL);
	for (long i = 0; i < n; i++) {
		if ((fd = socket(ss.ss_family, SOCK_STREAM, 0)) == -1)
			return fail("socket");
		while (connect(fd, (struct sockaddr *)&ss, len) == -1 && errno == EINTR)
			;
		if (write(fd, "ping\n", 5) == 5 && read(fd, buf, sizeof(buf)) == 5)
			ok++;
		else
			other++;
		close(fd);
	}
	atomic_store(&sig_stop, 1);
	pthread_join(t, NULL);
	printf("sigconnect: ok %ld failed %ld signals %s\n", ok, other,
	       atomic_load(&sig_count) > n ? "many" : "few");
	if (pause) {
		printf("done\n");
		sleep(2);
	}
	return other != 0;
}

/*
 * unspecrace HOST PORT TRIES: a UDP socket connected with AF_UNSPEC (a disconnect, let
 * through) again and again while another thread flips the family in the very sockaddr to
 * AF_INET, HOST:PORT. A connect that lands on HOST:PORT sends "escaped" there with send(2),
 * which the filter does not trap. Prints how many did.
 */
static void *
family_flipper(void *arg)
{
	volatile sa_family_t *f = &race_addr.ss_family;
	unsigned i = 0;

	(void)arg;
	while (!atomic_load_explicit(&race_stop, memory_order_relaxed))
		*f = (i++ & 1) ? AF_UNSPEC : AF_INET;
	return NULL;
}

static int
mode_unspecrace(const char *host, const char *port, const char *tries)
{
	struct sockaddr_storage peer;
	socklen_t len, plen;
	long n = atol(tries), escaped = 0;
	pthread_t t;
	int fd;

	if (parse_addr(host, port, &race_addr, &len) == -1)
		return 2;
	if ((fd = socket(AF_INET, SOCK_DGRAM, 0)) == -1)
		return fail("socket");
	pthread_create(&t, NULL, family_flipper, NULL);
	for (long i = 0; i < n; i++) {
		plen = sizeof(peer);
		if (connect(fd, (struct sockaddr *)&race_addr, len) == 0 &&
		    getpeername(fd, (struct sockaddr *)&peer, &plen) == 0 &&
		    send(fd, "escaped\n", 8, MSG_DONTWAIT) == 8)
			escaped++;
	}
	atomic_store(&race_stop, 1);
	pthread_join(t, NULL);
	close(fd);
	printf("unspecrace: escaped %ld\n", escaped);
	return escaped != 0;
}

/*
 * fdrace HOST PORT TRIES: connect(N, HOST:PORT) again and again, where N is an AF_UNIX
 * socket (whose calls the supervisor lets continue) while another thread puts a UDP
 * socket on the number N with dup2 and takes it off again. If a connect let continue
 * lands on the UDP socket, it is connected to HOST:PORT unchecked: send(2), untrapped,
 * then says "escaped" there. Prints whether it did.
 */
static int fdrace_n, fdrace_unix, fdrace_udp;

static void *
fd_flipper(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&race_stop, memory_order_relaxed)) {
		dup2(fdrace_udp, fdrace_n);
		dup2(fdrace_unix, fdrace_n);
	}
	return NULL;
}

static int
mode_fdrace(const char *host, const char *port, const char *tries)
{
	struct sockaddr_storage peer, to;
	socklen_t len, plen = sizeof(peer);
	long n = atol(tries);
	int escaped;
	pthread_t t;

	if (parse_addr(host, port, &to, &len) == -1)
		return 2;
	if ((fdrace_udp = socket(AF_INET, SOCK_DGRAM, 0)) == -1)
		return fail("socket");
	if ((fdrace_unix = socket(AF_UNIX, SOCK_DGRAM, 0)) == -1 ||
	    (fdrace_n = dup(fdrace_unix)) == -1)
		return fail("unix socket");
	pthread_create(&t, NULL, fd_flipper, NULL);
	for (long i = 0; i < n; i++)
		(void)connect(fdrace_n, (struct sockaddr *)&to, len);
	atomic_store(&race_stop, 1);
	pthread_join(t, NULL);
	escaped = getpeername(fdrace_udp, (struct sockaddr *)&peer, &plen) == 0 &&
	          send(fdrace_udp, "escaped\n", 8, MSG_DONTWAIT) == 8;
	printf("fdrace: %s\n", escaped ? "escaped" : "held");
	return escaped;
}

int
main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && strcmp(argv[1], "connect") == 0)
		return mode_connect(argv[2], argv[3]);
	if (argc == 4 && strcmp(argv[1], "nbconnect") == 0)
		return mode_nbconnect(argv[2], argv[3]);
	if ((argc == 5 || argc == 6) && strcmp(argv[1], "sigconnect") == 0)
		return mode_sigconnect(argv[2], argv[3], argv[4], argc == 6);
	if (argc == 5 && strcmp(argv[1], "inherited") == 0)
		return mode_inherited(argv[2], argv[3], argv[4]);
	if (argc == 5 && strcmp(argv[1], "parallel") == 0)
		return mode_parallel(argv[2], argv[3], argv[4]);
	if (argc == 4 && strcmp(argv[1], "dns") == 0)
		return mode_dns(argv[2], argv[3]);
	if (argc == 4 && strcmp(argv[1], "udp") == 0)
		return mode_udp(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "unix") == 0)
		return mode_unix(argv[2]);
	if (argc == 3 && strcmp(argv[1], "listen") == 0)
		return mode_listen(argv[2]);
	if (argc == 2 && strcmp(argv[1], "escapes") == 0)
		return mode_escapes();
	if (argc == 2 && strcmp(argv[1], "links") == 0)
		return mode_links();
	if (argc == 3 && strcmp(argv[1], "packet") == 0)
		return mode_packet(argv[2]);
	if (argc == 5 && strcmp(argv[1], "fdrace") == 0)
		return mode_fdrace(argv[2], argv[3], argv[4]);
	if (argc == 5 && strcmp(argv[1], "unspecrace") == 0)
		return mode_unspecrace(argv[2], argv[3], argv[4]);
	if (argc == 6 && strcmp(argv[1], "race") == 0)
		return mode_race(argv[2], argv[3], argv[4], argv[5]);
	fprintf(stderr,
	        "usage: run_probe connect|nbconnect|udp HOST PORT | unix PATH | listen PORT |\n"
	        "       dns NAMESERVER NAME | escapes | links | packet PORT | race HOST GOOD BAD "
	        "TRIES\n");
	return 2;
}
