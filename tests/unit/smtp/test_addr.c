#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/addr.h"
#include "unit.h"

/* Expected attributes of a parsed path. */
#define A_NULL		0x01
#define A_PM		0x02
#define A_QUOTED	0x04
#define A_LIT		0x08
#define A_UTF8		0x10
#define A_ROUTE		0x20

#define NUL_F	PST_ADDR_F_NULL
#define PM_F	PST_ADDR_F_POSTMASTER
#define U8_F	PST_ADDR_F_UTF8

static const struct {
	const char	*in;
	size_t		 len;		/* 0: strlen(in) */
	unsigned	 flags;
	const char	*mailbox;	/* NULL: must fail */
	unsigned	 attrs;
	size_t		 used;		/* 0: the whole input */
} paths[] = {
	/* Plain mailboxes. */
	{ "<user@example.org>", 0, 0, "user@example.org", 0, 0 },
	{ "<first.last@sub.example.org>", 0, 0,
	    "first.last@sub.example.org", 0, 0 },
	{ "<a+tag@x.y>", 0, 0, "a+tag@x.y", 0, 0 },
	{ "<!#$%&'*+-/=?^_`{|}~@x.org>", 0, 0, "!#$%&'*+-/=?^_`{|}~@x.org",
	    0, 0 },
	{ "<User@EXAMPLE.org>", 0, 0, "User@EXAMPLE.org", 0, 0 },
	{ "<u@localhost>", 0, 0, "u@localhost", 0, 0 },
	{ "<u@123.example>", 0, 0, "u@123.example", 0, 0 },
	{ "<u@a-b.example>", 0, 0, "u@a-b.example", 0, 0 },
	{ "<a@b> SIZE=100", 0, 0, "a@b", 0, 5 },
	/* The null path: MAIL only. */
	{ "<>", 0, NUL_F, "", A_NULL, 0 },
	{ "<>", 0, 0, NULL, 0, 0 },
	{ "<> BODY=8BITMIME", 0, NUL_F, "", A_NULL, 2 },
	/* Postmaster without a domain: RCPT only, any case. */
	{ "<postmaster>", 0, PM_F, "postmaster", A_PM, 0 },
	{ "<PostMaster>", 0, PM_F, "PostMaster", A_PM, 0 },
	{ "<postmaster>", 0, 0, NULL, 0, 0 },
	{ "<\"postmaster\">", 0, PM_F, NULL, 0, 0 },
	{ "<postmasters>", 0, PM_F, NULL, 0, 0 },
	{ "<postmaster@example.org>", 0, PM_F, "postmaster@example.org", 0,
	    0 },
	/* Source routes are checked, then dropped. */
	{ "<@a.example:u@c.example>", 0, 0, "u@c.example", A_ROUTE, 0 },
	{ "<@a.example,@b.example:u@c.example>", 0, 0, "u@c.example",
	    A_ROUTE, 0 },
	{ "<@a.example,u@c.example>", 0, 0, NULL, 0, 0 },
	{ "<@a.example:>", 0, 0, NULL, 0, 0 },
	{ "<@a..example:u@c.example>", 0, 0, NULL, 0, 0 },
	{ "<@[192.0.2.1]:u@c.example>", 0, 0, NULL, 0, 0 },
	{ "<@:u@c.example>", 0, 0, NULL, 0, 0 },
	{ "<@a.example,:u@c.example>", 0, 0, NULL, 0, 0 },
	/* Quoted local parts, with escapes. */
	{ "<\"john doe\"@example.org>", 0, 0, "\"john doe\"@example.org",
	    A_QUOTED, 0 },
	{ "<\"a\\\"b\"@x.org>", 0, 0, "\"a\\\"b\"@x.org", A_QUOTED, 0 },
	{ "<\"a\\\\b\"@x.org>", 0, 0, "\"a\\\\b\"@x.org", A_QUOTED, 0 },
	{ "<\"a>b\"@x.org>", 0, 0, "\"a>b\"@x.org", A_QUOTED, 0 },
	{ "<\"\"@x.org>", 0, 0, "\"\"@x.org", A_QUOTED, 0 },
	{ "<\"a@b\"@x.org>", 0, 0, "\"a@b\"@x.org", A_QUOTED, 0 },
	{ "<\"ab@x.org>", 0, 0, NULL, 0, 0 },
	{ "<\"a\rb\"@x.org>", 0, 0, NULL, 0, 0 },
	{ "<\"a\tb\"@x.org>", 0, 0, NULL, 0, 0 },
	{ "<\"a\\\rb\"@x.org>", 0, 0, NULL, 0, 0 },
	{ "<\"a\"b@x.org>", 0, 0, NULL, 0, 0 },
	/* Address literals. */
	{ "<u@[192.0.2.1]>", 0, 0, "u@[192.0.2.1]", A_LIT, 0 },
	{ "<u@[0.0.0.0]>", 0, 0, "u@[0.0.0.0]", A_LIT, 0 },
	{ "<u@[255.255.255.255]>", 0, 0, "u@[255.255.255.255]", A_LIT, 0 },
	{ "<u@[IPv6:2001:db8::1]>", 0, 0, "u@[IPv6:2001:db8::1]", A_LIT, 0 },
	{ "<u@[ipv6:::1]>", 0, 0, "u@[ipv6:::1]", A_LIT, 0 },
	{ "<u@[IPv6:::ffff:192.0.2.1]>", 0, 0, "u@[IPv6:::ffff:192.0.2.1]",
	    A_LIT, 0 },
	{ "<u@[256.1.1.1]>", 0, 0, NULL, 0, 0 },
	{ "<u@[1.2.3]>", 0, 0, NULL, 0, 0 },
	{ "<u@[1.2.3.4.5]>", 0, 0, NULL, 0, 0 },
	{ "<u@[1..2.3]>", 0, 0, NULL, 0, 0 },
	{ "<u@[1.2.3.]>", 0, 0, NULL, 0, 0 },
	{ "<u@[1234.1.1.1]>", 0, 0, NULL, 0, 0 },
	{ "<u@[]>", 0, 0, NULL, 0, 0 },
	{ "<u@[IPv6:]>", 0, 0, NULL, 0, 0 },
	{ "<u@[IPv6:2001:db8::g]>", 0, 0, NULL, 0, 0 },
	{ "<u@[IPv6:1.2.3.4]>", 0, 0, NULL, 0, 0 },
	{ "<u@[x400:whatever]>", 0, 0, NULL, 0, 0 },
	{ "<u@[192.0.2.1>", 0, 0, NULL, 0, 0 },
	{ "<u@[IPv6:::1\0x]>", 16, 0, NULL, 0, 0 },
	{ "<u@[2001:db8::1]>", 0, 0, NULL, 0, 0 },
	/* Broken syntax. */
	{ "user@example.org", 0, 0, NULL, 0, 0 },
	{ "<user@example.org", 0, 0, NULL, 0, 0 },
	{ "< user@example.org>", 0, 0, NULL, 0, 0 },
	{ "<user@example.org >", 0, 0, NULL, 0, 0 },
	{ "<user>", 0, 0, NULL, 0, 0 },
	{ "<user@>", 0, 0, NULL, 0, 0 },
	{ "<@example.org>", 0, 0, NULL, 0, 0 },
	{ "<a..b@x.org>", 0, 0, NULL, 0, 0 },
	{ "<.a@x.org>", 0, 0, NULL, 0, 0 },
	{ "<a.@x.org>", 0, 0, NULL, 0, 0 },
	{ "<a@x.org.>", 0, 0, NULL, 0, 0 },
	{ "<a@.x.org>", 0, 0, NULL, 0, 0 },
	{ "<a@x..org>", 0, 0, NULL, 0, 0 },
	{ "<a@-x.org>", 0, 0, NULL, 0, 0 },
	{ "<a@x-.org>", 0, 0, NULL, 0, 0 },
	{ "<a@x_y.org>", 0, 0, NULL, 0, 0 },
	{ "<a b@x.org>", 0, 0, NULL, 0, 0 },
	{ "<a@x org>", 0, 0, NULL, 0, 0 },
	{ "<a@b@x.org>", 0, 0, NULL, 0, 0 },
	{ "<a(comment)@x.org>", 0, 0, NULL, 0, 0 },
	{ "<a,b@x.org>", 0, 0, NULL, 0, 0 },
	{ "<<a@x.org>>", 0, 0, NULL, 0, 0 },
	{ "", 0, 0, NULL, 0, 0 },
	{ "<", 0, 0, NULL, 0, 0 },
	/* CR, LF, NUL, TAB never belong in an address. */
	{ "<a\r@x.org>", 0, 0, NULL, 0, 0 },
	{ "<a\n@x.org>", 0, 0, NULL, 0, 0 },
	{ "<a@x\r.org>", 0, 0, NULL, 0, 0 },
	{ "<a@x.org\r\n>", 0, 0, NULL, 0, 0 },
	{ "<a\0b@x.org>", 11, 0, NULL, 0, 0 },
	{ "<a@x.o\0rg>", 10, 0, NULL, 0, 0 },
	{ "<a\t@x.org>", 0, 0, NULL, 0, 0 },
	/* UTF-8 with and without SMTPUTF8. */
	{ "<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.example>", 0,
	    U8_F, "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.example",
	    A_UTF8, 0 },
	{ "<\xe7\x94\xa8\xe6\x88\xb7@example.org>", 0, 0, NULL, 0, 0 },
	{ "<u@b\xc3\xbc" "cher.example>", 0, U8_F,
	    "u@b\xc3\xbc" "cher.example", A_UTF8, 0 },
	{ "<u@b\xc3\xbc" "cher.example>", 0, 0, NULL, 0, 0 },
	{ "<\"j\xc3\xb6rg\"@x.org>", 0, U8_F, "\"j\xc3\xb6rg\"@x.org",
	    A_QUOTED | A_UTF8, 0 },
	{ "<\"j\xc3\xb6rg\"@x.org>", 0, 0, NULL, 0, 0 },
	{ "<\xc3(@x.org>", 0, U8_F, NULL, 0, 0 },
	{ "<\xc0\xaf@x.org>", 0, U8_F, NULL, 0, 0 },
	{ "<\xe0\x80\xaf@x.org>", 0, U8_F, NULL, 0, 0 },
	{ "<\xed\xa0\x80@x.org>", 0, U8_F, NULL, 0, 0 },
	{ "<\xf4\x90\x80\x80@x.org>", 0, U8_F, NULL, 0, 0 },
	{ "<\xff@x.org>", 0, U8_F, NULL, 0, 0 },
	{ "<\xc3\xa9", 0, U8_F, NULL, 0, 0 },
	{ "<u@\xc3>", 0, U8_F, NULL, 0, 0 },
};

START_TEST(addr_path_vectors)
{
	struct pst_addr a;
	const char *why = NULL;
	size_t len, used = 99;
	unsigned attrs;
	int rc;

	len = paths[_i].len ? paths[_i].len : strlen(paths[_i].in);
	rc = pst_addr_parse_path(paths[_i].in, len, paths[_i].flags, &a,
	    &used, &why);
	if (paths[_i].mailbox == NULL) {
		ck_assert_msg(rc == -1, "#%d \"%s\" accepted", _i,
		    paths[_i].in);
		ck_assert_ptr_nonnull(why);
		return;
	}
	ck_assert_msg(rc == 0, "#%d \"%s\" refused: %s", _i, paths[_i].in,
	    why);
	ck_assert_str_eq(a.mailbox, paths[_i].mailbox);
	ck_assert_uint_eq(used, paths[_i].used ? paths[_i].used : len);
	attrs = (a.null ? A_NULL : 0) | (a.postmaster ? A_PM : 0) |
	    (a.quoted ? A_QUOTED : 0) | (a.literal ? A_LIT : 0) |
	    (a.utf8 ? A_UTF8 : 0) | (a.routed ? A_ROUTE : 0);
	ck_assert_uint_eq(attrs, paths[_i].attrs);
	if (!a.null && !a.postmaster) {
		char joined[PST_ADDR_MAILBOX_MAX + 1];

		ck_assert(strlen(a.local) + 1 + strlen(a.domain) <
		    sizeof(joined));
		strcpy(joined, a.local);
		strcat(joined, "@");
		strcat(joined, a.domain);
		ck_assert_str_eq(joined, a.mailbox);
	}
}
END_TEST

/* "<" local "@" domain ">" with generated parts. */
static int
try_lengths(size_t llen, const char *domain, struct pst_addr *a,
    const char **why)
{
	char buf[1024];
	size_t used;

	buf[0] = '<';
	memset(buf + 1, 'l', llen);
	snprintf(buf + 1 + llen, sizeof(buf) - 1 - llen, "@%s>", domain);
	return pst_addr_parse_path(buf, strlen(buf), 0, a, &used, why);
}

START_TEST(addr_length_limits)
{
	struct pst_addr a;
	const char *why;
	char label63[64], label64[65], dom251[300], dom257[300];

	memset(label63, 'd', 63);
	label63[63] = '\0';
	memset(label64, 'd', 64);
	label64[64] = '\0';
	snprintf(dom251, sizeof(dom251), "%s.%s.%s.%.59s", label63, label63,
	    label63, label63);
	ck_assert_uint_eq(strlen(dom251), 251);
	snprintf(dom257, sizeof(dom257), "%s.%s.%s.%s.d", label63, label63,
	    label63, label63);
	ck_assert_uint_eq(strlen(dom257), 257);

	/* RFC 5321 §4.5.3.1.1: 64 octets of local part, not 65. */
	ck_assert_int_eq(try_lengths(64, "x.org", &a, &why), 0);
	ck_assert_uint_eq(strlen(a.local), 64);
	ck_assert_int_eq(try_lengths(65, "x.org", &a, &why), -1);
	ck_assert_str_eq(why, "local part too long");
	/* RFC 1035: 63 octets of label, not 64. */
	ck_assert_int_eq(try_lengths(1, label63, &a, &why), 0);
	ck_assert_int_eq(try_lengths(1, label64, &a, &why), -1);
	ck_assert_str_eq(why, "domain label too long");
	/* A path of 255 octets, then one over 256 (RFC 5321 §4.5.3.1.3). */
	ck_assert_int_eq(try_lengths(1, dom251, &a, &why), 0);
	ck_assert_int_eq(try_lengths(2, dom251, &a, &why), 0);
	ck_assert_int_eq(try_lengths(3, dom251, &a, &why), -1);
	ck_assert_str_eq(why, "path too long");
	ck_assert_int_eq(try_lengths(1, dom257, &a, &why), -1);
	ck_assert_str_eq(why, "domain too long");
}
END_TEST

START_TEST(addr_route_counts_toward_path_length)
{
	struct pst_addr a;
	const char *why;
	char buf[400], label[64];
	size_t used;

	memset(label, 'r', 63);
	label[63] = '\0';
	/* Four route hops of 64 octets push a short mailbox past 256. */
	snprintf(buf, sizeof(buf), "<@%s,@%s,@%s,@%s:u@x.org>", label, label,
	    label, label);
	ck_assert_int_eq(pst_addr_parse_path(buf, strlen(buf), 0, &a, &used,
	    &why), -1);
	ck_assert_str_eq(why, "path too long");
}
END_TEST

START_TEST(addr_mailbox_vectors)
{
	struct pst_addr a;
	const char *why;

	ck_assert_int_eq(pst_addr_parse_mailbox("a@b.example", 11, 0, &a,
	    &why), 0);
	ck_assert_str_eq(a.mailbox, "a@b.example");
	ck_assert_str_eq(a.local, "a");
	ck_assert_str_eq(a.domain, "b.example");
	ck_assert_int_eq(pst_addr_parse_mailbox("", 0, 0, &a, &why), -1);
	ck_assert_int_eq(pst_addr_parse_mailbox("", 0, PST_ADDR_F_NULL, &a,
	    &why), 0);
	ck_assert(a.null);
	ck_assert_int_eq(pst_addr_parse_mailbox("postmaster", 10,
	    PST_ADDR_F_POSTMASTER, &a, &why), 0);
	ck_assert(a.postmaster);
	ck_assert_int_eq(pst_addr_parse_mailbox("root", 4,
	    PST_ADDR_F_POSTMASTER, &a, &why), -1);
	ck_assert_int_eq(pst_addr_parse_mailbox("a@b x", 5, 0, &a, &why), -1);
	ck_assert_int_eq(pst_addr_parse_mailbox("<a@b>", 5, 0, &a, &why), -1);
	ck_assert_int_eq(pst_addr_parse_mailbox("a@b>", 4, 0, &a, &why), -1);
}
END_TEST

/* PST_ADDR_F_LOCAL: a local client's bare name, unquoted only. */
START_TEST(addr_bare_local_names)
{
	struct pst_addr a;
	const char *why;
	size_t used;

	ck_assert_int_eq(pst_addr_parse_path("<root>", 6, PST_ADDR_F_LOCAL,
	    &a, &used, &why), 0);
	ck_assert(a.bare);
	ck_assert_str_eq(a.mailbox, "root");
	ck_assert_str_eq(a.domain, "");
	ck_assert_int_eq(pst_addr_parse_path("<www-data.x>", 12,
	    PST_ADDR_F_LOCAL, &a, &used, &why), 0);
	ck_assert_str_eq(a.mailbox, "www-data.x");
	ck_assert_int_eq(pst_addr_parse_path("<root>", 6, 0, &a, &used,
	    &why), -1);
	ck_assert_str_eq(why, "missing domain");
	ck_assert_int_eq(pst_addr_parse_path("<\"root\">", 8,
	    PST_ADDR_F_LOCAL, &a, &used, &why), -1);
	ck_assert_int_eq(pst_addr_parse_path("<root x>", 8, PST_ADDR_F_LOCAL,
	    &a, &used, &why), -1);
	ck_assert_int_eq(pst_addr_parse_path("<root@example.org>", 18,
	    PST_ADDR_F_LOCAL, &a, &used, &why), 0);
	ck_assert(!a.bare);
	/* "<postmaster>" stays the postmaster where both are allowed. */
	ck_assert_int_eq(pst_addr_parse_path("<Postmaster>", 12,
	    PST_ADDR_F_LOCAL | PST_ADDR_F_POSTMASTER, &a, &used, &why), 0);
	ck_assert(a.postmaster && !a.bare);
}
END_TEST

START_TEST(addr_domain_vectors)
{
	ck_assert(pst_addr_domain_valid("example.org", 11, 0));
	ck_assert(pst_addr_domain_valid("localhost", 9, 0));
	ck_assert(pst_addr_domain_valid("[127.0.0.1]", 11, 0));
	ck_assert(pst_addr_domain_valid("[IPv6:::1]", 10, 0));
	ck_assert(!pst_addr_domain_valid("my_host", 7, 0));
	ck_assert(!pst_addr_domain_valid("a..b", 4, 0));
	ck_assert(!pst_addr_domain_valid("a.", 2, 0));
	ck_assert(!pst_addr_domain_valid("", 0, 0));
	ck_assert(!pst_addr_domain_valid("[127.0.0.1", 10, 0));
	ck_assert(!pst_addr_domain_valid("example.org x", 13, 0));
	ck_assert(!pst_addr_domain_valid("b\xc3\xbc" "cher.de", 9, 0));
	ck_assert(pst_addr_domain_valid("b\xc3\xbc" "cher.de", 9,
	    PST_ADDR_F_UTF8));
}
END_TEST

START_TEST(addr_utf8_vectors)
{
	ck_assert(pst_addr_utf8_valid("", 0));
	ck_assert(pst_addr_utf8_valid("plain", 5));
	ck_assert(pst_addr_utf8_valid("\xc3\xa9", 2));
	ck_assert(pst_addr_utf8_valid("\xe2\x82\xac", 3));
	ck_assert(pst_addr_utf8_valid("\xf0\x9f\x98\x80", 4));
	ck_assert(pst_addr_utf8_valid("\xf4\x8f\xbf\xbf", 4));
	ck_assert(!pst_addr_utf8_valid("\xc3", 1));
	ck_assert(!pst_addr_utf8_valid("\xc3(", 2));
	ck_assert(!pst_addr_utf8_valid("\xc1\xbf", 2));
	ck_assert(!pst_addr_utf8_valid("\xe0\x9f\xbf", 3));
	ck_assert(!pst_addr_utf8_valid("\xed\xb0\x80", 3));
	ck_assert(!pst_addr_utf8_valid("\xf0\x8f\xbf\xbf", 4));
	ck_assert(!pst_addr_utf8_valid("\xf4\x90\x80\x80", 4));
	ck_assert(!pst_addr_utf8_valid("\xf5\x80\x80\x80", 4));
	ck_assert(!pst_addr_utf8_valid("\x80", 1));
	ck_assert(!pst_addr_utf8_valid("\xe2\x82", 2));
}
END_TEST

static const struct {
	const char	*in;
	const char	*out;		/* NULL: must fail */
} xtexts[] = {
	{ "", "" },
	{ "simple", "simple" },
	{ "a+2Bb", "a+b" },
	{ "+3D", "=" },
	{ "rfc822+3Bx", "rfc822;x" },
	{ "a+20b", "a b" },
	{ "a+2bb", NULL },		/* lower-case hex is not xtext */
	{ "+2", NULL },
	{ "ab+", NULL },
	{ "+G0", NULL },
	{ "a=b", NULL },
	{ "a b", NULL },
	{ "a+0Db", NULL },		/* decodes to CR */
	{ "a+00b", NULL },
	{ "a+7F", NULL },
	{ "caf+C3+A9", NULL },		/* not printable US-ASCII */
	{ "\xc3\xa9", NULL },
};

START_TEST(addr_xtext_vectors)
{
	char out[64];
	const char *why = NULL;
	size_t n;
	int rc;

	rc = pst_addr_xtext_decode(xtexts[_i].in, strlen(xtexts[_i].in), out,
	    sizeof(out), &n, &why);
	if (xtexts[_i].out == NULL) {
		ck_assert_msg(rc == -1, "\"%s\" accepted", xtexts[_i].in);
		ck_assert_ptr_nonnull(why);
	} else {
		ck_assert_msg(rc == 0, "\"%s\": %s", xtexts[_i].in, why);
		ck_assert_str_eq(out, xtexts[_i].out);
		ck_assert_uint_eq(n, strlen(xtexts[_i].out));
	}
}
END_TEST

START_TEST(addr_xtext_round_trip)
{
	char in[128], enc[3 * 128 + 1], dec[129];
	const char *why;
	size_t len, n, k;
	int round, elen;

	srandom(5321);
	for (round = 0; round < 2000; round++) {
		len = (size_t)random() % sizeof(in);
		for (k = 0; k < len; k++) {
			/* Printable ASCII and space, heavy on + and =. */
			long r = random() % 100;

			in[k] = r < 10 ? '+' : r < 20 ? '=' : r < 25 ? ' ' :
			    (char)(33 + random() % 94);
		}
		elen = pst_addr_xtext_encode(in, len, enc, sizeof(enc));
		ck_assert_int_ge(elen, (int)len);
		ck_assert(memchr(enc, '=', (size_t)elen) == NULL);
		ck_assert(memchr(enc, ' ', (size_t)elen) == NULL);
		ck_assert_int_eq(pst_addr_xtext_decode(enc, (size_t)elen, dec,
		    sizeof(dec), &n, &why), 0);
		ck_assert_uint_eq(n, len);
		ck_assert(memcmp(dec, in, len) == 0);
	}
	ck_assert_int_eq(pst_addr_xtext_encode("a+b", 3, enc, sizeof(enc)), 5);
	ck_assert_str_eq(enc, "a+2Bb");
	ck_assert_int_eq(pst_addr_xtext_encode("a+b", 3, enc, 5), -1);
	ck_assert_str_eq(enc, "");
	ck_assert_int_eq(pst_addr_xtext_decode("abcd", 4, dec, 4, &n, &why),
	    -1);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("smtp/addr");
	TCase *tc = tcase_create("addr");

	tcase_add_loop_test(tc, addr_path_vectors, 0, NELEMS(paths));
	tcase_add_test(tc, addr_length_limits);
	tcase_add_test(tc, addr_route_counts_toward_path_length);
	tcase_add_test(tc, addr_mailbox_vectors);
	tcase_add_test(tc, addr_bare_local_names);
	tcase_add_test(tc, addr_domain_vectors);
	tcase_add_test(tc, addr_utf8_vectors);
	tcase_add_loop_test(tc, addr_xtext_vectors, 0, NELEMS(xtexts));
	tcase_add_test(tc, addr_xtext_round_trip);
	suite_add_tcase(s, tc);
	return s;
}
