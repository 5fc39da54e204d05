/*
 * probe.h: `postern probe`.
 */
#ifndef POSTERN_PROBE_H
#define POSTERN_PROBE_H

#include <stdbool.h>

struct config;

/*
 * probe_run()
 * Probes the upstream called 'name' (every upstream when NULL), prints
 * the steps (as JSON with 'json'; with the session transcript when
 * 'verbose') and, with 'send_to', sends a test message from 'send_from'
 * (NULL: postmaster@default_domain).  Returns the exit status: 0 when
 * every upstream probed can take mail.
 */
int	probe_run(const struct config *cfg, const char *name, bool json,
	    bool verbose, const char *send_to, const char *send_from);

#endif /* POSTERN_PROBE_H */
