#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <string.h>

#include "net/sockaddr.h"
#include "unit.h"

static const struct {
	const char	*in;
	uint16_t	 defport;
	int		 ok;
	const char	*host;
	unsigned	 port;
	int		 literal;
} endpoints[] = {
	{ "127.0.0.1:25", 0, 1, "127.0.0.1", 25, 1 },
	{ "[::1]:2525", 0, 1, "::1", 2525, 1 },
	{ "[2001:db8::1]", 587, 1, "2001:db8::1", 587, 1 },
	{ "smtp.example.org:465", 0, 1, "smtp.example.org", 465, 0 },
	{ "localhost", 25, 1, "localhost", 25, 0 },
	{ "localhost", 0, 0, NULL, 0, 0 },
	/* A host called "unix", with a port: not a unix socket. */
	{ "unix:25", 0, 1, "unix", 25, 0 },
	{ "unix", 1080, 1, "unix", 1080, 0 },
	{ "::1:25", 0, 0, NULL, 0, 0 },
	{ "[::1", 0, 0, NULL, 0, 0 },
	{ "[::1]25", 0, 0, NULL, 0, 0 },
	{ "[nothex]:25", 0, 0, NULL, 0, 0 },
	{ "host:0", 0, 0, NULL, 0, 0 },
	{ "host:65536", 0, 0, NULL, 0, 0 },
	{ "host:99999999999", 0, 0, NULL, 0, 0 },
	{ "host:2x", 0, 0, NULL, 0, 0 },
	{ "host:", 0, 0, NULL, 0, 0 },
	{ ":25", 0, 0, NULL, 0, 0 },
	{ "bad_host:25", 0, 0, NULL, 0, 0 },
	{ "-bad.example:25", 0, 0, NULL, 0, 0 },
	{ "a..b:25", 0, 0, NULL, 0, 0 },
	{ "", 25, 0, NULL, 0, 0 },
};

START_TEST(endpoint_vectors)
{
	struct pst_endpoint ep;
	const char *why = NULL;
	int rc;

	rc = pst_endpoint_parse(endpoints[_i].in, endpoints[_i].defport,
	    false, &ep, &why);
	if (!endpoints[_i].ok) {
		ck_assert_msg(rc == -1, "\"%s\" accepted", endpoints[_i].in);
		ck_assert_ptr_nonnull(why);
		return;
	}
	ck_assert_msg(rc == 0, "\"%s\" refused: %s", endpoints[_i].in, why);
	ck_assert_int_eq(ep.kind, PST_EP_INET);
	ck_assert_str_eq(ep.host, endpoints[_i].host);
	ck_assert_uint_eq(ep.port, endpoints[_i].port);
	ck_assert_int_eq(ep.literal, endpoints[_i].literal);
}
END_TEST

START_TEST(endpoint_unix)
{
	struct pst_endpoint ep;
	const char *why;
	char buf[128];

	ck_assert_int_eq(pst_endpoint_parse("unix:/run/postern/smtp.sock", 0,
	    true, &ep, &why), 0);
	ck_assert_int_eq(ep.kind, PST_EP_UNIX);
	ck_assert_str_eq(ep.path, "/run/postern/smtp.sock");
	ck_assert_str_eq(pst_endpoint_format(&ep, buf, sizeof(buf)),
	    "unix:/run/postern/smtp.sock");
	ck_assert_int_eq(pst_endpoint_parse("unix:/x", 0, false, &ep, &why),
	    -1);
	ck_assert_int_eq(pst_endpoint_parse("unix:relative", 0, true, &ep,
	    &why), -1);
}
END_TEST

START_TEST(endpoint_to_sockaddr)
{
	struct sockaddr_storage ss;
	struct pst_endpoint ep;
	const char *why;
	socklen_t len;
	char buf[64];

	pst_endpoint_parse("[::1]:2525", 0, false, &ep, &why);
	ck_assert_int_eq(pst_endpoint_sockaddr(&ep, &ss, &len, &why), 0);
	ck_assert_int_eq(ss.ss_family, AF_INET6);
	ck_assert_str_eq(pst_sockaddr_format((struct sockaddr *)&ss, len,
	    buf, sizeof(buf)), "[::1]:2525");
	pst_endpoint_parse("localhost:25", 0, false, &ep, &why);
	ck_assert_int_eq(pst_endpoint_sockaddr(&ep, &ss, &len, &why), 0);
	ck_assert_str_eq(pst_sockaddr_format((struct sockaddr *)&ss, len,
	    buf, sizeof(buf)), "127.0.0.1:25");
	pst_endpoint_parse("mx.example.org:25", 0, false, &ep, &why);
	ck_assert_int_eq(pst_endpoint_sockaddr(&ep, &ss, &len, &why), -1);
}
END_TEST

static struct sockaddr_storage
sa(const char *addr)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	return ss;
}

static const struct {
	const char	*net;
	const char	*addr;
	int		 match;
} matches[] = {
	{ "127.0.0.0/8", "127.0.0.1", 1 },
	{ "127.0.0.0/8", "127.255.1.2", 1 },
	{ "127.0.0.0/8", "128.0.0.1", 0 },
	{ "127.0.0.0/8", "::ffff:127.0.0.1", 1 },
	{ "127.0.0.0/8", "::1", 0 },
	{ "::1/128", "::1", 1 },
	{ "::1/128", "::2", 0 },
	{ "::1", "::1", 1 },
	{ "10.1.2.3", "10.1.2.3", 1 },
	{ "10.1.2.3", "10.1.2.4", 0 },
	{ "0.0.0.0/0", "203.0.113.9", 1 },
	{ "2001:db8::/32", "2001:db8:ffff::1", 1 },
	{ "2001:db8::/33", "2001:db8:8000::1", 0 },
	{ "192.168.0.0/23", "192.168.1.255", 1 },
	{ "192.168.0.0/23", "192.168.2.0", 0 },
};

START_TEST(cidr_match_vectors)
{
	struct sockaddr_storage ss = sa(matches[_i].addr);
	struct pst_cidr net;
	const char *why = NULL;

	ck_assert_msg(pst_cidr_parse(matches[_i].net, &net, &why) == 0,
	    "%s: %s", matches[_i].net, why);
	ck_assert_msg(pst_cidr_match(&net, (struct sockaddr *)&ss) ==
	    matches[_i].match, "%s in %s", matches[_i].addr,
	    matches[_i].net);
}
END_TEST

START_TEST(cidr_refuses_nonsense)
{
	static const char *bad[] = { "", "/8", "10.0.0.0/", "10.0.0.0/33",
	    "10.0.0.1/8", "::1/129", "10.0.0.0/8x", "host/8", "10.0.0.0/-1",
	    "10.0.0.0/0008x" };
	struct pst_cidr net;
	const char *why;
	size_t i;

	for (i = 0; i < NELEMS(bad); i++)
		ck_assert_msg(pst_cidr_parse(bad[i], &net, &why) == -1,
		    "\"%s\" accepted", bad[i]);
}
END_TEST

START_TEST(hostname_syntax)
{
	char long_label[80];

	ck_assert(pst_hostname_valid("relay.example.org"));
	ck_assert(pst_hostname_valid("a"));
	ck_assert(pst_hostname_valid("xn--bcher-kva.example"));
	ck_assert(!pst_hostname_valid(""));
	ck_assert(!pst_hostname_valid("a_b"));
	ck_assert(!pst_hostname_valid("a..b"));
	ck_assert(!pst_hostname_valid(".a"));
	ck_assert(!pst_hostname_valid("a-.b"));
	ck_assert(!pst_hostname_valid("a b"));
	memset(long_label, 'a', 64);
	long_label[64] = '\0';
	ck_assert(!pst_hostname_valid(long_label));
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("net/sockaddr");
	TCase *tc = tcase_create("sockaddr");

	tcase_add_loop_test(tc, endpoint_vectors, 0, NELEMS(endpoints));
	tcase_add_test(tc, endpoint_unix);
	tcase_add_test(tc, endpoint_to_sockaddr);
	tcase_add_loop_test(tc, cidr_match_vectors, 0, NELEMS(matches));
	tcase_add_test(tc, cidr_refuses_nonsense);
	tcase_add_test(tc, hostname_syntax);
	suite_add_tcase(s, tc);
	return s;
}
