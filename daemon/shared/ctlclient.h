/*
 * ctlclient.h: the tools' side of posternd's control socket.
 *
 * The socket is SPOOL/control, a unix socket the daemon creates at start
 * with mode 0660: its owner and group (the spool's) may talk to it, which
 * is who may touch the spool anyway.  The protocol is one request line,
 * then the daemon's answer, then the daemon closes:
 *
 *   flush [ID]      make ID (or every deferred message) due now
 *                   -> "ok N" (messages made due)
 *   status          -> one JSON object: uptime, queue counts, upstreams
 *   status text     -> the same, for people
 *   metrics         -> the OpenMetrics exposition
 *   reload          -> "ok", or the configuration errors
 *   delete ID, hold ID, release ID
 *                   the operator's changes ("postern queue"), made by
 *                   the daemon so that the spool has one writer
 *                   -> "ok"; "error missing" (no such message), "error
 *                   locked" (being delivered right now: try again)
 *
 * Errors are a line "error TEXT".  The daemon's side is
 * posternd/control.c.
 */
#ifndef POSTERN_CTLCLIENT_H
#define POSTERN_CTLCLIENT_H

#include <stddef.h>

#define CONTROL_SOCKET_NAME	"control"
#define CONTROL_LINE_MAX	256
#define CONTROL_REPLY_MAX	(256 * 1024)

/*
 * control_request()
 * Sends 'request' to the daemon of 'spool_dir' and reads the whole answer
 * into a new string '*reply' (the caller frees it).  Returns 0, or -1 with
 * a message in 'why' ("posternd is not running").
 */
int		 control_request(const char *spool_dir, const char *request,
		    char **reply, char *why, size_t whylen);

/*
 * control_hint_others()
 * For "posternd is not running on spool_dir": the posternd processes
 * running on other spools, one "\n  posternd pid N runs on spool X" line
 * each, noting when 'config_path' (may be NULL) changed after that
 * daemon started.  "" when there are none.
 */
void		 control_hint_others(const char *spool_dir,
		    const char *config_path, char *hint, size_t len);

#endif /* POSTERN_CTLCLIENT_H */
