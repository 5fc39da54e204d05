#include <string.h>

#include <event2/buffer.h>

#include "sasl/sasl.h"
#include "sasl_test.h"

START_TEST(xoauth2_sends_user_and_bearer_token)
{
	struct pst_creds c = { "someuser@example.com",
	    "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
	    PST_CREDS_TOKEN };
	struct evbuffer *out = evbuffer_new();
	struct pst_sasl *s;
	struct pst_err err;
	char line[512];

	s = pst_sasl_new(pst_sasl_by_bit(PST_SASL_XOAUTH2), &c, &err);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(pst_sasl_start(s, out, &err), 0);
	/* "user=someuser@example.com^Aauth=Bearer ya29...^A^A" */
	ck_assert_str_eq(take_line(out, line, sizeof(line)),
	    "AUTH XOAUTH2 dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5"
	    "YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==");
	ck_assert_int_eq(pst_sasl_done(s, reply_of(
	    "235 2.7.0 Accepted\r\n"), &err), 0);
	pst_sasl_free(s);
	evbuffer_free(out);
}
END_TEST

START_TEST(xoauth2_answers_the_error_challenge_with_nothing)
{
	struct pst_creds c = { "someuser@example.com", "expired",
	    PST_CREDS_TOKEN };
	struct evbuffer *out = evbuffer_new();
	struct pst_sasl *s;
	struct pst_err err;
	char line[512];

	s = pst_sasl_new(pst_sasl_by_bit(PST_SASL_XOAUTH2), &c, &err);
	ck_assert_int_eq(pst_sasl_start(s, out, &err), 0);
	take_line(out, line, sizeof(line));
	/* {"status":"401","schemes":"bearer","scope":"https://mail...} */
	ck_assert_int_eq(pst_sasl_step(s, reply_of("334 eyJzdGF0dXMiOiI0MDEi"
	    "LCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xl"
	    "LmNvbS8ifQ==\r\n"), out, &err), 0);
	ck_assert_str_eq(take_line(out, line, sizeof(line)), "");
	ck_assert_uint_eq(evbuffer_get_length(out), 0);
	ck_assert_int_eq(pst_sasl_step(s, reply_of("334 e30=\r\n"), out,
	    &err), -1);
	ck_assert_uint_eq(evbuffer_get_length(out), 0);
	pst_sasl_free(s);
	evbuffer_free(out);
}
END_TEST

START_TEST(xoauth2_wants_a_token)
{
	struct pst_creds c = { "someuser@example.com", "password",
	    PST_CREDS_PASSWORD };
	struct pst_err err;

	ck_assert_ptr_null(pst_sasl_new(pst_sasl_by_bit(PST_SASL_XOAUTH2), &c,
	    &err));
	ck_assert_int_eq(err.cls, PST_LOCAL);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("sasl/xoauth2");
	TCase *tc = tcase_create("xoauth2");

	tcase_add_test(tc, xoauth2_sends_user_and_bearer_token);
	tcase_add_test(tc, xoauth2_answers_the_error_challenge_with_nothing);
	tcase_add_test(tc, xoauth2_wants_a_token);
	suite_add_tcase(s, tc);
	return s;
}
