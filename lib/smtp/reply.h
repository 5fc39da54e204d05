/*
 * reply.h: SMTP server replies, as the client reads them.
 *
 * A reply is one or more lines "ddd-text" ending with one line "ddd text"
 * or "ddd" (RFC 5321 §4.2), every line with the same code.  The parser
 * reads complete lines from an evbuffer as they arrive and keeps them in a
 * fixed-size struct pst_reply: no allocation, every size bounded.
 *
 * Line endings are strict: a line ends with CRLF.  A bare LF or a bare CR
 * is an error, not a line end.  Servers in the wild send CRLF, and a
 * client that guesses where a line ends is a client that can be smuggled
 * a reply it never asked for.
 *
 * An enhanced status code (RFC 2034, RFC 3463) at the start of the text
 * is taken out into 'esc' when its class matches the first digit of the
 * reply code ("250 2.1.0 Ok" -> code 250, esc "2.1.0", text "Ok").  The
 * parser does not need ENHANCEDSTATUSCODES to have been announced.
 */
#ifndef PST_REPLY_H
#define PST_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct evbuffer;

/*
 * Bounds.  RFC 5321 §4.5.3.1.5 allows reply lines of 512 bytes; real
 * servers exceed it, so we take up to 1000 (CRLF included), up to 100
 * lines and up to 64 KiB on the wire for one reply.
 */
#define PST_REPLY_LINE_MAX	1000
#define PST_REPLY_LINES_MAX	100
#define PST_REPLY_BYTES_MAX	65536

/* Longest enhanced status code "5.999.999", NUL included. */
#define PST_REPLY_ESC_MAX	16

struct pst_reply_line {
	uint32_t	 off;		/* start of the raw line in buf */
	uint32_t	 text;		/* start of the text in buf */
	uint32_t	 len;		/* length of the text */
};

/*
 * One reply.  Read the fields, never write them: pst_reply_parse() owns
 * the struct between pst_reply_reset() and the end of a reply.  The text
 * is reached through pst_reply_line() so that the struct may be copied by
 * assignment (it holds offsets, not pointers).  It is large (about 65 KiB):
 * embed it in a long-lived object rather than on a small stack.
 */
struct pst_reply {
	int			 code;		/* 200-599, 0 until a line */
	char			 esc[PST_REPLY_ESC_MAX]; /* "2.1.0" or "" */
	bool			 complete;	/* last line seen */
	bool			 failed;	/* garbage seen: reset first */
	size_t			 nlines;
	size_t			 wire;		/* bytes drained so far */
	size_t			 used;		/* bytes of buf in use */
	struct pst_reply_line	 line[PST_REPLY_LINES_MAX];
	char			 buf[PST_REPLY_BYTES_MAX];
};

/*
 * pst_reply_reset()
 * Makes 'r' empty, ready for a new reply.  A zero-filled struct is empty
 * too, so static or calloc'ed storage needs no reset.
 */
void	pst_reply_reset(struct pst_reply *r);

/*
 * pst_reply_parse()
 * Reads the complete lines of one reply from 'in' into 'r'.  Call it each
 * time bytes arrive.  Every complete line is drained from 'in' as it is
 * taken; a partial line stays in 'in' until its CRLF arrives.  Returns:
 *    1  the reply is complete.  'in' holds exactly what followed it (the
 *       next pipelined reply, or bytes a server injected before a TLS
 *       handshake: a STARTTLS client checks that 'in' is empty now).
 *       The next call starts a new reply in 'r' by itself.
 *    0  more bytes are needed; 'r' keeps the lines read so far.
 *   -1  the peer is not speaking SMTP: 'err' is filled with PST_TEMP,
 *       stage 'stage' and a text naming the fault (not a 3-digit code,
 *       code changed between lines, bare CR or LF, NUL byte, line over
 *       PST_REPLY_LINE_MAX, more than PST_REPLY_LINES_MAX lines or
 *       PST_REPLY_BYTES_MAX bytes).  Part of the reply may have been
 *       drained; the connection is unusable and should be dropped.
 *       Later calls keep failing until pst_reply_reset().
 * A partial line whose first bytes already cannot start a reply (binary
 * data, "HTTP/1.1") fails at once instead of waiting for a CRLF.
 */
int	pst_reply_parse(struct evbuffer *in, struct pst_reply *r,
	    enum pst_stage stage, struct pst_err *err);

/*
 * pst_reply_line()
 * The text of line 'i' (0-based, below r->nlines): what follows the code,
 * the separator and (when it was extracted) the enhanced status code and
 * its space.  NUL terminated, valid while 'r' is not changed.  May hold
 * any byte but NUL, CR and LF: sanitise before logging.  NULL when 'i' is
 * out of range.
 */
const char *pst_reply_line(const struct pst_reply *r, size_t i);

/*
 * pst_reply_line_len()
 * strlen(pst_reply_line(r, i)), or 0 when 'i' is out of range.
 */
size_t	pst_reply_line_len(const struct pst_reply *r, size_t i);

/*
 * pst_reply_raw()
 * Line 'i' as it came on the wire, without its CRLF ("250-2.1.0 Ok"), for
 * a transcript.  NULL when 'i' is out of range.
 */
const char *pst_reply_raw(const struct pst_reply *r, size_t i);

/*
 * pst_reply_text()
 * Writes the texts of all lines, joined by single spaces, into 'buf' of
 * 'len' bytes (cut to fit, always NUL terminated), with bytes outside
 * printable ASCII replaced by '?'.  Returns 'buf'.
 */
char	*pst_reply_text(const struct pst_reply *r, char *buf, size_t len);

/*
 * pst_err_from_reply()
 * Fills 'err' from a reply the caller did not want: class from the first
 * digit (4 -> PST_TEMP, 5 -> PST_PERM; a 2xx or 3xx where it makes no
 * sense -> PST_TEMP), stage 'stage', session scope (the caller narrows it
 * for MAIL, RCPT or DATA), smtp_code, esc and the sanitised text of
 * pst_reply_text().  Returns -1.
 */
int	pst_err_from_reply(struct pst_err *err, enum pst_stage stage,
	    const struct pst_reply *r);

#endif /* PST_REPLY_H */
