/*
 * upgrade.h: turning a connected bufferevent into a TLS one.
 *
 * One path serves both ways of starting TLS: STARTTLS (RFC 3207: upgrade
 * after the server's 220 reply to STARTTLS) and implicit TLS (RFC 8314:
 * upgrade right after the connection is made).  The caller hands over the
 * plain bufferevent; the callback later hands back a TLS bufferevent on
 * top of it, checked against the policy (policy.h), or an error.
 *
 * Per connection, the upgrade:
 *   - refuses to start when the plain bufferevent still holds unread
 *     input: bytes that arrived before the handshake (after STARTTLS they
 *     are injected, CVE-2011-0411; before implicit TLS they are a
 *     plain-text server talking);
 *   - sends the peer name as SNI (RFC 6066 section 3), except for IP
 *     literals, which SNI does not allow;
 *   - checks the certificate against the name (DNS name or IP address in
 *     subjectAltName), the trust anchors and the pins, as policy.h says;
 *   - bounds the handshake by a timeout.
 */
#ifndef PST_TLS_UPGRADE_H
#define PST_TLS_UPGRADE_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "tls/policy.h"

struct bufferevent;
struct pst_err;
struct pst_tls;

/*
 * What a failure was, in pst_err.detail (stage PST_STAGE_TLS).  A caller
 * that negotiates the TLS mode looks at PST_TLS_F_PLAINTEXT: the peer
 * speaks plain SMTP on this port.
 */
enum pst_tls_fail {
	PST_TLS_F_NONE = 0,
	PST_TLS_F_HANDSHAKE,	/* the handshake failed; OpenSSL's reason */
	PST_TLS_F_PLAINTEXT,	/* the peer answered in plain text */
	PST_TLS_F_VERSION,	/* no protocol version in common */
	PST_TLS_F_VERIFY,	/* certificate chain or name check failed */
	PST_TLS_F_PIN,		/* certificate matches no pin */
	PST_TLS_F_TIMEOUT,	/* the handshake took too long */
	PST_TLS_F_CLOSED,	/* the peer closed during the handshake */
	PST_TLS_F_UNREAD,	/* plain bytes were waiting before TLS */
	PST_TLS_F_LOCAL,	/* our side: memory, bad name, bad policy */
};

/*
 * The outcome of a handshake, for logs and `postern probe'.  Strings are
 * always NUL terminated, sanitised and cut to fit; empty when unknown.
 */
struct pst_tls_info {
	char	 version[16];		/* "TLSv1.3" */
	char	 cipher[64];		/* "TLS_AES_256_GCM_SHA384" */
	char	 subject[256];		/* RFC 2253 form */
	char	 issuer[256];
	char	 cert_sha256[PST_TLS_FP_BUFSIZE];  /* of the certificate */
	char	 spki_sha256[PST_TLS_FP_BUFSIZE];  /* of its public key */
	bool	 verified;		/* chain and name checked out */
	char	 verify_error[128];	/* why not, when !verified */
	bool	 pin_matched;		/* a pin accepted the peer */
	bool	 sni;			/* the name was sent as SNI */
};

/*
 * The callback, called exactly once, always from the event loop and never
 * from inside pst_tls_upgrade() or pst_tls_cancel().
 *
 * Success: 'bev' is the TLS bufferevent, now owned by the callee; 'err' is
 * NULL; 'info' describes the session.  Freeing 'bev' closes the plain
 * bufferevent under it (BEV_OPT_CLOSE_ON_FREE), and with it the socket.
 * Its callbacks are unset and EV_READ is disabled: application data that
 * came with the handshake (an implicit-TLS server's 220 greeting, say) is
 * kept and delivered to the read callback once the callee enables
 * EV_READ.  Do not set a read high watermark on it (libevent 2.1 may stall
 * with bytes held inside the SSL object) and let its output drain before
 * freeing it (freeing drops unsent output).
 *
 * Failure: 'bev' is NULL and the plain bufferevent is freed (the
 * connection is gone); 'err' says why: stage PST_STAGE_TLS, class PST_TEMP
 * for anything the peer did (handshake failure, plain-text answer,
 * verification, pin mismatch, timeout, close) and PST_LOCAL for our side,
 * with detail set to an enum pst_tls_fail.  'info' is not NULL when the
 * peer's certificate was seen: its subject and fingerprints help to write
 * a pin or fix the trust store.
 *
 * 'info' and 'err' are valid only during the call.
 */
typedef void (*pst_tls_cb)(struct bufferevent *bev,
    const struct pst_tls_info *info, const struct pst_err *err, void *arg);

/*
 * pst_tls_upgrade()
 * Starts a TLS client handshake over 'under', a connected bufferevent of
 * the loop that will run the handshake.  'ctx' comes from
 * pst_tls_ctx_new() with the same 'policy'; the upgrade takes its own
 * reference to it.  The name checked and sent as SNI is
 * policy->server_name when set, else 'peer_name' (a host name, or an IPv4
 * or IPv6 literal, with or without brackets).  'timeout_ms' bounds the
 * whole handshake, 0 for no limit.  Nothing in 'policy' or 'peer_name' is
 * kept after the call.
 *
 * On success it returns a handle, takes over 'under' (its callbacks and
 * timeouts are replaced; do not touch it again) and later calls 'cb' once.
 * The handle stays valid until 'cb' is called or pst_tls_cancel().
 *
 * It returns NULL, fills 'err' (stage PST_STAGE_TLS) and leaves 'under'
 * untouched and the caller's when: 'under' has unread input (class
 * PST_TEMP, detail PST_TLS_F_UNREAD, the text shows the first bytes); the
 * name is missing or malformed, a pin does not parse, or memory runs out
 * (class PST_LOCAL, detail PST_TLS_F_LOCAL).
 */
struct pst_tls	*pst_tls_upgrade(struct bufferevent *under, SSL_CTX *ctx,
		    const char *peer_name, const struct pst_tls_policy *policy,
		    uint64_t timeout_ms, pst_tls_cb cb, void *arg,
		    struct pst_err *err);

/*
 * pst_tls_cancel()
 * Abandons a handshake whose callback has not been called yet: frees the
 * TLS state and the plain bufferevent (closing the connection).  The
 * callback is never called afterwards.  NULL is ignored.  Not to be called
 * once the callback has run, nor from inside it.
 */
void		 pst_tls_cancel(struct pst_tls *t);

#endif /* PST_TLS_UPGRADE_H */
