/*
 * addr.c: RFC 5321 path and mailbox parser, xtext.
 *
 * A recursive-descent parser over a cursor (bytes, length, position) that
 * follows the ABNF of RFC 5321 §4.1.2 production by production, with the
 * RFC 6531 additions (UTF8-non-ascii in atext, qtextSMTP and sub-domain)
 * behind a flag.  It never reads past the length it was given and never
 * needs a NUL terminator; the lengths of the local part, the domain and
 * the whole path are checked against RFC 5321 §4.5.3.1 before anything is
 * copied out.
 *
 * It checks syntax only: whether a domain exists, or a mailbox is
 * deliverable, is none of its business.  Strings are copied out as
 * written (no case folding, no unquoting).
 */
#include <arpa/inet.h>

#include <string.h>
#include <strings.h>

#include "common/codec.h"
#include "smtp/addr.h"

#define LABEL_MAX	63	/* RFC 1035 §2.3.4 */
#define LITERAL_MAX	64	/* "[IPv6:" + 45 + "]" fits */

struct cursor {
	const unsigned char	*p;
	size_t			 len;
	size_t			 pos;
	unsigned		 flags;
	bool			 utf8;	/* a non-ASCII byte was taken */
	const char		*why;
};

static int	 cur_peek(const struct cursor *);
static int	 cur_fail(struct cursor *, const char *);
static int	 take_utf8(struct cursor *);
static int	 is_atext(int);
static int	 parse_dot_string(struct cursor *);
static int	 parse_quoted(struct cursor *);
static int	 parse_domain_name(struct cursor *);
static int	 parse_literal(struct cursor *);
static int	 parse_domain(struct cursor *, bool *);
static int	 parse_mailbox(struct cursor *, struct pst_addr *);
static void	 addr_fill(struct pst_addr *, const unsigned char *, size_t,
		    const unsigned char *, size_t);

static int
cur_peek(const struct cursor *c)
{
	return c->pos < c->len ? c->p[c->pos] : -1;
}

static int
cur_fail(struct cursor *c, const char *why)
{
	if (c->why == NULL)
		c->why = why;
	return -1;
}

bool
pst_addr_utf8_valid(const char *s, size_t len)
{
	return pst_utf8_valid(s, len);
}

/*
 * Takes one UTF8-non-ascii character (RFC 6531 §3.3) at the cursor.
 */
static int
take_utf8(struct cursor *c)
{
	size_t n;

	if (!(c->flags & PST_ADDR_F_UTF8))
		return cur_fail(c, "non-ASCII character without SMTPUTF8");
	if ((n = pst_utf8_seq(c->p + c->pos, c->len - c->pos)) == 0)
		return cur_fail(c, "invalid UTF-8");
	c->pos += n;
	c->utf8 = true;
	return 0;
}

/* RFC 5322 §3.2.3 atext. */
static int
is_atext(int ch)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9'))
		return 1;
	return ch > 0 && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL;
}

/* Dot-string = Atom *("."  Atom) */
static int
parse_dot_string(struct cursor *c)
{
	int ch;

	bool first = true;

	for (;;) {
		size_t start = c->pos;

		while ((ch = cur_peek(c)) != -1) {
			if (ch >= 0x80) {
				if (take_utf8(c) == -1)
					return -1;
			} else if (is_atext(ch))
				c->pos++;
			else
				break;
		}
		if (c->pos == start)
			return cur_fail(c, ch == '.' || !first ?
			    "empty atom in local part" :
			    "bad character in local part");
		if (ch != '.')
			return 0;
		c->pos++;
		first = false;
	}
}

/* Quoted-string = DQUOTE *QcontentSMTP DQUOTE */
static int
parse_quoted(struct cursor *c)
{
	int ch;

	c->pos++;
	while ((ch = cur_peek(c)) != -1) {
		if (ch == '"') {
			c->pos++;
			return 0;
		}
		if (ch == '\\') {
			/* quoted-pairSMTP = %d92 %d32-126 */
			c->pos++;
			ch = cur_peek(c);
			if (ch < 32 || ch > 126)
				return cur_fail(c, "bad quoted pair");
			c->pos++;
		} else if (ch >= 0x80) {
			if (take_utf8(c) == -1)
				return -1;
		} else if (ch >= 32 && ch <= 126)
			c->pos++;	/* qtextSMTP, space included */
		else
			return cur_fail(c, "control character in quoted "
			    "local part");
	}
	return cur_fail(c, "unterminated quoted local part");
}

/*
 * Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str]
 * or, with SMTPUTF8, a U-label.
 */
static int
parse_domain_name(struct cursor *c)
{
	size_t start = c->pos, lstart;
	bool wide;
	int ch;

	for (;;) {
		lstart = c->pos;
		wide = false;
		while ((ch = cur_peek(c)) != -1) {
			if (ch >= 0x80) {
				if (take_utf8(c) == -1)
					return -1;
				wide = true;
			} else if ((ch >= 'a' && ch <= 'z') ||
			    (ch >= 'A' && ch <= 'Z') ||
			    (ch >= '0' && ch <= '9') || ch == '-')
				c->pos++;
			else
				break;
		}
		if (c->pos == lstart)
			return cur_fail(c, lstart == start && ch != '.' ?
			    "bad character in domain" : "empty domain label");
		if (c->p[lstart] == '-' || c->p[c->pos - 1] == '-')
			return cur_fail(c, "domain label starts or ends "
			    "with a hyphen");
		if (!wide && c->pos - lstart > LABEL_MAX)
			return cur_fail(c, "domain label too long");
		if (c->pos - start > PST_ADDR_DOMAIN_MAX)
			return cur_fail(c, "domain too long");
		if (ch != '.')
			return 0;
		c->pos++;
	}
}

/*
 * address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
 * General-address-literal ) "]"; the last is refused.
 */
static int
parse_literal(struct cursor *c)
{
	char buf[LITERAL_MAX];
	const unsigned char *p;
	unsigned char a6[16];
	size_t n = 0, i, start = c->pos + 1;
	unsigned val = 0, digits = 0, dots = 0;

	while (start + n < c->len && c->p[start + n] != ']') {
		if (++n >= sizeof(buf))
			return cur_fail(c, "address literal too long");
	}
	if (start + n >= c->len)
		return cur_fail(c, "unterminated address literal");
	p = c->p + start;
	if (memchr(p, '\0', n) != NULL)
		return cur_fail(c, "bad character in address literal");
	if (n >= 5 && strncasecmp((const char *)p, "IPv6:", 5) == 0) {
		memcpy(buf, p + 5, n - 5);
		buf[n - 5] = '\0';
		if (inet_pton(AF_INET6, buf, a6) != 1)
			return cur_fail(c, "bad IPv6 address literal");
	} else {
		/* IPv4-address-literal = Snum 3("."  Snum) */
		for (i = 0; i <= n; i++) {
			if (i < n && p[i] >= '0' && p[i] <= '9') {
				val = val * 10 + (p[i] - '0');
				if (++digits > 3 || val > 255)
					return cur_fail(c, "bad IPv4 address "
					    "literal");
				continue;
			}
			if (digits == 0 || (i < n && (p[i] != '.' ||
			    ++dots > 3)))
				return cur_fail(c, memchr(p, ':', n) != NULL ?
				    "unsupported address literal" :
				    "bad IPv4 address literal");
			val = 0;
			digits = 0;
		}
		if (dots != 3)
			return cur_fail(c, "bad IPv4 address literal");
	}
	c->pos = start + n + 1;
	return 0;
}

static int
parse_domain(struct cursor *c, bool *literal)
{
	*literal = cur_peek(c) == '[';
	if (*literal)
		return parse_literal(c);
	return parse_domain_name(c);
}

/* Mailbox = Local-part "@" ( Domain / address-literal ) */
static int
parse_mailbox(struct cursor *c, struct pst_addr *addr)
{
	size_t lstart = c->pos, llen, dstart;
	int rc;

	addr->quoted = cur_peek(c) == '"';
	rc = addr->quoted ? parse_quoted(c) : parse_dot_string(c);
	if (rc == -1)
		return -1;
	llen = c->pos - lstart;
	if (llen > PST_ADDR_LOCAL_MAX)
		return cur_fail(c, "local part too long");
	if (cur_peek(c) != '@') {
		/* RFC 5321 §4.1.1.3: "<Postmaster>" needs no domain. */
		if ((c->flags & PST_ADDR_F_POSTMASTER) && !addr->quoted &&
		    llen == 10 && strncasecmp((const char *)c->p + lstart,
		    "postmaster", 10) == 0) {
			addr->postmaster = true;
			addr_fill(addr, c->p + lstart, llen, NULL, 0);
			return 0;
		}
		if ((c->flags & PST_ADDR_F_LOCAL) && !addr->quoted &&
		    (cur_peek(c) == -1 || cur_peek(c) == '>')) {
			addr->bare = true;
			addr_fill(addr, c->p + lstart, llen, NULL, 0);
			return 0;
		}
		return cur_fail(c, cur_peek(c) == -1 || cur_peek(c) == '>' ?
		    "missing domain" : "bad character in local part");
	}
	c->pos++;
	dstart = c->pos;
	if (parse_domain(c, &addr->literal) == -1)
		return -1;
	if (c->pos - dstart > PST_ADDR_DOMAIN_MAX)
		return cur_fail(c, "domain too long");
	if (llen + 1 + (c->pos - dstart) > PST_ADDR_MAILBOX_MAX)
		return cur_fail(c, "path too long");
	addr_fill(addr, c->p + lstart, llen, c->p + dstart, c->pos - dstart);
	return 0;
}

static void
addr_fill(struct pst_addr *addr, const unsigned char *local, size_t llen,
    const unsigned char *domain, size_t dlen)
{
	memcpy(addr->local, local, llen);
	addr->local[llen] = '\0';
	memcpy(addr->mailbox, local, llen);
	if (domain != NULL) {
		memcpy(addr->domain, domain, dlen);
		addr->domain[dlen] = '\0';
		addr->mailbox[llen] = '@';
		memcpy(addr->mailbox + llen + 1, domain, dlen);
		addr->mailbox[llen + 1 + dlen] = '\0';
	} else
		addr->mailbox[llen] = '\0';
}

int
pst_addr_parse_path(const char *s, size_t len, unsigned flags,
    struct pst_addr *addr, size_t *used, const char **why)
{
	struct cursor c = { (const unsigned char *)s, len, 0, flags, false,
	    NULL };
	bool literal;

	memset(addr, 0, sizeof(*addr));
	*used = 0;
	if (cur_peek(&c) != '<') {
		*why = "address must be in angle brackets";
		return -1;
	}
	c.pos++;
	if (cur_peek(&c) == '>') {
		if (!(flags & PST_ADDR_F_NULL)) {
			*why = "null address not allowed here";
			return -1;
		}
		addr->null = true;
		*used = 2;
		return 0;
	}
	if (cur_peek(&c) == '@') {
		/* A-d-l = At-domain *( "," At-domain ); RFC 5321 App. C. */
		for (;;) {
			if (cur_peek(&c) != '@') {
				*why = "bad source route";
				return -1;
			}
			c.pos++;
			if (parse_domain(&c, &literal) == -1 || literal) {
				*why = c.why != NULL ? c.why :
				    "bad source route";
				return -1;
			}
			if (cur_peek(&c) == ':')
				break;
			if (cur_peek(&c) != ',') {
				*why = "bad source route";
				return -1;
			}
			c.pos++;
		}
		c.pos++;
		addr->routed = true;
	}
	if (parse_mailbox(&c, addr) == -1) {
		*why = c.why;
		return -1;
	}
	if (cur_peek(&c) != '>') {
		*why = cur_peek(&c) == -1 ? "missing closing angle bracket" :
		    "bad character in address";
		return -1;
	}
	c.pos++;
	if (c.pos > PST_ADDR_PATH_MAX) {
		*why = "path too long";
		return -1;
	}
	addr->utf8 = c.utf8;
	*used = c.pos;
	return 0;
}

int
pst_addr_parse_mailbox(const char *s, size_t len, unsigned flags,
    struct pst_addr *addr, const char **why)
{
	struct cursor c = { (const unsigned char *)s, len, 0, flags, false,
	    NULL };

	memset(addr, 0, sizeof(*addr));
	if (len == 0) {
		if (!(flags & PST_ADDR_F_NULL)) {
			*why = "empty address";
			return -1;
		}
		addr->null = true;
		return 0;
	}
	if (parse_mailbox(&c, addr) == -1) {
		*why = c.why;
		return -1;
	}
	if (c.pos != len) {
		*why = "bad character in address";
		return -1;
	}
	addr->utf8 = c.utf8;
	return 0;
}

bool
pst_addr_domain_valid(const char *s, size_t len, unsigned flags)
{
	struct cursor c = { (const unsigned char *)s, len, 0, flags, false,
	    NULL };
	bool literal;

	if (len == 0 || len > PST_ADDR_DOMAIN_MAX)
		return false;
	return parse_domain(&c, &literal) == 0 && c.pos == len;
}

int
pst_addr_xtext_decode(const char *s, size_t len, char *out, size_t size,
    size_t *outlen, const char **why)
{
	size_t i, n = 0;
	unsigned char ch;
	int hi, lo;

	*outlen = 0;
	if (size > 0)
		out[0] = '\0';
	for (i = 0; i < len; i++) {
		ch = (unsigned char)s[i];
		if (ch == '+') {
			/* hexchar = "+" 2(%x30-39 / %x41-46) */
			if (len - i < 3) {
				*why = "truncated hex escape in xtext";
				return -1;
			}
			hi = pst_hex_value((unsigned char)s[i + 1],
			    PST_HEX_UPPER);
			lo = pst_hex_value((unsigned char)s[i + 2],
			    PST_HEX_UPPER);
			if (hi == -1 || lo == -1) {
				*why = "bad hex escape in xtext";
				return -1;
			}
			ch = (unsigned char)(hi << 4 | lo);
			i += 2;
		} else if (ch < 33 || ch > 126 || ch == '=') {
			*why = "bad character in xtext";
			return -1;
		}
		if (ch < 32 || ch > 126) {
			*why = "xtext decodes to a non-printable character";
			return -1;
		}
		if (n + 1 >= size) {
			*why = "xtext too long";
			return -1;
		}
		out[n++] = (char)ch;
	}
	if (size == 0) {
		*why = "xtext too long";
		return -1;
	}
	out[n] = '\0';
	*outlen = n;
	return 0;
}

int
pst_addr_xtext_encode(const char *s, size_t len, char *out, size_t size)
{
	size_t i, n = 0;
	unsigned char ch;

	for (i = 0; i < len; i++) {
		ch = (unsigned char)s[i];
		if (ch >= 33 && ch <= 126 && ch != '+' && ch != '=') {
			if (n + 1 >= size)
				goto toosmall;
			out[n++] = (char)ch;
		} else {
			if (n + 3 >= size)
				goto toosmall;
			out[n++] = '+';
			out[n++] = pst_hex_digit(ch >> 4, true);
			out[n++] = pst_hex_digit(ch, true);
		}
	}
	if (size == 0)
		return -1;
	out[n] = '\0';
	return (int)n;
toosmall:
	if (size > 0)
		out[0] = '\0';
	return -1;
}
