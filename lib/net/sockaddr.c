/*
 * sockaddr.c: endpoint and CIDR syntax.  inet_pton() does the literal
 * parsing; everything around it (brackets, ports, prefixes) is checked
 * here byte by byte so that error messages can say what is wrong.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "net/sockaddr.h"

static int
parse_port(const char *s, uint16_t *port, const char **why)
{
	unsigned long n = 0;

	if (*s == '\0') {
		*why = "missing port after ':'";
		return -1;
	}
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9') {
			*why = "port is not a number";
			return -1;
		}
		n = n * 10 + (unsigned long)(*s - '0');
		if (n > 65535)
			break;
	}
	if (n == 0 || n > 65535) {
		*why = "port out of range (1-65535)";
		return -1;
	}
	*port = (uint16_t)n;
	return 0;
}

bool
pst_hostname_valid(const char *s)
{
	size_t label = 0, total = strlen(s);
	const char *p;

	if (total == 0 || total > 253)
		return false;
	for (p = s; *p != '\0'; p++) {
		char c = *p;

		if (c == '.') {
			if (label == 0 || p[-1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-'))
			return false;
		if (c == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	return p[-1] != '-';
}

int
pst_endpoint_parse(const char *s, uint16_t default_port, bool allow_unix,
    struct pst_endpoint *ep, const char **why)
{
	struct in6_addr a6;
	struct in_addr a4;
	const char *colon, *end;
	size_t hlen;

	memset(ep, 0, sizeof(*ep));
	/* "unix:25" is the host "unix", as pst_endpoint_format() writes it. */
	if (strncmp(s, "unix:", 5) == 0 && !(s[5] >= '0' && s[5] <= '9')) {
		if (!allow_unix) {
			*why = "unix sockets are not allowed here";
			return -1;
		}
		s += 5;
		if (s[0] != '/') {
			*why = "unix socket path must be absolute";
			return -1;
		}
		if (strlen(s) >= sizeof(ep->path)) {
			*why = "unix socket path too long";
			return -1;
		}
		ep->kind = PST_EP_UNIX;
		strcpy(ep->path, s);
		return 0;
	}
	ep->kind = PST_EP_INET;
	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL) {
			*why = "missing ']'";
			return -1;
		}
		hlen = (size_t)(end - s - 1);
		if (hlen == 0 || hlen > PST_HOST_MAX) {
			*why = "bad IPv6 address";
			return -1;
		}
		memcpy(ep->host, s + 1, hlen);
		ep->host[hlen] = '\0';
		if (inet_pton(AF_INET6, ep->host, &a6) != 1) {
			*why = "bad IPv6 address";
			return -1;
		}
		ep->literal = true;
		if (end[1] == '\0')
			goto no_port;
		if (end[1] != ':') {
			*why = "expected ':' after ']'";
			return -1;
		}
		return parse_port(end + 2, &ep->port, why);
	}
	colon = strchr(s, ':');
	if (colon != NULL && strchr(colon + 1, ':') != NULL) {
		*why = "IPv6 address needs brackets, as in [::1]:25";
		return -1;
	}
	hlen = colon != NULL ? (size_t)(colon - s) : strlen(s);
	if (hlen == 0) {
		*why = "missing host";
		return -1;
	}
	if (hlen > PST_HOST_MAX) {
		*why = "host name too long";
		return -1;
	}
	memcpy(ep->host, s, hlen);
	ep->host[hlen] = '\0';
	if (inet_pton(AF_INET, ep->host, &a4) == 1)
		ep->literal = true;
	else if (!pst_hostname_valid(ep->host)) {
		*why = "not a valid host name or address";
		return -1;
	}
	if (colon != NULL)
		return parse_port(colon + 1, &ep->port, why);
no_port:
	if (default_port == 0) {
		*why = "missing port";
		return -1;
	}
	ep->port = default_port;
	return 0;
}

int
pst_endpoint_sockaddr(const struct pst_endpoint *ep,
    struct sockaddr_storage *ss, socklen_t *len, const char **why)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_un *sun = (struct sockaddr_un *)ss;
	const char *host = ep->host;

	memset(ss, 0, sizeof(*ss));
	if (ep->kind == PST_EP_UNIX) {
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, ep->path);
		*len = sizeof(*sun);
		return 0;
	}
	if (strcmp(host, "localhost") == 0)
		host = "127.0.0.1";
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(ep->port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(ep->port);
		*len = sizeof(*sin6);
		return 0;
	}
	*why = "an IP address is needed here, not a host name";
	return -1;
}

char *
pst_endpoint_format(const struct pst_endpoint *ep, char *buf, size_t len)
{
	if (ep->kind == PST_EP_UNIX)
		snprintf(buf, len, "unix:%s", ep->path);
	else if (strchr(ep->host, ':') != NULL)
		snprintf(buf, len, "[%s]:%u", ep->host, ep->port);
	else
		snprintf(buf, len, "%s:%u", ep->host, ep->port);
	return buf;
}

int
pst_cidr_parse(const char *s, struct pst_cidr *net, const char **why)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	unsigned long prefix, max, i;
	size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	const char *p;

	memset(net, 0, sizeof(*net));
	if (alen == 0 || alen >= sizeof(addr)) {
		*why = "not an address";
		return -1;
	}
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, net->addr) == 1) {
		net->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, net->addr) == 1) {
		net->family = AF_INET6;
		max = 128;
	} else {
		*why = "not an IPv4 or IPv6 address";
		return -1;
	}
	prefix = max;
	if (slash != NULL) {
		p = slash + 1;
		if (*p == '\0') {
			*why = "missing prefix length after '/'";
			return -1;
		}
		for (prefix = 0; *p != '\0'; p++) {
			if (*p < '0' || *p > '9' || prefix > max) {
				*why = "bad prefix length";
				return -1;
			}
			prefix = prefix * 10 + (unsigned long)(*p - '0');
		}
		if (prefix > max) {
			*why = "prefix length too large";
			return -1;
		}
	}
	net->prefix = (unsigned)prefix;
	for (i = prefix; i < max; i++) {
		if (net->addr[i / 8] & (0x80 >> (i % 8))) {
			*why = "host bits set below the prefix length";
			return -1;
		}
	}
	return 0;
}

static bool
prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;
	uint8_t mask;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

bool
pst_cidr_match(const struct pst_cidr *net, const struct sockaddr *sa)
{
	static const uint8_t v4mapped[12] = {
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
	const uint8_t *b;

	if (sa->sa_family == AF_INET) {
		if (net->family != AF_INET)
			return false;
		return prefix_equal(net->addr,
		    (const uint8_t *)&sin->sin_addr, net->prefix);
	}
	if (sa->sa_family != AF_INET6)
		return false;
	b = sin6->sin6_addr.s6_addr;
	if (net->family == AF_INET6)
		return prefix_equal(net->addr, b, net->prefix);
	if (memcmp(b, v4mapped, sizeof(v4mapped)) == 0)
		return prefix_equal(net->addr, b + 12, net->prefix);
	return false;
}

char *
pst_sockaddr_format(const struct sockaddr *sa, socklen_t salen, char *buf,
    size_t len)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
	const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
	char a[INET6_ADDRSTRLEN];

	switch (sa->sa_family) {
	case AF_INET:
		inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(sin->sin_port));
		break;
	case AF_INET6:
		inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(sin6->sin6_port));
		break;
	case AF_UNIX:
		if (salen > offsetof(struct sockaddr_un, sun_path) &&
		    sun->sun_path[0] != '\0')
			snprintf(buf, len, "unix:%.*s",
			    (int)(salen - offsetof(struct sockaddr_un, sun_path)),
			    sun->sun_path);
		else
			snprintf(buf, len, "unix");
		break;
	default:
		snprintf(buf, len, "family-%d", sa->sa_family);
		break;
	}
	return buf;
}
