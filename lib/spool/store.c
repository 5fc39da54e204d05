/*
 * store.c: spool format 2 (doc/spool.md, "Format 2: the log").
 *
 * The index says where each live message is; this file builds it from
 * the drops and the segments, reads envelopes and bodies back through
 * it, appends what changes a message and follows the change in it, and
 * gives back segments nothing needs any more.
 *
 * Threads: the index is under spool->mtx.  Appends go through the log:
 * from a pool worker they wait for their batch (pst_log_append_wait()),
 * from a tool without a writer they are written on the spot.  The index
 * is changed only after the records are on stable storage, so what it
 * says is always what a restart would find.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "common/err.h"
#include "spool/index.h"
#include "spool/log.h"
#include "spool/record.h"
#include "spool/spool.h"
#include "spool/spool_int.h"

#define LOCK_POLL_MS	50

static const unsigned char zero_header[PST_SEG_HEADER];
#define SEGMENT_MIN	(1u << 20)	/* bytes: on the smallest volumes */

static int
is_id_name(const char *name, uint64_t *id)
{
	return pst_rec_id_parse(name, id) == 0;
}

/* Names in 'dirfd' that are ids, ascending. */
static int
list_ids(int dirfd, uint64_t **ids, size_t *n)
{
	struct dirent *de;
	uint64_t id, *v = NULL, *nv;
	size_t cap = 0;
	DIR *d;
	int fd;

	*n = 0;
	if ((fd = dup(dirfd)) == -1)
		return -1;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (!is_id_name(de->d_name, &id))
			continue;
		if (*n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			if ((nv = reallocarray(v, cap, sizeof(*v))) == NULL) {
				free(v);
				closedir(d);
				errno = ENOMEM;
				return -1;
			}
			v = nv;
		}
		v[(*n)++] = id;
	}
	closedir(d);
	*ids = v;
	return 0;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Loading.
 */

/* Copies 'len' bytes at 'off' of 'fd' to a new file in quarantine/. */
static void
quarantine_bytes(struct pst_spool *spool, int fd, uint64_t off, uint64_t len,
    const char *rel, const char *why)
{
	char name[SPOOL_NAME_MAX + 32], buf[65536];
	uint64_t done = 0;
	ssize_t n;
	int out, i;

	for (i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "%s.%" PRIu64 "%s%.0d",
		    strrchr(rel, '/') + 1, off, i > 0 ? "." : "", i);
		out = openat(spool->quarfd, name, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, spool->file_mode);
		if (out != -1 || errno != EEXIST)
			break;
	}
	if (out == -1)
		return;
	while (done < len) {
		n = pread(fd, buf, len - done < sizeof(buf) ?
		    (size_t)(len - done) : sizeof(buf), (off_t)(off + done));
		if (n <= 0 || write(out, buf, (size_t)n) != n)
			break;
		done += (uint64_t)n;
	}
	(void)fsync(out);
	close(out);
	spool_report(spool, PST_SPOOL_QUARANTINED, rel, name,
	    "%s at offset %" PRIu64 " (%" PRIu64 " bytes copied; the segment "
	    "stays)", why, off, len);
}

/* Replays one file of records: a segment (seq > 0) or a drop (seq 0). */
static int
replay_file(struct pst_spool *spool, int fd, uint64_t seq, uint64_t start,
    uint64_t end, const char *rel, bool recover, struct pst_err *err)
{
	struct pst_seg_reader *r;
	struct pst_seg_entry e;
	int item, rc = 0;

	if ((r = pst_seg_reader_new(fd, start, end, err)) == NULL)
		return -1;
	while ((item = pst_seg_next(r, &e, err)) != PST_SEG_END) {
		if (item == -1) {
			rc = -1;
			break;
		}
		if (item == PST_SEG_RECORD) {
			rc = spool_idx_apply(spool->idx, seq, &e, err);
			pst_spool_env_free(e.env);
			if (rc == -1)
				break;
			continue;
		}
		if (e.tail)
			spool_report(spool, PST_SPOOL_SKIPPED, rel, NULL,
			    "torn tail at offset %" PRIu64 ": a write cut "
			    "short, never acknowledged", e.offset);
		else if (recover)
			quarantine_bytes(spool, fd, e.offset, e.size, rel, e.why);
		else
			spool_report(spool, PST_SPOOL_SKIPPED, rel, NULL,
			    "damaged at offset %" PRIu64 ": %s", e.offset, e.why);
	}
	pst_seg_reader_free(r);
	return rc;
}

static int
load_segment(struct pst_spool *spool, uint64_t seq, bool recover,
    struct pst_err *err)
{
	unsigned char hdr[PST_SEG_HEADER];
	char name[PST_SPOOL_ID_LEN + 1], rel[32], moved[64];
	const char *why;
	struct stat st;
	uint64_t got;
	time_t created;
	ssize_t n;
	int fd, rc;

	pst_rec_id_format(seq, name);
	snprintf(rel, sizeof(rel), "log/%s", name);
	fd = openat(spool->logfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);
	if (fd == -1)
		return spool_sys_read(err, errno, "opening %s", rel);
	if (fstat(fd, &st) == -1) {
		close(fd);
		return spool_sys(err, errno, "%s", rel);
	}
	n = S_ISREG(st.st_mode) ? pread(fd, hdr, sizeof(hdr), 0) : 0;
	if (n == -1) {
		/* A failing disk may recover: judge nothing on a failed read. */
		spool_sys(err, errno, "reading %s", rel);
		close(fd);
		return -1;
	}
	if (n != (ssize_t)sizeof(hdr) || pst_seg_header_decode(hdr, &got,
	    &created, &why) == -1 || got != seq) {
		close(fd);
		/*
		 * No header, or a header of zeros (preallocated, not yet
		 * written): a creation cut short.  The header is flushed
		 * before the first record goes in, so nothing is lost.
		 */
		if (recover && S_ISREG(st.st_mode) && (n < (ssize_t)sizeof(hdr)
		    || memcmp(hdr, zero_header, sizeof(hdr)) == 0) &&
		    unlinkat(spool->logfd, name, 0) == 0) {
			spool_report(spool, PST_SPOOL_REMOVED, rel, NULL,
			    "segment never written");
			return 0;
		}
		if (recover && spool_quarantine(spool, spool->logfd, name, "",
		    moved, sizeof(moved)) == 0)
			spool_report(spool, PST_SPOOL_QUARANTINED, rel, moved,
			    "not a segment of this spool");
		else
			spool_report(spool, PST_SPOOL_SKIPPED, rel, NULL,
			    "not a segment of this spool");
		return 0;
	}
	if (spool_idx_segment(spool->idx, seq, (uint64_t)st.st_size,
	    err) == -1) {
		close(fd);
		return -1;
	}
	rc = replay_file(spool, fd, seq, PST_SEG_HEADER, (uint64_t)st.st_size,
	    rel, recover, err);
	close(fd);
	return rc;
}

/*
 * A drop: its one record.  One being written (flock()ed by a sendmail)
 * is not there yet.  Returns 0 (indexed or set aside), -1 with 'err'.
 */
static int
load_drop(struct pst_spool *spool, uint64_t id, bool recover,
    struct pst_err *err)
{
	char name[PST_SPOOL_ID_LEN + 1], rel[32], moved[64];
	struct pst_seg_entry e;
	struct pst_seg_reader *r;
	const char *why;
	struct stat st;
	int fd, item;

	pst_rec_id_format(id, name);
	snprintf(rel, sizeof(rel), "incoming/%s", name);
	fd = openat(spool->incomingfd, name, O_RDONLY | O_NOFOLLOW |
	    O_NONBLOCK | O_CLOEXEC);
	if (fd == -1 && (errno == EACCES || errno == EPERM)) {
		/* A wrong owner or mode, which the operator can fix. */
		spool_report(spool, PST_SPOOL_SKIPPED, rel, NULL, "cannot "
		    "read it (%s); taken in once it can be read",
		    strerror(errno));
		return 0;
	}
	if (fd == -1)
		return errno == ENOENT ? 0 :
		    spool_sys_read(err, errno, "opening %s", rel);
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return 0;
	}
	if ((r = pst_seg_reader_new(fd, 0, (uint64_t)st.st_size,
	    err)) == NULL) {
		close(fd);
		return -1;
	}
	item = pst_seg_next(r, &e, err);
	if (item == PST_SEG_RECORD && e.rec.type == PST_REC_MSG &&
	    e.rec.id == id) {
		item = spool_idx_apply(spool->idx, 0, &e, err);
		pst_spool_env_free(e.env);
	} else if (item != -1) {
		pst_spool_env_free(e.env);
		why = item == PST_SEG_DAMAGE ? e.why : "another record";
		if (recover && spool_quarantine(spool, spool->incomingfd, name,
		    "", moved, sizeof(moved)) == 0)
			spool_report(spool, PST_SPOOL_QUARANTINED, rel, moved,
			    "not a message drop: %s", why);
		else
			spool_report(spool, PST_SPOOL_SKIPPED, rel, NULL,
			    "not a message drop: %s", why);
		item = 0;
	}
	pst_seg_reader_free(r);
	close(fd);
	return item == -1 ? -1 : 0;
}

/* Removes bodies/ files no message names, unless a writer holds them. */
static void
remove_orphan_bodies(struct pst_spool *spool)
{
	char name[PST_SPOOL_ID_LEN + 1], rel[32];
	uint64_t *ids;
	size_t n, i;
	int fd;

	if (list_ids(spool->bodiesfd, &ids, &n) == -1)
		return;
	for (i = 0; i < n; i++) {
		if (spool_idx_get(spool->idx, ids[i]) != NULL)
			continue;
		pst_rec_id_format(ids[i], name);
		fd = openat(spool->bodiesfd, name, O_RDONLY | O_NOFOLLOW |
		    O_NONBLOCK | O_CLOEXEC);
		if (fd == -1)
			continue;
		/* A sendmail between its body and its drop holds it. */
		if (flock(fd, LOCK_EX | LOCK_NB) == 0 &&
		    unlinkat(spool->bodiesfd, name, 0) == 0) {
			snprintf(rel, sizeof(rel), "bodies/%s", name);
			spool_report(spool, PST_SPOOL_REMOVED, rel, NULL,
			    "body of no message: a commit cut short");
		}
		close(fd);
	}
	free(ids);
}

int
spool_store_load(struct pst_spool *spool, bool recover, struct pst_err *err)
{
	uint64_t *drops = NULL, *segs = NULL;
	size_t ndrops = 0, nsegs = 0, i;
	char name[PST_SPOOL_ID_LEN + 1], rel[32];
	int rc = -1;

	pthread_mutex_lock(&spool->mtx);
	if (spool->loaded) {
		pthread_mutex_unlock(&spool->mtx);
		return 0;
	}
	if (list_ids(spool->incomingfd, &drops, &ndrops) == -1 ||
	    list_ids(spool->logfd, &segs, &nsegs) == -1) {
		spool_sys(err, errno, "listing %s", spool->path);
		goto out;
	}
	if (nsegs > 0)
		qsort(segs, nsegs, sizeof(*segs), cmp_u64);
	/* Drops first: the log's records about them come later. */
	for (i = 0; i < ndrops; i++) {
		if (load_drop(spool, drops[i], recover, err) == -1)
			goto out;
		/* Only a drop indexed here can have been removed by the log. */
		if (spool_idx_get(spool->idx, drops[i]) == NULL)
			drops[i] = 0;
	}
	for (i = 0; i < nsegs; i++)
		if (load_segment(spool, segs[i], recover, err) == -1)
			goto out;
	spool->next_seq = nsegs > 0 ? segs[nsegs - 1] + 1 : 1;
	/* Every segment there is sealed: a new run starts a new one. */
	spool->write_seq = spool->next_seq;
	if (recover) {
		/* Drops the log says are gone: a removal cut short. */
		for (i = 0; i < ndrops; i++) {
			if (drops[i] == 0 ||
			    spool_idx_get(spool->idx, drops[i]) != NULL)
				continue;
			pst_rec_id_format(drops[i], name);
			if (unlinkat(spool->incomingfd, name, 0) == 0) {
				snprintf(rel, sizeof(rel), "incoming/%s", name);
				spool_report(spool, PST_SPOOL_REMOVED, rel,
				    NULL, "delivered; its removal was cut "
				    "short");
			}
		}
		remove_orphan_bodies(spool);
	}
	spool->loaded = true;
	rc = 0;
out:
	pthread_mutex_unlock(&spool->mtx);
	free(drops);
	free(segs);
	return rc;
}

int
spool_store_init(struct pst_spool *spool, struct pst_err *err)
{
	if ((spool->idx = calloc(1, sizeof(*spool->idx))) == NULL)
		return spool_sys(err, ENOMEM, "opening spool %s", spool->path);
	spool_idx_init(spool->idx);
	return 0;
}

void
spool_store_free(struct pst_spool *spool)
{
	pst_log_free(spool->log);
	spool->log = NULL;
	if (spool->idx != NULL)
		spool_idx_free(spool->idx);
	free(spool->idx);
	spool->idx = NULL;
}

/*
 * Appending.
 */

/*
 * The log writer, made on first use.  Under the mutex: the loop's
 * commits and the pool's deliveries append from the start, and two
 * writers would each open segments of their own.
 */
static struct pst_log *
log_of(struct pst_spool *spool, struct pst_err *err)
{
	struct pst_log_opts o;
	struct statvfs vfs;
	struct pst_log *log;

	pthread_mutex_lock(&spool->mtx);
	if ((log = spool->log) != NULL) {
		pthread_mutex_unlock(&spool->mtx);
		return log;
	}
	if (spool->lockfd == -1) {
		pthread_mutex_unlock(&spool->mtx);
		spool_bad(err, "spool %s: only the holder of the daemon lock "
		    "writes the log", spool->path);
		return NULL;
	}
	memset(&o, 0, sizeof(o));
	o.logfd = spool->logfd;
	o.bodiesfd = spool->bodiesfd;
	o.file_mode = spool->file_mode;
	o.next_seq = spool->next_seq;
	o.writer = spool->writer;
	/* A segment is at most a sixteenth of a small volume. */
	o.segment_bytes = PST_LOG_SEGMENT_BYTES;
	if (fstatvfs(spool->logfd, &vfs) == 0 && (uint64_t)vfs.f_blocks *
	    vfs.f_frsize / 16 < o.segment_bytes)
		o.segment_bytes = (uint64_t)vfs.f_blocks * vfs.f_frsize / 16;
	if (o.segment_bytes < SEGMENT_MIN)
		o.segment_bytes = SEGMENT_MIN;
	if (spool->segment_bytes != 0)
		o.segment_bytes = spool->segment_bytes;
	log = spool->log = pst_log_new(&o, err);
	pthread_mutex_unlock(&spool->mtx);
	return log;
}

/* Follows appended records in the index (they are durable). */
void
spool_store_applied(struct pst_spool *spool, const struct pst_log_rec *recs,
    size_t n)
{
	struct pst_seg_entry e;
	struct pst_err err;
	size_t i;

	pthread_mutex_lock(&spool->mtx);
	for (i = 0; i < n; i++) {
		if (recs[i].seq > spool->write_seq)
			spool->write_seq = recs[i].seq;
		memset(&e, 0, sizeof(e));
		e.offset = recs[i].offset;
		e.rec.type = recs[i].type;
		e.rec.flags = recs[i].flags;
		e.rec.id = recs[i].id;
		e.rec.env_len = (uint32_t)recs[i].env_len;
		e.rec.data_len = (uint32_t)(recs[i].body != NULL ?
		    evbuffer_get_length(recs[i].body) : recs[i].data_len);
		(void)spool_idx_segment(spool->idx, recs[i].seq, e.offset +
		    pst_rec_size(e.rec.env_len, e.rec.data_len), &err);
		if (recs[i].type == PST_REC_MSG &&
		    (recs[i].flags & PST_REC_EXTERNAL) != 0)
			pst_rec_extref_decode(recs[i].data, &e.body_offset,
			    &e.body_length);
		else if (recs[i].type == PST_REC_MSG) {
			e.body_offset = recs[i].offset + PST_REC_HEADER +
			    recs[i].env_len;
			e.body_length = recs[i].body != NULL ?
			    evbuffer_get_length(recs[i].body) :
			    recs[i].data_len;
		}
		(void)spool_idx_apply(spool->idx, recs[i].seq, &e, &err);
		if (recs[i].type != PST_REC_DEL)
			spool_idx_brief(spool->idx, recs[i].id,
			    recs[i].decoded);
	}
	pthread_mutex_unlock(&spool->mtx);
}

int
spool_store_append_async(struct pst_spool *spool, struct pst_log_rec *recs,
    size_t n, pst_log_cb cb, void *arg, struct pst_err *err)
{
	struct pst_log *log;

	if ((log = log_of(spool, err)) == NULL)
		return -1;
	return pst_log_append(log, recs, n, cb, arg, err);
}

int
spool_store_append(struct pst_spool *spool, struct pst_log_rec *recs,
    size_t n, struct pst_err *err)
{
	struct pst_log *log;
	int rc;

	if ((log = log_of(spool, err)) == NULL)
		return -1;
	rc = spool->writer != NULL ? pst_log_append_wait(log, recs, n, err) :
	    pst_log_append_sync(log, recs, n, err);
	if (rc == 0)
		spool_store_applied(spool, recs, n);
	return rc;
}

/*
 * Drops: sendmail's way in, and the daemon's own bounces.
 */

/* Another process picked the same id: a temporary error, try anew. */
static int
id_taken(struct pst_err *err, const char *id)
{
	pst_err_set(err, PST_TEMP, PST_STAGE_SPOOL, "queue id %s is taken "
	    "by another writer", id);
	err->sys_errno = EEXIST;
	return -1;
}

/*
 * Writes the message 'id' as a drop: one MSG record in tmp/, flushed,
 * renamed into incoming/, incoming/ flushed.  The body is 'buf', or,
 * when 'bodyfd' is not -1, the 'size' bytes already in bodies/ID (open on
 * 'bodyfd' and locked by the caller until this returns).
 */
int
spool_store_drop(struct pst_spool *spool, const char *id, const char *env,
    size_t env_len, struct evbuffer *buf, int bodyfd, uint64_t size,
    struct pst_err *err)
{
	unsigned char ref[PST_REC_EXTREF];
	struct pst_log_rec rec;
	char name[PST_SPOOL_ID_LEN + 1];
	int fd, rc;

	memset(&rec, 0, sizeof(rec));
	rec.type = PST_REC_MSG;
	if (pst_rec_id_parse(id, &rec.id) == -1)
		return spool_bad(err, "bad message id %s", id);
	rec.env = env;
	rec.env_len = env_len;
	if (bodyfd != -1) {
		pst_rec_extref_encode(ref, 0, size);
		rec.flags = PST_REC_EXTERNAL;
		rec.data = ref;
		rec.data_len = sizeof(ref);
	} else
		rec.body = buf;
	snprintf(name, sizeof(name), "%s", id);
	/* Locked while it is written, so that recovery leaves it alone. */
	if ((fd = spool_create_tmp(spool, name)) == -1) {
		if (errno == EEXIST)
			return id_taken(err, id);
		return spool_sys(err, errno, "creating tmp/%s", name);
	}
	if (pst_log_write_one(fd, &rec, err) == -1)
		goto fail;
	if (spool_rename_excl(spool->tmpfd, name, spool->incomingfd,
	    name) == -1) {
		if (errno == EEXIST)
			id_taken(err, id);
		else
			spool_sys(err, errno, "moving drop %s into incoming/",
			    id);
		goto fail;
	}
	if (spool_fsync_dir(spool->incomingfd, "incoming", err) == -1) {
		(void)unlinkat(spool->incomingfd, name, 0);
		close(fd);
		return -1;
	}
	close(fd);
	/* The daemon's own drops (bounces) are indexed at once. */
	rc = 0;
	if (spool->loaded) {
		pthread_mutex_lock(&spool->mtx);
		rc = load_drop(spool, rec.id, false, err);
		pthread_mutex_unlock(&spool->mtx);
	}
	return rc;
fail:
	(void)unlinkat(spool->tmpfd, name, 0);
	close(fd);
	return -1;
}

/* Indexes drop 'id' if it is there and not yet known. */
int
spool_store_pickup(struct pst_spool *spool, uint64_t id, struct pst_err *err)
{
	int rc = 0;

	pthread_mutex_lock(&spool->mtx);
	if (spool_idx_get(spool->idx, id) == NULL)
		rc = load_drop(spool, id, false, err);
	pthread_mutex_unlock(&spool->mtx);
	return rc;
}

/*
 * Messages.
 */

/*
 * Locks message 'id' (waiting for it with 'wait') and copies its entry.
 * Fails with sys_errno ENOENT (no such message) or EWOULDBLOCK.
 */
int
spool_store_lock(struct pst_spool *spool, uint64_t id, bool wait,
    struct idx_entry *copy, struct pst_err *err)
{
	struct timespec pause = { 0, LOCK_POLL_MS * 1000000L };
	struct idx_entry *e;
	char name[PST_SPOOL_ID_LEN + 1];

	pst_rec_id_format(id, name);
	if (spool_store_pickup(spool, id, err) == -1)
		return -1;
	for (;;) {
		pthread_mutex_lock(&spool->mtx);
		if ((e = spool_idx_get(spool->idx, id)) == NULL) {
			pthread_mutex_unlock(&spool->mtx);
			spool_bad(err, "no message %s", name);
			err->sys_errno = ENOENT;
			return -1;
		}
		if (!e->locked) {
			e->locked = true;
			*copy = *e;
			pthread_mutex_unlock(&spool->mtx);
			return 0;
		}
		pthread_mutex_unlock(&spool->mtx);
		if (!wait) {
			pst_err_set(err, PST_TEMP, PST_STAGE_SPOOL,
			    "message %s is locked", name);
			err->sys_errno = EWOULDBLOCK;
			return -1;
		}
		nanosleep(&pause, NULL);
	}
}

void
spool_store_unlock(struct pst_spool *spool, uint64_t id)
{
	struct idx_entry *e;

	pthread_mutex_lock(&spool->mtx);
	if ((e = spool_idx_get(spool->idx, id)) != NULL)
		e->locked = false;
	pthread_mutex_unlock(&spool->mtx);
}

/* Opens the file holding 'e''s envelope (at '*off') or body. */
static int
open_part(struct pst_spool *spool, const struct idx_entry *e, bool body,
    struct pst_err *err)
{
	char name[PST_SPOOL_ID_LEN + 1];
	uint64_t seq;
	int dirfd, fd;

	if (body && e->body == IDX_BODY_EXTERNAL) {
		dirfd = spool->bodiesfd;
		pst_rec_id_format(e->id, name);
	} else if ((seq = body ? e->body_seq : e->env_seq) != 0 &&
	    (!body || e->body == IDX_BODY_LOG)) {
		dirfd = spool->logfd;
		pst_rec_id_format(seq, name);
	} else {
		dirfd = spool->incomingfd;
		pst_rec_id_format(e->id, name);
	}
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);
	if (fd == -1)
		spool_sys_read(err, errno, "opening %s of message %016" PRIx64,
		    body ? "the body" : "the envelope", e->id);
	return fd;
}

/* The envelope's bytes as the record holds them (malloc'd). */
int
spool_store_env_bytes(struct pst_spool *spool, const struct idx_entry *e,
    char **out, struct pst_err *err)
{
	uint64_t off = e->env_seq != 0 ? e->env_off : 0;
	char *buf;
	ssize_t n;
	int fd;

	if ((fd = open_part(spool, e, false, err)) == -1)
		return -1;
	if ((buf = malloc(e->env_len > 0 ? e->env_len : 1)) == NULL) {
		close(fd);
		return spool_sys(err, ENOMEM, "reading an envelope");
	}
	n = pread(fd, buf, e->env_len, (off_t)(off + PST_REC_HEADER));
	close(fd);
	if (n != (ssize_t)e->env_len) {
		free(buf);
		return spool_sys_read(err, n == -1 ? errno : EIO,
		    "reading the envelope of %016" PRIx64, e->id);
	}
	*out = buf;
	return 0;
}

int
spool_store_read_env(struct pst_spool *spool, const struct idx_entry *e,
    struct pst_spool_env **out, struct pst_err *err)
{
	char *buf = NULL, id[PST_SPOOL_ID_LEN + 1];

	if (spool_store_env_bytes(spool, e, &buf, err) == -1)
		return -1;
	*out = pst_spool_env_decode(buf, e->env_len, err);
	free(buf);
	if (*out == NULL)
		return -1;
	pst_rec_id_format(e->id, id);
	if (strcmp((*out)->id, id) != 0) {
		spool_bad(err, "the envelope of %s holds id %s", id,
		    (*out)->id);
		pst_spool_env_free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

int
spool_store_body(struct pst_spool *spool, const struct idx_entry *e,
    uint64_t *offset, struct pst_err *err)
{
	struct stat st;
	int fd;

	if ((fd = open_part(spool, e, true, err)) == -1)
		return -1;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size < e->body_off + e->body_len) {
		spool_bad(err, "body of %016" PRIx64 " is damaged: its file "
		    "is shorter than the record says", e->id);
		close(fd);
		return -1;
	}
	*offset = e->body_off;
	return fd;
}

/* The files of a removed message that are its alone. */
static void
remove_files(struct pst_spool *spool, const struct idx_entry *e)
{
	char name[PST_SPOOL_ID_LEN + 1];

	pst_rec_id_format(e->id, name);
	if (e->body == IDX_BODY_EXTERNAL)
		(void)unlinkat(spool->bodiesfd, name, 0);
	if (e->drop)
		(void)unlinkat(spool->incomingfd, name, 0);
}

int
spool_store_remove(struct pst_spool *spool, const struct idx_entry *e,
    const char *reason, struct pst_err *err)
{
	struct pst_log_rec rec;

	memset(&rec, 0, sizeof(rec));
	rec.type = PST_REC_DEL;
	rec.id = e->id;
	rec.data = reason;
	rec.data_len = strlen(reason);
	if (spool_store_append(spool, &rec, 1, err) == -1)
		return -1;
	remove_files(spool, e);
	return 0;
}

int
spool_store_update(struct pst_spool *spool, const struct idx_entry *e,
    const struct pst_spool_env *env, struct pst_err *err)
{
	struct pst_log_rec rec;
	char *text;
	size_t len;
	int rc;

	if (pst_spool_env_encode(env, &text, &len, err) == -1)
		return -1;
	memset(&rec, 0, sizeof(rec));
	rec.type = PST_REC_ENV;
	rec.id = e->id;
	rec.env = text;
	rec.env_len = len;
	rec.decoded = env;
	rc = spool_store_append(spool, &rec, 1, err);
	free(text);
	return rc;
}

/*
 * A change that rides the next group flush: the message stays locked
 * until the change is on stable storage; then the index follows it, a
 * removed message's own files go, and 'done' runs on the loop.  Should
 * the flush fail, the message is as it was before, unlocked.
 */
struct later {
	struct pst_spool	*spool;
	struct idx_entry	 e;
	struct pst_log_rec	 rec;
	char			*text;
	struct pst_spool_env	 brief;		/* ENV: what the index's brief
						   reads, past the caller's
						   envelope */
	pst_spool_saved_fn	 done;
	void			*arg;
};

static void
later_done(struct pst_log_rec *recs, size_t n, const struct pst_err *err,
    void *arg)
{
	struct later *l = arg;

	if (err == NULL) {
		spool_store_applied(l->spool, recs, n);
		if (l->rec.type == PST_REC_DEL)
			remove_files(l->spool, &l->e);
	}
	spool_store_unlock(l->spool, l->e.id);
	l->done(l->arg, err);
	free(l->text);
	free(l);
}

int
spool_store_change_later(struct pst_spool *spool, const struct idx_entry *e,
    const struct pst_spool_env *env, pst_spool_saved_fn done, void *arg,
    struct pst_err *err)
{
	struct pst_log *log;
	struct later *l;
	size_t len;
	int rc;

	if (spool->writer == NULL) {
		/* A tool: written on the spot. */
		rc = env != NULL ? spool_store_update(spool, e, env, err) :
		    spool_store_remove(spool, e, "removed", err);
		if (rc == -1)
			return -1;
		spool_store_unlock(spool, e->id);
		done(arg, NULL);
		return 0;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return spool_sys(err, ENOMEM, "saving message %016" PRIx64,
		    e->id);
	l->spool = spool;
	l->e = *e;
	l->done = done;
	l->arg = arg;
	l->rec.id = e->id;
	if (env != NULL) {
		if (pst_spool_env_encode(env, &l->text, &len, err) == -1) {
			free(l);
			return -1;
		}
		l->rec.type = PST_REC_ENV;
		l->rec.env = l->text;
		l->rec.env_len = len;
		l->brief.arrival = env->arrival;
		l->brief.next_attempt = env->next_attempt;
		l->brief.held = env->held;
		l->rec.decoded = &l->brief;
	} else {
		l->rec.type = PST_REC_DEL;
		l->rec.data = "removed";
		l->rec.data_len = strlen(l->rec.data);
	}
	if ((log = log_of(spool, err)) == NULL || pst_log_append_later(log,
	    &l->rec, 1, later_done, l, err) == -1) {
		free(l->text);
		free(l);
		return -1;
	}
	return 0;
}

/*
 * Scanning: every live message's envelope, the files of each segment
 * opened once.
 */

struct scan_item {
	uint64_t	 seq;
	uint64_t	 off;
	struct idx_entry e;
};

static int
scan_collect(struct idx_entry *e, void *arg)
{
	struct scan_item **p = arg;

	(*p)->seq = e->env_seq;
	(*p)->off = e->env_off;
	(*p)->e = *e;
	(*p)++;
	return 0;
}

static int
scan_cmp(const void *a, const void *b)
{
	const struct scan_item *x = a, *y = b;

	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	return x->e.id < y->e.id ? -1 : x->e.id > y->e.id;
}

/* Every live message's entry, in the order their envelopes lie. */
static struct scan_item *
scan_items(struct pst_spool *spool, size_t *n, struct pst_err *err)
{
	struct scan_item *items, *end;

	if (spool_store_load(spool, false, err) == -1)
		return NULL;
	pthread_mutex_lock(&spool->mtx);
	*n = spool->idx->n;
	if ((items = calloc(*n > 0 ? *n : 1, sizeof(*items))) == NULL) {
		pthread_mutex_unlock(&spool->mtx);
		spool_sys(err, ENOMEM, "scanning the queue");
		return NULL;
	}
	end = items;
	spool_idx_each(spool->idx, scan_collect, &end);
	pthread_mutex_unlock(&spool->mtx);
	qsort(items, *n, sizeof(*items), scan_cmp);
	return items;
}

/*
 * Reads the envelope of 'it': 0, 1 when it is to be skipped (reported),
 * -1 with 'err' when the scan must stop.
 */
static int
scan_read(struct pst_spool *spool, const struct scan_item *it,
    struct pst_spool_env **env, struct pst_err *err)
{
	struct pst_err rerr;
	char rel[64];

	if (spool_store_read_env(spool, &it->e, env, &rerr) == 0)
		return 0;
	if (rerr.cls == PST_TEMP && rerr.sys_errno != EACCES &&
	    rerr.sys_errno != EPERM) {
		*err = rerr;
		return -1;
	}
	snprintf(rel, sizeof(rel), "message %016" PRIx64, it->e.id);
	spool_report(spool, PST_SPOOL_SKIPPED, rel, NULL, "%s", rerr.text);
	return 1;
}

int
spool_store_scan(struct pst_spool *spool, pst_spool_scan_fn fn, void *arg,
    struct pst_err *err)
{
	struct scan_item *items;
	struct pst_spool_env *env;
	size_t n, i;
	int rc = 0, got;

	if ((items = scan_items(spool, &n, err)) == NULL)
		return -1;
	for (i = 0; i < n && rc == 0; i++) {
		got = scan_read(spool, &items[i], &env, err);
		if (got == -1 || (got == 0 && fn(env, arg) == -1))
			rc = -1;
	}
	free(items);
	return rc;
}

/* The briefs the index has, and the entries whose envelope must be read. */
struct brief_ctx {
	struct pst_spool_brief	*briefs;
	size_t			 nbriefs;
	struct scan_item	*items;
	struct scan_item	*end;		/* scan_collect()'s cursor */
};

static int
brief_collect(struct idx_entry *e, void *arg)
{
	struct brief_ctx *c = arg;
	struct pst_spool_brief *b;

	if (!e->brief)
		return scan_collect(e, &c->end);
	b = &c->briefs[c->nbriefs++];
	pst_rec_id_format(e->id, b->id);
	b->arrival = (time_t)e->arrival;
	b->next_attempt = (time_t)e->next_attempt;
	b->held = e->held;
	return 0;
}

int
spool_store_scan_brief(struct pst_spool *spool, pst_spool_brief_fn fn,
    void *arg, struct pst_err *err)
{
	struct brief_ctx c = { NULL, 0, NULL, NULL };
	struct pst_spool_brief b;
	struct pst_spool_env *env;
	size_t i, n, nitems, unknown = 0;
	int rc = 0, got;

	if (spool_store_load(spool, false, err) == -1)
		return -1;
	pthread_mutex_lock(&spool->mtx);
	n = spool->idx->n;
	for (i = 0; i < n; i++)
		unknown += !spool->idx->entries[i].brief;
	c.briefs = calloc(n - unknown > 0 ? n - unknown : 1,
	    sizeof(*c.briefs));
	c.items = calloc(unknown > 0 ? unknown : 1, sizeof(*c.items));
	if (c.briefs == NULL || c.items == NULL) {
		pthread_mutex_unlock(&spool->mtx);
		free(c.briefs);
		free(c.items);
		return spool_sys(err, ENOMEM, "scanning the queue");
	}
	c.end = c.items;
	spool_idx_each(spool->idx, brief_collect, &c);
	pthread_mutex_unlock(&spool->mtx);
	nitems = (size_t)(c.end - c.items);
	for (i = 0; i < c.nbriefs && rc == 0; i++)
		if (fn(&c.briefs[i], arg) == -1)
			rc = -1;
	/* The rest as the disk holds them: each file front to back. */
	qsort(c.items, nitems, sizeof(*c.items), scan_cmp);
	for (i = 0; i < nitems && rc == 0; i++) {
		if ((got = scan_read(spool, &c.items[i], &env, err)) == -1) {
			rc = -1;
			break;
		}
		if (got == 1)
			continue;
		pst_rec_id_format(c.items[i].e.id, b.id);
		b.arrival = env->arrival;
		b.next_attempt = env->next_attempt;
		b.held = env->held;
		pst_spool_env_free(env);
		if (fn(&b, arg) == -1)
			rc = -1;
	}
	free(c.briefs);
	free(c.items);
	return rc;
}

/*
 * Giving segments back: the oldest, while nothing pins it.  What a
 * removal unlinked must be durable before the record of that removal
 * can go with its segment.
 */
int
spool_store_reclaim(struct pst_spool *spool, struct pst_err *err)
{
	struct idx_segment *s;
	char name[PST_SPOOL_ID_LEN + 1];
	uint64_t seq;
	bool synced = false;

	for (;;) {
		pthread_mutex_lock(&spool->mtx);
		s = spool_idx_oldest_free(spool->idx, spool->write_seq);
		seq = s != NULL ? s->seq : 0;
		pthread_mutex_unlock(&spool->mtx);
		if (seq == 0)
			return 0;
		if (!synced && (spool_fsync_dir(spool->bodiesfd, "bodies",
		    err) == -1 || spool_fsync_dir(spool->incomingfd,
		    "incoming", err) == -1))
			return -1;
		synced = true;
		pst_rec_id_format(seq, name);
		if (unlinkat(spool->logfd, name, 0) == -1 && errno != ENOENT)
			return spool_sys(err, errno, "removing log/%s", name);
		pthread_mutex_lock(&spool->mtx);
		spool_idx_forget_seg(spool->idx, seq);
		pthread_mutex_unlock(&spool->mtx);
	}
}

/*
 * Copying forward: when it pays (compact_due()), what still lives in the
 * oldest segment (MSG records, with bodies kept in the log, and current
 * envelopes of messages that wait long) is written again at the end of
 * the log, so that the oldest can go.  Messages being delivered are
 * skipped (their delivery writes their envelope anew anyway); the rest
 * are locked while copied, so that no update is overtaken by an older
 * copy.
 */

#define COMPACT_BATCH	128

struct compact_item {
	struct idx_entry	 e;
	char			*env;
	char			*body;
	struct pst_log_rec	 rec;
	unsigned char		 ref[PST_REC_EXTREF];
};

struct compact_ctx {
	uint64_t		 seq;
	struct compact_item	*items;
	size_t			 n;
};

static int
compact_pick(struct idx_entry *e, void *arg)
{
	struct compact_ctx *c = arg;

	if (c->n == COMPACT_BATCH || e->locked ||
	    (e->msg_seq != c->seq && e->env_seq != c->seq))
		return 0;
	e->locked = true;
	c->items[c->n++].e = *e;
	return 0;
}

/* The body of an entry whose body is in a segment, read whole. */
static int
compact_body(struct pst_spool *spool, struct compact_item *it,
    struct pst_err *err)
{
	uint64_t off;
	ssize_t n;
	int fd;

	if ((it->body = malloc(it->e.body_len > 0 ? it->e.body_len : 1)) ==
	    NULL)
		return spool_sys(err, ENOMEM, "copying a message forward");
	if ((fd = spool_store_body(spool, &it->e, &off, err)) == -1)
		return -1;
	n = pread(fd, it->body, it->e.body_len, (off_t)off);
	close(fd);
	if (n != (ssize_t)it->e.body_len)
		return spool_sys_read(err, n == -1 ? errno : EIO,
		    "copying the body of %016" PRIx64 " forward", it->e.id);
	return 0;
}

static int
compact_round(struct pst_spool *spool, uint64_t seq, struct pst_err *err)
{
	struct compact_ctx c = { seq, NULL, 0 };
	struct pst_log_rec recs[COMPACT_BATCH];
	struct compact_item *it;
	size_t i, n = 0;
	int rc = 0;

	if ((c.items = calloc(COMPACT_BATCH, sizeof(*c.items))) == NULL)
		return spool_sys(err, ENOMEM, "copying messages forward");
	pthread_mutex_lock(&spool->mtx);
	spool_idx_each(spool->idx, compact_pick, &c);
	pthread_mutex_unlock(&spool->mtx);
	for (i = 0; i < c.n && rc == 0; i++) {
		it = &c.items[i];
		if (spool_store_env_bytes(spool, &it->e, &it->env, err) == -1) {
			rc = -1;
			break;
		}
		memset(&it->rec, 0, sizeof(it->rec));
		it->rec.id = it->e.id;
		it->rec.copy = true;
		it->rec.env = it->env;
		it->rec.env_len = it->e.env_len;
		if (it->e.msg_seq != seq)
			it->rec.type = PST_REC_ENV;
		else if (it->e.body == IDX_BODY_EXTERNAL) {
			/* The MSG again: without it a replay forgets it. */
			it->rec.type = PST_REC_MSG;
			it->rec.flags = PST_REC_EXTERNAL;
			pst_rec_extref_encode(it->ref, it->e.body_off,
			    it->e.body_len);
			it->rec.data = it->ref;
			it->rec.data_len = sizeof(it->ref);
		} else {
			if (compact_body(spool, it, err) == -1) {
				rc = -1;
				break;
			}
			it->rec.type = PST_REC_MSG;
			it->rec.data = it->body;
			it->rec.data_len = it->e.body_len;
		}
		recs[n++] = it->rec;
	}
	if (rc == 0 && n > 0)
		rc = spool_store_append(spool, recs, n, err);
	for (i = 0; i < c.n; i++) {
		spool_store_unlock(spool, c.items[i].e.id);
		free(c.items[i].env);
		free(c.items[i].body);
	}
	free(c.items);
	return rc == -1 ? -1 : (int)n;
}

/*
 * The oldest segment, if copying forward what lives in it pays: it is
 * pinned, two newer ones exist, and the log (but the segment being
 * written) is at least half dead, so that copying frees more than it
 * writes.  A queue that is all live (the upstream down for a day) is
 * left where it lies.  The mutex held; 0 for none.
 */
static uint64_t
compact_due(struct pst_spool *spool)
{
	const struct spool_idx *idx = spool->idx;
	uint64_t size = 0, live = 0;
	size_t i;

	if (idx->nsegs < 3 || idx->segs[0].pins == 0)
		return 0;
	for (i = 0; i < idx->nsegs; i++)
		if (idx->segs[i].seq != spool->write_seq) {
			size += idx->segs[i].size;
			live += idx->segs[i].live;
		}
	return size >= 2 * live ? idx->segs[0].seq : 0;
}

int
spool_store_compact(struct pst_spool *spool, struct pst_err *err)
{
	uint64_t seq, last = 0;
	size_t segs;
	int n;

	/* At most one pass over the segments: what is copied goes last. */
	pthread_mutex_lock(&spool->mtx);
	segs = spool->idx->nsegs;
	pthread_mutex_unlock(&spool->mtx);
	for (;;) {
		pthread_mutex_lock(&spool->mtx);
		seq = compact_due(spool);
		pthread_mutex_unlock(&spool->mtx);
		if (seq == 0 || (seq != last && segs-- == 0))
			return 0;
		last = seq;
		if ((n = compact_round(spool, seq, err)) == -1)
			return -1;
		if (n == 0)
			return 0;	/* what is left is being delivered */
	}
}
