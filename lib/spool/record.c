/*
 * record.c: the records of spool format 2, and reading a file of them.
 *
 * The reader trusts nothing it has not checked: a length only once the
 * header's sum matches, a payload only once its own does, an envelope
 * only once it decodes and names the header's id.  What fails is damage;
 * where the next record starts is then found by looking, not assumed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/codec.h"
#include "common/err.h"
#include "spool/record.h"
#include "spool/spool.h"

static const unsigned char rec_magic[4] = { 'P', 'S', 'T', 'R' };
static const unsigned char zero_word[PST_REC_ALIGN];
static const unsigned char seg_magic[8] = {
	'P', 'S', 'T', 'S', 'E', 'G', '0', '2',
};
#define WINDOW		(1u << 20)	/* bytes the reader holds at once */

/*
 * Little-endian fields.
 */

static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static void
put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint64_t
get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/*
 * Records.
 */

uint64_t
pst_rec_size(uint32_t env_len, uint32_t data_len)
{
	uint64_t n = PST_REC_HEADER + (uint64_t)env_len + data_len;

	return (n + PST_REC_ALIGN - 1) & ~(uint64_t)(PST_REC_ALIGN - 1);
}

uint32_t
pst_rec_sum(const void *env, size_t env_len, const void *data,
    size_t data_len)
{
	return pst_crc32c_more(pst_crc32c(env, env_len), data, data_len);
}

void
pst_rec_encode(unsigned char out[PST_REC_HEADER], const struct pst_rec *rec)
{
	memcpy(out, rec_magic, sizeof(rec_magic));
	out[4] = (unsigned char)rec->type;
	out[5] = (unsigned char)rec->flags;
	out[6] = out[7] = 0;
	put64(out + 8, rec->id);
	put32(out + 16, rec->env_len);
	put32(out + 20, rec->data_len);
	put32(out + 24, rec->sum);
	put32(out + 28, pst_crc32c(out, 28));
}

/* What each type may carry; NULL when 'rec' is within bounds. */
static const char *
rec_bounds(const struct pst_rec *rec)
{
	if (rec->env_len > PST_SPOOL_ENV_MAX)
		return "envelope too large";
	if (rec->data_len > PST_REC_DATA_MAX)
		return "data too large";
	switch (rec->type) {
	case PST_REC_MSG:
		if ((rec->flags & ~PST_REC_EXTERNAL) != 0)
			return "unknown flags";
		if (rec->env_len == 0)
			return "message without an envelope";
		if ((rec->flags & PST_REC_EXTERNAL) != 0 &&
		    rec->data_len != PST_REC_EXTREF)
			return "bad reference to an external body";
		return NULL;
	case PST_REC_ENV:
		if (rec->flags != 0)
			return "unknown flags";
		if (rec->env_len == 0 || rec->data_len != 0)
			return "envelope record of the wrong shape";
		return NULL;
	case PST_REC_DEL:
		if (rec->flags != 0)
			return "unknown flags";
		if (rec->env_len != 0 || rec->data_len > PST_REC_REASON_MAX)
			return "removal record of the wrong shape";
		return NULL;
	}
	return "unknown record type";
}

int
pst_rec_decode(const unsigned char in[PST_REC_HEADER], struct pst_rec *rec,
    const char **why)
{
	if (memcmp(in, rec_magic, sizeof(rec_magic)) != 0) {
		*why = "bad magic";
		return -1;
	}
	if (get32(in + 28) != pst_crc32c(in, 28)) {
		*why = "header checksum mismatch";
		return -1;
	}
	if (in[6] != 0 || in[7] != 0) {
		*why = "reserved bytes not zero";
		return -1;
	}
	rec->type = (enum pst_rec_type)in[4];
	rec->flags = in[5];
	rec->id = get64(in + 8);
	rec->env_len = get32(in + 16);
	rec->data_len = get32(in + 20);
	rec->sum = get32(in + 24);
	return (*why = rec_bounds(rec)) == NULL ? 0 : -1;
}

void
pst_rec_extref_encode(unsigned char out[PST_REC_EXTREF], uint64_t offset,
    uint64_t length)
{
	put64(out, offset);
	put64(out + 8, length);
}

void
pst_rec_extref_decode(const unsigned char in[PST_REC_EXTREF],
    uint64_t *offset, uint64_t *length)
{
	*offset = get64(in);
	*length = get64(in + 8);
}

int
pst_rec_id_parse(const char *s, uint64_t *id)
{
	uint64_t v = 0;
	int i, d;

	for (i = 0; i < PST_SPOOL_ID_LEN; i++) {
		if ((d = pst_hex_value((unsigned char)s[i], PST_HEX_LOWER)) < 0)
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	if (s[i] != '\0')
		return -1;
	*id = v;
	return 0;
}

void
pst_rec_id_format(uint64_t id, char out[17])
{
	int i;

	for (i = PST_SPOOL_ID_LEN - 1; i >= 0; i--, id >>= 4)
		out[i] = pst_hex_digit(id & 0xf, false);
	out[PST_SPOOL_ID_LEN] = '\0';
}

/*
 * Segment headers.
 */

void
pst_seg_header_encode(unsigned char out[PST_SEG_HEADER], uint64_t seq,
    time_t created)
{
	memcpy(out, seg_magic, sizeof(seg_magic));
	put64(out + 8, seq);
	put64(out + 16, (uint64_t)created);
	put32(out + 24, 0);
	put32(out + 28, pst_crc32c(out, 28));
}

int
pst_seg_header_decode(const unsigned char in[PST_SEG_HEADER], uint64_t *seq,
    time_t *created, const char **why)
{
	if (memcmp(in, seg_magic, sizeof(seg_magic)) != 0) {
		*why = "not a segment of spool format 2";
		return -1;
	}
	if (get32(in + 28) != pst_crc32c(in, 28)) {
		*why = "segment header checksum mismatch";
		return -1;
	}
	if (get32(in + 24) != 0) {
		*why = "segment header reserved bytes not zero";
		return -1;
	}
	*seq = get64(in + 8);
	*created = (time_t)get64(in + 16);
	return 0;
}

/*
 * The reader.
 */

struct pst_seg_reader {
	int		 fd;
	uint64_t	 pos;		/* where the next item starts */
	uint64_t	 end;
	unsigned char	*buf;		/* the window: file bytes */
	uint64_t	 buf_off;	/* file offset of buf[0] */
	size_t		 buf_len;
	char		 why[PST_ERR_TEXT_MAX];	/* of the record checked */
	char		 damage[PST_ERR_TEXT_MAX]; /* of the damage reported */
};

struct pst_seg_reader *
pst_seg_reader_new(int fd, uint64_t start, uint64_t end, struct pst_err *err)
{
	struct pst_seg_reader *r;

	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->buf = malloc(WINDOW)) == NULL) {
		free(r);
		pst_err_sys(err, PST_TEMP, PST_STAGE_SPOOL, ENOMEM,
		    "reading a segment");
		return NULL;
	}
	r->fd = fd;
	r->pos = start;
	r->end = end;
	return r;
}

void
pst_seg_reader_free(struct pst_seg_reader *r)
{
	if (r == NULL)
		return;
	free(r->buf);
	free(r);
}

/*
 * Points '*p' at the 'len' (at most WINDOW) file bytes from 'off'.
 * Returns 1, 0 when the file ends before them, -1 with 'err'.
 */
static int
window(struct pst_seg_reader *r, uint64_t off, size_t len,
    const unsigned char **p, struct pst_err *err)
{
	size_t want, got;
	ssize_t n;

	*p = r->buf;	/* whatever the outcome: never left unset */
	if (off > r->end || len > r->end - off)
		return 0;
	if (off >= r->buf_off && off + len <= r->buf_off + r->buf_len) {
		*p = r->buf + (off - r->buf_off);
		return 1;
	}
	want = r->end - off < WINDOW ? (size_t)(r->end - off) : WINDOW;
	r->buf_off = off;
	r->buf_len = 0;
	for (got = 0; got < want; got += (size_t)n) {
		n = pread(r->fd, r->buf + got, want - got, (off_t)(off + got));
		if (n == -1 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n == -1)
			return pst_err_sys(err, PST_TEMP, PST_STAGE_SPOOL,
			    errno, "reading a segment at offset %llu",
			    (unsigned long long)off + got);
		if (n == 0)
			break;	/* shorter than it was: what is there counts */
	}
	r->buf_len = got;
	if (got < len) {
		r->end = off + got;
		return 0;
	}
	*p = r->buf;
	return 1;
}

/* The CRC-32C of 'len' file bytes from 'off', continuing 'crc'. */
static int
sum_range(struct pst_seg_reader *r, uint64_t off, uint64_t len,
    uint32_t *crc, struct pst_err *err)
{
	const unsigned char *p;
	size_t n;
	int rc;

	while (len > 0) {
		n = len < WINDOW ? (size_t)len : WINDOW;
		if ((rc = window(r, off, n, &p, err)) != 1)
			return rc;
		*crc = pst_crc32c_more(*crc, p, n);
		off += n;
		len -= n;
	}
	return 1;
}

/* Whether the 'len' file bytes from 'off' are zeros: 1, 0, or -1. */
static int
zero_range(struct pst_seg_reader *r, uint64_t off, uint64_t len,
    struct pst_err *err)
{
	const unsigned char *p;
	size_t n, i;
	int rc;

	while (len > 0) {
		n = len < WINDOW ? (size_t)len : WINDOW;
		if ((rc = window(r, off, n, &p, err)) != 1)
			return rc == 0 ? 0 : -1;
		for (i = 0; i < n; i++)
			if (p[i] != 0)
				return 0;
		off += n;
		len -= n;
	}
	return 1;
}

/* Decodes the envelope of the record at 'off' into 'e'; 1, 0 or -1. */
static int
read_env(struct pst_seg_reader *r, uint64_t off, struct pst_seg_entry *e,
    struct pst_err *err)
{
	const struct pst_rec *rec = &e->rec;
	const unsigned char *p;
	struct pst_err derr;
	char *copy = NULL, id[PST_SPOOL_ID_LEN + 1];
	ssize_t n;
	int rc;

	if (rec->env_len <= WINDOW) {
		if ((rc = window(r, off + PST_REC_HEADER, rec->env_len, &p,
		    err)) != 1)
			return rc;
	} else {
		if ((copy = malloc(rec->env_len)) == NULL)
			return pst_err_sys(err, PST_TEMP, PST_STAGE_SPOOL,
			    ENOMEM, "reading an envelope");
		n = pread(r->fd, copy, rec->env_len,
		    (off_t)(off + PST_REC_HEADER));
		if (n != (ssize_t)rec->env_len) {
			free(copy);
			return pst_err_sys(err, PST_TEMP, PST_STAGE_SPOOL,
			    n == -1 ? errno : EIO, "reading an envelope");
		}
		p = (const unsigned char *)copy;
	}
	pst_err_clear(&derr);
	e->env = pst_spool_env_decode((const char *)p, rec->env_len, &derr);
	free(copy);
	if (e->env == NULL) {
		if (derr.cls == PST_TEMP) {
			*err = derr;
			return -1;
		}
		snprintf(r->why, sizeof(r->why), "envelope: %s", derr.text);
		e->why = r->why;
		return 0;
	}
	pst_rec_id_format(rec->id, id);
	if (strcmp(e->env->id, id) != 0) {
		e->why = "envelope of another message";
		return 0;
	}
	return 1;
}

/* Reads the data of a DEL or an EXTERNAL MSG into 'e'; 1, 0 or -1. */
static int
read_data(struct pst_seg_reader *r, uint64_t off, struct pst_seg_entry *e,
    struct pst_err *err)
{
	const struct pst_rec *rec = &e->rec;
	uint64_t data = off + PST_REC_HEADER + rec->env_len;
	const unsigned char *p;
	uint32_t i;
	int rc;

	if (rec->type == PST_REC_ENV)
		return 1;
	if (rec->type == PST_REC_MSG &&
	    (rec->flags & PST_REC_EXTERNAL) == 0) {
		e->body_offset = data;
		e->body_length = rec->data_len;
	} else {
		if ((rc = window(r, data, rec->data_len, &p, err)) != 1)
			return rc;
		if (rec->type == PST_REC_MSG) {
			pst_rec_extref_decode(p, &e->body_offset,
			    &e->body_length);
		} else {
			for (i = 0; i < rec->data_len; i++)
				if (p[i] < 0x20 || p[i] > 0x7e) {
					e->why = "removal reason not text";
					return 0;
				}
			memcpy(e->reason, p, rec->data_len);
			e->reason[rec->data_len] = '\0';
		}
	}
	if (e->env != NULL && e->env->size != e->body_length) {
		e->why = "body length differs from the envelope's size";
		return 0;
	}
	return 1;
}

/*
 * Checks the record at 'off' whole and fills 'e' with it.  Returns 1 for
 * a good record, 0 for damage ('e->why'), -1 with 'err'.
 */
static int
check_record(struct pst_seg_reader *r, uint64_t off, struct pst_seg_entry *e,
    struct pst_err *err)
{
	const unsigned char *p;
	uint64_t size, payload;
	uint32_t crc = 0;
	int rc;

	memset(e, 0, sizeof(*e));
	e->offset = off;
	if ((rc = window(r, off, PST_REC_HEADER, &p, err)) != 1) {
		e->why = "cut short";
		return rc;
	}
	if (pst_rec_decode(p, &e->rec, &e->why) == -1)
		return 0;
	size = pst_rec_size(e->rec.env_len, e->rec.data_len);
	payload = (uint64_t)e->rec.env_len + e->rec.data_len;
	if (off > r->end || size > r->end - off) {
		e->why = "cut short";
		return 0;
	}
	e->size = size;		/* the header is whole: trust its lengths */
	if ((rc = sum_range(r, off + PST_REC_HEADER, payload, &crc,
	    err)) != 1) {
		e->why = "cut short";
		return rc;
	}
	if (crc != e->rec.sum) {
		e->why = "payload checksum mismatch";
		return 0;
	}
	if ((rc = zero_range(r, off + PST_REC_HEADER + payload,
	    size - PST_REC_HEADER - payload, err)) != 1) {
		e->why = "padding not zero";
		return rc;
	}
	if (e->rec.type != PST_REC_DEL &&
	    (rc = read_env(r, off, e, err)) != 1)
		goto bad;
	if ((rc = read_data(r, off, e, err)) != 1)
		goto bad;
	return 1;
bad:
	pst_spool_env_free(e->env);
	e->env = NULL;
	return rc;
}

/*
 * The offset of the next good record from 'from' (after it, when
 * 'after'), or r->end when there is none; '*zeros' tells whether every
 * byte before it was zero.
 */
static int
resync(struct pst_seg_reader *r, uint64_t from, bool after, uint64_t *next,
    bool *zeros, struct pst_err *err)
{
	struct pst_seg_entry probe;
	const unsigned char *p;
	uint64_t c, w;
	size_t n, i;
	int rc;

	*zeros = true;
	*next = r->end;
	/*
	 * A window at a time: the preallocated rest of a segment cut short
	 * by a crash is megabytes of zeros, looked at on every start.
	 */
	for (c = from; c < r->end; c += n) {
		n = r->end - c < WINDOW ? (size_t)(r->end - c) : WINDOW;
		if ((rc = window(r, c, n, &p, err)) != 1)
			return rc == 0 ? 0 : -1;
		for (i = 0; i < n; i += PST_REC_ALIGN) {
			if (n - i >= PST_REC_ALIGN) {
				memcpy(&w, p + i, sizeof(w));
				if (w == 0)
					continue;
			}
			if ((c + i > from || !after) && n - i >= 4 &&
			    memcmp(p + i, rec_magic, sizeof(rec_magic)) == 0) {
				if ((rc = check_record(r, c + i, &probe,
				    err)) == -1)
					return -1;
				pst_spool_env_free(probe.env);
				if (rc == 1) {
					*next = c + i;
					return 0;
				}
				/* The probe moved the window. */
				if ((rc = window(r, c, n, &p, err)) != 1)
					return rc == 0 ? 0 : -1;
			}
			if (memcmp(p + i, zero_word, n - i < PST_REC_ALIGN ?
			    n - i : PST_REC_ALIGN) != 0)
				*zeros = false;
		}
	}
	return 0;
}

int
pst_seg_next(struct pst_seg_reader *r, struct pst_seg_entry *e,
    struct pst_err *err)
{
	uint64_t next, from, size;
	bool zeros;
	int rc;

	if (r->pos >= r->end) {
		memset(e, 0, sizeof(*e));
		e->offset = r->end;
		return PST_SEG_END;
	}
	if ((rc = check_record(r, r->pos, e, err)) == -1)
		return -1;
	if (rc == 1) {
		r->pos += e->size;
		return PST_SEG_RECORD;
	}
	/* The probes of resync() reuse r->why. */
	snprintf(r->damage, sizeof(r->damage), "%s", e->why);
	from = r->pos + e->size;
	if (resync(r, from, e->size == 0, &next, &zeros, err) == -1)
		return -1;
	if (e->size != 0) {
		/* A whole header says where the bad record ends. */
		zeros = false;
		size = e->size;
	} else
		size = next - r->pos;
	memset(e, 0, sizeof(*e));
	e->offset = r->pos;
	e->size = size;
	r->pos += size;
	if (next >= r->end && zeros)
		return PST_SEG_END;
	e->why = zeros ? "zeros where a record belongs" : r->damage;
	e->tail = next >= r->end;
	return PST_SEG_DAMAGE;
}
