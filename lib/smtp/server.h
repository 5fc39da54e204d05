/*
 * server.h: the SMTP server protocol (RFC 5321 with PIPELINING, SIZE,
 * 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES and DSN), without the bytes.
 *
 * One session machine for every way mail comes in: posternd's sessions
 * over bufferevents and "sendmail -bs" over standard input and output.
 * The session reads command lines from the driver's input buffer (line.h,
 * cmd.h), decides what each one may do in the state it arrives in (the
 * command table of server.c), reads the message after 354 (dot.h) and
 * writes every reply.  What is done with the mail belongs to the driver,
 * through the sink: a transaction begins (MAIL), a recipient is added
 * (RCPT), the message bytes arrive, the message is committed.
 *
 * The session decides when reading stops (a job in flight, closing, the
 * client's end of input) and when a request has taken too long (each
 * request has limits.idle to arrive whole; DATA must keep up a minimum
 * rate); the driver carries it out through the I/O interface.  Commands
 * that move no mail and bad commands are counted, and the session ends
 * with 421 past their limits.
 *
 * The driver logs: the session reports what happened (events), and the
 * names of its states.
 */
#ifndef PST_SMTP_SERVER_H
#define PST_SMTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp/cmd.h"
#include "smtp/dot.h"
#include "spool/spool.h"

struct evbuffer;
struct pst_smtps;

/* The extensions postern announces after EHLO (PST_CMD_EXT_*). */
#define PST_SMTPS_EXTENSIONS	(PST_CMD_EXT_SIZE | PST_CMD_EXT_8BITMIME | \
				 PST_CMD_EXT_SMTPUTF8 | PST_CMD_EXT_DSN)
/* Bad commands before 421. */
#define PST_SMTPS_ERROR_LIMIT	20

/*
 * The states.  HELO to RCPT read commands (the "command" phase): which
 * command is allowed in which of them is the command table's business.
 */
enum pst_smtps_state {
	PST_SMTPS_NEW = 0,	/* not greeted yet */
	PST_SMTPS_HELO,		/* waiting for HELO/EHLO */
	PST_SMTPS_READY,	/* greeted: no transaction */
	PST_SMTPS_MAIL,		/* MAIL accepted, no recipient yet */
	PST_SMTPS_RCPT,		/* one recipient or more */
	PST_SMTPS_DATA,		/* reading the message after 354 */
	PST_SMTPS_FLUSH,	/* the sink writes the message: reading paused */
	PST_SMTPS_COMMIT,	/* the sink commits: reading paused */
	PST_SMTPS_CLOSING,	/* last reply written: close once it is sent */
	PST_SMTPS__COUNT
};

/*
 * Limits.  The stress ones apply while pst_smtps_set_stress() says so,
 * when they are the shorter.  Strings are borrowed: they must outlive the
 * session.
 */
struct pst_smtps_params {
	const char	*hostname;	/* in the greeting and HELO/EHLO */
	unsigned	 ext;		/* PST_CMD_EXT_* announced after EHLO */
	uint64_t	 message_size;	/* SIZE, and the DATA bound */
	unsigned	 recipients;	/* RCPTs per transaction, then 452 */
	unsigned	 errors;	/* bad commands before 421 */
	unsigned	 junk;		/* commands moving no mail before 421 */
	unsigned	 stress_junk;
	uint64_t	 idle_us;	/* time for one request */
	uint64_t	 stress_idle_us;
	uint64_t	 min_data_rate;	/* bytes per second during DATA */
	bool		 local_names;	/* MAIL and RCPT take bare local
					   names: the client is local; the
					   sink qualifies them */
};

/*
 * A reply from the sink.  'code' 0 is success: the session gives the
 * usual reply (250 ... Ok; after a commit, 250 2.0.0 Ok: queued as
 * 'queued').
 */
struct pst_smtps_reply {
	int		 code;
	char		 esc[16];
	char		 text[512];
	bool		 reset;		/* RCPT refused: the transaction ends */
	char		 queued[64];	/* commit: the queue id */
};

/* sink commit() results */
#define PST_SMTPS_REFUSED	(-1)	/* not committed: reply in 'r' */
#define PST_SMTPS_PENDING	0	/* pst_smtps_commit_done() will tell */
#define PST_SMTPS_DONE		1	/* committed or failed: 'r' tells */

/*
 * What the driver does with the mail.  'arg' is the session's
 * (pst_smtps_new()).  The session checks sequence and limits first; the
 * sink refuses with -1 and the reply in 'r'.
 *
 * mail()    MAIL FROM: a transaction begins; -1: it does not.
 * rcpt()    RCPT TO; -1: refused ('r->reset': the whole transaction).
 * data()    DATA, before the 354; may be NULL; -1: the transaction ends.
 * write()   message bytes (dot-stuffing removed): takes all of 'buf';
 *           -1: the message is lost, the session answers 451 and ends.
 * flush()   all input read, more may come; may be NULL.  1: the sink
 *           started writing, reading pauses until pst_smtps_flush_done();
 *           0: nothing to do; -1: failed, 451 and the end.
 * commit()  the end of data ('dot' says what the message held):
 *           PST_SMTPS_PENDING, PST_SMTPS_DONE or PST_SMTPS_REFUSED.
 * reset()   the transaction is over (RSET, HELO/EHLO, an error, the
 *           commit answered, the end): forget it.  Called when there is
 *           none too.
 */
struct pst_smtps_sink {
	int	(*mail)(void *arg, const struct pst_cmd *cmd,
		    struct pst_smtps_reply *r);
	int	(*rcpt)(void *arg, const struct pst_cmd *cmd,
		    struct pst_smtps_reply *r);
	int	(*data)(void *arg, struct pst_smtps_reply *r);
	int	(*write)(void *arg, struct evbuffer *buf);
	int	(*flush)(void *arg);
	int	(*commit)(void *arg, const struct pst_dot *dot,
		    struct pst_smtps_reply *r);
	void	(*reset)(void *arg);
};

enum pst_smtps_event_type {
	PST_SMTPS_EV_STATE = 0,	/* the state changed: 'state', 'from' */
	PST_SMTPS_EV_REPLY,	/* a reply of 400 or more: 'text' */
	PST_SMTPS_EV_JUNK_LIMIT,	/* 'count' commands moved no mail */
	PST_SMTPS_EV_ERROR_LIMIT,	/* 'count' bad commands */
	PST_SMTPS_EV_PROTOCOL,	/* bare CR or LF, DATA fatal: 'text' */
	PST_SMTPS_EV_HTTP,	/* an HTTP request line: closing */
	PST_SMTPS_EV_TIMEOUT,	/* the deadline passed in 'state' */
	PST_SMTPS_EV_EOF,	/* the client's input ended in 'state' */
};

struct pst_smtps_event {
	enum pst_smtps_event_type	 type;
	enum pst_smtps_state		 state;
	enum pst_smtps_state		 from;
	const char			*text;
	unsigned			 count;
	bool				 stress;
};

/*
 * The driver's side of the bytes and the clock.  'arg' as for the sink.
 *
 * write()    reply bytes, to send in order.
 * reading()  start or stop reading the client's input; may be NULL.
 * arm()      the deadline is 'usec' from now (replaces any other);
 *            disarm() cancels it.  Both may be NULL (no deadlines, and
 *            then now() is not called either).
 * now()      a monotonic clock in microseconds.
 * closing()  the last reply is written: close once the output is sent;
 *            may be NULL (the driver looks at pst_smtps_state()).
 * event()    what happened, for the log; may be NULL.
 */
struct pst_smtps_io {
	void		 (*write)(void *arg, const char *buf, size_t len);
	void		 (*reading)(void *arg, bool on);
	void		 (*arm)(void *arg, uint64_t usec);
	void		 (*disarm)(void *arg);
	uint64_t	 (*now)(void *arg);
	void		 (*closing)(void *arg);
	void		 (*event)(void *arg, const struct pst_smtps_event *ev);
};

/*
 * pst_smtps_new()
 * A session reading commands from 'in' (the driver's input buffer; it
 * must outlive the session).  It starts in PST_SMTPS_NEW: nothing is
 * read or written until pst_smtps_greet() or pst_smtps_refuse().  NULL
 * when memory is short.
 */
struct pst_smtps *pst_smtps_new(const struct pst_smtps_params *p,
		    const struct pst_smtps_sink *sink,
		    const struct pst_smtps_io *io, void *arg,
		    struct evbuffer *in);

/*
 * pst_smtps_greet()
 * Sends the 220 greeting ("HOST ESMTP postern", with " (NOTE)" when
 * 'note' is not NULL) and starts reading.
 */
void		 pst_smtps_greet(struct pst_smtps *s, const char *note);

/*
 * pst_smtps_refuse()
 * Sends 'code' 'esc' 'text' instead of the greeting, and closes.
 */
void		 pst_smtps_refuse(struct pst_smtps *s, int code,
		    const char *esc, const char *text);

/*
 * pst_smtps_input()
 * New input in the buffer: runs every command and message byte in it,
 * as far as the state allows.
 */
void		 pst_smtps_input(struct pst_smtps *s);

/*
 * pst_smtps_eof()
 * The client half-closed: what it sent is answered, then the session
 * closes (an unfinished message is dropped).
 */
void		 pst_smtps_eof(struct pst_smtps *s);

/*
 * pst_smtps_timeout()
 * The deadline passed.  421, and closing; -1 when the session was
 * closing already: the last reply never left, end it now.
 */
int		 pst_smtps_timeout(struct pst_smtps *s);

/*
 * pst_smtps_flush_done()
 * The sink's flush() ended ('ok' false: failed; the message is read to
 * its end and answered 451 there).
 */
void		 pst_smtps_flush_done(struct pst_smtps *s, bool ok);

/*
 * pst_smtps_commit_done()
 * The sink's pending commit ended: 'r' as for PST_SMTPS_DONE.
 */
void		 pst_smtps_commit_done(struct pst_smtps *s,
		    const struct pst_smtps_reply *r);

/*
 * pst_smtps_shutdown()
 * 421: now, or after the answer to the commit or flush in flight.
 */
void		 pst_smtps_shutdown(struct pst_smtps *s);

/*
 * pst_smtps_set_stress()
 * Whether the stress limits apply; turning them on shortens the deadline
 * running now.
 */
void		 pst_smtps_set_stress(struct pst_smtps *s, bool on);

/*
 * pst_smtps_reply_set(), pst_smtps_local_error()
 * Fill a sink's reply; the second with 451 4.3.0 "Local error in
 * processing", followed by ": 'detail'" when 'detail' is not NULL.
 */
void		 pst_smtps_reply_set(struct pst_smtps_reply *r, int code,
		    const char *esc, const char *fmt, ...)
		    __attribute__((format(printf, 4, 5)));
void		 pst_smtps_local_error(struct pst_smtps_reply *r,
		    const char *detail);

/*
 * pst_smtps_notify(), pst_smtps_ret(), pst_smtps_orcpt()
 * The DSN parameters as the spool keeps them: NOTIFY= bits as
 * PST_SPOOL_NOTIFY_*, RET=, and ORCPT= as "type;xtext" in 'buf' ("" when
 * absent; PST_SMTPS_ORCPT_MAX bytes always suffice).
 */
#define PST_SMTPS_ORCPT_MAX	(PST_CMD_ADDRTYPE_MAX + PST_CMD_ORCPT_MAX + 2)
unsigned	 pst_smtps_notify(unsigned notify);
enum pst_spool_ret pst_smtps_ret(enum pst_cmd_ret ret);
void		 pst_smtps_orcpt(const struct pst_cmd *cmd, char *buf,
		    size_t len);

/* Accessors. */
enum pst_smtps_state pst_smtps_state(const struct pst_smtps *s);
const char	*pst_smtps_helo(const struct pst_smtps *s);	/* "" before */
bool		 pst_smtps_esmtp(const struct pst_smtps *s);
unsigned	 pst_smtps_messages(const struct pst_smtps *s);

/*
 * pst_smtps_state_name(), pst_smtps_phase_name()
 * The state's name ("rcpt"), and the phase it belongs to, as logs name
 * it: "command" for HELO to RCPT, else the state's name.
 */
const char	*pst_smtps_state_name(enum pst_smtps_state st);
const char	*pst_smtps_phase_name(enum pst_smtps_state st);

/*
 * pst_smtps_free()
 * Frees the session (not the input buffer).  The sink's reset() does
 * not run: the driver forgets its own transaction.  NULL is allowed.
 */
void		 pst_smtps_free(struct pst_smtps *s);

#endif /* PST_SMTP_SERVER_H */
