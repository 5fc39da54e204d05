/*
 * client.c: the SMTP client session machine.
 *
 * One enum of states, one function that changes state (client_enter(),
 * which also arms the state's timeout from the per-state table), and one
 * function that reacts to a complete reply (client_reply(), a switch over
 * the state).  Commands of a transaction are queued as expectations: with
 * PIPELINING they all go out at once (MAIL, every RCPT, DATA: RFC 2920
 * §3.1), without it the next one is sent when the previous reply came;
 * replies are matched against the head of the queue either way.  A
 * server that has taken all the recipients it takes in one transaction
 * (452 4.5.3) gets DATA for those; the rest are reported as "too many"
 * for the caller to send in another transaction.
 *
 * Invariants:
 * - Only the loop thread touches a client.
 * - A user callback is the last thing a handler does before it returns
 *   through client_unbusy(), which frees the client if the callback (or
 *   anything under it) asked for that.
 * - The session fails once: 'failed' fires at most once, and nothing
 *   after it.
 *
 * Deliberately not here: choosing the TLS mode (negotiate.c), dialing
 * (net/dial.c), what to do with a failure (the daemon).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "client/client.h"
#include "smtp/addr.h"
#include "smtp/dot.h"
#include "smtp/reply.h"

#define BODY_CHUNK	(64 * 1024)	/* read from the body fd at once */
#define BODY_LOWAT	(32 * 1024)	/* refill when output drops below */

enum client_state {
	CLIENT_ST_GREETING = 0,	/* waiting for the 220 */
	CLIENT_ST_EHLO,		/* EHLO sent */
	CLIENT_ST_HELO,		/* HELO sent after EHLO was refused */
	CLIENT_ST_STARTTLS,	/* STARTTLS sent, waiting for 220 */
	CLIENT_ST_TLS,		/* TLS handshake running */
	CLIENT_ST_AUTH,		/* AUTH exchange running */
	CLIENT_ST_READY,	/* idle, ready for a message */
	CLIENT_ST_MAIL,		/* MAIL/RCPT/DATA replies expected */
	CLIENT_ST_BODY,		/* streaming the message */
	CLIENT_ST_DOT,		/* waiting for the reply to the final dot */
	CLIENT_ST_RSET,		/* RSET sent after a failed transaction */
	CLIENT_ST_QUIT,		/* QUIT sent */
	CLIENT_ST_CLOSED,	/* done, QUIT answered */
	CLIENT_ST_FAILED,	/* the session is unusable */
	CLIENT_ST__COUNT
};

static const char *const client_state_names[] = {
	"greeting", "ehlo", "helo", "starttls", "tls", "auth", "ready",
	"mail", "body", "dot", "rset", "quit", "closed", "failed",
};
_Static_assert(sizeof(client_state_names) / sizeof(client_state_names[0])
    == CLIENT_ST__COUNT, "a name for every state");

/* The stage a failure in each state is reported under. */
static const enum pst_stage client_state_stage[] = {
	PST_STAGE_GREETING, PST_STAGE_EHLO, PST_STAGE_EHLO,
	PST_STAGE_STARTTLS, PST_STAGE_TLS, PST_STAGE_AUTH, PST_STAGE_NONE,
	PST_STAGE_MAIL, PST_STAGE_DATA, PST_STAGE_DOT, PST_STAGE_RSET,
	PST_STAGE_QUIT, PST_STAGE_QUIT, PST_STAGE_NONE,
};
_Static_assert(sizeof(client_state_stage) / sizeof(client_state_stage[0])
    == CLIENT_ST__COUNT, "a stage for every state");

/* RFC 5321 §4.5.3.2 minimums, as defaults. */
#define DEFAULT_GREETING_MS	(5u * 60 * 1000)
#define DEFAULT_COMMAND_MS	(5u * 60 * 1000)
#define DEFAULT_DATA_MS		(3u * 60 * 1000)
#define DEFAULT_DOT_MS		(10u * 60 * 1000)
#define DEFAULT_TLS_MS		(60u * 1000)

enum expect_kind {
	EXPECT_MAIL,
	EXPECT_RCPT,
	EXPECT_DATA,
};

struct expect {
	enum expect_kind	 kind;
	size_t			 rcpt;		/* EXPECT_RCPT: its index */
};

struct pst_client {
	enum client_state		 state;
	struct bufferevent		*bev;
	struct pst_tls			*tls;		/* handshake running */
	struct pst_client_params	 p;
	struct pst_client_timeouts	 to;
	struct pst_client_cbs		 cbs;
	void				*arg;
	struct event			*timer;
	uint64_t			 timer_ms;	/* what was armed */
	struct timeval			 state_start;

	struct pst_reply		 reply;
	struct pst_client_info		 info;
	struct pst_sasl			*sasl;
	const struct pst_sasl_mech	*mech;
	bool				 tls_done;
	bool				 quitting;	/* quit asked */

	/* The message in progress. */
	const struct pst_client_mail	*m;
	struct expect			*expect;
	size_t				 nexpect;	/* queued */
	size_t				 next_expect;	/* head */
	size_t				 next_send;	/* unpipelined */
	size_t				 accepted;
	size_t				 reported;	/* rcpt callbacks */
	bool				 mail_refused;
	bool				 too_many;	/* the server is full */
	struct pst_err			 msg_err;	/* why it failed */
	struct pst_err			 rcpt_err;	/* last refusal */
	struct pst_err			 too_many_err;	/* its reply */
	struct pst_dot_enc		 enc;
	uint64_t			 body_bytes;
	bool				 body_eof;

	int				 busy;		/* in a handler */
	bool				 free_asked;
};

static void	client_trace(struct pst_client *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static void	client_send(struct pst_client *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static void	client_failf(struct pst_client *, enum pst_class, const char *,
		    ...) __attribute__((format(printf, 3, 4)));
static void	client_enter(struct pst_client *, enum client_state);
static void	client_arm(struct pst_client *, uint64_t);
static void	client_reply(struct pst_client *);
static void	client_fail(struct pst_client *, const struct pst_err *);
static void	client_readcb(struct bufferevent *, void *);
static void	client_writecb(struct bufferevent *, void *);
static void	client_eventcb(struct bufferevent *, short, void *);
static void	client_timeout(evutil_socket_t, short, void *);
static void	client_send_ehlo(struct pst_client *);
static void	client_after_ehlo(struct pst_client *);
static void	client_start_auth(struct pst_client *);
static void	client_pump(struct pst_client *);
static void	client_body(struct pst_client *);
static void	client_message_done(struct pst_client *,
		    const struct pst_err *);
static void	client_free_now(struct pst_client *);
static void	client_tls_done(struct bufferevent *,
		    const struct pst_tls_info *, const struct pst_err *,
		    void *);

static void
client_trace(struct pst_client *c, const char *fmt, ...)
{
	char line[1100];
	va_list ap;

	if (c->p.trace == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->p.trace(c->p.trace_arg, line);
}

static void
client_busy(struct pst_client *c)
{
	c->busy++;
}

/*
 * Leaves a handler.  Returns -1 when the client was freed: the caller
 * must not touch it again.
 */
static int
client_unbusy(struct pst_client *c)
{
	if (--c->busy == 0 && c->free_asked) {
		client_free_now(c);
		return -1;
	}
	return 0;
}

static uint64_t
state_timeout(struct pst_client *c, enum client_state st)
{
	switch (st) {
	case CLIENT_ST_GREETING:
		return c->to.greeting_ms;
	case CLIENT_ST_TLS:
		return 0;	/* the TLS layer keeps its own */
	case CLIENT_ST_BODY:
		return c->to.data_ms;
	case CLIENT_ST_DOT:
		return c->to.dot_ms;
	case CLIENT_ST_READY:
	case CLIENT_ST_CLOSED:
	case CLIENT_ST_FAILED:
		return 0;
	default:
		return c->to.command_ms;
	}
}

/* The only writer of c->state. */
static void
client_enter(struct pst_client *c, enum client_state st)
{
	if (c->state != st)
		client_trace(c, "state %s -> %s",
		    client_state_names[c->state], client_state_names[st]);
	c->state = st;
	evutil_gettimeofday(&c->state_start, NULL);
	client_arm(c, state_timeout(c, st));
}

static void
client_arm(struct pst_client *c, uint64_t ms)
{
	struct timeval tv;

	c->timer_ms = ms;
	if (ms == 0) {
		evtimer_del(c->timer);
		return;
	}
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(c->timer, &tv);
}

static uint32_t
since_ms(const struct timeval *start)
{
	struct timeval now, d;

	evutil_gettimeofday(&now, NULL);
	evutil_timersub(&now, start, &d);
	return (uint32_t)(d.tv_sec * 1000 + d.tv_usec / 1000);
}

static void
client_send(struct pst_client *c, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char line[1100];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	client_trace(c, "> %s", line);
	evbuffer_add_printf(out, "%s\r\n", line);
}

/*
 * The stage a failure now belongs to.  MAIL, RCPT and DATA share one
 * state (they may be pipelined): there the oldest command still waiting
 * for its reply names it.
 */
static enum pst_stage
client_stage(const struct pst_client *c)
{
	if (c->state == CLIENT_ST_MAIL && c->expect != NULL &&
	    c->next_expect < c->nexpect) {
		switch (c->expect[c->next_expect].kind) {
		case EXPECT_MAIL:
			return PST_STAGE_MAIL;
		case EXPECT_RCPT:
			return PST_STAGE_RCPT;
		case EXPECT_DATA:
			return PST_STAGE_DATA;
		}
	}
	return client_state_stage[c->state];
}

/*
 * Fails the session: reported once, then the client only waits to be
 * freed.  Takes a copy of 'err' with the stage of the current state when
 * it has none.
 */
static void
client_fail(struct pst_client *c, const struct pst_err *err)
{
	struct pst_err e = *err;

	if (c->state == CLIENT_ST_FAILED || c->state == CLIENT_ST_CLOSED)
		return;
	if (e.stage == PST_STAGE_NONE)
		e.stage = client_stage(c);
	e.scope = PST_SCOPE_SESSION;
	client_trace(c, "failed: %s", e.text);
	client_enter(c, CLIENT_ST_FAILED);
	if (c->bev != NULL)
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	if (c->cbs.failed != NULL)
		c->cbs.failed(c, &e, c->arg);
}

static void
client_failf(struct pst_client *c, enum pst_class cls, const char *fmt, ...)
{
	struct pst_err err;
	char text[PST_ERR_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	pst_err_set(&err, cls, client_stage(c), "%s", text);
	client_fail(c, &err);
}

static void
client_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct pst_client *c = arg;
	struct pst_err err;
	char d[32];

	client_busy(c);
	if (c->timer_ms % 1000 == 0)
		snprintf(d, sizeof(d), "%llus",
		    (unsigned long long)(c->timer_ms / 1000));
	else
		snprintf(d, sizeof(d), "%llums",
		    (unsigned long long)c->timer_ms);
	pst_err_set(&err, PST_TEMP, client_stage(c),
	    "timed out %s after %s",
	    pst_stage_doing(client_stage(c)), d);
	err.detail = PST_CLIENT_E_TIMEOUT;
	client_fail(c, &err);
	client_unbusy(c);
}

static void
client_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct pst_client *c = arg;

	client_busy(c);
	if (c->state == CLIENT_ST_QUIT) {
		/* The peer closed after (or instead of) answering QUIT. */
		client_enter(c, CLIENT_ST_CLOSED);
		if (c->cbs.closed != NULL)
			c->cbs.closed(c, c->arg);
	} else if (what & BEV_EVENT_EOF)
		client_failf(c, PST_TEMP, "connection closed by the server "
		    "while %s", pst_stage_doing(client_stage(c)));
	else if (what & BEV_EVENT_ERROR)
		client_failf(c, PST_TEMP, "connection lost while %s: %s",
		    pst_stage_doing(client_stage(c)),
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	client_unbusy(c);
}

static void
client_readcb(struct bufferevent *bev, void *arg)
{
	struct pst_client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct pst_err err;
	char text[160];
	int rc;

	client_busy(c);
	while (c->state != CLIENT_ST_FAILED && c->state != CLIENT_ST_CLOSED &&
	    c->state != CLIENT_ST_TLS && !c->free_asked &&
	    evbuffer_get_length(in) > 0) {
		if (c->state == CLIENT_ST_READY || c->state == CLIENT_ST_BODY) {
			/*
			 * Nothing is expected now.  A server may say 421
			 * before it closes; anything else is a protocol
			 * error.  Either way the session is over.
			 */
			rc = pst_reply_parse(in, &c->reply,
			    client_stage(c), &err);
			if (rc == 0)
				break;
			if (rc == -1) {
				client_fail(c, &err);
				break;
			}
			pst_reply_text(&c->reply, text, sizeof(text));
			client_failf(c, PST_TEMP, "unexpected reply while %s: "
			    "%d %s", c->state == CLIENT_ST_READY ? "idle" :
			    "sending the message", c->reply.code, text);
			break;
		}
		rc = pst_reply_parse(in, &c->reply,
		    client_stage(c), &err);
		if (rc == 0)
			break;
		if (rc == -1) {
			client_fail(c, &err);
			break;
		}
		client_reply(c);
	}
	client_unbusy(c);
}

static void
client_writecb(struct bufferevent *bev, void *arg)
{
	struct pst_client *c = arg;

	client_busy(c);
	if (c->state == CLIENT_ST_BODY)
		client_body(c);
	client_unbusy(c);
}

/* Logs a complete reply in the transcript, line by line. */
static void
client_trace_reply(struct pst_client *c)
{
	size_t i;

	if (c->p.trace == NULL)
		return;
	for (i = 0; i < c->reply.nlines; i++)
		client_trace(c, "< %s", pst_reply_raw(&c->reply, i));
}

static int
reply_class(const struct pst_client *c)
{
	return c->reply.code / 100;
}

/* An error from the current reply, in 'stage' and 'scope'. */
static void
reply_err(struct pst_client *c, struct pst_err *err, enum pst_stage stage,
    enum pst_scope scope)
{
	pst_err_from_reply(err, stage, &c->reply);
	err->scope = scope;
}

/*
 * Session set-up: greeting, EHLO/HELO, STARTTLS, AUTH.
 */

static void
client_send_ehlo(struct pst_client *c)
{
	client_send(c, "EHLO %s", c->p.helo);
	client_enter(c, CLIENT_ST_EHLO);
}

static void
client_start_tls(struct pst_client *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct pst_err err;
	struct bufferevent *bev = c->bev;

	/*
	 * Anything after the 220 came before the handshake, so an attacker
	 * on the path could have put it there (CVE-2011-0411 class).
	 */
	if (evbuffer_get_length(in) > 0) {
		client_failf(c, PST_TEMP, "the server sent %zu bytes after "
		    "its reply to STARTTLS; refusing to continue (possible "
		    "command injection)", evbuffer_get_length(in));
		return;
	}
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	client_enter(c, CLIENT_ST_TLS);
	c->tls = pst_tls_upgrade(bev, c->p.ssl_ctx, c->p.tls_name,
	    c->p.tls_policy, c->to.tls_ms, client_tls_done, c, &err);
	if (c->tls == NULL) {
		bufferevent_setcb(bev, client_readcb, client_writecb,
		    client_eventcb, c);
		client_fail(c, &err);
		return;
	}
	c->bev = NULL;	/* the TLS layer owns it until it reports */
}

static void
client_tls_done(struct bufferevent *bev, const struct pst_tls_info *info,
    const struct pst_err *err, void *arg)
{
	struct pst_client *c = arg;

	client_busy(c);
	c->tls = NULL;
	if (err != NULL) {
		if (info != NULL)
			c->info.tls_info = *info;
		client_fail(c, err);
		client_unbusy(c);
		return;
	}
	c->bev = bev;
	c->tls_done = true;
	c->info.tls = true;
	c->info.starttls = true;
	c->info.tls_info = *info;
	client_trace(c, "tls %s %s verified=%s", info->version, info->cipher,
	    info->verified ? "yes" : info->pin_matched ? "pin" : "no");
	bufferevent_setcb(bev, client_readcb, client_writecb, client_eventcb,
	    c);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	/* RFC 3207 §4.2: forget what the server said before TLS. */
	memset(&c->info.ehlo, 0, sizeof(c->info.ehlo));
	client_send_ehlo(c);
	client_unbusy(c);
}

/*
 * A server that offers STARTTLS and then refuses it has TLS, just not
 * now: a temporary failure in every mode, never a reason to go on in
 * plain text (that is for a server that offers no TLS at all).
 */
static void
client_starttls_refused(struct pst_client *c)
{
	struct pst_err err;
	char text[256];

	pst_reply_text(&c->reply, text, sizeof(text));
	pst_err_set(&err, PST_TEMP, PST_STAGE_STARTTLS, "STARTTLS refused: "
	    "%d%s%s %s (TLS was offered: not going on in plain text)",
	    c->reply.code, c->reply.esc[0] != '\0' ? " " : "", c->reply.esc,
	    text);
	err.smtp_code = c->reply.code;
	memcpy(err.esc, c->reply.esc, sizeof(c->reply.esc));
	client_fail(c, &err);
}

/* What to do once EHLO (or HELO) was answered 250. */
static void
client_after_ehlo(struct pst_client *c)
{
	bool offered = (c->info.ehlo.caps & PST_EHLO_STARTTLS) != 0;

	if (!c->tls_done && c->p.tls != PST_CLIENT_TLS_IMPLICIT &&
	    c->p.tls != PST_CLIENT_TLS_NONE) {
		if (offered) {
			client_send(c, "STARTTLS");
			client_enter(c, CLIENT_ST_STARTTLS);
			return;
		}
		if (c->p.tls == PST_CLIENT_TLS_STARTTLS) {
			client_failf(c, PST_TEMP, "the server does not offer "
			    "STARTTLS, and security \"starttls\" requires it "
			    "(refusing to send in plain text)");
			return;
		}
	}
	client_start_auth(c);
}

static void
client_ready(struct pst_client *c)
{
	c->info.pipelining = !c->p.no_pipelining &&
	    (c->info.ehlo.caps & PST_EHLO_PIPELINING) != 0;
	client_enter(c, CLIENT_ST_READY);
	if (c->quitting) {
		pst_client_quit(c);
		return;
	}
	if (c->cbs.ready != NULL)
		c->cbs.ready(c, c->arg);
}

static void
client_start_auth(struct pst_client *c)
{
	struct pst_err err;
	unsigned server;

	if (c->p.creds == NULL) {
		client_ready(c);
		return;
	}
	if (!c->info.esmtp || !(c->info.ehlo.caps & PST_EHLO_AUTH)) {
		client_failf(c, PST_TEMP, "the server does not offer AUTH, "
		    "but credentials are configured (refusing to send "
		    "unauthenticated)");
		return;
	}
	server = c->info.ehlo.auth;
	if (c->mech == NULL)
		c->mech = pst_sasl_choose(server, c->p.sasl_allowed &
		    pst_sasl_creds_mask(c->p.creds), c->info.tls,
		    c->p.allow_plaintext);
	if (c->mech == NULL) {
		pst_sasl_why_none(server, c->p.sasl_allowed, c->info.tls,
		    c->p.allow_plaintext, &err);
		client_fail(c, &err);
		return;
	}
	pst_sasl_free(c->sasl);
	if ((c->sasl = pst_sasl_new(c->mech, c->p.creds, &err)) == NULL) {
		client_fail(c, &err);
		return;
	}
	client_enter(c, CLIENT_ST_AUTH);
	client_trace(c, "> AUTH %s ****", c->mech->name);
	if (pst_sasl_start(c->sasl, bufferevent_get_output(c->bev), &err) ==
	    -1)
		client_fail(c, &err);
}

static void
client_auth_reply(struct pst_client *c)
{
	const struct pst_sasl_mech *next;
	struct pst_err err;

	if (c->reply.code == 334) {
		client_trace(c, "> ****");
		if (pst_sasl_step(c->sasl, &c->reply,
		    bufferevent_get_output(c->bev), &err) == -1) {
			/* RFC 4954 §4: cancel the exchange, then give up. */
			evbuffer_add(bufferevent_get_output(c->bev), "*\r\n", 3);
			client_fail(c, &err);
		} else
			client_arm(c, c->to.command_ms);
		return;
	}
	if (c->reply.code == 235) {
		if (pst_sasl_done(c->sasl, &c->reply, &err) == -1) {
			client_fail(c, &err);
			return;
		}
		c->info.auth_mech = c->mech->name;
		pst_sasl_free(c->sasl);
		c->sasl = NULL;
		client_ready(c);
		return;
	}
	next = pst_sasl_next(c->mech, c->reply.code, c->info.ehlo.auth,
	    c->p.sasl_allowed & pst_sasl_creds_mask(c->p.creds), c->info.tls,
	    c->p.allow_plaintext);
	if (next != NULL) {
		client_trace(c, "auth %s refused (%d), trying %s",
		    c->mech->name, c->reply.code, next->name);
		c->mech = next;
		client_start_auth(c);
		return;
	}
	reply_err(c, &err, PST_STAGE_AUTH, PST_SCOPE_SESSION);
	client_fail(c, &err);
}

/*
 * Transactions.
 */

/*
 * A path goes out between angle brackets as it came in: no byte of it may
 * end the command (CR, LF) or the path (">", "<" in a dot-string).  A
 * quoted local part may hold "<" and ">" (RFC 5321 qtextSMTP): the
 * parser, which knows where the quotes end, vouches for such a path.
 */
static bool
addr_safe(const char *s, unsigned flags)
{
	struct pst_addr a;
	const char *why;
	size_t len = strlen(s);

	if (len > PST_ADDR_MAILBOX_MAX || strpbrk(s, "\r\n") != NULL)
		return false;
	return strpbrk(s, "<>") == NULL || pst_addr_parse_mailbox(s, len,
	    flags | PST_ADDR_F_UTF8, &a, &why) == 0;
}

static bool
param_safe(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s > '~')
			return false;
	return true;
}

/* Sends the command of expectation 'i'. */
static void
client_send_expect(struct pst_client *c, size_t i)
{
	const struct pst_client_mail *m = c->m;
	const struct pst_client_rcpt *r;
	const struct pst_ehlo *e = &c->info.ehlo;
	char params[600];
	size_t off = 0;

#define ADD(...) do {							\
	int n_ = snprintf(params + off, sizeof(params) - off, __VA_ARGS__); \
	if (n_ > 0 && (size_t)n_ < sizeof(params) - off)		\
		off += (size_t)n_;					\
} while (0)

	params[0] = '\0';
	switch (c->expect[i].kind) {
	case EXPECT_MAIL:
		if (e->caps & PST_EHLO_SIZE)
			ADD(" SIZE=%llu", (unsigned long long)m->size);
		if (m->body_8bit && (e->caps & PST_EHLO_8BITMIME))
			ADD(" BODY=8BITMIME");
		if (m->smtputf8)
			ADD(" SMTPUTF8");
		if (e->caps & PST_EHLO_DSN) {
			if (m->ret != NULL)
				ADD(" RET=%s", m->ret);
			if (m->envid != NULL)
				ADD(" ENVID=%s", m->envid);
		}
		client_send(c, "MAIL FROM:<%s>%s", m->sender, params);
		break;
	case EXPECT_RCPT:
		r = &m->rcpts[c->expect[i].rcpt];
		if (e->caps & PST_EHLO_DSN) {
			if (r->notify != NULL)
				ADD(" NOTIFY=%s", r->notify);
			if (r->orcpt != NULL)
				ADD(" ORCPT=%s", r->orcpt);
		}
		client_send(c, "RCPT TO:<%s>%s", r->addr, params);
		break;
	case EXPECT_DATA:
		client_send(c, "DATA");
		break;
	}
#undef ADD
}

bool
pst_client_can_take(bool smtputf8, uint64_t size_max, bool needs_utf8,
    uint64_t size, struct pst_err *why)
{
	if (needs_utf8 && !smtputf8) {
		pst_err_set(why, PST_PERM, PST_STAGE_MAIL, "the server does "
		    "not support SMTPUTF8, which this message needs (RFC 6531 "
		    "3.4)");
		strcpy(why->esc, "5.6.7");
	} else if (size_max > 0 && size > size_max) {
		pst_err_set(why, PST_PERM, PST_STAGE_MAIL, "the message (%llu "
		    "bytes) exceeds the server's size limit (%llu bytes)",
		    (unsigned long long)size, (unsigned long long)size_max);
		strcpy(why->esc, "5.3.4");
	} else
		return true;
	why->scope = PST_SCOPE_MESSAGE;
	return false;
}

int
pst_client_send(struct pst_client *c, const struct pst_client_mail *m,
    struct pst_err *err)
{
	const struct pst_ehlo *e = &c->info.ehlo;
	size_t i, n;

	if (c->state != CLIENT_ST_READY || c->m != NULL)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_MAIL,
		    "the session is not ready for a message (%s)",
		    client_state_names[c->state]);
	if (m->nrcpts == 0)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_RCPT,
		    "a message needs at least one recipient");
	if (!addr_safe(m->sender, PST_ADDR_F_NULL))
		return pst_err_set(err, PST_LOCAL, PST_STAGE_MAIL,
		    "refusing to send an unsafe sender address");
	for (i = 0; i < m->nrcpts; i++)
		if (!addr_safe(m->rcpts[i].addr, PST_ADDR_F_POSTMASTER) ||
		    (m->rcpts[i].notify != NULL &&
		    !param_safe(m->rcpts[i].notify)) ||
		    (m->rcpts[i].orcpt != NULL &&
		    !param_safe(m->rcpts[i].orcpt)))
			return pst_err_set(err, PST_LOCAL, PST_STAGE_RCPT,
			    "refusing to send an unsafe recipient");
	if ((m->ret != NULL && !param_safe(m->ret)) ||
	    (m->envid != NULL && !param_safe(m->envid)))
		return pst_err_set(err, PST_LOCAL, PST_STAGE_MAIL,
		    "refusing to send unsafe DSN parameters");

	n = m->nrcpts + 2;
	free(c->expect);
	if ((c->expect = calloc(n, sizeof(*c->expect))) == NULL)
		return pst_err_sys(err, PST_LOCAL, PST_STAGE_MAIL, ENOMEM,
		    "client");
	c->m = m;
	c->nexpect = n;
	c->next_expect = c->next_send = 0;
	c->accepted = 0;
	c->reported = 0;
	c->mail_refused = false;
	c->too_many = false;
	pst_err_clear(&c->msg_err);
	pst_err_clear(&c->rcpt_err);
	pst_err_clear(&c->too_many_err);
	c->expect[0].kind = EXPECT_MAIL;
	for (i = 0; i < m->nrcpts; i++) {
		c->expect[i + 1].kind = EXPECT_RCPT;
		c->expect[i + 1].rcpt = i;
	}
	c->expect[n - 1].kind = EXPECT_DATA;

	/* Refusals we can know before saying anything. */
	if (!pst_client_can_take((e->caps & PST_EHLO_SMTPUTF8) != 0,
	    (e->caps & PST_EHLO_SIZE) ? e->size_max : 0, m->smtputf8, m->size,
	    &c->msg_err)) {
		/* Report it from the loop, as for every other outcome. */
		client_enter(c, CLIENT_ST_MAIL);
		c->next_expect = c->next_send = n;
		c->mail_refused = true;
		client_send(c, "RSET");
		client_enter(c, CLIENT_ST_RSET);
		return 0;
	}
	client_enter(c, CLIENT_ST_MAIL);
	client_pump(c);
	return 0;
}

/* Sends what may go out now: all of it when pipelining, else one. */
static void
client_pump(struct pst_client *c)
{
	if (c->info.pipelining) {
		while (c->next_send < c->nexpect)
			client_send_expect(c, c->next_send++);
		return;
	}
	if (c->next_send == c->next_expect && c->next_send < c->nexpect) {
		/* Unpipelined: DATA only when a recipient was accepted. */
		if (c->expect[c->next_send].kind == EXPECT_DATA &&
		    c->accepted == 0) {
			c->next_expect = c->next_send = c->nexpect;
			client_message_done(c, &c->rcpt_err);
			return;
		}
		client_send_expect(c, c->next_send++);
	}
}

/*
 * Ends a transaction that did not reach DATA: RSET first (RFC 5321 §4.1.1.5
 * leaves the server's state undefined otherwise), then report.
 */
static void
client_message_done(struct pst_client *c, const struct pst_err *err)
{
	if (err != &c->msg_err)
		c->msg_err = *err;
	client_send(c, "RSET");
	client_enter(c, CLIENT_ST_RSET);
}

static void
client_report_sent(struct pst_client *c)
{
	struct pst_err err = c->msg_err;

	/* Recipients never asked about share the message's fate. */
	while (c->m != NULL && c->reported < c->m->nrcpts) {
		if (c->cbs.rcpt != NULL)
			c->cbs.rcpt(c, c->reported, &err, c->arg);
		c->reported++;
		if (c->free_asked)
			return;
	}
	c->m = NULL;
	client_enter(c, CLIENT_ST_READY);
	if (c->quitting) {
		pst_client_quit(c);
		return;
	}
	if (c->cbs.sent != NULL)
		c->cbs.sent(c, err.cls == PST_OK ? NULL : &err, c->arg);
}

/*
 * RFC 5321 4.5.3.1.10: a server that has as many recipients as it takes
 * in one transaction says 452 to the next (RFC 821 said 552, which is
 * temporary all the same).  Only after it took one, and only when an
 * enhanced code, if any, says so (X.5.3): a 452 4.2.2 is a full mailbox.
 */
static bool
reply_too_many(const struct pst_client *c)
{
	if (c->accepted == 0)
		return false;
	if (c->reply.code == 452)
		return c->reply.esc[0] == '\0' ||
		    strcmp(c->reply.esc, "4.5.3") == 0;
	return c->reply.code == 552 && strcmp(c->reply.esc, "5.5.3") == 0;
}

/*
 * Unpipelined, after "too many recipients": the RCPTs not sent yet would
 * only be refused the same way, so they are not sent and share the reply.
 */
static void
client_skip_rcpts(struct pst_client *c)
{
	struct expect *x;

	while (c->next_send < c->nexpect &&
	    c->expect[c->next_send].kind == EXPECT_RCPT) {
		x = &c->expect[c->next_send++];
		c->next_expect = c->next_send;
		c->reported++;
		if (c->cbs.rcpt != NULL)
			c->cbs.rcpt(c, x->rcpt, &c->too_many_err, c->arg);
		if (c->free_asked || c->state != CLIENT_ST_MAIL)
			return;
	}
}

static void
client_transaction_reply(struct pst_client *c)
{
	struct expect *x = &c->expect[c->next_expect++];
	struct pst_err err;

	switch (x->kind) {
	case EXPECT_MAIL:
		if (reply_class(c) != 2) {
			c->mail_refused = true;
			reply_err(c, &c->msg_err, PST_STAGE_MAIL,
			    PST_SCOPE_MESSAGE);
		}
		break;
	case EXPECT_RCPT:
		c->reported++;
		if (c->mail_refused) {
			/* Their replies say "need MAIL": report why. */
			if (c->cbs.rcpt != NULL)
				c->cbs.rcpt(c, x->rcpt, &c->msg_err, c->arg);
		} else if (reply_class(c) == 2) {
			c->accepted++;
			if (c->cbs.rcpt != NULL)
				c->cbs.rcpt(c, x->rcpt, NULL, c->arg);
		} else {
			reply_err(c, &err, PST_STAGE_RCPT,
			    PST_SCOPE_RECIPIENT);
			if (reply_too_many(c)) {
				/* Not refused: for the next transaction. */
				err.cls = PST_TEMP;
				err.detail = PST_CLIENT_E_TOO_MANY;
				c->too_many = true;
				c->too_many_err = err;
			}
			/* The last refusal stands for all when none pass. */
			c->rcpt_err = err;
			if (c->cbs.rcpt != NULL)
				c->cbs.rcpt(c, x->rcpt, &err, c->arg);
		}
		if (c->free_asked || c->state != CLIENT_ST_MAIL)
			return;
		if (c->too_many && !c->info.pipelining) {
			client_skip_rcpts(c);
			if (c->free_asked || c->state != CLIENT_ST_MAIL)
				return;
		}
		break;
	case EXPECT_DATA:
		if (!c->mail_refused && c->accepted == 0)
			c->msg_err = c->rcpt_err;
		if (c->reply.code == 354) {
			if (c->mail_refused || c->accepted == 0) {
				/*
				 * RFC 2920 §3.1: a server that says 354
				 * with no valid recipient still gets the
				 * end of an empty message.
				 */
				evbuffer_add(bufferevent_get_output(c->bev),
				    ".\r\n", 3);
				client_trace(c, "> .");
				if (c->msg_err.cls == PST_OK)
					pst_err_set(&c->msg_err, PST_TEMP,
					    PST_STAGE_DATA, "no recipient "
					    "was accepted");
				client_enter(c, CLIENT_ST_DOT);
				return;
			}
			pst_dot_enc_init(&c->enc);
			c->body_eof = false;
			c->body_bytes = 0;
			client_enter(c, CLIENT_ST_BODY);
			bufferevent_setwatermark(c->bev, EV_WRITE, BODY_LOWAT,
			    0);
			client_body(c);
			return;
		}
		/*
		 * The refusal of DATA is the message's result when recipients
		 * were accepted, or when nothing else went wrong before.
		 */
		if ((!c->mail_refused && c->accepted > 0) ||
		    c->msg_err.cls == PST_OK)
			reply_err(c, &c->msg_err, PST_STAGE_DATA,
			    PST_SCOPE_MESSAGE);
		client_message_done(c, &c->msg_err);
		return;
	}
	if (!c->info.pipelining && c->mail_refused) {
		/* Unpipelined: nothing more to say after MAIL failed. */
		c->next_expect = c->next_send = c->nexpect;
		client_message_done(c, &c->msg_err);
		return;
	}
	client_pump(c);
}

/* Moves body bytes from the file to the output, dot-stuffed. */
static void
client_body(struct pst_client *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	unsigned char chunk[BODY_CHUNK];
	struct pst_err err;
	uint64_t left;
	ssize_t n;

	if (c->body_eof)
		return;
	while (evbuffer_get_length(out) < BODY_CHUNK) {
		left = c->m->size - c->body_bytes;
		n = left == 0 ? 0 : pread(c->m->body_fd, chunk,
		    left < sizeof(chunk) ? (size_t)left : sizeof(chunk),
		    (off_t)(c->m->body_offset + c->body_bytes));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 || (n == 0 && left > 0)) {
			/* Our disk failed us: not the server's fault. */
			pst_err_sys(&err, PST_LOCAL, PST_STAGE_DATA,
			    n == -1 ? errno : EIO, "reading the message body");
			client_fail(c, &err);
			return;
		}
		if (n == 0) {
			/* The dot leaves with the last data (no Nagle wait). */
			if (pst_dot_encode_finish(&c->enc, out, &err) == -1) {
				client_fail(c, &err);
				return;
			}
			client_trace(c, "> (%llu bytes of message) .",
			    (unsigned long long)c->body_bytes);
			c->body_eof = true;
			bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
			client_enter(c, CLIENT_ST_DOT);
			return;
		}
		c->body_bytes += (uint64_t)n;
		if (pst_dot_encode(&c->enc, chunk, (size_t)n, out, &err) ==
		    -1) {
			client_fail(c, &err);
			return;
		}
	}
	/* Each block that leaves restarts the data timeout. */
	client_arm(c, c->to.data_ms);
}

static void
client_reply(struct pst_client *c)
{
	struct pst_err err;
	char text[256];

	client_trace_reply(c);
	switch (c->state) {
	case CLIENT_ST_GREETING:
		c->info.greeting_ms = since_ms(&c->state_start);
		pst_reply_text(&c->reply, c->info.greeting,
		    sizeof(c->info.greeting));
		if (c->reply.code != 220) {
			reply_err(c, &err, PST_STAGE_GREETING,
			    PST_SCOPE_SESSION);
			client_fail(c, &err);
			break;
		}
		client_send_ehlo(c);
		break;
	case CLIENT_ST_EHLO:
		if (reply_class(c) == 2) {
			c->info.esmtp = true;
			if (pst_ehlo_parse(&c->reply, &c->info.ehlo, &err) ==
			    -1) {
				client_fail(c, &err);
				break;
			}
			client_after_ehlo(c);
		} else if (reply_class(c) == 5 && !c->tls_done) {
			/* RFC 5321 §3.2: fall back to HELO. */
			client_send(c, "HELO %s", c->p.helo);
			client_enter(c, CLIENT_ST_HELO);
		} else {
			reply_err(c, &err, PST_STAGE_EHLO, PST_SCOPE_SESSION);
			client_fail(c, &err);
		}
		break;
	case CLIENT_ST_HELO:
		if (reply_class(c) != 2) {
			reply_err(c, &err, PST_STAGE_EHLO, PST_SCOPE_SESSION);
			client_fail(c, &err);
			break;
		}
		memset(&c->info.ehlo, 0, sizeof(c->info.ehlo));
		client_after_ehlo(c);
		break;
	case CLIENT_ST_STARTTLS:
		if (c->reply.code != 220) {
			client_starttls_refused(c);
			break;
		}
		client_start_tls(c);
		break;
	case CLIENT_ST_AUTH:
		client_auth_reply(c);
		break;
	case CLIENT_ST_MAIL:
		client_transaction_reply(c);
		break;
	case CLIENT_ST_DOT:
		if (c->msg_err.cls == PST_OK && reply_class(c) != 2)
			reply_err(c, &c->msg_err, PST_STAGE_DOT,
			    PST_SCOPE_MESSAGE);
		client_report_sent(c);
		break;
	case CLIENT_ST_RSET:
		if (reply_class(c) != 2) {
			reply_err(c, &err, PST_STAGE_RSET, PST_SCOPE_SESSION);
			client_fail(c, &err);
			break;
		}
		client_report_sent(c);
		break;
	case CLIENT_ST_QUIT:
		client_enter(c, CLIENT_ST_CLOSED);
		if (c->cbs.closed != NULL)
			c->cbs.closed(c, c->arg);
		break;
	default:
		pst_reply_text(&c->reply, text, sizeof(text));
		client_failf(c, PST_TEMP, "unexpected reply in state %s: %d %s",
		    client_state_names[c->state], c->reply.code, text);
		break;
	}
}

struct pst_client *
pst_client_new(struct bufferevent *bev, const struct pst_client_params *p,
    const struct pst_tls_info *tls_info, const struct pst_client_cbs *cbs,
    void *arg, struct pst_err *err)
{
	struct pst_client *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		bufferevent_free(bev);
		pst_err_sys(err, PST_LOCAL, PST_STAGE_GREETING, ENOMEM,
		    "client");
		return NULL;
	}
	c->timer = evtimer_new(bufferevent_get_base(bev), client_timeout, c);
	if (c->timer == NULL) {
		free(c);
		bufferevent_free(bev);
		pst_err_set(err, PST_LOCAL, PST_STAGE_GREETING,
		    "client: cannot create a timer");
		return NULL;
	}
	c->bev = bev;
	c->p = *p;
	c->cbs = *cbs;
	c->arg = arg;
	c->to = p->timeouts;
	if (c->to.greeting_ms == 0)
		c->to.greeting_ms = DEFAULT_GREETING_MS;
	if (c->to.command_ms == 0)
		c->to.command_ms = DEFAULT_COMMAND_MS;
	if (c->to.data_ms == 0)
		c->to.data_ms = DEFAULT_DATA_MS;
	if (c->to.dot_ms == 0)
		c->to.dot_ms = DEFAULT_DOT_MS;
	if (c->to.tls_ms == 0)
		c->to.tls_ms = DEFAULT_TLS_MS;
	if (p->tls == PST_CLIENT_TLS_IMPLICIT) {
		c->tls_done = true;
		c->info.tls = true;
		if (tls_info != NULL)
			c->info.tls_info = *tls_info;
	}
	c->state = CLIENT_ST_GREETING;
	client_enter(c, CLIENT_ST_GREETING);
	bufferevent_setcb(bev, client_readcb, client_writecb, client_eventcb,
	    c);
	bufferevent_setwatermark(bev, EV_READ, 0, 0);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	/* An early greeting may be waiting already: read it from the loop. */
	if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		bufferevent_trigger(bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS |
		    BEV_TRIG_IGNORE_WATERMARKS);
	return c;
}

void
pst_client_quit(struct pst_client *c)
{
	switch (c->state) {
	case CLIENT_ST_READY:
		client_send(c, "QUIT");
		client_enter(c, CLIENT_ST_QUIT);
		break;
	case CLIENT_ST_QUIT:
	case CLIENT_ST_CLOSED:
	case CLIENT_ST_FAILED:
		break;
	default:
		/* Set-up or a message is running: quit when it is done. */
		c->quitting = true;
		break;
	}
}

void
pst_client_set_callbacks(struct pst_client *c,
    const struct pst_client_cbs *cbs, void *arg)
{
	c->cbs = *cbs;
	c->arg = arg;
}

const struct pst_client_info *
pst_client_info(const struct pst_client *c)
{
	return &c->info;
}

const char *
pst_client_mode_name(const struct pst_client_info *info)
{
	if (!info->tls)
		return "plain (no TLS)";
	return info->starttls ? "starttls" : "implicit TLS";
}

static void
client_free_now(struct pst_client *c)
{
	if (c->tls != NULL)
		pst_tls_cancel(c->tls);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	event_free(c->timer);
	pst_sasl_free(c->sasl);
	free(c->expect);
	free(c);
}

void
pst_client_free(struct pst_client *c)
{
	if (c == NULL)
		return;
	if (c->busy > 0) {
		c->free_asked = true;
		evtimer_del(c->timer);
		return;
	}
	client_free_now(c);
}
