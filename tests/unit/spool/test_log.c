#include <sys/stat.h>

#include <dirent.h>
#include <pthread.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "common/err.h"
#include "common/pool.h"
#include "spool/log.h"
#include "spool/record.h"
#include "spool/spool.h"
#include "spool_test.h"
#include "unit.h"

#define ID0	UINT64_C(0x0192f3c2a1b00000)

/* A scratch log/ and bodies/, and a writer on them. */
struct fixture {
	char		*dir;
	int		 logfd;
	int		 bodiesfd;
	struct pst_log	*log;
	/* A message each: its envelope text and body. */
	char		*env[64];
	size_t		 env_len[64];
	struct evbuffer	*body[64];
	struct pst_log_rec rec[64];
};

static unsigned fx_later_ms;	/* for the next fx_open(); 0: the default */

static void
fx_open(struct fixture *fx, uint64_t segment_bytes, struct pst_pool *pool)
{
	struct pst_log_opts o;
	struct pst_err err;
	char path[512];

	memset(fx, 0, sizeof(*fx));
	fx->dir = st_mkdtemp();
	snprintf(path, sizeof(path), "%s/log", fx->dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	fx->logfd = open(path, O_RDONLY | O_DIRECTORY);
	snprintf(path, sizeof(path), "%s/bodies", fx->dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	fx->bodiesfd = open(path, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(fx->logfd, 0);
	ck_assert_int_ge(fx->bodiesfd, 0);
	memset(&o, 0, sizeof(o));
	o.logfd = fx->logfd;
	o.bodiesfd = fx->bodiesfd;
	o.next_seq = 1;
	o.segment_bytes = segment_bytes;
	o.writer = pool;
	o.later_ms = fx_later_ms;
	fx->log = pst_log_new(&o, &err);
	ck_assert_ptr_nonnull(fx->log);
}

static void
fx_close(struct fixture *fx)
{
	size_t i;

	pst_log_free(fx->log);
	for (i = 0; i < NELEMS(fx->env); i++) {
		free(fx->env[i]);
		if (fx->body[i] != NULL)
			evbuffer_free(fx->body[i]);
	}
	close(fx->logfd);
	close(fx->bodiesfd);
	st_rmrf(fx->dir);
	free(fx->dir);
}

/* Message 'i': an inline MSG record with a body of 'size' bytes. */
static struct pst_log_rec *
fx_msg(struct fixture *fx, size_t i, size_t size)
{
	struct pst_spool_env *env;
	struct pst_err err;
	size_t k;

	env = pst_spool_env_new(&err);
	ck_assert_ptr_nonnull(env);
	pst_rec_id_format(ID0 + i, env->id);
	env->arrival = 1732638178;
	env->size = size;
	ck_assert_int_eq(pst_spool_env_set_sender(env, "a@example.org", &err),
	    0);
	ck_assert_int_eq(pst_spool_env_add_rcpt(env, "b@example.org", 0, NULL,
	    &err), 0);
	ck_assert_int_eq(pst_spool_env_encode(env, &fx->env[i],
	    &fx->env_len[i], &err), 0);
	pst_spool_env_free(env);
	fx->body[i] = evbuffer_new();
	for (k = 0; k < size; k++)
		evbuffer_add(fx->body[i], &"0123456789\r\n"[k % 12], 1);
	memset(&fx->rec[i], 0, sizeof(fx->rec[i]));
	fx->rec[i].type = PST_REC_MSG;
	fx->rec[i].id = ID0 + i;
	fx->rec[i].env = fx->env[i];
	fx->rec[i].env_len = fx->env_len[i];
	fx->rec[i].body = fx->body[i];
	return &fx->rec[i];
}

/* The segments in log/, in order, as "seq:size" words. */
static void
fx_segments(struct fixture *fx, char *out, size_t len)
{
	struct dirent **names;
	struct stat st;
	int n, i;

	out[0] = '\0';
	n = scandirat(fx->logfd, ".", &names, NULL, alphasort);
	ck_assert_int_ge(n, 0);
	for (i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.') {
			ck_assert_int_eq(fstatat(fx->logfd, names[i]->d_name,
			    &st, 0), 0);
			snprintf(out + strlen(out), len - strlen(out), "%s%s:%lld",
			    out[0] != '\0' ? " " : "", names[i]->d_name + 15,
			    (long long)st.st_size);
		}
		free(names[i]);
	}
	free(names);
}

/* The records of segment 'seq' as type letters: M, E, D (and ! for bad). */
static void
fx_read(struct fixture *fx, uint64_t seq, char *out, size_t len,
    struct pst_seg_entry *first)
{
	unsigned char hdr[PST_SEG_HEADER];
	struct pst_seg_reader *r;
	struct pst_seg_entry e;
	struct pst_err err;
	struct stat st;
	char name[17];
	const char *why;
	uint64_t got;
	time_t t;
	size_t n = 0;
	int fd, item;

	pst_rec_id_format(seq, name);
	fd = openat(fx->logfd, name, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(pread(fd, hdr, sizeof(hdr), 0), sizeof(hdr));
	ck_assert_int_eq(pst_seg_header_decode(hdr, &got, &t, &why), 0);
	ck_assert_uint_eq(got, seq);
	r = pst_seg_reader_new(fd, PST_SEG_HEADER, (uint64_t)st.st_size, &err);
	ck_assert_ptr_nonnull(r);
	while ((item = pst_seg_next(r, &e, &err)) != PST_SEG_END) {
		ck_assert_uint_lt(n, len - 1);
		out[n] = item != PST_SEG_RECORD ? '!' :
		    e.rec.type == PST_REC_MSG ? 'M' :
		    e.rec.type == PST_REC_ENV ? 'E' : 'D';
		if (n++ == 0 && first != NULL)
			*first = e;
		else
			pst_spool_env_free(e.env);
	}
	out[n] = '\0';
	pst_seg_reader_free(r);
	close(fd);
}

START_TEST(sync_append_reads_back)
{
	struct fixture fx;
	struct pst_log_rec recs[3];
	struct pst_seg_entry first;
	struct pst_err err;
	uint64_t batches, records;
	char got[64], body[100];
	int fd;

	fx_open(&fx, 0, NULL);
	recs[0] = *fx_msg(&fx, 0, 100);
	memset(&recs[1], 0, sizeof(recs[1]));
	recs[1].type = PST_REC_ENV;
	recs[1].id = ID0;
	recs[1].env = fx.env[0];
	recs[1].env_len = fx.env_len[0];
	memset(&recs[2], 0, sizeof(recs[2]));
	recs[2].type = PST_REC_DEL;
	recs[2].id = ID0;
	recs[2].data = "delivered";
	recs[2].data_len = 9;
	ck_assert_int_eq(pst_log_append_sync(fx.log, recs, 3, &err), 0);
	ck_assert_uint_eq(recs[0].seq, 1);
	ck_assert_uint_eq(recs[0].offset, PST_SEG_HEADER);
	ck_assert_uint_eq(recs[1].offset, PST_SEG_HEADER +
	    pst_rec_size((uint32_t)fx.env_len[0], 100));
	fx_read(&fx, 1, got, sizeof(got), &first);
	ck_assert_str_eq(got, "MED");
	ck_assert_uint_eq(first.body_length, 100);
	fd = openat(fx.logfd, "0000000000000001", O_RDONLY);
	ck_assert_int_eq(pread(fd, body, 100, (off_t)first.body_offset), 100);
	ck_assert_mem_eq(body, "0123456789\r\n0123", 16);
	close(fd);
	pst_spool_env_free(first.env);
	pst_log_stats(fx.log, &batches, &records);
	ck_assert_uint_eq(batches, 1);
	ck_assert_uint_eq(records, 3);
	fx_close(&fx);
}
END_TEST

/*
 * A batch that does not fit starts a new segment, and the old one is cut
 * to what it holds; a batch larger than a segment gets one its size.
 */
START_TEST(segments_roll)
{
	struct fixture fx;
	struct pst_err err;
	char got[256];
	uint64_t size;
	size_t i;

	fx_open(&fx, 4096, NULL);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(pst_log_append_sync(fx.log,
		    fx_msg(&fx, i, 1500), 1, &err), 0);
	size = pst_rec_size((uint32_t)fx.env_len[0], 1500);
	fx_segments(&fx, got, sizeof(got));
	/* Two records a segment; the last one still preallocated. */
	snprintf(got + 200, 56, "1:%llu 2:4096",
	    (unsigned long long)(PST_SEG_HEADER + 2 * size));
	ck_assert_str_eq(got, got + 200);
	ck_assert_int_eq(pst_log_append_sync(fx.log, fx_msg(&fx, 4, 9000), 1,
	    &err), 0);
	ck_assert_uint_eq(fx.rec[4].seq, 3);
	pst_log_free(fx.log);
	fx.log = NULL;
	fx_segments(&fx, got, sizeof(got));
	snprintf(got + 200, 56, "1:%llu 2:%llu 3:%llu",
	    (unsigned long long)(PST_SEG_HEADER + 2 * size),
	    (unsigned long long)(PST_SEG_HEADER + 2 * size),
	    (unsigned long long)(PST_SEG_HEADER +
	    pst_rec_size((uint32_t)fx.env_len[4], 9000)));
	ck_assert_str_eq(got, got + 200);
	fx_read(&fx, 1, got, sizeof(got), NULL);
	ck_assert_str_eq(got, "MM");
	fx_read(&fx, 3, got, sizeof(got), NULL);
	ck_assert_str_eq(got, "M");
	fx_close(&fx);
}
END_TEST

/*
 * A failed batch fails its requests; the next batch starts a new segment
 * and begins with a DEL for each message of the failed one.
 */
/* The writer's first segment name is taken: creating it fails. */
static void
fx_take_first_name(struct fixture *fx)
{
	int fd;

	fd = openat(fx->logfd, "0000000000000001", O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
}

START_TEST(failed_batch_is_cancelled)
{
	struct fixture fx;
	struct pst_seg_entry first;
	struct pst_err err;
	char got[64];

	fx_open(&fx, 0, NULL);
	fx_take_first_name(&fx);
	ck_assert_int_eq(pst_log_append_sync(fx.log, fx_msg(&fx, 0, 10), 1,
	    &err), -1);
	ck_assert_int_eq(err.cls, PST_LOCAL);
	ck_assert_ptr_nonnull(strstr(err.text, "log/0000000000000001"));
	ck_assert_int_eq(pst_log_append_sync(fx.log, fx_msg(&fx, 1, 10), 1,
	    &err), 0);
	ck_assert_uint_eq(fx.rec[1].seq, 2);
	fx_read(&fx, 2, got, sizeof(got), &first);
	ck_assert_str_eq(got, "DM");
	ck_assert_uint_eq(first.rec.id, ID0);
	ck_assert_str_eq(first.reason, PST_LOG_NOT_ACKED);
	/* Said once: the next batch carries no DEL. */
	ck_assert_int_eq(pst_log_append_sync(fx.log, fx_msg(&fx, 2, 10), 1,
	    &err), 0);
	fx_read(&fx, 2, got, sizeof(got), NULL);
	ck_assert_str_eq(got, "DMM");
	fx_close(&fx);
}
END_TEST

/*
 * A copy forward that fails is not cancelled: the message's original
 * record still stands, and a DEL would take it away at the next start.
 */
START_TEST(failed_copy_is_not_cancelled)
{
	struct fixture fx;
	struct pst_log_rec *copy;
	struct pst_err err;
	char got[64];

	fx_open(&fx, 0, NULL);
	fx_take_first_name(&fx);
	copy = fx_msg(&fx, 0, 10);
	copy->copy = true;
	ck_assert_int_eq(pst_log_append_sync(fx.log, copy, 1, &err), -1);
	ck_assert_int_eq(pst_log_append_sync(fx.log, fx_msg(&fx, 1, 10), 1,
	    &err), 0);
	fx_read(&fx, 2, got, sizeof(got), NULL);
	ck_assert_str_eq(got, "M");
	fx_close(&fx);
}
END_TEST

START_TEST(too_large_refused)
{
	struct fixture fx;
	struct pst_log_rec rec;
	struct pst_err err;
	char got[64];

	fx_open(&fx, 0, NULL);
	memset(&rec, 0, sizeof(rec));
	rec.type = PST_REC_MSG;
	rec.id = ID0;
	rec.env = "x";
	rec.env_len = PST_SPOOL_ENV_MAX + 1;
	ck_assert_int_eq(pst_log_append_sync(fx.log, &rec, 1, &err), -1);
	ck_assert_int_eq(err.cls, PST_LOCAL);
	fx_segments(&fx, got, sizeof(got));
	ck_assert_str_eq(got, "");
	fx_close(&fx);
}
END_TEST

/* Asynchronous appends: what gathers while a batch is out goes together. */
struct async {
	struct event_base	*base;
	size_t			 done;
	size_t			 failed;
};

static void
async_cb(struct pst_log_rec *recs, size_t n, const struct pst_err *err,
    void *arg)
{
	struct async *a = arg;

	ck_assert_uint_eq(n, 1);
	ck_assert_uint_ne(recs[0].seq, 0);
	if (err != NULL)
		a->failed++;
	a->done++;
}

/* Keeps the writer's thread busy until told. */
static pthread_mutex_t gate_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;

static void
gate(void *arg)
{
	pthread_mutex_lock(&gate_mtx);
	while (!gate_open)
		pthread_cond_wait(&gate_cond, &gate_mtx);
	pthread_mutex_unlock(&gate_mtx);
}

static void
gate_release(void)
{
	pthread_mutex_lock(&gate_mtx);
	gate_open = true;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_mtx);
}

START_TEST(group_commit)
{
	struct fixture fx;
	struct async a = { 0 };
	struct pst_pool *pool;
	struct pst_err err;
	uint64_t batches, records;
	char got[64];
	size_t i;

	ck_assert_int_eq(evthread_use_pthreads(), 0);
	a.base = event_base_new();
	pool = pst_pool_new(a.base, 1, &err);
	ck_assert_ptr_nonnull(pool);
	fx_open(&fx, 0, pool);
	/* While a flush is out (the gate stands for it), requests gather. */
	ck_assert_int_eq(pst_pool_submit(pool, gate, NULL, NULL, &err), 0);
	for (i = 0; i < 50; i++)
		ck_assert_int_eq(pst_log_append(fx.log, fx_msg(&fx, i, 200),
		    1, async_cb, &a, &err), 0);
	ck_assert_uint_eq(a.done, 0);	/* never from inside the call */
	gate_release();
	while (a.done < 50)
		ck_assert_int_ne(event_base_loop(a.base, EVLOOP_ONCE), -1);
	ck_assert_uint_eq(a.failed, 0);
	pst_log_stats(fx.log, &batches, &records);
	ck_assert_uint_eq(batches, 1);
	ck_assert_uint_eq(records, 50);
	fx_read(&fx, 1, got, sizeof(got), NULL);
	ck_assert_uint_eq(strlen(got), 50);
	ck_assert_uint_eq(strspn(got, "M"), 50);
	pst_pool_free(pool);
	fx_close(&fx);
	event_base_free(a.base);
}
END_TEST

/* Threads that wait for their records: each returns once they are in. */
struct waiter {
	struct fixture	*fx;
	size_t		 i;
	int		 rc;
};

static void *
wait_thread(void *arg)
{
	struct waiter *w = arg;
	struct pst_err err;

	w->rc = pst_log_append_wait(w->fx->log, &w->fx->rec[w->i], 1, &err);
	return NULL;
}

START_TEST(waiting_threads)
{
	struct event_base *base;
	struct pst_pool *pool;
	struct fixture fx;
	struct waiter w[8];
	pthread_t t[8];
	struct pst_err err;
	uint64_t batches, records;
	char got[64];
	size_t i;

	ck_assert_int_eq(evthread_use_pthreads(), 0);
	base = event_base_new();
	pool = pst_pool_new(base, 1, &err);
	ck_assert_ptr_nonnull(pool);
	fx_open(&fx, 0, pool);
	for (i = 0; i < 8; i++) {
		fx_msg(&fx, i, 100);
		w[i].fx = &fx;
		w[i].i = i;
		w[i].rc = 1;
		ck_assert_int_eq(pthread_create(&t[i], NULL, wait_thread,
		    &w[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(w[i].rc, 0);
	}
	pst_log_stats(fx.log, &batches, &records);
	ck_assert_uint_eq(records, 8);
	ck_assert_uint_le(batches, 8);
	fx_read(&fx, 1, got, sizeof(got), NULL);
	ck_assert_str_eq(got, "MMMMMMMM");
	pst_pool_free(pool);
	fx_close(&fx);
	event_base_free(base);
}
END_TEST

/*
 * Records nobody waits on (what became of a delivery) ride the next
 * batch somebody waits on; alone, they go after the timer, when many, or
 * when the writer is told to hurry.
 */
struct later_fx {
	struct fixture		 fx;
	struct async		 a;
	struct pst_pool		*pool;
	struct pst_log_rec	*dels;
	size_t			 ndels;
};

static void
later_open(struct later_fx *l, unsigned later_ms, size_t ndels)
{
	struct pst_err err;
	size_t i;

	memset(l, 0, sizeof(*l));
	ck_assert_int_eq(evthread_use_pthreads(), 0);
	l->a.base = event_base_new();
	l->pool = pst_pool_new(l->a.base, 1, &err);
	ck_assert_ptr_nonnull(l->pool);
	fx_later_ms = later_ms;
	fx_open(&l->fx, 0, l->pool);
	fx_later_ms = 0;
	l->dels = calloc(ndels, sizeof(*l->dels));
	ck_assert_ptr_nonnull(l->dels);
	l->ndels = ndels;
	for (i = 0; i < ndels; i++) {
		l->dels[i].type = PST_REC_DEL;
		l->dels[i].id = ID0 + i;
		l->dels[i].data = "removed";
		l->dels[i].data_len = strlen("removed");
	}
}

static void
later_append(struct later_fx *l)
{
	struct pst_err err;
	size_t i;

	for (i = 0; i < l->ndels; i++)
		ck_assert_int_eq(pst_log_append_later(l->fx.log, &l->dels[i],
		    1, async_cb, &l->a, &err), 0);
}

static void
later_wait(struct later_fx *l, size_t done)
{
	while (l->a.done < done)
		ck_assert_int_ne(event_base_loop(l->a.base, EVLOOP_ONCE), -1);
	ck_assert_uint_eq(l->a.failed, 0);
}

static void
later_close(struct later_fx *l)
{
	pst_pool_free(l->pool);
	fx_close(&l->fx);
	event_base_free(l->a.base);
	free(l->dels);
}

START_TEST(later_rides_the_next_batch)
{
	struct later_fx l;
	struct pst_err err;
	uint64_t batches, records;
	char got[64];

	later_open(&l, 600000, 3);	/* a timer that never fires here */
	later_append(&l);
	ck_assert_int_ne(event_base_loop(l.a.base, EVLOOP_NONBLOCK), -1);
	ck_assert_uint_eq(l.a.done, 0);
	ck_assert_int_eq(pst_log_append(l.fx.log, fx_msg(&l.fx, 9, 100), 1,
	    async_cb, &l.a, &err), 0);
	later_wait(&l, 4);
	pst_log_stats(l.fx.log, &batches, &records);
	ck_assert_uint_eq(batches, 1);
	ck_assert_uint_eq(records, 4);
	fx_read(&l.fx, 1, got, sizeof(got), NULL);
	ck_assert_str_eq(got, "DDDM");
	later_close(&l);
}
END_TEST

START_TEST(later_alone_goes_after_the_timer)
{
	struct later_fx l;
	uint64_t batches, records;

	later_open(&l, 20, 2);
	later_append(&l);
	later_wait(&l, 2);
	pst_log_stats(l.fx.log, &batches, &records);
	ck_assert_uint_eq(records, 2);
	ck_assert_uint_ge(batches, 1);
	later_close(&l);
}
END_TEST

START_TEST(later_many_go_at_once)
{
	struct later_fx l;
	uint64_t batches, records;

	later_open(&l, 600000, PST_LOG_LATER_MAX);
	later_append(&l);
	later_wait(&l, PST_LOG_LATER_MAX);
	pst_log_stats(l.fx.log, &batches, &records);
	ck_assert_uint_eq(records, PST_LOG_LATER_MAX);
	later_close(&l);
}
END_TEST

START_TEST(later_hurried_at_stop)
{
	struct later_fx l;

	later_open(&l, 600000, 1);
	later_append(&l);
	pst_log_hurry(l.fx.log);
	later_wait(&l, 1);
	/* And what comes after the hurry goes at once too. */
	l.dels[0].id = ID0 + 1;
	later_append(&l);
	later_wait(&l, 2);
	later_close(&l);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("spool/log");
	TCase *tc = tcase_create("log");

	tcase_add_test(tc, sync_append_reads_back);
	tcase_add_test(tc, segments_roll);
	tcase_add_test(tc, failed_batch_is_cancelled);
	tcase_add_test(tc, failed_copy_is_not_cancelled);
	tcase_add_test(tc, too_large_refused);
	tcase_add_test(tc, group_commit);
	tcase_add_test(tc, waiting_threads);
	tcase_add_test(tc, later_rides_the_next_batch);
	tcase_add_test(tc, later_alone_goes_after_the_timer);
	tcase_add_test(tc, later_many_go_at_once);
	tcase_add_test(tc, later_hurried_at_stop);
	suite_add_tcase(s, tc);
	return s;
}
