#include <string.h>

#include "client/client.h"
#include "common/err.h"
#include "posternd/deliver.h"
#include "spool/spool.h"
#include "unit.h"

#define DELIVERED	PST_SPOOL_RCPT_DELIVERED
#define DEFERRED	PST_SPOOL_RCPT_DEFERRED
#define FAILED		PST_SPOOL_RCPT_FAILED

/* What the recipient got at RCPT. */
enum rcpt_kind {
	R_NONE = 0,	/* no answer */
	R_OK,		/* accepted */
	R_TAKEN,	/* accepted, and delivered by an earlier transaction */
	R_ERR,		/* refused: 'rerr' */
};

#define ERR(c, st, sc, code, e, t) \
	{ .cls = (c), .stage = PST_STAGE_ ## st, .scope = PST_SCOPE_ ## sc, \
	  .smtp_code = (code), .esc = e, .text = t }
#define OK	{ .cls = PST_OK }

/* The upstream's answers. */
#define RCPT_550	ERR(PST_PERM, RCPT, RECIPIENT, 550, "5.1.1", "no such user")
#define RCPT_450	ERR(PST_TEMP, RCPT, RECIPIENT, 450, "4.2.1", "try later")
#define MAIL_550	ERR(PST_PERM, MAIL, MESSAGE, 550, "5.7.1", "sender refused")
#define MAIL_451	ERR(PST_TEMP, MAIL, MESSAGE, 451, "4.3.0", "busy")
#define DATA_552	ERR(PST_PERM, DATA, MESSAGE, 552, "5.3.4", "too big")
#define DOT_554		ERR(PST_PERM, DOT, MESSAGE, 554, "5.6.0", "rejected")
#define DOT_451		ERR(PST_TEMP, DOT, MESSAGE, 451, "4.3.0", "later")
#define NONE_ACCEPTED	ERR(PST_TEMP, DATA, SESSION, 0, "", \
			    "no recipient was accepted")

static const struct row {
	const char		*what;
	enum rcpt_kind		 rcpt;
	struct pst_err		 rerr;
	struct pst_err		 msg;
	enum verdict_source	 src;
	bool			 nobody;
	bool			 others;
	enum pst_spool_rcpt_state want;
	enum pst_class		 want_cls;	/* of the error recorded */
	const char		*want_esc;
	const char		*want_text;
} rows[] = {
	/* The upstream's own answers about a recipient or a message. */
	{ "250 at RCPT and at the dot", R_OK, OK, OK, VERDICT_ANSWER,
	    false, false, DELIVERED, PST_OK, "", "" },
	{ "5xx at RCPT is final", R_ERR, RCPT_550, OK, VERDICT_ANSWER,
	    false, false, FAILED, PST_PERM, "5.1.1", "no such user" },
	{ "4xx at RCPT waits", R_ERR, RCPT_450, OK, VERDICT_ANSWER,
	    false, false, DEFERRED, PST_TEMP, "4.2.1", "try later" },
	{ "5xx at MAIL is final for its recipients", R_ERR, MAIL_550,
	    MAIL_550, VERDICT_ANSWER, false, false, FAILED, PST_PERM,
	    "5.7.1", "sender refused" },
	{ "5xx at MAIL, recipient never asked", R_NONE, OK, MAIL_550,
	    VERDICT_ANSWER, false, false, FAILED, PST_PERM, "5.7.1",
	    "sender refused" },
	{ "4xx at MAIL waits", R_NONE, OK, MAIL_451, VERDICT_ANSWER, false,
	    false, DEFERRED, PST_TEMP, "4.3.0", "busy" },
	{ "accepted, 5xx at DATA is final", R_OK, OK, DATA_552,
	    VERDICT_ANSWER, false, false, FAILED, PST_PERM, "5.3.4",
	    "too big" },
	{ "accepted, 5xx at the dot is final", R_OK, OK, DOT_554,
	    VERDICT_ANSWER, false, false, FAILED, PST_PERM, "5.6.0",
	    "rejected" },
	{ "accepted, 4xx at the dot waits", R_OK, OK, DOT_451,
	    VERDICT_ANSWER, false, false, DEFERRED, PST_TEMP, "4.3.0",
	    "later" },
	{ "refused recipient keeps its own answer over the message's",
	    R_ERR, RCPT_550, DOT_554, VERDICT_ANSWER, false, false, FAILED,
	    PST_PERM, "5.1.1", "no such user" },
	{ "delivered by an earlier transaction stays delivered", R_TAKEN,
	    OK, DOT_554, VERDICT_ANSWER, false, false, DELIVERED, PST_OK, "",
	    "" },
	{ "no recipient accepted, recipient not answered", R_NONE, OK,
	    NONE_ACCEPTED, VERDICT_ANSWER, false, false, DEFERRED, PST_TEMP,
	    "", "no recipient was accepted" },
	{ "not answered, and the message went through: waits", R_NONE, OK,
	    OK, VERDICT_ANSWER, false, false, DEFERRED, PST_OK, "", "" },
	/* A 5xx is final only about the message, in a transaction. */
	{ "5xx at MAIL about the session waits", R_NONE, OK,
	    ERR(PST_PERM, MAIL, SESSION, 554, "5.3.2", "no service"),
	    VERDICT_ANSWER, false, false, DEFERRED, PST_PERM, "5.3.2",
	    "no service" },
	{ "5xx about the message outside a transaction stage waits",
	    R_NONE, OK, ERR(PST_PERM, EHLO, MESSAGE, 550, "5.0.0", "no"),
	    VERDICT_ANSWER, false, false, DEFERRED, PST_PERM, "5.0.0", "no" },
	{ "5xx at RSET waits", R_NONE, OK,
	    ERR(PST_PERM, RSET, MESSAGE, 500, "", "what"), VERDICT_ANSWER,
	    false, false, DEFERRED, PST_PERM, "", "what" },
	{ "permanent without a 5xx waits", R_NONE, OK,
	    ERR(PST_PERM, MAIL, MESSAGE, 0, "", "odd"), VERDICT_ANSWER, false,
	    false, DEFERRED, PST_PERM, "", "odd" },
	{ "5xx with a 4.x.x status is a 5xx", R_ERR,
	    ERR(PST_PERM, RCPT, RECIPIENT, 550, "4.1.1", "mixed"), OK,
	    VERDICT_ANSWER, false, false, FAILED, PST_PERM, "4.1.1",
	    "mixed" },
	/* 452 4.5.3: the next transaction, never a verdict. */
	{ "too many recipients waits", R_ERR,
	    { .cls = PST_TEMP, .stage = PST_STAGE_RCPT,
	      .scope = PST_SCOPE_RECIPIENT, .smtp_code = 452, .esc = "4.5.3",
	      .detail = PST_CLIENT_E_TOO_MANY, .text = "too many" }, OK,
	    VERDICT_ANSWER, false, false, DEFERRED, PST_TEMP, "4.5.3",
	    "too many" },
	{ "too many recipients as 552 waits too", R_ERR,
	    { .cls = PST_PERM, .stage = PST_STAGE_RCPT,
	      .scope = PST_SCOPE_RECIPIENT, .smtp_code = 552, .esc = "5.5.3",
	      .detail = PST_CLIENT_E_TOO_MANY, .text = "too many" }, OK,
	    VERDICT_ANSWER, false, false, DEFERRED, PST_PERM, "5.5.3",
	    "too many" },
	/* No usable session: whatever the class, the recipient waits. */
	{ "5xx greeting waits", R_NONE, OK,
	    ERR(PST_PERM, GREETING, SESSION, 554, "", "go away"),
	    VERDICT_SESSION, false, false, DEFERRED, PST_PERM, "",
	    "go away" },
	{ "5xx to EHLO and HELO waits", R_NONE, OK,
	    ERR(PST_PERM, EHLO, SESSION, 550, "", "no"), VERDICT_SESSION,
	    false, false, DEFERRED, PST_PERM, "", "no" },
	{ "5xx to STARTTLS waits", R_NONE, OK,
	    ERR(PST_PERM, STARTTLS, SESSION, 554, "5.7.3", "no TLS"),
	    VERDICT_SESSION, false, false, DEFERRED, PST_PERM, "5.7.3",
	    "no TLS" },
	{ "failed TLS verification waits", R_NONE, OK,
	    ERR(PST_PERM, TLS, SESSION, 0, "", "certificate"),
	    VERDICT_SESSION, false, false, DEFERRED, PST_PERM, "",
	    "certificate" },
	{ "5xx to AUTH waits", R_NONE, OK,
	    ERR(PST_PERM, AUTH, SESSION, 535, "5.7.8", "bad password"),
	    VERDICT_SESSION, false, false, DEFERRED, PST_PERM, "5.7.8",
	    "bad password" },
	{ "refused connection waits", R_NONE, OK,
	    ERR(PST_TEMP, CONNECT, SESSION, 0, "", "refused"),
	    VERDICT_SESSION, false, false, DEFERRED, PST_TEMP, "",
	    "refused" },
	{ "proxy refusal waits", R_NONE, OK,
	    ERR(PST_PERM, PROXY, SESSION, 0, "", "denied"), VERDICT_SESSION,
	    false, false, DEFERRED, PST_PERM, "", "denied" },
	{ "session failed at the dot: accepted recipient waits", R_OK, OK,
	    ERR(PST_PERM, DOT, SESSION, 554, "5.0.0", "closing"),
	    VERDICT_SESSION, false, false, DEFERRED, PST_PERM, "5.0.0",
	    "closing" },
	{ "session failed: an earlier 5xx at RCPT still stands", R_ERR,
	    RCPT_550, ERR(PST_TEMP, DATA, SESSION, 421, "4.4.2", "bye"),
	    VERDICT_SESSION, false, false, FAILED, PST_PERM, "5.1.1",
	    "no such user" },
	{ "session failed mid-message even if it said message", R_NONE, OK,
	    ERR(PST_PERM, DATA, MESSAGE, 554, "5.0.0", "odd"),
	    VERDICT_SESSION, false, false, DEFERRED, PST_PERM, "5.0.0",
	    "odd" },
	/* Our own trouble waits. */
	{ "timeouts.total waits", R_OK, OK,
	    ERR(PST_TEMP, NONE, SESSION, 0, "", "took longer"), VERDICT_LOCAL,
	    false, false, DEFERRED, PST_TEMP, "", "took longer" },
	{ "local error waits", R_NONE, OK,
	    ERR(PST_LOCAL, MAIL, SESSION, 0, "", "client not ready"),
	    VERDICT_LOCAL, false, false, DEFERRED, PST_LOCAL, "",
	    "client not ready" },
	{ "local error that looks final still waits", R_NONE, OK,
	    ERR(PST_PERM, DATA, MESSAGE, 550, "5.0.0", "ours"), VERDICT_LOCAL,
	    false, false, DEFERRED, PST_PERM, "5.0.0", "ours" },
	/* Refusals decided from EHLO: final only when nobody can take it. */
	{ "too big for every upstream", R_NONE, OK,
	    ERR(PST_PERM, MAIL, MESSAGE, 0, "5.3.4", "exceeds"),
	    VERDICT_UNABLE, true, true, FAILED, PST_PERM, "5.3.4",
	    "exceeds; no other upstream can take it either" },
	{ "too big for the only upstream", R_NONE, OK,
	    ERR(PST_PERM, MAIL, MESSAGE, 0, "5.3.4", "exceeds"),
	    VERDICT_UNABLE, true, false, FAILED, PST_PERM, "5.3.4",
	    "exceeds" },
	{ "too big here, another might take it", R_NONE, OK,
	    ERR(PST_PERM, MAIL, MESSAGE, 0, "5.3.4", "exceeds"),
	    VERDICT_UNABLE, false, true, DEFERRED, PST_TEMP, "4.3.4",
	    "exceeds; waiting for an upstream that can take it" },
	{ "no SMTPUTF8 anywhere", R_NONE, OK,
	    ERR(PST_PERM, MAIL, MESSAGE, 0, "5.6.7", "no SMTPUTF8"),
	    VERDICT_UNABLE, true, true, FAILED, PST_PERM, "5.6.7",
	    "no SMTPUTF8; no other upstream can take it either" },
	{ "no SMTPUTF8 here, another might have it", R_NONE, OK,
	    ERR(PST_PERM, MAIL, MESSAGE, 0, "5.6.7", "no SMTPUTF8"),
	    VERDICT_UNABLE, false, true, DEFERRED, PST_TEMP, "4.6.7",
	    "no SMTPUTF8; waiting for an upstream that can take it" },
};

START_TEST(verdict_table)
{
	const struct row *r = &rows[_i];
	struct verdict_in in;
	struct pst_err why;
	enum pst_spool_rcpt_state st;

	memset(&in, 0, sizeof(in));
	memset(&why, 0xa5, sizeof(why));
	if (r->rcpt != R_NONE)
		in.rcpt = &r->rerr;
	in.taken = r->rcpt == R_TAKEN;
	in.msg = &r->msg;
	in.source = r->src;
	in.nobody = r->nobody;
	in.others = r->others;
	st = deliver_verdict(&in, &why);
	ck_assert_msg(st == r->want, "%s: state %d, want %d", r->what, st,
	    r->want);
	ck_assert_msg(why.cls == r->want_cls, "%s: class %s, want %s",
	    r->what, pst_class_name(why.cls), pst_class_name(r->want_cls));
	ck_assert_msg(strcmp(why.esc, r->want_esc) == 0, "%s: esc %s",
	    r->what, why.esc);
	ck_assert_msg(strcmp(why.text, r->want_text) == 0, "%s: text %s",
	    r->what, why.text);
}
END_TEST

/* The message's own error, as recorded in the envelope. */
START_TEST(verdict_message_error)
{
	const struct pst_err msg = ERR(PST_PERM, MAIL, MESSAGE, 0, "5.3.4",
	    "exceeds");
	struct verdict_in in;
	struct pst_err why;

	memset(&in, 0, sizeof(in));
	in.msg = &msg;
	in.source = VERDICT_UNABLE;
	in.others = true;
	ck_assert_int_eq(deliver_verdict(&in, &why), DEFERRED);
	ck_assert_str_eq(why.esc, "4.3.4");
	/* The input is never rewritten. */
	ck_assert_int_eq(msg.cls, PST_PERM);
	ck_assert_str_eq(msg.esc, "5.3.4");
	ck_assert_str_eq(msg.text, "exceeds");
}
END_TEST

/* A suffix that does not fit is cut, never overflows. */
START_TEST(verdict_long_text_is_cut)
{
	struct pst_err msg = ERR(PST_PERM, MAIL, MESSAGE, 0, "5.3.4", "");
	struct verdict_in in;
	struct pst_err why;

	memset(msg.text, 'x', sizeof(msg.text) - 1);
	memset(&in, 0, sizeof(in));
	in.msg = &msg;
	in.source = VERDICT_UNABLE;
	ck_assert_int_eq(deliver_verdict(&in, &why), DEFERRED);
	ck_assert_uint_eq(strlen(why.text), sizeof(why.text) - 1);
	in.nobody = true;
	in.others = true;
	ck_assert_int_eq(deliver_verdict(&in, &why), FAILED);
	ck_assert_uint_eq(strlen(why.text), sizeof(why.text) - 1);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("daemon/verdict");
	TCase *tc = tcase_create("verdict");

	tcase_add_loop_test(tc, verdict_table, 0, NELEMS(rows));
	tcase_add_test(tc, verdict_message_error);
	tcase_add_test(tc, verdict_long_text_is_cut);
	suite_add_tcase(s, tc);
	return s;
}
