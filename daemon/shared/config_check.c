/*
 * config_check.c: value validators, shared by the file (config_file.c) and
 * the environment (config_env.c), so that both accept the same values and
 * say the same about the others.  Each returns NULL when 'value' is fine,
 * else a phrase describing the problem, which the caller puts after the
 * key or the variable it came from.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/err.h"
#include "common/units.h"
#include "config.h"
#include "config_int.h"
#include "log.h"
#include "net/proxyurl.h"

/* RFC 5321 4.5.3.1.3: a path is at most 256 octets with its "<>". */
#define MAILBOX_MAX		254

/* Room left under PATH_MAX for the names the spool makes below it. */
#define SPOOL_NAME_ROOM		64

/*
 * A rate's bounds: a count beyond any upstream's real limit is a typo,
 * and a period under a second is not a pace (parse_rate()'s messages
 * spell both out).
 */
#define RATE_COUNT_MAX		1000000
#define RATE_PERIOD_MIN_MS	1000

const char *
check_domain(const char *value)
{
	if (!pst_hostname_valid(value))
		return "is not a valid domain name (letters, digits, '-' and "
		    "'.' only)";
	return NULL;
}

/*
 * A mailbox for aliases: "local@domain" with a dot-atom or quoted local
 * part is more than an alias needs; we accept printable non-space bytes
 * without the specials that would break an SMTP path, one '@', and a
 * valid domain or address literal.  UTF-8 is allowed (RFC 6531).
 */
const char *
check_mailbox(const char *value)
{
	const char *at = strrchr(value, '@'), *p;
	char domain[256];

	if (*value == '\0')
		return "is empty";
	if (strlen(value) > MAILBOX_MAX)
		return "is too long for an address";
	for (p = value; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= ' ' || c == 0x7f || strchr("<>()[],;:\\\"", c) != NULL)
			if (!(c == '[' || c == ']' || c == ':') || at == NULL ||
			    p < at)
				return "contains a character not allowed in "
				    "an address";
	}
	if (at == NULL)
		return NULL;	/* a local name, resolved again */
	if (at == value)
		return "has an empty local part";
	if (strchr(value, '@') != at)
		return "has more than one '@'";
	if (strlen(at + 1) >= sizeof(domain))
		return "has a domain that is too long";
	strcpy(domain, at + 1);
	if (domain[0] == '[')
		return domain[strlen(domain) - 1] == ']' ? NULL :
		    "has a bad address literal";
	if (!pst_hostname_valid(domain))
		return "has an invalid domain";
	return NULL;
}

char *
absolute_path(const char *path)
{
	char cwd[PATH_MAX], *out;

	if (path[0] == '/')
		return xstrdup(path);
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return xstrdup(path);
	if (asprintf(&out, "%s/%s", cwd, path) == -1)
		fatalx("event=oom what=config");
	return out;
}

const char *
set_spool_dir(struct config *cfg, const char *value)
{
	if (*value == '\0')
		return "must not be empty";
	if (strlen(value) >= PATH_MAX - SPOOL_NAME_ROOM)
		return "is too long";
	free(cfg->spool_dir);
	cfg->spool_dir = absolute_path(value);
	return NULL;
}

/* Parses one listen entry, 'why' and 'extra' describe a failure. */
const char *
parse_listen(const char *value, struct pst_endpoint *ep)
{
	struct sockaddr_storage ss;
	socklen_t len;
	const char *why;

	if (pst_endpoint_parse(value, CONFIG_PORT_SMTP, true, ep, &why) == -1)
		return why;
	if (pst_endpoint_sockaddr(ep, &ss, &len, &why) == -1)
		return "must be an IP address, \"localhost\" or unix:/path "
		    "(no name lookups)";
	return NULL;
}

/*
 * Parses one proxy URL into the upstream's list and checks that a dial
 * plan takes it.  Returns NULL, or a phrase saying what is wrong.
 */
const char *
add_proxy(struct config_upstream *u, const char *url)
{
	struct pst_dial_plan plan;
	struct pst_hop hop, *hops;
	struct pst_err err;
	const char *why;
	static char text[PST_ERR_TEXT_MAX];

	if (pst_proxy_url_parse(url, &hop, &why) == -1)
		return why;
	if (hop.kind == PST_HOP_SOCKS4 && hop.password[0] != '\0') {
		OPENSSL_cleanse(&hop, sizeof(hop));
		return "SOCKS4 has no password (only a user id)";
	}
	/* Any target will do: only the hop is being checked. */
	if (pst_dial_plan_init(&plan, "localhost", CONFIG_PORT_SMTP, &err) ==
	    0 && pst_dial_plan_add_hop(&plan, &hop, &err) == -1) {
		OPENSSL_cleanse(&hop, sizeof(hop));
		pst_dial_plan_clear(&plan);
		snprintf(text, sizeof(text), "%s", err.text);
		return text;
	}
	pst_dial_plan_clear(&plan);
	hops = realloc(u->proxies, (u->nproxies + 1) * sizeof(*hops));
	if (hops == NULL)
		fatalx("event=oom what=config");
	u->proxies = hops;
	u->proxies[u->nproxies++] = hop;
	OPENSSL_cleanse(&hop, sizeof(hop));
	return NULL;
}

/* "600/h", "10/m", "5/s", "1000/d", or "20/30s": count per duration. */
const char *
parse_rate(const char *v, unsigned *count, uint64_t *per_ms)
{
	const char *slash = strchr(v, '/'), *why;
	char *end, unit[32];
	unsigned long n;

	if (slash == NULL)
		return "expected COUNT/PERIOD, as in \"600/h\"";
	errno = 0;
	n = strtoul(v, &end, 10);
	if (end != slash || end == v || errno != 0 || n == 0 ||
	    n > RATE_COUNT_MAX)
		return "the count must be a number from 1 to 1000000";
	slash++;
	if (strlen(slash) >= sizeof(unit) - 1)
		return "bad period";
	/* "h" alone means one hour. */
	if (*slash >= 'a' && *slash <= 'z')
		snprintf(unit, sizeof(unit), "1%s", slash);
	else
		snprintf(unit, sizeof(unit), "%s", slash);
	if (pst_duration_parse(unit, per_ms, &why) == -1)
		return why;
	if (*per_ms < RATE_PERIOD_MIN_MS)
		return "the period must be at least 1s";
	*count = (unsigned)n;
	return NULL;
}
