/*
 * fuzz_msg.c: message parsing and writing (lib/msg).
 *
 * The first byte picks the part (bits 0-1); the rest is its input.
 * Checked:
 *   - address lists: the scan ends, every address and element lies in
 *     bounds, an address with a place for a domain has it inside the
 *     text, every refusal says why;
 *   - the header index, fed the input's lines up to the first that is
 *     not a header line: its fields lie end to end and cover the buffer,
 *     each starts with its name and a colon and has the kind of that
 *     name, continuations start with white space, unfolding drops the
 *     CRLFs only; the hop counter, fed the same lines one by one or as
 *     bytes in chunks of any size, counts the Received: fields;
 *   - phrases: one line of printable ASCII; atoms, a quoted string or
 *     encoded words of at most 75 octets with whole UTF-8 characters,
 *     each giving back the name (up to the bound, less a character cut
 *     there) but for '?' in place of controls and bytes that are not
 *     UTF-8; a printable ASCII name comes back as it was;
 *   - Received: fields: a failure, or a line of the right length,
 *     CRLF TAB wherever it folds, CRLF at the end.
 */
#include <string.h>

#include <event2/buffer.h>

#include "msg/addrlist.h"
#include "msg/header.h"
#include "msg/rfc2047.h"
#include "smtp/trace.h"
#include "sasl/sasl.h"
#include "smtp/addr.h"
#include "fuzz.h"

#define HDR_MAX		(64 * 1024)

static void	msg_addrlist(const char *, size_t);
static void	msg_header(const char *, size_t, size_t);
static void	msg_phrase(const char *, size_t);
static void	msg_received(const char *, size_t, unsigned);

static void
msg_addrlist(const char *s, size_t len)
{
	struct pst_addrlist ls;
	const char *end = s + len;
	size_t calls = 0, i;
	int rc;

	pst_addrlist_init(&ls, s, len);
	while ((rc = pst_addrlist_next(&ls)) == 1) {
		/* Each element takes one byte at least. */
		FUZZ_CHECK(++calls <= len);
		FUZZ_CHECK(ls.alen <= PST_ADDRLIST_ADDR_MAX);
		FUZZ_CHECK(ls.addr[ls.alen] == '\0');
		FUZZ_CHECK(ls.elem >= s && ls.elem + ls.elem_len <= end);
		FUZZ_CHECK(ls.p <= end);
		FUZZ_CHECK(ls.alen == 0 || ls.insert_at != NULL);
		if (ls.insert_at != NULL)
			FUZZ_CHECK(ls.insert_at > s && ls.insert_at <= end);
		/*
		 * No comment and no white space, outside quotes (or what a
		 * source route cut of them leaves).
		 */
		if (memchr(ls.addr, '"', ls.alen) == NULL &&
		    memchr(ls.addr, '[', ls.alen) == NULL &&
		    memchr(ls.addr, ']', ls.alen) == NULL)
			for (i = 0; i < ls.alen; i++)
				FUZZ_CHECK(strchr(" \t\r\n(", ls.addr[i]) ==
				    NULL || ls.addr[i] == '\0');
	}
	if (rc == -1) {
		FUZZ_CHECK(ls.why != NULL && ls.why[0] != '\0');
		FUZZ_CHECK(ls.elem >= s && ls.elem + ls.elem_len <= end);
	}
}

static void
msg_header(const char *s, size_t len, size_t chunk)
{
	struct pst_hdr h;
	struct pst_hops by_line, by_bytes;
	const struct pst_hdr_field *f;
	const char *p = s, *end = s + len, *nl;
	size_t i, n, at, colon, name, ulen;
	unsigned received = 0;
	char *unfolded;
	enum pst_hdr_add rc = PST_HDR_ADD_NOT;

	pst_hdr_init(&h, HDR_MAX);
	pst_hops_init(&by_line);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		n = (nl != NULL ? (size_t)(nl - p) : (size_t)(end - p));
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n == 0)
			break;
		rc = pst_hdr_add(&h, p, n);
		if (rc == PST_HDR_ADD_NOT || rc == PST_HDR_ADD_FULL)
			break;
		FUZZ_CHECK(rc != PST_HDR_ADD_NOMEM);
		FUZZ_CHECK(rc != PST_HDR_ADD_CONT || p[0] == ' ' ||
		    p[0] == '\t');
		pst_hops_line(&by_line, p, n);
		p = nl != NULL ? nl + 1 : end;
	}
	FUZZ_CHECK(h.len <= HDR_MAX);
	for (i = 0, at = 0; i < h.nfields; i++) {
		f = &h.fields[i];
		FUZZ_CHECK(f->off == at && f->len >= 4);
		at += f->len;
		FUZZ_CHECK(memcmp(h.buf + f->off + f->len - 2, "\r\n", 2) ==
		    0);
		name = pst_hdr_name_len(h.buf + f->off, f->len, &colon);
		FUZZ_CHECK(name == f->name_len && name > 0);
		FUZZ_CHECK(f->kind == pst_hdr_kind(h.buf + f->off, name));
		FUZZ_CHECK(pst_hdr_has(&h, f->kind));
		if (f->kind == PST_HDR_RECEIVED)
			received++;
		if ((unfolded = malloc(f->len)) == NULL)
			continue;
		ulen = pst_hdr_unfold(&h, f, unfolded);
		FUZZ_CHECK(ulen + colon + 1 <= f->len);
		FUZZ_CHECK(memchr(unfolded, '\n', ulen) == NULL);
		free(unfolded);
	}
	FUZZ_CHECK(at == h.len);
	/* A field the index calls Received: is one the counter counts. */
	FUZZ_CHECK(by_line.count == received);
	/* The same bytes, in chunks: the same count. */
	pst_hops_init(&by_bytes);
	for (at = 0; at < h.len; at += n) {
		n = h.len - at < chunk ? h.len - at : chunk;
		pst_hops_feed(&by_bytes, h.buf + at, n);
	}
	FUZZ_CHECK(by_bytes.count == by_line.count);
	FUZZ_CHECK(pst_hops_exceeded(&by_line) ==
	    (by_line.count >= PST_HOPS_MAX));
	pst_hdr_clear(&h);
	FUZZ_CHECK(h.nfields == 0 && h.len == 0 && h.buf == NULL);
}

/*
 * Whether 'n' bytes of 'got' are the start of 'name' ('len' bytes), but
 * for a '?' in place of a control or a byte above 127, and all of it or
 * all that fits the bound, less a cut character.
 */
static bool
same_name(const char *got, size_t n, const char *name, size_t len)
{
	size_t i;
	unsigned char c;

	if (n > len || n > PST_PHRASE_NAME_MAX)
		return false;
	if (n < len && (len <= PST_PHRASE_NAME_MAX ||
	    n + 3 < PST_PHRASE_NAME_MAX))
		return false;
	for (i = 0; i < n; i++) {
		c = (unsigned char)name[i];
		if (got[i] != name[i] && !(got[i] == '?' && (c < 0x20 ||
		    c == 0x7f || c >= 0x80)))
			return false;
	}
	return true;
}

static void
msg_phrase(const char *s, size_t len)
{
	char name[PST_PHRASE_NAME_MAX * 2 + 1], dec[PST_PHRASE_NAME_MAX + 1];
	unsigned char word[64];
	struct evbuffer *b;
	const char *out, *p, *q, *why;
	size_t olen, n = 0, wlen, i;
	bool printable = true;

	if (len > sizeof(name) - 1)
		len = sizeof(name) - 1;
	memcpy(name, s, len);
	name[len] = '\0';
	len = strlen(name);
	for (i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x20 ||
		    (unsigned char)name[i] > 0x7e)
			printable = false;
	if ((b = evbuffer_new()) == NULL)
		return;
	FUZZ_CHECK(pst_phrase_encode(name, b) == 0);
	olen = evbuffer_get_length(b);
	out = (const char *)evbuffer_pullup(b, -1);
	for (i = 0; i < olen; i++)
		FUZZ_CHECK((unsigned char)out[i] >= 0x20 &&
		    (unsigned char)out[i] < 0x7f);
	if (same_name(out, olen, name, len)) {
		/* Atoms. */
		for (i = 0; i < olen; i++)
			FUZZ_CHECK(strchr("()<>[]:;@\\,.\"", out[i]) == NULL);
	} else if (olen > 0 && out[0] == '"') {
		FUZZ_CHECK(olen >= 2 && out[olen - 1] == '"');
		for (i = 1; i + 1 < olen; i++) {
			if (out[i] == '\\')
				i++;
			else
				FUZZ_CHECK(out[i] != '"');
			FUZZ_CHECK(i + 1 < olen);
			FUZZ_CHECK(n < PST_PHRASE_NAME_MAX);
			dec[n++] = out[i];
		}
		FUZZ_CHECK(same_name(dec, n, name, len));
	} else {
		/* Encoded words, one space apart. */
		FUZZ_CHECK(!printable);
		for (p = out; p < out + olen; p = q + 3) {
			FUZZ_CHECK(out + olen - p >= 12 &&
			    memcmp(p, "=?UTF-8?B?", 10) == 0);
			q = memchr(p + 10, '?', (size_t)(out + olen - p - 10));
			FUZZ_CHECK(q != NULL && q + 1 < out + olen &&
			    q[1] == '=');
			FUZZ_CHECK(q + 2 - p <= 75);
			FUZZ_CHECK(pst_sasl_b64_decode(p + 10,
			    (size_t)(q - p - 10), word, sizeof(word), &wlen,
			    &why) == 0);
			FUZZ_CHECK(wlen > 0 && wlen <= PST_PHRASE_WORD_BYTES);
			FUZZ_CHECK(pst_addr_utf8_valid((const char *)word,
			    wlen));
			FUZZ_CHECK(n + wlen <= PST_PHRASE_NAME_MAX);
			memcpy(dec + n, word, wlen);
			n += wlen;
			FUZZ_CHECK(q + 2 == out + olen || q[2] == ' ');
		}
		FUZZ_CHECK(same_name(dec, n, name, len));
	}
	/* A printable ASCII name comes back as it was. */
	if (printable && len <= PST_PHRASE_NAME_MAX)
		FUZZ_CHECK(n == len || (olen == len &&
		    memcmp(out, name, len) == 0));
	evbuffer_free(b);
}

static void
msg_received(const char *s, size_t len, unsigned fold)
{
	/* Up to seven NUL-separated parts: from, from_comment, by, ... */
	char buf[1024], copy[1024];
	const char *part[7] = { NULL };
	struct pst_received r = { 0 };
	size_t i, k = 0, start = 0, size;
	int n;

	if (len > sizeof(copy) - 1)
		len = sizeof(copy) - 1;
	memcpy(copy, s, len);
	copy[len] = '\0';
	for (i = 0; i <= len && k < 7; i++)
		if (copy[i] == '\0') {
			/* An empty part is one left out. */
			part[k++] = i > start ? copy + start : NULL;
			start = i + 1;
		}
	r.from = part[0];
	r.from_comment = part[1];
	r.by = part[2] != NULL ? part[2] : "by.example";
	r.by_comment = part[3];
	r.with = part[4];
	r.id = part[5];
	r.for_addr = part[6];
	r.date = (time_t)len * 86400;
	r.fold = fold & 0x1f;
	size = len % sizeof(buf);
	n = pst_received_format(&r, buf, size);
	if (n == -1)
		return;
	FUZZ_CHECK(n > 0 && (size_t)n < size && strlen(buf) == (size_t)n);
	FUZZ_CHECK(strncmp(buf, "Received: ", 10) == 0);
	FUZZ_CHECK(memcmp(buf + n - 2, "\r\n", 2) == 0);
	for (i = 0; i + 2 < (size_t)n; i++)
		if (buf[i] == '\r' && buf[i + 1] == '\n' &&
		    memchr(copy, '\r', len) == NULL)
			FUZZ_CHECK(buf[i + 2] == '\t');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	uint8_t b;

	b = fuzz_byte(&in, 0);
	switch (b & 3) {
	case 0:
		msg_addrlist((const char *)in.p, in.len);
		break;
	case 1:
		msg_header((const char *)in.p, in.len, (size_t)(b >> 2) + 1);
		break;
	case 2:
		msg_phrase((const char *)in.p, in.len);
		break;
	default:
		msg_received((const char *)in.p, in.len, b >> 2);
		break;
	}
	return 0;
}
