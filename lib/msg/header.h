/*
 * header.h: an index of a message's header section (RFC 5322 §2.2, §3.6).
 *
 * The caller reads lines (without their line ends) and offers each one
 * while the header section lasts.  A line is one of:
 *   - a field: "Name:" or the obsolete "Name :" (RFC 5322 §3.6.8, §4.5):
 *     a name of printable US-ASCII other than ":", white space, a colon;
 *   - a continuation of the last field: it starts with white space (RFC
 *     5322 §2.2.3), and there is a field before it;
 *   - anything else: not a header line.  The caller decides what that
 *     means (the body begins); the index does not change.
 * The empty line that ends the section is the caller's to see.
 *
 * The index keeps the section in one buffer, each physical line ending in
 * CRLF, and one entry per field: where it starts, how long it is with its
 * continuations, how long its name is, and what kind of field it is.
 * Names compare without regard to case.  Duplicate fields stay, in order.
 * Memory is bounded by the caller's 'max'.
 */
#ifndef PST_MSG_HEADER_H
#define PST_MSG_HEADER_H

#include <stdbool.h>
#include <stddef.h>

/* The fields the index tells apart; every other one is PST_HDR_OTHER. */
enum pst_hdr_kind {
	PST_HDR_OTHER = 0,
	PST_HDR_FROM,
	PST_HDR_DATE,
	PST_HDR_MSGID,
	PST_HDR_RECEIVED,
	PST_HDR_TO,
	PST_HDR_CC,
	PST_HDR_BCC,
	PST_HDR_RESENT_TO,
	PST_HDR_RESENT_CC,
	PST_HDR_RESENT_BCC,
	PST_HDR_ADDRESSES,	/* Sender, Reply-To, Resent-From, -Sender */
};

/* One field: its physical lines, each with CRLF, in the buffer. */
struct pst_hdr_field {
	size_t			 off;
	size_t			 len;
	size_t			 name_len;	/* before any WSP and the colon */
	enum pst_hdr_kind	 kind;
};

/* Read 'buf', 'len', 'fields' and 'nfields'; leave the rest. */
struct pst_hdr {
	size_t			 max;		/* bound on 'len' */
	char			*buf;
	size_t			 len;
	size_t			 cap;
	struct pst_hdr_field	*fields;
	size_t			 nfields;
	size_t			 fields_cap;
};

/* pst_hdr_add() results */
enum pst_hdr_add {
	PST_HDR_ADD_FIELD = 0,	/* a new field */
	PST_HDR_ADD_CONT,	/* a continuation of the last field */
	PST_HDR_ADD_NOT,	/* not a header line: nothing was added */
	PST_HDR_ADD_FULL,	/* the section would pass 'max' */
	PST_HDR_ADD_NOMEM,	/* memory is short */
};

/*
 * pst_hdr_init()
 * An empty index holding at most 'max' octets (CRLFs included).
 */
void	pst_hdr_init(struct pst_hdr *h, size_t max);

/*
 * pst_hdr_clear()
 * Frees what 'h' holds and leaves it empty, with the same 'max'.
 */
void	pst_hdr_clear(struct pst_hdr *h);

/*
 * pst_hdr_add()
 * Offers one line ('len' bytes, no line end).  After FULL or NOMEM the
 * index may hold part of the line: give up on it.
 */
enum pst_hdr_add pst_hdr_add(struct pst_hdr *h, const char *line,
	    size_t len);

/*
 * pst_hdr_name_len()
 * The length of the field name at the start of 'line' when it is a field
 * ("Name:" or "Name :"), else 0.  '*colon' is set to the offset of the
 * colon.
 */
size_t	pst_hdr_name_len(const char *line, size_t len, size_t *colon);

/*
 * pst_hdr_kind()
 * The kind of a field named 'name' ('len' bytes), in any case.
 */
enum pst_hdr_kind pst_hdr_kind(const char *name, size_t len);

/*
 * pst_hdr_has()
 * Whether the section holds a field of kind 'kind'.
 */
bool	pst_hdr_has(const struct pst_hdr *h, enum pst_hdr_kind kind);

/*
 * pst_hdr_unfold()
 * The value of field 'f' (after its colon) unfolded (RFC 5322 §2.2.3:
 * the CRLFs go, the white space after them stays) into 'out', which must
 * hold f->len bytes; nothing is added at the end.  Returns the length.
 */
size_t	pst_hdr_unfold(const struct pst_hdr *h, const struct pst_hdr_field *f,
	    char *out);

#endif /* PST_MSG_HEADER_H */
