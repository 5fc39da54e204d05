/*
 * test_ctx.c: the SSL_CTX built from a policy, including every error
 * pst_tls_ctx_new() promises.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "common/err.h"
#include "pki.h"
#include "tls/ctx.h"
#include "tls/policy.h"
#include "unit.h"

static struct test_pki pki;

static void
pki_setup(void)
{
	ck_assert_int_eq(pki_make(&pki), 0);
}

static void
pki_teardown(void)
{
	pki_remove(&pki);
}

START_TEST(ctx_defaults_enable_tls12_and_tls13)
{
	struct pst_tls_policy p;
	struct pst_tls_report r;
	struct pst_err err;
	SSL_CTX *ctx;

	pst_tls_policy_init(&p);
	ck_assert_uint_eq(p.versions, PST_TLS_V1_2 | PST_TLS_V1_3);
	ck_assert(p.verify);
	ctx = pst_tls_ctx_new(&p, &r, &err);
	ck_assert_msg(ctx != NULL, "%s", err.text);
	ck_assert_int_eq(err.cls, PST_OK);
	ck_assert_uint_eq(r.enabled, PST_TLS_V1_2 | PST_TLS_V1_3);
	ck_assert_uint_eq(r.dropped, 0);
	ck_assert_str_eq(r.text, "");
	ck_assert_int_eq(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	ck_assert_int_eq(SSL_CTX_get_max_proto_version(ctx), TLS1_3_VERSION);
	ck_assert(SSL_CTX_get_options(ctx) & SSL_OP_IGNORE_UNEXPECTED_EOF);
	ck_assert(SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_free(ctx);
}
END_TEST

START_TEST(ctx_downgrade_drops_tls1_and_reports_it)
{
	struct pst_tls_policy p;
	struct pst_tls_report r;
	struct pst_err err;
	SSL_CTX *ctx;

	pst_tls_policy_init(&p);
	p.versions = PST_TLS_V_ALL;
	ctx = pst_tls_ctx_new(&p, &r, &err);
	ck_assert_msg(ctx != NULL, "%s", err.text);
	ck_assert_uint_eq(r.requested, PST_TLS_V_ALL);
	ck_assert_uint_eq(r.dropped, PST_TLS_V1 | PST_TLS_V1_1);
	ck_assert_uint_eq(r.enabled, PST_TLS_V1_2 | PST_TLS_V1_3);
	ck_assert_msg(strstr(r.text, "TLSv1 dropped: ") != NULL &&
	    strstr(r.text, "TLSv1.1 dropped: ") != NULL &&
	    strstr(r.text, "security level 0") != NULL, "%s", r.text);
	ck_assert_int_eq(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	SSL_CTX_free(ctx);

	/* The report is optional. */
	ctx = pst_tls_ctx_new(&p, NULL, &err);
	ck_assert_ptr_nonnull(ctx);
	SSL_CTX_free(ctx);
}
END_TEST

START_TEST(ctx_strict_refuses_tls1_naming_it)
{
	struct pst_tls_policy p;
	struct pst_err err;

	pst_tls_policy_init(&p);
	p.vpolicy = PST_TLS_STRICT;
	p.versions = PST_TLS_V1 | PST_TLS_V1_1 | PST_TLS_V1_2;
	ck_assert_ptr_null(pst_tls_ctx_new(&p, NULL, &err));
	ck_assert_int_eq(err.cls, PST_LOCAL);
	ck_assert_int_eq(err.stage, PST_STAGE_CONFIG);
	ck_assert_msg(strstr(err.text, "TLS version TLSv1 is not usable") !=
	    NULL && strstr(err.text, "security level") != NULL, "%s",
	    err.text);
}
END_TEST

START_TEST(ctx_security_level_0_makes_tls1_usable)
{
	struct pst_tls_policy p;
	struct pst_tls_report r;
	struct pst_err err;
	SSL_CTX *ctx;

	pst_tls_policy_init(&p);
	p.vpolicy = PST_TLS_STRICT;
	p.versions = PST_TLS_V_ALL;
	p.security_level = 0;
	ctx = pst_tls_ctx_new(&p, &r, &err);
	ck_assert_msg(ctx != NULL, "%s", err.text);
	ck_assert_uint_eq(r.enabled, PST_TLS_V_ALL);
	ck_assert_int_eq(SSL_CTX_get_security_level(ctx), 0);
	ck_assert_int_eq(SSL_CTX_get_min_proto_version(ctx), TLS1_VERSION);
	SSL_CTX_free(ctx);
}
END_TEST

START_TEST(ctx_downgrade_with_nothing_left_fails)
{
	struct pst_tls_policy p;
	struct pst_tls_report r;
	struct pst_err err;

	pst_tls_policy_init(&p);
	p.versions = PST_TLS_V1 | PST_TLS_V1_1;
	ck_assert_ptr_null(pst_tls_ctx_new(&p, &r, &err));
	ck_assert_msg(strstr(err.text, "none of the allowed TLS versions "
	    "(TLSv1, TLSv1.1)") != NULL, "%s", err.text);
	ck_assert_uint_eq(r.enabled, 0);
}
END_TEST

START_TEST(ctx_empty_ciphersuites_drop_tls13)
{
	struct pst_tls_policy p;
	struct pst_tls_report r;
	struct pst_err err;
	SSL_CTX *ctx;

	pst_tls_policy_init(&p);
	p.ciphersuites = "";
	ctx = pst_tls_ctx_new(&p, &r, &err);
	ck_assert_msg(ctx != NULL, "%s", err.text);
	ck_assert_uint_eq(r.dropped, PST_TLS_V1_3);
	ck_assert_ptr_nonnull(strstr(r.text, "no TLSv1.3 ciphersuite"));
	ck_assert_int_eq(SSL_CTX_get_max_proto_version(ctx), TLS1_2_VERSION);
	SSL_CTX_free(ctx);

	p.vpolicy = PST_TLS_STRICT;
	ck_assert_ptr_null(pst_tls_ctx_new(&p, &r, &err));
	ck_assert_ptr_nonnull(strstr(err.text, "TLSv1.3 is not usable"));
}
END_TEST

START_TEST(ctx_accepts_cert_with_key_in_same_file)
{
	struct pst_tls_policy p;
	struct pst_err err;
	SSL_CTX *ctx;

	pst_tls_policy_init(&p);
	p.cert = pki.client_both;
	p.ca_file = pki.ca;
	p.ca_path = pki.ca_dir;
	ctx = pst_tls_ctx_new(&p, NULL, &err);
	ck_assert_msg(ctx != NULL, "%s", err.text);
	SSL_CTX_free(ctx);
}
END_TEST

/* Policies that must be refused, and a word the error must contain. */
enum bad_kind {
	BAD_NO_VERSIONS, BAD_UNKNOWN_BITS, BAD_GAP, BAD_PIN, BAD_PIN_COUNT,
	BAD_LEVEL, BAD_CIPHERS, BAD_SUITES, BAD_CA_MISSING, BAD_CA_GARBAGE,
	BAD_CA_DIR_FILE, BAD_CA_DIR_MISSING, BAD_CERT_MISSING,
	BAD_CERT_GARBAGE, BAD_KEY_MISSING, BAD_KEY_MISMATCH,
	BAD_KEY_ENCRYPTED, BAD_KEY_GARBAGE, BAD_KEY_ALONE, BAD_CERT_NO_KEY,
	BAD_CIPHERS_HUGE,
};

static const struct {
	enum bad_kind	 kind;
	const char	*want;
} bad_vectors[] = {
	{ BAD_NO_VERSIONS, "no TLS version allowed" },
	{ BAD_UNKNOWN_BITS, "unknown TLS version bits 0x10" },
	{ BAD_GAP, "TLS versions TLSv1.1, TLSv1.3 leave a gap" },
	{ BAD_PIN, "fingerprint 2 (\"sha256:zz\"): not a hex digit" },
	{ BAD_PIN_COUNT, "17 fingerprints: at most 16" },
	{ BAD_LEVEL, "security level 6: must be 0 to 5" },
	{ BAD_CIPHERS, "cipher list \"NO-SUCH-CIPHER\" selects no cipher" },
	{ BAD_SUITES, "unknown TLSv1.3 ciphersuite \"TLS_NOPE\"" },
	{ BAD_CA_MISSING, "No such file or directory" },
	{ BAD_CA_GARBAGE, "no usable certificate" },
	{ BAD_CA_DIR_FILE, "not a directory" },
	{ BAD_CA_DIR_MISSING, "No such file or directory" },
	{ BAD_CERT_MISSING, "client certificate" },
	{ BAD_CERT_GARBAGE, "not a PEM certificate" },
	{ BAD_KEY_MISSING, "client key" },
	{ BAD_KEY_MISMATCH, "does not match the client certificate" },
	{ BAD_KEY_ENCRYPTED, "is encrypted" },
	{ BAD_KEY_GARBAGE, "not a PEM private key" },
	{ BAD_KEY_ALONE, "given without a client certificate" },
	{ BAD_CERT_NO_KEY, "not a PEM private key" },
	{ BAD_CIPHERS_HUGE, "cipher list longer than" },
};

START_TEST(ctx_refuses_bad_policies)
{
	static char huge[PST_TLS_CIPHERS_MAX + 10];
	const char *pins[PST_TLS_PINS_MAX + 1];
	struct pst_tls_policy p;
	struct pst_tls_report r;
	struct pst_err err;
	size_t i;

	pst_tls_policy_init(&p);
	for (i = 0; i < NELEMS(pins); i++)
		pins[i] = pki.server_cert_pin;
	switch (bad_vectors[_i].kind) {
	case BAD_NO_VERSIONS:
		p.versions = 0;
		break;
	case BAD_UNKNOWN_BITS:
		p.versions = PST_TLS_V1_3 | 0x10;
		break;
	case BAD_GAP:
		p.versions = PST_TLS_V1_1 | PST_TLS_V1_3;
		break;
	case BAD_PIN:
		pins[1] = "sha256:zz";
		p.pins = pins;
		p.npins = 2;
		break;
	case BAD_PIN_COUNT:
		p.pins = pins;
		p.npins = NELEMS(pins);
		break;
	case BAD_LEVEL:
		p.security_level = 6;
		break;
	case BAD_CIPHERS:
		p.ciphers = "NO-SUCH-CIPHER";
		break;
	case BAD_SUITES:
		p.ciphersuites = "TLS_AES_256_GCM_SHA384:TLS_NOPE";
		break;
	case BAD_CA_MISSING:
		p.ca_file = pki.missing;
		break;
	case BAD_CA_GARBAGE:
		p.ca_file = pki.garbage;
		break;
	case BAD_CA_DIR_FILE:
		p.ca_path = pki.ca;
		break;
	case BAD_CA_DIR_MISSING:
		p.ca_path = pki.missing;
		break;
	case BAD_CERT_MISSING:
		p.cert = pki.missing;
		p.key = pki.client_key;
		break;
	case BAD_CERT_GARBAGE:
		p.cert = pki.garbage;
		p.key = pki.client_key;
		break;
	case BAD_KEY_MISSING:
		p.cert = pki.client_cert;
		p.key = pki.missing;
		break;
	case BAD_KEY_MISMATCH:
		p.cert = pki.client_cert;
		p.key = pki.other_key;
		break;
	case BAD_KEY_ENCRYPTED:
		p.cert = pki.client_cert;
		p.key = pki.encrypted_key;
		break;
	case BAD_KEY_GARBAGE:
		p.cert = pki.client_cert;
		p.key = pki.garbage;
		break;
	case BAD_KEY_ALONE:
		p.key = pki.client_key;
		break;
	case BAD_CERT_NO_KEY:
		p.cert = pki.client_cert;
		break;
	case BAD_CIPHERS_HUGE:
		memset(huge, 'A', sizeof(huge) - 1);
		p.ciphers = huge;
		break;
	}
	ck_assert_ptr_null(pst_tls_ctx_new(&p, &r, &err));
	ck_assert_int_eq(err.cls, PST_LOCAL);
	ck_assert_int_eq(err.stage, PST_STAGE_CONFIG);
	ck_assert_msg(strstr(err.text, bad_vectors[_i].want) != NULL,
	    "case %d: got \"%s\", want \"%s\"", _i, err.text,
	    bad_vectors[_i].want);
	ck_assert_uint_eq(r.enabled, 0);
}
END_TEST

START_TEST(ctx_missing_file_error_names_the_path)
{
	struct pst_tls_policy p;
	struct pst_err err;

	pst_tls_policy_init(&p);
	p.cert = pki.client_cert;
	p.key = pki.missing;
	ck_assert_ptr_null(pst_tls_ctx_new(&p, NULL, &err));
	ck_assert_ptr_nonnull(strstr(err.text, pki.missing));
	ck_assert_int_eq(err.sys_errno, ENOENT);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("tls/ctx");
	TCase *ctx = tcase_create("ctx");

	tcase_add_unchecked_fixture(ctx, pki_setup, pki_teardown);
	tcase_add_test(ctx, ctx_defaults_enable_tls12_and_tls13);
	tcase_add_test(ctx, ctx_downgrade_drops_tls1_and_reports_it);
	tcase_add_test(ctx, ctx_strict_refuses_tls1_naming_it);
	tcase_add_test(ctx, ctx_security_level_0_makes_tls1_usable);
	tcase_add_test(ctx, ctx_downgrade_with_nothing_left_fails);
	tcase_add_test(ctx, ctx_empty_ciphersuites_drop_tls13);
	tcase_add_test(ctx, ctx_accepts_cert_with_key_in_same_file);
	tcase_add_loop_test(ctx, ctx_refuses_bad_policies, 0,
	    NELEMS(bad_vectors));
	tcase_add_test(ctx, ctx_missing_file_error_names_the_path);
	suite_add_tcase(s, ctx);
	return s;
}
