/*
 * addrlist.h: RFC 5322 §3.4 address lists, one address at a time.
 *
 * The scanner walks a field value (unfolded or not: CR and LF count as
 * white space) and hands out the address of each element, as a program
 * writes them in To:, Cc: and Bcc: or on a sendmail command line:
 *   - comments ("(...)", nested, with quoted pairs) and white space go;
 *   - a display name gives way to the <angle address> after it;
 *   - an obsolete source route is dropped (RFC 5322 §4.4 obs-route):
 *     "<@a.example,@b.example:user@c.example>" gives "user@c.example";
 *   - "name: a, b;" groups give their members, and "name:;" nothing; a
 *     group inside a group is refused;
 *   - quoted strings and domain literals are kept whole, quotes and
 *     brackets included ("\"a b\"@example.org");
 *   - an empty element (", ,", RFC 5322 §4.4 obs-addr-list) is handed
 *     out as an empty address, so that the caller decides about it;
 *   - a bare word ("root") is an address without a domain.
 * It does not check the address itself: smtp/addr.h does.  Words that
 * are neither an address nor followed by one ("John Smith") are refused.
 *
 * Nothing is allocated; the scanner points into the caller's text, which
 * must outlive it.
 */
#ifndef PST_MSG_ADDRLIST_H
#define PST_MSG_ADDRLIST_H

#include <stdbool.h>
#include <stddef.h>

#include "smtp/addr.h"

/* Longest address taken out of a list, before it is checked. */
#define PST_ADDRLIST_ADDR_MAX	(PST_ADDR_PATH_MAX + 64)

/*
 * Scanner state.  After pst_addrlist_next() returned 1, read 'addr',
 * 'alen', 'elem', 'elem_len' and 'insert_at'; after -1, 'why', 'elem' and
 * 'elem_len'.  Leave the rest to the scanner.
 */
struct pst_addrlist {
	const char	*p;		/* next byte to read */
	const char	*end;
	bool		 in_group;
	const char	*elem;		/* the element as written, for messages */
	size_t		 elem_len;
	char		 addr[PST_ADDRLIST_ADDR_MAX + 1];	/* NUL ended */
	size_t		 alen;
	const char	*insert_at;	/* where "@domain" would go */
	const char	*why;		/* the syntax error */
};

/*
 * pst_addrlist_init()
 * Prepares 'ls' to scan 'len' bytes of 'text'.
 */
void	pst_addrlist_init(struct pst_addrlist *ls, const char *text,
	    size_t len);

/*
 * pst_addrlist_next()
 * The next address: 1 with it in 'addr' ('alen' bytes; empty for an
 * empty element such as ",,"), 0 at the end of the list, -1 on a syntax
 * error ('why' says which; the element is then everything up to the end
 * of the text).  'elem' is the element without the white space around it
 * and without its trailing "," or ";".  'insert_at' points into the text
 * just after the address (before the ">" of an angle address), where a
 * domain would be appended to a bare name.  After -1 the scan is over.
 */
int	pst_addrlist_next(struct pst_addrlist *ls);

#endif /* PST_MSG_ADDRLIST_H */
