/*
 * verify.h: the certificate check of lib/tls: who the peer is, and
 * whether we accept it.  Not part of the library's interface; ctx.c
 * installs the callback, upgrade.c sets up each connection's check.
 */
#ifndef PST_TLS_VERIFY_H
#define PST_TLS_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "tls/policy.h"

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
 * The SSL_CTX certificate verification callback (ctx.c sets it).  Runs
 * OpenSSL's chain and name check, then applies the pins and the verify
 * flag of the tls_check found on the SSL.  Returns 1 to go on with the
 * handshake, 0 to fail it.  An SSL without a tls_check is refused: the
 * context is only for pst_tls_upgrade().
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

#endif /* PST_TLS_VERIFY_H */
