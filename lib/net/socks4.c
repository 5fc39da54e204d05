/*
 * socks4.c: the SOCKS4 and SOCKS4a byte machine.
 *
 * One request, one reply.  The request (SOCKS 4 protocol, "CONNECT") is
 * VN=4 CD=1 DSTPORT DSTIP USERID NUL; for SOCKS4a, a hop that resolves
 * remotely, a target name goes as DSTIP 0.0.0.1 followed by the name and
 * a NUL after the user id, while a target that is already an IPv4 literal
 * still goes as plain SOCKS4.  The user id is the hop's user, or empty.
 * The reply is exactly 8 bytes: VN=0, CD (90 granted, 91 rejected or
 * failed, 92 and 93 identd trouble), then a port and an address that
 * mean nothing for CONNECT.  Only those 8 bytes are drained; what follows
 * belongs to the next layer.  A wrong VN or a refusing CD fails as soon
 * as it is seen, without waiting for the rest.
 *
 * Not here: IPv6 (SOCKS4 cannot carry it; the runner never asks), BIND,
 * name lookups of any kind.
 */
#include <sys/types.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "common/err.h"
#include "net/dial.h"
#include "net/proxy.h"

#define SOCKS4_VERSION		4
#define SOCKS4_CMD_CONNECT	1
#define SOCKS4_REPLY_VERSION	0
#define SOCKS4_REPLY_LEN	8
#define SOCKS4_CD_GRANTED	90
#define SOCKS4_CD_REJECTED	91
#define SOCKS4_CD_NO_IDENTD	92
#define SOCKS4_CD_IDENT_DIFFER	93

enum socks4_state {
	SOCKS4_ST_REQUEST_SENT = 0,	/* waiting for the 8-byte reply */
	SOCKS4_ST_DONE,			/* granted: the tunnel is open */
	SOCKS4_ST_FAILED,		/* refused or garbled */
	SOCKS4_ST__COUNT
};

struct socks4_ctx {
	enum socks4_state	 state;
	bool			 socks4a;	/* the name goes to the proxy */
	struct pst_proxy_target	 t;
};

static void		 socks4_enter(struct socks4_ctx *,
			    enum socks4_state);
static const char	*socks4_cd_text(unsigned);
static int		 socks4_begin(void *, const struct pst_hop *,
			    const char *, uint16_t, struct evbuffer *,
			    struct pst_err *);
static enum pst_step	 socks4_input(void *, struct evbuffer *,
			    struct evbuffer *, struct pst_err *);
static enum pst_step	 socks4_fail(struct socks4_ctx *, struct pst_err *,
			    unsigned, const char *);

const struct pst_proxy_ops pst_socks4_ops = {
	.name = "socks4",
	.flags = PST_PROXY_F_IPV4_ONLY,
	.ctx_size = sizeof(struct socks4_ctx),
	.begin = socks4_begin,
	.input = socks4_input,
};

static void
socks4_enter(struct socks4_ctx *ctx, enum socks4_state state)
{
	ctx->state = state;
}

/* The SOCKS 4 protocol document's words for each reply code. */
static const char *
socks4_cd_text(unsigned cd)
{
	switch (cd) {
	case SOCKS4_CD_GRANTED:
		return "request granted";
	case SOCKS4_CD_REJECTED:
		return "request rejected or failed";
	case SOCKS4_CD_NO_IDENTD:
		return "request rejected: the proxy cannot reach identd on "
		    "this host";
	case SOCKS4_CD_IDENT_DIFFER:
		return "request rejected: identd reports a different user id";
	default:
		return "unknown reply code";
	}
}

static int
socks4_begin(void *vctx, const struct pst_hop *hop, const char *host,
    uint16_t port, struct evbuffer *out, struct pst_err *err)
{
	struct socks4_ctx *ctx = vctx;
	uint8_t req[8 + PST_PROXY_CRED_MAX + 1 + PST_HOST_MAX + 1];
	size_t ulen, hlen, n = 0;
	int rc = 0;

	if (pst_proxy_target_parse(host, port, hop->remote_resolve, "socks4",
	    &ctx->t, err) == -1)
		return -1;
	if (ctx->t.kind == PST_PROXY_TARGET_IPV6)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_PROXY,
		    "SOCKS4 cannot carry the IPv6 address %s", ctx->t.host);
	if ((ulen = strnlen(hop->user, sizeof(hop->user))) ==
	    sizeof(hop->user))
		return pst_err_set(err, PST_LOCAL, PST_STAGE_PROXY,
		    "SOCKS4 user id longer than %d bytes", PST_PROXY_CRED_MAX);
	ctx->socks4a = ctx->t.kind == PST_PROXY_TARGET_NAME;

	req[n++] = SOCKS4_VERSION;
	req[n++] = SOCKS4_CMD_CONNECT;
	req[n++] = (uint8_t)(port >> 8);
	req[n++] = (uint8_t)(port & 0xff);
	if (ctx->socks4a) {
		/* SOCKS4a: 0.0.0.x with x != 0 says "the name follows". */
		req[n++] = 0;
		req[n++] = 0;
		req[n++] = 0;
		req[n++] = 1;
	} else {
		memcpy(req + n, ctx->t.addr, 4);
		n += 4;
	}
	memcpy(req + n, hop->user, ulen);
	n += ulen;
	req[n++] = 0;
	if (ctx->socks4a) {
		hlen = strlen(ctx->t.host);
		memcpy(req + n, ctx->t.host, hlen);
		n += hlen;
		req[n++] = 0;
	}
	if (evbuffer_add(out, req, n) == -1)
		rc = pst_err_set(err, PST_LOCAL, PST_STAGE_PROXY,
		    "SOCKS4 request: out of memory");
	/* The user id is no secret on the wire, but it is the hop's. */
	explicit_bzero(req, sizeof(req));
	socks4_enter(ctx, SOCKS4_ST_REQUEST_SENT);
	return rc;
}

static enum pst_step
socks4_input(void *vctx, struct evbuffer *in, struct evbuffer *out,
    struct pst_err *err)
{
	struct socks4_ctx *ctx = vctx;
	uint8_t rep[SOCKS4_REPLY_LEN];
	size_t have = evbuffer_get_length(in);
	char why[160];

	switch (ctx->state) {
	case SOCKS4_ST_REQUEST_SENT:
		break;
	case SOCKS4_ST_DONE:
		return PST_STEP_DONE;
	case SOCKS4_ST_FAILED:
	case SOCKS4_ST__COUNT:
	default:
		return socks4_fail(ctx, err, 0, "handshake already failed");
	}
	if (have == 0)
		return PST_STEP_MORE;
	if (have > SOCKS4_REPLY_LEN)
		have = SOCKS4_REPLY_LEN;
	evbuffer_copyout(in, rep, have);
	if (rep[0] != SOCKS4_REPLY_VERSION) {
		snprintf(why, sizeof(why), "reply version %u, expected 0 (not "
		    "a SOCKS4 proxy?)", rep[0]);
		return socks4_fail(ctx, err, 0, why);
	}
	if (have < 2)
		return PST_STEP_MORE;
	if (rep[1] != SOCKS4_CD_GRANTED) {
		snprintf(why, sizeof(why), "%s to %s:%u: %s (code %u)",
		    ctx->socks4a ? "SOCKS4a CONNECT" : "CONNECT", ctx->t.host,
		    ctx->t.port, socks4_cd_text(rep[1]), rep[1]);
		return socks4_fail(ctx, err, rep[1], why);
	}
	if (have < SOCKS4_REPLY_LEN)
		return PST_STEP_MORE;
	evbuffer_drain(in, SOCKS4_REPLY_LEN);
	socks4_enter(ctx, SOCKS4_ST_DONE);
	return PST_STEP_DONE;
}

/* Fails the handshake with 'why'; 'code' is the proxy's CD, or 0. */
static enum pst_step
socks4_fail(struct socks4_ctx *ctx, struct pst_err *err, unsigned code,
    const char *why)
{
	pst_err_set(err, PST_TEMP, PST_STAGE_PROXY, "%s", why);
	err->detail = (int)code;
	socks4_enter(ctx, SOCKS4_ST_FAILED);
	return PST_STEP_FAIL;
}
