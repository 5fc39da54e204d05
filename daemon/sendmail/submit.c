/*
 * submit.c: a locally submitted message, from raw bytes to the spool.
 *
 * Bytes go through a small reader that finds line ends (LF, CRLF, or a
 * CR alone, which counts as a line end too) and bounds lines; each line
 * then goes to the header collector or, once the header section is over,
 * straight into the spool message with CRLF.  The header section is kept
 * in one buffer with an index of its fields (msg/header.h), so that it
 * can be looked at whole (recipients for -t, which fields are missing)
 * before anything of it is written.  Parsing and encoding belong to
 * lib/msg (address lists, the header index, phrases, trace fields); what
 * is done with them is decided here: aliases, the default domain, which
 * fields are fixed or added, where recipients come from.
 *
 * Invariants: what reaches the spool has CRLF line ends only, no line
 * longer than SUBMIT_LINE_MAX octets plus CRLF, and no NUL.  Memory is
 * bounded by SUBMIT_HEADER_MAX plus the spool's flush size.  The message
 * is never committed without a recipient.
 *
 * In header fields it only appends the default domain to addresses that
 * have none (aliases apply to the envelope alone).  It deliberately does
 * not decode MIME or check header syntax beyond telling fields from body
 * lines and reading address lists.
 */
#include <sys/random.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>

#include "common/codec.h"
#include "common/err.h"
#include "msg/addrlist.h"
#include "msg/header.h"
#include "msg/rfc2047.h"
#include "shared/config.h"
#include "shared/rewrite.h"
#include "smtp/addr.h"
#include "smtp/trace.h"
#include "spool/spool.h"
#include "submit.h"

enum submit_state {
	SUBMIT_HEADER = 0,	/* collecting the header section */
	SUBMIT_BODY,		/* writing body lines to the spool */
	SUBMIT_ENDED,		/* a lone "." ended the input */
	SUBMIT_COMMITTED,	/* in the queue */
	SUBMIT_FAILED,		/* gave up; only free */
	SUBMIT__COUNT
};

static const char *const submit_state_names[] = {
	[SUBMIT_HEADER] = "header",
	[SUBMIT_BODY] = "body",
	[SUBMIT_ENDED] = "ended",
	[SUBMIT_COMMITTED] = "committed",
	[SUBMIT_FAILED] = "failed",
};
_Static_assert(sizeof(submit_state_names) / sizeof(submit_state_names[0])
    == SUBMIT__COUNT, "a name for every state");

/* How the header section ended. */
enum header_end {
	END_BLANK = 0,		/* an empty line */
	END_BODY,		/* a line that is not a field */
	END_EOF,		/* the end of input */
};

struct submit {
	const struct config	*cfg;
	struct pst_spool_msg	*msg;
	struct pst_spool_env	*env;
	enum submit_state	 state;
	time_t			 now;

	/* What the caller asked for. */
	char			*from_addr;
	char			*full_name;
	char			*helo;
	char			*protocol;
	uid_t			 uid;
	bool			 extract;
	bool			 strip_bcc;
	bool			 ignore_dots;
	bool			 skip_from_line;
	unsigned		 notify;

	/* Recipient index: slots hold 1 + an index into env->rcpts. */
	size_t			*seen;
	size_t			 seen_cap;	/* a power of two, or 0 */

	/* The line reader. */
	char			*line;
	size_t			 len;
	size_t			 cap;
	bool			 cr;		/* a CR waits for its LF */
	bool			 cont;		/* rest of a broken line */
	unsigned long long	 lineno;

	/* The header section. */
	bool			 headers_done;	/* written out */
	bool			 hdr_8bit;	/* a byte above 127 */
	struct pst_hops		 hops;		/* Received: fields */
	struct pst_hdr		 hdr;
};

static int	 submit_fail(struct submit *, struct pst_err *, int,
		    const char *, const char *, ...)
		    __attribute__((format(printf, 5, 6)));
static int	 submit_spool_fail(struct submit *, struct pst_err *);
static void	 submit_set_state(struct submit *, enum submit_state);
static int	 out_write(struct submit *, const void *, size_t,
		    struct pst_err *);
static int	 out_printf(struct submit *, struct pst_err *, const char *,
		    ...) __attribute__((format(printf, 3, 4)));
static int	 line_grow(struct submit *, size_t, struct pst_err *);
static int	 line_end(struct submit *, struct pst_err *);
static int	 body_line(struct submit *, const char *, size_t,
		    struct pst_err *);
static int	 header_line(struct submit *, struct pst_err *);
static int	 headers_end(struct submit *, enum header_end,
		    struct pst_err *);
static int	 extract_rcpts(struct submit *, struct pst_err *);
static int	 write_folded(struct submit *, const char *, size_t, size_t,
		    struct pst_err *);
static size_t	 value_start(const char *, size_t);
static int	 write_field(struct submit *, const struct pst_hdr_field *,
		    struct pst_err *);
static int	 qualify_value(struct submit *, const char *, size_t,
		    struct evbuffer *);
static int	 write_received(struct submit *, struct pst_err *);
static int	 write_added(struct submit *, struct pst_err *);
static int	 write_from(struct submit *, struct pst_err *);
static int	 add_address(struct submit *, const char *, size_t,
		    unsigned, const char *, const char *, struct pst_err *);
static int	 add_expanded(struct submit *, const char *, unsigned,
		    const char *, struct pst_err *);
static bool	 is_wsp(int);
static uint64_t	 addr_hash(const char *);
static size_t	*seen_slot(struct submit *, const char *);
static int	 seen_grow(struct submit *);
static void	 printable(char *, size_t, const char *, size_t);

static bool
is_wsp(int c)
{
	return c == ' ' || c == '\t';
}

/* A copy of 'len' bytes of 'src' fit for a message: controls become '?'. */
static void
printable(char *dst, size_t size, const char *src, size_t len)
{
	size_t i;

	if (len > size - 1)
		len = size - 1;
	for (i = 0; i < len; i++)
		dst[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ?
		    '?' : src[i];
	dst[len] = '\0';
}

/*
 * Errors.
 */

static int
submit_fail(struct submit *s, struct pst_err *err, int code, const char *esc,
    const char *fmt, ...)
{
	va_list ap;
	char text[PST_ERR_TEXT_MAX];

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* Retrying the same input cannot help, whatever the reply code. */
	pst_err_set(err, PST_PERM, PST_STAGE_DATA, "%s", text);
	err->smtp_code = code;
	snprintf(err->esc, sizeof(err->esc), "%s", esc);
	submit_set_state(s, SUBMIT_FAILED);
	return -1;
}

/* A spool error in 'err' becomes this submission's failure. */
static int
submit_spool_fail(struct submit *s, struct pst_err *err)
{
	if (err->cls == PST_PERM || err->cls == PST_OK)
		err->cls = PST_LOCAL;
	err->smtp_code = 451;
	snprintf(err->esc, sizeof(err->esc), "4.3.0");
	submit_set_state(s, SUBMIT_FAILED);
	return -1;
}

/* The only writer of s->state. */
static void
submit_set_state(struct submit *s, enum submit_state st)
{
	s->state = st;
}

/*
 * Creation.
 */

struct submit *
submit_new(const struct submit_params *p, struct pst_err *err)
{
	struct submit *s;

	pst_err_clear(err);
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		pst_err_sys(err, PST_TEMP, PST_STAGE_DATA, ENOMEM,
		    "new message");
		return NULL;
	}
	s->cfg = p->cfg;
	s->uid = p->uid;
	s->extract = p->extract;
	s->strip_bcc = p->strip_bcc;
	s->ignore_dots = p->ignore_dots;
	s->skip_from_line = p->skip_from_line;
	s->notify = p->notify;
	s->now = time(NULL);
	pst_hops_init(&s->hops);
	pst_hdr_init(&s->hdr, SUBMIT_HEADER_MAX);
	if ((s->from_addr = strdup(p->from_addr)) == NULL ||
	    (p->full_name != NULL &&
	    (s->full_name = strdup(p->full_name)) == NULL) ||
	    (p->helo != NULL && (s->helo = strdup(p->helo)) == NULL) ||
	    (p->protocol != NULL &&
	    (s->protocol = strdup(p->protocol)) == NULL)) {
		pst_err_sys(err, PST_TEMP, PST_STAGE_DATA, ENOMEM,
		    "new message");
		goto fail;
	}
	if ((s->msg = pst_spool_msg_begin(p->spool, err)) == NULL)
		goto fail;
	s->env = pst_spool_msg_env(s->msg);
	if (pst_spool_env_set_sender(s->env, p->sender, err) == -1 ||
	    pst_spool_env_set_origin(s->env, p->origin, err) == -1 ||
	    (p->envid != NULL &&
	    pst_spool_env_set_envid(s->env, p->envid, err) == -1))
		goto fail;
	s->env->ret = p->ret;
	s->env->flags |= p->flags;
	return s;
fail:
	if (err->cls == PST_LOCAL)
		err->cls = PST_PERM;
	submit_free(s);
	return NULL;
}

const char *
submit_id(const struct submit *s)
{
	return pst_spool_msg_id(s->msg);
}

size_t
submit_rcpts(const struct submit *s)
{
	return s->env->nrcpts;
}

void
submit_free(struct submit *s)
{
	if (s == NULL)
		return;
	pst_spool_msg_free(s->msg, NULL);
	free(s->from_addr);
	free(s->full_name);
	free(s->helo);
	free(s->protocol);
	free(s->line);
	pst_hdr_clear(&s->hdr);
	free(s->seen);
	free(s);
}

/*
 * Recipients.
 */

/* FNV-1a 64 of the address in lower case: duplicates ignore case. */
static uint64_t
addr_hash(const char *a)
{
	uint64_t h = PST_FNV1A64_BASIS;
	unsigned char c;

	for (; *a != '\0'; a++) {
		c = (unsigned char)(*a >= 'A' && *a <= 'Z' ? *a + 32 : *a);
		h = pst_fnv1a64_more(h, &c, 1);
	}
	return h;
}

/* The slot of 'addr' in the index: holding it, or the empty one. */
static size_t *
seen_slot(struct submit *s, const char *addr)
{
	size_t i, mask = s->seen_cap - 1;

	for (i = (size_t)addr_hash(addr) & mask; s->seen[i] != 0;
	    i = (i + 1) & mask)
		if (strcasecmp(s->env->rcpts[s->seen[i] - 1].addr, addr) == 0)
			break;
	return &s->seen[i];
}

/* Keeps the index at most half full. */
static int
seen_grow(struct submit *s)
{
	size_t *old = s->seen, oldcap = s->seen_cap, i;

	if (s->seen_cap >= 2 * (s->env->nrcpts + 1))
		return 0;
	s->seen_cap = s->seen_cap == 0 ? 64 : s->seen_cap * 2;
	if ((s->seen = calloc(s->seen_cap, sizeof(*s->seen))) == NULL) {
		s->seen = old;
		s->seen_cap = oldcap;
		return -1;
	}
	for (i = 0; i < s->env->nrcpts; i++)
		*seen_slot(s, s->env->rcpts[i].addr) = i + 1;
	free(old);
	return 0;
}

/* Adds the address(es) 'name' stands for, once each. */
static int
add_expanded(struct submit *s, const char *name, unsigned notify,
    const char *orcpt, struct pst_err *err)
{
	struct rewrite_list list = { 0 };
	struct pst_addr a;
	const char *why;
	size_t i, *slot;

	if (rewrite_recipient(s->cfg, name, &list) == -1) {
		rewrite_list_free(&list);
		pst_err_sys(err, PST_TEMP, PST_STAGE_RCPT, ENOMEM,
		    "recipient %s", name);
		return submit_spool_fail(s, err);
	}
	for (i = 0; i < list.count; i++) {
		if (seen_grow(s) == -1) {
			rewrite_list_free(&list);
			pst_err_sys(err, PST_TEMP, PST_STAGE_RCPT, ENOMEM,
			    "recipient %s", name);
			return submit_spool_fail(s, err);
		}
		if (*(slot = seen_slot(s, list.addrs[i])) != 0)
			continue;
		if (s->env->nrcpts >= s->cfg->limits.recipients) {
			rewrite_list_free(&list);
			return submit_fail(s, err, 452, "4.5.3", "too many "
			    "recipients: the limit is %u (limits.recipients)",
			    s->cfg->limits.recipients);
		}
		if (pst_addr_parse_mailbox(list.addrs[i],
		    strlen(list.addrs[i]), PST_ADDR_F_UTF8, &a, &why) == 0 &&
		    a.utf8)
			s->env->flags |= PST_SPOOL_F_SMTPUTF8;
		if (pst_spool_env_add_rcpt(s->env, list.addrs[i], notify,
		    orcpt, err) == -1) {
			rewrite_list_free(&list);
			return submit_spool_fail(s, err);
		}
		*slot = s->env->nrcpts;
	}
	rewrite_list_free(&list);
	return 0;
}

/*
 * Checks one address taken from a list and adds it: a bare name is a
 * local name, anything with "@" must be a valid mailbox.
 */
static int
add_address(struct submit *s, const char *addr, size_t len, unsigned notify,
    const char *elem, const char *where, struct pst_err *err)
{
	char buf[PST_ADDRLIST_ADDR_MAX + PST_ADDR_DOMAIN_MAX + 2];
	struct pst_addr a;
	const char *why;

	if (memchr(addr, '@', len) == NULL) {
		/* A local name must be a valid local part. */
		snprintf(buf, sizeof(buf), "%.*s@%s", (int)len, addr,
		    s->cfg->default_domain);
		if (len == 0 || pst_addr_parse_mailbox(buf, strlen(buf),
		    PST_ADDR_F_UTF8, &a, &why) == -1)
			return submit_fail(s, err, 501, "5.1.3", "bad "
			    "recipient address \"%s\" %s: %s", elem, where,
			    len == 0 ? "empty address" : why);
		snprintf(buf, sizeof(buf), "%.*s", (int)len, addr);
		return add_expanded(s, buf, notify, NULL, err);
	}
	if (pst_addr_parse_mailbox(addr, len, PST_ADDR_F_UTF8, &a, &why) ==
	    -1)
		return submit_fail(s, err, 501, "5.1.3", "bad recipient "
		    "address \"%s\" %s: %s", elem, where, why);
	return add_expanded(s, a.mailbox, notify, NULL, err);
}

int
submit_add_list(struct submit *s, const char *text, size_t len,
    const char *where, struct pst_err *err)
{
	struct pst_addrlist ls;
	char elem[128];
	int rc;

	pst_addrlist_init(&ls, text, len);
	while ((rc = pst_addrlist_next(&ls)) != 0) {
		printable(elem, sizeof(elem), ls.elem, ls.elem_len);
		if (rc == -1)
			return submit_fail(s, err, 501, "5.1.3", "bad "
			    "recipient address \"%s\" %s: %s", elem, where,
			    ls.why);
		if (ls.alen == 0)
			continue;
		if (add_address(s, ls.addr, ls.alen, s->notify, elem, where,
		    err) == -1)
			return -1;
	}
	pst_err_clear(err);
	return 0;
}

int
submit_add_rcpt(struct submit *s, const char *addr, unsigned notify,
    const char *orcpt, struct pst_err *err)
{
	return add_expanded(s, addr, notify, orcpt, err);
}

/*
 * Output into the spool message.
 */

static int
out_write(struct submit *s, const void *data, size_t len, struct pst_err *err)
{
	const unsigned char *p = data;
	size_t i;

	if (!(s->env->flags & PST_SPOOL_F_8BITMIME) ||
	    (!s->headers_done && !s->hdr_8bit))
		for (i = 0; i < len; i++)
			if (p[i] & 0x80) {
				s->env->flags |= PST_SPOOL_F_8BITMIME;
				s->hdr_8bit = !s->headers_done;
				break;
			}
	if (pst_spool_msg_size(s->msg) + len > s->cfg->limits.message_size)
		return submit_fail(s, err, 552, "5.3.4", "message too large: "
		    "the limit is %llu bytes (limits.message_size)",
		    (unsigned long long)s->cfg->limits.message_size);
	if (pst_spool_msg_write(s->msg, data, len, err) == -1)
		return submit_spool_fail(s, err);
	if (pst_spool_msg_need_flush(s->msg) &&
	    pst_spool_msg_flush_sync(s->msg, err) == -1)
		return submit_spool_fail(s, err);
	return 0;
}

static int
out_printf(struct submit *s, struct pst_err *err, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		pst_err_set(err, PST_LOCAL, PST_STAGE_DATA, "header field "
		    "too long");
		return submit_spool_fail(s, err);
	}
	return out_write(s, buf, (size_t)n, err);
}

/*
 * The line reader.
 */

static int
line_grow(struct submit *s, size_t want, struct pst_err *err)
{
	size_t cap;
	char *p;

	if (want <= s->cap)
		return 0;
	cap = s->cap == 0 ? 1024 : s->cap;
	while (cap < want)
		cap *= 2;
	if ((p = realloc(s->line, cap)) == NULL) {
		pst_err_sys(err, PST_TEMP, PST_STAGE_DATA, ENOMEM,
		    "reading the message");
		return submit_spool_fail(s, err);
	}
	s->line = p;
	s->cap = cap;
	return 0;
}

int
submit_input(struct submit *s, const char *buf, size_t len,
    struct pst_err *err)
{
	size_t i, n;
	int rc;
	char c;

	if (s->state != SUBMIT_HEADER && s->state != SUBMIT_BODY) {
		pst_err_set(err, PST_LOCAL, PST_STAGE_DATA, "input after the "
		    "end of the message (%s)", submit_state_names[s->state]);
		return -1;
	}
	for (i = 0; i < len; i++) {
		c = buf[i];
		if (s->cr) {
			/* A CR alone is a line end as well: never bare. */
			s->cr = false;
			if ((rc = line_end(s, err)) != 0)
				return rc;
			if (c == '\n')
				continue;
		}
		if (c == '\r') {
			s->cr = true;
			continue;
		}
		if (c == '\n') {
			if ((rc = line_end(s, err)) != 0)
				return rc;
			continue;
		}
		if (c == '\0')
			return submit_fail(s, err, 554, "5.6.0", "line %llu "
			    "holds a NUL byte; a message is text (RFC 5322)",
			    s->lineno + 1);
		if (s->len >= SUBMIT_LINE_MAX) {
			if (s->state == SUBMIT_HEADER &&
			    s->len == SUBMIT_LINE_MAX && !(is_wsp(s->line[0]) &&
			    s->hdr.nfields > 0) && pst_hdr_name_len(s->line,
			    s->len, &n) == 0) {
				/* Too long for a field name: the body. */
				if (headers_end(s, END_BODY, err) == -1)
					return -1;
			}
			if (s->state == SUBMIT_BODY) {
				/* RFC 5321 §4.5.3.1.6: break it. */
				if (body_line(s, s->line, s->len, err) == -1)
					return -1;
				s->len = 0;
				s->cont = true;
			} else if (s->hdr.len + s->len + 3 >
			    SUBMIT_HEADER_MAX) {
				return submit_fail(s, err, 552, "5.3.4",
				    "the header section is larger than %u "
				    "bytes", SUBMIT_HEADER_MAX);
			}
		}
		if (s->len + 1 > s->cap && line_grow(s, s->len + 1, err) == -1)
			return -1;
		s->line[s->len++] = c;
	}
	return 0;
}

/* A complete line is in s->line: route it. */
static int
line_end(struct submit *s, struct pst_err *err)
{
	bool cont = s->cont;
	int rc;

	s->lineno++;
	s->cont = false;
	if (!s->ignore_dots && !cont && s->len == 1 && s->line[0] == '.') {
		s->len = 0;
		submit_set_state(s, SUBMIT_ENDED);
		return 1;
	}
	if (s->state == SUBMIT_HEADER)
		rc = header_line(s, err);
	else
		rc = body_line(s, s->line, s->len, err);
	s->len = 0;
	return rc;
}

static int
body_line(struct submit *s, const char *line, size_t len, struct pst_err *err)
{
	if (out_write(s, line, len, err) == -1 ||
	    out_write(s, "\r\n", 2, err) == -1)
		return -1;
	return 0;
}

/*
 * The header section.
 */

static int
header_line(struct submit *s, struct pst_err *err)
{
	if (s->lineno == 1 && s->skip_from_line && s->len >= 5 &&
	    memcmp(s->line, "From ", 5) == 0)
		return 0;
	if (s->len == 0)
		return headers_end(s, END_BLANK, err);
	switch (pst_hdr_add(&s->hdr, s->line, s->len)) {
	case PST_HDR_ADD_FIELD:
	case PST_HDR_ADD_CONT:
		break;
	case PST_HDR_ADD_NOT:
		/* The body starts here, after an inserted blank line. */
		if (headers_end(s, END_BODY, err) == -1)
			return -1;
		return body_line(s, s->line, s->len, err);
	case PST_HDR_ADD_FULL:
		return submit_fail(s, err, 552, "5.3.4", "the header section "
		    "is larger than %u bytes", SUBMIT_HEADER_MAX);
	case PST_HDR_ADD_NOMEM:
		pst_err_sys(err, PST_TEMP, PST_STAGE_DATA, ENOMEM,
		    "reading the header section");
		return submit_spool_fail(s, err);
	}
	pst_hops_line(&s->hops, s->line, s->len);
	if (pst_hops_exceeded(&s->hops))
		return submit_fail(s, err, 554, "5.4.0", "too many hops (%u "
		    "Received: fields): mail loop?", s->hops.count);
	return 0;
}

/* Adds the recipients of To:, Cc: and Bcc: (or their Resent- forms). */
static int
extract_rcpts(struct submit *s, struct pst_err *err)
{
	const struct pst_hdr_field *f;
	bool resent;
	char where[64], *value = NULL;
	size_t i, len;
	int rc = 0;

	resent = pst_hdr_has(&s->hdr, PST_HDR_RESENT_TO) ||
	    pst_hdr_has(&s->hdr, PST_HDR_RESENT_CC) ||
	    pst_hdr_has(&s->hdr, PST_HDR_RESENT_BCC);
	for (i = 0; i < s->hdr.nfields && rc == 0; i++) {
		f = &s->hdr.fields[i];
		if (resent ? f->kind != PST_HDR_RESENT_TO &&
		    f->kind != PST_HDR_RESENT_CC &&
		    f->kind != PST_HDR_RESENT_BCC :
		    f->kind != PST_HDR_TO && f->kind != PST_HDR_CC &&
		    f->kind != PST_HDR_BCC)
			continue;
		snprintf(where, sizeof(where), "in the %.*s: field",
		    (int)f->name_len, s->hdr.buf + f->off);
		if ((value = malloc(f->len)) == NULL) {
			pst_err_sys(err, PST_TEMP, PST_STAGE_DATA, ENOMEM,
			    "reading %s", where);
			return submit_spool_fail(s, err);
		}
		len = pst_hdr_unfold(&s->hdr, f, value);
		rc = submit_add_list(s, value, len, where, err);
		free(value);
	}
	return rc;
}

/*
 * Where folding may start in the first line of a field: after the colon,
 * the white space after it and the first character of the value, so that
 * no line holds a name alone.
 */
static size_t
value_start(const char *p, size_t n)
{
	const char *colon = memchr(p, ':', n);
	size_t i;

	if (colon == NULL)
		return 1;
	for (i = (size_t)(colon - p) + 1; i < n && is_wsp(p[i]); i++)
		;
	return i + 1;
}

/*
 * Writes one physical header line, folded where it is longer than
 * SUBMIT_LINE_MAX: before the last white space that fits and lies at or
 * after 'min' (RFC 5322 §2.2.3: the unfolded value does not change), or,
 * without one, broken with CRLF SP (which adds a space to the value).
 */
static int
write_folded(struct submit *s, const char *p, size_t n, size_t min,
    struct pst_err *err)
{
	bool lead = false;
	size_t room, j;

	if (min < 1)
		min = 1;
	for (;;) {
		room = SUBMIT_LINE_MAX - (lead ? 1 : 0);
		if (lead && out_write(s, " ", 1, err) == -1)
			return -1;
		if (n <= room)
			return body_line(s, p, n, err);
		for (j = room; j >= min && !is_wsp(p[j]); j--)
			;
		lead = j < min;
		if (lead)
			j = room;
		min = 1;
		if (body_line(s, p, j, err) == -1)
			return -1;
		p += j;
		n -= j;
	}
}

/*
 * Appends the value 'v' ('len' bytes, maybe folded) to 'out' with
 * "@default_domain" after each address that has no domain: RFC 5322
 * §3.4.1 wants one, and programs write "From: root (Cron Daemon)" or
 * "To: root".  Returns 1 when something was added, 0 when nothing was
 * (the value does not parse as an address list, or needs nothing: 'out'
 * is then untouched), -1 when memory is short.
 */
static int
qualify_value(struct submit *s, const char *v, size_t len,
    struct evbuffer *out)
{
	char buf[PST_ADDRLIST_ADDR_MAX + PST_ADDR_DOMAIN_MAX + 2];
	const char *why, *copied = v;
	struct pst_addrlist ls;
	struct pst_addr a;
	size_t mark = evbuffer_get_length(out);
	bool changed = false;
	int rc;

	pst_addrlist_init(&ls, v, len);
	while ((rc = pst_addrlist_next(&ls)) == 1) {
		if (ls.alen == 0 || ls.insert_at == NULL ||
		    memchr(ls.addr, '@', ls.alen) != NULL)
			continue;
		snprintf(buf, sizeof(buf), "%s@%s", ls.addr,
		    s->cfg->default_domain);
		if (pst_addr_parse_mailbox(buf, strlen(buf), PST_ADDR_F_UTF8,
		    &a, &why) == -1)
			continue;
		if (evbuffer_add(out, copied, (size_t)(ls.insert_at -
		    copied)) == -1 || evbuffer_add_printf(out, "@%s",
		    s->cfg->default_domain) == -1)
			return -1;
		copied = ls.insert_at;
		changed = true;
	}
	if (rc == -1 || !changed) {
		/* Leave a value we cannot read as it was written. */
		return evbuffer_drain(out, evbuffer_get_length(out) - mark) ==
		    -1 ? -1 : 0;
	}
	return evbuffer_add(out, copied, (size_t)(v + len - copied)) == -1 ?
	    -1 : 1;
}

/* Writes field 'f', addresses qualified, lines folded where too long. */
static int
write_field(struct submit *s, const struct pst_hdr_field *f,
    struct pst_err *err)
{
	const char *p = s->hdr.buf + f->off, *end = p + f->len, *eol, *colon;
	struct evbuffer *b = NULL;
	bool first = true;
	int rc = 0;

	if (f->kind == PST_HDR_FROM || f->kind == PST_HDR_TO ||
	    f->kind == PST_HDR_CC || f->kind == PST_HDR_BCC ||
	    f->kind == PST_HDR_RESENT_TO || f->kind == PST_HDR_RESENT_CC ||
	    f->kind == PST_HDR_RESENT_BCC || f->kind == PST_HDR_ADDRESSES) {
		colon = memchr(p, ':', f->len);
		if ((b = evbuffer_new()) == NULL ||
		    evbuffer_add(b, p, (size_t)(colon + 1 - p)) == -1 ||
		    (rc = qualify_value(s, colon + 1,
		    (size_t)(end - 2 - (colon + 1)), b)) == -1 ||
		    (rc == 1 && evbuffer_add(b, "\r\n", 2) == -1)) {
			if (b != NULL)
				evbuffer_free(b);
			pst_err_sys(err, PST_TEMP, PST_STAGE_DATA, ENOMEM,
			    "writing the header section");
			return submit_spool_fail(s, err);
		}
		if (rc == 1) {
			p = (const char *)evbuffer_pullup(b, -1);
			end = p + evbuffer_get_length(b);
		}
	}
	for (rc = 0; p < end && rc == 0; p = eol + 2) {
		eol = memchr(p, '\r', (size_t)(end - p));
		rc = write_folded(s, p, (size_t)(eol - p), first ?
		    value_start(p, (size_t)(eol - p)) : 1, err);
		first = false;
	}
	if (b != NULL)
		evbuffer_free(b);
	return rc;
}

/* The trace field (RFC 5321 §4.4; RFC 5322 §3.6.7). */
static int
write_received(struct submit *s, struct pst_err *err)
{
	char note[64], buf[2048];
	struct pst_received r = { 0 };
	int n;

	snprintf(note, sizeof(note), "postern, from userid %lu",
	    (unsigned long)s->uid);
	r.by = s->cfg->hostname;
	r.by_comment = note;
	r.id = submit_id(s);
	r.date = s->now;
	if (s->helo != NULL) {
		r.from = s->helo;
		r.with = s->protocol != NULL ? s->protocol : "SMTP";
		r.fold = PST_RCVD_FOLD_BY | PST_RCVD_FOLD_DATE;
	} else
		r.fold = PST_RCVD_FOLD_ID;
	if ((n = pst_received_format(&r, buf, sizeof(buf))) == -1) {
		pst_err_set(err, PST_LOCAL, PST_STAGE_DATA, "header field "
		    "too long");
		return submit_spool_fail(s, err);
	}
	return out_write(s, buf, (size_t)n, err);
}

static int
write_from(struct submit *s, struct pst_err *err)
{
	struct evbuffer *b;
	const char *p;
	size_t len;
	int rc;

	if ((b = evbuffer_new()) == NULL ||
	    evbuffer_add(b, "From: ", 6) == -1 ||
	    (s->full_name != NULL && s->full_name[0] != '\0' &&
	    (pst_phrase_encode(s->full_name, b) == -1 ||
	    evbuffer_add(b, " <", 2) == -1)) ||
	    evbuffer_add(b, s->from_addr, strlen(s->from_addr)) == -1 ||
	    (s->full_name != NULL && s->full_name[0] != '\0' &&
	    evbuffer_add(b, ">", 1) == -1)) {
		if (b != NULL)
			evbuffer_free(b);
		pst_err_sys(err, PST_TEMP, PST_STAGE_DATA, ENOMEM,
		    "writing From:");
		return submit_spool_fail(s, err);
	}
	len = evbuffer_get_length(b);
	p = (const char *)evbuffer_pullup(b, -1);
	rc = write_folded(s, p, len, value_start(p, len), err);
	evbuffer_free(b);
	return rc;
}

/* RFC 6409 §8.2, §8.3 and RFC 5322 §3.6: what must be there. */
static int
write_added(struct submit *s, struct pst_err *err)
{
	char buf[64];
	uint32_t rnd = 0;

	if (!pst_hdr_has(&s->hdr, PST_HDR_DATE) && out_printf(s, err,
	    "Date: %s\r\n", pst_msg_date(s->now, buf, sizeof(buf))) == -1)
		return -1;
	if (!pst_hdr_has(&s->hdr, PST_HDR_MSGID)) {
		/* The queue id is unique here; the random part elsewhere. */
		if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
			rnd = (uint32_t)s->now ^ (uint32_t)s->uid;
		if (out_printf(s, err, "Message-ID: <%s.%08x@%s>\r\n",
		    submit_id(s), (unsigned)rnd, s->cfg->hostname) == -1)
			return -1;
	}
	if (!pst_hdr_has(&s->hdr, PST_HDR_FROM) && write_from(s, err) == -1)
		return -1;
	return 0;
}

static int
headers_end(struct submit *s, enum header_end how, struct pst_err *err)
{
	size_t i;

	if (s->extract && extract_rcpts(s, err) == -1)
		return -1;
	if (write_received(s, err) == -1)
		return -1;
	for (i = 0; i < s->hdr.nfields; i++) {
		if (s->strip_bcc && (s->hdr.fields[i].kind == PST_HDR_BCC ||
		    s->hdr.fields[i].kind == PST_HDR_RESENT_BCC))
			continue;
		if (write_field(s, &s->hdr.fields[i], err) == -1)
			return -1;
	}
	if (write_added(s, err) == -1)
		return -1;
	/* RFC 5322 §2.1: an empty line separates the body. */
	if (how != END_EOF && out_write(s, "\r\n", 2, err) == -1)
		return -1;
	pst_hdr_clear(&s->hdr);
	s->headers_done = true;
	if (s->state == SUBMIT_HEADER)
		submit_set_state(s, SUBMIT_BODY);
	return 0;
}

/*
 * The end.
 */

int
submit_finish(struct submit *s, struct pst_err *err)
{
	int rc = 0;

	if (s->state == SUBMIT_HEADER || s->state == SUBMIT_BODY) {
		if (s->cr || s->len > 0 || s->cont) {
			s->cr = false;
			rc = line_end(s, err);
		}
		if (rc == -1)
			return -1;
	}
	if ((s->state == SUBMIT_HEADER || s->state == SUBMIT_ENDED) &&
	    !s->headers_done && headers_end(s, END_EOF, err) == -1)
		return -1;
	if (s->state != SUBMIT_BODY && s->state != SUBMIT_ENDED) {
		pst_err_set(err, PST_LOCAL, PST_STAGE_DATA, "the message "
		    "cannot be finished (%s)", submit_state_names[s->state]);
		return submit_spool_fail(s, err);
	}
	if (s->env->nrcpts == 0)
		return submit_fail(s, err, 554, "5.5.1", "no recipients%s",
		    s->extract ? " (none in To:, Cc: or Bcc: and none on "
		    "the command line)" : "");
	/*
	 * Mail with UTF-8 in its envelope or header section needs SMTPUTF8
	 * (RFC 6531 §3.4), whether or not it was asked for (as Postfix's
	 * smtputf8_autodetect_classes does for sendmail).
	 */
	if (s->hdr_8bit || pst_spool_env_utf8_addrs(s->env))
		s->env->flags |= PST_SPOOL_F_SMTPUTF8 |
		    PST_SPOOL_F_UTF8_CHECKED | PST_SPOOL_F_UTF8_NEEDED;
	else if (s->env->flags & PST_SPOOL_F_SMTPUTF8)
		s->env->flags |= PST_SPOOL_F_UTF8_CHECKED;
	if (pst_spool_msg_commit_sync(s->msg, err) == -1)
		return submit_spool_fail(s, err);
	submit_set_state(s, SUBMIT_COMMITTED);
	pst_err_clear(err);
	return 0;
}
