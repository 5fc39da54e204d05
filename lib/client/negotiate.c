/*
 * negotiate.c: the attempt machine behind the security modes.
 *
 * Each attempt is one connection: dial, then (for implicit TLS) the
 * handshake, then a client session up to "ready".  What an attempt's
 * failure says decides the next one:
 *
 *   plain probe, silent greeting  -> implicit TLS
 *   implicit TLS, plain answer    -> plain probe (when not tried yet),
 *                                    else plain with the long wait
 *   anything else                 -> the negotiation fails with it
 *
 * Every attempt kind runs at most once, so the machine always ends.  The
 * negotiator owns the dial, TLS and client handles of the running attempt
 * and nothing else; it frees itself right after its callback.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "client/negotiate.h"

enum attempt {
	ATT_PLAIN_FIXED = 0,	/* plain, the mode's own STARTTLS rule */
	ATT_IMPLICIT_FIXED,	/* implicit TLS, nothing else to try */
	ATT_PLAIN_PROBE,	/* plain, short greeting wait */
	ATT_IMPLICIT,		/* implicit TLS after a silent greeting */
	ATT_PLAIN_SLOW,		/* plain again, long greeting wait */
	ATT__COUNT
};

static const char *const attempt_names[] = {
	"plain", "tls", "plain", "tls", "plain(slow)",
};
_Static_assert(sizeof(attempt_names) / sizeof(attempt_names[0]) ==
    ATT__COUNT, "a name for every attempt");

struct pst_negotiate {
	struct event_base		*base;
	struct pst_pool			*pool;
	struct pst_negotiate_params	 p;
	pst_negotiate_cb		 cb;
	void				*arg;

	enum attempt			 cur;
	unsigned			 tried;		/* 1 << attempt */
	struct pst_client_params	 cp;		/* of this attempt */
	struct pst_dial			*dial;
	struct pst_tls			*tls;
	struct pst_client		*client;
	struct pst_negotiate_result	 res;
};

static int	neg_attempt(struct pst_negotiate *, enum attempt,
		    struct pst_err *);
static void	neg_failed(struct pst_negotiate *, const struct pst_err *);
static void	neg_dial_done(struct bufferevent *,
		    const struct pst_dial_info *, const struct pst_err *,
		    void *);
static void	neg_tls_done(struct bufferevent *,
		    const struct pst_tls_info *, const struct pst_err *,
		    void *);
static void	neg_client_ready(struct pst_client *, void *);
static void	neg_client_failed(struct pst_client *, const struct pst_err *,
		    void *);

static const struct pst_client_cbs neg_client_cbs = {
	.ready = neg_client_ready,
	.failed = neg_client_failed,
};

int
pst_negotiate_mode_parse(const char *s)
{
	static const char *const names[] = {
		"none", "starttls", "tls", "tls-auto", "auto",
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

const char *
pst_negotiate_mode_name(enum pst_secmode mode)
{
	switch (mode) {
	case PST_SEC_NONE:
		return "none";
	case PST_SEC_STARTTLS:
		return "starttls";
	case PST_SEC_TLS:
		return "tls";
	case PST_SEC_TLS_AUTO:
		return "tls-auto";
	case PST_SEC_AUTO:
		return "auto";
	}
	return "unknown";
}

const char *
pst_learned_name(enum pst_learned learned)
{
	switch (learned) {
	case PST_LEARNED_PLAIN:
		return "plain";
	case PST_LEARNED_IMPLICIT:
		return "implicit";
	case PST_LEARNED_UNKNOWN:
		break;
	}
	return "unknown";
}

static void
neg_path(struct pst_negotiate *n, const char *what)
{
	size_t len = strlen(n->res.path);

	snprintf(n->res.path + len, sizeof(n->res.path) - len, "%s", what);
}

static bool
is_implicit(enum attempt a)
{
	return a == ATT_IMPLICIT || a == ATT_IMPLICIT_FIXED;
}

static void
neg_finish(struct pst_negotiate *n, struct pst_client *client,
    const struct pst_err *err)
{
	if (client != NULL)
		n->res.learned = is_implicit(n->cur) ? PST_LEARNED_IMPLICIT :
		    PST_LEARNED_PLAIN;
	n->res.from_memory = client != NULL && n->res.attempts == 1 &&
	    n->p.remembered != PST_LEARNED_UNKNOWN &&
	    (n->p.mode == PST_SEC_AUTO || n->p.mode == PST_SEC_TLS_AUTO);
	n->cb(client, &n->res, err, n->arg);
	free(n);
}

/* Starts attempt 'a'.  Returns -1 with 'err' when it cannot start. */
static int
neg_attempt(struct pst_negotiate *n, enum attempt a, struct pst_err *err)
{
	uint32_t long_wait = n->p.client.timeouts.command_ms;

	n->cur = a;
	n->tried |= 1u << a;
	n->res.attempts++;
	if (n->res.path[0] != '\0')
		neg_path(n, " -> ");
	neg_path(n, attempt_names[a]);

	n->cp = n->p.client;
	n->cp.timeouts.greeting_ms = long_wait;
	switch (a) {
	case ATT_PLAIN_FIXED:
		n->cp.tls = n->p.mode == PST_SEC_NONE ? PST_CLIENT_TLS_NONE :
		    PST_CLIENT_TLS_STARTTLS;
		break;
	case ATT_PLAIN_PROBE:
	case ATT_PLAIN_SLOW:
		n->cp.tls = n->p.mode == PST_SEC_AUTO ?
		    PST_CLIENT_TLS_OPPORTUNISTIC : PST_CLIENT_TLS_STARTTLS;
		if (a == ATT_PLAIN_PROBE)
			n->cp.timeouts.greeting_ms = n->p.greeting_ms;
		break;
	case ATT_IMPLICIT_FIXED:
	case ATT_IMPLICIT:
		n->cp.tls = PST_CLIENT_TLS_IMPLICIT;
		break;
	case ATT__COUNT:
		break;
	}
	n->dial = pst_dial_start(n->base, n->pool, &n->p.plan, neg_dial_done,
	    n, err);
	return n->dial == NULL ? -1 : 0;
}

static void
neg_dial_done(struct bufferevent *bev, const struct pst_dial_info *info,
    const struct pst_err *err, void *arg)
{
	struct pst_negotiate *n = arg;
	struct pst_err e;

	n->dial = NULL;
	n->res.dial = *info;
	if (err != NULL) {
		/* Another TLS mode would not reach the server either. */
		neg_finish(n, NULL, err);
		return;
	}
	if (is_implicit(n->cur)) {
		n->tls = pst_tls_upgrade(bev, n->cp.ssl_ctx, n->p.plan.host,
		    n->cp.tls_policy, n->cp.timeouts.tls_ms, neg_tls_done, n,
		    &e);
		if (n->tls == NULL) {
			bufferevent_free(bev);
			/* Bytes before our ClientHello: a plain server spoke. */
			if (e.detail == PST_TLS_F_UNREAD)
				neg_failed(n, &e);
			else
				neg_finish(n, NULL, &e);
		}
		return;
	}
	n->client = pst_client_new(bev, &n->cp, NULL, &neg_client_cbs, n, &e);
	if (n->client == NULL)
		neg_finish(n, NULL, &e);
}

static void
neg_tls_done(struct bufferevent *bev, const struct pst_tls_info *info,
    const struct pst_err *err, void *arg)
{
	struct pst_negotiate *n = arg;
	struct pst_err e;

	n->tls = NULL;
	if (err != NULL) {
		neg_failed(n, err);
		return;
	}
	n->client = pst_client_new(bev, &n->cp, info, &neg_client_cbs, n, &e);
	if (n->client == NULL)
		neg_finish(n, NULL, &e);
}

static void
neg_client_ready(struct pst_client *c, void *arg)
{
	struct pst_negotiate *n = arg;

	n->client = NULL;
	pst_client_set_callbacks(c, &(struct pst_client_cbs){ 0 }, NULL);
	neg_finish(n, c, NULL);
}

static void
neg_client_failed(struct pst_client *c, const struct pst_err *err,
    void *arg)
{
	struct pst_negotiate *n = arg;
	struct pst_err e = *err;

	n->client = NULL;
	pst_client_free(c);
	neg_failed(n, &e);
}

/* True when the failure was a silent greeting: the server waits for TLS. */
static bool
silent_greeting(const struct pst_err *err)
{
	return err->stage == PST_STAGE_GREETING &&
	    err->detail == PST_CLIENT_E_TIMEOUT;
}

static bool
plain_answer(const struct pst_err *err)
{
	return err->stage == PST_STAGE_TLS &&
	    (err->detail == PST_TLS_F_PLAINTEXT ||
	    err->detail == PST_TLS_F_UNREAD);
}

/* An attempt failed after the dial: try the next mode, or give up. */
static void
neg_failed(struct pst_negotiate *n, const struct pst_err *err)
{
	enum attempt next = ATT__COUNT;
	struct pst_err e;

	if (n->cur == ATT_PLAIN_PROBE && silent_greeting(err)) {
		neg_path(n, "(no greeting)");
		if (!(n->tried & (1u << ATT_IMPLICIT)))
			next = ATT_IMPLICIT;
	} else if (n->cur == ATT_IMPLICIT && plain_answer(err)) {
		neg_path(n, "(plain answer)");
		if (!(n->tried & (1u << ATT_PLAIN_PROBE)))
			next = ATT_PLAIN_PROBE;
		else if (!(n->tried & (1u << ATT_PLAIN_SLOW)))
			next = ATT_PLAIN_SLOW;
	}
	if (next == ATT__COUNT) {
		neg_finish(n, NULL, err);
		return;
	}
	if (neg_attempt(n, next, &e) == -1)
		neg_finish(n, NULL, &e);
}

struct pst_negotiate *
pst_negotiate_start(struct event_base *base, struct pst_pool *pool,
    const struct pst_negotiate_params *params, pst_negotiate_cb cb,
    void *arg, struct pst_err *err)
{
	struct pst_negotiate *n;
	enum attempt first;

	if ((n = calloc(1, sizeof(*n))) == NULL) {
		pst_err_sys(err, PST_LOCAL, PST_STAGE_CONNECT, ENOMEM,
		    "negotiation");
		return NULL;
	}
	n->base = base;
	n->pool = pool;
	n->p = *params;
	n->cb = cb;
	n->arg = arg;
	switch (params->mode) {
	case PST_SEC_NONE:
	case PST_SEC_STARTTLS:
		first = ATT_PLAIN_FIXED;
		break;
	case PST_SEC_TLS:
		first = ATT_IMPLICIT_FIXED;
		break;
	default:
		first = params->remembered == PST_LEARNED_IMPLICIT ?
		    ATT_IMPLICIT : ATT_PLAIN_PROBE;
		break;
	}
	if (neg_attempt(n, first, err) == -1) {
		free(n);
		return NULL;
	}
	return n;
}

void
pst_negotiate_cancel(struct pst_negotiate *n)
{
	if (n == NULL)
		return;
	if (n->dial != NULL)
		pst_dial_cancel(n->dial);
	if (n->tls != NULL)
		pst_tls_cancel(n->tls);
	pst_client_free(n->client);
	free(n);
}
