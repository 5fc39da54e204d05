/*
 * control.h: the daemon's control socket, and the client side the tools
 * use.
 *
 * The socket is SPOOL/control, a unix socket the daemon creates at start
 * with mode 0660: its owner and group (the spool's) may talk to it, which
 * is who may touch the spool anyway.  The protocol is one request line,
 * then the daemon's answer, then the daemon closes:
 *
 *   flush [ID]      make ID (or every deferred message) due now
 *                   -> "ok N" (messages made due)
 *   status          -> one JSON object: uptime, queue counts, upstreams
 *
 * Errors are a line "error TEXT".
 */
#ifndef POSTERN_CONTROL_H
#define POSTERN_CONTROL_H

#include <stddef.h>
#include <time.h>

#include "net/sockaddr.h"

struct event_base;
struct evbuffer;
struct scheduler;
struct server;
struct control;

/* What the control socket reaches into. */
struct control_hooks {
	struct scheduler	*scheduler;
	struct server		*server;
	/* Reloads the configuration; -1 with the errors appended to 'out'. */
	int			(*reload)(void *arg, struct evbuffer *out);
	void			*arg;
};

#define CONTROL_SOCKET_NAME	"control"
#define CONTROL_LINE_MAX	256
#define CONTROL_REPLY_MAX	(256 * 1024)

/*
 * control_open()
 * Creates the socket under 'spool_dir' (replacing a stale one) and starts
 * serving it on 'base'.  NULL after logging when it cannot.
 */
struct control	*control_open(struct event_base *base, const char *spool_dir,
		    const struct control_hooks *hooks);

/*
 * control_metrics()
 * Appends the OpenMetrics exposition to 'out'.
 */
void		 control_metrics(struct control *c, struct evbuffer *out);

/*
 * control_http_open()
 * Serves GET /metrics over HTTP/1.0 on the TCP endpoint 'ep' (metrics_listen)
 * as well.  Returns 0, or -1 after logging.
 */
int		 control_http_open(struct control *c, struct event_base *base,
		    const struct pst_endpoint *ep);

/* control_close(): stops serving and removes the socket. */
void		 control_close(struct control *c);

/*
 * control_request()
 * The client side: sends 'request' to the daemon of 'spool_dir' and reads
 * the whole answer into a new string '*reply' (the caller frees it).
 * Returns 0, or -1 with a message in 'why' ("posternd is not running").
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

#endif /* POSTERN_CONTROL_H */
