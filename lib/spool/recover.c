/*
 * recover.c: recovery of tmp/, and of a spool of format 1 with the scan
 * of its messages, which the takeover into format 2 reads (takeover.c).
 *
 * Both walk the sixteen buckets the same way: list a bucket with
 * readdir() (d_type says which entries are regular files, so nothing is
 * stat()ed in the common case), sort the names, and pair each id's
 * envelope with its body.  The scan then reads envelopes only.  Recovery
 * also decides the fate of what does not pair up (the rule is in
 * spool.h) and acts on it; the scan only reports and skips.
 *
 * Concurrent writers are expected (sendmail commits while the daemon
 * starts, the operator's tool removes messages): a listing may miss a
 * file created during it, so an unpaired file is looked up again before
 * anything is done to it, and a body is only deleted once flock() shows
 * that no committer holds it.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "spool/spool.h"
#include "spool/spool_int.h"

enum kind { KIND_ENV = 0, KIND_BODY = 1 };

/* entry_type() for a name that vanished since it was listed. */
#define TYPE_GONE	0xff

struct ent {
	char		 id[PST_SPOOL_ID_LEN + 1];
	unsigned char	 kind;
	unsigned char	 type;		/* DT_* */
};

struct listing {
	struct ent	*ents;
	size_t		 n, cap;
	char		**others;	/* names that are not ID.env/ID.body */
	size_t		 nothers, othcap;
};

struct walk {
	struct pst_spool	*spool;
	int			 bucket;
	int			 bfd;
	bool			 recover;
	bool			 changed;	/* bucket needs an fsync */
	bool			 quarantined;
	pst_spool_scan_fn	 fn;
	void			*arg;
	struct pst_err		*err;
};

static int	 ent_cmp(const void *, const void *);
static int	 list_dir(int, struct listing *);
static void	 listing_free(struct listing *);
static unsigned char entry_type(int, const char *, unsigned char);
static bool	 exists(int, const char *, unsigned char *);
static void	 rel_path(char *, size_t, int, const char *);
static void	 quarantine(struct walk *, const char *, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static int	 pair(struct walk *, const char *, const struct ent *,
		    const struct ent *);
static int	 walk_bucket(struct walk *);

static int
ent_cmp(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	int c = strcmp(x->id, y->id);

	return c != 0 ? c : (int)x->kind - (int)y->kind;
}

/* Splits the names of 'dirfd' into id entries and other names. */
static int
list_dir(int dirfd, struct listing *l)
{
	struct dirent *de;
	struct ent *e;
	size_t len;
	char **o;
	DIR *d;
	int fd;

	memset(l, 0, sizeof(*l));
	/*
	 * A descriptor of its own: a dup() would share the directory
	 * offset with every other listing of this bucket.
	 */
	if ((fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1)
		return -1;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		len = strlen(de->d_name);
		if (l->n == l->cap) {
			l->cap = l->cap == 0 ? 256 : l->cap * 2;
			if ((e = reallocarray(l->ents, l->cap,
			    sizeof(*e))) == NULL)
				goto fail;
			l->ents = e;
		}
		e = &l->ents[l->n];
		if (len > PST_SPOOL_ID_LEN &&
		    (strcmp(de->d_name + PST_SPOOL_ID_LEN,
		    SPOOL_ENV_SUFFIX) == 0 ||
		    strcmp(de->d_name + PST_SPOOL_ID_LEN,
		    SPOOL_BODY_SUFFIX) == 0)) {
			memcpy(e->id, de->d_name, PST_SPOOL_ID_LEN);
			e->id[PST_SPOOL_ID_LEN] = '\0';
			if (pst_spool_id_valid(e->id)) {
				e->kind = de->d_name[PST_SPOOL_ID_LEN + 1] ==
				    'e' ? KIND_ENV : KIND_BODY;
				e->type = de->d_type;
				l->n++;
				continue;
			}
		}
		if (l->nothers == l->othcap) {
			l->othcap = l->othcap == 0 ? 16 : l->othcap * 2;
			if ((o = reallocarray(l->others, l->othcap,
			    sizeof(*o))) == NULL)
				goto fail;
			l->others = o;
		}
		if ((l->others[l->nothers] = strdup(de->d_name)) == NULL)
			goto fail;
		l->nothers++;
	}
	if (errno != 0)
		goto fail;
	closedir(d);
	if (l->n > 0)
		qsort(l->ents, l->n, sizeof(*l->ents), ent_cmp);
	return 0;
fail:
	if (errno == 0)
		errno = ENOMEM;
	fd = errno;
	closedir(d);
	listing_free(l);
	errno = fd;
	return -1;
}

static void
listing_free(struct listing *l)
{
	size_t i;

	for (i = 0; i < l->nothers; i++)
		free(l->others[i]);
	free(l->others);
	free(l->ents);
	memset(l, 0, sizeof(*l));
}

/* d_type, or lstat()'s answer where the file system gives none. */
static unsigned char
entry_type(int dirfd, const char *name, unsigned char type)
{
	struct stat st;

	if (type != DT_UNKNOWN)
		return type;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return errno == ENOENT ? TYPE_GONE : DT_UNKNOWN;
	if (S_ISREG(st.st_mode))
		return DT_REG;
	if (S_ISDIR(st.st_mode))
		return DT_DIR;
	if (S_ISLNK(st.st_mode))
		return DT_LNK;
	return DT_UNKNOWN;
}

static bool
exists(int dirfd, const char *name, unsigned char *type)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return false;
	*type = S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
	return true;
}

static void
rel_path(char *buf, size_t len, int bucket, const char *name)
{
	snprintf(buf, len, "queue/%x/%s", bucket, name);
}

/* Recovery: move 'name' aside; a scan: report and skip it. */
static void
quarantine(struct walk *w, const char *name, const char *fmt, ...)
{
	char rel[SPOOL_REL_MAX + 256], moved[SPOOL_NAME_MAX + 256];
	char reason[PST_ERR_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	rel_path(rel, sizeof(rel), w->bucket, name);
	if (!w->recover) {
		spool_report(w->spool, PST_SPOOL_SKIPPED, rel, NULL, "%s",
		    reason);
		return;
	}
	if (spool_quarantine(w->spool, w->bfd, name, "", moved,
	    sizeof(moved)) == -1) {
		if (errno == ENOENT)
			return;
		spool_report(w->spool, PST_SPOOL_SKIPPED, rel, NULL,
		    "%s; cannot move it to quarantine: %s", reason,
		    strerror(errno));
		return;
	}
	w->changed = w->quarantined = true;
	spool_report(w->spool, PST_SPOOL_QUARANTINED, rel, moved, "%s",
	    reason);
}

/* One id: 'env' and 'body' are its listed entries, either may be NULL. */
static int
pair(struct walk *w, const char *id, const struct ent *env,
    const struct ent *body)
{
	struct pst_spool_env *e = NULL;
	struct pst_err rerr;
	char ename[SPOOL_NAME_MAX], bname[SPOOL_NAME_MAX];
	char rel[SPOOL_REL_MAX];
	unsigned char et = DT_UNKNOWN, bt = DT_UNKNOWN;
	bool have_env = env != NULL, have_body = body != NULL;
	int fd;

	snprintf(ename, sizeof(ename), "%s%s", id, SPOOL_ENV_SUFFIX);
	snprintf(bname, sizeof(bname), "%s%s", id, SPOOL_BODY_SUFFIX);
	if (have_env && (et = entry_type(w->bfd, ename, env->type)) ==
	    TYPE_GONE)
		have_env = false;
	if (have_body && (bt = entry_type(w->bfd, bname, body->type)) ==
	    TYPE_GONE)
		have_body = false;
	/* The listing may have missed a file created meanwhile. */
	if (!have_body)
		have_body = exists(w->bfd, bname, &bt);
	if (!have_env)
		have_env = exists(w->bfd, ename, &et);

	if (have_env && et != DT_REG) {
		quarantine(w, ename, "envelope is not a regular file");
		if (have_body)
			quarantine(w, bname, "its envelope is not a regular "
			    "file");
		return 0;
	}
	if (have_body && bt != DT_REG) {
		quarantine(w, bname, "body is not a regular file");
		if (have_env)
			quarantine(w, ename, "its body is not a regular file");
		return 0;
	}
	if (have_env && !have_body) {
		quarantine(w, ename, "envelope without body");
		return 0;
	}
	if (!have_env) {
		/* A body alone: a commit in progress, or one that died. */
		if (!w->recover)
			return 0;
		fd = openat(w->bfd, bname, O_RDONLY | O_NOFOLLOW |
		    O_NONBLOCK | O_CLOEXEC);
		if (fd == -1)
			return 0;
		if (flock(fd, LOCK_EX | LOCK_NB) == -1 ||
		    exists(w->bfd, ename, &et)) {
			close(fd);
			return 0;
		}
		if (unlinkat(w->bfd, bname, 0) == 0) {
			w->changed = true;
			rel_path(rel, sizeof(rel), w->bucket, bname);
			spool_report(w->spool, PST_SPOOL_REMOVED, rel, NULL,
			    "body without envelope: never committed");
		}
		close(fd);
		return 0;
	}

	if (spool_read_env(w->bfd, ename, id, &e, &rerr) == -1) {
		if (rerr.sys_errno == ENOENT)
			return 0;	/* removed meanwhile */
		if (rerr.sys_errno == EACCES || rerr.sys_errno == EPERM) {
			/*
			 * Not damage, and not worth refusing to start for:
			 * the operator fixes the owner or mode.
			 */
			rel_path(rel, sizeof(rel), w->bucket, ename);
			spool_report(w->spool, PST_SPOOL_SKIPPED, rel, NULL,
			    "%s; left in the queue: fix its owner or mode, "
			    "and the next start reads it", rerr.text);
			return 0;
		}
		if (rerr.cls == PST_TEMP) {
			/* Never judge a file by a failing disk. */
			*w->err = rerr;
			return -1;
		}
		quarantine(w, ename, "%s", rerr.text);
		quarantine(w, bname, "its envelope is damaged");
		return 0;
	}
	if (w->fn == NULL) {
		pst_spool_env_free(e);
		return 0;
	}
	return w->fn(e, w->arg);
}

static int
walk_bucket(struct walk *w)
{
	struct listing l;
	const struct ent *env, *body;
	char rel[SPOOL_REL_MAX + 256];
	size_t i, j;
	int rc = 0;

	if (list_dir(w->bfd, &l) == -1)
		return spool_sys(w->err, errno, "reading %s/queue/%x",
		    w->spool->path, w->bucket);
	for (i = 0; i < l.n && rc == 0; i = j) {
		env = body = NULL;
		for (j = i; j < l.n && strcmp(l.ents[j].id, l.ents[i].id) == 0;
		    j++) {
			if (l.ents[j].kind == KIND_ENV)
				env = &l.ents[j];
			else
				body = &l.ents[j];
		}
		rc = pair(w, l.ents[i].id, env, body);
	}
	for (i = 0; i < l.nothers && rc == 0; i++) {
		if (w->recover) {
			quarantine(w, l.others[i], "unexpected name in the "
			    "queue");
		} else {
			rel_path(rel, sizeof(rel), w->bucket, l.others[i]);
			spool_report(w->spool, PST_SPOOL_SKIPPED, rel, NULL,
			    "unexpected name in the queue");
		}
	}
	listing_free(&l);
	return rc;
}

int
spool_v1_scan(struct pst_spool *spool, pst_spool_scan_fn fn, void *arg,
    struct pst_err *err)
{
	struct walk w;
	int b;

	memset(&w, 0, sizeof(w));
	w.spool = spool;
	w.fn = fn;
	w.arg = arg;
	w.err = err;
	for (b = 0; b < PST_SPOOL_BUCKETS; b++) {
		w.bucket = b;
		w.bfd = spool->bucketfd[b];
		if (walk_bucket(&w) == -1)
			return -1;
	}
	return 0;
}

/* Unlocked files in tmp/ are writes that died: remove them. */
int
spool_recover_tmp(struct pst_spool *spool, struct pst_err *err)
{
	struct listing l;
	char rel[SPOOL_REL_MAX + 256], moved[SPOOL_NAME_MAX + 256];
	char buf[SPOOL_NAME_MAX];
	const char *name;
	unsigned char type;
	size_t i;
	int fd;

	if (list_dir(spool->tmpfd, &l) == -1)
		return spool_sys(err, errno, "reading %s/tmp", spool->path);
	/* ID.env and ID.body names are listed apart; treat all alike. */
	for (i = 0; i < l.n + l.nothers; i++) {
		if (i < l.n) {
			snprintf(buf, sizeof(buf), "%s%s", l.ents[i].id,
			    l.ents[i].kind == KIND_ENV ? SPOOL_ENV_SUFFIX :
			    SPOOL_BODY_SUFFIX);
			name = buf;
			type = entry_type(spool->tmpfd, name, l.ents[i].type);
		} else {
			name = l.others[i - l.n];
			type = entry_type(spool->tmpfd, name, DT_UNKNOWN);
		}
		snprintf(rel, sizeof(rel), "tmp/%s", name);
		if (type == TYPE_GONE)
			continue;
		if (type == DT_DIR) {
			if (spool_quarantine(spool, spool->tmpfd, name, "",
			    moved, sizeof(moved)) == 0)
				spool_report(spool, PST_SPOOL_QUARANTINED,
				    rel, moved, "directory in tmp/");
			continue;
		}
		if (type == DT_REG) {
			fd = openat(spool->tmpfd, name, O_RDONLY |
			    O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
			if (fd == -1)
				continue;
			if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
				/* Someone is writing it right now. */
				close(fd);
				continue;
			}
			if (unlinkat(spool->tmpfd, name, 0) == 0)
				spool_report(spool, PST_SPOOL_REMOVED, rel,
				    NULL, "unfinished write");
			close(fd);
			continue;
		}
		/* Symlinks and the like: unlink() removes the link only. */
		if (unlinkat(spool->tmpfd, name, 0) == 0)
			spool_report(spool, PST_SPOOL_REMOVED, rel, NULL,
			    "not a regular file");
	}
	listing_free(&l);
	return 0;
}

int
spool_v1_recover(struct pst_spool *spool, struct pst_err *err)
{
	struct walk w;
	bool quarantined = false;
	int b;

	memset(&w, 0, sizeof(w));
	w.spool = spool;
	w.recover = true;
	w.err = err;
	for (b = 0; b < PST_SPOOL_BUCKETS; b++) {
		w.bucket = b;
		w.bfd = spool->bucketfd[b];
		w.changed = false;
		if (walk_bucket(&w) == -1)
			return -1;
		if (w.changed && spool_fsync_dir(w.bfd, "queue directory",
		    err) == -1)
			return -1;
		quarantined |= w.quarantined;
	}
	if (quarantined && spool_fsync_dir(spool->quarfd, "quarantine",
	    err) == -1)
		return -1;
	return 0;
}
