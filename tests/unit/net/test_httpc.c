/*
 * test_httpc.c: the HTTP CONNECT byte machine.
 *
 * Requests are checked byte for byte (authority-form target, Host, Basic
 * credentials with RFC 7617's own examples).  Responses cover what real
 * proxies send (200 with fields, HTTP/1.0, 407, tinyproxy's 401, 403),
 * the tolerated forms (LF line ends, obs-fold, an interim 100) and the
 * hostile ones: not HTTP at all, malformed status lines and fields,
 * control bytes, endless fields, over-long lines and blocks.  Good
 * responses are cut at every byte with an SMTP greeting behind them.  Two
 * dials go through the real chain runner to a fake proxy on loopback.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "common/err.h"
#include "net/dial.h"
#include "net/proxy.h"
#include "proxytest.h"
#include "unit.h"

#define GREETING	"220 mx.example.org ESMTP\r\n"
#define REQ_NAME	"CONNECT mx.example.org:25 HTTP/1.1\r\n" \
			"Host: mx.example.org:25\r\n\r\n"
#define REQ_BOB		"CONNECT mx.example.org:25 HTTP/1.1\r\n" \
			"Host: mx.example.org:25\r\n" \
			"Proxy-Authorization: Basic Ym9iOnNlY3JldA==\r\n\r\n"

/* ---- requests --------------------------------------------------------- */

struct request_case {
	const char	*name;
	const char	*user;
	const char	*password;
	const char	*host;
	uint16_t	 port;
	const char	*want;
};

static const struct request_case requests[] = {
	{ "a name", "", "", "mx.example.org", 25, REQ_NAME },
	{ "an IPv4 address", "", "", "192.0.2.7", 587,
	  "CONNECT 192.0.2.7:587 HTTP/1.1\r\nHost: 192.0.2.7:587\r\n\r\n" },
	{ "an IPv6 address in brackets", "", "", "2001:db8::5", 25,
	  "CONNECT [2001:db8::5]:25 HTTP/1.1\r\n"
	  "Host: [2001:db8::5]:25\r\n\r\n" },
	{ "an IPv6 address, scope dropped", "", "", "fe80::1%lo", 25,
	  "CONNECT [fe80::1]:25 HTTP/1.1\r\nHost: [fe80::1]:25\r\n\r\n" },
	{ "Basic credentials", "bob", "secret", "mx.example.org", 25,
	  REQ_BOB },
	{ "RFC 7617 section 2 example", "Aladdin", "open sesame",
	  "mx.example.org", 25,
	  "CONNECT mx.example.org:25 HTTP/1.1\r\nHost: mx.example.org:25\r\n"
	  "Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n" },
	{ "RFC 7617 section 2.1 example, UTF-8", "test", "123\xc2\xa3",
	  "mx.example.org", 25,
	  "CONNECT mx.example.org:25 HTTP/1.1\r\nHost: mx.example.org:25\r\n"
	  "Proxy-Authorization: Basic dGVzdDoxMjPCow==\r\n\r\n" },
	{ "a user with an empty password", "bob", "", "mx.example.org", 25,
	  "CONNECT mx.example.org:25 HTTP/1.1\r\nHost: mx.example.org:25\r\n"
	  "Proxy-Authorization: Basic Ym9iOg==\r\n\r\n" },
	{ "a password without a user sends nothing", "", "secret",
	  "mx.example.org", 25, REQ_NAME },
};

START_TEST(httpc_request_bytes_are_exact)
{
	const struct request_case *c = &requests[_i];
	struct pst_hop hop = pm_hop(PST_HOP_HTTP, c->user, c->password, true);
	struct pm m;

	pm_open(&m, &pst_httpc_ops);
	ck_assert_msg(pm_begin(&m, &hop, c->host, c->port) == 0, "%s: %s",
	    c->name, m.err.text);
	pm_expect_out(&m, c->want, strlen(c->want));
	ck_assert_int_eq(pm_feed(&m, NULL, 0), PST_STEP_MORE);
	pm_close(&m);
}
END_TEST

START_TEST(httpc_longest_credentials_are_encoded_whole)
{
	struct pst_hop hop = pm_hop(PST_HOP_HTTP, "", "", true);
	const char *field, *eol;
	struct pm m;
	char *req;

	memset(hop.user, 'u', 255);
	memset(hop.password, 'p', 255);
	pm_open(&m, &pst_httpc_ops);
	ck_assert_int_eq(pm_begin(&m, &hop, "mx.example.org", 25), 0);
	req = (char *)evbuffer_pullup(m.out, -1);
	req[evbuffer_get_length(m.out) - 1] = '\0';
	ck_assert_ptr_nonnull(field = strstr(req,
	    "Proxy-Authorization: Basic "));
	ck_assert_ptr_nonnull(eol = strchr(field, '\r'));
	/* 511 bytes of "user:password": 171 groups of 4. */
	ck_assert_int_eq((int)(eol - field) - 27, 684);
	pm_close(&m);
}
END_TEST

struct refuse_case {
	const char	*name;
	const char	*user;
	const char	*host;
	const char	*text;
};

static const struct refuse_case refusals[] = {
	{ "':' in the user name", "a:b", "mx.example.org",
	  "HTTP proxy user name contains ':', which Basic authentication "
	  "cannot carry" },
	{ "CRLF in the target: no header injection", "",
	  "mx.example.org\r\nX-Evil: 1",
	  "target \"mx.example.org??X-Evil: 1\" for the http proxy is not a "
	  "valid host name or IP address" },
	{ "a space in the target", "", "mx example",
	  "target \"mx example\" for the http proxy is not a valid host "
	  "name or IP address" },
};

START_TEST(httpc_begin_refuses_what_it_cannot_send)
{
	const struct refuse_case *c = &refusals[_i];
	struct pst_hop hop = pm_hop(PST_HOP_HTTP, c->user, "pw", true);
	struct pm m;

	pm_open(&m, &pst_httpc_ops);
	ck_assert_int_eq(pm_begin(&m, &hop, c->host, 25), -1);
	ck_assert_str_eq(m.err.text, c->text);
	ck_assert_int_eq(m.err.cls, PST_LOCAL);
	ck_assert_int_eq(m.err.stage, PST_STAGE_PROXY);
	ck_assert_uint_eq(evbuffer_get_length(m.out), 0);
	pm_close(&m);
}
END_TEST

START_TEST(httpc_is_the_http_kind)
{
	ck_assert_ptr_eq(pst_proxy_ops_for(PST_HOP_HTTP), &pst_httpc_ops);
	ck_assert_str_eq(pst_httpc_ops.name, "http");
	ck_assert_uint_eq(pst_httpc_ops.flags, 0);
}
END_TEST

/* ---- responses -------------------------------------------------------- */

struct response_case {
	const char	*name;
	bool		 creds;		/* sent bob:secret */
	const char	*reply;
	enum pst_step	 want;
	int		 detail;
	const char	*text;		/* the whole error text */
};

static const struct response_case responses[] = {
	{ "200 with fields", false,
	  "HTTP/1.1 200 Connection established\r\n"
	  "Proxy-Agent: tinyproxy/1.11.1\r\nVia: 1.1 proxy\r\n\r\n",
	  PST_STEP_DONE, 0, NULL },
	{ "HTTP/1.0 200", false,
	  "HTTP/1.0 200 Connection established\r\n\r\n",
	  PST_STEP_DONE, 0, NULL },
	{ "204 without a reason phrase", false, "HTTP/1.1 204\r\n\r\n",
	  PST_STEP_DONE, 0, NULL },
	{ "200 with an empty reason phrase", false, "HTTP/1.1 200 \r\n\r\n",
	  PST_STEP_DONE, 0, NULL },
	{ "LF line ends", false, "HTTP/1.1 200 OK\nVia: x\n\n",
	  PST_STEP_DONE, 0, NULL },
	{ "mixed line ends", false, "HTTP/1.1 200 OK\r\nVia: x\n\r\n",
	  PST_STEP_DONE, 0, NULL },
	{ "Content-Length on a 2xx means nothing", false,
	  "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
	  PST_STEP_DONE, 0, NULL },
	{ "obs-fold continues a field", false,
	  "HTTP/1.1 200 OK\r\nX-A: 1\r\n  more\r\n\tmore\r\n\r\n",
	  PST_STEP_DONE, 0, NULL },
	{ "an interim 100 first", false,
	  "HTTP/1.1 100 Continue\r\nX-A: 1\r\n\r\n"
	  "HTTP/1.1 200 OK\r\n\r\n", PST_STEP_DONE, 0, NULL },
	{ "with credentials, 200", true, "HTTP/1.1 200 OK\r\n\r\n",
	  PST_STEP_DONE, 0, NULL },
	{ "407 without credentials", false,
	  "HTTP/1.1 407 Proxy Authentication Required\r\n"
	  "Proxy-Authenticate: Basic realm=\"p\"\r\n\r\n", PST_STEP_FAIL, 407,
	  "CONNECT to mx.example.org:25: the proxy wants authentication, and "
	  "no user is set: 407 Proxy Authentication Required" },
	{ "407 with credentials", true,
	  "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
	  PST_STEP_FAIL, 407,
	  "CONNECT to mx.example.org:25: authentication failed: 407 Proxy "
	  "Authentication Required" },
	{ "401 with credentials (tinyproxy)", true,
	  "HTTP/1.0 401 Unauthorized\r\nServer: tinyproxy/1.11.1\r\n\r\n",
	  PST_STEP_FAIL, 401,
	  "CONNECT to mx.example.org:25: authentication failed: 401 "
	  "Unauthorized" },
	{ "403", false, "HTTP/1.1 403 Forbidden\r\n\r\n<html>no</html>",
	  PST_STEP_FAIL, 403,
	  "CONNECT to mx.example.org:25 refused: 403 Forbidden" },
	{ "502", false, "HTTP/1.1 502 Bad Gateway\r\n",
	  PST_STEP_FAIL, 502,
	  "CONNECT to mx.example.org:25 refused: 502 Bad Gateway" },
	{ "101 is no tunnel", false,
	  "HTTP/1.1 101 Switching Protocols\r\n\r\n", PST_STEP_FAIL, 101,
	  "CONNECT to mx.example.org:25 refused: 101 Switching Protocols" },
	{ "a reason phrase with non-ASCII bytes, sanitised", false,
	  "HTTP/1.1 403 Verboten \xc3\xa4\r\n", PST_STEP_FAIL, 403,
	  "CONNECT to mx.example.org:25 refused: 403 Verboten ??" },
	{ "an SSH banner", false, "SSH-2.0-OpenSSH_9.2\r\n", PST_STEP_FAIL, 0,
	  "CONNECT to mx.example.org:25: the reply is not HTTP (not an HTTP "
	  "proxy?)" },
	{ "an SMTP greeting", false, GREETING, PST_STEP_FAIL, 0,
	  "CONNECT to mx.example.org:25: the reply is not HTTP (not an HTTP "
	  "proxy?)" },
	{ "a SOCKS5 method reply", false, "\x05", PST_STEP_FAIL, 0,
	  "CONNECT to mx.example.org:25: the reply is not HTTP (not an HTTP "
	  "proxy?)" },
	{ "lower-case version", false, "http/1.1 200 OK\r\n\r\n",
	  PST_STEP_FAIL, 0,
	  "CONNECT to mx.example.org:25: the reply is not HTTP (not an HTTP "
	  "proxy?)" },
	{ "HTTP/2", false, "HTTP/2 200\r\n\r\n", PST_STEP_FAIL, 0,
	  "CONNECT to mx.example.org:25: not an HTTP/1 status line: "
	  "\"HTTP/2 200\"" },
	{ "four-digit status", false, "HTTP/1.1 2000 OK\r\n\r\n",
	  PST_STEP_FAIL, 0,
	  "CONNECT to mx.example.org:25: not an HTTP/1 status line: "
	  "\"HTTP/1.1 2000 OK\"" },
	{ "two-digit status", false, "HTTP/1.1 20 OK\r\n\r\n",
	  PST_STEP_FAIL, 0,
	  "CONNECT to mx.example.org:25: not an HTTP/1 status line: "
	  "\"HTTP/1.1 20 OK\"" },
	{ "status 600", false, "HTTP/1.1 600 Odd\r\n\r\n", PST_STEP_FAIL, 0,
	  "CONNECT to mx.example.org:25: not an HTTP/1 status line: "
	  "\"HTTP/1.1 600 Odd\"" },
	{ "two spaces", false, "HTTP/1.1  200 OK\r\n\r\n", PST_STEP_FAIL, 0,
	  "CONNECT to mx.example.org:25: not an HTTP/1 status line: "
	  "\"HTTP/1.1  200 OK\"" },
	{ "a field without a colon", false,
	  "HTTP/1.1 200 OK\r\nGarbage\r\n\r\n", PST_STEP_FAIL, 0,
	  "CONNECT to mx.example.org:25: malformed header line in the "
	  "response: \"Garbage\"" },
	{ "a space before the colon", false,
	  "HTTP/1.1 200 OK\r\nVia : x\r\n\r\n", PST_STEP_FAIL, 0,
	  "CONNECT to mx.example.org:25: malformed header line in the "
	  "response: \"Via : x\"" },
	{ "an empty field name", false, "HTTP/1.1 200 OK\r\n: x\r\n\r\n",
	  PST_STEP_FAIL, 0,
	  "CONNECT to mx.example.org:25: malformed header line in the "
	  "response: \": x\"" },
	{ "obs-fold before any field", false,
	  "HTTP/1.1 200 OK\r\n folded\r\n\r\n", PST_STEP_FAIL, 0,
	  "CONNECT to mx.example.org:25: malformed header line in the "
	  "response: \" folded\"" },
	{ "a bare CR in a field", false,
	  "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", PST_STEP_FAIL, 0,
	  "control byte 0x0d in the response" },
	{ "a bare CR ending the block", false,
	  "HTTP/1.1 200 OK\r\n\r\r\n", PST_STEP_FAIL, 0,
	  "control byte 0x0d in the response" },
	{ "an escape byte in a field", false,
	  "HTTP/1.1 200 OK\r\nX: \x1b[2J\r\n\r\n", PST_STEP_FAIL, 0,
	  "control byte 0x1b in the response" },
};

static size_t
reply_len(const struct response_case *c)
{
	return strlen(c->reply);
}

START_TEST(httpc_response_is_parsed_exactly)
{
	const struct response_case *c = &responses[_i];
	struct pst_hop hop = pm_hop(PST_HOP_HTTP, c->creds ? "bob" : "",
	    c->creds ? "secret" : "", true);
	struct pm m;
	struct evbuffer *b;
	enum pst_step step;

	pm_open(&m, &pst_httpc_ops);
	ck_assert_int_eq(pm_begin(&m, &hop, "mx.example.org", 25), 0);
	pm_expect_out(&m, c->creds ? REQ_BOB : REQ_NAME,
	    strlen(c->creds ? REQ_BOB : REQ_NAME));
	ck_assert_ptr_nonnull(b = evbuffer_new());
	evbuffer_add(b, c->reply, reply_len(c));
	evbuffer_add(b, GREETING, strlen(GREETING));
	step = pm_feed(&m, evbuffer_pullup(b, -1), evbuffer_get_length(b));
	evbuffer_free(b);
	ck_assert_msg(step == c->want, "%s: step %d (%s)", c->name, step,
	    m.err.text);
	if (c->want == PST_STEP_DONE)
		pm_expect_in(&m, GREETING, strlen(GREETING));
	else {
		ck_assert_str_eq(m.err.text, c->text);
		ck_assert_int_eq(m.err.detail, c->detail);
		ck_assert_int_eq(m.err.cls, PST_TEMP);
		ck_assert_int_eq(pm_feed(&m, NULL, 0), PST_STEP_FAIL);
	}
	ck_assert_uint_eq(evbuffer_get_length(m.out), 0);
	pm_close(&m);
}
END_TEST

START_TEST(httpc_response_cut_at_every_byte)
{
	const struct response_case *c = &responses[_i];
	struct pst_hop hop = pm_hop(PST_HOP_HTTP, c->creds ? "bob" : "",
	    c->creds ? "secret" : "", true);
	const char *req = c->creds ? REQ_BOB : REQ_NAME;
	size_t cut, len = reply_len(c);
	struct pm m;

	pm_open(&m, &pst_httpc_ops);
	for (cut = 0; cut <= len; cut++) {
		pm_exchange(&m, &hop, "mx.example.org", 25, req, strlen(req),
		    c->reply, len, GREETING, cut, c->want);
		if (c->want == PST_STEP_FAIL)
			ck_assert_str_eq(m.err.text, c->text);
	}
	pm_close(&m);
}
END_TEST

START_TEST(httpc_response_one_byte_at_a_time)
{
	const struct response_case *c = &responses[_i];
	struct pst_hop hop = pm_hop(PST_HOP_HTTP, c->creds ? "bob" : "",
	    c->creds ? "secret" : "", true);
	const char *req = c->creds ? REQ_BOB : REQ_NAME;
	struct pm m;

	pm_open(&m, &pst_httpc_ops);
	pm_exchange_bytewise(&m, &hop, "mx.example.org", 25, req, strlen(req),
	    c->reply, reply_len(c), c->want);
	if (c->want == PST_STEP_FAIL)
		ck_assert_str_eq(m.err.text, c->text);
	pm_close(&m);
}
END_TEST

START_TEST(httpc_nul_in_the_response_fails)
{
	static const char reply[] = "HTTP/1.1 200 O\0K\r\n\r\n";
	struct pst_hop hop = pm_hop(PST_HOP_HTTP, "", "", true);
	struct pm m;
	size_t cut;

	pm_open(&m, &pst_httpc_ops);
	for (cut = 0; cut < sizeof(reply); cut++) {
		pm_exchange(&m, &hop, "mx.example.org", 25, REQ_NAME,
		    strlen(REQ_NAME), reply, sizeof(reply) - 1, GREETING, cut,
		    PST_STEP_FAIL);
		ck_assert_str_eq(m.err.text,
		    "control byte 0x00 in the response");
	}
	pm_close(&m);
}
END_TEST

/* ---- bounds ----------------------------------------------------------- */

/* Feeds "HTTP/1.1 200 OK" and 'n' fields of 'flen' bytes, then "\r\n". */
static enum pst_step
feed_fields(struct pm *m, size_t n, size_t flen, bool end)
{
	struct evbuffer *b;
	enum pst_step step;
	char *field;
	size_t i;

	ck_assert_ptr_nonnull(b = evbuffer_new());
	ck_assert_ptr_nonnull(field = malloc(flen + 1));
	memset(field, 'v', flen);
	memcpy(field, "X-F: ", flen < 5 ? flen : 5);
	field[flen] = '\0';
	evbuffer_add_printf(b, "HTTP/1.1 200 OK\r\n");
	for (i = 0; i < n; i++)
		evbuffer_add_printf(b, "%s\r\n", field);
	if (end)
		evbuffer_add_printf(b, "\r\n%s", GREETING);
	step = pm_feed(m, evbuffer_pullup(b, -1), evbuffer_get_length(b));
	free(field);
	evbuffer_free(b);
	return step;
}

START_TEST(httpc_bounds_fields_lines_and_block)
{
	struct pst_hop hop = pm_hop(PST_HOP_HTTP, "", "", true);
	struct pm m;

	pm_open(&m, &pst_httpc_ops);

	/* 100 fields are fine; the 101st is one too many. */
	ck_assert_int_eq(pm_begin(&m, &hop, "mx.example.org", 25), 0);
	ck_assert_int_eq(feed_fields(&m, 100, 10, true), PST_STEP_DONE);
	pm_expect_in(&m, GREETING, strlen(GREETING));
	ck_assert_int_eq(pm_begin(&m, &hop, "mx.example.org", 25), 0);
	ck_assert_int_eq(feed_fields(&m, 101, 10, true), PST_STEP_FAIL);
	ck_assert_str_eq(m.err.text, "CONNECT to mx.example.org:25: more "
	    "than 100 header lines in the response");

	/* Endless fields, never an empty line: stopped at the bound. */
	ck_assert_int_eq(pm_begin(&m, &hop, "mx.example.org", 25), 0);
	ck_assert_int_eq(feed_fields(&m, 5000, 4, false), PST_STEP_FAIL);

	/* A line of 4096 bytes is fine; 4097 is too long. */
	ck_assert_int_eq(pm_begin(&m, &hop, "mx.example.org", 25), 0);
	ck_assert_int_eq(feed_fields(&m, 1, 4096, true), PST_STEP_DONE);
	ck_assert_int_eq(pm_begin(&m, &hop, "mx.example.org", 25), 0);
	ck_assert_int_eq(feed_fields(&m, 1, 4097, true), PST_STEP_FAIL);
	ck_assert_str_eq(m.err.text, "response line longer than 4096 bytes");

	/* Too long a line is seen before its end arrives. */
	ck_assert_int_eq(pm_begin(&m, &hop, "mx.example.org", 25), 0);
	ck_assert_int_eq(feed_fields(&m, 0, 0, false), PST_STEP_MORE);
	{
		char big[5000];

		memset(big, 'v', sizeof(big));
		memcpy(big, "X-F: ", 5);
		ck_assert_int_eq(pm_feed(&m, big, sizeof(big)),
		    PST_STEP_FAIL);
		ck_assert_str_eq(m.err.text,
		    "response line longer than 4096 bytes");
	}

	/* Lines within bounds but more than 8 KiB in all. */
	ck_assert_int_eq(pm_begin(&m, &hop, "mx.example.org", 25), 0);
	ck_assert_int_eq(feed_fields(&m, 3, 3000, true), PST_STEP_FAIL);
	ck_assert_str_eq(m.err.text,
	    "response header block longer than 8192 bytes");
	pm_close(&m);
}
END_TEST

/* ---- through the chain runner, over loopback -------------------------- */

#define S(lit)	(lit), (sizeof(lit) - 1)

static const struct pt_step http_ok_script[] = {
	{ PT_EXPECT, S(REQ_BOB) },
	{ PT_SEND, S("HTTP/1.1 200 Connection established\r\n"
	    "Proxy-Agent: fake\r\n\r\n" GREETING) },
	{ PT_END, NULL, 0 },
};

START_TEST(dial_http_connect_hands_over_the_greeting)
{
	struct pst_dial_plan plan;
	struct pst_hop hop = pm_hop(PST_HOP_HTTP, "bob", "secret", true);
	struct pt_outcome o;
	struct pt_proxy p;
	struct pst_err err;
	char buf[128];

	pt_proxy_open(&p, http_ok_script);
	hop.port = p.port;
	ck_assert_int_eq(pst_dial_plan_init(&plan, "mx.example.org", 25,
	    &err), 0);
	ck_assert_msg(pst_dial_plan_add_hop(&plan, &hop, &err) == 0, "%s",
	    err.text);
	pt_dial(&plan, &o, 5000);
	ck_assert_msg(!o.failed, "%s", o.err.text);
	ck_assert_str_eq(p.bad, "");
	ck_assert_int_eq(p.finished, 1);
	ck_assert_str_eq(pt_input_text(o.bev, buf, sizeof(buf)), GREETING);
	ck_assert_int_eq(pt_lookups(), 0);
	pt_outcome_free(&o);
	pt_proxy_close(&p);
}
END_TEST

static const struct pt_step http_407_script[] = {
	{ PT_EXPECT, S(REQ_BOB) },
	{ PT_SEND, S("HTTP/1.1 407 Proxy Authentication Required\r\n"
	    "Proxy-Authenticate: Basic realm=\"fake\"\r\n"
	    "Content-Length: 0\r\n\r\n") },
	{ PT_END, NULL, 0 },
};

START_TEST(dial_http_407_names_proxy_step_and_status)
{
	struct pst_dial_plan plan;
	struct pst_hop hop = pm_hop(PST_HOP_HTTP, "bob", "secret", true);
	struct pt_outcome o;
	struct pt_proxy p;
	struct pst_err err;
	char want[256];

	pt_proxy_open(&p, http_407_script);
	hop.port = p.port;
	ck_assert_int_eq(pst_dial_plan_init(&plan, "mx.example.org", 25,
	    &err), 0);
	ck_assert_int_eq(pst_dial_plan_add_hop(&plan, &hop, &err), 0);
	pt_dial(&plan, &o, 5000);
	ck_assert(o.failed);
	snprintf(want, sizeof(want), "http proxy 127.0.0.1:%u: CONNECT to "
	    "mx.example.org:25: authentication failed: 407 Proxy "
	    "Authentication Required", p.port);
	ck_assert_str_eq(o.err.text, want);
	ck_assert_int_eq(o.err.cls, PST_TEMP);
	ck_assert_int_eq(o.err.stage, PST_STAGE_PROXY);
	ck_assert_int_eq(o.err.detail, 407);
	pt_proxy_close(&p);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("net/httpc");
	TCase *req = tcase_create("request");
	TCase *rsp = tcase_create("response");
	TCase *dial = tcase_create("dial");

	tcase_add_loop_test(req, httpc_request_bytes_are_exact, 0,
	    NELEMS(requests));
	tcase_add_test(req, httpc_longest_credentials_are_encoded_whole);
	tcase_add_loop_test(req, httpc_begin_refuses_what_it_cannot_send, 0,
	    NELEMS(refusals));
	tcase_add_test(req, httpc_is_the_http_kind);
	suite_add_tcase(s, req);

	tcase_add_loop_test(rsp, httpc_response_is_parsed_exactly, 0,
	    NELEMS(responses));
	tcase_add_loop_test(rsp, httpc_response_cut_at_every_byte, 0,
	    NELEMS(responses));
	tcase_add_loop_test(rsp, httpc_response_one_byte_at_a_time, 0,
	    NELEMS(responses));
	tcase_add_test(rsp, httpc_nul_in_the_response_fails);
	tcase_add_test(rsp, httpc_bounds_fields_lines_and_block);
	suite_add_tcase(s, rsp);

	tcase_add_checked_fixture(dial, pt_setup, pt_teardown);
	tcase_add_test(dial, dial_http_connect_hands_over_the_greeting);
	tcase_add_test(dial, dial_http_407_names_proxy_step_and_status);
	suite_add_tcase(s, dial);
	return s;
}
