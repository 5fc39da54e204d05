#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "common/err.h"
#include "common/pool.h"
#include "unit.h"

#define JOBS	200

struct job_state {
	pthread_t	 loop_thread;
	atomic_int	 worked;
	int		 done;
	int		 done_off_loop;
	int		 order[JOBS];
	struct event_base *base;
};

struct job {
	struct job_state *st;
	int		  index;
	pthread_t	  worker;
};

static void
work(void *arg)
{
	struct job *j = arg;

	j->worker = pthread_self();
	atomic_fetch_add(&j->st->worked, 1);
}

static void
done(void *arg)
{
	struct job *j = arg;

	if (!pthread_equal(pthread_self(), j->st->loop_thread))
		j->st->done_off_loop++;
	j->st->order[j->st->done++] = j->index;
	if (j->st->done == JOBS)
		event_base_loopbreak(j->st->base);
}

START_TEST(pool_runs_work_off_loop_and_done_on_loop)
{
	static struct job jobs[JOBS];
	struct job_state st;
	struct pst_pool *pool;
	struct pst_err err;
	struct timeval limit = { 20, 0 };
	int i;

	memset(&st, 0, sizeof(st));
	ck_assert_int_eq(evthread_use_pthreads(), 0);
	st.base = event_base_new();
	st.loop_thread = pthread_self();
	pool = pst_pool_new(st.base, 3, &err);
	ck_assert_ptr_nonnull(pool);
	for (i = 0; i < JOBS; i++) {
		jobs[i].st = &st;
		jobs[i].index = i;
		ck_assert_int_eq(pst_pool_submit(pool, work, done, &jobs[i],
		    &err), 0);
	}
	/* Completions never run from inside submit. */
	ck_assert_int_eq(st.done, 0);
	event_base_loopexit(st.base, &limit);
	event_base_dispatch(st.base);
	ck_assert_int_eq(st.done, JOBS);
	ck_assert_int_eq(atomic_load(&st.worked), JOBS);
	ck_assert_int_eq(st.done_off_loop, 0);
	for (i = 0; i < JOBS; i++)
		ck_assert(!pthread_equal(jobs[i].worker, st.loop_thread));
	ck_assert_uint_eq(pst_pool_pending(pool), 0);
	pst_pool_free(pool);
	event_base_free(st.base);
}
END_TEST

/* A job that reports as it goes: each post runs on the loop, in order. */
struct poster {
	struct pst_pool	*pool;
	pthread_t	 loop_thread;
	int		 seen[4];
	int		 n;
	bool		 off_loop;
};

struct report {
	struct poster	*p;
	int		 i;
};

static void
post_done(void *arg)
{
	struct report *r = arg;

	if (!pthread_equal(pthread_self(), r->p->loop_thread))
		r->p->off_loop = true;
	r->p->seen[r->p->n++] = r->i;
	free(r);
}

static void
post_work(void *arg)
{
	struct poster *p = arg;
	struct report *r;
	struct pst_err err;
	int i;

	for (i = 1; i <= 3; i++) {
		r = malloc(sizeof(*r));
		ck_assert_ptr_nonnull(r);
		r->p = p;
		r->i = i;
		ck_assert_int_eq(pst_pool_post(p->pool, post_done, r, &err),
		    0);
	}
}

static void
post_job_done(void *arg)
{
	struct poster *p = arg;

	p->seen[p->n++] = 4;
}

START_TEST(pool_post_reports_as_the_job_goes)
{
	struct event_base *base;
	struct poster p;
	struct pst_err err;
	int round;

	ck_assert_int_eq(evthread_use_pthreads(), 0);
	base = event_base_new();
	for (round = 0; round < 2; round++) {
		memset(&p, 0, sizeof(p));
		p.loop_thread = pthread_self();
		p.pool = pst_pool_new(base, 1, &err);
		ck_assert_ptr_nonnull(p.pool);
		ck_assert_int_eq(pst_pool_submit(p.pool, post_work,
		    post_job_done, &p, &err), 0);
		/* Run by the loop, then by pst_pool_free() itself. */
		if (round == 0)
			event_base_dispatch(base);
		pst_pool_free(p.pool);
		ck_assert_int_eq(p.n, 4);
		ck_assert_int_eq(p.seen[0], 1);
		ck_assert_int_eq(p.seen[1], 2);
		ck_assert_int_eq(p.seen[2], 3);
		ck_assert_int_eq(p.seen[3], 4);
		ck_assert(!p.off_loop);
	}
	event_base_free(base);
}
END_TEST

START_TEST(pool_free_finishes_every_job)
{
	static struct job jobs[JOBS];
	struct job_state st;
	struct pst_pool *pool;
	struct pst_err err;
	int i;

	memset(&st, 0, sizeof(st));
	ck_assert_int_eq(evthread_use_pthreads(), 0);
	st.base = event_base_new();
	st.loop_thread = pthread_self();
	pool = pst_pool_new(st.base, 2, &err);
	ck_assert_ptr_nonnull(pool);
	for (i = 0; i < JOBS; i++) {
		jobs[i].st = &st;
		jobs[i].index = i;
		pst_pool_submit(pool, work, done, &jobs[i], &err);
	}
	/* No loop run at all: free must still account for every job. */
	pst_pool_free(pool);
	ck_assert_int_eq(st.done, JOBS);
	ck_assert_int_eq(atomic_load(&st.worked), JOBS);
	event_base_free(st.base);
}
END_TEST

START_TEST(pool_single_thread_keeps_order)
{
	static struct job jobs[JOBS];
	struct job_state st;
	struct pst_pool *pool;
	struct pst_err err;
	int i;

	memset(&st, 0, sizeof(st));
	ck_assert_int_eq(evthread_use_pthreads(), 0);
	st.base = event_base_new();
	st.loop_thread = pthread_self();
	pool = pst_pool_new(st.base, 1, &err);
	for (i = 0; i < JOBS; i++) {
		jobs[i].st = &st;
		jobs[i].index = i;
		pst_pool_submit(pool, work, done, &jobs[i], &err);
	}
	event_base_dispatch(st.base);
	for (i = 0; i < JOBS; i++)
		ck_assert_int_eq(st.order[i], i);
	pst_pool_free(pool);
	event_base_free(st.base);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("common/pool");
	TCase *tc = tcase_create("pool");

	tcase_add_test(tc, pool_runs_work_off_loop_and_done_on_loop);
	tcase_add_test(tc, pool_free_finishes_every_job);
	tcase_add_test(tc, pool_single_thread_keeps_order);
	tcase_add_test(tc, pool_post_reports_as_the_job_goes);
	suite_add_tcase(s, tc);
	return s;
}
