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
	    a->eightbit == b->eightbit && a->hdr_8bit == b->hdr_8bit &&
	    a->code == b->code, "%s @%zu: counters differ", what, where);
}

/*
 * The reader as it was written before it took runs of text in one step:
 * one byte at a time, over the whole input at once.  The reader must give
 * what this gives, however its input is cut.
 */
enum ref_state { REF_BOL, REF_DOT, REF_DOT_CR, REF_TEXT, REF_CR };
enum ref_step { REF_KEEP, REF_DROP, REF_END, REF_BARE };

struct ref {
	enum ref_state	 state;
	uint64_t	 max_size;
	size_t		 max_line;
	size_t		 line_len;
	bool		 in_header;
	bool		 too_big, too_long, nul;
	struct pst_hops	 hops;
};

static void
ref_count(struct ref *f, struct result *r, unsigned char c)
{
	if (++r->size > f->max_size)
		f->too_big = true;
	if (f->line_len < SIZE_MAX)
		f->line_len++;
	if (f->max_line != 0 && f->line_len > f->max_line)
		f->too_long = true;
	if (c >= 0x80) {
		r->eightbit = true;
		r->hdr_8bit = r->hdr_8bit || f->in_header;
	}
	if (c == '\0')
		f->nul = true;
	if (!f->hops.done)
		pst_hops_feed(&f->hops, &c, 1);
}

static enum ref_step
ref_step(struct ref *f, struct result *r, unsigned char c)
{
	switch (f->state) {
	case REF_BOL:
		f->line_len = 0;
		if (c == '.') {
			f->state = REF_DOT;
			return REF_DROP;
		}
		break;
	case REF_DOT:
		if (c == '\r') {
			f->state = REF_DOT_CR;
			return REF_DROP;
		}
		break;
	case REF_DOT_CR:
		return c == '\n' ? REF_END : REF_BARE;
	case REF_CR:
		if (c != '\n')
			return REF_BARE;
		ref_count(f, r, c);
		if (f->line_len == 2)
			f->in_header = false;
		f->state = REF_BOL;
		return REF_KEEP;
	case REF_TEXT:
		break;
	}
	if (c == '\n')
		return REF_BARE;
	ref_count(f, r, c);
	f->state = c == '\r' ? REF_CR : REF_TEXT;
	return REF_KEEP;
}

static void
ref_read(const char *in, size_t len, uint64_t max_size, size_t max_line,
    struct result *r)
{
	struct ref f;
	enum ref_step st = REF_KEEP;
	size_t i, n = 0;

	memset(r, 0, sizeof(*r));
	memset(&f, 0, sizeof(f));
	f.state = REF_BOL;
	f.max_size = max_size;
	f.max_line = max_line;
	f.in_header = true;
	pst_hops_init(&f.hops);
	r->out = malloc(len + 1);
	r->left = malloc(len + 1);
	ck_assert(r->out != NULL && r->left != NULL);
	for (i = 0; i < len && st != REF_END && st != REF_BARE; i++) {
		st = ref_step(&f, r, (unsigned char)in[i]);
		/* Output stops at the first reason to refuse. */
		if (st == REF_KEEP && !f.too_big && !f.too_long && !f.nul)
			r->out[n++] = in[i];
	}
	r->outlen = n;
	r->out[n] = '\0';
	r->leftlen = len - i;
	memcpy(r->left, in + i, len - i);
	r->left[len - i] = '\0';
	r->received = f.hops.count;
	r->st = PST_DOT_MORE;
	if (st == REF_BARE) {
		r->st = PST_DOT_FATAL;
		r->code = 521;
	} else if (st == REF_END && (f.too_big || f.too_long || f.nul)) {
		r->st = PST_DOT_REFUSED;
		r->code = f.too_big ? 552 : 554;
	} else if (st == REF_END)
		r->st = PST_DOT_DONE;
}

/*
 * Reads 'in' whole, checks that against the reference, then feeds it
 * in chunks of every size from 1 to its length: each must read the same.
 */
static void
check_every_chunk_size(const char *in, size_t len, uint64_t max_size,
    size_t max_line, const char *what)
{
	struct result whole, ref, part;
	size_t chunk;

	run_cuts(in, len, max_size, max_line, NULL, 0, &whole);
	ref_read(in, len, max_size, max_line, &ref);
	assert_same(&ref, &whole, what, 0);
	for (chunk = 1; chunk < len; chunk++) {
		run_chunked(in, len, max_size, max_line, chunk, &part);
		assert_same(&whole, &part, what, chunk);
		result_free(&part);
	}
	result_free(&ref);
	result_free(&whole);
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

/* Appends 'n' bytes 'c' to 'b'. */
static void
add_run(struct evbuffer *b, int c, size_t n)
{
	char x[256];
	size_t k;

	memset(x, c, sizeof(x));
	for (; n > 0; n -= k) {
		k = n < sizeof(x) ? n : sizeof(x);
		ck_assert_int_eq(evbuffer_add(b, x, k), 0);
	}
}

/*
 * Long runs of text with what can end one in them: a line break, a
 * leading dot, 8-bit bytes, a NUL, a bare CR or LF, and limits that fall
 * inside a run.  Each reads the same in chunks of any size as whole, and
 * as the byte machine reads it.
 */
START_TEST(dot_runs_read_alike_at_every_chunk_size)
{
	static const struct {
		uint64_t	 max_size;
		size_t		 max_line;
	} limits[] = {
		{ BIG, PST_DOT_LINE_MAX }, { BIG, 0 }, { BIG, 64 },
		{ 120, PST_DOT_LINE_MAX }, { 300, 64 },
	};
	struct evbuffer *b;
	size_t len, l;
	char *m, what[32];
	int k;

	for (k = 0; k < 4; k++) {
		b = evbuffer_new();
		evbuffer_add_printf(b, "Received: from a\r\n");
		evbuffer_add_printf(b, "Subject: Gr\xc3\xbc");
		add_run(b, 's', 60);
		evbuffer_add_printf(b, "\r\n\r\n");
		add_run(b, 'a', 200);
		evbuffer_add_printf(b, "\r\n..leading dot\r\n.x\r\n");
		add_run(b, 'b', 70);
		evbuffer_add_printf(b, "\xe9");
		add_run(b, 'b', 70);
		if (k == 1)
			evbuffer_add(b, "\0", 1);
		else if (k == 2)
			evbuffer_add(b, "\r", 1);
		else if (k == 3)
			evbuffer_add(b, "\n", 1);
		add_run(b, 'c', 40);
		evbuffer_add_printf(b, "\r\n.\r\nQUIT\r\n");
		m = drain_all(b, &len);
		evbuffer_free(b);
		for (l = 0; l < NELEMS(limits); l++) {
			snprintf(what, sizeof(what), "message %d limits %zu", k,
			    l);
			check_every_chunk_size(m, len, limits[l].max_size,
			    limits[l].max_line, what);
		}
		free(m);
	}
}
END_TEST

/*
 * A limit crossed inside a run stops the output at the byte that
 * crossed it, as the byte machine does; counting goes on to the end.
 */
START_TEST(dot_limit_crossed_inside_a_run)
{
	struct evbuffer *b = evbuffer_new();
	struct result r;
	size_t len;
	char *m;

	evbuffer_add_printf(b, "ab\r\n");
	add_run(b, 'x', 1500);
	evbuffer_add_printf(b, "\r\n.\r\nQUIT\r\n");
	m = drain_all(b, &len);

	run_cuts(m, len, BIG, PST_DOT_LINE_MAX, NULL, 0, &r);
	ck_assert_int_eq(r.st, PST_DOT_REFUSED);
	ck_assert_int_eq(r.code, 554);
	ck_assert_uint_eq(r.outlen, 4 + PST_DOT_LINE_MAX);
	ck_assert(memcmp(r.out, m, r.outlen) == 0);
	ck_assert_uint_eq(r.size, 4 + 1502);
	ck_assert_str_eq(r.left, "QUIT\r\n");
	result_free(&r);

	run_cuts(m, len, 100, PST_DOT_LINE_MAX, NULL, 0, &r);
	ck_assert_int_eq(r.st, PST_DOT_REFUSED);
	ck_assert_int_eq(r.code, 552);
	ck_assert_uint_eq(r.outlen, 100);
	ck_assert(memcmp(r.out, m, r.outlen) == 0);
	ck_assert_uint_eq(r.size, 4 + 1502);
	result_free(&r);

	/* The line limit is crossed first; the size is still reported. */
	run_cuts(m, len, 50, 30, NULL, 0, &r);
	ck_assert_int_eq(r.st, PST_DOT_REFUSED);
	ck_assert_int_eq(r.code, 552);
	ck_assert_uint_eq(r.outlen, 4 + 30);
	result_free(&r);

	/* Exactly at the size limit: nothing crossed. */
	run_cuts(m, len, 4 + 1502, 0, NULL, 0, &r);
	ck_assert_int_eq(r.st, PST_DOT_DONE);
	ck_assert_uint_eq(r.outlen, 4 + 1502);
	result_free(&r);
	free(m);
	evbuffer_free(b);
}
END_TEST

/*
 * A chunk that ends in the CR after a run: the CR is written at once,
 * and the next chunk decides whether it was a line end.
 */
START_TEST(dot_cr_ends_a_chunk_after_a_run)
{
	static const struct {
		const char		*next;
		enum pst_dot_status	 st;
		const char		*left;
	} cases[] = {
		{ "\n.\r\nQUIT\r\n", PST_DOT_DONE, "QUIT\r\n" },
		{ "\n", PST_DOT_MORE, "" },
		{ "y\r\n.\r\n", PST_DOT_FATAL, "\r\n.\r\n" },
		{ "\r\n.\r\n", PST_DOT_FATAL, "\n.\r\n" },
	};
	struct evbuffer *in, *out;
	struct pst_dot d;
	struct pst_err err;
	size_t k;

	for (k = 0; k < NELEMS(cases); k++) {
		in = evbuffer_new();
		out = evbuffer_new();
		pst_dot_init(&d, BIG, PST_DOT_LINE_MAX);
		add_run(in, 'x', 500);
		evbuffer_add(in, "\r", 1);
		ck_assert_int_eq(pst_dot_read(&d, in, out, &err),
		    PST_DOT_MORE);
		ck_assert_uint_eq(evbuffer_get_length(out), 501);
		ck_assert_int_eq(evbuffer_pullup(out, -1)[500], '\r');
		evbuffer_add(in, cases[k].next, strlen(cases[k].next));
		ck_assert_int_eq(pst_dot_read(&d, in, out, &err), cases[k].st);
		ck_assert_uint_eq(evbuffer_get_length(in),
		    strlen(cases[k].left));
		if (cases[k].st != PST_DOT_FATAL)
			ck_assert_uint_eq(evbuffer_get_length(out), 502);
		evbuffer_free(in);
		evbuffer_free(out);
	}
}
END_TEST

/* A leading dot right after a long run is still a transparency dot. */
START_TEST(dot_leading_dot_after_a_long_run)
{
	struct evbuffer *b = evbuffer_new(), *want = evbuffer_new();
	struct result r;
	size_t len, wlen, k;
	char *m, *w;

	add_run(b, 'y', 2000);
	evbuffer_add_printf(b, "\r\n..z\r\n.a\r\n");
	add_run(b, 'y', 2000);
	evbuffer_add_printf(b, "\r\n.\r\n");
	m = drain_all(b, &len);
	add_run(want, 'y', 2000);
	evbuffer_add_printf(want, "\r\n.z\r\na\r\n");
	add_run(want, 'y', 2000);
	evbuffer_add_printf(want, "\r\n");
	w = drain_all(want, &wlen);

	run_cuts(m, len, BIG, 0, NULL, 0, &r);
	ck_assert_int_eq(r.st, PST_DOT_DONE);
	ck_assert(r.outlen == wlen && memcmp(r.out, w, wlen) == 0);
	ck_assert_uint_eq(r.size, wlen);
	result_free(&r);
	for (k = 1990; k < 2015; k++) {
		run_cuts(m, len, BIG, 0, &k, 1, &r);
		ck_assert_msg(r.st == PST_DOT_DONE && r.outlen == wlen &&
		    memcmp(r.out, w, wlen) == 0, "cut at %zu", k);
		result_free(&r);
	}
	free(m);
	free(w);
	evbuffer_free(b);
	evbuffer_free(want);
}
END_TEST

/*
 * Reads a message with 'c' at offset 'at' of a run of 'runlen' bytes, in
 * the header section or the body, and checks what it says of 8-bit.
 */
static void
eightbit_in_run(bool body, size_t runlen, size_t at, unsigned char c)
{
	struct evbuffer *b = evbuffer_new();
	struct result r;
	size_t len;
	char *m;

	evbuffer_add_printf(b, body ? "S: a\r\n\r\nb" : "S: ");
	add_run(b, 'q', at);
	evbuffer_add(b, &c, 1);
	add_run(b, 'q', runlen - at - 1);
	evbuffer_add_printf(b, body ? "\r\n.\r\n" : "\r\n\r\nb\r\n.\r\n");
	m = drain_all(b, &len);
	run_cuts(m, len, BIG, PST_DOT_LINE_MAX, NULL, 0, &r);
	ck_assert_int_eq(r.st, PST_DOT_DONE);
	ck_assert_msg(r.eightbit == (c >= 0x80) &&
	    r.hdr_8bit == (c >= 0x80 && !body),
	    "body %d run %zu at %zu byte %#x", body, runlen, at, c);
	result_free(&r);
	free(m);
	evbuffer_free(b);
}

/*
 * An 8-bit byte at any place in a run of any length, in the header
 * section or the body, is seen; 0x7f is not 8-bit.
 */
START_TEST(dot_eightbit_anywhere_in_a_run)
{
	static const unsigned char bytes[] = { 0x7f, 0x80, 0xe9, 0xff };
	size_t runlen, at, k;

	for (runlen = 1; runlen <= 24; runlen++) {
		for (at = 0; at < runlen; at++) {
			for (k = 0; k < NELEMS(bytes); k++) {
				eightbit_in_run(false, runlen, at, bytes[k]);
				eightbit_in_run(true, runlen, at, bytes[k]);
			}
		}
	}
}
END_TEST

/*
 * Random DATA-like bytes into 'buf' ('size' bytes at most): runs of
 * letters of any length, 8-bit bytes, dots, line breaks, header-looking
 * lines, empty lines, now and then an end of data, and with 'bare' lone
 * CRs, LFs and NULs.  Returns the length.
 */
static size_t
random_text(char *buf, size_t size, bool bare)
{
	size_t n = 0, k, run;
	long x;

	while (n + 16 < size) {
		x = random() % 100;
		if (x < 30) {
			run = 1 + (size_t)random() % 300;
			if (run > size - 16 - n)
				run = size - 16 - n;
			for (k = 0; k < run; k++)
				buf[n++] = (char)('a' + random() % 26);
		} else if (x < 40)
			buf[n++] = (char)(0x80 + random() % 128);
		else if (x < 55)
			n += (size_t)sprintf(buf + n, "\r\n");
		else if (x < 70)
			buf[n++] = '.';
		else if (x < 75)
			n += (size_t)sprintf(buf + n, "\r\nReceived:");
		else if (x < 80)
			n += (size_t)sprintf(buf + n, "\r\n\r\n");
		else if (x < 82)
			n += (size_t)sprintf(buf + n, "\r\n.\r\n");
		else if (bare && x < 84)
			buf[n++] = '\r';
		else if (bare && x < 86)
			buf[n++] = '\n';
		else if (bare && x < 88)
			buf[n++] = '\0';
		else
			buf[n++] = ' ';
	}
	n += (size_t)sprintf(buf + n, "\r\n.\r\n");
	return n;
}

static int
size_cmp(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The reader against the byte machine kept above, on random input cut
 * at random places, with random limits.
 */
START_TEST(dot_reader_matches_the_byte_machine)
{
	static char msg[3000];
	struct result r, ref;
	uint64_t max_size;
	size_t len, max_line, cuts[64], ncuts, k;
	int round;

	srandom(30);
	for (round = 0; round < 3000; round++) {
		len = random_text(msg, 64 + (size_t)random() % 2900,
		    round % 4 == 0);
		max_size = random() % 3 == 0 ? 1 + (uint64_t)random() % len :
		    BIG;
		switch (random() % 3) {
		case 0:
			max_line = 0;
			break;
		case 1:
			max_line = PST_DOT_LINE_MAX;
			break;
		default:
			max_line = 1 + (size_t)random() % 100;
			break;
		}
		ncuts = (size_t)random() % NELEMS(cuts);
		for (k = 0; k < ncuts; k++)
			cuts[k] = 1 + (size_t)random() % (len - 1);
		/* run_cuts() wants them in order. */
		qsort(cuts, ncuts, sizeof(cuts[0]), size_cmp);
		ref_read(msg, len, max_size, max_line, &ref);
		run_cuts(msg, len, max_size, max_line, cuts, ncuts, &r);
		assert_same(&ref, &r, "random", (size_t)round);
		result_free(&r);
		result_free(&ref);
	}
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
	/* Longer runs of text between the line breaks. */
	{ "abcdefghijklmnop\r\n.qrstuvwxyz", "abcdefghijklmnop\r\n..qrstuvwxyz"
	    "\r\n.\r\n" },
	{ "abcdefghij\rklmnopqrst\n.uvwxyz.\r", "abcdefghij\r\nklmnopqrst"
	    "\r\n..uvwxyz.\r\n.\r\n" },
	{ "abcdefghij.\r\n\r\n..klmnopqrst", "abcdefghij.\r\n\r\n...klmnop"
	    "qrst\r\n.\r\n" },
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
 * The encoder as it was written before it skipped to the next line
 * break: one byte at a time, the whole input at once, ".\r\n" included.
 * 'out' has room for 3 * len + 5 bytes.  Returns the length written.
 */
static size_t
ref_encode(const char *in, size_t len, char *out)
{
	enum { BOL, TEXT, CR } st = BOL;
	const char *end;
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		if (st == CR) {
			st = BOL;
			if (in[i] == '\n') {
				out[n++] = in[i];
				continue;
			}
			out[n++] = '\n';
		}
		if (st == BOL && in[i] == '.')
			out[n++] = '.';
		if (in[i] == '\n')
			out[n++] = '\r';
		out[n++] = in[i];
		st = in[i] == '\r' ? CR : in[i] == '\n' ? BOL : TEXT;
	}
	end = st == CR ? "\n.\r\n" : st == TEXT ? "\r\n.\r\n" : ".\r\n";
	memcpy(out + n, end, strlen(end));
	return n + strlen(end);
}

/*
 * The encoder against the byte machine kept above, on random input
 * with bare line breaks: in chunks of every size for short input, of a
 * random size for longer.
 */
START_TEST(dot_encode_matches_the_byte_machine)
{
	static char msg[3000], want[3 * sizeof(msg) + 5];
	size_t len, wlen, chunk, n;
	char *got;
	int round;

	srandom(5321);
	for (round = 0; round < 1000; round++) {
		len = random_text(msg, 32 + (size_t)random() % 2968, true);
		/* Some messages end without a line break. */
		len -= (size_t)random() % 3;
		wlen = ref_encode(msg, len, want);
		if (len < 200) {
			for (chunk = 1; chunk <= len; chunk++) {
				got = encode(msg, len, chunk, &n);
				ck_assert_msg(n == wlen &&
				    memcmp(got, want, n) == 0,
				    "round %d chunk %zu", round, chunk);
				free(got);
			}
		}
		chunk = 1 + (size_t)random() % len;
		got = encode(msg, len, chunk, &n);
		ck_assert_msg(n == wlen && memcmp(got, want, n) == 0,
		    "round %d chunk %zu", round, chunk);
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
	tcase_add_test(rd, dot_runs_read_alike_at_every_chunk_size);
	tcase_add_test(rd, dot_limit_crossed_inside_a_run);
	tcase_add_test(rd, dot_cr_ends_a_chunk_after_a_run);
	tcase_add_test(rd, dot_leading_dot_after_a_long_run);
	tcase_add_test(rd, dot_eightbit_anywhere_in_a_run);
	tcase_add_test(rd, dot_reader_matches_the_byte_machine);
	tcase_add_test(rd, dot_reader_must_be_reinitialised);
	tcase_add_test(rd, dot_reader_stops_at_an_empty_chain);
	suite_add_tcase(s, rd);
	tcase_add_loop_test(wr, dot_encode_vectors_at_every_chunk_size, 0,
	    NELEMS(encodings));
	tcase_add_test(wr, dot_encode_matches_the_byte_machine);
	tcase_add_test(wr, dot_round_trip_random);
	tcase_add_test(wr, dot_encoder_output_always_valid);
	suite_add_tcase(s, wr);
	return s;
}
