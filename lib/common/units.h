/*
 * units.h: durations and sizes as people write them in config files.
 *
 * Durations: one or more <number><unit> groups with units ms, s, m, h, d,
 * e.g. "500ms", "4s", "1h30m", "5d".  Sizes: a number of bytes with an
 * optional K, M or G suffix (powers of 1024), e.g. "52428800", "50M".
 * Pure functions: no allocation, no locale, no errno.
 */
#ifndef PST_UNITS_H
#define PST_UNITS_H

#include <stdint.h>

/* The largest duration accepted: about 68 years, so any value fits. */
#define PST_DURATION_MAX_MS	((uint64_t)INT32_MAX * 1000)

/*
 * pst_duration_parse()
 * Parses 's' into milliseconds in '*ms'.  Returns 0, or -1 with '*why'
 * pointing at a static phrase that completes "... is not a duration: "
 * (e.g. "unknown unit 'x'").
 */
int		 pst_duration_parse(const char *s, uint64_t *ms,
		    const char **why);

/*
 * pst_duration_format()
 * Writes 'ms' in the shortest exact form ("90s" -> "1m30s", 0 -> "0s")
 * into 'buf' of 'len' bytes.  Returns 'buf'.
 */
char		*pst_duration_format(uint64_t ms, char *buf, unsigned len);

/*
 * pst_size_parse()
 * Parses 's' into bytes.  Returns 0, or -1 with '*why' set as above.
 */
int		 pst_size_parse(const char *s, uint64_t *bytes,
		    const char **why);

#endif /* PST_UNITS_H */
