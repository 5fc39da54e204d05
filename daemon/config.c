/*
 * config.c: the configuration as the programs see it: config_load() (the
 * defaults, then the file, then the environment, then the defaults that
 * depend on other keys), references, the keys a reload cannot change,
 * lookups, and the check-config report.  Also what the loading files
 * share: the error list, allocation, the upstreams' storage.
 *
 * The rest is split by job, behind config_int.h:
 *   config_load.c   the file, through libconfig (its only user)
 *   config_env.c    the POSTERN_* environment
 *   config_check.c  value validators shared by those two
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "build_config.h"
#include "client/negotiate.h"
#include "config.h"
#include "config_int.h"
#include "log.h"
#include "sasl/sasl.h"

/*
 * Errors.
 */

void
add_error(struct config_errors *errs, const char *fmt, ...)
{
	char **lines;
	char *line;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&line, fmt, ap) == -1)
		line = NULL;
	va_end(ap);
	if (line == NULL)
		return;
	lines = realloc(errs->lines, (errs->count + 1) * sizeof(*lines));
	if (lines == NULL) {
		free(line);
		return;
	}
	errs->lines = lines;
	errs->lines[errs->count++] = line;
}

/*
 * Remembers the line of the error just added, so that the errors can be
 * put in file order at the end (keys are checked before values, which
 * would otherwise report a group's unknown keys first).
 */
void
note_line(struct loader *L, int line)
{
	int *lines;

	/* A count of 0 means err_lines is NULL: realloc(NULL, 0) is malloc. */
	/* NOLINTNEXTLINE(clang-analyzer-optin.portability.UnixAPI) */
	lines = realloc(L->err_lines, L->errs->count * sizeof(*lines));
	if (lines == NULL)
		return;
	L->err_lines = lines;
	while (L->nlines < L->errs->count)
		L->err_lines[L->nlines++] = line;
}

static void
sort_errors(struct loader *L)
{
	size_t i, j;
	char *line;
	int key;

	if (L->nlines != L->errs->count)
		return;
	for (i = 1; i < L->errs->count; i++) {
		line = L->errs->lines[i];
		key = L->err_lines[i];
		for (j = i; j > 0 && L->err_lines[j - 1] > key; j--) {
			L->errs->lines[j] = L->errs->lines[j - 1];
			L->err_lines[j] = L->err_lines[j - 1];
		}
		L->errs->lines[j] = line;
		L->err_lines[j] = key;
	}
}

void
config_errors_free(struct config_errors *errs)
{
	size_t i;

	for (i = 0; i < errs->count; i++)
		free(errs->lines[i]);
	free(errs->lines);
	errs->lines = NULL;
	errs->count = 0;
}

char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		fatalx("event=oom what=config");
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n == 0 ? 1 : n, size);

	if (p == NULL)
		fatalx("event=oom what=config");
	return p;
}

/*
 * The struct's parts: upstreams own their strings.
 */

char *
up_strdup(struct config_upstream *u, const char *value)
{
	char **v;

	v = realloc(u->strings, (u->nstrings + 1) * sizeof(*v));
	if (v == NULL)
		fatalx("event=oom what=config");
	u->strings = v;
	return u->strings[u->nstrings++] = xstrdup(value);
}

/*
 * An upstream's timeouts, in milliseconds.  The command, data and dot
 * ones are RFC 5321 §4.5.3.2's; greeting is short because the auto modes
 * take its silence as a sign to try TLS first; total bounds a whole
 * attempt, however many messages it carries.
 */
#define UPSTREAM_CONNECT_MS	(30 * 1000)
#define UPSTREAM_PROXY_MS	(30 * 1000)
#define UPSTREAM_GREETING_MS	(4 * 1000)
#define UPSTREAM_TLS_MS		(30 * 1000)
#define UPSTREAM_COMMAND_MS	(5 * 60 * 1000)
#define UPSTREAM_DATA_MS	(3 * 60 * 1000)
#define UPSTREAM_DOT_MS		(10 * 60 * 1000)
#define UPSTREAM_TOTAL_MS	(30 * 60 * 1000)

void
upstream_defaults(struct config_upstream *u)
{
	u->security = PST_SEC_TLS_AUTO;
	u->timeouts.connect = UPSTREAM_CONNECT_MS;
	u->timeouts.proxy = UPSTREAM_PROXY_MS;
	u->timeouts.greeting = UPSTREAM_GREETING_MS;
	u->timeouts.tls = UPSTREAM_TLS_MS;
	u->timeouts.command = UPSTREAM_COMMAND_MS;
	u->timeouts.data = UPSTREAM_DATA_MS;
	u->timeouts.dot = UPSTREAM_DOT_MS;
	u->timeouts.total = UPSTREAM_TOTAL_MS;
	pst_tls_policy_init(&u->tls);
	u->auth.mechanisms = PST_SASL_ALL & ~PST_SASL_XOAUTH2;
}

static void
upstream_free(struct config_upstream *u)
{
	size_t i;

	for (i = 0; i < u->nstrings; i++) {
		/* Secrets among them: wipe everything, it is cheap. */
		OPENSSL_cleanse(u->strings[i], strlen(u->strings[i]));
		free(u->strings[i]);
	}
	free(u->strings);
	free((void *)u->tls.pins);
	if (u->proxies != NULL) {
		OPENSSL_cleanse(u->proxies, u->nproxies * sizeof(*u->proxies));
		free(u->proxies);
	}
	if (u->ssl_ctx != NULL)
		SSL_CTX_free(u->ssl_ctx);
}

void
upstreams_free(struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->nupstreams; i++)
		upstream_free(&cfg->upstreams[i]);
	free(cfg->upstreams);
	cfg->upstreams = NULL;
	cfg->nupstreams = 0;
}

static void
aliases_free(struct config *cfg)
{
	size_t i, j;

	for (i = 0; i < cfg->naliases; i++) {
		for (j = 0; j < cfg->aliases[i].ntargets; j++)
			free(cfg->aliases[i].targets[j]);
		free(cfg->aliases[i].targets);
		free(cfg->aliases[i].name);
	}
	free(cfg->aliases);
	cfg->aliases = NULL;
	cfg->naliases = 0;
}

/*
 * Defaults.
 */

static const char *const default_listen[] = { "127.0.0.1:25", "[::1]:25" };
static const char *const default_allow[] = { "127.0.0.0/8", "::1/128" };

/*
 * The queue's defaults (conf/postern.conf): retries soon at first, then
 * hourly; five days before a bounce, as most MTAs; a few connections per
 * upstream, each reused for many messages; a breaker that opens after a
 * few failures in a row, for a minute at first.
 */
#define QUEUE_MAX_AGE_MS	(5ull * 24 * 60 * 60 * 1000)
#define QUEUE_CONCURRENCY	4
#define QUEUE_PER_CONNECTION	100
#define QUEUE_BREAKER_FAILURES	3
#define QUEUE_BREAKER_BACKOFF_MS (60 * 1000)

static void
queue_defaults(struct config_queue *q)
{
	/* Seconds: 1m, 5m, 15m, 30m, then 1h until max_age. */
	static const uint32_t retry[] = { 60, 300, 900, 1800, 3600 };

	memcpy(q->retry, retry, sizeof(retry));
	q->nretry = sizeof(retry) / sizeof(retry[0]);
	q->max_age_ms = QUEUE_MAX_AGE_MS;
	q->concurrency = QUEUE_CONCURRENCY;
	q->per_connection = QUEUE_PER_CONNECTION;
	q->breaker_failures = QUEUE_BREAKER_FAILURES;
	q->breaker_backoff_ms = QUEUE_BREAKER_BACKOFF_MS;
}

static char *
system_hostname(void)
{
	char buf[256], *nl;
	FILE *fp;

	/* Debian's /etc/mailname names the mail domain of this host. */
	if ((fp = fopen("/etc/mailname", "r")) != NULL) {
		if (fgets(buf, sizeof(buf), fp) != NULL) {
			if ((nl = strpbrk(buf, "\r\n")) != NULL)
				*nl = '\0';
			if (pst_hostname_valid(buf)) {
				fclose(fp);
				return xstrdup(buf);
			}
		}
		fclose(fp);
	}
	if (gethostname(buf, sizeof(buf)) == 0) {
		buf[sizeof(buf) - 1] = '\0';
		if (pst_hostname_valid(buf))
			return xstrdup(buf);
	}
	return xstrdup("localhost");
}

static void
set_defaults(struct config *cfg)
{
	const char *why;
	size_t i;

	cfg->refs = 1;
	cfg->spool_dir = xstrdup(POSTERN_DEFAULT_SPOOL);
	cfg->nlisten = sizeof(default_listen) / sizeof(default_listen[0]);
	cfg->listen = xcalloc(cfg->nlisten, sizeof(*cfg->listen));
	for (i = 0; i < cfg->nlisten; i++)
		pst_endpoint_parse(default_listen[i], CONFIG_PORT_SMTP, false,
		    &cfg->listen[i], &why);
	cfg->nallow = sizeof(default_allow) / sizeof(default_allow[0]);
	cfg->allow = xcalloc(cfg->nallow, sizeof(*cfg->allow));
	for (i = 0; i < cfg->nallow; i++)
		pst_cidr_parse(default_allow[i], &cfg->allow[i], &why);
	cfg->log_level = LOG_LEVEL_INFO;
	cfg->limits.message_size = CONFIG_DEFAULT_MESSAGE_SIZE;
	cfg->limits.recipients = CONFIG_DEFAULT_RECIPIENTS;
	cfg->limits.sessions = CONFIG_DEFAULT_SESSIONS;
	cfg->limits.idle_ms = CONFIG_DEFAULT_IDLE_MS;
	cfg->limits.min_data_rate = CONFIG_DEFAULT_MIN_DATA_RATE;
	cfg->limits.junk_commands = CONFIG_DEFAULT_JUNK_COMMANDS;
	cfg->limits.stress_threshold = CONFIG_DEFAULT_STRESS_THRESHOLD;
	cfg->limits.stress_idle_ms = CONFIG_DEFAULT_STRESS_IDLE_MS;
	cfg->limits.stress_junk_commands = CONFIG_DEFAULT_STRESS_JUNK;
	queue_defaults(&cfg->queue);
}

/* Defaults that depend on other keys, filled once everything is read. */
static void
finish(struct config *cfg)
{
	if (cfg->hostname == NULL)
		cfg->hostname = system_hostname();
	if (cfg->default_domain == NULL)
		cfg->default_domain = xstrdup(cfg->hostname);
}

const char *
config_default_path(void)
{
	const char *env = getenv("POSTERN_CONFIG");

	return env != NULL && *env != '\0' ? env : POSTERN_DEFAULT_CONFIG;
}

int
config_load(const char *path, bool must_exist, struct config **out,
    struct config_errors *errs)
{
	struct loader L = { .errs = errs, .file = path };
	struct config *cfg;
	struct stat st;
	bool have_file = true;

	errs->lines = NULL;
	errs->count = 0;
	cfg = xcalloc(1, sizeof(*cfg));
	set_defaults(cfg);
	L.cfg = cfg;

	if (stat(path, &st) == -1 && errno == ENOENT && !must_exist)
		have_file = false;
	if (have_file)
		config_load_file(&L, path);
	note_line(&L, 0);
	load_env(&L);
	finish(cfg);
	sort_errors(&L);
	free(L.err_lines);
	if (errs->count > 0) {
		config_unref(cfg);
		*out = NULL;
		return -1;
	}
	*out = cfg;
	return 0;
}

static bool
same_endpoint(const struct pst_endpoint *a, const struct pst_endpoint *b)
{
	char x[PST_HOST_MAX + 128], y[PST_HOST_MAX + 128];

	return strcmp(pst_endpoint_format(a, x, sizeof(x)),
	    pst_endpoint_format(b, y, sizeof(y))) == 0;
}

/* The same addresses, in any order. */
static bool
same_listen(const struct config *a, const struct config *b)
{
	size_t i, j;

	if (a->nlisten != b->nlisten)
		return false;
	for (i = 0; i < a->nlisten; i++) {
		for (j = 0; j < b->nlisten; j++)
			if (same_endpoint(&a->listen[i], &b->listen[j]))
				break;
		if (j == b->nlisten)
			return false;
	}
	return true;
}

static void
note_key(char *buf, size_t len, size_t *n, const char *key)
{
	size_t used = strlen(buf);

	snprintf(buf + used, len - used, "%s%s", *n > 0 ? "," : "", key);
	(*n)++;
}

size_t
config_restart_keys(const struct config *old, const struct config *new,
    char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	if (!same_listen(old, new))
		note_key(buf, len, &n, "listen");
	if (old->has_metrics != new->has_metrics || (old->has_metrics &&
	    !same_endpoint(&old->metrics_listen, &new->metrics_listen)))
		note_key(buf, len, &n, "metrics_listen");
	if (strcmp(old->spool_dir, new->spool_dir) != 0)
		note_key(buf, len, &n, "spool_dir");
	return n;
}

struct config *
config_ref(struct config *cfg)
{
	cfg->refs++;
	return cfg;
}

void
config_unref(struct config *cfg)
{
	if (cfg == NULL || --cfg->refs > 0)
		return;
	aliases_free(cfg);
	upstreams_free(cfg);
	free(cfg->path);
	free(cfg->hostname);
	free(cfg->spool_dir);
	free(cfg->listen);
	free(cfg->allow);
	free(cfg->default_domain);
	free(cfg);
}

const struct config_alias *
config_alias_find(const struct config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->naliases; i++)
		if (strcasecmp(cfg->aliases[i].name, name) == 0)
			return &cfg->aliases[i];
	return NULL;
}

const struct config_upstream *
config_upstream_find(const struct config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->nupstreams; i++)
		if (strcmp(cfg->upstreams[i].name, name) == 0)
			return &cfg->upstreams[i];
	return NULL;
}

int
config_check_report(const char *path, bool must_exist)
{
	struct config_errors errs;
	struct config *cfg;
	size_t i;

	if (config_load(path, must_exist, &cfg, &errs) == -1) {
		for (i = 0; i < errs.count; i++)
			fprintf(stderr, "%s\n", errs.lines[i]);
		config_errors_free(&errs);
		return 1;
	}
	printf("ok\n");
	config_unref(cfg);
	return 0;
}
