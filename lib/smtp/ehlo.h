/*
 * ehlo.h: what a server says it can do, from its 250 reply to EHLO.
 *
 * RFC 5321 §4.1.1.1: the first line carries the server's name, every
 * further line one keyword and its parameters.  Keywords are matched
 * case-insensitively; unknown ones are ignored.  AUTH (RFC 4954) is also
 * read in its old "AUTH=" spelling, which some servers still send next
 * to, or instead of, the standard one; the mechanisms of all AUTH lines
 * are merged.
 */
#ifndef PST_EHLO_H
#define PST_EHLO_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct pst_reply;

/* Capability bits. */
enum pst_ehlo_cap {
	PST_EHLO_SIZE = 1u << 0,		/* RFC 1870 */
	PST_EHLO_PIPELINING = 1u << 1,		/* RFC 2920 */
	PST_EHLO_8BITMIME = 1u << 2,		/* RFC 6152 */
	PST_EHLO_SMTPUTF8 = 1u << 3,		/* RFC 6531 */
	PST_EHLO_DSN = 1u << 4,			/* RFC 3461 */
	PST_EHLO_AUTH = 1u << 5,		/* RFC 4954 */
	PST_EHLO_STARTTLS = 1u << 6,		/* RFC 3207 */
	PST_EHLO_ENHANCEDSTATUSCODES = 1u << 7,	/* RFC 2034 */
	PST_EHLO_CHUNKING = 1u << 8,		/* RFC 3030 */
	PST_EHLO_BINARYMIME = 1u << 9,		/* RFC 3030 */
	PST_EHLO_REQUIRETLS = 1u << 10,		/* RFC 8689 */
};

#define PST_EHLO_DOMAIN_MAX	255
#define PST_EHLO_AUTH_LIST_MAX	255

struct pst_ehlo {
	unsigned	 caps;		/* PST_EHLO_* */
	uint64_t	 size_max;	/* SIZE value, 0: no limit given */
	unsigned	 auth;		/* offered and known: PST_SASL_* */
	/*
	 * The AUTH mechanisms as offered, known or not, space separated,
	 * printable ASCII, cut to fit: for "postern probe".
	 */
	char		 auth_offered[PST_EHLO_AUTH_LIST_MAX + 1];
	/* The server's name from the first line, printable ASCII. */
	char		 domain[PST_EHLO_DOMAIN_MAX + 1];
};

/*
 * pst_ehlo_parse()
 * Fills 'e' from the complete reply 'r' to EHLO.  A SIZE without a value,
 * with 0 or with a value that is not a number sets PST_EHLO_SIZE and
 * leaves size_max 0.  Returns 0, or -1 when 'r' is not a 250: then 'err'
 * is filled from the reply (pst_err_from_reply(), stage EHLO) and 'e' is
 * empty; the caller may try HELO.
 */
int	pst_ehlo_parse(const struct pst_reply *r, struct pst_ehlo *e,
	    struct pst_err *err);

/*
 * pst_ehlo_cap_name()
 * The keyword of one capability bit ("PIPELINING"), or NULL.
 */
const char *pst_ehlo_cap_name(unsigned cap);

/*
 * pst_ehlo_caps_format()
 * The keywords of the bits in 'caps', separated by spaces, or "none",
 * into 'buf' (cut to fit, always NUL terminated).  Returns 'buf'.
 */
char	*pst_ehlo_caps_format(unsigned caps, char *buf, size_t len);

#endif /* PST_EHLO_H */
