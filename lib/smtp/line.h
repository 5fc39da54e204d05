/*
 * line.h: bounded, strict CRLF line reader for SMTP command lines.
 *
 * The server reads its commands through this reader, one line at a time,
 * from the input evbuffer of the client's bufferevent.  Only CR LF ends a
 * line.  A bare LF or a bare CR anywhere is not a line end but a fatal
 * protocol error: a server that guesses where a line ends can be made to
 * see commands, or a message end, that a filter in front of it never saw
 * (SMTP smuggling, CVE-2023-51764 and its kin).  A NUL in a line is
 * refused too, but the line end is known, so the session survives.
 *
 * Lines are bounded.  A line longer than the bound is reported once, as
 * soon as the bound is reached, and the rest of it is skipped up to its
 * CRLF without being buffered: the session goes on with the next line
 * (RFC 5321 §4.5.3.1.4 and §4.5.3.1.10, "500 Line too long").
 *
 * Replies.  Every error fills a struct pst_err with the reply the server
 * should send: smtp_code, esc and a short text ("500 5.5.2 Line too
 * long").  The enhanced code for a long command line is 5.5.2 (syntax
 * error, RFC 3463), not 5.5.6: RFC 4954 registered X.5.6 for an
 * over-long AUTH exchange line only.  Fatal errors use 521 5.5.2, the
 * reply Postfix (smtpd_forbid_bare_newline) and chasquid send before they
 * drop a client that sent a bare line break.
 *
 * The reader only ever drains what it consumed: bytes after a complete
 * line (pipelined commands, or message data after DATA) stay in the
 * evbuffer for the next call, or for the DATA reader of dot.h.
 */
#ifndef PST_LINE_H
#define PST_LINE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

struct evbuffer;

/* RFC 5321 §4.5.3.1.4: a command line is at most 512 octets, CRLF included. */
#define PST_LINE_SMTP_MAX	512

enum pst_line_status {
	PST_LINE_OK = 0,	/* a complete line is in the caller's buffer */
	PST_LINE_MORE,		/* no complete line yet: wait for input */
	PST_LINE_TOOLONG,	/* over the bound: reply, the rest is skipped */
	PST_LINE_BAD,		/* a NUL in the line: reply, line consumed */
	PST_LINE_FATAL,		/* bare CR or LF: reply and close */
};

/*
 * Reader state: a bound and whether the rest of an over-long line is being
 * skipped.  Plain data, no allocation: embed it in the session.
 */
struct pst_line {
	size_t		 max;		/* longest line, CRLF included */
	bool		 skipping;	/* inside an over-long line */
	bool		 skip_cr;	/* skipping, and the last byte was CR */
	bool		 failed;	/* a fatal error was reported */
};

/*
 * pst_line_init()
 * Prepares 'lr' to read lines of at most 'max' octets, CRLF included
 * (PST_LINE_SMTP_MAX, or pst_cmd_line_max() of cmd.h when ESMTP extensions
 * that lengthen MAIL and RCPT were announced).  A 'max' below 3 is taken
 * as 3.  Calling it again resets the reader; changing the bound between
 * lines (after EHLO) with pst_line_set_max() keeps the state.
 */
void	pst_line_init(struct pst_line *lr, size_t max);

/*
 * pst_line_set_max()
 * Changes the bound for the lines not yet started.
 */
void	pst_line_set_max(struct pst_line *lr, size_t max);

/*
 * pst_line_read()
 * Reads at most one line from 'in'.
 *
 * PST_LINE_OK: the line without its CRLF is in 'buf', NUL terminated, its
 * length in '*len'; the line and its CRLF are drained from 'in'.  'buf'
 * has 'size' bytes; the bound in force is the smaller of the reader's
 * bound and size + 1 (the CRLF needs two bytes, the NUL one), so a
 * buffer of PST_LINE_SMTP_MAX bytes always suffices for that bound.
 *
 * PST_LINE_MORE: no complete line.  Nothing was drained, except bytes of
 * an over-long line being skipped.  Call again when more input arrives.
 *
 * PST_LINE_TOOLONG: the line has reached the bound without a CRLF.  The
 * bytes seen so far are drained, and the reader skips the rest of the line
 * on the next calls (they return PST_LINE_MORE until its CRLF, then read
 * the next line).  Reported once per line.  'err' holds 500 5.5.2.
 *
 * PST_LINE_BAD: the line held a NUL (commands are ASCII text, RFC 5321
 * §2.4; RFC 6531 adds UTF-8; neither has NUL).  The line is drained;
 * 'err' holds 500 5.5.2.  The session can go on.
 *
 * PST_LINE_FATAL: a bare LF (not preceded by CR) or a bare CR (followed by
 * anything but LF) was seen, in a line or in the skipped part of an
 * over-long one; or memory ran out (then 'err' is PST_LOCAL, 421 4.3.0).
 * 'err' holds the reply (521 5.5.2); the server sends it and closes: the
 * boundaries of whatever follows cannot be trusted.  The reader stays
 * failed: later calls return PST_LINE_FATAL again until pst_line_init().
 *
 * 'err' is cleared on PST_LINE_OK and PST_LINE_MORE.  Errors carry class
 * PST_PERM (PST_LOCAL for memory) and stage PST_STAGE_NONE: the caller
 * knows which command it was reading.
 */
enum pst_line_status pst_line_read(struct pst_line *lr, struct evbuffer *in,
	    char *buf, size_t size, size_t *len, struct pst_err *err);

#endif /* PST_LINE_H */
