/*
 * dial.c: the direct dialer and the proxy chain runner.
 *
 * One struct pst_dial walks one machine: look up the first host (the first
 * proxy, or the target), try its addresses in order until one connects,
 * then run each hop's ops over that connection.  dial_enter() is the only
 * writer of the state, and a single evtimer is the timeout of whatever
 * step is in progress.  This file is the only one that touches bufferevent
 * callbacks for a dial; the proxy ops see nothing but evbuffers.
 *
 * Invariants: the callback runs exactly once, after the dial is freed, so
 * nothing the callback does can reach freed memory; it never runs from
 * pst_dial_start(), because even an IP literal is answered by the
 * resolver on a later loop turn.  A function that may end the dial
 * returns -1 when it did, and its caller returns at once.
 *
 * Deliberately not here: retries over time, failover between upstreams,
 * TLS, the SMTP greeting.  Nothing is remembered from one dial to the next.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common/err.h"
#include "common/units.h"
#include "net/dial.h"
#include "net/proxy.h"
#include "net/resolve.h"
#include "net/sockaddr.h"

#define ADDR_TEXT_MAX	(INET6_ADDRSTRLEN + 32)	/* "[v6%scope]:port" */

enum dial_state {
	DIAL_ST_RESOLVE = 0,	/* waiting for the first host's addresses */
	DIAL_ST_CONNECT,	/* waiting for a TCP connect to one of them */
	DIAL_ST_HOP_RESOLVE,	/* waiting for a local lookup for a hop */
	DIAL_ST_HOP,		/* waiting for a proxy's reply */
	DIAL_ST_DONE,		/* connection handed over */
	DIAL_ST_FAILED,		/* error reported */
	DIAL_ST__COUNT
};

static const char *const dial_state_names[] = {
	[DIAL_ST_RESOLVE] = "resolve",
	[DIAL_ST_CONNECT] = "connect",
	[DIAL_ST_HOP_RESOLVE] = "hop-resolve",
	[DIAL_ST_HOP] = "hop",
	[DIAL_ST_DONE] = "done",
	[DIAL_ST_FAILED] = "failed",
};
_Static_assert(sizeof(dial_state_names) / sizeof(dial_state_names[0]) ==
    DIAL_ST__COUNT, "a name for every dial state");

static const char *const hop_kind_names[] = {
	[PST_HOP_NONE] = "none",
	[PST_HOP_SOCKS4] = "socks4",
	[PST_HOP_SOCKS5] = "socks5",
	[PST_HOP_HTTP] = "http",
};
_Static_assert(sizeof(hop_kind_names) / sizeof(hop_kind_names[0]) ==
    PST_HOP__COUNT, "a name for every hop kind");

struct pst_dial {
	struct event_base	*base;
	struct pst_pool		*pool;
	struct pst_dial_plan	 plan;
	pst_dial_cb		 cb;
	void			*cb_arg;
	enum dial_state		 state;
	struct event		*timer;		/* the current step's */
	struct pst_resolve	*resolve;
	struct bufferevent	*bev;
	struct timespec		 t_start;
	struct timespec		 t_step;		/* current step's start */
	struct timespec		 t_hop;		/* current hop's start */

	/* The first leg: addresses of the first hop or of the target. */
	const char		*first_host;
	struct pst_addrs	 addrs;
	size_t			 next;		/* next candidate */
	size_t			 cur;		/* the one being tried */
	struct pst_err		 last;		/* last attempt's failure */
	char			 skip_why[160];	/* first skipped address */

	/* The hop being run. */
	size_t			 hop;
	const struct pst_proxy_ops *ops;
	void			*ctx;
	const char		*next_host;	/* what the hop must reach */
	uint16_t		 next_port;
	char			 target[PST_HOST_MAX + 1]; /* as sent to it */

	struct pst_dial_info	 info;
};

static uint32_t	 elapsed_ms(const struct timespec *);
static void	 dial_trace(struct pst_dial *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static void	 dial_enter(struct pst_dial *, enum dial_state);
static void	 dial_arm(struct pst_dial *, uint32_t);
static const char *dial_addr(struct pst_dial *, size_t, char *, size_t);
static const char *errno_phrase(int);
static bool	 host_valid(const char *);
static void	 dial_timer_cb(evutil_socket_t, short, void *);
static void	 dial_resolved(const struct pst_addrs *, const struct pst_err *,
		    void *);
static int	 dial_next_addr(struct pst_dial *);
static int	 dial_attempt(struct pst_dial *);
static void	 dial_attempt_failed(struct pst_dial *, int, const char *);
static void	 dial_connect_eventcb(struct bufferevent *, short, void *);
static int	 dial_connected(struct pst_dial *);
static int	 hop_start(struct pst_dial *);
static void	 hop_resolved(const struct pst_addrs *, const struct pst_err *,
		    void *);
static int	 hop_send(struct pst_dial *);
static void	 hop_readcb(struct bufferevent *, void *);
static void	 hop_eventcb(struct bufferevent *, short, void *);
static void	 hop_input(struct pst_dial *);
static void	 hop_ctx_free(struct pst_dial *);
static void	 hop_fail(struct pst_dial *, const struct pst_err *);
static void	 dial_succeed(struct pst_dial *);
static void	 dial_fail(struct pst_dial *, const struct pst_err *);
static void	 dial_free(struct pst_dial *);

static uint32_t
elapsed_ms(const struct timespec *since)
{
	struct timespec now;
	int64_t ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (int64_t)(now.tv_sec - since->tv_sec) * 1000 +
	    (now.tv_nsec - since->tv_nsec) / 1000000;
	if (ms < 0)
		return 0;
	return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

static void
dial_trace(struct pst_dial *d, const char *fmt, ...)
{
	char line[PST_ERR_TEXT_MAX];
	va_list ap;

	if (d->plan.trace == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	d->plan.trace(d->plan.trace_arg, line);
}

static void
dial_enter(struct pst_dial *d, enum dial_state state)
{
	if (state != d->state)
		dial_trace(d, "state %s -> %s", dial_state_names[d->state],
		    dial_state_names[state]);
	d->state = state;
	clock_gettime(CLOCK_MONOTONIC, &d->t_step);
}

static void
dial_arm(struct pst_dial *d, uint32_t ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(d->timer, &tv);
}

static const char *
dial_addr(struct pst_dial *d, size_t i, char *buf, size_t len)
{
	return pst_sockaddr_format((struct sockaddr *)&d->addrs.addr[i],
	    d->addrs.len[i], buf, len);
}

/* The common connect failures, in words that read well after a colon. */
static const char *
errno_phrase(int e)
{
	switch (e) {
	case ECONNREFUSED:
		return "connection refused";
	case ETIMEDOUT:
		return "timed out";
	case ENETUNREACH:
		return "network unreachable";
	case EHOSTUNREACH:
		return "host unreachable";
	case ECONNRESET:
		return "connection reset";
	case EADDRNOTAVAIL:
		return "address not available on this host";
	case EAFNOSUPPORT:
		return "address family not supported on this host";
	default:
		return NULL;
	}
}

static bool
host_valid(const char *host)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (strnlen(host, PST_HOST_MAX + 1) > PST_HOST_MAX)
		return false;
	return pst_resolve_literal(host, 0, &ss, &len) == 0 ||
	    pst_hostname_valid(host);
}

int
pst_dial_plan_init(struct pst_dial_plan *plan, const char *host,
    uint16_t port, struct pst_err *err)
{
	memset(plan, 0, sizeof(*plan));
	if (host == NULL || !host_valid(host))
		return pst_err_set(err, PST_LOCAL, PST_STAGE_CONFIG,
		    "target \"%.255s\" is not a valid host name or IP address",
		    host != NULL ? host : "");
	if (port == 0)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_CONFIG,
		    "target port must be 1-65535");
	strcpy(plan->host, host);
	plan->port = port;
	plan->timeouts.resolve_ms = PST_DIAL_DEFAULT_TIMEOUT_MS;
	plan->timeouts.connect_ms = PST_DIAL_DEFAULT_TIMEOUT_MS;
	plan->timeouts.proxy_ms = PST_DIAL_DEFAULT_TIMEOUT_MS;
	return 0;
}

int
pst_dial_plan_set_bind(struct pst_dial_plan *plan, const char *bind,
    const char *bind6, struct pst_err *err)
{
	struct sockaddr_storage ss;
	struct sockaddr_in src4;
	struct sockaddr_in6 src6;
	socklen_t len;

	memset(&src4, 0, sizeof(src4));
	memset(&src6, 0, sizeof(src6));
	if (bind != NULL && bind[0] != '\0') {
		if (strnlen(bind, PST_DIAL_ADDR_MAX) >= PST_DIAL_ADDR_MAX ||
		    pst_resolve_literal(bind, 0, &ss, &len) == -1)
			return pst_err_set(err, PST_LOCAL, PST_STAGE_CONFIG,
			    "bind: \"%.64s\" is not an IPv4 address (a source "
			    "address is an IP address, not a name)", bind);
		if (ss.ss_family != AF_INET)
			return pst_err_set(err, PST_LOCAL, PST_STAGE_CONFIG,
			    "bind: \"%.64s\" is an IPv6 address; set it as "
			    "bind6", bind);
		memcpy(&src4, &ss, sizeof(src4));
	}
	if (bind6 != NULL && bind6[0] != '\0') {
		if (strnlen(bind6, PST_DIAL_ADDR_MAX) >= PST_DIAL_ADDR_MAX ||
		    pst_resolve_literal(bind6, 0, &ss, &len) == -1)
			return pst_err_set(err, PST_LOCAL, PST_STAGE_CONFIG,
			    "bind6: \"%.64s\" is not an IPv6 address (a source "
			    "address is an IP address, not a name)", bind6);
		if (ss.ss_family != AF_INET6)
			return pst_err_set(err, PST_LOCAL, PST_STAGE_CONFIG,
			    "bind6: \"%.64s\" is an IPv4 address; set it as "
			    "bind", bind6);
		memcpy(&src6, &ss, sizeof(src6));
	}
	memset(plan->bind, 0, sizeof(plan->bind));
	memset(plan->bind6, 0, sizeof(plan->bind6));
	if (src4.sin_family != 0)
		strcpy(plan->bind, bind);
	if (src6.sin6_family != 0)
		strcpy(plan->bind6, bind6);
	plan->src4 = src4;
	plan->src6 = src6;
	return 0;
}

int
pst_dial_plan_add_hop(struct pst_dial_plan *plan, const struct pst_hop *hop,
    struct pst_err *err)
{
	const struct pst_proxy_ops *ops = hop->ops;
	size_t n = plan->nhops + 1;

	if (plan->nhops >= PST_DIAL_MAX_HOPS)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_CONFIG,
		    "proxy %zu: at most %d proxies can be chained", n,
		    PST_DIAL_MAX_HOPS);
	if ((unsigned)hop->kind >= PST_HOP__COUNT)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_CONFIG,
		    "proxy %zu: unknown kind %d", n, (int)hop->kind);
	if (ops == NULL)
		ops = pst_proxy_ops_for(hop->kind);
	if (ops == NULL && hop->kind == PST_HOP_NONE)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_CONFIG,
		    "proxy %zu: no proxy kind given", n);
	if (ops == NULL)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_CONFIG,
		    "proxy %zu: %s proxies are not supported yet", n,
		    hop_kind_names[hop->kind]);
	if (ops->begin == NULL || ops->input == NULL)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_CONFIG,
		    "proxy %zu: incomplete implementation", n);
	if (memchr(hop->host, '\0', sizeof(hop->host)) == NULL ||
	    !host_valid(hop->host))
		return pst_err_set(err, PST_LOCAL, PST_STAGE_CONFIG,
		    "proxy %zu: \"%.255s\" is not a valid host name or IP "
		    "address", n, hop->host);
	if (hop->port == 0)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_CONFIG,
		    "proxy %zu: port must be 1-65535", n);
	if (memchr(hop->user, '\0', sizeof(hop->user)) == NULL ||
	    memchr(hop->password, '\0', sizeof(hop->password)) == NULL)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_CONFIG,
		    "proxy %zu: user name or password longer than %d bytes", n,
		    PST_PROXY_CRED_MAX);
	plan->hops[plan->nhops] = *hop;
	plan->hops[plan->nhops].ops = ops;
	plan->nhops++;
	return 0;
}

void
pst_dial_plan_clear(struct pst_dial_plan *plan)
{
	explicit_bzero(plan, sizeof(*plan));
}

const char *
pst_hop_kind_name(enum pst_hop_kind kind)
{
	if ((unsigned)kind >= PST_HOP__COUNT)
		return "unknown";
	return hop_kind_names[kind];
}

struct pst_dial *
pst_dial_start(struct event_base *base, struct pst_pool *pool,
    const struct pst_dial_plan *plan, pst_dial_cb cb, void *arg,
    struct pst_err *err)
{
	struct pst_dial_timeouts *t;
	struct pst_dial *d;
	uint16_t port;

	if (plan->host[0] == '\0' || plan->port == 0 ||
	    plan->nhops > PST_DIAL_MAX_HOPS) {
		pst_err_set(err, PST_LOCAL, PST_STAGE_CONFIG,
		    "dial plan not built by pst_dial_plan_init()");
		return NULL;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		pst_err_sys(err, PST_LOCAL, PST_STAGE_CONNECT, ENOMEM,
		    "dialing %s", plan->host);
		return NULL;
	}
	d->base = base;
	d->pool = pool;
	d->plan = *plan;
	d->cb = cb;
	d->cb_arg = arg;
	t = &d->plan.timeouts;
	if (t->resolve_ms == 0)
		t->resolve_ms = PST_DIAL_DEFAULT_TIMEOUT_MS;
	if (t->connect_ms == 0)
		t->connect_ms = PST_DIAL_DEFAULT_TIMEOUT_MS;
	if (t->proxy_ms == 0)
		t->proxy_ms = PST_DIAL_DEFAULT_TIMEOUT_MS;
	if ((d->timer = evtimer_new(base, dial_timer_cb, d)) == NULL) {
		pst_err_set(err, PST_LOCAL, PST_STAGE_CONNECT,
		    "dialing %s: cannot create a timer", plan->host);
		dial_free(d);
		return NULL;
	}
	clock_gettime(CLOCK_MONOTONIC, &d->t_start);
	d->t_step = d->t_start;
	if (d->plan.nhops > 0) {
		d->first_host = d->plan.hops[0].host;
		port = d->plan.hops[0].port;
	} else {
		d->first_host = d->plan.host;
		port = d->plan.port;
	}
	dial_trace(d, "resolving %s", d->first_host);
	d->resolve = pst_resolve_start(base, pool, d->first_host, port,
	    d->plan.lookup, dial_resolved, d, err);
	if (d->resolve == NULL) {
		dial_free(d);
		return NULL;
	}
	dial_arm(d, t->resolve_ms);
	return d;
}

void
pst_dial_cancel(struct pst_dial *d)
{
	if (d == NULL)
		return;
	dial_free(d);
}

static void
dial_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pst_dial *d = arg;
	const struct pst_hop *hop;
	struct pst_err err;
	char dur[32];

	switch (d->state) {
	case DIAL_ST_RESOLVE:
	case DIAL_ST_HOP_RESOLVE:
		pst_resolve_cancel(d->resolve);
		d->resolve = NULL;
		pst_duration_format(d->plan.timeouts.resolve_ms, dur,
		    sizeof(dur));
		pst_err_set(&err, PST_TEMP, PST_STAGE_RESOLVE,
		    "lookup of %s timed out after %s",
		    d->state == DIAL_ST_RESOLVE ? d->first_host : d->next_host,
		    dur);
		dial_fail(d, &err);
		return;
	case DIAL_ST_CONNECT:
		pst_duration_format(d->plan.timeouts.connect_ms, dur,
		    sizeof(dur));
		dial_attempt_failed(d, ETIMEDOUT, dur);
		(void)dial_next_addr(d);
		return;
	case DIAL_ST_HOP:
		hop = &d->plan.hops[d->hop];
		pst_duration_format(d->plan.timeouts.proxy_ms, dur,
		    sizeof(dur));
		pst_err_set(&err, PST_TEMP, PST_STAGE_PROXY,
		    "handshake with %s proxy %s:%u timed out after %s",
		    d->ops->name, hop->host, hop->port, dur);
		dial_fail(d, &err);
		return;
	case DIAL_ST_DONE:
	case DIAL_ST_FAILED:
	case DIAL_ST__COUNT:
		break;
	}
}

static void
dial_resolved(const struct pst_addrs *addrs, const struct pst_err *err,
    void *arg)
{
	struct pst_dial *d = arg;
	char a[ADDR_TEXT_MAX];
	size_t i;

	d->resolve = NULL;
	evtimer_del(d->timer);
	d->info.resolve_ms = elapsed_ms(&d->t_step);
	if (err != NULL) {
		dial_fail(d, err);
		return;
	}
	d->addrs = *addrs;
	d->info.addrs = (unsigned)addrs->count;
	for (i = 0; i < addrs->count; i++)
		dial_trace(d, "%s has address %s", d->first_host,
		    dial_addr(d, i, a, sizeof(a)));
	(void)dial_next_addr(d);
}

/*
 * Tries the remaining addresses until one attempt is under way (0) or none
 * is left, which ends the dial (-1).
 */
static int
dial_next_addr(struct pst_dial *d)
{
	const struct pst_dial_plan *p = &d->plan;
	bool any_src = p->bind[0] != '\0' || p->bind6[0] != '\0';
	char a[ADDR_TEXT_MAX];
	struct pst_err err;
	size_t used;
	int family;

	while (d->next < d->addrs.count) {
		d->cur = d->next++;
		family = d->addrs.addr[d->cur].ss_family;
		if (any_src && ((family == AF_INET && p->bind[0] == '\0') ||
		    (family == AF_INET6 && p->bind6[0] == '\0'))) {
			/* Never from an address we were not given. */
			dial_addr(d, d->cur, a, sizeof(a));
			dial_trace(d, "skipping %s: no %s source address", a,
			    family == AF_INET ? "IPv4" : "IPv6");
			if (d->info.skipped++ == 0)
				snprintf(d->skip_why, sizeof(d->skip_why),
				    "%s skipped, no %s set", a,
				    family == AF_INET ? "bind" : "bind6");
			continue;
		}
		if (dial_attempt(d) == 0)
			return 0;
	}
	if (d->info.attempts == 0) {
		pst_err_set(&err, PST_TEMP, PST_STAGE_BIND,
		    "no address of %s can be used from the configured source "
		    "address (%s%s%s%s%s): %s", d->first_host,
		    p->bind[0] != '\0' ? "bind " : "", p->bind,
		    p->bind[0] != '\0' && p->bind6[0] != '\0' ? ", " : "",
		    p->bind6[0] != '\0' ? "bind6 " : "", p->bind6,
		    d->skip_why);
		dial_fail(d, &err);
		return -1;
	}
	err = d->last;
	used = strlen(err.text);
	if (d->info.attempts > 1 || d->info.skipped > 0)
		snprintf(err.text + used, sizeof(err.text) - used,
		    " (%u of %u addresses tried)", d->info.attempts,
		    d->info.attempts + d->info.skipped);
	dial_fail(d, &err);
	return -1;
}

/*
 * Opens, binds and starts connecting a socket to address 'cur'.  Returns
 * 0 when the connect is under way, or -1 with the reason in 'last'.
 */
static int
dial_attempt(struct pst_dial *d)
{
	const struct sockaddr *sa = (struct sockaddr *)&d->addrs.addr[d->cur];
	const struct sockaddr *src = NULL;
	const char *src_text = NULL;
	const char *proxy = d->plan.nhops > 0 ? "proxy " : "";
	char a[ADDR_TEXT_MAX];
	socklen_t src_len = 0;
	int fd, e, one = 1;

	dial_addr(d, d->cur, a, sizeof(a));
	d->info.attempts++;
	if (sa->sa_family == AF_INET && d->plan.bind[0] != '\0') {
		src = (const struct sockaddr *)&d->plan.src4;
		src_len = sizeof(d->plan.src4);
		src_text = d->plan.bind;
	} else if (sa->sa_family == AF_INET6 && d->plan.bind6[0] != '\0') {
		src = (const struct sockaddr *)&d->plan.src6;
		src_len = sizeof(d->plan.src6);
		src_text = d->plan.bind6;
	}
	dial_enter(d, DIAL_ST_CONNECT);
	dial_trace(d, "connecting to %s%s%s%s", proxy, a,
	    src != NULL ? " from " : "", src != NULL ? src_text : "");

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    IPPROTO_TCP);
	if (fd == -1) {
		e = errno;
		pst_err_sys(&d->last, (e == EMFILE || e == ENFILE ||
		    e == ENOBUFS || e == ENOMEM) ? PST_LOCAL : PST_TEMP,
		    PST_STAGE_CONNECT, e, "connect to %s%s: socket", proxy, a);
		return -1;
	}
	if (src != NULL) {
#ifdef IP_BIND_ADDRESS_NO_PORT
		/* Leave the port to connect(), which can share it among
		 * destinations; failure only costs ephemeral ports. */
		(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
		    sizeof(one));
#endif
		if (bind(fd, src, src_len) == -1) {
			e = errno;
			close(fd);
			pst_err_sys(&d->last, PST_TEMP, PST_STAGE_BIND, e,
			    "cannot bind source address %s to connect to %s%s",
			    src_text, proxy, a);
			dial_trace(d, "%s", d->last.text);
			return -1;
		}
	}
	/* The client sends the final dot right behind the data: no Nagle. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((d->bev = bufferevent_socket_new(d->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		pst_err_set(&d->last, PST_LOCAL, PST_STAGE_CONNECT,
		    "connect to %s%s: cannot create a bufferevent", proxy, a);
		return -1;
	}
	bufferevent_setcb(d->bev, NULL, NULL, dial_connect_eventcb, d);
	errno = 0;
	if (bufferevent_socket_connect(d->bev, sa, (int)d->addrs.len[d->cur])
	    == -1) {
		dial_attempt_failed(d, errno, NULL);
		return -1;
	}
	dial_arm(d, d->plan.timeouts.connect_ms);
	return 0;
}

/*
 * Records why the attempt on 'cur' failed ('timeout' set: it timed out
 * after that long) and closes its socket.
 */
static void
dial_attempt_failed(struct pst_dial *d, int e, const char *timeout)
{
	const char *proxy = d->plan.nhops > 0 ? "proxy " : "";
	const char *phrase = errno_phrase(e);
	char a[ADDR_TEXT_MAX];

	evtimer_del(d->timer);
	d->info.connect_ms = elapsed_ms(&d->t_step);
	if (d->bev != NULL) {
		bufferevent_free(d->bev);
		d->bev = NULL;
	}
	dial_addr(d, d->cur, a, sizeof(a));
	if (timeout != NULL)
		pst_err_set(&d->last, PST_TEMP, PST_STAGE_CONNECT,
		    "connect to %s%s timed out after %s", proxy, a, timeout);
	else if (phrase != NULL)
		pst_err_set(&d->last, PST_TEMP, PST_STAGE_CONNECT,
		    "connect to %s%s: %s", proxy, a, phrase);
	else if (e != 0)
		pst_err_sys(&d->last, PST_TEMP, PST_STAGE_CONNECT, e,
		    "connect to %s%s", proxy, a);
	else
		pst_err_set(&d->last, PST_TEMP, PST_STAGE_CONNECT,
		    "connect to %s%s failed", proxy, a);
	d->last.sys_errno = timeout != NULL ? ETIMEDOUT : e;
	dial_trace(d, "%s", d->last.text);
}

static void
dial_connect_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct pst_dial *d = arg;
	socklen_t len;
	int e;

	if (what & BEV_EVENT_CONNECTED) {
		(void)dial_connected(d);
		return;
	}
	/* libevent leaves the connect error in errno; SO_ERROR otherwise. */
	e = EVUTIL_SOCKET_ERROR();
	if (e == 0 || e == EINPROGRESS || e == EAGAIN) {
		len = sizeof(e);
		if (getsockopt(bufferevent_getfd(bev), SOL_SOCKET, SO_ERROR,
		    &e, &len) == -1)
			e = 0;
	}
	dial_attempt_failed(d, e, NULL);
	(void)dial_next_addr(d);
}

static int
dial_connected(struct pst_dial *d)
{
	char a[ADDR_TEXT_MAX];
	socklen_t len;

	evtimer_del(d->timer);
	d->info.connect_ms = elapsed_ms(&d->t_step);
	memcpy(&d->info.peer, &d->addrs.addr[d->cur], d->addrs.len[d->cur]);
	d->info.peer_len = d->addrs.len[d->cur];
	len = sizeof(d->info.local);
	if (getsockname(bufferevent_getfd(d->bev),
	    (struct sockaddr *)&d->info.local, &len) == 0)
		d->info.local_len = len;
	dial_trace(d, "connected to %s in %ums", dial_addr(d, d->cur, a,
	    sizeof(a)), d->info.connect_ms);
	if (d->plan.nhops == 0) {
		dial_succeed(d);
		return -1;
	}
	d->hop = 0;
	if (hop_start(d) != 0)
		return -1;
	/* Nothing can be waiting yet, but the runner does not assume it. */
	if (evbuffer_get_length(bufferevent_get_input(d->bev)) > 0)
		hop_input(d);
	return 0;
}

/*
 * Prepares hop 'hop': works out what it must reach and, when that name
 * must be looked up here, starts the lookup (1).  Otherwise sends the
 * hop's request (0).  -1: the dial ended.
 */
static int
hop_start(struct pst_dial *d)
{
	const struct pst_hop *hop = &d->plan.hops[d->hop];
	struct sockaddr_storage ss;
	struct pst_err err;
	socklen_t len;
	bool literal;

	clock_gettime(CLOCK_MONOTONIC, &d->t_hop);
	d->ops = hop->ops != NULL ? hop->ops : pst_proxy_ops_for(hop->kind);
	if (d->ops == NULL) {
		pst_err_set(&err, PST_LOCAL, PST_STAGE_PROXY,
		    "proxy %zu: %s proxies are not supported", d->hop + 1,
		    hop_kind_names[hop->kind]);
		dial_fail(d, &err);
		return -1;
	}
	/* From here on, trouble on the connection is the proxy's. */
	bufferevent_setcb(d->bev, hop_readcb, NULL, hop_eventcb, d);
	if (d->hop + 1 < d->plan.nhops) {
		d->next_host = d->plan.hops[d->hop + 1].host;
		d->next_port = d->plan.hops[d->hop + 1].port;
	} else {
		d->next_host = d->plan.host;
		d->next_port = d->plan.port;
	}
	literal = pst_resolve_literal(d->next_host, 0, &ss, &len) == 0;
	if (!hop->remote_resolve && !literal) {
		dial_enter(d, DIAL_ST_HOP_RESOLVE);
		dial_trace(d, "resolving %s for %s proxy %s", d->next_host,
		    d->ops->name, hop->host);
		/* Whatever the proxy sends now waits for the request. */
		bufferevent_disable(d->bev, EV_READ);
		d->resolve = pst_resolve_start(d->base, d->pool, d->next_host,
		    d->next_port, d->plan.lookup, hop_resolved, d, &err);
		if (d->resolve == NULL) {
			dial_fail(d, &err);
			return -1;
		}
		dial_arm(d, d->plan.timeouts.resolve_ms);
		return 1;
	}
	if (literal && ss.ss_family == AF_INET6 &&
	    (d->ops->flags & PST_PROXY_F_IPV4_ONLY)) {
		pst_err_set(&err, PST_LOCAL, PST_STAGE_PROXY,
		    "%s proxy %s cannot reach the IPv6 address %s",
		    d->ops->name, hop->host, d->next_host);
		dial_fail(d, &err);
		return -1;
	}
	strcpy(d->target, d->next_host);
	return hop_send(d);
}

static void
hop_resolved(const struct pst_addrs *addrs, const struct pst_err *err,
    void *arg)
{
	struct pst_dial *d = arg;
	const struct pst_hop *hop = &d->plan.hops[d->hop];
	const struct sockaddr_in6 *sin6;
	const struct sockaddr_in *sin;
	struct pst_err e;
	size_t i;

	d->resolve = NULL;
	evtimer_del(d->timer);
	if (err != NULL) {
		dial_fail(d, err);
		return;
	}
	for (i = 0; i < addrs->count; i++) {
		if (addrs->addr[i].ss_family == AF_INET) {
			sin = (const struct sockaddr_in *)&addrs->addr[i];
			inet_ntop(AF_INET, &sin->sin_addr, d->target,
			    sizeof(d->target));
			break;
		}
		if (!(d->ops->flags & PST_PROXY_F_IPV4_ONLY)) {
			sin6 = (const struct sockaddr_in6 *)&addrs->addr[i];
			inet_ntop(AF_INET6, &sin6->sin6_addr, d->target,
			    sizeof(d->target));
			break;
		}
	}
	if (i == addrs->count) {
		pst_err_set(&e, PST_TEMP, PST_STAGE_RESOLVE,
		    "%s has no IPv4 address, which %s proxy %s needs",
		    d->next_host, d->ops->name, hop->host);
		dial_fail(d, &e);
		return;
	}
	dial_trace(d, "%s proxy %s gets %s for %s", d->ops->name, hop->host,
	    d->target, d->next_host);
	if (hop_send(d) != 0)
		return;
	if (evbuffer_get_length(bufferevent_get_input(d->bev)) > 0)
		hop_input(d);
}

/* Starts hop 'hop' on 'target'.  0: waiting for the proxy; -1: ended. */
static int
hop_send(struct pst_dial *d)
{
	const struct pst_hop *hop = &d->plan.hops[d->hop];
	struct pst_err err;

	dial_enter(d, DIAL_ST_HOP);
	dial_trace(d, "asking %s proxy %s:%u for %s:%u", d->ops->name,
	    hop->host, hop->port, d->target, d->next_port);
	if ((d->ctx = calloc(1, d->ops->ctx_size > 0 ? d->ops->ctx_size :
	    1)) == NULL) {
		pst_err_sys(&err, PST_LOCAL, PST_STAGE_PROXY, ENOMEM,
		    "%s proxy %s", d->ops->name, hop->host);
		dial_fail(d, &err);
		return -1;
	}
	pst_err_clear(&err);
	if (d->ops->begin(d->ctx, hop, d->target, d->next_port,
	    bufferevent_get_output(d->bev), &err) == -1) {
		hop_fail(d, &err);
		return -1;
	}
	bufferevent_setcb(d->bev, hop_readcb, NULL, hop_eventcb, d);
	bufferevent_enable(d->bev, EV_READ | EV_WRITE);
	dial_arm(d, d->plan.timeouts.proxy_ms);
	return 0;
}

static void
hop_readcb(struct bufferevent *bev, void *arg)
{
	struct pst_dial *d = arg;

	if (d->state == DIAL_ST_HOP)
		hop_input(d);
}

static void
hop_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct pst_dial *d = arg;
	const struct pst_hop *hop = &d->plan.hops[d->hop];
	struct pst_err err;
	int e;

	if (what & BEV_EVENT_EOF) {
		pst_err_set(&err, PST_TEMP, PST_STAGE_PROXY,
		    "%s proxy %s:%u closed the connection during the "
		    "handshake", d->ops->name, hop->host, hop->port);
	} else if ((e = EVUTIL_SOCKET_ERROR()) != 0) {
		pst_err_sys(&err, PST_TEMP, PST_STAGE_PROXY, e,
		    "%s proxy %s:%u", d->ops->name, hop->host, hop->port);
	} else {
		pst_err_set(&err, PST_TEMP, PST_STAGE_PROXY,
		    "%s proxy %s:%u: connection failed during the handshake",
		    d->ops->name, hop->host, hop->port);
	}
	dial_fail(d, &err);
}

/*
 * Feeds the proxy's bytes to the ops, and moves on to the next hop or to
 * the caller when a handshake is done.  Loops rather than recursing, since
 * bytes for the next hop may already be here.
 */
static void
hop_input(struct pst_dial *d)
{
	struct evbuffer *in = bufferevent_get_input(d->bev);
	struct evbuffer *out = bufferevent_get_output(d->bev);
	const struct pst_hop *hop;
	struct pst_err err;
	enum pst_step step;

	for (;;) {
		hop = &d->plan.hops[d->hop];
		pst_err_clear(&err);
		step = d->ops->input(d->ctx, in, out, &err);
		switch (step) {
		case PST_STEP_MORE:
			if (evbuffer_get_length(in) > PST_PROXY_REPLY_MAX) {
				pst_err_set(&err, PST_TEMP, PST_STAGE_PROXY,
				    "reply longer than %d bytes",
				    PST_PROXY_REPLY_MAX);
				hop_fail(d, &err);
			}
			return;
		case PST_STEP_DONE:
			break;
		case PST_STEP_FAIL:
		default:
			hop_fail(d, &err);
			return;
		}
		evtimer_del(d->timer);
		hop_ctx_free(d);
		d->info.hop_ms[d->hop] = elapsed_ms(&d->t_hop);
		d->info.nhops = d->hop + 1;
		dial_trace(d, "%s proxy %s:%u opened a tunnel to %s:%u in %ums",
		    d->ops->name, hop->host, hop->port, d->next_host,
		    d->next_port, d->info.hop_ms[d->hop]);
		if (++d->hop == d->plan.nhops) {
			dial_succeed(d);
			return;
		}
		if (hop_start(d) != 0)
			return;
		if (evbuffer_get_length(in) == 0)
			return;
	}
}

static void
hop_ctx_free(struct pst_dial *d)
{
	if (d->ctx == NULL)
		return;
	/* It may hold credentials. */
	explicit_bzero(d->ctx, d->ops->ctx_size);
	free(d->ctx);
	d->ctx = NULL;
}

/* Ends the dial with an error from the hop's ops, said in our words. */
static void
hop_fail(struct pst_dial *d, const struct pst_err *ops_err)
{
	const struct pst_hop *hop = &d->plan.hops[d->hop];
	char text[PST_ERR_TEXT_MAX * 2];
	struct pst_err err = *ops_err;

	if (err.cls == PST_OK)
		err.cls = PST_TEMP;
	if (err.stage == PST_STAGE_NONE)
		err.stage = PST_STAGE_PROXY;
	snprintf(text, sizeof(text), "%s proxy %s:%u: %s", d->ops->name,
	    hop->host, hop->port, err.text[0] != '\0' ? err.text :
	    "handshake failed");
	pst_err_set_text(&err, text, strlen(text));
	dial_fail(d, &err);
}

/* Hands the connection over; 'd' is gone afterwards. */
static void
dial_succeed(struct pst_dial *d)
{
	struct bufferevent *bev = d->bev;
	struct pst_dial_info info;
	pst_dial_cb cb = d->cb;
	void *arg = d->cb_arg;

	evtimer_del(d->timer);
	d->bev = NULL;
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	bufferevent_set_timeouts(bev, NULL, NULL);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	dial_enter(d, DIAL_ST_DONE);
	d->info.total_ms = elapsed_ms(&d->t_start);
	info = d->info;
	dial_free(d);
	cb(bev, &info, NULL, arg);
}

/* Reports 'err'; 'd' is gone afterwards. */
static void
dial_fail(struct pst_dial *d, const struct pst_err *err)
{
	struct pst_dial_info info;
	struct pst_err copy = *err;
	pst_dial_cb cb = d->cb;
	void *arg = d->cb_arg;

	dial_enter(d, DIAL_ST_FAILED);
	dial_trace(d, "failed: %s", copy.text);
	d->info.total_ms = elapsed_ms(&d->t_start);
	info = d->info;
	dial_free(d);
	cb(NULL, &info, &copy, arg);
}

static void
dial_free(struct pst_dial *d)
{
	pst_resolve_cancel(d->resolve);
	hop_ctx_free(d);
	if (d->bev != NULL)
		bufferevent_free(d->bev);
	if (d->timer != NULL)
		event_free(d->timer);
	explicit_bzero(d, sizeof(*d));
	free(d);
}
