/*
 * log.h: the writer of spool format 2's log (doc/spool.md, "Committing").
 *
 * One writer appends records to the current segment, log/SEQ, and makes
 * them durable with one fdatasync() a batch.  In the daemon the writer is
 * a pool of one thread: requests handed over while a batch is being
 * written and flushed gather into the next batch, so the number of
 * flushes follows the disk, not the message rate, and a lone request
 * waits for one flush.  Tools without a loop (the queue tool with the
 * daemon down) append synchronously instead.
 *
 * Segments are preallocated so that appending never allocates; a batch
 * that does not fit in what is left of the current segment starts a new
 * one (bigger than the usual size if the batch needs it), and the old one
 * is cut to what it holds.  A segment is never appended to again after a
 * failed write or flush, nor after the writer is freed.
 *
 * A failed batch fails every request in it.  Its records may still reach
 * the disk (after a failed flush the kernel does not say what it kept),
 * so the writer puts a DEL record ("not acknowledged") for each new
 * message of that batch at the head of the next one: a message whose
 * sender was told to try again does not also come back from the log.  A
 * copy of a message the log holds already is not cancelled: its original
 * still stands.
 */
#ifndef PST_SPOOL_LOG_H
#define PST_SPOOL_LOG_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spool/record.h"

struct evbuffer;
struct pst_err;
struct pst_pool;
struct pst_spool_env;

#define PST_LOG_SEGMENT_BYTES	(64u << 20)
#define PST_LOG_BATCH_BYTES	(8u << 20)	/* a batch, unless one
						   request is larger */
#define PST_LOG_NOT_ACKED	"not acknowledged"
#define PST_LOG_LATER_MS	100		/* the longest a change given
						   to pst_log_append_later()
						   waits for company */
#define PST_LOG_LATER_MAX	1024		/* or so many of them */

/*
 * One record to append.  The caller fills the first part; the bytes it
 * points to must stay put until the request completes.  The writer
 * computes the sums and fills in where the record landed.
 */
struct pst_log_rec {
	enum pst_rec_type	 type;
	unsigned		 flags;		/* PST_REC_* */
	uint64_t		 id;
	const char		*env;		/* MSG, ENV: the envelope text */
	size_t			 env_len;
	const void		*data;		/* DEL reason, external ref */
	size_t			 data_len;
	struct evbuffer		*body;		/* MSG inline: the body, used
						   instead of 'data' */
	bool			 sync_bodies;	/* fsync bodies/ first: an
						   EXTERNAL body was just
						   renamed there */
	bool			 copy;		/* MSG: of a message the log
						   holds already (copying
						   forward): a failed batch
						   does not cancel it */
	const struct pst_spool_env *decoded;	/* MSG, ENV: 'env' decoded,
						   when at hand, for the
						   index's brief */
	/* Filled by the writer. */
	uint64_t		 seq;		/* the segment */
	uint64_t		 offset;	/* the record, in it */
};

struct pst_log_opts {
	int			 logfd;		/* SPOOL/log, not owned */
	int			 bodiesfd;	/* SPOOL/bodies, not owned */
	mode_t			 file_mode;
	uint64_t		 next_seq;	/* above every segment there */
	uint64_t		 segment_bytes;	/* 0: PST_LOG_SEGMENT_BYTES */
	unsigned		 later_ms;	/* 0: PST_LOG_LATER_MS */
	struct pst_pool		*writer;	/* one thread; NULL: append
						   with pst_log_append_sync() */
};

struct pst_log;

/*
 * pst_log_new()
 * A writer; no file is touched until the first append.  NULL with 'err'
 * when out of memory.
 */
struct pst_log *pst_log_new(const struct pst_log_opts *opts,
	    struct pst_err *err);

/*
 * pst_log_free()
 * Cuts the current segment to what it holds and frees 'log'.  Free the
 * writer pool first: every request then has completed.  NULL is fine.
 */
void	pst_log_free(struct pst_log *log);

/*
 * pst_log_append()
 * Appends the 'n' records of 'recs' in one batch with whatever else is
 * waiting, on the writer pool; then 'cb' runs on the loop thread with err
 * NULL (the records are on stable storage) or the error (none of them is
 * acknowledged: PST_TEMP for disk trouble).  Any thread; never runs 'cb'
 * from inside the call.  Returns 0, or -1 with 'err' when the request
 * cannot be queued (then 'cb' does not run).
 */
typedef void (*pst_log_cb)(struct pst_log_rec *recs, size_t n,
    const struct pst_err *err, void *arg);

int	pst_log_append(struct pst_log *log, struct pst_log_rec *recs,
	    size_t n, pst_log_cb cb, void *arg, struct pst_err *err);

/*
 * pst_log_append_later()
 * The same for records nobody waits on (what became of a delivery): they
 * ride the next batch that somebody does wait on, or, when none comes,
 * go on their own after PST_LOG_LATER_MS (or 'later_ms'), so that delivering costs no
 * flush of its own under load.  A crash before then loses them; the
 * caller must be content with the state before them coming back.
 */
int	pst_log_append_later(struct pst_log *log, struct pst_log_rec *recs,
	    size_t n, pst_log_cb cb, void *arg, struct pst_err *err);

/*
 * pst_log_hurry()
 * From now on nothing waits for company: what waits is written at once,
 * and so is everything appended later.  Before freeing the writer pool,
 * so that stopping does not wait for the timer.
 */
void	pst_log_hurry(struct pst_log *log);

/*
 * pst_log_append_wait()
 * The same for a thread that may block (a pool worker, never the loop):
 * returns when the batch holding the records has been written, 0, or
 * -1 with 'err'.
 */
int	pst_log_append_wait(struct pst_log *log, struct pst_log_rec *recs,
	    size_t n, struct pst_err *err);

/*
 * pst_log_append_sync()
 * The same, written and flushed on the calling thread, for a log
 * without a writer pool.  Returns 0 or -1 with 'err'.
 */
int	pst_log_append_sync(struct pst_log *log, struct pst_log_rec *recs,
	    size_t n, struct pst_err *err);

/*
 * pst_log_write_one()
 * Writes 'rec' alone at the start of the empty file 'fd' and flushes it:
 * a drop (incoming/ID).  Returns 0 or -1 with 'err'.
 */
int	pst_log_write_one(int fd, struct pst_log_rec *rec,
	    struct pst_err *err);

/*
 * pst_log_stats()
 * Batches written and records in them since the start.
 */
void	pst_log_stats(struct pst_log *log, uint64_t *batches,
	    uint64_t *records);

#endif /* PST_SPOOL_LOG_H */
