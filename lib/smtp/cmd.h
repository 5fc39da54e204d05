/*
 * cmd.h: SMTP server-side command parser (RFC 5321 §4.1, ESMTP parameters
 * of RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 6531 SMTPUTF8, RFC 3461 DSN).
 *
 * The server reads a line with line.h and hands it here.  The parser
 * identifies the verb, checks the arguments of the commands postern
 * implements and returns them in a struct pst_cmd; it keeps no state.
 * What the session allows next (sequence, limits, policy) is the
 * server's business.
 *
 * Replies.  On error the parser returns -1 and fills a struct pst_err with
 * the reply to send: smtp_code, esc and a short text, ready for
 * "%d %s %s".  The codes:
 *   500 5.5.1  unrecognised command; 500 5.5.2 for a line with CR, LF or
 *              NUL in it, or malformed UTF-8 (refused at the door)
 *   501 5.5.4  bad arguments: "MAIL" without "FROM:", junk after a path,
 *              arguments to DATA/RSET/QUIT, a bad or duplicated parameter
 *   501 5.1.7  bad sender address syntax (RFC 3463)
 *   501 5.1.3  bad recipient address syntax
 *   553 5.6.7  non-ASCII address without SMTPUTF8 (RFC 6531)
 *   555 5.5.4  parameter unknown, not announced, or value not implemented
 *              (RFC 5321 §4.1.1.11)
 * Errors have class PST_PERM, the stage of the command (PST_STAGE_MAIL,
 * PST_STAGE_RCPT, PST_STAGE_EHLO, ...) and the scope PST_SCOPE_RECIPIENT
 * for RCPT, PST_SCOPE_MESSAGE for MAIL and DATA, PST_SCOPE_SESSION else.
 *
 * Liberal where Postfix and Exim are, strict elsewhere:
 *   - verbs and parameter keywords are case-insensitive (RFC 5321 §2.4);
 *   - spaces are tolerated between the verb and "FROM:"/"TO:", after the
 *     colon ("MAIL FROM: <a@b>", which RFC 5321 §4.1.2 does not allow but
 *     both accept), between parameters and at the end of the line;
 *   - a path must be in angle brackets ("MAIL FROM:a@b" is refused);
 *   - only SP separates; a TAB is not whitespace here.
 *   - the EHLO/HELO argument is accepted when it is one token of printable
 *     ASCII, and only reported when it is not a valid domain or address
 *     literal (helo_valid): container runtimes hand out host names with
 *     underscores, and refusing the greeting would refuse the mail.
 */
#ifndef PST_CMD_H
#define PST_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "smtp/addr.h"

enum pst_cmd_verb {
	PST_CMD_UNKNOWN = 0,	/* not a command (parse returned -1) */
	PST_CMD_HELO,
	PST_CMD_EHLO,
	PST_CMD_MAIL,
	PST_CMD_RCPT,
	PST_CMD_DATA,
	PST_CMD_RSET,
	PST_CMD_NOOP,
	PST_CMD_QUIT,
	PST_CMD_VRFY,
	PST_CMD_HELP,
	/*
	 * Recognised only: the arguments are not checked, and the server
	 * answers 502 5.5.1 (command not implemented) whatever follows.
	 */
	PST_CMD_STARTTLS,	/* RFC 3207 */
	PST_CMD_AUTH,		/* RFC 4954 */
	PST_CMD_BDAT,		/* RFC 3030 */
	PST_CMD_BURL,		/* RFC 4468 */
	PST_CMD_EXPN,		/* RFC 5321 §4.1.1.7 */
	PST_CMD_ETRN,		/* RFC 1985 */
	PST_CMD_ATRN,		/* RFC 2645 */
	PST_CMD_TURN,		/* RFC 821, obsolete */
	PST_CMD_SEND,		/* RFC 821, obsolete */
	PST_CMD_SOML,		/* RFC 821, obsolete */
	PST_CMD_SAML,		/* RFC 821, obsolete */
	/*
	 * An HTTP request line (GET, POST, HEAD, PUT, CONNECT): someone
	 * speaks HTTP to the SMTP port, maybe a browser tricked into it.
	 * The server should close without reading further, as Postfix does
	 * for its smtpd_forbidden_commands.
	 */
	PST_CMD_HTTP,
	PST_CMD__COUNT
};

/* ESMTP extensions the server announced, for pst_cmd_parse(). */
#define PST_CMD_EXT_SIZE	0x01	/* RFC 1870 SIZE= */
#define PST_CMD_EXT_8BITMIME	0x02	/* RFC 6152 BODY= */
#define PST_CMD_EXT_SMTPUTF8	0x04	/* RFC 6531 SMTPUTF8 */
#define PST_CMD_EXT_DSN		0x08	/* RFC 3461 RET= ENVID= NOTIFY= ORCPT */
/* For RCPT: the MAIL of this transaction carried SMTPUTF8. */
#define PST_CMD_TXN_UTF8	0x100
/* MAIL and RCPT take bare local names ("<root>"): a local client. */
#define PST_CMD_LOCAL_NAMES	0x200

/* Bounds on DSN parameters (RFC 3461 §4.4: ENVID at most 100 chars). */
#define PST_CMD_ENVID_MAX	100	/* decoded */
#define PST_CMD_ORCPT_MAX	500	/* xtext, as received */
#define PST_CMD_ADDRTYPE_MAX	32

enum pst_cmd_body {
	PST_BODY_NONE = 0,	/* no BODY= parameter */
	PST_BODY_7BIT,
	PST_BODY_8BITMIME,
};

enum pst_cmd_ret {
	PST_RET_NONE = 0,	/* no RET= parameter */
	PST_RET_FULL,
	PST_RET_HDRS,
};

/* NOTIFY= bits; 0 when no NOTIFY= parameter was given. */
#define PST_NOTIFY_NEVER	0x01
#define PST_NOTIFY_SUCCESS	0x02
#define PST_NOTIFY_FAILURE	0x04
#define PST_NOTIFY_DELAY	0x08

/* MAIL FROM parameters. */
struct pst_mail_params {
	bool			 has_size;
	uint64_t		 size;	/* SIZE=; UINT64_MAX if it overflowed */
	enum pst_cmd_body	 body;
	bool			 smtputf8;
	enum pst_cmd_ret	 ret;
	/* ENVID= as received (xtext), and decoded; "" when absent. */
	char			 envid[3 * PST_CMD_ENVID_MAX + 1];
	char			 envid_text[PST_CMD_ENVID_MAX + 1];
};

/* RCPT TO parameters. */
struct pst_rcpt_params {
	unsigned		 notify;	/* PST_NOTIFY_* bits */
	/* ORCPT= addr-type, address as received (xtext), and decoded. */
	char			 orcpt_type[PST_CMD_ADDRTYPE_MAX + 1];
	char			 orcpt[PST_CMD_ORCPT_MAX + 1];
	char			 orcpt_text[PST_CMD_ORCPT_MAX + 1];
};

/*
 * One parsed command.  'arg' points into the caller's line: it is valid as
 * long as that buffer is.  The other members are copies.
 */
struct pst_cmd {
	enum pst_cmd_verb	 verb;
	const char		*arg;	/* after the verb, spaces trimmed */
	size_t			 arg_len;
	/* EHLO, HELO */
	char			 helo[PST_ADDR_DOMAIN_MAX + 1];
	bool			 helo_valid;	/* Domain or address literal */
	/* MAIL, RCPT */
	struct pst_addr		 addr;
	struct pst_mail_params	 mail;
	struct pst_rcpt_params	 rcpt;
};

/*
 * pst_cmd_parse()
 * Parses 'line' ('len' bytes, without CRLF; no NUL terminator needed)
 * into '*cmd'.  'flags' are the PST_CMD_EXT_* extensions announced in the
 * EHLO reply (0 after HELO: every parameter is then refused with 555),
 * plus PST_CMD_TXN_UTF8 when parsing RCPT in a transaction whose MAIL
 * carried SMTPUTF8.
 *
 *   EHLO/HELO  one token, copied to 'helo' (see above for its checks)
 *   MAIL       "FROM:" path [params]: 'addr' (null allowed), 'mail'
 *   RCPT       "TO:" path [params]: 'addr' ("<postmaster>" allowed), 'rcpt'
 *   VRFY       a non-empty argument, in 'arg'
 *   NOOP, HELP an optional argument, in 'arg'
 *   DATA, RSET, QUIT  no argument
 *   others     recognised only: 'arg' holds whatever followed
 *
 * UTF-8 in a MAIL path is allowed only with the SMTPUTF8 parameter (and
 * PST_CMD_EXT_SMTPUTF8), in a RCPT path only with PST_CMD_TXN_UTF8.
 * Returns 0, or -1 with 'err' filled as described at the top; cmd->verb
 * is set even then, when the verb was recognised.
 */
int	pst_cmd_parse(const char *line, size_t len, unsigned flags,
	    struct pst_cmd *cmd, struct pst_err *err);

/*
 * pst_cmd_name()
 * The verb in upper case ("MAIL"); "?" for PST_CMD_UNKNOWN.
 */
const char *pst_cmd_name(enum pst_cmd_verb verb);

/*
 * pst_cmd_line_max()
 * The command line bound, CRLF included, to give the line reader for a
 * session that announced the 'flags' extensions.  RFC 5321 §4.5.3.1.4
 * sets 512 octets and lets extensions raise it; each parameter postern
 * accepts adds the room it can take with its space: SIZE= 26, BODY= 14,
 * SMTPUTF8 9, RET= 9, ENVID= 307 on MAIL; NOTIFY= 29 and ORCPT= 540 on
 * RCPT.  The larger of the MAIL and RCPT totals is returned: 512 with no
 * extension, 1081 with all of them.
 */
size_t	pst_cmd_line_max(unsigned flags);

#endif /* PST_CMD_H */
