/*
 * helpers.c: see spool_test.h.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "common/codec.h"
#include "common/err.h"
#include "spool/spool.h"
#include "spool_test.h"

char *
st_mkdtemp(void)
{
	char *dir = strdup("/tmp/pst-spool-XXXXXX");

	ck_assert_ptr_nonnull(dir);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	return dir;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (flag == FTW_DP)
		(void)rmdir(path);
	else
		(void)unlink(path);
	return 0;
}

void
st_rmrf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
join(char *buf, size_t len, const char *root, const char *rel)
{
	snprintf(buf, len, "%s/%s", root, rel);
}

int
st_count(const char *root, const char *dir)
{
	char path[512];
	struct dirent *de;
	DIR *d;
	int n = 0;

	join(path, sizeof(path), root, dir);
	d = opendir(path);
	ck_assert_msg(d != NULL, "opendir %s: %s", path, strerror(errno));
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

int
st_exists(const char *root, const char *rel)
{
	char path[512];
	struct stat st;

	join(path, sizeof(path), root, rel);
	return lstat(path, &st) == 0;
}

mode_t
st_mode(const char *root, const char *rel)
{
	char path[512];
	struct stat st;

	join(path, sizeof(path), root, rel);
	ck_assert_int_eq(lstat(path, &st), 0);
	return st.st_mode;
}

void
st_write(const char *root, const char *rel, const char *data, size_t len)
{
	char path[512];
	int fd;

	join(path, sizeof(path), root, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_msg(fd != -1, "create %s: %s", path, strerror(errno));
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

char *
st_read(const char *root, const char *rel, size_t *len)
{
	char path[512];
	struct stat st;
	char *buf;
	int fd;

	join(path, sizeof(path), root, rel);
	fd = open(path, O_RDONLY);
	ck_assert_msg(fd != -1, "open %s: %s", path, strerror(errno));
	ck_assert_int_eq(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(read(fd, buf, (size_t)st.st_size),
	    (ssize_t)st.st_size);
	buf[st.st_size] = '\0';
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

void
st_collect(const struct pst_spool_problem *p, void *arg)
{
	struct st_problems *pr = arg;

	if (pr->n == ST_PROBLEMS_MAX)
		return;
	pr->action[pr->n] = p->action;
	snprintf(pr->path[pr->n], sizeof(pr->path[0]), "%s", p->path);
	snprintf(pr->moved[pr->n], sizeof(pr->moved[0]), "%s",
	    p->moved_to != NULL ? p->moved_to : "");
	snprintf(pr->reason[pr->n], sizeof(pr->reason[0]), "%s", p->reason);
	pr->n++;
}

int
st_find(const struct st_problems *pr, const char *path)
{
	size_t i;

	for (i = 0; i < pr->n; i++)
		if (strcmp(pr->path[i], path) == 0)
			return (int)i;
	return -1;
}

struct pst_spool *
st_open(const char *dir, unsigned flags, struct st_problems *pr)
{
	struct pst_spool_opts opts = { 0 };
	struct pst_spool *spool;
	struct pst_err err;

	opts.flags = flags;
	opts.problem = pr != NULL ? st_collect : NULL;
	opts.problem_arg = pr;
	spool = pst_spool_open(dir, &opts, &err);
	ck_assert_msg(spool != NULL, "open %s: %s", dir, err.text);
	return spool;
}

const char *
st_commit(struct pst_spool *spool, const char *body, const char *rcpt)
{
	static char id[PST_SPOOL_ID_LEN + 1];
	struct pst_spool_msg *msg;
	struct pst_spool_env *env;
	struct pst_err err;

	msg = pst_spool_msg_begin(spool, &err);
	ck_assert_ptr_nonnull(msg);
	env = pst_spool_msg_env(msg);
	ck_assert_int_eq(pst_spool_env_set_sender(env, "alice@example.org",
	    &err), 0);
	ck_assert_int_eq(pst_spool_env_add_rcpt(env, rcpt, 0, NULL, &err), 0);
	ck_assert_int_eq(pst_spool_msg_write(msg, body, strlen(body), &err),
	    0);
	ck_assert_msg(pst_spool_msg_commit_sync(msg, &err) == 0, "commit: %s",
	    err.text);
	snprintf(id, sizeof(id), "%s", pst_spool_msg_id(msg));
	pst_spool_msg_free(msg, NULL);
	return id;
}

const char *
st_plant(struct pst_spool *spool, const char *root, const char *body)
{
	static char id[PST_SPOOL_ID_LEN + 1];
	struct pst_spool_msg *msg;
	struct pst_spool_env *env;
	struct pst_err err;
	size_t len;
	char *rec;

	/* Only for a fresh id. */
	msg = pst_spool_msg_begin(spool, &err);
	ck_assert_ptr_nonnull(msg);
	snprintf(id, sizeof(id), "%s", pst_spool_msg_id(msg));
	pst_spool_msg_free(msg, NULL);

	env = pst_spool_env_new(&err);
	memcpy(env->id, id, sizeof(env->id));
	env->size = strlen(body);
	env->arrival = 1700000000;
	ck_assert_int_eq(pst_spool_env_set_sender(env, "a@example.org", &err),
	    0);
	ck_assert_int_eq(pst_spool_env_add_rcpt(env, "b@example.org", 0, NULL,
	    &err), 0);
	ck_assert_int_eq(pst_spool_env_encode(env, &rec, &len, &err), 0);
	st_write(root, st_v1_body_path(id), body, strlen(body));
	st_write(root, st_v1_env_path(id), rec, len);
	free(rec);
	pst_spool_env_free(env);
	return id;
}

const char *
st_env_path(const char *id)
{
	static char buf[64];

	snprintf(buf, sizeof(buf), "incoming/%s", id);
	return buf;
}

const char *
st_body_path(const char *id)
{
	static char buf[64];

	snprintf(buf, sizeof(buf), "bodies/%s", id);
	return buf;
}

const char *
st_v1_env_path(const char *id)
{
	static char buf[64];

	snprintf(buf, sizeof(buf), "queue/%c/%s.env", id[15], id);
	return buf;
}

const char *
st_v1_body_path(const char *id)
{
	static char buf[64];

	snprintf(buf, sizeof(buf), "queue/%c/%s.body", id[15], id);
	return buf;
}

void
st_make_v1(const char *root)
{
	char path[512];
	int i;

	snprintf(path, sizeof(path), "%s/queue", root);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	for (i = 0; i < 16; i++) {
		snprintf(path, sizeof(path), "%s/queue/%x", root, i);
		ck_assert_int_eq(mkdir(path, 0700), 0);
	}
	st_write(root, "format", "postern-spool 1\n", 16);
}

char *
st_seal(const char *text, size_t *len)
{
	size_t n = strlen(text);
	char *out;
	int m;

	out = malloc(n + 64);
	ck_assert_ptr_nonnull(out);
	memcpy(out, text, n);
	m = snprintf(out + n, 64, "end %zu %016" PRIx64 "\n", n,
	    pst_fnv1a64(text, n));
	*len = n + (size_t)m;
	return out;
}
