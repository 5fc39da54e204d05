/*
 * sendmail.c: the sendmail(8) command of postern (postern-sendmail,
 * installed as sendmail and mailq).
 *
 *   sendmail [-t] [-i] [-f SENDER] [-F NAME] [-C FILE] [-v] [--] [RCPT...]
 *   sendmail -bs      SMTP on standard input and output
 *   sendmail -bp      list the queue (also: mailq)
 *   sendmail -q       ask for a queue run
 *
 * A message goes straight into the spool through the synchronous spool
 * calls, so it works whether posternd runs or not; the exit status is 0
 * only once the message is committed (file and directory fsynced).  The
 * statuses follow <sysexits.h>: 64 bad flags, 65 a bad message or
 * address, 75 temporary trouble (spool missing or full, I/O error,
 * interrupted: nothing was queued), 78 a bad configuration.  Every
 * failure prints one line "sendmail: ...".
 *
 * What the message goes through (line ends, header fields added, -t) is
 * submit.c's business; this file parses the command line, works out the
 * sender, reads standard input and speaks SMTP for -bs.  It does not
 * deliver anything; -q asks a running posternd, through its control
 * socket, to try every deferred message now.
 */
#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "build_config.h"
#include "common/err.h"
#include "shared/config.h"
#include "shared/config_load.h"
#include "shared/ctlclient.h"
#include "shared/queue.h"
#include "shared/rewrite.h"
#include "smtp/addr.h"
#include "smtp/cmd.h"
#include "smtp/dot.h"
#include "smtp/server.h"
#include "spool/spool.h"
#include "submit.h"

#define INPUT_CHUNK		(64u * 1024)

enum sm_mode {
	MODE_DELIVER = 0,	/* -bm: read a message, queue it */
	MODE_SMTP,		/* -bs */
	MODE_PRINT,		/* -bp, mailq */
	MODE_FLUSH,		/* -q */
	MODE_ALIASES,		/* -bi, -I, newaliases */
};

struct sendmail {
	const char		*prog;
	enum sm_mode		 mode;
	const char		*config_path;
	bool			 config_explicit;
	const char		*sender_arg;	/* -f / -r as given */
	const char		*full_name;	/* -F */
	bool			 extract;	/* -t */
	bool			 ignore_dots;	/* -i, -oi */
	bool			 verbose;	/* -v */
	bool			 privileged;	/* running setgid */
	unsigned		 notify;	/* -N */
	enum pst_spool_ret	 ret;		/* -R */
	char			 envid[3 * PST_CMD_ENVID_MAX + 1]; /* -V */
	char			**rcpts;
	int			 nrcpts;

	struct config		*cfg;
	struct pst_spool	*spool;
	uid_t			 uid;
	char			*login;		/* NULL: no passwd entry */
	char			*gecos_name;	/* full name from passwd */
	char			*user_addr;	/* login@default_domain */
	char			 origin[64];
	bool			 stdin_eof;
};

/*
 * sendmail -bs session: lib/smtp/server's session machine over standard
 * input and output; a transaction is a submit.c submission.
 */
struct bs {
	struct sendmail		*sm;
	struct evbuffer		*in;
	struct pst_smtps	*smtp;
	struct submit		*sub;
	bool			 failed;	/* submit_input() failed: serr */
	struct pst_err		 serr;
};

static volatile sig_atomic_t interrupted;

static void	 usage(const struct sendmail *);
static void	 on_signal(int);
static int	 say(const struct sendmail *, int, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static int	 parse_args(struct sendmail *, int, char *[]);
static int	 parse_notify(const char *, unsigned *);
static int	 load_config(struct sendmail *);
static int	 who_am_i(struct sendmail *);
static int	 sender_address(struct sendmail *, char **);
static int	 open_spool(struct sendmail *);
static void	 drain_stdin(struct sendmail *);
static int	 run_deliver(struct sendmail *);
static int	 run_flush(struct sendmail *);
static int	 run_smtp(struct sendmail *);
static int	 bs_fill(struct bs *);
static void	 bs_reset(void *);
static int	 bs_mail(void *, const struct pst_cmd *,
		    struct pst_smtps_reply *);
static int	 bs_rcpt(void *, const struct pst_cmd *,
		    struct pst_smtps_reply *);
static int	 bs_write(void *, struct evbuffer *);
static int	 bs_commit(void *, const struct pst_dot *,
		    struct pst_smtps_reply *);
static void	 bs_out(void *, const char *, size_t);

static const struct pst_smtps_sink bs_sink = {
	.mail = bs_mail,
	.rcpt = bs_rcpt,
	.write = bs_write,
	.commit = bs_commit,
	.reset = bs_reset,
};

/* No deadline: the caller owns both ends of the pipe. */
static const struct pst_smtps_io bs_io = {
	.write = bs_out,
};

static void
usage(const struct sendmail *sm)
{
	fprintf(stderr,
	    "usage: %s [-t] [-i] [-f SENDER] [-F NAME] [-C FILE] [-v] "
	    "[-N DSN] [-R RET] [-V ENVID]\n"
	    "                [--] [RECIPIENT ...]\n"
	    "       %s -bs | -bp | -q [-C FILE]\n"
	    "       mailq [-C FILE]\n", sm->prog, sm->prog);
}

static void
on_signal(int sig)
{
	interrupted = sig;
}

/* Prints "sendmail: ..." on stderr and returns 'status'. */
static int
say(const struct sendmail *sm, int status, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", sm->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return status;
}

/*
 * The command line.
 */

/* -N never | success,failure,delay (RFC 3461 §4.1) */
static int
parse_notify(const char *arg, unsigned *out)
{
	char buf[64], *tok, *save;
	unsigned n = 0;

	if (strlen(arg) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", arg);
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (strcasecmp(tok, "never") == 0)
			n |= PST_SPOOL_NOTIFY_NEVER;
		else if (strcasecmp(tok, "success") == 0)
			n |= PST_SPOOL_NOTIFY_SUCCESS;
		else if (strcasecmp(tok, "failure") == 0)
			n |= PST_SPOOL_NOTIFY_FAILURE;
		else if (strcasecmp(tok, "delay") == 0)
			n |= PST_SPOOL_NOTIFY_DELAY;
		else
			return -1;
	}
	if (n == 0 || ((n & PST_SPOOL_NOTIFY_NEVER) &&
	    n != PST_SPOOL_NOTIFY_NEVER))
		return -1;
	*out = n;
	return 0;
}

/*
 * Options may come before or after the recipients (getopt permutes, as
 * Postfix's sendmail does); "--" ends them.  Returns 0 or EX_USAGE.
 */
static int
parse_args(struct sendmail *sm, int argc, char *argv[])
{
	const char *p;
	size_t i;
	int ch;

	opterr = 0;
	while ((ch = getopt(argc, argv,
	    ":B:b:C:F:f:Gh:IiL:mN:nO:o:p:q::R:r:tUV:vX:")) != -1) {
		switch (ch) {
		case 'b':
			if (strcmp(optarg, "m") == 0)
				sm->mode = MODE_DELIVER;
			else if (strcmp(optarg, "s") == 0)
				sm->mode = MODE_SMTP;
			else if (strcmp(optarg, "p") == 0)
				sm->mode = MODE_PRINT;
			else if (strcmp(optarg, "i") == 0)
				sm->mode = MODE_ALIASES;
			else if (strcmp(optarg, "d") == 0 ||
			    strcmp(optarg, "D") == 0)
				return say(sm, EX_USAGE, "-b%s is not "
				    "supported: posternd is the daemon",
				    optarg);
			else
				return say(sm, EX_USAGE, "-b%s is not "
				    "supported", optarg);
			break;
		case 'C':
			sm->config_path = optarg;
			sm->config_explicit = true;
			break;
		case 'F':
			sm->full_name = optarg;
			break;
		case 'f':
		case 'r':
			sm->sender_arg = optarg;
			break;
		case 'I':
			sm->mode = MODE_ALIASES;
			break;
		case 'i':
			sm->ignore_dots = true;
			break;
		case 'N':
			if (parse_notify(optarg, &sm->notify) == -1)
				return say(sm, EX_USAGE, "-N \"%s\": use "
				    "\"never\" or a list of success, failure "
				    "and delay", optarg);
			break;
		case 'o':
			/* -oi; -oe* error modes: errors always go to stderr.
			 * Other old-style options are ignored, as Postfix
			 * does. */
			if (strcmp(optarg, "i") == 0)
				sm->ignore_dots = true;
			break;
		case 'q':
			sm->mode = MODE_FLUSH;
			break;
		case 'R':
			if (strcasecmp(optarg, "full") == 0)
				sm->ret = PST_SPOOL_RET_FULL;
			else if (strcasecmp(optarg, "hdrs") == 0)
				sm->ret = PST_SPOOL_RET_HDRS;
			else
				return say(sm, EX_USAGE, "-R \"%s\": use full "
				    "or hdrs", optarg);
			break;
		case 't':
			sm->extract = true;
			break;
		case 'V':
			/* RFC 3461 §4.4: printable ASCII, at most 100. */
			for (p = optarg; *p > 0x20 && *p < 0x7f; p++)
				;
			if (*p != '\0' || p == optarg ||
			    strlen(optarg) > PST_CMD_ENVID_MAX ||
			    pst_addr_xtext_encode(optarg, strlen(optarg),
			    sm->envid, sizeof(sm->envid)) == -1)
				return say(sm, EX_USAGE, "-V: the envelope id "
				    "must be 1 to %d printable characters",
				    PST_CMD_ENVID_MAX);
			break;
		case 'v':
			sm->verbose = true;
			break;
		case 'B':	/* body type: we look at the bytes */
		case 'G':	/* gateway submission */
		case 'h':	/* hop count */
		case 'L':	/* syslog label */
		case 'm':	/* "me too": obsolete */
		case 'n':	/* no aliasing */
		case 'O':	/* option=value */
		case 'p':	/* protocol */
		case 'U':	/* initial user submission */
		case 'X':	/* traffic log */
			break;
		case ':':
			return say(sm, EX_USAGE, "option -%c needs a value",
			    optopt);
		default:
			say(sm, EX_USAGE, "unknown option -%c",
			    optopt != 0 ? optopt : '?');
			usage(sm);
			return EX_USAGE;
		}
	}
	sm->rcpts = argv + optind;
	sm->nrcpts = argc - optind;
	for (i = 0; i < (size_t)sm->nrcpts; i++)
		if (sm->rcpts[i][0] == '\0')
			return say(sm, EX_USAGE, "an empty recipient "
			    "argument");
	return 0;
}

static int
load_config(struct sendmail *sm)
{
	struct config_errors errs;
	size_t i;

	if (config_load(sm->config_path, sm->config_explicit, &sm->cfg,
	    &errs) == 0)
		return 0;
	for (i = 0; i < errs.count; i++)
		say(sm, 0, "%s", errs.lines[i]);
	if (errs.count == 0)
		say(sm, 0, "%s: the configuration is invalid",
		    sm->config_path);
	config_errors_free(&errs);
	return EX_CONFIG;
}

/*
 * The user: login name, full name (the first GECOS field, '&' standing
 * for the login name capitalised, as finger(1) reads it) and address.
 */
static int
who_am_i(struct sendmail *sm)
{
	struct passwd *pw;
	const char *g;
	size_t n, i;
	char *name;

	sm->uid = getuid();
	snprintf(sm->origin, sizeof(sm->origin), "sendmail%s uid=%lu",
	    sm->mode == MODE_SMTP ? " -bs" : "", (unsigned long)sm->uid);
	if ((pw = getpwuid(sm->uid)) == NULL || pw->pw_name[0] == '\0')
		return 0;
	if ((sm->login = strdup(pw->pw_name)) == NULL ||
	    (sm->user_addr = rewrite_sender(sm->cfg, sm->login)) == NULL)
		return say(sm, EX_TEMPFAIL, "out of memory");
	g = pw->pw_gecos != NULL ? pw->pw_gecos : "";
	n = strcspn(g, ",");
	if (n == 0)
		return 0;
	if ((name = malloc(n * (strlen(sm->login) + 1) + 1)) == NULL)
		return say(sm, EX_TEMPFAIL, "out of memory");
	for (i = 0, sm->gecos_name = name; i < n; i++) {
		if (g[i] != '&') {
			*name++ = g[i];
			continue;
		}
		strcpy(name, sm->login);
		if (*name >= 'a' && *name <= 'z')
			*name -= 'a' - 'A';
		name += strlen(name);
	}
	*name = '\0';
	return 0;
}

/*
 * The envelope sender: -f/-r (a bare name gets the default domain, "<>"
 * or "" is the null sender), else the user's address.  Returns 0 with a
 * new string, or the exit status.
 */
static int
sender_address(struct sendmail *sm, char **out)
{
	struct pst_addr a;
	const char *why;
	char *s;
	size_t len;

	if (sm->sender_arg == NULL) {
		if (sm->user_addr == NULL)
			return say(sm, EX_USAGE, "uid %lu has no login name "
			    "(no passwd entry): give the sender with -f "
			    "ADDRESS", (unsigned long)sm->uid);
		if (pst_addr_parse_mailbox(sm->user_addr,
		    strlen(sm->user_addr), PST_ADDR_F_UTF8, &a, &why) == -1)
			return say(sm, EX_DATAERR, "your address \"%s\" is not "
			    "valid (%s): give the sender with -f ADDRESS",
			    sm->user_addr, why);
		return (*out = strdup(sm->user_addr)) == NULL ?
		    say(sm, EX_TEMPFAIL, "out of memory") : 0;
	}
	len = strlen(sm->sender_arg);
	if (len >= 2 && sm->sender_arg[0] == '<' &&
	    sm->sender_arg[len - 1] == '>') {
		if ((s = strndup(sm->sender_arg + 1, len - 2)) == NULL)
			return say(sm, EX_TEMPFAIL, "out of memory");
	} else if ((s = strdup(sm->sender_arg)) == NULL) {
		return say(sm, EX_TEMPFAIL, "out of memory");
	}
	if (s[0] != '\0' && strchr(s, '@') == NULL) {
		char *full = rewrite_sender(sm->cfg, s);

		free(s);
		if ((s = full) == NULL)
			return say(sm, EX_TEMPFAIL, "out of memory");
	}
	if (pst_addr_parse_mailbox(s, strlen(s), PST_ADDR_F_NULL |
	    PST_ADDR_F_UTF8, &a, &why) == -1) {
		say(sm, EX_DATAERR, "bad sender address \"%s\": %s", s, why);
		free(s);
		return EX_DATAERR;
	}
	*out = s;
	return 0;
}

/* Every POSTERN_* variable: the caller may not redirect a setgid run. */
static void
drop_environment(void)
{
	extern char **environ;
	char name[128], **e;
	size_t len;

again:
	for (e = environ; e != NULL && *e != NULL; e++) {
		if (strncmp(*e, "POSTERN_", 8) != 0 &&
		    strncmp(*e, "CREDENTIALS_DIRECTORY=", 22) != 0)
			continue;
		len = strcspn(*e, "=");
		if (len >= sizeof(name))
			len = sizeof(name) - 1;
		memcpy(name, *e, len);
		name[len] = '\0';
		unsetenv(name);
		goto again;
	}
}

/*
 * The spool's layout is posternd's (or the package's, or the operator's
 * "postern init-spool"): created here, setgid, it would belong to
 * whichever user ran sendmail first.
 */
static int
open_spool(struct sendmail *sm)
{
	struct pst_spool_opts opts = {
		.file_mode = CONFIG_SPOOL_FILE_MODE,
		.dir_mode = CONFIG_SPOOL_DIR_MODE,
	};
	struct pst_err err;

	if ((sm->spool = pst_spool_open(sm->cfg->spool_dir, &opts, &err)) !=
	    NULL)
		return 0;
	if (err.sys_errno == ENOENT)
		return say(sm, EX_TEMPFAIL, "spool %s is not initialised: "
		    "start posternd once, or run \"postern init-spool\" as "
		    "root or as the spool's owner; nothing was queued",
		    sm->cfg->spool_dir);
	return say(sm, EX_TEMPFAIL, "cannot open the spool: %s", err.text);
}

/*
 * After a refusal: read what the writer still sends, so that it sees our
 * exit status rather than a broken pipe.  Not from a terminal.
 */
static void
drain_stdin(struct sendmail *sm)
{
	char buf[INPUT_CHUNK];
	ssize_t n;

	if (sm->stdin_eof || isatty(STDIN_FILENO))
		return;
	while (!interrupted && ((n = read(STDIN_FILENO, buf,
	    sizeof(buf))) > 0 || (n == -1 && errno == EINTR)))
		;
	sm->stdin_eof = true;
}

/*
 * Queueing a message from standard input.
 */

static int
run_deliver(struct sendmail *sm)
{
	struct submit_params p = { 0 };
	struct submit *sub = NULL;
	struct pst_err err;
	char *sender = NULL, *buf = NULL;
	ssize_t n;
	int i, rc, status;

	if (!sm->extract && sm->nrcpts == 0) {
		status = say(sm, EX_DATAERR, "no recipients given (name them "
		    "as arguments, or use -t to read them from the "
		    "message)");
		goto out;
	}
	if ((status = sender_address(sm, &sender)) != 0)
		goto out;
	if ((status = open_spool(sm)) != 0)
		goto out;
	p.cfg = sm->cfg;
	p.spool = sm->spool;
	p.sender = sender;
	/* sender_address() set 'sender' or returned say()'s non-zero status. */
	/* NOLINTNEXTLINE(clang-analyzer-core.NullDereference) */
	p.from_addr = sender[0] != '\0' || sm->user_addr == NULL ? sender :
	    sm->user_addr;
	if (p.from_addr[0] == '\0') {
		status = say(sm, EX_USAGE, "uid %lu has no login name: a "
		    "null sender needs one for the From: field",
		    (unsigned long)sm->uid);
		goto out;
	}
	/* The passwd name belongs to the user's own address only. */
	p.full_name = sm->full_name != NULL ? sm->full_name :
	    sm->user_addr != NULL && strcmp(p.from_addr, sm->user_addr) == 0 ?
	    sm->gecos_name : NULL;
	p.origin = sm->origin;
	p.uid = sm->uid;
	p.extract = sm->extract;
	p.strip_bcc = true;
	p.ignore_dots = sm->ignore_dots;
	p.skip_from_line = true;
	p.notify = sm->notify;
	p.ret = sm->ret;
	p.envid = sm->envid[0] != '\0' ? sm->envid : NULL;
	if ((sub = submit_new(&p, &err)) == NULL)
		goto fail;
	for (i = 0; i < sm->nrcpts; i++)
		if (submit_add_list(sub, sm->rcpts[i], strlen(sm->rcpts[i]),
		    "on the command line", &err) == -1)
			goto fail;
	if ((buf = malloc(INPUT_CHUNK)) == NULL) {
		status = say(sm, EX_TEMPFAIL, "out of memory");
		goto out;
	}
	for (;;) {
		n = read(STDIN_FILENO, buf, INPUT_CHUNK);
		if (interrupted) {
			status = say(sm, EX_TEMPFAIL, "interrupted by signal "
			    "%d: nothing was queued", (int)interrupted);
			goto out;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			status = say(sm, EX_TEMPFAIL, "reading the message: "
			    "%s", strerror(errno));
			goto out;
		}
		if (n == 0) {
			sm->stdin_eof = true;
			break;
		}
		if ((rc = submit_input(sub, buf, (size_t)n, &err)) == -1)
			goto fail;
		if (rc == 1)
			break;
	}
	if (submit_finish(sub, &err) == -1)
		goto fail;
	if (sm->verbose)
		say(sm, 0, "queued as %s (%zu recipient%s)", submit_id(sub),
		    submit_rcpts(sub), submit_rcpts(sub) == 1 ? "" : "s");
	status = EX_OK;
	goto out;
fail:
	if (err.cls == PST_PERM)
		status = say(sm, EX_DATAERR, "%s", err.text);
	else
		status = say(sm, EX_TEMPFAIL, "%s; nothing was queued",
		    err.text);
out:
	submit_free(sub);
	free(buf);
	free(sender);
	if (status != EX_OK)
		drain_stdin(sm);
	return status;
}

/*
 * -bi, -I, newaliases: check the aliases (postern.conf's and the alias
 * file's, loaded with the configuration) and have a running daemon read
 * them again.  There is no database to build: the file is read as it is.
 */
static int
run_aliases(struct sendmail *sm)
{
	const struct config *cfg = sm->cfg;
	char why[512], *reply;
	size_t i, from_file = 0;

	for (i = 0; i < cfg->warnings.count; i++)
		say(sm, 0, "warning: %s", cfg->warnings.lines[i]);
	for (i = 0; i < cfg->naliases; i++)
		from_file += cfg->aliases[i].file != NULL;
	printf("%s: %zu alias(es) from the alias file, %zu from %s\n",
	    cfg->aliases_file != NULL ? (cfg->aliases_file[0] != '\0' ?
	    cfg->aliases_file : "(no alias file)") : "/etc/aliases",
	    from_file, cfg->naliases - from_file, cfg->path != NULL ?
	    cfg->path : "the configuration");
	if (control_request(cfg->spool_dir, "reload", &reply, why,
	    sizeof(why)) == -1) {
		printf("posternd does not run (%s): they apply when it "
		    "starts\n", why);
		return EX_OK;
	}
	if (strncmp(reply, "ok", 2) != 0) {
		say(sm, 0, "posternd did not reload: %.*s",
		    (int)strcspn(reply, "\n"), reply);
		free(reply);
		return EX_TEMPFAIL;
	}
	printf("posternd reloaded\n");
	free(reply);
	return EX_OK;
}

/*
 * -q
 */

static int
run_flush(struct sendmail *sm)
{
	char why[512], *reply;

	if (control_request(sm->cfg->spool_dir, "flush", &reply, why,
	    sizeof(why)) == -1) {
		/* Mail waiting in the spool goes out once posternd starts. */
		say(sm, 0, "%s; queued mail is delivered once it starts", why);
		return EX_OK;
	}
	if (strncmp(reply, "ok ", 3) != 0) {
		say(sm, 0, "posternd: %.*s", (int)strcspn(reply, "\n"), reply);
		free(reply);
		return EX_TEMPFAIL;
	}
	if (sm->verbose)
		say(sm, 0, "queue run started: %.*s message(s) due now",
		    (int)strcspn(reply + 3, "\n"), reply + 3);
	free(reply);
	return EX_OK;
}

/*
 * -bs: SMTP on standard input and output, one transaction at a time,
 * each committed through submit.c before its 250.
 */

static void
bs_out(void *arg, const char *buf, size_t len)
{
	fwrite(buf, 1, len, stdout);
}

/* Reads more input; replies go out first (pipelining, RFC 2920). */
static int
bs_fill(struct bs *b)
{
	int n;

	fflush(stdout);
	for (;;) {
		n = evbuffer_read(b->in, STDIN_FILENO, INPUT_CHUNK);
		if (n == -1 && errno == EINTR && !interrupted)
			continue;
		return n;
	}
}

static void
bs_reset(void *arg)
{
	struct bs *b = arg;

	submit_free(b->sub);
	b->sub = NULL;
	b->failed = false;
}

static int
bs_mail(void *arg, const struct pst_cmd *cmd, struct pst_smtps_reply *r)
{
	struct bs *b = arg;
	struct sendmail *sm = b->sm;
	struct submit_params p = { 0 };
	struct pst_err err;

	p.cfg = sm->cfg;
	p.spool = sm->spool;
	p.sender = cmd->addr.null ? "" : cmd->addr.mailbox;
	p.from_addr = !cmd->addr.null ? cmd->addr.mailbox :
	    sm->user_addr != NULL ? sm->user_addr : "MAILER-DAEMON";
	p.full_name = cmd->addr.null || sm->user_addr == NULL ||
	    strcasecmp(p.from_addr, sm->user_addr) != 0 ? NULL :
	    sm->gecos_name;
	p.origin = sm->origin;
	p.uid = sm->uid;
	p.helo = pst_smtps_helo(b->smtp);
	p.protocol = pst_smtps_esmtp(b->smtp) ? "ESMTP" : "SMTP";
	p.ignore_dots = true;
	p.flags = (cmd->mail.body == PST_BODY_8BITMIME ?
	    PST_SPOOL_F_8BITMIME : 0) |
	    (cmd->mail.smtputf8 ? PST_SPOOL_F_SMTPUTF8 : 0);
	p.ret = pst_smtps_ret(cmd->mail.ret);
	p.envid = cmd->mail.envid[0] != '\0' ? cmd->mail.envid : NULL;
	if ((b->sub = submit_new(&p, &err)) == NULL) {
		pst_smtps_local_error(r, err.text);
		return -1;
	}
	return 0;
}

static int
bs_rcpt(void *arg, const struct pst_cmd *cmd, struct pst_smtps_reply *r)
{
	struct bs *b = arg;
	char orcpt[PST_SMTPS_ORCPT_MAX];
	struct pst_err err;

	pst_smtps_orcpt(cmd, orcpt, sizeof(orcpt));
	if (submit_add_rcpt(b->sub, cmd->addr.postmaster ? "postmaster" :
	    cmd->addr.mailbox, pst_smtps_notify(cmd->rcpt.notify),
	    orcpt[0] != '\0' ? orcpt : NULL, &err) == -1) {
		r->reset = true;
		pst_smtps_local_error(r, err.text);
		return -1;
	}
	return 0;
}

/*
 * Into the message as it comes: memory stays bounded.  After a failure
 * the rest is read and dropped; the commit answers with the reason.
 */
static int
bs_write(void *arg, struct evbuffer *buf)
{
	struct bs *b = arg;
	struct evbuffer_iovec v[8];
	size_t done;
	int i, nv;

	while (evbuffer_get_length(buf) > 0) {
		nv = evbuffer_peek(buf, -1, NULL, v, 8);
		if (nv > 8)
			nv = 8;
		for (i = 0, done = 0; i < nv; i++) {
			if (!b->failed && submit_input(b->sub, v[i].iov_base,
			    v[i].iov_len, &b->serr) == -1)
				b->failed = true;
			done += v[i].iov_len;
		}
		evbuffer_drain(buf, done);
	}
	return 0;
}

/* The end of data: the commit, done before we answer. */
static int
bs_commit(void *arg, const struct pst_dot *dot, struct pst_smtps_reply *r)
{
	struct bs *b = arg;

	if (!b->failed && submit_finish(b->sub, &b->serr) == 0) {
		snprintf(r->queued, sizeof(r->queued), "%s",
		    submit_id(b->sub));
		return PST_SMTPS_DONE;
	}
	if (b->serr.cls == PST_PERM)
		pst_smtps_reply_set(r, b->serr.smtp_code, b->serr.esc, "%s",
		    b->serr.text);
	else
		pst_smtps_local_error(r, b->serr.text);
	return PST_SMTPS_DONE;
}

static int
run_smtp(struct sendmail *sm)
{
	struct bs b = { .sm = sm };
	struct pst_smtps_params params = {
		.hostname = sm->cfg->hostname,
		.ext = PST_SMTPS_EXTENSIONS,
		.message_size = sm->cfg->limits.message_size,
		.recipients = sm->cfg->limits.recipients,
		.errors = PST_SMTPS_ERROR_LIMIT,
		/* One user's own session: no limit on NOOPs. */
		.junk = UINT_MAX,
		.stress_junk = UINT_MAX,
	};
	enum pst_smtps_state st;
	int status = EX_OK, n;

	if ((status = open_spool(sm)) != 0)
		return status;
	/* A client that goes away must not kill us while we commit. */
	signal(SIGPIPE, SIG_IGN);
	if ((b.in = evbuffer_new()) == NULL ||
	    (b.smtp = pst_smtps_new(&params, &bs_sink, &bs_io, &b,
	    b.in)) == NULL) {
		status = say(sm, EX_TEMPFAIL, "out of memory");
		goto out;
	}
	pst_smtps_greet(b.smtp, "sendmail -bs");
	for (;;) {
		pst_smtps_input(b.smtp);
		if ((st = pst_smtps_state(b.smtp)) == PST_SMTPS_CLOSING)
			break;
		if ((n = bs_fill(&b)) == 0) {
			pst_smtps_eof(b.smtp);
			break;
		}
		if (n < 0) {
			/* In DATA: the client went away, nothing accepted. */
			if (st != PST_SMTPS_DATA)
				status = say(sm, EX_TEMPFAIL, "reading the "
				    "SMTP session: %s", interrupted ?
				    "interrupted" : strerror(errno));
			break;
		}
	}
out:
	bs_reset(&b);
	pst_smtps_free(b.smtp);
	if (b.in != NULL)
		evbuffer_free(b.in);
	fflush(stdout);
	return status;
}

int
main(int argc, char *argv[])
{
	struct sendmail sm = { 0 };
	struct sigaction sa;
	const char *base;
	int status;

	base = strrchr(argv[0], '/') != NULL ? strrchr(argv[0], '/') + 1 :
	    argv[0];
	sm.prog = "sendmail";
	if (strlen(base) >= 5 && strcmp(base + strlen(base) - 5,
	    "mailq") == 0) {
		sm.prog = "mailq";
		sm.mode = MODE_PRINT;
	} else if (strlen(base) >= 10 && strcmp(base + strlen(base) - 10,
	    "newaliases") == 0) {
		sm.prog = "newaliases";
		sm.mode = MODE_ALIASES;
	}
	/*
	 * Installed setgid to the spool's group, so that local users can
	 * queue mail: then the configuration and the spool are the system's,
	 * whatever the caller's environment or -C say.
	 */
	if (getegid() != getgid() || geteuid() != getuid()) {
		sm.privileged = true;
		drop_environment();
		umask(027);
		sm.config_path = POSTERN_DEFAULT_CONFIG;
		sm.config_explicit = false;
	} else {
		sm.config_path = config_default_path();
		sm.config_explicit = getenv("POSTERN_CONFIG") != NULL;
	}
	if ((status = parse_args(&sm, argc, argv)) != 0)
		return status;
	if (sm.privileged && sm.config_explicit)
		return say(&sm, EX_USAGE, "-C is not allowed: this sendmail "
		    "is installed setgid and uses %s", POSTERN_DEFAULT_CONFIG);
	if ((status = load_config(&sm)) != 0)
		return status;
	if (sm.mode == MODE_ALIASES) {
		status = run_aliases(&sm);
		config_unref(sm.cfg);
		return status;
	}

	/* No SA_RESTART: a signal must end a blocked read, not our file. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	switch (sm.mode) {
	case MODE_PRINT:
		status = queue_list(sm.cfg, false, sm.prog) == 0 ? EX_OK :
		    EX_TEMPFAIL;
		break;
	case MODE_FLUSH:
		status = run_flush(&sm);
		break;
	case MODE_SMTP:
		if ((status = who_am_i(&sm)) == 0)
			status = run_smtp(&sm);
		break;
	default:
		if ((status = who_am_i(&sm)) == 0)
			status = run_deliver(&sm);
		break;
	}
	pst_spool_close(sm.spool);
	config_unref(sm.cfg);
	free(sm.login);
	free(sm.gecos_name);
	free(sm.user_addr);
	return status;
}
