/*
 * config_load.h: where a struct config comes from.
 */
#ifndef POSTERN_CONFIG_LOAD_H
#define POSTERN_CONFIG_LOAD_H

#include <stdbool.h>

#include "config.h"

/*
 * config_default_path()
 * $POSTERN_CONFIG if set, else the compiled-in /etc/postern/postern.conf.
 */
const char	*config_default_path(void);

/*
 * config_load()
 * Loads 'path'.  When 'must_exist' is false and the file does not exist,
 * the defaults and the environment alone make the configuration (the
 * container case); otherwise a missing file is an error.
 * Returns 0 and a config with one reference in '*out', or -1 with every
 * problem in 'errs' (which the caller frees with config_errors_free()).
 */
int		 config_load(const char *path, bool must_exist,
		    struct config **out, struct config_errors *errs);

/*
 * config_load_report()
 * config_load() for a tool: on failure prints every error on stderr, one
 * a line, and returns -1.
 */
int		 config_load_report(const char *path, bool must_exist,
		    struct config **out);

/*
 * config_check_report()
 * "postern check-config" and "posternd --check-config": prints "ok" on
 * stdout when 'path' loads, or every error on stderr, one a line.
 * Returns the exit status: 0 when valid, else 1.
 */
int		 config_check_report(const char *path, bool must_exist);

#endif /* POSTERN_CONFIG_LOAD_H */
