/*
 * test_negotiate.c: the security modes and the TLS-mode auto-negotiation
 * against scripted servers on a loopback listener.  Each connection the
 * negotiator makes gets the next script of the test; the "TLS" step makes
 * the server side of a handshake: after STARTTLS, or first of all for an
 * implicit-TLS server.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <openssl/ssl.h>

#include "client/negotiate.h"
#include "common/pool.h"
#include "helpers/peer.h"
#include "tls/ctx.h"
#include "tls/pki.h"
#include "unit.h"

#define MAX_CONNS	4
#define GREETING_MS	300	/* the short wait of the plain probe */

struct run {
	struct event_base	*base;
	struct pst_pool		*pool;
	struct evconnlistener	*lev;
	uint16_t		 port;
	SSL_CTX			*sctx;	/* the servers' */
	SSL_CTX			*cctx;	/* ours */
	struct pst_tls_policy	 policy;
	struct pst_negotiate_params p;
	const char *const	*servers[MAX_CONNS];
	size_t			 nservers;
	struct peer		 peers[MAX_CONNS];
	size_t			 accepted;
	int			 done;
	bool			 ok;
	struct pst_negotiate_result res;
	struct pst_err		 err;
	char			 transcript[4096];
};

static struct test_pki pki;
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
accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct run *r = arg;
	struct bufferevent *bev;

	if (r->accepted >= r->nservers) {
		evutil_closesocket(fd);
		r->accepted++;
		return;
	}
	bev = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
	ck_assert_ptr_nonnull(bev);
	peer_start_tls(&r->peers[r->accepted], bev, r->servers[r->accepted],
	    r->sctx);
	r->accepted++;
}

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
setup(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct pst_err err;

	memset(&R, 0, sizeof(R));
	R.base = event_base_new();
	ck_assert_ptr_nonnull(R.base);
	R.pool = pst_pool_new(R.base, 1, &err);
	ck_assert_ptr_nonnull(R.pool);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	R.lev = evconnlistener_new_bind(R.base, accept_cb, &R,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 8,
	    (struct sockaddr *)&sin, sizeof(sin));
	ck_assert_ptr_nonnull(R.lev);
	ck_assert_int_eq(getsockname(evconnlistener_get_fd(R.lev),
	    (struct sockaddr *)&sin, &len), 0);
	R.port = ntohs(sin.sin_port);

	R.sctx = SSL_CTX_new(TLS_server_method());
	ck_assert_ptr_nonnull(R.sctx);
	SSL_CTX_set_options(R.sctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(R.sctx,
	    pki.server_cert), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(R.sctx, pki.server_key,
	    SSL_FILETYPE_PEM), 1);

	pst_tls_policy_init(&R.policy);
	R.policy.ca_file = pki.ca;
	R.cctx = pst_tls_ctx_new(&R.policy, NULL, &err);
	ck_assert_msg(R.cctx != NULL, "%s", err.text);

	ck_assert_int_eq(pst_dial_plan_init(&R.p.plan, "127.0.0.1", R.port,
	    &err), 0);
	R.p.greeting_ms = GREETING_MS;
	R.p.client.helo = "client.example.org";
	R.p.client.ssl_ctx = R.cctx;
	R.p.client.tls_policy = &R.policy;
	R.p.client.tls_name = "127.0.0.1";
	R.p.client.sasl_allowed = PST_SASL_ALL;
	R.p.client.timeouts.command_ms = 3000;
	R.p.client.timeouts.tls_ms = 3000;
	R.p.client.trace = trace;
	R.p.client.trace_arg = &R;
}

static void
teardown(void)
{
	size_t i;

	for (i = 0; i < MAX_CONNS; i++)
		peer_free(&R.peers[i]);
	evconnlistener_free(R.lev);
	pst_pool_free(R.pool);
	SSL_CTX_free(R.sctx);
	SSL_CTX_free(R.cctx);
	event_base_free(R.base);
}

static void
negotiated(struct pst_client *c, const struct pst_negotiate_result *res,
    const struct pst_err *err, void *arg)
{
	struct run *r = arg;

	r->done++;
	r->res = *res;
	r->ok = c != NULL;
	if (err != NULL)
		r->err = *err;
	/* The session is ours now; this test only wanted it ready. */
	pst_client_free(c);
	event_base_loopbreak(r->base);
}

static void
server(const char *const *script)
{
	ck_assert_uint_lt(R.nservers, MAX_CONNS);
	R.servers[R.nservers++] = script;
}

/* Negotiates in 'mode' until the callback (or 10s pass). */
static void
run(enum pst_secmode mode)
{
	struct timeval limit = { 10, 0 };
	struct pst_negotiate *n;
	struct pst_err err;
	size_t i;

	R.p.mode = mode;
	n = pst_negotiate_start(R.base, R.pool, &R.p, negotiated, &R, &err);
	ck_assert_msg(n != NULL, "%s", err.text);
	event_base_loopexit(R.base, &limit);
	event_base_dispatch(R.base);
	ck_assert_int_eq(R.done, 1);
	for (i = 0; i < R.accepted && i < MAX_CONNS; i++)
		ck_assert_msg(!R.peers[i].failed, "server %zu: %s; "
		    "transcript: %s", i, R.peers[i].why, R.transcript);
}

static void
assert_all_ran(void)
{
	size_t i;

	ck_assert_uint_eq(R.accepted, R.nservers);
	for (i = 0; i < R.nservers; i++)
		ck_assert_msg(peer_done(&R.peers[i]), "server %zu stopped "
		    "at step %zu; transcript: %s", i, R.peers[i].step,
		    R.transcript);
}

/* A plain server: greeting and EHLO, with or without STARTTLS. */
static const char *const plain_no_tls[] = {
	"S: 220 mx ESMTP",
	"C: EHLO client.example.org",
	"S: 250-mx",
	"S: 250 8BITMIME",
	NULL,
};

static const char *const plain_starttls[] = {
	"S: 220 mx ESMTP",
	"C: EHLO client.example.org",
	"S: 250-mx",
	"S: 250 STARTTLS",
	"C! STARTTLS",
	"S: 220 2.0.0 go ahead",
	"TLS",
	"C: EHLO client.example.org",
	"S: 250-mx",
	"S: 250 8BITMIME",
	NULL,
};

/* Implicit TLS: the greeting comes after the handshake. */
static const char *const implicit[] = {
	"TLS",
	"S: 220 mx ESMTP",
	"C: EHLO client.example.org",
	"S: 250-mx",
	"S: 250 8BITMIME",
	NULL,
};

/* A server waiting for a ClientHello: a plain client hears nothing. */
static const char *const silent[] = {
	"TLS",
	NULL,
};

static const char *const starttls_refused[] = {
	"S: 220 mx ESMTP",
	"C: EHLO client.example.org",
	"S: 250-mx",
	"S: 250 STARTTLS",
	"C! STARTTLS",
	"S: 454 4.7.0 TLS not available",
	NULL,
};

START_TEST(none_is_plain)
{
	server(plain_starttls);
	run(PST_SEC_NONE);
	ck_assert_msg(R.ok, "%s; %s", R.err.text, R.transcript);
	ck_assert_int_eq(R.res.learned, PST_LEARNED_PLAIN);
	ck_assert_uint_eq(R.res.attempts, 1);
	ck_assert_str_eq(R.res.path, "plain");
	/* Offered, but never asked for. */
	ck_assert_uint_eq(R.peers[0].step, 4);
	ck_assert_ptr_null(strstr(R.transcript, "STARTTLS\r"));
}
END_TEST

START_TEST(starttls_upgrades)
{
	server(plain_starttls);
	run(PST_SEC_STARTTLS);
	ck_assert_msg(R.ok, "%s; %s", R.err.text, R.transcript);
	assert_all_ran();
	ck_assert_int_eq(R.res.learned, PST_LEARNED_PLAIN);
	ck_assert_uint_eq(R.res.attempts, 1);
}
END_TEST

START_TEST(starttls_required_but_not_offered)
{
	server(plain_no_tls);
	run(PST_SEC_STARTTLS);
	ck_assert(!R.ok);
	ck_assert_int_eq(R.err.cls, PST_TEMP);
	ck_assert_uint_eq(R.res.attempts, 1);
}
END_TEST

START_TEST(tls_is_implicit)
{
	server(implicit);
	run(PST_SEC_TLS);
	ck_assert_msg(R.ok, "%s; %s", R.err.text, R.transcript);
	assert_all_ran();
	ck_assert_int_eq(R.res.learned, PST_LEARNED_IMPLICIT);
	ck_assert_uint_eq(R.res.attempts, 1);
	ck_assert_str_eq(R.res.path, "tls");
}
END_TEST

START_TEST(auto_plain_server_without_starttls_stays_plain)
{
	server(plain_no_tls);
	run(PST_SEC_AUTO);
	ck_assert_msg(R.ok, "%s; %s", R.err.text, R.transcript);
	assert_all_ran();
	ck_assert_int_eq(R.res.learned, PST_LEARNED_PLAIN);
	ck_assert_uint_eq(R.res.attempts, 1);
	ck_assert(!R.res.from_memory);
}
END_TEST

START_TEST(auto_uses_offered_starttls)
{
	server(plain_starttls);
	run(PST_SEC_AUTO);
	ck_assert_msg(R.ok, "%s; %s", R.err.text, R.transcript);
	assert_all_ran();
	ck_assert_int_eq(R.res.learned, PST_LEARNED_PLAIN);
	ck_assert_uint_eq(R.res.attempts, 1);
}
END_TEST

START_TEST(auto_finds_implicit_tls_after_silent_greeting)
{
	server(silent);
	server(implicit);
	run(PST_SEC_AUTO);
	ck_assert_msg(R.ok, "%s; %s", R.err.text, R.transcript);
	assert_all_ran();
	ck_assert_int_eq(R.res.learned, PST_LEARNED_IMPLICIT);
	ck_assert_uint_eq(R.res.attempts, 2);
	ck_assert_str_eq(R.res.path, "plain(no greeting) -> tls");
}
END_TEST

START_TEST(auto_remembered_implicit_goes_first)
{
	server(implicit);
	R.p.remembered = PST_LEARNED_IMPLICIT;
	run(PST_SEC_AUTO);
	ck_assert_msg(R.ok, "%s; %s", R.err.text, R.transcript);
	assert_all_ran();
	ck_assert_int_eq(R.res.learned, PST_LEARNED_IMPLICIT);
	ck_assert_uint_eq(R.res.attempts, 1);
	ck_assert(R.res.from_memory);
}
END_TEST

START_TEST(auto_starttls_refused_defers_without_plaintext)
{
	server(starttls_refused);
	run(PST_SEC_AUTO);
	ck_assert(!R.ok);
	assert_all_ran();
	ck_assert_int_eq(R.err.cls, PST_TEMP);
	ck_assert_int_eq(R.err.stage, PST_STAGE_STARTTLS);
	ck_assert_int_eq(R.err.smtp_code, 454);
	/* One attempt, and nothing sent after the refusal: no MAIL. */
	ck_assert_uint_eq(R.res.attempts, 1);
	ck_assert_ptr_null(strstr(R.transcript, "MAIL"));
	ck_assert_uint_eq(evbuffer_get_length(bufferevent_get_input(
	    R.peers[0].bev)), 0);
}
END_TEST

START_TEST(failed_handshake_defers_at_stage_tls)
{
	/* A server certificate no CA of ours signed. */
	SSL_CTX_free(R.sctx);
	R.sctx = SSL_CTX_new(TLS_server_method());
	ck_assert_ptr_nonnull(R.sctx);
	ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(R.sctx,
	    pki.self_cert), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(R.sctx, pki.self_key,
	    SSL_FILETYPE_PEM), 1);
	server(silent);
	run(PST_SEC_TLS);
	ck_assert(!R.ok);
	ck_assert_int_eq(R.err.cls, PST_TEMP);
	ck_assert_int_eq(R.err.stage, PST_STAGE_TLS);
	ck_assert_uint_eq(R.res.attempts, 1);
}
END_TEST

START_TEST(mode_names_round_trip)
{
	static const char *const names[] = {
		"none", "starttls", "tls", "tls-auto", "auto",
	};
	size_t i;

	for (i = 0; i < NELEMS(names); i++) {
		ck_assert_int_eq(pst_negotiate_mode_parse(names[i]), (int)i);
		ck_assert_str_eq(pst_negotiate_mode_name(i), names[i]);
	}
	ck_assert_int_eq(pst_negotiate_mode_parse("TLS"), -1);
	ck_assert_int_eq(pst_negotiate_mode_parse(""), -1);
	ck_assert_str_eq(pst_learned_name(PST_LEARNED_IMPLICIT), "implicit");
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("client/negotiate");
	TCase *tc = tcase_create("negotiate");

	tcase_add_unchecked_fixture(tc, pki_setup, pki_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, none_is_plain);
	tcase_add_test(tc, starttls_upgrades);
	tcase_add_test(tc, starttls_required_but_not_offered);
	tcase_add_test(tc, tls_is_implicit);
	tcase_add_test(tc, auto_plain_server_without_starttls_stays_plain);
	tcase_add_test(tc, auto_uses_offered_starttls);
	tcase_add_test(tc, auto_finds_implicit_tls_after_silent_greeting);
	tcase_add_test(tc, auto_remembered_implicit_goes_first);
	tcase_add_test(tc, auto_starttls_refused_defers_without_plaintext);
	tcase_add_test(tc, failed_handshake_defers_at_stage_tls);
	tcase_add_test(tc, mode_names_round_trip);
	suite_add_tcase(s, tc);
	return s;
}
