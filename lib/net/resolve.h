/*
 * resolve.h: host name to addresses, without blocking the loop.
 *
 * A lookup runs getaddrinfo() (AF_UNSPEC, SOCK_STREAM) on the worker pool
 * and reports on the loop thread, so it follows the system's resolver
 * (nsswitch, /etc/hosts, resolv.conf) like every other program on the
 * host.  IP literals never reach the pool.  Addresses come in the order
 * the resolver returns them: glibc sorts them by RFC 6724 (destination
 * address selection), which is the order to try them in.
 *
 * No AI_ADDRCONFIG: on a host without a route for one family, an attempt
 * to such an address fails at once (ENETUNREACH) and the caller moves on
 * to the next, while AI_ADDRCONFIG would hide "localhost" from a container
 * that only has a loopback interface.
 *
 * Every failure is temporary (PST_TEMP, PST_STAGE_RESOLVE), "host not
 * found" included: a host missing from the DNS today is most likely a DNS
 * or configuration problem of the relay, and mail for an upstream that
 * cannot be resolved is deferred, never bounced.
 */
#ifndef PST_RESOLVE_H
#define PST_RESOLVE_H

#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct pst_err;
struct pst_pool;
struct pst_resolve;

/* At most this many addresses are kept from one lookup; the rest are
 * dropped, as Postfix's smtp_mx_address_limit does. */
#define PST_RESOLVE_MAX		16

struct pst_addrs {
	size_t			 count;
	struct sockaddr_storage	 addr[PST_RESOLVE_MAX];
	socklen_t		 len[PST_RESOLVE_MAX];
};

/*
 * pst_lookup_fn
 * The blocking lookup itself: fills 'out' (count and addresses, ports
 * ignored) for 'host' and returns 0, or returns an EAI_* code (with errno
 * set for EAI_SYSTEM).  It runs on a worker thread and must be thread
 * safe.  pst_lookup_getaddrinfo() is the one postern uses; tests (and a
 * future resolver choice) pass another one instead, so no test depends on
 * the DNS.
 */
typedef int	(*pst_lookup_fn)(const char *host, struct pst_addrs *out);

/*
 * pst_resolve_cb
 * Called on the loop thread, exactly once, never from inside
 * pst_resolve_start().  On success 'addrs' holds at least one address, each
 * with the requested port, and 'err' is NULL; on failure 'addrs' is NULL.
 * Both are valid during the call only.  The request is freed when the
 * callback returns.
 */
typedef void	(*pst_resolve_cb)(const struct pst_addrs *addrs,
		    const struct pst_err *err, void *arg);

/*
 * pst_lookup_getaddrinfo()
 * The default lookup: getaddrinfo(host, NULL, {AF_UNSPEC, SOCK_STREAM}),
 * keeping IPv4 and IPv6 addresses in the returned order, at most
 * PST_RESOLVE_MAX, without duplicates.  A name that resolves only to other
 * families gives EAI_NODATA.
 */
int		 pst_lookup_getaddrinfo(const char *host,
		    struct pst_addrs *out);

/*
 * pst_resolve_literal()
 * When 'host' is an IPv4 literal (dotted quad, nothing looser) or an IPv6
 * literal (with an optional "%scope"), fills 'ss' and '*len' with it and
 * 'port', and returns 0.  Returns -1 for anything else; no lookup ever
 * happens here.
 */
int		 pst_resolve_literal(const char *host, uint16_t port,
		    struct sockaddr_storage *ss, socklen_t *len);

/*
 * pst_resolve_start()
 * Looks up 'host' and reports to 'cb' with every address carrying 'port'.
 * An IP literal is answered from the loop without the pool ('pool' may be
 * NULL then); a name goes to 'pool' through 'lookup' (NULL means
 * pst_lookup_getaddrinfo).  'host' is copied.
 * Returns the request, or NULL with 'err' filled, and then 'cb' never
 * fires: PST_LOCAL when 'host' is not a valid host name or address, when a
 * name must be looked up and 'pool' is NULL, or when memory runs out.
 * Errors through 'cb': PST_TEMP, PST_STAGE_RESOLVE, with texts such as
 * "smtp.example.org: host not found" or "...: temporary failure in name
 * resolution".  There is no timeout here: the caller keeps its own and
 * cancels.
 */
struct pst_resolve *pst_resolve_start(struct event_base *base,
		    struct pst_pool *pool, const char *host, uint16_t port,
		    pst_lookup_fn lookup, pst_resolve_cb cb, void *arg,
		    struct pst_err *err);

/*
 * pst_resolve_cancel()
 * Abandons a request whose callback has not fired: the callback never
 * fires.  A lookup already running on a worker finishes there (a thread
 * in getaddrinfo() cannot be interrupted) and its result is dropped
 * quietly on the loop; the memory is released then.  Must not be called
 * from the request's own callback or after it.  NULL is ignored.
 */
void		 pst_resolve_cancel(struct pst_resolve *req);

/*
 * pst_resolve_error()
 * Fills 'err' (PST_TEMP, PST_STAGE_RESOLVE) for EAI_* code 'gai' from a
 * lookup of 'host', with 'sys_errno' for EAI_SYSTEM.  Returns -1.
 */
int		 pst_resolve_error(struct pst_err *err, const char *host,
		    int gai, int sys_errno);

#endif /* PST_RESOLVE_H */
