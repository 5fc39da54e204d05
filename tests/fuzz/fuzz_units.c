/*
 * fuzz_units.c: endpoints, networks, durations and sizes as written in
 * config files (net/sockaddr.h, common/units.h).
 *
 * The first byte picks the parser (bits 0-1) and, for endpoints, whether
 * a default port is given (bit 2) and "unix:" allowed (bit 3); the rest
 * is the string.  Checked: an endpoint formats and parses back to itself
 * and a literal one becomes a socket address; a network has a prefix
 * that fits its family, no host bits and contains its own address; a
 * duration is within bounds and formats and parses back to itself.
 */
#include <sys/socket.h>
#include <netinet/in.h>

#include <string.h>

#include "common/units.h"
#include "net/sockaddr.h"
#include "fuzz.h"

#define UNITS_STR_MAX	2048

static void	units_endpoint(const char *s, uint8_t mode);
static void	units_cidr(const char *s);
static void	units_duration(const char *s);

static void
units_endpoint(const char *s, uint8_t mode)
{
	struct pst_endpoint ep, again;
	struct sockaddr_storage ss;
	socklen_t sslen;
	char buf[PST_HOST_MAX + sizeof(ep.path) + 16];
	const char *why = NULL;
	uint16_t dport = (mode & 4) ? 25 : 0;
	bool unix_ok = (mode & 8) != 0;

	if (pst_endpoint_parse(s, dport, unix_ok, &ep, &why) == -1) {
		FUZZ_CHECK(why != NULL && why[0] != '\0');
		return;
	}
	if (ep.kind == PST_EP_UNIX) {
		FUZZ_CHECK(unix_ok && ep.path[0] == '/');
		FUZZ_CHECK(memchr(ep.path, '\0', sizeof(ep.path)) != NULL);
	} else {
		FUZZ_CHECK(ep.kind == PST_EP_INET && ep.port != 0);
		FUZZ_CHECK(ep.host[0] != '\0');
		FUZZ_CHECK(memchr(ep.host, '\0', sizeof(ep.host)) != NULL);
	}
	pst_endpoint_format(&ep, buf, sizeof(buf));
	if (pst_endpoint_parse(buf, 0, unix_ok, &again, &why) == -1) {
		fprintf(stderr, "\"%s\" does not parse: %s\n", buf, why);
		FUZZ_CHECK(!"formatted endpoint does not parse");
	}
	FUZZ_CHECK(again.kind == ep.kind);
	if (ep.kind == PST_EP_UNIX)
		FUZZ_CHECK(strcmp(again.path, ep.path) == 0);
	else {
		FUZZ_CHECK(strcmp(again.host, ep.host) == 0);
		FUZZ_CHECK(again.port == ep.port);
		FUZZ_CHECK(again.literal == ep.literal);
	}
	if (ep.kind == PST_EP_UNIX || ep.literal) {
		sslen = 0;
		FUZZ_CHECK(pst_endpoint_sockaddr(&ep, &ss, &sslen, &why) ==
		    0);
		FUZZ_CHECK(sslen > 0 && sslen <= sizeof(ss));
		pst_sockaddr_format((struct sockaddr *)&ss, sslen, buf,
		    sizeof(buf));
	}
}

static void
units_cidr(const char *s)
{
	struct pst_cidr net;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	const char *why = NULL;
	unsigned i, bits;

	if (pst_cidr_parse(s, &net, &why) == -1) {
		FUZZ_CHECK(why != NULL && why[0] != '\0');
		return;
	}
	FUZZ_CHECK(net.family == AF_INET || net.family == AF_INET6);
	bits = net.family == AF_INET ? 32 : 128;
	FUZZ_CHECK(net.prefix <= bits);
	for (i = net.prefix; i < bits; i++)
		FUZZ_CHECK(!(net.addr[i / 8] & (0x80 >> (i % 8))));
	if (net.family == AF_INET) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		memcpy(&sin.sin_addr, net.addr, 4);
		FUZZ_CHECK(pst_cidr_match(&net, (struct sockaddr *)&sin));
	} else {
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		memcpy(&sin6.sin6_addr, net.addr, 16);
		FUZZ_CHECK(pst_cidr_match(&net, (struct sockaddr *)&sin6));
	}
}

static void
units_duration(const char *s)
{
	uint64_t ms, again;
	const char *why = NULL;
	char buf[64];

	if (pst_duration_parse(s, &ms, &why) == -1) {
		FUZZ_CHECK(why != NULL && why[0] != '\0');
		return;
	}
	FUZZ_CHECK(ms <= PST_DURATION_MAX_MS);
	pst_duration_format(ms, buf, sizeof(buf));
	if (pst_duration_parse(buf, &again, &why) == -1) {
		fprintf(stderr, "\"%s\" does not parse: %s\n", buf, why);
		FUZZ_CHECK(!"formatted duration does not parse");
	}
	FUZZ_CHECK(again == ms);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	char s[UNITS_STR_MAX + 1];
	const char *why = NULL;
	uint64_t bytes;
	size_t len;
	uint8_t mode;

	mode = fuzz_byte(&in, 0);
	len = in.len < UNITS_STR_MAX ? in.len : UNITS_STR_MAX;
	if (len > 0)
		memcpy(s, in.p, len);
	s[len] = '\0';
	switch (mode & 3) {
	case 0:
		units_endpoint(s, mode);
		break;
	case 1:
		units_cidr(s);
		break;
	case 2:
		units_duration(s);
		break;
	default:
		if (pst_size_parse(s, &bytes, &why) == -1)
			FUZZ_CHECK(why != NULL && why[0] != '\0');
		break;
	}
	return 0;
}
