/*
 * resolve.c: getaddrinfo() on the worker pool, answered on the loop.
 *
 * A request is one allocation that travels: the loop fills it, a worker
 * runs the lookup into it, and the pool's completion brings it back to the
 * loop, which calls back and frees it.  Cancelling only marks it; the
 * completion then frees it without calling back.  The 'cancelled' flag is
 * read and written on the loop thread alone, and the worker touches only
 * the result fields, which the pool hands over under its lock.
 *
 * IP literals are parsed here and answered from a zero timer, so the
 * callback is never synchronous whatever the host.  Lookups have no
 * timeout of their own: a worker stuck in the resolver cannot be stopped,
 * and the caller's timer plus cancel give the same effect on the loop.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common/err.h"
#include "common/pool.h"
#include "net/resolve.h"
#include "net/sockaddr.h"

struct pst_resolve {
	struct event	*now;		/* literal: answered from this timer */
	pst_lookup_fn	 lookup;
	pst_resolve_cb	 cb;
	void		*arg;
	uint16_t	 port;
	bool		 cancelled;
	int		 gai;		/* worker's result: 0 or EAI_* */
	int		 sys_errno;	/* for EAI_SYSTEM */
	struct pst_addrs addrs;
	char		 host[PST_HOST_MAX + 1];
};

static bool	 addr_equal(const struct sockaddr *, const struct sockaddr *);
static void	 resolve_set_port(struct pst_addrs *, uint16_t);
static void	 resolve_deliver(struct pst_resolve *);
static void	 resolve_work(void *);
static void	 resolve_done(void *);
static void	 resolve_now_cb(evutil_socket_t, short, void *);

static bool
addr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)a;
	const struct sockaddr_in6 *b6 = (const struct sockaddr_in6 *)b;
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)a;
	const struct sockaddr_in *b4 = (const struct sockaddr_in *)b;

	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET)
		return a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	return memcmp(&a6->sin6_addr, &b6->sin6_addr,
	    sizeof(a6->sin6_addr)) == 0 &&
	    a6->sin6_scope_id == b6->sin6_scope_id;
}

int
pst_lookup_getaddrinfo(const char *host, struct pst_addrs *out)
{
	struct addrinfo hints, *res, *ai;
	size_t i;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	out->count = 0;
	if ((rc = getaddrinfo(host, NULL, &hints, &res)) != 0)
		return rc;
	for (ai = res; ai != NULL && out->count < PST_RESOLVE_MAX;
	    ai = ai->ai_next) {
		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(out->addr[0]))
			continue;
		for (i = 0; i < out->count; i++)
			if (addr_equal((struct sockaddr *)&out->addr[i],
			    ai->ai_addr))
				break;
		if (i < out->count)
			continue;
		memset(&out->addr[out->count], 0, sizeof(out->addr[0]));
		memcpy(&out->addr[out->count], ai->ai_addr, ai->ai_addrlen);
		out->len[out->count] = ai->ai_addrlen;
		out->count++;
	}
	freeaddrinfo(res);
	return out->count > 0 ? 0 : EAI_NODATA;
}

int
pst_resolve_literal(const char *host, uint16_t port,
    struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct addrinfo hints, *res;

	if (strnlen(host, PST_HOST_MAX + 1) > PST_HOST_MAX)
		return -1;
	memset(ss, 0, sizeof(*ss));
	/* inet_pton(), not inet_aton(): "127.1" or "0x7f.1" are not ours. */
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
		return 0;
	}
	if (strchr(host, ':') == NULL)
		return -1;
	/* AI_NUMERICHOST never queries anything, and it knows "%scope". */
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET6;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return -1;
	if (res->ai_family != AF_INET6 || res->ai_addrlen > sizeof(*ss)) {
		freeaddrinfo(res);
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	freeaddrinfo(res);
	return 0;
}

int
pst_resolve_error(struct pst_err *err, const char *host, int gai,
    int sys_errno)
{
	switch (gai) {
	case EAI_NONAME:
		pst_err_set(err, PST_TEMP, PST_STAGE_RESOLVE,
		    "%.255s: host not found", host);
		break;
	case EAI_NODATA:
		pst_err_set(err, PST_TEMP, PST_STAGE_RESOLVE,
		    "%.255s: host not found (no IPv4 or IPv6 address)", host);
		break;
	case EAI_AGAIN:
		pst_err_set(err, PST_TEMP, PST_STAGE_RESOLVE,
		    "%.255s: temporary failure in name resolution", host);
		break;
	case EAI_FAIL:
		pst_err_set(err, PST_TEMP, PST_STAGE_RESOLVE,
		    "%.255s: name server failure", host);
		break;
	case EAI_MEMORY:
		pst_err_set(err, PST_TEMP, PST_STAGE_RESOLVE,
		    "%.255s: lookup ran out of memory", host);
		break;
	case EAI_SYSTEM:
		pst_err_sys(err, PST_TEMP, PST_STAGE_RESOLVE, sys_errno,
		    "%.255s: lookup failed", host);
		break;
	default:
		pst_err_set(err, PST_TEMP, PST_STAGE_RESOLVE,
		    "%.255s: lookup failed: %s", host, gai_strerror(gai));
		break;
	}
	err->detail = gai;
	return -1;
}

static void
resolve_set_port(struct pst_addrs *addrs, uint16_t port)
{
	size_t i;

	for (i = 0; i < addrs->count; i++) {
		if (addrs->addr[i].ss_family == AF_INET)
			((struct sockaddr_in *)&addrs->addr[i])->sin_port =
			    htons(port);
		else
			((struct sockaddr_in6 *)&addrs->addr[i])->sin6_port =
			    htons(port);
	}
}

/* Calls back and frees 'req'. */
static void
resolve_deliver(struct pst_resolve *req)
{
	struct pst_addrs addrs;
	struct pst_err err;
	pst_resolve_cb cb = req->cb;
	void *arg = req->arg;

	if (req->gai == 0 && req->addrs.count == 0)
		req->gai = EAI_NODATA;
	if (req->gai != 0) {
		pst_resolve_error(&err, req->host, req->gai, req->sys_errno);
		free(req);
		cb(NULL, &err, arg);
		return;
	}
	/* Free first: the callback may well start another lookup. */
	addrs = req->addrs;
	resolve_set_port(&addrs, req->port);
	free(req);
	cb(&addrs, NULL, arg);
}

static void
resolve_work(void *arg)
{
	struct pst_resolve *req = arg;
	struct pst_addrs *a = &req->addrs;
	size_t i, kept;

	a->count = 0;
	req->gai = req->lookup(req->host, a);
	if (req->gai == EAI_SYSTEM)
		req->sys_errno = errno;
	if (req->gai != 0)
		return;
	/* A lookup function is a hook: trust none of its output. */
	if (a->count > PST_RESOLVE_MAX)
		a->count = PST_RESOLVE_MAX;
	for (i = kept = 0; i < a->count; i++) {
		if (a->addr[i].ss_family != AF_INET &&
		    a->addr[i].ss_family != AF_INET6)
			continue;
		a->addr[kept] = a->addr[i];
		a->len[kept] = a->addr[i].ss_family == AF_INET ?
		    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
		kept++;
	}
	a->count = kept;
}

static void
resolve_done(void *arg)
{
	struct pst_resolve *req = arg;

	if (req->cancelled) {
		free(req);
		return;
	}
	resolve_deliver(req);
}

static void
resolve_now_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pst_resolve *req = arg;

	event_free(req->now);
	req->now = NULL;
	resolve_deliver(req);
}

struct pst_resolve *
pst_resolve_start(struct event_base *base, struct pst_pool *pool,
    const char *host, uint16_t port, pst_lookup_fn lookup, pst_resolve_cb cb,
    void *arg, struct pst_err *err)
{
	struct timeval zero = { 0, 0 };
	struct pst_resolve *req;
	socklen_t len;

	if (strnlen(host, PST_HOST_MAX + 1) > PST_HOST_MAX) {
		pst_err_set(err, PST_LOCAL, PST_STAGE_RESOLVE,
		    "host name too long");
		return NULL;
	}
	if ((req = calloc(1, sizeof(*req))) == NULL) {
		pst_err_sys(err, PST_LOCAL, PST_STAGE_RESOLVE, ENOMEM,
		    "looking up %s", host);
		return NULL;
	}
	strcpy(req->host, host);
	req->lookup = lookup != NULL ? lookup : pst_lookup_getaddrinfo;
	req->cb = cb;
	req->arg = arg;
	req->port = port;

	if (pst_resolve_literal(host, port, &req->addrs.addr[0], &len) == 0) {
		req->addrs.len[0] = len;
		req->addrs.count = 1;
		req->now = evtimer_new(base, resolve_now_cb, req);
		if (req->now == NULL || evtimer_add(req->now, &zero) == -1) {
			if (req->now != NULL)
				event_free(req->now);
			free(req);
			pst_err_set(err, PST_LOCAL, PST_STAGE_RESOLVE,
			    "cannot create a timer");
			return NULL;
		}
		return req;
	}
	if (!pst_hostname_valid(host)) {
		pst_err_set(err, PST_LOCAL, PST_STAGE_RESOLVE,
		    "\"%s\" is not a valid host name or address", host);
		free(req);
		return NULL;
	}
	if (pool == NULL) {
		pst_err_set(err, PST_LOCAL, PST_STAGE_RESOLVE,
		    "%s: no worker pool to look the name up on", host);
		free(req);
		return NULL;
	}
	if (pst_pool_submit(pool, resolve_work, resolve_done, req, err) ==
	    -1) {
		err->cls = PST_LOCAL;
		err->stage = PST_STAGE_RESOLVE;
		free(req);
		return NULL;
	}
	return req;
}

void
pst_resolve_cancel(struct pst_resolve *req)
{
	if (req == NULL)
		return;
	if (req->now != NULL) {
		event_free(req->now);
		free(req);
		return;
	}
	/* The worker still owns it; resolve_done() frees it. */
	req->cancelled = true;
}
