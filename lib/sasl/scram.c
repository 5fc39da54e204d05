/*
 * scram.c: SCRAM-SHA-256 (RFC 7677, on RFC 5802), client side, without
 * channel binding (GS2 header "n,,").
 *
 *   client-first   n,,n=USER,r=CNONCE                     (initial response)
 *   server-first   r=CNONCE+SNONCE,s=SALT,i=ITERATIONS    -> client-final
 *   client-final   c=biws,r=CNONCE+SNONCE,p=PROOF
 *   server-final   v=SERVER-SIGNATURE                     -> empty response
 *
 * The server's signature must verify before the exchange counts as done:
 * that is what makes SCRAM mutual.  A server that says 235 without it is
 * refused.  The salted password and the keys derived from it live only
 * inside one step and are wiped; the state keeps the expected server
 * signature and the AuthMessage, nothing from which the password follows
 * cheaply.
 *
 * XXX The user name and password are used as UTF-8 bytes without SASLprep
 * (RFC 4013); ASCII ones are unaffected, others may not match a server
 * that prepares them.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sasl/mech.h"

#define SCRAM_HASH_LEN		32	/* SHA-256 */
#define SCRAM_NONCE_BYTES	15	/* 120 bits: 20 base64 characters */
#define SCRAM_NONCE_LEN		(4 * SCRAM_NONCE_BYTES / 3)
#define SCRAM_SALT_MAX		128
#define SCRAM_AUTH_MAX		4096

/*
 * RFC 7677 §4 wants at least 4096 iterations; fewer would make a rogue
 * server's offline attack on the proof cheap.  The ceiling bounds the
 * time PBKDF2 holds the caller's thread, the event loop: about 20 ms per
 * 100000 iterations on a current x86 core, so 120 ms at most, once per
 * connection.  XXX move PBKDF2 to the worker pool if that ever shows.
 */
#define SCRAM_ITER_MIN		4096
#define SCRAM_ITER_MAX		600000

enum scram_state {
	SCRAM_ST_FIRST_SENT,	/* waiting for the server-first message */
	SCRAM_ST_FINAL_SENT,	/* waiting for the server-final message */
	SCRAM_ST_VERIFIED,	/* the server proved itself; wants 235 */
	SCRAM_ST_FAILED,	/* a step failed; nothing more is answered */
	SCRAM_ST__COUNT
};

static const char *const scram_state_names[] = {
	"first-sent", "final-sent", "verified", "failed",
};
_Static_assert(sizeof(scram_state_names) / sizeof(scram_state_names[0]) ==
    SCRAM_ST__COUNT, "a name for every SCRAM state");

struct scram {
	const struct pst_creds	*creds;
	enum scram_state	 state;
	char			 cnonce[SCRAM_NONCE_LEN + 1];
	unsigned char		 server_sig[SCRAM_HASH_LEN];
	size_t			 auth_len;
	char			 auth[SCRAM_AUTH_MAX];	/* AuthMessage */
};

static int	scram_start(void *, const struct pst_creds *,
		    pst_sasl_random_fn, void *, unsigned char *, size_t *,
		    struct pst_err *);
static int	scram_step(void *, const unsigned char *, size_t,
		    unsigned char *, size_t *, struct pst_err *);
static int	scram_done(void *, const unsigned char *, size_t,
		    struct pst_err *);
static void	scram_clear(void *);
static int	scram_auth_add(struct scram *, const void *, size_t,
		    struct pst_err *);
static int	scram_attr(const unsigned char *, size_t, size_t *, char,
		    const unsigned char **, size_t *);
static int	scram_server_first(struct scram *, const unsigned char *,
		    size_t, unsigned char *, size_t *, struct pst_err *);
static int	scram_server_final(struct scram *, const unsigned char *,
		    size_t, struct pst_err *);
static int	scram_fail(struct scram *, struct pst_err *, const char *);
static const char *scram_state_name(enum scram_state);
static void	scram_set_state(struct scram *, enum scram_state);

static const char *
scram_state_name(enum scram_state state)
{
	return state < SCRAM_ST__COUNT ? scram_state_names[state] : "?";
}

/* The one place the exchange changes state. */
static void
scram_set_state(struct scram *sc, enum scram_state state)
{
	sc->state = state;
}

static int
scram_fail(struct scram *sc, struct pst_err *err, const char *why)
{
	scram_set_state(sc, SCRAM_ST_FAILED);
	return pst_err_set(err, PST_TEMP, PST_STAGE_AUTH, "SCRAM-SHA-256: %s",
	    why);
}

static int
scram_auth_add(struct scram *sc, const void *p, size_t len,
    struct pst_err *err)
{
	if (len > sizeof(sc->auth) - sc->auth_len)
		return scram_fail(sc, err, "messages too long");
	memcpy(sc->auth + sc->auth_len, p, len);
	sc->auth_len += len;
	return 0;
}

/*
 * Reads the attribute at '*off' of 'msg' (RFC 5802 §5.1: a letter, '=',
 * a value up to the next ',').  When it is 'name', points '*val' at the
 * value, moves '*off' past the ',' and returns 0; else returns -1 and
 * leaves '*off' alone.
 */
static int
scram_attr(const unsigned char *msg, size_t len, size_t *off, char name,
    const unsigned char **val, size_t *vlen)
{
	const unsigned char *comma;
	size_t start = *off;

	if (len - start < 2 || msg[start] != (unsigned char)name ||
	    msg[start + 1] != '=')
		return -1;
	*val = msg + start + 2;
	comma = memchr(*val, ',', len - start - 2);
	*vlen = comma != NULL ? (size_t)(comma - *val) : len - start - 2;
	*off = start + 2 + *vlen + (comma != NULL ? 1 : 0);
	return 0;
}

static int
scram_start(void *st, const struct pst_creds *creds, pst_sasl_random_fn rnd,
    void *rnd_arg, unsigned char *out, size_t *outlen, struct pst_err *err)
{
	struct scram *sc = st;
	unsigned char nonce[SCRAM_NONCE_BYTES];
	const char *u;
	size_t start;

	sc->creds = creds;
	scram_set_state(sc, SCRAM_ST_FIRST_SENT);
	sc->auth_len = 0;
	if (rnd(rnd_arg, nonce, sizeof(nonce)) == -1) {
		scram_set_state(sc, SCRAM_ST_FAILED);
		return pst_err_set(err, PST_LOCAL, PST_STAGE_AUTH,
		    "SCRAM-SHA-256: no random bytes for the nonce");
	}
	/* Base64 has no ',' so the nonce is a valid "printable" value. */
	EVP_EncodeBlock((unsigned char *)sc->cnonce, nonce, sizeof(nonce));
	OPENSSL_cleanse(nonce, sizeof(nonce));

	*outlen = 0;
	if (pst_sasl_append(out, outlen, "n,,", 3, err) == -1)
		return -1;
	start = *outlen;
	if (pst_sasl_append(out, outlen, "n=", 2, err) == -1)
		return -1;
	/* RFC 5802 §5.1: ',' and '=' in a name are escaped as =2C, =3D. */
	for (u = creds->user; *u != '\0'; u++) {
		const char *enc = *u == ',' ? "=2C" : *u == '=' ? "=3D" : u;
		size_t enclen = *u == ',' || *u == '=' ? 3 : 1;

		if (pst_sasl_append(out, outlen, enc, enclen, err) == -1)
			return -1;
	}
	if (pst_sasl_append(out, outlen, ",r=", 3, err) == -1 ||
	    pst_sasl_append(out, outlen, sc->cnonce, SCRAM_NONCE_LEN,
	    err) == -1)
		return -1;
	/* The AuthMessage starts with client-first-message-bare. */
	return scram_auth_add(sc, out + start, *outlen - start, err);
}

static int
scram_server_first(struct scram *sc, const unsigned char *msg, size_t len,
    unsigned char *out, size_t *outlen, struct pst_err *err)
{
	static const char ckey_label[] = "Client Key";
	static const char skey_label[] = "Server Key";
	unsigned char salt[SCRAM_SALT_MAX];
	unsigned char salted[SCRAM_HASH_LEN], ckey[SCRAM_HASH_LEN];
	unsigned char stored[SCRAM_HASH_LEN], csig[SCRAM_HASH_LEN];
	unsigned char skey[SCRAM_HASH_LEN], proof[SCRAM_HASH_LEN];
	char proof64[4 * ((SCRAM_HASH_LEN + 2) / 3) + 1];
	const unsigned char *nonce, *salt64, *iter;
	size_t off = 0, noncelen, salt64len, iterlen, saltlen, i;
	unsigned int hlen;
	unsigned long iterations = 0;
	const char *why;
	int rc = -1;

	for (i = 0; i < len; i++) {
		if (msg[i] < 0x20 || msg[i] > 0x7e)
			return scram_fail(sc, err,
			    "server-first message is not printable");
	}
	if (len >= 2 && msg[0] == 'e' && msg[1] == '=')
		return scram_fail(sc, err, "server error in server-first");
	/* RFC 5802 §5.1: an "m" extension we do not know must fail. */
	if (len >= 2 && msg[0] == 'm' && msg[1] == '=')
		return scram_fail(sc, err,
		    "server requires an unknown extension (m=)");
	if (scram_attr(msg, len, &off, 'r', &nonce, &noncelen) == -1 ||
	    scram_attr(msg, len, &off, 's', &salt64, &salt64len) == -1 ||
	    scram_attr(msg, len, &off, 'i', &iter, &iterlen) == -1)
		return scram_fail(sc, err, "malformed server-first message");
	if (noncelen <= SCRAM_NONCE_LEN ||
	    memcmp(nonce, sc->cnonce, SCRAM_NONCE_LEN) != 0 ||
	    memchr(nonce, ' ', noncelen) != NULL)
		return scram_fail(sc, err,
		    "server nonce does not extend ours");
	if (iterlen == 0 || iterlen > 9 || iter[0] == '0')
		return scram_fail(sc, err, "bad iteration count");
	for (i = 0; i < iterlen; i++) {
		if (iter[i] < '0' || iter[i] > '9')
			return scram_fail(sc, err, "bad iteration count");
		iterations = iterations * 10 + (unsigned long)(iter[i] - '0');
	}
	if (iterations < SCRAM_ITER_MIN)
		return scram_fail(sc, err,
		    "iteration count below 4096 (RFC 7677 §4)");
	if (iterations > SCRAM_ITER_MAX)
		return scram_fail(sc, err, "iteration count too high");
	if (pst_sasl_b64_decode((const char *)salt64, salt64len, salt,
	    sizeof(salt), &saltlen, &why) == -1 || saltlen == 0)
		return scram_fail(sc, err, "bad salt");

	/* AuthMessage = client-first-bare "," server-first "," final-bare */
	*outlen = 0;
	if (scram_auth_add(sc, ",", 1, err) == -1 ||
	    scram_auth_add(sc, msg, len, err) == -1 ||
	    scram_auth_add(sc, ",", 1, err) == -1)
		return -1;
	if (pst_sasl_append(out, outlen, "c=biws,r=", 9, err) == -1 ||
	    pst_sasl_append(out, outlen, nonce, noncelen, err) == -1 ||
	    scram_auth_add(sc, out, *outlen, err) == -1)
		return -1;

	/* RFC 5802 §3. */
	if (PKCS5_PBKDF2_HMAC(sc->creds->secret,
	    (int)strlen(sc->creds->secret), salt, (int)saltlen,
	    (int)iterations, EVP_sha256(), sizeof(salted), salted) != 1 ||
	    HMAC(EVP_sha256(), salted, sizeof(salted),
	    (const unsigned char *)ckey_label, sizeof(ckey_label) - 1, ckey,
	    &hlen) == NULL ||
	    EVP_Digest(ckey, sizeof(ckey), stored, NULL, EVP_sha256(),
	    NULL) != 1 ||
	    HMAC(EVP_sha256(), stored, sizeof(stored),
	    (const unsigned char *)sc->auth, sc->auth_len, csig,
	    &hlen) == NULL ||
	    HMAC(EVP_sha256(), salted, sizeof(salted),
	    (const unsigned char *)skey_label, sizeof(skey_label) - 1, skey,
	    &hlen) == NULL ||
	    HMAC(EVP_sha256(), skey, sizeof(skey),
	    (const unsigned char *)sc->auth, sc->auth_len, sc->server_sig,
	    &hlen) == NULL) {
		scram_set_state(sc, SCRAM_ST_FAILED);
		pst_err_set(err, PST_LOCAL, PST_STAGE_AUTH,
		    "SCRAM-SHA-256: SHA-256 or PBKDF2 is not available");
		goto out;
	}
	for (i = 0; i < SCRAM_HASH_LEN; i++)
		proof[i] = ckey[i] ^ csig[i];
	EVP_EncodeBlock((unsigned char *)proof64, proof, sizeof(proof));
	if (pst_sasl_append(out, outlen, ",p=", 3, err) == -1 ||
	    pst_sasl_append(out, outlen, proof64, strlen(proof64),
	    err) == -1)
		goto out;
	scram_set_state(sc, SCRAM_ST_FINAL_SENT);
	rc = 0;
out:
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(ckey, sizeof(ckey));
	OPENSSL_cleanse(stored, sizeof(stored));
	OPENSSL_cleanse(csig, sizeof(csig));
	OPENSSL_cleanse(skey, sizeof(skey));
	OPENSSL_cleanse(proof, sizeof(proof));
	OPENSSL_cleanse(proof64, sizeof(proof64));
	return rc;
}

static int
scram_server_final(struct scram *sc, const unsigned char *msg, size_t len,
    struct pst_err *err)
{
	unsigned char sig[SCRAM_HASH_LEN + 3];
	const unsigned char *val;
	size_t off = 0, vlen, siglen;
	const char *why;
	char text[128];

	if (scram_attr(msg, len, &off, 'e', &val, &vlen) == 0) {
		/* RFC 5802 §7: server-error-value, e.g. "invalid-proof". */
		if (vlen > sizeof(text) - 1)
			vlen = sizeof(text) - 1;
		memcpy(text, val, vlen);
		text[vlen] = '\0';
		scram_set_state(sc, SCRAM_ST_FAILED);
		return pst_err_set(err, PST_TEMP, PST_STAGE_AUTH,
		    "SCRAM-SHA-256: server error: %s", text);
	}
	if (scram_attr(msg, len, &off, 'v', &val, &vlen) == -1)
		return scram_fail(sc, err, "malformed server-final message");
	if (pst_sasl_b64_decode((const char *)val, vlen, sig, sizeof(sig),
	    &siglen, &why) == -1 || siglen != SCRAM_HASH_LEN ||
	    CRYPTO_memcmp(sig, sc->server_sig, SCRAM_HASH_LEN) != 0)
		return scram_fail(sc, err,
		    "the server signature does not verify: the server does "
		    "not know the password");
	scram_set_state(sc, SCRAM_ST_VERIFIED);
	return 0;
}

static int
scram_step(void *st, const unsigned char *chal, size_t chal_len,
    unsigned char *out, size_t *outlen, struct pst_err *err)
{
	struct scram *sc = st;
	char why[64];
	int rc;

	*outlen = 0;
	switch (sc->state) {
	case SCRAM_ST_FIRST_SENT:
		rc = scram_server_first(sc, chal, chal_len, out, outlen, err);
		break;
	case SCRAM_ST_FINAL_SENT:
		/* RFC 4954 §4: the last server message gets an empty line. */
		rc = scram_server_final(sc, chal, chal_len, err);
		break;
	case SCRAM_ST_VERIFIED:
	case SCRAM_ST_FAILED:
	default:
		snprintf(why, sizeof(why), "unexpected challenge (state %s)",
		    scram_state_name(sc->state));
		return scram_fail(sc, err, why);
	}
	if (rc == -1)
		scram_set_state(sc, SCRAM_ST_FAILED);
	return rc;
}

static int
scram_done(void *st, const unsigned char *extra, size_t extra_len,
    struct pst_err *err)
{
	struct scram *sc = st;

	/* A signature in the text of the 235 must verify like one in a 334. */
	if (sc->state == SCRAM_ST_FINAL_SENT && extra != NULL &&
	    extra_len >= 2 && extra[0] == 'v' && extra[1] == '=')
		return scram_server_final(sc, extra, extra_len, err);
	if (sc->state != SCRAM_ST_VERIFIED)
		return pst_err_set(err, PST_TEMP, PST_STAGE_AUTH,
		    "SCRAM-SHA-256: the server accepted us without proving "
		    "that it knows the password");
	return 0;
}

static void
scram_clear(void *st)
{
	OPENSSL_cleanse(st, sizeof(struct scram));
}

const struct pst_sasl_mech pst_sasl_mech_scram_sha_256 = {
	.name = "SCRAM-SHA-256",
	.bit = PST_SASL_SCRAM_SHA_256,
	.strength = 50,
	.flags = PST_SASL_F_CHALLENGE | PST_SASL_F_MUTUAL | PST_SASL_F_INITIAL,
	.state_size = sizeof(struct scram),
	.start = scram_start,
	.step = scram_step,
	.done = scram_done,
	.clear = scram_clear,
};
