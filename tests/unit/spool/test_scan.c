#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* Replaces an envelope file with a sealed record of 'text'. */
static void
plant_record(const char *rel, const char *text)
{
	size_t len;
	char *rec;

	rec = st_seal(text, &len);
	st_write(dir, rel, rec, len);
	free(rec);
}

/*
 * Recovery.
 */

START_TEST(recover_handles_every_kind_of_damage)
{
	struct st_problems pr = { 0 };
	struct pst_spool *spool;
	struct seen s;
	char good[3][PST_SPOOL_ID_LEN + 1], victim[6][PST_SPOOL_ID_LEN + 1];
	char path[512], target[512], rec[256];
	const char *orphan = "0000000000000011";
	char *env;
	size_t len;
	int i, busy_tmp, busy_body, k;

	spool = st_open(dir, PST_SPOOL_CREATE, NULL);
	for (i = 0; i < 3; i++)
		strcpy(good[i], st_commit(spool, "good\r\n", "g@x"));
	for (i = 0; i < 6; i++)
		strcpy(victim[i], st_commit(spool, "victim\r\n", "v@x"));
	pst_spool_close(spool);

	/* An unfinished write, and one still being written (locked). */
	st_write(dir, "tmp/0000000000000001.body", "partial", 7);
	st_write(dir, "tmp/format.deadbeef", "x", 1);
	st_write(dir, "tmp/0000000000000002.body", "busy", 4);
	snprintf(path, sizeof(path), "%s/tmp/0000000000000002.body", dir);
	busy_tmp = open(path, O_RDONLY);
	ck_assert_int_eq(flock(busy_tmp, LOCK_EX), 0);
	/* A body that never got its envelope. */
	st_write(dir, st_body_path(orphan), "orphan", 6);
	/* The same, but its committer is still at work (locked). */
	st_write(dir, st_body_path("0000000000000022"), "committing", 10);
	snprintf(path, sizeof(path), "%s/%s", dir,
	    st_body_path("0000000000000022"));
	busy_body = open(path, O_RDONLY);
	ck_assert_int_eq(flock(busy_body, LOCK_EX), 0);
	/* Envelope without body. */
	snprintf(path, sizeof(path), "%s/%s", dir, st_body_path(victim[0]));
	ck_assert_int_eq(unlink(path), 0);
	/* Torn envelope. */
	env = st_read(dir, st_env_path(victim[1]), &len);
	st_write(dir, st_env_path(victim[1]), env, len - 10);
	free(env);
	/* Bad version, with a correct checksum. */
	snprintf(rec, sizeof(rec), "postern-envelope 2\nid %s\n", victim[2]);
	plant_record(st_env_path(victim[2]), rec);
	/* A symlink posing as an envelope, pointing at a good one. */
	snprintf(target, sizeof(target), "%s/outside.env", dir);
	env = st_read(dir, st_env_path(victim[3]), &len);
	st_write(dir, "outside.env", env, len);
	free(env);
	snprintf(path, sizeof(path), "%s/%s", dir, st_env_path(victim[3]));
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(symlink(target, path), 0);
	/* An envelope naming another id. */
	env = st_read(dir, st_env_path(good[0]), &len);
	st_write(dir, st_env_path(victim[4]), env, len);
	free(env);
	/* A bad value, sealed. */
	snprintf(rec, sizeof(rec), "postern-envelope 1\nid %s\narrival 1\n"
	    "size 1\nsender a\nrcpt b\nrcpt.state lost\n", victim[5]);
	plant_record(st_env_path(victim[5]), rec);
	/* Strangers in a bucket. */
	st_write(dir, "queue/3/README", "hi", 2);
	snprintf(path, sizeof(path), "%s/queue/5/0123456789abcdef.env", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);

	spool = st_open(dir, PST_SPOOL_RECOVER, &pr);

	/* tmp/: unlocked files removed, the locked one kept. */
	ck_assert(!st_exists(dir, "tmp/0000000000000001.body"));
	ck_assert(!st_exists(dir, "tmp/format.deadbeef"));
	ck_assert(st_exists(dir, "tmp/0000000000000002.body"));
	k = st_find(&pr, "tmp/0000000000000001.body");
	ck_assert_int_ge(k, 0);
	ck_assert_int_eq(pr.action[k], PST_SPOOL_REMOVED);
	/* Lone bodies: removed unless a committer holds them. */
	ck_assert(!st_exists(dir, st_body_path(orphan)));
	ck_assert_int_eq(pr.action[st_find(&pr, st_body_path(orphan))],
	    PST_SPOOL_REMOVED);
	ck_assert(st_exists(dir, st_body_path("0000000000000022")));
	ck_assert_int_lt(st_find(&pr, st_body_path("0000000000000022")), 0);
	/* Every victim's files are in quarantine, none left queued. */
	for (i = 0; i < 6; i++) {
		ck_assert_msg(!st_exists(dir, st_env_path(victim[i])),
		    "victim %d still queued", i);
		ck_assert(!st_exists(dir, st_body_path(victim[i])));
		k = st_find(&pr, st_env_path(victim[i]));
		ck_assert_msg(k >= 0, "victim %d not reported", i);
		ck_assert_int_eq(pr.action[k], PST_SPOOL_QUARANTINED);
		snprintf(path, sizeof(path), "quarantine/%s", pr.moved[k]);
		ck_assert(st_exists(dir, path));
	}
	ck_assert_ptr_nonnull(strstr(pr.reason[st_find(&pr,
	    st_env_path(victim[0]))], "without body"));
	ck_assert_ptr_nonnull(strstr(pr.reason[st_find(&pr,
	    st_env_path(victim[1]))], "torn"));
	ck_assert_ptr_nonnull(strstr(pr.reason[st_find(&pr,
	    st_env_path(victim[2]))], "version 2"));
	ck_assert_ptr_nonnull(strstr(pr.reason[st_find(&pr,
	    st_env_path(victim[3]))], "not a regular file"));
	ck_assert_ptr_nonnull(strstr(pr.reason[st_find(&pr,
	    st_env_path(victim[4]))], "holds id"));
	ck_assert_ptr_nonnull(strstr(pr.reason[st_find(&pr,
	    st_env_path(victim[5]))], "rcpt.state"));
	/* The symlink moved as a link; its target was not touched. */
	snprintf(path, sizeof(path), "quarantine/%s.env", victim[3]);
	ck_assert(S_ISLNK(st_mode(dir, path)));
	ck_assert(S_ISREG(st_mode(dir, "outside.env")));
	ck_assert(st_exists(dir, "quarantine/README"));
	ck_assert(st_exists(dir, "quarantine/0123456789abcdef.env"));
	/* The good messages are untouched and are all a scan returns. */
	scan_all(spool, &s, 16);
	ck_assert_uint_eq(s.n, 3);
	qsort(good, 3, sizeof(good[0]), id_cmp);
	for (i = 0; i < 3; i++)
		ck_assert_str_eq(s.ids[i], good[i]);
	free(s.ids);
	ck_assert_int_eq(st_count(dir, "tmp"), 1);
	close(busy_tmp);
	close(busy_body);
	pst_spool_close(spool);

	/* Once the writers are gone, their leftovers go too. */
	memset(&pr, 0, sizeof(pr));
	spool = st_open(dir, PST_SPOOL_RECOVER, &pr);
	ck_assert_int_eq(st_count(dir, "tmp"), 0);
	ck_assert(!st_exists(dir, st_body_path("0000000000000022")));
	ck_assert_uint_eq(pr.n, 2);
	pst_spool_close(spool);
}
END_TEST

START_TEST(recover_neither_opens_fifos_nor_reads_huge_files)
{
	struct st_problems pr = { 0 };
	struct pst_spool *spool;
	char fifo_id[PST_SPOOL_ID_LEN + 1], big_id[PST_SPOOL_ID_LEN + 1];
	char path[512];
	int k;

	spool = st_open(dir, PST_SPOOL_CREATE, NULL);
	strcpy(fifo_id, st_commit(spool, "x\r\n", "a@b"));
	strcpy(big_id, st_commit(spool, "y\r\n", "a@b"));
	pst_spool_close(spool);
	snprintf(path, sizeof(path), "%s/%s", dir, st_env_path(fifo_id));
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	/* Sparse: cheap to make, but past the size limit. */
	snprintf(path, sizeof(path), "%s/%s", dir, st_env_path(big_id));
	ck_assert_int_eq(truncate(path, (off_t)PST_SPOOL_ENV_MAX + 4096), 0);

	spool = st_open(dir, PST_SPOOL_RECOVER, &pr);
	k = st_find(&pr, st_env_path(fifo_id));
	ck_assert_int_ge(k, 0);
	ck_assert_int_eq(pr.action[k], PST_SPOOL_QUARANTINED);
	ck_assert_ptr_nonnull(strstr(pr.reason[k], "not a regular file"));
	k = st_find(&pr, st_env_path(big_id));
	ck_assert_int_ge(k, 0);
	ck_assert_int_eq(pr.action[k], PST_SPOOL_QUARANTINED);
	ck_assert_ptr_nonnull(strstr(pr.reason[k], "larger than"));
	ck_assert_int_eq(st_count(dir, "quarantine"), 4);
	pst_spool_close(spool);
}
END_TEST

START_TEST(recover_on_a_clean_spool_reports_nothing)
{
	struct st_problems pr = { 0 };
	struct pst_spool *spool;
	int i;

	spool = st_open(dir, PST_SPOOL_CREATE, NULL);
	for (i = 0; i < 20; i++)
		st_commit(spool, "x\r\n", "a@b");
	pst_spool_close(spool);
	spool = st_open(dir, PST_SPOOL_RECOVER, &pr);
	ck_assert_uint_eq(pr.n, 0);
	pst_spool_close(spool);
}
END_TEST

START_TEST(scan_reports_damage_but_does_not_act)
{
	struct st_problems pr = { 0 };
	struct pst_spool *spool;
	struct seen s;
	char id[PST_SPOOL_ID_LEN + 1], path[512];

	spool = st_open(dir, PST_SPOOL_CREATE, &pr);
	strcpy(id, st_commit(spool, "x\r\n", "a@b"));
	st_commit(spool, "y\r\n", "a@b");
	snprintf(path, sizeof(path), "%s/%s", dir, st_body_path(id));
	ck_assert_int_eq(unlink(path), 0);
	st_write(dir, st_body_path("00000000000000aa"), "lone", 4);
	scan_all(spool, &s, 8);
	ck_assert_uint_eq(s.n, 1);
	free(s.ids);
	ck_assert_uint_eq(pr.n, 1);
	ck_assert_int_eq(pr.action[0], PST_SPOOL_SKIPPED);
	ck_assert_str_eq(pr.path[0], st_env_path(id));
	ck_assert(st_exists(dir, st_env_path(id)));
	ck_assert(st_exists(dir, st_body_path("00000000000000aa")));
	pst_spool_close(spool);
}
END_TEST

START_TEST(scan_finds_thousands_of_messages)
{
	struct pst_spool *spool;
	struct pst_err err;
	struct seen s;
	char (*ids)[PST_SPOOL_ID_LEN + 1];
	size_t i;

	spool = st_open(dir, PST_SPOOL_CREATE, NULL);
	ids = calloc(SCAN_MESSAGES, sizeof(*ids));
	for (i = 0; i < SCAN_MESSAGES; i++)
		strcpy(ids[i], st_plant(spool, dir, "hello\r\n"));
	scan_all(spool, &s, SCAN_MESSAGES);
	ck_assert_uint_eq(s.n, SCAN_MESSAGES);
	/* Ids sort by time: sorted scan output is commit order. */
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
	struct pst_spool *spool;
	struct pst_err err;
	char rel[16], *fmt;
	size_t len;
	int i;

	spool = pst_spool_open(dir, NULL, &err);
	ck_assert_ptr_null(spool);
	ck_assert_ptr_nonnull(strstr(err.text, "not initialised"));
	/* A tool tells "not set up" from other trouble by ENOENT. */
	ck_assert_int_eq(err.sys_errno, ENOENT);
	spool = st_open(dir, PST_SPOOL_CREATE, NULL);
	ck_assert_str_eq(pst_spool_path(spool), dir);
	pst_spool_close(spool);
	fmt = st_read(dir, "format", &len);
	ck_assert_str_eq(fmt, "postern-spool 1\n");
	free(fmt);
	ck_assert(S_ISDIR(st_mode(dir, "tmp")));
	ck_assert(S_ISDIR(st_mode(dir, "quarantine")));
	ck_assert_int_eq(st_mode(dir, "queue") & 07777, 0700);
	for (i = 0; i < 16; i++) {
		snprintf(rel, sizeof(rel), "queue/%x", i);
		ck_assert(S_ISDIR(st_mode(dir, rel)));
	}
	ck_assert_int_eq(st_count(dir, "queue"), 16);
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
	st_write(dir, "format", "postern-spool 2\n", 16);
	ck_assert_ptr_null(pst_spool_open(dir, NULL, &err));
	ck_assert_ptr_nonnull(strstr(err.text, "postern-spool 2"));
	st_write(dir, "format", "postern-spool 1\n", 16);

	/* A world-writable tmp/. */
	snprintf(path, sizeof(path), "%s/tmp", dir);
	ck_assert_int_eq(chmod(path, 0777), 0);
	ck_assert_ptr_null(pst_spool_open(dir, NULL, &err));
	ck_assert_ptr_nonnull(strstr(err.text, "writable by anyone"));
	ck_assert_int_eq(chmod(path, 0700), 0);

	/* A symlinked bucket is not followed. */
	snprintf(path, sizeof(path), "%s/queue/7", dir);
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

START_TEST(lock_update_records_results_and_keeps_the_lock)
{
	struct pst_spool_lock *lock;
	struct pst_spool_env *env, *copy;
	struct pst_spool *spool;
	struct pst_err err;
	char id[PST_SPOOL_ID_LEN + 1], path[512];
	struct stat before, after;

	spool = st_open(dir, PST_SPOOL_CREATE, NULL);
	strcpy(id, st_commit(spool, "body\r\n", "a@b"));
	lock = pst_spool_lock_msg(spool, id, 0, &err);
	ck_assert_msg(lock != NULL, "%s", err.text);
	snprintf(path, sizeof(path), "%s/%s", dir, st_env_path(id));
	ck_assert_int_eq(stat(path, &before), 0);

	env = pst_spool_lock_env(lock);
	ck_assert_int_eq(pst_spool_env_set_result(env, 0,
	    PST_SPOOL_RCPT_DEFERRED, 451, "4.7.1", "try later", &err), 0);
	env->attempts = 1;
	env->next_attempt = 1800000000;
	ck_assert_int_eq(pst_spool_lock_update(lock, env, &err), 0);
	ck_assert_int_eq(stat(path, &after), 0);
	ck_assert_uint_ne(before.st_ino, after.st_ino);
	ck_assert_int_eq(after.st_mode & 07777, 0600);
	ck_assert_int_eq(st_count(dir, "tmp"), 0);

	/* The lock followed the envelope to its new file. */
	ck_assert_ptr_null(pst_spool_lock_msg(spool, id, 0, &err));
	ck_assert_int_eq(err.sys_errno, EWOULDBLOCK);
	ck_assert_int_eq(err.cls, PST_TEMP);
	ck_assert_int_eq(pst_spool_hold(spool, id, true, 0, &err), -1);

	/* Unlocked readers see the new envelope. */
	copy = pst_spool_read(spool, id, &err);
	ck_assert_ptr_nonnull(copy);
	ck_assert_int_eq(copy->rcpts[0].state, PST_SPOOL_RCPT_DEFERRED);
	ck_assert_int_eq(copy->rcpts[0].code, 451);
	ck_assert_str_eq(copy->rcpts[0].error, "try later");
	ck_assert_uint_eq(copy->attempts, 1);
	/* An envelope of another id is refused. */
	copy->id[0] = copy->id[0] == '0' ? '1' : '0';
	ck_assert_int_eq(pst_spool_lock_update(lock, copy, &err), -1);
	copy->id[0] = id[0];
	/* A caller's envelope is copied, not kept. */
	copy->held = true;
	ck_assert_int_eq(pst_spool_lock_update(lock, copy, &err), 0);
	pst_spool_env_free(copy);
	ck_assert(pst_spool_lock_env(lock)->held);
	pst_spool_lock_release(lock);

	ck_assert_int_eq(pst_spool_hold(spool, id, false, 0, &err), 0);
	copy = pst_spool_read(spool, id, &err);
	ck_assert(!copy->held);
	pst_spool_env_free(copy);
	pst_spool_close(spool);
}
END_TEST

START_TEST(lock_update_keeps_owner_and_mode)
{
	struct pst_spool *spool;
	struct pst_err err;
	char id[PST_SPOOL_ID_LEN + 1], path[512];
	struct stat st;

	spool = st_open(dir, PST_SPOOL_CREATE, NULL);
	strcpy(id, st_commit(spool, "body\r\n", "a@b"));
	snprintf(path, sizeof(path), "%s/%s", dir, st_env_path(id));
	ck_assert_int_eq(chmod(path, 0640), 0);
	/* As root, a rewrite goes back to the daemon's user. */
	if (geteuid() == 0)
		ck_assert_int_eq(chown(path, 4321, 4322), 0);
	ck_assert_int_eq(pst_spool_hold(spool, id, true, 0, &err), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	if (geteuid() == 0) {
		ck_assert_int_eq(st.st_uid, 4321);
		ck_assert_int_eq(st.st_gid, 4322);
	}
	pst_spool_close(spool);
}
END_TEST

START_TEST(lock_waits_for_another_process_and_sees_its_update)
{
	struct pst_spool_lock *lock;
	struct pst_spool *spool;
	struct pst_err err;
	char id[PST_SPOOL_ID_LEN + 1];
	int ready[2], status;
	char c;
	pid_t pid;

	spool = st_open(dir, PST_SPOOL_CREATE, NULL);
	strcpy(id, st_commit(spool, "body\r\n", "a@b"));
	ck_assert_int_eq(pipe(ready), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* The "daemon": lock, signal, wait, record a result. */
		lock = pst_spool_lock_msg(spool, id, 0, &err);
		if (lock == NULL)
			_exit(1);
		(void)write(ready[1], "x", 1);
		usleep(200 * 1000);
		pst_spool_lock_env(lock)->attempts = 7;
		if (pst_spool_lock_update(lock, pst_spool_lock_env(lock),
		    &err) == -1)
			_exit(2);
		usleep(100 * 1000);
		pst_spool_lock_release(lock);
		_exit(0);
	}
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	lock = pst_spool_lock_msg(spool, id, PST_SPOOL_WAIT, &err);
	ck_assert_msg(lock != NULL, "%s", err.text);
	ck_assert_uint_eq(pst_spool_lock_env(lock)->attempts, 7);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	pst_spool_lock_release(lock);
	pst_spool_close(spool);
}
END_TEST

START_TEST(remove_takes_envelope_and_body)
{
	struct pst_spool_lock *lock;
	struct pst_spool *spool;
	struct pst_err err;
	char id[PST_SPOOL_ID_LEN + 1];
	struct seen s;

	spool = st_open(dir, PST_SPOOL_CREATE, NULL);
	strcpy(id, st_commit(spool, "body\r\n", "a@b"));
	st_commit(spool, "other\r\n", "a@b");
	ck_assert_int_eq(pst_spool_remove(spool, id, 0, &err), 0);
	ck_assert(!st_exists(dir, st_env_path(id)));
	ck_assert(!st_exists(dir, st_body_path(id)));
	scan_all(spool, &s, 4);
	ck_assert_uint_eq(s.n, 1);
	free(s.ids);

	/* Gone: every handle says so with ENOENT. */
	ck_assert_int_eq(pst_spool_remove(spool, id, 0, &err), -1);
	ck_assert_int_eq(err.sys_errno, ENOENT);
	ck_assert_ptr_null(pst_spool_read(spool, id, &err));
	ck_assert_int_eq(err.sys_errno, ENOENT);
	ck_assert_ptr_null(pst_spool_lock_msg(spool, id, 0, &err));
	ck_assert_int_eq(err.sys_errno, ENOENT);

	/* After remove, a lock only releases. */
	strcpy(id, st_commit(spool, "third\r\n", "a@b"));
	lock = pst_spool_lock_msg(spool, id, 0, &err);
	ck_assert_int_eq(pst_spool_lock_remove(lock, &err), 0);
	ck_assert_int_eq(pst_spool_lock_update(lock, pst_spool_lock_env(lock),
	    &err), -1);
	ck_assert_int_eq(pst_spool_lock_remove(lock, &err), -1);
	pst_spool_lock_release(lock);
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

	spool = st_open(dir, PST_SPOOL_CREATE, NULL);
	strcpy(id, st_commit(spool, "0123456789", "a@b"));
	env = pst_spool_read(spool, id, &err);
	fd = pst_spool_body_open(spool, env, &off, &err);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, buf, sizeof(buf)), 10);
	close(fd);
	snprintf(path, sizeof(path), "%s/%s", dir, st_body_path(id));
	ck_assert_int_eq(truncate(path, 4), 0);
	ck_assert_int_eq(pst_spool_body_open(spool, env, &off, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.text, "damaged"));
	pst_spool_env_free(env);

	lock = pst_spool_lock_msg(spool, id, 0, &err);
	ck_assert_int_eq(pst_spool_lock_quarantine(lock, &err), 0);
	pst_spool_lock_release(lock);
	ck_assert(!st_exists(dir, st_env_path(id)));
	ck_assert(!st_exists(dir, st_body_path(id)));
	ck_assert_int_eq(st_count(dir, "quarantine"), 2);
	pst_spool_close(spool);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("spool/scan");
	TCase *tc;

	tc = tcase_create("recover");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, recover_handles_every_kind_of_damage);
	tcase_add_test(tc, recover_neither_opens_fifos_nor_reads_huge_files);
	tcase_add_test(tc, recover_on_a_clean_spool_reports_nothing);
	tcase_add_test(tc, scan_reports_damage_but_does_not_act);
	tcase_add_test(tc, scan_finds_thousands_of_messages);
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
	tcase_add_test(tc, lock_update_records_results_and_keeps_the_lock);
	tcase_add_test(tc, lock_update_keeps_owner_and_mode);
	tcase_add_test(tc, lock_waits_for_another_process_and_sees_its_update);
	tcase_add_test(tc, remove_takes_envelope_and_body);
	tcase_add_test(tc, ids_from_outside_never_name_other_paths);
	tcase_add_test(tc,
	    body_open_checks_the_size_and_quarantine_moves_both);
	suite_add_tcase(s, tc);
	return s;
}
