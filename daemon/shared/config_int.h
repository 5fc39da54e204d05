/*
 * config_int.h: what the files of the configuration loader share
 * (config.c, config_load.c, config_file.c, config_env.c,
 * config_check.c).  Nothing else includes it: the programs see config.h
 * and config_load.h only.
 */
#ifndef POSTERN_CONFIG_INT_H
#define POSTERN_CONFIG_INT_H

#include <stdint.h>

#include "config.h"
#include "net/sockaddr.h"

/* The longest key path an error names ("upstreams.[0].tls.versions"). */
#define KEY_PATH_MAX	256

/* One load: the config being filled and the errors found so far. */
struct loader {
	struct config		*cfg;
	struct config_errors	*errs;
	int			*err_lines;	/* sort key of each error */
	size_t			 nlines;
	const char		*file;		/* the top-level file */
};

/*
 * config.c: the error list (each error then gets its sort key with
 * note_line()), allocation that ends the program when memory runs out,
 * and the upstreams' storage.
 */
void		 add_error(struct config_errors *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
void		 note_line(struct loader *, int);
char		*xstrdup(const char *);
void		*xcalloc(size_t, size_t);
void		*xrealloc(void *, size_t);
char		*up_strdup(struct config_upstream *, const char *);
void		 upstream_defaults(struct config_upstream *);
void		 upstreams_free(struct config *);

/* config_file.c: reads 'path' into L->cfg; its errors into L->errs. */
void		 config_load_file(struct loader *L, const char *path);

/* config_env.c: applies the POSTERN_* variables to L->cfg. */
void		 load_env(struct loader *L);

/*
 * config_aliases.c: the system's alias file (aliases_file) into the
 * alias table; config_file.c: the table's loops, found for every alias
 * read from a file (with its file:line).
 */
void		 config_load_aliases_file(struct loader *L);
void		 config_check_file_alias_loops(struct loader *L);

/*
 * config_check.c: each returns NULL, or a phrase saying what is wrong
 * with the value.
 */
const char	*check_domain(const char *value);
const char	*check_mailbox(const char *value);
const char	*set_spool_dir(struct config *cfg, const char *value);
const char	*parse_listen(const char *value, struct pst_endpoint *ep);
const char	*add_proxy(struct config_upstream *u, const char *url);
const char	*parse_rate(const char *v, unsigned *count, uint64_t *per_ms);
char		*absolute_path(const char *path);

#endif /* POSTERN_CONFIG_INT_H */
