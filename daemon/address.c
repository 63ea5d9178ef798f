/*
 * address.c - numeric host text <-> sockaddr. Host names are not resolved here (that
 * is resolve.c's, asynchronously); a host that is not numeric fails with -EAGAIN so the
 * caller knows to resolve it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "sockrpcd.h"

/* "256.1.2.3" is a bad address, not a host name to look up (no top-level domain is
 * all digits). */
static bool
looks_numeric(const char *host)
{
	return host[0] != '\0' && strspn(host, "0123456789.") == strlen(host);
}

/*
 * Fills *out for `host` and `port` in `family`. "*" and "" mean the any address.
 * An IPv4 address on an IPv6 socket becomes its IPv4-mapped form (::ffff:a.b.c.d).
 * Returns 0, -EAGAIN if host is not numeric (a name to resolve), -EAFNOSUPPORT for an
 * IPv6 address on an IPv4 socket, or -EINVAL (bad port, path too long, family without
 * addresses).
 */
int
address_parse(const char *host, int port, int family, struct sockaddr_storage *out,
              socklen_t *out_len)
{
	memset(out, 0, sizeof(*out));
	if (family == AF_UNIX) {
		struct sockaddr_un *un = (struct sockaddr_un *)out;
		size_t n = strlen(host);

		if (n == 0 || n >= sizeof(un->sun_path))
			return -EINVAL;
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, host, n + 1);
		*out_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
		return 0;
	}
	if (port < 0 || port > 65535)
		return -EINVAL;
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)out;

		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*out_len = sizeof(*in);
		if (host[0] == '\0' || strcmp(host, "*") == 0) {
			in->sin_addr.s_addr = htonl(INADDR_ANY);
			return 0;
		}
		if (inet_pton(AF_INET, host, &in->sin_addr) == 1)
			return 0;
		if (strchr(host, ':'))
			return -EAFNOSUPPORT;
		return looks_numeric(host) ? -EINVAL : -EAGAIN;
	}
	if (family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
		char bare[INET6_ADDRSTRLEN + 2];
		size_t n = strlen(host);

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*out_len = sizeof(*in6);
		if (host[0] == '\0' || strcmp(host, "*") == 0) {
			in6->sin6_addr = in6addr_any;
			return 0;
		}
		/* Accept "[::1]" as well as "::1". */
		if (host[0] == '[' && n >= 2 && host[n - 1] == ']' && n - 2 < sizeof(bare)) {
			memcpy(bare, host + 1, n - 2);
			bare[n - 2] = '\0';
			host = bare;
		}
		if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1)
			return 0;
		if (inet_pton(AF_INET, host, &in6->sin6_addr.s6_addr[12]) == 1) {
			in6->sin6_addr.s6_addr[10] = in6->sin6_addr.s6_addr[11] = 0xff;
			return 0;
		}
		return looks_numeric(host) || strchr(host, ':') ? -EINVAL : -EAGAIN;
	}
	return -EINVAL;
}

/* Writes the address text and port of `sa` (a Unix socket's path, port -1). */
void
address_format(const struct sockaddr *sa, socklen_t len, char *host, size_t host_len, int *port)
{
	host[0] = '\0';
	*port = -1;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		char text[INET_ADDRSTRLEN];

		policy_format_ipv4((const uint8_t *)&in->sin_addr, text);
		if (strlen(text) < host_len)
			memcpy(host, text, strlen(text) + 1);
		*port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, (socklen_t)host_len);
		*port = ntohs(in6->sin6_port);
	} else if (sa->sa_family == AF_UNIX) {
		const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
		size_t n = len > offsetof(struct sockaddr_un, sun_path)
		               ? len - offsetof(struct sockaddr_un, sun_path)
		               : 0;

		if (n > 0 && un->sun_path[0] != '\0')
			snprintf(host, host_len, "%.*s", (int)strnlen(un->sun_path, n),
			         un->sun_path);
	}
}

/* "127.0.0.1:80", "[::1]:80" or a Unix path, for messages. Returns buf. */
const char *
address_describe(const struct sockaddr *sa, socklen_t len, char *buf, size_t n)
{
	char host[INET6_ADDRSTRLEN + 108];
	int port;

	address_format(sa, len, host, sizeof(host), &port);
	if (sa->sa_family == AF_INET6)
		snprintf(buf, n, "[%s]:%d", host, port);
	else if (sa->sa_family == AF_INET)
		snprintf(buf, n, "%s:%d", host, port);
	else
		snprintf(buf, n, "%s", host);
	return buf;
}
