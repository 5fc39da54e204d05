/*
 * cram_md5.c: CRAM-MD5 (RFC 2195).  No initial response; the server sends
 * one challenge and gets "user SP hex(HMAC-MD5(password, challenge))",
 * lower-case hex.  The password never crosses the wire, but the server
 * must keep it in clear, and MD5 is weak: SCRAM-SHA-256 is preferred.
 * A second challenge, or an empty one, is an error.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/codec.h"
#include "sasl/mech.h"

#define CRAM_MD5_LEN	16

struct cram_md5 {
	const struct pst_creds	*creds;
	unsigned		 asked;		/* challenges answered */
};

static int	cram_md5_start(void *, const struct pst_creds *,
		    pst_sasl_random_fn, void *, unsigned char *, size_t *,
		    struct pst_err *);
static int	cram_md5_step(void *, const unsigned char *, size_t,
		    unsigned char *, size_t *, struct pst_err *);

static int
cram_md5_start(void *st, const struct pst_creds *creds,
    pst_sasl_random_fn rnd, void *rnd_arg, unsigned char *out,
    size_t *outlen, struct pst_err *err)
{
	struct cram_md5 *c = st;

	c->creds = creds;
	c->asked = 0;
	*outlen = 0;
	return 0;
}

static int
cram_md5_step(void *st, const unsigned char *chal, size_t chal_len,
    unsigned char *out, size_t *outlen, struct pst_err *err)
{
	struct cram_md5 *c = st;
	unsigned char mac[CRAM_MD5_LEN];
	char digest[2 * CRAM_MD5_LEN + 1];
	unsigned int maclen = 0;
	int rc;

	*outlen = 0;
	if (c->asked++ > 0)
		return pst_err_set(err, PST_TEMP, PST_STAGE_AUTH,
		    "CRAM-MD5: unexpected second challenge");
	if (chal_len == 0)
		return pst_err_set(err, PST_TEMP, PST_STAGE_AUTH,
		    "CRAM-MD5: empty challenge");
	if (HMAC(EVP_md5(), c->creds->secret, (int)strlen(c->creds->secret),
	    chal, chal_len, mac, &maclen) == NULL || maclen != CRAM_MD5_LEN)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_AUTH,
		    "CRAM-MD5: HMAC-MD5 is not available");
	pst_hex_encode(digest, mac, CRAM_MD5_LEN, false);
	rc = 0;
	if (pst_sasl_append(out, outlen, c->creds->user,
	    strlen(c->creds->user), err) == -1 ||
	    pst_sasl_append(out, outlen, " ", 1, err) == -1 ||
	    pst_sasl_append(out, outlen, digest, 2 * CRAM_MD5_LEN, err) == -1)
		rc = -1;
	OPENSSL_cleanse(mac, sizeof(mac));
	OPENSSL_cleanse(digest, sizeof(digest));
	return rc;
}

const struct pst_sasl_mech pst_sasl_mech_cram_md5 = {
	.name = "CRAM-MD5",
	.bit = PST_SASL_CRAM_MD5,
	.strength = 40,
	.flags = PST_SASL_F_CHALLENGE,
	.state_size = sizeof(struct cram_md5),
	.start = cram_md5_start,
	.step = cram_md5_step,
	.done = NULL,
	.clear = NULL,
};
