/*
 * server.h: the SMTP server side of posternd.
 *
 * The server takes accepted connections from the listeners, applies the
 * allow list and the session limit, and runs one ESMTP session per client
 * (RFC 5321 with PIPELINING, SIZE, 8BITMIME, SMTPUTF8,
 * ENHANCEDSTATUSCODES and DSN).  Each message is written to the spool and
 * committed (fsync, rename, directory fsync) before the 250 that
 * acknowledges it is sent; a message that is not acknowledged leaves
 * nothing in the queue.
 */
#ifndef POSTERN_SERVER_H
#define POSTERN_SERVER_H

#include <sys/socket.h>

#include <stdbool.h>

#include "net/sockaddr.h"

struct config;
struct event_base;
struct pst_pool;
struct pst_spool;
struct pst_spool_env;
struct server;

/* Called on the loop for every message committed (the envelope is lent). */
typedef void (*server_commit_cb)(const struct pst_spool_env *env, void *arg);

/*
 * server_new()
 * A server that commits into 'spool' through 'pool', configured by 'cfg'
 * (a reference is taken).  NULL when memory is short.
 */
struct server	*server_new(struct event_base *base, struct config *cfg,
		    struct pst_spool *spool, struct pst_pool *pool);

/*
 * server_set_commit_cb()
 * Who hears of committed messages (the scheduler).
 */
void		 server_set_commit_cb(struct server *srv, server_commit_cb cb,
		    void *arg);

/*
 * server_set_config()
 * New sessions use 'cfg' (a reference is taken); sessions running keep
 * the configuration they started with.
 */
void		 server_set_config(struct server *srv, struct config *cfg);

/*
 * server_accept()
 * Takes over the connected socket 'fd' (a listener's callback).
 */
void		 server_accept(struct server *srv, int fd,
		    const struct sockaddr *peer, socklen_t peerlen,
		    const struct pst_endpoint *ep);

/*
 * server_shutdown()
 * Ends every session: idle ones get 421 at once; one whose message is
 * being committed gets its answer first.  'drained' runs (from the loop)
 * when no session is left.  New connections are refused with 421.
 */
void		 server_shutdown(struct server *srv, void (*drained)(void *),
		    void *arg);

/*
 * server_sessions()
 * Sessions running now.
 */
unsigned	 server_sessions(const struct server *srv);

/*
 * server_counts()
 * Messages accepted, and sessions refused (allow list, limit) since start.
 */
void		 server_counts(const struct server *srv, unsigned long *accepted,
		    unsigned long *refused, unsigned long *sessions);

/*
 * server_free()
 * Frees the server; every session must be gone (after 'drained').
 */
void		 server_free(struct server *srv);

#endif /* POSTERN_SERVER_H */
