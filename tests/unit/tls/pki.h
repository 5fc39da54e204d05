/*
 * pki.h: a throwaway PKI for the TLS tests, made with the OpenSSL API in a
 * fresh mkdtemp() directory: a CA, certificates it signs, a self-signed
 * one, keys and a few broken files.  Keys are EC P-256: quick to make.
 */
#ifndef POSTERN_TEST_PKI_H
#define POSTERN_TEST_PKI_H

#include <limits.h>

#include "tls/policy.h"

#define PKI_PATH_MAX	128

struct test_pki {
	char	dir[32];			/* mkdtemp() */
	char	ca[PKI_PATH_MAX];		/* CN=postern test CA */
	char	ca_dir[PKI_PATH_MAX];		/* <hash>.0: the CA */
	char	server_cert[PKI_PATH_MAX];	/* localhost, 127.0.0.1 */
	char	server_key[PKI_PATH_MAX];
	char	wrong_cert[PKI_PATH_MAX];	/* wrong.example */
	char	wrong_key[PKI_PATH_MAX];
	char	self_cert[PKI_PATH_MAX];	/* localhost, self-signed */
	char	self_key[PKI_PATH_MAX];
	char	client_cert[PKI_PATH_MAX];	/* CN=postern client */
	char	client_key[PKI_PATH_MAX];
	char	client_both[PKI_PATH_MAX];	/* certificate and key */
	char	other_key[PKI_PATH_MAX];	/* matches nothing */
	char	encrypted_key[PKI_PATH_MAX];	/* with a passphrase */
	char	garbage[PKI_PATH_MAX];		/* not PEM at all */
	char	missing[PKI_PATH_MAX];		/* does not exist */

	/* Pins in "sha256:AB:..." form. */
	char	server_cert_pin[PST_TLS_FP_BUFSIZE];
	char	server_spki_pin[PST_TLS_FP_BUFSIZE];
	char	self_cert_pin[PST_TLS_FP_BUFSIZE];
	char	self_spki_pin[PST_TLS_FP_BUFSIZE];
	char	wrong_cert_pin[PST_TLS_FP_BUFSIZE];
};

/*
 * pki_make()
 * Creates everything.  Returns 0, or -1 after printing why to stderr.
 */
int	pki_make(struct test_pki *pki);

/*
 * pki_remove()
 * Deletes the directory and what pki_make() put in it.
 */
void	pki_remove(struct test_pki *pki);

#endif /* POSTERN_TEST_PKI_H */
