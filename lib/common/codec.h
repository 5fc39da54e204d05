/*
 * codec.h: the small byte codecs every part of postern shares, each
 * written once: FNV-1a 64, CRC-32C, hex, percent-decoding, UTF-8
 * validation and JSON string escaping.
 *
 * No allocation (except an evbuffer's growth), no globals.
 */
#ifndef PST_CODEC_H
#define PST_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct evbuffer;

/*
 * FNV-1a 64 (Fowler, Noll, Vo; draft-eastlake-fnv), offset basis and
 * prime as the reference defines them.  pst_fnv1a64_more() continues a
 * hash from state 'h': pst_fnv1a64(p, n) ==
 * pst_fnv1a64_more(PST_FNV1A64_BASIS, p, n).  Not a cryptographic hash.
 */
#define PST_FNV1A64_BASIS	UINT64_C(0xcbf29ce484222325)
#define PST_FNV1A64_PRIME	UINT64_C(0x100000001b3)

uint64_t	pst_fnv1a64(const void *p, size_t len);
uint64_t	pst_fnv1a64_more(uint64_t h, const void *p, size_t len);

/*
 * CRC-32C (Castagnoli: reflected polynomial 0x82f63b78, initial value
 * and final xor all ones; RFC 3720 B.4), the check of the spool's log
 * records.  pst_crc32c_more() continues from the CRC of what came
 * before: pst_crc32c(p, n) == pst_crc32c_more(0, p, n).  It uses the
 * processor's crc32 instruction where there is one and
 * pst_crc32c_portable(), four bits a step, where not; the tests hold
 * both to the same vectors.
 */
uint32_t	pst_crc32c(const void *p, size_t len);
uint32_t	pst_crc32c_more(uint32_t crc, const void *p, size_t len);
uint32_t	pst_crc32c_portable(uint32_t crc, const void *p, size_t len);

/*
 * Hex digits.  Which cases a decoder accepts is the caller's format's
 * business: the spool's %XX and ids are canonical (one case only), what a
 * user types is not.
 */
#define PST_HEX_UPPER	0x1
#define PST_HEX_LOWER	0x2
#define PST_HEX_ANY	(PST_HEX_UPPER | PST_HEX_LOWER)

/* The digit for the low 4 bits of 'v', upper or lower case. */
char	 pst_hex_digit(unsigned v, bool upper);

/* The value (0 to 15) of the digit 'c' in one of 'cases', or -1. */
int	 pst_hex_value(int c, int cases);

/*
 * Writes the 2 * 'len' digits of the bytes of 'src' and a NUL into 'dst'
 * (2 * 'len' + 1 bytes).  Returns 'dst'.
 */
char	*pst_hex_encode(char *dst, const void *src, size_t len, bool upper);

/*
 * Decodes the 'len' digits of 'src' (either case) into 'dst' of 'size'
 * bytes; '*outlen' gets the number of bytes.  Returns 0, or -1 with
 * '*why' set: "odd number of hex digits", "not a hex digit" or "too
 * long".
 */
int	 pst_hex_decode(void *dst, size_t size, const char *src, size_t len,
	    size_t *outlen, const char **why);

/*
 * Percent-decoding (RFC 3986 §2.1): "%" and two hex digits, either case,
 * stand for one byte; every other byte stands for itself.  Decodes the
 * 'len' bytes of 's' into 'out' of 'size' bytes, NUL-terminated, and
 * '*outlen' (if not NULL) gets the decoded length.  "%00" is refused: the
 * result is a C string.  What else the result may hold (controls, say)
 * is the caller's rule.
 */
enum pst_pct_rc {
	PST_PCT_OK = 0,
	PST_PCT_BAD_ESCAPE,	/* "%" without two hex digits after it */
	PST_PCT_NUL,		/* "%00" */
	PST_PCT_TOO_LONG,	/* the result and its NUL do not fit */
};

enum pst_pct_rc	pst_pct_decode(const char *s, size_t len, char *out,
		    size_t size, size_t *outlen);

/*
 * UTF-8 (RFC 3629 §4): the length of the well-formed sequence at 'p' ('n'
 * bytes available), or 0 for a byte that does not start one (overlong
 * forms, surrogates and code points above U+10FFFF are not well-formed).
 * pst_utf8_valid(): whether all 'len' bytes of 's' are.
 */
size_t	 pst_utf8_seq(const unsigned char *p, size_t n);
bool	 pst_utf8_valid(const char *s, size_t len);

/* Whether the string 's' holds a byte above 0x7F (8-bit text). */
bool	 pst_str_8bit(const char *s);

/*
 * JSON string contents (RFC 8259 §7), without the quotes: '"' and '\'
 * are escaped with a backslash; the bytes 0x00 to 0x1F and 0x7F become
 * \u00XX (lower-case hex); well-formed UTF-8 passes as it is; every byte
 * that is not part of a well-formed sequence becomes \ufffd, so the
 * output is always valid JSON in UTF-8 and never holds a raw control.
 *
 * pst_json_escape() writes into 'dst' of 'size' bytes the way snprintf()
 * does: cut to fit, NUL-terminated when 'size' > 0, and returns the
 * length the whole escaped text has.  pst_json_escape_evbuffer() appends
 * it to 'out', pst_json_escape_file() writes it to 'fp': both return 0,
 * or -1 when memory runs out or the write fails.
 */
size_t	 pst_json_escape(char *dst, size_t size, const char *s, size_t len);
int	 pst_json_escape_evbuffer(struct evbuffer *out, const char *s,
	    size_t len);
int	 pst_json_escape_file(FILE *fp, const char *s, size_t len);

#endif /* PST_CODEC_H */
