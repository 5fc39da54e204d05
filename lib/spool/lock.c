/*
 * lock.c: reading one message, and changing it under its lock.
 *
 * In format 2 a message is changed only by the process that writes the
 * log (the daemon, or a tool holding the daemon lock), so its lock is a
 * mark in that process's index: it keeps two deliveries, or a delivery
 * and an operator's change made through the daemon, apart.  Changes are
 * records in the log (ENV, DEL), on stable storage before the call
 * returns, or, for what a delivery made of a message, with the next
 * group flush (pst_spool_lock_save()).
 *
 * Everything here blocks on the disk; the daemon calls it from the pool.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "spool/index.h"
#include "spool/record.h"
#include "spool/spool.h"
#include "spool/spool_int.h"

struct pst_spool_lock {
	struct pst_spool	*spool;
	struct idx_entry	 e;		/* as locked */
	char			 id[PST_SPOOL_ID_LEN + 1];
	struct pst_spool_env	*env;
	bool			 gone;		/* removed or quarantined, or
						   handed to a change */
};

static int
check_id(const char *id, struct pst_err *err, uint64_t *num)
{
	if (!pst_spool_id_valid(id) || pst_rec_id_parse(id, num) == -1)
		return spool_bad(err, "\"%.32s\" is not a queue id", id);
	return 0;
}

/* What a tool may do with a spool of format 1 not yet taken over. */
static int
need_format2(struct pst_spool *spool, struct pst_err *err)
{
	if (spool->format == 2)
		return 0;
	return spool_bad(err, "spool %s is of format 1: start posternd "
	    "once to take it over", spool->path);
}

/* Copies the message's envelope and body to quarantine/. */
static void
quarantine_copy(struct pst_spool_lock *lock, const char *env, size_t len)
{
	struct pst_spool *spool = lock->spool;
	char name[SPOOL_NAME_MAX], buf[65536];
	struct pst_err err;
	uint64_t off, done = 0;
	ssize_t n;
	int in, out;

	snprintf(name, sizeof(name), "%s%s", lock->id, SPOOL_ENV_SUFFIX);
	out = openat(spool->quarfd, name, O_WRONLY | O_CREAT | O_TRUNC |
	    O_NOFOLLOW | O_CLOEXEC, spool->file_mode);
	if (out != -1) {
		if (env != NULL)
			(void)spool_write_all(out, env, len);
		(void)fsync(out);
		close(out);
	}
	snprintf(name, sizeof(name), "%s%s", lock->id, SPOOL_BODY_SUFFIX);
	if ((in = spool_store_body(spool, &lock->e, &off, &err)) == -1)
		return;
	out = openat(spool->quarfd, name, O_WRONLY | O_CREAT | O_TRUNC |
	    O_NOFOLLOW | O_CLOEXEC, spool->file_mode);
	while (out != -1 && done < lock->e.body_len) {
		n = pread(in, buf, lock->e.body_len - done < sizeof(buf) ?
		    (size_t)(lock->e.body_len - done) : sizeof(buf),
		    (off_t)(off + done));
		if (n <= 0 || write(out, buf, (size_t)n) != n)
			break;
		done += (uint64_t)n;
	}
	if (out != -1) {
		(void)fsync(out);
		close(out);
	}
	close(in);
}

struct pst_spool_lock *
pst_spool_lock_msg(struct pst_spool *spool, const char *id, unsigned flags,
    struct pst_err *err)
{
	struct pst_spool_lock *lock;
	struct pst_err derr;
	uint64_t num = 0;

	if (check_id(id, err, &num) == -1 || need_format2(spool, err) == -1 ||
	    spool_store_load(spool, false, err) == -1)
		return NULL;
	if ((lock = calloc(1, sizeof(*lock))) == NULL) {
		spool_sys(err, ENOMEM, "locking message %s", id);
		return NULL;
	}
	lock->spool = spool;
	snprintf(lock->id, sizeof(lock->id), "%s", id);
	if (spool_store_lock(spool, num, (flags & PST_SPOOL_WAIT) != 0,
	    &lock->e, err) == -1) {
		if (err->sys_errno == ENOENT) {
			spool_bad(err, "no message %s in the queue", id);
			err->sys_errno = ENOENT;
		}
		free(lock);
		return NULL;
	}
	if (spool_store_read_env(spool, &lock->e, &lock->env, err) == 0)
		return lock;
	if (err->cls == PST_TEMP) {
		spool_store_unlock(spool, num);
		free(lock);
		return NULL;
	}
	/* Written whole and checked at start: this is damage. */
	derr = *err;
	if (pst_spool_lock_quarantine(lock, err) == 0) {
		*err = derr;
		err->sys_errno = EBADMSG;
	}
	pst_spool_lock_release(lock);
	return NULL;
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
	struct pst_spool_env *copy;
	char *buf;
	size_t len;

	if (lock->gone)
		return spool_bad(err, "message %s is no longer queued",
		    lock->id);
	if (strcmp(env->id, lock->id) != 0)
		return spool_bad(err, "envelope %s given for message %s",
		    env->id, lock->id);
	if (spool_store_update(lock->spool, &lock->e, env, err) == -1)
		return -1;
	if (env != lock->env) {
		if (pst_spool_env_encode(env, &buf, &len, err) == -1)
			return -1;
		copy = pst_spool_env_decode(buf, len, err);
		free(buf);
		if (copy == NULL)
			return -1;
		pst_spool_env_free(lock->env);
		lock->env = copy;
	}
	return 0;
}

int
pst_spool_lock_remove(struct pst_spool_lock *lock, struct pst_err *err)
{
	if (lock->gone)
		return 0;
	if (spool_store_remove(lock->spool, &lock->e, "removed", err) == -1)
		return -1;
	lock->gone = true;
	return 0;
}

int
pst_spool_lock_save(struct pst_spool_lock *lock,
    const struct pst_spool_env *env, pst_spool_saved_fn done, void *arg,
    struct pst_err *err)
{
	if (lock->gone)
		return spool_bad(err, "message %s is no longer queued",
		    lock->id);
	if (env != NULL && strcmp(env->id, lock->id) != 0)
		return spool_bad(err, "envelope %s given for message %s",
		    env->id, lock->id);
	if (spool_store_change_later(lock->spool, &lock->e, env, done, arg,
	    err) == -1)
		return -1;
	lock->gone = true;	/* the change unlocks */
	return 0;
}

int
pst_spool_lock_quarantine(struct pst_spool_lock *lock, struct pst_err *err)
{
	struct pst_spool *spool = lock->spool;
	char moved[SPOOL_NAME_MAX + 16];
	struct pst_err rerr;
	char *env = NULL;
	size_t len = 0;

	if (lock->gone)
		return 0;
	if (lock->e.drop && lock->e.body != IDX_BODY_EXTERNAL) {
		/* A drop is its own evidence: it moves whole. */
		if (spool_quarantine(spool, spool->incomingfd, lock->id, "",
		    moved, sizeof(moved)) == -1)
			return spool_sys(err, errno, "moving incoming/%s to "
			    "quarantine/", lock->id);
	} else {
		/* The bytes as they are, damage and all. */
		if (spool_store_env_bytes(spool, &lock->e, &env, &rerr) == 0)
			len = lock->e.env_len;
		quarantine_copy(lock, env, len);
		free(env);
	}
	if (spool_fsync_dir(lock->spool->quarfd, "quarantine", err) == -1 ||
	    spool_store_remove(lock->spool, &lock->e, "quarantined",
	    err) == -1)
		return -1;
	lock->gone = true;
	return 0;
}

void
pst_spool_lock_release(struct pst_spool_lock *lock)
{
	if (lock == NULL)
		return;
	if (!lock->gone)
		spool_store_unlock(lock->spool, lock->e.id);
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
	struct idx_entry *e, copy;
	uint64_t num = 0;

	if (check_id(id, err, &num) == -1 || need_format2(spool, err) == -1 ||
	    spool_store_load(spool, false, err) == -1 ||
	    spool_store_pickup(spool, num, err) == -1)
		return NULL;
	pthread_mutex_lock(&spool->mtx);
	if ((e = spool_idx_get(spool->idx, num)) != NULL)
		copy = *e;
	pthread_mutex_unlock(&spool->mtx);
	if (e == NULL) {
		spool_bad(err, "no message %s in the queue", id);
		err->sys_errno = ENOENT;
		return NULL;
	}
	if (spool_store_read_env(spool, &copy, &env, err) == -1)
		return NULL;
	return env;
}

int
pst_spool_body_open(struct pst_spool *spool, const struct pst_spool_env *env,
    uint64_t *offset, struct pst_err *err)
{
	struct idx_entry *e, copy;
	uint64_t num = 0;

	if (check_id(env->id, err, &num) == -1)
		return -1;
	pthread_mutex_lock(&spool->mtx);
	if ((e = spool_idx_get(spool->idx, num)) != NULL)
		copy = *e;
	pthread_mutex_unlock(&spool->mtx);
	if (e == NULL) {
		spool_bad(err, "no message %s in the queue", env->id);
		err->sys_errno = ENOENT;
		return -1;
	}
	if (copy.body_len != env->size) {
		spool_bad(err, "body of %s is damaged: %" PRIu64 " bytes, the "
		    "envelope says %" PRIu64, env->id, copy.body_len,
		    env->size);
		return -1;
	}
	return spool_store_body(spool, &copy, offset, err);
}

int
pst_spool_scan(struct pst_spool *spool, pst_spool_scan_fn fn, void *arg,
    struct pst_err *err)
{
	if (need_format2(spool, err) == -1)
		return -1;
	return spool_store_scan(spool, fn, arg, err);
}

int
pst_spool_scan_brief(struct pst_spool *spool, pst_spool_brief_fn fn,
    void *arg, struct pst_err *err)
{
	if (need_format2(spool, err) == -1)
		return -1;
	return spool_store_scan_brief(spool, fn, arg, err);
}
