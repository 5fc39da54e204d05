/*
 * deliver.h: one delivery connection, and the policy that turns what the
 * upstream said into spool actions.
 *
 * A delivery takes a due message from the scheduler, locks it, connects
 * to the upstream (failing over to the next ones in order when the
 * connection cannot be made), sends it, records each recipient's result
 * in the envelope, bounces what failed for good, and removes the message
 * once nothing is left to do, or schedules the next attempt.  Then it
 * takes the next due message on the same connection, up to
 * queue.messages_per_connection, and quits.
 *
 * The policy, in one place, deliver_verdict() (Postfix's smtp_trouble.c
 * idea):
 *   2xx for a recipient         delivered
 *   5xx for a recipient or the
 *   message, in a transaction   failed: bounce (NOTIFY permitting)
 *   SIZE or SMTPUTF8 missing    failed when no upstream can take it, else
 *   from every EHLO             deferred (another upstream might)
 *   4xx, timeouts, connection,
 *   greeting, EHLO, TLS, AUTH,
 *   proxy and our own trouble   deferred: next attempt from queue.retry
 *   queue.max_age passed        what is still deferred fails: bounce
 * A message is removed from the spool only after the upstream's final
 * 250 for every recipient (or a final failure); a crash between that 250
 * and the removal delivers it again, never loses it.
 */
#ifndef POSTERN_DELIVER_H
#define POSTERN_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "breaker.h"
#include "client/negotiate.h"
#include "common/err.h"
#include "spool/spool.h"

struct config;
struct event_base;
struct pst_pool;
struct pst_spool;

/*
 * Per-upstream state, kept across reloads by name: owned by the
 * scheduler, read and counted in by deliveries.
 */
struct upstate {
	char		 name[128];
	unsigned	 conns;		/* deliveries connected or connecting */
	struct breaker	 br;		/* connection failures */
	enum pst_learned learned;	/* TLS mode that worked */
	const char	*mode;		/* its last session's protection
					   (pst_client_mode_name()); NULL
					   before the first */
	size_t		 proxy;		/* proxy of the list to use next */
	struct rate	 rate;		/* queue.rate of the upstream */
	time_t		 last_ok;
	time_t		 last_fail;
	char		 last_error[256];
	/* What its last EHLO said it can take. */
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

/* The scheduler's entry for a message: a handle here, never opened. */
struct qent;

/* A message handed to a delivery. */
struct delivery_msg {
	struct qent	*q;
	char		 id[PST_SPOOL_ID_LEN + 1];
};

/* What became of a message handed to a delivery. */
enum delivery_fate {
	DELIVERY_LATER = 0,	/* try again at 'next' */
	DELIVERY_HELD,		/* it is on hold ('next' for after release) */
	DELIVERY_GONE,		/* it left the queue */
	DELIVERY_SOON,		/* it could not start for a moment's reason
				   (its commit is still finishing): again in
				   a moment, not at the next second */
};

/*
 * What a delivery works with.  The configuration is referenced for the
 * delivery's life; 'ups' holds the state of each of cfg->upstreams, in
 * order (NULL where it could not be had), and is copied.
 */
struct delivery_env {
	struct event_base	*base;
	struct pst_pool		*pool;
	struct pst_spool	*spool;
	struct config		*cfg;
	struct upstate *const	*ups;
};

/*
 * What a delivery tells its owner (the scheduler), each with the 'arg'
 * given to delivery_start(), on the loop.
 */
struct delivery_cbs {
	/* The next due message for this connection to 'up' (now the
	   delivery's), or false when there is none. */
	bool	(*next)(void *arg, struct upstate *up, struct delivery_msg *m);
	/* The delivery is done with 'q' ('next' for DELIVERY_LATER and
	   DELIVERY_HELD). */
	void	(*done)(void *arg, struct qent *q, enum delivery_fate fate,
		    time_t next);
	/* Bounce 'id', arrived at 'arrival', is committed to the queue. */
	void	(*bounced)(void *arg, const char *id, time_t arrival);
	/* A connection to 'up' worked (err NULL; 'learned' the TLS mode that
	   did) or failed: for its breaker and counters. */
	void	(*conn_result)(void *arg, struct upstate *up,
		    const struct pst_err *err, enum pst_learned learned);
	/* The delivery that held a connection slot of 'up' ended and freed
	   itself; 'connected' when it fed a connection result. */
	void	(*ended)(void *arg, struct upstate *up, bool connected);
};

/*
 * delivery_start()
 * Starts delivering 'm' through env->cfg->upstreams[upi] (whose state
 * env->ups[upi] holds a connection slot for the delivery's life).
 * Returns 0, or -1 when memory is short (nothing was called back).
 */
int	delivery_start(const struct delivery_env *env,
	    const struct delivery_cbs *cbs, void *arg, size_t upi,
	    const struct delivery_msg *m);

/*
 * deliver_abort_all()
 * Drops the connection of every delivery started with 'arg' now
 * (shutdown after the grace period).  Messages keep their last saved
 * state.
 */
void	deliver_abort_all(const void *arg);

/*
 * The policy.
 */

/* Where the error of a message's attempt comes from. */
enum verdict_source {
	VERDICT_ANSWER = 0,	/* the upstream's reply in a transaction */
	VERDICT_SESSION,	/* no usable session: connecting, proxy, TLS,
				   greeting, EHLO, AUTH, or the session
				   failed on the way */
	VERDICT_LOCAL,		/* ours: memory, disk, timeouts.total */
	VERDICT_UNABLE,		/* the upstream's EHLO rules the message
				   out (SIZE, SMTPUTF8) */
};

/* One recipient's attempt, as deliver_verdict() sees it. */
struct verdict_in {
	const struct pst_err	*rcpt;	/* its answer (cls PST_OK: accepted
					   at RCPT); NULL: none */
	bool			 taken;	/* an earlier transaction on this
					   connection delivered it */
	const struct pst_err	*msg;	/* the message's outcome (cls PST_OK:
					   accepted) */
	enum verdict_source	 source;	/* of 'msg' */
	bool			 nobody;	/* VERDICT_UNABLE: every upstream's
					   EHLO rules the message out */
	bool			 others;	/* more than one upstream */
};

/*
 * deliver_verdict()
 * What one recipient's attempt comes to: delivered, deferred or failed,
 * with '*why' the error to record and report (cleared when delivered).
 * With 'rcpt' NULL, '*why' is the message's error as it is recorded.
 * Pure: every reclassification of an error happens here.
 */
enum pst_spool_rcpt_state deliver_verdict(const struct verdict_in *in,
	    struct pst_err *why);

#endif /* POSTERN_DELIVER_H */
