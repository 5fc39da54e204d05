/*
 * xoauth2.c: XOAUTH2, the OAuth 2.0 bearer token mechanism of Google and
 * Microsoft: one initial response "user=U^Aauth=Bearer TOKEN^A^A".
 * When the token is refused the server sends one 334 challenge holding a
 * JSON error; the client answers with an empty response and the server
 * then fails the exchange with a 5xx that the caller reports.  The token
 * crosses the wire in clear: needs TLS unless allowed.
 */
#include <string.h>

#include "sasl/mech.h"

struct xoauth2 {
	unsigned	 asked;		/* challenges answered */
};

static int	xoauth2_start(void *, const struct pst_creds *,
		    pst_sasl_random_fn, void *, unsigned char *, size_t *,
		    struct pst_err *);
static int	xoauth2_step(void *, const unsigned char *, size_t,
		    unsigned char *, size_t *, struct pst_err *);

static int
xoauth2_start(void *st, const struct pst_creds *creds, pst_sasl_random_fn rnd,
    void *rnd_arg, unsigned char *out, size_t *outlen, struct pst_err *err)
{
	*outlen = 0;
	if (pst_sasl_append(out, outlen, "user=", 5, err) == -1 ||
	    pst_sasl_append(out, outlen, creds->user, strlen(creds->user),
	    err) == -1 ||
	    pst_sasl_append(out, outlen, "\001auth=Bearer ", 13, err) == -1 ||
	    pst_sasl_append(out, outlen, creds->secret, strlen(creds->secret),
	    err) == -1 ||
	    pst_sasl_append(out, outlen, "\001\001", 2, err) == -1)
		return -1;
	return 0;
}

static int
xoauth2_step(void *st, const unsigned char *chal, size_t chal_len,
    unsigned char *out, size_t *outlen, struct pst_err *err)
{
	struct xoauth2 *x = st;

	*outlen = 0;
	if (x->asked++ > 0)
		return pst_err_set(err, PST_TEMP, PST_STAGE_AUTH,
		    "XOAUTH2: unexpected second challenge");
	return 0;
}

const struct pst_sasl_mech pst_sasl_mech_xoauth2 = {
	.name = "XOAUTH2",
	.bit = PST_SASL_XOAUTH2,
	.strength = 10,
	.flags = PST_SASL_F_CLEARTEXT | PST_SASL_F_TOKEN | PST_SASL_F_INITIAL,
	.state_size = sizeof(struct xoauth2),
	.start = xoauth2_start,
	.step = xoauth2_step,
	.done = NULL,
	.clear = NULL,
};
