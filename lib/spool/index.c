/*
 * index.c: the in-memory index of spool format 2.
 *
 * Messages: open addressing, linear probing, deletion by shifting the
 * run after the hole back (no tombstones), at most half full.  Ids are
 * time in their high bits and random in the low ones; a multiplication
 * spreads both over the table.  Segments: an array in ascending order,
 * found by binary search.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "spool/index.h"
#include "spool/record.h"
#include "spool/spool.h"

#define IDX_MIN_CAP	1024
#define IDX_MAX		(UINT32_MAX / 2)	/* messages */

static size_t
slot_of(const struct spool_idx *idx, uint64_t id)
{
	return (size_t)((id * UINT64_C(0x9e3779b97f4a7c15)) >> 32) &
	    (idx->cap - 1);
}

void
spool_idx_init(struct spool_idx *idx)
{
	memset(idx, 0, sizeof(*idx));
}

void
spool_idx_free(struct spool_idx *idx)
{
	free(idx->entries);
	free(idx->slots);
	free(idx->segs);
	spool_idx_init(idx);
}

/* The slot holding 'id', or the empty slot where it would go. */
static size_t
find_slot(const struct spool_idx *idx, uint64_t id)
{
	size_t i;

	for (i = slot_of(idx, id); idx->slots[i] != 0 &&
	    idx->entries[idx->slots[i] - 1].id != id;
	    i = (i + 1) & (idx->cap - 1))
		;
	return i;
}

struct idx_entry *
spool_idx_get(struct spool_idx *idx, uint64_t id)
{
	size_t i;

	if (idx->cap == 0 || id == 0)
		return NULL;
	i = find_slot(idx, id);
	return idx->slots[i] != 0 ? &idx->entries[idx->slots[i] - 1] : NULL;
}

static int
no_memory(struct pst_err *err)
{
	return pst_err_sys(err, PST_TEMP, PST_STAGE_SPOOL, ENOMEM,
	    "indexing the queue");
}

/*
 * The slots, twice as many, filled anew from the entries.  The slots are
 * small (4 bytes a message, at most half used) and the entries grow by
 * realloc(), which moves large blocks by remapping: a queue of 100,000
 * messages touches a few megabytes once, not a table of entries at
 * every doubling.
 */
static int
grow_slots(struct spool_idx *idx, struct pst_err *err)
{
	uint32_t *slots;
	size_t cap, i, j;

	cap = idx->cap == 0 ? IDX_MIN_CAP : idx->cap * 2;
	if ((slots = calloc(cap, sizeof(*slots))) == NULL)
		return no_memory(err);
	free(idx->slots);
	idx->slots = slots;
	idx->cap = cap;
	for (i = 0; i < idx->n; i++) {
		j = find_slot(idx, idx->entries[i].id);
		idx->slots[j] = (uint32_t)(i + 1);
	}
	return 0;
}

/* The entry of 'id', made (zeroed but for the id) if new. */
static struct idx_entry *
get_or_add(struct spool_idx *idx, uint64_t id, struct pst_err *err)
{
	struct idx_entry *e, *entries;
	size_t cap;

	if ((e = spool_idx_get(idx, id)) != NULL)
		return e;
	if (idx->n >= IDX_MAX) {
		no_memory(err);
		return NULL;
	}
	if (idx->n == idx->entries_cap) {
		cap = idx->entries_cap == 0 ? IDX_MIN_CAP / 2 :
		    idx->entries_cap * 2;
		if ((entries = reallocarray(idx->entries, cap,
		    sizeof(*entries))) == NULL) {
			no_memory(err);
			return NULL;
		}
		idx->entries = entries;
		idx->entries_cap = cap;
	}
	if ((idx->n + 1) * 2 > idx->cap && grow_slots(idx, err) == -1)
		return NULL;
	e = &idx->entries[idx->n];
	memset(e, 0, sizeof(*e));
	e->id = id;
	idx->slots[find_slot(idx, id)] = (uint32_t)(++idx->n);
	return e;
}

/*
 * Segments.
 */

struct idx_segment *
spool_idx_seg(struct spool_idx *idx, uint64_t seq)
{
	size_t lo = 0, hi = idx->nsegs, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (idx->segs[mid].seq == seq)
			return &idx->segs[mid];
		if (idx->segs[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int
spool_idx_segment(struct spool_idx *idx, uint64_t seq, uint64_t size,
    struct pst_err *err)
{
	struct idx_segment *s;

	if ((s = spool_idx_seg(idx, seq)) != NULL) {
		if (size > s->size)
			s->size = size;
		return 0;
	}
	if (idx->nsegs > 0 && idx->segs[idx->nsegs - 1].seq > seq)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_SPOOL,
		    "segment %llu registered out of order",
		    (unsigned long long)seq);
	if (idx->nsegs == idx->segs_cap) {
		idx->segs_cap = idx->segs_cap == 0 ? 16 : idx->segs_cap * 2;
		s = reallocarray(idx->segs, idx->segs_cap, sizeof(*s));
		if (s == NULL)
			return pst_err_sys(err, PST_TEMP, PST_STAGE_SPOOL, ENOMEM,
		    "indexing the queue");
		idx->segs = s;
	}
	s = &idx->segs[idx->nsegs++];
	s->seq = seq;
	s->pins = 0;
	s->live = 0;
	s->size = size;
	return 0;
}

/* A record of 'bytes' in segment 'seq' becomes live, or no longer is. */
static void
pin(struct spool_idx *idx, uint64_t seq, uint32_t bytes)
{
	struct idx_segment *s;

	if (seq != 0 && (s = spool_idx_seg(idx, seq)) != NULL) {
		s->pins++;
		s->live += bytes;
	}
}

static void
unpin(struct spool_idx *idx, uint64_t seq, uint32_t bytes)
{
	struct idx_segment *s;

	if (seq == 0 || (s = spool_idx_seg(idx, seq)) == NULL)
		return;
	if (s->pins > 0)
		s->pins--;
	s->live -= s->live >= bytes ? bytes : s->live;
}

static void
unpin_entry(struct spool_idx *idx, const struct idx_entry *e)
{
	unpin(idx, e->msg_seq, e->msg_bytes);
	unpin(idx, e->env_seq, e->env_bytes);
}

struct idx_segment *
spool_idx_oldest_free(struct spool_idx *idx, uint64_t current)
{
	if (idx->nsegs == 0 || idx->segs[0].pins > 0 ||
	    idx->segs[0].seq >= current)
		return NULL;
	return &idx->segs[0];
}

void
spool_idx_forget_seg(struct spool_idx *idx, uint64_t seq)
{
	struct idx_segment *s;
	size_t i;

	if ((s = spool_idx_seg(idx, seq)) == NULL)
		return;
	i = (size_t)(s - idx->segs);
	memmove(s, s + 1, (idx->nsegs - i - 1) * sizeof(*s));
	idx->nsegs--;
}

/*
 * Messages.
 */

void
spool_idx_remove(struct spool_idx *idx, uint64_t id)
{
	struct idx_entry *e;
	size_t hole, i, home, pos, last;

	if ((e = spool_idx_get(idx, id)) == NULL)
		return;
	unpin_entry(idx, e);
	hole = find_slot(idx, id);
	pos = idx->slots[hole] - 1;
	idx->slots[hole] = 0;
	/* Shift back every slot of the run that may not stay past a hole. */
	for (i = (hole + 1) & (idx->cap - 1); idx->slots[i] != 0;
	    i = (i + 1) & (idx->cap - 1)) {
		home = slot_of(idx, idx->entries[idx->slots[i] - 1].id);
		if (((i - home) & (idx->cap - 1)) >=
		    ((i - hole) & (idx->cap - 1))) {
			idx->slots[hole] = idx->slots[i];
			idx->slots[i] = 0;
			hole = i;
		}
	}
	/* The last entry fills the gap, and its slot follows it. */
	last = --idx->n;
	if (pos != last) {
		idx->entries[pos] = idx->entries[last];
		idx->slots[find_slot(idx, idx->entries[pos].id)] =
		    (uint32_t)(pos + 1);
	}
}

static void
set_brief(struct idx_entry *e, const struct pst_spool_env *env)
{
	e->brief = env != NULL;
	if (env == NULL)
		return;
	e->arrival = env->arrival;
	e->next_attempt = env->next_attempt;
	e->held = env->held;
}

void
spool_idx_brief(struct spool_idx *idx, uint64_t id,
    const struct pst_spool_env *env)
{
	struct idx_entry *e;

	if ((e = spool_idx_get(idx, id)) != NULL)
		set_brief(e, env);
}

int
spool_idx_apply(struct spool_idx *idx, uint64_t seq,
    const struct pst_seg_entry *se, struct pst_err *err)
{
	struct idx_entry *e;

	switch (se->rec.type) {
	case PST_REC_MSG:
		if ((e = get_or_add(idx, se->rec.id, err)) == NULL)
			return -1;
		unpin_entry(idx, e);
		e->body_off = se->body_offset;
		e->body_len = se->body_length;
		e->body_seq = 0;
		if (seq == 0)
			e->drop = true;
		if (se->rec.flags & PST_REC_EXTERNAL)
			e->body = IDX_BODY_EXTERNAL;
		else if (seq == 0)
			e->body = IDX_BODY_DROP;
		else {
			e->body = IDX_BODY_LOG;
			e->body_seq = seq;
		}
		e->msg_seq = seq;
		e->msg_bytes = (uint32_t)pst_rec_size(se->rec.env_len,
		    se->rec.data_len);
		e->env_seq = seq;
		e->env_off = se->offset;
		e->env_len = se->rec.env_len;
		e->env_bytes = 0;
		pin(idx, seq, e->msg_bytes);	/* the MSG record */
		pin(idx, seq, 0);		/* the current envelope */
		set_brief(e, se->env);
		return 0;
	case PST_REC_ENV:
		if ((e = spool_idx_get(idx, se->rec.id)) == NULL)
			return 0;
		unpin(idx, e->env_seq, e->env_bytes);
		e->env_seq = seq;
		e->env_off = se->offset;
		e->env_len = se->rec.env_len;
		e->env_bytes = (uint32_t)pst_rec_size(se->rec.env_len,
		    se->rec.data_len);
		pin(idx, seq, e->env_bytes);
		set_brief(e, se->env);
		return 0;
	case PST_REC_DEL:
		spool_idx_remove(idx, se->rec.id);
		return 0;
	}
	return 0;
}

int
spool_idx_each(struct spool_idx *idx, int (*fn)(struct idx_entry *, void *),
    void *arg)
{
	size_t i;

	for (i = 0; i < idx->n; i++)
		if (fn(&idx->entries[i], arg) == -1)
			return -1;
	return 0;
}
