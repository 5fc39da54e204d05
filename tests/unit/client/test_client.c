/*
 * test_client.c: the SMTP client machine against scripted peers over a
 * bufferevent pair.
 */
#include <sys/mman.h>

#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "client/client.h"
#include "helpers/peer.h"
#include "unit.h"

struct run {
	struct event_base	*base;
	struct pst_client	*c;
	struct peer		 peer;
	struct pst_client_params p;
	struct pst_client_mail	 m;
	struct pst_client_rcpt	 rcpts[4];
	bool			 send_on_ready;
	bool			 quit_after;
	int			 ready;
	int			 sent;
	struct pst_err		 sent_err;
	bool			 sent_ok;
	int			 rcpt_ok[4];
	struct pst_err		 rcpt_err[4];
	int			 failed;
	struct pst_err		 fail_err;
	int			 closed;
	char			 transcript[4096];
};

static struct run R;

static void
trace(void *arg, const char *line)
{
	struct run *r = arg;

	strncat(r->transcript, line, sizeof(r->transcript) -
	    strlen(r->transcript) - 2);
	strcat(r->transcript, " | ");
}

static void
on_ready(struct pst_client *c, void *arg)
{
	struct run *r = arg;
	struct pst_err err;

	r->ready++;
	if (r->send_on_ready)
		ck_assert_int_eq(pst_client_send(c, &r->m, &err), 0);
	else if (r->quit_after)
		pst_client_quit(c);
}

static void
on_rcpt(struct pst_client *c, size_t i, const struct pst_err *err, void *arg)
{
	struct run *r = arg;

	ck_assert_uint_lt(i, 4);
	if (err == NULL)
		r->rcpt_ok[i]++;
	else
		r->rcpt_err[i] = *err;
}

static void
on_sent(struct pst_client *c, const struct pst_err *err, void *arg)
{
	struct run *r = arg;

	r->sent++;
	r->sent_ok = err == NULL;
	if (err != NULL)
		r->sent_err = *err;
	if (r->quit_after)
		pst_client_quit(c);
	else
		event_base_loopbreak(r->base);
}

static void
on_failed(struct pst_client *c, const struct pst_err *err, void *arg)
{
	struct run *r = arg;

	r->failed++;
	r->fail_err = *err;
	event_base_loopbreak(r->base);
}

static void
on_closed(struct pst_client *c, void *arg)
{
	struct run *r = arg;

	r->closed++;
	event_base_loopbreak(r->base);
}

static const struct pst_client_cbs cbs = {
	on_ready, on_rcpt, on_sent, on_failed, on_closed,
};

static int
body_fd(const char *text)
{
	int fd = memfd_create("body", 0);

	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	R.m.size = strlen(text);
	return fd;
}

static void
setup(void)
{
	memset(&R, 0, sizeof(R));
	R.base = event_base_new();
	R.p.helo = "client.example.org";
	R.p.tls = PST_CLIENT_TLS_NONE;
	R.p.trace = trace;
	R.p.trace_arg = &R;
	R.p.sasl_allowed = PST_SASL_ALL;
	R.rcpts[0].addr = "a@example.org";
	R.rcpts[1].addr = "b@example.org";
	R.m.sender = "s@example.org";
	R.m.rcpts = R.rcpts;
	R.m.nrcpts = 2;
	R.m.size = 30;
	R.m.body_fd = -1;
	R.send_on_ready = true;
	R.quit_after = true;
}

static void
teardown(void)
{
	pst_client_free(R.c);
	peer_free(&R.peer);
	if (R.m.body_fd != -1)
		close(R.m.body_fd);
	event_base_free(R.base);
}

/* Runs a client against 'script' until it settles (or 5s pass). */
static void
run(const char *const *script)
{
	struct bufferevent *pair[2];
	struct timeval limit = { 5, 0 };
	struct pst_err err;

	ck_assert_int_eq(bufferevent_pair_new(R.base, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS, pair), 0);
	peer_start(&R.peer, pair[1], script);
	R.c = pst_client_new(pair[0], &R.p, NULL, &cbs, &R, &err);
	ck_assert_ptr_nonnull(R.c);
	event_base_loopexit(R.base, &limit);
	event_base_dispatch(R.base);
	ck_assert_msg(!R.peer.failed, "peer: %s; transcript: %s", R.peer.why,
	    R.transcript);
}

START_TEST(plain_session_without_pipelining)
{
	static const char *const script[] = {
		"S: 220 mx.example.org ESMTP",
		"C! EHLO client.example.org",
		"S: 250-mx.example.org",
		"S: 250-SIZE 1000",
		"S: 250 8BITMIME",
		"C! MAIL FROM:<s@example.org> SIZE=27",
		"S: 250 2.1.0 ok",
		"C! RCPT TO:<a@example.org>",
		"S: 250 2.1.5 ok",
		"C! RCPT TO:<b@example.org>",
		"S: 250 2.1.5 ok",
		"C! DATA",
		"S: 354 go",
		"C: Subject: x",
		"C: ",
		"C: ..hidden",
		"C: last",
		"C: .",
		"S: 250 2.0.0 queued",
		"C: QUIT",
		"S: 221 bye",
		NULL,
	};

	R.m.body_fd = body_fd("Subject: x\r\n\r\n.hidden\r\nlast");
	run(script);
	ck_assert_msg(peer_done(&R.peer), "stopped at step %zu: %s",
	    R.peer.step, R.transcript);
	ck_assert_int_eq(R.ready, 1);
	ck_assert_int_eq(R.sent, 1);
	ck_assert(R.sent_ok);
	ck_assert_int_eq(R.rcpt_ok[0], 1);
	ck_assert_int_eq(R.rcpt_ok[1], 1);
	ck_assert_int_eq(R.failed, 0);
	ck_assert_int_eq(R.closed, 1);
	ck_assert_str_eq(pst_client_info(R.c)->greeting,
	    "mx.example.org ESMTP");
	ck_assert(!pst_client_info(R.c)->pipelining);
}
END_TEST

START_TEST(pipelined_transaction_goes_out_at_once)
{
	static const char *const script[] = {
		"S: 220 mx ESMTP",
		"C: EHLO client.example.org",
		"S: 250-mx",
		"S: 250-PIPELINING",
		"S: 250 DSN",
		"C: MAIL FROM:<s@example.org> RET=HDRS ENVID=abc",
		"C: RCPT TO:<a@example.org> NOTIFY=FAILURE ORCPT=rfc822;a@example.org",
		"C: RCPT TO:<b@example.org>",
		"C: DATA",
		"S: 250 ok",
		"S: 550 5.1.1 no such user",
		"S: 250 ok",
		"S: 354 go",
		"C: hello",
		"C: .",
		"S: 250 queued",
		"C: QUIT",
		"S: 221 bye",
		NULL,
	};

	R.m.body_fd = body_fd("hello\r\n");
	R.m.ret = "HDRS";
	R.m.envid = "abc";
	R.rcpts[0].notify = "FAILURE";
	R.rcpts[0].orcpt = "rfc822;a@example.org";
	run(script);
	ck_assert_msg(peer_done(&R.peer), "%s", R.transcript);
	ck_assert(pst_client_info(R.c)->pipelining);
	ck_assert(R.sent_ok);
	ck_assert_int_eq(R.rcpt_ok[0], 0);
	ck_assert_int_eq(R.rcpt_err[0].cls, PST_PERM);
	ck_assert_int_eq(R.rcpt_err[0].scope, PST_SCOPE_RECIPIENT);
	ck_assert_int_eq(R.rcpt_err[0].smtp_code, 550);
	ck_assert_str_eq(R.rcpt_err[0].esc, "5.1.1");
	ck_assert_int_eq(R.rcpt_ok[1], 1);
}
END_TEST

/* A body that is part of a file (a log segment): those bytes only. */
START_TEST(body_at_an_offset)
{
	static const char *const script[] = {
		"S: 220 mx ESMTP",
		"C: EHLO client.example.org",
		"S: 250-mx",
		"S: 250 PIPELINING",
		"C: MAIL FROM:<s@example.org>",
		"C: RCPT TO:<a@example.org>",
		"C: RCPT TO:<b@example.org>",
		"C: DATA",
		"S: 250 ok",
		"S: 250 ok",
		"S: 250 ok",
		"S: 354 go",
		"C: hello",
		"C: ..world",
		"C: .",
		"S: 250 queued",
		"C: QUIT",
		"S: 221 bye",
		NULL,
	};

	R.m.body_fd = body_fd("before\r\nhello\r\n.world\r\nafter\r\n");
	R.m.body_offset = 8;
	R.m.size = 15;
	run(script);
	ck_assert_msg(peer_done(&R.peer), "%s", R.transcript);
	ck_assert(R.sent_ok);
}
END_TEST

START_TEST(all_recipients_refused_resets)
{
	static const char *const script[] = {
		"S: 220 mx ESMTP",
		"C: EHLO client.example.org",
		"S: 250 mx",
		"C: MAIL FROM:<s@example.org>",
		"S: 250 ok",
		"C: RCPT TO:<a@example.org>",
		"S: 450 4.2.0 greylisted",
		"C: RCPT TO:<b@example.org>",
		"S: 550 5.1.1 unknown",
		"C: RSET",
		"S: 250 ok",
		"C: QUIT",
		"S: 221 bye",
		NULL,
	};

	run(script);
	ck_assert_msg(peer_done(&R.peer), "%s", R.transcript);
	ck_assert_int_eq(R.sent, 1);
	ck_assert(!R.sent_ok);
	ck_assert_int_eq(R.sent_err.scope, PST_SCOPE_RECIPIENT);
	ck_assert_int_eq(R.rcpt_err[0].cls, PST_TEMP);
	ck_assert_int_eq(R.rcpt_err[1].cls, PST_PERM);
}
END_TEST

START_TEST(mail_refused_is_a_message_failure)
{
	static const char *const script[] = {
		"S: 220 mx ESMTP",
		"C: EHLO client.example.org",
		"S: 250-mx",
		"S: 250 PIPELINING",
		"C: MAIL FROM:<s@example.org>",
		"C: RCPT TO:<a@example.org>",
		"C: RCPT TO:<b@example.org>",
		"C: DATA",
		"S: 451 4.3.0 try later",
		"S: 503 5.5.1 need MAIL",
		"S: 503 5.5.1 need MAIL",
		"S: 503 5.5.1 need MAIL",
		"C: RSET",
		"S: 250 ok",
		"C: QUIT",
		"S: 221 bye",
		NULL,
	};

	run(script);
	ck_assert_msg(peer_done(&R.peer), "%s", R.transcript);
	ck_assert(!R.sent_ok);
	ck_assert_int_eq(R.sent_err.cls, PST_TEMP);
	ck_assert_int_eq(R.sent_err.stage, PST_STAGE_MAIL);
	ck_assert_int_eq(R.sent_err.scope, PST_SCOPE_MESSAGE);
	ck_assert_int_eq(R.sent_err.smtp_code, 451);
	/* Each recipient shares the MAIL refusal, not the 503. */
	ck_assert_int_eq(R.rcpt_err[0].smtp_code, 451);
	ck_assert_int_eq(R.rcpt_err[1].smtp_code, 451);
}
END_TEST

START_TEST(silent_greeting_times_out_with_its_stage)
{
	static const char *const script[] = { NULL };

	R.p.timeouts.greeting_ms = 50;
	run(script);
	ck_assert_int_eq(R.failed, 1);
	ck_assert_int_eq(R.fail_err.stage, PST_STAGE_GREETING);
	ck_assert_int_eq(R.fail_err.detail, PST_CLIENT_E_TIMEOUT);
	ck_assert_int_eq(R.fail_err.cls, PST_TEMP);
	ck_assert_str_eq(R.fail_err.text,
	    "timed out waiting for the greeting after 50ms");
}
END_TEST

START_TEST(greeting_554_fails_permanently)
{
	static const char *const script[] = {
		"S: 554 5.7.1 go away", NULL,
	};

	run(script);
	ck_assert_int_eq(R.failed, 1);
	ck_assert_int_eq(R.fail_err.cls, PST_PERM);
	ck_assert_int_eq(R.fail_err.stage, PST_STAGE_GREETING);
	ck_assert_int_eq(R.fail_err.smtp_code, 554);
}
END_TEST

START_TEST(starttls_required_but_missing)
{
	static const char *const script[] = {
		"S: 220 mx ESMTP",
		"C: EHLO client.example.org",
		"S: 250-mx",
		"S: 250 PIPELINING",
		NULL,
	};

	R.p.tls = PST_CLIENT_TLS_STARTTLS;
	run(script);
	ck_assert_int_eq(R.failed, 1);
	ck_assert_int_eq(R.ready, 0);
	ck_assert_ptr_nonnull(strstr(R.fail_err.text,
	    "does not offer STARTTLS"));
}
END_TEST

START_TEST(plaintext_after_starttls_is_refused)
{
	static const char *const script[] = {
		"S: 220 mx ESMTP",
		"C: EHLO client.example.org",
		"S: 250-mx",
		"S: 250 STARTTLS",
		"C: STARTTLS",
		"R: 220 go ahead\r\n250-injected\r\n",
		NULL,
	};

	R.p.tls = PST_CLIENT_TLS_STARTTLS;
	run(script);
	ck_assert_int_eq(R.failed, 1);
	ck_assert_int_eq(R.fail_err.stage, PST_STAGE_STARTTLS);
	ck_assert_ptr_nonnull(strstr(R.fail_err.text, "injection"));
}
END_TEST

START_TEST(ehlo_refused_falls_back_to_helo)
{
	static const char *const script[] = {
		"S: 220 old ready",
		"C: EHLO client.example.org",
		"S: 502 what?",
		"C: HELO client.example.org",
		"S: 250 old",
		"C: MAIL FROM:<s@example.org>",
		"S: 250 ok",
		"C: RCPT TO:<a@example.org>",
		"S: 250 ok",
		"C: DATA",
		"S: 354 go",
		"C: x",
		"C: .",
		"S: 250 ok",
		"C: QUIT",
		"S: 221 bye",
		NULL,
	};

	R.m.nrcpts = 1;
	R.m.body_fd = body_fd("x\r\n");
	run(script);
	ck_assert_msg(peer_done(&R.peer), "%s", R.transcript);
	ck_assert(R.sent_ok);
	ck_assert(!pst_client_info(R.c)->esmtp);
}
END_TEST

START_TEST(smtputf8_needed_but_not_offered)
{
	static const char *const script[] = {
		"S: 220 mx ESMTP",
		"C: EHLO client.example.org",
		"S: 250 mx",
		"C: RSET",
		"S: 250 ok",
		"C: QUIT",
		"S: 221 bye",
		NULL,
	};

	R.m.smtputf8 = true;
	run(script);
	ck_assert_msg(peer_done(&R.peer), "%s", R.transcript);
	ck_assert(!R.sent_ok);
	ck_assert_int_eq(R.sent_err.cls, PST_PERM);
	ck_assert_str_eq(R.sent_err.esc, "5.6.7");
}
END_TEST

START_TEST(message_over_server_size_is_refused_before_mail)
{
	static const char *const script[] = {
		"S: 220 mx ESMTP",
		"C: EHLO client.example.org",
		"S: 250-mx",
		"S: 250 SIZE 10",
		"C: RSET",
		"S: 250 ok",
		"C: QUIT",
		"S: 221 bye",
		NULL,
	};

	run(script);
	ck_assert_msg(peer_done(&R.peer), "%s", R.transcript);
	ck_assert(!R.sent_ok);
	ck_assert_str_eq(R.sent_err.esc, "5.3.4");
}
END_TEST

START_TEST(auth_plain_when_plaintext_allowed)
{
	static const char *const script[] = {
		"S: 220 mx ESMTP",
		"C: EHLO client.example.org",
		"S: 250-mx",
		"S: 250 AUTH LOGIN PLAIN",
		"C: AUTH PLAIN AHVzZXIAcGFzcw==",
		"S: 235 2.7.0 ok",
		"C: QUIT",
		"S: 221 bye",
		NULL,
	};
	struct pst_creds creds = { "user", "pass", PST_CREDS_PASSWORD };

	R.p.creds = &creds;
	R.p.allow_plaintext = true;
	R.send_on_ready = false;
	run(script);
	ck_assert_msg(peer_done(&R.peer), "%s", R.transcript);
	ck_assert_str_eq(pst_client_info(R.c)->auth_mech, "PLAIN");
	/* The secret never reaches the transcript. */
	ck_assert_ptr_null(strstr(R.transcript, "AHVzZXIAcGFzcw"));
}
END_TEST

START_TEST(auth_refused_without_tls)
{
	static const char *const script[] = {
		"S: 220 mx ESMTP",
		"C: EHLO client.example.org",
		"S: 250-mx",
		"S: 250 AUTH LOGIN PLAIN",
		NULL,
	};
	struct pst_creds creds = { "user", "pass", PST_CREDS_PASSWORD };

	R.p.creds = &creds;
	run(script);
	ck_assert_int_eq(R.failed, 1);
	ck_assert_int_eq(R.fail_err.stage, PST_STAGE_AUTH);
	ck_assert_int_eq(R.ready, 0);
}
END_TEST

START_TEST(wrong_password_is_reported)
{
	static const char *const script[] = {
		"S: 220 mx ESMTP",
		"C: EHLO client.example.org",
		"S: 250-mx",
		"S: 250 AUTH PLAIN",
		"C: AUTH PLAIN AHVzZXIAcGFzcw==",
		"S: 535 5.7.8 authentication failed",
		NULL,
	};
	struct pst_creds creds = { "user", "pass", PST_CREDS_PASSWORD };

	R.p.creds = &creds;
	R.p.allow_plaintext = true;
	run(script);
	ck_assert_int_eq(R.failed, 1);
	ck_assert_int_eq(R.fail_err.stage, PST_STAGE_AUTH);
	ck_assert_int_eq(R.fail_err.cls, PST_PERM);
	ck_assert_int_eq(R.fail_err.smtp_code, 535);
}
END_TEST

START_TEST(garbage_reply_fails_the_session)
{
	static const char *const script[] = {
		"S: HTTP/1.1 400 Bad Request", NULL,
	};

	run(script);
	ck_assert_int_eq(R.failed, 1);
	ck_assert_int_eq(R.fail_err.cls, PST_TEMP);
	ck_assert_int_eq(R.fail_err.stage, PST_STAGE_GREETING);
}
END_TEST

START_TEST(server_closing_mid_session)
{
	static const char *const script[] = {
		"S: 220 mx ESMTP",
		"C: EHLO client.example.org",
		"CLOSE",
		NULL,
	};

	run(script);
	ck_assert_int_eq(R.failed, 1);
	ck_assert_int_eq(R.fail_err.stage, PST_STAGE_EHLO);
	ck_assert_ptr_nonnull(strstr(R.fail_err.text, "closed"));
}
END_TEST

START_TEST(two_messages_on_one_connection)
{
	static const char *const script[] = {
		"S: 220 mx ESMTP",
		"C: EHLO client.example.org",
		"S: 250 mx",
		"C: MAIL FROM:<s@example.org>",
		"S: 250 ok",
		"C: RCPT TO:<a@example.org>",
		"S: 250 ok",
		"C: DATA",
		"S: 354 go",
		"C: one",
		"C: .",
		"S: 250 ok",
		"C: MAIL FROM:<s@example.org>",
		"S: 250 ok",
		"C: RCPT TO:<a@example.org>",
		"S: 250 ok",
		"C: DATA",
		"S: 354 go",
		"C: one",
		"C: .",
		"S: 250 ok",
		"C: QUIT",
		"S: 221 bye",
		NULL,
	};
	struct pst_err err;

	R.m.nrcpts = 1;
	R.m.body_fd = body_fd("one\r\n");
	R.quit_after = false;
	run(script);
	ck_assert_int_eq(R.sent, 1);
	ck_assert(R.sent_ok);
	lseek(R.m.body_fd, 0, SEEK_SET);
	R.quit_after = true;
	ck_assert_int_eq(pst_client_send(R.c, &R.m, &err), 0);
	event_base_dispatch(R.base);
	ck_assert_msg(peer_done(&R.peer), "%s", R.transcript);
	ck_assert_int_eq(R.sent, 2);
	ck_assert_int_eq(R.closed, 1);
}
END_TEST

START_TEST(starttls_refused_is_not_a_downgrade)
{
	static const char *const script[] = {
		"S: 220 mx ESMTP",
		"C: EHLO client.example.org",
		"S: 250-mx",
		"S: 250 STARTTLS",
		"C! STARTTLS",
		"S: 454 4.7.0 TLS not available",
		NULL,
	};

	/* Opportunistic: TLS was offered, so plain text is no way on. */
	R.p.tls = PST_CLIENT_TLS_OPPORTUNISTIC;
	run(script);
	ck_assert_msg(peer_done(&R.peer), "%s", R.transcript);
	ck_assert_int_eq(R.failed, 1);
	ck_assert_int_eq(R.ready, 0);
	ck_assert_int_eq(R.fail_err.cls, PST_TEMP);
	ck_assert_int_eq(R.fail_err.stage, PST_STAGE_STARTTLS);
	ck_assert_int_eq(R.fail_err.smtp_code, 454);
	ck_assert_str_eq(R.fail_err.esc, "4.7.0");
	ck_assert_str_eq(R.fail_err.text, "STARTTLS refused: 454 4.7.0 TLS "
	    "not available (TLS was offered: not going on in plain text)");
	/* Nothing after the refusal: no MAIL, no body in clear. */
	ck_assert_uint_eq(evbuffer_get_length(bufferevent_get_input(
	    R.peer.bev)), 0);
}
END_TEST

START_TEST(starttls_refused_when_required)
{
	static const char *const script[] = {
		"S: 220 mx ESMTP",
		"C: EHLO client.example.org",
		"S: 250-mx",
		"S: 250 STARTTLS",
		"C! STARTTLS",
		"S: 554 no TLS for you",
		NULL,
	};

	R.p.tls = PST_CLIENT_TLS_STARTTLS;
	run(script);
	ck_assert_int_eq(R.failed, 1);
	/* Our choice to insist, not the server's verdict on the mail. */
	ck_assert_int_eq(R.fail_err.cls, PST_TEMP);
	ck_assert_int_eq(R.fail_err.stage, PST_STAGE_STARTTLS);
	ck_assert_str_eq(R.fail_err.text, "STARTTLS refused: 554 no TLS for "
	    "you (TLS was offered: not going on in plain text)");
}
END_TEST

START_TEST(too_many_recipients_sends_data_for_those_taken)
{
	static const char *const script[] = {
		"S: 220 mx ESMTP",
		"C: EHLO client.example.org",
		"S: 250 mx",
		"C! MAIL FROM:<s@example.org>",
		"S: 250 ok",
		"C! RCPT TO:<a@example.org>",
		"S: 250 ok",
		"C! RCPT TO:<b@example.org>",
		"S: 250 ok",
		"C! RCPT TO:<c@example.org>",
		"S: 452 4.5.3 Too many recipients",
		/* d would be refused the same way: not asked. */
		"C! DATA",
		"S: 354 go",
		"C: x",
		"C: .",
		"S: 250 ok",
		"C: QUIT",
		"S: 221 bye",
		NULL,
	};
	size_t i;

	R.rcpts[2].addr = "c@example.org";
	R.rcpts[3].addr = "d@example.org";
	R.m.nrcpts = 4;
	R.m.body_fd = body_fd("x\r\n");
	run(script);
	ck_assert_msg(peer_done(&R.peer), "%s", R.transcript);
	ck_assert(R.sent_ok);
	ck_assert_int_eq(R.rcpt_ok[0], 1);
	ck_assert_int_eq(R.rcpt_ok[1], 1);
	for (i = 2; i < 4; i++) {
		ck_assert_int_eq(R.rcpt_ok[i], 0);
		ck_assert_int_eq(R.rcpt_err[i].cls, PST_TEMP);
		ck_assert_int_eq(R.rcpt_err[i].detail, PST_CLIENT_E_TOO_MANY);
		ck_assert_int_eq(R.rcpt_err[i].stage, PST_STAGE_RCPT);
		ck_assert_int_eq(R.rcpt_err[i].smtp_code, 452);
		ck_assert_str_eq(R.rcpt_err[i].esc, "4.5.3");
	}
}
END_TEST

START_TEST(too_many_recipients_pipelined_and_rfc821_code)
{
	static const char *const script[] = {
		"S: 220 mx ESMTP",
		"C: EHLO client.example.org",
		"S: 250-mx",
		"S: 250 PIPELINING",
		"C: MAIL FROM:<s@example.org>",
		"C: RCPT TO:<a@example.org>",
		"C: RCPT TO:<b@example.org>",
		"C: RCPT TO:<c@example.org>",
		"C: RCPT TO:<d@example.org>",
		"C: DATA",
		"S: 250 ok",
		"S: 250 ok",
		"S: 552 5.5.3 Too many recipients",
		"S: 452 Too many recipients",
		"S: 550 5.1.1 unknown",
		"S: 354 go",
		"C: x",
		"C: .",
		"S: 250 ok",
		"C: QUIT",
		"S: 221 bye",
		NULL,
	};

	R.rcpts[2].addr = "c@example.org";
	R.rcpts[3].addr = "d@example.org";
	R.m.nrcpts = 4;
	R.m.body_fd = body_fd("x\r\n");
	run(script);
	ck_assert_msg(peer_done(&R.peer), "%s", R.transcript);
	ck_assert(R.sent_ok);
	ck_assert_int_eq(R.rcpt_ok[0], 1);
	/* RFC 5321 4.5.3.1.10: RFC 821's 552 for it is temporary too. */
	ck_assert_int_eq(R.rcpt_err[1].cls, PST_TEMP);
	ck_assert_int_eq(R.rcpt_err[1].detail, PST_CLIENT_E_TOO_MANY);
	ck_assert_int_eq(R.rcpt_err[1].smtp_code, 552);
	ck_assert_int_eq(R.rcpt_err[2].cls, PST_TEMP);
	ck_assert_int_eq(R.rcpt_err[2].detail, PST_CLIENT_E_TOO_MANY);
	ck_assert_int_eq(R.rcpt_err[3].cls, PST_PERM);
	ck_assert_int_eq(R.rcpt_err[3].detail, 0);
}
END_TEST

START_TEST(other_452_is_an_ordinary_refusal)
{
	static const char *const script[] = {
		"S: 220 mx ESMTP",
		"C: EHLO client.example.org",
		"S: 250 mx",
		"C! MAIL FROM:<s@example.org>",
		"S: 250 ok",
		/* Nothing taken yet: no limit was reached. */
		"C! RCPT TO:<a@example.org>",
		"S: 452 4.5.3 Too many recipients",
		"C! RCPT TO:<b@example.org>",
		"S: 250 ok",
		/* Another reason than the count. */
		"C! RCPT TO:<c@example.org>",
		"S: 452 4.2.2 Mailbox full",
		"C! RCPT TO:<d@example.org>",
		"S: 250 ok",
		"C! DATA",
		"S: 354 go",
		"C: x",
		"C: .",
		"S: 250 ok",
		"C: QUIT",
		"S: 221 bye",
		NULL,
	};

	R.rcpts[2].addr = "c@example.org";
	R.rcpts[3].addr = "d@example.org";
	R.m.nrcpts = 4;
	R.m.body_fd = body_fd("x\r\n");
	run(script);
	ck_assert_msg(peer_done(&R.peer), "%s", R.transcript);
	ck_assert(R.sent_ok);
	ck_assert_int_eq(R.rcpt_err[0].cls, PST_TEMP);
	ck_assert_int_eq(R.rcpt_err[0].detail, 0);
	ck_assert_int_eq(R.rcpt_err[2].cls, PST_TEMP);
	ck_assert_int_eq(R.rcpt_err[2].detail, 0);
	ck_assert_int_eq(R.rcpt_ok[1], 1);
	ck_assert_int_eq(R.rcpt_ok[3], 1);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("client/client");
	TCase *tc = tcase_create("client");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, plain_session_without_pipelining);
	tcase_add_test(tc, pipelined_transaction_goes_out_at_once);
	tcase_add_test(tc, body_at_an_offset);
	tcase_add_test(tc, all_recipients_refused_resets);
	tcase_add_test(tc, mail_refused_is_a_message_failure);
	tcase_add_test(tc, silent_greeting_times_out_with_its_stage);
	tcase_add_test(tc, greeting_554_fails_permanently);
	tcase_add_test(tc, starttls_required_but_missing);
	tcase_add_test(tc, plaintext_after_starttls_is_refused);
	tcase_add_test(tc, ehlo_refused_falls_back_to_helo);
	tcase_add_test(tc, smtputf8_needed_but_not_offered);
	tcase_add_test(tc, message_over_server_size_is_refused_before_mail);
	tcase_add_test(tc, auth_plain_when_plaintext_allowed);
	tcase_add_test(tc, auth_refused_without_tls);
	tcase_add_test(tc, wrong_password_is_reported);
	tcase_add_test(tc, garbage_reply_fails_the_session);
	tcase_add_test(tc, server_closing_mid_session);
	tcase_add_test(tc, two_messages_on_one_connection);
	tcase_add_test(tc, starttls_refused_is_not_a_downgrade);
	tcase_add_test(tc, starttls_refused_when_required);
	tcase_add_test(tc, too_many_recipients_sends_data_for_those_taken);
	tcase_add_test(tc, too_many_recipients_pipelined_and_rfc821_code);
	tcase_add_test(tc, other_452_is_an_ordinary_refusal);
	suite_add_tcase(s, tc);
	return s;
}
