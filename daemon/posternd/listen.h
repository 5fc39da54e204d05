/*
 * listen.h: the daemon's listening sockets.
 *
 * Sockets are bound in two steps so that start-up fails where the user can
 * see it: listeners_open() binds every `listen` entry before the daemon
 * detaches (a port in use is reported on the terminal), and
 * listeners_start() attaches them to the event loop afterwards.
 *
 * TCP sockets get SO_REUSEADDR, IPv6 ones IPV6_V6ONLY (so that "[::]:25"
 * and "0.0.0.0:25" can coexist).  A unix socket replaces a stale socket
 * file of the same name (never any other kind of file) and is made
 * world-writable: on a relay for this host, its access is what loopback
 * TCP already grants; restrict the directory to restrict it.
 *
 * An IPv6 entry on a host without IPv6 (EAFNOSUPPORT, EADDRNOTAVAIL) is
 * skipped with a warning as long as another listener is up; every other
 * failure is fatal.
 */
#ifndef POSTERN_LISTEN_H
#define POSTERN_LISTEN_H

#include <sys/socket.h>

#include <stddef.h>

#include "net/sockaddr.h"

struct config;
struct event_base;
struct listeners;

/*
 * Called on the loop for each accepted client, with the non-blocking
 * connected socket (owned by the callee from now on), the peer's address
 * and the endpoint it came in on.
 */
typedef void (*listen_accept_cb)(int fd, const struct sockaddr *peer,
    socklen_t peerlen, const struct pst_endpoint *ep, void *arg);

/*
 * listeners_open()
 * Binds and listens on every entry of cfg->listen.  Returns NULL after
 * logging each failure.
 */
struct listeners *listeners_open(const struct config *cfg);

/*
 * listeners_start()
 * Starts accepting on 'base'; 'cb' runs for every new client.
 * Returns 0, or -1 after logging.
 */
int	listeners_start(struct listeners *ls, struct event_base *base,
	    listen_accept_cb cb, void *arg);

/*
 * listeners_free()
 * Closes every socket and removes the unix socket files it created.
 */
void	listeners_free(struct listeners *ls);

/*
 * listeners_describe()
 * "127.0.0.1:25,[::1]:25" into 'buf', for the ready log line.
 */
char	*listeners_describe(const struct listeners *ls, char *buf,
	    size_t len);

#endif /* POSTERN_LISTEN_H */
