/*
 * fuzz_spool_record.c: the reader of spool format 2 records
 * (spool/record.h), over a file made of the input.
 *
 * With the first byte odd the harness mends the sums: from the start,
 * for as long as a header fits, it writes the magic, the payload's sum
 * and the header's sum into each header and steps over the record, so
 * the fuzzer gets past the checksums to the lengths, types and
 * envelopes; with it even the rest is the file as it is.  Checked: the
 * reader never fails on a file it can read; every item starts where the
 * one before it ended and moves on; a record's header encodes back to the
 * bytes read; no record follows damage said to be a torn tail; an
 * inline body lies inside the file; a message or envelope
 * record carries an envelope of the header's id and a removal none; the
 * end comes once and last.
 */
#include <sys/mman.h>

#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "common/codec.h"
#include "common/err.h"
#include "spool/record.h"
#include "spool/spool.h"
#include "fuzz.h"

/* Writes correct sums into every header that fits, one after another. */
static void
mend(unsigned char *p, size_t len)
{
	struct pst_rec rec;
	uint64_t off = 0, size, payload;
	const char *why;

	while (len - off >= PST_REC_HEADER) {
		memcpy(p + off, "PSTR", 4);
		memcpy(p + off + 28, (uint32_t[]){ pst_crc32c(p + off, 28) },
		    4);
		if (pst_rec_decode(p + off, &rec, &why) == -1)
			return;
		size = pst_rec_size(rec.env_len, rec.data_len);
		payload = (uint64_t)rec.env_len + rec.data_len;
		if (size > len - off)
			return;
		rec.sum = pst_crc32c(p + off + PST_REC_HEADER, payload);
		pst_rec_encode(p + off, &rec);
		off += size;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct pst_seg_reader *r;
	struct pst_seg_entry e;
	unsigned char *buf, hdr[PST_REC_HEADER];
	struct pst_err err;
	char id[PST_SPOOL_ID_LEN + 1];
	uint64_t pos = 0;
	bool tail = false;
	int fd, item;

	if ((buf = malloc(size + 1)) == NULL)
		abort();
	if (fuzz_byte(&in, 0) & 1) {
		memcpy(buf, in.p, in.len);
		mend(buf, in.len);
	} else if (in.len > 0)
		memcpy(buf, in.p, in.len);
	if ((fd = memfd_create("segment", MFD_CLOEXEC)) == -1 ||
	    write(fd, buf, in.len) != (ssize_t)in.len)
		abort();

	r = pst_seg_reader_new(fd, 0, in.len, &err);
	FUZZ_CHECK(r != NULL);
	for (;;) {
		item = pst_seg_next(r, &e, &err);
		FUZZ_CHECK(item != -1);
		FUZZ_CHECK(e.offset == pos);
		if (item == PST_SEG_END)
			break;
		FUZZ_CHECK(e.size > 0 && e.size <= in.len - pos);
		pos += e.size;
		if (item == PST_SEG_DAMAGE) {
			FUZZ_CHECK(e.env == NULL && e.why != NULL);
			tail = tail || e.tail;
			continue;
		}
		FUZZ_CHECK(!tail);
		pst_rec_encode(hdr, &e.rec);
		FUZZ_CHECK(memcmp(hdr, buf + e.offset, sizeof(hdr)) == 0);
		FUZZ_CHECK((e.env == NULL) == (e.rec.type == PST_REC_DEL));
		if (e.env != NULL) {
			pst_rec_id_format(e.rec.id, id);
			FUZZ_CHECK(strcmp(e.env->id, id) == 0);
		}
		if (e.rec.type == PST_REC_MSG)
			FUZZ_CHECK(e.env->size == e.body_length);
		if (e.rec.type == PST_REC_MSG &&
		    (e.rec.flags & PST_REC_EXTERNAL) == 0)
			FUZZ_CHECK(e.body_offset + e.body_length <= pos);
		pst_spool_env_free(e.env);
	}
	FUZZ_CHECK(pst_seg_next(r, &e, &err) == PST_SEG_END);
	pst_seg_reader_free(r);
	close(fd);
	free(buf);
	return 0;
}
