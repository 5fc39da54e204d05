/*
 * open.c: opening and closing the spool: its directories (created on
 * request, each checked), the format file, the daemon lock, and recovery
 * when the daemon opens it (recover.c).
 *
 * Everything below the spool directory is reached through directory
 * descriptors opened here with O_NOFOLLOW.
 *
 * The daemon lock is flock() on SPOOL/lock, which the kernel drops when
 * the process dies, so a stale lock file never blocks a restart.  The pid
 * written into it is only there to name the holder in the error message.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/codec.h"
#include "common/err.h"
#include "common/pool.h"
#include "spool/log.h"
#include "spool/spool.h"
#include "spool/spool_int.h"

#define FORMAT_FILE	"format"
#define LOCK_FILE	"lock"
#define LOCK_TRIES	5	/* a checker's brief shared lock */

static int	 read_format(struct pst_spool *, bool, struct pst_err *);
static int	 take_over(struct pst_spool *, struct pst_err *);

/*
 * What the spool lacks: ENOENT, so that a tool can tell "not set up"
 * from any other trouble.
 */
static int
spool_missing(struct pst_spool *spool, const char *rel, struct pst_err *err)
{
	if (rel == NULL)
		pst_err_set(err, PST_LOCAL, PST_STAGE_SPOOL, "%s is missing",
		    spool->path);
	else
		pst_err_set(err, PST_LOCAL, PST_STAGE_SPOOL, "%s/%s is "
		    "missing: the spool is not initialised", spool->path, rel);
	err->sys_errno = ENOENT;
	return -1;
}

/*
 * The layout belongs to the spool directory's owner and group, also when
 * root creates it (an operator's command, a daemon started as root).
 */
static int
spool_give(struct pst_spool *spool, int fd)
{
	struct stat st;

	if (geteuid() != 0)
		return 0;	/* an owner creates for itself */
	if (fstat(fd, &st) == -1)
		return -1;
	if (st.st_uid == spool->owner && st.st_gid == spool->group)
		return 0;
	return fchown(fd, spool->owner, spool->group);
}

static int
open_subdir(struct pst_spool *spool, int parent, const char *name,
    const char *rel, bool create, int *out, struct pst_err *err)
{
	struct stat st;
	bool made = false;
	int fd;

again:
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1 && errno == ENOENT && create && !made) {
		if (mkdirat(parent, name, spool->dir_mode) == -1 &&
		    errno != EEXIST)
			return spool_sys(err, errno, "creating %s/%s",
			    spool->path, rel);
		made = true;
		goto again;
	}
	if (fd == -1 && (errno == ELOOP || errno == ENOTDIR))
		return spool_bad(err, "%s/%s is not a directory (symlinks "
		    "are not followed below the spool directory)",
		    spool->path, rel);
	if (fd == -1 && errno == ENOENT)
		return spool_missing(spool, rel, err);
	if (fd == -1)
		return spool_sys(err, errno, "opening %s/%s", spool->path,
		    rel);
	if (made && (fchmod(fd, spool->dir_mode) == -1 ||
	    spool_give(spool, fd) == -1 || fsync(parent) == -1)) {
		spool_sys(err, errno, "creating %s/%s", spool->path, rel);
		close(fd);
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		spool_sys(err, errno, "%s/%s", spool->path, rel);
		close(fd);
		return -1;
	}
	if (st.st_mode & S_IWOTH) {
		spool_bad(err, "%s/%s is writable by anyone; refusing it",
		    spool->path, rel);
		close(fd);
		return -1;
	}
	*out = fd;
	return 0;
}

/*
 * Writes SPOOL/format for format 'version', whole, then renamed into
 * place (over an older one) and made durable.
 */
static int
write_format(struct pst_spool *spool, int version, struct pst_err *err)
{
	char text[32], tmpname[SPOOL_NAME_MAX];
	int fd = -1, i;

	snprintf(text, sizeof(text), "postern-spool %d\n", version);
	for (i = 0; i < 10; i++) {
		snprintf(tmpname, sizeof(tmpname), "format.%08" PRIx32,
		    spool_random32());
		if ((fd = spool_create_tmp(spool, tmpname)) != -1 ||
		    errno != EEXIST)
			break;
	}
	if (fd == -1)
		return spool_sys(err, errno, "creating %s/%s", spool->path,
		    FORMAT_FILE);
	if (fchmod(fd, 0644) == -1 || spool_give(spool, fd) == -1 ||
	    spool_write_all(fd, text, strlen(text)) == -1 ||
	    fsync(fd) == -1 || renameat(spool->tmpfd, tmpname, spool->dirfd,
	    FORMAT_FILE) == -1) {
		spool_sys(err, errno, "writing %s/%s", spool->path,
		    FORMAT_FILE);
		close(fd);
		(void)unlinkat(spool->tmpfd, tmpname, 0);
		return -1;
	}
	close(fd);
	return spool_fsync_dir(spool->dirfd, spool->path, err);
}

/*
 * Reads SPOOL/format into spool->format: 2, or 1 for a spool to be taken
 * over.  A missing file is written (format 2) when creating.
 */
static int
read_format(struct pst_spool *spool, bool create, struct pst_err *err)
{
	char got[33];
	ssize_t n;
	int fd;

	fd = openat(spool->dirfd, FORMAT_FILE, O_RDONLY | O_NOFOLLOW |
	    O_NONBLOCK | O_CLOEXEC);
	if (fd == -1 && errno == ENOENT && create) {
		if (write_format(spool, PST_SPOOL_FORMAT, err) == -1)
			return -1;
		return read_format(spool, false, err);
	}
	if (fd == -1 && errno == ENOENT)
		return spool_missing(spool, FORMAT_FILE, err);
	if (fd == -1)
		return spool_sys(err, errno, "opening %s/%s", spool->path,
		    FORMAT_FILE);
	n = read(fd, got, sizeof(got) - 1);
	close(fd);
	if (n == -1)
		return spool_sys(err, errno, "reading %s/%s", spool->path,
		    FORMAT_FILE);
	got[n] = '\0';
	if (strcmp(got, "postern-spool 2\n") == 0)
		spool->format = 2;
	else if (strcmp(got, "postern-spool 1\n") == 0)
		spool->format = 1;
	else
		return spool_bad(err, "%s/%s says \"%.*s\"; this postern "
		    "reads spool formats 1 and 2", spool->path, FORMAT_FILE,
		    (int)strcspn(got, "\n"), got);
	return 0;
}

/*
 * Format 1 into format 2 (takeover.c), then the format file that says
 * so, then format 1's directories go.
 */
static int
take_over(struct pst_spool *spool, struct pst_err *err)
{
	if (spool_takeover(spool, err) == -1 ||
	    write_format(spool, 2, err) == -1)
		return -1;
	spool->format = 2;
	spool_takeover_done(spool);
	return 0;
}

/* The directories of format 1, for its takeover. */
static int
open_v1(struct pst_spool *spool, struct pst_err *err)
{
	char rel[16];
	int i;

	if (open_subdir(spool, spool->dirfd, "queue", "queue", false,
	    &spool->queuefd, err) == -1)
		return -1;
	for (i = 0; i < PST_SPOOL_BUCKETS; i++) {
		char name[2] = { pst_hex_digit((unsigned)i, false), '\0' };

		snprintf(rel, sizeof(rel), "queue/%s", name);
		if (open_subdir(spool, spool->queuefd, name, rel, false,
		    &spool->bucketfd[i], err) == -1)
			return -1;
	}
	return 0;
}

static pid_t
read_pid(int fd)
{
	char buf[32];
	ssize_t n;
	long pid;
	char *end;

	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	errno = 0;
	pid = strtol(buf, &end, 10);
	if (errno != 0 || end == buf || (*end != '\n' && *end != '\0') ||
	    pid <= 0 || pid > INT32_MAX)
		return 0;
	return (pid_t)pid;
}

static int
take_daemon_lock(struct pst_spool *spool, struct pst_err *err)
{
	char line[32];
	struct timespec pause = { 0, 20 * 1000 * 1000 };
	pid_t holder;
	int fd, i, n;

	fd = openat(spool->dirfd, LOCK_FILE, O_RDWR | O_CREAT | O_NOFOLLOW |
	    O_CLOEXEC, 0644);
	if (fd == -1)
		return spool_sys(err, errno, "opening %s/%s", spool->path,
		    LOCK_FILE);
	for (i = 0; i < LOCK_TRIES; i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			break;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			spool_sys(err, errno, "locking %s/%s", spool->path,
			    LOCK_FILE);
			close(fd);
			return -1;
		}
		nanosleep(&pause, NULL);
	}
	if (i == LOCK_TRIES) {
		if ((holder = read_pid(fd)) > 0)
			pst_err_set(err, PST_LOCAL, PST_STAGE_SPOOL, "spool %s "
			    "is in use by another posternd (pid %ld)",
			    spool->path, (long)holder);
		else
			pst_err_set(err, PST_LOCAL, PST_STAGE_SPOOL, "spool %s "
			    "is in use by another posternd", spool->path);
		err->sys_errno = EWOULDBLOCK;
		close(fd);
		return -1;
	}
	n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == -1 ||
	    pwrite(fd, line, (size_t)n, 0) != n) {
		spool_sys(err, errno, "writing %s/%s", spool->path, LOCK_FILE);
		close(fd);
		return -1;
	}
	spool->lockfd = fd;
	return 0;
}

struct pst_spool *
pst_spool_open(const char *dir, const struct pst_spool_opts *opts,
    struct pst_err *err)
{
	static const struct pst_spool_opts defaults;
	struct pst_spool *spool;
	struct stat st;
	unsigned flags;
	bool create;
	int i;

	pst_err_clear(err);
	if (opts == NULL)
		opts = &defaults;
	flags = opts->flags;
	if (flags & PST_SPOOL_RECOVER)
		flags |= PST_SPOOL_DAEMON;
	create = (flags & PST_SPOOL_CREATE) != 0;
	if (opts->file_mode != 0 && opts->file_mode != 0600 &&
	    opts->file_mode != 0640) {
		spool_bad(err, "spool file mode %04o: use 0600 or 0640",
		    (unsigned)opts->file_mode);
		return NULL;
	}
	if (opts->dir_mode != 0 && ((opts->dir_mode & ~(mode_t)02770) != 0 ||
	    (opts->dir_mode & 0700) != 0700)) {
		spool_bad(err, "spool directory mode %04o: use 0700, 0750 or "
		    "0770, with or without 02000", (unsigned)opts->dir_mode);
		return NULL;
	}
	if ((spool = calloc(1, sizeof(*spool))) == NULL ||
	    (spool->path = strdup(dir)) == NULL) {
		free(spool);
		spool_sys(err, ENOMEM, "opening spool %s", dir);
		return NULL;
	}
	spool->dirfd = spool->tmpfd = spool->queuefd = spool->quarfd = -1;
	spool->lockfd = spool->logfd = spool->bodiesfd = spool->incomingfd = -1;
	pthread_mutex_init(&spool->mtx, NULL);
	for (i = 0; i < PST_SPOOL_BUCKETS; i++)
		spool->bucketfd[i] = -1;
	spool->file_mode = opts->file_mode != 0 ? opts->file_mode : 0600;
	spool->segment_bytes = opts->segment_bytes;
	spool->dir_mode = opts->dir_mode != 0 ? opts->dir_mode : 0700;
	spool->problem = opts->problem;
	spool->problem_arg = opts->problem_arg;
	if (spool_store_init(spool, err) == -1)
		goto fail;

	if (create && mkdir(dir, spool->dir_mode) == -1 && errno != EEXIST) {
		spool_sys(err, errno, "creating spool %s", dir);
		goto fail;
	}
	/* The spool directory itself may be a symlink; nothing below. */
	if ((spool->dirfd = open(dir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			spool_missing(spool, NULL, err);
		else
			spool_sys(err, errno, "opening spool %s", dir);
		goto fail;
	}
	if (fstat(spool->dirfd, &st) == -1) {
		spool_sys(err, errno, "opening spool %s", dir);
		goto fail;
	}
	spool->owner = st.st_uid;
	spool->group = st.st_gid;
	if (open_subdir(spool, spool->dirfd, "tmp", "tmp", create,
	    &spool->tmpfd, err) == -1 ||
	    open_subdir(spool, spool->dirfd, "quarantine", "quarantine",
	    create, &spool->quarfd, err) == -1 ||
	    read_format(spool, create, err) == -1)
		goto fail;
	/* A format 1 spool gets the new directories before its takeover. */
	if (open_subdir(spool, spool->dirfd, "log", "log", create,
	    &spool->logfd, err) == -1 ||
	    open_subdir(spool, spool->dirfd, "bodies", "bodies", create,
	    &spool->bodiesfd, err) == -1 ||
	    open_subdir(spool, spool->dirfd, "incoming", "incoming", create,
	    &spool->incomingfd, err) == -1)
		goto fail;
	if (spool->format == 1 && (flags & PST_SPOOL_RECOVER) &&
	    open_v1(spool, err) == -1)
		goto fail;
	if ((flags & PST_SPOOL_DAEMON) && take_daemon_lock(spool, err) == -1)
		goto fail;
	if ((flags & PST_SPOOL_RECOVER) && (spool_recover_tmp(spool,
	    err) == -1 || spool_store_load(spool, true, err) == -1 ||
	    (spool->format == 1 && take_over(spool, err) == -1) ||
	    spool_store_reclaim(spool, err) == -1))
		goto fail;
	return spool;
fail:
	pst_spool_close(spool);
	return NULL;
}

void
pst_spool_close(struct pst_spool *spool)
{
	int i;

	if (spool == NULL)
		return;
	pst_pool_free(spool->writer);
	spool_store_free(spool);
	pthread_mutex_destroy(&spool->mtx);
	if (spool->logfd != -1)
		close(spool->logfd);
	if (spool->bodiesfd != -1)
		close(spool->bodiesfd);
	if (spool->incomingfd != -1)
		close(spool->incomingfd);
	for (i = 0; i < PST_SPOOL_BUCKETS; i++)
		if (spool->bucketfd[i] != -1)
			close(spool->bucketfd[i]);
	if (spool->lockfd != -1)
		close(spool->lockfd);
	if (spool->quarfd != -1)
		close(spool->quarfd);
	if (spool->queuefd != -1)
		close(spool->queuefd);
	if (spool->tmpfd != -1)
		close(spool->tmpfd);
	if (spool->dirfd != -1)
		close(spool->dirfd);
	free(spool->path);
	free(spool);
}

int
pst_spool_start(struct pst_spool *spool, struct event_base *base,
    struct pst_err *err)
{
	if (spool->lockfd == -1)
		return spool_bad(err, "spool %s: only the daemon starts a "
		    "writer", spool->path);
	if (spool->writer != NULL)
		return 0;
	if (spool_store_load(spool, false, err) == -1)
		return -1;
	/* The takeover's log wrote on this thread: start anew after it. */
	if (spool->log != NULL) {
		pst_log_free(spool->log);
		spool->log = NULL;
		if (spool->write_seq >= spool->next_seq)
			spool->next_seq = spool->write_seq + 1;
	}
	if ((spool->writer = pst_pool_new(base, 1, err)) == NULL)
		return -1;
	return 0;
}

void
pst_spool_stop(struct pst_spool *spool)
{
	if (spool->log != NULL)
		pst_log_hurry(spool->log);
	pst_pool_free(spool->writer);
	spool->writer = NULL;
	/* Anything written later goes through a log of its own. */
	pst_log_free(spool->log);
	spool->log = NULL;
	if (spool->write_seq >= spool->next_seq)
		spool->next_seq = spool->write_seq + 1;
}

int
pst_spool_maintain(struct pst_spool *spool, struct pst_err *err)
{
	if (spool_store_compact(spool, err) == -1)
		return -1;
	return spool_store_reclaim(spool, err);
}

int
pst_spool_daemon(struct pst_spool *spool, pid_t *pid, struct pst_err *err)
{
	int fd, rc = 0;

	*pid = 0;
	if (spool->lockfd != -1)
		return 0;
	fd = openat(spool->dirfd, LOCK_FILE, O_RDONLY | O_NOFOLLOW |
	    O_NONBLOCK | O_CLOEXEC);
	if (fd == -1 && errno == ENOENT)
		return 0;
	if (fd == -1)
		return spool_sys(err, errno, "opening %s/%s", spool->path,
		    LOCK_FILE);
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		(void)flock(fd, LOCK_UN);
	} else if (errno == EWOULDBLOCK) {
		*pid = read_pid(fd);
		rc = 1;
	} else {
		rc = spool_sys(err, errno, "locking %s/%s", spool->path,
		    LOCK_FILE);
	}
	close(fd);
	return rc;
}
