/*
 * client.h: the SMTP client session, from greeting to QUIT.
 *
 * A client is handed a connected bufferevent (plain, or already TLS for
 * implicit TLS) and runs the session on it: greeting, EHLO (HELO when
 * EHLO is refused), STARTTLS when the mode asks for it (EHLO again after
 * TLS, earlier capabilities forgotten: RFC 3207 §4.2), AUTH with the
 * strongest mechanism both sides allow, then any number of messages, each
 * as MAIL, RCPT..., DATA (pipelined when the server offers PIPELINING),
 * the body streamed from a file descriptor with dot-stuffing, and QUIT.
 *
 * Results come through callbacks given at creation:
 *   ready    the session can take a message (once, after AUTH)
 *   rcpt     one per recipient of a message, with its reply
 *   sent     one per message: accepted (err NULL) or not, and why
 *   failed   the session is unusable (any stage), once, last
 *   closed   QUIT was answered (or the peer went away after it)
 * Callbacks never fire from inside a pst_client_* call.  From inside any
 * callback the caller may call pst_client_send(), pst_client_quit() or
 * pst_client_free().
 *
 * Every wait has its own timeout (the per-state table in client.c): the
 * greeting, each command, the DATA blocks and the final dot; an expiry
 * names the stage ("timed out waiting for the greeting after 4s").
 */
#ifndef PST_CLIENT_H
#define PST_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "common/err.h"
#include "sasl/sasl.h"
#include "smtp/ehlo.h"
#include "tls/policy.h"
#include "tls/upgrade.h"

struct bufferevent;
struct pst_client;

/* err->detail of a session failure that was a timeout. */
#define PST_CLIENT_E_TIMEOUT	1
/*
 * err->detail of a recipient the server would not take in this
 * transaction because it has enough (RFC 5321 4.5.3.1.10): it can go in
 * the next one, on the same connection.
 */
#define PST_CLIENT_E_TOO_MANY	2

enum pst_client_tls {
	PST_CLIENT_TLS_NONE = 0,	/* plain, never STARTTLS */
	PST_CLIENT_TLS_STARTTLS,	/* STARTTLS required: fail without */
	PST_CLIENT_TLS_OPPORTUNISTIC,	/* STARTTLS when offered: a refusal
					   of it fails, as when required */
	PST_CLIENT_TLS_IMPLICIT,	/* the connection is TLS already */
};

/* Milliseconds; RFC 5321 §4.5.3.2 gives the defaults of client.c. */
struct pst_client_timeouts {
	uint32_t	 greeting_ms;	/* the 220 */
	uint32_t	 tls_ms;	/* the STARTTLS handshake */
	uint32_t	 command_ms;	/* EHLO, AUTH, MAIL, RCPT, RSET, QUIT */
	uint32_t	 data_ms;	/* DATA's 354 and each block sent */
	uint32_t	 dot_ms;	/* the reply to the final dot */
};

typedef void	(*pst_client_trace_fn)(void *arg, const char *line);

struct pst_client_params {
	const char		*helo;		/* our name for EHLO */
	enum pst_client_tls	 tls;
	SSL_CTX			*ssl_ctx;	/* for STARTTLS */
	const struct pst_tls_policy *tls_policy;
	const char		*tls_name;	/* peer name to verify */
	const struct pst_creds	*creds;		/* NULL: no AUTH */
	unsigned		 sasl_allowed;	/* PST_SASL_* mask */
	bool			 allow_plaintext; /* PLAIN/LOGIN without TLS */
	bool			 no_pipelining;	/* even when offered */
	struct pst_client_timeouts timeouts;	/* 0: the default */
	/* Transcript and state changes, secrets masked; may be NULL. */
	pst_client_trace_fn	 trace;
	void			*trace_arg;
};

struct pst_client_rcpt {
	const char	*addr;		/* "user@example.org" */
	const char	*notify;	/* DSN NOTIFY value, or NULL */
	const char	*orcpt;		/* DSN ORCPT value (xtext), or NULL */
};

struct pst_client_mail {
	const char			*sender;  /* "" for <> */
	const struct pst_client_rcpt	*rcpts;
	size_t				 nrcpts;
	uint64_t			 size;	  /* body bytes: SIZE=, and
						     what is sent */
	bool				 body_8bit;  /* BODY=8BITMIME */
	bool				 smtputf8;   /* SMTPUTF8 */
	const char			*ret;	  /* DSN RET, or NULL */
	const char			*envid;	  /* DSN ENVID (xtext), or NULL */
	int				 body_fd; /* CRLF text: 'size' bytes */
	uint64_t			 body_offset; /* from here in it */
};

struct pst_client_cbs {
	void	(*ready)(struct pst_client *c, void *arg);
	void	(*rcpt)(struct pst_client *c, size_t i,
		    const struct pst_err *err, void *arg);
	void	(*sent)(struct pst_client *c, const struct pst_err *err,
		    void *arg);
	void	(*failed)(struct pst_client *c, const struct pst_err *err,
		    void *arg);
	void	(*closed)(struct pst_client *c, void *arg);
};

/* What the session learnt, for logs and `postern probe`. */
struct pst_client_info {
	char			 greeting[256];	/* text of the 220 */
	uint32_t		 greeting_ms;	/* wait for it */
	struct pst_ehlo		 ehlo;		/* the last EHLO's answer */
	bool			 esmtp;		/* EHLO (not HELO) worked */
	bool			 tls;		/* the session is encrypted */
	bool			 starttls;	/* ... by STARTTLS */
	struct pst_tls_info	 tls_info;	/* when tls */
	const char		*auth_mech;	/* NULL: no AUTH */
	bool			 pipelining;	/* used for messages */
};

/*
 * pst_client_new()
 * Starts a session on 'bev', which the client owns from now on (also on
 * failure).  For PST_CLIENT_TLS_IMPLICIT pass the handshake's 'tls_info'
 * (else NULL).
 * Bytes already in bev's input (an early greeting) are read.  'params' is
 * copied; the strings, context and credentials it points to must outlive
 * the client.  Returns NULL with 'err' (PST_LOCAL) only when memory is
 * short.
 */
struct pst_client *pst_client_new(struct bufferevent *bev,
		    const struct pst_client_params *params,
		    const struct pst_tls_info *tls_info,
		    const struct pst_client_cbs *cbs, void *arg,
		    struct pst_err *err);

/*
 * pst_client_send()
 * Sends one message; only after 'ready' or 'sent'.  'm' and what it
 * points to must stay valid until 'sent' fires.  Each recipient gets a
 * 'rcpt' callback (err NULL: accepted), then 'sent' fires: err NULL when
 * the server took the message for every accepted recipient, else the
 * reason (scope message; or scope recipient when no recipient was
 * accepted).  A session-level failure fires 'failed' instead of 'sent'.
 * Recipients refused with detail PST_CLIENT_E_TOO_MANY (class temporary)
 * did not fit in this transaction: the message went to those accepted,
 * and the caller may send it to the rest in another transaction at once.
 * Returns 0, or -1 with 'err' when the client is not ready.
 */
int		 pst_client_send(struct pst_client *c,
		    const struct pst_client_mail *m, struct pst_err *err);

/*
 * pst_client_can_take()
 * Whether a server that offered SMTPUTF8 or not ('smtputf8') and
 * announced 'size_max' (0: no limit) can take a message of 'size' bytes
 * that needs SMTPUTF8 or not ('needs_utf8').  If not, 'why' says so:
 * PST_PERM, stage MAIL, scope message, 5.6.7 (RFC 6531 3.4) or 5.3.4.
 * pst_client_send() refuses such a message itself, without a word to the
 * server; a caller with other servers to try asks first.
 */
bool		 pst_client_can_take(bool smtputf8, uint64_t size_max,
		    bool needs_utf8, uint64_t size, struct pst_err *why);

/*
 * pst_client_quit()
 * Sends QUIT (when ready) and waits for the answer, then 'closed' fires.
 */
void		 pst_client_quit(struct pst_client *c);

/*
 * pst_client_set_callbacks()
 * Hands the client's callbacks to someone else (the negotiator passes a
 * ready session to its caller this way).  Takes effect at once.
 */
void		 pst_client_set_callbacks(struct pst_client *c,
		    const struct pst_client_cbs *cbs, void *arg);

/*
 * pst_client_info()
 * What the session learnt so far.
 */
const struct pst_client_info *pst_client_info(const struct pst_client *c);

/*
 * pst_client_mode_name()
 * How the session 'info' describes is protected, for people:
 * "implicit TLS", "starttls" or "plain (no TLS)".
 */
const char	*pst_client_mode_name(const struct pst_client_info *info);

/*
 * pst_client_free()
 * Drops the connection at once and frees everything; no callback fires
 * afterwards.  NULL is fine.
 */
void		 pst_client_free(struct pst_client *c);

#endif /* PST_CLIENT_H */
