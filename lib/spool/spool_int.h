/*
 * spool_int.h: what the files of lib/spool share and nobody else sees.
 *
 * The spool object is a set of directory descriptors opened once, without
 * following symlinks below the spool directory; every later file
 * operation is relative to one of them (openat, renameat2, unlinkat), so
 * a path is never resolved twice and a symlink planted in the tree is
 * never followed.
 */
#ifndef PST_SPOOL_INT_H
#define PST_SPOOL_INT_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spool/spool.h"

struct pst_err;

#define SPOOL_ENV_SUFFIX	".env"
#define SPOOL_BODY_SUFFIX	".body"
/* "0123456789abcdef.body" plus room for a tmp suffix, NUL included. */
#define SPOOL_NAME_MAX		64
/* "queue/f/0123456789abcdef.body" and the like. */
#define SPOOL_REL_MAX		(SPOOL_NAME_MAX + 32)

struct pst_spool {
	char			*path;
	int			 dirfd;
	int			 tmpfd;
	int			 queuefd;
	int			 quarfd;
	int			 bucketfd[PST_SPOOL_BUCKETS];
	int			 lockfd;	/* daemon lock, or -1 */
	mode_t			 file_mode;
	mode_t			 dir_mode;
	uid_t			 owner;		/* of the spool directory */
	gid_t			 group;
	pst_spool_problem_fn	 problem;
	void			*problem_arg;
	uint64_t		 last_id;	/* pst_spool_msg_begin() only */
};

/* Errors: class from errno (disk trouble is temporary), stage spool. */
int	 spool_sys(struct pst_err *, int, const char *, ...)
	    __attribute__((format(printf, 3, 4)));
int	 spool_bad(struct pst_err *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* Reading committed files: a permission error is temporary, not damage. */
int	 spool_sys_read(struct pst_err *, int, const char *, ...)
	    __attribute__((format(printf, 3, 4)));

/* Problems found by recovery and scans go to the caller's hook. */
void	 spool_report(struct pst_spool *, enum pst_spool_action,
	    const char *, const char *, const char *, ...)
	    __attribute__((format(printf, 5, 6)));

int	 spool_bucket(const char *);
uint32_t spool_random32(void);
int	 spool_write_all(int, const void *, size_t);
int	 spool_rename_excl(int, const char *, int, const char *);
int	 spool_create_tmp(struct pst_spool *, const char *);
int	 spool_fsync_dir(int, const char *, struct pst_err *);
int	 spool_read_env(int, const char *, const char *,
	    struct pst_spool_env **, struct pst_err *);
int	 spool_quarantine(struct pst_spool *, int, const char *,
	    const char *, char *, size_t);

/* recover.c */
int	 spool_recover(struct pst_spool *, struct pst_err *);

#endif /* PST_SPOOL_INT_H */
