/*
 * policy.h: what postern accepts from a TLS peer.
 *
 * A struct pst_tls_policy is plain data that the daemon fills from its
 * configuration (lib/ never reads the config file).  pst_tls_ctx_new()
 * (ctx.h) checks it and turns it into an SSL_CTX for the upstream client:
 * protocol versions, cipher lists, trust anchors, client certificate.
 * The same policy is handed to pst_tls_upgrade() (upgrade.h) for what is
 * decided per connection: the peer name and the fingerprint pins.
 *
 * Trust, in order:
 *   - pins given: the peer is accepted if and only if the SHA-256 of its
 *     certificate (DER) or of its public key (SubjectPublicKeyInfo, DER)
 *     equals one of the pins.  Pinning replaces CA trust, as msmtp's
 *     tls_fingerprint does: a pinned self-signed certificate is accepted,
 *     and neither the chain, the name nor the dates are checked.
 *   - verify on (the default): the chain must lead to a trusted CA
 *     (ca_file / ca_path, else the system store) and the certificate must
 *     name the peer (DNS name, or IP address for an IP literal).
 *   - verify off: any certificate is accepted; the result of the check is
 *     still reported (struct pst_tls_info.verified).
 *
 * Computing a pin ("sha256:" followed by the digest):
 *   certificate: openssl x509 -in CERT -noout -fingerprint -sha256
 *   public key:  openssl x509 -in CERT -noout -pubkey |
 *                openssl pkey -pubin -outform DER | openssl dgst -sha256 -c
 * A failed handshake also reports both (struct pst_tls_info).
 *
 * Protocol versions: OpenSSL 3 refuses TLSv1 and TLSv1.1 at security
 * level 1 and above (the default is 1; Debian builds it with 2): their
 * handshakes need SHA-1 or MD5 signatures.  They are "unsupported" unless
 * the policy sets security_level 0 itself.  postern never lowers the level
 * on its own: level 0 also admits weak keys and signatures.
 */
#ifndef PST_TLS_POLICY_H
#define PST_TLS_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

struct pst_err;

/* Protocol versions, as bits of pst_tls_policy.versions. */
#define PST_TLS_V1		0x01u	/* TLSv1 (1.0) */
#define PST_TLS_V1_1		0x02u	/* TLSv1.1 */
#define PST_TLS_V1_2		0x04u	/* TLSv1.2 */
#define PST_TLS_V1_3		0x08u	/* TLSv1.3 */
#define PST_TLS_V_ALL		0x0fu
#define PST_TLS_V_DEFAULT	(PST_TLS_V1_2 | PST_TLS_V1_3)

#define PST_TLS_PINS_MAX	16	/* fingerprints per policy */
#define PST_TLS_PATH_MAX	4096	/* ca_file, ca_path, cert, key */
#define PST_TLS_CIPHERS_MAX	2048	/* ciphers, ciphersuites */
#define PST_TLS_NAME_MAX	253	/* server_name, peer names */

/* "sha256:" and 32 bytes as colon-separated hex pairs, plus NUL. */
#define PST_TLS_FP_STRLEN	(7 + 32 * 3 - 1)
#define PST_TLS_FP_BUFSIZE	(PST_TLS_FP_STRLEN + 1)

/* What to do with a version this OpenSSL cannot do. */
enum pst_tls_vpolicy {
	PST_TLS_DOWNGRADE = 0,	/* drop it, say so in the report */
	PST_TLS_STRICT,		/* refuse to build the context */
};

/*
 * A NULL pointer means "not set".  The strings are read by
 * pst_tls_ctx_new() and pst_tls_upgrade() and never kept.
 */
struct pst_tls_policy {
	unsigned		  versions;	/* PST_TLS_V* bits */
	enum pst_tls_vpolicy	  vpolicy;
	bool			  verify;	/* check chain and name */
	const char		 *ca_file;	/* PEM bundle, or NULL */
	const char		 *ca_path;	/* hashed directory */
	const char		 *server_name;	/* SNI and name check */
	const char *const	 *pins;		/* "sha256:AB:CD:..." */
	size_t			  npins;
	const char		 *cert;		/* client cert (PEM) */
	const char		 *key;		/* NULL: in cert */
	const char		 *ciphers;	/* TLSv1.2 and older */
	const char		 *ciphersuites;	/* TLSv1.3, or NULL */
	int			  security_level; /* 0-5; -1: OpenSSL's */
};

/* One parsed fingerprint pin. */
struct pst_tls_pin {
	unsigned char	sha256[32];
};

/*
 * pst_tls_policy_init()
 * Fills 'p' with the defaults: TLSv1.2 and TLSv1.3, downgrade, verify on,
 * the system trust store, no pins, no client certificate, OpenSSL's cipher
 * lists and security level.  Every pointer is NULL.
 */
void	pst_tls_policy_init(struct pst_tls_policy *p);

/*
 * pst_tls_version_parse()
 * Maps a version name to its PST_TLS_V* bit: "TLSv1" (or "TLSv1.0"),
 * "TLSv1.1", "TLSv1.2", "TLSv1.3", case-insensitively.  Returns 0, or -1
 * with '*why' saying what is wrong ("SSLv3 is not supported", "unknown TLS
 * version").  '*bit' is untouched on failure.
 */
int	pst_tls_version_parse(const char *name, unsigned *bit,
	    const char **why);

/*
 * pst_tls_version_name()
 * "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3" for one bit; "?" otherwise.
 */
const char *pst_tls_version_name(unsigned bit);

/*
 * pst_tls_versions_format()
 * The names of the bits in 'mask', oldest first, separated by ", ", into
 * 'buf' (always NUL terminated, "none" for an empty set).  Returns 'buf'.
 */
char	*pst_tls_versions_format(unsigned mask, char *buf, size_t len);

/*
 * pst_tls_pin_parse()
 * Parses a pin: "sha256:" (any case) followed by the 32 bytes of a SHA-256
 * digest, either as 32 colon-separated hex pairs ("AB:CD:...", the form
 * `openssl x509 -fingerprint -sha256` prints) or as 64 hex digits.  The
 * digest may be that of the certificate (DER) or of its public key
 * (SubjectPublicKeyInfo, DER); a pin matches either.  Returns 0, or -1
 * with '*why' naming the problem ("missing \"sha256:\" prefix", "SHA-1
 * fingerprints are not accepted, give the SHA-256 one", "not a hex digit",
 * "too short: a SHA-256 fingerprint has 32 bytes", ...).
 */
int	pst_tls_pin_parse(const char *s, struct pst_tls_pin *pin,
	    const char **why);

/*
 * pst_tls_fp_format()
 * Writes a 32-byte digest as "sha256:AB:CD:..." into 'buf', which should
 * hold PST_TLS_FP_BUFSIZE bytes (shorter buffers get a cut, NUL terminated
 * string).  Returns 'buf'.  The output parses back with
 * pst_tls_pin_parse().
 */
char	*pst_tls_fp_format(const unsigned char sha256[32], char *buf,
	    size_t len);

#endif /* PST_TLS_POLICY_H */
