/*
 * fuzz_proxy.c: the proxy byte machines (net/proxy.h) on hostile replies.
 *
 * The first byte picks the kind (bits 0-1: SOCKS4, SOCKS5, HTTP CONNECT,
 * SOCKS4 again), credentials (bit 2), a target name sent to the proxy
 * (bit 3, SOCKS4a and socks5h) or an IPv6 target (bit 4, SOCKS5 and
 * HTTP); the second the largest chunk.  begin() writes the request, then
 * the rest of the input arrives as the proxy's reply, chunk by chunk, the
 * way the chain runner in dial.c hands it over.  Checked: a failure is
 * PST_STAGE_PROXY and says why; after DONE the input holds exactly the
 * bytes that followed the reply (they belong to the next layer: an SMTP
 * greeting); nothing is drained that was not sent.
 */
#include <string.h>

#include <event2/buffer.h>

#include "common/err.h"
#include "net/dial.h"
#include "net/proxy.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	const struct pst_proxy_ops *ops;
	struct pst_hop hop;
	struct pst_err err;
	struct evbuffer *evin, *out;
	enum pst_step step = PST_STEP_MORE;
	const char *host;
	const uint8_t *start;
	size_t maxchunk, chunk, added = 0, left;
	void *ctx;
	uint8_t mode;

	mode = fuzz_byte(&in, 0);
	maxchunk = (size_t)fuzz_byte(&in, 255) + 1;
	start = in.p;

	memset(&hop, 0, sizeof(hop));
	strcpy(hop.host, "127.0.0.1");
	hop.port = 1080;
	switch (mode & 3) {
	case 1:
		hop.kind = PST_HOP_SOCKS5;
		ops = &pst_socks5_ops;
		break;
	case 2:
		hop.kind = PST_HOP_HTTP;
		ops = &pst_httpc_ops;
		break;
	default:
		hop.kind = PST_HOP_SOCKS4;
		ops = &pst_socks4_ops;
		break;
	}
	if (mode & 4) {
		strcpy(hop.user, "alice");
		strcpy(hop.password, "s3cret:pw");
	}
	host = "192.0.2.25";
	if (mode & 8) {
		hop.remote_resolve = true;
		host = "smtp.example.org";
	} else if ((mode & 0x10) && ops != &pst_socks4_ops)
		host = "2001:db8::25";
	if (hop.kind == PST_HOP_HTTP)
		hop.remote_resolve = true;

	if ((ctx = calloc(1, ops->ctx_size)) == NULL ||
	    (evin = evbuffer_new()) == NULL || (out = evbuffer_new()) == NULL)
		abort();
	pst_err_clear(&err);
	FUZZ_CHECK(ops->begin(ctx, &hop, host, 25, out, &err) == 0);
	FUZZ_CHECK(evbuffer_get_length(out) > 0);
	while (in.len > 0) {
		chunk = maxchunk < in.len ? maxchunk : in.len;
		FUZZ_CHECK(evbuffer_add(evin, in.p, chunk) == 0);
		in.p += chunk;
		in.len -= chunk;
		added += chunk;
		evbuffer_drain(out, evbuffer_get_length(out));
		pst_err_clear(&err);
		step = ops->input(ctx, evin, out, &err);
		left = evbuffer_get_length(evin);
		FUZZ_CHECK(left <= added);
		if (step == PST_STEP_FAIL) {
			FUZZ_CHECK(err.stage == PST_STAGE_PROXY);
			FUZZ_CHECK(err.cls == PST_TEMP ||
			    err.cls == PST_LOCAL || err.cls == PST_OK);
			FUZZ_CHECK(err.text[0] != '\0');
			break;
		}
		if (step == PST_STEP_DONE) {
			/* What follows the reply is left, untouched. */
			FUZZ_CHECK(left == 0 || memcmp(evbuffer_pullup(evin,
			    -1), start + added - left, left) == 0);
			break;
		}
		FUZZ_CHECK(step == PST_STEP_MORE);
		/* The runner gives up on a proxy that talks too much. */
		if (left > PST_PROXY_REPLY_MAX)
			break;
	}
	free(ctx);
	evbuffer_free(evin);
	evbuffer_free(out);
	return 0;
}
