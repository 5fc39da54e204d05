/*
 * record.h: the records of spool format 2 (doc/spool.md, "Format 2: the
 * log") and the reader of a segment or drop file made of them.
 *
 * A record is a 32-byte header, an envelope (the text record of
 * spool.h), data, and zero bytes up to a multiple of 8:
 *
 *   0  magic "PSTR"      16 envelope bytes   24 CRC-32C of envelope+data
 *   4  type, flags, 0    20 data bytes       28 CRC-32C of bytes 0-27
 *   8  id
 *
 * Little-endian.  The header carries a sum of its own so that a reader
 * trusts its lengths only when the header is whole.  Writing records
 * (the log's writer) and replaying them (recovery, the queue tool) both
 * build on this file; it does no I/O but the reader's pread().
 */
#ifndef PST_SPOOL_RECORD_H
#define PST_SPOOL_RECORD_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct pst_err;
struct pst_spool_env;

#define PST_REC_HEADER		32
#define PST_REC_ALIGN		8
#define PST_REC_DATA_MAX	(64u << 20)	/* inline body and more */
#define PST_REC_REASON_MAX	1000		/* data of a DEL record */
#define PST_REC_EXTREF		16		/* data of an EXTERNAL MSG */

enum pst_rec_type {
	PST_REC_MSG = 1,	/* a message: envelope and body */
	PST_REC_ENV = 2,	/* its envelope replaced */
	PST_REC_DEL = 3,	/* it is gone; data: the reason */
};

#define PST_REC_EXTERNAL	0x01	/* MSG: the body is in bodies/ID */

struct pst_rec {
	enum pst_rec_type	 type;
	unsigned		 flags;		/* PST_REC_* */
	uint64_t		 id;
	uint32_t		 env_len;
	uint32_t		 data_len;
	uint32_t		 sum;		/* CRC-32C of envelope, data */
};

/*
 * pst_rec_size()
 * Bytes the record takes in a file, header and padding included.
 */
uint64_t pst_rec_size(uint32_t env_len, uint32_t data_len);

/*
 * pst_rec_sum()
 * The payload sum of an envelope and data as they will be written.
 */
uint32_t pst_rec_sum(const void *env, size_t env_len, const void *data,
	    size_t data_len);

/*
 * pst_rec_encode()
 * Writes the header of 'rec' (its sum already set) into 'out'.
 */
void	pst_rec_encode(unsigned char out[PST_REC_HEADER],
	    const struct pst_rec *rec);

/*
 * pst_rec_decode()
 * Reads a header and checks everything it alone can tell: the magic,
 * its sum, a known type, zero where zero belongs, and bounds (envelope
 * at most PST_SPOOL_ENV_MAX, data at most PST_REC_DATA_MAX, and what
 * each type carries).  Returns 0, or -1 with '*why' saying what is
 * wrong ("bad magic", "header checksum mismatch"...).
 */
int	pst_rec_decode(const unsigned char in[PST_REC_HEADER],
	    struct pst_rec *rec, const char **why);

/*
 * The data of an EXTERNAL MSG: where in bodies/ID the body lies.
 */
void	pst_rec_extref_encode(unsigned char out[PST_REC_EXTREF],
	    uint64_t offset, uint64_t length);
void	pst_rec_extref_decode(const unsigned char in[PST_REC_EXTREF],
	    uint64_t *offset, uint64_t *length);

/*
 * Ids as numbers: the 16 hex digits of a queue id are a 64-bit number.
 * pst_rec_id_parse() returns -1 for a string that is not an id.
 */
int	pst_rec_id_parse(const char *s, uint64_t *id);
void	pst_rec_id_format(uint64_t id, char out[17]);

/*
 * The segment header: "PSTSEG02", the sequence number, the creation
 * time, four zero bytes, a CRC-32C of the 28 bytes before it.
 */
#define PST_SEG_HEADER		32

void	pst_seg_header_encode(unsigned char out[PST_SEG_HEADER],
	    uint64_t seq, time_t created);
int	pst_seg_header_decode(const unsigned char in[PST_SEG_HEADER],
	    uint64_t *seq, time_t *created, const char **why);

/*
 * Reading a file of records: a segment (after its header) or a drop.
 *
 * pst_seg_next() returns the next thing found from the reader's
 * position:
 *
 *   PST_SEG_RECORD  a whole record whose sums match and, for MSG and
 *                   ENV, whose envelope decodes and names the header's
 *                   id.  The entry's 'env' is the caller's to free.
 *   PST_SEG_DAMAGE  bytes at 'offset' of 'size' that are not a record
 *                   ('why' says what is wrong with the first of them).
 *                   'tail' when no record follows them: what a crash
 *                   in the middle of a write leaves.  Otherwise damage
 *                   from outside, which the caller sets aside.
 *   PST_SEG_END     nothing but zeros up to the end of the file.
 *
 * After damage the reader looks for the next header at every multiple
 * of 8 bytes and goes on from there; zeros between records count as
 * damage when a record follows them.  Payloads are read in chunks, so a
 * large body costs no memory.  Returns -1 with 'err' when pread() fails
 * or memory runs out (PST_TEMP: nothing is judged damaged on a failed
 * read).
 */
enum pst_seg_item {
	PST_SEG_RECORD = 0,
	PST_SEG_DAMAGE,
	PST_SEG_END,
};

struct pst_seg_entry {
	uint64_t		 offset;	/* in the file */
	uint64_t		 size;		/* bytes, padding included */
	struct pst_rec		 rec;
	struct pst_spool_env	*env;		/* MSG, ENV: decoded */
	uint64_t		 body_offset;	/* MSG: in this file, or in
						   bodies/ID (EXTERNAL) */
	uint64_t		 body_length;
	char			 reason[PST_REC_REASON_MAX + 1]; /* DEL */
	const char		*why;		/* DAMAGE; until the next
						   call */
	bool			 tail;		/* DAMAGE */
};

struct pst_seg_reader;

/*
 * pst_seg_reader_new()
 * A reader of descriptor 'fd' (not owned) from byte 'start' to 'end'
 * (the file's size when it is opened).  NULL with 'err' when out of
 * memory.
 */
struct pst_seg_reader *pst_seg_reader_new(int fd, uint64_t start,
	    uint64_t end, struct pst_err *err);
int	pst_seg_next(struct pst_seg_reader *r, struct pst_seg_entry *e,
	    struct pst_err *err);
void	pst_seg_reader_free(struct pst_seg_reader *r);

#endif /* PST_SPOOL_RECORD_H */
