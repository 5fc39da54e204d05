/*
 * proxytest.h: helpers for the proxy byte machine suites.
 *
 * Two halves.  The "machine" helpers drive a struct pst_proxy_ops with
 * plain evbuffers, no loop, no socket: begin, feed bytes, look at what it
 * wrote and what it left.  The "fake proxy" is a listener on 127.0.0.1 on
 * the test's own event loop that follows a binary script (expect these
 * exact bytes, send those), so a dial through the real chain runner can
 * be checked end to end, leftover greeting included.
 */
#ifndef POSTERN_PROXYTEST_H
#define POSTERN_PROXYTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "net/dial.h"

struct bufferevent;
struct event_base;
struct evbuffer;
struct evconnlistener;
struct pst_pool;

/* ---- machines --------------------------------------------------------- */

struct pm {
	const struct pst_proxy_ops *ops;
	void			*ctx;
	struct evbuffer		*in;
	struct evbuffer		*out;
	struct pst_err		 err;
};

/* A hop of 'kind' on 127.0.0.1:1080 with these credentials. */
struct pst_hop	 pm_hop(enum pst_hop_kind kind, const char *user,
		    const char *password, bool remote_resolve);
void		 pm_open(struct pm *m, const struct pst_proxy_ops *ops);
void		 pm_close(struct pm *m);
/* begin() into a fresh context; returns its result. */
int		 pm_begin(struct pm *m, const struct pst_hop *hop,
		    const char *host, uint16_t port);
/* Appends 'len' bytes to the input and calls input() once. */
enum pst_step	 pm_feed(struct pm *m, const void *bytes, size_t len);
/* Asserts that the output holds exactly 'len' bytes 'want'; drains it. */
void		 pm_expect_out(struct pm *m, const void *want, size_t len);
/* Asserts that the input holds exactly 'len' bytes 'want'. */
void		 pm_expect_in(struct pm *m, const void *want, size_t len);

/*
 * One exchange: begin() for 'host':'port' through 'hop', then the proxy's
 * bytes 'srv' cut once after 'cut' bytes, then 'tail' (bytes of the next
 * layer) with the second part.  Asserts that the machine writes exactly
 * 'cli' in all, never finishes early, ends with 'want' and, when DONE,
 * leaves exactly 'tail' in the input.  Fills 'm->err'.  'cut' may be 0 or
 * 'srvlen'.
 */
void		 pm_exchange(struct pm *m, const struct pst_hop *hop,
		    const char *host, uint16_t port, const void *cli,
		    size_t clilen, const void *srv, size_t srvlen,
		    const char *tail, size_t cut, enum pst_step want);

/* The same, one byte at a time. */
void		 pm_exchange_bytewise(struct pm *m,
		    const struct pst_hop *hop, const char *host,
		    uint16_t port, const void *cli, size_t clilen,
		    const void *srv, size_t srvlen, enum pst_step want);

/* ---- loop, dial and fake proxy ---------------------------------------- */

extern struct event_base *pt_base;
extern struct pst_pool *pt_pool;

/* Checked fixture: a base, a pool of 2, SIGPIPE ignored. */
void	 pt_setup(void);
void	 pt_teardown(void);
/* Runs the loop until '*flag' is set or 'ms' have passed. */
void	 pt_run_until(const int *flag, int ms);

/* The stand-in resolver: "target.invalid" is 192.0.2.7, others fail.
 * Counts its calls. */
int	 pt_lookup(const char *host, struct pst_addrs *out);
int	 pt_lookups(void);

struct pt_outcome {
	int			 calls;
	struct bufferevent	*bev;
	struct pst_err		 err;
	int			 failed;
	size_t			 nhops;
};

/* Dials 'plan' (lookup: pt_lookup) and waits for the callback. */
void	 pt_dial(struct pst_dial_plan *plan, struct pt_outcome *o, int ms);
void	 pt_outcome_free(struct pt_outcome *o);
/* The bytes waiting in a handed-over connection's input, as a string. */
char	*pt_input_text(struct bufferevent *bev, char *buf, size_t len);

enum pt_op {
	PT_END = 0,		/* stop acting; keep the connection */
	PT_EXPECT,		/* wait for exactly these bytes */
	PT_SEND,		/* send these bytes */
};

struct pt_step {
	enum pt_op	 op;
	const void	*data;
	size_t		 len;
};

struct pt_proxy {
	struct evconnlistener	*lev;
	uint16_t		 port;
	struct bufferevent	*bev;
	const struct pt_step	*script;
	size_t			 at;
	int			 finished;
	char			 bad[256];	/* a mismatch, if any */
};

/* Listens on 127.0.0.1, port 0, and follows 'script' on one connection. */
void	 pt_proxy_open(struct pt_proxy *p, const struct pt_step *script);
void	 pt_proxy_close(struct pt_proxy *p);

#endif /* POSTERN_PROXYTEST_H */
