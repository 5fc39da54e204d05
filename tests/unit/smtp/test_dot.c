#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "smtp/dot.h"
#include "unit.h"

#define BIG	UINT64_MAX

/* What one run of the DATA reader gave. */
struct result {
	enum pst_dot_status	 st;
	char			*out;
	size_t			 outlen;
	char			*left;		/* input not consumed */
	size_t			 leftlen;
	uint64_t		 size;
	unsigned		 received;
	bool			 eightbit;
	bool			 hdr_8bit;
	int			 code;
	char			 esc[16];
};

static char *
drain_all(struct evbuffer *b, size_t *len)
{
	char *s;

	*len = evbuffer_get_length(b);
	s = malloc(*len + 1);
	ck_assert_ptr_nonnull(s);
	evbuffer_remove(b, s, *len);
	s[*len] = '\0';
	return s;
}

/*
 * Feeds 'in' to a fresh reader in pieces: cuts[] are the offsets where a
 * new chunk starts.  After the reader has finished, the remaining
 * chunks are still added, so that 'left' shows every byte it did not
 * consume.
 */
static void
run_cuts(const char *in, size_t len, uint64_t max_size, size_t max_line,
    const size_t *cuts, size_t ncuts, struct result *r)
{
	struct evbuffer *ib = evbuffer_new(), *ob = evbuffer_new();
	struct pst_dot d;
	struct pst_err err;
	size_t off = 0, next, c = 0;
	bool finished = false;

	memset(r, 0, sizeof(*r));
	r->st = PST_DOT_MORE;
	pst_dot_init(&d, max_size, max_line);
	while (off < len) {
		while (c < ncuts && cuts[c] <= off)
			c++;
		next = c < ncuts ? cuts[c] : len;
		evbuffer_add(ib, in + off, next - off);
		off = next;
		if (finished)
			continue;
		r->st = pst_dot_read(&d, ib, ob, &err);
		if (r->st != PST_DOT_MORE) {
			finished = true;
			r->code = err.smtp_code;
			snprintf(r->esc, sizeof(r->esc), "%s", err.esc);
		} else
			ck_assert_uint_eq(evbuffer_get_length(ib), 0);
	}
	r->out = drain_all(ob, &r->outlen);
	r->left = drain_all(ib, &r->leftlen);
	r->size = d.size;
	r->received = d.hops.count;
	r->eightbit = d.eightbit;
	r->hdr_8bit = d.hdr_8bit;
	evbuffer_free(ib);
	evbuffer_free(ob);
}

static void
run_chunked(const char *in, size_t len, uint64_t max_size, size_t max_line,
    size_t chunk, struct result *r)
{
	size_t *cuts, n = 0, off;

	cuts = calloc(len / chunk + 2, sizeof(*cuts));
	ck_assert_ptr_nonnull(cuts);
	for (off = chunk; off < len; off += chunk)
		cuts[n++] = off;
	run_cuts(in, len, max_size, max_line, cuts, n, r);
	free(cuts);
}

static void
result_free(struct result *r)
{
	free(r->out);
	free(r->left);
}

static void
assert_same(const struct result *a, const struct result *b, const char *what,
    size_t where)
{
	ck_assert_msg(a->st == b->st, "%s @%zu: status %d vs %d", what, where,
	    a->st, b->st);
	ck_assert_msg(a->outlen == b->outlen &&
	    memcmp(a->out, b->out, a->outlen) == 0, "%s @%zu: output differs",
	    what, where);
	ck_assert_msg(a->leftlen == b->leftlen &&
	    memcmp(a->left, b->left, a->leftlen) == 0,
	    "%s @%zu: leftover differs", what, where);
	ck_assert_msg(a->size == b->size && a->received == b->received &&
	    a->eightbit == b->eightbit && a->code == b->code,
	    "%s @%zu: counters differ", what, where);
}

#define F	PST_DOT_FATAL
#define D	PST_DOT_DONE
#define R	PST_DOT_REFUSED
#define M	PST_DOT_MORE

static const struct {
	const char		*name;
	const char		*in;
	size_t			 len;		/* 0: strlen(in) */
	uint64_t		 max_size;
	enum pst_dot_status	 st;
	const char		*out;		/* NULL: not checked */
	const char		*left;
	int			 code;
} vectors[] = {
	/* The end of data, and what it leaves behind. */
	{ "empty message", ".\r\n", 0, BIG, D, "", "", 0 },
	{ "one line", "a\r\n.\r\n", 0, BIG, D, "a\r\n", "", 0 },
	{ "pipelined QUIT stays", "a\r\n.\r\nQUIT\r\n", 0, BIG, D, "a\r\n",
	    "QUIT\r\n", 0 },
	{ "empty line message", "\r\n.\r\n", 0, BIG, D, "\r\n", "", 0 },
	{ "no end yet", "a\r\nb\r\n", 0, BIG, M, "a\r\nb\r\n", "", 0 },
	{ "dot without CRLF yet", "a\r\n.", 0, BIG, M, "a\r\n", "", 0 },
	{ "dot CR without LF yet", "a\r\n.\r", 0, BIG, M, "a\r\n", "", 0 },
	/* Dot-unstuffing (RFC 5321 §4.5.2). */
	{ "doubled dot", "..a\r\n.\r\n", 0, BIG, D, ".a\r\n", "", 0 },
	{ "lone dot line", "a\r\n..\r\n.\r\n", 0, BIG, D, "a\r\n.\r\n", "",
	    0 },
	{ "three dots", "...\r\n.\r\n", 0, BIG, D, "..\r\n", "", 0 },
	{ "single leading dot dropped", ".a\r\n.\r\n", 0, BIG, D, "a\r\n",
	    "", 0 },
	{ "dot not at line start", "a.\r\n.\r\n", 0, BIG, D, "a.\r\n", "",
	    0 },
	{ "space then dot", " .\r\n.\r\n", 0, BIG, D, " .\r\n", "", 0 },
	{ "dot line then text", "a\r\n..\r\nb\r\n.\r\n", 0, BIG, D,
	    "a\r\n.\r\nb\r\n", "", 0 },
	{ "end then more DATA-like bytes", "x\r\n.\r\n.\r\n", 0, BIG, D,
	    "x\r\n", ".\r\n", 0 },
	/* Smuggling: only CRLF.CRLF ends DATA; the rest is fatal. */
	{ "LF dot LF", "a\n.\n", 0, BIG, F, NULL, NULL, 521 },
	{ "CR dot CR", "a\r.\r", 0, BIG, F, NULL, NULL, 521 },
	{ "LF dot CRLF", "a\n.\r\n", 0, BIG, F, NULL, NULL, 521 },
	{ "CRLF dot LF", "a\r\n.\n", 0, BIG, F, NULL, NULL, 521 },
	{ "CRLF dot CR CRLF", "a\r\n.\r\r\n", 0, BIG, F, NULL, NULL, 521 },
	{ "CRLF dot CR LF-less", "a\r\n.\rX\r\n.\r\n", 0, BIG, F, NULL, NULL,
	    521 },
	{ "CR CRLF dot CRLF", "a\r\r\n.\r\n", 0, BIG, F, NULL, NULL, 521 },
	{ "dot LF first", ".\n", 0, BIG, F, NULL, NULL, 521 },
	{ "LF first", "\n.\r\n", 0, BIG, F, NULL, NULL, 521 },
	{ "bare CR in text", "a\rb\r\n.\r\n", 0, BIG, F, NULL, NULL, 521 },
	{ "bare LF in text", "a\nb\r\n.\r\n", 0, BIG, F, NULL, NULL, 521 },
	{ "LF CR", "a\n\r\n.\r\n", 0, BIG, F, NULL, NULL, 521 },
	{ "dot dot LF", "a\r\n..\n.\r\n", 0, BIG, F, NULL, NULL, 521 },
	{ "fatal leaves the rest", "a\n.\nMAIL FROM:<x@y>\r\n", 0, BIG, F,
	    NULL, ".\nMAIL FROM:<x@y>\r\n", 521 },
	/* Refusals that keep the session. */
	{ "NUL refused at the end", "a\0b\r\n.\r\nQUIT\r\n", 14, BIG, R, NULL,
	    "QUIT\r\n", 554 },
	{ "size: exact fit", "12345\r\n.\r\n", 0, 7, D, "12345\r\n", "", 0 },
	{ "size: one over", "12345\r\n.\r\n", 0, 6, R, NULL, "", 552 },
	{ "size: stuffing dot not counted", "..345\r\n.\r\n", 0, 6, D,
	    ".345\r\n", "", 0 },
	{ "size refusal finds the end", "12345\r\n67890\r\n.\r\nQUIT\r\n", 0,
	    3, R, NULL, "QUIT\r\n", 552 },
	{ "bare LF after size refusal is still fatal", "12345\n.\r\n", 0, 3,
	    F, NULL, NULL, 521 },
};

START_TEST(dot_vectors_at_every_split)
{
	struct result one, two, bytes;
	size_t len, k;

	len = vectors[_i].len ? vectors[_i].len : strlen(vectors[_i].in);
	run_cuts(vectors[_i].in, len, vectors[_i].max_size, PST_DOT_LINE_MAX,
	    NULL, 0, &one);
	ck_assert_msg(one.st == vectors[_i].st, "%s: status %d",
	    vectors[_i].name, one.st);
	ck_assert_int_eq(one.code, vectors[_i].code);
	if (vectors[_i].out != NULL)
		ck_assert_msg(one.outlen == strlen(vectors[_i].out) &&
		    memcmp(one.out, vectors[_i].out, one.outlen) == 0,
		    "%s: output \"%s\"", vectors[_i].name, one.out);
	if (vectors[_i].left != NULL)
		ck_assert_msg(one.leftlen == strlen(vectors[_i].left) &&
		    memcmp(one.left, vectors[_i].left, one.leftlen) == 0,
		    "%s: left \"%s\"", vectors[_i].name, one.left);
	if (one.st == PST_DOT_FATAL || one.st == PST_DOT_REFUSED)
		ck_assert_str_eq(one.esc, one.st == PST_DOT_FATAL ? "5.5.2" :
		    one.code == 552 ? "5.3.4" : "5.6.0");

	/* Every two-chunk split, then one byte at a time. */
	for (k = 1; k < len; k++) {
		run_cuts(vectors[_i].in, len, vectors[_i].max_size,
		    PST_DOT_LINE_MAX, &k, 1, &two);
		assert_same(&one, &two, vectors[_i].name, k);
		result_free(&two);
	}
	run_chunked(vectors[_i].in, len, vectors[_i].max_size,
	    PST_DOT_LINE_MAX, 1, &bytes);
	assert_same(&one, &bytes, vectors[_i].name, 0);
	result_free(&bytes);
	result_free(&one);
}
END_TEST

START_TEST(dot_counts_received_fields_in_header_only)
{
	static const char msg[] =
	    "Received: from a\r\n"
	    "\tby b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	    "received : from c\r\n"
	    "RECEIVED:from d\r\n"
	    ".Received: stuffed\r\n"
	    "X-Received: no\r\n"
	    "ReceivedX: no\r\n"
	    "Receive: no\r\n"
	    " Received: continuation\r\n"
	    "Subject: x\r\n"
	    "\r\n"
	    "Received: in the body\r\n"
	    ".\r\n";
	struct result r, c;
	size_t k;

	run_cuts(msg, strlen(msg), BIG, PST_DOT_LINE_MAX, NULL, 0, &r);
	ck_assert_int_eq(r.st, PST_DOT_DONE);
	ck_assert_uint_eq(r.received, 4);
	ck_assert(!r.eightbit);
	for (k = 1; k < strlen(msg); k++) {
		run_cuts(msg, strlen(msg), BIG, PST_DOT_LINE_MAX, &k, 1, &c);
		assert_same(&r, &c, "received", k);
		result_free(&c);
	}
	result_free(&r);
}
END_TEST

START_TEST(dot_reports_size_and_eightbit)
{
	struct result r;

	run_cuts("caf\xc3\xa9\r\n..\r\n.\r\n", 14, BIG, PST_DOT_LINE_MAX,
	    NULL, 0, &r);
	ck_assert_int_eq(r.st, PST_DOT_DONE);
	ck_assert(r.eightbit);
	ck_assert_uint_eq(r.size, 10);
	ck_assert_uint_eq(r.outlen, 10);
	result_free(&r);

	/* After a size refusal, output stops but counting goes on. */
	run_cuts("12345\r\n67890\r\n.\r\n", 17, 4, PST_DOT_LINE_MAX, NULL, 0,
	    &r);
	ck_assert_int_eq(r.st, PST_DOT_REFUSED);
	ck_assert_uint_le(r.outlen, 4);
	ck_assert_uint_eq(r.size, 14);
	result_free(&r);
}
END_TEST

/* 8-bit in the header section is told apart from 8-bit in the body. */
START_TEST(dot_reports_eightbit_in_the_header_section)
{
	static const char body8[] = "Subject: hi\r\n\r\nGr\xc3\xbc\xc3\x9f"
	    "e\r\n.\r\n";
	static const char hdr8[] = "Subject: Gr\xc3\xbc\xc3\x9f" "e\r\n"
	    "\r\nx\r\n.\r\n";
	static const char cont8[] = "Subject: a\r\n \xc3\xa9\r\n\r\n.\r\n";
	static const char nohdr[] = "\r\n\xc3\xa9\r\n.\r\n";
	struct result r;

	run_cuts(body8, sizeof(body8) - 1, BIG, PST_DOT_LINE_MAX, NULL, 0,
	    &r);
	ck_assert_int_eq(r.st, PST_DOT_DONE);
	ck_assert(r.eightbit && !r.hdr_8bit);
	result_free(&r);
	run_cuts(hdr8, sizeof(hdr8) - 1, BIG, PST_DOT_LINE_MAX, NULL, 0, &r);
	ck_assert(r.eightbit && r.hdr_8bit);
	result_free(&r);
	/* A continuation line is part of its field. */
	run_cuts(cont8, sizeof(cont8) - 1, BIG, PST_DOT_LINE_MAX, NULL, 0,
	    &r);
	ck_assert(r.hdr_8bit);
	result_free(&r);
	/* An empty first line: no header section at all. */
	run_cuts(nohdr, sizeof(nohdr) - 1, BIG, PST_DOT_LINE_MAX, NULL, 0,
	    &r);
	ck_assert(r.eightbit && !r.hdr_8bit);
	result_free(&r);
}
END_TEST

static char *
line_of(size_t n, const char *prefix, const char *suffix)
{
	size_t p = strlen(prefix), s = strlen(suffix);
	char *m = malloc(p + n + s + 1);

	ck_assert_ptr_nonnull(m);
	memcpy(m, prefix, p);
	memset(m + p, 'x', n);
	memcpy(m + p + n, suffix, s + 1);
	return m;
}

START_TEST(dot_line_length_limit)
{
	struct result r;
	char *m;

	/* 998 + CRLF = 1000 octets: fine (RFC 5321 §4.5.3.1.6). */
	m = line_of(998, "", "\r\n.\r\n");
	run_chunked(m, strlen(m), BIG, PST_DOT_LINE_MAX, 7, &r);
	ck_assert_int_eq(r.st, PST_DOT_DONE);
	ck_assert_uint_eq(r.outlen, 1000);
	result_free(&r);
	free(m);

	/* 999 + CRLF = 1001: refused, but only at the end, session kept. */
	m = line_of(999, "", "\r\nnext\r\n.\r\nQUIT\r\n");
	run_chunked(m, strlen(m), BIG, PST_DOT_LINE_MAX, 13, &r);
	ck_assert_int_eq(r.st, PST_DOT_REFUSED);
	ck_assert_int_eq(r.code, 554);
	ck_assert_str_eq(r.left, "QUIT\r\n");
	ck_assert_uint_eq(r.size, 1001 + 6);
	result_free(&r);
	free(m);

	/* The transparency dot does not count: 1001 on the wire is fine. */
	m = line_of(997, "..", "\r\n.\r\n");
	run_chunked(m, strlen(m), BIG, PST_DOT_LINE_MAX, 1, &r);
	ck_assert_int_eq(r.st, PST_DOT_DONE);
	ck_assert_uint_eq(r.outlen, 1000);
	ck_assert_int_eq(r.out[0], '.');
	ck_assert_int_eq(r.out[1], 'x');
	result_free(&r);
	free(m);

	/* No bound: 100000 octets in one line. */
	m = line_of(100000, "", "\r\n.\r\n");
	run_chunked(m, strlen(m), BIG, 0, 4096, &r);
	ck_assert_int_eq(r.st, PST_DOT_DONE);
	ck_assert_uint_eq(r.outlen, 100002);
	result_free(&r);
	free(m);
}
END_TEST

START_TEST(dot_reader_must_be_reinitialised)
{
	struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
	struct pst_dot d;
	struct pst_err err;

	pst_dot_init(&d, BIG, PST_DOT_LINE_MAX);
	evbuffer_add(in, ".\r\n.\r\n", 6);
	ck_assert_int_eq(pst_dot_read(&d, in, out, &err), PST_DOT_DONE);
	ck_assert_int_eq(err.cls, PST_OK);
	ck_assert_int_eq(pst_dot_read(&d, in, out, &err), PST_DOT_FATAL);
	ck_assert_int_eq(err.cls, PST_LOCAL);
	ck_assert_uint_eq(evbuffer_get_length(in), 3);
	pst_dot_init(&d, BIG, PST_DOT_LINE_MAX);
	ck_assert_int_eq(pst_dot_read(&d, in, out, &err), PST_DOT_DONE);
	ck_assert_uint_eq(evbuffer_get_length(in), 0);
	ck_assert_uint_eq(evbuffer_get_length(out), 0);
	evbuffer_free(in);
	evbuffer_free(out);
}
END_TEST

/*
 * Encodes 'len' bytes of 'in', 'chunk' bytes at a time, finishes the
 * stream and returns it (malloc'd, NUL terminated).
 */
static char *
encode(const char *in, size_t len, size_t chunk, size_t *outlen)
{
	struct evbuffer *ob = evbuffer_new();
	struct pst_dot_enc e;
	struct pst_err err;
	size_t off, n;
	char *s;

	pst_dot_enc_init(&e);
	for (off = 0; off < len; off += n) {
		n = len - off < chunk ? len - off : chunk;
		ck_assert_int_eq(pst_dot_encode(&e, in + off, n, ob, &err), 0);
	}
	ck_assert_int_eq(pst_dot_encode_finish(&e, ob, &err), 0);
	s = drain_all(ob, outlen);
	evbuffer_free(ob);
	return s;
}

static const struct {
	const char	*in;
	const char	*out;
} encodings[] = {
	{ "", ".\r\n" },
	{ "a\r\n", "a\r\n.\r\n" },
	{ "a", "a\r\n.\r\n" },
	{ ".", "..\r\n.\r\n" },
	{ ".\r\n", "..\r\n.\r\n" },
	{ "a\r\n.b\r\n", "a\r\n..b\r\n.\r\n" },
	{ "a\r\n..\r\n", "a\r\n...\r\n.\r\n" },
	{ "a.b\r\n", "a.b\r\n.\r\n" },
	{ "\r\n.\r\n", "\r\n..\r\n.\r\n" },
	/* Bare line breaks become CRLF: nothing can pass for the end. */
	{ "a\nb", "a\r\nb\r\n.\r\n" },
	{ "a\n.\n", "a\r\n..\r\n.\r\n" },
	{ "a\r.\r", "a\r\n..\r\n.\r\n" },
	{ "a\r", "a\r\n.\r\n" },
	{ "a\r\r\n", "a\r\n\r\n.\r\n" },
	{ "\n.", "\r\n..\r\n.\r\n" },
	{ "a\n\r.", "a\r\n\r\n..\r\n.\r\n" },
};

START_TEST(dot_encode_vectors_at_every_chunk_size)
{
	const char *in = encodings[_i].in;
	size_t len = strlen(in), chunk, n;
	char *got;

	for (chunk = 1; chunk <= len + 1; chunk++) {
		got = encode(in, len, chunk, &n);
		ck_assert_msg(strcmp(got, encodings[_i].out) == 0,
		    "#%d chunk %zu: got \"%s\"", _i, chunk, got);
		free(got);
	}
}
END_TEST

/*
 * Random messages with CRLF lines, many dots and empty lines, encoded
 * and decoded again in random chunks: the message comes back unchanged.
 */
START_TEST(dot_round_trip_random)
{
	struct result r;
	size_t len, k, lines, l, ll, enclen, *cuts, ncuts;
	char *msg, *enc, *wire;
	int round;

	srandom(4552);
	for (round = 0; round < 300; round++) {
		lines = (size_t)random() % 40;
		msg = malloc(lines * 70 + 1);
		ck_assert_ptr_nonnull(msg);
		len = 0;
		for (l = 0; l < lines; l++) {
			ll = (size_t)random() % 66;
			for (k = 0; k < ll; k++) {
				long x = random() % 100;
				int c;

				if (x < 30)
					c = '.';
				else {
					/* Any byte but NUL, CR and LF. */
					do
						c = 1 + (int)(random() % 255);
					while (c == '\r' || c == '\n');
				}
				msg[len++] = (char)c;
			}
			msg[len++] = '\r';
			msg[len++] = '\n';
		}
		enc = encode(msg, len, 1 + (size_t)random() % 50, &enclen);
		/* Something pipelined after the end must survive. */
		wire = malloc(enclen + 6);
		ck_assert_ptr_nonnull(wire);
		memcpy(wire, enc, enclen);
		memcpy(wire + enclen, "QUIT\r\n", 6);
		cuts = malloc((enclen + 6) * sizeof(*cuts));
		ck_assert_ptr_nonnull(cuts);
		for (ncuts = 0, k = 1; k < enclen + 6; k++)
			if (random() % 7 == 0)
				cuts[ncuts++] = k;
		run_cuts(wire, enclen + 6, BIG, PST_DOT_LINE_MAX, cuts, ncuts,
		    &r);
		ck_assert_int_eq(r.st, PST_DOT_DONE);
		ck_assert_uint_eq(r.outlen, len);
		ck_assert(memcmp(r.out, msg, len) == 0);
		ck_assert_uint_eq(r.size, len);
		ck_assert_uint_eq(r.leftlen, 6);
		result_free(&r);
		free(cuts);
		free(wire);
		free(enc);
		free(msg);
	}
}
END_TEST

/*
 * Whatever the input, bare line breaks included, the encoder's output is
 * a valid DATA stream: the reader takes it without a fatal error and
 * ends exactly at its end.
 */
START_TEST(dot_encoder_output_always_valid)
{
	static const char alphabet[] = "..\r\n\r\nab\0";
	struct result r;
	char msg[200], *enc;
	size_t len, k, enclen;
	int round;

	srandom(51764);
	for (round = 0; round < 3000; round++) {
		len = (size_t)random() % sizeof(msg);
		for (k = 0; k < len; k++)
			msg[k] = alphabet[random() % (sizeof(alphabet) - 1)];
		enc = encode(msg, len, 1 + (size_t)random() % 9, &enclen);
		run_chunked(enc, enclen, BIG, PST_DOT_LINE_MAX,
		    1 + (size_t)random() % 5, &r);
		ck_assert_msg(r.st == PST_DOT_DONE ||
		    (r.st == PST_DOT_REFUSED && memchr(msg, '\0', len) != NULL),
		    "round %d: status %d", round, r.st);
		ck_assert_uint_eq(r.leftlen, 0);
		result_free(&r);
		free(enc);
	}
}
END_TEST

START_TEST(dot_reader_stops_at_an_empty_chain)
{
	struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
	struct pst_dot d;
	struct pst_err err;

	/*
	 * An evbuffer can hold an empty chain and no data (evbuffer_expand(),
	 * a read that got nothing); the reader once spun on it forever.
	 */
	pst_dot_init(&d, UINT64_MAX, PST_DOT_LINE_MAX);
	ck_assert_int_eq(evbuffer_expand(in, 4096), 0);
	ck_assert_int_eq(pst_dot_read(&d, in, out, &err), PST_DOT_MORE);
	evbuffer_add_printf(in, "x\r\n.\r\n");
	ck_assert_int_eq(pst_dot_read(&d, in, out, &err), PST_DOT_DONE);
	ck_assert_uint_eq(evbuffer_get_length(out), 3);
	evbuffer_free(in);
	evbuffer_free(out);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("smtp/dot");
	TCase *rd = tcase_create("read");
	TCase *wr = tcase_create("encode");

	tcase_add_loop_test(rd, dot_vectors_at_every_split, 0,
	    NELEMS(vectors));
	tcase_add_test(rd, dot_counts_received_fields_in_header_only);
	tcase_add_test(rd, dot_reports_size_and_eightbit);
	tcase_add_test(rd, dot_reports_eightbit_in_the_header_section);
	tcase_add_test(rd, dot_line_length_limit);
	tcase_add_test(rd, dot_reader_must_be_reinitialised);
	tcase_add_test(rd, dot_reader_stops_at_an_empty_chain);
	suite_add_tcase(s, rd);
	tcase_add_loop_test(wr, dot_encode_vectors_at_every_chunk_size, 0,
	    NELEMS(encodings));
	tcase_add_test(wr, dot_round_trip_random);
	tcase_add_test(wr, dot_encoder_output_always_valid);
	suite_add_tcase(s, wr);
	return s;
}
