/*
 * proxyurl.c: proxy URL parsing and formatting.
 *
 * The URL is split by hand, in the order RFC 3986 section 3.2 gives:
 * scheme "://", then the authority up to the first '/', '?' or '#', whose
 * last '@' ends the userinfo (so an unescaped '@' in a password still
 * works), whose first ':' in turn splits user from password.  The host
 * and port go through pst_endpoint_parse(), the one parser of "host:port"
 * and "[v6]:port" in postern.  Everything is bounded by PST_PROXY_URL_MAX
 * and the hop's fields; only printable ASCII is accepted, so a URL pasted
 * with a stray space or newline is refused rather than half used.
 *
 * Error phrases are static and never quote the URL: it may hold a
 * password, and the caller logs the phrase.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/codec.h"
#include "net/dial.h"
#include "net/proxyurl.h"
#include "net/sockaddr.h"

struct proxyurl_scheme {
	const char		*name;
	enum pst_hop_kind	 kind;
	bool			 remote_resolve;
};

static const struct proxyurl_scheme proxyurl_schemes[] = {
	{ "socks4", PST_HOP_SOCKS4, false },
	{ "socks4a", PST_HOP_SOCKS4, true },
	{ "socks5", PST_HOP_SOCKS5, false },
	{ "socks5h", PST_HOP_SOCKS5, true },
	{ "http", PST_HOP_HTTP, true },
};

static int	 proxyurl_decode(const char *, size_t, char *, size_t,
		    const char **);
static int	 proxyurl_fail(struct pst_hop *, const char **, const char *);

/*
 * Percent-decodes 'len' bytes of 's' into 'out' of 'outsize' bytes (NUL
 * terminated).  Returns 0, or -1 with '*why' for a bad escape, an escaped
 * NUL or a result that does not fit.
 */
static int
proxyurl_decode(const char *s, size_t len, char *out, size_t outsize,
    const char **why)
{
	switch (pst_pct_decode(s, len, out, outsize, NULL)) {
	case PST_PCT_OK:
		return 0;
	case PST_PCT_BAD_ESCAPE:
		*why = "bad percent-escape in the user name or password";
		break;
	case PST_PCT_NUL:
		*why = "%00 in the user name or password";
		break;
	case PST_PCT_TOO_LONG:
		*why = "user name or password longer than 255 bytes";
		break;
	}
	return -1;
}

static int
proxyurl_fail(struct pst_hop *hop, const char **why, const char *phrase)
{
	explicit_bzero(hop, sizeof(*hop));
	if (phrase != NULL)
		*why = phrase;
	return -1;
}

int
pst_proxy_url_parse(const char *url, struct pst_hop *hop, const char **why)
{
	const struct proxyurl_scheme *sch = NULL;
	char hostport[PST_PROXY_URL_MAX + 1];
	struct pst_endpoint ep;
	const char *p, *auth, *end, *at, *colon;
	size_t len, i;

	memset(hop, 0, sizeof(*hop));
	if (url == NULL || url[0] == '\0')
		return proxyurl_fail(hop, why, "empty proxy URL");
	if ((len = strnlen(url, PST_PROXY_URL_MAX + 1)) > PST_PROXY_URL_MAX)
		return proxyurl_fail(hop, why, "proxy URL too long");
	for (i = 0; i < len; i++)
		if ((unsigned char)url[i] <= 0x20 ||
		    (unsigned char)url[i] >= 0x7f)
			return proxyurl_fail(hop, why, "space, control or "
			    "non-ASCII byte in the proxy URL (percent-encode "
			    "it)");
	if ((p = strstr(url, "://")) == NULL)
		return proxyurl_fail(hop, why, "not a proxy URL: expected "
		    "scheme://host[:port]");
	for (i = 0; i < sizeof(proxyurl_schemes) /
	    sizeof(proxyurl_schemes[0]); i++)
		if (strlen(proxyurl_schemes[i].name) == (size_t)(p - url) &&
		    strncasecmp(url, proxyurl_schemes[i].name,
		    (size_t)(p - url)) == 0)
			sch = &proxyurl_schemes[i];
	if (sch == NULL && (size_t)(p - url) == 5 &&
	    strncasecmp(url, "https", 5) == 0)
		return proxyurl_fail(hop, why, "https proxies (TLS to the "
		    "proxy) are not supported; use http:// for HTTP CONNECT");
	if (sch == NULL)
		return proxyurl_fail(hop, why, "unknown proxy scheme (socks4, "
		    "socks4a, socks5, socks5h or http)");

	auth = p + 3;
	end = auth + strcspn(auth, "/?#");
	if (end[0] != '\0' && strcmp(end, "/") != 0)
		return proxyurl_fail(hop, why, "a proxy URL has no path, query "
		    "or fragment");
	/* The last '@' of the authority: a password may hold one. */
	at = NULL;
	for (p = auth; p < end; p++)
		if (*p == '@')
			at = p;
	if (at != NULL) {
		if (at == auth)
			return proxyurl_fail(hop, why, "empty user name "
			    "before '@'");
		colon = memchr(auth, ':', (size_t)(at - auth));
		if (colon == auth)
			return proxyurl_fail(hop, why, "password without a "
			    "user name");
		if (proxyurl_decode(auth, (size_t)((colon != NULL ? colon :
		    at) - auth), hop->user, sizeof(hop->user), why) == -1 ||
		    (colon != NULL && proxyurl_decode(colon + 1,
		    (size_t)(at - colon - 1), hop->password,
		    sizeof(hop->password), why) == -1))
			return proxyurl_fail(hop, why, NULL);
		auth = at + 1;
	}
	if (auth == end)
		return proxyurl_fail(hop, why, "missing host");
	memcpy(hostport, auth, (size_t)(end - auth));
	hostport[end - auth] = '\0';
	if (pst_endpoint_parse(hostport, PST_PROXY_DEFAULT_PORT, false, &ep,
	    why) == -1)
		return proxyurl_fail(hop, why, NULL);
	/* RFC 7617 section 2: Basic cannot carry a ':' in the user-id. */
	if (sch->kind == PST_HOP_HTTP && strchr(hop->user, ':') != NULL)
		return proxyurl_fail(hop, why, "an HTTP proxy user name cannot "
		    "contain ':' (Basic authentication)");
	hop->kind = sch->kind;
	hop->remote_resolve = sch->remote_resolve;
	strcpy(hop->host, ep.host);
	hop->port = ep.port;
	hop->ops = NULL;
	return 0;
}

char *
pst_proxy_url_format(const struct pst_hop *hop, char *buf, size_t len)
{
	const char *scheme, *u;
	char user[3 * PST_PROXY_CRED_MAX + 1];
	bool v6;
	size_t n = 0;

	switch (hop->kind) {
	case PST_HOP_SOCKS4:
		scheme = hop->remote_resolve ? "socks4a" : "socks4";
		break;
	case PST_HOP_SOCKS5:
		scheme = hop->remote_resolve ? "socks5h" : "socks5";
		break;
	case PST_HOP_HTTP:
		scheme = "http";
		break;
	case PST_HOP_NONE:
	case PST_HOP__COUNT:
	default:
		scheme = "none";
		break;
	}
	for (u = hop->user; u < hop->user + sizeof(hop->user) && *u != '\0' &&
	    n + 4 <= sizeof(user); u++) {
		/* RFC 3986 section 2.3: unreserved bytes stay as they are. */
		if (isalnum((unsigned char)*u) || strchr("-._~", *u) != NULL)
			user[n++] = *u;
		else
			n += (size_t)snprintf(user + n, sizeof(user) - n,
			    "%%%02X", (unsigned char)*u);
	}
	user[n] = '\0';
	v6 = strchr(hop->host, ':') != NULL;
	snprintf(buf, len, "%s://%s%s%s%.255s%s:%u", scheme, user,
	    n > 0 ? "@" : "", v6 ? "[" : "", hop->host, v6 ? "]" : "",
	    hop->port);
	return buf;
}
