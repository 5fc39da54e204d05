/*
 * sasl_test.h: helpers shared by the SASL tests: a server reply from its
 * wire form, the lines an exchange wrote, base64 both ways.
 */
#ifndef POSTERN_SASL_TEST_H
#define POSTERN_SASL_TEST_H

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "sasl/sasl.h"
#include "smtp/reply.h"
#include "unit.h"

/* Big (64 KiB): one per test process, Check forks for each test. */
static struct pst_reply test_reply;

/* Parses 'wire' (CRLF included) into test_reply and returns it. */
static inline const struct pst_reply *
reply_of(const char *wire)
{
	struct evbuffer *in = evbuffer_new();
	struct pst_err err;

	pst_reply_reset(&test_reply);
	evbuffer_add(in, wire, strlen(wire));
	ck_assert_int_eq(pst_reply_parse(in, &test_reply, PST_STAGE_AUTH,
	    &err), 1);
	ck_assert_uint_eq(evbuffer_get_length(in), 0);
	evbuffer_free(in);
	return &test_reply;
}

/* Removes one CRLF line from 'out' into 'buf' (without CRLF). */
static inline char *
take_line(struct evbuffer *out, char *buf, size_t len)
{
	size_t n;
	char *line;

	line = evbuffer_readln(out, &n, EVBUFFER_EOL_CRLF_STRICT);
	ck_assert_ptr_nonnull(line);
	ck_assert_uint_lt(n, len);
	memcpy(buf, line, n + 1);
	free(line);
	return buf;
}

/* "334 " + base64 of 'len' bytes of 'raw' + CRLF, into 'buf'. */
static inline const char *
challenge_of(const void *raw, size_t len, char *buf, size_t buflen)
{
	struct evbuffer *b = evbuffer_new();
	size_t n;

	evbuffer_add(b, "334 ", 4);
	ck_assert_int_eq(pst_sasl_b64_encode(raw, len, b), 0);
	evbuffer_add(b, "\r\n", 2);
	n = evbuffer_get_length(b);
	ck_assert_uint_lt(n, buflen);
	evbuffer_remove(b, buf, n);
	buf[n] = '\0';
	evbuffer_free(b);
	return buf;
}

/* Decodes the base64 line 'b64' into 'raw'; returns its length. */
static inline size_t
raw_of(const char *b64, unsigned char *raw, size_t rawlen)
{
	const char *why = NULL;
	size_t n = 0;

	ck_assert_msg(pst_sasl_b64_decode(b64, strlen(b64), raw, rawlen, &n,
	    &why) == 0, "\"%s\": %s", b64, why);
	return n;
}

#endif /* POSTERN_SASL_TEST_H */
