/*
 * reply.c: incremental SMTP reply parser.
 *
 * Each call copies at most PST_REPLY_LINE_MAX bytes out of the input,
 * looks for the LF of one line, checks the line and only then drains it,
 * so a byte is drained exactly when it belongs to a line of the reply.
 * Lines are stored raw (without CRLF, NUL terminated) in the reply's own
 * buffer; the text offset skips the code, the separator and the enhanced
 * status code.  Stored bytes never exceed the wire bytes they came from,
 * so PST_REPLY_BYTES_MAX of storage holds any accepted reply.
 *
 * Deliberately not done: bare LF as a line end (see reply.h), replies
 * with a first digit outside 2-5, any reading of what the text says.
 */
#include <string.h>

#include <event2/buffer.h>

#include "smtp/reply.h"

static int	reply_fail(struct pst_reply *, enum pst_stage,
		    struct pst_err *, const char *, const char *, size_t);
static const char *reply_check_prefix(const char *, size_t, int);
static size_t	reply_esc_len(const char *, size_t, int);

void
pst_reply_reset(struct pst_reply *r)
{
	r->code = 0;
	r->esc[0] = '\0';
	r->complete = false;
	r->failed = false;
	r->nlines = 0;
	r->wire = 0;
	r->used = 0;
}

/*
 * Records the failure and fills 'err' with 'what' and the start of the
 * offending line, so that an operator sees what the peer actually sent.
 */
static int
reply_fail(struct pst_reply *r, enum pst_stage stage, struct pst_err *err,
    const char *what, const char *line, size_t len)
{
	r->failed = true;
	if (len > 64)
		len = 64;
	if (line == NULL || len == 0)
		return pst_err_set(err, PST_TEMP, stage,
		    "malformed reply from server: %s", what);
	return pst_err_set(err, PST_TEMP, stage,
	    "malformed reply from server: %s: \"%.*s\"", what, (int)len, line);
}

/*
 * Checks the first bytes of a line, as many as there are (up to 4):
 * three digits, the first 2-5 (RFC 5321 §4.2.1), the same code as the
 * lines before ('code', or 0 for the first line), then SP, '-' or the
 * end of the line (CR).  Returns NULL when the bytes are fine so far, or
 * what is wrong.
 */
static const char *
reply_check_prefix(const char *p, size_t n, int code)
{
	size_t i;

	if (n > 4)
		n = 4;
	for (i = 0; i < 3 && i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return "line does not start with a reply code";
	}
	if (n >= 1 && (p[0] < '2' || p[0] > '5'))
		return "line does not start with a reply code";
	if (n >= 3 && code != 0 &&
	    (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0') != code)
		return "reply code changed between lines";
	if (n >= 4 && p[3] != ' ' && p[3] != '-' && p[3] != '\r')
		return "no space or hyphen after the reply code";
	return NULL;
}

/*
 * Length of an enhanced status code at the start of 'text' (RFC 3463 §2:
 * class "." subject "." detail, subject and detail of 1-3 digits), when
 * its class is the first digit of 'code' and it is followed by SP or the
 * end of the text; else 0.
 */
static size_t
reply_esc_len(const char *text, size_t len, int code)
{
	size_t i, field, digits;

	if (len < 5 || text[0] != '0' + code / 100 ||
	    (text[0] != '2' && text[0] != '4' && text[0] != '5') ||
	    text[1] != '.')
		return 0;
	i = 2;
	for (field = 0; field < 2; field++) {
		for (digits = 0; i < len && text[i] >= '0' && text[i] <= '9';
		    i++)
			digits++;
		if (digits < 1 || digits > 3)
			return 0;
		if (field == 0) {
			if (i >= len || text[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && text[i] != ' ')
		return 0;
	return i;
}

int
pst_reply_parse(struct evbuffer *in, struct pst_reply *r,
    enum pst_stage stage, struct pst_err *err)
{
	char line[PST_REPLY_LINE_MAX];
	struct pst_reply_line *l;
	const char *lf, *text, *why;
	size_t avail, n, len, textlen, esclen;
	ev_ssize_t got;
	int code;
	bool last;

	if (r->failed)
		return pst_err_set(err, PST_TEMP, stage,
		    "reply parser used after an error without a reset");
	if (r->complete)
		pst_reply_reset(r);

	for (;;) {
		avail = evbuffer_get_length(in);
		if (avail == 0)
			return 0;
		n = avail < sizeof(line) ? avail : sizeof(line);
		got = evbuffer_copyout(in, line, n);
		if (got < 0 || (size_t)got != n)
			return reply_fail(r, stage, err,
			    "cannot read the input buffer", NULL, 0);
		lf = memchr(line, '\n', n);
		if (lf == NULL) {
			/* Fail early on what can never become a reply. */
			if ((why = reply_check_prefix(line, n, r->code)) !=
			    NULL)
				return reply_fail(r, stage, err, why, line, n);
			if (n == sizeof(line))
				return reply_fail(r, stage, err,
				    "line too long", line, n);
			return 0;
		}
		len = (size_t)(lf - line);

		/* RFC 5321 §2.3.8: CR and LF only ever as a pair. */
		if (len == 0 || line[len - 1] != '\r')
			return reply_fail(r, stage, err,
			    "line ends with a bare LF", line, len);
		len--;
		if (memchr(line, '\r', len) != NULL)
			return reply_fail(r, stage, err,
			    "bare CR inside a line", line, len);
		if (memchr(line, '\0', len) != NULL)
			return reply_fail(r, stage, err,
			    "NUL byte inside a line", line, len);
		if (len < 3)
			return reply_fail(r, stage, err,
			    "line does not start with a reply code", line,
			    len);
		if ((why = reply_check_prefix(line, len, r->code)) != NULL)
			return reply_fail(r, stage, err, why, line, len);
		if (r->nlines == PST_REPLY_LINES_MAX)
			return reply_fail(r, stage, err,
			    "too many lines", NULL, 0);
		if (r->wire + len + 2 > PST_REPLY_BYTES_MAX)
			return reply_fail(r, stage, err,
			    "reply too long", NULL, 0);

		code = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
		    (line[2] - '0');
		last = len == 3 || line[3] == ' ';
		text = len > 4 ? line + 4 : line + len;
		textlen = len > 4 ? len - 4 : 0;

		/*
		 * RFC 2034 §4: the code leads the text of every line.  Take
		 * it from the first line; strip the same one from the next.
		 */
		if (r->nlines == 0) {
			esclen = reply_esc_len(text, textlen, code);
			if (esclen > 0) {
				memcpy(r->esc, text, esclen);
				r->esc[esclen] = '\0';
			}
		} else {
			esclen = strlen(r->esc);
			if (esclen == 0 || textlen < esclen ||
			    memcmp(text, r->esc, esclen) != 0 ||
			    (textlen > esclen && text[esclen] != ' '))
				esclen = 0;
		}
		if (esclen > 0) {
			text += esclen;
			textlen -= esclen;
			if (textlen > 0) {
				text++;
				textlen--;
			}
		}

		l = &r->line[r->nlines++];
		l->off = (uint32_t)r->used;
		l->text = (uint32_t)(r->used + (size_t)(text - line));
		l->len = (uint32_t)textlen;
		memcpy(r->buf + r->used, line, len);
		r->buf[r->used + len] = '\0';
		r->used += len + 1;
		r->wire += len + 2;
		r->code = code;
		evbuffer_drain(in, len + 2);

		if (last) {
			r->complete = true;
			return 1;
		}
	}
}

const char *
pst_reply_line(const struct pst_reply *r, size_t i)
{
	if (i >= r->nlines)
		return NULL;
	return r->buf + r->line[i].text;
}

size_t
pst_reply_line_len(const struct pst_reply *r, size_t i)
{
	if (i >= r->nlines)
		return 0;
	return r->line[i].len;
}

const char *
pst_reply_raw(const struct pst_reply *r, size_t i)
{
	if (i >= r->nlines)
		return NULL;
	return r->buf + r->line[i].off;
}

char *
pst_reply_text(const struct pst_reply *r, char *buf, size_t len)
{
	const char *p;
	size_t i, off = 0;

	if (len == 0)
		return buf;
	for (i = 0; i < r->nlines && off + 1 < len; i++) {
		if (i > 0)
			buf[off++] = ' ';
		for (p = pst_reply_line(r, i); *p != '\0' && off + 1 < len;
		    p++) {
			unsigned char c = (unsigned char)*p;

			buf[off++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
		}
	}
	buf[off] = '\0';
	return buf;
}

_Static_assert(sizeof(((struct pst_err *)0)->esc) >= PST_REPLY_ESC_MAX,
    "an enhanced status code fits struct pst_err");

int
pst_err_from_reply(struct pst_err *err, enum pst_stage stage,
    const struct pst_reply *r)
{
	char text[PST_ERR_TEXT_MAX];

	pst_reply_text(r, text, sizeof(text));
	pst_err_set(err, r->code / 100 == 5 ? PST_PERM : PST_TEMP, stage,
	    "%s", text);
	err->smtp_code = r->code;
	memcpy(err->esc, r->esc, sizeof(r->esc));
	return -1;
}
