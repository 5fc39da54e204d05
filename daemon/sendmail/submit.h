/*
 * submit.h: one message handed to postern on this host (the sendmail
 * command line and "sendmail -bs"), from raw input to a committed spool
 * message.
 *
 * A submission turns the bytes a program wrote into what the spool may
 * hold and the upstream will accept:
 *   - lines end in LF or CRLF on input and in CRLF in the spool; a CR not
 *     followed by LF is a line break too (it becomes CRLF), so the spool
 *     never holds a bare CR or LF;
 *   - a NUL byte refuses the message (RFC 5322 text has none);
 *   - a body line longer than 998 octets is broken into lines of at most
 *     998 (RFC 5321 §4.5.3.1.6); a header line that long is folded at its
 *     last white space before the limit, or broken with CRLF SP where it
 *     has none;
 *   - without 'ignore_dots' a line holding a single "." ends the input;
 *   - a leading "From " line (mbox separator) is dropped when asked;
 *   - the header section is kept in memory (at most SUBMIT_HEADER_MAX
 *     octets) until it ends: at an empty line, at the first line that is
 *     not a header field (an empty line is then inserted before it), or
 *     at the end of input.  Then a Received: field is put on top, Bcc:
 *     (and Resent-Bcc:) fields are left out when asked, and Date:,
 *     Message-ID: and From: are added at the end when missing (RFC 6409
 *     §8, RFC 5322 §3.6); a bare name in an address field (From:,
 *     Sender:, Reply-To:, To:, Cc:, Bcc: and their Resent- forms) gets
 *     "@default_domain", as RFC 5322 §3.4.1 wants ("From: root (Cron
 *     Daemon)" becomes "From: root@example.org (Cron Daemon)"); a field
 *     that does not parse as an address list is left as written;
 *   - with 'extract' (sendmail -t) the recipients are read from To:, Cc:
 *     and Bcc: (Resent-To:, Resent-Cc: and Resent-Bcc: instead when the
 *     message has any of them), as RFC 5322 §3.4 address lists: display
 *     names, comments, groups, quoted local parts and source routes.
 * The body then streams into the spool message, flushed to tmp/ whenever
 * PST_SPOOL_FLUSH_BYTES are buffered, so memory stays bounded by the
 * header section and one flush.  Everything runs on the calling thread
 * and blocks on the disk (the _sync spool calls).
 *
 * Errors come as struct pst_err: PST_PERM for something wrong with the
 * message or an address (the caller exits 65 or answers 5xx; 'smtp_code'
 * and 'esc' hold the reply), PST_TEMP or PST_LOCAL for spool and memory
 * trouble (exit 75, 451 4.3.0).  After any error the submission is failed
 * and only submit_free() may follow; nothing of it stays in the spool.
 */
#ifndef POSTERN_SUBMIT_H
#define POSTERN_SUBMIT_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>

#include "spool/spool.h"

struct config;
struct pst_err;

/* The header section, held whole until it ends. */
#define SUBMIT_HEADER_MAX	(1024u * 1024)
/* RFC 5321 §4.5.3.1.6: 1000 octets with CRLF. */
#define SUBMIT_LINE_MAX		998

struct submit_params {
	const struct config	*cfg;
	struct pst_spool	*spool;
	const char		*sender;	/* envelope sender, "" for <> */
	const char		*from_addr;	/* for an added From: */
	const char		*full_name;	/* its display name, or NULL */
	const char		*origin;	/* "sendmail uid=N" */
	uid_t			 uid;		/* for the Received: field */
	const char		*helo;		/* -bs: the client's name */
	const char		*protocol;	/* -bs: "SMTP" or "ESMTP" */
	bool			 extract;	/* -t */
	bool			 strip_bcc;	/* leave Bcc: out */
	bool			 ignore_dots;	/* -i: "." does not end */
	bool			 skip_from_line; /* drop a first "From " */
	unsigned		 flags;		/* PST_SPOOL_F_* to start with */
	unsigned		 notify;	/* PST_SPOOL_NOTIFY_* for all */
	enum pst_spool_ret	 ret;
	const char		*envid;		/* xtext, or NULL */
};

struct submit;

/*
 * submit_new()
 * Starts a message in p->spool with the envelope sender, origin and DSN
 * parameters of 'p' (copied; 'p' need not outlive the call, its config
 * and spool must outlive the submission).  No file is written yet.
 * Returns NULL with 'err' (PST_PERM for a bad sender value, PST_TEMP for
 * memory).
 */
struct submit *submit_new(const struct submit_params *p,
	    struct pst_err *err);

/*
 * submit_id()
 * The queue id the message will have.
 */
const char	*submit_id(const struct submit *s);

/*
 * submit_add_list()
 * Adds the recipients of 'text' ('len' bytes), an RFC 5322 address list
 * ("a@example.org, Joe <joe@example.org>, root"), each bare local name
 * expanded through the aliases to name@default_domain (rewrite.h).
 * 'where' says where it came from, for messages ("on the command line",
 * "in the To: field").
 * Duplicates (ignoring case) are kept once; an empty list adds nothing.
 * Refuses (PST_PERM, 501 5.1.3) a bad address, naming it and 'where',
 * and more recipients than limits.recipients (452 4.5.3).  Returns 0 or
 * -1 with 'err'; after -1 the recipients added before stay.
 */
int		 submit_add_list(struct submit *s, const char *text,
		    size_t len, const char *where, struct pst_err *err);

/*
 * submit_add_rcpt()
 * Adds one recipient mailbox already checked by the caller (an SMTP
 * RCPT path, or a bare local name), with its DSN NOTIFY set and ORCPT
 * (NULL if none); aliases apply as above.  Returns 0 or -1 with 'err'.
 */
int		 submit_add_rcpt(struct submit *s, const char *addr,
		    unsigned notify, const char *orcpt, struct pst_err *err);

/*
 * submit_rcpts()
 * Recipients so far.
 */
size_t		 submit_rcpts(const struct submit *s);

/*
 * submit_input()
 * Feeds 'len' bytes of the message.  Returns 0 to ask for more, 1 when
 * a lone "." line ended the message (the bytes after it are not used;
 * never with 'ignore_dots'), or -1 with 'err' (the submission failed).
 */
int		 submit_input(struct submit *s, const char *buf, size_t len,
		    struct pst_err *err);

/*
 * submit_finish()
 * Ends the input (a last line without a line end is ended), checks that
 * there is a recipient (else PST_PERM "no recipients", 554 5.5.1) and
 * commits the message: on success it is on stable storage and belongs to
 * the queue.  Returns 0 or -1 with 'err'.
 */
int		 submit_finish(struct submit *s, struct pst_err *err);

/*
 * submit_free()
 * Frees 's'; a message not committed leaves no file behind.  NULL is
 * fine.
 */
void		 submit_free(struct submit *s);

#endif /* POSTERN_SUBMIT_H */
