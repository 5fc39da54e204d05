/*
 * bounce.c: RFC 3464 delivery status notifications.
 *
 * The report is written straight into the spool with the synchronous
 * commit (this runs on a pool worker), as a new message from <> to the
 * original sender.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "bounce.h"
#include "common/codec.h"
#include "common/err.h"
#include "shared/config.h"
#include "smtp/trace.h"

#define CTE_8BIT	"Content-Transfer-Encoding: 8bit\r\n"

bool
bounce_wanted(const struct pst_spool_rcpt *r)
{
	if (r->notify == 0)
		return true;
	return (r->notify & PST_SPOOL_NOTIFY_FAILURE) != 0;
}

static int
out(struct pst_spool_msg *msg, struct pst_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
out(struct pst_spool_msg *msg, struct pst_err *err, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_SPOOL,
		    "bounce: formatting");
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	if (pst_spool_msg_write(msg, buf, (size_t)n, err) == -1)
		return -1;
	if (pst_spool_msg_need_flush(msg))
		return pst_spool_msg_flush_sync(msg, err);
	return 0;
}

/* An RFC 3463 status for a recipient: its own code, or a class default. */
static const char *
status_of(const struct pst_spool_rcpt *r)
{
	if (r->esc[0] == '5' || r->esc[0] == '4')
		return r->esc[0] == '5' ? r->esc : "5.4.7";
	return "5.0.0";
}

/*
 * Copies the original message: whole (CRLF text already), or its header
 * section only; with 'msg' NULL it only looks.  '*eightbit' tells whether
 * what it copied holds a byte above 127.  Returns 0 or -1 with 'err'.
 */
static int
copy_original(struct pst_spool_msg *msg, int fd, uint64_t off, uint64_t size,
    bool headers_only, bool *eightbit, struct pst_err *err)
{
	char buf[16384];
	uint64_t end = off + size;
	ssize_t n = 0;
	size_t i, len;
	int matched = 0;	/* of "\r\n\r\n", the header's end */

	*eightbit = false;
	while (off < end && (n = pread(fd, buf, end - off < sizeof(buf) ?
	    (size_t)(end - off) : sizeof(buf), (off_t)off)) > 0) {
		off += (uint64_t)n;
		len = (size_t)n;
		for (i = 0; headers_only && i < (size_t)n; i++) {
			if (buf[i] == "\r\n\r\n"[matched])
				matched++;
			else
				matched = buf[i] == '\r' ? 1 : 0;
			if (matched == 4) {
				len = i + 1;
				break;
			}
		}
		for (i = 0; i < len && !*eightbit; i++)
			*eightbit = (unsigned char)buf[i] >= 0x80;
		if (msg != NULL && (pst_spool_msg_write(msg, buf, len,
		    err) == -1 || (pst_spool_msg_need_flush(msg) &&
		    pst_spool_msg_flush_sync(msg, err) == -1)))
			return -1;
		if (matched == 4)
			return 0;
	}
	if (n == -1 || off < end)
		return pst_err_sys(err, PST_TEMP, PST_STAGE_SPOOL,
		    n == -1 ? errno : EIO, "bounce: reading the original");
	return 0;
}

bool
bounce_relay_wanted(const struct pst_spool_rcpt *r)
{
	return (r->notify & PST_SPOOL_NOTIFY_SUCCESS) != 0;
}

int
bounce_create(struct pst_spool *spool, const struct config *cfg,
    const struct pst_spool_env *env, const unsigned char *action,
    const char *reporter, int body_fd, uint64_t body_off, bool utf8,
    char id[PST_SPOOL_ID_LEN + 1], time_t *arrival,
    struct pst_err *err)
{
	struct pst_spool_msg *msg;
	struct pst_spool_env *benv;
	const struct pst_spool_rcpt *r;
	struct pst_received rcvd = { 0 };
	char date[64], arrived[64], boundary[128], diag[1300], trace[1024];
	unsigned char rnd[8];
	struct tm tm;
	time_t now = time(NULL);
	bool headers_only, failed = false, too_big = false, quoted8, addrs8;
	size_t i;

	for (i = 0; i < env->nrcpts; i++) {
		if (action[i] != BOUNCE_FAILED)
			continue;
		failed = true;
		/* Refused for its size: sending it back would fail the same. */
		if (strcmp(env->rcpts[i].esc, "5.3.4") == 0 ||
		    env->rcpts[i].code == 552)
			too_big = true;
	}

	if ((msg = pst_spool_msg_begin(spool, err)) == NULL)
		return -1;
	benv = pst_spool_msg_env(msg);
	if (pst_spool_env_set_sender(benv, "", err) == -1 ||
	    pst_spool_env_add_rcpt(benv, env->sender, 0, NULL, err) == -1 ||
	    pst_spool_env_set_origin(benv, "bounce", err) == -1)
		goto fail;
	RAND_bytes(rnd, sizeof(rnd));
	snprintf(boundary, sizeof(boundary), "%s/%02x%02x%02x%02x/%s",
	    pst_spool_msg_id(msg), rnd[0], rnd[1], rnd[2], rnd[3],
	    cfg->hostname);
	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	localtime_r(&env->arrival, &tm);
	strftime(arrived, sizeof(arrived), "%a, %d %b %Y %H:%M:%S %z", &tm);
	/* A success report quotes only the header (as Postfix does). */
	headers_only = !failed || too_big || env->ret == PST_SPOOL_RET_HDRS ||
	    env->size > BOUNCE_FULL_MAX;
	/*
	 * The report is sent with what its content needs: BODY=8BITMIME for
	 * 8-bit data (the original, UTF-8 addresses), and for an original
	 * that needs SMTPUTF8 the RFC 6533 types; the report itself needs
	 * SMTPUTF8 only when the address it goes to is UTF-8.
	 */
	if (copy_original(NULL, body_fd, body_off, env->size, headers_only,
	    &quoted8, err) == -1)
		goto fail;
	addrs8 = pst_spool_env_utf8_addrs(env);
	if (quoted8 || addrs8)
		benv->flags |= PST_SPOOL_F_8BITMIME;
	if (utf8)
		benv->flags |= PST_SPOOL_F_SMTPUTF8 | PST_SPOOL_F_UTF8_CHECKED |
		    (pst_spool_env_utf8_addrs(benv) ? PST_SPOOL_F_UTF8_NEEDED :
		    0);

	rcvd.by = cfg->hostname;
	rcvd.by_comment = "postern";
	rcvd.id = pst_spool_msg_id(msg);
	rcvd.date = now;
	if (pst_received_format(&rcvd, trace, sizeof(trace)) == -1) {
		pst_err_set(err, PST_LOCAL, PST_STAGE_SPOOL, "bounce: "
		    "formatting");
		goto fail;
	}
	if (out(msg, err,
	    "%s"
	    "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n"
	    "To: <%s>\r\n"
	    "Subject: %s\r\n"
	    "Date: %s\r\n"
	    "Message-ID: <%s.bounce@%s>\r\n"
	    "Auto-Submitted: auto-replied\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=%s;\r\n"
	    "\tboundary=\"%s\"\r\n"
	    "%s"
	    "\r\n"
	    "This is a MIME-encapsulated message.\r\n"
	    "\r\n"
	    "--%s\r\n"
	    "Content-Type: text/plain; charset=%s\r\n"
	    "%s"
	    "\r\n"
	    "This is the mail system at host %s.\r\n"
	    "\r\n"
	    "%s\r\n"
	    "\r\n",
	    trace, cfg->hostname,
	    env->sender, failed ? "Undelivered Mail Returned to Sender" :
	    "Successful Mail Delivery Report", date, pst_spool_msg_id(msg),
	    cfg->hostname, utf8 ? "global-delivery-status" :
	    "delivery-status", boundary, quoted8 || addrs8 ? CTE_8BIT : "",
	    boundary, addrs8 ? "utf-8" : "us-ascii", addrs8 ? CTE_8BIT : "",
	    cfg->hostname,
	    failed ? "Your message could not be delivered to one or more "
	    "recipients.\r\nIt is attached below." : "Your message was "
	    "relayed to a server that does not send delivery\r\n"
	    "notifications; this is the last one you will get for it.") == -1)
		goto fail;
	for (i = 0; i < env->nrcpts; i++) {
		r = &env->rcpts[i];
		if (action[i] == BOUNCE_FAILED && out(msg, err,
		    "<%s>: %s\r\n\r\n", r->addr, r->error != NULL ? r->error :
		    "delivery failed") == -1)
			goto fail;
		if (action[i] == BOUNCE_RELAYED && out(msg, err,
		    "<%s>: relayed to %s\r\n\r\n", r->addr, reporter != NULL ?
		    reporter : "the upstream") == -1)
			goto fail;
	}
	if (out(msg, err,
	    "--%s\r\n"
	    "Content-Type: message/%sdelivery-status\r\n"
	    "%s"
	    "\r\n"
	    "Reporting-MTA: dns; %s\r\n"
	    "X-Postern-Queue-ID: %s\r\n"
	    "%s%s%s"
	    "Arrival-Date: %s\r\n",
	    boundary, utf8 ? "global-" : "", addrs8 ? CTE_8BIT : "",
	    cfg->hostname, env->id,
	    env->envid != NULL ? "Original-Envelope-Id: " : "",
	    env->envid != NULL ? env->envid : "",
	    env->envid != NULL ? "\r\n" : "", arrived) == -1)
		goto fail;
	for (i = 0; i < env->nrcpts; i++) {
		r = &env->rcpts[i];
		if (action[i] == BOUNCE_NONE)
			continue;
		diag[0] = '\0';
		if (r->code != 0 && action[i] == BOUNCE_FAILED)
			snprintf(diag, sizeof(diag), "Remote-MTA: dns; %s\r\n"
			    "Diagnostic-Code: smtp; %d %s\r\n",
			    reporter != NULL ? reporter : "unknown", r->code,
			    r->error != NULL ? r->error : "");
		if (out(msg, err,
		    "\r\n"
		    "Final-Recipient: %s; %s\r\n"
		    "%s%s%s"
		    "Action: %s\r\n"
		    "Status: %s\r\n"
		    "%s",
		    utf8 && pst_str_8bit(r->addr) ? "utf-8" : "rfc822", r->addr,
		    r->orcpt != NULL ? "Original-Recipient: " : "",
		    r->orcpt != NULL ? r->orcpt : "",
		    r->orcpt != NULL ? "\r\n" : "",
		    action[i] == BOUNCE_FAILED ? "failed" : "relayed",
		    action[i] == BOUNCE_FAILED ? status_of(r) : "2.0.0",
		    diag) == -1)
			goto fail;
	}
	if (out(msg, err, "\r\n--%s\r\nContent-Type: %s\r\n%s\r\n",
	    boundary, utf8 ? (headers_only ? "message/global-headers" :
	    "message/global") : (headers_only ? "text/rfc822-headers" :
	    "message/rfc822"), quoted8 ? CTE_8BIT : "") == -1 ||
	    copy_original(msg, body_fd, body_off, env->size, headers_only,
	    &quoted8, err) == -1 ||
	    out(msg, err, "\r\n--%s--\r\n", boundary) == -1)
		goto fail;
	if (pst_spool_msg_commit_sync(msg, err) == -1)
		goto fail;
	snprintf(id, PST_SPOOL_ID_LEN + 1, "%s", pst_spool_msg_id(msg));
	*arrival = pst_spool_msg_env(msg)->arrival;
	pst_spool_msg_free(msg, NULL);
	return 0;
fail:
	pst_spool_msg_free(msg, NULL);
	return -1;
}
