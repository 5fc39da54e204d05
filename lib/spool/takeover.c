/*
 * takeover.c: a spool of format 1 becomes one of format 2, at the
 * daemon's start (doc/spool.md, "Taking over a format 1 spool").
 *
 * Format 1's own recovery runs first, so only whole messages remain.
 * Then, a batch at a time: each body gets a second name, bodies/ID
 * (link(), so that both layouts stay whole until the log has the
 * message), bodies/ is flushed, one EXTERNAL MSG record a message is
 * appended and flushed, and only then are the old names removed.  A
 * crash anywhere leaves either the old message (its new name an orphan,
 * removed at the next start) or the new one (its old names removed by
 * the next run): never neither, never both in the queue.  The caller
 * then writes the format file (2), and spool_takeover_done() removes the
 * empty directories of format 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/codec.h"
#include "common/err.h"
#include "spool/log.h"
#include "spool/index.h"
#include "spool/record.h"
#include "spool/spool.h"
#include "spool/spool_int.h"

#define TAKEOVER_BATCH	256

struct taken {
	uint64_t		 id;
	char			 name[PST_SPOOL_ID_LEN + 1];
	char			*env;
	size_t			 env_len;
	unsigned char		 ref[PST_REC_EXTREF];
};

struct takeover {
	struct pst_spool	*spool;
	struct taken		 t[TAKEOVER_BATCH];
	struct pst_log_rec	 recs[TAKEOVER_BATCH];
	size_t			 n;
	struct pst_err		*err;
};

/* The old names of message 'name': envelope, then body. */
static void
remove_v1(struct pst_spool *spool, const char *name)
{
	char file[SPOOL_NAME_MAX];
	int bfd = spool->bucketfd[spool_bucket(name)];

	snprintf(file, sizeof(file), "%s%s", name, SPOOL_ENV_SUFFIX);
	(void)unlinkat(bfd, file, 0);
	snprintf(file, sizeof(file), "%s%s", name, SPOOL_BODY_SUFFIX);
	(void)unlinkat(bfd, file, 0);
}

static int
flush_batch(struct takeover *tk)
{
	struct pst_spool *spool = tk->spool;
	size_t i;
	int rc = 0;

	if (tk->n == 0)
		return 0;
	if (spool_fsync_dir(spool->bodiesfd, "bodies", tk->err) == -1 ||
	    spool_store_append(spool, tk->recs, tk->n, tk->err) == -1)
		rc = -1;
	for (i = 0; i < tk->n; i++) {
		if (rc == 0)
			remove_v1(spool, tk->t[i].name);
		free(tk->t[i].env);
	}
	tk->n = 0;
	return rc;
}

static int
take_one(struct pst_spool_env *env, void *arg)
{
	struct takeover *tk = arg;
	struct pst_spool *spool = tk->spool;
	struct taken *t = &tk->t[tk->n];
	struct pst_log_rec *r = &tk->recs[tk->n];
	char body[SPOOL_NAME_MAX];
	int bfd;

	if (pst_rec_id_parse(env->id, &t->id) == -1) {
		pst_spool_env_free(env);
		return 0;
	}
	snprintf(t->name, sizeof(t->name), "%s", env->id);
	/* Already in the log: a takeover cut short after its flush. */
	pthread_mutex_lock(&spool->mtx);
	if (spool_idx_get(spool->idx, t->id) != NULL) {
		pthread_mutex_unlock(&spool->mtx);
		remove_v1(spool, t->name);
		pst_spool_env_free(env);
		return 0;
	}
	pthread_mutex_unlock(&spool->mtx);
	bfd = spool->bucketfd[spool_bucket(t->name)];
	snprintf(body, sizeof(body), "%s%s", t->name, SPOOL_BODY_SUFFIX);
	if (linkat(bfd, body, spool->bodiesfd, t->name, 0) == -1 &&
	    errno != EEXIST) {
		spool_sys(tk->err, errno, "taking over %s: linking its body",
		    t->name);
		pst_spool_env_free(env);
		return -1;
	}
	if (pst_spool_env_encode(env, &t->env, &t->env_len, tk->err) == -1) {
		pst_spool_env_free(env);
		return -1;
	}
	pst_rec_extref_encode(t->ref, 0, env->size);
	memset(r, 0, sizeof(*r));
	r->type = PST_REC_MSG;
	r->flags = PST_REC_EXTERNAL;
	r->id = t->id;
	r->env = t->env;
	r->env_len = t->env_len;
	r->data = t->ref;
	r->data_len = sizeof(t->ref);
	pst_spool_env_free(env);
	if (++tk->n == TAKEOVER_BATCH)
		return flush_batch(tk);
	return 0;
}

int
spool_takeover(struct pst_spool *spool, struct pst_err *err)
{
	struct takeover *tk;
	int i, rc = -1;

	if (spool_v1_recover(spool, err) == -1)
		return -1;
	if ((tk = calloc(1, sizeof(*tk))) == NULL)
		return spool_sys(err, ENOMEM, "taking over the spool");
	tk->spool = spool;
	tk->err = err;
	if (spool_v1_scan(spool, take_one, tk, err) == -1 ||
	    flush_batch(tk) == -1)
		goto out;
	for (i = 0; i < PST_SPOOL_BUCKETS; i++)
		if (spool_fsync_dir(spool->bucketfd[i], "queue directory",
		    err) == -1)
			goto out;
	rc = 0;
out:
	for (i = 0; i < (int)tk->n; i++)
		free(tk->t[i].env);
	free(tk);
	return rc;
}

void
spool_takeover_done(struct pst_spool *spool)
{
	char name[2] = { 0, 0 };
	int i;

	/* The old directories go if they are empty; anything else stays. */
	for (i = 0; i < PST_SPOOL_BUCKETS; i++) {
		name[0] = pst_hex_digit((unsigned)i, false);
		(void)unlinkat(spool->queuefd, name, AT_REMOVEDIR);
	}
	(void)unlinkat(spool->dirfd, "queue", AT_REMOVEDIR);
}
