/*
 * config_aliases.c: the system's alias file (aliases(5); /etc/aliases on
 * Debian), read into the configuration's alias table once postern.conf
 * and the environment are read.  An alias postern.conf defines wins.
 *
 * The syntax is the one sendmail, Postfix and Exim read:
 *
 *	# a comment
 *	name: target, target, ...
 *		continued on lines that begin with a space or a tab
 *
 * A target is an address, or a local name looked up again.  A relay
 * delivers nothing itself, so the kinds of target only a local MTA can
 * honour (|program, /file, :include:list) are refused with a warning
 * naming the line; an alias left with nothing to deliver to is dropped
 * the same way.  What cannot be read as an alias at all, and a target
 * that is no address, are errors with the file and line, as in
 * postern.conf.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_int.h"

#define ALIASES_LINE_MAX	(64 * 1024)	/* one logical line */
#define ALIASES_DEFAULT		"/etc/aliases"

/* The kind of target only a local MTA can deliver to, or NULL. */
static const char *
local_only(const char *t)
{
	if (t[0] == '|')
		return "a program";
	if (t[0] == '/')
		return "a file";
	if (strncasecmp(t, ":include:", 9) == 0)
		return "an :include: list";
	return NULL;
}

/* Cuts surrounding blanks off [*s, *e). */
static void
trim(char **s, char **e)
{
	while (*s < *e && isspace((unsigned char)**s))
		(*s)++;
	while (*e > *s && isspace((unsigned char)(*e)[-1]))
		(*e)--;
}

/* Adds target [s, e) to 'a', or says why it cannot be one. */
static void
add_target(struct loader *L, const char *file, int line,
    struct config_alias *a, char *s, char *e)
{
	const char *kind, *why;
	char **t;

	trim(&s, &e);
	if (e - s >= 2 && s[0] == '"' && e[-1] == '"') {
		s++;
		e--;
	}
	if (s == e)
		return;
	*e = '\0';
	if ((kind = local_only(s)) != NULL) {
		add_error(&L->cfg->warnings, "%s:%d: alias %s: target \"%s\" "
		    "refused: it is %s, which only a local MTA delivers to; "
		    "postern relays", file, line, a->name, s, kind);
		return;
	}
	if ((why = check_mailbox(s)) != NULL) {
		add_error(L->errs, "%s:%d: alias %s: \"%s\" %s", file, line,
		    a->name, s, why);
		return;
	}
	t = xrealloc(a->targets, (a->ntargets + 1) * sizeof(*t));
	a->targets = t;
	a->targets[a->ntargets++] = xstrdup(s);
}

/* Whether the alias table holds 'name' already. */
static bool
known(const struct config *cfg, const char *name)
{
	return config_alias_find(cfg, name) != NULL;
}

/* One logical line, "name: targets", that began at line 'line'. */
static void
entry(struct loader *L, const char *file, int line, char *text)
{
	struct config *cfg = L->cfg;
	struct config_alias a = { NULL, NULL, 0, NULL, 0 }, *grown;
	char *colon, *s, *e, *p;
	bool quoted = false;

	if ((colon = strchr(text, ':')) == NULL) {
		add_error(L->errs, "%s:%d: not an alias (\"name: targets\" "
		    "expected)", file, line);
		return;
	}
	s = text;
	e = colon;
	trim(&s, &e);
	for (p = s; p < e; p++)
		if (isspace((unsigned char)*p) || *p == '@' || *p == ',')
			break;
	if (s == e || p != e) {
		add_error(L->errs, "%s:%d: \"%.*s\" is not a local name",
		    file, line, (int)(e - s), s);
		return;
	}
	*e = '\0';
	for (p = s; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	if (known(cfg, s))
		return;		/* postern.conf's, or an earlier line's */
	a.name = xstrdup(s);
	/* Targets: split at commas outside double quotes. */
	for (s = p = colon + 1; ; p++) {
		if (*p == '"')
			quoted = !quoted;
		else if (*p == '\0' || (*p == ',' && !quoted)) {
			bool last = *p == '\0';

			add_target(L, file, line, &a, s, p);
			if (last)
				break;
			s = p + 1;
		}
	}
	if (a.ntargets == 0) {
		add_error(&cfg->warnings, "%s:%d: alias %s ignored: nothing "
		    "postern can deliver to is left", file, line, a.name);
		free(a.name);
		free(a.targets);
		return;
	}
	grown = xrealloc(cfg->aliases, (cfg->naliases + 1) * sizeof(*grown));
	cfg->aliases = grown;
	a.file = xstrdup(file);
	a.line = line;
	cfg->aliases[cfg->naliases++] = a;
}

void
config_load_aliases_file(struct loader *L)
{
	struct config *cfg = L->cfg;
	const char *file = cfg->aliases_file != NULL ? cfg->aliases_file :
	    ALIASES_DEFAULT;
	char *buf, *line = NULL;
	size_t cap = 0, len = 0;
	ssize_t n;
	int lineno = 0, start = 0;
	bool skipping = false;	/* the rest of an entry too long */
	FILE *fp;

	if (file[0] == '\0')
		return;		/* aliases_file = "": none */
	if ((fp = fopen(file, "re")) == NULL) {
		/*
		 * The default may be absent, and one the daemon's user may
		 * not read is worth a warning, not a refusal to start; a
		 * file that is named must be there.
		 */
		if (cfg->aliases_file == NULL && errno == ENOENT)
			return;
		if (cfg->aliases_file == NULL)
			add_error(&cfg->warnings, "%s: cannot read: %s: its "
			    "aliases do not apply (aliases_file names it, or "
			    "\"\" for none)", file, strerror(errno));
		else
			add_error(L->errs, "%s: cannot read: %s", file,
			    strerror(errno));
		note_line(L, INT_MAX - 1);
		return;
	}
	buf = xcalloc(1, 1);
	for (;;) {
		n = getline(&line, &cap, fp);
		if (n != -1)
			lineno++;
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (n != -1 && (line[0] == ' ' || line[0] == '\t') &&
		    len > 0) {
			/* A continuation of the entry being read. */
			if (len + (size_t)n + 1 > ALIASES_LINE_MAX) {
				add_error(L->errs, "%s:%d: alias longer than "
				    "%d bytes", file, start, ALIASES_LINE_MAX);
				len = 0;
				skipping = true;
				continue;
			}
			buf = xrealloc(buf, len + (size_t)n + 2);
			buf[len++] = ' ';
			memcpy(buf + len, line, (size_t)n + 1);
			len += (size_t)n;
			continue;
		}
		if (len > 0)
			entry(L, file, start, buf);
		len = 0;
		if (n == -1)
			break;
		if (line[0] == '#' || strspn(line, " \t\r") == (size_t)n)
			continue;
		if (line[0] == ' ' || line[0] == '\t') {
			if (!skipping)
				add_error(L->errs, "%s:%d: a continuation line "
				    "with no alias before it", file, lineno);
			continue;
		}
		skipping = false;
		buf = xrealloc(buf, (size_t)n + 1);
		memcpy(buf, line, (size_t)n + 1);
		len = (size_t)n;
		start = lineno;
	}
	if (ferror(fp))
		add_error(L->errs, "%s: cannot read: %s", file,
		    strerror(errno));
	/* Its errors come after those of postern.conf. */
	note_line(L, INT_MAX - 1);
	fclose(fp);
	free(line);
	free(buf);
}
