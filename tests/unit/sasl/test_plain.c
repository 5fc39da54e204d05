#include <string.h>

#include <event2/buffer.h>

#include "sasl/sasl.h"
#include "sasl_test.h"

START_TEST(plain_sends_everything_at_once)
{
	struct pst_creds c = { "tim", "tanstaaftanstaaf",
	    PST_CREDS_PASSWORD };
	struct evbuffer *out = evbuffer_new();
	struct pst_sasl *s;
	struct pst_err err;
	char line[256];

	s = pst_sasl_new(pst_sasl_by_bit(PST_SASL_PLAIN), &c, &err);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(pst_sasl_start(s, out, &err), 0);
	/* RFC 4616 §2: empty authzid NUL authcid NUL passwd. */
	ck_assert_str_eq(take_line(out, line, sizeof(line)),
	    "AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
	ck_assert_uint_eq(evbuffer_get_length(out), 0);
	ck_assert_int_eq(pst_sasl_done(s, reply_of(
	    "235 2.7.0 Authentication successful\r\n"), &err), 0);
	pst_sasl_free(s);
	evbuffer_free(out);
}
END_TEST

START_TEST(plain_keeps_any_byte_of_the_password)
{
	struct pst_creds c = { "user@example.org", "p\xc3\xa4ss word:\t=",
	    PST_CREDS_PASSWORD };
	struct evbuffer *out = evbuffer_new();
	static const char want[] = "\0user@example.org\0p\xc3\xa4ss word:\t=";
	unsigned char raw[128];
	struct pst_sasl *s;
	struct pst_err err;
	char line[256];
	size_t n;

	s = pst_sasl_new(pst_sasl_by_bit(PST_SASL_PLAIN), &c, &err);
	ck_assert_int_eq(pst_sasl_start(s, out, &err), 0);
	take_line(out, line, sizeof(line));
	ck_assert(strncmp(line, "AUTH PLAIN ", 11) == 0);
	n = raw_of(line + 11, raw, sizeof(raw));
	ck_assert_uint_eq(n, sizeof(want) - 1);
	ck_assert(memcmp(raw, want, n) == 0);
	pst_sasl_free(s);
	evbuffer_free(out);
}
END_TEST

START_TEST(plain_refuses_a_challenge)
{
	struct pst_creds c = { "tim", "pw", PST_CREDS_PASSWORD };
	struct evbuffer *out = evbuffer_new();
	struct pst_sasl *s;
	struct pst_err err;

	s = pst_sasl_new(pst_sasl_by_bit(PST_SASL_PLAIN), &c, &err);
	ck_assert_int_eq(pst_sasl_start(s, out, &err), 0);
	evbuffer_drain(out, evbuffer_get_length(out));
	ck_assert_int_eq(pst_sasl_step(s, reply_of("334 \r\n"), out, &err),
	    -1);
	ck_assert_int_eq(err.cls, PST_TEMP);
	ck_assert_uint_eq(evbuffer_get_length(out), 0);
	pst_sasl_free(s);
	evbuffer_free(out);
}
END_TEST

START_TEST(plain_takes_the_longest_password)
{
	static char secret[PST_SASL_SECRET_MAX + 1];
	struct pst_creds c = { "u", secret, PST_CREDS_PASSWORD };
	struct evbuffer *out = evbuffer_new();
	struct pst_sasl *s;
	struct pst_err err;

	memset(secret, 'p', PST_SASL_SECRET_MAX);
	s = pst_sasl_new(pst_sasl_by_bit(PST_SASL_PLAIN), &c, &err);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(pst_sasl_start(s, out, &err), 0);
	/* "AUTH PLAIN " + base64 of 4099 bytes + CRLF. */
	ck_assert_uint_eq(evbuffer_get_length(out), 11 + 4 * 1367 + 2);
	pst_sasl_free(s);
	evbuffer_free(out);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("sasl/plain");
	TCase *tc = tcase_create("plain");

	tcase_add_test(tc, plain_sends_everything_at_once);
	tcase_add_test(tc, plain_keeps_any_byte_of_the_password);
	tcase_add_test(tc, plain_refuses_a_challenge);
	tcase_add_test(tc, plain_takes_the_longest_password);
	suite_add_tcase(s, tc);
	return s;
}
