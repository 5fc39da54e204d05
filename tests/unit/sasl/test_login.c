#include <string.h>

#include <event2/buffer.h>

#include "sasl/sasl.h"
#include "sasl_test.h"

START_TEST(login_answers_user_then_password)
{
	struct pst_creds c = { "tim", "tanstaaftanstaaf",
	    PST_CREDS_PASSWORD };
	struct evbuffer *out = evbuffer_new();
	struct pst_sasl *s;
	struct pst_err err;
	char line[256];

	s = pst_sasl_new(pst_sasl_by_bit(PST_SASL_LOGIN), &c, &err);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(pst_sasl_start(s, out, &err), 0);
	/* No initial response: the draft's server asks first. */
	ck_assert_str_eq(take_line(out, line, sizeof(line)), "AUTH LOGIN");
	ck_assert_int_eq(pst_sasl_step(s, reply_of("334 VXNlcm5hbWU6\r\n"),
	    out, &err), 0);
	ck_assert_str_eq(take_line(out, line, sizeof(line)), "dGlt");
	ck_assert_int_eq(pst_sasl_step(s, reply_of("334 UGFzc3dvcmQ6\r\n"),
	    out, &err), 0);
	ck_assert_str_eq(take_line(out, line, sizeof(line)),
	    "dGFuc3RhYWZ0YW5zdGFhZg==");
	ck_assert_uint_eq(evbuffer_get_length(out), 0);
	ck_assert_int_eq(pst_sasl_done(s, reply_of("235 ok\r\n"), &err), 0);
	pst_sasl_free(s);
	evbuffer_free(out);
}
END_TEST

START_TEST(login_ignores_prompt_wording)
{
	struct pst_creds c = { "tim", "pw", PST_CREDS_PASSWORD };
	struct evbuffer *out = evbuffer_new();
	struct pst_sasl *s;
	struct pst_err err;
	char line[256], chal[128];

	s = pst_sasl_new(pst_sasl_by_bit(PST_SASL_LOGIN), &c, &err);
	ck_assert_int_eq(pst_sasl_start(s, out, &err), 0);
	take_line(out, line, sizeof(line));
	ck_assert_int_eq(pst_sasl_step(s, reply_of(challenge_of("User Name",
	    9, chal, sizeof(chal))), out, &err), 0);
	ck_assert_str_eq(take_line(out, line, sizeof(line)), "dGlt");
	ck_assert_int_eq(pst_sasl_step(s, reply_of("334 \r\n"), out, &err),
	    0);
	ck_assert_str_eq(take_line(out, line, sizeof(line)), "cHc=");
	pst_sasl_free(s);
	evbuffer_free(out);
}
END_TEST

START_TEST(login_refuses_a_third_challenge)
{
	struct pst_creds c = { "tim", "pw", PST_CREDS_PASSWORD };
	struct evbuffer *out = evbuffer_new();
	struct pst_sasl *s;
	struct pst_err err;

	s = pst_sasl_new(pst_sasl_by_bit(PST_SASL_LOGIN), &c, &err);
	ck_assert_int_eq(pst_sasl_start(s, out, &err), 0);
	ck_assert_int_eq(pst_sasl_step(s, reply_of("334 VXNlcm5hbWU6\r\n"),
	    out, &err), 0);
	ck_assert_int_eq(pst_sasl_step(s, reply_of("334 UGFzc3dvcmQ6\r\n"),
	    out, &err), 0);
	evbuffer_drain(out, evbuffer_get_length(out));
	ck_assert_int_eq(pst_sasl_step(s, reply_of("334 UGFzc3dvcmQ6\r\n"),
	    out, &err), -1);
	ck_assert_int_eq(err.cls, PST_TEMP);
	ck_assert_uint_eq(evbuffer_get_length(out), 0);
	pst_sasl_free(s);
	evbuffer_free(out);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("sasl/login");
	TCase *tc = tcase_create("login");

	tcase_add_test(tc, login_answers_user_then_password);
	tcase_add_test(tc, login_ignores_prompt_wording);
	tcase_add_test(tc, login_refuses_a_third_challenge);
	suite_add_tcase(s, tc);
	return s;
}
