/*
 * fuzz_ehlo.c: the EHLO reply parser (smtp/ehlo.h), behind the reply
 * parser.
 *
 * With the first byte even, each further line of the input (split at LF)
 * becomes one line of a 250 reply, so that the fuzzer works on keywords;
 * with it odd, the input is the raw reply.  Once the reply parses, the
 * EHLO parser reads it.  Checked: only a 250 is accepted; the name and the
 * AUTH list are terminated printable ASCII; a SIZE limit comes with its
 * bit; a refusal carries the reply's code.
 */
#include <string.h>

#include <event2/buffer.h>

#include "common/err.h"
#include "smtp/ehlo.h"
#include "smtp/reply.h"
#include "fuzz.h"

static void	ehlo_printable(const char *s, size_t size);

static struct pst_reply reply;	/* too large for a fuzzer's stack */

static void
ehlo_printable(const char *s, size_t size)
{
	size_t i;

	FUZZ_CHECK(memchr(s, '\0', size) != NULL);
	for (i = 0; s[i] != '\0'; i++)
		FUZZ_CHECK(s[i] >= 0x20 && s[i] <= 0x7e);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct pst_ehlo e;
	struct pst_err err;
	struct evbuffer *evb;
	const uint8_t *nl;
	size_t n;
	char buf[200];

	if ((evb = evbuffer_new()) == NULL)
		abort();
	if (fuzz_byte(&in, 0) & 1)
		FUZZ_CHECK(evbuffer_add(evb, in.p, in.len) == 0);
	else {
		do {
			nl = memchr(in.p, '\n', in.len);
			n = nl != NULL ? (size_t)(nl - in.p) : in.len;
			FUZZ_CHECK(evbuffer_add_printf(evb, "250%c",
			    nl != NULL ? '-' : ' ') == 4);
			FUZZ_CHECK(evbuffer_add(evb, in.p, n) == 0);
			FUZZ_CHECK(evbuffer_add(evb, "\r\n", 2) == 0);
			in.p += n + (nl != NULL);
			in.len -= n + (nl != NULL);
		} while (nl != NULL);
	}
	pst_reply_reset(&reply);
	if (pst_reply_parse(evb, &reply, PST_STAGE_EHLO, &err) != 1) {
		evbuffer_free(evb);
		return 0;
	}
	evbuffer_free(evb);

	memset(&e, 0xa5, sizeof(e));
	if (pst_ehlo_parse(&reply, &e, &err) == -1) {
		FUZZ_CHECK(reply.code != 250);
		FUZZ_CHECK(err.smtp_code == reply.code);
		FUZZ_CHECK(err.stage == PST_STAGE_EHLO);
		return 0;
	}
	FUZZ_CHECK(reply.code == 250);
	ehlo_printable(e.domain, sizeof(e.domain));
	ehlo_printable(e.auth_offered, sizeof(e.auth_offered));
	if (e.size_max != 0)
		FUZZ_CHECK(e.caps & PST_EHLO_SIZE);
	if (e.auth != 0)
		FUZZ_CHECK(e.caps & PST_EHLO_AUTH);
	pst_ehlo_caps_format(e.caps, buf, sizeof(buf));
	FUZZ_CHECK(buf[0] != '\0');
	return 0;
}
