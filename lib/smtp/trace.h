/*
 * trace.h: trace fields (RFC 5321 §4.4, RFC 5322 §3.6.7): writing the
 * Received: field a hop adds, and counting the ones a message carries.
 *
 * Writing.  pst_received_format() puts the clauses of struct
 * pst_received in their RFC 5321 order:
 *
 *   Received: from HELO (COMMENT) by HOST (COMMENT) with PROTOCOL id ID
 *       for <ADDR>; DATE
 *
 * leaving out those the caller does not give.  Each caller has its own
 * layout, kept byte for byte across releases: the clauses in 'fold'
 * start a new line (CRLF TAB) instead of following a space.  The date is
 * RFC 5322 §3.3 local time, as pst_msg_date() writes it.
 *
 * Counting.  A message that went around too often is a mail loop (RFC
 * 5321 §6.3).  struct pst_hops counts "Received:" fields, fed the message
 * itself a chunk at a time (a chunk may end anywhere) or header lines one
 * by one; pst_hops_exceeded() holds the one limit.  A field is a line of
 * the header section starting with "Received", any case, then optional
 * white space and a colon (RFC 5322 §4.5.7 obs-received); continuation
 * lines are not fields, and the section ends at the first empty line.
 */
#ifndef PST_SMTP_TRACE_H
#define PST_SMTP_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* RFC 5321 §6.3 loop detection: this many Received: fields is a loop. */
#define PST_HOPS_MAX		100

/* Clauses of pst_received.fold */
#define PST_RCVD_FOLD_BY	0x01
#define PST_RCVD_FOLD_WITH	0x02
#define PST_RCVD_FOLD_ID	0x04
#define PST_RCVD_FOLD_FOR	0x08
#define PST_RCVD_FOLD_DATE	0x10

/* Every string may be NULL (the clause or comment is left out) but 'by'. */
struct pst_received {
	const char	*from;		/* the client's HELO name */
	const char	*from_comment;	/* "[192.0.2.1]", without parentheses */
	const char	*by;		/* our host name */
	const char	*by_comment;	/* "postern" */
	const char	*with;		/* "ESMTP", "SMTP" */
	const char	*id;		/* the queue id */
	const char	*for_addr;	/* one recipient, without <> */
	time_t		 date;
	unsigned	 fold;		/* PST_RCVD_FOLD_* */
};

/*
 * pst_received_format()
 * Writes the field, ending in CRLF, into 'buf' (NUL ended).  Returns its
 * length, or -1 when it does not fit in 'size' bytes.
 */
int	pst_received_format(const struct pst_received *r, char *buf,
	    size_t size);

/*
 * pst_msg_date()
 * 'when' as an RFC 5322 §3.3 date-time in local time, "Tue, 04 Mar 2025
 * 09:15:00 +0100", into 'buf' (NUL ended; 64 bytes are plenty).  Returns
 * 'buf'.
 */
char	*pst_msg_date(time_t when, char *buf, size_t size);

/* Read 'count'; leave the rest. */
struct pst_hops {
	unsigned	 count;		/* Received: fields so far */
	unsigned	 match;		/* progress on this line */
	bool		 blank;		/* nothing but a CR on this line yet */
	bool		 done;		/* the header section is over */
};

/*
 * pst_hops_init()
 * Prepares 'h' for one message.
 */
void	pst_hops_init(struct pst_hops *h);

/*
 * pst_hops_feed()
 * Counts in 'len' bytes of the message (lines ending in LF or CRLF),
 * continuing where the last chunk left off.  Once the header section is
 * over it returns at once.
 */
void	pst_hops_feed(struct pst_hops *h, const void *data, size_t len);

/*
 * pst_hops_line()
 * Counts in one header line ('len' bytes, without its line end; not the
 * empty line that ends the section, which would end the count).
 */
void	pst_hops_line(struct pst_hops *h, const char *line, size_t len);

/*
 * pst_hops_exceeded()
 * Whether the message has been through too many hops: PST_HOPS_MAX
 * Received: fields or more.
 */
bool	pst_hops_exceeded(const struct pst_hops *h);

#endif /* PST_SMTP_TRACE_H */
