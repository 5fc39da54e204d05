/*
 * spool_test.h: helpers the spool tests share (scratch directories, file
 * counting, a problem collector, quick commits).
 */
#ifndef POSTERN_SPOOL_TEST_H
#define POSTERN_SPOOL_TEST_H

#include <stddef.h>

#include "spool/spool.h"

#define ST_PROBLEMS_MAX	64

struct st_problems {
	size_t			 n;
	enum pst_spool_action	 action[ST_PROBLEMS_MAX];
	char			 path[ST_PROBLEMS_MAX][128];
	char			 moved[ST_PROBLEMS_MAX][128];
	char			 reason[ST_PROBLEMS_MAX][256];
};

/* A fresh directory under /tmp, removed by st_rmrf(). */
char	*st_mkdtemp(void);
void	 st_rmrf(const char *path);

/* Entries in 'dir' (relative paths are taken under 'root'). */
int	 st_count(const char *root, const char *dir);
int	 st_exists(const char *root, const char *rel);
mode_t	 st_mode(const char *root, const char *rel);

/* Whole-file helpers. */
void	 st_write(const char *root, const char *rel, const char *data,
	    size_t len);
char	*st_read(const char *root, const char *rel, size_t *len);

/* Problem hook that records into a struct st_problems. */
void	 st_collect(const struct pst_spool_problem *p, void *arg);
/* Index of the problem about 'path', or -1. */
int	 st_find(const struct st_problems *pr, const char *path);

struct pst_spool *st_open(const char *dir, unsigned flags,
	    struct st_problems *pr);

/* A message committed synchronously; returns its id (static storage). */
const char *st_commit(struct pst_spool *spool, const char *body,
	    const char *rcpt);

/*
 * A message written straight into the queue of spool format 1, as that
 * format says: for the takeover.  Returns its id (static storage).
 */
const char *st_plant(struct pst_spool *spool, const char *dir,
	    const char *body);

/* A drop, "incoming/ID", and a body kept apart, "bodies/ID". */
const char *st_env_path(const char *id);
const char *st_body_path(const char *id);

/* Format 1: "queue/X/ID.env", "queue/X/ID.body", and its layout. */
const char *st_v1_env_path(const char *id);
const char *st_v1_body_path(const char *id);
void	 st_make_v1(const char *root);

/* A record with a correct end line for 'text' (malloc'd). */
char	*st_seal(const char *text, size_t *len);

#endif /* POSTERN_SPOOL_TEST_H */
