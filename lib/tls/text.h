/*
 * text.h: text helpers of lib/tls: OpenSSL's error queue, taken and put
 * in words, and bounded string copies.  Not part of the library's
 * interface; only the .c files of lib/tls include it.
 */
#ifndef PST_TLS_TEXT_H
#define PST_TLS_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * OpenSSL error codes taken off a queue (this thread's, or the few a
 * bufferevent kept), oldest first.
 */
#define TLS_ERRQ_MAX	8

struct tls_errq {
	unsigned long	e[TLS_ERRQ_MAX];
	size_t		n;
};

/*
 * tls_errq_take()
 * Empties this thread's OpenSSL error queue into 'q' (the first
 * TLS_ERRQ_MAX entries are kept).
 */
void	tls_errq_take(struct tls_errq *q);

/*
 * tls_errq_has()
 * True when 'q' holds an entry of library 'lib' with reason 'reason'.
 */
bool	tls_errq_has(const struct tls_errq *q, int lib, int reason);

/*
 * tls_errq_format()
 * The reasons in 'q', oldest first, separated by ": ", duplicates left
 * out, into 'buf'; "" for an empty queue.  Returns 'buf'.
 */
char	*tls_errq_format(const struct tls_errq *q, char *buf, size_t len);

/*
 * tls_strlcat()
 * Appends 'src' to the NUL-terminated 'dst' of size 'len', cutting it.
 */
void	tls_strlcat(char *dst, const char *src, size_t len);

/*
 * tls_copy_clean()
 * Copies at most 'srclen' bytes of 'src' (stopping at a NUL) into 'dst'
 * of size 'dstlen': bytes outside printable ASCII become '?', and the copy
 * is cut to fit and NUL terminated.
 */
void	tls_copy_clean(char *dst, size_t dstlen, const char *src,
	    size_t srclen);

#endif /* PST_TLS_TEXT_H */
