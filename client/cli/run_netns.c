/*
 * run_netns.c - the program's network namespace, set up by the child before the
 * filter: loopback up, and for each name server of /etc/resolv.conf its address
 * on loopback with a UDP socket bound to port 53 there, which the supervisor
 * serves (run_dns.c). Nothing in the namespace reaches the host's network.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "run.h"

static int write_file(const char *path, const char *text);
static int loopback_up(void);
static int loopback_add(const struct sockaddr_storage *ss);

/*
 * A new network namespace with loopback up: directly as root, otherwise inside a
 * new user namespace where our uid and gid map to themselves. Returns 0 or a
 * negative errno.
 */
int
run_netns_enter(void)
{
	char map[64];
	uid_t uid = geteuid();
	gid_t gid = getegid();
	int rc;

	if (uid != 0) {
		if (unshare(CLONE_NEWUSER | CLONE_NEWNET) == -1)
			return -errno;
		snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
		if ((rc = write_file("/proc/self/uid_map", map)) < 0 ||
		    (rc = write_file("/proc/self/setgroups", "deny\n")) < 0)
			return rc;
		snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
		if ((rc = write_file("/proc/self/gid_map", map)) < 0)
			return rc;
	} else if (unshare(CLONE_NEWNET) == -1) {
		return -errno;
	}
	return loopback_up();
}

/*
 * Reads up to max numeric name servers from the resolv.conf at path, each with
 * port 53 and fd -1. Returns how many (0 if the file is missing).
 */
int
run_nameservers_read(const char *path, struct run_nameserver *ns, int max)
{
	char line[512], addr[80], *pct; /* %79s below */
	struct sockaddr_in *sin;
	struct sockaddr_in6 *sin6;
	FILE *f;
	int n = 0;

	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (n < max && fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, " nameserver %79s", addr) != 1)
			continue;
		if ((pct = strchr(addr, '%')) != NULL)
			*pct = '\0'; /* a link-local scope: no link here to scope it to */
		memset(&ns[n], 0, sizeof(ns[n]));
		ns[n].fd = -1;
		sin = (struct sockaddr_in *)&ns[n].addr;
		sin6 = (struct sockaddr_in6 *)&ns[n].addr;
		if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
			sin->sin_family = AF_INET;
			sin->sin_port = htons(53);
			ns[n++].len = sizeof(*sin);
		} else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons(53);
			ns[n++].len = sizeof(*sin6);
		}
	}
	fclose(f);
	return n;
}

/*
 * In the child, in its namespace: puts the name server's address on loopback
 * and binds a UDP socket to it, port 53, left in ns->fd. Returns 0 or a
 * negative errno.
 */
int
run_nameserver_open(struct run_nameserver *ns)
{
	int fd, rc, on = 1;

	if ((rc = loopback_add(&ns->addr)) < 0 && rc != -EEXIST)
		return rc;
	if ((fd = socket(ns->addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -errno;
	if (ns->addr.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&ns->addr, ns->len) == -1) {
		rc = -errno;
		close(fd);
		return rc;
	}
	ns->fd = fd;
	return 0;
}

static int
loopback_up(void)
{
	struct ifreq ifr;
	int fd, rc = 0;

	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == -1)
		rc = -errno;
	ifr.ifr_flags |= IFF_UP;
	if (rc == 0 && ioctl(fd, SIOCSIFFLAGS, &ifr) == -1)
		rc = -errno;
	close(fd);
	return rc;
}

/* Adds the address (a host route: /32 or /128) to loopback over rtnetlink. */
static int
loopback_add(const struct sockaddr_storage *ss)
{
	struct {
		struct nlmsghdr nh;
		struct ifaddrmsg ifa;
		char attrs[64];
	} req;
	struct {
		struct nlmsghdr nh;
		struct nlmsgerr err;
	} ack;
	const void *addr;
	struct rtattr *rta;
	size_t alen;
	int fd, rc;

	if (ss->ss_family == AF_INET) {
		addr = &((const struct sockaddr_in *)ss)->sin_addr;
		alen = 4;
	} else {
		addr = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		alen = 16;
	}
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
	req.nh.nlmsg_type = RTM_NEWADDR;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
	req.ifa.ifa_family = (unsigned char)ss->ss_family;
	req.ifa.ifa_prefixlen = (unsigned char)(alen * 8);
	req.ifa.ifa_index = if_nametoindex("lo");
	for (int type = IFA_LOCAL; type >= IFA_ADDRESS; type--) {
		rta = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.nh.nlmsg_len));
		rta->rta_type = (unsigned short)type;
		rta->rta_len = (unsigned short)RTA_LENGTH(alen);
		memcpy(RTA_DATA(rta), addr, alen);
		req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);
	}
	if ((fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)) == -1)
		return -errno;
	if (send(fd, &req, req.nh.nlmsg_len, 0) == -1 || recv(fd, &ack, sizeof(ack), 0) == -1)
		rc = -errno;
	else if (ack.nh.nlmsg_type == NLMSG_ERROR)
		rc = ack.err.error; /* 0, or a negative errno */
	else
		rc = -EPROTO;
	close(fd);
	return rc;
}

static int
write_file(const char *path, const char *text)
{
	size_t len = strlen(text);
	int fd, rc = 0;

	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) == -1)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		rc = -errno;
	close(fd);
	return rc;
}
