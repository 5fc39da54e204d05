/*
 * spool.c: free space, and the helpers every file of lib/spool shares
 * (errors, atomic renames, tmp files, envelope reads, quarantine moves).
 * Opening the spool is open.c's.
 *
 * Every file below the spool directory is opened with O_NOFOLLOW (and
 * O_NONBLOCK, so a FIFO planted in the queue cannot hang a reader),
 * relative to the directory descriptors open.c holds.  Renames into the
 * queue refuse to replace: renameat2() RENAME_NOREPLACE, or
 * link()+unlink() where the file system lacks it.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/random.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/codec.h"
#include "common/err.h"
#include "spool/spool.h"
#include "spool/spool_int.h"

#define READ_STACK	16384	/* most envelopes fit on the stack */
/*
 * The reserve never takes more than this share of the file system, so a
 * small volume (a container's, a tmpfs) still takes mail.
 */
#define RESERVE_SHARE	8

static int	 errno_class(int);

/*
 * Shared helpers.
 */

static int
errno_class(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
	case EIO:
	case EROFS:
	case ENOMEM:
	case EMFILE:
	case ENFILE:
	case EAGAIN:
	case EINTR:
	case ETIMEDOUT:
	case ESTALE:
		return PST_TEMP;
	default:
		return PST_LOCAL;
	}
}

int
spool_sys(struct pst_err *err, int errnum, const char *fmt, ...)
{
	char text[PST_ERR_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return pst_err_sys(err, errno_class(errnum), PST_STAGE_SPOOL, errnum,
	    "%s", text);
}

/*
 * A committed file we may not read has the wrong owner or mode, which the
 * operator can fix: that may pass, like EIO, and is never taken for
 * damage (which would quarantine good mail).
 */
int
spool_sys_read(struct pst_err *err, int errnum, const char *fmt, ...)
{
	char text[PST_ERR_TEXT_MAX];
	va_list ap;
	int cls = errno_class(errnum);

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (errnum == EACCES || errnum == EPERM)
		cls = PST_TEMP;
	return pst_err_sys(err, cls, PST_STAGE_SPOOL, errnum, "%s", text);
}

int
spool_bad(struct pst_err *err, const char *fmt, ...)
{
	char text[PST_ERR_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return pst_err_set(err, PST_LOCAL, PST_STAGE_SPOOL, "%s", text);
}

void
spool_report(struct pst_spool *spool, enum pst_spool_action action,
    const char *path, const char *moved_to, const char *fmt, ...)
{
	struct pst_spool_problem p;
	char reason[PST_ERR_TEXT_MAX];
	va_list ap;

	if (spool->problem == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	p.action = action;
	p.path = path;
	p.moved_to = moved_to;
	p.reason = reason;
	spool->problem(&p, spool->problem_arg);
}

bool
pst_spool_id_valid(const char *s)
{
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; i < PST_SPOOL_ID_LEN; i++)
		if (pst_hex_value((unsigned char)s[i], PST_HEX_LOWER) == -1)
			return false;
	return s[i] == '\0';
}

/* The bucket is the id's last digit: its random low bits. */
int
spool_bucket(const char *id)
{
	return pst_hex_value((unsigned char)id[PST_SPOOL_ID_LEN - 1],
	    PST_HEX_LOWER);
}

uint32_t
spool_random32(void)
{
	struct timespec ts;
	uint32_t r;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) == sizeof(r))
		return r;
	/*
	 * Early boot, no entropy yet: ids stay unique through O_EXCL and
	 * no-replace renames; the random part only spreads them.
	 */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint32_t)ts.tv_nsec ^ (uint32_t)getpid() << 16 ^
	    (uint32_t)ts.tv_sec;
}

int
spool_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
spool_rename_excl(int fromfd, const char *from, int tofd, const char *to)
{
	if (renameat2(fromfd, from, tofd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	/* No RENAME_NOREPLACE here (NFS, old kernels): link is no-replace. */
	if (linkat(fromfd, from, tofd, to, 0) == -1)
		return -1;
	if (unlinkat(fromfd, from, 0) == -1) {
		(void)unlinkat(tofd, to, 0);
		return -1;
	}
	return 0;
}

/*
 * A new file in tmp/ with the spool's mode, held under flock() so that a
 * recovery running meanwhile (the daemon starting while sendmail writes)
 * leaves it alone.
 */
int
spool_create_tmp(struct pst_spool *spool, const char *name)
{
	int fd, saved;

	fd = openat(spool->tmpfd, name, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, spool->file_mode);
	if (fd == -1)
		return -1;
	if (fchmod(fd, spool->file_mode) == -1 ||
	    flock(fd, LOCK_EX | LOCK_NB) == -1) {
		saved = errno;
		close(fd);
		(void)unlinkat(spool->tmpfd, name, 0);
		errno = saved;
		return -1;
	}
	return fd;
}

int
spool_fsync_dir(int fd, const char *what, struct pst_err *err)
{
	if (fsync(fd) == -1)
		return spool_sys(err, errno, "fsync of %s", what);
	return 0;
}

/*
 * Reads and decodes envelope 'name' in directory 'dirfd'; its id must be
 * 'id'.  sys_errno is ENOENT when the file is not there.
 */
int
spool_read_env(int dirfd, const char *name, const char *id,
    struct pst_spool_env **out, struct pst_err *err)
{
	char stackbuf[READ_STACK], *buf = stackbuf, *big;
	size_t len = 0, cap = sizeof(stackbuf), newcap;
	ssize_t n;
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);
	if (fd == -1)
		return spool_sys_read(err, errno, "opening envelope %s",
		    name);
	for (;;) {
		if (len == cap) {
			if (len > PST_SPOOL_ENV_MAX) {
				close(fd);
				if (buf != stackbuf)
					free(buf);
				return spool_bad(err, "envelope %s is larger "
				    "than %u bytes", name, PST_SPOOL_ENV_MAX);
			}
			/* One byte past the limit is enough to refuse. */
			newcap = cap * 4 > (size_t)PST_SPOOL_ENV_MAX + 1 ?
			    (size_t)PST_SPOOL_ENV_MAX + 1 : cap * 4;
			big = realloc(buf == stackbuf ? NULL : buf, newcap);
			if (big == NULL) {
				close(fd);
				if (buf != stackbuf)
					free(buf);
				return spool_sys(err, ENOMEM, "reading %s",
				    name);
			}
			if (buf == stackbuf)
				memcpy(big, stackbuf, len);
			buf = big;
			cap = newcap;
		}
		n = read(fd, buf + len, cap - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (n == -1) {
		spool_sys_read(err, errno, "reading envelope %s", name);
		close(fd);
		if (buf != stackbuf)
			free(buf);
		return -1;
	}
	close(fd);
	*out = pst_spool_env_decode(buf, len, err);
	if (buf != stackbuf)
		free(buf);
	if (*out == NULL)
		return -1;
	if (strcmp((*out)->id, id) != 0) {
		spool_bad(err, "envelope %s holds id %s", name, (*out)->id);
		pst_spool_env_free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

/*
 * Moves 'name' from 'dirfd' into quarantine/ under the same name, or
 * NAME.1 ... NAME.99 when taken.  The name used goes to 'moved'.
 */
int
spool_quarantine(struct pst_spool *spool, int dirfd, const char *name,
    const char *suffix, char *moved, size_t movedlen)
{
	int i;

	for (i = 0; i < 100; i++) {
		if (i == 0)
			snprintf(moved, movedlen, "%s%s", name, suffix);
		else
			snprintf(moved, movedlen, "%s%s.%d", name, suffix, i);
		if (spool_rename_excl(dirfd, name, spool->quarfd, moved) == 0)
			return 0;
		if (errno != EEXIST)
			return -1;
	}
	errno = EEXIST;
	return -1;
}

/*
 * Opening.
 */

const char *
pst_spool_path(const struct pst_spool *spool)
{
	return spool->path;
}

int
pst_spool_space(struct pst_spool *spool, uint64_t need, uint64_t reserve,
    uint64_t reserve_inodes, struct pst_err *err)
{
	struct statvfs sv;
	uint64_t total, avail, want;

	if (fstatvfs(spool->dirfd, &sv) == -1)
		return spool_sys(err, errno, "statvfs %s", spool->path);
	total = (uint64_t)sv.f_blocks * sv.f_frsize;
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	if (reserve == PST_SPOOL_RESERVE_AUTO) {
		reserve = total / 100;
		if (reserve < (64u << 20))
			reserve = 64u << 20;
		if (reserve > (1u << 30))
			reserve = 1u << 30;
	}
	if (reserve > total / RESERVE_SHARE)
		reserve = total / RESERVE_SHARE;
	want = need > UINT64_MAX - reserve ? UINT64_MAX : need + reserve;
	if (avail < want) {
		pst_err_set(err, PST_TEMP, PST_STAGE_SPOOL, "spool %s has "
		    "%" PRIu64 " KiB free, %" PRIu64 " KiB wanted (message "
		    "%" PRIu64 " + reserve %" PRIu64 ")", spool->path,
		    avail >> 10, want >> 10, need >> 10, reserve >> 10);
		err->sys_errno = ENOSPC;
		return 0;
	}
	/* File systems without an inode count (btrfs) report 0 files. */
	if (sv.f_files == 0)
		return 1;
	if (reserve_inodes == PST_SPOOL_RESERVE_AUTO) {
		reserve_inodes = (uint64_t)sv.f_files / 100;
		if (reserve_inodes < 1000)
			reserve_inodes = 1000;
	}
	if (reserve_inodes > (uint64_t)sv.f_files / RESERVE_SHARE)
		reserve_inodes = (uint64_t)sv.f_files / RESERVE_SHARE;
	/* A message takes two inodes. */
	want = reserve_inodes > UINT64_MAX - 2 ? UINT64_MAX :
	    reserve_inodes + 2;
	if ((uint64_t)sv.f_favail < want) {
		pst_err_set(err, PST_TEMP, PST_STAGE_SPOOL, "spool %s has "
		    "%" PRIu64 " inodes free, %" PRIu64 " wanted", spool->path,
		    (uint64_t)sv.f_favail, want);
		err->sys_errno = ENOSPC;
		return 0;
	}
	return 1;
}
