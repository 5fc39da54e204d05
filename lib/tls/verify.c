/*
 * verify.c: who the peer is, and whether we accept it.
 *
 * The peer name goes to OpenSSL's own host and IP checks (SSL_set1_host(),
 * X509_VERIFY_PARAM_set1_ip()); nothing here compares names by hand.  The
 * certificate callback wraps X509_verify_cert(): it records what it saw
 * (fingerprints, subject, the verification error) for the report, then
 * decides.  Pins come first and replace CA trust; without pins the verify
 * flag decides whether a failed chain or name fails the handshake.
 *
 * Failing inside the handshake, rather than after it, means the peer gets
 * an alert and no application byte is ever exchanged with an unchecked
 * peer.  The decision is recorded in the struct tls_check so that the
 * upgrade can say why, in words, instead of OpenSSL's "certificate verify
 * failed".
 */
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "tls/text.h"
#include "tls/verify.h"

static void	 name_format(const X509_NAME *, char *, size_t);
static int	 fingerprints(X509 *, unsigned char *, unsigned char *);
static bool	 pins_match(const struct tls_check *);
static void	 reject_pins(struct tls_check *);
static void	 reject_chain(struct tls_check *, X509_STORE_CTX *);

static void
name_format(const X509_NAME *name, char *buf, size_t len)
{
	BIO *bio;
	char *data;
	long n;

	buf[0] = '\0';
	if (name == NULL || (bio = BIO_new(BIO_s_mem())) == NULL)
		return;
	/* RFC 2253 order and escaping; bytes above 0x7f come out as \XX. */
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0 &&
	    (n = BIO_get_mem_data(bio, &data)) > 0)
		tls_copy_clean(buf, len, data, (size_t)n);
	BIO_free(bio);
}

/*
 * The SHA-256 of the certificate and of its SubjectPublicKeyInfo, both
 * DER.  X509_pubkey_digest() would hash the key bits only, which is not
 * what `openssl pkey -pubin -outform DER | sha256sum` (the usual way to
 * compute an SPKI pin) gives.
 */
static int
fingerprints(X509 *cert, unsigned char *cert_fp, unsigned char *spki_fp)
{
	unsigned char *der, *p;
	unsigned int n;
	int len, rc;

	if (X509_digest(cert, EVP_sha256(), cert_fp, &n) != 1 || n != 32)
		return -1;
	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), NULL);
	if (len <= 0 || (der = malloc((size_t)len)) == NULL)
		return -1;
	p = der;
	rc = -1;
	if (i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &p) == len &&
	    EVP_Digest(der, (size_t)len, spki_fp, &n, EVP_sha256(),
	    NULL) == 1 && n == 32)
		rc = 0;
	free(der);
	return rc;
}

static bool
pins_match(const struct tls_check *chk)
{
	size_t i;

	for (i = 0; i < chk->npins; i++) {
		if (memcmp(chk->pins[i].sha256, chk->cert_fp, 32) == 0 ||
		    memcmp(chk->pins[i].sha256, chk->spki_fp, 32) == 0)
			return true;
	}
	return false;
}

static void
reject_pins(struct tls_check *chk)
{
	char cfp[PST_TLS_FP_BUFSIZE], kfp[PST_TLS_FP_BUFSIZE];

	chk->rejected = true;
	snprintf(chk->why, sizeof(chk->why),
	    "certificate matches none of the %zu pinned fingerprint%s: "
	    "certificate %s, public key %s", chk->npins,
	    chk->npins == 1 ? "" : "s",
	    pst_tls_fp_format(chk->cert_fp, cfp, sizeof(cfp)),
	    pst_tls_fp_format(chk->spki_fp, kfp, sizeof(kfp)));
}

static void
reject_chain(struct tls_check *chk, X509_STORE_CTX *xs)
{
	char subject[256], fp[PST_TLS_FP_BUFSIZE];
	X509 *at;

	chk->rejected = true;
	at = X509_STORE_CTX_get_current_cert(xs);
	if (at == NULL)
		at = X509_STORE_CTX_get0_cert(xs);
	name_format(at != NULL ? X509_get_subject_name(at) : NULL, subject,
	    sizeof(subject));
	pst_tls_fp_format(chk->cert_fp, fp, sizeof(fp));
	switch (chk->verify_err) {
	case X509_V_ERR_HOSTNAME_MISMATCH:
		snprintf(chk->why, sizeof(chk->why),
		    "certificate verification failed: the certificate "
		    "(%.120s) is not valid for host name %.100s; "
		    "certificate %s",
		    chk->subject, chk->name, fp);
		break;
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		snprintf(chk->why, sizeof(chk->why),
		    "certificate verification failed: the certificate "
		    "(%.120s) is not valid for IP address %.100s; "
		    "certificate %s",
		    chk->subject, chk->name, fp);
		break;
	default:
		snprintf(chk->why, sizeof(chk->why),
		    "certificate verification failed: %s (depth %d, %.120s); "
		    "certificate %s",
		    X509_verify_cert_error_string(chk->verify_err),
		    chk->verify_depth, subject, fp);
		break;
	}
}

int
tls_cert_verify(X509_STORE_CTX *xs, void *arg)
{
	struct tls_check *chk = NULL;
	X509 *leaf;
	SSL *ssl;
	int ok;

	ssl = X509_STORE_CTX_get_ex_data(xs,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	if (ssl != NULL)
		chk = SSL_get_app_data(ssl);
	if (chk == NULL || (leaf = X509_STORE_CTX_get0_cert(xs)) == NULL) {
		X509_STORE_CTX_set_error(xs,
		    X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}

	ok = X509_verify_cert(xs) == 1;
	chk->seen = true;
	chk->chain_ok = ok;
	chk->verify_err = X509_STORE_CTX_get_error(xs);
	chk->verify_depth = X509_STORE_CTX_get_error_depth(xs);
	name_format(X509_get_subject_name(leaf), chk->subject,
	    sizeof(chk->subject));
	name_format(X509_get_issuer_name(leaf), chk->issuer,
	    sizeof(chk->issuer));
	if (fingerprints(leaf, chk->cert_fp, chk->spki_fp) == -1) {
		chk->rejected = true;
		snprintf(chk->why, sizeof(chk->why),
		    "cannot compute the certificate's fingerprints");
		X509_STORE_CTX_set_error(xs,
		    X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}

	/* Pins replace CA trust: they alone decide, either way. */
	if (chk->npins > 0) {
		if (pins_match(chk)) {
			chk->pin_matched = true;
			return 1;
		}
		reject_pins(chk);
		X509_STORE_CTX_set_error(xs,
		    X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	if (ok || !chk->verify)
		return 1;
	reject_chain(chk, xs);
	return 0;
}

int
tls_peer_setup(SSL *ssl, const char *name, struct tls_check *chk,
    bool *sni, struct pst_err *err)
{
	unsigned char ip[16];
	char buf[PST_TLS_NAME_MAX + 1];
	size_t len, i;
	bool bracketed = false;

	*sni = false;
	if (name == NULL || name[0] == '\0')
		return pst_err_set(err, PST_LOCAL, PST_STAGE_TLS,
		    "no peer name to check the certificate against");
	len = strnlen(name, PST_TLS_NAME_MAX + 3);
	if (name[0] == '[') {
		if (len < 3 || name[len - 1] != ']')
			return pst_err_set(err, PST_LOCAL, PST_STAGE_TLS,
			    "peer name \"%.64s\": unbalanced bracket", name);
		name++;
		len -= 2;
		bracketed = true;
	}
	if (len > PST_TLS_NAME_MAX)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_TLS,
		    "peer name \"%.64s...\" is longer than %d bytes", name,
		    PST_TLS_NAME_MAX);
	memcpy(buf, name, len);
	buf[len] = '\0';
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == ':'))
			return pst_err_set(err, PST_LOCAL, PST_STAGE_TLS,
			    "peer name \"%.64s\" has a character not allowed "
			    "in a host name or IP address", buf);
	}

	/*
	 * inet_pton() rather than a2i_IPADDRESS(): the latter takes
	 * "1.2.3.4.example.org" for the address 1.2.3.4.
	 */
	if (inet_pton(AF_INET, buf, ip) == 1 ||
	    inet_pton(AF_INET6, buf, ip) == 1) {
		/* RFC 6066 section 3: no IP literals in SNI. */
		if (X509_VERIFY_PARAM_set1_ip(SSL_get0_param(ssl), ip,
		    strchr(buf, ':') != NULL ? 16 : 4) != 1)
			return pst_err_set(err, PST_LOCAL, PST_STAGE_TLS,
			    "cannot set up the IP address check for %s", buf);
	} else {
		if (bracketed || strchr(buf, ':') != NULL)
			return pst_err_set(err, PST_LOCAL, PST_STAGE_TLS,
			    "peer name \"%s%s%s\" is not a valid IPv6 address",
			    bracketed ? "[" : "", buf, bracketed ? "]" : "");
		/* RFC 6066 section 3: the name without its trailing dot. */
		if (len > 1 && buf[len - 1] == '.')
			buf[--len] = '\0';
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (SSL_set_tlsext_host_name(ssl, buf) != 1 ||
		    SSL_set1_host(ssl, buf) != 1) {
			ERR_clear_error();
			return pst_err_set(err, PST_LOCAL, PST_STAGE_TLS,
			    "cannot set up the host name check for %s", buf);
		}
		*sni = true;
	}
	memcpy(chk->name, buf, len + 1);
	return 0;
}
