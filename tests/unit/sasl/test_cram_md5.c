#include <string.h>

#include <event2/buffer.h>

#include "sasl/sasl.h"
#include "sasl_test.h"

START_TEST(cram_md5_rfc2195_example)
{
	struct pst_creds c = { "tim", "tanstaaftanstaaf",
	    PST_CREDS_PASSWORD };
	struct evbuffer *out = evbuffer_new();
	unsigned char raw[128];
	struct pst_sasl *s;
	struct pst_err err;
	char line[256];
	size_t n;

	s = pst_sasl_new(pst_sasl_by_bit(PST_SASL_CRAM_MD5), &c, &err);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(pst_sasl_start(s, out, &err), 0);
	ck_assert_str_eq(take_line(out, line, sizeof(line)),
	    "AUTH CRAM-MD5");
	/* RFC 2195 §2: <1896.697170952@postoffice.reston.mci.net>. */
	ck_assert_int_eq(pst_sasl_step(s, reply_of("334 PDE4OTYuNjk3MTcwOTUy"
	    "QHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n"), out, &err), 0);
	take_line(out, line, sizeof(line));
	ck_assert_str_eq(line,
	    "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw");
	n = raw_of(line, raw, sizeof(raw) - 1);
	raw[n] = '\0';
	ck_assert_str_eq((char *)raw, "tim b913a602c7eda7a495b4e6e7334d3890");
	ck_assert_int_eq(pst_sasl_done(s, reply_of("235 2.7.0 ok\r\n"), &err),
	    0);
	pst_sasl_free(s);
	evbuffer_free(out);
}
END_TEST

START_TEST(cram_md5_refuses_empty_and_second_challenges)
{
	struct pst_creds c = { "tim", "tanstaaftanstaaf",
	    PST_CREDS_PASSWORD };
	struct evbuffer *out = evbuffer_new();
	struct pst_sasl *s;
	struct pst_err err;

	s = pst_sasl_new(pst_sasl_by_bit(PST_SASL_CRAM_MD5), &c, &err);
	ck_assert_int_eq(pst_sasl_start(s, out, &err), 0);
	evbuffer_drain(out, evbuffer_get_length(out));
	ck_assert_int_eq(pst_sasl_step(s, reply_of("334 \r\n"), out, &err),
	    -1);
	ck_assert_ptr_nonnull(strstr(err.text, "empty"));
	pst_sasl_free(s);

	s = pst_sasl_new(pst_sasl_by_bit(PST_SASL_CRAM_MD5), &c, &err);
	ck_assert_int_eq(pst_sasl_start(s, out, &err), 0);
	ck_assert_int_eq(pst_sasl_step(s, reply_of("334 PDE+\r\n"), out,
	    &err), 0);
	evbuffer_drain(out, evbuffer_get_length(out));
	ck_assert_int_eq(pst_sasl_step(s, reply_of("334 PDE+\r\n"), out,
	    &err), -1);
	ck_assert_int_eq(err.cls, PST_TEMP);
	ck_assert_uint_eq(evbuffer_get_length(out), 0);
	pst_sasl_free(s);
	evbuffer_free(out);
}
END_TEST

START_TEST(cram_md5_hashes_binary_challenges)
{
	static const unsigned char chal[] = { 0x00, 0xff, 0x0d, 0x0a, 0x3c };
	struct pst_creds c = { "tim", "tanstaaftanstaaf",
	    PST_CREDS_PASSWORD };
	struct evbuffer *out = evbuffer_new();
	unsigned char raw[128];
	struct pst_sasl *s;
	struct pst_err err;
	char line[256], wire[64];
	size_t n;

	s = pst_sasl_new(pst_sasl_by_bit(PST_SASL_CRAM_MD5), &c, &err);
	ck_assert_int_eq(pst_sasl_start(s, out, &err), 0);
	take_line(out, line, sizeof(line));
	ck_assert_int_eq(pst_sasl_step(s, reply_of(challenge_of(chal,
	    sizeof(chal), wire, sizeof(wire))), out, &err), 0);
	n = raw_of(take_line(out, line, sizeof(line)), raw, sizeof(raw));
	/* "tim " and 32 lower-case hex digits (raw is not a string). */
	ck_assert_uint_eq(n, 36);
	ck_assert_uint_lt(n, sizeof(raw));
	raw[n] = '\0';
	ck_assert_uint_eq(strspn((char *)raw + 4, "0123456789abcdef"), 32);
	pst_sasl_free(s);
	evbuffer_free(out);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("sasl/cram_md5");
	TCase *tc = tcase_create("cram_md5");

	tcase_add_test(tc, cram_md5_rfc2195_example);
	tcase_add_test(tc, cram_md5_refuses_empty_and_second_challenges);
	tcase_add_test(tc, cram_md5_hashes_binary_challenges);
	suite_add_tcase(s, tc);
	return s;
}
