/*
 * mech.h: inside lib/sasl only.  The mechanism tables each file defines,
 * and the helpers they share.  Callers outside lib/sasl use sasl.h.
 */
#ifndef PST_SASL_MECH_H
#define PST_SASL_MECH_H

#include <stddef.h>

#include "sasl/sasl.h"

extern const struct pst_sasl_mech pst_sasl_mech_scram_sha_256;
extern const struct pst_sasl_mech pst_sasl_mech_cram_md5;
extern const struct pst_sasl_mech pst_sasl_mech_plain;
extern const struct pst_sasl_mech pst_sasl_mech_login;
extern const struct pst_sasl_mech pst_sasl_mech_xoauth2;

/*
 * pst_sasl_append()
 * Appends 'len' bytes of 'src' to 'out' at '*off', bounded by
 * PST_SASL_MSG_MAX.  Returns 0, or -1 with 'err' (PST_LOCAL, stage AUTH)
 * when the message would not fit.
 */
int	pst_sasl_append(unsigned char *out, size_t *off, const void *src,
	    size_t len, struct pst_err *err);

#endif /* PST_SASL_MECH_H */
