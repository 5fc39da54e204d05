/*
 * breaker.h: an upstream's circuit breaker and its rate bucket.
 *
 * The breaker counts an upstream's consecutive connection failures.  At
 * queue.breaker_failures it opens: the upstream is skipped for
 * queue.breaker_backoff, doubled each time it opens again in a row (up
 * to an hour).  When the period is over it is half open: one delivery
 * goes through as a probe; its success closes the breaker, its failure
 * opens it again.  Both the scheduler (the first upstream of a new
 * delivery) and a delivery failing over (the next one) ask the same
 * question, breaker_admit().
 *
 * The rate bucket holds rate_count tokens and refills at rate_count per
 * rate_per: a burst, then the configured pace.  One token is one message.
 *
 * Both are plain values: the caller passes the time, so they are tested
 * without waiting.
 */
#ifndef POSTERN_BREAKER_H
#define POSTERN_BREAKER_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct breaker {
	unsigned	 failures;	/* consecutive connection failures */
	time_t		 open_until;	/* open until then; 0: closed */
	unsigned	 opened;	/* times opened in a row */
	bool		 probing;	/* a half-open probe is running */
};

/*
 * breaker_admit()
 * Whether a delivery may use the upstream at 'now': closed, or half open
 * with no probe out.  When it is refused because it is open, '*reopens'
 * (if not NULL) is the time it becomes half open; else 0.
 */
bool		 breaker_admit(const struct breaker *b, time_t now,
		    time_t *reopens);

/*
 * breaker_dispatched()
 * A delivery was started through an admitted upstream: when the breaker
 * is half open, that delivery is its probe.
 */
void		 breaker_dispatched(struct breaker *b);

/*
 * breaker_probe_abandoned()
 * A delivery ended (or never started) without a connection result: a
 * probe it was is not waited for any longer.
 */
void		 breaker_probe_abandoned(struct breaker *b);

/*
 * breaker_success()
 * A connection worked: the breaker closes.  Returns true when it was
 * open or half open.
 */
bool		 breaker_success(struct breaker *b);

/*
 * breaker_failure()
 * A connection failed at 'now'.  Opens the breaker after 'threshold'
 * consecutive failures, or when its probe failed, for 'backoff_ms'
 * (rounded up to seconds) doubled for each time it opened in a row,
 * BREAKER_MAX_S at most.  Returns true when it opened, with '*period'
 * the seconds it stays open.
 */
bool		 breaker_failure(struct breaker *b, unsigned threshold,
		    uint64_t backoff_ms, time_t now, time_t *period);

/*
 * breaker_retry_now()
 * An operator's flush: an open breaker becomes half open at once.
 */
void		 breaker_retry_now(struct breaker *b, time_t now);

/*
 * breaker_state_name()
 * "closed", "open" or "half-open" at 'now', for status and logs.
 */
const char	*breaker_state_name(const struct breaker *b, time_t now);

/*
 * Longest open period, seconds: however long an upstream has been down,
 * it is probed again at least hourly, so one that came back is used
 * again within the hour.
 */
#define BREAKER_MAX_S		3600

struct rate {
	double		 tokens;	/* < 0: full on first use */
	struct timespec	 refilled;	/* when 'tokens' was last brought up
					   to date (CLOCK_MONOTONIC) */
};

/*
 * rate_init()
 * An untouched bucket: full at its first use.
 */
void		 rate_init(struct rate *r);

/*
 * rate_take()
 * Takes one token at 'now' (CLOCK_MONOTONIC) from a bucket of 'count'
 * tokens refilled at 'count' per 'per_ms'.  Returns true, or false with
 * '*wait_ms' the time until a token is back.  'per_ms' 0: no limit.
 */
bool		 rate_take(struct rate *r, unsigned count, uint64_t per_ms,
		    const struct timespec *now, uint64_t *wait_ms);

#endif /* POSTERN_BREAKER_H */
