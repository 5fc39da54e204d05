/*
 * fuzz_smtps.c: the SMTP server session machine alone (smtp/server.h),
 * with a fake driver: no sockets, no spool, no clock.
 *
 * The first byte picks the sink's behaviour: bit 0 commits synchronously
 * (as sendmail -bs does) rather than later, bit 1 asks for a flush after
 * every input chunk that brought message bytes, bit 2 makes that flush fail, bit 3 refuses every
 * RCPT (with bit 4: ending the transaction), bit 5 makes the sink's
 * writes fail.  The second byte bounds the chunks the rest is fed in.
 * A pending flush or commit completes after the chunk that started it;
 * at the end the client's input ends.
 *
 * Checked: everything written is a sequence of complete replies (three
 * digits, then a space or a hyphen, a CRLF-ended line); nothing is read
 * while the sink works or the session closes; the session is closing
 * once the input ended; a reply that ends the session is the last.
 */
#include <string.h>

#include <event2/buffer.h>

#include "smtp/server.h"
#include "fuzz.h"

struct fake {
	unsigned		 mode;
	bool			 reading;
	int			 closing;
	bool			 unflushed;	/* written since the flush */
	struct evbuffer		*out;
};

static int
sink_mail(void *arg, const struct pst_cmd *cmd, struct pst_smtps_reply *r)
{
	return 0;
}

static int
sink_rcpt(void *arg, const struct pst_cmd *cmd, struct pst_smtps_reply *r)
{
	struct fake *f = arg;

	if (!(f->mode & 0x08))
		return 0;
	r->reset = (f->mode & 0x10) != 0;
	pst_smtps_local_error(r, "refused");
	return -1;
}

static int
sink_write(void *arg, struct evbuffer *buf)
{
	struct fake *f = arg;

	f->unflushed = true;
	evbuffer_drain(buf, evbuffer_get_length(buf));
	return f->mode & 0x20 ? -1 : 0;
}

static int
sink_flush(void *arg)
{
	struct fake *f = arg;

	if (!(f->mode & 0x02) || !f->unflushed)
		return 0;
	f->unflushed = false;
	return 1;
}

static int
sink_commit(void *arg, const struct pst_dot *dot, struct pst_smtps_reply *r)
{
	struct fake *f = arg;

	if (!(f->mode & 0x01))
		return PST_SMTPS_PENDING;
	snprintf(r->queued, sizeof(r->queued), "SYNC");
	return PST_SMTPS_DONE;
}

static void
sink_reset(void *arg)
{
}

static void
io_write(void *arg, const char *buf, size_t len)
{
	struct fake *f = arg;

	FUZZ_CHECK(f->closing == 0);
	evbuffer_add(f->out, buf, len);
}

static void
io_reading(void *arg, bool on)
{
	((struct fake *)arg)->reading = on;
}

static void
io_closing(void *arg)
{
	((struct fake *)arg)->closing++;
}

static const struct pst_smtps_sink sink = {
	.mail = sink_mail,
	.rcpt = sink_rcpt,
	.write = sink_write,
	.flush = sink_flush,
	.commit = sink_commit,
	.reset = sink_reset,
};

static const struct pst_smtps_io io = {
	.write = io_write,
	.reading = io_reading,
	.closing = io_closing,
};

static const struct pst_smtps_params params = {
	.hostname = "fuzz.example.org",
	.ext = PST_SMTPS_EXTENSIONS,
	.message_size = 4096,
	.recipients = 4,
	.errors = PST_SMTPS_ERROR_LIMIT,
	.junk = 30,
	.stress_junk = 30,
};

/* Complete replies only. */
static void
smtps_check_replies(struct evbuffer *out)
{
	const unsigned char *p;
	size_t len, i, start;

	len = evbuffer_get_length(out);
	p = evbuffer_pullup(out, -1);
	for (start = 0; start < len; start = i + 1) {
		FUZZ_CHECK(len - start >= 6);
		for (i = 0; i < 3; i++)
			FUZZ_CHECK(p[start + i] >= '0' && p[start + i] <= '9');
		FUZZ_CHECK(p[start + 3] == ' ' || p[start + 3] == '-');
		for (i = start; i < len && p[i] != '\n'; i++)
			;
		FUZZ_CHECK(i < len && p[i - 1] == '\r');
	}
}

/* The sink's job ended. */
static void
smtps_complete(struct pst_smtps *s, struct fake *f)
{
	struct pst_smtps_reply r = { 0 };

	switch (pst_smtps_state(s)) {
	case PST_SMTPS_FLUSH:
		FUZZ_CHECK(!f->reading);
		pst_smtps_flush_done(s, !(f->mode & 0x04));
		break;
	case PST_SMTPS_COMMIT:
		FUZZ_CHECK(!f->reading);
		snprintf(r.queued, sizeof(r.queued), "LATER");
		pst_smtps_commit_done(s, &r);
		break;
	default:
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct fake f = { 0 };
	struct evbuffer *ib;
	struct pst_smtps *s;
	size_t step, n;
	int guard;

	f.mode = fuzz_byte(&in, 0);
	step = fuzz_byte(&in, 0) + 1;
	FUZZ_CHECK((ib = evbuffer_new()) != NULL);
	FUZZ_CHECK((f.out = evbuffer_new()) != NULL);
	FUZZ_CHECK((s = pst_smtps_new(&params, &sink, &io, &f, ib)) != NULL);
	pst_smtps_greet(s, NULL);
	while (in.len > 0 && pst_smtps_state(s) != PST_SMTPS_CLOSING) {
		n = in.len < step ? in.len : step;
		evbuffer_add(ib, in.p, n);
		in.p += n;
		in.len -= n;
		pst_smtps_input(s);
		/* Each completion may start another job. */
		for (guard = 0; guard < 1000 &&
		    (pst_smtps_state(s) == PST_SMTPS_FLUSH ||
		    pst_smtps_state(s) == PST_SMTPS_COMMIT); guard++)
			smtps_complete(s, &f);
		FUZZ_CHECK(guard < 1000);
	}
	if (pst_smtps_state(s) != PST_SMTPS_CLOSING)
		pst_smtps_eof(s);
	for (guard = 0; guard < 1000 &&
	    pst_smtps_state(s) != PST_SMTPS_CLOSING; guard++)
		smtps_complete(s, &f);
	FUZZ_CHECK(pst_smtps_state(s) == PST_SMTPS_CLOSING);
	FUZZ_CHECK(f.closing == 1);
	FUZZ_CHECK(!f.reading);
	smtps_check_replies(f.out);
	pst_smtps_free(s);
	evbuffer_free(ib);
	evbuffer_free(f.out);
	return 0;
}
