/*
 * line.c: strict CRLF line reader.
 *
 * A line is searched for in at most 'max' bytes of the input, never more,
 * so a peer that never sends a line end costs one bounded scan per read.
 * Every CR must be followed by LF and every LF preceded by CR; the check
 * runs over the whole line, not just its end, because a bare CR or LF in
 * the middle is exactly what a smuggling attempt looks like.  An over-long
 * line is skipped extent by extent with evbuffer_peek(), without copying
 * or pulling it up, and with the same CR/LF checks.
 *
 * The reader never drains bytes it has not looked at, and never reads
 * past the line it returns.
 */
#include <string.h>

#include <event2/buffer.h>

#include "common/err.h"
#include "smtp/line.h"

#define LINE_MIN	3	/* one byte and CRLF */
#define LINE_NVEC	8

static enum pst_line_status line_error(struct pst_line *,
		    enum pst_line_status, struct pst_err *, const char *);
static enum pst_line_status line_skip(struct pst_line *, struct evbuffer *,
		    struct pst_err *);

void
pst_line_init(struct pst_line *lr, size_t max)
{
	memset(lr, 0, sizeof(*lr));
	pst_line_set_max(lr, max);
}

void
pst_line_set_max(struct pst_line *lr, size_t max)
{
	lr->max = max < LINE_MIN ? LINE_MIN : max;
}

static enum pst_line_status
line_error(struct pst_line *lr, enum pst_line_status st, struct pst_err *err,
    const char *text)
{
	int code = 500;
	const char *esc = "5.5.2";

	if (st == PST_LINE_FATAL) {
		lr->failed = true;
		code = 521;
	}
	pst_err_set(err, PST_PERM, PST_STAGE_NONE, "%s", text);
	err->smtp_code = code;
	strncpy(err->esc, esc, sizeof(err->esc) - 1);
	return st;
}

/*
 * Skips the rest of an over-long line.  Returns PST_LINE_OK once its CRLF
 * is drained, PST_LINE_MORE when the input ran out first.
 */
static enum pst_line_status
line_skip(struct pst_line *lr, struct evbuffer *in, struct pst_err *err)
{
	struct evbuffer_iovec vec[LINE_NVEC];
	const unsigned char *p;
	size_t used, j;
	int i, n;

	for (;;) {
		/* evbuffer_peek() reports an empty chain as an empty extent. */
		if (evbuffer_get_length(in) == 0)
			return PST_LINE_MORE;
		n = evbuffer_peek(in, -1, NULL, vec, LINE_NVEC);
		if (n <= 0)
			return PST_LINE_MORE;
		if (n > LINE_NVEC)
			n = LINE_NVEC;
		used = 0;
		for (i = 0; i < n; i++) {
			p = vec[i].iov_base;
			for (j = 0; j < vec[i].iov_len; j++) {
				if (lr->skip_cr) {
					if (p[j] != '\n')
						return line_error(lr,
						    PST_LINE_FATAL, err,
						    "Bare CR received");
					evbuffer_drain(in, used + j + 1);
					lr->skipping = false;
					lr->skip_cr = false;
					return PST_LINE_OK;
				}
				if (p[j] == '\r')
					lr->skip_cr = true;
				else if (p[j] == '\n')
					return line_error(lr, PST_LINE_FATAL,
					    err, "Bare LF received");
			}
			used += vec[i].iov_len;
		}
		evbuffer_drain(in, used);
	}
}

enum pst_line_status
pst_line_read(struct pst_line *lr, struct evbuffer *in, char *buf,
    size_t size, size_t *len, struct pst_err *err)
{
	enum pst_line_status st;
	const unsigned char *p;
	size_t avail, max, scan, i;
	bool nul = false;

	pst_err_clear(err);
	*len = 0;
	if (size > 0)
		buf[0] = '\0';
	if (lr->failed)
		return line_error(lr, PST_LINE_FATAL, err,
		    "Connection already failed");
	if (lr->skipping) {
		st = line_skip(lr, in, err);
		if (st != PST_LINE_OK)
			return st;
	}

	max = lr->max;
	if (size < max - 1)
		max = size + 1;
	avail = evbuffer_get_length(in);
	if (avail == 0)
		return PST_LINE_MORE;
	scan = avail < max ? avail : max;
	if ((p = evbuffer_pullup(in, (ssize_t)scan)) == NULL) {
		line_error(lr, PST_LINE_FATAL, err, "Out of memory");
		err->cls = PST_LOCAL;
		err->smtp_code = 421;
		strncpy(err->esc, "4.3.0", sizeof(err->esc) - 1);
		return PST_LINE_FATAL;
	}

	for (i = 0; i < scan; i++) {
		if (p[i] == '\n') {
			if (i == 0 || p[i - 1] != '\r')
				return line_error(lr, PST_LINE_FATAL, err,
				    "Bare LF received");
			if (nul) {
				evbuffer_drain(in, i + 1);
				return line_error(lr, PST_LINE_BAD, err,
				    "NUL character in command");
			}
			memcpy(buf, p, i - 1);
			buf[i - 1] = '\0';
			*len = i - 1;
			evbuffer_drain(in, i + 1);
			return PST_LINE_OK;
		}
		/* A CR at the end of the scan may yet be followed by LF. */
		if (p[i] == '\r' && i + 1 < scan && p[i + 1] != '\n')
			return line_error(lr, PST_LINE_FATAL, err,
			    "Bare CR received");
		if (p[i] == '\0')
			nul = true;
	}
	if (scan < max)
		return PST_LINE_MORE;

	/* RFC 5321 §4.5.3.1.10: "500 Line too long"; skip to its CRLF. */
	lr->skipping = true;
	lr->skip_cr = p[scan - 1] == '\r';
	evbuffer_drain(in, scan);
	return line_error(lr, PST_LINE_TOOLONG, err, "Line too long");
}
