/*
 * queue.h: "postern queue", the operator's view of the spool, and the
 * listing that "mailq" and "sendmail -bp" print too.
 *
 *   postern queue [-c FILE] [--json] list
 *   postern queue [-c FILE] [--json] show ID
 *   postern queue [-c FILE] [--json] delete|hold|release ID
 *
 * Reading (list, show) takes no lock: envelopes are replaced whole, so a
 * reader always sees one complete version.  Changing a message (delete,
 * hold, release) takes its per-message lock, the one posternd holds
 * while it records a delivery, so the tool and the daemon never write
 * the same envelope at once; a message locked elsewhere is waited for a
 * few seconds, then refused with a message saying so.  None of it needs
 * the daemon lock: every command works whether posternd runs or not.
 *
 * Output goes to stdout, one-line errors ("postern queue: ...") to
 * stderr.  Exit status: 0 done, 1 failed (bad id, no such message,
 * locked, spool trouble), 2 usage.
 */
#ifndef POSTERN_QUEUE_H
#define POSTERN_QUEUE_H

#include <stdbool.h>

struct config;

/* How long delete, hold and release wait for a message's lock. */
#define QUEUE_LOCK_WAIT_MS	5000

/*
 * queue_command()
 * "postern queue ...": 'argv[0]' is "queue", the rest its options,
 * action and id.  Returns the exit status.
 */
int	queue_command(int argc, char *argv[]);

/*
 * queue_list()
 * Prints every message of cfg's spool, oldest first: a table, or with
 * 'json' one JSON array.  Messages whose envelope cannot be read are
 * reported on stderr and skipped.  A spool directory that does not exist
 * yet is an empty queue.  Error messages start with "'prog': ".  Returns
 * 0, or -1 when the spool cannot be read (the message was printed).
 */
int	queue_list(const struct config *cfg, bool json, const char *prog);

#endif /* POSTERN_QUEUE_H */
