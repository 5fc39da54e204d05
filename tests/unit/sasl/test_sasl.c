#include <stdbool.h>
#include <string.h>

#include <event2/buffer.h>

#include "sasl/sasl.h"
#include "sasl_test.h"

#define SCRAM	PST_SASL_SCRAM_SHA_256
#define CRAM	PST_SASL_CRAM_MD5
#define PLAIN	PST_SASL_PLAIN
#define LOGIN	PST_SASL_LOGIN
#define XOAUTH2	PST_SASL_XOAUTH2
#define PW	(SCRAM | CRAM | PLAIN | LOGIN)

/*
 * Base64.
 */

static const struct {
	const char	*raw;
	const char	*b64;
} b64_vectors[] = {
	/* RFC 4648 §10. */
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
	{ "Username:", "VXNlcm5hbWU6" },
	{ "\xff\xfe\xfd", "//79" },
	{ "\xfb\xef", "++8=" },
};

START_TEST(b64_round_trips)
{
	struct evbuffer *out = evbuffer_new();
	unsigned char raw[64];
	char enc[64];
	const char *why;
	size_t n, len = strlen(b64_vectors[_i].raw);

	ck_assert_int_eq(pst_sasl_b64_encode(
	    (const unsigned char *)b64_vectors[_i].raw, len, out), 0);
	n = evbuffer_get_length(out);
	ck_assert_uint_lt(n, sizeof(enc));
	evbuffer_remove(out, enc, n);
	enc[n] = '\0';
	ck_assert_str_eq(enc, b64_vectors[_i].b64);

	memset(raw, 0xaa, sizeof(raw));
	ck_assert_int_eq(pst_sasl_b64_decode(b64_vectors[_i].b64,
	    strlen(b64_vectors[_i].b64), raw, sizeof(raw), &n, &why), 0);
	ck_assert_uint_eq(n, len);
	ck_assert(memcmp(raw, b64_vectors[_i].raw, len) == 0);
	/* Padding bytes are not written past the decoded length. */
	ck_assert_uint_eq(raw[len], 0xaa);
	evbuffer_free(out);
}
END_TEST

static const char *const b64_garbage[] = {
	"Zg=", "Zg", "Z", "Zg=a", "Z===", "====", "Zm9v\r\n", " Zm9v",
	"Zm9v ", "Zm 9", "Zm9v!A==", "Zm9-", "Zm9_", "Zm9v\tA==",
	"Zm=v", "=m9v", "Zm9vYmFy====", "Zm9vYg==Zm9v", "Zm8=Zm8=",
	"5.7.8 Username and Password not accepted",
};

START_TEST(b64_refuses_garbage)
{
	unsigned char raw[64];
	const char *why = NULL;
	size_t n = 99;

	ck_assert_msg(pst_sasl_b64_decode(b64_garbage[_i],
	    strlen(b64_garbage[_i]), raw, sizeof(raw), &n, &why) == -1,
	    "\"%s\" accepted", b64_garbage[_i]);
	ck_assert_str_eq(why, "not base64");
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(b64_refuses_nul_and_too_long)
{
	unsigned char raw[4];
	const char *why = NULL;
	size_t n;

	ck_assert_int_eq(pst_sasl_b64_decode("Zm\0v", 4, raw, sizeof(raw), &n,
	    &why), -1);
	ck_assert_int_eq(pst_sasl_b64_decode("Zm9vYmFy", 8, raw, sizeof(raw),
	    &n, &why), -1);
	ck_assert_str_eq(why, "too long");
	/* Exactly full is fine: "foob" is 4 bytes. */
	ck_assert_int_eq(pst_sasl_b64_decode("Zm9vYg==", 8, raw, sizeof(raw),
	    &n, &why), 0);
	ck_assert_uint_eq(n, 4);
}
END_TEST

/*
 * Names.
 */

START_TEST(names_are_case_insensitive)
{
	const struct pst_sasl_mech *m;

	m = pst_sasl_by_name("scram-sha-256", 13);
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(m->name, "SCRAM-SHA-256");
	ck_assert_uint_eq(m->bit, SCRAM);
	ck_assert_ptr_eq(pst_sasl_by_name("Cram-MD5", 8),
	    pst_sasl_by_bit(CRAM));
	ck_assert_ptr_eq(pst_sasl_by_name("PLAINX", 5), pst_sasl_by_bit(PLAIN));
	ck_assert_ptr_null(pst_sasl_by_name("PLAIN", 4));
	ck_assert_ptr_null(pst_sasl_by_name("SCRAM-SHA-256-PLUS", 18));
	ck_assert_ptr_null(pst_sasl_by_name("DIGEST-MD5", 10));
	ck_assert_ptr_null(pst_sasl_by_name("", 0));
	ck_assert_ptr_null(pst_sasl_by_bit(PLAIN | LOGIN));
}
END_TEST

START_TEST(mask_parse_reads_config_names)
{
	static const char *const names[] = { "plain", "SCRAM-SHA-256",
	    "Login" };
	struct pst_err err;
	unsigned mask = 123;

	ck_assert_int_eq(pst_sasl_mask_parse(names, NELEMS(names), &mask,
	    &err), 0);
	ck_assert_uint_eq(mask, PLAIN | SCRAM | LOGIN);
}
END_TEST

START_TEST(mask_parse_names_the_unknown)
{
	static const char *const names[] = { "PLAIN", "DIGEST-MD5" };
	struct pst_err err;
	unsigned mask;

	ck_assert_int_eq(pst_sasl_mask_parse(names, NELEMS(names), &mask,
	    &err), -1);
	ck_assert_int_eq(err.cls, PST_LOCAL);
	ck_assert_int_eq(err.stage, PST_STAGE_CONFIG);
	ck_assert_ptr_nonnull(strstr(err.text, "\"DIGEST-MD5\""));
	ck_assert_ptr_nonnull(strstr(err.text,
	    "SCRAM-SHA-256 CRAM-MD5 PLAIN LOGIN XOAUTH2"));
	ck_assert_int_eq(pst_sasl_mask_parse(names, 0, &mask, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.text, "empty"));
}
END_TEST

START_TEST(mask_format_is_strongest_first)
{
	char buf[128];

	ck_assert_str_eq(pst_sasl_mask_format(LOGIN | SCRAM | PLAIN, buf,
	    sizeof(buf)), "SCRAM-SHA-256 PLAIN LOGIN");
	ck_assert_str_eq(pst_sasl_mask_format(0, buf, sizeof(buf)), "none");
	ck_assert_str_eq(pst_sasl_mask_format(PST_SASL_ALL, buf, 20),
	    "SCRAM-SHA-256");
	ck_assert_str_eq(pst_sasl_mask_format(1u << 20, buf, sizeof(buf)),
	    "none");
}
END_TEST

START_TEST(table_is_ordered_by_strength)
{
	static const unsigned order[] = { SCRAM, CRAM, PLAIN, LOGIN,
	    XOAUTH2 };
	size_t i;

	for (i = 1; i < NELEMS(order); i++)
		ck_assert_int_gt(pst_sasl_by_bit(order[i - 1])->strength,
		    pst_sasl_by_bit(order[i])->strength);
	ck_assert(pst_sasl_by_bit(PLAIN)->flags & PST_SASL_F_CLEARTEXT);
	ck_assert(pst_sasl_by_bit(LOGIN)->flags & PST_SASL_F_CLEARTEXT);
	ck_assert(pst_sasl_by_bit(XOAUTH2)->flags & PST_SASL_F_CLEARTEXT);
	ck_assert(!(pst_sasl_by_bit(CRAM)->flags & PST_SASL_F_CLEARTEXT));
	ck_assert(!(pst_sasl_by_bit(SCRAM)->flags & PST_SASL_F_CLEARTEXT));
	ck_assert(pst_sasl_by_bit(SCRAM)->flags & PST_SASL_F_MUTUAL);
}
END_TEST

/*
 * Choosing.
 */

static const struct {
	unsigned	 server;
	unsigned	 allowed;
	bool		 tls;
	bool		 plaintext;
	unsigned	 want;		/* 0: none */
} choose_vectors[] = {
	{ PST_SASL_ALL, PW, true, false, SCRAM },
	{ CRAM | PLAIN | LOGIN, PW, true, false, CRAM },
	{ PLAIN | LOGIN, PW, true, false, PLAIN },
	{ LOGIN, PW, true, false, LOGIN },
	{ LOGIN | XOAUTH2, PW, true, false, LOGIN },
	{ LOGIN | XOAUTH2, XOAUTH2, true, false, XOAUTH2 },
	/* The allow list excludes. */
	{ SCRAM | PLAIN, PLAIN, true, false, PLAIN },
	{ SCRAM | CRAM, PLAIN | LOGIN, true, false, 0 },
	{ PLAIN, 0, true, false, 0 },
	{ 0, PW, true, false, 0 },
	/* No TLS: nothing that sends the password in clear... */
	{ PLAIN | LOGIN, PW, false, false, 0 },
	{ PLAIN | LOGIN | XOAUTH2, PST_SASL_ALL, false, false, 0 },
	{ CRAM | PLAIN, PW, false, false, CRAM },
	{ SCRAM | LOGIN, PW, false, false, SCRAM },
	/* ...unless the configuration says so. */
	{ PLAIN | LOGIN, PW, false, true, PLAIN },
	{ LOGIN, PW, false, true, LOGIN },
	{ XOAUTH2, XOAUTH2, false, true, XOAUTH2 },
	{ XOAUTH2, XOAUTH2, false, false, 0 },
	/* Bits nobody knows are ignored. */
	{ 0xffffffe0u, PST_SASL_ALL, true, true, 0 },
};

START_TEST(choose_vectors_pick_the_strongest_usable)
{
	const struct pst_sasl_mech *m;

	m = pst_sasl_choose(choose_vectors[_i].server,
	    choose_vectors[_i].allowed, choose_vectors[_i].tls,
	    choose_vectors[_i].plaintext);
	if (choose_vectors[_i].want == 0) {
		ck_assert_msg(m == NULL, "vector %d chose %s", _i, m->name);
		return;
	}
	ck_assert_msg(m != NULL, "vector %d chose nothing", _i);
	ck_assert_uint_eq(m->bit, choose_vectors[_i].want);
}
END_TEST

static const struct {
	unsigned	 failed;
	int		 code;
	unsigned	 server;
	bool		 tls;
	unsigned	 want;		/* 0: give up */
} next_vectors[] = {
	/* 535 after challenge-response: straight to a cleartext one. */
	{ SCRAM, 535, SCRAM | CRAM | PLAIN | LOGIN, true, PLAIN },
	{ CRAM, 535, CRAM | PLAIN | LOGIN, true, PLAIN },
	{ CRAM, 535, CRAM | LOGIN, true, LOGIN },
	{ SCRAM, 535, SCRAM | CRAM, true, 0 },
	/* ...but never a cleartext one without TLS. */
	{ SCRAM, 535, SCRAM | PLAIN, false, 0 },
	/* 535 after the password went in clear: stop. */
	{ PLAIN, 535, PLAIN | LOGIN, true, 0 },
	{ LOGIN, 535, LOGIN, true, 0 },
	/* 504: the server did not know it; the secret was not tried. */
	{ SCRAM, 504, SCRAM | CRAM | PLAIN, true, CRAM },
	{ PLAIN, 504, PLAIN | LOGIN, true, LOGIN },
	{ PLAIN, 504, PLAIN | LOGIN, false, 0 },
	{ LOGIN, 504, PST_SASL_ALL, true, 0 },
	/* Temporary trouble, policy, or a failure on our side: stop. */
	{ SCRAM, 454, SCRAM | PLAIN, true, 0 },
	{ SCRAM, 534, SCRAM | PLAIN, true, 0 },
	{ SCRAM, 538, SCRAM | PLAIN, true, 0 },
	{ SCRAM, 0, SCRAM | PLAIN, true, 0 },
	{ CRAM, 501, CRAM | PLAIN, true, 0 },
};

START_TEST(next_vectors_fall_back_only_where_safe)
{
	const struct pst_sasl_mech *m;

	m = pst_sasl_next(pst_sasl_by_bit(next_vectors[_i].failed),
	    next_vectors[_i].code, next_vectors[_i].server, PW,
	    next_vectors[_i].tls, false);
	if (next_vectors[_i].want == 0) {
		ck_assert_msg(m == NULL, "vector %d: next %s", _i, m->name);
		return;
	}
	ck_assert_msg(m != NULL, "vector %d: no next", _i);
	ck_assert_uint_eq(m->bit, next_vectors[_i].want);
}
END_TEST

START_TEST(next_always_ends)
{
	const struct pst_sasl_mech *m;
	int tries = 0;

	m = pst_sasl_choose(PST_SASL_ALL, PST_SASL_ALL, true, true);
	while (m != NULL && tries < 10) {
		tries++;
		m = pst_sasl_next(m, 504, PST_SASL_ALL, PST_SASL_ALL, true,
		    true);
	}
	ck_assert_int_eq(tries, 5);
	ck_assert_ptr_null(pst_sasl_next(NULL, 504, PST_SASL_ALL,
	    PST_SASL_ALL, true, true));
}
END_TEST

START_TEST(why_none_explains)
{
	struct pst_err err;

	ck_assert_int_eq(pst_sasl_why_none(0, PW, true, false, &err), -1);
	ck_assert_int_eq(err.cls, PST_LOCAL);
	ck_assert_int_eq(err.stage, PST_STAGE_AUTH);
	ck_assert_ptr_nonnull(strstr(err.text, "offers no"));

	pst_sasl_why_none(SCRAM | CRAM, PLAIN | LOGIN, true, false, &err);
	ck_assert_ptr_nonnull(strstr(err.text, "in common"));
	ck_assert_ptr_nonnull(strstr(err.text, "SCRAM-SHA-256 CRAM-MD5"));
	ck_assert_ptr_nonnull(strstr(err.text, "allows PLAIN LOGIN"));

	pst_sasl_why_none(PLAIN | LOGIN, PW, false, false, &err);
	ck_assert_ptr_nonnull(strstr(err.text, "in clear"));
	ck_assert_ptr_nonnull(strstr(err.text, "allow_plaintext"));
}
END_TEST

START_TEST(creds_mask_separates_passwords_and_tokens)
{
	struct pst_creds pw = { "u", "p", PST_CREDS_PASSWORD };
	struct pst_creds tok = { "u", "t", PST_CREDS_TOKEN };

	ck_assert_uint_eq(pst_sasl_creds_mask(&pw), PW);
	ck_assert_uint_eq(pst_sasl_creds_mask(&tok), XOAUTH2);
	/* With a password, a server offering only XOAUTH2 gets nothing. */
	ck_assert_ptr_null(pst_sasl_choose(XOAUTH2,
	    PST_SASL_ALL & pst_sasl_creds_mask(&pw), true, false));
}
END_TEST

/*
 * The exchange.
 */

static const struct {
	unsigned		 mech;
	const char		*user;
	const char		*secret;
	enum pst_creds_kind	 kind;
	const char		*why;
} bad_creds[] = {
	{ XOAUTH2, "u", "p", PST_CREDS_PASSWORD, "needs an OAuth" },
	{ PLAIN, "u", "t", PST_CREDS_TOKEN, "needs a password" },
	{ SCRAM, "u", "t", PST_CREDS_TOKEN, "needs a password" },
	{ PLAIN, "", "p", PST_CREDS_PASSWORD, "no user name" },
	{ PLAIN, NULL, "p", PST_CREDS_PASSWORD, "no user name" },
	{ PLAIN, "u", "", PST_CREDS_PASSWORD, "no password" },
	{ XOAUTH2, "u", "", PST_CREDS_TOKEN, "no token" },
	{ PLAIN, "u\nRCPT TO:<x>", "p", PST_CREDS_PASSWORD, "control" },
	{ XOAUTH2, "u\001", "t", PST_CREDS_TOKEN, "control" },
	{ XOAUTH2, "u", "ya29.a\001b", PST_CREDS_TOKEN, "token" },
	{ XOAUTH2, "u", "ya29 x", PST_CREDS_TOKEN, "token" },
};

START_TEST(new_refuses_unfit_credentials)
{
	struct pst_creds c = { bad_creds[_i].user, bad_creds[_i].secret,
	    bad_creds[_i].kind };
	struct pst_err err;

	ck_assert_ptr_null(pst_sasl_new(pst_sasl_by_bit(bad_creds[_i].mech),
	    &c, &err));
	ck_assert_int_eq(err.cls, PST_LOCAL);
	ck_assert_int_eq(err.stage, PST_STAGE_AUTH);
	ck_assert_msg(strstr(err.text, bad_creds[_i].why) != NULL,
	    "vector %d: \"%s\"", _i, err.text);
}
END_TEST

START_TEST(new_refuses_overlong_credentials)
{
	static char big[PST_SASL_SECRET_MAX + 2];
	struct pst_creds c = { "u", big, PST_CREDS_PASSWORD };
	struct pst_err err;

	memset(big, 'a', sizeof(big) - 1);
	ck_assert_ptr_null(pst_sasl_new(pst_sasl_by_bit(PLAIN), &c, &err));
	ck_assert_ptr_nonnull(strstr(err.text, "longer than"));
	big[PST_SASL_USER_MAX + 1] = '\0';
	c.user = big;
	c.secret = "p";
	ck_assert_ptr_null(pst_sasl_new(pst_sasl_by_bit(PLAIN), &c, &err));
	ck_assert_ptr_nonnull(strstr(err.text, "user name longer"));
	big[PST_SASL_USER_MAX] = '\0';
	pst_sasl_free(pst_sasl_new(pst_sasl_by_bit(PLAIN), &c, &err));
	ck_assert_ptr_null(pst_sasl_new(NULL, &c, &err));
}
END_TEST

START_TEST(exchange_refuses_bad_challenges)
{
	static const char *const bad[] = {
		"334-VXNlcm5hbWU6\r\n334 VXNlcm5hbWU6\r\n",	/* 2 lines */
		"334 not base64 at all\r\n",
		"334 VXNlcm5hbWU\r\n",				/* cut */
		"334 VXNlcm5hbWU6==\r\n",
		"235 2.7.0 Authentication successful\r\n",	/* not 334 */
		"535 5.7.8 Error: authentication failed\r\n",
	};
	struct pst_creds c = { "tim", "tanstaaftanstaaf",
	    PST_CREDS_PASSWORD };
	struct evbuffer *out = evbuffer_new();
	struct pst_sasl *s;
	struct pst_err err;
	size_t i;

	for (i = 0; i < NELEMS(bad); i++) {
		s = pst_sasl_new(pst_sasl_by_bit(LOGIN), &c, &err);
		ck_assert_ptr_nonnull(s);
		ck_assert_int_eq(pst_sasl_start(s, out, &err), 0);
		evbuffer_drain(out, evbuffer_get_length(out));
		ck_assert_int_eq(pst_sasl_step(s, reply_of(bad[i]), out,
		    &err), -1);
		ck_assert_int_eq(err.cls, PST_TEMP);
		ck_assert_int_eq(err.stage, PST_STAGE_AUTH);
		/* Nothing goes out after a bad challenge. */
		ck_assert_uint_eq(evbuffer_get_length(out), 0);
		pst_sasl_free(s);
	}
	evbuffer_free(out);
}
END_TEST

START_TEST(exchange_runs_in_order)
{
	struct pst_creds c = { "tim", "tanstaaftanstaaf",
	    PST_CREDS_PASSWORD };
	struct evbuffer *out = evbuffer_new();
	struct pst_sasl *s;
	struct pst_err err;

	s = pst_sasl_new(pst_sasl_by_bit(CRAM), &c, &err);
	ck_assert_ptr_eq(pst_sasl_mech(s), pst_sasl_by_bit(CRAM));
	ck_assert_int_eq(pst_sasl_step(s, reply_of("334 PDE+\r\n"), out,
	    &err), -1);
	ck_assert_int_eq(err.cls, PST_LOCAL);
	ck_assert_int_eq(pst_sasl_start(s, out, &err), 0);
	ck_assert_int_eq(pst_sasl_start(s, out, &err), -1);
	ck_assert_int_eq(err.cls, PST_LOCAL);
	pst_sasl_free(s);
	pst_sasl_free(NULL);
	evbuffer_free(out);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("sasl/sasl");
	TCase *tc;

	tc = tcase_create("base64");
	tcase_add_loop_test(tc, b64_round_trips, 0, NELEMS(b64_vectors));
	tcase_add_loop_test(tc, b64_refuses_garbage, 0, NELEMS(b64_garbage));
	tcase_add_test(tc, b64_refuses_nul_and_too_long);
	suite_add_tcase(s, tc);

	tc = tcase_create("names");
	tcase_add_test(tc, names_are_case_insensitive);
	tcase_add_test(tc, mask_parse_reads_config_names);
	tcase_add_test(tc, mask_parse_names_the_unknown);
	tcase_add_test(tc, mask_format_is_strongest_first);
	tcase_add_test(tc, table_is_ordered_by_strength);
	suite_add_tcase(s, tc);

	tc = tcase_create("choose");
	tcase_add_loop_test(tc, choose_vectors_pick_the_strongest_usable, 0,
	    NELEMS(choose_vectors));
	tcase_add_loop_test(tc, next_vectors_fall_back_only_where_safe, 0,
	    NELEMS(next_vectors));
	tcase_add_test(tc, next_always_ends);
	tcase_add_test(tc, why_none_explains);
	tcase_add_test(tc, creds_mask_separates_passwords_and_tokens);
	suite_add_tcase(s, tc);

	tc = tcase_create("exchange");
	tcase_add_loop_test(tc, new_refuses_unfit_credentials, 0,
	    NELEMS(bad_creds));
	tcase_add_test(tc, new_refuses_overlong_credentials);
	tcase_add_test(tc, exchange_refuses_bad_challenges);
	tcase_add_test(tc, exchange_runs_in_order);
	suite_add_tcase(s, tc);
	return s;
}
