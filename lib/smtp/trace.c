/*
 * trace.c: Received: fields, written and counted (trace.h).
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "smtp/trace.h"

/* pst_hops.match: bytes of "received" matched, or no match on this line. */
#define HOPS_NAME	"received"
#define HOPS_NAME_LEN	8
#define HOPS_NONE	UINT_MAX

static int	rcvd_add(char *, size_t, size_t *, const char *, ...)
		    __attribute__((format(printf, 4, 5)));
static void	hops_byte(struct pst_hops *, unsigned char);

char *
pst_msg_date(time_t when, char *buf, size_t size)
{
	struct tm tm;

	localtime_r(&when, &tm);
	if (strftime(buf, size, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0 &&
	    size > 0)
		buf[0] = '\0';
	return buf;
}

/* Appends to 'buf' at '*n'; -1 when it does not fit. */
static int
rcvd_add(char *buf, size_t size, size_t *n, const char *fmt, ...)
{
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(buf + *n, size - *n, fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= size - *n)
		return -1;
	*n += (size_t)len;
	return 0;
}

int
pst_received_format(const struct pst_received *r, char *buf, size_t size)
{
	char date[64];
	size_t n = 0;

#define SEP(bit)	((r->fold & (bit)) ? "\r\n\t" : " ")
	if (size == 0)
		return -1;
	buf[0] = '\0';
	if (rcvd_add(buf, size, &n, "Received:") == -1)
		return -1;
	/* The first clause follows the colon, on its line. */
	if (r->from != NULL && (rcvd_add(buf, size, &n, " from %s",
	    r->from) == -1 || (r->from_comment != NULL &&
	    rcvd_add(buf, size, &n, " (%s)", r->from_comment) == -1)))
		return -1;
	if (rcvd_add(buf, size, &n, "%sby %s", r->from != NULL ?
	    SEP(PST_RCVD_FOLD_BY) : " ", r->by) == -1 ||
	    (r->by_comment != NULL && rcvd_add(buf, size, &n, " (%s)",
	    r->by_comment) == -1))
		return -1;
	if (r->with != NULL && rcvd_add(buf, size, &n, "%swith %s",
	    SEP(PST_RCVD_FOLD_WITH), r->with) == -1)
		return -1;
	if (r->id != NULL && rcvd_add(buf, size, &n, "%sid %s",
	    SEP(PST_RCVD_FOLD_ID), r->id) == -1)
		return -1;
	if (r->for_addr != NULL && rcvd_add(buf, size, &n, "%sfor <%s>",
	    SEP(PST_RCVD_FOLD_FOR), r->for_addr) == -1)
		return -1;
	if (rcvd_add(buf, size, &n, ";%s%s\r\n", SEP(PST_RCVD_FOLD_DATE),
	    pst_msg_date(r->date, date, sizeof(date))) == -1)
		return -1;
#undef SEP
	return (int)n;
}

void
pst_hops_init(struct pst_hops *h)
{
	memset(h, 0, sizeof(*h));
	h->blank = true;
}

/*
 * Matches "Received" *WSP ":" at the start of a header line, one byte
 * at a time; an empty line ends the section (RFC 5322 §2.1).
 */
static void
hops_byte(struct pst_hops *h, unsigned char c)
{
	if (c == '\n') {
		if (h->blank)
			h->done = true;
		h->match = 0;
		h->blank = true;
		return;
	}
	if (c == '\r') {
		/* Only CR LF follows; "\r\n" alone is still a blank line. */
		h->match = HOPS_NONE;
		return;
	}
	h->blank = false;
	if (h->match == HOPS_NONE)
		return;
	if (h->match < HOPS_NAME_LEN) {
		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		if (c == (unsigned char)HOPS_NAME[h->match])
			h->match++;
		else
			h->match = HOPS_NONE;
		return;
	}
	if (c == ' ' || c == '\t')
		return;
	if (c == ':' && h->count < UINT_MAX)
		h->count++;
	h->match = HOPS_NONE;
}

void
pst_hops_feed(struct pst_hops *h, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i;

	for (i = 0; i < len && !h->done; i++)
		hops_byte(h, p[i]);
}

void
pst_hops_line(struct pst_hops *h, const char *line, size_t len)
{
	pst_hops_feed(h, line, len);
	pst_hops_feed(h, "\r\n", 2);
}

bool
pst_hops_exceeded(const struct pst_hops *h)
{
	return h->count >= PST_HOPS_MAX;
}
