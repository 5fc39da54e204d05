/*
 * proxyurl.h: proxy URLs, as curl spells them, to dial hops and back.
 *
 *   socks4://host[:port]     SOCKS4, the target resolved here
 *   socks4a://host[:port]    SOCKS4a, the target name sent to the proxy
 *   socks5://host[:port]     SOCKS5, the target resolved here
 *   socks5h://host[:port]    SOCKS5, the target name sent to the proxy
 *   http://host[:port]       HTTP CONNECT, the name sent to the proxy
 *
 * Each may carry "user:password@" (or "user@") before the host, with
 * percent-escapes (RFC 3986 section 2.1) for the bytes a URL cannot hold
 * as they are: "%40" for '@', "%3A" for ':', "%2F" for '/', "%25" for '%'.
 * The host is a name, an IPv4 address or an IPv6 address in brackets.
 * The port defaults to 1080 for every scheme, as in curl (whose default
 * is 1080 for everything but HTTPS proxies); an HTTP proxy on 3128 or 8080
 * needs its port written out.  Schemes are case-insensitive.  A trailing
 * "/" is allowed; any other path, a query or a fragment is an error.
 *
 * Pure functions: nothing is looked up, nothing is logged.
 */
#ifndef PST_PROXYURL_H
#define PST_PROXYURL_H

#include <stddef.h>

#include "net/dial.h"

/* The longest proxy URL accepted, and a buffer that holds any format. */
#define PST_PROXY_URL_MAX		1024
#define PST_PROXY_DEFAULT_PORT		1080

/*
 * pst_proxy_url_parse()
 * Parses 'url' into 'hop': kind, host, port, user and password (decoded),
 * and remote_resolve, which is true for socks4a, socks5h and http; 'ops'
 * is NULL (the kind's).  The result suits pst_dial_plan_add_hop().
 * Returns 0, or -1 with '*why' set to a static phrase ("unknown proxy
 * scheme ...", "missing host", "port out of range (1-65535)", "bad
 * percent-escape in the user name or password", ...) and 'hop' wiped, so
 * no partial password stays behind.  The phrase never quotes the URL,
 * which may hold a password.
 */
int	 pst_proxy_url_parse(const char *url, struct pst_hop *hop,
	    const char **why);

/*
 * pst_proxy_url_format()
 * Writes 'hop' as a URL into 'buf' (always NUL terminated): scheme from
 * the kind and remote_resolve, the user percent-encoded, the host (IPv6
 * in brackets) and the port.  The password is never written, so the
 * result is fit for logs: "socks5h://alice@127.0.0.1:1080".  Returns
 * 'buf'.
 */
char	*pst_proxy_url_format(const struct pst_hop *hop, char *buf,
	    size_t len);

#endif /* PST_PROXYURL_H */
