/*
 * msg.c: writing one message into the spool.
 *
 * Body bytes collect in an evbuffer on the loop thread; past
 * PST_SPOOL_FLUSH_BYTES they go to tmp/ID on a pool worker.  The commit
 * (doc/spool.md, "Committing") then takes one of three ways:
 *
 *   - in the daemon, a body still in memory goes into the log with its
 *     envelope: one MSG record, acknowledged with its batch;
 *   - in the daemon, a body already in tmp/ is flushed and renamed to
 *     bodies/ID on the pool, and an EXTERNAL MSG record names it;
 *   - anywhere else (sendmail, the daemon's bounces, a spool without a
 *     writer), the message becomes a drop in incoming/.
 *
 * Ownership: while a job or an append is out, it alone touches the
 * message (the loop only reads 'state', which only the loop writes).  A
 * failed step removes every file of the message before it is reported,
 * so a failed message holds no file.
 */
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "common/err.h"
#include "common/pool.h"
#include "spool/log.h"
#include "spool/record.h"
#include "spool/spool.h"
#include "spool/spool_int.h"

#define WRITEV_MAX	16

enum msg_state {
	MSG_OPEN = 0,	/* taking body bytes from the caller */
	MSG_BUSY,	/* a flush or commit job owns the message */
	MSG_COMMITTED,	/* in the queue: the files are the queue's */
	MSG_FAILED,	/* gave up: no file left, 'err' says why */
	MSG__COUNT
};

static const char *const msg_state_names[] = {
	"open", "busy", "committed", "failed",
};
_Static_assert(sizeof(msg_state_names) / sizeof(msg_state_names[0]) ==
    MSG__COUNT, "a name for every message state");

struct pst_spool_msg {
	struct pst_spool	*spool;
	char			 id[PST_SPOOL_ID_LEN + 1];
	struct pst_spool_env	*env;
	struct evbuffer		*buf;
	int			 fd;		/* tmp/ID.body, or -1 */
	bool			 in_bodies;	/* now bodies/ID */
	char			*env_text;	/* as committed */
	size_t			 env_len;
	unsigned char		 ref[PST_REC_EXTREF];
	struct pst_log_rec	 rec;
	uint64_t		 written;	/* bytes in the file */
	enum msg_state		 state;
	bool			 committing;	/* the job is a commit */
	pst_spool_msg_cb	 cb;
	void			*arg;
	int			 rc;		/* the job's result */
	struct pst_err		 err;		/* its error */
};

static const char *msg_state_name(enum msg_state);
static void	 msg_set_state(struct pst_spool_msg *, enum msg_state);
static int	 msg_usable(struct pst_spool_msg *, struct pst_err *);
static int	 msg_create_body(struct pst_spool_msg *, struct pst_err *);
static int	 msg_drain(struct pst_spool_msg *, struct pst_err *);
static void	 msg_drop_body(struct pst_spool_msg *);
static int	 msg_flush(struct pst_spool_msg *, struct pst_err *);
static int	 msg_commit(struct pst_spool_msg *, struct pst_err *);
static int	 msg_collision(struct pst_spool_msg *, struct pst_err *);
static void	 msg_job_flush(void *);
static void	 msg_job_commit(void *);
static void	 msg_job_done(void *);
static void	 msg_job_discard(void *);
static void	 msg_job_free(void *);
static void	 msg_release(struct pst_spool_msg *);
static int	 msg_submit(struct pst_spool_msg *, struct pst_pool *,
		    bool, pst_spool_msg_cb, void *, struct pst_err *);

struct pst_spool_msg *
pst_spool_msg_begin(struct pst_spool *spool, struct pst_err *err)
{
	struct pst_spool_msg *msg;
	struct timespec ts;
	uint64_t ms, id;

	if ((msg = calloc(1, sizeof(*msg))) == NULL ||
	    (msg->env = pst_spool_env_new(err)) == NULL ||
	    (msg->buf = evbuffer_new()) == NULL) {
		if (msg != NULL)
			pst_spool_env_free(msg->env);
		free(msg);
		spool_sys(err, ENOMEM, "new message");
		return NULL;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	id = ms << 20 | (spool_random32() & 0xfffff);
	/* Never the same id twice from one process, even if time stands. */
	if (id <= spool->last_id)
		id = spool->last_id + 1;
	spool->last_id = id;
	snprintf(msg->id, sizeof(msg->id), "%016" PRIx64, id);
	memcpy(msg->env->id, msg->id, sizeof(msg->id));
	msg->spool = spool;
	msg->fd = -1;
	msg_set_state(msg, MSG_OPEN);
	return msg;
}

const char *
pst_spool_msg_id(const struct pst_spool_msg *msg)
{
	return msg->id;
}

struct pst_spool_env *
pst_spool_msg_env(struct pst_spool_msg *msg)
{
	return msg->env;
}

struct pst_spool_env *
pst_spool_msg_take_env(struct pst_spool_msg *msg)
{
	struct pst_spool_env *env = msg->env;

	msg->env = NULL;
	return env;
}

bool
pst_spool_msg_committed(const struct pst_spool_msg *msg)
{
	return msg->state == MSG_COMMITTED;
}

uint64_t
pst_spool_msg_size(const struct pst_spool_msg *msg)
{
	return msg->written + evbuffer_get_length(msg->buf);
}

bool
pst_spool_msg_need_flush(const struct pst_spool_msg *msg)
{
	return evbuffer_get_length(msg->buf) >= PST_SPOOL_FLUSH_BYTES;
}

static const char *
msg_state_name(enum msg_state state)
{
	return state < MSG__COUNT ? msg_state_names[state] : "?";
}

/*
 * The one place a message changes state.  The loop owns 'state': a job
 * never calls this, its completion does.
 */
static void
msg_set_state(struct pst_spool_msg *msg, enum msg_state state)
{
	msg->state = state;
}

static int
msg_usable(struct pst_spool_msg *msg, struct pst_err *err)
{
	switch (msg->state) {
	case MSG_OPEN:
		return 0;
	case MSG_BUSY:
		return spool_bad(err, "message %s is busy", msg->id);
	case MSG_COMMITTED:
		return spool_bad(err, "message %s is already committed",
		    msg->id);
	case MSG_FAILED:
		*err = msg->err;
		return -1;
	case MSG__COUNT:
		break;
	}
	return spool_bad(err, "message %s in state %s", msg->id,
	    msg_state_name(msg->state));
}

int
pst_spool_msg_write(struct pst_spool_msg *msg, const void *data, size_t len,
    struct pst_err *err)
{
	if (msg_usable(msg, err) == -1)
		return -1;
	if (len > PST_SPOOL_BUFFER_MAX - evbuffer_get_length(msg->buf))
		return spool_bad(err, "message %s: more than %u bytes "
		    "buffered; flush first", msg->id, PST_SPOOL_BUFFER_MAX);
	if (evbuffer_add(msg->buf, data, len) == -1)
		return spool_sys(err, ENOMEM, "message %s", msg->id);
	return 0;
}

int
pst_spool_msg_add_buffer(struct pst_spool_msg *msg, struct evbuffer *src,
    struct pst_err *err)
{
	size_t len = evbuffer_get_length(src);

	if (msg_usable(msg, err) == -1)
		return -1;
	if (len > PST_SPOOL_BUFFER_MAX - evbuffer_get_length(msg->buf))
		return spool_bad(err, "message %s: more than %u bytes "
		    "buffered; flush first", msg->id, PST_SPOOL_BUFFER_MAX);
	if (evbuffer_add_buffer(msg->buf, src) == -1)
		return spool_sys(err, ENOMEM, "message %s", msg->id);
	return 0;
}

/*
 * The steps.  Each runs on whatever thread owns the message, and on
 * failure leaves no file behind.
 */

/* Another process picked the same id: its files are not ours to touch. */
static int
msg_collision(struct pst_spool_msg *msg, struct pst_err *err)
{
	pst_err_set(err, PST_TEMP, PST_STAGE_SPOOL, "queue id %s is taken "
	    "by another writer", msg->id);
	err->sys_errno = EEXIST;
	return -1;
}

static int
msg_create_body(struct pst_spool_msg *msg, struct pst_err *err)
{
	char name[SPOOL_NAME_MAX];

	snprintf(name, sizeof(name), "%s%s", msg->id, SPOOL_BODY_SUFFIX);
	if ((msg->fd = spool_create_tmp(msg->spool, name)) == -1) {
		if (errno == EEXIST)
			return msg_collision(msg, err);
		return spool_sys(err, errno, "creating tmp/%s", name);
	}
	return 0;
}

static int
msg_drain(struct pst_spool_msg *msg, struct pst_err *err)
{
	struct evbuffer_iovec vec[WRITEV_MAX];
	struct iovec iov[WRITEV_MAX];
	ssize_t n;
	int i, nvec;

	while (evbuffer_get_length(msg->buf) > 0) {
		nvec = evbuffer_peek(msg->buf, -1, NULL, vec, WRITEV_MAX);
		if (nvec > WRITEV_MAX)
			nvec = WRITEV_MAX;
		for (i = 0; i < nvec; i++) {
			iov[i].iov_base = vec[i].iov_base;
			iov[i].iov_len = vec[i].iov_len;
		}
		n = writev(msg->fd, iov, nvec);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return spool_sys(err, n == 0 ? EIO : errno,
			    "writing the body of %s", msg->id);
		evbuffer_drain(msg->buf, (size_t)n);
		msg->written += (uint64_t)n;
	}
	return 0;
}

/* Gives up the body file in tmp/ or bodies/ (and the buffered bytes). */
static void
msg_drop_body(struct pst_spool_msg *msg)
{
	char name[SPOOL_NAME_MAX];

	if (msg->fd != -1) {
		if (msg->in_bodies)
			(void)unlinkat(msg->spool->bodiesfd, msg->id, 0);
		else {
			snprintf(name, sizeof(name), "%s%s", msg->id,
			    SPOOL_BODY_SUFFIX);
			(void)unlinkat(msg->spool->tmpfd, name, 0);
		}
		close(msg->fd);
		msg->fd = -1;
		msg->in_bodies = false;
	}
	evbuffer_drain(msg->buf, evbuffer_get_length(msg->buf));
}

static int
msg_flush(struct pst_spool_msg *msg, struct pst_err *err)
{
	if ((msg->fd == -1 && msg_create_body(msg, err) == -1) ||
	    msg_drain(msg, err) == -1) {
		msg_drop_body(msg);
		return -1;
	}
	return 0;
}

/* The envelope as it is committed: id, size, arrival set, encoded. */
static int
msg_prepare(struct pst_spool_msg *msg, struct pst_err *err)
{
	if (msg->env == NULL)
		return spool_bad(err, "message %s has no envelope (taken)",
		    msg->id);
	memcpy(msg->env->id, msg->id, sizeof(msg->id));
	msg->env->size = msg->written + evbuffer_get_length(msg->buf);
	if (msg->env->arrival == 0)
		msg->env->arrival = time(NULL);
	free(msg->env_text);
	msg->env_text = NULL;
	return pst_spool_env_encode(msg->env, &msg->env_text, &msg->env_len,
	    err);
}

/*
 * A body written to tmp/ as it came: the rest written, flushed, and
 * renamed to bodies/ID, where it stays locked until the commit is done.
 * bodies/ is flushed by whoever commits the record that names it.
 */
static int
msg_to_bodies(struct pst_spool_msg *msg, struct pst_err *err)
{
	char name[SPOOL_NAME_MAX];

	snprintf(name, sizeof(name), "%s%s", msg->id, SPOOL_BODY_SUFFIX);
	if (msg_flush(msg, err) == -1)
		return -1;
	if (fdatasync(msg->fd) == -1) {
		spool_sys(err, errno, "flushing the body of %s", msg->id);
		msg_drop_body(msg);
		return -1;
	}
	if (spool_rename_excl(msg->spool->tmpfd, name, msg->spool->bodiesfd,
	    msg->id) == -1) {
		if (errno == EEXIST)
			msg_collision(msg, err);
		else
			spool_sys(err, errno, "moving the body of %s to "
			    "bodies/", msg->id);
		msg_drop_body(msg);
		return -1;
	}
	msg->in_bodies = true;
	return 0;
}

/* The commit as a drop: sendmail, bounces, a spool without a writer. */
static int
msg_commit(struct pst_spool_msg *msg, struct pst_err *err)
{
	if (msg_prepare(msg, err) == -1) {
		msg_drop_body(msg);
		return -1;
	}
	if (msg->fd != -1 && (msg_to_bodies(msg, err) == -1 ||
	    spool_fsync_dir(msg->spool->bodiesfd, "bodies", err) == -1)) {
		msg_drop_body(msg);
		return -1;
	}
	if (spool_store_drop(msg->spool, msg->id, msg->env_text, msg->env_len,
	    msg->buf, msg->fd, msg->env->size, err) == -1) {
		if (err->sys_errno == EEXIST)
			msg_collision(msg, err);
		msg_drop_body(msg);
		return -1;
	}
	evbuffer_drain(msg->buf, evbuffer_get_length(msg->buf));
	if (msg->fd != -1) {
		close(msg->fd);
		msg->fd = -1;
	}
	return 0;
}

/*
 * Pool jobs.
 */

static void
msg_job_flush(void *arg)
{
	struct pst_spool_msg *msg = arg;

	msg->rc = msg_flush(msg, &msg->err);
}

static void
msg_job_commit(void *arg)
{
	struct pst_spool_msg *msg = arg;

	msg->rc = msg_commit(msg, &msg->err);
}

static void
msg_job_done(void *arg)
{
	struct pst_spool_msg *msg = arg;

	if (msg->rc == -1)
		msg_set_state(msg, MSG_FAILED);
	else
		msg_set_state(msg, msg->committing ? MSG_COMMITTED : MSG_OPEN);
	/* The callback may free the message: nothing after it. */
	msg->cb(msg, msg->rc == -1 ? &msg->err : NULL, msg->arg);
}

/*
 * The daemon's commit: into the log.
 */

/* A batch with the message's record is on stable storage, or failed. */
static void
msg_logged(struct pst_log_rec *recs, size_t n, const struct pst_err *err,
    void *arg)
{
	struct pst_spool_msg *msg = arg;

	if (err != NULL) {
		msg->err = *err;
		msg->rc = -1;
		msg_drop_body(msg);
	} else {
		spool_store_applied(msg->spool, recs, n);
		evbuffer_drain(msg->buf, evbuffer_get_length(msg->buf));
		if (msg->fd != -1) {
			close(msg->fd);
			msg->fd = -1;
		}
		msg->rc = 0;
	}
	msg_job_done(msg);
}

/* Hands the message's record to the log writer; on the loop. */
static void
msg_append(struct pst_spool_msg *msg)
{
	memset(&msg->rec, 0, sizeof(msg->rec));
	msg->rec.type = PST_REC_MSG;
	(void)pst_rec_id_parse(msg->id, &msg->rec.id);
	msg->rec.env = msg->env_text;
	msg->rec.env_len = msg->env_len;
	msg->rec.decoded = msg->env;
	if (msg->in_bodies) {
		pst_rec_extref_encode(msg->ref, 0, msg->env->size);
		msg->rec.flags = PST_REC_EXTERNAL;
		msg->rec.data = msg->ref;
		msg->rec.data_len = sizeof(msg->ref);
		msg->rec.sync_bodies = true;
	} else
		msg->rec.body = msg->buf;
	if (spool_store_append_async(msg->spool, &msg->rec, 1, msg_logged, msg,
	    &msg->err) == -1) {
		msg->rc = -1;
		msg_drop_body(msg);
		msg_job_done(msg);
	}
}

static void
msg_job_external(void *arg)
{
	struct pst_spool_msg *msg = arg;

	msg->rc = msg_prepare(msg, &msg->err);
	if (msg->rc == 0)
		msg->rc = msg_to_bodies(msg, &msg->err);
	if (msg->rc == -1)
		msg_drop_body(msg);
}

static void
msg_external_done(void *arg)
{
	struct pst_spool_msg *msg = arg;

	if (msg->rc == -1)
		msg_job_done(msg);
	else
		msg_append(msg);
}

static int
msg_submit(struct pst_spool_msg *msg, struct pst_pool *pool, bool commit,
    pst_spool_msg_cb cb, void *arg, struct pst_err *err)
{
	bool logged = commit && msg->spool->writer != NULL;

	if (msg_usable(msg, err) == -1)
		return -1;
	if (logged && msg->fd == -1 && msg_prepare(msg, err) == -1)
		return -1;
	msg_set_state(msg, MSG_BUSY);
	msg->committing = commit;
	msg->cb = cb;
	msg->arg = arg;
	pst_err_clear(&msg->err);
	if (logged && msg->fd == -1) {
		msg_append(msg);
		return 0;
	}
	if (pst_pool_submit(pool, logged ? msg_job_external : commit ?
	    msg_job_commit : msg_job_flush, logged ? msg_external_done :
	    msg_job_done, msg, err) == -1) {
		msg_set_state(msg, MSG_OPEN);
		err->stage = PST_STAGE_SPOOL;
		return -1;
	}
	return 0;
}

int
pst_spool_msg_flush(struct pst_spool_msg *msg, struct pst_pool *pool,
    pst_spool_msg_cb cb, void *arg, struct pst_err *err)
{
	return msg_submit(msg, pool, false, cb, arg, err);
}

int
pst_spool_msg_commit(struct pst_spool_msg *msg, struct pst_pool *pool,
    pst_spool_msg_cb cb, void *arg, struct pst_err *err)
{
	return msg_submit(msg, pool, true, cb, arg, err);
}

int
pst_spool_msg_flush_sync(struct pst_spool_msg *msg, struct pst_err *err)
{
	if (msg_usable(msg, err) == -1)
		return -1;
	if (msg_flush(msg, &msg->err) == -1) {
		msg_set_state(msg, MSG_FAILED);
		*err = msg->err;
		return -1;
	}
	return 0;
}

int
pst_spool_msg_commit_sync(struct pst_spool_msg *msg, struct pst_err *err)
{
	if (msg_usable(msg, err) == -1)
		return -1;
	if (msg_commit(msg, &msg->err) == -1) {
		msg_set_state(msg, MSG_FAILED);
		*err = msg->err;
		return -1;
	}
	msg_set_state(msg, MSG_COMMITTED);
	return 0;
}

/*
 * Freeing.
 */

static void
msg_release(struct pst_spool_msg *msg)
{
	if (msg->fd != -1)
		close(msg->fd);
	free(msg->env_text);
	evbuffer_free(msg->buf);
	pst_spool_env_free(msg->env);
	free(msg);
}

static void
msg_job_discard(void *arg)
{
	msg_drop_body(arg);
}

static void
msg_job_free(void *arg)
{
	msg_release(arg);
}

void
pst_spool_msg_free(struct pst_spool_msg *msg, struct pst_pool *pool)
{
	struct pst_err err;

	if (msg == NULL)
		return;
	/*
	 * A job owns a busy message: freeing it now would pull it from
	 * under the worker.  Leaking is the lesser harm of this caller bug.
	 */
	if (msg->state == MSG_BUSY)
		return;
	if (msg->state != MSG_COMMITTED && msg->fd != -1) {
		msg_set_state(msg, MSG_BUSY);
		if (pool != NULL && pst_pool_submit(pool, msg_job_discard,
		    msg_job_free, msg, &err) == 0)
			return;
		msg_drop_body(msg);
	}
	msg_release(msg);
}
