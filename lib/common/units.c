/*
 * units.c: duration and size parsing, strict on purpose: "4x", "4 s",
 * "-1s", "" and "30" (no unit) are refused rather than guessed.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/units.h"

struct unit {
	const char	*name;
	uint64_t	 ms;
};

/* Longest names first, so that "ms" is not read as "m" followed by "s". */
static const struct unit duration_units[] = {
	{ "ms", 1 },
	{ "s", 1000 },
	{ "m", 60 * 1000 },
	{ "h", 60 * 60 * 1000 },
	{ "d", 24 * 60 * 60 * 1000 },
};

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int
pst_duration_parse(const char *s, uint64_t *ms, const char **why)
{
	uint64_t total = 0, n;
	size_t i, len;
	bool matched;

	if (*s == '\0') {
		*why = "empty";
		return -1;
	}
	while (*s != '\0') {
		if (!is_digit(*s)) {
			*why = "expected a number";
			return -1;
		}
		for (n = 0; is_digit(*s); s++) {
			n = n * 10 + (uint64_t)(*s - '0');
			if (n > PST_DURATION_MAX_MS) {
				*why = "too large";
				return -1;
			}
		}
		if (*s == '\0') {
			*why = "missing unit (ms, s, m, h or d)";
			return -1;
		}
		matched = false;
		for (i = 0; i < sizeof(duration_units) /
		    sizeof(duration_units[0]); i++) {
			len = strlen(duration_units[i].name);
			if (strncmp(s, duration_units[i].name, len) == 0 &&
			    !(s[len] >= 'a' && s[len] <= 'z')) {
				n *= duration_units[i].ms;
				s += len;
				matched = true;
				break;
			}
		}
		if (!matched) {
			*why = "unknown unit (use ms, s, m, h or d)";
			return -1;
		}
		total += n;
		if (n > PST_DURATION_MAX_MS || total > PST_DURATION_MAX_MS) {
			*why = "too large";
			return -1;
		}
	}
	*ms = total;
	return 0;
}

char *
pst_duration_format(uint64_t ms, char *buf, unsigned len)
{
	size_t i, off = 0;
	uint64_t n;
	int w;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	if (ms == 0) {
		snprintf(buf, len, "0s");
		return buf;
	}
	for (i = sizeof(duration_units) / sizeof(duration_units[0]); i-- > 0;) {
		n = ms / duration_units[i].ms;
		if (n == 0)
			continue;
		ms -= n * duration_units[i].ms;
		w = snprintf(buf + off, len - off, "%llu%s",
		    (unsigned long long)n, duration_units[i].name);
		if (w < 0 || (size_t)w >= len - off)
			break;
		off += (size_t)w;
	}
	return buf;
}

int
pst_size_parse(const char *s, uint64_t *bytes, const char **why)
{
	uint64_t n = 0, mult = 1;

	if (!is_digit(*s)) {
		*why = *s == '\0' ? "empty" : "expected a number";
		return -1;
	}
	for (; is_digit(*s); s++) {
		n = n * 10 + (uint64_t)(*s - '0');
		if (n > ((uint64_t)1 << 50)) {
			*why = "too large";
			return -1;
		}
	}
	switch (*s) {
	case '\0':
		break;
	case 'k':
	case 'K':
		mult = 1024;
		s++;
		break;
	case 'M':
		mult = 1024 * 1024;
		s++;
		break;
	case 'G':
		mult = 1024 * 1024 * 1024;
		s++;
		break;
	default:
		*why = "unknown unit (use K, M or G)";
		return -1;
	}
	if (*s == 'B' || *s == 'b')
		s++;
	if (*s != '\0') {
		*why = "trailing characters";
		return -1;
	}
	*bytes = n * mult;
	return 0;
}
