/*
 * scheduler.h: what to deliver when, and through which upstream.
 *
 * The scheduler keeps an index of the queue in memory (id, next attempt,
 * held, in delivery), rebuilt from the spool at start.  Messages come in
 * from the server's commits and from files appearing in the queue
 * (sendmail drops, seen through inotify), so nothing polls.  Due messages
 * are handed to deliveries (deliver.c, with their environment and
 * callbacks): at most queue.concurrency connections per upstream, each
 * carrying up to queue.messages_per_connection messages.  Upstreams are
 * tried in order; one whose connections keep failing is skipped for a
 * while (circuit breaker, breaker.c) and then tried again with a single
 * probe delivery.
 */
#ifndef POSTERN_SCHEDULER_H
#define POSTERN_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "deliver.h"	/* struct upstate */

struct config;
struct event_base;
struct pst_pool;
struct pst_spool;
struct pst_spool_env;
struct scheduler;

/*
 * scheduler_new()
 * A scheduler delivering from 'spool' with 'cfg' (a reference is taken).
 * NULL when memory is short.
 */
struct scheduler *scheduler_new(struct event_base *base, struct config *cfg,
		    struct pst_spool *spool, struct pst_pool *pool);

/*
 * scheduler_start()
 * Reads every envelope of the queue into the index (blocking: start-up
 * only), starts watching the queue directories and schedules what is due.
 * Returns 0, or -1 after logging.
 */
int		 scheduler_start(struct scheduler *s);

/*
 * scheduler_add()
 * A message was committed (by the server): index it, due now.
 */
void		 scheduler_add(struct scheduler *s,
		    const struct pst_spool_env *env);

/*
 * scheduler_set_config()
 * Queued mail is routed by 'cfg' from now on; deliveries running finish
 * with the configuration they started with.
 */
void		 scheduler_set_config(struct scheduler *s, struct config *cfg);

/*
 * scheduler_flush()
 * Makes message 'id' (every waiting message when NULL) due now and tells
 * the upstreams' breakers to try again.  Sets '*due' to the messages due
 * now (as scheduler_counts() will count them, those being delivered
 * apart) and returns 0; -1 with '*why' when 'id' is not queued or is
 * held.
 */
int		 scheduler_flush(struct scheduler *s, const char *id,
		    size_t *due, const char **why);

/*
 * scheduler_change()
 * The operator's "postern queue delete|hold|release ID", through the
 * control socket: changes message 'id' in the spool on the pool (never
 * waiting for a lock) and follows the change in the index; then 'cb'
 * runs with err NULL, or the error (sys_errno ENOENT: no such message,
 * EWOULDBLOCK: being delivered right now).  Returns 0, or -1 when the
 * job cannot start (then 'cb' does not run).
 */
enum sched_change {
	SCHED_DELETE = 0,
	SCHED_HOLD,
	SCHED_RELEASE,
};

typedef void (*sched_change_cb)(void *arg, const struct pst_err *err);

int		 scheduler_change(struct scheduler *s, const char *id,
		    enum sched_change what, sched_change_cb cb, void *arg);

/*
 * scheduler_stop()
 * Starts no more deliveries; 'done' runs when the last running one has
 * ended (at once when none runs).
 */
void		 scheduler_stop(struct scheduler *s, void (*done)(void *),
		    void *arg);

/*
 * scheduler_abort()
 * Drops the connections of running deliveries (after the grace period):
 * their messages stay queued as they were and are tried again at the
 * next start.
 */
void		 scheduler_abort(struct scheduler *s);

/*
 * scheduler_counts()
 * Messages in the index, due now, held, in delivery.
 */
void		 scheduler_counts(const struct scheduler *s, size_t *total,
		    size_t *due, size_t *held, size_t *busy);

/*
 * scheduler_oldest()
 * Arrival time of the oldest message in the queue, 0 when it is empty.
 */
time_t		 scheduler_oldest(const struct scheduler *s);

/*
 * scheduler_bounces()
 * Bounces written since start.
 */
unsigned long	 scheduler_bounces(const struct scheduler *s);

/*
 * scheduler_upstate()
 * The state of upstream 'name' (created when unknown).
 */
struct upstate	*scheduler_upstate(struct scheduler *s, const char *name);

/*
 * scheduler_free()
 * Frees the scheduler; no delivery may run (after 'done', and after the
 * pool was freed).
 */
void		 scheduler_free(struct scheduler *s);

/* The configuration queued mail is routed by. */
struct config	*scheduler_config(const struct scheduler *s);

#endif /* POSTERN_SCHEDULER_H */
