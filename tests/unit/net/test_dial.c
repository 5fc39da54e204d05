/*
 * test_dial.c: the dialer over real loopback sockets, in one process.
 *
 * The peers are listeners on the test's own event loop: a scripted one
 * (expect these bytes, send those, pause, close) that stands in for
 * proxies, and a jammed one (listen backlog full, so the kernel drops new
 * SYNs) for connect timeouts.  Names other than "localhost" go to
 * fake_lookup() and never to a resolver.  The proxy hops run a test-only
 * "echo" ops table: it sends "HELLO host port", expects "OK" lines and
 * must leave whatever follows the reply in the input.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "common/err.h"
#include "common/pool.h"
#include "net/dial.h"
#include "net/resolve.h"
#include "net/sockaddr.h"
#include "unit.h"

static struct event_base *base;
static struct pst_pool *pool;
static atomic_int lookups;

/* ---- fixture ---------------------------------------------------------- */

static void
setup(void)
{
	struct pst_err err;

	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(evthread_use_pthreads(), 0);
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	pool = pst_pool_new(base, 2, &err);
	ck_assert_ptr_nonnull(pool);
	atomic_store(&lookups, 0);
}

static void
teardown(void)
{
	pst_pool_free(pool);
	event_base_free(base);
}

static int
elapsed_ms(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int)((now.tv_sec - t0->tv_sec) * 1000 +
	    (now.tv_nsec - t0->tv_nsec) / 1000000);
}

/* Runs the loop until '*flag' is set or 'ms' have passed. */
static void
run_until(const int *flag, int ms)
{
	struct timeval tick = { 0, 10 * 1000 };
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while ((flag == NULL || !*flag) && elapsed_ms(&t0) < ms) {
		event_base_loopexit(base, &tick);
		event_base_dispatch(base);
	}
}

static void
addr_of(const char *ip, uint16_t port, struct sockaddr_storage *ss,
    socklen_t *len)
{
	ck_assert_int_eq(pst_resolve_literal(ip, port, ss, len), 0);
}

static char *
fmt(const struct sockaddr_storage *ss, socklen_t len, char *buf, size_t n)
{
	return pst_sockaddr_format((const struct sockaddr *)ss, len, buf, n);
}

static uint16_t
port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* ---- the stand-in resolver -------------------------------------------- */

static void
add_addr(struct pst_addrs *out, const char *ip)
{
	socklen_t len;

	ck_assert_int_eq(pst_resolve_literal(ip, 0, &out->addr[out->count],
	    &len), 0);
	out->len[out->count++] = len;
}

static int
fake_lookup(const char *host, struct pst_addrs *out)
{
	struct timespec slow = { 0, 400 * 1000 * 1000 };

	atomic_fetch_add(&lookups, 1);
	out->count = 0;
	if (strcmp(host, "two.invalid") == 0) {
		/* Nothing listens on 127.0.0.3, so this one is refused. */
		add_addr(out, "127.0.0.3");
		add_addr(out, "127.0.0.1");
	} else if (strcmp(host, "refused.invalid") == 0) {
		add_addr(out, "127.0.0.3");
		add_addr(out, "127.0.0.4");
	} else if (strcmp(host, "mixed.invalid") == 0) {
		add_addr(out, "::1");
		add_addr(out, "127.0.0.1");
	} else if (strcmp(host, "v6only.invalid") == 0) {
		add_addr(out, "2001:db8::5");
	} else if (strcmp(host, "target.invalid") == 0) {
		add_addr(out, "2001:db8::5");
		add_addr(out, "192.0.2.7");
	} else if (strcmp(host, "slow.invalid") == 0) {
		nanosleep(&slow, NULL);
		add_addr(out, "127.0.0.1");
	} else
		return EAI_NONAME;
	return 0;
}

/* ---- dial outcome ----------------------------------------------------- */

struct outcome {
	int			 calls;
	struct bufferevent	*bev;
	struct pst_dial_info	 info;
	struct pst_err		 err;
	int			 failed;
	char			 trace[4096];
};

static void
outcome_cb(struct bufferevent *bev, const struct pst_dial_info *info,
    const struct pst_err *err, void *arg)
{
	struct outcome *o = arg;

	o->calls++;
	ck_assert_ptr_nonnull(info);
	o->info = *info;
	if (bev != NULL) {
		ck_assert_ptr_null(err);
		o->bev = bev;
	} else {
		ck_assert_ptr_nonnull(err);
		o->err = *err;
		o->failed = 1;
	}
}

static void
outcome_trace(void *arg, const char *line)
{
	struct outcome *o = arg;
	size_t used = strlen(o->trace);

	snprintf(o->trace + used, sizeof(o->trace) - used, "%s\n", line);
}

static void
outcome_free(struct outcome *o)
{
	if (o->bev != NULL)
		bufferevent_free(o->bev);
	o->bev = NULL;
}

/* Starts a dial of 'plan' reporting into 'o' and waits for the outcome. */
static void
dial_and_wait(struct pst_dial_plan *plan, struct outcome *o, int ms)
{
	struct pst_err err;

	memset(o, 0, sizeof(*o));
	plan->trace = outcome_trace;
	plan->trace_arg = o;
	if (plan->lookup == NULL)
		plan->lookup = fake_lookup;
	ck_assert_msg(pst_dial_start(base, pool, plan, outcome_cb, o, &err)
	    != NULL, "start: %s", err.text);
	/* Never from inside pst_dial_start(). */
	ck_assert_int_eq(o->calls, 0);
	run_until(&o->calls, ms);
	ck_assert_msg(o->calls == 1, "callback ran %d times", o->calls);
}

/* ---- a scripted peer -------------------------------------------------- */

enum peer_op {
	P_END = 0,		/* stop acting; keep the connection */
	P_EXPECT,		/* wait for exactly these bytes */
	P_SEND,			/* send 'data', or 'len' bytes of 'x' */
	P_PAUSE,		/* wait 'ms' */
	P_CLOSE,		/* close the connection */
};

struct peer_step {
	enum peer_op	 op;
	const char	*data;
	size_t		 len;
	unsigned	 ms;
};

struct peer {
	struct evconnlistener	*lev;
	struct sockaddr_storage	 addr;
	socklen_t		 addr_len;
	uint16_t		 port;
	int			 accepted;
	struct sockaddr_storage	 from;
	socklen_t		 from_len;
	struct bufferevent	*bev;
	struct event		*pause;
	const struct peer_step	*script;
	size_t			 at;
	int			 finished;	/* reached P_END */
	char			 bad[256];	/* a mismatch, if any */
};

static void	peer_run(struct peer *);

static void
peer_pause_cb(evutil_socket_t fd, short what, void *arg)
{
	peer_run(arg);
}

static void
peer_readcb(struct bufferevent *bev, void *arg)
{
	peer_run(arg);
}

static void
peer_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct peer *p = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		bufferevent_free(p->bev);
		p->bev = NULL;
	}
}

static void
peer_run(struct peer *p)
{
	const struct peer_step *s;
	struct evbuffer *in;
	struct timeval tv;
	size_t len;
	char *x;

	while (p->bev != NULL && p->script != NULL) {
		s = &p->script[p->at];
		in = bufferevent_get_input(p->bev);
		switch (s->op) {
		case P_END:
			p->finished = 1;
			return;
		case P_EXPECT:
			len = strlen(s->data);
			if (evbuffer_get_length(in) < len)
				return;
			if (memcmp(evbuffer_pullup(in, (ssize_t)len), s->data,
			    len) != 0) {
				snprintf(p->bad, sizeof(p->bad),
				    "step %zu: expected \"%s\", got \"%.*s\"",
				    p->at, s->data, (int)len,
				    (char *)evbuffer_pullup(in, (ssize_t)len));
				bufferevent_free(p->bev);
				p->bev = NULL;
				return;
			}
			evbuffer_drain(in, len);
			break;
		case P_SEND:
			if (s->data != NULL)
				bufferevent_write(p->bev, s->data,
				    strlen(s->data));
			else {
				ck_assert_ptr_nonnull(x = malloc(s->len));
				memset(x, 'x', s->len);
				bufferevent_write(p->bev, x, s->len);
				free(x);
			}
			break;
		case P_PAUSE:
			p->at++;
			tv.tv_sec = s->ms / 1000;
			tv.tv_usec = (s->ms % 1000) * 1000;
			evtimer_add(p->pause, &tv);
			return;
		case P_CLOSE:
			p->at++;
			bufferevent_free(p->bev);
			p->bev = NULL;
			return;
		}
		p->at++;
	}
}

static void
peer_accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct peer *p = arg;
	int one = 1;

	p->accepted++;
	if (p->bev != NULL) {
		close(fd);
		return;
	}
	p->from_len = sizeof(p->from);
	ck_assert_int_eq(getpeername(fd, (struct sockaddr *)&p->from,
	    &p->from_len), 0);
	/* Each send its own segment, so replies arrive split. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	p->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	ck_assert_ptr_nonnull(p->bev);
	bufferevent_setcb(p->bev, peer_readcb, NULL, peer_eventcb, p);
	bufferevent_enable(p->bev, EV_READ | EV_WRITE);
	peer_run(p);
}

/* Listens on 'ip' port 0.  Returns -1 when that address is unusable. */
static int
peer_open(struct peer *p, const char *ip, const struct peer_step *script)
{
	struct sockaddr_storage ss;
	socklen_t len;

	memset(p, 0, sizeof(*p));
	p->script = script;
	addr_of(ip, 0, &ss, &len);
	p->lev = evconnlistener_new_bind(base, peer_accept_cb, p,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
	    (struct sockaddr *)&ss, (int)len);
	if (p->lev == NULL)
		return -1;
	p->addr_len = sizeof(p->addr);
	ck_assert_int_eq(getsockname(evconnlistener_get_fd(p->lev),
	    (struct sockaddr *)&p->addr, &p->addr_len), 0);
	p->port = port_of(&p->addr);
	p->pause = evtimer_new(base, peer_pause_cb, p);
	return 0;
}

static void
peer_close(struct peer *p)
{
	if (p->bev != NULL)
		bufferevent_free(p->bev);
	if (p->pause != NULL)
		event_free(p->pause);
	if (p->lev != NULL)
		evconnlistener_free(p->lev);
	memset(p, 0, sizeof(*p));
}

/* A bound, never listening port on 127.0.0.1: connects are refused. */
static int
closed_port(uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	addr_of("127.0.0.1", 0, &ss, &len);
	ck_assert_int_ne(fd = socket(AF_INET, SOCK_STREAM, 0), -1);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&ss, len), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	*port = port_of(&ss);
	return fd;
}

/*
 * A listener whose accept queue is full: listen(fd, 0), then connections
 * until one stays pending.  New SYNs are then dropped on loopback, and a
 * connect waits like one to a silent host.  Returns -1 when the kernel
 * does not behave so (the timeout tests then say they were skipped).
 */
struct jam {
	int		 lfd;
	int		 fill[8];
	size_t		 nfill;
	uint16_t	 port;
};

static int
jam_open(struct jam *j)
{
	struct sockaddr_storage ss;
	struct pollfd pfd;
	socklen_t len;
	int fd;

	memset(j, 0, sizeof(*j));
	addr_of("127.0.0.1", 0, &ss, &len);
	ck_assert_int_ne(j->lfd = socket(AF_INET, SOCK_STREAM, 0), -1);
	ck_assert_int_eq(bind(j->lfd, (struct sockaddr *)&ss, len), 0);
	ck_assert_int_eq(listen(j->lfd, 0), 0);
	ck_assert_int_eq(getsockname(j->lfd, (struct sockaddr *)&ss, &len),
	    0);
	j->port = port_of(&ss);
	while (j->nfill < NELEMS(j->fill)) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		ck_assert_int_ne(fd, -1);
		j->fill[j->nfill++] = fd;
		if (connect(fd, (struct sockaddr *)&ss, len) == 0)
			continue;
		ck_assert_int_eq(errno, EINPROGRESS);
		pfd.fd = fd;
		pfd.events = POLLOUT;
		pfd.revents = 0;
		if (poll(&pfd, 1, 200) == 0)
			return 0;	/* this one hangs: jammed */
	}
	return -1;
}

static void
jam_close(struct jam *j)
{
	size_t i;

	for (i = 0; i < j->nfill; i++)
		close(j->fill[i]);
	close(j->lfd);
}

/* ---- plan checks ------------------------------------------------------ */

static const struct {
	const char	*host;
	uint16_t	 port;
	int		 ok;
} targets[] = {
	{ "smtp.example.org", 587, 1 },
	{ "127.0.0.1", 25, 1 },
	{ "::1", 25, 1 },
	{ "fe80::1%1", 25, 1 },
	{ "localhost", 25, 1 },
	{ "[::1]", 25, 0 },
	{ "127.0.0.1:25", 25, 0 },
	{ "", 25, 0 },
	{ "bad_host", 25, 0 },
	{ "has space.example", 25, 0 },
	{ "smtp.example.org", 0, 0 },
};

START_TEST(plan_init_validates_the_target)
{
	struct pst_dial_plan plan;
	struct pst_err err;
	int rc;

	rc = pst_dial_plan_init(&plan, targets[_i].host, targets[_i].port,
	    &err);
	ck_assert_msg(rc == (targets[_i].ok ? 0 : -1), "\"%s\" port %u",
	    targets[_i].host, targets[_i].port);
	if (rc == 0) {
		ck_assert_str_eq(plan.host, targets[_i].host);
		ck_assert_uint_eq(plan.timeouts.connect_ms,
		    PST_DIAL_DEFAULT_TIMEOUT_MS);
		ck_assert_uint_eq(plan.nhops, 0);
	} else {
		ck_assert_int_eq(err.cls, PST_LOCAL);
		ck_assert_int_eq(err.stage, PST_STAGE_CONFIG);
	}
}
END_TEST

START_TEST(plan_init_refuses_long_and_null_hosts)
{
	struct pst_dial_plan plan;
	struct pst_err err;
	char name[300];

	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	ck_assert_int_eq(pst_dial_plan_init(&plan, name, 25, &err), -1);
	ck_assert_int_eq(pst_dial_plan_init(&plan, NULL, 25, &err), -1);
}
END_TEST

static const struct {
	const char	*bind;
	const char	*bind6;
	const char	*why;		/* NULL: accepted */
} binds[] = {
	{ "127.0.0.2", NULL, NULL },
	{ NULL, "::1", NULL },
	{ "192.0.2.10", "2001:db8::10", NULL },
	{ "0.0.0.0", NULL, NULL },
	{ "", "", NULL },
	{ NULL, "fe80::1%1", NULL },
	{ "::1", NULL, "bind: \"::1\" is an IPv6 address; set it as bind6" },
	{ NULL, "127.0.0.1",
	    "bind6: \"127.0.0.1\" is an IPv4 address; set it as bind" },
	{ "localhost", NULL, "bind: \"localhost\" is not an IPv4 address" },
	{ NULL, "localhost", "bind6: \"localhost\" is not an IPv6 address" },
	{ "127.1", NULL, "bind: \"127.1\" is not an IPv4 address" },
	{ "1.2.3.4 ", NULL, "bind: \"1.2.3.4 \" is not an IPv4 address" },
	{ "1.2.3.4\n", NULL, "bind: \"1.2.3.4?\" is not an IPv4 address" },
	{ "256.1.1.1", NULL, "bind: \"256.1.1.1\" is not" },
	{ "127.0.0.2", "::1::", "bind6: \"::1::\" is not an IPv6 address" },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaa", NULL, "bind: \"aaaa" },
};

START_TEST(plan_set_bind_checks_each_family)
{
	struct pst_dial_plan plan;
	struct pst_err err;
	int rc;

	ck_assert_int_eq(pst_dial_plan_init(&plan, "127.0.0.1", 25, &err), 0);
	ck_assert_int_eq(pst_dial_plan_set_bind(&plan, "127.0.0.9", NULL,
	    &err), 0);
	rc = pst_dial_plan_set_bind(&plan, binds[_i].bind, binds[_i].bind6,
	    &err);
	if (binds[_i].why == NULL) {
		ck_assert_msg(rc == 0, "refused: %s", err.text);
		ck_assert_str_eq(plan.bind, binds[_i].bind != NULL ?
		    binds[_i].bind : "");
		ck_assert_str_eq(plan.bind6, binds[_i].bind6 != NULL ?
		    binds[_i].bind6 : "");
		return;
	}
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(err.cls, PST_LOCAL);
	ck_assert_int_eq(err.stage, PST_STAGE_CONFIG);
	ck_assert_msg(strncmp(err.text, binds[_i].why,
	    strlen(binds[_i].why)) == 0, "got \"%s\"", err.text);
	/* A refused pair leaves the plan as it was. */
	ck_assert_str_eq(plan.bind, "127.0.0.9");
	ck_assert_str_eq(plan.bind6, "");
}
END_TEST

/* ---- the test-only proxy: "echo" -------------------------------------- */

struct echo_ctx {
	int	 rounds;
};

static int
echo_begin(void *ctx, const struct pst_hop *hop, const char *host,
    uint16_t port, struct evbuffer *out, struct pst_err *err)
{
	if (strcmp(hop->user, "refuse-begin") == 0)
		return pst_err_set(err, PST_PERM, PST_STAGE_PROXY,
		    "begin refused");
	evbuffer_add_printf(out, "HELLO %s %u\r\n", host, port);
	return 0;
}

/* One CRLF line at a time: OK opens the tunnel, NO refuses, AUTH? asks. */
static enum pst_step
echo_input(void *vctx, struct evbuffer *in, struct evbuffer *out,
    struct pst_err *err)
{
	struct echo_ctx *ctx = vctx;
	struct evbuffer_ptr eol;
	size_t eol_len;
	char line[64];

	for (;;) {
		eol = evbuffer_search_eol(in, NULL, &eol_len,
		    EVBUFFER_EOL_CRLF_STRICT);
		if (eol.pos < 0)
			return PST_STEP_MORE;
		if ((size_t)eol.pos >= sizeof(line)) {
			pst_err_set(err, PST_PERM, PST_STAGE_PROXY,
			    "line too long");
			return PST_STEP_FAIL;
		}
		evbuffer_remove(in, line, (size_t)eol.pos);
		line[eol.pos] = '\0';
		evbuffer_drain(in, eol_len);
		if (strcmp(line, "OK") == 0)
			return PST_STEP_DONE;
		if (strcmp(line, "NO") == 0) {
			pst_err_set(err, PST_PERM, PST_STAGE_PROXY,
			    "refused: NO");
			return PST_STEP_FAIL;
		}
		if (strcmp(line, "AUTH?") == 0 && ctx->rounds++ == 0) {
			evbuffer_add_printf(out, "USER bob\r\n");
			continue;
		}
		/* No class, no stage: the runner must fill them in. */
		pst_err_set_text(err, line, strlen(line));
		return PST_STEP_FAIL;
	}
}

static const struct pst_proxy_ops echo_ops = {
	.name = "echo",
	.flags = 0,
	.ctx_size = sizeof(struct echo_ctx),
	.begin = echo_begin,
	.input = echo_input,
};

static const struct pst_proxy_ops echo4_ops = {
	.name = "echo4",
	.flags = PST_PROXY_F_IPV4_ONLY,
	.ctx_size = sizeof(struct echo_ctx),
	.begin = echo_begin,
	.input = echo_input,
};

static void
add_echo_hop(struct pst_dial_plan *plan, const struct pst_proxy_ops *ops,
    const char *host, uint16_t port, bool remote)
{
	struct pst_hop hop;
	struct pst_err err;

	memset(&hop, 0, sizeof(hop));
	hop.kind = PST_HOP_NONE;
	snprintf(hop.host, sizeof(hop.host), "%s", host);
	hop.port = port;
	hop.remote_resolve = remote;
	hop.ops = ops;
	ck_assert_msg(pst_dial_plan_add_hop(plan, &hop, &err) == 0, "%s",
	    err.text);
}

START_TEST(plan_add_hop_refuses_what_cannot_run)
{
	struct pst_dial_plan plan;
	struct pst_hop hop;
	struct pst_err err;
	size_t i;

	ck_assert_int_eq(pst_dial_plan_init(&plan, "127.0.0.1", 25, &err), 0);
	memset(&hop, 0, sizeof(hop));
	snprintf(hop.host, sizeof(hop.host), "127.0.0.1");
	hop.port = 1080;

	hop.kind = PST_HOP_NONE;
	ck_assert_int_eq(pst_dial_plan_add_hop(&plan, &hop, &err), -1);
	ck_assert_str_eq(err.text, "proxy 1: no proxy kind given");
	hop.kind = PST_HOP_SOCKS5;
	if (pst_proxy_ops_for(PST_HOP_SOCKS5) == NULL) {
		ck_assert_int_eq(pst_dial_plan_add_hop(&plan, &hop, &err),
		    -1);
		ck_assert_str_eq(err.text,
		    "proxy 1: socks5 proxies are not supported yet");
	}
	hop.kind = (enum pst_hop_kind)42;
	ck_assert_int_eq(pst_dial_plan_add_hop(&plan, &hop, &err), -1);

	hop.kind = PST_HOP_NONE;
	hop.ops = &echo_ops;
	hop.port = 0;
	ck_assert_int_eq(pst_dial_plan_add_hop(&plan, &hop, &err), -1);
	hop.port = 1080;
	snprintf(hop.host, sizeof(hop.host), "bad host");
	ck_assert_int_eq(pst_dial_plan_add_hop(&plan, &hop, &err), -1);
	memset(hop.host, 'a', sizeof(hop.host));
	ck_assert_int_eq(pst_dial_plan_add_hop(&plan, &hop, &err), -1);
	snprintf(hop.host, sizeof(hop.host), "127.0.0.1");
	memset(hop.password, 'p', sizeof(hop.password));
	ck_assert_int_eq(pst_dial_plan_add_hop(&plan, &hop, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.text, "longer than 255 bytes"));
	memset(hop.password, 0, sizeof(hop.password));

	for (i = 0; i < PST_DIAL_MAX_HOPS; i++)
		ck_assert_int_eq(pst_dial_plan_add_hop(&plan, &hop, &err), 0);
	ck_assert_int_eq(pst_dial_plan_add_hop(&plan, &hop, &err), -1);
	ck_assert_str_eq(err.text,
	    "proxy 5: at most 4 proxies can be chained");
	ck_assert_uint_eq(plan.nhops, PST_DIAL_MAX_HOPS);

	pst_dial_plan_clear(&plan);
	ck_assert_uint_eq(plan.nhops, 0);
	ck_assert_str_eq(pst_hop_kind_name(PST_HOP_HTTP), "http");
	ck_assert_str_eq(pst_hop_kind_name((enum pst_hop_kind)42), "unknown");
	ck_assert_ptr_null(pst_proxy_ops_for((enum pst_hop_kind)42));
	ck_assert_ptr_null(pst_proxy_ops_for(PST_HOP_NONE));
}
END_TEST

/* ---- direct dials ----------------------------------------------------- */

START_TEST(dial_connects_and_reports_both_ends)
{
	struct pst_dial_plan plan;
	struct outcome o;
	struct peer p;
	struct pst_err err;
	char a[64], b[64];
	socklen_t len;
	int one = 0;

	ck_assert_int_eq(peer_open(&p, "127.0.0.1", NULL), 0);
	ck_assert_int_eq(pst_dial_plan_init(&plan, "127.0.0.1", p.port, &err),
	    0);
	dial_and_wait(&plan, &o, 5000);
	ck_assert_msg(!o.failed, "%s", o.err.text);
	ck_assert_ptr_nonnull(o.bev);
	ck_assert_str_eq(fmt(&o.info.peer, o.info.peer_len, a, sizeof(a)),
	    fmt(&p.addr, p.addr_len, b, sizeof(b)));
	ck_assert_int_eq(o.info.local.ss_family, AF_INET);
	ck_assert_uint_ne(port_of(&o.info.local), 0);
	ck_assert_uint_eq(o.info.addrs, 1);
	ck_assert_uint_eq(o.info.attempts, 1);
	ck_assert_uint_eq(o.info.nhops, 0);
	ck_assert_uint_ge(o.info.total_ms, o.info.connect_ms);
	/* Handed over enabled, without callbacks, without Nagle. */
	ck_assert_int_eq(bufferevent_get_enabled(o.bev), EV_READ | EV_WRITE);
	len = sizeof(one);
	ck_assert_int_eq(getsockopt(bufferevent_getfd(o.bev), IPPROTO_TCP,
	    TCP_NODELAY, &one, &len), 0);
	ck_assert_int_ne(one, 0);
	run_until(&p.accepted, 5000);
	ck_assert_int_eq(p.accepted, 1);
	ck_assert_str_eq(fmt(&p.from, p.from_len, a, sizeof(a)),
	    fmt(&o.info.local, o.info.local_len, b, sizeof(b)));
	ck_assert_ptr_nonnull(strstr(o.trace, "connecting to 127.0.0.1:"));
	ck_assert_int_eq(atomic_load(&lookups), 0);
	outcome_free(&o);
	peer_close(&p);
}
END_TEST

START_TEST(dial_refused_is_fast_and_names_the_address)
{
	struct pst_dial_plan plan;
	struct outcome o;
	struct pst_err err;
	struct timespec t0;
	char want[64];
	uint16_t port;
	int fd;

	fd = closed_port(&port);
	ck_assert_int_eq(pst_dial_plan_init(&plan, "127.0.0.1", port, &err),
	    0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	dial_and_wait(&plan, &o, 5000);
	ck_assert_int_lt(elapsed_ms(&t0), 2000);
	ck_assert(o.failed);
	ck_assert_int_eq(o.err.cls, PST_TEMP);
	ck_assert_int_eq(o.err.stage, PST_STAGE_CONNECT);
	ck_assert_int_eq(o.err.sys_errno, ECONNREFUSED);
	snprintf(want, sizeof(want), "connect to 127.0.0.1:%u: connection "
	    "refused", port);
	ck_assert_str_eq(o.err.text, want);
	ck_assert_uint_eq(o.info.peer_len, 0);
	ck_assert_uint_eq(o.info.attempts, 1);
	close(fd);
}
END_TEST

START_TEST(dial_connect_timeout_names_address_and_duration)
{
	struct pst_dial_plan plan;
	struct outcome o;
	struct pst_err err;
	struct timespec t0;
	struct jam j;
	char want[80];
	int ms;

	if (jam_open(&j) == -1) {
		jam_close(&j);
		fprintf(stderr, "# SKIP connect timeout: the kernel accepts "
		    "past a full backlog\n");
		return;
	}
	ck_assert_int_eq(pst_dial_plan_init(&plan, "127.0.0.1", j.port, &err),
	    0);
	plan.timeouts.connect_ms = 200;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	dial_and_wait(&plan, &o, 5000);
	ms = elapsed_ms(&t0);
	ck_assert(o.failed);
	ck_assert_int_eq(o.err.cls, PST_TEMP);
	ck_assert_int_eq(o.err.stage, PST_STAGE_CONNECT);
	snprintf(want, sizeof(want),
	    "connect to 127.0.0.1:%u timed out after 200ms", j.port);
	ck_assert_str_eq(o.err.text, want);
	ck_assert_int_ge(ms, 180);
	ck_assert_int_lt(ms, 3000);
	ck_assert_uint_ge(o.info.connect_ms, 180);
	jam_close(&j);
}
END_TEST

START_TEST(dial_binds_the_source_address_the_peer_sees)
{
	struct pst_dial_plan plan;
	struct outcome o;
	struct peer p;
	struct pst_err err;
	char a[64];

	ck_assert_int_eq(peer_open(&p, "127.0.0.1", NULL), 0);
	ck_assert_int_eq(pst_dial_plan_init(&plan, "127.0.0.1", p.port, &err),
	    0);
	ck_assert_int_eq(pst_dial_plan_set_bind(&plan, "127.0.0.2", NULL,
	    &err), 0);
	dial_and_wait(&plan, &o, 5000);
	ck_assert_msg(!o.failed, "%s", o.err.text);
	run_until(&p.accepted, 5000);
	ck_assert_int_eq(p.accepted, 1);
	fmt(&p.from, p.from_len, a, sizeof(a));
	ck_assert_msg(strncmp(a, "127.0.0.2:", 10) == 0, "peer saw %s", a);
	fmt(&o.info.local, o.info.local_len, a, sizeof(a));
	ck_assert_msg(strncmp(a, "127.0.0.2:", 10) == 0, "local is %s", a);
	ck_assert_ptr_nonnull(strstr(o.trace, " from 127.0.0.2"));
	outcome_free(&o);
	peer_close(&p);
}
END_TEST

START_TEST(dial_foreign_source_fails_at_bind_and_sends_nothing)
{
	struct sockaddr_storage ss;
	struct pst_dial_plan plan;
	struct outcome o;
	struct peer p;
	struct pst_err err;
	socklen_t len;
	int fd, rc;

	/* Only meaningful where 192.0.2.1 is not an address of this host. */
	addr_of("192.0.2.1", 0, &ss, &len);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	rc = bind(fd, (struct sockaddr *)&ss, len);
	close(fd);
	if (rc == 0) {
		fprintf(stderr, "# SKIP 192.0.2.1 is local here\n");
		return;
	}
	ck_assert_int_eq(peer_open(&p, "127.0.0.1", NULL), 0);
	ck_assert_int_eq(pst_dial_plan_init(&plan, "127.0.0.1", p.port, &err),
	    0);
	ck_assert_int_eq(pst_dial_plan_set_bind(&plan, "192.0.2.1", NULL,
	    &err), 0);
	dial_and_wait(&plan, &o, 5000);
	ck_assert(o.failed);
	ck_assert_int_eq(o.err.cls, PST_TEMP);
	ck_assert_int_eq(o.err.stage, PST_STAGE_BIND);
	ck_assert_int_eq(o.err.sys_errno, EADDRNOTAVAIL);
	ck_assert_msg(strncmp(o.err.text, "cannot bind source address "
	    "192.0.2.1 to connect to 127.0.0.1:", 50) == 0, "got \"%s\"",
	    o.err.text);
	/* Never a fallback to an unbound connect. */
	run_until(NULL, 200);
	ck_assert_int_eq(p.accepted, 0);
	peer_close(&p);
}
END_TEST

START_TEST(dial_ipv6_loopback)
{
	struct pst_dial_plan plan;
	struct outcome o;
	struct peer p;
	struct pst_err err;
	char a[64];

	if (peer_open(&p, "::1", NULL) == -1) {
		fprintf(stderr, "# SKIP no IPv6 loopback here\n");
		return;
	}
	ck_assert_int_eq(pst_dial_plan_init(&plan, "::1", p.port, &err), 0);
	ck_assert_int_eq(pst_dial_plan_set_bind(&plan, NULL, "::1", &err), 0);
	dial_and_wait(&plan, &o, 5000);
	ck_assert_msg(!o.failed, "%s", o.err.text);
	ck_assert_int_eq(o.info.peer.ss_family, AF_INET6);
	fmt(&o.info.local, o.info.local_len, a, sizeof(a));
	ck_assert_msg(strncmp(a, "[::1]:", 6) == 0, "local is %s", a);
	run_until(&p.accepted, 5000);
	ck_assert_int_eq(p.accepted, 1);
	outcome_free(&o);
	peer_close(&p);
}
END_TEST

START_TEST(dial_never_uses_a_family_without_a_source)
{
	struct pst_dial_plan plan;
	struct outcome o;
	struct pst_err err;

	ck_assert_int_eq(pst_dial_plan_init(&plan, "::1", 25, &err), 0);
	ck_assert_int_eq(pst_dial_plan_set_bind(&plan, "127.0.0.1", NULL,
	    &err), 0);
	dial_and_wait(&plan, &o, 5000);
	ck_assert(o.failed);
	ck_assert_int_eq(o.err.cls, PST_TEMP);
	ck_assert_int_eq(o.err.stage, PST_STAGE_BIND);
	ck_assert_str_eq(o.err.text, "no address of ::1 can be used from the "
	    "configured source address (bind 127.0.0.1): [::1]:25 skipped, "
	    "no bind6 set");
	ck_assert_uint_eq(o.info.attempts, 0);
	ck_assert_uint_eq(o.info.skipped, 1);
}
END_TEST

START_TEST(dial_skips_the_unsourced_family_and_uses_the_other)
{
	struct pst_dial_plan plan;
	struct outcome o;
	struct peer p;
	struct pst_err err;
	char a[64];

	ck_assert_int_eq(peer_open(&p, "127.0.0.1", NULL), 0);
	ck_assert_int_eq(pst_dial_plan_init(&plan, "mixed.invalid", p.port,
	    &err), 0);
	ck_assert_int_eq(pst_dial_plan_set_bind(&plan, "127.0.0.2", NULL,
	    &err), 0);
	dial_and_wait(&plan, &o, 5000);
	ck_assert_msg(!o.failed, "%s", o.err.text);
	ck_assert_uint_eq(o.info.addrs, 2);
	ck_assert_uint_eq(o.info.skipped, 1);
	ck_assert_uint_eq(o.info.attempts, 1);
	fmt(&o.info.local, o.info.local_len, a, sizeof(a));
	ck_assert_msg(strncmp(a, "127.0.0.2:", 10) == 0, "local is %s", a);
	ck_assert_ptr_nonnull(strstr(o.trace, "skipping [::1]:"));
	outcome_free(&o);
	peer_close(&p);
}
END_TEST

START_TEST(dial_tries_addresses_in_order_until_one_connects)
{
	struct pst_dial_plan plan;
	struct outcome o;
	struct peer p;
	struct pst_err err;
	char a[64], b[64];
	char *first, *second;

	ck_assert_int_eq(peer_open(&p, "127.0.0.1", NULL), 0);
	ck_assert_int_eq(pst_dial_plan_init(&plan, "two.invalid", p.port,
	    &err), 0);
	dial_and_wait(&plan, &o, 5000);
	ck_assert_msg(!o.failed, "%s", o.err.text);
	ck_assert_int_eq(atomic_load(&lookups), 1);
	ck_assert_uint_eq(o.info.addrs, 2);
	ck_assert_uint_eq(o.info.attempts, 2);
	ck_assert_str_eq(fmt(&o.info.peer, o.info.peer_len, a, sizeof(a)),
	    fmt(&p.addr, p.addr_len, b, sizeof(b)));
	first = strstr(o.trace, "connecting to 127.0.0.3:");
	second = strstr(o.trace, "connecting to 127.0.0.1:");
	ck_assert_ptr_nonnull(first);
	ck_assert_ptr_nonnull(second);
	ck_assert(first < second);
	outcome_free(&o);
	peer_close(&p);
}
END_TEST

START_TEST(dial_all_addresses_failing_reports_the_last)
{
	struct pst_dial_plan plan;
	struct outcome o;
	struct pst_err err;
	char want[128];
	uint16_t port;
	int fd;

	fd = closed_port(&port);
	ck_assert_int_eq(pst_dial_plan_init(&plan, "refused.invalid", port,
	    &err), 0);
	dial_and_wait(&plan, &o, 5000);
	ck_assert(o.failed);
	ck_assert_int_eq(o.err.stage, PST_STAGE_CONNECT);
	snprintf(want, sizeof(want), "connect to 127.0.0.4:%u: connection "
	    "refused (2 of 2 addresses tried)", port);
	ck_assert_str_eq(o.err.text, want);
	close(fd);
}
END_TEST

START_TEST(dial_lookup_failure_is_a_deferral)
{
	struct pst_dial_plan plan;
	struct outcome o;
	struct pst_err err;

	ck_assert_int_eq(pst_dial_plan_init(&plan, "noname.invalid", 25,
	    &err), 0);
	dial_and_wait(&plan, &o, 5000);
	ck_assert(o.failed);
	ck_assert_int_eq(o.err.cls, PST_TEMP);
	ck_assert_int_eq(o.err.stage, PST_STAGE_RESOLVE);
	ck_assert_str_eq(o.err.text, "noname.invalid: host not found");
	ck_assert_uint_eq(o.info.attempts, 0);
}
END_TEST

START_TEST(dial_lookup_timeout_abandons_the_lookup)
{
	struct pst_dial_plan plan;
	struct outcome o;
	struct pst_err err;

	ck_assert_int_eq(pst_dial_plan_init(&plan, "slow.invalid", 25, &err),
	    0);
	plan.timeouts.resolve_ms = 100;
	dial_and_wait(&plan, &o, 5000);
	ck_assert(o.failed);
	ck_assert_int_eq(o.err.cls, PST_TEMP);
	ck_assert_int_eq(o.err.stage, PST_STAGE_RESOLVE);
	ck_assert_str_eq(o.err.text,
	    "lookup of slow.invalid timed out after 100ms");
	/* The late answer lands on nothing. */
	while (pst_pool_pending(pool) > 0)
		run_until(NULL, 50);
	ck_assert_int_eq(o.calls, 1);
}
END_TEST

START_TEST(dial_localhost_through_the_pool)
{
	struct pst_dial_plan plan;
	struct outcome o;
	struct peer p;
	struct pst_err err;

	ck_assert_int_eq(peer_open(&p, "127.0.0.1", NULL), 0);
	ck_assert_int_eq(pst_dial_plan_init(&plan, "localhost", p.port, &err),
	    0);
	plan.lookup = pst_lookup_getaddrinfo;
	dial_and_wait(&plan, &o, 10000);
	/* "localhost" may also say ::1, where nothing listens: then the
	 * IPv4 address is tried next. */
	ck_assert_msg(!o.failed, "%s", o.err.text);
	ck_assert_int_eq(o.info.peer.ss_family, AF_INET);
	outcome_free(&o);
	peer_close(&p);
}
END_TEST

START_TEST(dial_start_refuses_names_without_a_pool_and_bad_plans)
{
	struct pst_dial_plan plan;
	struct outcome o;
	struct pst_err err;

	memset(&o, 0, sizeof(o));
	ck_assert_int_eq(pst_dial_plan_init(&plan, "localhost", 25, &err), 0);
	ck_assert_ptr_null(pst_dial_start(base, NULL, &plan, outcome_cb, &o,
	    &err));
	ck_assert_int_eq(err.cls, PST_LOCAL);
	memset(&plan, 0, sizeof(plan));
	ck_assert_ptr_null(pst_dial_start(base, pool, &plan, outcome_cb, &o,
	    &err));
	ck_assert_int_eq(err.cls, PST_LOCAL);
	run_until(NULL, 50);
	ck_assert_int_eq(o.calls, 0);
}
END_TEST

/* ---- cancel ----------------------------------------------------------- */

START_TEST(dial_cancel_during_lookup_never_calls_back)
{
	struct pst_dial_plan plan;
	struct pst_dial *d;
	struct outcome o;
	struct pst_err err;

	memset(&o, 0, sizeof(o));
	ck_assert_int_eq(pst_dial_plan_init(&plan, "slow.invalid", 25, &err),
	    0);
	plan.lookup = fake_lookup;
	ck_assert_ptr_nonnull(d = pst_dial_start(base, pool, &plan,
	    outcome_cb, &o, &err));
	run_until(NULL, 50);
	pst_dial_cancel(d);
	while (pst_pool_pending(pool) > 0)
		run_until(NULL, 50);
	run_until(NULL, 50);
	ck_assert_int_eq(o.calls, 0);
	ck_assert_int_eq(atomic_load(&lookups), 1);
	pst_dial_cancel(NULL);
}
END_TEST

START_TEST(dial_cancel_before_the_first_turn_never_calls_back)
{
	struct pst_dial_plan plan;
	struct outcome o;
	struct pst_err err;

	memset(&o, 0, sizeof(o));
	ck_assert_int_eq(pst_dial_plan_init(&plan, "127.0.0.1", 25, &err), 0);
	pst_dial_cancel(pst_dial_start(base, pool, &plan, outcome_cb, &o,
	    &err));
	run_until(NULL, 100);
	ck_assert_int_eq(o.calls, 0);
}
END_TEST

START_TEST(dial_cancel_during_connect_never_calls_back)
{
	struct pst_dial_plan plan;
	struct pst_dial *d;
	struct outcome o;
	struct pst_err err;
	struct jam j;

	if (jam_open(&j) == -1) {
		jam_close(&j);
		fprintf(stderr, "# SKIP cancel during connect: no jam\n");
		return;
	}
	memset(&o, 0, sizeof(o));
	ck_assert_int_eq(pst_dial_plan_init(&plan, "127.0.0.1", j.port, &err),
	    0);
	plan.timeouts.connect_ms = 300;
	ck_assert_ptr_nonnull(d = pst_dial_start(base, pool, &plan,
	    outcome_cb, &o, &err));
	run_until(NULL, 100);
	pst_dial_cancel(d);
	run_until(NULL, 400);
	ck_assert_int_eq(o.calls, 0);
	jam_close(&j);
}
END_TEST

/* ---- proxy hops with the echo ops ------------------------------------- */

static const struct peer_step split_reply[] = {
	{ P_EXPECT, "HELLO mx.example.org 25\r\n", 0, 0 },
	{ P_SEND, "O", 0, 0 },
	{ P_PAUSE, NULL, 0, 50 },
	{ P_SEND, "K\r", 0, 0 },
	{ P_PAUSE, NULL, 0, 50 },
	{ P_SEND, "\n220 ready\r\n", 0, 0 },
	{ P_END, NULL, 0, 0 },
};

/* Reads everything in 'bev's input as a string. */
static char *
input_text(struct bufferevent *bev, char *buf, size_t len)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in);

	ck_assert_uint_lt(n, len);
	evbuffer_copyout(in, buf, n);
	buf[n] = '\0';
	return buf;
}

START_TEST(hop_split_reply_then_greeting_handed_over_intact)
{
	struct pst_dial_plan plan;
	struct outcome o;
	struct peer p;
	struct pst_err err;
	char buf[128];

	ck_assert_int_eq(peer_open(&p, "127.0.0.1", split_reply), 0);
	ck_assert_int_eq(pst_dial_plan_init(&plan, "mx.example.org", 25,
	    &err), 0);
	add_echo_hop(&plan, &echo_ops, "127.0.0.1", p.port, true);
	dial_and_wait(&plan, &o, 5000);
	ck_assert_msg(!o.failed, "%s", o.err.text);
	ck_assert_str_eq(p.bad, "");
	/* The handshake took exactly "OK\r\n"; the greeting is untouched. */
	ck_assert_str_eq(input_text(o.bev, buf, sizeof(buf)), "220 ready\r\n");
	ck_assert_uint_eq(o.info.nhops, 1);
	ck_assert_uint_ge(o.info.hop_ms[0], 90);
	ck_assert_uint_eq(port_of(&o.info.peer), p.port);
	ck_assert_int_eq(bufferevent_get_enabled(o.bev), EV_READ | EV_WRITE);
	/* The target name went to the proxy, never to a resolver. */
	ck_assert_int_eq(atomic_load(&lookups), 0);
	outcome_free(&o);
	peer_close(&p);
}
END_TEST

static const struct peer_step one_segment[] = {
	{ P_EXPECT, "HELLO mx.example.org 25\r\n", 0, 0 },
	{ P_SEND, "OK\r\n220 ready\r\n250 extra\r\n", 0, 0 },
	{ P_END, NULL, 0, 0 },
};

START_TEST(hop_reply_and_greeting_in_one_segment)
{
	struct pst_dial_plan plan;
	struct outcome o;
	struct peer p;
	struct pst_err err;
	char buf[128];

	ck_assert_int_eq(peer_open(&p, "127.0.0.1", one_segment), 0);
	ck_assert_int_eq(pst_dial_plan_init(&plan, "mx.example.org", 25,
	    &err), 0);
	add_echo_hop(&plan, &echo_ops, "127.0.0.1", p.port, true);
	dial_and_wait(&plan, &o, 5000);
	ck_assert_msg(!o.failed, "%s", o.err.text);
	ck_assert_str_eq(input_text(o.bev, buf, sizeof(buf)),
	    "220 ready\r\n250 extra\r\n");
	outcome_free(&o);
	peer_close(&p);
}
END_TEST

static const struct peer_step two_hops[] = {
	{ P_EXPECT, "HELLO proxy2.example.org 1080\r\n", 0, 0 },
	{ P_SEND, "OK\r\n", 0, 0 },
	{ P_EXPECT, "HELLO mx.example.org 587\r\n", 0, 0 },
	{ P_SEND, "AUTH?\r\n", 0, 0 },
	{ P_EXPECT, "USER bob\r\n", 0, 0 },
	{ P_SEND, "OK\r\n220 through two\r\n", 0, 0 },
	{ P_END, NULL, 0, 0 },
};

START_TEST(hop_chain_of_two_with_a_second_round)
{
	struct pst_dial_plan plan;
	struct outcome o;
	struct peer p;
	struct pst_err err;
	char buf[128];

	ck_assert_int_eq(peer_open(&p, "127.0.0.1", two_hops), 0);
	ck_assert_int_eq(pst_dial_plan_init(&plan, "mx.example.org", 587,
	    &err), 0);
	add_echo_hop(&plan, &echo_ops, "127.0.0.1", p.port, true);
	add_echo_hop(&plan, &echo_ops, "proxy2.example.org", 1080, true);
	dial_and_wait(&plan, &o, 5000);
	ck_assert_msg(!o.failed, "%s", o.err.text);
	ck_assert_str_eq(p.bad, "");
	ck_assert_str_eq(input_text(o.bev, buf, sizeof(buf)),
	    "220 through two\r\n");
	ck_assert_uint_eq(o.info.nhops, 2);
	ck_assert_int_eq(atomic_load(&lookups), 0);
	outcome_free(&o);
	peer_close(&p);
}
END_TEST

/* A pipelining proxy: both replies before the second request. */
static const struct peer_step two_hops_early[] = {
	{ P_EXPECT, "HELLO proxy2.example.org 1080\r\n", 0, 0 },
	{ P_SEND, "OK\r\nOK\r\n220 early\r\n", 0, 0 },
	{ P_EXPECT, "HELLO mx.example.org 25\r\n", 0, 0 },
	{ P_END, NULL, 0, 0 },
};

START_TEST(hop_bytes_for_the_next_hop_already_waiting)
{
	struct pst_dial_plan plan;
	struct outcome o;
	struct peer p;
	struct pst_err err;
	char buf[128];

	ck_assert_int_eq(peer_open(&p, "127.0.0.1", two_hops_early), 0);
	ck_assert_int_eq(pst_dial_plan_init(&plan, "mx.example.org", 25,
	    &err), 0);
	add_echo_hop(&plan, &echo_ops, "127.0.0.1", p.port, true);
	add_echo_hop(&plan, &echo_ops, "proxy2.example.org", 1080, true);
	dial_and_wait(&plan, &o, 5000);
	ck_assert_msg(!o.failed, "%s", o.err.text);
	ck_assert_str_eq(input_text(o.bev, buf, sizeof(buf)),
	    "220 early\r\n");
	ck_assert_uint_eq(o.info.nhops, 2);
	/* The second request still went out. */
	run_until(&p.finished, 5000);
	ck_assert_str_eq(p.bad, "");
	ck_assert(p.finished);
	outcome_free(&o);
	peer_close(&p);
}
END_TEST

static const struct peer_step local_target[] = {
	{ P_EXPECT, "HELLO 192.0.2.7 25\r\n", 0, 0 },
	{ P_SEND, "OK\r\n", 0, 0 },
	{ P_END, NULL, 0, 0 },
};

static const struct peer_step local_target6[] = {
	{ P_EXPECT, "HELLO 2001:db8::5 25\r\n", 0, 0 },
	{ P_SEND, "OK\r\n", 0, 0 },
	{ P_END, NULL, 0, 0 },
};

START_TEST(hop_without_remote_resolve_gets_an_address)
{
	struct pst_dial_plan plan;
	struct outcome o;
	struct peer p;
	struct pst_err err;

	/* Any family will do: the first address. */
	ck_assert_int_eq(peer_open(&p, "127.0.0.1", local_target6), 0);
	ck_assert_int_eq(pst_dial_plan_init(&plan, "target.invalid", 25,
	    &err), 0);
	add_echo_hop(&plan, &echo_ops, "127.0.0.1", p.port, false);
	dial_and_wait(&plan, &o, 5000);
	ck_assert_msg(!o.failed, "%s", o.err.text);
	ck_assert_str_eq(p.bad, "");
	ck_assert_int_eq(atomic_load(&lookups), 1);
	outcome_free(&o);
	peer_close(&p);

	/* An IPv4-only proxy: the first IPv4 address. */
	ck_assert_int_eq(peer_open(&p, "127.0.0.1", local_target), 0);
	ck_assert_int_eq(pst_dial_plan_init(&plan, "target.invalid", 25,
	    &err), 0);
	add_echo_hop(&plan, &echo4_ops, "127.0.0.1", p.port, false);
	dial_and_wait(&plan, &o, 5000);
	ck_assert_msg(!o.failed, "%s", o.err.text);
	ck_assert_str_eq(p.bad, "");
	ck_assert_ptr_nonnull(strstr(o.trace,
	    "echo4 proxy 127.0.0.1 gets 192.0.2.7 for target.invalid"));
	outcome_free(&o);
	peer_close(&p);
}
END_TEST

START_TEST(hop_ipv4_only_proxy_and_ipv6_target_fail_clearly)
{
	struct pst_dial_plan plan;
	struct outcome o;
	struct peer p;
	struct pst_err err;

	ck_assert_int_eq(peer_open(&p, "127.0.0.1", NULL), 0);
	ck_assert_int_eq(pst_dial_plan_init(&plan, "v6only.invalid", 25,
	    &err), 0);
	add_echo_hop(&plan, &echo4_ops, "127.0.0.1", p.port, false);
	dial_and_wait(&plan, &o, 5000);
	ck_assert(o.failed);
	ck_assert_int_eq(o.err.stage, PST_STAGE_RESOLVE);
	ck_assert_str_eq(o.err.text, "v6only.invalid has no IPv4 address, "
	    "which echo4 proxy 127.0.0.1 needs");

	ck_assert_int_eq(pst_dial_plan_init(&plan, "2001:db8::5", 25, &err),
	    0);
	add_echo_hop(&plan, &echo4_ops, "127.0.0.1", p.port, false);
	dial_and_wait(&plan, &o, 5000);
	ck_assert(o.failed);
	ck_assert_int_eq(o.err.cls, PST_LOCAL);
	ck_assert_int_eq(o.err.stage, PST_STAGE_PROXY);
	ck_assert_str_eq(o.err.text, "echo4 proxy 127.0.0.1 cannot reach the "
	    "IPv6 address 2001:db8::5");
	peer_close(&p);
}
END_TEST

static const struct peer_step refuse[] = {
	{ P_EXPECT, "HELLO mx.example.org 25\r\n", 0, 0 },
	{ P_SEND, "NO\r\n", 0, 0 },
	{ P_END, NULL, 0, 0 },
};

static const struct peer_step garble[] = {
	{ P_EXPECT, "HELLO mx.example.org 25\r\n", 0, 0 },
	{ P_SEND, "WHAT\r\n", 0, 0 },
	{ P_END, NULL, 0, 0 },
};

static const struct peer_step hang_up[] = {
	{ P_EXPECT, "HELLO mx.example.org 25\r\n", 0, 0 },
	{ P_CLOSE, NULL, 0, 0 },
};

static const struct peer_step flood[] = {
	{ P_EXPECT, "HELLO mx.example.org 25\r\n", 0, 0 },
	{ P_SEND, NULL, 20000, 0 },
	{ P_END, NULL, 0, 0 },
};

static const struct peer_step silent[] = {
	{ P_EXPECT, "HELLO mx.example.org 25\r\n", 0, 0 },
	{ P_END, NULL, 0, 0 },
};

static const struct {
	const char		*name;
	const struct peer_step	*script;
	const char		*user;
	enum pst_class		 cls;
	const char		*text;	/* after "echo proxy 127.0.0.1:PORT" */
} hop_failures[] = {
	{ "refused", refuse, "", PST_PERM, ": refused: NO" },
	{ "garbled", garble, "", PST_TEMP, ": WHAT" },
	{ "hang-up", hang_up, "", PST_TEMP,
	    " closed the connection during the handshake" },
	{ "flood", flood, "", PST_TEMP, ": reply longer than 16384 bytes" },
	{ "begin", silent, "refuse-begin", PST_PERM, ": begin refused" },
	{ "silent", silent, "", PST_TEMP, " timed out after 150ms" },
};

START_TEST(hop_failures_name_the_proxy)
{
	struct pst_dial_plan plan;
	struct pst_hop hop;
	struct outcome o;
	struct peer p;
	struct pst_err err;
	char want[160];

	ck_assert_int_eq(peer_open(&p, "127.0.0.1", hop_failures[_i].script),
	    0);
	ck_assert_int_eq(pst_dial_plan_init(&plan, "mx.example.org", 25,
	    &err), 0);
	plan.timeouts.proxy_ms = 150;
	memset(&hop, 0, sizeof(hop));
	snprintf(hop.host, sizeof(hop.host), "127.0.0.1");
	snprintf(hop.user, sizeof(hop.user), "%s", hop_failures[_i].user);
	hop.port = p.port;
	hop.remote_resolve = true;
	hop.ops = &echo_ops;
	ck_assert_int_eq(pst_dial_plan_add_hop(&plan, &hop, &err), 0);
	dial_and_wait(&plan, &o, 5000);
	ck_assert_msg(o.failed, "%s", hop_failures[_i].name);
	ck_assert_int_eq(o.err.stage, PST_STAGE_PROXY);
	ck_assert_int_eq(o.err.cls, hop_failures[_i].cls);
	if (strcmp(hop_failures[_i].name, "silent") == 0)
		snprintf(want, sizeof(want), "handshake with echo proxy "
		    "127.0.0.1:%u%s", p.port, hop_failures[_i].text);
	else
		snprintf(want, sizeof(want), "echo proxy 127.0.0.1:%u%s",
		    p.port, hop_failures[_i].text);
	ck_assert_str_eq(o.err.text, want);
	ck_assert_uint_eq(o.info.nhops, 0);
	ck_assert_uint_eq(o.info.peer_len != 0, 1);
	peer_close(&p);
}
END_TEST

START_TEST(hop_connect_failure_says_proxy)
{
	struct pst_dial_plan plan;
	struct outcome o;
	struct pst_err err;
	char want[96];
	uint16_t port;
	int fd;

	fd = closed_port(&port);
	ck_assert_int_eq(pst_dial_plan_init(&plan, "mx.example.org", 25,
	    &err), 0);
	add_echo_hop(&plan, &echo_ops, "127.0.0.1", port, true);
	dial_and_wait(&plan, &o, 5000);
	ck_assert(o.failed);
	ck_assert_int_eq(o.err.stage, PST_STAGE_CONNECT);
	snprintf(want, sizeof(want), "connect to proxy 127.0.0.1:%u: "
	    "connection refused", port);
	ck_assert_str_eq(o.err.text, want);
	close(fd);
}
END_TEST

START_TEST(hop_cancel_during_handshake_never_calls_back)
{
	struct pst_dial_plan plan;
	struct pst_dial *d;
	struct outcome o;
	struct peer p;
	struct pst_err err;

	memset(&o, 0, sizeof(o));
	ck_assert_int_eq(peer_open(&p, "127.0.0.1", silent), 0);
	ck_assert_int_eq(pst_dial_plan_init(&plan, "mx.example.org", 25,
	    &err), 0);
	add_echo_hop(&plan, &echo_ops, "127.0.0.1", p.port, true);
	ck_assert_ptr_nonnull(d = pst_dial_start(base, pool, &plan,
	    outcome_cb, &o, &err));
	run_until(&p.finished, 5000);
	ck_assert(p.finished);
	pst_dial_cancel(d);
	run_until(NULL, 100);
	ck_assert_int_eq(o.calls, 0);
	peer_close(&p);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("net/dial");
	TCase *plan = tcase_create("plan");
	TCase *direct = tcase_create("direct");
	TCase *cancel = tcase_create("cancel");
	TCase *hops = tcase_create("hops");

	tcase_add_loop_test(plan, plan_init_validates_the_target, 0,
	    NELEMS(targets));
	tcase_add_test(plan, plan_init_refuses_long_and_null_hosts);
	tcase_add_loop_test(plan, plan_set_bind_checks_each_family, 0,
	    NELEMS(binds));
	tcase_add_test(plan, plan_add_hop_refuses_what_cannot_run);
	suite_add_tcase(s, plan);

	tcase_add_checked_fixture(direct, setup, teardown);
	tcase_add_test(direct, dial_connects_and_reports_both_ends);
	tcase_add_test(direct, dial_refused_is_fast_and_names_the_address);
	tcase_add_test(direct, dial_connect_timeout_names_address_and_duration);
	tcase_add_test(direct, dial_binds_the_source_address_the_peer_sees);
	tcase_add_test(direct,
	    dial_foreign_source_fails_at_bind_and_sends_nothing);
	tcase_add_test(direct, dial_ipv6_loopback);
	tcase_add_test(direct, dial_never_uses_a_family_without_a_source);
	tcase_add_test(direct,
	    dial_skips_the_unsourced_family_and_uses_the_other);
	tcase_add_test(direct,
	    dial_tries_addresses_in_order_until_one_connects);
	tcase_add_test(direct, dial_all_addresses_failing_reports_the_last);
	tcase_add_test(direct, dial_lookup_failure_is_a_deferral);
	tcase_add_test(direct, dial_lookup_timeout_abandons_the_lookup);
	tcase_add_test(direct, dial_localhost_through_the_pool);
	tcase_add_test(direct,
	    dial_start_refuses_names_without_a_pool_and_bad_plans);
	suite_add_tcase(s, direct);

	tcase_add_checked_fixture(cancel, setup, teardown);
	tcase_add_test(cancel, dial_cancel_during_lookup_never_calls_back);
	tcase_add_test(cancel,
	    dial_cancel_before_the_first_turn_never_calls_back);
	tcase_add_test(cancel, dial_cancel_during_connect_never_calls_back);
	suite_add_tcase(s, cancel);

	tcase_add_checked_fixture(hops, setup, teardown);
	tcase_add_test(hops, hop_split_reply_then_greeting_handed_over_intact);
	tcase_add_test(hops, hop_reply_and_greeting_in_one_segment);
	tcase_add_test(hops, hop_chain_of_two_with_a_second_round);
	tcase_add_test(hops, hop_bytes_for_the_next_hop_already_waiting);
	tcase_add_test(hops, hop_without_remote_resolve_gets_an_address);
	tcase_add_test(hops, hop_ipv4_only_proxy_and_ipv6_target_fail_clearly);
	tcase_add_loop_test(hops, hop_failures_name_the_proxy, 0,
	    NELEMS(hop_failures));
	tcase_add_test(hops, hop_connect_failure_says_proxy);
	tcase_add_test(hops, hop_cancel_during_handshake_never_calls_back);
	suite_add_tcase(s, hops);
	return s;
}
