/*
 * test_rfc2047.c: display names as phrases, RFC 2047 encoded words.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "msg/rfc2047.h"
#include "sasl/sasl.h"
#include "smtp/addr.h"
#include "unit.h"

/* The phrase for 'name', NUL ended, in a static buffer. */
static const char *
phrase(const char *name)
{
	static char out[4096];
	struct evbuffer *b;
	size_t len;

	ck_assert_ptr_nonnull(b = evbuffer_new());
	ck_assert_int_eq(pst_phrase_encode(name, b), 0);
	len = evbuffer_get_length(b);
	ck_assert_uint_lt(len, sizeof(out));
	evbuffer_remove(b, out, len);
	out[len] = '\0';
	evbuffer_free(b);
	return out;
}

/*
 * Decodes a phrase of encoded words into 'out': each word
 * "=?UTF-8?B?...?=" of at most 75 octets (RFC 2047 §2), one space
 * between words, whole UTF-8 characters in each (RFC 2047 §5(3)).
 * Returns the number of words.
 */
static size_t
decode_words(const char *p, char *out, size_t outmax)
{
	const char *end, *why;
	unsigned char dec[128];
	size_t n = 0, words = 0, dlen;

	for (;;) {
		ck_assert_msg(strncmp(p, "=?UTF-8?B?", 10) == 0,
		    "not an encoded word: \"%s\"", p);
		end = strstr(p + 10, "?=");
		ck_assert_ptr_nonnull(end);
		ck_assert_uint_le((size_t)(end + 2 - p), 75);
		ck_assert_int_eq(pst_sasl_b64_decode(p + 10,
		    (size_t)(end - (p + 10)), dec, sizeof(dec), &dlen, &why),
		    0);
		ck_assert_uint_le(dlen, PST_PHRASE_WORD_BYTES);
		ck_assert(pst_addr_utf8_valid((const char *)dec, dlen));
		ck_assert_uint_lt(n + dlen, outmax);
		memcpy(out + n, dec, dlen);
		n += dlen;
		words++;
		p = end + 2;
		if (*p == '\0')
			break;
		ck_assert_int_eq(*p, ' ');
		p++;
	}
	out[n] = '\0';
	return words;
}

static const struct {
	const char	*name;
	const char	*out;
} phrases[] = {
	/* Atoms as they are. */
	{ "Alice Example", "Alice Example" },
	{ "root", "root" },
	{ "a!#$%&'*+-/=?^_`{|}~", "a!#$%&'*+-/=?^_`{|}~" },
	{ "", "" },
	/* Specials: one quoted string. */
	{ "Smith, J. (ops)", "\"Smith, J. (ops)\"" },
	{ "Joe Q. Public", "\"Joe Q. Public\"" },
	{ "a@b", "\"a@b\"" },
	{ "<x>", "\"<x>\"" },
	{ "say \"hi\"", "\"say \\\"hi\\\"\"" },
	{ "back\\slash", "\"back\\\\slash\"" },
	/* Controls become '?'. */
	{ "tab\there", "tab?here" },
	{ "line\r\nbreak", "line??break" },
	{ "del\x7f", "del?" },
	{ "a,\x01", "\"a,?\"" },
	/* UTF-8: B-encoded words. */
	{ "J\xc3\xb6rg", "=?UTF-8?B?SsO2cmc=?=" },
	{ "\xe2\x82\xac 5", "=?UTF-8?B?4oKsIDU=?=" },
	{ "M\xc3\xbcller, Hans", "=?UTF-8?B?TcO8bGxlciwgSGFucw==?=" },
	/* The last character stays when it is not ASCII. */
	{ "Jos\xc3\xa9", "=?UTF-8?B?Sm9zw6k=?=" },
	{ "\xc3\xa9", "=?UTF-8?B?w6k=?=" },
	{ "\xf0\x9f\x93\xa7", "=?UTF-8?B?8J+Tpw==?=" },
	/* A sequence cut short is not UTF-8, at the end too. */
	{ "a\x80", "a?" },
	{ "a\xc3", "a?" },
	{ "ab\xe2\x82", "ab??" },
	/* Not UTF-8: every byte above 127 becomes '?'. */
	{ "J\xf6rg", "J?rg" },
	{ "a\xc3\xb6\xff" "b", "a???b" },
	{ "\xc0\xafx", "??x" },
};

START_TEST(rfc2047_vectors)
{
	ck_assert_str_eq(phrase(phrases[_i].name), phrases[_i].out);
}
END_TEST

/* Long names: words of whole characters, each within RFC 2047 §2. */
START_TEST(rfc2047_long_utf8)
{
	char name[PST_PHRASE_NAME_MAX + 8], dec[PST_PHRASE_NAME_MAX + 8];
	const char *out;
	size_t i, words;

	/* 2-byte characters: 45 bytes would cut one, so 44 a word. */
	for (i = 0; i < 100; i++)
		memcpy(name + 2 * i, "\xc3\xa9", 2);
	memcpy(name + 200, "z", 2);
	out = phrase(name);
	words = decode_words(out, dec, sizeof(dec));
	ck_assert_str_eq(dec, name);
	ck_assert_uint_eq(words, 5);	/* 44 + 44 + 44 + 44 + 25 */
	/* 72 octets a word (60 base64), 37 the last, 4 spaces. */
	ck_assert_uint_eq(strlen(out), 4 * 72 + 10 + 36 + 2 + 4);

	/* Up to the last character. */
	name[200] = '\0';
	words = decode_words(phrase(name), dec, sizeof(dec));
	ck_assert_str_eq(dec, name);
	ck_assert_uint_eq(words, 5);

	/* 3-byte characters fit 45 exactly. */
	for (i = 0; i < 30; i++)
		memcpy(name + 3 * i, "\xe2\x82\xac", 3);
	memcpy(name + 90, "z", 2);
	words = decode_words(phrase(name), dec, sizeof(dec));
	ck_assert_str_eq(dec, name);
	ck_assert_uint_eq(words, 3);

	/* ASCII before a 4-byte character at a word's end. */
	memset(name, 'a', 43);
	memcpy(name + 43, "\xf0\x9f\x93\xa7z", 6);
	words = decode_words(phrase(name), dec, sizeof(dec));
	ck_assert_str_eq(dec, name);
	ck_assert_uint_eq(words, 2);
}
END_TEST

/* At most PST_PHRASE_NAME_MAX bytes, never a character cut in two. */
START_TEST(rfc2047_name_max)
{
	char name[PST_PHRASE_NAME_MAX + 64], dec[PST_PHRASE_NAME_MAX + 64];
	const char *out;

	memset(name, 'a', PST_PHRASE_NAME_MAX + 40);
	name[PST_PHRASE_NAME_MAX + 40] = '\0';
	out = phrase(name);
	ck_assert_uint_eq(strlen(out), PST_PHRASE_NAME_MAX);

	/* "é" across the limit goes whole. */
	memset(name, 'a', PST_PHRASE_NAME_MAX - 1);
	memcpy(name + PST_PHRASE_NAME_MAX - 1, "\xc3\xa9xyz", 6);
	out = phrase(name);
	ck_assert_uint_eq(strlen(out), PST_PHRASE_NAME_MAX - 1);
	ck_assert(strspn(out, "a") == PST_PHRASE_NAME_MAX - 1);

	/* "é" inside the limit is encoded. */
	memset(name, 'a', PST_PHRASE_NAME_MAX - 4);
	memcpy(name + PST_PHRASE_NAME_MAX - 4, "x\xc3\xa9" "bc", 6);
	decode_words(phrase(name), dec, sizeof(dec));
	ck_assert_uint_eq(strlen(dec), PST_PHRASE_NAME_MAX);
	ck_assert(memcmp(dec + PST_PHRASE_NAME_MAX - 4, "x\xc3\xa9" "b", 4)
	    == 0);

	/* ... and so is one that ends right at the limit. */
	memset(name, 'a', PST_PHRASE_NAME_MAX - 3);
	memcpy(name + PST_PHRASE_NAME_MAX - 3, "x\xc3\xa9" "bc", 6);
	decode_words(phrase(name), dec, sizeof(dec));
	ck_assert_uint_eq(strlen(dec), PST_PHRASE_NAME_MAX);
	ck_assert(memcmp(dec + PST_PHRASE_NAME_MAX - 3, "x\xc3\xa9", 3)
	    == 0);

	/* A 4-byte character cut after 1, 2 or 3 bytes goes whole. */
	memset(name, 'a', PST_PHRASE_NAME_MAX - 3);
	memcpy(name + PST_PHRASE_NAME_MAX - 3, "\xf0\x9f\x93\xa7", 5);
	ck_assert_uint_eq(strlen(phrase(name)), PST_PHRASE_NAME_MAX - 3);
	memset(name, 'a', PST_PHRASE_NAME_MAX - 1);
	memcpy(name + PST_PHRASE_NAME_MAX - 1, "\xf0\x9f\x93\xa7", 5);
	ck_assert_uint_eq(strlen(phrase(name)), PST_PHRASE_NAME_MAX - 1);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("msg/rfc2047");
	TCase *tc = tcase_create("rfc2047");

	tcase_add_loop_test(tc, rfc2047_vectors, 0, NELEMS(phrases));
	tcase_add_test(tc, rfc2047_long_utf8);
	tcase_add_test(tc, rfc2047_name_max);
	suite_add_tcase(s, tc);
	return s;
}
