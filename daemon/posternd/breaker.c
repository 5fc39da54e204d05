/*
 * breaker.c: an upstream's circuit breaker and its rate bucket.
 */
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "breaker.h"

/*
 * Doublings of the open period that still count: 2^12 s is past
 * BREAKER_MAX_S even from the shortest backoff (1 s), so more change
 * nothing, and the cap keeps the shift within a time_t.
 */
#define BREAKER_MAX_DOUBLINGS	12

bool
breaker_admit(const struct breaker *b, time_t now, time_t *reopens)
{
	if (reopens != NULL)
		*reopens = 0;
	if (b->open_until == 0)
		return true;
	if (now < b->open_until) {
		if (reopens != NULL)
			*reopens = b->open_until;
		return false;
	}
	/* Half open: one probe at a time. */
	return !b->probing;
}

void
breaker_dispatched(struct breaker *b)
{
	if (b->open_until != 0)
		b->probing = true;
}

void
breaker_probe_abandoned(struct breaker *b)
{
	b->probing = false;
}

bool
breaker_success(struct breaker *b)
{
	bool was_open = b->open_until != 0;

	b->failures = 0;
	b->opened = 0;
	b->open_until = 0;
	b->probing = false;
	return was_open;
}

bool
breaker_failure(struct breaker *b, unsigned threshold, uint64_t backoff_ms,
    time_t now, time_t *period)
{
	time_t p;

	b->failures++;
	/*
	 * Open already: connections started before it opened report in
	 * late, and must not open it again (doubling the wait).
	 */
	if (b->open_until > now && !b->probing)
		return false;
	if (!b->probing && b->failures < threshold)
		return false;
	/* Doubles each time it opens again, up to BREAKER_MAX_S. */
	p = (time_t)((backoff_ms + 999) / 1000) <<
	    (b->opened < BREAKER_MAX_DOUBLINGS ? b->opened :
	    BREAKER_MAX_DOUBLINGS);
	if (p > BREAKER_MAX_S)
		p = BREAKER_MAX_S;
	b->open_until = now + p;
	b->opened++;
	b->probing = false;
	*period = p;
	return true;
}

void
breaker_retry_now(struct breaker *b, time_t now)
{
	if (b->open_until != 0 && !b->probing)
		b->open_until = now;
}

const char *
breaker_state_name(const struct breaker *b, time_t now)
{
	if (b->open_until == 0)
		return "closed";
	return now < b->open_until ? "open" : "half-open";
}

void
rate_init(struct rate *r)
{
	r->tokens = -1;
	r->refilled.tv_sec = 0;
	r->refilled.tv_nsec = 0;
}

static double
seconds(const struct timespec *ts)
{
	return (double)ts->tv_sec + (double)ts->tv_nsec / 1e9;
}

bool
rate_take(struct rate *r, unsigned count, uint64_t per_ms,
    const struct timespec *now, uint64_t *wait_ms)
{
	double per_s;

	if (per_ms == 0)
		return true;
	per_s = (double)count / ((double)per_ms / 1000.0);
	if (r->tokens < 0)
		r->tokens = count;
	else {
		r->tokens += per_s * (seconds(now) - seconds(&r->refilled));
		if (r->tokens > count)
			r->tokens = count;
	}
	r->refilled = *now;
	if (r->tokens >= 1.0) {
		r->tokens -= 1.0;
		return true;
	}
	*wait_ms = (uint64_t)((1.0 - r->tokens) / per_s * 1000.0) + 1;
	return false;
}
