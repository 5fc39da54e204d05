#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "common/codec.h"
#include "unit.h"

/* The FNV-1a 64 vectors of the reference test suite (test_fnv.c). */
static const struct {
	const char	*in;
	size_t		 len;
	uint64_t	 h;
} fnv_vectors[] = {
	{ "", 0, UINT64_C(0xcbf29ce484222325) },
	{ "a", 1, UINT64_C(0xaf63dc4c8601ec8c) },
	{ "b", 1, UINT64_C(0xaf63df4c8601f1a5) },
	{ "c", 1, UINT64_C(0xaf63de4c8601eff2) },
	{ "d", 1, UINT64_C(0xaf63d94c8601e773) },
	{ "e", 1, UINT64_C(0xaf63d84c8601e5c0) },
	{ "f", 1, UINT64_C(0xaf63db4c8601ead9) },
	{ "fo", 2, UINT64_C(0x08985907b541d342) },
	{ "foo", 3, UINT64_C(0xdcb27518fed9d577) },
	{ "foob", 4, UINT64_C(0xdd120e790c2512af) },
	{ "fooba", 5, UINT64_C(0xcac165afa2fef40a) },
	{ "foobar", 6, UINT64_C(0x85944171f73967e8) },
	{ "\0", 1, UINT64_C(0xaf63bd4c8601b7df) },
	{ "chongo was here!\n", 17, UINT64_C(0x46810940eff5f915) },
};

START_TEST(fnv1a64_vectors)
{
	ck_assert_uint_eq(pst_fnv1a64(fnv_vectors[_i].in, fnv_vectors[_i].len),
	    fnv_vectors[_i].h);
}
END_TEST

/* RFC 3720 B.4, and the customary check value of "123456789". */
static const struct {
	const char	*in;
	size_t		 len;
	uint32_t	 crc;
} crc_vectors[] = {
	{ "", 0, 0 },
	{ "123456789", 9, 0xe3069283 },
	{ "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
	  "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 32, 0x8a9136aa },
	{ "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
	  "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
	  32, 0x62a8ab43 },
	{ "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
	  "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f",
	  32, 0x46dd794e },
};

START_TEST(crc32c_vectors)
{
	ck_assert_uint_eq(pst_crc32c(crc_vectors[_i].in, crc_vectors[_i].len),
	    crc_vectors[_i].crc);
	ck_assert_uint_eq(pst_crc32c_portable(0, crc_vectors[_i].in,
	    crc_vectors[_i].len), crc_vectors[_i].crc);
}
END_TEST

/*
 * Every split of a buffer, at every alignment the word-wise path has to
 * get right, gives the CRC of the whole, on both paths.
 */
START_TEST(crc32c_splits)
{
	unsigned char buf[80];
	uint32_t whole, a, b;
	size_t off, cut, n;

	for (n = 0; n < sizeof(buf); n++)
		buf[n] = (unsigned char)(n * 37 + 11);
	for (off = 0; off < 8; off++) {
		n = sizeof(buf) - off;
		whole = pst_crc32c_portable(0, buf + off, n);
		ck_assert_uint_eq(pst_crc32c(buf + off, n), whole);
		for (cut = 0; cut <= n; cut++) {
			a = pst_crc32c_more(pst_crc32c(buf + off, cut),
			    buf + off + cut, n - cut);
			b = pst_crc32c_portable(pst_crc32c_portable(0,
			    buf + off, cut), buf + off + cut, n - cut);
			ck_assert_uint_eq(a, whole);
			ck_assert_uint_eq(b, whole);
		}
	}
}
END_TEST

START_TEST(fnv1a64_continues)
{
	uint64_t h;

	h = pst_fnv1a64_more(PST_FNV1A64_BASIS, "foo", 3);
	ck_assert_uint_eq(pst_fnv1a64_more(h, "bar", 3),
	    UINT64_C(0x85944171f73967e8));
	ck_assert_uint_eq(pst_fnv1a64_more(PST_FNV1A64_BASIS, "", 0),
	    PST_FNV1A64_BASIS);
}
END_TEST

/*
 * JSON.
 */

static const struct {
	const char	*in;
	size_t		 len;
	const char	*out;
} json_vectors[] = {
	{ "plain", 5, "plain" },
	{ "", 0, "" },
	{ "say \"hi\"", 8, "say \\\"hi\\\"" },
	{ "a\\b", 3, "a\\\\b" },
	{ "/", 1, "/" },
	{ "\n\r\t", 3, "\\u000a\\u000d\\u0009" },
	{ "\0x", 2, "\\u0000x" },
	{ "\x1f\x20", 2, "\\u001f " },
	{ "\x7f", 1, "\\u007f" },
	{ "~", 1, "~" },
	/* Well-formed UTF-8 passes: é, €, U+10348. */
	{ "caf\xc3\xa9", 5, "caf\xc3\xa9" },
	{ "\xe2\x82\xac", 3, "\xe2\x82\xac" },
	{ "\xf0\x90\x8d\x88", 4, "\xf0\x90\x8d\x88" },
	/* One replacement per byte of what is not. */
	{ "\xff", 1, "\\ufffd" },
	{ "a\xc3", 2, "a\\ufffd" },
	{ "\xc0\xaf", 2, "\\ufffd\\ufffd" },		/* overlong */
	{ "\xed\xa0\x80", 3, "\\ufffd\\ufffd\\ufffd" },	/* surrogate */
	{ "\xf4\x90\x80\x80", 4, "\\ufffd\\ufffd\\ufffd\\ufffd" },
	{ "\xe9t\xc3\xa9", 4, "\\ufffdt\xc3\xa9" },	/* Latin-1, then UTF-8 */
	{ "\x80\"", 2, "\\ufffd\\\"" },
};

START_TEST(json_escape_vectors)
{
	char buf[128];
	size_t n;

	n = pst_json_escape(buf, sizeof(buf), json_vectors[_i].in,
	    json_vectors[_i].len);
	ck_assert_str_eq(buf, json_vectors[_i].out);
	ck_assert_uint_eq(n, strlen(json_vectors[_i].out));
	ck_assert_uint_eq(pst_json_escape(NULL, 0, json_vectors[_i].in,
	    json_vectors[_i].len), n);
}
END_TEST

START_TEST(json_escape_cuts_like_snprintf)
{
	char buf[6];

	memset(buf, 'X', sizeof(buf));
	ck_assert_uint_eq(pst_json_escape(buf, sizeof(buf), "a\"bcdef", 7),
	    8);
	ck_assert_str_eq(buf, "a\\\"bc");
	ck_assert_uint_eq(pst_json_escape(buf, 1, "abc", 3), 3);
	ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(json_escape_evbuffer)
{
	struct evbuffer *b = evbuffer_new();
	size_t i, len;
	char *s;

	ck_assert_ptr_nonnull(b);
	for (i = 0; i < NELEMS(json_vectors); i++) {
		ck_assert_int_eq(pst_json_escape_evbuffer(b, json_vectors[i].in,
		    json_vectors[i].len), 0);
		len = evbuffer_get_length(b);
		s = calloc(1, len + 1);
		ck_assert_ptr_nonnull(s);
		evbuffer_remove(b, s, len);
		ck_assert_str_eq(s, json_vectors[i].out);
		free(s);
	}
	evbuffer_free(b);
}
END_TEST

/*
 * Percent-decoding.
 */

static const struct {
	const char		*in;
	enum pst_pct_rc		 rc;
	const char		*out;
} pct_vectors[] = {
	{ "plain", PST_PCT_OK, "plain" },
	{ "", PST_PCT_OK, "" },
	{ "a%40b", PST_PCT_OK, "a@b" },
	{ "%3a%3A", PST_PCT_OK, "::" },
	{ "%25", PST_PCT_OK, "%" },
	{ "%2525", PST_PCT_OK, "%25" },
	{ "%e2%82%ac", PST_PCT_OK, "\xe2\x82\xac" },
	{ "%0A", PST_PCT_OK, "\n" },
	{ "a+b", PST_PCT_OK, "a+b" },
	{ "%00", PST_PCT_NUL, NULL },
	{ "a%00b", PST_PCT_NUL, NULL },
	{ "%", PST_PCT_BAD_ESCAPE, NULL },
	{ "%4", PST_PCT_BAD_ESCAPE, NULL },
	{ "ab%4", PST_PCT_BAD_ESCAPE, NULL },
	{ "%4g", PST_PCT_BAD_ESCAPE, NULL },
	{ "%g4", PST_PCT_BAD_ESCAPE, NULL },
	{ "% 40", PST_PCT_BAD_ESCAPE, NULL },
	{ "%-1", PST_PCT_BAD_ESCAPE, NULL },
};

START_TEST(pct_decode_vectors)
{
	char out[32];
	size_t n = 999;
	enum pst_pct_rc rc;

	rc = pst_pct_decode(pct_vectors[_i].in, strlen(pct_vectors[_i].in),
	    out, sizeof(out), &n);
	ck_assert_int_eq(rc, pct_vectors[_i].rc);
	if (rc == PST_PCT_OK) {
		ck_assert_str_eq(out, pct_vectors[_i].out);
		ck_assert_uint_eq(n, strlen(pct_vectors[_i].out));
	}
}
END_TEST

START_TEST(pct_decode_size)
{
	char out[4];

	/* Three bytes and the NUL fit; four do not. */
	ck_assert_int_eq(pst_pct_decode("a%62c", 5, out, sizeof(out), NULL),
	    PST_PCT_OK);
	ck_assert_str_eq(out, "abc");
	ck_assert_int_eq(pst_pct_decode("abcd", 4, out, sizeof(out), NULL),
	    PST_PCT_TOO_LONG);
	ck_assert_int_eq(pst_pct_decode("", 0, out, 0, NULL),
	    PST_PCT_TOO_LONG);
	/* 'len' bounds the escape: "%4" then "1" outside is truncated. */
	ck_assert_int_eq(pst_pct_decode("%41", 2, out, sizeof(out), NULL),
	    PST_PCT_BAD_ESCAPE);
}
END_TEST

/*
 * Hex.
 */

START_TEST(hex_encode)
{
	const unsigned char b[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xff };
	char out[2 * sizeof(b) + 1];

	ck_assert_str_eq(pst_hex_encode(out, b, sizeof(b), false),
	    "00017f80abff");
	ck_assert_str_eq(pst_hex_encode(out, b, sizeof(b), true),
	    "00017F80ABFF");
	ck_assert_str_eq(pst_hex_encode(out, b, 0, true), "");
	ck_assert_int_eq(pst_hex_digit(0x1a, true), 'A');
	ck_assert_int_eq(pst_hex_digit(10, false), 'a');
}
END_TEST

START_TEST(hex_value_cases)
{
	ck_assert_int_eq(pst_hex_value('0', PST_HEX_UPPER), 0);
	ck_assert_int_eq(pst_hex_value('9', PST_HEX_LOWER), 9);
	ck_assert_int_eq(pst_hex_value('a', PST_HEX_ANY), 10);
	ck_assert_int_eq(pst_hex_value('F', PST_HEX_ANY), 15);
	ck_assert_int_eq(pst_hex_value('a', PST_HEX_UPPER), -1);
	ck_assert_int_eq(pst_hex_value('A', PST_HEX_LOWER), -1);
	ck_assert_int_eq(pst_hex_value('f', PST_HEX_LOWER), 15);
	ck_assert_int_eq(pst_hex_value('g', PST_HEX_ANY), -1);
	ck_assert_int_eq(pst_hex_value('G', PST_HEX_ANY), -1);
	ck_assert_int_eq(pst_hex_value('/', PST_HEX_ANY), -1);
	ck_assert_int_eq(pst_hex_value(':', PST_HEX_ANY), -1);
	ck_assert_int_eq(pst_hex_value('\0', PST_HEX_ANY), -1);
	ck_assert_int_eq(pst_hex_value(0xe0, PST_HEX_ANY), -1);
}
END_TEST

static const struct {
	const char	*in;
	const char	*why;	/* NULL: decodes to 'out' */
	size_t		 len;
	const char	*out;
} hex_vectors[] = {
	{ "", NULL, 0, "" },
	{ "00", NULL, 1, "\0" },
	{ "41424a", NULL, 3, "ABJ" },
	{ "41424A", NULL, 3, "ABJ" },
	{ "fF", NULL, 1, "\xff" },
	{ "4", "odd number of hex digits", 0, NULL },
	{ "41424", "odd number of hex digits", 0, NULL },
	{ "4g", "not a hex digit", 0, NULL },
	{ "g4", "not a hex digit", 0, NULL },
	{ " 41", "not a hex digit", 0, NULL },
	{ "41:42", "not a hex digit", 0, NULL },
	{ "0x41", "not a hex digit", 0, NULL },
	{ "414243444546", "too long", 0, NULL },
};

START_TEST(hex_decode_vectors)
{
	unsigned char out[4];
	const char *why = NULL;
	size_t n = 999;
	int rc;

	rc = pst_hex_decode(out, sizeof(out), hex_vectors[_i].in,
	    strlen(hex_vectors[_i].in), &n, &why);
	if (hex_vectors[_i].why == NULL) {
		ck_assert_int_eq(rc, 0);
		ck_assert_uint_eq(n, hex_vectors[_i].len);
		ck_assert(memcmp(out, hex_vectors[_i].out, n) == 0);
	} else {
		ck_assert_int_eq(rc, -1);
		ck_assert_str_eq(why, hex_vectors[_i].why);
	}
}
END_TEST

START_TEST(hex_round_trip)
{
	unsigned char b[256], back[256];
	char text[2 * sizeof(b) + 1];
	const char *why;
	size_t i, n;

	for (i = 0; i < sizeof(b); i++)
		b[i] = (unsigned char)(255 - i);
	pst_hex_encode(text, b, sizeof(b), true);
	ck_assert_int_eq(pst_hex_decode(back, sizeof(back), text,
	    strlen(text), &n, &why), 0);
	ck_assert_uint_eq(n, sizeof(b));
	ck_assert(memcmp(back, b, sizeof(b)) == 0);
}
END_TEST

START_TEST(utf8_valid)
{
	ck_assert(pst_utf8_valid("", 0));
	ck_assert(pst_utf8_valid("ascii", 5));
	ck_assert(pst_utf8_valid("\xc3\xa9\xe2\x82\xac\xf4\x8f\xbf\xbf", 9));
	ck_assert(!pst_utf8_valid("\xc3", 1));
	ck_assert(!pst_utf8_valid("\xe0\x80\x80", 3));
	ck_assert(!pst_utf8_valid("\xed\xbf\xbf", 3));
	ck_assert(!pst_utf8_valid("\xf5\x80\x80\x80", 4));
	ck_assert(!pst_utf8_valid("\xc3\xa9\x80", 3));
}
END_TEST

START_TEST(str_8bit)
{
	ck_assert(!pst_str_8bit(""));
	ck_assert(!pst_str_8bit("user@example.org\x7f"));
	ck_assert(pst_str_8bit("j\xc3\xb6rg@example.org"));
	ck_assert(pst_str_8bit("\x80"));
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("common/codec");
	TCase *tc = tcase_create("codec");

	tcase_add_loop_test(tc, fnv1a64_vectors, 0, NELEMS(fnv_vectors));
	tcase_add_test(tc, fnv1a64_continues);
	tcase_add_loop_test(tc, crc32c_vectors, 0, NELEMS(crc_vectors));
	tcase_add_test(tc, crc32c_splits);
	tcase_add_loop_test(tc, json_escape_vectors, 0, NELEMS(json_vectors));
	tcase_add_test(tc, json_escape_cuts_like_snprintf);
	tcase_add_test(tc, json_escape_evbuffer);
	tcase_add_loop_test(tc, pct_decode_vectors, 0, NELEMS(pct_vectors));
	tcase_add_test(tc, pct_decode_size);
	tcase_add_test(tc, hex_encode);
	tcase_add_test(tc, hex_value_cases);
	tcase_add_loop_test(tc, hex_decode_vectors, 0, NELEMS(hex_vectors));
	tcase_add_test(tc, hex_round_trip);
	tcase_add_test(tc, utf8_valid);
	tcase_add_test(tc, str_8bit);
	suite_add_tcase(s, tc);
	return s;
}
