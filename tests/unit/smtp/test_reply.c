#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "smtp/reply.h"
#include "unit.h"

/* Big (64 KiB): one per test process, Check forks for each test. */
static struct pst_reply r;

#define BAD	-1

static void
reply_setup(void)
{
	pst_reply_reset(&r);
}

static const struct {
	const char	*wire;
	size_t		 len;		/* 0: strlen(wire) */
	int		 rc;
	int		 code;
	const char	*esc;
	const char	*texts;		/* line texts joined by '|' */
	size_t		 left;		/* bytes left in the buffer */
} vectors[] = {
	{ "220 mail.example.org ESMTP Postfix\r\n", 0, 1, 220, "",
	    "mail.example.org ESMTP Postfix", 0 },
	{ "250-mail.example.org\r\n250-PIPELINING\r\n250 8BITMIME\r\n", 0,
	    1, 250, "", "mail.example.org|PIPELINING|8BITMIME", 0 },
	{ "250 2.1.0 Ok\r\n", 0, 1, 250, "2.1.0", "Ok", 0 },
	{ "550-5.7.1 Rejected\r\n550-5.7.1 go away\r\n550 5.7.1 really\r\n",
	    0, 1, 550, "5.7.1", "Rejected|go away|really", 0 },
	{ "550-5.7.1 Rejected\r\n550 no code here\r\n", 0, 1, 550, "5.7.1",
	    "Rejected|no code here", 0 },
	{ "550-5.7.1 Rejected\r\n550 5.1.1 other code\r\n", 0, 1, 550,
	    "5.7.1", "Rejected|5.1.1 other code", 0 },
	{ "550 4.7.1 class is not the code's\r\n", 0, 1, 550, "",
	    "4.7.1 class is not the code's", 0 },
	{ "451 4.4.2 Timeout\r\n", 0, 1, 451, "4.4.2", "Timeout", 0 },
	{ "250 2.0.0\r\n", 0, 1, 250, "2.0.0", "", 0 },
	{ "250 2.0.0x\r\n", 0, 1, 250, "", "2.0.0x", 0 },
	{ "250 2.1000.0 x\r\n", 0, 1, 250, "", "2.1000.0 x", 0 },
	{ "250 2..0 x\r\n", 0, 1, 250, "", "2..0 x", 0 },
	{ "334 VXNlcm5hbWU6\r\n", 0, 1, 334, "", "VXNlcm5hbWU6", 0 },
	{ "354 End data with <CR><LF>.<CR><LF>\r\n", 0, 1, 354, "",
	    "End data with <CR><LF>.<CR><LF>", 0 },
	{ "250\r\n", 0, 1, 250, "", "", 0 },
	{ "250 \r\n", 0, 1, 250, "", "", 0 },
	{ "250-\r\n250 x\r\n", 0, 1, 250, "", "|x", 0 },
	{ "250 tab\there\r\n", 0, 1, 250, "", "tab\there", 0 },
	/* What follows a reply stays in the buffer. */
	{ "220 ready\r\nXYZ", 0, 1, 220, "", "ready", 3 },
	{ "250 a\r\n250 b\r\n", 0, 1, 250, "", "a", 7 },
	{ "220 go ahead\r\n\x16\x03\x01", 0, 1, 220, "", "go ahead", 3 },
	/* Incomplete: nothing but complete lines is drained. */
	{ "", 0, 0, 0, "", "", 0 },
	{ "250 ok", 0, 0, 0, "", "", 6 },
	{ "250 ok\r", 0, 0, 0, "", "", 7 },
	{ "250-a\r\n250 o", 0, 0, 250, "", "a", 5 },
	{ "25", 0, 0, 0, "", "", 2 },
	/* Garbage. */
	{ "HTTP/1.1 400 Bad Request\r\n", 0, BAD, 0, "", "", 0 },
	{ "SSH-2.0-OpenSSH_9.2\r\n", 0, BAD, 0, "", "", 0 },
	{ "\x16\x03\x01\x02\x00", 5, BAD, 0, "", "", 0 },
	{ "H", 0, BAD, 0, "", "", 0 },
	{ "250-a\r\n251 b\r\n", 0, BAD, 0, "", "", 0 },
	{ "250-a\r\n550 b\r\n", 0, BAD, 0, "", "", 0 },
	{ "250 ok\n", 0, BAD, 0, "", "", 0 },
	{ "250-ok\n250 ok\r\n", 0, BAD, 0, "", "", 0 },
	{ "\n", 0, BAD, 0, "", "", 0 },
	{ "250 o\rk\r\n", 0, BAD, 0, "", "", 0 },
	{ "250 a\0b\r\n", 9, BAD, 0, "", "", 0 },
	{ "25\r\n", 0, BAD, 0, "", "", 0 },
	{ "\r\n", 0, BAD, 0, "", "", 0 },
	{ "2500 x\r\n", 0, BAD, 0, "", "", 0 },
	{ "250_x\r\n", 0, BAD, 0, "", "", 0 },
	{ "650 x\r\n", 0, BAD, 0, "", "", 0 },
	{ "150 x\r\n", 0, BAD, 0, "", "", 0 },
	{ "050 x\r\n", 0, BAD, 0, "", "", 0 },
	{ " 250 x\r\n", 0, BAD, 0, "", "", 0 },
	{ "2a0 x\r\n", 0, BAD, 0, "", "", 0 },
	{ "250-a\r\n25x b\r\n", 0, BAD, 0, "", "", 0 },
};

/* Joins the texts of 'r' with '|' into 'buf'. */
static const char *
joined(const struct pst_reply *rep, char *buf, size_t len)
{
	size_t i, off = 0;

	buf[0] = '\0';
	for (i = 0; i < rep->nlines; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s",
		    i > 0 ? "|" : "", pst_reply_line(rep, i));
	return buf;
}

START_TEST(reply_vectors)
{
	struct evbuffer *in = evbuffer_new();
	struct pst_err err;
	char buf[4096];
	size_t len;
	int rc;

	len = vectors[_i].len != 0 ? vectors[_i].len :
	    strlen(vectors[_i].wire);
	pst_reply_reset(&r);
	pst_err_clear(&err);
	evbuffer_add(in, vectors[_i].wire, len);
	rc = pst_reply_parse(in, &r, PST_STAGE_MAIL, &err);
	ck_assert_msg(rc == vectors[_i].rc, "vector %d: rc %d, want %d (%s)",
	    _i, rc, vectors[_i].rc, err.text);
	if (rc == BAD) {
		ck_assert_int_eq(err.cls, PST_TEMP);
		ck_assert_int_eq(err.stage, PST_STAGE_MAIL);
		ck_assert_str_ne(err.text, "");
		evbuffer_free(in);
		return;
	}
	ck_assert_int_eq(r.code, vectors[_i].code);
	ck_assert_str_eq(joined(&r, buf, sizeof(buf)), vectors[_i].texts);
	ck_assert_uint_eq(evbuffer_get_length(in), vectors[_i].left);
	if (rc == 1)
		ck_assert_str_eq(r.esc, vectors[_i].esc);
	evbuffer_free(in);
}
END_TEST

/*
 * Feeds 'wire' to the parser in two pieces split at every offset, and
 * byte by byte: the result never depends on how the bytes arrive.
 */
START_TEST(reply_split_anywhere_gives_same_reply)
{
	static const char wire[] = "250-mail.example.org Hello [192.0.2.1]"
	    "\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n250 2.0.0 HELP\r\n"
	    "354 next";
	const size_t len = sizeof(wire) - 1;
	struct evbuffer *in;
	struct pst_err err;
	char buf[512];
	size_t cut, i;
	int rc;

	for (cut = 0; cut <= len; cut++) {
		in = evbuffer_new();
		pst_reply_reset(&r);
		evbuffer_add(in, wire, cut);
		rc = pst_reply_parse(in, &r, PST_STAGE_EHLO, &err);
		ck_assert_int_ne(rc, -1);
		if (rc == 0) {
			evbuffer_add(in, wire + cut, len - cut);
			rc = pst_reply_parse(in, &r, PST_STAGE_EHLO, &err);
		} else {
			evbuffer_add(in, wire + cut, len - cut);
		}
		ck_assert_int_eq(rc, 1);
		ck_assert_int_eq(r.code, 250);
		ck_assert_str_eq(r.esc, "");
		ck_assert_str_eq(joined(&r, buf, sizeof(buf)),
		    "mail.example.org Hello [192.0.2.1]|SIZE 52428800|"
		    "8BITMIME|2.0.0 HELP");
		ck_assert_uint_eq(evbuffer_get_length(in), 8);
		evbuffer_free(in);
	}

	in = evbuffer_new();
	pst_reply_reset(&r);
	rc = 0;
	for (i = 0; i < len && rc == 0; i++) {
		evbuffer_add(in, wire + i, 1);
		rc = pst_reply_parse(in, &r, PST_STAGE_EHLO, &err);
	}
	ck_assert_int_eq(rc, 1);
	ck_assert_uint_eq(r.nlines, 4);
	ck_assert_uint_eq(i, len - 8);
	ck_assert_uint_eq(evbuffer_get_length(in), 0);
	evbuffer_free(in);
}
END_TEST

START_TEST(reply_pipelined_replies_come_one_at_a_time)
{
	static const char wire[] = "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	    "550 5.1.1 <x@example.org>: unknown\r\n354 go\r\n";
	static const int codes[] = { 250, 250, 550, 354 };
	struct evbuffer *in = evbuffer_new();
	struct pst_err err;
	size_t n = 0;
	int rc;

	evbuffer_add(in, wire, sizeof(wire) - 1);
	while ((rc = pst_reply_parse(in, &r, PST_STAGE_RCPT, &err)) == 1) {
		ck_assert_uint_lt(n, NELEMS(codes));
		ck_assert_int_eq(r.code, codes[n]);
		ck_assert_uint_eq(r.nlines, 1);
		n++;
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(n, NELEMS(codes));
	ck_assert_uint_eq(r.nlines, 0);
	evbuffer_free(in);
}
END_TEST

/* Builds a reply of 'lines' lines of 'width' bytes of text each. */
static struct evbuffer *
big_reply(size_t lines, size_t width, const char *tail)
{
	struct evbuffer *in = evbuffer_new();
	char *text = malloc(width + 1);
	size_t i;

	memset(text, 'x', width);
	text[width] = '\0';
	for (i = 0; i < lines; i++)
		evbuffer_add_printf(in, "250%c%s\r\n",
		    i + 1 < lines ? '-' : ' ', text);
	evbuffer_add_printf(in, "%s", tail);
	free(text);
	return in;
}

START_TEST(reply_takes_100_lines)
{
	struct evbuffer *in = big_reply(PST_REPLY_LINES_MAX, 10, "");
	struct pst_err err;

	ck_assert_int_eq(pst_reply_parse(in, &r, PST_STAGE_EHLO, &err), 1);
	ck_assert_uint_eq(r.nlines, PST_REPLY_LINES_MAX);
	ck_assert_str_eq(pst_reply_line(&r, 99), "xxxxxxxxxx");
	evbuffer_free(in);
}
END_TEST

START_TEST(reply_refuses_101_lines)
{
	struct evbuffer *in = big_reply(PST_REPLY_LINES_MAX + 1, 10, "");
	struct pst_err err;

	ck_assert_int_eq(pst_reply_parse(in, &r, PST_STAGE_EHLO, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.text, "too many lines"));
	evbuffer_free(in);
}
END_TEST

START_TEST(reply_refuses_thousands_of_lines)
{
	struct evbuffer *in = big_reply(5000, 3, "");
	struct pst_err err;

	ck_assert_int_eq(pst_reply_parse(in, &r, PST_STAGE_EHLO, &err), -1);
	ck_assert_int_eq(err.cls, PST_TEMP);
	evbuffer_free(in);
}
END_TEST

START_TEST(reply_line_of_1000_bytes_is_the_limit)
{
	struct evbuffer *in;
	struct pst_err err;

	/* "250 " + 994 + CRLF = 1000 bytes. */
	in = big_reply(1, PST_REPLY_LINE_MAX - 6, "");
	ck_assert_int_eq(pst_reply_parse(in, &r, PST_STAGE_EHLO, &err), 1);
	ck_assert_uint_eq(pst_reply_line_len(&r, 0), PST_REPLY_LINE_MAX - 6);
	evbuffer_free(in);

	in = big_reply(1, PST_REPLY_LINE_MAX - 5, "");
	pst_reply_reset(&r);
	ck_assert_int_eq(pst_reply_parse(in, &r, PST_STAGE_EHLO, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.text, "too long"));
	evbuffer_free(in);
}
END_TEST

START_TEST(reply_without_crlf_waits_then_fails_at_the_bound)
{
	struct evbuffer *in = evbuffer_new();
	struct pst_err err;
	char text[PST_REPLY_LINE_MAX + 10];

	memset(text, 'y', sizeof(text));
	memcpy(text, "250 ", 4);
	evbuffer_add(in, text, PST_REPLY_LINE_MAX - 1);
	ck_assert_int_eq(pst_reply_parse(in, &r, PST_STAGE_EHLO, &err), 0);
	ck_assert_uint_eq(evbuffer_get_length(in), PST_REPLY_LINE_MAX - 1);
	evbuffer_add(in, text + 4, 1);
	ck_assert_int_eq(pst_reply_parse(in, &r, PST_STAGE_EHLO, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.text, "line too long"));
	evbuffer_free(in);
}
END_TEST

START_TEST(reply_refuses_more_than_64k)
{
	/* 80 lines of 990 bytes: under the line bounds, over the total. */
	struct evbuffer *in = big_reply(80, 990, "");
	struct pst_err err;

	ck_assert_int_eq(pst_reply_parse(in, &r, PST_STAGE_EHLO, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.text, "reply too long"));
	evbuffer_free(in);

	/* 65 lines of 994: just under 64 KiB, fine. */
	in = big_reply(65, 994, "");
	pst_reply_reset(&r);
	ck_assert_int_eq(pst_reply_parse(in, &r, PST_STAGE_EHLO, &err), 1);
	ck_assert_uint_eq(r.wire, 65 * 1000);
	evbuffer_free(in);
}
END_TEST

START_TEST(reply_stays_failed_until_reset)
{
	struct evbuffer *in = evbuffer_new();
	struct pst_err err;

	evbuffer_add_printf(in, "250-a\r\n251 b\r\n");
	ck_assert_int_eq(pst_reply_parse(in, &r, PST_STAGE_EHLO, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.text, "code changed"));
	ck_assert_ptr_nonnull(strstr(err.text, "251 b"));
	evbuffer_drain(in, evbuffer_get_length(in));
	evbuffer_add_printf(in, "250 ok\r\n");
	ck_assert_int_eq(pst_reply_parse(in, &r, PST_STAGE_EHLO, &err), -1);
	pst_reply_reset(&r);
	ck_assert_int_eq(pst_reply_parse(in, &r, PST_STAGE_EHLO, &err), 1);
	evbuffer_free(in);
}
END_TEST

START_TEST(reply_error_text_is_sanitised)
{
	struct evbuffer *in = evbuffer_new();
	struct pst_err err;

	evbuffer_add(in, "\x16\x03\x01\x00\x05\r\n", 7);
	ck_assert_int_eq(pst_reply_parse(in, &r, PST_STAGE_GREETING, &err),
	    -1);
	ck_assert_int_eq(err.stage, PST_STAGE_GREETING);
	ck_assert_ptr_null(strchr(err.text, '\x16'));
	evbuffer_free(in);
}
END_TEST

START_TEST(reply_raw_keeps_the_wire_line)
{
	struct evbuffer *in = evbuffer_new();
	struct pst_err err;

	evbuffer_add_printf(in, "550-5.7.1 first\r\n550 5.7.1 second\r\n");
	ck_assert_int_eq(pst_reply_parse(in, &r, PST_STAGE_RCPT, &err), 1);
	ck_assert_str_eq(pst_reply_raw(&r, 0), "550-5.7.1 first");
	ck_assert_str_eq(pst_reply_raw(&r, 1), "550 5.7.1 second");
	ck_assert_ptr_null(pst_reply_raw(&r, 2));
	ck_assert_ptr_null(pst_reply_line(&r, 2));
	ck_assert_uint_eq(pst_reply_line_len(&r, 2), 0);
	evbuffer_free(in);
}
END_TEST

START_TEST(reply_survives_copy_by_assignment)
{
	static struct pst_reply copy;
	struct evbuffer *in = evbuffer_new();
	struct pst_err err;

	evbuffer_add_printf(in, "250-one\r\n250 two\r\n");
	ck_assert_int_eq(pst_reply_parse(in, &r, PST_STAGE_EHLO, &err), 1);
	copy = r;
	pst_reply_reset(&r);
	memset(r.buf, 'z', 64);
	ck_assert_str_eq(pst_reply_line(&copy, 1), "two");
	evbuffer_free(in);
}
END_TEST

static const struct {
	const char	*wire;
	enum pst_class	 cls;
	const char	*text;
} err_vectors[] = {
	{ "451 4.7.1 Try again later\r\n", PST_TEMP, "Try again later" },
	{ "554-5.7.1 Relay access denied\r\n554 5.7.1 see the docs\r\n",
	    PST_PERM, "Relay access denied see the docs" },
	{ "421 mx.example.org closing\r\n", PST_TEMP,
	    "mx.example.org closing" },
	{ "250 2.0.0 odd\r\n", PST_TEMP, "odd" },
	{ "354 go\r\n", PST_TEMP, "go" },
	{ "550 tab\there\x7f\r\n", PST_PERM, "tab?here?" },
};

START_TEST(reply_to_err)
{
	struct evbuffer *in = evbuffer_new();
	struct pst_err err;

	evbuffer_add_printf(in, "%s", err_vectors[_i].wire);
	ck_assert_int_eq(pst_reply_parse(in, &r, PST_STAGE_RCPT, &err), 1);
	ck_assert_int_eq(pst_err_from_reply(&err, PST_STAGE_RCPT, &r), -1);
	ck_assert_int_eq(err.cls, err_vectors[_i].cls);
	ck_assert_int_eq(err.stage, PST_STAGE_RCPT);
	ck_assert_int_eq(err.smtp_code, r.code);
	ck_assert_str_eq(err.esc, r.esc);
	ck_assert_str_eq(err.text, err_vectors[_i].text);
	evbuffer_free(in);
}
END_TEST

START_TEST(reply_text_is_cut_to_fit)
{
	struct evbuffer *in = big_reply(3, 300, "");
	struct pst_err err;
	char small[8];

	ck_assert_int_eq(pst_reply_parse(in, &r, PST_STAGE_RCPT, &err), 1);
	ck_assert_str_eq(pst_reply_text(&r, small, sizeof(small)), "xxxxxxx");
	pst_err_from_reply(&err, PST_STAGE_RCPT, &r);
	ck_assert_uint_eq(strlen(err.text), PST_ERR_TEXT_MAX - 1);
	evbuffer_free(in);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("smtp/reply");
	TCase *tc;

	tc = tcase_create("parse");
	tcase_add_checked_fixture(tc, reply_setup, NULL);
	tcase_add_loop_test(tc, reply_vectors, 0, NELEMS(vectors));
	tcase_add_test(tc, reply_split_anywhere_gives_same_reply);
	tcase_add_test(tc, reply_pipelined_replies_come_one_at_a_time);
	tcase_add_test(tc, reply_stays_failed_until_reset);
	tcase_add_test(tc, reply_error_text_is_sanitised);
	tcase_add_test(tc, reply_raw_keeps_the_wire_line);
	tcase_add_test(tc, reply_survives_copy_by_assignment);
	suite_add_tcase(s, tc);

	tc = tcase_create("bounds");
	tcase_add_checked_fixture(tc, reply_setup, NULL);
	tcase_add_test(tc, reply_takes_100_lines);
	tcase_add_test(tc, reply_refuses_101_lines);
	tcase_add_test(tc, reply_refuses_thousands_of_lines);
	tcase_add_test(tc, reply_line_of_1000_bytes_is_the_limit);
	tcase_add_test(tc, reply_without_crlf_waits_then_fails_at_the_bound);
	tcase_add_test(tc, reply_refuses_more_than_64k);
	suite_add_tcase(s, tc);

	tc = tcase_create("err");
	tcase_add_checked_fixture(tc, reply_setup, NULL);
	tcase_add_loop_test(tc, reply_to_err, 0, NELEMS(err_vectors));
	tcase_add_test(tc, reply_text_is_cut_to_fit);
	suite_add_tcase(s, tc);
	return s;
}
