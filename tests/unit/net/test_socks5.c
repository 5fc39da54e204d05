/*
 * test_socks5.c: the SOCKS5 byte machine (RFC 1928, RFC 1929).
 *
 * Request vectors are the RFC's fields byte for byte: the method offer
 * (section 3), the username/password request (RFC 1929 section 2) and
 * CONNECT for ATYP 1, 3 and 4 (section 4).  Every reply form is checked
 * (section 6: ATYP 1, 3 and 4 of their exact lengths), each REP code,
 * hostile versions, methods and address types, and whole conversations
 * cut at every byte with an SMTP greeting behind them.  Two dials go
 * through the real chain runner to a fake proxy on loopback.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "common/err.h"
#include "net/dial.h"
#include "net/proxy.h"
#include "proxytest.h"
#include "unit.h"

/* A byte string literal and its length, NULs included. */
#define S(lit)	((const uint8_t *)(lit)), (sizeof(lit) - 1)

#define OFFER_NONE	"\x05\x01\x00"
#define OFFER_BOTH	"\x05\x02\x00\x02"
#define AUTH_BOB	"\x01\x03" "bob" "\x06" "secret"
#define REQ_IPV4	"\x05\x01\x00\x01\xc0\x00\x02\x07\x00\x19"
#define REQ_NAME	"\x05\x01\x00\x03\x0e" "mx.example.org" "\x00\x19"
#define REQ_IPV6	"\x05\x01\x00\x04" \
			"\x20\x01\x0d\xb8\x00\x00\x00\x00" \
			"\x00\x00\x00\x00\x00\x00\x00\x05" "\x02\x4b"
#define REP_OK_IPV4	"\x05\x00\x00\x01\xc6\x33\x64\x01\x04\x38"
#define REP_OK_IPV6	"\x05\x00\x00\x04" \
			"\x20\x01\x0d\xb8\x00\x00\x00\x00" \
			"\x00\x00\x00\x00\x00\x00\x00\x01" "\x04\x38"
#define REP_OK_NAME	"\x05\x00\x00\x03\x0d" "proxy.example" "\x04\x38"
#define GREETING	"220 mx.example.org ESMTP\r\n"

/* ---- requests --------------------------------------------------------- */

struct request_case {
	const char	*name;
	const char	*user;
	const char	*password;
	bool		 remote;
	const char	*host;
	uint16_t	 port;
	const uint8_t	*offer;
	size_t		 offer_len;
	const uint8_t	*auth;		/* NULL: none */
	size_t		 auth_len;
	const uint8_t	*req;
	size_t		 req_len;
};

static const struct request_case requests[] = {
	{ "no auth, IPv4", "", "", false, "192.0.2.7", 25,
	  S(OFFER_NONE), NULL, 0, S(REQ_IPV4) },
	{ "no auth, IPv6 with port 587", "", "", false, "2001:db8::5", 587,
	  S(OFFER_NONE), NULL, 0, S(REQ_IPV6) },
	{ "no auth, IPv6 scope dropped", "", "", false, "2001:db8::5%lo",
	  587, S(OFFER_NONE), NULL, 0, S(REQ_IPV6) },
	{ "no auth, name (socks5h)", "", "", true, "mx.example.org", 25,
	  S(OFFER_NONE), NULL, 0, S(REQ_NAME) },
	{ "socks5h given an address sends the address", "", "", true,
	  "192.0.2.7", 25, S(OFFER_NONE), NULL, 0, S(REQ_IPV4) },
	{ "user and password, name", "bob", "secret", true, "mx.example.org",
	  25, S(OFFER_BOTH), S(AUTH_BOB), S(REQ_NAME) },
	{ "user and empty password, IPv4", "bob", "", false, "192.0.2.7", 25,
	  S(OFFER_BOTH), S("\x01\x03" "bob" "\x00"), S(REQ_IPV4) },
	{ "password without user: no auth offered", "", "secret", false,
	  "192.0.2.7", 25, S(OFFER_NONE), NULL, 0, S(REQ_IPV4) },
};

START_TEST(socks5_request_bytes_are_exact)
{
	const struct request_case *c = &requests[_i];
	struct pst_hop hop = pm_hop(PST_HOP_SOCKS5, c->user, c->password,
	    c->remote);
	struct pm m;

	pm_open(&m, &pst_socks5_ops);
	ck_assert_msg(pm_begin(&m, &hop, c->host, c->port) == 0, "%s: %s",
	    c->name, m.err.text);
	pm_expect_out(&m, c->offer, c->offer_len);
	ck_assert_int_eq(pm_feed(&m, NULL, 0), PST_STEP_MORE);
	ck_assert_uint_eq(evbuffer_get_length(m.out), 0);
	if (c->auth != NULL) {
		ck_assert_int_eq(pm_feed(&m, S("\x05\x02")), PST_STEP_MORE);
		pm_expect_out(&m, c->auth, c->auth_len);
		ck_assert_int_eq(pm_feed(&m, S("\x01\x00")), PST_STEP_MORE);
	} else
		ck_assert_int_eq(pm_feed(&m, S("\x05\x00")), PST_STEP_MORE);
	pm_expect_out(&m, c->req, c->req_len);
	ck_assert_int_eq(pm_feed(&m, S(REP_OK_IPV4)), PST_STEP_DONE);
	ck_assert_uint_eq(evbuffer_get_length(m.in), 0);
	pm_close(&m);
}
END_TEST

/* RFC 1929: ULEN and PLEN are one byte each; 255 is the most. */
START_TEST(socks5_longest_credentials_are_sent_whole)
{
	struct pst_hop hop = pm_hop(PST_HOP_SOCKS5, "", "", false);
	uint8_t want[3 + 2 * 255];
	struct pm m;

	memset(hop.user, 'u', 255);
	memset(hop.password, 'p', 255);
	want[0] = 0x01;
	want[1] = 0xff;
	memset(want + 2, 'u', 255);
	want[257] = 0xff;
	memset(want + 258, 'p', 255);
	pm_open(&m, &pst_socks5_ops);
	ck_assert_int_eq(pm_begin(&m, &hop, "192.0.2.7", 25), 0);
	pm_expect_out(&m, S(OFFER_BOTH));
	ck_assert_int_eq(pm_feed(&m, S("\x05\x02")), PST_STEP_MORE);
	pm_expect_out(&m, want, sizeof(want));
	pm_close(&m);
}
END_TEST

/* The longest valid name (253 bytes) fits the one-byte length. */
START_TEST(socks5_longest_name_is_sent_whole)
{
	struct pst_hop hop = pm_hop(PST_HOP_SOCKS5, "", "", true);
	char name[254];
	uint8_t want[5 + 253 + 2];
	struct pm m;
	size_t i;

	/* Four labels of 63 and a dot between each: 4 * 63 + 3 = 255; trim
	 * the last label to 61 for 253. */
	memset(name, 'a', sizeof(name) - 1);
	for (i = 63; i < 253; i += 64)
		name[i] = '.';
	name[253] = '\0';
	ck_assert_uint_eq(strlen(name), 253);
	memcpy(want, "\x05\x01\x00\x03\xfd", 5);
	memcpy(want + 5, name, 253);
	want[258] = 0x00;
	want[259] = 0x19;
	pm_open(&m, &pst_socks5_ops);
	ck_assert_msg(pm_begin(&m, &hop, name, 25) == 0, "%s", m.err.text);
	pm_expect_out(&m, S(OFFER_NONE));
	ck_assert_int_eq(pm_feed(&m, S("\x05\x00")), PST_STEP_MORE);
	pm_expect_out(&m, want, sizeof(want));
	pm_close(&m);
}
END_TEST

/* CVE-2023-38545: too long a name is an error, not a local lookup. */
START_TEST(socks5_name_over_255_bytes_is_an_error)
{
	struct pst_hop hop = pm_hop(PST_HOP_SOCKS5, "", "", true);
	char name[400];
	struct pm m;
	size_t len;

	pm_open(&m, &pst_socks5_ops);
	for (len = 254; len < sizeof(name); len += 50) {
		memset(name, 'a', len);
		name[len] = '\0';
		ck_assert_int_eq(pm_begin(&m, &hop, name, 25), -1);
		ck_assert_int_eq(m.err.cls, PST_LOCAL);
		ck_assert_int_eq(m.err.stage, PST_STAGE_PROXY);
		ck_assert_uint_eq(evbuffer_get_length(m.out), 0);
	}
	ck_assert_str_eq(m.err.text,
	    "target name longer than 255 bytes for the socks5 proxy");
	pm_close(&m);
}
END_TEST

START_TEST(socks5_name_without_remote_resolve_is_refused)
{
	struct pst_hop hop = pm_hop(PST_HOP_SOCKS5, "", "", false);
	struct pm m;

	pm_open(&m, &pst_socks5_ops);
	ck_assert_int_eq(pm_begin(&m, &hop, "mx.example.org", 25), -1);
	ck_assert_int_eq(m.err.cls, PST_LOCAL);
	ck_assert_str_eq(m.err.text, "target mx.example.org for the socks5 "
	    "proxy is a name, but this proxy does not resolve names (an "
	    "address was expected)");
	ck_assert_uint_eq(evbuffer_get_length(m.out), 0);
	pm_close(&m);
}
END_TEST

/* ---- whole conversations, cut ----------------------------------------- */

struct conversation {
	const char	*name;
	const char	*user;
	const char	*password;
	bool		 remote;
	const char	*host;
	uint16_t	 port;
	const uint8_t	*cli;
	size_t		 cli_len;
	const uint8_t	*srv;
	size_t		 srv_len;
};

static const struct conversation conversations[] = {
	{ "no auth, IPv4, ATYP 1 reply", "", "", false, "192.0.2.7", 25,
	  S(OFFER_NONE REQ_IPV4), S("\x05\x00" REP_OK_IPV4) },
	{ "auth, name, ATYP 4 reply", "bob", "secret", true,
	  "mx.example.org", 25,
	  S(OFFER_BOTH AUTH_BOB REQ_NAME),
	  S("\x05\x02" "\x01\x00" REP_OK_IPV6) },
	{ "auth offered, none chosen, IPv6, ATYP 3 reply", "bob", "secret",
	  false, "2001:db8::5", 587,
	  S(OFFER_BOTH REQ_IPV6), S("\x05\x00" REP_OK_NAME) },
	{ "ATYP 3 reply with an empty name", "", "", true, "mx.example.org",
	  25, S(OFFER_NONE REQ_NAME),
	  S("\x05\x00" "\x05\x00\x00\x03\x00\x04\x38") },
};

START_TEST(socks5_conversation_cut_at_every_byte)
{
	const struct conversation *c = &conversations[_i];
	struct pst_hop hop = pm_hop(PST_HOP_SOCKS5, c->user, c->password,
	    c->remote);
	struct pm m;
	size_t cut;

	pm_open(&m, &pst_socks5_ops);
	for (cut = 0; cut <= c->srv_len; cut++)
		pm_exchange(&m, &hop, c->host, c->port, c->cli, c->cli_len,
		    c->srv, c->srv_len, GREETING, cut, PST_STEP_DONE);
	pm_close(&m);
}
END_TEST

START_TEST(socks5_conversation_one_byte_at_a_time)
{
	const struct conversation *c = &conversations[_i];
	struct pst_hop hop = pm_hop(PST_HOP_SOCKS5, c->user, c->password,
	    c->remote);
	struct pm m;

	pm_open(&m, &pst_socks5_ops);
	pm_exchange_bytewise(&m, &hop, c->host, c->port, c->cli, c->cli_len,
	    c->srv, c->srv_len, PST_STEP_DONE);
	pm_close(&m);
}
END_TEST

/* ---- failures --------------------------------------------------------- */

struct failure_case {
	const char	*name;
	const char	*user;		/* "bob": offer user/password */
	const char	*host;
	const uint8_t	*srv;
	size_t		 srv_len;
	int		 detail;
	const char	*text;
};

static const struct failure_case failures[] = {
	{ "REP 1", "", "192.0.2.7", S("\x05\x00" "\x05\x01"), 1,
	  "CONNECT to 192.0.2.7:25 failed: general SOCKS server failure "
	  "(code 1)" },
	{ "REP 2", "", "192.0.2.7", S("\x05\x00" "\x05\x02"), 2,
	  "CONNECT to 192.0.2.7:25 failed: connection not allowed by ruleset "
	  "(code 2)" },
	{ "REP 3", "", "192.0.2.7", S("\x05\x00" "\x05\x03"), 3,
	  "CONNECT to 192.0.2.7:25 failed: network unreachable (code 3)" },
	{ "REP 4, IPv6 target in brackets", "", "2001:db8::5",
	  S("\x05\x00" "\x05\x04"), 4,
	  "CONNECT to [2001:db8::5]:25 failed: host unreachable (code 4)" },
	{ "REP 5", "", "mx.example.org", S("\x05\x00" "\x05\x05"), 5,
	  "CONNECT to mx.example.org:25 failed: connection refused "
	  "(code 5)" },
	{ "REP 6", "", "192.0.2.7", S("\x05\x00" "\x05\x06"), 6,
	  "CONNECT to 192.0.2.7:25 failed: TTL expired (code 6)" },
	{ "REP 7", "", "192.0.2.7", S("\x05\x00" "\x05\x07"), 7,
	  "CONNECT to 192.0.2.7:25 failed: command not supported (code 7)" },
	{ "REP 8", "", "192.0.2.7", S("\x05\x00" "\x05\x08"), 8,
	  "CONNECT to 192.0.2.7:25 failed: address type not supported "
	  "(code 8)" },
	{ "REP 9, unassigned", "", "192.0.2.7", S("\x05\x00" "\x05\x09"), 9,
	  "CONNECT to 192.0.2.7:25 failed: unassigned reply code (code 9)" },
	{ "REP 255, unassigned", "", "192.0.2.7", S("\x05\x00" "\x05\xff"),
	  255, "CONNECT to 192.0.2.7:25 failed: unassigned reply code "
	  "(code 255)" },
	{ "CONNECT reply version 4", "", "192.0.2.7",
	  S("\x05\x00" "\x04"), 0,
	  "CONNECT reply version 4, expected 5" },
	{ "CONNECT reply ATYP 2", "", "192.0.2.7",
	  S("\x05\x00" "\x05\x00\x00\x02"), 0,
	  "CONNECT reply with unknown address type 2" },
	{ "CONNECT reply ATYP 0", "", "192.0.2.7",
	  S("\x05\x00" "\x05\x00\x00\x00"), 0,
	  "CONNECT reply with unknown address type 0" },
	{ "no acceptable methods, none offered but no-auth", "", "192.0.2.7",
	  S("\x05\xff"), 255,
	  "method selection: no acceptable methods (code 255): the proxy "
	  "wants authentication, and no user is set" },
	{ "no acceptable methods, username/password offered", "bob",
	  "192.0.2.7", S("\x05\xff"), 255,
	  "method selection: no acceptable methods (code 255): the proxy "
	  "takes neither no authentication nor username/password" },
	{ "username/password chosen but not offered", "", "192.0.2.7",
	  S("\x05\x02"), 2,
	  "method selection: the proxy chose method 0x02, which was not "
	  "offered" },
	{ "GSSAPI chosen", "bob", "192.0.2.7", S("\x05\x01"), 1,
	  "method selection: the proxy chose method 0x01, which was not "
	  "offered" },
	{ "method reply version 4", "", "192.0.2.7", S("\x04"), 0,
	  "method reply version 4, expected 5 (not a SOCKS5 proxy?)" },
	{ "an HTTP proxy's answer", "", "192.0.2.7", S("H"), 0,
	  "method reply version 72, expected 5 (not a SOCKS5 proxy?)" },
	{ "a SOCKS4 reply", "", "192.0.2.7", S("\x00"), 0,
	  "method reply version 0, expected 5 (not a SOCKS5 proxy?)" },
	{ "authentication failed", "bob", "192.0.2.7",
	  S("\x05\x02" "\x01\x01"), 1,
	  "username/password authentication failed (status 1)" },
	{ "authentication failed, status 255", "bob", "192.0.2.7",
	  S("\x05\x02" "\x01\xff"), 255,
	  "username/password authentication failed (status 255)" },
	{ "authentication reply version 5", "bob", "192.0.2.7",
	  S("\x05\x02" "\x05"), 0,
	  "username/password reply version 5, expected 1" },
};

START_TEST(socks5_failure_names_step_and_code)
{
	const struct failure_case *c = &failures[_i];
	struct pst_hop hop = pm_hop(PST_HOP_SOCKS5, c->user,
	    c->user[0] != '\0' ? "secret" : "", true);
	enum pst_step step = PST_STEP_MORE;
	struct pm m;
	size_t i;

	pm_open(&m, &pst_socks5_ops);
	ck_assert_int_eq(pm_begin(&m, &hop, c->host, 25), 0);
	/* Byte by byte: each vector ends with the byte that decides, and
	 * the failure comes with it, not later. */
	for (i = 0; i < c->srv_len && step == PST_STEP_MORE; i++)
		step = pm_feed(&m, c->srv + i, 1);
	ck_assert_msg(step == PST_STEP_FAIL, "%s: step %d", c->name, step);
	ck_assert_uint_eq(i, c->srv_len);
	ck_assert_str_eq(m.err.text, c->text);
	ck_assert_int_eq(m.err.detail, c->detail);
	ck_assert_int_eq(m.err.cls, PST_TEMP);
	ck_assert_int_eq(m.err.stage, PST_STAGE_PROXY);
	ck_assert_int_eq(pm_feed(&m, NULL, 0), PST_STEP_FAIL);
	pm_close(&m);
}
END_TEST

/* The credentials leave the context as soon as they are written out. */
START_TEST(socks5_credentials_are_wiped_once_sent)
{
	struct pst_hop hop = pm_hop(PST_HOP_SOCKS5, "bob", "s3cr3t-pw",
	    false);
	struct pm m;

	pm_open(&m, &pst_socks5_ops);
	ck_assert_int_eq(pm_begin(&m, &hop, "192.0.2.7", 25), 0);
	ck_assert_ptr_nonnull(memmem(m.ctx, pst_socks5_ops.ctx_size,
	    "s3cr3t-pw", 9));
	ck_assert_int_eq(pm_feed(&m, S("\x05\x02")), PST_STEP_MORE);
	ck_assert_ptr_null(memmem(m.ctx, pst_socks5_ops.ctx_size,
	    "s3cr3t-pw", 9));
	ck_assert_ptr_null(memmem(m.ctx, pst_socks5_ops.ctx_size, "bob", 3));

	/* Also when the proxy wants no authentication at all. */
	ck_assert_int_eq(pm_begin(&m, &hop, "192.0.2.7", 25), 0);
	ck_assert_int_eq(pm_feed(&m, S("\x05\x00")), PST_STEP_MORE);
	ck_assert_ptr_null(memmem(m.ctx, pst_socks5_ops.ctx_size,
	    "s3cr3t-pw", 9));
	pm_close(&m);
}
END_TEST

START_TEST(socks5_is_the_socks5_kind)
{
	ck_assert_ptr_eq(pst_proxy_ops_for(PST_HOP_SOCKS5), &pst_socks5_ops);
	ck_assert_str_eq(pst_socks5_ops.name, "socks5");
	ck_assert_uint_eq(pst_socks5_ops.flags, 0);
}
END_TEST

/* ---- through the chain runner, over loopback -------------------------- */

static const struct pt_step socks5h_auth_script[] = {
	{ PT_EXPECT, S(OFFER_BOTH) },
	{ PT_SEND, S("\x05\x02") },
	{ PT_EXPECT, S(AUTH_BOB) },
	{ PT_SEND, S("\x01\x00") },
	{ PT_EXPECT, S(REQ_NAME) },
	/* The reply and the upstream's greeting in one segment. */
	{ PT_SEND, S("\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38" GREETING) },
	{ PT_END, NULL, 0 },
};

START_TEST(dial_socks5h_sends_the_name_and_hands_over_the_greeting)
{
	struct pst_dial_plan plan;
	struct pst_hop hop = pm_hop(PST_HOP_SOCKS5, "bob", "secret", true);
	struct pt_outcome o;
	struct pt_proxy p;
	struct pst_err err;
	char buf[128];

	pt_proxy_open(&p, socks5h_auth_script);
	hop.port = p.port;
	ck_assert_int_eq(pst_dial_plan_init(&plan, "mx.example.org", 25,
	    &err), 0);
	ck_assert_msg(pst_dial_plan_add_hop(&plan, &hop, &err) == 0, "%s",
	    err.text);
	pt_dial(&plan, &o, 5000);
	ck_assert_msg(!o.failed, "%s", o.err.text);
	ck_assert_str_eq(p.bad, "");
	ck_assert_int_eq(p.finished, 1);
	ck_assert_uint_eq(o.nhops, 1);
	ck_assert_str_eq(pt_input_text(o.bev, buf, sizeof(buf)), GREETING);
	/* No DNS leak: the name went to the proxy only. */
	ck_assert_int_eq(pt_lookups(), 0);
	pt_outcome_free(&o);
	pt_proxy_close(&p);
}
END_TEST

static const struct pt_step socks5_local_script[] = {
	{ PT_EXPECT, S(OFFER_NONE) },
	{ PT_SEND, S("\x05\x00") },
	/* target.invalid is 192.0.2.7 to the stand-in resolver. */
	{ PT_EXPECT, S(REQ_IPV4) },
	{ PT_SEND, S("\x05\x00\x00\x04") },
	{ PT_SEND, S("\x20\x01\x0d\xb8\x00\x00\x00\x00"
	    "\x00\x00\x00\x00\x00\x00\x00\x01" "\x04") },
	{ PT_SEND, S("\x38" "220 ") },
	{ PT_SEND, S("ready\r\n") },
	{ PT_END, NULL, 0 },
};

START_TEST(dial_socks5_resolves_here_and_sends_the_address)
{
	struct pst_dial_plan plan;
	struct pst_hop hop = pm_hop(PST_HOP_SOCKS5, "", "", false);
	struct pt_outcome o;
	struct pt_proxy p;
	struct pst_err err;
	char buf[128];
	int i;

	pt_proxy_open(&p, socks5_local_script);
	hop.port = p.port;
	ck_assert_int_eq(pst_dial_plan_init(&plan, "target.invalid", 25,
	    &err), 0);
	ck_assert_int_eq(pst_dial_plan_add_hop(&plan, &hop, &err), 0);
	pt_dial(&plan, &o, 5000);
	ck_assert_msg(!o.failed, "%s", o.err.text);
	ck_assert_str_eq(p.bad, "");
	ck_assert_int_eq(pt_lookups(), 1);
	/* The greeting may still be on its way; wait for all of it. */
	for (i = 0; i < 100 &&
	    evbuffer_get_length(bufferevent_get_input(o.bev)) < 11; i++)
		pt_run_until(NULL, 20);
	ck_assert_str_eq(pt_input_text(o.bev, buf, sizeof(buf)),
	    "220 ready\r\n");
	pt_outcome_free(&o);
	pt_proxy_close(&p);
}
END_TEST

static const struct pt_step socks5_refused_script[] = {
	{ PT_EXPECT, S(OFFER_NONE) },
	{ PT_SEND, S("\x05\x00") },
	{ PT_EXPECT, S(REQ_NAME) },
	{ PT_SEND, S("\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00") },
	{ PT_END, NULL, 0 },
};

START_TEST(dial_socks5_refusal_names_proxy_step_and_code)
{
	struct pst_dial_plan plan;
	struct pst_hop hop = pm_hop(PST_HOP_SOCKS5, "", "", true);
	struct pt_outcome o;
	struct pt_proxy p;
	struct pst_err err;
	char want[256];

	pt_proxy_open(&p, socks5_refused_script);
	hop.port = p.port;
	ck_assert_int_eq(pst_dial_plan_init(&plan, "mx.example.org", 25,
	    &err), 0);
	ck_assert_int_eq(pst_dial_plan_add_hop(&plan, &hop, &err), 0);
	pt_dial(&plan, &o, 5000);
	ck_assert(o.failed);
	snprintf(want, sizeof(want), "socks5 proxy 127.0.0.1:%u: CONNECT to "
	    "mx.example.org:25 failed: connection refused (code 5)", p.port);
	ck_assert_str_eq(o.err.text, want);
	ck_assert_int_eq(o.err.cls, PST_TEMP);
	ck_assert_int_eq(o.err.stage, PST_STAGE_PROXY);
	ck_assert_int_eq(o.err.detail, 5);
	pt_proxy_close(&p);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("net/socks5");
	TCase *req = tcase_create("request");
	TCase *conv = tcase_create("conversation");
	TCase *fail = tcase_create("failure");
	TCase *dial = tcase_create("dial");

	tcase_add_loop_test(req, socks5_request_bytes_are_exact, 0,
	    NELEMS(requests));
	tcase_add_test(req, socks5_longest_credentials_are_sent_whole);
	tcase_add_test(req, socks5_longest_name_is_sent_whole);
	tcase_add_test(req, socks5_name_over_255_bytes_is_an_error);
	tcase_add_test(req, socks5_name_without_remote_resolve_is_refused);
	tcase_add_test(req, socks5_is_the_socks5_kind);
	suite_add_tcase(s, req);

	tcase_add_loop_test(conv, socks5_conversation_cut_at_every_byte, 0,
	    NELEMS(conversations));
	tcase_add_loop_test(conv, socks5_conversation_one_byte_at_a_time, 0,
	    NELEMS(conversations));
	suite_add_tcase(s, conv);

	tcase_add_loop_test(fail, socks5_failure_names_step_and_code, 0,
	    NELEMS(failures));
	tcase_add_test(fail, socks5_credentials_are_wiped_once_sent);
	suite_add_tcase(s, fail);

	tcase_add_checked_fixture(dial, pt_setup, pt_teardown);
	tcase_add_test(dial,
	    dial_socks5h_sends_the_name_and_hands_over_the_greeting);
	tcase_add_test(dial, dial_socks5_resolves_here_and_sends_the_address);
	tcase_add_test(dial, dial_socks5_refusal_names_proxy_step_and_code);
	suite_add_tcase(s, dial);
	return s;
}
