/*
 * index.h: what spool format 2 keeps in memory about each message, and
 * about each segment (lib/spool only).
 *
 * For every live message: where its body is (in a segment, in
 * bodies/ID, in the drop incoming/ID) and which record holds its current
 * envelope.  Envelopes themselves are not kept: they are read back with
 * pread() when wanted, so 100,000 messages cost a few megabytes.  What a
 * scheduler needs to start (arrival, next attempt, held) is kept as a
 * brief, taken from the envelope whenever it was decoded anyway.
 *
 * A segment is pinned by every live message whose MSG record (and with
 * it, for a body in the log, its body) or current envelope lies in it:
 * replay needs the MSG record to know the message at all, so a segment
 * holding one can only go once the message is gone or copied forward.  Segments go oldest first and only when unpinned
 * (doc/spool.md, "Reading back"); spool_idx_oldest_free() says which.
 */
#ifndef PST_SPOOL_INDEX_H
#define PST_SPOOL_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pst_err;
struct pst_seg_entry;
struct pst_spool_env;

enum idx_body {
	IDX_BODY_LOG = 0,	/* in segment body_seq */
	IDX_BODY_EXTERNAL,	/* in bodies/ID */
	IDX_BODY_DROP,		/* in incoming/ID */
};

struct idx_entry {
	uint64_t	 id;		/* 0: a free slot */
	uint64_t	 msg_seq;	/* its MSG record; 0: a drop */
	uint64_t	 body_seq;	/* IDX_BODY_LOG: msg_seq */
	uint64_t	 body_off;
	uint64_t	 body_len;
	uint64_t	 env_seq;	/* 0: the envelope of the drop */
	uint64_t	 env_off;	/* of the record holding it */
	uint32_t	 env_len;
	uint32_t	 msg_bytes;	/* its MSG record, in msg_seq */
	uint32_t	 env_bytes;	/* the ENV record holding its
					   envelope; 0: the MSG record's */
	int64_t		 arrival;	/* of the current envelope, when */
	int64_t		 next_attempt;	/* 'brief' says they are known */
	uint8_t		 body;		/* enum idx_body */
	bool		 drop;		/* incoming/ID is its own */
	bool		 locked;
	bool		 held;
	bool		 brief;		/* the three above are known */
};

struct idx_segment {
	uint64_t	 seq;
	uint64_t	 pins;		/* MSG records and envelopes */
	uint64_t	 live;		/* their bytes */
	uint64_t	 size;		/* bytes written */
};

struct spool_idx {
	struct idx_entry	*entries;	/* dense, in no order */
	size_t			 n;
	size_t			 entries_cap;
	uint32_t		*slots;		/* open addressing on the id:
						   entry + 1, 0 for none */
	size_t			 cap;		/* slots: a power of two */
	struct idx_segment	*segs;		/* ascending seq */
	size_t			 nsegs;
	size_t			 segs_cap;
};

void	 spool_idx_init(struct spool_idx *idx);
void	 spool_idx_free(struct spool_idx *idx);

/* The entry of 'id', or NULL. */
struct idx_entry *spool_idx_get(struct spool_idx *idx, uint64_t id);

/*
 * Registers segment 'seq' (above every one known), or updates its size.
 * Returns 0, or -1 with 'err' when out of memory.
 */
int	 spool_idx_segment(struct spool_idx *idx, uint64_t seq, uint64_t size,
	    struct pst_err *err);

/*
 * Applies one record read from segment 'seq' (or, 'seq' 0, the drop
 * incoming/ID): a MSG sets the message, an ENV moves its envelope, a DEL
 * forgets it.
 * An ENV or DEL of an unknown message is ignored (its MSG went with an
 * older segment).  Returns 0, or -1 with 'err' when out of memory.
 */
int	 spool_idx_apply(struct spool_idx *idx, uint64_t seq,
	    const struct pst_seg_entry *e, struct pst_err *err);

/*
 * Sets the brief of message 'id' from its current envelope 'env' (NULL:
 * unknown, read it when wanted).  spool_idx_apply() does it with the
 * record's decoded envelope.
 */
void	 spool_idx_brief(struct spool_idx *idx, uint64_t id,
	    const struct pst_spool_env *env);

/* Forgets message 'id'; its pins go. */
void	 spool_idx_remove(struct spool_idx *idx, uint64_t id);

/* The segment 'seq', or NULL. */
struct idx_segment *spool_idx_seg(struct spool_idx *idx, uint64_t seq);

/*
 * The oldest segment if nothing pins it and it is not 'current' (the
 * one being written), else NULL.  spool_idx_forget_seg() drops it.
 */
struct idx_segment *spool_idx_oldest_free(struct spool_idx *idx,
	    uint64_t current);
void	 spool_idx_forget_seg(struct spool_idx *idx, uint64_t seq);

/*
 * Calls 'fn' for every live message, in no particular order; 'fn' may
 * change an entry, not add or remove one.
 */
int	 spool_idx_each(struct spool_idx *idx,
	    int (*fn)(struct idx_entry *, void *), void *arg);

#endif /* PST_SPOOL_INDEX_H */
