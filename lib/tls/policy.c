/*
 * policy.c: the TLS policy as values: defaults, version names and sets,
 * certificate pins and fingerprints.  ctx.c makes an OpenSSL context of
 * a policy.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/codec.h"
#include "common/err.h"
#include "tls/policy.h"
#include "tls/text.h"

/* The versions' names, oldest first; ctx.c has OpenSSL's numbers. */
static const struct {
	unsigned	 bit;
	const char	*name;
} versions[] = {
	{ PST_TLS_V1, "TLSv1" },
	{ PST_TLS_V1_1, "TLSv1.1" },
	{ PST_TLS_V1_2, "TLSv1.2" },
	{ PST_TLS_V1_3, "TLSv1.3" },
};
#define NVERSIONS	(sizeof(versions) / sizeof(versions[0]))

void
pst_tls_policy_init(struct pst_tls_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->versions = PST_TLS_V_DEFAULT;
	p->vpolicy = PST_TLS_DOWNGRADE;
	p->verify = true;
	p->security_level = -1;
}

int
pst_tls_version_parse(const char *name, unsigned *bit, const char **why)
{
	size_t i;

	if (name == NULL || name[0] == '\0') {
		*why = "empty TLS version name";
		return -1;
	}
	if (strcasecmp(name, "TLSv1.0") == 0) {
		*bit = PST_TLS_V1;
		return 0;
	}
	for (i = 0; i < NVERSIONS; i++) {
		if (strcasecmp(name, versions[i].name) == 0) {
			*bit = versions[i].bit;
			return 0;
		}
	}
	if (strncasecmp(name, "SSL", 3) == 0)
		*why = "SSL versions are not supported: use TLSv1.2 or TLSv1.3";
	else
		*why = "unknown TLS version: use TLSv1, TLSv1.1, TLSv1.2 or "
		    "TLSv1.3";
	return -1;
}

const char *
pst_tls_version_name(unsigned bit)
{
	size_t i;

	for (i = 0; i < NVERSIONS; i++) {
		if (versions[i].bit == bit)
			return versions[i].name;
	}
	return "?";
}

char *
pst_tls_versions_format(unsigned mask, char *buf, size_t len)
{
	size_t i;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	for (i = 0; i < NVERSIONS; i++) {
		if ((mask & versions[i].bit) == 0)
			continue;
		if (buf[0] != '\0')
			tls_strlcat(buf, ", ", len);
		tls_strlcat(buf, versions[i].name, len);
	}
	if (buf[0] == '\0')
		tls_strlcat(buf, "none", len);
	return buf;
}

int
pst_tls_pin_parse(const char *s, struct pst_tls_pin *pin, const char **why)
{
	struct pst_tls_pin out;
	const char *p;
	size_t n = 0;
	bool colons;
	int hi, lo;

	if (s == NULL || s[0] == '\0') {
		*why = "empty fingerprint";
		return -1;
	}
	if (strnlen(s, 256) >= 256) {
		*why = "too long for a SHA-256 fingerprint";
		return -1;
	}
	if (strncasecmp(s, "sha256:", 7) != 0) {
		if (strncasecmp(s, "sha1:", 5) == 0 ||
		    strncasecmp(s, "md5:", 4) == 0)
			*why = "SHA-1 and MD5 fingerprints are not accepted, "
			    "give the SHA-256 one";
		else
			*why = "missing \"sha256:\" prefix";
		return -1;
	}
	p = s + 7;
	colons = p[0] != '\0' && p[1] != '\0' && p[2] == ':';
	for (;;) {
		if (*p == '\0') {
			*why = n == 0 ? "no digits after \"sha256:\"" :
			    "ends with a colon";
			return -1;
		}
		hi = pst_hex_value((unsigned char)p[0], PST_HEX_ANY);
		lo = hi == -1 ? -1 :
		    pst_hex_value((unsigned char)p[1], PST_HEX_ANY);
		if (hi == -1 || lo == -1) {
			if (p[0] != '\0' && hi != -1 && p[1] == '\0')
				*why = "odd number of hex digits";
			else if (p[0] == ':' || (hi != -1 && p[1] == ':'))
				*why = "each byte needs two hex digits";
			else
				*why = "not a hex digit";
			return -1;
		}
		if (n == sizeof(out.sha256)) {
			*why = "too long: a SHA-256 fingerprint has 32 bytes";
			return -1;
		}
		out.sha256[n++] = (unsigned char)(hi << 4 | lo);
		p += 2;
		if (*p == '\0')
			break;
		if (colons) {
			if (*p != ':') {
				*why = pst_hex_value((unsigned char)*p,
				    PST_HEX_ANY) == -1 ?
				    "not a hex digit" :
				    "expected ':' between bytes";
				return -1;
			}
			p++;
		} else if (*p == ':') {
			*why = "colons must separate every byte or none";
			return -1;
		}
	}
	if (n != sizeof(out.sha256)) {
		*why = n == 20 ? "too short: 20 bytes is a SHA-1 fingerprint, "
		    "give the SHA-256 one" :
		    "too short: a SHA-256 fingerprint has 32 bytes";
		return -1;
	}
	*pin = out;
	return 0;
}

char *
pst_tls_fp_format(const unsigned char sha256[32], char *buf, size_t len)
{
	char tmp[PST_TLS_FP_BUFSIZE];
	size_t i, o;

	memcpy(tmp, "sha256:", 7);
	o = 7;
	for (i = 0; i < 32; i++) {
		if (i > 0)
			tmp[o++] = ':';
		tmp[o++] = pst_hex_digit(sha256[i] >> 4, true);
		tmp[o++] = pst_hex_digit(sha256[i], true);
	}
	tmp[o] = '\0';
	if (len > 0)
		snprintf(buf, len, "%s", tmp);
	return buf;
}
