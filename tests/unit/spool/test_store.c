#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "common/err.h"
#include "spool/spool.h"
#include "spool_test.h"
#include "unit.h"

#define SCAN_MESSAGES	2000

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

struct seen {
	size_t	 n;
	char	 (*ids)[PST_SPOOL_ID_LEN + 1];
	size_t	 cap;
	int	 stop_after;	/* 0: never */
};

static int
collect(struct pst_spool_env *env, void *arg)
{
	struct seen *s = arg;

	ck_assert_uint_lt(s->n, s->cap);
	memcpy(s->ids[s->n++], env->id, PST_SPOOL_ID_LEN + 1);
	pst_spool_env_free(env);
	if (s->stop_after != 0 && (int)s->n == s->stop_after)
		return -1;
	return 0;
}

static int
id_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
scan_all(struct pst_spool *spool, struct seen *s, size_t cap)
{
	struct pst_err err;

	memset(s, 0, sizeof(*s));
	s->cap = cap;
	s->ids = calloc(cap, sizeof(*s->ids));
	ck_assert_int_eq(pst_spool_scan(spool, collect, s, &err), 0);
	qsort(s->ids, s->n, sizeof(*s->ids), id_cmp);
}

/* The records a segment holds, as letters: M, E, D; ! for damage. */
static void
segment_letters(const char *seg, char *out, size_t len)
{
	char rel[64];
	size_t n = 0, blen;
	char *buf;
	uint64_t off = 32;

	snprintf(rel, sizeof(rel), "log/%s", seg);
	buf = st_read(dir, rel, &blen);
	while (off + 32 <= blen && memcmp(buf + off, "PSTR", 4) == 0 &&
	    n + 1 < len) {
		uint32_t el, dl;

		memcpy(&el, buf + off + 16, 4);
		memcpy(&dl, buf + off + 20, 4);
		out[n++] = buf[off + 4] == 1 ? 'M' : buf[off + 4] == 2 ? 'E' :
		    'D';
		off = (off + 32 + el + dl + 7) & ~(uint64_t)7;
	}
	out[n] = '\0';
	free(buf);
}

/* A spool of format 1 with 'n' messages, as an older postern left it. */
static void
plant_v1(size_t n, char (*ids)[PST_SPOOL_ID_LEN + 1])
{
	struct pst_spool *spool;
	size_t i;

	spool = st_open(dir, PST_SPOOL_CREATE, NULL);
	pst_spool_close(spool);
	st_make_v1(dir);
	spool = st_open(dir, 0, NULL);
	for (i = 0; i < n; i++)
		strcpy(ids[i], st_plant(spool, dir, "hello\r\n"));
	pst_spool_close(spool);
}

/*
 * Taking over format 1.
 */

START_TEST(takeover_moves_every_message_into_the_log)
{
	char (*ids)[PST_SPOOL_ID_LEN + 1];
	struct pst_spool *spool;
	struct st_problems pr = { 0 };
	struct pst_err err;
	struct seen s;
	char *fmt;
	size_t i, len;

	ids = calloc(SCAN_MESSAGES, sizeof(*ids));
	plant_v1(SCAN_MESSAGES, ids);
	/* A tool does not read a spool not yet taken over. */
	spool = st_open(dir, 0, NULL);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(pst_spool_scan(spool, collect, &s, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.text, "format 1"));
	pst_spool_close(spool);

	spool = st_open(dir, PST_SPOOL_RECOVER, &pr);
	ck_assert_uint_eq(pr.n, 0);
	fmt = st_read(dir, "format", &len);
	ck_assert_str_eq(fmt, "postern-spool 2\n");
	free(fmt);
	ck_assert(!st_exists(dir, "queue"));
	ck_assert_int_eq(st_count(dir, "bodies"), SCAN_MESSAGES);
	scan_all(spool, &s, SCAN_MESSAGES);
	ck_assert_uint_eq(s.n, SCAN_MESSAGES);
	for (i = 0; i < SCAN_MESSAGES; i++)
		ck_assert_str_eq(s.ids[i], ids[i]);
	free(s.ids);
	/* The callback can stop the scan. */
	memset(&s, 0, sizeof(s));
	s.cap = 10;
	s.ids = calloc(s.cap, sizeof(*s.ids));
	s.stop_after = 5;
	ck_assert_int_eq(pst_spool_scan(spool, collect, &s, &err), -1);
	ck_assert_uint_eq(s.n, 5);
	free(s.ids);
	free(ids);
	pst_spool_close(spool);
}
END_TEST

/*
 * A takeover cut short: a message whose body got its new name but whose
 * record never reached the log, and one the log has while its old names
 * are still there.  Each ends up in the queue once.
 */
START_TEST(takeover_cut_short_runs_again)
{
	char ids[3][PST_SPOOL_ID_LEN + 1], from[512], to[512];
	struct pst_spool *spool;
	struct seen s;
	size_t len;
	char *env, *body;

	plant_v1(3, ids);
	/* The first: linked, never logged. */
	snprintf(from, sizeof(from), "%s/%s", dir, st_v1_body_path(ids[0]));
	snprintf(to, sizeof(to), "%s/%s", dir, st_body_path(ids[0]));
	ck_assert_int_eq(link(from, to), 0);
	/* Take over, then put the second's old names back. */
	env = st_read(dir, st_v1_env_path(ids[1]), &len);
	body = st_read(dir, st_v1_body_path(ids[1]), &len);
	spool = st_open(dir, PST_SPOOL_RECOVER, NULL);
	pst_spool_close(spool);
	st_make_v1(dir);
	st_write(dir, st_v1_env_path(ids[1]), env, strlen(env));
	st_write(dir, st_v1_body_path(ids[1]), body, strlen(body));
	free(env);
	free(body);

	spool = st_open(dir, PST_SPOOL_RECOVER, NULL);
	ck_assert(!st_exists(dir, "queue"));
	scan_all(spool, &s, 10);
	ck_assert_uint_eq(s.n, 3);
	free(s.ids);
	pst_spool_close(spool);
}
END_TEST

/*
 * Recovery.
 */

START_TEST(recover_on_a_clean_spool_reports_nothing)
{
	struct st_problems pr = { 0 };
	struct pst_spool *spool;

	spool = st_open(dir, PST_SPOOL_CREATE | PST_SPOOL_RECOVER, &pr);
	st_commit(spool, "hi\r\n", "a@b");
	pst_spool_close(spool);
	spool = st_open(dir, PST_SPOOL_RECOVER, &pr);
	ck_assert_uint_eq(pr.n, 0);
	pst_spool_close(spool);
}
END_TEST

/*
 * What a crash or damage from outside leaves, and what recovery makes
 * of it: leftovers in tmp/, a body no message names, damage in the
 * middle of a segment (set aside, the records after it kept), a torn
 * tail (left, reported), a drop that is not one.
 */
START_TEST(recover_handles_every_kind_of_damage)
{
	struct st_problems pr = { 0 };
	struct pst_spool_lock *lock;
	struct pst_spool *spool;
	struct pst_err err;
	struct seen s;
	char ids[4][PST_SPOOL_ID_LEN + 1], letters[16], path[512];
	size_t i, len;
	char *seg;
	int fd, k;

	spool = st_open(dir, PST_SPOOL_CREATE | PST_SPOOL_RECOVER, NULL);
	for (i = 0; i < 4; i++)
		strcpy(ids[i], st_commit(spool, "hello\r\n", "a@b"));
	/* Three records in segment 1: an update of each of three. */
	for (i = 0; i < 3; i++) {
		lock = pst_spool_lock_msg(spool, ids[i], 0, &err);
		ck_assert_msg(lock != NULL, "%s", err.text);
		pst_spool_lock_env(lock)->attempts = 5;
		ck_assert_int_eq(pst_spool_lock_update(lock,
		    pst_spool_lock_env(lock), &err), 0);
		pst_spool_lock_release(lock);
	}
	pst_spool_close(spool);
	segment_letters("0000000000000001", letters, sizeof(letters));
	ck_assert_str_eq(letters, "EEE");

	/* The second update's envelope loses a byte's worth of truth. */
	seg = st_read(dir, "log/0000000000000001", &len);
	for (i = 32, k = 0; i + 4 <= len; i += 8)
		if (memcmp(seg + i, "PSTR", 4) == 0 && k++ == 1)
			break;
	seg[i + 32 + 40] ^= 0x20;
	/* And the segment ends in the middle of a fourth record. */
	seg = realloc(seg, len + 24);
	ck_assert_ptr_nonnull(seg);
	memcpy(seg + len, "PSTR\4\0\0\0xxxxxxxxxxxxxxxx", 24);
	st_write(dir, "log/0000000000000001", seg, len + 24);
	free(seg);
	st_write(dir, "tmp/leftover", "x", 1);
	/* A segment whose creation a crash cut short: preallocated zeros. */
	seg = calloc(1, 4096);
	st_write(dir, "log/0000000000000007", seg, 4096);
	free(seg);
	st_write(dir, "bodies/00000000000000ff", "x", 1);
	st_write(dir, "incoming/00000000000000fe", "not a record", 12);

	spool = st_open(dir, PST_SPOOL_RECOVER, &pr);
	ck_assert_int_ge(k = st_find(&pr, "log/0000000000000007"), 0);
	ck_assert_int_eq(pr.action[k], PST_SPOOL_REMOVED);
	ck_assert(!st_exists(dir, "log/0000000000000007"));
	ck_assert_int_ge(k = st_find(&pr, "tmp/leftover"), 0);
	ck_assert_int_eq(pr.action[k], PST_SPOOL_REMOVED);
	ck_assert_int_ge(k = st_find(&pr, "bodies/00000000000000ff"), 0);
	ck_assert_int_eq(pr.action[k], PST_SPOOL_REMOVED);
	ck_assert_int_ge(k = st_find(&pr, "incoming/00000000000000fe"), 0);
	ck_assert_int_eq(pr.action[k], PST_SPOOL_QUARANTINED);
	ck_assert_int_ge(k = st_find(&pr, "log/0000000000000001"), 0);
	ck_assert_int_eq(pr.action[k], PST_SPOOL_QUARANTINED);
	ck_assert_ptr_nonnull(strstr(pr.reason[k], "checksum"));
	/* The torn tail is reported too, after the damage. */
	ck_assert_uint_eq(pr.n, 6);
	ck_assert_int_eq(pr.action[k + 1], PST_SPOOL_SKIPPED);
	ck_assert_ptr_nonnull(strstr(pr.reason[k + 1], "torn tail"));
	ck_assert_int_eq(st_count(dir, "quarantine"), 2);
	ck_assert_int_eq(st_count(dir, "tmp"), 0);
	/* Every message is still there; the damaged update is not. */
	scan_all(spool, &s, 10);
	ck_assert_uint_eq(s.n, 4);
	free(s.ids);
	lock = pst_spool_lock_msg(spool, ids[1], 0, &err);
	ck_assert_ptr_nonnull(lock);
	ck_assert_uint_eq(pst_spool_lock_env(lock)->attempts, 0);
	pst_spool_lock_release(lock);
	lock = pst_spool_lock_msg(spool, ids[2], 0, &err);
	ck_assert_uint_eq(pst_spool_lock_env(lock)->attempts, 5);
	pst_spool_lock_release(lock);
	pst_spool_close(spool);
	/* A tool never writes: it reports and leaves things be. */
	snprintf(path, sizeof(path), "%s/tmp/other", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	memset(&pr, 0, sizeof(pr));
	spool = st_open(dir, 0, &pr);
	scan_all(spool, &s, 10);
	free(s.ids);
	ck_assert(st_exists(dir, "tmp/other"));
	pst_spool_close(spool);
}
END_TEST

/*
 * Opening, the daemon lock, the layout.
 */

START_TEST(daemon_lock_refuses_a_second_daemon)
{
	struct pst_spool *first, *second, *tool;
	struct pst_err err;
	char want[64];
	pid_t pid;

	first = st_open(dir, PST_SPOOL_CREATE | PST_SPOOL_DAEMON, NULL);
	second = pst_spool_open(dir, &(struct pst_spool_opts){
	    .flags = PST_SPOOL_RECOVER }, &err);
	ck_assert_ptr_null(second);
	ck_assert_int_eq(err.cls, PST_LOCAL);
	ck_assert_int_eq(err.sys_errno, EWOULDBLOCK);
	snprintf(want, sizeof(want), "in use by another posternd (pid %ld)",
	    (long)getpid());
	ck_assert_msg(strstr(err.text, want) != NULL, "%s", err.text);

	tool = st_open(dir, 0, NULL);
	ck_assert_int_eq(pst_spool_daemon(tool, &pid, &err), 1);
	ck_assert_int_eq(pid, getpid());
	ck_assert_int_eq(pst_spool_daemon(first, &pid, &err), 0);
	pst_spool_close(first);
	ck_assert_int_eq(pst_spool_daemon(tool, &pid, &err), 0);
	second = st_open(dir, PST_SPOOL_DAEMON, NULL);
	pst_spool_close(second);
	pst_spool_close(tool);
}
END_TEST

START_TEST(open_creates_the_documented_layout)
{
	static const char *const dirs[] = {
		"tmp", "quarantine", "log", "bodies", "incoming",
	};
	struct pst_spool *spool;
	struct pst_err err;
	char *fmt;
	size_t len, i;

	spool = pst_spool_open(dir, NULL, &err);
	ck_assert_ptr_null(spool);
	ck_assert_ptr_nonnull(strstr(err.text, "not initialised"));
	/* A tool tells "not set up" from other trouble by ENOENT. */
	ck_assert_int_eq(err.sys_errno, ENOENT);
	spool = st_open(dir, PST_SPOOL_CREATE, NULL);
	ck_assert_str_eq(pst_spool_path(spool), dir);
	pst_spool_close(spool);
	fmt = st_read(dir, "format", &len);
	ck_assert_str_eq(fmt, "postern-spool 2\n");
	free(fmt);
	for (i = 0; i < NELEMS(dirs); i++)
		ck_assert_int_eq(st_mode(dir, dirs[i]) & 07777, 0700);
	ck_assert(!st_exists(dir, "queue"));
	/* Opening again without CREATE works and changes nothing. */
	spool = st_open(dir, 0, NULL);
	pst_spool_close(spool);
}
END_TEST

START_TEST(open_refuses_unsafe_or_foreign_layouts)
{
	struct pst_spool_opts opts = { .flags = PST_SPOOL_CREATE };
	struct pst_spool *spool;
	struct pst_err err;
	char path[512], target[512];

	opts.file_mode = 0644;
	ck_assert_ptr_null(pst_spool_open(dir, &opts, &err));
	ck_assert_ptr_nonnull(strstr(err.text, "file mode"));
	opts.file_mode = 0;
	opts.dir_mode = 0777;
	ck_assert_ptr_null(pst_spool_open(dir, &opts, &err));
	ck_assert_ptr_nonnull(strstr(err.text, "directory mode"));

	spool = st_open(dir, PST_SPOOL_CREATE, NULL);
	pst_spool_close(spool);

	/* A format this build does not know. */
	st_write(dir, "format", "postern-spool 3\n", 16);
	ck_assert_ptr_null(pst_spool_open(dir, NULL, &err));
	ck_assert_ptr_nonnull(strstr(err.text, "postern-spool 3"));
	st_write(dir, "format", "postern-spool 2\n", 16);

	/* A world-writable log/. */
	snprintf(path, sizeof(path), "%s/log", dir);
	ck_assert_int_eq(chmod(path, 0777), 0);
	ck_assert_ptr_null(pst_spool_open(dir, NULL, &err));
	ck_assert_ptr_nonnull(strstr(err.text, "writable by anyone"));
	ck_assert_int_eq(chmod(path, 0700), 0);

	/* A symlinked incoming/ is not followed. */
	snprintf(path, sizeof(path), "%s/incoming", dir);
	snprintf(target, sizeof(target), "%s/elsewhere", dir);
	ck_assert_int_eq(rename(path, target), 0);
	ck_assert_int_eq(symlink(target, path), 0);
	ck_assert_ptr_null(pst_spool_open(dir, NULL, &err));
	ck_assert_ptr_nonnull(strstr(err.text, "not a directory"));
	ck_assert_int_eq(err.cls, PST_LOCAL);
	ck_assert_int_eq(err.stage, PST_STAGE_SPOOL);
}
END_TEST

START_TEST(space_check_reports_shortage)
{
	struct pst_spool *spool;
	struct statvfs sv;
	struct pst_err err;

	spool = st_open(dir, PST_SPOOL_CREATE, NULL);
	ck_assert_int_eq(pst_spool_space(spool, 1024, 0, 0, &err), 1);
	ck_assert_int_eq(pst_spool_space(spool, 1024, PST_SPOOL_RESERVE_AUTO,
	    PST_SPOOL_RESERVE_AUTO, &err), 1);
	ck_assert_int_eq(pst_spool_space(spool, UINT64_MAX / 2, 0, 0, &err),
	    0);
	ck_assert_int_eq(err.cls, PST_TEMP);
	ck_assert_int_eq(err.sys_errno, ENOSPC);
	ck_assert_ptr_nonnull(strstr(err.text, "KiB free"));
	/* Any reserve is at most an eighth of the file system. */
	ck_assert_int_eq(statvfs(dir, &sv), 0);
	ck_assert_int_eq(pst_spool_space(spool, 0, UINT64_MAX - 1, 0, &err),
	    (uint64_t)sv.f_bavail >= (uint64_t)sv.f_blocks / 8);
	ck_assert_int_eq(pst_spool_space(spool, (uint64_t)sv.f_bavail *
	    sv.f_frsize - (uint64_t)sv.f_blocks * sv.f_frsize / 16,
	    UINT64_MAX - 1, 0, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.text, "KiB free"));
	if (sv.f_files > 0) {
		ck_assert_int_eq(pst_spool_space(spool, 0, 0, UINT64_MAX / 2,
		    &err), (uint64_t)sv.f_favail >= sv.f_files / 8 + 2);
	}
	pst_spool_close(spool);
}
END_TEST

/*
 * Locks, updates, removal.
 */

/*
 * Changes are records in the log, read back by the next opener; the
 * lock keeps a second locker out; a removal takes the drop too; and a
 * segment nothing needs any more is given back.
 */
START_TEST(lock_update_and_remove_are_records_in_the_log)
{
	struct pst_spool_lock *lock, *second;
	struct pst_spool_env *env;
	struct pst_spool *spool;
	struct pst_err err;
	char id[PST_SPOOL_ID_LEN + 1], other[PST_SPOOL_ID_LEN + 1];
	char letters[16];
	struct seen s;

	spool = st_open(dir, PST_SPOOL_CREATE | PST_SPOOL_RECOVER, NULL);
	strcpy(id, st_commit(spool, "hello\r\n", "a@b"));
	strcpy(other, st_commit(spool, "other\r\n", "a@b"));
	lock = pst_spool_lock_msg(spool, id, 0, &err);
	ck_assert_msg(lock != NULL, "%s", err.text);
	second = pst_spool_lock_msg(spool, id, 0, &err);
	ck_assert_ptr_null(second);
	ck_assert_int_eq(err.sys_errno, EWOULDBLOCK);
	env = pst_spool_lock_env(lock);
	env->attempts = 3;
	env->rcpts[0].state = PST_SPOOL_RCPT_DEFERRED;
	env->rcpts[0].code = 451;
	ck_assert_int_eq(pst_spool_lock_update(lock, env, &err), 0);
	pst_spool_lock_release(lock);
	ck_assert_int_eq(pst_spool_hold(spool, other, true, 0, &err), 0);
	pst_spool_close(spool);

	spool = st_open(dir, PST_SPOOL_RECOVER, NULL);
	env = pst_spool_read(spool, id, &err);
	ck_assert_msg(env != NULL, "%s", err.text);
	ck_assert_uint_eq(env->attempts, 3);
	ck_assert_int_eq(env->rcpts[0].state, PST_SPOOL_RCPT_DEFERRED);
	ck_assert_int_eq(env->rcpts[0].code, 451);
	pst_spool_env_free(env);
	env = pst_spool_read(spool, other, &err);
	ck_assert(env->held);
	pst_spool_env_free(env);
	ck_assert_int_eq(pst_spool_remove(spool, id, 0, &err), 0);
	ck_assert(!st_exists(dir, st_env_path(id)));
	ck_assert_int_eq(pst_spool_remove(spool, id, 0, &err), -1);
	ck_assert_int_eq(err.sys_errno, ENOENT);
	pst_spool_close(spool);
	/* One segment for each run that wrote. */
	segment_letters("0000000000000001", letters, sizeof(letters));
	ck_assert_str_eq(letters, "EE");
	segment_letters("0000000000000002", letters, sizeof(letters));
	ck_assert_str_eq(letters, "D");

	/* Gone from the next opener's view as well. */
	spool = st_open(dir, PST_SPOOL_RECOVER, NULL);
	scan_all(spool, &s, 10);
	ck_assert_uint_eq(s.n, 1);
	ck_assert_str_eq(s.ids[0], other);
	free(s.ids);
	/* Segment 1 holds the other's envelope: it stays, and so must 2. */
	ck_assert(st_exists(dir, "log/0000000000000001"));
	ck_assert(st_exists(dir, "log/0000000000000002"));
	ck_assert_int_eq(pst_spool_remove(spool, other, 0, &err), 0);
	pst_spool_close(spool);
	/* Nothing pins any of them now: given back, oldest first. */
	spool = st_open(dir, PST_SPOOL_RECOVER, NULL);
	ck_assert_int_eq(st_count(dir, "log"), 0);
	ck_assert_int_eq(st_count(dir, "incoming"), 0);
	pst_spool_close(spool);
}
END_TEST

/*
 * What a delivery made of a message rides the next group flush: until
 * it is on stable storage the message stays locked and reads as before;
 * then the index follows, and the next opener finds the same.
 */
struct saves {
	struct event_base	*base;
	int			 done;
	int			 failed;
};

static void
on_saved(void *arg, const struct pst_err *err)
{
	struct saves *sv = arg;

	sv->done++;
	if (err != NULL)
		sv->failed++;
}

START_TEST(lock_save_rides_the_next_flush)
{
	struct pst_spool_lock *lock;
	struct pst_spool_env *env;
	struct pst_spool *spool;
	struct pst_err err;
	struct saves sv = { NULL, 0, 0 };
	char id[PST_SPOOL_ID_LEN + 1], other[PST_SPOOL_ID_LEN + 1];

	ck_assert_int_eq(evthread_use_pthreads(), 0);
	sv.base = event_base_new();
	spool = st_open(dir, PST_SPOOL_CREATE | PST_SPOOL_RECOVER, NULL);
	ck_assert_int_eq(pst_spool_start(spool, sv.base, &err), 0);
	strcpy(id, st_commit(spool, "hello\r\n", "a@b"));
	strcpy(other, st_commit(spool, "other\r\n", "a@b"));

	lock = pst_spool_lock_msg(spool, id, 0, &err);
	ck_assert_msg(lock != NULL, "%s", err.text);
	env = pst_spool_lock_env(lock);
	env->attempts = 2;
	ck_assert_int_eq(pst_spool_lock_save(lock, env, on_saved, &sv, &err),
	    0);
	pst_spool_lock_release(lock);
	lock = pst_spool_lock_msg(spool, other, 0, &err);
	ck_assert_msg(lock != NULL, "%s", err.text);
	ck_assert_int_eq(pst_spool_lock_save(lock, NULL, on_saved, &sv, &err),
	    0);
	pst_spool_lock_release(lock);

	/* Reported on the loop only, so not yet: both still locked. */
	ck_assert_ptr_null(pst_spool_lock_msg(spool, id, 0, &err));
	ck_assert_int_eq(err.sys_errno, EWOULDBLOCK);
	ck_assert_ptr_null(pst_spool_lock_msg(spool, other, 0, &err));
	ck_assert_int_eq(err.sys_errno, EWOULDBLOCK);
	while (sv.done < 2)
		ck_assert_int_ne(event_base_loop(sv.base, EVLOOP_ONCE), -1);
	ck_assert_int_eq(sv.failed, 0);

	env = pst_spool_read(spool, id, &err);
	ck_assert_msg(env != NULL, "%s", err.text);
	ck_assert_uint_eq(env->attempts, 2);
	pst_spool_env_free(env);
	ck_assert_ptr_null(pst_spool_read(spool, other, &err));
	ck_assert_int_eq(err.sys_errno, ENOENT);
	lock = pst_spool_lock_msg(spool, id, 0, &err);
	ck_assert_msg(lock != NULL, "%s", err.text);
	pst_spool_lock_release(lock);
	pst_spool_stop(spool);
	pst_spool_close(spool);
	event_base_free(sv.base);

	spool = st_open(dir, PST_SPOOL_RECOVER, NULL);
	env = pst_spool_read(spool, id, &err);
	ck_assert_msg(env != NULL, "%s", err.text);
	ck_assert_uint_eq(env->attempts, 2);
	pst_spool_env_free(env);
	ck_assert_ptr_null(pst_spool_read(spool, other, &err));
	pst_spool_close(spool);
}
END_TEST

/*
 * The first appends of a started daemon come from several threads at
 * once (the pool's deliveries, the loop's commits): they share one log
 * writer and one segment.  Two writers, made side by side, each opened
 * segments of their own, and one of them leaked.
 */
#define RACERS	8

struct racer {
	struct pst_spool	*spool;
	const char		*id;
	pthread_barrier_t	*go;
	int			 rc;
};

static void *
race_update(void *arg)
{
	struct racer *r = arg;
	struct pst_spool_lock *lock;
	struct pst_err err;

	lock = pst_spool_lock_msg(r->spool, r->id, 0, &err);
	pthread_barrier_wait(r->go);
	r->rc = lock != NULL ? pst_spool_lock_update(lock,
	    pst_spool_lock_env(lock), &err) : -1;
	pst_spool_lock_release(lock);
	return NULL;
}

START_TEST(first_appends_share_one_writer)
{
	char ids[RACERS][PST_SPOOL_ID_LEN + 1];
	struct racer r[RACERS];
	pthread_t t[RACERS];
	pthread_barrier_t go;
	struct event_base *base;
	struct pst_spool *spool;
	struct pst_err err;
	unsigned i;

	ck_assert_int_eq(evthread_use_pthreads(), 0);
	base = event_base_new();
	spool = st_open(dir, PST_SPOOL_CREATE | PST_SPOOL_RECOVER, NULL);
	for (i = 0; i < RACERS; i++)
		strcpy(ids[i], st_commit(spool, "hi\r\n", "a@b"));
	ck_assert_int_eq(pst_spool_start(spool, base, &err), 0);
	pthread_barrier_init(&go, NULL, RACERS);
	for (i = 0; i < RACERS; i++) {
		r[i].spool = spool;
		r[i].id = ids[i];
		r[i].go = &go;
		r[i].rc = 1;
		ck_assert_int_eq(pthread_create(&t[i], NULL, race_update,
		    &r[i]), 0);
	}
	for (i = 0; i < RACERS; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(r[i].rc, 0);
	}
	pthread_barrier_destroy(&go);
	ck_assert_int_eq(st_count(dir, "log"), 1);
	pst_spool_stop(spool);
	pst_spool_close(spool);
	event_base_free(base);
}
END_TEST

/* What pst_spool_scan_brief() says of two messages. */
struct briefs {
	char			 ids[2][PST_SPOOL_ID_LEN + 1];
	struct pst_spool_brief	 got[2];
	int			 n;
};

static int
collect_brief(const struct pst_spool_brief *b, void *arg)
{
	struct briefs *bs = arg;
	int i;

	bs->n++;
	for (i = 0; i < 2; i++)
		if (strcmp(b->id, bs->ids[i]) == 0)
			bs->got[i] = *b;
	return 0;
}

static void
check_briefs(struct pst_spool *spool, struct briefs *bs)
{
	struct pst_err err;

	memset(bs->got, 0, sizeof(bs->got));
	bs->n = 0;
	ck_assert_int_eq(pst_spool_scan_brief(spool, collect_brief, bs, &err),
	    0);
	ck_assert_int_eq(bs->n, 2);
	ck_assert_str_eq(bs->got[0].id, bs->ids[0]);
	ck_assert_int_eq(bs->got[0].next_attempt, 1900000000);
	ck_assert(!bs->got[0].held);
	ck_assert_int_gt(bs->got[0].arrival, 0);
	ck_assert_str_eq(bs->got[1].id, bs->ids[1]);
	ck_assert(bs->got[1].held);
	ck_assert_int_eq(bs->got[1].next_attempt, 0);
}

/*
 * The brief a scheduler starts from follows every change in the
 * process that made it, and is the same for the next opener.
 */
START_TEST(scan_brief_follows_changes)
{
	struct pst_spool_lock *lock;
	struct pst_spool *spool;
	struct pst_err err;
	struct briefs bs;

	spool = st_open(dir, PST_SPOOL_CREATE | PST_SPOOL_RECOVER, NULL);
	strcpy(bs.ids[0], st_commit(spool, "hello\r\n", "a@b"));
	strcpy(bs.ids[1], st_commit(spool, "other\r\n", "a@b"));
	lock = pst_spool_lock_msg(spool, bs.ids[0], 0, &err);
	ck_assert_msg(lock != NULL, "%s", err.text);
	pst_spool_lock_env(lock)->next_attempt = 1900000000;
	ck_assert_int_eq(pst_spool_lock_update(lock, pst_spool_lock_env(lock),
	    &err), 0);
	pst_spool_lock_release(lock);
	ck_assert_int_eq(pst_spool_hold(spool, bs.ids[1], true, 0, &err), 0);
	check_briefs(spool, &bs);
	pst_spool_close(spool);
	spool = st_open(dir, PST_SPOOL_RECOVER, NULL);
	check_briefs(spool, &bs);
	pst_spool_close(spool);
}
END_TEST

/* Updates message 'id': its attempts set to 'n'. */
static void
set_attempts(struct pst_spool *spool, const char *id, unsigned n)
{
	struct pst_spool_lock *lock;
	struct pst_err err;

	lock = pst_spool_lock_msg(spool, id, 0, &err);
	ck_assert_msg(lock != NULL, "%s", err.text);
	pst_spool_lock_env(lock)->attempts = n;
	ck_assert_int_eq(pst_spool_lock_update(lock, pst_spool_lock_env(lock),
	    &err), 0);
	pst_spool_lock_release(lock);
}

/*
 * A message that waits while others come and go would keep its segment,
 * and with it every later one, on the disk: once two newer segments
 * exist, what lives in the oldest is copied forward and it goes.
 */
START_TEST(maintain_copies_forward_and_gives_back)
{
	struct pst_spool_opts opts = { 0 };
	struct pst_spool_env *env;
	struct pst_spool *spool;
	struct pst_err err;
	char waiting[PST_SPOOL_ID_LEN + 1], busy[PST_SPOOL_ID_LEN + 1];
	unsigned i;

	opts.flags = PST_SPOOL_CREATE | PST_SPOOL_RECOVER;
	opts.segment_bytes = 4096;
	spool = pst_spool_open(dir, &opts, &err);
	ck_assert_msg(spool != NULL, "%s", err.text);
	strcpy(waiting, st_commit(spool, "waits\r\n", "a@b"));
	strcpy(busy, st_commit(spool, "busy\r\n", "a@b"));
	set_attempts(spool, waiting, 1);
	/* Enough updates of the other to fill several segments. */
	for (i = 1; i <= 60; i++)
		set_attempts(spool, busy, i);
	ck_assert_int_ge(st_count(dir, "log"), 4);
	ck_assert(st_exists(dir, "log/0000000000000001"));
	ck_assert_int_eq(pst_spool_maintain(spool, &err), 0);
	/* Only the current segment and the one before it are left. */
	ck_assert(!st_exists(dir, "log/0000000000000001"));
	ck_assert_int_le(st_count(dir, "log"), 2);
	env = pst_spool_read(spool, waiting, &err);
	ck_assert_msg(env != NULL, "%s", err.text);
	ck_assert_uint_eq(env->attempts, 1);
	pst_spool_env_free(env);
	pst_spool_close(spool);
	/* And a restart reads the same. */
	spool = st_open(dir, PST_SPOOL_RECOVER, NULL);
	env = pst_spool_read(spool, waiting, &err);
	ck_assert_msg(env != NULL, "%s", err.text);
	ck_assert_uint_eq(env->attempts, 1);
	pst_spool_env_free(env);
	env = pst_spool_read(spool, busy, &err);
	ck_assert_uint_eq(env->attempts, 60);
	pst_spool_env_free(env);
	pst_spool_close(spool);
}
END_TEST

/*
 * A queue that is all live (the upstream down for a day) and spans many
 * segments: copying forward would free nothing, so nothing is copied,
 * and the upkeep returns.  It used to copy segment after segment for
 * ever, each copy filling the segment that made the next one needed.
 */
START_TEST(maintain_leaves_a_live_log_alone)
{
	struct pst_spool_opts opts = { 0 };
	struct pst_spool *spool;
	struct pst_err err;
	char ids[40][PST_SPOOL_ID_LEN + 1];
	struct seen s;
	int before;
	unsigned i;

	opts.flags = PST_SPOOL_CREATE | PST_SPOOL_RECOVER;
	opts.segment_bytes = 4096;
	spool = pst_spool_open(dir, &opts, &err);
	ck_assert_msg(spool != NULL, "%s", err.text);
	for (i = 0; i < 40; i++)
		strcpy(ids[i], st_commit(spool, "waits\r\n", "a@b"));
	/* A first attempt each: their envelopes, all current, in the log. */
	for (i = 0; i < 40; i++)
		set_attempts(spool, ids[i], 1);
	before = st_count(dir, "log");
	ck_assert_int_ge(before, 3);
	ck_assert_int_eq(pst_spool_maintain(spool, &err), 0);
	ck_assert_int_eq(st_count(dir, "log"), before);
	ck_assert(st_exists(dir, "log/0000000000000001"));
	scan_all(spool, &s, 50);
	ck_assert_uint_eq(s.n, 40);
	free(s.ids);
	pst_spool_close(spool);
}
END_TEST

/*
 * The MSG records of messages whose bodies are kept apart (a takeover's)
 * pin their segments too: copying forward writes them again, and every
 * message survives the oldest segments going.
 */
START_TEST(maintain_keeps_messages_whose_bodies_are_apart)
{
	char ids[40][PST_SPOOL_ID_LEN + 1];
	struct pst_spool_opts opts = { 0 };
	struct pst_spool *spool;
	struct pst_err err;
	struct seen s;
	unsigned i;

	plant_v1(40, ids);
	opts.flags = PST_SPOOL_RECOVER;
	opts.segment_bytes = 4096;
	spool = pst_spool_open(dir, &opts, &err);
	ck_assert_msg(spool != NULL, "%s", err.text);
	/*
	 * Every message gets a new envelope: none is left in segment 1;
	 * then one changes often enough that most of the log is dead.
	 */
	for (i = 0; i < 40; i++)
		set_attempts(spool, ids[i], 1);
	for (i = 1; i <= 200; i++)
		set_attempts(spool, ids[0], i);
	ck_assert_int_ge(st_count(dir, "log"), 4);
	ck_assert_int_eq(pst_spool_maintain(spool, &err), 0);
	ck_assert(!st_exists(dir, "log/0000000000000001"));
	pst_spool_close(spool);
	spool = st_open(dir, PST_SPOOL_RECOVER, NULL);
	scan_all(spool, &s, 64);
	ck_assert_uint_eq(s.n, 40);
	free(s.ids);
	ck_assert_int_eq(st_count(dir, "bodies"), 40);
	pst_spool_close(spool);
}
END_TEST

START_TEST(ids_from_outside_never_name_other_paths)
{
	struct pst_spool *spool;
	struct pst_err err;

	spool = st_open(dir, PST_SPOOL_CREATE, NULL);
	ck_assert_ptr_null(pst_spool_read(spool, "../../../etc/passwd", &err));
	ck_assert_ptr_nonnull(strstr(err.text, "not a queue id"));
	ck_assert_ptr_null(pst_spool_lock_msg(spool, "0123456789abcde/",
	    0, &err));
	ck_assert_int_eq(pst_spool_remove(spool, "", 0, &err), -1);
	pst_spool_close(spool);
}
END_TEST

START_TEST(body_open_checks_the_size_and_quarantine_moves_both)
{
	struct pst_spool_lock *lock;
	struct pst_spool_env *env;
	struct pst_spool *spool;
	struct pst_err err;
	char id[PST_SPOOL_ID_LEN + 1], buf[16], path[512];
	uint64_t off;
	int fd;

	spool = st_open(dir, PST_SPOOL_CREATE | PST_SPOOL_RECOVER, NULL);
	strcpy(id, st_commit(spool, "0123456789", "a@b"));
	env = pst_spool_read(spool, id, &err);
	ck_assert_msg(env != NULL, "%s", err.text);
	fd = pst_spool_body_open(spool, env, &off, &err);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, buf, 10, (off_t)off), 10);
	ck_assert(memcmp(buf, "0123456789", 10) == 0);
	close(fd);
	/* The drop cut short: its body is not all there. */
	snprintf(path, sizeof(path), "%s/%s", dir, st_env_path(id));
	ck_assert_int_eq(truncate(path, (off_t)off + 4), 0);
	ck_assert_int_eq(pst_spool_body_open(spool, env, &off, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.text, "damaged"));
	pst_spool_env_free(env);

	lock = pst_spool_lock_msg(spool, id, 0, &err);
	ck_assert_ptr_nonnull(lock);
	ck_assert_int_eq(pst_spool_lock_quarantine(lock, &err), 0);
	pst_spool_lock_release(lock);
	/* A drop is its own evidence: moved whole. */
	ck_assert(!st_exists(dir, st_env_path(id)));
	ck_assert_int_eq(st_count(dir, "quarantine"), 1);
	snprintf(path, sizeof(path), "quarantine/%s", id);
	ck_assert(st_exists(dir, path));
	pst_spool_close(spool);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("spool/store");
	TCase *tc;

	tc = tcase_create("recover");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, takeover_moves_every_message_into_the_log);
	tcase_add_test(tc, takeover_cut_short_runs_again);
	tcase_add_test(tc, recover_on_a_clean_spool_reports_nothing);
	tcase_add_test(tc, recover_handles_every_kind_of_damage);
	suite_add_tcase(s, tc);

	tc = tcase_create("open");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, daemon_lock_refuses_a_second_daemon);
	tcase_add_test(tc, open_creates_the_documented_layout);
	tcase_add_test(tc, open_refuses_unsafe_or_foreign_layouts);
	tcase_add_test(tc, space_check_reports_shortage);
	suite_add_tcase(s, tc);

	tc = tcase_create("lock");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, lock_update_and_remove_are_records_in_the_log);
	tcase_add_test(tc, maintain_copies_forward_and_gives_back);
	tcase_add_test(tc, maintain_leaves_a_live_log_alone);
	tcase_add_test(tc, maintain_keeps_messages_whose_bodies_are_apart);
	tcase_add_test(tc, lock_save_rides_the_next_flush);
	tcase_add_test(tc, scan_brief_follows_changes);
	tcase_add_test(tc, first_appends_share_one_writer);
	tcase_add_test(tc, ids_from_outside_never_name_other_paths);
	tcase_add_test(tc, body_open_checks_the_size_and_quarantine_moves_both);
	suite_add_tcase(s, tc);
	return s;
}
