/*
 * log.c: the log writer.
 *
 * Requests wait in 'waiting' under the mutex.  The first request to find
 * the writer idle starts its job on the writer pool; the job takes
 * everything waiting (up to PST_LOG_BATCH_BYTES) as one batch, writes and
 * flushes it, reports it, and takes the next, until nothing waits.  So
 * whatever arrives while a batch is on its way to the disk goes in the
 * next one, only the job touches the segment, and a quiet log has no
 * thread spinning.  A batch is reported twice over: requests with a
 * callback get it on the loop (pst_pool_post()), threads waiting in
 * pst_log_append_wait() are woken directly.  Without a pool the same
 * batch code runs on the caller's thread.
 *
 * Requests made with pst_log_append_later() do not start a batch by
 * themselves: the job waits on 'wake' until another request comes, many
 * of them gather, or the oldest has waited 'later_ms'.
 */
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "common/codec.h"
#include "common/err.h"
#include "common/pool.h"
#include "spool/log.h"
#include "spool/spool_int.h"

struct request {
	struct request		*next;
	struct pst_log_rec	*recs;
	size_t			 n;
	pst_log_cb		 cb;		/* or a waiting thread: */
	void			*arg;
	bool			 later;		/* rides the next flush */
	bool			 done;
	struct pst_err		 err;
};

struct batch {
	struct pst_log		*log;
	struct request		*head;
	uint64_t		 bytes;
	size_t			 records;
	struct pst_err		 err;
};

struct pst_log {
	struct pst_log_opts	 o;
	pthread_mutex_t		 mtx;
	pthread_cond_t		 cond;		/* a waited-for batch is done */
	pthread_cond_t		 wake;		/* the writer may stop waiting
						   for company */
	/* Under the mutex. */
	struct request		*waiting;
	struct request		**waiting_tail;
	size_t			 nwaiting;	/* requests */
	size_t			 nlater;	/* of them, pst_log_append_later() */
	struct timespec		 later_due;	/* when the oldest of those
						   must be on its way */
	bool			 busy;		/* the writer job runs */
	bool			 hurry;		/* pst_log_hurry() */
	uint64_t		 batches;
	uint64_t		 records;
	/* The writer's: the job's, or the caller's without a pool. */
	int			 fd;		/* current segment, or -1 */
	uint64_t		 seq;		/* of the current segment */
	uint64_t		 next_seq;	/* of the next one */
	uint64_t		 off;		/* where the next record goes */
	uint64_t		 cap;		/* preallocated bytes */
	uint64_t		*unacked;	/* ids of a failed batch */
	size_t			 nunacked;
};

static const unsigned char zeros[PST_REC_ALIGN];

/*
 * Segments.
 */

/* Cuts the current segment to what it holds and lets it go. */
static void
seg_close(struct pst_log *log)
{
	if (log->fd == -1)
		return;
	/* Only frees the preallocated rest: a reader stops at zeros too. */
	(void)ftruncate(log->fd, (off_t)log->off);
	close(log->fd);
	log->fd = -1;
}

/*
 * Starts the next segment with room for 'need' bytes of records.  Its
 * number is used up even when this fails, so a name left behind by a
 * failed attempt is never tried again.
 */
static int
seg_open(struct pst_log *log, uint64_t need, struct pst_err *err)
{
	unsigned char hdr[PST_SEG_HEADER];
	char name[PST_SPOOL_ID_LEN + 1];
	uint64_t cap;
	int fd, rc;

	seg_close(log);
	cap = log->o.segment_bytes;
	if (cap < PST_SEG_HEADER + need)
		cap = PST_SEG_HEADER + need;
	pst_rec_id_format(log->next_seq, name);
	fd = openat(log->o.logfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, log->o.file_mode);
	if (fd == -1) {
		log->next_seq++;
		return spool_sys(err, errno, "creating segment log/%s", name);
	}
	if ((rc = posix_fallocate(fd, 0, (off_t)cap)) != 0) {
		spool_sys(err, rc, "preallocating segment log/%s", name);
		goto fail;
	}
	pst_seg_header_encode(hdr, log->next_seq, time(NULL));
	if (pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr)) {
		spool_sys(err, errno != 0 ? errno : EIO,
		    "writing segment log/%s", name);
		goto fail;
	}
	if (fdatasync(fd) == -1) {
		spool_sys(err, errno, "flushing segment log/%s", name);
		goto fail;
	}
	if (spool_fsync_dir(log->o.logfd, "log", err) == -1)
		goto fail;
	log->fd = fd;
	log->off = PST_SEG_HEADER;
	log->cap = cap;
	log->seq = log->next_seq++;
	return 0;
fail:
	close(fd);
	unlinkat(log->o.logfd, name, 0);
	log->next_seq++;
	return -1;
}

/*
 * Batches.
 */

struct iov_list {
	struct iovec	*v;
	size_t		 n;
	size_t		 cap;
};

static int
iov_add(struct iov_list *l, const void *p, size_t len)
{
	struct iovec *v;

	if (len == 0)
		return 0;
	if (l->n == l->cap) {
		l->cap = l->cap == 0 ? 64 : l->cap * 2;
		if ((v = reallocarray(l->v, l->cap, sizeof(*v))) == NULL)
			return -1;
		l->v = v;
	}
	l->v[l->n].iov_base = (void *)p;	/* written from, never to */
	l->v[l->n].iov_len = len;
	l->n++;
	return 0;
}

/* The payload of 'r' as iovecs after its header, and its sum. */
static int
rec_payload(struct iov_list *l, const struct pst_log_rec *r, uint32_t *sum)
{
	struct evbuffer_iovec *ext;
	uint32_t crc;
	int i, n;

	crc = pst_crc32c(r->env, r->env_len);
	if (iov_add(l, r->env, r->env_len) == -1)
		return -1;
	if (r->body == NULL) {
		*sum = pst_crc32c_more(crc, r->data, r->data_len);
		return iov_add(l, r->data, r->data_len);
	}
	n = evbuffer_peek(r->body, -1, NULL, NULL, 0);
	if (n > 0) {
		if ((ext = calloc((size_t)n, sizeof(*ext))) == NULL)
			return -1;
		evbuffer_peek(r->body, -1, NULL, ext, n);
		for (i = 0; i < n; i++) {
			crc = pst_crc32c_more(crc, ext[i].iov_base,
			    ext[i].iov_len);
			if (iov_add(l, ext[i].iov_base, ext[i].iov_len) == -1) {
				free(ext);
				return -1;
			}
		}
		free(ext);
	}
	*sum = crc;
	return 0;
}

static size_t
rec_data_len(const struct pst_log_rec *r)
{
	return r->body != NULL ? evbuffer_get_length(r->body) : r->data_len;
}

/* Writes all of 'l' at 'off'. */
static int
write_iovs(int fd, struct iov_list *l, uint64_t off, struct pst_err *err)
{
	struct iovec *v = l->v;
	size_t left = l->n;
	ssize_t w;
	int cnt;

	while (left > 0) {
		cnt = left > IOV_MAX ? IOV_MAX : (int)left;
		if ((w = pwritev(fd, v, cnt, (off_t)off)) == -1) {
			if (errno == EINTR)
				continue;
			return spool_sys(err, errno, "writing to the log");
		}
		if (w == 0)
			return spool_sys(err, EIO, "writing to the log");
		off += (uint64_t)w;
		while (left > 0 && (size_t)w >= v->iov_len) {
			w -= (ssize_t)v->iov_len;
			v++;
			left--;
		}
		if (left > 0 && w > 0) {
			v->iov_base = (char *)v->iov_base + w;
			v->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/*
 * Adds one record: its header into 'hdr' (32 bytes the caller keeps),
 * then its payload and padding.  Sets its offset.
 */
static int
add_record(struct iov_list *l, unsigned char *hdr, struct pst_log_rec *r,
    uint64_t *off)
{
	struct pst_rec rec;
	uint64_t size;
	size_t dlen = rec_data_len(r);

	memset(&rec, 0, sizeof(rec));
	rec.type = r->type;
	rec.flags = r->flags;
	rec.id = r->id;
	rec.env_len = (uint32_t)r->env_len;
	rec.data_len = (uint32_t)dlen;
	if (iov_add(l, hdr, PST_REC_HEADER) == -1 ||
	    rec_payload(l, r, &rec.sum) == -1)
		return -1;
	pst_rec_encode(hdr, &rec);
	size = pst_rec_size(rec.env_len, rec.data_len);
	if (iov_add(l, zeros, (size_t)(size - PST_REC_HEADER - r->env_len -
	    dlen)) == -1)
		return -1;
	r->offset = *off;
	*off += size;
	return 0;
}

/* The DEL records for the messages of a failed batch. */
static struct pst_log_rec *
unacked_recs(struct pst_log *log)
{
	struct pst_log_rec *d;
	size_t i;

	if ((d = calloc(log->nunacked, sizeof(*d))) == NULL)
		return NULL;
	for (i = 0; i < log->nunacked; i++) {
		d[i].type = PST_REC_DEL;
		d[i].id = log->unacked[i];
		d[i].data = PST_LOG_NOT_ACKED;
		d[i].data_len = strlen(PST_LOG_NOT_ACKED);
	}
	return d;
}

/* Remembers the messages of a failed batch for the next one. */
static void
remember_unacked(struct pst_log *log, struct batch *b)
{
	struct request *q;
	uint64_t *ids;
	size_t i;

	for (q = b->head; q != NULL; q = q->next)
		for (i = 0; i < q->n; i++) {
			if (q->recs[i].type != PST_REC_MSG ||
			    q->recs[i].copy)
				continue;
			ids = reallocarray(log->unacked, log->nunacked + 1,
			    sizeof(*ids));
			if (ids == NULL)
				return;	/* the message may come back: sent
					   twice, never lost */
			log->unacked = ids;
			log->unacked[log->nunacked++] = q->recs[i].id;
		}
}

/* Writes and flushes batch 'b'; on the writer's thread. */
static void
batch_write(struct batch *b)
{
	struct pst_log *log = b->log;
	struct pst_log_rec *dels = NULL;
	struct iov_list l = { NULL, 0, 0 };
	unsigned char (*hdrs)[PST_REC_HEADER] = NULL;
	struct request *q;
	uint64_t off, need = 0;
	size_t i, h = 0, ndels = log->nunacked;
	bool sync_bodies = false;

	pst_err_clear(&b->err);
	if (ndels > 0 && (dels = unacked_recs(log)) == NULL)
		goto nomem;
	if ((hdrs = calloc(b->records + ndels, PST_REC_HEADER)) == NULL)
		goto nomem;
	for (i = 0; i < ndels; i++)
		need += pst_rec_size(0, (uint32_t)dels[i].data_len);
	for (q = b->head; q != NULL; q = q->next)
		for (i = 0; i < q->n; i++) {
			need += pst_rec_size((uint32_t)q->recs[i].env_len,
			    (uint32_t)rec_data_len(&q->recs[i]));
			sync_bodies |= q->recs[i].sync_bodies;
		}
	if (sync_bodies && spool_fsync_dir(log->o.bodiesfd, "bodies",
	    &b->err) == -1)
		goto fail;
	if ((log->fd == -1 || log->cap - log->off < need) &&
	    seg_open(log, need, &b->err) == -1)
		goto fail;
	off = log->off;
	for (i = 0; i < ndels; i++)
		if (add_record(&l, hdrs[h++], &dels[i], &off) == -1)
			goto nomem;
	for (q = b->head; q != NULL; q = q->next)
		for (i = 0; i < q->n; i++) {
			if (add_record(&l, hdrs[h++], &q->recs[i], &off) == -1)
				goto nomem;
			q->recs[i].seq = log->seq;
		}
	if (write_iovs(log->fd, &l, log->off, &b->err) == -1)
		goto broken;
	if (fdatasync(log->fd) == -1) {
		spool_sys(&b->err, errno, "flushing the log");
		goto broken;
	}
	log->off = off;
	log->nunacked = 0;
	goto out;
nomem:
	spool_sys(&b->err, ENOMEM, "writing to the log");
	goto fail;
broken:
	/* What the segment holds past log->off is unknown: leave it. */
	close(log->fd);
	log->fd = -1;
fail:
	remember_unacked(log, b);
out:
	free(l.v);
	free(hdrs);
	free(dels);
}

static void
pause_briefly(void)
{
	struct timespec pause = { 0, 10 * 1000000L };

	nanosleep(&pause, NULL);
}

/* Moves waiting requests into a new batch (the mutex held). */
static struct batch *
batch_take(struct pst_log *log)
{
	struct batch *b;
	struct request *q, **tail;
	size_t i;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	b->log = log;
	tail = &b->head;
	while ((q = log->waiting) != NULL &&
	    (b->head == NULL || b->bytes < PST_LOG_BATCH_BYTES)) {
		log->waiting = q->next;
		q->next = NULL;
		*tail = q;
		tail = &q->next;
		log->nwaiting--;
		if (q->later)
			log->nlater--;
		for (i = 0; i < q->n; i++)
			b->bytes += pst_rec_size((uint32_t)q->recs[i].env_len,
			    (uint32_t)rec_data_len(&q->recs[i]));
		b->records += q->n;
	}
	if (log->waiting == NULL)
		log->waiting_tail = &log->waiting;
	return b;
}

/* On the loop: the callbacks of a batch's requests. */
static void
batch_report(void *arg)
{
	struct batch *b = arg;
	struct request *q;

	while ((q = b->head) != NULL) {
		b->head = q->next;
		q->cb(q->recs, q->n, b->err.cls == PST_OK ? NULL : &b->err,
		    q->arg);
		free(q);
	}
	free(b);
}

/*
 * Hands a written batch's outcome to its requesters: waiting threads are
 * woken here, callbacks go to the loop.
 */
static void
batch_finish(struct pst_log *log, struct batch *b)
{
	struct request *q, **qp, *cbs = NULL, **cbs_tail = &cbs;
	struct pst_err err;

	pthread_mutex_lock(&log->mtx);
	log->batches++;
	log->records += b->records;
	for (qp = &b->head; (q = *qp) != NULL; ) {
		*qp = q->next;
		if (q->cb == NULL) {
			q->err = b->err;
			q->done = true;
		} else {
			q->next = NULL;
			*cbs_tail = q;
			cbs_tail = &q->next;
		}
	}
	pthread_cond_broadcast(&log->cond);
	pthread_mutex_unlock(&log->mtx);
	b->head = cbs;
	if (cbs == NULL) {
		free(b);
		return;
	}
	/* Out of memory for the report: wait for some rather than drop it. */
	while (pst_pool_post(log->o.writer, batch_report, b, &err) == -1)
		pause_briefly();
}

/*
 * Whether what waits should be written now (the mutex held): something
 * waits that is not content to ride a later flush, or those that are
 * have waited long enough or are many.
 */
static bool
batch_due(struct pst_log *log)
{
	struct timespec now;

	if (log->hurry || log->nwaiting > log->nlater ||
	    log->nlater >= PST_LOG_LATER_MAX)
		return true;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > log->later_due.tv_sec ||
	    (now.tv_sec == log->later_due.tv_sec &&
	    now.tv_nsec >= log->later_due.tv_nsec);
}

/* The writer job: batch after batch until nothing waits. */
static void
writer_job(void *arg)
{
	struct pst_log *log = arg;
	struct batch *b;

	for (;;) {
		pthread_mutex_lock(&log->mtx);
		while (log->waiting != NULL && !batch_due(log))
			(void)pthread_cond_timedwait(&log->wake, &log->mtx,
			    &log->later_due);
		if (log->waiting == NULL) {
			log->busy = false;
			pthread_mutex_unlock(&log->mtx);
			return;
		}
		b = batch_take(log);
		pthread_mutex_unlock(&log->mtx);
		if (b == NULL) {
			pause_briefly();	/* no memory: wait for some */
			continue;
		}
		batch_write(b);
		batch_finish(log, b);
	}
}

/*
 * Queues request 'q' and starts the writer if it is idle.  Returns 0, or
 * -1 with 'err' when the writer cannot start (then 'q' is not queued).
 */
static int
enqueue(struct pst_log *log, struct request *q, struct pst_err *err)
{
	pthread_mutex_lock(&log->mtx);
	if (!log->busy && pst_pool_submit(log->o.writer, writer_job, NULL, log,
	    err) == -1) {
		pthread_mutex_unlock(&log->mtx);
		return -1;
	}
	log->busy = true;
	*log->waiting_tail = q;
	log->waiting_tail = &q->next;
	log->nwaiting++;
	if (q->later && log->nlater++ == 0) {
		clock_gettime(CLOCK_MONOTONIC, &log->later_due);
		log->later_due.tv_sec += log->o.later_ms / 1000;
		log->later_due.tv_nsec += (long)(log->o.later_ms % 1000) *
		    1000000L;
		if (log->later_due.tv_nsec >= 1000000000L) {
			log->later_due.tv_sec++;
			log->later_due.tv_nsec -= 1000000000L;
		}
	}
	if (!q->later || log->nlater >= PST_LOG_LATER_MAX)
		pthread_cond_signal(&log->wake);
	pthread_mutex_unlock(&log->mtx);
	return 0;
}

/*
 * The API.
 */

struct pst_log *
pst_log_new(const struct pst_log_opts *opts, struct pst_err *err)
{
	pthread_condattr_t attr;
	struct pst_log *log;

	if ((log = calloc(1, sizeof(*log))) == NULL) {
		spool_sys(err, ENOMEM, "starting the log writer");
		return NULL;
	}
	log->o = *opts;
	if (log->o.segment_bytes == 0)
		log->o.segment_bytes = PST_LOG_SEGMENT_BYTES;
	if (log->o.later_ms == 0)
		log->o.later_ms = PST_LOG_LATER_MS;
	if (log->o.file_mode == 0)
		log->o.file_mode = 0600;
	log->waiting_tail = &log->waiting;
	log->fd = -1;
	log->next_seq = opts->next_seq;
	pthread_mutex_init(&log->mtx, NULL);
	pthread_cond_init(&log->cond, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&log->wake, &attr);
	pthread_condattr_destroy(&attr);
	return log;
}

void
pst_log_hurry(struct pst_log *log)
{
	pthread_mutex_lock(&log->mtx);
	log->hurry = true;
	pthread_cond_signal(&log->wake);
	pthread_mutex_unlock(&log->mtx);
}

void
pst_log_free(struct pst_log *log)
{
	if (log == NULL)
		return;
	seg_close(log);
	free(log->unacked);
	pthread_cond_destroy(&log->cond);
	pthread_cond_destroy(&log->wake);
	pthread_mutex_destroy(&log->mtx);
	free(log);
}

/* Refuses records the reader would refuse. */
static int
check_recs(const struct pst_log_rec *recs, size_t n, struct pst_err *err)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (recs[i].env_len > PST_SPOOL_ENV_MAX ||
		    rec_data_len(&recs[i]) > PST_REC_DATA_MAX)
			return spool_bad(err, "record of message %016llx too "
			    "large for the log", (unsigned long long)recs[i].id);
	return 0;
}

static int
append_cb(struct pst_log *log, struct pst_log_rec *recs, size_t n,
    bool later, pst_log_cb cb, void *arg, struct pst_err *err)
{
	struct request *q;

	if (check_recs(recs, n, err) == -1)
		return -1;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return spool_sys(err, ENOMEM, "writing to the log");
	q->recs = recs;
	q->n = n;
	q->cb = cb;
	q->arg = arg;
	q->later = later;
	if (enqueue(log, q, err) == -1) {
		free(q);
		return -1;
	}
	return 0;
}

int
pst_log_append(struct pst_log *log, struct pst_log_rec *recs, size_t n,
    pst_log_cb cb, void *arg, struct pst_err *err)
{
	return append_cb(log, recs, n, false, cb, arg, err);
}

int
pst_log_append_later(struct pst_log *log, struct pst_log_rec *recs,
    size_t n, pst_log_cb cb, void *arg, struct pst_err *err)
{
	return append_cb(log, recs, n, true, cb, arg, err);
}

int
pst_log_append_wait(struct pst_log *log, struct pst_log_rec *recs, size_t n,
    struct pst_err *err)
{
	struct request q;

	if (check_recs(recs, n, err) == -1)
		return -1;
	memset(&q, 0, sizeof(q));
	q.recs = recs;
	q.n = n;
	if (enqueue(log, &q, err) == -1)
		return -1;
	pthread_mutex_lock(&log->mtx);
	while (!q.done)
		pthread_cond_wait(&log->cond, &log->mtx);
	pthread_mutex_unlock(&log->mtx);
	if (q.err.cls != PST_OK) {
		*err = q.err;
		return -1;
	}
	return 0;
}

int
pst_log_append_sync(struct pst_log *log, struct pst_log_rec *recs, size_t n,
    struct pst_err *err)
{
	struct request q;
	struct batch b;

	if (check_recs(recs, n, err) == -1)
		return -1;
	memset(&q, 0, sizeof(q));
	q.recs = recs;
	q.n = n;
	memset(&b, 0, sizeof(b));
	b.log = log;
	b.head = &q;
	b.records = n;
	batch_write(&b);
	pthread_mutex_lock(&log->mtx);
	log->batches++;
	log->records += n;
	pthread_mutex_unlock(&log->mtx);
	if (b.err.cls != PST_OK) {
		*err = b.err;
		return -1;
	}
	return 0;
}

int
pst_log_write_one(int fd, struct pst_log_rec *rec, struct pst_err *err)
{
	struct iov_list l = { NULL, 0, 0 };
	unsigned char hdr[PST_REC_HEADER];
	uint64_t off = 0;
	int rc = -1;

	if (check_recs(rec, 1, err) == -1)
		return -1;
	if (add_record(&l, hdr, rec, &off) == -1)
		spool_sys(err, ENOMEM, "writing a record");
	else if (write_iovs(fd, &l, 0, err) == 0) {
		if (fdatasync(fd) == -1)
			spool_sys(err, errno, "flushing a record");
		else
			rc = 0;
	}
	rec->seq = 0;
	free(l.v);
	return rc;
}

void
pst_log_stats(struct pst_log *log, uint64_t *batches, uint64_t *records)
{
	pthread_mutex_lock(&log->mtx);
	*batches = log->batches;
	*records = log->records;
	pthread_mutex_unlock(&log->mtx);
}
