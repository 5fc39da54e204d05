/*
 * fuzz_line.c: the CRLF command line reader (smtp/line.h).
 *
 * Input: a byte for the line bound, a byte for the caller's buffer size,
 * then chunks, each a length byte (1-64) and that many bytes of stream.
 * A length byte with nothing after it adds an empty chunk: libevent then
 * keeps an empty chain in the buffer, as evbuffer_expand() does.
 * After each chunk the reader runs until it wants more.  A shadow copy of
 * the stream checks what it hands out: a line is exactly the bytes before
 * the CRLF it consumed, holds no CR, LF or NUL, and fits the bound; a
 * fatal error stays fatal; every error carries its reply.
 */
#include <string.h>

#include <event2/buffer.h>

#include "common/err.h"
#include "smtp/line.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct pst_line lr;
	struct pst_err err;
	struct evbuffer *evb;
	enum pst_line_status st;
	uint8_t *shadow;
	char *buf;
	size_t max, bsize, added = 0, off, len, chunk, bound;

	max = (size_t)fuzz_byte(&in, 0) * 5;
	bsize = (size_t)fuzz_byte(&in, 0) * 4 + 1;
	if ((evb = evbuffer_new()) == NULL ||
	    (shadow = malloc(size + 1)) == NULL ||
	    (buf = malloc(bsize)) == NULL)
		abort();
	pst_line_init(&lr, max);
	bound = lr.max < bsize + 1 ? lr.max : bsize + 1;
	st = PST_LINE_MORE;
	while (in.len > 0 && st != PST_LINE_FATAL) {
		chunk = (size_t)(fuzz_byte(&in, 0) % 64) + 1;
		if (chunk > in.len)
			chunk = in.len;
		FUZZ_CHECK(evbuffer_add(evb, in.p, chunk) == 0);
		memcpy(shadow + added, in.p, chunk);
		added += chunk;
		in.p += chunk;
		in.len -= chunk;
		do {
			len = (size_t)-1;
			st = pst_line_read(&lr, evb, buf, bsize, &len, &err);
			off = added - evbuffer_get_length(evb);
			switch (st) {
			case PST_LINE_OK:
				FUZZ_CHECK(err.cls == PST_OK);
				FUZZ_CHECK(len + 2 <= bound);
				FUZZ_CHECK(buf[len] == '\0');
				FUZZ_CHECK(off >= len + 2);
				FUZZ_CHECK(memcmp(shadow + off - 2, "\r\n",
				    2) == 0);
				FUZZ_CHECK(memcmp(shadow + off - 2 - len, buf,
				    len) == 0);
				FUZZ_CHECK(memchr(buf, '\r', len) == NULL);
				FUZZ_CHECK(memchr(buf, '\n', len) == NULL);
				FUZZ_CHECK(memchr(buf, '\0', len) == NULL);
				break;
			case PST_LINE_MORE:
				FUZZ_CHECK(err.cls == PST_OK);
				break;
			case PST_LINE_TOOLONG:
			case PST_LINE_BAD:
				FUZZ_CHECK(err.smtp_code == 500);
				break;
			case PST_LINE_FATAL:
				FUZZ_CHECK(err.smtp_code == 521);
				break;
			default:
				FUZZ_CHECK(!"unknown status");
			}
		} while (st != PST_LINE_MORE && st != PST_LINE_FATAL);
	}
	if (st == PST_LINE_FATAL) {
		/* The reader stays failed until it is initialised again. */
		FUZZ_CHECK(pst_line_read(&lr, evb, buf, bsize, &len, &err) ==
		    PST_LINE_FATAL);
	}
	evbuffer_free(evb);
	free(shadow);
	free(buf);
	return 0;
}
