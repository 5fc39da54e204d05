/*
 * codec.c: FNV-1a 64, CRC-32C, hex, percent-decoding, UTF-8 validation and JSON
 * string escaping, once for the whole tree.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "common/codec.h"

/*
 * FNV-1a 64.
 */

uint64_t
pst_fnv1a64_more(uint64_t h, const void *p, size_t len)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= b[i];
		h *= PST_FNV1A64_PRIME;
	}
	return h;
}

uint64_t
pst_fnv1a64(const void *p, size_t len)
{
	return pst_fnv1a64_more(PST_FNV1A64_BASIS, p, len);
}

/*
 * CRC-32C.
 */

/* The CRC of each 4-bit value, for the reflected polynomial. */
static const uint32_t crc32c_nibble[16] = {
	0x00000000, 0x105ec76f, 0x20bd8ede, 0x30e349b1,
	0x417b1dbc, 0x5125dad3, 0x61c69362, 0x7198540d,
	0x82f63b78, 0x92a8fc17, 0xa24bb5a6, 0xb21572c9,
	0xc38d26c4, 0xd3d3e1ab, 0xe330a81a, 0xf36e6f75,
};

uint32_t
pst_crc32c_portable(uint32_t crc, const void *p, size_t len)
{
	const unsigned char *b = p;
	size_t i;

	crc = ~crc;
	for (i = 0; i < len; i++) {
		crc ^= b[i];
		crc = (crc >> 4) ^ crc32c_nibble[crc & 0xf];
		crc = (crc >> 4) ^ crc32c_nibble[crc & 0xf];
	}
	return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_CRC32_INSN 1

/* SSE 4.2's crc32 computes exactly CRC-32C, eight bytes an instruction. */
__attribute__((target("sse4.2"))) static uint32_t
crc32c_insn(uint32_t crc, const void *p, size_t len)
{
	const unsigned char *b = p;
	uint64_t c = ~crc;
	uint64_t w;

	for (; len > 0 && ((uintptr_t)b & 7) != 0; len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *b++);
	for (; len >= 8; len -= 8, b += 8) {
		memcpy(&w, b, sizeof(w));
		c = __builtin_ia32_crc32di(c, w);
	}
	for (; len > 0; len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *b++);
	return ~(uint32_t)c;
}
#endif

uint32_t
pst_crc32c_more(uint32_t crc, const void *p, size_t len)
{
#ifdef HAVE_CRC32_INSN
	if (__builtin_cpu_supports("sse4.2"))
		return crc32c_insn(crc, p, len);
#endif
	return pst_crc32c_portable(crc, p, len);
}

uint32_t
pst_crc32c(const void *p, size_t len)
{
	return pst_crc32c_more(0, p, len);
}

/*
 * Hex.
 */

char
pst_hex_digit(unsigned v, bool upper)
{
	return (upper ? "0123456789ABCDEF" : "0123456789abcdef")[v & 0xf];
}

int
pst_hex_value(int c, int cases)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if ((cases & PST_HEX_LOWER) && c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if ((cases & PST_HEX_UPPER) && c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
pst_hex_encode(char *dst, const void *src, size_t len, bool upper)
{
	const unsigned char *b = src;
	size_t i;

	for (i = 0; i < len; i++) {
		dst[2 * i] = pst_hex_digit(b[i] >> 4, upper);
		dst[2 * i + 1] = pst_hex_digit(b[i], upper);
	}
	dst[2 * len] = '\0';
	return dst;
}

int
pst_hex_decode(void *dst, size_t size, const char *src, size_t len,
    size_t *outlen, const char **why)
{
	unsigned char *b = dst;
	size_t i;
	int hi, lo;

	for (i = 0; i < len; i += 2) {
		hi = pst_hex_value((unsigned char)src[i], PST_HEX_ANY);
		if (hi == -1) {
			*why = "not a hex digit";
			return -1;
		}
		if (i + 1 == len) {
			*why = "odd number of hex digits";
			return -1;
		}
		lo = pst_hex_value((unsigned char)src[i + 1], PST_HEX_ANY);
		if (lo == -1) {
			*why = "not a hex digit";
			return -1;
		}
		if (i / 2 >= size) {
			*why = "too long";
			return -1;
		}
		b[i / 2] = (unsigned char)(hi << 4 | lo);
	}
	*outlen = len / 2;
	return 0;
}

/*
 * Percent-decoding.
 */

enum pst_pct_rc
pst_pct_decode(const char *s, size_t len, char *out, size_t size,
    size_t *outlen)
{
	size_t i, n = 0;
	int hi, lo;
	char c;

	if (size == 0)
		return PST_PCT_TOO_LONG;
	for (i = 0; i < len; i++) {
		c = s[i];
		if (c == '%') {
			if (len - i < 3)
				return PST_PCT_BAD_ESCAPE;
			hi = pst_hex_value((unsigned char)s[i + 1], PST_HEX_ANY);
			lo = pst_hex_value((unsigned char)s[i + 2], PST_HEX_ANY);
			if (hi < 0 || lo < 0)
				return PST_PCT_BAD_ESCAPE;
			c = (char)(hi << 4 | lo);
			if (c == '\0')
				return PST_PCT_NUL;
			i += 2;
		}
		if (n + 1 >= size)
			return PST_PCT_TOO_LONG;
		out[n++] = c;
	}
	out[n] = '\0';
	if (outlen != NULL)
		*outlen = n;
	return PST_PCT_OK;
}

/*
 * UTF-8.
 */

size_t
pst_utf8_seq(const unsigned char *p, size_t n)
{
	size_t need, i;
	unsigned lo = 0x80, hi = 0xbf;

	if (n == 0)
		return 0;
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		need = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		need = 3;
		if (p[0] == 0xe0)
			lo = 0xa0;	/* overlong */
		else if (p[0] == 0xed)
			hi = 0x9f;	/* surrogates */
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		need = 4;
		if (p[0] == 0xf0)
			lo = 0x90;	/* overlong */
		else if (p[0] == 0xf4)
			hi = 0x8f;	/* above U+10FFFF */
	} else
		return 0;
	if (n < need)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < need; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return need;
}

bool
pst_str_8bit(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

bool
pst_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n;

	while (i < len) {
		if ((n = pst_utf8_seq(p + i, len - i)) == 0)
			return false;
		i += n;
	}
	return true;
}

/*
 * JSON strings.
 */

/*
 * The escaper: hands each piece of output to 'put', which the three entry
 * points below point at a caller buffer, an evbuffer or a stdio stream.
 */
typedef int (*json_put_fn)(void *, const char *, size_t);

static int
json_escape(const char *s, size_t len, json_put_fn put, void *arg)
{
	const unsigned char *p = (const unsigned char *)s;
	char esc[6];
	size_t i = 0, n;
	int rc = 0;

	while (i < len && rc == 0) {
		if (p[i] == '"' || p[i] == '\\') {
			esc[0] = '\\';
			esc[1] = (char)p[i];
			rc = put(arg, esc, 2);
			i++;
		} else if (p[i] < 0x20 || p[i] == 0x7f) {
			esc[0] = '\\';
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = pst_hex_digit(p[i] >> 4, false);
			esc[5] = pst_hex_digit(p[i], false);
			rc = put(arg, esc, 6);
			i++;
		} else if ((n = pst_utf8_seq(p + i, len - i)) == 0) {
			/* One replacement per byte that fits no sequence. */
			rc = put(arg, "\\ufffd", 6);
			i++;
		} else {
			rc = put(arg, s + i, n);
			i += n;
		}
	}
	return rc;
}

struct json_buf {
	char	*dst;
	size_t	 size;
	size_t	 o;
};

/* Copies what fits of the piece, counts all of it. */
static int
json_put_buf(void *arg, const char *src, size_t n)
{
	struct json_buf *b = arg;
	size_t room;

	if (b->size > 0 && b->o < b->size - 1) {
		room = b->size - 1 - b->o;
		memcpy(b->dst + b->o, src, n < room ? n : room);
	}
	b->o += n;
	return 0;
}

static int
json_put_evbuffer(void *arg, const char *src, size_t n)
{
	return evbuffer_add(arg, src, n);
}

static int
json_put_file(void *arg, const char *src, size_t n)
{
	return fwrite(src, 1, n, arg) == n ? 0 : -1;
}

size_t
pst_json_escape(char *dst, size_t size, const char *s, size_t len)
{
	struct json_buf b = { dst, size, 0 };

	json_escape(s, len, json_put_buf, &b);
	if (size > 0)
		dst[b.o < size ? b.o : size - 1] = '\0';
	return b.o;
}

int
pst_json_escape_evbuffer(struct evbuffer *out, const char *s, size_t len)
{
	return json_escape(s, len, json_put_evbuffer, out);
}

int
pst_json_escape_file(FILE *fp, const char *s, size_t len)
{
	return json_escape(s, len, json_put_file, fp);
}
