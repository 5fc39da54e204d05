/*
 * ctx.h: a TLS policy (policy.h) made into an OpenSSL client context.
 */
#ifndef PST_TLS_CTX_H
#define PST_TLS_CTX_H

#include <openssl/ssl.h>

#include "common/err.h"
#include "tls/policy.h"

/*
 * What pst_tls_ctx_new() made of the versions.  'requested' is the
 * policy's set, 'enabled' what the context offers, 'dropped' the
 * difference (only ever non-zero with PST_TLS_DOWNGRADE).  'text' says in
 * words what was dropped and why, for the daemon's log ("" when nothing
 * was): "dropped TLSv1, TLSv1.1: OpenSSL 3.0.x refuses them at security
 * level 1".
 */
struct pst_tls_report {
	unsigned	requested;
	unsigned	enabled;
	unsigned	dropped;
	char		text[256];
};

/*
 * pst_tls_ctx_new()
 * Checks 'policy' and builds a client SSL_CTX from it.  The files named in
 * the policy (CA, client certificate and key) are read now, so call it
 * when the configuration is loaded, not per connection; the policy itself
 * is not kept.  The caller owns the result and releases it with
 * SSL_CTX_free(); connections in flight hold their own reference, so a
 * context may be freed while they finish.
 *
 * The context has TLSv1.3 enabled unless the policy says otherwise,
 * SSL_OP_IGNORE_UNEXPECTED_EOF (a peer that closes without close_notify is
 * an EOF, not an error: libevent 2.1 would report the latter) and
 * renegotiation disabled.  It must only be used through
 * pst_tls_upgrade(): the certificate check lives there.
 *
 * Versions this OpenSSL cannot do are dropped (PST_TLS_DOWNGRADE) and
 * described in 'report' when it is not NULL, or refused (PST_TLS_STRICT)
 * with an error naming the version.  The versions must form a contiguous
 * range (OpenSSL cannot offer TLSv1.1 and TLSv1.3 without TLSv1.2).
 *
 * Returns NULL with 'err' filled (class PST_LOCAL, stage PST_STAGE_CONFIG)
 * for: an empty or non-contiguous version set, an unsupported version
 * under PST_TLS_STRICT, none usable under PST_TLS_DOWNGRADE, a bad pin
 * (its position and why), too many pins, an unreadable or empty CA file or
 * directory, a client certificate or key that cannot be read or parsed, an
 * encrypted key, a key that does not match the certificate, a key without
 * a certificate, a cipher list or ciphersuites string that matches
 * nothing, an out-of-range security level, and lack of memory.
 */
SSL_CTX	*pst_tls_ctx_new(const struct pst_tls_policy *policy,
	    struct pst_tls_report *report, struct pst_err *err);

#endif /* PST_TLS_CTX_H */
