/*
 * probe.c: `postern probe`, the answer to "why isn't my mail going out".
 *
 * For each configured upstream (or the one named) it runs the real
 * connection path, the same code the daemon delivers with, and prints
 * each step with its time: name lookup, connection, the TLS mode tried
 * and the one that worked (and whether it came from memory), greeting,
 * TLS details, EHLO extensions, the authentication mechanisms the server
 * supports, those the configuration allows, the one chosen and its
 * result.  With --send it also sends a short test message.  Exit status
 * 0 when every upstream probed could take mail, 1 otherwise.
 */
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/time.h>

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "client/negotiate.h"
#include "common/codec.h"
#include "common/pool.h"
#include "net/proxyurl.h"
#include "smtp/trace.h"
#include "probe.h"
#include "shared/config.h"
#include "shared/log.h"
#include "shared/secret.h"
#include "shared/upstream.h"

#define PROBE_TRANSCRIPT_MAX	200
#define PROBE_PROXIES_MAX	16

struct probe_proxy {
	char		 url[PST_PROXY_URL_MAX];
	bool		 ok;
	uint32_t	 ms;		/* handshake */
	char		 error[PST_ERR_TEXT_MAX];
};

struct probe {
	const struct config		*cfg;
	const struct config_upstream	*u;
	struct event_base		*base;
	bool				 json;
	bool				 verbose;
	const char			*send_to;
	const char			*send_from;
	struct timeval			 start;
	struct pst_client		*client;
	struct pst_negotiate_params	 np;
	struct pst_creds		 creds;
	/* Outcome. */
	bool				 ready;
	bool				 sent;
	bool				 done;
	struct pst_err			 err;
	bool				 failed;
	uint32_t			 ready_ms;
	struct pst_negotiate_result	 res;
	struct pst_client_info		 info;
	struct pst_client_mail		 mail;
	struct pst_client_rcpt		 rcpt;
	char				*lines[PROBE_TRANSCRIPT_MAX];
	size_t				 nlines;
	struct probe_proxy		 proxies[PROBE_PROXIES_MAX];
	size_t				 nproxies;
};

static uint32_t
since_ms(const struct timeval *start)
{
	struct timeval now, d;

	gettimeofday(&now, NULL);
	timersub(&now, start, &d);
	return (uint32_t)(d.tv_sec * 1000 + d.tv_usec / 1000);
}

static void
probe_trace(void *arg, const char *line)
{
	struct probe *p = arg;

	if (p->nlines < PROBE_TRANSCRIPT_MAX)
		p->lines[p->nlines++] = strdup(line);
}

static void
probe_fail(struct probe *p, const struct pst_err *err)
{
	p->failed = true;
	p->err = *err;
	event_base_loopbreak(p->base);
}

static void
on_failed(struct pst_client *c, const struct pst_err *err, void *arg)
{
	probe_fail(arg, err);
}

static void
on_rcpt(struct pst_client *c, size_t i, const struct pst_err *err, void *arg)
{
	if (err != NULL)
		probe_fail(arg, err);
}

static void
on_sent(struct pst_client *c, const struct pst_err *err, void *arg)
{
	struct probe *p = arg;

	if (err != NULL) {
		probe_fail(p, err);
		return;
	}
	p->sent = true;
	pst_client_quit(c);
}

static void
on_closed(struct pst_client *c, void *arg)
{
	struct probe *p = arg;

	p->done = true;
	event_base_loopbreak(p->base);
}

static const struct pst_client_cbs probe_cbs = {
	.rcpt = on_rcpt,
	.sent = on_sent,
	.failed = on_failed,
	.closed = on_closed,
};

static int
probe_body(struct probe *p)
{
	char date[64], body[1024];
	time_t now = time(NULL);
	uint64_t rnd = 0;
	int fd, n;

	/* RFC 5322 §3.6: Date and Message-ID, as spam filters expect. */
	if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		rnd = (uint64_t)now ^ (uint64_t)getpid();
	n = snprintf(body, sizeof(body),
	    "From: <%s>\r\nTo: <%s>\r\nSubject: postern probe of %s\r\n"
	    "Date: %s\r\nMessage-ID: <probe.%lld.%016llx@%s>\r\n\r\n"
	    "This message was sent by \"postern probe\" on %s to check\r\n"
	    "that mail reaches upstream \"%s\" (%s:%u).\r\n",
	    p->send_from, p->send_to, p->u->name,
	    pst_msg_date(now, date, sizeof(date)), (long long)now,
	    (unsigned long long)rnd, p->cfg->hostname, p->cfg->hostname,
	    p->u->name, p->u->host, p->u->port);
	if ((fd = memfd_create("probe", 0)) == -1)
		return -1;
	if (write(fd, body, (size_t)n) != n || lseek(fd, 0, SEEK_SET) == -1) {
		close(fd);
		return -1;
	}
	p->mail.size = (uint64_t)n;
	return fd;
}

static void
on_negotiated(struct pst_client *c, const struct pst_negotiate_result *res,
    const struct pst_err *err, void *arg)
{
	struct probe *p = arg;
	struct pst_err e;

	p->res = *res;
	if (err != NULL) {
		probe_fail(p, err);
		return;
	}
	p->client = c;
	p->ready = true;
	p->ready_ms = since_ms(&p->start);
	p->info = *pst_client_info(c);
	pst_client_set_callbacks(c, &probe_cbs, p);
	if (p->send_to == NULL) {
		pst_client_quit(c);
		return;
	}
	p->rcpt.addr = p->send_to;
	p->mail.sender = p->send_from;
	p->mail.rcpts = &p->rcpt;
	p->mail.nrcpts = 1;
	if ((p->mail.body_fd = probe_body(p)) == -1 ||
	    pst_client_send(c, &p->mail, &e) == -1) {
		pst_err_set(&e, PST_LOCAL, PST_STAGE_DATA,
		    "cannot prepare the test message");
		probe_fail(p, &e);
	}
}

static const char *
yesno(bool b)
{
	return b ? "yes" : "no";
}

static void
json_str(const char *key, const char *v, bool comma)
{
	printf("\"%s\":\"", key);
	if (v != NULL)
		pst_json_escape_file(stdout, v, strlen(v));
	printf("\"%s", comma ? "," : "");
}

static void
print_text(const struct probe *p)
{
	const struct config_upstream *u = p->u;
	const struct pst_client_info *in = &p->info;
	char caps[256], allowed[128], peer[80], local[80];
	size_t i;

	printf("upstream %s: %s:%u, security %s\n", u->name, u->host, u->port,
	    pst_negotiate_mode_name((enum pst_secmode)u->security));
	if (u->tls_note[0] != '\0')
		printf("  tls policy %s\n", u->tls_note);
	for (i = 0; i < p->nproxies; i++) {
		if (p->proxies[i].ok)
			printf("  proxy      %s: tunnel open (%u ms)\n",
			    p->proxies[i].url, p->proxies[i].ms);
		else
			printf("  proxy      %s: FAILED: %s\n",
			    p->proxies[i].url, p->proxies[i].error);
	}
	if (p->res.dial.peer_len > 0) {
		pst_sockaddr_format((const struct sockaddr *)&p->res.dial.peer,
		    p->res.dial.peer_len, peer, sizeof(peer));
		pst_sockaddr_format((const struct sockaddr *)&p->res.dial.local,
		    p->res.dial.local_len, local, sizeof(local));
		if (p->res.dial.resolve_ms != UINT32_MAX)
			printf("  resolve    %u address%s (%u ms)\n",
			    p->res.dial.addrs, p->res.dial.addrs == 1 ? "" :
			    "es", p->res.dial.resolve_ms);
		printf("  connect    %s from %s (%u ms)\n", peer, local,
		    p->res.dial.connect_ms);
	}
	if (p->ready)
		printf("  mode       %s (%s; attempts: %s)\n",
		    pst_client_mode_name(in),
		    p->res.from_memory ? "port kind from memory" :
		    "negotiated", p->res.path);
	else if (u->security == PST_SEC_AUTO ||
	    u->security == PST_SEC_TLS_AUTO)
		printf("  mode       none (attempts: %s)\n", p->res.path);
	if (p->ready) {
		printf("  greeting   %s (%u ms)\n", in->greeting,
		    in->greeting_ms);
		if (in->tls)
			printf("  tls        %s %s, %s; subject %s; issuer %s; "
			    "verified %s%s%s\n", in->tls_info.version,
			    in->tls_info.cipher, in->starttls ? "STARTTLS" :
			    "implicit", in->tls_info.subject,
			    in->tls_info.issuer,
			    in->tls_info.pin_matched ? "by pin" :
			    yesno(in->tls_info.verified),
			    in->tls_info.verify_error[0] != '\0' ? ": " : "",
			    in->tls_info.verify_error);
		else
			printf("  tls        none\n");
		printf("  ehlo       %s%s\n", in->esmtp ? "" : "(HELO) ",
		    pst_ehlo_caps_format(in->ehlo.caps, caps, sizeof(caps)));
	}
	if (u->has_auth) {
		pst_sasl_mask_format(u->auth.mechanisms, allowed,
		    sizeof(allowed));
		printf("  auth       supported: %s; allowed: %s; chosen: %s\n",
		    p->ready || p->info.ehlo.auth_offered[0] != '\0' ?
		    p->info.ehlo.auth_offered : "?", allowed,
		    in->auth_mech != NULL ? in->auth_mech : "none");
	}
	if (p->send_to != NULL && p->sent)
		printf("  send       <%s> -> <%s>: accepted\n", p->send_from,
		    p->send_to);
	if (p->failed)
		printf("  result     FAILED at %s (%s): %s\n",
		    pst_stage_name(p->err.stage), pst_class_name(p->err.cls),
		    p->err.text);
	else
		printf("  result     ok: mail can be sent (%u ms)\n",
		    p->ready_ms);
	if (p->verbose)
		for (i = 0; i < p->nlines; i++)
			printf("    | %s\n", p->lines[i]);
}

static void
print_json(const struct probe *p, bool comma)
{
	const struct pst_client_info *in = &p->info;
	char caps[256], allowed[128], peer[80];
	size_t i;

	printf("{");
	json_str("upstream", p->u->name, true);
	json_str("host", p->u->host, true);
	printf("\"port\":%u,", p->u->port);
	json_str("security",
	    pst_negotiate_mode_name((enum pst_secmode)p->u->security), true);
	printf("\"ok\":%s,", p->failed ? "false" : "true");
	if (p->res.dial.peer_len > 0) {
		pst_sockaddr_format((const struct sockaddr *)&p->res.dial.peer,
		    p->res.dial.peer_len, peer, sizeof(peer));
		json_str("connected_to", peer, true);
		printf("\"connect_ms\":%u,", p->res.dial.connect_ms);
	}
	printf("\"proxies\":[");
	for (i = 0; i < p->nproxies; i++) {
		printf("{");
		json_str("url", p->proxies[i].url, true);
		printf("\"ok\":%s,\"ms\":%u,", p->proxies[i].ok ? "true" :
		    "false", p->proxies[i].ms);
		json_str("error", p->proxies[i].error, false);
		printf("}%s", i + 1 < p->nproxies ? "," : "");
	}
	printf("],");
	json_str("path", p->res.path, true);
	json_str("learned", pst_learned_name(p->res.learned), true);
	if (p->ready)
		json_str("mode", pst_client_mode_name(&p->info), true);
	printf("\"from_memory\":%s,", p->res.from_memory ? "true" : "false");
	printf("\"attempts\":%u,", p->res.attempts);
	if (p->ready) {
		json_str("greeting", in->greeting, true);
		printf("\"greeting_ms\":%u,\"ready_ms\":%u,", in->greeting_ms,
		    p->ready_ms);
		printf("\"tls\":%s,", in->tls ? "true" : "false");
		if (in->tls) {
			json_str("tls_version", in->tls_info.version, true);
			json_str("tls_cipher", in->tls_info.cipher, true);
			json_str("tls_subject", in->tls_info.subject, true);
			printf("\"tls_verified\":%s,\"starttls\":%s,",
			    in->tls_info.verified ? "true" : "false",
			    in->starttls ? "true" : "false");
		}
		json_str("ehlo", pst_ehlo_caps_format(in->ehlo.caps, caps,
		    sizeof(caps)), true);
		json_str("auth_supported", in->ehlo.auth_offered, true);
		json_str("auth_chosen", in->auth_mech, true);
	}
	if (p->u->has_auth) {
		pst_sasl_mask_format(p->u->auth.mechanisms, allowed,
		    sizeof(allowed));
		json_str("auth_allowed", allowed, true);
	}
	if (p->send_to != NULL)
		printf("\"sent\":%s,", p->sent ? "true" : "false");
	if (p->failed) {
		json_str("error_stage", pst_stage_name(p->err.stage), true);
		json_str("error_class", pst_class_name(p->err.cls), true);
		printf("\"error_code\":%d,", p->err.smtp_code);
		json_str("error", p->err.text, false);
	} else
		printf("\"error\":null");
	printf("}%s\n", comma ? "," : "");
}

/* One connection attempt through proxy number 'k' (if any). */
static void
probe_attempt(struct probe *p, struct pst_pool *pool, const char *secret,
    enum pst_learned remembered, size_t k)
{
	struct timeval limit;
	struct pst_negotiate *n;
	struct pst_err err;
	uint64_t total = p->u->timeouts.total;

	p->failed = p->ready = p->done = p->sent = false;
	memset(&p->res, 0, sizeof(p->res));
	pst_err_clear(&p->err);
	gettimeofday(&p->start, NULL);
	upstream_params(p->cfg, p->u, secret, remembered, k, &p->np,
	    &p->creds);
	p->np.plan.trace = probe_trace;
	p->np.plan.trace_arg = p;
	p->np.client.trace = probe_trace;
	p->np.client.trace_arg = p;
	if ((n = pst_negotiate_start(p->base, pool, &p->np, on_negotiated, p,
	    &err)) == NULL) {
		p->failed = true;
		p->err = err;
		return;
	}
	limit.tv_sec = (time_t)(total / 1000);
	limit.tv_usec = (suseconds_t)(total % 1000) * 1000;
	event_base_loopexit(p->base, &limit);
	event_base_dispatch(p->base);
	if (!p->ready && !p->failed) {
		/* The total timeout ended the loop. */
		pst_negotiate_cancel(n);
		pst_err_set(&p->err, PST_TEMP, PST_STAGE_NONE, "no answer "
		    "within the total timeout");
		p->failed = true;
	} else if (p->ready && !p->done && !p->failed) {
		pst_err_set(&p->err, PST_TEMP, PST_STAGE_QUIT, "the session "
		    "did not end within the total timeout");
		p->failed = true;
	}
	pst_client_free(p->client);
	p->client = NULL;
	if (p->mail.body_fd > 0)
		close(p->mail.body_fd);
	p->mail.body_fd = -1;
}

static int
probe_one(struct probe *p, struct pst_pool *pool)
{
	const struct config_upstream *u = p->u;
	struct probe_proxy *pp;
	char *secret = NULL;
	enum pst_learned remembered;
	size_t k;

	if (u->has_auth && secret_load(u, &secret, &p->err) == -1) {
		p->failed = true;
		return -1;
	}
	remembered = upstream_memory_load(p->cfg->spool_dir, u->name);
	for (k = 0; k < (u->nproxies > 0 ? u->nproxies : 1); k++) {
		probe_attempt(p, pool, secret, remembered, k);
		if (u->nproxies == 0 || k >= PROBE_PROXIES_MAX)
			break;
		/* Each proxy of the list, in turn, as deliveries do. */
		pp = &p->proxies[p->nproxies++];
		pst_proxy_url_format(&u->proxies[k], pp->url, sizeof(pp->url));
		pp->ok = p->res.dial.nhops > 0;
		pp->ms = pp->ok ? p->res.dial.hop_ms[0] : 0;
		if (p->failed && !pp->ok)
			snprintf(pp->error, sizeof(pp->error), "%s",
			    p->err.text);
		if (!p->failed || !upstream_proxy_failed(&p->err))
			break;
	}
	secret_free(secret);
	if (p->ready && upstream_memory_save(p->cfg->spool_dir, u->name,
	    p->res.learned) == -1 && p->verbose)
		fprintf(stderr, "postern: cannot remember the mode of %s under "
		    "%s\n", u->name, p->cfg->spool_dir);
	return p->failed ? -1 : 0;
}

int
probe_run(const struct config *cfg, const char *name, bool json,
    bool verbose, const char *send_to, const char *send_from)
{
	struct event_base *base;
	struct pst_pool *pool;
	struct pst_err err;
	struct probe *p;
	char from[300];
	size_t i, count = 0, done = 0;
	int status = 0;

	if (cfg->nupstreams == 0) {
		fprintf(stderr, "postern: no upstream is configured\n");
		return 1;
	}
	if (name != NULL && config_upstream_find(cfg, name) == NULL) {
		fprintf(stderr, "postern: no upstream is called \"%s\"\n",
		    name);
		return 1;
	}
	if (send_from == NULL) {
		snprintf(from, sizeof(from), "postmaster@%s",
		    cfg->default_domain);
		send_from = from;
	}
	evthread_use_pthreads();
	if ((base = event_base_new()) == NULL ||
	    (pool = pst_pool_new(base, 1, &err)) == NULL) {
		fprintf(stderr, "postern: cannot start the event loop\n");
		return 1;
	}
	for (i = 0; i < cfg->nupstreams; i++)
		if (name == NULL || strcmp(cfg->upstreams[i].name, name) == 0)
			count++;
	if (json)
		printf("[\n");
	for (i = 0; i < cfg->nupstreams; i++) {
		if (name != NULL && strcmp(cfg->upstreams[i].name, name) != 0)
			continue;
		if ((p = calloc(1, sizeof(*p))) == NULL)
			return 1;
		p->cfg = cfg;
		p->u = &cfg->upstreams[i];
		p->base = base;
		p->json = json;
		p->verbose = verbose;
		p->send_to = send_to;
		p->send_from = send_from;
		p->mail.body_fd = -1;
		if (probe_one(p, pool) == -1)
			status = 1;
		done++;
		if (json)
			print_json(p, done < count);
		else
			print_text(p);
		while (p->nlines > 0)
			free(p->lines[--p->nlines]);
		free(p);
	}
	if (json)
		printf("]\n");
	pst_pool_free(pool);
	event_base_free(base);
	return status;
}
