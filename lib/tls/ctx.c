/*
 * ctx.c: TLS policy -> OpenSSL client context.
 *
 * Everything a policy names is checked here, once, with an error that
 * says which setting is wrong and why; a context that comes out of
 * pst_tls_ctx_new() can make connections.  The order matters: cipher
 * settings and the security level come first because they decide which
 * protocol versions are usable, then the versions are weighed, then trust
 * anchors and the client certificate are loaded.
 *
 * A version is usable when OpenSSL was built with it, at least one cipher
 * of the context works with it, and, for TLSv1 and TLSv1.1, the security
 * level is 0: OpenSSL 3 forbids the SHA-1 and MD5 signatures those
 * versions need from level 1 on, so their handshakes fail ("legacy sigalg
 * disallowed") even though a ClientHello can still be built.
 *
 * The context never prompts for a passphrase (an encrypted key is an
 * error) and keeps no policy: per-connection parts (pins, verify flag,
 * peer name) travel with pst_tls_upgrade().
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/opensslv.h>
#include <openssl/ssl.h>

#include "common/err.h"
#include "tls/ctx.h"
#include "tls/policy.h"
#include "tls/text.h"
#include "tls/verify.h"

#define ENCRYPTED_SCAN_MAX	65536	/* key file bytes looked at */

/* OpenSSL's number for each version, oldest first. */
static const struct {
	unsigned	 bit;
	int		 proto;		/* OpenSSL's *_VERSION */
} versions[] = {
	{ PST_TLS_V1, TLS1_VERSION },
	{ PST_TLS_V1_1, TLS1_1_VERSION },
	{ PST_TLS_V1_2, TLS1_2_VERSION },
	{ PST_TLS_V1_3, TLS1_3_VERSION },
};
#define NVERSIONS	(sizeof(versions) / sizeof(versions[0]))

/* RFC 8446 appendix B.4, as OpenSSL names them. */
static const char *const tls13_suites[] = {
	"TLS_AES_128_GCM_SHA256",
	"TLS_AES_256_GCM_SHA384",
	"TLS_CHACHA20_POLY1305_SHA256",
	"TLS_AES_128_CCM_SHA256",
	"TLS_AES_128_CCM_8_SHA256",
};

static bool	 contiguous(unsigned);
static int	 no_passphrase(char *, int, int, void *);
static int	 check_file(const char *, const char *, struct pst_err *);
static bool	 file_says_encrypted(const char *);
static int	 config_err(struct pst_err *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static int	 config_ssl_err(struct pst_err *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static int	 check_ciphersuites(const char *, struct pst_err *);
static const char *version_unusable(SSL_CTX *, size_t, char *, size_t);
static int	 set_versions(SSL_CTX *, const struct pst_tls_policy *,
		    struct pst_tls_report *, struct pst_err *);
static int	 load_trust(SSL_CTX *, const struct pst_tls_policy *,
		    struct pst_err *);
static int	 load_client_cert(SSL_CTX *, const struct pst_tls_policy *,
		    struct pst_err *);

static bool
contiguous(unsigned mask)
{
	if (mask == 0)
		return false;
	while ((mask & 1) == 0)
		mask >>= 1;
	return (mask & (mask + 1)) == 0;
}

/* A key needing a passphrase is an error, never a terminal prompt. */
static int
no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	return -1;
}

static int
config_err(struct pst_err *err, const char *fmt, ...)
{
	char text[PST_ERR_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	ERR_clear_error();
	return pst_err_set(err, PST_LOCAL, PST_STAGE_CONFIG, "%s", text);
}

/* Like config_err(), with OpenSSL's reasons appended. */
static int
config_ssl_err(struct pst_err *err, const char *fmt, ...)
{
	char text[PST_ERR_TEXT_MAX], why[PST_ERR_TEXT_MAX];
	struct tls_errq q;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	tls_errq_take(&q);
	tls_errq_format(&q, why, sizeof(why));
	if (why[0] != '\0') {
		tls_strlcat(text, ": ", sizeof(text));
		tls_strlcat(text, why, sizeof(text));
	}
	return pst_err_set(err, PST_LOCAL, PST_STAGE_CONFIG, "%s", text);
}

/* Says why 'path' cannot be read, before OpenSSL says it less clearly. */
static int
check_file(const char *what, const char *path, struct pst_err *err)
{
	struct stat st;
	FILE *fp;

	if (strnlen(path, PST_TLS_PATH_MAX + 1) > PST_TLS_PATH_MAX)
		return config_err(err, "%s: path longer than %d bytes", what,
		    PST_TLS_PATH_MAX);
	if ((fp = fopen(path, "r")) == NULL)
		return pst_err_sys(err, PST_LOCAL, PST_STAGE_CONFIG, errno,
		    "%s %s", what, path);
	if (fstat(fileno(fp), &st) == -1 || !S_ISREG(st.st_mode)) {
		fclose(fp);
		return config_err(err, "%s %s: not a regular file", what,
		    path);
	}
	fclose(fp);
	return 0;
}

static bool
file_says_encrypted(const char *path)
{
	char buf[4096 + 1];
	size_t n, total = 0;
	bool yes = false;
	FILE *fp;

	if ((fp = fopen(path, "r")) == NULL)
		return false;
	/*
	 * Both PKCS#8 "BEGIN ENCRYPTED PRIVATE KEY" and the traditional
	 * "Proc-Type: 4,ENCRYPTED".  A marker cut by a read boundary is
	 * missed; the error then names OpenSSL's reason instead.
	 */
	while (!yes && total < ENCRYPTED_SCAN_MAX &&
	    (n = fread(buf, 1, sizeof(buf) - 1, fp)) > 0) {
		buf[n] = '\0';
		yes = strstr(buf, "ENCRYPTED") != NULL;
		total += n;
	}
	fclose(fp);
	return yes;
}

static int
check_ciphersuites(const char *list, struct pst_err *err)
{
	const char *p, *end;
	size_t len, i;

	for (p = list; *p != '\0'; p = *end == '\0' ? end : end + 1) {
		end = strchr(p, ':');
		if (end == NULL)
			end = p + strlen(p);
		len = (size_t)(end - p);
		for (i = 0; i < sizeof(tls13_suites) / sizeof(tls13_suites[0]);
		    i++) {
			if (strlen(tls13_suites[i]) == len &&
			    strncmp(tls13_suites[i], p, len) == 0)
				break;
		}
		if (i == sizeof(tls13_suites) / sizeof(tls13_suites[0]))
			return config_err(err, "unknown TLSv1.3 ciphersuite "
			    "\"%.*s\" (known: TLS_AES_256_GCM_SHA384, "
			    "TLS_CHACHA20_POLY1305_SHA256, "
			    "TLS_AES_128_GCM_SHA256, TLS_AES_128_CCM_SHA256, "
			    "TLS_AES_128_CCM_8_SHA256)", (int)(len > 64 ? 64 :
			    len), p);
	}
	return 0;
}

/*
 * Why versions[i] cannot be used with 'ctx' as configured so far, or
 * NULL when it can.
 */
static const char *
version_unusable(SSL_CTX *ctx, size_t i, char *buf, size_t len)
{
	STACK_OF(SSL_CIPHER) *sk;
	const char *why = NULL;
	SSL *ssl;

#ifdef OPENSSL_NO_TLS1
	if (versions[i].proto == TLS1_VERSION)
		return "not built into this OpenSSL";
#endif
#ifdef OPENSSL_NO_TLS1_1
	if (versions[i].proto == TLS1_1_VERSION)
		return "not built into this OpenSSL";
#endif
#if OPENSSL_VERSION_MAJOR >= 3
	if (versions[i].proto < TLS1_2_VERSION &&
	    SSL_CTX_get_security_level(ctx) > 0) {
		snprintf(buf, len, "OpenSSL 3 allows it only at security "
		    "level 0, this context has level %d",
		    SSL_CTX_get_security_level(ctx));
		return buf;
	}
#endif
	if ((ssl = SSL_new(ctx)) == NULL)
		return "out of memory";
	if (SSL_set_min_proto_version(ssl, versions[i].proto) != 1 ||
	    SSL_set_max_proto_version(ssl, versions[i].proto) != 1) {
		why = "not built into this OpenSSL";
	} else {
		sk = SSL_get1_supported_ciphers(ssl);
		if (sk == NULL || sk_SSL_CIPHER_num(sk) == 0)
			why = versions[i].proto == TLS1_3_VERSION ?
			    "no TLSv1.3 ciphersuite is enabled" :
			    "no enabled cipher works with it";
		sk_SSL_CIPHER_free(sk);
	}
	SSL_free(ssl);
	ERR_clear_error();
	return why;
}

static int
set_versions(SSL_CTX *ctx, const struct pst_tls_policy *policy,
    struct pst_tls_report *report, struct pst_err *err)
{
	char names[64], part[160], whybuf[96];
	const char *name;
	const char *why;
	unsigned enabled = 0, dropped = 0;
	int lo = 0, hi = 0;
	size_t i;

	if (policy->versions == 0)
		return config_err(err, "no TLS version allowed");
	if ((policy->versions & ~PST_TLS_V_ALL) != 0)
		return config_err(err, "unknown TLS version bits 0x%x",
		    policy->versions & ~PST_TLS_V_ALL);
	if (!contiguous(policy->versions))
		return config_err(err, "TLS versions %s leave a gap: OpenSSL "
		    "can only offer a contiguous range",
		    pst_tls_versions_format(policy->versions, names,
		    sizeof(names)));

	for (i = 0; i < NVERSIONS; i++) {
		if ((policy->versions & versions[i].bit) == 0)
			continue;
		if ((why = version_unusable(ctx, i, whybuf,
		    sizeof(whybuf))) == NULL) {
			enabled |= versions[i].bit;
			continue;
		}
		name = pst_tls_version_name(versions[i].bit);
		if (policy->vpolicy == PST_TLS_STRICT)
			return config_err(err, "TLS version %s is not usable "
			    "with %s: %s; remove it from the allowed versions "
			    "or use the downgrade policy", name,
			    OpenSSL_version(OPENSSL_VERSION), why);
		dropped |= versions[i].bit;
		if (report != NULL) {
			snprintf(part, sizeof(part), "%s%s dropped: %s",
			    report->text[0] != '\0' ? "; " : "", name, why);
			tls_strlcat(report->text, part, sizeof(report->text));
		}
	}
	if (enabled == 0)
		return config_err(err, "none of the allowed TLS versions (%s) "
		    "is usable with %s at security level %d",
		    pst_tls_versions_format(policy->versions, names,
		    sizeof(names)), OpenSSL_version(OPENSSL_VERSION),
		    SSL_CTX_get_security_level(ctx));
	/* Dropping only ever takes versions off the ends. */
	if (!contiguous(enabled))
		return config_err(err, "the usable TLS versions (%s) leave "
		    "a gap", pst_tls_versions_format(enabled, names,
		    sizeof(names)));

	for (i = 0; i < NVERSIONS; i++) {
		if ((enabled & versions[i].bit) == 0)
			continue;
		if (lo == 0)
			lo = versions[i].proto;
		hi = versions[i].proto;
	}
	if (SSL_CTX_set_min_proto_version(ctx, lo) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, hi) != 1)
		return config_ssl_err(err, "cannot set the TLS versions");
	if (report != NULL) {
		report->enabled = enabled;
		report->dropped = dropped;
	}
	return 0;
}

static int
load_trust(SSL_CTX *ctx, const struct pst_tls_policy *policy,
    struct pst_err *err)
{
	struct stat st;

	if (policy->ca_file == NULL && policy->ca_path == NULL) {
		if (SSL_CTX_set_default_verify_paths(ctx) != 1)
			return config_ssl_err(err,
			    "cannot load the system trust store");
		return 0;
	}
	if (policy->ca_file != NULL) {
		if (check_file("CA file", policy->ca_file, err) == -1)
			return -1;
		if (SSL_CTX_load_verify_file(ctx, policy->ca_file) != 1)
			return config_ssl_err(err, "CA file %s: no usable "
			    "certificate", policy->ca_file);
	}
	if (policy->ca_path != NULL) {
		if (strnlen(policy->ca_path, PST_TLS_PATH_MAX + 1) >
		    PST_TLS_PATH_MAX)
			return config_err(err, "CA directory: path longer "
			    "than %d bytes", PST_TLS_PATH_MAX);
		if (stat(policy->ca_path, &st) == -1)
			return pst_err_sys(err, PST_LOCAL, PST_STAGE_CONFIG,
			    errno, "CA directory %s", policy->ca_path);
		if (!S_ISDIR(st.st_mode))
			return config_err(err, "CA directory %s: not a "
			    "directory", policy->ca_path);
		if (SSL_CTX_load_verify_dir(ctx, policy->ca_path) != 1)
			return config_ssl_err(err, "CA directory %s",
			    policy->ca_path);
	}
	return 0;
}

static int
load_client_cert(SSL_CTX *ctx, const struct pst_tls_policy *policy,
    struct pst_err *err)
{
	char why[PST_ERR_TEXT_MAX / 2];
	struct tls_errq q;
	const char *key;

	if (policy->cert == NULL) {
		if (policy->key != NULL)
			return config_err(err, "client key %s given without "
			    "a client certificate", policy->key);
		return 0;
	}
	key = policy->key != NULL ? policy->key : policy->cert;
	if (check_file("client certificate", policy->cert, err) == -1)
		return -1;
	if (key != policy->cert &&
	    check_file("client key", key, err) == -1)
		return -1;
	if (SSL_CTX_use_certificate_chain_file(ctx, policy->cert) != 1)
		return config_ssl_err(err, "client certificate %s: not a "
		    "PEM certificate", policy->cert);
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		tls_errq_take(&q);
		if (tls_errq_has(&q, ERR_LIB_X509, X509_R_KEY_VALUES_MISMATCH))
			return config_err(err, "client key %s does not match "
			    "the client certificate %s", key, policy->cert);
		if (file_says_encrypted(key))
			return config_err(err, "client key %s is encrypted: "
			    "postern needs it without a passphrase", key);
		return config_err(err, "client key %s: not a PEM private "
		    "key: %s", key, tls_errq_format(&q, why, sizeof(why)));
	}
	if (SSL_CTX_check_private_key(ctx) != 1)
		return config_err(err, "client key %s does not match the "
		    "client certificate %s", key, policy->cert);
	return 0;
}

SSL_CTX *
pst_tls_ctx_new(const struct pst_tls_policy *policy,
    struct pst_tls_report *report, struct pst_err *err)
{
	struct pst_tls_pin pin;
	const char *why;
	SSL_CTX *ctx;
	size_t i;

	pst_err_clear(err);
	ERR_clear_error();
	if (report != NULL) {
		memset(report, 0, sizeof(*report));
		report->requested = policy->versions;
	}
	if (policy->npins > PST_TLS_PINS_MAX) {
		config_err(err, "%zu fingerprints: at most %d are allowed",
		    policy->npins, PST_TLS_PINS_MAX);
		return NULL;
	}
	for (i = 0; i < policy->npins; i++) {
		if (pst_tls_pin_parse(policy->pins[i], &pin, &why) == -1) {
			config_err(err, "fingerprint %zu (\"%.110s\"): %s",
			    i + 1, policy->pins[i] != NULL ? policy->pins[i] :
			    "", why);
			return NULL;
		}
	}
	if (policy->security_level < -1 || policy->security_level > 5) {
		config_err(err, "TLS security level %d: must be 0 to 5",
		    policy->security_level);
		return NULL;
	}

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		config_ssl_err(err, "cannot create a TLS context");
		return NULL;
	}
	/*
	 * libevent 2.1 reports a close without close_notify as an error
	 * unless OpenSSL calls it an EOF.  Renegotiation would run the
	 * certificate check again outside pst_tls_upgrade().
	 */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, tls_cert_verify, NULL);

	if (policy->ciphers != NULL) {
		if (strnlen(policy->ciphers, PST_TLS_CIPHERS_MAX + 1) >
		    PST_TLS_CIPHERS_MAX) {
			config_err(err, "cipher list longer than %d bytes",
			    PST_TLS_CIPHERS_MAX);
			goto fail;
		}
		if (SSL_CTX_set_cipher_list(ctx, policy->ciphers) != 1) {
			config_err(err, "cipher list \"%.100s\" selects no "
			    "cipher", policy->ciphers);
			goto fail;
		}
	}
	if (policy->ciphersuites != NULL) {
		if (strnlen(policy->ciphersuites, PST_TLS_CIPHERS_MAX + 1) >
		    PST_TLS_CIPHERS_MAX) {
			config_err(err, "ciphersuites longer than %d bytes",
			    PST_TLS_CIPHERS_MAX);
			goto fail;
		}
		if (check_ciphersuites(policy->ciphersuites, err) == -1)
			goto fail;
		if (SSL_CTX_set_ciphersuites(ctx, policy->ciphersuites) != 1) {
			config_ssl_err(err, "ciphersuites \"%.100s\"",
			    policy->ciphersuites);
			goto fail;
		}
	}
	if (policy->security_level >= 0)
		SSL_CTX_set_security_level(ctx, policy->security_level);

	if (set_versions(ctx, policy, report, err) == -1 ||
	    load_trust(ctx, policy, err) == -1 ||
	    load_client_cert(ctx, policy, err) == -1)
		goto fail;
	ERR_clear_error();
	return ctx;

fail:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	if (report != NULL) {
		report->enabled = 0;
		report->dropped = 0;
	}
	return NULL;
}
