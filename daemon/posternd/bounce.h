/*
 * bounce.h: delivery status notifications (RFC 3464): mail that failed,
 * and mail relayed to an upstream without DSN when success was asked for.
 *
 * A bounce goes to the envelope sender with the null reverse path
 * (MAIL FROM:<>), as a multipart/report with three parts: a text for
 * people, the message/delivery-status for programs (one block per failed
 * recipient with its Status and the upstream's Diagnostic-Code), and the
 * original message (RET=FULL or unspecified; only its header with
 * RET=HDRS or when it is larger than BOUNCE_FULL_MAX).  Mail from <> is
 * never bounced (RFC 5321 §4.5.5): the caller logs it instead.
 */
#ifndef POSTERN_BOUNCE_H
#define POSTERN_BOUNCE_H

#include <stdbool.h>
#include <time.h>

#include "spool/spool.h"

struct config;
struct pst_err;

#define BOUNCE_FULL_MAX	(256 * 1024)	/* bytes of original returned */

/* What a report says of one recipient. */
enum bounce_action {
	BOUNCE_NONE = 0,	/* not in this report */
	BOUNCE_FAILED,		/* Action: failed */
	BOUNCE_RELAYED,		/* Action: relayed: delivered to an upstream
				   that does not do DSN, NOTIFY=SUCCESS asked */
};

/*
 * bounce_wanted()
 * Whether recipient 'r' asked to hear of its failure: no NOTIFY, or
 * NOTIFY with FAILURE (RFC 3461 §4.1).
 */
bool	bounce_wanted(const struct pst_spool_rcpt *r);

/*
 * bounce_relay_wanted()
 * Whether recipient 'r' asked to hear of its delivery (NOTIFY=SUCCESS):
 * when the upstream does not take DSN parameters, postern reports
 * "relayed" itself (RFC 3461 §6.2.4).
 */
bool	bounce_relay_wanted(const struct pst_spool_rcpt *r);

/*
 * bounce_create()
 * Writes and commits (blocking: run it on the pool) a report to
 * env->sender for the recipients of 'env' whose 'action' is set,
 * quoting the message whose body is the env->size bytes at 'body_off'
 * of 'body_fd' ('reporter' names
 * the upstream that refused, or NULL; 'utf8': the message needs
 * SMTPUTF8, and the report is an internationalized one, RFC 6533).  On
 * success the new id is in 'id' and its arrival time in '*arrival'.  Returns 0 or -1 with 'err'.
 */
int	bounce_create(struct pst_spool *spool, const struct config *cfg,
	    const struct pst_spool_env *env, const unsigned char *action,
	    const char *reporter, int body_fd, uint64_t body_off, bool utf8,
	    char id[PST_SPOOL_ID_LEN + 1], time_t *arrival,
	    struct pst_err *err);

#endif /* POSTERN_BOUNCE_H */
