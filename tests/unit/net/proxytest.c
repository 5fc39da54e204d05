/*
 * proxytest.c: machine drivers and a scripted fake proxy for the proxy
 * suites (see proxytest.h).
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <netdb.h>
#include <signal.h>
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
#include "proxytest.h"
#include "unit.h"

struct event_base *pt_base;
struct pst_pool *pt_pool;
static atomic_int pt_nlookups;

/* ---- machines --------------------------------------------------------- */

struct pst_hop
pm_hop(enum pst_hop_kind kind, const char *user, const char *password,
    bool remote_resolve)
{
	struct pst_hop hop;

	memset(&hop, 0, sizeof(hop));
	hop.kind = kind;
	snprintf(hop.host, sizeof(hop.host), "127.0.0.1");
	hop.port = 1080;
	snprintf(hop.user, sizeof(hop.user), "%s", user);
	snprintf(hop.password, sizeof(hop.password), "%s", password);
	hop.remote_resolve = remote_resolve;
	return hop;
}

void
pm_open(struct pm *m, const struct pst_proxy_ops *ops)
{
	memset(m, 0, sizeof(*m));
	m->ops = ops;
	ck_assert_ptr_nonnull(m->in = evbuffer_new());
	ck_assert_ptr_nonnull(m->out = evbuffer_new());
}

void
pm_close(struct pm *m)
{
	free(m->ctx);
	if (m->in != NULL)
		evbuffer_free(m->in);
	if (m->out != NULL)
		evbuffer_free(m->out);
	memset(m, 0, sizeof(*m));
}

int
pm_begin(struct pm *m, const struct pst_hop *hop, const char *host,
    uint16_t port)
{
	free(m->ctx);
	ck_assert_ptr_nonnull(m->ctx = calloc(1, m->ops->ctx_size));
	evbuffer_drain(m->in, evbuffer_get_length(m->in));
	evbuffer_drain(m->out, evbuffer_get_length(m->out));
	pst_err_clear(&m->err);
	return m->ops->begin(m->ctx, hop, host, port, m->out, &m->err);
}

enum pst_step
pm_feed(struct pm *m, const void *bytes, size_t len)
{
	enum pst_step step;

	if (len > 0)
		ck_assert_int_eq(evbuffer_add(m->in, bytes, len), 0);
	pst_err_clear(&m->err);
	step = m->ops->input(m->ctx, m->in, m->out, &m->err);
	if (step == PST_STEP_FAIL) {
		/* Every failure says what and where. */
		ck_assert_int_eq(m->err.stage, PST_STAGE_PROXY);
		ck_assert(m->err.cls == PST_TEMP || m->err.cls == PST_LOCAL);
		ck_assert_str_ne(m->err.text, "");
	}
	return step;
}

static void
pm_expect_buf(struct evbuffer *b, const void *want, size_t len,
    const char *what)
{
	size_t have = evbuffer_get_length(b), i;
	const unsigned char *got;

	got = evbuffer_pullup(b, -1);
	for (i = 0; i < len && i < have; i++)
		ck_assert_msg(got[i] == ((const unsigned char *)want)[i],
		    "%s byte %zu: 0x%02x, expected 0x%02x", what, i, got[i],
		    ((const unsigned char *)want)[i]);
	ck_assert_msg(have == len, "%s holds %zu bytes, expected %zu", what,
	    have, len);
}

void
pm_expect_out(struct pm *m, const void *want, size_t len)
{
	pm_expect_buf(m->out, want, len, "output");
	evbuffer_drain(m->out, len);
}

void
pm_expect_in(struct pm *m, const void *want, size_t len)
{
	pm_expect_buf(m->in, want, len, "input");
}

void
pm_exchange(struct pm *m, const struct pst_hop *hop, const char *host,
    uint16_t port, const void *cli, size_t clilen, const void *srv,
    size_t srvlen, const char *tail, size_t cut, enum pst_step want)
{
	const unsigned char *s = srv;
	struct evbuffer *rest;
	enum pst_step step;
	size_t taillen = strlen(tail);

	ck_assert_msg(pm_begin(m, hop, host, port) == 0, "begin: %s",
	    m->err.text);
	if (cut == srvlen) {
		/* The whole reply and the next layer's bytes in one read. */
		ck_assert_ptr_nonnull(rest = evbuffer_new());
		evbuffer_add(rest, s, srvlen);
		evbuffer_add(rest, tail, taillen);
		step = pm_feed(m, evbuffer_pullup(rest, -1),
		    evbuffer_get_length(rest));
		evbuffer_free(rest);
	} else
		step = pm_feed(m, s, cut);
	if (cut < srvlen && want == PST_STEP_DONE)
		ck_assert_msg(step == PST_STEP_MORE, "cut %zu: step %d, %s",
		    cut, step, m->err.text);
	if (step == PST_STEP_MORE) {
		ck_assert_ptr_nonnull(rest = evbuffer_new());
		evbuffer_add(rest, s + cut, srvlen - cut);
		evbuffer_add(rest, tail, taillen);
		step = pm_feed(m, evbuffer_pullup(rest, -1),
		    evbuffer_get_length(rest));
		evbuffer_free(rest);
	}
	ck_assert_msg(step == want, "cut %zu: step %d, expected %d (%s)", cut,
	    step, want, m->err.text);
	if (want == PST_STEP_DONE) {
		pm_expect_out(m, cli, clilen);
		pm_expect_in(m, tail, taillen);
	}
}

void
pm_exchange_bytewise(struct pm *m, const struct pst_hop *hop,
    const char *host, uint16_t port, const void *cli, size_t clilen,
    const void *srv, size_t srvlen, enum pst_step want)
{
	const unsigned char *s = srv;
	enum pst_step step = PST_STEP_MORE;
	size_t i;

	ck_assert_msg(pm_begin(m, hop, host, port) == 0, "begin: %s",
	    m->err.text);
	ck_assert_int_eq(pm_feed(m, NULL, 0), PST_STEP_MORE);
	for (i = 0; i < srvlen && step == PST_STEP_MORE; i++) {
		step = pm_feed(m, s + i, 1);
		if (want == PST_STEP_DONE && i + 1 < srvlen)
			ck_assert_msg(step == PST_STEP_MORE, "byte %zu: step "
			    "%d (%s)", i, step, m->err.text);
	}
	ck_assert_msg(step == want, "step %d, expected %d (%s)", step, want,
	    m->err.text);
	if (want == PST_STEP_DONE) {
		pm_expect_out(m, cli, clilen);
		ck_assert_uint_eq(evbuffer_get_length(m->in), 0);
	}
}

/* ---- loop, lookup, dial ----------------------------------------------- */

void
pt_setup(void)
{
	struct pst_err err;

	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(evthread_use_pthreads(), 0);
	ck_assert_ptr_nonnull(pt_base = event_base_new());
	pt_pool = pst_pool_new(pt_base, 2, &err);
	ck_assert_ptr_nonnull(pt_pool);
	atomic_store(&pt_nlookups, 0);
}

void
pt_teardown(void)
{
	pst_pool_free(pt_pool);
	event_base_free(pt_base);
	pt_pool = NULL;
	pt_base = NULL;
}

static int
pt_elapsed_ms(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int)((now.tv_sec - t0->tv_sec) * 1000 +
	    (now.tv_nsec - t0->tv_nsec) / 1000000);
}

void
pt_run_until(const int *flag, int ms)
{
	struct timeval tick = { 0, 10 * 1000 };
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while ((flag == NULL || !*flag) && pt_elapsed_ms(&t0) < ms) {
		event_base_loopexit(pt_base, &tick);
		event_base_dispatch(pt_base);
	}
}

int
pt_lookup(const char *host, struct pst_addrs *out)
{
	socklen_t len;

	atomic_fetch_add(&pt_nlookups, 1);
	out->count = 0;
	if (strcmp(host, "target.invalid") != 0)
		return EAI_NONAME;
	if (pst_resolve_literal("192.0.2.7", 0, &out->addr[0], &len) == -1)
		return EAI_FAIL;
	out->len[0] = len;
	out->count = 1;
	return 0;
}

int
pt_lookups(void)
{
	return atomic_load(&pt_nlookups);
}

static void
pt_outcome_cb(struct bufferevent *bev, const struct pst_dial_info *info,
    const struct pst_err *err, void *arg)
{
	struct pt_outcome *o = arg;

	o->calls++;
	o->nhops = info->nhops;
	if (bev != NULL)
		o->bev = bev;
	else {
		o->err = *err;
		o->failed = 1;
	}
}

void
pt_dial(struct pst_dial_plan *plan, struct pt_outcome *o, int ms)
{
	struct pst_err err;

	memset(o, 0, sizeof(*o));
	plan->lookup = pt_lookup;
	plan->timeouts.proxy_ms = 5000;
	ck_assert_msg(pst_dial_start(pt_base, pt_pool, plan, pt_outcome_cb, o,
	    &err) != NULL, "start: %s", err.text);
	pt_run_until(&o->calls, ms);
	ck_assert_msg(o->calls == 1, "callback ran %d times", o->calls);
}

void
pt_outcome_free(struct pt_outcome *o)
{
	if (o->bev != NULL)
		bufferevent_free(o->bev);
	o->bev = NULL;
}

char *
pt_input_text(struct bufferevent *bev, char *buf, size_t len)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in);

	ck_assert_uint_lt(n, len);
	evbuffer_copyout(in, buf, n);
	buf[n] = '\0';
	return buf;
}

/* ---- the fake proxy --------------------------------------------------- */

static void	pt_proxy_run(struct pt_proxy *);

static void
pt_proxy_readcb(struct bufferevent *bev, void *arg)
{
	pt_proxy_run(arg);
}

static void
pt_proxy_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct pt_proxy *p = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		bufferevent_free(p->bev);
		p->bev = NULL;
	}
}

static void
pt_proxy_run(struct pt_proxy *p)
{
	const struct pt_step *s;
	struct evbuffer *in;

	while (p->bev != NULL) {
		s = &p->script[p->at];
		in = bufferevent_get_input(p->bev);
		switch (s->op) {
		case PT_END:
			p->finished = 1;
			return;
		case PT_EXPECT:
			if (evbuffer_get_length(in) < s->len)
				return;
			if (memcmp(evbuffer_pullup(in, (ssize_t)s->len),
			    s->data, s->len) != 0) {
				snprintf(p->bad, sizeof(p->bad), "step %zu: "
				    "unexpected bytes", p->at);
				bufferevent_free(p->bev);
				p->bev = NULL;
				return;
			}
			evbuffer_drain(in, s->len);
			break;
		case PT_SEND:
			bufferevent_write(p->bev, s->data, s->len);
			break;
		}
		p->at++;
	}
}

static void
pt_proxy_accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct pt_proxy *p = arg;
	int one = 1;

	if (p->bev != NULL) {
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	p->bev = bufferevent_socket_new(pt_base, fd, BEV_OPT_CLOSE_ON_FREE);
	ck_assert_ptr_nonnull(p->bev);
	bufferevent_setcb(p->bev, pt_proxy_readcb, NULL, pt_proxy_eventcb, p);
	bufferevent_enable(p->bev, EV_READ | EV_WRITE);
	pt_proxy_run(p);
}

void
pt_proxy_open(struct pt_proxy *p, const struct pt_step *script)
{
	struct sockaddr_storage ss;
	socklen_t len;

	memset(p, 0, sizeof(*p));
	p->script = script;
	ck_assert_int_eq(pst_resolve_literal("127.0.0.1", 0, &ss, &len), 0);
	p->lev = evconnlistener_new_bind(pt_base, pt_proxy_accept_cb, p,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
	    (struct sockaddr *)&ss, (int)len);
	ck_assert_ptr_nonnull(p->lev);
	len = sizeof(ss);
	ck_assert_int_eq(getsockname(evconnlistener_get_fd(p->lev),
	    (struct sockaddr *)&ss, &len), 0);
	p->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

void
pt_proxy_close(struct pt_proxy *p)
{
	if (p->bev != NULL)
		bufferevent_free(p->bev);
	if (p->lev != NULL)
		evconnlistener_free(p->lev);
	memset(p, 0, sizeof(*p));
}
