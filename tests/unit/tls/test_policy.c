/*
 * test_policy.c: version names and sets, pin syntax and fingerprints,
 * checked against what openssl(1) prints.
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

Suite *
unit_suite(void)
{
	Suite *s = suite_create("tls/policy");
	TCase *names = tcase_create("names");
	TCase *pins = tcase_create("pins");

	tcase_add_loop_test(names, version_parse_vectors, 0,
	    NELEMS(version_vectors));
	tcase_add_test(names, version_names_format_in_order);
	tcase_add_loop_test(names, pin_parse_vectors, 0, NELEMS(pin_vectors));
	tcase_add_test(names, pin_parse_refuses_huge_input);
	tcase_add_test(names, fp_format_round_trips);
	suite_add_tcase(s, names);

	tcase_add_unchecked_fixture(pins, pki_setup, pki_teardown);
	tcase_add_test(pins, pins_from_the_documented_openssl_commands_match);
	suite_add_tcase(s, pins);
	return s;
}
