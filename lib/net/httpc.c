/*
 * httpc.c: the HTTP CONNECT byte machine (RFC 9110 section 9.3.6).
 *
 * The request is "CONNECT host:port HTTP/1.1", a Host field with the same
 * authority, and, when the hop has a user, "Proxy-Authorization: Basic"
 * with base64 of "user:password" (RFC 7617).  IPv6 targets go in
 * brackets; names go as they are, since HTTP proxies resolve remotely.
 *
 * The response is read line by line up to the empty line that ends the
 * header block, and only those bytes are drained: the tunnel starts right
 * behind it, and the upstream's 220 may already be there.  Lines end in
 * CRLF; a bare LF is accepted as well (RFC 9112 section 2.2 allows it),
 * so "LF LF" also ends the block, but a CR anywhere else, a NUL or another
 * control byte is an error.  Any 2xx opens the tunnel (HTTP/1.0 and 1.1;
 * Content-Length and Transfer-Encoding mean nothing then, section 9.3.6);
 * 1xx responses other than 101 are skipped as interim (section 15.2); 407
 * and 401 (tinyproxy's answer to a wrong password) are authentication
 * failures; anything else is a refusal, reported at once with the status
 * line, without waiting for headers or a body.  The block is bounded:
 * HTTPC_LINE_MAX bytes a line, HTTPC_BLOCK_MAX in all, HTTPC_FIELDS_MAX
 * header lines.
 *
 * Not here: other authentication schemes, keeping the connection after a
 * 407 to retry with credentials, HTTP/2 CONNECT, TLS to the proxy.
 */
#include <sys/types.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/evp.h>

#include "common/err.h"
#include "net/dial.h"
#include "net/proxy.h"

#define HTTPC_LINE_MAX		4096	/* a line, without CRLF */
#define HTTPC_BLOCK_MAX		8192	/* all lines, with CRLFs */
#define HTTPC_FIELDS_MAX	100	/* header lines, 1xx too */
/* "[" v6 "]:" port */
#define HTTPC_AUTHORITY_MAX	(PST_HOST_MAX + 2 + 1 + 5)
/* base64 of "user:password", and its NUL. */
#define HTTPC_B64_MAX	(4 * ((2 * PST_PROXY_CRED_MAX + 1 + 2) / 3) + 1)

enum httpc_state {
	HTTPC_ST_REQUEST_SENT = 0,	/* waiting for a status line */
	HTTPC_ST_FIELDS,		/* waiting for the end of the fields */
	HTTPC_ST_DONE,			/* 2xx: the tunnel is open */
	HTTPC_ST_FAILED,		/* refused or garbled */
};

struct httpc_ctx {
	enum httpc_state	 state;
	bool			 sent_auth;
	bool			 interim;	/* the fields of a 1xx */
	int			 status;
	size_t			 block;		/* bytes drained */
	size_t			 fields;	/* header lines */
	size_t			 nfields;	/* of this response */
	size_t			 scanned;	/* searched for LF */
	char			 authority[HTTPC_AUTHORITY_MAX + 1];
};

static void		 httpc_enter(struct httpc_ctx *, enum httpc_state);
static int		 httpc_begin(void *, const struct pst_hop *,
			    const char *, uint16_t, struct evbuffer *,
			    struct pst_err *);
static int		 httpc_add_auth(const struct pst_hop *,
			    struct evbuffer *, struct pst_err *);
static enum pst_step	 httpc_input(void *, struct evbuffer *,
			    struct evbuffer *, struct pst_err *);
static int		 httpc_prefix(struct httpc_ctx *, struct evbuffer *,
			    struct pst_err *);
static int		 httpc_line(struct httpc_ctx *, struct evbuffer *,
			    char *, size_t *, struct pst_err *);
static int		 httpc_status(struct httpc_ctx *, const char *,
			    size_t, struct pst_err *);
static int		 httpc_field(struct httpc_ctx *, const char *, size_t,
			    struct pst_err *);
static bool		 httpc_tchar(unsigned char);
static int		 httpc_fail(struct httpc_ctx *, struct pst_err *, int,
			    const char *, ...)
			    __attribute__((format(printf, 4, 5)));

const struct pst_proxy_ops pst_httpc_ops = {
	.name = "http",
	.flags = 0,
	.ctx_size = sizeof(struct httpc_ctx),
	.begin = httpc_begin,
	.input = httpc_input,
};

static void
httpc_enter(struct httpc_ctx *ctx, enum httpc_state state)
{
	ctx->state = state;
}

static int
httpc_begin(void *vctx, const struct pst_hop *hop, const char *host,
    uint16_t port, struct evbuffer *out, struct pst_err *err)
{
	struct httpc_ctx *ctx = vctx;
	struct pst_proxy_target t;
	int rc = 0;

	/* HTTP proxies resolve names themselves: whatever the hop says. */
	if (pst_proxy_target_parse(host, port, true, "http", &t, err) == -1)
		return -1;
	snprintf(ctx->authority, sizeof(ctx->authority), "%s%s%s:%u",
	    t.kind == PST_PROXY_TARGET_IPV6 ? "[" : "", t.host,
	    t.kind == PST_PROXY_TARGET_IPV6 ? "]" : "", port);
	if (strnlen(hop->user, sizeof(hop->user)) == sizeof(hop->user) ||
	    strnlen(hop->password, sizeof(hop->password)) ==
	    sizeof(hop->password))
		return pst_err_set(err, PST_LOCAL, PST_STAGE_PROXY,
		    "HTTP proxy user name or password longer than %d bytes",
		    PST_PROXY_CRED_MAX);
	/* RFC 7617 section 2: the user-id cannot contain a colon. */
	if (strchr(hop->user, ':') != NULL)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_PROXY,
		    "HTTP proxy user name contains ':', which Basic "
		    "authentication cannot carry");

	if (evbuffer_add_printf(out, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n",
	    ctx->authority, ctx->authority) < 0)
		rc = -1;
	if (rc == 0 && hop->user[0] != '\0') {
		if (httpc_add_auth(hop, out, err) == -1)
			return -1;
		ctx->sent_auth = true;
	}
	if (rc == 0 && evbuffer_add(out, "\r\n", 2) == -1)
		rc = -1;
	if (rc == -1)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_PROXY,
		    "CONNECT request: out of memory");
	httpc_enter(ctx, HTTPC_ST_REQUEST_SENT);
	return 0;
}

/* Appends "Proxy-Authorization: Basic ..." for the hop's credentials. */
static int
httpc_add_auth(const struct pst_hop *hop, struct evbuffer *out,
    struct pst_err *err)
{
	unsigned char plain[2 * PST_PROXY_CRED_MAX + 1];
	unsigned char b64[HTTPC_B64_MAX];
	size_t ulen = strlen(hop->user), plen = strlen(hop->password);
	int n, rc = 0;

	memcpy(plain, hop->user, ulen);
	plain[ulen] = ':';
	memcpy(plain + ulen + 1, hop->password, plen);
	n = EVP_EncodeBlock(b64, plain, (int)(ulen + 1 + plen));
	if (evbuffer_add_printf(out, "Proxy-Authorization: Basic %.*s\r\n",
	    n, (const char *)b64) < 0)
		rc = pst_err_set(err, PST_LOCAL, PST_STAGE_PROXY,
		    "CONNECT request: out of memory");
	explicit_bzero(plain, sizeof(plain));
	explicit_bzero(b64, sizeof(b64));
	return rc;
}

static enum pst_step
httpc_input(void *vctx, struct evbuffer *in, struct evbuffer *out,
    struct pst_err *err)
{
	struct httpc_ctx *ctx = vctx;
	char line[HTTPC_LINE_MAX + 1];
	size_t len = 0;
	int rc;

	for (;;) {
		switch (ctx->state) {
		case HTTPC_ST_REQUEST_SENT:
		case HTTPC_ST_FIELDS:
			break;
		case HTTPC_ST_DONE:
			return PST_STEP_DONE;
		case HTTPC_ST_FAILED:
		default:
			httpc_fail(ctx, err, 0, "handshake already failed");
			return PST_STEP_FAIL;
		}
		if (ctx->state == HTTPC_ST_REQUEST_SENT &&
		    httpc_prefix(ctx, in, err) == -1)
			return PST_STEP_FAIL;
		if ((rc = httpc_line(ctx, in, line, &len, err)) == 0)
			return PST_STEP_MORE;
		if (rc == -1)
			return PST_STEP_FAIL;
		if (ctx->state == HTTPC_ST_REQUEST_SENT)
			rc = httpc_status(ctx, line, len, err);
		else
			rc = httpc_field(ctx, line, len, err);
		if (rc == -1)
			return PST_STEP_FAIL;
	}
}

/*
 * Fails at once when the bytes so far cannot begin a status line, so that
 * a proxy of another kind (a SOCKS5 reply, a 220 greeting) is named for
 * what it is instead of running into the timeout.
 */
static int
httpc_prefix(struct httpc_ctx *ctx, struct evbuffer *in, struct pst_err *err)
{
	static const char want[] = "HTTP/";
	char got[sizeof(want) - 1];
	ssize_t n;

	n = evbuffer_copyout(in, got, sizeof(got));
	if (n <= 0 || memcmp(got, want, (size_t)n) == 0)
		return 0;
	return httpc_fail(ctx, err, 0, "CONNECT to %s: the reply is not "
	    "HTTP (not an HTTP proxy?)", ctx->authority);
}

/*
 * Takes the next complete line out of 'in' into 'line' (NUL terminated,
 * without its LF or CRLF) and returns 1; returns 0 while the line is
 * incomplete, -1 when it breaks a bound or holds a byte it must not.
 */
static int
httpc_line(struct httpc_ctx *ctx, struct evbuffer *in, char *line,
    size_t *lenp, struct pst_err *err)
{
	struct evbuffer_ptr start, lf;
	size_t have = evbuffer_get_length(in), len, i;

	/* Only the bytes not searched yet: a reply fed byte by byte stays
	 * linear. */
	if (evbuffer_ptr_set(in, &start, ctx->scanned, EVBUFFER_PTR_SET) ==
	    -1)
		evbuffer_ptr_set(in, &start, 0, EVBUFFER_PTR_SET);
	lf = evbuffer_search(in, "\n", 1, &start);
	if (lf.pos < 0) {
		ctx->scanned = have;
		if (have > HTTPC_LINE_MAX + 1)
			return httpc_fail(ctx, err, 0, "response line longer "
			    "than %d bytes", HTTPC_LINE_MAX);
		if (ctx->block + have > HTTPC_BLOCK_MAX)
			return httpc_fail(ctx, err, 0, "response header block "
			    "longer than %d bytes", HTTPC_BLOCK_MAX);
		return 0;
	}
	len = (size_t)lf.pos;
	if (len > HTTPC_LINE_MAX + 1)
		return httpc_fail(ctx, err, 0, "response line longer than %d "
		    "bytes", HTTPC_LINE_MAX);
	if (ctx->block + len + 1 > HTTPC_BLOCK_MAX)
		return httpc_fail(ctx, err, 0, "response header block longer "
		    "than %d bytes", HTTPC_BLOCK_MAX);
	evbuffer_remove(in, line, len);
	evbuffer_drain(in, 1);
	ctx->scanned = 0;
	ctx->block += len + 1;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len > HTTPC_LINE_MAX)
		return httpc_fail(ctx, err, 0, "response line longer than %d "
		    "bytes", HTTPC_LINE_MAX);
	line[len] = '\0';
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		/* RFC 9112 section 2.2: no bare CR; RFC 9110 section 5.5:
		 * no other controls but HTAB. */
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return httpc_fail(ctx, err, 0, "control byte 0x%02x in "
			    "the response", c);
	}
	*lenp = len;
	return 1;
}

/* RFC 9112 section 4: HTTP-version SP 3DIGIT SP [reason-phrase]. */
static int
httpc_status(struct httpc_ctx *ctx, const char *line, size_t len,
    struct pst_err *err)
{
	const char *status = line + 9;
	bool auth;

	if (len < 12 || memcmp(line, "HTTP/1.", 7) != 0 ||
	    line[7] < '0' || line[7] > '9' || line[8] != ' ' ||
	    status[0] < '1' || status[0] > '5' ||
	    status[1] < '0' || status[1] > '9' ||
	    status[2] < '0' || status[2] > '9' ||
	    (len > 12 && status[3] != ' '))
		return httpc_fail(ctx, err, 0, "CONNECT to %s: not an "
		    "HTTP/1 status line: \"%.80s\"", ctx->authority, line);
	ctx->status = (status[0] - '0') * 100 + (status[1] - '0') * 10 +
	    (status[2] - '0');
	ctx->nfields = 0;
	if (ctx->status >= 200 && ctx->status < 300) {
		ctx->interim = false;
		httpc_enter(ctx, HTTPC_ST_FIELDS);
		return 1;
	}
	if (ctx->status < 200 && ctx->status != 101) {
		ctx->interim = true;
		httpc_enter(ctx, HTTPC_ST_FIELDS);
		return 1;
	}
	auth = ctx->status == 407 || ctx->status == 401;
	if (auth && ctx->sent_auth)
		return httpc_fail(ctx, err, ctx->status, "CONNECT to %s: "
		    "authentication failed: %.200s", ctx->authority, status);
	if (auth)
		return httpc_fail(ctx, err, ctx->status, "CONNECT to %s: "
		    "the proxy wants authentication, and no user is set: "
		    "%.200s", ctx->authority, status);
	return httpc_fail(ctx, err, ctx->status, "CONNECT to %s refused: "
	    "%.200s", ctx->authority, status);
}

/* RFC 9112 section 5: field-name ":" OWS field-value OWS, or the end. */
static int
httpc_field(struct httpc_ctx *ctx, const char *line, size_t len,
    struct pst_err *err)
{
	size_t i;

	if (len == 0) {
		if (ctx->interim) {
			/* A 1xx is done; the real answer follows. */
			ctx->interim = false;
			httpc_enter(ctx, HTTPC_ST_REQUEST_SENT);
			return 1;
		}
		httpc_enter(ctx, HTTPC_ST_DONE);
		return 1;
	}
	if (++ctx->fields > HTTPC_FIELDS_MAX)
		return httpc_fail(ctx, err, 0, "CONNECT to %s: more "
		    "than %d header lines in the response", ctx->authority,
		    HTTPC_FIELDS_MAX);
	/* obs-fold (section 5.2) continues the previous field. */
	if ((line[0] == ' ' || line[0] == '\t') && ctx->nfields > 0)
		return 1;
	for (i = 0; i < len && httpc_tchar((unsigned char)line[i]); i++)
		continue;
	if (i == 0 || i == len || line[i] != ':')
		return httpc_fail(ctx, err, 0, "CONNECT to %s: "
		    "malformed header line in the response: \"%.80s\"",
		    ctx->authority, line);
	ctx->nfields++;
	return 1;
}

/* RFC 9110 section 5.6.2: the characters of a token. */
static bool
httpc_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Fails the handshake; 'code' is the HTTP status, or 0.  Returns -1. */
static int
httpc_fail(struct httpc_ctx *ctx, struct pst_err *err, int code,
    const char *fmt, ...)
{
	char why[PST_ERR_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	pst_err_set(err, PST_TEMP, PST_STAGE_PROXY, "%s", why);
	err->detail = code;
	httpc_enter(ctx, HTTPC_ST_FAILED);
	return -1;
}
