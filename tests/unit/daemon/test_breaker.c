#include <stdint.h>
#include <string.h>
#include <time.h>

#include "posternd/breaker.h"
#include "unit.h"

/* An arbitrary start of time: the breaker never reads a clock. */
#define T0	((time_t)1700000000)

static struct breaker
closed(void)
{
	struct breaker b;

	memset(&b, 0, sizeof(b));
	return b;
}

/* Fails 'n' connections at 'now'; returns whether the last one opened. */
static bool
fail_n(struct breaker *b, unsigned n, unsigned threshold,
    uint64_t backoff_ms, time_t now, time_t *period)
{
	bool opened = false;

	while (n-- > 0)
		opened = breaker_failure(b, threshold, backoff_ms, now,
		    period);
	return opened;
}

START_TEST(breaker_closed_admits)
{
	struct breaker b = closed();
	time_t reopens = 42;

	ck_assert(breaker_admit(&b, T0, &reopens));
	ck_assert_int_eq(reopens, 0);
	ck_assert(breaker_admit(&b, T0, NULL));
	ck_assert_str_eq(breaker_state_name(&b, T0), "closed");
	/* Dispatching through a closed breaker is no probe. */
	breaker_dispatched(&b);
	ck_assert(!b.probing);
	ck_assert(breaker_admit(&b, T0, NULL));
}
END_TEST

START_TEST(breaker_opens_at_threshold)
{
	struct breaker b = closed();
	time_t period = 0, reopens = 0;

	ck_assert(!fail_n(&b, 2, 3, 30000, T0, &period));
	ck_assert(breaker_admit(&b, T0, NULL));
	ck_assert(breaker_failure(&b, 3, 30000, T0, &period));
	ck_assert_int_eq(period, 30);
	ck_assert_int_eq(b.open_until, T0 + 30);
	ck_assert_uint_eq(b.opened, 1);
	ck_assert_uint_eq(b.failures, 3);
	ck_assert(!breaker_admit(&b, T0 + 29, &reopens));
	ck_assert_int_eq(reopens, T0 + 30);
	ck_assert_str_eq(breaker_state_name(&b, T0 + 29), "open");
}
END_TEST

START_TEST(breaker_backoff_rounds_up_to_seconds)
{
	struct breaker b = closed();
	time_t period = 0;

	ck_assert(breaker_failure(&b, 1, 1500, T0, &period));
	ck_assert_int_eq(period, 2);
	b = closed();
	ck_assert(breaker_failure(&b, 1, 1, T0, &period));
	ck_assert_int_eq(period, 1);
}
END_TEST

START_TEST(breaker_late_failures_do_not_extend)
{
	struct breaker b = closed();
	time_t period = 0;

	ck_assert(breaker_failure(&b, 1, 10000, T0, &period));
	/* Connections started before it opened report in late. */
	ck_assert(!fail_n(&b, 5, 1, 10000, T0 + 5, &period));
	ck_assert_int_eq(b.open_until, T0 + 10);
	ck_assert_uint_eq(b.opened, 1);
	ck_assert_uint_eq(b.failures, 6);
}
END_TEST

START_TEST(breaker_half_open_lets_one_probe)
{
	struct breaker b = closed();
	time_t period = 0, reopens = 42;

	ck_assert(breaker_failure(&b, 1, 10000, T0, &period));
	ck_assert(breaker_admit(&b, T0 + 10, &reopens));
	ck_assert_int_eq(reopens, 0);
	ck_assert_str_eq(breaker_state_name(&b, T0 + 10), "half-open");
	breaker_dispatched(&b);
	ck_assert(b.probing);
	/* One probe at a time, and no wake-up time for the second. */
	ck_assert(!breaker_admit(&b, T0 + 11, &reopens));
	ck_assert_int_eq(reopens, 0);
	/* A probe that ended without a result frees the place. */
	breaker_probe_abandoned(&b);
	ck_assert(breaker_admit(&b, T0 + 11, NULL));
}
END_TEST

START_TEST(breaker_failed_probe_doubles)
{
	struct breaker b = closed();
	time_t period = 0, now = T0;
	const time_t want[] = { 10, 20, 40, 80, 160 };
	size_t i;

	ck_assert(breaker_failure(&b, 3, 10000, now,
	    &period) == false);
	ck_assert(fail_n(&b, 2, 3, 10000, now, &period));
	ck_assert_int_eq(period, want[0]);
	for (i = 1; i < NELEMS(want); i++) {
		now = b.open_until;
		ck_assert(breaker_admit(&b, now, NULL));
		breaker_dispatched(&b);
		/* The probe's failure opens it at once, below threshold. */
		ck_assert(breaker_failure(&b, 1000, 10000, now, &period));
		ck_assert_int_eq(period, want[i]);
		ck_assert(!b.probing);
	}
	ck_assert_uint_eq(b.opened, NELEMS(want));
}
END_TEST

START_TEST(breaker_period_is_capped)
{
	struct breaker b = closed();
	time_t period = 0;

	b.opened = 6;
	ck_assert(breaker_failure(&b, 1, 60000, T0, &period));
	ck_assert_int_eq(period, BREAKER_MAX_S);
	/* Far past any useful doubling: no overflow, still the cap. */
	b = closed();
	b.opened = 1000;
	ck_assert(breaker_failure(&b, 1, 1000, T0, &period));
	ck_assert_int_eq(period, BREAKER_MAX_S);
	b = closed();
	b.opened = 1000;
	ck_assert(breaker_failure(&b, 1, UINT64_C(1) << 40, T0, &period));
	ck_assert_int_eq(period, BREAKER_MAX_S);
}
END_TEST

START_TEST(breaker_success_closes)
{
	struct breaker b = closed();
	time_t period = 0;

	ck_assert(!breaker_success(&b));
	ck_assert(breaker_failure(&b, 1, 10000, T0, &period));
	ck_assert(breaker_admit(&b, T0 + 10, NULL));
	breaker_dispatched(&b);
	ck_assert(breaker_success(&b));
	ck_assert_int_eq(b.open_until, 0);
	ck_assert_uint_eq(b.failures, 0);
	ck_assert_uint_eq(b.opened, 0);
	ck_assert(!b.probing);
	ck_assert(breaker_admit(&b, T0 + 10, NULL));
	/* Closed again: the next opening starts from the first period. */
	ck_assert(breaker_failure(&b, 1, 10000, T0 + 20, &period));
	ck_assert_int_eq(period, 10);
}
END_TEST

START_TEST(breaker_retry_now_half_opens)
{
	struct breaker b = closed();
	time_t period = 0;

	breaker_retry_now(&b, T0);
	ck_assert_int_eq(b.open_until, 0);
	ck_assert(breaker_failure(&b, 1, 60000, T0, &period));
	breaker_retry_now(&b, T0 + 1);
	ck_assert_int_eq(b.open_until, T0 + 1);
	ck_assert(breaker_admit(&b, T0 + 1, NULL));
	/* A probe running keeps its place. */
	breaker_dispatched(&b);
	ck_assert(breaker_failure(&b, 1, 60000, T0 + 1, &period));
	b.probing = true;
	breaker_retry_now(&b, T0 + 2);
	ck_assert_int_eq(b.open_until, T0 + 1 + 120);
}
END_TEST

static struct timespec
at_ms(uint64_t ms)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(1000 + ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	return ts;
}

START_TEST(rate_unlimited)
{
	struct rate r;
	struct timespec now = at_ms(0);
	uint64_t wait_ms = 0;
	int i;

	rate_init(&r);
	for (i = 0; i < 1000; i++)
		ck_assert(rate_take(&r, 1, 0, &now, &wait_ms));
	ck_assert_uint_eq(wait_ms, 0);
}
END_TEST

START_TEST(rate_burst_then_pace)
{
	struct rate r;
	struct timespec now = at_ms(0);
	uint64_t wait_ms = 0;

	/* 2 per second: a burst of two, then one every 500 ms. */
	rate_init(&r);
	ck_assert(rate_take(&r, 2, 1000, &now, &wait_ms));
	ck_assert(rate_take(&r, 2, 1000, &now, &wait_ms));
	ck_assert(!rate_take(&r, 2, 1000, &now, &wait_ms));
	ck_assert_uint_eq(wait_ms, 501);
	now = at_ms(250);
	ck_assert(!rate_take(&r, 2, 1000, &now, &wait_ms));
	ck_assert_uint_ge(wait_ms, 250);
	ck_assert_uint_le(wait_ms, 251);
	now = at_ms(500);
	ck_assert(rate_take(&r, 2, 1000, &now, &wait_ms));
	ck_assert(!rate_take(&r, 2, 1000, &now, &wait_ms));
}
END_TEST

START_TEST(rate_refill_is_capped)
{
	struct rate r;
	struct timespec now = at_ms(0);
	uint64_t wait_ms = 0;
	int i;

	rate_init(&r);
	ck_assert(rate_take(&r, 3, 1000, &now, &wait_ms));
	/* An hour idle refills to the burst, not beyond. */
	now = at_ms(3600 * 1000);
	for (i = 0; i < 3; i++)
		ck_assert(rate_take(&r, 3, 1000, &now, &wait_ms));
	ck_assert(!rate_take(&r, 3, 1000, &now, &wait_ms));
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("daemon/breaker");
	TCase *tc = tcase_create("breaker");
	TCase *tr = tcase_create("rate");

	tcase_add_test(tc, breaker_closed_admits);
	tcase_add_test(tc, breaker_opens_at_threshold);
	tcase_add_test(tc, breaker_backoff_rounds_up_to_seconds);
	tcase_add_test(tc, breaker_late_failures_do_not_extend);
	tcase_add_test(tc, breaker_half_open_lets_one_probe);
	tcase_add_test(tc, breaker_failed_probe_doubles);
	tcase_add_test(tc, breaker_period_is_capped);
	tcase_add_test(tc, breaker_success_closes);
	tcase_add_test(tc, breaker_retry_now_half_opens);
	suite_add_tcase(s, tc);
	tcase_add_test(tr, rate_unlimited);
	tcase_add_test(tr, rate_burst_then_pace);
	tcase_add_test(tr, rate_refill_is_capped);
	suite_add_tcase(s, tr);
	return s;
}
