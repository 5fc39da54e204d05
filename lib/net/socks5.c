/*
 * socks5.c: the SOCKS5 byte machine (RFC 1928, RFC 1929).
 *
 * Three exchanges, each waiting for the proxy before the next is sent:
 * the method offer (RFC 1928 section 3: "no authentication", plus
 * username/password when the hop has a user), the RFC 1929 sub-negotiation
 * when the proxy picks it, and the CONNECT request (section 4) with the
 * target as ATYP 1 (IPv4), 4 (IPv6) or 3 (a name, for a hop that resolves
 * remotely: socks5h).  A name longer than 255 bytes cannot be encoded and
 * is an error, never a reason to resolve it here instead.
 *
 * Replies are read to their exact length: 2 bytes for the method and for
 * the RFC 1929 status, and for CONNECT 4 + 4, 4 + 16 or 4 + 1 + n bytes
 * of address plus 2 of port, as ATYP says (section 6).  Only those bytes
 * are drained; a greeting that arrived behind them stays for the next
 * layer.  A wrong version or a refusal fails as soon as it is seen.
 *
 * The credentials are copied into the context for the sub-negotiation
 * and wiped as soon as they are on their way.  Not here: GSSAPI, BIND,
 * UDP ASSOCIATE, sending the request before the method is chosen.
 */
#include <sys/types.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "common/err.h"
#include "net/dial.h"
#include "net/proxy.h"

#define SOCKS5_VERSION		5
#define SOCKS5_AUTH_VERSION	1	/* RFC 1929 section 2 */
#define SOCKS5_METHOD_NONE	0x00
#define SOCKS5_METHOD_USERPASS	0x02
#define SOCKS5_METHOD_REFUSED	0xff
#define SOCKS5_CMD_CONNECT	1
#define SOCKS5_ATYP_IPV4	1
#define SOCKS5_ATYP_NAME	3
#define SOCKS5_ATYP_IPV6	4
#define SOCKS5_NAME_MAX		255	/* one length byte */

/*
 * CVE-2023-38545: a name that does not fit must be an error, never a quiet
 * switch to resolving here.  pst_proxy_target_parse() refuses names
 * longer than PST_HOST_MAX, so every name it lets through fits.
 */
_Static_assert(PST_HOST_MAX <= SOCKS5_NAME_MAX,
    "every valid host name fits a SOCKS5 request");
_Static_assert(PST_PROXY_CRED_MAX <= 255,
    "RFC 1929 lengths are one byte");

enum socks5_state {
	SOCKS5_ST_METHOD_SENT = 0,	/* waiting for the method choice */
	SOCKS5_ST_AUTH_SENT,		/* waiting for the RFC 1929 reply */
	SOCKS5_ST_REQUEST_SENT,		/* waiting for the CONNECT reply */
	SOCKS5_ST_DONE,			/* the tunnel is open */
	SOCKS5_ST_FAILED,		/* refused or garbled */
};

struct socks5_ctx {
	enum socks5_state	 state;
	bool			 offered_auth;
	struct pst_proxy_target	 t;
	/* Until the sub-negotiation is sent; wiped then. */
	uint8_t			 ulen;
	uint8_t			 plen;
	char			 user[PST_PROXY_CRED_MAX];
	char			 password[PST_PROXY_CRED_MAX];
};

static void		 socks5_enter(struct socks5_ctx *,
			    enum socks5_state);
static const char	*socks5_rep_text(unsigned);
static int		 socks5_begin(void *, const struct pst_hop *,
			    const char *, uint16_t, struct evbuffer *,
			    struct pst_err *);
static enum pst_step	 socks5_input(void *, struct evbuffer *,
			    struct evbuffer *, struct pst_err *);
static int		 socks5_method(struct socks5_ctx *, struct evbuffer *,
			    struct evbuffer *, struct pst_err *);
static int		 socks5_auth(struct socks5_ctx *, struct evbuffer *,
			    struct evbuffer *, struct pst_err *);
static int		 socks5_reply(struct socks5_ctx *, struct evbuffer *,
			    struct pst_err *);
static int		 socks5_send_auth(struct socks5_ctx *,
			    struct evbuffer *, struct pst_err *);
static int		 socks5_send_request(struct socks5_ctx *,
			    struct evbuffer *, struct pst_err *);
static int		 socks5_fail(struct socks5_ctx *, struct pst_err *,
			    unsigned, const char *, ...)
			    __attribute__((format(printf, 4, 5)));

const struct pst_proxy_ops pst_socks5_ops = {
	.name = "socks5",
	.flags = 0,
	.ctx_size = sizeof(struct socks5_ctx),
	.begin = socks5_begin,
	.input = socks5_input,
};

static void
socks5_enter(struct socks5_ctx *ctx, enum socks5_state state)
{
	ctx->state = state;
}

/* RFC 1928 section 6, in words that read well after "failed: ". */
static const char *
socks5_rep_text(unsigned rep)
{
	switch (rep) {
	case 0x01:
		return "general SOCKS server failure";
	case 0x02:
		return "connection not allowed by ruleset";
	case 0x03:
		return "network unreachable";
	case 0x04:
		return "host unreachable";
	case 0x05:
		return "connection refused";
	case 0x06:
		return "TTL expired";
	case 0x07:
		return "command not supported";
	case 0x08:
		return "address type not supported";
	default:
		return "unassigned reply code";
	}
}

static int
socks5_begin(void *vctx, const struct pst_hop *hop, const char *host,
    uint16_t port, struct evbuffer *out, struct pst_err *err)
{
	struct socks5_ctx *ctx = vctx;
	uint8_t greeting[4];
	size_t ulen, plen, n = 0;

	if (pst_proxy_target_parse(host, port, hop->remote_resolve, "socks5",
	    &ctx->t, err) == -1)
		return -1;
	ulen = strnlen(hop->user, sizeof(hop->user));
	plen = strnlen(hop->password, sizeof(hop->password));
	if (ulen > PST_PROXY_CRED_MAX || plen > PST_PROXY_CRED_MAX)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_PROXY,
		    "SOCKS5 user name or password longer than %d bytes",
		    PST_PROXY_CRED_MAX);
	if (ulen > 0) {
		ctx->offered_auth = true;
		ctx->ulen = (uint8_t)ulen;
		ctx->plen = (uint8_t)plen;
		memcpy(ctx->user, hop->user, ulen);
		memcpy(ctx->password, hop->password, plen);
	}

	greeting[n++] = SOCKS5_VERSION;
	greeting[n++] = ctx->offered_auth ? 2 : 1;
	greeting[n++] = SOCKS5_METHOD_NONE;
	if (ctx->offered_auth)
		greeting[n++] = SOCKS5_METHOD_USERPASS;
	socks5_enter(ctx, SOCKS5_ST_METHOD_SENT);
	if (evbuffer_add(out, greeting, n) == -1)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_PROXY,
		    "SOCKS5 method offer: out of memory");
	return 0;
}

/*
 * Runs the exchanges the waiting bytes complete.  Each step returns 1
 * when it moved on, 0 when it needs more bytes, -1 when it failed.
 */
static enum pst_step
socks5_input(void *vctx, struct evbuffer *in, struct evbuffer *out,
    struct pst_err *err)
{
	struct socks5_ctx *ctx = vctx;
	int rc;

	for (;;) {
		switch (ctx->state) {
		case SOCKS5_ST_METHOD_SENT:
			rc = socks5_method(ctx, in, out, err);
			break;
		case SOCKS5_ST_AUTH_SENT:
			rc = socks5_auth(ctx, in, out, err);
			break;
		case SOCKS5_ST_REQUEST_SENT:
			rc = socks5_reply(ctx, in, err);
			break;
		case SOCKS5_ST_DONE:
			return PST_STEP_DONE;
		case SOCKS5_ST_FAILED:
		default:
			socks5_fail(ctx, err, 0, "handshake already failed");
			return PST_STEP_FAIL;
		}
		if (rc == -1)
			return PST_STEP_FAIL;
		if (rc == 0)
			return PST_STEP_MORE;
	}
}

/* RFC 1928 section 3: VER METHOD. */
static int
socks5_method(struct socks5_ctx *ctx, struct evbuffer *in,
    struct evbuffer *out, struct pst_err *err)
{
	uint8_t rep[2];
	size_t have = evbuffer_get_length(in);

	if (have == 0)
		return 0;
	evbuffer_copyout(in, rep, have < 2 ? 1 : 2);
	if (rep[0] != SOCKS5_VERSION)
		return socks5_fail(ctx, err, 0, "method reply version %u, "
		    "expected 5 (not a SOCKS5 proxy?)", rep[0]);
	if (have < 2)
		return 0;
	switch (rep[1]) {
	case SOCKS5_METHOD_NONE:
		evbuffer_drain(in, 2);
		return socks5_send_request(ctx, out, err);
	case SOCKS5_METHOD_USERPASS:
		if (!ctx->offered_auth)
			break;
		evbuffer_drain(in, 2);
		return socks5_send_auth(ctx, out, err);
	case SOCKS5_METHOD_REFUSED:
		if (ctx->offered_auth)
			return socks5_fail(ctx, err, rep[1], "method "
			    "selection: no acceptable methods (code 255): the "
			    "proxy takes neither no authentication nor "
			    "username/password");
		return socks5_fail(ctx, err, rep[1], "method selection: no "
		    "acceptable methods (code 255): the proxy wants "
		    "authentication, and no user is set");
	default:
		break;
	}
	return socks5_fail(ctx, err, rep[1], "method selection: the proxy "
	    "chose method 0x%02x, which was not offered", rep[1]);
}

/* RFC 1929 section 2: VER STATUS, where 0 is success. */
static int
socks5_auth(struct socks5_ctx *ctx, struct evbuffer *in,
    struct evbuffer *out, struct pst_err *err)
{
	uint8_t rep[2];
	size_t have = evbuffer_get_length(in);

	if (have == 0)
		return 0;
	evbuffer_copyout(in, rep, have < 2 ? 1 : 2);
	if (rep[0] != SOCKS5_AUTH_VERSION)
		return socks5_fail(ctx, err, 0, "username/password reply "
		    "version %u, expected 1", rep[0]);
	if (have < 2)
		return 0;
	if (rep[1] != 0)
		return socks5_fail(ctx, err, rep[1], "username/password "
		    "authentication failed (status %u)", rep[1]);
	evbuffer_drain(in, 2);
	return socks5_send_request(ctx, out, err);
}

/* RFC 1928 section 6: VER REP RSV ATYP BND.ADDR BND.PORT. */
static int
socks5_reply(struct socks5_ctx *ctx, struct evbuffer *in,
    struct pst_err *err)
{
	uint8_t rep[5];
	size_t have = evbuffer_get_length(in), need;

	if (have == 0)
		return 0;
	evbuffer_copyout(in, rep, have < sizeof(rep) ? have : sizeof(rep));
	if (rep[0] != SOCKS5_VERSION)
		return socks5_fail(ctx, err, 0, "CONNECT reply version %u, "
		    "expected 5", rep[0]);
	if (have < 2)
		return 0;
	if (rep[1] != 0)
		return socks5_fail(ctx, err, rep[1], "CONNECT to %s%s%s:%u "
		    "failed: %s (code %u)",
		    ctx->t.kind == PST_PROXY_TARGET_IPV6 ? "[" : "",
		    ctx->t.host,
		    ctx->t.kind == PST_PROXY_TARGET_IPV6 ? "]" : "",
		    ctx->t.port, socks5_rep_text(rep[1]), rep[1]);
	/* RSV (rep[2]) is not checked: RFC 1928 gives it no meaning. */
	if (have < 4)
		return 0;
	switch (rep[3]) {
	case SOCKS5_ATYP_IPV4:
		need = 4 + 4 + 2;
		break;
	case SOCKS5_ATYP_IPV6:
		need = 4 + 16 + 2;
		break;
	case SOCKS5_ATYP_NAME:
		if (have < 5)
			return 0;
		need = 4 + 1 + (size_t)rep[4] + 2;
		break;
	default:
		return socks5_fail(ctx, err, 0, "CONNECT reply with unknown "
		    "address type %u", rep[3]);
	}
	if (have < need)
		return 0;
	evbuffer_drain(in, need);
	socks5_enter(ctx, SOCKS5_ST_DONE);
	return 1;
}

/* RFC 1929 section 2: VER ULEN UNAME PLEN PASSWD. */
static int
socks5_send_auth(struct socks5_ctx *ctx, struct evbuffer *out,
    struct pst_err *err)
{
	uint8_t req[3 + 2 * PST_PROXY_CRED_MAX];
	size_t n = 0;
	int rc;

	req[n++] = SOCKS5_AUTH_VERSION;
	req[n++] = ctx->ulen;
	memcpy(req + n, ctx->user, ctx->ulen);
	n += ctx->ulen;
	req[n++] = ctx->plen;
	memcpy(req + n, ctx->password, ctx->plen);
	n += ctx->plen;
	rc = evbuffer_add(out, req, n);
	explicit_bzero(req, sizeof(req));
	explicit_bzero(ctx->user, sizeof(ctx->user));
	explicit_bzero(ctx->password, sizeof(ctx->password));
	ctx->ulen = ctx->plen = 0;
	if (rc == -1)
		return socks5_fail(ctx, err, 0, "username/password request: "
		    "out of memory");
	socks5_enter(ctx, SOCKS5_ST_AUTH_SENT);
	return 1;
}

/* RFC 1928 section 4: VER CMD RSV ATYP DST.ADDR DST.PORT. */
static int
socks5_send_request(struct socks5_ctx *ctx, struct evbuffer *out,
    struct pst_err *err)
{
	uint8_t req[4 + 1 + SOCKS5_NAME_MAX + 2];
	size_t n = 0, len;

	/* Not needed past the method choice, whichever it was. */
	explicit_bzero(ctx->user, sizeof(ctx->user));
	explicit_bzero(ctx->password, sizeof(ctx->password));
	req[n++] = SOCKS5_VERSION;
	req[n++] = SOCKS5_CMD_CONNECT;
	req[n++] = 0;
	switch (ctx->t.kind) {
	case PST_PROXY_TARGET_IPV4:
		req[n++] = SOCKS5_ATYP_IPV4;
		memcpy(req + n, ctx->t.addr, 4);
		n += 4;
		break;
	case PST_PROXY_TARGET_IPV6:
		req[n++] = SOCKS5_ATYP_IPV6;
		memcpy(req + n, ctx->t.addr, 16);
		n += 16;
		break;
	case PST_PROXY_TARGET_NAME:
	default:
		len = strlen(ctx->t.host);
		req[n++] = SOCKS5_ATYP_NAME;
		req[n++] = (uint8_t)len;
		memcpy(req + n, ctx->t.host, len);
		n += len;
		break;
	}
	req[n++] = (uint8_t)(ctx->t.port >> 8);
	req[n++] = (uint8_t)(ctx->t.port & 0xff);
	if (evbuffer_add(out, req, n) == -1)
		return socks5_fail(ctx, err, 0, "CONNECT request: out of "
		    "memory");
	socks5_enter(ctx, SOCKS5_ST_REQUEST_SENT);
	return 1;
}

/* Fails the handshake; 'code' is the proxy's byte, or 0.  Returns -1. */
static int
socks5_fail(struct socks5_ctx *ctx, struct pst_err *err, unsigned code,
    const char *fmt, ...)
{
	char why[PST_ERR_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	pst_err_set(err, PST_TEMP, PST_STAGE_PROXY, "%s", why);
	err->detail = (int)code;
	explicit_bzero(ctx->user, sizeof(ctx->user));
	explicit_bzero(ctx->password, sizeof(ctx->password));
	socks5_enter(ctx, SOCKS5_ST_FAILED);
	return -1;
}
