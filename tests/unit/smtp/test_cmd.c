#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "smtp/cmd.h"
#include "unit.h"

#define X_SIZE	PST_CMD_EXT_SIZE
#define X_8BIT	PST_CMD_EXT_8BITMIME
#define X_UTF8	PST_CMD_EXT_SMTPUTF8
#define X_DSN	PST_CMD_EXT_DSN
#define X_ALL	(X_SIZE | X_8BIT | X_UTF8 | X_DSN)
#define T_UTF8	PST_CMD_TXN_UTF8

static const struct {
	const char		*line;
	size_t			 len;	/* 0: strlen(line) */
	unsigned		 flags;
	enum pst_cmd_verb	 verb;
	int			 code;	/* 0: must parse */
	const char		*esc;
} vectors[] = {
	/* Greetings. */
	{ "EHLO client.example", 0, 0, PST_CMD_EHLO, 0, NULL },
	{ "ehlo client.example", 0, 0, PST_CMD_EHLO, 0, NULL },
	{ "HELO client.example", 0, 0, PST_CMD_HELO, 0, NULL },
	{ "EHLO [127.0.0.1]", 0, 0, PST_CMD_EHLO, 0, NULL },
	{ "EHLO my_host_1", 0, 0, PST_CMD_EHLO, 0, NULL },
	{ "EHLO  client.example  ", 0, 0, PST_CMD_EHLO, 0, NULL },
	{ "EHLO", 0, 0, PST_CMD_EHLO, 501, "5.5.4" },
	{ "EHLO ", 0, 0, PST_CMD_EHLO, 501, "5.5.4" },
	{ "EHLO a b", 0, 0, PST_CMD_EHLO, 501, "5.5.4" },
	{ "EHLO a\x01", 0, 0, PST_CMD_EHLO, 501, "5.5.4" },
	{ "EHLO h\xc3\xa9.example", 0, 0, PST_CMD_EHLO, 501, "5.5.4" },
	/* MAIL and its path. */
	{ "MAIL FROM:<a@b.example>", 0, 0, PST_CMD_MAIL, 0, NULL },
	{ "MAIL FROM:<>", 0, 0, PST_CMD_MAIL, 0, NULL },
	{ "mail from:<a@b.example>", 0, 0, PST_CMD_MAIL, 0, NULL },
	{ "MAIL FROM: <a@b.example>", 0, 0, PST_CMD_MAIL, 0, NULL },
	{ "MAIL  FROM:<a@b.example>", 0, 0, PST_CMD_MAIL, 0, NULL },
	{ "MAIL FROM:<a@b.example> ", 0, 0, PST_CMD_MAIL, 0, NULL },
	{ "MAIL FROM:<@r.example:a@b.example>", 0, 0, PST_CMD_MAIL, 0,
	    NULL },
	{ "MAIL FROM:<\"a b\"@b.example>", 0, 0, PST_CMD_MAIL, 0, NULL },
	{ "MAIL FROM:a@b.example", 0, 0, PST_CMD_MAIL, 501, "5.1.7" },
	{ "MAIL FROM:<a..b@b.example>", 0, 0, PST_CMD_MAIL, 501, "5.1.7" },
	{ "MAIL FROM:<a@b.example", 0, 0, PST_CMD_MAIL, 501, "5.1.7" },
	{ "MAIL FROM <a@b.example>", 0, 0, PST_CMD_MAIL, 501, "5.5.4" },
	{ "MAIL TO:<a@b.example>", 0, 0, PST_CMD_MAIL, 501, "5.5.4" },
	{ "MAIL", 0, 0, PST_CMD_MAIL, 501, "5.5.4" },
	{ "MAIL FROM:", 0, 0, PST_CMD_MAIL, 501, "5.1.7" },
	{ "MAIL FROM:<a@b.example>x", 0, 0, PST_CMD_MAIL, 501, "5.5.4" },
	{ "MAIL FROM:<a@b.example><c@d>", 0, 0, PST_CMD_MAIL, 501, "5.5.4" },
	{ "MAIL FROM:<postmaster>", 0, 0, PST_CMD_MAIL, 501, "5.1.7" },
	/* SIZE (RFC 1870). */
	{ "MAIL FROM:<a@b> SIZE=1000", 0, X_SIZE, PST_CMD_MAIL, 0, NULL },
	{ "MAIL FROM:<a@b> size=1000", 0, X_SIZE, PST_CMD_MAIL, 0, NULL },
	{ "MAIL FROM:<a@b> SIZE=1000", 0, 0, PST_CMD_MAIL, 555, "5.5.4" },
	{ "MAIL FROM:<a@b> SIZE=", 0, X_SIZE, PST_CMD_MAIL, 501, "5.5.4" },
	{ "MAIL FROM:<a@b> SIZE", 0, X_SIZE, PST_CMD_MAIL, 501, "5.5.4" },
	{ "MAIL FROM:<a@b> SIZE=12a", 0, X_SIZE, PST_CMD_MAIL, 501, "5.5.4" },
	{ "MAIL FROM:<a@b> SIZE=-1", 0, X_SIZE, PST_CMD_MAIL, 501, "5.5.4" },
	{ "MAIL FROM:<a@b> SIZE=123456789012345678901", 0, X_SIZE,
	    PST_CMD_MAIL, 501, "5.5.4" },
	{ "MAIL FROM:<a@b> SIZE=1 SIZE=2", 0, X_SIZE, PST_CMD_MAIL, 501,
	    "5.5.4" },
	{ "MAIL FROM:<a@b> SIZE=1  BODY=7BIT ", 0, X_ALL, PST_CMD_MAIL, 0,
	    NULL },
	/* BODY (RFC 6152). */
	{ "MAIL FROM:<a@b> BODY=8BITMIME", 0, X_8BIT, PST_CMD_MAIL, 0, NULL },
	{ "MAIL FROM:<a@b> BODY=7bit", 0, X_8BIT, PST_CMD_MAIL, 0, NULL },
	{ "MAIL FROM:<a@b> BODY=8BITMIME", 0, 0, PST_CMD_MAIL, 555, "5.5.4" },
	{ "MAIL FROM:<a@b> BODY=BINARYMIME", 0, X_8BIT, PST_CMD_MAIL, 555,
	    "5.5.4" },
	{ "MAIL FROM:<a@b> BODY=9BIT", 0, X_8BIT, PST_CMD_MAIL, 501,
	    "5.5.4" },
	{ "MAIL FROM:<a@b> BODY=7BIT BODY=7BIT", 0, X_8BIT, PST_CMD_MAIL, 501,
	    "5.5.4" },
	/* SMTPUTF8 (RFC 6531). */
	{ "MAIL FROM:<a@b> SMTPUTF8", 0, X_UTF8, PST_CMD_MAIL, 0, NULL },
	{ "MAIL FROM:<a@b> SMTPUTF8", 0, 0, PST_CMD_MAIL, 555, "5.5.4" },
	{ "MAIL FROM:<a@b> SMTPUTF8=yes", 0, X_UTF8, PST_CMD_MAIL, 501,
	    "5.5.4" },
	{ "MAIL FROM:<\xc3\xbc@b.example> SMTPUTF8", 0, X_UTF8, PST_CMD_MAIL,
	    0, NULL },
	{ "MAIL FROM:<u@b\xc3\xbc" "cher.example> SMTPUTF8", 0, X_UTF8,
	    PST_CMD_MAIL, 0, NULL },
	{ "MAIL FROM:<\xc3\xbc@b.example>", 0, X_UTF8, PST_CMD_MAIL, 553,
	    "5.6.7" },
	{ "MAIL FROM:<\xc3\xbc@b.example>", 0, 0, PST_CMD_MAIL, 553, "5.6.7" },
	{ "MAIL FROM:<\xc3\xbc@b.example> SMTPUTF8", 0, 0, PST_CMD_MAIL, 555,
	    "5.5.4" },
	/* Broken UTF-8 is refused at the door, before the verb. */
	{ "MAIL FROM:<\xc3(@b.example> SMTPUTF8", 0, X_UTF8, PST_CMD_UNKNOWN,
	    500, "5.5.2" },
	{ "MAIL FROM:<\xed\xa0\x80@b.example> SMTPUTF8", 0, X_UTF8,
	    PST_CMD_UNKNOWN, 500, "5.5.2" },
	/* DSN on MAIL (RFC 3461). */
	{ "MAIL FROM:<a@b> RET=HDRS ENVID=QQ314159", 0, X_DSN, PST_CMD_MAIL,
	    0, NULL },
	{ "MAIL FROM:<a@b> RET=full", 0, X_DSN, PST_CMD_MAIL, 0, NULL },
	{ "MAIL FROM:<a@b> RET=ALL", 0, X_DSN, PST_CMD_MAIL, 501, "5.5.4" },
	{ "MAIL FROM:<a@b> RET=FULL", 0, 0, PST_CMD_MAIL, 555, "5.5.4" },
	{ "MAIL FROM:<a@b> ENVID=a=b", 0, X_DSN, PST_CMD_MAIL, 501, "5.5.4" },
	{ "MAIL FROM:<a@b> ENVID=a+2b", 0, X_DSN, PST_CMD_MAIL, 501,
	    "5.5.4" },
	{ "MAIL FROM:<a@b> ENVID=a+0D+0A", 0, X_DSN, PST_CMD_MAIL, 501,
	    "5.5.4" },
	{ "MAIL FROM:<a@b> ENVID=x ENVID=y", 0, X_DSN, PST_CMD_MAIL, 501,
	    "5.5.4" },
	{ "MAIL FROM:<a@b> NOTIFY=NEVER", 0, X_DSN, PST_CMD_MAIL, 555,
	    "5.5.4" },
	{ "MAIL FROM:<a@b> ORCPT=rfc822;a@b", 0, X_DSN, PST_CMD_MAIL, 555,
	    "5.5.4" },
	/* Other parameters and parameter syntax. */
	{ "MAIL FROM:<a@b> FOO=bar", 0, X_ALL, PST_CMD_MAIL, 555, "5.5.4" },
	{ "MAIL FROM:<a@b> AUTH=<>", 0, X_ALL, PST_CMD_MAIL, 555, "5.5.4" },
	{ "MAIL FROM:<a@b> X-FOO", 0, X_ALL, PST_CMD_MAIL, 555, "5.5.4" },
	{ "MAIL FROM:<a@b> =x", 0, X_ALL, PST_CMD_MAIL, 501, "5.5.4" },
	{ "MAIL FROM:<a@b> -X", 0, X_ALL, PST_CMD_MAIL, 501, "5.5.4" },
	{ "MAIL FROM:<a@b> SIZE=1=2", 0, X_ALL, PST_CMD_MAIL, 501, "5.5.4" },
	{ "MAIL FROM:<a@b> SIZE=1\x7f", 0, X_ALL, PST_CMD_MAIL, 501,
	    "5.5.4" },
	{ "MAIL FROM:<a@b> S_ZE=1", 0, X_ALL, PST_CMD_MAIL, 501, "5.5.4" },
	{ "MAIL FROM:<a@b>\tSIZE=1", 0, X_ALL, PST_CMD_MAIL, 501, "5.5.4" },
	/* RCPT. */
	{ "RCPT TO:<a@b.example>", 0, 0, PST_CMD_RCPT, 0, NULL },
	{ "rcpt to: <a@b.example> ", 0, 0, PST_CMD_RCPT, 0, NULL },
	{ "RCPT TO:<postmaster>", 0, 0, PST_CMD_RCPT, 0, NULL },
	{ "RCPT TO:<POSTMASTER>", 0, 0, PST_CMD_RCPT, 0, NULL },
	{ "RCPT TO:<@x.example,@y.example:a@b.example>", 0, 0, PST_CMD_RCPT,
	    0, NULL },
	{ "RCPT TO:<>", 0, 0, PST_CMD_RCPT, 501, "5.1.3" },
	{ "RCPT TO:<root>", 0, 0, PST_CMD_RCPT, 501, "5.1.3" },
	{ "RCPT TO:a@b.example", 0, 0, PST_CMD_RCPT, 501, "5.1.3" },
	{ "RCPT FROM:<a@b.example>", 0, 0, PST_CMD_RCPT, 501, "5.5.4" },
	{ "RCPT TO:<a@b> SIZE=1", 0, X_ALL, PST_CMD_RCPT, 555, "5.5.4" },
	{ "RCPT TO:<\xc3\xbc@b.example>", 0, X_ALL, PST_CMD_RCPT, 553,
	    "5.6.7" },
	{ "RCPT TO:<\xc3\xbc@b.example>", 0, X_ALL | T_UTF8, PST_CMD_RCPT, 0,
	    NULL },
	/* NOTIFY (RFC 3461 §4.1). */
	{ "RCPT TO:<a@b> NOTIFY=SUCCESS,FAILURE", 0, X_DSN, PST_CMD_RCPT, 0,
	    NULL },
	{ "RCPT TO:<a@b> NOTIFY=never", 0, X_DSN, PST_CMD_RCPT, 0, NULL },
	{ "RCPT TO:<a@b> NOTIFY=NEVER", 0, 0, PST_CMD_RCPT, 555, "5.5.4" },
	{ "RCPT TO:<a@b> NOTIFY=NEVER,SUCCESS", 0, X_DSN, PST_CMD_RCPT, 501,
	    "5.5.4" },
	{ "RCPT TO:<a@b> NOTIFY=DELAY,NEVER", 0, X_DSN, PST_CMD_RCPT, 501,
	    "5.5.4" },
	{ "RCPT TO:<a@b> NOTIFY=SUCCESS,SUCCESS", 0, X_DSN, PST_CMD_RCPT, 501,
	    "5.5.4" },
	{ "RCPT TO:<a@b> NOTIFY=SUCCESS,,DELAY", 0, X_DSN, PST_CMD_RCPT, 501,
	    "5.5.4" },
	{ "RCPT TO:<a@b> NOTIFY=DELAY,", 0, X_DSN, PST_CMD_RCPT, 501,
	    "5.5.4" },
	{ "RCPT TO:<a@b> NOTIFY=,DELAY", 0, X_DSN, PST_CMD_RCPT, 501,
	    "5.5.4" },
	{ "RCPT TO:<a@b> NOTIFY=SOMETIMES", 0, X_DSN, PST_CMD_RCPT, 501,
	    "5.5.4" },
	{ "RCPT TO:<a@b> NOTIFY=", 0, X_DSN, PST_CMD_RCPT, 501, "5.5.4" },
	{ "RCPT TO:<a@b> NOTIFY=DELAY NOTIFY=DELAY", 0, X_DSN, PST_CMD_RCPT,
	    501, "5.5.4" },
	/* ORCPT (RFC 3461 §4.2). */
	{ "RCPT TO:<a@b> ORCPT=rfc822;a+40b.example", 0, X_DSN, PST_CMD_RCPT,
	    0, NULL },
	{ "RCPT TO:<a@b> ORCPT=rfc822;a@b.example", 0, X_DSN, PST_CMD_RCPT,
	    0, NULL },
	{ "RCPT TO:<a@b> ORCPT=rfc822", 0, X_DSN, PST_CMD_RCPT, 501,
	    "5.5.4" },
	{ "RCPT TO:<a@b> ORCPT=;a@b", 0, X_DSN, PST_CMD_RCPT, 501, "5.5.4" },
	{ "RCPT TO:<a@b> ORCPT=rfc822;", 0, X_DSN, PST_CMD_RCPT, 501,
	    "5.5.4" },
	{ "RCPT TO:<a@b> ORCPT=rfc(822;a@b", 0, X_DSN, PST_CMD_RCPT, 501,
	    "5.5.4" },
	{ "RCPT TO:<a@b> ORCPT=rfc822;a+2", 0, X_DSN, PST_CMD_RCPT, 501,
	    "5.5.4" },
	{ "RCPT TO:<a@b> ORCPT=rfc822;a+00", 0, X_DSN, PST_CMD_RCPT, 501,
	    "5.5.4" },
	{ "RCPT TO:<a@b> ORCPT=rfc822;a ORCPT=rfc822;b", 0, X_DSN,
	    PST_CMD_RCPT, 501, "5.5.4" },
	{ "RCPT TO:<a@b> ORCPT=rfc822;a", 0, 0, PST_CMD_RCPT, 555, "5.5.4" },
	/* Commands without arguments. */
	{ "DATA", 0, 0, PST_CMD_DATA, 0, NULL },
	{ "data ", 0, 0, PST_CMD_DATA, 0, NULL },
	{ "DATA now", 0, 0, PST_CMD_DATA, 501, "5.5.4" },
	{ "RSET", 0, 0, PST_CMD_RSET, 0, NULL },
	{ "RSET x", 0, 0, PST_CMD_RSET, 501, "5.5.4" },
	{ "QUIT", 0, 0, PST_CMD_QUIT, 0, NULL },
	{ "QUIT please", 0, 0, PST_CMD_QUIT, 501, "5.5.4" },
	/* Commands with optional or free arguments. */
	{ "NOOP", 0, 0, PST_CMD_NOOP, 0, NULL },
	{ "NOOP anything at all", 0, 0, PST_CMD_NOOP, 0, NULL },
	{ "HELP", 0, 0, PST_CMD_HELP, 0, NULL },
	{ "HELP MAIL", 0, 0, PST_CMD_HELP, 0, NULL },
	{ "VRFY user", 0, 0, PST_CMD_VRFY, 0, NULL },
	{ "VRFY", 0, 0, PST_CMD_VRFY, 501, "5.5.4" },
	/* Recognised, not implemented: the server says 502. */
	{ "STARTTLS", 0, 0, PST_CMD_STARTTLS, 0, NULL },
	{ "AUTH PLAIN AGZvbwBiYXI=", 0, 0, PST_CMD_AUTH, 0, NULL },
	{ "BDAT 100 LAST", 0, 0, PST_CMD_BDAT, 0, NULL },
	{ "BURL imap://x 1", 0, 0, PST_CMD_BURL, 0, NULL },
	{ "EXPN staff", 0, 0, PST_CMD_EXPN, 0, NULL },
	{ "ETRN example.org", 0, 0, PST_CMD_ETRN, 0, NULL },
	{ "ATRN example.org", 0, 0, PST_CMD_ATRN, 0, NULL },
	{ "TURN", 0, 0, PST_CMD_TURN, 0, NULL },
	{ "SEND FROM:<a@b>", 0, 0, PST_CMD_SEND, 0, NULL },
	{ "SOML FROM:<a@b>", 0, 0, PST_CMD_SOML, 0, NULL },
	{ "SAML FROM:<a@b>", 0, 0, PST_CMD_SAML, 0, NULL },
	/* HTTP spoken to the SMTP port. */
	{ "GET / HTTP/1.1", 0, 0, PST_CMD_HTTP, 0, NULL },
	{ "POST /form HTTP/1.1", 0, 0, PST_CMD_HTTP, 0, NULL },
	{ "CONNECT relay.example:25 HTTP/1.1", 0, 0, PST_CMD_HTTP, 0, NULL },
	/* Unknown verbs. */
	{ "FOO", 0, 0, PST_CMD_UNKNOWN, 500, "5.5.1" },
	{ "", 0, 0, PST_CMD_UNKNOWN, 500, "5.5.1" },
	{ " MAIL FROM:<>", 0, 0, PST_CMD_UNKNOWN, 500, "5.5.1" },
	{ "MAILFROM:<>", 0, 0, PST_CMD_UNKNOWN, 500, "5.5.1" },
	{ "MAIL\tFROM:<>", 0, 0, PST_CMD_UNKNOWN, 500, "5.5.1" },
	{ "LHLO x", 0, 0, PST_CMD_UNKNOWN, 500, "5.5.1" },
	{ "QUITX", 0, 0, PST_CMD_UNKNOWN, 500, "5.5.1" },
	/* Refused at the door: CR, LF, NUL, broken UTF-8. */
	{ "MAIL FROM:<a\r@b.example>", 0, 0, PST_CMD_UNKNOWN, 500, "5.5.2" },
	{ "MAIL FROM:<a@b.example>\nRCPT TO:<c@d>", 0, 0, PST_CMD_UNKNOWN,
	    500, "5.5.2" },
	{ "RCPT TO:<a\0@b.example>", 22, 0, PST_CMD_UNKNOWN, 500, "5.5.2" },
	{ "QUIT\r", 0, 0, PST_CMD_UNKNOWN, 500, "5.5.2" },
	{ "NOOP \xc3(", 0, 0, PST_CMD_UNKNOWN, 500, "5.5.2" },
	{ "NOOP \xff", 0, 0, PST_CMD_UNKNOWN, 500, "5.5.2" },
};

START_TEST(cmd_vectors)
{
	struct pst_cmd cmd;
	struct pst_err err;
	size_t len;
	int rc;

	len = vectors[_i].len ? vectors[_i].len : strlen(vectors[_i].line);
	rc = pst_cmd_parse(vectors[_i].line, len, vectors[_i].flags, &cmd,
	    &err);
	ck_assert_msg(cmd.verb == vectors[_i].verb, "#%d \"%s\": verb %s",
	    _i, vectors[_i].line, pst_cmd_name(cmd.verb));
	if (vectors[_i].code == 0) {
		ck_assert_msg(rc == 0, "#%d \"%s\": %d %s %s", _i,
		    vectors[_i].line, err.smtp_code, err.esc, err.text);
		ck_assert_int_eq(err.cls, PST_OK);
		return;
	}
	ck_assert_msg(rc == -1, "#%d \"%s\" accepted", _i, vectors[_i].line);
	ck_assert_msg(err.smtp_code == vectors[_i].code &&
	    strcmp(err.esc, vectors[_i].esc) == 0,
	    "#%d \"%s\": got %d %s %s, want %d %s", _i, vectors[_i].line,
	    err.smtp_code, err.esc, err.text, vectors[_i].code,
	    vectors[_i].esc);
	ck_assert_int_eq(err.cls, PST_PERM);
	ck_assert(err.text[0] != '\0');
}
END_TEST

static void
parse_ok(const char *line, unsigned flags, struct pst_cmd *cmd)
{
	struct pst_err err;

	ck_assert_msg(pst_cmd_parse(line, strlen(line), flags, cmd, &err) ==
	    0, "\"%s\": %s", line, err.text);
}

START_TEST(cmd_helo_keeps_name_and_judges_it)
{
	struct pst_cmd cmd;

	parse_ok("EHLO client.example", 0, &cmd);
	ck_assert_str_eq(cmd.helo, "client.example");
	ck_assert(cmd.helo_valid);
	parse_ok("HELO [192.0.2.7]", 0, &cmd);
	ck_assert_str_eq(cmd.helo, "[192.0.2.7]");
	ck_assert(cmd.helo_valid);
	parse_ok("EHLO   app_worker_1  ", 0, &cmd);
	ck_assert_str_eq(cmd.helo, "app_worker_1");
	ck_assert(!cmd.helo_valid);
}
END_TEST

START_TEST(cmd_mail_returns_every_parameter)
{
	struct pst_cmd cmd;

	parse_ok("MAIL FROM:<\xc3\xbc@b.example> SIZE=12345 BODY=8BITMIME "
	    "SMTPUTF8 RET=HDRS ENVID=Q+2BQ+3D1", X_ALL, &cmd);
	ck_assert_int_eq(cmd.verb, PST_CMD_MAIL);
	ck_assert_str_eq(cmd.addr.mailbox, "\xc3\xbc@b.example");
	ck_assert(cmd.addr.utf8);
	ck_assert(cmd.mail.has_size);
	ck_assert_uint_eq(cmd.mail.size, 12345);
	ck_assert_int_eq(cmd.mail.body, PST_BODY_8BITMIME);
	ck_assert(cmd.mail.smtputf8);
	ck_assert_int_eq(cmd.mail.ret, PST_RET_HDRS);
	ck_assert_str_eq(cmd.mail.envid, "Q+2BQ+3D1");
	ck_assert_str_eq(cmd.mail.envid_text, "Q+Q=1");

	parse_ok("MAIL FROM:<>", X_ALL, &cmd);
	ck_assert(cmd.addr.null);
	ck_assert(!cmd.mail.has_size);
	ck_assert_int_eq(cmd.mail.body, PST_BODY_NONE);
	ck_assert_int_eq(cmd.mail.ret, PST_RET_NONE);
	ck_assert_str_eq(cmd.mail.envid, "");

	parse_ok("MAIL FROM:<@r.example:a@b.example>", 0, &cmd);
	ck_assert_str_eq(cmd.addr.mailbox, "a@b.example");
	ck_assert(cmd.addr.routed);
}
END_TEST

START_TEST(cmd_size_saturates)
{
	struct pst_cmd cmd;

	parse_ok("MAIL FROM:<a@b> SIZE=99999999999999999999", X_SIZE, &cmd);
	ck_assert_uint_eq(cmd.mail.size, UINT64_MAX);
	parse_ok("MAIL FROM:<a@b> SIZE=18446744073709551615", X_SIZE, &cmd);
	ck_assert_uint_eq(cmd.mail.size, UINT64_MAX);
	parse_ok("MAIL FROM:<a@b> SIZE=18446744073709551614", X_SIZE, &cmd);
	ck_assert_uint_eq(cmd.mail.size, UINT64_MAX - 1);
	parse_ok("MAIL FROM:<a@b> SIZE=0", X_SIZE, &cmd);
	ck_assert(cmd.mail.has_size);
	ck_assert_uint_eq(cmd.mail.size, 0);
}
END_TEST

START_TEST(cmd_envid_bound)
{
	struct pst_cmd cmd;
	struct pst_err err;
	char line[600], id[400];

	memset(id, 'e', 100);
	id[100] = '\0';
	snprintf(line, sizeof(line), "MAIL FROM:<a@b> ENVID=%s", id);
	parse_ok(line, X_DSN, &cmd);
	ck_assert_uint_eq(strlen(cmd.mail.envid_text), 100);
	/* 100 characters encoded as 300 octets still fit. */
	for (int i = 0; i < 100; i++)
		memcpy(id + 3 * i, "+2B", 3);
	id[300] = '\0';
	snprintf(line, sizeof(line), "MAIL FROM:<a@b> ENVID=%s", id);
	parse_ok(line, X_DSN, &cmd);
	ck_assert_uint_eq(strlen(cmd.mail.envid), 300);
	memset(id, 'e', 101);
	id[101] = '\0';
	snprintf(line, sizeof(line), "MAIL FROM:<a@b> ENVID=%s", id);
	ck_assert_int_eq(pst_cmd_parse(line, strlen(line), X_DSN, &cmd, &err),
	    -1);
	ck_assert_int_eq(err.smtp_code, 501);
}
END_TEST

START_TEST(cmd_rcpt_returns_dsn_parameters)
{
	struct pst_cmd cmd;

	parse_ok("RCPT TO:<a@b.example> NOTIFY=failure,DELAY "
	    "ORCPT=rfc822;Old+2Bbox+40example.org", X_DSN, &cmd);
	ck_assert_str_eq(cmd.addr.mailbox, "a@b.example");
	ck_assert_uint_eq(cmd.rcpt.notify, PST_NOTIFY_FAILURE |
	    PST_NOTIFY_DELAY);
	ck_assert_str_eq(cmd.rcpt.orcpt_type, "rfc822");
	ck_assert_str_eq(cmd.rcpt.orcpt, "Old+2Bbox+40example.org");
	ck_assert_str_eq(cmd.rcpt.orcpt_text, "Old+box@example.org");

	parse_ok("RCPT TO:<a@b.example> NOTIFY=NEVER", X_DSN, &cmd);
	ck_assert_uint_eq(cmd.rcpt.notify, PST_NOTIFY_NEVER);
	parse_ok("RCPT TO:<a@b.example>", X_DSN, &cmd);
	ck_assert_uint_eq(cmd.rcpt.notify, 0);
	ck_assert_str_eq(cmd.rcpt.orcpt, "");

	parse_ok("RCPT TO:<Postmaster>", 0, &cmd);
	ck_assert(cmd.addr.postmaster);
	ck_assert_str_eq(cmd.addr.local, "Postmaster");
	ck_assert_str_eq(cmd.addr.domain, "");
}
END_TEST

START_TEST(cmd_arguments_are_trimmed)
{
	struct pst_cmd cmd;

	parse_ok("VRFY   someone  ", 0, &cmd);
	ck_assert_uint_eq(cmd.arg_len, 7);
	ck_assert(memcmp(cmd.arg, "someone", 7) == 0);
	parse_ok("AUTH PLAIN AGZvbwBiYXI=", 0, &cmd);
	ck_assert_uint_eq(cmd.arg_len, 18);
	ck_assert(memcmp(cmd.arg, "PLAIN AGZvbwBiYXI=", 18) == 0);
	parse_ok("NOOP", 0, &cmd);
	ck_assert_uint_eq(cmd.arg_len, 0);
}
END_TEST

START_TEST(cmd_errors_carry_stage_and_scope)
{
	struct pst_cmd cmd;
	struct pst_err err;

	ck_assert_int_eq(pst_cmd_parse("RCPT TO:<>", 10, 0, &cmd, &err), -1);
	ck_assert_int_eq(err.stage, PST_STAGE_RCPT);
	ck_assert_int_eq(err.scope, PST_SCOPE_RECIPIENT);
	ck_assert_int_eq(pst_cmd_parse("MAIL FROM:x", 11, 0, &cmd, &err), -1);
	ck_assert_int_eq(err.stage, PST_STAGE_MAIL);
	ck_assert_int_eq(err.scope, PST_SCOPE_MESSAGE);
	ck_assert_int_eq(pst_cmd_parse("EHLO", 4, 0, &cmd, &err), -1);
	ck_assert_int_eq(err.stage, PST_STAGE_EHLO);
	ck_assert_int_eq(pst_cmd_parse("XYZZY", 5, 0, &cmd, &err), -1);
	ck_assert_int_eq(err.stage, PST_STAGE_NONE);
	ck_assert_int_eq(err.scope, PST_SCOPE_SESSION);
}
END_TEST

START_TEST(cmd_names_cover_every_verb)
{
	int v;

	ck_assert_str_eq(pst_cmd_name(PST_CMD_UNKNOWN), "?");
	ck_assert_str_eq(pst_cmd_name(PST_CMD__COUNT), "?");
	for (v = PST_CMD_UNKNOWN + 1; v < PST_CMD__COUNT; v++) {
		ck_assert_ptr_nonnull(pst_cmd_name(v));
		ck_assert_str_ne(pst_cmd_name(v), "?");
	}
	ck_assert_str_eq(pst_cmd_name(PST_CMD_MAIL), "MAIL");
}
END_TEST

/*
 * The longest lines postern accepts must fit in the bound it gives the
 * line reader.
 */
START_TEST(cmd_line_max_fits_longest_commands)
{
	char route[64], path[400], line[1200], type[40], orcpt[600];
	struct pst_cmd cmd;
	size_t n;

	ck_assert_uint_eq(pst_cmd_line_max(0), 512);
	ck_assert_uint_eq(pst_cmd_line_max(X_ALL), 1081);

	/* A 256-octet path: local part 64, domain to fill. */
	memset(route, 'd', 63);
	route[63] = '\0';
	snprintf(path, sizeof(path), "<%.64s@%s.%s.%.61s>",
	    "llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll",
	    route, route, route);
	ck_assert_uint_eq(strlen(path), 256);
	memset(type, 't', 32);
	type[32] = '\0';
	memset(orcpt, 'o', 500);
	orcpt[500] = '\0';
	n = (size_t)snprintf(line, sizeof(line), "RCPT TO:%s "
	    "NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=%s;%s", path, type, orcpt);
	parse_ok(line, X_ALL, &cmd);
	ck_assert_uint_le(n + 2, pst_cmd_line_max(X_ALL));
	for (int i = 0; i < 100; i++)
		memcpy(orcpt + 3 * i, "+2B", 3);
	orcpt[300] = '\0';
	n = (size_t)snprintf(line, sizeof(line), "MAIL FROM:%s "
	    "SIZE=99999999999999999999 BODY=8BITMIME SMTPUTF8 RET=FULL "
	    "ENVID=%s", path, orcpt);
	parse_ok(line, X_ALL, &cmd);
	ck_assert_uint_le(n + 2, pst_cmd_line_max(X_ALL));
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("smtp/cmd");
	TCase *tc = tcase_create("cmd");

	tcase_add_loop_test(tc, cmd_vectors, 0, NELEMS(vectors));
	tcase_add_test(tc, cmd_helo_keeps_name_and_judges_it);
	tcase_add_test(tc, cmd_mail_returns_every_parameter);
	tcase_add_test(tc, cmd_size_saturates);
	tcase_add_test(tc, cmd_envid_bound);
	tcase_add_test(tc, cmd_rcpt_returns_dsn_parameters);
	tcase_add_test(tc, cmd_arguments_are_trimmed);
	tcase_add_test(tc, cmd_errors_carry_stage_and_scope);
	tcase_add_test(tc, cmd_names_cover_every_verb);
	tcase_add_test(tc, cmd_line_max_fits_longest_commands);
	suite_add_tcase(s, tc);
	return s;
}
