/*
 * text.c: OpenSSL's error queue put in words, and bounded string copies,
 * for the files of lib/tls.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "tls/text.h"

void
tls_errq_take(struct tls_errq *q)
{
	unsigned long e;

	q->n = 0;
	while ((e = ERR_get_error()) != 0) {
		if (q->n < TLS_ERRQ_MAX)
			q->e[q->n++] = e;
	}
}

bool
tls_errq_has(const struct tls_errq *q, int lib, int reason)
{
	size_t i;

	for (i = 0; i < q->n; i++) {
		if (ERR_GET_LIB(q->e[i]) == lib &&
		    ERR_GET_REASON(q->e[i]) == reason)
			return true;
	}
	return false;
}

char *
tls_errq_format(const struct tls_errq *q, char *buf, size_t len)
{
	char one[256];
	const char *r;
	size_t i, j;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	for (i = 0; i < q->n; i++) {
		for (j = 0; j < i; j++) {
			if (ERR_GET_LIB(q->e[j]) == ERR_GET_LIB(q->e[i]) &&
			    ERR_GET_REASON(q->e[j]) == ERR_GET_REASON(q->e[i]))
				break;
		}
		if (j < i)
			continue;
		if ((r = ERR_reason_error_string(q->e[i])) == NULL) {
			ERR_error_string_n(q->e[i], one, sizeof(one));
			r = one;
		}
		if (buf[0] != '\0')
			tls_strlcat(buf, ": ", len);
		tls_strlcat(buf, r, len);
	}
	return buf;
}

void
tls_strlcat(char *dst, const char *src, size_t len)
{
	size_t used = strnlen(dst, len);

	if (used + 1 >= len)
		return;
	snprintf(dst + used, len - used, "%s", src);
}

void
tls_copy_clean(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	size_t i;

	if (dstlen == 0)
		return;
	for (i = 0; i < srclen && i + 1 < dstlen && src[i] != '\0'; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	dst[i] = '\0';
}
