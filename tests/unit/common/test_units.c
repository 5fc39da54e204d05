#include <stdint.h>
#include <string.h>

#include "common/units.h"
#include "unit.h"

static const struct {
	const char	*in;
	int		 ok;
	uint64_t	 ms;
} durations[] = {
	{ "500ms", 1, 500 },
	{ "4s", 1, 4000 },
	{ "5m", 1, 300000 },
	{ "2h", 1, 7200000 },
	{ "5d", 1, 432000000 },
	{ "1h30m", 1, 5400000 },
	{ "0s", 1, 0 },
	{ "1m500ms", 1, 60500 },
	{ "", 0, 0 },
	{ "4x", 0, 0 },
	{ "4", 0, 0 },
	{ "s", 0, 0 },
	{ "-1s", 0, 0 },
	{ "4 s", 0, 0 },
	{ " 4s", 0, 0 },
	{ "4sec", 0, 0 },
	{ "4S", 0, 0 },
	{ "99999999999d", 0, 0 },
	{ "3000000d", 0, 0 },
};

START_TEST(duration_vectors)
{
	const char *why = NULL;
	uint64_t ms = 12345;
	int rc;

	rc = pst_duration_parse(durations[_i].in, &ms, &why);
	if (durations[_i].ok) {
		ck_assert_msg(rc == 0, "\"%s\" refused: %s", durations[_i].in,
		    why);
		ck_assert_uint_eq(ms, durations[_i].ms);
	} else {
		ck_assert_msg(rc == -1, "\"%s\" accepted", durations[_i].in);
		ck_assert_ptr_nonnull(why);
		ck_assert_uint_eq(ms, 12345);
	}
}
END_TEST

START_TEST(duration_format_round_trips)
{
	static const uint64_t values[] = { 0, 1, 999, 1000, 90000, 5400000,
	    432000000, 93784005 };
	const char *why;
	uint64_t back;
	char buf[64];
	size_t i;

	for (i = 0; i < NELEMS(values); i++) {
		pst_duration_format(values[i], buf, sizeof(buf));
		ck_assert_int_eq(pst_duration_parse(buf, &back, &why), 0);
		ck_assert_uint_eq(back, values[i]);
	}
	ck_assert_str_eq(pst_duration_format(90000, buf, sizeof(buf)),
	    "1m30s");
}
END_TEST

START_TEST(size_vectors)
{
	const char *why;
	uint64_t n;

	ck_assert_int_eq(pst_size_parse("52428800", &n, &why), 0);
	ck_assert_uint_eq(n, 52428800);
	ck_assert_int_eq(pst_size_parse("50M", &n, &why), 0);
	ck_assert_uint_eq(n, 52428800);
	ck_assert_int_eq(pst_size_parse("64K", &n, &why), 0);
	ck_assert_uint_eq(n, 65536);
	ck_assert_int_eq(pst_size_parse("1GB", &n, &why), 0);
	ck_assert_uint_eq(n, 1073741824);
	ck_assert_int_eq(pst_size_parse("", &n, &why), -1);
	ck_assert_int_eq(pst_size_parse("M", &n, &why), -1);
	ck_assert_int_eq(pst_size_parse("5T", &n, &why), -1);
	ck_assert_int_eq(pst_size_parse("5MM", &n, &why), -1);
	ck_assert_int_eq(pst_size_parse("99999999999999999999", &n, &why),
	    -1);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("common/units");
	TCase *tc = tcase_create("units");

	tcase_add_loop_test(tc, duration_vectors, 0, NELEMS(durations));
	tcase_add_test(tc, duration_format_round_trips);
	tcase_add_test(tc, size_vectors);
	suite_add_tcase(s, tc);
	return s;
}
