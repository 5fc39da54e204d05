#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "spool/index.h"
#include "spool/record.h"
#include "unit.h"

#define ID0	UINT64_C(0x0192f3c2a1b00000)

static struct pst_seg_entry
rec(enum pst_rec_type type, unsigned flags, uint64_t id, uint64_t off)
{
	struct pst_seg_entry e;

	memset(&e, 0, sizeof(e));
	e.rec.type = type;
	e.rec.flags = flags;
	e.rec.id = id;
	e.rec.env_len = 300;
	e.offset = off;
	e.body_offset = off + 332;
	e.body_length = 1000;
	return e;
}

/* Many messages in, every other one out: each is found or not as it should. */
START_TEST(many)
{
	struct spool_idx idx;
	struct pst_seg_entry e;
	struct pst_err err;
	uint64_t i, id, n = 20000;

	spool_idx_init(&idx);
	ck_assert_int_eq(spool_idx_segment(&idx, 1, 0, &err), 0);
	for (i = 0; i < n; i++) {
		/* Ids as the spool makes them: time high, random low. */
		id = (ID0 + (i / 7) * (UINT64_C(1) << 20)) |
		    ((i * 2654435761u) & 0xfffff);
		e = rec(PST_REC_MSG, 0, id, i * 2000);
		ck_assert_int_eq(spool_idx_apply(&idx, 1, &e, &err), 0);
	}
	ck_assert_uint_eq(idx.n, n);
	for (i = 0; i < n; i += 2) {
		id = (ID0 + (i / 7) * (UINT64_C(1) << 20)) |
		    ((i * 2654435761u) & 0xfffff);
		spool_idx_remove(&idx, id);
	}
	ck_assert_uint_eq(idx.n, n / 2);
	for (i = 0; i < n; i++) {
		id = (ID0 + (i / 7) * (UINT64_C(1) << 20)) |
		    ((i * 2654435761u) & 0xfffff);
		if (i % 2 == 0)
			ck_assert_ptr_null(spool_idx_get(&idx, id));
		else {
			ck_assert_ptr_nonnull(spool_idx_get(&idx, id));
			ck_assert_uint_eq(spool_idx_get(&idx, id)->env_off,
			    i * 2000);
		}
	}
	/* Each live message pins segment 1 twice: body and envelope. */
	ck_assert_uint_eq(spool_idx_seg(&idx, 1)->pins, n);
	spool_idx_free(&idx);
}
END_TEST

/*
 * Pins follow the body and the current envelope, and a segment is free
 * only when it is the oldest and nothing pins it.
 */
START_TEST(pins)
{
	struct spool_idx idx;
	struct pst_seg_entry e;
	struct pst_err err;
	struct idx_entry *m;

	spool_idx_init(&idx);
	ck_assert_int_eq(spool_idx_segment(&idx, 1, 0, &err), 0);
	ck_assert_int_eq(spool_idx_segment(&idx, 2, 0, &err), 0);
	ck_assert_int_eq(spool_idx_segment(&idx, 3, 0, &err), 0);
	e = rec(PST_REC_MSG, 0, ID0 + 1, 32);
	spool_idx_apply(&idx, 1, &e, &err);
	e = rec(PST_REC_MSG, PST_REC_EXTERNAL, ID0 + 2, 2000);
	spool_idx_apply(&idx, 1, &e, &err);
	/* Each: its MSG record and its envelope, the bytes of the record. */
	ck_assert_uint_eq(spool_idx_seg(&idx, 1)->pins, 4);
	ck_assert_uint_eq(spool_idx_seg(&idx, 1)->live, 2 * pst_rec_size(300,
	    0));
	/* A new envelope for each, in segment 2. */
	e = rec(PST_REC_ENV, 0, ID0 + 1, 32);
	spool_idx_apply(&idx, 2, &e, &err);
	e = rec(PST_REC_ENV, 0, ID0 + 2, 400);
	spool_idx_apply(&idx, 2, &e, &err);
	m = spool_idx_get(&idx, ID0 + 2);
	ck_assert_uint_eq(m->env_seq, 2);
	ck_assert_uint_eq(m->body, IDX_BODY_EXTERNAL);
	/*
	 * The MSG records stay in 1: without them a replay would not know
	 * the messages, whatever their envelopes say; an external body
	 * pins no less than one in the log.
	 */
	ck_assert_uint_eq(spool_idx_seg(&idx, 1)->pins, 2);
	ck_assert_uint_eq(spool_idx_seg(&idx, 2)->pins, 2);
	ck_assert_uint_eq(spool_idx_seg(&idx, 1)->live, 2 * pst_rec_size(300,
	    0));
	ck_assert_uint_eq(spool_idx_seg(&idx, 2)->live, 2 * pst_rec_size(300,
	    0));
	ck_assert_ptr_null(spool_idx_oldest_free(&idx, 3));
	/* Both copied forward into 3: segments 1 and 2 are free. */
	e = rec(PST_REC_MSG, 0, ID0 + 1, 32);
	spool_idx_apply(&idx, 3, &e, &err);
	ck_assert_uint_eq(spool_idx_seg(&idx, 1)->pins, 1);
	ck_assert_ptr_null(spool_idx_oldest_free(&idx, 3));
	e = rec(PST_REC_ENV, 0, ID0 + 2, 64);
	spool_idx_apply(&idx, 3, &e, &err);
	ck_assert_uint_eq(spool_idx_seg(&idx, 1)->pins, 1);
	e = rec(PST_REC_MSG, PST_REC_EXTERNAL, ID0 + 2, 96);
	spool_idx_apply(&idx, 3, &e, &err);
	ck_assert_uint_eq(spool_idx_seg(&idx, 1)->pins, 0);
	ck_assert_uint_eq(spool_idx_seg(&idx, 2)->pins, 0);
	ck_assert_uint_eq(spool_idx_oldest_free(&idx, 3)->seq, 1);
	spool_idx_forget_seg(&idx, 1);
	ck_assert_uint_eq(spool_idx_oldest_free(&idx, 3)->seq, 2);
	spool_idx_forget_seg(&idx, 2);
	ck_assert_ptr_null(spool_idx_oldest_free(&idx, 3));
	e = rec(PST_REC_DEL, 0, ID0 + 2, 800);
	spool_idx_apply(&idx, 3, &e, &err);
	/* The current segment is never free. */
	e = rec(PST_REC_DEL, 0, ID0 + 1, 900);
	spool_idx_apply(&idx, 3, &e, &err);
	ck_assert_uint_eq(spool_idx_seg(&idx, 3)->pins, 0);
	ck_assert_uint_eq(spool_idx_seg(&idx, 3)->live, 0);
	ck_assert_ptr_null(spool_idx_oldest_free(&idx, 3));
	ck_assert_uint_eq(spool_idx_oldest_free(&idx, 4)->seq, 3);
	/* ENV and DEL of an unknown message change nothing. */
	e = rec(PST_REC_ENV, 0, ID0 + 9, 32);
	ck_assert_int_eq(spool_idx_apply(&idx, 3, &e, &err), 0);
	ck_assert_uint_eq(idx.n, 0);
	/* A drop: no segment pinned. */
	e = rec(PST_REC_MSG, 0, ID0 + 5, 0);
	spool_idx_apply(&idx, 0, &e, &err);
	ck_assert_uint_eq(spool_idx_get(&idx, ID0 + 5)->body, IDX_BODY_DROP);
	ck_assert_uint_eq(spool_idx_seg(&idx, 3)->pins, 0);
	spool_idx_free(&idx);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("spool/index");
	TCase *tc = tcase_create("index");

	tcase_add_test(tc, many);
	tcase_add_test(tc, pins);
	suite_add_tcase(s, tc);
	return s;
}
