/*
 * addrlist.c: the RFC 5322 §3.4 address list scanner (addrlist.h).
 *
 * One pass over an element collects two candidates at once: the bytes
 * outside angle brackets ("plain") and the bytes inside them ("angle").
 * An element with an <angle address> is that address; one without is its
 * plain bytes, provided they are one word: white space or a comment
 * between two words (not around "." or "@") means a display name without
 * an address.
 */
#include <string.h>

#include "msg/addrlist.h"

#define IS_WSP(c)	((c) == ' ' || (c) == '\t')

void
pst_addrlist_init(struct pst_addrlist *ls, const char *text, size_t len)
{
	memset(ls, 0, sizeof(*ls));
	ls->p = text;
	ls->end = text + len;
}

/*
 * Comments and white space go, a display name gives way to the <angle
 * address>, a source route is dropped (RFC 5322 §4.4 obs-route), "name:
 * ...;" groups give their members.
 */
int
pst_addrlist_next(struct pst_addrlist *ls)
{
	char plain[PST_ADDRLIST_ADDR_MAX + 1], angle[PST_ADDRLIST_ADDR_MAX + 1];
	size_t plen = 0, alen = 0, depth;
	bool in_angle = false, has_angle = false, gap = false;
	bool apart = false;
	const char *start, *q, *r, *plain_end = NULL, *angle_end = NULL;
	char *dst;
	size_t *dlen;
	int c;

	while (ls->p < ls->end && (IS_WSP(*ls->p) || *ls->p == '\r' ||
	    *ls->p == '\n'))
		ls->p++;
	if (ls->p >= ls->end)
		return 0;
	/* NOLINTNEXTLINE(clang-analyzer-deadcode.DeadStores) */
	ls->elem = start = ls->p;
	while (ls->p < ls->end) {
		c = (unsigned char)*ls->p;
		dst = in_angle ? angle : plain;
		dlen = in_angle ? &alen : &plen;
		if (c == '"' || c == '[') {
			/* A quoted string or a domain literal, kept whole. */
			q = ls->p + 1;
			while (q < ls->end && *q != (c == '"' ? '"' : ']')) {
				if (*q == '\\' && q + 1 < ls->end)
					q++;
				q++;
			}
			if (q >= ls->end) {
				ls->why = c == '"' ? "unterminated quoted "
				    "string" : "unterminated domain literal";
				goto bad;
			}
			q++;
			if (!in_angle && gap && plen > 0 &&
			    plain[plen - 1] != '.' && plain[plen - 1] != '@')
				apart = true;
			gap = false;
			for (r = ls->p; r < q; r++) {
				if (*r == '\r' || *r == '\n')
					continue;
				if (*dlen >= PST_ADDRLIST_ADDR_MAX) {
					ls->why = "address too long";
					goto bad;
				}
				dst[(*dlen)++] = *r;
			}
			ls->p = q;
			if (!in_angle)
				plain_end = q;
			continue;
		}
		if (c == '(') {
			depth = 0;
			q = ls->p;
			do {
				if (*q == '\\' && q + 1 < ls->end)
					q++;
				else if (*q == '(')
					depth++;
				else if (*q == ')')
					depth--;
				q++;
			} while (depth > 0 && q < ls->end);
			if (depth > 0) {
				ls->why = "unterminated comment";
				goto bad;
			}
			ls->p = q;
			gap = true;
			continue;
		}
		if (c == '<') {
			if (in_angle || has_angle) {
				ls->why = "more than one <address>";
				goto bad;
			}
			in_angle = has_angle = true;
			ls->p++;
			continue;
		}
		if (c == '>') {
			if (!in_angle) {
				ls->why = "\">\" without \"<\"";
				goto bad;
			}
			in_angle = false;
			angle_end = ls->p;
			ls->p++;
			continue;
		}
		if (IS_WSP(c) || c == '\r' || c == '\n') {
			gap = true;
			ls->p++;
			continue;
		}
		if (in_angle) {
			/* Source route commas and colons live here. */
			if (alen >= PST_ADDRLIST_ADDR_MAX) {
				ls->why = "address too long";
				goto bad;
			}
			angle[alen++] = (char)c;
			ls->p++;
			continue;
		}
		if (c == ',') {
			ls->p++;
			break;
		}
		if (c == ';') {
			ls->p++;
			ls->in_group = false;
			break;
		}
		if (c == ':') {
			/* RFC 5322 §3.4 group: the display name goes. */
			if (ls->in_group) {
				ls->why = "a group inside a group";
				goto bad;
			}
			ls->in_group = true;
			ls->p++;
			/* NOLINTNEXTLINE(clang-analyzer-deadcode.DeadStores) */
			ls->elem = start = ls->p;
			plen = alen = 0;
			has_angle = gap = apart = false;
			plain_end = NULL;
			continue;
		}
		if (gap && plen > 0 && c != '.' && c != '@' &&
		    plain[plen - 1] != '.' && plain[plen - 1] != '@')
			apart = true;
		gap = false;
		if (plen >= PST_ADDRLIST_ADDR_MAX) {
			ls->why = "address too long";
			goto bad;
		}
		plain[plen++] = (char)c;
		plain_end = ++ls->p;
	}
	while (ls->elem < ls->p && strchr(" \t\r\n", *ls->elem) != NULL)
		ls->elem++;
	ls->elem_len = (size_t)(ls->p - ls->elem);
	while (ls->elem_len > 0 && strchr(" \t\r\n,;",
	    ls->elem[ls->elem_len - 1]) != NULL)
		ls->elem_len--;
	if (in_angle) {
		ls->why = "\"<\" without \">\"";
		return -1;
	}
	if (has_angle) {
		q = angle;
		/* "<@a.example,@b.example:user@c.example>" */
		if (alen > 0 && angle[0] == '@' &&
		    (r = memchr(angle, ':', alen)) != NULL) {
			alen -= (size_t)(r + 1 - angle);
			q = r + 1;
		}
		if (alen == 0) {
			ls->why = "empty <>";
			return -1;
		}
		memcpy(ls->addr, q, alen);
		ls->alen = alen;
		ls->insert_at = angle_end;
	} else {
		if (apart) {
			ls->why = "words without an <address>";
			return -1;
		}
		memcpy(ls->addr, plain, plen);
		ls->alen = plen;
		ls->insert_at = plain_end;
	}
	ls->addr[ls->alen] = '\0';
	return 1;
bad:
	while (ls->elem < ls->end && strchr(" \t\r\n", *ls->elem) != NULL)
		ls->elem++;
	ls->elem_len = (size_t)(ls->end - ls->elem);
	return -1;
}
