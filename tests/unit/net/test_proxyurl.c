/*
 * test_proxyurl.c: proxy URLs to hops, and hops back to loggable URLs.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "net/dial.h"
#include "net/proxyurl.h"
#include "unit.h"

struct good_case {
	const char		*url;
	enum pst_hop_kind	 kind;
	bool			 remote;
	const char		*host;
	uint16_t		 port;
	const char		*user;
	const char		*password;
	const char		*formatted;	/* by pst_proxy_url_format */
};

static const struct good_case goods[] = {
	{ "socks5h://user:secret@127.0.0.1:1080", PST_HOP_SOCKS5, true,
	  "127.0.0.1", 1080, "user", "secret",
	  "socks5h://user@127.0.0.1:1080" },
	{ "socks5://127.0.0.1:1081", PST_HOP_SOCKS5, false, "127.0.0.1", 1081,
	  "", "", "socks5://127.0.0.1:1081" },
	{ "socks4://10.0.0.1", PST_HOP_SOCKS4, false, "10.0.0.1", 1080, "",
	  "", "socks4://10.0.0.1:1080" },
	{ "socks4a://alice@proxy.lan:9050", PST_HOP_SOCKS4, true, "proxy.lan",
	  9050, "alice", "", "socks4a://alice@proxy.lan:9050" },
	{ "socks5://[::1]:1080", PST_HOP_SOCKS5, false, "::1", 1080, "", "",
	  "socks5://[::1]:1080" },
	{ "socks5h://[2001:db8::1]", PST_HOP_SOCKS5, true, "2001:db8::1",
	  1080, "", "", "socks5h://[2001:db8::1]:1080" },
	{ "http://proxy.lan:3128", PST_HOP_HTTP, true, "proxy.lan", 3128, "",
	  "", "http://proxy.lan:3128" },
	{ "http://proxy.lan", PST_HOP_HTTP, true, "proxy.lan", 1080, "", "",
	  "http://proxy.lan:1080" },
	{ "HTTP://Proxy.LAN:8080/", PST_HOP_HTTP, true, "Proxy.LAN", 8080,
	  "", "", "http://Proxy.LAN:8080" },
	{ "SOCKS5H://a@b", PST_HOP_SOCKS5, true, "b", 1080, "a", "",
	  "socks5h://a@b:1080" },
	{ "socks5://us%40er:p%3Ass%2Fw%25d@host", PST_HOP_SOCKS5, false,
	  "host", 1080, "us@er", "p:ss/w%d", "socks5://us%40er@host:1080" },
	{ "socks5://user:p@ss@host", PST_HOP_SOCKS5, false, "host", 1080,
	  "user", "p@ss", "socks5://user@host:1080" },
	{ "socks5://user:@host", PST_HOP_SOCKS5, false, "host", 1080, "user",
	  "", "socks5://user@host:1080" },
	{ "socks5://user:pa:ss@host", PST_HOP_SOCKS5, false, "host", 1080,
	  "user", "pa:ss", "socks5://user@host:1080" },
	{ "socks5://%e2%82%AC:x@host", PST_HOP_SOCKS5, false, "host", 1080,
	  "\xe2\x82\xac", "x", "socks5://%E2%82%AC@host:1080" },
	{ "socks5://user%3Aname:pw@host:65535", PST_HOP_SOCKS5, false, "host",
	  65535, "user:name", "pw", "socks5://user%3Aname@host:65535" },
	{ "http://a.b-c_d~e:pw@host", PST_HOP_HTTP, true, "host", 1080,
	  "a.b-c_d~e", "pw", "http://a.b-c_d~e@host:1080" },
};

START_TEST(proxyurl_parses_good_urls)
{
	const struct good_case *c = &goods[_i];
	char buf[PST_PROXY_URL_MAX];
	const char *why = NULL;
	struct pst_hop hop;

	ck_assert_msg(pst_proxy_url_parse(c->url, &hop, &why) == 0, "%s: %s",
	    c->url, why);
	ck_assert_int_eq(hop.kind, c->kind);
	ck_assert_int_eq(hop.remote_resolve, c->remote);
	ck_assert_str_eq(hop.host, c->host);
	ck_assert_uint_eq(hop.port, c->port);
	ck_assert_str_eq(hop.user, c->user);
	ck_assert_str_eq(hop.password, c->password);
	ck_assert_ptr_null(hop.ops);
	ck_assert_str_eq(pst_proxy_url_format(&hop, buf, sizeof(buf)),
	    c->formatted);
	/* What is formatted parses back to the same hop, sans password. */
	ck_assert_int_eq(pst_proxy_url_parse(buf, &hop, &why), 0);
	ck_assert_str_eq(hop.user, c->user);
	ck_assert_str_eq(hop.password, "");
	ck_assert_str_eq(hop.host, c->host);
}
END_TEST

struct bad_case {
	const char	*url;
	const char	*why;
};

static const struct bad_case bads[] = {
	{ "", "empty proxy URL" },
	{ "ftp://host", "unknown proxy scheme (socks4, socks4a, socks5, "
	  "socks5h or http)" },
	{ "socks://host", "unknown proxy scheme (socks4, socks4a, socks5, "
	  "socks5h or http)" },
	{ "://host", "unknown proxy scheme (socks4, socks4a, socks5, "
	  "socks5h or http)" },
	{ "https://host", "https proxies (TLS to the proxy) are not "
	  "supported; use http:// for HTTP CONNECT" },
	{ "socks5:/host", "not a proxy URL: expected scheme://host[:port]" },
	{ "127.0.0.1:1080", "not a proxy URL: expected "
	  "scheme://host[:port]" },
	{ "socks5://", "missing host" },
	{ "socks5:///", "missing host" },
	{ "socks5://:1080", "missing host" },
	{ "socks5://user@", "missing host" },
	{ "socks5://user:pw@", "missing host" },
	{ "socks5://user:pw@:1080", "missing host" },
	{ "socks5://@host", "empty user name before '@'" },
	{ "socks5://:pw@host", "password without a user name" },
	{ "socks5://host:0", "port out of range (1-65535)" },
	{ "socks5://host:65536", "port out of range (1-65535)" },
	{ "socks5://host:99999999999999999999", "port out of range "
	  "(1-65535)" },
	{ "socks5://host:abc", "port is not a number" },
	{ "socks5://host:-1", "port is not a number" },
	{ "socks5://host:", "missing port after ':'" },
	{ "socks5://us%4ger@host", "bad percent-escape in the user name or "
	  "password" },
	{ "socks5://us%4@host", "bad percent-escape in the user name or "
	  "password" },
	{ "socks5://us%@host", "bad percent-escape in the user name or "
	  "password" },
	{ "socks5://user:pw%zz@host", "bad percent-escape in the user name "
	  "or password" },
	{ "socks5://us%00er@host", "%00 in the user name or password" },
	{ "http://us%3Aer:pw@host", "an HTTP proxy user name cannot contain "
	  "':' (Basic authentication)" },
	{ "socks5://host/path", "a proxy URL has no path, query or "
	  "fragment" },
	{ "socks5://host//", "a proxy URL has no path, query or fragment" },
	{ "socks5://host?x=1", "a proxy URL has no path, query or "
	  "fragment" },
	{ "socks5://host#frag", "a proxy URL has no path, query or "
	  "fragment" },
	{ "socks5://ho st", "space, control or non-ASCII byte in the proxy "
	  "URL (percent-encode it)" },
	{ "socks5://host\n", "space, control or non-ASCII byte in the proxy "
	  "URL (percent-encode it)" },
	{ "socks5://us\xc3\xa9r@host", "space, control or non-ASCII byte in "
	  "the proxy URL (percent-encode it)" },
	{ "socks5://::1:1080", "IPv6 address needs brackets, as in [::1]:25" },
	{ "socks5://[::1", "missing ']'" },
	{ "socks5://[zz]:1080", "bad IPv6 address" },
	{ "socks5://[::1]1080", "expected ':' after ']'" },
	{ "socks5://under_score", "not a valid host name or address" },
	{ "socks5://unix:", "unix sockets are not allowed here" },
};

START_TEST(proxyurl_refuses_bad_urls_and_wipes_the_hop)
{
	const struct bad_case *c = &bads[_i];
	const char *why = NULL;
	struct pst_hop hop, zero;

	memset(&hop, 'x', sizeof(hop));
	memset(&zero, 0, sizeof(zero));
	ck_assert_msg(pst_proxy_url_parse(c->url, &hop, &why) == -1,
	    "accepted: %s", c->url);
	ck_assert_ptr_nonnull(why);
	ck_assert_str_eq(why, c->why);
	ck_assert(memcmp(&hop, &zero, sizeof(hop)) == 0);
}
END_TEST

START_TEST(proxyurl_failure_leaves_no_password_behind)
{
	const char *why = NULL;
	struct pst_hop hop, zero;

	memset(&zero, 0, sizeof(zero));
	ck_assert_int_eq(pst_proxy_url_parse("socks5://user:secret@host:0",
	    &hop, &why), -1);
	ck_assert(memcmp(&hop, &zero, sizeof(hop)) == 0);
	ck_assert_ptr_null(strstr(why, "secret"));
}
END_TEST

START_TEST(proxyurl_bounds_lengths)
{
	char url[PST_PROXY_URL_MAX + 64], user[300];
	const char *why = NULL;
	struct pst_hop hop;

	/* 255 bytes of user name, some of them escaped, are the most. */
	memset(user, 'u', 249);
	user[249] = '\0';
	snprintf(url, sizeof(url), "socks5://%s%%41%%42%%43%%44%%45%%46:"
	    "pw@host", user);
	ck_assert_msg(pst_proxy_url_parse(url, &hop, &why) == 0, "%s", why);
	ck_assert_uint_eq(strlen(hop.user), 255);
	snprintf(url, sizeof(url), "socks5://%s%%41%%42%%43%%44%%45%%46%%47:"
	    "pw@host", user);
	ck_assert_int_eq(pst_proxy_url_parse(url, &hop, &why), -1);
	ck_assert_str_eq(why, "user name or password longer than 255 bytes");
	memset(user, 'p', 256);
	user[256] = '\0';
	snprintf(url, sizeof(url), "socks5://u:%s@host", user);
	ck_assert_int_eq(pst_proxy_url_parse(url, &hop, &why), -1);
	ck_assert_str_eq(why, "user name or password longer than 255 bytes");

	/* The URL itself. */
	memset(url, 'a', sizeof(url) - 1);
	url[sizeof(url) - 1] = '\0';
	memcpy(url, "socks5://", 9);
	ck_assert_int_eq(pst_proxy_url_parse(url, &hop, &why), -1);
	ck_assert_str_eq(why, "proxy URL too long");
	ck_assert_int_eq(pst_proxy_url_parse(NULL, &hop, &why), -1);
	ck_assert_str_eq(why, "empty proxy URL");
}
END_TEST

/* A parsed hop is what the dial plan takes, as it is. */
START_TEST(proxyurl_hop_goes_into_a_dial_plan)
{
	struct pst_dial_plan plan;
	struct pst_hop hop;
	struct pst_err err;
	const char *why;

	ck_assert_int_eq(pst_dial_plan_init(&plan, "mx.example.org", 25,
	    &err), 0);
	ck_assert_int_eq(pst_proxy_url_parse("socks5h://u:p@127.0.0.1:1080",
	    &hop, &why), 0);
	ck_assert_msg(pst_dial_plan_add_hop(&plan, &hop, &err) == 0, "%s",
	    err.text);
	ck_assert_int_eq(pst_proxy_url_parse("http://proxy.lan:3128", &hop,
	    &why), 0);
	ck_assert_int_eq(pst_dial_plan_add_hop(&plan, &hop, &err), 0);
	ck_assert_int_eq(pst_proxy_url_parse("socks4://10.0.0.1", &hop,
	    &why), 0);
	ck_assert_int_eq(pst_dial_plan_add_hop(&plan, &hop, &err), 0);
	ck_assert_uint_eq(plan.nhops, 3);
	ck_assert_ptr_nonnull(plan.hops[0].ops);
	pst_dial_plan_clear(&plan);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("net/proxyurl");
	TCase *parse = tcase_create("parse");

	tcase_add_loop_test(parse, proxyurl_parses_good_urls, 0,
	    NELEMS(goods));
	tcase_add_loop_test(parse, proxyurl_refuses_bad_urls_and_wipes_the_hop,
	    0, NELEMS(bads));
	tcase_add_test(parse, proxyurl_failure_leaves_no_password_behind);
	tcase_add_test(parse, proxyurl_bounds_lengths);
	tcase_add_test(parse, proxyurl_hop_goes_into_a_dial_plan);
	suite_add_tcase(s, parse);
	return s;
}
