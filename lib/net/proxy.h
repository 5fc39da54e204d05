/*
 * proxy.h: the proxy kinds postern implements, and what they share.
 *
 * Each kind is a const struct pst_proxy_ops (below), a pure byte
 * machine in its own file: socks4.c (SOCKS4 and SOCKS4a), socks5.c (RFC
 * 1928 with RFC 1929 username/password) and httpc.c (HTTP CONNECT).  The
 * chain runner in dial.c finds them through pst_proxy_ops_for(); tests
 * and tools may use them directly.
 *
 * Failures.  Every refusal or garbled reply from a proxy is PST_TEMP,
 * PST_STAGE_PROXY: the queue retries later and moves on to the next
 * proxy, authentication failures included (a password may be fixed
 * before the message expires).  The text names the step and the proxy's
 * own code, which is also in err->detail: the SOCKS4 CD byte, the SOCKS5
 * REP byte (or the method or RFC 1929 status), the HTTP status.  The
 * runner puts "KIND proxy HOST:PORT: " in front.  A request postern
 * cannot make (an IPv6 target for SOCKS4, a name for a hop that does not
 * resolve remotely, a user name Basic authentication cannot carry) is
 * PST_LOCAL: a configuration problem or a bug, never the proxy's.
 */
#ifndef PST_PROXY_H
#define PST_PROXY_H

#include <stdbool.h>
#include <stdint.h>

#include "net/sockaddr.h"

struct evbuffer;
struct pst_err;

/* Proxy user names and passwords (RFC 1929 allows 255 bytes each). */
#define PST_PROXY_CRED_MAX		255
/* Bytes a proxy may send before its reply is complete. */
#define PST_PROXY_REPLY_MAX		16384

enum pst_hop_kind {
	PST_HOP_NONE = 0,	/* no proxy: not a valid hop */
	PST_HOP_SOCKS4,		/* SOCKS4; SOCKS4a with remote_resolve */
	PST_HOP_SOCKS5,		/* RFC 1928/1929; socks5h with remote_resolve */
	PST_HOP_HTTP,		/* HTTP CONNECT, RFC 9110 section 9.3.6 */
	PST_HOP__COUNT
};

struct pst_hop {
	enum pst_hop_kind	 kind;
	char			 host[PST_HOST_MAX + 1]; /* name or literal */
	uint16_t		 port;
	char			 user[PST_PROXY_CRED_MAX + 1];	   /* "" none */
	char			 password[PST_PROXY_CRED_MAX + 1];
	bool			 remote_resolve; /* the proxy resolves */
	/* NULL: the ops of 'kind'.  Set: used as is (tests, extensions). */
	const struct pst_proxy_ops *ops;
};

/* What a proxy byte machine says after reading input. */
enum pst_step {
	PST_STEP_MORE = 0,	/* needs more input (may have written output) */
	PST_STEP_DONE,		/* tunnel open; 'in' holds only later bytes */
	PST_STEP_FAIL,		/* refused or garbled; 'err' is filled */
};

/* pst_proxy_ops flags. */
#define PST_PROXY_F_IPV4_ONLY	0x01u	/* targets must be IPv4 (SOCKS4) */

/*
 * A proxy kind.  'ctx_size' zeroed bytes are its state for one handshake;
 * the runner wipes and frees them afterwards.
 * begin(): writes the opening request for a tunnel to 'host' (a name when
 *   the hop resolves remotely, else an IP literal without brackets) and
 *   'port' into 'out'.  Returns 0, or -1 with 'err' filled.
 * input(): reads the proxy's bytes from 'in', draining exactly what it
 *   parsed (never more: what follows the reply belongs to the next layer),
 *   may write more requests to 'out' (authentication), and says MORE, DONE
 *   or FAIL.  It is called after each arrival of bytes, and once right
 *   after begin() when bytes are already waiting.  The runner fails the
 *   hop when more than PST_PROXY_REPLY_MAX bytes wait after MORE.
 * Errors are PST_STAGE_PROXY; a FAIL without a class becomes PST_TEMP.
 */
struct pst_proxy_ops {
	const char	*name;		/* "socks5", for messages */
	unsigned	 flags;		/* PST_PROXY_F_* */
	size_t		 ctx_size;
	int		(*begin)(void *ctx, const struct pst_hop *hop,
			    const char *host, uint16_t port,
			    struct evbuffer *out, struct pst_err *err);
	enum pst_step	(*input)(void *ctx, struct evbuffer *in,
			    struct evbuffer *out, struct pst_err *err);
};


/*
 * pst_proxy_ops_for()
 * The implementation of 'kind', or NULL when postern has none.
 */
const struct pst_proxy_ops *pst_proxy_ops_for(enum pst_hop_kind kind);

/* SOCKS4 and SOCKS4a: IPv4 targets only; the name with remote_resolve. */
extern const struct pst_proxy_ops pst_socks4_ops;
/* SOCKS5: methods "no authentication" and RFC 1929 username/password. */
extern const struct pst_proxy_ops pst_socks5_ops;
/* HTTP CONNECT over HTTP/1.1, with Basic Proxy-Authorization. */
extern const struct pst_proxy_ops pst_httpc_ops;

enum pst_proxy_target_kind {
	PST_PROXY_TARGET_IPV4 = 0,
	PST_PROXY_TARGET_IPV6,
	PST_PROXY_TARGET_NAME,
};

/* Where a hop is asked to open its tunnel to, checked. */
struct pst_proxy_target {
	enum pst_proxy_target_kind kind;
	uint8_t			 addr[16];	/* IPv4: the first 4 */
	char			 host[PST_HOST_MAX + 1]; /* no scope or [] */
	uint16_t		 port;
};

/*
 * pst_proxy_target_parse()
 * Sorts 'host' (as begin() gets it) into an IPv4 literal, an IPv6 literal
 * (a "%scope" is dropped: it means nothing to the proxy) or a host name,
 * and fills 't'.  A name is refused unless 'remote_resolve' says the
 * proxy may resolve it: postern never lets a name it was asked to resolve
 * itself slip through to a proxy, nor the other way round.  'kind' names
 * the proxy kind in messages.  Returns 0, or -1 with 'err' filled
 * (PST_LOCAL, PST_STAGE_PROXY): no host, a name longer than PST_HOST_MAX
 * bytes, an invalid name, a name without 'remote_resolve'.
 */
int	pst_proxy_target_parse(const char *host, uint16_t port,
	    bool remote_resolve, const char *kind,
	    struct pst_proxy_target *t, struct pst_err *err);

#endif /* PST_PROXY_H */
