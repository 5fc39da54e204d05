/*
 * login.c: LOGIN (draft-murchison-sasl-login-00), the obsolete mechanism
 * many servers still offer.  No initial response: the server asks twice
 * ("Username:", then "Password:") and gets the user name, then the
 * password.  The prompts are not read: servers word them differently,
 * and the order is what the draft fixes.  A third challenge is an error.
 */
#include <string.h>

#include "sasl/mech.h"

struct login {
	const struct pst_creds	*creds;
	unsigned		 asked;		/* challenges answered */
};

static int	login_start(void *, const struct pst_creds *,
		    pst_sasl_random_fn, void *, unsigned char *, size_t *,
		    struct pst_err *);
static int	login_step(void *, const unsigned char *, size_t,
		    unsigned char *, size_t *, struct pst_err *);

static int
login_start(void *st, const struct pst_creds *creds, pst_sasl_random_fn rnd,
    void *rnd_arg, unsigned char *out, size_t *outlen, struct pst_err *err)
{
	struct login *l = st;

	l->creds = creds;
	l->asked = 0;
	*outlen = 0;
	return 0;
}

static int
login_step(void *st, const unsigned char *chal, size_t chal_len,
    unsigned char *out, size_t *outlen, struct pst_err *err)
{
	struct login *l = st;
	const char *answer;

	*outlen = 0;
	switch (l->asked++) {
	case 0:
		answer = l->creds->user;
		break;
	case 1:
		answer = l->creds->secret;
		break;
	default:
		return pst_err_set(err, PST_TEMP, PST_STAGE_AUTH,
		    "LOGIN: unexpected third challenge");
	}
	return pst_sasl_append(out, outlen, answer, strlen(answer), err);
}

const struct pst_sasl_mech pst_sasl_mech_login = {
	.name = "LOGIN",
	.bit = PST_SASL_LOGIN,
	.strength = 20,
	.flags = PST_SASL_F_CLEARTEXT,
	.state_size = sizeof(struct login),
	.start = login_start,
	.step = login_step,
	.done = NULL,
	.clear = NULL,
};
