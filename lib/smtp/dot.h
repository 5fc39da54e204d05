/*
 * dot.h: the SMTP DATA stream, both ways (RFC 5321 §4.1.1.4, §4.5.2).
 *
 * Reading (server side).  After its 354 reply the server feeds the
 * client's input to pst_dot_read() as it arrives.  The reader removes the
 * transparency dots, writes the message (lines still ending in CRLF) to an
 * output evbuffer the caller spools, and stops right after the end of
 * data: <CRLF>.<CRLF>, or ".<CRLF>" as the very first line (an empty
 * message).  Nothing else ends DATA.  Bytes after the end (a pipelined
 * QUIT) stay in the input.
 *
 * A bare LF or a bare CR anywhere in the data is fatal.  The reader cannot
 * know where a message that contains one was meant to end, and a next hop
 * that reads it differently is how SMTP smuggling works (CVE-2023-51764,
 * CVE-2023-51765, CVE-2023-51766).  The server answers and closes; the
 * reply is 521 5.5.2, as Postfix (smtpd_forbid_bare_newline) and chasquid
 * send it.
 *
 * Other problems do not lose the message end, so the reader goes on to it
 * without writing anything more, and then asks for a refusal:
 *   - the message grew past the caller's size limit: 552 5.3.4 (RFC 5321
 *     §4.5.3.1.10 "552 Too much mail data", RFC 3463 X.3.4);
 *   - a text line longer than the caller's bound (1000 octets with CRLF,
 *     RFC 5321 §4.5.3.1.6, after removing the transparency dot): 554
 *     5.6.0.  500 would be the reply to an over-long command line, but
 *     it is not a valid reply to the end of data (RFC 5321 §4.3.2);
 *   - a NUL byte: 554 5.6.0.  RFC 5321 §4.5.2 and RFC 5322 leave no room
 *     for NUL in a message, and BINARYMIME is not offered.  The message
 *     end is known, so unlike a bare line break this is not fatal.
 *
 * The reader also reports what the server needs to decide or record: the
 * message size (octets after unstuffing, CRLF included, the end-of-data
 * line excluded: the size RFC 1870 means), whether a byte above 127 was
 * seen (to check BODY=8BITMIME) and whether one was in the header
 * section (UTF-8 there needs SMTPUTF8, RFC 6531 §3.4), and the number of
 * "Received:" fields in the header section, so that the server can
 * refuse a looping message (RFC 5321 §6.3: 554 5.4.0 past a count such
 * as 100).  The header section ends at the first empty line; field
 * names match without regard to case, with optional white space before
 * the colon (RFC 5322 §4.5.7 obs-received); continuation lines are not
 * fields.
 *
 * Writing (client side).  pst_dot_encode() turns message bytes into DATA
 * stream bytes: a "." at the start of a line is doubled.  It is a
 * streaming machine: chunks may split the input anywhere, even between CR
 * and LF.  It also makes the stream safe whatever the spool holds: a bare
 * LF or a bare CR becomes CRLF, so that no sequence the client sends can
 * be taken for the end of data by a lax server.  pst_dot_encode_finish()
 * ends the last line if needed and writes ".\r\n".
 *
 * Neither direction allocates beyond the evbuffers it writes to.
 */
#ifndef PST_DOT_H
#define PST_DOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "smtp/trace.h"

struct evbuffer;

/* RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets with CRLF. */
#define PST_DOT_LINE_MAX	1000

enum pst_dot_status {
	PST_DOT_MORE = 0,	/* all input consumed, end of data not seen */
	PST_DOT_DONE,		/* end of data consumed: the message is good */
	PST_DOT_REFUSED,	/* end of data consumed: refuse with 'err' */
	PST_DOT_FATAL,		/* answer 'err' and close the connection */
};

/* Reader states; the names are for the reader's own use. */
enum pst_dot_state {
	PST_DOT_ST_BOL = 0,	/* at the start of a line */
	PST_DOT_ST_DOT,		/* after a "." at the start of a line */
	PST_DOT_ST_DOT_CR,	/* after ".\r" at the start of a line */
	PST_DOT_ST_TEXT,	/* inside a line */
	PST_DOT_ST_CR,		/* after a CR inside a line */
	PST_DOT_ST_DONE,	/* end of data seen */
	PST_DOT_ST_FAILED,	/* fatal error reported */
};

/*
 * DATA reader.  Read 'size', 'eightbit', 'hdr_8bit' and 'hops'
 * (pst_hops_exceeded(), 'hops.count') freely; leave the rest to the
 * reader.
 */
struct pst_dot {
	enum pst_dot_state	 state;
	uint64_t		 max_size;	/* message bound, octets */
	size_t			 max_line;	/* line bound, CRLF included */
	uint64_t		 size;		/* octets so far (see above) */
	bool			 eightbit;	/* a byte above 127 was seen */
	bool			 hdr_8bit;	/* ... in the header */
	struct pst_hops		 hops;		/* "Received:" header fields */
	size_t			 line_len;	/* octets of the current line */
	bool			 in_header;	/* in the header section */
	unsigned		 refuse;	/* reasons to refuse, bits */
};

/*
 * pst_dot_init()
 * Prepares 'd' for one message: 'max_size' is the largest message
 * accepted (UINT64_MAX for no bound), 'max_line' the longest text line
 * with its CRLF (PST_DOT_LINE_MAX; 0 for no bound).
 */
void	pst_dot_init(struct pst_dot *d, uint64_t max_size, size_t max_line);

/*
 * pst_dot_read()
 * Consumes bytes from 'in' up to and including the end of data (or all
 * of them), appending the message to 'out'.  Returns:
 *
 * PST_DOT_MORE: 'in' is empty; call again when more arrives.
 * PST_DOT_DONE: the end of data was consumed; 'out' holds the whole
 * message (lines with CRLF, no end-of-data line); 'err' is cleared.
 * PST_DOT_REFUSED: the end of data was consumed, but the message must be
 * refused with 'err' (552 5.3.4 or 554 5.6.0, class PST_PERM, stage
 * PST_STAGE_DATA, scope PST_SCOPE_MESSAGE).  Writing to 'out' stopped
 * when the first reason was found: discard what it holds.  The session
 * goes on.
 * PST_DOT_FATAL: a bare CR or LF (521 5.5.2, PST_PERM, scope
 * PST_SCOPE_SESSION), or memory ran out (421 4.3.0, PST_LOCAL).  'in' was
 * drained through the offending byte.  Send 'err' and close.
 *
 * After DONE, REFUSED or FATAL, the reader must be initialised again
 * before its next message; until then it returns PST_DOT_FATAL.
 */
enum pst_dot_status pst_dot_read(struct pst_dot *d, struct evbuffer *in,
	    struct evbuffer *out, struct pst_err *err);

/*
 * Encoder state: where in a line the last byte left us.
 */
struct pst_dot_enc {
	int	 state;
};

/*
 * pst_dot_enc_init()
 * Prepares 'e' for one message.
 */
void	pst_dot_enc_init(struct pst_dot_enc *e);

/*
 * pst_dot_encode()
 * Appends the DATA stream form of 'len' bytes of 'data' to 'out': dots
 * doubled at line starts, bare CR and bare LF turned into CRLF.  A CR is
 * written at once; the next byte, maybe in the next chunk, tells whether
 * an LF must be added after it.  Returns 0, or -1 with 'err' (PST_LOCAL)
 * when 'out' could not grow; 'out' may then hold part of the chunk.
 */
int	pst_dot_encode(struct pst_dot_enc *e, const void *data, size_t len,
	    struct evbuffer *out, struct pst_err *err);

/*
 * pst_dot_encode_finish()
 * Completes the stream: a CRLF if the message did not end with one (RFC
 * 5321 §4.1.1.4 needs the message to end with CRLF before the dot), then
 * ".\r\n".  An empty message gives just ".\r\n".  Returns 0 or -1 as
 * pst_dot_encode().
 */
int	pst_dot_encode_finish(struct pst_dot_enc *e, struct evbuffer *out,
	    struct pst_err *err);

#endif /* PST_DOT_H */
