/*
 * internal.h: what the files of lib/tls share.  Not part of the library's
 * interface; only the .c files of lib/tls include it.
 */
#ifndef PST_TLS_INTERNAL_H
#define PST_TLS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "tls/policy.h"
#include "tls/upgrade.h"

/*
 * The certificate check of one connection.  pst_tls_upgrade() fills the
 * first part and hangs the struct on the SSL (SSL_set_app_data());
 * tls_cert_verify() reads it and records what it saw in the second part.
 */
struct tls_check {
	struct pst_tls_pin	 pins[PST_TLS_PINS_MAX];
	size_t			 npins;
	bool			 verify;
	char			 name[PST_TLS_NAME_MAX + 1];

	bool			 seen;		/* a cert was seen */
	bool			 chain_ok;	/* chain and name ok */
	bool			 pin_matched;
	bool			 rejected;	/* we failed it */
	int			 verify_err;	/* X509_V_ERR_* */
	int			 verify_depth;
	unsigned char		 cert_fp[32];
	unsigned char		 spki_fp[32];
	char			 subject[256];
	char			 issuer[256];
	char			 why[PST_ERR_TEXT_MAX]; /* if rejected */
};

/*
 * tls_cert_verify()
 * The SSL_CTX certificate verification callback (set by
 * pst_tls_ctx_new()).  Runs OpenSSL's chain and name check, then applies
 * the pins and the verify flag of the tls_check found on the SSL.
 * Returns 1 to go on with the handshake, 0 to fail it.  An SSL without a
 * tls_check is refused: the context is only for pst_tls_upgrade().
 */
int	tls_cert_verify(X509_STORE_CTX *xs, void *arg);

/*
 * tls_peer_setup()
 * Sets up the peer name on 'ssl': SNI and host name check for a name, IP
 * address check (and no SNI) for an IPv4 or IPv6 literal, brackets
 * allowed.  Copies the name into 'chk'.  Returns 0, or -1 with 'err'
 * filled (PST_LOCAL) for a missing or malformed name.
 */
int	tls_peer_setup(SSL *ssl, const char *name, struct tls_check *chk,
	    bool *sni, struct pst_err *err);

/*
 * tls_info_fill()
 * Describes the session of 'ssl' (may be NULL when the handshake failed)
 * and what 'chk' recorded.
 */
void	tls_info_fill(struct pst_tls_info *info, SSL *ssl,
	    const struct tls_check *chk, bool sni);

/*
 * OpenSSL error codes taken off a queue (this thread's, or the few a
 * bufferevent kept), oldest first.
 */
#define TLS_ERRQ_MAX	8

struct tls_errq {
	unsigned long	e[TLS_ERRQ_MAX];
	size_t		n;
};

/*
 * tls_errq_take()
 * Empties this thread's OpenSSL error queue into 'q' (the first
 * TLS_ERRQ_MAX entries are kept).
 */
void	tls_errq_take(struct tls_errq *q);

/*
 * tls_errq_has()
 * True when 'q' holds an entry of library 'lib' with reason 'reason'.
 */
bool	tls_errq_has(const struct tls_errq *q, int lib, int reason);

/*
 * tls_errq_format()
 * The reasons in 'q', oldest first, separated by ": ", duplicates left
 * out, into 'buf'; "" for an empty queue.  Returns 'buf'.
 */
char	*tls_errq_format(const struct tls_errq *q, char *buf, size_t len);

/*
 * tls_strlcat()
 * Appends 'src' to the NUL-terminated 'dst' of size 'len', cutting it.
 */
void	tls_strlcat(char *dst, const char *src, size_t len);

#endif /* PST_TLS_INTERNAL_H */
