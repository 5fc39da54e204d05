/*
 * backoff.c: the retry delay, a pure function of the schedule, the number
 * of attempts and a random number.
 *
 * All arithmetic is 64-bit on 32-bit inputs, so no combination of step,
 * jitter and random input can overflow before the cap applies.
 */
#include <stdint.h>

#include "spool/backoff.h"

static const uint32_t default_steps[] = { 60, 300, 900, 1800, 3600 };

uint32_t
pst_backoff_next(const struct pst_backoff *b, unsigned attempts, uint32_t rnd)
{
	const uint32_t *steps = default_steps;
	size_t nsteps = sizeof(default_steps) / sizeof(default_steps[0]);
	unsigned jitter = 0;
	uint64_t base, delay;
	size_t i;

	if (attempts == 0)
		return 0;
	if (b != NULL && b->steps != NULL && b->nsteps > 0) {
		steps = b->steps;
		nsteps = b->nsteps;
	}
	if (b != NULL)
		jitter = b->jitter_pct > PST_BACKOFF_JITTER_MAX ?
		    PST_BACKOFF_JITTER_MAX : b->jitter_pct;
	i = attempts > nsteps ? nsteps - 1 : attempts - 1;
	base = steps[i];
	/* base * rnd < 2^64; the stretch is below base itself. */
	delay = base + ((base * rnd) >> 32) * jitter / 100;
	if (b != NULL && b->cap != 0 && delay > b->cap)
		delay = b->cap;
	if (delay > UINT32_MAX)
		delay = UINT32_MAX;
	if (delay == 0)
		delay = 1;
	return (uint32_t)delay;
}
