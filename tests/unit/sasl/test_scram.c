#include <string.h>

#include <event2/buffer.h>

#include "sasl/sasl.h"
#include "sasl_test.h"

/* RFC 7677 §3. */
#define RFC_CNONCE	"rOprNGfwEbeRWgbNEkqO"
#define RFC_NONCE	RFC_CNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_FIRST	"r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_FINAL	"c=biws,r=" RFC_NONCE \
			",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_VERIFY	"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static const struct pst_creds rfc_creds = { "user", "pencil",
    PST_CREDS_PASSWORD };

/* The random source of the RFC example: the bytes of its nonce. */
static int
rfc_random(void *arg, unsigned char *buf, size_t len)
{
	size_t n = raw_of(RFC_CNONCE, buf, len);

	ck_assert_uint_eq(n, len);
	return 0;
}

static int
no_random(void *arg, unsigned char *buf, size_t len)
{
	return -1;
}

/* Sends 'raw' as a 334 challenge; returns step's result. */
static int
send_chal(struct pst_sasl *s, const char *raw, struct evbuffer *out,
    struct pst_err *err)
{
	char wire[1024];

	return pst_sasl_step(s, reply_of(challenge_of(raw, strlen(raw), wire,
	    sizeof(wire))), out, err);
}

/* Takes the next line of 'out' and decodes it into 'buf' as a string. */
static const char *
take_raw(struct evbuffer *out, char *buf, size_t len)
{
	char line[1024];
	size_t n;

	n = raw_of(take_line(out, line, sizeof(line)), (unsigned char *)buf,
	    len - 1);
	buf[n] = '\0';
	return buf;
}

/* An exchange with the RFC nonce, its client-first already sent. */
static struct pst_sasl *
rfc_exchange(const struct pst_creds *c, struct evbuffer *out)
{
	struct pst_sasl *s;
	struct pst_err err;
	char line[256];

	s = pst_sasl_new(pst_sasl_by_bit(PST_SASL_SCRAM_SHA_256), c, &err);
	ck_assert_ptr_nonnull(s);
	pst_sasl_set_random(s, rfc_random, NULL);
	ck_assert_int_eq(pst_sasl_start(s, out, &err), 0);
	take_line(out, line, sizeof(line));
	return s;
}

START_TEST(scram_rfc7677_example)
{
	struct evbuffer *out = evbuffer_new();
	struct pst_sasl *s;
	struct pst_err err;
	char line[256], raw[256];

	s = pst_sasl_new(pst_sasl_by_bit(PST_SASL_SCRAM_SHA_256), &rfc_creds,
	    &err);
	ck_assert_ptr_nonnull(s);
	pst_sasl_set_random(s, rfc_random, NULL);
	ck_assert_int_eq(pst_sasl_start(s, out, &err), 0);
	take_line(out, line, sizeof(line));
	ck_assert(strncmp(line, "AUTH SCRAM-SHA-256 ", 19) == 0);
	raw[raw_of(line + 19, (unsigned char *)raw, sizeof(raw) - 1)] = '\0';
	ck_assert_str_eq(raw, "n,,n=user,r=" RFC_CNONCE);

	ck_assert_int_eq(send_chal(s, RFC_FIRST, out, &err), 0);
	ck_assert_str_eq(take_raw(out, raw, sizeof(raw)), RFC_FINAL);

	/* RFC 4954 §4: the server-final gets an empty response. */
	ck_assert_int_eq(send_chal(s, RFC_VERIFY, out, &err), 0);
	ck_assert_str_eq(take_line(out, line, sizeof(line)), "");
	ck_assert_uint_eq(evbuffer_get_length(out), 0);
	ck_assert_int_eq(pst_sasl_done(s, reply_of(
	    "235 2.7.0 Authentication successful\r\n"), &err), 0);
	pst_sasl_free(s);
	evbuffer_free(out);
}
END_TEST

START_TEST(scram_refuses_a_wrong_server_signature)
{
	struct evbuffer *out = evbuffer_new();
	struct pst_sasl *s = rfc_exchange(&rfc_creds, out);
	struct pst_err err;
	char raw[256];

	ck_assert_int_eq(send_chal(s, RFC_FIRST, out, &err), 0);
	take_raw(out, raw, sizeof(raw));
	ck_assert_int_eq(send_chal(s,
	    "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", out, &err), -1);
	ck_assert_int_eq(err.cls, PST_TEMP);
	ck_assert_int_eq(err.stage, PST_STAGE_AUTH);
	ck_assert_ptr_nonnull(strstr(err.text, "does not verify"));
	ck_assert_uint_eq(evbuffer_get_length(out), 0);
	/* And a 235 after that is not believed either. */
	ck_assert_int_eq(pst_sasl_done(s, reply_of("235 2.7.0 ok\r\n"), &err),
	    -1);
	pst_sasl_free(s);
	evbuffer_free(out);
}
END_TEST

START_TEST(scram_refuses_a_signature_for_another_password)
{
	static const struct pst_creds other = { "user", "pencil2",
	    PST_CREDS_PASSWORD };
	struct evbuffer *out = evbuffer_new();
	struct pst_sasl *s = rfc_exchange(&other, out);
	struct pst_err err;
	char raw[256];

	ck_assert_int_eq(send_chal(s, RFC_FIRST, out, &err), 0);
	ck_assert_str_ne(take_raw(out, raw, sizeof(raw)), RFC_FINAL);
	ck_assert_int_eq(send_chal(s, RFC_VERIFY, out, &err), -1);
	pst_sasl_free(s);
	evbuffer_free(out);
}
END_TEST

START_TEST(scram_refuses_235_without_server_proof)
{
	struct evbuffer *out = evbuffer_new();
	struct pst_sasl *s = rfc_exchange(&rfc_creds, out);
	struct pst_err err;
	char raw[256];

	ck_assert_int_eq(send_chal(s, RFC_FIRST, out, &err), 0);
	take_raw(out, raw, sizeof(raw));
	ck_assert_int_eq(pst_sasl_done(s, reply_of(
	    "235 2.7.0 Authentication successful\r\n"), &err), -1);
	ck_assert_int_eq(err.cls, PST_TEMP);
	ck_assert_ptr_nonnull(strstr(err.text, "without proving"));
	pst_sasl_free(s);

	/* Straight after the client-first, too. */
	s = rfc_exchange(&rfc_creds, out);
	ck_assert_int_eq(pst_sasl_done(s, reply_of("235 ok\r\n"), &err), -1);
	pst_sasl_free(s);
	evbuffer_free(out);
}
END_TEST

START_TEST(scram_takes_server_proof_in_the_235)
{
	struct evbuffer *out = evbuffer_new();
	struct pst_sasl *s = rfc_exchange(&rfc_creds, out);
	struct pst_err err;
	char raw[256];

	ck_assert_int_eq(send_chal(s, RFC_FIRST, out, &err), 0);
	take_raw(out, raw, sizeof(raw));
	ck_assert_int_eq(pst_sasl_done(s, reply_of("235 2.7.0 dj02cnJpVFJCaT"
	    "IzV3BSUi93dHVwK21NaFVaVW4vZEI1bkxUSlJzamw5NUc0PQ==\r\n"), &err),
	    0);
	pst_sasl_free(s);

	/* A wrong one there is refused with the reason. */
	s = rfc_exchange(&rfc_creds, out);
	ck_assert_int_eq(send_chal(s, RFC_FIRST, out, &err), 0);
	take_raw(out, raw, sizeof(raw));
	ck_assert_int_eq(pst_sasl_done(s, reply_of("235 2.7.0 dj03cnJpVFJCaT"
	    "IzV3BSUi93dHVwK21NaFVaVW4vZEI1bkxUSlJzamw5NUc0PQ==\r\n"), &err),
	    -1);
	ck_assert_ptr_nonnull(strstr(err.text, "does not verify"));
	pst_sasl_free(s);
	evbuffer_free(out);
}
END_TEST

static const struct {
	const char	*first;
	const char	*why;
} bad_firsts[] = {
	{ "r=" RFC_CNONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
	    "does not extend" },
	{ "r=someoneelse%hv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
	    "does not extend" },
	{ "r=" RFC_NONCE " x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
	    "does not extend" },
	{ "r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095", "below 4096" },
	{ "r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1", "below 4096" },
	{ "r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=999999999",
	    "too high" },
	{ "r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=10000000000",
	    "iteration" },
	{ "r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=04096", "iteration" },
	{ "r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=", "iteration" },
	{ "r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4k", "iteration" },
	{ "r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096", "salt" },
	{ "r=" RFC_NONCE ",s=,i=4096", "salt" },
	{ "r=" RFC_NONCE ",i=4096,s=W22ZaJ0SNY7soEsUEjb6gQ==", "malformed" },
	{ "r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==", "malformed" },
	{ "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "malformed" },
	{ "", "malformed" },
	{ "m=ext,r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
	    "extension" },
	{ "e=other-error", "server error" },
	{ "r=" RFC_NONCE "\x01,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
	    "not printable" },
};

START_TEST(scram_refuses_bad_server_first)
{
	struct evbuffer *out = evbuffer_new();
	struct pst_sasl *s = rfc_exchange(&rfc_creds, out);
	struct pst_err err;

	ck_assert_int_eq(send_chal(s, bad_firsts[_i].first, out, &err), -1);
	ck_assert_int_eq(err.cls, PST_TEMP);
	ck_assert_msg(strstr(err.text, bad_firsts[_i].why) != NULL,
	    "vector %d: \"%s\"", _i, err.text);
	ck_assert_uint_eq(evbuffer_get_length(out), 0);
	/* The exchange is over: nothing more is answered. */
	ck_assert_int_eq(send_chal(s, RFC_FIRST, out, &err), -1);
	pst_sasl_free(s);
	evbuffer_free(out);
}
END_TEST

START_TEST(scram_accepts_extensions_after_the_count)
{
	struct evbuffer *out = evbuffer_new();
	struct pst_sasl *s = rfc_exchange(&rfc_creds, out);
	struct pst_err err;
	char raw[256];

	ck_assert_int_eq(send_chal(s, RFC_FIRST ",x=future", out, &err), 0);
	ck_assert(strncmp(take_raw(out, raw, sizeof(raw)), "c=biws,r=",
	    9) == 0);
	pst_sasl_free(s);
	evbuffer_free(out);
}
END_TEST

START_TEST(scram_reports_the_server_error)
{
	struct evbuffer *out = evbuffer_new();
	struct pst_sasl *s = rfc_exchange(&rfc_creds, out);
	struct pst_err err;
	char raw[256];

	ck_assert_int_eq(send_chal(s, RFC_FIRST, out, &err), 0);
	take_raw(out, raw, sizeof(raw));
	ck_assert_int_eq(send_chal(s, "e=invalid-proof", out, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.text, "invalid-proof"));
	ck_assert_uint_eq(evbuffer_get_length(out), 0);
	pst_sasl_free(s);

	s = rfc_exchange(&rfc_creds, out);
	ck_assert_int_eq(send_chal(s, RFC_FIRST, out, &err), 0);
	take_raw(out, raw, sizeof(raw));
	ck_assert_int_eq(send_chal(s, "x=what", out, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.text, "malformed server-final"));
	pst_sasl_free(s);
	evbuffer_free(out);
}
END_TEST

START_TEST(scram_refuses_a_challenge_after_the_proof)
{
	struct evbuffer *out = evbuffer_new();
	struct pst_sasl *s = rfc_exchange(&rfc_creds, out);
	struct pst_err err;
	char raw[256];

	ck_assert_int_eq(send_chal(s, RFC_FIRST, out, &err), 0);
	take_raw(out, raw, sizeof(raw));
	ck_assert_int_eq(send_chal(s, RFC_VERIFY, out, &err), 0);
	take_raw(out, raw, sizeof(raw));
	ck_assert_int_eq(send_chal(s, RFC_VERIFY, out, &err), -1);
	ck_assert_uint_eq(evbuffer_get_length(out), 0);
	pst_sasl_free(s);
	evbuffer_free(out);
}
END_TEST

START_TEST(scram_escapes_the_user_name)
{
	static const struct pst_creds c = { "a,b=c", "pencil",
	    PST_CREDS_PASSWORD };
	struct evbuffer *out = evbuffer_new();
	struct pst_sasl *s;
	struct pst_err err;
	char line[256], raw[256];

	s = pst_sasl_new(pst_sasl_by_bit(PST_SASL_SCRAM_SHA_256), &c, &err);
	pst_sasl_set_random(s, rfc_random, NULL);
	ck_assert_int_eq(pst_sasl_start(s, out, &err), 0);
	take_line(out, line, sizeof(line));
	raw[raw_of(line + 19, (unsigned char *)raw, sizeof(raw) - 1)] = '\0';
	/* RFC 5802 §5.1: saslname. */
	ck_assert_str_eq(raw, "n,,n=a=2Cb=3Dc,r=" RFC_CNONCE);
	pst_sasl_free(s);
	evbuffer_free(out);
}
END_TEST

START_TEST(scram_nonces_differ)
{
	struct evbuffer *out = evbuffer_new();
	struct pst_sasl *a, *b;
	struct pst_err err;
	char la[256], lb[256];

	a = pst_sasl_new(pst_sasl_by_bit(PST_SASL_SCRAM_SHA_256), &rfc_creds,
	    &err);
	b = pst_sasl_new(pst_sasl_by_bit(PST_SASL_SCRAM_SHA_256), &rfc_creds,
	    &err);
	ck_assert_int_eq(pst_sasl_start(a, out, &err), 0);
	take_line(out, la, sizeof(la));
	ck_assert_int_eq(pst_sasl_start(b, out, &err), 0);
	take_line(out, lb, sizeof(lb));
	ck_assert_str_ne(la, lb);
	ck_assert_uint_eq(strlen(la), strlen(lb));
	pst_sasl_free(a);
	pst_sasl_free(b);
	evbuffer_free(out);
}
END_TEST

START_TEST(scram_needs_randomness)
{
	struct evbuffer *out = evbuffer_new();
	struct pst_sasl *s;
	struct pst_err err;

	s = pst_sasl_new(pst_sasl_by_bit(PST_SASL_SCRAM_SHA_256), &rfc_creds,
	    &err);
	pst_sasl_set_random(s, no_random, NULL);
	ck_assert_int_eq(pst_sasl_start(s, out, &err), -1);
	ck_assert_int_eq(err.cls, PST_LOCAL);
	ck_assert_uint_eq(evbuffer_get_length(out), 0);
	pst_sasl_free(s);
	evbuffer_free(out);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("sasl/scram");
	TCase *tc = tcase_create("scram");

	tcase_add_test(tc, scram_rfc7677_example);
	tcase_add_test(tc, scram_refuses_a_wrong_server_signature);
	tcase_add_test(tc, scram_refuses_a_signature_for_another_password);
	tcase_add_test(tc, scram_refuses_235_without_server_proof);
	tcase_add_test(tc, scram_takes_server_proof_in_the_235);
	tcase_add_loop_test(tc, scram_refuses_bad_server_first, 0,
	    NELEMS(bad_firsts));
	tcase_add_test(tc, scram_accepts_extensions_after_the_count);
	tcase_add_test(tc, scram_reports_the_server_error);
	tcase_add_test(tc, scram_refuses_a_challenge_after_the_proof);
	tcase_add_test(tc, scram_escapes_the_user_name);
	tcase_add_test(tc, scram_nonces_differ);
	tcase_add_test(tc, scram_needs_randomness);
	suite_add_tcase(s, tc);
	return s;
}
