/*
 * config_load.c: config_load(), the one way to a struct config: the
 * defaults, then the file (config_file.c), then the POSTERN_* environment
 * (config_env.c), then the defaults that depend on other keys.  And the
 * reports the tools print when a load fails.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "build_config.h"
#include "config.h"
#include "config_int.h"
#include "config_load.h"
#include "log.h"
#include "net/sockaddr.h"

/*
 * Puts the errors in file order (keys are checked before values, which
 * would otherwise report a group's unknown keys first); note_line()
 * recorded each one's line.
 */
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

/*
 * Whether 'domain' is a name a smart host takes in an address: with a
 * dot, and not under a top label that only means something locally.
 */
static bool
fully_qualified(const char *domain)
{
	static const char *const local[] = {
		"local", "localdomain", "localhost", "lan", "home",
		"internal", "invalid", "test",
	};
	const char *dot = strrchr(domain, '.');
	size_t i;

	if (domain[0] == '[')
		return true;		/* an address literal */
	if (dot == NULL || dot == domain || dot[1] == '\0')
		return false;
	for (i = 0; i < sizeof(local) / sizeof(local[0]); i++)
		if (strcasecmp(dot + 1, local[i]) == 0)
			return false;
	return true;
}

/* Defaults that depend on other keys, filled once everything is read. */
static void
finish(struct config *cfg)
{
	if (cfg->hostname == NULL)
		cfg->hostname = system_hostname();
	if (cfg->default_domain == NULL)
		cfg->default_domain = xstrdup(cfg->hostname);
	if (!fully_qualified(cfg->default_domain))
		add_error(&cfg->warnings, "default_domain: \"%s\" is not a "
		    "fully qualified domain name: mail from bare local names "
		    "(root, cron) goes out as NAME@%s, which smart hosts "
		    "refuse; set default_domain, hostname or /etc/mailname",
		    cfg->default_domain, cfg->default_domain);
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
	config_load_aliases_file(&L);
	config_check_file_alias_loops(&L);
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

int
config_load_report(const char *path, bool must_exist, struct config **out)
{
	struct config_errors errs;
	size_t i;

	if (config_load(path, must_exist, out, &errs) == 0)
		return 0;
	for (i = 0; i < errs.count; i++)
		fprintf(stderr, "%s\n", errs.lines[i]);
	config_errors_free(&errs);
	return -1;
}

int
config_check_report(const char *path, bool must_exist)
{
	struct config *cfg;
	size_t i;

	if (config_load_report(path, must_exist, &cfg) == -1)
		return 1;
	for (i = 0; i < cfg->warnings.count; i++)
		fprintf(stderr, "warning: %s\n", cfg->warnings.lines[i]);
	printf("ok\n");
	config_unref(cfg);
	return 0;
}
