/*
 * rewrite.c: alias expansion and default domain.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "rewrite.h"

/* config_file.c refuses deeper chains; this only keeps the recursion finite. */
#define REWRITE_DEPTH_MAX	16

static int
list_add(struct rewrite_list *out, char *addr)
{
	char **addrs;
	size_t i;

	for (i = 0; i < out->count; i++) {
		if (strcasecmp(out->addrs[i], addr) == 0) {
			free(addr);
			return 0;
		}
	}
	addrs = realloc(out->addrs, (out->count + 1) * sizeof(*addrs));
	if (addrs == NULL) {
		free(addr);
		return -1;
	}
	out->addrs = addrs;
	out->addrs[out->count++] = addr;
	return 0;
}

static int	expand(const struct config *, const char *, unsigned,
		    struct rewrite_list *);

/*
 * An address at "localhost" or at this host's own name is a local name
 * too (as nullmailer and Postfix see it): its aliases apply; one no alias
 * knows at "localhost", which no smart host takes, gets the default
 * domain, one at the host's name stays as it is.
 */
static int
expand_local_domain(const struct config *cfg, const char *name,
    const char *at, unsigned depth, struct rewrite_list *out)
{
	bool localhost = strcasecmp(at + 1, "localhost") == 0;
	char *local, *addr;
	int rc;

	if (at == name || (!localhost && (cfg->hostname == NULL ||
	    strcasecmp(at + 1, cfg->hostname) != 0)))
		return (addr = strdup(name)) == NULL ? -1 : list_add(out, addr);
	if ((local = strndup(name, (size_t)(at - name))) == NULL)
		return -1;
	if (localhost || (depth < REWRITE_DEPTH_MAX &&
	    config_alias_find(cfg, local) != NULL))
		rc = expand(cfg, local, depth, out);
	else
		rc = (addr = strdup(name)) == NULL ? -1 : list_add(out, addr);
	free(local);
	return rc;
}

static int
expand(const struct config *cfg, const char *name, unsigned depth,
    struct rewrite_list *out)
{
	const struct config_alias *a;
	const char *at;
	char *addr;
	size_t i;

	if ((at = strrchr(name, '@')) != NULL)
		return expand_local_domain(cfg, name, at, depth, out);
	a = depth < REWRITE_DEPTH_MAX ? config_alias_find(cfg, name) : NULL;
	if (a == NULL) {
		if (asprintf(&addr, "%s@%s", name, cfg->default_domain) == -1)
			return -1;
		return list_add(out, addr);
	}
	for (i = 0; i < a->ntargets; i++)
		if (expand(cfg, a->targets[i], depth + 1, out) == -1)
			return -1;
	return 0;
}

int
rewrite_recipient(const struct config *cfg, const char *name,
    struct rewrite_list *out)
{
	return expand(cfg, name, 0, out);
}

char *
rewrite_sender(const struct config *cfg, const char *name)
{
	char *addr;

	if (strchr(name, '@') != NULL || *name == '\0')
		return strdup(name);
	if (asprintf(&addr, "%s@%s", name, cfg->default_domain) == -1)
		return NULL;
	return addr;
}

void
rewrite_list_free(struct rewrite_list *list)
{
	size_t i;

	for (i = 0; i < list->count; i++)
		free(list->addrs[i]);
	free(list->addrs);
	list->addrs = NULL;
	list->count = 0;
}
