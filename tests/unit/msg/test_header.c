/*
 * test_header.c: the header section index.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg/header.h"
#include "unit.h"

static enum pst_hdr_add
add(struct pst_hdr *h, const char *line)
{
	return pst_hdr_add(h, line, strlen(line));
}

static void
assert_field(const struct pst_hdr *h, size_t i, const char *text,
    size_t name_len, enum pst_hdr_kind kind)
{
	const struct pst_hdr_field *f;

	ck_assert_uint_lt(i, h->nfields);
	f = &h->fields[i];
	ck_assert_msg(f->len == strlen(text) &&
	    memcmp(h->buf + f->off, text, f->len) == 0,
	    "field %zu is \"%.*s\", not \"%s\"", i, (int)f->len,
	    h->buf + f->off, text);
	ck_assert_uint_eq(f->name_len, name_len);
	ck_assert_int_eq(f->kind, kind);
}

START_TEST(header_fields_and_folding)
{
	struct pst_hdr h;

	pst_hdr_init(&h, 4096);
	ck_assert_int_eq(add(&h, "From: John Doe <jdoe@machine.example>"),
	    PST_HDR_ADD_FIELD);
	ck_assert_int_eq(add(&h, "Subject: Saying"), PST_HDR_ADD_FIELD);
	/* RFC 5322 §2.2.3: white space starts a continuation. */
	ck_assert_int_eq(add(&h, " Hello"), PST_HDR_ADD_CONT);
	ck_assert_int_eq(add(&h, "\tthere"), PST_HDR_ADD_CONT);
	ck_assert_int_eq(add(&h, "To: a@b"), PST_HDR_ADD_FIELD);
	ck_assert_uint_eq(h.nfields, 3);
	assert_field(&h, 0, "From: John Doe <jdoe@machine.example>\r\n", 4,
	    PST_HDR_FROM);
	assert_field(&h, 1, "Subject: Saying\r\n Hello\r\n\tthere\r\n", 7,
	    PST_HDR_OTHER);
	assert_field(&h, 2, "To: a@b\r\n", 2, PST_HDR_TO);
	/* The fields lie end to end in the buffer. */
	ck_assert_uint_eq(h.fields[1].off, h.fields[0].len);
	ck_assert_uint_eq(h.fields[2].off, h.fields[1].off + h.fields[1].len);
	ck_assert_uint_eq(h.len, h.fields[2].off + h.fields[2].len);
	pst_hdr_clear(&h);
	ck_assert_uint_eq(h.nfields, 0);
	ck_assert_uint_eq(h.len, 0);
	ck_assert_uint_eq(h.max, 4096);
}
END_TEST

START_TEST(header_duplicates_and_case)
{
	struct pst_hdr h;

	pst_hdr_init(&h, 4096);
	ck_assert_int_eq(add(&h, "Received: from a"), PST_HDR_ADD_FIELD);
	ck_assert_int_eq(add(&h, "RECEIVED: from b"), PST_HDR_ADD_FIELD);
	ck_assert_int_eq(add(&h, "received : from c"), PST_HDR_ADD_FIELD);
	ck_assert_int_eq(add(&h, "rEsEnT-tO: x@y"), PST_HDR_ADD_FIELD);
	ck_assert_int_eq(add(&h, "cc:x@y"), PST_HDR_ADD_FIELD);
	ck_assert_int_eq(add(&h, "Cc: z@y"), PST_HDR_ADD_FIELD);
	ck_assert_uint_eq(h.nfields, 6);
	assert_field(&h, 0, "Received: from a\r\n", 8, PST_HDR_RECEIVED);
	assert_field(&h, 1, "RECEIVED: from b\r\n", 8, PST_HDR_RECEIVED);
	/* RFC 5322 §4.5: white space before the colon. */
	assert_field(&h, 2, "received : from c\r\n", 8, PST_HDR_RECEIVED);
	assert_field(&h, 3, "rEsEnT-tO: x@y\r\n", 9, PST_HDR_RESENT_TO);
	assert_field(&h, 4, "cc:x@y\r\n", 2, PST_HDR_CC);
	assert_field(&h, 5, "Cc: z@y\r\n", 2, PST_HDR_CC);
	ck_assert(pst_hdr_has(&h, PST_HDR_CC));
	ck_assert(pst_hdr_has(&h, PST_HDR_RECEIVED));
	ck_assert(!pst_hdr_has(&h, PST_HDR_FROM));
	pst_hdr_clear(&h);
}
END_TEST

static const struct {
	const char		*name;
	enum pst_hdr_kind	 kind;
} kinds[] = {
	{ "From", PST_HDR_FROM },
	{ "date", PST_HDR_DATE },
	{ "Message-ID", PST_HDR_MSGID },
	{ "Received", PST_HDR_RECEIVED },
	{ "To", PST_HDR_TO },
	{ "CC", PST_HDR_CC },
	{ "Bcc", PST_HDR_BCC },
	{ "Resent-To", PST_HDR_RESENT_TO },
	{ "Resent-Cc", PST_HDR_RESENT_CC },
	{ "Resent-Bcc", PST_HDR_RESENT_BCC },
	{ "Sender", PST_HDR_ADDRESSES },
	{ "Reply-To", PST_HDR_ADDRESSES },
	{ "Resent-From", PST_HDR_ADDRESSES },
	{ "Resent-Sender", PST_HDR_ADDRESSES },
	{ "Subject", PST_HDR_OTHER },
	{ "Received-SPF", PST_HDR_OTHER },
	{ "Fro", PST_HDR_OTHER },
	{ "Froma", PST_HDR_OTHER },
	{ "Resent-Date", PST_HDR_OTHER },
};

START_TEST(header_kinds)
{
	ck_assert_int_eq(pst_hdr_kind(kinds[_i].name,
	    strlen(kinds[_i].name)), kinds[_i].kind);
}
END_TEST

/* Lines that are not header lines: the index does not change. */
static const char *const not_fields[] = {
	"",			/* the end of the section: the caller's */
	"no colon here",
	"Two words: value",
	":no name",
	"Na\x01me: control",
	"N\xc3\xa4me: 8-bit",
	"Name",
	"Name  ",
	"From a@b Mon Jan  1",	/* an mbox separator */
};

START_TEST(header_not_fields)
{
	struct pst_hdr h;
	const char *line = not_fields[_i];

	pst_hdr_init(&h, 4096);
	ck_assert_int_eq(add(&h, "X: y"), PST_HDR_ADD_FIELD);
	ck_assert_int_eq(pst_hdr_add(&h, line, strlen(line)),
	    PST_HDR_ADD_NOT);
	ck_assert_uint_eq(h.nfields, 1);
	ck_assert_uint_eq(h.len, 6);
	pst_hdr_clear(&h);
}
END_TEST

/* A continuation with nothing to continue is not a header line. */
START_TEST(header_leading_continuation)
{
	struct pst_hdr h;

	pst_hdr_init(&h, 4096);
	ck_assert_int_eq(add(&h, " folded: first"), PST_HDR_ADD_NOT);
	ck_assert_int_eq(add(&h, "\tx"), PST_HDR_ADD_NOT);
	ck_assert_uint_eq(h.nfields, 0);
	ck_assert_uint_eq(h.len, 0);
	pst_hdr_clear(&h);
}
END_TEST

START_TEST(header_name_len)
{
	size_t colon = 99;

	ck_assert_uint_eq(pst_hdr_name_len("Subject: x", 10, &colon), 7);
	ck_assert_uint_eq(colon, 7);
	ck_assert_uint_eq(pst_hdr_name_len("To \t: x", 7, &colon), 2);
	ck_assert_uint_eq(colon, 4);
	ck_assert_uint_eq(pst_hdr_name_len("X:", 2, &colon), 1);
	colon = 99;
	ck_assert_uint_eq(pst_hdr_name_len("Subject", 7, &colon), 0);
	ck_assert_uint_eq(colon, 99);
	/* Only 'len' bytes count. */
	ck_assert_uint_eq(pst_hdr_name_len("Subject: x", 7, &colon), 0);
}
END_TEST

/* The bound counts every line with its CRLF. */
START_TEST(header_full)
{
	struct pst_hdr h;

	pst_hdr_init(&h, 20);
	ck_assert_int_eq(add(&h, "A: 1234567"), PST_HDR_ADD_FIELD);	/* 12 */
	ck_assert_int_eq(add(&h, " 12345"), PST_HDR_ADD_CONT);	/* 20 */
	ck_assert_uint_eq(h.len, 20);
	ck_assert_int_eq(add(&h, " "), PST_HDR_ADD_FULL);
	pst_hdr_clear(&h);

	pst_hdr_init(&h, 20);
	ck_assert_int_eq(add(&h, "A: 1234567"), PST_HDR_ADD_FIELD);
	ck_assert_int_eq(add(&h, " 1234567"), PST_HDR_ADD_FULL);
	ck_assert_int_eq(add(&h, "B: 1234567"), PST_HDR_ADD_FULL);
	ck_assert_int_eq(add(&h, "B: 123"), PST_HDR_ADD_FIELD);
	ck_assert_uint_eq(h.len, 20);
	ck_assert_uint_eq(h.nfields, 2);
	pst_hdr_clear(&h);
}
END_TEST

/* Past the first 4 KiB and 32 fields: the index grows. */
START_TEST(header_grows)
{
	struct pst_hdr h;
	char line[200];
	size_t i;

	pst_hdr_init(&h, 1024 * 1024);
	for (i = 0; i < 500; i++) {
		snprintf(line, sizeof(line), "X-Field-%zu: %0150zu", i, i);
		ck_assert_int_eq(add(&h, line), PST_HDR_ADD_FIELD);
	}
	ck_assert_uint_eq(h.nfields, 500);
	for (i = 0; i < 500; i++) {
		snprintf(line, sizeof(line), "X-Field-%zu: %0150zu\r\n", i, i);
		assert_field(&h, i, line, strlen(line) - 2 - 152,
		    PST_HDR_OTHER);
	}
	pst_hdr_clear(&h);
}
END_TEST

START_TEST(header_unfold)
{
	struct pst_hdr h;
	char out[128];
	size_t n;

	pst_hdr_init(&h, 4096);
	ck_assert_int_eq(add(&h, "To: a@b,"), PST_HDR_ADD_FIELD);
	ck_assert_int_eq(add(&h, "  c@d,"), PST_HDR_ADD_CONT);
	ck_assert_int_eq(add(&h, "\te@f"), PST_HDR_ADD_CONT);
	ck_assert_int_eq(add(&h, "Cc:"), PST_HDR_ADD_FIELD);
	ck_assert_int_eq(add(&h, "Subject: a: b"), PST_HDR_ADD_FIELD);
	n = pst_hdr_unfold(&h, &h.fields[0], out);
	ck_assert_uint_le(n, h.fields[0].len);
	ck_assert(n == strlen(" a@b,  c@d,\te@f") &&
	    memcmp(out, " a@b,  c@d,\te@f", n) == 0);
	ck_assert_uint_eq(pst_hdr_unfold(&h, &h.fields[1], out), 0);
	/* After the first colon only. */
	n = pst_hdr_unfold(&h, &h.fields[2], out);
	ck_assert(n == 5 && memcmp(out, " a: b", 5) == 0);
	pst_hdr_clear(&h);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("msg/header");
	TCase *tc = tcase_create("header");

	tcase_add_test(tc, header_fields_and_folding);
	tcase_add_test(tc, header_duplicates_and_case);
	tcase_add_loop_test(tc, header_kinds, 0, NELEMS(kinds));
	tcase_add_loop_test(tc, header_not_fields, 0, NELEMS(not_fields));
	tcase_add_test(tc, header_leading_continuation);
	tcase_add_test(tc, header_name_len);
	tcase_add_test(tc, header_full);
	tcase_add_test(tc, header_grows);
	tcase_add_test(tc, header_unfold);
	suite_add_tcase(s, tc);
	return s;
}
