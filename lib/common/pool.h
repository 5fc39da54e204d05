/*
 * pool.h: a small pool of worker threads for blocking work.
 *
 * The event loop owns every socket; work that may block (write, fsync,
 * rename, getaddrinfo) runs here instead.  A job is a pair of functions:
 * 'work' runs on a worker thread and must not touch libevent objects of
 * the loop; 'done' runs afterwards on the loop thread, from the loop, with
 * the same argument.  Jobs start in submission order; with more than one
 * thread they may finish in any order.
 *
 * The program must call evthread_use_pthreads() before it creates the
 * event_base handed to pst_pool_new(): completions wake the loop with
 * event_active() from the worker thread.
 */
#ifndef PST_POOL_H
#define PST_POOL_H

#include <stddef.h>

struct event_base;
struct pst_err;
struct pst_pool;

typedef void (*pst_pool_fn)(void *arg);

/*
 * pst_pool_new()
 * Starts 'nthreads' workers (at least one) that report to 'base'.
 * Returns NULL and fills 'err' (PST_LOCAL) when threads or memory cannot be
 * had.
 */
struct pst_pool	*pst_pool_new(struct event_base *base, unsigned nthreads,
		    struct pst_err *err);

/*
 * pst_pool_submit()
 * Queues a job.  'work' runs on a worker, then 'done' (which may be NULL)
 * runs on the loop thread; neither ever runs from inside this call.
 * Returns 0, or -1 with 'err' filled when the pool is shutting down or out
 * of memory; then neither function will run.
 */
int		 pst_pool_submit(struct pst_pool *pool, pst_pool_fn work,
		    pst_pool_fn done, void *arg, struct pst_err *err);

/*
 * pst_pool_post()
 * From a job's 'work' (or any other thread): runs 'done' on the loop
 * thread as a completion, while the job goes on.  For a job that reports
 * as it goes (the spool's log writer acknowledges batch after batch).
 * Taken even while the pool is being freed, so that what a running job
 * reports is never dropped.  Returns 0, or -1 with 'err' when out of
 * memory; then 'done' will not run.
 */
int		 pst_pool_post(struct pst_pool *pool, pst_pool_fn done,
		    void *arg, struct pst_err *err);

/*
 * pst_pool_pending()
 * Jobs submitted whose 'done' has not run yet.
 */
size_t		 pst_pool_pending(struct pst_pool *pool);

/*
 * pst_pool_free()
 * Refuses new jobs, lets the workers finish every queued job, joins them
 * and runs the outstanding 'done' functions on the calling thread, which
 * must be the loop thread.  Nothing submitted is dropped.
 */
void		 pst_pool_free(struct pst_pool *pool);

#endif /* PST_POOL_H */
