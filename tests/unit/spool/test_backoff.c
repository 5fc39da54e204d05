#include <stdint.h>

#include "spool/backoff.h"
#include "unit.h"

static const uint32_t schedule[] = { 60, 300, 900 };

static const struct {
	const char	*what;
	const uint32_t	*steps;
	size_t		 nsteps;
	uint32_t	 cap;
	unsigned	 jitter;
	unsigned	 attempts;
	uint32_t	 rnd;
	uint32_t	 want;
} vectors[] = {
	{ "no attempt yet is due now", schedule, 3, 0, 10, 0, 0, 0 },
	{ "first failure, no jitter", schedule, 3, 0, 0, 1, 12345, 60 },
	{ "second failure", schedule, 3, 0, 0, 2, 0, 300 },
	{ "third failure", schedule, 3, 0, 0, 3, 0, 900 },
	{ "past the schedule the last step repeats", schedule, 3, 0, 0, 9,
	    0, 900 },
	{ "huge attempt count", schedule, 3, 0, 0, UINT32_MAX, 0, 900 },
	{ "zero random input adds nothing", schedule, 3, 0, 10, 1, 0, 60 },
	{ "half random input adds half the jitter", schedule, 3, 0, 10, 2,
	    UINT32_C(0x80000000), 315 },
	{ "maximal random input stays below base + jitter", schedule, 3, 0,
	    10, 3, UINT32_MAX, 989 },
	{ "jitter never makes it earlier", schedule, 3, 0, 50, 1, 1, 60 },
	{ "cap applies after jitter", schedule, 3, 600, 50, 3, UINT32_MAX,
	    600 },
	{ "cap below the first step", schedule, 3, 30, 0, 1, 0, 30 },
	{ "jitter above the maximum counts as 100%", schedule, 3, 0, 1000, 1,
	    UINT32_C(0x80000000), 90 },
	{ "default schedule, first step", NULL, 0, 0, 0, 1, 0, 60 },
	{ "default schedule, last step", NULL, 0, 0, 0, 42, 0, 3600 },
	{ "default schedule when nsteps is 0", schedule, 0, 0, 0, 2, 0, 300 },
	{ "zero step still waits a second", (const uint32_t[]){ 0 }, 1, 0, 0,
	    1, 0, 1 },
	{ "largest step with full jitter saturates", (const uint32_t[]){
	    UINT32_MAX }, 1, 0, 100, 1, UINT32_MAX, UINT32_MAX },
};

START_TEST(backoff_vectors)
{
	struct pst_backoff b = {
		vectors[_i].steps, vectors[_i].nsteps, vectors[_i].cap,
		vectors[_i].jitter
	};
	uint32_t got;

	got = pst_backoff_next(&b, vectors[_i].attempts, vectors[_i].rnd);
	ck_assert_msg(got == vectors[_i].want, "%s: got %u, want %u",
	    vectors[_i].what, got, vectors[_i].want);
}
END_TEST

START_TEST(backoff_null_schedule_is_default)
{
	ck_assert_uint_eq(pst_backoff_next(NULL, 1, UINT32_MAX), 60);
	ck_assert_uint_eq(pst_backoff_next(NULL, 5, 0), 3600);
	ck_assert_uint_eq(pst_backoff_next(NULL, 0, 0), 0);
}
END_TEST

START_TEST(backoff_jitter_spreads_within_bounds)
{
	struct pst_backoff b = { schedule, 3, 0, 20 };
	uint32_t rnd, d, lo = UINT32_MAX, hi = 0;
	uint64_t i;

	for (i = 0; i < 1000; i++) {
		rnd = (uint32_t)(i * UINT64_C(4294967) + 7);
		d = pst_backoff_next(&b, 2, rnd);
		if (d < lo)
			lo = d;
		if (d > hi)
			hi = d;
	}
	ck_assert_uint_ge(lo, 300);
	ck_assert_uint_lt(hi, 360);
	ck_assert_uint_gt(hi - lo, 50);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("spool/backoff");
	TCase *tc = tcase_create("backoff");

	tcase_add_loop_test(tc, backoff_vectors, 0, NELEMS(vectors));
	tcase_add_test(tc, backoff_null_schedule_is_default);
	tcase_add_test(tc, backoff_jitter_spreads_within_bounds);
	suite_add_tcase(s, tc);
	return s;
}
