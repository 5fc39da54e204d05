/*
 * config.c: the configuration as the programs see it: references, the
 * keys a reload cannot change, lookups.  Also what the loading files
 * share (config_int.h): the error list, allocation, the upstreams'
 * storage and defaults.
 *
 * Loading is split by job:
 *   config_load.c   config_load(): the defaults, the file, the
 *                   environment, then the defaults that depend on other
 *                   keys; the reports the tools print
 *   config_file.c   the file, through libconfig (its only user)
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

	/* Nothing new to note (realloc() to 0 bytes would free the list). */
	if (L->nlines >= L->errs->count)
		return;
	lines = realloc(L->err_lines, L->errs->count * sizeof(*lines));
	if (lines == NULL)
		return;
	L->err_lines = lines;
	while (L->nlines < L->errs->count)
		L->err_lines[L->nlines++] = line;
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

void *
xrealloc(void *p, size_t size)
{
	if ((p = realloc(p, size == 0 ? 1 : size)) == NULL)
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
		free(cfg->aliases[i].file);
	}
	free(cfg->aliases);
	cfg->aliases = NULL;
	cfg->naliases = 0;
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
	free(cfg->aliases_file);
	config_errors_free(&cfg->warnings);
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
