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
 * The policy, in one place (Postfix's smtp_trouble.c idea):
 *   2xx for a recipient         delivered
 *   5xx for a recipient         failed: bounce (NOTIFY permitting)
 *   4xx, timeouts, connection,
 *   TLS, AUTH and proxy trouble deferred: next attempt from queue.retry
 *   queue.max_age passed        what is still deferred fails: bounce
 * A message is removed from the spool only after the upstream's final
 * 250 for every recipient (or a final failure); a crash between that 250
 * and the removal delivers it again, never loses it.
 */
#ifndef POSTERN_DELIVER_H
#define POSTERN_DELIVER_H

struct config_upstream;
struct qent;
struct scheduler;
struct upstate;

/*
 * delivery_start()
 * Starts delivering 'e' through 'u' (whose state is 'up').  Returns 0, or
 * -1 when memory is short (the message stays queued).
 */
int	delivery_start(struct scheduler *s, const struct config_upstream *u,
	    struct upstate *up, struct qent *e);

/*
 * deliver_abort_all()
 * Drops every delivery's connection now (shutdown after the grace
 * period).  Messages keep their last saved state.
 */
void	deliver_abort_all(struct scheduler *s);

#endif /* POSTERN_DELIVER_H */
