#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "smtp/server.h"
#include "unit.h"

#define IDLE	(30ull * 1000000)

/*
 * A fake driver: the replies are collected in 'out', the clock is 'now',
 * the sink records what it was given and answers as told.
 */
struct fake {
	struct evbuffer		*in;
	struct pst_smtps	*s;
	char			 out[16384];
	size_t			 outlen;
	bool			 reading;
	bool			 armed;
	uint64_t		 left;		/* last arm() */
	uint64_t		 now;
	int			 closing;
	unsigned		 events[PST_SMTPS_EV_EOF + 1];
	unsigned		 counts[PST_SMTPS_EV_EOF + 1];
	/* The sink. */
	int			 mail_rc, rcpt_rc, data_rc, write_rc, flush_rc;
	int			 commit_rc;
	bool			 rcpt_reset;
	int			 mails, rcpts, resets, commits, flushes;
	char			 body[4096];
	size_t			 bodylen;
	unsigned		 received;
};

static struct fake F;

static int
sink_mail(void *arg, const struct pst_cmd *cmd, struct pst_smtps_reply *r)
{
	struct fake *f = arg;

	f->mails++;
	if (f->mail_rc == -1)
		pst_smtps_reply_set(r, 452, "4.3.1", "Insufficient system "
		    "storage");
	return f->mail_rc;
}

static int
sink_rcpt(void *arg, const struct pst_cmd *cmd, struct pst_smtps_reply *r)
{
	struct fake *f = arg;

	if (f->rcpt_rc == -1) {
		pst_smtps_local_error(r, "no");
		r->reset = f->rcpt_reset;
		return -1;
	}
	f->rcpts++;
	return 0;
}

static int
sink_data(void *arg, struct pst_smtps_reply *r)
{
	struct fake *f = arg;

	if (f->data_rc == -1)
		pst_smtps_local_error(r, NULL);
	return f->data_rc;
}

static int
sink_write(void *arg, struct evbuffer *buf)
{
	struct fake *f = arg;
	size_t n = evbuffer_get_length(buf);

	if (f->write_rc == -1)
		return -1;
	ck_assert_uint_lt(f->bodylen + n, sizeof(f->body));
	evbuffer_remove(buf, f->body + f->bodylen, n);
	f->bodylen += n;
	return 0;
}

static int
sink_flush(void *arg)
{
	struct fake *f = arg;

	if (f->flush_rc != 0)
		f->flushes++;
	return f->flush_rc;
}

static int
sink_commit(void *arg, const struct pst_dot *dot, struct pst_smtps_reply *r)
{
	struct fake *f = arg;

	f->commits++;
	f->received = dot->hops.count;
	if (f->commit_rc == PST_SMTPS_DONE)
		snprintf(r->queued, sizeof(r->queued), "SYNC%d", f->commits);
	else if (f->commit_rc == PST_SMTPS_REFUSED)
		pst_smtps_reply_set(r, 554, "5.4.0", "Error: too many hops");
	return f->commit_rc;
}

static void
sink_reset(void *arg)
{
	struct fake *f = arg;

	f->resets++;
}

static void
io_write(void *arg, const char *buf, size_t len)
{
	struct fake *f = arg;

	ck_assert_uint_lt(f->outlen + len, sizeof(f->out));
	memcpy(f->out + f->outlen, buf, len);
	f->outlen += len;
	f->out[f->outlen] = '\0';
}

static void
io_reading(void *arg, bool on)
{
	((struct fake *)arg)->reading = on;
}

static void
io_arm(void *arg, uint64_t usec)
{
	struct fake *f = arg;

	f->armed = true;
	f->left = usec;
}

static void
io_disarm(void *arg)
{
	((struct fake *)arg)->armed = false;
}

static uint64_t
io_now(void *arg)
{
	return ((struct fake *)arg)->now;
}

static void
io_closing(void *arg)
{
	((struct fake *)arg)->closing++;
}

static void
io_event(void *arg, const struct pst_smtps_event *ev)
{
	struct fake *f = arg;

	f->events[ev->type]++;
	f->counts[ev->type] = ev->count;
}

static const struct pst_smtps_sink sink = {
	.mail = sink_mail,
	.rcpt = sink_rcpt,
	.data = sink_data,
	.write = sink_write,
	.flush = sink_flush,
	.commit = sink_commit,
	.reset = sink_reset,
};

static const struct pst_smtps_io io = {
	.write = io_write,
	.reading = io_reading,
	.arm = io_arm,
	.disarm = io_disarm,
	.now = io_now,
	.closing = io_closing,
	.event = io_event,
};

static struct pst_smtps_params params = {
	.hostname = "mx.example.org",
	.ext = PST_SMTPS_EXTENSIONS,
	.message_size = 1000,
	.recipients = 3,
	.errors = PST_SMTPS_ERROR_LIMIT,
	.junk = 10,
	.stress_junk = 2,
	.idle_us = IDLE,
	.stress_idle_us = IDLE / 10,
	.min_data_rate = 100,
};

static void
setup(void)
{
	memset(&F, 0, sizeof(F));
	F.now = 1000000;
	F.commit_rc = PST_SMTPS_PENDING;
	ck_assert_ptr_nonnull(F.in = evbuffer_new());
	ck_assert_ptr_nonnull(F.s = pst_smtps_new(&params, &sink, &io, &F,
	    F.in));
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_NEW);
	ck_assert(!F.reading);
	pst_smtps_greet(F.s, NULL);
	ck_assert_str_eq(F.out, "220 mx.example.org ESMTP postern\r\n");
	ck_assert(F.reading);
	ck_assert(F.armed);
	ck_assert_uint_eq(F.left, IDLE);
	F.outlen = 0;
	F.out[0] = '\0';
}

static void
teardown(void)
{
	pst_smtps_free(F.s);
	evbuffer_free(F.in);
}

/* Feeds 'len' bytes of 'text' and returns the replies they got. */
static const char *
feedn(const char *text, size_t len)
{
	F.outlen = 0;
	F.out[0] = '\0';
	evbuffer_add(F.in, text, len);
	pst_smtps_input(F.s);
	return F.out;
}

static const char *
feed(const char *text)
{
	return feedn(text, strlen(text));
}

static void
greet(void)
{
	feed("EHLO client.example.org\r\n");
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_READY);
}

START_TEST(server_greeting_note)
{
	F.outlen = 0;
	pst_smtps_free(F.s);
	ck_assert_ptr_nonnull(F.s = pst_smtps_new(&params, &sink, &io, &F,
	    F.in));
	pst_smtps_greet(F.s, "sendmail -bs");
	ck_assert_str_eq(F.out, "220 mx.example.org ESMTP postern "
	    "(sendmail -bs)\r\n");
}
END_TEST

START_TEST(server_ehlo_and_helo)
{
	ck_assert_str_eq(feed("EHLO client.example.org\r\n"),
	    "250-mx.example.org\r\n"
	    "250-PIPELINING\r\n"
	    "250-SIZE 1000\r\n"
	    "250-8BITMIME\r\n"
	    "250-SMTPUTF8\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n"
	    "250 DSN\r\n");
	ck_assert(pst_smtps_esmtp(F.s));
	ck_assert_str_eq(pst_smtps_helo(F.s), "client.example.org");
	ck_assert_str_eq(feed("HELO other\r\n"), "250 mx.example.org\r\n");
	ck_assert(!pst_smtps_esmtp(F.s));
	ck_assert_str_eq(pst_smtps_helo(F.s), "other");
	/* After HELO no parameter is announced. */
	ck_assert_int_eq(strncmp(feed("MAIL FROM:<a@example.org> "
	    "SIZE=10\r\n"), "555 5.5.4 ", 10), 0);
}
END_TEST

START_TEST(server_ehlo_without_extensions)
{
	struct pst_smtps_params p = params;

	pst_smtps_free(F.s);
	p.ext = 0;
	ck_assert_ptr_nonnull(F.s = pst_smtps_new(&p, &sink, &io, &F, F.in));
	pst_smtps_greet(F.s, NULL);
	ck_assert_str_eq(feed("EHLO c\r\n"),
	    "250-mx.example.org\r\n"
	    "250-PIPELINING\r\n"
	    "250 ENHANCEDSTATUSCODES\r\n");
}
END_TEST

START_TEST(server_pipelined_transaction)
{
	const char *out;

	out = feed("EHLO c.example.org\r\n"
	    "MAIL FROM:<a@example.org> BODY=8BITMIME\r\n"
	    "RCPT TO:<b@example.org> NOTIFY=SUCCESS,DELAY\r\n"
	    "RCPT TO:<c@example.org>\r\n"
	    "DATA\r\n"
	    "Received: x\r\n"
	    "Subject: hi\r\n\r\n..dot\r\n.\r\n"
	    "NOOP\r\n");
	ck_assert_ptr_nonnull(strstr(out, "250 DSN\r\n"
	    "250 2.1.0 Ok\r\n"
	    "250 2.1.5 Ok\r\n"
	    "250 2.1.5 Ok\r\n"
	    "354 End data with <CR><LF>.<CR><LF>\r\n"));
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_COMMIT);
	ck_assert(!F.reading);
	ck_assert(!F.armed);
	ck_assert_int_eq(F.rcpts, 2);
	ck_assert_int_eq(F.commits, 1);
	ck_assert_uint_eq(F.received, 1);
	F.body[F.bodylen] = '\0';
	ck_assert_str_eq(F.body, "Received: x\r\nSubject: hi\r\n\r\n.dot\r\n");
	/* The NOOP waits for the commit's answer. */
	F.outlen = 0;
	{
		struct pst_smtps_reply r = { 0 };

		snprintf(r.queued, sizeof(r.queued), "ABC123");
		pst_smtps_commit_done(F.s, &r);
	}
	ck_assert_str_eq(F.out, "250 2.0.0 Ok: queued as ABC123\r\n"
	    "250 2.0.0 Ok\r\n");
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_READY);
	ck_assert(F.reading);
	ck_assert_uint_eq(pst_smtps_messages(F.s), 1);
}
END_TEST

START_TEST(server_commands_out_of_state)
{
	ck_assert_str_eq(feed("MAIL FROM:<a@example.org>\r\n"),
	    "503 5.5.1 Error: send HELO/EHLO first\r\n");
	ck_assert_str_eq(feed("RCPT TO:<a@example.org>\r\n"),
	    "503 5.5.1 Error: need MAIL command\r\n");
	ck_assert_str_eq(feed("DATA\r\n"),
	    "503 5.5.1 Error: need MAIL command\r\n");
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_HELO);
	greet();
	ck_assert_str_eq(feed("RCPT TO:<a@example.org>\r\n"),
	    "503 5.5.1 Error: need MAIL command\r\n");
	ck_assert_str_eq(feed("MAIL FROM:<>\r\n"), "250 2.1.0 Ok\r\n");
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_MAIL);
	ck_assert_str_eq(feed("MAIL FROM:<>\r\n"),
	    "503 5.5.1 Error: nested MAIL command\r\n");
	ck_assert_str_eq(feed("DATA\r\n"),
	    "554 5.5.1 Error: no valid recipients\r\n");
	ck_assert_str_eq(feed("RSET\r\n"), "250 2.0.0 Ok\r\n");
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_READY);
	ck_assert_str_eq(feed("STARTTLS\r\n"),
	    "502 5.5.1 Error: command not implemented\r\n");
	ck_assert_str_eq(feed("VRFY x\r\n"), "252 2.5.0 Cannot VRFY user, "
	    "but will accept message and attempt delivery\r\n");
	ck_assert_str_eq(feed("HELP\r\n"), "214 2.0.0 Commands: EHLO HELO "
	    "MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\r\n");
	ck_assert_str_eq(feed("QUIT\r\n"), "221 2.0.0 Bye\r\n");
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_CLOSING);
	ck_assert_int_eq(F.closing, 1);
	ck_assert(!F.reading);
	/* Nothing is read once closing. */
	ck_assert_str_eq(feed("NOOP\r\n"), "");
}
END_TEST

START_TEST(server_size_and_recipient_limits)
{
	greet();
	ck_assert_str_eq(feed("MAIL FROM:<a@example.org> SIZE=1001\r\n"),
	    "552 5.3.4 Message size exceeds fixed limit\r\n");
	ck_assert_int_eq(F.mails, 0);
	ck_assert_str_eq(feed("MAIL FROM:<a@example.org> SIZE=1000\r\n"),
	    "250 2.1.0 Ok\r\n");
	ck_assert_str_eq(feed("RCPT TO:<a@example.org>\r\n"
	    "RCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\n"
	    "RCPT TO:<d@example.org>\r\n"),
	    "250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
	    "452 4.5.3 Error: too many recipients\r\n");
	ck_assert_int_eq(F.rcpts, 3);
	ck_assert_int_eq(F.events[PST_SMTPS_EV_REPLY], 2);
}
END_TEST

START_TEST(server_sink_refusals)
{
	greet();
	F.mail_rc = -1;
	ck_assert_str_eq(feed("MAIL FROM:<a@example.org>\r\n"),
	    "452 4.3.1 Insufficient system storage\r\n");
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_READY);
	F.mail_rc = 0;
	feed("MAIL FROM:<a@example.org>\r\n");
	F.rcpt_rc = -1;
	ck_assert_str_eq(feed("RCPT TO:<a@example.org>\r\n"),
	    "451 4.3.0 Local error in processing: no\r\n");
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_MAIL);
	F.rcpt_reset = true;
	feed("RCPT TO:<a@example.org>\r\n");
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_READY);
	F.rcpt_rc = 0;
	feed("MAIL FROM:<a@example.org>\r\nRCPT TO:<a@example.org>\r\n");
	F.data_rc = -1;
	ck_assert_str_eq(feed("DATA\r\n"),
	    "451 4.3.0 Local error in processing\r\n");
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_READY);
	/* Refused at the end of data: the hop check. */
	F.data_rc = 0;
	F.commit_rc = PST_SMTPS_REFUSED;
	ck_assert_str_eq(feed("MAIL FROM:<a@example.org>\r\n"
	    "RCPT TO:<a@example.org>\r\nDATA\r\nx\r\n.\r\nNOOP\r\n"),
	    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	    "354 End data with <CR><LF>.<CR><LF>\r\n"
	    "554 5.4.0 Error: too many hops\r\n250 2.0.0 Ok\r\n");
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_READY);
	ck_assert_uint_eq(pst_smtps_messages(F.s), 0);
}
END_TEST

START_TEST(server_synchronous_commit)
{
	greet();
	F.commit_rc = PST_SMTPS_DONE;
	ck_assert_str_eq(feed("MAIL FROM:<a@example.org>\r\n"
	    "RCPT TO:<a@example.org>\r\nDATA\r\nx\r\n.\r\n"
	    "MAIL FROM:<a@example.org>\r\n"),
	    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	    "354 End data with <CR><LF>.<CR><LF>\r\n"
	    "250 2.0.0 Ok: queued as SYNC1\r\n250 2.1.0 Ok\r\n");
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_MAIL);
}
END_TEST

START_TEST(server_message_too_large)
{
	char big[1200];

	greet();
	memset(big, 'a', sizeof(big));
	memcpy(big + sizeof(big) - 3, "\r\n", 3);
	feed("MAIL FROM:<a@example.org>\r\nRCPT TO:<a@example.org>\r\n"
	    "DATA\r\n");
	feed(big);
	ck_assert_int_eq(strncmp(feed(".\r\n"), "552 5.3.4 ", 10), 0);
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_READY);
	ck_assert_int_eq(F.commits, 0);
}
END_TEST

START_TEST(server_flush_pauses_and_failure_discards)
{
	greet();
	feed("MAIL FROM:<a@example.org>\r\nRCPT TO:<a@example.org>\r\n"
	    "DATA\r\n");
	F.flush_rc = 1;
	F.now += 1000000;
	feed("line one\r\n");
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_FLUSH);
	ck_assert(!F.reading);
	ck_assert(!F.armed);
	F.flush_rc = 0;
	/* The DATA time left is kept across the flush. */
	F.now += 5000000;
	pst_smtps_flush_done(F.s, false);
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_DATA);
	ck_assert(F.reading);
	ck_assert_uint_eq(F.left, IDLE - 1000000 + 10 * 1000000 / 100);
	ck_assert_str_eq(feed("line two\r\n.\r\n"), "451 4.3.0 Local error "
	    "in processing: cannot write the message\r\n");
	ck_assert_int_eq(F.commits, 0);
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_READY);
	/* A flush that cannot start ends the session. */
	feed("MAIL FROM:<a@example.org>\r\nRCPT TO:<a@example.org>\r\n"
	    "DATA\r\n");
	F.flush_rc = -1;
	ck_assert_str_eq(feed("x\r\n"),
	    "451 4.3.0 Local error in processing\r\n");
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_CLOSING);
}
END_TEST

START_TEST(server_write_failure_closes)
{
	greet();
	feed("MAIL FROM:<a@example.org>\r\nRCPT TO:<a@example.org>\r\n"
	    "DATA\r\n");
	F.write_rc = -1;
	ck_assert_str_eq(feed("x\r\n"),
	    "451 4.3.0 Local error in processing\r\n");
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_CLOSING);
}
END_TEST

START_TEST(server_error_limit)
{
	int i;

	greet();
	for (i = 0; i < PST_SMTPS_ERROR_LIMIT - 1; i++)
		ck_assert_str_eq(feed("BOGUS\r\n"),
		    "500 5.5.1 Command unrecognized\r\n");
	ck_assert_str_eq(feed("DATA\r\nNOOP\r\n"), "503 5.5.1 Error: need "
	    "MAIL command\r\n421 4.7.0 Error: too many errors\r\n");
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_CLOSING);
	ck_assert_uint_eq(F.events[PST_SMTPS_EV_ERROR_LIMIT], 1);
	ck_assert_uint_eq(F.counts[PST_SMTPS_EV_ERROR_LIMIT],
	    PST_SMTPS_ERROR_LIMIT);
}
END_TEST

START_TEST(server_junk_limit)
{
	int i;

	greet();
	for (i = 0; i < 10; i++)
		ck_assert_str_eq(feed("NOOP\r\n"), "250 2.0.0 Ok\r\n");
	ck_assert_str_eq(feed("EHLO again\r\n"), "421 4.7.0 Error: too many "
	    "commands without mail\r\n");
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_CLOSING);
	ck_assert_uint_eq(F.events[PST_SMTPS_EV_JUNK_LIMIT], 1);
	ck_assert_uint_eq(F.counts[PST_SMTPS_EV_JUNK_LIMIT], 10);
}
END_TEST

START_TEST(server_junk_count_restarts_with_mail)
{
	struct pst_smtps_reply r = { 0 };
	int i;

	greet();
	for (i = 0; i < 9; i++)
		feed("NOOP\r\n");
	feed("MAIL FROM:<a@example.org>\r\nRCPT TO:<a@example.org>\r\n"
	    "DATA\r\nx\r\n.\r\n");
	snprintf(r.queued, sizeof(r.queued), "Q");
	pst_smtps_commit_done(F.s, &r);
	for (i = 0; i < 10; i++)
		ck_assert_str_eq(feed("RSET\r\n"), "250 2.0.0 Ok\r\n");
	pst_smtps_set_stress(F.s, true);
	ck_assert_str_eq(feed("RSET\r\n"), "421 4.7.0 Error: too many "
	    "commands without mail\r\n");
}
END_TEST

START_TEST(server_http_request_closes)
{
	ck_assert_str_eq(feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "");
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_CLOSING);
	ck_assert_uint_eq(F.events[PST_SMTPS_EV_HTTP], 1);
	ck_assert_int_eq(F.closing, 1);
}
END_TEST

START_TEST(server_bad_lines)
{
	ck_assert_str_eq(feedn("NO\0OP\r\n", 7), "500 5.5.2 NUL character "
	    "in command\r\n");
	ck_assert_str_eq(feed("NOOP\n"), "521 5.5.2 Bare LF received\r\n");
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_CLOSING);
	ck_assert_uint_eq(F.events[PST_SMTPS_EV_PROTOCOL], 1);
}
END_TEST

START_TEST(server_timeouts)
{
	char line[201];

	memset(line, 'x', 198);
	memcpy(line + 198, "\r\n", 3);
	greet();
	ck_assert_uint_eq(F.left, IDLE);
	feed("MAIL FROM:<a@example.org>\r\nRCPT TO:<a@example.org>\r\n"
	    "DATA\r\n");
	ck_assert_uint_eq(F.left, IDLE);
	/* 200 bytes at 100 bytes/s: the deadline grows by 2 s, up to idle. */
	F.now += 10000000;
	feed(line);
	ck_assert_uint_eq(F.left, IDLE - 10000000 + 2000000);
	/* Under stress the deadline running shrinks. */
	pst_smtps_set_stress(F.s, true);
	ck_assert_uint_eq(F.left, IDLE / 10);
	F.outlen = 0;
	ck_assert_int_eq(pst_smtps_timeout(F.s), 0);
	ck_assert_str_eq(F.out, "421 4.4.2 Error: timeout exceeded\r\n");
	ck_assert_uint_eq(F.events[PST_SMTPS_EV_TIMEOUT], 1);
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_CLOSING);
	ck_assert_uint_eq(F.left, IDLE / 10);
	/* The last reply never left. */
	ck_assert_int_eq(pst_smtps_timeout(F.s), -1);
}
END_TEST

START_TEST(server_eof_answers_then_closes)
{
	evbuffer_add(F.in, "EHLO c\r\nMAIL FROM:<a@example.org>\r\nNOOP",
	    38);
	F.outlen = 0;
	pst_smtps_eof(F.s);
	ck_assert_ptr_nonnull(strstr(F.out, "250 DSN\r\n250 2.1.0 Ok\r\n"));
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_CLOSING);
	ck_assert_uint_eq(F.events[PST_SMTPS_EV_EOF], 1);
	ck_assert(!F.reading);
}
END_TEST

START_TEST(server_eof_during_commit_waits)
{
	struct pst_smtps_reply r = { 0 };

	greet();
	feed("MAIL FROM:<a@example.org>\r\nRCPT TO:<a@example.org>\r\n"
	    "DATA\r\nx\r\n.\r\nQUIT\r\n");
	pst_smtps_eof(F.s);
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_COMMIT);
	F.outlen = 0;
	pst_smtps_local_error(&r, "message not queued");
	pst_smtps_commit_done(F.s, &r);
	ck_assert_str_eq(F.out, "451 4.3.0 Local error in processing: "
	    "message not queued\r\n221 2.0.0 Bye\r\n");
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_CLOSING);
}
END_TEST

START_TEST(server_shutdown)
{
	struct pst_smtps_reply r = { 0 };

	greet();
	feed("MAIL FROM:<a@example.org>\r\nRCPT TO:<a@example.org>\r\n"
	    "DATA\r\nx\r\n.\r\n");
	pst_smtps_shutdown(F.s);
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_COMMIT);
	F.outlen = 0;
	snprintf(r.queued, sizeof(r.queued), "Q1");
	pst_smtps_commit_done(F.s, &r);
	ck_assert_str_eq(F.out, "250 2.0.0 Ok: queued as Q1\r\n"
	    "421 4.3.2 Service shutting down\r\n");
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_CLOSING);
}
END_TEST

START_TEST(server_refuse)
{
	pst_smtps_free(F.s);
	F.outlen = 0;
	ck_assert_ptr_nonnull(F.s = pst_smtps_new(&params, &sink, &io, &F,
	    F.in));
	pst_smtps_refuse(F.s, 554, "5.7.1", "Access denied");
	ck_assert_str_eq(F.out, "554 5.7.1 Access denied\r\n");
	ck_assert_int_eq(pst_smtps_state(F.s), PST_SMTPS_CLOSING);
	ck_assert(!F.reading);
}
END_TEST

START_TEST(server_dsn_helpers)
{
	struct pst_cmd cmd;
	struct pst_err err;
	char buf[PST_SMTPS_ORCPT_MAX];
	const char *line = "RCPT TO:<a@example.org> NOTIFY=FAILURE,DELAY "
	    "ORCPT=rfc822;a@example.org";

	ck_assert_int_eq(pst_cmd_parse(line, strlen(line),
	    PST_SMTPS_EXTENSIONS, &cmd, &err), 0);
	ck_assert_uint_eq(pst_smtps_notify(cmd.rcpt.notify),
	    PST_SPOOL_NOTIFY_FAILURE | PST_SPOOL_NOTIFY_DELAY);
	ck_assert_uint_eq(pst_smtps_notify(PST_NOTIFY_NEVER),
	    PST_SPOOL_NOTIFY_NEVER);
	pst_smtps_orcpt(&cmd, buf, sizeof(buf));
	ck_assert_str_eq(buf, "rfc822;a@example.org");
	cmd.rcpt.orcpt[0] = '\0';
	pst_smtps_orcpt(&cmd, buf, sizeof(buf));
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(pst_smtps_ret(PST_RET_HDRS), PST_SPOOL_RET_HDRS);
	ck_assert_int_eq(pst_smtps_ret(PST_RET_FULL), PST_SPOOL_RET_FULL);
	ck_assert_int_eq(pst_smtps_ret(PST_RET_NONE), PST_SPOOL_RET_UNSET);
}
END_TEST

START_TEST(server_state_names)
{
	ck_assert_str_eq(pst_smtps_state_name(PST_SMTPS_RCPT), "rcpt");
	ck_assert_str_eq(pst_smtps_phase_name(PST_SMTPS_RCPT), "command");
	ck_assert_str_eq(pst_smtps_phase_name(PST_SMTPS_HELO), "command");
	ck_assert_str_eq(pst_smtps_phase_name(PST_SMTPS_DATA), "data");
	ck_assert_str_eq(pst_smtps_state_name(PST_SMTPS__COUNT), "?");
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("smtp/server");
	TCase *tc = tcase_create("session");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, server_greeting_note);
	tcase_add_test(tc, server_ehlo_and_helo);
	tcase_add_test(tc, server_ehlo_without_extensions);
	tcase_add_test(tc, server_pipelined_transaction);
	tcase_add_test(tc, server_commands_out_of_state);
	tcase_add_test(tc, server_size_and_recipient_limits);
	tcase_add_test(tc, server_sink_refusals);
	tcase_add_test(tc, server_synchronous_commit);
	tcase_add_test(tc, server_message_too_large);
	tcase_add_test(tc, server_flush_pauses_and_failure_discards);
	tcase_add_test(tc, server_write_failure_closes);
	tcase_add_test(tc, server_error_limit);
	tcase_add_test(tc, server_junk_limit);
	tcase_add_test(tc, server_junk_count_restarts_with_mail);
	tcase_add_test(tc, server_http_request_closes);
	tcase_add_test(tc, server_bad_lines);
	tcase_add_test(tc, server_timeouts);
	tcase_add_test(tc, server_eof_answers_then_closes);
	tcase_add_test(tc, server_eof_during_commit_waits);
	tcase_add_test(tc, server_shutdown);
	tcase_add_test(tc, server_refuse);
	tcase_add_test(tc, server_dsn_helpers);
	tcase_add_test(tc, server_state_names);
	suite_add_tcase(s, tc);
	return s;
}
