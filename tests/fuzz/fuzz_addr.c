/*
 * fuzz_addr.c: paths, mailboxes, domains and xtext (smtp/addr.h).
 *
 * The first byte picks the parser (bits 3-4) and its PST_ADDR_F_* flags
 * (bits 0-2); the rest is its input.  Checked: what a parser accepts, the
 * others accept in the forms they take (a path's mailbox as a mailbox, a
 * mailbox in angle brackets as a path, a valid domain after "x@"); UTF-8
 * only comes through with PST_ADDR_F_UTF8; xtext decodes what it encodes,
 * and decoded xtext encodes and decodes to itself.
 */
#include <string.h>

#include "smtp/addr.h"
#include "fuzz.h"

static void	addr_check(const struct pst_addr *a, unsigned flags);
static void	addr_path(const char *s, size_t len, unsigned flags);
static void	addr_mailbox(const char *s, size_t len, unsigned flags);
static void	addr_domain(const char *s, size_t len, unsigned flags);
static void	addr_xtext(const char *s, size_t len);

static void
addr_check(const struct pst_addr *a, unsigned flags)
{
	struct pst_addr again;
	const char *why;

	FUZZ_CHECK(memchr(a->local, '\0', sizeof(a->local)) != NULL);
	FUZZ_CHECK(memchr(a->domain, '\0', sizeof(a->domain)) != NULL);
	FUZZ_CHECK(memchr(a->mailbox, '\0', sizeof(a->mailbox)) != NULL);
	if (!(flags & PST_ADDR_F_UTF8))
		FUZZ_CHECK(!a->utf8);
	if (a->null) {
		FUZZ_CHECK(flags & PST_ADDR_F_NULL);
		FUZZ_CHECK(a->mailbox[0] == '\0');
		return;
	}
	if (a->postmaster) {
		FUZZ_CHECK(flags & PST_ADDR_F_POSTMASTER);
		return;
	}
	FUZZ_CHECK(strlen(a->local) <= PST_ADDR_LOCAL_MAX);
	FUZZ_CHECK(a->local[0] != '\0' && a->domain[0] != '\0');
	FUZZ_CHECK(pst_addr_parse_mailbox(a->mailbox, strlen(a->mailbox),
	    flags, &again, &why) == 0);
	FUZZ_CHECK(strcmp(again.local, a->local) == 0);
	FUZZ_CHECK(strcmp(again.domain, a->domain) == 0);
	FUZZ_CHECK(again.quoted == a->quoted && again.literal == a->literal);
}

static void
addr_path(const char *s, size_t len, unsigned flags)
{
	struct pst_addr a;
	const char *why = NULL;
	size_t used = (size_t)-1;

	if (pst_addr_parse_path(s, len, flags, &a, &used, &why) == -1) {
		FUZZ_CHECK(why != NULL && why[0] != '\0');
		return;
	}
	FUZZ_CHECK(used >= 2 && used <= len && used <= PST_ADDR_PATH_MAX);
	FUZZ_CHECK(s[0] == '<' && s[used - 1] == '>');
	addr_check(&a, flags);
}

static void
addr_mailbox(const char *s, size_t len, unsigned flags)
{
	struct pst_addr a, b;
	const char *why = NULL;
	char path[PST_ADDR_PATH_MAX + 1];
	size_t used;

	if (pst_addr_parse_mailbox(s, len, flags, &a, &why) == -1) {
		FUZZ_CHECK(why != NULL && why[0] != '\0');
		return;
	}
	addr_check(&a, flags);
	if (a.null || a.postmaster)
		return;
	FUZZ_CHECK(strlen(a.mailbox) == len && memcmp(a.mailbox, s, len) ==
	    0);
	/* The same mailbox in a path. */
	path[0] = '<';
	memcpy(path + 1, s, len);
	path[len + 1] = '>';
	FUZZ_CHECK(pst_addr_parse_path(path, len + 2, flags, &b, &used,
	    &why) == 0);
	FUZZ_CHECK(used == len + 2);
	FUZZ_CHECK(strcmp(a.mailbox, b.mailbox) == 0);
}

static void
addr_domain(const char *s, size_t len, unsigned flags)
{
	struct pst_addr a;
	char mbox[PST_ADDR_MAILBOX_MAX + 1];
	const char *why;

	if (!pst_addr_domain_valid(s, len, flags))
		return;
	FUZZ_CHECK(len > 0 && len <= PST_ADDR_DOMAIN_MAX);
	FUZZ_CHECK(memchr(s, '\0', len) == NULL);
	if (len + 2 > PST_ADDR_MAILBOX_MAX)
		return;
	mbox[0] = 'x';
	mbox[1] = '@';
	memcpy(mbox + 2, s, len);
	FUZZ_CHECK(pst_addr_parse_mailbox(mbox, len + 2, flags, &a, &why) ==
	    0);
}

static void
addr_xtext(const char *s, size_t len)
{
	char dec[1024], enc[3 * 1024 + 1], dec2[1024];
	const char *why;
	size_t dlen, dlen2, i;
	int elen;
	bool printable = true;

	if (pst_addr_xtext_decode(s, len, dec, sizeof(dec), &dlen, &why) ==
	    0) {
		FUZZ_CHECK(dlen < sizeof(dec) && dec[dlen] == '\0');
		elen = pst_addr_xtext_encode(dec, dlen, enc, sizeof(enc));
		FUZZ_CHECK(elen >= 0 && (size_t)elen <= 3 * dlen);
		FUZZ_CHECK(pst_addr_xtext_decode(enc, (size_t)elen, dec2,
		    sizeof(dec2), &dlen2, &why) == 0);
		FUZZ_CHECK(dlen2 == dlen && memcmp(dec, dec2, dlen) == 0);
	} else
		FUZZ_CHECK(why != NULL);

	/* Any bytes encode; printable ones decode back. */
	if (len > 1023)
		return;
	elen = pst_addr_xtext_encode(s, len, enc, sizeof(enc));
	FUZZ_CHECK(elen >= 0 && (size_t)elen <= 3 * len);
	FUZZ_CHECK(enc[elen] == '\0');
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			printable = false;
	if (printable) {
		FUZZ_CHECK(pst_addr_xtext_decode(enc, (size_t)elen, dec,
		    sizeof(dec), &dlen, &why) == 0);
		FUZZ_CHECK(dlen == len && memcmp(dec, s, len) == 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	const char *s;
	unsigned flags;
	uint8_t b;

	b = fuzz_byte(&in, 0);
	flags = b & (PST_ADDR_F_NULL | PST_ADDR_F_POSTMASTER |
	    PST_ADDR_F_UTF8);
	s = (const char *)in.p;
	switch ((b >> 3) & 3) {
	case 0:
		addr_path(s, in.len, flags);
		break;
	case 1:
		if (in.len <= PST_ADDR_PATH_MAX)
			addr_mailbox(s, in.len, flags);
		break;
	case 2:
		addr_domain(s, in.len, flags);
		break;
	default:
		addr_xtext(s, in.len);
		break;
	}
	return 0;
}
