/*
 * server.c: the SMTP server session machine (see server.h).
 *
 * Command lines come through the strict line reader (only CRLF ends a
 * line: a bare CR or LF ends the session) and cmd.h's parser, then the
 * command table: for each verb, whether it counts as a command that moves
 * no mail, the reply it gets in each command state where it is out of
 * place (503 5.5.1 mostly), and what it does.  Replies are written as they
 * are made, so that pipelined commands get theirs in one write.
 *
 * After DATA's 354 the DATA reader takes over: it removes dot-stuffing,
 * bounds lines and size, and counts Received: fields; the bytes go to the
 * sink as they come, and the sink may ask for a pause while it writes
 * them out (FLUSH).  At the end of data the sink commits; the session
 * stops reading and answers only once the commit has ended.
 *
 * Deadlines.  Each request has idle_us to arrive whole, counted from the
 * end of the one before (or the greeting): a command line, or the last
 * reply to leave while closing.  Bytes trickled one at a time do not
 * extend it.  During DATA the deadline starts at idle from the 354 and
 * grows by 1/min_data_rate s for each byte received, never past idle from
 * now: a client slower than min_data_rate runs out of time.  No deadline
 * runs while the sink works (FLUSH, COMMIT); a flush keeps the DATA time
 * left.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "common/err.h"
#include "smtp/line.h"
#include "smtp/server.h"

#define LINE_BUF	1100	/* > pst_cmd_line_max(all) */
#define EHLO_LINES_MAX	8

enum timer {
	T_NONE = 0,	/* no deadline */
	T_IDLE,		/* idle from entering */
	T_DATA,		/* idle, then by min_data_rate */
};

static const struct {
	const char	*name;
	const char	*phase;		/* as logs name it */
	bool		 command;	/* reads command lines */
	bool		 reads;
	enum timer	 timer;
} states[PST_SMTPS__COUNT] = {
	[PST_SMTPS_NEW] =	{ "new", "new", false, false, T_NONE },
	[PST_SMTPS_HELO] =	{ "helo", "command", true, true, T_IDLE },
	[PST_SMTPS_READY] =	{ "ready", "command", true, true, T_IDLE },
	[PST_SMTPS_MAIL] =	{ "mail", "command", true, true, T_IDLE },
	[PST_SMTPS_RCPT] =	{ "rcpt", "command", true, true, T_IDLE },
	[PST_SMTPS_DATA] =	{ "data", "data", false, true, T_DATA },
	[PST_SMTPS_FLUSH] =	{ "flush", "flush", false, false, T_NONE },
	[PST_SMTPS_COMMIT] =	{ "commit", "commit", false, false, T_NONE },
	[PST_SMTPS_CLOSING] =	{ "closing", "closing", false, false, T_IDLE },
};

struct pst_smtps {
	struct pst_smtps_params		 p;
	const struct pst_smtps_sink	*sink;
	const struct pst_smtps_io	*io;
	void				*arg;
	struct evbuffer			*in;
	struct evbuffer			*data;	/* message bytes for the sink */

	enum pst_smtps_state		 state;
	bool				 eof;	/* client half-closed */
	bool				 stress;
	bool				 shutdown;	/* 421 after the job */
	uint64_t			 deadline;	/* io->now() time */
	uint64_t			 paused;	/* DATA time left */
	unsigned			 junk;	/* commands since the last message */
	unsigned			 errors;
	unsigned			 messages;

	struct pst_line			 lr;
	char				 line[LINE_BUF];
	char				 helo[PST_ADDR_DOMAIN_MAX + 1];
	bool				 esmtp;
	unsigned			 ext;	/* announced */

	/* The transaction. */
	unsigned			 nrcpt;
	unsigned			 overshoot;	/* RCPTs answered 452 */
	bool				 smtputf8;
	bool				 discard;	/* the sink failed */
	struct pst_dot			 dot;
};

/* A command out of place: the reply, counted as an error. */
struct refusal {
	int		 code;
	const char	*esc;
	const char	*text;
};

static const struct refusal need_helo =
    { 503, "5.5.1", "Error: send HELO/EHLO first" };
static const struct refusal nested_mail =
    { 503, "5.5.1", "Error: nested MAIL command" };
static const struct refusal need_mail =
    { 503, "5.5.1", "Error: need MAIL command" };
static const struct refusal need_rcpt =
    { 554, "5.5.1", "Error: no valid recipients" };

enum junk {
	J_NO = 0,	/* moves mail, or ends the session */
	J_YES,		/* moves no mail: counted */
	J_AGAIN,	/* counted when the client greeted already */
};

static void	proceed_helo(struct pst_smtps *, const struct pst_cmd *);
static void	proceed_ehlo(struct pst_smtps *, const struct pst_cmd *);
static void	proceed_mail(struct pst_smtps *, const struct pst_cmd *);
static void	proceed_rcpt(struct pst_smtps *, const struct pst_cmd *);
static void	proceed_data(struct pst_smtps *, const struct pst_cmd *);
static void	proceed_rset(struct pst_smtps *, const struct pst_cmd *);
static void	proceed_noop(struct pst_smtps *, const struct pst_cmd *);
static void	proceed_quit(struct pst_smtps *, const struct pst_cmd *);
static void	proceed_vrfy(struct pst_smtps *, const struct pst_cmd *);
static void	proceed_help(struct pst_smtps *, const struct pst_cmd *);

#define CMD_STATES	(PST_SMTPS_RCPT - PST_SMTPS_HELO + 1)

/*
 * The command table.  'refuse' is indexed by the command state (HELO,
 * READY, MAIL, RCPT): NULL where the command may proceed.  Verbs not here
 * (STARTTLS, AUTH, BDAT, ...: not offered) get 502.
 */
static const struct command {
	enum pst_cmd_verb	 verb;
	enum junk		 junk;
	const struct refusal	*refuse[CMD_STATES];
	void			(*proceed)(struct pst_smtps *,
				    const struct pst_cmd *);
} commands[] = {
	{ PST_CMD_HELO, J_AGAIN, { NULL, NULL, NULL, NULL }, proceed_helo },
	{ PST_CMD_EHLO, J_AGAIN, { NULL, NULL, NULL, NULL }, proceed_ehlo },
	{ PST_CMD_MAIL, J_NO,
	    { &need_helo, NULL, &nested_mail, &nested_mail }, proceed_mail },
	{ PST_CMD_RCPT, J_NO,
	    { &need_mail, &need_mail, NULL, NULL }, proceed_rcpt },
	{ PST_CMD_DATA, J_NO,
	    { &need_mail, &need_mail, &need_rcpt, NULL }, proceed_data },
	{ PST_CMD_RSET, J_YES, { NULL, NULL, NULL, NULL }, proceed_rset },
	{ PST_CMD_NOOP, J_YES, { NULL, NULL, NULL, NULL }, proceed_noop },
	{ PST_CMD_QUIT, J_NO, { NULL, NULL, NULL, NULL }, proceed_quit },
	{ PST_CMD_VRFY, J_YES, { NULL, NULL, NULL, NULL }, proceed_vrfy },
	{ PST_CMD_HELP, J_YES, { NULL, NULL, NULL, NULL }, proceed_help },
};

static void	session_enter(struct pst_smtps *, enum pst_smtps_state);
static void	session_close(struct pst_smtps *);

/*
 * Events and the clock.
 */

static void
session_event(struct pst_smtps *s, enum pst_smtps_event_type type,
    const char *text, unsigned count)
{
	struct pst_smtps_event ev = {
		.type = type,
		.state = s->state,
		.from = s->state,
		.text = text,
		.count = count,
		.stress = s->stress,
	};

	if (s->io->event != NULL)
		s->io->event(s->arg, &ev);
}

static bool
session_timed(const struct pst_smtps *s)
{
	return s->io->arm != NULL;
}

/* The time a request may take: idle, shorter under stress. */
static uint64_t
session_idle_us(const struct pst_smtps *s)
{
	if (s->stress && s->p.stress_idle_us < s->p.idle_us)
		return s->p.stress_idle_us;
	return s->p.idle_us;
}

static unsigned
session_junk_limit(const struct pst_smtps *s)
{
	if (s->stress && s->p.stress_junk < s->p.junk)
		return s->p.stress_junk;
	return s->p.junk;
}

/* Arms the deadline at 'deadline' (io->now() time). */
static void
session_arm(struct pst_smtps *s, uint64_t deadline)
{
	uint64_t now = s->io->now(s->arg);

	s->deadline = deadline;
	s->io->arm(s->arg, deadline > now ? deadline - now : 0);
}

/* A request is whole: the next one has idle from now. */
static void
session_arm_idle(struct pst_smtps *s)
{
	if (session_timed(s))
		session_arm(s, s->io->now(s->arg) + session_idle_us(s));
}

/* 'n' message bytes arrived: the DATA deadline grows, up to idle. */
static void
session_data_progress(struct pst_smtps *s, size_t n)
{
	uint64_t cap, d;

	if (n == 0 || !session_timed(s) || s->p.min_data_rate == 0)
		return;
	cap = s->io->now(s->arg) + session_idle_us(s);
	d = s->deadline + (uint64_t)n * 1000000 / s->p.min_data_rate;
	session_arm(s, d < cap ? d : cap);
}

/*
 * The one place the state changes.  Reading follows it (none while the
 * sink works, while closing, or once the client has half-closed), and so
 * does the deadline; moving between command states changes neither.
 */
static void
session_enter(struct pst_smtps *s, enum pst_smtps_state st)
{
	struct pst_smtps_event ev = { .type = PST_SMTPS_EV_STATE };
	enum pst_smtps_state from = s->state;
	uint64_t now, idle;

	s->state = st;
	ev.state = st;
	ev.from = from;
	ev.stress = s->stress;
	if (s->io->event != NULL)
		s->io->event(s->arg, &ev);
	if (states[from].command && states[st].command)
		return;
	if (s->io->reading != NULL)
		s->io->reading(s->arg, states[st].reads && !s->eof);
	if (!session_timed(s))
		return;
	now = s->io->now(s->arg);
	idle = session_idle_us(s);
	switch (states[st].timer) {
	case T_DATA:
		if (from == PST_SMTPS_FLUSH) {
			session_arm(s, now + (s->paused < idle ? s->paused :
			    idle));
			break;
		}
		/* FALLTHROUGH */
	case T_IDLE:
		session_arm(s, now + idle);
		break;
	case T_NONE:
		if (st == PST_SMTPS_FLUSH)
			s->paused = s->deadline > now ? s->deadline - now : 0;
		if (s->io->disarm != NULL)
			s->io->disarm(s->arg);
		break;
	}
}

/*
 * Replies.
 */

static void
session_replyv(struct pst_smtps *s, int code, const char *esc,
    const char *fmt, va_list ap)
{
	char text[512], buf[600];
	int n;

	vsnprintf(text, sizeof(text), fmt, ap);
	if (esc != NULL && *esc != '\0')
		n = snprintf(buf, sizeof(buf), "%d %s %s\r\n", code, esc, text);
	else
		n = snprintf(buf, sizeof(buf), "%d %s\r\n", code, text);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	s->io->write(s->arg, buf, (size_t)n);
	if (code >= 400)
		session_event(s, PST_SMTPS_EV_REPLY, text, 0);
}

static void
session_reply(struct pst_smtps *s, int code, const char *esc,
    const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
session_reply(struct pst_smtps *s, int code, const char *esc,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	session_replyv(s, code, esc, fmt, ap);
	va_end(ap);
}

/* A refusal of the client's doing: counted. */
static void
session_reply_err(struct pst_smtps *s, const struct pst_err *err)
{
	session_reply(s, err->smtp_code, err->esc, "%s", err->text);
	s->errors++;
}

static void
session_reply_sink(struct pst_smtps *s, const struct pst_smtps_reply *r)
{
	session_reply(s, r->code, r->esc, "%s", r->text);
}

/* Sends a last reply and closes once it left. */
static void
session_reply_close(struct pst_smtps *s, int code, const char *esc,
    const char *text)
{
	session_reply(s, code, esc, "%s", text);
	session_close(s);
}

static void
session_close(struct pst_smtps *s)
{
	session_enter(s, PST_SMTPS_CLOSING);
	if (s->io->closing != NULL)
		s->io->closing(s->arg);
}

/*
 * The transaction.
 */

static void
session_txn_reset(struct pst_smtps *s)
{
	s->sink->reset(s->arg);
	s->nrcpt = 0;
	s->overshoot = 0;
	s->smtputf8 = false;
	s->discard = false;
	evbuffer_drain(s->data, evbuffer_get_length(s->data));
	if (s->state == PST_SMTPS_MAIL || s->state == PST_SMTPS_RCPT)
		session_enter(s, PST_SMTPS_READY);
}

/* Counts a command that moves no mail: -1, after 421, past the limit. */
static int
session_count_junk(struct pst_smtps *s)
{
	if (++s->junk <= session_junk_limit(s))
		return 0;
	session_event(s, PST_SMTPS_EV_JUNK_LIMIT, NULL, s->junk - 1);
	session_txn_reset(s);
	session_reply_close(s, 421, "4.7.0", "Error: too many commands "
	    "without mail");
	return -1;
}

/*
 * Commands.
 */

static void
greet_name(struct pst_smtps *s, const struct pst_cmd *cmd, bool esmtp)
{
	session_txn_reset(s);
	snprintf(s->helo, sizeof(s->helo), "%s", cmd->helo);
	s->esmtp = esmtp;
	s->ext = esmtp ? s->p.ext : 0;
	pst_line_set_max(&s->lr, pst_cmd_line_max(s->ext));
	if (s->state == PST_SMTPS_HELO)
		session_enter(s, PST_SMTPS_READY);
}

static void
proceed_helo(struct pst_smtps *s, const struct pst_cmd *cmd)
{
	greet_name(s, cmd, false);
	session_reply(s, 250, NULL, "%s", s->p.hostname);
}

/* The EHLO reply: one line per extension announced. */
static void
proceed_ehlo(struct pst_smtps *s, const struct pst_cmd *cmd)
{
	char lines[EHLO_LINES_MAX][64], buf[EHLO_LINES_MAX * 70 + 300];
	size_t n = 0, i, len = 0;
	int w;

	greet_name(s, cmd, true);
	snprintf(lines[n++], sizeof(lines[0]), "PIPELINING");
	if (s->ext & PST_CMD_EXT_SIZE)
		snprintf(lines[n++], sizeof(lines[0]), "SIZE %llu",
		    (unsigned long long)s->p.message_size);
	if (s->ext & PST_CMD_EXT_8BITMIME)
		snprintf(lines[n++], sizeof(lines[0]), "8BITMIME");
	if (s->ext & PST_CMD_EXT_SMTPUTF8)
		snprintf(lines[n++], sizeof(lines[0]), "SMTPUTF8");
	snprintf(lines[n++], sizeof(lines[0]), "ENHANCEDSTATUSCODES");
	if (s->ext & PST_CMD_EXT_DSN)
		snprintf(lines[n++], sizeof(lines[0]), "DSN");
	w = snprintf(buf, sizeof(buf), "250-%s\r\n", s->p.hostname);
	if (w < 0 || (size_t)w >= sizeof(buf))
		return;
	len = (size_t)w;
	for (i = 0; i < n; i++) {
		w = snprintf(buf + len, sizeof(buf) - len, "250%c%s\r\n",
		    i + 1 < n ? '-' : ' ', lines[i]);
		if (w < 0 || (size_t)w >= sizeof(buf) - len)
			return;
		len += (size_t)w;
	}
	s->io->write(s->arg, buf, len);
}

static void
proceed_mail(struct pst_smtps *s, const struct pst_cmd *cmd)
{
	struct pst_smtps_reply r = { 0 };

	if (cmd->mail.has_size && cmd->mail.size > s->p.message_size) {
		session_reply(s, 552, "5.3.4", "Message size exceeds fixed "
		    "limit");
		return;
	}
	if (s->sink->mail(s->arg, cmd, &r) == -1) {
		session_txn_reset(s);
		session_reply_sink(s, &r);
		return;
	}
	s->smtputf8 = cmd->mail.smtputf8;
	session_enter(s, PST_SMTPS_MAIL);
	session_reply(s, 250, "2.1.0", "Ok");
}

static void
proceed_rcpt(struct pst_smtps *s, const struct pst_cmd *cmd)
{
	struct pst_smtps_reply r = { 0 };

	if (s->nrcpt >= s->p.recipients) {
		/*
		 * RFC 5321 §4.5.3.1.10: 452, and the client goes on; as many
		 * again are errors.
		 */
		session_reply(s, 452, "4.5.3", "Error: too many recipients");
		if (++s->overshoot > s->p.recipients)
			s->errors++;
		return;
	}
	if (s->sink->rcpt(s->arg, cmd, &r) == -1) {
		if (r.reset)
			session_txn_reset(s);
		session_reply_sink(s, &r);
		return;
	}
	s->nrcpt++;
	session_enter(s, PST_SMTPS_RCPT);
	session_reply(s, 250, "2.1.5", "Ok");
}

static void
proceed_data(struct pst_smtps *s, const struct pst_cmd *cmd)
{
	struct pst_smtps_reply r = { 0 };

	if (s->sink->data != NULL && s->sink->data(s->arg, &r) == -1) {
		session_txn_reset(s);
		session_reply_sink(s, &r);
		return;
	}
	pst_dot_init(&s->dot, s->p.message_size, PST_DOT_LINE_MAX);
	session_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
	session_enter(s, PST_SMTPS_DATA);
}

static void
proceed_rset(struct pst_smtps *s, const struct pst_cmd *cmd)
{
	session_txn_reset(s);
	session_reply(s, 250, "2.0.0", "Ok");
}

static void
proceed_noop(struct pst_smtps *s, const struct pst_cmd *cmd)
{
	session_reply(s, 250, "2.0.0", "Ok");
}

static void
proceed_quit(struct pst_smtps *s, const struct pst_cmd *cmd)
{
	session_reply_close(s, 221, "2.0.0", "Bye");
}

static void
proceed_vrfy(struct pst_smtps *s, const struct pst_cmd *cmd)
{
	/* RFC 5321 §3.5.3: no verification, no refusal either. */
	session_reply(s, 252, "2.5.0", "Cannot VRFY user, but will accept "
	    "message and attempt delivery");
}

static void
proceed_help(struct pst_smtps *s, const struct pst_cmd *cmd)
{
	session_reply(s, 214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA "
	    "RSET NOOP QUIT VRFY HELP");
}

static void
session_dispatch(struct pst_smtps *s, const struct pst_cmd *cmd)
{
	const struct command *c;
	const struct refusal *no;
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		c = &commands[i];
		if (c->verb != cmd->verb)
			continue;
		/* The first greeting is needed; more are junk (allowed). */
		if ((c->junk == J_YES || (c->junk == J_AGAIN &&
		    s->state != PST_SMTPS_HELO)) &&
		    session_count_junk(s) == -1)
			return;
		if ((no = c->refuse[s->state - PST_SMTPS_HELO]) != NULL) {
			session_reply(s, no->code, no->esc, "%s", no->text);
			s->errors++;
			return;
		}
		c->proceed(s, cmd);
		return;
	}
	session_reply(s, 502, "5.5.1", "Error: command not implemented");
	s->errors++;
}

/*
 * Input.
 */

static void
session_commands(struct pst_smtps *s)
{
	struct pst_cmd cmd;
	struct pst_err err;
	size_t len;

	while (states[s->state].command) {
		if (s->errors >= s->p.errors) {
			session_event(s, PST_SMTPS_EV_ERROR_LIMIT, NULL,
			    s->errors);
			session_reply_close(s, 421, "4.7.0", "Error: too many "
			    "errors");
			return;
		}
		switch (pst_line_read(&s->lr, s->in, s->line, sizeof(s->line),
		    &len, &err)) {
		case PST_LINE_MORE:
			return;
		case PST_LINE_TOOLONG:
		case PST_LINE_BAD:
			session_arm_idle(s);
			session_reply_err(s, &err);
			continue;
		case PST_LINE_FATAL:
			session_event(s, PST_SMTPS_EV_PROTOCOL, err.text, 0);
			session_reply_close(s, err.smtp_code, err.esc,
			    err.text);
			return;
		case PST_LINE_OK:
			break;
		}
		/* A whole line: the next request's time starts. */
		session_arm_idle(s);
		/* An HTTP request line parses: close on its verb alone. */
		if (pst_cmd_parse(s->line, len, s->ext |
		    (s->smtputf8 ? PST_CMD_TXN_UTF8 : 0) |
		    (s->p.local_names ? PST_CMD_LOCAL_NAMES : 0), &cmd,
		    &err) == -1 ||
		    cmd.verb == PST_CMD_HTTP) {
			if (cmd.verb == PST_CMD_HTTP) {
				session_event(s, PST_SMTPS_EV_HTTP, NULL, 0);
				session_close(s);
				return;
			}
			session_reply_err(s, &err);
			continue;
		}
		session_dispatch(s, &cmd);
	}
}

/* The commit ended: the answer, and the next transaction or 421. */
static void
session_commit_end(struct pst_smtps *s, const struct pst_smtps_reply *r)
{
	if (r->code == 0) {
		/*
		 * A session that moves mail is doing its job: the junk count
		 * starts again, so that a long-lived connection with an RSET
		 * or NOOP per message is never cut (as in Postfix).
		 */
		s->messages++;
		s->junk = 0;
		session_reply(s, 250, "2.0.0", "Ok: queued as %s", r->queued);
	} else
		session_reply_sink(s, r);
	session_txn_reset(s);
	if (s->shutdown) {
		session_reply_close(s, 421, "4.3.2", "Service shutting down");
		return;
	}
	session_enter(s, PST_SMTPS_READY);
}

static void
session_commit(struct pst_smtps *s)
{
	struct pst_smtps_reply r = { 0 };

	switch (s->sink->commit(s->arg, &s->dot, &r)) {
	case PST_SMTPS_PENDING:
		session_enter(s, PST_SMTPS_COMMIT);
		break;
	case PST_SMTPS_DONE:
		session_enter(s, PST_SMTPS_COMMIT);
		session_commit_end(s, &r);
		break;
	default:
		session_enter(s, PST_SMTPS_READY);
		session_txn_reset(s);
		session_reply_sink(s, &r);
		break;
	}
}

static void
session_data(struct pst_smtps *s)
{
	struct pst_smtps_reply r = { 0 };
	enum pst_dot_status st;
	struct pst_err err;
	size_t avail;
	int rc;

	if (s->state != PST_SMTPS_DATA)
		return;
	avail = evbuffer_get_length(s->in);
	st = pst_dot_read(&s->dot, s->in, s->data, &err);
	session_data_progress(s, avail - evbuffer_get_length(s->in));
	if (st == PST_DOT_FATAL) {
		session_event(s, PST_SMTPS_EV_PROTOCOL, err.text, 0);
		session_txn_reset(s);
		session_reply_close(s, err.smtp_code, err.esc, err.text);
		return;
	}
	if (evbuffer_get_length(s->data) > 0) {
		if (s->discard)
			evbuffer_drain(s->data, evbuffer_get_length(s->data));
		else if (s->sink->write(s->arg, s->data) == -1) {
			session_txn_reset(s);
			session_reply_close(s, 451, "4.3.0", "Local error in "
			    "processing");
			return;
		}
	}
	if ((st == PST_DOT_REFUSED || st == PST_DOT_DONE) && s->discard) {
		session_enter(s, PST_SMTPS_READY);
		session_txn_reset(s);
		pst_smtps_local_error(&r, "cannot write the message");
		session_reply_sink(s, &r);
		return;
	}
	if (st == PST_DOT_REFUSED) {
		session_enter(s, PST_SMTPS_READY);
		session_txn_reset(s);
		session_reply_err(s, &err);
		return;
	}
	if (st == PST_DOT_DONE) {
		session_commit(s);
		return;
	}
	/* PST_DOT_MORE: all input consumed. */
	if (s->discard || s->sink->flush == NULL)
		return;
	if ((rc = s->sink->flush(s->arg)) == 1)
		session_enter(s, PST_SMTPS_FLUSH);
	else if (rc == -1) {
		session_txn_reset(s);
		session_reply_close(s, 451, "4.3.0", "Local error in "
		    "processing");
	}
}

/*
 * Runs the phase the session is in until it stops making progress; a DATA
 * phase may end and commands follow in the same buffer, and the other way
 * round.
 */
void
pst_smtps_input(struct pst_smtps *s)
{
	enum pst_smtps_state before;

	for (;;) {
		before = s->state;
		if (states[s->state].command)
			session_commands(s);
		else if (s->state == PST_SMTPS_DATA)
			session_data(s);
		else
			return;
		if (s->state == before)
			break;
	}
	/* Nothing more will come: send what is due, then close. */
	if (s->eof && (states[s->state].command ||
	    s->state == PST_SMTPS_DATA)) {
		session_event(s, PST_SMTPS_EV_EOF, NULL, 0);
		session_txn_reset(s);
		session_close(s);
	}
}

void
pst_smtps_eof(struct pst_smtps *s)
{
	s->eof = true;
	pst_smtps_input(s);
}

int
pst_smtps_timeout(struct pst_smtps *s)
{
	if (s->state == PST_SMTPS_CLOSING)
		return -1;
	session_event(s, PST_SMTPS_EV_TIMEOUT, NULL, 0);
	session_txn_reset(s);
	session_reply_close(s, 421, "4.4.2", "Error: timeout exceeded");
	return 0;
}

void
pst_smtps_flush_done(struct pst_smtps *s, bool ok)
{
	session_enter(s, PST_SMTPS_DATA);
	/*
	 * The message is lost to us, but the client is still sending it:
	 * read on to the end of data and answer 451 there, so it hears why
	 * and the session stays in step (RFC 5321 §4.2.5).
	 */
	if (!ok)
		s->discard = true;
	pst_smtps_input(s);
}

void
pst_smtps_commit_done(struct pst_smtps *s, const struct pst_smtps_reply *r)
{
	session_commit_end(s, r);
	if (s->state != PST_SMTPS_CLOSING)
		pst_smtps_input(s);
}

void
pst_smtps_shutdown(struct pst_smtps *s)
{
	switch (s->state) {
	case PST_SMTPS_FLUSH:
	case PST_SMTPS_COMMIT:
		s->shutdown = true;
		break;
	case PST_SMTPS_CLOSING:
		break;
	default:
		/* An unfinished message was never acknowledged. */
		session_txn_reset(s);
		session_reply_close(s, 421, "4.3.2", "Service shutting down");
		break;
	}
}

void
pst_smtps_set_stress(struct pst_smtps *s, bool on)
{
	uint64_t cap;

	s->stress = on;
	/* A job in flight has no deadline; a new session none yet. */
	if (!on || !session_timed(s) || s->state == PST_SMTPS_NEW ||
	    s->state == PST_SMTPS_FLUSH || s->state == PST_SMTPS_COMMIT)
		return;
	cap = s->io->now(s->arg) + session_idle_us(s);
	if (s->deadline > cap)
		session_arm(s, cap);
}

void
pst_smtps_greet(struct pst_smtps *s, const char *note)
{
	session_enter(s, PST_SMTPS_HELO);
	session_reply(s, 220, NULL, "%s ESMTP postern%s%s%s", s->p.hostname,
	    note != NULL ? " (" : "", note != NULL ? note : "",
	    note != NULL ? ")" : "");
}

void
pst_smtps_refuse(struct pst_smtps *s, int code, const char *esc,
    const char *text)
{
	session_reply_close(s, code, esc, text);
}

void
pst_smtps_reply_set(struct pst_smtps_reply *r, int code, const char *esc,
    const char *fmt, ...)
{
	va_list ap;

	r->code = code;
	snprintf(r->esc, sizeof(r->esc), "%s", esc != NULL ? esc : "");
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
}

void
pst_smtps_local_error(struct pst_smtps_reply *r, const char *detail)
{
	pst_smtps_reply_set(r, 451, "4.3.0", "Local error in processing%s%s",
	    detail != NULL ? ": " : "", detail != NULL ? detail : "");
}

unsigned
pst_smtps_notify(unsigned n)
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

enum pst_spool_ret
pst_smtps_ret(enum pst_cmd_ret ret)
{
	switch (ret) {
	case PST_RET_FULL:
		return PST_SPOOL_RET_FULL;
	case PST_RET_HDRS:
		return PST_SPOOL_RET_HDRS;
	default:
		return PST_SPOOL_RET_UNSET;
	}
}

void
pst_smtps_orcpt(const struct pst_cmd *cmd, char *buf, size_t len)
{
	if (len == 0)
		return;
	buf[0] = '\0';
	if (cmd->rcpt.orcpt[0] != '\0')
		snprintf(buf, len, "%s;%s", cmd->rcpt.orcpt_type,
		    cmd->rcpt.orcpt);
}

enum pst_smtps_state
pst_smtps_state(const struct pst_smtps *s)
{
	return s->state;
}

const char *
pst_smtps_helo(const struct pst_smtps *s)
{
	return s->helo;
}

bool
pst_smtps_esmtp(const struct pst_smtps *s)
{
	return s->esmtp;
}

unsigned
pst_smtps_messages(const struct pst_smtps *s)
{
	return s->messages;
}

const char *
pst_smtps_state_name(enum pst_smtps_state st)
{
	return st < PST_SMTPS__COUNT ? states[st].name : "?";
}

const char *
pst_smtps_phase_name(enum pst_smtps_state st)
{
	return st < PST_SMTPS__COUNT ? states[st].phase : "?";
}

struct pst_smtps *
pst_smtps_new(const struct pst_smtps_params *p,
    const struct pst_smtps_sink *sink, const struct pst_smtps_io *io,
    void *arg, struct evbuffer *in)
{
	struct pst_smtps *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if ((s->data = evbuffer_new()) == NULL) {
		free(s);
		return NULL;
	}
	s->p = *p;
	s->sink = sink;
	s->io = io;
	s->arg = arg;
	s->in = in;
	s->state = PST_SMTPS_NEW;
	pst_line_init(&s->lr, pst_cmd_line_max(0));
	return s;
}

void
pst_smtps_free(struct pst_smtps *s)
{
	if (s == NULL)
		return;
	evbuffer_free(s->data);
	free(s);
}
