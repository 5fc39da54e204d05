/*
 * backoff.h: when to try a deferred message again.
 *
 * A retry schedule is a list of delays, one per failed attempt; after the
 * list runs out its last delay repeats.  Each delay is stretched by a
 * random part of up to 'jitter_pct' percent, upwards only (a retry never
 * comes earlier than the schedule says), so that messages deferred
 * together do not all come back in the same second, and the result is
 * capped.  The random input is an argument: the function is pure and its
 * tests are plain vectors.
 */
#ifndef PST_BACKOFF_H
#define PST_BACKOFF_H

#include <stddef.h>
#include <stdint.h>

#define PST_BACKOFF_JITTER_MAX	100	/* percent */

struct pst_backoff {
	const uint32_t	*steps;		/* seconds; NULL: the default */
	size_t		 nsteps;	/* 0: the default schedule */
	uint32_t	 cap;		/* longest delay; 0: no cap */
	unsigned	 jitter_pct;	/* 0 .. PST_BACKOFF_JITTER_MAX */
};

/*
 * pst_backoff_next()
 * Seconds to wait after 'attempts' failed attempts (1 after the first
 * failure) before the next one: steps[min(attempts, nsteps) - 1]
 * stretched by jitter_pct * rnd / 2^32 percent, then capped by 'cap'.
 * 'rnd' is any 32-bit random number.  The default schedule is the
 * configuration's default, 1m 5m 15m 30m 1h.  'attempts' 0 gives 0 (due
 * now).  A jitter above PST_BACKOFF_JITTER_MAX counts as the maximum.
 * Any other result is at least 1.
 */
uint32_t	 pst_backoff_next(const struct pst_backoff *b,
		    unsigned attempts, uint32_t rnd);

#endif /* PST_BACKOFF_H */
