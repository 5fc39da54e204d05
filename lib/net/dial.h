/*
 * dial.h: from a dial plan to a connected bufferevent.
 *
 * A dial looks up the first host (the first proxy, or the target when
 * there is none), tries its addresses in order until one connects, then
 * runs each proxy hop's handshake over that one connection, and hands the
 * caller a bufferevent that talks to the target:
 *
 *   resolve -> connect (+ source bind) -> hop 1 handshake -> ... -> cb
 *
 * Timeouts (struct pst_dial_timeouts) apply per step, as in Postfix and
 * msmtp: each name lookup, each address attempt, each hop's handshake.
 * A target with many addresses can therefore take up to PST_RESOLVE_MAX
 * connect timeouts; the caller's own overall deadline bounds the whole.
 *
 * Source addresses.  'bind' is the IPv4 source, 'bind6' the IPv6 one,
 * both IP literals.  With neither set, the kernel chooses.  Once either is
 * set, postern never connects from an address it was not given: an
 * address of the family without a source is skipped (not tried unbound),
 * and the reason is kept for the error.  So bind = "192.0.2.10" alone
 * means "IPv4 only, from 192.0.2.10", and bind = "0.0.0.0" means "IPv4
 * only, any source".  A source that cannot be bound (EADDRNOTAVAIL: not an
 * address of this host) fails that attempt with PST_STAGE_BIND, naming the
 * address; no packet is sent for it.  The source applies to the socket
 * postern opens, which with proxies is the one to the first proxy.
 *
 * Proxies.  Each hop kind is a const struct pst_proxy_ops, a pure byte
 * machine in its own file; the chain runner in dial.c is the only code
 * that touches bufferevent callbacks and timers.  Hop i is asked to open a
 * tunnel to hop i+1, the last hop to the target.  With 'remote_resolve'
 * the hop gets the name as written (SOCKS4a, socks5h, HTTP CONNECT);
 * without, postern looks the name up itself first and gives the hop the
 * first address it can carry (SOCKS4: IPv4 only).
 */
#ifndef PST_DIAL_H
#define PST_DIAL_H

#include <sys/socket.h>
#include <netinet/in.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/proxy.h"
#include "net/resolve.h"
#include "net/sockaddr.h"

struct bufferevent;
struct event_base;
struct evbuffer;
struct pst_dial;
struct pst_err;
struct pst_pool;

#define PST_DIAL_MAX_HOPS		4
#define PST_DIAL_DEFAULT_TIMEOUT_MS	30000u
/* A source address as text: an IPv6 literal with a "%interface" scope. */
#define PST_DIAL_ADDR_MAX		64

/* Zero means PST_DIAL_DEFAULT_TIMEOUT_MS. */
struct pst_dial_timeouts {
	uint32_t	 resolve_ms;	/* each name lookup */
	uint32_t	 connect_ms;	/* each address attempt */
	uint32_t	 proxy_ms;	/* each hop's handshake */
};

/* A line of progress for humans ("connecting to 192.0.2.1:25"). */
typedef void	(*pst_dial_trace_fn)(void *arg, const char *line);

/*
 * Build with pst_dial_plan_init() and the setters, which validate; set
 * 'timeouts' and the hooks directly.  pst_dial_start() copies the plan,
 * so one plan can serve many dials and be changed or freed afterwards.
 */
struct pst_dial_plan {
	char			 host[PST_HOST_MAX + 1]; /* the target */
	uint16_t		 port;
	char			 bind[PST_DIAL_ADDR_MAX];  /* IPv4 source */
	char			 bind6[PST_DIAL_ADDR_MAX]; /* IPv6 source */
	struct sockaddr_in	 src4;		/* parsed 'bind' */
	struct sockaddr_in6	 src6;		/* parsed 'bind6' */
	struct pst_dial_timeouts timeouts;
	struct pst_hop		 hops[PST_DIAL_MAX_HOPS];
	size_t			 nhops;
	/* Hooks, not configuration; NULL for the defaults. */
	pst_lookup_fn		 lookup;	/* see resolve.h */
	pst_dial_trace_fn	 trace;
	void			*trace_arg;
};

/*
 * Filled as far as the dial got; valid during the callback only.  A hop's
 * time covers its local lookup of the next name, if any, and its handshake.
 */
struct pst_dial_info {
	struct sockaddr_storage	 peer;	/* connected to: first hop or target */
	socklen_t		 peer_len;	/* 0: no connection */
	struct sockaddr_storage	 local;	/* our end of it */
	socklen_t		 local_len;
	unsigned		 addrs;		/* addresses the lookup gave */
	unsigned		 attempts;	/* connects started */
	unsigned		 skipped;	/* addresses without a source */
	uint32_t		 resolve_ms;	/* ~0 for a literal */
	uint32_t		 connect_ms;	/* the last attempt */
	size_t			 nhops;		/* handshakes completed */
	uint32_t		 hop_ms[PST_DIAL_MAX_HOPS]; /* per hop */
	uint32_t		 total_ms;
};

/*
 * pst_dial_cb
 * Fires exactly once per pst_dial_start() that returned non-NULL, on the
 * loop, never from inside pst_dial_start(), and never after
 * pst_dial_cancel().  The dial handle is already freed when it runs.
 * Success: 'bev' is the caller's, 'err' is NULL.  Its callbacks and
 * timeouts are cleared, EV_READ and EV_WRITE are enabled, TCP_NODELAY is
 * set.  Its input may already hold bytes (an early 220 greeting, bytes
 * that followed a proxy reply): the read callback will not fire for those,
 * so look at the input after installing callbacks.
 * Failure: 'bev' is NULL and 'err' says why:
 *   PST_STAGE_RESOLVE  PST_TEMP: lookup failed or timed out
 *   PST_STAGE_BIND     PST_TEMP: the source address cannot be bound, or
 *                      no address has a family with a source address
 *   PST_STAGE_CONNECT  PST_TEMP: refused, unreachable, timed out; the text
 *                      names the address ("connect to 192.0.2.1:25 timed
 *                      out after 30s") and how many were tried
 *   PST_STAGE_PROXY    PST_TEMP or PST_PERM as the hop's ops say
 *   PST_LOCAL          out of memory or sockets; a proxy's target name
 *                      to look up here while 'pool' is NULL
 * When every address failed, the error is that of the last attempt that
 * was made; skipped addresses only speak when nothing was attempted.
 * 'info' is never NULL.
 */
typedef void	(*pst_dial_cb)(struct bufferevent *bev,
		    const struct pst_dial_info *info, const struct pst_err *err,
		    void *arg);

/*
 * pst_dial_plan_init()
 * Clears 'plan' and sets the target 'host' (a host name or an IP literal
 * without brackets) and 'port'; no source, no hops, default timeouts.
 * Returns 0, or -1 with 'err' filled (PST_LOCAL, PST_STAGE_CONFIG) for an
 * invalid host or port 0.
 */
int		 pst_dial_plan_init(struct pst_dial_plan *plan,
		    const char *host, uint16_t port, struct pst_err *err);

/*
 * pst_dial_plan_set_bind()
 * Sets the IPv4 source 'bind' and the IPv6 source 'bind6'; NULL or ""
 * leaves one unset.  Each must be an IP literal of its family ("fe80::1%eth0"
 * is allowed for bind6); host names are refused, so nothing is looked up.
 * Returns 0, or -1 with 'err' (PST_LOCAL, PST_STAGE_CONFIG) naming the key
 * and the value, and then the plan's sources are unchanged.
 */
int		 pst_dial_plan_set_bind(struct pst_dial_plan *plan,
		    const char *bind, const char *bind6, struct pst_err *err);

/*
 * pst_dial_plan_add_hop()
 * Appends a copy of 'hop' to the chain.  Returns 0, or -1 with 'err'
 * (PST_LOCAL, PST_STAGE_CONFIG) when the chain is full
 * (PST_DIAL_MAX_HOPS), the host or port is invalid, the credentials are
 * too long, or the kind has no implementation and 'hop->ops' is NULL.
 */
int		 pst_dial_plan_add_hop(struct pst_dial_plan *plan,
		    const struct pst_hop *hop, struct pst_err *err);

/*
 * pst_dial_plan_clear()
 * Wipes 'plan', proxy passwords included.
 */
void		 pst_dial_plan_clear(struct pst_dial_plan *plan);

/*
 * pst_dial_start()
 * Starts dialing as 'plan' says; 'cb' reports the outcome (see
 * pst_dial_cb).  Names are looked up on 'pool'; with a NULL 'pool' only
 * IP literals can be dialed.  Returns the dial, or NULL with 'err' filled
 * (PST_LOCAL: memory, a plan that was not built by pst_dial_plan_init(),
 * a first host that is a name while 'pool' is NULL), and then 'cb' never
 * fires.
 */
struct pst_dial	*pst_dial_start(struct event_base *base,
		    struct pst_pool *pool, const struct pst_dial_plan *plan,
		    pst_dial_cb cb, void *arg, struct pst_err *err);

/*
 * pst_dial_cancel()
 * Stops a dial whose callback has not fired: closes any socket, abandons
 * a lookup in flight (see pst_resolve_cancel()), frees everything; the
 * callback never fires.  Must not be called from the callback or after
 * it, since the handle is gone by then.  NULL is ignored.
 */
void		 pst_dial_cancel(struct pst_dial *dial);

/*
 * pst_hop_kind_name()
 * "none", "socks4", "socks5", "http".
 */
const char	*pst_hop_kind_name(enum pst_hop_kind kind);

#endif /* PST_DIAL_H */
