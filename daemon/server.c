/*
 * server.c: ESMTP server sessions.
 *
 * A session reads command lines through the strict line reader (only CRLF
 * ends a line: bare CR or LF closes the session), parses them with
 * lib/smtp/cmd and dispatches through the command table: each entry has
 * a check, which answers and returns -1 when the command is out of place,
 * and a proceed, which acts.  Replies are written as they are made, so
 * pipelined commands get their replies in one write.
 *
 * After DATA's 354 the DATA reader takes over: it removes dot-stuffing,
 * bounds lines and size, and counts Received: fields; the message bytes go
 * into the spool message, flushed to disk on the worker pool whenever
 * enough is buffered (reading pauses meanwhile, so memory stays bounded).
 * At the end of data the commit runs on the pool; the session stops
 * reading and answers only from the commit's completion: 250 when the
 * message is on stable storage, 451 4.3.0 (with nothing left behind)
 * when it is not.
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
#include "config.h"
#include "log.h"
#include "msg/trace.h"
#include "rewrite.h"
#include "server.h"
#include "smtp/cmd.h"
#include "smtp/dot.h"
#include "smtp/line.h"
#include "spool/spool.h"

#define SERVER_EXTENSIONS	(PST_CMD_EXT_SIZE | PST_CMD_EXT_8BITMIME | \
				 PST_CMD_EXT_SMTPUTF8 | PST_CMD_EXT_DSN)
#define ERROR_LIMIT		20	/* bad commands before 421 */
#define LINE_BUF		1100	/* > pst_cmd_line_max(all) */

enum session_state {
	SS_CMD = 0,	/* reading commands */
	SS_DATA,	/* reading the message after 354 */
	SS_FLUSH,	/* body bytes going to disk; reading paused */
	SS_COMMIT,	/* the commit is running; reading paused */
	SS_CLOSING,	/* last reply written; close once it is sent */
};

static const char *const session_state_names[] = {
	[SS_CMD] = "command",
	[SS_DATA] = "data",
	[SS_FLUSH] = "flush",
	[SS_COMMIT] = "commit",
	[SS_CLOSING] = "closing",
};

struct session {
	TAILQ_ENTRY(session)	 entry;
	uint64_t		 id;
	struct server		*srv;
	struct config		*cfg;
	struct bufferevent	*bev;
	enum session_state	 state;
	bool			 dead;		/* client gone, job in flight */
	bool			 eof;		/* client half-closed: no input */
	struct event		*timer;		/* the deadline */
	uint64_t		 deadline;	/* monotonic microseconds */
	uint64_t		 paused;	/* DATA time left when a flush began */
	unsigned		 junk;		/* commands since the last message */
	bool			 shutdown;	/* 421 after the current job */
	char			 peer[80];	/* "127.0.0.1:41234" or "unix" */
	char			 peer_ip[64];	/* for Received: */
	struct pst_line		 lr;
	char			 line[LINE_BUF];
	unsigned		 ext;		/* PST_CMD_EXT_* announced */
	char			 helo[PST_ADDR_DOMAIN_MAX + 1];
	bool			 esmtp;
	unsigned		 errors;
	unsigned		 messages;

	/* The transaction. */
	struct pst_spool_msg	*msg;		/* NULL: no MAIL yet */
	unsigned		 nrcpt;
	unsigned		 overshoot;	/* RCPTs answered 452 */
	bool			 smtputf8;
	bool			 body_8bit;
	bool			 discard;	/* spooling failed: read to the end */
	struct pst_dot		 dot;
	struct evbuffer		*data;
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

struct command {
	enum pst_cmd_verb	 verb;
	bool			 junk;		/* moves no mail: counted */
	int			(*check)(struct session *, struct pst_cmd *);
	void			(*proceed)(struct session *, struct pst_cmd *);
};

static void	session_readcb(struct bufferevent *, void *);
static void	session_writecb(struct bufferevent *, void *);
static void	session_eventcb(struct bufferevent *, short, void *);
static void	session_timeoutcb(evutil_socket_t, short, void *);
static void	server_pressure(struct server *);
static void	session_close(struct session *);
static void	session_free(struct session *);
static void	session_reply(struct session *, int, const char *,
		    const char *, ...) __attribute__((format(printf, 4, 5)));
static void	session_reply_err(struct session *, const struct pst_err *);
static void	session_txn_reset(struct session *);
static void	session_commands(struct session *);
static void	session_data(struct session *);
static void	session_flush_done(struct pst_spool_msg *,
		    const struct pst_err *, void *);
static void	session_commit_done(struct pst_spool_msg *,
		    const struct pst_err *, void *);

static int	check_helo(struct session *, struct pst_cmd *);
static int	check_mail(struct session *, struct pst_cmd *);
static int	check_rcpt(struct session *, struct pst_cmd *);
static int	check_data(struct session *, struct pst_cmd *);
static void	proceed_helo(struct session *, struct pst_cmd *);
static void	proceed_ehlo(struct session *, struct pst_cmd *);
static void	proceed_mail(struct session *, struct pst_cmd *);
static void	proceed_rcpt(struct session *, struct pst_cmd *);
static void	proceed_data(struct session *, struct pst_cmd *);
static void	proceed_rset(struct session *, struct pst_cmd *);
static void	proceed_noop(struct session *, struct pst_cmd *);
static void	proceed_quit(struct session *, struct pst_cmd *);
static void	proceed_vrfy(struct session *, struct pst_cmd *);
static void	proceed_help(struct session *, struct pst_cmd *);

static const struct command commands[] = {
	/* HELO and EHLO count when repeated: check_helo(). */
	{ PST_CMD_HELO, false, check_helo, proceed_helo },
	{ PST_CMD_EHLO, false, check_helo, proceed_ehlo },
	{ PST_CMD_MAIL, false, check_mail, proceed_mail },
	{ PST_CMD_RCPT, false, check_rcpt, proceed_rcpt },
	{ PST_CMD_DATA, false, check_data, proceed_data },
	{ PST_CMD_RSET, true, NULL, proceed_rset },
	{ PST_CMD_NOOP, true, NULL, proceed_noop },
	{ PST_CMD_QUIT, false, NULL, proceed_quit },
	{ PST_CMD_VRFY, true, NULL, proceed_vrfy },
	{ PST_CMD_HELP, true, NULL, proceed_help },
};

/*
 * Deadlines.  Each request has limits.idle to arrive whole, counted from
 * the end of the one before (or the greeting): a command line, or the
 * last reply to leave while closing.  Bytes trickled one at a time do
 * not extend it.  During DATA the deadline starts at idle from the 354
 * and grows by 1/min_data_rate s for each byte received, never past
 * idle from now: a client slower than min_data_rate runs out of time.
 * No deadline runs while a job (flush, commit) is in flight; a flush
 * keeps the DATA time left.
 */

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* The time a request may take: limits.idle, shorter under stress. */
static uint64_t
session_idle_us(const struct session *s)
{
	const struct config_limits *lim = &s->cfg->limits;

	if (s->srv->stress && lim->stress_idle_ms < lim->idle_ms)
		return lim->stress_idle_ms * 1000;
	return lim->idle_ms * 1000;
}

static unsigned
session_junk_limit(const struct session *s)
{
	const struct config_limits *lim = &s->cfg->limits;

	if (s->srv->stress && lim->stress_junk_commands < lim->junk_commands)
		return lim->stress_junk_commands;
	return lim->junk_commands;
}

/* Arms the deadline at 'deadline' (now_us() time). */
static void
session_arm(struct session *s, uint64_t deadline)
{
	uint64_t now = now_us(), left = deadline > now ? deadline - now : 0;
	struct timeval tv;

	tv.tv_sec = (time_t)(left / 1000000);
	tv.tv_usec = (suseconds_t)(left % 1000000);
	s->deadline = deadline;
	evtimer_add(s->timer, &tv);
}

/* 'n' message bytes arrived: the DATA deadline grows, up to idle. */
static void
session_data_progress(struct session *s, size_t n)
{
	uint64_t cap = now_us() + session_idle_us(s), d;

	if (n == 0)
		return;
	d = s->deadline + (uint64_t)n * 1000000 / s->cfg->limits.min_data_rate;
	session_arm(s, d < cap ? d : cap);
}

/*
 * The one place the state changes: reading follows it (none while a job
 * runs, while closing, or once the client has half-closed), and so does
 * the deadline.
 */
static void
session_set_state(struct session *s, enum session_state st)
{
	enum session_state from = s->state;
	uint64_t now = now_us(), idle = session_idle_us(s);

	s->state = st;
	if ((st == SS_CMD || st == SS_DATA) && !s->eof)
		bufferevent_enable(s->bev, EV_READ);
	else
		bufferevent_disable(s->bev, EV_READ);
	switch (st) {
	case SS_DATA:
		if (from == SS_FLUSH) {
			session_arm(s, now + (s->paused < idle ? s->paused :
			    idle));
			break;
		}
		/* FALLTHROUGH */
	case SS_CMD:
	case SS_CLOSING:
		session_arm(s, now + idle);
		break;
	case SS_FLUSH:
		s->paused = s->deadline > now ? s->deadline - now : 0;
		/* FALLTHROUGH */
	case SS_COMMIT:
		evtimer_del(s->timer);
		break;
	}
}

/*
 * Replies.
 */

static void
session_reply(struct session *s, int code, const char *esc, const char *fmt,
    ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (esc != NULL && *esc != '\0')
		evbuffer_add_printf(out, "%d %s %s\r\n", code, esc, text);
	else
		evbuffer_add_printf(out, "%d %s\r\n", code, text);
	if (code >= 400)
		log_debug("event=reply session=%llu reply=%s",
		    (unsigned long long)s->id, qs(text));
}

/* The reply a parser put into 'err'. */
static void
session_reply_err(struct session *s, const struct pst_err *err)
{
	session_reply(s, err->smtp_code, err->esc, "%s", err->text);
	s->errors++;
}

/* Sends a last reply and closes once it left. */
static void
session_reply_close(struct session *s, int code, const char *esc,
    const char *text)
{
	session_reply(s, code, esc, "%s", text);
	session_close(s);
}

/*
 * Transaction state.
 */

static void
session_txn_reset(struct session *s)
{
	if (s->msg != NULL)
		pst_spool_msg_free(s->msg, s->srv->pool);
	s->msg = NULL;
	s->nrcpt = 0;
	s->overshoot = 0;
	s->smtputf8 = false;
	s->body_8bit = false;
	s->discard = false;
	if (s->data != NULL)
		evbuffer_drain(s->data, evbuffer_get_length(s->data));
}

/* Counts a command that moves no mail: -1, after 421, past the limit. */
static int
session_count_junk(struct session *s)
{
	if (++s->junk <= session_junk_limit(s))
		return 0;
	log_warn("event=junk-limit session=%llu client=%s commands=%u "
	    "stress=%s", (unsigned long long)s->id, qs(s->peer), s->junk - 1,
	    s->srv->stress ? "yes" : "no");
	session_txn_reset(s);
	session_reply_close(s, 421, "4.7.0", "Error: too many commands "
	    "without mail");
	return -1;
}

/*
 * Commands.
 */

static int
check_helo(struct session *s, struct pst_cmd *cmd)
{
	/* The first is needed; more are junk (RFC 5321 allows them). */
	return s->helo[0] != '\0' ? session_count_junk(s) : 0;
}

static void
greet_name(struct session *s, struct pst_cmd *cmd)
{
	session_txn_reset(s);
	snprintf(s->helo, sizeof(s->helo), "%s", cmd->helo);
}

static void
proceed_helo(struct session *s, struct pst_cmd *cmd)
{
	greet_name(s, cmd);
	s->esmtp = false;
	s->ext = 0;
	pst_line_set_max(&s->lr, pst_cmd_line_max(0));
	session_reply(s, 250, NULL, "%s", s->cfg->hostname);
}

static void
proceed_ehlo(struct session *s, struct pst_cmd *cmd)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);

	greet_name(s, cmd);
	s->esmtp = true;
	s->ext = SERVER_EXTENSIONS;
	pst_line_set_max(&s->lr, pst_cmd_line_max(s->ext));
	evbuffer_add_printf(out,
	    "250-%s\r\n"
	    "250-PIPELINING\r\n"
	    "250-SIZE %llu\r\n"
	    "250-8BITMIME\r\n"
	    "250-SMTPUTF8\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n"
	    "250 DSN\r\n", s->cfg->hostname,
	    (unsigned long long)s->cfg->limits.message_size);
}

static int
check_mail(struct session *s, struct pst_cmd *cmd)
{
	struct pst_err err;
	uint64_t need;
	int rc;

	if (s->helo[0] == '\0') {
		session_reply(s, 503, "5.5.1", "Error: send HELO/EHLO first");
		s->errors++;
		return -1;
	}
	if (s->msg != NULL) {
		session_reply(s, 503, "5.5.1", "Error: nested MAIL command");
		s->errors++;
		return -1;
	}
	if (cmd->mail.has_size &&
	    cmd->mail.size > s->cfg->limits.message_size) {
		session_reply(s, 552, "5.3.4", "Message size exceeds fixed "
		    "limit");
		return -1;
	}
	/* RFC 1870: room for what the client announced, or the limit. */
	need = cmd->mail.has_size ? cmd->mail.size : 0;
	rc = pst_spool_space(s->srv->spool, need, PST_SPOOL_RESERVE_AUTO,
	    PST_SPOOL_RESERVE_AUTO, &err);
	if (rc != 1) {
		log_warn("event=spool-full session=%llu reason=%s",
		    (unsigned long long)s->id, qs(err.text));
		if (rc == 0)
			session_reply(s, 452, "4.3.1", "Insufficient system "
			    "storage");
		else
			session_reply(s, 451, "4.3.0", "Local error: cannot "
			    "check the spool");
		return -1;
	}
	return 0;
}

static void
proceed_mail(struct session *s, struct pst_cmd *cmd)
{
	struct pst_spool_env *env;
	struct pst_err err;
	char origin[128];

	if ((s->msg = pst_spool_msg_begin(s->srv->spool, &err)) == NULL)
		goto fail;
	env = pst_spool_msg_env(s->msg);
	snprintf(origin, sizeof(origin), "smtp %s", s->peer);
	if (pst_spool_env_set_sender(env, cmd->addr.null ? "" :
	    cmd->addr.mailbox, &err) == -1 ||
	    pst_spool_env_set_origin(env, origin, &err) == -1)
		goto fail;
	if (cmd->mail.envid[0] != '\0' &&
	    pst_spool_env_set_envid(env, cmd->mail.envid, &err) == -1)
		goto fail;
	env->ret = cmd->mail.ret == PST_RET_FULL ? PST_SPOOL_RET_FULL :
	    cmd->mail.ret == PST_RET_HDRS ? PST_SPOOL_RET_HDRS :
	    PST_SPOOL_RET_UNSET;
	s->body_8bit = cmd->mail.body == PST_BODY_8BITMIME;
	s->smtputf8 = cmd->mail.smtputf8;
	if (s->body_8bit)
		env->flags |= PST_SPOOL_F_8BITMIME;
	if (s->smtputf8)
		env->flags |= PST_SPOOL_F_SMTPUTF8;
	session_reply(s, 250, "2.1.0", "Ok");
	return;
fail:
	log_warn("event=mail-failed session=%llu reason=%s",
	    (unsigned long long)s->id, qs(err.text));
	session_txn_reset(s);
	session_reply(s, 451, "4.3.0", "Local error in processing");
}

static int
check_rcpt(struct session *s, struct pst_cmd *cmd)
{
	if (s->msg == NULL) {
		session_reply(s, 503, "5.5.1", "Error: need MAIL command");
		s->errors++;
		return -1;
	}
	if (s->nrcpt >= s->cfg->limits.recipients) {
		/*
		 * RFC 5321 §4.5.3.1.10: 452, and the client goes on; as many
		 * again are errors.
		 */
		session_reply(s, 452, "4.5.3", "Error: too many recipients");
		if (++s->overshoot > s->cfg->limits.recipients)
			s->errors++;
		return -1;
	}
	return 0;
}

static unsigned
notify_bits(unsigned n)
{
	unsigned out = 0;

	if (n & PST_NOTIFY_NEVER)
		out |= PST_SPOOL_NOTIFY_NEVER;
	if (n & PST_NOTIFY_SUCCESS)
		out |= PST_SPOOL_NOTIFY_SUCCESS;
	if (n & PST_NOTIFY_FAILURE)
		out |= PST_SPOOL_NOTIFY_FAILURE;
	if (n & PST_NOTIFY_DELAY)
		out |= PST_SPOOL_NOTIFY_DELAY;
	return out;
}

static void
proceed_rcpt(struct session *s, struct pst_cmd *cmd)
{
	struct pst_spool_env *env = pst_spool_msg_env(s->msg);
	struct rewrite_list list = { 0 };
	char orcpt[PST_CMD_ADDRTYPE_MAX + PST_CMD_ORCPT_MAX + 2];
	struct pst_err err;
	size_t i;

	orcpt[0] = '\0';
	if (cmd->rcpt.orcpt[0] != '\0')
		snprintf(orcpt, sizeof(orcpt), "%s;%s", cmd->rcpt.orcpt_type,
		    cmd->rcpt.orcpt);
	/* "<postmaster>" alone means this host's postmaster: the alias. */
	if (rewrite_recipient(s->cfg, cmd->addr.postmaster ? "postmaster" :
	    cmd->addr.mailbox, &list) == -1)
		goto fail;
	for (i = 0; i < list.count; i++)
		if (pst_spool_env_add_rcpt(env, list.addrs[i],
		    notify_bits(cmd->rcpt.notify),
		    orcpt[0] != '\0' ? orcpt : NULL, &err) == -1)
			goto fail;
	rewrite_list_free(&list);
	s->nrcpt++;
	session_reply(s, 250, "2.1.5", "Ok");
	return;
fail:
	rewrite_list_free(&list);
	log_warn("event=rcpt-failed session=%llu", (unsigned long long)s->id);
	session_reply(s, 451, "4.3.0", "Local error in processing");
}

static int
check_data(struct session *s, struct pst_cmd *cmd)
{
	if (s->msg == NULL) {
		session_reply(s, 503, "5.5.1", "Error: need MAIL command");
		s->errors++;
		return -1;
	}
	if (s->nrcpt == 0) {
		session_reply(s, 554, "5.5.1", "Error: no valid recipients");
		s->errors++;
		return -1;
	}
	return 0;
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

static void
proceed_data(struct session *s, struct pst_cmd *cmd)
{
	struct pst_err err;

	if (write_received(s, &err) == -1) {
		log_warn("event=data-failed session=%llu reason=%s",
		    (unsigned long long)s->id, qs(err.text));
		session_txn_reset(s);
		session_reply(s, 451, "4.3.0", "Local error in processing");
		return;
	}
	pst_dot_init(&s->dot, s->cfg->limits.message_size, PST_DOT_LINE_MAX);
	session_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
	session_set_state(s, SS_DATA);
}

static void
proceed_rset(struct session *s, struct pst_cmd *cmd)
{
	session_txn_reset(s);
	session_reply(s, 250, "2.0.0", "Ok");
}

static void
proceed_noop(struct session *s, struct pst_cmd *cmd)
{
	session_reply(s, 250, "2.0.0", "Ok");
}

static void
proceed_quit(struct session *s, struct pst_cmd *cmd)
{
	session_reply_close(s, 221, "2.0.0", "Bye");
}

static void
proceed_vrfy(struct session *s, struct pst_cmd *cmd)
{
	/* RFC 5321 §3.5.3: no verification, no refusal either. */
	session_reply(s, 252, "2.5.0", "Cannot VRFY user, but will accept "
	    "message and attempt delivery");
}

static void
proceed_help(struct session *s, struct pst_cmd *cmd)
{
	session_reply(s, 214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA "
	    "RSET NOOP QUIT VRFY HELP");
}

static void
session_dispatch(struct session *s, struct pst_cmd *cmd)
{
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (commands[i].verb != cmd->verb)
			continue;
		if (commands[i].junk && session_count_junk(s) == -1)
			return;
		if (commands[i].check != NULL && commands[i].check(s, cmd) ==
		    -1)
			return;
		commands[i].proceed(s, cmd);
		return;
	}
	session_reply(s, 502, "5.5.1", "Error: command not implemented");
	s->errors++;
}

/*
 * Input.
 */

static void
session_commands(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct pst_cmd cmd;
	struct pst_err err;
	size_t len;

	while (s->state == SS_CMD) {
		if (s->errors >= ERROR_LIMIT) {
			log_info("event=error-limit session=%llu client=%s "
			    "errors=%u", (unsigned long long)s->id,
			    qs(s->peer), s->errors);
			session_reply_close(s, 421, "4.7.0", "Error: too many "
			    "errors");
			return;
		}
		switch (pst_line_read(&s->lr, in, s->line, sizeof(s->line),
		    &len, &err)) {
		case PST_LINE_MORE:
			return;
		case PST_LINE_TOOLONG:
		case PST_LINE_BAD:
			session_arm(s, now_us() + session_idle_us(s));
			session_reply_err(s, &err);
			continue;
		case PST_LINE_FATAL:
			log_info("event=protocol-error session=%llu client=%s "
			    "reason=%s", (unsigned long long)s->id,
			    qs(s->peer), qs(err.text));
			session_reply_close(s, err.smtp_code, err.esc,
			    err.text);
			return;
		case PST_LINE_OK:
			break;
		}
		/* A whole line: the next request's time starts. */
		session_arm(s, now_us() + session_idle_us(s));
		/* An HTTP request line parses: close on its verb alone. */
		if (pst_cmd_parse(s->line, len, s->ext |
		    (s->smtputf8 ? PST_CMD_TXN_UTF8 : 0), &cmd, &err) == -1 ||
		    cmd.verb == PST_CMD_HTTP) {
			if (cmd.verb == PST_CMD_HTTP) {
				log_info("event=http-request session=%llu "
				    "client=%s", (unsigned long long)s->id,
				    qs(s->peer));
				session_close(s);
				return;
			}
			session_reply_err(s, &err);
			continue;
		}
		session_dispatch(s, &cmd);
	}
}

/* Moves what the DATA reader produced into the spool message. */
static int
session_take_data(struct session *s)
{
	struct pst_err err;

	if (evbuffer_get_length(s->data) == 0)
		return 0;
	if (s->discard) {
		evbuffer_drain(s->data, evbuffer_get_length(s->data));
		return 0;
	}
	if (pst_spool_msg_add_buffer(s->msg, s->data, &err) == -1) {
		log_warn("event=data-failed session=%llu reason=%s",
		    (unsigned long long)s->id, qs(err.text));
		return -1;
	}
	return 0;
}

/*
 * RFC 6531 §3.4: of the mail whose client asked for SMTPUTF8, only what
 * has UTF-8 in its envelope or header section needs it; delivery sends
 * the rest to upstreams without SMTPUTF8 too.
 */
static void
note_smtputf8(struct session *s)
{
	struct pst_spool_env *env = pst_spool_msg_env(s->msg);

	if (!(env->flags & PST_SPOOL_F_SMTPUTF8))
		return;
	env->flags |= PST_SPOOL_F_UTF8_CHECKED;
	if (s->dot.hdr_8bit || pst_spool_env_utf8_addrs(env))
		env->flags |= PST_SPOOL_F_UTF8_NEEDED;
}

static void
session_start_commit(struct session *s)
{
	struct pst_err err;

	note_smtputf8(s);
	session_set_state(s, SS_COMMIT);
	if (pst_spool_msg_commit(s->msg, s->srv->pool, session_commit_done,
	    s, &err) == -1) {
		log_warn("event=commit-failed session=%llu reason=%s",
		    (unsigned long long)s->id, qs(err.text));
		session_set_state(s, SS_CMD);
		session_txn_reset(s);
		session_reply(s, 451, "4.3.0", "Local error in processing");
	}
}

static void
session_data(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	enum pst_dot_status st;
	struct pst_err err;
	size_t avail;

	while (s->state == SS_DATA) {
		avail = evbuffer_get_length(in);
		st = pst_dot_read(&s->dot, in, s->data, &err);
		session_data_progress(s, avail - evbuffer_get_length(in));
		if (st == PST_DOT_FATAL) {
			log_info("event=protocol-error session=%llu client=%s "
			    "reason=%s", (unsigned long long)s->id,
			    qs(s->peer), qs(err.text));
			session_txn_reset(s);
			session_reply_close(s, err.smtp_code, err.esc,
			    err.text);
			return;
		}
		if (session_take_data(s) == -1) {
			session_txn_reset(s);
			session_reply_close(s, 451, "4.3.0", "Local error in "
			    "processing");
			return;
		}
		if ((st == PST_DOT_REFUSED || st == PST_DOT_DONE) &&
		    s->discard) {
			session_set_state(s, SS_CMD);
			session_txn_reset(s);
			session_reply(s, 451, "4.3.0", "Local error in "
			    "processing: cannot write the message");
			return;
		}
		if (st == PST_DOT_REFUSED) {
			session_set_state(s, SS_CMD);
			session_txn_reset(s);
			session_reply_err(s, &err);
			return;
		}
		if (st == PST_DOT_DONE) {
			if (pst_hops_exceeded(&s->dot.hops)) {
				session_set_state(s, SS_CMD);
				session_txn_reset(s);
				session_reply(s, 554, "5.4.0", "Error: too "
				    "many hops (%u Received: headers): mail "
				    "loop?", s->dot.hops.count);
				return;
			}
			session_start_commit(s);
			return;
		}
		/* PST_DOT_MORE: all input consumed. */
		if (!s->discard && pst_spool_msg_need_flush(s->msg)) {
			session_set_state(s, SS_FLUSH);
			if (pst_spool_msg_flush(s->msg, s->srv->pool,
			    session_flush_done, s, &err) == -1) {
				session_txn_reset(s);
				session_reply_close(s, 451, "4.3.0", "Local "
				    "error in processing");
			}
		}
		return;
	}
}

/*
 * Runs the phase the session is in until it stops making progress; a DATA
 * phase may end and commands follow in the same buffer, and the other way
 * round.
 */
static void
session_input(struct session *s)
{
	enum session_state before;

	for (;;) {
		before = s->state;
		if (s->state == SS_CMD)
			session_commands(s);
		else if (s->state == SS_DATA)
			session_data(s);
		else
			return;
		if (s->dead || s->state == before)
			break;
	}
	/* Nothing more will come: send what is due, then close. */
	if (!s->dead && s->eof && (s->state == SS_CMD ||
	    s->state == SS_DATA)) {
		log_debug("event=client-eof session=%llu client=%s state=%s",
		    (unsigned long long)s->id, qs(s->peer),
		    session_state_names[s->state]);
		session_txn_reset(s);
		session_close(s);
	}
}

static void
session_flush_done(struct pst_spool_msg *msg, const struct pst_err *err,
    void *arg)
{
	struct session *s = arg;

	if (s->dead) {
		session_free(s);
		return;
	}
	session_set_state(s, SS_DATA);
	if (err != NULL) {
		/*
		 * The message is lost to us, but the client is still sending
		 * it: read on to the end of data and answer 451 there, so it
		 * hears why and the session stays in step (RFC 5321 §4.2.5).
		 */
		log_warn("event=spool-write-failed session=%llu reason=%s",
		    (unsigned long long)s->id, qs(err->text));
		s->discard = true;
	}
	session_input(s);
}

static void
session_commit_done(struct pst_spool_msg *msg, const struct pst_err *err,
    void *arg)
{
	struct session *s = arg;
	const struct pst_spool_env *env = pst_spool_msg_env(msg);

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
	if (err == NULL) {
		/*
		 * A session that moves mail is doing its job: the junk count
		 * starts again, so that a long-lived connection with an RSET
		 * or NOOP per message is never cut (as in Postfix).
		 */
		s->messages++;
		s->junk = 0;
		session_reply(s, 250, "2.0.0", "Ok: queued as %s",
		    pst_spool_msg_id(msg));
	} else
		session_reply(s, 451, "4.3.0", "Local error in processing: "
		    "message not queued");
	session_txn_reset(s);
	if (s->shutdown) {
		session_reply_close(s, 421, "4.3.2", "Service shutting down");
		return;
	}
	session_set_state(s, SS_CMD);
	session_input(s);
}

static void
session_readcb(struct bufferevent *bev, void *arg)
{
	session_input(arg);
}

/* Closing: free once the last reply has left. */
static void
session_writecb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	if (s->state == SS_CLOSING &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		session_free(s);
}

static void
session_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;

	/*
	 * EOF: the client half-closed but can still read: what it sent is
	 * answered and the replies due are sent before the close.
	 */
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		s->eof = true;
		session_input(s);
		return;
	}
	/* An error: nobody is left to write to. */
	if (s->state == SS_FLUSH || s->state == SS_COMMIT) {
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

	if (s->state == SS_CLOSING) {
		session_free(s);
		return;
	}
	log_info("event=timeout session=%llu client=%s state=%s stress=%s",
	    (unsigned long long)s->id, qs(s->peer),
	    session_state_names[s->state], s->srv->stress ? "yes" : "no");
	session_txn_reset(s);
	session_reply_close(s, 421, "4.4.2", "Error: timeout exceeded");
}

/* Stops reading; frees the session once the output has drained. */
static void
session_close(struct session *s)
{
	session_set_state(s, SS_CLOSING);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0) {
		/* Let the loop call us back rather than free under our feet. */
		bufferevent_trigger(s->bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS |
		    BEV_TRIG_IGNORE_WATERMARKS);
	}
}

static void
session_free(struct session *s)
{
	struct server *srv = s->srv;

	log_debug("event=disconnect session=%llu client=%s messages=%u",
	    (unsigned long long)s->id, qs(s->peer), s->messages);
	if (s->msg != NULL)
		pst_spool_msg_free(s->msg, srv->pool);
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	if (s->data != NULL)
		evbuffer_free(s->data);
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

/* Shortens the deadlines running now to the stress ones. */
static void
server_tighten(struct server *srv)
{
	struct session *s;
	uint64_t cap;

	for (s = TAILQ_FIRST(&srv->sessions); s != NULL;
	    s = TAILQ_NEXT(s, entry)) {
		/* A job in flight has no deadline; a dead one no connection. */
		if (s->state == SS_FLUSH || s->state == SS_COMMIT)
			continue;
		cap = now_us() + session_idle_us(s);
		if (s->deadline > cap)
			session_arm(s, cap);
	}
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

void
server_accept(struct server *srv, int fd, const struct sockaddr *sa,
    socklen_t salen, const struct pst_endpoint *ep)
{
	struct session *s;
	int one = 1;

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->data = evbuffer_new()) == NULL ||
	    (s->timer = evtimer_new(srv->base, session_timeoutcb, s)) ==
	    NULL ||
	    (s->bev = bufferevent_socket_new(srv->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		log_error("event=accept-failed reason=%s", qs("out of memory"));
		if (s != NULL && s->data != NULL)
			evbuffer_free(s->data);
		if (s != NULL && s->timer != NULL)
			event_free(s->timer);
		free(s);
		close(fd);
		return;
	}
	s->srv = srv;
	s->id = ++srv->next_id;
	s->cfg = config_ref(srv->cfg);
	TAILQ_INSERT_TAIL(&srv->sessions, s, entry);
	srv->nsessions++;
	server_pressure(srv);
	pst_sockaddr_format(sa, salen, s->peer, sizeof(s->peer));
	peer_ip(sa, s->peer_ip, sizeof(s->peer_ip));
	if (sa->sa_family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	pst_line_init(&s->lr, pst_cmd_line_max(0));
	bufferevent_setcb(s->bev, session_readcb, session_writecb,
	    session_eventcb, s);
	bufferevent_enable(s->bev, EV_WRITE);
	session_set_state(s, SS_CMD);

	srv->total++;
	if (!peer_allowed(s->cfg, sa)) {
		srv->refused++;
		log_info("event=refused session=%llu client=%s reason=%s",
		    (unsigned long long)s->id, qs(s->peer),
		    qs("not in allow"));
		session_reply_close(s, 554, "5.7.1", "Access denied");
		return;
	}
	if (srv->draining) {
		session_reply_close(s, 421, "4.3.2", "Service shutting down");
		return;
	}
	if (srv->nsessions > s->cfg->limits.sessions) {
		srv->refused++;
		log_warn("event=refused session=%llu client=%s reason=%s",
		    (unsigned long long)s->id, qs(s->peer),
		    qs("session limit reached"));
		session_reply_close(s, 421, "4.7.0", "Too many sessions, try "
		    "again later");
		return;
	}
	log_debug("event=connect session=%llu client=%s listen=%s",
	    (unsigned long long)s->id, qs(s->peer),
	    ep->kind == PST_EP_UNIX ? qs(ep->path) : qs(ep->host));
	session_reply(s, 220, NULL, "%s ESMTP postern", s->cfg->hostname);
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
		switch (s->state) {
		case SS_CMD:
		case SS_DATA:
			/* An unfinished message was never acknowledged. */
			session_txn_reset(s);
			session_reply_close(s, 421, "4.3.2", "Service "
			    "shutting down");
			break;
		case SS_FLUSH:
		case SS_COMMIT:
			s->shutdown = true;
			break;
		case SS_CLOSING:
			break;
		}
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
