/*
 * scheduler.h: what to deliver when, and through which upstream.
 *
 * The scheduler keeps an index of the queue in memory (id, next attempt,
 * held, in delivery), rebuilt from the spool at start.  Messages come in
 * from the server's commits and from files appearing in the queue
 * (sendmail drops, seen through inotify), so nothing polls.  Due messages
 * are handed to deliveries (deliver.c): at most queue.concurrency
 * connections per upstream, each carrying up to
 * queue.messages_per_connection messages.  Upstreams are tried in order;
 * one whose connections keep failing is skipped for a while (circuit
 * breaker) and then tried again with a single probe delivery.
 */
#ifndef POSTERN_SCHEDULER_H
#define POSTERN_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "client/negotiate.h"

struct config;
struct config_upstream;
struct event_base;
struct pst_pool;
struct pst_spool;
struct pst_spool_env;
struct scheduler;

/* Per-upstream state, kept across reloads by name. */
struct upstate {
	char		 name[128];
	unsigned	 conns;		/* deliveries connected or connecting */
	unsigned	 failures;	/* consecutive connection failures */
	time_t		 open_until;	/* breaker open until then */
	unsigned	 opened;	/* times opened in a row */
	bool		 probing;	/* a half-open probe is running */
	enum pst_learned learned;	/* TLS mode that worked */
	size_t		 proxy;		/* proxy of the list to use next */
	double		 tokens;	/* rate limit bucket */
	struct timespec	 refilled;
	time_t		 last_ok;
	time_t		 last_fail;
	char		 last_error[256];
	/* What its last EHLO said it can take (deliver.c). */
	bool		 caps_known;
	bool		 smtputf8;	/* SMTPUTF8 offered */
	uint64_t	 size_max;	/* SIZE limit, 0: none */
	/* Counters since start, per recipient or per connection. */
	unsigned long	 delivered;
	unsigned long	 deferred;
	unsigned long	 failed;
	unsigned long	 conn_ok;
	unsigned long	 conn_failed[PST_STAGE__COUNT];	/* by stage */
};

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
 * Makes message 'id' (every deferred message when NULL) due now.
 * Returns the number of messages made due.
 */
size_t		 scheduler_flush(struct scheduler *s, const char *id);

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
void		 scheduler_count_bounce(struct scheduler *s);

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

/*
 * For deliver.c.
 */
struct delivery;
struct qent;

const char	*qent_id(const struct qent *e);

/*
 * scheduler_next()
 * The next due message for delivery 'd' (marked busy), or NULL.
 */
struct qent	*scheduler_next(struct scheduler *s, struct delivery *d,
		    struct upstate *up);

/*
 * scheduler_done()
 * Delivery of 'e' ended: 'next' is when to try again (0: it left the
 * queue), 'held' its held flag.
 */
void		 scheduler_done(struct scheduler *s, struct qent *e,
		    time_t next, bool held, bool gone);

/*
 * scheduler_retry_soon()
 * Delivery of 'e' could not start for a moment's reason (its commit is
 * still finishing): try again in about 100 ms, not at the next second.
 */
void		 scheduler_retry_soon(struct scheduler *s, struct qent *e);

/*
 * scheduler_delivery_end()
 * Delivery 'd' has ended and freed itself.
 */
void		 scheduler_delivery_end(struct scheduler *s,
		    struct delivery *d, struct upstate *up);

/*
 * scheduler_conn_result()
 * A connection to 'up' succeeded (err NULL) or failed: feeds the breaker.
 */
void		 scheduler_conn_result(struct scheduler *s, struct upstate *up,
		    const struct pst_err *err, enum pst_learned learned);

/* The scheduler's bound objects, for deliveries. */
struct event_base *scheduler_base(const struct scheduler *s);
struct pst_pool	*scheduler_pool(const struct scheduler *s);
struct pst_spool *scheduler_spool(const struct scheduler *s);
struct config	*scheduler_config(const struct scheduler *s);

/*
 * scheduler_expect_write()
 * The daemon is about to rewrite the envelope of 'e' itself: the inotify
 * event that follows is not news.
 */
void		 scheduler_expect_write(struct scheduler *s, struct qent *e);

/* Indexes a message created by the daemon itself (a bounce). */
void		 scheduler_add_id(struct scheduler *s, const char *id,
		    time_t arrival);

#endif /* POSTERN_SCHEDULER_H */
