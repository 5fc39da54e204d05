/*
 * lock.c: reading one message, and changing it under its lock.
 *
 * The lock is flock() on the envelope file.  Because a rewrite replaces
 * that file by rename, a locker checks after flock() that the name still
 * refers to the inode it locked, and tries again if not; and a rewriter
 * locks the new file before it renames it into place, so the lock passes
 * from the old inode to the new one without a gap.  Lock holders are the
 * only processes that replace or remove committed files, so under the
 * lock the message's names are stable.
 *
 * Everything here blocks on the disk; the daemon calls it from the pool.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "spool/spool.h"
#include "spool/spool_int.h"

#define LOCK_RETRIES	100	/* replaced under us this often: give up */

struct pst_spool_lock {
	struct pst_spool	*spool;
	char			 id[PST_SPOOL_ID_LEN + 1];
	int			 bfd;		/* bucket directory */
	int			 fd;		/* the locked envelope */
	struct pst_spool_env	*env;
	bool			 gone;		/* removed or quarantined */
};

static int	 keep_owner(int, int);
static int	 check_id(const char *, struct pst_err *);
static int	 relock(struct pst_spool *, int, const char *, const char *,
		    unsigned, struct pst_err *);
static void	 quarantine_damaged(struct pst_spool_lock *, struct pst_err *);

/*
 * A rewrite must stay readable by whoever could read the old envelope:
 * root (the operator's tool) hands the new file to the old owner, and
 * everyone keeps the old file's mode where it is one the spool uses.
 */
static int
keep_owner(int oldfd, int newfd)
{
	struct stat st;
	mode_t mode;

	if (fstat(oldfd, &st) == -1)
		return -1;
	mode = st.st_mode & 07777;
	if ((mode == 0600 || mode == 0640) && fchmod(newfd, mode) == -1)
		return -1;
	if (geteuid() == 0 && fchown(newfd, st.st_uid, st.st_gid) == -1)
		return -1;
	return 0;
}

static int
check_id(const char *id, struct pst_err *err)
{
	if (!pst_spool_id_valid(id))
		return spool_bad(err, "\"%.40s\" is not a queue id", id);
	return 0;
}

/* Opens and locks 'name', making sure it is still the file by that name. */
static int
relock(struct pst_spool *spool, int bfd, const char *id, const char *name,
    unsigned flags, struct pst_err *err)
{
	struct stat locked, named;
	int fd, tries, rc;

	for (tries = 0; tries < LOCK_RETRIES; tries++) {
		fd = openat(bfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
		    O_CLOEXEC);
		if (fd == -1 && errno == ENOENT) {
			spool_bad(err, "no message %s in the queue", id);
			err->sys_errno = ENOENT;
			return -1;
		}
		if (fd == -1)
			return spool_sys(err, errno, "opening envelope of %s",
			    id);
		do {
			rc = flock(fd, LOCK_EX |
			    ((flags & PST_SPOOL_WAIT) ? 0 : LOCK_NB));
		} while (rc == -1 && errno == EINTR);
		if (rc == -1 && errno == EWOULDBLOCK) {
			close(fd);
			pst_err_set(err, PST_TEMP, PST_STAGE_SPOOL, "message "
			    "%s is locked by another process", id);
			err->sys_errno = EWOULDBLOCK;
			return -1;
		}
		if (rc == -1 || fstat(fd, &locked) == -1) {
			spool_sys(err, errno, "locking message %s", id);
			close(fd);
			return -1;
		}
		if (fstatat(bfd, name, &named, AT_SYMLINK_NOFOLLOW) == -1) {
			close(fd);
			if (errno != ENOENT)
				return spool_sys(err, errno, "locking message "
				    "%s", id);
			/* Removed while we waited. */
			spool_bad(err, "no message %s in the queue", id);
			err->sys_errno = ENOENT;
			return -1;
		}
		if (locked.st_dev == named.st_dev &&
		    locked.st_ino == named.st_ino) {
			if (!S_ISREG(locked.st_mode)) {
				close(fd);
				return spool_bad(err, "envelope of %s is not "
				    "a regular file", id);
			}
			return fd;
		}
		/* Rewritten while we waited: lock the new one. */
		close(fd);
	}
	pst_err_set(err, PST_TEMP, PST_STAGE_SPOOL, "message %s keeps "
	    "changing; could not lock it", id);
	return -1;
}

/*
 * An envelope that does not decode under its lock is damaged, not half
 * written (committers and rewriters rename whole files into place): it
 * goes to quarantine/ with its body now, rather than fail every attempt
 * until the next start's recovery.  'err' says why, and sys_errno
 * becomes EBADMSG once it is moved.
 */
static void
quarantine_damaged(struct pst_spool_lock *lock, struct pst_err *err)
{
	struct pst_err qerr;
	size_t used;

	if (pst_spool_lock_quarantine(lock, &qerr) == -1) {
		used = strlen(err->text);
		snprintf(err->text + used, sizeof(err->text) - used, "; "
		    "cannot move it to quarantine: %s", qerr.text);
		return;
	}
	used = strlen(err->text);
	snprintf(err->text + used, sizeof(err->text) - used, "; moved to "
	    "quarantine/ with its body");
	err->sys_errno = EBADMSG;
}

struct pst_spool_lock *
pst_spool_lock_msg(struct pst_spool *spool, const char *id, unsigned flags,
    struct pst_err *err)
{
	struct pst_spool_lock *lock;
	char name[SPOOL_NAME_MAX];

	if (check_id(id, err) == -1)
		return NULL;
	if ((lock = calloc(1, sizeof(*lock))) == NULL) {
		spool_sys(err, ENOMEM, "locking message %s", id);
		return NULL;
	}
	lock->spool = spool;
	memcpy(lock->id, id, sizeof(lock->id));
	lock->bfd = spool->bucketfd[spool_bucket(id)];
	snprintf(name, sizeof(name), "%s%s", id, SPOOL_ENV_SUFFIX);
	if ((lock->fd = relock(spool, lock->bfd, id, name, flags, err)) == -1) {
		free(lock);
		return NULL;
	}
	if (spool_read_env(lock->bfd, name, id, &lock->env, err) == -1) {
		if (err->cls == PST_LOCAL && err->sys_errno == 0)
			quarantine_damaged(lock, err);
		close(lock->fd);
		free(lock);
		return NULL;
	}
	return lock;
}

struct pst_spool_env *
pst_spool_lock_env(struct pst_spool_lock *lock)
{
	return lock->env;
}

int
pst_spool_lock_update(struct pst_spool_lock *lock,
    const struct pst_spool_env *env, struct pst_err *err)
{
	struct pst_spool *spool = lock->spool;
	struct pst_spool_env *copy = NULL;
	char tmpname[SPOOL_NAME_MAX], name[SPOOL_NAME_MAX];
	char *buf = NULL;
	size_t len;
	int fd = -1, i;

	if (lock->gone)
		return spool_bad(err, "message %s is no longer queued",
		    lock->id);
	if (strcmp(env->id, lock->id) != 0)
		return spool_bad(err, "envelope %s given for message %s",
		    env->id, lock->id);
	if (pst_spool_env_encode(env, &buf, &len, err) == -1)
		return -1;
	if (env != lock->env &&
	    (copy = pst_spool_env_decode(buf, len, err)) == NULL)
		goto fail;
	for (i = 0; i < 10; i++) {
		snprintf(tmpname, sizeof(tmpname), "%s.%08" PRIx32 "%s",
		    lock->id, spool_random32(), SPOOL_ENV_SUFFIX);
		if ((fd = spool_create_tmp(spool, tmpname)) != -1 ||
		    errno != EEXIST)
			break;
	}
	if (fd == -1) {
		spool_sys(err, errno, "creating tmp/%s", tmpname);
		goto fail;
	}
	if (keep_owner(lock->fd, fd) == -1) {
		spool_sys(err, errno, "giving tmp/%s the envelope's owner",
		    tmpname);
		goto fail_unlink;
	}
	if (spool_write_all(fd, buf, len) == -1 || fsync(fd) == -1) {
		spool_sys(err, errno, "writing tmp/%s", tmpname);
		goto fail_unlink;
	}
	/* spool_create_tmp() locked the new file: the lock carries over. */
	snprintf(name, sizeof(name), "%s%s", lock->id, SPOOL_ENV_SUFFIX);
	if (renameat(spool->tmpfd, tmpname, lock->bfd, name) == -1) {
		spool_sys(err, errno, "replacing envelope of %s", lock->id);
		goto fail_unlink;
	}
	close(lock->fd);
	lock->fd = fd;
	if (copy != NULL) {
		pst_spool_env_free(lock->env);
		lock->env = copy;
	}
	free(buf);
	return spool_fsync_dir(lock->bfd, "queue directory", err);
fail_unlink:
	(void)unlinkat(spool->tmpfd, tmpname, 0);
	close(fd);
fail:
	pst_spool_env_free(copy);
	free(buf);
	return -1;
}

int
pst_spool_lock_remove(struct pst_spool_lock *lock, struct pst_err *err)
{
	char name[SPOOL_NAME_MAX];

	if (lock->gone)
		return spool_bad(err, "message %s is no longer queued",
		    lock->id);
	snprintf(name, sizeof(name), "%s%s", lock->id, SPOOL_ENV_SUFFIX);
	if (unlinkat(lock->bfd, name, 0) == -1)
		return spool_sys(err, errno, "removing envelope of %s",
		    lock->id);
	lock->gone = true;
	/* The envelope's removal must be durable before the body's. */
	if (spool_fsync_dir(lock->bfd, "queue directory", err) == -1)
		return -1;
	snprintf(name, sizeof(name), "%s%s", lock->id, SPOOL_BODY_SUFFIX);
	if (unlinkat(lock->bfd, name, 0) == -1 && errno != ENOENT)
		return spool_sys(err, errno, "removing body of %s", lock->id);
	return 0;
}

int
pst_spool_lock_quarantine(struct pst_spool_lock *lock, struct pst_err *err)
{
	struct pst_spool *spool = lock->spool;
	char name[SPOOL_NAME_MAX], moved[SPOOL_NAME_MAX + 8];

	if (lock->gone)
		return spool_bad(err, "message %s is no longer queued",
		    lock->id);
	snprintf(name, sizeof(name), "%s%s", lock->id, SPOOL_ENV_SUFFIX);
	if (spool_quarantine(spool, lock->bfd, name, "", moved,
	    sizeof(moved)) == -1)
		return spool_sys(err, errno, "quarantining envelope of %s",
		    lock->id);
	lock->gone = true;
	if (spool_fsync_dir(lock->bfd, "queue directory", err) == -1)
		return -1;
	snprintf(name, sizeof(name), "%s%s", lock->id, SPOOL_BODY_SUFFIX);
	if (spool_quarantine(spool, lock->bfd, name, "", moved,
	    sizeof(moved)) == -1 && errno != ENOENT)
		return spool_sys(err, errno, "quarantining body of %s",
		    lock->id);
	return spool_fsync_dir(spool->quarfd, "quarantine", err);
}

void
pst_spool_lock_release(struct pst_spool_lock *lock)
{
	if (lock == NULL)
		return;
	close(lock->fd);
	pst_spool_env_free(lock->env);
	free(lock);
}

int
pst_spool_remove(struct pst_spool *spool, const char *id, unsigned flags,
    struct pst_err *err)
{
	struct pst_spool_lock *lock;
	int rc;

	if ((lock = pst_spool_lock_msg(spool, id, flags, err)) == NULL)
		return -1;
	rc = pst_spool_lock_remove(lock, err);
	pst_spool_lock_release(lock);
	return rc;
}

int
pst_spool_hold(struct pst_spool *spool, const char *id, bool held,
    unsigned flags, struct pst_err *err)
{
	struct pst_spool_lock *lock;
	int rc = 0;

	if ((lock = pst_spool_lock_msg(spool, id, flags, err)) == NULL)
		return -1;
	if (lock->env->held != held) {
		lock->env->held = held;
		rc = pst_spool_lock_update(lock, lock->env, err);
	}
	pst_spool_lock_release(lock);
	return rc;
}

struct pst_spool_env *
pst_spool_read(struct pst_spool *spool, const char *id, struct pst_err *err)
{
	struct pst_spool_env *env;
	char name[SPOOL_NAME_MAX];

	if (check_id(id, err) == -1)
		return NULL;
	snprintf(name, sizeof(name), "%s%s", id, SPOOL_ENV_SUFFIX);
	if (spool_read_env(spool->bucketfd[spool_bucket(id)], name, id, &env,
	    err) == -1) {
		if (err->sys_errno == ENOENT) {
			spool_bad(err, "no message %s in the queue", id);
			err->sys_errno = ENOENT;
		}
		return NULL;
	}
	return env;
}

int
pst_spool_body_open(struct pst_spool *spool, const struct pst_spool_env *env,
    uint64_t *offset, struct pst_err *err)
{
	char name[SPOOL_NAME_MAX];
	struct stat st;
	int fd;

	if (check_id(env->id, err) == -1)
		return -1;
	snprintf(name, sizeof(name), "%s%s", env->id, SPOOL_BODY_SUFFIX);
	fd = openat(spool->bucketfd[spool_bucket(env->id)], name,
	    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1)
		return spool_sys_read(err, errno, "opening body of %s",
		    env->id);
	if (fstat(fd, &st) == -1) {
		spool_sys(err, errno, "body of %s", env->id);
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != env->size) {
		spool_bad(err, "body of %s is damaged: %s%jd bytes, the "
		    "envelope says %" PRIu64, env->id,
		    S_ISREG(st.st_mode) ? "" : "not a regular file, ",
		    (intmax_t)st.st_size, env->size);
		close(fd);
		return -1;
	}
	*offset = 0;
	return fd;
}
