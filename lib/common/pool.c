/*
 * pool.c: worker threads fed from one FIFO, reporting through one event.
 *
 * Workers take jobs from 'todo', run them, and move them to 'done_list';
 * the first job to land on an empty 'done_list' writes a byte to a pipe,
 * whose read event runs the completions on the loop.  A job is always in
 * exactly one of the two lists (or being worked on), so pst_pool_free()
 * can account for every one of them.  The read event is added exactly
 * while jobs are outstanding: a loop with nothing else to do waits for
 * them, and one with no jobs out is free to end.  (A pipe rather than
 * event_active(): an fd-less event does not keep a libevent 2.1 loop
 * alive.)
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/err.h"
#include "common/pool.h"

struct job {
	struct job	*next;
	pst_pool_fn	 work;
	pst_pool_fn	 done;
	void		*arg;
};

struct job_list {
	struct job	*head;
	struct job	*tail;
};

struct pst_pool {
	pthread_mutex_t	 mtx;
	pthread_cond_t	 cond;
	struct job_list	 todo;
	struct job_list	 done_list;
	struct event	*wake;
	int		 pipe_fd[2];	/* workers -> loop */
	pthread_t	*threads;
	unsigned	 nthreads;
	size_t		 pending;
	bool		 stopping;
};

static void	 job_push(struct job_list *, struct job *);
static struct job *job_pop(struct job_list *);
static void	 pool_wake(struct pst_pool *);
static void	*pool_worker(void *);
static void	 pool_wake_cb(evutil_socket_t, short, void *);
static void	 pool_run_done(struct pst_pool *);

static void
job_push(struct job_list *list, struct job *job)
{
	job->next = NULL;
	if (list->tail != NULL)
		list->tail->next = job;
	else
		list->head = job;
	list->tail = job;
}

static struct job *
job_pop(struct job_list *list)
{
	struct job *job = list->head;

	if (job != NULL) {
		list->head = job->next;
		if (list->head == NULL)
			list->tail = NULL;
	}
	return job;
}

/* Wakes the loop (the pool's mutex held). */
static void
pool_wake(struct pst_pool *pool)
{
	ssize_t n;

	/*
	 * A full pipe (EAGAIN) means a wake-up is pending already: nothing
	 * is lost by ignoring the failure.
	 */
	n = write(pool->pipe_fd[1], "", 1);
	(void)n;
}

static void *
pool_worker(void *arg)
{
	struct pst_pool *pool = arg;
	struct job *job;
	bool was_empty;

	pthread_mutex_lock(&pool->mtx);
	for (;;) {
		while (pool->todo.head == NULL && !pool->stopping)
			pthread_cond_wait(&pool->cond, &pool->mtx);
		job = job_pop(&pool->todo);
		if (job == NULL)
			break;		/* stopping, and nothing left to do */
		pthread_mutex_unlock(&pool->mtx);

		job->work(job->arg);

		pthread_mutex_lock(&pool->mtx);
		was_empty = pool->done_list.head == NULL;
		job_push(&pool->done_list, job);
		if (was_empty && !pool->stopping)
			pool_wake(pool);
	}
	pthread_mutex_unlock(&pool->mtx);
	return NULL;
}

static void
pool_run_done(struct pst_pool *pool)
{
	struct job_list batch;
	struct job *job;

	pthread_mutex_lock(&pool->mtx);
	batch = pool->done_list;
	pool->done_list.head = pool->done_list.tail = NULL;
	pthread_mutex_unlock(&pool->mtx);

	while ((job = job_pop(&batch)) != NULL) {
		pthread_mutex_lock(&pool->mtx);
		if (--pool->pending == 0 && pool->wake != NULL)
			event_del(pool->wake);
		pthread_mutex_unlock(&pool->mtx);
		if (job->done != NULL)
			job->done(job->arg);
		free(job);
	}
}

static void
pool_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	char buf[64];

	while (read(fd, buf, sizeof(buf)) > 0)
		continue;
	pool_run_done(arg);
}

struct pst_pool *
pst_pool_new(struct event_base *base, unsigned nthreads, struct pst_err *err)
{
	struct pst_pool *pool;
	unsigned i;
	int rc;

	if (nthreads == 0)
		nthreads = 1;
	if ((pool = calloc(1, sizeof(*pool))) == NULL ||
	    (pool->threads = calloc(nthreads, sizeof(*pool->threads))) == NULL) {
		free(pool);
		pst_err_sys(err, PST_LOCAL, PST_STAGE_NONE, ENOMEM,
		    "worker pool");
		return NULL;
	}
	pthread_mutex_init(&pool->mtx, NULL);
	pthread_cond_init(&pool->cond, NULL);
	pool->pipe_fd[0] = pool->pipe_fd[1] = -1;
	if (pipe2(pool->pipe_fd, O_NONBLOCK | O_CLOEXEC) == -1) {
		pst_err_sys(err, PST_LOCAL, PST_STAGE_NONE, errno,
		    "worker pool: pipe");
		goto fail;
	}
	if ((pool->wake = event_new(base, pool->pipe_fd[0],
	    EV_READ | EV_PERSIST, pool_wake_cb, pool)) == NULL) {
		pst_err_set(err, PST_LOCAL, PST_STAGE_NONE,
		    "worker pool: cannot create the wake-up event");
		goto fail;
	}
	for (i = 0; i < nthreads; i++) {
		rc = pthread_create(&pool->threads[i], NULL, pool_worker, pool);
		if (rc != 0) {
			pst_err_sys(err, PST_LOCAL, PST_STAGE_NONE, rc,
			    "worker pool: starting thread %u", i + 1);
			goto fail;
		}
		pool->nthreads++;
	}
	return pool;
fail:
	pst_pool_free(pool);
	return NULL;
}

int
pst_pool_post(struct pst_pool *pool, pst_pool_fn done, void *arg,
    struct pst_err *err)
{
	struct job *job;
	bool was_empty;

	if ((job = calloc(1, sizeof(*job))) == NULL)
		return pst_err_sys(err, PST_LOCAL, PST_STAGE_NONE, ENOMEM,
		    "worker pool: posting a completion");
	job->done = done;
	job->arg = arg;

	pthread_mutex_lock(&pool->mtx);
	if (pool->pending++ == 0)
		event_add(pool->wake, NULL);
	was_empty = pool->done_list.head == NULL;
	job_push(&pool->done_list, job);
	if (was_empty && !pool->stopping)
		pool_wake(pool);
	pthread_mutex_unlock(&pool->mtx);
	return 0;
}

int
pst_pool_submit(struct pst_pool *pool, pst_pool_fn work, pst_pool_fn done,
    void *arg, struct pst_err *err)
{
	struct job *job;

	if ((job = calloc(1, sizeof(*job))) == NULL)
		return pst_err_sys(err, PST_LOCAL, PST_STAGE_NONE, ENOMEM,
		    "worker pool: queueing a job");
	job->work = work;
	job->done = done;
	job->arg = arg;

	pthread_mutex_lock(&pool->mtx);
	if (pool->stopping) {
		pthread_mutex_unlock(&pool->mtx);
		free(job);
		return pst_err_set(err, PST_TEMP, PST_STAGE_NONE,
		    "worker pool is shutting down");
	}
	job_push(&pool->todo, job);
	/* While jobs are out, the wake event keeps the loop running. */
	if (pool->pending++ == 0)
		event_add(pool->wake, NULL);
	pthread_cond_signal(&pool->cond);
	pthread_mutex_unlock(&pool->mtx);
	return 0;
}

size_t
pst_pool_pending(struct pst_pool *pool)
{
	size_t n;

	pthread_mutex_lock(&pool->mtx);
	n = pool->pending;
	pthread_mutex_unlock(&pool->mtx);
	return n;
}

void
pst_pool_free(struct pst_pool *pool)
{
	unsigned i;

	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->mtx);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->mtx);

	for (i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	pool_run_done(pool);

	if (pool->wake != NULL)
		event_free(pool->wake);
	if (pool->pipe_fd[0] != -1) {
		close(pool->pipe_fd[0]);
		close(pool->pipe_fd[1]);
	}
	pthread_cond_destroy(&pool->cond);
	pthread_mutex_destroy(&pool->mtx);
	free(pool->threads);
	free(pool);
}
