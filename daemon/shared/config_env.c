/*
 * config_env.c: the POSTERN_* environment over the file's values.
 *
 * Applied after the file, through the validators the file uses
 * (config_check.c); each error names the variable, and sorts after the
 * file's.  Lists are comma-separated.
 */
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "client/negotiate.h"
#include "common/codec.h"
#include "common/err.h"
#include "config.h"
#include "config_int.h"
#include "log.h"
#include "tls/ctx.h"

static void	 env_err(struct loader *, const char *, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

static char **
split_commas(const char *value, size_t *count)
{
	char *copy = xstrdup(value), *p, *tok, **out;
	size_t n = 1;

	for (p = copy; *p != '\0'; p++)
		n += *p == ',';
	out = xcalloc(n, sizeof(*out));
	*count = 0;
	for (tok = strtok_r(copy, ",", &p); tok != NULL;
	    tok = strtok_r(NULL, ",", &p)) {
		while (*tok == ' ')
			tok++;
		if (*tok != '\0')
			out[(*count)++] = xstrdup(tok);
	}
	free(copy);
	return out;
}

static void
free_strings(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void
env_err(struct loader *L, const char *var, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	add_error(L->errs, "environment %s: %s", var, msg);
	note_line(L, INT_MAX);
}

static void
env_listen(struct loader *L, const char *var, const char *value)
{
	struct pst_endpoint *eps;
	const char *why;
	size_t n, i;
	char **items = split_commas(value, &n);

	if (n == 0) {
		env_err(L, var, "must name at least one address");
		free_strings(items, n);
		return;
	}
	eps = xcalloc(n, sizeof(*eps));
	for (i = 0; i < n; i++)
		if ((why = parse_listen(items[i], &eps[i])) != NULL)
			env_err(L, var, "\"%s\" is not a listen address: %s",
			    items[i], why);
	free(L->cfg->listen);
	L->cfg->listen = eps;
	L->cfg->nlisten = n;
	free_strings(items, n);
}

static void
env_allow(struct loader *L, const char *var, const char *value)
{
	struct pst_cidr *nets;
	const char *why;
	size_t n, i;
	char **items = split_commas(value, &n);

	nets = xcalloc(n, sizeof(*nets));
	for (i = 0; i < n; i++)
		if (pst_cidr_parse(items[i], &nets[i], &why) == -1)
			env_err(L, var, "\"%s\" is not a network: %s",
			    items[i], why);
	free(L->cfg->allow);
	L->cfg->allow = nets;
	L->cfg->nallow = n;
	free_strings(items, n);
}

static void
env_spool_dir(struct loader *L, const char *var, const char *value)
{
	const char *why;

	if ((why = set_spool_dir(L->cfg, value)) != NULL)
		env_err(L, var, "\"%s\" %s", value, why);
}

static void
env_hostname(struct loader *L, const char *var, const char *value)
{
	const char *why;

	if ((why = check_domain(value)) != NULL) {
		env_err(L, var, "\"%s\" %s", value, why);
		return;
	}
	free(L->cfg->hostname);
	L->cfg->hostname = xstrdup(value);
}

static void
env_log_level(struct loader *L, const char *var, const char *value)
{
	int level;

	if ((level = log_level_parse(value)) == -1)
		env_err(L, var, "\"%s\" is not a level (error, warn, info or "
		    "debug)", value);
	else
		L->cfg->log_level = level;
}

/*
 * Decodes %XX in place (the shared decoder never writes ahead of what it
 * reads); -1 for a bad escape or a control character.
 */
static int
percent_decode(char *s)
{
	size_t len = strlen(s), i;

	if (pst_pct_decode(s, len, s, len + 1, &len) != PST_PCT_OK)
		return -1;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return -1;
	return 0;
}

/*
 * POSTERN_UPSTREAM: one upstream as a URL, replacing those of the file:
 * smtp:// (none), smtp+starttls://, smtps:// (tls), smtp+tls-auto://,
 * smtp+auto://, with optional user:password@ and :port.
 */
static void
env_upstream(struct loader *L, const char *var, const char *value)
{
	static const struct {
		const char	*scheme;
		int		 mode;
	} schemes[] = {
		{ "smtp://", PST_SEC_NONE },
		{ "smtp+starttls://", PST_SEC_STARTTLS },
		{ "smtps://", PST_SEC_TLS },
		{ "smtp+tls-auto://", PST_SEC_TLS_AUTO },
		{ "smtp+auto://", PST_SEC_AUTO },
	};
	struct config_upstream *u;
	struct pst_endpoint ep;
	char *copy, *rest, *at, *colon;
	const char *why;
	size_t i;
	int mode = -1;

	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		if (strncmp(value, schemes[i].scheme,
		    strlen(schemes[i].scheme)) == 0) {
			mode = schemes[i].mode;
			rest = (char *)value + strlen(schemes[i].scheme);
			break;
		}
	}
	if (mode == -1) {
		env_err(L, var, "\"%s\" is not an smtp://, smtp+starttls://, "
		    "smtps://, smtp+tls-auto:// or smtp+auto:// URL", value);
		return;
	}
	copy = xstrdup(rest);
	if ((rest = strchr(copy, '/')) != NULL && rest[1] == '\0')
		*rest = '\0';
	upstreams_free(L->cfg);
	L->cfg->upstreams = xcalloc(1, sizeof(*L->cfg->upstreams));
	L->cfg->nupstreams = 1;
	u = &L->cfg->upstreams[0];
	upstream_defaults(u);
	u->security = mode;
	rest = copy;
	if ((at = strrchr(copy, '@')) != NULL) {
		*at = '\0';
		rest = at + 1;
		if ((colon = strchr(copy, ':')) != NULL)
			*colon++ = '\0';
		if (percent_decode(copy) == -1 || *copy == '\0' ||
		    (colon != NULL && percent_decode(colon) == -1)) {
			env_err(L, var, "bad user or password in the URL");
			goto out;
		}
		u->has_auth = true;
		u->auth.user = up_strdup(u, copy);
		if (colon != NULL)
			u->auth.password = up_strdup(u, colon);
	}
	if (pst_endpoint_parse(rest, mode == PST_SEC_TLS ?
	    CONFIG_PORT_SUBMISSIONS : CONFIG_PORT_SUBMISSION, false, &ep,
	    &why) == -1) {
		env_err(L, var, "\"%s\" is not host[:port]: %s", rest, why);
		goto out;
	}
	u->host = up_strdup(u, ep.host);
	u->port = ep.port;
	u->name = up_strdup(u, ep.host);
out:
	OPENSSL_cleanse(copy, strlen(copy));
	free(copy);
}

/* POSTERN_PASSWORD_FILE: the password of every upstream, from a file. */
static void
env_password_file(struct loader *L, const char *var, const char *value)
{
	struct config_upstream *u;
	struct stat st;
	size_t i;

	if (stat(value, &st) == -1) {
		env_err(L, var, "\"%s\": %s", value, strerror(errno));
		return;
	}
	for (i = 0; i < L->cfg->nupstreams; i++) {
		u = &L->cfg->upstreams[i];
		if (!u->has_auth) {
			env_err(L, var, "upstream \"%s\" has no user to go with "
			    "the password", u->name);
			continue;
		}
		u->auth.password = NULL;
		u->auth.password_command = NULL;
		u->auth.credential = NULL;
		u->auth.password_file = up_strdup(u, value);
	}
}

/* POSTERN_PROXY: comma-separated proxy URLs for every upstream. */
static void
env_proxy(struct loader *L, const char *var, const char *value)
{
	struct config_upstream *u;
	const char *why;
	size_t i, j, n;
	char **items = split_commas(value, &n);

	for (i = 0; i < L->cfg->nupstreams; i++) {
		u = &L->cfg->upstreams[i];
		if (u->proxies != NULL) {
			OPENSSL_cleanse(u->proxies,
			    u->nproxies * sizeof(*u->proxies));
			free(u->proxies);
		}
		u->proxies = NULL;
		u->nproxies = 0;
		for (j = 0; j < n; j++)
			if ((why = add_proxy(u, items[j])) != NULL && i == 0)
				env_err(L, var, "proxy %zu: not a usable proxy "
				    "URL: %s", j + 1, why);
	}
	for (j = 0; j < n; j++)
		OPENSSL_cleanse(items[j], strlen(items[j]));
	free_strings(items, n);
}

/* Checks done once the environment had its say. */
static void
env_finish_upstreams(struct loader *L)
{
	struct config_upstream *u;
	struct pst_tls_report report;
	struct pst_err err;
	size_t i;

	if (getenv("POSTERN_UPSTREAM") == NULL)
		return;
	for (i = 0; i < L->cfg->nupstreams; i++) {
		u = &L->cfg->upstreams[i];
		if (u->has_auth && u->auth.password == NULL &&
		    u->auth.password_file == NULL)
			env_err(L, "POSTERN_UPSTREAM", "the URL names a user "
			    "but no password (add :password or set "
			    "POSTERN_PASSWORD_FILE)");
		if (u->security == PST_SEC_NONE || u->host == NULL ||
		    u->ssl_ctx != NULL)
			continue;
		if ((u->ssl_ctx = pst_tls_ctx_new(&u->tls, &report, &err)) ==
		    NULL)
			env_err(L, "POSTERN_UPSTREAM", "%s", err.text);
	}
}

static const struct {
	const char	*var;
	void		(*apply)(struct loader *, const char *, const char *);
} env_overrides[] = {
	{ "POSTERN_HOSTNAME", env_hostname },
	{ "POSTERN_SPOOL_DIR", env_spool_dir },
	{ "POSTERN_LISTEN", env_listen },
	{ "POSTERN_ALLOW", env_allow },
	{ "POSTERN_LOG_LEVEL", env_log_level },
	{ "POSTERN_UPSTREAM", env_upstream },
	{ "POSTERN_PASSWORD_FILE", env_password_file },
	{ "POSTERN_PROXY", env_proxy },
};

void
load_env(struct loader *L)
{
	const char *value;
	size_t i;

	for (i = 0; i < sizeof(env_overrides) / sizeof(env_overrides[0]);
	    i++)
		if ((value = getenv(env_overrides[i].var)) != NULL)
			env_overrides[i].apply(L, env_overrides[i].var, value);
	env_finish_upstreams(L);
}
