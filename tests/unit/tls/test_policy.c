/*
 * test_policy.c: version names, pin syntax and the SSL_CTX built from a
 * policy, including every error pst_tls_ctx_new() promises.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "common/err.h"
#include "pki.h"
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

/*
 * Version names.
 */

static const struct {
	const char	*in;
	int		 ok;
	unsigned	 bit;
	const char	*why;		/* part of the reason */
} version_vectors[] = {
	{ "TLSv1", 1, PST_TLS_V1, NULL },
	{ "TLSv1.0", 1, PST_TLS_V1, NULL },
	{ "TLSv1.1", 1, PST_TLS_V1_1, NULL },
	{ "TLSv1.2", 1, PST_TLS_V1_2, NULL },
	{ "TLSv1.3", 1, PST_TLS_V1_3, NULL },
	{ "tlsv1.3", 1, PST_TLS_V1_3, NULL },
	{ "SSLv3", 0, 0, "SSL versions" },
	{ "sslv2", 0, 0, "SSL versions" },
	{ "TLSv1.4", 0, 0, "unknown" },
	{ "TLS1.2", 0, 0, "unknown" },
	{ "TLSv1.2 ", 0, 0, "unknown" },
	{ "", 0, 0, "empty" },
};

START_TEST(version_parse_vectors)
{
	const char *why = NULL;
	unsigned bit = 0x100;
	int rc;

	rc = pst_tls_version_parse(version_vectors[_i].in, &bit, &why);
	if (version_vectors[_i].ok) {
		ck_assert_msg(rc == 0, "\"%s\" refused: %s",
		    version_vectors[_i].in, why);
		ck_assert_uint_eq(bit, version_vectors[_i].bit);
	} else {
		ck_assert_msg(rc == -1, "\"%s\" accepted",
		    version_vectors[_i].in);
		ck_assert_uint_eq(bit, 0x100);
		ck_assert_ptr_nonnull(strstr(why, version_vectors[_i].why));
	}
}
END_TEST

START_TEST(version_names_format_in_order)
{
	char buf[64];

	ck_assert_str_eq(pst_tls_version_name(PST_TLS_V1_1), "TLSv1.1");
	ck_assert_str_eq(pst_tls_version_name(0x40), "?");
	ck_assert_str_eq(pst_tls_versions_format(PST_TLS_V1_3 | PST_TLS_V1,
	    buf, sizeof(buf)), "TLSv1, TLSv1.3");
	ck_assert_str_eq(pst_tls_versions_format(0, buf, sizeof(buf)),
	    "none");
	ck_assert_str_eq(pst_tls_versions_format(PST_TLS_V_ALL, buf, 10),
	    "TLSv1, TL");
}
END_TEST

/*
 * Pin syntax.
 */

#define HEX32C	"AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:" \
		"AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"
#define HEX32	"abcdef0123456789abcdef0123456789" \
		"abcdef0123456789abcdef0123456789"
#define HEX20C	"AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:" \
		"AB:CD:EF:01"

static const struct {
	const char	*in;
	const char	*why;		/* NULL: valid */
} pin_vectors[] = {
	{ "sha256:" HEX32C, NULL },
	{ "SHA256:" HEX32C, NULL },
	{ "sha256:" HEX32, NULL },
	{ "", "empty" },
	{ HEX32C, "missing \"sha256:\" prefix" },
	{ "sha1:" HEX20C, "SHA-1 and MD5" },
	{ "md5:AB:CD", "SHA-1 and MD5" },
	{ "sha256:", "no digits" },
	{ "sha256:" HEX32C ":", "ends with a colon" },
	{ "sha256:" HEX20C, "20 bytes is a SHA-1 fingerprint" },
	{ "sha256:AB:CD", "too short" },
	{ "sha256:" HEX32C ":AB", "too long" },
	{ "sha256:" HEX32 "ab", "too long" },
	{ "sha256:" HEX32 "a", "odd number" },
	{ "sha256:ABC", "odd number" },
	{ "sha256:GB:CD", "not a hex digit" },
	{ "sha256: AB:CD", "not a hex digit" },
	{ "sha256:AB:CD\n", "not a hex digit" },
	{ "sha256:A:BC", "two hex digits" },
	{ "sha256:AB:CDEF", "expected ':'" },
	{ "sha256:ABCD:EF", "every byte or none" },
	{ "sha256:AB::CD", "two hex digits" },
	{ "sha256 Fingerprint=" HEX32C, "missing \"sha256:\" prefix" },
};

START_TEST(pin_parse_vectors)
{
	struct pst_tls_pin pin;
	const char *why = NULL;
	int rc;

	memset(&pin, 0x5a, sizeof(pin));
	rc = pst_tls_pin_parse(pin_vectors[_i].in, &pin, &why);
	if (pin_vectors[_i].why == NULL) {
		ck_assert_msg(rc == 0, "\"%s\" refused: %s",
		    pin_vectors[_i].in, why);
		ck_assert_uint_eq(pin.sha256[0], 0xab);
		ck_assert_uint_eq(pin.sha256[31], 0x89);
	} else {
		ck_assert_msg(rc == -1, "\"%s\" accepted", pin_vectors[_i].in);
		ck_assert_msg(strstr(why, pin_vectors[_i].why) != NULL,
		    "\"%s\": got \"%s\", want \"%s\"", pin_vectors[_i].in,
		    why, pin_vectors[_i].why);
		ck_assert_uint_eq(pin.sha256[0], 0x5a);
	}
}
END_TEST

START_TEST(pin_parse_refuses_huge_input)
{
	static char big[100000];
	struct pst_tls_pin pin;
	const char *why;

	memcpy(big, "sha256:", 7);
	memset(big + 7, 'A', sizeof(big) - 8);
	ck_assert_int_eq(pst_tls_pin_parse(big, &pin, &why), -1);
	ck_assert_ptr_nonnull(strstr(why, "too long"));
}
END_TEST

START_TEST(fp_format_round_trips)
{
	unsigned char md[32];
	struct pst_tls_pin pin;
	char buf[PST_TLS_FP_BUFSIZE], small[12];
	const char *why;
	size_t i;

	for (i = 0; i < sizeof(md); i++)
		md[i] = (unsigned char)(i * 37 + 5);
	pst_tls_fp_format(md, buf, sizeof(buf));
	ck_assert_uint_eq(strlen(buf), PST_TLS_FP_STRLEN);
	ck_assert_int_eq(strncmp(buf, "sha256:05:2A:4F:", 16), 0);
	ck_assert_int_eq(pst_tls_pin_parse(buf, &pin, &why), 0);
	ck_assert_int_eq(memcmp(pin.sha256, md, 32), 0);
	ck_assert_str_eq(pst_tls_fp_format(md, small, sizeof(small)),
	    "sha256:05:2");
}
END_TEST

/* Runs 'cmd' and returns what follows the first '=' of its output. */
static int
digest_after_equals(const char *cmd, char *out, size_t len)
{
	char line[512], *eq, *end;
	FILE *fp;

	if ((fp = popen(cmd, "r")) == NULL)
		return -1;
	if (fgets(line, sizeof(line), fp) == NULL) {
		pclose(fp);
		return -1;
	}
	if (pclose(fp) != 0 || (eq = strchr(line, '=')) == NULL)
		return -1;
	eq++;
	while (*eq == ' ')
		eq++;
	if ((end = strchr(eq, '\n')) != NULL)
		*end = '\0';
	snprintf(out, len, "sha256:%s", eq);
	return 0;
}

START_TEST(pins_from_the_documented_openssl_commands_match)
{
	char cmd[512], got[256];
	struct pst_tls_pin a, b;
	const char *why;

	if (system("openssl version >/dev/null 2>&1") != 0)
		return;		/* no openssl(1) here: nothing to compare */
	snprintf(cmd, sizeof(cmd), "openssl x509 -in %s -noout -fingerprint "
	    "-sha256", pki.server_cert);
	ck_assert_int_eq(digest_after_equals(cmd, got, sizeof(got)), 0);
	ck_assert_msg(pst_tls_pin_parse(got, &a, &why) == 0, "%s: %s", got,
	    why);
	ck_assert_int_eq(pst_tls_pin_parse(pki.server_cert_pin, &b, &why), 0);
	ck_assert_int_eq(memcmp(a.sha256, b.sha256, 32), 0);

	snprintf(cmd, sizeof(cmd), "openssl x509 -in %s -noout -pubkey | "
	    "openssl pkey -pubin -outform DER | openssl dgst -sha256 -c",
	    pki.server_cert);
	ck_assert_int_eq(digest_after_equals(cmd, got, sizeof(got)), 0);
	ck_assert_msg(pst_tls_pin_parse(got, &a, &why) == 0, "%s: %s", got,
	    why);
	ck_assert_int_eq(pst_tls_pin_parse(pki.server_spki_pin, &b, &why), 0);
	ck_assert_int_eq(memcmp(a.sha256, b.sha256, 32), 0);
}
END_TEST

/*
 * Contexts.
 */

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
	Suite *s = suite_create("tls/policy");
	TCase *names = tcase_create("names");
	TCase *ctx = tcase_create("ctx");

	tcase_add_loop_test(names, version_parse_vectors, 0,
	    NELEMS(version_vectors));
	tcase_add_test(names, version_names_format_in_order);
	tcase_add_loop_test(names, pin_parse_vectors, 0, NELEMS(pin_vectors));
	tcase_add_test(names, pin_parse_refuses_huge_input);
	tcase_add_test(names, fp_format_round_trips);
	suite_add_tcase(s, names);

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
	tcase_add_test(ctx, pins_from_the_documented_openssl_commands_match);
	suite_add_tcase(s, ctx);
	return s;
}
