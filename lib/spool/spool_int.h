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

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spool/spool.h"

struct evbuffer;
struct idx_entry;
struct pst_err;
struct spool_idx;

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
	int			 format;	/* 1 until taken over */
	/* Format 2 (store.c): -1 and empty where the layout lacks them. */
	int			 logfd;
	int			 bodiesfd;
	int			 incomingfd;
	pthread_mutex_t		 mtx;		/* the index */
	struct spool_idx	*idx;		/* index.h */
	bool			 loaded;	/* the index is built */
	uint64_t		 next_seq;	/* above every segment seen */
	uint64_t		 segment_bytes;	/* 0: from the volume */
	uint64_t		 write_seq;	/* the log's current segment */
	struct pst_log		*log;		/* NULL until written to */
	struct pst_pool		*writer;	/* the log's thread (daemon) */
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
int	 spool_recover_tmp(struct pst_spool *, struct pst_err *);
int	 spool_v1_recover(struct pst_spool *, struct pst_err *);
int	 spool_v1_scan(struct pst_spool *, pst_spool_scan_fn, void *,
	    struct pst_err *);

/* takeover.c */
int	 spool_takeover(struct pst_spool *, struct pst_err *);
void	 spool_takeover_done(struct pst_spool *);

/* store.c: spool format 2 */
struct pst_log_rec;
struct pst_seg_entry;

int	 spool_store_init(struct pst_spool *, struct pst_err *);
int	 spool_store_load(struct pst_spool *, bool, struct pst_err *);
void	 spool_store_free(struct pst_spool *);
int	 spool_store_append(struct pst_spool *, struct pst_log_rec *, size_t,
	    struct pst_err *);
int	 spool_store_append_async(struct pst_spool *, struct pst_log_rec *,
	    size_t, void (*)(struct pst_log_rec *, size_t,
	    const struct pst_err *, void *), void *, struct pst_err *);
void	 spool_store_applied(struct pst_spool *, const struct pst_log_rec *,
	    size_t);
int	 spool_store_drop(struct pst_spool *, const char *, const char *,
	    size_t, struct evbuffer *, int, uint64_t, struct pst_err *);
int	 spool_store_pickup(struct pst_spool *, uint64_t, struct pst_err *);
int	 spool_store_lock(struct pst_spool *, uint64_t, bool,
	    struct idx_entry *, struct pst_err *);
void	 spool_store_unlock(struct pst_spool *, uint64_t);
int	 spool_store_env_bytes(struct pst_spool *, const struct idx_entry *,
	    char **, struct pst_err *);
int	 spool_store_read_env(struct pst_spool *, const struct idx_entry *,
	    struct pst_spool_env **, struct pst_err *);
int	 spool_store_body(struct pst_spool *, const struct idx_entry *,
	    uint64_t *, struct pst_err *);
int	 spool_store_remove(struct pst_spool *, const struct idx_entry *,
	    const char *, struct pst_err *);
int	 spool_store_update(struct pst_spool *, const struct idx_entry *,
	    const struct pst_spool_env *, struct pst_err *);
int	 spool_store_change_later(struct pst_spool *,
	    const struct idx_entry *, const struct pst_spool_env *,
	    pst_spool_saved_fn, void *, struct pst_err *);
int	 spool_store_scan(struct pst_spool *, pst_spool_scan_fn, void *,
	    struct pst_err *);
int	 spool_store_scan_brief(struct pst_spool *, pst_spool_brief_fn,
	    void *, struct pst_err *);
int	 spool_store_reclaim(struct pst_spool *, struct pst_err *);
int	 spool_store_compact(struct pst_spool *, struct pst_err *);

#endif /* PST_SPOOL_INT_H */
