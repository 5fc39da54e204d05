/*
 * config_file.c: libconfig file -> struct config.
 *
 * The loader walks the file section by section.  Each section first checks
 * that it holds only keys it knows (unknown ones get a "did you mean"
 * hint), then reads each key through a typed getter that reports wrong
 * types and out-of-range values with the file, the line and the key path.
 * Problems are collected, never fatal on their own: one run shows them all.
 * The environment is applied last (config_env.c), through the same
 * validators (config_check.c).
 *
 * libconfig is used only here; the rest of the program sees plain structs.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "client/negotiate.h"
#include "common/err.h"
#include "common/units.h"
#include "config.h"
#include "config_int.h"
#include "log.h"
#include "net/proxyurl.h"
#include "sasl/sasl.h"
#include "tls/ctx.h"

#define ALIAS_DEPTH_MAX	10

/*
 * "Did you mean": names this long get no hint (the distance's row is on
 * the stack), and a hint is at most this many edits away (fewer for a
 * short name: see closest()).
 */
#define HINT_NAME_MAX		64
#define HINT_DISTANCE_MAX	3

/*
 * Bounds of numeric keys.  The least ones are what RFC 5321 requires or
 * what still works (a second for anything counted in seconds); the
 * greatest are far above any real use, so that a misplaced unit or an
 * extra digit is an error now rather than a surprise later.
 */
#define SECOND_MS		1000
#define MESSAGE_SIZE_MIN	65536		/* RFC 5321 4.5.3.1.7 */
#define MESSAGE_SIZE_MAX	((uint64_t)1 << 32)
#define RECIPIENTS_MIN		100		/* RFC 5321 4.5.3.1.8 */
#define SESSIONS_MAX		10000
#define IDLE_MAX_MS		(60 * 60 * 1000)
#define DATA_RATE_MAX		((uint64_t)1 << 30)	/* bytes/s */
#define PERCENT_MAX		100
#define COUNT_MAX		100000	/* recipients, commands, messages */
#define QUEUE_COUNT_MAX		1000	/* connections, failures */
#define RETRY_MAX_MS		(7 * 24 * 3600 * 1000ull)
#define MAX_AGE_MAX_MS		(365ull * 24 * 3600 * 1000)
#define BACKOFF_MAX_MS		(24ull * 3600 * 1000)

static const char *const top_keys[] = {
	"hostname", "spool_dir", "listen", "allow", "log", "limits",
	"aliases", "aliases_file", "default_domain", "upstreams", "queue",
	"metrics_listen", NULL
};
static const char *const queue_keys[] = {
	"retry", "max_age", "concurrency", "messages_per_connection",
	"breaker_failures", "breaker_backoff", NULL
};
static const char *const upstream_keys[] = {
	"name", "host", "port", "security", "bind", "bind6", "timeouts",
	"tls", "auth", "rate", "proxy", NULL
};
static const char *const timeout_keys[] = {
	"connect", "proxy", "greeting", "tls", "command", "data", "dot",
	"total", NULL
};
static const char *const tls_keys[] = {
	"versions", "policy", "verify", "ca_file", "ca_path", "server_name",
	"fingerprint", "cert", "key", "ciphers", "ciphersuites", NULL
};
static const char *const auth_keys[] = {
	"user", "password", "password_file", "password_command",
	"credential", "mechanisms", "allow_plaintext", NULL
};
static const char *const log_keys[] = { "level", NULL };
static const char *const limits_keys[] = {
	"message_size", "recipients", "sessions", "idle", "min_data_rate",
	"junk_commands", "stress_threshold", "stress_idle",
	"stress_junk_commands", NULL
};

static void	 lerr(struct loader *, const config_setting_t *, const char *,
		    const char *, ...) __attribute__((format(printf, 4, 5)));

/* "file:line: key.path: message", for the setting 's'. */
static void
lerr(struct loader *L, const config_setting_t *s, const char *path,
    const char *fmt, ...)
{
	const char *file = NULL;
	char msg[1024];
	va_list ap;
	int line = 0;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s != NULL) {
		file = config_setting_source_file(s);
		line = (int)config_setting_source_line(s);
	}
	if (file == NULL)
		file = L->file;
	if (line > 0)
		add_error(L->errs, "%s:%d: %s: %s", file, line, path, msg);
	else
		add_error(L->errs, "%s: %s: %s", file, path, msg);
	note_line(L, line > 0 ? line : INT_MAX - 1);
}

static const char *
join(char *buf, const char *prefix, const char *name)
{
	if (prefix == NULL || *prefix == '\0')
		snprintf(buf, KEY_PATH_MAX, "%s", name);
	else
		snprintf(buf, KEY_PATH_MAX, "%s.%s", prefix, name);
	return buf;
}

static const char *
type_name(int type)
{
	switch (type) {
	case CONFIG_TYPE_GROUP:
		return "a group { ... }";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a floating-point number";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array [ ... ]";
	case CONFIG_TYPE_LIST:
		return "a list ( ... )";
	}
	return "of unknown type";
}

static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t row[HINT_NAME_MAX], prev, tmp;

	if (la >= HINT_NAME_MAX || lb >= HINT_NAME_MAX)
		return SIZE_MAX;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			tmp = row[j];
			row[j] = prev + (tolower((unsigned char)a[i - 1]) !=
			    tolower((unsigned char)b[j - 1]));
			if (row[j - 1] + 1 < row[j])
				row[j] = row[j - 1] + 1;
			if (tmp + 1 < row[j])
				row[j] = tmp + 1;
			prev = tmp;
		}
	}
	return row[lb];
}

static const char *
closest(const char *name, const char *const known[])
{
	const char *best = NULL;
	size_t d, best_d = SIZE_MAX, limit;

	limit = strlen(name) / 3 + 1;
	if (limit > HINT_DISTANCE_MAX)
		limit = HINT_DISTANCE_MAX;
	for (; *known != NULL; known++) {
		d = edit_distance(name, *known);
		if (d < best_d) {
			best_d = d;
			best = *known;
		}
	}
	return best_d <= limit ? best : NULL;
}

static void
check_keys(struct loader *L, const config_setting_t *group,
    const char *prefix, const char *const known[])
{
	char path[KEY_PATH_MAX];
	const config_setting_t *s;
	const char *name, *hint;
	int i, j, found;

	for (i = 0; (s = config_setting_get_elem(group, (unsigned)i)) != NULL;
	    i++) {
		name = config_setting_name(s);
		found = 0;
		for (j = 0; known[j] != NULL; j++)
			if (strcmp(name, known[j]) == 0)
				found = 1;
		if (found)
			continue;
		join(path, prefix, name);
		if ((hint = closest(name, known)) != NULL)
			lerr(L, s, path, "unknown key (did you mean \"%s\"?)",
			    hint);
		else
			lerr(L, s, path, "unknown key");
	}
}

/*
 * Typed getters.  Each returns 1 when the key is present and valid (and
 * stores the value), 0 when it is absent, -1 after reporting an error.
 */

static int
get_group(struct loader *L, const config_setting_t *parent,
    const char *prefix, const char *name, const config_setting_t **out)
{
	char path[KEY_PATH_MAX];
	const config_setting_t *s;

	if ((s = config_setting_get_member(parent, name)) == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
		lerr(L, s, join(path, prefix, name), "must be a group "
		    "{ ... }, not %s", type_name(config_setting_type(s)));
		return -1;
	}
	*out = s;
	return 1;
}

static int
get_string(struct loader *L, const config_setting_t *parent,
    const char *prefix, const char *name, const char **out)
{
	char path[KEY_PATH_MAX];
	const config_setting_t *s;

	if ((s = config_setting_get_member(parent, name)) == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		lerr(L, s, join(path, prefix, name), "must be a string, not "
		    "%s", type_name(config_setting_type(s)));
		return -1;
	}
	*out = config_setting_get_string(s);
	return 1;
}

static int
get_uint(struct loader *L, const config_setting_t *parent, const char *prefix,
    const char *name, unsigned min, unsigned max, unsigned *out)
{
	char path[KEY_PATH_MAX];
	const config_setting_t *s;
	long long v;
	int t;

	if ((s = config_setting_get_member(parent, name)) == NULL)
		return 0;
	join(path, prefix, name);
	t = config_setting_type(s);
	if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
		lerr(L, s, path, "must be an integer, not %s", type_name(t));
		return -1;
	}
	v = config_setting_get_int64(s);
	if (v < (long long)min || v > (long long)max) {
		lerr(L, s, path, "%lld is out of range (%u to %u)", v, min,
		    max);
		return -1;
	}
	*out = (unsigned)v;
	return 1;
}

static int
get_bool(struct loader *L, const config_setting_t *parent, const char *prefix,
    const char *name, bool *out)
{
	char path[KEY_PATH_MAX];
	const config_setting_t *s;

	if ((s = config_setting_get_member(parent, name)) == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		lerr(L, s, join(path, prefix, name), "must be true or false, "
		    "not %s", type_name(config_setting_type(s)));
		return -1;
	}
	*out = config_setting_get_bool(s) != 0;
	return 1;
}

static int
get_duration(struct loader *L, const config_setting_t *parent,
    const char *prefix, const char *name, uint64_t min_ms, uint64_t max_ms,
    uint64_t *out)
{
	char path[KEY_PATH_MAX], a[32], b[32], c[32];
	const config_setting_t *s;
	const char *why;
	uint64_t ms;
	long long v;
	int t;

	if ((s = config_setting_get_member(parent, name)) == NULL)
		return 0;
	join(path, prefix, name);
	t = config_setting_type(s);
	if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
		v = config_setting_get_int64(s);
		if (v < 0 || (uint64_t)v > PST_DURATION_MAX_MS / 1000) {
			lerr(L, s, path, "%lld is not a duration", v);
			return -1;
		}
		ms = (uint64_t)v * 1000;
	} else if (t == CONFIG_TYPE_STRING) {
		if (pst_duration_parse(config_setting_get_string(s), &ms,
		    &why) == -1) {
			lerr(L, s, path, "\"%s\" is not a duration (%s)",
			    config_setting_get_string(s), why);
			return -1;
		}
	} else {
		lerr(L, s, path, "must be a duration such as \"30s\", not %s",
		    type_name(t));
		return -1;
	}
	if (ms < min_ms || ms > max_ms) {
		lerr(L, s, path, "%s is out of range (%s to %s)",
		    pst_duration_format(ms, a, sizeof(a)),
		    pst_duration_format(min_ms, b, sizeof(b)),
		    pst_duration_format(max_ms, c, sizeof(c)));
		return -1;
	}
	*out = ms;
	return 1;
}

static int
get_size(struct loader *L, const config_setting_t *parent, const char *prefix,
    const char *name, uint64_t min, uint64_t max, uint64_t *out)
{
	char path[KEY_PATH_MAX];
	const config_setting_t *s;
	const char *why;
	uint64_t n;
	long long v;
	int t;

	if ((s = config_setting_get_member(parent, name)) == NULL)
		return 0;
	join(path, prefix, name);
	t = config_setting_type(s);
	if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
		v = config_setting_get_int64(s);
		if (v < 0) {
			lerr(L, s, path, "%lld is not a size", v);
			return -1;
		}
		n = (uint64_t)v;
	} else if (t == CONFIG_TYPE_STRING) {
		if (pst_size_parse(config_setting_get_string(s), &n, &why) ==
		    -1) {
			lerr(L, s, path, "\"%s\" is not a size (%s)",
			    config_setting_get_string(s), why);
			return -1;
		}
	} else {
		lerr(L, s, path, "must be a size in bytes (or \"50M\"), not "
		    "%s", type_name(t));
		return -1;
	}
	if (n < min || n > max) {
		lerr(L, s, path, "%llu bytes is out of range (%llu to %llu)",
		    (unsigned long long)n, (unsigned long long)min,
		    (unsigned long long)max);
		return -1;
	}
	*out = n;
	return 1;
}

/*
 * A list of strings: a list ( ... ) or array [ ... ] of strings, or one
 * string standing for a list of one.  '*elems' receives the settings, so
 * that each element's own line can be reported.
 */
static int
get_string_list(struct loader *L, const config_setting_t *parent,
    const char *prefix, const char *name, const config_setting_t ***elems,
    size_t *count)
{
	char path[KEY_PATH_MAX], epath[KEY_PATH_MAX + 32];
	const config_setting_t *s, *e;
	int t, n, i, bad = 0;

	if ((s = config_setting_get_member(parent, name)) == NULL)
		return 0;
	join(path, prefix, name);
	t = config_setting_type(s);
	if (t == CONFIG_TYPE_STRING) {
		*elems = xcalloc(1, sizeof(**elems));
		(*elems)[0] = s;
		*count = 1;
		return 1;
	}
	if (t != CONFIG_TYPE_LIST && t != CONFIG_TYPE_ARRAY) {
		lerr(L, s, path, "must be a list of strings ( \"...\", ... ), "
		    "not %s", type_name(t));
		return -1;
	}
	n = config_setting_length(s);
	*elems = xcalloc((size_t)n, sizeof(**elems));
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(s, (unsigned)i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			snprintf(epath, sizeof(epath), "%s.[%d]", path, i);
			lerr(L, e, epath, "must be a string, not %s",
			    type_name(config_setting_type(e)));
			bad = 1;
		}
		(*elems)[i] = e;
	}
	*count = (size_t)n;
	if (bad) {
		free(*elems);
		*elems = NULL;
		return -1;
	}
	return 1;
}

/*
 * Sections.
 */

static void
load_listen(struct loader *L, const config_setting_t *root)
{
	const config_setting_t **elems = NULL;
	char path[KEY_PATH_MAX];
	struct pst_endpoint *eps;
	const char *why;
	size_t n, i, j;
	char a[300], b[300];

	if (get_string_list(L, root, "", "listen", &elems, &n) != 1)
		return;
	eps = xcalloc(n, sizeof(*eps));
	for (i = 0; i < n; i++) {
		const char *v = config_setting_get_string(elems[i]);

		snprintf(path, sizeof(path), "listen.[%zu]", i);
		if ((why = parse_listen(v, &eps[i])) != NULL) {
			lerr(L, elems[i], path, "\"%s\" is not a listen "
			    "address: %s", v, why);
			continue;
		}
		for (j = 0; j < i; j++)
			if (strcmp(pst_endpoint_format(&eps[i], a, sizeof(a)),
			    pst_endpoint_format(&eps[j], b, sizeof(b))) == 0)
				lerr(L, elems[i], path, "\"%s\" is listed "
				    "twice", v);
	}
	if (n == 0)
		lerr(L, config_setting_get_member(root, "listen"), "listen",
		    "must name at least one address");
	free(L->cfg->listen);
	L->cfg->listen = eps;
	L->cfg->nlisten = n;
	free(elems);
}

static void
load_allow(struct loader *L, const config_setting_t *root)
{
	const config_setting_t **elems = NULL;
	char path[KEY_PATH_MAX];
	struct pst_cidr *nets;
	const char *why;
	size_t n, i;

	if (get_string_list(L, root, "", "allow", &elems, &n) != 1)
		return;
	nets = xcalloc(n, sizeof(*nets));
	for (i = 0; i < n; i++) {
		const char *v = config_setting_get_string(elems[i]);

		snprintf(path, sizeof(path), "allow.[%zu]", i);
		if (pst_cidr_parse(v, &nets[i], &why) == -1)
			lerr(L, elems[i], path, "\"%s\" is not a network: %s",
			    v, why);
	}
	free(L->cfg->allow);
	L->cfg->allow = nets;
	L->cfg->nallow = n;
	free(elems);
}

static void
load_log(struct loader *L, const config_setting_t *root)
{
	const config_setting_t *g, *s;
	const char *v;
	int level;

	if (get_group(L, root, "", "log", &g) != 1)
		return;
	check_keys(L, g, "log", log_keys);
	if (get_string(L, g, "log", "level", &v) == 1) {
		if ((level = log_level_parse(v)) == -1) {
			s = config_setting_get_member(g, "level");
			lerr(L, s, "log.level", "\"%s\" is not a level (error, "
			    "warn, info or debug)", v);
		} else
			L->cfg->log_level = level;
	}
}

static void
load_limits(struct loader *L, const config_setting_t *root)
{
	struct config_limits *lim = &L->cfg->limits;
	const config_setting_t *g;

	if (get_group(L, root, "", "limits", &g) != 1)
		return;
	check_keys(L, g, "limits", limits_keys);
	/* RFC 5321 4.5.3.1.7: at least 64K must be accepted. */
	get_size(L, g, "limits", "message_size", MESSAGE_SIZE_MIN,
	    MESSAGE_SIZE_MAX, &lim->message_size);
	/* RFC 5321 4.5.3.1.8: at least 100 recipients must be buffered. */
	get_uint(L, g, "limits", "recipients", RECIPIENTS_MIN, COUNT_MAX,
	    &lim->recipients);
	get_uint(L, g, "limits", "sessions", 1, SESSIONS_MAX,
	    &lim->sessions);
	get_duration(L, g, "limits", "idle", SECOND_MS, IDLE_MAX_MS,
	    &lim->idle_ms);
	get_size(L, g, "limits", "min_data_rate", 1, DATA_RATE_MAX,
	    &lim->min_data_rate);
	get_uint(L, g, "limits", "junk_commands", 1, COUNT_MAX,
	    &lim->junk_commands);
	get_uint(L, g, "limits", "stress_threshold", 1, PERCENT_MAX,
	    &lim->stress_threshold);
	/* Never longer than idle, nor more than junk_commands: server.c. */
	get_duration(L, g, "limits", "stress_idle", SECOND_MS, IDLE_MAX_MS,
	    &lim->stress_idle_ms);
	get_uint(L, g, "limits", "stress_junk_commands", 1, COUNT_MAX,
	    &lim->stress_junk_commands);
}

static void
load_aliases(struct loader *L, const config_setting_t *root)
{
	const config_setting_t **elems, *g, *s;
	char path[KEY_PATH_MAX], epath[KEY_PATH_MAX + 32];
	struct config_alias *a;
	const char *why, *name;
	size_t i, j, n;
	int count;

	if (get_group(L, root, "", "aliases", &g) != 1)
		return;
	count = config_setting_length(g);
	L->cfg->aliases = xcalloc((size_t)count, sizeof(*L->cfg->aliases));
	for (i = 0; i < (size_t)count; i++) {
		s = config_setting_get_elem(g, (unsigned)i);
		name = config_setting_name(s);
		join(path, "aliases", name);
		if (get_string_list(L, g, "aliases", name, &elems, &n) != 1)
			continue;
		if (n == 0) {
			lerr(L, s, path, "must name at least one address");
			free(elems);
			continue;
		}
		a = &L->cfg->aliases[L->cfg->naliases++];
		a->name = xstrdup(name);
		for (j = 0; a->name[j] != '\0'; j++)
			a->name[j] = (char)tolower((unsigned char)a->name[j]);
		a->targets = xcalloc(n, sizeof(*a->targets));
		for (j = 0; j < n; j++) {
			const char *v = config_setting_get_string(elems[j]);

			snprintf(epath, sizeof(epath), "%s.[%zu]", path, j);
			if ((why = check_mailbox(v)) != NULL)
				lerr(L, elems[j], n > 1 ? epath : path,
				    "\"%s\" %s", v, why);
			a->targets[a->ntargets++] = xstrdup(v);
		}
		free(elems);
	}
}

/*
 * Follows bare local names through the alias table; a chain that comes
 * back to where it started, or runs deeper than ALIAS_DEPTH_MAX, is an
 * error found now rather than when mail arrives.
 */
static int
alias_walk(const struct config *cfg, const struct config_alias *a,
    const struct config_alias **chain, unsigned depth)
{
	const struct config_alias *next;
	unsigned i;
	size_t j;

	for (i = 0; i < depth; i++)
		if (chain[i] == a)
			return -1;
	if (depth >= ALIAS_DEPTH_MAX)
		return -1;
	chain[depth] = a;
	for (j = 0; j < a->ntargets; j++) {
		if (strchr(a->targets[j], '@') != NULL)
			continue;
		next = config_alias_find(cfg, a->targets[j]);
		if (next != NULL && alias_walk(cfg, next, chain, depth + 1) ==
		    -1)
			return -1;
	}
	return 0;
}

static void
check_alias_loops(struct loader *L, const config_setting_t *root)
{
	const struct config_alias *chain[ALIAS_DEPTH_MAX];
	const config_setting_t *g, *s;
	char path[KEY_PATH_MAX];
	size_t i;

	g = config_setting_get_member(root, "aliases");
	for (i = 0; i < L->cfg->naliases; i++) {
		if (alias_walk(L->cfg, &L->cfg->aliases[i], chain, 0) == 0)
			continue;
		s = g != NULL ? config_setting_get_member(g,
		    L->cfg->aliases[i].name) : NULL;
		lerr(L, s, join(path, "aliases", L->cfg->aliases[i].name),
		    "aliases loop back to themselves (or nest deeper than "
		    "%d)", ALIAS_DEPTH_MAX);
	}
}

void
config_check_file_alias_loops(struct loader *L)
{
	const struct config_alias *chain[ALIAS_DEPTH_MAX];
	const struct config_alias *a;
	size_t i;

	for (i = 0; i < L->cfg->naliases; i++) {
		a = &L->cfg->aliases[i];
		if (a->file == NULL || alias_walk(L->cfg, a, chain, 0) == 0)
			continue;
		add_error(L->errs, "%s:%d: alias %s: aliases loop back to "
		    "themselves (or nest deeper than %d)", a->file, a->line,
		    a->name, ALIAS_DEPTH_MAX);
		note_line(L, INT_MAX - 1);
	}
}

/*
 * Upstreams.
 */

/*
 * Timeouts: a tenth of a second is the least a timer here means; a day
 * the most for one step, a week for a whole attempt.
 */
#define TIMEOUT_MIN_MS	100
#define TIMEOUT_MAX_MS	(24u * 60 * 60 * 1000)
#define TOTAL_MAX_MS	(7 * TIMEOUT_MAX_MS)

/* A string key stored in the upstream; returns 1 when set. */
static int
up_string(struct loader *L, struct config_upstream *u,
    const config_setting_t *g, const char *prefix, const char *name,
    char **out)
{
	const char *v;
	char path[KEY_PATH_MAX];

	if (get_string(L, g, prefix, name, &v) != 1)
		return 0;
	if (*v == '\0') {
		lerr(L, config_setting_get_member(g, name),
		    join(path, prefix, name), "must not be empty");
		return 0;
	}
	*out = up_strdup(u, v);
	return 1;
}

static void
load_timeouts(struct loader *L, struct config_upstream *u,
    const config_setting_t *ug, const char *prefix)
{
	struct config_timeouts *t = &u->timeouts;
	char path[KEY_PATH_MAX];
	const config_setting_t *g;

	if (get_group(L, ug, prefix, "timeouts", &g) != 1)
		return;
	join(path, prefix, "timeouts");
	check_keys(L, g, path, timeout_keys);
	get_duration(L, g, path, "connect", TIMEOUT_MIN_MS, TIMEOUT_MAX_MS,
	    &t->connect);
	get_duration(L, g, path, "proxy", TIMEOUT_MIN_MS, TIMEOUT_MAX_MS,
	    &t->proxy);
	get_duration(L, g, path, "greeting", TIMEOUT_MIN_MS, TIMEOUT_MAX_MS,
	    &t->greeting);
	get_duration(L, g, path, "tls", TIMEOUT_MIN_MS, TIMEOUT_MAX_MS,
	    &t->tls);
	get_duration(L, g, path, "command", TIMEOUT_MIN_MS, TIMEOUT_MAX_MS,
	    &t->command);
	get_duration(L, g, path, "data", TIMEOUT_MIN_MS, TIMEOUT_MAX_MS,
	    &t->data);
	get_duration(L, g, path, "dot", TIMEOUT_MIN_MS, TIMEOUT_MAX_MS,
	    &t->dot);
	get_duration(L, g, path, "total", SECOND_MS, TOTAL_MAX_MS,
	    &t->total);
}

static void
load_tls(struct loader *L, struct config_upstream *u,
    const config_setting_t *ug, const char *prefix)
{
	const config_setting_t **elems = NULL, *g;
	struct pst_tls_policy *p = &u->tls;
	char path[KEY_PATH_MAX], epath[KEY_PATH_MAX + 32];
	struct pst_tls_pin pin;
	const char *v, *why;
	char *ca_file = NULL, *ca_path = NULL, *name = NULL, *cert = NULL;
	char *key = NULL, *ciphers = NULL, *suites = NULL;
	unsigned bit;
	size_t i, n;

	if (get_group(L, ug, prefix, "tls", &g) != 1)
		return;
	join(path, prefix, "tls");
	check_keys(L, g, path, tls_keys);
	if (get_string_list(L, g, path, "versions", &elems, &n) == 1) {
		p->versions = 0;
		for (i = 0; i < n; i++) {
			v = config_setting_get_string(elems[i]);
			snprintf(epath, sizeof(epath), "%s.versions.[%zu]",
			    path, i);
			if (pst_tls_version_parse(v, &bit, &why) == -1)
				lerr(L, elems[i], epath, "\"%s\": %s", v, why);
			else
				p->versions |= bit;
		}
		if (n == 0)
			lerr(L, config_setting_get_member(g, "versions"),
			    join(epath, path, "versions"), "must name at "
			    "least one version");
		free(elems);
	}
	if (get_string(L, g, path, "policy", &v) == 1) {
		if (strcmp(v, "downgrade") == 0)
			p->vpolicy = PST_TLS_DOWNGRADE;
		else if (strcmp(v, "strict") == 0)
			p->vpolicy = PST_TLS_STRICT;
		else
			lerr(L, config_setting_get_member(g, "policy"),
			    join(epath, path, "policy"), "\"%s\" is not a "
			    "policy (downgrade or strict)", v);
	}
	get_bool(L, g, path, "verify", &p->verify);
	if (up_string(L, u, g, path, "ca_file", &ca_file))
		p->ca_file = ca_file;
	if (up_string(L, u, g, path, "ca_path", &ca_path))
		p->ca_path = ca_path;
	if (up_string(L, u, g, path, "server_name", &name))
		p->server_name = name;
	if (up_string(L, u, g, path, "cert", &cert))
		p->cert = cert;
	if (up_string(L, u, g, path, "key", &key))
		p->key = key;
	if (up_string(L, u, g, path, "ciphers", &ciphers))
		p->ciphers = ciphers;
	if (up_string(L, u, g, path, "ciphersuites", &suites))
		p->ciphersuites = suites;
	if (get_string_list(L, g, path, "fingerprint", &elems, &n) == 1) {
		const char **pins = xcalloc(n, sizeof(*pins));

		for (i = 0; i < n; i++) {
			v = config_setting_get_string(elems[i]);
			if (n > 1)
				snprintf(epath, sizeof(epath),
				    "%s.fingerprint.[%zu]", path, i);
			else
				snprintf(epath, sizeof(epath), "%s.fingerprint",
				    path);
			if (pst_tls_pin_parse(v, &pin, &why) == -1)
				lerr(L, elems[i], epath, "\"%s\" is not a "
				    "fingerprint: %s", v, why);
			pins[i] = up_strdup(u, v);
		}
		if (n > PST_TLS_PINS_MAX)
			lerr(L, config_setting_get_member(g, "fingerprint"),
			    join(epath, path, "fingerprint"), "at most %d "
			    "fingerprints", PST_TLS_PINS_MAX);
		free((void *)p->pins);
		p->pins = pins;
		p->npins = n;
		free(elems);
	}
	if (p->key != NULL && p->cert == NULL)
		lerr(L, config_setting_get_member(g, "key"),
		    join(epath, path, "key"), "a key needs a cert");
}

/* Whether others may read the file holding setting 's'. */
static bool
world_readable(struct loader *L, const config_setting_t *s, mode_t *mode)
{
	const char *file = config_setting_source_file(s);
	struct stat st;

	if (file == NULL)
		file = L->file;
	if (stat(file, &st) == -1)
		return false;
	*mode = st.st_mode & ALLPERMS;
	return (st.st_mode & S_IRWXO) != 0;
}

static const char *const proxy_keys[] = { "url", "user", "password", NULL };

/*
 * upstreams.[i].proxy: a list of URLs, or of groups { url; user;
 * password; } when the credentials are better kept out of the URL.  A
 * password, in a URL or not, makes the file's mode matter as for
 * auth.password.
 */
static void
load_proxies(struct loader *L, struct config_upstream *u,
    const config_setting_t *ug, const char *path)
{
	const config_setting_t *list, *e;
	char epath[KEY_PATH_MAX + 32];
	const char *why, *v, *user, *password;
	struct pst_hop *hop;
	mode_t mode;
	int i, n, t;

	if ((list = config_setting_get_member(ug, "proxy")) == NULL)
		return;
	t = config_setting_type(list);
	if (t == CONFIG_TYPE_STRING)
		n = 1;
	else if (t == CONFIG_TYPE_LIST || t == CONFIG_TYPE_ARRAY)
		n = config_setting_length(list);
	else {
		lerr(L, list, join(epath, path, "proxy"), "must be a list of "
		    "proxy URLs, not %s", type_name(t));
		return;
	}
	for (i = 0; i < n; i++) {
		e = t == CONFIG_TYPE_STRING ? list :
		    config_setting_get_elem(list, (unsigned)i);
		snprintf(epath, sizeof(epath), "%s.proxy.[%d]", path, i);
		user = password = NULL;
		if (config_setting_type(e) == CONFIG_TYPE_GROUP) {
			check_keys(L, e, epath, proxy_keys);
			if (get_string(L, e, epath, "url", &v) != 1) {
				lerr(L, e, epath, "needs a url");
				continue;
			}
			get_string(L, e, epath, "user", &user);
			get_string(L, e, epath, "password", &password);
		} else if (config_setting_type(e) == CONFIG_TYPE_STRING)
			v = config_setting_get_string(e);
		else {
			lerr(L, e, epath, "must be a proxy URL or a group "
			    "{ url; user; password; }, not %s",
			    type_name(config_setting_type(e)));
			continue;
		}
		/* The URL may hold a password: never quote it. */
		if ((why = add_proxy(u, v)) != NULL) {
			lerr(L, e, epath, "not a usable proxy URL: %s", why);
			continue;
		}
		hop = &u->proxies[u->nproxies - 1];
		if ((user != NULL && strlen(user) > PST_PROXY_CRED_MAX) ||
		    (password != NULL && strlen(password) > PST_PROXY_CRED_MAX))
			lerr(L, e, epath, "user or password too long");
		else {
			if (user != NULL)
				snprintf(hop->user, sizeof(hop->user), "%s",
				    user);
			if (password != NULL)
				snprintf(hop->password, sizeof(hop->password),
				    "%s", password);
		}
		if (hop->password[0] != '\0' && hop->kind == PST_HOP_SOCKS4)
			lerr(L, e, epath, "SOCKS4 has no password (only a "
			    "user id)");
		if (hop->password[0] != '\0' && world_readable(L, e, &mode))
			lerr(L, e, epath, "holds a proxy password, and the file "
			    "holding it is readable by others (mode %04o): "
			    "chmod it to 0600 or 0640", (unsigned)mode);
	}
}

static void
load_auth(struct loader *L, struct config_upstream *u,
    const config_setting_t *ug, const char *prefix)
{
	const config_setting_t **elems = NULL, *g, *s;
	struct config_auth *a = &u->auth;
	char path[KEY_PATH_MAX], epath[KEY_PATH_MAX + 32];
	const char **names;
	struct pst_err err;
	struct stat st;
	mode_t mode;
	size_t i, n;
	int sources = 0;

	if (get_group(L, ug, prefix, "auth", &g) != 1)
		return;
	join(path, prefix, "auth");
	check_keys(L, g, path, auth_keys);
	u->has_auth = true;
	if (!up_string(L, u, g, path, "user", &a->user))
		lerr(L, g, path, "needs a user");
	if (up_string(L, u, g, path, "password", &a->password)) {
		sources++;
		s = config_setting_get_member(g, "password");
		if (world_readable(L, s, &mode))
			lerr(L, s, join(epath, path, "password"), "the file "
			    "holding it is readable by others (mode %04o): "
			    "chmod it to 0600 or 0640, or use password_file",
			    (unsigned)mode);
	}
	if (up_string(L, u, g, path, "password_file", &a->password_file)) {
		sources++;
		if (stat(a->password_file, &st) == -1)
			lerr(L, config_setting_get_member(g, "password_file"),
			    join(epath, path, "password_file"), "\"%s\": %s",
			    a->password_file, strerror(errno));
	}
	if (up_string(L, u, g, path, "password_command",
	    &a->password_command))
		sources++;
	if (up_string(L, u, g, path, "credential", &a->credential)) {
		sources++;
		if (strchr(a->credential, '/') != NULL ||
		    strcmp(a->credential, ".") == 0 ||
		    strcmp(a->credential, "..") == 0)
			lerr(L, config_setting_get_member(g, "credential"),
			    join(epath, path, "credential"), "\"%s\" is not "
			    "a credential name", a->credential);
	}
	if (sources != 1)
		lerr(L, g, path, "needs exactly one of password, "
		    "password_file, password_command and credential (%d "
		    "given)", sources);
	if (get_string_list(L, g, path, "mechanisms", &elems, &n) == 1) {
		names = xcalloc(n, sizeof(*names));
		for (i = 0; i < n; i++)
			names[i] = config_setting_get_string(elems[i]);
		s = config_setting_get_member(g, "mechanisms");
		if (pst_sasl_mask_parse(names, n, &a->mechanisms, &err) == -1)
			lerr(L, s, join(epath, path, "mechanisms"), "%s",
			    err.text);
		else if ((a->mechanisms & PST_SASL_XOAUTH2) &&
		    a->mechanisms != PST_SASL_XOAUTH2)
			lerr(L, s, join(epath, path, "mechanisms"), "XOAUTH2 "
			    "takes an access token, the others a password: "
			    "list it alone");
		a->token = a->mechanisms == PST_SASL_XOAUTH2;
		free(names);
		free(elems);
	}
	get_bool(L, g, path, "allow_plaintext", &a->allow_plaintext);
}

/*
 * Checks what needs the whole upstream: the TLS context (files are read
 * now, so that check-config finds unreadable ones), sources.
 */
static void
finish_upstream(struct loader *L, struct config_upstream *u,
    const config_setting_t *ug, const char *path)
{
	struct pst_tls_report report;
	struct pst_dial_plan plan;
	struct pst_err err;
	char p[KEY_PATH_MAX];

	if (u->host == NULL)
		return;
	if (u->port == 0)
		u->port = u->security == PST_SEC_TLS ?
		    CONFIG_PORT_SUBMISSIONS : CONFIG_PORT_SUBMISSION;
	if (pst_dial_plan_init(&plan, u->host, u->port, &err) == -1)
		lerr(L, ug, join(p, path, "host"), "%s", err.text);
	else if (pst_dial_plan_set_bind(&plan, u->bind, u->bind6, &err) == -1)
		lerr(L, ug, join(p, path, "bind"), "%s", err.text);
	if (u->security == PST_SEC_NONE)
		return;
	if ((u->ssl_ctx = pst_tls_ctx_new(&u->tls, &report, &err)) == NULL) {
		lerr(L, config_setting_get_member(ug, "tls") != NULL ?
		    config_setting_get_member(ug, "tls") : ug,
		    join(p, path, "tls"), "%s", err.text);
		return;
	}
	snprintf(u->tls_note, sizeof(u->tls_note), "%s", report.text);
}

static void
load_upstream(struct loader *L, const config_setting_t *ug, size_t index,
    struct config_upstream *u)
{
	char path[KEY_PATH_MAX], p[KEY_PATH_MAX], name[32];
	const char *v, *why;
	unsigned port;
	int mode;

	snprintf(path, sizeof(path), "upstreams.[%zu]", index);
	upstream_defaults(u);
	if (config_setting_type(ug) != CONFIG_TYPE_GROUP) {
		lerr(L, ug, path, "must be a group { ... }, not %s",
		    type_name(config_setting_type(ug)));
		return;
	}
	check_keys(L, ug, path, upstream_keys);
	if (!up_string(L, u, ug, path, "host", &u->host))
		lerr(L, ug, path, "needs a host");
	else if (!pst_hostname_valid(u->host) && !strchr(u->host, ':') &&
	    strspn(u->host, "0123456789.") != strlen(u->host))
		lerr(L, config_setting_get_member(ug, "host"),
		    join(p, path, "host"), "\"%s\" is not a host name or IP "
		    "address", u->host);
	if (up_string(L, u, ug, path, "name", &u->name)) {
		if (strspn(u->name, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
		    strlen(u->name) || u->name[0] == '.')
			lerr(L, config_setting_get_member(ug, "name"),
			    join(p, path, "name"), "\"%s\" may hold only "
			    "letters, digits, '.', '_' and '-' (and not start "
			    "with '.')", u->name);
	} else {
		snprintf(name, sizeof(name), "upstream%zu", index + 1);
		u->name = up_strdup(u, u->host != NULL ? u->host : name);
	}
	if (get_uint(L, ug, path, "port", 1, UINT16_MAX, &port) == 1)
		u->port = (uint16_t)port;
	if (get_string(L, ug, path, "security", &v) == 1) {
		if ((mode = pst_negotiate_mode_parse(v)) == -1)
			lerr(L, config_setting_get_member(ug, "security"),
			    join(p, path, "security"), "\"%s\" is not a mode "
			    "(none, starttls, tls, tls-auto or auto)", v);
		else
			u->security = mode;
	}
	up_string(L, u, ug, path, "bind", &u->bind);
	up_string(L, u, ug, path, "bind6", &u->bind6);
	if (get_string(L, ug, path, "rate", &v) == 1 &&
	    (why = parse_rate(v, &u->rate_count, &u->rate_per_ms)) != NULL)
		lerr(L, config_setting_get_member(ug, "rate"),
		    join(p, path, "rate"), "\"%s\" is not a rate: %s", v, why);
	load_timeouts(L, u, ug, path);
	load_proxies(L, u, ug, path);
	load_tls(L, u, ug, path);
	load_auth(L, u, ug, path);
	finish_upstream(L, u, ug, path);
}

static void
load_upstreams(struct loader *L, const config_setting_t *root)
{
	const config_setting_t *list, *ug;
	char path[KEY_PATH_MAX];
	size_t i, j, n;
	int t;

	if ((list = config_setting_get_member(root, "upstreams")) == NULL)
		return;
	t = config_setting_type(list);
	if (t != CONFIG_TYPE_LIST) {
		lerr(L, list, "upstreams", "must be a list ( { ... }, ... ), "
		    "not %s", type_name(t));
		return;
	}
	n = (size_t)config_setting_length(list);
	L->cfg->upstreams = xcalloc(n, sizeof(*L->cfg->upstreams));
	for (i = 0; i < n; i++) {
		ug = config_setting_get_elem(list, (unsigned)i);
		load_upstream(L, ug, i, &L->cfg->upstreams[i]);
		L->cfg->nupstreams++;
		for (j = 0; j < i; j++) {
			if (L->cfg->upstreams[i].name == NULL ||
			    L->cfg->upstreams[j].name == NULL ||
			    strcmp(L->cfg->upstreams[i].name,
			    L->cfg->upstreams[j].name) != 0)
				continue;
			snprintf(path, sizeof(path), "upstreams.[%zu].name", i);
			lerr(L, ug, path, "\"%s\" is the name of upstreams."
			    "[%zu] too", L->cfg->upstreams[i].name, j);
		}
	}
}

static void
load_queue(struct loader *L, const config_setting_t *root)
{
	const config_setting_t **elems = NULL, *g;
	struct config_queue *q = &L->cfg->queue;
	char epath[KEY_PATH_MAX + 32];
	const char *v, *why;
	uint64_t ms;
	size_t i, n;

	if (get_group(L, root, "", "queue", &g) != 1)
		return;
	check_keys(L, g, "queue", queue_keys);
	if (get_string_list(L, g, "queue", "retry", &elems, &n) == 1) {
		if (n == 0 || n > CONFIG_RETRY_MAX)
			lerr(L, config_setting_get_member(g, "retry"),
			    "queue.retry", "must list 1 to %d delays",
			    CONFIG_RETRY_MAX);
		for (i = 0; i < n && i < CONFIG_RETRY_MAX; i++) {
			v = config_setting_get_string(elems[i]);
			snprintf(epath, sizeof(epath), "queue.retry.[%zu]", i);
			if (pst_duration_parse(v, &ms, &why) == -1)
				lerr(L, elems[i], epath, "\"%s\" is not a "
				    "duration (%s)", v, why);
			else if (ms < SECOND_MS || ms > RETRY_MAX_MS)
				lerr(L, elems[i], epath, "\"%s\" is out of "
				    "range (1s to 7d)", v);
			else
				q->retry[i] = (uint32_t)(ms / 1000);
		}
		if (n > 0 && n <= CONFIG_RETRY_MAX)
			q->nretry = n;
		free(elems);
	}
	get_duration(L, g, "queue", "max_age", SECOND_MS, MAX_AGE_MAX_MS,
	    &q->max_age_ms);
	get_uint(L, g, "queue", "breaker_failures", 1, QUEUE_COUNT_MAX,
	    &q->breaker_failures);
	get_duration(L, g, "queue", "breaker_backoff", SECOND_MS,
	    BACKOFF_MAX_MS, &q->breaker_backoff_ms);
	get_uint(L, g, "queue", "concurrency", 1, QUEUE_COUNT_MAX,
	    &q->concurrency);
	get_uint(L, g, "queue", "messages_per_connection", 1, COUNT_MAX,
	    &q->per_connection);
}

static void
load_root(struct loader *L, const config_setting_t *root)
{
	const config_setting_t *s;
	const char *v, *why;

	check_keys(L, root, "", top_keys);
	if (get_string(L, root, "", "hostname", &v) == 1) {
		s = config_setting_get_member(root, "hostname");
		if ((why = check_domain(v)) != NULL)
			lerr(L, s, "hostname", "\"%s\" %s", v, why);
		else {
			free(L->cfg->hostname);
			L->cfg->hostname = xstrdup(v);
		}
	}
	if (get_string(L, root, "", "spool_dir", &v) == 1) {
		s = config_setting_get_member(root, "spool_dir");
		if ((why = set_spool_dir(L->cfg, v)) != NULL)
			lerr(L, s, "spool_dir", "\"%s\" %s", v, why);
	}
	load_listen(L, root);
	load_allow(L, root);
	load_log(L, root);
	load_limits(L, root);
	load_aliases(L, root);
	if (get_string(L, root, "", "aliases_file", &v) == 1) {
		free(L->cfg->aliases_file);
		L->cfg->aliases_file = xstrdup(v);
	}
	if (get_string(L, root, "", "default_domain", &v) == 1) {
		s = config_setting_get_member(root, "default_domain");
		if ((why = check_domain(v)) != NULL)
			lerr(L, s, "default_domain", "\"%s\" %s", v, why);
		else
			L->cfg->default_domain = xstrdup(v);
	}
	check_alias_loops(L, root);
	load_upstreams(L, root);
	load_queue(L, root);
	if (get_string(L, root, "", "metrics_listen", &v) == 1) {
		s = config_setting_get_member(root, "metrics_listen");
		if ((why = parse_listen(v, &L->cfg->metrics_listen)) != NULL)
			lerr(L, s, "metrics_listen", "\"%s\" is not a listen "
			    "address: %s", v, why);
		else if (L->cfg->metrics_listen.kind != PST_EP_INET)
			lerr(L, s, "metrics_listen", "\"%s\": metrics are "
			    "served over TCP only", v);
		else
			L->cfg->has_metrics = true;
	}
}

void
config_load_file(struct loader *L, const char *path)
{
	char *dir;
	config_t lc;

	config_init(&lc);
	dir = xstrdup(path);
	config_set_include_dir(&lc, dirname(dir));
	if (config_read_file(&lc, path) != CONFIG_TRUE) {
		if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
			add_error(L->errs, "%s: cannot read: %s", path,
			    strerror(errno != 0 ? errno : EIO));
		else
			add_error(L->errs, "%s:%d: syntax error: %s",
			    config_error_file(&lc) != NULL ?
			    config_error_file(&lc) : path,
			    config_error_line(&lc),
			    config_error_text(&lc));
	} else {
		load_root(L, config_root_setting(&lc));
		L->cfg->path = absolute_path(path);
		L->cfg->file_empty = config_setting_length(
		    config_root_setting(&lc)) == 0;
	}
	config_destroy(&lc);
	free(dir);
}
