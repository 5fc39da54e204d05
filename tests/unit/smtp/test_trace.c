/*
 * test_trace.c: the Received: writer and the hop counter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "smtp/trace.h"
#include "unit.h"

/* Tue, 04 Mar 2025 08:15:00 UTC */
#define WHEN	((time_t)1741076100)
#define DATE	"Tue, 04 Mar 2025 08:15:00 +0000"

static void
utc(void)
{
	setenv("TZ", "UTC", 1);
	tzset();
}

START_TEST(trace_date)
{
	char buf[64];

	utc();
	ck_assert_str_eq(pst_msg_date(WHEN, buf, sizeof(buf)), DATE);
	/* Too small: empty, not cut. */
	ck_assert_str_eq(pst_msg_date(WHEN, buf, 10), "");
}
END_TEST

/* Each caller's layout, byte for byte. */
static const struct {
	const char		*name;
	struct pst_received	 r;
	const char		*out;
} layouts[] = {
	{ "smtp server", { "client.test", "[127.0.0.1]", "relay.test",
	    "postern", "ESMTP", "4Xq2b7", "a@example.org", WHEN,
	    PST_RCVD_FOLD_BY | PST_RCVD_FOLD_FOR | PST_RCVD_FOLD_DATE },
	    "Received: from client.test ([127.0.0.1])\r\n"
	    "\tby relay.test (postern) with ESMTP id 4Xq2b7\r\n"
	    "\tfor <a@example.org>;\r\n"
	    "\t" DATE "\r\n" },
	{ "smtp server, recipients", { "client.test", "[::1]",
	    "relay.test", "postern", "UTF8SMTP", "4Xq2b7", NULL, WHEN,
	    PST_RCVD_FOLD_BY | PST_RCVD_FOLD_FOR | PST_RCVD_FOLD_DATE },
	    "Received: from client.test ([::1])\r\n"
	    "\tby relay.test (postern) with UTF8SMTP id 4Xq2b7;\r\n"
	    "\t" DATE "\r\n" },
	{ "sendmail -bs", { "me.test", NULL, "relay.test",
	    "postern, from userid 1000", "ESMTP", "4Xq2b7", NULL, WHEN,
	    PST_RCVD_FOLD_BY | PST_RCVD_FOLD_DATE },
	    "Received: from me.test\r\n"
	    "\tby relay.test (postern, from userid 1000) with ESMTP id "
	    "4Xq2b7;\r\n"
	    "\t" DATE "\r\n" },
	{ "sendmail", { NULL, NULL, "relay.test",
	    "postern, from userid 0", NULL, "4Xq2b7", NULL, WHEN,
	    PST_RCVD_FOLD_ID },
	    "Received: by relay.test (postern, from userid 0)\r\n"
	    "\tid 4Xq2b7; " DATE "\r\n" },
	{ "bounce", { NULL, NULL, "relay.test", "postern", NULL, "4Xq2b7",
	    NULL, WHEN, 0 },
	    "Received: by relay.test (postern) id 4Xq2b7; " DATE "\r\n" },
	{ "every fold", { "a", "b", "c", "d", "e", "f", "g", WHEN, 0x1f },
	    "Received: from a (b)\r\n\tby c (d)\r\n\twith e\r\n\tid f\r\n"
	    "\tfor <g>;\r\n\t" DATE "\r\n" },
	{ "nothing but by", { NULL, NULL, "c", NULL, NULL, NULL, NULL, WHEN,
	    0x1f },
	    "Received: by c;\r\n\t" DATE "\r\n" },
	{ "no fold", { "a", "b", "c", "d", "e", "f", "g", WHEN, 0 },
	    "Received: from a (b) by c (d) with e id f for <g>; " DATE
	    "\r\n" },
};

START_TEST(trace_layouts)
{
	char buf[1024];
	int n;

	utc();
	n = pst_received_format(&layouts[_i].r, buf, sizeof(buf));
	ck_assert_msg(n >= 0, "%s: failed", layouts[_i].name);
	ck_assert_uint_eq((size_t)n, strlen(buf));
	ck_assert_str_eq(buf, layouts[_i].out);
}
END_TEST

START_TEST(trace_too_long)
{
	const struct pst_received *r = &layouts[0].r;
	const char *want = layouts[0].out;
	char buf[1024];
	size_t len = strlen(want);

	utc();
	/* Exactly enough room, with the NUL. */
	ck_assert_int_eq(pst_received_format(r, buf, len + 1), (int)len);
	ck_assert_str_eq(buf, want);
	ck_assert_int_eq(pst_received_format(r, buf, len), -1);
	ck_assert_int_eq(pst_received_format(r, buf, 20), -1);
	ck_assert_int_eq(pst_received_format(r, buf, 1), -1);
	ck_assert_int_eq(pst_received_format(r, buf, 0), -1);
}
END_TEST

static unsigned
hops_of(const char *msg, size_t chunk)
{
	struct pst_hops h;
	size_t len = strlen(msg), i, n;

	pst_hops_init(&h);
	for (i = 0; i < len; i += n) {
		n = len - i < chunk ? len - i : chunk;
		pst_hops_feed(&h, msg + i, n);
	}
	return h.count;
}

static const struct {
	const char	*name;
	const char	*msg;
	unsigned	 count;
} hop_msgs[] = {
	{ "none", "Subject: x\r\n\r\nbody\r\n", 0 },
	{ "one", "Received: from a\r\n\r\n", 1 },
	{ "any case, obsolete space", "Received: a\r\nRECEIVED: b\r\n"
	    "received : c\r\nReceived\t\t: d\r\nReCeIvEd:e\r\n\r\n", 5 },
	{ "folded", "Received: from a\r\n\tby b\r\n Received: c\r\n\r\n",
	    1 },
	{ "other names", "Received-SPF: pass\r\nX-Received: a\r\n"
	    "Receive: a\r\nReceived x: a\r\nReceived\r\n\r\n", 0 },
	{ "body", "Received: a\r\n\r\nReceived: b\r\n", 1 },
	{ "blank line with space", "Received: a\r\n \r\nReceived: b\r\n"
	    "\r\n", 2 },
	{ "bare LF", "Received: a\nReceived: b\n\nReceived: c\n", 2 },
	{ "no header", "\r\nReceived: a\r\n", 0 },
	{ "no end", "Received: a\r\nReceived: b", 2 },
};

START_TEST(trace_hops_count)
{
	size_t chunk;

	for (chunk = 1; chunk <= 64; chunk++)
		ck_assert_msg(hops_of(hop_msgs[_i].msg, chunk) ==
		    hop_msgs[_i].count, "%s: %u, not %u, in chunks of %zu",
		    hop_msgs[_i].name, hops_of(hop_msgs[_i].msg, chunk),
		    hop_msgs[_i].count, chunk);
}
END_TEST

/* Header lines one by one count as the same bytes would. */
START_TEST(trace_hops_lines)
{
	static const char *const lines[] = {
		"Received: from a", "\tby b", "received : c",
		"Received-SPF: x", "Subject: Received: no",
	};
	struct pst_hops h;
	size_t i;

	pst_hops_init(&h);
	for (i = 0; i < NELEMS(lines); i++)
		pst_hops_line(&h, lines[i], strlen(lines[i]));
	ck_assert_uint_eq(h.count, 2);
	ck_assert(!h.done);
}
END_TEST

/* The one limit: RFC 5321 §6.3, 100 Received: fields is a loop. */
START_TEST(trace_hops_limit)
{
	struct pst_hops h;
	unsigned i;

	ck_assert_uint_eq(PST_HOPS_MAX, 100);
	pst_hops_init(&h);
	for (i = 0; i < PST_HOPS_MAX - 1; i++)
		pst_hops_line(&h, "Received: x", 11);
	ck_assert_uint_eq(h.count, 99);
	ck_assert(!pst_hops_exceeded(&h));
	pst_hops_line(&h, "Received: x", 11);
	ck_assert(pst_hops_exceeded(&h));
	pst_hops_feed(&h, "\r\nReceived: x\r\n", 15);
	ck_assert_uint_eq(h.count, 100);
	ck_assert(h.done);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("msg/trace");
	TCase *tc = tcase_create("trace");

	tcase_add_test(tc, trace_date);
	tcase_add_loop_test(tc, trace_layouts, 0, NELEMS(layouts));
	tcase_add_test(tc, trace_too_long);
	tcase_add_loop_test(tc, trace_hops_count, 0, NELEMS(hop_msgs));
	tcase_add_test(tc, trace_hops_lines);
	tcase_add_test(tc, trace_hops_limit);
	suite_add_tcase(s, tc);
	return s;
}
