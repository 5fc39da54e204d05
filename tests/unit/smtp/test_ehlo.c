#include <stdint.h>
#include <string.h>

#include <event2/buffer.h>

#include "sasl/sasl.h"
#include "smtp/ehlo.h"
#include "smtp/reply.h"
#include "unit.h"

/* Big (64 KiB): one per test process, Check forks for each test. */
static struct pst_reply r;

static const struct pst_reply *
reply_of(const char *wire)
{
	struct evbuffer *in = evbuffer_new();
	struct pst_err err;

	pst_reply_reset(&r);
	evbuffer_add(in, wire, strlen(wire));
	ck_assert_int_eq(pst_reply_parse(in, &r, PST_STAGE_EHLO, &err), 1);
	evbuffer_free(in);
	return &r;
}

/* Shapes of real servers' answers; names and addresses changed. */
static const struct {
	const char	*who;
	const char	*wire;
	unsigned	 caps;
	uint64_t	 size;
	unsigned	 auth;
	const char	*offered;
	const char	*domain;
} servers[] = {
	{ "postfix before STARTTLS",
	    "250-mail.example.org\r\n"
	    "250-PIPELINING\r\n"
	    "250-SIZE 10240000\r\n"
	    "250-VRFY\r\n"
	    "250-ETRN\r\n"
	    "250-STARTTLS\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n"
	    "250-8BITMIME\r\n"
	    "250-DSN\r\n"
	    "250-SMTPUTF8\r\n"
	    "250 CHUNKING\r\n",
	    PST_EHLO_PIPELINING | PST_EHLO_SIZE | PST_EHLO_STARTTLS |
	    PST_EHLO_ENHANCEDSTATUSCODES | PST_EHLO_8BITMIME | PST_EHLO_DSN |
	    PST_EHLO_SMTPUTF8 | PST_EHLO_CHUNKING,
	    10240000, 0, "", "mail.example.org" },
	{ "postfix after STARTTLS, with both AUTH spellings",
	    "250-mail.example.org\r\n"
	    "250-PIPELINING\r\n"
	    "250-SIZE 10240000\r\n"
	    "250-ETRN\r\n"
	    "250-AUTH PLAIN LOGIN\r\n"
	    "250-AUTH=PLAIN LOGIN\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n"
	    "250-8BITMIME\r\n"
	    "250 DSN\r\n",
	    PST_EHLO_PIPELINING | PST_EHLO_SIZE | PST_EHLO_AUTH |
	    PST_EHLO_ENHANCEDSTATUSCODES | PST_EHLO_8BITMIME | PST_EHLO_DSN,
	    10240000, PST_SASL_PLAIN | PST_SASL_LOGIN, "PLAIN LOGIN",
	    "mail.example.org" },
	{ "exim",
	    "250-mx.example.net Hello client.example.com [192.0.2.1]\r\n"
	    "250-SIZE 52428800\r\n"
	    "250-8BITMIME\r\n"
	    "250-PIPELINING\r\n"
	    "250-PIPE_CONNECT\r\n"
	    "250-AUTH CRAM-MD5 PLAIN LOGIN\r\n"
	    "250-CHUNKING\r\n"
	    "250-STARTTLS\r\n"
	    "250-PRDR\r\n"
	    "250 HELP\r\n",
	    PST_EHLO_SIZE | PST_EHLO_8BITMIME | PST_EHLO_PIPELINING |
	    PST_EHLO_AUTH | PST_EHLO_CHUNKING | PST_EHLO_STARTTLS,
	    52428800, PST_SASL_CRAM_MD5 | PST_SASL_PLAIN | PST_SASL_LOGIN,
	    "CRAM-MD5 PLAIN LOGIN", "mx.example.net" },
	{ "gmail submission after STARTTLS",
	    "250-smtp.gmail.com at your service, [192.0.2.7]\r\n"
	    "250-SIZE 35882577\r\n"
	    "250-8BITMIME\r\n"
	    "250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER "
	    "XOAUTH\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n"
	    "250-PIPELINING\r\n"
	    "250-CHUNKING\r\n"
	    "250 SMTPUTF8\r\n",
	    PST_EHLO_SIZE | PST_EHLO_8BITMIME | PST_EHLO_AUTH |
	    PST_EHLO_ENHANCEDSTATUSCODES | PST_EHLO_PIPELINING |
	    PST_EHLO_CHUNKING | PST_EHLO_SMTPUTF8,
	    35882577, PST_SASL_LOGIN | PST_SASL_PLAIN | PST_SASL_XOAUTH2,
	    "LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH",
	    "smtp.gmail.com" },
	{ "office365 before STARTTLS",
	    "250-AM0PR01CA0001.outlook.office365.com Hello [192.0.2.9]\r\n"
	    "250-SIZE 157286400\r\n"
	    "250-PIPELINING\r\n"
	    "250-DSN\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n"
	    "250-STARTTLS\r\n"
	    "250-8BITMIME\r\n"
	    "250-BINARYMIME\r\n"
	    "250-CHUNKING\r\n"
	    "250 SMTPUTF8\r\n",
	    PST_EHLO_SIZE | PST_EHLO_PIPELINING | PST_EHLO_DSN |
	    PST_EHLO_ENHANCEDSTATUSCODES | PST_EHLO_STARTTLS |
	    PST_EHLO_8BITMIME | PST_EHLO_BINARYMIME | PST_EHLO_CHUNKING |
	    PST_EHLO_SMTPUTF8,
	    157286400, 0, "", "AM0PR01CA0001.outlook.office365.com" },
	{ "office365 after STARTTLS",
	    "250-AM0PR01CA0001.outlook.office365.com Hello [192.0.2.9]\r\n"
	    "250-SIZE 157286400\r\n"
	    "250-PIPELINING\r\n"
	    "250-DSN\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n"
	    "250-AUTH LOGIN XOAUTH2\r\n"
	    "250-8BITMIME\r\n"
	    "250-BINARYMIME\r\n"
	    "250-CHUNKING\r\n"
	    "250 SMTPUTF8\r\n",
	    PST_EHLO_SIZE | PST_EHLO_PIPELINING | PST_EHLO_DSN |
	    PST_EHLO_ENHANCEDSTATUSCODES | PST_EHLO_AUTH | PST_EHLO_8BITMIME |
	    PST_EHLO_BINARYMIME | PST_EHLO_CHUNKING | PST_EHLO_SMTPUTF8,
	    157286400, PST_SASL_LOGIN | PST_SASL_XOAUTH2, "LOGIN XOAUTH2",
	    "AM0PR01CA0001.outlook.office365.com" },
	{ "a server with SCRAM and REQUIRETLS",
	    "250-relay.example.org\r\n"
	    "250-AUTH SCRAM-SHA-256 SCRAM-SHA-256-PLUS SCRAM-SHA-1 "
	    "DIGEST-MD5\r\n"
	    "250-REQUIRETLS\r\n"
	    "250 SIZE\r\n",
	    PST_EHLO_AUTH | PST_EHLO_REQUIRETLS | PST_EHLO_SIZE, 0,
	    PST_SASL_SCRAM_SHA_256,
	    "SCRAM-SHA-256 SCRAM-SHA-256-PLUS SCRAM-SHA-1 DIGEST-MD5",
	    "relay.example.org" },
	{ "keywords in lower case",
	    "250-lower.example.org\r\n"
	    "250-size 1000\r\n"
	    "250-auth plain cram-md5\r\n"
	    "250-starttls\r\n"
	    "250 pipelining\r\n",
	    PST_EHLO_SIZE | PST_EHLO_AUTH | PST_EHLO_STARTTLS |
	    PST_EHLO_PIPELINING, 1000, PST_SASL_PLAIN | PST_SASL_CRAM_MD5,
	    "plain cram-md5", "lower.example.org" },
	{ "only the old AUTH= spelling",
	    "250-old.example.org\r\n"
	    "250 AUTH=LOGIN PLAIN\r\n",
	    PST_EHLO_AUTH, 0, PST_SASL_LOGIN | PST_SASL_PLAIN, "LOGIN PLAIN",
	    "old.example.org" },
	{ "look-alike keywords count for nothing",
	    "250-odd.example.org\r\n"
	    "250-AUTHX PLAIN\r\n"
	    "250-STARTTLSX\r\n"
	    "250-SIZE=100\r\n"
	    "250-X-EXPS GSSAPI NTLM\r\n"
	    "250-XCLIENT NAME ADDR\r\n"
	    "250-8BITMIMES\r\n"
	    "250-\r\n"
	    "250 PIPELINING\r\n",
	    PST_EHLO_PIPELINING, 0, 0, "", "odd.example.org" },
	{ "SIZE values that are no limit",
	    "250-sz.example.org\r\n"
	    "250-SIZE 0\r\n"
	    "250 SIZE 12abc\r\n",
	    PST_EHLO_SIZE, 0, 0, "", "sz.example.org" },
	{ "a SIZE too big for 64 bits",
	    "250-sz.example.org\r\n"
	    "250 SIZE 99999999999999999999\r\n",
	    PST_EHLO_SIZE, 0, 0, "", "sz.example.org" },
	{ "the largest SIZE taken",
	    "250-sz.example.org\r\n"
	    "250 SIZE 9999999999999999999\r\n",
	    PST_EHLO_SIZE, UINT64_C(9999999999999999999), 0, "",
	    "sz.example.org" },
	{ "one line, nothing offered",
	    "250 tiny.example.org\r\n",
	    0, 0, 0, "", "tiny.example.org" },
	{ "AUTH with no mechanisms, repeated names, extra spaces",
	    "250-a.example.org\r\n"
	    "250-AUTH\r\n"
	    "250-AUTH  LOGIN   login PLAIN \r\n"
	    "250 AUTH PLAIN XOAUTH2\r\n",
	    PST_EHLO_AUTH, 0, PST_SASL_LOGIN | PST_SASL_PLAIN |
	    PST_SASL_XOAUTH2, "LOGIN PLAIN XOAUTH2", "a.example.org" },
	{ "control bytes in the name are replaced",
	    "250-bad\x01name.example.org greets\r\n"
	    "250 8BITMIME\r\n",
	    PST_EHLO_8BITMIME, 0, 0, "", "bad?name.example.org" },
};

START_TEST(ehlo_real_servers)
{
	struct pst_ehlo e;
	struct pst_err err;

	ck_assert_int_eq(pst_ehlo_parse(reply_of(servers[_i].wire), &e, &err),
	    0);
	ck_assert_msg(e.caps == servers[_i].caps, "%s: caps %#x, want %#x",
	    servers[_i].who, e.caps, servers[_i].caps);
	ck_assert_msg(e.size_max == servers[_i].size, "%s: size",
	    servers[_i].who);
	ck_assert_msg(e.auth == servers[_i].auth, "%s: auth %#x, want %#x",
	    servers[_i].who, e.auth, servers[_i].auth);
	ck_assert_str_eq(e.auth_offered, servers[_i].offered);
	ck_assert_str_eq(e.domain, servers[_i].domain);
}
END_TEST

START_TEST(ehlo_refuses_what_is_not_250)
{
	struct pst_ehlo e;
	struct pst_err err;

	ck_assert_int_eq(pst_ehlo_parse(reply_of(
	    "502 5.5.2 Error: command not recognized\r\n"), &e, &err), -1);
	ck_assert_int_eq(err.cls, PST_PERM);
	ck_assert_int_eq(err.stage, PST_STAGE_EHLO);
	ck_assert_int_eq(err.smtp_code, 502);
	ck_assert_str_eq(err.esc, "5.5.2");
	ck_assert_uint_eq(e.caps, 0);

	ck_assert_int_eq(pst_ehlo_parse(reply_of(
	    "421 4.3.2 shutting down\r\n"), &e, &err), -1);
	ck_assert_int_eq(err.cls, PST_TEMP);
	ck_assert_int_eq(pst_ehlo_parse(reply_of("220 hello again\r\n"), &e,
	    &err), -1);
}
END_TEST

START_TEST(ehlo_auth_list_is_bounded)
{
	struct evbuffer *in = evbuffer_new();
	struct pst_ehlo e;
	struct pst_err err;
	int i;

	evbuffer_add_printf(in, "250-big.example.org\r\n250-AUTH");
	for (i = 0; i < 100; i++)
		evbuffer_add_printf(in, " MECH-%03d", i);
	evbuffer_add_printf(in, " PLAIN\r\n250 AUTH CRAM-MD5\r\n");
	pst_reply_reset(&r);
	ck_assert_int_eq(pst_reply_parse(in, &r, PST_STAGE_EHLO, &err), 1);
	ck_assert_int_eq(pst_ehlo_parse(&r, &e, &err), 0);
	/* Known mechanisms count even when the list for humans is full. */
	ck_assert_uint_eq(e.auth, PST_SASL_PLAIN | PST_SASL_CRAM_MD5);
	ck_assert_uint_le(strlen(e.auth_offered), PST_EHLO_AUTH_LIST_MAX);
	ck_assert(strncmp(e.auth_offered, "MECH-000 MECH-001", 17) == 0);
	evbuffer_free(in);
}
END_TEST

START_TEST(ehlo_long_domain_is_cut)
{
	struct evbuffer *in = evbuffer_new();
	struct pst_ehlo e;
	struct pst_err err;
	int i;

	evbuffer_add_printf(in, "250 ");
	for (i = 0; i < 60; i++)
		evbuffer_add_printf(in, "label%02d.", i);
	evbuffer_add_printf(in, "org\r\n");
	pst_reply_reset(&r);
	ck_assert_int_eq(pst_reply_parse(in, &r, PST_STAGE_EHLO, &err), 1);
	ck_assert_int_eq(pst_ehlo_parse(&r, &e, &err), 0);
	ck_assert_uint_eq(strlen(e.domain), PST_EHLO_DOMAIN_MAX);
	evbuffer_free(in);
}
END_TEST

START_TEST(ehlo_names_and_format)
{
	char buf[256];

	ck_assert_str_eq(pst_ehlo_cap_name(PST_EHLO_PIPELINING),
	    "PIPELINING");
	ck_assert_str_eq(pst_ehlo_cap_name(PST_EHLO_REQUIRETLS),
	    "REQUIRETLS");
	ck_assert_ptr_null(pst_ehlo_cap_name(PST_EHLO_SIZE |
	    PST_EHLO_AUTH));
	ck_assert_ptr_null(pst_ehlo_cap_name(1u << 30));
	ck_assert_str_eq(pst_ehlo_caps_format(PST_EHLO_STARTTLS |
	    PST_EHLO_SIZE | PST_EHLO_AUTH, buf, sizeof(buf)),
	    "SIZE AUTH STARTTLS");
	ck_assert_str_eq(pst_ehlo_caps_format(0, buf, sizeof(buf)), "none");
	ck_assert_str_eq(pst_ehlo_caps_format(PST_EHLO_SIZE |
	    PST_EHLO_PIPELINING, buf, 8), "SIZE");
	ck_assert_str_eq(pst_ehlo_caps_format(PST_EHLO_PIPELINING, buf, 4),
	    "");
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("smtp/ehlo");
	TCase *tc = tcase_create("ehlo");

	tcase_add_loop_test(tc, ehlo_real_servers, 0, NELEMS(servers));
	tcase_add_test(tc, ehlo_refuses_what_is_not_250);
	tcase_add_test(tc, ehlo_auth_list_is_bounded);
	tcase_add_test(tc, ehlo_long_domain_is_cut);
	tcase_add_test(tc, ehlo_names_and_format);
	suite_add_tcase(s, tc);
	return s;
}
