/*
 * dot.c: DATA stream reader (unstuffing) and writer (stuffing).
 *
 * The reader is a byte machine with five live states (dot.h lists them),
 * so a chunk boundary can fall anywhere, even inside the end-of-data
 * sequence.  It walks the input extent by extent with evbuffer_peek() and
 * copies runs of message bytes to the output with one evbuffer_add() per
 * run: a run ends at a dropped transparency dot, at the end of data, at
 * the end of an extent, or when a reason to refuse the message is found.
 * Bookkeeping (size, line length, 8-bit, and the "Received:" count of
 * smtp/trace.h) is done for every message byte, written or not, so that
 * the figures stay right while the rest of a refused message is skipped.
 *
 * Inside a line nothing but a CR, an LF or a NUL can change the state,
 * so the bytes before the next of these are found with memchr() and
 * counted as one run (dot_plain()); the machine only sees line starts,
 * line ends and NULs.
 *
 * The writer is the mirror image, with three states: at a line start,
 * inside a line, just after a CR.  It also copies runs, and inserts the
 * doubled dots and the missing halves of bare line breaks between them;
 * inside a line it goes straight to the next CR or LF.
 *
 * Neither side looks at MIME structure, header syntax beyond the one
 * field name it counts, or character sets.
 */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "common/err.h"
#include "smtp/dot.h"

#define DOT_NVEC	16

/* Reasons to refuse, in the order they are reported. */
#define REFUSE_SIZE	0x01
#define REFUSE_LINE	0x02
#define REFUSE_NUL	0x04

/* What one input byte turned out to be. */
enum dot_step {
	STEP_KEEP,		/* message data */
	STEP_DROP,		/* a transparency dot, or part of the end */
	STEP_END,		/* the LF of the end of data */
	STEP_BARE_CR,
	STEP_BARE_LF,
	STEP_NOMEM,		/* not from dot_step(): evbuffer_add failed */
};

enum enc_state {
	ENC_BOL = 0,		/* at the start of a line */
	ENC_TEXT,		/* inside a line */
	ENC_CR,			/* after a CR */
};

static size_t		 span_until(const unsigned char *, size_t, int);
static void		 dot_count(struct pst_dot *, const unsigned char *,
			    size_t, bool);
static size_t		 dot_room(const struct pst_dot *, size_t);
static bool		 dot_8bit(const unsigned char *, size_t);
static size_t		 dot_plain(struct pst_dot *, const unsigned char *,
			    size_t, size_t *);
static enum dot_step	 dot_text(struct pst_dot *, unsigned char);
static enum dot_step	 dot_step(struct pst_dot *, unsigned char);
static enum dot_step	 dot_chunk(struct pst_dot *, const unsigned char *,
			    size_t, struct evbuffer *, size_t *);
static enum pst_dot_status dot_fail(struct pst_dot *, struct pst_err *,
			    enum pst_class, enum pst_scope, int, const char *,
			    const char *);
static int		 enc_put(struct evbuffer *, const unsigned char *,
			    size_t *, size_t, const char *, size_t);
static int		 enc_nomem(struct pst_err *);

void
pst_dot_init(struct pst_dot *d, uint64_t max_size, size_t max_line)
{
	memset(d, 0, sizeof(*d));
	d->state = PST_DOT_ST_BOL;
	d->max_size = max_size;
	d->max_line = max_line;
	d->in_header = true;
	pst_hops_init(&d->hops);
}

/*
 * The number of bytes at 'p' (at most 'n') before the first 'c'.
 */
static size_t
span_until(const unsigned char *p, size_t n, int c)
{
	const unsigned char *q;

	q = memchr(p, c, n);
	return q != NULL ? (size_t)(q - p) : n;
}

/*
 * Bookkeeping for 'n' message bytes 'p' of one line; 'eight' says
 * whether one of them is above 127.
 */
static void
dot_count(struct pst_dot *d, const unsigned char *p, size_t n, bool eight)
{
	d->size += n;
	if (d->size > d->max_size)
		d->refuse |= REFUSE_SIZE;
	if (n > SIZE_MAX - d->line_len)
		d->line_len = SIZE_MAX;
	else
		d->line_len += n;
	/* RFC 5321 §4.5.3.1.6; the dropped dot was never counted. */
	if (d->max_line != 0 && d->line_len > d->max_line)
		d->refuse |= REFUSE_LINE;
	if (eight) {
		d->eightbit = true;
		d->hdr_8bit = d->hdr_8bit || d->in_header;
	}
	if (!d->hops.done)
		pst_hops_feed(&d->hops, p, n);
}

/*
 * How many of the next 'n' message bytes can be written: the output
 * stops before the byte that crosses a limit.
 */
static size_t
dot_room(const struct pst_dot *d, size_t n)
{
	if (d->refuse != 0)
		return 0;
	/* No reason to refuse yet: size and line length are in bounds. */
	if (d->max_size - d->size < n)
		n = (size_t)(d->max_size - d->size);
	if (d->max_line != 0 && d->max_line - d->line_len < n)
		n = d->max_line - d->line_len;
	return n;
}

/*
 * Whether one of the 'n' bytes at 'p' is above 127.  A word at a time:
 * it sees nearly every byte of a message, and gcc does not vectorise a
 * byte loop at -O2.
 */
static bool
dot_8bit(const unsigned char *p, size_t n)
{
	uint64_t w, acc = 0;
	size_t k;

	for (k = 0; n - k >= sizeof(w); k += sizeof(w)) {
		memcpy(&w, p + k, sizeof(w));
		acc |= w;
	}
	for (; k < n; k++)
		acc |= p[k];
	return (acc & 0x8080808080808080ULL) != 0;
}

/*
 * The fast path inside a line: takes the run of plain text at 'p' (at
 * most 'n' bytes, up to the next CR, LF or NUL, which need the byte
 * machine) and counts it at once.  Returns the length of the run; the
 * first '*keep' of its bytes are to be written, as dot_step() would
 * have kept them one by one.
 */
static size_t
dot_plain(struct pst_dot *d, const unsigned char *p, size_t n, size_t *keep)
{
	size_t k;

	k = span_until(p, n, '\r');
	k = span_until(p, k, '\n');
	k = span_until(p, k, '\0');
	*keep = dot_room(d, k);
	dot_count(d, p, k, dot_8bit(p, k));
	return k;
}

static enum dot_step
dot_text(struct pst_dot *d, unsigned char c)
{
	if (c == '\n')
		return STEP_BARE_LF;
	dot_count(d, &c, 1, c >= 0x80);
	if (c == '\0')
		d->refuse |= REFUSE_NUL;
	if (c == '\r') {
		d->state = PST_DOT_ST_CR;
		return STEP_KEEP;
	}
	d->state = PST_DOT_ST_TEXT;
	return STEP_KEEP;
}

static enum dot_step
dot_step(struct pst_dot *d, unsigned char c)
{
	switch (d->state) {
	case PST_DOT_ST_BOL:
		d->line_len = 0;
		/* RFC 5321 §4.5.2: drop the first dot of a line. */
		if (c == '.') {
			d->state = PST_DOT_ST_DOT;
			return STEP_DROP;
		}
		return dot_text(d, c);
	case PST_DOT_ST_DOT:
		if (c == '\r') {
			d->state = PST_DOT_ST_DOT_CR;
			return STEP_DROP;
		}
		return dot_text(d, c);
	case PST_DOT_ST_DOT_CR:
		if (c != '\n')
			return STEP_BARE_CR;
		d->state = PST_DOT_ST_DONE;
		return STEP_END;
	case PST_DOT_ST_TEXT:
		return dot_text(d, c);
	case PST_DOT_ST_CR:
		if (c != '\n')
			return STEP_BARE_CR;
		dot_count(d, &c, 1, false);
		/* An empty line ends the header section (RFC 5322 §2.1). */
		if (d->line_len == 2)
			d->in_header = false;
		d->state = PST_DOT_ST_BOL;
		return STEP_KEEP;
	case PST_DOT_ST_DONE:
	case PST_DOT_ST_FAILED:
		break;
	}
	return STEP_BARE_CR;	/* not reached: pst_dot_read() checks */
}

/*
 * Runs the machine over one contiguous extent, taking runs of plain text
 * inside a line at once.  Returns STEP_KEEP when the extent was used up,
 * or what stopped it; '*used' is the number of bytes consumed, the
 * stopping byte included.
 */
static enum dot_step
dot_chunk(struct pst_dot *d, const unsigned char *p, size_t n,
    struct evbuffer *out, size_t *used)
{
	enum dot_step st;
	size_t i = 0, run = 0, k, keep, skip;

	/* p[run..i) is message data still to be written. */
	while (i < n) {
		k = 0;
		if (d->state == PST_DOT_ST_TEXT)
			k = dot_plain(d, p + i, n - i, &keep);
		if (k > 0) {
			i += keep;
			if (keep == k)
				continue;
			/* Refused: the rest is counted, not written. */
			st = STEP_KEEP;
			skip = k - keep;
		} else {
			st = dot_step(d, p[i]);
			if (st == STEP_KEEP && d->refuse == 0) {
				i++;
				continue;
			}
			skip = 1;
		}
		/* The next 'skip' bytes are not written: flush what waits. */
		if (i > run && evbuffer_add(out, p + run, i - run) == -1) {
			*used = i;
			return STEP_NOMEM;
		}
		i += skip;
		run = i;
		if (st != STEP_KEEP && st != STEP_DROP) {
			*used = i;
			return st;
		}
	}
	*used = n;
	if (i > run && evbuffer_add(out, p + run, i - run) == -1)
		return STEP_NOMEM;
	return STEP_KEEP;
}

static enum pst_dot_status
dot_fail(struct pst_dot *d, struct pst_err *err, enum pst_class cls,
    enum pst_scope scope, int code, const char *esc, const char *text)
{
	pst_err_set(err, cls, PST_STAGE_DATA, "%s", text);
	err->scope = scope;
	err->smtp_code = code;
	snprintf(err->esc, sizeof(err->esc), "%s", esc);
	if (scope == PST_SCOPE_SESSION) {
		d->state = PST_DOT_ST_FAILED;
		return PST_DOT_FATAL;
	}
	return PST_DOT_REFUSED;
}

enum pst_dot_status
pst_dot_read(struct pst_dot *d, struct evbuffer *in, struct evbuffer *out,
    struct pst_err *err)
{
	struct evbuffer_iovec vec[DOT_NVEC];
	enum dot_step st = STEP_KEEP;
	size_t consumed, used;
	int i, n;

	pst_err_clear(err);
	if (d->state == PST_DOT_ST_DONE || d->state == PST_DOT_ST_FAILED)
		return dot_fail(d, err, PST_LOCAL, PST_SCOPE_SESSION, 421,
		    "4.3.0", "DATA reader used after the end");
	for (;;) {
		/* evbuffer_peek() reports an empty chain as an empty extent. */
		if (evbuffer_get_length(in) == 0)
			return PST_DOT_MORE;
		n = evbuffer_peek(in, -1, NULL, vec, DOT_NVEC);
		if (n <= 0)
			return PST_DOT_MORE;
		if (n > DOT_NVEC)
			n = DOT_NVEC;
		consumed = 0;
		for (i = 0; i < n; i++) {
			st = dot_chunk(d, vec[i].iov_base, vec[i].iov_len, out,
			    &used);
			consumed += used;
			if (st != STEP_KEEP)
				break;
		}
		evbuffer_drain(in, consumed);
		if (st != STEP_KEEP)
			break;
	}

	switch (st) {
	case STEP_BARE_CR:
		return dot_fail(d, err, PST_PERM, PST_SCOPE_SESSION, 521,
		    "5.5.2", "Bare CR in message data");
	case STEP_BARE_LF:
		return dot_fail(d, err, PST_PERM, PST_SCOPE_SESSION, 521,
		    "5.5.2", "Bare LF in message data");
	case STEP_NOMEM:
		return dot_fail(d, err, PST_LOCAL, PST_SCOPE_SESSION, 421,
		    "4.3.0", "Out of memory");
	default:
		break;
	}
	if (d->refuse & REFUSE_SIZE)
		return dot_fail(d, err, PST_PERM, PST_SCOPE_MESSAGE, 552,
		    "5.3.4", "Message size exceeds fixed maximum message size");
	if (d->refuse & REFUSE_LINE)
		return dot_fail(d, err, PST_PERM, PST_SCOPE_MESSAGE, 554,
		    "5.6.0", "Message has a line longer than 1000 octets");
	if (d->refuse & REFUSE_NUL)
		return dot_fail(d, err, PST_PERM, PST_SCOPE_MESSAGE, 554,
		    "5.6.0", "Message contains a NUL character");
	return PST_DOT_DONE;
}

void
pst_dot_enc_init(struct pst_dot_enc *e)
{
	e->state = ENC_BOL;
}

/*
 * Writes p[*run..i) and then 'extra', and moves the run start to 'i'.
 */
static int
enc_put(struct evbuffer *out, const unsigned char *p, size_t *run, size_t i,
    const char *extra, size_t elen)
{
	if (i > *run && evbuffer_add(out, p + *run, i - *run) == -1)
		return -1;
	*run = i;
	if (elen > 0 && evbuffer_add(out, extra, elen) == -1)
		return -1;
	return 0;
}

static int
enc_nomem(struct pst_err *err)
{
	pst_err_set(err, PST_LOCAL, PST_STAGE_DATA, "Out of memory");
	return -1;
}

int
pst_dot_encode(struct pst_dot_enc *e, const void *data, size_t len,
    struct evbuffer *out, struct pst_err *err)
{
	const unsigned char *p = data;
	size_t i, n, run = 0;
	unsigned char c;

	for (i = 0; i < len; i++) {
		/* Inside a line only a CR or an LF changes anything. */
		if (e->state == ENC_TEXT) {
			n = span_until(p + i, len - i, '\r');
			i += span_until(p + i, n, '\n');
			if (i == len)
				break;
		}
		c = p[i];
		if (e->state == ENC_CR) {
			if (c == '\n') {
				e->state = ENC_BOL;
				continue;
			}
			/* A bare CR: complete it to CRLF. */
			if (enc_put(out, p, &run, i, "\n", 1) == -1)
				return enc_nomem(err);
			e->state = ENC_BOL;
		}
		if (e->state == ENC_BOL && c == '.') {
			/* RFC 5321 §4.5.2: double a dot at a line start. */
			if (enc_put(out, p, &run, i, ".", 1) == -1)
				return enc_nomem(err);
			e->state = ENC_TEXT;
			continue;
		}
		if (c == '\r')
			e->state = ENC_CR;
		else if (c == '\n') {
			/* A bare LF: give it its CR. */
			if (enc_put(out, p, &run, i, "\r", 1) == -1)
				return enc_nomem(err);
			e->state = ENC_BOL;
		} else
			e->state = ENC_TEXT;
	}
	if (enc_put(out, p, &run, len, NULL, 0) == -1)
		return enc_nomem(err);
	return 0;
}

int
pst_dot_encode_finish(struct pst_dot_enc *e, struct evbuffer *out,
    struct pst_err *err)
{
	const char *end = ".\r\n";

	if (e->state == ENC_CR)
		end = "\n.\r\n";
	else if (e->state == ENC_TEXT)
		end = "\r\n.\r\n";
	if (evbuffer_add(out, end, strlen(end)) == -1)
		return enc_nomem(err);
	e->state = ENC_BOL;
	return 0;
}
