/*
 * fuzz_reply.c: the SMTP reply parser (smtp/reply.h), fed in chunks.
 *
 * Input: a byte for the largest chunk (1-256), then the server's bytes.
 * Replies are read one after the other, as a pipelining client does.
 * Checked: a complete reply has a code of 200-599 and 1 to
 * PST_REPLY_LINES_MAX lines; it was drained exactly ('wire' bytes, the
 * rest left in the input); its texts hold no CR, LF or NUL; the joined
 * text is printable; a failed parser stays failed until reset.
 */
#include <string.h>

#include <event2/buffer.h>

#include "common/err.h"
#include "smtp/reply.h"
#include "fuzz.h"

static void	reply_check(const struct pst_reply *r, size_t drained);

static struct pst_reply reply;	/* too large for a fuzzer's stack */

static void
reply_check(const struct pst_reply *r, size_t drained)
{
	char text[600];
	const char *t;
	size_t i, n;

	FUZZ_CHECK(r->complete && !r->failed);
	FUZZ_CHECK(r->code >= 200 && r->code <= 599);
	FUZZ_CHECK(r->nlines >= 1 && r->nlines <= PST_REPLY_LINES_MAX);
	FUZZ_CHECK(r->wire == drained && r->wire <= PST_REPLY_BYTES_MAX);
	FUZZ_CHECK(memchr(r->esc, '\0', sizeof(r->esc)) != NULL);
	if (r->esc[0] != '\0')
		FUZZ_CHECK(r->esc[0] == '0' + r->code / 100);
	for (i = 0; i < r->nlines; i++) {
		t = pst_reply_line(r, i);
		n = pst_reply_line_len(r, i);
		FUZZ_CHECK(t != NULL && strlen(t) == n);
		FUZZ_CHECK(strpbrk(t, "\r\n") == NULL);
		FUZZ_CHECK(pst_reply_raw(r, i) != NULL);
	}
	FUZZ_CHECK(pst_reply_line(r, r->nlines) == NULL);
	pst_reply_text(r, text, sizeof(text));
	for (i = 0; text[i] != '\0'; i++)
		FUZZ_CHECK(text[i] >= 0x20 && text[i] <= 0x7e);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct pst_err err;
	struct evbuffer *evb;
	size_t maxchunk, chunk, before, drained = 0;
	int rc = 0;

	maxchunk = (size_t)fuzz_byte(&in, 255) + 1;
	if ((evb = evbuffer_new()) == NULL)
		abort();
	pst_reply_reset(&reply);
	while (in.len > 0 && rc != -1) {
		chunk = maxchunk < in.len ? maxchunk : in.len;
		FUZZ_CHECK(evbuffer_add(evb, in.p, chunk) == 0);
		in.p += chunk;
		in.len -= chunk;
		do {
			before = evbuffer_get_length(evb);
			rc = pst_reply_parse(evb, &reply, PST_STAGE_MAIL,
			    &err);
			FUZZ_CHECK(evbuffer_get_length(evb) <= before);
			drained += before - evbuffer_get_length(evb);
			if (rc == 1) {
				reply_check(&reply, drained);
				drained = 0;
			} else if (rc == -1) {
				FUZZ_CHECK(err.cls == PST_TEMP);
				FUZZ_CHECK(err.stage == PST_STAGE_MAIL);
			}
		} while (rc == 1);
	}
	if (rc == -1)
		FUZZ_CHECK(pst_reply_parse(evb, &reply, PST_STAGE_MAIL,
		    &err) == -1);
	evbuffer_free(evb);
	return 0;
}
