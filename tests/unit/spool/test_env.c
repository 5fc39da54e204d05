#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "spool/spool.h"
#include "spool_test.h"
#include "unit.h"

#define ID	"0192f3c2a1b04e7f"

/* Every field set, with values that need escaping. */
static struct pst_spool_env *
full_env(void)
{
	struct pst_spool_env *env;
	struct pst_err err;

	env = pst_spool_env_new(&err);
	ck_assert_ptr_nonnull(env);
	memcpy(env->id, ID, sizeof(env->id));
	env->arrival = 1732638178;
	env->size = 123456789012ull;
	env->flags = PST_SPOOL_F_8BITMIME | PST_SPOOL_F_SMTPUTF8;
	env->ret = PST_SPOOL_RET_HDRS;
	env->attempts = 3;
	env->next_attempt = 1732639000;
	env->held = true;
	ck_assert_int_eq(pst_spool_env_set_origin(env,
	    "smtp [127.0.0.1]:43210 helo=\"a b\"", &err), 0);
	ck_assert_int_eq(pst_spool_env_set_envid(env, "QQ314159+2B%", &err),
	    0);
	ck_assert_int_eq(pst_spool_env_set_sender(env,
	    "\"john  doe \"@example.org", &err), 0);
	ck_assert_int_eq(pst_spool_env_add_rcpt(env, "bob@example.org",
	    PST_SPOOL_NOTIFY_SUCCESS | PST_SPOOL_NOTIFY_FAILURE,
	    "rfc822;bob@example.org", &err), 0);
	ck_assert_int_eq(pst_spool_env_add_rcpt(env,
	    "j\xc3\xb6rg@b\xc3\xbc" "cher.example", PST_SPOOL_NOTIFY_NEVER,
	    NULL, &err), 0);
	ck_assert_int_eq(pst_spool_env_add_rcpt(env, "carol@example.org", 0,
	    NULL, &err), 0);
	ck_assert_int_eq(pst_spool_env_set_result(env, 0,
	    PST_SPOOL_RCPT_DEFERRED, 451, "4.7.1", "greylisted; "
	    "100% sure\r\nend 0 0000000000000000", &err), 0);
	ck_assert_int_eq(pst_spool_env_set_result(env, 1,
	    PST_SPOOL_RCPT_DELIVERED, 250, "2.0.0", " ok ", &err), 0);
	ck_assert_int_eq(pst_spool_env_set_error(env, 421, "4.4.2",
	    "rcpt x\nrcpt.state delivered", &err), 0);
	return env;
}

static void
assert_env_eq(const struct pst_spool_env *a, const struct pst_spool_env *b)
{
	size_t i;

	ck_assert_str_eq(a->id, b->id);
	ck_assert_int_eq(a->arrival, b->arrival);
	ck_assert_uint_eq(a->size, b->size);
	ck_assert_pstr_eq(a->origin, b->origin);
	ck_assert_uint_eq(a->flags, b->flags);
	ck_assert_int_eq(a->ret, b->ret);
	ck_assert_pstr_eq(a->envid, b->envid);
	ck_assert_str_eq(a->sender, b->sender);
	ck_assert_uint_eq(a->attempts, b->attempts);
	ck_assert_int_eq(a->next_attempt, b->next_attempt);
	ck_assert_int_eq(a->last_code, b->last_code);
	ck_assert_str_eq(a->last_esc, b->last_esc);
	ck_assert_pstr_eq(a->last_error, b->last_error);
	ck_assert_int_eq(a->held, b->held);
	ck_assert_uint_eq(a->nrcpts, b->nrcpts);
	for (i = 0; i < a->nrcpts; i++) {
		ck_assert_str_eq(a->rcpts[i].addr, b->rcpts[i].addr);
		ck_assert_pstr_eq(a->rcpts[i].orcpt, b->rcpts[i].orcpt);
		ck_assert_uint_eq(a->rcpts[i].notify, b->rcpts[i].notify);
		ck_assert_int_eq(a->rcpts[i].state, b->rcpts[i].state);
		ck_assert_int_eq(a->rcpts[i].code, b->rcpts[i].code);
		ck_assert_str_eq(a->rcpts[i].esc, b->rcpts[i].esc);
		ck_assert_pstr_eq(a->rcpts[i].error, b->rcpts[i].error);
	}
}

START_TEST(env_round_trip_keeps_every_field)
{
	struct pst_spool_env *env, *back;
	struct pst_err err;
	char *rec, *rec2;
	size_t len, len2;

	env = full_env();
	ck_assert_int_eq(pst_spool_env_encode(env, &rec, &len, &err), 0);
	back = pst_spool_env_decode(rec, len, &err);
	ck_assert_msg(back != NULL, "decode: %s", err.text);
	assert_env_eq(env, back);
	/* One canonical form: encoding the copy gives the same bytes. */
	ck_assert_int_eq(pst_spool_env_encode(back, &rec2, &len2, &err), 0);
	ck_assert_uint_eq(len, len2);
	ck_assert(memcmp(rec, rec2, len) == 0);
	/* Texts from peers were defused, not refused. */
	ck_assert_str_eq(env->rcpts[0].error,
	    "greylisted; 100% sure??end 0 0000000000000000");
	ck_assert_str_eq(env->last_error, "rcpt x?rcpt.state delivered");
	ck_assert_uint_eq(pst_spool_env_pending(back), 2);
	free(rec);
	free(rec2);
	pst_spool_env_free(env);
	pst_spool_env_free(back);
}
END_TEST

START_TEST(env_record_is_text_with_one_value_per_line)
{
	struct pst_spool_env *env;
	struct pst_err err;
	size_t len, i, lines = 0;
	char *rec;

	env = full_env();
	ck_assert_int_eq(pst_spool_env_encode(env, &rec, &len, &err), 0);
	ck_assert(strncmp(rec, "postern-envelope 1\nid " ID "\n",
	    strlen("postern-envelope 1\nid " ID "\n")) == 0);
	for (i = 0; i < len; i++) {
		ck_assert_msg((rec[i] >= 0x20 && rec[i] < 0x7f) ||
		    rec[i] == '\n', "byte 0x%02x at %zu",
		    (unsigned char)rec[i], i);
		lines += rec[i] == '\n';
	}
	rec[len - 1] = '\0';
	ck_assert_ptr_nonnull(strstr(rec,
	    "\nsender \"john  doe \"@example.org\n"));
	ck_assert_ptr_nonnull(strstr(rec,
	    "\nrcpt j%C3%B6rg@b%C3%BCcher.example\n"));
	ck_assert_ptr_nonnull(strstr(rec, "\nenvid QQ314159+2B%25\n"));
	ck_assert_ptr_nonnull(strstr(rec, "\nrcpt.notify success,failure\n"));
	ck_assert_ptr_nonnull(strstr(rec, "\nrcpt.notify never\n"));
	ck_assert_ptr_nonnull(strstr(rec, "\nrcpt.error  ok \n"));
	ck_assert_uint_eq(lines, 32);
	free(rec);
	pst_spool_env_free(env);
}
END_TEST

START_TEST(env_null_sender_round_trips)
{
	struct pst_spool_env *env, *back;
	struct pst_err err;
	size_t len;
	char *rec;

	env = pst_spool_env_new(&err);
	memcpy(env->id, ID, sizeof(env->id));
	ck_assert_int_eq(pst_spool_env_set_sender(env, "", &err), 0);
	ck_assert_int_eq(pst_spool_env_add_rcpt(env, "a@b", 0, NULL, &err),
	    0);
	ck_assert_int_eq(pst_spool_env_encode(env, &rec, &len, &err), 0);
	ck_assert_ptr_nonnull(memmem(rec, len, "\nsender\n", 8));
	back = pst_spool_env_decode(rec, len, &err);
	ck_assert_ptr_nonnull(back);
	ck_assert_str_eq(back->sender, "");
	ck_assert_int_eq(back->arrival, 0);
	ck_assert_ptr_null(back->origin);
	ck_assert_int_eq(back->ret, PST_SPOOL_RET_UNSET);
	free(rec);
	pst_spool_env_free(env);
	pst_spool_env_free(back);
}
END_TEST

/* Values that must never reach a record. */
static const struct {
	const char	*what;
	int		 field;	/* 0 sender 1 envid 2 origin 3 rcpt 4 orcpt */
	const char	*value;
} hostile[] = {
	{ "CR in sender", 0, "a\r@b" },
	{ "LF in sender", 0, "a@b\nrcpt evil@x" },
	{ "CRLF in envid", 1, "x\r\n" },
	{ "LF in origin", 2, "smtp\nheld no" },
	{ "CR in recipient", 3, "bob@x\r" },
	{ "LF in ORCPT", 4, "rfc822;a\nb" },
	{ "TAB in recipient", 3, "a\tb@c" },
	{ "DEL in sender", 0, "a\x7f@b" },
	{ "ESC in envid", 1, "\x1b[31m" },
};

START_TEST(env_setters_refuse_control_characters)
{
	struct pst_spool_env *env;
	struct pst_err err;
	int rc = 0;

	env = pst_spool_env_new(&err);
	switch (hostile[_i].field) {
	case 0:
		rc = pst_spool_env_set_sender(env, hostile[_i].value, &err);
		break;
	case 1:
		rc = pst_spool_env_set_envid(env, hostile[_i].value, &err);
		break;
	case 2:
		rc = pst_spool_env_set_origin(env, hostile[_i].value, &err);
		break;
	case 3:
		rc = pst_spool_env_add_rcpt(env, hostile[_i].value, 0, NULL,
		    &err);
		break;
	case 4:
		rc = pst_spool_env_add_rcpt(env, "a@b", 0, hostile[_i].value,
		    &err);
		break;
	}
	ck_assert_msg(rc == -1, "%s accepted", hostile[_i].what);
	ck_assert_int_eq(err.cls, PST_LOCAL);
	ck_assert_int_eq(err.stage, PST_STAGE_SPOOL);
	ck_assert_ptr_null(env->sender);
	ck_assert_ptr_null(env->envid);
	ck_assert_ptr_null(env->origin);
	ck_assert_uint_eq(env->nrcpts, 0);
	pst_spool_env_free(env);
}
END_TEST

START_TEST(env_encode_refuses_control_characters_set_directly)
{
	struct pst_spool_env *env;
	struct pst_err err;
	char *rec = NULL, **slot;
	size_t len;

	env = full_env();
	switch (hostile[_i].field) {
	case 0:
		slot = &env->sender;
		break;
	case 1:
		slot = &env->envid;
		break;
	case 2:
		slot = &env->origin;
		break;
	case 3:
		slot = &env->rcpts[2].addr;
		break;
	default:
		slot = &env->rcpts[2].orcpt;
		break;
	}
	free(*slot);
	*slot = strdup(hostile[_i].value);
	ck_assert_int_eq(pst_spool_env_encode(env, &rec, &len, &err), -1);
	ck_assert_ptr_null(rec);
	ck_assert_int_eq(err.cls, PST_LOCAL);
	ck_assert_ptr_nonnull(strstr(err.text, "control character"));
	pst_spool_env_free(env);
}
END_TEST

START_TEST(env_encode_refuses_invalid_envelopes)
{
	struct pst_spool_env *env;
	struct pst_err err;
	char *rec = NULL, big[PST_SPOOL_VALUE_MAX + 2];
	size_t len;
	int i;

	for (i = 0; i < 11; i++) {
		env = full_env();
		switch (i) {
		case 0:
			env->id[0] = '\0';
			break;
		case 1:
			memcpy(env->id, "0192F3C2A1B04E7F", 16);
			break;
		case 2:
			free(env->sender);
			env->sender = NULL;
			break;
		case 3:
			env->nrcpts = 0;
			break;
		case 4:
			env->rcpts[1].state = PST_SPOOL_RCPT__COUNT;
			break;
		case 5:
			env->rcpts[0].notify = PST_SPOOL_NOTIFY_NEVER |
			    PST_SPOOL_NOTIFY_DELAY;
			break;
		case 6:
			env->rcpts[0].code = 99;
			break;
		case 7:
			memcpy(env->last_esc, "6.0.0", 6);
			break;
		case 8:
			memset(big, 'a', sizeof(big) - 1);
			big[sizeof(big) - 1] = '\0';
			free(env->envid);
			env->envid = strdup(big);
			break;
		case 9:
			env->arrival = -5;
			break;
		case 10:
			/* "Needed" means nothing unless someone looked. */
			env->flags |= PST_SPOOL_F_UTF8_NEEDED;
			break;
		}
		ck_assert_msg(pst_spool_env_encode(env, &rec, &len, &err) == -1,
		    "case %d encoded", i);
		ck_assert_ptr_null(rec);
		ck_assert_int_eq(err.cls, PST_LOCAL);
		/* The array is still whole: free it. */
		if (i == 3)
			env->nrcpts = 3;
		pst_spool_env_free(env);
	}
}
END_TEST

START_TEST(env_value_limit_is_exact)
{
	struct pst_spool_env *env;
	struct pst_err err;
	char big[PST_SPOOL_VALUE_MAX + 2];

	env = pst_spool_env_new(&err);
	memset(big, 'a', sizeof(big));
	big[PST_SPOOL_VALUE_MAX] = '\0';
	ck_assert_int_eq(pst_spool_env_set_sender(env, big, &err), 0);
	big[PST_SPOOL_VALUE_MAX] = 'a';
	big[PST_SPOOL_VALUE_MAX + 1] = '\0';
	ck_assert_int_eq(pst_spool_env_set_sender(env, big, &err), -1);
	ck_assert_uint_eq(strlen(env->sender), PST_SPOOL_VALUE_MAX);
	ck_assert_int_eq(pst_spool_env_add_rcpt(env, "", 0, NULL, &err), -1);
	ck_assert_int_eq(pst_spool_env_add_rcpt(env, NULL, 0, NULL, &err), -1);
	ck_assert_int_eq(pst_spool_env_add_rcpt(env, "a@b", 0x10, NULL, &err),
	    -1);
	pst_spool_env_free(env);
}
END_TEST

START_TEST(env_results_are_sanitised_and_bounded)
{
	struct pst_spool_env *env;
	struct pst_err err;
	char big[3000];

	env = pst_spool_env_new(&err);
	ck_assert_int_eq(pst_spool_env_add_rcpt(env, "a@b", 0, NULL, &err), 0);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[10] = '\r';
	ck_assert_int_eq(pst_spool_env_set_result(env, 0,
	    PST_SPOOL_RCPT_FAILED, 999, "5.1.1x", big, &err), 0);
	ck_assert_uint_eq(strlen(env->rcpts[0].error), PST_SPOOL_VALUE_MAX);
	ck_assert_int_eq(env->rcpts[0].error[10], '?');
	ck_assert_int_eq(env->rcpts[0].code, 0);
	ck_assert_str_eq(env->rcpts[0].esc, "");
	ck_assert_int_eq(pst_spool_env_set_result(env, 1,
	    PST_SPOOL_RCPT_FAILED, 550, NULL, NULL, &err), -1);
	ck_assert_int_eq(pst_spool_env_set_result(env, 0,
	    PST_SPOOL_RCPT__COUNT, 550, NULL, NULL, &err), -1);
	ck_assert_uint_eq(pst_spool_env_pending(env), 0);
	ck_assert_str_eq(pst_spool_rcpt_state_name(PST_SPOOL_RCPT_FAILED),
	    "failed");
	ck_assert_str_eq(pst_spool_rcpt_state_name(42), "unknown");
	pst_spool_env_free(env);
}
END_TEST

START_TEST(env_decode_refuses_every_truncation)
{
	struct pst_spool_env *env, *back;
	struct pst_err err;
	size_t len, cut;
	char *rec;

	env = full_env();
	ck_assert_int_eq(pst_spool_env_encode(env, &rec, &len, &err), 0);
	for (cut = 0; cut < len; cut++) {
		back = pst_spool_env_decode(rec, cut, &err);
		ck_assert_msg(back == NULL, "decoded a record cut at %zu of "
		    "%zu", cut, len);
		ck_assert_int_eq(err.cls, PST_LOCAL);
	}
	free(rec);
	pst_spool_env_free(env);
}
END_TEST

START_TEST(env_decode_refuses_changed_bytes)
{
	struct pst_spool_env *env, *back;
	struct pst_err err;
	size_t len, i;
	char *rec;

	env = full_env();
	ck_assert_int_eq(pst_spool_env_encode(env, &rec, &len, &err), 0);
	for (i = 0; i < len; i++) {
		rec[i] ^= 0x01;
		back = pst_spool_env_decode(rec, len, &err);
		ck_assert_msg(back == NULL, "decoded with byte %zu changed", i);
		rec[i] ^= 0x01;
	}
	free(rec);
	pst_spool_env_free(env);
}
END_TEST

#define HEAD	"postern-envelope 1\nid " ID "\narrival 5\nsize 7\n"
#define RCPT	"rcpt a@b\nrcpt.state pending\n"
#define GOOD	HEAD "sender s@x\n" RCPT

/* Records sealed with a correct end line: refused for their content. */
static const struct {
	const char	*what;
	const char	*text;
	const char	*why;		/* expected in the error text */
} bad_records[] = {
	{ "newer version", "postern-envelope 2\nid " ID "\n", "version 2" },
	{ "no version", "postern-envelope\n", "not a postern envelope" },
	{ "junk version", "postern-envelope x\n", "version line" },
	{ "not an envelope", "hello world\n", "not a postern envelope" },
	{ "unknown key", GOOD "colour blue\n", "unknown key \"colour\"" },
	{ "unknown recipient key", GOOD "rcpt.colour blue\n",
	    "unknown key" },
	{ "repeated key", GOOD "size 8\n", "size repeated" },
	{ "repeated recipient key", GOOD "rcpt.state failed\n",
	    "rcpt.state repeated" },
	{ "recipient key first", HEAD "rcpt.state pending\nsender s@x\n"
	    RCPT, "before any rcpt" },
	{ "recipient without state", HEAD "sender s@x\nrcpt a@b\n" RCPT,
	    "no state" },
	{ "last recipient without state", GOOD "rcpt c@d\n", "no state" },
	{ "no sender", HEAD RCPT, "no sender" },
	{ "no recipient", HEAD "sender s@x\n", "no rcpt" },
	{ "no id", "postern-envelope 1\narrival 5\nsize 7\nsender s@x\n" RCPT,
	    "no id" },
	{ "bad id", "postern-envelope 1\nid ../../etc/passwd\narrival 5\n"
	    "size 7\nsender s@x\n" RCPT, "bad value for id" },
	{ "CR escaped", HEAD "sender s%0D@x\n" RCPT, "bad or overlong" },
	{ "LF escaped", HEAD "sender s%0A@x\n" RCPT, "bad or overlong" },
	{ "NUL escaped", HEAD "sender s%00@x\n" RCPT, "bad or overlong" },
	{ "raw CR", HEAD "sender s@x\r\n" RCPT, "raw byte 0x0d" },
	{ "raw tab", HEAD "sender s\t@x\n" RCPT, "raw byte 0x09" },
	{ "raw 8-bit", HEAD "sender s\xc3\xa9@x\n" RCPT, "raw byte 0xc3" },
	{ "non-canonical escape", HEAD "sender %41@x\n" RCPT,
	    "bad or overlong" },
	{ "lower-case escape", HEAD "sender %c3%a9@x\n" RCPT,
	    "bad or overlong" },
	{ "short escape", HEAD "sender s@x%4\n" RCPT, "bad or overlong" },
	{ "trailing space", HEAD "sender s@x\nheld \n" RCPT,
	    "trailing space" },
	{ "negative size", "postern-envelope 1\nid " ID "\narrival 5\n"
	    "size -1\nsender s@x\n" RCPT, "bad value for size" },
	{ "leading zero", "postern-envelope 1\nid " ID "\narrival 05\n"
	    "size 1\nsender s@x\n" RCPT, "bad value for arrival" },
	{ "size overflow", "postern-envelope 1\nid " ID "\narrival 5\n"
	    "size 18446744073709551616\nsender s@x\n" RCPT,
	    "bad value for size" },
	{ "attempts overflow", GOOD "attempts 4294967296\n",
	    "bad value for attempts" },
	{ "bad state", HEAD "sender s@x\nrcpt a@b\nrcpt.state lost\n",
	    "bad value for rcpt.state" },
	{ "NEVER with SUCCESS", GOOD "rcpt.notify never,success\n",
	    "bad value for rcpt.notify" },
	{ "empty NOTIFY item", GOOD "rcpt.notify success,,delay\n",
	    "bad value for rcpt.notify" },
	{ "repeated NOTIFY item", GOOD "rcpt.notify delay,delay\n",
	    "bad value for rcpt.notify" },
	{ "trailing NOTIFY comma", GOOD "rcpt.notify delay,\n",
	    "bad value for rcpt.notify" },
	{ "empty NOTIFY", GOOD "rcpt.notify\n", "bad value for rcpt.notify" },
	{ "bad enhanced code", GOOD "rcpt.esc 4.1234.1\n",
	    "bad value for rcpt.esc" },
	{ "code out of range", GOOD "rcpt.code 600\n",
	    "bad value for rcpt.code" },
	{ "bad boolean", GOOD "held maybe\n", "bad value for held" },
	{ "bad body", GOOD "body binarymime\n", "bad value for body" },
	{ "bad ret", GOOD "ret some\n", "bad value for ret" },
	{ "bad smtputf8-needed", GOOD "x-smtputf8-needed maybe\n",
	    "bad value for x-smtputf8-needed" },
	{ "empty recipient", HEAD "sender s@x\nrcpt\nrcpt.state pending\n",
	    "bad recipient" },
	{ "empty key", GOOD " x\n", "unknown key" },
	{ "empty line", GOOD "\n", "unknown key" },
};

START_TEST(env_decode_refuses_bad_content)
{
	struct pst_spool_env *back;
	struct pst_err err;
	size_t len;
	char *rec;

	rec = st_seal(bad_records[_i].text, &len);
	back = pst_spool_env_decode(rec, len, &err);
	ck_assert_msg(back == NULL, "%s: decoded", bad_records[_i].what);
	ck_assert_int_eq(err.cls, PST_LOCAL);
	ck_assert_int_eq(err.stage, PST_STAGE_SPOOL);
	ck_assert_msg(strstr(err.text, bad_records[_i].why) != NULL,
	    "%s: error \"%s\" lacks \"%s\"", bad_records[_i].what, err.text,
	    bad_records[_i].why);
	free(rec);
}
END_TEST

START_TEST(env_decode_accepts_minimal_and_optional_keys)
{
	struct pst_spool_env *back;
	struct pst_err err;
	size_t len;
	char *rec;

	rec = st_seal(HEAD "x-future something %25\nsender s@x\n" RCPT
	    "rcpt.x-later 1\n", &len);
	back = pst_spool_env_decode(rec, len, &err);
	ck_assert_msg(back != NULL, "%s", err.text);
	ck_assert_str_eq(back->id, ID);
	ck_assert_int_eq(back->arrival, 5);
	ck_assert_uint_eq(back->size, 7);
	ck_assert_uint_eq(back->nrcpts, 1);
	ck_assert_int_eq(back->rcpts[0].state, PST_SPOOL_RCPT_PENDING);
	ck_assert_int_eq(err.cls, PST_OK);
	free(rec);
	pst_spool_env_free(back);
}
END_TEST

/*
 * Whether a message needs SMTPUTF8 is kept when it was recorded; an
 * envelope without the key (an older writer) says nobody looked.
 */
START_TEST(env_smtputf8_needed_is_kept_or_unknown)
{
	static const unsigned cases[] = {
		PST_SPOOL_F_SMTPUTF8 | PST_SPOOL_F_UTF8_CHECKED,
		PST_SPOOL_F_SMTPUTF8 | PST_SPOOL_F_UTF8_CHECKED |
		    PST_SPOOL_F_UTF8_NEEDED,
	};
	struct pst_spool_env *env, *back;
	struct pst_err err;
	size_t len, i;
	char *rec;

	for (i = 0; i < NELEMS(cases); i++) {
		env = full_env();
		env->flags = cases[i];
		ck_assert_int_eq(pst_spool_env_encode(env, &rec, &len, &err),
		    0);
		rec[len - 1] = '\0';
		ck_assert_ptr_nonnull(strstr(rec, i == 0 ?
		    "\nx-smtputf8-needed no\n" : "\nx-smtputf8-needed yes\n"));
		rec[len - 1] = '\n';
		back = pst_spool_env_decode(rec, len, &err);
		ck_assert_msg(back != NULL, "decode: %s", err.text);
		ck_assert_uint_eq(back->flags, cases[i]);
		free(rec);
		pst_spool_env_free(env);
		pst_spool_env_free(back);
	}
	rec = st_seal(HEAD "smtputf8 yes\nsender s@x\n" RCPT, &len);
	back = pst_spool_env_decode(rec, len, &err);
	ck_assert_msg(back != NULL, "%s", err.text);
	ck_assert_uint_eq(back->flags, PST_SPOOL_F_SMTPUTF8);
	free(rec);
	pst_spool_env_free(back);
}
END_TEST

START_TEST(env_decode_refuses_torn_end_lines)
{
	static const char *const tails[] = {
		"",				/* no end line */
		"end 1 0000000000000000\n",	/* wrong length */
		"end\n",
		"end 84 00000000000000zz\n",
		"end 84 0000000000000000 \n",
	};
	struct pst_spool_env *back;
	struct pst_err err;
	char buf[512];
	size_t i, len;
	char *rec;

	for (i = 0; i < NELEMS(tails); i++) {
		snprintf(buf, sizeof(buf), "%s%s", GOOD, tails[i]);
		back = pst_spool_env_decode(buf, strlen(buf), &err);
		ck_assert_ptr_null(back);
		ck_assert_ptr_nonnull(strstr(err.text, "torn envelope"));
	}
	/* A correct record followed by anything is torn too. */
	rec = st_seal(GOOD, &len);
	memcpy(buf, rec, len);
	memcpy(buf + len, "x\n", 2);
	ck_assert_ptr_null(pst_spool_env_decode(buf, len + 2, &err));
	ck_assert_ptr_null(pst_spool_env_decode(buf, len - 1, &err));
	free(rec);
}
END_TEST

START_TEST(env_decode_refuses_overlong_line_and_record)
{
	struct pst_spool_env *back;
	struct pst_err err;
	size_t len;
	char *text, *rec;

	text = malloc(8192);
	snprintf(text, 8192, "%ssender ", HEAD);
	memset(text + strlen(text), 'a', 5000);
	strcpy(text + strlen(HEAD) + 7 + 5000, "\n" RCPT);
	rec = st_seal(text, &len);
	back = pst_spool_env_decode(rec, len, &err);
	ck_assert_ptr_null(back);
	ck_assert_ptr_nonnull(strstr(err.text, "too long"));
	free(rec);
	free(text);

	ck_assert_ptr_null(pst_spool_env_decode("postern-envelope 1\n",
	    (size_t)PST_SPOOL_ENV_MAX + 1, &err));
	ck_assert_ptr_nonnull(strstr(err.text, "larger than"));
}
END_TEST

START_TEST(env_decode_refuses_too_many_recipients)
{
	struct pst_spool_env *back;
	struct pst_err err;
	size_t len, off, i;
	char *text, *rec;

	len = strlen(HEAD) + 20 + (PST_SPOOL_RCPT_MAX + 1) * strlen(RCPT);
	text = malloc(len + 1);
	off = (size_t)sprintf(text, "%ssender s@x\n", HEAD);
	for (i = 0; i <= PST_SPOOL_RCPT_MAX; i++) {
		memcpy(text + off, RCPT, strlen(RCPT));
		off += strlen(RCPT);
	}
	text[off] = '\0';
	rec = st_seal(text, &len);
	back = pst_spool_env_decode(rec, len, &err);
	ck_assert_ptr_null(back);
	ck_assert_ptr_nonnull(strstr(err.text, "too many"));
	free(rec);
	free(text);
}
END_TEST

/*
 * An envelope as an earlier version wrote it, byte for byte, end line and
 * checksum included: it must still verify and read, and writing it again
 * must give the same bytes.  The checksum is FNV-1a 64 with the standard
 * offset basis (spool.h); a change there would make every spool torn.
 */
static const char written_before[] =
	"postern-envelope 1\n"
	"id 0192f3c2a1b04e7f\n"
	"arrival 1700000000\n"
	"size 1234\n"
	"origin smtp [127.0.0.1]:40000\n"
	"body 7bit\n"
	"smtputf8 no\n"
	"envid QQ+2B%2525\n"
	"sender s%C3%A9nder@example.org\n"
	"attempts 2\n"
	"next-attempt 1700000600\n"
	"held no\n"
	"rcpt a@example.net\n"
	"rcpt.state pending\n"
	"rcpt b@example.net\n"
	"rcpt.state pending\n"
	"end 287 96a6e5e82bd53165\n";

START_TEST(env_written_before_still_verifies)
{
	struct pst_spool_env *env;
	struct pst_err err;
	size_t len = sizeof(written_before) - 1, len2;
	char *rec;

	env = pst_spool_env_decode(written_before, len, &err);
	ck_assert_msg(env != NULL, "decode: %s", err.text);
	ck_assert_str_eq(env->id, "0192f3c2a1b04e7f");
	ck_assert_str_eq(env->sender, "s\xc3\xa9nder@example.org");
	ck_assert_str_eq(env->envid, "QQ+2B%25");
	ck_assert_uint_eq(env->nrcpts, 2);
	ck_assert_uint_eq(env->attempts, 2);
	ck_assert_int_eq(pst_spool_env_encode(env, &rec, &len2, &err), 0);
	ck_assert_uint_eq(len2, len);
	ck_assert(memcmp(rec, written_before, len) == 0);
	free(rec);
	pst_spool_env_free(env);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("spool/env");
	TCase *tc;

	tc = tcase_create("encode");
	tcase_add_test(tc, env_round_trip_keeps_every_field);
	tcase_add_test(tc, env_record_is_text_with_one_value_per_line);
	tcase_add_test(tc, env_null_sender_round_trips);
	tcase_add_loop_test(tc, env_setters_refuse_control_characters, 0,
	    NELEMS(hostile));
	tcase_add_loop_test(tc,
	    env_encode_refuses_control_characters_set_directly, 0,
	    NELEMS(hostile));
	tcase_add_test(tc, env_encode_refuses_invalid_envelopes);
	tcase_add_test(tc, env_value_limit_is_exact);
	tcase_add_test(tc, env_results_are_sanitised_and_bounded);
	suite_add_tcase(s, tc);

	tc = tcase_create("decode");
	tcase_add_test(tc, env_decode_refuses_every_truncation);
	tcase_add_test(tc, env_decode_refuses_changed_bytes);
	tcase_add_loop_test(tc, env_decode_refuses_bad_content, 0,
	    NELEMS(bad_records));
	tcase_add_test(tc, env_decode_accepts_minimal_and_optional_keys);
	tcase_add_test(tc, env_smtputf8_needed_is_kept_or_unknown);
	tcase_add_test(tc, env_decode_refuses_torn_end_lines);
	tcase_add_test(tc, env_decode_refuses_overlong_line_and_record);
	tcase_add_test(tc, env_decode_refuses_too_many_recipients);
	tcase_add_test(tc, env_written_before_still_verifies);
	suite_add_tcase(s, tc);
	return s;
}
