/*
 * sasl.h: SASL mechanisms for SMTP AUTH (RFC 4954), client side.
 *
 * The mechanisms live in one table, strongest first:
 *
 *   SCRAM-SHA-256  RFC 5802, RFC 7677  challenge-response; the server
 *                                      proves it knows the password too
 *   CRAM-MD5       RFC 2195            challenge-response
 *   PLAIN          RFC 4616            the password in clear (authzid empty)
 *   LOGIN          draft-murchison-sasl-login: the password in clear
 *   XOAUTH2        Google / Microsoft  an OAuth 2.0 bearer token in clear
 *
 * The mechanisms that send the secret in clear need TLS unless the caller
 * allows plaintext in so many words.  XOAUTH2 takes a token, every other
 * mechanism a password (struct pst_creds says which one the caller holds).
 *
 * An exchange is a struct pst_sasl.  It writes the SMTP lines itself (the
 * AUTH command, then one base64 line per 334 challenge) into the output
 * evbuffer the caller hands it, and checks the 334 challenges it is given:
 * the mechanisms work on raw bytes, base64 is handled here, once.
 *
 * The library never reads a password file: the caller fills struct
 * pst_creds.  Secrets held by an exchange are wiped with OPENSSL_cleanse()
 * when it is freed.
 */
#ifndef PST_SASL_H
#define PST_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

struct evbuffer;
struct pst_reply;

/* One bit per mechanism, for the EHLO list and the configured allow list. */
enum pst_sasl_bit {
	PST_SASL_SCRAM_SHA_256 = 1u << 0,
	PST_SASL_CRAM_MD5 = 1u << 1,
	PST_SASL_PLAIN = 1u << 2,
	PST_SASL_LOGIN = 1u << 3,
	PST_SASL_XOAUTH2 = 1u << 4,
};

/* Every mechanism postern implements: the default allow list. */
#define PST_SASL_ALL	0x1fu

/* Mechanism flags. */
#define PST_SASL_F_CLEARTEXT	0x01u	/* the secret crosses the wire */
#define PST_SASL_F_CHALLENGE	0x02u	/* challenge-response */
#define PST_SASL_F_MUTUAL	0x04u	/* the server proves itself */
#define PST_SASL_F_TOKEN	0x08u	/* takes a token, not a password */
#define PST_SASL_F_INITIAL	0x10u	/* sends an initial response */

/* Longest user name and secret an exchange accepts, in bytes. */
#define PST_SASL_USER_MAX	255
#define PST_SASL_SECRET_MAX	4096

/* Longest raw (decoded) message in either direction. */
#define PST_SASL_MSG_MAX	8192

enum pst_creds_kind {
	PST_CREDS_PASSWORD = 0,	/* a password: every mechanism but XOAUTH2 */
	PST_CREDS_TOKEN,	/* an OAuth 2.0 access token: XOAUTH2 only */
};

/*
 * Credentials, filled by the caller.  Both strings are NUL terminated and
 * must stay valid and unchanged until the exchange using them is freed.
 * The library copies what it must and wipes its copies.
 */
struct pst_creds {
	const char		*user;
	const char		*secret;
	enum pst_creds_kind	 kind;
};

/*
 * Random bytes for nonces.  Fills 'len' bytes of 'buf' and returns 0, or
 * returns -1 when no randomness can be had.  The default is RAND_bytes().
 */
typedef int	(*pst_sasl_random_fn)(void *arg, unsigned char *buf,
		    size_t len);

/*
 * A mechanism.  The name, bit, strength and flags are for callers; the
 * operations are driven by struct pst_sasl, never called directly.  They
 * work on raw bytes and write at most PST_SASL_MSG_MAX bytes to 'out'.
 *   start  sets up the state and, with PST_SASL_F_INITIAL, makes the
 *          initial response.
 *   step   answers one decoded challenge.
 *   done   says whether the exchange may end now (after 235): 0 or -1.
 *   clear  wipes the state.
 */
struct pst_sasl_mech {
	const char	*name;
	unsigned	 bit;
	int		 strength;	/* higher is stronger */
	unsigned	 flags;
	size_t		 state_size;
	int		(*start)(void *st, const struct pst_creds *creds,
			    pst_sasl_random_fn rnd, void *rnd_arg,
			    unsigned char *out, size_t *outlen,
			    struct pst_err *err);
	int		(*step)(void *st, const unsigned char *chal,
			    size_t chal_len, unsigned char *out,
			    size_t *outlen, struct pst_err *err);
	int		(*done)(void *st, const unsigned char *extra,
			    size_t extra_len, struct pst_err *err);
	void		(*clear)(void *st);
};

/*
 * Choosing a mechanism.
 */

/*
 * pst_sasl_creds_mask()
 * The mechanisms 'creds' can feed: all but XOAUTH2 for a password,
 * XOAUTH2 alone for a token.  AND it into the allow list given to
 * pst_sasl_choose() and pst_sasl_next():
 *     allowed = cfg_allowed & pst_sasl_creds_mask(&creds);
 */
unsigned pst_sasl_creds_mask(const struct pst_creds *creds);

/*
 * pst_sasl_usable()
 * Whether 'mech' may be used: the server offers it ('server_mask', from
 * EHLO), it is allowed ('allowed_mask'), and, when it sends the secret in
 * clear, TLS is active or 'allow_plaintext' is set.
 */
bool	pst_sasl_usable(const struct pst_sasl_mech *mech, unsigned server_mask,
	    unsigned allowed_mask, bool tls_active, bool allow_plaintext);

/*
 * pst_sasl_choose()
 * The strongest usable mechanism, or NULL when there is none; then
 * pst_sasl_why_none() says why.
 */
const struct pst_sasl_mech *pst_sasl_choose(unsigned server_mask,
	    unsigned allowed_mask, bool tls_active, bool allow_plaintext);

/*
 * pst_sasl_next()
 * After 'failed' was refused with reply code 'code' (0: the exchange
 * failed on our side), the mechanism to try next on the same connection,
 * or NULL to give up.  The rule:
 *   504  the server does not know the mechanism after all: the next
 *        weaker usable one (the secret was not tried).
 *   535  after a challenge-response mechanism, the strongest usable one
 *        that is not challenge-response: a server may announce CRAM-MD5
 *        or SCRAM yet keep only password hashes it cannot use for them.
 *        After a cleartext mechanism, NULL: the server saw the secret and
 *        refused it, and another try only feeds its lockout counter.
 *        So a wrong password costs at most two failed logins.
 *   other  NULL: 454 and other 4xx are temporary, 534 and 538 will not
 *        get better with a weaker mechanism, and a failure on our side
 *        (a bad challenge, a server signature that does not verify) may
 *        be an attack that wants us to fall back.
 * Never returns 'failed' or a stronger mechanism, so a loop ends.
 */
const struct pst_sasl_mech *pst_sasl_next(const struct pst_sasl_mech *failed,
	    int code, unsigned server_mask, unsigned allowed_mask,
	    bool tls_active, bool allow_plaintext);

/*
 * pst_sasl_why_none()
 * Fills 'err' (PST_LOCAL, stage AUTH) with why pst_sasl_choose() found
 * nothing: the server offers no AUTH, nothing it offers is allowed, or
 * what is left sends the password in clear without TLS.  The text names
 * both lists.  Returns -1.
 */
int	pst_sasl_why_none(unsigned server_mask, unsigned allowed_mask,
	    bool tls_active, bool allow_plaintext, struct pst_err *err);

/*
 * Names.
 */

/*
 * pst_sasl_by_name()
 * The mechanism called 'name' ('len' bytes, not necessarily NUL
 * terminated), case-insensitive, or NULL.
 */
const struct pst_sasl_mech *pst_sasl_by_name(const char *name, size_t len);

/*
 * pst_sasl_by_bit()
 * The mechanism of one bit, or NULL.
 */
const struct pst_sasl_mech *pst_sasl_by_bit(unsigned bit);

/*
 * pst_sasl_mask_parse()
 * ORs the bits of 'n' names (config spelling, case-insensitive) into
 * '*mask' (which it first sets to 0).  Returns 0, or -1 with 'err'
 * (PST_LOCAL, stage CONFIG) naming the first unknown name and the known
 * ones.  An empty list is an error too: nothing could be used.
 */
int	pst_sasl_mask_parse(const char *const *names, size_t n,
	    unsigned *mask, struct pst_err *err);

/*
 * pst_sasl_mask_format()
 * The names of the bits in 'mask', strongest first, separated by spaces
 * ("SCRAM-SHA-256 PLAIN"), or "none", into 'buf' (cut to fit, always NUL
 * terminated).  Returns 'buf'.
 */
char	*pst_sasl_mask_format(unsigned mask, char *buf, size_t len);

/*
 * The exchange.
 *
 *   s = pst_sasl_new(mech, &creds, &err);
 *   pst_sasl_start(s, out, &err);          AUTH NAME [initial-response]
 *   on 334: pst_sasl_step(s, reply, out, &err)
 *   on 235: pst_sasl_done(s, reply, &err)  (SCRAM: server verified?)
 *   on anything else: the exchange failed (pst_sasl_next() may help)
 *   pst_sasl_free(s);
 *
 * When step() fails the caller should cancel with "*" CRLF (RFC 4954 §4)
 * and expect a 501, or drop the connection.
 */
struct pst_sasl;

/*
 * pst_sasl_new()
 * A new exchange for 'mech' with 'creds' (kept by pointer).  NULL with
 * 'err' (PST_LOCAL, stage AUTH) when the credentials do not fit the
 * mechanism (a password for XOAUTH2, a token for the others, a user name
 * or secret empty or too long) or memory is short.
 */
struct pst_sasl	*pst_sasl_new(const struct pst_sasl_mech *mech,
		    const struct pst_creds *creds, struct pst_err *err);

/*
 * pst_sasl_set_random()
 * Replaces the random source for nonces.  For tests: call before start.
 */
void	pst_sasl_set_random(struct pst_sasl *s, pst_sasl_random_fn fn,
	    void *arg);

/*
 * pst_sasl_mech()
 * The mechanism of an exchange.
 */
const struct pst_sasl_mech *pst_sasl_mech(const struct pst_sasl *s);

/*
 * pst_sasl_start()
 * Appends the AUTH command line, with the initial response when the
 * mechanism has one (RFC 4954 §4: "=" for an empty one), to 'out'.
 * Returns 0, or -1 with 'err' (PST_LOCAL, stage AUTH) when it cannot (no
 * randomness, called twice) and nothing appended.
 */
int	pst_sasl_start(struct pst_sasl *s, struct evbuffer *out,
	    struct pst_err *err);

/*
 * pst_sasl_step()
 * Answers the 334 reply 'r': decodes its base64 challenge, lets the
 * mechanism answer and appends the base64 response line to 'out' (an
 * empty line for an empty response).  Returns 0, or -1 with 'err' (stage
 * AUTH) and nothing appended:
 *   PST_TEMP  the challenge is not a single 334 line of valid base64 of
 *             at most PST_SASL_MSG_MAX bytes, or makes no sense to the
 *             mechanism (more steps than it has, wrong nonce, missing
 *             attribute), or the SCRAM server signature does not verify
 *             or the server sent a SCRAM error ("e=...", in the text).
 *   PST_LOCAL the response would not fit.
 * The response may hold the secret: 'out' should be the connection's
 * output buffer, not a log.
 */
int	pst_sasl_step(struct pst_sasl *s, const struct pst_reply *r,
	    struct evbuffer *out, struct pst_err *err);

/*
 * pst_sasl_done()
 * Called with the 235 reply 'r': checks that the exchange is complete.
 * For SCRAM-SHA-256 the server must have proved that it knows the
 * password (its signature came in a 334 and verified, or comes as base64
 * in the text of 'r').  Returns 0, or -1 with 'err' (PST_TEMP, stage AUTH):
 * the server said yes without proving itself; do not trust the session.
 */
int	pst_sasl_done(struct pst_sasl *s, const struct pst_reply *r,
	    struct pst_err *err);

/*
 * pst_sasl_free()
 * Wipes the exchange's secrets and frees it.  NULL is fine.
 */
void	pst_sasl_free(struct pst_sasl *s);

/*
 * Base64 (RFC 4648 §4, with padding), as SMTP AUTH puts it on the wire.
 */

/*
 * pst_sasl_b64_encode()
 * Appends the base64 form of 'len' bytes of 'in' to 'out'.  Returns 0, or
 * -1 when memory is short.
 */
int	pst_sasl_b64_encode(const unsigned char *in, size_t len,
	    struct evbuffer *out);

/*
 * pst_sasl_b64_decode()
 * Decodes 'len' characters of 'in' into 'out' of 'outmax' bytes and sets
 * '*outlen'.  Strict: only the base64 alphabet, a length that is a
 * multiple of 4, '=' only as one or two final pad characters.  An empty
 * input decodes to nothing.  Returns 0, or -1 with '*why' set to a static
 * phrase ("not base64", "too long") and 'out' wiped.
 */
int	pst_sasl_b64_decode(const char *in, size_t len, unsigned char *out,
	    size_t outmax, size_t *outlen, const char **why);

#endif /* PST_SASL_H */
