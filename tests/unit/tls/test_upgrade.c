/*
 * test_upgrade.c: real handshakes over a socketpair.  The client side is
 * pst_tls_upgrade() on a plain socket bufferevent; the server side, on the
 * same event_base, is either a libevent OpenSSL bufferevent accepting
 * (certificate, versions and client-certificate demand chosen per test)
 * or a plain one that misbehaves: answers in plain text, stays silent,
 * hangs up.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/err.h"
#include "pki.h"
#include "tls/ctx.h"
#include "tls/policy.h"
#include "tls/upgrade.h"
#include "unit.h"

#define GREETING	"220 hello over tls\r\n"
#define LOOP_LIMIT_MS	5000

enum server_mode {
	SRV_TLS,		/* a TLS server that greets once connected */
	SRV_PLAIN,		/* answers "220 hello" in clear text */
	SRV_SILENT,		/* reads, never writes */
	SRV_HANGUP,		/* closes as soon as something arrives */
	SRV_STARTTLS,		/* plain "STARTTLS" -> "220", then TLS */
	SRV_TLS_LATER,		/* only the context; the test wires it */
};

struct server_opts {
	const char	*cert;
	const char	*key;
	int		 min_proto;	/* 0: OpenSSL's default */
	int		 max_proto;
	int		 security_level;	/* -1: default */
	int		 require_client_cert;
};

struct harness {
	struct event_base	*base;
	struct event		*limit;
	int			 fds[2];
	enum server_mode	 mode;
	SSL_CTX			*sctx;
	struct bufferevent	*sbev;
	SSL_CTX			*cctx;
	struct bufferevent	*under;
	struct pst_tls		*t;

	int			 calls;
	struct bufferevent	*tls;
	struct pst_tls_info	 info;
	int			 have_info;
	struct pst_err		 err;
	int			 failed;
	char			 got[128];	/* what the client read */
	char			 client_seen[256]; /* server saw it */
	int			 server_done;
	int			 timed_out;
	struct timeval		 started;
	struct pst_tls_policy	 policy;	/* STARTTLS client */
};

static struct test_pki pki;
static struct harness h;

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

static void
limit_cb(evutil_socket_t fd, short what, void *arg)
{
	h.timed_out = 1;
	event_base_loopbreak(h.base);
}

static void
harness_setup(void)
{
	struct timeval tv = { LOOP_LIMIT_MS / 1000, 0 };

	memset(&h, 0, sizeof(h));
	h.base = event_base_new();
	ck_assert_ptr_nonnull(h.base);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, h.fds), 0);
	evutil_make_socket_nonblocking(h.fds[0]);
	evutil_make_socket_nonblocking(h.fds[1]);
	h.limit = evtimer_new(h.base, limit_cb, NULL);
	evtimer_add(h.limit, &tv);
	h.under = bufferevent_socket_new(h.base, h.fds[1],
	    BEV_OPT_CLOSE_ON_FREE);
	ck_assert_ptr_nonnull(h.under);
}

static void
harness_teardown(void)
{
	if (h.tls != NULL)
		bufferevent_free(h.tls);
	if (h.under != NULL)
		bufferevent_free(h.under);
	if (h.sbev != NULL)
		bufferevent_free(h.sbev);
	else if (h.fds[0] >= 0)
		close(h.fds[0]);
	SSL_CTX_free(h.sctx);
	SSL_CTX_free(h.cctx);
	event_free(h.limit);
	/* Let libevent run the finalizers of what was just freed. */
	event_base_loop(h.base, EVLOOP_NONBLOCK);
	event_base_free(h.base);
}

/*
 * Server side.
 */

static void
server_event(struct bufferevent *bev, short what, void *arg)
{
	SSL *ssl;
	X509 *peer;

	if (what & BEV_EVENT_CONNECTED) {
		ssl = bufferevent_openssl_get_ssl(bev);
		if ((peer = SSL_get1_peer_certificate(ssl)) != NULL) {
			X509_NAME_oneline(X509_get_subject_name(peer),
			    h.client_seen, sizeof(h.client_seen));
			X509_free(peer);
		}
		h.server_done = 1;
		bufferevent_write(bev, GREETING, strlen(GREETING));
		return;
	}
	h.server_done = -1;
	while (bufferevent_get_openssl_error(bev) != 0)
		continue;
}

static void	 server_starttls(struct bufferevent *);

static void
server_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);

	evbuffer_drain(in, evbuffer_get_length(in));
	switch (h.mode) {
	case SRV_PLAIN:
		if (!h.server_done)
			bufferevent_write(bev, "220 hello\r\n", 11);
		h.server_done = 1;
		break;
	case SRV_HANGUP:
		bufferevent_free(h.sbev);
		h.sbev = NULL;
		h.fds[0] = -1;
		break;
	case SRV_STARTTLS:
		server_starttls(bev);
		break;
	default:
		break;
	}
}

/* RFC 3207 section 4: "220 Ready to start TLS", then the handshake. */
static void
server_starttls(struct bufferevent *plain)
{
	SSL *ssl;

	bufferevent_write(plain, "220 Ready to start TLS\r\n", 24);
	ssl = SSL_new(h.sctx);
	ck_assert_ptr_nonnull(ssl);
	h.sbev = bufferevent_openssl_filter_new(h.base, plain, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	ck_assert_ptr_nonnull(h.sbev);
	bufferevent_setcb(h.sbev, NULL, NULL, server_event, NULL);
	bufferevent_enable(h.sbev, EV_READ | EV_WRITE);
}

static int
verify_any(int ok, X509_STORE_CTX *xs)
{
	return 1;
}

static void
server_start(enum server_mode mode, const struct server_opts *o)
{
	SSL *ssl;

	h.mode = mode;
	if (mode != SRV_TLS && mode != SRV_STARTTLS && mode != SRV_TLS_LATER) {
		h.sbev = bufferevent_socket_new(h.base, h.fds[0],
		    BEV_OPT_CLOSE_ON_FREE);
		bufferevent_setcb(h.sbev, server_read, NULL, NULL, NULL);
		bufferevent_enable(h.sbev, EV_READ);
		return;
	}
	h.sctx = SSL_CTX_new(TLS_server_method());
	ck_assert_ptr_nonnull(h.sctx);
	SSL_CTX_set_options(h.sctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (o->security_level >= 0)
		SSL_CTX_set_security_level(h.sctx, o->security_level);
	ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(h.sctx,
	    o->cert != NULL ? o->cert : pki.server_cert), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(h.sctx,
	    o->key != NULL ? o->key : pki.server_key, SSL_FILETYPE_PEM), 1);
	if (o->min_proto != 0)
		SSL_CTX_set_min_proto_version(h.sctx, o->min_proto);
	if (o->max_proto != 0)
		SSL_CTX_set_max_proto_version(h.sctx, o->max_proto);
	if (o->require_client_cert) {
		ck_assert_int_eq(SSL_CTX_load_verify_file(h.sctx, pki.ca), 1);
		SSL_CTX_set_verify(h.sctx, SSL_VERIFY_PEER |
		    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_any);
	}
	if (mode == SRV_STARTTLS) {
		h.sbev = bufferevent_socket_new(h.base, h.fds[0],
		    BEV_OPT_CLOSE_ON_FREE);
		bufferevent_setcb(h.sbev, server_read, NULL, NULL, NULL);
		bufferevent_enable(h.sbev, EV_READ);
		return;
	}
	if (mode == SRV_TLS_LATER)
		return;
	ssl = SSL_new(h.sctx);
	ck_assert_ptr_nonnull(ssl);
	h.sbev = bufferevent_openssl_socket_new(h.base, h.fds[0], ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	ck_assert_ptr_nonnull(h.sbev);
	bufferevent_setcb(h.sbev, NULL, NULL, server_event, NULL);
	bufferevent_enable(h.sbev, EV_READ | EV_WRITE);
}

static const struct server_opts default_server = { .security_level = -1 };

/*
 * Client side.
 */

static void
client_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t used = strlen(h.got);

	evbuffer_remove(in, h.got + used, sizeof(h.got) - 1 - used);
	if (strstr(h.got, "\r\n") != NULL)
		event_base_loopexit(h.base, NULL);
}

static void
client_event(struct bufferevent *bev, short what, void *arg)
{
	event_base_loopexit(h.base, NULL);
}

static void
upgraded(struct bufferevent *bev, const struct pst_tls_info *info,
    const struct pst_err *err, void *arg)
{
	ck_assert_ptr_eq(arg, &h);
	h.calls++;
	h.t = NULL;
	if (info != NULL) {
		h.info = *info;
		h.have_info = 1;
	}
	if (bev == NULL) {
		ck_assert_ptr_nonnull(err);
		h.err = *err;
		h.failed = 1;
		event_base_loopexit(h.base, NULL);
		return;
	}
	ck_assert_ptr_null(err);
	ck_assert_ptr_nonnull(info);
	h.tls = bev;
	/* The greeting may already be waiting: enabling must deliver it. */
	bufferevent_setcb(bev, client_read, NULL, client_event, NULL);
	bufferevent_enable(bev, EV_READ);
}

/* Builds the client context from 'p' and starts the upgrade. */
static void
client_start(struct pst_tls_policy *p, const char *name, uint64_t ms)
{
	struct pst_err err;

	h.cctx = pst_tls_ctx_new(p, NULL, &err);
	ck_assert_msg(h.cctx != NULL, "%s", err.text);
	gettimeofday(&h.started, NULL);
	h.t = pst_tls_upgrade(h.under, h.cctx, name, p, ms, upgraded, &h,
	    &err);
	ck_assert_msg(h.t != NULL, "%s", err.text);
	h.under = NULL;
	/* Never from inside the call. */
	ck_assert_int_eq(h.calls, 0);
}

static long
elapsed_ms(void)
{
	struct timeval now;

	gettimeofday(&now, NULL);
	return (now.tv_sec - h.started.tv_sec) * 1000 +
	    (now.tv_usec - h.started.tv_usec) / 1000;
}

static void
run(void)
{
	event_base_dispatch(h.base);
	ck_assert_msg(!h.timed_out, "loop did not finish: calls=%d", h.calls);
	ck_assert_int_eq(h.calls, 1);
}

static void
policy_ca(struct pst_tls_policy *p)
{
	pst_tls_policy_init(p);
	p->ca_file = pki.ca;
}

static void
expect_success(void)
{
	ck_assert_msg(!h.failed, "failed: %s", h.err.text);
	ck_assert_ptr_nonnull(h.tls);
	ck_assert_str_eq(h.got, GREETING);
}

static void
expect_failure(enum pst_tls_fail detail, const char *want)
{
	ck_assert_msg(h.failed, "handshake succeeded");
	ck_assert_ptr_null(h.tls);
	ck_assert_int_eq(h.err.stage, PST_STAGE_TLS);
	ck_assert_int_eq(h.err.cls, PST_TEMP);
	ck_assert_msg(h.err.detail == (int)detail, "detail %d, want %d: %s",
	    h.err.detail, detail, h.err.text);
	ck_assert_msg(strstr(h.err.text, want) != NULL,
	    "got \"%s\", want \"%s\"", h.err.text, want);
}

/*
 * Trust.
 */

START_TEST(verified_with_ca_file)
{
	struct pst_tls_policy p;

	server_start(SRV_TLS, &default_server);
	policy_ca(&p);
	client_start(&p, "localhost", 5000);
	run();
	expect_success();
	ck_assert(h.info.verified);
	ck_assert_str_eq(h.info.verify_error, "");
	ck_assert(!h.info.pin_matched);
	ck_assert(h.info.sni);
	ck_assert_str_eq(h.info.version, "TLSv1.3");
	ck_assert_uint_gt(strlen(h.info.cipher), 0);
	ck_assert_str_eq(h.info.subject, "CN=localhost");
	ck_assert_str_eq(h.info.issuer, "CN=postern test CA");
	ck_assert_str_eq(h.info.cert_sha256, pki.server_cert_pin);
	ck_assert_str_eq(h.info.spki_sha256, pki.server_spki_pin);
}
END_TEST

START_TEST(verified_with_ca_path)
{
	struct pst_tls_policy p;

	server_start(SRV_TLS, &default_server);
	pst_tls_policy_init(&p);
	p.ca_path = pki.ca_dir;
	client_start(&p, "localhost", 5000);
	run();
	expect_success();
	ck_assert(h.info.verified);
}
END_TEST

START_TEST(untrusted_self_signed_refused)
{
	struct pst_tls_policy p;
	struct server_opts o = default_server;

	o.cert = pki.self_cert;
	o.key = pki.self_key;
	server_start(SRV_TLS, &o);
	policy_ca(&p);
	client_start(&p, "localhost", 5000);
	run();
	expect_failure(PST_TLS_F_VERIFY,
	    "certificate verification failed: self-signed certificate");
	ck_assert_ptr_nonnull(strstr(h.err.text, pki.self_cert_pin));
	/* What was seen is reported, to help writing a pin. */
	ck_assert(h.have_info);
	ck_assert_str_eq(h.info.cert_sha256, pki.self_cert_pin);
	ck_assert(!h.info.verified);
}
END_TEST

START_TEST(unknown_ca_refused_with_system_store)
{
	struct pst_tls_policy p;

	server_start(SRV_TLS, &default_server);
	pst_tls_policy_init(&p);
	client_start(&p, "localhost", 5000);
	run();
	expect_failure(PST_TLS_F_VERIFY, "unable to get local issuer "
	    "certificate");
}
END_TEST

START_TEST(wrong_host_name_refused)
{
	struct pst_tls_policy p;
	struct server_opts o = default_server;

	o.cert = pki.wrong_cert;
	o.key = pki.wrong_key;
	server_start(SRV_TLS, &o);
	policy_ca(&p);
	client_start(&p, "localhost", 5000);
	run();
	expect_failure(PST_TLS_F_VERIFY, "(CN=wrong.example) is not valid "
	    "for host name localhost");
}
END_TEST

START_TEST(ip_literal_verified_by_san_ip)
{
	struct pst_tls_policy p;

	server_start(SRV_TLS, &default_server);
	policy_ca(&p);
	client_start(&p, "127.0.0.1", 5000);
	run();
	expect_success();
	ck_assert(h.info.verified);
	ck_assert(!h.info.sni);
}
END_TEST

START_TEST(wrong_ip_literal_refused)
{
	struct pst_tls_policy p;

	server_start(SRV_TLS, &default_server);
	policy_ca(&p);
	client_start(&p, "[::1]", 5000);
	run();
	expect_failure(PST_TLS_F_VERIFY, "is not valid for IP address ::1");
}
END_TEST

START_TEST(server_name_overrides_peer_name)
{
	struct pst_tls_policy p;

	server_start(SRV_TLS, &default_server);
	policy_ca(&p);
	p.server_name = "localhost";
	client_start(&p, "192.0.2.1", 5000);
	run();
	expect_success();
	ck_assert(h.info.verified);
	ck_assert(h.info.sni);
}
END_TEST

START_TEST(verify_off_accepts_untrusted)
{
	struct pst_tls_policy p;
	struct server_opts o = default_server;

	o.cert = pki.wrong_cert;
	o.key = pki.wrong_key;
	server_start(SRV_TLS, &o);
	pst_tls_policy_init(&p);
	p.verify = false;
	client_start(&p, "localhost", 5000);
	run();
	expect_success();
	ck_assert(!h.info.verified);
	ck_assert_uint_gt(strlen(h.info.verify_error), 0);
}
END_TEST

/*
 * Pins.
 */

START_TEST(cert_pin_accepts_untrusted_peer)
{
	struct pst_tls_policy p;
	struct server_opts o = default_server;
	const char *pins[2];

	o.cert = pki.self_cert;
	o.key = pki.self_key;
	server_start(SRV_TLS, &o);
	policy_ca(&p);
	pins[0] = pki.wrong_cert_pin;
	pins[1] = pki.self_cert_pin;
	p.pins = pins;
	p.npins = 2;
	client_start(&p, "localhost", 5000);
	run();
	expect_success();
	ck_assert(h.info.pin_matched);
	ck_assert(!h.info.verified);
	ck_assert_str_eq(h.info.verify_error, "self-signed certificate");
}
END_TEST

START_TEST(spki_pin_accepts_peer_despite_name)
{
	struct pst_tls_policy p;
	const char *pins[1];

	server_start(SRV_TLS, &default_server);
	pst_tls_policy_init(&p);
	pins[0] = pki.server_spki_pin;
	p.pins = pins;
	p.npins = 1;
	/* Pinning replaces CA trust and the name check alike. */
	client_start(&p, "wrong.example", 5000);
	run();
	expect_success();
	ck_assert(h.info.pin_matched);
	ck_assert(!h.info.verified);
}
END_TEST

START_TEST(wrong_pin_refuses_trusted_peer)
{
	struct pst_tls_policy p;
	const char *pins[1];

	server_start(SRV_TLS, &default_server);
	policy_ca(&p);
	pins[0] = pki.wrong_cert_pin;
	p.pins = pins;
	p.npins = 1;
	client_start(&p, "localhost", 5000);
	run();
	expect_failure(PST_TLS_F_PIN, "certificate matches none of the 1 "
	    "pinned fingerprint: certificate sha256:");
	ck_assert_ptr_nonnull(strstr(h.err.text, pki.server_spki_pin));
}
END_TEST

START_TEST(pin_with_verify_off_still_enforced)
{
	struct pst_tls_policy p;
	const char *pins[1];

	server_start(SRV_TLS, &default_server);
	pst_tls_policy_init(&p);
	p.verify = false;
	pins[0] = pki.self_spki_pin;
	p.pins = pins;
	p.npins = 1;
	client_start(&p, "localhost", 5000);
	run();
	expect_failure(PST_TLS_F_PIN, "matches none");
}
END_TEST

/*
 * Versions.
 */

START_TEST(tls13_client_vs_tls12_server_fails_clearly)
{
	struct pst_tls_policy p;
	struct server_opts o = default_server;

	o.max_proto = TLS1_2_VERSION;
	server_start(SRV_TLS, &o);
	policy_ca(&p);
	p.versions = PST_TLS_V1_3;
	client_start(&p, "localhost", 5000);
	run();
	expect_failure(PST_TLS_F_VERSION, "no protocol version in common "
	    "with the peer");
	ck_assert_ptr_nonnull(strstr(h.err.text, "we allow TLSv1.3"));
}
END_TEST

START_TEST(tls12_client_vs_tls13_server_fails_clearly)
{
	struct pst_tls_policy p;
	struct server_opts o = default_server;

	o.min_proto = TLS1_3_VERSION;
	server_start(SRV_TLS, &o);
	policy_ca(&p);
	p.versions = PST_TLS_V1_2;
	client_start(&p, "localhost", 5000);
	run();
	expect_failure(PST_TLS_F_VERSION, "we allow TLSv1.2");
}
END_TEST

START_TEST(tls12_negotiated_when_allowed)
{
	struct pst_tls_policy p;
	struct server_opts o = default_server;

	o.max_proto = TLS1_2_VERSION;
	server_start(SRV_TLS, &o);
	policy_ca(&p);
	client_start(&p, "localhost", 5000);
	run();
	expect_success();
	ck_assert_str_eq(h.info.version, "TLSv1.2");
	ck_assert(h.info.verified);
}
END_TEST

START_TEST(tls1_handshakes_at_security_level_0)
{
	struct pst_tls_policy p;
	struct server_opts o = default_server;

	o.min_proto = o.max_proto = TLS1_VERSION;
	o.security_level = 0;
	server_start(SRV_TLS, &o);
	policy_ca(&p);
	p.versions = PST_TLS_V1;
	p.security_level = 0;
	client_start(&p, "localhost", 5000);
	run();
	expect_success();
	ck_assert_str_eq(h.info.version, "TLSv1");
}
END_TEST

/*
 * Misbehaving peers.
 */

START_TEST(plaintext_answer_fails_fast)
{
	struct pst_tls_policy p;

	server_start(SRV_PLAIN, NULL);
	policy_ca(&p);
	client_start(&p, "localhost", 5000);
	run();
	expect_failure(PST_TLS_F_PLAINTEXT, "the peer answered in plain "
	    "text");
	ck_assert_ptr_nonnull(strstr(h.err.text, "wrong version number"));
	ck_assert_int_lt(elapsed_ms(), 1000);
}
END_TEST

START_TEST(silent_peer_times_out)
{
	struct pst_tls_policy p;

	server_start(SRV_SILENT, NULL);
	policy_ca(&p);
	client_start(&p, "localhost", 150);
	run();
	expect_failure(PST_TLS_F_TIMEOUT, "TLS handshake timed out after "
	    "150ms");
	ck_assert_int_ge(elapsed_ms(), 140);
	ck_assert_int_lt(elapsed_ms(), 2000);
	ck_assert(!h.have_info);
}
END_TEST

START_TEST(hangup_during_handshake_reported)
{
	struct pst_tls_policy p;

	server_start(SRV_HANGUP, NULL);
	policy_ca(&p);
	client_start(&p, "localhost", 5000);
	run();
	expect_failure(PST_TLS_F_CLOSED, "closed the connection during the "
	    "TLS handshake");
}
END_TEST

START_TEST(unread_input_refused)
{
	struct pst_tls_policy p;
	struct pst_err err;
	const char *early = "250 injected\r\n";

	ck_assert_int_eq(write(h.fds[0], early, strlen(early)),
	    (ssize_t)strlen(early));
	bufferevent_enable(h.under, EV_READ);
	while (evbuffer_get_length(bufferevent_get_input(h.under)) == 0)
		event_base_loop(h.base, EVLOOP_ONCE);
	policy_ca(&p);
	h.cctx = pst_tls_ctx_new(&p, NULL, &err);
	ck_assert_ptr_nonnull(h.cctx);
	h.t = pst_tls_upgrade(h.under, h.cctx, "localhost", &p, 5000,
	    upgraded, &h, &err);
	ck_assert_ptr_null(h.t);
	ck_assert_int_eq(err.stage, PST_STAGE_TLS);
	ck_assert_int_eq(err.cls, PST_TEMP);
	ck_assert_int_eq(err.detail, PST_TLS_F_UNREAD);
	ck_assert_msg(strstr(err.text, "sent 14 bytes before the handshake "
	    "(\"250 injected..\")") != NULL, "%s", err.text);
	/* 'under' is still ours, untouched. */
	ck_assert_uint_eq(evbuffer_get_length(bufferevent_get_input(h.under)),
	    14);
	ck_assert_int_eq(h.calls, 0);
}
END_TEST

static const struct {
	const char	*name;
	const char	*want;
} bad_names[] = {
	{ NULL, "no peer name" },
	{ "", "no peer name" },
	{ "bad name", "not allowed" },
	{ "x/y", "not allowed" },
	{ "[::1", "unbalanced bracket" },
	{ "[localhost]", "not a valid IPv6 address" },
	{ "fe80::1::2", "not a valid IPv6 address" },
	{ "a\r\nb", "not allowed" },
};

START_TEST(bad_peer_names_refused)
{
	char longname[300];
	struct pst_tls_policy p;
	struct pst_err err;
	const char *name, *want;

	if (_i < (int)NELEMS(bad_names)) {
		name = bad_names[_i].name;
		want = bad_names[_i].want;
	} else {
		memset(longname, 'a', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		name = longname;
		want = "longer than 253 bytes";
	}
	policy_ca(&p);
	h.cctx = pst_tls_ctx_new(&p, NULL, &err);
	ck_assert_ptr_nonnull(h.cctx);
	h.t = pst_tls_upgrade(h.under, h.cctx, name, &p, 5000, upgraded, &h,
	    &err);
	ck_assert_ptr_null(h.t);
	ck_assert_int_eq(err.cls, PST_LOCAL);
	ck_assert_int_eq(err.detail, PST_TLS_F_LOCAL);
	ck_assert_msg(strstr(err.text, want) != NULL, "got \"%s\", want "
	    "\"%s\"", err.text, want);
}
END_TEST

START_TEST(bad_pin_in_policy_refused_by_upgrade)
{
	struct pst_tls_policy p;
	struct pst_err err;
	const char *pins[1] = { "sha256:AB" };

	policy_ca(&p);
	h.cctx = pst_tls_ctx_new(&p, NULL, &err);
	ck_assert_ptr_nonnull(h.cctx);
	p.pins = pins;
	p.npins = 1;
	h.t = pst_tls_upgrade(h.under, h.cctx, "localhost", &p, 5000,
	    upgraded, &h, &err);
	ck_assert_ptr_null(h.t);
	ck_assert_ptr_nonnull(strstr(err.text, "fingerprint 1: too short"));
}
END_TEST

/* The client side of STARTTLS: upgrade from inside the plain read. */
static void
client_plain_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	struct pst_err err;
	char *line;

	if ((line = evbuffer_readln(in, NULL, EVBUFFER_EOL_CRLF_STRICT)) ==
	    NULL)
		return;
	ck_assert_str_eq(line, "220 Ready to start TLS");
	free(line);
	h.t = pst_tls_upgrade(bev, h.cctx, "localhost", &h.policy, 5000,
	    upgraded, &h, &err);
	ck_assert_msg(h.t != NULL, "%s", err.text);
	h.under = NULL;
	ck_assert_int_eq(h.calls, 0);
}

START_TEST(starttls_after_plain_exchange)
{
	struct pst_err err;

	server_start(SRV_STARTTLS, &default_server);
	policy_ca(&h.policy);
	h.cctx = pst_tls_ctx_new(&h.policy, NULL, &err);
	ck_assert_ptr_nonnull(h.cctx);
	bufferevent_setcb(h.under, client_plain_read, NULL, NULL, NULL);
	bufferevent_enable(h.under, EV_READ);
	bufferevent_write(h.under, "STARTTLS\r\n", 10);
	run();
	expect_success();
	ck_assert(h.info.verified);
	ck_assert_int_eq(h.server_done, 1);
}
END_TEST

START_TEST(handshake_without_ciphers_fails_through_callback)
{
	struct pst_tls_policy p;
	struct pst_err err;

	server_start(SRV_SILENT, NULL);
	policy_ca(&p);
	p.versions = PST_TLS_V1_3;
	h.cctx = pst_tls_ctx_new(&p, NULL, &err);
	ck_assert_ptr_nonnull(h.cctx);
	/* Spoil the context behind the policy's back: no ClientHello. */
	ck_assert_int_eq(SSL_CTX_set_ciphersuites(h.cctx, ""), 1);
	h.t = pst_tls_upgrade(h.under, h.cctx, "localhost", &p, 5000,
	    upgraded, &h, &err);
	ck_assert_msg(h.t != NULL, "%s", err.text);
	h.under = NULL;
	ck_assert_int_eq(h.calls, 0);
	run();
	expect_failure(PST_TLS_F_HANDSHAKE, "TLS handshake failed: no ciphers "
	    "available");
}
END_TEST

/* Both ends on a bufferevent pair, which may run callbacks in place. */
static void
pair_handshake(int options)
{
	struct bufferevent *pair[2];
	struct pst_tls_policy p;
	struct pst_err err;
	SSL *ssl;

	bufferevent_free(h.under);
	h.under = NULL;
	close(h.fds[0]);
	h.fds[0] = -1;
	ck_assert_int_eq(bufferevent_pair_new(h.base, options, pair), 0);
	server_start(SRV_TLS_LATER, &default_server);
	ssl = SSL_new(h.sctx);
	h.sbev = bufferevent_openssl_filter_new(h.base, pair[1], ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE | options);
	ck_assert_ptr_nonnull(h.sbev);
	bufferevent_setcb(h.sbev, NULL, NULL, server_event, NULL);
	bufferevent_enable(h.sbev, EV_READ | EV_WRITE);
	policy_ca(&p);
	h.cctx = pst_tls_ctx_new(&p, NULL, &err);
	ck_assert_ptr_nonnull(h.cctx);
	h.t = pst_tls_upgrade(pair[0], h.cctx, "localhost", &p, 5000,
	    upgraded, &h, &err);
	ck_assert_msg(h.t != NULL, "%s", err.text);
	ck_assert_int_eq(h.calls, 0);
	run();
	expect_success();
	ck_assert(h.info.verified);
}

START_TEST(upgrade_over_bufferevent_pair)
{
	pair_handshake(0);
}
END_TEST

START_TEST(upgrade_over_deferred_bufferevent_pair)
{
	pair_handshake(BEV_OPT_DEFER_CALLBACKS);
}
END_TEST

static void
upgraded_and_dropped(struct bufferevent *bev,
    const struct pst_tls_info *info, const struct pst_err *err, void *arg)
{
	h.calls++;
	ck_assert_ptr_nonnull(bev);
	bufferevent_free(bev);
	event_base_loopexit(h.base, NULL);
}

START_TEST(freeing_tls_bev_inside_callback_is_safe)
{
	struct timeval tv = { 0, 50000 };
	struct pst_tls_policy p;
	struct pst_err err;

	server_start(SRV_TLS, &default_server);
	policy_ca(&p);
	h.cctx = pst_tls_ctx_new(&p, NULL, &err);
	ck_assert_ptr_nonnull(h.cctx);
	h.t = pst_tls_upgrade(h.under, h.cctx, "localhost", &p, 5000,
	    upgraded_and_dropped, &h, &err);
	ck_assert_ptr_nonnull(h.t);
	h.under = NULL;
	run();
	/* Let the server notice and libevent finish the free. */
	event_base_loopexit(h.base, &tv);
	event_base_dispatch(h.base);
	ck_assert_int_eq(h.calls, 1);
}
END_TEST

/*
 * Client certificate.
 */

START_TEST(client_cert_presented_when_required)
{
	struct pst_tls_policy p;
	struct server_opts o = default_server;

	o.require_client_cert = 1;
	server_start(SRV_TLS, &o);
	policy_ca(&p);
	p.cert = pki.client_cert;
	p.key = pki.client_key;
	client_start(&p, "localhost", 5000);
	run();
	expect_success();
	ck_assert_int_eq(h.server_done, 1);
	ck_assert_str_eq(h.client_seen, "/CN=postern client");
}
END_TEST

/*
 * Cancel.
 */

static void
stop_cb(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopexit(h.base, NULL);
}

START_TEST(cancel_before_callback_never_calls_back)
{
	struct timeval tv = { 0, 100000 };
	struct pst_tls_policy p;
	struct event *stop;

	server_start(SRV_SILENT, NULL);
	policy_ca(&p);
	client_start(&p, "localhost", 50);
	/* Let the ClientHello go out, then give up. */
	event_base_loop(h.base, EVLOOP_NONBLOCK);
	pst_tls_cancel(h.t);
	h.t = NULL;
	pst_tls_cancel(NULL);
	stop = evtimer_new(h.base, stop_cb, NULL);
	evtimer_add(stop, &tv);
	event_base_dispatch(h.base);
	event_free(stop);
	ck_assert_int_eq(h.calls, 0);
}
END_TEST

START_TEST(cancel_right_away_never_calls_back)
{
	struct timeval tv = { 0, 100000 };
	struct pst_tls_policy p;
	struct event *stop;

	server_start(SRV_TLS, &default_server);
	policy_ca(&p);
	client_start(&p, "localhost", 50);
	pst_tls_cancel(h.t);
	h.t = NULL;
	stop = evtimer_new(h.base, stop_cb, NULL);
	evtimer_add(stop, &tv);
	event_base_dispatch(h.base);
	event_free(stop);
	ck_assert_int_eq(h.calls, 0);
	/* The server saw the connection go away. */
	ck_assert_int_eq(h.server_done, -1);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("tls/upgrade");
	TCase *tc = tcase_create("upgrade");

	tcase_add_unchecked_fixture(tc, pki_setup, pki_teardown);
	tcase_add_checked_fixture(tc, harness_setup, harness_teardown);
	tcase_add_test(tc, verified_with_ca_file);
	tcase_add_test(tc, verified_with_ca_path);
	tcase_add_test(tc, untrusted_self_signed_refused);
	tcase_add_test(tc, unknown_ca_refused_with_system_store);
	tcase_add_test(tc, wrong_host_name_refused);
	tcase_add_test(tc, ip_literal_verified_by_san_ip);
	tcase_add_test(tc, wrong_ip_literal_refused);
	tcase_add_test(tc, server_name_overrides_peer_name);
	tcase_add_test(tc, verify_off_accepts_untrusted);
	tcase_add_test(tc, cert_pin_accepts_untrusted_peer);
	tcase_add_test(tc, spki_pin_accepts_peer_despite_name);
	tcase_add_test(tc, wrong_pin_refuses_trusted_peer);
	tcase_add_test(tc, pin_with_verify_off_still_enforced);
	tcase_add_test(tc, tls13_client_vs_tls12_server_fails_clearly);
	tcase_add_test(tc, tls12_client_vs_tls13_server_fails_clearly);
	tcase_add_test(tc, tls12_negotiated_when_allowed);
	tcase_add_test(tc, tls1_handshakes_at_security_level_0);
	tcase_add_test(tc, plaintext_answer_fails_fast);
	tcase_add_test(tc, silent_peer_times_out);
	tcase_add_test(tc, hangup_during_handshake_reported);
	tcase_add_test(tc, unread_input_refused);
	tcase_add_loop_test(tc, bad_peer_names_refused, 0,
	    NELEMS(bad_names) + 1);
	tcase_add_test(tc, bad_pin_in_policy_refused_by_upgrade);
	tcase_add_test(tc, starttls_after_plain_exchange);
	tcase_add_test(tc, handshake_without_ciphers_fails_through_callback);
	tcase_add_test(tc, upgrade_over_bufferevent_pair);
	tcase_add_test(tc, upgrade_over_deferred_bufferevent_pair);
	tcase_add_test(tc, freeing_tls_bev_inside_callback_is_safe);
	tcase_add_test(tc, client_cert_presented_when_required);
	tcase_add_test(tc, cancel_before_callback_never_calls_back);
	tcase_add_test(tc, cancel_right_away_never_calls_back);
	suite_add_tcase(s, tc);
	return s;
}
