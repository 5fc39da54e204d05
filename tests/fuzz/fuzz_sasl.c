/*
 * fuzz_sasl.c: SASL exchanges (sasl/sasl.h) against a hostile server.
 *
 * The first byte picks the mechanism (bits 0-2: SCRAM-SHA-256, CRAM-MD5,
 * LOGIN, PLAIN, XOAUTH2), whether the challenges are given raw (bit 3:
 * the input is the 334 text on the wire) or decoded (the harness encodes
 * them in base64, so the fuzzer works on what the mechanism sees), and
 * whether the exchange ends with a 235 (bit 4).  The rest is split at LF:
 * each line is one 334 challenge; with bit 4 the last line is the text of
 * the 235.  The nonce source is fixed to the bytes of the RFC 7677 §3
 * example, with its user and password, so a seed can carry the RFC's
 * server messages and reach the server signature check.
 *
 * Checked: every answer is one base64 line; a refusal is PST_TEMP or
 * PST_LOCAL at PST_STAGE_AUTH with a text.
 *
 * SCRAM iteration counts above 9999 are skipped: each costs up to half a
 * second of PBKDF2 and exercises nothing the unit tests do not.
 */
#include <ctype.h>
#include <string.h>

#include <event2/buffer.h>

#include "common/err.h"
#include "sasl/sasl.h"
#include "smtp/reply.h"
#include "fuzz.h"

#define SASL_CNONCE	"rOprNGfwEbeRWgbNEkqO"	/* RFC 7677 §3 */

static int	sasl_random(void *arg, unsigned char *buf, size_t len);
static bool	sasl_slow(const unsigned char *p, size_t len);
static int	sasl_reply(struct evbuffer *wire, const char *code,
		    const uint8_t *p, size_t len, bool raw);
static void	sasl_check_answer(struct evbuffer *out);

static struct pst_reply reply;	/* too large for a fuzzer's stack */

static int
sasl_random(void *arg, unsigned char *buf, size_t len)
{
	const char *why;
	size_t n;

	if (pst_sasl_b64_decode(SASL_CNONCE, strlen(SASL_CNONCE), buf, len,
	    &n, &why) == -1 || n != len)
		return -1;
	return 0;
}

/* An iteration count of five digits or more in a SCRAM message. */
static bool
sasl_slow(const unsigned char *p, size_t len)
{
	size_t i, digits;

	for (i = 0; i + 2 < len; i++) {
		if (p[i] != 'i' || p[i + 1] != '=' || (i > 0 && p[i - 1] !=
		    ','))
			continue;
		for (digits = 0; i + 2 + digits < len &&
		    isdigit(p[i + 2 + digits]); digits++)
			continue;
		if (digits > 4)
			return true;
	}
	return false;
}

/*
 * Parses "CODE TEXT\r\n" into 'reply'; TEXT is 'p' as it is or in
 * base64.  Returns 1 when a reply came out of it.
 */
static int
sasl_reply(struct evbuffer *wire, const char *code, const uint8_t *p,
    size_t len, bool raw)
{
	struct pst_err err;

	evbuffer_drain(wire, evbuffer_get_length(wire));
	FUZZ_CHECK(evbuffer_add_printf(wire, "%s ", code) == 4);
	if (raw)
		FUZZ_CHECK(evbuffer_add(wire, p, len) == 0);
	else
		FUZZ_CHECK(pst_sasl_b64_encode(p, len, wire) == 0);
	FUZZ_CHECK(evbuffer_add(wire, "\r\n", 2) == 0);
	pst_reply_reset(&reply);
	return pst_reply_parse(wire, &reply, PST_STAGE_AUTH, &err);
}

/* One line of base64 (maybe empty) and its CRLF. */
static void
sasl_check_answer(struct evbuffer *out)
{
	const char *p;
	size_t len, i;

	len = evbuffer_get_length(out);
	FUZZ_CHECK(len >= 2);
	p = (const char *)evbuffer_pullup(out, -1);
	FUZZ_CHECK(p[len - 2] == '\r' && p[len - 1] == '\n');
	for (i = 0; i + 2 < len; i++)
		FUZZ_CHECK(isalnum((unsigned char)p[i]) || p[i] == '+' ||
		    p[i] == '/' || p[i] == '=' || p[i] == '*');
	evbuffer_drain(out, len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned bits[] = { PST_SASL_SCRAM_SHA_256,
	    PST_SASL_CRAM_MD5, PST_SASL_LOGIN, PST_SASL_PLAIN,
	    PST_SASL_XOAUTH2 };
	struct fuzz_in in = { data, size };
	const struct pst_sasl_mech *mech;
	struct pst_creds creds;
	struct pst_sasl *s;
	struct pst_err err;
	struct evbuffer *out, *wire;
	unsigned char dec[PST_SASL_MSG_MAX];
	const uint8_t *nl;
	const char *why;
	size_t n, dlen;
	uint8_t mode;
	bool raw, end, last;

	mode = fuzz_byte(&in, 0);
	mech = pst_sasl_by_bit(bits[(mode & 7) % 5]);
	raw = (mode & 8) != 0;
	end = (mode & 0x10) != 0;
	FUZZ_CHECK(mech != NULL);
	creds.user = "user";
	creds.secret = "pencil";
	creds.kind = mech->bit == PST_SASL_XOAUTH2 ? PST_CREDS_TOKEN :
	    PST_CREDS_PASSWORD;
	if ((out = evbuffer_new()) == NULL || (wire = evbuffer_new()) ==
	    NULL)
		abort();
	s = pst_sasl_new(mech, &creds, &err);
	FUZZ_CHECK(s != NULL);
	pst_sasl_set_random(s, sasl_random, NULL);
	FUZZ_CHECK(pst_sasl_start(s, out, &err) == 0);
	evbuffer_drain(out, evbuffer_get_length(out));

	do {
		nl = memchr(in.p, '\n', in.len);
		n = nl != NULL ? (size_t)(nl - in.p) : in.len;
		last = nl == NULL;
		if (mech->bit == PST_SASL_SCRAM_SHA_256) {
			if (!raw && sasl_slow(in.p, n))
				break;
			if (raw && pst_sasl_b64_decode((const char *)in.p, n,
			    dec, sizeof(dec), &dlen, &why) == 0 &&
			    sasl_slow(dec, dlen))
				break;
		}
		if (last && end) {
			if (sasl_reply(wire, "235", in.p, n, raw) == 1 &&
			    pst_sasl_done(s, &reply, &err) == -1) {
				FUZZ_CHECK(err.stage == PST_STAGE_AUTH);
				FUZZ_CHECK(err.text[0] != '\0');
			}
			break;
		}
		if (sasl_reply(wire, "334", in.p, n, raw) != 1)
			break;
		pst_err_clear(&err);
		if (pst_sasl_step(s, &reply, out, &err) == -1) {
			FUZZ_CHECK(err.stage == PST_STAGE_AUTH);
			FUZZ_CHECK(err.cls == PST_TEMP || err.cls == PST_LOCAL);
			FUZZ_CHECK(err.text[0] != '\0');
			FUZZ_CHECK(evbuffer_get_length(out) == 0);
			break;
		}
		sasl_check_answer(out);
		in.p += n + !last;
		in.len -= n + !last;
	} while (!last);
	pst_sasl_free(s);
	evbuffer_free(out);
	evbuffer_free(wire);
	return 0;
}
