/*
 * err.h: the one error value of libpostern.
 *
 * Every fallible libpostern call reports through a struct pst_err that the
 * caller owns and the callee fills.  It says whether the trouble is
 * temporary (try again later), permanent (give up and bounce) or local (our
 * configuration or our bug), in which stage it happened, what it concerns
 * (the whole session, one message, one recipient), and carries the SMTP
 * reply code, the enhanced status code and a bounded, sanitised text.
 *
 * The value never allocates, so it can be filled from any depth of a
 * failure path and copied by assignment.  Turning an error into an action
 * (defer, bounce, retry elsewhere) is the caller's business: the library
 * only describes what happened.
 */
#ifndef PST_ERR_H
#define PST_ERR_H

#include <stddef.h>

enum pst_class {
	PST_OK = 0,		/* no error */
	PST_TEMP,		/* temporary: try again later */
	PST_PERM,		/* permanent: retrying cannot help */
	PST_LOCAL,		/* our side: configuration, resources, bug */
};

enum pst_stage {
	PST_STAGE_NONE = 0,	/* not tied to a protocol stage */
	PST_STAGE_CONFIG,	/* reading or checking configuration */
	PST_STAGE_RESOLVE,	/* looking up a host name */
	PST_STAGE_BIND,		/* binding the source address */
	PST_STAGE_CONNECT,	/* establishing the TCP connection */
	PST_STAGE_PROXY,	/* proxy handshake */
	PST_STAGE_GREETING,	/* waiting for the 220 greeting */
	PST_STAGE_TLS,		/* TLS handshake or verification */
	PST_STAGE_EHLO,		/* EHLO / HELO */
	PST_STAGE_STARTTLS,	/* the STARTTLS command */
	PST_STAGE_AUTH,		/* SASL authentication */
	PST_STAGE_MAIL,		/* MAIL FROM */
	PST_STAGE_RCPT,		/* RCPT TO */
	PST_STAGE_DATA,		/* DATA command and body transfer */
	PST_STAGE_DOT,		/* waiting for the reply to the final dot */
	PST_STAGE_RSET,		/* RSET between messages */
	PST_STAGE_QUIT,		/* QUIT */
	PST_STAGE_SPOOL,	/* the on-disk queue */
	PST_STAGE__COUNT
};

enum pst_scope {
	PST_SCOPE_SESSION = 0,	/* the connection is unusable */
	PST_SCOPE_MESSAGE,	/* this message, on this connection */
	PST_SCOPE_RECIPIENT,	/* one recipient of this message */
};

#define PST_ERR_TEXT_MAX	512

struct pst_err {
	enum pst_class	 cls;
	enum pst_stage	 stage;
	enum pst_scope	 scope;
	int		 sys_errno;	/* errno when a system call failed */
	int		 smtp_code;	/* peer's reply code, 0 if none */
	int		 detail;	/* SOCKS REP, HTTP status, TLS reason */
	char		 esc[16];	/* enhanced status code "4.7.0" or "" */
	char		 text[PST_ERR_TEXT_MAX];
};

/*
 * pst_err_clear()
 * Resets 'err' to PST_OK with every field empty.
 */
void	pst_err_clear(struct pst_err *err);

/*
 * pst_err_set()
 * Fills 'err' with class 'cls', stage 'stage', session scope and a printf
 * formatted text.  Other fields are reset.  Always returns -1 so that a
 * failure path can say "return pst_err_set(...)".
 */
int	pst_err_set(struct pst_err *err, enum pst_class cls,
	    enum pst_stage stage, const char *fmt, ...)
	    __attribute__((format(printf, 4, 5)));

/*
 * pst_err_sys()
 * Like pst_err_set(), and records 'errnum' and appends ": strerror(errnum)"
 * to the text.  Returns -1.
 */
int	pst_err_sys(struct pst_err *err, enum pst_class cls,
	    enum pst_stage stage, int errnum, const char *fmt, ...)
	    __attribute__((format(printf, 5, 6)));

/*
 * pst_err_set_text()
 * Replaces the text of 'err' with 'len' bytes of 'text', sanitised: bytes
 * outside printable ASCII become '?', and the copy is cut to fit.
 */
void	pst_err_set_text(struct pst_err *err, const char *text, size_t len);

/*
 * pst_stage_name()
 * Short lower-case name of a stage, for logs: "rcpt", "tls".
 */
const char *pst_stage_name(enum pst_stage stage);

/*
 * pst_stage_doing()
 * What was in progress in 'stage', for humans: "sending RCPT TO".
 */
const char *pst_stage_doing(enum pst_stage stage);

/*
 * pst_class_name(), pst_scope_name()
 * "temporary", "permanent", "local", "ok"; "session", "message",
 * "recipient".
 */
const char *pst_class_name(enum pst_class cls);
const char *pst_scope_name(enum pst_scope scope);

/*
 * pst_err_format()
 * Writes 'err' as one line of key=value pairs into 'buf' (always NUL
 * terminated): class=temporary stage=rcpt code=451 esc=4.7.1 reason="...".
 * Returns 'buf'.
 */
char	*pst_err_format(const struct pst_err *err, char *buf, size_t len);

#endif /* PST_ERR_H */
