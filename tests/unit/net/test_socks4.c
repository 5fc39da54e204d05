/*
 * test_socks4.c: the SOCKS4 and SOCKS4a byte machine, fed evbuffers.
 *
 * Request vectors follow the SOCKS 4 protocol document and its SOCKS4a
 * extension byte for byte: VN CD DSTPORT DSTIP USERID NUL [HOST NUL].
 * Replies are the 8-byte VN=0 CD ... form; hostile ones come with a
 * wrong version, every refusal code, and cut at every byte.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <event2/buffer.h>

#include "common/err.h"
#include "net/dial.h"
#include "net/proxy.h"
#include "proxytest.h"
#include "unit.h"

#define B(...)	((const uint8_t[]){ __VA_ARGS__ })
#define BL(...)	B(__VA_ARGS__), sizeof(B(__VA_ARGS__))

/* ---- requests --------------------------------------------------------- */

struct request_case {
	const char	*name;
	const char	*user;
	bool		 remote;
	const char	*host;
	uint16_t	 port;
	const uint8_t	*bytes;
	size_t		 len;
};

static const struct request_case requests[] = {
	{ "IPv4, no user id", "", false, "192.0.2.7", 25,
	  BL(0x04, 0x01, 0x00, 0x19, 0xc0, 0x00, 0x02, 0x07, 0x00) },
	{ "IPv4, user id bob", "bob", false, "192.0.2.7", 25,
	  BL(0x04, 0x01, 0x00, 0x19, 0xc0, 0x00, 0x02, 0x07,
	     'b', 'o', 'b', 0x00) },
	{ "IPv4, highest port", "", false, "10.1.2.3", 65535,
	  BL(0x04, 0x01, 0xff, 0xff, 0x0a, 0x01, 0x02, 0x03, 0x00) },
	{ "SOCKS4a name, no user id", "", true, "mx.example.org", 587,
	  BL(0x04, 0x01, 0x02, 0x4b, 0x00, 0x00, 0x00, 0x01, 0x00,
	     'm', 'x', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.',
	     'o', 'r', 'g', 0x00) },
	{ "SOCKS4a name, user id bob", "bob", true, "mx.example.org", 25,
	  BL(0x04, 0x01, 0x00, 0x19, 0x00, 0x00, 0x00, 0x01,
	     'b', 'o', 'b', 0x00,
	     'm', 'x', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.',
	     'o', 'r', 'g', 0x00) },
	{ "SOCKS4a given an address sends plain SOCKS4", "", true,
	  "192.0.2.7", 25,
	  BL(0x04, 0x01, 0x00, 0x19, 0xc0, 0x00, 0x02, 0x07, 0x00) },
};

START_TEST(socks4_request_bytes_are_exact)
{
	const struct request_case *c = &requests[_i];
	struct pst_hop hop = pm_hop(PST_HOP_SOCKS4, c->user, "", c->remote);
	struct pm m;

	pm_open(&m, &pst_socks4_ops);
	ck_assert_msg(pm_begin(&m, &hop, c->host, c->port) == 0, "%s: %s",
	    c->name, m.err.text);
	pm_expect_out(&m, c->bytes, c->len);
	/* Nothing from the proxy yet: waiting, nothing more written. */
	ck_assert_int_eq(pm_feed(&m, NULL, 0), PST_STEP_MORE);
	ck_assert_uint_eq(evbuffer_get_length(m.out), 0);
	pm_close(&m);
}
END_TEST

struct refuse_case {
	const char	*name;
	bool		 remote;
	const char	*host;
	const char	*text;
};

static const struct refuse_case refusals[] = {
	{ "IPv6 target", false, "2001:db8::5",
	  "SOCKS4 cannot carry the IPv6 address 2001:db8::5" },
	{ "IPv6 target, SOCKS4a", true, "2001:db8::5",
	  "SOCKS4 cannot carry the IPv6 address 2001:db8::5" },
	{ "a name for SOCKS4 (not 4a): never sent, never looked up", false,
	  "mx.example.org", "target mx.example.org for the socks4 proxy is a "
	  "name, but this proxy does not resolve names (an address was "
	  "expected)" },
	{ "an invalid name", true, "bad host\r\nX",
	  "target \"bad host??X\" for the socks4 proxy is not a valid host "
	  "name or IP address" },
	{ "an empty host", true, "", "no target host for the socks4 proxy" },
};

START_TEST(socks4_begin_refuses_what_it_cannot_send)
{
	const struct refuse_case *c = &refusals[_i];
	struct pst_hop hop = pm_hop(PST_HOP_SOCKS4, "", "", c->remote);
	struct pm m;

	pm_open(&m, &pst_socks4_ops);
	ck_assert_int_eq(pm_begin(&m, &hop, c->host, 25), -1);
	ck_assert_str_eq(m.err.text, c->text);
	ck_assert_int_eq(m.err.cls, PST_LOCAL);
	ck_assert_int_eq(m.err.stage, PST_STAGE_PROXY);
	ck_assert_uint_eq(evbuffer_get_length(m.out), 0);
	pm_close(&m);
}
END_TEST

START_TEST(socks4_begin_refuses_a_name_longer_than_255_bytes)
{
	struct pst_hop hop = pm_hop(PST_HOP_SOCKS4, "", "", true);
	char name[300];
	struct pm m;

	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	pm_open(&m, &pst_socks4_ops);
	ck_assert_int_eq(pm_begin(&m, &hop, name, 25), -1);
	ck_assert_str_eq(m.err.text,
	    "target name longer than 255 bytes for the socks4 proxy");
	ck_assert_uint_eq(evbuffer_get_length(m.out), 0);
	pm_close(&m);
}
END_TEST

/* ---- replies ---------------------------------------------------------- */

static const uint8_t granted[] = {
	0x00, 0x5a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00
};
static const uint8_t req_ipv4[] = {
	0x04, 0x01, 0x00, 0x19, 0xc0, 0x00, 0x02, 0x07, 0x00
};
static const char greeting[] = "220 mx.example.org ESMTP\r\n";

struct reply_case {
	const char	*name;
	bool		 remote;
	const char	*host;
	const uint8_t	*bytes;
	size_t		 len;
	enum pst_step	 want;
	int		 detail;
	const char	*text;		/* the whole error text */
};

static const struct reply_case replies[] = {
	{ "granted", false, "192.0.2.7",
	  BL(0x00, 0x5a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00),
	  PST_STEP_DONE, 0, NULL },
	{ "granted with a bound address", false, "192.0.2.7",
	  BL(0x00, 0x5a, 0x04, 0x38, 0xc6, 0x33, 0x64, 0x01),
	  PST_STEP_DONE, 0, NULL },
	{ "91 rejected or failed", false, "192.0.2.7",
	  BL(0x00, 0x5b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00),
	  PST_STEP_FAIL, 91,
	  "CONNECT to 192.0.2.7:25: request rejected or failed (code 91)" },
	{ "91 for SOCKS4a names the name", true, "mx.example.org",
	  BL(0x00, 0x5b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00),
	  PST_STEP_FAIL, 91,
	  "SOCKS4a CONNECT to mx.example.org:25: request rejected or failed "
	  "(code 91)" },
	{ "92 no identd", false, "192.0.2.7",
	  BL(0x00, 0x5c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00),
	  PST_STEP_FAIL, 92,
	  "CONNECT to 192.0.2.7:25: request rejected: the proxy cannot "
	  "reach identd on this host (code 92)" },
	{ "93 identd user mismatch", false, "192.0.2.7",
	  BL(0x00, 0x5d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00),
	  PST_STEP_FAIL, 93,
	  "CONNECT to 192.0.2.7:25: request rejected: identd reports a "
	  "different user id (code 93)" },
	{ "an unknown code", false, "192.0.2.7",
	  BL(0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00),
	  PST_STEP_FAIL, 0,
	  "CONNECT to 192.0.2.7:25: unknown reply code (code 0)" },
	{ "version 4 instead of 0", false, "192.0.2.7",
	  BL(0x04, 0x5a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00),
	  PST_STEP_FAIL, 0,
	  "reply version 4, expected 0 (not a SOCKS4 proxy?)" },
	{ "a SOCKS5 proxy's method reply", false, "192.0.2.7",
	  BL(0x05, 0xff), PST_STEP_FAIL, 0,
	  "reply version 5, expected 0 (not a SOCKS4 proxy?)" },
	{ "an SMTP greeting instead of a reply", false, "192.0.2.7",
	  BL('2', '2', '0', ' '), PST_STEP_FAIL, 0,
	  "reply version 50, expected 0 (not a SOCKS4 proxy?)" },
};

START_TEST(socks4_reply_is_parsed_exactly)
{
	const struct reply_case *c = &replies[_i];
	struct pst_hop hop = pm_hop(PST_HOP_SOCKS4, "", "", c->remote);
	struct pm m;

	pm_open(&m, &pst_socks4_ops);
	ck_assert_int_eq(pm_begin(&m, &hop, c->host, 25), 0);
	evbuffer_drain(m.out, evbuffer_get_length(m.out));
	ck_assert_msg(pm_feed(&m, c->bytes, c->len) == c->want, "%s: %s",
	    c->name, m.err.text);
	if (c->want == PST_STEP_DONE)
		ck_assert_uint_eq(evbuffer_get_length(m.in), 0);
	else {
		ck_assert_str_eq(m.err.text, c->text);
		ck_assert_int_eq(m.err.detail, c->detail);
		ck_assert_int_eq(m.err.cls, PST_TEMP);
	}
	ck_assert_uint_eq(evbuffer_get_length(m.out), 0);
	pm_close(&m);
}
END_TEST

/* A refusal is reported as soon as the code is in, not after 8 bytes. */
START_TEST(socks4_refusal_fails_without_waiting_for_the_rest)
{
	struct pst_hop hop = pm_hop(PST_HOP_SOCKS4, "", "", false);
	struct pm m;

	pm_open(&m, &pst_socks4_ops);
	ck_assert_int_eq(pm_begin(&m, &hop, "192.0.2.7", 25), 0);
	ck_assert_int_eq(pm_feed(&m, B(0x00), 1), PST_STEP_MORE);
	ck_assert_int_eq(pm_feed(&m, B(0x5b), 1), PST_STEP_FAIL);
	ck_assert_int_eq(m.err.detail, 91);
	/* And it stays failed. */
	ck_assert_int_eq(pm_feed(&m, NULL, 0), PST_STEP_FAIL);
	pm_close(&m);
}
END_TEST

START_TEST(socks4_reply_cut_anywhere_leaves_the_greeting)
{
	struct pst_hop hop = pm_hop(PST_HOP_SOCKS4, "", "", false);
	struct pm m;

	pm_open(&m, &pst_socks4_ops);
	pm_exchange(&m, &hop, "192.0.2.7", 25, req_ipv4, sizeof(req_ipv4),
	    granted, sizeof(granted), greeting, (size_t)_i, PST_STEP_DONE);
	pm_close(&m);
}
END_TEST

START_TEST(socks4_reply_one_byte_at_a_time)
{
	struct pst_hop hop = pm_hop(PST_HOP_SOCKS4, "", "", false);
	struct pm m;

	pm_open(&m, &pst_socks4_ops);
	pm_exchange_bytewise(&m, &hop, "192.0.2.7", 25, req_ipv4,
	    sizeof(req_ipv4), granted, sizeof(granted), PST_STEP_DONE);
	/* Once done, it stays done and takes nothing more. */
	evbuffer_add(m.in, greeting, strlen(greeting));
	ck_assert_int_eq(pm_feed(&m, NULL, 0), PST_STEP_DONE);
	pm_expect_in(&m, greeting, strlen(greeting));
	pm_close(&m);
}
END_TEST

START_TEST(socks4_is_the_socks4_kind_and_ipv4_only)
{
	ck_assert_ptr_eq(pst_proxy_ops_for(PST_HOP_SOCKS4), &pst_socks4_ops);
	ck_assert_str_eq(pst_socks4_ops.name, "socks4");
	ck_assert_uint_eq(pst_socks4_ops.flags & PST_PROXY_F_IPV4_ONLY,
	    PST_PROXY_F_IPV4_ONLY);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("net/socks4");
	TCase *req = tcase_create("request");
	TCase *rep = tcase_create("reply");

	tcase_add_loop_test(req, socks4_request_bytes_are_exact, 0,
	    NELEMS(requests));
	tcase_add_loop_test(req, socks4_begin_refuses_what_it_cannot_send, 0,
	    NELEMS(refusals));
	tcase_add_test(req, socks4_begin_refuses_a_name_longer_than_255_bytes);
	tcase_add_test(req, socks4_is_the_socks4_kind_and_ipv4_only);
	suite_add_tcase(s, req);

	tcase_add_loop_test(rep, socks4_reply_is_parsed_exactly, 0,
	    NELEMS(replies));
	tcase_add_test(rep, socks4_refusal_fails_without_waiting_for_the_rest);
	tcase_add_loop_test(rep, socks4_reply_cut_anywhere_leaves_the_greeting,
	    0, sizeof(granted) + 1);
	tcase_add_test(rep, socks4_reply_one_byte_at_a_time);
	suite_add_tcase(s, rep);
	return s;
}
