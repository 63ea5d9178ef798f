/*
 * run_dns.c - the name server the program finds in its namespace: each query to
 * an address of /etc/resolv.conf arrives on a UDP socket the supervisor holds
 * there, and is answered from the daemon's resolver (sr_get_address_info), so
 * the policy's resolve rules apply and a denied name does not resolve. Only A and
 * AAAA get addresses; other types get an empty answer, a denied name NXDOMAIN.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "run.h"

/* A UDP answer without EDNS fits in 512 bytes (RFC 1035 4.2.1). */
#define DNS_UDP_MAX 512
#define DNS_HEADER 12
#define DNS_TYPE_A 1
#define DNS_TYPE_AAAA 28
#define DNS_CLASS_IN 1
#define DNS_RCODE_SERVFAIL 2
#define DNS_RCODE_NXDOMAIN 3
#define DNS_RCODE_NOTIMP 4
/* How long the program may cache an answer: short, so a policy change shows soon. */
#define DNS_TTL 30

static int parse_question(const unsigned char *q, size_t len, char *name, size_t name_len,
                          size_t *end, int *qtype, int *qclass);
static size_t answer(struct run_supervisor *sv, const unsigned char *q, size_t qlen,
                     unsigned char *out);

/* Reads one query from fd (a responder socket) and answers it; drops what is not a query. */
void
run_dns_serve(struct run_supervisor *sv, int fd)
{
	unsigned char q[DNS_UDP_MAX], out[DNS_UDP_MAX];
	struct sockaddr_storage from;
	socklen_t from_len = sizeof(from);
	ssize_t n;
	size_t len;

	n = recvfrom(fd, q, sizeof(q), MSG_DONTWAIT, (struct sockaddr *)&from, &from_len);
	if (n < DNS_HEADER || (q[2] & 0x80) != 0)
		return; /* nothing, a runt, or a response */
	if ((len = answer(sv, q, (size_t)n, out)) > 0)
		(void)sendto(fd, out, len, MSG_DONTWAIT, (struct sockaddr *)&from, from_len);
}

/* The name server at ss (port 53), if it is one of ours with a responder; else NULL. */
const struct run_nameserver *
run_nameserver_find(const struct run_supervisor *sv, const struct sockaddr_storage *ss,
                    socklen_t len)
{
	for (int i = 0; i < sv->n_ns; i++) {
		const struct run_nameserver *ns = &sv->ns[i];

		if (ns->fd == -1 || ss->ss_family != ns->addr.ss_family || len < ns->len)
			continue;
		if (ss->ss_family == AF_INET) {
			const struct sockaddr_in *a = (const void *)ss,
			                         *b = (const void *)&ns->addr;
			if (a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr)
				return ns;
		} else {
			const struct sockaddr_in6 *a = (const void *)ss,
			                          *b = (const void *)&ns->addr;
			if (a->sin6_port == b->sin6_port &&
			    memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) == 0)
				return ns;
		}
	}
	return NULL;
}

/* Builds the response to query q in out; returns its length, or 0 to send none. */
static size_t
answer(struct run_supervisor *sv, const unsigned char *q, size_t qlen, unsigned char *out)
{
	char name[256];
	size_t end, len, ancount = 0;
	int qtype = 0, qclass = 0, family, rcode = 0;
	sr_addrinfo *ai = NULL;
	sr_error e;

	if (((q[2] >> 3) & 0xf) != 0 || q[4] != 0 || q[5] != 1)
		rcode = DNS_RCODE_NOTIMP; /* not a standard query of one question */
	else if (parse_question(q, qlen, name, sizeof(name), &end, &qtype, &qclass) == -1)
		return 0;
	if (rcode != 0)
		end = DNS_HEADER;
	memcpy(out, q, end);
	out[2] = (unsigned char)(0x80 | (q[2] & 0x79)); /* QR, the opcode and RD as asked */
	out[3] = 0x80;                                  /* RA */
	out[6] = out[7] = out[8] = out[9] = out[10] = out[11] = 0;
	if (end == DNS_HEADER)
		out[4] = out[5] = 0; /* no question echoed */
	len = end;
	family = qtype == DNS_TYPE_A ? AF_INET : qtype == DNS_TYPE_AAAA ? AF_INET6 : AF_UNSPEC;
	if (rcode == 0 && qclass == DNS_CLASS_IN && family != AF_UNSPEC) {
		memset(&e, 0, sizeof(e));
		if (sr_get_address_info(sv->client, name, NULL, family, &ai, &e) == -1) {
			/*
			 * Denied: the name does not exist. The resolver found nothing: an empty
			 * answer (no address of this family, which says nothing of the other).
			 */
			rcode = e.code == SR_EDENIED ? DNS_RCODE_NXDOMAIN
			        : e.code == SR_EOS   ? 0
			                             : DNS_RCODE_SERVFAIL;
			if (sv->verbose)
				fprintf(stderr, "sockrpc run: resolve %s: %s\n", name, e.message);
		}
		for (size_t i = 0; ai != NULL && i < ai->count; i++) {
			unsigned char rdata[16];
			size_t rlen = family == AF_INET ? 4 : 16;

			if (ai->addresses[i].family != family ||
			    inet_pton(family, ai->addresses[i].ip, rdata) != 1 ||
			    len + 12 + rlen > DNS_UDP_MAX)
				continue;
			out[len++] = 0xc0; /* the name: a pointer to the question's */
			out[len++] = DNS_HEADER;
			out[len++] = 0;
			out[len++] = (unsigned char)qtype;
			out[len++] = 0;
			out[len++] = DNS_CLASS_IN;
			out[len++] = 0;
			out[len++] = 0;
			out[len++] = 0;
			out[len++] = DNS_TTL;
			out[len++] = 0;
			out[len++] = (unsigned char)rlen;
			memcpy(out + len, rdata, rlen);
			len += rlen;
			ancount++;
		}
		sr_addrinfo_free(ai);
	}
	out[3] = (unsigned char)(out[3] | rcode);
	out[7] = (unsigned char)ancount;
	return len;
}

/*
 * Reads the first question: its name (dotted, lower case kept as sent) and where
 * it ends. Returns 0, or -1 for a malformed one (compression is not expected in a
 * question).
 */
static int
parse_question(const unsigned char *q, size_t len, char *name, size_t name_len, size_t *end,
               int *qtype, int *qclass)
{
	size_t i = DNS_HEADER, o = 0;

	while (i < len && q[i] != 0) {
		size_t label = q[i++];

		if (label > 63 || i + label > len || o + label + 2 > name_len)
			return -1;
		if (o > 0)
			name[o++] = '.';
		for (size_t k = 0; k < label; k++) {
			unsigned char c = q[i + k];
			if (c <= ' ' || c == '.' || c > '~')
				return -1; /* only plain host-name bytes go on to the daemon */
			name[o++] = (char)c;
		}
		i += label;
	}
	if (i + 5 > len || o == 0)
		return -1;
	name[o] = '\0';
	*qtype = q[i + 1] << 8 | q[i + 2];
	*qclass = q[i + 3] << 8 | q[i + 4];
	*end = i + 5;
	return 0;
}
