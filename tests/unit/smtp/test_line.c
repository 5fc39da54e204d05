#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "smtp/line.h"
#include "unit.h"

#define TRANSCRIPT_MAX	8192

/*
 * Feeds 'len' bytes of 'in' to a reader bounded at 'max', 'chunk' bytes at
 * a time, reading every line that becomes available, and writes what came
 * out: "[line]" for a line, "T" too long, "B" bad (NUL), "F" fatal.
 * Reading stops at the first fatal error.
 */
static void
transcript(const char *in, size_t len, size_t max, size_t chunk, char *out,
    size_t outsize)
{
	struct evbuffer *buf = evbuffer_new();
	struct pst_line lr;
	struct pst_err err;
	char line[2048];
	size_t off = 0, n, llen;
	enum pst_line_status st;
	int fatal = 0;

	ck_assert_ptr_nonnull(buf);
	pst_line_init(&lr, max);
	out[0] = '\0';
	while (off < len && !fatal) {
		n = len - off < chunk ? len - off : chunk;
		evbuffer_add(buf, in + off, n);
		off += n;
		for (;;) {
			st = pst_line_read(&lr, buf, line, sizeof(line), &llen,
			    &err);
			if (st == PST_LINE_MORE) {
				ck_assert_int_eq(err.smtp_code, 0);
				break;
			}
			if (st == PST_LINE_OK) {
				ck_assert_uint_eq(strlen(line), llen);
				snprintf(out + strlen(out), outsize -
				    strlen(out), "[%s]", line);
				continue;
			}
			snprintf(out + strlen(out), outsize - strlen(out),
			    "%s", st == PST_LINE_TOOLONG ? "T" :
			    st == PST_LINE_BAD ? "B" : "F");
			if (st == PST_LINE_FATAL) {
				ck_assert_int_eq(err.smtp_code, 521);
				ck_assert_str_eq(err.esc, "5.5.2");
				fatal = 1;
				break;
			}
			ck_assert_int_eq(err.smtp_code, 500);
			ck_assert_str_eq(err.esc, "5.5.2");
		}
	}
	evbuffer_free(buf);
}

static char long_510[600], long_511[600], long_511cr[700], long_2000[2100];
static char long_bare_lf[700], long_bare_cr[700];

static void
make_long_lines(void)
{
	memset(long_510, 'x', 510);
	strcpy(long_510 + 510, "\r\nQUIT\r\n");
	memset(long_511, 'x', 511);
	strcpy(long_511 + 511, "\r\nQUIT\r\n");
	/* The CR of the CRLF is the 512th byte: skipped, then LF ends it. */
	memset(long_511cr, 'y', 511);
	strcpy(long_511cr + 511, "\r\nNOOP\r\n");
	memset(long_2000, 'z', 2000);
	strcpy(long_2000 + 2000, "\r\nQUIT\r\n");
	memset(long_bare_lf, 'x', 600);
	strcpy(long_bare_lf + 600, "\n.\r\nQUIT\r\n");
	memset(long_bare_cr, 'x', 600);
	strcpy(long_bare_cr + 600, "\rQUIT\r\n");
}

static const struct {
	const char	*name;
	const char	*in;
	size_t		 len;		/* 0: strlen(in) */
	const char	*want;
} vectors[] = {
	{ "one line", "HELO x\r\n", 0, "[HELO x]" },
	{ "two pipelined lines", "MAIL FROM:<>\r\nRCPT TO:<a@b>\r\n", 0,
	    "[MAIL FROM:<>][RCPT TO:<a@b>]" },
	{ "empty line", "\r\n", 0, "[]" },
	{ "partial line waits", "NOOP", 0, "" },
	{ "CR at the end waits", "NOOP\r", 0, "" },
	{ "UTF-8 passes", "NOOP \xc3\xa9\r\n", 0, "[NOOP \xc3\xa9]" },
	{ "bare LF ends nothing", "NOOP\nQUIT\r\n", 0, "F" },
	{ "bare LF alone", "\n", 0, "F" },
	{ "bare CR inside", "NO\rOP\r\n", 0, "F" },
	{ "CR CR LF", "NOOP\r\r\n", 0, "F" },
	{ "bare CR before LF line", "A\r\nB\rC\r\n", 0, "[A]F" },
	{ "LF CR", "NOOP\n\r", 0, "F" },
	{ "NUL refused, session goes on", "NO\0OP\r\nQUIT\r\n", 13,
	    "B[QUIT]" },
	{ "NUL then bare LF is fatal", "A\0\n", 3, "F" },
	{ "smuggled dot LF", "DATA\r\n\n.\n", 0, "[DATA]F" },
};

static const struct {
	const char	*name;
	const char	*in;
	const char	*want;
} long_vectors[] = {
	{ "512 octets with CRLF is fine", long_510, NULL },
	{ "513 octets is too long, reported once", long_511, "T[QUIT]" },
	{ "CR at the bound, LF after it", long_511cr, "T[NOOP]" },
	{ "2000 octets: one report, then the next line", long_2000,
	    "T[QUIT]" },
	{ "bare LF in the skipped part is fatal", long_bare_lf, "TF" },
	{ "bare CR in the skipped part is fatal", long_bare_cr, "TF" },
};

START_TEST(line_vectors_at_every_chunk_size)
{
	char got[TRANSCRIPT_MAX];
	size_t len, chunk;

	len = vectors[_i].len ? vectors[_i].len : strlen(vectors[_i].in);
	for (chunk = 1; chunk <= len; chunk++) {
		transcript(vectors[_i].in, len, PST_LINE_SMTP_MAX, chunk, got,
		    sizeof(got));
		ck_assert_msg(strcmp(got, vectors[_i].want) == 0,
		    "%s, chunk %zu: got \"%s\", want \"%s\"", vectors[_i].name,
		    chunk, got, vectors[_i].want);
	}
}
END_TEST

START_TEST(line_long_vectors)
{
	static const size_t chunks[] = { 1, 2, 3, 7, 64, 511, 512, 513,
	    4096 };
	char got[TRANSCRIPT_MAX], want[TRANSCRIPT_MAX];
	size_t len, i;

	make_long_lines();
	len = strlen(long_vectors[_i].in);
	if (long_vectors[_i].want == NULL)
		snprintf(want, sizeof(want), "[%.510s][QUIT]", long_510);
	else
		snprintf(want, sizeof(want), "%s", long_vectors[_i].want);
	for (i = 0; i < NELEMS(chunks); i++) {
		transcript(long_vectors[_i].in, len, PST_LINE_SMTP_MAX,
		    chunks[i], got, sizeof(got));
		ck_assert_msg(strcmp(got, want) == 0,
		    "%s, chunk %zu: got \"%.40s...\"", long_vectors[_i].name,
		    chunks[i], got);
	}
}
END_TEST

START_TEST(line_drains_exactly_one_line)
{
	struct evbuffer *in = evbuffer_new();
	struct pst_line lr;
	struct pst_err err;
	char line[PST_LINE_SMTP_MAX], rest[32];
	size_t len;

	pst_line_init(&lr, PST_LINE_SMTP_MAX);
	evbuffer_add_printf(in, "DATA\r\nSubject: x\r\n.\r\n");
	ck_assert_int_eq(pst_line_read(&lr, in, line, sizeof(line), &len,
	    &err), PST_LINE_OK);
	ck_assert_str_eq(line, "DATA");
	ck_assert_uint_eq(len, 4);
	ck_assert_uint_eq(evbuffer_get_length(in), 15);
	evbuffer_copyout(in, rest, 15);
	ck_assert(memcmp(rest, "Subject: x\r\n.\r\n", 15) == 0);
	evbuffer_free(in);
}
END_TEST

START_TEST(line_fatal_is_sticky)
{
	struct evbuffer *in = evbuffer_new();
	struct pst_line lr;
	struct pst_err err;
	char line[PST_LINE_SMTP_MAX];
	size_t len;

	pst_line_init(&lr, PST_LINE_SMTP_MAX);
	evbuffer_add_printf(in, "NOOP\nQUIT\r\n");
	ck_assert_int_eq(pst_line_read(&lr, in, line, sizeof(line), &len,
	    &err), PST_LINE_FATAL);
	ck_assert_int_eq(err.cls, PST_PERM);
	ck_assert_int_eq(pst_line_read(&lr, in, line, sizeof(line), &len,
	    &err), PST_LINE_FATAL);
	pst_line_init(&lr, PST_LINE_SMTP_MAX);
	evbuffer_drain(in, evbuffer_get_length(in));
	evbuffer_add_printf(in, "QUIT\r\n");
	ck_assert_int_eq(pst_line_read(&lr, in, line, sizeof(line), &len,
	    &err), PST_LINE_OK);
	evbuffer_free(in);
}
END_TEST

START_TEST(line_small_buffer_lowers_the_bound)
{
	struct evbuffer *in = evbuffer_new();
	struct pst_line lr;
	struct pst_err err;
	char line[8];
	size_t len;

	pst_line_init(&lr, PST_LINE_SMTP_MAX);
	/* 7 bytes and a NUL fit in 8: the bound becomes 9 with CRLF. */
	evbuffer_add_printf(in, "1234567\r\n12345678\r\nok\r\n");
	ck_assert_int_eq(pst_line_read(&lr, in, line, sizeof(line), &len,
	    &err), PST_LINE_OK);
	ck_assert_str_eq(line, "1234567");
	ck_assert_int_eq(pst_line_read(&lr, in, line, sizeof(line), &len,
	    &err), PST_LINE_TOOLONG);
	ck_assert_int_eq(pst_line_read(&lr, in, line, sizeof(line), &len,
	    &err), PST_LINE_OK);
	ck_assert_str_eq(line, "ok");
	ck_assert_int_eq(pst_line_read(&lr, in, line, sizeof(line), &len,
	    &err), PST_LINE_MORE);
	evbuffer_free(in);
}
END_TEST

START_TEST(line_bound_can_grow_after_ehlo)
{
	struct evbuffer *in = evbuffer_new();
	struct pst_line lr;
	struct pst_err err;
	char line[2048], big[1100];
	size_t len;

	memset(big, 'r', 1000);
	big[1000] = '\0';
	pst_line_init(&lr, PST_LINE_SMTP_MAX);
	evbuffer_add_printf(in, "%s\r\n", big);
	ck_assert_int_eq(pst_line_read(&lr, in, line, sizeof(line), &len,
	    &err), PST_LINE_TOOLONG);
	ck_assert_int_eq(pst_line_read(&lr, in, line, sizeof(line), &len,
	    &err), PST_LINE_MORE);
	pst_line_set_max(&lr, 1081);
	evbuffer_add_printf(in, "%s\r\n", big);
	ck_assert_int_eq(pst_line_read(&lr, in, line, sizeof(line), &len,
	    &err), PST_LINE_OK);
	ck_assert_uint_eq(len, 1000);
	evbuffer_free(in);
}
END_TEST

START_TEST(line_skipping_stops_at_an_empty_chain)
{
	struct evbuffer *in = evbuffer_new();
	struct pst_line lr;
	struct pst_err err;
	char line[PST_LINE_SMTP_MAX];
	size_t len;

	/*
	 * An evbuffer can hold an empty chain and no data (evbuffer_expand(),
	 * a read that got nothing); the skipper once spun on it forever.
	 */
	pst_line_init(&lr, 10);
	evbuffer_add_printf(in, "NOOP NOOP NOOP");
	ck_assert_int_eq(pst_line_read(&lr, in, line, sizeof(line), &len,
	    &err), PST_LINE_TOOLONG);
	evbuffer_drain(in, evbuffer_get_length(in));
	ck_assert_int_eq(evbuffer_expand(in, 4096), 0);
	ck_assert_int_eq(pst_line_read(&lr, in, line, sizeof(line), &len,
	    &err), PST_LINE_MORE);
	evbuffer_add_printf(in, "x\r\nQUIT\r\n");
	ck_assert_int_eq(pst_line_read(&lr, in, line, sizeof(line), &len,
	    &err), PST_LINE_OK);
	ck_assert_str_eq(line, "QUIT");
	evbuffer_free(in);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("smtp/line");
	TCase *tc = tcase_create("line");

	tcase_add_loop_test(tc, line_vectors_at_every_chunk_size, 0,
	    NELEMS(vectors));
	tcase_add_loop_test(tc, line_long_vectors, 0, NELEMS(long_vectors));
	tcase_add_test(tc, line_drains_exactly_one_line);
	tcase_add_test(tc, line_fatal_is_sticky);
	tcase_add_test(tc, line_small_buffer_lowers_the_bound);
	tcase_add_test(tc, line_bound_can_grow_after_ehlo);
	tcase_add_test(tc, line_skipping_stops_at_an_empty_chain);
	suite_add_tcase(s, tc);
	return s;
}
