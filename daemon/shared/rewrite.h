/*
 * rewrite.h: local names to addresses, through `aliases` and
 * `default_domain`.
 *
 * A bare local name ("root", "www-data") is looked up in the aliases
 * (case-insensitive); an alias's targets are addresses or further local
 * names, expanded the same way (config_file.c refuses loops).
 * A name no alias knows becomes name@default_domain.  An address at
 * "localhost" or at this host's name (the configured hostname) is a
 * local name as well: its aliases apply, and one no alias knows at
 * "localhost" gets the default domain.  Any other address with a domain
 * is left as it is.
 */
#ifndef POSTERN_REWRITE_H
#define POSTERN_REWRITE_H

#include <stddef.h>

struct config;

struct rewrite_list {
	char	**addrs;
	size_t	  count;
};

/*
 * rewrite_recipient()
 * Appends the address(es) 'name' stands for to 'out' (duplicates are
 * dropped).  Returns 0, or -1 when memory is short.
 */
int	rewrite_recipient(const struct config *cfg, const char *name,
	    struct rewrite_list *out);

/*
 * rewrite_sender()
 * The address a bare sender name stands for: name@default_domain (aliases
 * do not apply to senders).  Returns a new string, NULL when memory is
 * short.
 */
char	*rewrite_sender(const struct config *cfg, const char *name);

void	rewrite_list_free(struct rewrite_list *list);

#endif /* POSTERN_REWRITE_H */
