/*
 * addr.h: SMTP path and mailbox syntax (RFC 5321 §4.1.2, RFC 6531 §3.3).
 *
 *   Path          "<" [ A-d-l ":" ] Mailbox ">"       "<>" for MAIL only
 *   A-d-l         "@" Domain *( "," "@" Domain )      source route, dropped
 *   Mailbox       Local-part "@" ( Domain / address-literal )
 *   Local-part    Dot-string / Quoted-string
 *   address-lit.  "[" IPv4 "]" / "[IPv6:" IPv6 "]"
 *
 * The parser is strict where the grammar is clear: no empty atoms or
 * leading, trailing or doubled dots in a dot-string, no control
 * characters, no trailing dot on a domain, labels that start and end with
 * a letter or digit.  Postfix accepts more by default; a local relay
 * that forwards to a smart host gains nothing from passing on addresses
 * the next hop may refuse, and a broken sender learns at once.
 *
 * Limits (RFC 5321 §4.5.3.1): local part 64 octets, domain 255 octets,
 * path 256 octets including the angle brackets and any source route.
 * Labels of a domain are at most 63 octets (RFC 1035 §2.3.4); a label with
 * UTF-8 in it is only bounded by the domain length, since the 63 octets
 * apply to its A-label form, which this parser does not compute.
 *
 * UTF-8 (RFC 6531) is accepted in the local part and the domain only with
 * PST_ADDR_F_UTF8, and must then be well formed (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF).  Labels with UTF-8 are
 * checked for well-formedness and the hyphen rules only: IDNA2008
 * validity needs tables this library does not carry.
 *
 * General address literals ("[tag:...]") are refused: IPv6 is the only
 * tag ever registered (RFC 5321 §4.1.3).
 *
 * Pure functions, no allocation.  Errors come back as a short static
 * phrase in '*why' ("local part too long"); turning it into a reply code
 * is the caller's business (cmd.h uses 501 5.1.7 for senders and 501
 * 5.1.3 for recipients, RFC 3463).
 */
#ifndef PST_ADDR_H
#define PST_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define PST_ADDR_LOCAL_MAX	64	/* RFC 5321 §4.5.3.1.1 */
#define PST_ADDR_DOMAIN_MAX	255	/* RFC 5321 §4.5.3.1.2 */
#define PST_ADDR_PATH_MAX	256	/* RFC 5321 §4.5.3.1.3, with <> */
#define PST_ADDR_MAILBOX_MAX	(PST_ADDR_PATH_MAX - 2)

/* Flags for the parsers. */
#define PST_ADDR_F_NULL		0x01	/* accept "<>" (MAIL only) */
#define PST_ADDR_F_POSTMASTER	0x02	/* accept "<postmaster>" (RCPT) */
#define PST_ADDR_F_UTF8		0x04	/* accept UTF-8 (SMTPUTF8 in use) */
#define PST_ADDR_F_LOCAL	0x08	/* accept a bare local name ("<root>",
					   an unquoted dot-string): a local
					   client's, qualified by the caller */

/*
 * A parsed path.  Strings are NUL terminated and keep the form they had on
 * the wire (case, quotes and escapes of a quoted local part), so that the
 * address can be relayed upstream exactly as it came.
 */
struct pst_addr {
	char	 local[PST_ADDR_LOCAL_MAX + 1];	/* "" for "<>" */
	char	 domain[PST_ADDR_DOMAIN_MAX + 1];	/* or "[literal]" */
	char	 mailbox[PST_ADDR_MAILBOX_MAX + 1];	/* local@domain */
	bool	 null;		/* "<>": the null reverse-path */
	bool	 postmaster;	/* "<postmaster>" without a domain */
	bool	 bare;		/* a local name without a domain
				   (PST_ADDR_F_LOCAL): 'mailbox' is it */
	bool	 quoted;	/* the local part is a quoted string */
	bool	 literal;	/* the domain is an address literal */
	bool	 utf8;		/* some byte is not ASCII */
	bool	 routed;	/* a source route was given and dropped */
};

/*
 * pst_addr_parse_path()
 * Parses the path at the start of 's' (at most 'len' bytes; 's' needs no
 * NUL) into '*addr' and sets '*used' to the bytes it took, the closing
 * ">" included; what follows is left to the caller (ESMTP parameters).
 * With PST_ADDR_F_NULL, "<>" gives addr->null and empty strings.  With
 * PST_ADDR_F_POSTMASTER, "<postmaster>" in any case gives
 * addr->postmaster, local "postmaster" as written and an empty domain
 * (RFC 5321 §4.1.1.3).  A source route is checked and dropped (RFC 5321
 * §4.1.2 and Appendix C: "SHOULD ignore").  Returns 0, or -1 with '*why'
 * set and '*addr' unspecified.
 */
int	pst_addr_parse_path(const char *s, size_t len, unsigned flags,
	    struct pst_addr *addr, size_t *used, const char **why);

/*
 * pst_addr_parse_mailbox()
 * Parses all of 's' ('len' bytes) as a bare mailbox "local@domain", for
 * addresses from the configuration or the sendmail command line.  Flags as
 * above (PST_ADDR_F_NULL accepts the empty string, PST_ADDR_F_POSTMASTER a
 * bare "postmaster").  Returns 0, or -1 with '*why'.
 */
int	pst_addr_parse_mailbox(const char *s, size_t len, unsigned flags,
	    struct pst_addr *addr, const char **why);

/*
 * pst_addr_domain_valid()
 * True when all 'len' bytes of 's' are a domain name or an address
 * literal by the rules above (RFC 5321 Domain / address-literal).
 * PST_ADDR_F_UTF8 admits labels with UTF-8.  Used for the EHLO argument.
 */
bool	pst_addr_domain_valid(const char *s, size_t len, unsigned flags);

/*
 * pst_addr_utf8_valid()
 * True when 's' ('len' bytes) is well-formed UTF-8 (RFC 3629).  ASCII,
 * NUL included, is well formed: callers check control characters apart.
 */
bool	pst_addr_utf8_valid(const char *s, size_t len);

/*
 * pst_addr_xtext_decode()
 * Decodes xtext (RFC 3461 §4: printable ASCII except "+" and "=", and
 * "+HH" with two upper-case hex digits) from 's' ('len' bytes) into 'out'
 * of 'size' bytes, NUL terminated, its length in '*outlen'.  The decoded
 * text must be printable US-ASCII or space, as RFC 3461 §4.2 and §4.4
 * require of ORCPT and ENVID.  Returns 0, or -1 with '*why' on bad
 * syntax, a decoded byte outside that range, or an 'out' too small.
 */
int	pst_addr_xtext_decode(const char *s, size_t len, char *out,
	    size_t size, size_t *outlen, const char **why);

/*
 * pst_addr_xtext_encode()
 * Encodes 'len' bytes of 's' as xtext into 'out' of 'size' bytes, NUL
 * terminated, hex-encoding "+", "=", controls, space and non-ASCII.
 * Returns the encoded length, or -1 (with 'out' empty) when 'out' is too
 * small.  Three bytes per input byte always suffice.
 */
int	pst_addr_xtext_encode(const char *s, size_t len, char *out,
	    size_t size);

#endif /* PST_ADDR_H */
