/*
 * upgrade.c: a TLS client handshake on top of a connected bufferevent.
 *
 * The plain bufferevent is wrapped in a libevent OpenSSL filter, which
 * owns it from then on (BEV_OPT_CLOSE_ON_FREE).  One handshake is one
 * struct pst_tls, shaking hands until it fails or is freed on success.
 * Success is reported straight from the filter's BEV_EVENT_CONNECTED, so the
 * callee installs its callbacks before the loop runs again and no event
 * of the new connection can slip by.  Failures are reported from the
 * handle's own event, made active by the failing path: the filter is then
 * freed from the outermost callback, never from inside its own.
 *
 * Invariants: the callback runs exactly once unless pst_tls_cancel() came
 * first; the handle is freed before the callback runs; the SSL's app data
 * points into the handle only while the handle lives.
 *
 * It does not retry, fall back to plain text, or remember anything across
 * connections: that is the caller's policy (lib/client/negotiate.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/err.h"
#include "common/units.h"
#include "tls/text.h"
#include "tls/upgrade.h"
#include "tls/verify.h"

#define UNREAD_PREVIEW	40	/* early input bytes shown */

enum upgrade_state {
	UP_ST_HANDSHAKE,	/* waiting for the handshake to end */
	UP_ST_FAILED,		/* failed; the report is scheduled */
};

struct pst_tls {
	enum upgrade_state	 state;
	struct bufferevent	*bev;		/* the filter */
	SSL			*ssl;		/* inside 'bev' */
	struct event		*ev;		/* timeout, report */
	uint64_t		 timeout_ms;
	bool			 sni;
	int			 min_proto, max_proto;
	pst_tls_cb		 cb;
	void			*arg;
	struct pst_err		 err;		/* when failed */
	struct tls_check	 chk;
};

static int	 refuse_unread(struct bufferevent *, struct pst_err *);
static void	 upgrade_event(struct bufferevent *, short, void *);
static void	 upgrade_timer(evutil_socket_t, short, void *);
static void	 upgrade_fail(struct pst_tls *, enum pst_tls_fail,
		    const char *, ...) __attribute__((format(printf, 3, 4)));
static void	 upgrade_errq(struct bufferevent *, struct tls_errq *);
static void	 upgrade_ssl_error(struct pst_tls *, const struct tls_errq *,
		    short, int);
static void	 upgrade_succeed(struct pst_tls *);
static void	 upgrade_free(struct pst_tls *);
static bool	 looks_plaintext(const struct tls_errq *);
static bool	 version_mismatch(const struct tls_errq *);
static const char *proto_name(int);
static void	 info_fill(struct pst_tls_info *, SSL *, const struct tls_check *,
		    bool);

static int
refuse_unread(struct bufferevent *under, struct pst_err *err)
{
	struct evbuffer *in = bufferevent_get_input(under);
	char preview[UNREAD_PREVIEW + 1], shown[UNREAD_PREVIEW + 1];
	size_t n, i;
	ev_ssize_t got;

	if ((n = evbuffer_get_length(in)) == 0)
		return 0;
	got = evbuffer_copyout(in, preview, UNREAD_PREVIEW);
	if (got < 0)
		got = 0;
	for (i = 0; i < (size_t)got; i++) {
		unsigned char c = (unsigned char)preview[i];

		shown[i] = (c >= 0x20 && c < 0x7f && c != '"') ? (char)c :
		    '.';
	}
	shown[i] = '\0';
	pst_err_set(err, PST_TEMP, PST_STAGE_TLS,
	    "refusing to start TLS: the peer sent %zu byte%s before the "
	    "handshake (\"%s%s\"): a plain-text server, or data injected "
	    "after STARTTLS", n, n == 1 ? "" : "s", shown,
	    n > (size_t)got ? "..." : "");
	err->detail = PST_TLS_F_UNREAD;
	return -1;
}

struct pst_tls *
pst_tls_upgrade(struct bufferevent *under, SSL_CTX *ctx,
    const char *peer_name, const struct pst_tls_policy *policy,
    uint64_t timeout_ms, pst_tls_cb cb, void *arg, struct pst_err *err)
{
	struct event_base *base;
	struct pst_tls *t;
	const char *name, *why;
	struct timeval tv;
	size_t i;

	pst_err_clear(err);
	if (refuse_unread(under, err) == -1)
		return NULL;
	if (policy->npins > PST_TLS_PINS_MAX) {
		pst_err_set(err, PST_LOCAL, PST_STAGE_TLS,
		    "%zu fingerprints: at most %d are allowed", policy->npins,
		    PST_TLS_PINS_MAX);
		err->detail = PST_TLS_F_LOCAL;
		return NULL;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		pst_err_sys(err, PST_LOCAL, PST_STAGE_TLS, errno,
		    "starting TLS");
		err->detail = PST_TLS_F_LOCAL;
		return NULL;
	}
	t->state = UP_ST_HANDSHAKE;
	t->cb = cb;
	t->arg = arg;
	t->timeout_ms = timeout_ms;
	t->chk.verify = policy->verify;
	for (i = 0; i < policy->npins; i++) {
		if (pst_tls_pin_parse(policy->pins[i], &t->chk.pins[i],
		    &why) == -1) {
			pst_err_set(err, PST_LOCAL, PST_STAGE_TLS,
			    "fingerprint %zu: %s", i + 1, why);
			goto fail;
		}
	}
	t->chk.npins = policy->npins;

	if ((t->ssl = SSL_new(ctx)) == NULL) {
		ERR_clear_error();
		pst_err_set(err, PST_LOCAL, PST_STAGE_TLS,
		    "cannot create a TLS connection (out of memory?)");
		goto fail;
	}
	name = policy->server_name != NULL ? policy->server_name : peer_name;
	if (tls_peer_setup(t->ssl, name, &t->chk, &t->sni, err) == -1)
		goto fail;
	SSL_set_app_data(t->ssl, &t->chk);
	t->min_proto = SSL_get_min_proto_version(t->ssl);
	t->max_proto = SSL_get_max_proto_version(t->ssl);

	base = bufferevent_get_base(under);
	if ((t->ev = evtimer_new(base, upgrade_timer, t)) == NULL) {
		pst_err_set(err, PST_LOCAL, PST_STAGE_TLS,
		    "cannot create the TLS handshake timer");
		goto fail;
	}

	t->bev = bufferevent_openssl_filter_new(base, under, t->ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (t->bev == NULL) {
		/*
		 * libevent 2.1 starts the handshake from the loop, not from
		 * the constructor, so NULL means it ran out of memory before
		 * taking 'under'.  XXX Whether it freed the SSL depends on
		 * where it failed; it is left alone, a leak rather than a
		 * double free.
		 */
		t->ssl = NULL;
		pst_err_set(err, PST_LOCAL, PST_STAGE_TLS,
		    "cannot create the TLS bufferevent (out of memory?)");
		goto fail;
	}
	bufferevent_setcb(t->bev, NULL, NULL, upgrade_event, t);
	/* Our timer bounds the handshake; old plain-text timeouts must not. */
	bufferevent_set_timeouts(under, NULL, NULL);

	/*
	 * libevent 2.1 sends the ClientHello from the write callback of
	 * 'under'; a socket calls it once writable, a bufferevent pair
	 * never does on its own.  Kick it, from the loop.
	 */
	bufferevent_trigger(under, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
	if (timeout_ms > 0) {
		tv.tv_sec = (time_t)(timeout_ms / 1000);
		tv.tv_usec = (suseconds_t)(timeout_ms % 1000 * 1000);
		evtimer_add(t->ev, &tv);
	}
	return t;

fail:
	err->detail = PST_TLS_F_LOCAL;
	if (t->ssl != NULL)
		SSL_free(t->ssl);
	if (t->ev != NULL)
		event_free(t->ev);
	free(t);
	return NULL;
}

void
pst_tls_cancel(struct pst_tls *t)
{
	if (t == NULL)
		return;
	upgrade_free(t);
}

/* Frees the handle and, through the filter, the connection. */
static void
upgrade_free(struct pst_tls *t)
{
	if (t->ssl != NULL)
		SSL_set_app_data(t->ssl, NULL);
	if (t->bev != NULL)
		bufferevent_free(t->bev);
	event_free(t->ev);
	free(t);
}

static void
upgrade_event(struct bufferevent *bev, short what, void *arg)
{
	struct pst_tls *t = arg;
	struct tls_errq q;
	int sockerr = EVUTIL_SOCKET_ERROR();

	if (t->state != UP_ST_HANDSHAKE)
		return;
	if (what & BEV_EVENT_CONNECTED) {
		upgrade_succeed(t);
		return;
	}
	upgrade_errq(bev, &q);
	upgrade_ssl_error(t, &q, what, sockerr);
}

static void
upgrade_succeed(struct pst_tls *t)
{
	struct pst_tls_info info;
	struct bufferevent *bev = t->bev;
	pst_tls_cb cb = t->cb;
	void *arg = t->arg;

	/* Fail closed should the check somehow not have run. */
	if (!t->chk.seen) {
		upgrade_fail(t, PST_TLS_F_VERIFY, "TLS handshake ended "
		    "without a certificate check");
		return;
	}
	info_fill(&info, t->ssl, &t->chk, t->sni);
	SSL_set_app_data(t->ssl, NULL);
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	t->bev = NULL;
	t->ssl = NULL;
	upgrade_free(t);
	cb(bev, &info, NULL, arg);
}

static void
upgrade_fail(struct pst_tls *t, enum pst_tls_fail detail, const char *fmt,
    ...)
{
	char text[PST_ERR_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	pst_err_set(&t->err, detail == PST_TLS_F_LOCAL ? PST_LOCAL : PST_TEMP,
	    PST_STAGE_TLS, "%s", text);
	t->err.detail = detail;
	t->state = UP_ST_FAILED;
	if (t->bev != NULL)
		bufferevent_disable(t->bev, EV_READ | EV_WRITE);
	evtimer_del(t->ev);
	event_active(t->ev, EV_TIMEOUT, 1);
}

static bool
looks_plaintext(const struct tls_errq *q)
{
	/*
	 * What OpenSSL says when the first record header is not TLS: "220 "
	 * from an SMTP server has no valid record type and version.
	 */
	static const int reasons[] = {
		SSL_R_WRONG_VERSION_NUMBER,
		SSL_R_HTTP_REQUEST,
		SSL_R_HTTPS_PROXY_REQUEST,
		SSL_R_UNKNOWN_PROTOCOL,
		SSL_R_PACKET_LENGTH_TOO_LONG,
		SSL_R_RECORD_LENGTH_MISMATCH,
		SSL_R_WRONG_SSL_VERSION,
		SSL_R_ENCRYPTED_LENGTH_TOO_LONG,
	};
	size_t i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		if (tls_errq_has(q, ERR_LIB_SSL, reasons[i]))
			return true;
	}
	return false;
}

static bool
version_mismatch(const struct tls_errq *q)
{
	static const int reasons[] = {
		SSL_R_TLSV1_ALERT_PROTOCOL_VERSION,
		SSL_R_UNSUPPORTED_PROTOCOL,
		SSL_R_NO_PROTOCOLS_AVAILABLE,
		SSL_R_VERSION_TOO_LOW,
		SSL_R_VERSION_TOO_HIGH,
	};
	size_t i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		if (tls_errq_has(q, ERR_LIB_SSL, reasons[i]))
			return true;
	}
	return false;
}

static const char *
proto_name(int v)
{
	switch (v) {
	case TLS1_VERSION:
		return "TLSv1";
	case TLS1_1_VERSION:
		return "TLSv1.1";
	case TLS1_2_VERSION:
		return "TLSv1.2";
	case TLS1_3_VERSION:
		return "TLSv1.3";
	}
	return "any";
}

/*
 * Takes the OpenSSL errors the filter kept, oldest first.  It keeps the
 * last few and hands out the newest first.  libevent 2.1 also files
 * SSL_get_error()'s result among them (a small number with no library),
 * which says nothing new.
 */
static void
upgrade_errq(struct bufferevent *bev, struct tls_errq *q)
{
	struct tls_errq rev = { .n = 0 };
	unsigned long e;
	size_t i;

	while ((e = bufferevent_get_openssl_error(bev)) != 0) {
		if (ERR_GET_LIB(e) == 0 && e <= SSL_ERROR_WANT_RETRY_VERIFY)
			continue;
		if (rev.n < TLS_ERRQ_MAX)
			rev.e[rev.n++] = e;
	}
	q->n = 0;
	for (i = 0; i < rev.n; i++)
		q->e[q->n++] = rev.e[rev.n - 1 - i];
	ERR_clear_error();
}

/* Turns the filter's error event into words. */
static void
upgrade_ssl_error(struct pst_tls *t, const struct tls_errq *q, short what,
    int sockerr)
{
	char reasons[PST_ERR_TEXT_MAX / 2], range[32];

	tls_errq_format(q, reasons, sizeof(reasons));
	if (t->min_proto == t->max_proto)
		snprintf(range, sizeof(range), "%s", proto_name(t->min_proto));
	else
		snprintf(range, sizeof(range), "%s to %s",
		    proto_name(t->min_proto), proto_name(t->max_proto));

	if (t->chk.rejected) {
		upgrade_fail(t, t->chk.npins > 0 ? PST_TLS_F_PIN :
		    PST_TLS_F_VERIFY, "%s", t->chk.why);
	} else if (looks_plaintext(q)) {
		upgrade_fail(t, PST_TLS_F_PLAINTEXT, "TLS handshake failed: "
		    "the peer answered in plain text, not TLS (%s); it "
		    "does not speak TLS on this port", reasons);
	} else if (version_mismatch(q)) {
		upgrade_fail(t, PST_TLS_F_VERSION, "TLS handshake failed: "
		    "no protocol version in common with the peer (%s); we "
		    "allow %s", reasons, range);
	} else if (q->n > 0) {
		upgrade_fail(t, PST_TLS_F_HANDSHAKE,
		    "TLS handshake failed: %s", reasons);
	} else if ((what & BEV_EVENT_TIMEOUT) != 0) {
		upgrade_fail(t, PST_TLS_F_TIMEOUT, "TLS handshake timed out");
	} else if ((what & BEV_EVENT_EOF) != 0 || sockerr == 0) {
		/* Some servers hang up without an alert on a mismatch. */
		upgrade_fail(t, PST_TLS_F_CLOSED, "the peer closed the "
		    "connection during the TLS handshake, without saying "
		    "why (does it support the TLS versions we allow, %s?)",
		    range);
	} else {
		upgrade_fail(t, PST_TLS_F_CLOSED, "connection lost during "
		    "the TLS handshake: %s",
		    evutil_socket_error_to_string(sockerr));
	}
}

static void
upgrade_timer(evutil_socket_t fd, short what, void *arg)
{
	struct pst_tls *t = arg;
	struct pst_tls_info info, *infop = NULL;
	struct pst_err err;
	pst_tls_cb cb = t->cb;
	void *cbarg = t->arg;
	char took[32];

	if (t->state == UP_ST_HANDSHAKE) {
		pst_duration_format(t->timeout_ms, took, sizeof(took));
		pst_err_set(&t->err, PST_TEMP, PST_STAGE_TLS,
		    "TLS handshake timed out after %s", took);
		t->err.detail = PST_TLS_F_TIMEOUT;
	}
	err = t->err;
	if (t->chk.seen) {
		info_fill(&info, NULL, &t->chk, t->sni);
		infop = &info;
	}
	upgrade_free(t);
	cb(NULL, infop, &err, cbarg);
}

/*
 * Describes the session of 'ssl' (may be NULL when the handshake failed)
 * and what 'chk' recorded.
 */
static void
info_fill(struct pst_tls_info *info, SSL *ssl,
    const struct tls_check *chk, bool sni)
{
	const char *s;

	memset(info, 0, sizeof(*info));
	if (ssl != NULL) {
		s = SSL_get_version(ssl);
		tls_copy_clean(info->version, sizeof(info->version), s,
		    strlen(s));
		if ((s = SSL_get_cipher_name(ssl)) != NULL)
			tls_copy_clean(info->cipher, sizeof(info->cipher), s,
			    strlen(s));
	}
	info->sni = sni;
	if (!chk->seen)
		return;
	memcpy(info->subject, chk->subject, sizeof(info->subject));
	memcpy(info->issuer, chk->issuer, sizeof(info->issuer));
	pst_tls_fp_format(chk->cert_fp, info->cert_sha256,
	    sizeof(info->cert_sha256));
	pst_tls_fp_format(chk->spki_fp, info->spki_sha256,
	    sizeof(info->spki_sha256));
	info->verified = chk->chain_ok;
	if (!chk->chain_ok) {
		s = X509_verify_cert_error_string(chk->verify_err);
		tls_copy_clean(info->verify_error, sizeof(info->verify_error), s,
		    strlen(s));
	}
	info->pin_matched = chk->pin_matched;
}
