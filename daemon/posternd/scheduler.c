/*
 * scheduler.c: the queue index, due times, upstream choice, breakers and
 * rate limits.
 *
 * Every queued message has one struct qent, found by id in a hash table.
 * A qent that waits is in a min-heap ordered by its next attempt; one
 * that is held or in delivery is in no heap.  One timer is armed for the
 * earliest moment something can happen (the heap's top, a breaker that
 * reopens, a rate-limit token), so an idle daemon does not wake up.
 *
 * Dispatching walks the upstreams in order and takes the first whose
 * breaker lets it through (breaker.c): failover is for failures, not for
 * load, so a busy first upstream is not relieved by the second.  A
 * delivery is started with what it works with and the callbacks below
 * (struct delivery_cbs); it never calls into the scheduler otherwise.
 */
#include <sys/inotify.h>
#include <sys/queue.h>

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "breaker.h"
#include "common/codec.h"
#include "common/err.h"
#include "common/pool.h"
#include "deliver.h"
#include "scheduler.h"
#include "shared/config.h"
#include "shared/log.h"
#include "shared/upstream.h"
#include "spool/spool.h"

#define MAINT_EVERY_S	10	/* seconds between upkeep rounds */
#define NOHEAP		SIZE_MAX

/*
 * First sizes of the index's hash table and heap: a queue of a thousand
 * messages is indexed without growing, and both double from there.
 */
#define TABLE_FIRST	1024
#define HEAP_FIRST	1024

/*
 * A message whose lock is taken (its commit is still finishing, or the
 * operator's tool has it) is looked at again after this long: a commit
 * holds the lock for a few fsyncs, so 100 ms is well past it, and far
 * below the one-second grain of the main timer.
 */
#define SOON_MS		100

/*
 * When a delivery cannot be started for want of memory, dispatching is
 * tried again after a second rather than at once, in a loop.
 */
#define NOMEM_RETRY_MS	1000


struct qent {
	char		 id[PST_SPOOL_ID_LEN + 1];
	time_t		 next;
	time_t		 arrival;
	bool		 held;
	bool		 busy;
	bool		 soon;		/* on the 'soon' list */
	size_t		 heap;
	struct qent	*hnext;
	struct qent	*snext;		/* 'soon' list */
};

struct scheduler {
	struct event_base	*base;
	struct config		*cfg;
	struct pst_spool	*spool;
	struct pst_pool		*pool;
	struct event		*timer;
	struct event		*soon_timer;	/* brief waits, below 1 s */
	struct qent		*soon;		/* waiting for soon_timer */
	struct event		*ev_inotify;
	int			 inotify_fd;
	struct event		*maint_timer;	/* the spool's upkeep */
	bool			 maint_running;

	struct qent		**table;	/* hash buckets */
	size_t			 tsize;		/* power of two */
	size_t			 count;
	struct qent		**heap;
	size_t			 hlen;
	size_t			 hcap;
	size_t			 held;
	size_t			 busy;

	struct upstate		**ups;
	size_t			 nups;
	struct upstate		**route;	/* of cfg->upstreams, in order */
	size_t			 nroute;	/* allocated */
	size_t			 ndeliveries;
	unsigned long		 bounces;
	bool			 stopping;
	bool			 warned_no_upstream;
	void			(*stopped)(void *);
	void			*stopped_arg;
};

static void	sched_kick(struct scheduler *);
static const struct delivery_cbs sched_delivery_cbs;

/*
 * The index.
 */

static size_t
id_hash(const char *id)
{
	return (size_t)pst_fnv1a64(id, strlen(id));
}

static struct qent *
index_find(struct scheduler *s, const char *id)
{
	struct qent *e;

	for (e = s->table[id_hash(id) & (s->tsize - 1)]; e != NULL;
	    e = e->hnext)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

static int
index_grow(struct scheduler *s)
{
	struct qent **table, *e, *next;
	size_t i, size = s->tsize * 2, b;

	if ((table = calloc(size, sizeof(*table))) == NULL)
		return -1;
	for (i = 0; i < s->tsize; i++) {
		for (e = s->table[i]; e != NULL; e = next) {
			next = e->hnext;
			b = id_hash(e->id) & (size - 1);
			e->hnext = table[b];
			table[b] = e;
		}
	}
	free(s->table);
	s->table = table;
	s->tsize = size;
	return 0;
}

static void
index_remove(struct scheduler *s, struct qent *e)
{
	struct qent **pp = &s->table[id_hash(e->id) & (s->tsize - 1)];

	for (; *pp != NULL; pp = &(*pp)->hnext) {
		if (*pp == e) {
			*pp = e->hnext;
			s->count--;
			return;
		}
	}
}

/*
 * The heap, ordered by next attempt, then arrival.
 */

static bool
heap_less(const struct qent *a, const struct qent *b)
{
	if (a->next != b->next)
		return a->next < b->next;
	return a->arrival < b->arrival;
}

static void
heap_set(struct scheduler *s, size_t i, struct qent *e)
{
	s->heap[i] = e;
	e->heap = i;
}

static void
heap_up(struct scheduler *s, size_t i)
{
	struct qent *e = s->heap[i];

	while (i > 0 && heap_less(e, s->heap[(i - 1) / 2])) {
		heap_set(s, i, s->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(s, i, e);
}

static void
heap_down(struct scheduler *s, size_t i)
{
	struct qent *e = s->heap[i];
	size_t c;

	for (;;) {
		c = 2 * i + 1;
		if (c >= s->hlen)
			break;
		if (c + 1 < s->hlen && heap_less(s->heap[c + 1], s->heap[c]))
			c++;
		if (!heap_less(s->heap[c], e))
			break;
		heap_set(s, i, s->heap[c]);
		i = c;
	}
	heap_set(s, i, e);
}

static int
heap_push(struct scheduler *s, struct qent *e)
{
	struct qent **h;
	size_t cap;

	if (s->hlen == s->hcap) {
		cap = s->hcap == 0 ? HEAP_FIRST : s->hcap * 2;
		if ((h = realloc(s->heap, cap * sizeof(*h))) == NULL)
			return -1;
		s->heap = h;
		s->hcap = cap;
	}
	heap_set(s, s->hlen++, e);
	heap_up(s, s->hlen - 1);
	return 0;
}

static void
heap_remove(struct scheduler *s, struct qent *e)
{
	size_t i = e->heap;

	if (i == NOHEAP)
		return;
	e->heap = NOHEAP;
	if (--s->hlen == i)
		return;
	heap_set(s, i, s->heap[s->hlen]);
	heap_down(s, i);
	heap_up(s, s->heap[i]->heap);
}

/* Indexes a message; returns it, or NULL (known already, or no memory). */
static struct qent *
sched_insert(struct scheduler *s, const char *id, time_t next,
    time_t arrival, bool held)
{
	struct qent *e;
	size_t b;

	if (index_find(s, id) != NULL)
		return NULL;
	if (s->count >= s->tsize && index_grow(s) == -1)
		return NULL;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->next = next;
	e->arrival = arrival;
	e->held = held;
	e->heap = NOHEAP;
	b = id_hash(id) & (s->tsize - 1);
	e->hnext = s->table[b];
	s->table[b] = e;
	s->count++;
	if (held)
		s->held++;
	else if (heap_push(s, e) == -1) {
		index_remove(s, e);
		free(e);
		return NULL;
	}
	return e;
}

/* Indexes a message just committed (by the server, or a bounce): due now. */
static void
sched_add_id(struct scheduler *s, const char *id, time_t arrival)
{
	if (sched_insert(s, id, 0, arrival, false) != NULL)
		sched_kick(s);
}

/*
 * Upstreams: breakers and rate limits.
 */

struct upstate *
scheduler_upstate(struct scheduler *s, const char *name)
{
	struct upstate **ups, *up;
	size_t i;

	for (i = 0; i < s->nups; i++)
		if (strcmp(s->ups[i]->name, name) == 0)
			return s->ups[i];
	if ((up = calloc(1, sizeof(*up))) == NULL)
		return NULL;
	if ((ups = realloc(s->ups, (s->nups + 1) * sizeof(*ups))) == NULL) {
		free(up);
		return NULL;
	}
	snprintf(up->name, sizeof(up->name), "%s", name);
	up->learned = upstream_memory_load(s->cfg->spool_dir, name);
	rate_init(&up->rate);
	s->ups = ups;
	s->ups[s->nups++] = up;
	return up;
}

/*
 * Takes one token from the upstream's rate bucket; 0 with '*wait_ms' set
 * when none is left.
 */
static int
sched_rate_take(const struct config_upstream *u, struct upstate *up,
    uint64_t *wait_ms)
{
	struct timespec now;

	if (u->rate_per_ms == 0)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return rate_take(&up->rate, u->rate_count, u->rate_per_ms, &now,
	    wait_ms);
}

/*
 * The first upstream a new delivery may use, its index in '*upi', or
 * NULL with '*wake' the time a breaker reopens (0: none).
 */
static const struct config_upstream *
pick_upstream(struct scheduler *s, struct upstate **upp, size_t *upi,
    time_t now, time_t *wake)
{
	const struct config_upstream *u;
	struct upstate *up;
	time_t reopens;
	size_t i;

	*wake = 0;
	for (i = 0; i < s->cfg->nupstreams; i++) {
		u = &s->cfg->upstreams[i];
		if ((up = scheduler_upstate(s, u->name)) == NULL)
			continue;
		if (!breaker_admit(&up->br, now, &reopens)) {
			if (reopens != 0 && (*wake == 0 || reopens < *wake))
				*wake = reopens;
			continue;
		}
		*upp = up;
		*upi = i;
		return u;
	}
	return NULL;
}

/*
 * The state of each upstream of the configuration, in its order, for a
 * delivery (which copies it); NULL when memory is short.
 */
static struct upstate *const *
sched_route(struct scheduler *s)
{
	struct upstate **route;
	size_t i, n = s->cfg->nupstreams;

	if (n > s->nroute) {
		if ((route = reallocarray(s->route, n, sizeof(*route))) ==
		    NULL)
			return NULL;
		s->route = route;
		s->nroute = n;
	}
	for (i = 0; i < n; i++)
		s->route[i] = scheduler_upstate(s, s->cfg->upstreams[i].name);
	return s->route;
}

/* Starts a delivery of 'e' through upstream 'upi'; -1: no memory. */
static int
sched_deliver(struct scheduler *s, size_t upi, struct qent *e)
{
	struct delivery_env env;
	struct delivery_msg m;

	env.base = s->base;
	env.pool = s->pool;
	env.spool = s->spool;
	env.cfg = s->cfg;
	if ((env.ups = sched_route(s)) == NULL)
		return -1;
	m.q = e;
	memcpy(m.id, e->id, sizeof(m.id));
	return delivery_start(&env, &sched_delivery_cbs, s, upi, &m);
}

static void
arm_timer(struct scheduler *s, uint64_t ms)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(s->timer, &tv);
}

/* Starts deliveries for what is due, then sleeps until the next event. */
static void
sched_kick(struct scheduler *s)
{
	const struct config_upstream *u;
	struct upstate *up = NULL;
	struct qent *e;
	uint64_t wait_ms = 0, ms;
	time_t now = time(NULL), wake = 0;
	size_t upi = 0;

	evtimer_del(s->timer);
	if (s->stopping)
		return;
	while (s->hlen > 0 && (e = s->heap[0])->next <= now) {
		if (s->cfg->nupstreams == 0) {
			if (!s->warned_no_upstream)
				log_warn("event=no-upstream queued=%zu reason=%s",
				    s->count, qs("no upstream is configured; "
				    "mail stays queued"));
			s->warned_no_upstream = true;
			return;
		}
		if ((u = pick_upstream(s, &up, &upi, now, &wake)) == NULL)
			break;
		if (up->conns >= s->cfg->queue.concurrency)
			break;
		if (!sched_rate_take(u, up, &wait_ms))
			break;
		heap_remove(s, e);
		e->busy = true;
		s->busy++;
		breaker_dispatched(&up->br);
		if (sched_deliver(s, upi, e) == -1) {
			e->busy = false;
			s->busy--;
			breaker_probe_abandoned(&up->br);
			heap_push(s, e);
			arm_timer(s, NOMEM_RETRY_MS);
			return;
		}
		up->conns++;
		s->ndeliveries++;
	}
	/* Sleep until the first thing that can change this. */
	ms = 0;
	if (s->hlen > 0 && s->heap[0]->next > now)
		ms = (uint64_t)(s->heap[0]->next - now) * 1000;
	if (wake != 0 && (ms == 0 || (uint64_t)(wake - now) * 1000 < ms))
		ms = (uint64_t)(wake - now) * 1000;
	if (wait_ms != 0 && (ms == 0 || wait_ms < ms))
		ms = wait_ms;
	if (ms != 0)
		arm_timer(s, ms);
}

static void
sched_timer(evutil_socket_t fd, short what, void *arg)
{
	sched_kick(arg);
}

/*
 * What deliveries tell the scheduler (struct delivery_cbs).
 */

/* The next due message for a delivery's connection to 'up'. */
static bool
sched_next(void *arg, struct upstate *up, struct delivery_msg *m)
{
	struct scheduler *s = arg;
	const struct config_upstream *u;
	struct qent *e;
	uint64_t wait_ms;

	if (s->stopping || s->hlen == 0 || s->heap[0]->next > time(NULL))
		return false;
	if ((u = config_upstream_find(s->cfg, up->name)) == NULL ||
	    !sched_rate_take(u, up, &wait_ms))
		return false;
	e = s->heap[0];
	heap_remove(s, e);
	e->busy = true;
	s->busy++;
	m->q = e;
	memcpy(m->id, e->id, sizeof(m->id));
	return true;
}

/* Puts back into the heap what waited a moment, and dispatches it. */
static void
soon_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct scheduler *s = arg;
	struct qent *e;

	while ((e = s->soon) != NULL) {
		s->soon = e->snext;
		e->soon = false;
		e->snext = NULL;
		heap_push(s, e);
	}
	sched_kick(s);
}

/* Delivery of 'e' could not start for a moment's reason: again soon. */
static void
sched_soon(struct scheduler *s, struct qent *e)
{
	struct timeval tv = { 0, SOON_MS * 1000 };

	e->busy = false;
	s->busy--;
	e->next = 0;
	e->soon = true;
	e->snext = s->soon;
	s->soon = e;
	if (!evtimer_pending(s->soon_timer, NULL))
		evtimer_add(s->soon_timer, &tv);
}

/* A delivery is done with 'e': index it by what became of it. */
static void
sched_done(void *arg, struct qent *e, enum delivery_fate fate, time_t next)
{
	struct scheduler *s = arg;

	if (fate == DELIVERY_SOON) {
		sched_soon(s, e);
		return;
	}
	e->busy = false;
	s->busy--;
	if (e->held)
		s->held--;
	if (fate == DELIVERY_GONE) {
		index_remove(s, e);
		free(e);
		return;
	}
	e->next = next;
	e->held = fate == DELIVERY_HELD;
	if (e->held) {
		s->held++;
		return;
	}
	heap_push(s, e);
	/*
	 * A result saved after its delivery ended comes back with nobody
	 * to look at the heap again: if it is now the first due, plan anew.
	 */
	if (s->heap[0] == e && !s->stopping)
		arm_timer(s, 0);
}

/* Indexes a message created by the daemon itself: a bounce. */
static void
sched_bounced(void *arg, const char *id, time_t arrival)
{
	struct scheduler *s = arg;

	sched_add_id(s, id, arrival);
	s->bounces++;
}

/* A delivery ended and freed itself: its connection slot is free. */
static void
sched_ended(void *arg, struct upstate *up, bool connected)
{
	struct scheduler *s = arg;

	/*
	 * A half-open breaker's probe that never got as far as connecting
	 * (its message was locked, held or gone) must not keep the upstream
	 * waiting for a result that will never come.
	 */
	if (!connected)
		breaker_probe_abandoned(&up->br);
	up->conns--;
	s->ndeliveries--;
	if (s->stopping) {
		if (s->ndeliveries == 0 && s->stopped != NULL)
			s->stopped(s->stopped_arg);
		return;
	}
	sched_kick(s);
}

/* A connection to 'up' worked or failed: its breaker and counters. */
static void
sched_conn_result(void *arg, struct upstate *up, const struct pst_err *err,
    enum pst_learned learned)
{
	struct scheduler *s = arg;
	const struct config_queue *q = &s->cfg->queue;
	time_t now = time(NULL), period;

	if (err == NULL) {
		up->conn_ok++;
		if (breaker_success(&up->br))
			log_info("event=breaker-closed upstream=%s",
			    qs(up->name));
		up->last_ok = now;
		if (learned != PST_LEARNED_UNKNOWN && learned != up->learned) {
			up->learned = learned;
			if (upstream_memory_save(s->cfg->spool_dir, up->name,
			    learned) == -1)
				log_warn("event=memory-failed upstream=%s "
				    "reason=%s", qs(up->name),
				    qs(strerror(errno)));
		}
		return;
	}
	up->last_fail = now;
	if ((unsigned)err->stage < PST_STAGE__COUNT)
		up->conn_failed[err->stage]++;
	snprintf(up->last_error, sizeof(up->last_error), "%s", err->text);
	if (breaker_failure(&up->br, q->breaker_failures,
	    q->breaker_backoff_ms, now, &period))
		log_warn("event=breaker-open upstream=%s failures=%u "
		    "retry_in=%llds reason=%s", qs(up->name), up->br.failures,
		    (long long)period, qs(err->text));
}

static const struct delivery_cbs sched_delivery_cbs = {
	.next = sched_next,
	.done = sched_done,
	.bounced = sched_bounced,
	.conn_result = sched_conn_result,
	.ended = sched_ended,
};

/*
 * Watching incoming/ for the drops of sendmail.
 */

struct pickup {
	struct scheduler	*s;
	char			 id[PST_SPOOL_ID_LEN + 1];
	struct pst_spool_env	*env;
};

static void
pickup_work(void *arg)
{
	struct pickup *p = arg;
	struct pst_err err;

	p->env = pst_spool_read(p->s->spool, p->id, &err);
}

/*
 * The operator changed a message we know while it waits (postern queue
 * hold, release, delete, through the control socket): follow it.
 */
static void
sched_refresh(struct scheduler *s, struct qent *e,
    const struct pst_spool_env *env)
{
	if (e->busy || e->soon)
		return;		/* the delivery's own update decides */
	if (e->held)
		s->held--;
	heap_remove(s, e);
	if (env == NULL) {
		index_remove(s, e);
		free(e);
		return;
	}
	e->held = env->held;
	e->next = env->next_attempt;
	if (e->held)
		s->held++;
	else
		heap_push(s, e);
}

static void
pickup_done(void *arg)
{
	struct pickup *p = arg;
	struct qent *e = index_find(p->s, p->id);
	struct scheduler *sched;

	/* Known already: our own bounce, announced by the delivery. */
	if (e == NULL && p->env != NULL && sched_insert(p->s, p->env->id,
	    p->env->next_attempt, p->env->arrival, p->env->held) != NULL)
		log_info("event=picked-up id=%s origin=%s", p->env->id,
		    qs(p->env->origin != NULL ? p->env->origin : "?"));
	pst_spool_env_free(p->env);
	sched = p->s;
	free(p);
	sched_kick(sched);
}

static void
inotify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct scheduler *s = arg;
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	struct pickup *p;
	struct pst_err err;
	char id[PST_SPOOL_ID_LEN + 1];
	ssize_t n;
	char *at;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (at = buf; at < buf + n;
		    at += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)at;
			if (ev->mask & IN_Q_OVERFLOW)
				log_warn("event=inotify-overflow reason=%s",
				    qs("some queue changes were missed; "
				    "they are seen at the next start"));
			/* A drop: incoming/ID, as sendmail renames it in. */
			if (ev->len == 0 || strlen(ev->name) !=
			    PST_SPOOL_ID_LEN || !(ev->mask & IN_MOVED_TO))
				continue;
			memcpy(id, ev->name, PST_SPOOL_ID_LEN);
			id[PST_SPOOL_ID_LEN] = '\0';
			if (!pst_spool_id_valid(id))
				continue;
			/*
			 * Only drops are renamed in there: sendmail's, and
			 * the bounces the delivery announces itself.
			 */
			if (index_find(s, id) != NULL)
				continue;
			if ((p = calloc(1, sizeof(*p))) == NULL)
				continue;
			p->s = s;
			memcpy(p->id, id, sizeof(id));
			if (pst_pool_submit(s->pool, pickup_work, pickup_done,
			    p, &err) == -1)
				free(p);
		}
	}
}

static int
watch_queue(struct scheduler *s)
{
	char dir[PATH_MAX];

	s->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->inotify_fd == -1) {
		log_error("event=start-failed reason=%s",
		    qs("inotify is not available"));
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s/incoming", s->cfg->spool_dir);
	if (inotify_add_watch(s->inotify_fd, dir, IN_MOVED_TO) == -1) {
		log_error("event=start-failed path=%s reason=%s", qs(dir),
		    qs(strerror(errno)));
		return -1;
	}
	s->ev_inotify = event_new(s->base, s->inotify_fd, EV_READ | EV_PERSIST,
	    inotify_cb, s);
	if (s->ev_inotify == NULL || event_add(s->ev_inotify, NULL) == -1)
		return -1;
	return 0;
}

/*
 * The spool's upkeep: segments of the log nothing needs any more are
 * given back, now and then, on the pool.
 */

struct maint {
	struct scheduler	*s;
	struct pst_err		 err;
	int			 rc;
};

static void
maint_work(void *arg)
{
	struct maint *m = arg;

	m->rc = pst_spool_maintain(m->s->spool, &m->err);
}

static void
maint_done(void *arg)
{
	struct maint *m = arg;

	if (m->rc == -1)
		log_warn("event=spool-upkeep-failed reason=%s",
		    qs(m->err.text));
	m->s->maint_running = false;
	free(m);
}

static void
maint_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct scheduler *s = arg;
	struct pst_err err;
	struct maint *m;

	if (s->maint_running || s->stopping ||
	    (m = calloc(1, sizeof(*m))) == NULL)
		return;
	m->s = s;
	if (pst_pool_submit(s->pool, maint_work, maint_done, m, &err) == -1) {
		free(m);
		return;
	}
	s->maint_running = true;
}

/*
 * The operator's changes.
 */

struct change {
	struct scheduler	*s;
	char			 id[PST_SPOOL_ID_LEN + 1];
	enum sched_change	 what;
	struct pst_spool_env	*env;		/* afterwards, unless deleted */
	struct pst_err		 err;
	sched_change_cb		 cb;
	void			*arg;
};

static void
change_work(void *arg)
{
	struct change *c = arg;
	int rc;

	pst_err_clear(&c->err);
	if (c->what == SCHED_DELETE)
		rc = pst_spool_remove(c->s->spool, c->id, 0, &c->err);
	else
		rc = pst_spool_hold(c->s->spool, c->id, c->what == SCHED_HOLD,
		    0, &c->err);
	if (rc == 0 && c->what != SCHED_DELETE)
		c->env = pst_spool_read(c->s->spool, c->id, &c->err);
}

static void
change_done(void *arg)
{
	struct change *c = arg;
	struct scheduler *s = c->s;
	struct qent *e = index_find(s, c->id);
	bool ok = c->err.cls == PST_OK;

	if (ok && e != NULL)
		sched_refresh(s, e, c->env);
	if (ok)
		log_info("event=%s id=%s by=operator", c->what == SCHED_DELETE ?
		    "deleted" : c->what == SCHED_HOLD ? "held" : "released",
		    c->id);
	c->cb(c->arg, ok ? NULL : &c->err);
	pst_spool_env_free(c->env);
	free(c);
	sched_kick(s);
}

int
scheduler_change(struct scheduler *s, const char *id, enum sched_change what,
    sched_change_cb cb, void *arg)
{
	struct change *c;
	struct pst_err err;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -1;
	c->s = s;
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->what = what;
	c->cb = cb;
	c->arg = arg;
	if (pst_pool_submit(s->pool, change_work, change_done, c, &err) == -1) {
		free(c);
		return -1;
	}
	return 0;
}

/*
 * Life.
 */

struct scheduler *
scheduler_new(struct event_base *base, struct config *cfg,
    struct pst_spool *spool, struct pst_pool *pool)
{
	struct scheduler *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->tsize = TABLE_FIRST;
	if ((s->table = calloc(s->tsize, sizeof(*s->table))) == NULL ||
	    (s->timer = evtimer_new(base, sched_timer, s)) == NULL ||
	    (s->soon_timer = evtimer_new(base, soon_timer_cb, s)) == NULL) {
		if (s->timer != NULL)
			event_free(s->timer);
		free(s->table);
		free(s);
		return NULL;
	}
	s->base = base;
	s->cfg = config_ref(cfg);
	s->spool = spool;
	s->pool = pool;
	s->inotify_fd = -1;
	return s;
}

static int
load_one(const struct pst_spool_brief *b, void *arg)
{
	struct scheduler *s = arg;

	sched_insert(s, b->id, b->next_attempt, b->arrival, b->held);
	return 0;
}

int
scheduler_start(struct scheduler *s)
{
	static const struct timeval maint_every = { MAINT_EVERY_S, 0 };
	struct timespec t0, t1;
	struct pst_err err;
	long ms;

	/* Watch first: a drop during the scan is then seen one way or both. */
	if (watch_queue(s) == -1)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (pst_spool_scan_brief(s->spool, load_one, s, &err) == -1) {
		log_error("event=start-failed reason=%s", qs(err.text));
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000000;
	log_info("event=queue-loaded messages=%zu held=%zu ms=%ld", s->count,
	    s->held, ms);
	s->maint_timer = event_new(s->base, -1, EV_PERSIST, maint_timer_cb, s);
	if (s->maint_timer == NULL || event_add(s->maint_timer,
	    &maint_every) == -1)
		return -1;
	sched_kick(s);
	return 0;
}

void
scheduler_add(struct scheduler *s, const struct pst_spool_env *env)
{
	sched_add_id(s, env->id, env->arrival);
}

void
scheduler_set_config(struct scheduler *s, struct config *cfg)
{
	config_unref(s->cfg);
	s->cfg = config_ref(cfg);
	s->warned_no_upstream = false;
	sched_kick(s);
}

int
scheduler_flush(struct scheduler *s, const char *id, size_t *due,
    const char **why)
{
	struct qent *e;
	size_t i;

	*due = 0;
	if (id != NULL) {
		if ((e = index_find(s, id)) == NULL) {
			*why = "no such message";
			return -1;
		}
		if (e->held) {
			*why = "the message is held (release it first)";
			return -1;
		}
		/*
		 * Out of the heap it is being delivered, or waits a moment
		 * for its lock: due either way.
		 */
		e->next = 0;
		if (e->heap != NOHEAP)
			heap_up(s, e->heap);
		*due = 1;
	} else {
		for (i = 0; i < s->hlen; i++)
			s->heap[i]->next = 0;
		/* All equal now but for arrival: rebuild in place. */
		for (i = s->hlen / 2 + 1; i-- > 0;)
			if (i < s->hlen)
				heap_down(s, i);
		*due = s->hlen;
	}
	/* A flush also means "try the upstreams again now". */
	for (i = 0; i < s->nups; i++)
		breaker_retry_now(&s->ups[i]->br, time(NULL));
	sched_kick(s);
	return 0;
}

void
scheduler_stop(struct scheduler *s, void (*done)(void *), void *arg)
{
	s->stopping = true;
	s->stopped = done;
	s->stopped_arg = arg;
	evtimer_del(s->timer);
	if (s->maint_timer != NULL)
		event_del(s->maint_timer);
	if (s->ndeliveries == 0 && done != NULL)
		done(arg);
}

void
scheduler_abort(struct scheduler *s)
{
	deliver_abort_all(s);
}

void
scheduler_counts(const struct scheduler *s, size_t *total, size_t *due,
    size_t *held, size_t *busy)
{
	time_t now = time(NULL);
	size_t i, n = 0;

	for (i = 0; i < s->hlen; i++)
		if (s->heap[i]->next <= now)
			n++;
	*total = s->count;
	*due = n;
	*held = s->held;
	*busy = s->busy;
}

time_t
scheduler_oldest(const struct scheduler *s)
{
	const struct qent *e;
	time_t oldest = 0;
	size_t i;

	for (i = 0; i < s->tsize; i++)
		for (e = s->table[i]; e != NULL; e = e->hnext)
			if (oldest == 0 || e->arrival < oldest)
				oldest = e->arrival;
	return oldest;
}

unsigned long
scheduler_bounces(const struct scheduler *s)
{
	return s->bounces;
}

struct config *
scheduler_config(const struct scheduler *s)
{
	return s->cfg;
}

void
scheduler_free(struct scheduler *s)
{
	struct qent *e, *next;
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->tsize; i++)
		for (e = s->table[i]; e != NULL; e = next) {
			next = e->hnext;
			free(e);
		}
	for (i = 0; i < s->nups; i++)
		free(s->ups[i]);
	free(s->ups);
	free(s->route);
	free(s->table);
	free(s->heap);
	if (s->ev_inotify != NULL)
		event_free(s->ev_inotify);
	if (s->inotify_fd != -1)
		close(s->inotify_fd);
	event_free(s->timer);
	event_free(s->soon_timer);
	if (s->maint_timer != NULL)
		event_free(s->maint_timer);
	config_unref(s->cfg);
	free(s);
}
