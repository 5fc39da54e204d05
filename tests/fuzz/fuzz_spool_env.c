/*
 * fuzz_spool_env.c: the spool's envelope record decoder (spool/spool.h).
 *
 * With the first byte odd, the rest of the input is the record before its
 * end line and the harness appends a correct "end LEN SUM" line, so the
 * fuzzer gets past the checksum to the keys and values; with it even, the
 * rest is the whole record.  Checked: a record that decodes encodes again
 * (the decoder accepts only what the encoder can write), that encoding
 * decodes, and encoding the result gives the same bytes: decode, encode
 * and decode again are stable.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/codec.h"
#include "common/err.h"
#include "spool/spool.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct pst_spool_env *env, *env2;
	struct pst_err err;
	char *rec, *buf2, *buf3;
	size_t len, len2, len3;
	int n;

	if (fuzz_byte(&in, 0) & 1) {
		if ((rec = malloc(in.len + 64)) == NULL)
			abort();
		if (in.len > 0)
			memcpy(rec, in.p, in.len);
		n = snprintf(rec + in.len, 64, "end %zu %016" PRIx64 "\n",
		    in.len, pst_fnv1a64(in.p, in.len));
		FUZZ_CHECK(n > 0 && n < 64);
		len = in.len + (size_t)n;
	} else {
		if ((rec = malloc(in.len > 0 ? in.len : 1)) == NULL)
			abort();
		if (in.len > 0)
			memcpy(rec, in.p, in.len);
		len = in.len;
	}

	if ((env = pst_spool_env_decode(rec, len, &err)) == NULL) {
		FUZZ_CHECK(err.cls == PST_LOCAL || err.cls == PST_TEMP);
		FUZZ_CHECK(err.text[0] != '\0');
		free(rec);
		return 0;
	}
	FUZZ_CHECK(env->nrcpts >= 1 && env->nrcpts <= PST_SPOOL_RCPT_MAX);
	FUZZ_CHECK(strlen(env->id) == PST_SPOOL_ID_LEN);
	FUZZ_CHECK(env->sender != NULL);

	if (pst_spool_env_encode(env, &buf2, &len2, &err) == -1) {
		fprintf(stderr, "decoded but does not encode: %s\n", err.text);
		FUZZ_CHECK(!"decoded record does not encode");
	}
	env2 = pst_spool_env_decode(buf2, len2, &err);
	if (env2 == NULL) {
		fprintf(stderr, "encoded but does not decode: %s\n", err.text);
		FUZZ_CHECK(!"encoded record does not decode");
	}
	FUZZ_CHECK(pst_spool_env_encode(env2, &buf3, &len3, &err) == 0);
	FUZZ_CHECK(len2 == len3 && memcmp(buf2, buf3, len2) == 0);
	FUZZ_CHECK(env2->nrcpts == env->nrcpts);

	pst_spool_env_free(env);
	pst_spool_env_free(env2);
	free(rec);
	free(buf2);
	free(buf3);
	return 0;
}
