/*
 * fuzz.h: what every fuzz target provides, and the checks they share.
 *
 * A target is one C file defining LLVMFuzzerTestOneInput().  Built with
 * -Dfuzz=true and clang it links libFuzzer and runs campaigns; otherwise
 * replay.c gives it a main() that feeds it every file of its seed corpus,
 * so each normal build runs the corpora as regression tests.  Targets keep
 * no state between inputs except what LLVMFuzzerInitialize() sets up once.
 */
#ifndef POSTERN_FUZZ_H
#define POSTERN_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int	LLVMFuzzerInitialize(int *argc, char ***argv);

/*
 * An invariant the target checks.  It aborts whether NDEBUG is set or not:
 * libFuzzer takes the abort for a crash and saves the input.
 */
#define FUZZ_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		abort();						\
	}								\
} while (0)

/*
 * Input splitting.  A reader hands out the fuzz bytes a piece at a time,
 * so a target can take a flags byte, then chunk sizes, then data, without
 * reading past the end.
 */
struct fuzz_in {
	const uint8_t	*p;
	size_t		 len;
};

/* One byte, or 'dflt' when the input is used up. */
static inline uint8_t
fuzz_byte(struct fuzz_in *in, uint8_t dflt)
{
	uint8_t b;

	if (in->len == 0)
		return dflt;
	b = in->p[0];
	in->p++;
	in->len--;
	return b;
}

#endif /* POSTERN_FUZZ_H */
