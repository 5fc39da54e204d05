/*
 * err.c: filling and describing struct pst_err.
 *
 * Texts are always NUL terminated and free of control characters, so an
 * error can go to a log line, a DSN or a terminal without further care.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"

static const char *const stage_names[PST_STAGE__COUNT] = {
	[PST_STAGE_NONE] = "none",
	[PST_STAGE_CONFIG] = "config",
	[PST_STAGE_RESOLVE] = "resolve",
	[PST_STAGE_BIND] = "bind",
	[PST_STAGE_CONNECT] = "connect",
	[PST_STAGE_PROXY] = "proxy",
	[PST_STAGE_GREETING] = "greeting",
	[PST_STAGE_TLS] = "tls",
	[PST_STAGE_EHLO] = "ehlo",
	[PST_STAGE_STARTTLS] = "starttls",
	[PST_STAGE_AUTH] = "auth",
	[PST_STAGE_MAIL] = "mail",
	[PST_STAGE_RCPT] = "rcpt",
	[PST_STAGE_DATA] = "data",
	[PST_STAGE_DOT] = "dot",
	[PST_STAGE_RSET] = "rset",
	[PST_STAGE_QUIT] = "quit",
	[PST_STAGE_SPOOL] = "spool",
};

static const char *const stage_doing[PST_STAGE__COUNT] = {
	[PST_STAGE_NONE] = "",
	[PST_STAGE_CONFIG] = "reading the configuration",
	[PST_STAGE_RESOLVE] = "looking up the host name",
	[PST_STAGE_BIND] = "binding the source address",
	[PST_STAGE_CONNECT] = "connecting",
	[PST_STAGE_PROXY] = "talking to the proxy",
	[PST_STAGE_GREETING] = "waiting for the greeting",
	[PST_STAGE_TLS] = "during the TLS handshake",
	[PST_STAGE_EHLO] = "sending EHLO",
	[PST_STAGE_STARTTLS] = "sending STARTTLS",
	[PST_STAGE_AUTH] = "authenticating",
	[PST_STAGE_MAIL] = "sending MAIL FROM",
	[PST_STAGE_RCPT] = "sending RCPT TO",
	[PST_STAGE_DATA] = "sending the message",
	[PST_STAGE_DOT] = "waiting for the reply to the end of data",
	[PST_STAGE_RSET] = "sending RSET",
	[PST_STAGE_QUIT] = "sending QUIT",
	[PST_STAGE_SPOOL] = "writing to the spool",
};

void
pst_err_clear(struct pst_err *err)
{
	memset(err, 0, sizeof(*err));
}

static void	err_vset(struct pst_err *, enum pst_class, enum pst_stage,
		    const char *, va_list) __attribute__((format(printf, 4, 0)));

static void
err_vset(struct pst_err *err, enum pst_class cls, enum pst_stage stage,
    const char *fmt, va_list ap)
{
	char text[PST_ERR_TEXT_MAX];
	int n;

	pst_err_clear(err);
	err->cls = cls;
	err->stage = stage;
	n = vsnprintf(text, sizeof(text), fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(text))
		n = sizeof(text) - 1;
	pst_err_set_text(err, text, (size_t)n);
}

int
pst_err_set(struct pst_err *err, enum pst_class cls, enum pst_stage stage,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(err, cls, stage, fmt, ap);
	va_end(ap);
	return -1;
}

int
pst_err_sys(struct pst_err *err, enum pst_class cls, enum pst_stage stage,
    int errnum, const char *fmt, ...)
{
	va_list ap;
	size_t used;

	va_start(ap, fmt);
	err_vset(err, cls, stage, fmt, ap);
	va_end(ap);
	err->sys_errno = errnum;
	used = strlen(err->text);
	snprintf(err->text + used, sizeof(err->text) - used, ": %s",
	    strerror(errnum));
	return -1;
}

void
pst_err_set_text(struct pst_err *err, const char *text, size_t len)
{
	size_t i;

	if (len > sizeof(err->text) - 1)
		len = sizeof(err->text) - 1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c == '\0')
			break;
		err->text[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	err->text[i] = '\0';
}

const char *
pst_stage_name(enum pst_stage stage)
{
	if ((unsigned)stage >= PST_STAGE__COUNT)
		return "unknown";
	return stage_names[stage];
}

const char *
pst_stage_doing(enum pst_stage stage)
{
	if ((unsigned)stage >= PST_STAGE__COUNT)
		return "";
	return stage_doing[stage];
}

const char *
pst_class_name(enum pst_class cls)
{
	switch (cls) {
	case PST_OK:
		return "ok";
	case PST_TEMP:
		return "temporary";
	case PST_PERM:
		return "permanent";
	case PST_LOCAL:
		return "local";
	}
	return "unknown";
}

const char *
pst_scope_name(enum pst_scope scope)
{
	switch (scope) {
	case PST_SCOPE_SESSION:
		return "session";
	case PST_SCOPE_MESSAGE:
		return "message";
	case PST_SCOPE_RECIPIENT:
		return "recipient";
	}
	return "unknown";
}

char *
pst_err_format(const struct pst_err *err, char *buf, size_t len)
{
	char code[64] = "";
	char esc[32] = "";
	const char *p;
	size_t off;
	int n;

	if (len == 0)
		return buf;
	if (err->smtp_code != 0)
		snprintf(code, sizeof(code), " code=%d", err->smtp_code);
	if (err->esc[0] != '\0')
		snprintf(esc, sizeof(esc), " esc=%s", err->esc);
	n = snprintf(buf, len, "class=%s stage=%s scope=%s%s%s reason=\"",
	    pst_class_name(err->cls), pst_stage_name(err->stage),
	    pst_scope_name(err->scope), code, esc);
	if (n < 0 || (size_t)n >= len)
		return buf;
	off = (size_t)n;
	/* The text is sanitised already; only quotes need escaping. */
	for (p = err->text; *p != '\0' && off + 3 < len; p++) {
		if (*p == '"' || *p == '\\')
			buf[off++] = '\\';
		buf[off++] = *p;
	}
	if (off + 1 < len)
		buf[off++] = '"';
	buf[off] = '\0';
	return buf;
}
