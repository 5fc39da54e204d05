/*
 * cmd.c: SMTP command line -> struct pst_cmd.
 *
 * Three steps.  The door: a line with CR, LF or NUL, or with malformed
 * UTF-8, is refused before anything looks at it.  The verb: the first
 * token, looked up case-insensitively in a table.  The arguments: each
 * implemented verb has its own small parser; MAIL and RCPT hand the path
 * to addr.c and walk the ESMTP parameters one token at a time.
 *
 * Every parameter may appear once.  A parameter is refused with 555 when
 * it is unknown, belongs to the other command, or belongs to an extension
 * the server did not announce; with 501 when its value is malformed.
 * Nothing is allocated: values land in fixed arrays whose sizes are the
 * bounds RFC 3461 sets, or that postern sets and cmd.h names.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "smtp/addr.h"
#include "smtp/cmd.h"

#define SIZE_DIGITS_MAX	20	/* RFC 1870: size-value ::= 1*20DIGIT */
#define KEYWORD_SHOW	32	/* bytes of an unknown keyword in a reply */

/* Parameter bits, for duplicate detection. */
#define P_SIZE		0x01
#define P_BODY		0x02
#define P_SMTPUTF8	0x04
#define P_RET		0x08
#define P_ENVID		0x10
#define P_NOTIFY	0x20
#define P_ORCPT		0x40

struct param {
	const char	*kw;
	size_t		 kwlen;
	const char	*val;		/* NULL when there was no "=" */
	size_t		 vlen;
};

static const struct {
	const char		*name;
	enum pst_cmd_verb	 verb;
} verbs[] = {
	{ "HELO", PST_CMD_HELO },
	{ "EHLO", PST_CMD_EHLO },
	{ "MAIL", PST_CMD_MAIL },
	{ "RCPT", PST_CMD_RCPT },
	{ "DATA", PST_CMD_DATA },
	{ "RSET", PST_CMD_RSET },
	{ "NOOP", PST_CMD_NOOP },
	{ "QUIT", PST_CMD_QUIT },
	{ "VRFY", PST_CMD_VRFY },
	{ "HELP", PST_CMD_HELP },
	{ "STARTTLS", PST_CMD_STARTTLS },
	{ "AUTH", PST_CMD_AUTH },
	{ "BDAT", PST_CMD_BDAT },
	{ "BURL", PST_CMD_BURL },
	{ "EXPN", PST_CMD_EXPN },
	{ "ETRN", PST_CMD_ETRN },
	{ "ATRN", PST_CMD_ATRN },
	{ "TURN", PST_CMD_TURN },
	{ "SEND", PST_CMD_SEND },
	{ "SOML", PST_CMD_SOML },
	{ "SAML", PST_CMD_SAML },
	{ "GET", PST_CMD_HTTP },
	{ "POST", PST_CMD_HTTP },
	{ "HEAD", PST_CMD_HTTP },
	{ "PUT", PST_CMD_HTTP },
	{ "CONNECT", PST_CMD_HTTP },
};

static const char *const verb_names[PST_CMD__COUNT] = {
	[PST_CMD_UNKNOWN] = "?",
	[PST_CMD_HELO] = "HELO",
	[PST_CMD_EHLO] = "EHLO",
	[PST_CMD_MAIL] = "MAIL",
	[PST_CMD_RCPT] = "RCPT",
	[PST_CMD_DATA] = "DATA",
	[PST_CMD_RSET] = "RSET",
	[PST_CMD_NOOP] = "NOOP",
	[PST_CMD_QUIT] = "QUIT",
	[PST_CMD_VRFY] = "VRFY",
	[PST_CMD_HELP] = "HELP",
	[PST_CMD_STARTTLS] = "STARTTLS",
	[PST_CMD_AUTH] = "AUTH",
	[PST_CMD_BDAT] = "BDAT",
	[PST_CMD_BURL] = "BURL",
	[PST_CMD_EXPN] = "EXPN",
	[PST_CMD_ETRN] = "ETRN",
	[PST_CMD_ATRN] = "ATRN",
	[PST_CMD_TURN] = "TURN",
	[PST_CMD_SEND] = "SEND",
	[PST_CMD_SOML] = "SOML",
	[PST_CMD_SAML] = "SAML",
	[PST_CMD_HTTP] = "HTTP",
};

static int	 cmd_fail(struct pst_err *, enum pst_cmd_verb, int,
		    const char *, const char *, ...)
		    __attribute__((format(printf, 5, 6)));
static bool	 is_alnum(int);
static bool	 kw_is(const struct param *, const char *);
static bool	 val_is(const char *, size_t, const char *);
static int	 param_next(const char *, size_t, size_t *, struct param *);
static int	 parse_helo(struct pst_cmd *, struct pst_err *);
static int	 parse_path_arg(struct pst_cmd *, const char *, unsigned,
		    size_t *, struct pst_err *);
static int	 parse_mail(struct pst_cmd *, unsigned, struct pst_err *);
static int	 parse_rcpt(struct pst_cmd *, unsigned, struct pst_err *);
static int	 param_check(struct pst_cmd *, const struct param *, unsigned,
		    unsigned, unsigned, unsigned *, bool, struct pst_err *);
static int	 mail_param(struct pst_cmd *, const struct param *, unsigned,
		    unsigned *, struct pst_err *);
static int	 rcpt_param(struct pst_cmd *, const struct param *, unsigned,
		    unsigned *, struct pst_err *);
static int	 param_notify(struct pst_cmd *, const struct param *,
		    struct pst_err *);
static int	 param_orcpt(struct pst_cmd *, const struct param *,
		    struct pst_err *);

static int
cmd_fail(struct pst_err *err, enum pst_cmd_verb verb, int code,
    const char *esc, const char *fmt, ...)
{
	char text[PST_ERR_TEXT_MAX];
	enum pst_stage stage = PST_STAGE_NONE;
	enum pst_scope scope = PST_SCOPE_SESSION;
	va_list ap;

	switch (verb) {
	case PST_CMD_HELO:
	case PST_CMD_EHLO:
		stage = PST_STAGE_EHLO;
		break;
	case PST_CMD_MAIL:
		stage = PST_STAGE_MAIL;
		scope = PST_SCOPE_MESSAGE;
		break;
	case PST_CMD_RCPT:
		stage = PST_STAGE_RCPT;
		scope = PST_SCOPE_RECIPIENT;
		break;
	case PST_CMD_DATA:
		stage = PST_STAGE_DATA;
		scope = PST_SCOPE_MESSAGE;
		break;
	case PST_CMD_RSET:
		stage = PST_STAGE_RSET;
		break;
	case PST_CMD_QUIT:
		stage = PST_STAGE_QUIT;
		break;
	default:
		break;
	}
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	pst_err_set(err, PST_PERM, stage, "%s", text);
	err->scope = scope;
	err->smtp_code = code;
	snprintf(err->esc, sizeof(err->esc), "%s", esc);
	return -1;
}

const char *
pst_cmd_name(enum pst_cmd_verb verb)
{
	if ((unsigned)verb >= PST_CMD__COUNT)
		return "?";
	return verb_names[verb];
}

size_t
pst_cmd_line_max(unsigned flags)
{
	size_t mail = 512, rcpt = 512;

	if (flags & PST_CMD_EXT_SIZE)
		mail += 26;
	if (flags & PST_CMD_EXT_8BITMIME)
		mail += 14;
	if (flags & PST_CMD_EXT_SMTPUTF8)
		mail += 9;
	if (flags & PST_CMD_EXT_DSN) {
		mail += 9 + 1 + 6 + 3 * PST_CMD_ENVID_MAX;
		rcpt += 29 + 1 + 6 + PST_CMD_ADDRTYPE_MAX + 1 +
		    PST_CMD_ORCPT_MAX;
	}
	return mail > rcpt ? mail : rcpt;
}

static bool
is_alnum(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9');
}

static bool
kw_is(const struct param *p, const char *name)
{
	return p->kwlen == strlen(name) &&
	    strncasecmp(p->kw, name, p->kwlen) == 0;
}

static bool
val_is(const char *val, size_t vlen, const char *name)
{
	return vlen == strlen(name) && strncasecmp(val, name, vlen) == 0;
}

/*
 * Takes the next esmtp-param from s[*pos..n).  Returns 1 with '*p' set,
 * 0 at the end, -1 on bad syntax (RFC 5321 §4.1.2):
 *   esmtp-param   = esmtp-keyword ["=" esmtp-value]
 *   esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
 *   esmtp-value   = 1*(%d33-60 / %d62-126)   (RFC 6531: or UTF-8)
 */
static int
param_next(const char *s, size_t n, size_t *pos, struct param *p)
{
	/*
	 * Callers set '*pos' first; the analyzer, not seeing that
	 * pst_err_set() always returns -1, thinks a failure can get here.
	 */
	/* NOLINTNEXTLINE(clang-analyzer-core.uninitialized.Assign) */
	size_t i = *pos;
	unsigned char ch;

	while (i < n && s[i] == ' ')
		i++;
	if (i == n) {
		*pos = i;
		return 0;
	}
	memset(p, 0, sizeof(*p));
	p->kw = s + i;
	if (!is_alnum((unsigned char)s[i]))
		return -1;
	while (i < n && (is_alnum((unsigned char)s[i]) || s[i] == '-'))
		i++;
	p->kwlen = (size_t)(s + i - p->kw);
	if (i < n && s[i] == '=') {
		p->val = s + ++i;
		while (i < n && s[i] != ' ') {
			ch = (unsigned char)s[i];
			if (ch < 33 || ch == '=' || ch == 127)
				return -1;
			i++;
		}
		p->vlen = (size_t)(s + i - p->val);
		if (p->vlen == 0)
			return -1;
	}
	if (i < n && s[i] != ' ')
		return -1;
	*pos = i;
	return 1;
}

int
pst_cmd_parse(const char *line, size_t len, unsigned flags,
    struct pst_cmd *cmd, struct pst_err *err)
{
	size_t vlen, i, start, end;

	memset(cmd, 0, sizeof(*cmd));
	pst_err_clear(err);
	cmd->arg = line + len;

	/* RFC 5321 §2.3.8: CR and LF only as the line end; no NUL. */
	for (i = 0; i < len; i++)
		if (line[i] == '\r' || line[i] == '\n' || line[i] == '\0')
			return cmd_fail(err, PST_CMD_UNKNOWN, 500, "5.5.2",
			    "CR, LF or NUL in command");
	if (!pst_addr_utf8_valid(line, len))
		return cmd_fail(err, PST_CMD_UNKNOWN, 500, "5.5.2",
		    "Invalid UTF-8 in command");

	for (vlen = 0; vlen < len && line[vlen] != ' '; vlen++)
		;
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strlen(verbs[i].name) == vlen &&
		    strncasecmp(line, verbs[i].name, vlen) == 0)
			break;
	if (i == sizeof(verbs) / sizeof(verbs[0]))
		return cmd_fail(err, PST_CMD_UNKNOWN, 500, "5.5.1",
		    "Command unrecognized");
	cmd->verb = verbs[i].verb;

	for (start = vlen; start < len && line[start] == ' '; start++)
		;
	for (end = len; end > start && line[end - 1] == ' '; end--)
		;
	cmd->arg = line + start;
	cmd->arg_len = end - start;

	switch (cmd->verb) {
	case PST_CMD_HELO:
	case PST_CMD_EHLO:
		return parse_helo(cmd, err);
	case PST_CMD_MAIL:
		return parse_mail(cmd, flags, err);
	case PST_CMD_RCPT:
		return parse_rcpt(cmd, flags, err);
	case PST_CMD_DATA:
	case PST_CMD_RSET:
	case PST_CMD_QUIT:
		/* RFC 5321 §4.1.1.4, .5, .10: "DATA" CRLF and so on. */
		if (cmd->arg_len != 0)
			return cmd_fail(err, cmd->verb, 501, "5.5.4",
			    "Syntax: %s", pst_cmd_name(cmd->verb));
		return 0;
	case PST_CMD_VRFY:
		if (cmd->arg_len == 0)
			return cmd_fail(err, cmd->verb, 501, "5.5.4",
			    "Syntax: VRFY address");
		return 0;
	default:
		return 0;
	}
}

/* ehlo = "EHLO" SP ( Domain / address-literal ), helo = "HELO" SP Domain */
static int
parse_helo(struct pst_cmd *cmd, struct pst_err *err)
{
	const char *name = pst_cmd_name(cmd->verb);
	size_t i;

	if (cmd->arg_len == 0 || memchr(cmd->arg, ' ', cmd->arg_len) != NULL)
		return cmd_fail(err, cmd->verb, 501, "5.5.4",
		    "Syntax: %s hostname", name);
	if (cmd->arg_len > PST_ADDR_DOMAIN_MAX)
		return cmd_fail(err, cmd->verb, 501, "5.5.4",
		    "%s argument too long", name);
	for (i = 0; i < cmd->arg_len; i++) {
		unsigned char ch = (unsigned char)cmd->arg[i];

		if (ch < 33 || ch > 126)
			return cmd_fail(err, cmd->verb, 501, "5.5.4",
			    "Invalid character in %s argument", name);
	}
	memcpy(cmd->helo, cmd->arg, cmd->arg_len);
	cmd->helo[cmd->arg_len] = '\0';
	cmd->helo_valid = pst_addr_domain_valid(cmd->arg, cmd->arg_len, 0);
	return 0;
}

/*
 * The "FROM:"/"TO:" prefix and the path after it.  UTF-8 is accepted
 * here and judged by the caller once the parameters are known.  Sets
 * '*pos' to the first byte after the path.
 */
static int
parse_path_arg(struct pst_cmd *cmd, const char *prefix, unsigned aflags,
    size_t *pos, struct pst_err *err)
{
	const char *a = cmd->arg, *why = NULL;
	size_t n = cmd->arg_len, plen = strlen(prefix), i, used;
	bool mail = cmd->verb == PST_CMD_MAIL;

	if (n < plen || strncasecmp(a, prefix, plen) != 0)
		return cmd_fail(err, cmd->verb, 501, "5.5.4",
		    "Syntax: %s %s<address>", pst_cmd_name(cmd->verb), prefix);
	/* RFC 5321 §4.1.2 has no space here; Postfix and Exim allow it. */
	for (i = plen; i < n && a[i] == ' '; i++)
		;
	if (pst_addr_parse_path(a + i, n - i, aflags | PST_ADDR_F_UTF8,
	    &cmd->addr, &used, &why) == -1)
		return cmd_fail(err, cmd->verb, 501, mail ? "5.1.7" : "5.1.3",
		    "Bad %s address syntax: %s",
		    mail ? "sender" : "recipient", why);
	i += used;
	if (i < n && a[i] != ' ')
		return cmd_fail(err, cmd->verb, 501, "5.5.4",
		    "Syntax: %s %s<address> [parameters]",
		    pst_cmd_name(cmd->verb), prefix);
	*pos = i;
	return 0;
}

/* mail = "MAIL FROM:" Reverse-path [SP Mail-parameters] */
static int
parse_mail(struct pst_cmd *cmd, unsigned flags, struct pst_err *err)
{
	struct param p;
	unsigned seen = 0;
	size_t pos;
	int rc;

	if (parse_path_arg(cmd, "FROM:", PST_ADDR_F_NULL |
	    ((flags & PST_CMD_LOCAL_NAMES) ? PST_ADDR_F_LOCAL : 0), &pos,
	    err) == -1)
		return -1;
	while ((rc = param_next(cmd->arg, cmd->arg_len, &pos, &p)) == 1)
		if (mail_param(cmd, &p, flags, &seen, err) == -1)
			return -1;
	if (rc == -1)
		return cmd_fail(err, cmd->verb, 501, "5.5.4",
		    "Bad parameter syntax");
	/* RFC 6531: UTF-8 in the path needs SMTPUTF8 on this MAIL. */
	if (cmd->addr.utf8 && !cmd->mail.smtputf8)
		return cmd_fail(err, cmd->verb, 553, "5.6.7",
		    "Non-ASCII sender address needs SMTPUTF8");
	return 0;
}

/* rcpt = "RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" /
 * Forward-path ) [SP Rcpt-parameters] */
static int
parse_rcpt(struct pst_cmd *cmd, unsigned flags, struct pst_err *err)
{
	struct param p;
	unsigned seen = 0;
	size_t pos;
	int rc;

	if (parse_path_arg(cmd, "TO:", PST_ADDR_F_POSTMASTER |
	    ((flags & PST_CMD_LOCAL_NAMES) ? PST_ADDR_F_LOCAL : 0), &pos,
	    err) == -1)
		return -1;
	while ((rc = param_next(cmd->arg, cmd->arg_len, &pos, &p)) == 1)
		if (rcpt_param(cmd, &p, flags, &seen, err) == -1)
			return -1;
	if (rc == -1)
		return cmd_fail(err, cmd->verb, 501, "5.5.4",
		    "Bad parameter syntax");
	if (cmd->addr.utf8 && !(flags & PST_CMD_TXN_UTF8))
		return cmd_fail(err, cmd->verb, 553, "5.6.7",
		    "Non-ASCII recipient address needs SMTPUTF8");
	return 0;
}

/*
 * Common checks of one parameter: announced extension, duplicate, value
 * present or absent.  Returns 0 or -1 with 'err' filled.
 */
static int
param_check(struct pst_cmd *cmd, const struct param *p, unsigned flags,
    unsigned ext, unsigned bit, unsigned *seen, bool want_value,
    struct pst_err *err)
{
	const char *name = pst_cmd_name(cmd->verb);

	if (!(flags & ext))
		return cmd_fail(err, cmd->verb, 555, "5.5.4",
		    "Unsupported %s parameter %.*s", name, (int)p->kwlen,
		    p->kw);
	if (*seen & bit)
		return cmd_fail(err, cmd->verb, 501, "5.5.4",
		    "Duplicate %.*s parameter", (int)p->kwlen, p->kw);
	*seen |= bit;
	if (want_value && p->val == NULL)
		return cmd_fail(err, cmd->verb, 501, "5.5.4",
		    "%.*s needs a value", (int)p->kwlen, p->kw);
	if (!want_value && p->val != NULL)
		return cmd_fail(err, cmd->verb, 501, "5.5.4",
		    "%.*s takes no value", (int)p->kwlen, p->kw);
	return 0;
}

static int
mail_param(struct pst_cmd *cmd, const struct param *p, unsigned flags,
    unsigned *seen, struct pst_err *err)
{
	struct pst_mail_params *m = &cmd->mail;
	const char *why;
	size_t i, dlen;
	uint64_t v;

	if (kw_is(p, "SIZE")) {
		/* RFC 1870 §6: size-value ::= 1*20DIGIT */
		if (param_check(cmd, p, flags, PST_CMD_EXT_SIZE, P_SIZE, seen,
		    true, err) == -1)
			return -1;
		if (p->vlen > SIZE_DIGITS_MAX)
			return cmd_fail(err, cmd->verb, 501, "5.5.4",
			    "Bad SIZE value");
		for (v = 0, i = 0; i < p->vlen; i++) {
			unsigned d = (unsigned char)p->val[i] - '0';

			if (d > 9)
				return cmd_fail(err, cmd->verb, 501, "5.5.4",
				    "Bad SIZE value");
			/* Too large to accept anyway: saturate. */
			if (v > (UINT64_MAX - d) / 10)
				v = UINT64_MAX;
			else
				v = v * 10 + d;
		}
		m->has_size = true;
		m->size = v;
		return 0;
	}
	if (kw_is(p, "BODY")) {
		/* RFC 6152 §2: BODY=7BIT / BODY=8BITMIME */
		if (param_check(cmd, p, flags, PST_CMD_EXT_8BITMIME, P_BODY,
		    seen, true, err) == -1)
			return -1;
		if (val_is(p->val, p->vlen, "7BIT"))
			m->body = PST_BODY_7BIT;
		else if (val_is(p->val, p->vlen, "8BITMIME"))
			m->body = PST_BODY_8BITMIME;
		else if (val_is(p->val, p->vlen, "BINARYMIME"))
			/* RFC 3030 needs CHUNKING, which we lack. */
			return cmd_fail(err, cmd->verb, 555, "5.5.4",
			    "BODY=BINARYMIME not supported");
		else
			return cmd_fail(err, cmd->verb, 501, "5.5.4",
			    "Bad BODY value");
		return 0;
	}
	if (kw_is(p, "SMTPUTF8")) {
		/* RFC 6531 §3.4: the parameter has no value. */
		if (param_check(cmd, p, flags, PST_CMD_EXT_SMTPUTF8,
		    P_SMTPUTF8, seen, false, err) == -1)
			return -1;
		m->smtputf8 = true;
		return 0;
	}
	if (kw_is(p, "RET")) {
		/* RFC 3461 §4.3: ret-value = "FULL" / "HDRS" */
		if (param_check(cmd, p, flags, PST_CMD_EXT_DSN, P_RET, seen,
		    true, err) == -1)
			return -1;
		if (val_is(p->val, p->vlen, "FULL"))
			m->ret = PST_RET_FULL;
		else if (val_is(p->val, p->vlen, "HDRS"))
			m->ret = PST_RET_HDRS;
		else
			return cmd_fail(err, cmd->verb, 501, "5.5.4",
			    "Bad RET value");
		return 0;
	}
	if (kw_is(p, "ENVID")) {
		/* RFC 3461 §4.4: envid-parameter = "ENVID=" xtext */
		if (param_check(cmd, p, flags, PST_CMD_EXT_DSN, P_ENVID, seen,
		    true, err) == -1)
			return -1;
		if (p->val == NULL)	/* param_check() made sure */
			return cmd_fail(err, cmd->verb, 501, "5.5.4",
			    "ENVID needs a value");
		if (p->vlen >= sizeof(m->envid))
			return cmd_fail(err, cmd->verb, 501, "5.5.4",
			    "ENVID too long");
		if (pst_addr_xtext_decode(p->val, p->vlen, m->envid_text,
		    sizeof(m->envid_text), &dlen, &why) == -1)
			return cmd_fail(err, cmd->verb, 501, "5.5.4",
			    "Bad ENVID value: %s", why);
		memcpy(m->envid, p->val, p->vlen);
		m->envid[p->vlen] = '\0';
		return 0;
	}
	return cmd_fail(err, cmd->verb, 555, "5.5.4",
	    "Unsupported MAIL parameter %.*s",
	    (int)(p->kwlen < KEYWORD_SHOW ? p->kwlen : KEYWORD_SHOW), p->kw);
}

static int
rcpt_param(struct pst_cmd *cmd, const struct param *p, unsigned flags,
    unsigned *seen, struct pst_err *err)
{
	if (kw_is(p, "NOTIFY")) {
		if (param_check(cmd, p, flags, PST_CMD_EXT_DSN, P_NOTIFY,
		    seen, true, err) == -1)
			return -1;
		return param_notify(cmd, p, err);
	}
	if (kw_is(p, "ORCPT")) {
		if (param_check(cmd, p, flags, PST_CMD_EXT_DSN, P_ORCPT, seen,
		    true, err) == -1)
			return -1;
		return param_orcpt(cmd, p, err);
	}
	return cmd_fail(err, cmd->verb, 555, "5.5.4",
	    "Unsupported RCPT parameter %.*s",
	    (int)(p->kwlen < KEYWORD_SHOW ? p->kwlen : KEYWORD_SHOW), p->kw);
}

/*
 * RFC 3461 §4.1: notify-esmtp-value = "NEVER" / 1#notify-list-element,
 * notify-list-element = "SUCCESS" / "FAILURE" / "DELAY".
 */
static int
param_notify(struct pst_cmd *cmd, const struct param *p, struct pst_err *err)
{
	static const struct {
		const char	*name;
		unsigned	 bit;
	} words[] = {
		{ "NEVER", PST_NOTIFY_NEVER },
		{ "SUCCESS", PST_NOTIFY_SUCCESS },
		{ "FAILURE", PST_NOTIFY_FAILURE },
		{ "DELAY", PST_NOTIFY_DELAY },
	};
	size_t i = 0, start, w;
	unsigned bits = 0;

	while (i <= p->vlen) {
		for (start = i; i < p->vlen && p->val[i] != ','; i++)
			;
		for (w = 0; w < sizeof(words) / sizeof(words[0]); w++)
			if (val_is(p->val + start, i - start, words[w].name))
				break;
		if (w == sizeof(words) / sizeof(words[0]) ||
		    (bits & words[w].bit))
			return cmd_fail(err, cmd->verb, 501, "5.5.4",
			    "Bad NOTIFY value");
		bits |= words[w].bit;
		i++;
	}
	if ((bits & PST_NOTIFY_NEVER) && bits != PST_NOTIFY_NEVER)
		return cmd_fail(err, cmd->verb, 501, "5.5.4",
		    "NOTIFY=NEVER must stand alone");
	cmd->rcpt.notify = bits;
	return 0;
}

/*
 * RFC 3461 §4.2: orcpt-parameter = "ORCPT=" original-recipient-address,
 * original-recipient-address = addr-type ";" xtext, addr-type = atom.
 */
static int
param_orcpt(struct pst_cmd *cmd, const struct param *p, struct pst_err *err)
{
	struct pst_rcpt_params *r = &cmd->rcpt;
	const char *semi, *x, *why;
	size_t tlen, xlen, dlen, i;

	/* param_check() refused ORCPT without a value (see param_next()). */
	/* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker) */
	semi = memchr(p->val, ';', p->vlen);
	if (semi == NULL)
		return cmd_fail(err, cmd->verb, 501, "5.5.4",
		    "ORCPT needs addr-type;address");
	tlen = (size_t)(semi - p->val);
	x = semi + 1;
	xlen = p->vlen - tlen - 1;
	if (tlen == 0 || tlen > PST_CMD_ADDRTYPE_MAX)
		return cmd_fail(err, cmd->verb, 501, "5.5.4",
		    "Bad ORCPT address type");
	for (i = 0; i < tlen; i++) {
		unsigned char ch = (unsigned char)p->val[i];

		/* atext: '=' and ';' never reach here, '+' is fine. */
		if (!is_alnum(ch) && strchr("!#$%&'*+-/=?^_`{|}~", ch) ==
		    NULL)
			return cmd_fail(err, cmd->verb, 501, "5.5.4",
			    "Bad ORCPT address type");
	}
	if (xlen == 0)
		return cmd_fail(err, cmd->verb, 501, "5.5.4",
		    "Empty ORCPT address");
	if (xlen > PST_CMD_ORCPT_MAX)
		return cmd_fail(err, cmd->verb, 501, "5.5.4",
		    "ORCPT too long");
	if (pst_addr_xtext_decode(x, xlen, r->orcpt_text,
	    sizeof(r->orcpt_text), &dlen, &why) == -1)
		return cmd_fail(err, cmd->verb, 501, "5.5.4",
		    "Bad ORCPT value: %s", why);
	memcpy(r->orcpt_type, p->val, tlen);
	r->orcpt_type[tlen] = '\0';
	memcpy(r->orcpt, x, xlen);
	r->orcpt[xlen] = '\0';
	return 0;
}
