/*
 * fuzz_dot.c: the DATA reader and the dot-stuffing encoder (smtp/dot.h).
 *
 * The first byte picks the mode.
 *
 * Reader (even): two bytes give the size and line bounds, the rest is a
 * DATA stream fed in chunks whose lengths come from a third byte.  Checked:
 * a good message is 'size' bytes of CRLF lines without NUL, CR or LF of
 * their own; a refusal or fatal error carries its reply; a finished
 * reader refuses more input; the stream read in one piece comes to the
 * same status, output, figures and unread rest as in chunks.
 *
 * Round trip (odd): the rest is a message.  It is encoded in chunks, a
 * pipelined "QUIT" is put after the stream, and the stream is read back.
 * The message must come back as it was, up to what the encoder promises
 * to change (a bare CR or LF becomes CRLF, a last line gets its CRLF);
 * a message with a NUL is refused; "QUIT" is left unread.
 */
#include <string.h>

#include <event2/buffer.h>

#include "common/err.h"
#include "smtp/dot.h"
#include "fuzz.h"

#define DOT_TAIL	"QUIT\r\n"

static void	dot_check_message(struct evbuffer *out, uint64_t size);
static enum pst_dot_status dot_feed(struct pst_dot *d, struct evbuffer *src,
		    struct evbuffer *in, struct evbuffer *out, unsigned step,
		    struct pst_err *err);
static void	dot_check_status(enum pst_dot_status st,
		    const struct pst_err *err);
static void	dot_check_whole(const struct fuzz_in *in,
		    const struct pst_dot *d, enum pst_dot_status st,
		    struct evbuffer *out, size_t unread);
static void	dot_read(struct fuzz_in *in);
static void	dot_round_trip(struct fuzz_in *in);

/* A finished message: CRLF lines, no NUL, no bare line break. */
static void
dot_check_message(struct evbuffer *out, uint64_t size)
{
	const unsigned char *p;
	size_t len, i;

	len = evbuffer_get_length(out);
	FUZZ_CHECK(len == size);
	if (len == 0)
		return;
	p = evbuffer_pullup(out, -1);
	FUZZ_CHECK(len >= 2 && p[len - 2] == '\r' && p[len - 1] == '\n');
	for (i = 0; i < len; i++) {
		FUZZ_CHECK(p[i] != '\0');
		if (p[i] == '\r')
			FUZZ_CHECK(i + 1 < len && p[i + 1] == '\n');
		if (p[i] == '\n')
			FUZZ_CHECK(i > 0 && p[i - 1] == '\r');
	}
}

static void
dot_check_status(enum pst_dot_status st, const struct pst_err *err)
{
	switch (st) {
	case PST_DOT_MORE:
	case PST_DOT_DONE:
		FUZZ_CHECK(err->cls == PST_OK);
		break;
	case PST_DOT_REFUSED:
		FUZZ_CHECK(err->smtp_code == 552 || err->smtp_code == 554);
		break;
	case PST_DOT_FATAL:
		FUZZ_CHECK(err->smtp_code == 521 || err->smtp_code == 421);
		break;
	default:
		FUZZ_CHECK(!"unknown status");
	}
}

/*
 * Moves 'src' into 'in' in chunks of 1 to 'step' bytes, reading after
 * each, until the reader finishes or 'src' is empty.
 */
static enum pst_dot_status
dot_feed(struct pst_dot *d, struct evbuffer *src, struct evbuffer *in,
    struct evbuffer *out, unsigned step, struct pst_err *err)
{
	enum pst_dot_status st = PST_DOT_MORE;
	size_t n, turn = 0;

	while (evbuffer_get_length(src) > 0) {
		n = 1 + (turn * 7919u) % step;
		/* At times an empty chain first, as evbuffer_expand() makes. */
		if (turn++ % 3 == 0)
			FUZZ_CHECK(evbuffer_expand(in, n) == 0);
		FUZZ_CHECK(evbuffer_remove_buffer(src, in, n) >= 0);
		st = pst_dot_read(d, in, out, err);
		dot_check_status(st, err);
		if (st != PST_DOT_MORE)
			break;
		FUZZ_CHECK(evbuffer_get_length(in) == 0);
	}
	return st;
}

/*
 * Reads the whole stream again in one piece with a fresh reader: it must
 * end as the chunked read 'd' did, which left 'unread' bytes.
 */
static void
dot_check_whole(const struct fuzz_in *in, const struct pst_dot *d,
    enum pst_dot_status st, struct evbuffer *out, size_t unread)
{
	struct pst_dot w;
	struct pst_err err;
	struct evbuffer *win, *wout;
	size_t len;

	if ((win = evbuffer_new()) == NULL || (wout = evbuffer_new()) == NULL)
		abort();
	FUZZ_CHECK(evbuffer_add(win, in->p, in->len) == 0);
	pst_dot_init(&w, d->max_size, d->max_line);
	FUZZ_CHECK(pst_dot_read(&w, win, wout, &err) == st);
	FUZZ_CHECK(evbuffer_get_length(win) == unread);
	FUZZ_CHECK(w.size == d->size && w.eightbit == d->eightbit &&
	    w.hdr_8bit == d->hdr_8bit && w.hops.count == d->hops.count);
	len = evbuffer_get_length(out);
	FUZZ_CHECK(evbuffer_get_length(wout) == len);
	FUZZ_CHECK(len == 0 || memcmp(evbuffer_pullup(wout, -1),
	    evbuffer_pullup(out, -1), len) == 0);
	evbuffer_free(win);
	evbuffer_free(wout);
}

static void
dot_read(struct fuzz_in *in)
{
	struct pst_dot d;
	struct pst_err err;
	struct evbuffer *src, *evin, *out;
	enum pst_dot_status st;
	uint64_t max_size;
	size_t max_line;
	unsigned step;

	max_size = fuzz_byte(in, 0) * 16u;
	if (max_size == 0)
		max_size = UINT64_MAX;
	max_line = fuzz_byte(in, 0) * 4u;
	step = fuzz_byte(in, 0) + 1u;
	if ((src = evbuffer_new()) == NULL || (evin = evbuffer_new()) ==
	    NULL || (out = evbuffer_new()) == NULL)
		abort();
	FUZZ_CHECK(evbuffer_add(src, in->p, in->len) == 0);
	pst_dot_init(&d, max_size, max_line);
	st = dot_feed(&d, src, evin, out, step, &err);
	dot_check_whole(in, &d, st, out, evbuffer_get_length(evin) +
	    evbuffer_get_length(src));
	if (st == PST_DOT_DONE) {
		dot_check_message(out, d.size);
		FUZZ_CHECK(d.size <= max_size);
	}
	if (st != PST_DOT_MORE) {
		/* Finished: nothing more is read before pst_dot_init(). */
		FUZZ_CHECK(pst_dot_read(&d, evin, out, &err) ==
		    PST_DOT_FATAL);
	}
	evbuffer_free(src);
	evbuffer_free(evin);
	evbuffer_free(out);
}

static void
dot_round_trip(struct fuzz_in *in)
{
	struct pst_dot_enc e;
	struct pst_dot d;
	struct pst_err err;
	struct evbuffer *want, *src, *evin, *out;
	enum pst_dot_status st;
	const uint8_t *p = in->p;
	size_t len = in->len, i, n;
	unsigned step;
	uint8_t last = '\n';
	bool nul = false;

	step = fuzz_byte(in, 0) + 1u;
	p = in->p;
	len = in->len;
	if ((want = evbuffer_new()) == NULL || (src = evbuffer_new()) ==
	    NULL || (evin = evbuffer_new()) == NULL || (out = evbuffer_new())
	    == NULL)
		abort();

	/* What the encoder promises to deliver. */
	for (i = 0; i < len; i++) {
		if (p[i] == '\0')
			nul = true;
		if (p[i] == '\r' && (i + 1 == len || p[i + 1] != '\n'))
			FUZZ_CHECK(evbuffer_add(want, "\r\n", 2) == 0);
		else if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			FUZZ_CHECK(evbuffer_add(want, "\r\n", 2) == 0);
		else
			FUZZ_CHECK(evbuffer_add(want, &p[i], 1) == 0);
		last = p[i];
	}
	if (last != '\n' && last != '\r')
		FUZZ_CHECK(evbuffer_add(want, "\r\n", 2) == 0);

	pst_dot_enc_init(&e);
	for (i = 0; i < len; i += n) {
		n = 1 + (i * 31u) % step;
		if (n > len - i)
			n = len - i;
		FUZZ_CHECK(pst_dot_encode(&e, p + i, n, src, &err) == 0);
	}
	FUZZ_CHECK(pst_dot_encode_finish(&e, src, &err) == 0);
	FUZZ_CHECK(evbuffer_add(src, DOT_TAIL, strlen(DOT_TAIL)) == 0);

	pst_dot_init(&d, UINT64_MAX, 0);
	st = dot_feed(&d, src, evin, out, step, &err);
	FUZZ_CHECK(evbuffer_add_buffer(evin, src) == 0);
	if (nul) {
		FUZZ_CHECK(st == PST_DOT_REFUSED);
		FUZZ_CHECK(err.smtp_code == 554);
	} else {
		FUZZ_CHECK(st == PST_DOT_DONE);
		dot_check_message(out, d.size);
		FUZZ_CHECK(evbuffer_get_length(out) ==
		    evbuffer_get_length(want));
		FUZZ_CHECK(evbuffer_get_length(out) == 0 ||
		    memcmp(evbuffer_pullup(out, -1), evbuffer_pullup(want, -1),
		    evbuffer_get_length(out)) == 0);
	}
	FUZZ_CHECK(evbuffer_get_length(evin) == strlen(DOT_TAIL));
	FUZZ_CHECK(memcmp(evbuffer_pullup(evin, -1), DOT_TAIL,
	    strlen(DOT_TAIL)) == 0);
	evbuffer_free(want);
	evbuffer_free(src);
	evbuffer_free(evin);
	evbuffer_free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };

	if (fuzz_byte(&in, 0) & 1)
		dot_round_trip(&in);
	else
		dot_read(&in);
	return 0;
}
