/*
 * upstream.h: from a configured upstream to what lib/client needs, and
 * the per-upstream memory of the TLS mode that worked.
 *
 * The memory lives in SPOOL/state/upstream.NAME, one word ("plain" or
 * "implicit").  It is a hint: a missing or unreadable file means "not
 * known", and writing it never fails a delivery.
 */
#ifndef POSTERN_UPSTREAM_H
#define POSTERN_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "client/negotiate.h"
#include "sasl/sasl.h"

struct config;
struct config_upstream;

/*
 * upstream_params()
 * Fills 'np' (and 'creds', used by it when the upstream authenticates,
 * with 'secret' as the password or token) for a connection to 'u',
 * through its proxy number 'proxy' (modulo their number) if it has any.  The
 * pointers in 'np' lead into 'cfg', 'u', 'creds' and 'secret', which must
 * outlive the connection.
 */
void	upstream_params(const struct config *cfg,
	    const struct config_upstream *u, const char *secret,
	    enum pst_learned remembered, size_t proxy,
	    struct pst_negotiate_params *np, struct pst_creds *creds);

/*
 * upstream_proxy_failed()
 * Whether a failed connection should move on to the next proxy of the
 * list: any trouble reaching or passing through the proxy.
 */
bool	upstream_proxy_failed(const struct pst_err *err);

/*
 * upstream_memory_load(), upstream_memory_save()
 * Read and write the mode remembered for upstream 'name' under
 * 'spool_dir'.  Saving returns 0 or -1 (errno set); the caller may log it.
 */
enum pst_learned upstream_memory_load(const char *spool_dir,
	    const char *name);
int	upstream_memory_save(const char *spool_dir, const char *name,
	    enum pst_learned learned);

#endif /* POSTERN_UPSTREAM_H */
