#include <errno.h>
#include <string.h>

#include "common/err.h"
#include "unit.h"

START_TEST(err_set_returns_minus_one_and_fills)
{
	struct pst_err err;

	ck_assert_int_eq(pst_err_set(&err, PST_TEMP, PST_STAGE_RCPT,
	    "rcpt %d", 3), -1);
	ck_assert_int_eq(err.cls, PST_TEMP);
	ck_assert_int_eq(err.stage, PST_STAGE_RCPT);
	ck_assert_str_eq(err.text, "rcpt 3");
	ck_assert_str_eq(pst_stage_name(err.stage), "rcpt");
	ck_assert_str_eq(pst_stage_doing(err.stage), "sending RCPT TO");
}
END_TEST

START_TEST(err_sys_appends_strerror)
{
	struct pst_err err;

	pst_err_sys(&err, PST_LOCAL, PST_STAGE_SPOOL, ENOSPC, "write %s",
	    "tmp/1");
	ck_assert_int_eq(err.sys_errno, ENOSPC);
	ck_assert_str_eq(err.text, "write tmp/1: No space left on device");
}
END_TEST

START_TEST(err_text_is_sanitised_and_bounded)
{
	char big[2000];
	struct pst_err err;

	pst_err_clear(&err);
	pst_err_set_text(&err, "bad\r\nline\x01\xff", 12);
	ck_assert_str_eq(err.text, "bad??line??");
	memset(big, 'a', sizeof(big));
	pst_err_set_text(&err, big, sizeof(big));
	ck_assert_uint_eq(strlen(err.text), PST_ERR_TEXT_MAX - 1);
}
END_TEST

START_TEST(err_format_is_key_value)
{
	struct pst_err err;
	char buf[256];

	pst_err_set(&err, PST_PERM, PST_STAGE_RCPT, "say \"no\"");
	err.scope = PST_SCOPE_RECIPIENT;
	err.smtp_code = 550;
	strcpy(err.esc, "5.1.1");
	ck_assert_str_eq(pst_err_format(&err, buf, sizeof(buf)),
	    "class=permanent stage=rcpt scope=recipient code=550 esc=5.1.1 "
	    "reason=\"say \\\"no\\\"\"");
	/* Truncation keeps the string terminated. */
	pst_err_format(&err, buf, 20);
	ck_assert_uint_eq(strlen(buf), 19);
}
END_TEST

START_TEST(every_stage_has_a_name)
{
	int s;

	for (s = 0; s < PST_STAGE__COUNT; s++) {
		ck_assert_ptr_nonnull(pst_stage_name(s));
		ck_assert_ptr_nonnull(pst_stage_doing(s));
	}
	ck_assert_str_eq(pst_stage_name(PST_STAGE__COUNT), "unknown");
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("common/err");
	TCase *tc = tcase_create("err");

	tcase_add_test(tc, err_set_returns_minus_one_and_fills);
	tcase_add_test(tc, err_sys_appends_strerror);
	tcase_add_test(tc, err_text_is_sanitised_and_bounded);
	tcase_add_test(tc, err_format_is_key_value);
	tcase_add_test(tc, every_stage_has_a_name);
	suite_add_tcase(s, tc);
	return s;
}
