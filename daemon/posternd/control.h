/*
 * control.h: posternd's control socket (the protocol is in
 * shared/ctlclient.h, the tools' side), and GET /metrics over HTTP.
 */
#ifndef POSTERN_CONTROL_H
#define POSTERN_CONTROL_H

#include <stddef.h>
#include <time.h>

#include "net/sockaddr.h"
#include "shared/ctlclient.h"

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

/*
 * control_open()
 * Creates the socket under 'spool_dir' (replacing a stale one) and starts
 * serving it on 'base'.  NULL after logging when it cannot.
 */
struct control	*control_open(struct event_base *base, const char *spool_dir,
		    const struct control_hooks *hooks);

/*
 * control_http_open()
 * Serves GET /metrics over HTTP/1.0 on the TCP endpoint 'ep' (metrics_listen)
 * as well.  Returns 0, or -1 after logging.
 */
int		 control_http_open(struct control *c, struct event_base *base,
		    const struct pst_endpoint *ep);

/* control_close(): stops serving and removes the socket. */
void		 control_close(struct control *c);

#endif /* POSTERN_CONTROL_H */
