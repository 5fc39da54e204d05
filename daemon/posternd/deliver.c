/*
 * deliver.c: delivery connections.
 *
 * A delivery is a small machine:
 *
 *   LOAD     lock the message, read its envelope, open its body (pool)
 *   SECRET   fetch the upstream's password (pool; files and commands)
 *   CONNECT  negotiate a session (dial, TLS mode, EHLO, AUTH)
 *   SEND     one message through the client: one transaction, or more
 *            when the upstream takes its recipients in batches (452 4.5.3)
 *   SWITCH   QUIT sent to an upstream that cannot take the message (its
 *            EHLO said so); CONNECT to the next one follows
 *   SAVE     bounce, then update or remove the envelope (pool)
 *   QUIT     no more due messages, or enough on this connection
 *
 * Disk work runs on the pool while the delivery owns the message lock;
 * what the scheduler keeps is told through its callbacks (struct
 * delivery_cbs), on the loop only.  Results are turned into envelope
 * changes on the loop (apply_results()), so the policy of deliver.h
 * lives in one function, deliver_verdict(), and the pool only writes
 * them.
 */
#include <sys/queue.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include <event2/event.h>

#include "bounce.h"
#include "client/client.h"
#include "client/negotiate.h"
#include "common/err.h"
#include "common/pool.h"
#include "common/units.h"
#include "deliver.h"
#include "net/proxyurl.h"
#include "shared/config.h"
#include "shared/log.h"
#include "shared/secret.h"
#include "shared/upstream.h"
#include "spool/backoff.h"
#include "spool/spool.h"

enum dstate {
	D_LOAD = 0,	/* locking and reading the message (pool) */
	D_SECRET,	/* fetching the password (pool) */
	D_CONNECT,	/* negotiating a session */
	D_SEND,		/* the client is sending the message */
	D_SWITCH,	/* leaving an upstream that cannot take it */
	D_SAVE,		/* writing the outcome (pool) */
	D_QUIT,		/* QUIT sent, waiting for the answer */
};

static const char *const dstate_names[] = {
	[D_LOAD] = "load",
	[D_SECRET] = "secret",
	[D_CONNECT] = "connect",
	[D_SEND] = "send",
	[D_SWITCH] = "switch",
	[D_SAVE] = "save",
	[D_QUIT] = "quit",
};

/*
 * A message that could not be read or saved for disk trouble is tried
 * again after a minute: soon enough that a passing problem (a full disk
 * freed, a slow mount) costs little, seldom enough not to spin on a
 * lasting one.
 */
#define DISK_RETRY_S		60

/*
 * Retries of messages deferred together are spread over a fifth of their
 * delay (upwards only), so that they do not all come back in the same
 * second and hit the upstream at once.
 */
#define RETRY_JITTER_PCT	20

struct result {
	bool		 done;		/* the upstream answered */
	bool		 taken;		/* an earlier transaction delivered */
	struct pst_err	 err;		/* cls PST_OK: accepted */
};

struct delivery {
	LIST_ENTRY(delivery)	 entry;
	const struct delivery_cbs *cbs;
	void			*arg;		/* for cbs */
	struct event_base	*base;
	struct pst_pool		*pool;
	struct pst_spool	*spool;
	struct config		*cfg;
	struct upstate		**ups;		/* by upstream index */
	size_t			 upi;		/* upstream in use */
	struct upstate		*up;		/* holds the connection slot */
	struct upstate		*cur;		/* the one in use */
	enum dstate		 state;
	bool			 aborted;
	struct pst_negotiate	*neg;
	struct pst_client	*client;
	struct event		*total;		/* timeouts.total per attempt */
	struct pst_negotiate_params np;
	struct pst_creds	 creds;
	char			*secret;
	unsigned		 messages;	/* on this connection */
	size_t			 proxy_tries;	/* of this upstream, this time */
	bool			 connected_once; /* a connect result was fed */

	/* The message. */
	struct qent		*e;
	char			 id[PST_SPOOL_ID_LEN + 1];
	struct pst_spool_lock	*lock;
	struct pst_spool_env	*env;
	int			 body_fd;
	uint64_t		 body_off;	/* where the body starts */
	uint64_t		 size;		/* body bytes */
	bool			 utf8;		/* needs SMTPUTF8 */
	unsigned char		*unable;	/* by upstream index */
	struct pst_client_mail	 mail;
	struct pst_client_rcpt	*rcpts;
	char			**notify;
	size_t			*map;		/* rcpts -> env rcpt */
	struct result		*res;
	size_t			 nsend;
	struct pst_client_rcpt	*brcpts;	/* this transaction's */
	size_t			*batch;		/* brcpts -> rcpts */
	struct pst_err		 msg_err;	/* message or session level */
	enum verdict_source	 msg_src;	/* where msg_err comes from */
	bool			 nobody;	/* no upstream can take it */

	/* Pool job results. */
	struct pst_err		 job_err;
	int			 load_status;
	bool			 saving;	/* its result rides the next
						   group flush */
	bool			 remove;
	unsigned char		*bounce_for;	/* env rcpt -> BOUNCE_* */
	bool			 bounce;
	char			 bounce_id[PST_SPOOL_ID_LEN + 1];
	time_t			 bounce_arrival;
	time_t			 next;
	bool			 held;
};

LIST_HEAD(delivery_list, delivery);

/*
 * Deliveries of every owner (the scheduler is the one): for
 * deliver_abort_all().  The loop thread only.
 */
static struct delivery_list deliveries = LIST_HEAD_INITIALIZER(deliveries);

enum load_status {
	LOAD_OK = 0,
	LOAD_GONE,		/* deleted meanwhile */
	LOAD_LOCKED,		/* the operator's tool holds it */
	LOAD_HELD,		/* on hold */
	LOAD_NOTHING,		/* every recipient is final already */
	LOAD_DAMAGED,		/* quarantined */
	LOAD_ERROR,		/* disk trouble; try later */
};

static void	arm_total(struct delivery *);
static bool	known_unable(const struct delivery *, const struct upstate *,
		    struct pst_err *);
static void	d_cannot_take(struct delivery *, const struct pst_err *);
static void	d_load(struct delivery *);
static void	d_connect(struct delivery *);
static void	d_send(struct delivery *);
static void	d_save(struct delivery *);
static void	d_next(struct delivery *);
static void	d_end(struct delivery *);
static void	d_message_reset(struct delivery *);

static const char *
up_name(const struct delivery *d)
{
	return d->cfg->upstreams[d->upi].name;
}

/* The one place the state changes. */
static void
d_set_state(struct delivery *d, enum dstate st)
{
	if (d->state != st)
		log_debug("event=delivery-state upstream=%s id=%s from=%s "
		    "to=%s", qs(up_name(d)), d->e != NULL ? d->id : "-",
		    dstate_names[d->state], dstate_names[st]);
	d->state = st;
}

/* What became of the message (msg_err), and where that comes from. */
static void
d_msg_error(struct delivery *d, enum verdict_source src,
    const struct pst_err *err)
{
	d->msg_err = *err;
	d->msg_src = src;
}

/* Hands the message back to the owner: it is not ours any more. */
static void
d_msg_done(struct delivery *d, enum delivery_fate fate, time_t next)
{
	struct qent *e = d->e;

	d->e = NULL;
	d->cbs->done(d->arg, e, fate, next);
}

static void
submit(struct delivery *d, pst_pool_fn work, pst_pool_fn done)
{
	struct pst_err err;

	if (pst_pool_submit(d->pool, work, done, d, &err) == -1) {
		/* Only at shutdown: run it here rather than lose track. */
		work(d);
		done(d);
	}
}

/*
 * LOAD
 */

/*
 * Whether the header section of the body on 'fd' holds a byte above 127;
 * true also when it cannot be read (the safe answer).
 */
static bool
header_8bit(int fd, uint64_t off, uint64_t len)
{
	char buf[4096];
	const char *blank = "\r\n\r\n";
	unsigned matched = 2;	/* an empty first line ends it too */
	uint64_t end = off + len;
	ssize_t n, i;

	while (off < end && (n = pread(fd, buf, end - off < sizeof(buf) ?
	    (size_t)(end - off) : sizeof(buf), (off_t)off)) > 0) {
		for (i = 0; i < n; i++) {
			if ((unsigned char)buf[i] >= 0x80)
				return true;
			if (buf[i] == blank[matched])
				matched++;
			else
				matched = buf[i] == '\r' ? 1 : 0;
			if (matched == 4)
				return false;
		}
		off += (uint64_t)n;
	}
	return off < end;	/* unreadable: assume the worst */
}

/*
 * RFC 6531 §3.4: a message needs SMTPUTF8 when its envelope or header
 * section holds UTF-8, not because its client asked for it.  Intake
 * records which (PST_SPOOL_F_UTF8_CHECKED); for envelopes written before
 * it did, look.
 */
static bool
needs_smtputf8(const struct pst_spool_env *env, int fd, uint64_t off)
{
	if (!(env->flags & PST_SPOOL_F_SMTPUTF8))
		return false;
	if (env->flags & PST_SPOOL_F_UTF8_CHECKED)
		return (env->flags & PST_SPOOL_F_UTF8_NEEDED) != 0;
	return pst_spool_env_utf8_addrs(env) ||
	    header_8bit(fd, off, env->size);
}

static void
load_work(void *arg)
{
	struct delivery *d = arg;
	struct pst_spool *spool = d->spool;

	d->lock = pst_spool_lock_msg(spool, d->id, 0, &d->job_err);
	if (d->lock == NULL) {
		d->load_status = d->job_err.sys_errno == ENOENT ? LOAD_GONE :
		    d->job_err.sys_errno == EWOULDBLOCK ? LOAD_LOCKED :
		    d->job_err.sys_errno == EBADMSG ? LOAD_DAMAGED :
		    LOAD_ERROR;
		return;
	}
	d->env = pst_spool_lock_env(d->lock);
	d->held = d->env->held;
	d->next = d->env->next_attempt;
	if (d->env->held) {
		d->load_status = LOAD_HELD;
		goto release;
	}
	if (pst_spool_env_pending(d->env) == 0) {
		/* A crash after the last 250 and before the removal. */
		d->load_status = LOAD_NOTHING;
		if (pst_spool_lock_remove(d->lock, &d->job_err) == -1)
			d->load_status = LOAD_ERROR;
		goto release;
	}
	d->body_fd = pst_spool_body_open(spool, d->env, &d->body_off,
	    &d->job_err);
	if (d->body_fd == -1) {
		if (d->job_err.cls == PST_LOCAL ||
		    d->job_err.sys_errno == ENOENT) {
			d->load_status = LOAD_DAMAGED;
			pst_spool_lock_quarantine(d->lock, &d->job_err);
		} else
			d->load_status = LOAD_ERROR;
		goto release;
	}
	d->size = d->env->size;
	d->utf8 = needs_smtputf8(d->env, d->body_fd, d->body_off);
	d->load_status = LOAD_OK;
	return;
release:
	pst_spool_lock_release(d->lock);
	d->lock = NULL;
	d->env = NULL;
}

static void
load_done(void *arg)
{
	struct delivery *d = arg;
	const char *id = d->id;
	struct pst_err why;
	time_t now = time(NULL);

	if (d->aborted) {
		d_message_reset(d);
		d_end(d);
		return;
	}
	switch (d->load_status) {
	case LOAD_OK:
		arm_total(d);
		memset(d->unable, 0, d->cfg->nupstreams);
		if (d->client != NULL)
			d_send(d);
		else if (d->neg == NULL && known_unable(d, d->cur, &why))
			d_cannot_take(d, &why);
		else if (d->neg == NULL)
			d_connect(d);
		return;
	case LOAD_GONE:
		d_msg_done(d, DELIVERY_GONE, 0);
		break;
	case LOAD_NOTHING:
		log_info("event=removed id=%s reason=%s", id,
		    qs("every recipient was final already"));
		d_msg_done(d, DELIVERY_GONE, 0);
		break;
	case LOAD_DAMAGED:
		log_error("event=quarantined id=%s reason=%s", id,
		    qs(d->job_err.text));
		d_msg_done(d, DELIVERY_GONE, 0);
		break;
	case LOAD_HELD:
		d_msg_done(d, DELIVERY_HELD, d->next);
		break;
	case LOAD_LOCKED:
		/*
		 * Its commit is still finishing, or the operator's tool has
		 * it: look again shortly.
		 */
		log_debug("event=locked id=%s", id);
		d_msg_done(d, DELIVERY_SOON, 0);
		break;
	default:
		log_warn("event=load-failed id=%s reason=%s", id,
		    qs(d->job_err.text));
		d_msg_done(d, DELIVERY_LATER, now + DISK_RETRY_S);
		break;
	}
	d_next(d);
}

/*
 * timeouts.total bounds one message's attempt, from connecting (or
 * reusing the connection) to the upstream's last answer: every wait has
 * its own timeout too, but a server that answers just in time, forever,
 * must not hold the message.
 */
static void
total_expired(evutil_socket_t fd, short what, void *arg)
{
	struct delivery *d = arg;
	const struct config_upstream *u = &d->cfg->upstreams[d->upi];
	struct pst_err err;
	char limit[32];

	if (d->state != D_CONNECT && d->state != D_SEND &&
	    d->state != D_SWITCH)
		return;		/* a pool job runs; it ends by itself */
	pst_duration_format(u->timeouts.total, limit, sizeof(limit));
	pst_err_set(&err, PST_TEMP, PST_STAGE_NONE, "the delivery attempt "
	    "took longer than timeouts.total (%s)", limit);
	d_msg_error(d, VERDICT_LOCAL, &err);
	log_warn("event=attempt-timeout upstream=%s id=%s total=%s",
	    qs(up_name(d)), d->id, limit);
	if (d->neg != NULL) {
		pst_negotiate_cancel(d->neg);
		d->neg = NULL;
	}
	if (d->client != NULL) {
		pst_client_free(d->client);
		d->client = NULL;
	}
	d_save(d);
}

static void
arm_total(struct delivery *d)
{
	uint64_t ms = d->cfg->upstreams[d->upi].timeouts.total;
	struct timeval tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(d->total, &tv);
}

static void
d_load(struct delivery *d)
{
	d_set_state(d, D_LOAD);
	d->body_fd = -1;
	pst_err_clear(&d->job_err);
	submit(d, load_work, load_done);
}

/*
 * SECRET and CONNECT
 */

static void
secret_work(void *arg)
{
	struct delivery *d = arg;

	if (secret_load(&d->cfg->upstreams[d->upi], &d->secret,
	    &d->job_err) == -1)
		d->secret = NULL;
}

static void	on_negotiated(struct pst_client *,
		    const struct pst_negotiate_result *,
		    const struct pst_err *, void *);

static void
secret_done(void *arg)
{
	struct delivery *d = arg;
	const struct config_upstream *u = &d->cfg->upstreams[d->upi];
	struct pst_err err;

	if (d->aborted) {
		d_message_reset(d);
		d_end(d);
		return;
	}
	if (d->secret == NULL) {
		log_error("event=secret-failed upstream=%s reason=%s",
		    qs(u->name), qs(d->job_err.text));
		on_negotiated(NULL, NULL, &d->job_err, d);
		return;
	}
	d_set_state(d, D_CONNECT);
	upstream_params(d->cfg, u, d->secret, d->cur->learned,
	    d->cur->proxy, &d->np, &d->creds);
	d->neg = pst_negotiate_start(d->base, d->pool, &d->np, on_negotiated,
	    d, &err);
	if (d->neg == NULL)
		on_negotiated(NULL, NULL, &err, d);
}

static void
d_connect(struct delivery *d)
{
	const struct config_upstream *u = &d->cfg->upstreams[d->upi];
	struct pst_err err;

	secret_free(d->secret);
	d->secret = NULL;
	if (u->has_auth) {
		d_set_state(d, D_SECRET);
		submit(d, secret_work, secret_done);
		return;
	}
	d_set_state(d, D_CONNECT);
	upstream_params(d->cfg, u, NULL, d->cur->learned, d->cur->proxy,
	    &d->np, &d->creds);
	d->neg = pst_negotiate_start(d->base, d->pool, &d->np, on_negotiated,
	    d, &err);
	if (d->neg == NULL)
		on_negotiated(NULL, NULL, &err, d);
}

/*
 * Whether an upstream whose EHLO offered SMTPUTF8 or not ('smtputf8') and
 * announced 'size_max' can take the message.  It is about that one
 * upstream: another may well take the message.
 */
static bool
can_take(const struct delivery *d, bool smtputf8, uint64_t size_max,
    struct pst_err *why)
{
	return pst_client_can_take(smtputf8, size_max, d->utf8, d->size, why);
}

/* Whether the last EHLO seen from 'up' rules the message out. */
static bool
known_unable(const struct delivery *d, const struct upstate *up,
    struct pst_err *why)
{
	return up->caps_known && !can_take(d, up->smtputf8, up->size_max,
	    why);
}

static void
mark_unable(struct delivery *d, size_t i, const struct pst_err *why)
{
	d->unable[i] = 1;
	log_info("event=upstream-unable id=%s upstream=%s code=0 esc=%s "
	    "reason=%s", d->id, qs(d->cfg->upstreams[i].name),
	    why->esc, qs(why->text));
}

/*
 * Moves on to the next upstream after the current one whose breaker lets
 * it through (the scheduler's question for the first one) and whose last
 * EHLO did not rule the message out.
 */
static bool
failover(struct delivery *d)
{
	struct upstate *up;
	struct pst_err why;
	time_t now = time(NULL);
	size_t i;

	for (i = d->upi + 1; i < d->cfg->nupstreams; i++) {
		up = d->ups[i];
		if (up == NULL || !breaker_admit(&up->br, now, NULL))
			continue;
		if (known_unable(d, up, &why)) {
			mark_unable(d, i, &why);
			continue;
		}
		log_info("event=failover id=%s from=%s to=%s", d->id,
		    qs(up_name(d)), qs(up->name));
		d->upi = i;
		d->cur = up;
		d->proxy_tries = 0;
		return true;
	}
	return false;
}

/* Whether every upstream is known to be unable to take the message. */
static bool
none_can_take(struct delivery *d)
{
	struct upstate *up;
	struct pst_err why;
	size_t i;

	for (i = 0; i < d->cfg->nupstreams; i++) {
		if (d->unable[i])
			continue;
		up = d->ups[i];
		if (up == NULL || !known_unable(d, up, &why))
			return false;
	}
	return true;
}

/*
 * The current upstream cannot take the message, by its EHLO ('why'):
 * a limit of one upstream, not a verdict on the message.  The next
 * upstream gets it at once, in the same attempt; when none is left,
 * deliver_verdict() decides, knowing whether any upstream could take it.
 */
static void
d_cannot_take(struct delivery *d, const struct pst_err *why)
{
	struct pst_err own = *why;

	mark_unable(d, d->upi, why);
	if (!d->aborted && failover(d)) {
		if (d->client == NULL) {
			d_connect(d);
			return;
		}
		/* client_closed() or client_failed() connects on. */
		d_set_state(d, D_SWITCH);
		pst_client_quit(d->client);
		return;
	}
	d_msg_error(d, VERDICT_UNABLE, &own);
	d->nobody = none_can_take(d);
	d_save(d);
}

static void	client_rcpt(struct pst_client *, size_t, const struct pst_err *,
		    void *);
static void	client_sent(struct pst_client *, const struct pst_err *,
		    void *);
static void	client_failed(struct pst_client *, const struct pst_err *,
		    void *);
static void	client_closed(struct pst_client *, void *);

static const struct pst_client_cbs client_cbs = {
	.rcpt = client_rcpt,
	.sent = client_sent,
	.failed = client_failed,
	.closed = client_closed,
};

/* What the upstream's EHLO said it can take, for the next messages. */
static void
remember_caps(struct upstate *up, const struct pst_client_info *info)
{
	up->mode = pst_client_mode_name(info);
	up->caps_known = true;
	up->smtputf8 = (info->ehlo.caps & PST_EHLO_SMTPUTF8) != 0;
	up->size_max = (info->ehlo.caps & PST_EHLO_SIZE) ?
	    info->ehlo.size_max : 0;
}

static void
on_negotiated(struct pst_client *c, const struct pst_negotiate_result *res,
    const struct pst_err *err, void *arg)
{
	struct delivery *d = arg;
	const struct config_upstream *u = &d->cfg->upstreams[d->upi];
	char buf[PST_ERR_TEXT_MAX + 128], url[PST_PROXY_URL_MAX];
	const char *proxy = NULL;

	if (u->nproxies > 0)
		proxy = pst_proxy_url_format(&u->proxies[d->cur->proxy %
		    u->nproxies], url, sizeof(url));

	d->neg = NULL;
	if (err != NULL) {
		log_warn("event=connect-failed upstream=%s id=%s%s%s %s",
		    qs(up_name(d)), d->id, proxy != NULL ?
		    " proxy=" : "", proxy != NULL ? qs(proxy) : "",
		    pst_err_format(err, buf, sizeof(buf)));
		if (u->nproxies > 0 && upstream_proxy_failed(err)) {
			/* The next proxy of the list, from now on. */
			d->cur->proxy++;
			if (++d->proxy_tries < u->nproxies && !d->aborted) {
				d_connect(d);
				return;
			}
		}
		d->cbs->conn_result(d->arg, d->cur, err, PST_LEARNED_UNKNOWN);
		d->connected_once = true;
		if (!d->aborted && failover(d)) {
			d_connect(d);
			return;
		}
		/* Nobody could take it now: every recipient waits. */
		d_msg_error(d, VERDICT_SESSION, err);
		d_save(d);
		return;
	}
	/* Without an error the negotiation hands over its result. */
	/* cppcheck-suppress nullPointer */
	d->cbs->conn_result(d->arg, d->cur, NULL, res->learned);
	remember_caps(d->cur, pst_client_info(c));
	d->connected_once = true;
	/* cppcheck-suppress nullPointer */
	log_debug("event=connected upstream=%s mode=%s path=%s",
	    qs(up_name(d)), qs(pst_client_mode_name(pst_client_info(c))),
	    qs(res->path));
	d->client = c;
	pst_client_set_callbacks(c, &client_cbs, d);
	d_send(d);
}

/*
 * SEND
 */

static const char *
notify_text(unsigned n, char *buf, size_t len)
{
	buf[0] = '\0';
	if (n == 0)
		return NULL;
	if (n & PST_SPOOL_NOTIFY_NEVER)
		return "NEVER";
	snprintf(buf, len, "%s%s%s%s%s",
	    n & PST_SPOOL_NOTIFY_SUCCESS ? "SUCCESS" : "",
	    (n & PST_SPOOL_NOTIFY_SUCCESS) && (n & ~PST_SPOOL_NOTIFY_SUCCESS &
	    (PST_SPOOL_NOTIFY_FAILURE | PST_SPOOL_NOTIFY_DELAY)) ? "," : "",
	    n & PST_SPOOL_NOTIFY_FAILURE ? "FAILURE" : "",
	    (n & PST_SPOOL_NOTIFY_FAILURE) && (n & PST_SPOOL_NOTIFY_DELAY) ?
	    "," : "",
	    n & PST_SPOOL_NOTIFY_DELAY ? "DELAY" : "");
	return buf;
}

static int
d_prepare(struct delivery *d)
{
	struct pst_spool_env *env = d->env;
	char tmp[64];
	size_t i, n = 0;

	d_message_reset(d);
	d->rcpts = calloc(env->nrcpts, sizeof(*d->rcpts));
	d->notify = calloc(env->nrcpts, sizeof(*d->notify));
	d->map = calloc(env->nrcpts, sizeof(*d->map));
	d->res = calloc(env->nrcpts, sizeof(*d->res));
	d->bounce_for = calloc(env->nrcpts, sizeof(*d->bounce_for));
	d->brcpts = calloc(env->nrcpts, sizeof(*d->brcpts));
	d->batch = calloc(env->nrcpts, sizeof(*d->batch));
	if (d->rcpts == NULL || d->notify == NULL || d->map == NULL ||
	    d->res == NULL || d->bounce_for == NULL || d->brcpts == NULL ||
	    d->batch == NULL)
		return -1;
	for (i = 0; i < env->nrcpts; i++) {
		if (env->rcpts[i].state != PST_SPOOL_RCPT_PENDING &&
		    env->rcpts[i].state != PST_SPOOL_RCPT_DEFERRED)
			continue;
		d->rcpts[n].addr = env->rcpts[i].addr;
		if (notify_text(env->rcpts[i].notify, tmp, sizeof(tmp)) !=
		    NULL && (d->notify[n] = strdup(tmp)) == NULL)
			return -1;
		d->rcpts[n].notify = d->notify[n];
		d->rcpts[n].orcpt = env->rcpts[i].orcpt;
		d->map[n++] = i;
	}
	d->nsend = n;
	memset(&d->mail, 0, sizeof(d->mail));
	d->mail.sender = env->sender;
	d->mail.size = env->size;
	d->mail.body_8bit = (env->flags & PST_SPOOL_F_8BITMIME) != 0;
	d->mail.ret = env->ret == PST_SPOOL_RET_FULL ? "FULL" :
	    env->ret == PST_SPOOL_RET_HDRS ? "HDRS" : NULL;
	d->mail.envid = env->envid;
	d->mail.body_fd = d->body_fd;
	d->mail.body_offset = d->body_off;
	return 0;
}

/*
 * Starts a transaction for the recipients that have no answer yet in this
 * attempt, the body read from its start.  Returns -1 with d->msg_err
 * when it cannot.
 */
static int
d_transaction(struct delivery *d)
{
	struct pst_err err;
	size_t i, n = 0;

	for (i = 0; i < d->nsend; i++)
		if (!d->res[i].done) {
			d->brcpts[n] = d->rcpts[i];
			d->batch[n++] = i;
		}
	d->mail.rcpts = d->brcpts;
	d->mail.nrcpts = n;
	d->messages++;
	if (pst_client_send(d->client, &d->mail, &err) == -1) {
		d_msg_error(d, VERDICT_LOCAL, &err);
		return -1;
	}
	return 0;
}

static void
d_send(struct delivery *d)
{
	const struct pst_client_info *info = pst_client_info(d->client);
	struct pst_err err;

	d_set_state(d, D_SEND);
	pst_err_clear(&d->msg_err);
	d->msg_src = VERDICT_ANSWER;
	remember_caps(d->cur, info);
	if (!can_take(d, d->cur->smtputf8, d->cur->size_max, &err)) {
		d_cannot_take(d, &err);
		return;
	}
	if (d_prepare(d) == -1) {
		pst_err_sys(&err, PST_TEMP, PST_STAGE_DATA, errno,
		    "preparing the message");
		d_msg_error(d, VERDICT_LOCAL, &err);
		d_save(d);
		return;
	}
	/* Asked for, and offered: keep it (it does no harm). */
	d->mail.smtputf8 = (d->env->flags & PST_SPOOL_F_SMTPUTF8) &&
	    d->cur->smtputf8;
	if (d_transaction(d) == -1)
		d_save(d);
}

/*
 * After a transaction: recipients the server had no room for (RFC 5321
 * 4.5.3.1.10, "452 4.5.3 too many recipients") go in another one on
 * this connection at once, not after a retry delay.  The recipients of
 * the transaction that ended keep its outcome.  A transaction that says
 * "too many" took at least one recipient, so each has fewer left and
 * this ends.  Returns true when another transaction started.
 */
static bool
d_more(struct delivery *d)
{
	struct result *r;
	size_t i, taken = 0, more = 0;

	for (i = 0; i < d->nsend; i++)
		if (d->res[i].done &&
		    d->res[i].err.detail == PST_CLIENT_E_TOO_MANY)
			more++;
	if (more == 0)
		return false;
	for (i = 0; i < d->nsend; i++) {
		r = &d->res[i];
		if (r->err.detail == PST_CLIENT_E_TOO_MANY) {
			r->done = false;
			pst_err_clear(&r->err);
		} else if (r->done && r->err.cls == PST_OK && !r->taken) {
			if (d->msg_err.cls == PST_OK) {
				r->taken = true;
				taken++;
			} else
				r->err = d->msg_err;
		}
	}
	log_info("event=next-transaction id=%s upstream=%s delivered=%zu "
	    "left=%zu", d->id, qs(up_name(d)), taken, more);
	pst_err_clear(&d->msg_err);
	return d_transaction(d) == 0;
}

static void
client_rcpt(struct pst_client *c, size_t i, const struct pst_err *err,
    void *arg)
{
	struct delivery *d = arg;

	if (i >= d->mail.nrcpts)
		return;
	i = d->batch[i];
	d->res[i].done = true;
	if (err != NULL)
		d->res[i].err = *err;
	else
		pst_err_clear(&d->res[i].err);
}

static void
client_sent(struct pst_client *c, const struct pst_err *err, void *arg)
{
	struct delivery *d = arg;

	if (err != NULL)
		d_msg_error(d, VERDICT_ANSWER, err);
	if (d_more(d))
		return;
	d_save(d);
}

static void
client_failed(struct pst_client *c, const struct pst_err *err, void *arg)
{
	struct delivery *d = arg;
	char buf[PST_ERR_TEXT_MAX + 128];

	/* The client is finished (freeing it here is allowed). */
	d->client = NULL;
	pst_client_free(c);
	if (d->state == D_QUIT) {
		d_end(d);
		return;
	}
	if (d->state == D_SWITCH) {
		d_connect(d);
		return;
	}
	if (d->state == D_LOAD || d->state == D_SAVE) {
		/* A pool job runs; d_next() ends us when it is back. */
		return;
	}
	log_warn("event=session-failed upstream=%s id=%s %s", qs(up_name(d)),
	    d->e != NULL ? d->id : "-",
	    pst_err_format(err, buf, sizeof(buf)));
	if (d->state != D_SEND) {
		/* Between messages (a 421 while idle): just end. */
		d_end(d);
		return;
	}
	/* Mid-message: whatever was not answered waits for the next try. */
	d_msg_error(d, VERDICT_SESSION, err);
	d_save(d);
}

static void
client_closed(struct pst_client *c, void *arg)
{
	struct delivery *d = arg;

	d->client = NULL;
	pst_client_free(c);
	if (d->state == D_SWITCH) {
		d_connect(d);
		return;
	}
	d_end(d);
}

/*
 * SAVE: the policy.
 */

/* Whether 'e' is a 5xx: its reply code, or the status we gave it. */
static bool
is_5xx(const struct pst_err *e)
{
	return e->smtp_code >= 500 || e->esc[0] == '5';
}

/* The stages whose replies are about a message or its recipients. */
static bool
transaction_stage(enum pst_stage stage)
{
	return stage == PST_STAGE_MAIL || stage == PST_STAGE_RCPT ||
	    stage == PST_STAGE_DATA || stage == PST_STAGE_DOT;
}

/*
 * An upstream's EHLO ruled the message out (d_cannot_take()): a limit of
 * that upstream, not a verdict on the message, unless no upstream can
 * take it (no SIZE large enough, no SMTPUTF8 where it is needed: 5.3.4,
 * 5.6.7).  While one that might is out of reach, the message waits.
 */
static void
unable_error(const struct verdict_in *in, struct pst_err *why)
{
	size_t n = strlen(why->text);

	if (in->nobody) {
		if (in->others)
			snprintf(why->text + n, sizeof(why->text) - n,
			    "; no other upstream can take it either");
		return;
	}
	why->cls = PST_TEMP;
	why->esc[0] = '4';
	snprintf(why->text + n, sizeof(why->text) - n,
	    "; waiting for an upstream that can take it");
}

enum pst_spool_rcpt_state
deliver_verdict(const struct verdict_in *in, struct pst_err *why)
{
	const struct pst_err *e;
	enum verdict_source src = VERDICT_ANSWER;

	if (in->rcpt != NULL && in->rcpt->cls == PST_OK) {
		/* Accepted at RCPT: the message's fate decides. */
		if (in->taken || in->msg->cls == PST_OK) {
			pst_err_clear(why);
			return PST_SPOOL_RCPT_DELIVERED;
		}
		e = in->msg;
		src = in->source;
	} else if (in->rcpt != NULL)
		e = in->rcpt;		/* always the upstream's answer */
	else {
		e = in->msg;
		src = in->source;
	}
	*why = *e;
	if (src == VERDICT_UNABLE && why->cls != PST_OK)
		unable_error(in, why);
	/*
	 * Only a 5xx about this message or recipient is final: the
	 * upstream's own answer in a transaction, or one decided from the
	 * EHLO of every upstream (above).  Connection, TLS, greeting, EHLO
	 * and AUTH trouble, a session that failed on the way, and our own
	 * trouble wait: the recipient is not at fault (Postfix soft-bounces
	 * those too).  A recipient refused for "too many recipients" goes
	 * in the next transaction; if it did not get there, it waits.
	 */
	if (src == VERDICT_SESSION || src == VERDICT_LOCAL)
		return PST_SPOOL_RCPT_DEFERRED;
	if (why->detail == PST_CLIENT_E_TOO_MANY)
		return PST_SPOOL_RCPT_DEFERRED;
	if (why->cls == PST_PERM && is_5xx(why) &&
	    (why->scope == PST_SCOPE_RECIPIENT ||
	    why->scope == PST_SCOPE_MESSAGE) && transaction_stage(why->stage))
		return PST_SPOOL_RCPT_FAILED;
	return PST_SPOOL_RCPT_DEFERRED;
}

/* The verdict on recipient 'i' of the message (SIZE_MAX: the message). */
static enum pst_spool_rcpt_state
verdict(const struct delivery *d, size_t i, struct pst_err *why)
{
	struct verdict_in in;

	memset(&in, 0, sizeof(in));
	if (i != SIZE_MAX && d->res[i].done) {
		in.rcpt = &d->res[i].err;
		in.taken = d->res[i].taken;
	}
	in.msg = &d->msg_err;
	in.source = d->msg_src;
	in.nobody = d->nobody;
	in.others = d->cfg->nupstreams > 1;
	return deliver_verdict(&in, why);
}

static void
apply_results(struct delivery *d)
{
	const struct config_queue *q = &d->cfg->queue;
	struct pst_spool_env *env = d->env;
	struct pst_err why, msg_why;
	struct pst_backoff b = { 0 };
	enum pst_spool_rcpt_state st;
	struct pst_spool_rcpt *r;
	struct pst_err err;
	char text[PST_ERR_TEXT_MAX + 64];
	time_t now = time(NULL);
	uint32_t rnd = 0;
	size_t i, pending;
	bool expired, upstream_dsn, early;

	upstream_dsn = d->client != NULL &&
	    (pst_client_info(d->client)->ehlo.caps & PST_EHLO_DSN) != 0;

	for (i = 0; i < d->nsend; i++) {
		r = &env->rcpts[d->map[i]];
		st = verdict(d, i, &why);
		snprintf(text, sizeof(text), "%s%s%s", up_name(d),
		    why.text[0] != '\0' ? ": " : "", why.text);
		pst_spool_env_set_result(env, d->map[i], st,
		    st == PST_SPOOL_RCPT_DELIVERED ? 250 : why.smtp_code,
		    why.esc, st == PST_SPOOL_RCPT_DELIVERED ? NULL : text,
		    &err);
		if (st == PST_SPOOL_RCPT_FAILED) {
			if (bounce_wanted(r))
				d->bounce_for[d->map[i]] = BOUNCE_FAILED;
			d->cur->failed++;
		} else if (st == PST_SPOOL_RCPT_DELIVERED) {
			/* RFC 3461 §6.2.4: relayed past the end of DSN. */
			if (bounce_relay_wanted(r) && !upstream_dsn)
				d->bounce_for[d->map[i]] = BOUNCE_RELAYED;
			d->cur->delivered++;
		}
		else
			d->cur->deferred++;
		log_info("event=%s id=%s rcpt=%s upstream=%s code=%d%s%s "
		    "reason=%s", st == PST_SPOOL_RCPT_DELIVERED ? "delivered" :
		    st == PST_SPOOL_RCPT_FAILED ? "failed" : "deferred",
		    env->id, qa(r->addr), qs(up_name(d)),
		    st == PST_SPOOL_RCPT_DELIVERED ? 250 : why.smtp_code,
		    why.esc[0] != '\0' ? " esc=" : "", why.esc,
		    qs(st == PST_SPOOL_RCPT_DELIVERED ? "ok" : why.text));
	}
	/*
	 * An attempt made before its time (postern flush, sendmail -q) does
	 * not count for the backoff: a flush during an outage must not
	 * push anybody's next regular try further out.
	 */
	early = env->next_attempt > now;
	if (!early)
		env->attempts++;
	if (d->msg_err.cls != PST_OK) {
		verdict(d, SIZE_MAX, &msg_why);
		pst_spool_env_set_error(env, msg_why.smtp_code, msg_why.esc,
		    msg_why.text, &err);
	}
	pending = pst_spool_env_pending(env);
	expired = pending > 0 &&
	    (uint64_t)(now - env->arrival) * 1000 >= q->max_age_ms;
	if (expired) {
		for (i = 0; i < env->nrcpts; i++) {
			r = &env->rcpts[i];
			if (r->state != PST_SPOOL_RCPT_PENDING &&
			    r->state != PST_SPOOL_RCPT_DEFERRED)
				continue;
			snprintf(text, sizeof(text), "delivery time expired "
			    "(queue.max_age); last: %s", r->error != NULL ?
			    r->error : "not tried");
			pst_spool_env_set_result(env, i,
			    PST_SPOOL_RCPT_FAILED, 0, "4.4.7", text, &err);
			if (bounce_wanted(r))
				d->bounce_for[i] = BOUNCE_FAILED;
			log_info("event=expired id=%s rcpt=%s reason=%s",
			    env->id, qa(r->addr), qs(text));
		}
		pending = 0;
	}
	d->remove = pending == 0;
	d->bounce = false;
	for (i = 0; i < env->nrcpts; i++)
		d->bounce = d->bounce || d->bounce_for[i] != BOUNCE_NONE;
	if (d->bounce && env->sender[0] == '\0') {
		/* RFC 5321 §4.5.5: never answer a bounce with a bounce. */
		log_warn("event=bounce-dropped id=%s reason=%s", env->id,
		    qs("the sender is <>: no bounce is sent for a bounce"));
		d->bounce = false;
	}
	if (!d->remove) {
		RAND_bytes((unsigned char *)&rnd, sizeof(rnd));
		b.steps = q->retry;
		b.nsteps = q->nretry;
		b.jitter_pct = RETRY_JITTER_PCT;
		d->next = early ? env->next_attempt : now +
		    (time_t)pst_backoff_next(&b, env->attempts, rnd);
		env->next_attempt = d->next;
		log_info("event=retry id=%s pending=%zu attempts=%u next=+%llds"
		    "%s", env->id, pending, env->attempts,
		    (long long)(d->next - now), early ?
		    " early=yes" : "");
	}
}

/*
 * What a delivery made of a message is saved with the spool's next group
 * flush; the message stays the delivery's (locked, busy for the
 * scheduler) until then, while the connection goes on with the next.
 */
struct saving {
	const struct delivery_cbs *cbs;
	void			*arg;
	struct qent		*e;
	char			 id[PST_SPOOL_ID_LEN + 1];
	bool			 remove;
	time_t			 next;
};

/* On the loop, once the result is on stable storage (or not). */
static void
saved(void *arg, const struct pst_err *err)
{
	struct saving *sv = arg;

	if (err != NULL) {
		log_error("event=save-failed id=%s reason=%s", sv->id,
		    qs(err->text));
		sv->cbs->done(sv->arg, sv->e, DELIVERY_LATER,
		    time(NULL) + DISK_RETRY_S);
	} else if (sv->remove) {
		log_info("event=removed id=%s", sv->id);
		sv->cbs->done(sv->arg, sv->e, DELIVERY_GONE, 0);
	} else
		sv->cbs->done(sv->arg, sv->e, DELIVERY_LATER, sv->next);
	free(sv);
}

static void
save_work(void *arg)
{
	struct delivery *d = arg;
	struct saving *sv;
	struct pst_err err;

	pst_err_clear(&d->job_err);
	if (d->bounce && bounce_create(d->spool, d->cfg, d->env,
	    d->bounce_for, up_name(d), d->body_fd, d->body_off, d->utf8,
	    d->bounce_id,
	    &d->bounce_arrival, &err) == -1) {
		/* Keep the message: the bounce is tried again later. */
		d->job_err = err;
		d->bounce_id[0] = '\0';
		return;
	}
	if ((sv = calloc(1, sizeof(*sv))) == NULL) {
		pst_err_set(&d->job_err, PST_TEMP, PST_STAGE_SPOOL,
		    "out of memory saving the result");
		return;
	}
	sv->cbs = d->cbs;
	sv->arg = d->arg;
	sv->e = d->e;
	memcpy(sv->id, d->id, sizeof(sv->id));
	sv->remove = d->remove;
	sv->next = d->next;
	if (pst_spool_lock_save(d->lock, d->remove ? NULL : d->env, saved, sv,
	    &d->job_err) == -1) {
		free(sv);
		return;
	}
	d->saving = true;
}

static void
save_done(void *arg)
{
	struct delivery *d = arg;

	if (d->job_err.cls != PST_OK) {
		log_error("event=save-failed id=%s reason=%s", d->id,
		    qs(d->job_err.text));
		d->next = time(NULL) + DISK_RETRY_S;
	}
	if (d->bounce_id[0] != '\0') {
		log_info("event=bounced id=%s bounce=%s to=%s",
		    d->id, d->bounce_id, qa(d->env->sender));
		d->cbs->bounced(d->arg, d->bounce_id, d->bounce_arrival);
	}
	pst_spool_lock_release(d->lock);
	d->lock = NULL;
	d->env = NULL;
	close(d->body_fd);
	d->body_fd = -1;
	if (d->saving)
		d->e = NULL;	/* the saving hands it back */
	else
		d_msg_done(d, DELIVERY_LATER, d->next);
	d->saving = false;
	d_message_reset(d);
	if (d->aborted) {
		d_end(d);
		return;
	}
	d_next(d);
}

static void
d_save(struct delivery *d)
{
	d_set_state(d, D_SAVE);
	evtimer_del(d->total);
	d->saving = false;
	d->bounce_id[0] = '\0';
	if (d->res == NULL && d_prepare(d) == -1) {
		/* No memory even to record: the message stays as it was. */
		d->job_err.cls = PST_LOCAL;
		save_done(d);
		return;
	}
	apply_results(d);
	submit(d, save_work, save_done);
}

/*
 * Between messages, and the end.
 */

static void
d_next(struct delivery *d)
{
	struct delivery_msg m;

	if (d->client == NULL || d->aborted) {
		d_end(d);
		return;
	}
	if (d->messages < d->cfg->queue.per_connection &&
	    d->cbs->next(d->arg, d->up, &m)) {
		d->e = m.q;
		memcpy(d->id, m.id, sizeof(d->id));
		d_load(d);
		return;
	}
	d_set_state(d, D_QUIT);
	pst_client_quit(d->client);
}

static void
d_message_reset(struct delivery *d)
{
	size_t i;

	if (d->notify != NULL)
		for (i = 0; i < d->nsend; i++)
			free(d->notify[i]);
	free(d->notify);
	free(d->rcpts);
	free(d->map);
	free(d->res);
	free(d->bounce_for);
	free(d->brcpts);
	free(d->batch);
	d->notify = NULL;
	d->rcpts = NULL;
	d->map = NULL;
	d->res = NULL;
	d->bounce_for = NULL;
	d->brcpts = NULL;
	d->batch = NULL;
	d->nsend = 0;
}

/* Frees the delivery; its message (if any) was handed back already. */
static void
d_end(struct delivery *d)
{
	const struct delivery_cbs *cbs = d->cbs;
	void *arg = d->arg;
	struct upstate *up = d->up;
	bool connected = d->connected_once;

	if (d->e != NULL) {
		/* Aborted with a message in hand: it keeps its saved state. */
		if (d->lock != NULL)
			pst_spool_lock_release(d->lock);
		if (d->body_fd != -1)
			close(d->body_fd);
		d_msg_done(d, DELIVERY_LATER, time(NULL));
	}
	if (d->neg != NULL)
		pst_negotiate_cancel(d->neg);
	pst_client_free(d->client);
	secret_free(d->secret);
	d_message_reset(d);
	event_free(d->total);
	free(d->unable);
	free(d->ups);
	config_unref(d->cfg);
	LIST_REMOVE(d, entry);
	free(d);
	cbs->ended(arg, up, connected);
}

int
delivery_start(const struct delivery_env *env,
    const struct delivery_cbs *cbs, void *arg, size_t upi,
    const struct delivery_msg *m)
{
	struct config *cfg = env->cfg;
	struct delivery *d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return -1;
	/* By upstream index; + 1: never a zero-size allocation. */
	if ((d->unable = calloc(cfg->nupstreams + 1, 1)) == NULL ||
	    (d->ups = calloc(cfg->nupstreams + 1, sizeof(*d->ups))) == NULL ||
	    (d->total = evtimer_new(env->base, total_expired, d)) == NULL) {
		free(d->ups);
		free(d->unable);
		free(d);
		return -1;
	}
	memcpy(d->ups, env->ups, cfg->nupstreams * sizeof(*d->ups));
	d->cbs = cbs;
	d->arg = arg;
	d->base = env->base;
	d->pool = env->pool;
	d->spool = env->spool;
	d->cfg = config_ref(cfg);
	d->upi = upi;
	d->up = d->ups[upi];
	d->cur = d->up;
	d->e = m->q;
	memcpy(d->id, m->id, sizeof(d->id));
	d->body_fd = -1;
	LIST_INSERT_HEAD(&deliveries, d, entry);
	d_load(d);
	return 0;
}

void
deliver_abort_all(const void *arg)
{
	struct delivery *d, *next;

	for (d = LIST_FIRST(&deliveries); d != NULL; d = next) {
		next = LIST_NEXT(d, entry);
		if (d->arg != arg)
			continue;
		d->aborted = true;
		/* Only what waits on the network can go now; pool jobs end
		 * themselves when they come back. */
		if (d->state == D_CONNECT || d->state == D_SEND ||
		    d->state == D_SWITCH || d->state == D_QUIT) {
			if (d->neg != NULL) {
				pst_negotiate_cancel(d->neg);
				d->neg = NULL;
			}
			if (d->e != NULL)
				log_warn("event=delivery-aborted id=%s "
				    "upstream=%s", d->id, qs(up_name(d)));
			d_end(d);
		}
	}
}
