#include <sys/mman.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/codec.h"
#include "common/err.h"
#include "spool/record.h"
#include "spool/spool.h"
#include "unit.h"

#define ID1	UINT64_C(0x0192f3c2a1b04e7f)
#define ID2	UINT64_C(0x0192f3c2a1b04e80)
#define ID3	UINT64_C(0x0192f3c2a1b04e81)

/*
 * A file of records, built in memory.
 */
struct file {
	unsigned char	*p;
	size_t		 len;
	size_t		 off[8];	/* where each record starts */
	size_t		 n;
};

static void
put(struct file *f, const void *p, size_t len)
{
	if (len == 0)
		return;
	f->p = realloc(f->p, f->len + len);
	ck_assert_ptr_nonnull(f->p);
	memcpy(f->p + f->len, p, len);
	f->len += len;
}

/* The envelope text of message 'id' with a body of 'size' bytes. */
static char *
env_text(uint64_t id, uint64_t size, size_t *len)
{
	struct pst_spool_env *env;
	struct pst_err err;
	char *out;

	env = pst_spool_env_new(&err);
	ck_assert_ptr_nonnull(env);
	pst_rec_id_format(id, env->id);
	env->arrival = 1732638178;
	env->size = size;
	ck_assert_int_eq(pst_spool_env_set_sender(env, "a@example.org", &err),
	    0);
	ck_assert_int_eq(pst_spool_env_add_rcpt(env, "b@example.org", 0, NULL,
	    &err), 0);
	ck_assert_int_eq(pst_spool_env_encode(env, &out, len, &err), 0);
	pst_spool_env_free(env);
	return out;
}

/* Appends a record; 'env_id' lets a test name another message. */
static void
add(struct file *f, enum pst_rec_type type, unsigned flags, uint64_t id,
    uint64_t env_id, const void *data, size_t data_len, uint64_t size)
{
	static const unsigned char zeros[PST_REC_ALIGN];
	unsigned char hdr[PST_REC_HEADER];
	struct pst_rec rec;
	size_t env_len = 0, pad;
	char *env = NULL;

	if (type != PST_REC_DEL)
		env = env_text(env_id, size, &env_len);
	memset(&rec, 0, sizeof(rec));
	rec.type = type;
	rec.flags = flags;
	rec.id = id;
	rec.env_len = (uint32_t)env_len;
	rec.data_len = (uint32_t)data_len;
	rec.sum = pst_rec_sum(env, env_len, data, data_len);
	pst_rec_encode(hdr, &rec);
	ck_assert_uint_lt(f->n, NELEMS(f->off));
	f->off[f->n++] = f->len;
	put(f, hdr, sizeof(hdr));
	put(f, env, env_len);
	put(f, data, data_len);
	pad = (size_t)(pst_rec_size(rec.env_len, rec.data_len) -
	    PST_REC_HEADER - env_len - data_len);
	put(f, zeros, pad);
	free(env);
}

static void
add_msg(struct file *f, uint64_t id, const char *body)
{
	add(f, PST_REC_MSG, 0, id, id, body, strlen(body), strlen(body));
}

/* Three records: a message, its new envelope, its removal. */
static void
three(struct file *f)
{
	add_msg(f, ID1, "Subject: x\r\n\r\nhello\r\n");
	add(f, PST_REC_ENV, 0, ID1, ID1, NULL, 0, 21);
	add(f, PST_REC_DEL, 0, ID1, 0, "delivered", 9, 0);
}

/* A descriptor holding the file's bytes. */
static int
fd_of(const struct file *f)
{
	int fd = memfd_create("segment", MFD_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, f->p, f->len), (ssize_t)f->len);
	return fd;
}

/*
 * Reads the first 'len' bytes of 'f' and records what came out: 'R' a
 * record, 'D' damage, 'T' a torn tail; the end is implied.
 */
static void
replay(const struct file *f, size_t len, char *out, size_t outlen,
    struct pst_seg_entry *entries)
{
	static char whys[16][PST_ERR_TEXT_MAX];
	struct pst_seg_reader *r;
	struct pst_seg_entry e;
	struct pst_err err;
	size_t n = 0;
	int fd, item;

	fd = fd_of(f);
	r = pst_seg_reader_new(fd, 0, len, &err);
	ck_assert_ptr_nonnull(r);
	while ((item = pst_seg_next(r, &e, &err)) != PST_SEG_END) {
		ck_assert_int_ne(item, -1);
		ck_assert_uint_lt(n, outlen - 1);
		out[n] = item == PST_SEG_RECORD ? 'R' : e.tail ? 'T' : 'D';
		pst_spool_env_free(e.env);
		e.env = NULL;
		if (entries != NULL) {
			/* 'why' lasts until the next call: keep a copy. */
			snprintf(whys[n], sizeof(whys[n]), "%s",
			    e.why != NULL ? e.why : "");
			entries[n] = e;
			entries[n].why = whys[n];
		}
		n++;
	}
	out[n] = '\0';
	pst_seg_reader_free(r);
	close(fd);
}

START_TEST(header_round_trip)
{
	unsigned char h[PST_REC_HEADER];
	struct pst_rec in = { PST_REC_MSG, PST_REC_EXTERNAL, ID1, 300,
	    PST_REC_EXTREF, 0xdeadbeef }, out;
	const char *why = NULL;

	pst_rec_encode(h, &in);
	ck_assert_mem_eq(h, "PSTR", 4);
	ck_assert_int_eq(pst_rec_decode(h, &out, &why), 0);
	ck_assert_int_eq(out.type, PST_REC_MSG);
	ck_assert_uint_eq(out.flags, PST_REC_EXTERNAL);
	ck_assert_uint_eq(out.id, ID1);
	ck_assert_uint_eq(out.env_len, 300);
	ck_assert_uint_eq(out.data_len, PST_REC_EXTREF);
	ck_assert_uint_eq(out.sum, 0xdeadbeef);
	ck_assert_uint_eq(pst_rec_size(300, 16), 352);
	ck_assert_uint_eq(pst_rec_size(0, 0), 32);
	ck_assert_uint_eq(pst_rec_size(1, 0), 40);
}
END_TEST

/* Any one bit changed in a header is found. */
START_TEST(header_every_bit)
{
	unsigned char h[PST_REC_HEADER];
	struct pst_rec in = { PST_REC_ENV, 0, ID2, 512, 0, 42 }, out;
	const char *why;

	pst_rec_encode(h, &in);
	h[_i / 8] ^= (unsigned char)(1u << (_i % 8));
	ck_assert_int_eq(pst_rec_decode(h, &out, &why), -1);
	ck_assert_ptr_nonnull(why);
}
END_TEST

/* Headers whose sums match but whose fields do not make sense. */
START_TEST(header_bounds)
{
	static const struct {
		struct pst_rec	 rec;
		const char	*why;
	} bad[] = {
		{ { 4, 0, ID1, 10, 0, 0 }, "unknown record type" },
		{ { 0, 0, ID1, 10, 0, 0 }, "unknown record type" },
		{ { PST_REC_MSG, 2, ID1, 10, 0, 0 }, "unknown flags" },
		{ { PST_REC_MSG, 0, ID1, 0, 10, 0 },
		    "message without an envelope" },
		{ { PST_REC_MSG, PST_REC_EXTERNAL, ID1, 10, 15, 0 },
		    "bad reference to an external body" },
		{ { PST_REC_MSG, 0, ID1, PST_SPOOL_ENV_MAX + 1, 0, 0 },
		    "envelope too large" },
		{ { PST_REC_MSG, 0, ID1, 10, PST_REC_DATA_MAX + 1, 0 },
		    "data too large" },
		{ { PST_REC_ENV, 0, ID1, 10, 1, 0 },
		    "envelope record of the wrong shape" },
		{ { PST_REC_ENV, 1, ID1, 10, 0, 0 }, "unknown flags" },
		{ { PST_REC_DEL, 0, ID1, 1, 0, 0 },
		    "removal record of the wrong shape" },
		{ { PST_REC_DEL, 0, ID1, 0, PST_REC_REASON_MAX + 1, 0 },
		    "removal record of the wrong shape" },
	};
	unsigned char h[PST_REC_HEADER];
	struct pst_rec out;
	const char *why = NULL;

	pst_rec_encode(h, &bad[_i].rec);
	ck_assert_int_eq(pst_rec_decode(h, &out, &why), -1);
	ck_assert_str_eq(why, bad[_i].why);
}
END_TEST

START_TEST(reserved_bytes)
{
	unsigned char h[PST_REC_HEADER];
	struct pst_rec in = { PST_REC_DEL, 0, ID1, 0, 4, 0 }, out;
	const char *why = NULL;

	pst_rec_encode(h, &in);
	h[7] = 1;
	memcpy(h + 28, (uint32_t[]){ pst_crc32c(h, 28) }, 4);
	ck_assert_int_eq(pst_rec_decode(h, &out, &why), -1);
	ck_assert_str_eq(why, "reserved bytes not zero");
}
END_TEST

START_TEST(ids)
{
	char s[17];
	uint64_t v;

	pst_rec_id_format(ID1, s);
	ck_assert_str_eq(s, "0192f3c2a1b04e7f");
	ck_assert_int_eq(pst_rec_id_parse(s, &v), 0);
	ck_assert_uint_eq(v, ID1);
	pst_rec_id_format(UINT64_MAX, s);
	ck_assert_str_eq(s, "ffffffffffffffff");
	ck_assert_int_eq(pst_rec_id_parse("0192F3C2A1B04E7F", &v), -1);
	ck_assert_int_eq(pst_rec_id_parse("0192f3c2a1b04e7", &v), -1);
	ck_assert_int_eq(pst_rec_id_parse("0192f3c2a1b04e7f0", &v), -1);
	ck_assert_int_eq(pst_rec_id_parse("0192f3c2a1b04e7g", &v), -1);
}
END_TEST

START_TEST(segment_header)
{
	unsigned char h[PST_SEG_HEADER];
	const char *why = NULL;
	uint64_t seq;
	time_t t;

	pst_seg_header_encode(h, 77, 1732638178);
	ck_assert_mem_eq(h, "PSTSEG02", 8);
	ck_assert_int_eq(pst_seg_header_decode(h, &seq, &t, &why), 0);
	ck_assert_uint_eq(seq, 77);
	ck_assert_int_eq(t, 1732638178);
	h[9] ^= 1;
	ck_assert_int_eq(pst_seg_header_decode(h, &seq, &t, &why), -1);
	ck_assert_str_eq(why, "segment header checksum mismatch");
	memcpy(h, "PSTSEG01", 8);
	ck_assert_int_eq(pst_seg_header_decode(h, &seq, &t, &why), -1);
	ck_assert_str_eq(why, "not a segment of spool format 2");
}
END_TEST

START_TEST(read_records)
{
	struct pst_seg_entry e[8];
	unsigned char ref[PST_REC_EXTREF];
	struct file f = { 0 };
	char got[16];

	three(&f);
	pst_rec_extref_encode(ref, 96, 4000);
	add(&f, PST_REC_MSG, PST_REC_EXTERNAL, ID2, ID2, ref, sizeof(ref),
	    4000);
	put(&f, (char[4096]){ 0 }, 4096);	/* the preallocated rest */
	replay(&f, f.len, got, sizeof(got), e);
	ck_assert_str_eq(got, "RRRR");
	ck_assert_int_eq(e[0].rec.type, PST_REC_MSG);
	ck_assert_uint_eq(e[0].offset, 0);
	ck_assert_uint_eq(e[0].body_length, 21);
	ck_assert_mem_eq(f.p + e[0].body_offset, "Subject: x\r\n", 12);
	ck_assert_int_eq(e[1].rec.type, PST_REC_ENV);
	ck_assert_uint_eq(e[1].offset, f.off[1]);
	ck_assert_int_eq(e[2].rec.type, PST_REC_DEL);
	ck_assert_str_eq(e[2].reason, "delivered");
	ck_assert_uint_eq(e[3].rec.flags, PST_REC_EXTERNAL);
	ck_assert_uint_eq(e[3].body_offset, 96);
	ck_assert_uint_eq(e[3].body_length, 4000);
	free(f.p);
}
END_TEST

/*
 * Cut anywhere, a file gives exactly the records wholly before the cut,
 * and the rest, if not empty, is a torn tail: never damage, never an
 * error.
 */
START_TEST(every_cut)
{
	struct file f = { 0 };
	char got[16], want[16];
	size_t cut, i, whole;

	three(&f);
	for (cut = 0; cut <= f.len; cut++) {
		replay(&f, cut, got, sizeof(got), NULL);
		for (whole = 0, i = 1; i <= f.n; i++)
			if ((i < f.n ? f.off[i] : f.len) <= cut)
				whole = i;
		memset(want, 'R', whole);
		want[whole] = '\0';
		if (cut > (whole < f.n ? f.off[whole] : f.len))
			strcat(want, "T");
		ck_assert_msg(strcmp(got, want) == 0, "cut at %zu: %s, not %s",
		    cut, got, want);
	}
	free(f.p);
}
END_TEST

/* A changed byte in the middle costs that record only. */
START_TEST(damage_in_the_middle)
{
	struct pst_seg_entry e[8];
	struct file f = { 0 };
	char got[16];

	three(&f);
	f.p[f.off[1] + PST_REC_HEADER + 20] ^= 0x20;	/* in the envelope */
	replay(&f, f.len, got, sizeof(got), e);
	ck_assert_str_eq(got, "RDR");
	ck_assert_uint_eq(e[1].offset, f.off[1]);
	ck_assert_uint_eq(e[1].size, f.off[2] - f.off[1]);
	ck_assert_str_eq(e[1].why, "payload checksum mismatch");
	ck_assert_int_eq(e[2].rec.type, PST_REC_DEL);
	free(f.p);
}
END_TEST

/* A header whose lengths cannot be trusted: the next record is found. */
START_TEST(damaged_header)
{
	struct pst_seg_entry e[8];
	struct file f = { 0 };
	char got[16];

	three(&f);
	f.p[f.off[0] + 17] ^= 0x01;	/* the envelope length */
	replay(&f, f.len, got, sizeof(got), e);
	ck_assert_str_eq(got, "DRR");
	ck_assert_str_eq(e[0].why, "header checksum mismatch");
	ck_assert_uint_eq(e[0].size, f.off[1]);
	free(f.p);
}
END_TEST

START_TEST(zeros_in_the_middle)
{
	struct pst_seg_entry e[8];
	struct file f = { 0 };
	char got[16];

	three(&f);
	memset(f.p + f.off[1], 0, f.off[2] - f.off[1]);
	replay(&f, f.len, got, sizeof(got), e);
	ck_assert_str_eq(got, "RDR");
	ck_assert_str_eq(e[1].why, "zeros where a record belongs");
	free(f.p);
}
END_TEST

/* Garbage at the end after good records is a torn tail. */
START_TEST(garbage_tail)
{
	struct pst_seg_entry e[8];
	struct file f = { 0 };
	char got[16];

	three(&f);
	put(&f, "PSTRxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 43);
	put(&f, (char[64]){ 0 }, 64);
	replay(&f, f.len, got, sizeof(got), e);
	ck_assert_str_eq(got, "RRRT");
	ck_assert_uint_eq(e[3].offset, f.off[2] + 48);
	free(f.p);
}
END_TEST

START_TEST(envelope_checks)
{
	struct pst_seg_entry e[8];
	struct file f = { 0 };
	char got[16];

	/* An envelope naming another message. */
	add(&f, PST_REC_MSG, 0, ID1, ID3, "x\r\n", 3, 3);
	/* A body of another length than the envelope says. */
	add(&f, PST_REC_MSG, 0, ID2, ID2, "x\r\n", 3, 4);
	add_msg(&f, ID3, "y\r\n");
	/* A removal reason that is not text. */
	add(&f, PST_REC_DEL, 0, ID3, 0, "gone\n", 5, 0);
	replay(&f, f.len, got, sizeof(got), e);
	ck_assert_str_eq(got, "DDRT");
	ck_assert_str_eq(e[0].why, "envelope of another message");
	ck_assert_str_eq(e[1].why,
	    "body length differs from the envelope's size");
	ck_assert_str_eq(e[3].why, "removal reason not text");
	free(f.p);
}
END_TEST

/* A body larger than the reader's window is summed in pieces. */
START_TEST(large_body)
{
	struct pst_seg_entry e[8];
	struct file f = { 0 };
	size_t n = (3u << 20) + 5, i;
	char *body, got[16];

	body = malloc(n + 1);
	ck_assert_ptr_nonnull(body);
	for (i = 0; i < n; i++)
		body[i] = (char)('a' + i % 26);
	body[n] = '\0';
	add_msg(&f, ID1, body);
	add_msg(&f, ID2, "after\r\n");
	replay(&f, f.len, got, sizeof(got), e);
	ck_assert_str_eq(got, "RR");
	ck_assert_uint_eq(e[0].body_length, n);
	f.p[f.off[0] + PST_REC_HEADER + 300 + (2u << 20)] ^= 1;
	replay(&f, f.len, got, sizeof(got), e);
	ck_assert_str_eq(got, "DR");
	free(body);
	free(f.p);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("spool/record");
	TCase *tc = tcase_create("record");

	tcase_add_test(tc, header_round_trip);
	tcase_add_loop_test(tc, header_every_bit, 0, PST_REC_HEADER * 8);
	tcase_add_loop_test(tc, header_bounds, 0, 11);
	tcase_add_test(tc, reserved_bytes);
	tcase_add_test(tc, ids);
	tcase_add_test(tc, segment_header);
	tcase_add_test(tc, read_records);
	tcase_add_test(tc, every_cut);
	tcase_add_test(tc, damage_in_the_middle);
	tcase_add_test(tc, damaged_header);
	tcase_add_test(tc, zeros_in_the_middle);
	tcase_add_test(tc, garbage_tail);
	tcase_add_test(tc, envelope_checks);
	tcase_add_test(tc, large_body);
	suite_add_tcase(s, tc);
	return s;
}
