/*
 * plain.c: PLAIN (RFC 4616), always with an initial response:
 * authzid NUL authcid NUL passwd, the authzid empty (we act as ourselves).
 * The password crosses the wire, base64 aside: needs TLS unless allowed.
 * There is nothing to answer afterwards, so any challenge is an error.
 */
#include <string.h>

#include "sasl/mech.h"

static int	plain_start(void *, const struct pst_creds *,
		    pst_sasl_random_fn, void *, unsigned char *, size_t *,
		    struct pst_err *);
static int	plain_step(void *, const unsigned char *, size_t,
		    unsigned char *, size_t *, struct pst_err *);

static int
plain_start(void *st, const struct pst_creds *creds, pst_sasl_random_fn rnd,
    void *rnd_arg, unsigned char *out, size_t *outlen, struct pst_err *err)
{
	*outlen = 0;
	if (pst_sasl_append(out, outlen, "", 1, err) == -1 ||
	    pst_sasl_append(out, outlen, creds->user, strlen(creds->user),
	    err) == -1 ||
	    pst_sasl_append(out, outlen, "", 1, err) == -1 ||
	    pst_sasl_append(out, outlen, creds->secret, strlen(creds->secret),
	    err) == -1)
		return -1;
	return 0;
}

static int
plain_step(void *st, const unsigned char *chal, size_t chal_len,
    unsigned char *out, size_t *outlen, struct pst_err *err)
{
	return pst_err_set(err, PST_TEMP, PST_STAGE_AUTH,
	    "PLAIN: unexpected challenge after the initial response");
}

const struct pst_sasl_mech pst_sasl_mech_plain = {
	.name = "PLAIN",
	.bit = PST_SASL_PLAIN,
	.strength = 30,
	.flags = PST_SASL_F_CLEARTEXT | PST_SASL_F_INITIAL,
	.state_size = 0,
	.start = plain_start,
	.step = plain_step,
	.done = NULL,
	.clear = NULL,
};
