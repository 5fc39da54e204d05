/*
 * proxy.c: what the proxy byte machines share.
 *
 * One check of the target a hop is asked to reach, so that SOCKS4, SOCKS5
 * and HTTP CONNECT agree on what a literal is and on when a name may go
 * to the proxy.  The rule that keeps names from leaking either way lives
 * here: a hop that resolves remotely gets names, a hop that does not gets
 * only the addresses the chain runner looked up, and anything else is a
 * local error rather than a guess.
 *
 * Nothing here touches the network, and nothing is looked up.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <string.h>

#include "common/err.h"
#include "net/proxy.h"
#include "net/sockaddr.h"

int
pst_proxy_target_parse(const char *host, uint16_t port, bool remote_resolve,
    const char *kind, struct pst_proxy_target *t, struct pst_err *err)
{
	char v6[PST_HOST_MAX + 1];
	size_t len;
	char *scope;

	memset(t, 0, sizeof(*t));
	t->port = port;
	if (host == NULL || host[0] == '\0')
		return pst_err_set(err, PST_LOCAL, PST_STAGE_PROXY,
		    "no target host for the %s proxy", kind);
	if (port == 0)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_PROXY,
		    "no target port for the %s proxy", kind);
	/* The length first: a long name is an error, never a lookup here. */
	if ((len = strnlen(host, PST_HOST_MAX + 1)) > PST_HOST_MAX)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_PROXY,
		    "target name longer than %d bytes for the %s proxy",
		    PST_HOST_MAX, kind);
	if (inet_pton(AF_INET, host, t->addr) == 1) {
		t->kind = PST_PROXY_TARGET_IPV4;
		memcpy(t->host, host, len + 1);
		return 0;
	}
	memcpy(v6, host, len + 1);
	if ((scope = strchr(v6, '%')) != NULL)
		*scope = '\0';
	if (inet_pton(AF_INET6, v6, t->addr) == 1) {
		t->kind = PST_PROXY_TARGET_IPV6;
		strcpy(t->host, v6);
		return 0;
	}
	if (!pst_hostname_valid(host))
		return pst_err_set(err, PST_LOCAL, PST_STAGE_PROXY,
		    "target \"%s\" for the %s proxy is not a valid host name "
		    "or IP address", host, kind);
	if (!remote_resolve)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_PROXY,
		    "target %s for the %s proxy is a name, but this proxy "
		    "does not resolve names (an address was expected)", host,
		    kind);
	t->kind = PST_PROXY_TARGET_NAME;
	memcpy(t->host, host, len + 1);
	return 0;
}

/* The implementation of each kind (see proxy.h). */
static const struct pst_proxy_ops *const hop_kind_ops[PST_HOP__COUNT] = {
	[PST_HOP_NONE] = NULL,
	[PST_HOP_SOCKS4] = &pst_socks4_ops,
	[PST_HOP_SOCKS5] = &pst_socks5_ops,
	[PST_HOP_HTTP] = &pst_httpc_ops,
};

const struct pst_proxy_ops *
pst_proxy_ops_for(enum pst_hop_kind kind)
{
	if ((unsigned)kind >= PST_HOP__COUNT)
		return NULL;
	return hop_kind_ops[kind];
}
