/*
 * ehlo.c: EHLO reply -> capability mask.
 *
 * Each line after the first is split into a keyword and space-separated
 * parameters; only the first keyword on a line counts, and only the
 * parameters of SIZE and AUTH are read.  Everything is bounded by the
 * reply itself (struct pst_reply) and by the fixed fields of struct
 * pst_ehlo; nothing is allocated.  The parser does not judge the server:
 * a capability it does not know, or a malformed parameter, is ignored.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sasl/sasl.h"
#include "smtp/ehlo.h"
#include "smtp/reply.h"

static const struct {
	const char	*keyword;
	unsigned	 cap;
} ehlo_keywords[] = {
	{ "SIZE", PST_EHLO_SIZE },
	{ "PIPELINING", PST_EHLO_PIPELINING },
	{ "8BITMIME", PST_EHLO_8BITMIME },
	{ "SMTPUTF8", PST_EHLO_SMTPUTF8 },
	{ "DSN", PST_EHLO_DSN },
	{ "AUTH", PST_EHLO_AUTH },
	{ "STARTTLS", PST_EHLO_STARTTLS },
	{ "ENHANCEDSTATUSCODES", PST_EHLO_ENHANCEDSTATUSCODES },
	{ "CHUNKING", PST_EHLO_CHUNKING },
	{ "BINARYMIME", PST_EHLO_BINARYMIME },
	{ "REQUIRETLS", PST_EHLO_REQUIRETLS },
};

#define NELEMS(a)	(sizeof(a) / sizeof((a)[0]))

static void	ehlo_copy_printable(char *, size_t, const char *, size_t);
static uint64_t	ehlo_size_value(const char *, size_t);
static void	ehlo_auth(struct pst_ehlo *, const char *, size_t);
static bool	ehlo_listed(const char *, const char *, size_t);

/*
 * Copies up to 'len' bytes of 'src' into 'dst' of 'dstlen' bytes, cut to
 * fit, with anything outside printable ASCII replaced by '?'.
 */
static void
ehlo_copy_printable(char *dst, size_t dstlen, const char *src, size_t len)
{
	size_t i;

	if (len > dstlen - 1)
		len = dstlen - 1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[i] = (c > 0x20 && c < 0x7f) ? (char)c : '?';
	}
	dst[len] = '\0';
}

/*
 * RFC 1870 §4: "SIZE" [SP number]; 0 or no number means no fixed limit.
 * A value that is not a plain number, or does not fit in 64 bits, is
 * taken as no limit known.
 */
static uint64_t
ehlo_size_value(const char *p, size_t len)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 19)
		return 0;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return 0;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	return v;
}

/* True when the space-separated list 'list' holds 'name' already. */
static bool
ehlo_listed(const char *list, const char *name, size_t len)
{
	const char *p = list, *end;

	while (*p != '\0') {
		end = strchr(p, ' ');
		if (end == NULL)
			end = p + strlen(p);
		if ((size_t)(end - p) == len && strncasecmp(p, name, len) == 0)
			return true;
		p = *end == ' ' ? end + 1 : end;
	}
	return false;
}

/*
 * RFC 4954 §3: AUTH SP mechanism *(SP mechanism).  'p' points at the
 * parameters ('len' bytes).  Known mechanisms set their bit; every name
 * goes to the auth_offered list once, as long as it fits.
 */
static void
ehlo_auth(struct pst_ehlo *e, const char *p, size_t len)
{
	const struct pst_sasl_mech *mech;
	const char *end = p + len, *tok;
	size_t toklen, used;

	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		tok = p;
		while (p < end && *p != ' ' && *p != '\t')
			p++;
		toklen = (size_t)(p - tok);
		if (toklen == 0)
			break;
		if ((mech = pst_sasl_by_name(tok, toklen)) != NULL)
			e->auth |= mech->bit;
		if (ehlo_listed(e->auth_offered, tok, toklen))
			continue;
		used = strlen(e->auth_offered);
		if (used + (used > 0) + toklen >= sizeof(e->auth_offered))
			continue;
		if (used > 0)
			e->auth_offered[used++] = ' ';
		ehlo_copy_printable(e->auth_offered + used,
		    sizeof(e->auth_offered) - used, tok, toklen);
	}
}

int
pst_ehlo_parse(const struct pst_reply *r, struct pst_ehlo *e,
    struct pst_err *err)
{
	const char *line, *kw, *params;
	size_t i, k, len, kwlen, plen;

	memset(e, 0, sizeof(*e));
	if (r->code != 250 || r->nlines == 0)
		return pst_err_from_reply(err, PST_STAGE_EHLO, r);

	/* RFC 5321 §4.1.1.1: the first line is the server's name. */
	line = pst_reply_line(r, 0);
	len = strcspn(line, " ");
	ehlo_copy_printable(e->domain, sizeof(e->domain), line, len);

	for (i = 1; i < r->nlines; i++) {
		line = pst_reply_line(r, i);
		len = pst_reply_line_len(r, i);
		kw = line;
		kwlen = strcspn(kw, " =");
		params = kw + kwlen;
		plen = len - kwlen;
		/* The old form "AUTH=PLAIN LOGIN" of pre-RFC 2554 servers. */
		if (plen > 0 && *params == '=') {
			if (kwlen != 4 || strncasecmp(kw, "AUTH", 4) != 0)
				continue;
		}
		if (plen > 0) {
			params++;
			plen--;
		}
		for (k = 0; k < NELEMS(ehlo_keywords); k++) {
			if (strlen(ehlo_keywords[k].keyword) == kwlen &&
			    strncasecmp(kw, ehlo_keywords[k].keyword,
			    kwlen) == 0)
				break;
		}
		if (k == NELEMS(ehlo_keywords))
			continue;
		e->caps |= ehlo_keywords[k].cap;
		if (ehlo_keywords[k].cap == PST_EHLO_SIZE)
			e->size_max = ehlo_size_value(params,
			    strcspn(params, " "));
		else if (ehlo_keywords[k].cap == PST_EHLO_AUTH)
			ehlo_auth(e, params, plen);
	}
	return 0;
}

const char *
pst_ehlo_cap_name(unsigned cap)
{
	size_t k;

	for (k = 0; k < NELEMS(ehlo_keywords); k++) {
		if (ehlo_keywords[k].cap == cap)
			return ehlo_keywords[k].keyword;
	}
	return NULL;
}

char *
pst_ehlo_caps_format(unsigned caps, char *buf, size_t len)
{
	size_t k, off = 0;
	bool any = false;
	int n;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	for (k = 0; k < NELEMS(ehlo_keywords); k++) {
		if ((caps & ehlo_keywords[k].cap) == 0)
			continue;
		any = true;
		n = snprintf(buf + off, len - off, "%s%s", off > 0 ? " " : "",
		    ehlo_keywords[k].keyword);
		if (n < 0 || (size_t)n >= len - off) {
			buf[off] = '\0';
			break;
		}
		off += (size_t)n;
	}
	if (!any)
		snprintf(buf, len, "none");
	return buf;
}
