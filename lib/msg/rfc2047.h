/*
 * rfc2047.h: a display name as an RFC 5322 phrase (§3.2.5), with RFC 2047
 * encoded words when it is not ASCII.
 *
 * The name is taken as a program gives it (a user's full name): at most
 * PST_PHRASE_NAME_MAX bytes of it, and never a UTF-8 sequence cut at that
 * end.  Control characters become '?', and so does every byte above 127
 * unless the whole name is well-formed UTF-8.  Then:
 *   - ASCII without specials: the atoms as they are ("Jane Doe");
 *   - ASCII with specials ("()<>[]:;@\,." or a quote): one quoted string,
 *     with '"' and '\' escaped ("\"Doe, Jane\"");
 *   - anything with UTF-8: B-encoded words, charset UTF-8, separated by
 *     one space, each of at most PST_PHRASE_WORD_BYTES input bytes and
 *     whole characters (RFC 2047 §5(3)): 60 base64 characters, so that a
 *     word is 72 octets, within the 75 of RFC 2047 §2.  Q encoding is
 *     never used.
 * The result is one line; folding it is the caller's business (RFC 2047
 * §2: an encoded word is never split, white space between words is where
 * a line may fold).
 */
#ifndef PST_MSG_RFC2047_H
#define PST_MSG_RFC2047_H

struct evbuffer;

/* Longest name taken, in bytes. */
#define PST_PHRASE_NAME_MAX	256
/* Input bytes per encoded word: 60 base64 characters. */
#define PST_PHRASE_WORD_BYTES	45

/*
 * pst_phrase_encode()
 * Appends the phrase for 'name' (NUL ended) to 'out'.  Returns 0, or -1
 * when memory is short ('out' may then hold part of it).
 */
int	pst_phrase_encode(const char *name, struct evbuffer *out);

#endif /* PST_MSG_RFC2047_H */
