/*
 * run_relay.c - unconnected datagrams of the program through the daemon. The
 * first datagram a program's socket sends to an address (other than our name
 * servers) gives that socket a UDP handle in the daemon; each datagram is sent
 * by it (sr_send_to: the policy's connect/send rules decide and the daemon
 * audits) from the supervisor's one copy of the data and address. A thread per
 * handle receives what comes back and writes each datagram into the program's
 * socket inside its namespace through a raw socket of that namespace, with the
 * real sender as the source address, so recvfrom names the real peer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/udp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run.h"

/* Program sockets with a handle in the daemon at once. */
#define MAX_RELAYS 64
/* The largest datagram an IPv4 header can carry (65535 - 20 - 8). */
#define RELAY_MAX_DATA 65507

struct relay {
	ino_t ino; /* the program's socket, 0: free slot */
	sr_socket *handle;
	struct sockaddr_storage local; /* where the program's socket receives, in its namespace */
	bool running;                  /* its thread may still use the client */
	bool closing;                  /* closed by reap(): the thread frees the slot */
};

struct thread_arg {
	struct run_supervisor *sv;
	struct relay *r;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* guards relays[] */
static struct relay relays[MAX_RELAYS];

static struct relay *relay_get(struct run_supervisor *sv, pid_t pid, const struct run_sock *sock,
                               int *err);
static void reap(pid_t pid);
static void *relay_main(void *arg);
static int deliver(struct run_supervisor *sv, const struct relay *r, const char *host, int port,
                   const char *data, size_t len);
static uint16_t checksum6(const struct ip6_hdr *ip6, const struct udphdr *udp, const char *data,
                          size_t len);
static int errno_for(const sr_error *e);

/*
 * Sends len bytes from the copy in data to ss (len bytes) through the program
 * socket's handle. Returns the count sent or a negative errno.
 */
int
run_relay_send(struct run_supervisor *sv, pid_t pid, const struct run_sock *sock,
               const struct sockaddr_storage *ss, socklen_t ss_len, const void *data, size_t len)
{
	char host[INET6_ADDRSTRLEN];
	struct relay *r;
	int family, port, rc;
	sr_error e;
	long n;

	if (ss->ss_family != sock->family)
		return -EAFNOSUPPORT;
	if ((rc = run_sockaddr_text(ss, ss_len, &family, host, sizeof(host), &port)) < 0)
		return rc;
	if (len > RELAY_MAX_DATA)
		return -EMSGSIZE;
	if ((r = relay_get(sv, pid, sock, &rc)) == NULL)
		return rc;
	memset(&e, 0, sizeof(e));
	if ((n = sr_send_to(r->handle, host, port, data, len, 0, &e)) < 0)
		return -errno_for(&e);
	return (int)n;
}

/* Whether a relay's thread may still use the client. */
bool
run_relay_any(void)
{
	bool any = false;

	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_RELAYS; i++)
		any = any || relays[i].running;
	pthread_mutex_unlock(&lock);
	return any;
}

/*
 * The relay of the program's socket, made at its first datagram: the daemon's
 * handle, the program's socket bound (any address, a free port, in its namespace)
 * if it was not, and the thread. NULL with *err a negative errno.
 */
static struct relay *
relay_get(struct run_supervisor *sv, pid_t pid, const struct run_sock *sock, int *err)
{
	struct sockaddr_storage local;
	socklen_t local_len = sizeof(local);
	struct thread_arg *ta;
	struct relay *r = NULL;
	struct stat st;
	pthread_attr_t attr;
	pthread_t t;
	sr_socket *h;
	sr_error e;

	if (fstat(sock->fd, &st) == -1) {
		*err = -errno;
		return NULL;
	}
	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_RELAYS; i++)
		if (relays[i].ino == st.st_ino && !relays[i].closing)
			r = &relays[i];
	pthread_mutex_unlock(&lock);
	if (r != NULL)
		return r;
	reap(pid);
	/* An unbound socket gets its port now, as the kernel's sendto would give it one. */
	if (getsockname(sock->fd, (struct sockaddr *)&local, &local_len) == -1) {
		*err = -errno;
		return NULL;
	}
	if ((local.ss_family == AF_INET && ((struct sockaddr_in *)&local)->sin_port == 0) ||
	    (local.ss_family == AF_INET6 && ((struct sockaddr_in6 *)&local)->sin6_port == 0)) {
		struct sockaddr_storage any;

		memset(&any, 0, sizeof(any));
		any.ss_family = (sa_family_t)sock->family;
		local_len = sock->family == AF_INET ? sizeof(struct sockaddr_in)
		                                    : sizeof(struct sockaddr_in6);
		if (bind(sock->fd, (struct sockaddr *)&any, local_len) == -1 ||
		    getsockname(sock->fd, (struct sockaddr *)&local, &local_len) == -1) {
			*err = -errno;
			return NULL;
		}
	}
	/* Datagrams are written to the loopback address where the socket is bound to any. */
	if (local.ss_family == AF_INET &&
	    ((struct sockaddr_in *)&local)->sin_addr.s_addr == htonl(INADDR_ANY))
		((struct sockaddr_in *)&local)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (local.ss_family == AF_INET6 &&
	    IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&local)->sin6_addr))
		((struct sockaddr_in6 *)&local)->sin6_addr = in6addr_loopback;
	if ((h = sr_socket_new(sv->client, sock->family, SOCK_DGRAM, 0, &e)) == NULL) {
		*err = -errno_for(&e);
		return NULL;
	}
	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_RELAYS && r == NULL; i++)
		if (relays[i].ino == 0)
			r = &relays[i];
	if (r == NULL || (ta = malloc(sizeof(*ta))) == NULL) {
		pthread_mutex_unlock(&lock);
		sr_socket_free(h);
		*err = -ENOBUFS;
		return NULL;
	}
	*r = (struct relay){.ino = st.st_ino, .handle = h, .local = local, .running = true};
	*ta = (struct thread_arg){.sv = sv, .r = r};
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, relay_main, ta) != 0) {
		memset(r, 0, sizeof(*r));
		free(ta);
		sr_socket_free(h);
		r = NULL;
		*err = -EAGAIN;
	}
	pthread_attr_destroy(&attr);
	pthread_mutex_unlock(&lock);
	return r;
}

/* Closes the handles of sockets the program no longer has (close is not trapped). */
static void
reap(pid_t pid)
{
	sr_error e;

	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_RELAYS; i++) {
		struct relay *r = &relays[i];

		if (r->ino == 0 || r->closing || run_program_has_socket(pid, r->ino))
			continue;
		r->closing = true;
		(void)sr_close(r->handle, &e); /* its thread's receive returns; it frees */
	}
	pthread_mutex_unlock(&lock);
}

/* A relay's thread: each datagram the daemon's handle receives goes to the program. */
static void *
relay_main(void *arg)
{
	struct thread_arg *ta = arg;
	struct relay *r = ta->r;
	char host[64], *data;
	size_t len;
	int port;
	sr_error e;

	for (;;) {
		data = NULL;
		if (sr_receive_from(r->handle, RELAY_MAX_DATA, 0, &data, &len, host, &port, &e) ==
		    -1) {
			if (e.code == SR_EDAEMON || e.code == SR_ECLOSED || e.code == SR_EPROTO ||
			    r->closing)
				break;
			continue; /* e.g. an ICMP error for an earlier datagram */
		}
		(void)deliver(ta->sv, r, host, port, data, len);
		free(data);
	}
	pthread_mutex_lock(&lock);
	if (r->closing) {
		sr_socket_free(r->handle);
		memset(r, 0, sizeof(*r)); /* the slot is free again (ino 0, not running) */
	} else {
		/* The daemon went away: the supervisor may be sending on the handle; it stays
		 * (its sends fail) and is freed at exit. */
		r->running = false;
	}
	pthread_mutex_unlock(&lock);
	free(ta);
	return NULL;
}

/*
 * Writes one datagram from host:port into the program's socket: an IP and a UDP
 * header with the real sender as source, through the namespace's raw socket.
 */
static int
deliver(struct run_supervisor *sv, const struct relay *r, const char *host, int port,
        const char *data, size_t len)
{
	static char buf[sizeof(struct ip6_hdr) + sizeof(struct udphdr) + RELAY_MAX_DATA];
	static pthread_mutex_t buf_lock = PTHREAD_MUTEX_INITIALIZER;
	struct sockaddr_storage to_raw = r->local;
	const struct sockaddr_storage *to = &r->local;
	struct udphdr udp;
	size_t hl;
	ssize_t n;
	int fd;

	memset(&udp, 0, sizeof(udp));
	udp.uh_sport = htons((uint16_t)port);
	udp.uh_ulen = htons((uint16_t)(sizeof(udp) + len));
	pthread_mutex_lock(&buf_lock);
	if (to->ss_family == AF_INET) {
		struct ip ip;

		memset(&ip, 0, sizeof(ip));
		fd = sv->raw[0];
		ip.ip_v = 4;
		ip.ip_hl = sizeof(ip) / 4;
		ip.ip_ttl = 64;
		ip.ip_p = IPPROTO_UDP;
		ip.ip_len = htons((uint16_t)(sizeof(ip) + sizeof(udp) + len));
		ip.ip_dst = ((const struct sockaddr_in *)to)->sin_addr;
		udp.uh_dport = ((const struct sockaddr_in *)to)->sin_port;
		/* The kernel fills the IP checksum and id; a UDP checksum of 0 means none. */
		if (inet_pton(AF_INET, host, &ip.ip_src) != 1)
			goto fail;
		memcpy(buf, &ip, sizeof(ip));
		hl = sizeof(ip);
	} else {
		struct ip6_hdr ip6;

		memset(&ip6, 0, sizeof(ip6));
		fd = sv->raw[1];
		ip6.ip6_vfc = 6 << 4;
		ip6.ip6_plen = htons((uint16_t)(sizeof(udp) + len));
		ip6.ip6_nxt = IPPROTO_UDP;
		ip6.ip6_hlim = 64;
		ip6.ip6_dst = ((const struct sockaddr_in6 *)to)->sin6_addr;
		udp.uh_dport = ((const struct sockaddr_in6 *)to)->sin6_port;
		if (inet_pton(AF_INET6, host, &ip6.ip6_src) != 1)
			goto fail;
		udp.uh_sum = checksum6(&ip6, &udp, data, len); /* required over IPv6 */
		memcpy(buf, &ip6, sizeof(ip6));
		hl = sizeof(ip6);
	}
	if (fd == -1)
		goto fail;
	memcpy(buf + hl, &udp, sizeof(udp));
	memcpy(buf + hl + sizeof(udp), data, len);
	/* A raw IPv6 socket takes a destination port as the protocol number: none. */
	if (to_raw.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&to_raw)->sin6_port = 0;
	n = sendto(fd, buf, hl + sizeof(udp) + len, 0, (const struct sockaddr *)&to_raw,
	           to->ss_family == AF_INET ? sizeof(struct sockaddr_in)
	                                    : sizeof(struct sockaddr_in6));
	pthread_mutex_unlock(&buf_lock);
	return n == -1 ? -errno : 0;
fail:
	pthread_mutex_unlock(&buf_lock);
	return -EINVAL;
}

static uint32_t
sum16(uint32_t sum, const void *p, size_t len)
{
	const unsigned char *b = p;

	for (; len > 1; b += 2, len -= 2)
		sum += (uint32_t)(b[0] << 8 | b[1]);
	if (len == 1)
		sum += (uint32_t)(b[0] << 8);
	return sum;
}

/* The UDP checksum over IPv6's pseudo-header (RFC 8200 8.1). */
static uint16_t
checksum6(const struct ip6_hdr *ip6, const struct udphdr *udp, const char *data, size_t len)
{
	uint32_t sum = 0, ulen = (uint32_t)(sizeof(*udp) + len);
	uint16_t c;

	sum = sum16(sum, &ip6->ip6_src, sizeof(ip6->ip6_src));
	sum = sum16(sum, &ip6->ip6_dst, sizeof(ip6->ip6_dst));
	sum += ulen >> 16;
	sum += ulen & 0xffff;
	sum += IPPROTO_UDP;
	sum = sum16(sum, udp, sizeof(*udp));
	sum = sum16(sum, data, len);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	c = (uint16_t)~sum;
	return htons(c == 0 ? 0xffff : c);
}

static int
errno_for(const sr_error *e)
{
	switch (e->code) {
	case SR_EDENIED:
		return RUN_DENIED_ERRNO;
	case SR_EOS:
		return e->sys_errno > 0 ? e->sys_errno : EIO;
	case SR_EINVAL:
		return EINVAL;
	case SR_ELIMIT:
		return ENOBUFS;
	default:
		return ENETDOWN;
	}
}
