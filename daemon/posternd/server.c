/*
 * server.c: ESMTP server sessions.
 *
 * The protocol is lib/smtp/server's session machine: the command table,
 * the states, the replies, the deadlines and the limits.  This file drives
 * it over a bufferevent (input buffer, replies, reading paused and
 * resumed, the deadline on a timer) and is its sink: a transaction is a
 * spool message, the message bytes go into it and are flushed to disk on
 * the worker pool whenever enough is buffered (reading pauses meanwhile,
 * so memory stays bounded), and at the end of data the commit runs on
 * the pool; the session answers only from the commit's completion: 250
 * when the message is on stable storage, 451 4.3.0 (with nothing left
 * behind) when it is not.
 *
 * While a flush or commit is in flight the job owns the spool message
 * and the session must stay: a session whose connection failed (reset,
 * write error) is marked dead, its connection freed at once, and the
 * struct freed by the completion.  A client that half-closes (EOF) can
 * still read: what it sent is processed to the end, every reply due,
 * the 250 after a commit included, is sent, and only then is the
 * connection closed.
 *
 * A session that holds its place without moving mail is closed: each
 * request has a deadline that bytes trickled one at a time do not
 * extend, DATA must keep up limits.min_data_rate, commands that move no
 * mail are counted, and under stress (most sessions in use) the limits
 * shrink for every session.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common/err.h"
#include "server.h"
#include "shared/config.h"
#include "shared/log.h"
#include "shared/rewrite.h"
#include "smtp/cmd.h"
#include "smtp/dot.h"
#include "smtp/server.h"
#include "smtp/trace.h"
#include "spool/spool.h"

struct session {
	TAILQ_ENTRY(session)	 entry;
	uint64_t		 id;
	struct server		*srv;
	struct config		*cfg;
	struct bufferevent	*bev;
	struct pst_smtps	*smtp;		/* the protocol */
	bool			 dead;		/* client gone, job in flight */
	struct event		*timer;		/* the deadline */
	char			 peer[80];	/* "127.0.0.1:41234" or "unix" */
	char			 peer_ip[64];	/* for Received: */
	const char		*helo;		/* the client's, for Received: */
	bool			 esmtp;

	/* The transaction. */
	struct pst_spool_msg	*msg;		/* NULL: no MAIL yet */
	bool			 smtputf8;
	bool			 body_8bit;
};

TAILQ_HEAD(session_list, session);

struct server {
	struct event_base	*base;
	struct config		*cfg;
	struct pst_spool	*spool;
	struct pst_pool		*pool;
	struct session_list	 sessions;
	unsigned		 nsessions;
	uint64_t		 next_id;
	server_commit_cb	 commit_cb;
	void			*commit_arg;
	unsigned long		 accepted;	/* messages */
	unsigned long		 refused;	/* sessions */
	unsigned long		 total;		/* sessions */
	bool			 draining;
	bool			 stress;	/* shorter limits: see pressure */
	void			(*drained)(void *);
	void			*drained_arg;
};

static void	session_readcb(struct bufferevent *, void *);
static void	session_writecb(struct bufferevent *, void *);
static void	session_eventcb(struct bufferevent *, short, void *);
static void	session_timeoutcb(evutil_socket_t, short, void *);
static void	server_pressure(struct server *);
static void	session_free(struct session *);
static void	session_flush_done(struct pst_spool_msg *,
		    const struct pst_err *, void *);
static void	session_commit_done(struct pst_spool_msg *,
		    const struct pst_err *, void *);

static int	sink_mail(void *, const struct pst_cmd *,
		    struct pst_smtps_reply *);
static int	sink_rcpt(void *, const struct pst_cmd *,
		    struct pst_smtps_reply *);
static int	sink_data(void *, struct pst_smtps_reply *);
static int	sink_write(void *, struct evbuffer *);
static int	sink_flush(void *);
static int	sink_commit(void *, const struct pst_dot *,
		    struct pst_smtps_reply *);
static void	sink_reset(void *);
static void	io_write(void *, const char *, size_t);
static void	io_reading(void *, bool);
static void	io_arm(void *, uint64_t);
static void	io_disarm(void *);
static uint64_t	io_now(void *);
static void	io_closing(void *);
static void	io_event(void *, const struct pst_smtps_event *);

static const struct pst_smtps_sink session_sink = {
	.mail = sink_mail,
	.rcpt = sink_rcpt,
	.data = sink_data,
	.write = sink_write,
	.flush = sink_flush,
	.commit = sink_commit,
	.reset = sink_reset,
};

static const struct pst_smtps_io session_io = {
	.write = io_write,
	.reading = io_reading,
	.arm = io_arm,
	.disarm = io_disarm,
	.now = io_now,
	.closing = io_closing,
	.event = io_event,
};

/*
 * The connection: bytes, reading, the deadline, and the log.
 */

static void
io_write(void *arg, const char *buf, size_t len)
{
	struct session *s = arg;

	evbuffer_add(bufferevent_get_output(s->bev), buf, len);
}

static void
io_reading(void *arg, bool on)
{
	struct session *s = arg;

	if (on)
		bufferevent_enable(s->bev, EV_READ);
	else
		bufferevent_disable(s->bev, EV_READ);
}

static void
io_arm(void *arg, uint64_t left)
{
	struct session *s = arg;
	struct timeval tv;

	tv.tv_sec = (time_t)(left / 1000000);
	tv.tv_usec = (suseconds_t)(left % 1000000);
	evtimer_add(s->timer, &tv);
}

static void
io_disarm(void *arg)
{
	struct session *s = arg;

	evtimer_del(s->timer);
}

static uint64_t
io_now(void *arg)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Stops reading; frees the session once the output has drained. */
static void
io_closing(void *arg)
{
	struct session *s = arg;

	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0) {
		/* Let the loop call us back rather than free under our feet. */
		bufferevent_trigger(s->bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS |
		    BEV_TRIG_IGNORE_WATERMARKS);
	}
}

static void
io_event(void *arg, const struct pst_smtps_event *ev)
{
	struct session *s = arg;
	unsigned long long id = (unsigned long long)s->id;

	switch (ev->type) {
	case PST_SMTPS_EV_STATE:
		break;
	case PST_SMTPS_EV_REPLY:
		log_debug("event=reply session=%llu reply=%s", id,
		    qs(ev->text));
		break;
	case PST_SMTPS_EV_JUNK_LIMIT:
		log_warn("event=junk-limit session=%llu client=%s commands=%u "
		    "stress=%s", id, qs(s->peer), ev->count,
		    ev->stress ? "yes" : "no");
		break;
	case PST_SMTPS_EV_ERROR_LIMIT:
		log_info("event=error-limit session=%llu client=%s "
		    "errors=%u", id, qs(s->peer), ev->count);
		break;
	case PST_SMTPS_EV_PROTOCOL:
		log_info("event=protocol-error session=%llu client=%s "
		    "reason=%s", id, qs(s->peer), qs(ev->text));
		break;
	case PST_SMTPS_EV_HTTP:
		log_info("event=http-request session=%llu client=%s", id,
		    qs(s->peer));
		break;
	case PST_SMTPS_EV_TIMEOUT:
		log_info("event=timeout session=%llu client=%s state=%s "
		    "stress=%s", id, qs(s->peer),
		    pst_smtps_phase_name(ev->state),
		    ev->stress ? "yes" : "no");
		break;
	case PST_SMTPS_EV_EOF:
		log_debug("event=client-eof session=%llu client=%s state=%s",
		    id, qs(s->peer), pst_smtps_phase_name(ev->state));
		break;
	}
}

/*
 * The sink: a transaction is a spool message.
 */

static void
sink_reset(void *arg)
{
	struct session *s = arg;

	if (s->msg != NULL)
		pst_spool_msg_free(s->msg, s->srv->pool);
	s->msg = NULL;
	s->smtputf8 = false;
	s->body_8bit = false;
}

static int
sink_mail(void *arg, const struct pst_cmd *cmd, struct pst_smtps_reply *r)
{
	struct session *s = arg;
	struct pst_spool_env *env;
	struct pst_err err;
	char origin[128], *sender = NULL;
	uint64_t need;
	int rc;

	/* RFC 1870: room for what the client announced, or the limit. */
	need = cmd->mail.has_size ? cmd->mail.size : 0;
	rc = pst_spool_space(s->srv->spool, need, PST_SPOOL_RESERVE_AUTO,
	    PST_SPOOL_RESERVE_AUTO, &err);
	if (rc != 1) {
		log_warn("event=spool-full session=%llu reason=%s",
		    (unsigned long long)s->id, qs(err.text));
		if (rc == 0)
			pst_smtps_reply_set(r, 452, "4.3.1", "Insufficient "
			    "system storage");
		else
			pst_smtps_reply_set(r, 451, "4.3.0", "Local error: "
			    "cannot check the spool");
		return -1;
	}
	if ((s->msg = pst_spool_msg_begin(s->srv->spool, &err)) == NULL)
		goto fail;
	env = pst_spool_msg_env(s->msg);
	snprintf(origin, sizeof(origin), "smtp %s", s->peer);
	if (cmd->addr.bare && (sender = rewrite_sender(s->cfg,
	    cmd->addr.mailbox)) == NULL) {
		pst_err_sys(&err, PST_TEMP, PST_STAGE_SPOOL, ENOMEM,
		    "qualifying the sender");
		goto fail;
	}
	rc = pst_spool_env_set_sender(env, cmd->addr.null ? "" :
	    sender != NULL ? sender : cmd->addr.mailbox, &err);
	free(sender);
	if (rc == -1 || pst_spool_env_set_origin(env, origin, &err) == -1)
		goto fail;
	if (cmd->mail.envid[0] != '\0' &&
	    pst_spool_env_set_envid(env, cmd->mail.envid, &err) == -1)
		goto fail;
	env->ret = pst_smtps_ret(cmd->mail.ret);
	s->esmtp = pst_smtps_esmtp(s->smtp);
	s->body_8bit = cmd->mail.body == PST_BODY_8BITMIME;
	s->smtputf8 = cmd->mail.smtputf8;
	if (s->body_8bit)
		env->flags |= PST_SPOOL_F_8BITMIME;
	if (s->smtputf8)
		env->flags |= PST_SPOOL_F_SMTPUTF8;
	return 0;
fail:
	log_warn("event=mail-failed session=%llu reason=%s",
	    (unsigned long long)s->id, qs(err.text));
	pst_smtps_local_error(r, NULL);
	return -1;
}

static int
sink_rcpt(void *arg, const struct pst_cmd *cmd, struct pst_smtps_reply *r)
{
	struct session *s = arg;
	struct pst_spool_env *env = pst_spool_msg_env(s->msg);
	struct rewrite_list list = { 0 };
	char orcpt[PST_SMTPS_ORCPT_MAX];
	struct pst_err err;
	size_t i;

	pst_smtps_orcpt(cmd, orcpt, sizeof(orcpt));
	/* "<postmaster>" alone means this host's postmaster: the alias. */
	if (rewrite_recipient(s->cfg, cmd->addr.postmaster ? "postmaster" :
	    cmd->addr.mailbox, &list) == -1)
		goto fail;
	for (i = 0; i < list.count; i++)
		if (pst_spool_env_add_rcpt(env, list.addrs[i],
		    pst_smtps_notify(cmd->rcpt.notify),
		    orcpt[0] != '\0' ? orcpt : NULL, &err) == -1)
			goto fail;
	rewrite_list_free(&list);
	return 0;
fail:
	rewrite_list_free(&list);
	log_warn("event=rcpt-failed session=%llu", (unsigned long long)s->id);
	pst_smtps_local_error(r, NULL);
	return -1;
}

/* The trace field we put on top (RFC 5321 §4.4). */
static int
write_received(struct session *s, struct pst_err *err)
{
	struct pst_spool_env *env = pst_spool_msg_env(s->msg);
	struct pst_received r = { 0 };
	char with[16], buf[1024];
	int n;

	snprintf(with, sizeof(with), "%s%s", s->smtputf8 ? "UTF8" : "",
	    s->esmtp ? "ESMTP" : "SMTP");
	r.from = s->helo;
	r.from_comment = s->peer_ip;
	r.by = s->cfg->hostname;
	r.by_comment = "postern";
	r.with = with;
	r.id = pst_spool_msg_id(s->msg);
	r.for_addr = env->nrcpts == 1 ? env->rcpts[0].addr : NULL;
	r.date = time(NULL);
	r.fold = PST_RCVD_FOLD_BY | PST_RCVD_FOLD_FOR | PST_RCVD_FOLD_DATE;
	if ((n = pst_received_format(&r, buf, sizeof(buf))) == -1)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_DATA,
		    "Received: header too long");
	return pst_spool_msg_write(s->msg, buf, (size_t)n, err);
}

static int
sink_data(void *arg, struct pst_smtps_reply *r)
{
	struct session *s = arg;
	struct pst_err err;

	if (write_received(s, &err) == -1) {
		log_warn("event=data-failed session=%llu reason=%s",
		    (unsigned long long)s->id, qs(err.text));
		pst_smtps_local_error(r, NULL);
		return -1;
	}
	return 0;
}

/* What the DATA reader produced goes into the spool message. */
static int
sink_write(void *arg, struct evbuffer *buf)
{
	struct session *s = arg;
	struct pst_err err;

	if (pst_spool_msg_add_buffer(s->msg, buf, &err) == -1) {
		log_warn("event=data-failed session=%llu reason=%s",
		    (unsigned long long)s->id, qs(err.text));
		return -1;
	}
	return 0;
}

/* Enough is buffered: to disk on the pool, reading paused meanwhile. */
static int
sink_flush(void *arg)
{
	struct session *s = arg;
	struct pst_err err;

	if (!pst_spool_msg_need_flush(s->msg))
		return 0;
	if (pst_spool_msg_flush(s->msg, s->srv->pool, session_flush_done, s,
	    &err) == -1)
		return -1;
	return 1;
}

/*
 * RFC 6531 §3.4: of the mail whose client asked for SMTPUTF8, only what
 * has UTF-8 in its envelope or header section needs it; delivery sends
 * the rest to upstreams without SMTPUTF8 too.
 */
static void
note_smtputf8(struct session *s, const struct pst_dot *dot)
{
	struct pst_spool_env *env = pst_spool_msg_env(s->msg);

	if (!(env->flags & PST_SPOOL_F_SMTPUTF8))
		return;
	env->flags |= PST_SPOOL_F_UTF8_CHECKED;
	if (dot->hdr_8bit || pst_spool_env_utf8_addrs(env))
		env->flags |= PST_SPOOL_F_UTF8_NEEDED;
}

static int
sink_commit(void *arg, const struct pst_dot *dot, struct pst_smtps_reply *r)
{
	struct session *s = arg;
	struct pst_err err;

	if (pst_hops_exceeded(&dot->hops)) {
		pst_smtps_reply_set(r, 554, "5.4.0", "Error: too many hops "
		    "(%u Received: headers): mail loop?", dot->hops.count);
		return PST_SMTPS_REFUSED;
	}
	note_smtputf8(s, dot);
	if (pst_spool_msg_commit(s->msg, s->srv->pool, session_commit_done,
	    s, &err) == -1) {
		log_warn("event=commit-failed session=%llu reason=%s",
		    (unsigned long long)s->id, qs(err.text));
		pst_smtps_local_error(r, NULL);
		return PST_SMTPS_REFUSED;
	}
	return PST_SMTPS_PENDING;
}

/*
 * Completions, on the loop.
 */

static void
session_flush_done(struct pst_spool_msg *msg, const struct pst_err *err,
    void *arg)
{
	struct session *s = arg;

	if (s->dead) {
		session_free(s);
		return;
	}
	if (err != NULL)
		log_warn("event=spool-write-failed session=%llu reason=%s",
		    (unsigned long long)s->id, qs(err->text));
	pst_smtps_flush_done(s->smtp, err == NULL);
}

static void
session_commit_done(struct pst_spool_msg *msg, const struct pst_err *err,
    void *arg)
{
	struct session *s = arg;
	const struct pst_spool_env *env = pst_spool_msg_env(msg);
	struct pst_smtps_reply r = { 0 };

	if (err == NULL) {
		s->srv->accepted++;
		log_info("event=accepted id=%s session=%llu client=%s "
		    "from=%s rcpts=%zu size=%llu", pst_spool_msg_id(msg),
		    (unsigned long long)s->id, qs(s->peer), qa(env->sender),
		    env->nrcpts, (unsigned long long)env->size);
		if (s->srv->commit_cb != NULL)
			s->srv->commit_cb(env, s->srv->commit_arg);
	} else
		log_warn("event=commit-failed session=%llu reason=%s",
		    (unsigned long long)s->id, qs(err->text));
	if (s->dead) {
		if (err == NULL)
			log_warn("event=client-gone id=%s session=%llu "
			    "reason=%s", pst_spool_msg_id(msg),
			    (unsigned long long)s->id, qs("the client left "
			    "before the 250; it may send the message again"));
		session_free(s);
		return;
	}
	if (err == NULL)
		snprintf(r.queued, sizeof(r.queued), "%s",
		    pst_spool_msg_id(msg));
	else
		pst_smtps_local_error(&r, "message not queued");
	pst_smtps_commit_done(s->smtp, &r);
}

/*
 * Connection events.
 */

static void
session_readcb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	pst_smtps_input(s->smtp);
}

/* Closing: free once the last reply has left. */
static void
session_writecb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	if (pst_smtps_state(s->smtp) == PST_SMTPS_CLOSING &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		session_free(s);
}

static void
session_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;
	enum pst_smtps_state st = pst_smtps_state(s->smtp);

	/*
	 * EOF: the client half-closed but can still read: what it sent is
	 * answered and the replies due are sent before the close.
	 */
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		pst_smtps_eof(s->smtp);
		return;
	}
	/* An error: nobody is left to write to. */
	if (st == PST_SMTPS_FLUSH || st == PST_SMTPS_COMMIT) {
		s->dead = true;
		evtimer_del(s->timer);
		bufferevent_free(s->bev);
		s->bev = NULL;
		return;
	}
	session_free(s);
}

/* The deadline passed: 421, or the last reply never left. */
static void
session_timeoutcb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	if (pst_smtps_timeout(s->smtp) == -1)
		session_free(s);
}

static void
session_free(struct session *s)
{
	struct server *srv = s->srv;

	log_debug("event=disconnect session=%llu client=%s messages=%u",
	    (unsigned long long)s->id, qs(s->peer),
	    s->smtp != NULL ? pst_smtps_messages(s->smtp) : 0);
	if (s->msg != NULL)
		pst_spool_msg_free(s->msg, srv->pool);
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	pst_smtps_free(s->smtp);
	if (s->timer != NULL)
		event_free(s->timer);
	TAILQ_REMOVE(&srv->sessions, s, entry);
	srv->nsessions--;
	config_unref(s->cfg);
	free(s);
	server_pressure(srv);
	if (srv->draining && srv->nsessions == 0 && srv->drained != NULL)
		srv->drained(srv->drained_arg);
}

/*
 * Stress (Postfix's stress-adaptive behaviour).  While the sessions in
 * use reach limits.stress_threshold percent of limits.sessions, every
 * session gets the shorter stress_idle and stress_junk_commands, so that
 * clients that hold sessions without sending mail make room sooner for
 * those that retry.  It ends when the sessions in use fall to half the
 * threshold, so that a server at the threshold does not flip with every
 * connection.
 */

/* Every session follows the server: the deadlines running shrink. */
static void
server_tighten(struct server *srv)
{
	struct session *s;

	for (s = TAILQ_FIRST(&srv->sessions); s != NULL;
	    s = TAILQ_NEXT(s, entry))
		pst_smtps_set_stress(s->smtp, srv->stress);
}

static void
server_pressure(struct server *srv)
{
	const struct config_limits *lim = &srv->cfg->limits;
	unsigned at = (lim->sessions * lim->stress_threshold + 99) / 100;

	if (!srv->stress && srv->nsessions >= at) {
		srv->stress = true;
		log_warn("event=stress-begin sessions=%u threshold=%u limit=%u",
		    srv->nsessions, at, lim->sessions);
		server_tighten(srv);
	} else if (srv->stress && srv->nsessions <= at / 2) {
		srv->stress = false;
		log_info("event=stress-end sessions=%u", srv->nsessions);
		server_tighten(srv);
	}
}

/*
 * Accepting.
 */

static bool
peer_allowed(const struct config *cfg, const struct sockaddr *sa)
{
	size_t i;

	if (sa->sa_family == AF_UNIX)
		return true;	/* the socket's permissions decide */
	for (i = 0; i < cfg->nallow; i++)
		if (pst_cidr_match(&cfg->allow[i], sa))
			return true;
	return false;
}

static void
peer_ip(const struct sockaddr *sa, char *buf, size_t len)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
	char a[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]", a);
	} else if (sa->sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[IPv6:%s]", a);
	} else
		snprintf(buf, len, "localhost");
}

/* The session's limits, from the configuration it started with. */
static void
session_params(const struct config *cfg, struct pst_smtps_params *p)
{
	const struct config_limits *lim = &cfg->limits;

	memset(p, 0, sizeof(*p));
	p->hostname = cfg->hostname;
	p->ext = PST_SMTPS_EXTENSIONS;
	p->message_size = lim->message_size;
	p->recipients = lim->recipients;
	p->errors = PST_SMTPS_ERROR_LIMIT;
	p->junk = lim->junk_commands;
	p->stress_junk = lim->stress_junk_commands;
	p->idle_us = lim->idle_ms * 1000;
	p->stress_idle_us = lim->stress_idle_ms * 1000;
	p->min_data_rate = lim->min_data_rate;
	/*
	 * Every client past the allow list is a local one: "<root>" and
	 * "MAIL FROM:<cron>" are taken and qualified as postern-sendmail
	 * qualifies them (aliases, default_domain), as Postfix does.
	 */
	p->local_names = true;
}

void
server_accept(struct server *srv, int fd, const struct sockaddr *sa,
    socklen_t salen, const struct pst_endpoint *ep)
{
	struct pst_smtps_params params;
	struct session *s;
	int one = 1;

	session_params(srv->cfg, &params);
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->timer = evtimer_new(srv->base, session_timeoutcb, s)) ==
	    NULL ||
	    (s->bev = bufferevent_socket_new(srv->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL ||
	    (s->smtp = pst_smtps_new(&params, &session_sink, &session_io, s,
	    bufferevent_get_input(s->bev))) == NULL) {
		log_error("event=accept-failed reason=%s", qs("out of memory"));
		if (s != NULL && s->timer != NULL)
			event_free(s->timer);
		if (s != NULL && s->bev != NULL)
			bufferevent_free(s->bev);	/* closes 'fd' */
		else
			close(fd);
		free(s);
		return;
	}
	s->srv = srv;
	s->id = ++srv->next_id;
	s->cfg = config_ref(srv->cfg);
	s->helo = pst_smtps_helo(s->smtp);
	pst_smtps_set_stress(s->smtp, srv->stress);
	TAILQ_INSERT_TAIL(&srv->sessions, s, entry);
	srv->nsessions++;
	server_pressure(srv);
	pst_sockaddr_format(sa, salen, s->peer, sizeof(s->peer));
	peer_ip(sa, s->peer_ip, sizeof(s->peer_ip));
	if (sa->sa_family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	bufferevent_setcb(s->bev, session_readcb, session_writecb,
	    session_eventcb, s);
	bufferevent_enable(s->bev, EV_WRITE);

	srv->total++;
	if (!peer_allowed(s->cfg, sa)) {
		srv->refused++;
		log_info("event=refused session=%llu client=%s reason=%s",
		    (unsigned long long)s->id, qs(s->peer),
		    qs("not in allow"));
		pst_smtps_refuse(s->smtp, 554, "5.7.1", "Access denied");
		return;
	}
	if (srv->draining) {
		pst_smtps_shutdown(s->smtp);
		return;
	}
	if (srv->nsessions > s->cfg->limits.sessions) {
		srv->refused++;
		log_warn("event=refused session=%llu client=%s reason=%s",
		    (unsigned long long)s->id, qs(s->peer),
		    qs("session limit reached"));
		pst_smtps_refuse(s->smtp, 421, "4.7.0", "Too many sessions, "
		    "try again later");
		return;
	}
	log_debug("event=connect session=%llu client=%s listen=%s",
	    (unsigned long long)s->id, qs(s->peer),
	    ep->kind == PST_EP_UNIX ? qs(ep->path) : qs(ep->host));
	pst_smtps_greet(s->smtp, NULL);
}

struct server *
server_new(struct event_base *base, struct config *cfg,
    struct pst_spool *spool, struct pst_pool *pool)
{
	struct server *srv;

	if ((srv = calloc(1, sizeof(*srv))) == NULL)
		return NULL;
	srv->base = base;
	srv->cfg = config_ref(cfg);
	srv->spool = spool;
	srv->pool = pool;
	TAILQ_INIT(&srv->sessions);
	return srv;
}

void
server_set_commit_cb(struct server *srv, server_commit_cb cb, void *arg)
{
	srv->commit_cb = cb;
	srv->commit_arg = arg;
}

void
server_set_config(struct server *srv, struct config *cfg)
{
	config_unref(srv->cfg);
	srv->cfg = config_ref(cfg);
}

void
server_shutdown(struct server *srv, void (*drained)(void *), void *arg)
{
	struct session *s, *next;

	srv->draining = true;
	srv->drained = drained;
	srv->drained_arg = arg;
	for (s = TAILQ_FIRST(&srv->sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		/* Idle ones at once; one with a job in flight after it. */
		pst_smtps_shutdown(s->smtp);
	}
	if (srv->nsessions == 0 && drained != NULL)
		drained(arg);
}

void
server_counts(const struct server *srv, unsigned long *accepted,
    unsigned long *refused, unsigned long *sessions)
{
	*accepted = srv->accepted;
	*refused = srv->refused;
	*sessions = srv->total;
}

unsigned
server_sessions(const struct server *srv)
{
	return srv->nsessions;
}

void
server_free(struct server *srv)
{
	struct session *s;

	if (srv == NULL)
		return;
	/* Sessions left after a forced stop: their jobs are done by now. */
	srv->draining = false;
	/* session_free() unlinks 's' before freeing it. */
	while ((s = TAILQ_FIRST(&srv->sessions)) != NULL)
		/* NOLINTNEXTLINE(clang-analyzer-unix.Malloc) */
		session_free(s);
	config_unref(srv->cfg);
	free(srv);
}
