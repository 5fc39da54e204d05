#include <sys/mount.h>
#include <sys/stat.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "common/err.h"
#include "common/pool.h"
#include "spool/spool.h"
#include "spool_test.h"
#include "unit.h"

#define BIG		(3u << 20)	/* async body size */
#define CHUNK		(64u << 10)

/* One async run: the loop, the pool and what the callbacks saw. */
struct run {
	struct event_base	*base;
	struct pst_pool		*pool;
	pthread_t		 loop_thread;
	struct pst_spool	*spool;
	struct pst_spool_msg	*msg;
	char			*data;
	size_t			 size, sent;
	int			 flushes;
	int			 off_loop;
	bool			 busy_refused;
	bool			 done;
	bool			 failed;
	struct pst_err		 err;
};

static char *dir;

static void
setup(void)
{
	dir = st_mkdtemp();
}

static void
teardown(void)
{
	st_rmrf(dir);
	free(dir);
}

static void
run_init(struct run *r, struct pst_spool *spool)
{
	struct pst_err err;

	memset(r, 0, sizeof(*r));
	ck_assert_int_eq(evthread_use_pthreads(), 0);
	r->base = event_base_new();
	ck_assert_ptr_nonnull(r->base);
	r->pool = pst_pool_new(r->base, 2, &err);
	ck_assert_ptr_nonnull(r->pool);
	r->loop_thread = pthread_self();
	r->spool = spool;
}

static void
run_loop(struct run *r)
{
	struct timeval limit = { 20, 0 };

	event_base_loopexit(r->base, &limit);
	event_base_dispatch(r->base);
	ck_assert_msg(r->done, "the commit never completed");
}

static void
run_free(struct run *r)
{
	pst_pool_free(r->pool);
	event_base_free(r->base);
	free(r->data);
}

static void	 feed(struct run *);

static void
committed(struct pst_spool_msg *msg, const struct pst_err *err, void *arg)
{
	struct run *r = arg;

	if (!pthread_equal(pthread_self(), r->loop_thread))
		r->off_loop++;
	r->msg = msg;
	r->done = true;
	if (err != NULL) {
		r->failed = true;
		r->err = *err;
	}
	event_base_loopbreak(r->base);
}

static void
flushed(struct pst_spool_msg *msg, const struct pst_err *err, void *arg)
{
	struct run *r = arg;

	if (!pthread_equal(pthread_self(), r->loop_thread))
		r->off_loop++;
	r->flushes++;
	if (err != NULL) {
		r->msg = msg;
		r->failed = true;
		r->done = true;
		r->err = *err;
		event_base_loopbreak(r->base);
		return;
	}
	feed(r);
}

/* Writes the body in chunks, flushing as told, then commits. */
static void
feed(struct run *r)
{
	struct pst_err err;
	size_t n;

	while (r->sent < r->size) {
		n = r->size - r->sent < CHUNK ? r->size - r->sent : CHUNK;
		ck_assert_int_eq(pst_spool_msg_write(r->msg, r->data + r->sent,
		    n, &err), 0);
		r->sent += n;
		if (pst_spool_msg_need_flush(r->msg)) {
			ck_assert_int_eq(pst_spool_msg_flush(r->msg, r->pool,
			    flushed, r, &err), 0);
			/* The job owns it now: writes are refused. */
			r->busy_refused = pst_spool_msg_write(r->msg, "x", 1,
			    &err) == -1 && strstr(err.text, "busy") != NULL;
			return;
		}
	}
	ck_assert_int_eq(pst_spool_msg_commit(r->msg, r->pool, committed, r,
	    &err), 0);
}

static struct pst_spool_msg *
new_msg(struct pst_spool *spool)
{
	struct pst_spool_msg *msg;
	struct pst_spool_env *env;
	struct pst_err err;

	msg = pst_spool_msg_begin(spool, &err);
	ck_assert_ptr_nonnull(msg);
	env = pst_spool_msg_env(msg);
	ck_assert_int_eq(pst_spool_env_set_sender(env, "a@example.org", &err),
	    0);
	ck_assert_int_eq(pst_spool_env_add_rcpt(env, "b@example.org",
	    PST_SPOOL_NOTIFY_FAILURE, "rfc822;b@example.org", &err), 0);
	ck_assert_int_eq(pst_spool_env_set_origin(env, "smtp [127.0.0.1]:1",
	    &err), 0);
	return msg;
}

static void
fill(struct run *r, size_t size)
{
	size_t i;

	r->size = size;
	r->data = malloc(size);
	ck_assert_ptr_nonnull(r->data);
	for (i = 0; i < size; i++)
		r->data[i] = (char)('a' + i % 23);
}

/* Nothing of the message anywhere: tmp/ empty, no queue file. */
static void
assert_no_trace(const char *id)
{
	ck_assert_int_eq(st_count(dir, "tmp"), 0);
	ck_assert(!st_exists(dir, st_env_path(id)));
	ck_assert(!st_exists(dir, st_body_path(id)));
}

START_TEST(msg_async_commit_writes_in_chunks_off_loop)
{
	struct pst_spool_env *env;
	struct pst_spool *spool;
	struct pst_err err;
	struct run r;
	char id[PST_SPOOL_ID_LEN + 1];
	char *body;
	size_t len;

	spool = st_open(dir, PST_SPOOL_CREATE, NULL);
	run_init(&r, spool);
	fill(&r, BIG);
	r.msg = new_msg(spool);
	snprintf(id, sizeof(id), "%s", pst_spool_msg_id(r.msg));
	feed(&r);
	/* Completions never run from inside the call. */
	ck_assert_int_eq(r.flushes, 0);
	run_loop(&r);
	ck_assert_msg(!r.failed, "%s", r.err.text);
	ck_assert_int_eq(r.off_loop, 0);
	ck_assert(r.busy_refused);
	ck_assert_int_ge(r.flushes, (int)(BIG / PST_SPOOL_FLUSH_BYTES) - 1);
	ck_assert(pst_spool_msg_committed(r.msg));
	ck_assert_uint_eq(pst_spool_msg_size(r.msg), BIG);

	body = st_read(dir, st_body_path(id), &len);
	ck_assert_uint_eq(len, BIG);
	ck_assert(memcmp(body, r.data, BIG) == 0);
	free(body);
	/* Without a daemon's log: a drop naming the body kept apart. */
	ck_assert_int_eq(st_mode(dir, st_body_path(id)) & 07777, 0600);
	ck_assert_int_eq(st_mode(dir, st_env_path(id)) & 07777, 0600);
	ck_assert_int_eq(st_count(dir, "tmp"), 0);

	env = pst_spool_read(spool, id, &err);
	ck_assert_msg(env != NULL, "%s", err.text);
	ck_assert_uint_eq(env->size, BIG);
	ck_assert_int_gt(env->arrival, 0);
	ck_assert_str_eq(env->rcpts[0].orcpt, "rfc822;b@example.org");
	pst_spool_env_free(env);

	env = pst_spool_msg_take_env(r.msg);
	ck_assert_str_eq(env->id, id);
	pst_spool_env_free(env);
	/* Committed: freeing leaves the files to the queue. */
	pst_spool_msg_free(r.msg, r.pool);
	ck_assert(st_exists(dir, st_env_path(id)));
	run_free(&r);
	pst_spool_close(spool);
}
END_TEST

START_TEST(msg_sync_commit_uses_the_spool_modes)
{
	struct pst_spool_opts opts = { 0 };
	struct pst_spool *spool;
	struct pst_err err;
	const char *id;

	opts.flags = PST_SPOOL_CREATE;
	opts.file_mode = 0640;
	opts.dir_mode = 0750;
	umask(077);
	spool = pst_spool_open(dir, &opts, &err);
	ck_assert_msg(spool != NULL, "%s", err.text);
	id = st_commit(spool, "Subject: hi\r\n\r\nbody\r\n", "b@x");
	ck_assert_int_eq(st_mode(dir, st_env_path(id)) & 07777, 0640);
	ck_assert(!st_exists(dir, st_body_path(id)));	/* small: inline */
	ck_assert_int_eq(st_mode(dir, "log") & 07777, 0750);
	ck_assert_int_eq(st_mode(dir, "incoming") & 07777, 0750);
	ck_assert_int_eq(st_mode(dir, "tmp") & 07777, 0750);
	ck_assert_int_eq(st_count(dir, "tmp"), 0);
	ck_assert_int_eq(st_count(dir, "quarantine"), 0);
	pst_spool_close(spool);
}
END_TEST

START_TEST(msg_empty_body_commits)
{
	struct pst_spool_msg *msg;
	struct pst_spool_env *env;
	struct pst_spool *spool;
	struct pst_err err;
	uint64_t off;
	int fd;

	spool = st_open(dir, PST_SPOOL_CREATE, NULL);
	msg = new_msg(spool);
	ck_assert_int_eq(pst_spool_msg_commit_sync(msg, &err), 0);
	env = pst_spool_read(spool, pst_spool_msg_id(msg), &err);
	ck_assert_ptr_nonnull(env);
	ck_assert_uint_eq(env->size, 0);
	fd = pst_spool_body_open(spool, env, &off, &err);
	ck_assert_int_ge(fd, 0);
	close(fd);
	/* A second commit or write is refused. */
	ck_assert_int_eq(pst_spool_msg_commit_sync(msg, &err), -1);
	ck_assert_int_eq(pst_spool_msg_write(msg, "x", 1, &err), -1);
	pst_spool_env_free(env);
	pst_spool_msg_free(msg, NULL);
	pst_spool_close(spool);
}
END_TEST

START_TEST(msg_ids_are_unique_sorted_and_spread)
{
	struct pst_spool_msg *msg;
	struct pst_spool *spool;
	struct pst_err err;
	char prev[PST_SPOOL_ID_LEN + 1] = "";
	unsigned buckets = 0;
	int i;

	spool = st_open(dir, PST_SPOOL_CREATE, NULL);
	for (i = 0; i < 20000; i++) {
		msg = pst_spool_msg_begin(spool, &err);
		ck_assert(pst_spool_id_valid(pst_spool_msg_id(msg)));
		ck_assert_msg(strcmp(prev, pst_spool_msg_id(msg)) < 0,
		    "%s after %s", pst_spool_msg_id(msg), prev);
		strcpy(prev, pst_spool_msg_id(msg));
		buckets |= 1u << (strchr("0123456789abcdef", prev[15]) -
		    "0123456789abcdef");
		pst_spool_msg_free(msg, NULL);
	}
	ck_assert_uint_eq(buckets, 0xffff);
	pst_spool_close(spool);
}
END_TEST

START_TEST(msg_id_validation)
{
	ck_assert(pst_spool_id_valid("0123456789abcdef"));
	ck_assert(!pst_spool_id_valid("0123456789ABCDEF"));
	ck_assert(!pst_spool_id_valid("0123456789abcde"));
	ck_assert(!pst_spool_id_valid("0123456789abcdef0"));
	ck_assert(!pst_spool_id_valid("../../etc/passwd"));
	ck_assert(!pst_spool_id_valid(""));
	ck_assert(!pst_spool_id_valid(NULL));
}
END_TEST

START_TEST(msg_buffer_is_bounded)
{
	struct pst_spool_msg *msg;
	struct pst_spool *spool;
	struct evbuffer *src;
	struct pst_err err;
	char *chunk;

	spool = st_open(dir, PST_SPOOL_CREATE, NULL);
	msg = new_msg(spool);
	chunk = calloc(1, PST_SPOOL_BUFFER_MAX);
	ck_assert_int_eq(pst_spool_msg_write(msg, chunk,
	    PST_SPOOL_BUFFER_MAX, &err), 0);
	ck_assert(pst_spool_msg_need_flush(msg));
	ck_assert_int_eq(pst_spool_msg_write(msg, "x", 1, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.text, "flush first"));
	src = evbuffer_new();
	evbuffer_add(src, "abc", 3);
	ck_assert_int_eq(pst_spool_msg_add_buffer(msg, src, &err), -1);
	ck_assert_int_eq(pst_spool_msg_flush_sync(msg, &err), 0);
	ck_assert(!pst_spool_msg_need_flush(msg));
	ck_assert_int_eq(pst_spool_msg_add_buffer(msg, src, &err), 0);
	ck_assert_uint_eq(evbuffer_get_length(src), 0);
	ck_assert_uint_eq(pst_spool_msg_size(msg), PST_SPOOL_BUFFER_MAX + 3);
	ck_assert_int_eq(st_count(dir, "tmp"), 1);
	/* Never committed: freeing removes its file. */
	pst_spool_msg_free(msg, NULL);
	ck_assert_int_eq(st_count(dir, "tmp"), 0);
	evbuffer_free(src);
	free(chunk);
	pst_spool_close(spool);
}
END_TEST

START_TEST(msg_free_on_the_pool_removes_the_tmp_file)
{
	struct pst_spool *spool;
	struct pst_err err;
	struct run r;

	spool = st_open(dir, PST_SPOOL_CREATE, NULL);
	run_init(&r, spool);
	r.msg = new_msg(spool);
	ck_assert_int_eq(pst_spool_msg_write(r.msg, "abc", 3, &err), 0);
	ck_assert_int_eq(pst_spool_msg_flush_sync(r.msg, &err), 0);
	ck_assert_int_eq(st_count(dir, "tmp"), 1);
	pst_spool_msg_free(r.msg, r.pool);
	event_base_dispatch(r.base);
	ck_assert_uint_eq(pst_pool_pending(r.pool), 0);
	ck_assert_int_eq(st_count(dir, "tmp"), 0);
	run_free(&r);
	pst_spool_close(spool);
}
END_TEST

/*
 * Failures at each step leave nothing behind.  A directory planted
 * under the name a step needs makes that step fail with EEXIST, the way
 * a writer in another process would.
 */
enum block { BLOCK_TMP_BODY, BLOCK_QUEUE_BODY, BLOCK_QUEUE_ENV,
	BLOCK_BAD_ENV };

static void
async_failure(enum block where)
{
	struct pst_spool *spool;
	struct pst_err err;
	struct run r;
	char id[PST_SPOOL_ID_LEN + 1], planted[128];

	spool = st_open(dir, PST_SPOOL_CREATE, NULL);
	run_init(&r, spool);
	fill(&r, 1u << 20);
	r.msg = new_msg(spool);
	snprintf(id, sizeof(id), "%s", pst_spool_msg_id(r.msg));
	planted[0] = '\0';
	switch (where) {
	case BLOCK_TMP_BODY:
		snprintf(planted, sizeof(planted), "%s/tmp/%s.body", dir, id);
		break;
	case BLOCK_QUEUE_BODY:
		snprintf(planted, sizeof(planted), "%s/%s", dir,
		    st_body_path(id));
		break;
	case BLOCK_QUEUE_ENV:
		snprintf(planted, sizeof(planted), "%s/%s", dir,
		    st_env_path(id));
		break;
	case BLOCK_BAD_ENV:
		pst_spool_msg_env(r.msg)->nrcpts = 0;
		break;
	}
	if (planted[0] != '\0')
		ck_assert_int_eq(mkdir(planted, 0700), 0);
	feed(&r);
	run_loop(&r);
	ck_assert(r.failed);
	ck_assert_int_eq(r.off_loop, 0);
	ck_assert_int_eq(r.err.stage, PST_STAGE_SPOOL);
	if (where == BLOCK_BAD_ENV) {
		ck_assert_int_eq(r.err.cls, PST_LOCAL);
		pst_spool_msg_env(r.msg)->nrcpts = 1;
	} else {
		ck_assert_int_eq(r.err.cls, PST_TEMP);
		ck_assert_int_eq(r.err.sys_errno, EEXIST);
	}
	/* A failed message refuses everything, synchronously. */
	ck_assert_int_eq(pst_spool_msg_commit(r.msg, r.pool, committed, &r,
	    &err), -1);
	ck_assert_int_eq(pst_spool_msg_write(r.msg, "x", 1, &err), -1);
	pst_spool_msg_free(r.msg, r.pool);
	if (planted[0] != '\0')
		ck_assert_int_eq(rmdir(planted), 0);
	assert_no_trace(id);
	ck_assert_int_eq(st_count(dir, "quarantine"), 0);
	run_free(&r);
	pst_spool_close(spool);
}

START_TEST(msg_failure_creating_tmp_body_cleans_up)
{
	async_failure(BLOCK_TMP_BODY);
}
END_TEST

START_TEST(msg_failure_moving_body_cleans_up)
{
	async_failure(BLOCK_QUEUE_BODY);
}
END_TEST

START_TEST(msg_failure_at_commit_point_removes_queued_body)
{
	async_failure(BLOCK_QUEUE_ENV);
}
END_TEST

START_TEST(msg_failure_on_bad_envelope_cleans_up)
{
	async_failure(BLOCK_BAD_ENV);
}
END_TEST

/*
 * Disk trouble for real: the spool on a small tmpfs in a private mount
 * namespace.  Needs root (CAP_SYS_ADMIN); passes vacuously without it.
 */
static bool
private_tmpfs(const char *size)
{
	char opts[64];

	if (geteuid() != 0 || unshare(CLONE_NEWNS) == -1)
		return false;
	/* A type is ignored with these flags; "none" keeps valgrind quiet. */
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) == -1)
		return false;
	snprintf(opts, sizeof(opts), "size=%s,mode=0700", size);
	return mount("tmpfs", dir, "tmpfs", 0, opts) == 0;
}

START_TEST(msg_enospc_fails_temporarily_and_cleans_up)
{
	struct pst_spool *spool;
	struct run r;
	char id[PST_SPOOL_ID_LEN + 1];

	if (!private_tmpfs("1m"))
		return;
	spool = st_open(dir, PST_SPOOL_CREATE, NULL);
	run_init(&r, spool);
	fill(&r, 4u << 20);
	r.msg = new_msg(spool);
	snprintf(id, sizeof(id), "%s", pst_spool_msg_id(r.msg));
	feed(&r);
	run_loop(&r);
	ck_assert(r.failed);
	ck_assert_int_eq(r.err.cls, PST_TEMP);
	ck_assert_int_eq(r.err.sys_errno, ENOSPC);
	pst_spool_msg_free(r.msg, r.pool);
	assert_no_trace(id);
	run_free(&r);
	pst_spool_close(spool);
	umount(dir);
}
END_TEST

START_TEST(msg_read_only_spool_fails_temporarily)
{
	struct pst_spool_msg *msg;
	struct pst_spool *spool;
	struct pst_err err;

	if (!private_tmpfs("1m"))
		return;
	spool = st_open(dir, PST_SPOOL_CREATE, NULL);
	ck_assert_int_eq(mount("none", dir, "none", MS_REMOUNT | MS_RDONLY, NULL),
	    0);
	msg = new_msg(spool);
	ck_assert_int_eq(pst_spool_msg_write(msg, "x", 1, &err), 0);
	ck_assert_int_eq(pst_spool_msg_commit_sync(msg, &err), -1);
	ck_assert_int_eq(err.cls, PST_TEMP);
	ck_assert_int_eq(err.sys_errno, EROFS);
	pst_spool_msg_free(msg, NULL);
	pst_spool_close(spool);
	umount(dir);
}
END_TEST

START_TEST(msg_commit_without_daemon_lock_while_daemon_runs)
{
	struct pst_spool *daemon, *sendmail;
	struct pst_spool_env *env;
	struct pst_err err;
	const char *id;

	daemon = st_open(dir, PST_SPOOL_CREATE | PST_SPOOL_RECOVER, NULL);
	sendmail = st_open(dir, 0, NULL);
	id = st_commit(sendmail, "hello\r\n", "root@localhost");
	env = pst_spool_read(daemon, id, &err);
	ck_assert_ptr_nonnull(env);
	ck_assert_str_eq(env->rcpts[0].addr, "root@localhost");
	pst_spool_env_free(env);
	pst_spool_close(sendmail);
	pst_spool_close(daemon);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("spool/msg");
	TCase *tc;

	tc = tcase_create("commit");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, msg_async_commit_writes_in_chunks_off_loop);
	tcase_add_test(tc, msg_sync_commit_uses_the_spool_modes);
	tcase_add_test(tc, msg_empty_body_commits);
	tcase_add_test(tc, msg_ids_are_unique_sorted_and_spread);
	tcase_add_test(tc, msg_id_validation);
	tcase_add_test(tc, msg_buffer_is_bounded);
	tcase_add_test(tc, msg_free_on_the_pool_removes_the_tmp_file);
	tcase_add_test(tc, msg_commit_without_daemon_lock_while_daemon_runs);
	suite_add_tcase(s, tc);

	tc = tcase_create("failure");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, msg_failure_creating_tmp_body_cleans_up);
	tcase_add_test(tc, msg_failure_moving_body_cleans_up);
	tcase_add_test(tc, msg_failure_at_commit_point_removes_queued_body);
	tcase_add_test(tc, msg_failure_on_bad_envelope_cleans_up);
	tcase_add_test(tc, msg_enospc_fails_temporarily_and_cleans_up);
	tcase_add_test(tc, msg_read_only_spool_fails_temporarily);
	suite_add_tcase(s, tc);
	return s;
}
