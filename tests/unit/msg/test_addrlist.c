/*
 * test_addrlist.c: the RFC 5322 §3.4 address list scanner, with the
 * examples of RFC 5322 Appendix A.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg/addrlist.h"
#include "unit.h"

#define MAXA	8

/*
 * A list and what the scanner makes of it: the addresses in order ("" for
 * an empty element), then either the end or an error.
 */
static const struct {
	const char	*name;
	const char	*in;
	const char	*addrs[MAXA];	/* NULL after the last */
	const char	*why;		/* NULL: the list ends cleanly */
} lists[] = {
	/* A.1.1: a message from one person to another. */
	{ "A.1.1 from", "John Doe <jdoe@machine.example>",
	    { "jdoe@machine.example" }, NULL },
	{ "A.1.1 to", "Mary Smith <mary@example.net>",
	    { "mary@example.net" }, NULL },
	/* A.1.2: different types of mailboxes. */
	{ "A.1.2 from", "\"Joe Q. Public\" <john.q.public@example.com>",
	    { "john.q.public@example.com" }, NULL },
	{ "A.1.2 to", "Mary Smith <mary@x.test>, jdoe@example.org, "
	    "Who? <one@y.test>",
	    { "mary@x.test", "jdoe@example.org", "one@y.test" }, NULL },
	{ "A.1.2 cc", "<boss@nil.test>, \"Giant; \\\"Big\\\" Box\" "
	    "<sysservices@example.net>",
	    { "boss@nil.test", "sysservices@example.net" }, NULL },
	/* A.1.3: group addresses. */
	{ "A.1.3 group", "A Group:Ed Jones <c@a.test>,joe@where.test,John "
	    "<jdoe@one.test>;",
	    { "c@a.test", "joe@where.test", "jdoe@one.test" }, NULL },
	{ "A.1.3 empty group", "Undisclosed recipients:;", { "" }, NULL },
	/* A.5: white space, comments and other oddities. */
	{ "A.5 from", "Pete(A nice \\) chap) <pete(his account)@silly.test"
	    "(his host)>", { "pete@silly.test" }, NULL },
	{ "A.5 to", "A Group(Some people)\r\n     :Chris Jones "
	    "<c@(Chris's host.)public.example>,\r\n         "
	    "joe@example.org,\r\n  John <jdoe@one.test> (my dear friend); "
	    "(the end of the group)",
	    { "c@public.example", "joe@example.org", "jdoe@one.test", "" },
	    NULL },
	{ "A.5 cc", "(Empty list)(start)Hidden recipients  :(nobody(that I "
	    "know))  ;", { "" }, NULL },
	/* A.6.1: obsolete addressing. */
	{ "A.6.1 from", "Joe Q. Public <john.q.public@example.com>",
	    { "john.q.public@example.com" }, NULL },
	{ "A.6.1 to", "Mary Smith <@node.test:mary@example.net>, , jdoe@test"
	    "  . example",
	    { "mary@example.net", "", "jdoe@test.example" }, NULL },
	{ "A.6.1 obs-route", "<@machine.tld:mary@example.net>",
	    { "mary@example.net" }, NULL },
	{ "obs-route, two hops", "<@a.example,@b.example:user@c.example>",
	    { "user@c.example" }, NULL },
	{ "obs-addr-list", ", ,a@b.example,,", { "", "", "a@b.example", "" },
	    NULL },
	/* Quoted local parts and domain literals stay whole. */
	{ "quoted local part", "\"john doe\"@example.org",
	    { "\"john doe\"@example.org" }, NULL },
	{ "quoted pair", "\"a\\\"b\"@example.org, x@y",
	    { "\"a\\\"b\"@example.org", "x@y" }, NULL },
	{ "quoted in angle", "Joe <\"j d\"@example.org>",
	    { "\"j d\"@example.org" }, NULL },
	{ "domain literal", "user@[192.0.2.1], root",
	    { "user@[192.0.2.1]", "root" }, NULL },
	/* What programs write. */
	{ "bare names", "root, postmaster", { "root", "postmaster" }, NULL },
	{ "name and comment", "root (Cron Daemon)", { "root" }, NULL },
	{ "folded", "a@b.example,\r\n\tc@d.example",
	    { "a@b.example", "c@d.example" }, NULL },
	{ "dotted words", "first . last @ example . org",
	    { "first.last@example.org" }, NULL },
	{ "empty", "", { NULL }, NULL },
	{ "white space only", " \t\r\n ", { NULL }, NULL },
	/* Refused. */
	{ "words", "John Smith", { NULL }, "words without an <address>" },
	{ "words then good", "a@b.example, John Smith",
	    { "a@b.example" }, "words without an <address>" },
	{ "open quote", "\"abc@example.org", { NULL },
	    "unterminated quoted string" },
	{ "open literal", "a@[1.2.3.4", { NULL },
	    "unterminated domain literal" },
	{ "open comment", "a@b (oops", { NULL }, "unterminated comment" },
	{ "two angles", "<a@b> <c@d>", { NULL }, "more than one <address>" },
	{ "nested angle", "<a<b>>", { NULL }, "more than one <address>" },
	{ "close only", "a@b>", { NULL }, "\">\" without \"<\"" },
	{ "open only", "Joe <a@b", { NULL }, "\"<\" without \">\"" },
	{ "empty angle", "Joe <>", { NULL }, "empty <>" },
	{ "group in group", "G: H: a@b;;", { NULL },
	    "a group inside a group" },
};

START_TEST(addrlist_vectors)
{
	struct pst_addrlist ls;
	const char *in = lists[_i].in;
	size_t n = 0;
	int rc;

	pst_addrlist_init(&ls, in, strlen(in));
	while ((rc = pst_addrlist_next(&ls)) == 1) {
		ck_assert_msg(n < MAXA && lists[_i].addrs[n] != NULL,
		    "%s: extra address \"%s\"", lists[_i].name, ls.addr);
		ck_assert_msg(strcmp(ls.addr, lists[_i].addrs[n]) == 0,
		    "%s: address %zu is \"%s\", not \"%s\"", lists[_i].name,
		    n, ls.addr, lists[_i].addrs[n]);
		ck_assert_uint_eq(ls.alen, strlen(ls.addr));
		n++;
	}
	ck_assert_msg(n == MAXA || lists[_i].addrs[n] == NULL,
	    "%s: only %zu addresses", lists[_i].name, n);
	if (lists[_i].why == NULL)
		ck_assert_msg(rc == 0, "%s: failed: %s", lists[_i].name,
		    ls.why);
	else {
		ck_assert_msg(rc == -1, "%s: did not fail", lists[_i].name);
		ck_assert_str_eq(ls.why, lists[_i].why);
	}
}
END_TEST

START_TEST(addrlist_too_long)
{
	struct pst_addrlist ls;
	char in[PST_ADDRLIST_ADDR_MAX + 16];

	/* The longest address fits; one byte more does not. */
	memset(in, 'a', PST_ADDRLIST_ADDR_MAX);
	pst_addrlist_init(&ls, in, PST_ADDRLIST_ADDR_MAX);
	ck_assert_int_eq(pst_addrlist_next(&ls), 1);
	ck_assert_uint_eq(ls.alen, PST_ADDRLIST_ADDR_MAX);
	memset(in, 'a', PST_ADDRLIST_ADDR_MAX + 1);
	pst_addrlist_init(&ls, in, PST_ADDRLIST_ADDR_MAX + 1);
	ck_assert_int_eq(pst_addrlist_next(&ls), -1);
	ck_assert_str_eq(ls.why, "address too long");
	in[0] = '<';
	in[PST_ADDRLIST_ADDR_MAX + 1] = '>';
	pst_addrlist_init(&ls, in, PST_ADDRLIST_ADDR_MAX + 2);
	ck_assert_int_eq(pst_addrlist_next(&ls), 1);
	in[PST_ADDRLIST_ADDR_MAX + 2] = 'a';
	in[PST_ADDRLIST_ADDR_MAX + 3] = '>';
	in[PST_ADDRLIST_ADDR_MAX + 1] = 'a';
	pst_addrlist_init(&ls, in, PST_ADDRLIST_ADDR_MAX + 4);
	ck_assert_int_eq(pst_addrlist_next(&ls), -1);
	ck_assert_str_eq(ls.why, "address too long");
}
END_TEST

/* Where the element is, for messages, and where a domain would go. */
START_TEST(addrlist_elem_and_insert)
{
	const char *in = "  Mary Smith <mary> , root (Cron Daemon);x";
	struct pst_addrlist ls;

	pst_addrlist_init(&ls, in, strlen(in));
	ck_assert_int_eq(pst_addrlist_next(&ls), 1);
	ck_assert_str_eq(ls.addr, "mary");
	ck_assert_uint_eq(ls.elem_len, strlen("Mary Smith <mary>"));
	ck_assert(memcmp(ls.elem, "Mary Smith <mary>", ls.elem_len) == 0);
	/* Before the ">". */
	ck_assert_ptr_eq(ls.insert_at, strchr(in, '>'));

	ck_assert_int_eq(pst_addrlist_next(&ls), 1);
	ck_assert_str_eq(ls.addr, "root");
	ck_assert_uint_eq(ls.elem_len, strlen("root (Cron Daemon)"));
	ck_assert(memcmp(ls.elem, "root (Cron Daemon)", ls.elem_len) == 0);
	/* Right after the word, before the comment. */
	ck_assert_ptr_eq(ls.insert_at, strstr(in, "root") + 4);

	ck_assert_int_eq(pst_addrlist_next(&ls), 1);
	ck_assert_str_eq(ls.addr, "x");
	ck_assert_int_eq(pst_addrlist_next(&ls), 0);
}
END_TEST

/* An empty element has no place for a domain. */
START_TEST(addrlist_empty_element)
{
	struct pst_addrlist ls;

	pst_addrlist_init(&ls, ",", 1);
	ck_assert_int_eq(pst_addrlist_next(&ls), 1);
	ck_assert_uint_eq(ls.alen, 0);
	ck_assert_ptr_null(ls.insert_at);
	ck_assert_uint_eq(ls.elem_len, 0);
	ck_assert_int_eq(pst_addrlist_next(&ls), 0);
}
END_TEST

/* After an error the element is the rest of the text, for the message. */
START_TEST(addrlist_error_elem)
{
	const char *in = "a@b, \"open@c, d@e";
	struct pst_addrlist ls;

	pst_addrlist_init(&ls, in, strlen(in));
	ck_assert_int_eq(pst_addrlist_next(&ls), 1);
	ck_assert_int_eq(pst_addrlist_next(&ls), -1);
	ck_assert_uint_eq(ls.elem_len, strlen("\"open@c, d@e"));
	ck_assert(memcmp(ls.elem, "\"open@c, d@e", ls.elem_len) == 0);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("msg/addrlist");
	TCase *tc = tcase_create("addrlist");

	tcase_add_loop_test(tc, addrlist_vectors, 0, NELEMS(lists));
	tcase_add_test(tc, addrlist_too_long);
	tcase_add_test(tc, addrlist_elem_and_insert);
	tcase_add_test(tc, addrlist_empty_element);
	tcase_add_test(tc, addrlist_error_elem);
	suite_add_tcase(s, tc);
	return s;
}
