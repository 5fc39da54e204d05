/*
 * sasl.c: the mechanism table, the choice between mechanisms, and the
 * exchange that turns raw mechanism messages into SMTP AUTH lines.
 *
 * The table is ordered strongest first; choosing is a walk down it, and
 * falling back after a failure only ever walks further down, so a chain
 * of failures ends.  Base64 lives here and nowhere else: a mechanism sees
 * the decoded challenge and returns the raw response.  Every buffer that
 * held a secret or a response is wiped after use; the exchange's buffers
 * are its own (heap, fixed size), so nothing secret is left on the stack
 * of a caller.  What the output evbuffer holds is the caller's to care
 * about: it goes to the wire.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "sasl/mech.h"
#include "sasl/sasl.h"
#include "smtp/reply.h"

/* Base64 of a full message, the AUTH verb, the name, SP and CRLF. */
#define SASL_LINE_MAX	(4 * ((PST_SASL_MSG_MAX + 2) / 3) + 64)

#define NELEMS(a)	(sizeof(a) / sizeof((a)[0]))

static const struct pst_sasl_mech *const mechs[] = {
	&pst_sasl_mech_scram_sha_256,
	&pst_sasl_mech_cram_md5,
	&pst_sasl_mech_plain,
	&pst_sasl_mech_login,
	&pst_sasl_mech_xoauth2,
};

struct pst_sasl {
	const struct pst_sasl_mech	*mech;
	const struct pst_creds		*creds;
	pst_sasl_random_fn		 rnd;
	void				*rnd_arg;
	bool				 started;
	unsigned char			 chal[PST_SASL_MSG_MAX];
	unsigned char			 resp[PST_SASL_MSG_MAX];
	char				 line[SASL_LINE_MAX];
	alignas(max_align_t) unsigned char state[];
};

static int	sasl_random(void *, unsigned char *, size_t);
static size_t	sasl_index(const struct pst_sasl_mech *);
static int	sasl_check_creds(const struct pst_sasl_mech *,
		    const struct pst_creds *, struct pst_err *);
static int	sasl_emit(struct pst_sasl *, int, size_t, const char *,
		    size_t, struct evbuffer *, struct pst_err *);
static void	sasl_wipe(struct pst_sasl *);

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/*
 * Table.
 */

static size_t
sasl_index(const struct pst_sasl_mech *mech)
{
	size_t i;

	for (i = 0; i < NELEMS(mechs); i++) {
		if (mechs[i] == mech)
			return i;
	}
	return NELEMS(mechs);
}

const struct pst_sasl_mech *
pst_sasl_by_name(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < NELEMS(mechs); i++) {
		if (strlen(mechs[i]->name) == len &&
		    strncasecmp(mechs[i]->name, name, len) == 0)
			return mechs[i];
	}
	return NULL;
}

const struct pst_sasl_mech *
pst_sasl_by_bit(unsigned bit)
{
	size_t i;

	for (i = 0; i < NELEMS(mechs); i++) {
		if (mechs[i]->bit == bit)
			return mechs[i];
	}
	return NULL;
}

int
pst_sasl_mask_parse(const char *const *names, size_t n, unsigned *mask,
    struct pst_err *err)
{
	const struct pst_sasl_mech *mech;
	char known[128];
	size_t i;

	*mask = 0;
	pst_sasl_mask_format(PST_SASL_ALL, known, sizeof(known));
	if (n == 0)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_CONFIG,
		    "the list of SASL mechanisms is empty (known: %s)", known);
	for (i = 0; i < n; i++) {
		mech = pst_sasl_by_name(names[i], strlen(names[i]));
		if (mech == NULL)
			return pst_err_set(err, PST_LOCAL, PST_STAGE_CONFIG,
			    "unknown SASL mechanism \"%.64s\" (known: %s)",
			    names[i], known);
		*mask |= mech->bit;
	}
	return 0;
}

char *
pst_sasl_mask_format(unsigned mask, char *buf, size_t len)
{
	size_t i, off = 0;
	bool any = false;
	int n;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	for (i = 0; i < NELEMS(mechs); i++) {
		if ((mask & mechs[i]->bit) == 0)
			continue;
		any = true;
		n = snprintf(buf + off, len - off, "%s%s", off > 0 ? " " : "",
		    mechs[i]->name);
		if (n < 0 || (size_t)n >= len - off) {
			buf[off] = '\0';
			break;
		}
		off += (size_t)n;
	}
	if (!any)
		snprintf(buf, len, "none");
	return buf;
}

/*
 * Choice.
 */

unsigned
pst_sasl_creds_mask(const struct pst_creds *creds)
{
	unsigned mask = 0;
	size_t i;

	for (i = 0; i < NELEMS(mechs); i++) {
		if (((mechs[i]->flags & PST_SASL_F_TOKEN) != 0) ==
		    (creds->kind == PST_CREDS_TOKEN))
			mask |= mechs[i]->bit;
	}
	return mask;
}

bool
pst_sasl_usable(const struct pst_sasl_mech *mech, unsigned server_mask,
    unsigned allowed_mask, bool tls_active, bool allow_plaintext)
{
	if (mech == NULL || (server_mask & mech->bit) == 0 ||
	    (allowed_mask & mech->bit) == 0)
		return false;
	if ((mech->flags & PST_SASL_F_CLEARTEXT) != 0 && !tls_active &&
	    !allow_plaintext)
		return false;
	return true;
}

const struct pst_sasl_mech *
pst_sasl_choose(unsigned server_mask, unsigned allowed_mask,
    bool tls_active, bool allow_plaintext)
{
	size_t i;

	for (i = 0; i < NELEMS(mechs); i++) {
		if (pst_sasl_usable(mechs[i], server_mask, allowed_mask,
		    tls_active, allow_plaintext))
			return mechs[i];
	}
	return NULL;
}

const struct pst_sasl_mech *
pst_sasl_next(const struct pst_sasl_mech *failed, int code,
    unsigned server_mask, unsigned allowed_mask, bool tls_active,
    bool allow_plaintext)
{
	size_t i;

	if (failed == NULL)
		return NULL;
	/* RFC 4954 §4: 504 is "unrecognized authentication type". */
	if (code == 504) {
		for (i = sasl_index(failed) + 1; i < NELEMS(mechs); i++) {
			if (pst_sasl_usable(mechs[i], server_mask,
			    allowed_mask, tls_active, allow_plaintext))
				return mechs[i];
		}
		return NULL;
	}
	/* RFC 4954 §6: 535 is "authentication credentials invalid". */
	if (code != 535 || (failed->flags & PST_SASL_F_CHALLENGE) == 0)
		return NULL;
	for (i = sasl_index(failed) + 1; i < NELEMS(mechs); i++) {
		if ((mechs[i]->flags & PST_SASL_F_CHALLENGE) == 0 &&
		    pst_sasl_usable(mechs[i], server_mask, allowed_mask,
		    tls_active, allow_plaintext))
			return mechs[i];
	}
	return NULL;
}

int
pst_sasl_why_none(unsigned server_mask, unsigned allowed_mask,
    bool tls_active, bool allow_plaintext, struct pst_err *err)
{
	char offered[128], allowed[128];

	pst_sasl_mask_format(server_mask, offered, sizeof(offered));
	pst_sasl_mask_format(allowed_mask, allowed, sizeof(allowed));
	if (server_mask == 0)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_AUTH,
		    "the server offers no authentication mechanism postern "
		    "knows (allowed: %s)", allowed);
	if ((server_mask & allowed_mask) == 0)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_AUTH,
		    "no authentication mechanism in common: the server "
		    "offers %s, the configuration allows %s", offered,
		    allowed);
	if (!tls_active && !allow_plaintext)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_AUTH,
		    "the mechanisms both sides allow (%s) would send the "
		    "password in clear over an unencrypted connection: use "
		    "TLS or set allow_plaintext",
		    pst_sasl_mask_format(server_mask & allowed_mask, offered,
		    sizeof(offered)));
	return pst_err_set(err, PST_LOCAL, PST_STAGE_AUTH,
	    "no usable authentication mechanism (server offers %s, "
	    "allowed %s)", offered, allowed);
}

/*
 * Exchange.
 */

static int
sasl_random(void *arg, unsigned char *buf, size_t len)
{
	if (len > INT_MAX || RAND_bytes(buf, (int)len) != 1)
		return -1;
	return 0;
}

static int
sasl_check_creds(const struct pst_sasl_mech *mech,
    const struct pst_creds *creds, struct pst_err *err)
{
	size_t ulen, slen, i;

	if ((mech->flags & PST_SASL_F_TOKEN) != 0 &&
	    creds->kind != PST_CREDS_TOKEN)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_AUTH,
		    "%s needs an OAuth 2.0 token, not a password", mech->name);
	if ((mech->flags & PST_SASL_F_TOKEN) == 0 &&
	    creds->kind != PST_CREDS_PASSWORD)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_AUTH,
		    "%s needs a password, not a token", mech->name);
	if (creds->user == NULL || (ulen = strlen(creds->user)) == 0)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_AUTH,
		    "no user name to authenticate with");
	if (creds->secret == NULL || (slen = strlen(creds->secret)) == 0)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_AUTH,
		    "no %s to authenticate with",
		    creds->kind == PST_CREDS_TOKEN ? "token" : "password");
	if (ulen > PST_SASL_USER_MAX)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_AUTH,
		    "user name longer than %d bytes", PST_SASL_USER_MAX);
	if (slen > PST_SASL_SECRET_MAX)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_AUTH,
		    "%s longer than %d bytes",
		    creds->kind == PST_CREDS_TOKEN ? "token" : "password",
		    PST_SASL_SECRET_MAX);
	/*
	 * Control characters in a user name would be separators for some
	 * mechanism (XOAUTH2 uses ^A) and are never meant.  A token is
	 * printable by definition (RFC 6750 §2.1).
	 */
	for (i = 0; i < ulen; i++) {
		if (iscntrl((unsigned char)creds->user[i]))
			return pst_err_set(err, PST_LOCAL, PST_STAGE_AUTH,
			    "control character in the user name");
	}
	if (creds->kind == PST_CREDS_TOKEN) {
		for (i = 0; i < slen; i++) {
			if (iscntrl((unsigned char)creds->secret[i]) ||
			    creds->secret[i] == ' ')
				return pst_err_set(err, PST_LOCAL,
				    PST_STAGE_AUTH,
				    "space or control character in the token");
		}
	}
	return 0;
}

struct pst_sasl *
pst_sasl_new(const struct pst_sasl_mech *mech, const struct pst_creds *creds,
    struct pst_err *err)
{
	struct pst_sasl *s;

	if (mech == NULL) {
		pst_err_set(err, PST_LOCAL, PST_STAGE_AUTH,
		    "no SASL mechanism given");
		return NULL;
	}
	if (sasl_check_creds(mech, creds, err) == -1)
		return NULL;
	if ((s = calloc(1, sizeof(*s) + mech->state_size)) == NULL) {
		pst_err_sys(err, PST_LOCAL, PST_STAGE_AUTH, ENOMEM,
		    "cannot start %s", mech->name);
		return NULL;
	}
	s->mech = mech;
	s->creds = creds;
	s->rnd = sasl_random;
	return s;
}

void
pst_sasl_set_random(struct pst_sasl *s, pst_sasl_random_fn fn, void *arg)
{
	s->rnd = fn != NULL ? fn : sasl_random;
	s->rnd_arg = fn != NULL ? arg : NULL;
}

const struct pst_sasl_mech *
pst_sasl_mech(const struct pst_sasl *s)
{
	return s->mech;
}

static void
sasl_wipe(struct pst_sasl *s)
{
	OPENSSL_cleanse(s->chal, sizeof(s->chal));
	OPENSSL_cleanse(s->resp, sizeof(s->resp));
	OPENSSL_cleanse(s->line, sizeof(s->line));
}

/*
 * Appends 'prefix', the base64 of the response resp[0..len) and CRLF to
 * 'out' in one piece, so that a failure leaves 'out' as it was.  Modes:
 * 'initial' -1 for no response at all ("AUTH LOGIN"), 1 for an initial
 * response (RFC 4954 §4: "=" when it is empty), 0 for the answer to a
 * challenge (an empty line when it is empty).
 */
static int
sasl_emit(struct pst_sasl *s, int initial, size_t len, const char *prefix,
    size_t prefixlen, struct evbuffer *out, struct pst_err *err)
{
	size_t n = prefixlen;
	int rc = 0;

	memcpy(s->line, prefix, prefixlen);
	if (initial >= 0 && len > 0) {
		n += (size_t)EVP_EncodeBlock((unsigned char *)s->line + n,
		    s->resp, (int)len);
	} else if (initial == 1) {
		s->line[n++] = '=';
	}
	s->line[n++] = '\r';
	s->line[n++] = '\n';
	if (evbuffer_add(out, s->line, n) == -1)
		rc = pst_err_set(err, PST_LOCAL, PST_STAGE_AUTH,
		    "out of memory sending %s", s->mech->name);
	sasl_wipe(s);
	return rc;
}

int
pst_sasl_start(struct pst_sasl *s, struct evbuffer *out, struct pst_err *err)
{
	char prefix[64];
	size_t len = 0;
	int n;

	if (s->started)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_AUTH,
		    "%s exchange started twice", s->mech->name);
	s->started = true;
	if (s->mech->start(s->state, s->creds, s->rnd, s->rnd_arg, s->resp,
	    &len, err) == -1) {
		sasl_wipe(s);
		return -1;
	}
	if ((s->mech->flags & PST_SASL_F_INITIAL) == 0) {
		n = snprintf(prefix, sizeof(prefix), "AUTH %s", s->mech->name);
		return sasl_emit(s, -1, 0, prefix, (size_t)n, out, err);
	}
	n = snprintf(prefix, sizeof(prefix), "AUTH %s ", s->mech->name);
	return sasl_emit(s, 1, len, prefix, (size_t)n, out, err);
}

int
pst_sasl_step(struct pst_sasl *s, const struct pst_reply *r,
    struct evbuffer *out, struct pst_err *err)
{
	const char *text, *why;
	size_t textlen, chal_len = 0, len = 0;

	if (!s->started)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_AUTH,
		    "%s challenge before the exchange started", s->mech->name);
	if (r->code != 334 || r->nlines != 1)
		return pst_err_set(err, PST_TEMP, PST_STAGE_AUTH,
		    "%s: the server's challenge is not a single 334 line",
		    s->mech->name);
	text = pst_reply_line(r, 0);
	textlen = pst_reply_line_len(r, 0);
	while (textlen > 0 && text[textlen - 1] == ' ')
		textlen--;
	if (pst_sasl_b64_decode(text, textlen, s->chal, sizeof(s->chal),
	    &chal_len, &why) == -1)
		return pst_err_set(err, PST_TEMP, PST_STAGE_AUTH,
		    "%s: the server's challenge is %s: \"%.64s\"",
		    s->mech->name, why, text);
	if (s->mech->step(s->state, s->chal, chal_len, s->resp, &len,
	    err) == -1) {
		sasl_wipe(s);
		return -1;
	}
	return sasl_emit(s, 0, len, "", 0, out, err);
}

int
pst_sasl_done(struct pst_sasl *s, const struct pst_reply *r,
    struct pst_err *err)
{
	const char *text, *why;
	size_t textlen, extra_len = 0;
	int rc;

	if (s->mech->done == NULL)
		return 0;
	/*
	 * A server may put the final message of the mechanism in the text
	 * of the 235 rather than in a last 334.  Text that is not base64
	 * is no such message.
	 */
	text = r->nlines == 1 ? pst_reply_line(r, 0) : "";
	textlen = strlen(text);
	if (pst_sasl_b64_decode(text, textlen, s->chal, sizeof(s->chal),
	    &extra_len, &why) == -1)
		extra_len = 0;
	rc = s->mech->done(s->state, extra_len > 0 ? s->chal : NULL,
	    extra_len, err);
	sasl_wipe(s);
	return rc;
}

void
pst_sasl_free(struct pst_sasl *s)
{
	if (s == NULL)
		return;
	if (s->mech->clear != NULL)
		s->mech->clear(s->state);
	OPENSSL_cleanse(s->state, s->mech->state_size);
	sasl_wipe(s);
	free(s);
}

int
pst_sasl_append(unsigned char *out, size_t *off, const void *src, size_t len,
    struct pst_err *err)
{
	if (len > PST_SASL_MSG_MAX - *off)
		return pst_err_set(err, PST_LOCAL, PST_STAGE_AUTH,
		    "SASL message longer than %d bytes", PST_SASL_MSG_MAX);
	memcpy(out + *off, src, len);
	*off += len;
	return 0;
}

/*
 * Base64.
 */

int
pst_sasl_b64_encode(const unsigned char *in, size_t len, struct evbuffer *out)
{
	struct evbuffer_iovec v;
	size_t need;
	int n;

	if (len == 0)
		return 0;
	if (len > (size_t)INT_MAX / 4 * 3 - 3)
		return -1;
	need = 4 * ((len + 2) / 3) + 1;
	if (evbuffer_reserve_space(out, (ev_ssize_t)need, &v, 1) != 1)
		return -1;
	n = EVP_EncodeBlock(v.iov_base, in, (int)len);
	v.iov_len = (size_t)n;
	return evbuffer_commit_space(out, &v, 1);
}

/*
 * EVP_DecodeBlock() skips surrounding blanks, accepts bytes it should
 * not, and writes whole groups including the bytes that stand for
 * padding.  So the alphabet and the padding are checked here first, the
 * last group goes through a small buffer, and the count is corrected.
 */
int
pst_sasl_b64_decode(const char *in, size_t len, unsigned char *out,
    size_t outmax, size_t *outlen, const char **why)
{
	unsigned char last[3];
	size_t i, pad = 0, groups, full;

	*outlen = 0;
	if (len == 0)
		return 0;
	if (len % 4 != 0) {
		*why = "not base64";
		return -1;
	}
	if (in[len - 1] == '=')
		pad++;
	if (in[len - 2] == '=')
		pad++;
	for (i = 0; i < len - pad; i++) {
		if (in[i] == '\0' || strchr(b64_alphabet, in[i]) == NULL) {
			*why = "not base64";
			return -1;
		}
	}
	groups = len / 4;
	if (groups * 3 - pad > outmax) {
		*why = "too long";
		return -1;
	}
	full = groups - 1;
	if (full > 0 && len - 4 > INT_MAX) {
		*why = "too long";
		return -1;
	}
	if (full > 0 &&
	    EVP_DecodeBlock(out, (const unsigned char *)in, (int)(full * 4)) !=
	    (int)(full * 3))
		goto bad;
	if (EVP_DecodeBlock(last, (const unsigned char *)in + full * 4, 4) !=
	    3)
		goto bad;
	memcpy(out + full * 3, last, 3 - pad);
	OPENSSL_cleanse(last, sizeof(last));
	*outlen = groups * 3 - pad;
	return 0;
bad:
	OPENSSL_cleanse(out, outmax);
	*why = "not base64";
	return -1;
}
