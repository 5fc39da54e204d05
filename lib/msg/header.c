/*
 * header.c: the header section index (header.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "msg/header.h"

#define IS_WSP(c)	((c) == ' ' || (c) == '\t')

static const struct {
	const char		*name;
	enum pst_hdr_kind	 kind;
} hdr_names[] = {
	{ "from", PST_HDR_FROM },
	{ "date", PST_HDR_DATE },
	{ "message-id", PST_HDR_MSGID },
	{ "received", PST_HDR_RECEIVED },
	{ "to", PST_HDR_TO },
	{ "cc", PST_HDR_CC },
	{ "bcc", PST_HDR_BCC },
	{ "resent-to", PST_HDR_RESENT_TO },
	{ "resent-cc", PST_HDR_RESENT_CC },
	{ "resent-bcc", PST_HDR_RESENT_BCC },
	{ "sender", PST_HDR_ADDRESSES },
	{ "reply-to", PST_HDR_ADDRESSES },
	{ "resent-from", PST_HDR_ADDRESSES },
	{ "resent-sender", PST_HDR_ADDRESSES },
};

static int	hdr_append(struct pst_hdr *, const char *, size_t);

void
pst_hdr_init(struct pst_hdr *h, size_t max)
{
	memset(h, 0, sizeof(*h));
	h->max = max;
}

void
pst_hdr_clear(struct pst_hdr *h)
{
	size_t max = h->max;

	free(h->buf);
	free(h->fields);
	pst_hdr_init(h, max);
}

size_t
pst_hdr_name_len(const char *line, size_t len, size_t *colon)
{
	size_t i = 0, name;

	/* ftext: printable US-ASCII except ":" */
	while (i < len && line[i] > 32 && line[i] < 127 && line[i] != ':')
		i++;
	name = i;
	while (i < len && IS_WSP(line[i]))
		i++;
	if (name == 0 || i >= len || line[i] != ':')
		return 0;
	*colon = i;
	return name;
}

enum pst_hdr_kind
pst_hdr_kind(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(hdr_names) / sizeof(hdr_names[0]); i++)
		if (strlen(hdr_names[i].name) == len &&
		    strncasecmp(hdr_names[i].name, name, len) == 0)
			return hdr_names[i].kind;
	return PST_HDR_OTHER;
}

/* Appends 'len' bytes and CRLF; room was checked. */
static int
hdr_append(struct pst_hdr *h, const char *data, size_t len)
{
	size_t cap;
	char *p;

	if (h->len + len + 2 > h->cap) {
		cap = h->cap == 0 ? 4096 : h->cap;
		while (cap < h->len + len + 2)
			cap *= 2;
		if ((p = realloc(h->buf, cap)) == NULL)
			return -1;
		h->buf = p;
		h->cap = cap;
	}
	memcpy(h->buf + h->len, data, len);
	memcpy(h->buf + h->len + len, "\r\n", 2);
	h->len += len + 2;
	return 0;
}

enum pst_hdr_add
pst_hdr_add(struct pst_hdr *h, const char *line, size_t len)
{
	struct pst_hdr_field *f;
	size_t name, colon, cap;

	if (len > 0 && IS_WSP(line[0])) {
		if (h->nfields == 0)
			return PST_HDR_ADD_NOT;
		if (h->len + len + 2 > h->max)
			return PST_HDR_ADD_FULL;
		if (hdr_append(h, line, len) == -1)
			return PST_HDR_ADD_NOMEM;
		h->fields[h->nfields - 1].len += len + 2;
		return PST_HDR_ADD_CONT;
	}
	if ((name = pst_hdr_name_len(line, len, &colon)) == 0)
		return PST_HDR_ADD_NOT;
	if (h->nfields == h->fields_cap) {
		cap = h->fields_cap == 0 ? 32 : h->fields_cap * 2;
		if ((f = reallocarray(h->fields, cap, sizeof(*f))) == NULL)
			return PST_HDR_ADD_NOMEM;
		h->fields = f;
		h->fields_cap = cap;
	}
	if (h->len + len + 2 > h->max)
		return PST_HDR_ADD_FULL;
	f = &h->fields[h->nfields];
	f->off = h->len;
	f->len = len + 2;
	f->name_len = name;
	f->kind = pst_hdr_kind(line, name);
	if (hdr_append(h, line, len) == -1)
		return PST_HDR_ADD_NOMEM;
	h->nfields++;
	return PST_HDR_ADD_FIELD;
}

bool
pst_hdr_has(const struct pst_hdr *h, enum pst_hdr_kind kind)
{
	size_t i;

	for (i = 0; i < h->nfields; i++)
		if (h->fields[i].kind == kind)
			return true;
	return false;
}

size_t
pst_hdr_unfold(const struct pst_hdr *h, const struct pst_hdr_field *f,
    char *out)
{
	const char *p, *end;
	char *v;

	p = (const char *)memchr(h->buf + f->off, ':', f->len) + 1;
	end = h->buf + f->off + f->len;
	for (v = out; p < end; p++)
		if (*p != '\r' && *p != '\n')
			*v++ = *p;
	return (size_t)(v - out);
}
