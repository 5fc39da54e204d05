/*
 * negotiate.h: reach an upstream in the security mode the config asks for,
 * finding the TLS mode by itself where allowed.
 *
 *   none      plain SMTP, never TLS
 *   starttls  plain connect, STARTTLS required (fail if not offered)
 *   tls       implicit TLS from the first byte (port 465 style)
 *   tls-auto  implicit TLS or STARTTLS, whichever the server speaks
 *   auto      implicit TLS or STARTTLS when the server speaks it, plain
 *             only when it offers no TLS at all (opportunistic); STARTTLS
 *             offered and then refused fails, as in every mode
 *
 * In tls-auto and auto the first attempt connects in plain and waits for
 * the 220 for the short greeting timeout.  A greeting means a plain-start
 * server; none in time means a server that waits for a TLS ClientHello,
 * so the next attempt reconnects with implicit TLS.  A TLS handshake
 * answered in plain text fails at once and means a plain-start server
 * that was only slow to greet: the last attempt connects in plain again
 * and waits as long as for any command.  The mode that worked is reported
 * so the caller can remember it; a remembered mode is tried first, and a
 * failure in it starts the cycle again.
 *
 * Fixed modes (none, starttls, tls) wait for the greeting as long as for
 * any command: there is nothing to learn from a slow server.
 *
 * Dial failures (resolve, bind, connect, proxy) end the negotiation at
 * once: another TLS mode would not reach the server either.
 */
#ifndef PST_NEGOTIATE_H
#define PST_NEGOTIATE_H

#include <stdbool.h>
#include <stdint.h>

#include "client/client.h"
#include "net/dial.h"

struct event_base;
struct pst_negotiate;
struct pst_pool;

enum pst_secmode {
	PST_SEC_NONE = 0,
	PST_SEC_STARTTLS,
	PST_SEC_TLS,
	PST_SEC_TLS_AUTO,
	PST_SEC_AUTO,
};

/* How a server starts a session: what auto-negotiation learns. */
enum pst_learned {
	PST_LEARNED_UNKNOWN = 0,
	PST_LEARNED_PLAIN,	/* greets in plain (then STARTTLS or not) */
	PST_LEARNED_IMPLICIT,	/* expects TLS from the first byte */
};

struct pst_negotiate_params {
	struct pst_dial_plan		 plan;
	enum pst_secmode		 mode;
	enum pst_learned		 remembered;
	uint32_t			 greeting_ms;	/* the short wait */
	/* The session: 'tls' is set per attempt, the rest used as is. */
	struct pst_client_params	 client;
};

/* What happened, valid during the callback. */
struct pst_negotiate_result {
	enum pst_learned	 learned;	/* what worked */
	bool			 from_memory;	/* first try, remembered */
	unsigned		 attempts;	/* connections made */
	struct pst_dial_info	 dial;		/* of the last attempt */
	char			 path[128];	/* "plain(timeout) -> tls" */
};

/*
 * Called once, from the loop.  Success: 'client' is ready (set-up and
 * AUTH done) and the caller's: install callbacks with
 * pst_client_set_callbacks() before returning.  Failure: 'client' is NULL
 * and 'err' says why (the last attempt's error).
 */
typedef void	(*pst_negotiate_cb)(struct pst_client *client,
		    const struct pst_negotiate_result *res,
		    const struct pst_err *err, void *arg);

/*
 * pst_negotiate_mode_parse()
 * "none", "starttls", "tls", "tls-auto", "auto" -> mode.  -1 otherwise.
 */
int		 pst_negotiate_mode_parse(const char *s);
const char	*pst_negotiate_mode_name(enum pst_secmode mode);
const char	*pst_learned_name(enum pst_learned learned);

/*
 * pst_negotiate_start()
 * Starts reaching the upstream.  'params' is copied (the pointers in its
 * client part must outlive the session).  Returns NULL with 'err' only
 * for local trouble (memory, a plan the dialer refuses).
 */
struct pst_negotiate *pst_negotiate_start(struct event_base *base,
		    struct pst_pool *pool,
		    const struct pst_negotiate_params *params,
		    pst_negotiate_cb cb, void *arg, struct pst_err *err);

/*
 * pst_negotiate_cancel()
 * Stops before the callback; it never fires.  Not from inside it.
 */
void		 pst_negotiate_cancel(struct pst_negotiate *n);

#endif /* PST_NEGOTIATE_H */
