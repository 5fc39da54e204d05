/*
 * rfc2047.c: display names as phrases (rfc2047.h).
 */
#include <stdbool.h>
#include <string.h>

#include <event2/buffer.h>

#include "msg/rfc2047.h"
#include "sasl/sasl.h"
#include "smtp/addr.h"

int
pst_phrase_encode(const char *name, struct evbuffer *out)
{
	unsigned char clean[PST_PHRASE_NAME_MAX + 1];
	size_t n = 0, i, w;
	bool ascii = true, atoms = true;
	const unsigned char *p;

	for (p = (const unsigned char *)name; *p != '\0' &&
	    n < PST_PHRASE_NAME_MAX; p++)
		clean[n++] = *p < 0x20 || *p == 0x7f ? '?' : *p;
	if (*p != '\0') {
		/*
		 * Cut at the bound: do not leave a cut UTF-8 sequence at
		 * the end.  A whole one stays.
		 */
		for (i = n; i > 0 && n - i < 3 &&
		    (clean[i - 1] & 0xc0) == 0x80; i--)
			;
		if (i > 0 && clean[i - 1] >= 0xc0 &&
		    n - (i - 1) < (clean[i - 1] >= 0xf0 ? 4u :
		    clean[i - 1] >= 0xe0 ? 3u : 2u))
			n = i - 1;
	}
	clean[n] = '\0';
	if (!pst_addr_utf8_valid((const char *)clean, n))
		for (i = 0; i < n; i++)
			if (clean[i] & 0x80)
				clean[i] = '?';
	for (i = 0; i < n; i++) {
		if (clean[i] & 0x80)
			ascii = false;
		else if (strchr("()<>[]:;@\\,.\"", clean[i]) != NULL)
			atoms = false;
	}
	if (!ascii) {
		/* RFC 2047 §5(3): whole characters per encoded word. */
		for (i = 0; i < n; i += w) {
			w = n - i < PST_PHRASE_WORD_BYTES ? n - i : PST_PHRASE_WORD_BYTES;
			while (i + w < n && (clean[i + w] & 0xc0) == 0x80)
				w--;
			if (evbuffer_add_printf(out, "%s=?UTF-8?B?",
			    i > 0 ? " " : "") == -1 ||
			    pst_sasl_b64_encode(clean + i, w, out) == -1 ||
			    evbuffer_add(out, "?=", 2) == -1)
				return -1;
		}
		return 0;
	}
	if (atoms)
		return evbuffer_add(out, clean, n);
	if (evbuffer_add(out, "\"", 1) == -1)
		return -1;
	for (i = 0; i < n; i++)
		if ((clean[i] == '"' || clean[i] == '\\' ?
		    evbuffer_add(out, "\\", 1) : 0) == -1 ||
		    evbuffer_add(out, &clean[i], 1) == -1)
			return -1;
	return evbuffer_add(out, "\"", 1);
}
