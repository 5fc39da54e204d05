/*
 * pki.c: makes the test PKI described in pki.h.
 *
 * Pins are computed here through other OpenSSL calls than lib/tls uses
 * (i2d_PUBKEY() of the key rather than i2d_X509_PUBKEY() of the
 * certificate), so that a test comparing them checks something.
 */
#include <sys/stat.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pki.h"

static int	 add_ext(X509 *, X509V3_CTX *, int, const char *);
static X509	*make_cert(EVP_PKEY *, const char *, const char *, X509 *,
		    EVP_PKEY *, int, long);
static int	 write_cert(const char *, X509 *);
static int	 write_key(const char *, EVP_PKEY *, const char *);
static void	 pins(X509 *, EVP_PKEY *, char *, char *);
static int	 remove_one(const char *, const struct stat *, int,
		    struct FTW *);

static int
add_ext(X509 *x, X509V3_CTX *v, int nid, const char *value)
{
	X509_EXTENSION *ext;
	int rc;

	if ((ext = X509V3_EXT_conf_nid(NULL, v, nid, value)) == NULL)
		return -1;
	rc = X509_add_ext(x, ext, -1) == 1 ? 0 : -1;
	X509_EXTENSION_free(ext);
	return rc;
}

static X509 *
make_cert(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer,
    EVP_PKEY *issuer_key, int ca, long serial)
{
	X509V3_CTX v;
	X509_NAME *name;
	X509 *x;

	if ((x = X509_new()) == NULL)
		return NULL;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer != NULL ?
	    X509_get_subject_name(issuer) : name);
	X509V3_set_ctx(&v, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
	if (add_ext(x, &v, NID_basic_constraints, ca ? "critical,CA:TRUE" :
	    "CA:FALSE") == -1 ||
	    add_ext(x, &v, NID_subject_key_identifier, "hash") == -1 ||
	    (ca && add_ext(x, &v, NID_key_usage,
	    "critical,keyCertSign,cRLSign") == -1) ||
	    (san != NULL && add_ext(x, &v, NID_subject_alt_name, san) == -1) ||
	    X509_sign(x, issuer_key != NULL ? issuer_key : key,
	    EVP_sha256()) == 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static int
write_cert(const char *path, X509 *x)
{
	FILE *fp;
	int ok;

	if ((fp = fopen(path, "a")) == NULL)
		return -1;
	ok = PEM_write_X509(fp, x);
	return fclose(fp) == 0 && ok ? 0 : -1;
}

static int
write_key(const char *path, EVP_PKEY *key, const char *pass)
{
	FILE *fp;
	int ok;

	if ((fp = fopen(path, "a")) == NULL)
		return -1;
	if (pass != NULL)
		ok = PEM_write_PrivateKey(fp, key, EVP_aes_128_cbc(),
		    (const unsigned char *)pass, (int)strlen(pass), NULL,
		    NULL);
	else
		ok = PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL);
	return fclose(fp) == 0 && ok ? 0 : -1;
}

static void
pins(X509 *x, EVP_PKEY *key, char *cert_pin, char *spki_pin)
{
	unsigned char md[32], *der = NULL;
	unsigned int n;
	int len;

	X509_digest(x, EVP_sha256(), md, &n);
	pst_tls_fp_format(md, cert_pin, PST_TLS_FP_BUFSIZE);
	len = i2d_PUBKEY(key, &der);
	EVP_Digest(der, (size_t)len, md, &n, EVP_sha256(), NULL);
	OPENSSL_free(der);
	pst_tls_fp_format(md, spki_pin, PST_TLS_FP_BUFSIZE);
}

#define PKI_FILE(field, name)						\
	snprintf(pki->field, sizeof(pki->field), "%s/%s", pki->dir, name)

int
pki_make(struct test_pki *pki)
{
	EVP_PKEY *cak, *sk, *wk, *selfk, *ck, *ok;
	X509 *ca, *srv, *wrong, *self, *cli;
	char link[PKI_PATH_MAX + 32], unused[PST_TLS_FP_BUFSIZE];
	FILE *fp;
	int rc = -1;

	memset(pki, 0, sizeof(*pki));
	snprintf(pki->dir, sizeof(pki->dir), "/tmp/postern-tls-XXXXXX");
	if (mkdtemp(pki->dir) == NULL) {
		perror("mkdtemp");
		return -1;
	}
	PKI_FILE(ca, "ca.pem");
	PKI_FILE(ca_dir, "cadir");
	PKI_FILE(server_cert, "server.pem");
	PKI_FILE(server_key, "server.key");
	PKI_FILE(wrong_cert, "wrong.pem");
	PKI_FILE(wrong_key, "wrong.key");
	PKI_FILE(self_cert, "self.pem");
	PKI_FILE(self_key, "self.key");
	PKI_FILE(client_cert, "client.pem");
	PKI_FILE(client_key, "client.key");
	PKI_FILE(client_both, "client-both.pem");
	PKI_FILE(other_key, "other.key");
	PKI_FILE(encrypted_key, "encrypted.key");
	PKI_FILE(garbage, "garbage.pem");
	PKI_FILE(missing, "missing.pem");

	cak = EVP_EC_gen("P-256");
	sk = EVP_EC_gen("P-256");
	wk = EVP_EC_gen("P-256");
	selfk = EVP_EC_gen("P-256");
	ck = EVP_EC_gen("P-256");
	ok = EVP_EC_gen("P-256");
	ca = make_cert(cak, "postern test CA", NULL, NULL, NULL, 1, 1);
	srv = make_cert(sk, "localhost", "DNS:localhost,IP:127.0.0.1", ca,
	    cak, 0, 2);
	wrong = make_cert(wk, "wrong.example", "DNS:wrong.example", ca, cak,
	    0, 3);
	self = make_cert(selfk, "localhost", "DNS:localhost,IP:127.0.0.1",
	    NULL, NULL, 0, 4);
	cli = make_cert(ck, "postern client", NULL, ca, cak, 0, 5);
	if (ca == NULL || srv == NULL || wrong == NULL || self == NULL ||
	    cli == NULL || ok == NULL) {
		fprintf(stderr, "pki: cannot make certificates\n");
		goto out;
	}
	snprintf(link, sizeof(link), "%s/%08lx.0", pki->ca_dir,
	    X509_subject_name_hash(ca));
	if (write_cert(pki->ca, ca) == -1 || mkdir(pki->ca_dir, 0700) == -1 ||
	    write_cert(link, ca) == -1 ||
	    write_cert(pki->server_cert, srv) == -1 ||
	    write_key(pki->server_key, sk, NULL) == -1 ||
	    write_cert(pki->wrong_cert, wrong) == -1 ||
	    write_key(pki->wrong_key, wk, NULL) == -1 ||
	    write_cert(pki->self_cert, self) == -1 ||
	    write_key(pki->self_key, selfk, NULL) == -1 ||
	    write_cert(pki->client_cert, cli) == -1 ||
	    write_key(pki->client_key, ck, NULL) == -1 ||
	    write_cert(pki->client_both, cli) == -1 ||
	    write_key(pki->client_both, ck, NULL) == -1 ||
	    write_key(pki->other_key, ok, NULL) == -1 ||
	    write_key(pki->encrypted_key, ck, "secret") == -1) {
		perror("pki: writing files");
		goto out;
	}
	if ((fp = fopen(pki->garbage, "w")) == NULL) {
		perror("pki: garbage");
		goto out;
	}
	fputs("this is not a certificate\n", fp);
	fclose(fp);
	pins(srv, sk, pki->server_cert_pin, pki->server_spki_pin);
	pins(self, selfk, pki->self_cert_pin, pki->self_spki_pin);
	pins(wrong, wk, pki->wrong_cert_pin, unused);
	rc = 0;
out:
	X509_free(ca);
	X509_free(srv);
	X509_free(wrong);
	X509_free(self);
	X509_free(cli);
	EVP_PKEY_free(cak);
	EVP_PKEY_free(sk);
	EVP_PKEY_free(wk);
	EVP_PKEY_free(selfk);
	EVP_PKEY_free(ck);
	EVP_PKEY_free(ok);
	return rc;
}

static int
remove_one(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	return remove(path);
}

void
pki_remove(struct test_pki *pki)
{
	if (pki->dir[0] == '\0' || strncmp(pki->dir, "/tmp/postern-tls-",
	    17) != 0)
		return;
	if (nftw(pki->dir, remove_one, 8, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "pki: cannot remove %s\n", pki->dir);
	pki->dir[0] = '\0';
}
